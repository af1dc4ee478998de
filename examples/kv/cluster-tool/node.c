/* One connection to a urkv node: connect, AUTH, commands, and messages that
 * name the node ("127.0.0.1:7001: ..."), so an operator reading the output
 * of a command that touched many nodes knows which one answered what. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "ctool.h"

void ct_err(const struct ct_node *node, const char *fmt, ...)
{
	va_list ap;

	fputs("urkv-cluster: ", stderr);
	if (node)
		fprintf(stderr, "node %s: ", node->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void ct_say(const struct ct_opts *opts, const char *fmt, ...)
{
	va_list ap;

	if (opts->quiet)
		return;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

/* "host:port" (the last colon splits, so "::1:7000" works) into a numeric
 * address: the address clients are redirected to must be one they can dial
 * without a resolver, as Redis's MOVED replies are. */
int ct_parse_hostport(const char *arg, char *ip, size_t ip_len, int *port)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res;
	const char *colon = strrchr(arg, ':');
	char host[256], *end;
	long p;
	int rc;

	if (!colon || colon == arg || (size_t)(colon - arg) >= sizeof(host))
		return -EINVAL;
	memcpy(host, arg, (size_t)(colon - arg));
	host[colon - arg] = '\0';
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || p < 1 || p > 65535)
		return -EINVAL;
	rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc)
		return -EHOSTUNREACH;
	if (res->ai_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, ip, (socklen_t)ip_len);
	else
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)res->ai_addr)->sin6_addr, ip, (socklen_t)ip_len);
	freeaddrinfo(res);
	*port = (int)p;
	return 0;
}

int ct_node_open(struct ct_node *node, const char *ip, int port, const struct ct_opts *opts)
{
	struct timeval tv = { .tv_sec = opts->timeout_ms / 1000,
			      .tv_usec = (opts->timeout_ms % 1000) * 1000 };
	redisReply *r;

	memset(node, 0, sizeof(*node));
	snprintf(node->ip, sizeof(node->ip), "%s", ip);
	node->port = port;
	node->timeout_ms = opts->timeout_ms;
	if (strchr(ip, ':'))
		snprintf(node->name, sizeof(node->name), "[%s]:%d", ip, port);
	else
		snprintf(node->name, sizeof(node->name), "%s:%d", ip, port);
	node->ctx = redisConnectWithTimeout(ip, port, tv);
	if (!node->ctx || node->ctx->err) {
		ct_err(node, "cannot connect: %s",
		       node->ctx ? node->ctx->errstr : "out of memory");
		goto err_free;
	}
	if (redisSetTimeout(node->ctx, tv) != REDIS_OK) {
		ct_err(node, "cannot set the socket timeout: %s", node->ctx->errstr);
		goto err_free;
	}
	if (opts->password) {
		const char *argv[] = { "AUTH", opts->password };
		r = ct_node_cmd(node, 2, argv, NULL);
		if (ct_node_expect_ok(node, r, "AUTH"))
			goto err_free;
	}
	r = ct_node_cmdf(node, "CLUSTER MYID");
	if (!r)
		goto err_free;
	if (r->type == REDIS_REPLY_ERROR) {
		ct_err(node, "CLUSTER MYID: %s%s", r->str,
		       strstr(r->str, "disabled") ? " (start it with --cluster-enabled yes)" :
		       strstr(r->str, "NOAUTH") ? " (give the password with -a)" : "");
		freeReplyObject(r);
		goto err_free;
	}
	if ((r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS) || r->len != CT_ID_LEN) {
		ct_err(node, "CLUSTER MYID: not a %d-character node id", CT_ID_LEN);
		freeReplyObject(r);
		goto err_free;
	}
	memcpy(node->id, r->str, CT_ID_LEN);
	node->id[CT_ID_LEN] = '\0';
	freeReplyObject(r);
	return 0;

err_free:
	if (node->ctx)
		redisFree(node->ctx);
	node->ctx = NULL;
	return -EIO;
}

void ct_node_close(struct ct_node *node)
{
	if (node->ctx)
		redisFree(node->ctx);
	node->ctx = NULL;
}

const char *ct_node_failure(const struct ct_node *node, char *buf, size_t len)
{
	if (ct_ctx_timed_out(node->ctx)) {
		snprintf(buf, len, "no reply within %d ms (timed out; --timeout MS sets the limit)",
			 node->timeout_ms);
		return buf;
	}
	return node->ctx->errstr[0] ? node->ctx->errstr : "no reply";
}

/* Says what failed on node and why (ct_node_failure), then closes the connection. */
static void cmd_failed(struct ct_node *node, const char *what)
{
	char buf[96];

	ct_err(node, "%s: %s", what, ct_node_failure(node, buf, sizeof(buf)));
	redisFree(node->ctx);
	node->ctx = NULL;
}

/* A command; NULL (with a message naming the node) when the connection
 * failed.  An error reply is returned to the caller to judge. */
redisReply *ct_node_cmd(struct ct_node *node, int argc, const char **argv, const size_t *len)
{
	redisReply *r;

	if (!node->ctx) {
		ct_err(node, "%s: not connected", argv[0]);
		return NULL;
	}
	r = redisCommandArgv(node->ctx, argc, argv, len);
	if (!r)
		cmd_failed(node, argv[0]);
	return r;
}

redisReply *ct_node_cmdf(struct ct_node *node, const char *fmt, ...)
{
	redisReply *r;
	va_list ap;

	if (!node->ctx) {
		ct_err(node, "%s: not connected", fmt);
		return NULL;
	}
	va_start(ap, fmt);
	r = redisvCommand(node->ctx, fmt, ap);
	va_end(ap);
	if (!r)
		cmd_failed(node, fmt);
	return r;
}

/* 0 for +OK; otherwise a message naming the node and what was asked.  Frees r. */
int ct_node_expect_ok(struct ct_node *node, redisReply *r, const char *what)
{
	int rc = 0;

	if (!r)
		return -EIO;
	if (r->type == REDIS_REPLY_ERROR) {
		ct_err(node, "%s refused: %s", what, r->str);
		rc = -EPROTO;
	} else if (r->type != REDIS_REPLY_STATUS || strcmp(r->str, "OK") != 0) {
		ct_err(node, "%s: unexpected reply (type %d)", what, r->type);
		rc = -EPROTO;
	}
	freeReplyObject(r);
	return rc;
}

/* The node's own view: CLUSTER NODES, CLUSTERX VERSION and DBSIZE. */
int ct_node_read_view(struct ct_node *node, struct ct_view *view)
{
	char why[256];
	redisReply *r;
	int rc;

	r = ct_node_cmdf(node, "CLUSTER NODES");
	if (!r)
		return -EIO;
	if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS) {
		ct_err(node, "CLUSTER NODES: %s", r->type == REDIS_REPLY_ERROR ? r->str : "not a bulk string");
		freeReplyObject(r);
		return -EPROTO;
	}
	rc = ct_view_parse_nodes(view, r->str, why, sizeof(why));
	freeReplyObject(r);
	if (rc) {
		ct_err(node, "CLUSTER NODES: %s", why);
		return rc;
	}
	r = ct_node_cmdf(node, "CLUSTERX VERSION");
	if (!r)
		return -EIO;
	if (r->type != REDIS_REPLY_INTEGER || r->integer < 0) {
		ct_err(node, "CLUSTERX VERSION: %s", r->type == REDIS_REPLY_ERROR ? r->str : "not an integer");
		freeReplyObject(r);
		return -EPROTO;
	}
	view->topo.version = (uint64_t)r->integer;
	freeReplyObject(r);
	r = ct_node_cmdf(node, "DBSIZE");
	if (!r)
		return -EIO;
	view->keys = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
	freeReplyObject(r);
	if (view->self < 0 || strcmp(view->topo.node[view->self].id, node->id) != 0) {
		ct_err(node, "CLUSTER NODES has no line flagged myself with its id %s", node->id);
		return -EPROTO;
	}
	return 0;
}
