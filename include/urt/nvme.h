/**
 * @file
 * NVMe specifics of the passthrough backend: the exact status of a failed
 * command, the controllers and namespaces of this machine, and the
 * controller's interrupt coalescing (Feature 08h).
 *
 * Errors: a passthrough op that the device fails completes with the errno
 * the Linux NVMe driver gives for the same status on the block path
 * (docs/passthru.md has the table: a media error is -ENODATA, an LBA out of
 * range -EREMOTEIO, Capacity Exceeded -ENOSPC, ...).  The status itself
 * stays readable from the completed op:
 *
 *     static void read_done(struct urt_io *io, int res, void *arg)
 *     {
 *         struct urt_nvme_status st;
 *
 *         if (res < 0 && urt_io_nvme_status(io, &st) == 0)
 *             fprintf(stderr, "%s\n", urt_nvme_status_str(&st, buf, sizeof(buf)));
 *     }
 *
 * Discovery goes through libnvme's topology scan (nvme_scan_topology) and
 * sysfs; `urbench --list` prints it.
 */
#ifndef URT_NVME_H
#define URT_NVME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "urt/common.h"

URT_BEGIN_DECLS

struct urt_io;

/** The NVMe completion status of a command, taken apart. */
struct urt_nvme_status {
	uint16_t raw;		/**< Status field, phase tag dropped: SC 0-7, SCT 8-10, CRD 11-12, More 13, DNR 14. */
	uint8_t sc;		/**< Status code. */
	uint8_t sct;		/**< Status code type: 0 generic, 1 command specific, 2 media, 3 path, 7 vendor. */
	uint8_t crd;		/**< Command retry delay: 0 none, 1-3 selects the controller's CRDT1-3. */
	bool more;		/**< More information in the Error Information log page. */
	bool dnr;		/**< Do not retry: the same command will fail again. */
	uint8_t opcode;		/**< The command's opcode (NVM set: 00h Flush, 01h Write, 02h Read, 08h Write
				 * Zeroes, 09h Dataset Management). */
};

/**
 * The NVMe status of io's last device command, after its callback ran.
 * 0 and *st filled when that command completed with a non-zero NVMe status
 * (the op failed, or was retried and failed again); -ENOENT when it did not
 * (success, a kernel error without an NVMe status such as -EFAULT, a
 * deadline that answered first, or not a passthrough op).  Any thread that
 * owns io.
 */
URT_API int urt_io_nvme_status(const struct urt_io *io, struct urt_nvme_status *st);

/** Fill st from a raw status field and the command's opcode. */
URT_API void urt_nvme_status_decode(uint16_t raw, uint8_t opcode, struct urt_nvme_status *st);

/**
 * Formats st into buf, for example "Unrecovered Read Error (SCT 2h, SC 81h,
 * CRD 0, More 0, DNR 0; Read)", and returns buf.
 */
URT_API const char *urt_nvme_status_str(const struct urt_nvme_status *st, char *buf, size_t len);

/** Interrupt Coalescing (Feature 08h), controller-wide. */
struct urt_nvme_coalesce {
	uint8_t threshold;	/**< Aggregation threshold: completions per interrupt, zero-based (0 = 1). */
	uint8_t time_100us;	/**< Aggregation time in units of 100 µs; 0 = no coalescing. */
};

/**
 * Read the controller's current Feature 08h through libnvme
 * (nvme_get_features_irq_coalesce).  path is the controller (/dev/nvme0) or
 * one of its generic namespace devices (/dev/ng0n1).  0, or -errno with
 * urt_last_error() set: -EACCES/-EPERM without CAP_SYS_ADMIN (the kernel lets
 * unprivileged users send no Get Features), -EOPNOTSUPP/-EIO when the
 * controller rejects it.
 */
URT_API int urt_nvme_coalesce_get(const char *path, struct urt_nvme_coalesce *out);

/** Set Feature 08h (not saved across power loss); errors as urt_nvme_coalesce_get. */
URT_API int urt_nvme_coalesce_set(const char *path, const struct urt_nvme_coalesce *c);

/** One LBA format of a namespace. */
struct urt_nvme_lbaf {
	uint32_t data_bytes;	/**< Logical block data size. */
	uint16_t meta_bytes;	/**< Metadata bytes per block. */
	uint8_t rel_perf;	/**< Relative performance: 0 best .. 3 degraded. */
};

#define URT_NVME_LBAF_MAX 64	/**< NVMe allows 64 LBA formats. */

/** Whether this process may open a generic namespace device. */
enum urt_nvme_access {
	URT_NVME_ACCESS_NONE = 0,	/**< open() failed even read-only (see open_err). */
	URT_NVME_ACCESS_RO,		/**< Read-only: reads, no writes. */
	URT_NVME_ACCESS_RW,		/**< Read-write. */
};

/** One namespace of urt_nvme_list. */
struct urt_nvme_ns_entry {
	unsigned ctrl;			/**< Index of its controller in urt_nvme_list.ctrl. */
	uint32_t nsid;			/**< Namespace id. */
	char generic_path[64];		/**< "/dev/ng0n1", the passthrough device ("" if none). */
	char block_path[64];		/**< "/dev/nvme0n1" ("" if the kernel made no block device). */
	uint64_t size_bytes;		/**< Capacity. */
	uint32_t block_bytes;		/**< Logical block size in use. */
	enum urt_nvme_access access;	/**< What open() of generic_path allows this process. */
	int open_err;			/**< -errno of the refused open (0 with ACCESS_RW). */
	bool identified;		/**< Identify Namespace answered: the fields below are valid. */
	int identify_err;		/**< Why not (-errno), when identified is false. */
	unsigned nlbaf;			/**< LBA formats in lbaf. */
	unsigned lbaf_in_use;		/**< Index of the format FLBAS selects. */
	struct urt_nvme_lbaf lbaf[URT_NVME_LBAF_MAX];	/**< The formats. */
	bool fua;			/**< The kernel sends FUA writes as such (queue/fua). */
	bool io_poll;			/**< IOPOLL works: the driver has poll queues (queue/io_poll). */
	uint32_t kernel_max_bytes;	/**< The kernel's transfer limit (max_hw_sectors_kb), 0 unknown. */
};

/** One controller of urt_nvme_list. */
struct urt_nvme_ctrl_entry {
	char name[32];			/**< "nvme0". */
	char path[64];			/**< "/dev/nvme0". */
	char transport[16];		/**< "pcie", "tcp", ... */
	char model[48];			/**< Model number. */
	char serial[32];		/**< Serial number. */
	char firmware[16];		/**< Firmware revision. */
	bool identified;		/**< Identify Controller answered: the fields below are valid. */
	int identify_err;		/**< Why not (-errno), when identified is false. */
	uint32_t mdts_bytes;		/**< Maximum data transfer size (MPSMIN taken as 4 KiB), 0 = no limit. */
	bool vwc;			/**< A volatile write cache (a flush is needed for durability). */
	uint16_t oncs;			/**< Optional NVM command support bits. */
	uint16_t crdt[3];		/**< Command retry delay times CRDT1-3, units of 100 ms. */
	int poll_queues;		/**< nvme module parameter poll_queues, -1 unknown. */
	bool coalesce_known;		/**< Feature 08h could be read (needs CAP_SYS_ADMIN). */
	int coalesce_err;		/**< Why not (-errno), when coalesce_known is false. */
	struct urt_nvme_coalesce coalesce;/**< Its current value. */
};

/** Every NVMe controller and namespace of this machine. */
struct urt_nvme_list {
	unsigned nctrl;			/**< Entries in ctrl. */
	struct urt_nvme_ctrl_entry *ctrl;/**< Controllers, by name. */
	unsigned nns;			/**< Entries in ns. */
	struct urt_nvme_ns_entry *ns;	/**< Namespaces, by controller and nsid. */
};

/**
 * Scan the NVMe topology (libnvme's nvme_scan_topology and sysfs) and
 * Identify what this process may: 0 and *out (free it with
 * urt_nvme_list_free), an empty list when the machine has no NVMe
 * controller; -ENOMEM, or -errno when the scan itself fails.
 */
URT_API int urt_nvme_list(struct urt_nvme_list **out);

/** Free a list from urt_nvme_list (NULL is fine). */
URT_API void urt_nvme_list_free(struct urt_nvme_list *list);

/** Print list for people (the format of `urbench --list`); 0 or -EIO on a write error. */
URT_API int urt_nvme_list_print(const struct urt_nvme_list *list, FILE *f);

URT_END_DECLS

#endif /* URT_NVME_H */
