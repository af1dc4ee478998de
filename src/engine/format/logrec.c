/*
 * Log batches and records: the encoder the WAL fills, and the decoders
 * recovery runs over whatever the device returns.
 *
 * Design notes.
 *
 * A batch is checked in two steps because recovery reads it in two: first
 * one block (the header, which has its own CRC, says how long the batch
 * is), then the rest.  Trusting the span of a header only after its CRC,
 * store id and LSN all hold keeps recovery from reading megabytes on the
 * word of a random block.
 *
 * Invariants of a valid DATA batch (checked by logrec_batch_check_header
 * and logrec_batch_check_body):
 *  1. lsn == the LSN the reader expects, lsn % block_size == 0, and the
 *     batch lies inside the log region: lsn % log_len + span <= log_len.
 *  2. span == roundup(64 + body_len, block_size).
 *  3. body_len is the exact sum of its nrec records, each 8-byte aligned:
 *     roundup(32 + len, 8) bytes, padding zero.
 *  4. Each record has a good CRC, no unknown type or flag, and a payload
 *     that fits its type (a full page, deltas inside the page, nothing).
 * A WRAP batch has nrec == 0, body_len == 0 and span == log_len - lsn %
 * log_len, so the next batch starts at the next lap.
 *
 * Outcomes: a batch that was simply never written for this LSN (wrong
 * magic, bad header CRC, older lap, other store, older epoch) or was torn
 * (bad body CRC) is LOGREC_END, the normal end of the log.  A batch whose
 * checksums hold but whose contents break an invariant is URT_E_CORRUPT:
 * a good checksum over bad contents means a bug or a lost superblock, and
 * ending the log there would silently drop committed transactions.
 *
 * The encoder keeps the batch valid at every step: a record either fits
 * whole (header, payload, padding) or is refused with -ENOSPC and leaves
 * no trace, so the WAL can always finish what it has.
 */
#include <errno.h>

#include "base/assert.h"
#include "base/crc32c.h"
#include "engine/format/format.h"

typedef struct urt_log_batch_disk lbd;
typedef struct urt_log_rec_disk lrd;

/* The body_len field is 32 bits, so no batch may exceed this many bytes. */
#define BATCH_BYTES_MAX ((uint64_t)UINT32_MAX)

static uint64_t round_up(uint64_t x, uint64_t align)
{
	return (x + align - 1) / align * align;
}

/* Bytes a record with a payload of len bytes occupies in the body. */
static uint64_t rec_size(uint64_t len)
{
	return round_up(URT_LOG_REC_HDR_SIZE + len, URT_LOG_REC_ALIGN);
}

static void geom_assert(const struct logrec_geom *g)
{
	URT_ASSERT(urt_block_size_valid(g->block_size));
	URT_ASSERT(urt_page_size_valid(g->page_size));
	URT_ASSERT(g->log_len > 0 && g->log_len % g->block_size == 0);
}

void logrec_geom_from_sb(struct logrec_geom *g, const struct superblock *sb)
{
	g->store_id = sb->store_id;
	g->log_len = sb->log_len;
	g->page_count = sb->page_count;
	g->block_size = sb->block_size;
	g->page_size = sb->page_size;
}

/* CRC32C of a 64-byte batch header with the hdr_crc field taken as zero. */
static uint32_t batch_hdr_crc(const uint8_t *p)
{
	static const uint8_t zero[4];
	uint32_t crc = urt_crc32c(0, p, offsetof(lbd, hdr_crc));

	crc = urt_crc32c(crc, zero, sizeof(zero));
	return urt_crc32c(crc, p + offsetof(lbd, hdr_crc) + 4,
			  URT_LOG_BATCH_HDR_SIZE - offsetof(lbd, hdr_crc) - 4);
}

/* CRC32C of a record header with its crc field taken as zero, then its payload. */
static uint32_t rec_crc(const uint8_t *rec, uint32_t len)
{
	static const uint8_t zero[4];
	uint32_t crc = urt_crc32c(0, rec, offsetof(lrd, crc));

	crc = urt_crc32c(crc, zero, sizeof(zero));
	return urt_crc32c(crc, rec + offsetof(lrd, crc) + 4,
			  URT_LOG_REC_HDR_SIZE - offsetof(lrd, crc) - 4 + (size_t)len);
}

int logrec_batch_check_header(const void *buf, size_t len, const struct logrec_geom *g,
			      uint64_t expect_lsn, uint64_t min_epoch, struct logrec_batch *out,
			      const char **why)
{
	const uint8_t *p = buf;
	uint64_t pos, max_span;
	struct logrec_batch b;

	geom_assert(g);
	if (len < URT_LOG_BATCH_HDR_SIZE)
		return fmt_reject(why, -EINVAL, "buffer shorter than a batch header");
	if (memcmp(p, URT_LOG_MAGIC, sizeof(((lbd *)0)->magic)) != 0)
		return fmt_reject(why, LOGREC_END, "no batch header here (bad magic)");
	if (batch_hdr_crc(p) != URT_GET32(p, lbd, hdr_crc))
		return fmt_reject(why, LOGREC_END, "batch header checksum mismatch (torn or never written)");
	if (URT_GET64(p, lbd, store_id) != g->store_id)
		return fmt_reject(why, LOGREC_END, "batch of another store (stale data on a reused device)");

	b.lsn = URT_GET64(p, lbd, lsn);
	b.epoch = URT_GET64(p, lbd, epoch);
	b.span = URT_GET64(p, lbd, span);
	b.body_len = URT_GET32(p, lbd, body_len);
	b.body_crc = URT_GET32(p, lbd, body_crc);
	b.nrec = URT_GET32(p, lbd, nrec);
	b.type = URT_GET16(p, lbd, type);
	pos = expect_lsn % g->log_len;

	if (b.lsn % g->log_len != pos)
		return fmt_reject(why, LOGREC_END, "batch header was not written at its own position");
	if (b.lsn < expect_lsn)
		return fmt_reject(why, LOGREC_END, "stale batch from an earlier lap of the log");
	if (b.lsn > expect_lsn)
		return fmt_reject(why, URT_E_CORRUPT,
				  "batch from a later lap: the log was overwritten past the checkpoint");
	if (b.epoch < min_epoch)
		return fmt_reject(why, LOGREC_END, "stale batch of an earlier log incarnation");

	/* From here on the header is ours and current: any inconsistency is corruption. */
	if (b.lsn % g->block_size)
		return fmt_reject(why, URT_E_CORRUPT, "batch LSN is not block aligned");
	if (URT_GET16(p, lbd, flags) != 0)
		return fmt_reject(why, URT_E_CORRUPT, "unknown batch flags are set");
	b.durable_lsn = URT_GET64(p, lbd, durable_lsn);
	if (b.durable_lsn > b.lsn)
		return fmt_reject(why, URT_E_CORRUPT, "batch claims a durable point past itself");
	max_span = g->log_len - pos;
	switch (b.type) {
	case LOGREC_BATCH_DATA:
		if (b.nrec == 0)
			return fmt_reject(why, URT_E_CORRUPT, "data batch holds no record");
		if (b.body_len % URT_LOG_REC_ALIGN)
			return fmt_reject(why, URT_E_CORRUPT, "batch body length is not 8-byte aligned");
		if ((uint64_t)b.nrec * URT_LOG_REC_HDR_SIZE > b.body_len)
			return fmt_reject(why, URT_E_CORRUPT, "record count does not fit the body length");
		if (b.span != round_up(URT_LOG_BATCH_HDR_SIZE + (uint64_t)b.body_len, g->block_size))
			return fmt_reject(why, URT_E_CORRUPT, "batch span disagrees with its body length");
		if (b.span > max_span)
			return fmt_reject(why, URT_E_CORRUPT, "batch runs past the end of the log region");
		break;
	case LOGREC_BATCH_WRAP:
		if (pos == 0)
			return fmt_reject(why, URT_E_CORRUPT, "wrap batch at the start of the log region");
		if (b.nrec != 0 || b.body_len != 0 || b.body_crc != 0)
			return fmt_reject(why, URT_E_CORRUPT, "wrap batch has a body");
		if (b.span != max_span)
			return fmt_reject(why, URT_E_CORRUPT, "wrap batch does not reach the end of the log region");
		break;
	default:
		return fmt_reject(why, URT_E_CORRUPT, "unknown batch type");
	}
	*out = b;
	if (why)
		*why = NULL;
	return 0;
}

int logrec_batch_check_body(const void *buf, size_t len, const struct logrec_geom *g,
			    const struct logrec_batch *b, const char **why)
{
	const uint8_t *p = buf;
	struct logrec_iter it;
	struct logrec rec;
	int ret;

	if (b->type == LOGREC_BATCH_WRAP)
		return 0;
	if (len < URT_LOG_BATCH_HDR_SIZE || len - URT_LOG_BATCH_HDR_SIZE < b->body_len)
		return fmt_reject(why, -EINVAL, "buffer shorter than the batch body");
	if (urt_crc32c(0, p + URT_LOG_BATCH_HDR_SIZE, b->body_len) != b->body_crc)
		return fmt_reject(why, LOGREC_END, "batch body checksum mismatch (torn batch write)");

	logrec_iter_init(&it, buf, len, g, b);
	while ((ret = logrec_iter_next(&it, &rec, why)) == 1)
		;
	return ret;
}

int logrec_batch_decode(const void *buf, size_t len, const struct logrec_geom *g,
			uint64_t expect_lsn, uint64_t min_epoch, struct logrec_batch *out,
			const char **why)
{
	int ret = logrec_batch_check_header(buf, len, g, expect_lsn, min_epoch, out, why);

	if (ret)
		return ret;
	return logrec_batch_check_body(buf, len, g, out, why);
}

void logrec_iter_init(struct logrec_iter *it, const void *buf, size_t len,
		      const struct logrec_geom *g, const struct logrec_batch *b)
{
	it->buf = buf;
	it->len = len;
	it->end = URT_LOG_BATCH_HDR_SIZE + (size_t)b->body_len;
	it->off = URT_LOG_BATCH_HDR_SIZE;
	it->lsn = b->lsn;
	it->left = b->type == LOGREC_BATCH_DATA ? b->nrec : 0;
	it->geom = *g;
}

/* Checks the change list of a PAGE_DELTA payload. */
static int delta_check(const struct logrec *rec, uint32_t page_size, const char **why)
{
	struct logrec_delta_iter d;
	const uint8_t *data;
	uint32_t off, len;
	int ret;

	logrec_delta_iter_init(&d, rec, page_size);
	while ((ret = logrec_delta_next(&d, &off, &data, &len, why)) == 1)
		;
	return ret;
}

/*
 * Checks a PAGE_IMAGE_HOLE payload: a hole of at least one byte inside the
 * page, and exactly the page's other bytes after the header.  On success
 * sets *off and *len to the hole.
 */
static int hole_decode(const struct logrec *rec, uint32_t page_size, uint32_t *off,
		       uint32_t *len, const char **why)
{
	uint32_t o, n;

	if (!rec->payload || rec->len < URT_LOG_HOLE_HDR_SIZE)
		return fmt_reject(why, URT_E_CORRUPT, "page image with a hole has no hole header");
	o = urt_load_le16(rec->payload + offsetof(struct urt_log_hole_disk, off));
	n = urt_load_le16(rec->payload + offsetof(struct urt_log_hole_disk, len));
	if (n == 0)
		return fmt_reject(why, URT_E_CORRUPT, "page image with an empty hole");
	if (o + n > page_size)
		return fmt_reject(why, URT_E_CORRUPT, "page image hole runs past the page end");
	if (rec->len != logrec_image_len(page_size, n))
		return fmt_reject(why, URT_E_CORRUPT,
				  "page image with a hole is not one page long without its hole");
	*off = o;
	*len = n;
	return 0;
}

static int hole_check(const struct logrec *rec, uint32_t page_size, const char **why)
{
	uint32_t off, len;

	return hole_decode(rec, page_size, &off, &len, why);
}

/* Marks the iterator failed, so that later calls keep failing. */
static int iter_fail(struct logrec_iter *it, const char **why, const char *reason)
{
	it->left = 0;
	it->off = SIZE_MAX;
	return fmt_reject(why, URT_E_CORRUPT, reason);
}

int logrec_iter_next(struct logrec_iter *it, struct logrec *rec, const char **why)
{
	const struct logrec_geom *g = &it->geom;
	const char *reason;
	const uint8_t *r;
	uint64_t size, room;
	size_t limit;
	struct logrec out;

	if (it->left == 0) {
		if (it->off != it->end)
			return iter_fail(it, why, it->off == SIZE_MAX ? "batch already failed to decode"
								      : "batch body has bytes after its last record");
		return 0;
	}
	/* Records must lie inside the body the header claims and inside the buffer. */
	limit = it->end < it->len ? it->end : it->len;
	if (it->off >= limit || limit - it->off < URT_LOG_REC_HDR_SIZE)
		return iter_fail(it, why, "record header runs past the batch body");
	room = limit - it->off;
	r = it->buf + it->off;
	out.type = URT_GET8(r, lrd, type);
	out.len = URT_GET32(r, lrd, len);
	out.txid = URT_GET64(r, lrd, txid);
	out.pgno = URT_GET64(r, lrd, pgno);
	out.lsn = it->lsn + it->off;
	size = rec_size(out.len);
	if (size > room)
		return iter_fail(it, why, "record length runs past the batch body");
	if (rec_crc(r, out.len) != URT_GET32(r, lrd, crc))
		return iter_fail(it, why, "record checksum mismatch");
	if (URT_GET8(r, lrd, flags) || URT_GET16(r, lrd, reserved0) || URT_GET32(r, lrd, reserved1))
		return iter_fail(it, why, "record has unknown flags or nonzero reserved bytes");
	if (!urt_is_zero(r + URT_LOG_REC_HDR_SIZE + out.len, size - URT_LOG_REC_HDR_SIZE - out.len))
		return iter_fail(it, why, "record padding is not zero");
	out.payload = out.len ? r + URT_LOG_REC_HDR_SIZE : NULL;

	switch (out.type) {
	case LOGREC_PAGE_IMAGE:
		if (out.len != g->page_size)
			return iter_fail(it, why, "page image is not one page long");
		if (out.pgno >= g->page_count)
			return iter_fail(it, why, "record names a page past the page region");
		break;
	case LOGREC_PAGE_IMAGE_HOLE:
		if (out.pgno >= g->page_count)
			return iter_fail(it, why, "record names a page past the page region");
		if (hole_check(&out, g->page_size, &reason))
			return iter_fail(it, why, reason);
		break;
	case LOGREC_PAGE_DELTA:
		if (out.len == 0)
			return iter_fail(it, why, "page delta holds no change");
		if (out.pgno >= g->page_count)
			return iter_fail(it, why, "record names a page past the page region");
		if (delta_check(&out, g->page_size, &reason))
			return iter_fail(it, why, reason);
		break;
	case LOGREC_COMMIT:
		if (out.len != 0 || out.txid == 0 || out.pgno != 0)
			return iter_fail(it, why, "commit record needs a txid and nothing else");
		break;
	case LOGREC_CHECKPOINT:
		if (out.len != 0 || out.txid != 0 || out.pgno != 0)
			return iter_fail(it, why, "checkpoint record carries data");
		break;
	default:
		return iter_fail(it, why, "unknown record type");
	}
	it->off += size;
	it->left--;
	*rec = out;
	return 1;
}

void logrec_delta_iter_init(struct logrec_delta_iter *it, const struct logrec *rec,
			    uint32_t page_size)
{
	it->p = rec->payload;
	it->off = 0;
	it->len = rec->payload ? rec->len : 0;
	it->page_size = page_size;
}

int logrec_delta_next(struct logrec_delta_iter *it, uint32_t *off, const uint8_t **data,
		      uint32_t *len, const char **why)
{
	uint32_t o, n, room;

	if (it->off == it->len)
		return 0;
	room = it->len - it->off;
	if (room < URT_LOG_DELTA_HDR_SIZE)
		return fmt_reject(why, URT_E_CORRUPT, "delta entry header runs past the record");
	o = urt_load_le16(it->p + it->off + offsetof(struct urt_log_delta_disk, off));
	n = urt_load_le16(it->p + it->off + offsetof(struct urt_log_delta_disk, len));
	if (n == 0)
		return fmt_reject(why, URT_E_CORRUPT, "empty delta entry");
	if (o + n > it->page_size)
		return fmt_reject(why, URT_E_CORRUPT, "delta entry runs past the page end");
	if (n > room - URT_LOG_DELTA_HDR_SIZE)
		return fmt_reject(why, URT_E_CORRUPT, "delta bytes run past the record");
	*off = o;
	*len = n;
	*data = it->p + it->off + URT_LOG_DELTA_HDR_SIZE;
	it->off += URT_LOG_DELTA_HDR_SIZE + n;
	return 1;
}

int logrec_apply(void *page, uint32_t page_size, const struct logrec *rec, const char **why)
{
	struct logrec_delta_iter d;
	const uint8_t *data;
	uint32_t off, len;
	int ret;

	switch (rec->type) {
	case LOGREC_PAGE_IMAGE:
		if (rec->len != page_size || !rec->payload)
			return fmt_reject(why, URT_E_CORRUPT, "page image is not one page long");
		memcpy(page, rec->payload, page_size);
		return 0;
	case LOGREC_PAGE_IMAGE_HOLE: {
		const uint8_t *src;

		ret = hole_decode(rec, page_size, &off, &len, why);
		if (ret)
			return ret;
		src = rec->payload + URT_LOG_HOLE_HDR_SIZE;
		memcpy(page, src, off);
		memset((uint8_t *)page + off, 0, len);
		memcpy((uint8_t *)page + off + len, src + off, page_size - off - len);
		return 0;
	}
	case LOGREC_PAGE_DELTA:
		/* Check everything first, so a bad record leaves the page untouched. */
		if (rec->len == 0)
			return fmt_reject(why, URT_E_CORRUPT, "page delta holds no change");
		ret = delta_check(rec, page_size, why);
		if (ret)
			return ret;
		logrec_delta_iter_init(&d, rec, page_size);
		while (logrec_delta_next(&d, &off, &data, &len, why) == 1)
			memcpy((uint8_t *)page + off, data, len);
		return 0;
	default:
		return fmt_reject(why, -EINVAL, "record does not change a page");
	}
}

int logrec_enc_begin(struct logrec_enc *e, void *buf, size_t cap, const struct logrec_geom *g,
		     uint64_t lsn, uint64_t epoch)
{
	uint64_t limit;

	geom_assert(g);
	if (cap < g->block_size || cap % g->block_size || lsn % g->block_size)
		return -EINVAL;
	/* All three limits are multiples of block_size, so padding always fits under cap. */
	limit = logrec_room_before_wrap(g, lsn);
	if (limit > BATCH_BYTES_MAX / g->block_size * g->block_size)
		limit = BATCH_BYTES_MAX / g->block_size * g->block_size;
	if (limit > cap)
		limit = cap;
	e->buf = buf;
	e->buf_cap = cap;
	e->cap = limit;
	e->off = URT_LOG_BATCH_HDR_SIZE;
	e->delta_off = 0;
	e->nrec = 0;
	e->lsn = lsn;
	e->epoch = epoch;
	e->durable_lsn = 0;
	e->geom = *g;
	return 0;
}

size_t logrec_enc_room(const struct logrec_enc *e)
{
	return e->cap - e->off;
}

/* Largest batch this encoder could ever build, wherever it started. */
static uint64_t enc_batch_max(const struct logrec_enc *e)
{
	uint64_t max = e->buf_cap;

	if (max > e->geom.log_len)
		max = e->geom.log_len;
	if (max > BATCH_BYTES_MAX)
		max = BATCH_BYTES_MAX;
	return max;
}

/* Returns 0 when a record of `size` bytes fits at the end of the batch. */
static int enc_fits(const struct logrec_enc *e, uint64_t size)
{
	if (URT_LOG_BATCH_HDR_SIZE + size > enc_batch_max(e))
		return URT_E_TOOBIG;
	if (size > e->cap - e->off)
		return -ENOSPC;
	return 0;
}

/* Writes a record header at r; the crc is filled in when the payload is complete. */
static void enc_rec_hdr(uint8_t *r, uint8_t type, uint64_t txid, uint64_t pgno, uint32_t len)
{
	memset(r, 0, URT_LOG_REC_HDR_SIZE);
	URT_PUT8(r, lrd, type, type);
	URT_PUT32(r, lrd, len, len);
	URT_PUT64(r, lrd, txid, txid);
	URT_PUT64(r, lrd, pgno, pgno);
}

/* Zero-pads the record at r (payload of len bytes) and stores its crc; returns its size. */
static uint64_t enc_rec_seal(uint8_t *r, uint32_t len)
{
	uint64_t size = rec_size(len);

	memset(r + URT_LOG_REC_HDR_SIZE + len, 0, size - URT_LOG_REC_HDR_SIZE - len);
	URT_PUT32(r, lrd, len, len);
	URT_PUT32(r, lrd, crc, rec_crc(r, len));
	return size;
}

int logrec_enc_add(struct logrec_enc *e, uint8_t type, uint64_t txid, uint64_t pgno,
		   const void *payload, uint32_t len, uint64_t *lsn_out)
{
	uint8_t *r;
	int ret;

	if (e->delta_off)
		return -EINVAL;
	switch (type) {
	case LOGREC_PAGE_IMAGE:
		if (len != e->geom.page_size || !payload || pgno >= e->geom.page_count)
			return -EINVAL;
		break;
	case LOGREC_COMMIT:
		if (len != 0 || txid == 0 || pgno != 0)
			return -EINVAL;
		break;
	case LOGREC_CHECKPOINT:
		if (len != 0 || txid != 0 || pgno != 0)
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	ret = enc_fits(e, rec_size(len));
	if (ret)
		return ret;
	r = e->buf + e->off;
	enc_rec_hdr(r, type, txid, pgno, len);
	if (len)
		memcpy(r + URT_LOG_REC_HDR_SIZE, payload, len);
	if (lsn_out)
		*lsn_out = e->lsn + e->off;
	e->off += enc_rec_seal(r, len);
	e->nrec++;
	return 0;
}

int logrec_enc_image(struct logrec_enc *e, uint64_t txid, uint64_t pgno, const void *page,
		     uint32_t hole_off, uint32_t hole_len, uint64_t *lsn_out)
{
	const uint8_t *src = page;
	uint32_t ps = e->geom.page_size, len;
	uint8_t *r, *d;
	int ret;

	if (hole_len == 0)
		return logrec_enc_add(e, LOGREC_PAGE_IMAGE, txid, pgno, page, ps, lsn_out);
	if (e->delta_off || !page || pgno >= e->geom.page_count || hole_off > ps ||
	    hole_len > ps - hole_off || !urt_is_zero(src + hole_off, hole_len))
		return -EINVAL;
	len = logrec_image_len(ps, hole_len);
	ret = enc_fits(e, rec_size(len));
	if (ret)
		return ret;
	r = e->buf + e->off;
	enc_rec_hdr(r, LOGREC_PAGE_IMAGE_HOLE, txid, pgno, len);
	d = r + URT_LOG_REC_HDR_SIZE;
	urt_store_le16(d + offsetof(struct urt_log_hole_disk, off), (uint16_t)hole_off);
	urt_store_le16(d + offsetof(struct urt_log_hole_disk, len), (uint16_t)hole_len);
	d += URT_LOG_HOLE_HDR_SIZE;
	memcpy(d, src, hole_off);
	memcpy(d + hole_off, src + hole_off + hole_len, ps - hole_off - hole_len);
	if (lsn_out)
		*lsn_out = e->lsn + e->off;
	e->off += enc_rec_seal(r, len);
	e->nrec++;
	return 0;
}

int logrec_enc_delta_begin(struct logrec_enc *e, uint64_t txid, uint64_t pgno, uint64_t *lsn_out)
{
	int ret;

	if (e->delta_off || pgno >= e->geom.page_count)
		return -EINVAL;
	/* Room for the smallest complete delta: one change of one byte. */
	ret = enc_fits(e, rec_size(URT_LOG_DELTA_HDR_SIZE + 1));
	if (ret)
		return ret;
	enc_rec_hdr(e->buf + e->off, LOGREC_PAGE_DELTA, txid, pgno, 0);
	if (lsn_out)
		*lsn_out = e->lsn + e->off;
	e->delta_off = e->off;
	e->off += URT_LOG_REC_HDR_SIZE;
	return 0;
}

int logrec_enc_delta_add(struct logrec_enc *e, uint32_t off, const void *data, uint32_t len)
{
	uint64_t payload, size;
	uint8_t *d;

	if (!e->delta_off || len == 0 || off > e->geom.page_size || len > e->geom.page_size - off)
		return -EINVAL;
	payload = e->off - e->delta_off - URT_LOG_REC_HDR_SIZE;
	if (URT_LOG_BATCH_HDR_SIZE + rec_size(URT_LOG_DELTA_HDR_SIZE + (uint64_t)len) >
	    enc_batch_max(e))
		return URT_E_TOOBIG;
	size = rec_size(payload + URT_LOG_DELTA_HDR_SIZE + len);
	if (size > e->cap - e->delta_off || payload + URT_LOG_DELTA_HDR_SIZE + len > UINT32_MAX)
		return -ENOSPC;
	d = e->buf + e->off;
	urt_store_le16(d + offsetof(struct urt_log_delta_disk, off), (uint16_t)off);
	urt_store_le16(d + offsetof(struct urt_log_delta_disk, len), (uint16_t)len);
	memcpy(d + URT_LOG_DELTA_HDR_SIZE, data, len);
	e->off += URT_LOG_DELTA_HDR_SIZE + len;
	return 0;
}

int logrec_enc_delta_end(struct logrec_enc *e)
{
	uint64_t payload;
	uint8_t *r;

	if (!e->delta_off)
		return -EINVAL;
	payload = e->off - e->delta_off - URT_LOG_REC_HDR_SIZE;
	if (payload == 0)
		return -EINVAL;
	r = e->buf + e->delta_off;
	e->off = e->delta_off + enc_rec_seal(r, (uint32_t)payload);
	e->delta_off = 0;
	e->nrec++;
	return 0;
}

void logrec_enc_delta_cancel(struct logrec_enc *e)
{
	if (!e->delta_off)
		return;
	e->off = e->delta_off;
	e->delta_off = 0;
}

/* Writes a batch header into p. */
static void enc_batch_hdr(uint8_t *p, const struct logrec_geom *g, uint64_t lsn, uint64_t epoch,
			  uint64_t span, uint32_t body_len, uint32_t body_crc, uint32_t nrec,
			  uint16_t type, uint64_t durable_lsn)
{
	memset(p, 0, URT_LOG_BATCH_HDR_SIZE);
	memcpy(p, URT_LOG_MAGIC, sizeof(((lbd *)0)->magic));
	URT_PUT64(p, lbd, store_id, g->store_id);
	URT_PUT64(p, lbd, lsn, lsn);
	URT_PUT64(p, lbd, epoch, epoch);
	URT_PUT64(p, lbd, span, span);
	URT_PUT32(p, lbd, body_len, body_len);
	URT_PUT32(p, lbd, body_crc, body_crc);
	URT_PUT32(p, lbd, nrec, nrec);
	URT_PUT16(p, lbd, type, type);
	URT_ASSERT(durable_lsn <= lsn);
	URT_PUT64(p, lbd, durable_lsn, durable_lsn);
	URT_PUT32(p, lbd, hdr_crc, batch_hdr_crc(p));
}

int logrec_enc_finish(struct logrec_enc *e, uint64_t *span)
{
	uint32_t body_len;
	uint64_t end;

	if (e->delta_off || e->nrec == 0)
		return -EINVAL;
	body_len = (uint32_t)(e->off - URT_LOG_BATCH_HDR_SIZE);
	end = round_up(e->off, e->geom.block_size);
	URT_ASSERT(end <= e->cap);
	memset(e->buf + e->off, 0, end - e->off);
	enc_batch_hdr(e->buf, &e->geom, e->lsn, e->epoch, end, body_len,
		      urt_crc32c(0, e->buf + URT_LOG_BATCH_HDR_SIZE, body_len), e->nrec,
		      LOGREC_BATCH_DATA, e->durable_lsn);
	*span = end;
	return 0;
}

int logrec_wrap_encode(void *buf, size_t cap, const struct logrec_geom *g, uint64_t lsn,
		       uint64_t epoch, uint64_t *span)
{
	uint64_t room;

	geom_assert(g);
	if (cap < g->block_size || lsn % g->block_size || lsn % g->log_len == 0)
		return -EINVAL;
	room = logrec_room_before_wrap(g, lsn);
	memset(buf, 0, g->block_size);
	enc_batch_hdr(buf, g, lsn, epoch, room, 0, 0, 0, LOGREC_BATCH_WRAP, 0);
	*span = room;
	return 0;
}
