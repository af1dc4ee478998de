/*
 * Internal state of one page-store shard, shared by ps.c (open, close, the
 * store's state), disk.c (device I/O, superblock writes, the sticky error),
 * pool.c (buffer pool), wal.c (log writer and group commit), checkpoint.c,
 * recovery.c and tx.c.  docs/engine.md explains how the pieces fit; each .c
 * file opens with the design notes of its part, and ps.c with the states
 * of enum ps_state and the function that performs each transition.
 */
#ifndef URT_ENGINE_PS_IMPL_H
#define URT_ENGINE_PS_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/assert.h"
#include "engine/format/delta.h"
#include "engine/format/format.h"
#include "urt/dev.h"
#include "urt/fiber.h"
#include "urt/ps.h"
#include "urt/rt.h"

/* Page writes a checkpoint keeps in flight at once. */
#define CKPT_WRITES_MAX 16

/* The type stamped on every page the engine writes (format.h requires nonzero). */
#define PS_PAGE_TYPE_DATA 1

/* Lifecycle of a store; ps.c's design notes give the transitions. */
enum ps_state {
	PS_OPENING = 1,		/* urt_ps_open: options, superblock (or format), buffers. */
	PS_RECOVERING,		/* Log replay, then the open checkpoint; not handed out yet. */
	PS_OPEN,		/* Handed out, serving transactions; no checkpoint runs. */
	PS_CHECKPOINTING,	/* Open, serving transactions, and ckpt_run runs a checkpoint. */
	PS_ERROR,		/* Sticky: a fatal I/O failure; sticky holds its error. */
	PS_CLOSED,		/* urt_ps_close stopped the fibers; the store is being freed. */
};

enum frame_state {
	FRAME_FREE = 0,		/* Holds no page; on no hash chain. */
	FRAME_READING,		/* A read of pgno is in flight; others wait on wq. */
	FRAME_VALID,		/* Holds the committed image of pgno. */
	FRAME_EVICTING,		/* Being written home before reuse; others wait on wq. */
};

struct frame {
	/* Read by every lookup (pool_get): kept in the frame's first cache line. */
	uint64_t pgno;		/* Page held (valid unless FREE). */
	uint8_t *data;		/* page_size bytes from urt_buf_get (registered). */
	uint32_t pins;		/* Transactions using the frame. */
	int32_t next;		/* Next frame on the hash chain, -1 = end (hash index only). */
	uint8_t state;		/* enum frame_state. */
	bool ref;		/* CLOCK reference bit. */
	bool dirty;		/* Installed image not yet written home. */
	bool chain;		/* The log holds an image at img_lsn and every change since. */
	bool in_fill;		/* Listed in the fill batch's pages (wal.c). */
	bool fill_image;	/* The fill batch logs the page as a full image (wal.c rule D1). */
	struct urt_tx *writer;	/* Transaction holding the write lock, or NULL. */
	/* Used by commits, the log and waits. */
	uint64_t page_lsn;	/* LSN of the last log record of the page (its batch's LSN until sealed). */
	uint64_t img_lsn;	/* LSN of the full image the page's delta chain rests on (if chain). */
	struct delta_mask fill_mask;/* Chunks changed in the fill batch (if in_fill). */
	uint64_t fill_bytes;	/* Bytes the fill batch's record of the page takes (if in_fill, wal.c). */
	uint64_t fill_rec;	/* What that record is: FILL_IMAGE and its hole, or 0 for a delta (wal.c). */
	struct urt_waitq wq;	/* Fibers waiting for READING/EVICTING to end. */
	uint8_t *twin;		/* Kept write copy equal to data, or NULL (pool.c "kept copies"). */
	struct frame *twin_prev;/* Kept-copy list, oldest first (if twin). */
	struct frame *twin_next;
} __attribute__((aligned(64)));	/* Frames start on a cache line (pool_init). */
_Static_assert(offsetof(struct frame, writer) + sizeof(struct urt_tx *) <= 64,
	       "the fields a lookup reads share the frame's first cache line");


/* One log batch buffer; opts.log_depth + 1 of them rotate (fill, then in flight). */
struct batch {
	uint8_t *buf;		/* batch_bytes_max bytes, registered. */
	uint8_t *wrap_buf;	/* One block for a WRAP batch before this one. */
	struct logrec_enc enc;	/* Encoder over buf. */
	uint64_t seq;		/* Sequence number; durable once ps->durable_seq >= seq. */
	uint64_t wrap_lsn;	/* LSN of the WRAP batch when has_wrap. */
	uint32_t ncommits;	/* Transactions in the batch. */
	uint32_t npages;	/* Entries of pages. */
	struct frame **pages;	/* Frames changed by the batch's commits (nframes entries). */
	uint64_t bytes;		/* Exact bytes of header and records once encoded at the seal. */
	uint64_t last_txid;	/* Highest txid in the batch (its COMMIT record). */
	bool open;		/* The encoder has been started. */
	bool closed;		/* A checkpoint waits for the seal: no further commit joins. */
	bool has_wrap;		/* A WRAP block must be written before the data. */
	bool written;		/* Sealed and its write (and flush) ended; acknowledged in log order. */
	uint64_t end_lsn;	/* LSN just past the batch once sealed. */
	struct urt_waitq wq;	/* Committers waiting for this batch to be durable. */
};

/* One entry of a transaction's page index (tx.c): which of its lists holds pgno. */
struct tx_slot {
	uint64_t pgno;		/* Page number. */
	uint32_t gen;		/* Valid when equal to the transaction's gen. */
	int32_t idx;		/* >= 0: wr[idx]; < 0: rd[-1 - idx]. */
};

struct urt_tx {
	struct urt_ps *ps;	/* Owning store. */
	struct urt_tx *next_free;/* Free list link. */
	uint32_t nread;		/* Entries of rd. */
	uint32_t nwrite;	/* Entries of wr. */
	struct frame **rd;	/* Frames pinned for reading (tx_pages_max * 4 entries). */
	struct frame **wr;	/* Frames write-locked and pinned (tx_pages_max entries). */
	uint8_t **shadow;	/* Private copy per wr entry (page_size, registered). */
	struct delta_mask *diff;/* Chunks each wr entry changes (filled by wal_commit). */
	uint64_t *rec;		/* Per wr entry: its page's fill record bytes once installed (wal_commit). */
	uint64_t *rec_how;	/* Per wr entry: what that record is (frame fill_rec, wal.c). */
	bool *ranged;		/* Per wr entry: diff holds every chunk written (urt_page_write_at only). */
	bool *sparse;		/* Per wr entry: the shadow is valid only in diff's chunks (tx.c; implies ranged). */
	struct tx_slot *slots;	/* Page index: pgno -> wr/rd entry (slot_mask + 1 entries). */
	uint32_t slot_mask;	/* Index slots minus one (power of two, at most half full). */
	uint32_t gen;		/* Generation of the index: slots of other generations are empty. */
};

struct urt_ps {
	struct urt_dev *dev;		/* Device. */
	unsigned core;			/* Core that owns the shard. */
	struct urt_ps_opts opts;	/* Options, normalised. */
	struct superblock sb;		/* Last superblock written or read. */
	struct logrec_geom geom;	/* Log geometry from sb. */
	uint64_t base;			/* Region offset on the device. */
	uint32_t page_size;		/* Page size. */
	uint32_t block_size;		/* Log block size. */
	bool use_fua;			/* Log batches are written with FUA. */
	bool use_flush;			/* Flushes are issued (false only for NONE_UNSAFE). */
	enum ps_state state;		/* Lifecycle state (ps.c). */
	int sticky;			/* First fatal error, 0 when healthy (nonzero iff ERROR was entered). */

	/* Buffer pool (pool.c). */
	struct frame *frames;		/* pool_pages frames. */
	uint32_t nframes;		/* Frames. */
	uint32_t *index;		/* Direct index: page -> frame + 1 (0: none), page_count entries; or NULL. */
	int32_t *hash;			/* Without the direct index: bucket heads, hash_mask + 1 entries. */
	uint32_t hash_mask;		/* Buckets - 1 (power of two). */
	uint32_t clock_hand;		/* Next frame the CLOCK looks at. */
	uint8_t *ckpt_bufs[CKPT_WRITES_MAX];/* Sealed copies of pages being checkpointed. */
	struct frame *twin_head;	/* Frames with a kept write copy, least recently kept first. */
	struct frame *twin_tail;	/* The most recently kept. */
	uint32_t twins;			/* Frames with a kept copy (at most opts.write_copies_kept). */

	/* Log (wal.c). */
	struct batch batch[URT_PS_LOG_DEPTH_MAX + 1];/* Ring of opts.log_depth + 1 batch buffers. */
	uint32_t nbatch;		/* Buffers in use: opts.log_depth + 1. */
	uint32_t fill_idx;		/* Index of the fill batch in batch[]. */
	uint32_t ack_idx;		/* Index of the oldest sealed batch not yet acknowledged. */
	uint32_t inflight;		/* Sealed batches not yet acknowledged (at most opts.log_depth). */
	bool sealing;			/* A writer is sealing the fill batch (in its delay window). */
	struct batch *fill;		/* The batch commits append to (batch + fill_idx). */
	uint64_t epoch;			/* Epoch stamped on new batches. */
	uint64_t next_lsn;		/* LSN where the next batch begins (after fill if sealed). */
	uint64_t durable_lsn;		/* Every batch below this LSN is durable. */
	uint64_t seq_next;		/* Sequence of the next batch to open. */
	uint64_t durable_seq;		/* Highest durable batch sequence. */
	uint64_t ckpt_lsn;		/* Checkpoint LSN of the newest durable superblock copy. */
	uint64_t ckpt_lsn_old;		/* Checkpoint LSN of the other copy: log before it is free. */
	uint64_t txid_next;		/* Next transaction id. */
	uint64_t img_floor;		/* A page whose chain's image is below this logs a new image (rule D1). */
	uint64_t flush_started;		/* Device flushes the writer has issued (log or shared). */
	uint64_t flush_done;		/* Highest of those completed (a later one covers an earlier one's waiters). */
	uint64_t flush_wanted;		/* Highest flush number a wal_flush caller waits for. */
	struct urt_waitq flush_wq;	/* wal_flush callers wait here for flush_done. */
	bool stopping;			/* Close in progress: the writers exit when idle. */
	uint32_t writers_running;	/* Writer fibers alive (opts.log_depth of them). */
	struct urt_waitq writer_wq;	/* Idle writers wait here for work. */
	struct urt_waitq sealed_wq;	/* Committers waiting for a fresh fill batch. */
	struct urt_waitq space_wq;	/* Committers waiting for log space. */
	struct urt_waitq durable_wq;	/* Fibers waiting for durable_lsn to move. */
	struct urt_waitq writer_exit_wq;/* Close waits here for the writers to exit. */

	/* Checkpoint (checkpoint.c). */
	bool ckpt_busy;			/* A checkpoint runs (also one unwinding in ERROR). */
	bool ckpt_wanted;		/* The checkpointer fiber should run one. */
	bool ckpt_running;		/* The checkpointer fiber exists. */
	struct urt_waitq ckpt_wq;	/* Fibers waiting for a checkpoint to end. */
	struct urt_waitq ckpt_fiber_wq;	/* The checkpointer fiber sleeps here. */

	/* Transactions (tx.c). */
	struct urt_tx *tx_free;		/* Free list of transactions. */
	uint32_t tx_open;		/* Open transactions. */

	struct urt_ps_stats stats;	/* Counters. */
};

/*
 * Whether the store has been handed out by urt_ps_open and not closed yet:
 * the states in which its public calls are valid.
 */
static inline bool ps_is_serving(const struct urt_ps *ps)
{
	return ps->state == PS_OPEN || ps->state == PS_CHECKPOINTING || ps->state == PS_ERROR;
}

/*
 * ps.c invariants 3 and 4, asserted on entry to every state transition:
 * sticky is set exactly in ERROR (and in CLOSED after it), and a store in
 * CHECKPOINTING holds the checkpoint lock.
 */
static inline bool ps_state_consistent(const struct urt_ps *ps)
{
	if (ps->state == PS_CLOSED)
		return true;
	return (ps->sticky != 0) == (ps->state == PS_ERROR) &&
	       (ps->state != PS_CHECKPOINTING || ps->ckpt_busy);
}

/* disk.c */
void disk_set_sticky(struct urt_ps *ps, int err, const char *what);
int disk_read(struct urt_ps *ps, void *buf, size_t len, uint64_t off);
int disk_write(struct urt_ps *ps, const void *buf, size_t len, uint64_t off, bool fua);
int disk_flush(struct urt_ps *ps);
int disk_zero(struct urt_ps *ps, uint64_t off, uint64_t len);
uint64_t disk_page_off(const struct urt_ps *ps, uint64_t pgno);
int disk_sb_format(struct urt_ps *ps, const struct superblock *sb);
int disk_sb_write(struct urt_ps *ps, uint64_t ckpt_lsn, uint64_t ckpt_epoch, struct superblock *out);

/* pool.c */
/*
 * Stores of at most this many pages find frames through a direct index
 * (4 bytes per page, page -> frame); larger ones through a hash of page
 * numbers.  A variable so that tests can run the hash path on small stores.
 */
extern uint64_t pool_direct_pages_max;
int pool_init(struct urt_ps *ps);
void pool_exit(struct urt_ps *ps);
int pool_get(struct urt_ps *ps, uint64_t pgno, bool load, struct frame **out);
void pool_unpin(struct urt_ps *ps, struct frame *f);
uint8_t *pool_copy_take(struct urt_ps *ps, struct frame *f);
uint8_t *pool_copy_steal(struct urt_ps *ps);
void pool_copy_keep(struct urt_ps *ps, struct frame *f, uint8_t *copy);
int pool_write_home(struct urt_ps *ps, struct frame *f, uint8_t *scratch);

/* wal.c */
int wal_init(struct urt_ps *ps);
void wal_exit(struct urt_ps *ps);
int wal_start(struct urt_ps *ps);
void wal_stop(struct urt_ps *ps);
int wal_commit(struct urt_ps *ps, struct urt_tx *tx);
int wal_checkpoint_begin(struct urt_ps *ps, uint64_t *lsn);
int wal_wait_durable(struct urt_ps *ps, uint64_t lsn);
int wal_flush(struct urt_ps *ps);
uint64_t wal_used(const struct urt_ps *ps);

/* checkpoint.c */
int ckpt_run(struct urt_ps *ps);
int ckpt_start(struct urt_ps *ps);
void ckpt_stop(struct urt_ps *ps);
void ckpt_request(struct urt_ps *ps);

/* recovery.c */
int recovery_run(struct urt_ps *ps);

/* tx.c */
void tx_free_all(struct urt_ps *ps);

/* Makes wr entry i's shadow a whole copy if it is sparse (tx.c, sparse copies). */
void tx_materialize(struct urt_tx *tx, uint32_t i);

#endif /* URT_ENGINE_PS_IMPL_H */
