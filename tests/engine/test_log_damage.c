/*
 * Damage to an acknowledged log batch is corruption, not the end of the log
 * (recovery.c, end_check; format version 4's durable_lsn).  A store
 * commits ten single-page transactions, one batch each, and loses power;
 * then one byte of the fourth batch is flipped, in its body or in its
 * header.  The later batches were sealed once the fourth was durable and
 * say so, so the open must refuse with URT_E_CORRUPT naming the damaged
 * batch, where it used to end the log there and drop transactions 4-10.
 * Damage to the last batch cannot be told from a crash's torn tail: the
 * store opens with the nine before it (docs/format.md, §5.6).
 */
#include "engine/format/format.h"
#include "ps_fixture.h"

#define LOG_BYTES (256u << 10)
#define NTX 10u
#define DAMAGED 3u			/* Index of the batch damaged (the fourth). */

enum damage { DAMAGE_BODY, DAMAGE_HEADER, DAMAGE_LAST };

struct ld_state {
	struct urt_dev *dev;
	struct urt_dev *crashed;
	struct urt_ps *ps;
	struct urt_ps_opts o;
	enum damage what;
	uint64_t lsn[NTX];		/* LSN of transaction i's batch. */
	int ret_open;			/* urt_ps_open after the damage. */
	char msg[512];			/* Its message. */
	uint64_t v[NTX];		/* Pages after a successful open. */
	int err[NTX];
	struct psx_fail fail;
};

static void body(void *arg)
{
	struct ld_state *s = arg;
	struct urt_ps_stats st;
	uint64_t off;
	uint8_t *blk;
	unsigned k;

	s->ps = psx_open(s->dev, &s->o, &s->fail);
	if (!s->ps)
		return;
	for (unsigned i = 0; i < NTX; i++) {
		/* Depth 1, one committer: nothing in flight, so the next batch starts at the durable point. */
		urt_ps_stats(s->ps, &st);
		s->lsn[i] = st.durable_lsn;
		if (psx_write_page(s->ps, 1 + i, 100 + i)) {
			psx_failf(&s->fail, "commit %u failed", i);
			return;
		}
	}
	/* Power off with the store open: no checkpoint moves the log's start past the batches. */
	urt_sim_crash(s->dev, 11);
	urt_ps_close(s->ps);
	s->ps = NULL;
	if (psx_reopen_crashed(&s->dev, &s->crashed)) {
		psx_failf(&s->fail, "sim reopen failed");
		return;
	}
	k = s->what == DAMAGE_LAST ? NTX - 1 : DAMAGED;
	off = URT_SB_REGION_SIZE + s->lsn[k] % LOG_BYTES;
	/* The body's first record header (byte 70), or the header's lsn field (byte 20). */
	off += s->what == DAMAGE_HEADER ? 20 : 70;
	blk = urt_buf_get(4096);
	if (!blk || urt_read(s->dev, blk, 4096, off / 4096 * 4096) != 4096) {
		psx_failf(&s->fail, "reading the batch failed");
		return;
	}
	blk[off % 4096] ^= 0x40;
	if (urt_write(s->dev, blk, 4096, off / 4096 * 4096) != 4096 || urt_flush(s->dev)) {
		psx_failf(&s->fail, "damaging the batch failed");
		return;
	}
	urt_buf_put(blk);
	s->o.create = false;
	s->ret_open = urt_ps_open(s->dev, &s->o, &s->ps);
	snprintf(s->msg, sizeof(s->msg), "%s", urt_last_error());
	if (s->ret_open)
		return;
	for (unsigned i = 0; i < NTX; i++)
		s->v[i] = psx_read_page(s->ps, 1 + i, &s->err[i]);
	urt_ps_close(s->ps);
}

static void run(enum damage what, struct ld_state *s)
{
	s->dev = psx_sim(8u << 20, 7);
	cr_assert(s->dev);
	urt_ps_opts_default(&s->o);
	s->o.create = true;
	s->o.log_bytes = LOG_BYTES;
	s->o.pool_pages = 32;
	s->what = what;
	psx_run_and_close(body, s, &s->dev, &s->crashed, &s->fail);
	for (unsigned i = 1; i < NTX; i++)
		cr_assert_gt(s->lsn[i], s->lsn[i - 1], "one batch per transaction");
}

static void expect_refused(struct ld_state *s)
{
	char want[64];

	cr_expect_eq(s->ret_open, URT_E_CORRUPT, "open: %d (%s)", s->ret_open, s->msg);
	snprintf(want, sizeof(want), "log batch at LSN %llu is damaged",
		 (unsigned long long)s->lsn[DAMAGED]);
	cr_expect(strstr(s->msg, want) != NULL, "message: %s", s->msg);
	cr_expect(strstr(s->msg, "not a crash's torn tail") != NULL, "message: %s", s->msg);
}

Test(log_damage, damaged_body_of_an_acknowledged_batch_is_refused, .timeout = 60)
{
	struct ld_state s = { 0 };

	run(DAMAGE_BODY, &s);
	expect_refused(&s);
}

Test(log_damage, damaged_header_of_an_acknowledged_batch_is_refused, .timeout = 60)
{
	struct ld_state s = { 0 };

	run(DAMAGE_HEADER, &s);
	expect_refused(&s);
}

Test(log_damage, damaged_last_batch_ends_the_log_like_a_torn_tail, .timeout = 60)
{
	struct ld_state s = { 0 };

	run(DAMAGE_LAST, &s);
	cr_assert_eq(s.ret_open, 0, "open: %d (%s)", s.ret_open, s.msg);
	for (unsigned i = 0; i < NTX - 1; i++) {
		cr_expect_eq(s.err[i], 0, "page %u: %d", 1 + i, s.err[i]);
		cr_expect_eq(s.v[i], 100 + i, "page %u holds txid %llu", 1 + i,
			     (unsigned long long)s.v[i]);
	}
	cr_expect_eq(s.v[NTX - 1], 0, "the damaged last transaction is dropped, its page unwritten");
}
