/*
 * bench_context: the cost of one urt_ctx_switch.
 *
 * Main and one fiber ping-pong; every round trip is two switches.  A second
 * figure has a scheduler loop resume 64 fibers round-robin.  Each run
 * times `switches` switches with CLOCK_MONOTONIC, and the result is the
 * median of `runs` runs.  glibc's swapcontext, which makes a sigprocmask
 * system call per switch, is timed the same way as a reference.  The thread
 * is pinned to the CPU it starts on, and host steal time from /proc/stat is
 * printed next to the figure, since on this shared machine steal can make a
 * run several times slower.
 *
 * Usage: bench_context [switches [runs]]   (defaults 10000000 and 5)
 */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>

#include "base/clock.h"
#include "urt/error.h"
#include "runtime/fiber/context.h"
#include "urbench/result.h"
#include "runtime/fiber/stack.h"

#define RUNS_MAX 101
#define STACK_BYTES (64 * 1024)

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* ---------------------------------------------------------- urt_ctx */

static struct urt_ctx main_ctx, fiber_ctx;
static volatile uint64_t fiber_rounds;

static void pong(void *arg)
{
	(void)arg;
	for (;;) {
		fiber_rounds++;
		urt_ctx_switch(&fiber_ctx, &main_ctx);
	}
}

static double run_urt(uint64_t switches)
{
	uint64_t rounds = switches / 2, start, end;

	fiber_rounds = 0;
	start = urt_clock_ns();
	for (uint64_t i = 0; i < rounds; i++)
		urt_ctx_switch(&main_ctx, &fiber_ctx);
	end = urt_clock_ns();
	if (fiber_rounds != rounds) {
		fprintf(stderr, "bench_context: fiber ran %" PRIu64 " rounds, expected %" PRIu64 "\n",
			fiber_rounds, rounds);
		exit(1);
	}
	return (double)(end - start) / (double)(rounds * 2);
}

/* ------------------------------------ scheduler loop over many fibers */

/*
 * The fiber scheduler's pattern: a loop resumes FIBERS fibers round-robin
 * and each switches back to it, so every switch also touches a different
 * stack.
 */
#define FIBERS 64

static struct urt_ctx sched_ctx, sched_fibers[FIBERS];
static struct urt_stack sched_stacks[FIBERS];
static volatile uint64_t sched_resumes;

static void sched_fiber(void *arg)
{
	struct urt_ctx *self = arg;

	for (;;) {
		sched_resumes++;
		urt_ctx_switch(self, &sched_ctx);
	}
}

static int make_sched_fibers(void)
{
	for (int i = 0; i < FIBERS; i++) {
		int err = urt_stack_alloc(&sched_stacks[i], STACK_BYTES);

		if (err != 0)
			return err;
		urt_ctx_make(&sched_fibers[i], &sched_stacks[i], sched_fiber, &sched_fibers[i]);
	}
	return 0;
}

static double run_sched(uint64_t switches)
{
	uint64_t rounds = switches / 2, start, end;

	sched_resumes = 0;
	start = urt_clock_ns();
	for (uint64_t i = 0; i < rounds; i++)
		urt_ctx_switch(&sched_ctx, &sched_fibers[i % FIBERS]);
	end = urt_clock_ns();
	if (sched_resumes != rounds) {
		fprintf(stderr, "bench_context: %" PRIu64 " resumes, expected %" PRIu64 "\n",
			sched_resumes, rounds);
		exit(1);
	}
	return (double)(end - start) / (double)(rounds * 2);
}

/* ------------------------------------------------------- swapcontext */

static ucontext_t uc_main, uc_fiber;
static volatile uint64_t uc_rounds;

static void uc_pong(void)
{
	for (;;) {
		uc_rounds++;
		swapcontext(&uc_fiber, &uc_main);
	}
}

static double run_swapcontext(uint64_t switches)
{
	uint64_t rounds = switches / 2, start, end;

	uc_rounds = 0;
	start = urt_clock_ns();
	for (uint64_t i = 0; i < rounds; i++)
		swapcontext(&uc_main, &uc_fiber);
	end = urt_clock_ns();
	if (uc_rounds != rounds) {
		fprintf(stderr, "bench_context: swapcontext fiber ran %" PRIu64 " rounds\n",
			uc_rounds);
		exit(1);
	}
	return (double)(end - start) / (double)(rounds * 2);
}

/* Kept out of main: getcontext returns twice, which would pin main's locals to memory. */
static int make_swapcontext(const struct urt_stack *st)
{
	if (getcontext(&uc_fiber) != 0)
		return -1;
	uc_fiber.uc_stack.ss_sp = st->base;
	uc_fiber.uc_stack.ss_size = st->size;
	uc_fiber.uc_link = NULL;
	makecontext(&uc_fiber, uc_pong, 0);
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t switches = argc > 1 ? strtoull(argv[1], NULL, 0) : 10000000;
	int runs = argc > 2 ? atoi(argv[2]) : 5;
	double urt_ns[RUNS_MAX], sched_ns[RUNS_MAX], uc_ns[RUNS_MAX];
	struct urt_stack st, uc_st;
	struct ub_cpu_times before, after;
	double steal_pct = -1;
	cpu_set_t set;
	int cpu = sched_getcpu();
	int err;

	if (switches < 2 || runs < 1 || runs > RUNS_MAX) {
		fprintf(stderr, "usage: %s [switches >= 2 [runs 1..%d]]\n", argv[0], RUNS_MAX);
		return 2;
	}
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) != 0)
		perror("bench_context: sched_setaffinity (continuing unpinned)");

	err = urt_stack_alloc(&st, STACK_BYTES);
	if (err == 0)
		err = urt_stack_alloc(&uc_st, STACK_BYTES);
	if (err == 0)
		err = make_sched_fibers();
	if (err != 0) {
		fprintf(stderr, "bench_context: urt_stack_alloc: %s\n", urt_strerror(err));
		return 1;
	}
	urt_ctx_make(&fiber_ctx, &st, pong, NULL);
	if (make_swapcontext(&uc_st) != 0) {
		perror("bench_context: getcontext");
		return 1;
	}

	/* Warm up caches, the branch predictor and the fiber stacks' pages. */
	run_urt(switches / 10 + 2);
	run_sched(switches / 10 + 2);
	run_swapcontext(switches / 100 + 2);

	if (ub_cpu_times_read(&before) != 0)
		before.total = 0;
	for (int i = 0; i < runs; i++) {
		urt_ns[i] = run_urt(switches);
		sched_ns[i] = run_sched(switches);
		/* swapcontext is ~50x slower; a tenth of the switches is plenty. */
		uc_ns[i] = run_swapcontext(switches / 10 + 2);
	}
	if (before.total != 0 && ub_cpu_times_read(&after) == 0)
		steal_pct = ub_steal_pct(&before, &after);

	for (int i = 0; i < runs; i++)
		printf("run %d: ping-pong %.2f, sched over %d fibers %.2f, swapcontext %.2f "
		       "ns/switch\n",
		       i, urt_ns[i], FIBERS, sched_ns[i], uc_ns[i]);
	qsort(urt_ns, (size_t)runs, sizeof(double), cmp_double);
	qsort(sched_ns, (size_t)runs, sizeof(double), cmp_double);
	qsort(uc_ns, (size_t)runs, sizeof(double), cmp_double);
	printf("bench_context: urt_ctx_switch median %.2f ns/switch (min %.2f, max %.2f; "
	       "%d runs x %" PRIu64 " switches, cpu %d), sched over %d fibers median %.2f, "
	       "swapcontext median %.2f ns/switch, steal %.1f%%\n",
	       urt_ns[runs / 2], urt_ns[0], urt_ns[runs - 1], runs, switches, cpu, FIBERS,
	       sched_ns[runs / 2], uc_ns[runs / 2], steal_pct);

	urt_ctx_destroy(&fiber_ctx);
	urt_stack_free(&st);
	for (int i = 0; i < FIBERS; i++) {
		urt_ctx_destroy(&sched_fibers[i]);
		urt_stack_free(&sched_stacks[i]);
	}
	urt_stack_free(&uc_st);
	return 0;
}
