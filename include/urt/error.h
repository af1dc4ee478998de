/**
 * @file
 * urt error codes.
 *
 * Every urt function that can fail returns an int: 0 (or a count) on
 * success, a negative value on failure.  Negative values come from two
 * disjoint bands, so one int carries either and urt_strerror() explains
 * both:
 *
 *   -1 .. -4095          -errno, as returned by the kernel and libc
 *                        (4095 is the kernel's MAX_ERRNO).  A device error
 *                        is always an errno: an NVMe passthrough command
 *                        that fails gives the errno the Linux NVMe driver
 *                        gives on the block path (-ENODATA for a media
 *                        error, ...), and its exact NVMe status stays
 *                        readable from the op (urt_io_nvme_status in
 *                        urt/nvme.h).
 *   -10000 .. -10999     URT_E_*: conditions only the engine knows about
 *                        (on-disk corruption, format version, full store).
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
	/** The engine band ends here. */
	URT_E_BAND_END = -10999,
};

/**
 * Explains any urt return value: 0, -errno or URT_E_*.
 * Messages for 0, -errno and URT_E_* are static strings.  Messages for
 * unknown codes are formatted into a thread-local buffer that stays valid
 * until the next call on the same thread.
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
