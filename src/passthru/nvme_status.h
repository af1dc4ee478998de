/*
 * NVMe completion status: names, the retry rule, and the bits of the
 * status field.
 *
 * A passthrough CQE with res > 0 carries the NVMe status field shifted
 * right by one (the kernel drops the phase tag): bits 0-7 status code (SC),
 * bits 8-10 status code type (SCT), bits 11-12 command retry delay (CRD),
 * bit 13 more, bit 14 do not retry (DNR).  The caller gets the errno the
 * Linux NVMe driver gives for the same status on the block path
 * (nvme_status_errno), and the exact status through urt_io_nvme_status
 * (include/urt/nvme.h), so nothing is lost on the way to the caller.
 */
#ifndef URT_PASSTHRU_NVME_STATUS_H
#define URT_PASSTHRU_NVME_STATUS_H

#include <stdbool.h>
#include <stdint.h>

#define NVME_STATUS_SC(s) ((unsigned)(s) & 0xffu)		/* Status code. */
#define NVME_STATUS_SCT(s) (((unsigned)(s) >> 8) & 0x7u)	/* Status code type. */
#define NVME_STATUS_CRD(s) (((unsigned)(s) >> 11) & 0x3u)	/* Command retry delay index. */
#define NVME_STATUS_MORE (1u << 13)				/* More information in a log page. */
#define NVME_STATUS_DNR (1u << 14)				/* The same command will fail again. */
#define NVME_STATUS_CODE_MASK 0x7ffu				/* SCT and SC together. */

/* Status code types. */
enum pt_sct {
	PT_SCT_GENERIC = 0,
	PT_SCT_CMD_SPECIFIC = 1,
	PT_SCT_MEDIA = 2,
	PT_SCT_PATH = 3,
	PT_SCT_VENDOR = 7,
};

/*
 * The name of a status ("Unrecovered Read Error"), looking only at SCT and
 * SC; NULL for a status the table does not know.  urt_strerror calls this
 * (src/base/strerror.c holds a weak reference to it).
 */
const char *nvme_status_name(uint16_t status);

/* Whether the name table is strictly sorted, which the binary search needs. */
bool nvme_status_table_sorted(void);

/* The name of a status code type ("Media and Data Integrity Errors"). */
const char *nvme_sct_name(unsigned sct);

/*
 * The -errno of a non-zero status field: the Linux NVMe driver's status ->
 * blk_status table (nvme_error_status in drivers/nvme/host/core.c) followed
 * by the block layer's blk_status -> errno table (blk_errors in
 * block/blk-core.c), so a passthrough op fails with the errno a block
 * device read or write of the same namespace would give.  Only SCT and SC
 * count; CRD, More and DNR do not change it.
 */
int nvme_status_errno(uint16_t status);

/* Whether the command may succeed if sent again: the DNR bit is clear. */
bool nvme_status_retryable(uint16_t status);

/*
 * The delay the controller asks for before a retry: CRD 0 is none, CRD n
 * (1..3) is CRDTn of Identify Controller, in units of 100 ms.
 */
uint64_t nvme_status_retry_delay_ns(uint16_t status, const uint16_t crdt[3]);

/* Formats "Unrecovered Read Error (SCT 2h, SC 81h, DNR 0)" into buf; returns buf. */
const char *nvme_status_format(uint16_t status, char *buf, unsigned len);

#endif /* URT_PASSTHRU_NVME_STATUS_H */
