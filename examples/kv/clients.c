/*
 * CLIENT: LIST, KILL, INFO, ID, SETNAME, GETNAME, SETINFO, HELP, in Redis's
 * formats.
 *
 * A connection belongs to the core that accepted it and only that core's
 * fibers touch it, so LIST and KILL run a job on every core
 * (urt_core_run, one core after the other) that walks that core's list.
 * CLIENT LIST's line has Redis 7.0's fields in Redis's order; the fields
 * urkv has no equivalent for (pub/sub, MULTI, buffer accounting) carry
 * Redis's values for an idle plain client, so parsers that expect every
 * field find them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "urkv.h"
#include "urt/urt.h"

static void client_line(FILE *f, struct urkv_conn *c, uint64_t now)
{
	struct urkv_client *cl = urkv_conn_client(c);

	fprintf(f, "id=%" PRIu64 " addr=%s laddr=%s fd=%d name=%s age=%" PRIu64 " idle=%" PRIu64
		   " flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=%zu qbuf-free=0 argv-mem=0 "
		   "multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd=%s user=default "
		   "redir=-1 resp=2\n",
		cl->id, cl->addr, cl->laddr, urkv_conn_fd(c), cl->name,
		(uint64_t)((now - cl->created_ns) / 1000000000ull),
		(uint64_t)(urkv_conn_idle_ns(c, now) / 1000000000ull),
		urkv_conn_qbuf(c), cl->last_cmd);
}

/* Which connections a LIST or KILL applies to. */
struct client_filter {
	uint64_t ids[16];		/* ID filter values. */
	unsigned nids;			/* 0: any id. */
	const struct resp_arg *addr;	/* ADDR ip:port, or NULL. */
	const struct resp_arg *laddr;	/* LADDR ip:port, or NULL. */
	bool none;			/* TYPE other than normal, or USER other than default. */
	struct urkv_conn *skip;		/* SKIPME yes: the caller. */
};

static bool arg_eq(const struct resp_arg *a, const char *s)
{
	return a->len == strlen(s) && memcmp(a->ptr, s, a->len) == 0;
}

static bool filter_match(const struct client_filter *fl, struct urkv_conn *c)
{
	struct urkv_client *cl = urkv_conn_client(c);
	bool id_ok = fl->nids == 0;

	if (fl->none || c == fl->skip)
		return false;
	for (unsigned i = 0; i < fl->nids; i++)
		id_ok |= fl->ids[i] == cl->id;
	return id_ok && (!fl->addr || arg_eq(fl->addr, cl->addr)) &&
	       (!fl->laddr || arg_eq(fl->laddr, cl->laddr));
}

struct walk_arg {
	struct urkv_server *srv;	/* Server. */
	const struct client_filter *fl;	/* Which ones. */
	FILE *f;			/* LIST: the text; NULL: KILL. */
	uint64_t now;			/* Clock for age and idle. */
	long long n;			/* Matched (killed). */
};

static int walk_core(void *p)
{
	struct walk_arg *a = p;
	struct urkv_core *cc = &a->srv->cores[urt_core_id()];
	struct urkv_conn *c = urkv_conn_first(cc);

	while (c) {
		struct urkv_conn *next = urkv_conn_next(c);

		if (filter_match(a->fl, c) && !urkv_conn_client(c)->killed) {
			a->n++;
			if (a->f)
				client_line(a->f, c, a->now);
			else
				urkv_conn_kill(c);
		}
		c = next;
	}
	return 0;
}

static long long walk(struct urkv_conn *c, const struct client_filter *fl, FILE *f)
{
	struct urkv_server *srv = urkv_conn_server(c);
	struct walk_arg a = { .srv = srv, .fl = fl, .f = f, .now = urt_clock_ns() };

	for (unsigned i = 0; i < srv->ncores; i++)
		urt_core_run(srv->rt, i, walk_core, &a);
	return a.n;
}

static bool parse_id(const struct resp_arg *a, uint64_t *out)
{
	long long v;

	if (resp_parse_ll(a->ptr, a->len, &v) != 0 || v <= 0)
		return false;
	*out = (uint64_t)v;
	return true;
}

/* A client type Redis knows (CLIENT LIST and KILL TYPE); urkv's clients are all normal. */
static bool type_known(const struct resp_arg *v)
{
	return resp_arg_eq_nocase(v, "normal") || resp_arg_eq_nocase(v, "master") ||
	       resp_arg_eq_nocase(v, "replica") || resp_arg_eq_nocase(v, "slave") ||
	       resp_arg_eq_nocase(v, "pubsub");
}

static void type_error(struct urkv_conn *c, const struct resp_arg *v)
{
	urkv_out_errorf(c, "ERR Unknown client type '%.*s'", (int)(v->len > 64 ? 64 : v->len), v->ptr);
}

static void list_run(struct urkv_conn *c, struct urkv_slot *s)
{
	struct client_filter fl = { 0 };
	char *text = NULL;
	size_t size = 0;
	FILE *f;

	for (size_t i = 2; i < s->argc; i++) {
		if (resp_arg_eq_nocase(&s->argv[i], "TYPE") && i + 1 < s->argc) {
			i++;
			if (!type_known(&s->argv[i])) {
				type_error(c, &s->argv[i]);
				return;
			}
			fl.none |= !resp_arg_eq_nocase(&s->argv[i], "normal");
		} else if (resp_arg_eq_nocase(&s->argv[i], "ID") && i + 1 < s->argc) {
			for (i++; i < s->argc && fl.nids < 16; i++) {
				if (!parse_id(&s->argv[i], &fl.ids[fl.nids++])) {
					urkv_out_error(c, "ERR Invalid client ID");
					return;
				}
			}
		} else {
			urkv_out_error(c, "ERR syntax error");
			return;
		}
	}
	f = open_memstream(&text, &size);
	if (!f) {
		urkv_out_error(c, "ERR out of memory");
		return;
	}
	walk(c, &fl, f);
	fclose(f);
	urkv_out_bulk(c, text, size);
	free(text);
}

/* CLIENT KILL ip:port | CLIENT KILL <ID id | ADDR ip:port | LADDR ip:port | USER u | TYPE t | SKIPME yes/no> ... */
static void kill_run(struct urkv_conn *c, struct urkv_slot *s)
{
	struct client_filter fl = { .skip = c };
	long long n;

	if (s->argc == 3) {
		/* The old form: one address, +OK or an error, the caller included. */
		fl.addr = &s->argv[2];
		fl.skip = NULL;
		if (walk(c, &fl, NULL) == 0)
			urkv_out_error(c, "ERR No such client");
		else
			urkv_out_simple(c, "OK");
		return;
	}
	if (s->argc < 4 || (s->argc - 2) % 2 != 0) {
		urkv_out_error(c, "ERR syntax error");
		return;
	}
	for (size_t i = 2; i < s->argc; i += 2) {
		const struct resp_arg *k = &s->argv[i], *v = &s->argv[i + 1];

		if (resp_arg_eq_nocase(k, "ID")) {
			if (fl.nids == 16 || !parse_id(v, &fl.ids[fl.nids])) {
				urkv_out_error(c, "ERR client-id should be greater than 0");
				return;
			}
			/* Several ID filters must all match: two different ids match nothing. */
			if (fl.nids && fl.ids[0] != fl.ids[fl.nids])
				fl.none = true;
			fl.nids = 1;
		} else if (resp_arg_eq_nocase(k, "ADDR")) {
			fl.addr = v;
		} else if (resp_arg_eq_nocase(k, "LADDR")) {
			fl.laddr = v;
		} else if (resp_arg_eq_nocase(k, "USER")) {
			fl.none |= !arg_eq(v, "default");
		} else if (resp_arg_eq_nocase(k, "TYPE")) {
			if (!type_known(v)) {
				type_error(c, v);
				return;
			}
			fl.none |= !resp_arg_eq_nocase(v, "normal");
		} else if (resp_arg_eq_nocase(k, "SKIPME")) {
			if (resp_arg_eq_nocase(v, "yes"))
				fl.skip = c;
			else if (resp_arg_eq_nocase(v, "no"))
				fl.skip = NULL;
			else {
				urkv_out_error(c, "ERR syntax error");
				return;
			}
		} else {
			urkv_out_error(c, "ERR syntax error");
			return;
		}
	}
	n = walk(c, &fl, NULL);
	urkv_out_int(c, n);
}

static void setname_run(struct urkv_conn *c, struct urkv_slot *s)
{
	struct urkv_client *cl = urkv_conn_client(c);
	const struct resp_arg *name = &s->argv[2];

	if (s->argc != 3) {
		urkv_out_error(c, "ERR wrong number of arguments for 'client|setname' command");
		return;
	}
	for (size_t i = 0; i < name->len; i++)
		if (name->ptr[i] <= ' ' || name->ptr[i] > '~') {
			urkv_out_error(c, "ERR Client names cannot contain spaces, newlines or special "
					  "characters.");
			return;
		}
	if (name->len >= sizeof(cl->name)) {
		urkv_out_errorf(c, "ERR urkv client names are at most %zu bytes", sizeof(cl->name) - 1);
		return;
	}
	memcpy(cl->name, name->ptr, name->len);
	cl->name[name->len] = 0;
	urkv_out_simple(c, "OK");
}

static void help_run(struct urkv_conn *c)
{
	static const char *const lines[] = {
		"CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
		"GETNAME",
		"    Return the name of the current connection.",
		"ID",
		"    Return the ID of the current connection.",
		"INFO",
		"    Return information about the current client connection.",
		"KILL <ip:port>",
		"    Kill connection made from <ip:port>.",
		"KILL <option> <value> [<option> <value> [...]]",
		"    Kill connections. Options are:",
		"    * ADDR (<ip:port>|<unixsocket>:0)",
		"      Kill connections made from the specified address",
		"    * LADDR (<ip:port>|<unixsocket>:0)",
		"      Kill connections made to specified local address",
		"    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
		"      Kill connections by type.",
		"    * USER <username>",
		"      Kill connections authenticated by <username>.",
		"    * SKIPME (YES|NO)",
		"      Skip killing current connection (default: yes).",
		"    * ID <client-id>",
		"      Kill connections by client id.",
		"LIST [TYPE (NORMAL|MASTER|REPLICA|PUBSUB)] [ID <client-id> [...]]",
		"    Return information about client connections. urkv's clients are all NORMAL.",
		"SETINFO <option> <value>",
		"    Accepted (LIB-NAME, LIB-VER) and not shown.",
		"SETNAME <name>",
		"    Assign the name <name> to the current connection.",
		"HELP",
		"    Print this help.",
	};

	urkv_out_help(c, lines, sizeof(lines) / sizeof(lines[0]));
}

void urkv_client_run(struct urkv_conn *c, struct urkv_slot *s)
{
	struct urkv_client *cl = urkv_conn_client(c);
	const struct resp_arg *sub = &s->argv[1];

	if (resp_arg_eq_nocase(sub, "LIST")) {
		list_run(c, s);
	} else if (resp_arg_eq_nocase(sub, "KILL")) {
		kill_run(c, s);
	} else if (resp_arg_eq_nocase(sub, "SETNAME")) {
		setname_run(c, s);
	} else if (resp_arg_eq_nocase(sub, "GETNAME")) {
		if (cl->name[0])
			urkv_out_bulk(c, cl->name, strlen(cl->name));
		else
			urkv_out_null(c);
	} else if (resp_arg_eq_nocase(sub, "ID")) {
		urkv_out_int(c, (long long)cl->id);
	} else if (resp_arg_eq_nocase(sub, "INFO")) {
		char *text = NULL;
		size_t size = 0;
		FILE *f = open_memstream(&text, &size);

		if (!f) {
			urkv_out_error(c, "ERR out of memory");
			return;
		}
		client_line(f, c, urt_clock_ns());
		fclose(f);
		urkv_out_bulk(c, text, size);
		free(text);
	} else if (resp_arg_eq_nocase(sub, "HELP") && s->argc == 2) {
		help_run(c);
	} else if (resp_arg_eq_nocase(sub, "SETINFO")) {
		/* lib-name / lib-ver: accepted, not shown (as Redis 7.0, which lacks them, would refuse). */
		urkv_out_simple(c, "OK");
	} else {
		urkv_out_errorf(c, "ERR unknown subcommand '%.*s'. Try CLIENT HELP.",
				(int)(sub->len > 64 ? 64 : sub->len), sub->ptr);
	}
}
