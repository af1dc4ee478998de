/* Every node of a cluster, found from one of them, and pushing a topology
 * to all of them.
 *
 * Discovery: the entry node's view names the other nodes; each of them is
 * read in turn, and any node a view names that is not known yet is added,
 * so nodes that disagree (one behind after an interrupted push) are all
 * found.  The reference topology is the newest version any node holds. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctool.h"

int ct_cluster_node_of(const struct ct_cluster *cl, const char *id)
{
	for (int i = 0; i < cl->n; i++)
		if (strcmp(cl->node[i].id, id) == 0)
			return i;
	return -1;
}

static int cluster_add(struct ct_cluster *cl, const char *ip, int port)
{
	struct ct_node *node;
	int i = cl->n;

	if (i == CT_NODES_MAX) {
		ct_err(NULL, "more than %d nodes", CT_NODES_MAX);
		return -ENOSPC;
	}
	node = &cl->node[i];
	cl->view[i] = calloc(1, sizeof(*cl->view[i]));
	if (!cl->view[i])
		return -ENOMEM;
	cl->n++;
	if (ct_node_open(node, ip, port, cl->opts))
		return -EIO;
	return ct_node_read_view(node, cl->view[i]);
}

/* Re-reads every node's view and the reference topology. */
int ct_cluster_refresh(struct ct_cluster *cl)
{
	uint64_t newest = 0;
	int best = -1;

	for (int i = 0; i < cl->n; i++) {
		int rc = ct_node_read_view(&cl->node[i], cl->view[i]);

		if (rc)
			return rc;
		if (best < 0 || cl->view[i]->topo.version > newest) {
			newest = cl->view[i]->topo.version;
			best = i;
		}
	}
	*cl->ref = cl->view[best]->topo;
	return 0;
}

int ct_cluster_load(struct ct_cluster *cl, const char *entry, const struct ct_opts *opts)
{
	char ip[64];
	int port, rc;

	memset(cl, 0, sizeof(*cl));
	cl->opts = opts;
	cl->ref = malloc(sizeof(*cl->ref));
	if (!cl->ref)
		return -ENOMEM;
	if (ct_parse_hostport(entry, ip, sizeof(ip), &port)) {
		ct_err(NULL, "'%s' is not host:port (or the host does not resolve)", entry);
		return -EINVAL;
	}
	rc = cluster_add(cl, ip, port);
	if (rc)
		return rc;
	if (cl->view[0]->topo.version == 0) {
		ct_err(&cl->node[0], "has no topology yet (version 0): run urkv-cluster create first");
		return -ENOENT;
	}
	/* Breadth-first over the nodes named by the views read so far. */
	for (int v = 0; v < cl->n; v++) {
		const struct ct_topo *t = &cl->view[v]->topo;

		for (int j = 0; j < t->n; j++) {
			if (ct_cluster_node_of(cl, t->node[j].id) >= 0)
				continue;
			if (t->node[j].port == 0) {
				ct_err(&cl->node[v], "names node %s without an address", t->node[j].id);
				return -EPROTO;
			}
			rc = cluster_add(cl, t->node[j].ip, t->node[j].port);
			if (rc)
				return rc;
			if (strcmp(cl->node[cl->n - 1].id, t->node[j].id) != 0) {
				ct_err(&cl->node[cl->n - 1], "is listed as node %s but its id is %s",
				       t->node[j].id, cl->node[cl->n - 1].id);
				return -EPROTO;
			}
		}
	}
	return ct_cluster_refresh(cl);
}

void ct_cluster_close(struct ct_cluster *cl)
{
	for (int i = 0; i < cl->n; i++) {
		ct_node_close(&cl->node[i]);
		free(cl->view[i]);
	}
	free(cl->ref);
	cl->n = 0;
}

/* A node id from a full id or a unique prefix of at least 4 characters. */
int ct_cluster_resolve_id(const struct ct_cluster *cl, const char *prefix, char *why, size_t why_len)
{
	size_t len = strlen(prefix);
	int found = -1;

	if (len < 4 || len > CT_ID_LEN) {
		snprintf(why, why_len, "'%s' is not a node id (give 4 to %d of its characters)", prefix,
			 CT_ID_LEN);
		return -EINVAL;
	}
	for (int i = 0; i < cl->n; i++) {
		if (strncmp(cl->node[i].id, prefix, len) != 0)
			continue;
		if (found >= 0) {
			snprintf(why, why_len, "'%s' matches more than one node id", prefix);
			return -EINVAL;
		}
		found = i;
	}
	if (found < 0)
		snprintf(why, why_len, "no node of the cluster has an id starting with '%s'", prefix);
	return found < 0 ? -ENOENT : found;
}

/* CLUSTERX SETNODES topo to every node: first (a cluster index, or -1) on
 * its own and before the others, then the others at once (pipelined, so
 * their durable writes overlap).  Every node must answer +OK. */
int ct_cluster_push(struct ct_cluster *cl, const struct ct_topo *topo, int first)
{
	char version[32], what[64];
	char *text = ct_topo_format(topo);
	const char *argv[4] = { "CLUSTERX", "SETNODES", text, version };
	int rc = 0;

	if (!text)
		return -ENOMEM;
	snprintf(version, sizeof(version), "%" PRIu64, topo->version);
	snprintf(what, sizeof(what), "CLUSTERX SETNODES (version %s)", version);
	if (first >= 0) {
		rc = ct_node_expect_ok(&cl->node[first], ct_node_cmd(&cl->node[first], 4, argv, NULL), what);
		if (rc)
			goto out;
	}
	for (int i = 0; i < cl->n; i++) {
		if (i == first)
			continue;
		if (!cl->node[i].ctx || redisAppendCommandArgv(cl->node[i].ctx, 4, argv, NULL) != REDIS_OK) {
			ct_err(&cl->node[i], "%s: not connected", what);
			rc = -EIO;
		}
	}
	for (int i = 0; i < cl->n; i++) {
		void *reply = NULL;

		if (i == first || !cl->node[i].ctx)
			continue;
		if (redisGetReply(cl->node[i].ctx, &reply) != REDIS_OK) {
			char buf[96];

			ct_err(&cl->node[i], "%s: %s", what, ct_node_failure(&cl->node[i], buf, sizeof(buf)));
			ct_node_close(&cl->node[i]);
			rc = -EIO;
			continue;
		}
		if (ct_node_expect_ok(&cl->node[i], reply, what))
			rc = -EPROTO;
	}
out:
	free(text);
	return rc;
}

/* CLUSTERX SETNODES topo to one node only (fix uses it to bring a node that
 * missed a push up to the newest version). */
int ct_node_push(struct ct_node *node, const struct ct_topo *topo)
{
	char version[32], what[64];
	char *text = ct_topo_format(topo);
	const char *argv[4] = { "CLUSTERX", "SETNODES", text, version };
	int rc;

	if (!text)
		return -ENOMEM;
	snprintf(version, sizeof(version), "%" PRIu64, topo->version);
	snprintf(what, sizeof(what), "CLUSTERX SETNODES (version %s)", version);
	rc = ct_node_expect_ok(node, ct_node_cmd(node, 4, argv, NULL), what);
	free(text);
	return rc;
}
