/*
 * Probe what the running kernel's io_uring accepts.  Each setup flag is
 * tried on a tiny ring of its own, the opcodes through
 * IORING_REGISTER_PROBE on one more.  The header we compile against
 * (liburing 2.3) is older than the kernel, so compile-time constants say
 * nothing about the machine we run on.
 *
 * Design notes
 * ------------
 * Answers.  A probe has an answer when the kernel made the ring (the flag
 * is supported) or refused it with EINVAL (it is not).  Any other error
 * says nothing about the kernel: ENOMEM is a low RLIMIT_MEMLOCK, or locked
 * memory of the user's other processes; EPERM and EACCES are a policy
 * (blocked, not unsupported); EMFILE is a full fd table.  Such a probe
 * stays unanswered: its feature reads as absent for now, and the next
 * probe_refresh (urt_rt_start, urt_kernel_probe, ring setup) tries again,
 * so a shortage at one moment does not stick for the process.  Callers
 * that refuse a mode ask probe_refused, which is true only for an answer.
 *
 * States of one probe: UNANSWERED -> YES or NO (final).  Answered probes
 * are never tried again, which bounds the probe rings a process makes.
 *
 * Snapshots.  Hot paths (file.c, per vectored op) read the features
 * without a lock, so a refresh never writes the struct they read: it fills
 * the next entry of snaps[] and publishes it with a release store.  A
 * refresh publishes only when it learnt something, and each probe is
 * answered at most once, so PROBES + 1 entries suffice.
 *
 * Locked memory.  Each probe ring the kernel makes is charged to the user's
 * RLIMIT_MEMLOCK count like any ring, and a closed ring is freed by the
 * kernel asynchronously (a workqueue), so for a while after a probe its
 * memory still counts.  probe_locked_bytes() is the charge of every probe
 * ring made so far and of those the next refresh will make (at most
 * PROBES + 1 rings of two pages); the memlock preflight adds it
 * (memlock.c), so that the limit it advises is enough right after a probe
 * too, and stays enough when the next start probes again.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "base/assert.h"
#include "runtime/compat.h"
#include "runtime/memlock.h"
#include "runtime/probe.h"

/* Entries of the probe rings: as small as the kernel takes. */
#define PROBE_ENTRIES 4
/* liburing's io_uring_get_probe used a ring of two entries; ours too. */
#define PROBE_OPCODE_ENTRIES 2

enum probe_state { UNANSWERED, YES, NO };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static enum probe_state state[PROBES];				/* Under lock. */
static struct urt_kernel_features snaps[PROBES + 1];		/* Published entries are immutable. */
static unsigned nsnaps;						/* Under lock. */
static _Atomic(const struct urt_kernel_features *) current;	/* The newest snapshot, or NULL. */
static _Atomic uint64_t locked_bytes;				/* Charge of the probe rings made. */
static int uring_err;
static pthread_once_t uring_once = PTHREAD_ONCE_INIT;

/* The setup flags of each flag probe. */
static const uint32_t probe_flags[PROBES] = {
	[PROBE_SINGLE_ISSUER] = IORING_SETUP_SINGLE_ISSUER,
	[PROBE_DEFER_TASKRUN] = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
	[PROBE_SQPOLL] = IORING_SETUP_SQPOLL,
	[PROBE_IOPOLL] = IORING_SETUP_IOPOLL,
	[PROBE_HYBRID_IOPOLL] = IORING_SETUP_IOPOLL | IORING_SETUP_HYBRID_IOPOLL,
	[PROBE_SQE128] = IORING_SETUP_SQE128 | IORING_SETUP_CQE32,
	[PROBE_OPCODES] = 0,
};

/* What a probe ring of entries (the CQ twice as long) with flags holds of RLIMIT_MEMLOCK. */
static uint64_t ring_charge(unsigned entries, uint32_t flags)
{
	return memlock_ring_charge(entries, 2 * entries, flags & IORING_SETUP_SQE128);
}

/* A ring the kernel made: count its charge (see the design notes). */
static void ring_made(unsigned entries, uint32_t flags)
{
	atomic_fetch_add(&locked_bytes, ring_charge(entries, flags));
}

/*
 * A plain ring with no flags: what every mode needs first.  Only the errors
 * that mean "not allowed or not there" count as unavailable; a transient
 * one (ENOMEM from a low RLIMIT_MEMLOCK) is left to the ring setup that
 * meets it, which names the limit, and must not stick for the process.
 */
static void uring_once_check(void)
{
	struct io_uring ring;
	int ret = io_uring_queue_init(2, &ring, 0);

	if (ret == 0) {
		ring_made(2, 0);
		io_uring_queue_exit(&ring);
	}
	uring_err = ret == -EPERM || ret == -EACCES || ret == -ENOSYS ? ret : 0;
}

int probe_uring_usable(void)
{
	pthread_once(&uring_once, uring_once_check);
	return uring_err;
}

uint64_t probe_locked_bytes(void)
{
	uint64_t bytes = atomic_load(&locked_bytes);

	/* A probe without an answer makes its ring at the next refresh: count it now, so advice made now holds then. */
	pthread_mutex_lock(&lock);
	for (int p = 0; p < PROBES; p++)
		if (state[p] == UNANSWERED)
			bytes += p == PROBE_OPCODES ? ring_charge(PROBE_OPCODE_ENTRIES, 0)
						    : ring_charge(PROBE_ENTRIES, probe_flags[p]);
	pthread_mutex_unlock(&lock);
	return bytes;
}

/* The answer of one flag probe, or UNANSWERED. */
static enum probe_state flags_try(uint32_t flags)
{
	struct io_uring_params p;
	struct io_uring ring;
	int ret;

	memset(&p, 0, sizeof(p));
	p.flags = flags;
	if (flags & IORING_SETUP_SQPOLL)
		p.sq_thread_idle = 1;
	ret = io_uring_queue_init_params(PROBE_ENTRIES, &ring, &p);
	if (ret == 0) {
		ring_made(PROBE_ENTRIES, flags);
		io_uring_queue_exit(&ring);
		return YES;
	}
	return ret == -EINVAL ? NO : UNANSWERED;
}

/* The opcode probe: fills f's opcode fields when it has an answer. */
static enum probe_state opcodes_try(struct urt_kernel_features *f)
{
	struct io_uring_probe *pr;
	struct io_uring ring;

	if (io_uring_queue_init(PROBE_OPCODE_ENTRIES, &ring, 0))
		return UNANSWERED;
	ring_made(PROBE_OPCODE_ENTRIES, 0);
	pr = io_uring_get_probe_ring(&ring);
	io_uring_queue_exit(&ring);
	if (!pr)
		return UNANSWERED;
	f->msg_ring = io_uring_opcode_supported(pr, IORING_OP_MSG_RING);
	f->uring_cmd = io_uring_opcode_supported(pr, IORING_OP_URING_CMD);
	f->link_timeout = io_uring_opcode_supported(pr, IORING_OP_LINK_TIMEOUT);
	f->rw_vec_fixed = io_uring_opcode_supported(pr, URT_IORING_OP_READV_FIXED) &&
			  io_uring_opcode_supported(pr, URT_IORING_OP_WRITEV_FIXED);
	io_uring_free_probe(pr);
	return YES;
}

static bool *flag_field(struct urt_kernel_features *f, enum probe_flag p)
{
	switch (p) {
	case PROBE_SINGLE_ISSUER: return &f->single_issuer;
	case PROBE_DEFER_TASKRUN: return &f->defer_taskrun;
	case PROBE_SQPOLL: return &f->sqpoll;
	case PROBE_IOPOLL: return &f->iopoll;
	case PROBE_HYBRID_IOPOLL: return &f->hybrid_iopoll;
	case PROBE_SQE128: return &f->sqe128;
	default: URT_ASSERT(!"not a flag probe"); return NULL;
	}
}

const struct urt_kernel_features *probe_refresh(void)
{
	const struct urt_kernel_features *cur;
	struct urt_kernel_features next;
	bool learnt = false;

	pthread_mutex_lock(&lock);
	cur = atomic_load_explicit(&current, memory_order_relaxed);
	if (cur)
		next = *cur;
	else
		memset(&next, 0, sizeof(next));
	/* Blocked (sysctl, seccomp): every flag would read as refused, which says nothing; that answer is final. */
	next.io_uring = probe_uring_usable() == 0;
	for (int p = 0; p < PROBES && next.io_uring; p++) {
		enum probe_state s;

		if (state[p] != UNANSWERED)
			continue;
		s = p == PROBE_OPCODES ? opcodes_try(&next) : flags_try(probe_flags[p]);
		if (s == UNANSWERED)
			continue;
		state[p] = s;
		if (p != PROBE_OPCODES)
			*flag_field(&next, (enum probe_flag)p) = s == YES;
		learnt = true;
	}
	if (!cur || learnt) {
		URT_ASSERT(nsnaps < PROBES + 1);
		snaps[nsnaps] = next;
		cur = &snaps[nsnaps++];
		atomic_store_explicit(&current, cur, memory_order_release);
	}
	pthread_mutex_unlock(&lock);
	return cur;
}

const struct urt_kernel_features *probe_features(void)
{
	const struct urt_kernel_features *f = atomic_load_explicit(&current, memory_order_acquire);

	return f ? f : probe_refresh();
}

bool probe_refused(enum probe_flag p)
{
	bool no;

	URT_ASSERT(p >= 0 && p < PROBES);
	pthread_mutex_lock(&lock);
	no = state[p] == NO;
	pthread_mutex_unlock(&lock);
	return no;
}

bool probe_answered(enum probe_flag p)
{
	bool answered;

	URT_ASSERT(p >= 0 && p < PROBES);
	pthread_mutex_lock(&lock);
	answered = state[p] != UNANSWERED;
	pthread_mutex_unlock(&lock);
	return answered;
}

URT_API int urt_kernel_probe(struct urt_kernel_features *out)
{
	*out = *probe_refresh();
	return 0;
}

URT_API int urt_io_uring_check(char *why, size_t len)
{
	int err = probe_uring_usable();

	if (err && why && len)
		uring_blocked_explain(err, why, len);
	else if (why && len)
		why[0] = '\0';
	return err;
}
