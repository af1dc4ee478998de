/*
 * Internal interface of the NVMe passthrough backend (src/passthru).
 *
 * dev_passthru.c drives I/O; nvme_id.c finds out what the namespace and
 * its controller are (Identify through libnvme, limits through sysfs);
 * nvme_reset.c resets the controller for dev/health.c's recovery.
 */
#ifndef URT_PASSTHRU_PASSTHRU_H
#define URT_PASSTHRU_PASSTHRU_H

#include <stdbool.h>
#include <stdint.h>

#include "urt/dev.h"

struct urt_backend;

/* The backend table, listed in src/backends.c. */
extern const struct urt_backend urt_backend_passthru;

/* NVM command set opcodes the backend sends. */
enum pt_io_opcode {
	PT_IO_FLUSH = 0x00,
	PT_IO_WRITE = 0x01,
	PT_IO_READ = 0x02,
	PT_IO_WRITE_ZEROES = 0x08,
	PT_IO_DSM = 0x09,
};

/* Statuses (SCT << 8 | SC) that mean the driver aborted the command: its timeout expired. */
#define PT_STATUS_ABORT_REQUESTED 0x007u	/* Command Abort Requested (after the driver's Abort). */
#define PT_STATUS_HOST_ABORTED 0x371u		/* Command Aborted By Host (set by Linux on a reset). */

#define NVME_RW_FUA (1u << 30)		/* CDW12 bit 30 of Read/Write: force unit access. */
#define NVME_DSM_ATTR_DEALLOCATE (1u << 2)	/* CDW11 bit 2 of DSM: deallocate the ranges. */
#define NVME_NLB_MAX 65536u		/* CDW12 NLB is 16 bits, zero-based. */

/* One range of Dataset Management (NVM Command Set, figure 40). */
struct nvme_dsm_range_le {
	uint32_t cattr;		/* Context attributes (0: none). */
	uint32_t nlb;		/* Length in logical blocks (not zero-based). */
	uint64_t slba;		/* Starting LBA. */
};
_Static_assert(sizeof(struct nvme_dsm_range_le) == 16, "DSM range is 16 bytes on the wire");

/* What identify found beyond struct urt_dev_info. */
struct pt_geometry {
	uint32_t lba_shift;	/* log2 of the LBA data size. */
	uint32_t mdts_bytes;	/* MDTS limit in bytes, 0 = none reported. */
	uint32_t kernel_max_bytes;/* max_hw_sectors_kb and max_segments limit, 0 = unknown. */
	uint16_t crdt[3];	/* CRDT1-3 of Identify Controller: retry delays in 100 ms units. */
	char ctrl_name[32];	/* "nvme0": the controller behind the namespace. */
	char blk_name[32];	/* "nvme0n1": the block device of the same namespace. */
};

/* The backend's state of one open device (dev->priv). */
struct pt_dev {
	struct pt_geometry geo;	/* Identify results beyond urt_dev_info. */
	uint32_t timeout_ms;	/* Per-command timeout, 0 = the driver's default. */
	char name[32];		/* "ng0n1". */
};

/*
 * The backend scratch words of a request (struct urt_req be[]) it uses:
 * be[0..1] hold a DSM range while the command is in flight, be[PT_BE_CMD]
 * the opcode of the command in flight (bits 16-23) and, once it completed,
 * its NVMe status (bits 0-14), as PT_IO_STATUS encodes them.
 */
enum { PT_BE_CMD = 5 };

/*
 * urt_io.dev_status of a passthrough op (urt_io_nvme_status decodes it):
 * bit 31 says an NVMe status is present, bits 16-23 are the opcode, bits
 * 0-14 the status field.
 */
#define PT_IO_STATUS_VALID (1u << 31)
#define PT_IO_STATUS(status, opcode) (PT_IO_STATUS_VALID | (uint32_t)(opcode) << 16 | ((uint32_t)(status) & 0x7fffu))

/*
 * Set Interrupt Coalescing (Feature 08h) through fd (controller or ng
 * device); 0 or -errno with urt_set_error() naming path.
 */
int nvme_coalesce_apply(int fd, const char *path, uint8_t threshold, uint8_t time_100us);

/*
 * The name of the nvme-generic device behind path ("ng0n1") if path is a
 * character device of class nvme-generic; false otherwise.
 */
bool nvme_id_generic_name(const char *path, char *name, unsigned len);

/*
 * Identify the namespace open on fd (name from nvme_id_generic_name) and
 * fill in: size, block and alignment sizes, max_io_bytes, cache, FUA,
 * Write Zeroes and deallocate support, atomic write size, polling, nsid.
 * 0 or -errno with urt_set_error() describing what failed.
 */
int nvme_id_probe(int fd, const char *path, const char *name, struct urt_dev_info *in,
		  struct pt_geometry *geo);

/*
 * nvme_reset.c: reset controller ctrl ("nvme0"), the one behind the
 * namespace at path (for messages), and wait at most wait_ms until it is
 * live again.  0, or -errno with urt_set_error() saying what failed.
 */
int nvme_reset_wait(const char *ctrl, const char *path, uint32_t wait_ms);

#endif /* URT_PASSTHRU_PASSTHRU_H */
