/*
 * urkv's Redis Cluster node side (docs/kv.md, "Cluster"): slot hashing
 * (slot.c), the pushed topology and its durable file (cluster.c), the
 * CLUSTER / CLUSTERX / ASKING commands and the redirect of keyed commands
 * (cluster_cmd.c), DUMP / RESTORE / MIGRATE (migrate.c).
 *
 * The topology is an immutable snapshot (struct urkv_topo) that every
 * core reads through one atomic pointer; an update builds a new snapshot,
 * writes the cluster file, publishes the pointer and frees the old one
 * once every core has passed a scheduling point (cluster.c has the
 * details).  A reader must therefore not block while it holds a snapshot.
 */
#ifndef URKV_CLUSTER_H
#define URKV_CLUSTER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "urkv.h"

#define URKV_SLOTS 16384u		/* Hash slots, as Redis Cluster. */
#define URKV_NODE_ID_LEN 40u		/* Hex characters of a node id. */
#define URKV_NODES_MAX 1024u		/* Most nodes of one topology. */

/* slot.c */
/* Fills the CRC16 table (once, at start, before any reactor runs). */
void urkv_slot_init(void);
/* Redis Cluster's slot of key: CRC16/XMODEM of it or of its first non-empty {tag}, mod 16384. */
unsigned urkv_key_slot(const void *key, size_t len);

/* One node of the topology. */
struct urkv_cnode {
	char id[URKV_NODE_ID_LEN + 1];	/* 40 lowercase hex characters. */
	char ip[64];			/* Address clients are sent to. */
	uint16_t port;			/* Its client port. */
};

/* A topology: immutable once published. */
struct urkv_topo {
	uint64_t version;		/* Pushed version (0: nothing pushed yet). */
	int me;				/* Index of this node in nodes, or -1. */
	unsigned nnodes;		/* Entries of nodes. */
	struct urkv_cnode *nodes;	/* The nodes, in the order pushed. */
	int16_t owner[URKV_SLOTS];	/* Node index serving each slot, -1: nobody. */
	int16_t migrating[URKV_SLOTS];	/* This node's slot moving to node i, -1: none. */
	int16_t importing[URKV_SLOTS];	/* Slot coming from node i to this node, -1: none. */
};

struct urkv_cluster {
	char myid[URKV_NODE_ID_LEN + 1];/* This node's id. */
	char path[4200];		/* The cluster file. */
	struct urkv_new_file created;	/* The file urkv_cluster_open created (a new node). */
	_Atomic(struct urkv_topo *) topo;/* Current snapshot. */
	pthread_mutex_t lock;		/* Serialises updates (taken with trylock from fibers). */
	/* The slot gate (cluster_cmd.c): MIGRATE holds a slot, keyed commands pass it. */
	atomic_uint active[URKV_SLOTS];	/* Keyed commands of the slot admitted and not finished. */
	atomic_uint hold[URKV_SLOTS];	/* MIGRATEs moving keys of the slot. */
};

/* cluster.c */
/*
 * Opens the cluster state of srv (cluster-enabled): reads the cluster file,
 * or creates it with a new node id.  Returns 0, or -1 after printing
 * "urkv: FILE:LINE: reason" on stderr.
 */
int urkv_cluster_open(struct urkv_server *srv);
void urkv_cluster_close(struct urkv_server *srv);
/*
 * A start that failed before it served anyone: removes the cluster file
 * if urkv_cluster_open created it and the path still names that file (a
 * file that was there before, or one an update replaced, is kept).  Says
 * so on stderr unless quiet; a failed unlink is always said.
 */
void urkv_cluster_remove_created(struct urkv_server *srv, bool quiet);
/* Prints " a-b c ..." (each range with a space before it): the slots node serves in t. */
void urkv_topo_ranges(const struct urkv_topo *t, int node, FILE *f);
/* The current snapshot (valid until the caller blocks). */
const struct urkv_topo *urkv_cluster_topo(struct urkv_server *srv);
/* A private copy of the current snapshot (for replies that may block), or NULL; free it with urkv_topo_free. */
struct urkv_topo *urkv_cluster_topo_copy(struct urkv_server *srv);
void urkv_topo_free(struct urkv_topo *t);
/*
 * CLUSTERX SETNODES text version: validates, stores durably, publishes.
 * Fiber.  Returns NULL (+OK), or the error reply written into err.
 */
const char *urkv_cluster_setnodes(struct urkv_server *srv, const char *text, size_t len,
				  const char *version, size_t vlen, char *err, size_t errlen);
/*
 * CLUSTER SETSLOT slot MIGRATING|IMPORTING id / STABLE (id NULL), for the n
 * slots (CLUSTERX SETSLOTS gives many): all are checked, then set with one
 * cluster file write, or none is.  Fiber; NULL or the error.
 */
enum urkv_slot_state { URKV_SLOT_STABLE, URKV_SLOT_MIGRATING, URKV_SLOT_IMPORTING };
const char *urkv_cluster_setslot(struct urkv_server *srv, const unsigned *slots, unsigned n,
				 enum urkv_slot_state st, const char *id, size_t idlen, char *err,
				 size_t errlen);

/* cluster_cmd.c */
/* Builds the key positions of the command table (at start). */
void urkv_cluster_keys_init(void);
/* Key positions of cmd as COMMAND INFO gives them: first, last (-1: the end), step; 0 0 0: none. */
void urkv_cmd_keys(const struct urkv_cmd *cmd, int *first, int *last, int *step);
/*
 * The redirect of slot s's command on a cluster node: NULL when it runs
 * here, else the error reply (-MOVED, -ASK, -CROSSSLOT, -CLUSTERDOWN,
 * -TRYAGAIN) in s->errbuf.  May block (keys of a migrating slot are looked
 * up), after waiting for the connection's requests in flight.
 */
const char *urkv_cluster_route(struct urkv_conn *c, struct urkv_slot *s);
/*
 * The slot gate.  A keyed command admitted by the route holds its slot's
 * `active` count until it has finished (s->gate = slot + 1; conn.c calls
 * urkv_cluster_gate_exit once its reply is written); MIGRATE raises the
 * slot's `hold`, waits for `active` to drain, moves the keys and lowers
 * `hold`; a command that meets a raised hold waits before it is admitted.
 * So no command changes a key of the slot while MIGRATE reads, sends and
 * deletes it (docs/kv.md).
 */
void urkv_cluster_gate_exit(struct urkv_server *srv, unsigned gate);
/* MIGRATE: hold the slots (a sorted list without repeats); -ETIMEDOUT when active did not drain by deadline_ns. */
int urkv_cluster_hold(struct urkv_server *srv, const unsigned *slots, unsigned n, uint64_t deadline_ns);
void urkv_cluster_unhold(struct urkv_server *srv, const unsigned *slots, unsigned n);
void urkv_cluster_run(struct urkv_conn *c, struct urkv_slot *s);
void urkv_clusterx_run(struct urkv_conn *c, struct urkv_slot *s);
void urkv_asking_run(struct urkv_conn *c, struct urkv_slot *s);
void urkv_readonly_run(struct urkv_conn *c, struct urkv_slot *s);
void urkv_readwrite_run(struct urkv_conn *c, struct urkv_slot *s);

/* migrate.c */
void urkv_dump_run(struct urkv_conn *c, struct urkv_slot *s);
void urkv_restore_run(struct urkv_conn *c, struct urkv_slot *s);
void urkv_migrate_run(struct urkv_conn *c, struct urkv_slot *s);

#endif /* URKV_CLUSTER_H */
