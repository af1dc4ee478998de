/*
 * The cluster topology of a urkv node: pushed whole by an admin tool
 * (CLUSTERX SETNODES, Kvrocks-style: no gossip, no consensus), plus the
 * node's own MIGRATING / IMPORTING slot states (CLUSTER SETSLOT), kept
 * durably in the cluster file.
 *
 * Design notes.
 *
 * Invariants.
 *  1. A published snapshot (struct urkv_topo) never changes.  Readers load
 *     the pointer and use the snapshot without blocking (cluster_cmd.c
 *     copies what it needs before it looks keys up).
 *  2. The file on disk always describes the snapshot in force or the one
 *     about to be published: an update writes the file (temp file, fsync,
 *     rename, fsync of the directory) before it publishes, and a failed
 *     write publishes nothing (the old topology stays in force).
 *  3. owner[] has no slot given to two nodes (the parser refuses overlaps);
 *     migrating[s] >= 0 only for a slot this node owns, importing[s] >= 0
 *     only for one it does not, both naming a node of the snapshot.
 *
 * States of the node's view: NO FILE -> (urkv_cluster_open creates it,
 * version 0, no nodes) -> EMPTY -> (setnodes) -> VERSION N -> (setnodes
 * with a higher version, or setslot) -> VERSION N'.  A start that fails
 * before it serves anyone goes from EMPTY back to NO FILE when this start
 * created the file (urkv_cluster_remove_created, as main.c does for a new
 * data file).  An update that fails
 * validation or cannot write the file leaves the state as it was.
 *
 * Transitions and the functions doing them:
 *   open / create file .......... urkv_cluster_open (main thread, at start)
 *   push a topology ............. urkv_cluster_setnodes -> publish
 *   MIGRATING / IMPORTING / STABLE urkv_cluster_setslot -> publish (one write for
 *                                the slots of one CLUSTERX SETSLOTS)
 *
 * Memory of old snapshots (a small RCU): publish swaps the pointer, then
 * runs an empty job on every core (urt_core_run_all).  A job runs on a
 * core only between fibers, and no reader holds a snapshot across a
 * yield, so once every core has run it no reader holds the old snapshot
 * and it is freed.  Updates are serialised by a mutex taken with trylock
 * and a 1 ms sleep of the fiber, so a waiting update never blocks its
 * reactor thread.
 *
 * Blocking.  The file write (a few KiB: one line per node with its
 * ranges) is plain write + fsync + rename + fsync on the reactor thread of
 * the fiber doing the update.  These are admin commands, a handful per
 * slot moved; the file is small, and the wait is one or two device
 * flushes (FACTS.md: 20-50 us here).  Keyed commands never wait for it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/assert.h"
#include "cluster.h"
#include "urt/urt.h"

#define CLUSTER_FILE_MAX (4u << 20)	/* Largest cluster file read. */
#define CLUSTER_LOCK_WAIT_NS 1000000ull	/* Sleep between trylocks of an update. */

static struct urkv_topo *topo_new(unsigned nodes_cap)
{
	struct urkv_topo *t = malloc(sizeof(*t));

	if (!t)
		return NULL;
	t->version = 0;
	t->me = -1;
	t->nnodes = 0;
	t->nodes = calloc(nodes_cap ? nodes_cap : 1, sizeof(*t->nodes));
	if (!t->nodes) {
		free(t);
		return NULL;
	}
	memset(t->owner, 0xff, sizeof(t->owner));	/* -1: nobody. */
	memset(t->migrating, 0xff, sizeof(t->migrating));
	memset(t->importing, 0xff, sizeof(t->importing));
	return t;
}

void urkv_topo_free(struct urkv_topo *t)
{
	if (!t)
		return;
	free(t->nodes);
	free(t);
}

static struct urkv_topo *topo_copy(const struct urkv_topo *src)
{
	struct urkv_topo *t = topo_new(src->nnodes);

	if (!t)
		return NULL;
	struct urkv_cnode *nodes = t->nodes;

	memcpy(t, src, sizeof(*t));
	t->nodes = nodes;
	memcpy(t->nodes, src->nodes, src->nnodes * sizeof(*src->nodes));
	return t;
}

static int node_find(const struct urkv_topo *t, const char *id, size_t len)
{
	if (len != URKV_NODE_ID_LEN)
		return -1;
	for (unsigned i = 0; i < t->nnodes; i++)
		if (memcmp(t->nodes[i].id, id, len) == 0)
			return (int)i;
	return -1;
}

static bool id_ok(const char *s, size_t len)
{
	if (len != URKV_NODE_ID_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* A numeric IPv4 or IPv6 address shorter than len (the node's ip field). */
static bool ip_ok(const char *s, size_t len)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (strlen(s) == 0 || strlen(s) >= len)
		return false;
	return inet_pton(AF_INET, s, &a4) == 1 || inet_pton(AF_INET6, s, &a6) == 1;
}

/* A decimal number without sign of at most max; false if not one. */
static bool num_ok(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 20)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

/* Splits line (NUL-terminated, modified) at blanks; returns the field count (at most max). */
static unsigned split(char *line, char **f, unsigned max, bool *more)
{
	unsigned n = 0;
	char *p = line;

	*more = false;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			return n;
		if (n == max) {
			*more = true;
			return n;
		}
		f[n++] = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
		if (*p)
			*p++ = 0;
	}
}

#define FIELDS_MAX (URKV_SLOTS + 8)

/*
 * One node line: "<id> <ip> <port> master - <slot-or-range>...", added to
 * t (whose line_of[] says which line took each slot, for the overlap
 * message).  Returns 0, or -1 with the reason in err.
 */
static int node_line(struct urkv_topo *t, char *line, unsigned lineno, unsigned *line_of,
		     unsigned nodes_cap, char **f, char *err, size_t errlen)
{
	bool more;
	unsigned n = split(line, f, FIELDS_MAX, &more);
	struct urkv_cnode *nd;
	uint64_t port;

	if (more) {
		snprintf(err, errlen, "line %u has too many fields", lineno);
		return -1;
	}
	if (n < 5) {
		snprintf(err, errlen, "line %u is malformed: want '<node-id> <ip> <port> master - "
			 "[<slot>|<start>-<end> ...]', got %u field%s", lineno, n, n == 1 ? "" : "s");
		return -1;
	}
	if (!id_ok(f[0], strlen(f[0]))) {
		snprintf(err, errlen, "line %u: invalid node id '%.64s' (want 40 lowercase hex characters)",
			 lineno, f[0]);
		return -1;
	}
	if (node_find(t, f[0], strlen(f[0])) >= 0) {
		snprintf(err, errlen, "line %u: duplicate node id %s", lineno, f[0]);
		return -1;
	}
	if (!ip_ok(f[1], sizeof(nd->ip))) {
		/* Clients dial it from -MOVED and -ASK as it is, with no resolver (as Redis's). */
		snprintf(err, errlen, "line %u: invalid ip '%.64s' (want an IPv4 or IPv6 address, "
			 "such as 10.0.0.7 or fd00::7)", lineno, f[1]);
		return -1;
	}
	if (!num_ok(f[2], strlen(f[2]), 65535, &port) || port == 0) {
		snprintf(err, errlen, "line %u: invalid port '%.32s' (want 1..65535)", lineno, f[2]);
		return -1;
	}
	if (strcmp(f[3], "master") != 0) {
		snprintf(err, errlen, "line %u: role '%.32s' is not supported (urkv nodes are all "
			 "'master': no replicas)", lineno, f[3]);
		return -1;
	}
	if (strcmp(f[4], "-") != 0) {
		snprintf(err, errlen, "line %u: the field after 'master' must be '-', got '%.64s'",
			 lineno, f[4]);
		return -1;
	}
	for (unsigned i = 0; i < t->nnodes; i++)
		if (t->nodes[i].port == port && strcmp(t->nodes[i].ip, f[1]) == 0) {
			snprintf(err, errlen, "line %u: address %s:%u is already node %s", lineno, f[1],
				 (unsigned)port, t->nodes[i].id);
			return -1;
		}
	if (t->nnodes >= nodes_cap || t->nnodes >= URKV_NODES_MAX) {
		snprintf(err, errlen, "line %u: more than %u nodes", lineno, URKV_NODES_MAX);
		return -1;
	}
	nd = &t->nodes[t->nnodes];
	memcpy(nd->id, f[0], URKV_NODE_ID_LEN + 1);
	snprintf(nd->ip, sizeof(nd->ip), "%s", f[1]);
	nd->port = (uint16_t)port;
	for (unsigned i = 5; i < n; i++) {
		char *dash = strchr(f[i], '-');
		uint64_t a, b;

		if (dash) {
			if (!num_ok(f[i], (size_t)(dash - f[i]), URKV_SLOTS - 1, &a) ||
			    !num_ok(dash + 1, strlen(dash + 1), URKV_SLOTS - 1, &b)) {
				snprintf(err, errlen, "line %u: invalid slot range '%.32s' (slots are "
					 "0..16383)", lineno, f[i]);
				return -1;
			}
			if (a > b) {
				snprintf(err, errlen, "line %u: invalid slot range '%.32s' (start is "
					 "above end)", lineno, f[i]);
				return -1;
			}
		} else {
			if (!num_ok(f[i], strlen(f[i]), URKV_SLOTS - 1, &a)) {
				snprintf(err, errlen, "line %u: invalid slot '%.32s' (slots are 0..16383)",
					 lineno, f[i]);
				return -1;
			}
			b = a;
		}
		for (uint64_t s = a; s <= b; s++) {
			if (t->owner[s] >= 0) {
				snprintf(err, errlen, "line %u: slot %" PRIu64 " overlaps: already given "
					 "to node %s on line %u", lineno, s,
					 t->nodes[t->owner[s]].id, line_of[s]);
				return -1;
			}
			t->owner[s] = (int16_t)t->nnodes;
			line_of[s] = lineno;
		}
	}
	t->nnodes++;
	return 0;
}

/* Same nodes, addresses and slots (the open slot states are this node's own). */
static bool topo_same_map(const struct urkv_topo *a, const struct urkv_topo *b)
{
	if (a->nnodes != b->nnodes || memcmp(a->owner, b->owner, sizeof(a->owner)) != 0)
		return false;
	for (unsigned i = 0; i < a->nnodes; i++)
		if (strcmp(a->nodes[i].id, b->nodes[i].id) != 0 ||
		    strcmp(a->nodes[i].ip, b->nodes[i].ip) != 0 || a->nodes[i].port != b->nodes[i].port)
			return false;
	return true;
}

/* The file. */

void urkv_topo_ranges(const struct urkv_topo *t, int node, FILE *f)
{
	for (unsigned s = 0; s < URKV_SLOTS; s++) {
		unsigned e = s;

		if (t->owner[s] != node)
			continue;
		while (e + 1 < URKV_SLOTS && t->owner[e + 1] == node)
			e++;
		if (e == s)
			fprintf(f, " %u", s);
		else
			fprintf(f, " %u-%u", s, e);
		s = e;
	}
}

static char *topo_text(const struct urkv_cluster *cl, const struct urkv_topo *t, size_t *len)
{
	char *text = NULL;
	FILE *f = open_memstream(&text, len);

	if (!f)
		return NULL;
	fprintf(f, "# urkv cluster file: written by urkv at each CLUSTERX SETNODES and CLUSTER "
		   "SETSLOT; do not edit.\nurkv-cluster 1\nmyid %s\nversion %" PRIu64 "\n",
		cl->myid, t->version);
	for (unsigned i = 0; i < t->nnodes; i++) {
		fprintf(f, "node %s %s %u master -", t->nodes[i].id, t->nodes[i].ip, t->nodes[i].port);
		urkv_topo_ranges(t, (int)i, f);
		fputc('\n', f);
	}
	for (unsigned s = 0; s < URKV_SLOTS; s++) {
		if (t->migrating[s] >= 0)
			fprintf(f, "migrating %u %s\n", s, t->nodes[t->migrating[s]].id);
		if (t->importing[s] >= 0)
			fprintf(f, "importing %u %s\n", s, t->nodes[t->importing[s]].id);
	}
	fprintf(f, "end\n");
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

/* Writes the file atomically: temp file, fsync, rename, fsync of the directory.  0 or -errno. */
static int file_save(const struct urkv_cluster *cl, const struct urkv_topo *t)
{
	char tmp[sizeof(cl->path) + 8], dir[sizeof(cl->path)];
	size_t len = 0, done = 0;
	char *text = topo_text(cl, t, &len), *slash;
	int fd, ret = 0;

	if (!text)
		return -ENOMEM;
	snprintf(tmp, sizeof(tmp), "%s.tmp", cl->path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	while (done < len) {
		ssize_t n = write(fd, text + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			break;
		}
		done += (size_t)n;
	}
	if (ret == 0 && fsync(fd) != 0)
		ret = -errno;
	if (close(fd) != 0 && ret == 0)
		ret = -errno;
	if (ret == 0 && rename(tmp, cl->path) != 0)
		ret = -errno;
	if (ret) {
		unlink(tmp);
		goto out;
	}
	snprintf(dir, sizeof(dir), "%s", cl->path);
	slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = 0;
	else if (slash)
		*slash = 0;
	else
		snprintf(dir, sizeof(dir), ".");
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0)
		ret = -errno;
	if (fd >= 0)
		close(fd);
out:
	free(text);
	return ret;
}

/* Reads the file into *out; -1 after printing FILE:LINE: reason. */
static int file_load(struct urkv_cluster *cl, char *text, struct urkv_topo **out)
{
	unsigned lineno = 0, nlines = 1, *line_of = NULL;
	char **f = malloc(FIELDS_MAX * sizeof(*f)), err[512];
	struct urkv_topo *t = NULL;
	bool header = false, got_id = false, got_version = false, ended = false;
	char *line = text;

	for (char *p = text; *p; p++)
		nlines += *p == '\n';
	line_of = calloc(URKV_SLOTS, sizeof(*line_of));
	t = topo_new(nlines);
	if (!f || !line_of || !t) {
		fprintf(stderr, "urkv: %s: out of memory\n", cl->path);
		goto err;
	}
	while (line && *line) {
		char *nl = strchr(line, '\n'), *fl[4];
		bool more;
		unsigned n;

		lineno++;
		if (!nl) {
			fprintf(stderr, "urkv: %s:%u: the last line has no end of line (the file is "
				"truncated or damaged)\n", cl->path, lineno);
			goto err;
		}
		*nl = 0;
		if (ended) {
			fprintf(stderr, "urkv: %s:%u: text after the 'end' line (damaged file)\n",
				cl->path, lineno);
			goto err;
		}
		if (line[0] == '#' || line[0] == 0) {
			line = nl + 1;
			continue;
		}
		if (!header) {
			if (strcmp(line, "urkv-cluster 1") != 0) {
				fprintf(stderr, "urkv: %s:%u: not a urkv cluster file (want "
					"'urkv-cluster 1', got '%.64s')\n", cl->path, lineno, line);
				goto err;
			}
			header = true;
		} else if (strncmp(line, "node ", 5) == 0) {
			if (!got_version) {
				fprintf(stderr, "urkv: %s:%u: 'node' before 'version'\n", cl->path, lineno);
				goto err;
			}
			if (node_line(t, line + 5, lineno, line_of, nlines, f, err, sizeof(err))) {
				/*
				 * err is worded for a push ("line N: ..."); FILE:N says
				 * the line already, so its "line N: " is dropped.
				 */
				char pre[32];
				int k = snprintf(pre, sizeof(pre), "line %u: ", lineno);
				const char *why = strncmp(err, pre, (size_t)k) == 0 ? err + k : err;

				fprintf(stderr, "urkv: %s:%u: %s\n", cl->path, lineno, why);
				goto err;
			}
		} else if (strncmp(line, "migrating ", 10) == 0 || strncmp(line, "importing ", 10) == 0) {
			bool mig = line[0] == 'm';
			uint64_t slot;
			int node;

			n = split(line, fl, 4, &more);
			if (n != 3 || more || !num_ok(fl[1], strlen(fl[1]), URKV_SLOTS - 1, &slot)) {
				fprintf(stderr, "urkv: %s:%u: malformed '%s' line (want '%s <slot> "
					"<node-id>')\n", cl->path, lineno, fl[0], fl[0]);
				goto err;
			}
			node = node_find(t, fl[2], strlen(fl[2]));
			if (node < 0 || node == t->me || (mig ? t->owner[slot] != t->me || t->me < 0
							      : t->owner[slot] == t->me)) {
				fprintf(stderr, "urkv: %s:%u: slot %" PRIu64 " cannot be %s node %.64s "
					"(unknown node, or a slot %s)\n", cl->path, lineno, slot,
					mig ? "migrating to" : "importing from", fl[2],
					mig ? "this node does not own" : "this node owns");
				goto err;
			}
			if (mig)
				t->migrating[slot] = (int16_t)node;
			else
				t->importing[slot] = (int16_t)node;
		} else if (strncmp(line, "myid ", 5) == 0 && !got_id) {
			if (!id_ok(line + 5, strlen(line + 5))) {
				fprintf(stderr, "urkv: %s:%u: invalid node id '%.64s'\n", cl->path, lineno,
					line + 5);
				goto err;
			}
			memcpy(cl->myid, line + 5, URKV_NODE_ID_LEN + 1);
			got_id = true;
		} else if (strncmp(line, "version ", 8) == 0 && got_id && !got_version) {
			if (!num_ok(line + 8, strlen(line + 8), UINT64_MAX, &t->version)) {
				fprintf(stderr, "urkv: %s:%u: invalid version '%.32s'\n", cl->path, lineno,
					line + 8);
				goto err;
			}
			got_version = true;
		} else if (strcmp(line, "end") == 0 && got_version) {
			ended = true;
		} else {
			fprintf(stderr, "urkv: %s:%u: unexpected line '%.64s' (damaged file; want "
				"myid, version, node, migrating, importing, end in that order)\n",
				cl->path, lineno, line);
			goto err;
		}
		/* The node list is complete before the slot states: find this node. */
		if (got_id && t->me < 0)
			t->me = node_find(t, cl->myid, URKV_NODE_ID_LEN);
		line = nl + 1;
	}
	if (!ended) {
		fprintf(stderr, "urkv: %s:%u: no 'end' line (the file is truncated or damaged)\n",
			cl->path, lineno);
		goto err;
	}
	free(f);
	free(line_of);
	*out = t;
	return 0;
err:
	free(f);
	free(line_of);
	urkv_topo_free(t);
	return -1;
}

int urkv_cluster_open(struct urkv_server *srv)
{
	struct urkv_cluster *cl = calloc(1, sizeof(*cl));
	struct urkv_topo *t = NULL;
	char *text = NULL;
	FILE *f;
	int ret;

	if (!cl) {
		fprintf(stderr, "urkv: out of memory\n");
		return -1;
	}
	pthread_mutex_init(&cl->lock, NULL);
	if (srv->o.cluster_config_file)
		snprintf(cl->path, sizeof(cl->path), "%s", srv->o.cluster_config_file);
	else
		snprintf(cl->path, sizeof(cl->path), "%s.cluster", srv->data_path);
	f = fopen(cl->path, "r");
	if (!f && errno != ENOENT) {
		fprintf(stderr, "urkv: cannot read the cluster file %s: %s\n", cl->path, strerror(errno));
		goto err;
	}
	if (f) {
		struct stat st;
		size_t len;
		int rerr = 0;

		/* fopen opens a directory for reading; only its read fails, with EISDIR. */
		if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
			fprintf(stderr, "urkv: cannot read the cluster file %s: it is a directory "
				"(--cluster-config-file takes a file's path)\n", cl->path);
			fclose(f);
			goto err;
		}
		text = malloc(CLUSTER_FILE_MAX + 1);
		errno = 0;
		len = text ? fread(text, 1, CLUSTER_FILE_MAX + 1, f) : 0;
		if (text && ferror(f))
			rerr = errno ? errno : EIO;
		if (!text || rerr || len > CLUSTER_FILE_MAX) {
			fprintf(stderr, "urkv: cannot read the cluster file %s: %s\n", cl->path,
				!text ? "out of memory" : rerr ? strerror(rerr) : "larger than 4 MiB");
			fclose(f);
			goto err;
		}
		fclose(f);
		if (len == 0) {
			fprintf(stderr, "urkv: %s:1: the cluster file is empty (damaged; restore it or "
				"move it away to start this node as a new one)\n", cl->path);
			goto err;
		}
		text[len] = 0;
		if (strlen(text) != len) {
			fprintf(stderr, "urkv: %s: the cluster file holds NUL bytes (damaged)\n", cl->path);
			goto err;
		}
		if (file_load(cl, text, &t) != 0)
			goto err;
		free(text);
		text = NULL;
	} else {
		unsigned char rnd[URKV_NODE_ID_LEN / 2];

		/* A new node: a random id, version 0, no topology yet. */
		if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
			fprintf(stderr, "urkv: getrandom: %s\n", strerror(errno));
			goto err;
		}
		for (size_t i = 0; i < sizeof(rnd); i++)
			snprintf(cl->myid + 2 * i, 3, "%02x", rnd[i]);
		t = topo_new(1);
		if (!t) {
			fprintf(stderr, "urkv: out of memory\n");
			goto err;
		}
		ret = file_save(cl, t);
		if (ret) {
			fprintf(stderr, "urkv: cannot write the cluster file %s: %s\n", cl->path,
				strerror(-ret));
			goto err;
		}
		/* Remembered so that a failed start removes only this file (urkv_cluster_remove_created). */
		urkv_new_file_note(&cl->created, cl->path, false);
	}
	atomic_init(&cl->topo, t);
	srv->cluster = cl;
	return 0;
err:
	free(text);
	urkv_topo_free(t);
	pthread_mutex_destroy(&cl->lock);
	free(cl);
	return -1;
}

void urkv_cluster_remove_created(struct urkv_server *srv, bool quiet)
{
	if (srv->cluster)
		urkv_new_file_remove(&srv->cluster->created, srv->cluster->path, "the cluster file ",
				     quiet);
}

void urkv_cluster_close(struct urkv_server *srv)
{
	struct urkv_cluster *cl = srv->cluster;

	if (!cl)
		return;
	urkv_topo_free(atomic_load(&cl->topo));
	pthread_mutex_destroy(&cl->lock);
	free(cl);
	srv->cluster = NULL;
}

const struct urkv_topo *urkv_cluster_topo(struct urkv_server *srv)
{
	return atomic_load_explicit(&srv->cluster->topo, memory_order_acquire);
}

struct urkv_topo *urkv_cluster_topo_copy(struct urkv_server *srv)
{
	/* No yield between the load and the copy: the snapshot stays valid (RCU above). */
	return topo_copy(urkv_cluster_topo(srv));
}

/* Updates. */

static void update_lock(struct urkv_cluster *cl)
{
	while (pthread_mutex_trylock(&cl->lock) != 0)
		urt_sleep_ns(CLUSTER_LOCK_WAIT_NS);
}

static int quiesce(void *arg)
{
	(void)arg;
	return 0;
}

/* Stores t durably and publishes it; frees the old one.  Called with the lock held. */
static const char *publish(struct urkv_server *srv, struct urkv_topo *t, char *err, size_t errlen)
{
	struct urkv_cluster *cl = srv->cluster;
	struct urkv_topo *old;
	int ret = file_save(cl, t);

	if (ret) {
		urkv_topo_free(t);
		snprintf(err, errlen, "ERR cannot write the cluster file %s: %s (the topology in "
			 "force is unchanged)", cl->path, strerror(-ret));
		return err;
	}
	old = atomic_exchange_explicit(&cl->topo, t, memory_order_acq_rel);
	/* Every core passes a scheduling point: no reader holds old any more. */
	urt_core_run_all(srv->rt, quiesce, NULL);
	urkv_topo_free(old);
	return NULL;
}

const char *urkv_cluster_setnodes(struct urkv_server *srv, const char *text, size_t len,
				  const char *version, size_t vlen, char *err, size_t errlen)
{
	struct urkv_cluster *cl = srv->cluster;
	unsigned nlines = 1, lineno = 0, *line_of = calloc(URKV_SLOTS, sizeof(*line_of));
	char **f = malloc(FIELDS_MAX * sizeof(*f)), *buf = malloc(len + 1), *line;
	const struct urkv_topo *cur;
	struct urkv_topo *t = NULL;
	const char *res = NULL;
	uint64_t v;

	if (!line_of || !f || !buf) {
		res = "ERR out of memory";
		goto out;
	}
	if (!num_ok(version, vlen, INT64_MAX, &v) || v == 0) {
		snprintf(err, errlen, "ERR Invalid version '%.*s' (want a positive integer)",
			 (int)(vlen > 32 ? 32 : vlen), version);
		res = err;
		goto out;
	}
	memcpy(buf, text, len);
	buf[len] = 0;
	if (strlen(buf) != len) {
		res = "ERR Invalid cluster topology: it holds a NUL byte";
		goto out;
	}
	for (size_t i = 0; i < len; i++)
		nlines += buf[i] == '\n';
	t = topo_new(nlines);
	if (!t) {
		res = "ERR out of memory";
		goto out;
	}
	line = buf;
	while (line) {
		char *nl = strchr(line, '\n');
		size_t ll;

		if (nl)
			*nl = 0;
		lineno++;
		ll = strlen(line);
		if (ll && line[ll - 1] == '\r')
			line[--ll] = 0;
		if (strspn(line, " \t") != ll && node_line(t, line, lineno, line_of, nlines, f,
							    err + 32, errlen - 32)) {
			/* "ERR Invalid cluster topology: " in front of the parser's reason. */
			size_t rl = strlen(err + 32);

			memmove(err + 30, err + 32, rl + 1);
			memcpy(err, "ERR Invalid cluster topology: ", 30);
			res = err;
			goto out;
		}
		line = nl ? nl + 1 : NULL;
	}
	if (t->nnodes == 0) {
		res = "ERR Invalid cluster topology: no node";
		goto out;
	}
	t->version = v;
	t->me = node_find(t, cl->myid, URKV_NODE_ID_LEN);
	update_lock(cl);
	cur = atomic_load(&cl->topo);
	if (v < cur->version) {
		snprintf(err, errlen, "ERR topology version %" PRIu64 " is older than the current "
			 "version %" PRIu64, v, cur->version);
		res = err;
	} else if (v == cur->version) {
		if (!topo_same_map(t, cur)) {
			snprintf(err, errlen, "ERR topology version %" PRIu64 " is the current version "
				 "with a different topology (push it with a higher version)", v);
			res = err;
		}
		/* Same version, same map: +OK and nothing changes (the tool may rerun). */
	} else {
		/* Open slot states survive while they still make sense (CLUSTER-SPEC.md). */
		for (unsigned s = 0; s < URKV_SLOTS; s++) {
			int m = cur->migrating[s], i = cur->importing[s];

			if (m >= 0) {
				int nm = node_find(t, cur->nodes[m].id, URKV_NODE_ID_LEN);

				if (nm >= 0 && t->me >= 0 && t->owner[s] == t->me && nm != t->me)
					t->migrating[s] = (int16_t)nm;
			}
			if (i >= 0) {
				int ni = node_find(t, cur->nodes[i].id, URKV_NODE_ID_LEN);

				if (ni >= 0 && t->owner[s] != t->me && ni != t->me)
					t->importing[s] = (int16_t)ni;
			}
		}
		res = publish(srv, t, err, errlen);
		t = NULL;	/* publish took it. */
	}
	pthread_mutex_unlock(&cl->lock);
out:
	urkv_topo_free(t);
	free(line_of);
	free(f);
	free(buf);
	return res;
}

const char *urkv_cluster_setslot(struct urkv_server *srv, const unsigned *slots, unsigned n,
				 enum urkv_slot_state st, const char *id, size_t idlen, char *err,
				 size_t errlen)
{
	struct urkv_cluster *cl = srv->cluster;
	const struct urkv_topo *cur;
	struct urkv_topo *t;
	const char *res = NULL;
	bool change = false;
	int node = -1;

	update_lock(cl);
	cur = atomic_load(&cl->topo);
	if (st != URKV_SLOT_STABLE) {
		node = node_find(cur, id, idlen);
		if (node < 0) {
			snprintf(err, errlen, "ERR I don't know about node %.*s", (int)(idlen > 64 ? 64 : idlen),
				 id);
			res = err;
		} else if (node == cur->me) {
			snprintf(err, errlen, "ERR node %s is this node: a slot moves between two nodes",
				 cur->nodes[node].id);
			res = err;
		}
	}
	/* Every slot is checked before any changes: all or nothing. */
	for (unsigned i = 0; i < n && !res; i++) {
		unsigned slot = slots[i];

		URT_ASSERT(slot < URKV_SLOTS);
		if (st == URKV_SLOT_MIGRATING && (cur->me < 0 || cur->owner[slot] != cur->me)) {
			snprintf(err, errlen, "ERR I'm not the owner of hash slot %u", slot);
			res = err;
		} else if (st == URKV_SLOT_IMPORTING && cur->me >= 0 && cur->owner[slot] == cur->me) {
			snprintf(err, errlen, "ERR I'm already the owner of hash slot %u", slot);
			res = err;
		}
		change |= st == URKV_SLOT_MIGRATING ? cur->migrating[slot] != node || cur->importing[slot] >= 0
			: st == URKV_SLOT_IMPORTING ? cur->importing[slot] != node || cur->migrating[slot] >= 0
			: cur->migrating[slot] >= 0 || cur->importing[slot] >= 0;
	}
	if (res || !change)
		goto out;	/* Refused, or already so: nothing to write. */
	t = topo_copy(cur);
	if (!t) {
		res = "ERR out of memory";
		goto out;
	}
	for (unsigned i = 0; i < n; i++) {
		t->migrating[slots[i]] = st == URKV_SLOT_MIGRATING ? (int16_t)node : -1;
		t->importing[slots[i]] = st == URKV_SLOT_IMPORTING ? (int16_t)node : -1;
	}
	/* One file write for all of them. */
	res = publish(srv, t, err, errlen);
out:
	pthread_mutex_unlock(&cl->lock);
	return res;
}
