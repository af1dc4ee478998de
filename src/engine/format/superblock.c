/*
 * Superblock: encode, decode, validate, and pick the newest of two copies.
 *
 * Design notes.
 *
 * Invariants the code below enforces:
 *  1. A copy is valid only if its magic, size, CRC and every field check
 *     out; a decoded superblock always satisfies superblock_validate().
 *  2. Generation g lives in slot g % 2.  A copy in the wrong slot is a
 *     misdirected write and is treated as invalid, not as newer.
 *  3. The fields magic, version, crc and sb_size never move, so a valid
 *     copy of a newer format is recognised (URT_E_VERSION) and never
 *     mistaken for corruption; superblock_pick then refuses to fall back
 *     to the older copy, because that would roll the store back.
 *  4. Both valid copies must describe the same store (store_id, uuid,
 *     shard, page and block size).  A half-finished reformat over an old
 *     store leaves one copy of each; picking either would be wrong, so
 *     pick fails with URT_E_CORRUPT and asks for a new format.
 *
 * Order of checks in decode, and why: magic first (a blank or foreign
 * device is URT_E_BADFORMAT, the cheapest answer), then sb_size and the
 * CRC (nothing else is trusted before the CRC), then the version (only a
 * checksummed version can claim "newer"), then the fields.
 */
#include <errno.h>

#include "base/crc32c.h"
#include "engine/format/format.h"

typedef struct urt_sb_disk sbd;

/* CRC of the first size bytes of buf with the crc field taken as zero. */
static uint32_t sb_crc(const uint8_t *buf, size_t size)
{
	static const uint8_t zero[4];
	uint32_t crc = urt_crc32c(0, buf, offsetof(sbd, crc));

	crc = urt_crc32c(crc, zero, sizeof(zero));
	return urt_crc32c(crc, buf + offsetof(sbd, crc) + 4, size - offsetof(sbd, crc) - 4);
}

/* Checks the region layout; shared by validate and plan. */
static int check_layout(const struct superblock *sb, const char **why)
{
	uint64_t log_end, page_room;

	if (!urt_page_size_valid(sb->page_size))
		return fmt_reject(why, URT_E_BADFORMAT, "page size is not 4096, 8192 or 16384");
	if (!urt_block_size_valid(sb->block_size))
		return fmt_reject(why, URT_E_BADFORMAT, "block size is not a power of two in 512..4096");
	if (sb->log_start < URT_SB_REGION_SIZE)
		return fmt_reject(why, URT_E_BADFORMAT, "log region overlaps the superblock slots");
	if (sb->log_start % sb->block_size)
		return fmt_reject(why, URT_E_BADFORMAT, "log start is not block aligned");
	if (sb->log_len % sb->block_size)
		return fmt_reject(why, URT_E_BADFORMAT, "log length is not a multiple of the block size");
	if (sb->log_len < 4ull * sb->page_size)
		return fmt_reject(why, URT_E_BADFORMAT, "log region is smaller than four pages");
	if (sb->log_len > UINT64_MAX - sb->log_start)
		return fmt_reject(why, URT_E_BADFORMAT, "log region end overflows");
	log_end = sb->log_start + sb->log_len;
	if (sb->page_start < log_end)
		return fmt_reject(why, URT_E_BADFORMAT, "page region overlaps the log region");
	if (sb->page_start % sb->page_size)
		return fmt_reject(why, URT_E_BADFORMAT, "page region start is not page aligned");
	if (sb->page_start > sb->device_size)
		return fmt_reject(why, URT_E_BADFORMAT, "page region starts past the device end");
	page_room = (sb->device_size - sb->page_start) / sb->page_size;
	if (sb->page_count == 0)
		return fmt_reject(why, URT_E_BADFORMAT, "page region holds no page");
	if (sb->page_count > page_room)
		return fmt_reject(why, URT_E_BADFORMAT, "page region runs past the device end");
	return 0;
}

int superblock_validate(const struct superblock *sb, const char **why)
{
	int ret;

	if (sb->version > URT_FORMAT_VERSION)
		return fmt_reject(why, URT_E_VERSION, "superblock format version is newer than this build");
	if (sb->version < URT_FORMAT_VERSION_MIN)
		return fmt_reject(why, URT_E_BADFORMAT, "superblock format version is unknown");
	ret = check_layout(sb, why);
	if (ret)
		return ret;
	if (sb->flags)
		return fmt_reject(why, URT_E_BADFORMAT, "unknown superblock flags are set");
	if (sb->store_id == 0)
		return fmt_reject(why, URT_E_BADFORMAT, "store id is zero");
	if (sb->shard_count == 0 || sb->shard_id >= sb->shard_count)
		return fmt_reject(why, URT_E_BADFORMAT, "shard id is not below the shard count");
	if (sb->checkpoint_lsn % sb->block_size)
		return fmt_reject(why, URT_E_BADFORMAT, "checkpoint LSN is not block aligned");
	if (sb->checkpoint_epoch > sb->log_epoch)
		return fmt_reject(why, URT_E_BADFORMAT, "checkpoint epoch is newer than the log epoch");
	return 0;
}

int superblock_plan(struct superblock *sb, uint64_t device_size, uint32_t page_size,
		    uint32_t block_size, uint64_t log_len, const char **why)
{
	uint64_t log_end;

	memset(sb, 0, sizeof(*sb));
	sb->version = URT_FORMAT_VERSION;
	sb->page_size = page_size;
	sb->block_size = block_size;
	sb->shard_count = 1;
	sb->device_size = device_size;
	/* 8 KiB is a multiple of every block size, so the log starts right after slot B. */
	sb->log_start = URT_SB_REGION_SIZE;
	sb->log_len = log_len;
	if (!urt_page_size_valid(page_size))
		return fmt_reject(why, URT_E_BADFORMAT, "page size is not 4096, 8192 or 16384");
	if (log_len > UINT64_MAX / 2)
		return fmt_reject(why, URT_E_BADFORMAT, "log region is too large");
	log_end = sb->log_start + log_len;
	sb->page_start = (log_end + page_size - 1) / page_size * page_size;
	if (sb->page_start < device_size)
		sb->page_count = (device_size - sb->page_start) / page_size;
	return check_layout(sb, why);
}

int superblock_encode(const struct superblock *sb, void *buf, size_t len, const char **why)
{
	uint8_t *p = buf;
	int ret;

	if (len < URT_SB_SIZE)
		return fmt_reject(why, -EINVAL, "buffer shorter than a superblock");
	ret = superblock_validate(sb, why);
	if (ret)
		return ret;

	memset(p, 0, len);
	memcpy(p + offsetof(sbd, magic), URT_SB_MAGIC, sizeof(((sbd *)0)->magic));
	URT_PUT32(p, sbd, version, sb->version);
	URT_PUT32(p, sbd, sb_size, URT_SB_SIZE);
	URT_PUT32(p, sbd, page_size, sb->page_size);
	URT_PUT32(p, sbd, block_size, sb->block_size);
	URT_PUT32(p, sbd, flags, sb->flags);
	URT_PUT64(p, sbd, generation, sb->generation);
	URT_PUT64(p, sbd, store_id, sb->store_id);
	memcpy(p + offsetof(sbd, store_uuid), sb->store_uuid, sizeof(sb->store_uuid));
	URT_PUT32(p, sbd, shard_id, sb->shard_id);
	URT_PUT32(p, sbd, shard_count, sb->shard_count);
	URT_PUT64(p, sbd, device_size, sb->device_size);
	URT_PUT64(p, sbd, log_start, sb->log_start);
	URT_PUT64(p, sbd, log_len, sb->log_len);
	URT_PUT64(p, sbd, page_start, sb->page_start);
	URT_PUT64(p, sbd, page_count, sb->page_count);
	URT_PUT64(p, sbd, checkpoint_lsn, sb->checkpoint_lsn);
	URT_PUT64(p, sbd, checkpoint_log_offset, sb->checkpoint_lsn % sb->log_len);
	URT_PUT64(p, sbd, checkpoint_epoch, sb->checkpoint_epoch);
	URT_PUT64(p, sbd, log_epoch, sb->log_epoch);
	URT_PUT64(p, sbd, created_ns, sb->created_ns);
	URT_PUT32(p, sbd, crc, sb_crc(p, URT_SB_SIZE));
	return 0;
}

int superblock_decode(const void *buf, size_t len, struct superblock *out, const char **why)
{
	const uint8_t *p = buf;
	uint32_t size, version;
	int ret;

	if (len < URT_SB_SIZE)
		return fmt_reject(why, URT_E_BADFORMAT, "buffer shorter than a superblock");
	if (memcmp(p + offsetof(sbd, magic), URT_SB_MAGIC, sizeof(((sbd *)0)->magic)) != 0)
		return fmt_reject(why, URT_E_BADFORMAT, "no urt superblock magic");
	size = URT_GET32(p, sbd, sb_size);
	if (size < URT_SB_SIZE || size > URT_SB_SLOT_SIZE)
		return fmt_reject(why, URT_E_BADFORMAT, "superblock size field is out of range");
	if (size > len)
		return fmt_reject(why, URT_E_BADFORMAT, "superblock size exceeds the buffer");
	if (sb_crc(p, size) != URT_GET32(p, sbd, crc))
		return fmt_reject(why, URT_E_CORRUPT, "superblock checksum mismatch");
	version = URT_GET32(p, sbd, version);
	if (version > URT_FORMAT_VERSION)
		return fmt_reject(why, URT_E_VERSION, "superblock format version is newer than this build");
	if (version < URT_FORMAT_VERSION_MIN)
		return fmt_reject(why, URT_E_BADFORMAT, "superblock format version is unknown");
	if (size != URT_SB_SIZE)
		return fmt_reject(why, URT_E_BADFORMAT, "superblock size does not match its version");
	if (!urt_is_zero(p + offsetof(sbd, reserved), sizeof(((sbd *)0)->reserved)))
		return fmt_reject(why, URT_E_BADFORMAT, "reserved superblock bytes are not zero");

	memset(out, 0, sizeof(*out));
	out->version = version;
	out->page_size = URT_GET32(p, sbd, page_size);
	out->block_size = URT_GET32(p, sbd, block_size);
	out->flags = URT_GET32(p, sbd, flags);
	out->generation = URT_GET64(p, sbd, generation);
	out->store_id = URT_GET64(p, sbd, store_id);
	memcpy(out->store_uuid, p + offsetof(sbd, store_uuid), sizeof(out->store_uuid));
	out->shard_id = URT_GET32(p, sbd, shard_id);
	out->shard_count = URT_GET32(p, sbd, shard_count);
	out->device_size = URT_GET64(p, sbd, device_size);
	out->log_start = URT_GET64(p, sbd, log_start);
	out->log_len = URT_GET64(p, sbd, log_len);
	out->page_start = URT_GET64(p, sbd, page_start);
	out->page_count = URT_GET64(p, sbd, page_count);
	out->checkpoint_lsn = URT_GET64(p, sbd, checkpoint_lsn);
	out->checkpoint_epoch = URT_GET64(p, sbd, checkpoint_epoch);
	out->log_epoch = URT_GET64(p, sbd, log_epoch);
	out->created_ns = URT_GET64(p, sbd, created_ns);

	ret = superblock_validate(out, why);
	if (ret)
		return ret;
	/* Validate has checked log_len >= 4 pages, so the modulo is defined. */
	if (URT_GET64(p, sbd, checkpoint_log_offset) != out->checkpoint_lsn % out->log_len)
		return fmt_reject(why, URT_E_BADFORMAT, "checkpoint log offset disagrees with the checkpoint LSN");
	if (why)
		*why = NULL;
	return 0;
}

/* True when two valid copies describe the same shard of the same store. */
static bool same_store(const struct superblock *a, const struct superblock *b)
{
	return a->store_id == b->store_id &&
	       memcmp(a->store_uuid, b->store_uuid, sizeof(a->store_uuid)) == 0 &&
	       a->shard_id == b->shard_id && a->shard_count == b->shard_count &&
	       a->page_size == b->page_size && a->block_size == b->block_size;
}

int superblock_pick(const void *a_buf, const void *b_buf, size_t len, struct superblock *out,
		    struct superblock_pick_info *info)
{
	struct superblock_pick_info local;
	struct superblock copy[2];
	const void *bufs[2] = { a_buf, b_buf };
	int slot;

	if (!info)
		info = &local;
	info->slot = -1;
	for (slot = 0; slot < 2; slot++) {
		info->why[slot] = NULL;
		info->err[slot] = superblock_decode(bufs[slot], len, &copy[slot], &info->why[slot]);
		if (info->err[slot] == 0 && (copy[slot].generation & 1) != (uint64_t)slot)
			info->err[slot] = fmt_reject(&info->why[slot], URT_E_CORRUPT,
						 "generation parity does not match the slot (misdirected write)");
	}

	if (info->err[0] == URT_E_VERSION || info->err[1] == URT_E_VERSION)
		return URT_E_VERSION;
	if (info->err[0] == 0 && info->err[1] == 0) {
		if (!same_store(&copy[0], &copy[1])) {
			info->why[0] = info->why[1] = "the two copies describe different stores";
			return URT_E_CORRUPT;
		}
		/* Parity makes equal generations impossible here. */
		info->slot = copy[1].generation > copy[0].generation;
	} else if (info->err[0] == 0) {
		info->slot = 0;
	} else if (info->err[1] == 0) {
		info->slot = 1;
	} else if (info->err[0] == URT_E_CORRUPT || info->err[1] == URT_E_CORRUPT) {
		return URT_E_CORRUPT;
	} else {
		return info->err[0];
	}
	*out = copy[info->slot];
	return 0;
}
