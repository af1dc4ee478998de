/* create: a cluster from N running, empty urkv nodes.  The 16384 slots are
 * split into N contiguous ranges (node i gets [i*16384/N, (i+1)*16384/N)),
 * the topology is pushed with version max(current)+1 to every node, and
 * check runs on the result.  Nodes that hold keys are refused: their keys
 * would land in slots other nodes own. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctool.h"

/* 0.0.0.0 or :: (numeric, as ct_parse_hostport gives it): a node listens there, nobody connects there. */
static bool ip_unspecified(const char *ip)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (inet_pton(AF_INET, ip, &a4) == 1)
		return a4.s_addr == htonl(INADDR_ANY);
	return inet_pton(AF_INET6, ip, &a6) == 1 &&
	       (IN6_IS_ADDR_UNSPECIFIED(&a6) ||
		(IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 0 && a6.s6_addr[13] == 0 &&
		 a6.s6_addr[14] == 0 && a6.s6_addr[15] == 0));
}

int ct_cmd_create(int n, char **addrs, const struct ct_opts *opts)
{
	struct ct_cluster *cl = calloc(1, sizeof(*cl));
	struct ct_topo *topo = malloc(sizeof(*topo));
	uint64_t newest = 0;
	int rc = CT_EXIT_CLUSTER, problems;

	if (!cl || !topo)
		goto out;
	cl->opts = opts;
	cl->ref = topo;
	if (n > CT_NODES_MAX) {
		ct_err(NULL, "at most %d nodes", CT_NODES_MAX);
		rc = CT_EXIT_USAGE;
		goto out;
	}
	ct_topo_init(topo);
	for (int i = 0; i < n; i++) {
		char ip[64];
		int port, dup;

		if (ct_parse_hostport(addrs[i], ip, sizeof(ip), &port)) {
			ct_err(NULL, "'%s' is not host:port (or the host does not resolve)", addrs[i]);
			rc = CT_EXIT_USAGE;
			goto out;
		}
		if (ip_unspecified(ip)) {
			ct_err(NULL, "'%s': %s is no address a client can connect to (MOVED and ASK replies "
			       "send clients to the addresses given to create): give the node's address "
			       "on the network, or 127.0.0.1 when every client runs on this host",
			       addrs[i], ip);
			rc = CT_EXIT_USAGE;
			goto out;
		}
		cl->view[i] = calloc(1, sizeof(*cl->view[i]));
		if (!cl->view[i])
			goto out;
		cl->n++;
		if (ct_node_open(&cl->node[i], ip, port, opts))
			goto out;
		dup = ct_cluster_node_of(cl, cl->node[i].id);
		if (dup < i) {
			ct_err(&cl->node[i], "is the same node as %s (id %s)", cl->node[dup].name,
			       cl->node[i].id);
			rc = CT_EXIT_USAGE;
			goto out;
		}
		if (ct_node_read_view(&cl->node[i], cl->view[i]))
			goto out;
		if (cl->view[i]->keys != 0) {
			ct_err(&cl->node[i], "holds %lld keys; create needs empty nodes (move keys "
			       "into a cluster with reshard instead)", cl->view[i]->keys);
			goto out;
		}
		if (cl->view[i]->topo.version > newest)
			newest = cl->view[i]->topo.version;
		if (ct_topo_add(topo, cl->node[i].id, ip, port) != i)
			goto out;
	}
	for (int i = 0; i < n; i++) {
		int lo = (int)((long)i * CT_SLOTS / n), hi = (int)((long)(i + 1) * CT_SLOTS / n);

		for (int s = lo; s < hi; s++)
			topo->owner[s] = (int16_t)i;
	}
	topo->version = newest + 1;
	if (ct_cluster_push(cl, topo, -1))
		goto out;
	ct_say(opts, "pushed topology version %" PRIu64 " to %d nodes", topo->version, n);
	for (int i = 0; i < n; i++) {
		char ranges[64];

		ct_topo_ranges(topo, i, ranges, sizeof(ranges));
		ct_say(opts, "  %s %s slots %s", cl->node[i].id, cl->node[i].name, ranges);
	}
	if (ct_cluster_refresh(cl))
		goto out;
	problems = ct_check_report(cl, true);
	if (problems == 0)
		rc = CT_EXIT_OK;
out:
	if (cl) {
		ct_cluster_close(cl);	/* Frees topo as cl->ref. */
		free(cl);
	} else {
		free(topo);
	}
	return rc;
}
