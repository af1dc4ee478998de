/*
 * src/runtime/dev: devices.  dev.c (this file): urt_dev_open's dispatch to a
 * backend and the registry of fixed files; backend.h: the interface every
 * backend implements; health.c: recovery from command timeouts (retry,
 * reset, offline), shared by every backend; file.c, psync.c, sim.c: one backend each.  Backends
 * from other folders (src/passthru) are listed in src/backends.c, never
 * named here.  May include src/base and src/runtime.
 *
 * Device dispatch and the per-runtime registry of fixed files.
 *
 * urt_dev_open picks a backend from urt_backends[] (src/backends.c: by
 * name, or the first whose match() accepts the path, file last) and lets it fill the device.
 * Registration puts the device's fd in the same slot of every core's
 * fixed-file table, on every ring; rings opened later copy the registry.
 */
#include <errno.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/dev/backend.h"
#include "runtime/core.h"

URT_API void urt_dev_opts_default(struct urt_dev_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->direct = true;
}

URT_API int urt_dev_open(const char *path, const struct urt_dev_opts *opts, struct urt_dev **out)
{
	struct urt_dev_opts def;
	const struct urt_backend *be = NULL;
	struct urt_dev *dev;
	struct stat st;
	int ret;

	urt_clear_error();
	if (!opts) {
		urt_dev_opts_default(&def);
		opts = &def;
	}
	if (!path || !*path) {
		urt_set_error("empty device path");
		return -EINVAL;
	}
	for (unsigned i = 0; i < urt_backends_count; i++) {
		if (opts->backend ? strcmp(opts->backend, urt_backends[i]->name) == 0
				  : urt_backends[i]->match && urt_backends[i]->match(path)) {
			be = urt_backends[i];
			break;
		}
	}
	if (!be) {
		urt_set_error("unknown backend \"%s\" (file, passthru, sim, psync)", opts->backend);
		return -ENODEV;
	}
	if (opts->nvme_coalesce && strcmp(be->name, "passthru") != 0) {
		urt_set_error("%s: nvme_coalesce (Interrupt Coalescing) applies to NVMe generic devices "
			      "(/dev/ngXnY) only, not to the %s backend", path, be->name);
		return -EINVAL;
	}
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	dev->be = be;
	dev->fd = -1;
	atomic_init(&dev->slot, -1);
	dev->readonly = opts->readonly;
	snprintf(dev->path, sizeof(dev->path), "%s", path);
	ret = be->open(dev, path, opts);
	if (ret) {
		free(dev);
		return ret;
	}
	if (dev->fd >= 0 && fstat(dev->fd, &st) == 0) {
		dev->info.file_dev = (uint64_t)st.st_dev;
		dev->info.file_ino = (uint64_t)st.st_ino;
	}
	health_init(dev, opts->health);
	dev->deadline_abort = opts->deadline_abort;
	dev->info.backend = be->name;
	if (!dev->info.mem_align)
		dev->info.mem_align = 1;
	if (!dev->info.off_align)
		dev->info.off_align = 1;
	if (!dev->info.max_io_bytes)
		dev->info.max_io_bytes = 1u << 30;
	dev_fast_init(dev);
	if (opts->sched && opts->sched->policy != URT_SCHED_NONE) {
		ret = urt_dev_sched_set(dev, opts->sched);
		if (ret) {
			health_exit(dev);
			be->close(dev);
			free(dev);
			return ret;
		}
	}
	*out = dev;
	return 0;
}

URT_API void urt_dev_close(struct urt_dev *dev)
{
	if (!dev)
		return;
	if (dev->reg_rt)
		urt_dev_unregister(dev);
	sched_dev_free(dev);
	health_exit(dev);	/* Waits for a reset under way (health.c H2). */
	dev->be->close(dev);
	free(dev);
}

URT_API const struct urt_dev_info *urt_dev_info(const struct urt_dev *dev)
{
	return &dev->info;
}

URT_API int urt_dev_error(const struct urt_dev *dev)
{
	return atomic_load(&((struct urt_dev *)dev)->error);
}

void dev_set_sticky(struct urt_dev *dev, int err)
{
	int zero = 0;

	if (!dev)
		return;
	atomic_compare_exchange_strong(&dev->error, &zero, err);
	/* Every later op goes through io.c's full checks, which refuse writes now. */
	atomic_store_explicit(&dev->rw_fast, 0, memory_order_relaxed);
}

static bool is_pow2(uint32_t x)
{
	return x && !(x & (x - 1));
}

/*
 * Precompute what urt_io_submit's fast path reads (backend.h, struct
 * urt_dev): which of READ and WRITE need no check beyond length and
 * alignment, the alignment masks and the length bound.  Called once the
 * backend has filled dev->info.
 */
void dev_fast_init(struct urt_dev *dev)
{
	const struct urt_backend *be = dev->be;
	const struct urt_dev_info *in = &dev->info;
	uint8_t fast = 0;

	dev->mem_mask = in->direct ? in->mem_align - 1 : 0;
	dev->off_mask = in->direct ? in->off_align - 1 : 0;
	dev->rw_len_max = in->max_io_bytes < (1ull << 31) ? in->max_io_bytes : 1ull << 31;
	if (be->plain_rw && !be->validate && !be->complete && !be->needs_big_sqe && !in->poll_capable &&
	    (!in->direct || (is_pow2(in->mem_align) && is_pow2(in->off_align)))) {
		fast = 1u << URT_OP_READ;
		if (!dev->readonly)
			fast |= 1u << URT_OP_WRITE;
	}
	atomic_store_explicit(&dev->rw_fast, fast, memory_order_relaxed);
}

int dev_fixed_slot(const struct urt_dev *dev, const struct urt_core *c)
{
	if (dev->reg_rt != c->rt)
		return -1;
	return atomic_load_explicit(&((struct urt_dev *)dev)->slot, memory_order_acquire);
}

int dev_registry_ring_init(struct urt_core *c, struct io_uring *ring)
{
	struct urt_rt *rt = c->rt;
	int ret = 0;

	pthread_mutex_lock(&rt->dev_lock);
	for (unsigned i = 0; i < rt->opts.files_max && !ret; i++) {
		if (!rt->devs[i])
			continue;
		ret = io_uring_register_files_update(ring, i, &rt->devs[i]->fd, 1);
		ret = ret < 0 ? ret : 0;
	}
	pthread_mutex_unlock(&rt->dev_lock);
	return ret;
}

struct reg_msg {
	unsigned slot;
	int fd;		/* The fd, or -1 to clear the slot. */
};

/* Runs on every core: point slot m->slot of each of its rings at m->fd. */
static int reg_on_core(void *arg)
{
	struct reg_msg *m = arg;
	struct urt_core *c = core_self();
	int err = 0;

	for (int k = 0; k < RING_KINDS; k++) {
		int ret;

		if (!c->rings[k].ready)
			continue;
		ret = io_uring_register_files_update(&c->rings[k].ring, m->slot, &m->fd, 1);
		if (ret < 0 && !err)
			err = ret;
	}
	return err;
}

URT_API int urt_dev_register(struct urt_rt *rt, struct urt_dev *dev)
{
	struct reg_msg m = { .fd = dev->fd };
	unsigned slot;
	int ret;

	if (dev->reg_rt)
		return dev->reg_rt == rt ? 0 : -EBUSY;
	if (dev->fd < 0)
		return 0;	/* Nothing to register (in-memory backends). */
	pthread_mutex_lock(&rt->dev_lock);
	for (slot = 0; slot < rt->opts.files_max; slot++)
		if (!rt->devs[slot])
			break;
	if (slot == rt->opts.files_max) {
		pthread_mutex_unlock(&rt->dev_lock);
		urt_set_error("all %u fixed-file slots are in use (files_max)", rt->opts.files_max);
		return -ENFILE;
	}
	rt->devs[slot] = dev;
	pthread_mutex_unlock(&rt->dev_lock);
	m.slot = slot;
	ret = urt_core_run_all(rt, reg_on_core, &m);
	if (ret) {
		m.fd = -1;
		urt_core_run_all(rt, reg_on_core, &m);
		pthread_mutex_lock(&rt->dev_lock);
		rt->devs[slot] = NULL;
		pthread_mutex_unlock(&rt->dev_lock);
		urt_set_error("registering %s as a fixed file: %s", dev->path, urt_strerror(ret));
		return ret;
	}
	dev->reg_rt = rt;
	/* Publish the slot only once every core has it. */
	atomic_store_explicit(&dev->slot, (int)slot, memory_order_release);
	return 0;
}

URT_API int urt_dev_unregister(struct urt_dev *dev)
{
	struct urt_rt *rt = dev->reg_rt;
	int slot = atomic_load(&dev->slot);
	struct reg_msg m = { .fd = -1 };

	if (!rt || slot < 0)
		return 0;
	atomic_store(&dev->slot, -1);
	m.slot = (unsigned)slot;
	urt_core_run_all(rt, reg_on_core, &m);
	pthread_mutex_lock(&rt->dev_lock);
	rt->devs[slot] = NULL;
	pthread_mutex_unlock(&rt->dev_lock);
	dev->reg_rt = NULL;
	return 0;
}

void dev_registry_drop(struct urt_rt *rt)
{
	for (unsigned i = 0; i < rt->opts.files_max; i++) {
		struct urt_dev *dev = rt->devs[i];

		if (!dev)
			continue;
		atomic_store(&dev->slot, -1);
		dev->reg_rt = NULL;
		rt->devs[i] = NULL;
	}
}

bool dev_blk_ends_before(const struct urt_dev *dev, uint64_t off)
{
	uint64_t size = 0;

	if (!dev->info.is_blockdev || dev->info.is_nvme || dev->fd < 0)
		return false;
	if (ioctl(dev->fd, BLKGETSIZE64, &size) != 0)
		return errno == ENODEV || errno == ENXIO;	/* The disk is gone. */
	return size <= off;
}
