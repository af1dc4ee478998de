/*
 * libFuzzer target for the on-disk format decoders (src/engine/format/format.h).
 *
 * The first input byte picks a mode; the rest is the untrusted image.  Raw
 * modes hand the bytes to a decoder as they are.  "Fixed" modes first
 * repair the magic, identity and checksums, so that the fuzzer gets past
 * the CRC checks and exercises the structural checks behind them.  Every
 * decoder gets a buffer of exactly the length it is told, so AddressSanitizer
 * catches any read past it.  Besides "no crash", the target checks
 * properties that must hold for any input:
 *  - a superblock that decodes re-encodes to the same bytes;
 *  - a page whose CRC is right verifies as anything but a checksum error;
 *  - a batch that decodes iterates to exactly nrec records, each of which
 *    applies to a page, and the iterator stays in bounds on any batch;
 *  - records encoded by the encoder decode back identical;
 *  - a PAGE_DELTA payload of raw bytes applies within the page or is
 *    rejected leaving the page untouched, and the delta built from the
 *    diff of two pages (delta.c) is exactly as long as predicted, decodes,
 *    and turns the old page into the new one.
 *
 * ISA-L is not compiled with AddressSanitizer, so a CRC over bytes past a
 * buffer would go unnoticed inside it.  This target therefore links its own
 * urt_crc32c (instead of src/base/crc32c.c): it asks ASan whether the
 * whole range is addressable (and makes ASan report the first bad byte if
 * not) before calling ISA-L, and checks ISA-L against a table-driven
 * reference on short buffers.
 */
#include <errno.h>
#include <isa-l/crc.h>
#include <sanitizer/asan_interface.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/crc32c.h"
#include "engine/format/delta.h"
#include "engine/format/format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define STORE 0x0123456789abcdefull
#define CHECK(cond)                                                                        \
	do {                                                                               \
		if (!(cond))                                                               \
			__builtin_trap();                                                  \
	} while (0)

/* Reflected CRC32C table (polynomial 0x82F63B78), built on first use. */
static uint32_t crc_table[256];

uint32_t urt_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	const volatile uint8_t *bad = __asan_region_is_poisoned((void *)(uintptr_t)buf, len);
	uint32_t reg = ~crc, isal;

	/* Reading the first poisoned byte makes ASan print a full report. */
	if (bad)
		(void)*bad;
	CHECK(len <= INT32_MAX);
	isal = ~crc32_iscsi((unsigned char *)(uintptr_t)buf, (int)len, ~crc);
	if (len > 512)
		return isal;
	if (crc_table[1] == 0) {
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;

			for (int k = 0; k < 8; k++)
				c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
			crc_table[i] = c;
		}
	}
	for (size_t i = 0; i < len; i++)
		reg = crc_table[(reg ^ p[i]) & 0xff] ^ (reg >> 8);
	CHECK(isal == ~reg);
	return isal;
}

static const uint32_t page_sizes[] = { 4096, 8192, 16384 };
static const uint32_t block_sizes[] = { 512, 4096 };

/* An exact-size heap copy, zero-padded to len when the input is shorter. */
static uint8_t *copy_in(const uint8_t *data, size_t size, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);

	CHECK(p);
	memset(p, 0, len);
	memcpy(p, data, size < len ? size : len);
	return p;
}

/* ---- superblock ---------------------------------------------------------- */

static void sb_check_decoded(const uint8_t *buf, size_t len)
{
	struct superblock sb;
	const char *why = NULL;
	uint8_t again[URT_SB_SIZE];
	int ret = superblock_decode(buf, len, &sb, &why);

	CHECK(ret == 0 || ret == URT_E_BADFORMAT || ret == URT_E_CORRUPT || ret == URT_E_VERSION);
	CHECK(ret == 0 ? why == NULL : why != NULL);
	if (ret != 0)
		return;
	CHECK(superblock_validate(&sb, NULL) == 0);
	CHECK(superblock_encode(&sb, again, sizeof(again), NULL) == 0);
	CHECK(memcmp(again, buf, URT_SB_SIZE) == 0);
}

static void fuzz_sb(const uint8_t *data, size_t size, uint8_t mode)
{
	typedef struct urt_sb_disk sbd;
	uint8_t *buf;

	if (!(mode & 0x10)) {
		buf = copy_in(data, size, size);
		sb_check_decoded(buf, size);
		free(buf);
		return;
	}
	/* Repair magic, size and CRC so the field checks run. */
	buf = copy_in(data, size, URT_SB_SIZE);
	memcpy(buf, URT_SB_MAGIC, 8);
	if (!(mode & 0x20))
		URT_PUT32(buf, sbd, version, URT_FORMAT_VERSION);
	URT_PUT32(buf, sbd, sb_size, URT_SB_SIZE);
	if (mode & 0x40) {
		/* Start from a plausible layout so deeper checks are reached more often. */
		URT_PUT32(buf, sbd, page_size, page_sizes[(mode >> 7) % 3]);
		URT_PUT32(buf, sbd, block_size, 512);
		URT_PUT32(buf, sbd, flags, 0);
		memset(buf + offsetof(sbd, reserved), 0, sizeof(((sbd *)0)->reserved));
	}
	URT_PUT32(buf, sbd, crc, 0);
	URT_PUT32(buf, sbd, crc, urt_crc32c(0, buf, URT_SB_SIZE));
	sb_check_decoded(buf, URT_SB_SIZE);
	free(buf);
}

static void fuzz_sb_pick(const uint8_t *data, size_t size)
{
	struct superblock out;
	struct superblock_pick_info info;
	size_t half = size / 2;
	uint8_t *a = copy_in(data, half, half);
	uint8_t *b = copy_in(data + half, size - half, half);
	int ret = superblock_pick(a, b, half, &out, &info);

	if (ret == 0) {
		CHECK(info.slot == 0 || info.slot == 1);
		CHECK(info.err[info.slot] == 0);
		CHECK((out.generation & 1) == (uint64_t)info.slot);
		CHECK(superblock_validate(&out, NULL) == 0);
	} else {
		CHECK(info.slot == -1);
	}
	free(a);
	free(b);
}

/*
 * Encodes a valid superblock whose sizes come from the input, applies
 * (u8 offset, u8 xor) edits, optionally fixes the CRC, then decodes it
 * alone and paired with an intact copy of the previous generation.
 */
static void fuzz_sb_mutate(const uint8_t *data, size_t size, uint8_t mode)
{
	typedef struct urt_sb_disk sbd;
	uint8_t a[URT_SB_SLOT_SIZE], b[URT_SB_SLOT_SIZE];
	struct superblock sb, out;
	struct superblock_pick_info info;
	uint64_t device, log_len;
	int ret;

	if (size < 4)
		return;
	device = ((uint64_t)urt_load_le16(data) + 1) << 16;
	log_len = ((uint64_t)data[2] + 4) * 16384;
	if (superblock_plan(&sb, device, page_sizes[(mode >> 4) % 3], block_sizes[(mode >> 6) & 1],
			    log_len, NULL) != 0)
		return;
	sb.store_id = STORE;
	sb.generation = 10;
	sb.log_epoch = data[3];
	sb.checkpoint_epoch = data[3] / 2;
	sb.checkpoint_lsn = (uint64_t)data[3] * 3 * sb.block_size;
	CHECK(superblock_encode(&sb, a, sizeof(a), NULL) == 0);
	sb.generation = 9;
	CHECK(superblock_encode(&sb, b, sizeof(b), NULL) == 0);
	CHECK(superblock_decode(a, sizeof(a), &out, NULL) == 0);
	CHECK(memcmp(&out, &sb, offsetof(struct superblock, generation)) == 0);

	for (size_t i = 4; i + 2 <= size; i += 2)
		a[data[i]] ^= data[i + 1];
	if (mode & 0x80) {
		URT_PUT32(a, sbd, crc, 0);
		URT_PUT32(a, sbd, crc, urt_crc32c(0, a, URT_SB_SIZE));
	}
	sb_check_decoded(a, sizeof(a));
	ret = superblock_pick(a, b, sizeof(a), &out, &info);
	if (info.err[0] == 0)
		CHECK(ret == 0 || ret == URT_E_CORRUPT);
	else if (info.err[0] != URT_E_VERSION)
		CHECK(ret == 0 && out.generation == 9 && info.slot == 1);
}

/* ---- page ------------------------------------------------------------------ */

static void fuzz_page(const uint8_t *data, size_t size, uint8_t mode)
{
	uint32_t page_size = page_sizes[(mode >> 4) % 3];
	uint8_t *page = copy_in(data, size, page_size);
	uint64_t pgno = size >= 16 ? urt_load_le64(data + 8) : 0;
	uint64_t store = (mode & 0x40) ? STORE : (size >= 32 ? urt_load_le64(data + 24) : 1);
	const char *why = NULL;
	int ret;

	if ((mode & 0xc0) == 0xc0 && size >= 16) {
		/* A sealed page with (u16 offset, u8 xor) edits from the input. */
		page_init(page, page_size, 7, 1 + data[0], STORE);
		page_seal(page, page_size, 7, urt_load_le64(data + 1));
		CHECK(page_verify(page, page_size, 7, STORE, &why) == 0);
		for (size_t i = 9; i + 3 <= size; i += 3)
			page[urt_load_le16(data + i) % page_size] ^= data[i + 2];
		ret = page_verify(page, page_size, data[9 % size] & 1 ? 7 : pgno, STORE, &why);
		CHECK(ret == 0 || ret == URT_E_CORRUPT || ret == URT_E_MISDIRECTED ||
		      ret == URT_E_FOREIGN || ret == PAGE_UNUSED);
	} else if (mode & 0x80) {
		/* Give the page a correct CRC: only identity checks may fail. */
		urt_store_le32(page, page_crc(page, page_size));
		ret = page_verify(page, page_size, pgno, store, &why);
		CHECK(ret == 0 || ret == URT_E_FOREIGN || ret == URT_E_MISDIRECTED ||
		      (ret == URT_E_CORRUPT && urt_load_le16(page + 4) == 0) || ret == PAGE_UNUSED);
	} else {
		ret = page_verify(page, page_size, pgno, store, &why);
		CHECK(ret == 0 || ret == PAGE_UNUSED || ret == URT_E_CORRUPT ||
		      ret == URT_E_FOREIGN || ret == URT_E_MISDIRECTED);
	}
	CHECK(ret == 0 ? why == NULL : why != NULL);
	if (ret == PAGE_UNUSED)
		CHECK(urt_is_zero(page, page_size));
	free(page);
}

/* ---- log ------------------------------------------------------------------- */

static struct logrec_geom fuzz_geom(uint8_t mode)
{
	struct logrec_geom g = {
		.store_id = STORE,
		.log_len = 1u << 20,
		.page_count = 1000,
		.block_size = block_sizes[(mode >> 4) & 1],
		.page_size = page_sizes[(mode >> 5) % 3],
	};
	return g;
}

/* Walks every record of a batch, applying page changes to a scratch page. */
static int walk_records(const uint8_t *buf, size_t len, const struct logrec_geom *g,
			const struct logrec_batch *b)
{
	static uint8_t page[16384];
	struct logrec_iter it;
	struct logrec rec;
	const char *why = NULL;
	uint32_t n = 0;
	int ret;

	logrec_iter_init(&it, buf, len, g, b);
	while ((ret = logrec_iter_next(&it, &rec, &why)) == 1) {
		uint64_t off = rec.lsn - b->lsn;

		n++;
		/* The record and its payload lie inside the body and the buffer. */
		CHECK(off >= 64 && off + 32 + rec.len <= len);
		CHECK(off + 32 + rec.len <= 64 + (uint64_t)b->body_len);
		CHECK(rec.len == 0 ? rec.payload == NULL : rec.payload == buf + off + 32);
		if (logrec_is_image(rec.type) || rec.type == LOGREC_PAGE_DELTA)
			CHECK(logrec_apply(page, g->page_size, &rec, &why) == 0);
	}
	CHECK(ret == 0 || ret == URT_E_CORRUPT);
	CHECK(ret == 0 || why != NULL);
	/* A failed iterator stays failed. */
	if (ret != 0)
		CHECK(logrec_iter_next(&it, &rec, &why) == URT_E_CORRUPT);
	else
		CHECK(n == (b->type == LOGREC_BATCH_DATA ? b->nrec : 0));
	return ret;
}

static void batch_check(const uint8_t *buf, size_t len, const struct logrec_geom *g,
			uint64_t lsn, uint64_t min_epoch)
{
	struct logrec_batch b;
	const char *why = NULL;
	int ret = logrec_batch_decode(buf, len, g, lsn, min_epoch, &b, &why);

	CHECK(ret == 0 || ret == LOGREC_END || ret == URT_E_CORRUPT || ret == -EINVAL);
	CHECK(why != NULL || ret == 0);
	if (ret == 0) {
		CHECK(b.lsn == lsn && b.epoch >= min_epoch);
		CHECK(b.span % g->block_size == 0);
		CHECK(lsn % g->log_len + b.span <= g->log_len);
		CHECK(walk_records(buf, len, g, &b) == 0);
	}
}

/*
 * batch_fixup flags: also write magic, store and LSN; make the body fill
 * the buffer; re-aim the length of the first record that overruns the body
 * so that it ends 0 to 8 bytes past the body end (the boundary where an
 * off-by-a-few bound check would read out of bounds).
 */
#define FIX_IDENTITY 1
#define FIX_BODY_LEN 2
#define FIX_TAIL_LEN 4

/* Recomputes every checksum of an arbitrary batch image (and more, by flags). */
static void batch_fixup(uint8_t *buf, size_t len, uint64_t lsn, int flags)
{
	typedef struct urt_log_batch_disk lbd;
	typedef struct urt_log_rec_disk lrd;
	uint32_t body_len;
	size_t end, off;

	if (flags & FIX_IDENTITY) {
		memcpy(buf, URT_LOG_MAGIC, 4);
		URT_PUT64(buf, lbd, store_id, STORE);
		URT_PUT64(buf, lbd, lsn, lsn);
	}
	if (flags & FIX_BODY_LEN) {
		/* Make the body length describe the buffer, so records get walked. */
		body_len = (uint32_t)((len - 64) & ~(size_t)7);
		URT_PUT32(buf, lbd, body_len, body_len);
		URT_PUT16(buf, lbd, type, LOGREC_BATCH_DATA);
	}
	body_len = URT_GET32(buf, lbd, body_len);
	end = 64 + (size_t)body_len;
	if (end > len)
		end = len;
	/* Reseal each record whose claimed length fits. */
	for (off = 64; off + 32 <= end;) {
		uint32_t rlen = URT_GET32(buf + off, lrd, len);
		size_t rsize = ((size_t)32 + rlen + 7) & ~(size_t)7;

		if (rsize > end - off) {
			if (!(flags & FIX_TAIL_LEN))
				break;
			rlen = (uint32_t)(end - off - 32) + rlen % 9;
			URT_PUT32(buf + off, lrd, len, rlen);
			rsize = ((size_t)32 + rlen + 7) & ~(size_t)7;
			if (rsize > end - off)
				break;
		}
		URT_PUT32(buf + off, lrd, crc, 0);
		URT_PUT32(buf + off, lrd, crc, urt_crc32c(0, buf + off, 32 + (size_t)rlen));
		off += rsize;
	}
	if (64 + (size_t)body_len <= len)
		URT_PUT32(buf, lbd, body_crc, urt_crc32c(0, buf + 64, body_len));
	URT_PUT32(buf, lbd, hdr_crc, 0);
	URT_PUT32(buf, lbd, hdr_crc, urt_crc32c(0, buf, 64));
}

static void fuzz_log(const uint8_t *data, size_t size, uint8_t mode, bool fix)
{
	struct logrec_geom g = fuzz_geom(mode);
	uint64_t lsn = (uint64_t)((mode & 0x0f) + 16) * g.block_size;
	uint8_t *buf = copy_in(data, size, size);
	struct logrec_batch b;

	if (fix && size >= 64)
		batch_fixup(buf, size, lsn, FIX_IDENTITY | ((mode & 0x80) ? FIX_BODY_LEN : 0) |
						    ((mode & 0x40) ? FIX_TAIL_LEN : 0));
	batch_check(buf, size, &g, lsn, 0);

	/* The iterator alone, trusting header fields it never checked. */
	if (size >= 64) {
		b.lsn = lsn;
		b.body_len = urt_load_le32(buf + 40);
		b.nrec = urt_load_le32(buf + 48);
		b.type = LOGREC_BATCH_DATA;
		walk_records(buf, size, &g, &b);
	}
	free(buf);
}

/*
 * Encodes records chosen by data into buf (64 KiB), decodes them and
 * compares.  Returns the span of the batch at *lsn_out, or 0 when no
 * record was added.
 */
static uint64_t build_batch(const uint8_t *data, size_t size, uint8_t mode, uint8_t *buf,
			    uint64_t *lsn_out)
{
	struct logrec_geom g = fuzz_geom(mode);
	struct {
		uint8_t type;
		uint64_t txid, pgno, lsn;
		uint32_t len;
		uint32_t off;
		const uint8_t *src;
	} want[256];
	size_t cap = ((size_t)1 + (mode & 0x0f)) * 4096, i = 0;
	uint64_t lsn = g.log_len - 8 * 4096 + (size_t)(mode >> 7) * 4096, span;
	struct logrec_enc e;
	struct logrec_batch b;
	struct logrec_iter it;
	struct logrec rec;
	uint32_t n = 0;

	CHECK(logrec_enc_begin(&e, buf, cap, &g, lsn, 1) == 0);
	while (i + 4 <= size && n < 256) {
		uint8_t op = data[i];
		uint16_t a = urt_load_le16(data + i + 1);
		int ret;

		want[n].txid = 1 + data[i + 3];
		want[n].pgno = a % g.page_count;
		i += 4;
		switch (op % 3) {
		case 0: {
			/* A page image whose bytes come from the input, cycled. */
			static uint8_t image[16384];

			/* Odd ops leave a zero hole out (PAGE_IMAGE_HOLE), placed by the input. */
			uint32_t hole = op & 1 ? 1 + a % (g.page_size / 2) : 0;
			uint32_t hoff = hole ? (uint32_t)data[i - 1] * 13 % (g.page_size - hole + 1) : 0;

			for (uint32_t k = 0; k < g.page_size; k++)
				image[k] = k >= hoff && k < hoff + hole ? 0 : (uint8_t)(k * 131 + op);
			want[n].type = hole ? LOGREC_PAGE_IMAGE_HOLE : LOGREC_PAGE_IMAGE;
			want[n].len = logrec_image_len(g.page_size, hole);
			want[n].src = NULL;
			ret = logrec_enc_image(&e, want[n].txid, want[n].pgno, image, hoff, hole,
					       &want[n].lsn);
			break;
		}
		case 1:
			want[n].type = LOGREC_COMMIT;
			want[n].pgno = 0;
			want[n].len = 0;
			want[n].src = NULL;
			ret = logrec_enc_add(&e, LOGREC_COMMIT, want[n].txid, 0, NULL, 0, &want[n].lsn);
			break;
		default: {
			/* One change of len input bytes at an offset derived from the input. */
			uint32_t len = 1 + (uint32_t)(a % 64);
			uint32_t off = (uint32_t)(data[i - 1]) * 7 % (g.page_size - len + 1);

			if (size - i < len)
				goto encoded;
			want[n].type = LOGREC_PAGE_DELTA;
			want[n].len = 4 + len;
			want[n].src = data + i;
			want[n].off = off;
			ret = logrec_enc_delta_begin(&e, want[n].txid, want[n].pgno, &want[n].lsn);
			if (ret == 0) {
				ret = logrec_enc_delta_add(&e, off, data + i, len);
				if (ret == 0)
					ret = logrec_enc_delta_end(&e);
				else
					logrec_enc_delta_cancel(&e);
			}
			i += len;
			break;
		}
		}
		if (ret != 0) {
			CHECK(ret == -ENOSPC || ret == URT_E_TOOBIG);
			break;
		}
		n++;
	}
encoded:
	*lsn_out = lsn;
	if (n == 0) {
		CHECK(logrec_enc_finish(&e, &span) == -EINVAL);
		return 0;
	}
	CHECK(logrec_enc_finish(&e, &span) == 0);
	CHECK(span <= cap && span % g.block_size == 0);
	CHECK(logrec_batch_decode(buf, span, &g, lsn, 1, &b, NULL) == 0);
	CHECK(b.nrec == n);
	logrec_iter_init(&it, buf, span, &g, &b);
	for (uint32_t k = 0; k < n; k++) {
		CHECK(logrec_iter_next(&it, &rec, NULL) == 1);
		CHECK(rec.type == want[k].type && rec.txid == want[k].txid);
		CHECK(rec.pgno == want[k].pgno && rec.lsn == want[k].lsn && rec.len == want[k].len);
		if (want[k].src) {
			CHECK(urt_load_le16(rec.payload) == want[k].off);
			CHECK(urt_load_le16(rec.payload + 2) == rec.len - 4);
			CHECK(memcmp(rec.payload + 4, want[k].src, rec.len - 4) == 0);
		}
	}
	CHECK(logrec_iter_next(&it, &rec, NULL) == 0);
	return span;
}

static void fuzz_encoder(const uint8_t *data, size_t size, uint8_t mode)
{
	static uint8_t buf[1 << 16];
	uint64_t lsn;

	build_batch(data, size, mode, buf, &lsn);
}

/*
 * Builds a valid batch from the first part of the input, then applies the
 * rest as (u16 offset, u8 xor) edits, optionally reseals the checksums, and
 * decodes the result.
 */
static void fuzz_log_mutate(const uint8_t *data, size_t size, uint8_t mode)
{
	static uint8_t buf[1 << 16];
	struct logrec_geom g = fuzz_geom(mode);
	size_t ops = size ? (size_t)data[0] * 4 : 0;
	uint64_t lsn, span;
	uint8_t *copy;

	if (size == 0)
		return;
	if (ops > size - 1)
		ops = size - 1;
	if (ops == 0) {
		/* A WRAP batch: one block, at an LSN a few blocks before the region end. */
		lsn = 2 * g.log_len - (uint64_t)(1 + data[0] % 7) * g.block_size;
		CHECK(logrec_wrap_encode(buf, g.block_size, &g, lsn, 1, &span) == 0);
		CHECK(span == g.log_len - lsn % g.log_len);
		span = g.block_size;
	} else {
		span = build_batch(data + 1, ops, mode, buf, &lsn);
		if (span == 0)
			return;
	}
	for (size_t i = 1 + ops; i + 3 <= size; i += 3)
		buf[urt_load_le16(data + i) % span] ^= data[i + 2];
	if (mode & 0x80)
		batch_fixup(buf, span, lsn, (mode & 0x40) ? FIX_TAIL_LEN : 0);
	copy = copy_in(buf, span, span);
	/* The batch carries epoch 1: a minimum of 2 makes it a previous incarnation. */
	batch_check(copy, span, &g, lsn, (mode & 0x08) ? 2 : 1);
	free(copy);
}

/* ---- page deltas ----------------------------------------------------------- */

/* Raw bytes as a PAGE_DELTA payload: applied inside the page, or rejected with the page intact. */
static void fuzz_delta_raw(const uint8_t *data, size_t size, uint8_t mode)
{
	static uint8_t page[16384], before[16384];
	uint32_t page_size = page_sizes[(mode >> 4) % 3];
	uint8_t *payload = copy_in(data, size, size);
	struct logrec rec = { .type = LOGREC_PAGE_DELTA, .payload = size ? payload : NULL,
			      .len = (uint32_t)size };
	const char *why = NULL;
	int ret;

	memset(page, 0x5a, sizeof(page));
	memcpy(before, page, sizeof(page));
	ret = logrec_apply(page, page_size, &rec, &why);
	CHECK(ret == 0 || ret == URT_E_CORRUPT);
	CHECK(ret == 0 || why != NULL);
	if (ret)
		CHECK(memcmp(page, before, sizeof(page)) == 0);
	/* Nothing past the page is ever written. */
	CHECK(memcmp(page + page_size, before + page_size, sizeof(page) - page_size) == 0);
	free(payload);
}

/* Diff two pages, encode the delta, decode it and apply it: old becomes new. */
static void fuzz_delta_diff(const uint8_t *data, size_t size, uint8_t mode)
{
	struct logrec_geom g = fuzz_geom(mode);
	uint32_t ps = g.page_size;
	uint8_t *oldp = copy_in(data, size, ps), *newp = malloc(ps), *got = malloc(ps);
	size_t cap = 64u << 10;
	uint8_t *buf = malloc(cap);
	struct delta_mask m;
	struct logrec_enc e;
	struct logrec_batch b;
	struct logrec_iter it;
	struct logrec rec;
	uint64_t lsn = 16 * (uint64_t)g.block_size, span, before;
	uint32_t n, popc = 0;
	const char *why = NULL;

	CHECK(newp && got && buf);
	memcpy(newp, oldp, ps);
	/* Edits: (u16 offset, u8 length, u8 value) per 4 input bytes after the first page. */
	for (size_t i = ps; i + 4 <= size; i += 4) {
		uint32_t off = urt_load_le16(data + i) % ps, len = data[i + 2] % 200 + 1u;

		memset(newp + off, data[i + 3], len < ps - off ? len : ps - off);
	}
	n = delta_diff(oldp, newp, ps, &m);
	for (unsigned w = 0; w < DELTA_WORDS; w++)
		popc += (uint32_t)__builtin_popcountll(m.w[w]);
	CHECK(n == popc);
	memcpy(got, oldp, ps);
	delta_copy(got, newp, ps, &m);
	CHECK(memcmp(got, newp, ps) == 0);
	CHECK(n == 0 ? memcmp(oldp, newp, ps) == 0 : delta_rec_bytes(&m, ps) > 0);
	if (n == 0 || logrec_enc_begin(&e, buf, cap, &g, lsn, 1) != 0)
		goto out;
	before = e.off;
	if (delta_encode(&e, 7, 3 % g.page_count, newp, &m, NULL) != 0)
		goto out;
	CHECK(e.off - before == delta_rec_bytes(&m, ps));
	CHECK(logrec_enc_finish(&e, &span) == 0);
	CHECK(logrec_batch_decode(buf, span, &g, lsn, 1, &b, &why) == 0);
	logrec_iter_init(&it, buf, span, &g, &b);
	CHECK(logrec_iter_next(&it, &rec, &why) == 1 && rec.type == LOGREC_PAGE_DELTA);
	memcpy(got, oldp, ps);
	CHECK(logrec_apply(got, ps, &rec, &why) == 0);
	CHECK(memcmp(got, newp, ps) == 0);
	CHECK(logrec_iter_next(&it, &rec, &why) == 0);
out:
	free(oldp);
	free(newp);
	free(got);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t mode;

	if (size < 1)
		return 0;
	mode = data[0];
	data++;
	size--;
	switch (mode & 0x07) {
	case 0:
		fuzz_sb(data, size, mode);
		break;
	case 1:
		fuzz_sb_pick(data, size);
		break;
	case 2:
		fuzz_page(data, size, mode);
		break;
	case 3:
		fuzz_log(data, size, mode, mode & 0x08);
		break;
	case 4:
		fuzz_sb_mutate(data, size, mode);
		break;
	case 5:
		fuzz_log_mutate(data, size, mode);
		break;
	case 6:
		if (mode & 0x08)
			fuzz_delta_raw(data, size, mode);
		else
			fuzz_delta_diff(data, size, mode);
		break;
	default:
		fuzz_encoder(data, size, mode);
		break;
	}
	return 0;
}
