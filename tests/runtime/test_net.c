/*
 * Socket ops: a loopback echo server on one core with multishot accept,
 * multishot recv into provided buffers and send; a recv deadline as an
 * idle timeout; multishot ops ended by stop.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "fixture.h"
#include "urt/net.h"

#define CLIENTS 8
#define MSGS 50

struct conn {
	struct urt_io rx, tx;
	int fd;
	uint8_t out[4096];
	struct echo *e;
};

struct echo {
	int lfd;
	struct urt_io acc;
	struct urt_pbuf *pb;
	struct conn conns[CLIENTS + 4];
	int nconn;
	_Atomic int accept_final;	/* Final (no MORE) accept callbacks. */
	_Atomic int errors;
	int idle_res;
	sem_t ready;
};

static void conn_rx(struct urt_io *io, int res, void *arg);

static void conn_tx(struct urt_io *io, int res, void *arg)
{
	struct conn *cn = arg;

	(void)io;
	if (res < 0)
		atomic_fetch_add(&cn->e->errors, 1);
}

static void conn_rx(struct urt_io *io, int res, void *arg)
{
	struct conn *cn = arg;
	struct echo *e = cn->e;

	if (res > 0) {
		/* Echo: copy out of the provided buffer, give it back, send. */
		memcpy(cn->out, urt_pbuf_addr(e->pb, io->buf_id), (size_t)res);
		urt_pbuf_recycle(e->pb, io->buf_id);
		urt_io_prep_send(&cn->tx, cn->fd, cn->out, (size_t)res);
		if (urt_io_submit(&cn->tx, conn_tx, cn))
			atomic_fetch_add(&e->errors, 1);
	}
	if (!(io->flags & URT_IO_MORE)) {
		if (res == 0 || res == -ECANCELED) {
			close(cn->fd);	/* Client gone, or stop. */
			return;
		}
		if (res < 0 && res != -ENOBUFS)
			atomic_fetch_add(&e->errors, 1);
		/* Re-arm (ENOBUFS or a single data result without MORE). */
		urt_io_prep_recv_multishot(&cn->rx, cn->fd, e->pb);
		if (urt_io_submit(&cn->rx, conn_rx, cn))
			atomic_fetch_add(&e->errors, 1);
	}
}

static void on_accept(struct urt_io *io, int res, void *arg)
{
	struct echo *e = arg;
	struct conn *cn;

	if (!(io->flags & URT_IO_MORE))
		atomic_fetch_add(&e->accept_final, 1);
	if (res < 0)
		return;
	cn = &e->conns[e->nconn++];
	cn->fd = res;
	cn->e = e;
	urt_io_prep_recv_multishot(&cn->rx, cn->fd, e->pb);
	if (urt_io_submit(&cn->rx, conn_rx, cn))
		atomic_fetch_add(&e->errors, 1);
}

static void server_start(void *p)
{
	struct echo *e = p;

	int ret = urt_pbuf_create(64, 4096, &e->pb);

	if (ret) {
		fprintf(stderr, "pbuf: %d %s\n", ret, urt_last_error());
		abort();
	}
	urt_io_prep_accept(&e->acc, e->lfd, true);
	ret = urt_io_submit(&e->acc, on_accept, e);
	if (ret) {
		fprintf(stderr, "accept: %d %s\n", ret, urt_last_error());
		abort();
	}
	sem_post(&e->ready);
}

static int listen_any(uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(fd, 64), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static int dial(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)))
		return -1;
	return fd;
}

struct client {
	uint16_t port;
	int id;
	int ok;
};

static void *client_main(void *p)
{
	struct client *cl = p;
	int fd = dial(cl->port);

	if (fd < 0)
		return NULL;
	for (int i = 0; i < MSGS; i++) {
		char msg[64], back[64];
		int n = snprintf(msg, sizeof(msg), "client %d message %d", cl->id, i);
		int got = 0;

		if (send(fd, msg, (size_t)n, MSG_NOSIGNAL) != n)
			break;
		while (got < n) {
			ssize_t r = recv(fd, back + got, (size_t)(n - got), 0);

			if (r <= 0)
				break;
			got += (int)r;
		}
		if (got == n && memcmp(msg, back, (size_t)n) == 0)
			cl->ok++;
	}
	close(fd);
	return NULL;
}

Test(net, echo_with_multishot_accept_and_recv)
{
	struct urt_rt_opts o;
	struct urt_rt *rt;
	struct echo *e = calloc(1, sizeof(*e));
	struct client cl[CLIENTS];
	pthread_t th[CLIENTS];
	uint16_t port;
	int total = 0;

	urt_rt_opts_default(&o);
	rt = fx_start(&o);
	e->lfd = listen_any(&port);
	sem_init(&e->ready, 0, 0);
	cr_assert_eq(urt_core_post(rt, 0, server_start, e), 0);
	sem_wait(&e->ready);
	for (int i = 0; i < CLIENTS; i++) {
		cl[i] = (struct client){ .port = port, .id = i };
		pthread_create(&th[i], NULL, client_main, &cl[i]);
	}
	for (int i = 0; i < CLIENTS; i++) {
		pthread_join(th[i], NULL);
		total += cl[i].ok;
	}
	urt_rt_stop(rt);	/* Ends the multishot accept with -ECANCELED. */
	close(e->lfd);
	cr_expect_eq(total, CLIENTS * MSGS, "%d of %d echoes right", total, CLIENTS * MSGS);
	cr_expect_eq(e->nconn, CLIENTS);
	cr_expect_eq(atomic_load(&e->accept_final), 1, "the multishot accept ends exactly once");
	cr_expect_eq(atomic_load(&e->errors), 0);
	free(e);
}

/* A recv deadline is an idle timeout. */
struct idle {
	int fd;
	int res;
};

static void idle_body(void *p)
{
	struct idle *id = p;
	char buf[16];
	struct urt_io io;

	urt_io_prep_recv(&io, id->fd, buf, sizeof(buf));
	io.timeout_ns = 30000000;
	id->res = urt_io_wait(&io);
}

Test(net, recv_deadline)
{
	struct urt_rt_opts o;
	struct urt_rt *rt;
	struct idle id = { 0 };
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	urt_rt_opts_default(&o);
	rt = fx_start(&o);
	id.fd = sv[0];
	fx_run(rt, 0, idle_body, &id);
	urt_rt_stop(rt);
	close(sv[0]);
	close(sv[1]);
	cr_expect_eq(id.res, -ETIMEDOUT);
}

struct bad_ops {
	int res[4];
};

static void never(struct urt_io *io, int res, void *arg)
{
	(void)io;
	(void)res;
	(void)arg;
	abort();	/* A rejected op must never call back. */
}

static void bad_body(void *p)
{
	struct bad_ops *b = p;
	struct urt_io io;
	char buf[8];

	urt_io_prep_send(&io, -1, "x", 1);
	b->res[0] = urt_io_submit(&io, never, NULL);
	urt_io_prep_recv(&io, 0, buf, 0);
	b->res[1] = urt_io_submit(&io, never, NULL);
	urt_io_prep_accept(&io, 0, true);
	io.timeout_ns = 1000;
	b->res[2] = urt_io_submit(&io, never, NULL);
	urt_io_prep_recv_multishot(&io, 0, NULL);
	b->res[3] = urt_io_submit(&io, never, NULL);
}

Test(net, bad_socket_ops_rejected)
{
	struct urt_rt_opts o;
	struct urt_rt *rt;
	struct bad_ops b = { 0 };

	urt_rt_opts_default(&o);
	rt = fx_start(&o);
	fx_run(rt, 0, bad_body, &b);
	urt_rt_stop(rt);
	cr_expect_eq(b.res[0], -EBADF);
	cr_expect_eq(b.res[1], -EINVAL, "zero-length recv");
	cr_expect_eq(b.res[2], -EINVAL, "multishot with a deadline");
	cr_expect_eq(b.res[3], -EINVAL, "multishot recv without buffers");
}

/* Single-shot accept gives the new fd, single-shot recv the byte count. */
struct single {
	int lfd;
	int afd;
	ssize_t got;
	char buf[64];
};

static void single_body(void *p)
{
	struct single *s = p;
	struct urt_io io;

	urt_io_prep_accept(&io, s->lfd, false);
	s->afd = urt_io_wait(&io);
	if (s->afd < 0)
		return;
	urt_io_prep_recv(&io, s->afd, s->buf, sizeof(s->buf));
	s->got = urt_io_wait(&io);
	close(s->afd);
}

static void *single_client(void *p)
{
	int fd = dial(*(uint16_t *)p);

	if (fd >= 0) {
		if (send(fd, "hello urt", 9, MSG_NOSIGNAL) != 9)
			abort();
		close(fd);
	}
	return NULL;
}

Test(net, single_shot_accept_and_recv_results)
{
	struct urt_rt_opts o;
	struct urt_rt *rt;
	struct single s = { 0 };
	pthread_t th;
	uint16_t port;

	urt_rt_opts_default(&o);
	rt = fx_start(&o);
	s.lfd = listen_any(&port);
	pthread_create(&th, NULL, single_client, &port);
	fx_run(rt, 0, single_body, &s);
	pthread_join(th, NULL);
	urt_rt_stop(rt);
	close(s.lfd);
	cr_expect_gt(s.afd, 2, "accept must return the new fd, got %d", s.afd);
	cr_expect_eq(s.got, 9, "recv must return the byte count, got %zd", s.got);
	cr_expect_eq(memcmp(s.buf, "hello urt", 9), 0);
}
