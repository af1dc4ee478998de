/* A topology: nodes and slot owners.  Read from a node's CLUSTER NODES
 * (Redis 7.0's format), written as the text of CLUSTERX SETNODES
 * (docs/kv.md, "Cluster": one line per node, "<id> <ip> <port> master -
 * <slot-or-range>..."), and compared between nodes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctool.h"

void ct_topo_init(struct ct_topo *topo)
{
	topo->version = 0;
	topo->n = 0;
	for (int s = 0; s < CT_SLOTS; s++)
		topo->owner[s] = -1;
}

int ct_topo_find(const struct ct_topo *topo, const char *id)
{
	for (int i = 0; i < topo->n; i++)
		if (strcmp(topo->node[i].id, id) == 0)
			return i;
	return -1;
}

/* Index of the node (added when new); -ENOSPC past CT_NODES_MAX. */
int ct_topo_add(struct ct_topo *topo, const char *id, const char *ip, int port)
{
	int i = ct_topo_find(topo, id);

	if (i >= 0)
		return i;
	if (topo->n == CT_NODES_MAX)
		return -ENOSPC;
	i = topo->n++;
	snprintf(topo->node[i].id, sizeof(topo->node[i].id), "%s", id);
	snprintf(topo->node[i].ip, sizeof(topo->node[i].ip), "%s", ip);
	topo->node[i].port = port;
	return i;
}

static bool is_node_id(const char *s, size_t len)
{
	if (len != CT_ID_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* A slot number 0..16383 in [s, s + len); -1 otherwise. */
static int parse_slot(const char *s, size_t len)
{
	int v = 0;

	if (len == 0 || len > 5)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v < CT_SLOTS ? v : -1;
}

/* One slot field of a CLUSTER NODES line for node idx: "N", "A-B",
 * "[N->-id]" (migrating to id) or "[N-<-id]" (importing from id). */
static int parse_slot_field(struct ct_view *view, int idx, const char *f, size_t len,
			    char *why, size_t why_len)
{
	const char *dash;
	int a, b, other;

	if (f[0] == '[') {
		const char *arrow = memchr(f, '-', len);
		char id[CT_ID_LEN + 1];
		bool migrating;

		if (!arrow || len < 5 + CT_ID_LEN || f[len - 1] != ']')
			goto bad;
		a = parse_slot(f + 1, (size_t)(arrow - f - 1));
		if (a < 0)
			goto bad;
		if (arrow[1] == '>' && arrow[2] == '-')
			migrating = true;
		else if (arrow[1] == '<' && arrow[2] == '-')
			migrating = false;
		else
			goto bad;
		if (!is_node_id(arrow + 3, (size_t)(f + len - 1 - (arrow + 3))))
			goto bad;
		memcpy(id, arrow + 3, CT_ID_LEN);
		id[CT_ID_LEN] = '\0';
		other = ct_topo_find(&view->topo, id);
		if (other < 0) {
			/* A node the map does not list yet; it gets no address. */
			other = ct_topo_add(&view->topo, id, "", 0);
			if (other < 0)
				goto bad;
		}
		if (migrating)
			view->migrating[a] = (int16_t)other;
		else
			view->importing[a] = (int16_t)other;
		return 0;
	}
	dash = memchr(f, '-', len);
	if (dash) {
		a = parse_slot(f, (size_t)(dash - f));
		b = parse_slot(dash + 1, (size_t)(f + len - dash - 1));
	} else {
		a = b = parse_slot(f, len);
	}
	if (a < 0 || b < a)
		goto bad;
	for (int s = a; s <= b; s++) {
		if (view->topo.owner[s] >= 0 && view->topo.owner[s] != idx) {
			snprintf(why, why_len, "slot %d is listed for two nodes", s);
			return -EPROTO;
		}
		view->topo.owner[s] = (int16_t)idx;
	}
	return 0;
bad:
	snprintf(why, why_len, "bad slot field '%.*s'", (int)(len > 80 ? 80 : len), f);
	return -EPROTO;
}

/* Parses the text of CLUSTER NODES into view (its version is set apart, by
 * CLUSTERX VERSION).  Node lines are kept in the order given. */
int ct_view_parse_nodes(struct ct_view *view, const char *text, char *why, size_t why_len)
{
	const char *line = text;

	ct_topo_init(&view->topo);
	view->self = -1;
	view->keys = 0;
	for (int s = 0; s < CT_SLOTS; s++)
		view->migrating[s] = view->importing[s] = -1;
	while (*line) {
		const char *eol = strchr(line, '\n');
		const char *f[64 + 16];
		size_t flen[64 + 16];
		int nf = 0, idx, port = 0;
		const char *p, *end = eol ? eol : line + strlen(line);
		char id[CT_ID_LEN + 1], ip[64] = "";

		if (end > line && end[-1] == '\r')
			end--;
		/* Split the line into fields. */
		for (p = line; p < end;) {
			while (p < end && *p == ' ')
				p++;
			if (p == end)
				break;
			f[nf] = p;
			while (p < end && *p != ' ')
				p++;
			flen[nf] = (size_t)(p - f[nf]);
			nf++;
			/* Slot fields past the array: handled in a second pass below. */
			if (nf == (int)(sizeof(f) / sizeof(f[0])))
				break;
		}
		if (nf == 0)
			goto next;
		if (nf < 8 || !is_node_id(f[0], flen[0])) {
			snprintf(why, why_len, "malformed line '%.*s'",
				 (int)((end - line) > 120 ? 120 : (end - line)), line);
			return -EPROTO;
		}
		memcpy(id, f[0], CT_ID_LEN);
		id[CT_ID_LEN] = '\0';
		/* "ip:port@cport[,hostname]" */
		{
			const char *at = memchr(f[1], '@', flen[1]);
			const char *stop = at ? at : f[1] + flen[1];
			const char *colon = NULL;

			for (const char *q = f[1]; q < stop; q++)
				if (*q == ':')
					colon = q;
			if (!colon || (size_t)(colon - f[1]) >= sizeof(ip)) {
				snprintf(why, why_len, "bad address '%.*s'", (int)flen[1], f[1]);
				return -EPROTO;
			}
			memcpy(ip, f[1], (size_t)(colon - f[1]));
			ip[colon - f[1]] = '\0';
			port = atoi(colon + 1);
		}
		idx = ct_topo_find(&view->topo, id);
		if (idx >= 0) {
			/* Named earlier in a migrating/importing field: fill in the address. */
			snprintf(view->topo.node[idx].ip, sizeof(view->topo.node[idx].ip), "%s", ip);
			view->topo.node[idx].port = port;
		} else {
			idx = ct_topo_add(&view->topo, id, ip, port);
			if (idx < 0) {
				snprintf(why, why_len, "more than %d nodes", CT_NODES_MAX);
				return -EPROTO;
			}
		}
		if (memmem(f[2], flen[2], "myself", 6))
			view->self = idx;
		for (int i = 8; i < nf; i++) {
			int rc = parse_slot_field(view, idx, f[i], flen[i], why, why_len);
			if (rc)
				return rc;
		}
		/* A line with more fields than the array: parse the rest in place. */
		if (nf == (int)(sizeof(f) / sizeof(f[0]))) {
			for (p = f[nf - 1] + flen[nf - 1]; p < end;) {
				const char *s;
				int rc;

				while (p < end && *p == ' ')
					p++;
				if (p == end)
					break;
				s = p;
				while (p < end && *p != ' ')
					p++;
				rc = parse_slot_field(view, idx, s, (size_t)(p - s), why, why_len);
				if (rc)
					return rc;
			}
		}
next:
		if (!eol)
			break;
		line = eol + 1;
	}
	return 0;
}

/* Slot ranges owned by node idx, "0-5460 7000", into out; returns the count of slots. */
int ct_topo_ranges(const struct ct_topo *topo, int idx, char *out, size_t out_len)
{
	size_t used = 0;
	int count = 0;

	if (out_len)
		out[0] = '\0';
	for (int s = 0; s < CT_SLOTS; s++) {
		int e = s;
		int w;

		if (topo->owner[s] != idx)
			continue;
		while (e + 1 < CT_SLOTS && topo->owner[e + 1] == idx)
			e++;
		count += e - s + 1;
		if (e == s)
			w = snprintf(out + used, out_len - used, "%s%d", used ? " " : "", s);
		else
			w = snprintf(out + used, out_len - used, "%s%d-%d", used ? " " : "", s, e);
		if (w < 0 || (size_t)w >= out_len - used)
			used = out_len - 1;	/* Truncated; the count stays right. */
		else
			used += (size_t)w;
		s = e;
	}
	return count;
}

int ct_topo_slots_of(const struct ct_topo *topo, int idx)
{
	int count = 0;

	for (int s = 0; s < CT_SLOTS; s++)
		count += topo->owner[s] == idx;
	return count;
}

/* The SETNODES text of topo (malloc'd, NULL when out of memory).  At most
 * 8192 ranges per node (alternate slots), 12 bytes each. */
char *ct_topo_format(const struct ct_topo *topo)
{
	size_t cap = (size_t)topo->n * (CT_ID_LEN + 96) + (size_t)CT_SLOTS * 12 + 1;
	char *out = malloc(cap);
	size_t used = 0;

	if (!out)
		return NULL;
	out[0] = '\0';
	for (int i = 0; i < topo->n; i++) {
		const struct ct_addr *a = &topo->node[i];
		int w = snprintf(out + used, cap - used, "%s%s %s %d master -", i ? "\n" : "",
				 a->id, a->ip, a->port);

		used += (size_t)w;
		for (int s = 0; s < CT_SLOTS; s++) {
			int e = s;

			if (topo->owner[s] != i)
				continue;
			while (e + 1 < CT_SLOTS && topo->owner[e + 1] == i)
				e++;
			if (e == s)
				w = snprintf(out + used, cap - used, " %d", s);
			else
				w = snprintf(out + used, cap - used, " %d-%d", s, e);
			used += (size_t)w;
			s = e;
		}
	}
	return out;
}

/* Same nodes (ids, addresses) and the same owner for every slot; the
 * order in which the nodes are listed does not matter.  Versions are
 * compared by the caller. */
bool ct_topo_same(const struct ct_topo *a, const struct ct_topo *b, char *why, size_t why_len)
{
	int map[CT_NODES_MAX];

	if (a->n != b->n) {
		snprintf(why, why_len, "%d nodes against %d", a->n, b->n);
		return false;
	}
	for (int i = 0; i < a->n; i++) {
		int j = ct_topo_find(b, a->node[i].id);

		if (j < 0) {
			snprintf(why, why_len, "node %s is missing", a->node[i].id);
			return false;
		}
		if (strcmp(a->node[i].ip, b->node[j].ip) != 0 || a->node[i].port != b->node[j].port) {
			snprintf(why, why_len, "node %s is at %s:%d against %s:%d", a->node[i].id,
				 a->node[i].ip, a->node[i].port, b->node[j].ip, b->node[j].port);
			return false;
		}
		map[i] = j;
	}
	for (int s = 0; s < CT_SLOTS; s++) {
		int oa = a->owner[s], ob = b->owner[s];

		if ((oa < 0) != (ob < 0) || (oa >= 0 && map[oa] != ob)) {
			snprintf(why, why_len, "slot %d is owned by %.8s against %.8s", s,
				 oa >= 0 ? a->node[oa].id : "nobody", ob >= 0 ? b->node[ob].id : "nobody");
			return false;
		}
	}
	return true;
}
