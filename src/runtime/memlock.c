/*
 * The RLIMIT_MEMLOCK preflight: what a runtime will pin, counted before the
 * kernel is asked, so that a low limit is reported with its numbers and its
 * fix instead of as ENOMEM from io_uring_setup or buffer registration.
 *
 * What the kernel charges to the user's locked memory (unless the process
 * has CAP_IPC_LOCK), per ring, and each ring separately:
 *   - the ring's own memory: the CQ ring with its CQEs and the SQ index
 *     array, and the SQE array, each rounded up to whole pages (Linux 6.x
 *     accounts io_uring's memory regions; older kernels charge memcg);
 *   - every buffer registration: the buffer region is registered once per
 *     ring, so a core with a main ring and an IOPOLL ring pins it twice,
 *     and three times with a passthrough ring (SQE128|CQE32).
 *   - the kernel-feature probe's rings (probe.c): closed before the
 *     runtime's own are made, but freed by the kernel asynchronously, so
 *     they may still count while the runtime's rings are made; a few
 *     small rings, each made once per process (probe_locked_bytes).
 * Ring kinds: RING_MAIN on every core; RING_POLL at start in IOPOLL mode,
 * and in hybrid mode unless the kernel refused HYBRID_IOPOLL; RING_BIG at the
 * first passthrough op of a core, checked then (for every core, since any
 * core may open one).  Provided-buffer rings of sockets (net.c) are not
 * counted: they are created later, by the application, and are small.
 *
 * The count is what this process pins; other processes of the same user
 * count against the same limit, which no process can see.  When the kernel
 * refuses although the count fits (memlock_refused), the advised limit is
 * the current one plus the whole count, which covers any use by others
 * that fits under the current limit.
 *
 * Messages name the limit, the count and `ulimit -l` with the number that
 * suffices; then opts.memlock_hint, the program's own way to pin less, or
 * generic words: the runtime's option names mean nothing to a program's
 * user.
 */
#include <errno.h>
#include <linux/capability.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/core.h"
#include "runtime/memlock.h"
#include "runtime/probe.h"

#define PAGE 4096ull
/* struct io_rings before its CQE array: head/tail/flags on their own cache lines, with room to spare. */
#define RINGS_HEADER 512ull

static uint64_t page_align(uint64_t v)
{
	return (v + PAGE - 1) / PAGE * PAGE;
}

static uint64_t pow2_at_least(uint64_t v)
{
	uint64_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

bool memlock_unlimited(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2];
	struct rlimit rl;

	if (syscall(SYS_capget, &hdr, data) == 0 &&
	    (data[CAP_IPC_LOCK / 32].effective & (1u << (CAP_IPC_LOCK % 32))))
		return true;
	return getrlimit(RLIMIT_MEMLOCK, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY;
}

uint64_t memlock_ring_charge(unsigned sq_entries, unsigned cq_entries, bool big)
{
	uint64_t sq = pow2_at_least(sq_entries);
	uint64_t cq = pow2_at_least(cq_entries);

	return page_align(RINGS_HEADER + cq * (big ? 32 : 16) + sq * 4) + page_align(sq * (big ? 128 : 64));
}

uint64_t memlock_ring_bytes(const struct urt_rt_opts *o, enum ring_kind kind)
{
	uint64_t cq = o->cq_entries ? o->cq_entries : 4ull * o->req_max + 2ull * o->sq_entries + 64;

	return memlock_ring_charge(o->sq_entries, (unsigned)cq, kind == RING_BIG);
}

unsigned memlock_start_kinds(const struct urt_rt_opts *o)
{
	unsigned kinds = 1u << RING_MAIN;

	/* Hybrid: counted unless the kernel refused HYBRID_IOPOLL; an unanswered probe may say yes at the next start. */
	if (o->mode == URT_POLL_IOPOLL || (o->mode == URT_POLL_HYBRID && !probe_refused(PROBE_HYBRID_IOPOLL)))
		kinds |= 1u << RING_POLL;
	return kinds;
}

/* What the runtime's own rings and registrations pin, without the probe's rings. */
static uint64_t runtime_need(const struct urt_rt_opts *o, unsigned ncores, unsigned kinds, bool bufs)
{
	uint64_t per_core = 0;

	for (int k = 0; k < RING_KINDS; k++)
		if (kinds & (1u << k))
			per_core += memlock_ring_bytes(o, (enum ring_kind)k) +
				    (bufs ? page_align(o->buf_region_bytes) : 0);
	return per_core * ncores;
}

uint64_t memlock_need(const struct urt_rt_opts *o, unsigned ncores, unsigned kinds, bool bufs)
{
	return runtime_need(o, ncores, kinds, bufs) + probe_locked_bytes();
}

static void append(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Format onto the end of the string in buf (len bytes), truncating. */
static void append(char *buf, size_t len, const char *fmt, ...)
{
	size_t n = strlen(buf);
	va_list ap;

	if (n + 1 >= len)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + n, len - n, fmt, ap);
	va_end(ap);
}

/* The fix: the limit that suffices, then the program's way to pin less or generic words. */
static void advice_append(const struct urt_rt_opts *o, bool bufs, uint64_t limit_bytes, char *buf, size_t len)
{
	append(buf, len, ": raise it (ulimit -l %llu, or LimitMEMLOCK= / limits.conf memlock)",
	       (unsigned long long)(limit_bytes + 1023) / 1024);
	if (o->memlock_hint && !*o->memlock_hint)
		return;
	append(buf, len, ", or %s", o->memlock_hint ? o->memlock_hint
				    : bufs ? "run fewer cores or a smaller buffer region" : "run fewer cores");
}

int memlock_check(const struct urt_rt_opts *o, unsigned ncores, unsigned kinds, bool bufs)
{
	static const char *const names[RING_KINDS] = { "main", "IOPOLL", "passthrough" };
	uint64_t need, probes;
	char msg[768], list[64] = "";
	unsigned nkinds = 0;
	struct rlimit rl;

	if (memlock_unlimited())
		return 0;
	/* The probe first: its rings count too (the design notes). */
	probe_features();
	need = memlock_need(o, ncores, kinds, bufs);
	probes = probe_locked_bytes();
	if (getrlimit(RLIMIT_MEMLOCK, &rl) || need <= rl.rlim_cur)
		return 0;
	for (int k = 0; k < RING_KINDS; k++) {
		if (!(kinds & (1u << k)))
			continue;
		append(list, sizeof(list), "%s%s", nkinds ? ", " : "", names[k]);
		nkinds++;
	}
	snprintf(msg, sizeof(msg), "RLIMIT_MEMLOCK is %llu KiB but the runtime pins %llu KiB: %u core%s x %u ring%s "
		 "(%s), each %llu KiB of ring memory", (unsigned long long)rl.rlim_cur / 1024,
		 (unsigned long long)(need + 1023) / 1024, ncores, ncores == 1 ? "" : "s", nkinds,
		 nkinds == 1 ? "" : "s", list, (unsigned long long)(runtime_need(o, 1, kinds, false) / nkinds) / 1024);
	if (bufs)
		append(msg, sizeof(msg), " plus a registration of the %llu KiB buffer region",
		       (unsigned long long)page_align(o->buf_region_bytes) / 1024);
	if (probes)
		append(msg, sizeof(msg), ", and %llu KiB of kernel-feature probe rings (freed late)",
		       (unsigned long long)probes / 1024);
	advice_append(o, bufs, need, msg, sizeof(msg));
	urt_set_error("%s", msg);
	return -ENOMEM;
}

void memlock_refused(const struct urt_rt_opts *o, unsigned ncores, unsigned kinds, bool bufs, const char *what,
		     int err)
{
	uint64_t need = memlock_need(o, ncores, kinds, bufs);
	char msg[768];
	struct rlimit rl;

	if (getrlimit(RLIMIT_MEMLOCK, &rl) || rl.rlim_cur == RLIM_INFINITY)
		rl.rlim_cur = 0;
	snprintf(msg, sizeof(msg), "%s: %s: RLIMIT_MEMLOCK is %llu KiB and the runtime pins %llu KiB, but this "
		 "user's other locked memory (other processes' rings and buffers) counts too", what, strerror(-err),
		 (unsigned long long)rl.rlim_cur / 1024, (unsigned long long)(need + 1023) / 1024);
	advice_append(o, bufs, (uint64_t)rl.rlim_cur + need, msg, sizeof(msg));
	urt_set_error("%s", msg);
}
