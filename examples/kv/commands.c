/*
 * urkv's command table: argument checks, the store requests each command
 * makes, and the replies, in the words Redis uses (clients and tests
 * compare the error texts).
 *
 * Read and write commands (GET, MGET, EXISTS / SET, DEL, MSET, INCR...)
 * are split in two: prepare submits their store requests and returns at
 * once, reply writes the answer after the connection has waited for
 * them, so a pipeline of them runs concurrently.  The others run whole
 * (run), alone in their pipeline position.
 */
#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/assert.h"
#include "base/clock.h"
#include "cluster.h"
#include "cmd_ext.h"
#include "urkv.h"
#include "urt/urt.h"

#define SCAN_COUNT_DEFAULT 10
#define SCAN_COUNT_MAX 1000		/* Keys one SCAN call may look at. */

/* Helpers. */

static bool arg_is(const struct resp_arg *a, const char *name)
{
	return resp_arg_eq_nocase(a, name);
}

/* The message of a store error, in Redis's words where Redis has them. */
static const char *store_error(int err, const struct resp_arg *key, size_t vlen)
{
	switch (err) {
	case URT_E_TOOBIG:
		if (key && key->len > URT_KV_KEY_MAX)
			return "ERR key too large (urkv keys are at most 1024 bytes)";
		if (vlen > URT_KV_VALUE_MAX)
			return URKV_E_VALUE_TOO_LARGE;
		return "ERR string exceeds maximum allowed size (proto-max-bulk-len)";
	case URT_E_FULL:
		return "ERR store full (the data file has no free pages)";
	case -ESHUTDOWN:
		return "ERR server is shutting down";
	case -EINVAL:
		return "ERR value is not an integer or out of range";
	case -ERANGE:
		return "ERR increment or decrement would overflow";
	default:
		return NULL;
	}
}

static void out_store_error(struct urkv_conn *c, int err, const struct resp_arg *key, size_t vlen)
{
	const char *msg = store_error(err, key, vlen);

	urkv_store_error_log(c, err, key);
	if (msg)
		urkv_out_error(c, msg);
	else
		urkv_out_errorf(c, "ERR store error: %s", urt_strerror(err));
}

/* A key the store can never hold: answered without a request. */
static const char *key_check(const struct resp_arg *key)
{
	if (key->len == 0)
		return "ERR empty keys are not supported by urkv";
	if (key->len > URT_KV_KEY_MAX)
		return "ERR key too large (urkv keys are at most 1024 bytes)";
	return NULL;
}

static void req_key(struct urt_kv_req *req, const struct resp_arg *key)
{
	memset(req, 0, sizeof(*req));
	req->key = key->ptr;
	req->klen = key->len;
}

/* GET, MGET, EXISTS. */

static void get_prepare(struct urkv_conn *c, struct urkv_slot *s)
{
	for (unsigned i = 0; i < s->nreq; i++) {
		struct urt_kv_req *req = urkv_conn_req(c, s, i);
		const struct resp_arg *key = &s->argv[1 + i];

		req_key(req, key);
		req->op = URT_KV_OP_GET;
		urkv_conn_value_buf(c, req);
		if (key_check(key))
			req->res = URT_E_NOTFOUND;	/* Such a key cannot exist. */
		else
			urkv_conn_submit(c, req);
	}
}

static void get_reply(struct urkv_conn *c, struct urkv_slot *s)
{
	struct urt_kv_req *req = urkv_conn_req(c, s, 0);

	if (req->res != 0 && req->res != URT_E_NOTFOUND)
		out_store_error(c, req->res, &s->argv[1], 0);
	else
		urkv_out_value(c, req);
}

static void mget_reply(struct urkv_conn *c, struct urkv_slot *s)
{
	urkv_out_array(c, s->nreq);
	for (unsigned i = 0; i < s->nreq; i++) {
		struct urt_kv_req *req = urkv_conn_req(c, s, i);

		/* Redis answers nil for anything that is not a readable string; damage is logged. */
		if (req->res != 0 && req->res != URT_E_NOTFOUND) {
			urkv_store_error_log(c, req->res, &s->argv[1 + i]);
			urkv_out_null(c);
		} else {
			urkv_out_value(c, req);
		}
	}
}

static void exists_prepare(struct urkv_conn *c, struct urkv_slot *s)
{
	for (unsigned i = 0; i < s->nreq; i++) {
		struct urt_kv_req *req = urkv_conn_req(c, s, i);
		const struct resp_arg *key = &s->argv[1 + i];

		req_key(req, key);
		req->op = URT_KV_OP_EXISTS;
		if (key_check(key))
			req->res = 0;
		else
			urkv_conn_submit(c, req);
	}
}

/* Counts results equal to hit (EXISTS: 1, DEL: 0); keeps the first real error. */
static void tally(struct urkv_conn *c, struct urkv_slot *s, int hit, int miss)
{
	size_t stride = s->cmd->key_stride ? s->cmd->key_stride : 1;

	s->num = 0;
	for (unsigned i = 0; i < s->nreq; i++) {
		struct urt_kv_req *req = urkv_conn_req(c, s, i);

		if (req->res == hit) {
			s->num++;
			continue;
		}
		if (req->res == miss)
			continue;
		/* Every damaged key is logged; the reply carries the first error. */
		urkv_store_error_log(c, req->res, &s->argv[1 + i * stride]);
		if (!s->err) {
			const char *msg = store_error(req->res, &s->argv[1 + i], 0);

			if (msg) {
				s->err = msg;
			} else {
				snprintf(s->errbuf, sizeof(s->errbuf), "ERR store error: %s",
					 urt_strerror(req->res));
				s->err = s->errbuf;
			}
		}
	}
}

static void exists_tally(struct urkv_conn *c, struct urkv_slot *s)
{
	tally(c, s, 1, 0);
}

static void count_reply(struct urkv_conn *c, struct urkv_slot *s)
{
	s->cmd->tally(c, s);
	if (s->err)
		urkv_out_error(c, s->err);
	else
		urkv_out_int(c, s->num);
}

/* SET, SETNX, DEL, MSET, INCR family. */

static void set_prepare(struct urkv_conn *c, struct urkv_slot *s)
{
	struct urt_kv_req *req = urkv_conn_req(c, s, 0);
	unsigned flags = 0;
	uint64_t expire_at = 0;
	bool get;

	/* SET ... GET runs alone (urkv_set_class): get is false here. */
	s->err = urkv_set_options(c, s->argv, s->argc, &flags, &get, &expire_at);
	if (s->err)
		return;
	flags |= urkv_conn_write_flags(c);
	s->err = key_check(&s->argv[1]);
	if (s->err)
		return;
	if (s->argv[2].len > URT_KV_VALUE_MAX) {
		s->err = URKV_E_VALUE_TOO_LARGE;
		return;
	}
	req_key(req, &s->argv[1]);
	req->op = URT_KV_OP_PUT;
	req->flags = flags;
	req->expire_at = expire_at;
	req->val = s->argv[2].ptr;
	req->vlen = s->argv[2].len;
	urkv_conn_submit(c, req);
}

static void set_reply(struct urkv_conn *c, struct urkv_slot *s)
{
	struct urt_kv_req *req = urkv_conn_req(c, s, 0);

	if (s->err)
		urkv_out_error(c, s->err);
	else if (req->res == 0)
		urkv_out_simple(c, "OK");
	else if (req->res == -EEXIST || req->res == URT_E_NOTFOUND)
		urkv_out_null(c);	/* NX or XX not met. */
	else
		out_store_error(c, req->res, &s->argv[1], s->argv[2].len);
}

static void setnx_prepare(struct urkv_conn *c, struct urkv_slot *s)
{
	struct urt_kv_req *req = urkv_conn_req(c, s, 0);

	s->err = key_check(&s->argv[1]);
	if (!s->err && s->argv[2].len > URT_KV_VALUE_MAX)
		s->err = URKV_E_VALUE_TOO_LARGE;
	if (s->err)
		return;
	req_key(req, &s->argv[1]);
	req->op = URT_KV_OP_PUT;
	req->flags = urkv_conn_write_flags(c) | URT_KV_NX;
	req->val = s->argv[2].ptr;
	req->vlen = s->argv[2].len;
	urkv_conn_submit(c, req);
}

static void setnx_reply(struct urkv_conn *c, struct urkv_slot *s)
{
	struct urt_kv_req *req = urkv_conn_req(c, s, 0);

	if (s->err)
		urkv_out_error(c, s->err);
	else if (req->res == 0 || req->res == -EEXIST)
		urkv_out_int(c, req->res == 0);
	else
		out_store_error(c, req->res, &s->argv[1], s->argv[2].len);
}

static void del_prepare(struct urkv_conn *c, struct urkv_slot *s)
{
	for (unsigned i = 0; i < s->nreq; i++) {
		struct urt_kv_req *req = urkv_conn_req(c, s, i);
		const struct resp_arg *key = &s->argv[1 + i];

		req_key(req, key);
		req->op = URT_KV_OP_DEL;
		req->flags = urkv_conn_write_flags(c);
		if (key_check(key))
			req->res = URT_E_NOTFOUND;
		else
			urkv_conn_submit(c, req);
	}
}

static void del_tally(struct urkv_conn *c, struct urkv_slot *s)
{
	tally(c, s, 0, URT_E_NOTFOUND);
}

static void mset_prepare(struct urkv_conn *c, struct urkv_slot *s)
{
	/* Nothing is written if any pair is unwritable (as close to Redis's all-or-nothing as a check gets). */
	for (unsigned i = 0; i < s->nreq; i++) {
		const char *err = key_check(&s->argv[1 + 2 * i]);

		if (!err && s->argv[2 + 2 * i].len > URT_KV_VALUE_MAX)
			err = URKV_E_VALUE_TOO_LARGE;
		if (err) {
			s->err = err;
			for (unsigned j = 0; j < s->nreq; j++)
				urkv_conn_req(c, s, j)->res = 0;
			return;
		}
	}
	for (unsigned i = 0; i < s->nreq; i++) {
		struct urt_kv_req *req = urkv_conn_req(c, s, i);

		req_key(req, &s->argv[1 + 2 * i]);
		req->op = URT_KV_OP_PUT;
		req->flags = urkv_conn_write_flags(c);
		req->val = s->argv[2 + 2 * i].ptr;
		req->vlen = s->argv[2 + 2 * i].len;
		urkv_conn_submit(c, req);
	}
}

static void mset_tally(struct urkv_conn *c, struct urkv_slot *s)
{
	const char *err = s->err;

	s->err = NULL;
	tally(c, s, 0, 0);
	if (err)
		s->err = err;
}

static void ok_reply(struct urkv_conn *c, struct urkv_slot *s)
{
	s->cmd->tally(c, s);
	if (s->err)
		urkv_out_error(c, s->err);
	else
		urkv_out_simple(c, "OK");
}

static void incr_common(struct urkv_conn *c, struct urkv_slot *s, int64_t delta)
{
	struct urt_kv_req *req = urkv_conn_req(c, s, 0);

	s->err = key_check(&s->argv[1]);
	if (s->err)
		return;
	req_key(req, &s->argv[1]);
	req->op = URT_KV_OP_INCR;
	req->flags = urkv_conn_write_flags(c);
	req->delta = delta;
	urkv_conn_submit(c, req);
}

static void incr_prepare(struct urkv_conn *c, struct urkv_slot *s)
{
	incr_common(c, s, 1);
}

static void decr_prepare(struct urkv_conn *c, struct urkv_slot *s)
{
	incr_common(c, s, -1);
}

static void incrby_prepare(struct urkv_conn *c, struct urkv_slot *s)
{
	long long v;

	if (resp_parse_ll(s->argv[2].ptr, s->argv[2].len, &v) != 0) {
		s->err = "ERR value is not an integer or out of range";
		return;
	}
	incr_common(c, s, v);
}

static void decrby_prepare(struct urkv_conn *c, struct urkv_slot *s)
{
	long long v;

	if (resp_parse_ll(s->argv[2].ptr, s->argv[2].len, &v) != 0 || v == INT64_MIN) {
		s->err = "ERR value is not an integer or out of range";
		return;
	}
	incr_common(c, s, -v);
}

static void incr_reply(struct urkv_conn *c, struct urkv_slot *s)
{
	struct urt_kv_req *req = urkv_conn_req(c, s, 0);

	if (s->err)
		urkv_out_error(c, s->err);
	else if (req->res == 0)
		urkv_out_int(c, req->num);
	else
		out_store_error(c, req->res, &s->argv[1], 0);
}

/* Commands that run alone. */

static void ping_run(struct urkv_conn *c, struct urkv_slot *s)
{
	if (s->argc > 2)
		urkv_out_error(c, "ERR wrong number of arguments for 'ping' command");
	else if (s->argc == 2)
		urkv_out_bulk(c, s->argv[1].ptr, s->argv[1].len);
	else
		urkv_out_simple(c, "PONG");
}

static void echo_run(struct urkv_conn *c, struct urkv_slot *s)
{
	urkv_out_bulk(c, s->argv[1].ptr, s->argv[1].len);
}

static void quit_run(struct urkv_conn *c, struct urkv_slot *s)
{
	(void)s;
	urkv_out_simple(c, "OK");
	urkv_conn_close_after_reply(c);
}

static void dbsize_run(struct urkv_conn *c, struct urkv_slot *s)
{
	uint64_t n = 0;
	int ret = urt_kv_count(urkv_conn_server(c)->kv, &n);

	(void)s;
	if (ret)
		out_store_error(c, ret, NULL, 0);
	else
		urkv_out_int(c, (long long)n);
}

static void flushall_run(struct urkv_conn *c, struct urkv_slot *s)
{
	int ret;

	if (s->argc > 2 || (s->argc == 2 && !arg_is(&s->argv[1], "ASYNC") &&
			    !arg_is(&s->argv[1], "SYNC"))) {
		urkv_out_error(c, "ERR syntax error");
		return;
	}
	ret = urt_kv_clear(urkv_conn_server(c)->kv, urkv_conn_write_flags(c));
	if (ret)
		out_store_error(c, ret, NULL, 0);
	else
		urkv_out_simple(c, "OK");
}

static bool parse_u64(const struct resp_arg *a, uint64_t *out)
{
	uint64_t v = 0;

	if (a->len == 0 || a->len > 20)
		return false;
	for (size_t i = 0; i < a->len; i++) {
		if (a->ptr[i] < '0' || a->ptr[i] > '9' || v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(a->ptr[i] - '0');
	}
	*out = v;
	return true;
}

/*
 * SCAN cursor [MATCH pattern] [COUNT n] [TYPE type].  Cursor numbers are
 * handles to positions kept by the connection (the store's order is by
 * key, not by a number); 0 starts a scan and is returned when it ends.  A
 * key present for the whole scan is returned exactly once.
 */
static void scan_run(struct urkv_conn *c, struct urkv_slot *s)
{
	struct urkv_server *srv = urkv_conn_server(c);
	const struct resp_arg *match = NULL;
	struct urt_kv_entry *ents = NULL;
	struct urt_kv_cursor *cur;
	uint64_t id, count = SCAN_COUNT_DEFAULT, next_id = 0;
	size_t buf_len;
	char *buf = NULL;
	bool type_ok = true;
	int n;

	if (!parse_u64(&s->argv[1], &id)) {
		urkv_out_error(c, "ERR invalid cursor");
		return;
	}
	for (size_t i = 2; i < s->argc; i += 2) {
		if (i + 1 >= s->argc) {
			urkv_out_error(c, "ERR syntax error");
			return;
		}
		if (arg_is(&s->argv[i], "MATCH")) {
			match = &s->argv[i + 1];
		} else if (arg_is(&s->argv[i], "COUNT")) {
			if (!parse_u64(&s->argv[i + 1], &count) || count == 0) {
				urkv_out_error(c, count == 0 ? "ERR syntax error"
							     : "ERR value is not an integer or out of range");
				return;
			}
		} else if (arg_is(&s->argv[i], "TYPE")) {
			type_ok = arg_is(&s->argv[i + 1], "string");
		} else {
			urkv_out_error(c, "ERR syntax error");
			return;
		}
	}
	if (count > SCAN_COUNT_MAX)
		count = SCAN_COUNT_MAX;
	if (id == 0) {
		cur = urkv_conn_cursor(c, 0, true, &next_id);
		if (cur)
			urt_kv_cursor_init(cur, NULL, 0);
	} else {
		cur = urkv_conn_cursor(c, id, false, NULL);
		next_id = id;
		if (!cur) {
			urkv_out_error(c, "ERR invalid cursor (unknown on this connection, or expired)");
			return;
		}
	}
	buf_len = urt_kv_shards(srv->kv) * (count * (URT_KV_KEY_MAX / 4 + 32) + URT_KV_KEY_MAX + 64);
	ents = calloc(count, sizeof(*ents));
	buf = malloc(buf_len);
	if (!cur || !ents || !buf) {
		urkv_out_error(c, "ERR out of memory");
		goto out;
	}
	n = urt_kv_scan(srv->kv, cur, ents, count, buf, buf_len, URT_KV_KEYS_ONLY);
	if (n < 0) {
		urkv_conn_cursor_drop(c, next_id);
		out_store_error(c, n, NULL, 0);
		goto out;
	}
	if (cur->done) {
		urkv_conn_cursor_drop(c, next_id);
		next_id = 0;
	}
	{
		size_t matched = 0;
		char num[24];
		int len = snprintf(num, sizeof(num), "%" PRIu64, next_id);

		for (int i = 0; i < n && type_ok; i++)
			if (!match || urkv_glob_match(match->ptr, match->len, ents[i].key, ents[i].klen,
						      false))
				matched++;
		urkv_out_array(c, 2);
		urkv_out_bulk(c, num, (size_t)len);
		urkv_out_array(c, matched);
		for (int i = 0; i < n && type_ok; i++)
			if (!match || urkv_glob_match(match->ptr, match->len, ents[i].key, ents[i].klen,
						      false))
				urkv_out_bulk(c, ents[i].key, ents[i].klen);
	}
out:
	free(ents);
	free(buf);
}

static void info_run(struct urkv_conn *c, struct urkv_slot *s)
{
	char *text = urkv_info(c, s->argc > 1 ? s->argv[1].ptr : NULL, s->argc > 1 ? s->argv[1].len : 0);

	if (!text) {
		urkv_out_error(c, "ERR out of memory");
		return;
	}
	urkv_out_bulk(c, text, strlen(text));
	free(text);
}

static void select_run(struct urkv_conn *c, struct urkv_slot *s)
{
	if (s->argv[1].len == 1 && s->argv[1].ptr[0] == '0')
		urkv_out_simple(c, "OK");
	else
		urkv_out_error(c, "ERR DB index is out of range");
}

static void nosync_run(struct urkv_conn *c, struct urkv_slot *s)
{
	if (arg_is(&s->argv[1], "ON"))
		urkv_conn_set_nosync(c, true);
	else if (arg_is(&s->argv[1], "OFF"))
		urkv_conn_set_nosync(c, false);
	else {
		urkv_out_error(c, "ERR syntax error (NOSYNC ON|OFF)");
		return;
	}
	urkv_out_simple(c, "OK");
}

static void command_run(struct urkv_conn *c, struct urkv_slot *s);

/* TIME: the wall clock as Redis gives it, seconds and microseconds as two bulk strings. */
static void time_run(struct urkv_conn *c, struct urkv_slot *s)
{
	uint64_t now = urt_clock_wall_ns();
	char sec[24], usec[8];
	int ns = snprintf(sec, sizeof(sec), "%llu", (unsigned long long)(now / 1000000000ull));
	int nu = snprintf(usec, sizeof(usec), "%llu", (unsigned long long)(now % 1000000000ull / 1000));

	(void)s;
	urkv_out_array(c, 2);
	urkv_out_bulk(c, sec, (size_t)ns);
	urkv_out_bulk(c, usec, (size_t)nu);
}

/* LASTSAVE: when the last SAVE or SHUTDOWN checkpoint ended (or the start), as INFO's rdb_last_save_time. */
static void lastsave_run(struct urkv_conn *c, struct urkv_slot *s)
{
	(void)s;
	urkv_out_int(c, (long long)(atomic_load(&urkv_conn_server(c)->live.last_save_wall_ns) / 1000000000ull));
}

static const struct urkv_cmd cmds[] = {
	{ "get", 2, URKV_READ, 0, true, get_prepare, NULL, get_reply, NULL, false },
	{ "mget", -2, URKV_READ, 1, true, get_prepare, NULL, mget_reply, NULL, false },
	{ "exists", -2, URKV_READ, 1, false, exists_prepare, exists_tally, count_reply, NULL, false },
	{ "set", -3, URKV_WRITE, 0, false, set_prepare, NULL, set_reply, urkv_set_get_run, false,
	  urkv_set_class, .writes = true },
	{ "setnx", 3, URKV_WRITE, 0, false, setnx_prepare, NULL, setnx_reply, NULL, false,
	  .writes = true },
	{ "del", -2, URKV_WRITE, 1, false, del_prepare, del_tally, count_reply, NULL, false,
	  .writes = true },
	{ "unlink", -2, URKV_WRITE, 1, false, del_prepare, del_tally, count_reply, NULL, false,
	  .writes = true },
	{ "mset", -3, URKV_WRITE, 2, false, mset_prepare, mset_tally, ok_reply, NULL, true,
	  .writes = true },
	{ "incr", 2, URKV_WRITE, 0, false, incr_prepare, NULL, incr_reply, NULL, false,
	  .writes = true },
	{ "decr", 2, URKV_WRITE, 0, false, decr_prepare, NULL, incr_reply, NULL, false,
	  .writes = true },
	{ "incrby", 3, URKV_WRITE, 0, false, incrby_prepare, NULL, incr_reply, NULL, false,
	  .writes = true },
	{ "decrby", 3, URKV_WRITE, 0, false, decrby_prepare, NULL, incr_reply, NULL, false,
	  .writes = true },
	{ "ping", -1, URKV_SYNC, 0, false, NULL, NULL, NULL, ping_run, false },
	{ "echo", 2, URKV_SYNC, 0, false, NULL, NULL, NULL, echo_run, false },
	{ "quit", -1, URKV_SYNC, 0, false, NULL, NULL, NULL, quit_run, false },
	{ "dbsize", 1, URKV_SYNC, 0, false, NULL, NULL, NULL, dbsize_run, false },
	{ "scan", -2, URKV_SYNC, 0, false, NULL, NULL, NULL, scan_run, false },
	{ "flushall", -1, URKV_SYNC, 0, false, NULL, NULL, NULL, flushall_run, false,
	  .writes = true },
	{ "flushdb", -1, URKV_SYNC, 0, false, NULL, NULL, NULL, flushall_run, false,
	  .writes = true },
	{ "save", 1, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_save_run, false, .writes = true },
	{ "info", -1, URKV_SYNC, 0, false, NULL, NULL, NULL, info_run, false },
	{ "select", 2, URKV_SYNC, 0, false, NULL, NULL, NULL, select_run, false },
	{ "config", -2, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_config_run, false },
	{ "client", -2, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_client_run, false },
	{ "command", -1, URKV_SYNC, 0, false, NULL, NULL, NULL, command_run, false },
	{ "nosync", 2, URKV_SYNC, 0, false, NULL, NULL, NULL, nosync_run, false },
	{ "time", 1, URKV_SYNC, 0, false, NULL, NULL, NULL, time_run, false },
	{ "lastsave", 1, URKV_SYNC, 0, false, NULL, NULL, NULL, lastsave_run, false },
	/* Expiry, string and keyspace commands (cmd_expire.c, cmd_string.c, cmd_keys.c). */
	{ "setex", 4, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_setex_run, false,
	  .writes = true },
	{ "psetex", 4, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_psetex_run, false,
	  .writes = true },
	{ "getex", -2, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_getex_run, false,
	  .writes = true },
	{ "getdel", 2, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_getdel_run, false,
	  .writes = true },
	{ "expire", -3, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_expire_run, false,
	  .writes = true },
	{ "pexpire", -3, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_pexpire_run, false,
	  .writes = true },
	{ "expireat", -3, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_expireat_run, false,
	  .writes = true },
	{ "pexpireat", -3, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_pexpireat_run, false,
	  .writes = true },
	{ "ttl", 2, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_ttl_run, false },
	{ "pttl", 2, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_pttl_run, false },
	{ "expiretime", 2, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_expiretime_run, false },
	{ "pexpiretime", 2, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_pexpiretime_run, false },
	{ "persist", 2, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_persist_run, false,
	  .writes = true },
	{ "debug", -2, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_debug_run, false },
	{ "append", 3, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_append_run, false,
	  .writes = true },
	{ "strlen", 2, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_strlen_run, false },
	{ "getrange", 4, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_getrange_run, false },
	{ "substr", 4, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_getrange_run, false },
	{ "setrange", 4, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_setrange_run, false,
	  .writes = true },
	{ "getset", 3, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_getset_run, false,
	  .writes = true },
	{ "msetnx", -3, URKV_SYNC, 2, false, NULL, NULL, NULL, urkv_msetnx_run, false,
	  .writes = true },
	{ "incrbyfloat", 3, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_incrbyfloat_run, false,
	  .writes = true },
	{ "setbit", 4, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_setbit_run, false,
	  .writes = true },
	{ "getbit", 3, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_getbit_run, false },
	{ "bitcount", -2, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_bitcount_run, false },
	{ "bitpos", -3, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_bitpos_run, false },
	{ "keys", 2, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_keys_run, false },
	{ "rename", 3, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_rename_run, false,
	  .writes = true },
	{ "renamenx", 3, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_renamenx_run, false,
	  .writes = true },
	{ "copy", -3, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_copy_run, false, .writes = true },
	{ "randomkey", 1, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_randomkey_run, false },
	{ "type", 2, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_type_run, false },
	{ "touch", -2, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_touch_run, false },
	/* Operations: security, shutdown, latency (auth.c, shutdown.c, stats.c). */
	{ "auth", -2, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_auth_run, false },
	{ "hello", -1, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_hello_run, false },
	{ "shutdown", -1, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_shutdown_run, false },
	{ "latency", -2, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_latency_run, false },
	/* Redis Cluster node side (cluster_cmd.c, migrate.c; docs/kv.md). */
	{ "cluster", -2, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_cluster_run, false },
	{ "clusterx", -2, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_clusterx_run, false },
	{ "asking", 1, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_asking_run, false },
	{ "readonly", 1, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_readonly_run, false },
	{ "readwrite", 1, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_readwrite_run, false },
	{ "dump", 2, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_dump_run, false },
	{ "restore", -4, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_restore_run, false,
	  .writes = true },
	{ "restore-asking", -4, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_restore_run, false,
	  .writes = true },
	{ "migrate", -6, URKV_SYNC, 0, false, NULL, NULL, NULL, urkv_migrate_run, false,
	  .writes = true },
};

#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

unsigned urkv_cmd_count(void)
{
	return (unsigned)NCMDS;
}

const struct urkv_cmd *urkv_cmd_at(unsigned i)
{
	return &cmds[i];
}

unsigned urkv_cmd_index(const struct urkv_cmd *cmd)
{
	return (unsigned)(cmd - cmds);
}

/* One entry of COMMAND and COMMAND INFO: name, arity, flags, first key, last key, step. */
static void command_entry(struct urkv_conn *c, const struct urkv_cmd *cmd)
{
	int first, last, step;

	urkv_cmd_keys(cmd, &first, &last, &step);
	urkv_out_array(c, 6);
	urkv_out_bulk(c, cmd->name, strlen(cmd->name));
	urkv_out_int(c, cmd->arity);
	urkv_out_array(c, 0);
	urkv_out_int(c, first);
	urkv_out_int(c, last);
	urkv_out_int(c, step);
}

/*
 * COMMAND GETKEYS cmd arg...: the keys of that call, by the command's key
 * positions (first, last, step), with Redis 7.0's checks in its order: an
 * unknown command, a command without keys, then its arity.  (7.0 requires
 * an argument after cmd; 7.2 takes `COMMAND GETKEYS mget` and answers it
 * with "Invalid number of arguments".)
 */
static void command_getkeys(struct urkv_conn *c, struct urkv_slot *s)
{
	const struct urkv_cmd *cmd;
	size_t n = s->argc - 2, last;
	int first, lastk, step;

	if (s->argc < 4) {
		urkv_out_error(c, "ERR wrong number of arguments for 'command|getkeys' command");
		return;
	}
	cmd = urkv_cmd_lookup(&s->argv[2]);
	if (!cmd) {
		urkv_out_error(c, "ERR Invalid command specified");
		return;
	}
	urkv_cmd_keys(cmd, &first, &lastk, &step);
	if (first == 0) {
		urkv_out_error(c, "ERR The command has no key arguments");
		return;
	}
	if ((cmd->arity > 0 && (size_t)cmd->arity != n) || (cmd->arity < 0 && n < (size_t)-cmd->arity)) {
		urkv_out_error(c, "ERR Invalid number of arguments specified for command");
		return;
	}
	last = lastk < 0 ? (size_t)((long)n + lastk) : (size_t)lastk;
	if (last >= n)
		last = n - 1;
	URT_ASSERT(step > 0 && first > 0);
	urkv_out_array(c, (last - (size_t)first) / (size_t)step + 1);
	for (size_t i = (size_t)first; i <= last; i += (size_t)step)
		urkv_out_bulk(c, s->argv[2 + i].ptr, s->argv[2 + i].len);
}

/*
 * COMMAND [COUNT | DOCS | INFO name... | LIST | GETKEYS cmd arg...]: what
 * redis-cli asks at start, and what cluster clients (redis-py's
 * RedisCluster) read to find each command's keys.
 */
static void command_run(struct urkv_conn *c, struct urkv_slot *s)
{
	if (s->argc == 1) {
		urkv_out_array(c, NCMDS);
		for (size_t i = 0; i < NCMDS; i++)
			command_entry(c, &cmds[i]);
	} else if (arg_is(&s->argv[1], "DOCS")) {
		/* No documentation: redis-cli then simply offers no hints. */
		urkv_out_array(c, 0);
	} else if (arg_is(&s->argv[1], "COUNT")) {
		urkv_out_int(c, (long long)NCMDS);
	} else if (arg_is(&s->argv[1], "GETKEYS")) {
		command_getkeys(c, s);
	} else if (arg_is(&s->argv[1], "LIST")) {
		urkv_out_array(c, NCMDS);
		for (size_t i = 0; i < NCMDS; i++)
			urkv_out_bulk(c, cmds[i].name, strlen(cmds[i].name));
	} else if (arg_is(&s->argv[1], "INFO")) {
		urkv_out_array(c, s->argc - 2);
		for (size_t a = 2; a < s->argc; a++) {
			const struct urkv_cmd *cmd = urkv_cmd_lookup(&s->argv[a]);

			if (cmd)
				command_entry(c, cmd);
			else
				urkv_out_null(c);
		}
	} else {
		urkv_out_errorf(c, "ERR unknown subcommand '%.*s'. Try COMMAND COUNT.",
				(int)(s->argv[1].len > 64 ? 64 : s->argv[1].len), s->argv[1].ptr);
	}
}

/*
 * Command names by hash: an open-addressed table of command numbers + 1,
 * built once (pthread_once: every core looks commands up), at most a
 * quarter full, so a lookup hashes the name once and compares about one
 * entry instead of scanning the table.  It gives the same answers as a
 * scan, so a hash that silently degraded (everything in one run of
 * slots) would only cost time: urkv_cmd_probes counts the slots a lookup
 * examines, and tests/kv/test_urkv_commands.c bounds it.
 */
#define CMD_HASH_SLOTS 512u
#define CMD_NAME_MAX 16u

static uint8_t cmd_hash[CMD_HASH_SLOTS];
static uint8_t cmd_name_len[NCMDS];
static pthread_once_t cmd_hash_once = PTHREAD_ONCE_INIT;

_Static_assert(NCMDS < 255 && NCMDS * 4 <= CMD_HASH_SLOTS, "the command hash stays sparse");

/* FNV-1a over the name in lower case. */
static uint32_t cmd_name_hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)(s[i] | 0x20)) * 16777619u;
	return h;
}

static void cmd_hash_build(void)
{
	for (size_t i = 0; i < NCMDS; i++) {
		size_t n = strlen(cmds[i].name);
		uint32_t h;

		URT_ASSERT(n > 0 && n <= CMD_NAME_MAX);
		cmd_name_len[i] = (uint8_t)n;
		h = cmd_name_hash(cmds[i].name, n) & (CMD_HASH_SLOTS - 1);
		while (cmd_hash[h])
			h = (h + 1) & (CMD_HASH_SLOTS - 1);
		cmd_hash[h] = (uint8_t)(i + 1);
	}
}

/*
 * The command named name (any case), or NULL; adds to *probes the slots
 * it examined: the entries compared, plus the empty slot that ends a miss.
 * Inlined into both callers; urkv_cmd_lookup's count is never read, so
 * the compiler drops it.
 */
static inline __attribute__((always_inline)) const struct urkv_cmd *cmd_find(const struct resp_arg *name,
									   unsigned *probes)
{
	uint32_t h;

	if (name->len == 0 || name->len > CMD_NAME_MAX)
		return NULL;
	pthread_once(&cmd_hash_once, cmd_hash_build);
	/* "| 0x20" folds letters only approximately: the compare below decides. */
	h = cmd_name_hash(name->ptr, name->len) & (CMD_HASH_SLOTS - 1);
	for (; cmd_hash[h]; h = (h + 1) & (CMD_HASH_SLOTS - 1)) {
		size_t i = cmd_hash[h] - 1u;

		(*probes)++;
		if (cmd_name_len[i] == name->len &&
		    strncasecmp(cmds[i].name, name->ptr, name->len) == 0)
			return &cmds[i];
	}
	(*probes)++;
	return NULL;
}

const struct urkv_cmd *urkv_cmd_lookup(const struct resp_arg *name)
{
	unsigned probes = 0;

	return cmd_find(name, &probes);
}

unsigned urkv_cmd_probes(const struct resp_arg *name)
{
	unsigned probes = 0;

	(void)cmd_find(name, &probes);
	return probes;
}

/* Appends 'arg' (at most 48 bytes of it, printable) to buf. */
static size_t quote_arg(char *buf, size_t len, size_t at, const struct resp_arg *a)
{
	size_t n = a->len > 48 ? 48 : a->len;

	if (at + n + 4 >= len)
		return at;
	buf[at++] = '\'';
	for (size_t i = 0; i < n; i++)
		buf[at++] = a->ptr[i] >= 32 && a->ptr[i] < 127 ? a->ptr[i] : '?';
	buf[at++] = '\'';
	buf[at++] = ' ';
	buf[at] = 0;
	return at;
}

const char *urkv_cmd_check(const struct urkv_cmd *cmd, const struct resp_arg *argv, size_t argc,
			   char *buf, size_t len)
{
	if (!cmd) {
		/* Redis: ERR unknown command 'foo', with args beginning with: 'a' 'b' */
		size_t at = (size_t)snprintf(buf, len, "ERR unknown command ");

		at = quote_arg(buf, len, at, &argv[0]);
		if (at > 0 && buf[at - 1] == ' ')
			at--;
		at += (size_t)snprintf(buf + at, len - at, ", with args beginning with: ");
		for (size_t i = 1; i < argc && at < len; i++)
			at = quote_arg(buf, len, at, &argv[i]);
		return buf;
	}
	if ((cmd->arity > 0 && argc != (size_t)cmd->arity) ||
	    (cmd->arity < 0 && argc < (size_t)-cmd->arity) ||
	    (cmd->key_stride == 2 && (argc - 1) % 2 != 0)) {
		snprintf(buf, len, "ERR wrong number of arguments for '%s' command", cmd->name);
		return buf;
	}
	return NULL;
}
