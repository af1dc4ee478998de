/*
 * Stackful execution contexts: the primitive under the fiber scheduler.
 *
 * A context is a suspended stack.  urt_ctx_switch(from, to) saves the
 * callee-saved state of the running code in `from` and resumes `to`; to its
 * caller it looks like an ordinary function call that returns once someone
 * switches back to `from`.  Nothing here allocates, blocks or makes a system
 * call, so a switch costs a few nanoseconds.
 *
 * What a switch preserves (everything else is caller-saved in the ABI and is
 * therefore already saved by the compiler around the call):
 *   x86-64:  rbx rbp r12-r15, rsp, MXCSR and the x87 control word.
 *   aarch64: x19-x30, sp, d8-d15 and FPCR.
 *
 * Invariants:
 *  1. A context is running or suspended, never both: switching to the running
 *     context or to one that is suspended in no urt_ctx_switch() call is a
 *     programmer error and corrupts both stacks.
 *  2. `from` needs no initialisation: the thread's original context (main)
 *     becomes a valid switch target by switching away from it.
 *  3. The entry function of urt_ctx_make() never returns; the scheduler
 *     switches away from a finished fiber for good.  If it does return, the
 *     process aborts with a message (the trampoline under it calls abort()).
 *  4. A new context starts with a 16-byte aligned stack as the SysV and
 *     AAPCS64 ABIs require, and with the floating-point control state of the
 *     thread that called urt_ctx_make(), as a new pthread inherits it.
 *
 * Sanitizers: under URT_ASAN every switch tells ASan which stack it moves to
 * (__sanitizer_{start,finish}_switch_fiber), and under URT_TSAN every made
 * context has its own TSan fiber, freed by urt_ctx_destroy().  The hooks are
 * the static inline functions at the end of this header, so context.c needs
 * no #ifdef.
 */
#ifndef URT_RUNTIME_CONTEXT_H
#define URT_RUNTIME_CONTEXT_H

#include <stddef.h>

#include "runtime/fiber/stack.h"

/* The smallest stack urt_ctx_make() accepts: one page of frames. */
#define URT_CTX_STACK_MIN 4096

struct urt_ctx {
	void *sp;                 /* Saved stack pointer while suspended; the assembly uses offset 0. */
	const void *stack_bottom; /* Lowest byte of this context's stack, for ASan. */
	size_t stack_size;        /* Size of that stack in bytes, for ASan. */
	void *asan_fake_stack;    /* ASan's fake-stack handle, saved while suspended. */
	void *tsan_fiber;         /* TSan's fiber for this context, or NULL without TSan. */
};

_Static_assert(offsetof(struct urt_ctx, sp) == 0,
	       "context_*.S loads and stores the saved stack pointer at offset 0");

/*
 * Prepares ctx to run entry(arg) on st at the first switch to it.  The stack
 * must hold at least URT_CTX_STACK_MIN bytes and must stay mapped while the
 * context lives; one stack serves one context at a time.
 */
void urt_ctx_make(struct urt_ctx *ctx, const struct urt_stack *st, void (*entry)(void *arg),
		  void *arg);

/*
 * Suspends the running code in from and resumes to.  Returns when some
 * context switches back to from.
 */
void urt_ctx_switch(struct urt_ctx *from, struct urt_ctx *to);

/*
 * Releases what urt_ctx_make() acquired for ctx (TSan's fiber; nothing in
 * other builds).  ctx must come from urt_ctx_make() and must not be running.
 */
void urt_ctx_destroy(struct urt_ctx *ctx);

/*
 * Private to context.c and context_<arch>.S.
 *
 * urt_ctx_swap() saves the callee-saved state on the current stack, stores
 * the stack pointer in from->sp, loads to->sp and restores.  The code it
 * resumes sees it return the context that switched to it (its `from`).
 * urt_ctx_prepare() builds the initial frame below top (rounded down to 16
 * bytes) and returns the stack pointer to store in ctx->sp: the first swap to
 * it "returns" into urt_ctx_trampoline(), which calls
 * urt_ctx_start(prev, entry, arg).
 */
struct urt_ctx *urt_ctx_swap(struct urt_ctx *from, struct urt_ctx *to);
void *urt_ctx_prepare(void *top, void (*entry)(void *arg), void *arg);
void urt_ctx_trampoline(void);
_Noreturn void urt_ctx_start(struct urt_ctx *prev, void (*entry)(void *arg), void *arg);

/*
 * Sanitizer hooks.  Protocol (ASan): the side that leaves calls
 * start_switch_fiber with the target stack; the side that arrives calls
 * finish_switch_fiber, which reports the stack it came from, and that is how
 * main's context learns its own stack bounds.  A brand-new context has no
 * fake stack to restore, hence the NULL in urt_ctx_san_first_entry().
 */
#if defined(URT_ASAN)
#include <sanitizer/common_interface_defs.h>
static inline void urt_ctx_asan_leave(struct urt_ctx *from, struct urt_ctx *to)
{
	__sanitizer_start_switch_fiber(&from->asan_fake_stack, to->stack_bottom, to->stack_size);
}
static inline void urt_ctx_asan_arrive(struct urt_ctx *self, struct urt_ctx *prev)
{
	__sanitizer_finish_switch_fiber(self->asan_fake_stack, &prev->stack_bottom,
					&prev->stack_size);
}
static inline void urt_ctx_asan_first_entry(struct urt_ctx *prev)
{
	__sanitizer_finish_switch_fiber(NULL, &prev->stack_bottom, &prev->stack_size);
}
#else
static inline void urt_ctx_asan_leave(struct urt_ctx *from, struct urt_ctx *to)
{
	(void)from;
	(void)to;
}
static inline void urt_ctx_asan_arrive(struct urt_ctx *self, struct urt_ctx *prev)
{
	(void)self;
	(void)prev;
}
static inline void urt_ctx_asan_first_entry(struct urt_ctx *prev)
{
	(void)prev;
}
#endif

/*
 * TSan: each made context owns a fiber.  The running context's fiber is read
 * back before every switch, which gives main's context (never made) the
 * thread's own fiber to come back to.  Switching synchronises the two fibers
 * (flags 0), matching the happens-before a real switch implies.
 */
#if defined(URT_TSAN)
#include <sanitizer/tsan_interface.h>
static inline void urt_ctx_tsan_make(struct urt_ctx *ctx)
{
	ctx->tsan_fiber = __tsan_create_fiber(0);
}
static inline void urt_ctx_tsan_leave(struct urt_ctx *from, struct urt_ctx *to)
{
	from->tsan_fiber = __tsan_get_current_fiber();
	__tsan_switch_to_fiber(to->tsan_fiber, 0);
}
static inline void urt_ctx_tsan_destroy(struct urt_ctx *ctx)
{
	if (ctx->tsan_fiber != NULL)
		__tsan_destroy_fiber(ctx->tsan_fiber);
	ctx->tsan_fiber = NULL;
}
#else
static inline void urt_ctx_tsan_make(struct urt_ctx *ctx)
{
	ctx->tsan_fiber = NULL;
}
static inline void urt_ctx_tsan_leave(struct urt_ctx *from, struct urt_ctx *to)
{
	(void)from;
	(void)to;
}
static inline void urt_ctx_tsan_destroy(struct urt_ctx *ctx)
{
	ctx->tsan_fiber = NULL;
}
#endif

#endif /* URT_RUNTIME_CONTEXT_H */
