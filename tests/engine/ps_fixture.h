/*
 * Shared helpers of the page-store tests: a one-core runtime, running a
 * function in a fiber and waiting for it, sim devices, power cuts, the page
 * pattern every test writes and checks, and one-page transactions that
 * write and read it.
 *
 * Criterion's assertions must run on the test's main thread, so code in a
 * fiber records what it saw in a struct (or a message in psx_fail) and the
 * test asserts after psx_run returns.
 */
#ifndef URT_TESTS_PS_FIXTURE_H
#define URT_TESTS_PS_FIXTURE_H

#include <criterion/criterion.h>
#include <errno.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "urt/buf.h"
#include "urt/dev.h"
#include "urt/error.h"
#include "urt/fiber.h"
#include "urt/ps.h"
#include "urt/rt.h"
#include "urt/sim.h"
#include "../fiber_run.h"
#include "../sim_open.h"

/* Run fn(arg) in a fiber on core 0 of rt and wait until it returns. */
static inline void psx_run(struct urt_rt *rt, void (*fn)(void *arg), void *arg)
{
	tests_fiber_run(rt, 0, fn, arg);
}

static inline struct urt_rt *psx_start(void)
{
	static const int cpu0 = 0;
	struct urt_rt_opts o;

	urt_rt_opts_default(&o);
	o.cpus = &cpu0;
	o.ncpus = 1;
	o.buf_region_bytes = 16u << 20;
	o.fiber_stack_bytes = 64u << 10;
	return tests_rt_start(&o);
}

static inline struct urt_dev *psx_sim(uint64_t size, uint64_t seed)
{
	struct urt_sim_opts o;

	urt_sim_opts_default(&o);
	o.size_bytes = size;
	o.seed = seed;
	return tests_sim_open(&o);
}

/* A first failure message recorded in a fiber, asserted on the main thread (fiber_run.h). */
#define psx_fail tests_fail
#define psx_failf tests_failf

/*
 * The main-thread half of a test: runs body(state) in a fiber on a fresh
 * one-core runtime and stops it, closes the test's device *dev and the
 * frozen device a power cut left in *crashed (NULL when the test never
 * cuts power), then asserts that body recorded no failure in *fail.
 */
static inline void psx_run_and_close(void (*body)(void *state), void *state, struct urt_dev **dev,
				     struct urt_dev **crashed, const struct psx_fail *fail)
{
	struct urt_rt *rt = psx_start();

	psx_run(rt, body, state);
	urt_rt_stop(rt);
	urt_dev_close(*dev);
	if (crashed)
		urt_dev_close(*crashed);
	cr_assert_eq(fail->failed, 0, "%s", fail->msg);
}

/*
 * After urt_sim_crash(*dev): moves the frozen device to *crashed (the test
 * closes it at the end) and puts a device holding the post-crash image in
 * *dev.  Returns 0, or the error of urt_sim_reopen with *dev unchanged.
 */
static inline int psx_reopen_crashed(struct urt_dev **dev, struct urt_dev **crashed)
{
	struct urt_dev *frozen = *dev;
	int ret = urt_sim_reopen(frozen, dev);

	if (ret) {
		*dev = frozen;
		return ret;
	}
	*crashed = frozen;
	return 0;
}

/* Opens the store on dev with o; on failure records why in f and returns NULL. */
static inline struct urt_ps *psx_open(struct urt_dev *dev, const struct urt_ps_opts *o,
				      struct psx_fail *f)
{
	struct urt_ps *ps = NULL;
	int ret = urt_ps_open(dev, o, &ps);

	if (ret)
		psx_failf(f, "urt_ps_open: %s (%s)", urt_strerror(ret), urt_last_error());
	return ps;
}

/*
 * Power cycle after the store was closed (a failure may have left the
 * device in an unknown state): cuts the power (seed draws which cached
 * writes land), then reopens the device (psx_reopen_crashed) and, with
 * o->create cleared, the existing store.  NULL, with the failure recorded
 * in f, when either does not open.
 */
static inline struct urt_ps *psx_power_cycle(struct urt_dev **dev, struct urt_dev **crashed,
					     struct urt_ps_opts *o, uint64_t seed, struct psx_fail *f)
{
	urt_sim_crash(*dev, seed);
	if (psx_reopen_crashed(dev, crashed)) {
		psx_failf(f, "sim reopen failed");
		return NULL;
	}
	o->create = false;
	return psx_open(*dev, o, f);
}

/*
 * The pattern of transaction txid on page pgno: a header (txid, pgno) and
 * bytes derived from both, so that a page from a different transaction,
 * a different page or a half-written page is recognised.
 */
static inline void psx_fill(void *data, size_t len, uint64_t txid, uint64_t pgno)
{
	uint8_t *p = data;
	uint64_t x = txid * 0x9e3779b97f4a7c15ull ^ pgno;

	memcpy(p, &txid, 8);
	memcpy(p + 8, &pgno, 8);
	for (size_t i = 16; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
}

/* Returns the txid stored on the page, or UINT64_MAX when the pattern does not match. */
static inline uint64_t psx_check(const void *data, size_t len, uint64_t pgno)
{
	static __thread uint8_t want[16384];
	uint64_t txid, pg;

	memcpy(&txid, data, 8);
	memcpy(&pg, (const uint8_t *)data + 8, 8);
	if (txid == 0 && pg == 0) {
		/* Never written: all zero. */
		for (size_t i = 0; i < len; i++)
			if (((const uint8_t *)data)[i])
				return UINT64_MAX;
		return 0;
	}
	if (pg != pgno || len > sizeof(want))
		return UINT64_MAX;
	psx_fill(want, len, txid, pgno);
	return memcmp(want, data, len) ? UINT64_MAX : txid;
}

/* Commits the pattern of txid to page pgno in a transaction of its own. */
static inline int psx_write_page(struct urt_ps *ps, uint64_t pgno, uint64_t txid)
{
	struct urt_tx *tx;
	void *p;
	int ret = urt_tx_begin(ps, &tx);

	if (ret)
		return ret;
	ret = urt_page_get(tx, pgno, URT_PAGE_WRITE, &p);
	if (ret) {
		urt_tx_abort(tx);
		return ret;
	}
	psx_fill(p, urt_ps_page_data_bytes(ps), txid, pgno);
	return urt_tx_commit(tx);
}

/* The txid on pgno (psx_check) as a read-only transaction sees it; *err gets the read error. */
static inline uint64_t psx_read_page(struct urt_ps *ps, uint64_t pgno, int *err)
{
	struct urt_tx *tx;
	void *p;
	uint64_t v = UINT64_MAX;

	*err = urt_tx_begin(ps, &tx);
	if (*err)
		return v;
	*err = urt_page_get(tx, pgno, URT_PAGE_READ, &p);
	if (*err == 0)
		v = psx_check(p, urt_ps_page_data_bytes(ps), pgno);
	urt_tx_abort(tx);
	return v;
}

#endif /* URT_TESTS_PS_FIXTURE_H */
