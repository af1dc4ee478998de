/* Every key of a node, through SCAN (COUNT 1000), with its slot.
 *
 * Why SCAN and not CLUSTER GETKEYSINSLOT/COUNTKEYSINSLOT per slot: urkv
 * keeps no index from slot to keys, so each of those walks the node's whole
 * keyspace; one SCAN walks it once for all 16384 slots.  SCAN returns every
 * key present for the whole scan exactly once. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctool.h"

int ct_node_scan(struct ct_node *node, ct_scan_fn fn, void *arg)
{
	char cursor[32] = "0";

	do {
		redisReply *r = ct_node_cmdf(node, "SCAN %s COUNT 1000", cursor);
		redisReply *keys;

		if (!r)
			return -EIO;
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING ||
		    r->element[1]->type != REDIS_REPLY_ARRAY || r->element[0]->len >= sizeof(cursor)) {
			ct_err(node, "SCAN %s: %s", cursor,
			       r->type == REDIS_REPLY_ERROR ? r->str : "not a [cursor, keys] reply");
			freeReplyObject(r);
			return -EPROTO;
		}
		memcpy(cursor, r->element[0]->str, r->element[0]->len);
		cursor[r->element[0]->len] = '\0';
		keys = r->element[1];
		for (size_t i = 0; i < keys->elements; i++) {
			const redisReply *k = keys->element[i];

			if (k->type != REDIS_REPLY_STRING)
				continue;
			fn(arg, ct_key_slot(k->str, k->len), k->str, k->len);
		}
		freeReplyObject(r);
	} while (strcmp(cursor, "0") != 0);
	return 0;
}
