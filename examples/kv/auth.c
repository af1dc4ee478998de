/*
 * urkv's access control, as Redis has it for the `default` user:
 * requirepass, AUTH in both forms, HELLO's AUTH option, and protected mode.
 *
 * States of a connection: authed or not.  A connection starts authed when
 * no password is set at accept time (urkv_auth_conn_init); AUTH or HELLO
 * AUTH with the right password sets it (urkv_auth_run, urkv_hello_run).  A
 * wrong password leaves it as it was, as in Redis.  Until authed, every
 * command but AUTH, HELLO and QUIT is answered -NOAUTH (urkv_auth_check,
 * called by the connection in pipeline order, so "AUTH pw" followed by
 * "GET k" in one pipeline works).
 *
 * The password is compared in constant time: the work depends only on the
 * length of the given password, never on where the first differing byte
 * is (urkv_auth_password_ok).
 *
 * Protected mode (urkv_auth_denied): with protected-mode on and no
 * password, a connection whose peer is not 127.0.0.1 or ::1 gets Redis's
 * -DENIED explanation and is closed.  A peer 127.0.0.2 is *not* local,
 * exactly as in Redis; an IPv4-mapped ::ffff:127.0.0.1 is (it is the same
 * loopback client on a dual-stack socket).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "urkv.h"
#include "urt/urt.h"

static const char denied_msg[] =
	"-DENIED Redis is running in protected mode because protected mode is enabled and no "
	"password is set for the default user. In this mode connections are only accepted from "
	"the loopback interface. If you want to connect from external computers to Redis you may "
	"adopt one of the following solutions: 1) Just disable protected mode sending the command "
	"'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from "
	"the same host the server is running, however MAKE SURE Redis is not publicly accessible "
	"from internet if you do so. This lasts until the server restarts: to make it permanent, use "
	"2) or 3). 2) "
	"Alternatively you can just disable the protected mode by editing the Redis configuration "
	"file, and setting the protected mode option to 'no', and then restarting the server. 3) "
	"If you started the server manually just for testing, restart it with the "
	"'--protected-mode no' option. 4) Setup a an authentication password for the default "
	"user. NOTE: You only need to do one of the above things in order for the server to start "
	"accepting connections from the outside.\r\n";

#define WRONGPASS "WRONGPASS invalid username-password pair or user is disabled."

static bool have_password(struct urkv_server *srv)
{
	struct urkv_secret *p = atomic_load(&srv->live.pass);

	return p && p->len > 0;
}

int urkv_auth_set_password(struct urkv_server *srv, const char *pw, size_t len)
{
	struct urkv_secret *p = malloc(sizeof(*p) + len + 1);

	if (!p)
		return -ENOMEM;
	p->len = len;
	memcpy(p->pw, pw, len);
	p->pw[len] = 0;
	/* Readers on other cores may hold the old one: it is freed at exit only. */
	p->prev = atomic_exchange(&srv->live.pass, p);
	return 0;
}

void urkv_auth_free(struct urkv_server *srv)
{
	struct urkv_secret *p = atomic_exchange(&srv->live.pass, NULL);

	while (p) {
		struct urkv_secret *prev = p->prev;

		memset(p->pw, 0, p->len);
		free(p);
		p = prev;
	}
}

bool urkv_auth_password_ok(struct urkv_server *srv, const char *pw, size_t len)
{
	struct urkv_secret *p = atomic_load(&srv->live.pass);
	volatile unsigned char diff;
	size_t plen;

	if (!p || p->len == 0)
		return true;	/* The default user has no password: anything goes (Redis's nopass). */
	plen = p->len;
	/*
	 * Every byte of the given password is compared, against the stored one
	 * repeated (its length is not secret-dependent work), and the lengths
	 * are folded in: the time depends on len only.
	 */
	diff = (unsigned char)(len != plen);
	for (size_t i = 0; i < len; i++)
		diff |= (unsigned char)(pw[i] ^ p->pw[i % plen]);
	return diff == 0;
}

static void format_addr(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
		port = ntohs(a->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
		port = ntohs(a->sin6_port);
	}
	snprintf(buf, len, "%s:%u", ip, port);
}

static bool is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;

		return ntohl(a->sin_addr.s_addr) == INADDR_LOOPBACK;	/* 127.0.0.1 only. */
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
		static const unsigned char mapped[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
							  127, 0, 0, 1 };

		return IN6_IS_ADDR_LOOPBACK(&a->sin6_addr) ||
		       memcmp(&a->sin6_addr, mapped, sizeof(mapped)) == 0;
	}
	return ss->ss_family == AF_UNIX;
}

bool urkv_auth_peer_is_local(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	return getpeername(fd, (struct sockaddr *)&ss, &len) == 0 && is_loopback(&ss);
}

const char *urkv_auth_denied(struct urkv_server *srv, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (!atomic_load(&srv->live.protected_mode) || have_password(srv))
		return NULL;
	if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
		return NULL;	/* The peer is gone already; the connection ends by itself. */
	return is_loopback(&ss) ? NULL : denied_msg;
}

void urkv_auth_conn_init(struct urkv_server *srv, struct urkv_client *cl, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	cl->authed = !have_password(srv);
	if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
		format_addr(&ss, cl->addr, sizeof(cl->addr));
	len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
		format_addr(&ss, cl->laddr, sizeof(cl->laddr));
}

const char *urkv_auth_check(struct urkv_conn *c, const struct urkv_slot *s)
{
	const char *name = s->cmd->name;

	if (urkv_conn_client(c)->authed)
		return NULL;
	if (strcmp(name, "auth") == 0 || strcmp(name, "quit") == 0)
		return NULL;
	if (strcmp(name, "hello") == 0)
		return NULL;	/* HELLO checks for itself: its AUTH option authenticates. */
	/* A password set by CONFIG SET after this client connected does not log it out (as Redis). */
	if (!have_password(urkv_conn_server(c))) {
		urkv_conn_client(c)->authed = true;
		return NULL;
	}
	return "NOAUTH Authentication required.";
}

/* Checks user and password; true and the client authed, or false and the reply written. */
static bool authenticate(struct urkv_conn *c, const struct resp_arg *user, const struct resp_arg *pw)
{
	struct urkv_server *srv = urkv_conn_server(c);
	bool user_ok = !user || (user->len == 7 && memcmp(user->ptr, "default", 7) == 0);
	bool pw_ok = urkv_auth_password_ok(srv, pw->ptr, pw->len);

	if (user_ok && pw_ok) {
		urkv_conn_client(c)->authed = true;
		return true;
	}
	atomic_fetch_add_explicit(&urkv_conn_core(c)->st.auth_failures, 1, memory_order_relaxed);
	urkv_out_error(c, WRONGPASS);
	return false;
}

/* AUTH password | AUTH username password. */
void urkv_auth_run(struct urkv_conn *c, struct urkv_slot *s)
{
	if (s->argc > 3) {
		urkv_out_error(c, "ERR syntax error");
		return;
	}
	if (s->argc == 2 && !have_password(urkv_conn_server(c))) {
		urkv_out_error(c, "ERR AUTH <password> called without any password configured for "
				  "the default user. Are you sure your configuration is correct?");
		return;
	}
	if (authenticate(c, s->argc == 3 ? &s->argv[1] : NULL, &s->argv[s->argc - 1]))
		urkv_out_simple(c, "OK");
}

/* HELLO [protover [AUTH username password] [SETNAME clientname]]: RESP2 only. */
void urkv_hello_run(struct urkv_conn *c, struct urkv_slot *s)
{
	struct urkv_client *cl = urkv_conn_client(c);
	const struct resp_arg *user = NULL, *pw = NULL, *name = NULL;
	long long ver = 2;

	if (s->argc >= 2 && (resp_parse_ll(s->argv[1].ptr, s->argv[1].len, &ver) != 0)) {
		urkv_out_error(c, "ERR Protocol version is not an integer or out of range");
		return;
	}
	if (ver < 2 || ver > 3) {
		urkv_out_error(c, "NOPROTO unsupported protocol version");
		return;
	}
	for (size_t i = 2; i < s->argc; i++) {
		size_t more = s->argc - i - 1;

		if (resp_arg_eq_nocase(&s->argv[i], "AUTH") && more >= 2) {
			user = &s->argv[i + 1];
			pw = &s->argv[i + 2];
			i += 2;
		} else if (resp_arg_eq_nocase(&s->argv[i], "SETNAME") && more >= 1) {
			name = &s->argv[i + 1];
			i += 1;
		} else {
			urkv_out_errorf(c, "ERR Syntax error in HELLO option '%.*s'",
					(int)(s->argv[i].len > 64 ? 64 : s->argv[i].len), s->argv[i].ptr);
			return;
		}
	}
	if (!pw && !cl->authed && have_password(urkv_conn_server(c))) {
		urkv_out_error(c, "NOAUTH HELLO must be called with the client already authenticated, "
				  "otherwise the HELLO AUTH <user> <pass> option can be used to "
				  "authenticate the client and select the RESP protocol version at the "
				  "same time");
		return;
	}
	if (pw && !authenticate(c, user, pw))
		return;
	if (ver != 2) {
		/* RESP3: urkv speaks RESP2 only (clients such as redis-cli then stay on RESP2). */
		urkv_out_error(c, "NOPROTO unsupported protocol version");
		return;
	}
	if (name) {
		size_t n = name->len < sizeof(cl->name) - 1 ? name->len : sizeof(cl->name) - 1;

		for (size_t i = 0; i < name->len; i++)
			if (name->ptr[i] <= ' ' || name->ptr[i] > '~') {
				urkv_out_error(c, "ERR Client names cannot contain spaces, newlines or "
						  "special characters.");
				return;
			}
		memcpy(cl->name, name->ptr, n);
		cl->name[n] = 0;
	}
	urkv_out_array(c, 14);
	urkv_out_bulk(c, "server", 6);
	urkv_out_bulk(c, "redis", 5);
	urkv_out_bulk(c, "version", 7);
	urkv_out_bulk(c, "7.0.0", 5);
	urkv_out_bulk(c, "proto", 5);
	urkv_out_int(c, 2);
	urkv_out_bulk(c, "id", 2);
	urkv_out_int(c, (long long)cl->id);
	urkv_out_bulk(c, "mode", 4);
	urkv_out_bulk(c, "standalone", 10);
	urkv_out_bulk(c, "role", 4);
	urkv_out_bulk(c, "master", 6);
	urkv_out_bulk(c, "modules", 7);
	urkv_out_array(c, 0);
}
