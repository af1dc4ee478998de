/*
 * The key-value store's device layout (src/kv/layout.c) on its own: the
 * plan of the shard regions (sizes, clamps, the smallest device), the
 * store header (round trip, its on-disk magic, every way decoding refuses
 * one) and the creation of a data file.  These need no runtime;
 * kv_layout_load, which reads and writes a urt device, runs in every store
 * open of test_kv.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kv/kv_impl.h"
#include "kv/layout.h"
#include "urt/dev.h"
#include "urt/error.h"
#include "urt/kv.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

static struct kv_store_hdr planned(const struct urt_kv_opts *o, uint64_t dev_bytes, unsigned shards)
{
	struct kv_store_hdr h = { 0 };
	int ret = kv_layout_plan(o, dev_bytes, shards, &h);

	cr_assert_eq(ret, 0, "plan %llu bytes, %u shards: %d %s", (unsigned long long)dev_bytes,
		     shards, ret, urt_last_error());
	return h;
}

/* The header check of the format: kv_hash64 of the bytes before `check`, seeded with the magic. */
static void reseal(struct kv_store_hdr *h)
{
	h->check = kv_hash64(h, offsetof(struct kv_store_hdr, check), KV_HDR_MAGIC);
}

Test(layout, plan_places_aligned_regions_that_fit)
{
	struct urt_kv_opts o;
	struct kv_store_hdr h;

	urt_kv_opts_default(&o);
	o.cache_bytes = 16 * MiB;	/* Small: the eighth of the region decides. */
	h = planned(&o, GiB, 2);
	cr_expect_eq(h.shard_count, 2);
	cr_expect_eq(h.page_size, 4096, "default page size");
	cr_expect_eq(h.region_offset, KV_REGION_ALIGN);
	cr_expect_eq(h.region_bytes, 511 * MiB, "(1 GiB - 1 MiB) / 2, down to whole MiB");
	cr_expect_eq(h.log_bytes, 511 * MiB / 8 / 4096 * 4096, "an eighth of the region, whole blocks");
	cr_expect_leq(h.region_offset + h.shard_count * h.region_bytes, GiB);

	/* An odd device size: regions round down, never past the end. */
	h = planned(&o, GiB + 12345, 3);
	cr_expect_eq(h.region_bytes % KV_REGION_ALIGN, 0);
	cr_expect_leq(h.region_offset + 3 * h.region_bytes, GiB + 12345);
	cr_expect_gt(h.region_offset + 3 * (h.region_bytes + MiB), GiB + 12345,
		     "the largest whole-MiB regions");

	o.page_size = 16384;
	cr_expect_eq(planned(&o, GiB, 1).page_size, 16384);
}

Test(layout, plan_clamps_the_automatic_log)
{
	struct urt_kv_opts o;

	urt_kv_opts_default(&o);
	o.cache_bytes = 0;	/* The eighth of the region alone (the cache rule below). */
	/* Small regions: at least four batches of log. */
	cr_expect_eq(planned(&o, 64 * MiB, 2).log_bytes, 4ull * o.batch_bytes_max);
	/* Large regions: at most 1 GiB of log. */
	cr_expect_eq(planned(&o, 64 * GiB, 1).log_bytes, GiB);
	/* A large cache asks for twice each shard's share... */
	o.cache_bytes = 180 * MiB;
	cr_expect_eq(planned(&o, GiB, 2).log_bytes, 180 * MiB, "2 x 90 MiB, more than 511 MiB / 8");
	/* ...up to half the region... */
	cr_expect_eq(planned(&o, 512 * MiB, 2).log_bytes, 255 * MiB / 2 / 4096 * 4096,
		     "half of a 255 MiB region");
	/* ...and up to 1 GiB, where the eighth of the region still wins if larger (up to 1 GiB too). */
	o.cache_bytes = 8 * GiB;
	cr_expect_eq(planned(&o, GiB, 1).log_bytes, 1023 * MiB / 2 / 4096 * 4096, "half of a 1023 MiB region");
	cr_expect_eq(planned(&o, 4 * GiB, 1).log_bytes, GiB, "the cache rule's 1 GiB");
	o.cache_bytes = 1 * GiB;
	cr_expect_eq(planned(&o, 4 * GiB, 1).log_bytes, GiB, "2 x 1 GiB of cache, capped");
	o.cache_bytes = 256 * MiB;
	cr_expect_eq(planned(&o, 4 * GiB, 1).log_bytes, 512 * MiB, "2 x 256 MiB, more than 4095 MiB / 8");
	o.cache_bytes = 8 * GiB;
	cr_expect_eq(planned(&o, 64 * GiB, 1).log_bytes, GiB);
	o.cache_bytes = 0;
	cr_expect_eq(planned(&o, GiB, 1).log_bytes, 1023 * MiB / 8 / 4096 * 4096, "no cache: the eighth");
	/* An explicit log is kept, rounded down to whole 4 KiB blocks. */
	o.log_bytes = 5 * MiB + 100;
	cr_expect_eq(planned(&o, GiB, 1).log_bytes, 5 * MiB);
}

Test(layout, plan_refuses_devices_too_small)
{
	struct urt_kv_opts o;
	struct kv_store_hdr h = { 0 };

	urt_kv_opts_default(&o);
	o.batch_bytes_max = 256u << 10;	/* Smallest log: 1 MiB. */
	o.cache_bytes = 0;		/* No cache rule: the smallest log decides. */
	cr_expect_eq(kv_layout_plan(&o, MiB, 1, &h), -EINVAL, "no room after the header");
	cr_expect(strstr(urt_last_error(), "too few"), "message: %s", urt_last_error());
	/* A 2 MiB region cannot hold 8 KiB of superblocks, a 1 MiB log and 256 pages... */
	cr_expect_eq(kv_layout_plan(&o, 3 * MiB, 1, &h), -EINVAL);
	cr_expect_eq(h.shard_count, 0, "nothing planned on failure");
	/* ...a 3 MiB one can. */
	h = planned(&o, 4 * MiB, 1);
	cr_expect_eq(h.region_bytes, 3 * MiB);
	cr_expect_eq(h.log_bytes, MiB);
	/* The same device split into more shards than it has room for. */
	cr_expect_eq(kv_layout_plan(&o, 4 * MiB, 2, &h), -EINVAL);
}

/*
 * The cache rule's log never takes the room the smallest page region
 * needs: a device that fits with the smallest log still fits with a cache
 * larger than it (16 KiB pages: 256 of them are 4 MiB of a 6 MiB region).
 */
Test(layout, plan_cache_rule_leaves_room_for_the_pages)
{
	struct urt_kv_opts o;
	struct kv_store_hdr h;

	urt_kv_opts_default(&o);
	o.batch_bytes_max = 256u << 10;	/* Smallest log: 1 MiB. */
	o.page_size = 16384;
	o.cache_bytes = 0;
	h = planned(&o, 7 * MiB, 1);
	cr_expect_eq(h.log_bytes, MiB, "no cache: the smallest log");
	o.cache_bytes = 64 * MiB;	/* Twice it is far more than the region. */
	h = planned(&o, 7 * MiB, 1);
	cr_expect_geq(h.log_bytes, MiB);
	cr_expect_leq(h.log_bytes + 8192 + 256ull * 16384, h.region_bytes, "log %llu in a %llu-byte region",
		      (unsigned long long)h.log_bytes, (unsigned long long)h.region_bytes);
}

/* Sizes near the top of uint64_t neither wrap the cache rule nor slip past the fit check. */
Test(layout, plan_extreme_sizes)
{
	struct urt_kv_opts o;
	struct kv_store_hdr h = { 0 };

	urt_kv_opts_default(&o);
	/* A cache whose double wraps to 0 still asks for the largest log of the rule. */
	o.cache_bytes = 1ull << 63;
	cr_expect_eq(planned(&o, 4 * GiB, 1).log_bytes, GiB);
	o.cache_bytes = UINT64_MAX;
	cr_expect_eq(planned(&o, 4 * GiB, 1).log_bytes, GiB);
	/* 256 shards of 255 MiB: each shard's share, ~2^56, is capped at half its region. */
	cr_expect_eq(planned(&o, 64 * GiB, 256).log_bytes, 255 * MiB / 2 / 4096 * 4096);
	/* An explicit log larger than the region, however large, is refused. */
	o.cache_bytes = 64 * MiB;
	o.log_bytes = UINT64_MAX;
	cr_expect_eq(kv_layout_plan(&o, GiB, 1, &h), -EINVAL, "log_bytes UINT64_MAX planned: log %llu",
		     (unsigned long long)h.log_bytes);
	cr_expect(strstr(urt_last_error(), "too few"), "message: %s", urt_last_error());
	o.log_bytes = UINT64_MAX - 2 * MiB;
	cr_expect_eq(kv_layout_plan(&o, GiB, 1, &h), -EINVAL);
	/* An explicit log of less than one 4 KiB block (it would round to none) is refused. */
	h = (struct kv_store_hdr){ 0 };
	o.log_bytes = 100;
	cr_expect_eq(kv_layout_plan(&o, GiB, 1, &h), -EINVAL, "a 100-byte log planned as %llu bytes",
		     (unsigned long long)h.log_bytes);
	cr_expect(strstr(urt_last_error(), "log_bytes"), "message: %s", urt_last_error());
	cr_expect_eq(h.shard_count, 0, "nothing planned on failure");
}

Test(layout, header_round_trip_and_magic)
{
	struct urt_kv_opts o;
	struct kv_store_hdr h, got;
	uint8_t buf[KV_HDR_BYTES];

	urt_kv_opts_default(&o);
	o.cache_bytes = 16 * MiB;	/* Small: the eighth of the region decides. */
	h = planned(&o, GiB, 2);
	h.store_id = 0x1122334455667788ull;
	h.created_ns = 42;
	memset(buf, 0xa5, sizeof(buf));
	kv_layout_hdr_encode(&h, buf);
	cr_expect_eq(memcmp(buf, "uurvkrv1", 8), 0, "the on-disk magic");
	for (size_t i = sizeof(h); i < sizeof(buf); i++)
		cr_assert_eq(buf[i], 0, "byte %zu after the header is not zero", i);
	memset(&got, 0, sizeof(got));
	cr_assert_eq(kv_layout_hdr_decode(buf, GiB, 0, &got), 0, "%s", urt_last_error());
	cr_expect_eq(memcmp(&got, &h, sizeof(h)), 0);
	cr_expect_eq(got.version, KV_HDR_VERSION);
	/* The page size asked for must be the store's, or 0 for any. */
	cr_expect_eq(kv_layout_hdr_decode(buf, GiB, 4096, &got), 0);
	cr_expect_eq(kv_layout_hdr_decode(buf, GiB, 8192, &got), -EINVAL);
}

Test(layout, decode_tells_blank_from_foreign)
{
	uint8_t buf[KV_HDR_BYTES] = { 0 };
	struct kv_store_hdr h = { 0 }, got = { 0 };

	cr_expect_eq(kv_layout_hdr_decode(buf, GiB, 0, &got), KV_HDR_BLANK);
	/* One stray byte anywhere in the first 4 KiB: not blank, not ours. */
	buf[KV_HDR_BYTES - 1] = 1;
	cr_expect_eq(kv_layout_hdr_decode(buf, GiB, 0, &got), URT_E_BADFORMAT);

	/* A sealed header with one bit flipped: the check catches it. */
	h.shard_count = 1;
	h.region_offset = KV_REGION_ALIGN;
	h.region_bytes = 8 * MiB;
	h.page_size = 4096;
	kv_layout_hdr_encode(&h, buf);
	buf[offsetof(struct kv_store_hdr, store_id)] ^= 1;
	cr_expect_eq(kv_layout_hdr_decode(buf, GiB, 0, &got), URT_E_BADFORMAT);
	cr_expect(strstr(urt_last_error(), "not a urt kv store"), "message: %s", urt_last_error());
	cr_expect_eq(got.shard_count, 0, "nothing decoded on failure");
}

Test(layout, decode_refuses_other_versions_and_regions_off_the_device)
{
	struct kv_store_hdr h = { 0 }, bad, got = { 0 };
	uint8_t buf[KV_HDR_BYTES];

	h.shard_count = 2;
	h.region_offset = KV_REGION_ALIGN;
	h.region_bytes = 8 * MiB;
	h.page_size = 4096;
	kv_layout_hdr_encode(&h, buf);
	cr_assert_eq(kv_layout_hdr_decode(buf, 17 * MiB, 0, &got), 0, "exactly fits");
	/* One byte short of the last region. */
	cr_expect_eq(kv_layout_hdr_decode(buf, 17 * MiB - 1, 0, &got), URT_E_CORRUPT);

	bad = h;
	bad.version = KV_HDR_VERSION + 1;
	reseal(&bad);
	memcpy(buf, &bad, sizeof(bad));
	cr_expect_eq(kv_layout_hdr_decode(buf, GiB, 0, &got), URT_E_VERSION);

	/* A store of the previous version (older B+tree nodes) is refused, naming both versions. */
	{
		char want[96];

		bad = h;
		bad.version = KV_HDR_VERSION - 1;
		reseal(&bad);
		memcpy(buf, &bad, sizeof(bad));
		cr_expect_eq(kv_layout_hdr_decode(buf, GiB, 0, &got), URT_E_VERSION);
		snprintf(want, sizeof(want), "format version %u, this build reads version %u",
			 KV_HDR_VERSION - 1, KV_HDR_VERSION);
		cr_expect(strstr(urt_last_error(), want), "message: %s", urt_last_error());
	}

	bad = h;
	bad.shard_count = 0;
	reseal(&bad);
	memcpy(buf, &bad, sizeof(bad));
	cr_expect_eq(kv_layout_hdr_decode(buf, GiB, 0, &got), URT_E_CORRUPT);

	bad = h;
	bad.shard_count = URT_KV_SHARDS_MAX + 1;
	bad.region_bytes = MiB;
	reseal(&bad);
	memcpy(buf, &bad, sizeof(bad));
	cr_expect_eq(kv_layout_hdr_decode(buf, GiB, 0, &got), URT_E_CORRUPT);
}

static void tmp_path(char *path, size_t len, const char *what)
{
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

	snprintf(path, len, "%s/urt-layout-%s-%d", tmp, what, getpid());
	unlink(path);
}

Test(layout, file_create_sizes_the_file_and_leaves_the_header_blank)
{
	struct urt_kv_opts o;
	struct kv_store_hdr got;
	uint8_t buf[KV_HDR_BYTES];
	char path[256];
	struct stat st;
	int fd = -1, lock = -1;

	urt_kv_opts_default(&o);
	o.size_bytes = 32 * MiB;
	tmp_path(path, sizeof(path), "create");
	cr_assert_eq(kv_layout_file_create(&o, path, 2, &lock), 0, "%s", urt_last_error());
	/* Locked from its creation: a second store is refused at once. */
	cr_expect_eq(kv_layout_claim(path, false, &fd), -EBUSY, "the new file was not locked");
	close(lock);
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq((uint64_t)st.st_size, o.size_bytes);
	fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, buf, KV_HDR_BYTES, 0), KV_HDR_BYTES);
	cr_expect_eq(kv_layout_hdr_decode(buf, o.size_bytes, 0, &got), KV_HDR_BLANK);
	close(fd);

	/* Never over an existing file, which stays as it was. */
	cr_expect_eq(kv_layout_file_create(&o, path, 2, &lock), -EEXIST);
	cr_assert_eq(stat(path, &st), 0, "the existing file was removed");
	cr_expect_eq((uint64_t)st.st_size, o.size_bytes);
	unlink(path);
}

Test(layout, file_create_too_small_leaves_no_file)
{
	struct urt_kv_opts o;
	char path[256];
	int lock = -1;

	urt_kv_opts_default(&o);
	o.size_bytes = 4 * MiB;	/* A 3 MiB region, too small for an 8 MiB log. */
	tmp_path(path, sizeof(path), "small");
	cr_expect_eq(kv_layout_file_create(&o, path, 1, &lock), -EINVAL);
	cr_expect_neq(access(path, F_OK), 0, "a file was left behind");
	unlink(path);
}

Test(layout, plan_refuses_a_log_below_the_smallest)
{
	struct urt_kv_opts o;
	struct kv_store_hdr h = { 0 };
	char path[256];
	int lock = -1;

	urt_kv_opts_default(&o);
	o.size_bytes = 64 * MiB;
	/* 4 KiB used to pass the plan, and the page store then refused the written store. */
	o.log_bytes = 4096;
	cr_expect_eq(kv_layout_plan(&o, o.size_bytes, 1, &h), -EINVAL);
	cr_expect(strstr(urt_last_error(), "256 KiB") != NULL, "message: %s", urt_last_error());
	tmp_path(path, sizeof(path), "tinylog");
	cr_expect_eq(kv_layout_file_create(&o, path, 1, &lock), -EINVAL);
	cr_expect_neq(access(path, F_OK), 0, "a file was left behind");
	o.log_bytes = 256u << 10;
	cr_expect_eq(kv_layout_plan(&o, o.size_bytes, 1, &h), 0, "%s", urt_last_error());
	cr_expect_eq(h.log_bytes, 256u << 10);
	unlink(path);
}

/* Writes len bytes of value v at off of path (creating it). */
static void put_bytes(const char *path, uint64_t off, size_t len, int v)
{
	char buf[4096];
	int fd = open(path, O_RDWR | O_CREAT, 0644);

	cr_assert_geq(fd, 0);
	memset(buf, v, sizeof(buf));
	for (size_t done = 0; done < len; done += sizeof(buf))
		cr_assert_eq(pwrite(fd, buf, sizeof(buf), (off_t)(off + done)), (ssize_t)sizeof(buf));
	close(fd);
}

Test(layout, claim_locks_the_file_against_a_second_store)
{
	char path[256];
	int a = -1, b = -1;

	tmp_path(path, sizeof(path), "claim");
	put_bytes(path, 0, 4096, 0);
	cr_assert_eq(kv_layout_claim(path, true, &a), 0, "%s", urt_last_error());
	/* A second open file description, as another process or a second urt_kv_open would have. */
	cr_expect_eq(kv_layout_claim(path, true, &b), -EBUSY);
	cr_expect(strstr(urt_last_error(), "in use by another store") != NULL, "message: %s",
		  urt_last_error());
	close(a);
	cr_expect_eq(kv_layout_claim(path, true, &b), 0, "released: %s", urt_last_error());
	close(b);
	cr_expect_eq(kv_layout_claim("/nonexistent-dir/x", true, &b), -ENOENT);
	unlink(path);
}

Test(layout, claim_refuses_to_format_over_data_behind_a_blank_header)
{
	uint8_t buf[4096];
	char path[256];
	int fd = -1;

	tmp_path(path, sizeof(path), "foreign");
	unlink(path);
	/* Zero first block, someone's data at 512 KiB (an image's, a file system's): never formatted. */
	put_bytes(path, 0, 4096, 0);
	put_bytes(path, 512 << 10, 4096, 0x5a);
	put_bytes(path, 5 * MiB, 4096, 0x5a);
	cr_expect_eq(kv_layout_claim(path, true, &fd), URT_E_BADFORMAT);
	cr_expect(strstr(urt_last_error(), "holds data at offset 524288") != NULL, "message: %s",
		  urt_last_error());
	/* The same file may be opened when nothing would be formatted: create not set. */
	cr_expect_eq(kv_layout_claim(path, false, &fd), 0, "%s", urt_last_error());
	close(fd);
	/* The data is still there. */
	fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, buf, sizeof(buf), 512 << 10), (ssize_t)sizeof(buf));
	cr_expect_eq(buf[0], 0x5a);
	cr_expect_eq(buf[4095], 0x5a);
	close(fd);
	unlink(path);

	/* A file whose first MiB was zeroed (as with dd, to reuse it) may be formatted. */
	put_bytes(path, 0, MiB, 0);
	put_bytes(path, 5 * MiB, 4096, 0x5a);
	cr_expect_eq(kv_layout_claim(path, true, &fd), 0, "wiped: %s", urt_last_error());
	close(fd);
	unlink(path);

	/* So may a sparse file and one of written zeros (a creation the crash interrupted). */
	put_bytes(path, 0, 4096, 0);
	cr_assert_eq(truncate(path, 64 * MiB), 0);
	cr_expect_eq(kv_layout_claim(path, true, &fd), 0, "sparse: %s", urt_last_error());
	close(fd);
	put_bytes(path, 3 * MiB, 2 * MiB, 0);
	cr_expect_eq(kv_layout_claim(path, true, &fd), 0, "zeros: %s", urt_last_error());
	close(fd);
	/* A store header is kv_layout_load's to judge: the claim does not read past it. */
	put_bytes(path, 0, 4096, 0x11);
	put_bytes(path, 9 * MiB, 4096, 0x22);
	cr_expect_eq(kv_layout_claim(path, true, &fd), 0, "%s", urt_last_error());
	close(fd);
	unlink(path);
}

Test(layout, file_create_names_a_dangling_symlink)
{
	struct urt_kv_opts o;
	char path[256];
	int lock = -1;

	urt_kv_opts_default(&o);
	o.size_bytes = 32 * MiB;
	tmp_path(path, sizeof(path), "dangling");
	cr_assert_eq(symlink("/nonexistent-dir/store.urkv", path), 0);
	cr_expect_eq(kv_layout_file_create(&o, path, 1, &lock), -EEXIST);
	cr_expect(strstr(urt_last_error(), "symbolic link to /nonexistent-dir/store.urkv, which does "
		  "not exist") != NULL, "message: %s", urt_last_error());
	unlink(path);
}

/*
 * The lock and the device are two opens of one path.  A file moved over
 * the path between them would leave the store writing a file it holds no
 * lock on, and one never checked for someone's data: the open must fail.
 */
Test(layout, same_file_refuses_a_device_that_is_not_the_locked_file)
{
	struct urt_dev_info in = { 0 };
	char path[256], other[256];
	struct stat st;
	int lock = -1;

	tmp_path(path, sizeof(path), "same");
	tmp_path(other, sizeof(other), "moved-over");
	put_bytes(path, 0, 4096, 0);
	put_bytes(other, 0, 4096, 0);
	cr_assert_eq(kv_layout_claim(path, true, &lock), 0, "%s", urt_last_error());

	cr_assert_eq(stat(path, &st), 0);
	in.file_dev = (uint64_t)st.st_dev;
	in.file_ino = (uint64_t)st.st_ino;
	cr_expect_eq(kv_layout_same_file(path, lock, &in), 0, "%s", urt_last_error());

	/* mv other path: the path now names another file; the lock stays on the first. */
	cr_assert_eq(rename(other, path), 0);
	cr_assert_eq(stat(path, &st), 0);
	in.file_dev = (uint64_t)st.st_dev;
	in.file_ino = (uint64_t)st.st_ino;
	cr_expect_eq(kv_layout_same_file(path, lock, &in), -EAGAIN);
	cr_expect(strstr(urt_last_error(), "was replaced while the store was being opened") != NULL,
		  "message: %s", urt_last_error());
	close(lock);
	unlink(path);
}
