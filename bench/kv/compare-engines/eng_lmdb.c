/*
 * compare-engines: LMDB 0.9.24 (lmdb.h).
 *
 * Durable mode: the default environment flags, i.e. neither MDB_NOSYNC nor
 * MDB_NOMETASYNC nor MDB_MAPASYNC.  LMDB's documentation (mdb_env_open)
 * says those flags trade durability: without them mdb_txn_commit flushes
 * the data pages and then the meta page before it returns, so each put is
 * one write transaction made durable at commit.  Writers are serialised
 * by LMDB's writer lock: there is no group commit, whatever the number of
 * writers.  Only the load runs with MDB_NOSYNC, then one mdb_env_sync.
 *
 * Cache: LMDB reads through a read-only mmap, so its cache is the OS page
 * cache, which LMDB cannot be told to bound.  For the 10x phase the
 * file's pages are dropped from the page cache at open (posix_fadvise
 * DONTNEED), readahead is off (MDB_NORDAHEAD, LMDB's advice for data
 * larger than RAM), and a bounding thread holds the file's resident pages
 * to cache_bytes: every millisecond it counts them (mincore) and, while
 * they exceed the bound, drops the next 1/32 of the file (MADV_DONTNEED
 * on the map, then POSIX_FADV_DONTNEED on the file), sweeping it
 * round-robin like a CLOCK hand.  That
 * is cruder than an LRU: a hot branch page is dropped when the hand passes
 * it, and the set may overshoot for up to a millisecond.  A memory cgroup
 * would be the exact bound, but this machine's cgroups belong to the
 * machinery that runs it.  report() prints the resident size and sweeps.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "engine.h"

/* The bounding thread's sweep: this fraction of the map per reclaim. */
#define BOUND_SLICES 32u

struct ldb {
	MDB_env *env;		/* Environment. */
	MDB_dbi dbi;		/* The unnamed database. */
	bool loading;		/* Opened fresh with MDB_NOSYNC for the load. */
	bool bounding;		/* The bounding thread runs. */
	_Atomic bool stop;	/* Tells it to end. */
	pthread_t bound;	/* Bounding thread (10x phase). */
	uint64_t bound_bytes;	/* Its bound: the cache size. */
	uint64_t sweeps;	/* Slices it reclaimed. */
	uint64_t ticks;		/* Times it woke up. */
	bool realtime;		/* It runs SCHED_FIFO, so readers cannot starve it. */
	uint64_t max_resident;	/* Most pages it saw resident. */
	char path[4096];	/* Data file. */
};

/*
 * Start of the data file's map.  mdb_env_info's me_mapaddr is set only with
 * MDB_FIXEDMAP, so find the mapping of the file in /proc/self/maps.
 */
static void *ldb_map_base(const struct ldb *db)
{
	char line[4096 + 256];
	size_t plen = strlen(db->path);
	void *base = NULL;
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		return NULL;
	while (!base && fgets(line, sizeof(line), f)) {
		size_t len = strcspn(line, "\n");
		unsigned long lo;

		if (len > plen && strncmp(line + len - plen, db->path, plen) == 0 &&
		    line[len - plen - 1] == ' ' && sscanf(line, "%lx-", &lo) == 1)
			base = (void *)lo;
	}
	fclose(f);
	return base;
}

struct lworker {
	struct ldb *db;		/* Environment. */
	MDB_txn *rtxn;		/* Read transaction, reset between reads. */
	MDB_cursor *cur;	/* Cursor of rtxn for scans. */
};

static int ldb_fail(int rc, const char *what)
{
	ce_set_error("%s: %s", what, mdb_strerror(rc));
	return rc > 0 ? -rc : -EIO;
}

/* Resident pages of the map, or -1; fills vec (one byte per page). */
static long ldb_resident(struct ldb *db, void *base, unsigned char **vec, size_t *len, size_t *pages)
{
	mdb_filehandle_t fd;
	struct stat st;
	size_t psz = (size_t)sysconf(_SC_PAGESIZE), n;
	long resident = 0;

	if (!base || mdb_env_get_fd(db->env, &fd) || fstat(fd, &st))
		return -1;
	*len = (size_t)st.st_size;
	n = (*len + psz - 1) / psz;
	if (n > *pages || !*vec) {
		free(*vec);
		*vec = malloc(n ? n : 1);
		if (!*vec)
			return -1;
	}
	*pages = n;
	if (mincore(base, *len, *vec))
		return -1;
	for (size_t i = 0; i < n; i++)
		resident += (*vec)[i] & 1;
	return resident;
}

static void *ldb_bound_main(void *arg)
{
	struct ldb *db = arg;
	unsigned char *vec = NULL;
	size_t len = 0, pages = 0, psz = (size_t)sysconf(_SC_PAGESIZE), hand = 0;
	uint64_t bound_pages = db->bound_bytes / psz;
	char *base = ldb_map_base(db);
	mdb_filehandle_t fd;

	struct sched_param sp = { .sched_priority = 1 };

	if (!base || mdb_env_get_fd(db->env, &fd))
		return NULL;
	/* Sixteen busy readers on two CPUs would otherwise delay its ticks. */
	db->realtime = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) == 0;
	while (!atomic_load(&db->stop)) {
		struct timespec ms = { 0, 1000000 };
		long res = ldb_resident(db, base, &vec, &len, &pages);

		db->ticks++;
		if (res >= 0 && (uint64_t)res > db->max_resident)
			db->max_resident = (uint64_t)res;
		/* At most one sweep of the file per tick. */
		for (unsigned i = 0; i < BOUND_SLICES && res >= 0 && (uint64_t)res > bound_pages; i++) {
			size_t slice = (pages + BOUND_SLICES - 1) / BOUND_SLICES, first = hand * slice;

			if (first < pages) {
				size_t n = first + slice <= pages ? slice : pages - first;

				/* Unmap the slice, then drop its (clean) pages from the page cache. */
				madvise(base + first * psz, n * psz, MADV_DONTNEED);
				posix_fadvise(fd, (off_t)(first * psz), (off_t)(n * psz), POSIX_FADV_DONTNEED);
				db->sweeps++;
			}
			hand = (hand + 1) % BOUND_SLICES;
			res = ldb_resident(db, base, &vec, &len, &pages);
		}
		nanosleep(&ms, NULL);
	}
	free(vec);
	return NULL;
}

static int ldb_open(const struct ce_cfg *c, void **out)
{
	struct ldb *db = calloc(1, sizeof(*db));
	char *path = db ? db->path : NULL;
	MDB_txn *txn;
	unsigned flags = MDB_NOSUBDIR;
	int rc;

	if (!db)
		return -ENOMEM;
	snprintf(path, sizeof(db->path), "%s/lmdb.mdb", c->dir);
	if (c->fresh) {
		char lock[4200];

		snprintf(lock, sizeof(lock), "%s-lock", path);
		unlink(path);
		unlink(lock);
		flags |= MDB_NOSYNC;
		db->loading = true;
	}
	if (c->direct)
		flags |= MDB_NORDAHEAD;
	rc = mdb_env_create(&db->env);
	if (rc) {
		free(db);
		return ldb_fail(rc, "mdb_env_create");
	}
	/* Room for the data several times over: copy-on-write needs free pages. */
	rc = mdb_env_set_mapsize(db->env, (size_t)(c->keys * (CE_KEY_BYTES + c->value + 64) * 8 + (1ull << 30)));
	if (rc == 0)
		rc = mdb_env_set_maxreaders(db->env, c->workers_max + 16);
	if (rc == 0)
		rc = mdb_env_open(db->env, path, flags, 0644);
	if (rc) {
		ldb_fail(rc, "mdb_env_open");
		goto err_env;
	}
	rc = mdb_txn_begin(db->env, NULL, 0, &txn);
	if (rc == 0) {
		rc = mdb_dbi_open(txn, NULL, 0, &db->dbi);
		if (rc == 0)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
	}
	if (rc) {
		ldb_fail(rc, "mdb_dbi_open");
		goto err_env;
	}
	if (c->direct) {
		mdb_filehandle_t fd;

		/* Start the 10x phase with none of the file in the page cache. */
		if (mdb_env_get_fd(db->env, &fd) == 0)
			posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		db->bound_bytes = c->cache_bytes;
		if (!ldb_map_base(db)) {
			ce_set_error("no mapping of %s in /proc/self/maps: cannot bound its page cache", path);
			mdb_env_close(db->env);
			free(db);
			return -ENOENT;
		}
		rc = pthread_create(&db->bound, NULL, ldb_bound_main, db);
		if (rc) {
			ce_set_error("cannot start the page-cache bounding thread: %s", strerror(rc));
			mdb_env_close(db->env);
			free(db);
			return -rc;
		}
		db->bounding = true;
	}
	*out = db;
	return 0;
err_env:
	mdb_env_close(db->env);
	free(db);
	return rc > 0 ? -rc : -EIO;
}

static int ldb_sync(void *p)
{
	struct ldb *db = p;
	int rc = mdb_env_sync(db->env, 1);

	if (rc)
		return ldb_fail(rc, "mdb_env_sync");
	if (db->loading) {
		/* From here on every commit is durable again. */
		rc = mdb_env_set_flags(db->env, MDB_NOSYNC, 0);
		if (rc)
			return ldb_fail(rc, "mdb_env_set_flags");
		db->loading = false;
	}
	return 0;
}

static int ldb_close(void *p)
{
	struct ldb *db = p;

	if (db->bounding) {
		atomic_store(&db->stop, true);
		pthread_join(db->bound, NULL);
	}
	mdb_env_close(db->env);
	free(db);
	return 0;
}

static int ldb_worker_open(void *p, void **out)
{
	struct lworker *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	w->db = p;
	*out = w;
	return 0;
}

static void ldb_worker_close(void *p)
{
	struct lworker *w = p;

	if (w->cur)
		mdb_cursor_close(w->cur);
	if (w->rtxn)
		mdb_txn_abort(w->rtxn);
	free(w);
}

static int ldb_load(void *p, uint64_t lo, uint64_t hi, const void *val, size_t vlen)
{
	struct lworker *w = p;
	char key[CE_KEY_BYTES];
	MDB_txn *txn;
	int rc = mdb_txn_begin(w->db->env, NULL, 0, &txn);

	if (rc)
		return ldb_fail(rc, "mdb_txn_begin (load)");
	for (uint64_t k = lo; k < hi && rc == 0; k++) {
		MDB_val mk = { CE_KEY_BYTES, key }, mv = { vlen, (void *)val };

		ce_key(k, key);
		rc = mdb_put(txn, w->db->dbi, &mk, &mv, 0);
	}
	if (rc) {
		mdb_txn_abort(txn);
		return ldb_fail(rc, "mdb_put (load)");
	}
	rc = mdb_txn_commit(txn);
	return rc ? ldb_fail(rc, "mdb_txn_commit (load)") : 0;
}

static int ldb_put(void *p, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct lworker *w = p;
	MDB_val mk = { klen, (void *)key }, mv = { vlen, (void *)val };
	MDB_txn *txn;
	int rc = mdb_txn_begin(w->db->env, NULL, 0, &txn);

	if (rc)
		return ldb_fail(rc, "mdb_txn_begin");
	rc = mdb_put(txn, w->db->dbi, &mk, &mv, 0);
	if (rc) {
		mdb_txn_abort(txn);
		return ldb_fail(rc, "mdb_put");
	}
	rc = mdb_txn_commit(txn);
	return rc ? ldb_fail(rc, "mdb_txn_commit") : 0;
}

/* Starts (or renews) the worker's read transaction. */
static int ldb_read_begin(struct lworker *w)
{
	int rc = w->rtxn ? mdb_txn_renew(w->rtxn) : mdb_txn_begin(w->db->env, NULL, MDB_RDONLY, &w->rtxn);

	return rc ? ldb_fail(rc, "read transaction") : 0;
}

static int ldb_get(void *p, const void *key, size_t klen, void *buf, size_t buf_len, size_t *vlen)
{
	struct lworker *w = p;
	MDB_val mk = { klen, (void *)key }, mv;
	int rc = ldb_read_begin(w);

	if (rc)
		return rc;
	rc = mdb_get(w->rtxn, w->db->dbi, &mk, &mv);
	if (rc == 0) {
		*vlen = mv.mv_size;
		memcpy(buf, mv.mv_data, mv.mv_size < buf_len ? mv.mv_size : buf_len);
	}
	mdb_txn_reset(w->rtxn);
	if (rc == MDB_NOTFOUND) {
		ce_set_error("mdb_get: key %.*s not found", (int)klen, (const char *)key);
		return -ENOENT;
	}
	return rc ? ldb_fail(rc, "mdb_get") : 0;
}

static int ldb_scan(void *p, const void *start, size_t slen, uint64_t n, uint64_t *got)
{
	struct lworker *w = p;
	MDB_val mk = { slen, (void *)start }, mv;
	int rc = ldb_read_begin(w);

	if (rc)
		return rc;
	rc = w->cur ? mdb_cursor_renew(w->rtxn, w->cur) : mdb_cursor_open(w->rtxn, w->db->dbi, &w->cur);
	if (rc) {
		mdb_txn_reset(w->rtxn);
		return ldb_fail(rc, "cursor");
	}
	*got = 0;
	for (rc = mdb_cursor_get(w->cur, &mk, &mv, MDB_SET_RANGE); rc == 0 && *got < n;
	     rc = mdb_cursor_get(w->cur, &mk, &mv, MDB_NEXT)) {
		ce_scan_copy(mk.mv_data, mk.mv_size, mv.mv_data, mv.mv_size);
		(*got)++;
	}
	mdb_txn_reset(w->rtxn);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : ldb_fail(rc, "mdb_cursor_get");
}

/* How much of the data file the page cache holds: LMDB's real cache size. */
static void ldb_report(void *p, FILE *out)
{
	struct ldb *db = p;
	unsigned char *vec = NULL;
	size_t len = 0, pages = 0, psz = (size_t)sysconf(_SC_PAGESIZE);
	long res = ldb_resident(db, ldb_map_base(db), &vec, &len, &pages);

	free(vec);
	if (res < 0)
		return;
	fprintf(out, "note engine=lmdb    data file %.1f MiB, %.1f MiB of it in the page cache now",
		(double)len / 1048576.0, (double)((size_t)res * psz) / 1048576.0);
	if (db->bounding)
		fprintf(out, "; bounded to %.1f MiB: at most %.1f MiB seen in %" PRIu64 " ticks%s, %"
			PRIu64 " slices of 1/%u dropped", (double)db->bound_bytes / 1048576.0,
			(double)(db->max_resident * psz) / 1048576.0, db->ticks,
			db->realtime ? " (SCHED_FIFO)" : " (not real-time: ticks may be late)", db->sweeps,
			BOUND_SLICES);
	fprintf(out, "\n");
}

const struct ce_engine ce_engine_lmdb = {
	.name = "lmdb",
	.durable_mode = "default env flags (no MDB_NOSYNC/NOMETASYNC/MAPASYNC): each put is a write txn "
			"whose commit syncs data then meta; cache = OS page cache (10x: dropped at open, "
			"MDB_NORDAHEAD, resident pages held to the cache size by a mincore-driven sweep)",
	.open = ldb_open,
	.sync = ldb_sync,
	.close = ldb_close,
	.worker_open = ldb_worker_open,
	.worker_close = ldb_worker_close,
	.load = ldb_load,
	.put = ldb_put,
	.get = ldb_get,
	.scan = ldb_scan,
	.report = ldb_report,
};
