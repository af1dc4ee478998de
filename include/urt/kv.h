/**
 * @file
 * urt kv: an ordered key-value store on the urt page store, one shard per
 * core.
 *
 * Keys are 1..URT_KV_KEY_MAX bytes compared as unsigned bytes; values are
 * 0..URT_KV_VALUE_MAX bytes.  Each shard is a B+tree in its own page-store
 * region (its own log, pool and checkpoints) and belongs to one core; a key
 * lives in shard urt_kv_shard_of(key), which core urt_kv_shard_core() runs.
 * A call made on another core is forwarded there with urt_core_post and
 * answered back the same way: no locks, no shared mutable state.
 *
 * Lifecycle:
 *
 *     struct urt_kv_opts o;
 *     urt_kv_opts_default(&o);
 *     o.path = "/var/lib/urkv/data";             // created when missing
 *     ropts.buf_region_bytes = urt_kv_buf_region_bytes(&o, ncores);
 *     urt_rt_start(&ropts, &rt);
 *     urt_kv_open(rt, &o, &kv);                  // recovers after a crash
 *     ... in a fiber on any core of rt:
 *     urt_kv_put(kv, "k", 1, "v", 1, 0);         // returns once durable
 *     urt_kv_get(kv, "k", 1, buf, sizeof(buf), &vlen);
 *     urt_kv_close(kv);
 *     urt_rt_stop(rt);
 *
 * Threading.  urt_kv_open and urt_kv_close run on a thread outside the
 * runtime or in a fiber of it.  Every other function runs in a fiber on any
 * core of the runtime passed to urt_kv_open (asserted), except
 * urt_kv_submit, which runs on any reactor thread of it (fiber or not), and
 * the pure helpers urt_kv_shards/shard_of/shard_core/buf_region_bytes
 * and urt_kv_file_id, which run anywhere.  The blocking functions suspend the calling fiber,
 * never the thread.
 *
 * Durability.  A put, del, incr or clear returns (or calls back) once the
 * page-store log batch holding it is durable on the device (group commit:
 * concurrent writes of a shard share one log write and flush).  With
 * URT_KV_NOSYNC it returns as soon as the change is installed: readers see
 * it, later writes are ordered after it, but a crash before the next
 * durable batch of that shard may lose it.  Reads see the latest installed
 * value of a key, which may be one whose writer is still waiting for its
 * batch to become durable (as in Redis with appendfsync always).  Writes of
 * one caller to one shard are applied in the order they were issued; an
 * operation on several shards (a scan, a count) is not a snapshot.
 *
 * Expiry.  A key may carry an absolute expiry time in milliseconds since
 * the Unix epoch (urt_kv_put_expire, URT_KV_OP_PUT with expire_at,
 * URT_KV_OP_UPDATE).  It is stored in the key's leaf cell, so it is as
 * durable as the value and survives restart and crash.  A key whose
 * expire_at <= now (the store's clock, struct urt_kv_opts.clock_ms) is
 * absent for every call: get, exists, scan and count skip it, NX/XX treat
 * it as missing.  Its space is reclaimed lazily (a read that meets it
 * queues its deletion) and by an active pass on each shard that examines
 * at most expire_scan_keys keys every expire_interval_ms (sooner while it
 * keeps finding expired keys), so a store full of expired keys frees them
 * with nobody reading them.
 *
 * Errors are 0 (or a documented count), -errno, or URT_E_* (urt/error.h):
 *   URT_E_NOTFOUND  no such key (get, del, put with URT_KV_XX);
 *   -EEXIST         the key exists (put with URT_KV_NX);
 *   URT_E_TOOBIG    a key or value above the limits;
 *   -EINVAL         an empty key, bad flags, or incr of a value that is not
 *                   a decimal 64-bit integer;
 *   -ERANGE         incr would overflow;
 *   URT_E_FULL      the shard's page region is full;
 *   URT_E_CORRUPT   a page does not hold what the tree expects;
 *   URT_E_STICKY    an earlier I/O failure stopped the shard (the first
 *                   failure returned the device's error);
 *   -ESHUTDOWN      the store or the runtime is closing.
 */
#ifndef URT_KV_H
#define URT_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "urt/common.h"
#include "urt/ps.h"

URT_BEGIN_DECLS

struct urt_dev;
struct urt_kv;
struct urt_rt;

/** Longest key, in bytes. */
#define URT_KV_KEY_MAX 1024u
/**
 * Longest value, in bytes (512 MiB, as Redis's strings).  A value over
 * URT_KV_UPDATE_VALUE_MAX is "large": its put writes its overflow chain in
 * several durable transactions before one last transaction links it to the
 * key (writes to the shard wait meanwhile), and a get reads it in several
 * read transactions.  A read-modify-write update whose old or new value
 * is large runs alone on its shard (writes to the shard wait) with a
 * URT_KV_VALUE_MAX scratch buffer.  Scans with values refuse large values
 * with URT_E_TOOBIG.
 */
#define URT_KV_VALUE_MAX (512u * 1024u * 1024u)
/** Scratch buffer of an ordinary update (1 MiB); a callback that needs more
 *  returns URT_E_TOOBIG and is run again with URT_KV_VALUE_MAX bytes. */
#define URT_KV_UPDATE_VALUE_MAX (1024u * 1024u)
/** Most shards a store may have. */
#define URT_KV_SHARDS_MAX 256u

/** Flags of the calls below; each call names the ones it accepts. */
enum urt_kv_flags {
	URT_KV_NX = 1u << 0,		/**< put: only if the key is absent, else -EEXIST. */
	URT_KV_XX = 1u << 1,		/**< put: only if the key exists, else URT_E_NOTFOUND. */
	URT_KV_NOSYNC = 1u << 2,	/**< put/del/incr/clear: return once installed, not durable. */
	URT_KV_KEYS_ONLY = 1u << 3,	/**< scan: return keys without values. */
	URT_KV_KEEPTTL = 1u << 4,	/**< put: keep the live key's expiry instead of expire_at. */
	URT_KV_READVAL = 1u << 5,	/**< update: read the old value for the callback. */
};

/** Clock of the store's expiry: milliseconds since the Unix epoch. */
typedef uint64_t (*urt_kv_clock_fn)(void *arg);

/** Store options; start from urt_kv_opts_default(). */
struct urt_kv_opts {
	const char *path;	/**< Data file or block device; a missing file is created. */
	struct urt_dev *dev;	/**< Or an open device (path NULL); the store never closes it. */
	bool create;		/**< Format a device that holds no store (default true). */
	uint64_t size_bytes;	/**< Size of a newly created file (default 1 GiB). */
	unsigned shards;	/**< Shards of a new store; 0 = one per core.  Fixed at format. */
	uint64_t cache_bytes;	/**< Page cache of all shards together (default 64 MiB). */
	uint32_t page_size;	/**< 4096, 8192 or 16384; 0 (default): 4096 for a new store, any on open. */
	uint64_t log_bytes;	/**< Log of each shard at format; 0 = the larger of 1/8 of its region and twice its share of cache_bytes (that part at most 1/2 of the region, what fits beside 256 pages, and 1 GiB), >= 4 batches, <= 1 GiB; else rounded down to 4 KiB blocks (at least one). */
	uint32_t batch_bytes_max;/**< Largest log batch (default 2 MiB; holds a 1 MiB value). */
	enum urt_ps_sync sync;	/**< How log batches are made durable (default URT_PS_SYNC_AUTO). */
	uint64_t group_delay_ns;/**< Extra wait of the log writer to fill a batch (default 0). */
	unsigned readers_max;	/**< Concurrent reads per shard before callers queue (default 64). */
	urt_kv_clock_fn clock_ms;/**< Expiry clock; NULL (default): CLOCK_REALTIME.  Tests set it. */
	void *clock_arg;	/**< Argument of clock_ms. */
	uint32_t expire_interval_ms;/**< Active expiry: pause between passes (default 100); 0 = no active pass. */
	uint32_t expire_scan_keys;/**< Active expiry: keys examined per pass (default 256). */
	uint64_t read_prefetch_min_bytes;/**< A batch's reads (urt_kv_submit_batch) prefetch their pages only when the shard's tree spans at least this many bytes of pages (default 16 MiB: a tree the CPU's caches hold has no misses to hide, and the prefetch pass would only add to each batch); 0 = always. */
};

/** Fills o with the defaults documented above. */
URT_API void urt_kv_opts_default(struct urt_kv_opts *o);

/**
 * Bytes of registered buffer region (struct urt_rt_opts.buf_region_bytes)
 * each core needs for the shards it runs with options o on a runtime of
 * ncores cores: page cache, log batches and transaction page copies.
 * Pure; runs anywhere.
 */
URT_API size_t urt_kv_buf_region_bytes(const struct urt_kv_opts *o, unsigned ncores);

/**
 * Opens (creating and formatting when allowed) the store described by o on
 * runtime rt: shard s is opened on core s % ncores, recovering its log.
 * Call it from a thread outside rt or from a fiber of rt; it blocks until
 * every shard is open.  Returns 0 and *out, or:
 *   -EINVAL          bad options, or a store whose page size differs from a
 *                    non-zero o->page_size;
 *   URT_E_BADFORMAT  no store on the device and o->create unset, or a
 *                    device holding something else;
 *   URT_E_CORRUPT    a shard's metadata is damaged, or shards of different
 *                    stores;
 *   -ENOMEM          the page cache does not fit the buffer region (see
 *                    urt_kv_buf_region_bytes);
 *   -EBUSY           another store holds the file (its flock);
 *   -EAGAIN          the file was replaced at its path while this open ran
 *                    (nothing was written; open again);
 *   an error of urt_dev_open or urt_ps_open.
 * urt_last_error() of the calling thread has the details.
 */
URT_API int urt_kv_open(struct urt_rt *rt, const struct urt_kv_opts *o, struct urt_kv **out);

/**
 * Closes the store: refuses new calls (-ESHUTDOWN), lets every accepted
 * write finish (durable), checkpoints each shard and closes the device when
 * the store opened it.  No call of the store may be in progress on the
 * calling fiber.  Thread outside rt or a fiber of rt; blocks.  Returns 0 or
 * the first shard's close error (the store is freed anyway).
 */
URT_API int urt_kv_close(struct urt_kv *kv);

/** Number of shards.  Runs anywhere. */
URT_API unsigned urt_kv_shards(const struct urt_kv *kv);

/** Shard that holds key (a fixed hash, stable across versions).  Runs anywhere. */
URT_API unsigned urt_kv_shard_of(const struct urt_kv *kv, const void *key, size_t klen);

/** Core that runs shard.  Runs anywhere. */
URT_API unsigned urt_kv_shard_core(const struct urt_kv *kv, unsigned shard);

/**
 * The device and inode numbers (st_dev, st_ino) of the file the store
 * opened at o->path (fstat of the descriptor that holds its lock), so a
 * caller can tell whether that path still names it: a data file renamed
 * or deleted under a running store keeps taking writes that a later open
 * of the path will not see.  Runs anywhere.  Returns 0, -ENOTSUP for a
 * store with no file of its own (o->dev, or a device name urt_dev_open
 * parses), or -errno of fstat.
 */
URT_API int urt_kv_file_id(const struct urt_kv *kv, uint64_t *dev, uint64_t *ino);

/**
 * Copies up to buf_len bytes of key's value into buf (NULL when buf_len is
 * 0) and sets *vlen to the full length, which may exceed buf_len.  Fiber on
 * a core of the runtime; blocks for page reads (and, on another core's
 * shard, for the round trip).  Returns 0, URT_E_NOTFOUND, or an error above.
 */
URT_API int urt_kv_get(struct urt_kv *kv, const void *key, size_t klen, void *buf, size_t buf_len,
		       size_t *vlen);

/**
 * get that also sets *expire_at (may be NULL) to the key's absolute expiry
 * in ms since the epoch, 0 for a key that never expires.
 */
URT_API int urt_kv_get_expire(struct urt_kv *kv, const void *key, size_t klen, void *buf,
			      size_t buf_len, size_t *vlen, uint64_t *expire_at);

/** The store's expiry clock now (ms since the epoch).  Runs anywhere. */
URT_API uint64_t urt_kv_now_ms(const struct urt_kv *kv);

/** Returns 1 if key exists, 0 if not, or a negative error.  Same rules as get. */
URT_API int urt_kv_exists(struct urt_kv *kv, const void *key, size_t klen);

/**
 * Inserts or overwrites key.  flags: URT_KV_NX or URT_KV_XX (not both),
 * URT_KV_NOSYNC.  Fiber; blocks until durable (installed with NOSYNC).
 * Returns 0, -EEXIST (NX), URT_E_NOTFOUND (XX), URT_E_TOOBIG, or an error.
 */
URT_API int urt_kv_put(struct urt_kv *kv, const void *key, size_t klen, const void *val, size_t vlen,
		       unsigned flags);

/**
 * put with an expiry: expire_at is the absolute time in ms since the epoch
 * at which the key disappears, 0 for never.  flags as put, plus
 * URT_KV_KEEPTTL (a live key keeps its expiry; expire_at must be 0).  A
 * time already past stores nothing and deletes the key (as Redis's SET
 * with a past EXAT).  Same returns as put.
 */
URT_API int urt_kv_put_expire(struct urt_kv *kv, const void *key, size_t klen, const void *val,
			      size_t vlen, uint64_t expire_at, unsigned flags);

/** Deletes key.  flags: URT_KV_NOSYNC.  Returns 0 or URT_E_NOTFOUND or an error. */
URT_API int urt_kv_del(struct urt_kv *kv, const void *key, size_t klen, unsigned flags);

/**
 * Adds delta to the value of key read as a decimal 64-bit integer (a missing
 * key counts as 0), stores the result as decimal text and sets *result
 * (may be NULL).  Atomic: it runs inside the shard's write transaction.
 * flags: URT_KV_NOSYNC.  Returns 0, -EINVAL (not an integer), -ERANGE
 * (overflow), or an error.
 */
URT_API int urt_kv_incr(struct urt_kv *kv, const void *key, size_t klen, int64_t delta, unsigned flags,
			int64_t *result);

/** Sets *count to the number of keys of all shards (each read in O(1)).  Fiber. */
URT_API int urt_kv_count(struct urt_kv *kv, uint64_t *count);

/**
 * Deletes every key of every shard: each shard drops its whole tree in one
 * transaction.  flags: URT_KV_NOSYNC.  Fiber; blocks.  Returns 0 or the
 * first shard's error.
 */
URT_API int urt_kv_clear(struct urt_kv *kv, unsigned flags);

/** Checkpoints every shard (writes dirty pages home, trims the log).  Fiber. */
URT_API int urt_kv_checkpoint(struct urt_kv *kv);

/**
 * Ordered range scan.  A cursor is the position of a scan over all shards:
 * the next call returns keys >= its key in key order.  Caller-owned, no
 * allocation; the fields are private.
 */
struct urt_kv_cursor {
	uint8_t key[URT_KV_KEY_MAX];	/**< Next key to return is >= this. */
	size_t klen;			/**< Length of key; 0 = from the first key. */
	bool exclusive;			/**< The next key is > key (key was returned already). */
	bool done;			/**< Past the last key. */
	size_t need_bytes;		/**< After -ENOSPC: buf_len that lets the scan go on. */
};

/** One entry of a scan; key and val point into the caller's buffer. */
struct urt_kv_entry {
	const void *key;	/**< Key bytes. */
	size_t klen;		/**< Key length. */
	const void *val;	/**< Value bytes (NULL with URT_KV_KEYS_ONLY). */
	size_t vlen;		/**< Value length (the full length, also with KEYS_ONLY). */
};

/** Starts a cursor at the first key >= start (slen 0: the first key). -EINVAL/URT_E_TOOBIG. */
URT_API int urt_kv_cursor_init(struct urt_kv_cursor *c, const void *start, size_t slen);

/**
 * Fills ents with up to max entries from the cursor on, in key order, their
 * bytes copied into buf, and advances the cursor past them.  Returns the
 * number of entries (0 and c->done at the end), or -ENOSPC when buf_len
 * cannot hold even one entry (c->need_bytes then says how much would; a
 * safe size is shards * (key + value + 64) for the largest entry), or an
 * error.  flags: URT_KV_KEYS_ONLY.  Fiber; blocks.  Not a snapshot: a key
 * written during a scan may or may not be returned, but a key present for
 * the whole scan is returned exactly once.
 */
URT_API int urt_kv_scan(struct urt_kv *kv, struct urt_kv_cursor *c, struct urt_kv_entry *ents,
			size_t max, void *buf, size_t buf_len, unsigned flags);

/** Counters of one shard. */
struct urt_kv_shard_stats {
	unsigned core;		/**< Core that runs the shard. */
	uint64_t keys;		/**< Keys stored in the shard (expired ones not yet deleted included). */
	uint64_t page_count;	/**< Pages of the shard's region. */
	uint64_t pages_used;	/**< Pages ever allocated (the high-water mark). */
	uint64_t pages_free;	/**< Of those, pages on the free list. */
	uint64_t reads;		/**< get, exists and scan calls served. */
	uint64_t read_retries;	/**< Reads redone because a commit changed pages under them. */
	uint64_t writes;	/**< put, del, incr and clear operations applied. */
	uint64_t write_txs;	/**< Page-store transactions that carried them. */
	uint64_t write_tx_retries;/**< Transactions rebuilt (a write lock held, a tx too big). */
	uint64_t forwarded;	/**< Operations that came from another core. */
	uint64_t volatile_keys;	/**< Keys with an expiry (expired ones not yet deleted included). */
	uint64_t expired;	/**< Keys deleted by expiry (lazy and active) since open. */
	uint64_t pager_memo_hits;/**< Page reads the pager answered from its memo of pages the transaction had pinned. */
	uint64_t pager_memo_misses;/**< Page reads the pager passed to the page store (first in the transaction, or after a write). */
	uint64_t read_prefetches;/**< Leaves prefetched for a batch's reads (urt_kv_submit_batch: a leaf's slots, then the key's cell, are asked of the CPU before the reads run). */
	struct urt_ps_stats ps;	/**< The shard's page store. */
};

/** Copies shard's counters.  Fiber; blocks for the round trip.  0 or -EINVAL. */
URT_API int urt_kv_shard_stats(struct urt_kv *kv, unsigned shard, struct urt_kv_shard_stats *out);

/**
 * Asynchronous operations, for callers that keep many in flight (the urkv
 * server submits a whole pipeline at once).
 */
enum urt_kv_op {
	URT_KV_OP_GET = 1,	/**< buf, buf_len -> res, vlen_out. */
	URT_KV_OP_EXISTS,	/**< -> res 1 or 0. */
	URT_KV_OP_PUT,		/**< val, vlen, flags NX/XX/NOSYNC -> res. */
	URT_KV_OP_DEL,		/**< flags NOSYNC -> res 0 or URT_E_NOTFOUND. */
	URT_KV_OP_INCR,		/**< delta, flags NOSYNC -> res, num. */
	URT_KV_OP_UPDATE,	/**< update, flags READVAL/NOSYNC, vlen = bound -> res. */
};

/** What an update callback does with the key (struct urt_kv_update.action). */
enum urt_kv_update_action {
	URT_KV_UPDATE_KEEP = 0,	/**< Nothing is written. */
	URT_KV_UPDATE_PUT,	/**< Store val/vlen with expire_at (0: none). */
	URT_KV_UPDATE_EXPIRE,	/**< Keep the value, set expire_at (0: persist). */
	URT_KV_UPDATE_DEL,	/**< Delete the key. */
};

/** The key as an update callback sees it, and what the callback decides. */
struct urt_kv_update {
	bool exists;		/**< In: the key is live (not absent, not expired). */
	uint64_t now;		/**< In: the store's clock (ms since the epoch). */
	uint64_t expire_at;	/**< In: the key's expiry, 0 = never.  Out: for PUT/EXPIRE. */
	uint8_t *val;		/**< In (READVAL): the old value, in a scratch buffer the
				 *   callback may edit in place.  Out (PUT): the new value,
				 *   there or in memory that outlives the call. */
	size_t vlen;		/**< In: old length (also without READVAL).  Out: new length. */
	size_t cap;		/**< Bytes of the scratch buffer (URT_KV_UPDATE_VALUE_MAX, or
				 *   URT_KV_VALUE_MAX when the old or new value is large). */
	enum urt_kv_update_action action; /**< Out (default KEEP). */
};

struct urt_kv_req;

/**
 * An atomic read-modify-write of one key (URT_KV_OP_UPDATE): runs on the
 * key's shard inside its write transaction, so no other write of the key
 * comes between the read and the write.  It must not block, and it may run
 * more than once for one request (a transaction that is redone), so it
 * must compute its outputs (into req->buf, req->num, req->vlen_out) from u
 * and req alone.  Its return value becomes req->res: 0 (or a count) or a
 * negative error, in which case nothing is written.
 */
typedef int (*urt_kv_update_fn)(struct urt_kv_req *req, struct urt_kv_update *u);
/** Completion of an asynchronous request: runs once, on the submitting core. */
typedef void (*urt_kv_done_fn)(struct urt_kv_req *req);

/** One operation; caller-owned and untouched by the caller until done runs. */
struct urt_kv_req {
	uint8_t op;		/**< enum urt_kv_op. */
	unsigned flags;		/**< enum urt_kv_flags the op accepts. */
	const void *key;	/**< Key; must stay valid until done. */
	size_t klen;		/**< Key length. */
	const void *val;	/**< PUT: value; must stay valid until done. */
	size_t vlen;		/**< PUT: value length. */
	void *buf;		/**< GET: where the value goes. */
	size_t buf_len;		/**< GET: bytes of buf. */
	int64_t delta;		/**< INCR: amount added. */
	uint64_t expire_at;	/**< PUT: absolute expiry in ms since the epoch; 0 = never. */
	urt_kv_update_fn update;/**< UPDATE: the callback. */
	uint64_t expire_out;	/**< Out, GET: the key's expiry (0 = never). */
	int res;		/**< Out: the result, as for the blocking call. */
	size_t vlen_out;	/**< Out, GET: the full value length. */
	int64_t num;		/**< Out, INCR: the new value. */
	urt_kv_done_fn done;	/**< Called once, on the submitting core; must not block. */
	void *arg;		/**< For the caller. */
	/** Private to the store. */
	STAILQ_ENTRY(urt_kv_req) next;	/**< Link in a shard's request queue (<sys/queue.h>). */
	struct urt_kv *kv;		/**< Store. */
	unsigned origin;		/**< Submitting core. */
	unsigned shard;			/**< Target shard. */
	uint64_t seq;			/**< Write transaction that carried it. */
};

/**
 * Runs req as an update (URT_KV_OP_UPDATE; op is set here), blocking.  The
 * caller fills key, klen, flags (URT_KV_READVAL, URT_KV_NOSYNC), vlen (a
 * bound on the value the callback writes: it sizes the transaction;
 * URT_KV_UPDATE_VALUE_MAX when unknown), update, and buf/buf_len for outputs;
 * done and arg are used by the call, so a callback reaches its own context
 * by embedding req in it (container_of).  Returns req->res.
 */
URT_API int urt_kv_update(struct urt_kv *kv, struct urt_kv_req *req);

/**
 * Starts req on its key's shard.  Reactor thread of the runtime (fiber or
 * not).  req->done runs exactly once, on this core: possibly before
 * urt_kv_submit returns (a local read served at once), otherwise from the
 * reactor loop or a fiber of this core.  Returns 0, or a negative error
 * (-EINVAL, URT_E_TOOBIG, -ESHUTDOWN) and done never runs.
 */
URT_API int urt_kv_submit(struct urt_kv *kv, struct urt_kv_req *req);

/**
 * Starts n requests, in order, as n calls of urt_kv_submit would, except
 * that reads of one shard of this core that follow each other, submitted
 * from a fiber, run together in one read transaction (their tree's upper
 * pages are looked up once, not once per read): what a client's pipeline
 * of GETs costs.  Each read sees at least every write completed before the
 * call, as with urt_kv_submit.  A request that cannot start gets its error
 * in req->res and no done call; returns how many of them there were.
 */
URT_API size_t urt_kv_submit_batch(struct urt_kv *kv, struct urt_kv_req *const *reqs, size_t n);

URT_END_DECLS

#endif /* URT_KV_H */
