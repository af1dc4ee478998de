/*
 * urkv's expiry commands: SET's options (EX, PX, EXAT, PXAT, KEEPTTL, GET),
 * SETEX, PSETEX, GETEX, GETDEL, EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT (NX,
 * XX, GT, LT), TTL, PTTL, EXPIRETIME, PEXPIRETIME, PERSIST, and DEBUG
 * CLOCK-ADVANCE, with Redis 7.0's replies and error texts.
 *
 * Expiry times are absolute milliseconds since the epoch, stored with the
 * key by the store (include/urt/kv.h), so they survive restart and crash;
 * a relative time (EX, PX, EXPIRE, PEXPIRE) is made absolute with the
 * store's clock when the command runs, as Redis does.  Every command that
 * reads a key and then changes it is one store update: the read, the
 * conditions (NX, XX, GT, LT) and the write happen in the key's shard
 * transaction, with nothing in between.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/compiler.h"
#include "cmd_ext.h"
#include "urt/urt.h"

/* Units and bases of an expiry argument (Redis's OBJ_EX ... OBJ_PXAT). */
enum exp_kind { EXP_NONE, EXP_EX, EXP_PX, EXP_EXAT, EXP_PXAT, EXP_PERSIST, EXP_KEEPTTL };

static bool opt_is(const struct resp_arg *a, const char *name)
{
	return resp_arg_eq_nocase(a, name);
}

/*
 * Redis's getExpireMillisecondsOrReply: the absolute expiry of an EX, PX,
 * EXAT or PXAT argument, or the error reply (cmd names the command).
 */
static const char *expire_abs(struct urkv_conn *c, enum exp_kind kind, const struct resp_arg *arg,
			      const char *cmd, char *errbuf, size_t errlen, uint64_t *out)
{
	long long ms;

	if (!urkv_arg_ll(arg, &ms))
		return "ERR value is not an integer or out of range";
	if (ms <= 0 || ((kind == EXP_EX || kind == EXP_EXAT) && ms > LLONG_MAX / 1000))
		goto bad;
	if (kind == EXP_EX || kind == EXP_EXAT)
		ms *= 1000;
	if (kind == EXP_EX || kind == EXP_PX) {
		uint64_t now = urkv_now_ms(c);

		if ((unsigned long long)ms > (unsigned long long)LLONG_MAX - now)
			goto bad;
		ms += (long long)now;
	}
	*out = (uint64_t)ms;
	return NULL;
bad:
	snprintf(errbuf, errlen, "ERR invalid expire time in '%s' command", cmd);
	return errbuf;
}

/* Parses EX/PX/EXAT/PXAT/KEEPTTL/PERSIST at argv[i]; true if it was one (i moves past it). */
static bool parse_exp_opt(const struct resp_arg *argv, size_t argc, size_t *i, bool getex,
			  enum exp_kind *kind, const struct resp_arg **val)
{
	static const struct {
		const char *name;
		enum exp_kind kind;
	} opts[] = {
		{ "EX", EXP_EX }, { "PX", EXP_PX }, { "EXAT", EXP_EXAT }, { "PXAT", EXP_PXAT },
	};
	const struct resp_arg *a = &argv[*i];

	for (size_t k = 0; k < sizeof(opts) / sizeof(opts[0]); k++) {
		if (!opt_is(a, opts[k].name))
			continue;
		/*
		 * One kind of expiry at most, and it needs its value.  The same
		 * option again replaces the value, unchecked (Redis parses only
		 * the last one: `EX abc EX 10` is EX 10).
		 */
		if ((*kind != EXP_NONE && *kind != opts[k].kind) || *i + 1 >= argc)
			return false;
		*kind = opts[k].kind;
		*val = &argv[*i + 1];
		*i += 2;
		return true;
	}
	if (opt_is(a, getex ? "PERSIST" : "KEEPTTL") &&
	    (*kind == EXP_NONE || *kind == (getex ? EXP_PERSIST : EXP_KEEPTTL))) {
		*kind = getex ? EXP_PERSIST : EXP_KEEPTTL;
		*i += 1;
		return true;
	}
	return false;
}

const char *urkv_set_options(struct urkv_conn *c, const struct resp_arg *argv, size_t argc,
			     unsigned *flags, bool *get, uint64_t *expire_at)
{
	static _Thread_local char errbuf[80];
	enum exp_kind kind = EXP_NONE;
	const struct resp_arg *val = NULL;

	*flags = 0;
	*get = false;
	*expire_at = 0;
	for (size_t i = 3; i < argc;) {
		const struct resp_arg *a = &argv[i];

		if (opt_is(a, "NX") && !(*flags & URT_KV_XX)) {
			*flags |= URT_KV_NX;
			i++;
		} else if (opt_is(a, "XX") && !(*flags & URT_KV_NX)) {
			*flags |= URT_KV_XX;
			i++;
		} else if (opt_is(a, "GET")) {
			*get = true;
			i++;
		} else if (!parse_exp_opt(argv, argc, &i, false, &kind, &val)) {
			return "ERR syntax error";
		}
	}
	if (kind == EXP_KEEPTTL)
		*flags |= URT_KV_KEEPTTL;
	else if (kind != EXP_NONE)
		return expire_abs(c, kind, val, "set", errbuf, sizeof(errbuf), expire_at);
	return NULL;
}

enum urkv_class urkv_set_class(const struct resp_arg *argv, size_t argc)
{
	for (size_t i = 3; i < argc; i++)
		if (opt_is(&argv[i], "GET"))
			return URKV_SYNC;
	return URKV_WRITE;
}

/*
 * Updates.  Each command's context embeds its store request; the callback
 * finds it with container_of.  A callback may run more than once (a
 * transaction redone), so it frees what an earlier run left.
 */
struct upd {
	struct urt_kv_req req;		/* The store update. */
	unsigned flags;			/* SET: URT_KV_NX/XX/KEEPTTL; EXPIRE: EXPIRE_* below. */
	bool get;			/* Return the old value. */
	const char *val;		/* SET: the new value. */
	size_t vlen;			/* Its length. */
	enum exp_kind kind;		/* GETEX: what to do with the expiry. */
	long long when;			/* Absolute expiry (ms), may be in the past (EXPIRE...). */
	bool existed;			/* Out: the key was live. */
	char *old;			/* Out (get): the old value (malloc). */
	size_t old_len;			/* Its length. */
};

static struct upd *upd_of(struct urt_kv_req *req)
{
	return urt_container_of(req, struct upd, req);
}

/* Copies the old value out; -ENOMEM if it cannot. */
static int keep_old(struct upd *x, const struct urt_kv_update *u)
{
	free(x->old);
	x->old = malloc(u->vlen ? u->vlen : 1);
	if (!x->old)
		return -ENOMEM;
	memcpy(x->old, u->val, u->vlen);
	x->old_len = u->vlen;
	return 0;
}

static int upd_run(struct urkv_conn *c, struct upd *x, const struct resp_arg *key,
		   urt_kv_update_fn fn, bool readval, size_t vlen_max)
{
	x->req.key = key->ptr;
	x->req.klen = key->len;
	x->req.flags = urkv_conn_write_flags(c) | (readval ? URT_KV_READVAL : 0);
	x->req.vlen = vlen_max;
	x->req.update = fn;
	return urt_kv_update(urkv_conn_server(c)->kv, &x->req);
}

/* SET key value [NX|XX] GET [EX|PX|EXAT|PXAT|KEEPTTL] */
static int set_get_fn(struct urt_kv_req *req, struct urt_kv_update *u)
{
	struct upd *x = upd_of(req);
	int ret;

	x->existed = u->exists;
	if (u->exists && (ret = keep_old(x, u)) != 0)
		return ret;
	if (((x->flags & URT_KV_NX) && u->exists) || ((x->flags & URT_KV_XX) && !u->exists))
		return 0;
	if (!(x->flags & URT_KV_KEEPTTL) || !u->exists)
		u->expire_at = (uint64_t)x->when;
	u->val = (uint8_t *)(uintptr_t)x->val;
	u->vlen = x->vlen;
	u->action = URT_KV_UPDATE_PUT;
	return 0;
}

void urkv_set_get_run(struct urkv_conn *c, struct urkv_slot *s)
{
	struct upd x = { 0 };
	uint64_t exp = 0;
	const char *err = urkv_set_options(c, s->argv, s->argc, &x.flags, &x.get, &exp);
	int ret;

	if (!err)
		err = urkv_key_error(&s->argv[1]);
	if (err) {
		urkv_out_error(c, err);
		return;
	}
	x.val = s->argv[2].ptr;
	x.vlen = s->argv[2].len;
	x.when = (long long)exp;
	ret = upd_run(c, &x, &s->argv[1], set_get_fn, true, x.vlen);
	if (ret < 0)
		urkv_out_store_error(c, ret);
	else if (x.existed)
		urkv_out_bulk(c, x.old, x.old_len);
	else
		urkv_out_null(c);
	free(x.old);
}

/* SETEX key seconds value, PSETEX key milliseconds value */
static void setex_common(struct urkv_conn *c, struct urkv_slot *s, enum exp_kind kind,
			 const char *name)
{
	char errbuf[80];
	uint64_t exp = 0;
	const char *err = expire_abs(c, kind, &s->argv[2], name, errbuf, sizeof(errbuf), &exp);
	int ret;

	if (!err)
		err = urkv_key_error(&s->argv[1]);
	if (err) {
		urkv_out_error(c, err);
		return;
	}
	ret = urt_kv_put_expire(urkv_conn_server(c)->kv, s->argv[1].ptr, s->argv[1].len,
				s->argv[3].ptr, s->argv[3].len, exp, urkv_conn_write_flags(c));
	if (ret)
		urkv_out_store_error(c, ret);
	else
		urkv_out_simple(c, "OK");
}

void urkv_setex_run(struct urkv_conn *c, struct urkv_slot *s)
{
	setex_common(c, s, EXP_EX, "setex");
}

void urkv_psetex_run(struct urkv_conn *c, struct urkv_slot *s)
{
	setex_common(c, s, EXP_PX, "psetex");
}

/* GETEX key [EX seconds|PX ms|EXAT ts|PXAT ms-ts|PERSIST] */
static int getex_fn(struct urt_kv_req *req, struct urt_kv_update *u)
{
	struct upd *x = upd_of(req);
	int ret;

	x->existed = u->exists;
	if (!u->exists)
		return 0;
	ret = keep_old(x, u);
	if (ret)
		return ret;
	switch (x->kind) {
	case EXP_PERSIST:
		if (u->expire_at != 0) {
			u->expire_at = 0;
			u->action = URT_KV_UPDATE_EXPIRE;
		}
		break;
	case EXP_EX: case EXP_PX: case EXP_EXAT: case EXP_PXAT:
		/* An absolute time already past deletes the key. */
		if ((uint64_t)x->when <= u->now) {
			u->action = URT_KV_UPDATE_DEL;
		} else {
			u->expire_at = (uint64_t)x->when;
			u->action = URT_KV_UPDATE_EXPIRE;
		}
		break;
	default:
		break;
	}
	return 0;
}

void urkv_getex_run(struct urkv_conn *c, struct urkv_slot *s)
{
	struct upd x = { 0 };
	const struct resp_arg *val = NULL;
	const char *err = urkv_key_error(&s->argv[1]);
	char errbuf[80];
	int ret;

	for (size_t i = 2; i < s->argc && !err;)
		if (!parse_exp_opt(s->argv, s->argc, &i, true, &x.kind, &val))
			err = "ERR syntax error";
	if (!err && val) {
		uint64_t exp = 0;

		/* Redis checks the time only for a key that exists. */
		ret = urt_kv_exists(urkv_conn_server(c)->kv, s->argv[1].ptr, s->argv[1].len);
		if (ret == 0) {
			urkv_out_null(c);
			return;
		}
		err = expire_abs(c, x.kind, val, "getex", errbuf, sizeof(errbuf), &exp);
		x.when = (long long)exp;
	}
	if (err) {
		urkv_out_error(c, err);
		return;
	}
	ret = upd_run(c, &x, &s->argv[1], getex_fn, true, 0);
	if (ret < 0)
		urkv_out_store_error(c, ret);
	else if (x.existed)
		urkv_out_bulk(c, x.old, x.old_len);
	else
		urkv_out_null(c);
	free(x.old);
}

/* GETDEL key */
static int getdel_fn(struct urt_kv_req *req, struct urt_kv_update *u)
{
	struct upd *x = upd_of(req);
	int ret;

	x->existed = u->exists;
	if (!u->exists)
		return 0;
	ret = keep_old(x, u);
	if (ret)
		return ret;
	u->action = URT_KV_UPDATE_DEL;
	return 0;
}

void urkv_getdel_run(struct urkv_conn *c, struct urkv_slot *s)
{
	struct upd x = { 0 };
	const char *err = urkv_key_error(&s->argv[1]);
	int ret;

	if (err) {
		urkv_out_null(c);	/* Such a key cannot exist. */
		return;
	}
	ret = upd_run(c, &x, &s->argv[1], getdel_fn, true, 0);
	if (ret < 0)
		urkv_out_store_error(c, ret);
	else if (x.existed)
		urkv_out_bulk(c, x.old, x.old_len);
	else
		urkv_out_null(c);
	free(x.old);
}

/* EXPIRE key seconds [NX|XX|GT|LT] and its three siblings. */
enum { EXPIRE_NX = 1, EXPIRE_XX = 2, EXPIRE_GT = 4, EXPIRE_LT = 8 };

static int expire_fn(struct urt_kv_req *req, struct urt_kv_update *u)
{
	struct upd *x = upd_of(req);
	long long cur = u->expire_at ? (long long)u->expire_at : -1;

	if (!u->exists)
		return 0;
	if ((x->flags & EXPIRE_NX) && cur != -1)
		return 0;
	if ((x->flags & EXPIRE_XX) && cur == -1)
		return 0;
	/* GT: no expiry counts as infinite, so nothing is greater. */
	if ((x->flags & EXPIRE_GT) && (cur == -1 || x->when <= cur))
		return 0;
	if ((x->flags & EXPIRE_LT) && cur != -1 && x->when >= cur)
		return 0;
	if (x->when <= (long long)u->now) {
		u->action = URT_KV_UPDATE_DEL;
	} else {
		u->expire_at = (uint64_t)x->when;
		u->action = URT_KV_UPDATE_EXPIRE;
	}
	return 1;
}

static void expire_common(struct urkv_conn *c, struct urkv_slot *s, bool seconds, bool relative,
			  const char *name)
{
	struct upd x = { 0 };
	long long when;
	int ret;

	for (size_t i = 3; i < s->argc; i++) {
		const struct resp_arg *a = &s->argv[i];

		if (opt_is(a, "NX"))
			x.flags |= EXPIRE_NX;
		else if (opt_is(a, "XX"))
			x.flags |= EXPIRE_XX;
		else if (opt_is(a, "GT"))
			x.flags |= EXPIRE_GT;
		else if (opt_is(a, "LT"))
			x.flags |= EXPIRE_LT;
		else {
			urkv_out_errorf(c, "ERR Unsupported option %.*s",
					(int)(a->len > 128 ? 128 : a->len), a->ptr);
			return;
		}
	}
	if ((x.flags & EXPIRE_NX) && (x.flags & (EXPIRE_XX | EXPIRE_GT | EXPIRE_LT))) {
		urkv_out_error(c, "ERR NX and XX, GT or LT options at the same time are not compatible");
		return;
	}
	if ((x.flags & EXPIRE_GT) && (x.flags & EXPIRE_LT)) {
		urkv_out_error(c, "ERR GT and LT options at the same time are not compatible");
		return;
	}
	if (!urkv_arg_ll(&s->argv[2], &when)) {
		urkv_out_error(c, "ERR value is not an integer or out of range");
		return;
	}
	if (seconds) {
		if (when > LLONG_MAX / 1000 || when < LLONG_MIN / 1000)
			goto bad;
		when *= 1000;
	}
	if (relative) {
		long long base = (long long)urkv_now_ms(c);

		if (when > LLONG_MAX - base)
			goto bad;
		when += base;
	}
	if (urkv_key_error(&s->argv[1])) {
		urkv_out_int(c, 0);
		return;
	}
	x.when = when;
	ret = upd_run(c, &x, &s->argv[1], expire_fn, false, 0);
	if (ret < 0)
		urkv_out_store_error(c, ret);
	else
		urkv_out_int(c, ret);
	return;
bad:
	urkv_out_errorf(c, "ERR invalid expire time in '%s' command", name);
}

void urkv_expire_run(struct urkv_conn *c, struct urkv_slot *s)
{
	expire_common(c, s, true, true, "expire");
}

void urkv_pexpire_run(struct urkv_conn *c, struct urkv_slot *s)
{
	expire_common(c, s, false, true, "pexpire");
}

void urkv_expireat_run(struct urkv_conn *c, struct urkv_slot *s)
{
	expire_common(c, s, true, false, "expireat");
}

void urkv_pexpireat_run(struct urkv_conn *c, struct urkv_slot *s)
{
	expire_common(c, s, false, false, "pexpireat");
}

/* TTL, PTTL, EXPIRETIME, PEXPIRETIME: -2 no key, -1 no expiry. */
static void ttl_common(struct urkv_conn *c, struct urkv_slot *s, bool ms, bool absolute)
{
	uint64_t exp = 0;
	size_t vlen;
	long long ttl;
	int ret;

	if (urkv_key_error(&s->argv[1])) {
		urkv_out_int(c, -2);
		return;
	}
	ret = urt_kv_get_expire(urkv_conn_server(c)->kv, s->argv[1].ptr, s->argv[1].len, NULL, 0,
				&vlen, &exp);
	if (ret == URT_E_NOTFOUND) {
		urkv_out_int(c, -2);
		return;
	}
	if (ret) {
		urkv_out_store_error(c, ret);
		return;
	}
	if (exp == 0) {
		urkv_out_int(c, -1);
		return;
	}
	ttl = absolute ? (long long)exp : (long long)exp - (long long)urkv_now_ms(c);
	if (ttl < 0)
		ttl = 0;
	urkv_out_int(c, ms ? ttl : (ttl + 500) / 1000);
}

void urkv_ttl_run(struct urkv_conn *c, struct urkv_slot *s)
{
	ttl_common(c, s, false, false);
}

void urkv_pttl_run(struct urkv_conn *c, struct urkv_slot *s)
{
	ttl_common(c, s, true, false);
}

void urkv_expiretime_run(struct urkv_conn *c, struct urkv_slot *s)
{
	ttl_common(c, s, false, true);
}

void urkv_pexpiretime_run(struct urkv_conn *c, struct urkv_slot *s)
{
	ttl_common(c, s, true, true);
}

/* PERSIST key: 1 if an expiry was removed. */
static int persist_fn(struct urt_kv_req *req, struct urt_kv_update *u)
{
	(void)req;
	if (!u->exists || u->expire_at == 0)
		return 0;
	u->expire_at = 0;
	u->action = URT_KV_UPDATE_EXPIRE;
	return 1;
}

void urkv_persist_run(struct urkv_conn *c, struct urkv_slot *s)
{
	struct upd x = { 0 };
	int ret;

	if (urkv_key_error(&s->argv[1])) {
		urkv_out_int(c, 0);
		return;
	}
	ret = upd_run(c, &x, &s->argv[1], persist_fn, false, 0);
	if (ret < 0)
		urkv_out_store_error(c, ret);
	else
		urkv_out_int(c, ret);
}

/*
 * DEBUG CLOCK-ADVANCE ms: moves the store's expiry clock forward (tests of
 * expiry without waiting).  Refused unless urkv runs with
 * --enable-debug-command (or enable-debug-command yes in its config file;
 * local: from a loopback client only), as Redis 7 refuses DEBUG without
 * enable-debug-command.
 */
void urkv_debug_run(struct urkv_conn *c, struct urkv_slot *s)
{
	struct urkv_server *srv = urkv_conn_server(c);
	long long ms;

	if (srv->o.enable_debug == URKV_DEBUG_NO ||
	    (srv->o.enable_debug == URKV_DEBUG_LOCAL && !urkv_auth_peer_is_local(urkv_conn_fd(c)))) {
		urkv_out_error(c, "ERR DEBUG command not allowed. If the enable-debug-command option is "
				  "set to \"local\", you can run it from a local connection, otherwise "
				  "you need to set this option in the configuration file, and then "
				  "restart the server.");
		return;
	}
	if (opt_is(&s->argv[1], "CLOCK-ADVANCE") && s->argc == 3) {
		if (!urkv_arg_ll(&s->argv[2], &ms) || ms < 0) {
			urkv_out_error(c, "ERR value is not an integer or out of range");
			return;
		}
		atomic_fetch_add(&srv->clock_offset_ms, ms);
		urkv_out_simple(c, "OK");
		return;
	}
	urkv_out_errorf(c, "ERR unknown subcommand '%.*s'. Try DEBUG CLOCK-ADVANCE ms.",
			(int)(s->argv[1].len > 64 ? 64 : s->argv[1].len), s->argv[1].ptr);
}
