/*
 * CONFIG GET, CONFIG SET, CONFIG RESETSTAT and CONFIG HELP, with Redis's
 * parameter names, replies and error texts.
 *
 * CONFIG SET changes the settings urkv can change while it runs
 * (maxclients, timeout, appendfsync, requirepass, protected-mode), each an
 * atomic of srv->live that every core reads when it needs it; the others
 * are fixed at start and answer Redis's "can't set immutable config".  As
 * in Redis, several pairs are checked first and then set together, so a
 * bad one sets none.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "urkv.h"
#include "urt/urt.h"

enum param_kind { P_FIXED, P_UINT, P_FSYNC, P_PASS, P_YESNO, P_SAVE };

struct param {
	const char *name;	/* Redis's name. */
	enum param_kind kind;	/* How SET parses it (P_FIXED: it cannot be set). */
};

static const struct param params[] = {
	{ "save", P_SAVE },
	{ "appendonly", P_FIXED },
	{ "appendfsync", P_FSYNC },
	{ "databases", P_FIXED },
	{ "maxclients", P_UINT },
	{ "port", P_FIXED },
	{ "bind", P_FIXED },
	{ "timeout", P_UINT },
	{ "proto-max-bulk-len", P_FIXED },
	{ "client-query-buffer-limit", P_FIXED },
	{ "requirepass", P_PASS },
	{ "protected-mode", P_YESNO },
	{ "dir", P_FIXED },
	{ "dbfilename", P_FIXED },
};

#define NPARAMS (sizeof(params) / sizeof(params[0]))

/* The current value of params[i] into buf. */
static const char *param_value(struct urkv_server *srv, size_t i, char *buf, size_t len)
{
	const char *name = params[i].name;
	struct urkv_secret *pw;

	if (strcmp(name, "save") == 0)
		return "";
	if (strcmp(name, "appendonly") == 0)
		return "yes";
	if (strcmp(name, "appendfsync") == 0)
		return urkv_fsync_name((enum urkv_fsync)atomic_load(&srv->live.appendfsync));
	if (strcmp(name, "databases") == 0)
		return "1";
	if (strcmp(name, "maxclients") == 0)
		snprintf(buf, len, "%u", atomic_load(&srv->live.max_clients));
	else if (strcmp(name, "port") == 0)
		snprintf(buf, len, "%u", srv->port);
	else if (strcmp(name, "bind") == 0)
		return srv->o.bind_addr;
	else if (strcmp(name, "timeout") == 0)
		snprintf(buf, len, "%llu",
			 (unsigned long long)(atomic_load(&srv->live.timeout_ns) / 1000000000ull));
	else if (strcmp(name, "proto-max-bulk-len") == 0)
		snprintf(buf, len, "%zu", srv->o.proto_max_bulk_len);
	else if (strcmp(name, "client-query-buffer-limit") == 0)
		snprintf(buf, len, "%zu", srv->o.max_request);
	else if (strcmp(name, "requirepass") == 0)
		return (pw = atomic_load(&srv->live.pass)) ? pw->pw : "";
	else if (strcmp(name, "protected-mode") == 0)
		return atomic_load(&srv->live.protected_mode) ? "yes" : "no";
	else if (strcmp(name, "dir") == 0) {
		char *abs = realpath(srv->o.dir, NULL);

		snprintf(buf, len, "%s", abs ? abs : srv->o.dir);
		free(abs);
	} else if (strcmp(name, "dbfilename") == 0) {
		const char *slash = strrchr(srv->data_path, '/');

		return slash ? slash + 1 : srv->data_path;
	}
	return buf;
}

static void get_run(struct urkv_conn *c, struct urkv_slot *s)
{
	struct urkv_server *srv = urkv_conn_server(c);
	size_t matched = 0;
	char buf[PATH_MAX];

	if (s->argc < 3) {
		urkv_out_error(c, "ERR wrong number of arguments for 'config|get' command");
		return;
	}
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1)
			urkv_out_array(c, 2 * matched);
		for (size_t i = 0; i < NPARAMS; i++)
			for (size_t a = 2; a < s->argc; a++) {
				if (!urkv_glob_match(s->argv[a].ptr, s->argv[a].len, params[i].name,
						     strlen(params[i].name), true))
					continue;
				if (pass == 0) {
					matched++;
				} else {
					const char *v = param_value(srv, i, buf, sizeof(buf));

					urkv_out_bulk(c, params[i].name, strlen(params[i].name));
					urkv_out_bulk(c, v, strlen(v));
				}
				break;
			}
	}
}

static const struct param *param_find(const struct resp_arg *a)
{
	for (size_t i = 0; i < NPARAMS; i++)
		if (resp_arg_eq_nocase(a, params[i].name))
			return &params[i];
	return NULL;
}

/* A parsed CONFIG SET pair. */
struct set_val {
	const struct param *p;		/* Parameter. */
	unsigned long long num;		/* P_UINT, P_YESNO. */
	enum urkv_fsync fsync;		/* P_FSYNC. */
	const struct resp_arg *arg;	/* The value as given. */
};

/* Largest timeout in seconds: --idle-timeout's bound (opts.c). */
#define TIMEOUT_MAX 1000000000ll

/* Checks one pair; NULL, or the reason after "- " in Redis's error (in why, or static). */
static const char *set_check(struct urkv_conn *c, struct set_val *v, char *why, size_t whylen)
{
	const struct resp_arg *a = v->arg;
	bool maxclients = strcmp(v->p->name, "maxclients") == 0;
	long long n, lo, hi;

	switch (v->p->kind) {
	case P_FIXED:
		return "can't set immutable config";
	case P_SAVE:
		return a->len == 0 ? NULL : "urkv has no snapshots: only save \"\" is accepted";
	case P_UINT:
		if (resp_parse_ll(a->ptr, a->len, &n) != 0)
			return "argument couldn't be parsed into an integer";
		/*
		 * maxclients may go down to 1 and back up to its value at start
		 * (at most 1000000, opts.c), which sized the fibers; timeout is
		 * 0 (never) to --idle-timeout's bound.
		 */
		lo = maxclients ? 1 : 0;
		hi = maxclients ? (long long)urkv_conn_server(c)->o.max_clients : TIMEOUT_MAX;
		if (n < lo || n > hi) {
			/* Redis's words, with urkv's bounds. */
			snprintf(why, whylen, "argument must be between %lld and %lld inclusive%s", lo, hi,
				 maxclients && n > hi ? ": urkv cannot raise maxclients above its value "
							"at start (its fibers are sized then)" : "");
			return why;
		}
		v->num = (unsigned long long)n;
		return NULL;
	case P_FSYNC:
		return urkv_fsync_parse(a->ptr, a->len, &v->fsync) == 0
			       ? NULL
			       : "argument(s) must be one of the following: everysec, always, no";
	case P_YESNO:
		if (resp_arg_eq_nocase(a, "yes"))
			v->num = 1;
		else if (resp_arg_eq_nocase(a, "no"))
			v->num = 0;
		else
			return "argument must be 'yes' or 'no'";
		return NULL;
	case P_PASS:
		return NULL;
	}
	return "unknown parameter kind";
}

static int reaper_start(void *p)
{
	struct urkv_server *srv = p;

	return urkv_server_reaper_start(&srv->cores[urt_core_id()]);
}

static int set_apply(struct urkv_conn *c, const struct set_val *v)
{
	struct urkv_server *srv = urkv_conn_server(c);
	const char *name = v->p->name;

	if (strcmp(name, "maxclients") == 0) {
		atomic_store(&srv->live.max_clients, (unsigned)v->num);
	} else if (strcmp(name, "timeout") == 0) {
		atomic_store(&srv->live.timeout_ns, v->num * 1000000000ull);
		if (v->num)
			for (unsigned i = 0; i < srv->ncores; i++)
				urt_core_run(srv->rt, i, reaper_start, srv);
	} else if (strcmp(name, "appendfsync") == 0) {
		atomic_store(&srv->live.appendfsync, (int)v->fsync);
	} else if (strcmp(name, "protected-mode") == 0) {
		atomic_store(&srv->live.protected_mode, v->num != 0);
	} else if (strcmp(name, "requirepass") == 0) {
		return urkv_auth_set_password(srv, v->arg->ptr, v->arg->len);
	}
	return 0;
}

static void set_run(struct urkv_conn *c, struct urkv_slot *s)
{
	struct set_val vals[NPARAMS];
	char whybuf[192];
	size_t n = 0;

	/* Redis: fewer than one pair is an arity error, an odd count a syntax error. */
	if (s->argc < 4) {
		urkv_out_error(c, "ERR wrong number of arguments for 'config|set' command");
		return;
	}
	if ((s->argc - 2) % 2 != 0) {
		urkv_out_error(c, "ERR syntax error");
		return;
	}
	for (size_t a = 2; a < s->argc; a += 2) {
		const struct resp_arg *k = &s->argv[a];
		const struct param *p = param_find(k);
		const char *why;

		if (!p || n == NPARAMS) {
			urkv_out_errorf(c, "ERR Unknown option or number of arguments for CONFIG SET - '%.*s'",
					(int)(k->len > 64 ? 64 : k->len), k->ptr);
			return;
		}
		for (size_t i = 0; i < n; i++)
			if (vals[i].p == p) {
				urkv_out_errorf(c, "ERR CONFIG SET failed (possibly related to argument "
						   "'%s') - duplicate parameter", p->name);
				return;
			}
		vals[n] = (struct set_val){ .p = p, .arg = &s->argv[a + 1] };
		why = set_check(c, &vals[n], whybuf, sizeof(whybuf));
		if (why) {
			urkv_out_errorf(c, "ERR CONFIG SET failed (possibly related to argument '%s') - %s",
					p->name, why);
			return;
		}
		n++;
	}
	for (size_t i = 0; i < n; i++)
		if (set_apply(c, &vals[i]) != 0) {
			urkv_out_error(c, "ERR out of memory");
			return;
		}
	urkv_out_simple(c, "OK");
}

static void help_run(struct urkv_conn *c)
{
	static const char *const lines[] = {
		"CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
		"GET <pattern> [<pattern> ...]",
		"    Return parameters matching the glob-like <pattern> and their values.",
		"SET <directive> <value> [<directive> <value> ...]",
		"    Set the configuration <directive> to <value>. urkv can change maxclients, timeout,",
		"    appendfsync, requirepass and protected-mode; the others are fixed at start.",
		"RESETSTAT",
		"    Reset statistics reported by the INFO command.",
		"HELP",
		"    Print this help.",
		"urkv has no CONFIG REWRITE: settings meant to last go in its config file or options.",
	};

	urkv_out_help(c, lines, sizeof(lines) / sizeof(lines[0]));
}

void urkv_config_run(struct urkv_conn *c, struct urkv_slot *s)
{
	const struct resp_arg *sub = &s->argv[1];
	bool fixed = resp_arg_eq_nocase(sub, "HELP") || resp_arg_eq_nocase(sub, "RESETSTAT") ||
		     resp_arg_eq_nocase(sub, "REWRITE");

	if (fixed && s->argc != 2) {
		/* Redis's arity error for a subcommand without arguments, e.g. 'config|help'. */
		char name[16];
		size_t i;

		for (i = 0; i < sub->len && i < sizeof(name) - 1; i++)
			name[i] = (char)(sub->ptr[i] | 0x20);
		name[i] = 0;
		urkv_out_errorf(c, "ERR wrong number of arguments for 'config|%s' command", name);
	} else if (resp_arg_eq_nocase(sub, "HELP")) {
		help_run(c);
	} else if (resp_arg_eq_nocase(sub, "GET")) {
		get_run(c, s);
	} else if (resp_arg_eq_nocase(sub, "SET")) {
		set_run(c, s);
	} else if (resp_arg_eq_nocase(sub, "RESETSTAT")) {
		urkv_stats_reset(urkv_conn_server(c));
		urkv_errstats_reset(urkv_conn_server(c));
		urkv_out_simple(c, "OK");
	} else if (resp_arg_eq_nocase(sub, "REWRITE")) {
		/* Not "unknown subcommand": the operator asked for a real Redis feature. */
		urkv_out_error(c, "ERR urkv has no CONFIG REWRITE: settings meant to last go in its "
				  "config file or on its command line (docs/kv.md)");
	} else {
		urkv_out_errorf(c, "ERR unknown subcommand '%.*s'. Try CONFIG HELP.",
				(int)(s->argv[1].len > 64 ? 64 : s->argv[1].len), s->argv[1].ptr);
	}
}
