/**
 * @file
 * urt devices: one interface over every backend.
 *
 *   file      regular file or block device through io_uring (O_DIRECT default)
 *   passthru  NVMe generic char device /dev/ngXnY through IORING_OP_URING_CMD
 *   sim       in-memory SSD with a volatile write cache (tests, see sim.h)
 *   psync     pread/pwrite in the reactor thread (benchmark baseline)
 *
 * urt_dev_open picks the backend from the path (or opts->backend).  Every
 * backend is driven by the same ops in io.h, so callers never change when a
 * backend is added.
 *
 * Threading: open/close from any thread while no I/O on the device is in
 * flight; a device may be used by every core of a runtime at once.
 */
#ifndef URT_DEV_H
#define URT_DEV_H

#include <stdbool.h>
#include <stdint.h>

#include "urt/common.h"

URT_BEGIN_DECLS

struct urt_dev;
struct urt_rt;

/** How to open a device; start from urt_dev_opts_default(). */
struct urt_dev_opts {
	const char *backend;	/**< NULL = choose by path; or "file", "passthru", "psync". */
	bool direct;		/**< O_DIRECT (default true; false for the page cache). */
	bool readonly;		/**< Open read-only. */
	bool create;		/**< Create a regular file when missing. */
	uint64_t size_bytes;	/**< With create: extend the file to this size. */
	uint32_t nvme_timeout_ms;/**< passthru: device-side command timeout, 0 = driver default. */
};

/** What the backend found about a device; urt_dev_info() returns it. */
struct urt_dev_info {
	const char *backend;	/**< Name of the backend. */
	uint64_t size_bytes;	/**< Capacity. */
	uint32_t block_bytes;	/**< Logical block: the unit of offsets and lengths. */
	uint32_t phys_block_bytes;/**< Physical block (atomic write unit if unknown). */
	uint32_t mem_align;	/**< Required buffer address alignment (1 = none). */
	uint32_t off_align;	/**< Required offset and length alignment (1 = none). */
	uint32_t max_io_bytes;	/**< Largest single transfer; larger ops are split. */
	uint32_t atomic_write_bytes;/**< Writes up to this size are not torn (AWUPF); 0 unknown. */
	bool direct;		/**< Opened with O_DIRECT (or passthrough: always). */
	bool volatile_cache;	/**< A write cache that a flush must drain. */
	bool fua;		/**< FUA writes are native (otherwise emulated with a flush). */
	bool poll_capable;	/**< I/O can be completed by IOPOLL. */
	bool write_zeroes;	/**< URT_OP_WRITE_ZEROES is supported. */
	bool deallocate;	/**< URT_OP_DEALLOCATE is supported. */
	bool is_blockdev;	/**< A block device (or NVMe namespace). */
	bool is_nvme;		/**< NVMe passthrough. */
	uint32_t nsid;		/**< NVMe namespace id (passthrough). */
};

/** Fill *opts with the defaults: backend by path, O_DIRECT, read-write. */
URT_API void urt_dev_opts_default(struct urt_dev_opts *opts);

/**
 * Open path.  Returns 0 or a negative errno with urt_last_error() set:
 * -ENOENT/-EACCES for a bad path, -EINVAL when O_DIRECT is impossible on the
 * file system, -ENODEV when a requested backend does not handle the path.
 */
URT_API int urt_dev_open(const char *path, const struct urt_dev_opts *opts, struct urt_dev **out);

/** Close; unregisters the device from its runtime first.  No I/O may be in flight. */
URT_API void urt_dev_close(struct urt_dev *dev);

/** The device's properties; valid until urt_dev_close.  Any thread. */
URT_API const struct urt_dev_info *urt_dev_info(const struct urt_dev *dev);

/**
 * The sticky error of the device: after a failed flush or FUA write the data
 * on it is in an unknown state, so every later write and flush returns this
 * error (fsyncgate).  0 when healthy.
 */
URT_API int urt_dev_error(const struct urt_dev *dev);

/**
 * Register the device's file descriptor in every core's fixed-file table of
 * rt, so that its ops carry IOSQE_FIXED_FILE.  Call it from outside the
 * runtime or from a fiber.  -ENFILE when the tables are full, -EBUSY when
 * the device is registered with another runtime.
 */
URT_API int urt_dev_register(struct urt_rt *rt, struct urt_dev *dev);
/** Undo urt_dev_register (same threading rules); 0 when not registered. */
URT_API int urt_dev_unregister(struct urt_dev *dev);

URT_END_DECLS

#endif /* URT_DEV_H */
