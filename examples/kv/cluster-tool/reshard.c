/* reshard: move N slots from one node to another while clients keep using
 * the cluster.  The cluster must pass check first (same topology
 * everywhere, no open slot), so that a reshard never starts on top of an
 * interrupted one; `fix` finishes those.  The slots moved are the source's
 * lowest N, in rounds of --slots-per-round (default 512): each round goes
 * through move.c's steps (one SCAN of the source serves a whole round),
 * then a topology with the round's slots given to the target and the
 * version one higher is pushed to every node, the target first.  A
 * smaller round keeps fewer slots open at a time (fewer -ASK redirects for
 * clients) at the cost of more SCANs of the source. */
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
	int *round = NULL;

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
	round = malloc(CT_SLOTS * sizeof(*round));
	if (!round)
		goto out;
	for (int s = 0; s < CT_SLOTS && done < slots;) {
		int n = 0;

		/* The next round: up to slots_per_round of the source's slots. */
		for (; s < CT_SLOTS && done + n < slots && n < opts->slots_per_round; s++)
			if (cl->ref->owner[s] == rsrc)
				round[n++] = s;
		if (n == 0)
			break;
		if (ct_move_slots(cl, round, n, src, dst, false, &moved)) {
			ct_err(NULL, "reshard stopped in the round of slots %d-%d after %d slots; the "
			       "round's slots are left open: run `urkv-cluster fix %s` to finish them",
			       round[0], round[n - 1], done, entry);
			goto out;
		}
		*next = *cl->ref;
		for (int i = 0; i < n; i++)
			next->owner[round[i]] = (int16_t)rdst;
		next->version = cl->ref->version + 1;
		if (ct_cluster_push(cl, next, dst)) {
			ct_err(NULL, "reshard stopped after slots %d-%d: their keys are on %s but not every "
			       "node has the new topology; run `urkv-cluster fix %s`", round[0],
			       round[n - 1], cl->node[dst].name, entry);
			goto out;
		}
		*cl->ref = *next;
		done += n;
		ct_say(opts, "  %d/%d slots moved, %lld keys, topology version %" PRIu64, done, slots, moved,
		       cl->ref->version);
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
	free(round);
	return rc;
}
