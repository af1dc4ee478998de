/*
 * Context switching and guarded stacks (src/runtime/fiber/context.c, stack.c).
 *
 * The register test needs a few instructions of assembly per architecture,
 * which is why this file has the only #if blocks in the tests: they select
 * the helper, and other architectures skip that test with a reason.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fenv.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/fiber/context.h"
#include "runtime/fiber/stack.h"

#define STACK_SIZE (64 * 1024)

static size_t page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

/* ---------------------------------------------------------------- stacks */

Test(stack, rejects_size_zero)
{
	struct urt_stack st;

	memset(&st, 0xa5, sizeof(st));
	cr_assert_eq(urt_stack_alloc(&st, 0), -EINVAL);
	cr_assert_null(st.map);
	cr_assert_null(st.base);
	cr_assert_eq(st.size, 0);
	urt_stack_free(&st); /* A failed alloc leaves a stack that frees harmlessly. */
}

Test(stack, rejects_unroundable_size)
{
	struct urt_stack st;

	cr_assert_eq(urt_stack_alloc(&st, SIZE_MAX), -ENOMEM);
	cr_assert_null(st.map);
	cr_assert_eq(urt_stack_alloc(&st, SIZE_MAX - page_size() + 1), -ENOMEM);
	cr_assert_null(st.map);
}

Test(stack, rounds_to_pages_and_places_guard_below)
{
	size_t page = page_size();
	struct urt_stack st;

	cr_assert_eq(urt_stack_alloc(&st, 1), 0);
	cr_assert_eq(st.size, page);
	cr_assert_eq(st.map_len, page + URT_STACK_GUARD_PAGES * page);
	cr_assert_eq((char *)st.base, (char *)st.map + URT_STACK_GUARD_PAGES * page);
	cr_assert_eq((uintptr_t)st.base % page, 0);
	urt_stack_free(&st);
	cr_assert_null(st.map);
	cr_assert_eq(st.map_len, 0);

	cr_assert_eq(urt_stack_alloc(&st, 3 * page + 1), 0);
	cr_assert_eq(st.size, 4 * page);
	/* Every usable byte is writable and keeps what was written. */
	memset(st.base, 0x5a, st.size);
	cr_assert_eq(((unsigned char *)st.base)[0], 0x5a);
	cr_assert_eq(((unsigned char *)st.base)[st.size - 1], 0x5a);
	urt_stack_free(&st);
}

/* Finds the /proc/self/maps line starting at addr and returns its permissions. */
static bool maps_perms(const void *addr, const void *end, char perms[5])
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	bool found = false;

	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		uintptr_t lo, hi;

		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %4s", &lo, &hi, perms) != 3)
			continue;
		if (lo == (uintptr_t)addr && hi == (uintptr_t)end) {
			found = true;
			break;
		}
	}
	fclose(f);
	return found;
}

Test(stack, guard_is_prot_none_in_maps)
{
	struct urt_stack st;
	char perms[5];

	cr_assert_eq(urt_stack_alloc(&st, STACK_SIZE), 0);
	cr_assert(maps_perms(st.map, st.base, perms), "guard VMA %p-%p not in maps", st.map,
		  st.base);
	cr_assert_str_eq(perms, "---p");
	cr_assert(maps_perms(st.base, (char *)st.base + st.size, perms));
	cr_assert_str_eq(perms, "rw-p");
	urt_stack_free(&st);
}

/* ------------------------------------------------------------ ping-pong */

struct pingpong {
	struct urt_ctx main;
	struct urt_ctx a, b;
	unsigned count_a, count_b;
	char log[64]; /* Order in which the three contexts ran. */
	unsigned log_len;
};

static void pingpong_a(void *arg)
{
	struct pingpong *pp = arg;

	for (;;) {
		pp->count_a++;
		pp->log[pp->log_len++] = 'a';
		urt_ctx_switch(&pp->a, &pp->b);
	}
}

static void pingpong_b(void *arg)
{
	struct pingpong *pp = arg;

	for (;;) {
		pp->count_b++;
		pp->log[pp->log_len++] = 'b';
		urt_ctx_switch(&pp->b, &pp->main);
	}
}

Test(context, ping_pong_main_and_two_fibers)
{
	struct urt_stack sa, sb;
	struct pingpong pp = { 0 };
	const unsigned rounds = 20;

	cr_assert_eq(urt_stack_alloc(&sa, STACK_SIZE), 0);
	cr_assert_eq(urt_stack_alloc(&sb, STACK_SIZE), 0);
	urt_ctx_make(&pp.a, &sa, pingpong_a, &pp);
	urt_ctx_make(&pp.b, &sb, pingpong_b, &pp);

	for (unsigned i = 0; i < rounds; i++) {
		pp.log[pp.log_len++] = 'm';
		urt_ctx_switch(&pp.main, &pp.a);
		/* One round ran a, then b, then came back here. */
		cr_assert_eq(pp.count_a, i + 1);
		cr_assert_eq(pp.count_b, i + 1);
	}
	cr_assert_eq(pp.log_len, 3 * rounds);
	for (unsigned i = 0; i < pp.log_len; i++)
		cr_assert_eq(pp.log[i], "mab"[i % 3], "log[%u] = %c", i, pp.log[i]);

	urt_ctx_destroy(&pp.a);
	urt_ctx_destroy(&pp.b);
	urt_stack_free(&sa);
	urt_stack_free(&sb);
}

/* A ring of fibers, each passing control to the next: fiber-to-fiber switches. */
#define RING 16

struct ring {
	struct urt_ctx main;
	struct urt_ctx ctx[RING];
	struct urt_stack stack[RING];
	unsigned visits[RING];
	unsigned last;         /* Index of the fiber that ran last. */
	unsigned out_of_turn;  /* Fibers that found the wrong predecessor. */
	unsigned laps;
};

struct ring_arg {
	struct ring *ring;
	unsigned index;
};

static void ring_fiber(void *arg)
{
	struct ring_arg *ra = arg;
	struct ring *r = ra->ring;
	unsigned i = ra->index;

	for (;;) {
		r->out_of_turn += r->last != (i + RING - 1) % RING;
		r->visits[i]++;
		r->last = i;
		if (i == RING - 1)
			urt_ctx_switch(&r->ctx[i], &r->main);
		else
			urt_ctx_switch(&r->ctx[i], &r->ctx[i + 1]);
	}
}

Test(context, ring_of_fibers)
{
	static struct ring r;
	static struct ring_arg args[RING];

	for (unsigned i = 0; i < RING; i++) {
		args[i] = (struct ring_arg){ .ring = &r, .index = i };
		cr_assert_eq(urt_stack_alloc(&r.stack[i], STACK_SIZE), 0);
		urt_ctx_make(&r.ctx[i], &r.stack[i], ring_fiber, &args[i]);
	}
	r.last = RING - 1;
	for (r.laps = 0; r.laps < 100; r.laps++) {
		urt_ctx_switch(&r.main, &r.ctx[0]);
		cr_assert_eq(r.last, RING - 1);
	}
	cr_assert_eq(r.out_of_turn, 0);
	for (unsigned i = 0; i < RING; i++) {
		cr_assert_eq(r.visits[i], 100, "fiber %u ran %u times", i, r.visits[i]);
		urt_ctx_destroy(&r.ctx[i]);
		urt_stack_free(&r.stack[i]);
	}
}

/* ------------------------------------------------- callee-saved registers */

#include "switch_regs.h"

struct regs_test {
	struct urt_ctx main, fiber;
	unsigned rounds;      /* Round trips the fiber completed. */
	unsigned bad_fiber;   /* Registers the fiber found changed. */
};

/* Distinct, recognisable patterns per side, register and round. */
static uint64_t pattern(unsigned side, unsigned reg, unsigned round)
{
	return 0x9e3779b97f4a7c15ull * (side * 1000003u + reg * 1009u + round + 1);
}

static void regs_fiber(void *arg)
{
	struct regs_test *t = arg;

	for (unsigned round = 0;; round++) {
		uint64_t in[NREGS + 1], out[NREGS + 1];

		for (unsigned r = 0; r < NREGS; r++)
			in[r] = pattern(2, r, round);
		test_switch_regs(&t->fiber, &t->main, in, out);
		for (unsigned r = 0; r < NREGS; r++)
			t->bad_fiber += out[r] != in[r];
		t->rounds = round + 1;
	}
}

Test(context, callee_saved_registers_survive_switches)
{
	struct regs_test t = { 0 };
	struct urt_stack st;

	if (NREGS == 0)
		cr_skip_test("no register helper for this architecture");
	cr_assert_eq(urt_stack_alloc(&st, STACK_SIZE), 0);
	urt_ctx_make(&t.fiber, &st, regs_fiber, &t);

	for (unsigned round = 0; round < 50; round++) {
		uint64_t in[NREGS + 1], out[NREGS + 1];

		for (unsigned r = 0; r < NREGS; r++)
			in[r] = pattern(1, r, round);
		test_switch_regs(&t.main, &t.fiber, in, out);
		for (unsigned r = 0; r < NREGS; r++)
			cr_assert_eq(out[r], in[r], "main %s, round %u: %#" PRIx64 " != %#" PRIx64,
				     switch_reg_names[r], round, out[r], in[r]);
		/* The fiber checked its registers from the previous round trip. */
		cr_assert_eq(t.rounds, round);
		cr_assert_eq(t.bad_fiber, 0);
	}
	urt_ctx_destroy(&t.fiber);
	urt_stack_free(&st);
}

/*
 * The same property through the compiler: many values live across a switch
 * in whatever registers or stack slots the compiler picks, while the other
 * side computes with different values.
 */
struct locals_test {
	struct urt_ctx main, fiber;
	uint64_t noise;
};

static void locals_fiber(void *arg)
{
	struct locals_test *t = arg;
	uint64_t x = t->noise;

	for (;;) {
		uint64_t v[12];

		for (unsigned i = 0; i < 12; i++)
			v[i] = x * (i + 3) ^ (x >> i);
		urt_ctx_switch(&t->fiber, &t->main);
		for (unsigned i = 0; i < 12; i++)
			x += v[i];
		t->noise = x;
	}
}

static __attribute__((noinline)) uint64_t locals_sum(struct locals_test *t, uint64_t seed)
{
	uint64_t a = seed * 3, b = seed ^ 0x55, c = seed + 7, d = seed * seed, e = ~seed,
		 f = seed << 3, g = seed >> 1, h = seed * 11, i = seed ^ 0xfff, j = seed + 99,
		 k = seed * 131, l = seed - 5;

	urt_ctx_switch(&t->main, &t->fiber);
	return a + 3 * b + 5 * c + 7 * d + 11 * e + 13 * f + 17 * g + 19 * h + 23 * i + 29 * j +
	       31 * k + 37 * l;
}

Test(context, many_locals_live_across_switch)
{
	struct locals_test t = { .noise = 12345 };
	struct urt_stack st;

	cr_assert_eq(urt_stack_alloc(&st, STACK_SIZE), 0);
	urt_ctx_make(&t.fiber, &st, locals_fiber, &t);
	for (uint64_t seed = 1; seed < 200; seed++) {
		uint64_t expect = seed * 3 + 3 * (seed ^ 0x55) + 5 * (seed + 7) + 7 * (seed * seed) +
				  11 * ~seed + 13 * (seed << 3) + 17 * (seed >> 1) + 19 * (seed * 11) +
				  23 * (seed ^ 0xfff) + 29 * (seed + 99) + 31 * (seed * 131) +
				  37 * (seed - 5);

		cr_assert_eq(locals_sum(&t, seed), expect, "seed %" PRIu64, seed);
	}
	urt_ctx_destroy(&t.fiber);
	urt_stack_free(&st);
}

/* -------------------------------------------- floating-point control state */

struct fenv_test {
	struct urt_ctx main, fiber;
	int fiber_saw[3];     /* fegetround() on the fiber at each resume. */
	double fiber_quot[3]; /* 1/3 computed on the fiber at each resume. */
};

/*
 * 1/3 in the current rounding mode.  Without FENV_ACCESS the compiler may
 * move a division across fesetround() (clang does), so the division sits
 * between two compiler barriers, which stay ordered with the calls.
 */
static volatile double fp_one = 1.0, fp_three = 3.0;

static double one_third(void)
{
	double one = fp_one, q;

	__asm__ volatile("" : "+m"(one) : : "memory");
	q = one / fp_three;
	__asm__ volatile("" : "+m"(q) : : "memory");
	return q;
}

static void fenv_fiber(void *arg)
{
	struct fenv_test *t = arg;

	t->fiber_saw[0] = fegetround();
	t->fiber_quot[0] = one_third();
	fesetround(FE_TOWARDZERO);
	urt_ctx_switch(&t->fiber, &t->main);
	t->fiber_saw[1] = fegetround();
	t->fiber_quot[1] = one_third();
	fesetround(FE_UPWARD);
	urt_ctx_switch(&t->fiber, &t->main);
	for (;;) {
		t->fiber_saw[2] = fegetround();
		t->fiber_quot[2] = one_third();
		urt_ctx_switch(&t->fiber, &t->main);
	}
}

Test(context, floating_point_control_is_per_context)
{
	struct fenv_test t = { 0 };
	struct urt_stack st;
	double up, down, zero;

	fesetround(FE_UPWARD);
	up = one_third();
	fesetround(FE_DOWNWARD);
	down = one_third();
	fesetround(FE_TOWARDZERO);
	zero = one_third();
	cr_assert_neq(up, down, "rounding mode has no effect on division here");
	cr_assert_eq(zero, down);

	cr_assert_eq(urt_stack_alloc(&st, STACK_SIZE), 0);
	/* A new context inherits its creator's mode, here upward. */
	fesetround(FE_UPWARD);
	urt_ctx_make(&t.fiber, &st, fenv_fiber, &t);
	fesetround(FE_DOWNWARD);
	urt_ctx_switch(&t.main, &t.fiber);
	cr_assert_eq(t.fiber_saw[0], FE_UPWARD);
	cr_assert_eq(t.fiber_quot[0], up);
	/* The fiber set toward-zero; main's downward must be back. */
	cr_assert_eq(fegetround(), FE_DOWNWARD);
	cr_assert_eq(one_third(), down);

	fesetround(FE_TONEAREST);
	urt_ctx_switch(&t.main, &t.fiber);
	cr_assert_eq(t.fiber_saw[1], FE_TOWARDZERO);
	cr_assert_eq(t.fiber_quot[1], zero);
	cr_assert_eq(fegetround(), FE_TONEAREST);

	urt_ctx_switch(&t.main, &t.fiber);
	cr_assert_eq(t.fiber_saw[2], FE_UPWARD);
	cr_assert_eq(t.fiber_quot[2], up);
	cr_assert_eq(fegetround(), FE_TONEAREST);

	urt_ctx_destroy(&t.fiber);
	urt_stack_free(&st);
}

/* ------------------------------------------------------- stack alignment */

typedef double v2df __attribute__((vector_size(16)));

struct align_test {
	struct urt_ctx main, fiber;
	uintptr_t entry_frame;  /* Frame address inside the entry function. */
	uintptr_t callee_frame; /* Frame address in a function it calls. */
	uintptr_t aligned_local;
	double vec_sum;
	char text[64];
};

static __attribute__((noinline)) void align_callee(struct align_test *t)
{
	/* The compiler assumes ABI alignment here and uses aligned SSE stores. */
	volatile v2df v = { 1.25, 2.5 };
	__attribute__((aligned(16))) double local[2] = { 0.5, 4.0 };

	t->callee_frame = (uintptr_t)__builtin_frame_address(0);
	t->aligned_local = (uintptr_t)local;
	v += (v2df){ local[0], local[1] };
	t->vec_sum = v[0] + v[1];
	/* Variadic calls with doubles spill vector registers to the stack. */
	snprintf(t->text, sizeof(t->text), "%.3f %.1f %s", 3.14159, 2.5e10, "ok");
	printf("fiber printf of a double: %f\n", t->vec_sum);
	fflush(stdout);
}

static void align_fiber(void *arg)
{
	struct align_test *t = arg;

	t->entry_frame = (uintptr_t)__builtin_frame_address(0);
	align_callee(t);
	for (;;)
		urt_ctx_switch(&t->fiber, &t->main);
}

Test(context, new_context_stack_is_abi_aligned)
{
	struct align_test t = { 0 };
	struct urt_stack st;

	cr_assert_eq(urt_stack_alloc(&st, STACK_SIZE), 0);
	urt_ctx_make(&t.fiber, &st, align_fiber, &t);
	urt_ctx_switch(&t.main, &t.fiber);

	cr_assert_eq(t.entry_frame % 16, 0, "entry frame %#" PRIxPTR, t.entry_frame);
	cr_assert_eq(t.callee_frame % 16, 0, "callee frame %#" PRIxPTR, t.callee_frame);
	cr_assert_eq(t.aligned_local % 16, 0, "aligned local %#" PRIxPTR, t.aligned_local);
	/* Frames are on the fiber's stack, not main's. */
	cr_assert(t.entry_frame > (uintptr_t)st.base && t.entry_frame <= (uintptr_t)st.base + st.size);
	cr_assert_eq(t.vec_sum, 1.25 + 2.5 + 0.5 + 4.0);
	cr_assert_str_eq(t.text, "3.142 25000000000.0 ok");

	urt_ctx_destroy(&t.fiber);
	urt_stack_free(&st);
}

/* ---------------------------------------------------- faults and aborts */

static volatile unsigned recurse_limit = UINT32_MAX;
static volatile unsigned recurse_depth;

static __attribute__((noinline)) unsigned recurse(unsigned depth)
{
	volatile char pad[512];

	pad[0] = (char)depth;
	recurse_depth = depth;
	if (depth >= recurse_limit)
		return pad[0];
	return recurse(depth + 1) + pad[0];
}

static void overflow_fiber(void *arg)
{
	(void)arg;
	recurse(0);
	/* Unreachable: the guard page stops the recursion. */
	_exit(3);
}

static struct urt_stack overflow_stack;

static void guard_fault_handler(int sig, siginfo_t *si, void *uc)
{
	uintptr_t addr = (uintptr_t)si->si_addr;

	(void)uc;
	if (sig != SIGSEGV)
		_exit(10);
	if (addr >= (uintptr_t)overflow_stack.map && addr < (uintptr_t)overflow_stack.base)
		_exit(42);
	_exit(11);
}

/* Runs overflow_fiber in a child; with_handler catches the fault on an altstack. */
static int run_overflow_child(bool with_handler)
{
	pid_t pid = fork();
	int status;

	cr_assert_neq(pid, -1);
	if (pid == 0) {
		struct urt_ctx main_ctx, fiber;
		struct sigaction sa = { 0 };

		if (with_handler) {
			static char altstack[64 * 1024];
			stack_t ss = { .ss_sp = altstack, .ss_size = sizeof(altstack) };

			if (sigaltstack(&ss, NULL) != 0)
				_exit(20);
			sa.sa_sigaction = guard_fault_handler;
			sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
		} else {
			sa.sa_handler = SIG_DFL;
		}
		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGSEGV, &sa, NULL) != 0)
			_exit(21);
		if (urt_stack_alloc(&overflow_stack, STACK_SIZE) != 0)
			_exit(22);
		urt_ctx_make(&fiber, &overflow_stack, overflow_fiber, NULL);
		urt_ctx_switch(&main_ctx, &fiber);
		_exit(4);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return status;
}

Test(context, guard_page_overflow_dies_with_sigsegv)
{
	int status = run_overflow_child(false);

	cr_assert(WIFSIGNALED(status), "child exited with %d instead of dying",
		  WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	cr_assert_eq(WTERMSIG(status), SIGSEGV);
}

Test(context, guard_page_overflow_faults_inside_the_guard)
{
	int status = run_overflow_child(true);

	cr_assert(WIFEXITED(status), "child died of signal %d",
		  WIFSIGNALED(status) ? WTERMSIG(status) : -1);
	cr_assert_eq(WEXITSTATUS(status), 42, "fault outside the guard (code %d)",
		     WEXITSTATUS(status));
}

static void returning_fiber(void *arg)
{
	*(int *)arg = 1;
}

/* Runs fn in a child with stderr captured; returns the wait status. */
static int run_child_capture(void (*fn)(void), char *err, size_t err_len)
{
	int fds[2];
	pid_t pid;
	int status;
	ssize_t n, got = 0;

	cr_assert_eq(pipe(fds), 0);
	pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		close(fds[0]);
		dup2(fds[1], STDERR_FILENO);
		fn();
		_exit(5);
	}
	close(fds[1]);
	while ((n = read(fds[0], err + got, err_len - 1 - (size_t)got)) > 0)
		got += n;
	err[got] = '\0';
	close(fds[0]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return status;
}

static void entry_returns_child(void)
{
	struct urt_ctx main_ctx, fiber;
	struct urt_stack st;
	int ran = 0;

	if (urt_stack_alloc(&st, STACK_SIZE) != 0)
		_exit(22);
	urt_ctx_make(&fiber, &st, returning_fiber, &ran);
	urt_ctx_switch(&main_ctx, &fiber);
}

Test(context, returning_entry_aborts_with_message)
{
	char err[4096];
	int status = run_child_capture(entry_returns_child, err, sizeof(err));

	cr_assert(WIFSIGNALED(status), "child exited with %d",
		  WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	cr_assert_eq(WTERMSIG(status), SIGABRT);
	cr_assert_not_null(strstr(err, "returned"), "stderr was: %s", err);
}

static void tiny_stack_child(void)
{
	struct urt_ctx fiber;
	char mem[256];
	struct urt_stack st = { .base = mem, .size = sizeof(mem) };
	int ran = 0;

	urt_ctx_make(&fiber, &st, returning_fiber, &ran);
}

Test(context, make_rejects_tiny_stack)
{
	char err[4096];
	int status = run_child_capture(tiny_stack_child, err, sizeof(err));

	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
	cr_assert_not_null(strstr(err, "urt_ctx_make"), "stderr was: %s", err);
}
