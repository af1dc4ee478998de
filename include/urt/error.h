/**
 * @file
 * urt error codes.
 *
 * Every urt function that can fail returns an int: 0 (or a count) on
 * success, a negative value on failure.  Negative values come from three
 * disjoint bands, so one int carries any of them and urt_strerror() explains
 * all of them:
 *
 *   -1 .. -4095          -errno, as returned by the kernel and libc
 *                        (4095 is the kernel's MAX_ERRNO).
 *   -10000 .. -10999     URT_E_*: conditions only the engine knows about
 *                        (on-disk corruption, format version, full store).
 *   -20000 .. -85535     NVMe completion status from the passthrough
 *                        backend: URT_E_NVME(status) = -(20000 + status),
 *                        where status is the 16-bit status field of the CQE
 *                        shifted right by one (phase tag dropped):
 *                        bits 0-7 status code (SC), bits 8-10 status code
 *                        type (SCT), bits 11-12 command retry delay,
 *                        bit 13 more, bit 14 do-not-retry.
 *
 * Adding a code: append it to the enum below and to the table in
 * src/base/strerror.c (a test checks that every code has a message).
 */
#ifndef URT_ERROR_H
#define URT_ERROR_H

#include <stdbool.h>
#include <stdint.h>

#include "urt/common.h"

URT_BEGIN_DECLS

/** The engine's own error codes, below the errno band; urt_strerror explains them. */
enum urt_error {
	/** First value of the engine band; never returned itself. */
	URT_E_BASE = -10000,
	/** On-disk data failed a checksum or is internally inconsistent. */
	URT_E_CORRUPT = -10001,
	/** The key, page or record asked for does not exist. */
	URT_E_NOTFOUND = -10002,
	/** The store (page region or log) has no room left. */
	URT_E_FULL = -10003,
	/** The on-disk format is newer than this build understands. */
	URT_E_VERSION = -10004,
	/** The device does not hold a urt store, or a field is out of range. */
	URT_E_BADFORMAT = -10005,
	/** An earlier I/O failure left state unclear; the object refuses work. */
	URT_E_STICKY = -10006,
	/** An item can never fit, even in an empty container. */
	URT_E_TOOBIG = -10007,
	/** A page carries another page's id: the device wrote it to the wrong place. */
	URT_E_MISDIRECTED = -10008,
	/** A page or log batch carries another store's id (stale data on a reused device). */
	URT_E_FOREIGN = -10009,
	/** One past the most negative engine code in use; keep it last. */
	URT_E_LAST = -10010,
	/** The engine band ends here; codes below belong to the NVMe band. */
	URT_E_BAND_END = -10999,

	/** NVMe status band: URT_E_NVME(status) = URT_E_NVME_BASE - status. */
	URT_E_NVME_BASE = -20000,
	URT_E_NVME_END = -20000 - 0xffff,
};

/** Turns a 15-bit NVMe status field (phase tag already removed) into an error code. */
#define URT_E_NVME(status) (URT_E_NVME_BASE - (int)((status) & 0xffff))

/** True when err lies in the NVMe status band. */
static inline bool urt_err_is_nvme(int err)
{
	return err <= URT_E_NVME_BASE && err >= URT_E_NVME_END;
}

/** Returns the NVMe status field carried by an error of the NVMe band. */
static inline uint16_t urt_err_nvme_status(int err)
{
	return (uint16_t)(URT_E_NVME_BASE - err);
}

/**
 * Explains any urt return value: 0, -errno, URT_E_* or an NVMe status.
 * Messages for 0, -errno and URT_E_* are static strings.  Messages for the
 * NVMe band and for unknown codes are formatted into a thread-local buffer
 * that stays valid until the next call on the same thread.
 */
URT_API const char *urt_strerror(int err);

/**
 * A detailed description of the last error returned to this thread by urt
 * (for example "RLIMIT_MEMLOCK is 8192 KiB, the buffer region needs ...").
 * Empty string when there is none.
 */
URT_API const char *urt_last_error(void);

URT_END_DECLS

#endif /* URT_ERROR_H */
