/*
 * Discovery: every NVMe controller and namespace of this machine
 * (urt_nvme_list, include/urt/nvme.h).
 *
 * Sources, field by field:
 *   controllers, namespaces   libnvme's topology scan (nvme_scan_topology):
 *                             hosts -> subsystems -> controllers -> their
 *                             namespaces, plus a subsystem's own
 *                             (multipath head) namespaces, once each; and
 *                             libnvme's sysfs filters for the namespaces
 *                             its tree drops (it Identifies each through
 *                             the block device, which a non-root user may
 *                             not open)
 *   nsid, size, block size    /sys/block/<ns>/{nsid,size,queue/logical_block_size}
 *   model, serial, firmware,  the controller's sysfs attributes, which
 *   transport                 libnvme reads during the scan
 *   access                    open() of /dev/ngXnY read-write, else read-only
 *   lbaf[], lbaf_in_use       Identify Namespace (FLBAS), on that fd
 *   mdts, vwc, oncs, crdt     Identify Controller, on /dev/nvmeX (root) or
 *                             else on a namespace's ng fd (Linux 6.2+ lets
 *                             any user who may open it send Identify)
 *   coalesce                  Get Features 08h (CAP_SYS_ADMIN only)
 *   fua, io_poll, kernel max  /sys/block/<ns>/queue/{fua,io_poll,max_hw_sectors_kb}
 *   poll_queues               /sys/module/nvme/parameters/poll_queues
 * Whatever this process may not read is reported as not known, with the
 * errno that said so, never guessed.  Namespaces are found through their
 * block devices, so one that has only an ng device (an unsupported
 * format) is not listed.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <nvme/filters.h>
#include <nvme/ioctl.h>
#include <nvme/tree.h>
#include <nvme/types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "base/error.h"
#include "base/sysfs.h"
#include "passthru/nvme_status.h"
#include "urt/nvme.h"

/* The smallest memory page NVMe allows (CAP.MPSMIN = 0), which MDTS counts in. */
#define MIN_PAGE_BYTES 4096u

/* Read one unsigned number from a sysfs file; false when absent or unreadable. */
static bool sysfs_u64(const char *path, uint64_t *out)
{
	char buf[64], *end;

	if (urt_sysfs_line(path, buf, sizeof(buf)))
		return false;
	*out = strtoull(buf, &end, 10);
	return end != buf;
}

/* A libnvme string attribute, trimmed of the blanks NVMe pads with. */
static void copy_attr(char *dst, size_t len, const char *src)
{
	size_t n;

	snprintf(dst, len, "%s", src ? src : "");
	n = strlen(dst);
	while (n && (dst[n - 1] == ' ' || dst[n - 1] == '\n'))
		dst[--n] = '\0';
}

/* Turn a libnvme result (-1 with errno, or a positive NVMe status) into 0 or -errno. */
static int nvme_result(int ret)
{
	if (ret == 0)
		return 0;
	if (ret < 0)
		return errno ? -errno : -EIO;
	ret = nvme_status_errno((uint16_t)ret);
	return ret ? ret : -EIO;
}

struct scan {
	struct urt_nvme_list *list;
	unsigned cap_ctrl, cap_ns;	/* Allocated entries. */
};

static struct urt_nvme_ctrl_entry *ctrl_add(struct scan *s, nvme_ctrl_t c)
{
	struct urt_nvme_list *l = s->list;
	struct urt_nvme_ctrl_entry *e;
	const char *name = nvme_ctrl_get_name(c);
	uint64_t v;

	for (unsigned i = 0; i < l->nctrl; i++)
		if (strcmp(l->ctrl[i].name, name) == 0)
			return &l->ctrl[i];
	if (l->nctrl == s->cap_ctrl) {
		unsigned cap = s->cap_ctrl ? 2 * s->cap_ctrl : 4;
		struct urt_nvme_ctrl_entry *p = realloc(l->ctrl, cap * sizeof(*p));

		if (!p)
			return NULL;
		l->ctrl = p;
		s->cap_ctrl = cap;
	}
	e = &l->ctrl[l->nctrl++];
	memset(e, 0, sizeof(*e));
	copy_attr(e->name, sizeof(e->name), name);
	snprintf(e->path, sizeof(e->path), "/dev/%s", e->name);
	copy_attr(e->transport, sizeof(e->transport), nvme_ctrl_get_transport(c));
	copy_attr(e->model, sizeof(e->model), nvme_ctrl_get_model(c));
	copy_attr(e->serial, sizeof(e->serial), nvme_ctrl_get_serial(c));
	copy_attr(e->firmware, sizeof(e->firmware), nvme_ctrl_get_firmware(c));
	e->identify_err = -ENODEV;
	e->coalesce_err = -ENODEV;
	e->poll_queues = -1;
	if (strcmp(e->transport, "pcie") == 0 && sysfs_u64("/sys/module/nvme/parameters/poll_queues", &v))
		e->poll_queues = (int)v;
	return e;
}

/* Identify Controller and Feature 08h through fd; keeps the first answer. */
static void ctrl_identify(struct urt_nvme_ctrl_entry *e, int fd)
{
	struct nvme_id_ctrl id;
	__u32 result = 0;
	int ret;

	if (!e->identified) {
		errno = 0;
		ret = nvme_result(nvme_identify_ctrl(fd, &id));
		if (ret) {
			e->identify_err = ret;
		} else {
			e->identified = true;
			e->identify_err = 0;
			e->mdts_bytes = id.mdts && id.mdts < 20 ? MIN_PAGE_BYTES << id.mdts : 0;
			e->vwc = id.vwc & 1u;
			e->oncs = le16toh(id.oncs);
			e->crdt[0] = le16toh(id.crdt1);
			e->crdt[1] = le16toh(id.crdt2);
			e->crdt[2] = le16toh(id.crdt3);
		}
	}
	if (!e->coalesce_known) {
		errno = 0;
		ret = nvme_result(nvme_get_features_irq_coalesce(fd, NVME_GET_FEATURES_SEL_CURRENT, &result));
		if (ret) {
			e->coalesce_err = ret;
		} else {
			e->coalesce_known = true;
			e->coalesce_err = 0;
			e->coalesce.threshold = (uint8_t)(result & 0xff);
			e->coalesce.time_100us = (uint8_t)((result >> 8) & 0xff);
		}
	}
}

/* Identify Namespace nsid through fd into e. */
static void ns_identify(struct urt_nvme_ns_entry *e, int fd)
{
	struct nvme_id_ns id;
	unsigned fmt;
	int ret;

	errno = 0;
	ret = nvme_result(nvme_identify_ns(fd, e->nsid, &id));
	if (ret) {
		e->identify_err = ret;
		return;
	}
	e->identified = true;
	e->identify_err = 0;
	e->nlbaf = (unsigned)id.nlbaf + 1;
	if (e->nlbaf > URT_NVME_LBAF_MAX)
		e->nlbaf = URT_NVME_LBAF_MAX;
	/* FLBAS: bits 0-3 are the format index, bits 5-6 its high bits when there are more than 16. */
	fmt = id.flbas & 0xfu;
	if (id.nlbaf >= 16)
		fmt |= (unsigned)((id.flbas >> 5) & 0x3u) << 4;
	e->lbaf_in_use = fmt;
	for (unsigned i = 0; i < e->nlbaf; i++) {
		e->lbaf[i].data_bytes = id.lbaf[i].ds >= 9 && id.lbaf[i].ds < 32 ? 1u << id.lbaf[i].ds : 0;
		e->lbaf[i].meta_bytes = le16toh(id.lbaf[i].ms);
		e->lbaf[i].rel_perf = id.lbaf[i].rp & 0x3u;
	}
	if (fmt < e->nlbaf && e->lbaf[fmt].data_bytes)
		e->block_bytes = e->lbaf[fmt].data_bytes;
	e->size_bytes = le64toh(id.nsze) * e->block_bytes;
}

/*
 * Add namespace name ("nvme0n1") of controller index ctrl, from sysfs:
 * libnvme 1.3 drops a namespace whose block device it cannot open for its
 * own Identify (any non-root user), so the names come from both its tree
 * and the controller's sysfs directory, and the facts from sysfs.
 */
static int ns_add(struct scan *s, unsigned ctrl, const char *name)
{
	struct urt_nvme_list *l = s->list;
	struct urt_nvme_ns_entry *e;
	char path[160];
	uint64_t v;
	int fd;

	for (unsigned i = 0; i < l->nns; i++)
		if (strcmp(l->ns[i].block_path + 5, name) == 0)
			return 0;	/* Seen through another path of the topology. */
	if (l->nns == s->cap_ns) {
		unsigned cap = s->cap_ns ? 2 * s->cap_ns : 8;
		struct urt_nvme_ns_entry *p = realloc(l->ns, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		l->ns = p;
		s->cap_ns = cap;
	}
	e = &l->ns[l->nns++];
	memset(e, 0, sizeof(*e));
	e->ctrl = ctrl;
	snprintf(e->block_path, sizeof(e->block_path), "/dev/%.32s", name);
	/* The kernel names the generic device of nvmeXnY ngXnY (nvme_ns_add_cdev). */
	snprintf(e->generic_path, sizeof(e->generic_path), "/dev/ng%.32s", name + 4);
	snprintf(path, sizeof(path), "/sys/block/%.32s/nsid", name);
	if (sysfs_u64(path, &v))
		e->nsid = (uint32_t)v;
	snprintf(path, sizeof(path), "/sys/block/%.32s/queue/logical_block_size", name);
	if (sysfs_u64(path, &v))
		e->block_bytes = (uint32_t)v;
	snprintf(path, sizeof(path), "/sys/block/%.32s/size", name);
	if (sysfs_u64(path, &v))
		e->size_bytes = v * 512;	/* sysfs counts 512-byte sectors, whatever the LBA size. */
	e->identify_err = -ENODEV;
	snprintf(path, sizeof(path), "/sys/block/%.32s/queue/fua", name);
	e->fua = sysfs_u64(path, &v) && v == 1;
	snprintf(path, sizeof(path), "/sys/block/%.32s/queue/io_poll", name);
	e->io_poll = sysfs_u64(path, &v) && v == 1;
	snprintf(path, sizeof(path), "/sys/block/%.32s/queue/max_hw_sectors_kb", name);
	if (sysfs_u64(path, &v) && v < (1u << 22))
		e->kernel_max_bytes = (uint32_t)(v * 1024);
	if (access(e->generic_path, F_OK))
		e->generic_path[0] = '\0';

	if (!e->generic_path[0]) {
		e->open_err = -ENOENT;
		return 0;
	}
	/* What this process may do with the ng device: the open itself is the test. */
	fd = open(e->generic_path, O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		e->access = URT_NVME_ACCESS_RW;
	} else {
		e->open_err = -errno;
		fd = open(e->generic_path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0)
			e->access = URT_NVME_ACCESS_RO;
	}
	if (fd < 0) {
		e->identify_err = e->open_err;
		return 0;
	}
	ns_identify(e, fd);
	/* A controller /dev/nvmeX did not answer (not root): ask through the namespace. */
	ctrl_identify(&l->ctrl[ctrl], fd);
	close(fd);
	return 0;
}

static int by_ctrl_name(const void *a, const void *b)
{
	const struct urt_nvme_ctrl_entry *x = a, *y = b;
	size_t lx = strlen(x->name), ly = strlen(y->name);

	/* nvme2 before nvme10. */
	return lx != ly ? (lx < ly ? -1 : 1) : strcmp(x->name, y->name);
}

static int by_ctrl_nsid(const void *a, const void *b)
{
	const struct urt_nvme_ns_entry *x = a, *y = b;

	if (x->ctrl != y->ctrl)
		return x->ctrl < y->ctrl ? -1 : 1;
	return x->nsid < y->nsid ? -1 : x->nsid > y->nsid;
}

/* Sort controllers by name and namespaces by controller and nsid, keeping ns->ctrl right. */
static void list_sort(struct urt_nvme_list *l)
{
	char (*names)[32];

	if (l->nctrl == 0)
		return;	/* Nothing to sort (and no array: qsort must not see NULL). */
	names = malloc(l->nctrl * sizeof(*names));
	if (!names)
		return;	/* Unsorted but consistent. */
	for (unsigned i = 0; i < l->nctrl; i++)
		memcpy(names[i], l->ctrl[i].name, sizeof(names[i]));
	qsort(l->ctrl, l->nctrl, sizeof(*l->ctrl), by_ctrl_name);
	for (unsigned i = 0; i < l->nns; i++)
		for (unsigned j = 0; j < l->nctrl; j++)
			if (strcmp(l->ctrl[j].name, names[l->ns[i].ctrl]) == 0) {
				l->ns[i].ctrl = j;
				break;
			}
	if (l->nns)
		qsort(l->ns, l->nns, sizeof(*l->ns), by_ctrl_nsid);
	free(names);
}

/* Add the n namespaces named in ents (from libnvme's sysfs filters) and free ents. */
static int scan_dirents(struct scan *s, unsigned ctrl, int n, struct dirent **ents)
{
	int ret = 0;

	for (int i = 0; i < n; i++) {
		if (!ret)
			ret = ns_add(s, ctrl, ents[i]->d_name);
		free(ents[i]);
	}
	if (n > 0)
		free(ents);
	return ret;
}

static int scan_ctrl(struct scan *s, nvme_ctrl_t c)
{
	struct urt_nvme_ctrl_entry *e = ctrl_add(s, c);
	struct dirent **ents = NULL;
	unsigned idx;
	nvme_ns_t n;
	int fd, ret;

	if (!e)
		return -ENOMEM;
	idx = (unsigned)(e - s->list->ctrl);
	/* The controller device answers admin commands for root. */
	fd = open(e->path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ctrl_identify(e, fd);
		close(fd);
	} else {
		e->identify_err = -errno;
		e->coalesce_err = -errno;
	}
	nvme_ctrl_for_each_ns(c, n) {
		ret = ns_add(s, idx, nvme_ns_get_name(n));
		if (ret)
			return ret;
	}
	ret = nvme_scan_ctrl_namespaces(c, &ents);	/* Before ents is read: C leaves argument order open. */
	return scan_dirents(s, idx, ret, ents);
}

URT_API int urt_nvme_list(struct urt_nvme_list **out)
{
	struct scan s = { 0 };
	nvme_root_t r;
	nvme_host_t h;
	nvme_subsystem_t sub;
	nvme_ctrl_t c;
	nvme_ns_t n;
	int ret = 0;

	urt_clear_error();
	*out = NULL;
	s.list = calloc(1, sizeof(*s.list));
	if (!s.list)
		return -ENOMEM;
	/* libnvme logs to stderr at its default level; only its critical messages may reach the user. */
	r = nvme_create_root(NULL, LOG_CRIT);
	if (!r) {
		ret = errno ? -errno : -ENOMEM;
		urt_set_error("libnvme: nvme_create_root: %s", strerrordesc_np(-ret));
		free(s.list);
		return ret;
	}
	if (nvme_scan_topology(r, NULL, NULL) < 0 && errno != ENOENT) {
		/* No /sys/class/nvme at all is an empty machine, not an error. */
		ret = errno ? -errno : -EIO;
		urt_set_error("libnvme: nvme_scan_topology: %s", strerrordesc_np(-ret));
		goto out;
	}
	nvme_for_each_host(r, h) {
		nvme_for_each_subsystem(h, sub) {
			nvme_subsystem_for_each_ctrl(sub, c) {
				ret = scan_ctrl(&s, c);
				if (ret)
					goto out;
			}
			/* Multipath heads belong to the subsystem: list them under its first controller. */
			c = nvme_subsystem_first_ctrl(sub);
			if (!c)
				continue;
			{
				struct urt_nvme_ctrl_entry *e = ctrl_add(&s, c);
				struct dirent **ents = NULL;
				unsigned idx;

				if (!e) {
					ret = -ENOMEM;
					goto out;
				}
				idx = (unsigned)(e - s.list->ctrl);
				nvme_subsystem_for_each_ns(sub, n) {
					ret = ns_add(&s, idx, nvme_ns_get_name(n));
					if (ret)
						goto out;
				}
				ret = nvme_scan_subsystem_namespaces(sub, &ents);
				ret = scan_dirents(&s, idx, ret, ents);
				if (ret)
					goto out;
			}
		}
	}
	list_sort(s.list);
out:
	nvme_free_tree(r);
	if (ret) {
		if (ret == -ENOMEM)
			urt_set_error("out of memory while listing NVMe devices");
		urt_nvme_list_free(s.list);
		return ret;
	}
	*out = s.list;
	return 0;
}

URT_API void urt_nvme_list_free(struct urt_nvme_list *list)
{
	if (!list)
		return;
	free(list->ctrl);
	free(list->ns);
	free(list);
}
