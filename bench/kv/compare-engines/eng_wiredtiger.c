/*
 * compare-engines: WiredTiger 3.2.1 (wiredtiger.h).
 *
 * Durable mode: log=(enabled=true) with transaction_sync=(enabled=true,
 * method=fsync).  WiredTiger 3.2's documentation (wiredtiger_open,
 * "transaction_sync": whether to sync the log on every commit; "Commit-level
 * durability") names this as the setting under which a committed
 * transaction survives a crash: without it, commits are durable only at
 * the next checkpoint or log sync.  Each put is an auto-commit cursor
 * insert, so a transaction of its own; concurrent commits share log
 * flushes (WiredTiger's log slots group them).
 *
 * Cache: cache_size = cache_bytes.  WiredTiger reads through the OS page
 * cache unless direct_io includes "data", which the 10x phase sets so the
 * cache bound holds; the log stays buffered and fsync'ed.
 */
#include <errno.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <wiredtiger.h>

#include "engine.h"

#define WT_TABLE "table:ce"

struct wdb {
	WT_CONNECTION *conn;	/* Connection. */
	WT_SESSION *admin;	/* Session for checkpoints. */
};

struct wworker {
	WT_SESSION *s;		/* The worker's session. */
	WT_CURSOR *c;		/* Cursor on the table. */
};

static int wdb_fail(int ret, const char *what)
{
	ce_set_error("%s: %s", what, wiredtiger_strerror(ret));
	return ret > 0 ? -ret : -EIO;
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

static int wdb_open(const struct ce_cfg *c, void **out)
{
	struct wdb *db = calloc(1, sizeof(*db));
	char home[4096], config[512];
	uint64_t cache = c->cache_bytes < (1u << 20) ? (1u << 20) : c->cache_bytes;
	int ret;

	if (!db)
		return -ENOMEM;
	snprintf(home, sizeof(home), "%s/wiredtiger", c->dir);
	if (c->fresh)
		nftw(home, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	if (mkdir(home, 0755) && errno != EEXIST) {
		ce_set_error("mkdir %s: %s", home, strerror(errno));
		free(db);
		return -errno;
	}
	snprintf(config, sizeof(config),
		 "create,cache_size=%llu,session_max=%u,log=(enabled=true),"
		 "transaction_sync=(enabled=true,method=fsync)%s",
		 (unsigned long long)cache, c->workers_max + 32, c->direct ? ",direct_io=[data]" : "");
	ret = wiredtiger_open(home, NULL, config, &db->conn);
	if (ret) {
		free(db);
		return wdb_fail(ret, "wiredtiger_open");
	}
	ret = db->conn->open_session(db->conn, NULL, NULL, &db->admin);
	if (ret == 0)
		ret = db->admin->create(db->admin, WT_TABLE, "key_format=u,value_format=u");
	if (ret) {
		wdb_fail(ret, "create " WT_TABLE);
		db->conn->close(db->conn, NULL);
		free(db);
		return ret > 0 ? -ret : -EIO;
	}
	*out = db;
	return 0;
}

static int wdb_sync(void *p)
{
	struct wdb *db = p;
	int ret = db->admin->checkpoint(db->admin, NULL);

	return ret ? wdb_fail(ret, "checkpoint") : 0;
}

static int wdb_close(void *p)
{
	struct wdb *db = p;
	int ret = db->conn->close(db->conn, NULL);

	free(db);
	return ret ? wdb_fail(ret, "WT_CONNECTION.close") : 0;
}

static int wdb_worker_open(void *p, void **out)
{
	struct wdb *db = p;
	struct wworker *w = calloc(1, sizeof(*w));
	int ret;

	if (!w)
		return -ENOMEM;
	ret = db->conn->open_session(db->conn, NULL, NULL, &w->s);
	if (ret == 0) {
		ret = w->s->open_cursor(w->s, WT_TABLE, NULL, NULL, &w->c);
		if (ret)
			w->s->close(w->s, NULL);
	}
	if (ret) {
		free(w);
		return wdb_fail(ret, "open session and cursor");
	}
	*out = w;
	return 0;
}

static void wdb_worker_close(void *p)
{
	struct wworker *w = p;

	w->s->close(w->s, NULL);	/* Closes the cursor too. */
	free(w);
}

static int wdb_load(void *p, uint64_t lo, uint64_t hi, const void *val, size_t vlen)
{
	struct wworker *w = p;
	char key[CE_KEY_BYTES];
	WT_ITEM k = { .data = key, .size = CE_KEY_BYTES }, v = { .data = val, .size = vlen };
	int ret = w->s->begin_transaction(w->s, NULL);

	if (ret)
		return wdb_fail(ret, "begin_transaction (load)");
	for (uint64_t i = lo; i < hi && ret == 0; i++) {
		ce_key(i, key);
		w->c->set_key(w->c, &k);
		w->c->set_value(w->c, &v);
		ret = w->c->insert(w->c);
	}
	if (ret) {
		w->s->rollback_transaction(w->s, NULL);
		return wdb_fail(ret, "insert (load)");
	}
	/* The load is made durable by the checkpoint after it. */
	ret = w->s->commit_transaction(w->s, "sync=off");
	return ret ? wdb_fail(ret, "commit_transaction (load)") : 0;
}

static int wdb_put(void *p, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct wworker *w = p;
	WT_ITEM k = { .data = key, .size = klen }, v = { .data = val, .size = vlen };
	int ret;

	w->c->set_key(w->c, &k);
	w->c->set_value(w->c, &v);
	ret = w->c->insert(w->c);	/* Auto-commit: a durable transaction per put. */
	return ret ? wdb_fail(ret, "insert") : 0;
}

static int wdb_get(void *p, const void *key, size_t klen, void *buf, size_t buf_len, size_t *vlen)
{
	struct wworker *w = p;
	WT_ITEM k = { .data = key, .size = klen }, v;
	int ret;

	w->c->set_key(w->c, &k);
	ret = w->c->search(w->c);
	if (ret == 0)
		ret = w->c->get_value(w->c, &v);
	if (ret == 0) {
		*vlen = v.size;
		memcpy(buf, v.data, v.size < buf_len ? v.size : buf_len);
	}
	w->c->reset(w->c);
	if (ret == WT_NOTFOUND) {
		ce_set_error("search: key %.*s not found", (int)klen, (const char *)key);
		return -ENOENT;
	}
	return ret ? wdb_fail(ret, "search") : 0;
}

static int wdb_scan(void *p, const void *start, size_t slen, uint64_t n, uint64_t *got)
{
	struct wworker *w = p;
	WT_ITEM k = { .data = start, .size = slen }, kk, vv;
	int exact, ret;

	*got = 0;
	w->c->set_key(w->c, &k);
	ret = w->c->search_near(w->c, &exact);
	if (ret == 0 && exact < 0)
		ret = w->c->next(w->c);	/* search_near stopped on a smaller key. */
	while (ret == 0 && *got < n) {
		ret = w->c->get_key(w->c, &kk);
		if (ret == 0)
			ret = w->c->get_value(w->c, &vv);
		if (ret)
			break;
		ce_scan_copy(kk.data, kk.size, vv.data, vv.size);
		(*got)++;
		if (*got < n)
			ret = w->c->next(w->c);
	}
	w->c->reset(w->c);
	return ret == 0 || ret == WT_NOTFOUND ? 0 : wdb_fail(ret, "cursor scan");
}

const struct ce_engine ce_engine_wiredtiger = {
	.name = "wiredtiger",
	.durable_mode = "log=(enabled=true), transaction_sync=(enabled=true,method=fsync): each auto-commit "
			"insert syncs the log before it returns; cache_size = the cache; 10x: direct_io=[data]",
	.open = wdb_open,
	.sync = wdb_sync,
	.close = wdb_close,
	.worker_open = wdb_worker_open,
	.worker_close = wdb_worker_close,
	.load = wdb_load,
	.put = wdb_put,
	.get = wdb_get,
	.scan = wdb_scan,
};
