/*
 * The on-disk format of the urt page store: superblock, page header, log
 * batches and log records.  docs/format.md is the prose version of this
 * file, with a diagram and the rules recovery relies on.
 *
 * A shard's region of a device is laid out as
 *
 *   0        4 KiB     8 KiB                                          end
 *   +--------+--------+----------------------+---------------------------+
 *   | sb A   | sb B   | log (circular)       | pages 0 .. page_count-1   |
 *   +--------+--------+----------------------+---------------------------+
 *                     ^log_start             ^page_start (page aligned)
 *
 * Every multi-byte integer on disk is little-endian.  The structs below
 * document the layout and pin it with _Static_assert; the code never casts
 * a device buffer to them (buffers may be unaligned and are untrusted).  It
 * reads and writes each field through the URT_GET and URT_PUT macros, at
 * the field's offsetof().
 *
 * Decoders take untrusted bytes: they never read past the length they are
 * given, never trust a length field before checking it against that length,
 * and report every inconsistency with an error code plus a static reason
 * string (the `why` out-parameter, which may be NULL).
 */
#ifndef URT_ENGINE_FORMAT_H
#define URT_ENGINE_FORMAT_H

#include <endian.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "urt/error.h"

/* ---- Little-endian access to possibly unaligned bytes ------------------ */

static inline uint16_t urt_load_le16(const void *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return le16toh(v);
}

static inline uint32_t urt_load_le32(const void *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

static inline uint64_t urt_load_le64(const void *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

static inline void urt_store_le16(void *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, sizeof(v));
}

static inline void urt_store_le32(void *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, sizeof(v));
}

static inline void urt_store_le64(void *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, sizeof(v));
}

/* Fails to compile when field f of struct st is not n bytes wide. */
#define URT_FIELD_IS(st, f, n) ((void)sizeof(char[sizeof(((st *)0)->f) == (n) ? 1 : -1]))
#define URT_FIELD_AT(buf, st, f) ((const uint8_t *)(buf) + offsetof(st, f))
#define URT_FIELD_AT_W(buf, st, f) ((uint8_t *)(buf) + offsetof(st, f))

/* Reads or writes field f of the on-disk struct st found at buf. */
#define URT_GET8(buf, st, f) (URT_FIELD_IS(st, f, 1), *URT_FIELD_AT(buf, st, f))
#define URT_GET16(buf, st, f) (URT_FIELD_IS(st, f, 2), urt_load_le16(URT_FIELD_AT(buf, st, f)))
#define URT_GET32(buf, st, f) (URT_FIELD_IS(st, f, 4), urt_load_le32(URT_FIELD_AT(buf, st, f)))
#define URT_GET64(buf, st, f) (URT_FIELD_IS(st, f, 8), urt_load_le64(URT_FIELD_AT(buf, st, f)))
#define URT_PUT8(buf, st, f, v) (URT_FIELD_IS(st, f, 1), (void)(*URT_FIELD_AT_W(buf, st, f) = (v)))
#define URT_PUT16(buf, st, f, v) (URT_FIELD_IS(st, f, 2), urt_store_le16(URT_FIELD_AT_W(buf, st, f), (v)))
#define URT_PUT32(buf, st, f, v) (URT_FIELD_IS(st, f, 4), urt_store_le32(URT_FIELD_AT_W(buf, st, f), (v)))
#define URT_PUT64(buf, st, f, v) (URT_FIELD_IS(st, f, 8), urt_store_le64(URT_FIELD_AT_W(buf, st, f), (v)))

/* Stores reason in *why (when why is not NULL) and returns err. */
static inline int fmt_reject(const char **why, int err, const char *reason)
{
	if (why)
		*why = reason;
	return err;
}

/* True when buf[0..len) holds only zero bytes. */
static inline bool urt_is_zero(const void *buf, size_t len)
{
	const uint8_t *p = buf;

	/* Compare the buffer with itself shifted by one byte after checking byte 0. */
	return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}

/* ---- Format-wide constants --------------------------------------------- */

/*
 * Bumped on any incompatible change; a newer value on disk is URT_E_VERSION.
 * Version 2 logs page deltas (PAGE_DELTA chains resting on a PAGE_IMAGE
 * logged at or after the checkpoint) and one COMMIT record per batch.
 * Version 3 adds PAGE_IMAGE_HOLE: a page image that leaves out a run of
 * zero bytes (the free gap of a slotted page).
 * Version 4 gives the batch header's last 8 bytes (zero before) to
 * durable_lsn, the log's durable point when the batch was sealed, so
 * recovery can tell a damaged batch that had been acknowledged from a
 * crash's torn tail (recovery.c, end_check).
 * Stores of versions URT_FORMAT_VERSION_MIN .. URT_FORMAT_VERSION - 1 are
 * read (their logs hold only record types this version replays unchanged)
 * and upgraded by the next superblock write, the checkpoint that ends
 * urt_ps_open.
 */
#define URT_FORMAT_VERSION 4u
#define URT_FORMAT_VERSION_MIN 1u

/* Page sizes: 4 KiB by default; 8 and 16 KiB for larger records. */
#define URT_PAGE_SIZE_DEFAULT 4096u
#define URT_PAGE_SIZE_MIN 4096u
#define URT_PAGE_SIZE_MAX 16384u

/* Device logical block sizes the log is written in (O_DIRECT alignment). */
#define URT_BLOCK_SIZE_MIN 512u
#define URT_BLOCK_SIZE_MAX 4096u

static inline bool urt_page_size_valid(uint64_t n)
{
	return n == 4096 || n == 8192 || n == 16384;
}

static inline bool urt_block_size_valid(uint64_t n)
{
	return n >= URT_BLOCK_SIZE_MIN && n <= URT_BLOCK_SIZE_MAX && (n & (n - 1)) == 0;
}

/* ---- Superblock --------------------------------------------------------- */

/*
 * Each superblock copy owns a 4 KiB slot (aligned for 512 and 4096 byte
 * blocks); the encoded superblock is its first 256 bytes, so it sits in one
 * 512-byte sector, and the rest of the slot is zero.  Generation g is always
 * written to slot g % 2 (A holds even generations, B odd ones).
 */
#define URT_SB_SLOT_SIZE 4096u
#define URT_SB_SIZE 256u
#define URT_SB_REGION_SIZE (2u * URT_SB_SLOT_SIZE)
/* "urtSUPER": identifies a urt shard region. */
#define URT_SB_MAGIC "urtSUPER"

/*
 * The fields up to and including sb_size keep these offsets in every
 * future version, so an old build can always tell "newer format"
 * (URT_E_VERSION, backed by a valid CRC) from "corrupt".
 */
struct urt_sb_disk {
	uint8_t magic[8];		/* URT_SB_MAGIC, not NUL terminated. */
	uint32_t version;		/* URT_FORMAT_VERSION of the writer. */
	uint32_t crc;			/* CRC32C of the first sb_size bytes with this field zero. */
	uint32_t sb_size;		/* Bytes covered by crc; URT_SB_SIZE in version 1. */
	uint32_t page_size;		/* Page size in bytes: 4096, 8192 or 16384. */
	uint32_t block_size;		/* Log write unit: device logical block, 512..4096. */
	uint32_t flags;			/* No flags are defined; must be zero. */
	uint64_t generation;		/* Bumped on every superblock write; newest valid copy wins. */
	uint64_t store_id;		/* Random nonzero id of this shard, stamped on pages and batches. */
	uint8_t store_uuid[16];		/* Random id of the whole store, equal in all its shards. */
	uint32_t shard_id;		/* This shard's index, < shard_count. */
	uint32_t shard_count;		/* Number of shards of the store. */
	uint64_t device_size;		/* Bytes of the region described; the device must be this big. */
	uint64_t log_start;		/* Offset of the log region from the region start. */
	uint64_t log_len;		/* Bytes of log region; a multiple of block_size. */
	uint64_t page_start;		/* Offset of page 0; a multiple of page_size. */
	uint64_t page_count;		/* Number of pages in the page region. */
	uint64_t checkpoint_lsn;	/* Recovery replays the log from this LSN (a batch start). */
	uint64_t checkpoint_log_offset;	/* checkpoint_lsn % log_len, stored as a cross-check. */
	uint64_t checkpoint_epoch;	/* Lowest epoch a batch at checkpoint_lsn may carry. */
	uint64_t log_epoch;		/* Epoch of the newest log incarnation (see docs/format.md). */
	uint64_t created_ns;		/* Wall-clock time of format, for humans only. */
	uint8_t reserved[104];		/* Zero; free for later versions. */
};
_Static_assert(sizeof(struct urt_sb_disk) == URT_SB_SIZE, "superblock is 256 bytes");
_Static_assert(offsetof(struct urt_sb_disk, version) == 8, "stable prefix");
_Static_assert(offsetof(struct urt_sb_disk, crc) == 12, "stable prefix");
_Static_assert(offsetof(struct urt_sb_disk, sb_size) == 16, "stable prefix");
_Static_assert(offsetof(struct urt_sb_disk, generation) == 32, "8-byte fields are aligned");
_Static_assert(offsetof(struct urt_sb_disk, shard_id) == 64, "layout");
_Static_assert(offsetof(struct urt_sb_disk, created_ns) == 144, "layout");
_Static_assert(URT_SB_SIZE <= 512, "the superblock must fit one 512-byte sector");

/* A decoded superblock, in host byte order. */
struct superblock {
	uint32_t version;		/* Format version (URT_FORMAT_VERSION when encoding). */
	uint32_t page_size;		/* Page size in bytes. */
	uint32_t block_size;		/* Log block size in bytes. */
	uint32_t flags;			/* Must be zero. */
	uint64_t generation;		/* Write counter; selects the slot (generation % 2). */
	uint64_t store_id;		/* Nonzero shard id stamped on pages and batches. */
	uint8_t store_uuid[16];		/* Whole-store id. */
	uint32_t shard_id;		/* Index of this shard. */
	uint32_t shard_count;		/* Shards in the store. */
	uint64_t device_size;		/* Bytes the region spans. */
	uint64_t log_start;		/* Log region offset. */
	uint64_t log_len;		/* Log region length. */
	uint64_t page_start;		/* Page region offset. */
	uint64_t page_count;		/* Page region length in pages. */
	uint64_t checkpoint_lsn;	/* Replay start. */
	uint64_t checkpoint_epoch;	/* Minimum epoch of the first replayed batch. */
	uint64_t log_epoch;		/* Newest log incarnation. */
	uint64_t created_ns;		/* Format time. */
};

/* Why superblock_pick chose what it chose, for error messages and tests. */
struct superblock_pick_info {
	int slot;			/* Slot of the chosen copy (0 = A, 1 = B), -1 if none. */
	int err[2];			/* Decode result of each copy (0 = valid). */
	const char *why[2];		/* Reason each copy was rejected, or NULL. */
};

/*
 * Fills the layout of sb for a region of device_size bytes: superblock
 * slots, then a log of log_len bytes, then as many pages as fit.  Sets
 * version, page_size, block_size and the layout fields; leaves ids, shard,
 * epochs and generation to the caller.  Returns 0, or URT_E_BADFORMAT with
 * *why when the sizes are invalid or the region is too small.
 */
int superblock_plan(struct superblock *sb, uint64_t device_size, uint32_t page_size,
		    uint32_t block_size, uint64_t log_len, const char **why);

/* Checks every field of sb; returns 0, URT_E_BADFORMAT or URT_E_VERSION with *why. */
int superblock_validate(const struct superblock *sb, const char **why);

/*
 * Encodes sb into buf[0..len) (len >= URT_SB_SIZE; bytes past the
 * superblock are zeroed, so pass the whole slot).  Refuses (returns the
 * validate error) to encode a superblock that would not decode.
 */
int superblock_encode(const struct superblock *sb, void *buf, size_t len, const char **why);

/*
 * Decodes one copy.  Returns 0, URT_E_BADFORMAT (no urt magic, or a field
 * out of range), URT_E_CORRUPT (checksum mismatch) or URT_E_VERSION (a
 * valid superblock of a newer format).
 */
int superblock_decode(const void *buf, size_t len, struct superblock *out, const char **why);

/*
 * Picks the newest valid copy of slot A (a_buf) and slot B (b_buf), each
 * len bytes.  A copy is valid when it decodes and its generation parity
 * matches its slot.  Returns 0 with *out; URT_E_VERSION if either copy is a
 * valid newer-format superblock (never roll back to an older copy);
 * URT_E_CORRUPT if both copies are valid but name different stores, or if
 * neither is valid and either failed a checksum; otherwise the error of
 * copy A (URT_E_BADFORMAT for a blank device).  info (may be NULL) gets the
 * per-copy details.
 */
int superblock_pick(const void *a_buf, const void *b_buf, size_t len, struct superblock *out,
		    struct superblock_pick_info *info);

/* Offset from the region start of the slot that generation gen is written to. */
static inline uint64_t superblock_slot_offset(uint64_t gen)
{
	return (gen & 1) * URT_SB_SLOT_SIZE;
}

/* ---- Page header -------------------------------------------------------- */

/*
 * Every page starts with this header.  A page whose bytes are all zero has
 * never been written and is "unused", not corrupt.  The rest of the page
 * belongs to the engine.
 */
struct urt_page_hdr_disk {
	uint32_t crc;			/* CRC32C of the whole page with this field zero. */
	uint16_t type;			/* Engine page type; never 0 in a sealed page. */
	uint16_t flags;			/* Engine page flags; opaque to the format layer. */
	uint64_t pgno;			/* The page's own number: catches misdirected writes. */
	uint64_t lsn;			/* LSN of the last log record applied to the page. */
	uint64_t store_id;		/* superblock store_id: catches pages of a previous store. */
};
_Static_assert(sizeof(struct urt_page_hdr_disk) == 32, "page header is 32 bytes");
_Static_assert(offsetof(struct urt_page_hdr_disk, pgno) == 8, "layout");
#define URT_PAGE_HDR_SIZE 32u

/* A decoded page header. */
struct page_hdr {
	uint32_t crc;			/* Stored checksum. */
	uint16_t type;			/* Page type. */
	uint16_t flags;			/* Page flags. */
	uint64_t pgno;			/* Page number the page claims to be. */
	uint64_t lsn;			/* Page LSN. */
	uint64_t store_id;		/* Store the page claims to belong to. */
};

/* page_verify's positive result for an all-zero (never written) page. */
#define PAGE_UNUSED 1

/* Zeroes the page and writes a header with type (nonzero) and store_id (nonzero). */
void page_init(void *page, size_t page_size, uint64_t pgno, uint16_t type, uint64_t store_id);

/* Stamps pgno and lsn into an initialised page and computes its CRC. */
void page_seal(void *page, size_t page_size, uint64_t pgno, uint64_t lsn);

/* Returns the CRC32C of page with its crc field taken as zero. */
uint32_t page_crc(const void *page, size_t page_size);

/* Reads the header of page (at least URT_PAGE_HDR_SIZE bytes). */
void page_hdr_read(const void *page, struct page_hdr *out);

/*
 * Checks a page read from slot pgno.  Returns 0 (valid), PAGE_UNUSED (all
 * zero: never written), URT_E_CORRUPT (checksum mismatch, e.g. torn write or
 * bit rot, or a zero type), URT_E_FOREIGN (valid page of another store) or
 * URT_E_MISDIRECTED (valid page of this store carrying another pgno), with
 * *why.  page_size must be a valid page size (checked by assertion).
 */
int page_verify(const void *page, size_t page_size, uint64_t pgno, uint64_t store_id,
		const char **why);

/* ---- Log batches and records -------------------------------------------- */

/*
 * The log is a sequence of batches.  A batch starts at a block-aligned LSN
 * (LSN = byte offset in the infinite logical log; the batch is stored at
 * log_start + lsn % log_len) and occupies `span` bytes: this header, then
 * body_len bytes of records, then zero padding up to a block boundary.  A
 * batch never crosses the end of the log region: when it would, the writer
 * writes a WRAP batch (one block, whose span reaches the end of the region)
 * and continues at the next multiple of log_len.  The next batch always
 * starts at lsn + span.
 */
#define URT_LOG_MAGIC "urtL"

enum logrec_batch_type {
	LOGREC_BATCH_DATA = 1,		/* Holds nrec >= 1 records. */
	LOGREC_BATCH_WRAP = 2,		/* Empty; skips to the end of the log region. */
};

struct urt_log_batch_disk {
	uint8_t magic[4];		/* URT_LOG_MAGIC. */
	uint32_t hdr_crc;		/* CRC32C of these 64 bytes with this field zero. */
	uint64_t store_id;		/* superblock store_id: rejects other stores' logs. */
	uint64_t lsn;			/* LSN of this header; must equal the expected LSN. */
	uint64_t epoch;			/* Log incarnation; never decreases along the log. */
	uint64_t span;			/* Bytes from this header to the next batch. */
	uint32_t body_len;		/* Bytes of records after the header (a multiple of 8). */
	uint32_t body_crc;		/* CRC32C of the body_len record bytes. */
	uint32_t nrec;			/* Number of records in the body. */
	uint16_t type;			/* enum logrec_batch_type. */
	uint16_t flags;			/* No flags are defined; must be zero. */
	uint64_t durable_lsn;		/* Version 4: every batch below this LSN was durable when this
					 * one was sealed (at most lsn; 0: not known, as in versions
					 * 1-3, WRAP batches and the NONE policy). */
};
_Static_assert(sizeof(struct urt_log_batch_disk) == 64, "batch header is 64 bytes");
_Static_assert(offsetof(struct urt_log_batch_disk, span) == 32, "layout");
_Static_assert(offsetof(struct urt_log_batch_disk, type) == 52, "layout");
#define URT_LOG_BATCH_HDR_SIZE 64u

enum logrec_type {
	LOGREC_PAGE_IMAGE = 1,		/* Payload: the full page (page_size bytes). */
	LOGREC_PAGE_DELTA = 2,		/* Payload: (u16 off, u16 len, len bytes)... */
	LOGREC_COMMIT = 3,		/* No payload; txid (nonzero) is durable once this is. */
	LOGREC_CHECKPOINT = 4,		/* No payload, txid 0, pgno 0: a checkpoint began here. */
	LOGREC_PAGE_IMAGE_HOLE = 5,	/* Payload: urt_log_hole_disk, then the page without the hole. */
};

/* Records are 8-byte aligned within the body; padding bytes are zero. */
#define URT_LOG_REC_ALIGN 8u

struct urt_log_rec_disk {
	uint8_t type;			/* enum logrec_type. */
	uint8_t flags;			/* No flags are defined; must be zero. */
	uint16_t reserved0;		/* Zero. */
	uint32_t crc;			/* CRC32C of header (this field zero) and payload. */
	uint32_t len;			/* Payload bytes following the header. */
	uint32_t reserved1;		/* Zero. */
	uint64_t txid;			/* Transaction id; 0 for records outside a transaction. */
	uint64_t pgno;			/* Page the record applies to (0 for COMMIT/CHECKPOINT). */
};
_Static_assert(sizeof(struct urt_log_rec_disk) == 32, "record header is 32 bytes");
_Static_assert(offsetof(struct urt_log_rec_disk, txid) == 16, "layout");
#define URT_LOG_REC_HDR_SIZE 32u

/* One change of a PAGE_DELTA payload: len bytes follow, written at off. */
struct urt_log_delta_disk {
	uint16_t off;			/* Byte offset in the page. */
	uint16_t len;			/* Bytes changed, >= 1; off + len <= page_size. */
};
_Static_assert(sizeof(struct urt_log_delta_disk) == 4, "delta entry header is 4 bytes");
#define URT_LOG_DELTA_HDR_SIZE 4u
_Static_assert(URT_PAGE_SIZE_MAX <= 65535u, "delta offsets and lengths are 16 bits");

/*
 * PAGE_IMAGE_HOLE payload: this header, then the page's bytes [0, off) and
 * [off + len, page_size); the len bytes at off are zero (version 3).  So
 * the payload is URT_LOG_HOLE_HDR_SIZE + page_size - len bytes, and len is
 * at least 1 (a page without a hole is a PAGE_IMAGE).
 */
struct urt_log_hole_disk {
	uint16_t off;			/* First byte of the hole. */
	uint16_t len;			/* Zero bytes left out, >= 1; off + len <= page_size. */
};
_Static_assert(sizeof(struct urt_log_hole_disk) == 4, "hole header is 4 bytes");
#define URT_LOG_HOLE_HDR_SIZE 4u

/* Payload bytes of a page image of page_size bytes that leaves out hole_len zero bytes. */
static inline uint32_t logrec_image_len(uint32_t page_size, uint32_t hole_len)
{
	return hole_len ? URT_LOG_HOLE_HDR_SIZE + page_size - hole_len : page_size;
}

/* The per-shard constants every batch and record is checked against. */
struct logrec_geom {
	uint64_t store_id;		/* Expected store id. */
	uint64_t log_len;		/* Log region length in bytes. */
	uint64_t page_count;		/* Records must name pgno < page_count. */
	uint32_t block_size;		/* Batch alignment. */
	uint32_t page_size;		/* PAGE_IMAGE payload length and delta bound. */
};

/* Fills g from a decoded superblock. */
void logrec_geom_from_sb(struct logrec_geom *g, const struct superblock *sb);

/* A decoded batch header. */
struct logrec_batch {
	uint64_t lsn;			/* LSN of the batch header. */
	uint64_t epoch;			/* Log incarnation. */
	uint64_t span;			/* Bytes to the next batch. */
	uint32_t body_len;		/* Record bytes after the header. */
	uint32_t body_crc;		/* Checksum of the record bytes. */
	uint32_t nrec;			/* Record count. */
	uint16_t type;			/* enum logrec_batch_type. */
	uint64_t durable_lsn;		/* Durable point when sealed (0: not known). */
};

/* A decoded record; payload points into the batch buffer. */
struct logrec {
	uint64_t lsn;			/* LSN of the record header. */
	uint64_t txid;			/* Transaction id. */
	uint64_t pgno;			/* Page number. */
	const uint8_t *payload;		/* Payload bytes (NULL when len is 0). */
	uint32_t len;			/* Payload length. */
	uint8_t type;			/* enum logrec_type. */
};

/* Positive result of the batch checks: no (further) batch here, the log ends. */
#define LOGREC_END 1

/*
 * Checks the header of the batch that should start at expect_lsn, given at
 * least its first URT_LOG_BATCH_HDR_SIZE bytes.  Returns
 *   0              a valid header (its body still needs checking);
 *   LOGREC_END     no batch of this log incarnation here: bad magic, header
 *                  checksum mismatch (torn or never written), another
 *                  store's id, a stale batch from an earlier lap (lsn <
 *                  expect_lsn), a header not written at its own position,
 *                  or an epoch below min_epoch (a previous incarnation);
 *   URT_E_CORRUPT  a valid header that cannot be: lsn from a later lap at
 *                  this position (the log was overwritten past the
 *                  checkpoint) or inconsistent fields under a good checksum;
 *   -EINVAL        len < URT_LOG_BATCH_HDR_SIZE.
 * *why says which.
 */
int logrec_batch_check_header(const void *buf, size_t len, const struct logrec_geom *g,
			      uint64_t expect_lsn, uint64_t min_epoch, struct logrec_batch *out,
			      const char **why);

/*
 * Checks the body of a batch whose header passed logrec_batch_check_header:
 * buf holds the batch from its header on, len >= 64 + b->body_len (else
 * -EINVAL).  Returns 0, LOGREC_END on a body checksum mismatch (a torn
 * batch write: the log ends before this batch) or URT_E_CORRUPT when a
 * record is malformed under a good checksum.
 */
int logrec_batch_check_body(const void *buf, size_t len, const struct logrec_geom *g,
			    const struct logrec_batch *b, const char **why);

/* Both checks in turn: the whole batch is in buf[0..len). */
int logrec_batch_decode(const void *buf, size_t len, const struct logrec_geom *g,
			uint64_t expect_lsn, uint64_t min_epoch, struct logrec_batch *out,
			const char **why);

/*
 * Walks the records of a batch.  The iterator re-checks every bound and
 * checksum itself, so it is safe even on a batch that was not checked.
 */
struct logrec_iter {
	const uint8_t *buf;		/* Batch buffer (header at offset 0). */
	size_t len;			/* Bytes of the buffer; nothing past it is read. */
	size_t end;			/* Offset one past the body, as the header claims. */
	size_t off;			/* Offset of the next record header (SIZE_MAX once failed). */
	uint64_t lsn;			/* LSN of the batch header. */
	uint32_t left;			/* Records still expected. */
	struct logrec_geom geom;	/* Bounds for pgno and payloads. */
};

void logrec_iter_init(struct logrec_iter *it, const void *buf, size_t len,
		      const struct logrec_geom *g, const struct logrec_batch *b);

/*
 * Returns 1 with *rec, 0 after the last record (having checked that the
 * body ends exactly there), or URT_E_CORRUPT with *why.
 */
int logrec_iter_next(struct logrec_iter *it, struct logrec *rec, const char **why);

/* Walks the changes of a PAGE_DELTA record. */
struct logrec_delta_iter {
	const uint8_t *p;		/* Payload. */
	uint32_t off;			/* Offset of the next entry in the payload. */
	uint32_t len;			/* Payload length. */
	uint32_t page_size;		/* Bound for off + len of each entry. */
};

void logrec_delta_iter_init(struct logrec_delta_iter *it, const struct logrec *rec,
			    uint32_t page_size);

/* Returns 1 with one change, 0 at the end, URT_E_CORRUPT on a malformed entry. */
int logrec_delta_next(struct logrec_delta_iter *it, uint32_t *off, const uint8_t **data,
		      uint32_t *len, const char **why);

/* True for the record types that replace a whole page (PAGE_IMAGE, PAGE_IMAGE_HOLE). */
static inline bool logrec_is_image(uint8_t type)
{
	return type == LOGREC_PAGE_IMAGE || type == LOGREC_PAGE_IMAGE_HOLE;
}

/*
 * Applies a PAGE_IMAGE, PAGE_IMAGE_HOLE or PAGE_DELTA record to page
 * (page_size bytes).
 * The whole record is checked first, so a malformed record leaves the page
 * untouched (URT_E_CORRUPT).  The page header is left for page_seal.
 */
int logrec_apply(void *page, uint32_t page_size, const struct logrec *rec, const char **why);

/*
 * Builds one batch in a caller buffer.
 *
 *   logrec_enc_begin -> (logrec_enc_add | delta_begin, delta_add..., delta_end)...
 *                    -> logrec_enc_finish -> write `span` bytes at lsn
 *
 * The buffer capacity used is the smallest of the buffer, the space left
 * before the end of the log region, and 4 GiB.  Adding a record that does
 * not fit returns -ENOSPC and leaves the batch as it was, so the caller can
 * finish it and start the next; URT_E_TOOBIG means the record cannot fit
 * even an empty batch of this buffer.  When the region end is too close
 * for even one record, finish what is there (or write a WRAP batch with
 * logrec_wrap_encode) and continue at the next multiple of log_len.
 */
struct logrec_enc {
	uint8_t *buf;			/* Batch buffer. */
	size_t cap;			/* Usable bytes: min(buffer, room before wrap, 4 GiB). */
	size_t buf_cap;			/* Bytes of the buffer. */
	size_t off;			/* Bytes used (header + records so far). */
	size_t delta_off;		/* Offset of an open PAGE_DELTA record, 0 if none. */
	uint32_t nrec;			/* Records added. */
	uint64_t lsn;			/* LSN of the batch. */
	uint64_t epoch;			/* Epoch stamped on the batch. */
	uint64_t durable_lsn;		/* Stamped on the batch; 0 from begin, set before finish. */
	struct logrec_geom geom;	/* Store constants. */
};

/*
 * Starts a batch at lsn (a multiple of block_size) in buf[0..cap) (cap a
 * multiple of block_size, at least one block).  Returns 0 or -EINVAL.
 */
int logrec_enc_begin(struct logrec_enc *e, void *buf, size_t cap, const struct logrec_geom *g,
		     uint64_t lsn, uint64_t epoch);

/* Bytes left for records, counting each one's header and padding. */
size_t logrec_enc_room(const struct logrec_enc *e);

/*
 * Appends a PAGE_IMAGE (len == page_size), COMMIT or CHECKPOINT (len 0)
 * record.  *lsn_out (may be NULL) gets the record's LSN.  Returns 0,
 * -ENOSPC, URT_E_TOOBIG or -EINVAL (bad type, bad length, pgno out of range).
 */
int logrec_enc_add(struct logrec_enc *e, uint8_t type, uint64_t txid, uint64_t pgno,
		   const void *payload, uint32_t len, uint64_t *lsn_out);

/*
 * Appends an image of page (page_size bytes): a PAGE_IMAGE when hole_len
 * is 0, else a PAGE_IMAGE_HOLE leaving out [hole_off, hole_off +
 * hole_len), which must be zero bytes (-EINVAL otherwise, as for a hole
 * past the page).  Its payload is logrec_image_len(page_size, hole_len)
 * bytes.  Returns as logrec_enc_add.
 */
int logrec_enc_image(struct logrec_enc *e, uint64_t txid, uint64_t pgno, const void *page,
		     uint32_t hole_off, uint32_t hole_len, uint64_t *lsn_out);

/* Opens a PAGE_DELTA record for pgno; changes follow with logrec_enc_delta_add. */
int logrec_enc_delta_begin(struct logrec_enc *e, uint64_t txid, uint64_t pgno,
			   uint64_t *lsn_out);

/*
 * Adds one change (off + len <= page_size, len >= 1) to the open delta.
 * -ENOSPC leaves the delta as it was: end it, or cancel it.
 */
int logrec_enc_delta_add(struct logrec_enc *e, uint32_t off, const void *data, uint32_t len);

/* Closes the open delta (at least one change) and checksums it. */
int logrec_enc_delta_end(struct logrec_enc *e);

/* Drops the open delta record, as if delta_begin had not been called. */
void logrec_enc_delta_cancel(struct logrec_enc *e);

/*
 * Closes the batch: pads it with zeros to a block boundary and writes the
 * header and checksums.  *span gets the bytes to write.  Returns 0, or
 * -EINVAL when the batch is empty or a delta is still open.
 */
int logrec_enc_finish(struct logrec_enc *e, uint64_t *span);

/*
 * Writes a WRAP batch for lsn (not a multiple of log_len) into one block of
 * buf (cap >= block_size).  Only that block is written to the device;
 * *span gets the logical length (to the end of the region), so the next
 * batch starts at lsn + *span, a multiple of log_len.
 */
int logrec_wrap_encode(void *buf, size_t cap, const struct logrec_geom *g, uint64_t lsn,
		       uint64_t epoch, uint64_t *span);

/* Bytes from lsn to the end of the log region. */
static inline uint64_t logrec_room_before_wrap(const struct logrec_geom *g, uint64_t lsn)
{
	return g->log_len - lsn % g->log_len;
}

#endif /* URT_ENGINE_FORMAT_H */
