/*
 * On-disk format layer (src/engine/format/format.h): CRC32C, superblock, page
 * header, log batches and records.
 *
 * Each suite checks one codec: round trips compare every decoded field
 * with what was encoded, and every rejection is driven by a crafted image
 * whose checksums are recomputed, so that the check under test (and not an
 * earlier CRC check) is the one that fires.  The log suite ends with a
 * simulated circular log written over several laps and walked the way
 * recovery walks it.  Random data comes from a fixed-seed generator.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/crc32c.h"
#include "engine/format/format.h"

/* ---- helpers ------------------------------------------------------------ */

/* A fixed-seed xorshift64* generator, so failures reproduce. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static void fill_random(void *buf, size_t len)
{
	uint8_t *p = buf;

	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)rng();
}

/* Bitwise reference CRC32C (reflected polynomial 0x82F63B78), zlib convention. */
static uint32_t crc32c_ref(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
	}
	return ~crc;
}

static bool why_has(const char *why, const char *needle)
{
	return why && strstr(why, needle);
}

/* ---- CRC32C ------------------------------------------------------------- */

Test(crc32c, check_value)
{
	cr_assert_eq(urt_crc32c(0, "123456789", 9), 0xE3069283u);
	cr_assert_eq(crc32c_ref(0, "123456789", 9), 0xE3069283u);
	cr_assert_eq(urt_crc32c(0, "", 0), 0);
	cr_assert_eq(urt_crc32c(0x12345678, "", 0), 0x12345678u, "an empty buffer leaves crc unchanged");
}

Test(crc32c, chains_like_one_call)
{
	uint8_t buf[1000];

	fill_random(buf, sizeof(buf));
	uint32_t whole = urt_crc32c(0, buf, sizeof(buf));

	for (size_t cut = 0; cut <= sizeof(buf); cut += 37)
		cr_assert_eq(urt_crc32c(urt_crc32c(0, buf, cut), buf + cut, sizeof(buf) - cut), whole,
			     "cut at %zu", cut);
}

Test(crc32c, isal_matches_reference_on_random_sizes_and_alignments)
{
	static uint8_t buf[9000 + 64];

	fill_random(buf, sizeof(buf));
	for (int i = 0; i < 3000; i++) {
		size_t align = rng() % 64;
		size_t len = i < 300 ? (size_t)i : rng() % 9000;
		uint32_t seed = i % 3 == 0 ? 0 : (uint32_t)rng();

		cr_assert_eq(urt_crc32c(seed, buf + align, len), crc32c_ref(seed, buf + align, len),
			     "len %zu align %zu seed %08x", len, align, seed);
	}
}

Test(crc32c, isal_matches_reference_on_a_large_buffer)
{
	size_t len = (3u << 20) + 13;
	uint8_t *buf = malloc(len);

	cr_assert_not_null(buf);
	fill_random(buf, len);
	cr_assert_eq(urt_crc32c(0, buf, len), crc32c_ref(0, buf, len));
	free(buf);
}

/* ---- superblock --------------------------------------------------------- */

typedef struct urt_sb_disk sbd;

static struct superblock make_sb(uint64_t gen)
{
	struct superblock sb;
	const char *why = NULL;

	cr_assert_eq(superblock_plan(&sb, 64ull << 20, 4096, 512, 1u << 20, &why), 0, "%s", why);
	sb.generation = gen;
	sb.store_id = 0x5eed5eed12345678ull;
	for (int i = 0; i < 16; i++)
		sb.store_uuid[i] = (uint8_t)(0xa0 + i);
	sb.shard_id = 1;
	sb.shard_count = 2;
	sb.checkpoint_lsn = 3 * 512 + 5 * (1u << 20);
	sb.checkpoint_epoch = 6;
	sb.log_epoch = 7;
	sb.created_ns = 1700000000123456789ull;
	return sb;
}

static void encode_sb(const struct superblock *sb, uint8_t *slot)
{
	const char *why = NULL;

	cr_assert_eq(superblock_encode(sb, slot, URT_SB_SLOT_SIZE, &why), 0, "%s", why);
}

/* Recomputes the CRC of an encoded superblock after a test edited it. */
static void sb_refresh_crc(uint8_t *slot)
{
	uint32_t size = URT_GET32(slot, sbd, sb_size);

	if (size > URT_SB_SLOT_SIZE)
		size = URT_SB_SIZE;
	URT_PUT32(slot, sbd, crc, 0);
	URT_PUT32(slot, sbd, crc, urt_crc32c(0, slot, size));
}

Test(superblock, plan_lays_out_regions_in_order)
{
	struct superblock sb = make_sb(0);

	cr_assert_eq(sb.log_start, URT_SB_REGION_SIZE);
	cr_assert_eq(sb.page_start, URT_SB_REGION_SIZE + (1u << 20));
	cr_assert_eq(sb.page_count, ((64ull << 20) - sb.page_start) / 4096);
	cr_assert_leq(sb.page_start + sb.page_count * sb.page_size, sb.device_size);

	const char *why = NULL;
	struct superblock bad;

	cr_assert_eq(superblock_plan(&bad, 64 << 10, 4096, 512, 1u << 20, &why), URT_E_BADFORMAT);
	cr_assert(why_has(why, "page region"), "%s", why);
	cr_assert_eq(superblock_plan(&bad, 64ull << 20, 4096, 768, 1u << 20, &why), URT_E_BADFORMAT);
	cr_assert(why_has(why, "block size"), "%s", why);
}

Test(superblock, round_trip)
{
	uint8_t slot[URT_SB_SLOT_SIZE];
	struct superblock in = make_sb(42), out;
	const char *why = "unset";

	memset(slot, 0xee, sizeof(slot));
	encode_sb(&in, slot);
	cr_assert(urt_is_zero(slot + URT_SB_SIZE, URT_SB_SLOT_SIZE - URT_SB_SIZE),
		  "the slot is zero past the superblock");
	cr_assert_eq(memcmp(slot, URT_SB_MAGIC, 8), 0);
	cr_assert_eq(URT_GET64(slot, sbd, checkpoint_log_offset), in.checkpoint_lsn % in.log_len);

	cr_assert_eq(superblock_decode(slot, sizeof(slot), &out, &why), 0, "%s", why);
	cr_assert_eq(out.generation, 42);
	cr_assert_eq(out.store_id, in.store_id);
	cr_assert_eq(memcmp(out.store_uuid, in.store_uuid, 16), 0);
	cr_assert_eq(out.shard_id, 1);
	cr_assert_eq(out.shard_count, 2);
	cr_assert_eq(out.page_size, 4096);
	cr_assert_eq(out.block_size, 512);
	cr_assert_eq(out.device_size, in.device_size);
	cr_assert_eq(out.log_start, in.log_start);
	cr_assert_eq(out.log_len, in.log_len);
	cr_assert_eq(out.page_start, in.page_start);
	cr_assert_eq(out.page_count, in.page_count);
	cr_assert_eq(out.checkpoint_lsn, in.checkpoint_lsn);
	cr_assert_eq(out.checkpoint_epoch, 6);
	cr_assert_eq(out.log_epoch, 7);
	cr_assert_eq(out.created_ns, in.created_ns);
	cr_assert_eq(memcmp(&in, &out, sizeof(in)), 0, "every field survives");

	/* Exactly the 256 bytes of a superblock are enough to decode it. */
	cr_assert_eq(superblock_decode(slot, URT_SB_SIZE, &out, &why), 0, "%s", why);
}

/* One crafted rejection: edit a field, optionally fix the CRC, expect err and reason. */
struct sb_case {
	const char *name;
	size_t off;		/* Byte offset of the edited field. */
	int width;		/* 1, 4 or 8 bytes. */
	uint64_t value;		/* New value. */
	bool fix_crc;		/* Recompute the CRC after the edit. */
	int err;		/* Expected decode result. */
	const char *why;	/* Expected substring of the reason. */
};

#define F(f) offsetof(sbd, f)

static const struct sb_case sb_cases[] = {
	{ "bad magic", F(magic), 1, 'U', true, URT_E_BADFORMAT, "magic" },
	{ "flipped bit", F(log_len), 1, 0x01, false, URT_E_CORRUPT, "checksum" },
	{ "bad crc", F(crc), 4, 0x12345678, false, URT_E_CORRUPT, "checksum" },
	{ "newer version", F(version), 4, URT_FORMAT_VERSION + 1, true, URT_E_VERSION, "newer" },
	{ "version 0", F(version), 4, 0, true, URT_E_BADFORMAT, "version" },
	{ "size too small", F(sb_size), 4, 128, true, URT_E_BADFORMAT, "size" },
	{ "size past slot", F(sb_size), 4, URT_SB_SLOT_SIZE + 8, true, URT_E_BADFORMAT, "size" },
	{ "size vs version", F(sb_size), 4, 512, true, URT_E_BADFORMAT, "size" },
	{ "page size 2048", F(page_size), 4, 2048, true, URT_E_BADFORMAT, "page size" },
	{ "page size 5000", F(page_size), 4, 5000, true, URT_E_BADFORMAT, "page size" },
	{ "page size 32768", F(page_size), 4, 32768, true, URT_E_BADFORMAT, "page size" },
	{ "block size 1000", F(block_size), 4, 1000, true, URT_E_BADFORMAT, "block size" },
	{ "block size 8192", F(block_size), 4, 8192, true, URT_E_BADFORMAT, "block size" },
	{ "flags", F(flags), 4, 1, true, URT_E_BADFORMAT, "flags" },
	{ "reserved", F(reserved) + 50, 1, 1, true, URT_E_BADFORMAT, "reserved" },
	{ "store id 0", F(store_id), 8, 0, true, URT_E_BADFORMAT, "store id" },
	{ "shard id", F(shard_id), 4, 2, true, URT_E_BADFORMAT, "shard" },
	{ "shard count 0", F(shard_count), 4, 0, true, URT_E_BADFORMAT, "shard" },
	{ "log over sb", F(log_start), 8, 4096, true, URT_E_BADFORMAT, "overlaps the superblock" },
	{ "log unaligned", F(log_start), 8, 8192 + 100, true, URT_E_BADFORMAT, "log start" },
	{ "log len unaligned", F(log_len), 8, (1u << 20) - 100, true, URT_E_BADFORMAT, "log length" },
	{ "log too small", F(log_len), 8, 8192, true, URT_E_BADFORMAT, "four pages" },
	{ "log overflow", F(log_len), 8, UINT64_MAX - 511, true, URT_E_BADFORMAT, "overflow" },
	{ "log over pages", F(log_len), 8, 2u << 20, true, URT_E_BADFORMAT, "overlaps the log" },
	{ "pages unaligned", F(page_start), 8, 8192 + (1u << 20) + 512, true, URT_E_BADFORMAT, "page aligned" },
	{ "no pages", F(page_count), 8, 0, true, URT_E_BADFORMAT, "no page" },
	{ "pages past end", F(page_count), 8, 1u << 20, true, URT_E_BADFORMAT, "past the device end" },
	{ "device too small", F(device_size), 8, 4096, true, URT_E_BADFORMAT, "past the device end" },
	{ "ckpt unaligned", F(checkpoint_lsn), 8, 1000, true, URT_E_BADFORMAT, "checkpoint LSN" },
	{ "ckpt offset", F(checkpoint_log_offset), 8, 512, true, URT_E_BADFORMAT, "checkpoint log offset" },
	{ "ckpt epoch", F(checkpoint_epoch), 8, 8, true, URT_E_BADFORMAT, "epoch" },
};

Test(superblock, every_rejection_reason)
{
	for (size_t i = 0; i < sizeof(sb_cases) / sizeof(sb_cases[0]); i++) {
		const struct sb_case *c = &sb_cases[i];
		uint8_t slot[URT_SB_SLOT_SIZE];
		struct superblock in = make_sb(8), out;
		const char *why = NULL;
		int ret;

		encode_sb(&in, slot);
		switch (c->width) {
		case 1:
			slot[c->off] ^= (uint8_t)c->value;
			break;
		case 4:
			urt_store_le32(slot + c->off, (uint32_t)c->value);
			break;
		default:
			urt_store_le64(slot + c->off, c->value);
			break;
		}
		if (c->fix_crc)
			sb_refresh_crc(slot);
		ret = superblock_decode(slot, sizeof(slot), &out, &why);
		cr_expect_eq(ret, c->err, "%s: got %d (%s)", c->name, ret, why ? why : "-");
		cr_expect(why_has(why, c->why), "%s: reason '%s' lacks '%s'", c->name, why, c->why);
	}
}

Test(superblock, short_buffer_and_blank_device)
{
	uint8_t slot[URT_SB_SLOT_SIZE] = { 0 };
	struct superblock in = make_sb(2), out;
	const char *why = NULL;

	cr_assert_eq(superblock_decode(slot, sizeof(slot), &out, &why), URT_E_BADFORMAT);
	cr_assert(why_has(why, "magic"));
	encode_sb(&in, slot);
	cr_assert_eq(superblock_decode(slot, URT_SB_SIZE - 1, &out, &why), URT_E_BADFORMAT);
	cr_assert(why_has(why, "shorter"));
}

Test(superblock, encode_refuses_an_invalid_superblock)
{
	uint8_t slot[URT_SB_SLOT_SIZE];
	struct superblock sb = make_sb(2);
	const char *why = NULL;

	sb.page_size = 1234;
	cr_assert_eq(superblock_encode(&sb, slot, sizeof(slot), &why), URT_E_BADFORMAT);
	cr_assert(why_has(why, "page size"));
	sb = make_sb(2);
	sb.store_id = 0;
	cr_assert_eq(superblock_encode(&sb, slot, sizeof(slot), &why), URT_E_BADFORMAT);
	sb = make_sb(2);
	cr_assert_eq(superblock_encode(&sb, slot, URT_SB_SIZE - 1, &why), -EINVAL);
}

/* Encodes generation gen (with a checkpoint that grows with it) into slot. */
static void encode_gen(uint8_t *slot, uint64_t gen)
{
	struct superblock sb = make_sb(gen);

	sb.checkpoint_lsn = gen * 4096;
	encode_sb(&sb, slot);
}

/* Two superblock slots and what superblock_pick made of them. */
struct pick {
	uint8_t a[URT_SB_SLOT_SIZE];		/* Slot A. */
	uint8_t b[URT_SB_SLOT_SIZE];		/* Slot B. */
	struct superblock out;			/* The copy picked. */
	struct superblock_pick_info info;	/* Which slot, and why the other was refused. */
};

/* Slot A holds generation gen_a and slot B generation gen_b. */
static void pick_init(struct pick *p, uint64_t gen_a, uint64_t gen_b)
{
	encode_gen(p->a, gen_a);
	encode_gen(p->b, gen_b);
}

static int pick(struct pick *p)
{
	return superblock_pick(p->a, p->b, sizeof(p->a), &p->out, &p->info);
}

Test(superblock, pick_newest_valid_copy)
{
	struct pick p;

	pick_init(&p, 4, 5);
	cr_assert_eq(pick(&p), 0);
	cr_assert_eq(p.out.generation, 5);
	cr_assert_eq(p.out.checkpoint_lsn, 5 * 4096);
	cr_assert_eq(p.info.slot, 1);
	cr_assert_eq(superblock_slot_offset(p.out.generation + 1), 0, "the next write goes to slot A");

	encode_gen(p.a, 6);
	cr_assert_eq(pick(&p), 0);
	cr_assert_eq(p.out.generation, 6);
	cr_assert_eq(p.info.slot, 0);
	cr_assert_eq(superblock_pick(p.a, p.b, sizeof(p.a), &p.out, NULL), 0, "info is optional");
	cr_assert_eq(p.out.generation, 6);
}

Test(superblock, pick_falls_back_when_newest_is_corrupt)
{
	struct pick p;

	pick_init(&p, 6, 5);
	p.a[offsetof(sbd, checkpoint_lsn)] ^= 0x10;
	cr_assert_eq(pick(&p), 0);
	cr_assert_eq(p.out.generation, 5);
	cr_assert_eq(p.info.slot, 1);
	cr_assert_eq(p.info.err[0], URT_E_CORRUPT);
	cr_assert(why_has(p.info.why[0], "checksum"));
	cr_assert_eq(p.info.err[1], 0);

	/* A blank slot (format wrote only one copy so far) also falls back. */
	memset(p.a, 0, sizeof(p.a));
	cr_assert_eq(pick(&p), 0);
	cr_assert_eq(p.out.generation, 5);
	cr_assert_eq(p.info.err[0], URT_E_BADFORMAT);
}

Test(superblock, pick_fails_when_both_are_invalid)
{
	struct pick p;

	pick_init(&p, 6, 5);
	p.a[100] ^= 1;
	p.b[200] ^= 0x80;
	cr_assert_eq(pick(&p), URT_E_CORRUPT);
	cr_assert_eq(p.info.slot, -1);
	cr_assert_eq(p.info.err[0], URT_E_CORRUPT);
	cr_assert_eq(p.info.err[1], URT_E_CORRUPT);

	memset(p.a, 0, sizeof(p.a));
	cr_assert_eq(pick(&p), URT_E_CORRUPT, "a corrupt copy beats 'not formatted'");
	memset(p.b, 0, sizeof(p.b));
	cr_assert_eq(pick(&p), URT_E_BADFORMAT, "a blank device is not a urt store");
}

Test(superblock, pick_rejects_a_copy_in_the_wrong_slot)
{
	struct pick p;

	/* Generation 7 belongs in slot B; found in slot A it is a misdirected write. */
	pick_init(&p, 7, 3);
	cr_assert_eq(pick(&p), 0);
	cr_assert_eq(p.out.generation, 3);
	cr_assert_eq(p.info.err[0], URT_E_CORRUPT);
	cr_assert(why_has(p.info.why[0], "parity"));
}

Test(superblock, pick_refuses_copies_of_different_stores)
{
	struct superblock sb = make_sb(0);
	struct pick p;

	/* A reformat that wrote slot A only, over an older store's slot B. */
	encode_sb(&sb, p.a);
	sb = make_sb(1001);
	sb.store_id ^= 1;
	encode_sb(&sb, p.b);
	cr_assert_eq(pick(&p), URT_E_CORRUPT);
	cr_assert(why_has(p.info.why[0], "different stores"));
}

Test(superblock, pick_never_rolls_back_past_a_newer_format)
{
	struct pick p;

	pick_init(&p, 6, 7);
	urt_store_le32(p.b + offsetof(sbd, version), URT_FORMAT_VERSION + 1);
	sb_refresh_crc(p.b);
	cr_assert_eq(pick(&p), URT_E_VERSION);
	cr_assert_eq(p.info.err[0], 0);
	cr_assert_eq(p.info.err[1], URT_E_VERSION);
}

Test(superblock, torn_write_at_every_byte_falls_back_or_is_complete)
{
	uint8_t old_a[URT_SB_SLOT_SIZE], new_a[URT_SB_SLOT_SIZE], a[URT_SB_SLOT_SIZE];
	uint8_t b[URT_SB_SLOT_SIZE];
	struct superblock out;

	encode_gen(old_a, 2);
	encode_gen(b, 3);
	encode_gen(new_a, 4);
	for (size_t tear = 0; tear <= URT_SB_SIZE; tear++) {
		memcpy(a, new_a, tear);
		memcpy(a + tear, old_a + tear, sizeof(a) - tear);
		cr_assert_eq(superblock_pick(a, b, sizeof(a), &out, NULL), 0, "tear %zu", tear);
		if (memcmp(a, new_a, sizeof(a)) == 0)
			cr_assert_eq(out.generation, 4, "tear %zu", tear);
		else
			cr_assert_eq(out.generation, 3, "tear %zu: a mixed copy must never win", tear);
	}
}

/* ---- page header -------------------------------------------------------- */

#define STORE 0x0123456789abcdefull

static void make_page(uint8_t *page, size_t size, uint64_t pgno, uint64_t lsn)
{
	page_init(page, size, pgno, 3, STORE);
	fill_random(page + URT_PAGE_HDR_SIZE, size - URT_PAGE_HDR_SIZE);
	page_seal(page, size, pgno, lsn);
}

Test(page, seal_then_verify_every_page_size)
{
	static const uint32_t sizes[] = { 4096, 8192, 16384 };
	static uint8_t page[16384];

	for (int i = 0; i < 3; i++) {
		struct page_hdr h;
		const char *why = "unset";

		make_page(page, sizes[i], 77 + i, 0xabcdef00 + i);
		cr_assert_eq(page_verify(page, sizes[i], 77 + i, STORE, &why), 0, "%s", why);
		cr_assert_null(why);
		page_hdr_read(page, &h);
		cr_assert_eq(h.pgno, 77u + (unsigned)i);
		cr_assert_eq(h.lsn, 0xabcdef00 + i);
		cr_assert_eq(h.store_id, STORE);
		cr_assert_eq(h.type, 3);
		cr_assert_eq(h.flags, 0);
		cr_assert_eq(h.crc, page_crc(page, sizes[i]));
		cr_assert_neq(h.crc, 0);
	}
}

Test(page, all_zero_page_is_unused_not_corrupt)
{
	static uint8_t page[8192];
	const char *why = NULL;

	cr_assert_eq(page_verify(page, 8192, 5, STORE, &why), PAGE_UNUSED);
	cr_assert(why_has(why, "never written"));
	page[4000] = 1;
	cr_assert_eq(page_verify(page, 8192, 5, STORE, &why), URT_E_CORRUPT,
		     "one stray byte makes a zero page corrupt");
}

Test(page, every_byte_flip_is_caught_in_a_4k_page)
{
	static uint8_t page[4096];
	const char *why = NULL;

	make_page(page, sizeof(page), 9, 1000);
	for (size_t pos = 0; pos < sizeof(page); pos++) {
		uint8_t bit = (uint8_t)(1u << (pos % 8));

		page[pos] ^= bit;
		cr_assert_eq(page_verify(page, sizeof(page), 9, STORE, &why), URT_E_CORRUPT,
			     "flip at byte %zu", pos);
		page[pos] ^= bit;
	}
	cr_assert_eq(page_verify(page, sizeof(page), 9, STORE, &why), 0, "all flips were undone");
}

Test(page, every_bit_of_the_header_and_sampled_bits_of_16k)
{
	static uint8_t page[16384];
	const char *why = NULL;

	make_page(page, sizeof(page), 12, 5);
	for (size_t pos = 0; pos < sizeof(page); pos += pos < 64 ? 1 : 61) {
		for (int bit = 0; bit < 8; bit++) {
			page[pos] ^= (uint8_t)(1u << bit);
			cr_assert_eq(page_verify(page, sizeof(page), 12, STORE, &why), URT_E_CORRUPT,
				     "byte %zu bit %d", pos, bit);
			page[pos] ^= (uint8_t)(1u << bit);
		}
	}
}

Test(page, torn_write_at_each_sector_is_caught)
{
	static uint8_t old_page[4096], new_page[4096], page[4096];
	const char *why = NULL;

	/* The new version differs from the old one in every sector. */
	make_page(old_page, 4096, 4, 100);
	make_page(new_page, 4096, 4, 200);
	for (size_t tear = 512; tear < 4096; tear += 512) {
		memcpy(page, new_page, tear);
		memcpy(page + tear, old_page + tear, 4096 - tear);
		cr_assert_eq(page_verify(page, 4096, 4, STORE, &why), URT_E_CORRUPT, "tear %zu", tear);
	}
}

Test(page, misdirected_and_foreign_pages)
{
	static uint8_t page[4096];
	const char *why = NULL;

	make_page(page, 4096, 7, 1);
	cr_assert_eq(page_verify(page, 4096, 8, STORE, &why), URT_E_MISDIRECTED);
	cr_assert(why_has(why, "misdirected"));
	cr_assert_eq(page_verify(page, 4096, 7, STORE + 1, &why), URT_E_FOREIGN);
	cr_assert(why_has(why, "another store"));
	cr_assert_eq(page_verify(page, 4096, 7, STORE, &why), 0);
}

Test(page, zero_type_under_a_valid_crc_is_corrupt)
{
	static uint8_t page[4096];
	const char *why = NULL;

	make_page(page, 4096, 1, 1);
	urt_store_le16(page + offsetof(struct urt_page_hdr_disk, type), 0);
	urt_store_le32(page, page_crc(page, 4096));
	cr_assert_eq(page_verify(page, 4096, 1, STORE, &why), URT_E_CORRUPT);
	cr_assert(why_has(why, "type"));
}

/* ---- log batches and records -------------------------------------------- */

typedef struct urt_log_batch_disk lbd;
typedef struct urt_log_rec_disk lrd;

static struct logrec_geom make_geom(uint32_t block, uint32_t page, uint64_t log_len)
{
	struct logrec_geom g = {
		.store_id = STORE, .log_len = log_len, .page_count = 1000,
		.block_size = block, .page_size = page,
	};
	return g;
}

/* Recomputes body and header checksums after a test edited a batch. */
static void batch_reseal(uint8_t *batch)
{
	uint32_t body_len = URT_GET32(batch, lbd, body_len);

	URT_PUT32(batch, lbd, body_crc, urt_crc32c(0, batch + 64, body_len));
	URT_PUT32(batch, lbd, hdr_crc, 0);
	URT_PUT32(batch, lbd, hdr_crc, urt_crc32c(0, batch, 64));
}

/* Recomputes the crc of the record at rec (whose payload is len bytes). */
static void rec_reseal(uint8_t *rec, uint32_t len)
{
	URT_PUT32(rec, lrd, crc, 0);
	URT_PUT32(rec, lrd, crc, urt_crc32c(0, rec, 32 + (size_t)len));
}

/* What a test wrote, to compare with what the decoder returns. */
struct want {
	uint8_t type;
	uint64_t txid, pgno, lsn;
	uint32_t len;
	uint8_t payload[16384 + 64];
};

Test(logrec, encode_then_decode_identical)
{
	static uint8_t buf[65536], image[4096], page[4096], expect_page[4096];
	static struct want w[16];
	struct logrec_geom g = make_geom(512, 4096, 1u << 20);
	struct logrec_enc e;
	struct logrec_batch b;
	struct logrec_iter it;
	struct logrec rec;
	const char *why = NULL;
	uint64_t span, lsn = 7 * 512;
	int n = 0;

	cr_assert_eq(logrec_enc_begin(&e, buf, sizeof(buf), &g, lsn, 3), 0);
	fill_random(image, sizeof(image));
	cr_assert_eq(logrec_enc_add(&e, LOGREC_PAGE_IMAGE, 11, 5, image, 4096, &w[n].lsn), 0);
	w[n].type = LOGREC_PAGE_IMAGE, w[n].txid = 11, w[n].pgno = 5, w[n].len = 4096;
	memcpy(w[n++].payload, image, 4096);

	/* A delta of three changes to the same page. */
	uint8_t d1[10], d2[1], d3[300];

	fill_random(d1, sizeof(d1));
	fill_random(d2, sizeof(d2));
	fill_random(d3, sizeof(d3));
	cr_assert_eq(logrec_enc_delta_begin(&e, 11, 5, &w[n].lsn), 0);
	cr_assert_eq(logrec_enc_delta_add(&e, 100, d1, sizeof(d1)), 0);
	cr_assert_eq(logrec_enc_delta_add(&e, 4095, d2, sizeof(d2)), 0);
	cr_assert_eq(logrec_enc_delta_add(&e, 32, d3, sizeof(d3)), 0);
	cr_assert_eq(logrec_enc_delta_end(&e), 0);
	w[n].type = LOGREC_PAGE_DELTA, w[n].txid = 11, w[n].pgno = 5;
	w[n++].len = 3 * 4 + sizeof(d1) + sizeof(d2) + sizeof(d3);

	cr_assert_eq(logrec_enc_add(&e, LOGREC_COMMIT, 11, 0, NULL, 0, &w[n].lsn), 0);
	w[n].type = LOGREC_COMMIT, w[n].txid = 11, w[n++].len = 0;
	cr_assert_eq(logrec_enc_add(&e, LOGREC_CHECKPOINT, 0, 0, NULL, 0, &w[n].lsn), 0);
	w[n].type = LOGREC_CHECKPOINT, w[n++].len = 0;
	cr_assert_eq(logrec_enc_finish(&e, &span), 0);
	cr_assert_eq(span % 512, 0);
	cr_assert_eq(span, (64 + (32 + 4096) + (32 + 328) + 32 + 32 + 511) / 512 * 512);
	cr_assert_eq(w[0].lsn, lsn + 64, "the first record follows the batch header");

	cr_assert_eq(logrec_batch_decode(buf, span, &g, lsn, 3, &b, &why), 0, "%s", why);
	cr_assert_eq(b.type, LOGREC_BATCH_DATA);
	cr_assert_eq(b.nrec, 4);
	cr_assert_eq(b.span, span);
	cr_assert_eq(b.epoch, 3);
	cr_assert_eq(b.lsn, lsn);

	memcpy(expect_page, image, 4096);
	memcpy(expect_page + 100, d1, sizeof(d1));
	memcpy(expect_page + 4095, d2, sizeof(d2));
	memcpy(expect_page + 32, d3, sizeof(d3));
	memset(page, 0, sizeof(page));

	logrec_iter_init(&it, buf, span, &g, &b);
	for (int i = 0; i < n; i++) {
		cr_assert_eq(logrec_iter_next(&it, &rec, &why), 1, "record %d: %s", i, why);
		cr_assert_eq(rec.type, w[i].type, "record %d", i);
		cr_assert_eq(rec.txid, w[i].txid, "record %d", i);
		cr_assert_eq(rec.pgno, w[i].pgno, "record %d", i);
		cr_assert_eq(rec.lsn, w[i].lsn, "record %d", i);
		cr_assert_eq(rec.len, w[i].len, "record %d", i);
		if (rec.type == LOGREC_PAGE_IMAGE)
			cr_assert_eq(memcmp(rec.payload, w[i].payload, rec.len), 0);
		if (rec.type == LOGREC_PAGE_IMAGE || rec.type == LOGREC_PAGE_DELTA)
			cr_assert_eq(logrec_apply(page, 4096, &rec, &why), 0, "%s", why);
		else
			cr_assert_eq(logrec_apply(page, 4096, &rec, &why), -EINVAL);
	}
	cr_assert_eq(logrec_iter_next(&it, &rec, &why), 0);
	cr_assert_eq(memcmp(page, expect_page, 4096), 0, "image then delta rebuild the page");
	cr_assert(urt_is_zero(buf + 64 + b.body_len, span - 64 - b.body_len), "padding is zero");
}

/* Encodes a batch of random records at lsn and checks every record decodes back. */
static void random_round_trip(uint32_t block, uint32_t page_size)
{
	static uint8_t buf[1 << 17], payload[16384];
	static struct want w[512];
	struct logrec_geom g = make_geom(block, page_size, 64u << 20);
	struct logrec_enc e;
	struct logrec_batch b;
	struct logrec_iter it;
	struct logrec rec;
	const char *why = NULL;
	uint64_t lsn = (rng() % 100000) * block, span;
	size_t cap = (1 + rng() % (sizeof(buf) / block)) * block;
	int n = 0, ret;

	cr_assert_eq(logrec_enc_begin(&e, buf, cap, &g, lsn, 9), 0);
	for (;;) {
		struct want *x = &w[n];
		uint64_t kind = rng() % 4;

		x->txid = 1 + rng() % 50;
		x->pgno = rng() % g.page_count;
		if (kind == 0) {
			x->type = LOGREC_PAGE_IMAGE;
			x->len = page_size;
			fill_random(x->payload, page_size);
			ret = logrec_enc_add(&e, x->type, x->txid, x->pgno, x->payload, x->len, &x->lsn);
		} else if (kind == 1) {
			x->type = LOGREC_COMMIT;
			x->pgno = 0;
			x->len = 0;
			ret = logrec_enc_add(&e, x->type, x->txid, 0, NULL, 0, &x->lsn);
		} else {
			int changes = 1 + (int)(rng() % 5);

			x->type = LOGREC_PAGE_DELTA;
			x->len = 0;
			ret = logrec_enc_delta_begin(&e, x->txid, x->pgno, &x->lsn);
			for (int c = 0; ret == 0 && c < changes; c++) {
				uint32_t len = 1 + (uint32_t)(rng() % 200);
				uint32_t off = (uint32_t)(rng() % (page_size - len + 1));

				fill_random(payload, len);
				ret = logrec_enc_delta_add(&e, off, payload, len);
				if (ret == 0) {
					urt_store_le16(x->payload + x->len, (uint16_t)off);
					urt_store_le16(x->payload + x->len + 2, (uint16_t)len);
					memcpy(x->payload + x->len + 4, payload, len);
					x->len += 4 + len;
				}
			}
			if (ret == -ENOSPC && x->len > 0)
				ret = 0;
			if (ret == 0)
				ret = logrec_enc_delta_end(&e);
			else
				logrec_enc_delta_cancel(&e);
		}
		if (ret != 0) {
			cr_assert(ret == -ENOSPC || ret == URT_E_TOOBIG, "ret %d", ret);
			break;
		}
		if (++n == 512)
			break;
	}
	if (n == 0) {
		cr_assert_eq(logrec_enc_finish(&e, &span), -EINVAL, "an empty batch cannot be finished");
		return;
	}
	cr_assert_eq(logrec_enc_finish(&e, &span), 0);
	cr_assert_leq(span, cap);
	cr_assert_eq(logrec_batch_decode(buf, span, &g, lsn, 9, &b, &why), 0, "%s", why);
	cr_assert_eq(b.nrec, (uint32_t)n);
	logrec_iter_init(&it, buf, span, &g, &b);
	for (int i = 0; i < n; i++) {
		cr_assert_eq(logrec_iter_next(&it, &rec, &why), 1, "%s", why);
		cr_assert_eq(rec.type, w[i].type);
		cr_assert_eq(rec.txid, w[i].txid);
		cr_assert_eq(rec.pgno, w[i].pgno);
		cr_assert_eq(rec.lsn, w[i].lsn);
		cr_assert_eq(rec.len, w[i].len);
		cr_assert(rec.len == 0 || memcmp(rec.payload, w[i].payload, rec.len) == 0);
	}
	cr_assert_eq(logrec_iter_next(&it, &rec, &why), 0);
}

Test(logrec, random_batches_round_trip)
{
	static const uint32_t blocks[] = { 512, 4096 };
	static const uint32_t pages[] = { 4096, 8192, 16384 };

	for (int i = 0; i < 300; i++)
		random_round_trip(blocks[i % 2], pages[(i / 2) % 3]);
}

Test(logrec, full_batch_says_enospc_and_still_decodes)
{
	static uint8_t buf[8192], image[4096];
	struct logrec_geom g = make_geom(512, 4096, 1u << 20);
	struct logrec_enc e;
	struct logrec_batch b;
	const char *why = NULL;
	uint64_t span;
	int commits = 0;

	cr_assert_eq(logrec_enc_begin(&e, buf, sizeof(buf), &g, 0, 1), 0);
	cr_assert_eq(logrec_enc_room(&e), 8192 - 64);
	cr_assert_eq(logrec_enc_add(&e, LOGREC_PAGE_IMAGE, 1, 2, image, 4096, NULL), 0);
	while (logrec_enc_add(&e, LOGREC_COMMIT, 1 + commits, 0, NULL, 0, NULL) == 0)
		commits++;
	cr_assert_eq(commits, (8192 - 64 - 4128) / 32);
	cr_assert_eq(logrec_enc_room(&e), (8192 - 64 - 4128) % 32);
	cr_assert_eq(logrec_enc_add(&e, LOGREC_COMMIT, 5, 0, NULL, 0, NULL), -ENOSPC);
	cr_assert_eq(logrec_enc_add(&e, LOGREC_PAGE_IMAGE, 1, 2, image, 4096, NULL), -ENOSPC);
	cr_assert_eq(logrec_enc_delta_begin(&e, 1, 2, NULL), -ENOSPC);
	cr_assert_eq(logrec_enc_finish(&e, &span), 0);
	cr_assert_eq(span, 8192);
	cr_assert_eq(logrec_batch_decode(buf, span, &g, 0, 1, &b, &why), 0, "%s", why);
	cr_assert_eq(b.nrec, 1u + (unsigned)commits);
}

Test(logrec, record_that_can_never_fit_is_toobig)
{
	static uint8_t buf[4096], image[4096], big[2000];
	struct logrec_geom g = make_geom(512, 4096, 1u << 20);
	struct logrec_enc e;

	/* A 4 KiB image cannot fit a one-block-of-4-KiB batch buffer with its headers. */
	cr_assert_eq(logrec_enc_begin(&e, buf, sizeof(buf), &g, 0, 1), 0);
	cr_assert_eq(logrec_enc_add(&e, LOGREC_PAGE_IMAGE, 1, 1, image, 4096, NULL), URT_E_TOOBIG);
	cr_assert_eq(logrec_enc_begin(&e, buf, 1024, &g, 0, 1), 0);
	cr_assert_eq(logrec_enc_delta_begin(&e, 1, 1, NULL), 0);
	cr_assert_eq(logrec_enc_delta_add(&e, 0, big, sizeof(big)), URT_E_TOOBIG);
	cr_assert_eq(logrec_enc_delta_add(&e, 0, big, 900), 0);
	cr_assert_eq(logrec_enc_delta_add(&e, 0, big, 100), -ENOSPC);
	cr_assert_eq(logrec_enc_delta_end(&e), 0);
}

Test(logrec, encoder_rejects_bad_arguments)
{
	static uint8_t buf[4096], image[4096];
	struct logrec_geom g = make_geom(512, 4096, 1u << 20);
	struct logrec_enc e;
	uint64_t span;

	cr_assert_eq(logrec_enc_begin(&e, buf, 1000, &g, 0, 1), -EINVAL, "cap not block multiple");
	cr_assert_eq(logrec_enc_begin(&e, buf, 4096, &g, 100, 1), -EINVAL, "lsn not aligned");
	cr_assert_eq(logrec_enc_begin(&e, buf, 256, &g, 0, 1), -EINVAL, "cap under one block");
	cr_assert_eq(logrec_enc_begin(&e, buf, 4096, &g, 0, 1), 0);
	cr_assert_eq(logrec_enc_finish(&e, &span), -EINVAL, "empty batch");
	cr_assert_eq(logrec_enc_add(&e, LOGREC_PAGE_IMAGE, 1, 1, image, 100, NULL), -EINVAL);
	cr_assert_eq(logrec_enc_add(&e, LOGREC_PAGE_IMAGE, 1, 1000, image, 4096, NULL), -EINVAL);
	cr_assert_eq(logrec_enc_add(&e, LOGREC_COMMIT, 0, 0, NULL, 0, NULL), -EINVAL, "txid 0");
	cr_assert_eq(logrec_enc_add(&e, LOGREC_CHECKPOINT, 1, 0, NULL, 0, NULL), -EINVAL);
	cr_assert_eq(logrec_enc_add(&e, LOGREC_PAGE_DELTA, 1, 1, image, 8, NULL), -EINVAL);
	cr_assert_eq(logrec_enc_add(&e, 99, 1, 1, NULL, 0, NULL), -EINVAL);
	cr_assert_eq(logrec_enc_delta_add(&e, 0, image, 1), -EINVAL, "no open delta");
	cr_assert_eq(logrec_enc_delta_end(&e), -EINVAL);
	cr_assert_eq(logrec_enc_delta_begin(&e, 1, 1, NULL), 0);
	cr_assert_eq(logrec_enc_delta_begin(&e, 1, 1, NULL), -EINVAL, "one delta at a time");
	cr_assert_eq(logrec_enc_delta_add(&e, 4000, image, 97), -EINVAL, "past the page end");
	cr_assert_eq(logrec_enc_delta_add(&e, 0, image, 0), -EINVAL, "empty change");
	cr_assert_eq(logrec_enc_delta_end(&e), -EINVAL, "delta without change");
	cr_assert_eq(logrec_enc_finish(&e, &span), -EINVAL, "delta still open");
	logrec_enc_delta_cancel(&e);
	cr_assert_eq(logrec_enc_room(&e), 4096 - 64, "cancel leaves no trace");
}

/* Builds a one-record batch (a commit, then an image) at lsn for the rejection tests. */
static uint64_t small_batch(uint8_t *buf, size_t cap, const struct logrec_geom *g, uint64_t lsn,
			    uint64_t epoch)
{
	static uint8_t image[16384];
	struct logrec_enc e;
	uint64_t span;

	memset(image, 0x5a, sizeof(image));
	cr_assert_eq(logrec_enc_begin(&e, buf, cap, g, lsn, epoch), 0);
	cr_assert_eq(logrec_enc_add(&e, LOGREC_COMMIT, 77, 0, NULL, 0, NULL), 0);
	cr_assert_eq(logrec_enc_add(&e, LOGREC_PAGE_IMAGE, 77, 3, image, g->page_size, NULL), 0);
	cr_assert_eq(logrec_enc_finish(&e, &span), 0);
	return span;
}

Test(logrec, batch_header_carries_the_durable_point)
{
	static uint8_t buf[8192];
	struct logrec_geom g = make_geom(512, 4096, 1u << 20);
	struct logrec_batch b;
	struct logrec_enc e;
	const char *why = NULL;
	uint64_t span;

	/* Format version 4: the durable point when sealed, at most the batch's own LSN. */
	cr_assert_eq(logrec_enc_begin(&e, buf, sizeof(buf), &g, 8192, 3), 0);
	cr_expect_eq(e.durable_lsn, 0, "begin claims nothing");
	cr_assert_eq(logrec_enc_add(&e, LOGREC_COMMIT, 9, 0, NULL, 0, NULL), 0);
	e.durable_lsn = 7680;
	cr_assert_eq(logrec_enc_finish(&e, &span), 0);
	cr_assert_eq(logrec_batch_decode(buf, span, &g, 8192, 3, &b, &why), 0, "%s", why);
	cr_expect_eq(b.durable_lsn, 7680);
	cr_expect_eq(URT_GET64(buf, lbd, durable_lsn), 7680, "little-endian at offset 56");
	cr_expect_eq(offsetof(lbd, durable_lsn), 56);
	/* A WRAP batch claims nothing. */
	cr_assert_eq(logrec_wrap_encode(buf, sizeof(buf), &g, (1u << 20) - 4096, 3, &span), 0);
	cr_assert_eq(logrec_batch_check_header(buf, 512, &g, (1u << 20) - 4096, 3, &b, &why), 0,
		     "%s", why);
	cr_expect_eq(b.durable_lsn, 0);
}

Test(logrec, torn_batch_is_the_end_of_the_log)
{
	static uint8_t buf[8192], torn[8192];
	struct logrec_geom g = make_geom(512, 4096, 1u << 20);
	struct logrec_batch b;
	const char *why = NULL;
	uint64_t span = small_batch(buf, sizeof(buf), &g, 1024, 2);

	cr_assert_eq(logrec_batch_decode(buf, span, &g, 1024, 2, &b, &why), 0, "%s", why);
	cr_assert_gt(64 + b.body_len, 4096, "the body spans several blocks");

	/* Only some blocks reached the disk; the rest hold older bytes. */
	for (uint64_t done = 512; done < span; done += 512) {
		memcpy(torn, buf, done);
		memset(torn + done, 0xc3, span - done);
		cr_assert_eq(logrec_batch_decode(torn, span, &g, 1024, 2, &b, &why), LOGREC_END,
			     "torn after %lu bytes", (unsigned long)done);
		cr_assert(why_has(why, "torn batch"), "%s", why);
	}

	/* Every single-bit error in the header or the body is caught. */
	for (uint64_t pos = 0; pos < 64 + b.body_len; pos++) {
		memcpy(torn, buf, span);
		torn[pos] ^= (uint8_t)(1u << (pos % 8));
		int ret = logrec_batch_decode(torn, span, &g, 1024, 2, &b, &why);

		cr_assert_eq(ret, LOGREC_END, "flip at %lu: %d %s", (unsigned long)pos, ret, why);
	}

	/* A header whose block did not reach the disk at all. */
	memset(torn, 0, sizeof(torn));
	cr_assert_eq(logrec_batch_check_header(torn, 512, &g, 1024, 2, &b, &why), LOGREC_END);
	cr_assert(why_has(why, "magic"));
	cr_assert_eq(logrec_batch_check_header(buf, 63, &g, 1024, 2, &b, &why), -EINVAL);
	cr_assert_eq(logrec_batch_check_header(buf, 64, &g, 1024, 2, &b, &why), 0,
		     "the header alone is enough for the first step");
	cr_assert_eq(logrec_batch_check_body(buf, 64 + b.body_len - 1, &g, &b, &why), -EINVAL);
}

Test(logrec, stale_and_foreign_batches_end_the_log)
{
	static uint8_t buf[8192];
	uint64_t log_len = 1u << 20;
	struct logrec_geom g = make_geom(512, 4096, log_len);
	struct logrec_batch b;
	const char *why = NULL;
	uint64_t lsn = 3 * log_len + 4096;

	small_batch(buf, sizeof(buf), &g, lsn, 5);
	cr_assert_eq(logrec_batch_check_header(buf, 64, &g, lsn, 5, &b, &why), 0, "%s", why);

	/* Recovery expects the next lap here: this header is from the previous one. */
	cr_assert_eq(logrec_batch_check_header(buf, 64, &g, lsn + log_len, 5, &b, &why), LOGREC_END);
	cr_assert(why_has(why, "earlier lap"), "%s", why);
	/* Recovery expects an older LSN: the log was overwritten past the checkpoint. */
	cr_assert_eq(logrec_batch_check_header(buf, 64, &g, lsn - log_len, 5, &b, &why), URT_E_CORRUPT);
	cr_assert(why_has(why, "later lap"), "%s", why);
	/* Not at its own position (e.g. a header inside some other data). */
	cr_assert_eq(logrec_batch_check_header(buf, 64, &g, lsn + 512, 5, &b, &why), LOGREC_END);
	cr_assert(why_has(why, "own position"), "%s", why);
	/* A previous incarnation of the log. */
	cr_assert_eq(logrec_batch_check_header(buf, 64, &g, lsn, 6, &b, &why), LOGREC_END);
	cr_assert(why_has(why, "incarnation"), "%s", why);
	/* Another store's log left on a reused device. */
	g.store_id++;
	cr_assert_eq(logrec_batch_check_header(buf, 64, &g, lsn, 5, &b, &why), LOGREC_END);
	cr_assert(why_has(why, "another store"), "%s", why);
}

/* Edits a batch built by small_batch, reseals it, and expects URT_E_CORRUPT with reason. */
static void expect_corrupt(uint8_t *buf, uint64_t span, const struct logrec_geom *g,
			   uint64_t lsn, const char *reason)
{
	struct logrec_batch b;
	const char *why = NULL;
	int ret = logrec_batch_decode(buf, span, g, lsn, 1, &b, &why);

	cr_assert_eq(ret, URT_E_CORRUPT, "%s: got %d (%s)", reason, ret, why ? why : "-");
	cr_assert(why_has(why, reason), "wanted '%s', got '%s'", reason, why);
}

Test(logrec, record_length_overrun_is_corrupt)
{
	static uint8_t buf[8192];
	struct logrec_geom g = make_geom(512, 4096, 1u << 20);
	uint64_t span = small_batch(buf, sizeof(buf), &g, 0, 1);
	uint8_t *commit = buf + 64, *image = buf + 64 + 32;

	/* The image's length reaches one byte past the body. */
	URT_PUT32(image, lrd, len, 4097);
	rec_reseal(image, 4096);
	batch_reseal(buf);
	expect_corrupt(buf, span, &g, 0, "runs past the batch body");

	/* A huge length must not wrap any bound computation. */
	URT_PUT32(image, lrd, len, UINT32_MAX);
	batch_reseal(buf);
	expect_corrupt(buf, span, &g, 0, "runs past the batch body");

	/* The commit claims a payload that swallows the next record header. */
	span = small_batch(buf, sizeof(buf), &g, 0, 1);
	URT_PUT32(commit, lrd, len, 16);
	rec_reseal(commit, 16);
	batch_reseal(buf);
	expect_corrupt(buf, span, &g, 0, "commit record");
}

/* Stores value little-endian in the width bytes at p. */
static void put_le(uint8_t *p, size_t width, uint64_t value)
{
	for (size_t i = 0; i < width; i++)
		p[i] = (uint8_t)(value >> (8 * i));
}

/* The offset and the width of field f of the on-disk struct st, for tables of edits. */
#define FIELD(st, f) offsetof(st, f), sizeof(((st *)0)->f)

Test(logrec, inconsistent_batches_under_good_checksums_are_corrupt)
{
	static uint8_t buf[8192];
	struct logrec_geom g = make_geom(512, 4096, 1u << 20);
	uint64_t span = small_batch(buf, sizeof(buf), &g, 0, 1);
	uint32_t body_len = URT_GET32(buf, lbd, body_len);
	uint8_t *image = buf + 64 + 32;
	/*
	 * One field of a fresh small_batch, in the batch header or in its
	 * page-image record, set to a value that breaks one rule; every
	 * checksum is recomputed, so the rule's own check must fire.
	 */
	const struct {
		bool in_image;		/* The field is in the page-image record, not the batch header. */
		size_t off, width;	/* Where the field is and its size in bytes. */
		uint64_t value;		/* What the field is set to. */
		const char *why;	/* What the decoder's reason must say. */
	} cases[] = {
		{ false, FIELD(lbd, nrec), 3, "record header runs past" },
		{ false, FIELD(lbd, nrec), 1, "after its last record" },
		{ false, FIELD(lbd, nrec), 0, "no record" },
		{ false, FIELD(lbd, span), span + 512, "span" },
		{ false, FIELD(lbd, body_len), body_len + 4, "8-byte aligned" },
		{ false, FIELD(lbd, type), 7, "unknown batch type" },
		{ false, FIELD(lbd, flags), 1, "flags" },
		{ false, FIELD(lbd, durable_lsn), 1, "durable point past itself" },
		{ true, FIELD(lrd, type), 9, "unknown record type" },
		{ true, FIELD(lrd, pgno), 1000, "past the page region" },
		{ true, FIELD(lrd, flags), 1, "flags" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		span = small_batch(buf, sizeof(buf), &g, 0, 1);
		put_le((cases[i].in_image ? image : buf) + cases[i].off, cases[i].width, cases[i].value);
		if (cases[i].in_image)
			rec_reseal(image, 4096);
		batch_reseal(buf);
		expect_corrupt(buf, span, &g, 0, cases[i].why);
	}

	/* A payload byte changed without resealing its record. */
	span = small_batch(buf, sizeof(buf), &g, 0, 1);
	image[40] ^= 1;
	batch_reseal(buf);
	expect_corrupt(buf, span, &g, 0, "record checksum");
}

Test(logrec, malformed_deltas_are_corrupt_and_leave_the_page_alone)
{
	static uint8_t buf[4096], page[4096], before[4096];
	struct logrec_geom g = make_geom(512, 4096, 1u << 20);
	struct logrec_enc e;
	uint8_t data[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	uint64_t span;
	uint8_t *rec = buf + 64, *d;

	static const struct {
		uint16_t off, len;
		uint32_t rec_len;
		const char *why;
	} cases[] = {
		{ 4090, 8, 12, "past the page end" },
		{ 0, 0, 12, "empty delta" },
		{ 0, 9, 12, "past the record" },
		{ 0, 8, 14, "entry header runs past" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_assert_eq(logrec_enc_begin(&e, buf, sizeof(buf), &g, 0, 1), 0);
		cr_assert_eq(logrec_enc_delta_begin(&e, 1, 2, NULL), 0);
		cr_assert_eq(logrec_enc_delta_add(&e, 8, data, 8), 0);
		cr_assert_eq(logrec_enc_delta_end(&e), 0);
		cr_assert_eq(logrec_enc_finish(&e, &span), 0);
		d = rec + 32;
		urt_store_le16(d, cases[i].off);
		urt_store_le16(d + 2, cases[i].len);
		if (cases[i].rec_len != 12) {
			/* Two stray bytes after the change: a truncated second entry. */
			URT_PUT32(rec, lrd, len, cases[i].rec_len);
			d[12] = d[13] = 0;
		}
		rec_reseal(rec, cases[i].rec_len);
		batch_reseal(buf);
		expect_corrupt(buf, span, &g, 0, cases[i].why);

		/* logrec_apply on the same bytes must fail before touching the page. */
		struct logrec r = { .type = LOGREC_PAGE_DELTA, .payload = d, .len = cases[i].rec_len };
		const char *why = NULL;

		fill_random(page, sizeof(page));
		memcpy(before, page, sizeof(page));
		cr_assert_eq(logrec_apply(page, 4096, &r, &why), URT_E_CORRUPT);
		cr_assert_eq(memcmp(page, before, sizeof(page)), 0, "case %zu changed the page", i);
	}
}

/* A page of random bytes with [off, off + len) zero. */
static void holed_page(uint8_t *page, size_t size, uint32_t off, uint32_t len)
{
	fill_random(page, size);
	memset(page + off, 0, len);
}

Test(logrec, image_with_a_hole_round_trips_and_zeroes_the_hole)
{
	static uint8_t buf[16384], page[4096], got[4096];
	struct logrec_geom g = make_geom(512, 4096, 1u << 20);
	struct logrec_enc e;
	struct logrec_batch b;
	struct logrec_iter it;
	struct logrec rec;
	const char *why = NULL;
	uint64_t span, lsn[3];

	holed_page(page, sizeof(page), 1000, 2000);
	cr_assert_eq(logrec_enc_begin(&e, buf, sizeof(buf), &g, 0, 1), 0);
	cr_assert_eq(logrec_enc_image(&e, 4, 9, page, 1000, 2000, &lsn[0]), 0);
	/* No hole: a plain PAGE_IMAGE.  A hole at the very end of the page. */
	cr_assert_eq(logrec_enc_image(&e, 4, 10, page, 0, 0, &lsn[1]), 0);
	memset(page + 4000, 0, 96);
	cr_assert_eq(logrec_enc_image(&e, 4, 11, page, 4000, 96, &lsn[2]), 0);
	cr_assert_eq(logrec_enc_finish(&e, &span), 0);
	cr_assert_eq(span, (64 + (32 + 4 + 2096 + 4) + (32 + 4096) + (32 + 4 + 4000) + 511) / 512 * 512,
		     "each image is its page without its hole, plus a 4-byte hole header");
	cr_assert_eq(logrec_batch_decode(buf, span, &g, 0, 1, &b, &why), 0, "%s", why);
	logrec_iter_init(&it, buf, span, &g, &b);

	cr_assert_eq(logrec_iter_next(&it, &rec, &why), 1, "%s", why);
	cr_assert_eq(rec.type, LOGREC_PAGE_IMAGE_HOLE);
	cr_assert_eq(rec.len, logrec_image_len(4096, 2000));
	cr_assert_eq(rec.lsn, lsn[0]);
	cr_assert(logrec_is_image(rec.type));
	memset(got, 0xa5, sizeof(got));
	cr_assert_eq(logrec_apply(got, 4096, &rec, &why), 0, "%s", why);
	cr_assert(urt_is_zero(got + 1000, 2000), "the hole is written as zeros");
	cr_assert_eq(memcmp(got, page, 1000), 0);
	cr_assert_eq(memcmp(got + 3000, page + 3000, 1000), 0, "bytes after the hole");

	cr_assert_eq(logrec_iter_next(&it, &rec, &why), 1, "%s", why);
	cr_assert_eq(rec.type, LOGREC_PAGE_IMAGE);
	cr_assert_eq(rec.len, 4096);

	cr_assert_eq(logrec_iter_next(&it, &rec, &why), 1, "%s", why);
	cr_assert_eq(rec.type, LOGREC_PAGE_IMAGE_HOLE);
	memset(got, 0xa5, sizeof(got));
	cr_assert_eq(logrec_apply(got, 4096, &rec, &why), 0, "%s", why);
	cr_assert_eq(memcmp(got, page, 4096), 0, "a hole that ends the page");
	cr_assert_eq(logrec_iter_next(&it, &rec, &why), 0);
}

Test(logrec, image_encoder_refuses_a_hole_that_is_not_zero_or_not_inside)
{
	static uint8_t buf[16384], page[4096];
	struct logrec_geom g = make_geom(512, 4096, 1u << 20);
	struct logrec_enc e;
	uint64_t span;

	holed_page(page, sizeof(page), 100, 200);
	page[299] = 1;
	cr_assert_eq(logrec_enc_begin(&e, buf, sizeof(buf), &g, 0, 1), 0);
	cr_assert_eq(logrec_enc_image(&e, 1, 2, page, 100, 200, NULL), -EINVAL, "last byte not zero");
	cr_assert_eq(logrec_enc_image(&e, 1, 2, page, 100, 199, NULL), 0, "the zero part is fine");
	cr_assert_eq(logrec_enc_image(&e, 1, 2, page, 4000, 97, NULL), -EINVAL, "past the page");
	cr_assert_eq(logrec_enc_image(&e, 1, 2, page, 5000, 1, NULL), -EINVAL, "starts past the page");
	cr_assert_eq(logrec_enc_image(&e, 1, 1000, page, 100, 199, NULL), -EINVAL, "page out of range");
	cr_assert_eq(logrec_enc_image(&e, 1, 2, NULL, 100, 199, NULL), -EINVAL);
	cr_assert_eq(e.nrec, 1, "refused images add nothing");
	cr_assert_eq(logrec_enc_finish(&e, &span), 0);
}

Test(logrec, malformed_holes_are_corrupt_and_leave_the_page_alone)
{
	static uint8_t buf[16384], page[4096], before[4096], target[4096];
	struct logrec_geom g = make_geom(512, 4096, 1u << 20);
	struct logrec_enc e;
	uint64_t span;
	uint8_t *rec = buf + 64, *d = rec + 32;

	static const struct {
		uint16_t off, len;
		int32_t len_delta;	/* Change to the record's payload length. */
		const char *why;
	} cases[] = {
		{ 100, 0, 0, "empty hole" },
		{ 4000, 200, 0, "runs past the page end" },
		{ 100, 300, 0, "without its hole" },	/* Claims more hole than the payload left out. */
		{ 100, 200, -8, "without its hole" },	/* Payload shorter than the page without the hole. */
	};

	holed_page(page, sizeof(page), 100, 200);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t len = logrec_image_len(4096, 200) + (uint32_t)cases[i].len_delta;

		cr_assert_eq(logrec_enc_begin(&e, buf, sizeof(buf), &g, 0, 1), 0);
		cr_assert_eq(logrec_enc_image(&e, 1, 2, page, 100, 200, NULL), 0);
		cr_assert_eq(logrec_enc_finish(&e, &span), 0);
		urt_store_le16(d, cases[i].off);
		urt_store_le16(d + 2, cases[i].len);
		URT_PUT32(rec, lrd, len, len);
		/* A shortened payload leaves padding behind it: keep that zero. */
		memset(rec + 32 + len, 0, (32 + logrec_image_len(4096, 200) + 7) / 8 * 8 - 32 - len);
		rec_reseal(rec, len);
		batch_reseal(buf);
		expect_corrupt(buf, span, &g, 0, cases[i].why);

		struct logrec r = { .type = LOGREC_PAGE_IMAGE_HOLE, .payload = d, .len = len };
		const char *why = NULL;

		fill_random(before, sizeof(before));
		memcpy(target, before, sizeof(target));
		cr_assert_eq(logrec_apply(target, 4096, &r, &why), URT_E_CORRUPT, "case %zu", i);
		cr_assert(why_has(why, cases[i].why), "case %zu: %s", i, why);
		cr_assert_eq(memcmp(target, before, sizeof(target)), 0, "case %zu changed the page", i);
	}
}

Test(logrec, batches_never_cross_the_region_end)
{
	static uint8_t buf[65536], blk[4096], image[4096];
	uint64_t log_len = 64 * 1024;
	struct logrec_geom g = make_geom(512, 4096, log_len);
	struct logrec_enc e;
	struct logrec_batch b;
	const char *why = NULL;
	uint64_t lsn = 2 * log_len + log_len - 1024, span;

	/* Only 1 KiB is left before the end: the encoder caps the batch there. */
	cr_assert_eq(logrec_enc_begin(&e, buf, sizeof(buf), &g, lsn, 1), 0);
	cr_assert_eq(logrec_enc_room(&e), 1024 - 64);
	cr_assert_eq(logrec_enc_add(&e, LOGREC_PAGE_IMAGE, 1, 1, image, 4096, NULL), -ENOSPC,
		     "fits after the wrap, not before it");

	cr_assert_eq(logrec_wrap_encode(blk, 512, &g, lsn, 1, &span), 0);
	cr_assert_eq(span, 1024);
	cr_assert_eq((lsn + span) % log_len, 0, "the next batch starts a new lap");
	cr_assert_eq(logrec_batch_decode(blk, 512, &g, lsn, 1, &b, &why), 0, "%s", why);
	cr_assert_eq(b.type, LOGREC_BATCH_WRAP);
	cr_assert_eq(b.span, 1024);
	cr_assert_eq(logrec_wrap_encode(blk, 512, &g, 3 * log_len, 1, &span), -EINVAL,
		     "no wrap at the region start");
	cr_assert_eq(logrec_wrap_encode(blk, 256, &g, lsn, 1, &span), -EINVAL);

	/* A wrap whose span stops short of the end is corrupt. */
	URT_PUT64(blk, lbd, span, 512);
	batch_reseal(blk);
	cr_assert_eq(logrec_batch_check_header(blk, 512, &g, lsn, 1, &b, &why), URT_E_CORRUPT);

	/* A data batch that claims to run past the end is corrupt. */
	cr_assert_eq(logrec_enc_begin(&e, buf, sizeof(buf), &g, lsn, 1), 0);
	cr_assert_eq(logrec_enc_add(&e, LOGREC_COMMIT, 1, 0, NULL, 0, NULL), 0);
	cr_assert_eq(logrec_enc_finish(&e, &span), 0);
	cr_assert_eq(span, 512);
	URT_PUT32(buf, lbd, body_len, 1024);
	URT_PUT64(buf, lbd, span, 1536);
	batch_reseal(buf);
	cr_assert_eq(logrec_batch_check_header(buf, 64, &g, lsn, 1, &b, &why), URT_E_CORRUPT);
	cr_assert(why_has(why, "past the end of the log region"), "%s", why);
}

/*
 * A circular log in memory, written the way the WAL writes (batches of
 * random sizes, a WRAP batch when the next one does not fit) and walked the
 * way recovery walks it.
 */
struct ring {
	uint8_t *mem;			/* log_len bytes. */
	struct logrec_geom g;		/* Geometry. */
	uint64_t tail;			/* Next LSN to write. */
	uint64_t epoch;			/* Epoch stamped on new batches. */
};

/* Appends one batch of nrec commits with txids from txid on; returns its LSN. */
static uint64_t ring_append(struct ring *r, uint32_t nrec, uint64_t txid)
{
	static uint8_t buf[16384];
	struct logrec_enc e;
	uint64_t span, lsn;

	for (;;) {
		cr_assert_eq(logrec_enc_begin(&e, buf, sizeof(buf), &r->g, r->tail, r->epoch), 0);
		if (logrec_enc_room(&e) >= nrec * 32ull)
			break;
		cr_assert_eq(logrec_wrap_encode(buf, sizeof(buf), &r->g, r->tail, r->epoch, &span), 0);
		memcpy(r->mem + r->tail % r->g.log_len, buf, r->g.block_size);
		r->tail += span;
	}
	for (uint32_t i = 0; i < nrec; i++)
		cr_assert_eq(logrec_enc_add(&e, LOGREC_COMMIT, txid + i, 0, NULL, 0, NULL), 0);
	cr_assert_eq(logrec_enc_finish(&e, &span), 0);
	cr_assert_leq(r->tail % r->g.log_len + span, r->g.log_len);
	memcpy(r->mem + r->tail % r->g.log_len, buf, span);
	lsn = r->tail;
	r->tail += span;
	return lsn;
}

/* Recovery's walk: from lsn, returns the LSN where the log ends; counts commits. */
static uint64_t ring_walk(const struct ring *r, uint64_t lsn, uint64_t min_epoch,
			  uint64_t *commits, uint64_t *last_txid)
{
	struct logrec_batch b;
	struct logrec_iter it;
	struct logrec rec;
	const char *why = NULL;

	*commits = 0;
	for (;;) {
		uint64_t pos = lsn % r->g.log_len;
		const uint8_t *p = r->mem + pos;
		int ret = logrec_batch_decode(p, r->g.log_len - pos, &r->g, lsn, min_epoch, &b, &why);

		if (ret == LOGREC_END)
			return lsn;
		cr_assert_eq(ret, 0, "at lsn %lu: %s", (unsigned long)lsn, why);
		logrec_iter_init(&it, p, r->g.log_len - pos, &r->g, &b);
		while ((ret = logrec_iter_next(&it, &rec, &why)) == 1) {
			(*commits)++;
			*last_txid = rec.txid;
		}
		cr_assert_eq(ret, 0, "%s", why);
		min_epoch = b.epoch;
		lsn += b.span;
	}
}

Test(logrec, circular_log_recovery_finds_the_exact_end)
{
	struct ring r = { .g = make_geom(512, 4096, 256 * 1024), .epoch = 1 };
	uint64_t txid = 1, ckpt = 0, ckpt_txid = 1, commits, last = 0, end;

	r.mem = calloc(1, r.g.log_len);
	cr_assert_not_null(r.mem);
	/* Five laps of batches; the checkpoint trails the tail by about half the log. */
	while (r.tail < 5 * r.g.log_len) {
		uint32_t nrec = 1 + (uint32_t)(rng() % 300);
		uint64_t lsn = ring_append(&r, nrec, txid);

		if (lsn - ckpt > r.g.log_len / 2) {
			ckpt = lsn;
			ckpt_txid = txid;
		}
		txid += nrec;

		/* After every batch, recovery from the checkpoint must end at the tail. */
		end = ring_walk(&r, ckpt, 1, &commits, &last);
		cr_assert_eq(end, r.tail, "walk ended at %lu, tail %lu", (unsigned long)end,
			     (unsigned long)r.tail);
		cr_assert_eq(commits, txid - ckpt_txid);
		cr_assert_eq(last, txid - 1);
	}
	free(r.mem);
}

Test(logrec, circular_log_torn_tail_and_stale_incarnation)
{
	struct ring r = { .g = make_geom(512, 4096, 256 * 1024), .epoch = 1 };
	uint64_t commits, last, b1, b2, end_before;

	r.mem = calloc(1, r.g.log_len);
	cr_assert_not_null(r.mem);
	ring_append(&r, 10, 1);
	end_before = r.tail;
	/* Incarnation 1 writes B1 (torn: its second block never lands) and B2 (intact). */
	b1 = ring_append(&r, 40, 11);
	b2 = ring_append(&r, 5, 51);
	memset(r.mem + b1 % r.g.log_len + 512, 0, 512);
	cr_assert_eq(ring_walk(&r, 0, 1, &commits, &last), end_before, "the log ends before B1");
	cr_assert_eq(commits, 10);

	/* Incarnation 2 (epoch 2) rewrites from B1's LSN with a batch of the same span. */
	r.tail = end_before;
	r.epoch = 2;
	cr_assert_eq(ring_append(&r, 40, 100), b1);
	cr_assert_eq(r.tail, b2, "B1' ends exactly where the stale B2 starts");
	cr_assert_eq(ring_walk(&r, 0, 1, &commits, &last), b2,
		     "B2 of the earlier incarnation is not replayed after B1'");
	cr_assert_eq(commits, 50);
	cr_assert_eq(last, 139);
	free(r.mem);
}
