/*
 * test_switch_regs(from, to, in, out) loads in[] into every callee-saved
 * register, calls urt_ctx_switch(from, to), and once control comes back
 * stores those registers into out[].  Whatever the switch fails to restore
 * shows up as out[i] != in[i].  NREGS is the number of registers (0 on an
 * architecture without a helper) and switch_reg_names[] names them.
 *
 * Shared by test_context.c (the Criterion suite) and cross/context_cross.c
 * (the standalone program run natively and under qemu-aarch64); each
 * includes it once, so the global function is defined once per program.
 */
#ifndef URT_TESTS_SWITCH_REGS_H
#define URT_TESTS_SWITCH_REGS_H

#include <stdint.h>

#include "runtime/fiber/context.h"

void test_switch_regs(struct urt_ctx *from, struct urt_ctx *to, const uint64_t *in,
		      uint64_t *out);

#if defined(__x86_64__)
#define NREGS 6
static const char *const switch_reg_names[NREGS] = { "rbx", "rbp", "r12", "r13", "r14", "r15" };
__asm__(".text\n"
	".globl test_switch_regs\n"
	".type test_switch_regs, @function\n"
	"test_switch_regs:\n"
	"	pushq %rbp\n"
	"	pushq %rbx\n"
	"	pushq %r12\n"
	"	pushq %r13\n"
	"	pushq %r14\n"
	"	pushq %r15\n"
	"	pushq %rcx\n" /* out; also makes rsp 16-byte aligned for the call. */
	"	movq 0(%rdx), %rbx\n"
	"	movq 8(%rdx), %rbp\n"
	"	movq 16(%rdx), %r12\n"
	"	movq 24(%rdx), %r13\n"
	"	movq 32(%rdx), %r14\n"
	"	movq 40(%rdx), %r15\n"
	"	call urt_ctx_switch@PLT\n"
	"	popq %rcx\n"
	"	movq %rbx, 0(%rcx)\n"
	"	movq %rbp, 8(%rcx)\n"
	"	movq %r12, 16(%rcx)\n"
	"	movq %r13, 24(%rcx)\n"
	"	movq %r14, 32(%rcx)\n"
	"	movq %r15, 40(%rcx)\n"
	"	popq %r15\n"
	"	popq %r14\n"
	"	popq %r13\n"
	"	popq %r12\n"
	"	popq %rbx\n"
	"	popq %rbp\n"
	"	ret\n"
	".size test_switch_regs, .-test_switch_regs\n");
#elif defined(__aarch64__)
/* x19-x28, x29 (the frame pointer), d8-d15. */
#define NREGS 19
static const char *const switch_reg_names[NREGS] = {
	"x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28",
	"x29", "d8",  "d9",  "d10", "d11", "d12", "d13", "d14", "d15",
};
__asm__(".text\n"
	".globl test_switch_regs\n"
	".type test_switch_regs, %function\n"
	"test_switch_regs:\n"
	"	stp x29, x30, [sp, #-176]!\n"
	"	stp x19, x20, [sp, #16]\n"
	"	stp x21, x22, [sp, #32]\n"
	"	stp x23, x24, [sp, #48]\n"
	"	stp x25, x26, [sp, #64]\n"
	"	stp x27, x28, [sp, #80]\n"
	"	stp d8, d9, [sp, #96]\n"
	"	stp d10, d11, [sp, #112]\n"
	"	stp d12, d13, [sp, #128]\n"
	"	stp d14, d15, [sp, #144]\n"
	"	str x3, [sp, #160]\n"
	"	ldp x19, x20, [x2, #0]\n"
	"	ldp x21, x22, [x2, #16]\n"
	"	ldp x23, x24, [x2, #32]\n"
	"	ldp x25, x26, [x2, #48]\n"
	"	ldp x27, x28, [x2, #64]\n"
	"	ldr x29, [x2, #80]\n"
	"	ldp d8, d9, [x2, #88]\n"
	"	ldp d10, d11, [x2, #104]\n"
	"	ldp d12, d13, [x2, #120]\n"
	"	ldp d14, d15, [x2, #136]\n"
	"	bl urt_ctx_switch\n"
	"	ldr x3, [sp, #160]\n"
	"	stp x19, x20, [x3, #0]\n"
	"	stp x21, x22, [x3, #16]\n"
	"	stp x23, x24, [x3, #32]\n"
	"	stp x25, x26, [x3, #48]\n"
	"	stp x27, x28, [x3, #64]\n"
	"	str x29, [x3, #80]\n"
	"	stp d8, d9, [x3, #88]\n"
	"	stp d10, d11, [x3, #104]\n"
	"	stp d12, d13, [x3, #120]\n"
	"	stp d14, d15, [x3, #136]\n"
	"	ldp x19, x20, [sp, #16]\n"
	"	ldp x21, x22, [sp, #32]\n"
	"	ldp x23, x24, [sp, #48]\n"
	"	ldp x25, x26, [sp, #64]\n"
	"	ldp x27, x28, [sp, #80]\n"
	"	ldp d8, d9, [sp, #96]\n"
	"	ldp d10, d11, [sp, #112]\n"
	"	ldp d12, d13, [sp, #128]\n"
	"	ldp d14, d15, [sp, #144]\n"
	"	ldp x29, x30, [sp], #176\n"
	"	ret\n"
	".size test_switch_regs, .-test_switch_regs\n");
#else
#define NREGS 0
static const char *const switch_reg_names[1] = { "none" };
#endif

#endif /* URT_TESTS_SWITCH_REGS_H */
