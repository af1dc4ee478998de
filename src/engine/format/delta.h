/*
 * Page deltas: which parts of a page a commit changed, and the PAGE_DELTA
 * record that logs them.
 *
 * A page is cut into DELTA_CHUNKS equal chunks (16 bytes of a 4 KiB page,
 * 32 of 8 KiB, 64 of 16 KiB); a delta mask has one bit per chunk.  The WAL
 * diffs a transaction's write copy against the committed frame into a mask
 * (delta_diff), installs only those chunks (delta_copy), ORs the mask into
 * the frame's mask for the batch being filled, and when the batch is sealed
 * logs each run of marked chunks as one change of one PAGE_DELTA record
 * (delta_encode).  The sizes are exact (delta_rec_bytes), so the WAL knows
 * what a commit adds to a batch before it joins it.
 */
#ifndef URT_ENGINE_FORMAT_DELTA_H
#define URT_ENGINE_FORMAT_DELTA_H

#include <stdint.h>

#include "engine/format/format.h"

/* Chunks per page: one bit each in a delta mask. */
#define DELTA_CHUNKS 256u
#define DELTA_WORDS (DELTA_CHUNKS / 64u)

/* A set of chunks of one page. */
struct delta_mask {
	uint64_t w[DELTA_WORDS];	/* Bit i of word i / 64: chunk i changed. */
};

_Static_assert(URT_PAGE_SIZE_MIN % DELTA_CHUNKS == 0 && URT_PAGE_SIZE_MIN / DELTA_CHUNKS % 8 == 0,
	       "chunks are whole 8-byte words");

/* Bytes per chunk of a page of page_size bytes. */
static inline uint32_t delta_chunk_bytes(uint32_t page_size)
{
	return page_size / DELTA_CHUNKS;
}

static inline void delta_mask_clear(struct delta_mask *m)
{
	for (unsigned i = 0; i < DELTA_WORDS; i++)
		m->w[i] = 0;
}

static inline void delta_mask_or(struct delta_mask *dst, const struct delta_mask *src)
{
	for (unsigned i = 0; i < DELTA_WORDS; i++)
		dst->w[i] |= src->w[i];
}

static inline bool delta_mask_empty(const struct delta_mask *m)
{
	uint64_t x = 0;

	for (unsigned i = 0; i < DELTA_WORDS; i++)
		x |= m->w[i];
	return x == 0;
}

/*
 * Sets in *m exactly the chunks in which pages a and b (page_size bytes
 * each) differ, clearing the others.  Returns the number of such chunks.
 */
uint32_t delta_diff(const uint8_t *a, const uint8_t *b, uint32_t page_size, struct delta_mask *m);

/* Copies the chunks set in m from src to dst (both page_size bytes). */
void delta_copy(uint8_t *dst, const uint8_t *src, uint32_t page_size, const struct delta_mask *m);

/*
 * Bytes the PAGE_DELTA record of the chunks in m takes in a batch body
 * (header, one change per run of adjacent chunks, padding); 0 when m is
 * empty (no record).
 */
uint64_t delta_rec_bytes(const struct delta_mask *m, uint32_t page_size);

/*
 * Appends to e one PAGE_DELTA record for pgno holding, for each run of
 * adjacent chunks set in m (not empty), the bytes of page at that run.
 * Takes exactly delta_rec_bytes(m) bytes.  Returns 0 (with *lsn_out, may
 * be NULL), -ENOSPC or URT_E_TOOBIG (the batch is left as it was), or
 * -EINVAL (empty mask, pgno out of range).
 */
int delta_encode(struct logrec_enc *e, uint64_t txid, uint64_t pgno, const uint8_t *page,
		 const struct delta_mask *m, uint64_t *lsn_out);

#endif /* URT_ENGINE_FORMAT_DELTA_H */
