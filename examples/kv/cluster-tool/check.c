/* info and check: what every node reports, and whether they agree.
 *
 * check's conditions for a healthy cluster (each failure is printed with the
 * node it concerns, and makes the exit status 1):
 *   1. every node named by any view is reachable and answers;
 *   2. every node holds the same topology version and the same map;
 *   3. all 16384 slots have an owner;
 *   4. no slot is MIGRATING or IMPORTING anywhere;
 *   5. no node holds keys of a slot it does not own (one SCAN of each node,
 *      the slots computed here: see scan.c for why not COUNTKEYSINSLOT). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctool.h"

static void print_open_slots(const struct ct_cluster *cl, int i)
{
	const struct ct_view *v = cl->view[i];

	for (int s = 0; s < CT_SLOTS; s++) {
		if (v->migrating[s] >= 0)
			printf("    slot %d MIGRATING to %s\n", s, v->topo.node[v->migrating[s]].id);
		if (v->importing[s] >= 0)
			printf("    slot %d IMPORTING from %s\n", s, v->topo.node[v->importing[s]].id);
	}
}

int ct_cmd_info(const char *entry, const struct ct_opts *opts)
{
	struct ct_cluster *cl = calloc(1, sizeof(*cl));
	char *ranges = malloc(CT_SLOTS * 12);
	long long total = 0;
	int covered = 0, rc = CT_EXIT_CLUSTER;

	if (!cl || !ranges)
		goto out;
	if (ct_cluster_load(cl, entry, opts))
		goto out;
	for (int s = 0; s < CT_SLOTS; s++)
		covered += cl->ref->owner[s] >= 0;
	printf("cluster: topology version %" PRIu64 ", %d nodes, %d of %d slots covered\n",
	       cl->ref->version, cl->ref->n, covered, CT_SLOTS);
	for (int i = 0; i < cl->n; i++) {
		const struct ct_view *v = cl->view[i];
		int count = ct_topo_ranges(&v->topo, v->self, ranges, CT_SLOTS * 12);

		printf("%s %s version %" PRIu64 " slots %d keys %lld\n", cl->node[i].id, cl->node[i].name,
		       v->topo.version, count, v->keys);
		printf("    ranges: %s\n", count ? ranges : "(none)");
		print_open_slots(cl, i);
		total += v->keys > 0 ? v->keys : 0;
	}
	printf("keys: %lld in all\n", total);
	rc = CT_EXIT_OK;
out:
	if (cl)
		ct_cluster_close(cl);
	free(cl);
	free(ranges);
	return rc;
}

static void count_key(void *arg, int slot, const char *key, size_t len)
{
	long long *count = arg;

	(void)key;
	(void)len;
	count[slot]++;
}

/* Keys node holds per slot it does not own in ref (one SCAN of the node):
 * count[s] is the number of keys, or -1 for its own slots. */
int ct_node_stray_counts(struct ct_node *node, const struct ct_topo *ref, long long *count)
{
	int self = ct_topo_find(ref, node->id);
	int rc;

	memset(count, 0, CT_SLOTS * sizeof(*count));
	rc = ct_node_scan(node, count_key, count);
	for (int s = 0; s < CT_SLOTS; s++)
		if (self >= 0 && ref->owner[s] == self)
			count[s] = -1;
	return rc;
}

/* Keys of slots node i does not own: each such slot is reported and counted
 * in *problems. */
static int count_strays(struct ct_cluster *cl, int i, int *problems)
{
	long long *count = malloc(CT_SLOTS * sizeof(*count));
	int rc;

	if (!count)
		return -ENOMEM;
	rc = ct_node_stray_counts(&cl->node[i], cl->ref, count);
	for (int s = 0; s < CT_SLOTS && rc == 0; s++) {
		int o = cl->ref->owner[s];

		if (count[s] <= 0)
			continue;
		ct_err(&cl->node[i], "holds %lld keys of slot %d, which %s%s", count[s], s,
		       o >= 0 ? "is owned by " : "has no owner", o >= 0 ? cl->ref->node[o].id : "");
		(*problems)++;
	}
	free(count);
	return rc;
}

/* Prints every problem (naming the node); returns how many there are, or a
 * negative errno when a node could not be read. */
int ct_check_report(struct ct_cluster *cl, bool print_ok)
{
	const struct ct_topo *ref = cl->ref;
	char why[256];
	int problems = 0, uncovered = 0, first = -1;

	for (int i = 0; i < cl->n; i++) {
		const struct ct_view *v = cl->view[i];

		if (v->topo.version != ref->version) {
			ct_err(&cl->node[i], "has topology version %" PRIu64 ", another node has %" PRIu64,
			       v->topo.version, ref->version);
			problems++;
		} else if (!ct_topo_same(&v->topo, ref, why, sizeof(why))) {
			ct_err(&cl->node[i], "has a different map at the same version %" PRIu64 ": %s",
			       ref->version, why);
			problems++;
		}
		if (ct_topo_find(ref, cl->node[i].id) < 0) {
			ct_err(&cl->node[i], "is not in the newest topology (version %" PRIu64 ")", ref->version);
			problems++;
		}
		for (int s = 0; s < CT_SLOTS; s++) {
			if (v->migrating[s] >= 0) {
				ct_err(&cl->node[i], "slot %d is open: MIGRATING to %s", s,
				       v->topo.node[v->migrating[s]].id);
				problems++;
			}
			if (v->importing[s] >= 0) {
				ct_err(&cl->node[i], "slot %d is open: IMPORTING from %s", s,
				       v->topo.node[v->importing[s]].id);
				problems++;
			}
		}
	}
	for (int s = 0; s <= CT_SLOTS; s++) {
		if (s < CT_SLOTS && ref->owner[s] < 0) {
			if (first < 0)
				first = s;
			uncovered++;
			continue;
		}
		if (first >= 0 && first == s - 1) {
			ct_err(NULL, "slot %d has no owner", first);
			first = -1;
		} else if (first >= 0) {
			ct_err(NULL, "slots %d-%d have no owner", first, s - 1);
			first = -1;
		}
	}
	problems += uncovered > 0;
	for (int i = 0; i < cl->n; i++) {
		int rc = count_strays(cl, i, &problems);

		if (rc)
			return rc;
	}
	if (!problems && print_ok)
		printf("OK: %d nodes agree on topology version %" PRIu64 ", all %d slots covered, "
		       "no open slot, every key on its slot's owner\n", cl->n, ref->version, CT_SLOTS);
	return problems;
}

int ct_cmd_check(const char *entry, const struct ct_opts *opts)
{
	struct ct_cluster *cl = calloc(1, sizeof(*cl));
	int rc = CT_EXIT_CLUSTER, problems;

	if (!cl)
		return CT_EXIT_CLUSTER;
	if (ct_cluster_load(cl, entry, opts))
		goto out;
	problems = ct_check_report(cl, true);
	if (problems > 0)
		printf("%d problem%s found\n", problems, problems == 1 ? "" : "s");
	if (problems == 0)
		rc = CT_EXIT_OK;
out:
	ct_cluster_close(cl);
	free(cl);
	return rc;
}
