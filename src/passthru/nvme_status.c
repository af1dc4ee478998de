/*
 * NVMe status names (NVM Express Base Specification 2.0, figures 100-104,
 * and the NVM Command Set Specification for the I/O command codes).
 *
 * The table is sorted by (SCT << 8 | SC) so that a lookup is a binary
 * search; nvme_status_name() asserts the order in debug builds and the
 * passthrough tests check it in every build.  Only
 * statuses an I/O path or the Linux driver can produce are listed; any
 * other status still gets its raw SCT and SC printed by
 * urt_nvme_status_str.  The file also holds the status -> errno table
 * (nvme_status_errno), the retry delay (CRD) and the public decoding of
 * an op's status (urt_io_nvme_status).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "passthru/nvme_status.h"
#include "passthru/passthru.h"
#include "urt/dev.h"
#include "urt/io.h"
#include "urt/nvme.h"

struct nvme_status_entry {
	uint16_t code;		/* SCT << 8 | SC. */
	const char *name;	/* Name as the specification spells it. */
};

#define S(sct, sc, name) { (uint16_t)((sct) << 8 | (sc)), name }

static const struct nvme_status_entry status_table[] = {
	/* Generic command status. */
	S(0, 0x00, "Successful Completion"),
	S(0, 0x01, "Invalid Command Opcode"),
	S(0, 0x02, "Invalid Field in Command"),
	S(0, 0x03, "Command ID Conflict"),
	S(0, 0x04, "Data Transfer Error"),
	S(0, 0x05, "Commands Aborted due to Power Loss Notification"),
	S(0, 0x06, "Internal Error"),
	S(0, 0x07, "Command Abort Requested"),
	S(0, 0x08, "Command Aborted due to SQ Deletion"),
	S(0, 0x09, "Command Aborted due to Failed Fused Command"),
	S(0, 0x0a, "Command Aborted due to Missing Fused Command"),
	S(0, 0x0b, "Invalid Namespace or Format"),
	S(0, 0x0c, "Command Sequence Error"),
	S(0, 0x0d, "Invalid SGL Segment Descriptor"),
	S(0, 0x0e, "Invalid Number of SGL Descriptors"),
	S(0, 0x0f, "Data SGL Length Invalid"),
	S(0, 0x10, "Metadata SGL Length Invalid"),
	S(0, 0x11, "SGL Descriptor Type Invalid"),
	S(0, 0x12, "Invalid Use of Controller Memory Buffer"),
	S(0, 0x13, "PRP Offset Invalid"),
	S(0, 0x14, "Atomic Write Unit Exceeded"),
	S(0, 0x15, "Operation Denied"),
	S(0, 0x16, "SGL Offset Invalid"),
	S(0, 0x18, "Host Identifier Inconsistent Format"),
	S(0, 0x19, "Keep Alive Timer Expired"),
	S(0, 0x1a, "Keep Alive Timeout Invalid"),
	S(0, 0x1b, "Command Aborted due to Preempt and Abort"),
	S(0, 0x1c, "Sanitize Failed"),
	S(0, 0x1d, "Sanitize In Progress"),
	S(0, 0x1e, "SGL Data Block Granularity Invalid"),
	S(0, 0x1f, "Command Not Supported for Queue in CMB"),
	S(0, 0x20, "Namespace is Write Protected"),
	S(0, 0x21, "Command Interrupted"),
	S(0, 0x22, "Transient Transport Error"),
	S(0, 0x23, "Command Prohibited by Command and Feature Lockdown"),
	S(0, 0x24, "Admin Command Media Not Ready"),
	S(0, 0x80, "LBA Out of Range"),
	S(0, 0x81, "Capacity Exceeded"),
	S(0, 0x82, "Namespace Not Ready"),
	S(0, 0x83, "Reservation Conflict"),
	S(0, 0x84, "Format In Progress"),
	S(0, 0x85, "Invalid Value Size"),
	S(0, 0x86, "Invalid Key Size"),
	S(0, 0x87, "KV Key Does Not Exist"),
	S(0, 0x88, "Unrecovered Error"),
	S(0, 0x89, "Key Exists"),
	/* Command specific status (admin codes, then NVM command set codes). */
	S(1, 0x00, "Completion Queue Invalid"),
	S(1, 0x01, "Invalid Queue Identifier"),
	S(1, 0x02, "Invalid Queue Size"),
	S(1, 0x03, "Abort Command Limit Exceeded"),
	S(1, 0x05, "Asynchronous Event Request Limit Exceeded"),
	S(1, 0x06, "Invalid Firmware Slot"),
	S(1, 0x07, "Invalid Firmware Image"),
	S(1, 0x08, "Invalid Interrupt Vector"),
	S(1, 0x09, "Invalid Log Page"),
	S(1, 0x0a, "Invalid Format"),
	S(1, 0x0b, "Firmware Activation Requires Conventional Reset"),
	S(1, 0x0c, "Invalid Queue Deletion"),
	S(1, 0x0d, "Feature Identifier Not Saveable"),
	S(1, 0x0e, "Feature Not Changeable"),
	S(1, 0x0f, "Feature Not Namespace Specific"),
	S(1, 0x10, "Firmware Activation Requires NVM Subsystem Reset"),
	S(1, 0x11, "Firmware Activation Requires Controller Level Reset"),
	S(1, 0x12, "Firmware Activation Requires Maximum Time Violation"),
	S(1, 0x13, "Firmware Activation Prohibited"),
	S(1, 0x14, "Overlapping Range"),
	S(1, 0x15, "Namespace Insufficient Capacity"),
	S(1, 0x16, "Namespace Identifier Unavailable"),
	S(1, 0x18, "Namespace Already Attached"),
	S(1, 0x19, "Namespace Is Private"),
	S(1, 0x1a, "Namespace Not Attached"),
	S(1, 0x1b, "Thin Provisioning Not Supported"),
	S(1, 0x1c, "Controller List Invalid"),
	S(1, 0x1d, "Device Self-test In Progress"),
	S(1, 0x1e, "Boot Partition Write Prohibited"),
	S(1, 0x1f, "Invalid Controller Identifier"),
	S(1, 0x20, "Invalid Secondary Controller State"),
	S(1, 0x21, "Invalid Number of Controller Resources"),
	S(1, 0x22, "Invalid Resource Identifier"),
	S(1, 0x23, "Sanitize Prohibited While Persistent Memory Region is Enabled"),
	S(1, 0x24, "ANA Group Identifier Invalid"),
	S(1, 0x25, "ANA Attach Failed"),
	S(1, 0x26, "Insufficient Capacity"),
	S(1, 0x27, "Namespace Attachment Limit Exceeded"),
	S(1, 0x28, "Prohibition of Command Execution Not Supported"),
	S(1, 0x29, "I/O Command Set Not Supported"),
	S(1, 0x2a, "I/O Command Set Not Enabled"),
	S(1, 0x2b, "I/O Command Set Combination Rejected"),
	S(1, 0x2c, "Invalid I/O Command Set"),
	S(1, 0x2d, "Identifier Unavailable"),
	S(1, 0x80, "Conflicting Attributes"),
	S(1, 0x81, "Invalid Protection Information"),
	S(1, 0x82, "Attempted Write to Read Only Range"),
	S(1, 0x83, "Command Size Limit Exceeded"),
	S(1, 0xb8, "Zoned Boundary Error"),
	S(1, 0xb9, "Zone Is Full"),
	S(1, 0xba, "Zone Is Read Only"),
	S(1, 0xbb, "Zone Is Offline"),
	S(1, 0xbc, "Zone Invalid Write"),
	S(1, 0xbd, "Too Many Active Zones"),
	S(1, 0xbe, "Too Many Open Zones"),
	S(1, 0xbf, "Invalid Zone State Transition"),
	/* Media and data integrity errors. */
	S(2, 0x80, "Write Fault"),
	S(2, 0x81, "Unrecovered Read Error"),
	S(2, 0x82, "End-to-end Guard Check Error"),
	S(2, 0x83, "End-to-end Application Tag Check Error"),
	S(2, 0x84, "End-to-end Reference Tag Check Error"),
	S(2, 0x85, "Compare Failure"),
	S(2, 0x86, "Access Denied"),
	S(2, 0x87, "Deallocated or Unwritten Logical Block"),
	S(2, 0x88, "End-to-End Storage Tag Check Error"),
	/* Path related status (0x7x are set by the host, here the Linux driver). */
	S(3, 0x00, "Internal Path Error"),
	S(3, 0x01, "Asymmetric Access Persistent Loss"),
	S(3, 0x02, "Asymmetric Access Inaccessible"),
	S(3, 0x03, "Asymmetric Access Transition"),
	S(3, 0x60, "Controller Pathing Error"),
	S(3, 0x70, "Host Pathing Error"),
	S(3, 0x71, "Command Aborted By Host"),
};

#undef S

#define STATUS_COUNT (sizeof(status_table) / sizeof(status_table[0]))

bool nvme_status_table_sorted(void)
{
	for (size_t i = 1; i < STATUS_COUNT; i++)
		if (status_table[i - 1].code >= status_table[i].code)
			return false;
	return true;
}

const char *nvme_status_name(uint16_t status)
{
	uint16_t code = (uint16_t)(status & NVME_STATUS_CODE_MASK);
	size_t lo = 0, hi = STATUS_COUNT;

	URT_DEBUG_ASSERT(nvme_status_table_sorted());	/* A walk of the whole table. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (status_table[mid].code == code)
			return status_table[mid].name;
		if (status_table[mid].code < code)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const char *nvme_sct_name(unsigned sct)
{
	switch (sct) {
	case PT_SCT_GENERIC:
		return "Generic Command Status";
	case PT_SCT_CMD_SPECIFIC:
		return "Command Specific Status";
	case PT_SCT_MEDIA:
		return "Media and Data Integrity Errors";
	case PT_SCT_PATH:
		return "Path Related Status";
	case PT_SCT_VENDOR:
		return "Vendor Specific";
	default:
		return "Reserved";
	}
}

/*
 * The status -> errno table.  Each row is the Linux NVMe driver's
 * blk_status for the status (nvme_error_status, Linux 6.12) and the errno
 * the block layer makes of it (blk_errors); every other status is
 * BLK_STS_IOERR, -EIO.  Keep docs/passthru.md's error table in step.
 */
static const struct {
	uint16_t code;	/* SCT << 8 | SC. */
	int err;	/* -errno. */
} errno_table[] = {
	{ 0x001, -EOPNOTSUPP },	/* Invalid Command Opcode: BLK_STS_NOTSUPP. */
	{ 0x002, -EOPNOTSUPP },	/* Invalid Field in Command: BLK_STS_NOTSUPP. */
	{ 0x00b, -EOPNOTSUPP },	/* Invalid Namespace or Format: BLK_STS_NOTSUPP. */
	{ 0x021, -EREMOTEIO },	/* Command Interrupted: BLK_STS_TARGET. */
	{ 0x080, -EREMOTEIO },	/* LBA Out of Range: BLK_STS_TARGET. */
	{ 0x081, -ENOSPC },	/* Capacity Exceeded: BLK_STS_NOSPC. */
	{ 0x082, -EREMOTEIO },	/* Namespace Not Ready: BLK_STS_TARGET. */
	{ 0x083, -EBADE },	/* Reservation Conflict: BLK_STS_RESV_CONFLICT. */
	{ 0x180, -EOPNOTSUPP },	/* Conflicting Attributes: BLK_STS_NOTSUPP. */
	{ 0x181, -EILSEQ },	/* Invalid Protection Information: BLK_STS_PROTECTION. */
	{ 0x182, -ENODATA },	/* Attempted Write to Read Only Range: BLK_STS_MEDIUM. */
	{ 0x183, -EOPNOTSUPP },	/* Linux's "ONCS not supported" (now Command Size Limit Exceeded). */
	{ 0x1bd, -EOVERFLOW },	/* Too Many Active Zones: BLK_STS_ZONE_ACTIVE_RESOURCE. */
	{ 0x1be, -ETOOMANYREFS },/* Too Many Open Zones: BLK_STS_ZONE_OPEN_RESOURCE. */
	{ 0x280, -ENODATA },	/* Write Fault: BLK_STS_MEDIUM. */
	{ 0x281, -ENODATA },	/* Unrecovered Read Error: BLK_STS_MEDIUM. */
	{ 0x282, -EILSEQ },	/* End-to-end Guard Check Error: BLK_STS_PROTECTION. */
	{ 0x283, -EILSEQ },	/* End-to-end Application Tag Check Error: BLK_STS_PROTECTION. */
	{ 0x284, -EILSEQ },	/* End-to-end Reference Tag Check Error: BLK_STS_PROTECTION. */
	{ 0x285, -ENODATA },	/* Compare Failure: BLK_STS_MEDIUM. */
	{ 0x286, -ENODATA },	/* Access Denied: BLK_STS_MEDIUM. */
	{ 0x287, -ENODATA },	/* Deallocated or Unwritten Logical Block: BLK_STS_MEDIUM. */
	{ 0x370, -ENOLINK },	/* Host Pathing Error: BLK_STS_TRANSPORT. */
};

int nvme_status_errno(uint16_t status)
{
	uint16_t code = (uint16_t)(status & NVME_STATUS_CODE_MASK);

	if (code == 0)
		return 0;	/* Successful Completion, whatever CRD, More or DNR say (BLK_STS_OK). */
	for (size_t i = 0; i < sizeof(errno_table) / sizeof(errno_table[0]); i++)
		if (errno_table[i].code == code)
			return errno_table[i].err;
	return -EIO;	/* BLK_STS_IOERR: every status the table does not name. */
}

uint64_t nvme_status_retry_delay_ns(uint16_t status, const uint16_t crdt[3])
{
	unsigned crd = NVME_STATUS_CRD(status);

	/* CRDT is in units of 100 milliseconds (NVMe Base 2.0, Identify Controller bytes 134-139). */
	return crd ? (uint64_t)crdt[crd - 1] * 100000000ull : 0;
}

bool nvme_status_retryable(uint16_t status)
{
	return !(status & NVME_STATUS_DNR);
}

const char *nvme_status_format(uint16_t status, char *buf, unsigned len)
{
	const char *name = nvme_status_name(status);

	snprintf(buf, len, "%s (SCT %Xh, SC %02Xh, DNR %u)", name ? name : nvme_sct_name(NVME_STATUS_SCT(status)),
		 NVME_STATUS_SCT(status), NVME_STATUS_SC(status), (status & NVME_STATUS_DNR) ? 1u : 0u);
	return buf;
}

/* The name of an NVM command set opcode the backend sends. */
static const char *opcode_name(uint8_t opcode)
{
	switch (opcode) {
	case PT_IO_FLUSH:
		return "Flush";
	case PT_IO_WRITE:
		return "Write";
	case PT_IO_READ:
		return "Read";
	case PT_IO_WRITE_ZEROES:
		return "Write Zeroes";
	case PT_IO_DSM:
		return "Dataset Management";
	default:
		return NULL;
	}
}

URT_API void urt_nvme_status_decode(uint16_t raw, uint8_t opcode, struct urt_nvme_status *st)
{
	st->raw = (uint16_t)(raw & 0x7fff);
	st->sc = (uint8_t)NVME_STATUS_SC(raw);
	st->sct = (uint8_t)NVME_STATUS_SCT(raw);
	st->crd = (uint8_t)NVME_STATUS_CRD(raw);
	st->more = raw & NVME_STATUS_MORE;
	st->dnr = raw & NVME_STATUS_DNR;
	st->opcode = opcode;
}

URT_API int urt_io_nvme_status(const struct urt_io *io, struct urt_nvme_status *st)
{
	uint32_t v = io->dev_status;

	/* Only the passthrough backend writes dev_status (PT_IO_STATUS); a socket op's fd shares it. */
	if (!io->dev || strcmp(urt_dev_info(io->dev)->backend, "passthru") != 0 || !(v & PT_IO_STATUS_VALID))
		return -ENOENT;
	urt_nvme_status_decode((uint16_t)(v & 0x7fff), (uint8_t)(v >> 16), st);
	return 0;
}

URT_API const char *urt_nvme_status_str(const struct urt_nvme_status *st, char *buf, size_t len)
{
	const char *name = nvme_status_name(st->raw);
	const char *op = opcode_name(st->opcode);
	char opbuf[16];

	if (!op) {
		snprintf(opbuf, sizeof(opbuf), "opcode %02Xh", st->opcode);
		op = opbuf;
	}
	snprintf(buf, len, "%s (SCT %Xh, SC %02Xh, CRD %u, More %u, DNR %u; %s)",
		 name ? name : nvme_sct_name(st->sct), st->sct, st->sc, st->crd, st->more ? 1u : 0u,
		 st->dnr ? 1u : 0u, op);
	return buf;
}
