/*
 * Internals of the key-value store shared by kv.c (the public API, routing
 * and the work over every shard), shard.c (one shard on its core) and
 * layout.c (the store header and the device layout, kv/layout.h).
 */
#ifndef URT_KV_IMPL_H
#define URT_KV_IMPL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv/layout.h"
#include "kv/pager_ps.h"
#include "base/compiler.h"
#include "base/fifo.h"
#include "urt/fiber.h"
#include "urt/kv.h"
#include "urt/ps.h"

struct kv_btree;

/* Internal operations carried by struct urt_kv_req beside enum urt_kv_op. */
enum kv_op_internal {
	KV_OP_CLEAR = 64,	/* Drop the whole tree (write path). */
	KV_OP_EXPIRE_DEL,	/* Delete a key only if it is still expired (write path). */
};

#define KV_EXPIRE_LAZY 64	/* Keys reads found expired, waiting for expire_main. */
#define KV_EXPIRE_BATCH 64	/* Most deletes of one active expiry pass. */

/* A key noted for deletion by expiry. */
struct kv_expire_slot {
	uint16_t klen;			/* Key length. */
	uint8_t key[URT_KV_KEY_MAX];	/* Key bytes. */
};

/*
 * A read of a large value, in several read transactions: registered on
 * its shard while it runs, so that the shard marks it stale before it
 * frees the chain (chains_drain), and the read starts over.
 */
struct kv_big_read {
	uint64_t head;			/* Chain being read. */
	bool stale;			/* The chain was detached and is being freed. */
	struct kv_big_read *next;	/* Shard's list. */
};

/* A read context: a pager and a tree handle bound to one read transaction at a time. */
struct kv_reader {
	struct kv_shard *shard;		/* Owner. */
	struct kv_pps pager;		/* Read-only pager. */
	struct kv_btree *tree;		/* Tree over pager. */
	struct kv_reader *next_free;	/* Free list link. */
};

/* A committer fiber's pager and tree. */
struct kv_writer {
	struct kv_shard *shard;		/* Owner. */
	struct kv_pps pager;		/* Write pager. */
	struct kv_btree *tree;		/* Tree over pager. */
	unsigned limit;			/* Most requests in the next transaction (after TOOBIG). */
	uint8_t *scratch;		/* Old values of updates (URT_KV_UPDATE_VALUE_MAX, at first use). */
};

#define KV_WRITERS 8		/* Committers per shard: one builds while the others' batches are written. */
#define KV_GROUP_MAX 128	/* Requests a transaction takes while another committer is idle (shard.c). */
#define KV_BUILD_YIELD_EVERY 8	/* Requests a committer applies between looks for waiting completions. */
/*
 * Transactions whose page copies the buffer region holds at once.  Every
 * write transaction takes page 0 for write first, and holds it until its
 * commit installs (shard.c invariant 1), so only one transaction at a time
 * has copies: the builder's, or the one waiting to install (the next
 * builder then fails on page 0 before taking any).  One more as a margin;
 * so the region does not grow with KV_WRITERS.
 */
#define KV_TX_COPY_SETS 2
#define KV_COPIES_KEPT_MAX 4096u	/* Most write copies a shard's pool keeps (16 MiB of 4 KiB pages). */

/*
 * Write copies a shard's page store keeps after commit (urt_ps_opts
 * write_copies_kept) for a pool of cache_pages frames: an eighth of the
 * pool, at most KV_COPIES_KEPT_MAX.  urt_kv_buf_region_bytes counts them.
 */
static inline uint64_t kv_copies_kept(uint64_t cache_pages)
{
	return cache_pages / 8 < KV_COPIES_KEPT_MAX ? cache_pages / 8 : KV_COPIES_KEPT_MAX;
}

/* A FIFO of requests (base/fifo.h), linked through urt_kv_req.next; oldest first. */
STAILQ_HEAD(kv_queue, urt_kv_req);

struct kv_shard {
	struct urt_kv *kv;		/* Store. */
	unsigned id;			/* Index. */
	unsigned core;			/* Core that runs it. */
	struct urt_ps *ps;		/* Its page store. */
	uint32_t tx_pages_max;		/* Pages a write transaction may write. */
	/* Write path. */
	struct kv_queue wq;		/* Writes waiting for a transaction. */
	struct urt_waitq commit_wq;	/* Committers waiting for work or for their turn. */
	bool building;			/* A committer (or an exclusive reader) owns the build step. */
	unsigned commits_inflight;	/* Transactions inside urt_tx_commit. */
	unsigned excl_waiting;		/* Readers waiting for an exclusive read (committers hold off). */
	unsigned writers_live;		/* Committers still running. */
	unsigned committers_idle;	/* Committers waiting for work (committer_main). */
	struct urt_waitq state_wq;	/* Woken when building ends or a commit returns. */
	struct kv_writer writers[KV_WRITERS];
	/* NOSYNC acknowledgements, waiting until their transaction is installed. */
	struct kv_queue acks;		/* In transaction order. */
	struct urt_waitq ack_wq;	/* The ack fiber. */
	uint64_t committed_seq;		/* Highest tx_seq whose commit returned 0: installed. */
	/* Read path. */
	struct kv_reader *readers;	/* Array of readers_max contexts. */
	struct kv_reader *reader_free;	/* Free contexts. */
	struct urt_waitq reader_wq;	/* Callers waiting for a context. */
	struct kv_queue rq;		/* Reads forwarded from other cores. */
	struct urt_waitq rq_wq;		/* Read workers waiting for work. */
	/* Lifecycle. */
	bool stopping;			/* Close started: fibers drain their queues and exit. */
	unsigned fibers_live;		/* Committers, workers and the ack fiber still running. */
	struct urt_waitq exit_wq;	/* Close waits here for fibers_live == 0. */
	/* Expiry (expire_main in shard.c). */
	struct urt_waitq expire_wq;	/* The expiry fiber: its deletes done, or the shard closing. */
	struct kv_expire_slot lazy[KV_EXPIRE_LAZY];	/* Ring of keys reads found expired. */
	unsigned lazy_head, lazy_n;	/* Its first slot and its length. */
	struct kv_expire_slot exp_lazy[KV_EXPIRE_BATCH];	/* Lazy keys being deleted. */
	struct kv_expire_slot exp_keys[KV_EXPIRE_BATCH];	/* Expired keys a pass found. */
	struct urt_kv_req exp_reqs[KV_EXPIRE_BATCH];	/* Their deletes. */
	unsigned exp_n, exp_seen;	/* Keys noted and examined by the last pass. */
	unsigned exp_pending;		/* Deletes not done yet. */
	bool exp_wrapped;		/* The last pass reached the last key. */
	uint8_t exp_pos[URT_KV_KEY_MAX];	/* The next pass starts at this key... */
	size_t exp_pos_len;		/* ...of this length (0: the first key). */
	uint8_t exp_next[URT_KV_KEY_MAX];	/* Where the pass being collected stopped. */
	size_t exp_next_len;		/* Its length. */
	/* Large values (shard.c: big_put, chains_drain, big_read). */
	bool chains_dirty;		/* Page 0 may hold a pending or detached chain to free. */
	struct kv_big_read *big_reads;	/* Reads of large values in progress (their chains). */
	/* Counters (struct urt_kv_shard_stats). */
	uint64_t reads, read_retries, writes, write_txs, write_tx_retries, forwarded;
	uint64_t read_prefetches;	/* Leaves kv_shard_read_many asked the CPU for. */
	uint64_t expired_keys;		/* Keys deleted by expiry. */
};

/*
 * Requests submitted on one core and not yet done.  A request is counted
 * and uncounted on its origin core (submit_to, req_finish), so each count
 * has its own cache line and no request touches a line another core
 * writes: one shared counter bounced between the cores on every request.
 */
struct kv_core_count {
	_Alignas(URT_CACHELINE) atomic_long inflight;	/* Origin core: + at submit, - at finish. */
};

struct urt_kv {
	struct urt_rt *rt;		/* Runtime. */
	struct urt_kv_opts opts;	/* Options as given (path not kept). */
	unsigned ncores;		/* Cores of rt. */
	unsigned nshards;		/* Shards of the store. */
	struct urt_dev *dev;		/* Device. */
	bool own_dev;			/* Opened by urt_kv_open, closed by urt_kv_close. */
	int lock_fd;			/* Holds the flock on the path (kv_layout_claim), or -1. */
	struct kv_store_hdr hdr;	/* The store header. */
	bool fresh;			/* The file was created by this open (reads as zeros). */
	uint32_t batch_bytes;		/* Log batch size in use (options clamped to the log). */
	struct kv_shard *shards[URT_KV_SHARDS_MAX];	/* Shard s, owned by core s % ncores. */
	atomic_bool closing;		/* urt_kv_close has begun. */
	struct kv_core_count *inflight;	/* ncores entries: requests submitted on core c, not yet done. */
	/* urt_last_error is per thread: a failed open job keeps its message here for the caller. */
	atomic_bool open_msg_set;	/* open_msg holds the first failure's message. */
	char open_msg[512];		/* That message. */
};

/* The store's key hash: fixed forever (it decides where keys live on disk). */
uint64_t kv_hash64(const void *data, size_t len, uint64_t seed);

/* Pages a write transaction may write with log batches of batch_bytes. */
uint32_t kv_tx_pages(uint32_t batch_bytes, uint32_t page_size);

/* shard.c: everything runs on the shard's core, in a fiber unless noted. */
int kv_shard_open(struct urt_kv *kv, unsigned id, struct kv_shard **out);
int kv_shard_close(struct kv_shard *s);
/* Queues a write (any context on the shard's core). */
void kv_shard_write(struct kv_shard *s, struct urt_kv_req *req);
/* Queues a read for a worker fiber (any context on the shard's core). */
void kv_shard_read_async(struct kv_shard *s, struct urt_kv_req *req);
/* Serves a read in the calling fiber; returns the result (also in req->res). */
int kv_shard_read(struct kv_shard *s, struct urt_kv_req *req);
/* Most reads kv_shard_read_many runs in one transaction. */
#define KV_READ_GROUP 64u
/* Runs n (<= KV_READ_GROUP) reads of s in one read transaction; sets each req->res. */
void kv_shard_read_many(struct kv_shard *s, struct urt_kv_req *const *reqs, size_t n);
int kv_shard_count(struct kv_shard *s, uint64_t *count);
int kv_shard_checkpoint(struct kv_shard *s);
int kv_shard_stats(struct kv_shard *s, struct urt_kv_shard_stats *out);

/* One shard's part of a scan: packed entries in buf (see kv.c). */
struct kv_scan_part {
	const uint8_t *start;	/* First key to consider. */
	size_t slen;		/* Its length (0: from the first key). */
	bool exclusive;		/* Skip start itself. */
	bool keys_only;		/* Do not copy values. */
	size_t max;		/* Most entries. */
	uint8_t *buf;		/* Where entries go. */
	size_t buf_len;		/* Bytes of buf. */
	size_t count;		/* Out: entries written. */
	bool more;		/* Out: the shard has keys after the last one written. */
	size_t need;		/* Out: bytes the first entry that did not fit needs. */
	int res;		/* Out: 0 or an error. */
};
/* Header of a packed scan entry; key then value follow, then padding to 8. */
struct kv_scan_rec {
	uint32_t klen;		/* Key bytes. */
	uint32_t vlen;		/* Value bytes (full length). */
	uint32_t vcopied;	/* Value bytes stored (0 with keys_only). */
	uint32_t reserved;	/* Zero. */
};
void kv_shard_scan(struct kv_shard *s, struct kv_scan_part *part);

/* kv.c: completes req on its origin core (a fiber of the shard's core). */
void kv_req_complete(struct urt_kv_req *req);
/* kv.c: starts a validated (or internal) req on shard; 0 or -ESHUTDOWN. */
int kv_submit_shard(struct urt_kv *kv, struct urt_kv_req *req, unsigned shard);

#endif /* URT_KV_IMPL_H */
