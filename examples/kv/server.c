/*
 * urkv's listeners: one listening socket per core (SO_REUSEPORT, so the
 * kernel spreads connections over the cores), each with a multishot
 * accept on that core's ring; and the orderly stop.
 *
 * Stop (SIGTERM/SIGINT, from the main thread): set `stopping`, then on
 * each core cancel the accept and the receives of idle connections.  A
 * connection that is running a batch finishes it (its writes are durable
 * before their replies go out), sends the replies and leaves; the main
 * thread waits until every core has no connection left, and only then
 * closes the store (which checkpoints).
 *
 * One server per address (design notes).  Linux lets any socket of the
 * same user that sets SO_REUSEPORT join a reuseport group: a second urkv
 * on the port would bind, listen, and take part of the connections to a
 * store of its own, so acknowledged writes would seem to vanish.  No
 * socket option keeps a same-user process out of the group and still
 * lets our own cores in, so the start takes the address in steps:
 *
 *  1. With a fixed port, take the start lock of that port: an abstract
 *     unix socket "urkv-listen-<port>" of this network namespace (the
 *     kernel frees it when the process exits, however it exits).  Two
 *     urkv starting on one port at once take turns here.
 *  2. Bind a probe socket to the address without SO_REUSEPORT (with
 *     SO_REUSEADDR, so connections of an earlier server in TIME_WAIT do
 *     not count): EADDRINUSE when any socket, reuseport or not, listens on
 *     an overlapping address and port (0.0.0.0 and :: overlap every
 *     address).  Close it: it would block our own reuseport binds.
 *  3. Bind every core's listener with SO_REUSEPORT and listen.
 *  4. Release the start lock.  From now on a later urkv's probe (step 2)
 *     meets these listeners and is refused.
 *
 * Out of file descriptors (design notes).  A multishot accept that fails
 * (EMFILE: RLIMIT_NOFILE reached; ENFILE: the system's limit; ENOBUFS,
 * ENOMEM) ends, and the connection stays in the listen queue.  Re-armed at
 * once, it fails again at once: a core spinning on accept and a line on
 * stderr per failure (millions a second), while the client waits for an
 * answer that never comes.  So a failed accept (1) refuses the waiting
 * connections with Redis's "max number of clients reached": the core
 * closes the fd it keeps in reserve (spare_fd), accepts, sends the error,
 * closes, and reopens the reserve (nginx and libev do the same), and
 * (2) re-arms the accept only after ACCEPT_PAUSE_NS, by a timer.  The
 * message goes to stderr once a minute per core, with the count refused.
 * main.c checks RLIMIT_NOFILE against --max-clients at start, so this is
 * the exception: fds used by something else, or the system's limit.
 *
 * With --port 0 the first listener is bound first and picks the port (the
 * kernel gives a wildcard-port bind a port no socket holds, reuseport or
 * not); the later cores join it, and a later urkv's probe on that port
 * meets it.  What remains: a program other than urkv, of the same user,
 * that sets SO_REUSEPORT itself can still join (docs/kv.md, "Starting").
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <poll.h>
#include <semaphore.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "base/assert.h"
#include "base/clock.h"
#include "urkv.h"
#include "urt/urt.h"

int urkv_sockaddr(const char *ip, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		if (inet_pton(AF_INET6, ip, &a->sin6_addr) != 1)
			return -EINVAL;
		*len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		if (inet_pton(AF_INET, ip, &a->sin_addr) != 1)
			return -EINVAL;
		*len = sizeof(*a);
	}
	return 0;
}

/* The IPv4 address of ss when it is IPv4 or IPv4-mapped IPv6. */
static bool addr_v4(const struct sockaddr_storage *ss, struct in_addr *v4)
{
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)ss;

	if (ss->ss_family == AF_INET) {
		*v4 = ((const struct sockaddr_in *)ss)->sin_addr;
		return true;
	}
	if (ss->ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr)) {
		memcpy(&v4->s_addr, &a6->sin6_addr.s6_addr[12], 4);
		return true;
	}
	return false;
}

static uint16_t addr_port(const struct sockaddr_storage *ss)
{
	return ntohs(ss->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)ss)->sin6_port
					       : ((const struct sockaddr_in *)ss)->sin_port);
}

bool urkv_server_listens_on(struct urkv_server *srv, const struct sockaddr_storage *to)
{
	const struct in6_addr *to6 = &((const struct sockaddr_in6 *)to)->sin6_addr;
	const struct in6_addr *me6;
	struct sockaddr_storage me;
	struct in_addr to4, me4;
	socklen_t len;
	int v6only = 0;
	bool to_is_v4 = addr_v4(to, &to4);

	if (srv->port == 0 || addr_port(to) != srv->port ||
	    urkv_sockaddr(srv->o.bind_addr, srv->port, &me, &len) != 0)
		return false;
	if (addr_v4(&me, &me4))	/* 0.0.0.0 covers every IPv4 address, 1.2.3.4 itself. */
		return to_is_v4 && (me4.s_addr == htonl(INADDR_ANY) || me4.s_addr == to4.s_addr);
	me6 = &((const struct sockaddr_in6 *)&me)->sin6_addr;
	if (!IN6_IS_ADDR_UNSPECIFIED(me6))
		return !to_is_v4 && IN6_ARE_ADDR_EQUAL(me6, to6);
	if (!to_is_v4)
		return true;
	/* :: covers IPv4 too unless its sockets are IPv6-only (net.ipv6.bindv6only). */
	len = sizeof(v6only);
	if (srv->cores && srv->cores[0].lfd >= 0 &&
	    getsockopt(srv->cores[0].lfd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len) != 0)
		v6only = 0;
	return !v6only;
}

/* A TCP socket of addr's family with SO_REUSEADDR, and addr:port in *ss; the fd or -errno. */
static int tcp_socket(const char *addr, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	int fd, one = 1, ret = urkv_sockaddr(addr, port, ss, len);

	if (ret)
		return ret;
	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one))) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

static int listen_socket(const char *addr, uint16_t port, uint16_t *bound)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1, fd = tcp_socket(addr, port, &ss, &len);

	if (fd < 0)
		return fd;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 511) ||
	    getsockname(fd, (struct sockaddr *)&ss, &len)) {
		int err = -errno;

		close(fd);
		return err;
	}
	*bound = addr_port(&ss);
	return fd;
}

static void on_accept(struct urt_io *io, int res, void *arg);

static int accept_arm(struct urkv_core *cc)
{
	int ret;

	urt_io_prep_accept(&cc->acc, cc->lfd, true);
	ret = urt_io_submit(&cc->acc, on_accept, cc);
	cc->accepting = ret == 0;
	return ret;
}

static void reject(struct urkv_core *cc, int fd, const char *msg)
{
	/* A fresh socket's send buffer is empty: this never blocks. */
	if (send(fd, msg, strlen(msg), MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		(void)0;
	close(fd);
	(void)cc;
}

#define ACCEPT_PAUSE_NS 100000000ull	/* After a failed accept: 0.1 s before the next (no spin). */
#define ACCEPT_MSG_NS 60000000000ull	/* One "accept failed" message a minute per core. */
#define ACCEPT_REFUSE_MAX 64u		/* Waiting connections refused per failed accept. */

static const char max_clients_msg[] = "-ERR max number of clients reached\r\n";

/*
 * Out of fds (design notes): close the reserve fd, and with the slot it
 * frees accept each connection waiting on this core's listener and refuse
 * it; then take the reserve back.  Only this core accepts on its listener
 * (SO_REUSEPORT), and its multishot accept has ended, so poll() says
 * whether accept4() would block.  Returns the connections refused.
 */
static unsigned refuse_waiting(struct urkv_core *cc)
{
	struct pollfd pfd = { .fd = cc->lfd, .events = POLLIN };
	unsigned n = 0;

	if (cc->spare_fd < 0)
		cc->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);	/* Lost to a race before. */
	if (cc->spare_fd < 0)
		return 0;
	close(cc->spare_fd);
	cc->spare_fd = -1;
	while (n < ACCEPT_REFUSE_MAX && poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN)) {
		int fd = accept4(cc->lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0)
			break;	/* Another thread took the slot, or the client left. */
		reject(cc, fd, max_clients_msg);
		n++;
	}
	cc->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	atomic_fetch_add_explicit(&cc->st.rejected, n, memory_order_relaxed);
	return n;
}

static void accept_resume(struct urt_io *io, int res, void *arg)
{
	struct urkv_core *cc = arg;

	(void)io;
	(void)res;
	cc->acc_paused = false;
	if (atomic_load(&cc->srv->stopping)) {
		urt_waitq_wake_all(&cc->drained_wq);
		return;
	}
	if (!cc->accepting && accept_arm(cc) != 0 && !cc->srv->o.quiet)
		fprintf(stderr, "urkv: core %u stopped accepting\n", cc->core);
}

/* A failed accept: refuse who waits, say so (rarely), and try again after a pause. */
static void accept_failed(struct urkv_core *cc, int res)
{
	struct urkv_server *srv = cc->srv;
	uint64_t now = urt_clock_ns();

	cc->acc_err_refused += refuse_waiting(cc);
	if (cc->acc_err_ns == 0 || now - cc->acc_err_ns >= ACCEPT_MSG_NS) {
		fprintf(stderr, "urkv: accept on core %u: %s (%u clients connected); new connections "
			"get -ERR max number of clients reached until it succeeds again; %llu refused "
			"so far (see ulimit -n, RLIMIT_NOFILE)\n", cc->core, urt_strerror(res),
			atomic_load(&srv->clients), (unsigned long long)cc->acc_err_refused);
		cc->acc_err_ns = now;
		cc->acc_err_refused = 0;
	}
	urt_io_prep_timeout(&cc->acc_pause, ACCEPT_PAUSE_NS);
	if (urt_io_submit(&cc->acc_pause, accept_resume, cc) == 0)
		cc->acc_paused = true;
}

static void on_accept(struct urt_io *io, int res, void *arg)
{
	struct urkv_core *cc = arg;
	struct urkv_server *srv = cc->srv;

	if (!(io->flags & URT_IO_MORE)) {
		cc->accepting = false;
		if (cc->nconns == 0)
			urt_waitq_wake_all(&cc->drained_wq);
	}
	if (res >= 0) {
		int one = 1;

		const char *denied;

		if (atomic_load(&srv->stopping)) {
			close(res);
		} else if ((denied = urkv_auth_denied(srv, res)) != NULL) {
			/* Protected mode (auth.c): Redis's explanation, then close. */
			reject(cc, res, denied);
			atomic_fetch_add_explicit(&cc->st.denied, 1, memory_order_relaxed);
		} else if (atomic_fetch_add(&srv->clients, 1) >=
			   atomic_load_explicit(&srv->live.max_clients, memory_order_relaxed)) {
			atomic_fetch_sub(&srv->clients, 1);
			reject(cc, res, max_clients_msg);
			atomic_fetch_add_explicit(&cc->st.rejected, 1, memory_order_relaxed);
		} else {
			setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			atomic_fetch_add_explicit(&cc->st.connections, 1, memory_order_relaxed);
			urkv_conn_start(cc, res);
		}
	} else if (res != -ECANCELED && !atomic_load(&srv->stopping)) {
		/* EMFILE and the like: re-armed now, it would fail again now (design notes). */
		if (!cc->accepting) {
			accept_failed(cc, res);
			if (cc->acc_paused)
				return;
		} else if (!srv->o.quiet) {
			fprintf(stderr, "urkv: accept on core %u: %s\n", cc->core, urt_strerror(res));
		}
	}
	if (!cc->accepting && !atomic_load(&srv->stopping) && accept_arm(cc) != 0 && !srv->o.quiet)
		fprintf(stderr, "urkv: core %u stopped accepting\n", cc->core);
}

#define PBUF_COUNT 256u		/* Provided buffers per core (power of two). */
#define PBUF_BYTES (16u << 10)	/* Bytes of each. */

/* Starts the housekeeping fiber of cc unless it runs (at start, or CONFIG SET timeout); on cc's core. */
int urkv_server_reaper_start(struct urkv_core *cc)
{
	int ret;

	if (cc->reaper)
		return 0;
	ret = urt_fiber_spawn(urkv_conn_reaper, cc);
	cc->reaper = ret == 0;
	return ret;
}

/* Runs on core cc->core (urt_core_run): buffers, the reaper, the first accept. */
static int core_start(void *p)
{
	struct urkv_core *cc = p;
	int ret;

	/* Without a reserve fd a core still pauses after a failed accept; it just cannot answer. */
	cc->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ret = urt_pbuf_create(PBUF_COUNT, PBUF_BYTES, &cc->pb);
	if (ret == 0)
		ret = urkv_stats_core_init(cc);
	if (ret == 0)
		ret = urkv_errstats_core_init(cc);
	if (ret == 0)
		ret = urkv_fsync_core_init(cc);
	if (ret == 0 && atomic_load(&cc->srv->live.timeout_ns))
		ret = urkv_server_reaper_start(cc);
	if (ret == 0)
		ret = accept_arm(cc);
	return ret;
}

#define START_LOCK_WAIT_MS 5000	/* Longest wait for another urkv's start on the port. */

/*
 * The start lock of port (step 1 of the notes): a socket fd, or -EBUSY
 * when another process held it for START_LOCK_WAIT_MS.
 */
static int start_lock(uint16_t port)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	/* An abstract name: sun_path[0] is 0, the name follows, no NUL counted. */
	int n = snprintf(a.sun_path + 1, sizeof(a.sun_path) - 1, "urkv-listen-%u", port);
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	for (unsigned ms = 0;; ms += 10) {
		struct timespec ts = { .tv_nsec = 10 * 1000000L };

		if (bind(fd, (struct sockaddr *)&a, len) == 0)
			return fd;
		if (errno != EADDRINUSE || ms >= START_LOCK_WAIT_MS) {
			int err = errno == EADDRINUSE ? -EBUSY : -errno;

			close(fd);
			return err;
		}
		nanosleep(&ts, NULL);
	}
}

/* Step 2 of the notes: 0 when nothing listens on addr:port or an overlapping address. */
static int probe_free(const char *addr, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int ret = 0, fd = tcp_socket(addr, port, &ss, &len);

	if (fd < 0)
		return fd;
	if (bind(fd, (struct sockaddr *)&ss, len))
		ret = -errno;
	close(fd);
	return ret;
}

/* "addr:port", an IPv6 address in brackets. */
static const char *addr_name(const char *addr, uint16_t port, char *buf, size_t len)
{
	snprintf(buf, len, strchr(addr, ':') ? "[%s]:%u" : "%s:%u", addr, port);
	return buf;
}

static void listen_error(struct urkv_server *srv, uint16_t port, int err)
{
	char name[96];

	addr_name(srv->o.bind_addr, port, name, sizeof(name));
	if (err == -EADDRINUSE)
		fprintf(stderr, "urkv: cannot listen on %s: the address is in use (another server "
				"listens on it, or on an address that covers it such as 0.0.0.0 or ::); "
				"stop that server or give another --port\n", name);
	else if (err == -EBUSY)
		fprintf(stderr, "urkv: cannot listen on %s: another urkv has been starting on port %u "
				"for %u s (it holds the start lock, the abstract socket @urkv-listen-%u)\n",
			name, port, START_LOCK_WAIT_MS / 1000, port);
	else
		fprintf(stderr, "urkv: cannot listen on %s: %s\n", name, strerror(-err));
}

/* Steps 1 to 4 of the notes: every core's listener, or a negative errno (printed). */
static int listen_all(struct urkv_server *srv)
{
	uint16_t port = srv->o.port;
	unsigned first = 0;
	int lock = -1, ret = 0;

	if (port == 0) {
		/* The first listener picks a port nobody holds; the others join it. */
		struct urkv_core *cc = &srv->cores[0];

		cc->lfd = listen_socket(srv->o.bind_addr, 0, &port);
		if (cc->lfd < 0) {
			listen_error(srv, 0, cc->lfd);
			return cc->lfd;
		}
		first = 1;
	} else {
		lock = start_lock(port);
		if (lock < 0) {
			listen_error(srv, port, lock);
			return lock;
		}
		ret = probe_free(srv->o.bind_addr, port);
		if (ret) {
			listen_error(srv, port, ret);
			goto out_unlock;
		}
	}
	for (unsigned i = first; i < srv->ncores; i++) {
		struct urkv_core *cc = &srv->cores[i];
		uint16_t bound;

		cc->lfd = listen_socket(srv->o.bind_addr, port, &bound);
		if (cc->lfd < 0) {
			ret = cc->lfd;
			listen_error(srv, port, ret);
			goto out_unlock;
		}
		URT_ASSERT(bound == port);
	}
	srv->port = port;
out_unlock:
	if (lock >= 0)
		close(lock);
	return ret;
}

int urkv_server_start(struct urkv_server *srv)
{
	int ret;

	srv->cores = calloc(srv->ncores, sizeof(*srv->cores));
	if (!srv->cores)
		return -ENOMEM;
	for (unsigned i = 0; i < srv->ncores; i++) {
		srv->cores[i].srv = srv;
		srv->cores[i].core = i;
		srv->cores[i].lfd = -1;
		srv->cores[i].spare_fd = -1;
	}
	ret = listen_all(srv);
	if (ret)
		return ret;
	for (unsigned i = 0; i < srv->ncores; i++) {
		ret = urt_core_run(srv->rt, i, core_start, &srv->cores[i]);
		if (ret) {
			fprintf(stderr, "urkv: cannot accept on core %u: %s\n", i, urt_strerror(ret));
			return ret;
		}
	}
	return 0;
}

#define FD_SLACK 32u	/* fds kept beyond the clients' and urkv's own at start (cluster links, MIGRATE, files), as Redis's 32. */

/* File descriptors the process holds now; 0 when /proc cannot say. */
static unsigned fds_open(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	unsigned n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n ? n - 1 : 0;	/* Not the directory's own fd. */
}

int urkv_server_fit_fds(struct urkv_server *srv)
{
	unsigned held = fds_open();
	unsigned long long need = (unsigned long long)srv->o.max_clients + held + FD_SLACK;
	unsigned long long cur;
	struct rlimit rl;

	if (held == 0 || getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur >= need)
		return 0;
	/* As Redis: raise the soft limit as far as the hard one lets us. */
	if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > rl.rlim_cur) {
		struct rlimit up = rl;

		up.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need ? rl.rlim_max : need;
		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			rl = up;
		if (rl.rlim_cur >= need)
			return 0;
	}
	cur = rl.rlim_cur;
	if (cur < (unsigned long long)held + FD_SLACK + 1) {
		fprintf(stderr, "urkv: the open file limit (ulimit -n, RLIMIT_NOFILE) is %llu: urkv "
			"holds %u file descriptors itself and keeps %u spare, so no client could "
			"connect; raise it to at least %llu for --max-clients %u\n",
			cur, held, FD_SLACK, need, srv->o.max_clients);
		return -EMFILE;
	}
	fprintf(stderr, "urkv: --max-clients lowered from %u to %llu: the open file limit (ulimit "
		"-n, RLIMIT_NOFILE) is %llu and urkv holds %u file descriptors itself and keeps %u "
		"spare; raise the limit to %llu for %u clients\n", srv->o.max_clients,
		cur - held - FD_SLACK, cur, held, FD_SLACK, need, srv->o.max_clients);
	srv->o.max_clients = (unsigned)(cur - held - FD_SLACK);
	atomic_store(&srv->live.max_clients, srv->o.max_clients);
	return 0;
}

/* Runs on every core (urt_core_run_all): waits until that core's connections have left. */
static int core_stop(void *p)
{
	struct urkv_server *srv = p;
	struct urkv_core *cc = &srv->cores[urt_core_id()];

	if (cc->accepting)
		urt_io_cancel(&cc->acc);
	if (cc->acc_paused)
		urt_io_cancel(&cc->acc_pause);
	urt_waitq_wake_all(&cc->drained_wq);
	urkv_conn_stop_all(cc);
	while (cc->nconns || cc->accepting || cc->acc_paused || cc->reaper)
		urt_waitq_wait(&cc->drained_wq);
	if (cc->lfd >= 0)
		close(cc->lfd);
	cc->lfd = -1;
	if (cc->spare_fd >= 0)
		close(cc->spare_fd);
	cc->spare_fd = -1;
	if (cc->pb)
		urt_pbuf_destroy(cc->pb);
	cc->pb = NULL;
	return 0;
}

void urkv_server_stop(struct urkv_server *srv)
{
	atomic_store(&srv->stopping, true);
	if (urt_core_run_all(srv->rt, core_stop, srv) == -ENOMEM) {
		/* No memory for the fan-out: stop the cores one after the other. */
		for (unsigned i = 0; i < srv->ncores; i++)
			urt_core_run(srv->rt, i, core_stop, srv);
	}
}
