/*
 * Crash consistency of the page store on the simulated SSD.
 *
 * Each iteration formats a small store, runs concurrent committer fibers
 * (random transactions writing a recognisable pattern to 1-4 pages, plus
 * explicit checkpoints, a tiny log that wraps and checkpoints itself, and a
 * pool smaller than the working set so pages are evicted), and cuts the
 * power after a random number of device commands: mid-commit, mid-
 * checkpoint, mid-superblock update, mid-eviction alike.  It then reopens
 * the post-crash image, recovers, and checks every page:
 *   - nothing corrupt is returned and every page holds an intact pattern;
 *   - every acknowledged commit is present: each page holds its last
 *     acknowledged writer or a later one;
 *   - no transaction is half-applied: if a page shows transaction t, every
 *     page t wrote shows t or a later writer;
 *   - no aborted transaction is visible.
 * The pattern a transaction writes changes only part of a page from one
 * writer to the next (crash_fill), so most commits log page deltas and
 * recovery replays delta chains; the run counts the delta records written
 * and replayed, and fails if there were none.  A third of the page writes
 * go through urt_page_write_at, one call per 64-byte segment (so commit
 * logs the ranges it was told of, without comparing the page), and half of
 * those then also write the whole pattern through a WRITE get (the page is
 * compared again); the run fails if no ranged write happened.  A third of
 * the patterns leave a run of zeros that the store's page_hole callback
 * names (the others fill it, so the store must find its hint wrong and log
 * the whole page): page images then leave it out (PAGE_IMAGE_HOLE), and
 * the run fails if none did.  One iteration in three keeps no write copies
 * with the frames, so ranged writes start from sparse copies (tx.c) and
 * are filled in when the whole-pattern write follows; the run fails if
 * either never happened.
 * Then it writes more on the recovered store and crashes again (the second
 * round checks that the stale log tail of the first incarnation is never
 * replayed).  One recovery in four is itself cut short by a crash a few
 * commands in, and recovered again.  Policies alternate (FUA / FLUSH) and
 * one iteration in four uses 8 KiB pages.  The log depth (batches in
 * flight at once) is 1 in half the iterations and 2 or 4 in a quarter
 * each, independently of the other choices, so a later batch can reach
 * the device while an earlier one is dropped or torn by the crash; the run
 * counts crash points per depth and fails if a depth got none.  The seed of a failing iteration is printed; URT_SEED=<n>
 * reruns one, URT_SOAK=1 runs many more.
 */
#include <stdint.h>
#include <time.h>

#include "base/clock.h"
#include "engine/format/format.h"
#include "ps_fixture.h"

#define NPAGES 24		/* Pages the workload touches. */
#define NFIBERS 6		/* Concurrent committers. */
#define TX_PER_FIBER 6		/* Transactions per committer per round. */
#define PAGES_PER_TX_MAX 4	/* Pages one transaction writes. */
#define HIST_MAX 1024		/* Lock acquisitions per page per iteration. */
#define TX_MAX 4096		/* Transactions per iteration (retries included). */
#define ROUNDS 2		/* Crashes per iteration. */
#define DEV_BYTES (1u << 20)	/* A small device: fast iterations. */

enum tx_status { TX_OPEN = 0, TX_ACKED, TX_ABORTED, TX_FAILED };

struct crash_tx {
	uint8_t status;			/* enum tx_status. */
	uint8_t npages;			/* Pages in pages[]. */
	uint16_t pages[PAGES_PER_TX_MAX];/* Pages the transaction wrote (locked). */
};

struct crash_state {
	uint64_t seed;			/* Iteration seed. */
	uint64_t rng;			/* Generator state. */
	struct urt_dev *dev;		/* Current device (fresh or reopened). */
	struct urt_dev *devs[2 * ROUNDS + 1];/* Every device opened, closed at the end. */
	unsigned ndevs;			/* Entries of devs. */
	uint32_t page_size;		/* Page size of this iteration. */
	uint32_t log_depth;		/* urt_ps_opts.log_depth of this iteration. */
	uint64_t recovery_crashes;	/* Crashes placed inside a recovery. */
	struct urt_ps *ps;		/* Store of the current round. */
	uint64_t txid_next;		/* Next transaction id (0 = never written). */
	struct crash_tx tx[TX_MAX];	/* Per transaction. */
	uint32_t hist[NPAGES][HIST_MAX];/* Write-lock order per page. */
	uint32_t nhist[NPAGES];		/* Entries of hist. */
	unsigned live;			/* Committer fibers still running. */
	bool sched;			/* Every device gets a scheduler that merges (cscan, depth 4). */
	struct urt_waitq done_wq;	/* The driver waits here for them. */
	bool sync_flush;		/* Use the flush policy instead of FUA. */
	uint64_t crash_cmds;		/* Commands before the crash of this round. */
	uint64_t acked;			/* Commits acknowledged (for the report). */
	uint64_t recovered_pages;	/* Page records replayed (for the report). */
	uint64_t recovered_deltas;	/* Of those, page deltas. */
	uint64_t log_deltas;		/* Page delta records written before the crashes. */
	uint64_t log_images;		/* Page image records written before the crashes. */
	uint64_t log_image_holes;	/* Of those, images that left a zero hole out. */
	uint64_t sparse;		/* Write entries opened sparse (urt_page_write_at). */
	uint64_t filled;		/* Sparse entries filled in later. */
	uint64_t overlapped;		/* Batches sealed while an earlier one was in flight. */
	uint64_t ranged_writes;		/* Pages written through urt_page_write_at. */
	struct psx_fail fail;		/* First failure. */
};

/*
 * The pattern of transaction txid on page pg: txid and pg, then 64-byte
 * segments, segment j derived from pg and txid >> (j % 6).  Consecutive
 * writers of a page thus differ in a few segments (a small delta) or, now
 * and then, in most of them (a delta as large as an image), and any mix of
 * two writers' bytes is recognised by crash_check.  One txid in three
 * leaves the hole crash_hole names as zeros.
 */
static uint32_t crash_hole(const void *data, size_t len, uint32_t *off, void *arg)
{
	(void)data;
	(void)arg;
	*off = (uint32_t)(len / 2);
	return (uint32_t)(len / 4);
}

static void crash_fill(void *data, size_t len, uint64_t txid, uint64_t pg)
{
	uint8_t *p = data;

	memcpy(p, &txid, 8);
	memcpy(p + 8, &pg, 8);
	for (size_t off = 16, j = 0; off < len; off += 64, j++) {
		uint64_t x = ((txid >> (j % 6)) + 1) * 0x9e3779b97f4a7c15ull ^ (pg << 20) ^ j;

		for (size_t i = off; i < off + 64 && i < len; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			p[i] = (uint8_t)x;
		}
	}
	if (txid % 3 == 0)
		memset(p + len / 2, 0, len / 4);
}

/* The txid crash_fill wrote on the page, 0 for a never written page, UINT64_MAX if mixed. */
static uint64_t crash_check(const void *data, size_t len, uint64_t pg)
{
	static __thread uint8_t want[16384];
	uint64_t txid, got_pg;

	memcpy(&txid, data, 8);
	memcpy(&got_pg, (const uint8_t *)data + 8, 8);
	if (txid == 0 && got_pg == 0)
		return urt_is_zero(data, len) ? 0 : UINT64_MAX;
	if (got_pg != pg || len > sizeof(want))
		return UINT64_MAX;
	crash_fill(want, len, txid, pg);
	return memcmp(want, data, len) ? UINT64_MAX : txid;
}

static uint64_t rnd(struct crash_state *s)
{
	uint64_t x = s->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	s->rng = x;
	return x;
}

/*
 * Writes transaction txid's pattern on page pg through urt_page_write_at,
 * one range per 64-byte segment (buf: page data bytes of scratch).
 */
static int write_ranges(struct crash_state *s, struct urt_tx *tx, uint8_t *buf, uint64_t txid,
			uint16_t pg)
{
	size_t len = urt_ps_page_data_bytes(s->ps);
	int ret = 0;

	crash_fill(buf, len, txid, pg);
	for (size_t off = 0; off < len && ret == 0; off += 64)
		ret = urt_page_write_at(tx, pg, (uint32_t)off, buf + off,
					(uint32_t)(len - off < 64 ? len - off : 64));
	return ret;
}

static void committer(void *arg)
{
	struct crash_state *s = arg;
	/* Per fiber: write_at may yield while another committer fills its own. */
	uint8_t *buf = malloc(s->page_size);

	if (!buf) {
		psx_failf(&s->fail, "no memory");
		if (--s->live == 0)
			urt_waitq_wake_all(&s->done_wq);
		return;
	}

	for (int i = 0; i < TX_PER_FIBER; i++) {
		uint64_t txid;
		struct crash_tx *t;
		struct urt_tx *tx;
		int n, ret;

		if (s->txid_next >= TX_MAX)
			break;
		txid = s->txid_next++;
		t = &s->tx[txid];
		if (urt_tx_begin(s->ps, &tx))
			break;	/* Sticky: the power is gone. */
		n = 1 + (int)(rnd(s) % PAGES_PER_TX_MAX);
		ret = 0;
		for (int k = 0; k < n && ret == 0; k++) {
			uint16_t pg = (uint16_t)(rnd(s) % NPAGES);
			void *p;
			bool dup = false;

			for (int j = 0; j < t->npages; j++)
				dup |= t->pages[j] == pg;
			if (dup)
				continue;
			switch (rnd(s) % 6) {
			case 0:
			case 1:
				/* Ranges only: commit logs what it was told. */
				ret = write_ranges(s, tx, buf, txid, pg);
				s->ranged_writes += ret == 0;
				break;
			case 2:
				/* Ranges, then the page by pointer: commit compares it again. */
				ret = write_ranges(s, tx, buf, txid, pg);
				if (ret == 0)
					ret = urt_page_get(tx, pg, URT_PAGE_WRITE, &p);
				if (ret == 0)
					crash_fill(p, urt_ps_page_data_bytes(s->ps), txid, pg);
				break;
			default:
				ret = urt_page_get(tx, pg, URT_PAGE_WRITE, &p);
				if (ret == 0)
					crash_fill(p, urt_ps_page_data_bytes(s->ps), txid, pg);
			}
			if (ret == 0) {
				t->pages[t->npages++] = pg;
				if (s->nhist[pg] < HIST_MAX)
					s->hist[pg][s->nhist[pg]++] = (uint32_t)txid;
			} else if (ret == URT_E_CORRUPT) {
				psx_failf(&s->fail, "seed %llu: page %u corrupt before the crash: %s",
					  (unsigned long long)s->seed, pg, urt_last_error());
			}
		}
		if (ret) {
			/* -EBUSY / URT_E_FULL: give up this one, let others finish. */
			t->status = TX_ABORTED;
			urt_tx_abort(tx);
			urt_fiber_yield();
			continue;
		}
		if (rnd(s) % 8 == 0) {
			t->status = TX_ABORTED;
			urt_tx_abort(tx);
			continue;
		}
		ret = urt_tx_commit(tx);
		t->status = ret == 0 ? TX_ACKED : TX_FAILED;
		s->acked += ret == 0;
		if (ret && urt_ps_error(s->ps) == 0)
			psx_failf(&s->fail, "seed %llu: commit failed (%s) on a healthy store",
				  (unsigned long long)s->seed, urt_strerror(ret));
	}
	free(buf);
	if (--s->live == 0)
		urt_waitq_wake_all(&s->done_wq);
}

static void checkpointer(void *arg)
{
	struct crash_state *s = arg;

	for (int i = 0; i < 3 && urt_ps_error(s->ps) == 0; i++) {
		urt_fiber_yield();
		urt_fiber_yield();
		if (urt_ps_checkpoint(s->ps))
			break;
	}
	if (--s->live == 0)
		urt_waitq_wake_all(&s->done_wq);
}

/* URT_TRACE=1: print every write-type command (for debugging one seed). */
static bool trace_hook(void *arg, const struct urt_sim_cmd *cmd)
{
	(void)arg;
	fprintf(stderr, "cmd %llu op %u fua %d off %llu len %llu\n",
		(unsigned long long)cmd->index, cmd->op, cmd->fua, (unsigned long long)cmd->off,
		(unsigned long long)cmd->len);
	return false;
}

static int open_store(struct crash_state *s, bool create)
{
	struct urt_ps_opts o;

	urt_ps_opts_default(&o);
	o.create = create;
	o.format_zero_pages = false;	/* The sim image starts zeroed. */
	o.pool_pages = 16;
	o.page_size = s->page_size;
	o.log_bytes = s->page_size == 4096 ? 128u << 10 : 256u << 10;
	o.tx_pages_max = PAGES_PER_TX_MAX;
	o.sync = s->sync_flush ? URT_PS_SYNC_FLUSH : URT_PS_SYNC_AUTO;
	o.log_depth = s->log_depth;
	o.page_hole = crash_hole;
	if (s->seed % 3 == 1)
		o.write_copies_kept = 0;	/* Ranged writes start sparse. */
	return urt_ps_open(s->dev, &o, &s->ps);
}

static int64_t hist_index(const struct crash_state *s, unsigned pg, uint64_t txid)
{
	for (int64_t i = (int64_t)s->nhist[pg] - 1; i >= 0; i--)
		if (s->hist[pg][i] == txid)
			return i;
	return -1;
}

/* Reads the txid shown by every page (one transaction per page: the pool is small). */
static int read_final(struct crash_state *s, int round, uint64_t *final)
{
	for (unsigned pg = 0; pg < NPAGES; pg++) {
		struct urt_tx *tx;
		void *p;
		int ret = urt_tx_begin(s->ps, &tx);

		if (ret == 0) {
			ret = urt_page_get(tx, pg, URT_PAGE_READ, &p);
			if (ret == 0)
				final[pg] = crash_check(p, urt_ps_page_data_bytes(s->ps), pg);
			urt_tx_abort(tx);
		}
		if (ret) {
			psx_failf(&s->fail, "seed %llu round %d: page %u: %s (%s)",
				  (unsigned long long)s->seed, round, pg, urt_strerror(ret),
				  urt_last_error());
			return ret;
		}
		if (final[pg] == UINT64_MAX) {
			psx_failf(&s->fail, "seed %llu round %d: page %u holds a broken pattern",
				  (unsigned long long)s->seed, round, pg);
			return -1;
		}
	}
	return 0;
}

/* Reads every page through the recovered store and checks the rules above. */
static void verify(struct crash_state *s, int round)
{
	uint64_t final[NPAGES];

	if (read_final(s, round, final))
		return;
	for (unsigned pg = 0; pg < NPAGES; pg++) {
		uint64_t t = final[pg];
		int64_t idx = t ? hist_index(s, pg, t) : -1;
		int64_t last_acked = -1;

		for (uint32_t i = 0; i < s->nhist[pg]; i++)
			if (s->tx[s->hist[pg][i]].status == TX_ACKED)
				last_acked = i;
		if (t && (idx < 0 || s->tx[t].status == TX_ABORTED || s->tx[t].status == TX_OPEN)) {
			psx_failf(&s->fail, "seed %llu round %d: page %u shows tx %llu (status %d) "
				  "which never committed it", (unsigned long long)s->seed, round, pg,
				  (unsigned long long)t, t < TX_MAX ? s->tx[t].status : -1);
			return;
		}
		if (idx < last_acked) {
			psx_failf(&s->fail, "seed %llu round %d: page %u lost acknowledged tx %u "
				  "(shows tx %llu)", (unsigned long long)s->seed, round, pg,
				  s->hist[pg][last_acked], (unsigned long long)t);
			return;
		}
		if (!t)
			continue;
		/* Atomicity: every page of t shows t or a later writer. */
		for (int k = 0; k < s->tx[t].npages; k++) {
			unsigned q = s->tx[t].pages[k];
			int64_t tq = hist_index(s, q, t);
			int64_t fq = final[q] ? hist_index(s, q, final[q]) : -1;

			if (fq < tq) {
				psx_failf(&s->fail, "seed %llu round %d: tx %llu half-applied: page %u "
					  "has it, page %u shows tx %llu", (unsigned long long)s->seed,
					  round, (unsigned long long)t, pg, q,
					  (unsigned long long)final[q]);
				return;
			}
		}
	}
}

/*
 * A transaction whose commit failed may or may not be durable; recovery
 * has decided.  Visible on a page: it is durable, so it now counts as
 * acknowledged.  Every page of it showing an earlier writer: it is gone for
 * good, so it counts as aborted and must never reappear (a stale log tail
 * replayed by a later recovery would bring it back).
 */
static void decide(struct crash_state *s)
{
	uint64_t final[NPAGES];

	if (s->fail.failed || read_final(s, -1, final))
		return;
	for (uint64_t t = 1; t < s->txid_next; t++) {
		struct crash_tx *x = &s->tx[t];
		bool seen = false, gone = true;

		if (x->status != TX_FAILED)
			continue;
		for (int k = 0; k < x->npages; k++) {
			unsigned q = x->pages[k];
			int64_t fq = final[q] ? hist_index(s, q, final[q]) : -1;

			seen |= final[q] == t;
			gone &= fq < hist_index(s, q, t);
		}
		if (seen)
			x->status = TX_ACKED;
		else if (gone)
			x->status = TX_ABORTED;
	}
}

/* One iteration: format, then ROUNDS times: work, crash, reopen, recover, verify. */
/* The scheduler variant: checkpoint and eviction writes are sorted and merged. */
static void sched_attach(struct crash_state *s)
{
	struct urt_sched_opts o;

	if (!s->sched)
		return;
	urt_sched_opts_default(&o);
	o.policy = URT_SCHED_CSCAN;
	o.depth_max = 4;
	if (urt_dev_sched_set(s->dev, &o))
		abort();
}

static void iteration(void *arg)
{
	struct crash_state *s = arg;
	int ret;

	sched_attach(s);
	ret = open_store(s, true);
	if (ret) {
		psx_failf(&s->fail, "seed %llu: format: %s", (unsigned long long)s->seed,
			  urt_strerror(ret));
		return;
	}
	for (int round = 0; round < ROUNDS && !s->fail.failed; round++) {
		struct urt_dev *next = NULL;
		struct urt_ps_stats st;

		s->crash_cmds = 1 + rnd(s) % 160;
		urt_sim_crash_after(s->dev, s->crash_cmds);
		if (getenv("URT_TRACE")) {
			fprintf(stderr, "round %d: crash after %llu commands\n", round,
				(unsigned long long)s->crash_cmds);
			urt_sim_set_hook(s->dev, trace_hook, NULL);
		}
		s->live = NFIBERS + 1;
		for (int i = 0; i < NFIBERS; i++)
			if (urt_fiber_spawn(committer, s))
				abort();
		if (urt_fiber_spawn(checkpointer, s))
			abort();
		while (s->live)
			urt_waitq_wait(&s->done_wq);
		/* A crash point past the end of the workload: cut the power now. */
		urt_sim_crash(s->dev, s->seed ^ 0x5bd1e995u);
		urt_ps_stats(s->ps, &st);
		s->log_deltas += st.log_deltas;
		s->log_images += st.log_images;
		s->log_image_holes += st.log_image_holes;
		s->sparse += st.write_copies_sparse;
		s->filled += st.write_copies_filled;
		s->overlapped += st.batches_overlapped;
		urt_ps_close(s->ps);
		s->ps = NULL;
		ret = urt_sim_reopen(s->dev, &next);
		if (ret) {
			psx_failf(&s->fail, "seed %llu: sim reopen: %d", (unsigned long long)s->seed,
				  ret);
			return;
		}
		s->devs[s->ndevs++] = next;
		s->dev = next;
		sched_attach(s);
		if (rnd(s) % 4 == 0) {
			/* A crash inside recovery (its replay write-back or checkpoint). */
			urt_sim_crash_after(s->dev, 1 + rnd(s) % 6);
			ret = open_store(s, false);
			if (ret == 0) {
				/* Recovery needed fewer commands: disarm, go on. */
				urt_sim_crash_after(s->dev, 0);
			} else {
				s->recovery_crashes++;
				urt_sim_crash(s->dev, s->seed ^ 0x1234567u);
				ret = urt_sim_reopen(s->dev, &next);
				if (ret) {
					psx_failf(&s->fail, "seed %llu: sim reopen: %d",
						  (unsigned long long)s->seed, ret);
					return;
				}
				s->devs[s->ndevs++] = next;
				s->dev = next;
				sched_attach(s);
				ret = open_store(s, false);
			}
		} else {
			ret = open_store(s, false);
		}
		if (ret) {
			psx_failf(&s->fail, "seed %llu round %d (crash after %llu commands): "
				  "recovery failed: %s (%s)", (unsigned long long)s->seed, round,
				  (unsigned long long)s->crash_cmds, urt_strerror(ret),
				  urt_last_error());
			return;
		}
		urt_ps_stats(s->ps, &st);
		s->recovered_pages += st.recovered_pages;
		s->recovered_deltas += st.recovered_deltas;
		if (getenv("URT_TRACE"))
			fprintf(stderr, "recovered: %llu batches, %llu pages, log end %llu\n",
				(unsigned long long)st.recovered_batches,
				(unsigned long long)st.recovered_pages,
				(unsigned long long)st.durable_lsn);
		verify(s, round);
		decide(s);
	}
	if (s->ps) {
		urt_ps_close(s->ps);
		s->ps = NULL;
	}
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);

	return v && *v ? strtoull(v, NULL, 0) : dflt;
}

static void run_crash(bool sched, uint64_t iters_default)
{
	struct urt_rt *rt = psx_start();
	bool soak = env_u64("URT_SOAK", 0) != 0;
	uint64_t one = env_u64("URT_SEED", 0);
	uint64_t iters = one ? 1 : env_u64("URT_CRASH_ITERS", soak ? 200000 : iters_default);
	uint64_t first = one ? one : 1;
	struct crash_state *s = malloc(sizeof(*s));
	uint64_t acked = 0, crashes = 0, replayed = 0, rec_crashes = 0, merged = 0;
	uint64_t deltas = 0, images = 0, holes = 0, replayed_deltas = 0, ranged = 0;
	uint64_t sparse = 0, filled = 0;
	static const uint32_t depths[] = { 1, 1, 2, 4 };	/* By (seed / 4) % 4: half at depth 1. */
	uint64_t depth_crashes[5] = { 0 };			/* Crash points per log depth. */
	uint64_t overlapped[5] = { 0 };				/* Overlapping batches per log depth. */
	uint64_t t0, t1;

	cr_assert(s);
	t0 = urt_clock_ns();
	for (uint64_t seed = first; seed < first + iters; seed++) {
		memset(s, 0, sizeof(*s));
		s->seed = seed;
		s->rng = seed * 0x9e3779b97f4a7c15ull | 1;
		s->txid_next = 1;
		s->sync_flush = seed & 1;
		s->page_size = seed % 4 == 3 ? 8192 : 4096;
		s->log_depth = depths[(seed / 4) % 4];
		s->sched = sched;
		s->dev = psx_sim(DEV_BYTES, seed);
		s->devs[s->ndevs++] = s->dev;
		psx_run(rt, iteration, s);
		for (unsigned i = 0; i < s->ndevs; i++) {
			struct urt_sched_stats st;

			if (urt_dev_sched_stats(s->devs[i], &st) == 0)
				merged += st.merged;
			urt_dev_close(s->devs[i]);
		}
		cr_assert_eq(s->fail.failed, 0, "%s (rerun with URT_SEED=%llu)", s->fail.msg,
			     (unsigned long long)seed);
		acked += s->acked;
		crashes += ROUNDS;
		depth_crashes[s->log_depth] += ROUNDS;
		overlapped[s->log_depth] += s->overlapped;
		replayed += s->recovered_pages;
		replayed_deltas += s->recovered_deltas;
		deltas += s->log_deltas;
		images += s->log_images;
		holes += s->log_image_holes;
		sparse += s->sparse;
		filled += s->filled;
		ranged += s->ranged_writes;
		rec_crashes += s->recovery_crashes;
	}
	t1 = urt_clock_ns();
	urt_rt_stop(rt);
	free(s);
	cr_log_info("%llu crash points, %llu acknowledged commits checked, %llu page records "
		    "replayed, %.1f s", (unsigned long long)crashes, (unsigned long long)acked,
		    (unsigned long long)replayed,
		    (double)(t1 - t0) / 1e9);
	fprintf(stderr, "crash: %llu crash points (+%llu inside recovery), %llu acknowledged commits "
		"checked; written %llu page deltas and %llu images (%llu with a hole; %llu pages by "
		"ranges); replayed "
		"%llu page records (%llu deltas)\n", (unsigned long long)crashes,
		(unsigned long long)rec_crashes, (unsigned long long)acked,
		(unsigned long long)deltas, (unsigned long long)images, (unsigned long long)holes,
		(unsigned long long)ranged,
		(unsigned long long)replayed, (unsigned long long)replayed_deltas);
	fprintf(stderr, "crash: crash points by log depth: %llu at 1, %llu at 2, %llu at 4; batches "
		"sealed while another was in flight: %llu, %llu, %llu\n",
		(unsigned long long)depth_crashes[1], (unsigned long long)depth_crashes[2],
		(unsigned long long)depth_crashes[4], (unsigned long long)overlapped[1],
		(unsigned long long)overlapped[2], (unsigned long long)overlapped[4]);
	cr_expect_eq(overlapped[1], 0, "log depth 1 had two batches in flight");
	if (sched)
		fprintf(stderr, "crash: %llu ops went out in merged commands\n", (unsigned long long)merged);
	/* The default run must place at least 10,000 crash points (600 with the scheduler). */
	if (sched)
		cr_expect_gt(merged, 0, "the scheduler never merged a write: the variant tested nothing new");
	cr_expect_geq(crashes, one || getenv("URT_CRASH_ITERS") ? ROUNDS * iters : ROUNDS * iters_default,
		      "fewer crash points than required");
	cr_expect_gt(acked, 0, "no commit was ever acknowledged: the workload did nothing");
	/* A run of at least 16 iterations covers every depth: one that did not, tested less than it says. */
	if (iters >= 16)
		for (unsigned d = 1; d <= 4; d *= 2)
			cr_expect_gt(depth_crashes[d], 0, "no crash point at log depth %u", d);
	/* Depth > 1 must really have overlapped batches, or it tested depth 1 again. */
	if (iters >= 16)
		cr_expect_gt(overlapped[2] + overlapped[4], 0,
			     "log depth > 1 never had two batches in flight");
	/* Delta records on: a run that wrote or replayed none did not test them. */
	cr_expect_gt(deltas, 0, "no page delta record was written");
	cr_expect_gt(holes, 0, "no page image left a hole out: PAGE_IMAGE_HOLE went untested");
	fprintf(stderr, "crash: %llu sparse write copies, %llu of them filled in later\n",
		(unsigned long long)sparse, (unsigned long long)filled);
	cr_expect_gt(sparse, 0, "no ranged write started from a sparse copy");
	cr_expect_gt(filled, 0, "no sparse copy was filled in: tx_materialize went untested");
	cr_expect_lt(filled, sparse, "every sparse copy was filled in: commits of sparse copies untested");
	cr_expect_lt(holes, images, "every image had a hole: the wrong-hint fallback went untested");
	cr_expect_gt(replayed_deltas, 0, "no page delta record was replayed");
	cr_expect_gt(ranged, 0, "no page was written through urt_page_write_at");
}

Test(crash, random_crash_points, .timeout = 600)
{
	run_crash(false, 5000);
}

/* The same with merged checkpoint and eviction writes: a torn merged write tears per sector. */
Test(crash, random_crash_points_merged, .timeout = 600)
{
	run_crash(true, 300);
}
