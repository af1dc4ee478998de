/**
 * @file
 * urt page store: fixed-size pages on any urt device, with transactions,
 * a write-ahead log with pipelined group commit, checkpoints and crash
 * recovery.  docs/engine.md explains the protocol; docs/format.md the bytes.
 *
 * Lifecycle:
 *
 *     struct urt_ps_opts o;
 *     urt_ps_opts_default(&o);
 *     o.create = true;                       // format a blank device
 *     urt_ps_open(dev, &o, &ps);             // recovers after a crash
 *     urt_tx_begin(ps, &tx);
 *     urt_page_get(tx, 7, URT_PAGE_WRITE, &p);   // p: private copy
 *     memcpy(p, "hello", 5);
 *     urt_tx_commit(tx);                     // returns once durable
 *     urt_ps_close(ps);
 *
 * Threading (thread per core): a store handle is one shard and belongs to
 * the core whose fiber opened it.  Every function below must be called from
 * a fiber on that core (asserted; urt_ps_opts_default and
 * urt_ps_shard_region excepted); work for a shard owned by another core is
 * sent there with urt_core_run (include/urt/rt.h), or urt_core_post.
 * To run one shard per core on one device, open shard i on core i over
 * region i (urt_ps_shard_region gives opts.region_offset / region_bytes):
 * the regions never overlap and each shard has its own log, page range,
 * superblocks, checkpoints and recovery.  Transactions never span shards.
 *
 * Isolation: a transaction's writes go to private copies of the pages and
 * are installed at commit (the pool keeps up to opts.write_copies_kept of
 * those copies, equal to the committed page, for the next writer), so no other transaction, checkpoint or eviction
 * ever sees uncommitted bytes.  Two transactions may not write the same
 * page at once: the second urt_page_get(WRITE) fails with -EBUSY at once
 * (no waiting, hence no deadlock); the caller aborts and retries.  Reads see
 * the latest committed version, which may change between two reads of one
 * transaction (read committed).
 *
 * Errors are 0 / negative errno / URT_E_* (urt/error.h).  After a failed log
 * write, flush, page write or superblock write the store is in a sticky error state: the
 * commits whose batch failed get the original error, every later call gets
 * URT_E_STICKY, and nothing is retried as if it had succeeded.
 */
#ifndef URT_PS_H
#define URT_PS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "urt/common.h"

URT_BEGIN_DECLS

struct urt_dev;
struct urt_ps;
struct urt_tx;

/** Most log batches in flight at once (urt_ps_opts.log_depth). */
#define URT_PS_LOG_DEPTH_MAX 8

/** How a log batch is made durable. */
enum urt_ps_sync {
	URT_PS_SYNC_AUTO = 0,	/**< FUA when the device has native FUA (or no volatile cache), else write + flush. */
	URT_PS_SYNC_FUA,	/**< One write with FUA per batch (emulated by the kernel if not native). */
	URT_PS_SYNC_FLUSH,	/**< A plain write, then a device flush. */
	URT_PS_SYNC_NONE_UNSAFE,/**< No FUA, no flush: a crash may lose acknowledged commits. Benchmarks only. */
};

/** What urt_page_get gives access for. */
enum urt_page_intent {
	URT_PAGE_READ = 0,	/**< Read the committed page. */
	URT_PAGE_WRITE = 1,	/**< Get a private copy that commit installs. */
	URT_PAGE_NEW = 2,	/**< As WRITE, for a page whose old contents are dead (just
				 *   allocated): a page not in the pool is not read from the
				 *   device, and the copy starts zeroed. */
};

/**
 * A check of a page's contents by the store's user, run once per read from
 * the device (after the page's checksum, id and store id verified), on its
 * data bytes (urt_ps_page_data_bytes of them).  Returns NULL, or a static
 * description of what is wrong: the read then fails with URT_E_CORRUPT and
 * the page number, as a checksum failure does.  Pages the store builds in
 * memory (commits, log replay) are not checked: they are the user's own
 * writes.  This lets a user check a page's structure once per read instead
 * of on every visit.
 */
typedef const char *(*urt_ps_page_check_fn)(const void *data, size_t len, void *arg);

/**
 * Where a page's unused bytes are, as its user lays the page out: given a
 * page's data bytes (urt_ps_page_data_bytes of them), returns the length of
 * one run of bytes the user never reads (the free gap of a slotted page)
 * and sets *off to its offset in data; 0 for none.  A page image in the log
 * then leaves that run out (PAGE_IMAGE_HOLE, docs/format.md) when it is at
 * least 64 bytes and all zero, and recovery writes zeros there.  The store
 * checks the zeros itself, so a wrong answer costs log bytes, never data.
 * Called on the committing fiber for every page logged as an image.
 */
typedef uint32_t (*urt_ps_page_hole_fn)(const void *data, size_t len, uint32_t *off, void *arg);

/** Page-store options; start from urt_ps_opts_default(). */
struct urt_ps_opts {
	bool create;		/**< Format when the region is blank (superblock slots all zero); never over other data. */
	bool format;		/**< Always format, destroying what is there. */
	bool format_zero_pages;	/**< On format, zero the page region (default true).  False only on a
				 * region that reads as zeros: a page left by an earlier store
				 * reads as URT_E_CORRUPT (foreign store id), never as data. */
	uint32_t page_size;	/**< 4096 (default), 8192 or 16384; on open, 0 = accept any. */
	uint64_t region_offset;	/**< Start of this shard's region on the device (block aligned). */
	uint64_t region_bytes;	/**< Bytes of the region; 0 = to the end of the device. */
	uint64_t log_bytes;	/**< Log size at format; 0 = 1/8 of the region, clamped to [256 KiB, 1 GiB]. */
	uint32_t pool_pages;	/**< Buffer pool frames (bounded memory, default 256). */
	enum urt_ps_sync sync;	/**< Durability policy of log batches (default AUTO). */
	uint64_t group_delay_ns;/**< Extra time the log writer waits to fill a batch (default 0). */
	uint32_t batch_bytes_max;/**< Largest log batch (default 1 MiB; at most log_bytes / 4). */
	uint32_t tx_pages_max;	/**< Pages one transaction may write (default 32; lowered so a tx fits a batch). */
	uint32_t checkpoint_pct;/**< Start a checkpoint when the log is this full (default 50). */
	uint32_t read_retry_max;/**< Extra attempts of a failing page read (default 2). */
	uint32_t shard_id;	/**< Recorded at format; this shard's index. */
	uint32_t shard_count;	/**< Recorded at format; shards of the store (default 1). */
	uint32_t write_copies_kept;/**< Write copies of pages the pool keeps after commit, so that the
				 * next write of the page needs no copy (default 64; 0 = none).
				 * Each takes page_size bytes of the core's buffer region. */
	urt_ps_page_check_fn page_check;/**< Optional check of every page read from the device (NULL: none). */
	void *page_check_arg;	/**< Passed to page_check. */
	urt_ps_page_hole_fn page_hole;/**< Optional: the unused run of a page, left out of its log images (NULL: none). */
	void *page_hole_arg;	/**< Passed to page_hole. */
	uint32_t log_depth;	/**< Log batches written at once (default 1; 1..URT_PS_LOG_DEPTH_MAX).
				 * Above 1, batch k+1 is written and flushed while batch k still is;
				 * commits are still acknowledged in log order.  Each takes
				 * batch_bytes_max bytes of the core's buffer region. */
};

/** Counters of one shard, from urt_ps_stats(). */
struct urt_ps_stats {
	uint64_t commits;	/**< Transactions made durable (with at least one page write). */
	uint64_t commits_readonly;/**< Commits without writes (no log record). */
	uint64_t aborts;	/**< Transactions aborted. */
	uint64_t batches;	/**< Log batches written. */
	double commits_per_batch;/**< commits / batches. */
	uint64_t log_bytes;	/**< Bytes written to the log. */
	uint64_t log_writes;	/**< Log write operations (WRAP blocks included). */
	uint64_t flushes;	/**< Device flushes issued (log and checkpoint). */
	uint64_t fua_writes;	/**< Log writes issued with FUA. */
	uint64_t hits;		/**< Page lookups found in the pool. */
	uint64_t misses;	/**< Page lookups that read the device. */
	uint64_t evictions;	/**< Frames reused for another page. */
	uint64_t evict_writes;	/**< Dirty pages written home by eviction. */
	uint64_t checkpoints;	/**< Checkpoints completed. */
	uint64_t checkpoint_pages;/**< Pages written home by checkpoints. */
	uint64_t log_waits;	/**< Commits that waited for log space. */
	uint64_t read_retries;	/**< Page reads retried after an error. */
	uint64_t recovered_batches;/**< Batches replayed by the last open. */
	uint64_t recovered_pages;/**< Page records (images and deltas) replayed by the last open. */
	uint64_t checkpoint_lsn;/**< Current checkpoint LSN. */
	uint64_t durable_lsn;	/**< Log durable up to this LSN. */
	uint64_t bad_pgno;	/**< Page of the last URT_E_CORRUPT (a checksum, page_check or urt_ps_page_corrupt) or read error; UINT64_MAX if none. */
	int sticky_error;	/**< 0, or the error that made the store sticky. */
	uint64_t log_images;	/**< Page image records written (first change of a page after a checkpoint). */
	uint64_t log_image_holes;/**< Of those, images that left out a zero hole (PAGE_IMAGE_HOLE). */
	uint64_t log_image_hole_bytes;/**< Page bytes those images left out. */
	uint64_t log_deltas;	/**< PAGE_DELTA records written (changed byte ranges of a page). */
	uint64_t recovered_deltas;/**< Of recovered_pages, the page deltas. */
	uint64_t recovered_image_holes;/**< Of recovered_pages, the images that left a zero hole out. */
	uint64_t recovery_ns;	/**< Time the last open spent replaying the log. */
	uint64_t write_copies;	/**< Pages copied for a write (no kept copy to take). */
	uint64_t write_copies_reused;/**< Writes that took the copy a previous commit kept (no copy). */
	uint64_t write_copies_sparse;/**< urt_page_write_at entries that copied only the chunks they wrote. */
	uint64_t write_copies_filled;/**< Of those, copies made whole later (a get of the page, or an image). */
	uint64_t batches_overlapped;/**< Log batches sealed while an earlier one was still in flight (log_depth > 1). */
};

/** Fills opts with the defaults documented above. */
URT_API void urt_ps_opts_default(struct urt_ps_opts *opts);

/**
 * Opens the store in the region of dev described by opts, on the calling
 * core (fiber only).  Reads both superblock copies and uses the newest
 * valid one, replays the log from its checkpoint to the last valid batch,
 * writes the recovered pages home and records a new checkpoint, so the
 * store starts clean.  Returns 0 and *out, or:
 *   URT_E_BADFORMAT  no store here (blank and neither create nor format
 *                    set, or other data and format not set), a truncated
 *                    device, or a page size other
 *                    than opts->page_size;
 *   URT_E_VERSION    a store of a newer format version;
 *   URT_E_CORRUPT    both superblock copies fail their checksums, the log
 *                    is inconsistent under good checksums, or a log batch
 *                    that had been acknowledged is damaged (format version
 *                    4: a later batch vouches for it);
 *   -EINVAL          bad options (misaligned region, bad page size);
 *   -ENOMEM          the pool does not fit the core's buffer region;
 *   an I/O error of the device.
 * urt_last_error() has the details.
 *
 * One store, one writer: the page store takes no lock on the device, which
 * the caller opened and owns.  Two stores open on one region at once, in
 * one process or two, overwrite each other's log and pages.  The caller
 * makes sure that cannot happen (urt_kv_open takes an exclusive flock(2)
 * on its path; examples/ps/ps-example.c does the same).
 */
URT_API int urt_ps_open(struct urt_dev *dev, const struct urt_ps_opts *opts, struct urt_ps **out);

/**
 * Checkpoints (unless sticky), stops the log writer and frees the store.
 * No transaction may be open.  Returns 0, or the error that prevented a
 * clean shutdown (the store is freed anyway; recovery handles the rest).
 */
URT_API int urt_ps_close(struct urt_ps *ps);

/** Number of pages (page numbers are 0 .. count-1). */
URT_API uint64_t urt_ps_page_count(const struct urt_ps *ps);

/** Usable bytes per page (page size minus the 32-byte header). */
URT_API size_t urt_ps_page_data_bytes(const struct urt_ps *ps);

/** The page_check the store was opened with (NULL if none). */
URT_API urt_ps_page_check_fn urt_ps_page_check(const struct urt_ps *ps);

/**
 * Records that the caller found page pgno (< page count) damaged by a
 * check of its own beyond page_check, such as a structure that does not
 * hold together across pages: urt_ps_stats bad_pgno names the page, as
 * for a page that failed its checksum, and urt_last_error says
 * "page store: page N is corrupt (why)".  Nothing else changes (the store
 * does not turn sticky; the caller returns URT_E_CORRUPT).  Call on the
 * store's core.
 */
URT_API void urt_ps_page_corrupt(struct urt_ps *ps, uint64_t pgno, const char *why);

/**
 * Writes every dirty page whose last change is durable home, flushes,
 * advances the checkpoint LSN in the superblock and recycles log space.
 * Returns 0 or the (sticky) error.
 */
URT_API int urt_ps_checkpoint(struct urt_ps *ps);

/** Copies the counters.  Returns 0. */
URT_API int urt_ps_stats(const struct urt_ps *ps, struct urt_ps_stats *out);

/** The sticky error (0 when healthy). */
URT_API int urt_ps_error(const struct urt_ps *ps);

/**
 * Splits a device of device_bytes into shard_count equal regions aligned to
 * 1 MiB and gives shard_id's region (for urt_ps_opts region_offset and
 * region_bytes).  Pure arithmetic; callable from any thread.
 */
URT_API void urt_ps_shard_region(uint64_t device_bytes, uint32_t shard_count, uint32_t shard_id,
				 uint64_t *offset, uint64_t *bytes);

/** Starts a transaction.  Returns 0, URT_E_STICKY, or -ENOMEM. */
URT_API int urt_tx_begin(struct urt_ps *ps, struct urt_tx **out);

/**
 * Gives access to page pgno's data (urt_ps_page_data_bytes bytes), valid
 * until the transaction ends.  READ: the committed page (or, for a page the
 * transaction writes, its copy), never written through.  WRITE: a private
 * copy that commit installs and abort discards; a second get of the same
 * page in the same transaction returns the same copy.  A page never
 * written reads as zeros.  Returns 0, or:
 *   -ERANGE        pgno >= page count;
 *   -EBUSY         another open transaction writes this page;
 *   URT_E_TOOBIG   more than tx_pages_max pages written;
 *   URT_E_FULL     every pool frame is pinned;
 *   URT_E_CORRUPT  the page fails its checksum (or names another page or
 *                  store) and the log could not repair it; urt_ps_stats
 *                  bad_pgno names it;
 *   URT_E_STICKY or a read error (after read_retry_max retries; bad_pgno
 *                  names the page).
 * The transaction stays usable after an error.
 */
URT_API int urt_page_get(struct urt_tx *tx, uint64_t pgno, enum urt_page_intent intent, void **data);

/**
 * Writes len bytes (> 0) from src at offset off of page pgno's data
 * (within urt_ps_page_data_bytes): a WRITE get of the page and a copy into
 * it, except that the store learns which bytes the transaction wrote, so
 * commit logs and installs that range without comparing the whole page
 * with its committed image.  Bytes equal to what the page holds are left
 * alone (nothing to log).  A READ get of the page then returns the
 * transaction's copy, which must not be written through (as for any READ
 * pointer); once the transaction gets the page with WRITE or NEW, commit
 * compares the whole page again, as for any written page.  Returns what
 * urt_page_get(WRITE) returns.
 */
URT_API int urt_page_write_at(struct urt_tx *tx, uint64_t pgno, uint32_t off, const void *src,
			      uint32_t len);

/**
 * The committed bytes of page pgno (its data, past the page header) when
 * the buffer pool holds them, else NULL.  No pin, no device read, no wait:
 * the pointer is good only until the calling fiber next suspends, and a
 * transaction's own uncommitted writes are not in it.  For hints that may
 * be wrong at no cost, such as choosing what to prefetch.  Call on the
 * store's core.
 */
URT_API const void *urt_page_peek(struct urt_ps *ps, uint64_t pgno);

/**
 * The first steps of prefetching page pgno, for a batch of pages: step 0
 * asks the CPU for the pool's index entry of pgno, step 1 (called a little
 * later, for every page of the batch in turn) for the pool's record of the
 * frame that entry names.  urt_page_prefetch after both then finds its
 * bookkeeping in the cache, and a batch waits for its misses together
 * instead of one page after another.  Hints only: nothing for a page out
 * of range or not in the pool; never blocks.  Call on the store's core.
 */
URT_API void urt_page_prefetch_locate(struct urt_ps *ps, uint64_t pgno, unsigned step);

/**
 * Asks the CPU to bring bytes [off, off + len) of the data of page pgno
 * (offsets past the page header, as urt_page_peek's pointer) into its
 * cache.  Does nothing for a page the pool does not hold.  Never reads the
 * device, never blocks, cannot fail.  Call on the store's core.
 */
URT_API void urt_page_prefetch(struct urt_ps *ps, uint64_t pgno, uint32_t off, uint32_t len);

/**
 * Commits: installs the changed parts of each written page and logs them
 * (as a page delta, or as a full image for the first change of a page
 * after a checkpoint; changes of one page by the commits of one log batch
 * share one record), and returns once the batch holding them is durable
 * (per opts.sync).  When the log is full the commit waits for a checkpoint
 * to recycle space (it never overwrites live log).  Frees tx in every
 * case.  Returns 0, the I/O error of the failed batch (the store is then
 * sticky; the commit may or may not be durable), or URT_E_STICKY.
 */
URT_API int urt_tx_commit(struct urt_tx *tx);

/** Discards the transaction's writes and frees tx. */
URT_API void urt_tx_abort(struct urt_tx *tx);

URT_END_DECLS

#endif /* URT_PS_H */
