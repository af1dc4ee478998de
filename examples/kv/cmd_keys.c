/*
 * urkv's keyspace commands: KEYS, RENAME, RENAMENX, COPY, RANDOMKEY, TYPE,
 * TOUCH, with Redis 7.0's replies and error texts.  Every urkv value is a
 * string, so TYPE says "string" or "none".
 *
 * RENAME and COPY touch two keys that may live on two shards, so they are
 * not one transaction (docs/kv.md states the guarantee): the destination
 * is written (with the source's expiry) before the source is deleted, and
 * the source is deleted only if it still holds what was copied.  A crash
 * between the two leaves both keys, never neither.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/compiler.h"
#include "cmd_ext.h"
#include "urt/urt.h"

#define KEYS_BATCH 256	/* Keys one scan call returns to KEYS and RANDOMKEY. */

/* Matched keys are packed as (u16 length, bytes) until their count is known. */
static bool keys_pack(char **out, size_t *len, size_t *cap, const char *key, uint16_t kl)
{
	if (*len + sizeof(kl) + kl > *cap) {
		size_t ncap = *cap ? 2 * *cap : 65536;
		char *p = realloc(*out, ncap);

		if (!p)
			return false;
		*out = p;
		*cap = ncap;
	}
	memcpy(*out + *len, &kl, sizeof(kl));
	memcpy(*out + *len + sizeof(kl), key, kl);
	*len += sizeof(kl) + kl;
	return true;
}

void urkv_keys_reply(struct urkv_conn *c, urkv_key_keep *keep, const void *arg, uint64_t max, bool list)
{
	struct urt_kv *kv = urkv_conn_server(c)->kv;
	size_t buf_len = urt_kv_shards(kv) * KEYS_BATCH * (URT_KV_KEY_MAX + 64);
	struct urt_kv_entry *ents = calloc(KEYS_BATCH, sizeof(*ents));
	char *buf = malloc(buf_len), *out = NULL;
	size_t out_len = 0, out_cap = 0;
	uint64_t n = 0;
	struct urt_kv_cursor *cur = malloc(sizeof(*cur));

	if (!ents || !buf || !cur) {
		urkv_out_error(c, "ERR out of memory");
		goto out;
	}
	urt_kv_cursor_init(cur, NULL, 0);
	while (!cur->done && n < max) {
		int got;

		if (urkv_conn_gone(c))
			goto out;	/* Nobody to read the reply (conn.c). */
		got = urt_kv_scan(kv, cur, ents, KEYS_BATCH, buf, buf_len, URT_KV_KEYS_ONLY);
		if (got < 0) {
			urkv_out_store_error(c, got);
			goto out;
		}
		for (int i = 0; i < got && n < max; i++) {
			if (!keep(arg, ents[i].key, ents[i].klen))
				continue;
			n++;
			if (list && !keys_pack(&out, &out_len, &out_cap, ents[i].key, (uint16_t)ents[i].klen)) {
				urkv_out_error(c, "ERR out of memory");
				goto out;
			}
		}
	}
	if (!list) {
		urkv_out_int(c, (long long)n);
		goto out;
	}
	urkv_out_array(c, n);
	for (size_t at = 0; at < out_len && !urkv_conn_gone(c);) {
		uint16_t kl;

		memcpy(&kl, out + at, sizeof(kl));
		urkv_out_bulk(c, out + at + sizeof(kl), kl);
		at += sizeof(kl) + kl;
	}
out:
	free(ents);
	free(buf);
	free(out);
	free(cur);
}

static bool keys_glob_keep(const void *arg, const char *key, size_t klen)
{
	const struct resp_arg *pat = arg;

	return (pat->len == 1 && pat->ptr[0] == '*') || urkv_glob_match(pat->ptr, pat->len, key, klen, false);
}

/* KEYS pattern: every live key that matches, in key order. */
void urkv_keys_run(struct urkv_conn *c, struct urkv_slot *s)
{
	urkv_keys_reply(c, keys_glob_keep, &s->argv[1], UINT64_MAX, true);
}

/* Deletes the source of a rename if it still holds the copied value and expiry. */
struct src_del {
	struct urt_kv_req req;	/* The store update. */
	const char *val;	/* The value copied. */
	size_t vlen;		/* Its length. */
	uint64_t expire_at;	/* Its expiry. */
};

static int src_del_fn(struct urt_kv_req *req, struct urt_kv_update *u)
{
	struct src_del *x = urt_container_of(req, struct src_del, req);

	if (u->exists && u->vlen == x->vlen && u->expire_at == x->expire_at &&
	    memcmp(u->val, x->val, x->vlen) == 0)
		u->action = URT_KV_UPDATE_DEL;
	return 0;
}

static bool same_key(const struct resp_arg *a, const struct resp_arg *b)
{
	return a->len == b->len && memcmp(a->ptr, b->ptr, a->len) == 0;
}

/* RENAME key newkey, RENAMENX key newkey */
static void rename_common(struct urkv_conn *c, struct urkv_slot *s, bool nx)
{
	struct urt_kv *kv = urkv_conn_server(c)->kv;
	const struct resp_arg *src = &s->argv[1], *dst = &s->argv[2];
	struct src_del x = { 0 };
	uint64_t exp = 0;
	char *val = NULL;
	size_t vlen = 0;
	const char *err = urkv_key_error(dst);
	int ret;

	if (urkv_key_error(src)) {
		urkv_out_error(c, "ERR no such key");
		return;
	}
	ret = urkv_read_value(c, src, &val, &vlen, &exp);
	if (ret == URT_E_NOTFOUND) {
		urkv_out_error(c, "ERR no such key");
		return;
	}
	if (ret) {
		urkv_out_store_error(c, ret);
		free(val);
		return;
	}
	if (same_key(src, dst)) {
		if (nx)
			urkv_out_int(c, 0);
		else
			urkv_out_simple(c, "OK");
		goto out;
	}
	if (err) {
		urkv_out_error(c, err);
		goto out;
	}
	ret = urt_kv_put_expire(kv, dst->ptr, dst->len, val, vlen, exp,
				urkv_conn_write_flags(c) | (nx ? URT_KV_NX : 0));
	if (ret == -EEXIST) {
		urkv_out_int(c, 0);
		goto out;
	}
	if (ret) {
		urkv_out_store_error(c, ret);
		goto out;
	}
	x.req.key = src->ptr;
	x.req.klen = src->len;
	x.req.flags = URT_KV_READVAL | urkv_conn_write_flags(c);
	x.req.update = src_del_fn;
	x.val = val;
	x.vlen = vlen;
	x.expire_at = exp;
	ret = urt_kv_update(kv, &x.req);
	if (ret < 0)
		urkv_out_store_error(c, ret);
	else if (nx)
		urkv_out_int(c, 1);
	else
		urkv_out_simple(c, "OK");
out:
	free(val);
}

void urkv_rename_run(struct urkv_conn *c, struct urkv_slot *s)
{
	rename_common(c, s, false);
}

void urkv_renamenx_run(struct urkv_conn *c, struct urkv_slot *s)
{
	rename_common(c, s, true);
}

/* COPY source destination [DB destination-db] [REPLACE] */
void urkv_copy_run(struct urkv_conn *c, struct urkv_slot *s)
{
	struct urt_kv *kv = urkv_conn_server(c)->kv;
	const struct resp_arg *src = &s->argv[1], *dst = &s->argv[2];
	bool replace = false;
	uint64_t exp = 0;
	char *val = NULL;
	size_t vlen = 0;
	int ret;

	for (size_t j = 3; j < s->argc; j++) {
		if (resp_arg_eq_nocase(&s->argv[j], "REPLACE")) {
			replace = true;
		} else if (resp_arg_eq_nocase(&s->argv[j], "DB") && j + 1 < s->argc) {
			long long db;

			if (!urkv_arg_ll(&s->argv[j + 1], &db) || db < INT32_MIN || db > INT32_MAX) {
				urkv_out_error(c, "ERR value is not an integer or out of range");
				return;
			}
			if (db != 0) {
				urkv_out_error(c, "ERR DB index is out of range");
				return;
			}
			j++;
		} else {
			urkv_out_error(c, "ERR syntax error");
			return;
		}
	}
	if (same_key(src, dst)) {
		urkv_out_error(c, "ERR source and destination objects are the same");
		return;
	}
	if (urkv_key_error(src)) {
		urkv_out_int(c, 0);
		return;
	}
	ret = urkv_read_value(c, src, &val, &vlen, &exp);
	if (ret == URT_E_NOTFOUND) {
		urkv_out_int(c, 0);
		return;
	}
	if (ret) {
		urkv_out_store_error(c, ret);
		return;
	}
	if (urkv_key_error(dst)) {
		urkv_out_error(c, urkv_key_error(dst));
		goto out;
	}
	ret = urt_kv_put_expire(kv, dst->ptr, dst->len, val, vlen, exp,
				urkv_conn_write_flags(c) | (replace ? 0 : URT_KV_NX));
	if (ret == -EEXIST)
		urkv_out_int(c, 0);
	else if (ret)
		urkv_out_store_error(c, ret);
	else
		urkv_out_int(c, 1);
out:
	free(val);
}

/*
 * RANDOMKEY: the first live key at or after a random position in key
 * order (wrapping to the first key).  Every key can come back, but not
 * with equal chance: a key after a wide gap in the key space is picked
 * more often (Redis samples its hash table instead).
 */
void urkv_randomkey_run(struct urkv_conn *c, struct urkv_slot *s)
{
	struct urt_kv *kv = urkv_conn_server(c)->kv;
	size_t buf_len = urt_kv_shards(kv) * (URT_KV_KEY_MAX + 64);
	struct urt_kv_cursor *cur = malloc(sizeof(*cur));
	char *buf = malloc(buf_len);
	struct urt_kv_entry ent;
	uint8_t start[8];
	int got = 0;

	(void)s;
	if (!cur || !buf) {
		urkv_out_error(c, "ERR out of memory");
		goto out;
	}
	for (size_t i = 0; i < sizeof(start); i++)
		start[i] = (uint8_t)random();
	urt_kv_cursor_init(cur, start, sizeof(start));
	for (int pass = 0; pass < 2 && got == 0; pass++) {
		if (pass == 1)
			urt_kv_cursor_init(cur, NULL, 0);
		while (!cur->done && got == 0) {
			got = urt_kv_scan(kv, cur, &ent, 1, buf, buf_len, URT_KV_KEYS_ONLY);
			if (got < 0) {
				urkv_out_store_error(c, got);
				goto out;
			}
		}
	}
	if (got == 0)
		urkv_out_null(c);
	else
		urkv_out_bulk(c, ent.key, ent.klen);
out:
	free(cur);
	free(buf);
}

/* TYPE key */
void urkv_type_run(struct urkv_conn *c, struct urkv_slot *s)
{
	int ret = urkv_key_error(&s->argv[1]) ? 0 :
		  urt_kv_exists(urkv_conn_server(c)->kv, s->argv[1].ptr, s->argv[1].len);

	if (ret < 0)
		urkv_out_store_error(c, ret);
	else
		urkv_out_simple(c, ret ? "string" : "none");
}

/* TOUCH key [key ...]: keys that exist (urkv keeps no access times). */
void urkv_touch_run(struct urkv_conn *c, struct urkv_slot *s)
{
	long long n = 0;

	for (size_t i = 1; i < s->argc; i++) {
		int ret;

		if (urkv_key_error(&s->argv[i]))
			continue;
		ret = urt_kv_exists(urkv_conn_server(c)->kv, s->argv[i].ptr, s->argv[i].len);
		if (ret < 0) {
			urkv_out_store_error(c, ret);
			return;
		}
		n += ret;
	}
	urkv_out_int(c, n);
}
