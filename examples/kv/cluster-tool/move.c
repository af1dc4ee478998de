/* Moving the keys of one slot from one node to another.
 *
 * A slot move, as the tool drives it (the order matters):
 *
 *   STABLE --(1) SETSLOT s IMPORTING src on dst--> importing
 *          --(2) SETSLOT s MIGRATING dst on src--> open
 *          --(3) GETKEYSINSLOT + MIGRATE KEYS, until src has none--> drained
 *          --(4) the caller pushes a topology giving s to dst--> STABLE
 *
 *   (1) before (2): once src answers -ASK for a missing key, dst must
 *       already accept it after ASKING.
 *   (3) MIGRATE replies +OK only once dst holds the keys durably, and only
 *       then does src delete them; a key is never on neither node.  A kill
 *       between dst's commit and src's delete leaves the key on both; src's
 *       copy is the one clients saw (src serves every key it still holds
 *       while MIGRATING), which is why fix re-runs (3) with REPLACE.
 *   (4) ct_cluster_push, dst first: the new owner serves the slot before
 *       anyone sends clients to it.
 *
 * Functions: ct_move_slot does (1)-(3); ct_move_strays moves keys a node
 * holds for a slot that is not open and that it does not own. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctool.h"

/* MIGRATE's fixed arguments: MIGRATE host port "" 0 timeout [REPLACE]
 * [AUTH pw] KEYS, then up to batch keys. */
#define MIGRATE_FIXED_MAX 10

static int setslot(struct ct_node *node, int slot, const char *state, const char *id)
{
	char slot_s[16], what[96];
	const char *argv[] = { "CLUSTER", "SETSLOT", slot_s, state, id };

	snprintf(slot_s, sizeof(slot_s), "%d", slot);
	snprintf(what, sizeof(what), "CLUSTER SETSLOT %d %s%s%.8s", slot, state, id ? " " : "",
		 id ? id : "");
	return ct_node_expect_ok(node, ct_node_cmd(node, id ? 5 : 4, argv, NULL), what);
}

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

/* MIGRATE of keys[0..n) from node to the node at ip:port.  Returns the reply
 * (the caller judges +OK, +NOKEY and errors) or NULL. */
static redisReply *migrate(struct ct_cluster *cl, struct ct_node *from, const struct ct_node *to,
			   redisReply *keys, size_t first, size_t n, bool replace)
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
		argv[argc] = keys->element[first + k]->str;
		len[argc++] = keys->element[first + k]->len;
	}
	r = ct_node_cmd(from, argc, argv, len);
out:
	free(argv);
	free(len);
	return r;
}

static bool is_status(const redisReply *r, const char *s)
{
	return r->type == REDIS_REPLY_STATUS && strcmp(r->str, s) == 0;
}

int ct_move_slot(struct ct_cluster *cl, int slot, int src, int dst, bool replace, long long *moved)
{
	struct ct_node *from = &cl->node[src], *to = &cl->node[dst];
	bool last_nokey = false;
	char last_first[256] = "";
	int rc;

	rc = setslot(to, slot, "IMPORTING", from->id);
	if (rc)
		return rc;
	rc = setslot(from, slot, "MIGRATING", to->id);
	if (rc)
		return rc;
	for (;;) {
		redisReply *keys = keys_in_slot(from, slot, cl->opts->batch);
		redisReply *r;
		char first[256];

		if (!keys)
			return -EIO;
		if (keys->elements == 0) {
			freeReplyObject(keys);
			return 0;
		}
		snprintf(first, sizeof(first), "%.*s", (int)keys->element[0]->len, keys->element[0]->str);
		r = migrate(cl, from, to, keys, 0, keys->elements, replace);
		if (!r) {
			freeReplyObject(keys);
			return -EIO;
		}
		if (is_status(r, "OK") || is_status(r, "NOKEY")) {
			bool nokey = is_status(r, "NOKEY");

			/* GETKEYSINSLOT listing keys MIGRATE never finds would loop forever. */
			if (nokey && last_nokey && strcmp(first, last_first) == 0) {
				ct_err(from, "slot %d: GETKEYSINSLOT keeps listing '%s' but MIGRATE finds "
				       "no such key", slot, first);
				rc = -EPROTO;
			}
			if (!nokey)
				*moved += (long long)keys->elements;
			last_nokey = nokey;
			snprintf(last_first, sizeof(last_first), "%s", first);
		} else if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYKEY", 7) == 0) {
			ct_err(from, "slot %d: MIGRATE to %s: %s (a key of the batch starting '%s' is "
			       "on both nodes; `urkv-cluster fix` moves the source's copy over it)",
			       slot, to->name, r->str, first);
			rc = -EEXIST;
		} else {
			ct_err(from, "slot %d: MIGRATE to %s: %s", slot, to->name,
			       r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
			rc = -EPROTO;
		}
		freeReplyObject(r);
		freeReplyObject(keys);
		if (rc)
			return rc;
	}
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
			redisReply *r = migrate(cl, from, to, keys, k, 1, false);
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
			} else if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYKEY", 7) == 0) {
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
