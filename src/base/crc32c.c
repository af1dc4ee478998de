/*
 * CRC32C on top of ISA-L.
 *
 * ISA-L's crc32_iscsi(buf, len, init) returns the raw CRC register: it
 * neither inverts the initial value nor the result (crc32_iscsi("123456789",
 * 9, 0xFFFFFFFF) is 0x1CF96D7C, the complement of the check value).  The
 * standard CRC32C starts the register at all ones and inverts it at the end,
 * so inverting on the way in and on the way out gives the zlib-style chained
 * convention documented in crc32c.h.  Its length is an int, so very long
 * buffers are fed in chunks.
 */
#include <isa-l/crc.h>
#include <limits.h>

#include "base/crc32c.h"

/* Largest chunk handed to ISA-L at once: fits its int length, keeps alignment. */
#define CRC_CHUNK_MAX ((size_t)1 << 30)

uint32_t urt_crc32c(uint32_t crc, const void *buf, size_t len)
{
	/* ISA-L takes a non-const pointer but never writes through it. */
	unsigned char *p = (unsigned char *)(uintptr_t)buf;
	unsigned int reg = ~crc;

	while (len > 0) {
		size_t n = len < CRC_CHUNK_MAX ? len : CRC_CHUNK_MAX;

		reg = crc32_iscsi(p, (int)n, reg);
		p += n;
		len -= n;
	}
	return ~reg;
}
