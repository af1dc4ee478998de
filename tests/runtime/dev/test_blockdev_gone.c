/*
 * A block device that ends before the size it had at open is gone
 * (src/runtime/req.c, dev/health.c): the kernel gives a removed disk a
 * capacity of 0, so its reads return 0 bytes, which looks like an end of
 * file, and a write past it ENOSPC.  Here a loop device shrinks under an
 * open urt device (its backing file truncated, LOOP_SET_CAPACITY): a read,
 * or a write, below the size at open but past the new end must fail with
 * -ENODEV naming the device, and the device go OFFLINE as gone, instead of
 * a short read or a bare ENOSPC.  The NVMe guest's removal test
 * (tests/passthru/test_recover.c) shows the same on a removed controller's
 * block device.
 *
 * Needs loop devices (root and the loop module): without them the test is
 * skipped, and ctest shows Skipped (its only tests).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../fixture.h"
#include "urt/buf.h"
#include "urt/dev.h"
#include "urt/error.h"
#include "urt/io.h"

#define LOOP_BYTES (16u << 20)
#define LOOP_TRIES 8	/* Loop devices tried when another process takes the free one first. */

struct loop_state {
	char path[32];		/* /dev/loopN */
	char file[64];		/* Its backing file. */
	int fd;			/* The loop device, for LOOP_SET_CAPACITY and LOOP_CLR_FD. */
	int file_fd;		/* The backing file, truncated to shrink the device. */
	bool write_first;	/* The first op after the shrink is a write (else a read). */
	struct tests_fail fail;
	int before;		/* The write before the shrink. */
	int first;		/* The first op after it, below the old size, past the new end. */
	int later;		/* A read at 0 after that: refused, the device is offline. */
	char msg[512];		/* urt_last_error after the first op. */
	struct urt_dev_health h;
};

/* Closes what loop_setup opened and removes the backing file. */
static void loop_release(struct loop_state *l)
{
	if (l->fd >= 0)
		close(l->fd);
	if (l->file_fd >= 0)
		close(l->file_fd);
	unlink(l->file);
	l->fd = l->file_fd = -1;
}

/* A loop device over a 16 MiB file; skips the test where loop devices cannot be had. */
static void loop_setup(struct loop_state *l)
{
	int err = 0;

	l->fd = -1;
	snprintf(l->file, sizeof(l->file), "/var/tmp/urt-loop-%d.img", (int)getpid());
	l->file_fd = open(l->file, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert_geq(l->file_fd, 0, "%s: %s", l->file, strerror(errno));
	cr_assert_eq(ftruncate(l->file_fd, LOOP_BYTES), 0, "%s: %s", l->file, strerror(errno));
	for (int i = 0; i < LOOP_TRIES; i++) {
		int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC), n;

		if (ctl < 0) {
			err = errno;
			loop_release(l);
			cr_skip_test("/dev/loop-control: %s (loop devices need root and the loop module)",
				     strerror(err));
		}
		n = ioctl(ctl, LOOP_CTL_GET_FREE);
		err = errno;
		close(ctl);
		if (n < 0) {
			loop_release(l);
			cr_skip_test("LOOP_CTL_GET_FREE: %s", strerror(err));
		}
		snprintf(l->path, sizeof(l->path), "/dev/loop%d", n);
		l->fd = open(l->path, O_RDWR | O_CLOEXEC);
		if (l->fd >= 0 && ioctl(l->fd, LOOP_SET_FD, l->file_fd) == 0)
			return;
		err = errno;
		if (l->fd >= 0)
			close(l->fd);
		l->fd = -1;
		if (err != EBUSY)
			break;	/* EBUSY: another process took it between the two calls; try the next. */
	}
	loop_release(l);
	cr_skip_test("%s: %s (loop devices need root)", l->path, strerror(err));
}

static void loop_teardown(struct loop_state *l)
{
	ioctl(l->fd, LOOP_CLR_FD, 0);
	loop_release(l);
}

static void body_loop_shrinks(void *arg)
{
	struct loop_state *l = arg;
	struct urt_dev *dev = NULL;
	uint8_t *buf = urt_buf_get(4096);
	int ret = urt_dev_open(l->path, NULL, &dev);

	if (ret) {
		tests_failf(&l->fail, "urt_dev_open(%s): %d (%s)", l->path, ret, urt_last_error());
		urt_buf_put(buf);
		return;
	}
	memset(buf, 0x6c, 4096);
	l->before = (int)urt_write(dev, buf, 4096, 8u << 20);
	/* The device shrinks to 4 MiB under the open handle: the file, then the loop's capacity. */
	if (ftruncate(l->file_fd, 4u << 20) != 0 || ioctl(l->fd, LOOP_SET_CAPACITY, 0) != 0)
		tests_failf(&l->fail, "shrinking %s: %s", l->path, strerror(errno));
	/* Below the size at open: gone (a read would see an end of file, a write ENOSPC). */
	l->first = (int)(l->write_first ? urt_write(dev, buf, 4096, 8u << 20) : urt_read(dev, buf, 4096, 8u << 20));
	snprintf(l->msg, sizeof(l->msg), "%s", urt_last_error());
	l->later = (int)urt_read(dev, buf, 4096, 0);
	urt_dev_health(dev, &l->h);
	urt_buf_put(buf);
	urt_dev_close(dev);
}

static void run_shrink(bool write_first)
{
	struct loop_state l = { .write_first = write_first };
	struct urt_rt_opts o;
	struct urt_rt *rt;

	loop_setup(&l);
	fx_opts_cpu0(&o);
	rt = fx_start(&o);
	fx_run(rt, 0, body_loop_shrinks, &l);
	urt_rt_stop(rt);
	loop_teardown(&l);
	cr_assert_eq(l.fail.failed, 0, "%s", l.fail.msg);
	cr_expect_eq(l.before, 4096, "the write before: %d", l.before);
	cr_expect_eq(l.first, -ENODEV, "a %s below the size at open, past the new end: %d (%s)",
		     write_first ? "write" : "read", l.first,
		     write_first ? "-ENOSPC would leave the device healthy"
				 : "0 would be an end of file handed back as a short read");
	cr_expect(strstr(l.msg, l.path) && strstr(l.msg, "gone"), "names the device, says gone: %s", l.msg);
	cr_expect_eq(l.later, -ENODEV, "later ops are refused: %d", l.later);
	cr_expect_eq(l.h.state, URT_DEV_OFFLINE, "%s", urt_dev_state_name(l.h.state));
	cr_expect(l.h.gone);
}

Test(blockdev, a_read_past_its_new_end_finds_it_gone) { run_shrink(false); }
Test(blockdev, a_write_past_its_new_end_finds_it_gone) { run_shrink(true); }
