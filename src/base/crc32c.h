/*
 * CRC32C (Castagnoli, the iSCSI/ext4/NVMe polynomial 0x1EDC6F41, reflected).
 *
 * Every checksum of the on-disk format uses this function.  It follows the
 * zlib crc32() convention, so that computations chain:
 *
 *     crc = urt_crc32c(0, a, alen);        // start from 0
 *     crc = urt_crc32c(crc, b, blen);      // == urt_crc32c(0, a||b, alen+blen)
 *
 * and urt_crc32c(0, "123456789", 9) == 0xE3069283, the standard check value.
 * The work is done by ISA-L, which picks the fastest kernel (SSE4.2 crc32q
 * with PCLMUL folding, or AArch64 CRC instructions) at load time.
 */
#ifndef URT_ENGINE_CRC32C_H
#define URT_ENGINE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Returns the CRC32C of buf[0..len) continued from crc (0 to start). */
uint32_t urt_crc32c(uint32_t crc, const void *buf, size_t len);

#endif /* URT_ENGINE_CRC32C_H */
