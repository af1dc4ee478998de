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

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "resp.h"
#include "urt/urt.h"

struct urt_rt;

/* appendfsync policies (fsync.c has their write paths; docs/kv.md their contracts). */
enum urkv_fsync {
	URKV_FSYNC_ALWAYS = 0,		/* Acknowledge once the write's log batch is durable. */
	URKV_FSYNC_EVERYSEC,		/* Once applied; each core's first write per shard each second is durable. */
	URKV_FSYNC_NO,			/* Once applied (NOSYNC); the group commit follows on its own. */
};
/* The reply to a value over URT_KV_VALUE_MAX (checked in urkv_main). */
#define URKV_VALUE_MAX_TEXT "536870912"
#define URKV_E_VALUE_TOO_LARGE "ERR value too large (urkv values are at most " URKV_VALUE_MAX_TEXT " bytes)"

/* enable-debug-command: who may run DEBUG (Redis's no, yes, local). */
enum urkv_debug {
	URKV_DEBUG_NO = 0,	/* Nobody (default). */
	URKV_DEBUG_YES,		/* Every client. */
	URKV_DEBUG_LOCAL,	/* Clients on a loopback address or a unix socket. */
};

struct urkv_opts {
	const char *bind_addr;		/* Listen address (default 127.0.0.1). */
	uint16_t port;			/* TCP port (default 6379; 0 = any free one). */
	const char *port_file;		/* Write the port here once listening (tests). */
	const char *data_path;		/* Data file or block device (default ./urkv.data). */
	uint64_t size_bytes;		/* Size of a new data file (default 1 GiB). */
	uint64_t cache_bytes;		/* Page cache of all shards (default 256 MiB). */
	uint64_t log_bytes;		/* Log of each shard of a new data file (0: automatic, kv.h). */
	unsigned cores;			/* Reactors (0 = every online CPU). */
	unsigned max_clients;		/* Connections at once (default 1024). */
	size_t max_request;		/* Largest request in bytes (default proto_max_bulk_len + 1 MiB). */
	size_t proto_max_bulk_len;	/* Largest bulk argument, as Redis's (default 512 MiB = URT_KV_VALUE_MAX). */
	size_t max_args;		/* Most arguments of one command (default 65536). */
	uint64_t idle_timeout_ns;	/* Close a connection idle this long (0 = never; default 0). */
	enum urt_ps_sync sync;		/* Log durability policy (default AUTO). */
	uint64_t group_delay_ns;	/* Log writer's extra batching delay (default 0). */
	uint64_t read_prefetch_min;	/* urt_kv_opts.read_prefetch_min_bytes (default 16 MiB). */
	int poll_mode;			/* enum urt_poll_mode of the reactors (default INTERRUPT). */
	bool no_pin;			/* Let the scheduler move the reactors between CPUs. */
	bool quiet;			/* No informational messages on stderr. */
	enum urkv_debug enable_debug;	/* Who may run DEBUG (CLOCK-ADVANCE): enable-debug-command. */
	/* Redis-style settings (opts.c, config.c; the ones CONFIG SET changes are in urkv_live). */
	enum urkv_fsync appendfsync;	/* appendfsync (default always; --nosync: no). */
	const char *requirepass;	/* Password of the default user (NULL: none). */
	bool protected_mode;		/* Refuse non-loopback peers when there is no password. */
	const char *dir;		/* Directory of dbfilename (default "."). */
	const char *dbfilename;		/* Data file name in dir (default urkv.data). */
	bool data_set;			/* --data given: dir and dbfilename do not apply. */
	const char *config_file;	/* The redis.conf-style file read at start, or NULL. */
	bool cluster_enabled;		/* cluster-enabled yes: a Redis Cluster node (cluster.c). */
	const char *cluster_config_file;/* cluster-config-file (default <data file>.cluster). */
};

/* Sets option name (a long option, without "--") to val; 0, or -1 with a reason in why. */
int urkv_opt_set(struct urkv_opts *o, const char *name, const char *val, char *why, size_t len);
/* True if name is a long option that takes a value. */
bool urkv_opt_known(const char *name);
/* Fills o with the defaults (docs/kv.md). */
void urkv_opts_default(struct urkv_opts *o);
/* The data path dir/dbfilename (or --data) into buf. */
const char *urkv_opts_data_path(const struct urkv_opts *o, char *buf, size_t len);

/* config.c: reads a redis.conf-style file into o; prints file:line: reason and returns -1 on error. */
int urkv_config_load(const char *path, struct urkv_opts *o);
/* Frees the strings the settings read from the file point at (at exit). */
void urkv_config_free(void);

/* Counters of one core (read by INFO from other cores without locks: approximate). */
struct urkv_core_stats {
	_Atomic uint64_t connections;	/* Connections accepted. */
	_Atomic uint64_t rejected;	/* Connections refused (max clients). */
	_Atomic uint64_t commands;	/* Commands executed. */
	_Atomic uint64_t protocol_errors;/* Connections closed for a malformed request. */
	_Atomic uint64_t timeouts;	/* Connections closed for idleness. */
	_Atomic uint64_t bytes_in;	/* Bytes received. */
	_Atomic uint64_t bytes_out;	/* Bytes sent. */
	_Atomic uint64_t denied;	/* Connections refused by protected mode. */
	_Atomic uint64_t auth_failures;	/* AUTH and HELLO AUTH with a wrong password. */
	_Atomic uint64_t fsync_points;	/* everysec: writes made durable by the once-a-second rule. */
};

/*
 * Settings CONFIG SET changes at run time, read by every core.  Each is one
 * atomic; the password is an immutable string swapped by pointer (old ones
 * are kept until exit, so a reader never sees freed memory).
 */
struct urkv_secret {
	struct urkv_secret *prev;	/* The one it replaced (freed at exit). */
	size_t len;			/* Bytes of pw. */
	char pw[];			/* The password (NUL-terminated for CONFIG GET). */
};

struct urkv_live {
	atomic_uint max_clients;	/* maxclients. */
	_Atomic uint64_t timeout_ns;	/* timeout (idle), 0 = never. */
	atomic_int appendfsync;		/* enum urkv_fsync. */
	atomic_bool protected_mode;	/* protected-mode. */
	_Atomic(struct urkv_secret *) pass;	/* requirepass; NULL or len 0: none. */
	_Atomic uint64_t last_save_wall_ns;	/* Last SAVE/SHUTDOWN checkpoint (or start). */
	atomic_uint saves;		/* SAVE/SHUTDOWN checkpoints done. */
};

struct urkv_conn;

/* One core's part of the server. */
struct urkv_core {
	struct urkv_server *srv;	/* Server. */
	unsigned core;			/* Index. */
	int lfd;			/* Listening socket (SO_REUSEPORT). */
	struct urt_io acc;		/* Multishot accept. */
	bool accepting;			/* acc is in flight. */
	struct urt_io acc_pause;	/* Timer that re-arms acc after a failed accept (server.c). */
	bool acc_paused;		/* acc_pause is in flight. */
	int spare_fd;			/* Held in reserve: closed to refuse a connection when out of fds, or -1. */
	uint64_t acc_err_ns;		/* Last "accept failed" message of this core (one a minute). */
	uint64_t acc_err_refused;	/* Connections refused for want of fds since that message. */
	struct urkv_conn *conns;	/* Live connections (list). */
	unsigned nconns;		/* Entries of conns. */
	struct urt_pbuf *pb;		/* Provided buffers of the connections' receives. */
	bool reaper;			/* The housekeeping fiber runs (idle timeouts). */
	struct urt_waitq drained_wq;	/* Stop waits here for nconns == 0. */
	struct urkv_core_stats st;	/* Counters. */
	struct urkv_cmdstat *cmdstats;	/* Per command of the table (stats.c); this core only writes. */
	struct urkv_errstats *errstats;	/* Error replies by kind (errstats.c); this core only writes. */
	uint64_t *fsync_sec;		/* Per shard: second of this core's last durable write (fsync.c). */
};

/* watch.c: whether the data path still names the file the store opened. */
enum urkv_watch_state {
	URKV_WATCH_OK = 0,	/* The path names the open file (or the store is not watched). */
	URKV_WATCH_GONE,	/* The path names no file: deleted or renamed away. */
	URKV_WATCH_REPLACED,	/* The path names another file. */
};

struct urkv_watch {
	bool on;			/* The store has a file of its own (urt_kv_file_id): watched. */
	uint64_t dev;			/* That file's st_dev... */
	uint64_t ino;			/* ...and st_ino. */
	atomic_int state;		/* enum urkv_watch_state; the watch thread writes, every core reads. */
	pthread_t thread;		/* The watch thread (watch_main), while running. */
	pthread_mutex_t lock;		/* Guards stop; the thread sleeps on wake under it. */
	pthread_cond_t wake;		/* Signalled by urkv_watch_stop. */
	bool stop;			/* urkv_watch_stop asked the thread to end. */
	bool running;			/* The thread was started and not yet joined. */
	char msg[3][4400];		/* The refusal of each state but OK, formatted at start. */
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
	struct urkv_live live;		/* Settings CONFIG SET changes. */
	_Atomic uint64_t next_client_id;/* CLIENT ID of the next connection. */
	atomic_int shutdown_req;	/* SHUTDOWN: 1 save, 2 nosave (main thread acts on it). */
	char data_path[4096];		/* The data file in use. */
	struct urkv_cluster *cluster;	/* Cluster state (cluster-enabled), else NULL. */
	struct urkv_watch watch;	/* The data file watch (watch.c). */
};

/* server.c */
int urkv_server_start(struct urkv_server *srv);
/*
 * After the start: raises RLIMIT_NOFILE's soft limit to fit --max-clients,
 * else lowers max-clients to what fits (with a message); -EMFILE when not
 * even one client fits.
 */
int urkv_server_fit_fds(struct urkv_server *srv);
/* ip (IPv4 or IPv6 literal) and port as a socket address; -EINVAL if ip is neither. */
int urkv_sockaddr(const char *ip, uint16_t port, struct sockaddr_storage *ss, socklen_t *len);
/*
 * True if a connection to the address to (a local one: the caller checks)
 * reaches this server: its port, and an address its listeners cover.
 */
bool urkv_server_listens_on(struct urkv_server *srv, const struct sockaddr_storage *to);
/* Starts the housekeeping fiber of cc unless it runs; on cc's core. */
int urkv_server_reaper_start(struct urkv_core *cc);
/* Stops accepting, lets every connection finish its request and leave; blocks (main thread). */
void urkv_server_stop(struct urkv_server *srv);

/* conn.c */
/* Serves an accepted socket on the calling core (reactor context); takes fd. */
void urkv_conn_start(struct urkv_core *cc, int fd);
/* Ends the receive of every connection of the calling core, so each leaves. */
void urkv_conn_stop_all(struct urkv_core *cc);
/*
 * Housekeeping fiber of a core: closes its connections idle for longer
 * than the timeout; on core 0 (where it always runs) also ticks the data
 * file watch.
 */
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
	const struct urkv_cmd *rejected;/* Arity error or NOAUTH: the command refused (stats). */
	uint64_t t0_ns;			/* When it started (stats). */
	unsigned errs0;			/* Error replies of the connection before it (stats). */
	bool failed;			/* Its reply was an error (stats). */
	unsigned gate;			/* Cluster slot gate held (slot + 1), 0: none (cluster.h). */
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
	/*
	 * Writes the data file: changes the data set (Redis's "write" flag) or
	 * checkpoints it (SAVE).  Refused while the data file is not at its
	 * path (watch.c).
	 */
	bool writes;
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
/* Slots of the command hash urkv_cmd_lookup(name) examines (0: a name no command can have). */
unsigned urkv_cmd_probes(const struct resp_arg *name);
/* The table: its size, an entry, the index of an entry. */
unsigned urkv_cmd_count(void);
const struct urkv_cmd *urkv_cmd_at(unsigned i);
unsigned urkv_cmd_index(const struct urkv_cmd *cmd);
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
/* Waits for the requests in flight, then lets go of the cluster slot gates of the batch. */
void urkv_conn_release_gates(struct urkv_conn *c);
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
/* A HELP reply: an array of n simple strings, as Redis's addReplyHelp. */
void urkv_out_help(struct urkv_conn *c, const char *const *lines, size_t n);
/* Writes the value of a GET request (refetching it when it did not fit its buffer). */
void urkv_out_value(struct urkv_conn *c, struct urt_kv_req *req);

/*
 * Per-connection client state (clients.c reads it for CLIENT LIST/KILL,
 * auth.c for AUTH).  Lives in the connection; only its core touches it.
 */
struct urkv_client {
	uint64_t id;			/* CLIENT ID (unique for the server's life). */
	bool authed;			/* AUTH passed (or no password when it connected). */
	bool killed;			/* CLIENT KILL: leave after the current batch. */
	char name[64];			/* CLIENT SETNAME ("" = none). */
	char addr[64];			/* Peer ip:port. */
	char laddr[64];			/* Local ip:port. */
	uint64_t created_ns;		/* Connected at (urt_clock_ns). */
	const char *last_cmd;		/* Name of the last command run ("NULL" before). */
	unsigned errors_out;		/* Error replies written (failed_calls). */
	bool asking;			/* ASKING: the next command may use an IMPORTING slot. */
	bool readonly;			/* READONLY given (no replicas: nothing changes). */
};

struct urkv_client *urkv_conn_client(struct urkv_conn *c);
/* The connections of core cc: first, and the one after c (iteration on cc's own core). */
struct urkv_conn *urkv_conn_first(struct urkv_core *cc);
struct urkv_conn *urkv_conn_next(struct urkv_conn *c);
/*
 * True once c's client is gone (a send failed, or the receive saw a
 * reset) or killed: a long command checks it between steps and stops early.
 */
bool urkv_conn_gone(const struct urkv_conn *c);
/* Ends connection c once its running command is done (CLIENT KILL); on c's core. */
void urkv_conn_kill(struct urkv_conn *c);
/* Socket, idle time and buffered input/output of c, for CLIENT LIST. */
int urkv_conn_fd(struct urkv_conn *c);
uint64_t urkv_conn_idle_ns(struct urkv_conn *c, uint64_t now);
size_t urkv_conn_qbuf(const struct urkv_conn *c);

/* auth.c */
/* Fills the client's addresses and authed state of a new connection. */
void urkv_auth_conn_init(struct urkv_server *srv, struct urkv_client *cl, int fd);
/* True if the peer of fd is a loopback address (127.0.0.1, ::1) or a unix socket: Redis's "local". */
bool urkv_auth_peer_is_local(int fd);
/* Protected mode: the DENIED reply for a connection on fd, or NULL to accept it. */
const char *urkv_auth_denied(struct urkv_server *srv, int fd);
/* NOAUTH: the error for slot s before AUTH, or NULL when it may run. */
const char *urkv_auth_check(struct urkv_conn *c, const struct urkv_slot *s);
/* Constant-time compare of a given password with the configured one. */
bool urkv_auth_password_ok(struct urkv_server *srv, const char *pw, size_t len);
/* Replaces the password (CONFIG SET requirepass, start); -ENOMEM. */
int urkv_auth_set_password(struct urkv_server *srv, const char *pw, size_t len);
void urkv_auth_free(struct urkv_server *srv);

/*
 * memfit.c: 0 when ncores reactors with ro's buffer regions fit in the
 * memory still available (MemAvailable, free huge pages, the memory
 * cgroup's room), else -ENOMEM after a message on stderr naming what to
 * lower.
 */
int urkv_cores_fit_memory(const struct urkv_opts *o, const struct urt_kv_opts *ko,
			  const struct urt_rt_opts *ro, unsigned ncores);
void urkv_auth_run(struct urkv_conn *c, struct urkv_slot *s);
void urkv_hello_run(struct urkv_conn *c, struct urkv_slot *s);

/* fsync.c: appendfsync policies. */
/* True when writes are acknowledged once applied (everysec, no). */
bool urkv_fsync_acks_early(struct urkv_server *srv);
/* everysec: makes req (a NOSYNC write set by the policy) durable when it is this core's first to its shard this second. */
void urkv_fsync_adjust(struct urkv_core *cc, struct urt_kv_req *req);
/* Per-core state of the policy; -ENOMEM. */
int urkv_fsync_core_init(struct urkv_core *cc);
const char *urkv_fsync_name(enum urkv_fsync f);
int urkv_fsync_parse(const char *s, size_t len, enum urkv_fsync *out);

/* stats.c: per-core command counters and latency histograms. */
struct urkv_cmdstat;
int urkv_stats_core_init(struct urkv_core *cc);
void urkv_stats_core_free(struct urkv_core *cc);
/* A command ran for dt_ns; failed: it answered with an error. */
void urkv_stats_call(struct urkv_core *cc, const struct urkv_cmd *cmd, uint64_t dt_ns, bool failed);
/* A command refused before it ran (arity, NOAUTH). */
void urkv_stats_rejected(struct urkv_core *cc, const struct urkv_cmd *cmd);
/* errstats.c: error replies by kind (INFO errorstats, total_error_replies). */
#define URKV_ERRSTAT_MAX 128	/* Kinds tracked per core; later ones count in the total only. */
int urkv_errstats_core_init(struct urkv_core *cc);
void urkv_errstats_core_free(struct urkv_core *cc);
/* An error reply msg (without its '-') on cc's connection; on cc's core. */
void urkv_errstats_count(struct urkv_core *cc, const char *msg);
/* The # Errorstats section into f (NULL: none), summed over the cores; returns the total. */
uint64_t urkv_errstats_info(struct urkv_server *srv, FILE *f);
void urkv_errstats_reset(struct urkv_server *srv);
/* INFO commandstats and latencystats sections, merged over all cores. */
void urkv_stats_info(struct urkv_server *srv, FILE *f, bool commandstats, bool latencystats);
void urkv_stats_reset(struct urkv_server *srv);
void urkv_latency_run(struct urkv_conn *c, struct urkv_slot *s);

/* clients.c */
void urkv_client_run(struct urkv_conn *c, struct urkv_slot *s);
/* config_cmd.c */
void urkv_config_run(struct urkv_conn *c, struct urkv_slot *s);
/* shutdown.c */
void urkv_shutdown_run(struct urkv_conn *c, struct urkv_slot *s);
void urkv_save_run(struct urkv_conn *c, struct urkv_slot *s);

/* new_file.c: a file this start created, removed again if the start fails. */
struct urkv_new_file {
	bool created;			/* The path names the file this start created... */
	dev_t dev;			/* ...on this device... */
	ino_t ino;			/* ...with this inode. */
};
/* After creating path (existed: it named a file before): notes it if it is a new regular file. */
void urkv_new_file_note(struct urkv_new_file *nf, const char *path, bool existed);
/*
 * Unlinks path if it still names the noted file, and says so on stderr
 * ("urkv: removed <what><path>, ...") unless quiet; a failed unlink is
 * always said.  Then nothing is noted.
 */
void urkv_new_file_remove(struct urkv_new_file *nf, const char *path, const char *what, bool quiet);

/* watch.c */
/* Notes the file the store opened and formats the refusals (main thread, after urt_kv_open). */
void urkv_watch_init(struct urkv_server *srv);
/* Starts the thread that compares the path with the open file once a second (main thread). */
int urkv_watch_start(struct urkv_server *srv);
/* Ends and joins it (main thread, before the store closes); nothing when it does not run. */
void urkv_watch_stop(struct urkv_server *srv);
/* The MISCONF refusal of cmd while the path does not name the open file and cmd writes, else NULL. */
const char *urkv_watch_refusal(struct urkv_server *srv, const struct urkv_cmd *cmd);
/* INFO's urkv_data_file_status: ok, deleted, replaced, or unwatched. */
const char *urkv_watch_status(struct urkv_server *srv);

/* info.c: the INFO reply text for section (NULL or "all" or "default": all). */
char *urkv_info(struct urkv_conn *c, const char *section, size_t len);

/* match.c: Redis glob patterns (SCAN MATCH). */
bool urkv_glob_match(const char *pat, size_t plen, const char *s, size_t slen, bool nocase);

#endif /* URKV_SERVER_H */
