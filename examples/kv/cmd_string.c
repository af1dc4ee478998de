/*
 * urkv's string commands beyond GET/SET/INCR: APPEND, STRLEN, GETRANGE
 * (SUBSTR), SETRANGE, GETSET, MSETNX, INCRBYFLOAT, SETBIT, GETBIT,
 * BITCOUNT, BITPOS, with Redis 7.0's replies and error texts.
 *
 * The commands that change a value (APPEND, SETRANGE, GETSET,
 * INCRBYFLOAT, SETBIT) are store updates: the callback edits the old value
 * in the store's scratch buffer, on the key's shard, inside its write
 * transaction, so they are atomic per key.  APPEND, SETRANGE, INCRBYFLOAT
 * and SETBIT keep the key's expiry (Redis changes the value in place);
 * GETSET drops it (Redis's setKey).  The readers copy the whole value.
 * A value up to URT_KV_UPDATE_VALUE_MAX is edited in the committer's
 * scratch buffer; a larger old or new value makes the store rerun the
 * callback alone on its shard with a URT_KV_VALUE_MAX buffer (shard.c,
 * big_update).  APPEND and SETRANGE refuse a result over
 * proto-max-bulk-len, as Redis's checkStringLength does.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/compiler.h"
#include "cmd_ext.h"
#include "urt/urt.h"

#define LD_CHARS_MAX (5 * 1024)	/* Redis's MAX_LONG_DOUBLE_CHARS. */
/* A callback's answer: the result would exceed proto-max-bulk-len (not a store error). */
#define URKV_STRING_MAX (-1000000)

/* A string command's update: its arguments in, its answer out. */
struct supd {
	struct urt_kv_req req;		/* The store update. */
	const char *arg;		/* The value argument. */
	size_t arg_len;			/* Its length. */
	long long off;			/* SETRANGE: byte offset; SETBIT: bit offset. */
	int bit;			/* SETBIT: the new bit. */
	long double incr;		/* INCRBYFLOAT: the increment. */
	char text[LD_CHARS_MAX];	/* INCRBYFLOAT: the new value. */
	size_t text_len;		/* Its length. */
	size_t max_len;			/* APPEND, SETRANGE: proto-max-bulk-len. */
	bool existed;			/* Out: the key was live. */
	char *old;			/* Out (GETSET): the old value (malloc). */
	size_t old_len;			/* Its length. */
};

static struct supd *supd_of(struct urt_kv_req *req)
{
	return urt_container_of(req, struct supd, req);
}

static int supd_run(struct urkv_conn *c, struct supd *x, const struct resp_arg *key,
		    urt_kv_update_fn fn, size_t vlen_max)
{
	x->req.key = key->ptr;
	x->req.klen = key->len;
	x->req.flags = urkv_conn_write_flags(c) | URT_KV_READVAL;
	x->req.vlen = vlen_max;
	x->req.update = fn;
	return urt_kv_update(urkv_conn_server(c)->kv, &x->req);
}

/* An update's reply: an integer, or the error it returned. */
static void out_int_result(struct urkv_conn *c, int ret)
{
	if (ret == URKV_STRING_MAX)
		urkv_out_error(c, "ERR string exceeds maximum allowed size (proto-max-bulk-len)");
	else if (ret < 0)
		urkv_out_store_error(c, ret);
	else
		urkv_out_int(c, ret);
}

/* APPEND key value */
static int append_fn(struct urt_kv_req *req, struct urt_kv_update *u)
{
	struct supd *x = supd_of(req);

	if (!u->exists) {
		u->vlen = 0;
		u->expire_at = 0;
	}
	if (x->arg_len > x->max_len - (u->vlen < x->max_len ? u->vlen : x->max_len))
		return URKV_STRING_MAX;
	if (x->arg_len > u->cap - u->vlen)
		return URT_E_TOOBIG;
	memcpy(u->val + u->vlen, x->arg, x->arg_len);
	u->vlen += x->arg_len;
	u->action = URT_KV_UPDATE_PUT;
	return (int)u->vlen;
}

void urkv_append_run(struct urkv_conn *c, struct urkv_slot *s)
{
	struct supd *x = calloc(1, sizeof(*x));
	const char *err = urkv_key_error(&s->argv[1]);

	if (err || !x) {
		urkv_out_error(c, err ? err : "ERR out of memory");
		free(x);
		return;
	}
	x->arg = s->argv[2].ptr;
	x->arg_len = s->argv[2].len;
	x->max_len = urkv_conn_server(c)->o.proto_max_bulk_len;
	out_int_result(c, supd_run(c, x, &s->argv[1], append_fn, URT_KV_UPDATE_VALUE_MAX));
	free(x);
}

/* STRLEN key */
void urkv_strlen_run(struct urkv_conn *c, struct urkv_slot *s)
{
	size_t vlen = 0;
	int ret;

	if (urkv_key_error(&s->argv[1])) {
		urkv_out_int(c, 0);
		return;
	}
	ret = urt_kv_get(urkv_conn_server(c)->kv, s->argv[1].ptr, s->argv[1].len, NULL, 0, &vlen);
	if (ret == URT_E_NOTFOUND)
		urkv_out_int(c, 0);
	else if (ret)
		urkv_out_store_error(c, ret);
	else
		urkv_out_int(c, (long long)vlen);
}

/*
 * Redis's index rule for GETRANGE, BITCOUNT and BITPOS: a negative index
 * counts from the end, then both are clamped into [0, len - 1] (end may stay
 * below start, and len may be 0: the caller answers an empty range).
 */
static void range_clamp(long long *start, long long *end, long long len)
{
	if (*start < 0)
		*start += len;
	if (*end < 0)
		*end += len;
	if (*start < 0)
		*start = 0;
	if (*end < 0)
		*end = 0;
	if (*end >= len)
		*end = len - 1;
}

/* GETRANGE key start end (and SUBSTR) */
void urkv_getrange_run(struct urkv_conn *c, struct urkv_slot *s)
{
	long long start, end, len;
	char *val = NULL;
	size_t vlen = 0;
	int ret;

	if (!urkv_arg_ll(&s->argv[2], &start) || !urkv_arg_ll(&s->argv[3], &end)) {
		urkv_out_error(c, "ERR value is not an integer or out of range");
		return;
	}
	if (urkv_key_error(&s->argv[1])) {
		urkv_out_bulk(c, "", 0);
		return;
	}
	ret = urkv_read_value(c, &s->argv[1], &val, &vlen, NULL);
	if (ret == URT_E_NOTFOUND) {
		urkv_out_bulk(c, "", 0);
		return;
	}
	if (ret) {
		urkv_out_store_error(c, ret);
		return;
	}
	len = (long long)vlen;
	if (start < 0 && end < 0 && start > end) {
		urkv_out_bulk(c, "", 0);
		goto out;
	}
	range_clamp(&start, &end, len);
	if (start > end || len == 0)
		urkv_out_bulk(c, "", 0);
	else
		urkv_out_bulk(c, val + start, (size_t)(end - start + 1));
out:
	free(val);
}

/* SETRANGE key offset value */
static int setrange_fn(struct urt_kv_req *req, struct urt_kv_update *u)
{
	struct supd *x = supd_of(req);
	size_t off = (size_t)x->off;

	if (!u->exists) {
		if (x->arg_len == 0)
			return 0;	/* Nothing set on a missing key. */
		u->vlen = 0;
		u->expire_at = 0;
	} else if (x->arg_len == 0) {
		return (int)u->vlen;
	}
	if (off > x->max_len || x->arg_len > x->max_len - off)
		return URKV_STRING_MAX;
	if (off > u->cap || x->arg_len > u->cap - off)
		return URT_E_TOOBIG;
	if (off > u->vlen)
		memset(u->val + u->vlen, 0, off - u->vlen);
	memcpy(u->val + off, x->arg, x->arg_len);
	if (off + x->arg_len > u->vlen)
		u->vlen = off + x->arg_len;
	u->action = URT_KV_UPDATE_PUT;
	return (int)u->vlen;
}

void urkv_setrange_run(struct urkv_conn *c, struct urkv_slot *s)
{
	struct supd *x;
	long long off;
	const char *err;

	if (!urkv_arg_ll(&s->argv[2], &off)) {
		urkv_out_error(c, "ERR value is not an integer or out of range");
		return;
	}
	if (off < 0) {
		urkv_out_error(c, "ERR offset is out of range");
		return;
	}
	err = urkv_key_error(&s->argv[1]);
	x = calloc(1, sizeof(*x));
	if (err || !x) {
		urkv_out_error(c, err ? err : "ERR out of memory");
		free(x);
		return;
	}
	x->off = off;
	x->arg = s->argv[3].ptr;
	x->arg_len = s->argv[3].len;
	x->max_len = urkv_conn_server(c)->o.proto_max_bulk_len;
	out_int_result(c, supd_run(c, x, &s->argv[1], setrange_fn, URT_KV_UPDATE_VALUE_MAX));
	free(x);
}

/* GETSET key value: the old value; the new one has no expiry. */
static int getset_fn(struct urt_kv_req *req, struct urt_kv_update *u)
{
	struct supd *x = supd_of(req);

	x->existed = u->exists;
	if (u->exists) {
		free(x->old);
		x->old = malloc(u->vlen ? u->vlen : 1);
		if (!x->old)
			return -ENOMEM;
		memcpy(x->old, u->val, u->vlen);
		x->old_len = u->vlen;
	}
	u->val = (uint8_t *)(uintptr_t)x->arg;
	u->vlen = x->arg_len;
	u->expire_at = 0;
	u->action = URT_KV_UPDATE_PUT;
	return 0;
}

void urkv_getset_run(struct urkv_conn *c, struct urkv_slot *s)
{
	struct supd *x = calloc(1, sizeof(*x));
	const char *err = urkv_key_error(&s->argv[1]);
	int ret;

	if (err || !x) {
		urkv_out_error(c, err ? err : "ERR out of memory");
		free(x);
		return;
	}
	x->arg = s->argv[2].ptr;
	x->arg_len = s->argv[2].len;
	ret = supd_run(c, x, &s->argv[1], getset_fn, x->arg_len);
	if (ret < 0)
		urkv_out_store_error(c, ret);
	else if (x->existed)
		urkv_out_bulk(c, x->old, x->old_len);
	else
		urkv_out_null(c);
	free(x->old);
	free(x);
}

/*
 * MSETNX key value [key value ...]: 1 if every key was set, 0 (nothing
 * set) if any exists.  The keys may live on several shards, so this is not
 * one transaction: each key is written with NX, and if one turns out to
 * exist (created meanwhile by another client) the keys written so far are
 * deleted again, each only if it still holds this command's value.  A
 * repeated key is written once, with its last value, as in Redis.
 */
/* The arguments qsort compares (per thread: a core sorts without yielding). */
static _Thread_local const struct resp_arg *msetnx_argv;

static int msetnx_cmp(const void *a, const void *b)
{
	const struct resp_arg *x = &msetnx_argv[*(const unsigned *)a];
	const struct resp_arg *y = &msetnx_argv[*(const unsigned *)b];
	int r = memcmp(x->ptr, y->ptr, x->len < y->len ? x->len : y->len);

	if (r)
		return r;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	/* Equal keys: the later one first, so it is the one kept. */
	return *(const unsigned *)a < *(const unsigned *)b ? 1 : -1;
}

/* Deletes the key if it still holds exactly arg (no expiry). */
static int undo_fn(struct urt_kv_req *req, struct urt_kv_update *u)
{
	struct supd *x = supd_of(req);

	if (u->exists && u->expire_at == 0 && u->vlen == x->arg_len &&
	    memcmp(u->val, x->arg, x->arg_len) == 0)
		u->action = URT_KV_UPDATE_DEL;
	return 0;
}

void urkv_msetnx_run(struct urkv_conn *c, struct urkv_slot *s)
{
	struct urt_kv *kv = urkv_conn_server(c)->kv;
	unsigned n = (unsigned)((s->argc - 1) / 2), *idx = malloc(n * sizeof(*idx)), nput = 0;
	unsigned *done = malloc(n * sizeof(*done));
	int ret = 0, exists = 0;

	if (!idx || !done) {
		urkv_out_error(c, "ERR out of memory");
		goto out;
	}
	for (unsigned i = 0; i < n; i++) {
		const char *err = urkv_key_error(&s->argv[1 + 2 * i]);

		if (err) {
			urkv_out_error(c, err);
			goto out;
		}
		idx[i] = 1 + 2 * i;
	}
	for (unsigned i = 0; i < n && !exists; i++) {
		exists = urt_kv_exists(kv, s->argv[idx[i]].ptr, s->argv[idx[i]].len);
		if (exists < 0) {
			urkv_out_store_error(c, exists);
			goto out;
		}
	}
	if (exists) {
		urkv_out_int(c, 0);
		goto out;
	}
	msetnx_argv = s->argv;
	qsort(idx, n, sizeof(*idx), msetnx_cmp);
	for (unsigned i = 0; i < n; i++) {
		const struct resp_arg *k = &s->argv[idx[i]], *v = &s->argv[idx[i] + 1];

		/* Sorted with the last of equal keys first: skip the others. */
		if (i > 0 && k->len == s->argv[idx[i - 1]].len &&
		    memcmp(k->ptr, s->argv[idx[i - 1]].ptr, k->len) == 0)
			continue;
		ret = urt_kv_put(kv, k->ptr, k->len, v->ptr, v->len, URT_KV_NX | urkv_conn_write_flags(c));
		if (ret)
			break;
		done[nput++] = idx[i];
	}
	if (ret == 0) {
		urkv_out_int(c, 1);
		goto out;
	}
	for (unsigned i = 0; i < nput; i++) {
		struct supd *x = calloc(1, sizeof(*x));

		if (!x)
			break;
		x->arg = s->argv[done[i] + 1].ptr;
		x->arg_len = s->argv[done[i] + 1].len;
		supd_run(c, x, &s->argv[done[i]], undo_fn, 0);
		free(x);
	}
	if (ret == -EEXIST)
		urkv_out_int(c, 0);
	else
		urkv_out_store_error(c, ret);
out:
	free(idx);
	free(done);
}

/* INCRBYFLOAT key increment */

/* Redis's string2ld. */
static bool parse_ld(const char *s, size_t len, long double *out)
{
	char buf[LD_CHARS_MAX];
	char *end;
	long double v;

	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = 0;
	errno = 0;
	v = strtold(buf, &end);
	if (isspace((unsigned char)buf[0]) || *end != 0 || (size_t)(end - buf) != len ||
	    (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || fpclassify(v) == FP_ZERO)) ||
	    errno == EINVAL || isnan(v))
		return false;
	*out = v;
	return true;
}

/* Redis's ld2string in LD_STR_HUMAN mode: 17 decimals, trailing zeros dropped. */
static size_t format_ld(char *buf, size_t len, long double v)
{
	int l = snprintf(buf, len, "%.17Lf", v);

	if (l < 0 || (size_t)l + 1 > len)
		return 0;
	if (strchr(buf, '.')) {
		while (buf[l - 1] == '0')
			l--;
		if (buf[l - 1] == '.')
			l--;
	}
	if (l == 2 && buf[0] == '-' && buf[1] == '0') {
		buf[0] = '0';
		l = 1;
	}
	buf[l] = 0;
	return (size_t)l;
}

enum { FLOAT_BAD_VALUE = 1, FLOAT_NAN = 2 };

static int incrbyfloat_fn(struct urt_kv_req *req, struct urt_kv_update *u)
{
	struct supd *x = supd_of(req);
	long double v = 0;

	if (u->exists && !parse_ld((const char *)u->val, u->vlen, &v))
		return FLOAT_BAD_VALUE;
	v += x->incr;
	if (isnan(v) || isinf(v))
		return FLOAT_NAN;
	x->text_len = format_ld(x->text, sizeof(x->text), v);
	if (x->text_len == 0)
		return FLOAT_NAN;
	if (!u->exists)
		u->expire_at = 0;
	u->val = (uint8_t *)x->text;
	u->vlen = x->text_len;
	u->action = URT_KV_UPDATE_PUT;
	return 0;
}

void urkv_incrbyfloat_run(struct urkv_conn *c, struct urkv_slot *s)
{
	struct supd *x = calloc(1, sizeof(*x));
	const char *err = urkv_key_error(&s->argv[1]);
	long double incr;
	int ret;

	if (err || !x) {
		urkv_out_error(c, err ? err : "ERR out of memory");
		free(x);
		return;
	}
	/* Redis reads the stored value first, then the increment: the same error for both. */
	if (!parse_ld(s->argv[2].ptr, s->argv[2].len, &incr)) {
		urkv_out_error(c, "ERR value is not a valid float");
		free(x);
		return;
	}
	x->incr = incr;
	ret = supd_run(c, x, &s->argv[1], incrbyfloat_fn, LD_CHARS_MAX);
	if (ret == FLOAT_BAD_VALUE)
		urkv_out_error(c, "ERR value is not a valid float");
	else if (ret == FLOAT_NAN)
		urkv_out_error(c, "ERR increment would produce NaN or Infinity");
	else if (ret < 0)
		urkv_out_store_error(c, ret);
	else
		urkv_out_bulk(c, x->text, x->text_len);
	free(x);
}

/* SETBIT, GETBIT: bit offsets as Redis's getBitOffsetFromArgument. */
static bool parse_bit_offset(const struct resp_arg *a, long long *out)
{
	long long v;

	/* Redis's limit: the byte must lie below proto-max-bulk-len (512 MB). */
	if (!urkv_arg_ll(a, &v) || v < 0 || (v >> 3) >= 512ll * 1024 * 1024)
		return false;
	*out = v;
	return true;
}

static int setbit_fn(struct urt_kv_req *req, struct urt_kv_update *u)
{
	struct supd *x = supd_of(req);
	size_t byte = (size_t)(x->off >> 3);
	unsigned bit = 7u - (unsigned)(x->off & 7);
	bool grew = false;
	int old;

	if (!u->exists) {
		u->vlen = 0;
		u->expire_at = 0;
	}
	if (byte >= u->cap)
		return URT_E_TOOBIG;
	if (byte >= u->vlen) {
		memset(u->val + u->vlen, 0, byte + 1 - u->vlen);
		u->vlen = byte + 1;
		grew = true;
	}
	old = (u->val[byte] >> bit) & 1;
	if (grew || !u->exists || old != x->bit) {
		u->val[byte] = (uint8_t)((u->val[byte] & ~(1u << bit)) | ((unsigned)x->bit << bit));
		u->action = URT_KV_UPDATE_PUT;
	}
	return old;
}

void urkv_setbit_run(struct urkv_conn *c, struct urkv_slot *s)
{
	struct supd *x;
	long long off, on;
	const char *err;

	if (!parse_bit_offset(&s->argv[2], &off)) {
		urkv_out_error(c, "ERR bit offset is not an integer or out of range");
		return;
	}
	if (!urkv_arg_ll(&s->argv[3], &on) || (on & ~1ll)) {
		urkv_out_error(c, "ERR bit is not an integer or out of range");
		return;
	}
	err = urkv_key_error(&s->argv[1]);
	x = calloc(1, sizeof(*x));
	if (err || !x) {
		urkv_out_error(c, err ? err : "ERR out of memory");
		free(x);
		return;
	}
	x->off = off;
	x->bit = (int)on;
	out_int_result(c, supd_run(c, x, &s->argv[1], setbit_fn, URT_KV_UPDATE_VALUE_MAX));
	free(x);
}

void urkv_getbit_run(struct urkv_conn *c, struct urkv_slot *s)
{
	long long off;
	char *val = NULL;
	size_t vlen = 0;
	int ret;

	if (!parse_bit_offset(&s->argv[2], &off)) {
		urkv_out_error(c, "ERR bit offset is not an integer or out of range");
		return;
	}
	if (urkv_key_error(&s->argv[1])) {
		urkv_out_int(c, 0);
		return;
	}
	ret = urkv_read_value(c, &s->argv[1], &val, &vlen, NULL);
	if (ret == URT_E_NOTFOUND) {
		urkv_out_int(c, 0);
		return;
	}
	if (ret) {
		urkv_out_store_error(c, ret);
		return;
	}
	if ((size_t)(off >> 3) < vlen)
		urkv_out_int(c, ((uint8_t)val[off >> 3] >> (7 - (off & 7))) & 1);
	else
		urkv_out_int(c, 0);
	free(val);
}

/*
 * Reads the value for BITCOUNT/BITPOS; replies itself (with missing) and
 * returns false when there is nothing more to do.
 */
static bool bit_read(struct urkv_conn *c, const struct resp_arg *key, long long missing,
		     char **val, size_t *vlen)
{
	int ret;

	*val = NULL;
	if (urkv_key_error(key)) {
		urkv_out_int(c, missing);
		return false;
	}
	ret = urkv_read_value(c, key, val, vlen, NULL);
	if (ret == URT_E_NOTFOUND) {
		urkv_out_int(c, missing);
		return false;
	}
	if (ret) {
		urkv_out_store_error(c, ret);
		return false;
	}
	return true;
}

/* Parses BYTE|BIT; false for anything else. */
static bool parse_unit(const struct resp_arg *a, bool *isbit)
{
	if (resp_arg_eq_nocase(a, "BIT"))
		*isbit = true;
	else if (resp_arg_eq_nocase(a, "BYTE"))
		*isbit = false;
	else
		return false;
	return true;
}

static bool bit_at(const uint8_t *p, long long i)
{
	return (p[i >> 3] >> (7 - (i & 7))) & 1;
}

/* BITCOUNT key [start end [BYTE|BIT]] */
void urkv_bitcount_run(struct urkv_conn *c, struct urkv_slot *s)
{
	long long start, end, total, count = 0;
	bool isbit = false;
	char *val;
	size_t vlen;

	if (!bit_read(c, &s->argv[1], 0, &val, &vlen))
		return;
	total = (long long)vlen;
	if (s->argc == 4 || s->argc == 5) {
		if (!urkv_arg_ll(&s->argv[2], &start) || !urkv_arg_ll(&s->argv[3], &end)) {
			urkv_out_error(c, "ERR value is not an integer or out of range");
			goto out;
		}
		if (start < 0 && end < 0 && start > end) {
			urkv_out_int(c, 0);
			goto out;
		}
		if (s->argc == 5 && !parse_unit(&s->argv[4], &isbit)) {
			urkv_out_error(c, "ERR syntax error");
			goto out;
		}
		if (isbit)
			total <<= 3;
		range_clamp(&start, &end, total);
	} else if (s->argc == 2) {
		start = 0;
		end = total - 1;
	} else {
		urkv_out_error(c, "ERR syntax error");
		goto out;
	}
	for (long long i = start; i <= end; i++) {
		if (isbit)
			count += bit_at((const uint8_t *)val, i);
		else
			count += __builtin_popcount((uint8_t)val[i]);
	}
	urkv_out_int(c, count);
out:
	free(val);
}

/* BITPOS key bit [start [end [BYTE|BIT]]] */
void urkv_bitpos_run(struct urkv_conn *c, struct urkv_slot *s)
{
	long long bit, start = 0, end = 0, total;
	bool isbit = false, end_given = false;
	char *val;
	size_t vlen;

	if (!urkv_arg_ll(&s->argv[2], &bit)) {
		urkv_out_error(c, "ERR value is not an integer or out of range");
		return;
	}
	if (bit != 0 && bit != 1) {
		urkv_out_error(c, "ERR The bit argument must be 1 or 0.");
		return;
	}
	if (!bit_read(c, &s->argv[1], bit ? -1 : 0, &val, &vlen))
		return;
	total = (long long)vlen;
	if (s->argc >= 4 && s->argc <= 6) {
		if (!urkv_arg_ll(&s->argv[3], &start)) {
			urkv_out_error(c, "ERR value is not an integer or out of range");
			goto out;
		}
		if (s->argc == 6 && !parse_unit(&s->argv[5], &isbit)) {
			urkv_out_error(c, "ERR syntax error");
			goto out;
		}
		if (s->argc >= 5) {
			if (!urkv_arg_ll(&s->argv[4], &end)) {
				urkv_out_error(c, "ERR value is not an integer or out of range");
				goto out;
			}
			end_given = true;
		} else {
			end = total - 1;
		}
		if (isbit)
			total <<= 3;
		range_clamp(&start, &end, total);
	} else if (s->argc == 3) {
		start = 0;
		end = total - 1;
	} else {
		urkv_out_error(c, "ERR syntax error");
		goto out;
	}
	if (start > end) {
		urkv_out_int(c, -1);
		goto out;
	}
	/* In bits from here on. */
	if (!isbit) {
		start <<= 3;
		end = (end << 3) + 7;
	}
	for (long long i = start; i <= end; i++) {
		if (bit_at((const uint8_t *)val, i) == (bool)bit) {
			urkv_out_int(c, i);
			goto out;
		}
	}
	/*
	 * No such bit in the range.  Looking for a 0 without an explicit end,
	 * the string counts as padded with zeros: the first bit past it.
	 */
	urkv_out_int(c, bit == 0 && !end_given ? end + 1 : -1);
out:
	free(val);
}
