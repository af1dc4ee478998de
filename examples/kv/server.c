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
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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

static int listen_socket(const char *addr, uint16_t port, uint16_t *bound)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1, ret = urkv_sockaddr(addr, port, &ss, &len);

	if (ret)
		return ret;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 511) ||
	    getsockname(fd, (struct sockaddr *)&ss, &len)) {
		int err = -errno;

		close(fd);
		return err;
	}
	*bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						: ((struct sockaddr_in *)&ss)->sin_port);
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
			reject(cc, res, "-ERR max number of clients reached\r\n");
			atomic_fetch_add_explicit(&cc->st.rejected, 1, memory_order_relaxed);
		} else {
			setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			atomic_fetch_add_explicit(&cc->st.connections, 1, memory_order_relaxed);
			urkv_conn_start(cc, res);
		}
	} else if (res != -ECANCELED && !atomic_load(&srv->stopping)) {
		/* -EMFILE and the like: the next connection may succeed. */
		if (!cc->srv->o.quiet)
			fprintf(stderr, "urkv: accept on core %u: %s\n", cc->core, urt_strerror(res));
	}
	if (!cc->accepting && !atomic_load(&srv->stopping) && accept_arm(cc) != 0 && !srv->o.quiet)
		fprintf(stderr, "urkv: core %u stopped accepting\n", cc->core);
}

#define PBUF_COUNT 256u		/* Provided buffers per core (power of two). */
#define PBUF_BYTES (16u << 10)	/* Bytes of each. */

/* Starts the idle-timeout fiber of cc unless it runs (at start, or CONFIG SET timeout); on cc's core. */
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

	ret = urt_pbuf_create(PBUF_COUNT, PBUF_BYTES, &cc->pb);
	if (ret == 0)
		ret = urkv_stats_core_init(cc);
	if (ret == 0)
		ret = urkv_fsync_core_init(cc);
	if (ret == 0 && atomic_load(&cc->srv->live.timeout_ns))
		ret = urkv_server_reaper_start(cc);
	if (ret == 0)
		ret = accept_arm(cc);
	return ret;
}

int urkv_server_start(struct urkv_server *srv)
{
	uint16_t port = srv->o.port;
	int ret;

	srv->cores = calloc(srv->ncores, sizeof(*srv->cores));
	if (!srv->cores)
		return -ENOMEM;
	for (unsigned i = 0; i < srv->ncores; i++) {
		struct urkv_core *cc = &srv->cores[i];

		cc->srv = srv;
		cc->core = i;
		/* The first socket may pick the port (0); the others share it. */
		cc->lfd = listen_socket(srv->o.bind_addr, port, &port);
		if (cc->lfd < 0) {
			ret = cc->lfd;
			fprintf(stderr, "urkv: cannot listen on %s:%u: %s\n", srv->o.bind_addr,
				srv->o.port, strerror(-ret));
			return ret;
		}
	}
	srv->port = port;
	for (unsigned i = 0; i < srv->ncores; i++) {
		ret = urt_core_run(srv->rt, i, core_start, &srv->cores[i]);
		if (ret) {
			fprintf(stderr, "urkv: cannot accept on core %u: %s\n", i, urt_strerror(ret));
			return ret;
		}
	}
	return 0;
}

/* Runs on every core (urt_core_run_all): waits until that core's connections have left. */
static int core_stop(void *p)
{
	struct urkv_server *srv = p;
	struct urkv_core *cc = &srv->cores[urt_core_id()];

	if (cc->accepting)
		urt_io_cancel(&cc->acc);
	urt_waitq_wake_all(&cc->drained_wq);
	urkv_conn_stop_all(cc);
	while (cc->nconns || cc->accepting || cc->reaper)
		urt_waitq_wait(&cc->drained_wq);
	close(cc->lfd);
	cc->lfd = -1;
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
