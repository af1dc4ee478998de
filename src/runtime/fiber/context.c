/*
 * Context switching: the C half.  The architecture-specific half (initial
 * frame, register save and restore, trampoline) is in context_<arch>.S; this
 * file adds the sanitizer protocol around it and the checks at creation.
 *
 * Life of a context:
 *   urt_ctx_make:   ctx->sp points at a frame whose return address is the
 *                   trampoline, with entry and arg in callee-saved registers.
 *   first switch:   urt_ctx_swap "returns" into urt_ctx_trampoline, which calls
 *                   urt_ctx_start(prev, entry, arg) on the new stack.
 *   later switches: urt_ctx_swap returns inside urt_ctx_switch on the stack
 *                   that was suspended there.
 *   end:            entry never returns; the owner stops switching to ctx,
 *                   calls urt_ctx_destroy and frees the stack.
 *
 * Without sanitizers urt_ctx_switch compiles to a tail call of urt_ctx_swap,
 * so the C layer costs one jump.
 */
#include "runtime/fiber/context.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

void urt_ctx_make(struct urt_ctx *ctx, const struct urt_stack *st, void (*entry)(void *arg),
		  void *arg)
{
	/* Programmer errors: checked in every build, since the cost is nil here. */
	if (st->base == NULL || st->size < URT_CTX_STACK_MIN || entry == NULL) {
		fprintf(stderr, "urt_ctx_make: bad stack (base %p, size %zu) or NULL entry\n",
			st->base, st->size);
		abort();
	}

	urt_stack_unpoison(st);
	ctx->stack_bottom = st->base;
	ctx->stack_size = st->size;
	ctx->asan_fake_stack = NULL;
	urt_ctx_tsan_make(ctx);
	ctx->sp = urt_ctx_prepare((char *)st->base + st->size, entry, arg);
}

void urt_ctx_switch(struct urt_ctx *from, struct urt_ctx *to)
{
	struct urt_ctx *prev;

	urt_ctx_asan_leave(from, to);
	urt_ctx_tsan_leave(from, to);
	prev = urt_ctx_swap(from, to);
	urt_ctx_asan_arrive(from, prev);
}

void urt_ctx_destroy(struct urt_ctx *ctx)
{
	urt_ctx_tsan_destroy(ctx);
	ctx->sp = NULL;
}

_Noreturn void urt_ctx_start(struct urt_ctx *prev, void (*entry)(void *arg), void *arg)
{
	urt_ctx_asan_first_entry(prev);
	entry(arg);
	fprintf(stderr, "urt: context entry %p returned; a fiber must switch away for good\n",
		(void *)(uintptr_t)entry);
	abort();
}
