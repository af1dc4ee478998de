/**
 * @file
 * Registered I/O buffers.
 *
 * Each core owns one large region registered with its rings (huge pages
 * when available).  urt_buf_get carves aligned buffers from it; I/O on them
 * uses READ_FIXED / WRITE_FIXED (or IORING_URING_CMD_FIXED) automatically.
 *
 * Buffers are per core: get and put on the same core, from a reactor thread.
 * A buffer is reference counted while an op uses it, so putting a buffer
 * whose op timed out is safe: it is recycled when the device is done.
 */
#ifndef URT_BUF_H
#define URT_BUF_H

#include <stdbool.h>
#include <stddef.h>

#include "urt/common.h"

URT_BEGIN_DECLS

/** Largest buffer urt_buf_get hands out. */
#define URT_BUF_MAX_BYTES (4u << 20)

/**
 * A buffer of at least len bytes (rounded up to a power of two, minimum
 * 4 KiB), aligned to 4 KiB.  NULL when len is 0 or too large, or the region
 * is exhausted (errno-style reason in urt_last_error()).
 */
URT_API void *urt_buf_get(size_t len);

/** Give a buffer back.  NULL is ignored. */
URT_API void urt_buf_put(void *buf);

/** Whether p points into the calling core's region. */
URT_API bool urt_buf_owns(const void *p);

/** Bytes free in the calling core's region (free lists plus unused tail). */
URT_API size_t urt_buf_free_bytes(void);

URT_END_DECLS

#endif /* URT_BUF_H */
