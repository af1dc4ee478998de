/* fix: bring a cluster back to what check wants, after an interrupted
 * reshard or push (a node or the tool killed mid-way).  Rerunning it is
 * safe: every step reads the nodes' state first and skips what is done.
 *
 * Steps, in this order:
 *   1. Versions.  Nodes behind the newest topology get it, at the same
 *      version (a node that has it answers +OK again).  Two different maps
 *      under one version cannot be settled by the tool: reported, exit 1.
 *   2. Uncovered slots.  Each goes to the node holding most of its keys,
 *      else to the node with the fewest slots; one push, version + 1.
 *   3. Open slots (MIGRATING or IMPORTING anywhere).  The move is finished
 *      forward, towards the node importing the slot (else the node the
 *      owner migrates it to): move.c's steps again, with REPLACE, because
 *      while the slot is MIGRATING the source serves every key it holds, so
 *      a key on both nodes (a kill between the target's commit and the
 *      source's delete) is newest at the source.  Then a push gives the slot
 *      to the target; any state still left open is cleared with SETSLOT
 *      STABLE.
 *   4. Stray keys (a node holding keys of a slot it does not own, not
 *      open): moved to the owner without REPLACE; a key the owner also
 *      holds with the same value is deleted from the stray node, one with a
 *      different value is reported and left on both (move.c).
 *   5. check; exit 0 only when it finds nothing. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctool.h"

/* Cluster index of the node with index idx in view v's topology. */
static int cluster_index(const struct ct_cluster *cl, const struct ct_topo *t, int idx)
{
	return idx < 0 ? -1 : ct_cluster_node_of(cl, t->node[idx].id);
}

static int fix_versions(struct ct_cluster *cl)
{
	char why[256];
	int pushed = 0;

	for (int i = 0; i < cl->n; i++) {
		const struct ct_topo *t = &cl->view[i]->topo;

		if (t->version == cl->ref->version) {
			if (!ct_topo_same(t, cl->ref, why, sizeof(why))) {
				ct_err(&cl->node[i], "has another map under the same version %" PRIu64
				       " (%s); settle it by hand with CLUSTERX SETNODES", t->version, why);
				return -EPROTO;
			}
			continue;
		}
		ct_say(cl->opts, "%s: topology version %" PRIu64 " -> %" PRIu64, cl->node[i].name,
		       t->version, cl->ref->version);
		if (ct_node_push(&cl->node[i], cl->ref))
			return -EIO;
		pushed++;
	}
	return pushed ? ct_cluster_refresh(cl) : 0;
}

static int fix_uncovered(struct ct_cluster *cl)
{
	struct ct_topo *next = malloc(sizeof(*next));
	long long *count = malloc((size_t)cl->n * CT_SLOTS * sizeof(*count));
	int assigned = 0, rc = 0;

	if (!next || !count) {
		rc = -ENOMEM;
		goto out;
	}
	*next = *cl->ref;
	for (int s = 0; s < CT_SLOTS; s++)
		if (next->owner[s] < 0)
			break;
		else if (s == CT_SLOTS - 1)
			goto out;	/* All covered. */
	for (int i = 0; i < cl->n; i++) {
		rc = ct_node_stray_counts(&cl->node[i], cl->ref, count + (size_t)i * CT_SLOTS);
		if (rc)
			goto out;
	}
	for (int s = 0; s < CT_SLOTS; s++) {
		int best = -1, r;
		long long most = 0;

		if (next->owner[s] >= 0)
			continue;
		for (int i = 0; i < cl->n; i++) {
			if (count[(size_t)i * CT_SLOTS + s] > most) {
				most = count[(size_t)i * CT_SLOTS + s];
				best = i;
			}
		}
		if (best < 0) {
			int fewest = CT_SLOTS + 1;

			for (int i = 0; i < cl->n; i++) {
				int c = ct_topo_slots_of(next, ct_topo_find(next, cl->node[i].id));

				if (ct_topo_find(next, cl->node[i].id) >= 0 && c < fewest) {
					fewest = c;
					best = i;
				}
			}
		}
		r = best < 0 ? -1 : ct_topo_find(next, cl->node[best].id);
		if (r < 0) {
			ct_err(NULL, "slot %d has no owner and no node of the topology to take it", s);
			rc = -ENOENT;
			goto out;
		}
		next->owner[s] = (int16_t)r;
		assigned++;
	}
	next->version = cl->ref->version + 1;
	ct_say(cl->opts, "assigning %d uncovered slots, topology version %" PRIu64, assigned,
	       next->version);
	rc = ct_cluster_push(cl, next, -1);
	if (rc == 0)
		rc = ct_cluster_refresh(cl);
out:
	free(next);
	free(count);
	return rc;
}

/* The node a slot's open move should end on, or -1 (cluster indices). */
static int open_target(const struct ct_cluster *cl, int slot, int owner)
{
	int fallback = -1;

	for (int i = 0; i < cl->n; i++) {
		const struct ct_view *v = cl->view[i];
		int from = cluster_index(cl, &v->topo, v->importing[slot]);

		if (v->importing[slot] < 0 || i == owner)
			continue;
		if (from == owner)
			return i;
		fallback = i;
	}
	if (fallback >= 0)
		return fallback;
	if (owner >= 0 && cl->view[owner]->migrating[slot] >= 0) {
		const struct ct_view *v = cl->view[owner];
		int to = cluster_index(cl, &v->topo, v->migrating[slot]);

		if (to != owner)
			return to;
	}
	return -1;
}

static int stable(struct ct_node *node, int slot)
{
	redisReply *r = ct_node_cmdf(node, "CLUSTER SETSLOT %d STABLE", slot);
	char what[64];

	snprintf(what, sizeof(what), "CLUSTER SETSLOT %d STABLE", slot);
	return ct_node_expect_ok(node, r, what);
}

/* Open slots, grouped by (owner, target) so that each group's keys are
 * found with one SCAN of the owner. */
static int fix_open_slots(struct ct_cluster *cl, long long *moved)
{
	struct ct_topo *next = malloc(sizeof(*next));
	int *owner = malloc(CT_SLOTS * sizeof(*owner)), *target = malloc(CT_SLOTS * sizeof(*target));
	int *group = malloc(CT_SLOTS * sizeof(*group));
	int rc = -ENOMEM;

	if (!next || !owner || !target || !group)
		goto out;
	for (int s = 0; s < CT_SLOTS; s++) {
		bool open = false;

		owner[s] = target[s] = -1;
		for (int i = 0; i < cl->n; i++)
			open |= cl->view[i]->migrating[s] >= 0 || cl->view[i]->importing[s] >= 0;
		if (!open)
			continue;
		owner[s] = cluster_index(cl, cl->ref, cl->ref->owner[s]);
		target[s] = open_target(cl, s, owner[s]);
		if (owner[s] < 0 || target[s] < 0)
			owner[s] = target[s] = -1;	/* Nothing to move: STABLE below. */
	}
	rc = 0;
	for (int s = 0; s < CT_SLOTS && rc == 0; s++) {
		int o = owner[s], t = target[s], n = 0;
		long long before = *moved;

		if (o < 0)
			continue;
		for (int g = s; g < CT_SLOTS; g++) {
			if (owner[g] == o && target[g] == t) {
				group[n++] = g;
				owner[g] = target[g] = -1;
			}
		}
		ct_say(cl->opts, "finishing the move of %d open slot%s (first %d) from %s to %s", n,
		       n == 1 ? "" : "s", group[0], cl->node[o].name, cl->node[t].name);
		rc = ct_move_slots(cl, group, n, o, t, true, moved);
		if (rc)
			break;
		*next = *cl->ref;
		for (int i = 0; i < n; i++)
			next->owner[group[i]] = (int16_t)ct_topo_find(next, cl->node[t].id);
		next->version = cl->ref->version + 1;
		rc = ct_cluster_push(cl, next, t);
		if (rc)
			break;
		*cl->ref = *next;
		ct_say(cl->opts, "  %lld keys moved, %d slot%s now owned by %s, topology version %" PRIu64,
		       *moved - before, n, n == 1 ? "" : "s", cl->node[t].name, next->version);
	}
	if (rc)
		goto out;
	/* States the pushes did not clear (a node migrating or importing a slot
	 * nobody moves to or from it) end with STABLE. */
	rc = ct_cluster_refresh(cl);
	for (int i = 0; i < cl->n && rc == 0; i++) {
		for (int s = 0; s < CT_SLOTS && rc == 0; s++) {
			if (cl->view[i]->migrating[s] < 0 && cl->view[i]->importing[s] < 0)
				continue;
			ct_say(cl->opts, "%s: slot %d left open, set STABLE", cl->node[i].name, s);
			rc = stable(&cl->node[i], s);
		}
	}
	if (rc == 0)
		rc = ct_cluster_refresh(cl);
out:
	free(next);
	free(owner);
	free(target);
	free(group);
	return rc;
}

static int fix_strays(struct ct_cluster *cl, long long *moved)
{
	long long *count = malloc(CT_SLOTS * sizeof(*count));
	int rc = 0, conflicts = 0;

	if (!count)
		return -ENOMEM;
	for (int i = 0; i < cl->n && rc == 0; i++) {
		rc = ct_node_stray_counts(&cl->node[i], cl->ref, count);
		for (int s = 0; s < CT_SLOTS && rc == 0; s++) {
			int owner;

			if (count[s] <= 0)
				continue;
			owner = cluster_index(cl, cl->ref, cl->ref->owner[s]);
			ct_say(cl->opts, "%s: %lld keys of slot %d belong to %s; moving them", cl->node[i].name,
			       count[s], s, owner >= 0 ? cl->node[owner].name : "nobody");
			if (owner < 0) {
				rc = -ENOENT;
				break;
			}
			rc = ct_move_strays(cl, i, s, owner, moved);
			if (rc == -EEXIST) {
				conflicts++;
				rc = 0;
			}
		}
	}
	free(count);
	return rc ? rc : conflicts ? -EEXIST : 0;
}

int ct_cmd_fix(const char *entry, const struct ct_opts *opts)
{
	struct ct_cluster *cl = calloc(1, sizeof(*cl));
	long long moved = 0;
	int rc = CT_EXIT_CLUSTER, problems;

	if (!cl)
		return CT_EXIT_CLUSTER;
	if (ct_cluster_load(cl, entry, opts))
		goto out;
	if (fix_versions(cl) || fix_uncovered(cl) || fix_open_slots(cl, &moved))
		goto out;
	if (fix_strays(cl, &moved))
		ct_err(NULL, "some stray keys could not be moved (see above)");
	if (ct_cluster_refresh(cl))
		goto out;
	problems = ct_check_report(cl, true);
	if (problems == 0) {
		ct_say(opts, "fix: %lld keys moved", moved);
		rc = CT_EXIT_OK;
	}
out:
	ct_cluster_close(cl);
	free(cl);
	return rc;
}
