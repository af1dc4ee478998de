/*
 * urkv: a Redis-protocol (RESP2) server on the urt key-value store.
 *
 * Internal header of the server: options, the server and per-core state
 * (server.c), connections (conn.c) and the command table (commands.c).
 *
 * Threading: one urt reactor per core.  Each core has its own listening
 * socket (SO_REUSEPORT) with a multishot accept; each accepted connection
 * is served by one fiber on that core for its whole life.  Keys live on
 * the store's shards (one per core); a command on a key of another core's
 * shard is forwarded by the store (urt_kv_submit) and answered back, so no
 * lock is taken anywhere.  The only state shared between cores is a few
 * atomic counters (connected clients, the stop flag).
 */
#ifndef URKV_SERVER_H
#define URKV_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resp.h"
#include "urt/urt.h"

struct urt_rt;

/* The reply to a value over URT_KV_VALUE_MAX (checked in urkv_main). */
#define URKV_VALUE_MAX_TEXT "536870912"
#define URKV_E_VALUE_TOO_LARGE "ERR value too large (urkv values are at most " URKV_VALUE_MAX_TEXT " bytes)"

struct urkv_opts {
	const char *bind_addr;		/* Listen address (default 127.0.0.1). */
	uint16_t port;			/* TCP port (default 6379; 0 = any free one). */
	const char *port_file;		/* Write the port here once listening (tests). */
	const char *data_path;		/* Data file or block device (default ./urkv.data). */
	uint64_t size_bytes;		/* Size of a new data file (default 1 GiB). */
	uint64_t cache_bytes;		/* Page cache of all shards (default 256 MiB). */
	unsigned cores;			/* Reactors (0 = every online CPU). */
	unsigned max_clients;		/* Connections at once (default 1024). */
	size_t max_request;		/* Largest request in bytes (default proto_max_bulk_len + 1 MiB). */
	size_t proto_max_bulk_len;	/* Largest bulk argument, as Redis's (default 512 MiB = URT_KV_VALUE_MAX). */
	size_t max_args;		/* Most arguments of one command (default 65536). */
	uint64_t idle_timeout_ns;	/* Close a connection idle this long (0 = never; default 0). */
	bool nosync;			/* Acknowledge writes before they are durable (URT_KV_NOSYNC). */
	enum urt_ps_sync sync;		/* Log durability policy (default AUTO). */
	uint64_t group_delay_ns;	/* Log writer's extra batching delay (default 0). */
	int poll_mode;			/* enum urt_poll_mode of the reactors (default INTERRUPT). */
	bool no_pin;			/* Let the scheduler move the reactors between CPUs. */
	bool quiet;			/* No informational messages on stderr. */
	bool enable_debug;		/* DEBUG (CLOCK-ADVANCE) allowed (--enable-debug-command). */
};

/* Counters of one core (read by INFO from other cores without locks: approximate). */
struct urkv_core_stats {
	_Atomic uint64_t connections;	/* Connections accepted. */
	_Atomic uint64_t rejected;	/* Connections refused (max clients). */
	_Atomic uint64_t commands;	/* Commands executed. */
	_Atomic uint64_t protocol_errors;/* Connections closed for a malformed request. */
	_Atomic uint64_t timeouts;	/* Connections closed for idleness. */
	_Atomic uint64_t bytes_in;	/* Bytes received. */
	_Atomic uint64_t bytes_out;	/* Bytes sent. */
};

struct urkv_conn;

/* One core's part of the server. */
struct urkv_core {
	struct urkv_server *srv;	/* Server. */
	unsigned core;			/* Index. */
	int lfd;			/* Listening socket (SO_REUSEPORT). */
	struct urt_io acc;		/* Multishot accept. */
	bool accepting;			/* acc is in flight. */
	struct urkv_conn *conns;	/* Live connections (list). */
	unsigned nconns;		/* Entries of conns. */
	struct urt_pbuf *pb;		/* Provided buffers of the connections' receives. */
	bool reaper;			/* The idle-timeout fiber runs. */
	struct urt_waitq drained_wq;	/* Stop waits here for nconns == 0. */
	struct urkv_core_stats st;	/* Counters. */
};

struct urkv_server {
	struct urkv_opts o;		/* Options. */
	struct urt_rt *rt;		/* Runtime. */
	struct urt_kv *kv;		/* Store. */
	unsigned ncores;		/* Reactors. */
	uint16_t port;			/* Port actually bound. */
	uint64_t start_ns;		/* CLOCK_MONOTONIC at start. */
	atomic_uint clients;		/* Connected clients, all cores. */
	atomic_bool stopping;		/* SIGTERM/SIGINT received. */
	struct urkv_core *cores;	/* ncores entries. */
	_Atomic uint64_t clock_offset_ms;/* Added to the expiry clock by DEBUG CLOCK-ADVANCE. */
};

/* server.c */
int urkv_server_start(struct urkv_server *srv);
/* Stops accepting, lets every connection finish its request and leave; blocks (main thread). */
void urkv_server_stop(struct urkv_server *srv);

/* conn.c */
/* Serves an accepted socket on the calling core (reactor context); takes fd. */
void urkv_conn_start(struct urkv_core *cc, int fd);
/* Ends the receive of every connection of the calling core, so each leaves. */
void urkv_conn_stop_all(struct urkv_core *cc);
/* Closes the connections of the calling core idle for longer than the timeout (fiber). */
void urkv_conn_reaper(void *cc);

/* Classes of commands, for ordering within a pipeline (conn.c). */
enum urkv_class {
	URKV_NONE = 0,		/* Reply known at parse time (an error). */
	URKV_READ,		/* Reads: run concurrently with other reads. */
	URKV_WRITE,		/* Writes: run concurrently with other writes. */
	URKV_SYNC,		/* Runs alone, after everything before it. */
};

/* One command of a pipeline batch. */
struct urkv_slot {
	const struct urkv_cmd *cmd;	/* NULL: err is the reply. */
	const struct resp_arg *argv;	/* Arguments (argv[0] is the name). */
	size_t argc;			/* Arguments. */
	const char *err;		/* Error reply (without "-"), or NULL. */
	unsigned req0;			/* First request in the connection's pool. */
	unsigned nreq;			/* Requests. */
	long long num;			/* Integer result being built. */
	char errbuf[160];		/* Storage for a formatted err. */
};

/* A command; run for URKV_SYNC, prepare + reply for URKV_READ/WRITE. */
struct urkv_cmd {
	const char *name;		/* Lower case. */
	int arity;			/* Redis style: n exactly, -n at least n. */
	enum urkv_class cls;		/* Ordering class. */
	unsigned key_stride;		/* Multi-key: arguments per request from argv[1]; 0: one request. */
	bool values;			/* Its requests need value buffers (GET, MGET). */
	/* Checks the arguments and submits the store requests (READ/WRITE). */
	void (*prepare)(struct urkv_conn *c, struct urkv_slot *s);
	/* Multi-key without values: sums the results into num, the first error into err. */
	void (*tally)(struct urkv_conn *c, struct urkv_slot *s);
	/* Writes the reply once the requests are done (READ/WRITE). */
	void (*reply)(struct urkv_conn *c, struct urkv_slot *s);
	/* Runs and writes the reply (SYNC). */
	void (*run)(struct urkv_conn *c, struct urkv_slot *s);
	/* Multi-key without values: the reply is +OK (MSET) rather than the count. */
	bool ok_reply;
	/* When set: the class of this call, which depends on its arguments (SET ... GET). */
	enum urkv_class (*classify)(const struct resp_arg *argv, size_t argc);
};

/* The class of slot s's command (its classify, else cls). */
static inline enum urkv_class urkv_slot_class(const struct urkv_slot *s)
{
	if (!s->cmd)
		return URKV_NONE;
	return s->cmd->classify ? s->cmd->classify(s->argv, s->argc) : s->cmd->cls;
}

/* commands.c */
const struct urkv_cmd *urkv_cmd_lookup(const struct resp_arg *name);
/* The reply for an unknown command or a wrong argument count, into buf. */
const char *urkv_cmd_check(const struct urkv_cmd *cmd, const struct resp_arg *argv, size_t argc,
			   char *buf, size_t len);

/* conn.c services used by the commands. */
struct urkv_server *urkv_conn_server(struct urkv_conn *c);
struct urkv_core *urkv_conn_core(struct urkv_conn *c);
/* A request of slot s (index i among its nreq). */
struct urt_kv_req *urkv_conn_req(struct urkv_conn *c, struct urkv_slot *s, unsigned i);
/* Submits a request prepared by a command; its result is in req->res once done. */
void urkv_conn_submit(struct urkv_conn *c, struct urt_kv_req *req);
/* Value buffer for a GET request (valid until the batch's replies are written). */
void urkv_conn_value_buf(struct urkv_conn *c, struct urt_kv_req *req);
/* Waits until every submitted request is done. */
void urkv_conn_wait(struct urkv_conn *c);
/* The connection's per-connection write flags (URT_KV_NOSYNC or 0). */
unsigned urkv_conn_write_flags(struct urkv_conn *c);
void urkv_conn_set_nosync(struct urkv_conn *c, bool on);
/* Closes after the replies written so far (QUIT). */
void urkv_conn_close_after_reply(struct urkv_conn *c);
/* SCAN cursors of the connection: id <-> cursor. */
struct urt_kv_cursor *urkv_conn_cursor(struct urkv_conn *c, uint64_t id, bool create,
				       uint64_t *new_id);
void urkv_conn_cursor_drop(struct urkv_conn *c, uint64_t id);

/* Reply writers: they flush to the socket when the output buffer fills. */
void urkv_out_simple(struct urkv_conn *c, const char *s);
void urkv_out_error(struct urkv_conn *c, const char *msg);
void urkv_out_errorf(struct urkv_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void urkv_out_int(struct urkv_conn *c, long long v);
void urkv_out_bulk(struct urkv_conn *c, const void *data, size_t len);
void urkv_out_null(struct urkv_conn *c);
void urkv_out_array(struct urkv_conn *c, size_t n);
/* Writes the value of a GET request (refetching it when it did not fit its buffer). */
void urkv_out_value(struct urkv_conn *c, struct urt_kv_req *req);

/* info.c: the INFO reply text for section (NULL or "all" or "default": all). */
char *urkv_info(struct urkv_conn *c, const char *section, size_t len);

/* match.c: Redis glob patterns (SCAN MATCH). */
bool urkv_glob_match(const char *pat, size_t plen, const char *s, size_t slen, bool nocase);

#endif /* URKV_SERVER_H */
