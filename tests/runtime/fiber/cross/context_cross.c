/*
 * The context switch checked on any architecture, without Criterion.
 *
 * tests/runtime/fiber/test_context.c covers the same code through Criterion, which
 * has no aarch64 build here.  This program needs only libc, so
 * run-context-aarch64.sh can cross-compile it with the real
 * src/runtime/fiber/context.c, context_<arch>.S and stack.c, run it under
 * qemu-aarch64-static, and build and run it natively too: one source checks
 * both switch implementations.
 *
 * It must be linked with -Wl,--wrap=urt_ctx_start: the wrapper below records
 * what the trampoline hands to urt_ctx_start on a context's first entry,
 * which is otherwise visible only to ASan.
 *
 * Each check prints what failed and the values involved; the program exits
 * 1 if any check failed and 0 otherwise.  The assembly helpers and the
 * floating-point control accessors are the only per-architecture code.
 */
#include <errno.h>
#include <fenv.h>
#include <float.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/fiber/context.h"
#include "runtime/fiber/stack.h"
#include "../switch_regs.h"

#define STACK_SIZE (64 * 1024)

static unsigned failures;

/* Prints at most this many failures, so a broken switch does not flood the log. */
#define FAILURES_SHOWN 30

#define CHECK(cond, ...)                                                                   \
	do {                                                                               \
		if (!(cond)) {                                                             \
			if (failures++ < FAILURES_SHOWN) {                                 \
				fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__,    \
					#cond);                                            \
				fprintf(stderr, __VA_ARGS__);                              \
				fputc('\n', stderr);                                       \
			}                                                                  \
		}                                                                          \
	} while (0)

/* Allocates a stack or stops the program: nothing can be checked without one. */
static void stack_alloc_or_die(struct urt_stack *st, size_t size)
{
	int err = urt_stack_alloc(st, size);

	if (err != 0) {
		fprintf(stderr, "FAIL urt_stack_alloc(%zu): %s\n", size, strerror(-err));
		exit(1);
	}
}

/* ------------------------------------------------ per-architecture code */

/*
 * test_switch_regs() and the register names come from ../switch_regs.h.
 * cross_sp_at_call() returns the stack pointer its caller had at the call,
 * which the ABI requires to be 16-byte aligned.
 */
uintptr_t cross_sp_at_call(void);

#if defined(__aarch64__)
__asm__(".text\n"
	".globl cross_sp_at_call\n"
	".type cross_sp_at_call, %function\n"
	".p2align 2\n"
	"cross_sp_at_call:\n"
	"	mov x0, sp\n"
	"	ret\n"
	".size cross_sp_at_call, .-cross_sp_at_call\n");

/* Operand constraint that keeps a double in a SIMD&FP register. */
#define FP_LIVE(v) "+w"(v)

/* The whole FPCR: rounding mode, flush-to-zero, default NaN, trap enables. */
static uint64_t fpctl_get(void)
{
	uint64_t v;

	__asm__ volatile("mrs %0, fpcr" : "=r"(v));
	return v;
}

static void fpctl_set(uint64_t v)
{
	__asm__ volatile("msr fpcr, %0" : : "r"(v) : "memory");
}

/* FPCR.FZ: denormal results are flushed to zero. */
static uint64_t fpctl_flush_to_zero(uint64_t v)
{
	return v | (1ull << 24);
}

/* FPCR.DN: a control bit with no effect on this program's arithmetic. */
static uint64_t fpctl_extra(uint64_t v)
{
	return v | (1ull << 25);
}

#define ARCH "aarch64"

#elif defined(__x86_64__)
__asm__(".text\n"
	".globl cross_sp_at_call\n"
	".type cross_sp_at_call, @function\n"
	".p2align 4\n"
	"cross_sp_at_call:\n"
	/* Skip the return address the call pushed. */
	"	leaq 8(%rsp), %rax\n"
	"	ret\n"
	".size cross_sp_at_call, .-cross_sp_at_call\n");

#define FP_LIVE(v) "+x"(v)

/*
 * MXCSR without its six sticky exception flags (status, not control), and
 * the x87 control word in bits 32-47.
 */
static uint64_t fpctl_get(void)
{
	uint32_t mxcsr;
	uint16_t cw;

	__asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
	__asm__ volatile("fnstcw %0" : "=m"(cw));
	return (mxcsr & ~0x3fu) | (uint64_t)cw << 32;
}

static void fpctl_set(uint64_t v)
{
	uint32_t mxcsr = (uint32_t)v & ~0x3fu;
	uint16_t cw = (uint16_t)(v >> 32);

	__asm__ volatile("ldmxcsr %0" : : "m"(mxcsr) : "memory");
	__asm__ volatile("fldcw %0" : : "m"(cw) : "memory");
}

/* MXCSR.FTZ: underflowing SSE results are flushed to zero. */
static uint64_t fpctl_flush_to_zero(uint64_t v)
{
	return v | (1ull << 15);
}

/* x87 precision control set to single (bits 8-9 of the control word clear). */
static uint64_t fpctl_extra(uint64_t v)
{
	return v & ~(3ull << 40);
}

#define ARCH "x86_64"

#else
#error "context_cross.c has helpers for aarch64 and x86_64 only"
#endif

/*
 * GCC's noipa keeps callers from learning which registers a function really
 * clobbers (-fipa-ra) and stops cloning, so the function under test stays
 * one symbol that run-context-aarch64.sh can disassemble.  Clang has no
 * inter-procedural register allocation, and noinline is enough there.
 */
#if defined(__clang__)
#define NOIPA __attribute__((noinline))
#else
#define NOIPA __attribute__((noipa))
#endif

/* -------------------------------------------- first entry (the trampoline) */

/*
 * urt_ctx_start is reached only from the trampoline, so with --wrap the
 * trampoline calls this instead: it records the prev context it was handed
 * (x0 / rax from the swap) and the stack alignment on the new stack.
 */
_Noreturn void __real_urt_ctx_start(struct urt_ctx *prev, void (*entry)(void *arg), void *arg);
_Noreturn void __wrap_urt_ctx_start(struct urt_ctx *prev, void (*entry)(void *arg), void *arg);

static struct urt_ctx *first_prev;  /* prev handed to the last first entry. */
static unsigned first_entries;      /* First entries seen. */
static uintptr_t first_sp_misaligned; /* Nonzero: a first entry's sp % 16. */

_Noreturn void __wrap_urt_ctx_start(struct urt_ctx *prev, void (*entry)(void *arg), void *arg)
{
	uintptr_t sp = cross_sp_at_call();

	first_prev = prev;
	first_entries++;
	if (sp % 16 != 0)
		first_sp_misaligned = sp % 16;
	__real_urt_ctx_start(prev, entry, arg);
}

/* ------------------------------------------------------------ ping-pong */

#define PP_FIBERS 4
#define PP_ROUNDS 5000

struct pp_event {
	int who;    /* -1 for main, else the fiber index. */
	unsigned n; /* The fiber's own resume count, kept on its stack. */
};

struct pingpong {
	struct urt_ctx main;
	struct urt_ctx ctx[PP_FIBERS];
	struct urt_stack st[PP_FIBERS];
	bool ring;                            /* Fibers pass control along instead of back to main. */
	struct pp_event trace[3 * PP_FIBERS + 1]; /* This round's events in order. */
	unsigned trace_len;
};

struct pp_arg {
	struct pingpong *pp;
	int id;
};

static void pp_log(struct pingpong *pp, int who, unsigned n)
{
	if (pp->trace_len < sizeof(pp->trace) / sizeof(pp->trace[0]))
		pp->trace[pp->trace_len] = (struct pp_event){ .who = who, .n = n };
	pp->trace_len++;
}

static void pp_fiber(void *arg)
{
	struct pp_arg *a = arg;
	struct pingpong *pp = a->pp;

	/* n lives on this fiber's stack: a wrong stack or sp would lose it. */
	for (unsigned n = 0;; n++) {
		pp_log(pp, a->id, n);
		if (pp->ring && a->id + 1 < PP_FIBERS)
			urt_ctx_switch(&pp->ctx[a->id], &pp->ctx[a->id + 1]);
		else
			urt_ctx_switch(&pp->ctx[a->id], &pp->main);
	}
}

/*
 * Each round: main switches to every fiber in turn and each switches back
 * (main, f0, main, f1, ...), then main starts a ring f0 -> f1 -> ... -> main.
 */
static void test_ping_pong(void)
{
	static struct pingpong pp;
	static struct pp_arg args[PP_FIBERS];
	unsigned bad_rounds = 0;

	for (int i = 0; i < PP_FIBERS; i++) {
		args[i] = (struct pp_arg){ .pp = &pp, .id = i };
		stack_alloc_or_die(&pp.st[i], STACK_SIZE);
		urt_ctx_make(&pp.ctx[i], &pp.st[i], pp_fiber, &args[i]);
	}
	for (unsigned r = 0; r < PP_ROUNDS; r++) {
		struct pp_event want[3 * PP_FIBERS + 1];
		unsigned want_len = 0;
		bool ok;

		pp.trace_len = 0;
		pp.ring = false;
		for (int i = 0; i < PP_FIBERS; i++) {
			pp_log(&pp, -1, r);
			want[want_len++] = (struct pp_event){ -1, r };
			want[want_len++] = (struct pp_event){ i, 2 * r };
			urt_ctx_switch(&pp.main, &pp.ctx[i]);
		}
		pp.ring = true;
		pp_log(&pp, -1, r);
		want[want_len++] = (struct pp_event){ -1, r };
		for (int i = 0; i < PP_FIBERS; i++)
			want[want_len++] = (struct pp_event){ i, 2 * r + 1 };
		urt_ctx_switch(&pp.main, &pp.ctx[0]);

		ok = pp.trace_len == want_len;
		for (unsigned k = 0; ok && k < want_len; k++)
			ok = pp.trace[k].who == want[k].who && pp.trace[k].n == want[k].n;
		if (!ok && bad_rounds++ < 3) {
			fprintf(stderr, "round %u trace (who:n), want", r);
			for (unsigned k = 0; k < want_len; k++)
				fprintf(stderr, " %d:%u", want[k].who, want[k].n);
			fprintf(stderr, "\n  got");
			for (unsigned k = 0; k < pp.trace_len && k < want_len; k++)
				fprintf(stderr, " %d:%u", pp.trace[k].who, pp.trace[k].n);
			fprintf(stderr, " (%u events)\n", pp.trace_len);
		}
	}
	CHECK(bad_rounds == 0, "%u of %u rounds ran out of order", bad_rounds, PP_ROUNDS);
	for (int i = 0; i < PP_FIBERS; i++) {
		urt_ctx_destroy(&pp.ctx[i]);
		urt_stack_free(&pp.st[i]);
	}
}

/* ------------------------------------------- swap result and first entry */

struct prev_test {
	struct urt_ctx main, a, b;
	struct urt_ctx *a_got[2]; /* What a's urt_ctx_swap calls returned. */
	struct urt_ctx *a_first_prev, *b_first_prev;
	unsigned a_resumes;
};

static void prev_a(void *arg)
{
	struct prev_test *t = arg;

	t->a_first_prev = first_prev;
	for (unsigned i = 0;; i++) {
		struct urt_ctx *got = urt_ctx_swap(&t->a, &t->b);

		t->a_got[i % 2] = got;
		t->a_resumes++;
	}
}

static void prev_b(void *arg)
{
	struct prev_test *t = arg;

	t->b_first_prev = first_prev;
	for (;;)
		urt_ctx_swap(&t->b, &t->main);
}

/*
 * context.h: the code urt_ctx_swap resumes sees it return the context that
 * switched to it, and a new context's urt_ctx_start gets that context as
 * prev.  Only ASan's hooks use it, so nothing else would notice it wrong.
 */
static void test_swap_returns_switcher(void)
{
	struct prev_test t = { 0 };
	struct urt_stack sa, sb;
	unsigned entries = first_entries;

	stack_alloc_or_die(&sa, STACK_SIZE);
	stack_alloc_or_die(&sb, STACK_SIZE);
	urt_ctx_make(&t.a, &sa, prev_a, &t);
	urt_ctx_make(&t.b, &sb, prev_b, &t);
	for (unsigned r = 0; r < 3; r++) {
		struct urt_ctx *got = urt_ctx_swap(&t.main, &t.a);

		CHECK(got == &t.b, "round %u: main's swap returned %p, b is %p, a %p", r,
		      (void *)got, (void *)&t.b, (void *)&t.a);
	}
	CHECK(first_entries == entries + 2, "%u first entries, want 2", first_entries - entries);
	CHECK(t.a_first_prev == &t.main, "a's first entry got prev %p, main is %p",
	      (void *)t.a_first_prev, (void *)&t.main);
	CHECK(t.b_first_prev == &t.a, "b's first entry got prev %p, a is %p",
	      (void *)t.b_first_prev, (void *)&t.a);
	CHECK(t.a_resumes == 2, "a resumed %u times, want 2", t.a_resumes);
	CHECK(t.a_got[0] == &t.main && t.a_got[1] == &t.main,
	      "a's swaps returned %p and %p, main is %p", (void *)t.a_got[0],
	      (void *)t.a_got[1], (void *)&t.main);
	CHECK(first_sp_misaligned == 0, "urt_ctx_start entered with sp %% 16 = %u",
	      (unsigned)first_sp_misaligned);
	urt_ctx_destroy(&t.a);
	urt_ctx_destroy(&t.b);
	urt_stack_free(&sa);
	urt_stack_free(&sb);
}

/* ------------------------------------------------- callee-saved registers */

#define REG_ROUNDS 2000

/* Distinct values per side, register and round; none is 0 or repeats. */
static uint64_t reg_pattern(unsigned side, unsigned reg, unsigned round)
{
	return 0x9e3779b97f4a7c15ull * (side * 1000003ull + reg * 1009ull + round + 1) ^
	       ((uint64_t)reg << 56);
}

struct regs_test {
	struct urt_ctx main, fiber;
	unsigned fiber_rounds; /* Round trips the fiber has completed. */
	unsigned fiber_bad;    /* Registers the fiber found changed. */
	unsigned fiber_first_bad_reg;
};

static void regs_fiber(void *arg)
{
	struct regs_test *t = arg;

	for (unsigned round = 0;; round++) {
		uint64_t in[NREGS], out[NREGS];

		for (unsigned r = 0; r < NREGS; r++)
			in[r] = reg_pattern(2, r, round);
		test_switch_regs(&t->fiber, &t->main, in, out);
		for (unsigned r = 0; r < NREGS; r++) {
			if (out[r] != in[r] && t->fiber_bad++ == 0)
				t->fiber_first_bad_reg = r;
		}
		t->fiber_rounds = round + 1;
	}
}

/*
 * Both sides load their own known values into every callee-saved register
 * and switch, so each side's registers hold the other's values while it is
 * suspended; each must get its own back.
 */
static void test_registers_asm(void)
{
	struct regs_test t = { 0 };
	struct urt_stack st;
	unsigned bad = 0;

	stack_alloc_or_die(&st, STACK_SIZE);
	urt_ctx_make(&t.fiber, &st, regs_fiber, &t);
	for (unsigned round = 0; round < REG_ROUNDS; round++) {
		uint64_t in[NREGS], out[NREGS];

		for (unsigned r = 0; r < NREGS; r++)
			in[r] = reg_pattern(1, r, round);
		test_switch_regs(&t.main, &t.fiber, in, out);
		for (unsigned r = 0; r < NREGS; r++) {
			if (out[r] != in[r] && bad++ < 5)
				fprintf(stderr, "main %s round %u: %#" PRIx64 ", want %#" PRIx64 "\n",
					switch_reg_names[r], round, out[r], in[r]);
		}
		if (t.fiber_rounds != round)
			break;
	}
	CHECK(bad == 0, "%u register values on main changed across switches", bad);
	CHECK(t.fiber_rounds == REG_ROUNDS - 1, "fiber completed %u round trips, want %u",
	      t.fiber_rounds, REG_ROUNDS - 1);
	CHECK(t.fiber_bad == 0, "%u register values on the fiber changed, first %s",
	      t.fiber_bad, switch_reg_names[t.fiber_first_bad_reg]);
	urt_ctx_destroy(&t.fiber);
	urt_stack_free(&st);
}

/*
 * The same through the compiler.  live_across_switch() holds nine integers,
 * its out pointer and eight doubles across urt_ctx_switch; the asm
 * statements make each value opaque before the call and needed as itself
 * after it, so the compiler can neither fold them into one sum nor recompute
 * them afterwards.  On aarch64 at -O2 they occupy x19-x28 and d8-d15, which
 * run-context-aarch64.sh confirms in the disassembly.
 */
#define LIVE_ROUNDS 2000

struct live_vals {
	uint64_t l[9];
	double d[8];
};

void live_across_switch(struct urt_ctx *self, struct urt_ctx *other, uint64_t seed,
			struct live_vals *out);

NOIPA void live_across_switch(struct urt_ctx *self, struct urt_ctx *other, uint64_t seed,
			      struct live_vals *out)
{
	uint64_t a0 = seed * 3 + 1, a1 = seed ^ 0x5a5a5a5a5a5a5a5aull, a2 = seed * seed,
		 a3 = seed + 1000003, a4 = ~seed, a5 = seed << 7, a6 = seed * 0x9e3779b9ull,
		 a7 = seed - 77, a8 = seed ^ (seed >> 3);
	double base = (double)(seed & 0xfffff);
	double d0 = base * 0.5, d1 = base + 0.25, d2 = base * 3.0, d3 = base - 1e6,
	       d4 = base / 7.0, d5 = -base, d6 = base * base, d7 = base + 1e-3;

	__asm__ volatile("" : "+r"(a0), "+r"(a1), "+r"(a2), "+r"(a3), "+r"(a4), "+r"(a5),
			 "+r"(a6), "+r"(a7), "+r"(a8));
	__asm__ volatile("" : FP_LIVE(d0), FP_LIVE(d1), FP_LIVE(d2), FP_LIVE(d3), FP_LIVE(d4),
			 FP_LIVE(d5), FP_LIVE(d6), FP_LIVE(d7));
	urt_ctx_switch(self, other);
	__asm__ volatile("" : "+r"(a0), "+r"(a1), "+r"(a2), "+r"(a3), "+r"(a4), "+r"(a5),
			 "+r"(a6), "+r"(a7), "+r"(a8));
	__asm__ volatile("" : FP_LIVE(d0), FP_LIVE(d1), FP_LIVE(d2), FP_LIVE(d3), FP_LIVE(d4),
			 FP_LIVE(d5), FP_LIVE(d6), FP_LIVE(d7));
	*out = (struct live_vals){
		.l = { a0, a1, a2, a3, a4, a5, a6, a7, a8 },
		.d = { d0, d1, d2, d3, d4, d5, d6, d7 },
	};
}

/* What live_across_switch must produce for seed, computed without a switch. */
static NOIPA void live_expect(uint64_t seed, struct live_vals *out)
{
	double base = (double)(seed & 0xfffff);

	*out = (struct live_vals){
		.l = { seed * 3 + 1, seed ^ 0x5a5a5a5a5a5a5a5aull, seed * seed, seed + 1000003,
		       ~seed, seed << 7, seed * 0x9e3779b9ull, seed - 77, seed ^ (seed >> 3) },
		.d = { base * 0.5, base + 0.25, base * 3.0, base - 1e6, base / 7.0, -base,
		       base * base, base + 1e-3 },
	};
}

/* Counts the values in got that differ from the expected ones, bit for bit. */
static unsigned live_diff(const struct live_vals *got, uint64_t seed, const char *who,
			  unsigned round)
{
	struct live_vals want;
	unsigned bad = 0;

	live_expect(seed, &want);
	for (unsigned i = 0; i < 9; i++) {
		if (got->l[i] != want.l[i] && bad++ < 3)
			fprintf(stderr, "%s round %u: long %u = %#" PRIx64 ", want %#" PRIx64 "\n",
				who, round, i, got->l[i], want.l[i]);
	}
	for (unsigned i = 0; i < 8; i++) {
		if (memcmp(&got->d[i], &want.d[i], sizeof(double)) != 0 && bad++ < 3)
			fprintf(stderr, "%s round %u: double %u = %a, want %a\n", who, round, i,
				got->d[i], want.d[i]);
	}
	return bad;
}

static uint64_t main_seed(unsigned round)
{
	return round * 2654435761ull + 12345;
}

static uint64_t fiber_seed(unsigned round)
{
	return ~(round * 40503ull) * 0x100000001b3ull;
}

struct live_test {
	struct urt_ctx main, fiber;
	struct live_vals fiber_out; /* The fiber's values from its last round trip. */
	unsigned fiber_rounds;
};

static void live_fiber(void *arg)
{
	struct live_test *t = arg;

	for (unsigned round = 0;; round++) {
		live_across_switch(&t->fiber, &t->main, fiber_seed(round), &t->fiber_out);
		t->fiber_rounds = round + 1;
	}
}

static void test_registers_compiler(void)
{
	struct live_test t = { 0 };
	struct urt_stack st;
	unsigned bad_main = 0, bad_fiber = 0;

	stack_alloc_or_die(&st, STACK_SIZE);
	urt_ctx_make(&t.fiber, &st, live_fiber, &t);
	for (unsigned round = 0; round < LIVE_ROUNDS; round++) {
		struct live_vals got;

		live_across_switch(&t.main, &t.fiber, main_seed(round), &got);
		bad_main += live_diff(&got, main_seed(round), "main", round);
		if (round > 0) {
			CHECK(t.fiber_rounds == round, "fiber completed %u rounds at main's %u",
			      t.fiber_rounds, round);
			bad_fiber += live_diff(&t.fiber_out, fiber_seed(round - 1), "fiber",
					       round - 1);
		}
	}
	CHECK(bad_main == 0, "%u live values on main changed across switches", bad_main);
	CHECK(bad_fiber == 0, "%u live values on the fiber changed across switches", bad_fiber);
	urt_ctx_destroy(&t.fiber);
	urt_stack_free(&st);
}

/* -------------------------------------------- floating-point control state */

/*
 * 1/3 and DBL_MIN/2 under the current control state.  The divisions sit
 * between compiler barriers so that they stay ordered with the fpctl calls
 * (without FENV_ACCESS the compiler may move arithmetic across them).
 */
static volatile double fp_one = 1.0, fp_three = 3.0, fp_tiny = DBL_MIN;

static double one_third(void)
{
	double one = fp_one, q;

	__asm__ volatile("" : "+m"(one) : : "memory");
	q = one / fp_three;
	__asm__ volatile("" : "+m"(q) : : "memory");
	return q;
}

/* 0 when flush-to-zero is on, a denormal otherwise. */
static double half_tiny(void)
{
	double tiny = fp_tiny, q;

	__asm__ volatile("" : "+m"(tiny) : : "memory");
	q = tiny * 0.5;
	__asm__ volatile("" : "+m"(q) : : "memory");
	return q;
}

/* Sets the rounding mode, flush-to-zero and the extra bit; returns the state. */
static uint64_t fp_mode(int round, bool ftz, bool extra)
{
	uint64_t v;

	fesetround(round);
	v = fpctl_get();
	v = ftz ? fpctl_flush_to_zero(v) : v & ~fpctl_flush_to_zero(0);
	if (extra)
		v = fpctl_extra(v);
	fpctl_set(v);
	return fpctl_get();
}

/* What one context saw when it resumed. */
struct fp_seen {
	uint64_t ctl;
	double third, half_tiny;
};

static void fp_look(struct fp_seen *s)
{
	s->ctl = fpctl_get();
	s->third = one_third();
	s->half_tiny = half_tiny();
}

struct fp_test {
	struct urt_ctx main, f1, f2;
	uint64_t f1_set, f2_set;   /* The state each fiber set for itself. */
	struct fp_seen f1_saw[3];  /* f1 at its first entry and two resumes. */
	struct fp_seen f2_saw[2];  /* f2 at its first entry and one resume. */
};

static void fp_fiber1(void *arg)
{
	struct fp_test *t = arg;

	fp_look(&t->f1_saw[0]);
	t->f1_set = fp_mode(FE_TOWARDZERO, false, true);
	urt_ctx_switch(&t->f1, &t->main);
	fp_look(&t->f1_saw[1]);
	urt_ctx_switch(&t->f1, &t->main);
	for (;;) {
		fp_look(&t->f1_saw[2]);
		urt_ctx_switch(&t->f1, &t->main);
	}
}

static void fp_fiber2(void *arg)
{
	struct fp_test *t = arg;

	fp_look(&t->f2_saw[0]);
	t->f2_set = fp_mode(FE_UPWARD, true, false);
	/* Fiber to fiber: f1 must get its own state back, not f2's. */
	urt_ctx_switch(&t->f2, &t->f1);
	for (;;) {
		fp_look(&t->f2_saw[1]);
		urt_ctx_switch(&t->f2, &t->main);
	}
}

/*
 * context.h invariant 4 and the list of what a switch preserves: a new
 * context starts with the FP control state its creator had at
 * urt_ctx_make() (not at the first switch), and each context keeps its own
 * rounding mode, flush-to-zero and other control bits across switches.
 */
static void test_fp_control(void)
{
	struct fp_test t = { 0 };
	struct urt_stack s1, s2;
	uint64_t saved = fpctl_get();
	uint64_t mode_a, mode_b, mode_d;
	double up, down, zero, nearest;
	struct fp_seen now;

	/* Reference results, and proof that the modes change them here. */
	fp_mode(FE_UPWARD, false, false);
	up = one_third();
	fp_mode(FE_DOWNWARD, false, false);
	down = one_third();
	fp_mode(FE_TOWARDZERO, false, false);
	zero = one_third();
	fp_mode(FE_TONEAREST, false, false);
	nearest = one_third();
	CHECK(up != down && zero == down, "rounding modes: up %a down %a zero %a", up, down,
	      zero);
	CHECK(half_tiny() != 0.0, "DBL_MIN/2 is 0 without flush-to-zero");
	fp_mode(FE_TONEAREST, true, false);
	CHECK(half_tiny() == 0.0, "DBL_MIN/2 = %a with flush-to-zero", half_tiny());

	stack_alloc_or_die(&s1, STACK_SIZE);
	stack_alloc_or_die(&s2, STACK_SIZE);

	/* f1 is made under A, first entered under B: it must start in A. */
	mode_a = fp_mode(FE_UPWARD, true, false);
	urt_ctx_make(&t.f1, &s1, fp_fiber1, &t);
	mode_b = fp_mode(FE_DOWNWARD, false, false);
	CHECK(mode_a != mode_b, "modes A and B are both %#" PRIx64, mode_a);
	urt_ctx_switch(&t.main, &t.f1);
	CHECK(t.f1_saw[0].ctl == mode_a, "f1 started with %#" PRIx64 ", made under %#" PRIx64
	      ", entered under %#" PRIx64, t.f1_saw[0].ctl, mode_a, mode_b);
	CHECK(t.f1_saw[0].third == up, "f1 first 1/3 = %a, upward is %a", t.f1_saw[0].third, up);
	CHECK(t.f1_saw[0].half_tiny == 0.0, "f1 first DBL_MIN/2 = %a, flush-to-zero was on",
	      t.f1_saw[0].half_tiny);
	/* f1 set toward-zero with the extra bit; main's B must be back. */
	fp_look(&now);
	CHECK(now.ctl == mode_b, "main has %#" PRIx64 " after f1 set %#" PRIx64 ", want %#" PRIx64,
	      now.ctl, t.f1_set, mode_b);
	CHECK(now.third == down, "main 1/3 = %a, want downward %a", now.third, down);
	CHECK(now.half_tiny != 0.0, "main flushes DBL_MIN/2 to 0 after f1 ran");

	/* f2 is made under B; main moves on to D; f2 sets its own and hands over to f1. */
	urt_ctx_make(&t.f2, &s2, fp_fiber2, &t);
	mode_d = fp_mode(FE_TONEAREST, false, true);
	urt_ctx_switch(&t.main, &t.f2);
	CHECK(t.f2_saw[0].ctl == mode_b, "f2 started with %#" PRIx64 ", made under %#" PRIx64,
	      t.f2_saw[0].ctl, mode_b);
	CHECK(t.f2_saw[0].third == down, "f2 first 1/3 = %a, want %a", t.f2_saw[0].third, down);
	CHECK(t.f1_saw[1].ctl == t.f1_set,
	      "f1 resumed from f2 with %#" PRIx64 ", had set %#" PRIx64 ", f2 had %#" PRIx64,
	      t.f1_saw[1].ctl, t.f1_set, t.f2_set);
	CHECK(t.f1_saw[1].third == zero, "f1 1/3 = %a, want toward-zero %a", t.f1_saw[1].third,
	      zero);
	CHECK(t.f1_saw[1].half_tiny != 0.0, "f1 flushes DBL_MIN/2 to 0 after f2 set FTZ");
	fp_look(&now);
	CHECK(now.ctl == mode_d, "main has %#" PRIx64 ", want %#" PRIx64, now.ctl, mode_d);
	CHECK(now.third == nearest, "main 1/3 = %a, want nearest %a", now.third, nearest);

	/* Each fiber once more: f2 keeps upward + FTZ, f1 keeps its own. */
	urt_ctx_switch(&t.main, &t.f2);
	CHECK(t.f2_saw[1].ctl == t.f2_set, "f2 resumed with %#" PRIx64 ", had set %#" PRIx64,
	      t.f2_saw[1].ctl, t.f2_set);
	CHECK(t.f2_saw[1].third == up && t.f2_saw[1].half_tiny == 0.0,
	      "f2 1/3 = %a (want %a), DBL_MIN/2 = %a (want 0)", t.f2_saw[1].third, up,
	      t.f2_saw[1].half_tiny);
	urt_ctx_switch(&t.main, &t.f1);
	CHECK(t.f1_saw[2].ctl == t.f1_set, "f1 resumed with %#" PRIx64 ", had set %#" PRIx64,
	      t.f1_saw[2].ctl, t.f1_set);
	CHECK(fpctl_get() == mode_d, "main ends with %#" PRIx64 ", want %#" PRIx64, fpctl_get(),
	      mode_d);

	fpctl_set(saved);
	urt_ctx_destroy(&t.f1);
	urt_ctx_destroy(&t.f2);
	urt_stack_free(&s1);
	urt_stack_free(&s2);
}

/* ------------------------------------------------------- stack alignment */

struct align_test {
	struct urt_ctx main, fiber;
	const struct urt_stack *st;
	uintptr_t entry_sp;      /* sp at a call made from the entry function. */
	uintptr_t entry_frame;   /* __builtin_frame_address(0) in the entry. */
	uintptr_t aligned_local; /* A 16-byte aligned local's address in the entry. */
	uintptr_t resumed_sp;    /* sp at a call after a later resume. */
	char text[64];
};

static void align_fiber(void *arg)
{
	struct align_test *t = arg;
	_Alignas(16) volatile unsigned char local[32];

	t->entry_sp = cross_sp_at_call();
	t->entry_frame = (uintptr_t)__builtin_frame_address(0);
	t->aligned_local = (uintptr_t)local;
	local[0] = 1;
	/* Variadic calls with doubles store vector registers on the stack. */
	snprintf(t->text, sizeof(t->text), "%.3f %.1f %s", 3.14159, 2.5e10, "ok");
	urt_ctx_switch(&t->fiber, &t->main);
	for (;;) {
		t->resumed_sp = cross_sp_at_call();
		urt_ctx_switch(&t->fiber, &t->main);
	}
}

/* Invariant 4: a new context starts on a 16-byte aligned stack inside its own stack. */
static void test_alignment(void)
{
	struct align_test t = { 0 };
	struct urt_stack st;
	uintptr_t lo, hi;

	stack_alloc_or_die(&st, STACK_SIZE);
	t.st = &st;
	lo = (uintptr_t)st.base;
	hi = lo + st.size;
	urt_ctx_make(&t.fiber, &st, align_fiber, &t);
	urt_ctx_switch(&t.main, &t.fiber);
	urt_ctx_switch(&t.main, &t.fiber);

	CHECK(t.entry_sp % 16 == 0, "entry sp %#" PRIxPTR " not 16-byte aligned", t.entry_sp);
	CHECK(t.entry_frame % 16 == 0, "entry frame %#" PRIxPTR, t.entry_frame);
	CHECK(t.aligned_local % 16 == 0, "aligned local at %#" PRIxPTR, t.aligned_local);
	CHECK(t.resumed_sp % 16 == 0, "sp after a resume %#" PRIxPTR, t.resumed_sp);
	CHECK(t.entry_sp > lo && t.entry_sp < hi, "entry sp %#" PRIxPTR " outside %#" PRIxPTR
	      "-%#" PRIxPTR, t.entry_sp, lo, hi);
	CHECK(t.entry_frame > lo && t.entry_frame < hi, "entry frame %#" PRIxPTR " outside %#"
	      PRIxPTR "-%#" PRIxPTR, t.entry_frame, lo, hi);
	/* The entry runs near the top: only the initial frame and urt_ctx_start are above. */
	CHECK(hi - t.entry_sp < 1024, "entry sp %#" PRIxPTR " is %" PRIuPTR " bytes below the top",
	      t.entry_sp, hi - t.entry_sp);
	CHECK(strcmp(t.text, "3.142 25000000000.0 ok") == 0, "snprintf on the fiber gave \"%s\"",
	      t.text);
	urt_ctx_destroy(&t.fiber);
	urt_stack_free(&st);
}

/* ------------------------------------------------------- deep recursion */

#define DEEP_STACK (256 * 1024)
/* Recursion stops with this much of the stack left: it uses about 7/8 of it. */
#define DEEP_MARGIN (32 * 1024)
#define PAD 480

struct deep_test {
	struct urt_ctx main, fiber;
	uintptr_t base;        /* Lowest usable byte of the fiber's stack. */
	uintptr_t lowest;      /* Lowest frame address reached. */
	unsigned depth;        /* Depth at which the recursion turned. */
	uint64_t sum;          /* What the recursion returned. */
	unsigned bad_frames;   /* Frames whose pad changed while suspended. */
	bool done;
};

static uint64_t pad_byte(unsigned depth, unsigned i)
{
	return (depth * 31 + i * 7) & 0xff;
}

/*
 * Fills a pad per frame, switches to main at the deepest point, and checks
 * every pad on the way back up.
 */
static NOIPA uint64_t deep(struct deep_test *t, unsigned depth)
{
	volatile unsigned char pad[PAD];
	uintptr_t frame = (uintptr_t)__builtin_frame_address(0);
	uint64_t sum = 0;

	for (unsigned i = 0; i < PAD; i++)
		pad[i] = (unsigned char)pad_byte(depth, i);
	if (frame < t->lowest)
		t->lowest = frame;
	if (frame - t->base > DEEP_MARGIN) {
		sum = deep(t, depth + 1);
	} else {
		t->depth = depth;
		urt_ctx_switch(&t->fiber, &t->main);
	}
	for (unsigned i = 0; i < PAD; i++) {
		if (pad[i] != pad_byte(depth, i)) {
			t->bad_frames++;
			break;
		}
	}
	return sum + depth;
}

static void deep_fiber(void *arg)
{
	struct deep_test *t = arg;

	t->sum = deep(t, 0);
	t->done = true;
	for (;;)
		urt_ctx_switch(&t->fiber, &t->main);
}

static void test_deep_recursion(void)
{
	struct deep_test t = { 0 };
	struct urt_stack st;
	uint64_t want;

	stack_alloc_or_die(&st, DEEP_STACK);
	t.base = (uintptr_t)st.base;
	t.lowest = UINTPTR_MAX;
	urt_ctx_make(&t.fiber, &st, deep_fiber, &t);
	urt_ctx_switch(&t.main, &t.fiber);
	CHECK(!t.done && t.depth > 0, "recursion did not stop at its deepest point");
	urt_ctx_switch(&t.main, &t.fiber);
	CHECK(t.done, "recursion did not finish");
	want = (uint64_t)t.depth * (t.depth + 1) / 2;
	CHECK(t.sum == want, "depth %u: sum %" PRIu64 ", want %" PRIu64, t.depth, t.sum, want);
	CHECK(t.bad_frames == 0, "%u of %u frames lost their contents", t.bad_frames, t.depth + 1);
	CHECK(t.lowest > t.base && t.lowest - t.base <= DEEP_MARGIN,
	      "lowest frame %#" PRIxPTR ", stack base %#" PRIxPTR, t.lowest, t.base);
	CHECK((uintptr_t)st.base + st.size - t.lowest >= st.size * 3 / 4,
	      "used %" PRIuPTR " of %zu bytes", (uintptr_t)st.base + st.size - t.lowest, st.size);
	urt_ctx_destroy(&t.fiber);
	urt_stack_free(&st);
}

/* --------------------------------------------- reusing a stack for a new context */

struct reuse_test {
	struct urt_ctx main, fiber;
	unsigned first_runs, second_runs;
	uint64_t second_value;
};

static void reuse_first(void *arg)
{
	struct reuse_test *t = arg;
	volatile uint64_t junk[64];

	/* Dirty the stack the second context will reuse. */
	for (unsigned i = 0; i < 64; i++)
		junk[i] = ~0ull - i;
	for (;;) {
		t->first_runs += junk[63] == ~0ull - 63 ? 1 : 100;
		urt_ctx_switch(&t->fiber, &t->main);
	}
}

static void reuse_second(void *arg)
{
	struct reuse_test *t = arg;
	uint64_t v = 0;

	for (;;) {
		t->second_runs++;
		v += t->second_runs;
		t->second_value = v;
		urt_ctx_switch(&t->fiber, &t->main);
	}
}

/* A context abandoned mid-call can be destroyed and its stack made into a new one. */
static void test_stack_reuse(void)
{
	struct reuse_test t = { 0 };
	struct urt_stack st;

	stack_alloc_or_die(&st, STACK_SIZE);
	urt_ctx_make(&t.fiber, &st, reuse_first, &t);
	urt_ctx_switch(&t.main, &t.fiber);
	urt_ctx_switch(&t.main, &t.fiber);
	urt_ctx_destroy(&t.fiber);
	urt_ctx_make(&t.fiber, &st, reuse_second, &t);
	for (unsigned i = 0; i < 3; i++)
		urt_ctx_switch(&t.main, &t.fiber);
	CHECK(t.first_runs == 2, "first entry ran %u times, want 2", t.first_runs);
	CHECK(t.second_runs == 3 && t.second_value == 6, "second entry ran %u times, value %"
	      PRIu64, t.second_runs, t.second_value);
	urt_ctx_destroy(&t.fiber);
	urt_stack_free(&st);
}

/* ------------------------------------------------ children that must die */

/*
 * Runs fn in a child whose stderr goes into err; returns the wait status.
 * The child gets no core file (qemu-user writes one of its own otherwise).
 */
static int run_child(void (*fn)(void), char *err, size_t err_len)
{
	int fds[2];
	pid_t pid;
	int status = 0;
	size_t got = 0;
	ssize_t n;

	if (pipe(fds) != 0) {
		fprintf(stderr, "FAIL pipe: %s\n", strerror(errno));
		exit(1);
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "FAIL fork: %s\n", strerror(errno));
		exit(1);
	}
	if (pid == 0) {
		struct rlimit no_core = { 0, 0 };

		setrlimit(RLIMIT_CORE, &no_core);
		close(fds[0]);
		dup2(fds[1], STDERR_FILENO);
		fn();
		_exit(5);
	}
	close(fds[1]);
	while (got < err_len - 1 && (n = read(fds[0], err + got, err_len - 1 - got)) > 0)
		got += (size_t)n;
	err[got] = '\0';
	close(fds[0]);
	if (waitpid(pid, &status, 0) != pid) {
		fprintf(stderr, "FAIL waitpid: %s\n", strerror(errno));
		exit(1);
	}
	return status;
}

/* A readable account of a wait status, for failure messages. */
static const char *status_text(int status, char *buf, size_t len)
{
	if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d", WTERMSIG(status));
	else if (WIFEXITED(status))
		snprintf(buf, len, "exited with %d", WEXITSTATUS(status));
	else
		snprintf(buf, len, "status %#x", status);
	return buf;
}

static int returned_flag;

static void returning_entry(void *arg)
{
	*(int *)arg = 1;
}

static void entry_returns_child(void)
{
	struct urt_ctx main_ctx, fiber;
	struct urt_stack st;

	stack_alloc_or_die(&st, STACK_SIZE);
	urt_ctx_make(&fiber, &st, returning_entry, &returned_flag);
	urt_ctx_switch(&main_ctx, &fiber);
	/* Reached only if control came back instead of aborting. */
	fprintf(stderr, "entry returned into main (flag %d)\n", returned_flag);
	_exit(6);
}

/* Invariant 3: an entry that returns aborts the process with a message. */
static void test_entry_return_aborts(void)
{
	char err[4096], why[64];
	int status = run_child(entry_returns_child, err, sizeof(err));

	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "child %s, stderr: %s",
	      status_text(status, why, sizeof(why)), err);
	CHECK(strstr(err, "returned") != NULL, "stderr lacks the message: %s", err);
}

static void tiny_stack_child(void)
{
	struct urt_ctx fiber;
	char mem[256];
	struct urt_stack st = { .base = mem, .size = sizeof(mem) };

	urt_ctx_make(&fiber, &st, returning_entry, &returned_flag);
}

/* urt_ctx_make rejects a stack below URT_CTX_STACK_MIN by aborting. */
static void test_tiny_stack_aborts(void)
{
	char err[4096], why[64];
	int status = run_child(tiny_stack_child, err, sizeof(err));

	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "child %s, stderr: %s",
	      status_text(status, why, sizeof(why)), err);
	CHECK(strstr(err, "urt_ctx_make") != NULL, "stderr lacks the message: %s", err);
}

/* Never reached; it only keeps the compiler from calling the recursion infinite. */
static volatile unsigned overflow_limit = UINT32_MAX;

static NOIPA unsigned overflow(unsigned depth)
{
	volatile char pad[PAD];

	pad[0] = (char)depth;
	if (depth >= overflow_limit)
		return pad[0];
	return overflow(depth + 1) + pad[0];
}

static void overflow_entry(void *arg)
{
	(void)arg;
	overflow(0);
}

static void overflow_child(void)
{
	struct urt_ctx main_ctx, fiber;
	struct urt_stack st;

	stack_alloc_or_die(&st, STACK_SIZE);
	urt_ctx_make(&fiber, &st, overflow_entry, NULL);
	urt_ctx_switch(&main_ctx, &fiber);
	_exit(7);
}

/* stack.c: running off the end of a context's stack hits the guard. */
static void test_guard_page(void)
{
	char err[4096], why[64];
	int status = run_child(overflow_child, err, sizeof(err));

	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV, "child %s, stderr: %s",
	      status_text(status, why, sizeof(why)), err);
}

/* ------------------------------------------------------------------ main */

static const struct {
	const char *name;
	void (*fn)(void);
} tests[] = {
	{ "ping_pong_and_ring", test_ping_pong },
	{ "swap_returns_switcher", test_swap_returns_switcher },
	{ "callee_saved_registers_asm", test_registers_asm },
	{ "callee_saved_registers_compiler", test_registers_compiler },
	{ "fp_control_per_context", test_fp_control },
	{ "new_stack_aligned", test_alignment },
	{ "deep_recursion", test_deep_recursion },
	{ "stack_reuse", test_stack_reuse },
	{ "entry_return_aborts", test_entry_return_aborts },
	{ "tiny_stack_aborts", test_tiny_stack_aborts },
	{ "guard_page_sigsegv", test_guard_page },
};

int main(void)
{
	unsigned failed_tests = 0;

	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		unsigned before = failures;

		tests[i].fn();
		printf("%s %s: %s\n", ARCH, tests[i].name, failures == before ? "ok" : "FAILED");
		fflush(stdout);
		failed_tests += failures != before;
	}
	printf("%s: %u of %zu tests failed, %u failed checks\n", ARCH, failed_tests,
	       sizeof(tests) / sizeof(tests[0]), failures);
	return failures == 0 ? 0 : 1;
}
