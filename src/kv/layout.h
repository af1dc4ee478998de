/*
 * The key-value store's device layout (layout.c): the store header at
 * offset 0, the plan that places the shard regions, and the creation of a
 * new data file.  kv.c calls it from urt_kv_open; shard.c reads the planned
 * region of its shard from the header kept in struct urt_kv.
 */
#ifndef URT_KV_LAYOUT_H
#define URT_KV_LAYOUT_H

#include <stdbool.h>
#include <stdint.h>

struct urt_dev;
struct urt_dev_info;
struct urt_kv_opts;

/* Device layout: the store header in the first 4 KiB, shard regions from 1 MiB. */
#define KV_HDR_BYTES 4096u
#define KV_REGION_ALIGN (1u << 20)
#define KV_HDR_MAGIC 0x3176726b76727575ull	/* "uurvkrv1" little-endian. */
/*
 * Format version of the whole store: the header, the shard meta pages and
 * the tree's pages.  2: B+tree slots of 8 bytes with key heads and a node
 * prefix (btree_node.h); a version-1 store is refused, naming both.
 */
#define KV_HDR_VERSION 2u

/* The store header at device offset 0, written once when the store is created. */
struct kv_store_hdr {
	uint64_t magic;		/* KV_HDR_MAGIC. */
	uint32_t version;	/* KV_HDR_VERSION. */
	uint32_t shard_count;	/* Shards of the store. */
	uint64_t region_offset;	/* Device offset of shard 0's region. */
	uint64_t region_bytes;	/* Bytes of each shard's region. */
	uint64_t store_id;	/* Random id, also in every shard's meta page. */
	uint32_t page_size;	/* Page size of the shards. */
	uint32_t reserved0;	/* Zero. */
	uint64_t created_ns;	/* CLOCK_REALTIME at creation. */
	uint64_t log_bytes;	/* Log of each shard. */
	uint8_t reserved[56];	/* Zero. */
	uint64_t check;		/* kv_hash64 of the bytes above. */
};
_Static_assert(sizeof(struct kv_store_hdr) == 128, "on-disk store header");

/*
 * Plans the shard regions on a device of dev_bytes with the options' page,
 * log and batch sizes: fills h's shard_count, region_offset, region_bytes,
 * log_bytes and page_size.  -EINVAL (and urt_last_error) when the device
 * is too small.  Pure: no I/O.
 */
int kv_layout_plan(const struct urt_kv_opts *o, uint64_t dev_bytes, unsigned shards,
		   struct kv_store_hdr *h);

/* kv_layout_hdr_decode's result for a blank first 4 KiB: no store, one may be created. */
#define KV_HDR_BLANK 1

/*
 * Decodes the first KV_HDR_BYTES of a device of dev_bytes into *out.
 * Returns 0 for a valid store header, KV_HDR_BLANK when the bytes are all
 * zero, else (with urt_last_error) URT_E_BADFORMAT for anything that is
 * not a store header, URT_E_VERSION for another format version,
 * URT_E_CORRUPT when its regions do not fit the device, and -EINVAL when
 * page_size is not 0 and differs from the store's.  Pure: no I/O.
 */
int kv_layout_hdr_decode(const void *buf, uint64_t dev_bytes, uint32_t page_size,
			 struct kv_store_hdr *out);

/* Seals h (magic, version, check) and writes it into buf, KV_HDR_BYTES zero-padded. */
void kv_layout_hdr_encode(struct kv_store_hdr *h, void *buf);

/*
 * Reads the store header of dev into *out, or, on a blank device and with
 * o->create, plans the layout for `shards` shards and writes a new header
 * (flushed).  Runs in a fiber (it reads and writes the device).
 */
int kv_layout_load(struct urt_dev *dev, const struct urt_kv_opts *o, unsigned shards,
		   struct kv_store_hdr *out);

/*
 * Claims the data file or block device at path for one store: opens it
 * and takes an exclusive flock(2) on it, kept until *lock_fd is closed
 * (urt_kv_close), so that a second store (another urkv, another program
 * on urt_kv, or a second urt_kv_open in this process) is refused with
 * -EBUSY instead of overwriting the first one's writes.  When create is set, a
 * device whose first KV_HDR_BYTES are zero is also checked before it may
 * be formatted (invariant 3): its first MiB, and a block device's last
 * MiB, must be zero (where partition tables, RAID and volume labels, file
 * systems and images keep their signatures); otherwise URT_E_BADFORMAT,
 * naming the offset.  Returns 0, or a negative code with
 * urt_last_error set and nothing held.
 */
int kv_layout_claim(const char *path, bool create, int *lock_fd);

/*
 * Creates the data file path of o->size_bytes for `shards` shards: sized,
 * each shard's superblocks and log written as zeros, fsynced; its header
 * is left blank for kv_layout_load.  On success *lock_fd is the file's
 * descriptor, holding the store's exclusive flock from the moment the
 * file exists (as kv_layout_claim's would; the caller closes it).  The
 * file is removed again on failure, if the path still names it.
 * Thread context (plain syscalls).
 */
int kv_layout_file_create(const struct urt_kv_opts *o, const char *path, unsigned shards, int *lock_fd);

/*
 * Whether the device opened from path (in: urt_dev_info) is the file
 * locked as lock_fd.  The lock and the device are two opens of one path,
 * and a file moved over the path between them would leave the store
 * writing a file it holds no lock on (and, if it was created or checked
 * through lock_fd, one it never checked).  Returns 0, or -EAGAIN naming
 * both files (nothing has been written by then).
 */
int kv_layout_same_file(const char *path, int lock_fd, const struct urt_dev_info *in);

/*
 * Tests only (NULL otherwise): called by urt_kv_open between locking the
 * path and opening the device from it, the window kv_layout_same_file
 * guards, so a test can move another file over the path there.
 */
extern void (*kv_layout_open_hook)(const char *path);

#endif /* URT_KV_LAYOUT_H */
