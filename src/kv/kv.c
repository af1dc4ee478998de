/*
 * The key-value store's public API: open and close, routing of keys to
 * shards, forwarding of requests to the core that owns a shard, and the
 * operations that span every shard (count, clear, scan, checkpoint).
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
 *
 * Work on every shard (open, close, count, scan, ...) runs as one job per
 * shard, a fiber spawned on the shard's core; the caller waits for all of
 * them on a semaphore (a thread outside the runtime) or a wait queue woken
 * by a post (a fiber).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kv/kv_impl.h"
#include "base/error.h"
#include "urt/buf.h"
#include "urt/dev.h"
#include "urt/error.h"
#include "urt/rt.h"


#define KV_LOG_MAX (1ull << 30)		/* Largest automatic log per shard. */
#define KV_REGION_PAGES_MIN 256u	/* Smallest page region a shard may have. */
#define KV_ZERO_CHUNK (1u << 20)	/* Unit of zero-filling a new file's logs. */

void kv_check_failed(const char *file, int line, const char *what)
{
	fprintf(stderr, "%s:%d: kv: assertion '%s' failed\n", file, line, what);
	abort();
}

void urt_kv_opts_default(struct urt_kv_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->create = true;
	o->size_bytes = 1ull << 30;
	o->cache_bytes = 64ull << 20;
	o->batch_bytes_max = 2u << 20;
	o->sync = URT_PS_SYNC_AUTO;
	o->readers_max = 64;
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
	/* Pool frames, two log batches, the committers' page copies, the store's own pages. */
	per_shard = cache_pages * page + 2 * pow2_at_least(o->batch_bytes_max) +
		    KV_WRITERS * tx_pages * page + (64u << 10);
	/* Slack for the runtime's own buffers and fragmentation of the size classes. */
	return (size_t)((per_core * per_shard + (16ull << 20) + (2u << 20) - 1) & ~((2ull << 20) - 1));
}

unsigned urt_kv_shards(const struct urt_kv *kv)
{
	return kv->nshards;
}

unsigned urt_kv_shard_of(const struct urt_kv *kv, const void *key, size_t klen)
{
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
	struct urt_kv *kv = req->kv;

	req->done(req);
	/* After this, close may free kv: touch nothing. */
	atomic_fetch_sub(&kv->inflight, 1);
}

static void req_finish_posted(void *arg)
{
	req_finish(arg);
}

void kv_req_complete(struct urt_kv_req *req)
{
	if (req->origin == urt_core_id()) {
		req_finish(req);
		return;
	}
	/* Fails only when the runtime stops under a live store (a usage error). */
	KV_CHECK(post(req->kv, req->origin, req_finish_posted, req) == 0);
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
		allowed = URT_KV_NX | URT_KV_XX | URT_KV_NOSYNC;
		if ((req->flags & (URT_KV_NX | URT_KV_XX)) == (URT_KV_NX | URT_KV_XX))
			return -EINVAL;
		if (req->vlen > URT_KV_VALUE_MAX)
			return URT_E_TOOBIG;
		if (req->vlen && !req->val)
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

/* Starts req on shard (already validated). */
static int submit_to(struct urt_kv *kv, struct urt_kv_req *req, unsigned shard)
{
	unsigned core = urt_core_id();
	struct kv_shard *s;
	int ret;

	KV_CHECK(core != URT_CORE_NONE && req->done != NULL);
	atomic_fetch_add(&kv->inflight, 1);
	if (atomic_load(&kv->closing)) {
		atomic_fetch_sub(&kv->inflight, 1);
		return -ESHUTDOWN;
	}
	req->kv = kv;
	req->origin = core;
	req->shard = shard;
	req->next = NULL;
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
		atomic_fetch_sub(&kv->inflight, 1);
	return ret;
}

int urt_kv_submit(struct urt_kv *kv, struct urt_kv_req *req)
{
	int ret = req_check(req);

	if (ret)
		return ret;
	if (req->op == KV_OP_CLEAR)
		return -EINVAL;	/* Internal: urt_kv_clear only. */
	return submit_to(kv, req, urt_kv_shard_of(kv, req->key, req->klen));
}

/* Blocking calls: submit, then wait in the calling fiber. */

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

	KV_CHECK(urt_in_fiber());
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

	KV_CHECK(urt_in_fiber());
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

/* Jobs: a function run in a fiber on each shard's core, waited for by the caller. */

struct kv_fan {
	struct urt_kv *kv;	/* Store. */
	bool thread;		/* The waiter is a thread outside the runtime. */
	unsigned origin;	/* Else: its core. */
	sem_t sem;		/* Thread waiter: one post per job. */
	struct kv_wait w;	/* Fiber waiter. */
};

struct kv_job {
	struct kv_fan *fan;	/* Shared by the jobs of one call. */
	unsigned shard;		/* Shard it works on. */
	void (*fn)(struct kv_job *job);	/* Work, on the shard's core. */
	void *arg;		/* Per-call argument. */
	int res;		/* Result. */
};

static void fan_one_done(void *arg)
{
	struct kv_fan *fan = arg;

	if (--fan->w.pending == 0)
		urt_waitq_wake_one(&fan->w.wq);
}

static void job_main(void *arg)
{
	struct kv_job *job = arg;
	struct kv_fan *fan = job->fan;

	job->fn(job);
	if (fan->thread)
		sem_post(&fan->sem);
	else if (fan->origin == urt_core_id())
		fan_one_done(fan);
	else
		KV_CHECK(post(fan->kv, fan->origin, fan_one_done, fan) == 0);
}

/* Runs fn for shards [0, n) in parallel and waits; returns the first error. */
static int run_jobs(struct urt_kv *kv, struct kv_job *jobs, unsigned n, void (*fn)(struct kv_job *),
		    void *arg)
{
	struct kv_fan fan = { .kv = kv };
	unsigned started = 0;
	int ret = 0;

	fan.origin = urt_core_id();
	fan.thread = fan.origin == URT_CORE_NONE;
	KV_CHECK(fan.thread || urt_in_fiber());
	if (fan.thread)
		sem_init(&fan.sem, 0, 0);
	for (unsigned i = 0; i < n; i++) {
		jobs[i] = (struct kv_job){ .fan = &fan, .shard = i, .fn = fn, .arg = arg };
		if (!fan.thread)
			fan.w.pending++;
		for (;;) {
			ret = urt_fiber_spawn_on(kv->rt, urt_kv_shard_core(kv, i), job_main, &jobs[i]);
			if (ret != -EAGAIN)
				break;
			/* The core's post queue is full: let it drain. */
			if (fan.thread)
				usleep(100);
			else
				urt_fiber_yield();
		}
		if (ret) {
			if (!fan.thread)
				fan.w.pending--;
			break;
		}
		started++;
	}
	if (fan.thread) {
		for (unsigned i = 0; i < started; i++)
			sem_wait(&fan.sem);
		sem_destroy(&fan.sem);
	} else {
		wait_all(&fan.w);
	}
	for (unsigned i = 0; i < started && ret == 0; i++)
		ret = jobs[i].res;
	return ret;
}

static struct kv_job *jobs_alloc(const struct urt_kv *kv)
{
	return calloc(kv->nshards, sizeof(struct kv_job));
}

static void count_job(struct kv_job *job)
{
	uint64_t *counts = job->arg;
	struct urt_kv *kv = job->fan->kv;

	job->res = kv_shard_count(kv->shards[job->shard], &counts[job->shard]);
}

int urt_kv_count(struct urt_kv *kv, uint64_t *count)
{
	struct kv_job *jobs = jobs_alloc(kv);
	uint64_t *counts = calloc(kv->nshards, sizeof(*counts));
	int ret = -ENOMEM;

	KV_CHECK(urt_in_fiber());
	if (jobs && counts) {
		ret = run_jobs(kv, jobs, kv->nshards, count_job, counts);
		*count = 0;
		for (unsigned i = 0; i < kv->nshards; i++)
			*count += counts[i];
	}
	free(counts);
	free(jobs);
	return ret;
}

static void checkpoint_job(struct kv_job *job)
{
	job->res = kv_shard_checkpoint(job->fan->kv->shards[job->shard]);
}

int urt_kv_checkpoint(struct urt_kv *kv)
{
	struct kv_job *jobs = jobs_alloc(kv);
	int ret = -ENOMEM;

	KV_CHECK(urt_in_fiber());
	if (jobs)
		ret = run_jobs(kv, jobs, kv->nshards, checkpoint_job, NULL);
	free(jobs);
	return ret;
}

struct stats_arg {
	unsigned shard;				/* The shard asked for. */
	struct urt_kv_shard_stats *out;		/* Where its counters go. */
};

static void stats_job(struct kv_job *job)
{
	struct kv_shard *s = job->fan->kv->shards[job->shard];

	job->res = kv_shard_stats(s, job->arg);
}

int urt_kv_shard_stats(struct urt_kv *kv, unsigned shard, struct urt_kv_shard_stats *out)
{
	struct kv_fan fan = { .kv = kv };
	struct kv_job job = { .fan = &fan, .shard = shard, .fn = stats_job, .arg = out };
	int ret;

	KV_CHECK(urt_in_fiber());
	if (shard >= kv->nshards)
		return -EINVAL;
	fan.origin = urt_core_id();
	fan.w.pending = 1;
	do {
		ret = urt_fiber_spawn_on(kv->rt, urt_kv_shard_core(kv, shard), job_main, &job);
		if (ret == -EAGAIN)
			urt_fiber_yield();
	} while (ret == -EAGAIN);
	if (ret)
		return ret;
	wait_all(&fan.w);
	return job.res;
}

/* Scan: each shard fills a slice of the caller's buffer; the slices are merged here. */

struct scan_arg {
	struct kv_scan_part *parts;	/* One per shard. */
};

static void scan_job(struct kv_job *job)
{
	struct scan_arg *a = job->arg;
	struct kv_scan_part *part = &a->parts[job->shard];

	kv_shard_scan(job->fan->kv->shards[job->shard], part);
	job->res = part->res;
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
	struct kv_job *jobs;
	struct scan_arg arg;
	size_t slice = (buf_len / n) & ~(size_t)7, count = 0, need = 0;
	const uint8_t *bound = NULL;
	size_t bound_len = 0;
	bool bounded = false, more = false;
	int ret;

	KV_CHECK(urt_in_fiber());
	if (flags & ~(unsigned)URT_KV_KEYS_ONLY)
		return -EINVAL;
	if (c->done || max == 0)
		return 0;
	parts = calloc(n, sizeof(*parts));
	pos = calloc(n, sizeof(*pos));
	jobs = jobs_alloc(kv);
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
	arg.parts = parts;
	ret = run_jobs(kv, jobs, n, scan_job, &arg);
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

/* Region layout of a device of dev_bytes for shards; fills hdr's layout fields. */
static int plan_layout(const struct urt_kv_opts *o, uint64_t dev_bytes, unsigned shards,
		       struct kv_store_hdr *h)
{
	uint32_t page_size = o->page_size ? o->page_size : 4096;
	uint64_t region, log;

	if (dev_bytes < 2ull * KV_REGION_ALIGN) {
		urt_set_error("kv: the device has %llu bytes, too few for a store",
			      (unsigned long long)dev_bytes);
		return -EINVAL;
	}
	region = (dev_bytes - KV_REGION_ALIGN) / shards / KV_REGION_ALIGN * KV_REGION_ALIGN;
	log = o->log_bytes;
	if (!log) {
		log = region / 8;
		if (log < 4ull * o->batch_bytes_max)
			log = 4ull * o->batch_bytes_max;
		if (log > KV_LOG_MAX)
			log = KV_LOG_MAX;
	}
	log = log / 4096 * 4096;
	if (log + 8192 + (uint64_t)KV_REGION_PAGES_MIN * page_size > region) {
		urt_set_error("kv: %llu bytes give each of %u shards %llu bytes, too few for a "
			      "%llu-byte log and %u pages", (unsigned long long)dev_bytes, shards,
			      (unsigned long long)region, (unsigned long long)log, KV_REGION_PAGES_MIN);
		return -EINVAL;
	}
	h->shard_count = shards;
	h->region_offset = KV_REGION_ALIGN;
	h->region_bytes = region;
	h->log_bytes = log;
	h->page_size = page_size;
	return 0;
}

static uint64_t hdr_check(const struct kv_store_hdr *h)
{
	return kv_hash64(h, offsetof(struct kv_store_hdr, check), KV_HDR_MAGIC);
}

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* Reads the store header, or writes a new one on a blank device (core 0's fiber). */
static int hdr_setup(struct urt_kv *kv)
{
	const struct urt_dev_info *info = urt_dev_info(kv->dev);
	struct kv_store_hdr h;
	uint8_t *buf = urt_buf_get(KV_HDR_BYTES);
	struct timespec ts;
	ssize_t n;
	int ret;

	if (!buf)
		return -ENOMEM;
	n = urt_read(kv->dev, buf, KV_HDR_BYTES, 0);
	if (n != KV_HDR_BYTES) {
		ret = n < 0 ? (int)n : -EIO;
		urt_set_error("kv: reading the store header failed (%s)", urt_strerror(ret));
		goto out;
	}
	memcpy(&h, buf, sizeof(h));
	if (h.magic == KV_HDR_MAGIC && h.check == hdr_check(&h)) {
		if (h.version != KV_HDR_VERSION) {
			urt_set_error("kv: store header version %u, this build reads %u", h.version,
				      KV_HDR_VERSION);
			ret = URT_E_VERSION;
			goto out;
		}
		if (h.shard_count == 0 || h.shard_count > URT_KV_SHARDS_MAX ||
		    h.region_offset + h.shard_count * h.region_bytes > info->size_bytes) {
			urt_set_error("kv: the store header describes %u shards of %llu bytes, which do "
				      "not fit the device", h.shard_count,
				      (unsigned long long)h.region_bytes);
			ret = URT_E_CORRUPT;
			goto out;
		}
		if (kv->opts.page_size && h.page_size != kv->opts.page_size) {
			urt_set_error("kv: the store has %u-byte pages, %u were asked for", h.page_size,
				      kv->opts.page_size);
			ret = -EINVAL;
			goto out;
		}
		kv->hdr = h;
		ret = 0;
		goto out;
	}
	if (!all_zero(buf, KV_HDR_BYTES) || !kv->opts.create) {
		urt_set_error(all_zero(buf, KV_HDR_BYTES) ? "kv: no store on the device (create not set)"
							  : "kv: the device holds something that is "
							    "not a urt kv store");
		ret = URT_E_BADFORMAT;
		goto out;
	}
	memset(&h, 0, sizeof(h));
	ret = plan_layout(&kv->opts, info->size_bytes, kv->opts.shards ? kv->opts.shards : kv->ncores,
			  &h);
	if (ret)
		goto out;
	h.magic = KV_HDR_MAGIC;
	h.version = KV_HDR_VERSION;
	do {
		if (getrandom(&h.store_id, sizeof(h.store_id), 0) != sizeof(h.store_id)) {
			ret = -errno;
			goto out;
		}
	} while (h.store_id == 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	h.created_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	h.check = hdr_check(&h);
	memset(buf, 0, KV_HDR_BYTES);
	memcpy(buf, &h, sizeof(h));
	/* One 512-byte sector holds the header, so a crash leaves it whole or blank. */
	n = urt_write(kv->dev, buf, KV_HDR_BYTES, 0);
	ret = n == KV_HDR_BYTES ? urt_flush(kv->dev) : n < 0 ? (int)n : -EIO;
	if (ret) {
		urt_set_error("kv: writing the store header failed (%s)", urt_strerror(ret));
		goto out;
	}
	kv->hdr = h;
out:
	urt_buf_put(buf);
	return ret;
}

static void hdr_job(struct kv_job *job)
{
	job->res = hdr_setup(job->fan->kv);
}

static void open_job(struct kv_job *job)
{
	struct urt_kv *kv = job->fan->kv;

	job->res = kv_shard_open(kv, job->shard, &kv->shards[job->shard]);
}

static void close_job(struct kv_job *job)
{
	struct urt_kv *kv = job->fan->kv;

	if (!kv->shards[job->shard])
		return;
	job->res = kv_shard_close(kv->shards[job->shard]);
	kv->shards[job->shard] = NULL;
}

/*
 * Creates path with size bytes: allocated, and with every shard's superblocks
 * and log written as zeros, so that the log's first lap costs no file-system
 * metadata commit.  Thread context (plain syscalls).
 */
static int file_create(struct urt_kv *kv, const char *path, unsigned shards)
{
	struct kv_store_hdr h = { 0 };
	uint8_t *zero;
	int fd, ret;

	ret = plan_layout(&kv->opts, kv->opts.size_bytes, shards, &h);
	if (ret)
		return ret;
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		ret = -errno;
		urt_set_error("kv: cannot create %s: %s", path, strerror(errno));
		return ret;
	}
	zero = calloc(1, KV_ZERO_CHUNK);
	if (!zero) {
		ret = -ENOMEM;
		goto err_unlink;
	}
	if (posix_fallocate(fd, 0, (off_t)kv->opts.size_bytes) != 0 &&
	    ftruncate(fd, (off_t)kv->opts.size_bytes) != 0) {
		ret = -errno;
		urt_set_error("kv: cannot size %s to %llu bytes: %s", path,
			      (unsigned long long)kv->opts.size_bytes, strerror(errno));
		goto err_free;
	}
	for (unsigned s = 0; s < shards; s++) {
		uint64_t off = h.region_offset + s * h.region_bytes;
		uint64_t end = off + 8192 + h.log_bytes;

		while (off < end) {
			size_t len = end - off < KV_ZERO_CHUNK ? (size_t)(end - off) : KV_ZERO_CHUNK;

			if (pwrite(fd, zero, len, (off_t)off) != (ssize_t)len) {
				ret = -EIO;
				urt_set_error("kv: cannot write %s: %s", path, strerror(errno));
				goto err_free;
			}
			off += len;
		}
	}
	if (fsync(fd) != 0) {
		ret = -errno;
		goto err_free;
	}
	free(zero);
	close(fd);
	return 0;

err_free:
	free(zero);
err_unlink:
	close(fd);
	unlink(path);
	return ret;
}

static int dev_open(struct urt_kv *kv, const char *path)
{
	struct urt_dev_opts o;
	struct stat st;
	int ret;

	if (stat(path, &st) != 0) {
		if (errno != ENOENT || !kv->opts.create) {
			ret = -errno;
			urt_set_error("kv: %s: %s", path, strerror(errno));
			return ret;
		}
		ret = file_create(kv, path, kv->opts.shards ? kv->opts.shards : kv->ncores);
		if (ret)
			return ret;
		kv->fresh = true;
	}
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
	return 0;
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
	free(kv);
}

int urt_kv_open(struct urt_rt *rt, const struct urt_kv_opts *o, struct urt_kv **out)
{
	struct kv_job *jobs = NULL;
	struct urt_kv *kv;
	int ret;

	ret = opts_check(o);
	if (ret)
		return ret;
	kv = calloc(1, sizeof(*kv));
	if (!kv)
		return -ENOMEM;
	kv->rt = rt;
	kv->opts = *o;
	kv->opts.path = NULL;
	kv->ncores = urt_rt_ncores(rt);
	atomic_init(&kv->closing, false);
	atomic_init(&kv->inflight, 0);
	if (o->path) {
		ret = dev_open(kv, o->path);
		if (ret)
			goto err_free;
	} else {
		kv->dev = o->dev;
	}
	kv->nshards = 1;	/* Until the header is read: one job, on core 0. */
	jobs = calloc(URT_KV_SHARDS_MAX, sizeof(*jobs));
	if (!jobs) {
		ret = -ENOMEM;
		goto err_free;
	}
	ret = run_jobs(kv, jobs, 1, hdr_job, NULL);
	if (ret)
		goto err_free;
	kv->nshards = kv->hdr.shard_count;
	/* A batch may take at most a quarter of the log (the page store's rule). */
	kv->batch_bytes = o->batch_bytes_max;
	if (kv->batch_bytes > kv->hdr.log_bytes / 4)
		kv->batch_bytes = (uint32_t)(kv->hdr.log_bytes / 4);
	ret = run_jobs(kv, jobs, kv->nshards, open_job, NULL);
	if (ret) {
		run_jobs(kv, jobs, kv->nshards, close_job, NULL);
		goto err_free;
	}
	free(jobs);
	*out = kv;
	return 0;

err_free:
	free(jobs);
	kv_free(kv);
	return ret;
}

int urt_kv_close(struct urt_kv *kv)
{
	struct kv_job *jobs = jobs_alloc(kv);
	int ret;

	atomic_store(&kv->closing, true);
	/* Every accepted request completes first, so none arrives at a stopped shard. */
	while (atomic_load(&kv->inflight) > 0) {
		if (urt_in_fiber())
			urt_sleep_ns(100000);
		else
			usleep(100);
	}
	KV_CHECK(jobs != NULL);
	ret = run_jobs(kv, jobs, kv->nshards, close_job, NULL);
	free(jobs);
	kv_free(kv);
	return ret;
}
