/*
 * Redis Cluster's key -> hash slot map: CRC16 (the XMODEM variant:
 * polynomial 0x1021, initial value 0, no reflection) of the key, or of the
 * part between the first '{' and the first '}' after it when that part is
 * not empty, modulo 16384.  Known values: "123456789" -> 0x31C3 (the
 * check value of CRC-16/XMODEM), KEYSLOT foo = 12182, "" = 0.
 */
#include <stdint.h>
#include <string.h>

#include "cluster.h"

static uint16_t crc16_table[256];	/* CRC of each byte value; filled by urkv_slot_init. */

void urkv_slot_init(void)
{
	for (unsigned b = 0; b < 256; b++) {
		uint16_t crc = (uint16_t)(b << 8);

		for (int i = 0; i < 8; i++)
			crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
		crc16_table[b] = crc;
	}
}

static uint16_t crc16(const uint8_t *p, size_t len)
{
	uint16_t crc = 0;

	for (size_t i = 0; i < len; i++)
		crc = (uint16_t)((crc << 8) ^ crc16_table[((crc >> 8) ^ p[i]) & 0xff]);
	return crc;
}

unsigned urkv_key_slot(const void *key, size_t len)
{
	const uint8_t *k = key;
	const uint8_t *open = memchr(k, '{', len);

	if (open) {
		size_t from = (size_t)(open - k) + 1;
		const uint8_t *close = memchr(k + from, '}', len - from);

		/* "{}" (an empty tag) hashes the whole key, as Redis does. */
		if (close && close != k + from)
			return crc16(k + from, (size_t)(close - (k + from))) & (URKV_SLOTS - 1);
	}
	return crc16(k, len) & (URKV_SLOTS - 1);
}
