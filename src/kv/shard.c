/*
 * One shard of the key-value store: a B+tree in its own page-store region,
 * run by one core.
 *
 * Design notes.
 *
 * Writes.  Writes are queued (kv_shard_write) and applied by committer
 * fibers, several requests per page-store transaction:
 *
 *   idle --(queue not empty, nobody building)--> building   (committer_main)
 *   building: begin tx, pin page 0 for write, apply queued requests in
 *             order while the transaction has room, bump meta.tx_seq
 *             (commit_batch)
 *   building --> committing: hand the build turn to an idle committer,
 *             then urt_tx_commit (installs the pages at once, then waits
 *             for the log batch to be durable)
 *   committing --> idle: complete the requests of the transaction
 *
 * KV_WRITERS (8) committers: while some wait for their batch to be
 * durable, another builds from the requests that arrived meanwhile, so the
 * page store's group commit always has a batch ready, and the core is not
 * idle while the log is busy or the other way round.  Two things keep the
 * transactions flowing into the batch being filled:
 *  - A builder stops at KV_GROUP_MAX requests when another committer is
 *    idle (committers_idle), commits, and that one builds the rest.  One
 *    transaction of all the requests queued (800 at -c 50 -P 16) made the
 *    core and the log take turns: the log idle while it was built, the
 *    core idle while it was written.  With no committer idle the builder
 *    takes everything, so the requests in commit are never capped.
 *  - Every KV_BUILD_YIELD_EVERY requests a builder calls
 *    urt_fiber_yield_to_io, so the log writer's completions (the end of a
 *    write, to be followed by its flush) are not held up by a build.
 * Invariants:
 *  1. At most one transaction is being built at a time (s->building).  The
 *     build turn passes before urt_tx_commit, and the commit installs the
 *     pages before it first suspends, so the next builder sees them.  In
 *     the rare case that the commit suspends before installing (waiting for
 *     log space), the next builder gets -EBUSY on page 0, aborts, and waits
 *     for that commit to return: no request is ever applied to stale pages.
 *  2. Requests are applied in queue order and a transaction carries a
 *     prefix of the queue, so the writes of one caller to one shard take
 *     effect in the order they were issued.
 *  3. A request is completed only after its transaction's commit returned
 *     (durable), or, with URT_KV_NOSYNC, after the ack fiber saw its
 *     transaction installed (committed page 0 shows its tx_seq).
 *  4. A request that fails alone (a logical result such as -EEXIST is not
 *     a failure) makes the transaction abort; the other requests are put
 *     back at the head of the queue and redone without it, so a failed
 *     request never takes its neighbours down.  A transaction that grows
 *     past the page store's page limit is redone with fewer requests.
 *
 * Reads.  A read runs in its own read-only transaction in the caller's
 * fiber (or a worker fiber for reads forwarded from other cores); the
 * local reads of one urt_kv_submit_batch run up to KV_READ_GROUP at a time
 * in one transaction (kv_shard_read_many), each keeping its own result,
 * and one that needs more (a large value's chain) is then read alone.  Pages
 * are installed by commits while a reader may be suspended on a page read,
 * so a reader could combine an old parent with a new child.  Readers
 * therefore check page 0's tx_seq before and after (a seqlock: installs
 * are atomic with respect to fibers) and retry when it moved; after
 * KV_READ_TRIES attempts a reader takes the build turn and waits for every
 * commit to return, which stops installs while it reads.
 *
 * Expiry.  A key's expiry lives in its leaf cell (btree_node.h); page 0
 * counts the keys that have one (volatile_keys).  Every read and write
 * compares it with the store's clock, read once per request: an expired
 * key is absent (get/exists say not found, NX may overwrite it, INCR
 * starts from 0).  Expired cells are removed by internal deletes
 * (KV_OP_EXPIRE_DEL, which deletes only a key still expired when it is
 * applied) from one fiber per shard, expire_main:
 *
 *   sleeping --expire_interval_ms (urt_sleep_ns)--> collecting
 *   collecting: first queue one delete per key that reads reported expired
 *               (the lazy ring, filled by expire_note; at most
 *               KV_EXPIRE_BATCH) and wait for them, outside any
 *               transaction; then, under a read transaction
 *               (read_consistent), walk at most expire_scan_keys keys from
 *               where the last pass stopped, noting expired ones
 *   collecting --> deleting: queue one delete per noted key, wait for them
 *   deleting --> collecting (a quarter or more were expired, or the lazy
 *               ring is not empty: urt_fiber_yield) or sleeping
 *
 * A key a read finds expired is already absent to every reader, so it
 * waits for the next pass; nothing wakes the sleep early.  expire_wq
 * only wakes the fiber waiting for its deletes (expire_del_done) and at
 * close.
 *
 * The work per pass is bounded (expire_scan_keys keys examined, at most
 * KV_EXPIRE_BATCH deletes), so a store full of expired keys is freed a
 * batch at a time between other transactions.
 *
 * Large values (over KV_BTREE_VALUE_MAX) take several transactions: the
 * states draining / building / linking and the functions doing each
 * (chains_drain, big_build_step, big_link_step) are described above
 * big_put; their reads above big_read.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "base/mem.h"
#include "kv/btree.h"
#include "kv/kv_impl.h"
#include "base/assert.h"
#include "base/error.h"
#include "urt/error.h"
#include "urt/rt.h"

#define KV_READ_TRIES 4		/* Optimistic read attempts before the exclusive one. */
#define KV_WORKERS_MAX 16	/* Fibers serving reads forwarded from other cores. */
#define KV_INCR_TEXT_MAX 20	/* Longest decimal int64: "-9223372036854775808". */

static bool expired(uint64_t expire_at, uint64_t now)
{
	return expire_at != 0 && expire_at <= now;
}

/* Keeps page 0's count of keys with an expiry right after a put_x or del_x. */
static void volatile_adjust(struct kv_writer *w, const struct kv_btree_xput *x, bool put)
{
	struct kv_shard_meta *m = w->pager.meta;

	if (x->found && x->old_expire_at != 0 && m->volatile_keys > 0)
		m->volatile_keys--;
	if (put && x->new_expire_at != 0)
		m->volatile_keys++;
}

/* A read met an expired key: note it for expire_main (dropped when the ring is full). */
static void expire_note(struct kv_shard *s, const void *key, size_t klen)
{
	struct kv_expire_slot *e;

	if (s->lazy_n == KV_EXPIRE_LAZY)
		return;
	e = &s->lazy[(s->lazy_head + s->lazy_n) % KV_EXPIRE_LAZY];
	memcpy(e->key, key, klen);
	e->klen = (uint16_t)klen;
	s->lazy_n++;
}

/* Maps the tree's and the store's errors onto the store's public codes. */
static int map_err(int ret)
{
	if (ret == -ENOENT)
		return URT_E_NOTFOUND;
	if (ret == -EUCLEAN)
		return URT_E_CORRUPT;
	if (ret == -E2BIG)
		return URT_E_TOOBIG;
	return ret;
}

/* A result that is an answer, not a failure: the transaction goes on. */
static bool is_answer(int ret)
{
	return ret >= 0 || ret == URT_E_NOTFOUND || ret == -EEXIST || ret == -EINVAL ||
	       ret == -ERANGE;
}

static void exit_fiber(struct kv_shard *s)
{
	s->fibers_live--;
	urt_waitq_wake_all(&s->exit_wq);
}

/* Build-turn helpers. */

static void build_end(struct kv_shard *s)
{
	s->building = false;
	urt_waitq_wake_one(&s->commit_wq);
	urt_waitq_wake_all(&s->state_wq);
}

/* Waits until no transaction is built or committing, and takes the build turn. */
static void exclusive_begin(struct kv_shard *s)
{
	s->excl_waiting++;
	while (s->building || s->commits_inflight)
		urt_waitq_wait(&s->state_wq);
	s->excl_waiting--;
	s->building = true;
}

/* Integer values of INCR: strict decimal, as Redis's string2ll. */
static int parse_i64(const char *s, size_t len, int64_t *out)
{
	uint64_t v = 0;
	bool neg = false;
	size_t i = 0;

	if (len == 0 || len > KV_INCR_TEXT_MAX)
		return -EINVAL;
	if (s[0] == '-') {
		neg = true;
		i = 1;
		if (len == 1)
			return -EINVAL;
	}
	if (s[i] == '0' && len > i + 1)
		return -EINVAL;
	if (s[i] == '0' && neg)
		return -EINVAL;
	for (; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		if (v > (UINT64_MAX - 9) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (neg) {
		if (v > (uint64_t)INT64_MAX + 1)
			return -EINVAL;
		*out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
	} else {
		if (v > (uint64_t)INT64_MAX)
			return -EINVAL;
		*out = (int64_t)v;
	}
	return 0;
}

/* Write path. */

static int apply_incr(struct kv_writer *w, struct urt_kv_req *req, uint64_t now)
{
	char text[KV_INCR_TEXT_MAX + 2];
	struct kv_btree_xput x = { .now = now };
	uint64_t exp = 0;
	size_t vlen = 0;
	int64_t cur = 0;
	int n, ret;

	ret = map_err(kv_btree_get_x(w->tree, req->key, req->klen, text, sizeof(text), &vlen, &exp));
	if (ret == 0 && expired(exp, now))
		ret = URT_E_NOTFOUND;
	if (ret == 0) {
		if (vlen > KV_INCR_TEXT_MAX || parse_i64(text, vlen, &cur))
			return -EINVAL;
	} else if (ret != URT_E_NOTFOUND) {
		return ret;
	}
	if (__builtin_add_overflow(cur, req->delta, &cur))
		return -ERANGE;
	n = snprintf(text, sizeof(text), "%" PRId64, cur);
	/* As in Redis, INCR keeps a live key's expiry. */
	ret = map_err(kv_btree_put_x(w->tree, req->key, req->klen, text, (size_t)n,
				     KV_BTREE_KEEPTTL, &x));
	if (ret < 0)
		return ret;
	if (ret == 1)
		w->pager.meta->keys++;
	volatile_adjust(w, &x, true);
	req->num = cur;
	return 0;
}

/*
 * Records in page 0 the chain of a large value that a put or delete just
 * replaced or removed; chains_drain frees it in later transactions.  One
 * per transaction: a second one makes the transaction end before it
 * (URT_E_TOOBIG with requests before it), and the next one starts by
 * freeing the first.
 */
static int chain_detach(struct kv_writer *w, uint64_t chain)
{
	struct kv_shard_meta *m = w->pager.meta;

	if (chain == 0)
		return 0;
	if (m->chain_free != 0 || m->chain_pending != 0)
		return URT_E_TOOBIG;
	m->chain_free = chain;
	w->shard->chains_dirty = true;
	return 0;
}

/* Deletes key (only if expired at now when if_expired); keeps page 0's counts. */
static int apply_del(struct kv_writer *w, const void *key, size_t klen, uint64_t now,
		     bool if_expired)
{
	struct kv_btree_xput x = { .now = now };
	int ret = map_err(kv_btree_del_x(w->tree, key, klen, if_expired ? KV_BTREE_IF_EXPIRED : 0,
					 &x));

	if (ret < 0)
		return ret;
	if (chain_detach(w, x.detached))
		return URT_E_TOOBIG;
	if (w->pager.meta->keys == 0)
		return URT_E_CORRUPT;
	w->pager.meta->keys--;
	volatile_adjust(w, &x, false);
	/* An expired key was not there for the caller. */
	return !if_expired && expired(x.old_expire_at, now) ? URT_E_NOTFOUND : 0;
}

static int apply_put(struct kv_writer *w, const void *key, size_t klen, const void *val,
		     size_t vlen, uint64_t expire_at, unsigned bf, uint64_t now)
{
	struct kv_btree_xput x = { .expire_at = expire_at, .now = now };
	int ret = map_err(kv_btree_put_x(w->tree, key, klen, val, vlen, bf, &x));

	if (ret < 0)
		return ret;
	if (chain_detach(w, x.detached))
		return URT_E_TOOBIG;
	if (ret == 1)
		w->pager.meta->keys++;
	volatile_adjust(w, &x, true);
	return 0;
}

/* URT_KV_OP_UPDATE: read the key, run the callback, write what it decided. */
static int apply_update(struct kv_writer *w, struct urt_kv_req *req, uint64_t now)
{
	struct urt_kv_update u = { .now = now };
	size_t vlen = 0;
	uint64_t exp = 0;
	bool readval = req->flags & URT_KV_READVAL;
	int ret;

	if (readval && !w->scratch) {
		w->scratch = mem_core_malloc(URT_KV_UPDATE_VALUE_MAX);
		if (!w->scratch)
			return -ENOMEM;
	}
	ret = map_err(kv_btree_get_x(w->tree, req->key, req->klen, readval ? w->scratch : NULL,
				     readval ? URT_KV_UPDATE_VALUE_MAX : 0, &vlen, &exp));
	if (ret != 0 && ret != URT_E_NOTFOUND)
		return ret;
	u.exists = ret == 0 && !expired(exp, now);
	if (u.exists) {
		u.expire_at = exp;
		u.vlen = vlen;
	}
	u.val = readval ? w->scratch : NULL;
	u.cap = readval ? URT_KV_UPDATE_VALUE_MAX : 0;
	ret = req->update(req, &u);
	if (ret < 0)
		return ret;
	switch (u.action) {
	case URT_KV_UPDATE_KEEP:
		return ret;
	case URT_KV_UPDATE_PUT: {
		int r;

		if (u.vlen > URT_KV_UPDATE_VALUE_MAX)
			return URT_E_TOOBIG;
		URT_ASSERT(u.val != NULL || u.vlen == 0);
		r = apply_put(w, req->key, req->klen, u.val, u.vlen, u.expire_at, 0, now);
		return r < 0 ? r : ret;
	}
	case URT_KV_UPDATE_EXPIRE: {
		int r;

		if (!u.exists)
			return ret;
		r = apply_put(w, req->key, req->klen, NULL, 0, u.expire_at, KV_BTREE_KEEPVAL, now);
		return r < 0 ? r : ret;
	}
	case URT_KV_UPDATE_DEL: {
		int r = apply_del(w, req->key, req->klen, now, false);

		return r < 0 && r != URT_E_NOTFOUND ? r : ret;
	}
	}
	return -EINVAL;
}

/* Applies req inside the bound transaction; returns its result. */
static int apply(struct kv_writer *w, struct urt_kv_req *req)
{
	uint64_t now = urt_kv_now_ms(w->shard->kv);
	unsigned bf = 0;

	switch (req->op) {
	case URT_KV_OP_PUT:
		if (req->flags & URT_KV_NX)
			bf |= KV_BTREE_NX;
		if (req->flags & URT_KV_XX)
			bf |= KV_BTREE_XX;
		if (req->flags & URT_KV_KEEPTTL)
			bf |= KV_BTREE_KEEPTTL;
		return apply_put(w, req->key, req->klen, req->val, req->vlen, req->expire_at, bf, now);
	case URT_KV_OP_DEL:
		return apply_del(w, req->key, req->klen, now, false);
	case KV_OP_EXPIRE_DEL:
		return apply_del(w, req->key, req->klen, now, true);
	case URT_KV_OP_INCR:
		return apply_incr(w, req, now);
	case URT_KV_OP_UPDATE:
		return apply_update(w, req, now);
	case KV_OP_CLEAR:
		kv_pps_clear(&w->pager);
		return 0;
	default:
		return -EINVAL;
	}
}

/* Pages a request may write and read beyond what the tree reports. */
#define KV_PAGER_EXTRA_W 4u	/* Free-list trunks, page 0. */
#define KV_FREE_CHAIN_READS ((KV_BTREE_VALUE_MAX + 4095u) / 4000u + 2u) /* A replaced chain. */

/* Would req fit in the transaction being built? */
static bool has_room(struct kv_writer *w, const struct urt_kv_req *req)
{
	uint64_t bound = 0;
	size_t vlen = req->op == URT_KV_OP_PUT || req->op == URT_KV_OP_UPDATE ? req->vlen :
		      req->op == URT_KV_OP_INCR ? KV_INCR_TEXT_MAX : 0;

	if (req->op == KV_OP_CLEAR)
		return kv_pps_has_room(&w->pager, 1, 1);
	if (vlen > KV_BTREE_VALUE_MAX)
		vlen = KV_BTREE_VALUE_MAX;	/* An update's bound; a large put runs alone. */
	if (kv_btree_write_bound(w->tree, vlen, &bound))
		return false;
	return kv_pps_has_room(&w->pager, (uint32_t)bound + KV_PAGER_EXTRA_W,
			       (uint32_t)bound + KV_PAGER_EXTRA_W + KV_FREE_CHAIN_READS);
}

/* Removes from the ack queue the requests of transaction seq and fails them. */
static void acks_fail(struct kv_shard *s, uint64_t seq, int err)
{
	struct kv_queue keep = STAILQ_HEAD_INITIALIZER(keep);
	struct urt_kv_req *r;

	while ((r = STAILQ_FIRST(&s->acks))) {
		STAILQ_REMOVE_HEAD(&s->acks, next);
		if (r->seq == seq) {
			r->res = err;
			kv_req_complete(r);
		} else {
			STAILQ_INSERT_TAIL(&keep, r, next);
		}
	}
	STAILQ_CONCAT(&s->acks, &keep);
}

/* Fails every queued write with err (the store cannot start transactions). */
static void fail_queued(struct kv_shard *s, int err)
{
	struct urt_kv_req *r;

	while ((r = STAILQ_FIRST(&s->wq))) {
		STAILQ_REMOVE_HEAD(&s->wq, next);
		r->res = err;
		kv_req_complete(r);
	}
}

/* Puts the requests of batch back in front of the write queue, in order (invariant 2). */
static void requeue_front(struct kv_shard *s, struct kv_queue *batch)
{
	STAILQ_CONCAT(batch, &s->wq);	/* batch + queue; the queue is left empty... */
	STAILQ_CONCAT(&s->wq, batch);	/* ...and takes all of it back. */
}

/* Waits until fewer commits than now are in flight (or a moment, if none). */
static void wait_commit_return(struct kv_shard *s)
{
	unsigned n = s->commits_inflight;

	if (n == 0) {
		urt_fiber_yield();
		return;
	}
	while (s->commits_inflight >= n)
		urt_waitq_wait(&s->state_wq);
}

/*
 * Large values (over KV_BTREE_VALUE_MAX, up to URT_KV_VALUE_MAX): more
 * pages than one transaction may write, so a put, and the freeing of a
 * replaced or deleted value, take several transactions, each durable
 * before the next, all under the build turn (writes to the shard wait):
 *
 *   draining: free page 0's chain_free (or, if none, chain_pending) a
 *             bounded number of pages per transaction (chains_drain)
 *   building: write the value's chain back to front, KV_CHAIN_TX_PAGES per
 *             transaction, each recording the chain so far in page 0's
 *             chain_pending (big_build_step)
 *   linking:  one ordinary put links chain_pending into the leaf, clears
 *             it, and records the old value's chain, if large, in
 *             chain_free (big_link_step); an NX/XX refusal moves the new
 *             chain to chain_free instead
 *   draining again, then the request completes.
 *
 * A crash in building leaves chain_pending, which the next open frees
 * (the key keeps its old value); a crash after linking leaves chain_free,
 * which the next open frees (the key has its new value).  So no page
 * leaks and the key holds the old or the new value.
 */
#define KV_CHAIN_TX_PAGES(s) ((s)->tx_pages_max - 8u)	/* Room for trunks and page 0. */

static bool is_big_put(const struct urt_kv_req *req)
{
	return req->op == URT_KV_OP_PUT && req->vlen > KV_BTREE_VALUE_MAX;
}

typedef int (*kv_tx_fn)(struct kv_writer *w, void *arg);

/* Runs fn in a write transaction of its own and commits it (build turn held). */
static int own_tx(struct kv_writer *w, kv_tx_fn fn, void *arg)
{
	struct kv_shard *s = w->shard;
	struct urt_tx *tx;
	uint64_t seq;
	int ret, cret;

again:
	ret = urt_tx_begin(s->ps, &tx);
	if (ret)
		return ret;
	ret = kv_pps_bind(&w->pager, tx);
	if (ret) {
		urt_tx_abort(tx);
		if (ret != -EBUSY)
			return ret;
		s->write_tx_retries++;
		wait_commit_return(s);
		goto again;
	}
	ret = fn(w, arg);
	if (ret < 0) {
		kv_pps_unbind(&w->pager);
		urt_tx_abort(tx);
		return ret;
	}
	seq = ++w->pager.meta->tx_seq;
	kv_pps_unbind(&w->pager);
	s->write_txs++;
	s->commits_inflight++;
	cret = urt_tx_commit(tx);
	s->commits_inflight--;
	if (cret == 0 && seq > s->committed_seq)
		s->committed_seq = seq;
	urt_waitq_wake_all(&s->state_wq);
	return cret ? cret : ret;
}

/* One transaction of chains_drain; returns 1 while more remains. */
static int drain_step(struct kv_writer *w, void *arg)
{
	struct kv_shard *s = w->shard;
	struct kv_shard_meta *m = w->pager.meta;
	int ret;

	(void)arg;
	if (m->chain_free == 0) {
		m->chain_free = m->chain_pending;
		m->chain_pending = 0;
	}
	/* Readers of this chain start over: its pages are about to be reused. */
	for (struct kv_big_read *b = s->big_reads; b; b = b->next)
		if (b->head == m->chain_free)
			b->stale = true;
	ret = map_err(kv_btree_chain_free(w->tree, &m->chain_free, s->tx_pages_max));
	if (ret)
		return ret;
	return m->chain_free != 0 || m->chain_pending != 0;
}

/* Frees page 0's pending and detached chains, in bounded transactions. */
static int chains_drain(struct kv_writer *w)
{
	struct kv_shard *s = w->shard;
	int ret;

	if (!s->chains_dirty)
		return 0;
	do
		ret = own_tx(w, drain_step, NULL);
	while (ret == 1);
	if (ret == 0)
		s->chains_dirty = false;
	return ret;
}

struct kv_big_put {
	struct urt_kv_req *req;	/* The put. */
	size_t end;		/* Value bytes not yet in the chain (a prefix). */
	int res;		/* The put's answer (0, -EEXIST, URT_E_NOTFOUND). */
};

static int big_build_step(struct kv_writer *w, void *arg)
{
	struct kv_big_put *bp = arg;
	struct urt_kv_req *req = bp->req;

	return map_err(kv_btree_chain_build(w->tree, req->val, req->vlen, &bp->end,
					    KV_CHAIN_TX_PAGES(w->shard),
					    &w->pager.meta->chain_pending));
}

static int big_link_step(struct kv_writer *w, void *arg)
{
	struct kv_big_put *bp = arg;
	struct urt_kv_req *req = bp->req;
	struct kv_shard_meta *m = w->pager.meta;
	struct kv_btree_xput x = {
		.expire_at = req->expire_at, .now = urt_kv_now_ms(w->shard->kv),
		.chain = m->chain_pending,
	};
	unsigned bf = KV_BTREE_CHAIN;
	int ret;

	URT_ASSERT(m->chain_pending != 0 && m->chain_free == 0);
	if (req->flags & URT_KV_NX)
		bf |= KV_BTREE_NX;
	if (req->flags & URT_KV_XX)
		bf |= KV_BTREE_XX;
	if (req->flags & URT_KV_KEEPTTL)
		bf |= KV_BTREE_KEEPTTL;
	ret = map_err(kv_btree_put_x(w->tree, req->key, req->klen, NULL, req->vlen, bf, &x));
	if (ret < 0 && !is_answer(ret))
		return ret;
	w->shard->chains_dirty = true;
	if (ret < 0) {
		/* Refused (NX/XX): the new chain is freed instead. */
		m->chain_free = m->chain_pending;
		m->chain_pending = 0;
		bp->res = ret;
		return 0;
	}
	if (ret == 1)
		m->keys++;
	volatile_adjust(w, &x, true);
	m->chain_pending = 0;
	m->chain_free = x.detached;
	bp->res = 0;
	return 0;
}

/* A put of a large value, alone, under the build turn; returns its result (the caller counts the write). */
static int big_put(struct kv_writer *w, struct urt_kv_req *req)
{
	struct kv_shard *s = w->shard;
	struct kv_big_put bp = { .req = req, .end = req->vlen };
	int ret = chains_drain(w), dret;

	if (ret)
		return ret;
	s->chains_dirty = true;		/* From the first step on, chain_pending may be set. */
	while (bp.end > 0) {
		ret = own_tx(w, big_build_step, &bp);
		if (ret)
			break;
	}
	if (ret == 0)
		ret = own_tx(w, big_link_step, &bp);
	/* Frees the replaced chain, or after a failure the partial one. */
	dret = chains_drain(w);
	if (ret == 0)
		ret = bp.res;
	return ret ? ret : dret;
}

/* apply_put or apply_del of a big update's outcome, in a transaction of its own. */
struct kv_small_write {
	const struct urt_kv_req *req;	/* Key, value, expiry. */
	unsigned bf;			/* KV_BTREE_KEEPVAL for an expiry change. */
	bool del;			/* Delete instead. */
};

static int small_write_step(struct kv_writer *w, void *arg)
{
	struct kv_small_write *sw = arg;
	const struct urt_kv_req *req = sw->req;
	uint64_t now = urt_kv_now_ms(w->shard->kv);
	int ret;

	if (sw->del) {
		ret = apply_del(w, req->key, req->klen, now, false);
		return ret == URT_E_NOTFOUND ? 0 : ret;
	}
	return apply_put(w, req->key, req->klen, req->val, req->vlen, req->expire_at, sw->bf, now);
}

/*
 * An update whose old or new value is large (over URT_KV_UPDATE_VALUE_MAX):
 * alone, under the build turn, like big_put, so no other write of the
 * shard comes between its read and its write.  With no commit in flight
 * nothing is installed while it reads, so the read (several read
 * transactions for a large value) sees one state.  The callback gets a
 * scratch buffer of URT_KV_VALUE_MAX bytes, reserved address space that
 * only the bytes it touches make resident; a large new value is written
 * as big_put writes one (building, linking, draining), a small one in one
 * transaction.  Returns the request's result.
 */
static int big_update(struct kv_writer *w, struct urt_kv_req *req)
{
	struct kv_shard *s = w->shard;
	bool readval = req->flags & URT_KV_READVAL;
	struct urt_kv_req get = {
		.op = URT_KV_OP_GET, .key = req->key, .klen = req->klen, .kv = req->kv,
	};
	struct urt_kv_update u = { .now = urt_kv_now_ms(s->kv) };
	struct urt_kv_req out = { .op = URT_KV_OP_PUT, .key = req->key, .klen = req->klen };
	struct kv_small_write sw = { .req = &out };
	uint8_t *buf = NULL;
	int ret, res;

	ret = chains_drain(w);
	if (ret)
		return ret;
	while (s->commits_inflight > 0)
		wait_commit_return(s);
	if (readval) {
		buf = mmap(NULL, URT_KV_VALUE_MAX, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (buf == MAP_FAILED)
			return -ENOMEM;
		get.buf = buf;
		get.buf_len = URT_KV_VALUE_MAX;
	}
	ret = kv_shard_read(s, &get);
	if (ret != 0 && ret != URT_E_NOTFOUND)
		goto out;
	URT_ASSERT(s->commits_inflight == 0);
	u.exists = ret == 0;
	if (u.exists) {
		u.expire_at = get.expire_out;
		u.vlen = get.vlen_out;
	}
	u.val = buf;
	u.cap = readval ? URT_KV_VALUE_MAX : 0;
	ret = res = req->update(req, &u);
	if (ret < 0)
		goto out;
	switch (u.action) {
	case URT_KV_UPDATE_KEEP:
		break;
	case URT_KV_UPDATE_PUT:
		if (u.vlen > URT_KV_VALUE_MAX) {
			ret = URT_E_TOOBIG;
			break;
		}
		URT_ASSERT(u.val != NULL || u.vlen == 0);
		out.val = u.val;
		out.vlen = u.vlen;
		out.expire_at = u.expire_at;
		if (is_big_put(&out)) {
			ret = big_put(w, &out);
		} else {
			ret = own_tx(w, small_write_step, &sw);
		}
		break;
	case URT_KV_UPDATE_EXPIRE:
		if (!u.exists)
			break;
		out.expire_at = u.expire_at;
		sw.bf = KV_BTREE_KEEPVAL;
		ret = own_tx(w, small_write_step, &sw);
		break;
	case URT_KV_UPDATE_DEL:
		sw.del = true;
		ret = own_tx(w, small_write_step, &sw);
		break;
	}
	if (ret == 0)
		ret = chains_drain(w);	/* The replaced value's chain, if large. */
	s->writes++;
	if (ret == 0)
		ret = res;
out:
	if (buf)
		munmap(buf, URT_KV_VALUE_MAX);
	return ret;
}

/*
 * Builds one transaction from the head of the queue and commits it.  Called
 * with the build turn free; returns with it free.
 */
static void commit_batch(struct kv_writer *w)
{
	struct kv_shard *s = w->shard;
	struct kv_queue batch;
	struct urt_kv_req *req;
	struct urt_tx *tx;
	unsigned n, limit;
	uint64_t seq;
	bool has_acks = false;
	int ret;

	s->building = true;
again:
	STAILQ_INIT(&batch);
	n = 0;
	limit = w->limit ? w->limit : UINT32_MAX;
	w->limit = 0;
	if (STAILQ_EMPTY(&s->wq)) {
		build_end(s);
		return;
	}
	/* A detached chain is freed first, so this transaction may detach one. */
	if (s->chains_dirty && (ret = chains_drain(w)) != 0) {
		s->chains_dirty = false;	/* Left in page 0, freed at the next open. */
		fail_queued(s, ret);
		build_end(s);
		return;
	}
	req = STAILQ_FIRST(&s->wq);
	if (is_big_put(req)) {
		STAILQ_REMOVE_HEAD(&s->wq, next);
		req->res = big_put(w, req);
		s->writes++;
		build_end(s);
		kv_req_complete(req);
		return;
	}
	ret = urt_tx_begin(s->ps, &tx);
	if (ret) {
		fail_queued(s, ret);
		build_end(s);
		return;
	}
	ret = kv_pps_bind(&w->pager, tx);
	if (ret) {
		urt_tx_abort(tx);
		if (ret == -EBUSY) {
			/* Another commit holds page 0 before installing it (invariant 1). */
			s->write_tx_retries++;
			wait_commit_return(s);
			goto again;
		}
		fail_queued(s, ret);
		build_end(s);
		return;
	}
	while ((req = STAILQ_FIRST(&s->wq)) && n < limit) {
		if (n > 0 && (is_big_put(req) || !has_room(w, req)))
			break;
		/* A committer is free to build the rest: commit this part now (design notes). */
		if (n >= KV_GROUP_MAX && s->committers_idle)
			break;
		STAILQ_REMOVE_HEAD(&s->wq, next);
		ret = apply(w, req);
		if (is_answer(ret)) {
			req->res = ret;
			STAILQ_INSERT_TAIL(&batch, req, next);
			n++;
			/* A long build lets waiting completions through (the log writer's). */
			if (n % KV_BUILD_YIELD_EVERY == 0)
				urt_fiber_yield_to_io();
			continue;
		}
		/* A failure: drop the transaction and redo the others (invariant 4). */
		kv_pps_unbind(&w->pager);
		urt_tx_abort(tx);
		s->write_tx_retries++;
		if (ret == -EBUSY) {
			STAILQ_INSERT_TAIL(&batch, req, next);
			requeue_front(s, &batch);
			wait_commit_return(s);
			goto again;
		}
		if (n == 0 && ret == URT_E_TOOBIG && req->op == URT_KV_OP_UPDATE) {
			/* Its old or new value is large: it runs alone (big_update). */
			requeue_front(s, &batch);
			req->res = big_update(w, req);
			build_end(s);
			kv_req_complete(req);
			return;
		}
		if (n > 0 && (ret == URT_E_TOOBIG || (ret == URT_E_FULL && !w->pager.store_full))) {
			/* Too many pages for one transaction (or the pool): fewer requests. */
			STAILQ_INSERT_TAIL(&batch, req, next);
			requeue_front(s, &batch);
			w->limit = n;
			goto again;
		}
		requeue_front(s, &batch);
		req->res = ret;
		kv_req_complete(req);
		goto again;
	}
	seq = ++w->pager.meta->tx_seq;
	kv_pps_unbind(&w->pager);
	s->write_txs++;
	s->writes += n;

	/* NOSYNC requests are acknowledged by the ack fiber once installed. */
	{
		struct kv_queue durable = STAILQ_HEAD_INITIALIZER(durable);

		while ((req = STAILQ_FIRST(&batch))) {
			STAILQ_REMOVE_HEAD(&batch, next);
			req->seq = seq;
			if (req->flags & URT_KV_NOSYNC) {
				STAILQ_INSERT_TAIL(&s->acks, req, next);
				has_acks = true;
			} else {
				STAILQ_INSERT_TAIL(&durable, req, next);
			}
		}
		STAILQ_CONCAT(&batch, &durable);
	}
	build_end(s);
	if (has_acks)
		urt_waitq_wake_one(&s->ack_wq);
	s->commits_inflight++;
	ret = urt_tx_commit(tx);
	s->commits_inflight--;
	if (ret == 0 && seq > s->committed_seq)
		s->committed_seq = seq;
	urt_waitq_wake_all(&s->state_wq);
	if (ret && has_acks)
		acks_fail(s, seq, ret);
	if (has_acks)
		urt_waitq_wake_one(&s->ack_wq);
	if (s->chains_dirty && ret == 0) {
		/* A large value was replaced or deleted: its pages are free when the call returns. */
		while (s->building)
			urt_waitq_wait(&s->state_wq);
		s->building = true;
		chains_drain(w);	/* A failure leaves the chain in page 0: freed at open. */
		build_end(s);
	}
	while ((req = STAILQ_FIRST(&batch))) {
		STAILQ_REMOVE_HEAD(&batch, next);
		if (ret)
			req->res = ret;
		kv_req_complete(req);
	}
}

static void committer_main(void *arg)
{
	struct kv_writer *w = arg;
	struct kv_shard *s = w->shard;

	for (;;) {
		while (s->building || s->excl_waiting || STAILQ_EMPTY(&s->wq)) {
			if (s->stopping && STAILQ_EMPTY(&s->wq))
				goto out;
			s->committers_idle++;
			urt_waitq_wait(&s->commit_wq);
			s->committers_idle--;
		}
		commit_batch(w);
	}
out:
	s->writers_live--;
	/* Other committers and the ack fiber may be waiting to see this. */
	urt_waitq_wake_all(&s->commit_wq);
	urt_waitq_wake_all(&s->ack_wq);
	exit_fiber(s);
}

/* The tx_seq of the committed page 0: every transaction up to it is installed. */
static int installed_seq(struct kv_shard *s, uint64_t *seq)
{
	struct urt_tx *tx;
	void *pg;
	int ret = urt_tx_begin(s->ps, &tx);

	if (ret)
		return ret;
	ret = urt_page_get(tx, 0, URT_PAGE_READ, &pg);
	if (ret == 0)
		*seq = ((const struct kv_shard_meta *)pg)->tx_seq;
	urt_tx_commit(tx);
	return ret;
}

static void ack_main(void *arg)
{
	struct kv_shard *s = arg;
	struct urt_kv_req *req;

	for (;;) {
		uint64_t seq = 0;

		while (STAILQ_EMPTY(&s->acks)) {
			if (s->stopping && s->writers_live == 0)
				goto out;
			urt_waitq_wait(&s->ack_wq);
		}
		/*
		 * Installed: up to page 0's tx_seq, and every transaction whose
		 * commit returned 0 (page 0 cannot be read once the store is
		 * sticky, but those are installed all the same).  An ack whose
		 * commit failed was answered by acks_fail.  committed_seq is read
		 * after installed_seq, which may block: a commit that returned
		 * meanwhile (and whose wake found us elsewhere) counts too.
		 */
		if (installed_seq(s, &seq) != 0)
			seq = 0;
		if (seq < s->committed_seq)
			seq = s->committed_seq;
		while ((req = STAILQ_FIRST(&s->acks)) && req->seq <= seq) {
			STAILQ_REMOVE_HEAD(&s->acks, next);
			kv_req_complete(req);
		}
		/* Still pending: their commits are in flight and wake us when they return. */
		if (!STAILQ_EMPTY(&s->acks))
			urt_waitq_wait(&s->ack_wq);
	}
out:
	exit_fiber(s);
}

void kv_shard_write(struct kv_shard *s, struct urt_kv_req *req)
{
	STAILQ_INSERT_TAIL(&s->wq, req, next);
	if (!s->building)
		urt_waitq_wake_one(&s->commit_wq);
}

/* Read path. */

static struct kv_reader *reader_get(struct kv_shard *s)
{
	struct kv_reader *rd;

	while (!s->reader_free)
		urt_waitq_wait(&s->reader_wq);
	rd = s->reader_free;
	s->reader_free = rd->next_free;
	return rd;
}

static void reader_put(struct kv_shard *s, struct kv_reader *rd)
{
	rd->next_free = s->reader_free;
	s->reader_free = rd;
	urt_waitq_wake_one(&s->reader_wq);
}

/* One attempt of fn under a read transaction; *changed when a commit was installed meanwhile. */
typedef int (*kv_read_fn)(struct kv_reader *rd, void *arg);

static int read_once(struct kv_shard *s, struct kv_reader *rd, kv_read_fn fn, void *arg,
		     bool *changed)
{
	struct urt_tx *tx;
	uint64_t seq;
	int ret;

	*changed = false;
	ret = urt_tx_begin(s->ps, &tx);
	if (ret)
		return ret;
	ret = kv_pps_bind(&rd->pager, tx);
	if (ret) {
		urt_tx_abort(tx);
		return ret;
	}
	seq = rd->pager.meta->tx_seq;
	ret = fn(rd, arg);
	/* rd->pager.meta is the pinned committed frame: commits install into it. */
	*changed = rd->pager.meta->tx_seq != seq;
	/* A damage the tree found in a consistent view is there: its page is recorded. */
	if (!*changed)
		kv_pps_corrupt_confirm(&rd->pager);
	kv_pps_unbind(&rd->pager);
	urt_tx_commit(tx);
	return ret;
}

/* Runs fn until it saw a consistent tree (see the design notes). */
static int read_consistent(struct kv_shard *s, kv_read_fn fn, void *arg)
{
	struct kv_reader *rd = reader_get(s);
	bool changed = false;
	int ret = 0;

	for (unsigned attempt = 0; attempt <= KV_READ_TRIES; attempt++) {
		bool excl = attempt == KV_READ_TRIES;

		if (excl)
			exclusive_begin(s);
		ret = read_once(s, rd, fn, arg, &changed);
		if (excl)
			build_end(s);
		if (!changed)
			break;
		s->read_retries++;
	}
	reader_put(s, rd);
	return ret;
}

/* A read request, and where a large value's read has got to. */
struct kv_read {
	struct urt_kv_req *req;	/* The request. */
	struct kv_big_read big;	/* Its chain (head 0: the value was read whole). */
	uint64_t pgno;		/* Next page of the chain to copy. */
	size_t off;		/* Bytes copied. */
	uint64_t leaf_hint;	/* Leaf kv_btree_prefetch_leaf named in this transaction, 0: none. */
};

static int read_req(struct kv_reader *rd, void *arg)
{
	struct kv_read *r = arg;
	struct urt_kv_req *req = r->req;
	bool get = req->op == URT_KV_OP_GET;
	uint64_t chain = 0;
	int ret;

	req->vlen_out = 0;
	req->expire_out = 0;
	r->big.head = 0;
	if (get && req->buf_len > 0) {
		/* One descent: the value is copied, or a large one's chain noted. */
		ret = map_err(kv_btree_get_hinted(rd->tree, r->leaf_hint, req->key, req->klen,
						  req->buf, req->buf_len, &req->vlen_out,
						  &req->expire_out, &chain));
		if (ret == 0 && chain != 0) {
			/* Large: copied by big_read, a few pages per read transaction. */
			r->big.head = chain;
			r->pgno = chain;
			r->off = 0;
		}
		return ret;
	}
	return map_err(kv_btree_get_hinted(rd->tree, r->leaf_hint, req->key, req->klen, NULL, 0,
					   &req->vlen_out, &req->expire_out, NULL));
}

static int read_chunk(struct kv_reader *rd, void *arg)
{
	struct kv_read *r = arg;
	struct urt_kv_req *req = r->req;
	uint64_t pgno = r->pgno;
	size_t off = r->off;
	int ret = map_err(kv_btree_chain_read(rd->tree, &pgno, &off, req->vlen_out, req->buf,
					      req->buf_len, rd->pager.pages_read_max / 2));

	/* Pages read after the chain's freeing began may be anything: see drain_step. */
	if (ret == 0 && !r->big.stale) {
		r->pgno = pgno;
		r->off = off;
	}
	/* Nor is a damage found in them one (the read starts over). */
	if (r->big.stale)
		kv_pps_corrupt_forget(&rd->pager);
	return ret;
}

/*
 * Copies a large value found by read_req in bounded read transactions.
 * Its chain cannot be freed while the read is registered without the read
 * being marked stale first (drain_step), so a read that is not stale after
 * a chunk copied pages that still held the value; a stale one starts over.
 */
static int big_read(struct kv_shard *s, struct kv_read *r)
{
	struct urt_kv_req *req = r->req;
	size_t want = req->buf_len < req->vlen_out ? req->buf_len : req->vlen_out;
	int ret = 0;

	r->big.stale = false;
	r->big.next = s->big_reads;
	s->big_reads = &r->big;
	while (ret == 0 && r->off < want && !r->big.stale)
		ret = read_consistent(s, read_chunk, r);
	for (struct kv_big_read **p = &s->big_reads; *p; p = &(*p)->next) {
		if (*p == &r->big) {
			*p = r->big.next;
			break;
		}
	}
	/* A stale read may have met a reused page (any contents, so any error): start over. */
	if (r->big.stale)
		return -EAGAIN;
	return ret;
}

/* What a read's result becomes once its value is in: expiry, EXISTS's count. */
static int read_finish(struct kv_shard *s, struct urt_kv_req *req, int ret);

int kv_shard_read(struct kv_shard *s, struct urt_kv_req *req)
{
	struct kv_read r = { .req = req };
	int ret;

	do {
		ret = read_consistent(s, read_req, &r);
		if (ret == 0 && r.big.head != 0 && !expired(req->expire_out, urt_kv_now_ms(s->kv)))
			ret = big_read(s, &r);
	} while (ret == -EAGAIN);
	s->reads++;	/* One call served, however many transactions its value took. */
	return read_finish(s, req, ret);
}

/* Reads of kv_shard_read_many and their results. */
struct kv_read_many {
	struct kv_read r[KV_READ_GROUP];
	int res[KV_READ_GROUP];
	size_t n;
};

/*
 * Reads of a group whose pages are prefetched together: for each window,
 * the stages of kv_btree.h's prefetching run over all its keys in turn
 * (leaf found and its pool index entry, the pool's frame record, the
 * leaf's slots, the key's cell), then the reads run from those leaves,
 * so the cache misses of a window overlap instead of stalling one read
 * after another.  Sixteen leaves' slot arrays (twelve lines each) stay
 * well inside L1.
 */
#define KV_READ_PREFETCH 16u

/* Every read of the group under one transaction; each keeps its own result. */
static int read_many_fn(struct kv_reader *rd, void *arg)
{
	struct kv_read_many *m = arg;
	const struct kv_shard_meta *meta = rd->pager.meta;
	uint64_t leaf[KV_READ_PREFETCH];
	/* Pages in use, in bytes of page: against the tree size the caches hold (urt_kv_opts). */
	bool big = (meta->hwm - meta->free_pages) * rd->pager.ops.page_usable >=
		   rd->shard->kv->opts.read_prefetch_min_bytes;

	for (size_t i = 0; i < m->n; i += KV_READ_PREFETCH) {
		size_t w = m->n - i < KV_READ_PREFETCH ? m->n - i : KV_READ_PREFETCH;

		for (size_t j = 0; j < w; j++)
			leaf[j] = 0;
		if (w > 1 && big) {
			for (size_t j = 0; j < w; j++) {
				const struct urt_kv_req *req = m->r[i + j].req;

				leaf[j] = kv_btree_prefetch_leaf(rd->tree, req->key, req->klen);
				rd->shard->read_prefetches += leaf[j] != 0;
			}
			for (unsigned step = 0; step < 2; step++)
				for (size_t j = 0; j < w; j++)
					kv_btree_prefetch_node(rd->tree, leaf[j], step);
			for (size_t j = 0; j < w; j++) {
				const struct urt_kv_req *req = m->r[i + j].req;

				kv_btree_prefetch_cell(rd->tree, leaf[j], req->key, req->klen);
			}
		}
		for (size_t j = 0; j < w; j++) {
			/* The lookup starts at the leaf just named (kv_btree_get_hinted). */
			m->r[i + j].leaf_hint = leaf[j];
			m->res[i + j] = read_req(rd, &m->r[i + j]);
		}
	}
	return 0;
}

void kv_shard_read_many(struct kv_shard *s, struct urt_kv_req *const *reqs, size_t n)
{
	struct kv_read_many m;
	int ret;

	URT_ASSERT(n > 0 && n <= KV_READ_GROUP);
	m.n = n;
	for (size_t i = 0; i < n; i++)
		m.r[i] = (struct kv_read){ .req = reqs[i] };
	ret = read_consistent(s, read_many_fn, &m);
	/* Each read answered here counts once; one redone alone counts in kv_shard_read. */
	for (size_t i = 0; i < n; i++) {
		struct urt_kv_req *req = reqs[i];

		if (ret != 0 || m.res[i] == -EAGAIN || (m.res[i] == 0 && m.r[i].big.head != 0)) {
			/* The group's transaction failed, or a large value: this read on its own. */
			kv_shard_read(s, req);
			continue;
		}
		s->reads++;
		read_finish(s, req, m.res[i]);
	}
}

static int read_finish(struct kv_shard *s, struct urt_kv_req *req, int ret)
{
	if (ret == 0 && req->expire_out != 0 && expired(req->expire_out, urt_kv_now_ms(s->kv))) {
		expire_note(s, req->key, req->klen);
		req->vlen_out = 0;
		req->expire_out = 0;
		ret = URT_E_NOTFOUND;
	}
	if (req->op == URT_KV_OP_EXISTS)
		ret = ret == 0 ? 1 : ret == URT_E_NOTFOUND ? 0 : ret;
	req->res = ret;
	return ret;
}

void kv_shard_read_async(struct kv_shard *s, struct urt_kv_req *req)
{
	STAILQ_INSERT_TAIL(&s->rq, req, next);
	urt_waitq_wake_one(&s->rq_wq);
}

static void worker_main(void *arg)
{
	struct kv_shard *s = arg;
	struct urt_kv_req *req;

	for (;;) {
		while (STAILQ_EMPTY(&s->rq)) {
			if (s->stopping)
				goto out;
			urt_waitq_wait(&s->rq_wq);
		}
		req = STAILQ_FIRST(&s->rq);
		STAILQ_REMOVE_HEAD(&s->rq, next);
		kv_shard_read(s, req);
		kv_req_complete(req);
	}
out:
	exit_fiber(s);
}

/* Counting: the keys of page 0, less the expired ones still stored. */
struct kv_count {
	uint64_t now;		/* Clock of the count. */
	uint64_t keys;		/* Out: page 0's key count. */
	uint64_t volatile_keys;	/* Out: page 0's count of keys with an expiry. */
	uint64_t expired;	/* Out: expired keys seen so far. */
	uint8_t key[URT_KV_KEY_MAX];	/* Walk: resume after this key. */
	size_t klen;		/* Its length; 0 = from the first key. */
	bool done;		/* Walk: past the last key. */
};

static int count_fn(struct kv_reader *rd, void *arg)
{
	struct kv_count *c = arg;

	c->keys = rd->pager.meta->keys;
	c->volatile_keys = rd->pager.meta->volatile_keys;
	return 0;
}

/* One bounded step of the walk that counts expired keys (a read transaction). */
static int count_walk_fn(struct kv_reader *rd, void *arg)
{
	struct kv_count *c = arg;
	struct kv_btree_cursor cur;
	uint32_t gets_max = rd->pager.pages_read_max;
	uint64_t n = 0;
	int ret;

	kv_btree_cursor_init(&cur, rd->tree);
	ret = map_err(kv_btree_cursor_seek(&cur, c->key, c->klen));
	if (ret)
		return ret;
	while (kv_btree_cursor_valid(&cur)) {
		size_t klen;
		const void *k = kv_btree_cursor_key(&cur, &klen);

		if (c->klen == klen && memcmp(k, c->key, klen) == 0) {
			/* The resume key itself was counted by the previous step. */
		} else if (rd->pager.gets >= gets_max / 2) {
			c->expired += n;
			return 0;
		} else {
			if (expired(kv_btree_cursor_expire_at(&cur), c->now))
				n++;
			memcpy(c->key, k, klen);
			c->klen = klen;
		}
		ret = map_err(kv_btree_cursor_next(&cur));
		if (ret)
			return ret;
	}
	c->expired += n;
	c->done = true;
	return 0;
}

int kv_shard_count(struct kv_shard *s, uint64_t *count)
{
	struct kv_count c = { .now = urt_kv_now_ms(s->kv) };
	int ret = read_consistent(s, count_fn, &c);

	if (ret)
		return ret;
	/*
	 * Only a shard holding keys with an expiry pays for a walk.  The walk
	 * is not a snapshot (neither is a count over shards), and a step that
	 * a commit disturbed is simply redone by read_consistent.
	 */
	while (c.volatile_keys > 0 && !c.done) {
		ret = read_consistent(s, count_walk_fn, &c);
		if (ret)
			return ret;
	}
	*count = c.keys > c.expired ? c.keys - c.expired : 0;
	return 0;
}

static size_t align8(size_t x)
{
	return (x + 7) & ~(size_t)7;
}

static int scan_fn(struct kv_reader *rd, void *arg)
{
	struct kv_scan_part *part = arg;
	struct kv_btree_cursor c;
	uint32_t gets_max = rd->pager.pages_read_max;
	uint64_t now = urt_kv_now_ms(rd->shard->kv);
	size_t off = 0;
	int ret;

	part->count = 0;
	part->more = false;
	part->need = 0;
	kv_btree_cursor_init(&c, rd->tree);
	ret = map_err(kv_btree_cursor_seek(&c, part->start, part->slen));
	if (ret)
		return ret;
	if (part->exclusive && kv_btree_cursor_valid(&c)) {
		size_t klen;
		const void *k = kv_btree_cursor_key(&c, &klen);

		if (klen == part->slen && memcmp(k, part->start, klen) == 0) {
			ret = map_err(kv_btree_cursor_next(&c));
			if (ret)
				return ret;
		}
	}
	while (kv_btree_cursor_valid(&c)) {
		struct kv_scan_rec rec = { 0 };
		const void *k;
		size_t klen, vlen = kv_btree_cursor_value_len(&c), size;

		if (part->count == part->max || rd->pager.gets >= gets_max / 2) {
			part->more = true;
			break;
		}
		if (expired(kv_btree_cursor_expire_at(&c), now)) {
			ret = map_err(kv_btree_cursor_next(&c));
			if (ret)
				return ret;
			continue;
		}
		k = kv_btree_cursor_key(&c, &klen);
		size = align8(sizeof(rec) + klen + (part->keys_only ? 0 : vlen));
		if (off + size > part->buf_len) {
			if (part->count == 0)
				part->need = size;
			part->more = true;
			break;
		}
		rec.klen = (uint32_t)klen;
		rec.vlen = (uint32_t)vlen;
		memcpy(part->buf + off + sizeof(rec), k, klen);
		if (!part->keys_only) {
			size_t got = 0;

			ret = map_err(kv_btree_cursor_value(&c, part->buf + off + sizeof(rec) + klen,
							    vlen, &got));
			if (ret)
				return ret;
			if (got != vlen)
				return URT_E_CORRUPT;
			rec.vcopied = (uint32_t)vlen;
		}
		memcpy(part->buf + off, &rec, sizeof(rec));
		off += size;
		part->count++;
		ret = map_err(kv_btree_cursor_next(&c));
		if (ret)
			return ret;
	}
	return 0;
}

void kv_shard_scan(struct kv_shard *s, struct kv_scan_part *part)
{
	part->res = read_consistent(s, scan_fn, part);
	s->reads++;
}

int kv_shard_checkpoint(struct kv_shard *s)
{
	return urt_ps_checkpoint(s->ps);
}

static int meta_fn(struct kv_reader *rd, void *arg)
{
	struct urt_kv_shard_stats *st = arg;

	st->keys = rd->pager.meta->keys;
	st->pages_used = rd->pager.meta->hwm;
	st->pages_free = rd->pager.meta->free_pages;
	st->volatile_keys = rd->pager.meta->volatile_keys;
	return 0;
}

/* Adds a pager's memo counters to the shard's. */
static void memo_stats_add(struct urt_kv_shard_stats *st, const struct kv_pps *p)
{
	st->pager_memo_hits += p->memo_hits;
	st->pager_memo_misses += p->memo_misses;
}

int kv_shard_stats(struct kv_shard *s, struct urt_kv_shard_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->core = s->core;
	st->page_count = urt_ps_page_count(s->ps);
	st->reads = s->reads;
	st->read_retries = s->read_retries;
	st->writes = s->writes;
	st->write_txs = s->write_txs;
	st->write_tx_retries = s->write_tx_retries;
	st->forwarded = s->forwarded;
	st->expired = s->expired_keys;
	st->read_prefetches = s->read_prefetches;
	for (unsigned i = 0; i < KV_WRITERS; i++)
		memo_stats_add(st, &s->writers[i].pager);
	for (unsigned i = 0; i < s->kv->opts.readers_max; i++)
		memo_stats_add(st, &s->readers[i].pager);
	urt_ps_stats(s->ps, &st->ps);
	return read_consistent(s, meta_fn, st);
}

/* Active expiry (see the design notes). */

/* One pass's collection step, under a read transaction. */
static int expire_collect_fn(struct kv_reader *rd, void *arg)
{
	struct kv_shard *s = arg;
	struct kv_btree_cursor cur;
	uint32_t gets_max = rd->pager.pages_read_max;
	uint64_t now = urt_kv_now_ms(s->kv);
	unsigned seen = 0;
	int ret;

	/* A retried attempt starts over: nothing of the last one is kept. */
	s->exp_n = 0;
	s->exp_seen = 0;
	s->exp_wrapped = false;
	if (rd->pager.meta->volatile_keys == 0) {
		s->exp_wrapped = true;	/* No key has an expiry: nothing to walk. */
		return 0;
	}
	kv_btree_cursor_init(&cur, rd->tree);
	ret = map_err(kv_btree_cursor_seek(&cur, s->exp_pos, s->exp_pos_len));
	if (ret)
		return ret;
	while (seen < s->kv->opts.expire_scan_keys && s->exp_n < KV_EXPIRE_BATCH &&
	       rd->pager.gets < gets_max / 2) {
		size_t klen;
		const void *k;

		if (!kv_btree_cursor_valid(&cur)) {
			s->exp_wrapped = true;	/* The next pass starts from the first key. */
			break;
		}
		k = kv_btree_cursor_key(&cur, &klen);
		if (expired(kv_btree_cursor_expire_at(&cur), now)) {
			memcpy(s->exp_keys[s->exp_n].key, k, klen);
			s->exp_keys[s->exp_n].klen = (uint16_t)klen;
			s->exp_n++;
		}
		seen++;
		ret = map_err(kv_btree_cursor_next(&cur));
		if (ret)
			return ret;
	}
	s->exp_seen = seen;
	if (!s->exp_wrapped && kv_btree_cursor_valid(&cur)) {
		size_t klen;
		const void *k = kv_btree_cursor_key(&cur, &klen);

		memcpy(s->exp_next, k, klen);
		s->exp_next_len = klen;
	}
	return 0;
}

static void expire_del_done(struct urt_kv_req *req)
{
	struct kv_shard *s = req->arg;

	if (--s->exp_pending == 0)
		urt_waitq_wake_one(&s->expire_wq);
}

/* Queues one internal delete per noted key and waits for them. */
static void expire_delete(struct kv_shard *s, struct kv_expire_slot *keys, unsigned n)
{
	unsigned queued = 0;

	for (unsigned i = 0; i < n; i++) {
		struct urt_kv_req *r = &s->exp_reqs[i];

		memset(r, 0, sizeof(*r));
		r->op = KV_OP_EXPIRE_DEL;
		r->key = keys[i].key;
		r->klen = keys[i].klen;
		r->done = expire_del_done;
		r->arg = s;
		s->exp_pending++;
		if (kv_submit_shard(s->kv, r, s->id) != 0) {
			s->exp_pending--;
			break;	/* The store is closing. */
		}
		queued++;
	}
	while (s->exp_pending)
		urt_waitq_wait(&s->expire_wq);
	for (unsigned i = 0; i < queued; i++)
		if (s->exp_reqs[i].res == 0)
			s->expired_keys++;
}

static void expire_main(void *arg)
{
	struct kv_shard *s = arg;
	uint64_t interval_ns = (uint64_t)s->kv->opts.expire_interval_ms * 1000000u;

	while (!s->stopping) {
		unsigned n = 0;
		bool again;

		/* Keys that reads found expired. */
		while (s->lazy_n > 0 && n < KV_EXPIRE_BATCH) {
			s->exp_lazy[n++] = s->lazy[s->lazy_head];
			s->lazy_head = (s->lazy_head + 1) % KV_EXPIRE_LAZY;
			s->lazy_n--;
		}
		if (n > 0)
			expire_delete(s, s->exp_lazy, n);
		if (s->stopping)
			break;
		/* A bounded step of the walk over the whole shard. */
		if (read_consistent(s, expire_collect_fn, s) != 0)
			s->exp_n = 0;
		if (s->exp_wrapped) {
			s->exp_pos_len = 0;
		} else {
			memcpy(s->exp_pos, s->exp_next, s->exp_next_len);
			s->exp_pos_len = s->exp_next_len;
		}
		again = s->exp_n > 0 && s->exp_n * 4 >= s->exp_seen;
		if (s->exp_n > 0 && !s->stopping)
			expire_delete(s, s->exp_keys, s->exp_n);
		if (s->stopping)
			break;
		if (again || s->lazy_n > 0)
			urt_fiber_yield();
		else
			urt_sleep_ns(interval_ns);
	}
	exit_fiber(s);
}

/* Open and close. */

/* Pages one write transaction may write with batches of batch bytes. */
uint32_t kv_tx_pages(uint32_t batch_bytes, uint32_t page_size)
{
	/* Each page image takes a 32-byte record header; keep two blocks for the rest. */
	return (batch_bytes - 8192u) / (page_size + 64u);
}

/* Reads page 0 and formats it if the shard is new; checks it belongs to this store. */
static int shard_meta_init(struct kv_shard *s)
{
	struct urt_kv *kv = s->kv;
	const struct kv_shard_meta *m;
	struct urt_tx *tx;
	void *pg;
	int ret = urt_tx_begin(s->ps, &tx);

	if (ret)
		return ret;
	ret = urt_page_get(tx, 0, URT_PAGE_READ, &pg);
	if (ret)
		goto err_abort;
	m = pg;
	if (m->magic == 0) {
		ret = kv_pps_format(tx, urt_ps_page_data_bytes(s->ps), s->id, kv->nshards,
				    kv->hdr.store_id);
		if (ret)
			goto err_abort;
		return urt_tx_commit(tx);
	}
	if (m->magic != KV_META_MAGIC || m->version != KV_META_VERSION ||
	    m->shard_id != s->id || m->shard_count != kv->nshards ||
	    m->store_id != kv->hdr.store_id || m->page_usable != urt_ps_page_data_bytes(s->ps)) {
		urt_set_error("kv: shard %u: page 0 is not this store's meta page for shard %u of %u",
			      s->id, s->id, kv->nshards);
		ret = URT_E_CORRUPT;
		goto err_abort;
	}
	/* A large value's chain left by a crash, or not freed yet: freed at open. */
	s->chains_dirty = m->chain_pending != 0 || m->chain_free != 0;
	urt_tx_commit(tx);
	return 0;

err_abort:
	urt_tx_abort(tx);
	return ret;
}

/* Opens the tree handle of pager inside a transaction (opening reads the tree's meta page). */
static int tree_open(struct kv_shard *s, struct kv_pps *pager, struct kv_btree **out)
{
	struct kv_btree_opts bo;
	struct urt_tx *tx;
	int ret = urt_tx_begin(s->ps, &tx);

	if (ret)
		return ret;
	ret = kv_pps_bind(pager, tx);
	if (ret == 0) {
		kv_btree_opts_default(&bo);
		bo.count_keys = false;	/* The shard counts keys in page 0, which every tx writes. */
		ret = map_err(kv_btree_open(&pager->ops, (struct kv_pager *)pager, &bo, out));
		kv_pps_unbind(pager);
	}
	urt_tx_abort(tx);
	return ret;
}

static void shard_free(struct kv_shard *s)
{
	for (unsigned i = 0; i < KV_WRITERS; i++) {
		if (s->writers[i].tree)
			kv_btree_close(s->writers[i].tree);
		mem_core_free(s->writers[i].scratch);
		kv_pps_exit(&s->writers[i].pager);
	}
	if (s->readers) {
		for (unsigned i = 0; i < s->kv->opts.readers_max; i++) {
			if (s->readers[i].tree)
				kv_btree_close(s->readers[i].tree);
			kv_pps_exit(&s->readers[i].pager);
		}
		mem_core_free(s->readers);
	}
	mem_core_free(s);
}

static int spawn(struct kv_shard *s, void (*fn)(void *), void *arg)
{
	int ret = urt_fiber_spawn(fn, arg);

	if (ret == 0)
		s->fibers_live++;
	return ret;
}

int kv_shard_open(struct urt_kv *kv, unsigned id, struct kv_shard **out)
{
	const struct urt_kv_opts *ko = &kv->opts;
	struct urt_ps_opts o;
	struct kv_shard *s;
	uint64_t cache_pages;
	unsigned planned;
	uint32_t workers;
	int ret;

	s = mem_core_alloc(sizeof(*s));	/* Per-core: this core's arena (mem.h). */
	if (!s)
		return -ENOMEM;
	s->kv = kv;
	s->id = id;
	s->core = urt_core_id();
	STAILQ_INIT(&s->wq);
	STAILQ_INIT(&s->acks);
	STAILQ_INIT(&s->rq);
	s->tx_pages_max = kv_tx_pages(kv->batch_bytes, kv->hdr.page_size);

	urt_ps_opts_default(&o);
	o.create = ko->create;
	o.format_zero_pages = !kv->fresh;
	o.page_size = kv->hdr.page_size;
	o.region_offset = kv->hdr.region_offset + (uint64_t)id * kv->hdr.region_bytes;
	o.region_bytes = kv->hdr.region_bytes;
	o.log_bytes = kv->hdr.log_bytes;
	/*
	 * urt_kv_buf_region_bytes sized each core's region for the planned
	 * shard count (ko->shards, or one per core).  A store formatted with
	 * fewer shards than that (made on fewer cores) must not give each shard
	 * more than its planned share, or the pool does not fit the region.
	 */
	planned = ko->shards ? ko->shards : kv->ncores;
	cache_pages = ko->cache_bytes / (kv->nshards > planned ? kv->nshards : planned) / kv->hdr.page_size;
	if (cache_pages < 4ull * s->tx_pages_max + 256)
		cache_pages = 4ull * s->tx_pages_max + 256;
	o.pool_pages = (uint32_t)cache_pages;
	o.sync = ko->sync;
	o.group_delay_ns = ko->group_delay_ns;
	o.batch_bytes_max = kv->batch_bytes;
	o.tx_pages_max = s->tx_pages_max;
	o.write_copies_kept = (uint32_t)kv_copies_kept(cache_pages);
	o.shard_id = id;
	o.shard_count = kv->nshards;
	o.page_check = kv_pps_page_check;	/* Node headers once per read, not per visit. */
	o.page_hole = kv_pps_page_hole;		/* Log images leave out the zeroed free gap. */
	ret = urt_ps_open(kv->dev, &o, &s->ps);
	if (ret)
		goto err_free;
	ret = shard_meta_init(s);
	if (ret)
		goto err_close_ps;

	for (unsigned i = 0; i < KV_WRITERS; i++) {
		struct kv_writer *w = &s->writers[i];

		w->shard = s;
		/* The store pins up to 4 read pages per write slot; keep a margin. */
		ret = kv_pps_init(&w->pager, s->ps, true, s->tx_pages_max, 3 * s->tx_pages_max);
		if (ret)
			goto err_close_ps;
		ret = tree_open(s, &w->pager, &w->tree);
		if (ret)
			goto err_close_ps;
	}
	ret = chains_drain(&s->writers[0]);
	if (ret)
		goto err_close_ps;
	s->readers = mem_core_alloc(ko->readers_max * sizeof(*s->readers));
	if (!s->readers) {
		ret = -ENOMEM;
		goto err_close_ps;
	}
	for (unsigned i = 0; i < ko->readers_max; i++) {
		struct kv_reader *rd = &s->readers[i];

		rd->shard = s;
		ret = kv_pps_init(&rd->pager, s->ps, false, 0, 3 * s->tx_pages_max);
		if (ret)
			goto err_close_ps;
		ret = tree_open(s, &rd->pager, &rd->tree);
		if (ret)
			goto err_close_ps;
		rd->next_free = s->reader_free;
		s->reader_free = rd;
	}

	for (unsigned i = 0; i < KV_WRITERS; i++) {
		ret = spawn(s, committer_main, &s->writers[i]);
		if (ret)
			goto err_stop;
		s->writers_live++;
	}
	ret = spawn(s, ack_main, s);
	if (ret)
		goto err_stop;
	if (ko->expire_interval_ms > 0) {
		ret = spawn(s, expire_main, s);
		if (ret)
			goto err_stop;
	}
	workers = ko->readers_max < KV_WORKERS_MAX ? ko->readers_max : KV_WORKERS_MAX;
	for (unsigned i = 0; i < workers; i++) {
		ret = spawn(s, worker_main, s);
		if (ret)
			goto err_stop;
	}
	*out = s;
	return 0;

err_stop:
	kv_shard_close(s);
	return ret;
err_close_ps:
	urt_ps_close(s->ps);
err_free:
	shard_free(s);
	return ret;
}

int kv_shard_close(struct kv_shard *s)
{
	int ret;

	s->stopping = true;
	urt_waitq_wake_all(&s->commit_wq);
	urt_waitq_wake_all(&s->rq_wq);
	urt_waitq_wake_all(&s->ack_wq);
	urt_waitq_wake_all(&s->state_wq);
	urt_waitq_wake_all(&s->expire_wq);
	while (s->fibers_live)
		urt_waitq_wait(&s->exit_wq);
	URT_ASSERT(STAILQ_EMPTY(&s->wq) && STAILQ_EMPTY(&s->rq) && STAILQ_EMPTY(&s->acks));
	ret = urt_ps_close(s->ps);
	shard_free(s);
	return ret;
}
