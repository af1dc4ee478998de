/*
 * The rings of one core: setup with flag fallback, submission, waiting in
 * each poll mode, and batched reaping.
 *
 * Design notes
 * ------------
 * A core has up to three rings:
 *   RING_MAIN  always; wakeups, timers, fsync, and data ops of devices
 *              that cannot be polled.  The only ring a core sleeps on.
 *   RING_POLL  IORING_SETUP_IOPOLL (+HYBRID_IOPOLL), for poll-capable
 *              devices in IOPOLL or HYBRID mode.  IOPOLL rings cannot carry
 *              timers, sockets or non-polled files, hence the main ring.
 *   RING_BIG   SQE128|CQE32 for NVMe passthrough, created at first use.
 *              When not polled it signals an eventfd that the main ring
 *              reads, so sleeping on the main ring also waits for it.
 *
 * Sleeping on the big ring (interrupt mode, c->big_sleep): a reactor
 * whose only I/O is passthrough would pay two enters per wait (submit on
 * the big ring, sleep on the main one) and an eventfd round trip per
 * completion.  So the big ring gets the main ring's wake sources instead:
 * the main ring has an eventfd registered too, and while the core sleeps
 * on the big ring a read of it is armed there (UD_RING_EFD + RING_MAIN).
 * Timers, MSG_RING posts and the outside wake eventfd all end as a CQE or
 * deferred task work on the main ring, and the kernel signals the main
 * ring's eventfd for both, so any of them wakes the big ring's sleep.
 * Only one direction is live at a time, or each eventfd would wake the
 * other's read forever; IORING_CQ_EVENTFD_DISABLED switches them:
 *
 *   sleeping on   main ring's eventfd   big ring's eventfd
 *   RING_BIG      on                    off   (ring_wait_big)
 *   RING_MAIN     off                   on    (ring_wait, big ops in flight)
 *   awake         off                   off
 *
 * Switching one on and then looking for work closes the race with the
 * kernel (ring_wait_big has the barrier).  One enter per wait then
 * submits the passthrough commands and sleeps, as on the block path.
 *
 * Setup flags: we ask for SINGLE_ISSUER|DEFER_TASKRUN|COOP_TASKRUN|
 * TASKRUN_FLAG|SUBMIT_ALL and, when the kernel answers EINVAL, drop one
 * optional flag at a time (DEFER_TASKRUN first: it is refused with SQPOLL)
 * and retry.  The flags that define the mode (SQPOLL, IOPOLL, SQE128) are
 * never dropped; a kernel without them gets a clear error.
 *
 * Waiting (ring_wait), with "idle" meaning nothing runnable on the core:
 *   not idle     submit queued SQEs and collect finished task work,
 *                without sleeping (one enter per ring with work).
 *   INTERRUPT    submit and sleep in io_uring_enter until >= 1 CQE.
 *   SQPOLL       same, but submission needs no syscall unless the SQ
 *                thread sleeps (NEED_WAKEUP); liburing honours the flag.
 *   HYBRID       spin on the CQ for a budget derived from the observed
 *                completion latency (target ewma * 5/4, reached by at most
 *                doubling per spin), running task work when the kernel
 *                flags it; a miss at the target halves the budget, and
 *                every miss sleeps.  If the latency exceeds
 *                hybrid_spin_max_ns, do not spin (stats.spin_skipped).
 *   IOPOLL       while polled ops are in flight, poll (enter GETEVENTS)
 *                and never sleep; otherwise sleep on the main ring.
 *   big_sleep    INTERRUPT with passthrough ops in flight: submit and
 *                sleep on the big ring (ring_wait_big), see above.
 *   poll-wait    (under valgrind, or URT_WAIT=poll; wait_poll.h) submit
 *                without sleeping, then sleep in poll(2) on the main
 *                ring's fd for at most 1 ms (ring_wait_poll).
 *   plain        (c->wait_plain: the main ring alone, INTERRUPT, no
 *                SQPOLL; kept by ring_setup and ring_teardown) INTERRUPT
 *                reduced to its two outcomes, inline in the loop (ring.h
 *                ring_wait): flush the SQ and make one io_uring_enter
 *                (GETEVENTS; min_complete 1 after the sleep handshake when
 *                idle with ops in flight), without liburing's submit
 *                wrapper or ring_submit's mode tests; everything else goes
 *                to ring_wait_general.  stats.waits_inline and
 *                waits_general count the waits of each path, so a core
 *                that silently lost the plain path shows it
 *                (tests/runtime/test_wait_path.c, test_sqpoll.c).
 *
 * Reaping (ring_reap_ring in ring.h, inline in the loop for the main
 * ring): copy the published CQEs into a local batch (one memcpy per
 * contiguous run of the CQ, one move for a single CQE) and release them
 * with one store of the head; then answer them in order.  A bare op's CQE
 * is counted and leaves the ring's in-flight count once per batch
 * (callbacks only add to it meanwhile, so the count is exact again at the
 * end of the batch, where more bare CQEs than it held aborts); every other
 * CQE (requests, wakeups, eventfd reads) goes out of line to
 * ring_cqe_other.
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/sanitize.h"
#include "runtime/core.h"
#include "runtime/memlock.h"
#include "runtime/probe.h"
#include "runtime/wait_poll.h"

static const uint32_t optional_flags[] = {
	IORING_SETUP_DEFER_TASKRUN,
	IORING_SETUP_TASKRUN_FLAG,
	IORING_SETUP_COOP_TASKRUN,
	IORING_SETUP_SINGLE_ISSUER,
	IORING_SETUP_SUBMIT_ALL,
};

static uint32_t ring_wanted_flags(struct urt_core *c, enum ring_kind kind)
{
	const struct urt_rt_opts *o = &c->rt->opts;
	uint32_t f = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP |
		     IORING_SETUP_SINGLE_ISSUER;

	switch (kind) {
	case RING_MAIN:
		/*
		 * The kernel refuses the task-run flags with SQPOLL (the SQ
		 * thread, not this one, runs the task work: EINVAL for each of
		 * DEFER_TASKRUN, COOP_TASKRUN and TASKRUN_FLAG), so an SQPOLL
		 * ring does not ask for them.  Each refused attempt could
		 * leave an SQ thread that exits on its own time.
		 */
		if (o->mode == URT_POLL_SQPOLL)
			f |= IORING_SETUP_SQPOLL;
		else
			f |= IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
		break;
	case RING_POLL:
		f |= IORING_SETUP_IOPOLL | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
		if (o->mode == URT_POLL_HYBRID || o->kernel_hybrid_iopoll)
			f |= IORING_SETUP_HYBRID_IOPOLL;
		break;
	case RING_BIG:
		/*
		 * No task-run deferral: completions must post CQEs (and signal
		 * the eventfd) while the core sleeps on the main ring.
		 */
		f |= IORING_SETUP_SQE128 | IORING_SETUP_CQE32;
		if (o->mode == URT_POLL_IOPOLL)
			f |= IORING_SETUP_IOPOLL;
		break;
	default:
		break;
	}
	return f;
}

static int ring_init_fallback(struct urt_core *c, enum ring_kind kind, struct io_uring *ring,
			      uint32_t flags)
{
	const struct urt_rt_opts *o = &c->rt->opts;
	struct io_uring_params p;
	unsigned cq = o->cq_entries;
	size_t next = 0;
	int ret;

	/* Every request can hold an op, a timer and a cancel CQE, plus wakeups. */
	if (!cq)
		cq = 4 * o->req_max + 2 * o->sq_entries + 64;
	for (;;) {
		memset(&p, 0, sizeof(p));
		p.flags = flags;
		p.cq_entries = cq;
		if (flags & IORING_SETUP_SQPOLL) {
			p.sq_thread_idle = o->sq_thread_idle_ms;
			if (o->sq_thread_cpu >= 0 || o->sq_thread_cpu == -1) {
				long n = sysconf(_SC_NPROCESSORS_ONLN);

				p.flags |= IORING_SETUP_SQ_AFF;
				p.sq_thread_cpu = o->sq_thread_cpu >= 0 ? (unsigned)o->sq_thread_cpu
									: (unsigned)((c->cpu + 1) % (n > 0 ? n : 1));
			}
			if (o->sq_thread_shared && c->rt->sq_wq_fd >= 0) {
				p.flags |= IORING_SETUP_ATTACH_WQ;
				p.wq_fd = (unsigned)c->rt->sq_wq_fd;
			}
		}
		ret = io_uring_queue_init_params(o->sq_entries, ring, &p);
		if (ret != -EINVAL)
			break;
		/* Drop the next optional flag that is still set. */
		while (next < sizeof(optional_flags) / sizeof(optional_flags[0]) &&
		       !(flags & optional_flags[next]))
			next++;
		if (next == sizeof(optional_flags) / sizeof(optional_flags[0]))
			break;
		flags &= ~optional_flags[next];
		/* TASKRUN_FLAG is only valid with COOP_TASKRUN or DEFER_TASKRUN. */
		if (!(flags & (IORING_SETUP_COOP_TASKRUN | IORING_SETUP_DEFER_TASKRUN)))
			flags &= ~IORING_SETUP_TASKRUN_FLAG;
	}
	if (ret == 0 && kind == RING_MAIN)
		c->stats.ring_flags = p.flags;
	if (ret == 0 && kind == RING_POLL)
		c->stats.poll_ring_flags = p.flags;
	if (ret == 0)
		c->rings[kind].flags = p.flags;
	return ret;
}

/*
 * Whether this core may sleep on its big ring (design notes): interrupt
 * mode, sleeping in io_uring_enter (not poll(2)), and a main ring whose
 * pending task work shows in IORING_SQ_TASKRUN when it is deferred, so
 * that ring_wait_big can see work that came before its eventfd was on.
 */
static bool ring_big_sleep_wanted(const struct urt_core *c)
{
	uint32_t f = c->rings[RING_MAIN].flags;

	return c->rt->opts.mode == URT_POLL_INTERRUPT && !c->wait_poll && !(f & IORING_SETUP_SQPOLL) &&
	       (!(f & IORING_SETUP_DEFER_TASKRUN) || (f & IORING_SETUP_TASKRUN_FLAG));
}

/*
 * The main ring's eventfd, for sleeping on the big ring; both eventfds
 * start off (awake).  Called once, when the big ring is set up.
 */
static int ring_big_sleep_setup(struct urt_core *c)
{
	struct urt_ring *main = &c->rings[RING_MAIN];
	int efd, ret;

	URT_ASSERT(main->ready && main->efd < 0);
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd < 0) {
		ret = -errno;
		urt_set_error("eventfd for the main ring: %s", strerror(-ret));
		return ret;
	}
	ret = io_uring_register_eventfd(&main->ring, efd);
	if (ret) {
		urt_set_error("registering the main ring's eventfd: %s", strerror(-ret));
		close(efd);
		return ret;
	}
	main->efd = efd;
	main->efd_armed = false;
	io_uring_cq_eventfd_toggle(&main->ring, false);
	io_uring_cq_eventfd_toggle(&c->rings[RING_BIG].ring, false);
	c->big_sleep = true;
	return 0;
}

/*
 * Whether ring_wait may take its plain path: the main ring alone, in
 * interrupt mode, without SQPOLL.  Kept by ring_setup and ring_teardown.
 */
static void ring_wait_plain_update(struct urt_core *c)
{
	const struct urt_ring *main = &c->rings[RING_MAIN];

	c->wait_plain = main->ready && !c->rings_extra && c->rt->opts.mode == URT_POLL_INTERRUPT &&
			!(main->flags & IORING_SETUP_SQPOLL);
}

int ring_setup(struct urt_core *c, enum ring_kind kind)
{
	struct urt_ring *r = &c->rings[kind];
	uint32_t flags = ring_wanted_flags(c, kind);
	unsigned kinds;
	int ret;

	ret = probe_uring_usable();
	if (ret) {
		uring_blocked_set_error(ret);
		return ret;
	}
	/*
	 * Only the kernel's answer refuses a mode here: a probe that met
	 * ENOMEM or EPERM has none (probe.c), and the setup below meets the
	 * same error and names its cause.  No new probe here: urt_rt_start
	 * probed before its memlock count, and a probe ring made now would
	 * count against the limit uncounted.
	 */
	if ((flags & IORING_SETUP_SQPOLL) && probe_refused(PROBE_SQPOLL)) {
		urt_set_error("this kernel refuses IORING_SETUP_SQPOLL; use the interrupt mode");
		return -EOPNOTSUPP;
	}
	if ((flags & IORING_SETUP_IOPOLL) && probe_refused(PROBE_IOPOLL)) {
		urt_set_error("this kernel refuses IORING_SETUP_IOPOLL");
		return -EOPNOTSUPP;
	}
	if ((flags & IORING_SETUP_HYBRID_IOPOLL) && probe_refused(PROBE_HYBRID_IOPOLL)) {
		urt_set_error("this kernel lacks IORING_SETUP_HYBRID_IOPOLL (Linux 6.13+)%s",
			      c->rt->opts.mode == URT_POLL_HYBRID ? "; hybrid mode spins in user space only" : "");
		return -EOPNOTSUPP;
	}
	if ((flags & IORING_SETUP_SQE128) && probe_refused(PROBE_SQE128)) {
		urt_set_error("this kernel lacks IORING_SETUP_SQE128 (Linux 5.19+), needed for NVMe passthrough");
		return -EOPNOTSUPP;
	}
	/*
	 * urt_rt_start counted the rings every core opens at start; a
	 * passthrough ring opens at first use: count it, for every core,
	 * before it is made.
	 */
	kinds = memlock_start_kinds(&c->rt->opts) | (kind == RING_BIG ? 1u << RING_BIG : 0u);
	if (kind == RING_BIG) {
		ret = memlock_check(&c->rt->opts, c->rt->ncores, kinds, !c->rt->opts.buf_allow_unregistered);
		if (ret)
			return ret;
	}
	ret = ring_init_fallback(c, kind, &r->ring, flags);
	if (ret == -ENOMEM && !memlock_unlimited()) {
		/* Our count fits the limit, so other locked memory of this user takes the rest: say how much to add. */
		memlock_refused(&c->rt->opts, c->rt->ncores, kinds, !c->rt->opts.buf_allow_unregistered,
				"io_uring_setup", ret);
		return ret;
	}
	if (ret == -EPERM || ret == -EACCES || ret == -ENOSYS) {
		/* Blocked since the probe (the sysctl changed): the same words as urt_rt_start's check. */
		uring_blocked_set_error(ret);
		return ret;
	}
	if (ret) {
		urt_set_error("io_uring_queue_init(flags 0x%x) failed: %s", flags, strerror(-ret));
		return ret;
	}
	r->ready = true;
	r->polled = flags & IORING_SETUP_IOPOLL;
	r->efd = -1;
	if (kind == RING_MAIN && (flags & IORING_SETUP_SQPOLL) && c->rt->opts.sq_thread_shared &&
	    c->rt->sq_wq_fd < 0)
		c->rt->sq_wq_fd = dup(r->ring.ring_fd);
	ret = io_uring_register_files_sparse(&r->ring, c->rt->opts.files_max);
	if (ret) {
		urt_set_error("registering %u file slots failed: %s", c->rt->opts.files_max, strerror(-ret));
		goto err_exit;
	}
	ret = dev_registry_ring_init(c, &r->ring);
	if (ret)
		goto err_exit;
	ret = buf_register(c, &r->ring);
	if (ret)
		goto err_exit;
	if (kind == RING_BIG && !r->polled) {
		r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (r->efd < 0) {
			ret = -errno;
			goto err_exit;
		}
		ret = io_uring_register_eventfd(&r->ring, r->efd);
		if (ret)
			goto err_exit;
	}
	if (kind == RING_BIG && !r->polled && ring_big_sleep_wanted(c)) {
		ret = ring_big_sleep_setup(c);
		if (ret)
			goto err_exit;
	}
	/*
	 * Register the ring's fd with this thread (Linux 5.18+), so that each
	 * io_uring_enter skips the fd table lookup.  The registration belongs
	 * to the calling thread, which is fine: only the reactor thread enters
	 * its rings (other cores reach it by MSG_RING on the plain fd).  A
	 * kernel without it keeps the plain fd.
	 */
	r->fd_registered = io_uring_register_ring_fd(&r->ring) == 1;
	/* liburing points enter_ring_fd at the registered index when that worked. */
	r->enter_flags = IORING_ENTER_GETEVENTS | (r->fd_registered ? IORING_ENTER_REGISTERED_RING : 0);
	if (kind != RING_MAIN)
		c->rings_extra = true;
	ring_wait_plain_update(c);
	return 0;

err_exit:
	if (r->efd >= 0)
		close(r->efd);
	r->efd = -1;
	io_uring_queue_exit(&r->ring);
	r->ready = false;
	return ret;
}

void ring_teardown(struct urt_core *c, enum ring_kind kind)
{
	struct urt_ring *r = &c->rings[kind];

	if (!r->ready)
		return;
	if (r->fd_registered)
		io_uring_unregister_ring_fd(&r->ring);
	r->fd_registered = false;
	io_uring_queue_exit(&r->ring);
	if (r->efd >= 0)
		close(r->efd);
	r->efd = -1;
	r->ready = false;
	c->rings_extra = c->rings[RING_POLL].ready || c->rings[RING_BIG].ready;
	ring_wait_plain_update(c);
}

/*
 * Keep a read of the wake eventfd (RING_MAIN) or of a secondary ring's
 * eventfd armed on the main ring.  Called at setup and after each CQE.
 */
void ring_arm_efd(struct urt_core *c, enum ring_kind kind)
{
	struct urt_ring *main = &c->rings[RING_MAIN];
	struct io_uring_sqe *sqe;

	if (c->stopping)
		return;
	if (kind == RING_MAIN) {
		if (c->wake_efd < 0)
			return;
		sqe = ring_sqe(c, RING_MAIN);
		io_uring_prep_read(sqe, c->wake_efd, &c->wake_efd_val, sizeof(c->wake_efd_val), 0);
		io_uring_sqe_set_data64(sqe, UD_WAKE_EFD);
	} else {
		struct urt_ring *r = &c->rings[kind];

		if (r->efd < 0 || r->efd_armed)
			return;
		sqe = ring_sqe(c, RING_MAIN);
		io_uring_prep_read(sqe, r->efd, &r->efd_val, sizeof(r->efd_val), 0);
		io_uring_sqe_set_data64(sqe, UD_RING_EFD + (uint64_t)kind);
		r->efd_armed = true;
	}
	main->inflight++;
}

/*
 * An SQE on ring kind.  When the SQ is full, submit what is queued and try
 * again; the SQ is sized so that this stays rare.  Never NULL: a ring that
 * still has no room after submitting means the kernel stopped consuming,
 * which only SQPOLL can do briefly, so we wait for the SQ thread.
 */
struct io_uring_sqe *ring_sqe(struct urt_core *c, enum ring_kind kind)
{
	struct urt_ring *r = &c->rings[kind];
	struct io_uring_sqe *sqe;

	while (!(sqe = io_uring_get_sqe(&r->ring))) {
		int ret = ring_submit(c, kind, false);

		if (ret < 0 && ret != -EAGAIN && ret != -EBUSY && ret != -EINTR)
			abort();	/* The ring itself is broken: nothing can recover. */
		if (r->ring.flags & IORING_SETUP_SQPOLL)
			io_uring_sqring_wait(&r->ring);
	}
	r->queued++;
	return sqe;
}

/*
 * The poll-wait mode (wait_poll.h): submit without sleeping, then, if no
 * CQE is there yet, sleep in poll(2) on the ring's fd for at most
 * WAIT_POLL_MS.  The caller's reap collects what arrived (and runs the
 * deferred task work the TASKRUN flag announces).  Returns what the submit
 * returned.
 */
static int ring_wait_poll(struct urt_ring *r)
{
	struct pollfd pfd = { .fd = r->ring.ring_fd, .events = POLLIN };
	int ret = io_uring_submit_and_get_events(&r->ring);

	if (ret >= 0 && !io_uring_cq_ready(&r->ring) &&
	    !(IO_URING_READ_ONCE(*r->ring.sq.kflags) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)))
		(void)poll(&pfd, 1, WAIT_POLL_MS);	/* A timeout or EINTR only means: look again. */
	return ret;
}

static bool ring_sqpoll_needs_wakeup(const struct urt_ring *r)
{
	return IO_URING_READ_ONCE(*r->ring.sq.kflags) & IORING_SQ_NEED_WAKEUP;
}

/*
 * Submit what is queued on ring kind; with wait, also sleep until one CQE.
 * Handles io_uring_enter's EAGAIN/EBUSY (the kernel is short of resources or
 * the CQ is backed up) by reaping before trying again, and never waits with
 * nothing in flight.
 */
/*
 * Whether an enter without SQEs and without waiting would bring nothing
 * from r.  With TASKRUN_FLAG the kernel raises IORING_SQ_TASKRUN whenever
 * completions of r wait for this thread's task work (deferred or not), and
 * IORING_SQ_CQ_OVERFLOW when CQEs wait for room; with neither raised, and
 * r neither polled (IOPOLL completions are found only by entering) nor
 * driven by an SQ thread, the enter would only cost a syscall.  An IOPOLL
 * core polls in every loop iteration and used to enter its main ring each
 * time too: two enters per poll, half of them for nothing.  A flag raised
 * just after this check is seen by the next reap (ring_peek_batch) or by
 * the next wait, which enters anyway.
 */
static bool ring_nothing_to_get(const struct urt_ring *r)
{
	if (r->polled || !(r->ring.flags & IORING_SETUP_TASKRUN_FLAG) || (r->ring.flags & IORING_SETUP_SQPOLL))
		return false;
	return !(IO_URING_READ_ONCE(*r->ring.sq.kflags) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW));
}

int ring_submit(struct urt_core *c, enum ring_kind kind, bool wait)
{
	struct urt_ring *r = &c->rings[kind];
	bool sqpoll = r->ring.flags & IORING_SETUP_SQPOLL;
	bool entered;
	int ret;

	/*
	 * Under SQPOLL `queued` is what the SQ thread had not yet taken at the
	 * last submit; it has taken more since.  Stale, it kept a stopping
	 * core from ever being quiescent, and sent it to sleep with nothing
	 * in flight (test_sqpoll hung one run in 30).
	 */
	if (sqpoll)
		r->queued = io_uring_sq_ready(&r->ring);
	/* Only a CQE ends the wait, and only ops in flight make CQEs. */
	if (wait && r->inflight == 0)
		wait = false;
	if (!wait && r->queued == 0 && r->inflight == 0)
		return 0;
	if (!wait && r->queued == 0 && ring_nothing_to_get(r))
		return 0;
	if (wait)
		entered = true;
	else if (sqpoll)
		entered = ring_sqpoll_needs_wakeup(r);
	else
		entered = true;
	if (wait && c->wait_poll)
		ret = ring_wait_poll(r);
	else if (wait)
		ret = io_uring_submit_and_wait(&r->ring, 1);
	else if (sqpoll)
		ret = io_uring_submit(&r->ring);
	else
		ret = io_uring_submit_and_get_events(&r->ring);
	if (entered)
		c->stats.enters++;
	if (ret >= 0) {
		c->stats.sqes_submitted += (unsigned)ret;
		/* Under SQPOLL the SQ thread may not have consumed everything yet. */
		r->queued = io_uring_sq_ready(&r->ring);
		return ret;
	}
	/*
	 * EAGAIN/EBUSY: the kernel is short of resources or the CQ is backed
	 * up; the caller's loop reaps before submitting again.  EINTR: a
	 * signal; just loop.
	 */
	return ret;
}


static void cpu_relax(void)
{
	__builtin_ia32_pause();
}

/* HYBRID: spin for a completion.  Returns true when one is there (a hit, or one found late). */
static bool ring_spin(struct urt_core *c)
{
	struct urt_ring *r = &c->rings[RING_MAIN];
	const uint64_t max = c->rt->opts.hybrid_spin_max_ns;
	uint64_t target, budget, t0, t;

	if (c->lat_ewma_ns > max) {
		c->stats.spin_skipped++;
		return false;	/* Slow device: spinning would only burn the core. */
	}
	/* What the observed latency asks for; the budget grows to it by doubling. */
	target = c->lat_ewma_ns + c->lat_ewma_ns / 4 + 1000;
	if (target > max)
		target = max;
	budget = target;
	if (budget > c->spin_budget_ns * 2)
		budget = c->spin_budget_ns * 2;
	if (r->queued)
		ring_submit(c, RING_MAIN, false);
	t0 = urt_clock_ns();
	for (;;) {
		if (io_uring_cq_ready(&r->ring)) {
			/*
			 * Found after the window: the spinning thread was
			 * preempted and the completion came late.  It needs no
			 * sleep, but for the stats and the budget it is a miss.
			 */
			if (urt_clock_ns() - t0 > budget + budget / 2)
				break;
			c->stats.spin_hits++;
			c->spin_budget_ns = budget;
			return true;
		}
		if (IO_URING_READ_ONCE(*r->ring.sq.kflags) & IORING_SQ_TASKRUN) {
			io_uring_get_events(&r->ring);
			c->stats.enters++;
			continue;
		}
		t = urt_clock_ns();
		if (t - t0 >= budget)
			break;
		for (int i = 0; i < 32; i++)
			cpu_relax();
	}
	c->stats.spin_misses++;
	/*
	 * A miss below the target only means the budget has not grown to it
	 * yet: keep it, so the next spin may double.  A miss at the target is
	 * an outlier of the latency: halve, so a noisy device costs less.
	 * (Halving in both cases kept the budget at most what had just
	 * missed, so it never reached a latency above it: every spin missed.)
	 */
	if (budget < target)
		c->spin_budget_ns = budget;
	else
		c->spin_budget_ns = budget / 2 > 1000 ? budget / 2 : 1000;
	return io_uring_cq_ready(&r->ring) != 0;
}

/*
 * Whether the core should sleep on its big ring: big_sleep, and
 * passthrough ops queued or in flight there (the read of the main ring's
 * eventfd is not one).  While stopping, only when the main ring waits for
 * nothing: the stop's cancel took that read, and it is not armed again.
 */
static bool ring_big_sleeps(const struct urt_core *c)
{
	const struct urt_ring *main = &c->rings[RING_MAIN];
	const struct urt_ring *big = &c->rings[RING_BIG];

	if (!c->big_sleep || big->queued + big->inflight <= (main->efd_armed ? 1u : 0u))
		return false;
	return !c->stopping || (main->inflight == 0 && main->queued == 0);
}

/*
 * Submit the big ring's SQEs and sleep on it until a CQE (design notes).
 * The main ring's SQEs go first, without waiting: the one case with two
 * enters.  Before sleeping, the main ring's eventfd is switched on and a
 * read of it armed on the big ring; then the main ring is checked for
 * anything that came while the eventfd was off.
 */
static void ring_wait_big(struct urt_core *c)
{
	struct urt_ring *main = &c->rings[RING_MAIN];
	struct urt_ring *big = &c->rings[RING_BIG];
	bool work;

	if (main->queued)
		ring_submit(c, RING_MAIN, false);
	if (!main->efd_armed && !c->stopping) {
		struct io_uring_sqe *sqe = ring_sqe(c, RING_BIG);

		io_uring_prep_read(sqe, main->efd, &main->efd_val, sizeof(main->efd_val), 0);
		io_uring_sqe_set_data64(sqe, UD_RING_EFD + (uint64_t)RING_MAIN);
		main->efd_armed = true;
		big->inflight++;
	}
	io_uring_cq_eventfd_toggle(&main->ring, true);
	/*
	 * Full barrier between our store of the eventfd flag and our loads
	 * of the main ring's CQ tail and SQ flags.  The kernel adding task
	 * work sets IORING_SQ_TASKRUN (a locked op) and then reads the flag:
	 * either it sees the eventfd on and signals it, or we see its work.
	 */
	urt_full_barrier();
	work = io_uring_cq_ready(&main->ring) ||
	       (IO_URING_READ_ONCE(*main->ring.sq.kflags) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) ||
	       atomic_load_explicit(&c->doorbell, memory_order_acquire);
	ring_submit(c, RING_BIG, !work);
	io_uring_cq_eventfd_toggle(&main->ring, false);
}

/*
 * The poll-wait mode's sleep after ring_enter_plain (wait_poll.h): in
 * poll(2) on the ring's fd, at most WAIT_POLL_MS, unless a CQE or task
 * work is already there.
 */
void ring_wait_poll_sleep(struct urt_ring *r)
{
	struct pollfd pfd = { .fd = r->ring.ring_fd, .events = POLLIN };

	if (!io_uring_cq_ready(&r->ring) &&
	    !(IO_URING_READ_ONCE(*r->ring.sq.kflags) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)))
		(void)poll(&pfd, 1, WAIT_POLL_MS);	/* A timeout or EINTR only means: look again. */
}

/* ring_wait for every other case: secondary rings, SQPOLL, HYBRID, sleeping on the big ring. */
void ring_wait_general(struct urt_core *c, bool idle)
{
	bool on_big = idle && ring_big_sleeps(c);
	struct urt_ring *big = &c->rings[RING_BIG];
	bool polling = false;

	c->stats.waits_general++;
	/* The secondary rings, when the core has one: submit, and see whether one must be polled. */
	if (urt_unlikely(c->rings_extra)) {
		for (int k = RING_POLL; k < RING_KINDS; k++) {
			struct urt_ring *r = &c->rings[k];

			/*
			 * A ring that is not polled needs an enter only to submit: its
			 * completions post their CQEs as task work of this thread,
			 * which runs on any return to user space.
			 */
			if (!r->ready || (!r->queued && !(r->polled && r->inflight)))
				continue;
			if (k == RING_BIG && on_big)
				continue;	/* ring_wait_big submits it. */
			if (r->polled && r->inflight)
				polling = true;
			ring_submit(c, k, false);
		}
	}
	if (!idle || polling) {
		ring_submit(c, RING_MAIN, false);
		return;
	}
	/*
	 * Cross-core handshake (xcore/msg.c) before any sleep, on either
	 * ring: maybe spin for a post, then announce the sleep, so a poster
	 * knows to send the wakeup.
	 */
	if (on_big) {
		if (!msg_sleep_begin(c)) {
			ring_submit(c, RING_BIG, false);
			ring_submit(c, RING_MAIN, false);
			return;
		}
		ring_wait_big(c);
		msg_sleep_end(c);
		return;
	}
	if (c->rt->opts.mode == URT_POLL_HYBRID && c->rings[RING_MAIN].inflight > 1 && ring_spin(c))
		return;
	if (!msg_sleep_begin(c)) {
		ring_submit(c, RING_MAIN, false);
		return;
	}
	if (c->big_sleep && big->inflight) {
		/*
		 * Sleeping on the main ring with passthrough ops in flight
		 * (stopping): their CQEs must signal the big ring's eventfd.
		 * They are posted by this thread's task work, so a plain
		 * check after switching it on sees any that came before.
		 */
		io_uring_cq_eventfd_toggle(&big->ring, true);
		ring_submit(c, RING_MAIN, !io_uring_cq_ready(&big->ring));
		io_uring_cq_eventfd_toggle(&big->ring, false);
		msg_sleep_end(c);
		return;
	}
	ring_submit(c, RING_MAIN, true);
	msg_sleep_end(c);
}


/*
 * memcpy of a run of CQEs into the reap batch, out of line: inlined, the
 * compiler makes a variable-length copy a `rep movsq`, whose start-up
 * costs more than the library's vector copy at these sizes.
 */
__attribute__((noinline)) void ring_cqe_copy(void *dst, const void *src, size_t bytes)
{
	memcpy(dst, src, bytes);
}

/*
 * A CQE that is not a bare op's: a request's, or the runtime's own
 * (wakeups, eventfd reads).  Out of line, so that the reap loop of the
 * common case stays small.
 */
__attribute__((noinline)) void ring_cqe_other(struct urt_core *c, struct urt_ring *r,
						     const struct io_uring_cqe *cqe)
{
	uint64_t ud = cqe->user_data;

	/* A multishot result with MORE is not the op's last CQE. */
	if (ud != UD_WAKE_MSG && !(cqe->flags & IORING_CQE_F_MORE)) {
		if (urt_unlikely(r->inflight == 0))
			abort();	/* Accounting bug: a CQE we never asked for. */
		r->inflight--;
	}
	if (ud >= UD_SPECIAL_MAX) {
		req_complete_cqe(c, ud, cqe->res, cqe);
		return;
	}
	if (ud == UD_WAKE_EFD) {
		ring_arm_efd(c, RING_MAIN);
	} else if (ud >= UD_RING_EFD && ud < UD_RING_EFD + RING_KINDS) {
		c->rings[ud - UD_RING_EFD].efd_armed = false;
		/* The main ring's is armed again when the core next sleeps on the big ring. */
		if (ud != UD_RING_EFD + RING_MAIN)
			ring_arm_efd(c, (enum ring_kind)(ud - UD_RING_EFD));
	}
	/* UD_WAKE_MSG and UD_IGNORE need nothing: the loop drains posts. */
}

static __attribute__((noinline)) unsigned ring_reap_big(struct urt_core *c, struct urt_ring *r)
{
	return ring_reap_ring(c, r, true);
}

unsigned ring_reap(struct urt_core *c, enum ring_kind kind)
{
	struct urt_ring *r = &c->rings[kind];

	if (r->ring.flags & IORING_SETUP_CQE32)
		return ring_reap_big(c, r);
	return ring_reap_ring(c, r, false);
}
