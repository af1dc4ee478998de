/*
 * Interrupt Coalescing (NVMe Feature 08h) through libnvme.
 *
 * The feature is controller-wide: CDW11 bits 0-7 are the aggregation
 * threshold (completions per interrupt, zero-based) and bits 8-15 the
 * aggregation time (units of 100 µs, 0 = off).  Get and Set Features are
 * admin commands; the kernel sends them for CAP_SYS_ADMIN only, whichever
 * device (/dev/nvmeX or /dev/ngXnY) carries the ioctl.  Set is not saved
 * across a power cycle or a controller reset (SV = 0).
 */
#include <errno.h>
#include <fcntl.h>
#include <nvme/ioctl.h>
#include <unistd.h>

#include "base/error.h"
#include "passthru/nvme_status.h"
#include "passthru/passthru.h"
#include "urt/error.h"
#include "urt/nvme.h"

/* Turn a libnvme result (-1 with errno, or a positive NVMe status) into -errno, with the message. */
static int feature_result(int ret, const char *path, const char *what)
{
	char sbuf[96];
	int err;

	if (ret == 0)
		return 0;
	if (ret < 0) {
		err = errno ? -errno : -EIO;
		urt_set_error("%s: %s Interrupt Coalescing (Feature 08h): %s%s", path, what, urt_strerror(err),
			      err == -EACCES || err == -EPERM
				      ? " (the kernel sends Get/Set Features for CAP_SYS_ADMIN only; run as root)"
				      : "");
		return err;
	}
	urt_set_error("%s: %s Interrupt Coalescing (Feature 08h): the controller answered %s", path, what,
		      nvme_status_format((uint16_t)ret, sbuf, sizeof(sbuf)));
	err = nvme_status_errno((uint16_t)ret);
	return err ? err : -EIO;
}

int nvme_coalesce_apply(int fd, const char *path, uint8_t threshold, uint8_t time_100us)
{
	__u32 result = 0;

	errno = 0;
	return feature_result(nvme_set_features_irq_coalesce(fd, threshold, time_100us, false, &result), path, "set");
}

/* Open path for an admin command: read-only is enough for the ioctl. */
static int admin_open(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		int err = -errno;

		urt_set_error("%s: %s", path, urt_strerror(err));
		return err;
	}
	return fd;
}

URT_API int urt_nvme_coalesce_get(const char *path, struct urt_nvme_coalesce *out)
{
	__u32 result = 0;
	int fd, ret;

	urt_clear_error();
	fd = admin_open(path);
	if (fd < 0)
		return fd;
	errno = 0;
	ret = feature_result(nvme_get_features_irq_coalesce(fd, NVME_GET_FEATURES_SEL_CURRENT, &result), path, "get");
	close(fd);
	if (ret)
		return ret;
	out->threshold = (uint8_t)(result & 0xff);
	out->time_100us = (uint8_t)((result >> 8) & 0xff);
	return 0;
}

URT_API int urt_nvme_coalesce_set(const char *path, const struct urt_nvme_coalesce *c)
{
	int fd, ret;

	urt_clear_error();
	fd = admin_open(path);
	if (fd < 0)
		return fd;
	ret = nvme_coalesce_apply(fd, path, c->threshold, c->time_100us);
	close(fd);
	return ret;
}
