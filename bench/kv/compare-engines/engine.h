/*
 * compare-engines: the interface every store under test implements.
 *
 * One table of function pointers per engine (urt, RocksDB, LMDB,
 * WiredTiger), one file each: the driver in main.c runs the same workloads
 * on each through this table and never names an engine's API.
 *
 * Lifecycle of a store, as the driver uses it:
 *
 *     open(cfg with fresh = true)      create an empty store in cfg->dir
 *     load workers: load(w, lo, hi)     keys lo..hi-1, any durability
 *     sync(db)                          everything loaded is durable and home
 *     close(db)
 *     then per round:
 *       open(cfg: cache size, direct reads or not) -> workers -> close
 *
 * Workers run on threads made by the driver, or on whatever spawn() makes
 * (urt: fibers).  Each worker calls worker_open() on its own thread or
 * fiber first and worker_close() last; ops take the worker's handle.
 * Every function returns 0 or a negative errno; before returning an error
 * it states what failed with ce_set_error() (the worker's thread or fiber
 * keeps the text until its next call).
 */
#ifndef COMPARE_ENGINES_ENGINE_H
#define COMPARE_ENGINES_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Bytes of every key: "key:%012" PRIu64, so key order is numeric order. */
#define CE_KEY_BYTES 16u

/* How a store is opened. */
struct ce_cfg {
	const char *dir;	/* Directory of this engine's files (exists). */
	bool fresh;		/* Create an empty store (files removed first). */
	uint64_t keys;		/* Keys of the data set. */
	size_t value;		/* Value bytes. */
	uint64_t cache_bytes;	/* The engine's cache; for LMDB only reported. */
	bool direct;		/* Reads bypass the OS page cache where the engine can. */
	unsigned workers_max;	/* Most workers that will run at once. */
	unsigned cores;		/* urt: reactors (CPUs 0..cores-1); 0 = one per CPU. */
};

/* Per-engine operations; see the lifecycle above. */
struct ce_engine {
	const char *name;	/* Column name in the table. */
	/* How this engine makes a write durable and bounds its cache (for the report). */
	const char *durable_mode;
	int (*open)(const struct ce_cfg *c, void **db);
	/* Makes everything written durable and written home (flush/checkpoint). */
	int (*sync)(void *db);
	int (*close)(void *db);
	/* Runs fn(arg) on a task of the engine; NULL: the driver makes threads. */
	int (*spawn)(void *db, unsigned i, void (*fn)(void *arg), void *arg);
	int (*worker_open)(void *db, void **w);
	void (*worker_close)(void *w);
	/* Inserts keys lo..hi-1 (ascending), values from val; need not be durable. */
	int (*load)(void *w, uint64_t lo, uint64_t hi, const void *val, size_t vlen);
	/* Inserts or overwrites one key; returns once it is durable. */
	int (*put)(void *w, const void *key, size_t klen, const void *val, size_t vlen);
	/* Copies the value (up to buf_len) and sets *vlen; -ENOENT when absent. */
	int (*get)(void *w, const void *key, size_t klen, void *buf, size_t buf_len, size_t *vlen);
	/* Reads up to n entries in key order from the first key >= start; sets *got. */
	int (*scan)(void *w, const void *start, size_t slen, uint64_t n, uint64_t *got);
	/*
	 * May be NULL.  Whether this worker should use key (urt-local: the key's
	 * shard runs on the worker's core); the driver draws random keys until
	 * one passes, for puts and gets.
	 */
	bool (*key_wanted)(void *w, const void *key, size_t klen);
	/* Prints engine counters worth quoting (may be NULL). */
	void (*report)(void *db, FILE *out);
};

extern const struct ce_engine ce_engine_urt;
extern const struct ce_engine ce_engine_urt_local;
extern const struct ce_engine ce_engine_rocksdb;
extern const struct ce_engine ce_engine_lmdb;
extern const struct ce_engine ce_engine_wiredtiger;

/* Records why the calling thread's (or fiber's) last call failed. */
void ce_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The text recorded last by ce_set_error on this thread. */
const char *ce_last_error(void);

/* Writes key k as CE_KEY_BYTES bytes into buf (no terminator needed). */
void ce_key(uint64_t k, char *buf);

/*
 * Copies one scanned entry out, as urt's scan does into the caller's
 * buffer, so every engine's scan pays for reading what it returns.
 */
static inline void ce_scan_copy(const void *key, size_t klen, const void *val, size_t vlen)
{
	static _Thread_local char copy[CE_KEY_BYTES + 4096];

	memcpy(copy, key, klen < CE_KEY_BYTES ? klen : CE_KEY_BYTES);
	memcpy(copy + CE_KEY_BYTES, val, vlen < 4096 ? vlen : 4096);
	__asm__ volatile("" : : "r"(copy) : "memory");	/* Keep the copy. */
}

#endif
