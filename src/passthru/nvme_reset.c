/*
 * The controller reset of the passthrough backend: the action that
 * dev/health.c's recovery takes when a namespace keeps timing out.
 *
 * It asks the Linux NVMe driver to reset the controller behind the
 * namespace (libnvme's nvme_ctrl_reset: NVME_IOCTL_RESET on /dev/nvmeX,
 * which needs CAP_SYS_ADMIN), then waits until the controller's sysfs
 * state (/sys/class/nvme/nvmeX/state) reads "live" again.  The driver
 * holds new commands while it resets and cancels those in flight (they
 * complete with -EINTR, which the backend reports as -ETIMEDOUT, so the
 * runtime reissues them).
 *
 * A reset already under way (the driver's own, after a command's abort
 * failed) shows as -EWOULDBLOCK from open (the driver lets /dev/nvmeX be
 * opened only while the controller is live) or -EBUSY from the ioctl:
 * urt then joins it, and waiting for "live" is all there is to do.  A
 * controller that reaches "dead" or "deleting", or whose /dev/nvmeX is
 * gone (the driver removed it, as Linux does after a reset of its own
 * failed), will not come back: -ENODEV at once, which dev/health.c takes
 * as the device gone (OFFLINE, no further reset).
 */
#include <errno.h>
#include <fcntl.h>
#include <nvme/ioctl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/error.h"
#include "base/sysfs.h"
#include "passthru/passthru.h"

/* How often the sysfs state is read while waiting (10 ms). */
#define RESET_POLL_NS 10000000L

/* The controller's sysfs state into buf ("live", "resetting", ...); 0 or -errno. */
static int ctrl_state(const char *ctrl, char *buf, size_t len)
{
	char path[96];

	snprintf(path, sizeof(path), "/sys/class/nvme/%s/state", ctrl);
	return urt_sysfs_line(path, buf, len);
}

int nvme_reset_wait(const char *ctrl, const char *path, uint32_t wait_ms)
{
	uint64_t end = urt_clock_ns() + (uint64_t)wait_ms * 1000000ull;
	struct timespec nap = { 0, RESET_POLL_NS };
	char dev[64], state[32] = "";
	int fd, ret;

	snprintf(dev, sizeof(dev), "/dev/%s", ctrl);
	fd = open(dev, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		/* The driver opens the controller only while it is live: EWOULDBLOCK = a reset is under way. */
		if (ret == -ENOENT || ret == -ENXIO || ret == -ENODEV) {
			urt_set_error("%s: its controller %s is gone (%s): the driver removed it, so there is "
				      "nothing to reset", path, dev, strerror(-ret));
			return -ENODEV;
		}
		if (ret != -EWOULDBLOCK) {
			urt_set_error("%s: cannot open its controller %s to reset it: %s", path, dev,
				      strerror(-ret));
			return ret;
		}
	} else {
		ret = nvme_ctrl_reset(fd) ? -errno : 0;
		close(fd);
	}
	if (ret && ret != -EBUSY && ret != -EWOULDBLOCK) {
		urt_set_error("%s: resetting controller %s: %s%s", path, dev, strerror(-ret),
			      ret == -EACCES || ret == -EPERM ? " (a controller reset needs CAP_SYS_ADMIN)" : "");
		return ret;
	}
	for (;;) {
		ret = ctrl_state(ctrl, state, sizeof(state));
		if (ret == 0 && strcmp(state, "live") == 0)
			return 0;
		if (ret == -ENOENT) {
			/* Its sysfs directory went with it: removed during the reset. */
			urt_set_error("%s: controller %s is gone (removed during its reset): nothing to wait for",
				      path, ctrl);
			return -ENODEV;
		}
		if (ret == 0 && (strcmp(state, "dead") == 0 || strcmp(state, "deleting") == 0 ||
				 strcmp(state, "deleting (no IO)") == 0)) {
			urt_set_error("%s: controller %s is %s after its reset", path, ctrl, state);
			return -ENODEV;
		}
		if (urt_clock_ns() >= end)
			break;
		nanosleep(&nap, NULL);
	}
	urt_set_error("%s: controller %s is not live %u ms after its reset (state %s)", path, ctrl, wait_ms,
		      state[0] ? state : "unreadable");
	return -ETIMEDOUT;
}
