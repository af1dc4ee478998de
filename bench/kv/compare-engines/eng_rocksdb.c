/*
 * compare-engines: RocksDB 7.8 through its C API (rocksdb/c.h).
 *
 * Durable mode: WriteOptions.sync = true with the WAL on.  RocksDB's
 * documentation (wiki "Basic Operations", Synchronous Writes) says a write
 * with sync=false may be lost in a machine crash and that sync=true makes
 * the WAL write fdatasync'ed before the write returns; concurrent writers
 * share one WAL write and sync (its write-group leader).
 *
 * Cache: an LRU block cache of cache_bytes that also holds the index and
 * filter blocks (cache_index_and_filter_blocks), so the budget is the
 * whole read cache; the 10x phase sets use_direct_reads so the OS page
 * cache holds no SST blocks.  No compression (urt and LMDB compress
 * nothing either); a 10-bit Bloom filter, the usual point-lookup setup.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "engine.h"

struct rdb {
	rocksdb_t *db;				/* Open database. */
	rocksdb_options_t *opts;		/* Its options. */
	rocksdb_block_based_table_options_t *bbo;	/* Table options. */
	rocksdb_cache_t *cache;			/* Block cache. */
	rocksdb_writeoptions_t *wo_sync;	/* sync = true: durable puts. */
	rocksdb_writeoptions_t *wo_load;	/* WAL off: the load (made durable by a flush). */
	rocksdb_readoptions_t *ro;		/* Default reads. */
};

/* Takes RocksDB's error string (freeing it) into the error text; returns -EIO. */
static int rdb_fail(char *err, const char *what)
{
	ce_set_error("%s: %s", what, err ? err : "unknown error");
	rocksdb_free(err);
	return -EIO;
}

static void rdb_free(struct rdb *r)
{
	if (r->db)
		rocksdb_close(r->db);
	if (r->wo_sync)
		rocksdb_writeoptions_destroy(r->wo_sync);
	if (r->wo_load)
		rocksdb_writeoptions_destroy(r->wo_load);
	if (r->ro)
		rocksdb_readoptions_destroy(r->ro);
	if (r->opts)
		rocksdb_options_destroy(r->opts);
	if (r->bbo)
		rocksdb_block_based_options_destroy(r->bbo);
	if (r->cache)
		rocksdb_cache_destroy(r->cache);
	free(r);
}

static int rdb_open(const struct ce_cfg *c, void **out)
{
	struct rdb *r = calloc(1, sizeof(*r));
	char path[4096], *err = NULL;

	if (!r)
		return -ENOMEM;
	snprintf(path, sizeof(path), "%s/rocksdb", c->dir);
	r->opts = rocksdb_options_create();
	r->bbo = rocksdb_block_based_options_create();
	r->cache = rocksdb_cache_create_lru(c->cache_bytes);
	rocksdb_block_based_options_set_block_cache(r->bbo, r->cache);
	rocksdb_block_based_options_set_cache_index_and_filter_blocks(r->bbo, 1);
	rocksdb_block_based_options_set_filter_policy(r->bbo, rocksdb_filterpolicy_create_bloom(10));
	rocksdb_options_set_block_based_table_factory(r->opts, r->bbo);
	rocksdb_options_set_create_if_missing(r->opts, 1);
	rocksdb_options_set_compression(r->opts, rocksdb_no_compression);
	rocksdb_options_increase_parallelism(r->opts, (int)sysconf(_SC_NPROCESSORS_ONLN));
	rocksdb_options_set_use_direct_reads(r->opts, c->direct);
	if (c->fresh) {
		rocksdb_destroy_db(r->opts, path, &err);
		rocksdb_free(err);
		err = NULL;
	}
	r->db = rocksdb_open(r->opts, path, &err);
	if (!r->db) {
		rdb_free(r);
		return rdb_fail(err, "rocksdb_open");
	}
	r->wo_sync = rocksdb_writeoptions_create();
	rocksdb_writeoptions_set_sync(r->wo_sync, 1);
	r->wo_load = rocksdb_writeoptions_create();
	rocksdb_writeoptions_disable_WAL(r->wo_load, 1);
	r->ro = rocksdb_readoptions_create();
	*out = r;
	return 0;
}

/* Flushes the memtables to SSTs and compacts, so reads find the tidy tree a loaded store has. */
static int rdb_sync(void *p)
{
	struct rdb *r = p;
	rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
	char *err = NULL;

	rocksdb_flushoptions_set_wait(fo, 1);
	rocksdb_flush(r->db, fo, &err);
	rocksdb_flushoptions_destroy(fo);
	if (err)
		return rdb_fail(err, "rocksdb_flush");
	rocksdb_compact_range(r->db, NULL, 0, NULL, 0);
	return 0;
}

static int rdb_close(void *p)
{
	rdb_free(p);
	return 0;
}

static int rdb_worker_open(void *p, void **out)
{
	*out = p;
	return 0;
}

static void rdb_worker_close(void *p)
{
	(void)p;
}

static int rdb_load(void *p, uint64_t lo, uint64_t hi, const void *val, size_t vlen)
{
	struct rdb *r = p;
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	char key[CE_KEY_BYTES], *err = NULL;

	for (uint64_t k = lo; k < hi; k++) {
		ce_key(k, key);
		rocksdb_writebatch_put(wb, key, CE_KEY_BYTES, val, vlen);
	}
	rocksdb_write(r->db, r->wo_load, wb, &err);
	rocksdb_writebatch_destroy(wb);
	return err ? rdb_fail(err, "rocksdb_write (load batch)") : 0;
}

static int rdb_put(void *p, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct rdb *r = p;
	char *err = NULL;

	rocksdb_put(r->db, r->wo_sync, key, klen, val, vlen, &err);
	return err ? rdb_fail(err, "rocksdb_put (sync)") : 0;
}

static int rdb_get(void *p, const void *key, size_t klen, void *buf, size_t buf_len, size_t *vlen)
{
	struct rdb *r = p;
	char *err = NULL;
	rocksdb_pinnableslice_t *ps = rocksdb_get_pinned(r->db, r->ro, key, klen, &err);
	const char *v;

	if (err)
		return rdb_fail(err, "rocksdb_get_pinned");
	if (!ps) {
		ce_set_error("rocksdb_get_pinned: key %.*s not found", (int)klen, (const char *)key);
		return -ENOENT;
	}
	v = rocksdb_pinnableslice_value(ps, vlen);
	memcpy(buf, v, *vlen < buf_len ? *vlen : buf_len);
	rocksdb_pinnableslice_destroy(ps);
	return 0;
}

static int rdb_scan(void *p, const void *start, size_t slen, uint64_t n, uint64_t *got)
{
	struct rdb *r = p;
	rocksdb_iterator_t *it = rocksdb_create_iterator(r->db, r->ro);
	char *err = NULL;
	size_t kl, vl;

	*got = 0;
	for (rocksdb_iter_seek(it, start, slen); *got < n && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		const char *k = rocksdb_iter_key(it, &kl), *v = rocksdb_iter_value(it, &vl);

		ce_scan_copy(k, kl, v, vl);
		(*got)++;
	}
	rocksdb_iter_get_error(it, &err);
	rocksdb_iter_destroy(it);
	return err ? rdb_fail(err, "rocksdb iterator") : 0;
}

const struct ce_engine ce_engine_rocksdb = {
	.name = "rocksdb",
	.durable_mode = "WAL on, WriteOptions.sync=true (fdatasync of the WAL before a put returns, "
			"write groups share it); block cache incl. index/filter blocks; 10x: use_direct_reads",
	.open = rdb_open,
	.sync = rdb_sync,
	.close = rdb_close,
	.worker_open = rdb_worker_open,
	.worker_close = rdb_worker_close,
	.load = rdb_load,
	.put = rdb_put,
	.get = rdb_get,
	.scan = rdb_scan,
};
