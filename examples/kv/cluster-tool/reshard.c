/* reshard: move N slots from one node to another while clients keep using
 * the cluster.  The cluster must pass check first (same topology
 * everywhere, no open slot), so that a reshard never starts on top of an
 * interrupted one; `fix` finishes those.  The slots moved are the source's
 * lowest N.  Each slot goes through move.c's steps, then a topology with
 * the slot given to the target and the version one higher is pushed to
 * every node, the target first. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctool.h"

int ct_cmd_reshard(const char *entry, const char *from_id, const char *to_id, int slots,
		   const struct ct_opts *opts)
{
	struct ct_cluster *cl = calloc(1, sizeof(*cl));
	struct ct_topo *next = malloc(sizeof(*next));
	long long moved = 0;
	char why[160];
	int rc = CT_EXIT_CLUSTER, src, dst, rsrc, rdst, done = 0, owned, problems;

	if (!cl || !next)
		goto out;
	if (ct_cluster_load(cl, entry, opts))
		goto out;
	src = ct_cluster_resolve_id(cl, from_id, why, sizeof(why));
	dst = src < 0 ? -1 : ct_cluster_resolve_id(cl, to_id, why, sizeof(why));
	if (src < 0 || dst < 0) {
		ct_err(NULL, "%s", why);
		rc = CT_EXIT_USAGE;
		goto out;
	}
	if (src == dst) {
		ct_err(&cl->node[src], "--from and --to name the same node");
		rc = CT_EXIT_USAGE;
		goto out;
	}
	problems = ct_check_report(cl, false);
	if (problems) {
		if (problems > 0)
			ct_err(NULL, "the cluster is not consistent (%d problem%s above); run "
			       "`urkv-cluster fix %s` first", problems, problems == 1 ? "" : "s", entry);
		goto out;
	}
	rsrc = ct_topo_find(cl->ref, cl->node[src].id);
	rdst = ct_topo_find(cl->ref, cl->node[dst].id);
	owned = ct_topo_slots_of(cl->ref, rsrc);
	if (slots > owned) {
		ct_err(&cl->node[src], "owns %d slots, fewer than the %d asked for", owned, slots);
		goto out;
	}
	ct_say(opts, "moving %d of the %d slots of %s (%s) to %s (%s)", slots, owned, cl->node[src].id,
	       cl->node[src].name, cl->node[dst].id, cl->node[dst].name);
	for (int s = 0; s < CT_SLOTS && done < slots; s++) {
		if (cl->ref->owner[s] != rsrc)
			continue;
		if (ct_move_slot(cl, s, src, dst, false, &moved)) {
			ct_err(NULL, "reshard stopped at slot %d after %d slots; the slot is left open: "
			       "run `urkv-cluster fix %s` to finish it", s, done, entry);
			goto out;
		}
		*next = *cl->ref;
		next->owner[s] = (int16_t)rdst;
		next->version = cl->ref->version + 1;
		if (ct_cluster_push(cl, next, dst)) {
			ct_err(NULL, "reshard stopped at slot %d: its keys are on %s but not every node "
			       "has the new topology; run `urkv-cluster fix %s`", s, cl->node[dst].name,
			       entry);
			goto out;
		}
		*cl->ref = *next;
		done++;
		if (done % 256 == 0 || done == slots)
			ct_say(opts, "  %d/%d slots moved, %lld keys, topology version %" PRIu64, done, slots,
			       moved, cl->ref->version);
	}
	if (ct_cluster_refresh(cl))
		goto out;
	problems = ct_check_report(cl, false);
	if (problems == 0) {
		printf("OK: moved %d slots (%lld keys) from %s to %s; topology version %" PRIu64 "\n",
		       done, moved, cl->node[src].name, cl->node[dst].name, cl->ref->version);
		rc = CT_EXIT_OK;
	}
out:
	if (cl) {
		ct_cluster_close(cl);
		free(cl);
	}
	free(next);
	return rc;
}
