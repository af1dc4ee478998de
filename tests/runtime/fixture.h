/*
 * Shared helpers of the runtime tests: start a runtime, run a function in a
 * fiber on a core and wait for it, make a scratch file.
 *
 * Criterion's assertions must run on the test's main thread, so code on a
 * reactor only records what it saw in a struct, and the test asserts on it
 * after fx_run returns.
 */
#ifndef URT_TESTS_FIXTURE_H
#define URT_TESTS_FIXTURE_H

#include <criterion/criterion.h>
#include <errno.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "urt/buf.h"
#include "urt/dev.h"
#include "urt/fiber.h"
#include "urt/io.h"
#include "urt/rt.h"
#include "../fiber_run.h"

/* Run fn(arg) in a fiber on core and wait until it returns. */
static inline void fx_run(struct urt_rt *rt, unsigned core, void (*fn)(void *arg), void *arg)
{
	tests_fiber_run(rt, core, fn, arg);
}

/* Start a runtime with o, failing the test if it does not start. */
static inline struct urt_rt *fx_start(const struct urt_rt_opts *o)
{
	return tests_rt_start(o);
}

/* Options of one reactor on CPU 0 with a 1 MiB buffer region (RLIMIT_MEMLOCK). */
static inline void fx_opts_cpu0(struct urt_rt_opts *o)
{
	static const int cpu0[] = { 0 };

	urt_rt_opts_default(o);
	o->cpus = cpu0;
	o->ncpus = 1;
	o->buf_region_bytes = 1u << 20;
}

/* fx_opts_cpu0, with a region of plain pages that may hold unregistered buffers. */
static inline void fx_opts_one_core(struct urt_rt_opts *o)
{
	fx_opts_cpu0(o);
	o->buf_hugepages = false;
	o->buf_allow_unregistered = true;
}

/* A runtime started with fx_opts_one_core's options. */
static inline struct urt_rt *fx_start_one_core(void)
{
	struct urt_rt_opts o;

	fx_opts_one_core(&o);
	return fx_start(&o);
}

/* A scratch file of size bytes in $TMPDIR (unlinked by fx_file_close). */
struct fx_file {
	char path[256];
	struct urt_dev *dev;
};

static inline void fx_file_open(struct fx_file *f, uint64_t size, bool direct)
{
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	struct urt_dev_opts o;
	int fd, ret;

	snprintf(f->path, sizeof(f->path), "%s/urt-test-XXXXXX", tmp);
	fd = mkstemp(f->path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)size), 0);
	close(fd);
	urt_dev_opts_default(&o);
	o.direct = direct;
	ret = urt_dev_open(f->path, &o, &f->dev);
	cr_assert_eq(ret, 0, "urt_dev_open: %d (%s)", ret, urt_last_error());
}

static inline void fx_file_close(struct fx_file *f)
{
	urt_dev_close(f->dev);
	unlink(f->path);
}

/* A deterministic byte for (seed, device offset), to verify data byte for byte. */
static inline uint8_t fx_pattern(uint64_t seed, uint64_t off)
{
	uint64_t x = (off + 1) * 0x9e3779b97f4a7c15ull ^ seed;

	x ^= x >> 29;
	return (uint8_t)(x * 0xbf58476d1ce4e5b9ull >> 56);
}

static inline uint64_t fx_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

#endif /* URT_TESTS_FIXTURE_H */
