/*
 * src/kv holds the key-value store of include/urt/kv.h: this file (the
 * public API), shard.c (one shard on its core), layout.c (the store header
 * and the device layout), btree.c and btree_node.c (the B+tree over an
 * abstract pager), pager_ps.c (that pager over a page-store transaction)
 * and hash.c (the key hash).  Its files include only the public headers
 * (include/urt: the runtime, the page store, the device), src/base and
 * src/kv's own headers; never a header of src/runtime or src/engine.
 *
 * This file: open and close, routing of keys to shards, forwarding of
 * requests to the core that owns a shard, and the operations that span
 * every shard (count, clear, scan, checkpoint, stats).
 *
 * Design notes.
 *
 * Thread per core.  Shard s belongs to core s % ncores; only that core
 * touches it.  A request for another core's shard travels there with
 * urt_core_post (the request struct itself is the message, owned by the
 * caller until done), is queued on the shard, and travels back the same
 * way; the post queues give the ordering and the memory visibility, so no
 * lock is taken anywhere.  Posts from one core to another run in order, so
 * a caller's writes to one shard reach its write queue in issue order.
 *
 * Request lifecycle: submit (origin core) -> [post] -> shard queue or
 * inline read (owner core) -> kv_req_complete (owner) -> [post] ->
 * req_finish on the origin: done(req), then inflight--.  urt_kv_close
 * sets `closing` (new submits fail) and waits for inflight to reach 0
 * before it stops the shards, so no request can arrive at a stopped shard.
 * The count is kept per origin core (struct kv_core_count): a request
 * touches no cache line another core writes except the post queues'.
 *
 * Work on shards (open, close, count, scan, checkpoint, stats) is one job
 * per shard run by urt_core_run_jobs (include/urt/rt.h) on the shard's
 * core: in a fiber there, inline when it is the caller's core.  The caller
 * waits for all of them, from a fiber or from a thread outside the runtime.
 * Clear is different: it is a request per shard that goes through the
 * write queues, ordered with the other writes (kv_wait below).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kv/kv_impl.h"
#include "kv/layout.h"
#include "base/assert.h"
#include "base/error.h"
#include "urt/buf.h"
#include "urt/dev.h"
#include "urt/error.h"
#include "urt/rt.h"

void urt_kv_opts_default(struct urt_kv_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->create = true;
	o->size_bytes = 1ull << 30;
	o->cache_bytes = 64ull << 20;
	o->batch_bytes_max = 2u << 20;
	o->sync = URT_PS_SYNC_AUTO;
	o->readers_max = 64;
	o->expire_interval_ms = 100;
	o->expire_scan_keys = 256;
	o->read_prefetch_min_bytes = 16ull << 20;
}

static uint64_t pow2_at_least(uint64_t x)
{
	uint64_t p = 4096;

	while (p < x)
		p <<= 1;
	return p;
}

size_t urt_kv_buf_region_bytes(const struct urt_kv_opts *o, unsigned ncores)
{
	unsigned shards, per_core;
	uint32_t page = o->page_size ? o->page_size : 4096;
	uint64_t tx_pages = kv_tx_pages(o->batch_bytes_max, page);
	uint64_t cache_pages, per_shard;

	if (ncores == 0)
		ncores = 1;
	shards = o->shards ? o->shards : ncores;
	per_core = (shards + ncores - 1) / ncores;
	cache_pages = o->cache_bytes / shards / page;

	if (cache_pages < 4 * tx_pages + 256)
		cache_pages = 4 * tx_pages + 256;
	/*
	 * Pool frames, two log batches, the page copies of KV_TX_COPY_SETS
	 * transactions (kv_impl.h), the copies the pool keeps after commit, the
	 * store's own pages.
	 */
	per_shard = cache_pages * page + 2 * pow2_at_least(o->batch_bytes_max) +
		    KV_TX_COPY_SETS * tx_pages * page + kv_copies_kept(cache_pages) * page + (64u << 10);
	/* Slack for the runtime's own buffers and fragmentation of the size classes. */
	return (size_t)((per_core * per_shard + (16ull << 20) + (2u << 20) - 1) & ~((2ull << 20) - 1));
}

unsigned urt_kv_shards(const struct urt_kv *kv)
{
	return kv->nshards;
}

int urt_kv_file_id(const struct urt_kv *kv, uint64_t *dev, uint64_t *ino)
{
	struct stat st;

	if (kv->lock_fd < 0)
		return -ENOTSUP;
	if (fstat(kv->lock_fd, &st) != 0)
		return -errno;
	*dev = (uint64_t)st.st_dev;
	*ino = (uint64_t)st.st_ino;
	return 0;
}

unsigned urt_kv_shard_of(const struct urt_kv *kv, const void *key, size_t klen)
{
	/* One shard: nothing to choose, and no hash to pay (about 90 instructions a request). */
	if (kv->nshards == 1)
		return 0;
	return (unsigned)(kv_hash64(key, klen, 0) % kv->nshards);
}

unsigned urt_kv_shard_core(const struct urt_kv *kv, unsigned shard)
{
	return shard % kv->ncores;
}

/* Posting with back-pressure: a full queue is retried from a fiber, refused otherwise. */
static int post(struct urt_kv *kv, unsigned core, void (*fn)(void *), void *arg)
{
	for (;;) {
		int ret = urt_core_post(kv->rt, core, fn, arg);

		if (ret != -EAGAIN || !urt_in_fiber())
			return ret;
		urt_fiber_yield();
	}
}

/* Requests. */

static bool is_read(unsigned op)
{
	return op == URT_KV_OP_GET || op == URT_KV_OP_EXISTS;
}

static void req_finish(struct urt_kv_req *req)
{
	/* Read before done(req), which may end req's lifetime. */
	atomic_long *inflight = &req->kv->inflight[req->origin].inflight;

	req->done(req);
	/* After this, close may free kv: touch nothing. */
	atomic_fetch_sub_explicit(inflight, 1, memory_order_release);
}

static void req_finish_posted(void *arg)
{
	req_finish(arg);
}

void kv_req_complete(struct urt_kv_req *req)
{
	int ret;

	if (req->origin == urt_core_id()) {
		req_finish(req);
		return;
	}
	ret = post(req->kv, req->origin, req_finish_posted, req);
	/* Fails only when the runtime stops under a live store (a usage error). */
	URT_ASSERT(ret == 0);
}

static void req_arrive(void *arg)
{
	struct urt_kv_req *req = arg;
	struct kv_shard *s = req->kv->shards[req->shard];

	s->forwarded++;
	if (is_read(req->op))
		kv_shard_read_async(s, req);
	else
		kv_shard_write(s, req);
}

static int req_check(const struct urt_kv_req *req)
{
	unsigned allowed;

	switch (req->op) {
	case URT_KV_OP_GET:
	case URT_KV_OP_EXISTS:
		allowed = 0;
		break;
	case URT_KV_OP_PUT:
		allowed = URT_KV_NX | URT_KV_XX | URT_KV_NOSYNC | URT_KV_KEEPTTL;
		if ((req->flags & (URT_KV_NX | URT_KV_XX)) == (URT_KV_NX | URT_KV_XX))
			return -EINVAL;
		if ((req->flags & URT_KV_KEEPTTL) && req->expire_at != 0)
			return -EINVAL;
		if (req->vlen > URT_KV_VALUE_MAX)
			return URT_E_TOOBIG;
		if (req->vlen && !req->val)
			return -EINVAL;
		break;
	case URT_KV_OP_UPDATE:
		allowed = URT_KV_READVAL | URT_KV_NOSYNC;
		if (!req->update)
			return -EINVAL;
		break;
	case URT_KV_OP_DEL:
	case URT_KV_OP_INCR:
	case KV_OP_CLEAR:
		allowed = URT_KV_NOSYNC;
		break;
	default:
		return -EINVAL;
	}
	if (req->flags & ~allowed)
		return -EINVAL;
	if (req->op == KV_OP_CLEAR)
		return 0;
	if (req->klen == 0 || !req->key)
		return -EINVAL;
	if (req->klen > URT_KV_KEY_MAX)
		return URT_E_TOOBIG;
	if (req->op == URT_KV_OP_GET && req->buf_len && !req->buf)
		return -EINVAL;
	return 0;
}

/*
 * Counts n requests of this core in flight, then looks at closing (both
 * sequentially consistent): with urt_kv_close's store of closing and its
 * reads of the counts, either this submit sees closing or close sees the
 * count.  -ESHUTDOWN, nothing counted, once the store is closing.
 */
static int inflight_enter(struct urt_kv *kv, unsigned core, long n)
{
	atomic_fetch_add(&kv->inflight[core].inflight, n);
	if (atomic_load(&kv->closing)) {
		atomic_fetch_sub(&kv->inflight[core].inflight, n);
		return -ESHUTDOWN;
	}
	return 0;
}

/* The store's private fields of a request started on core for shard. */
static void req_bind(struct urt_kv_req *req, struct urt_kv *kv, unsigned core, unsigned shard)
{
	req->kv = kv;
	req->origin = core;
	req->shard = shard;
}

/* What urt_kv_submit refuses before routing: a bad request, or the internal CLEAR. */
static int submit_check(const struct urt_kv_req *req)
{
	int ret = req_check(req);

	if (ret == 0 && req->op == KV_OP_CLEAR)
		ret = -EINVAL;	/* Internal: urt_kv_clear only. */
	return ret;
}

/* Starts req on shard (already validated). */
static int submit_to(struct urt_kv *kv, struct urt_kv_req *req, unsigned shard)
{
	unsigned core = urt_core_id();
	struct kv_shard *s;
	int ret;

	URT_ASSERT(core != URT_CORE_NONE && core < kv->ncores && req->done != NULL);
	ret = inflight_enter(kv, core, 1);
	if (ret)
		return ret;
	req_bind(req, kv, core, shard);
	s = kv->shards[shard];
	if (s->core == core) {
		if (!is_read(req->op)) {
			kv_shard_write(s, req);
		} else if (urt_in_fiber()) {
			kv_shard_read(s, req);
			req_finish(req);
		} else {
			kv_shard_read_async(s, req);
		}
		return 0;
	}
	ret = post(kv, s->core, req_arrive, req);
	if (ret)
		atomic_fetch_sub(&kv->inflight[core].inflight, 1);
	return ret;
}

/*
 * Runs reqs[0, n), reads of the local shard `shard` (validated, in a
 * fiber), in one read transaction, counted and finished as submit_to
 * counts and finishes a local read.  Returns -ESHUTDOWN, none started, if
 * the store is closing.
 */
static int submit_reads_local(struct urt_kv *kv, struct urt_kv_req *const *reqs, size_t n,
			      unsigned shard)
{
	unsigned core = urt_core_id();
	int ret = inflight_enter(kv, core, (long)n);

	if (ret)
		return ret;
	for (size_t i = 0; i < n; i++)
		req_bind(reqs[i], kv, core, shard);
	kv_shard_read_many(kv->shards[shard], reqs, n);
	for (size_t i = 0; i < n; i++)
		req_finish(reqs[i]);
	return 0;
}

/* Reads of one urt_kv_submit_batch segment grouped at most (a bitmap on the stack). */
#define KV_BATCH_SEGMENT 256u

/*
 * A segment of reads, all valid, their shards in req->shard: the local
 * ones run grouped by shard (reads do not conflict, so their order among
 * themselves is free), the others start one by one.
 */
static void submit_read_segment(struct urt_kv *kv, struct urt_kv_req *const *reqs, size_t n,
				size_t *failed)
{
	unsigned core = urt_core_id();
	uint64_t done[KV_BATCH_SEGMENT / 64] = { 0 };
	struct urt_kv_req *group[KV_READ_GROUP];

	URT_ASSERT(n <= KV_BATCH_SEGMENT);
	for (size_t i = 0; i < n; i++) {
		unsigned shard = reqs[i]->shard;
		size_t ng = 0;
		int ret;

		if (done[i / 64] & (1ull << (i % 64)))
			continue;
		if (kv->shards[shard]->core != core) {
			ret = submit_to(kv, reqs[i], shard);
			if (ret) {
				reqs[i]->res = ret;
				(*failed)++;
			}
			continue;
		}
		for (size_t j = i; j < n && ng < KV_READ_GROUP; j++) {
			if (reqs[j]->shard != shard || (done[j / 64] & (1ull << (j % 64))))
				continue;
			done[j / 64] |= 1ull << (j % 64);
			group[ng++] = reqs[j];
		}
		ret = ng > 1 ? submit_reads_local(kv, group, ng, shard) : submit_to(kv, group[0], shard);
		if (ret) {
			for (size_t k = 0; k < ng; k++)
				group[k]->res = ret;
			*failed += ng;
		}
	}
}

size_t urt_kv_submit_batch(struct urt_kv *kv, struct urt_kv_req *const *reqs, size_t n)
{
	bool fiber = urt_in_fiber();
	size_t failed = 0, i = 0;

	URT_ASSERT(urt_core_id() != URT_CORE_NONE && urt_core_id() < kv->ncores);
	while (i < n) {
		struct urt_kv_req *req = reqs[i];
		size_t j = i + 1;
		int ret = submit_check(req);

		if (ret) {
			req->res = ret;
			failed++;
			i++;
			continue;
		}
		if (fiber && is_read(req->op)) {
			/* req and the valid reads that follow: a segment that writes do not cut. */
			req->shard = urt_kv_shard_of(kv, req->key, req->klen);
			while (j < n && j - i < KV_BATCH_SEGMENT && is_read(reqs[j]->op) &&
			       req_check(reqs[j]) == 0) {
				reqs[j]->shard = urt_kv_shard_of(kv, reqs[j]->key, reqs[j]->klen);
				j++;
			}
			submit_read_segment(kv, reqs + i, j - i, &failed);
			i = j;
			continue;
		}
		ret = submit_to(kv, req, urt_kv_shard_of(kv, req->key, req->klen));
		if (ret) {
			req->res = ret;
			failed++;
		}
		i++;
	}
	return failed;
}

int kv_submit_shard(struct urt_kv *kv, struct urt_kv_req *req, unsigned shard)
{
	return submit_to(kv, req, shard);
}

int urt_kv_submit(struct urt_kv *kv, struct urt_kv_req *req)
{
	int ret = submit_check(req);

	if (ret)
		return ret;
	return submit_to(kv, req, urt_kv_shard_of(kv, req->key, req->klen));
}

/*
 * Blocking calls: submit, then wait in the calling fiber until the
 * requests' done callbacks have run.  These wait for requests that travel
 * through the shards' queues (ordered with every other write of the
 * shard), not for functions run on a core, so urt_core_run_jobs does not
 * apply: a kv_wait counts the acknowledgements still to come.
 */

struct kv_wait {
	struct urt_waitq wq;	/* The waiting fiber. */
	unsigned pending;	/* Requests not done yet. */
};

static void wait_done(struct urt_kv_req *req)
{
	struct kv_wait *w = req->arg;

	if (--w->pending == 0)
		urt_waitq_wake_one(&w->wq);
}

static void wait_all(struct kv_wait *w)
{
	while (w->pending)
		urt_waitq_wait(&w->wq);
}

static int call(struct urt_kv *kv, struct urt_kv_req *req)
{
	struct kv_wait w = { .pending = 1 };
	int ret;

	URT_ASSERT(urt_in_fiber());
	req->done = wait_done;
	req->arg = &w;
	ret = urt_kv_submit(kv, req);
	if (ret)
		return ret;
	wait_all(&w);
	return req->res;
}

int urt_kv_get(struct urt_kv *kv, const void *key, size_t klen, void *buf, size_t buf_len,
	       size_t *vlen)
{
	struct urt_kv_req req = { .op = URT_KV_OP_GET, .key = key, .klen = klen, .buf = buf,
				  .buf_len = buf_len };
	int ret = call(kv, &req);

	if (vlen)
		*vlen = req.vlen_out;
	return ret;
}

int urt_kv_get_expire(struct urt_kv *kv, const void *key, size_t klen, void *buf,
		      size_t buf_len, size_t *vlen, uint64_t *expire_at)
{
	struct urt_kv_req req = { .op = URT_KV_OP_GET, .key = key, .klen = klen, .buf = buf,
				  .buf_len = buf_len };
	int ret = call(kv, &req);

	if (vlen)
		*vlen = req.vlen_out;
	if (expire_at)
		*expire_at = ret == 0 ? req.expire_out : 0;
	return ret;
}

uint64_t urt_kv_now_ms(const struct urt_kv *kv)
{
	struct timespec ts;

	if (kv->opts.clock_ms)
		return kv->opts.clock_ms(kv->opts.clock_arg);
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int urt_kv_put_expire(struct urt_kv *kv, const void *key, size_t klen, const void *val,
		      size_t vlen, uint64_t expire_at, unsigned flags)
{
	struct urt_kv_req req = { .op = URT_KV_OP_PUT, .key = key, .klen = klen, .val = val,
				  .vlen = vlen, .flags = flags, .expire_at = expire_at };

	return call(kv, &req);
}

int urt_kv_update(struct urt_kv *kv, struct urt_kv_req *req)
{
	req->op = URT_KV_OP_UPDATE;
	return call(kv, req);
}

int urt_kv_exists(struct urt_kv *kv, const void *key, size_t klen)
{
	struct urt_kv_req req = { .op = URT_KV_OP_EXISTS, .key = key, .klen = klen };

	return call(kv, &req);
}

int urt_kv_put(struct urt_kv *kv, const void *key, size_t klen, const void *val, size_t vlen,
	       unsigned flags)
{
	struct urt_kv_req req = { .op = URT_KV_OP_PUT, .flags = flags, .key = key, .klen = klen,
				  .val = val, .vlen = vlen };

	return call(kv, &req);
}

int urt_kv_del(struct urt_kv *kv, const void *key, size_t klen, unsigned flags)
{
	struct urt_kv_req req = { .op = URT_KV_OP_DEL, .flags = flags, .key = key, .klen = klen };

	return call(kv, &req);
}

int urt_kv_incr(struct urt_kv *kv, const void *key, size_t klen, int64_t delta, unsigned flags,
		int64_t *result)
{
	struct urt_kv_req req = { .op = URT_KV_OP_INCR, .flags = flags, .key = key, .klen = klen,
				  .delta = delta };
	int ret = call(kv, &req);

	if (ret == 0 && result)
		*result = req.num;
	return ret;
}

int urt_kv_clear(struct urt_kv *kv, unsigned flags)
{
	struct urt_kv_req *reqs;
	struct kv_wait w = { 0 };
	int ret = 0;

	URT_ASSERT(urt_in_fiber());
	if (flags & ~(unsigned)URT_KV_NOSYNC)
		return -EINVAL;
	reqs = calloc(kv->nshards, sizeof(*reqs));
	if (!reqs)
		return -ENOMEM;
	for (unsigned i = 0; i < kv->nshards; i++) {
		int r;

		reqs[i] = (struct urt_kv_req){ .op = KV_OP_CLEAR, .flags = flags, .done = wait_done,
					       .arg = &w };
		w.pending++;
		r = submit_to(kv, &reqs[i], i);
		if (r) {
			w.pending--;
			reqs[i].res = r;
		}
	}
	wait_all(&w);
	for (unsigned i = 0; i < kv->nshards && ret == 0; i++)
		ret = reqs[i].res;
	free(reqs);
	return ret;
}

/*
 * Work on shards: job i runs fn(kv, i, arg) on shard i's core, all at once
 * (urt_core_run_jobs); the caller waits for every one.
 */

/* Work on one shard, on its core; returns 0 or an error. */
typedef int (*kv_shard_fn)(struct urt_kv *kv, unsigned shard, void *arg);

/* The argument of one shard's job. */
struct shard_call {
	struct urt_kv *kv;	/* Store. */
	unsigned shard;		/* Shard it works on. */
	kv_shard_fn fn;		/* The work. */
	void *arg;		/* The operation's argument, the same for every shard. */
};
_Static_assert(sizeof(struct urt_core_job) % _Alignof(struct shard_call) == 0,
	       "shard_jobs_alloc places the calls right after the jobs");

static int shard_call_main(void *arg)
{
	struct shard_call *c = arg;

	return c->fn(c->kv, c->shard, c->arg);
}

/* The jobs of n shards and, after them, their calls, in one block; NULL without memory. */
static struct urt_core_job *shard_jobs_alloc(unsigned n)
{
	return calloc(n, sizeof(struct urt_core_job) + sizeof(struct shard_call));
}

/* Runs fn on shards [0, n) in jobs from shard_jobs_alloc(n); returns the first error by shard. */
static int shard_jobs_run(struct urt_kv *kv, struct urt_core_job *jobs, unsigned n, kv_shard_fn fn,
			  void *arg)
{
	struct shard_call *calls = (struct shard_call *)(jobs + n);

	for (unsigned i = 0; i < n; i++) {
		calls[i] = (struct shard_call){ .kv = kv, .shard = i, .fn = fn, .arg = arg };
		jobs[i] = (struct urt_core_job){ .core = urt_kv_shard_core(kv, i),
						 .fn = shard_call_main, .arg = &calls[i] };
	}
	return urt_core_run_jobs(kv->rt, jobs, n);
}

static int count_one(struct urt_kv *kv, unsigned shard, void *arg)
{
	uint64_t *counts = arg;

	return kv_shard_count(kv->shards[shard], &counts[shard]);
}

int urt_kv_count(struct urt_kv *kv, uint64_t *count)
{
	struct urt_core_job *jobs = shard_jobs_alloc(kv->nshards);
	uint64_t *counts = calloc(kv->nshards, sizeof(*counts));
	int ret = -ENOMEM;

	URT_ASSERT(urt_in_fiber());
	if (jobs && counts) {
		ret = shard_jobs_run(kv, jobs, kv->nshards, count_one, counts);
		*count = 0;
		for (unsigned i = 0; i < kv->nshards; i++)
			*count += counts[i];
	}
	free(counts);
	free(jobs);
	return ret;
}

static int checkpoint_one(struct urt_kv *kv, unsigned shard, void *arg)
{
	(void)arg;
	return kv_shard_checkpoint(kv->shards[shard]);
}

int urt_kv_checkpoint(struct urt_kv *kv)
{
	struct urt_core_job *jobs = shard_jobs_alloc(kv->nshards);
	int ret = -ENOMEM;

	URT_ASSERT(urt_in_fiber());
	if (jobs)
		ret = shard_jobs_run(kv, jobs, kv->nshards, checkpoint_one, NULL);
	free(jobs);
	return ret;
}

static int stats_one(struct urt_kv *kv, unsigned shard, void *arg)
{
	return kv_shard_stats(kv->shards[shard], arg);
}

int urt_kv_shard_stats(struct urt_kv *kv, unsigned shard, struct urt_kv_shard_stats *out)
{
	struct shard_call call = { .kv = kv, .shard = shard, .fn = stats_one, .arg = out };

	URT_ASSERT(urt_in_fiber());
	if (shard >= kv->nshards)
		return -EINVAL;
	return urt_core_run(kv->rt, urt_kv_shard_core(kv, shard), shard_call_main, &call);
}

/* Scan: each shard fills a slice of the caller's buffer; the slices are merged here. */

static int scan_one(struct urt_kv *kv, unsigned shard, void *arg)
{
	struct kv_scan_part *parts = arg;

	kv_shard_scan(kv->shards[shard], &parts[shard]);
	return parts[shard].res;
}

int urt_kv_cursor_init(struct urt_kv_cursor *c, const void *start, size_t slen)
{
	if (slen > URT_KV_KEY_MAX)
		return URT_E_TOOBIG;
	if (slen && !start)
		return -EINVAL;
	if (slen)
		memcpy(c->key, start, slen);	/* memcpy(NULL, 0) is undefined. */
	c->klen = slen;
	c->exclusive = false;
	c->done = false;
	c->need_bytes = 0;
	return 0;
}

/* Cursor over one shard's packed entries. */
struct scan_pos {
	const uint8_t *p;	/* Next record. */
	size_t left;		/* Records left. */
};

static void rec_read(const uint8_t *p, struct kv_scan_rec *rec)
{
	memcpy(rec, p, sizeof(*rec));
}

static int key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static size_t rec_size(const struct kv_scan_rec *rec)
{
	return (sizeof(*rec) + rec->klen + rec->vcopied + 7) & ~(size_t)7;
}

int urt_kv_scan(struct urt_kv *kv, struct urt_kv_cursor *c, struct urt_kv_entry *ents, size_t max,
		void *buf, size_t buf_len, unsigned flags)
{
	unsigned n = kv->nshards;
	struct kv_scan_part *parts;
	struct scan_pos *pos;
	struct urt_core_job *jobs;
	size_t slice = (buf_len / n) & ~(size_t)7, count = 0, need = 0;
	const uint8_t *bound = NULL;
	size_t bound_len = 0;
	bool bounded = false, more = false;
	int ret;

	URT_ASSERT(urt_in_fiber());
	if (flags & ~(unsigned)URT_KV_KEYS_ONLY)
		return -EINVAL;
	if (c->done || max == 0)
		return 0;
	parts = calloc(n, sizeof(*parts));
	pos = calloc(n, sizeof(*pos));
	jobs = shard_jobs_alloc(n);
	if (!parts || !pos || !jobs) {
		ret = -ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < n; i++) {
		parts[i] = (struct kv_scan_part){
			.start = c->key, .slen = c->klen, .exclusive = c->exclusive,
			.keys_only = flags & URT_KV_KEYS_ONLY, .max = max,
			.buf = (uint8_t *)buf + i * slice, .buf_len = slice,
		};
	}
	ret = shard_jobs_run(kv, jobs, n, scan_one, parts);
	if (ret)
		goto out;

	/*
	 * A shard that stopped early (more) may hold keys just after its last
	 * one: nothing past the smallest such last key can be returned yet.
	 */
	for (unsigned i = 0; i < n; i++) {
		pos[i].p = parts[i].buf;
		pos[i].left = parts[i].count;
		if (!parts[i].more)
			continue;
		more = true;
		if (parts[i].count == 0) {
			/* Could not return even one entry: nothing may pass the cursor. */
			bounded = true;
			bound = c->key;
			bound_len = c->klen;
			if (parts[i].need > need)
				need = parts[i].need;
			continue;
		}
		{
			const uint8_t *p = parts[i].buf;
			struct kv_scan_rec rec;

			for (size_t k = 0; k + 1 < parts[i].count; k++) {
				rec_read(p, &rec);
				p += rec_size(&rec);
			}
			rec_read(p, &rec);
			if (!bounded || key_cmp(p + sizeof(rec), rec.klen, bound, bound_len) < 0) {
				bounded = true;
				bound = p + sizeof(rec);
				bound_len = rec.klen;
			}
		}
	}
	while (count < max) {
		int best = -1;
		struct kv_scan_rec brec = { 0 };

		for (unsigned i = 0; i < n; i++) {
			struct kv_scan_rec rec;

			if (!pos[i].left)
				continue;
			rec_read(pos[i].p, &rec);
			if (best < 0 || key_cmp(pos[i].p + sizeof(rec), rec.klen,
						pos[best].p + sizeof(brec), brec.klen) < 0) {
				best = (int)i;
				brec = rec;
			}
		}
		if (best < 0)
			break;
		if (bounded && key_cmp(pos[best].p + sizeof(brec), brec.klen, bound, bound_len) > 0)
			break;
		ents[count].key = pos[best].p + sizeof(brec);
		ents[count].klen = brec.klen;
		ents[count].val = (flags & URT_KV_KEYS_ONLY) ? NULL
							      : pos[best].p + sizeof(brec) + brec.klen;
		ents[count].vlen = brec.vlen;
		count++;
		pos[best].p += rec_size(&brec);
		pos[best].left--;
	}
	if (count == 0 && more) {
		c->need_bytes = need * n;
		urt_set_error("kv: scan buffer too small: %zu bytes per shard, an entry needs %zu",
			      slice, need);
		ret = -ENOSPC;
		goto out;
	}
	if (count > 0) {
		memcpy(c->key, ents[count - 1].key, ents[count - 1].klen);
		c->klen = ents[count - 1].klen;
		c->exclusive = true;
	}
	c->done = !more;
	for (unsigned i = 0; i < n; i++)
		if (pos[i].left)
			c->done = false;
	ret = (int)count;
out:
	free(jobs);
	free(pos);
	free(parts);
	return ret;
}

/* Open and close. */

/* Shards of a new store: as asked, else one per core. */
static unsigned shards_wanted(const struct urt_kv *kv)
{
	return kv->opts.shards ? kv->opts.shards : kv->ncores;
}

/*
 * Keeps the message of a failed open job (it ran on a core's thread, whose
 * urt_last_error the caller of urt_kv_open cannot see); the first one wins.
 */
static void open_msg_keep(struct urt_kv *kv, int ret, const char *what)
{
	bool none = false;
	const char *msg = urt_last_error();

	if (ret == 0 || !atomic_compare_exchange_strong(&kv->open_msg_set, &none, true))
		return;
	if (msg && *msg)
		snprintf(kv->open_msg, sizeof(kv->open_msg), "%s", msg);
	else
		snprintf(kv->open_msg, sizeof(kv->open_msg), "kv: %s: %s", what, urt_strerror(ret));
}

/* Reads the store header, or writes a new one on a blank device (device I/O: in a fiber). */
static int hdr_load(void *arg)
{
	struct urt_kv *kv = arg;
	int ret;

	urt_set_error("%s", "");
	ret = kv_layout_load(kv->dev, &kv->opts, shards_wanted(kv), &kv->hdr);
	open_msg_keep(kv, ret, "reading the store header");
	return ret;
}

static int open_one(struct urt_kv *kv, unsigned shard, void *arg)
{
	char what[32];
	int ret;

	(void)arg;
	urt_set_error("%s", "");
	ret = kv_shard_open(kv, shard, &kv->shards[shard]);
	snprintf(what, sizeof(what), "opening shard %u", shard);
	open_msg_keep(kv, ret, what);
	return ret;
}

static int close_one(struct urt_kv *kv, unsigned shard, void *arg)
{
	int ret;

	(void)arg;
	if (!kv->shards[shard])
		return 0;
	ret = kv_shard_close(kv->shards[shard]);
	kv->shards[shard] = NULL;
	return ret;
}

static int dev_open(struct urt_kv *kv, const char *path)
{
	struct urt_dev_opts o;
	struct stat st;
	int ret;

	if (strncmp(path, "sim:", 4) == 0) {
		/*
		 * The simulated device (urt_sim_opts_parse has the syntax): no
		 * file to create, claim or check; urt_dev_open parses it and
		 * names what is wrong.  Its store lives as long as the process.
		 */
		urt_dev_opts_default(&o);
		ret = urt_dev_open(path, &o, &kv->dev);
		kv->own_dev = ret == 0;
		return ret;
	}
	if (stat(path, &st) != 0) {
		if (errno != ENOENT || !kv->opts.create) {
			ret = -errno;
			urt_set_error("kv: %s: %s", path, strerror(errno));
			return ret;
		}
		ret = kv_layout_file_create(&kv->opts, path, shards_wanted(kv), &kv->lock_fd);
		if (ret)
			return ret;
		kv->fresh = true;
	} else if (S_ISREG(st.st_mode) && st.st_size == 0) {
		/* An empty file is not a store, and not ours to fill (it may be a mistake). */
		urt_set_error("kv: %s is an empty file (0 bytes), not a store; delete it to have a new "
			      "store of %llu bytes created there (the size option), or name another "
			      "file", path, (unsigned long long)kv->opts.size_bytes);
		return URT_E_BADFORMAT;
	}
	/* One store per file, and no format over someone's data (layout.c invariants 3, 4). */
	if (!kv->fresh) {
		ret = kv_layout_claim(path, kv->opts.create, &kv->lock_fd);
		if (ret)
			return ret;
	}
	if (kv_layout_open_hook)
		kv_layout_open_hook(path);
	urt_dev_opts_default(&o);
	ret = urt_dev_open(path, &o, &kv->dev);
	if (ret == -EINVAL) {
		/* No O_DIRECT on this file system (tmpfs): the page cache, with the same flushes. */
		o.direct = false;
		ret = urt_dev_open(path, &o, &kv->dev);
	}
	if (ret)
		return ret;
	kv->own_dev = true;
	/* The device must be the file locked (and checked) above, not one moved over the path since. */
	return kv_layout_same_file(path, kv->lock_fd, urt_dev_info(kv->dev));
}

static int opts_check(const struct urt_kv_opts *o)
{
	const char *why = NULL;

	if (!o->path == !o->dev)
		why = "exactly one of path and dev must be set";
	else if (o->page_size && o->page_size != 4096 && o->page_size != 8192 && o->page_size != 16384)
		why = "page_size must be 0, 4096, 8192 or 16384";
	else if (o->batch_bytes_max < 256u * 1024 || o->batch_bytes_max > URT_BUF_MAX_BYTES)
		why = "batch_bytes_max must lie in [256 KiB, 4 MiB]";
	else if (o->shards > URT_KV_SHARDS_MAX)
		why = "too many shards";
	else if (o->readers_max == 0 || o->readers_max > 4096)
		why = "readers_max must lie in [1, 4096]";
	else if (o->expire_interval_ms > 0 && o->expire_scan_keys == 0)
		why = "expire_scan_keys must be at least 1 (or expire_interval_ms 0: no active expiry)";
	if (why) {
		urt_set_error("kv: invalid options: %s", why);
		return -EINVAL;
	}
	return 0;
}

static void kv_free(struct urt_kv *kv)
{
	if (kv->own_dev)
		urt_dev_close(kv->dev);
	if (kv->lock_fd >= 0)
		close(kv->lock_fd);	/* Releases the store's lock, after the device is closed. */
	free(kv->inflight);
	free(kv);
}

int urt_kv_open(struct urt_rt *rt, const struct urt_kv_opts *o, struct urt_kv **out)
{
	struct urt_core_job *jobs = NULL;
	struct urt_kv *kv;
	int ret;

	ret = opts_check(o);
	if (ret)
		return ret;
	kv = calloc(1, sizeof(*kv));
	if (!kv)
		return -ENOMEM;
	kv->rt = rt;
	kv->lock_fd = -1;
	kv->opts = *o;
	kv->opts.path = NULL;
	kv->ncores = urt_rt_ncores(rt);
	atomic_init(&kv->closing, false);
	kv->inflight = aligned_alloc(URT_CACHELINE, kv->ncores * sizeof(*kv->inflight));
	if (!kv->inflight) {
		free(kv);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < kv->ncores; i++)
		atomic_init(&kv->inflight[i].inflight, 0);
	if (o->path) {
		ret = dev_open(kv, o->path);
		if (ret)
			goto err_free;
	} else {
		kv->dev = o->dev;
	}
	/* Core 0, which runs shard 0, reads the header. */
	ret = urt_core_run(rt, 0, hdr_load, kv);
	if (ret)
		goto err_msg;
	kv->nshards = kv->hdr.shard_count;
	/* A batch may take at most a quarter of the log (the page store's rule). */
	kv->batch_bytes = o->batch_bytes_max;
	if (kv->batch_bytes > kv->hdr.log_bytes / 4)
		kv->batch_bytes = (uint32_t)(kv->hdr.log_bytes / 4);
	/* One block of jobs for both runs: closing after a failed open needs no memory. */
	jobs = shard_jobs_alloc(kv->nshards);
	if (!jobs) {
		ret = -ENOMEM;
		goto err_free;
	}
	ret = shard_jobs_run(kv, jobs, kv->nshards, open_one, NULL);
	if (ret) {
		shard_jobs_run(kv, jobs, kv->nshards, close_one, NULL);
		goto err_msg;
	}
	free(jobs);
	*out = kv;
	return 0;

err_msg:
	if (atomic_load(&kv->open_msg_set))
		urt_set_error("%s", kv->open_msg);
err_free:
	free(jobs);
	kv_free(kv);
	return ret;
}

/* Requests submitted and not yet done, over all cores (urt_kv_close, after closing is set). */
static long kv_inflight(struct urt_kv *kv)
{
	long n = 0;

	for (unsigned i = 0; i < kv->ncores; i++)
		n += atomic_load(&kv->inflight[i].inflight);
	return n;
}

int urt_kv_close(struct urt_kv *kv)
{
	struct urt_core_job *jobs = shard_jobs_alloc(kv->nshards);
	int ret;

	atomic_store(&kv->closing, true);
	/* Every accepted request completes first, so none arrives at a stopped shard. */
	while (kv_inflight(kv) > 0) {
		if (urt_in_fiber())
			urt_sleep_ns(100000);
		else
			usleep(100);
	}
	URT_ASSERT(jobs != NULL);
	ret = shard_jobs_run(kv, jobs, kv->nshards, close_one, NULL);
	free(jobs);
	kv_free(kv);
	return ret;
}
