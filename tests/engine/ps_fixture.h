/*
 * Shared helpers of the page-store tests: a one-core runtime, running a
 * function in a fiber and waiting for it, sim devices and the page
 * pattern every test writes and checks.
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
#include <stdarg.h>
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

/* Run fn(arg) in a fiber on core 0 of rt and wait until it returns. */
static inline void psx_run(struct urt_rt *rt, void (*fn)(void *arg), void *arg)
{
	tests_fiber_run(rt, 0, fn, arg);
}

static inline struct urt_rt *psx_start(void)
{
	static const int cpu0 = 0;
	struct urt_rt_opts o;
	struct urt_rt *rt = NULL;
	int ret;

	urt_rt_opts_default(&o);
	o.cpus = &cpu0;
	o.ncpus = 1;
	o.buf_region_bytes = 16u << 20;
	o.fiber_stack_bytes = 64u << 10;
	ret = urt_rt_start(&o, &rt);
	cr_assert_eq(ret, 0, "urt_rt_start: %d (%s)", ret, urt_last_error());
	return rt;
}

static inline struct urt_dev *psx_sim(uint64_t size, uint64_t seed)
{
	struct urt_sim_opts o;
	struct urt_dev *dev = NULL;
	int ret;

	urt_sim_opts_default(&o);
	o.size_bytes = size;
	o.seed = seed;
	ret = urt_sim_open(&o, &dev);
	cr_assert_eq(ret, 0, "urt_sim_open: %d", ret);
	return dev;
}

/* A first failure message recorded in a fiber, asserted on the main thread. */
struct psx_fail {
	char msg[512];
	int failed;
};

static inline void psx_failf(struct psx_fail *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static inline void psx_failf(struct psx_fail *f, const char *fmt, ...)
{
	va_list ap;

	if (f->failed++)
		return;
	va_start(ap, fmt);
	vsnprintf(f->msg, sizeof(f->msg), fmt, ap);
	va_end(ap);
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

#endif /* URT_TESTS_PS_FIXTURE_H */
