/*
 * Page deltas (delta.h): diff, install and encode by chunk masks.
 *
 * Design notes.
 *
 * The diff narrows down from 512-byte segments to 64-byte blocks with
 * memcmp (the C library's vectorised compare), and only a block that
 * differs is split into chunks.  The log pays at most a chunk minus one byte per
 * changed run for the rounding.  A run of adjacent
 * chunks is one change (4-byte entry header), so a 100-byte change costs
 * about 32 + 4 + 112 bytes of log instead of a 4 KiB image.
 *
 * Invariant: delta_encode emits exactly delta_rec_bytes(m) bytes, so the
 * WAL's space accounting (wal.c) is exact, never an estimate.
 */
#include <errno.h>
#include <string.h>

#include "base/assert.h"
#include "engine/format/delta.h"

/*
 * Set bits of x.  The build targets baseline x86-64 (no POPCNT
 * instruction), where __builtin_popcountll is a call into libgcc: 1% of
 * urkv's CPU under SET -P 16.  This is the same count in a dozen inline
 * instructions.
 */
static inline uint32_t popcount64(uint64_t x)
{
	x = x - ((x >> 1) & 0x5555555555555555ull);
	x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
	return (uint32_t)((x * 0x0101010101010101ull) >> 56);
}

static uint64_t round8(uint64_t x)
{
	return (x + URT_LOG_REC_ALIGN - 1) / URT_LOG_REC_ALIGN * URT_LOG_REC_ALIGN;
}

/* The first chunk at or after i that is set (set) or clear (!set); DELTA_CHUNKS if none. */
static uint32_t next_chunk(const struct delta_mask *m, uint32_t i, bool set)
{
	while (i < DELTA_CHUNKS) {
		uint64_t w = (set ? m->w[i / 64] : ~m->w[i / 64]) >> (i % 64);

		if (w)
			return i + (uint32_t)__builtin_ctzll(w);
		i = (i / 64 + 1) * 64;
	}
	return DELTA_CHUNKS;
}

/*
 * The changed-chunk bits of one 64-byte block whose word XORs are x, for
 * wpc words per chunk; a constant wpc per case lets the compiler unroll.
 */
static uint64_t block_bits(const uint64_t *x, uint32_t wpc)
{
	switch (wpc) {
	case 2:
		return (uint64_t)((x[0] | x[1]) != 0) | (uint64_t)((x[2] | x[3]) != 0) << 1 |
		       (uint64_t)((x[4] | x[5]) != 0) << 2 | (uint64_t)((x[6] | x[7]) != 0) << 3;
	case 4:
		return (uint64_t)((x[0] | x[1] | x[2] | x[3]) != 0) |
		       (uint64_t)((x[4] | x[5] | x[6] | x[7]) != 0) << 1;
	default:
		URT_ASSERT(wpc == 8);
		return (x[0] | x[1] | x[2] | x[3] | x[4] | x[5] | x[6] | x[7]) != 0;
	}
}

uint32_t delta_diff(const uint8_t *a, const uint8_t *b, uint32_t page_size, struct delta_mask *m)
{
	uint32_t cb = delta_chunk_bytes(page_size), wpc = cb / 8, n = 0;

	URT_ASSERT(urt_page_size_valid(page_size));
	delta_mask_clear(m);
	/*
	 * Coarse to fine: 512-byte segments, then 64-byte blocks, compared
	 * with memcmp (vectorised by the C library); only a block that differs
	 * is split into its chunks (4, 2 or 1), by an OR of XORs per chunk.
	 * A small change thus costs eight segment compares and a few blocks.
	 */
	for (uint32_t seg = 0; seg < page_size; seg += 512) {
		if (memcmp(a + seg, b + seg, 512) == 0)
			continue;
		for (uint32_t off = seg; off < seg + 512; off += 64) {
			uint64_t x[8], bits;
			uint32_t i;

			if (memcmp(a + off, b + off, 64) == 0)
				continue;
			for (uint32_t k = 0; k < 8; k++) {
				uint64_t u, v;

				memcpy(&u, a + off + 8 * k, 8);
				memcpy(&v, b + off + 8 * k, 8);
				x[k] = u ^ v;
			}
			bits = block_bits(x, wpc);
			i = off / cb;
			m->w[i / 64] |= bits << (i % 64);
			n += popcount64(bits);
		}
	}
	return n;
}

void delta_copy(uint8_t *dst, const uint8_t *src, uint32_t page_size, const struct delta_mask *m)
{
	uint32_t cb = delta_chunk_bytes(page_size), i, end;

	/* One copy per run of adjacent chunks: a whole-page change is one memcpy. */
	for (i = next_chunk(m, 0, true); i < DELTA_CHUNKS; i = next_chunk(m, end, true)) {
		end = next_chunk(m, i, false);
		memcpy(dst + i * cb, src + i * cb, (end - i) * cb);
	}
}

uint64_t delta_rec_bytes(const struct delta_mask *m, uint32_t page_size)
{
	uint64_t chunks = 0, runs = 0, carry = 0;

	for (uint32_t w = 0; w < DELTA_WORDS; w++) {
		uint64_t x = m->w[w];

		if (x == 0) {
			carry = 0;	/* Most masks of a small change are mostly empty words. */
			continue;
		}
		chunks += popcount64(x);
		/* A run starts at a set bit whose lower neighbour is clear. */
		runs += popcount64(x & ~((x << 1) | carry));
		carry = x >> 63;
	}
	if (chunks == 0)
		return 0;
	return round8(URT_LOG_REC_HDR_SIZE + runs * URT_LOG_DELTA_HDR_SIZE +
		      chunks * delta_chunk_bytes(page_size));
}

int delta_encode(struct logrec_enc *e, uint64_t txid, uint64_t pgno, const uint8_t *page,
		 const struct delta_mask *m, uint64_t *lsn_out)
{
	uint32_t cb = delta_chunk_bytes(e->geom.page_size);
	uint64_t size = delta_rec_bytes(m, e->geom.page_size);
	uint32_t i, end;
	int ret;

	if (size == 0)
		return -EINVAL;
	/* The whole record is checked for room first: it fits whole or not at all. */
	if (URT_LOG_BATCH_HDR_SIZE + size > e->buf_cap || URT_LOG_BATCH_HDR_SIZE + size > e->geom.log_len)
		return URT_E_TOOBIG;
	if (size > logrec_enc_room(e))
		return -ENOSPC;
	ret = logrec_enc_delta_begin(e, txid, pgno, lsn_out);
	if (ret)
		return ret;
	for (i = next_chunk(m, 0, true); i < DELTA_CHUNKS; i = next_chunk(m, end, true)) {
		end = next_chunk(m, i, false);
		ret = logrec_enc_delta_add(e, i * cb, page + i * cb, (end - i) * cb);
		URT_ASSERT(ret == 0);
	}
	ret = logrec_enc_delta_end(e);
	URT_ASSERT(ret == 0);
	return 0;
}
