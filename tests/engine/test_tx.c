/*
 * Transactions of the page store: commit makes data visible and durable
 * across close/open, abort discards, read-your-writes, write-write
 * conflicts fail fast, page sizes and bounds are enforced; URT_PAGE_NEW
 * hands out a zeroed copy without reading the device, and commits and
 * aborts like a write; kept write copies (see kept_write_copies); sparse
 * copies of urt_page_write_at (see sparse_write_copies).
 */
#include "ps_fixture.h"

struct tx_state {
	struct urt_dev *dev;
	uint32_t page_size;
	int ret[32];
	uint64_t seen[32];
	struct psx_fail fail;
};

static struct urt_ps *open_store(struct tx_state *s, bool create)
{
	struct urt_ps_opts o;

	urt_ps_opts_default(&o);
	o.create = create;
	o.page_size = s->page_size;
	o.pool_pages = 16;
	return psx_open(s->dev, &o, &s->fail);
}

/*
 * The main-thread half of a test: body runs against a fresh 8 MiB sim
 * device made with seed, and must record no failure.
 */
static void tx_run(struct tx_state *s, uint64_t seed, void (*body)(void *arg))
{
	s->dev = psx_sim(8u << 20, seed);
	psx_run_and_close(body, s, &s->dev, NULL, &s->fail);
}

static void body_roundtrip(void *arg)
{
	struct tx_state *s = arg;
	struct urt_ps *ps = open_store(s, true);
	int err;

	if (!ps)
		return;
	/* Fresh pages read as zeros. */
	s->seen[0] = psx_read_page(ps, 3, &s->ret[0]);
	/* Pages 0..9 across two transactions; page 5 twice. */
	for (uint64_t i = 0; i < 10; i++)
		s->ret[1] |= psx_write_page(ps, i, 100 + i);
	s->ret[2] = psx_write_page(ps, 5, 777);
	s->ret[3] = urt_ps_close(ps);
	ps = open_store(s, false);
	if (!ps)
		return;
	for (uint64_t i = 0; i < 10; i++) {
		uint64_t v = psx_read_page(ps, i, &err);

		if (err || v != (i == 5 ? 777 : 100 + i))
			psx_failf(&s->fail, "page %llu after reopen: err %d txid %llu",
				  (unsigned long long)i, err, (unsigned long long)v);
	}
	s->ret[4] = urt_ps_close(ps);
}

Test(tx, commit_survives_reopen)
{
	struct tx_state s = { .page_size = 4096 };

	tx_run(&s, 1, body_roundtrip);
	cr_expect_eq(s.ret[0], 0);
	cr_expect_eq(s.seen[0], 0, "a fresh page must read as zeros");
	cr_expect_eq(s.ret[1], 0);
	cr_expect_eq(s.ret[2], 0);
	cr_expect_eq(s.ret[3], 0);
	cr_expect_eq(s.ret[4], 0);
}

static void body_page_sizes(void *arg)
{
	struct tx_state *s = arg;
	struct urt_ps *ps = open_store(s, true);
	struct urt_ps_opts o;
	int err;

	if (!ps)
		return;
	s->seen[0] = urt_ps_page_data_bytes(ps);
	s->ret[0] = psx_write_page(ps, 1, 42);
	s->ret[1] = urt_ps_close(ps);
	/* Asking for another page size is a clear error. */
	urt_ps_opts_default(&o);
	o.page_size = s->page_size == 4096 ? 8192 : 4096;
	s->ret[2] = urt_ps_open(s->dev, &o, &ps);
	o.page_size = 0;
	s->ret[3] = urt_ps_open(s->dev, &o, &ps);
	if (s->ret[3] == 0) {
		s->seen[1] = psx_read_page(ps, 1, &err);
		s->ret[4] = err;
		s->ret[5] = urt_ps_close(ps);
	}
}

static void run_page_size(uint32_t page_size)
{
	struct tx_state s = { .page_size = page_size };

	tx_run(&s, 2, body_page_sizes);
	cr_expect_eq(s.seen[0], page_size - 32);
	cr_expect_eq(s.ret[0], 0);
	cr_expect_eq(s.ret[1], 0);
	cr_expect_eq(s.ret[2], URT_E_BADFORMAT, "wrong page size: %d", s.ret[2]);
	cr_expect_eq(s.ret[3], 0);
	cr_expect_eq(s.ret[4], 0);
	cr_expect_eq(s.seen[1], 42);
	cr_expect_eq(s.ret[5], 0);
}

Test(tx, page_size_4k) { run_page_size(4096); }
Test(tx, page_size_8k) { run_page_size(8192); }
Test(tx, page_size_16k) { run_page_size(16384); }

static void body_abort(void *arg)
{
	struct tx_state *s = arg;
	struct urt_ps *ps = open_store(s, true);
	struct urt_tx *a, *b;
	void *pa, *pb, *p2;
	int err;

	if (!ps)
		return;
	s->ret[0] = psx_write_page(ps, 2, 11);
	/* Abort discards: the committed image stays. */
	urt_tx_begin(ps, &a);
	s->ret[1] = urt_page_get(a, 2, URT_PAGE_WRITE, &pa);
	psx_fill(pa, urt_ps_page_data_bytes(ps), 12, 2);
	/* Read-your-writes inside a. */
	s->ret[2] = urt_page_get(a, 2, URT_PAGE_READ, &p2);
	s->seen[0] = p2 == pa;
	/* A concurrent writer of page 2 fails at once; a reader sees committed data. */
	urt_tx_begin(ps, &b);
	s->ret[3] = urt_page_get(b, 2, URT_PAGE_WRITE, &pb);
	s->ret[4] = urt_page_get(b, 2, URT_PAGE_READ, &pb);
	if (s->ret[4] == 0)
		s->seen[1] = psx_check(pb, urt_ps_page_data_bytes(ps), 2);
	urt_tx_abort(b);
	urt_tx_abort(a);
	s->seen[2] = psx_read_page(ps, 2, &err);
	/* Once a is gone, the lock is free again. */
	s->ret[5] = psx_write_page(ps, 2, 13);
	s->seen[3] = psx_read_page(ps, 2, &err);
	/* Out of range. */
	urt_tx_begin(ps, &a);
	s->ret[6] = urt_page_get(a, urt_ps_page_count(ps), URT_PAGE_READ, &pa);
	urt_tx_abort(a);
	s->ret[7] = urt_ps_close(ps);
}

Test(tx, abort_and_conflicts)
{
	struct tx_state s = { .page_size = 4096 };

	tx_run(&s, 3, body_abort);
	cr_expect_eq(s.ret[0], 0);
	cr_expect_eq(s.ret[1], 0);
	cr_expect_eq(s.ret[2], 0);
	cr_expect_eq(s.seen[0], 1, "read-your-writes must return the private copy");
	cr_expect_eq(s.ret[3], -EBUSY);
	cr_expect_eq(s.ret[4], 0);
	cr_expect_eq(s.seen[1], 11, "a reader must see the committed image, not the copy");
	cr_expect_eq(s.seen[2], 11, "abort must leave the committed image");
	cr_expect_eq(s.ret[5], 0);
	cr_expect_eq(s.seen[3], 13);
	cr_expect_eq(s.ret[6], -ERANGE);
	cr_expect_eq(s.ret[7], 0);
}

static void body_blank(void *arg)
{
	struct tx_state *s = arg;
	struct urt_ps_opts o;
	struct urt_ps *ps;

	urt_ps_opts_default(&o);
	s->ret[0] = urt_ps_open(s->dev, &o, &ps);
}

Test(tx, blank_device_without_create)
{
	struct tx_state s = { .page_size = 4096 };

	tx_run(&s, 4, body_blank);
	cr_expect_eq(s.ret[0], URT_E_BADFORMAT, "%d", s.ret[0]);
}

/* Writes byte v over the first 64 bytes of page pgno in a new transaction; commits or aborts. */
static int write_byte(struct urt_ps *ps, uint64_t pgno, uint8_t v, bool commit, uint8_t *before)
{
	struct urt_tx *tx;
	uint8_t *p;
	int ret = urt_tx_begin(ps, &tx);

	if (ret)
		return ret;
	ret = urt_page_get(tx, pgno, URT_PAGE_WRITE, (void **)&p);
	if (ret) {
		urt_tx_abort(tx);
		return ret;
	}
	*before = p[0];
	memset(p, v, 64);
	if (!commit) {
		urt_tx_abort(tx);
		return 0;
	}
	return urt_tx_commit(tx);
}

static uint8_t read_byte(struct urt_ps *ps, uint64_t pgno, int *err)
{
	struct urt_tx *tx;
	uint8_t *p, v = 0xee;

	*err = urt_tx_begin(ps, &tx);
	if (*err)
		return v;
	*err = urt_page_get(tx, pgno, URT_PAGE_READ, (void **)&p);
	if (!*err)
		v = p[0];
	urt_tx_abort(tx);
	return v;
}

static void body_kept_copies(void *arg)
{
	struct tx_state *s = arg;
	struct urt_ps_opts o;
	struct urt_ps_stats st;
	struct urt_ps *ps;
	uint8_t before = 0;
	int err = 0;

	urt_ps_opts_default(&o);
	o.create = true;
	o.pool_pages = 8;
	o.write_copies_kept = 2;
	ps = psx_open(s->dev, &o, &s->fail);
	if (!ps)
		return;
	s->ret[0] |= write_byte(ps, 1, 0xa1, true, &before);
	/* The second writer takes the kept copy: it must hold the committed bytes. */
	s->ret[0] |= write_byte(ps, 1, 0xb2, true, &before);
	if (before != 0xa1)
		psx_failf(&s->fail, "second write saw %#x, committed %#x", before, 0xa1);
	/* An aborted writer's copy is not kept: the next writer sees the committed bytes. */
	s->ret[0] |= write_byte(ps, 1, 0xc3, false, &before);
	s->ret[0] |= write_byte(ps, 1, 0xd4, true, &before);
	if (before != 0xb2)
		psx_failf(&s->fail, "write after an abort saw %#x, committed %#x", before, 0xb2);
	/* More pages than kept copies and than frames: copies are dropped and evicted. */
	for (uint64_t pg = 2; pg < 40; pg++)
		s->ret[0] |= write_byte(ps, pg, (uint8_t)pg, true, &before);
	for (uint64_t pg = 2; pg < 40; pg++) {
		s->ret[0] |= write_byte(ps, pg, (uint8_t)(pg + 100), true, &before);
		if (before != (uint8_t)pg)
			psx_failf(&s->fail, "page %llu: a writer saw %#x, committed %#x",
				  (unsigned long long)pg, before, (unsigned)(uint8_t)pg);
	}
	s->ret[0] |= write_byte(ps, 1, 0xe5, true, &before);
	if (before != 0xd4)
		psx_failf(&s->fail, "page 1 after evictions: a writer saw %#x, committed %#x", before, 0xd4);
	urt_ps_stats(ps, &st);
	s->seen[0] = st.write_copies_reused;
	s->seen[1] = st.write_copies;
	s->ret[1] = urt_ps_close(ps);
	o.create = false;
	ps = psx_open(s->dev, &o, &s->fail);
	if (!ps)
		return;
	s->seen[2] = read_byte(ps, 1, &err);
	s->ret[2] = err;
	s->ret[3] = urt_ps_close(ps);
}

/* The copies the pool keeps after commit (pool.c invariant 6) never leak other bytes. */
Test(tx, kept_write_copies)
{
	struct tx_state s = { .page_size = 4096 };

	tx_run(&s, 7, body_kept_copies);
	cr_expect_eq(s.ret[0], 0);
	cr_expect_gt(s.seen[0], 0, "no write took a kept copy");
	cr_expect_gt(s.seen[1], 0, "no write made a copy");
	cr_expect_eq(s.ret[1], 0);
	cr_expect_eq(s.ret[2], 0);
	cr_expect_eq(s.seen[2], 0xe5, "page 1 after reopen: %#llx", (unsigned long long)s.seen[2]);
	cr_expect_eq(s.ret[3], 0);
}

/* ---- Sparse copies of urt_page_write_at --------------------------------- */

/* The byte page 4 must hold at i of its data after body_sparse's commits (step k). */
static uint8_t sparse_want(unsigned k, size_t i)
{
	if (k >= 1 && i >= 100 && i < 110)
		return 0x22;
	if (k >= 1 && i >= 1000 && i < 1003)
		return 0x33;
	if (k >= 2 && i >= 200 && i < 205)
		return 0x44;
	return 0x11;
}

/* Whether page 4 holds sparse_want(k); a READ of its own transaction when tx is given. */
static bool sparse_page_ok(struct urt_ps *ps, struct urt_tx *tx, unsigned k)
{
	struct urt_tx *own = tx;
	uint8_t *p;
	bool ok = true;

	if (!own && urt_tx_begin(ps, &own))
		return false;
	if (urt_page_get(own, 4, URT_PAGE_READ, (void **)&p)) {
		ok = false;
	} else {
		for (size_t i = 0; i < urt_ps_page_data_bytes(ps); i++)
			ok &= p[i] == sparse_want(k, i);
	}
	if (!tx)
		urt_tx_abort(own);
	return ok;
}

static int write_fill(struct urt_tx *tx, uint32_t off, uint32_t n, uint8_t v)
{
	uint8_t buf[16];

	memset(buf, v, sizeof(buf));
	return urt_page_write_at(tx, 4, off, buf, n);
}

static void body_sparse(void *arg)
{
	struct tx_state *s = arg;
	struct urt_ps_opts o;
	struct urt_ps_stats a, b, c, d;
	struct urt_ps *ps;
	struct urt_tx *tx;
	uint8_t *p;

	urt_ps_opts_default(&o);
	o.create = true;
	o.pool_pages = 16;
	o.write_copies_kept = 0;	/* No kept copies: every ranged write starts sparse. */
	ps = psx_open(s->dev, &o, &s->fail);
	if (!ps)
		return;
	if (urt_tx_begin(ps, &tx) || urt_page_get(tx, 4, URT_PAGE_WRITE, (void **)&p)) {
		psx_failf(&s->fail, "setup of page 4");
		return;
	}
	memset(p, 0x11, urt_ps_page_data_bytes(ps));
	s->ret[0] = urt_tx_commit(tx);
	urt_ps_stats(ps, &a);

	/* Two ranges in one entry, committed without ever copying the page. */
	s->ret[1] = urt_tx_begin(ps, &tx);
	if (!s->ret[1]) {
		s->ret[1] |= write_fill(tx, 100, 10, 0x22);
		s->ret[1] |= write_fill(tx, 1000, 3, 0x33);
		s->ret[1] |= urt_tx_commit(tx);
	}
	urt_ps_stats(ps, &b);
	s->seen[0] = b.write_copies_sparse - a.write_copies_sparse;
	s->seen[1] = b.write_copies_filled - a.write_copies_filled;
	s->seen[2] = b.write_copies - a.write_copies;
	s->seen[3] = sparse_page_ok(ps, NULL, 1);

	/* A READ of the page in the writing transaction sees the whole page, its write included. */
	s->ret[2] = urt_tx_begin(ps, &tx);
	if (!s->ret[2]) {
		s->ret[2] |= write_fill(tx, 200, 5, 0x44);
		s->seen[4] = sparse_page_ok(ps, tx, 2);
		/* Still ranged after the READ: a write of bytes already there logs nothing new. */
		s->ret[2] |= write_fill(tx, 202, 2, 0x44);
		s->ret[2] |= urt_tx_commit(tx);
	}
	urt_ps_stats(ps, &c);
	s->seen[5] = c.write_copies_filled - b.write_copies_filled;
	s->seen[6] = sparse_page_ok(ps, NULL, 2);

	/* Aborted and unchanged writes leave the page as it was. */
	s->ret[3] = urt_tx_begin(ps, &tx);
	if (!s->ret[3]) {
		s->ret[3] |= write_fill(tx, 300, 16, 0x55);
		urt_tx_abort(tx);
	}
	s->ret[4] = urt_tx_begin(ps, &tx);
	if (!s->ret[4]) {
		s->ret[4] |= write_fill(tx, 500, 16, 0x11);
		s->ret[4] |= urt_tx_commit(tx);
	}
	urt_ps_stats(ps, &d);
	s->seen[7] = d.commits_readonly - c.commits_readonly;
	s->seen[8] = sparse_page_ok(ps, NULL, 2);
	s->ret[5] = urt_ps_close(ps);
	o.create = false;
	ps = psx_open(s->dev, &o, &s->fail);
	if (!ps)
		return;
	s->seen[9] = sparse_page_ok(ps, NULL, 2);
	s->ret[6] = urt_ps_close(ps);
}

/* urt_page_write_at without a kept copy copies only what it writes, and nothing reads the rest. */
Test(tx, sparse_write_copies)
{
	struct tx_state s = { .page_size = 4096 };

	tx_run(&s, 11, body_sparse);
	for (int i = 0; i < 7; i++)
		cr_expect_eq(s.ret[i], 0, "step %d: %d", i, s.ret[i]);
	cr_expect_eq(s.seen[0], 1, "the ranged entry was not sparse");
	cr_expect_eq(s.seen[1], 0, "a commit of ranges alone filled the copy in");
	cr_expect_eq(s.seen[2], 0, "a ranged write copied the page");
	cr_expect(s.seen[3], "page 4 wrong after the ranged commit");
	cr_expect(s.seen[4], "a READ in the writing transaction did not see the whole page");
	cr_expect_eq(s.seen[5], 1, "the READ did not fill the copy in once");
	cr_expect(s.seen[6], "page 4 wrong after the second commit");
	cr_expect_eq(s.seen[7], 1, "a write of unchanged bytes was logged");
	cr_expect(s.seen[8], "an aborted or unchanged write changed page 4");
	cr_expect(s.seen[9], "page 4 wrong after reopen");
}

/* URT_PAGE_NEW: no device read for a page not in the pool, a zeroed copy, commit and abort as WRITE. */
static void body_page_new(void *arg)
{
	struct tx_state *s = arg;
	struct urt_ps *ps = open_store(s, true);
	struct urt_ps_stats a, b;
	struct urt_tx *tx;
	uint8_t *p;
	size_t n;
	int err;

	if (!ps)
		return;
	n = urt_ps_page_data_bytes(ps);
	/* Page 7 written, then pushed out of the 16-frame pool by 40 other pages. */
	if (psx_write_page(ps, 7, 70) || urt_ps_checkpoint(ps))
		psx_failf(&s->fail, "setup write of page 7");
	for (uint64_t i = 20; i < 60; i++)
		(void)psx_read_page(ps, i, &err);
	urt_ps_stats(ps, &a);
	if (urt_tx_begin(ps, &tx) || urt_page_get(tx, 7, URT_PAGE_NEW, (void **)&p)) {
		psx_failf(&s->fail, "NEW on page 7");
		return;
	}
	urt_ps_stats(ps, &b);
	if (b.misses != a.misses)
		psx_failf(&s->fail, "NEW read the device: misses %llu -> %llu",
			  (unsigned long long)a.misses, (unsigned long long)b.misses);
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0) {
			psx_failf(&s->fail, "NEW copy not zeroed at byte %zu", i);
			break;
		}
	/* Aborted: nothing changes at home, where page 7 still holds txid 70. */
	p[0] = 0xee;
	urt_tx_abort(tx);
	for (uint64_t i = 20; i < 60; i++)
		(void)psx_read_page(ps, i, &err);
	if (psx_read_page(ps, 7, &err) != 70 || err)
		psx_failf(&s->fail, "page 7 after an aborted NEW: err %d", err);
	/* Committed: the new contents survive a reopen. */
	if (urt_tx_begin(ps, &tx) || urt_page_get(tx, 9, URT_PAGE_NEW, (void **)&p)) {
		psx_failf(&s->fail, "NEW on page 9");
		return;
	}
	psx_fill(p, n, 90, 9);
	if (urt_tx_commit(tx))
		psx_failf(&s->fail, "commit of NEW page 9");
	if (urt_ps_close(ps))
		psx_failf(&s->fail, "close");
	ps = open_store(s, false);
	if (!ps)
		return;
	if (psx_read_page(ps, 9, &err) != 90 || err)
		psx_failf(&s->fail, "NEW page 9 after reopen: err %d", err);
	s->ret[0] = urt_ps_close(ps);
}

Test(tx, page_new)
{
	struct tx_state s = { .page_size = 4096 };

	tx_run(&s, 5, body_page_new);
	cr_expect_eq(s.ret[0], 0);
}
