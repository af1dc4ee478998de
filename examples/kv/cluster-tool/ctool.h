/* urkv-cluster: the topology manager of a urkv cluster (docs/kv.md, "Cluster").
 *
 * The tool talks to every node over its Redis port with hiredis.  There is
 * no gossip: a node knows the topology the tool last pushed to it with
 * CLUSTERX SETNODES, and the tool reads each node's own view back with
 * CLUSTER NODES and CLUSTERX VERSION.  Files, one concept each:
 *   main.c     command line, dispatch, exit status;
 *   node.c     one connection: connect, AUTH, commands, errors naming the node;
 *   topo.c     a topology: parse CLUSTER NODES, format SETNODES, compare;
 *   cluster.c  every node of a cluster: discovery, views, pushing a topology;
 *   create.c   create;
 *   check.c    info and check;
 *   slot.c     the hash slot of a key (CRC16);
 *   scan.c     every key of a node, through SCAN;
 *   move.c     moving slots' keys (used by reshard and fix);
 *   reshard.c  reshard;
 *   fix.c      fix.
 */
#ifndef URKV_CLUSTER_TOOL_H
#define URKV_CLUSTER_TOOL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <hiredis/hiredis.h>

/* Redis Cluster's number of hash slots. */
#define CT_SLOTS 16384
/* The most nodes one cluster may have (a bound for the fixed arrays). */
#define CT_NODES_MAX 256
/* A node id: 40 lowercase hex characters. */
#define CT_ID_LEN 40

/* Exit status: success, a problem of the cluster, a usage error. */
enum { CT_EXIT_OK = 0, CT_EXIT_CLUSTER = 1, CT_EXIT_USAGE = 2 };

/* Options shared by every command. */
struct ct_opts {
	const char *password;		/* AUTH password, or NULL. */
	int timeout_ms;			/* Per-command socket timeout. */
	int migrate_timeout_ms;		/* MIGRATE's own timeout argument. */
	int batch;			/* Most keys per MIGRATE (and per GETKEYSINSLOT). */
	int slots_per_round;		/* reshard: slots moved per SCAN and topology push. */
	bool quiet;			/* Only errors and the final summary. */
};

/* One node as the topology names it. */
struct ct_addr {
	char id[CT_ID_LEN + 1];		/* Node id. */
	char ip[64];			/* Address clients are redirected to. */
	int port;			/* Redis port. */
};

/* A topology: the nodes and the owner of every slot. */
struct ct_topo {
	uint64_t version;		/* CLUSTERX SETNODES version (0: none yet). */
	int n;				/* Number of nodes in node[]. */
	struct ct_addr node[CT_NODES_MAX]; /* The nodes, in the order pushed. */
	int16_t owner[CT_SLOTS];	/* Index into node[] of each slot's owner, or -1. */
};

/* One node's view of the cluster, as it reports it. */
struct ct_view {
	struct ct_topo topo;		/* Its topology. */
	int self;			/* Index of the node itself in topo.node[], or -1. */
	int16_t migrating[CT_SLOTS];	/* Per slot: index of the MIGRATING target, or -1. */
	int16_t importing[CT_SLOTS];	/* Per slot: index of the IMPORTING source, or -1. */
	long long keys;			/* DBSIZE. */
};

/* A connection to one node. */
struct ct_node {
	redisContext *ctx;		/* hiredis connection, NULL when unreachable. */
	char name[96];			/* "ip:port", used in every message. */
	char ip[64];			/* Address connected to. */
	int port;			/* Port connected to. */
	char id[CT_ID_LEN + 1];		/* Its CLUSTER MYID. */
	int timeout_ms;			/* Socket timeout of each command (--timeout). */
};

/* A cluster as seen from all of its nodes. */
struct ct_cluster {
	const struct ct_opts *opts;	/* Options (password, timeouts). */
	int n;				/* Number of nodes in node[]/view[]. */
	struct ct_node node[CT_NODES_MAX]; /* Connections, in discovery order. */
	struct ct_view *view[CT_NODES_MAX]; /* Each node's view (NULL if unread). */
	struct ct_topo *ref;		/* The newest topology seen (owned copy). */
};

/* True if ctx's last failure was a socket timeout: SO_RCVTIMEO makes the
 * read fail with EAGAIN, which hiredis 0.14 and 1.x report as the I/O error
 * "Resource temporarily unavailable"; hiredis 1.1 and later may name it
 * REDIS_ERR_TIMEOUT. */
static inline bool ct_ctx_timed_out(const redisContext *ctx)
{
#ifdef REDIS_ERR_TIMEOUT
	if (ctx->err == REDIS_ERR_TIMEOUT)
		return true;
#endif
	return ctx->err == REDIS_ERR_IO &&
	       (strcmp(ctx->errstr, strerror(EAGAIN)) == 0 || strcmp(ctx->errstr, strerror(EWOULDBLOCK)) == 0);
}

/* node.c */
/* Why the last command on node failed: hiredis's text, or a timeout said as one, naming the limit. */
const char *ct_node_failure(const struct ct_node *node, char *buf, size_t len);
int ct_node_open(struct ct_node *node, const char *ip, int port, const struct ct_opts *opts);
void ct_node_close(struct ct_node *node);
redisReply *ct_node_cmd(struct ct_node *node, int argc, const char **argv, const size_t *len);
redisReply *ct_node_cmdf(struct ct_node *node, const char *fmt, ...);
int ct_node_expect_ok(struct ct_node *node, redisReply *reply, const char *what);
int ct_node_read_view(struct ct_node *node, struct ct_view *view);
int ct_parse_hostport(const char *arg, char *ip, size_t ip_len, int *port);
void ct_err(const struct ct_node *node, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ct_say(const struct ct_opts *opts, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* topo.c */
void ct_topo_init(struct ct_topo *topo);
int ct_topo_find(const struct ct_topo *topo, const char *id);
int ct_topo_add(struct ct_topo *topo, const char *id, const char *ip, int port);
int ct_view_parse_nodes(struct ct_view *view, const char *text, char *why, size_t why_len);
char *ct_topo_format(const struct ct_topo *topo);
int ct_topo_ranges(const struct ct_topo *topo, int idx, char *out, size_t out_len);
int ct_topo_slots_of(const struct ct_topo *topo, int idx);
bool ct_topo_same(const struct ct_topo *a, const struct ct_topo *b, char *why, size_t why_len);

/* cluster.c */
int ct_cluster_load(struct ct_cluster *cl, const char *entry, const struct ct_opts *opts);
void ct_cluster_close(struct ct_cluster *cl);
int ct_cluster_node_of(const struct ct_cluster *cl, const char *id);
int ct_cluster_refresh(struct ct_cluster *cl);
int ct_cluster_push(struct ct_cluster *cl, const struct ct_topo *topo, int first);
int ct_node_push(struct ct_node *node, const struct ct_topo *topo);
int ct_cluster_resolve_id(const struct ct_cluster *cl, const char *prefix, char *why, size_t why_len);

/* slot.c, scan.c */
int ct_key_slot(const char *key, size_t len);
typedef void (*ct_scan_fn)(void *arg, int slot, const char *key, size_t len);
int ct_node_scan(struct ct_node *node, ct_scan_fn fn, void *arg);

/* check.c */
int ct_check_report(struct ct_cluster *cl, bool print_ok);
int ct_node_stray_counts(struct ct_node *node, const struct ct_topo *ref, long long *count);
int ct_cmd_info(const char *entry, const struct ct_opts *opts);
int ct_cmd_check(const char *entry, const struct ct_opts *opts);

/* move.c */
int ct_move_slots(struct ct_cluster *cl, const int *slots, int n, int src, int dst, bool replace,
		  long long *moved);
int ct_move_strays(struct ct_cluster *cl, int holder, int slot, int owner, long long *moved);

/* create.c, reshard.c, fix.c */
int ct_cmd_create(int n, char **addrs, const struct ct_opts *opts);
int ct_cmd_reshard(const char *entry, const char *from, const char *to, int slots,
		   const struct ct_opts *opts);
int ct_cmd_fix(const char *entry, const struct ct_opts *opts);

#endif
