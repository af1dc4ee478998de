/*
 * compare-engines: urt's embedded key-value store (include/urt/kv.h).
 *
 * Durable mode: urt_kv_put without URT_KV_NOSYNC returns once the log
 * batch holding the write is on the device (sync URT_PS_SYNC_AUTO: on
 * this virtio disk, no FUA, so a write then a device flush per batch;
 * concurrent writers of a shard share a batch).  The data file is opened
 * with O_DIRECT, so the only cache is urt's own (cache_bytes).
 *
 * A store is one runtime (a reactor per CPU, one shard each) and one data
 * file; workers are fibers, worker i on core i % ncores.  As "urt" they
 * use any key, so about half their calls go to the other core's shard and
 * back (urt_core_post both ways).  As "urt-local" they are shard-aware
 * callers, as kv.h allows (urt_kv_shard_of, urt_kv_shard_core): each puts
 * and gets only keys whose shard runs on its own core, so no call crosses
 * cores.  Scans cover every shard in both.
 */
#include <errno.h>
#include <inttypes.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "urt/error.h"
#include "urt/fiber.h"
#include "urt/kv.h"
#include "urt/rt.h"

/* Most reactors --urt-cores may ask for. */
#define CORES_MAX 64u
/* Entries a scan call returns at most. */
#define SCAN_BATCH 1000u

struct urt_db {
	struct urt_rt *rt;	/* Runtime: one reactor per CPU. */
	struct urt_kv *kv;	/* Store. */
	unsigned ncores;	/* Reactors of rt. */
	char path[4096];	/* Data file. */
	int cpus[CORES_MAX];	/* CPUs of the reactors with --urt-cores. */
};

struct urt_worker {
	struct urt_db *db;		/* Store. */
	unsigned core;			/* Reactor the worker's fiber runs on. */
	struct urt_kv_entry *ents;	/* SCAN_BATCH entries. */
	void *buf;			/* Their bytes. */
	size_t buf_len;			/* Bytes of buf. */
	struct urt_kv_cursor cur;	/* Scan position. */
};

static int urt_fail(int err, const char *what)
{
	const char *why = urt_last_error();

	/* No detail, no parentheses: no message ends in an empty "()". */
	ce_set_error("%s: %s%s%s%s", what, urt_strerror(err), *why ? " (" : "", why, *why ? ")" : "");
	return err < 0 && err > -4096 ? err : -EIO;
}

static int urt_open(const struct ce_cfg *c, void **out)
{
	struct urt_db *db = calloc(1, sizeof(*db));
	struct urt_rt_opts ro;
	struct urt_kv_opts ko;
	const char *env;
	int ret;

	if (!db)
		return -ENOMEM;
	snprintf(db->path, sizeof(db->path), "%s/urt.data", c->dir);
	if (c->fresh)
		unlink(db->path);
	urt_kv_opts_default(&ko);
	ko.path = db->path;
	/* Room for the tree about half full, plus logs and free space for overwrites. */
	ko.size_bytes = (c->keys * (CE_KEY_BYTES + c->value + 64) * 4 + (512ull << 20)) & ~((1ull << 20) - 1);
	ko.cache_bytes = c->cache_bytes;
	ko.batch_bytes_max = 512u << 10;
	/* For A/B runs of the sync policy: "fua" (one RWF_DSYNC write per batch) or "flush". */
	env = getenv("CE_URT_SYNC");
	if (env && *env) {
		if (strcmp(env, "fua") == 0) {
			ko.sync = URT_PS_SYNC_FUA;
		} else if (strcmp(env, "flush") == 0) {
			ko.sync = URT_PS_SYNC_FLUSH;
		} else {
			free(db);
			ce_set_error("CE_URT_SYNC wants fua or flush, not '%s'", env);
			return -EINVAL;
		}
	}
	/*
	 * For A/B runs of the log size (docs/engine.md): each shard's log in
	 * MiB (the region grows by as much); unset: the automatic size
	 * (urt_kv_opts.log_bytes 0).
	 */
	env = getenv("CE_URT_LOG_MB");
	if (env && *env) {
		char *end;
		unsigned long long mb;

		errno = 0;
		mb = strtoull(env, &end, 10);
		if (errno || *end || *env == '-' || mb == 0 || mb > (1ull << 20)) {
			free(db);
			ce_set_error("CE_URT_LOG_MB wants a whole number of MiB in [1, 1048576], not '%s'", env);
			return -EINVAL;
		}
		ko.log_bytes = mb << 20;
		ko.size_bytes += 2 * ko.log_bytes;
	}
	urt_rt_opts_default(&ro);
	/* For A/B runs of the cross-core spin (docs/engine.md); unset: the runtime's default. */
	if (getenv("CE_URT_POST_SPIN_NS"))
		ro.post_spin_max_ns = strtoull(getenv("CE_URT_POST_SPIN_NS"), NULL, 10);
	if (c->cores) {
		for (unsigned i = 0; i < c->cores && i < CORES_MAX; i++)
			db->cpus[i] = (int)i;
		ro.cpus = db->cpus;
		ro.ncpus = c->cores < CORES_MAX ? c->cores : CORES_MAX;
	}
	ro.buf_region_bytes = urt_kv_buf_region_bytes(&ko, c->cores ? ro.ncpus
							  : (unsigned)sysconf(_SC_NPROCESSORS_ONLN));
	ret = urt_rt_start(&ro, &db->rt);
	if (ret) {
		free(db);
		return urt_fail(ret, "urt_rt_start");
	}
	ret = urt_kv_open(db->rt, &ko, &db->kv);
	if (ret) {
		urt_fail(ret, "urt_kv_open");
		urt_rt_stop(db->rt);
		free(db);
		return ret < 0 && ret > -4096 ? ret : -EIO;
	}
	db->ncores = urt_rt_ncores(db->rt);
	*out = db;
	return 0;
}

struct ckpt_call {
	struct urt_kv *kv;	/* Store. */
	int ret;		/* Result of the checkpoint. */
	sem_t done;		/* Posted when it returned. */
};

static void ckpt_fiber(void *arg)
{
	struct ckpt_call *cc = arg;

	cc->ret = urt_kv_checkpoint(cc->kv);
	sem_post(&cc->done);
}

static int urt_sync(void *p)
{
	struct urt_db *db = p;
	struct ckpt_call cc = { .kv = db->kv };
	int ret;

	sem_init(&cc.done, 0, 0);
	ret = urt_fiber_spawn_on(db->rt, 0, ckpt_fiber, &cc);
	if (ret)
		return urt_fail(ret, "spawning the checkpoint fiber");
	sem_wait(&cc.done);
	return cc.ret ? urt_fail(cc.ret, "urt_kv_checkpoint") : 0;
}

static int urt_close(void *p)
{
	struct urt_db *db = p;
	int ret = urt_kv_close(db->kv);

	urt_rt_stop(db->rt);
	free(db);
	return ret ? urt_fail(ret, "urt_kv_close") : 0;
}

static int urt_spawn(void *p, unsigned i, void (*fn)(void *arg), void *arg)
{
	struct urt_db *db = p;
	int ret;

	/* The fiber table may be briefly full while the last phase's fibers exit. */
	while ((ret = urt_fiber_spawn_on(db->rt, i % db->ncores, fn, arg)) == -EAGAIN)
		usleep(100);
	return ret;
}

static int urt_worker_open(void *p, void **out)
{
	struct urt_db *db = p;
	struct urt_worker *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	w->db = db;
	w->core = urt_core_id();
	*out = w;
	return 0;
}

static bool urt_key_local(void *p, const void *key, size_t klen)
{
	struct urt_worker *w = p;

	return urt_kv_shard_core(w->db->kv, urt_kv_shard_of(w->db->kv, key, klen)) == w->core;
}

static void urt_worker_close(void *p)
{
	struct urt_worker *w = p;

	free(w->ents);
	free(w->buf);
	free(w);
}

static int urt_load(void *p, uint64_t lo, uint64_t hi, const void *val, size_t vlen)
{
	struct urt_worker *w = p;
	char key[CE_KEY_BYTES];

	for (uint64_t k = lo; k < hi; k++) {
		int ret;

		ce_key(k, key);
		ret = urt_kv_put(w->db->kv, key, CE_KEY_BYTES, val, vlen, URT_KV_NOSYNC);
		if (ret)
			return urt_fail(ret, "urt_kv_put (NOSYNC, load)");
	}
	return 0;
}

static int urt_put(void *p, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct urt_worker *w = p;
	int ret = urt_kv_put(w->db->kv, key, klen, val, vlen, 0);

	return ret ? urt_fail(ret, "urt_kv_put") : 0;
}

static int urt_get(void *p, const void *key, size_t klen, void *buf, size_t buf_len, size_t *vlen)
{
	struct urt_worker *w = p;
	int ret = urt_kv_get(w->db->kv, key, klen, buf, buf_len, vlen);

	if (ret == URT_E_NOTFOUND) {
		ce_set_error("urt_kv_get: key %.*s not found", (int)klen, (const char *)key);
		return -ENOENT;
	}
	return ret ? urt_fail(ret, "urt_kv_get") : 0;
}

static int urt_scan(void *p, const void *start, size_t slen, uint64_t n, uint64_t *got)
{
	struct urt_worker *w = p;
	int ret;

	if (!w->ents) {
		/* Room for a whole batch of the largest entries this benchmark writes. */
		w->buf_len = SCAN_BATCH * (CE_KEY_BYTES + 1024 + 64);
		w->ents = malloc(SCAN_BATCH * sizeof(*w->ents));
		w->buf = malloc(w->buf_len);
		if (!w->ents || !w->buf)
			return -ENOMEM;
	}
	*got = 0;
	ret = urt_kv_cursor_init(&w->cur, start, slen);
	if (ret)
		return urt_fail(ret, "urt_kv_cursor_init");
	while (*got < n && !w->cur.done) {
		size_t max = n - *got < SCAN_BATCH ? (size_t)(n - *got) : SCAN_BATCH;

		ret = urt_kv_scan(w->db->kv, &w->cur, w->ents, max, w->buf, w->buf_len, 0);
		if (ret < 0)
			return urt_fail(ret, "urt_kv_scan");
		*got += (uint64_t)ret;
	}
	return 0;
}

struct stats_call {
	struct urt_kv *kv;			/* Store. */
	unsigned shards;			/* Shards to read. */
	struct urt_kv_shard_stats st[URT_KV_SHARDS_MAX];	/* Their counters. */
	sem_t done;				/* Posted when read. */
};

static void stats_fiber(void *arg)
{
	struct stats_call *sc = arg;

	for (unsigned s = 0; s < sc->shards; s++)
		urt_kv_shard_stats(sc->kv, s, &sc->st[s]);
	sem_post(&sc->done);
}

/* Log bytes per commit and commits per batch since open: why a put costs what it does. */
static void urt_report(void *p, FILE *out)
{
	struct urt_db *db = p;
	struct stats_call *sc = calloc(1, sizeof(*sc));
	uint64_t commits = 0, batches = 0, log_bytes = 0, flushes = 0, hits = 0, misses = 0;

	if (!sc)
		return;
	sc->kv = db->kv;
	sc->shards = urt_kv_shards(db->kv);
	sem_init(&sc->done, 0, 0);
	if (urt_fiber_spawn_on(db->rt, 0, stats_fiber, sc) == 0) {
		sem_wait(&sc->done);
		for (unsigned s = 0; s < sc->shards; s++) {
			commits += sc->st[s].ps.commits;
			batches += sc->st[s].ps.batches;
			log_bytes += sc->st[s].ps.log_bytes;
			flushes += sc->st[s].ps.flushes;
			hits += sc->st[s].ps.hits;
			misses += sc->st[s].ps.misses;
		}
		fprintf(out, "note engine=urt*    since open: %" PRIu64 " commits in %" PRIu64 " log batches "
			"(%.1f per batch), %.0f log bytes per commit, %" PRIu64 " flushes; page hits %" PRIu64
			", misses %" PRIu64 "\n", commits, batches, batches ? (double)commits / (double)batches : 0,
			commits ? (double)log_bytes / (double)commits : 0, flushes, hits, misses);
	}
	{
		struct urt_stats rs;

		if (urt_rt_stats_total(db->rt, &rs) == 0)
			fprintf(out, "note engine=urt*    runtime since open: %" PRIu64 " posts, %" PRIu64
				" wakeups sent, %" PRIu64 " skipped (core awake), %" PRIu64 " sleeps, pre-sleep spins %"
				PRIu64 " hit / %" PRIu64 " missed\n", rs.posts_sent, rs.wakeups_sent,
				rs.wakeups_skipped, rs.sleeps, rs.post_spin_hits, rs.post_spin_misses);
	}
	free(sc);
}

const struct ce_engine ce_engine_urt = {
	.name = "urt",
	.durable_mode = "urt_kv_put without URT_KV_NOSYNC (returns once its log batch is durable: write + "
			"device flush here, group commit per shard); O_DIRECT data file, cache = urt's pool",
	.open = urt_open,
	.sync = urt_sync,
	.close = urt_close,
	.spawn = urt_spawn,
	.worker_open = urt_worker_open,
	.worker_close = urt_worker_close,
	.load = urt_load,
	.put = urt_put,
	.get = urt_get,
	.scan = urt_scan,
	.report = urt_report,
};

const struct ce_engine ce_engine_urt_local = {
	.name = "urt-local",
	.durable_mode = "as urt, with shard-aware callers: each worker puts and gets only keys of the "
			"shard on its own core (urt_kv_shard_of/shard_core), so no call crosses cores",
	.open = urt_open,
	.sync = urt_sync,
	.close = urt_close,
	.spawn = urt_spawn,
	.worker_open = urt_worker_open,
	.worker_close = urt_worker_close,
	.load = urt_load,
	.put = urt_put,
	.get = urt_get,
	.scan = urt_scan,
	.key_wanted = urt_key_local,
	.report = urt_report,
};
