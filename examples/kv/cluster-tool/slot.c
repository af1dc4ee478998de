/* The hash slot of a key, as Redis Cluster defines it: CRC16 (the XMODEM
 * variant: polynomial 0x1021, initial value 0, no reflection) of the key,
 * or of the first non-empty {...} hash tag in it, modulo 16384.  The tool
 * needs it to sort the keys SCAN returns by slot. */
#include <string.h>

#include "ctool.h"

static uint16_t crc16_xmodem(const unsigned char *p, size_t len)
{
	uint16_t crc = 0;

	for (size_t i = 0; i < len; i++) {
		crc ^= (uint16_t)(p[i] << 8);
		for (int b = 0; b < 8; b++)
			crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
	}
	return crc;
}

int ct_key_slot(const char *key, size_t len)
{
	const char *open = memchr(key, '{', len);

	if (open) {
		size_t rest = len - (size_t)(open + 1 - key);
		const char *close = memchr(open + 1, '}', rest);

		/* "{}" is no tag: the whole key is hashed. */
		if (close && close > open + 1)
			return crc16_xmodem((const unsigned char *)open + 1, (size_t)(close - open - 1)) &
			       (CT_SLOTS - 1);
	}
	return crc16_xmodem((const unsigned char *)key, len) & (CT_SLOTS - 1);
}
