/*
 * Too little RLIMIT_MEMLOCK: urt_rt_start fails with -ENOMEM and a message
 * that names the limit and how to raise it, unless the caller allowed
 * unregistered buffers, in which case it runs without them.
 *
 * Root bypasses the limit through CAP_IPC_LOCK, so the test drops that
 * capability in a forked child first.
 */
#include <grp.h>
#include <liburing.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "fixture.h"

static int drop_ipc_lock(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2];

	if (syscall(SYS_capget, &hdr, data))
		return -1;
	data[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
	return (int)syscall(SYS_capset, &hdr, data);
}

struct ml_run {
	struct urt_dev *dev;
	ssize_t res;
};

static void ml_body(void *p)
{
	struct ml_run *r = p;
	uint8_t *buf = urt_buf_get(4096);

	r->res = urt_read(r->dev, buf, 4096, 0);
	urt_buf_put(buf);
}

/* Child: exit code bit 0 = refused with -ENOMEM, bit 1 = message names the limit,
 * bit 2 = fallback started, bit 3 = fallback unregistered, bit 4 = I/O worked. */
static int become_nobody(void);

/*
 * urt_rt_start, again for up to 5 s while it fails with -ENOMEM: the
 * kernel frees io_uring rings (and unpins their buffers) asynchronously
 * after a ring is closed, and until then they still count against the
 * user's locked memory.  That includes the rings of the start just refused
 * here and those of the other tests' children, which ran as nobody too.
 */
static int start_retrying(struct urt_rt_opts *o, struct urt_rt **rt)
{
	int ret;

	for (int i = 0; (ret = urt_rt_start(o, rt)) == -ENOMEM && i < 50; i++)
		usleep(100000);
	return ret;
}

static int child(void)
{
	struct rlimit rl = { 1 << 20, 1 << 20 };
	struct urt_rt_opts o;
	struct urt_rt *rt;
	struct urt_stats st;
	struct fx_file f;
	int code = 0;

	/*
	 * The file is opened first and its name dropped, so that the child
	 * may then run as nobody: the kernel counts locked memory per user,
	 * and other processes of root without CAP_IPC_LOCK (the same test in
	 * another build) would share root's count.  Without setuid, drop the
	 * capability and stay root.
	 */
	fx_file_open(&f, 1 << 20, true);
	unlink(f.path);
	if ((become_nobody() && drop_ipc_lock()) || setrlimit(RLIMIT_MEMLOCK, &rl))
		return 100;
	urt_rt_opts_default(&o);
	o.buf_region_bytes = 8u << 20;
	if (urt_rt_start(&o, &rt) == -ENOMEM)
		code |= 1;
	if (strstr(urt_last_error(), "RLIMIT_MEMLOCK") && strstr(urt_last_error(), "ulimit -l"))
		code |= 2;
	o.buf_allow_unregistered = true;
	if (start_retrying(&o, &rt) == 0) {
		struct ml_run r = { 0 };

		code |= 4;
		if (urt_rt_stats(rt, 0, &st) == 0 && !st.bufs_registered)
			code |= 8;
		r.dev = f.dev;
		fx_run(rt, 0, ml_body, &r);
		if (r.res == 4096)
			code |= 16;
		urt_rt_stop(rt);
	}
	urt_dev_close(f.dev);
	return code;
}

Test(memlock, too_low_limit_gives_clear_error)
{
	pid_t pid = fork();
	int status;

	cr_assert_geq(pid, 0);
	if (pid == 0)
		_exit(child());
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status));
	if (WEXITSTATUS(status) == 100)
		cr_skip_test("cannot drop CAP_IPC_LOCK or lower RLIMIT_MEMLOCK here");
	cr_expect(WEXITSTATUS(status) & 1, "start was not refused with -ENOMEM");
	cr_expect(WEXITSTATUS(status) & 2, "message does not name RLIMIT_MEMLOCK and ulimit -l");
	cr_expect(WEXITSTATUS(status) & 4, "fallback did not start");
	cr_expect(WEXITSTATUS(status) & 8, "fallback claims registered buffers");
	cr_expect(WEXITSTATUS(status) & 16, "I/O on unregistered buffers failed");
}

/*
 * Runs fn(mode, msg, 4096) in a forked process (limits and user ids
 * changed there stay there) and returns its exit status; msg is shared
 * memory the child writes its message into.
 */
static int in_child(int (*fn)(enum urt_poll_mode, char *, size_t), enum urt_poll_mode mode,
		    char *msg)
{
	pid_t pid;
	int status;

	cr_assert_neq(msg, MAP_FAILED);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0)
		_exit(fn(mode, msg, 4096));
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status), "the child crashed");
	return WEXITSTATUS(status);
}

/*
 * Every ring kind registers the buffer region again, and each ring's own
 * memory counts too.  The child runs as user nobody: the kernel charges
 * locked memory per user, and root's other processes (other tests) must not
 * share the count.  Exit codes: 0 done, 100 cannot switch user, 101 start
 * not refused, 102 message wrong, 103 start at the stated need failed,
 * 104 buffers not registered on the IOPOLL ring's core.
 */
#define REGION_KIB 1024u

static int become_nobody(void)
{
	return setgroups(0, NULL) || setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534) ? -1 : 0;
}

static int poll_ring_child(enum urt_poll_mode mode, char *msg, size_t len)
{
	struct urt_kernel_features kf;
	struct urt_rt_opts o;
	struct urt_rt *rt;
	struct urt_stats st;
	struct rlimit rl;
	unsigned long long stated = 0;
	unsigned ncores;
	const char *p;

	/* Only the soft limit moves, below the hard one (8 MiB here), which nobody may not raise. */
	if (getrlimit(RLIMIT_MEMLOCK, &rl) || become_nobody())
		return 100;
	urt_kernel_probe(&kf);
	urt_rt_opts_default(&o);
	o.mode = mode;
	o.buf_region_bytes = REGION_KIB << 10;
	ncores = (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	/* Room for one registration and one ring per core (as the old count had it), with half of that spare. */
	rl.rlim_cur = (rlim_t)ncores * (REGION_KIB + 256) * 1024 * 3 / 2;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 2 * rl.rlim_cur)
		return 100;	/* The hard limit leaves no room for the second step. */
	if (setrlimit(RLIMIT_MEMLOCK, &rl))
		return 100;
	if (urt_rt_start(&o, &rt) != -ENOMEM)
		return 101;
	snprintf(msg, len, "%s", urt_last_error());
	if (!strstr(msg, "2 rings (main, IOPOLL)") || !strstr(msg, "RLIMIT_MEMLOCK") ||
	    !(p = strstr(msg, "ulimit -l ")) || sscanf(p, "ulimit -l %llu", &stated) != 1 ||
	    stated < 2ull * ncores * (REGION_KIB + 4))
		return 102;
	/*
	 * At the stated need the kernel takes everything: the count is not
	 * short.  Rings of the probe above are freed asynchronously by the
	 * kernel and count until then (start_retrying).
	 */
	rl.rlim_cur = (rlim_t)stated * 1024;
	if (setrlimit(RLIMIT_MEMLOCK, &rl))
		return 100;
	if (start_retrying(&o, &rt) != 0) {
		snprintf(msg, len, "%s", urt_last_error());
		return 103;
	}
	if (urt_rt_stats(rt, 0, &st) || !st.bufs_registered || !(st.poll_ring_flags & 1u /* IOPOLL */)) {
		urt_rt_stop(rt);
		return 104;
	}
	urt_rt_stop(rt);
	return 0;
}

static void poll_ring_case(enum urt_poll_mode mode)
{
	struct urt_kernel_features kf;
	char *msg = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int code;

	urt_kernel_probe(&kf);
	if (!kf.iopoll || (mode == URT_POLL_HYBRID && !kf.hybrid_iopoll))
		cr_skip_test("the kernel refuses the IOPOLL ring of this mode");
	code = in_child(poll_ring_child, mode, msg);
	if (code == 100)
		cr_skip_test("cannot switch to user nobody or set RLIMIT_MEMLOCK here");
	cr_expect_neq(code, 101, "start was not refused although the IOPOLL ring registers too");
	cr_expect_neq(code, 102, "the message does not count both rings: %s", msg);
	cr_expect_neq(code, 103, "the kernel refused at the stated need: %s", msg);
	cr_expect_neq(code, 104, "started without registered buffers or without the IOPOLL ring");
	cr_expect_eq(code, 0);
	munmap(msg, 4096);
}

/* IOPOLL: a main ring and an IOPOLL ring per core, each with the buffer region. */
Test(memlock, iopoll_counts_both_rings) { poll_ring_case(URT_POLL_IOPOLL); }
/* Hybrid on a kernel with HYBRID_IOPOLL opens the same two rings. */
Test(memlock, hybrid_counts_both_rings) { poll_ring_case(URT_POLL_HYBRID); }

/*
 * A user id of the child's own: the kernel counts locked memory per user,
 * and the rings of other tests' children (freed asynchronously after they
 * exit), or of the same tests in another build, must not count here.
 */
static int become_own_user(void)
{
	uid_t uid = 300000 + (uid_t)(getpid() % 100000);

	return setgroups(0, NULL) || setresgid(uid, uid, uid) || setresuid(uid, uid, uid) ? -1 : 0;
}

/* The number after "ulimit -l " in msg, or 0. */
static unsigned long long advised_kib(const char *msg)
{
	const char *p = strstr(msg, "ulimit -l ");
	unsigned long long kib = 0;

	if (!p || sscanf(p, "ulimit -l %llu", &kib) != 1)
		return 0;
	return kib;
}

/*
 * Exit codes: 100 cannot switch user or set the limit, 101 start not
 * refused, 102 no number in the message, 105 the kernel refuses the mode;
 * else bit 0: the message names library settings, bit 1: the start at the
 * advised limit failed (msg has its message).
 */
static int advised_child(enum urt_poll_mode mode, char *msg, size_t len)
{
	struct urt_rt_opts o;
	struct urt_rt *rt;
	struct rlimit rl;
	unsigned long long kib;
	int ret, code = 0;

	/* Nothing of urt before the switch: the probe's rings must be charged to the new user. */
	if (getrlimit(RLIMIT_MEMLOCK, &rl))
		return 100;
	rl.rlim_cur = 16 << 10;
	if (setrlimit(RLIMIT_MEMLOCK, &rl) || become_own_user())
		return 100;
	urt_rt_opts_default(&o);
	o.mode = mode;
	o.buf_region_bytes = 64u << 10;
	if (urt_rt_start(&o, &rt) != -ENOMEM)
		return 101;
	snprintf(msg, len, "%s", urt_last_error());
	kib = advised_kib(msg);
	if (kib == 0)
		return 102;
	if (strstr(msg, "buf_region_bytes") || strstr(msg, "buf_allow_unregistered"))
		code |= 1;
	if (rl.rlim_max != RLIM_INFINITY && kib * 1024 > rl.rlim_max)
		return 100;
	rl.rlim_cur = (rlim_t)kib * 1024;
	if (setrlimit(RLIMIT_MEMLOCK, &rl))
		return 100;
	/* At once, no retry: the probe's rings may still count, and the advice must cover them. */
	ret = urt_rt_start(&o, &rt);
	if (ret == -EOPNOTSUPP)
		return 105;
	if (ret) {
		snprintf(msg, len, "%s", urt_last_error());
		return code | 2;
	}
	urt_rt_stop(rt);
	return code;
}

static void advised_case(enum urt_poll_mode mode)
{
	char *msg = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int code = in_child(advised_child, mode, msg);

	if (code == 100)
		cr_skip_test("cannot switch to a user of the test's own or set RLIMIT_MEMLOCK here");
	if (code == 105)
		cr_skip_test("the kernel refuses this mode: %s", msg);
	cr_assert_neq(code, 101, "start under 16 KiB was not refused");
	cr_assert_neq(code, 102, "no ulimit -l number: %s", msg);
	cr_expect_not(code & 2, "the advised limit was not enough: %s", msg);
	cr_expect_not(code & 1, "the message names library settings: %s", msg);
	munmap(msg, 4096);
}

/* The advised "ulimit -l N" is enough at once, the probe's own rings included, in each mode's ring set. */
Test(memlock, advised_limit_suffices_interrupt) { advised_case(URT_POLL_INTERRUPT); }
Test(memlock, advised_limit_suffices_sqpoll) { advised_case(URT_POLL_SQPOLL); }
Test(memlock, advised_limit_suffices_iopoll) { advised_case(URT_POLL_IOPOLL); }
Test(memlock, advised_limit_suffices_hybrid) { advised_case(URT_POLL_HYBRID); }

/*
 * Another process of the same user holds nearly all of RLIMIT_MEMLOCK (here
 * a ring of the child's own with a registered buffer, which counts the
 * same): the probe's rings fail with ENOMEM, which says nothing about the
 * kernel.  SQPOLL must then fail as a memory-lock shortage that names the
 * limit and a number, not as "this kernel refuses SQPOLL", and once the
 * memory is free a new start in SQPOLL mode must work: the shortage was
 * not kept as the kernel's answer.  Exit codes: 0 done, 100 cannot set up,
 * 101 the kernel refuses SQPOLL, 102 the start did not fail with -ENOMEM,
 * 103 the message is wrong, 104 no start after the memory was freed.
 */
#define HOLD_LIMIT (1u << 20)

static int sqpoll_short_child(enum urt_poll_mode mode, char *msg, size_t len)
{
	struct io_uring_params p = { .flags = IORING_SETUP_SQPOLL, .sq_thread_idle = 1 };
	struct io_uring hold;
	struct urt_rt_opts o;
	struct urt_rt *rt;
	struct rlimit rl;
	struct iovec iov;
	int ret;

	/* Whether the kernel takes SQPOLL at all, asked while still exempt from the limit (CAP_IPC_LOCK). */
	if (io_uring_queue_init_params(4, &hold, &p))
		return 101;
	io_uring_queue_exit(&hold);
	if (getrlimit(RLIMIT_MEMLOCK, &rl) || (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < HOLD_LIMIT))
		return 100;
	rl.rlim_cur = HOLD_LIMIT;
	if (setrlimit(RLIMIT_MEMLOCK, &rl) || become_own_user())
		return 100;
	/* Hold all but 4 KiB: the ring's own 8 KiB and a buffer of the rest, in small pages (one charge each). */
	iov.iov_len = HOLD_LIMIT - (8u << 10) - (4u << 10);
	iov.iov_base = mmap(NULL, iov.iov_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (iov.iov_base == MAP_FAILED || madvise(iov.iov_base, iov.iov_len, MADV_NOHUGEPAGE) ||
	    io_uring_queue_init(2, &hold, 0))
		return 100;
	if (io_uring_register_buffers(&hold, &iov, 1)) {
		io_uring_queue_exit(&hold);
		return 100;
	}
	urt_rt_opts_default(&o);
	o.mode = mode;	/* URT_POLL_SQPOLL */
	o.sq_entries = 8;
	o.req_max = 16;
	o.buf_region_bytes = 64u << 10;
	o.memlock_hint = "";
	ret = urt_rt_start(&o, &rt);
	snprintf(msg, len, "%s", urt_last_error());
	if (ret != -ENOMEM) {
		if (ret == 0)
			urt_rt_stop(rt);
		io_uring_queue_exit(&hold);
		return 102;
	}
	if (!strstr(msg, "RLIMIT_MEMLOCK") || advised_kib(msg) == 0 || strstr(msg, "refuses"))
		return 103;
	/* Free the memory (the kernel does so asynchronously: start_retrying), then start again. */
	io_uring_unregister_buffers(&hold);
	io_uring_queue_exit(&hold);
	if (start_retrying(&o, &rt) != 0) {
		snprintf(msg, len, "%s", urt_last_error());
		return 104;
	}
	urt_rt_stop(rt);
	return 0;
}

Test(memlock, sqpoll_under_others_locked_memory_is_a_memlock_error)
{
	char *msg = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int code = in_child(sqpoll_short_child, URT_POLL_SQPOLL, msg);

	if (code == 100)
		cr_skip_test("cannot switch user, set RLIMIT_MEMLOCK or hold locked memory here");
	if (code == 101)
		cr_skip_test("the kernel refuses IORING_SETUP_SQPOLL");
	cr_expect_neq(code, 102, "the start did not fail with -ENOMEM: %s", msg);
	cr_expect_neq(code, 103, "not a memlock message with a number: %s", msg);
	cr_expect_neq(code, 104, "no SQPOLL start once the memory was free: %s", msg);
	cr_expect_eq(code, 0);
	munmap(msg, 4096);
}
