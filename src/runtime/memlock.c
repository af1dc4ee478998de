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
 * Ring kinds: RING_MAIN on every core; RING_POLL at start in IOPOLL mode,
 * and in hybrid mode when the kernel takes HYBRID_IOPOLL; RING_BIG at the
 * first passthrough op of a core, checked then (for every core, since any
 * core may open one).  Provided-buffer rings of sockets (net.c) are not
 * counted: they are created later, by the application, and are small.
 */
#include <errno.h>
#include <linux/capability.h>
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

uint64_t memlock_ring_bytes(const struct urt_rt_opts *o, enum ring_kind kind)
{
	uint64_t sq = pow2_at_least(o->sq_entries);
	uint64_t cq = o->cq_entries ? o->cq_entries : 4ull * o->req_max + 2ull * o->sq_entries + 64;
	bool big = kind == RING_BIG;

	cq = pow2_at_least(cq);
	return page_align(RINGS_HEADER + cq * (big ? 32 : 16) + sq * 4) + page_align(sq * (big ? 128 : 64));
}

unsigned memlock_start_kinds(const struct urt_rt_opts *o)
{
	unsigned kinds = 1u << RING_MAIN;

	if (o->mode == URT_POLL_IOPOLL || (o->mode == URT_POLL_HYBRID && probe_features()->hybrid_iopoll))
		kinds |= 1u << RING_POLL;
	return kinds;
}

uint64_t memlock_need(const struct urt_rt_opts *o, unsigned ncores, unsigned kinds, bool bufs)
{
	uint64_t per_core = 0;

	for (int k = 0; k < RING_KINDS; k++)
		if (kinds & (1u << k))
			per_core += memlock_ring_bytes(o, (enum ring_kind)k) +
				    (bufs ? page_align(o->buf_region_bytes) : 0);
	return per_core * ncores;
}

int memlock_check(const struct urt_rt_opts *o, unsigned ncores, unsigned kinds, bool bufs)
{
	static const char *const names[RING_KINDS] = { "main", "IOPOLL", "passthrough" };
	uint64_t need = memlock_need(o, ncores, kinds, bufs);
	char list[64] = "";
	unsigned nkinds = 0;
	struct rlimit rl;

	if (memlock_unlimited() || getrlimit(RLIMIT_MEMLOCK, &rl) || need <= rl.rlim_cur)
		return 0;
	for (int k = 0; k < RING_KINDS; k++) {
		if (!(kinds & (1u << k)))
			continue;
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", nkinds ? ", " : "", names[k]);
		nkinds++;
	}
	urt_set_error("RLIMIT_MEMLOCK is %llu KiB but the runtime pins %llu KiB: %u core%s x %u ring%s (%s), each "
		      "%llu KiB of ring memory%s%zu KiB buffer region: raise it (ulimit -l %llu, or LimitMEMLOCK= / "
		      "limits.conf memlock), lower buf_region_bytes or the cores%s",
		      (unsigned long long)rl.rlim_cur / 1024, (unsigned long long)need / 1024, ncores,
		      ncores == 1 ? "" : "s", nkinds, nkinds == 1 ? "" : "s", list,
		      (unsigned long long)(memlock_need(o, 1, kinds, false) / nkinds) / 1024,
		      bufs ? " plus a registration of the " : ", no ", bufs ? o->buf_region_bytes / 1024 : 0,
		      (unsigned long long)(need + 1023) / 1024, bufs ? ", or set buf_allow_unregistered" : "");
	return -ENOMEM;
}
