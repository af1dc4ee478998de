/*
 * Internals of the key-value store shared by kv.c (the public API, routing
 * and cross-core forwarding) and shard.c (one shard on its core).
 */
#ifndef URT_KV_IMPL_H
#define URT_KV_IMPL_H

#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv/pager_ps.h"
#include "urt/fiber.h"
#include "urt/kv.h"
#include "urt/ps.h"

struct kv_btree;

/* Assertion that stays on in release builds (API misuse, broken invariants). */
#define KV_CHECK(cond)                                                                  \
	do {                                                                            \
		if (__builtin_expect(!(cond), 0))                                       \
			kv_check_failed(__FILE__, __LINE__, #cond);                     \
	} while (0)
void kv_check_failed(const char *file, int line, const char *what) __attribute__((noreturn));

/* Internal operations carried by struct urt_kv_req beside enum urt_kv_op. */
enum kv_op_internal {
	KV_OP_CLEAR = 64,	/* Drop the whole tree (write path). */
};

/* Device layout: the store header in the first 4 KiB, shard regions from 1 MiB. */
#define KV_HDR_BYTES 4096u
#define KV_REGION_ALIGN (1u << 20)
#define KV_HDR_MAGIC 0x3176726b76727575ull	/* "uurvkrv1" little-endian. */
#define KV_HDR_VERSION 1u

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

/* A read context: a pager and a tree handle bound to one read transaction at a time. */
struct kv_reader {
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
};

#define KV_WRITERS 2	/* Committers per shard: one builds while the other's batch is written. */

/* A FIFO of requests. */
struct kv_queue {
	struct urt_kv_req *head;	/* Oldest. */
	struct urt_kv_req *tail;	/* Newest. */
	unsigned len;			/* Entries. */
};

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
	/* Counters (struct urt_kv_shard_stats). */
	uint64_t reads, read_retries, writes, write_txs, write_tx_retries, forwarded;
};

struct urt_kv {
	struct urt_rt *rt;		/* Runtime. */
	struct urt_kv_opts opts;	/* Options as given (path not kept). */
	unsigned ncores;		/* Cores of rt. */
	unsigned nshards;		/* Shards of the store. */
	struct urt_dev *dev;		/* Device. */
	bool own_dev;			/* Opened by urt_kv_open, closed by urt_kv_close. */
	struct kv_store_hdr hdr;	/* The store header. */
	bool fresh;			/* The file was created by this open (reads as zeros). */
	uint32_t batch_bytes;		/* Log batch size in use (options clamped to the log). */
	struct kv_shard *shards[URT_KV_SHARDS_MAX];	/* Shard s, owned by core s % ncores. */
	atomic_bool closing;		/* urt_kv_close has begun. */
	atomic_long inflight;		/* Submitted requests not yet done. */
};

/* The store's key hash: fixed forever (it decides where keys live on disk). */
uint64_t kv_hash64(const void *data, size_t len, uint64_t seed);

/* Queue helpers. */
static inline void kv_queue_push(struct kv_queue *q, struct urt_kv_req *r)
{
	r->next = NULL;
	if (q->tail)
		q->tail->next = r;
	else
		q->head = r;
	q->tail = r;
	q->len++;
}

static inline struct urt_kv_req *kv_queue_pop(struct kv_queue *q)
{
	struct urt_kv_req *r = q->head;

	if (r) {
		q->head = r->next;
		if (!q->head)
			q->tail = NULL;
		q->len--;
		r->next = NULL;
	}
	return r;
}

/* Puts the requests of q back in front of dst, keeping their order. */
static inline void kv_queue_prepend(struct kv_queue *dst, struct kv_queue *q)
{
	if (!q->head)
		return;
	q->tail->next = dst->head;
	if (!dst->tail)
		dst->tail = q->tail;
	dst->head = q->head;
	dst->len += q->len;
	q->head = q->tail = NULL;
	q->len = 0;
}

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

#endif /* URT_KV_IMPL_H */
