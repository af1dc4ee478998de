/*
 * Identify an NVMe namespace behind a generic character device (/dev/ngXnY).
 *
 * Sources of each urt_dev_info field:
 *   nsid                NVME_IOCTL_ID on the ng fd (libnvme nvme_get_nsid).
 *   block_bytes, size   Identify Namespace: the LBA format FLBAS selects
 *                       (its LBADS) and NSZE.
 *   atomic_write_bytes  NAWUPF when NSFEAT says it is valid, else the
 *                       controller's AWUPF; both zero-based, in blocks.
 *   volatile_cache      Identify Controller VWC bit 0.
 *   write_zeroes        ONCS bit 3; deallocate: ONCS bit 2 (DSM).
 *   max_io_bytes        the smallest of MDTS (2^MDTS minimum pages; CAP's
 *                       MPSMIN cannot be read through the ng device, so the
 *                       minimum page is taken to be 4 KiB, its value on
 *                       every controller Linux drives), the kernel's
 *                       max_hw_sectors_kb, max_segments - 1 pages (the
 *                       kernel does not split passthrough commands, and a
 *                       user buffer not starting on a page boundary spans
 *                       one page more than its length), and 65536 blocks
 *                       (the 16-bit NLB field).
 *   poll_capable        queue/io_poll of the namespace's block device: the
 *                       driver has poll queues (nvme.poll_queues > 0).
 *
 * Identify is an admin command; the kernel lets any process that may open
 * the ng device send Identify Controller and Identify Namespace, so this
 * works for a non-root user that a udev rule let in.
 */
#include <endian.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <nvme/ioctl.h>
#include <nvme/types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "passthru/nvme_status.h"
#include "passthru/passthru.h"
#include "runtime/core.h"
#include "urt/error.h"

/* The smallest memory page size NVMe allows (CAP.MPSMIN = 0). */
#define NVME_MIN_PAGE_BYTES 4096u

bool nvme_id_generic_name(const char *path, char *name, unsigned len)
{
	char link[64], real[PATH_MAX], cls[128];
	struct stat st;
	const char *base;

	if (stat(path, &st) || !S_ISCHR(st.st_mode))
		return false;
	/* /sys/dev/char/M:m resolves to the device directory, whatever the path's name. */
	snprintf(link, sizeof(link), "/sys/dev/char/%u:%u", major(st.st_rdev), minor(st.st_rdev));
	if (!realpath(link, real))
		return false;
	base = strrchr(real, '/');
	base = base ? base + 1 : real;
	if (strncmp(base, "ng", 2) != 0 || strlen(base) >= len || strlen(base) > 31)
		return false;
	snprintf(cls, sizeof(cls), "/sys/class/nvme-generic/%.31s", base);
	if (stat(cls, &st))
		return false;
	snprintf(name, len, "%s", base);
	return true;
}

/* Read one unsigned number from a sysfs file; 0 on success. */
static int sysfs_u64(const char *path, uint64_t *out)
{
	char buf[64];
	FILE *f = fopen(path, "re");
	char *end;

	if (!f)
		return -errno;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return -EIO;
	}
	fclose(f);
	*out = strtoull(buf, &end, 10);
	return end == buf ? -EINVAL : 0;
}

/* The queue attribute attr of block device blk; 0 on success. */
static int queue_u64(const char *blk, const char *attr, uint64_t *out)
{
	char path[160];

	snprintf(path, sizeof(path), "/sys/block/%s/queue/%s", blk, attr);
	return sysfs_u64(path, out);
}

/* The controller name ("nvme0") that is the parent of ng device name. */
static void ctrl_name_of(const char *name, char *out, size_t len)
{
	char path[128], real[PATH_MAX];
	char *parent;

	snprintf(out, len, "?");
	snprintf(path, sizeof(path), "/sys/class/nvme-generic/%s", name);
	if (!realpath(path, real))
		return;
	parent = dirname(real);
	snprintf(out, len, "%s", basename(parent));
}

/* Turn a libnvme result (-1 with errno, or a positive NVMe status) into -errno. */
static int identify_result(int ret, const char *path, const char *what)
{
	char sbuf[96];

	if (ret == 0)
		return 0;
	if (ret < 0) {
		ret = errno ? -errno : -EIO;
		urt_set_error("%s: %s failed: %s%s", path, what, urt_strerror(ret),
			      ret == -EACCES || ret == -EPERM ? " (the kernel refused the admin command; run as root)" : "");
		return ret;
	}
	urt_set_error("%s: %s failed with NVMe status %s", path, what,
		      nvme_status_format((uint16_t)ret, sbuf, sizeof(sbuf)));
	ret = nvme_status_errno((uint16_t)ret);
	return ret ? ret : -EIO;
}

int nvme_id_probe(int fd, const char *path, const char *name, struct urt_dev_info *in, struct pt_geometry *geo)
{
	struct nvme_id_ctrl ctrl;
	struct nvme_id_ns ns;
	uint32_t nsid = 0, lbs, max;
	unsigned fmt;
	uint64_t v;
	int ret;

	memset(geo, 0, sizeof(*geo));
	errno = 0;
	ret = nvme_get_nsid(fd, &nsid);
	if (ret < 0 || nsid == 0) {
		ret = errno ? -errno : -ENODEV;
		urt_set_error("%s: NVME_IOCTL_ID: %s", path, urt_strerror(ret));
		return ret;
	}
	errno = 0;
	ret = identify_result(nvme_identify_ctrl(fd, &ctrl), path, "Identify Controller");
	if (ret)
		return ret;
	errno = 0;
	ret = identify_result(nvme_identify_ns(fd, nsid, &ns), path, "Identify Namespace");
	if (ret)
		return ret;

	/* FLBAS: bits 0-3 are the format index, bits 5-6 its high bits when there are more than 16. */
	fmt = ns.flbas & 0xfu;
	if (ns.nlbaf >= 16)
		fmt |= (unsigned)((ns.flbas >> 5) & 0x3u) << 4;
	if (fmt > ns.nlbaf || ns.lbaf[fmt].ds < 9 || ns.lbaf[fmt].ds > 16) {
		urt_set_error("%s: namespace %u has an unusable LBA format (index %u, LBADS %u)", path, nsid, fmt,
			      ns.lbaf[fmt].ds);
		return -ENODEV;
	}
	if (ns.lbaf[fmt].ms) {
		urt_set_error("%s: namespace %u is formatted with %u bytes of metadata per block; the passthrough "
			      "backend sends no metadata buffer: reformat without metadata (nvme format -l)",
			      path, nsid, (unsigned)ns.lbaf[fmt].ms);
		return -EOPNOTSUPP;
	}
	geo->lba_shift = ns.lbaf[fmt].ds;
	lbs = 1u << geo->lba_shift;
	in->nsid = nsid;
	in->block_bytes = lbs;
	in->phys_block_bytes = lbs;
	in->mem_align = lbs;
	in->off_align = lbs;
	in->size_bytes = (uint64_t)ns.nsze << geo->lba_shift;
	if (ns.nsfeat & NVME_NS_FEAT_NATOMIC)
		in->atomic_write_bytes = ((uint32_t)ns.nawupf + 1) * lbs;
	else
		in->atomic_write_bytes = ((uint32_t)ctrl.awupf + 1) * lbs;
	in->volatile_cache = ctrl.vwc & 1u;
	geo->crdt[0] = le16toh(ctrl.crdt1);
	geo->crdt[1] = le16toh(ctrl.crdt2);
	geo->crdt[2] = le16toh(ctrl.crdt3);
	in->write_zeroes = ctrl.oncs & NVME_CTRL_ONCS_WRITE_ZEROES;
	in->deallocate = ctrl.oncs & NVME_CTRL_ONCS_DSM;
	in->fua = true;
	in->direct = true;
	in->is_blockdev = true;
	in->is_nvme = true;

	snprintf(geo->blk_name, sizeof(geo->blk_name), "nvme%s", name + 2);
	ctrl_name_of(name, geo->ctrl_name, sizeof(geo->ctrl_name));

	/* The transfer limit: device, kernel, and the 16-bit block count. */
	max = NVME_NLB_MAX * lbs > (1u << 30) ? (1u << 30) : NVME_NLB_MAX * lbs;
	if (ctrl.mdts && 12u + ctrl.mdts < 31u) {
		geo->mdts_bytes = NVME_MIN_PAGE_BYTES << ctrl.mdts;
		if (geo->mdts_bytes < max)
			max = geo->mdts_bytes;
	}
	if (queue_u64(geo->blk_name, "max_hw_sectors_kb", &v) == 0 && v) {
		geo->kernel_max_bytes = v * 1024 > max ? max : (uint32_t)(v * 1024);
		if (queue_u64(geo->blk_name, "max_segments", &v) == 0 && v > 1 &&
		    (v - 1) * NVME_MIN_PAGE_BYTES < geo->kernel_max_bytes)
			geo->kernel_max_bytes = (uint32_t)((v - 1) * NVME_MIN_PAGE_BYTES);
		if (geo->kernel_max_bytes < max)
			max = geo->kernel_max_bytes;
	}
	/* Whole blocks, so that every split piece stays aligned. */
	max &= ~(lbs - 1);
	if (max < lbs)
		max = lbs;
	in->max_io_bytes = max;
	in->poll_capable = queue_u64(geo->blk_name, "io_poll", &v) == 0 && v == 1;
	return 0;
}
