/*
 * The client side of Redis Cluster on a urkv node: where each keyed
 * command may run (urkv_cluster_route: -MOVED, -ASK, -CROSSSLOT,
 * -CLUSTERDOWN, -TRYAGAIN with Redis 7.0's exact texts) and the commands
 * CLUSTER, CLUSTERX, ASKING, READONLY and READWRITE.
 *
 * The route follows Redis's getNodeByQuery, with one difference the
 * contract (CLUSTER-SPEC.md) asks for: on the source of a MIGRATING slot a
 * multi-key command with some keys present and some missing gets
 * -TRYAGAIN (Redis answers -ASK; both make the client retry, and a later
 * try finds all the keys on one side).  The first key's slot decides; a
 * command whose first key's slot has no owner is -CLUSTERDOWN before the
 * other keys are looked at, as in Redis.
 *
 * A slot maps to a shard exactly as its keys do (urt_kv_shard_of of each
 * key): the cluster adds no layer inside the node.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cluster.h"
#include "base/assert.h"
#include "base/clock.h"
#include "cmd_ext.h"
#include "urt/urt.h"

#define E_DISABLED "ERR This instance has cluster support disabled"
#define KEYSPEC_MAX 256u	/* Commands the key table covers. */

/* Where a command's keys are: argv[first], then every step up to last (-1: the end). */
struct keyspec {
	uint8_t first;	/* 0: no keys. */
	int8_t last;	/* Index, or -1 for the last argument. */
	uint8_t step;	/* Distance between keys. */
};

static struct keyspec specs[KEYSPEC_MAX];

/* Commands whose keys are not just argv[1]; every other command's key is argv[1]. */
static const struct {
	const char *name;
	struct keyspec spec;
} special[] = {
	{ "mget", { 1, -1, 1 } }, { "exists", { 1, -1, 1 } }, { "del", { 1, -1, 1 } },
	{ "unlink", { 1, -1, 1 } }, { "touch", { 1, -1, 1 } }, { "mset", { 1, -1, 2 } },
	{ "msetnx", { 1, -1, 2 } }, { "rename", { 1, 2, 1 } }, { "renamenx", { 1, 2, 1 } },
	{ "copy", { 1, 2, 1 } },
	/* No keys. */
	{ "ping", { 0, 0, 0 } }, { "echo", { 0, 0, 0 } }, { "quit", { 0, 0, 0 } },
	{ "dbsize", { 0, 0, 0 } }, { "scan", { 0, 0, 0 } }, { "flushall", { 0, 0, 0 } },
	{ "flushdb", { 0, 0, 0 } }, { "save", { 0, 0, 0 } }, { "info", { 0, 0, 0 } },
	{ "select", { 0, 0, 0 } }, { "config", { 0, 0, 0 } }, { "client", { 0, 0, 0 } },
	{ "command", { 0, 0, 0 } }, { "nosync", { 0, 0, 0 } }, { "debug", { 0, 0, 0 } },
	{ "keys", { 0, 0, 0 } }, { "randomkey", { 0, 0, 0 } }, { "auth", { 0, 0, 0 } },
	{ "hello", { 0, 0, 0 } }, { "shutdown", { 0, 0, 0 } }, { "latency", { 0, 0, 0 } },
	{ "cluster", { 0, 0, 0 } }, { "clusterx", { 0, 0, 0 } }, { "asking", { 0, 0, 0 } },
	{ "readonly", { 0, 0, 0 } }, { "readwrite", { 0, 0, 0 } }, { "time", { 0, 0, 0 } },
	{ "lastsave", { 0, 0, 0 } },
	/* MIGRATE moves what this node holds: it is never redirected (Redis runs it locally
	 * whenever the slot is open, which is when the tool calls it). */
	{ "migrate", { 0, 0, 0 } },
};

void urkv_cluster_keys_init(void)
{
	unsigned n = urkv_cmd_count();

	URT_ASSERT(n <= KEYSPEC_MAX);
	for (unsigned i = 0; i < n; i++) {
		const char *name = urkv_cmd_at(i)->name;

		specs[i] = (struct keyspec){ 1, 1, 1 };
		for (size_t j = 0; j < sizeof(special) / sizeof(special[0]); j++)
			if (strcmp(special[j].name, name) == 0)
				specs[i] = special[j].spec;
	}
}

void urkv_cmd_keys(const struct urkv_cmd *cmd, int *first, int *last, int *step)
{
	struct keyspec ks = specs[urkv_cmd_index(cmd)];

	*first = ks.first;
	*last = ks.first ? ks.last : 0;
	*step = ks.step;
}

static bool arg_is(const struct resp_arg *a, const char *name)
{
	return resp_arg_eq_nocase(a, name);
}

/* How many of the keys exist (the ones urkv cannot hold count as missing).  Blocks. */
static unsigned keys_present(struct urkv_conn *c, const struct urkv_slot *s, struct keyspec ks,
			     size_t last)
{
	struct urt_kv *kv = urkv_conn_server(c)->kv;
	unsigned n = 0;

	urkv_conn_wait(c);	/* The connection's own writes in flight land first. */
	for (size_t i = ks.first; i <= last; i += ks.step)
		if (!urkv_key_error(&s->argv[i]) &&
		    urt_kv_exists(kv, s->argv[i].ptr, s->argv[i].len) == 1)
			n++;
	return n;
}

static const char *cluster_route(struct urkv_conn *c, struct urkv_slot *s);

#define GATE_WAIT_NS 200000ull	/* Sleep of a command waiting for a MIGRATE of its slot. */

/*
 * Admits a command on slot (see cluster.h).  The two counters are seq_cst
 * atomics used as in Dekker's algorithm: a command raises active, then
 * looks at hold; MIGRATE raises hold, then looks at active.  At least one
 * of them sees the other, so a command never runs while a MIGRATE of its
 * slot reads, sends or deletes keys.
 */
static void gate_enter(struct urkv_conn *c, struct urkv_cluster *cl, unsigned slot)
{
	for (;;) {
		if (atomic_load(&cl->hold[slot]) == 0) {
			atomic_fetch_add(&cl->active[slot], 1);
			if (atomic_load(&cl->hold[slot]) == 0)
				return;
			atomic_fetch_sub(&cl->active[slot], 1);
		}
		/* Finish and let go of what this connection holds, so the MIGRATE can drain. */
		urkv_conn_release_gates(c);
		urt_sleep_ns(GATE_WAIT_NS);
	}
}

void urkv_cluster_gate_exit(struct urkv_server *srv, unsigned gate)
{
	URT_ASSERT(gate >= 1 && gate <= URKV_SLOTS);
	atomic_fetch_sub(&srv->cluster->active[gate - 1], 1);
}

int urkv_cluster_hold(struct urkv_server *srv, const unsigned *slots, unsigned n, uint64_t deadline_ns)
{
	struct urkv_cluster *cl = srv->cluster;

	for (unsigned i = 0; i < n; i++)
		atomic_fetch_add(&cl->hold[slots[i]], 1);
	for (unsigned i = 0; i < n; i++)
		while (atomic_load(&cl->active[slots[i]]) != 0) {
			if (urt_clock_ns() > deadline_ns) {
				urkv_cluster_unhold(srv, slots, n);
				return -ETIMEDOUT;
			}
			urt_sleep_ns(GATE_WAIT_NS / 4);
		}
	return 0;
}

void urkv_cluster_unhold(struct urkv_server *srv, const unsigned *slots, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		atomic_fetch_sub(&srv->cluster->hold[slots[i]], 1);
}

const char *urkv_cluster_route(struct urkv_conn *c, struct urkv_slot *s)
{
	const char *err = cluster_route(c, s);

	if (err && s->gate) {
		urkv_cluster_gate_exit(urkv_conn_server(c), s->gate);
		s->gate = 0;
	}
	return err;
}

static const char *cluster_route(struct urkv_conn *c, struct urkv_slot *s)
{
	struct urkv_server *srv = urkv_conn_server(c);
	struct urkv_client *cl = urkv_conn_client(c);
	struct keyspec ks = specs[urkv_cmd_index(s->cmd)];
	bool asking = cl->asking, cross = false;
	const struct urkv_topo *t;
	unsigned slot = 0, nkeys = 0, present;
	char ip[64];
	int owner, to;
	uint16_t port;
	size_t last;

	cl->asking = false;	/* ASKING lasts one command. */
	if (ks.first == 0 || ks.first >= s->argc)
		return NULL;
	last = ks.last < 0 ? s->argc - 1 : (size_t)ks.last;
	if (last >= s->argc)
		last = s->argc - 1;
	for (size_t i = ks.first; i <= last; i += ks.step) {
		unsigned sl = urkv_key_slot(s->argv[i].ptr, s->argv[i].len);

		if (nkeys++ == 0)
			slot = sl;
		else if (sl != slot)
			cross = true;
	}
	if (s->cmd->run == urkv_restore_run && arg_is(&s->argv[0], "restore-asking"))
		asking = true;	/* MIGRATE's RESTORE-ASKING carries its own ASKING. */
	if (!cross) {
		gate_enter(c, srv->cluster, slot);	/* May wait for a MIGRATE of the slot. */
		s->gate = slot + 1;
	}
	t = urkv_cluster_topo(srv);
	owner = t->owner[slot];
	if (owner < 0)
		return "CLUSTERDOWN Hash slot not served";
	if (cross)
		return "CROSSSLOT Keys in request don't hash to the same slot";
	if (owner == t->me) {
		to = t->migrating[slot];
		if (to < 0)
			return NULL;
		/* Copy what the reply needs: t must not be held across the lookups. */
		snprintf(ip, sizeof(ip), "%s", t->nodes[to].ip);
		port = t->nodes[to].port;
		present = keys_present(c, s, ks, last);
		if (present == nkeys)
			return NULL;
		if (present == 0) {
			snprintf(s->errbuf, sizeof(s->errbuf), "ASK %u %s:%u", slot, ip, port);
			return s->errbuf;
		}
		return "TRYAGAIN Multiple keys request during rehashing of slot";
	}
	if (t->importing[slot] >= 0 && asking) {
		if (nkeys > 1 && keys_present(c, s, ks, last) != nkeys)
			return "TRYAGAIN Multiple keys request during rehashing of slot";
		return NULL;
	}
	snprintf(s->errbuf, sizeof(s->errbuf), "MOVED %u %s:%u", slot, t->nodes[owner].ip,
		 t->nodes[owner].port);
	return s->errbuf;
}

/* CLUSTER subcommands. */

static unsigned served_slots(const struct urkv_topo *t, unsigned *masters)
{
	unsigned n = 0;
	bool *has = calloc(t->nnodes ? t->nnodes : 1, sizeof(*has));

	*masters = 0;
	for (unsigned s = 0; s < URKV_SLOTS; s++)
		if (t->owner[s] >= 0) {
			n++;
			if (has && !has[t->owner[s]]) {
				has[t->owner[s]] = true;
				(*masters)++;
			}
		}
	free(has);
	return n;
}

static void out_text(struct urkv_conn *c, char *text, size_t len)
{
	if (!text) {
		urkv_out_error(c, "ERR out of memory");
		return;
	}
	urkv_out_bulk(c, text, len);
	free(text);
}

static void cluster_info(struct urkv_conn *c, const struct urkv_topo *t)
{
	unsigned masters, slots = served_slots(t, &masters);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f) {
		urkv_out_error(c, "ERR out of memory");
		return;
	}
	fprintf(f, "cluster_state:%s\r\ncluster_slots_assigned:%u\r\ncluster_slots_ok:%u\r\n"
		   "cluster_slots_pfail:0\r\ncluster_slots_fail:0\r\ncluster_known_nodes:%u\r\n"
		   "cluster_size:%u\r\ncluster_current_epoch:%" PRIu64 "\r\n"
		   "cluster_my_epoch:%" PRIu64 "\r\ncluster_stats_messages_sent:0\r\n"
		   "cluster_stats_messages_received:0\r\n"
		   "total_cluster_links_buffer_limit_exceeded:0\r\n"
		   "urkv_cluster_version:%" PRIu64 "\r\n",
		slots == URKV_SLOTS ? "ok" : "fail", slots, slots, t->nnodes + (t->me < 0),
		masters, t->version, t->version, t->version);
	if (fclose(f) != 0) {
		free(text);
		text = NULL;
	}
	out_text(c, text, len);
}

static void cluster_nodes(struct urkv_conn *c, const struct urkv_topo *t)
{
	struct urkv_server *srv = urkv_conn_server(c);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f) {
		urkv_out_error(c, "ERR out of memory");
		return;
	}
	if (t->me < 0)
		/* Not in the pushed topology (yet): itself, serving nothing. */
		fprintf(f, "%s %s:%u@%u myself,master - 0 0 %" PRIu64 " connected\n",
			srv->cluster->myid, srv->o.bind_addr, srv->port, srv->port + 10000u, t->version);
	for (unsigned i = 0; i < t->nnodes; i++) {
		const struct urkv_cnode *n = &t->nodes[i];
		bool me = (int)i == t->me;

		fprintf(f, "%s %s:%u@%u %s - 0 0 %" PRIu64 " connected", n->id, n->ip, n->port,
			n->port + 10000u, me ? "myself,master" : "master", t->version);
		urkv_topo_ranges(t, (int)i, f);
		for (unsigned s = 0; me && s < URKV_SLOTS; s++) {
			if (t->migrating[s] >= 0)
				fprintf(f, " [%u->-%s]", s, t->nodes[t->migrating[s]].id);
			if (t->importing[s] >= 0)
				fprintf(f, " [%u-<-%s]", s, t->nodes[t->importing[s]].id);
		}
		fputc('\n', f);
	}
	if (fclose(f) != 0) {
		free(text);
		text = NULL;
	}
	out_text(c, text, len);
}

static void out_str(struct urkv_conn *c, const char *s)
{
	urkv_out_bulk(c, s, strlen(s));
}

static void cluster_slots(struct urkv_conn *c, const struct urkv_topo *t)
{
	unsigned nranges = 0;

	for (unsigned s = 0; s < URKV_SLOTS; s++)
		if (t->owner[s] >= 0 && (s == 0 || t->owner[s - 1] != t->owner[s]))
			nranges++;
	urkv_out_array(c, nranges);
	for (unsigned s = 0; s < URKV_SLOTS; s++) {
		const struct urkv_cnode *n;
		unsigned e = s;

		if (t->owner[s] < 0)
			continue;
		while (e + 1 < URKV_SLOTS && t->owner[e + 1] == t->owner[s])
			e++;
		n = &t->nodes[t->owner[s]];
		urkv_out_array(c, 3);
		urkv_out_int(c, s);
		urkv_out_int(c, e);
		urkv_out_array(c, 4);
		out_str(c, n->ip);
		urkv_out_int(c, n->port);
		out_str(c, n->id);
		urkv_out_array(c, 0);	/* Redis 7.0's networking metadata: none. */
		s = e;
	}
}

static void cluster_shards(struct urkv_conn *c, const struct urkv_topo *t)
{
	urkv_out_array(c, t->nnodes);
	for (unsigned i = 0; i < t->nnodes; i++) {
		const struct urkv_cnode *n = &t->nodes[i];
		unsigned nr = 0;

		for (unsigned s = 0; s < URKV_SLOTS; s++)
			if (t->owner[s] == (int)i && (s == 0 || t->owner[s - 1] != (int)i))
				nr++;
		urkv_out_array(c, 4);
		out_str(c, "slots");
		urkv_out_array(c, 2 * nr);
		for (unsigned s = 0; s < URKV_SLOTS; s++) {
			unsigned e = s;

			if (t->owner[s] != (int)i)
				continue;
			while (e + 1 < URKV_SLOTS && t->owner[e + 1] == (int)i)
				e++;
			urkv_out_int(c, s);
			urkv_out_int(c, e);
			s = e;
		}
		out_str(c, "nodes");
		urkv_out_array(c, 1);
		urkv_out_array(c, 14);
		out_str(c, "id");
		out_str(c, n->id);
		out_str(c, "port");
		urkv_out_int(c, n->port);
		out_str(c, "ip");
		out_str(c, n->ip);
		out_str(c, "endpoint");
		out_str(c, n->ip);
		out_str(c, "role");
		out_str(c, "master");
		out_str(c, "replication-offset");
		urkv_out_int(c, 0);
		out_str(c, "health");
		out_str(c, "online");
	}
}

static bool slot_arg(const struct resp_arg *a, unsigned *slot)
{
	long long v;

	if (!urkv_arg_ll(a, &v) || v < 0 || v >= URKV_SLOTS)
		return false;
	*slot = (unsigned)v;
	return true;
}

/*
 * Keys of one slot: a scan of the whole store with the slot as a filter
 * (keys are ordered by key, not by slot: docs/kv.md gives the cost).
 */
static bool slot_keep(const void *arg, const char *key, size_t klen)
{
	return urkv_key_slot(key, klen) == *(const unsigned *)arg;
}

/* The action of SETSLOT / SETSLOTS at argv[at..]: 0, or -1 after writing the error. */
static int setslot_action(struct urkv_conn *c, struct urkv_slot *s, size_t at,
			  enum urkv_slot_state *st, const struct resp_arg **id)
{
	*id = NULL;
	if (at < s->argc && arg_is(&s->argv[at], "stable") && s->argc == at + 1) {
		*st = URKV_SLOT_STABLE;
	} else if (at < s->argc && arg_is(&s->argv[at], "migrating") && s->argc == at + 2) {
		*st = URKV_SLOT_MIGRATING;
		*id = &s->argv[at + 1];
	} else if (at < s->argc && arg_is(&s->argv[at], "importing") && s->argc == at + 2) {
		*st = URKV_SLOT_IMPORTING;
		*id = &s->argv[at + 1];
	} else if (at < s->argc && arg_is(&s->argv[at], "node")) {
		urkv_out_error(c, "ERR CLUSTER SETSLOT NODE is not supported by urkv: slots change "
				  "owner with CLUSTERX SETNODES and a higher version (urkv-cluster)");
		return -1;
	} else {
		urkv_out_error(c, "ERR Invalid CLUSTER SETSLOT action or number of arguments. Try "
				  "CLUSTER HELP");
		return -1;
	}
	return 0;
}

static void setslot_apply(struct urkv_conn *c, const unsigned *slots, unsigned n,
			  enum urkv_slot_state st, const struct resp_arg *id)
{
	char buf[512];
	const char *err = urkv_cluster_setslot(urkv_conn_server(c), slots, n, st,
					       id ? id->ptr : NULL, id ? id->len : 0, buf, sizeof(buf));

	if (err)
		urkv_out_error(c, err);
	else
		urkv_out_simple(c, "OK");
}

/* CLUSTER SETSLOT <slot> IMPORTING|MIGRATING <node-id> | STABLE */
static void cluster_setslot(struct urkv_conn *c, struct urkv_slot *s)
{
	enum urkv_slot_state st;
	const struct resp_arg *id;
	unsigned slot;

	if (s->argc < 4) {
		urkv_out_error(c, "ERR wrong number of arguments for 'cluster|setslot' command");
		return;
	}
	if (!slot_arg(&s->argv[2], &slot)) {
		urkv_out_error(c, "ERR Invalid or out of range slot");
		return;
	}
	if (setslot_action(c, s, 3, &st, &id) == 0)
		setslot_apply(c, &slot, 1, st, id);
}

/*
 * CLUSTERX SETSLOTS <slot>|<start>-<end> ... IMPORTING|MIGRATING <node-id> | STABLE:
 * urkv's batch form of CLUSTER SETSLOT, one cluster file write for all the
 * slots (a reshard of thousands of slots otherwise pays one durable write
 * per slot and node).  All or nothing.
 */
static void clusterx_setslots(struct urkv_conn *c, struct urkv_slot *s)
{
	unsigned *slots = malloc(URKV_SLOTS * sizeof(*slots)), n = 0;
	bool *seen = calloc(URKV_SLOTS, sizeof(*seen));
	const struct resp_arg *id;
	enum urkv_slot_state st;
	size_t at = 2;

	if (!slots || !seen) {
		urkv_out_error(c, "ERR out of memory");
		goto out;
	}
	for (; at < s->argc; at++) {
		const struct resp_arg *a = &s->argv[at];
		const char *dash = memchr(a->ptr, '-', a->len);
		struct resp_arg lo = *a, hi = *a;
		unsigned from, to;

		if (a->len && (a->ptr[0] < '0' || a->ptr[0] > '9'))
			break;	/* The action. */
		if (dash) {
			lo.len = (size_t)(dash - a->ptr);
			hi.ptr = dash + 1;
			hi.len = a->len - lo.len - 1;
		}
		if (!slot_arg(&lo, &from) || !slot_arg(&hi, &to) || from > to) {
			urkv_out_errorf(c, "ERR Invalid slot or range '%.*s' (slots are 0..16383)",
					(int)(a->len > 32 ? 32 : a->len), a->ptr);
			goto out;
		}
		for (unsigned sl = from; sl <= to; sl++)
			if (!seen[sl]) {
				seen[sl] = true;
				slots[n++] = sl;
			}
	}
	if (n == 0 || at == s->argc) {
		urkv_out_error(c, "ERR wrong number of arguments for 'clusterx|setslots' command");
		goto out;
	}
	if (setslot_action(c, s, at, &st, &id) == 0)
		setslot_apply(c, slots, n, st, id);
out:
	free(slots);
	free(seen);
}

/* Redis's subcommands urkv does not have: the topology is pushed, and there are no replicas. */
static const char *const unsupported[] = {
	"meet", "addslots", "addslotsrange", "delslots", "delslotsrange", "flushslots",
	"forget", "replicate", "failover", "reset", "saveconfig", "bumpepoch",
	"set-config-epoch", "count-failure-reports", "replicas", "slaves", "links",
	"myshardid",
};

static void cluster_help(struct urkv_conn *c)
{
	static const char *const lines[] = {
		"CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
		"COUNTKEYSINSLOT <slot>", "GETKEYSINSLOT <slot> <count>", "INFO",
		"KEYSLOT <key>", "MYID", "NODES", "SETSLOT <slot> (IMPORTING <node-id>|MIGRATING <node-id>|STABLE)", "SHARDS", "SLOTS", "HELP",
		"urkv: the topology is pushed with CLUSTERX SETNODES <topology> <version>",
	};

	urkv_out_help(c, lines, sizeof(lines) / sizeof(lines[0]));
}

/* Subcommand sub with want arguments in all (argc), else the arity error.  True: run it. */
static bool sub_is(struct urkv_conn *c, struct urkv_slot *s, const char *sub, size_t want)
{
	if (!arg_is(&s->argv[1], sub))
		return false;
	if (s->argc != want) {
		urkv_out_errorf(c, "ERR wrong number of arguments for '%s|%s' command",
				arg_is(&s->argv[0], "clusterx") ? "clusterx" : "cluster", sub);
		return false;
	}
	return true;
}

void urkv_cluster_run(struct urkv_conn *c, struct urkv_slot *s)
{
	struct urkv_server *srv = urkv_conn_server(c);
	const struct resp_arg *sub = &s->argv[1];
	unsigned errs = urkv_conn_client(c)->errors_out;
	unsigned slot;
	long long count;

	if (!srv->cluster) {
		urkv_out_error(c, E_DISABLED);
		return;
	}
	if (sub_is(c, s, "info", 2)) {
		cluster_info(c, urkv_cluster_topo(srv));
	} else if (sub_is(c, s, "myid", 2)) {
		urkv_out_bulk(c, srv->cluster->myid, URKV_NODE_ID_LEN);
	} else if (sub_is(c, s, "nodes", 2)) {
		cluster_nodes(c, urkv_cluster_topo(srv));
	} else if (sub_is(c, s, "slots", 2) || sub_is(c, s, "shards", 2)) {
		/* These replies may flush (and yield) while written: from a private copy. */
		struct urkv_topo *t = urkv_cluster_topo_copy(srv);

		if (!t)
			urkv_out_error(c, "ERR out of memory");
		else if (arg_is(sub, "slots"))
			cluster_slots(c, t);
		else
			cluster_shards(c, t);
		urkv_topo_free(t);
	} else if (sub_is(c, s, "keyslot", 3)) {
		urkv_out_int(c, urkv_key_slot(s->argv[2].ptr, s->argv[2].len));
	} else if (sub_is(c, s, "countkeysinslot", 3)) {
		if (!slot_arg(&s->argv[2], &slot))
			urkv_out_error(c, "ERR Invalid slot");
		else
			urkv_keys_reply(c, slot_keep, &slot, UINT64_MAX, false);
	} else if (sub_is(c, s, "getkeysinslot", 4)) {
		if (!slot_arg(&s->argv[2], &slot) || !urkv_arg_ll(&s->argv[3], &count) || count < 0)
			urkv_out_error(c, "ERR Invalid slot or number of keys");
		else
			urkv_keys_reply(c, slot_keep, &slot, (uint64_t)count, true);
	} else if (arg_is(sub, "setslot")) {
		cluster_setslot(c, s);
	} else if (sub_is(c, s, "help", 2)) {
		cluster_help(c);
	} else if (urkv_conn_client(c)->errors_out == errs) {
		for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++)
			if (arg_is(sub, unsupported[i])) {
				urkv_out_errorf(c, "ERR CLUSTER %s is not supported by urkv: the topology "
						"is pushed with CLUSTERX SETNODES (urkv-cluster), and urkv "
						"has no replicas or failover", unsupported[i]);
				return;
			}
		urkv_out_errorf(c, "ERR unknown subcommand '%.*s'. Try CLUSTER HELP.",
				(int)(sub->len > 64 ? 64 : sub->len), sub->ptr);
	}
}

void urkv_clusterx_run(struct urkv_conn *c, struct urkv_slot *s)
{
	struct urkv_server *srv = urkv_conn_server(c);
	const struct resp_arg *sub = &s->argv[1];
	unsigned errs = urkv_conn_client(c)->errors_out;

	if (!srv->cluster) {
		urkv_out_error(c, E_DISABLED);
		return;
	}
	if (sub_is(c, s, "setnodes", 4)) {
		char buf[512];
		const char *err = urkv_cluster_setnodes(srv, s->argv[2].ptr, s->argv[2].len,
							s->argv[3].ptr, s->argv[3].len, buf, sizeof(buf));

		if (err)
			urkv_out_error(c, err);
		else
			urkv_out_simple(c, "OK");
	} else if (arg_is(sub, "setslots")) {
		clusterx_setslots(c, s);
	} else if (sub_is(c, s, "version", 2)) {
		urkv_out_int(c, (long long)urkv_cluster_topo(srv)->version);
	} else if (sub_is(c, s, "myid", 2)) {
		urkv_out_bulk(c, srv->cluster->myid, URKV_NODE_ID_LEN);
	} else if (urkv_conn_client(c)->errors_out == errs) {
		urkv_out_errorf(c, "ERR unknown subcommand '%.*s'. Try CLUSTERX SETNODES, SETSLOTS, VERSION or MYID.",
				(int)(sub->len > 64 ? 64 : sub->len), sub->ptr);
	}
}

/* Sets one of the client's cluster flags (ASKING, READONLY, READWRITE). */
static void client_flag(struct urkv_conn *c, bool *flag, bool v)
{
	if (!urkv_conn_server(c)->cluster) {
		urkv_out_error(c, E_DISABLED);
		return;
	}
	*flag = v;
	urkv_out_simple(c, "OK");
}

void urkv_asking_run(struct urkv_conn *c, struct urkv_slot *s)
{
	(void)s;
	client_flag(c, &urkv_conn_client(c)->asking, true);
}

void urkv_readonly_run(struct urkv_conn *c, struct urkv_slot *s)
{
	(void)s;
	client_flag(c, &urkv_conn_client(c)->readonly, true);
}

void urkv_readwrite_run(struct urkv_conn *c, struct urkv_slot *s)
{
	(void)s;
	client_flag(c, &urkv_conn_client(c)->readonly, false);
}
