/*
 * DUMP, RESTORE (RESTORE-ASKING) and MIGRATE: how a urkv node moves keys
 * to another node, as redis-cli --cluster reshard and urkv-cluster drive
 * it.
 *
 * DUMP payload (urkv's own format, not Redis's RDB; docs/kv.md):
 *
 *     byte 0         type: 0 = string (every urkv value)
 *     bytes 1..n     the value, as stored
 *     2 bytes        format version, little endian (URKV_DUMP_VERSION)
 *     4 bytes        CRC32C of everything before it, little endian
 *
 * A payload that is too short, of another version or whose CRC does not
 * match is refused with Redis's "ERR DUMP payload version or checksum are
 * wrong"; a Redis payload is refused the same way.
 *
 * MIGRATE (design notes).
 *
 *  1. Hold.  The slots of the keys are held with the slot gate
 *     (cluster.h): commands on them that come later wait, and the ones
 *     already admitted drain first.  From here until step 5 nothing but
 *     this MIGRATE changes those keys on this node, so what is sent is
 *     what is deleted: a concurrent write either lands before step 2 (and
 *     is sent) or waits and then finds the key gone (-ASK to the target).
 *  2. Read each key's value and expiry (missing and expired keys are
 *     skipped; none left: +NOKEY).
 *  3. Send [AUTH] and one RESTORE-ASKING key ttl payload [REPLACE] per key
 *     on a new connection to the target, all pipelined.  The connection is
 *     a socket on this core's io_uring (connect is a non-blocking
 *     connect(2) on loopback or LAN, then the first send waits in the ring
 *     for the handshake); each send and receive has the command's timeout,
 *     so the fiber waits, never the reactor thread.
 *  4. Read the replies.  The target's RESTORE is durable before its +OK
 *     (a RESTORE is never NOSYNC, whatever the target's appendfsync).
 *  5. Delete each acknowledged key here (durably, unless COPY), then
 *     release the hold and reply +OK.  A kill -9 between 4 and 5 leaves the
 *     key on both nodes, never on neither; MIGRATE ... REPLACE again (what
 *     urkv-cluster fix does) converges.
 *
 * The first error from the target is answered as Redis does ("ERR Target
 * instance replied with error: ..."); keys it refused stay here.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/crc32c.h"
#include "cluster.h"
#include "cmd_ext.h"
#include "urt/urt.h"

#define URKV_DUMP_VERSION 1u		/* Payload format version. */
#define DUMP_TRAILER 6u			/* Version (2) and CRC32C (4). */
#define DUMP_TYPE_STRING 0u		/* Type byte of a string value. */
#define MIGRATE_TIMEOUT_DEFAULT_MS 1000	/* A timeout <= 0 means this (as Redis). */
#define MIGRATE_REPLY_MAX 4096u		/* Longest reply line read from the target. */
#define E_PAYLOAD "ERR DUMP payload version or checksum are wrong"

static bool arg_is(const struct resp_arg *a, const char *name)
{
	return resp_arg_eq_nocase(a, name);
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* The payload of a value (malloc, the caller frees), or NULL. */
static uint8_t *dump_payload(const char *val, size_t vlen, size_t *len)
{
	uint8_t *p = malloc(1 + vlen + DUMP_TRAILER);

	if (!p)
		return NULL;
	p[0] = DUMP_TYPE_STRING;
	memcpy(p + 1, val, vlen);
	put_le(p + 1 + vlen, URKV_DUMP_VERSION, 2);
	put_le(p + 3 + vlen, urt_crc32c(0, p, 3 + vlen), 4);
	*len = 1 + vlen + DUMP_TRAILER;
	return p;
}

/* The value inside a payload, or false when it is not a valid one. */
static bool dump_check(const uint8_t *p, size_t len, const uint8_t **val, size_t *vlen)
{
	if (len < 1 + DUMP_TRAILER || p[0] != DUMP_TYPE_STRING ||
	    get_le(p + len - 6, 2) != URKV_DUMP_VERSION ||
	    get_le(p + len - 4, 4) != urt_crc32c(0, p, len - 4))
		return false;
	*val = p + 1;
	*vlen = len - 1 - DUMP_TRAILER;
	return true;
}

/* DUMP key */
void urkv_dump_run(struct urkv_conn *c, struct urkv_slot *s)
{
	char *val = NULL;
	size_t vlen = 0, plen;
	uint8_t *p;
	int ret;

	if (urkv_key_error(&s->argv[1])) {
		urkv_out_null(c);
		return;
	}
	ret = urkv_read_value(c, &s->argv[1], &val, &vlen, NULL);
	if (ret == URT_E_NOTFOUND) {
		urkv_out_null(c);
		return;
	}
	if (ret) {
		urkv_out_store_error(c, ret);
		return;
	}
	p = dump_payload(val, vlen, &plen);
	free(val);
	if (!p) {
		urkv_out_error(c, "ERR out of memory");
		return;
	}
	urkv_out_bulk(c, p, plen);
	free(p);
}

/* RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f]; RESTORE-ASKING the same. */
void urkv_restore_run(struct urkv_conn *c, struct urkv_slot *s)
{
	struct urt_kv *kv = urkv_conn_server(c)->kv;
	const struct resp_arg *key = &s->argv[1];
	bool replace = false, absttl = false, seen_idle = false, seen_freq = false;
	uint64_t expire_at = 0, now;
	const uint8_t *val;
	size_t vlen;
	long long ttl, v;
	const char *err;
	int ret;

	/*
	 * Redis's options: IDLETIME and FREQ are accepted for redis-cli's sake
	 * (urkv keeps no LRU/LFU data) with Redis's checks, one or the other.
	 */
	for (size_t i = 4; i < s->argc; i++) {
		bool idle = arg_is(&s->argv[i], "IDLETIME"), freq = arg_is(&s->argv[i], "FREQ");

		if (arg_is(&s->argv[i], "REPLACE")) {
			replace = true;
		} else if (arg_is(&s->argv[i], "ABSTTL")) {
			absttl = true;
		} else if ((idle && i + 1 < s->argc && !seen_freq) ||
			   (freq && i + 1 < s->argc && !seen_idle)) {
			if (!urkv_arg_ll(&s->argv[i + 1], &v)) {
				urkv_out_error(c, "ERR value is not an integer or out of range");
				return;
			}
			if (v < 0 || (freq && v > 255)) {
				urkv_out_error(c, freq ? "ERR Invalid FREQ value, must be >= 0 and <= 255"
						       : "ERR Invalid IDLETIME value, must be >= 0");
				return;
			}
			seen_idle |= idle;
			seen_freq |= freq;
			i++;
		} else {
			urkv_out_error(c, "ERR syntax error");
			return;
		}
	}
	if (!urkv_arg_ll(&s->argv[2], &ttl)) {
		urkv_out_error(c, "ERR value is not an integer or out of range");
		return;
	}
	if (ttl < 0) {
		urkv_out_error(c, "ERR Invalid TTL value, must be >= 0");
		return;
	}
	now = urkv_now_ms(c);
	if (ttl > 0 && !absttl && (unsigned long long)ttl > (unsigned long long)LLONG_MAX - now) {
		/*
		 * now + ttl past 2^63 - 1: stored, it read back as PEXPIRETIME 0
		 * and a TTL of 292 million years.  Redis's own sum overflows into
		 * "already expired" and stores nothing while answering +OK; the
		 * words are those of its EXPIRE and SET for the same overflow.
		 */
		urkv_out_error(c, "ERR invalid expire time in 'restore' command");
		return;
	}
	if (!dump_check((const uint8_t *)s->argv[3].ptr, s->argv[3].len, &val, &vlen)) {
		urkv_out_error(c, E_PAYLOAD);
		return;
	}
	err = urkv_key_error(key);
	if (err) {
		urkv_out_error(c, err);
		return;
	}
	if (ttl > 0)
		expire_at = absttl ? (uint64_t)ttl : now + (uint64_t)ttl;
	/* Durable before +OK whatever appendfsync says: MIGRATE deletes its copy on this reply. */
	ret = urt_kv_put_expire(kv, key->ptr, key->len, val, vlen, expire_at, replace ? 0 : URT_KV_NX);
	if (ret == -EEXIST)
		urkv_out_error(c, "BUSYKEY Target key name already exists.");
	else if (ret == 0 || ret == URT_E_NOTFOUND)
		urkv_out_simple(c, "OK");	/* A TTL already past stores nothing, as Redis. */
	else
		urkv_out_store_error(c, ret);
}

/* MIGRATE. */

struct mig_key {
	const struct resp_arg *key;	/* The argument. */
	char *val;			/* Its value (malloc), NULL: missing. */
	size_t vlen;			/* Its length. */
	uint64_t expire_at;		/* Its expiry (0: none). */
	bool acked;			/* The target answered +OK. */
};

struct mig_link {
	int fd;				/* Socket to the target. */
	uint64_t timeout_ns;		/* Of each send and receive. */
	char *out;			/* Requests being built. */
	size_t out_len, out_cap;
	char in[MIGRATE_REPLY_MAX];	/* Replies received. */
	size_t in_len;			/* Bytes held in in. */
};

static int out_reserve(struct mig_link *l, size_t n)
{
	if (l->out_len + n > l->out_cap) {
		size_t cap = l->out_cap ? l->out_cap : 4096;
		char *p;

		while (cap < l->out_len + n)
			cap *= 2;
		p = realloc(l->out, cap);
		if (!p)
			return -ENOMEM;
		l->out = p;
		l->out_cap = cap;
	}
	return 0;
}

static int out_fmt(struct mig_link *l, const char *prefix, size_t n)
{
	char hdr[32];
	int len = snprintf(hdr, sizeof(hdr), "%s%zu\r\n", prefix, n);

	if (out_reserve(l, (size_t)len))
		return -ENOMEM;
	memcpy(l->out + l->out_len, hdr, (size_t)len);
	l->out_len += (size_t)len;
	return 0;
}

static int out_bulk(struct mig_link *l, const void *p, size_t n)
{
	if (out_fmt(l, "$", n) || out_reserve(l, n + 2))
		return -ENOMEM;
	memcpy(l->out + l->out_len, p, n);
	memcpy(l->out + l->out_len + n, "\r\n", 2);
	l->out_len += n + 2;
	return 0;
}

/* Connects l to host:port (the target's address into to); 0, -EINVAL (not an address) or -errno. */
static int link_open(struct mig_link *l, const struct resp_arg *host, uint16_t port,
		     struct sockaddr_storage *to)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char ip[64];
	int one = 1;

	if (host->len == 0 || host->len >= sizeof(ip))
		return -EINVAL;
	memcpy(ip, host->ptr, host->len);
	ip[host->len] = 0;
	if (strcmp(ip, "localhost") == 0)
		snprintf(ip, sizeof(ip), "127.0.0.1");
	if (urkv_sockaddr(ip, port, &ss, &len))
		return -EINVAL;
	*to = ss;
	l->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0)
		return -errno;
	setsockopt(l->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/*
	 * Non-blocking connect: the handshake completes in the kernel; the
	 * first send, on the ring, waits for it (or fails with its error).
	 * The socket is then made blocking again: io_uring polls a blocking
	 * socket instead of failing with EAGAIN.
	 */
	if (connect(l->fd, (struct sockaddr *)&ss, len) != 0 && errno != EINPROGRESS) {
		int err = -errno;

		close(l->fd);
		l->fd = -1;
		return err;
	}
	if (fcntl(l->fd, F_SETFL, fcntl(l->fd, F_GETFL) & ~O_NONBLOCK) != 0) {
		int err = -errno;

		close(l->fd);
		l->fd = -1;
		return err;
	}
	return 0;
}

/* The IP of ss as IPv6 (an IPv4 one mapped: ::ffff:a.b.c.d), so both families compare. */
static struct in6_addr ip_mapped(const struct sockaddr_storage *ss)
{
	struct in6_addr a = { 0 };

	if (ss->ss_family == AF_INET6)
		return ((const struct sockaddr_in6 *)ss)->sin6_addr;
	a.s6_addr[10] = a.s6_addr[11] = 0xff;
	memcpy(&a.s6_addr[12], &((const struct sockaddr_in *)ss)->sin_addr, 4);
	return a;
}

/*
 * Whether the link goes to this very server.  A MIGRATE onto itself would
 * RESTORE each key onto itself, get +OK, and then delete it: the key
 * would be lost (Redis, single-threaded, times out instead and keeps it).
 * The target is on this host when it is a loopback address (127.0.0.0/8,
 * ::1, and 0.0.0.0 or ::, which the kernel connects to loopback) or the
 * address the connection leaves from (the route to an address of this
 * host takes that address as the source; to any other host, one of ours).
 * It is this server when it is also on this server's port and on an
 * address its listeners cover (urkv_server_listens_on).
 */
static bool link_is_self(const struct mig_link *l, struct urkv_server *srv,
			 const struct sockaddr_storage *to)
{
	struct sockaddr_storage from, at = { 0 };
	struct sockaddr_in6 *at6 = (struct sockaddr_in6 *)&at;
	struct in6_addr ip = ip_mapped(to), src;
	socklen_t len = sizeof(from);
	bool v4 = IN6_IS_ADDR_V4MAPPED(&ip), local;
	static const uint8_t zero4[4];

	if (IN6_IS_ADDR_UNSPECIFIED(&ip) || (v4 && memcmp(&ip.s6_addr[12], zero4, 4) == 0)) {
		/* 0.0.0.0 and ::, which the kernel connects to 127.0.0.1 and ::1. */
		if (v4) {
			ip.s6_addr[12] = 127;
			ip.s6_addr[15] = 1;
		} else {
			ip = in6addr_loopback;
		}
	}
	local = (v4 && ip.s6_addr[12] == 127) || IN6_IS_ADDR_LOOPBACK(&ip);
	if (!local && getsockname(l->fd, (struct sockaddr *)&from, &len) == 0) {
		src = ip_mapped(&from);
		local = IN6_ARE_ADDR_EQUAL(&src, &ip);
	}
	/* One form for both families: urkv_server_listens_on reads a mapped one as IPv4. */
	at6->sin6_family = AF_INET6;
	at6->sin6_port = to->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)to)->sin6_port
						   : ((const struct sockaddr_in *)to)->sin_port;
	at6->sin6_addr = ip;
	return local && urkv_server_listens_on(srv, &at);
}

static int link_send(struct mig_link *l)
{
	struct urt_io io;
	int ret;

	if (l->out_len == 0)
		return 0;
	urt_io_prep_send(&io, l->fd, l->out, l->out_len);
	io.timeout_ns = l->timeout_ns;
	ret = urt_io_wait(&io);
	if (ret >= 0 && (size_t)ret != l->out_len)
		ret = -EIO;
	l->out_len = 0;
	return ret < 0 ? ret : 0;
}

/*
 * The next one-line reply (+, -, :) into line (NUL-terminated, without
 * CRLF).  0, or a negative errno (-EPROTO for a reply of another shape).
 */
static int link_reply(struct mig_link *l, char *line, size_t cap)
{
	for (;;) {
		char *crlf = l->in_len ? memmem(l->in, l->in_len, "\r\n", 2) : NULL;
		struct urt_io io;
		int ret;

		if (crlf) {
			size_t n = (size_t)(crlf - l->in);

			if (l->in[0] != '+' && l->in[0] != '-' && l->in[0] != ':')
				return -EPROTO;
			snprintf(line, cap, "%.*s", (int)n, l->in);
			memmove(l->in, crlf + 2, l->in_len - n - 2);
			l->in_len -= n + 2;
			return 0;
		}
		if (l->in_len == sizeof(l->in))
			return -EPROTO;
		urt_io_prep_recv(&io, l->fd, l->in + l->in_len, sizeof(l->in) - l->in_len);
		io.timeout_ns = l->timeout_ns;
		ret = urt_io_wait(&io);
		if (ret == 0)
			return -ECONNRESET;
		if (ret < 0)
			return ret;
		l->in_len += (size_t)ret;
	}
}

static int add_restore(struct mig_link *l, struct mig_key *k, uint64_t now, bool replace)
{
	char ttl[24];
	size_t plen;
	uint8_t *p = dump_payload(k->val, k->vlen, &plen);
	int ret;

	if (!p)
		return -ENOMEM;
	snprintf(ttl, sizeof(ttl), "%llu",
		 (unsigned long long)(k->expire_at ? k->expire_at - now : 0));
	ret = out_fmt(l, "*", replace ? 5 : 4);
	ret = ret ? ret : out_bulk(l, "RESTORE-ASKING", 14);
	ret = ret ? ret : out_bulk(l, k->key->ptr, k->key->len);
	ret = ret ? ret : out_bulk(l, ttl, strlen(ttl));
	ret = ret ? ret : out_bulk(l, p, plen);
	if (!ret && replace)
		ret = out_bulk(l, "REPLACE", 7);
	free(p);
	return ret;
}

/* Sorted insert of slot into slots[*n] without repeats. */
static void slot_add(unsigned *slots, unsigned *n, unsigned slot)
{
	unsigned i = 0;

	while (i < *n && slots[i] < slot)
		i++;
	if (i < *n && slots[i] == slot)
		return;
	memmove(slots + i + 1, slots + i, (*n - i) * sizeof(*slots));
	slots[i] = slot;
	(*n)++;
}

/* MIGRATE host port key|"" db timeout [COPY] [REPLACE] [AUTH pw] [AUTH2 user pw] [KEYS key...] */
void urkv_migrate_run(struct urkv_conn *c, struct urkv_slot *s)
{
	struct urkv_server *srv = urkv_conn_server(c);
	const struct resp_arg *auth_user = NULL, *auth_pw = NULL;
	struct mig_link l = { .fd = -1 };
	struct sockaddr_storage to;
	struct mig_key *keys = NULL;
	unsigned *slots = NULL, nslots = 0;
	size_t first = 3, nkeys = 1, present = 0, nreplies = 0;
	bool copy = false, replace = false, held = false;
	long long port, db, timeout;
	char line[MIGRATE_REPLY_MAX + 1], err[600] = "";
	uint64_t now;
	int ret;

	if (s->argc < 6) {
		urkv_out_error(c, "ERR wrong number of arguments for 'migrate' command");
		return;
	}
	for (size_t i = 6; i < s->argc; i++) {
		if (arg_is(&s->argv[i], "COPY")) {
			copy = true;
		} else if (arg_is(&s->argv[i], "REPLACE")) {
			replace = true;
		} else if (arg_is(&s->argv[i], "AUTH") && i + 1 < s->argc) {
			auth_pw = &s->argv[++i];
		} else if (arg_is(&s->argv[i], "AUTH2") && i + 2 < s->argc) {
			auth_user = &s->argv[++i];
			auth_pw = &s->argv[++i];
		} else if (arg_is(&s->argv[i], "KEYS")) {
			if (s->argv[3].len != 0) {
				urkv_out_error(c, "ERR When using MIGRATE KEYS option, the key argument "
						  "must be set to the empty string");
				return;
			}
			first = i + 1;
			nkeys = s->argc - first;
			break;
		} else {
			urkv_out_error(c, "ERR syntax error");
			return;
		}
	}
	if (!urkv_arg_ll(&s->argv[2], &port) || !urkv_arg_ll(&s->argv[4], &db) ||
	    !urkv_arg_ll(&s->argv[5], &timeout)) {
		urkv_out_error(c, "ERR value is not an integer or out of range");
		return;
	}
	if (port < 1 || port > 65535) {
		urkv_out_error(c, "ERR Invalid port (1..65535)");
		return;
	}
	if (db != 0) {
		urkv_out_error(c, "ERR DB index is out of range (urkv has database 0 only)");
		return;
	}
	if (timeout <= 0)
		timeout = MIGRATE_TIMEOUT_DEFAULT_MS;
	/*
	 * The runtime takes at most URT_IO_TIMEOUT_MAX_NS (146 years) per I/O;
	 * above it every send failed with EINVAL, reported as an error writing
	 * to the target.  A longer timeout is that one.
	 */
	if ((unsigned long long)timeout > URT_IO_TIMEOUT_MAX_NS / 1000000ull)
		timeout = (long long)(URT_IO_TIMEOUT_MAX_NS / 1000000ull);
	if (nkeys == 0) {
		urkv_out_simple(c, "NOKEY");
		return;
	}
	keys = calloc(nkeys, sizeof(*keys));
	slots = calloc(nkeys, sizeof(*slots));
	if (!keys || !slots) {
		urkv_out_error(c, "ERR out of memory");
		goto out;
	}
	for (size_t i = 0; i < nkeys; i++) {
		keys[i].key = &s->argv[first + i];
		slot_add(slots, &nslots, urkv_key_slot(keys[i].key->ptr, keys[i].key->len));
	}
	l.timeout_ns = (uint64_t)timeout * 1000000ull;
	/* 1. Hold the slots: no command changes these keys until the end. */
	if (srv->cluster) {
		if (urkv_cluster_hold(srv, slots, nslots, urt_clock_ns() + l.timeout_ns) != 0) {
			urkv_out_error(c, "TRYAGAIN commands on the keys' slot did not finish within "
					  "the MIGRATE timeout");
			goto out;
		}
		held = true;
	}
	/* 2. Read them. */
	for (size_t i = 0; i < nkeys; i++) {
		if (urkv_key_error(keys[i].key))
			continue;
		ret = urkv_read_value(c, keys[i].key, &keys[i].val, &keys[i].vlen, &keys[i].expire_at);
		if (ret == URT_E_NOTFOUND)
			continue;
		if (ret) {
			urkv_out_store_error(c, ret);
			goto out;
		}
		present++;
	}
	if (present == 0) {
		urkv_out_simple(c, "NOKEY");
		goto out;
	}
	/* 3. Send [AUTH] and the RESTOREs. */
	ret = link_open(&l, &s->argv[1], (uint16_t)port, &to);
	if (ret == -EINVAL) {
		urkv_out_error(c, "ERR MIGRATE host must be a numeric IPv4 or IPv6 address (or localhost)");
		goto out;
	}
	if (ret) {
		urkv_out_errorf(c, "IOERR error or timeout connecting to the client (%s)", strerror(-ret));
		goto out;
	}
	if (link_is_self(&l, srv, &to)) {
		urkv_out_errorf(c, "ERR Target instance is this instance (%.*s port %lld is where this "
				   "server listens): the keys stay here",
				(int)s->argv[1].len, s->argv[1].ptr, port);
		goto out;
	}
	if (auth_pw) {
		ret = out_fmt(&l, "*", auth_user ? 3 : 2);
		ret = ret ? ret : out_bulk(&l, "AUTH", 4);
		if (!ret && auth_user)
			ret = out_bulk(&l, auth_user->ptr, auth_user->len);
		ret = ret ? ret : out_bulk(&l, auth_pw->ptr, auth_pw->len);
		if (ret) {
			urkv_out_error(c, "ERR out of memory");
			goto out;
		}
		nreplies++;
	}
	now = urkv_now_ms(c);
	for (size_t i = 0; i < nkeys; i++) {
		if (!keys[i].val)
			continue;
		if (keys[i].expire_at && keys[i].expire_at <= now) {
			free(keys[i].val);	/* Expired since it was read: nothing to move. */
			keys[i].val = NULL;
			continue;
		}
		if (add_restore(&l, &keys[i], now, replace)) {
			urkv_out_error(c, "ERR out of memory");
			goto out;
		}
		nreplies++;
	}
	ret = link_send(&l);
	if (ret == -ECONNREFUSED || ret == -EHOSTUNREACH || ret == -ENETUNREACH) {
		/* The handshake failed: the first send is where a non-blocking connect reports. */
		urkv_out_errorf(c, "IOERR error or timeout connecting to the client (%s)",
				strerror(-ret));
		goto out;
	}
	if (ret) {
		urkv_out_errorf(c, "IOERR error or timeout writing to target instance (%s)",
				strerror(-ret));
		goto out;
	}
	/* 4. Read the replies: each +OK is durable on the target. */
	if (auth_pw) {
		ret = link_reply(&l, line, sizeof(line));
		if (ret == 0 && line[0] == '-')
			snprintf(err, sizeof(err), "ERR Target instance replied with error: %.400s", line + 1);
	}
	for (size_t i = 0; i < nkeys && ret == 0; i++) {
		if (!keys[i].val)
			continue;
		ret = link_reply(&l, line, sizeof(line));
		if (ret)
			break;
		if (line[0] == '+')
			keys[i].acked = true;
		else if (!err[0])
			snprintf(err, sizeof(err), "ERR Target instance replied with error: %.400s",
				 line[0] == '-' ? line + 1 : line);
	}
	/* 5. Delete what the target holds durably now. */
	for (size_t i = 0; i < nkeys && !copy; i++) {
		int dret;

		if (!keys[i].acked)
			continue;
		dret = urt_kv_del(srv->kv, keys[i].key->ptr, keys[i].key->len, 0);
		if (dret && dret != URT_E_NOTFOUND)
			urkv_store_error_log(c, dret, keys[i].key);
		if (dret && dret != URT_E_NOTFOUND && !err[0])
			snprintf(err, sizeof(err), "ERR store error deleting a migrated key here: %s "
				 "(it is on both nodes; MIGRATE it again with REPLACE)", urt_strerror(dret));
	}
	if (ret)
		urkv_out_errorf(c, "IOERR error or timeout reading to target instance (%s)",
				ret == -EPROTO ? "unexpected reply" : strerror(-ret));
	else if (err[0])
		urkv_out_error(c, err);
	else
		urkv_out_simple(c, "OK");
out:
	if (held)
		urkv_cluster_unhold(srv, slots, nslots);
	if (l.fd >= 0)
		close(l.fd);
	free(l.out);
	for (size_t i = 0; keys && i < nkeys; i++)
		free(keys[i].val);
	free(keys);
	free(slots);
}
