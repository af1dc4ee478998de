/*
 * Context switch for aarch64 (AAPCS64).  See context.h for the contract.
 *
 * Saved frame, from the saved stack pointer upwards (176 bytes, a multiple
 * of 16 as sp must always be; shared by urt_ctx_swap and urt_ctx_prepare):
 *     0  x19 x20   (entry, arg for a new context)
 *    16  x21 x22
 *    32  x23 x24
 *    48  x25 x26
 *    64  x27 x28
 *    80  x29 x30   (x30 = urt_ctx_trampoline for a new context)
 *    96  d8  d9
 *   112  d10 d11
 *   128  d12 d13
 *   144  d14 d15
 *   160  FPCR, 8 bytes unused
 */
#if defined(__aarch64__)

#define FRAME 176

	.text

/* struct urt_ctx *urt_ctx_swap(struct urt_ctx *from x0, struct urt_ctx *to x1) */
	.globl	urt_ctx_swap
	.hidden	urt_ctx_swap
	.type	urt_ctx_swap, %function
	.p2align 4
urt_ctx_swap:
	.cfi_startproc
	sub	sp, sp, #FRAME
	.cfi_adjust_cfa_offset FRAME
	stp	x19, x20, [sp, #0]
	stp	x21, x22, [sp, #16]
	stp	x23, x24, [sp, #32]
	stp	x25, x26, [sp, #48]
	stp	x27, x28, [sp, #64]
	stp	x29, x30, [sp, #80]
	.cfi_rel_offset x29, 80
	.cfi_rel_offset x30, 88
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	mrs	x9, fpcr
	str	x9, [sp, #160]

	/* The switch proper; both stacks hold the same frame layout. */
	mov	x9, sp
	str	x9, [x0]
	ldr	x9, [x1]
	mov	sp, x9

	ldp	x19, x20, [sp, #0]
	ldp	x21, x22, [sp, #16]
	ldp	x23, x24, [sp, #32]
	ldp	x25, x26, [sp, #48]
	ldp	x27, x28, [sp, #64]
	ldp	x29, x30, [sp, #80]
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	/* Writing FPCR can be slow; skip it when the two contexts agree. */
	ldr	x9, [sp, #160]
	mrs	x10, fpcr
	cmp	x9, x10
	b.eq	1f
	msr	fpcr, x9
1:
	add	sp, sp, #FRAME
	.cfi_adjust_cfa_offset -FRAME
	.cfi_restore x29
	.cfi_restore x30
	/* x0 still holds the switcher's from: the resumed side's return value. */
	ret
	.cfi_endproc
	.size	urt_ctx_swap, .-urt_ctx_swap

/* void *urt_ctx_prepare(void *top x0, void (*entry)(void *) x1, void *arg x2) */
	.globl	urt_ctx_prepare
	.hidden	urt_ctx_prepare
	.type	urt_ctx_prepare, %function
	.p2align 4
urt_ctx_prepare:
	.cfi_startproc
	/*
	 * sp = top16 - FRAME - 16: the frame plus 16 zero bytes above it, so
	 * that after the first swap sp is top16 - 16, 16-byte aligned.
	 */
	and	x0, x0, #~15
	sub	x0, x0, #(FRAME + 16)
	stp	x1, x2, [x0, #0]
	stp	xzr, xzr, [x0, #16]
	stp	xzr, xzr, [x0, #32]
	stp	xzr, xzr, [x0, #48]
	stp	xzr, xzr, [x0, #64]
	/* x29 = 0 ends frame-pointer walks here; x30 is where the first swap returns. */
	adr	x3, urt_ctx_trampoline
	stp	xzr, x3, [x0, #80]
	stp	xzr, xzr, [x0, #96]
	stp	xzr, xzr, [x0, #112]
	stp	xzr, xzr, [x0, #128]
	stp	xzr, xzr, [x0, #144]
	/* Inherit the creator's floating-point control state, as pthreads do. */
	mrs	x3, fpcr
	stp	x3, xzr, [x0, #160]
	stp	xzr, xzr, [x0, #FRAME]
	ret
	.cfi_endproc
	.size	urt_ctx_prepare, .-urt_ctx_prepare

/*
 * First code run on a new context, reached by urt_ctx_swap's ret.  x0 holds
 * the context that switched here, x19 entry and x20 arg.
 */
	.globl	urt_ctx_trampoline
	.hidden	urt_ctx_trampoline
	.type	urt_ctx_trampoline, %function
	.p2align 4
urt_ctx_trampoline:
	.cfi_startproc
	/* There is no caller: tell unwinders to stop here. */
	.cfi_undefined x30
	mov	x1, x19
	mov	x2, x20
	bl	urt_ctx_start
	/* urt_ctx_start is _Noreturn. */
	brk	#1
	.cfi_endproc
	.size	urt_ctx_trampoline, .-urt_ctx_trampoline

#endif /* __aarch64__ */

/* The stack of any program linking this stays non-executable. */
	.section .note.GNU-stack, "", %progbits
