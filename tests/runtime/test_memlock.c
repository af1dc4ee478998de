/*
 * Too little RLIMIT_MEMLOCK: urt_rt_start fails with -ENOMEM and a message
 * that names the limit and how to raise it, unless the caller allowed
 * unregistered buffers, in which case it runs without them.
 *
 * Root bypasses the limit through CAP_IPC_LOCK, so the test drops that
 * capability in a forked child first.
 */
#include <linux/capability.h>
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
static int child(void)
{
	struct rlimit rl = { 1 << 20, 1 << 20 };
	struct urt_rt_opts o;
	struct urt_rt *rt;
	struct urt_stats st;
	int code = 0;

	if (drop_ipc_lock() || setrlimit(RLIMIT_MEMLOCK, &rl))
		return 100;
	urt_rt_opts_default(&o);
	o.buf_region_bytes = 8u << 20;
	if (urt_rt_start(&o, &rt) == -ENOMEM)
		code |= 1;
	if (strstr(urt_last_error(), "RLIMIT_MEMLOCK") && strstr(urt_last_error(), "ulimit -l"))
		code |= 2;
	o.buf_allow_unregistered = true;
	if (urt_rt_start(&o, &rt) == 0) {
		struct fx_file f;
		struct ml_run r = { 0 };

		code |= 4;
		if (urt_rt_stats(rt, 0, &st) == 0 && !st.bufs_registered)
			code |= 8;
		fx_file_open(&f, 1 << 20, true);
		r.dev = f.dev;
		fx_run(rt, 0, ml_body, &r);
		if (r.res == 4096)
			code |= 16;
		fx_file_close(&f);
		urt_rt_stop(rt);
	}
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
