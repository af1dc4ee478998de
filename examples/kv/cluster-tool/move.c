/* Moving the keys of slots from one node to another.
 *
 * A round of slot moves, as the tool drives it (the order matters):
 *
 *   STABLE --(1) SETSLOT(S) s IMPORTING src on dst, for each s--> importing
 *          --(2) SETSLOT(S) s MIGRATING dst on src, for each s--> open
 *          --(3) SCAN src, MIGRATE ... KEYS of each slot; again until a
 *                SCAN finds no key of the round's slots--> drained
 *          --(4) the caller pushes a topology giving the slots to dst--> STABLE
 *
 *   (1) before (2): once src answers -ASK for a missing key, dst must
 *       already accept it after ASKING.
 *   (3) Once a slot is MIGRATING, src creates no key of it (a command on a
 *       key src lacks gets -ASK), so the keys only leave, and a SCAN that
 *       finds none of the round's slots ends the round.  One SCAN serves the
 *       whole round: urkv has no slot-to-keys index, so GETKEYSINSLOT would
 *       walk the keyspace once per slot.  MIGRATE replies +OK only once dst
 *       holds the keys durably, and only then does src delete them; a key is
 *       never on neither node.  A kill between dst's commit and src's delete
 *       leaves the key on both; src's copy is the one clients saw (src
 *       serves every key it still holds while MIGRATING), which is why fix
 *       re-runs (3) with REPLACE.
 *   (4) ct_cluster_push, dst first: the new owner serves the slots before
 *       anyone sends clients to it.
 *
 * Functions: ct_move_slots does (1)-(3); ct_move_strays moves keys a node
 * holds for a slot that is not open and that it does not own. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctool.h"

/* MIGRATE's fixed arguments: MIGRATE host port "" 0 timeout [REPLACE]
 * [AUTH pw] KEYS, then up to batch keys. */
#define MIGRATE_FIXED_MAX 10

/* Up to batch keys of slot held by node, as GETKEYSINSLOT lists them. */
static redisReply *keys_in_slot(struct ct_node *node, int slot, int batch)
{
	redisReply *r = ct_node_cmdf(node, "CLUSTER GETKEYSINSLOT %d %d", slot, batch);

	if (r && r->type != REDIS_REPLY_ARRAY) {
		ct_err(node, "CLUSTER GETKEYSINSLOT %d: %s", slot,
		       r->type == REDIS_REPLY_ERROR ? r->str : "not an array");
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

/* MIGRATE of key[0..n) from node to the node at ip:port.  Returns the reply
 * (the caller judges +OK, +NOKEY and errors) or NULL. */
static redisReply *migrate(struct ct_cluster *cl, struct ct_node *from, const struct ct_node *to,
			   const char *const *key, const size_t *key_len, size_t n, bool replace)
{
	const char **argv = malloc((MIGRATE_FIXED_MAX + n) * sizeof(*argv));
	size_t *len = malloc((MIGRATE_FIXED_MAX + n) * sizeof(*len));
	char port[16], timeout[16];
	redisReply *r = NULL;
	int argc = 0;

	if (!argv || !len) {
		ct_err(from, "MIGRATE: out of memory");
		goto out;
	}
	snprintf(port, sizeof(port), "%d", to->port);
	snprintf(timeout, sizeof(timeout), "%d", cl->opts->migrate_timeout_ms);
	argv[argc++] = "MIGRATE";
	argv[argc++] = to->ip;
	argv[argc++] = port;
	argv[argc++] = "";
	argv[argc++] = "0";
	argv[argc++] = timeout;
	if (replace)
		argv[argc++] = "REPLACE";
	if (cl->opts->password) {
		argv[argc++] = "AUTH";
		argv[argc++] = cl->opts->password;
	}
	argv[argc++] = "KEYS";
	for (int i = 0; i < argc; i++)
		len[i] = strlen(argv[i]);
	for (size_t k = 0; k < n; k++) {
		argv[argc] = key[k];
		len[argc++] = key_len[k];
	}
	r = ct_node_cmd(from, argc, argv, len);
out:
	free(argv);
	free(len);
	return r;
}

/* MIGRATE of the element-th key of a GETKEYSINSLOT reply. */
static redisReply *migrate_one(struct ct_cluster *cl, struct ct_node *from, const struct ct_node *to,
			       const redisReply *keys, size_t element, bool replace)
{
	const char *key = keys->element[element]->str;
	size_t len = keys->element[element]->len;

	return migrate(cl, from, to, &key, &len, 1, replace);
}

static bool is_status(const redisReply *r, const char *s)
{
	return r->type == REDIS_REPLY_STATUS && strcmp(r->str, s) == 0;
}

/* Sends what hiredis has buffered for node, without reading. */
static int flush(struct ct_node *node)
{
	int done = 0;

	while (!done) {
		if (redisBufferWrite(node->ctx, &done) != REDIS_OK) {
			char buf[96];

			ct_err(node, "write: %s", ct_node_failure(node, buf, sizeof(buf)));
			ct_node_close(node);
			return -EIO;
		}
	}
	return 0;
}

/* The reply to the i-th of a pipelined run of SETSLOTs: 0 for +OK. */
static int setslot_reply(struct ct_node *node, int slot, const char *state, const char *id)
{
	redisReply *r = NULL;
	char what[96];

	if (redisGetReply(node->ctx, (void **)&r) != REDIS_OK) {
		char buf[96];

		ct_err(node, "CLUSTER SETSLOT %d %s: %s", slot, state, ct_node_failure(node, buf, sizeof(buf)));
		ct_node_close(node);
		return -EIO;
	}
	snprintf(what, sizeof(what), "CLUSTER SETSLOT %d %s %.8s", slot, state, id);
	return ct_node_expect_ok(node, r, what) ? -EPROTO : 0;
}

/* CLUSTERX SETSLOTS <ranges> state id: every slot of the round in one
 * command, which the node stores with one cluster-file write (all or
 * nothing).  -ENOTSUP when the node does not know SETSLOTS (then the
 * per-slot CLUSTER SETSLOT below is used). */
static int setslots(struct ct_node *node, const int *slots, int n, const char *state, const char *id)
{
	const char **argv = malloc(((size_t)n + 4) * sizeof(*argv));
	char *ranges = malloc((size_t)n * 12 + 1), *at = ranges;
	char what[96];
	redisReply *r;
	int argc = 0, rc;

	if (!argv || !ranges) {
		free(argv);
		free(ranges);
		return -ENOMEM;
	}
	argv[argc++] = "CLUSTERX";
	argv[argc++] = "SETSLOTS";
	/* The round's slots ascend: runs of consecutive slots become "A-B". */
	for (int i = 0; i < n;) {
		int j = i;

		while (j + 1 < n && slots[j + 1] == slots[j] + 1)
			j++;
		argv[argc++] = at;
		at += (j == i ? sprintf(at, "%d", slots[i]) : sprintf(at, "%d-%d", slots[i], slots[j])) + 1;
		i = j + 1;
	}
	argv[argc++] = state;
	argv[argc++] = id;
	r = ct_node_cmd(node, argc, argv, NULL);
	if (r && r->type == REDIS_REPLY_ERROR && strstr(r->str, "unknown subcommand")) {
		freeReplyObject(r);
		rc = -ENOTSUP;
	} else {
		snprintf(what, sizeof(what), "CLUSTERX SETSLOTS (%d slots from %d) %s %.8s", n, slots[0],
			 state, id);
		rc = ct_node_expect_ok(node, r, what);
	}
	free(argv);
	free(ranges);
	return rc;
}

/* Steps (1) and (2) for every slot of the round: with CLUSTERX SETSLOTS,
 * one command (one durable file write) per node, IMPORTING first.  A node
 * without it gets CLUSTER SETSLOT per slot; each is stored durably before
 * +OK, so both run pipelined and overlap: slot s's MIGRATING goes to from
 * as soon as to has answered +OK to its IMPORTING (never before, see the
 * notes at the top). */
static int open_slots(struct ct_node *to, struct ct_node *from, const int *slots, int n)
{
	int sent = 0, rc = 0;

	if (!to->ctx || !from->ctx)
		return -EIO;
	rc = setslots(to, slots, n, "IMPORTING", from->id);
	if (rc == 0)
		return setslots(from, slots, n, "MIGRATING", to->id);
	if (rc != -ENOTSUP)
		return rc;
	rc = 0;
	for (int i = 0; i < n; i++)
		if (redisAppendCommand(to->ctx, "CLUSTER SETSLOT %d IMPORTING %s", slots[i], from->id) !=
		    REDIS_OK)
			return -ENOMEM;
	rc = flush(to);
	for (int i = 0; i < n && rc == 0; i++) {
		/* A refused IMPORTING ends the round; the replies still due are read. */
		rc = setslot_reply(to, slots[i], "IMPORTING", from->id);
		if (rc) {
			for (int j = i + 1; j < n && to->ctx; j++)
				setslot_reply(to, slots[j], "IMPORTING", from->id);
			break;
		}
		if (redisAppendCommand(from->ctx, "CLUSTER SETSLOT %d MIGRATING %s", slots[i], to->id) !=
		    REDIS_OK)
			rc = -ENOMEM;
		else
			rc = flush(from);
		sent += rc == 0;
	}
	for (int i = 0; i < sent && from->ctx; i++) {
		int r = setslot_reply(from, slots[i], "MIGRATING", to->id);

		if (r && rc == 0)
			rc = r;
	}
	return rc;
}

/* Keys of the round's slots found by one SCAN of the source. */
struct round_keys {
	const bool *want;	/* Per slot: part of the round. */
	size_t n, cap;		/* Entries of key[]. */
	struct round_key {
		int slot;	/* Its slot. */
		size_t off, len;/* Its bytes in buf. */
	} *key;
	char *buf;		/* The key bytes, back to back. */
	size_t used, buf_cap;	/* Bytes used and allocated in buf. */
	bool oom;		/* An allocation failed. */
};

static void round_collect(void *arg, int slot, const char *key, size_t len)
{
	struct round_keys *rk = arg;

	if (!rk->want[slot] || rk->oom)
		return;
	if (rk->n == rk->cap) {
		size_t cap = rk->cap ? 2 * rk->cap : 1024;
		void *p = realloc(rk->key, cap * sizeof(*rk->key));

		if (!p)
			goto oom;
		rk->key = p;
		rk->cap = cap;
	}
	if (rk->used + len > rk->buf_cap) {
		size_t cap = rk->buf_cap ? 2 * rk->buf_cap : 65536;
		void *p;

		while (cap < rk->used + len)
			cap *= 2;
		p = realloc(rk->buf, cap);
		if (!p)
			goto oom;
		rk->buf = p;
		rk->buf_cap = cap;
	}
	memcpy(rk->buf + rk->used, key, len);
	rk->key[rk->n++] = (struct round_key){ .slot = slot, .off = rk->used, .len = len };
	rk->used += len;
	return;
oom:
	rk->oom = true;
}

static int by_slot(const void *a, const void *b)
{
	const struct round_key *x = a, *y = b;

	return (x->slot > y->slot) - (x->slot < y->slot);
}

/* Rounds of SCAN + MIGRATE before a source that still lists keys is an error. */
#define ROUND_PASSES_MAX 8

/* MIGRATE every key of rk, one slot's keys per command, batch at a time. */
static int migrate_round(struct ct_cluster *cl, int src, int dst, struct round_keys *rk, bool replace,
			 long long *moved)
{
	struct ct_node *from = &cl->node[src], *to = &cl->node[dst];
	const char **key = malloc((size_t)cl->opts->batch * sizeof(*key));
	size_t *len = malloc((size_t)cl->opts->batch * sizeof(*len));
	int rc = 0;

	if (!key || !len) {
		rc = -ENOMEM;
		goto out;
	}
	qsort(rk->key, rk->n, sizeof(*rk->key), by_slot);
	for (size_t i = 0; i < rk->n && rc == 0;) {
		int slot = rk->key[i].slot;
		size_t n = 0;
		redisReply *r;

		while (i < rk->n && rk->key[i].slot == slot && n < (size_t)cl->opts->batch) {
			key[n] = rk->buf + rk->key[i].off;
			len[n++] = rk->key[i++].len;
		}
		r = migrate(cl, from, to, key, len, n, replace);
		if (!r) {
			rc = -EIO;
		} else if (is_status(r, "OK")) {
			*moved += (long long)n;
		} else if (is_status(r, "NOKEY")) {
			/* Deleted (or expired) since the SCAN: nothing to move. */
		} else if (r->type == REDIS_REPLY_ERROR && strstr(r->str, "BUSYKEY")) {
			ct_err(from, "slot %d: MIGRATE to %s: %s (a key of the batch starting '%.*s' is "
			       "on both nodes; `urkv-cluster fix` moves the source's copy over it)",
			       slot, to->name, r->str, (int)(len[0] > 200 ? 200 : len[0]), key[0]);
			rc = -EEXIST;
		} else {
			ct_err(from, "slot %d: MIGRATE to %s: %s", slot, to->name,
			       r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
			rc = -EPROTO;
		}
		if (r)
			freeReplyObject(r);
	}
out:
	free(key);
	free(len);
	return rc;
}

int ct_move_slots(struct ct_cluster *cl, const int *slots, int n, int src, int dst, bool replace,
		  long long *moved)
{
	struct ct_node *from = &cl->node[src], *to = &cl->node[dst];
	bool *want = calloc(CT_SLOTS, sizeof(*want));
	struct round_keys rk = { .want = want };
	int rc = -ENOMEM;

	if (!want)
		return rc;
	for (int i = 0; i < n; i++)
		want[slots[i]] = true;
	rc = open_slots(to, from, slots, n);
	for (int pass = 0; rc == 0; pass++) {
		rk.n = rk.used = 0;
		rc = ct_node_scan(from, round_collect, &rk);
		if (rc == 0 && rk.oom) {
			ct_err(from, "out of memory listing the keys of the slots to move");
			rc = -ENOMEM;
		}
		if (rc || rk.n == 0)
			break;
		if (pass == ROUND_PASSES_MAX) {
			ct_err(from, "still lists %zu keys of the slots being moved (slot %d first) after "
			       "%d rounds of MIGRATE", rk.n, rk.key[0].slot, ROUND_PASSES_MAX);
			rc = -EPROTO;
			break;
		}
		rc = migrate_round(cl, src, dst, &rk, replace, moved);
	}
	free(rk.key);
	free(rk.buf);
	free(want);
	return rc;
}

/* DUMP of key on node (NULL when absent or on error); the caller frees. */
static redisReply *dump(struct ct_node *node, const char *key, size_t len)
{
	const char *argv[] = { "DUMP", key };
	size_t lens[] = { 4, len };
	redisReply *r = ct_node_cmd(node, 2, argv, lens);

	if (r && r->type != REDIS_REPLY_STRING) {
		if (r->type == REDIS_REPLY_ERROR)
			ct_err(node, "DUMP '%.*s': %s", (int)len, key, r->str);
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

/* One stray key the owner already holds: identical copies (DUMP payloads
 * equal) leave the holder's copy to be deleted; different ones are a
 * conflict for the operator, reported and left alone. */
static int settle_busy_key(struct ct_node *holder, struct ct_node *owner, int slot, const char *key,
			   size_t len)
{
	redisReply *a = dump(holder, key, len), *b = dump(owner, key, len);
	int rc = -EEXIST;

	if (a && b && a->len == b->len && memcmp(a->str, b->str, a->len) == 0) {
		const char *argv[] = { "DEL", key };
		size_t lens[] = { 3, len };
		redisReply *r = ct_node_cmd(holder, 2, argv, lens);

		rc = r && r->type == REDIS_REPLY_INTEGER ? 0 : -EIO;
		if (r)
			freeReplyObject(r);
	} else {
		ct_err(holder, "slot %d: key '%.*s' is also on its owner %s with a different value; "
		       "left on both for you to settle (DUMP on each, then DEL the wrong copy)",
		       slot, (int)len, key, owner->name);
	}
	if (a)
		freeReplyObject(a);
	if (b)
		freeReplyObject(b);
	return rc;
}

/* Keys holder keeps for a slot owner owns (the slot is not open): moved
 * without REPLACE, since owner's copy is the one clients have been served.
 * Returns 0, or -EEXIST when some keys conflict (reported), or an error. */
int ct_move_strays(struct ct_cluster *cl, int holder, int slot, int owner, long long *moved)
{
	struct ct_node *from = &cl->node[holder], *to = &cl->node[owner];
	int conflicts = 0;

	for (;;) {
		redisReply *keys = keys_in_slot(from, slot, cl->opts->batch);
		size_t progress = 0;

		if (!keys)
			return -EIO;
		if (keys->elements == 0) {
			freeReplyObject(keys);
			return conflicts ? -EEXIST : 0;
		}
		/* Key by key: one BUSYKEY must not hold up the others. */
		for (size_t k = 0; k < keys->elements; k++) {
			redisReply *r = migrate_one(cl, from, to, keys, k, false);
			int rc;

			if (!r) {
				freeReplyObject(keys);
				return -EIO;
			}
			if (is_status(r, "OK")) {
				(*moved)++;
				progress++;
			} else if (is_status(r, "NOKEY")) {
				progress++;
			} else if (r->type == REDIS_REPLY_ERROR && strstr(r->str, "BUSYKEY")) {
				rc = settle_busy_key(from, to, slot, keys->element[k]->str, keys->element[k]->len);
				if (rc == 0)
					progress++;
				else
					conflicts++;
			} else {
				ct_err(from, "slot %d: MIGRATE of a stray key to %s: %s", slot, to->name,
				       r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
				freeReplyObject(r);
				freeReplyObject(keys);
				return -EPROTO;
			}
			freeReplyObject(r);
		}
		freeReplyObject(keys);
		/* Only conflicts left: they stay, reported. */
		if (progress == 0)
			return -EEXIST;
	}
}
