/*
 * One client connection of urkv: a fiber that receives requests, runs
 * them as pipelined batches and sends the replies.
 *
 * Design notes.
 *
 * Loop: parse every complete command in the input buffer into a batch
 * (bounded: CONN_SLOTS commands, CONN_ARGS arguments, CONN_REQS store
 * requests, CONN_ARENA bytes of value buffers), run the batch, write the
 * replies, send them, and receive more only when no complete command is
 * left.  A client that pipelines 16 SETs therefore has 16 writes in its
 * shards' queues at once, and they share log batches.
 *
 * Order.  Replies go out in command order.  Reads of a batch run
 * concurrently with each other, writes with each other; before a read
 * that follows a write (or the reverse) the connection waits for what is
 * in flight, so a client always reads its own writes.  Reads are held
 * (deferred) until the connection waits or a write is submitted, then
 * started together by urt_kv_submit_batch, which runs a shard's reads in
 * one read transaction.  SYNC commands
 * (DBSIZE, SCAN, FLUSHALL, INFO, ...) run alone.  Writes of one
 * connection to one shard are applied in order by the store.
 *
 * Memory.  Everything a connection holds is bounded: the input buffer
 * grows to max_request + CONN_IN_MIN and shrinks back to 2 * CONN_IN_MIN
 * once the connection waits for input (in_shrink), received bytes wait in
 * stage (at most CONN_STAGE_MAX plus one receive: the receive pauses), and
 * the two together hold at most in_max (max_request + CONN_IN_MIN) of
 * unparsed input plus the receives in flight when the receive pauses (see
 * Back-pressure, below): a client that pipelines without reading its
 * replies is held there, whatever it sends.  The output buffer is
 * CONN_OUT_CAP (larger bulks are sent straight from their
 * buffer), the argument vector grows to max_args, a value that does not fit
 * its CONN_VALUE_SLICE is fetched again into a buffer of its size (at most
 * proto-max-bulk-len, URT_KV_VALUE_MAX) while its reply is written, and
 * freed.  So a connection holds at most one request of max_request and
 * one value being sent, plus constants.  A
 * command that needs more requests or value buffers than a batch holds
 * runs alone, in chunks.
 *
 * Errors.  A malformed or oversized request gets a RESP error and the
 * connection is closed; nothing else is affected.  A failed send, an idle
 * timeout or the server stopping also ends the connection.
 *
 * A gone client.  Once a send fails or the receive sees a reset
 * (ECONNRESET, EPIPE), send_failed is set and stays set: output is
 * dropped, batch_run starts no further command of the batch, a read too
 * big for a batch stops between its chunks (run_alone) and KEYS between
 * its scan steps (urkv_keys_reply).  A command already started that
 * writes runs to its end, so what it applied stays applied; the commands
 * after it are not run, as in Redis, which frees a client on a write
 * error and never runs the rest of its query buffer.  CLIENT KILL
 * (killed) stops the batch the same way, also for a client that kills
 * itself: its replies so far go out, nothing after the kill runs (Redis:
 * close after reply).  Without this, a
 * client that pipelined KEYS and reset kept its slot busy until every
 * KEYS had run, output dropped.
 *
 * Closing.  When the server ends a connection the client is still
 * sending on (a protocol error, QUIT followed by more commands), a plain
 * close() with unread input makes the kernel answer with a reset, and the
 * client may lose the error reply it has not read yet.  So the close is
 * lingering, as in nginx: send the replies, shut down the write side (the
 * client reads the reply, then end of stream), discard input until the
 * client closes too or CONN_LINGER_NS pass, and only then close().
 */
#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#include "base/assert.h"
#include "base/clock.h"
#include "base/mem.h"
#include "cluster.h"
#include "cmd_ext.h"
#include "urkv.h"
#include "urt/urt.h"

#define CONN_IN_MIN (16u << 10)		/* Input buffer when idle. */
#define CONN_OUT_CAP (64u << 10)	/* Output buffer; flushed when full. */
#define CONN_STAGE_MAX (1u << 20)	/* Received bytes staged before the receive pauses. */
#define CONN_SLOTS 128u			/* Commands per batch. */
#define CONN_ARGS 2048u			/* Arguments per batch. */
#define CONN_REQS 256u			/* Store requests per batch. */
#define CONN_ARENA (64u << 10)		/* Value buffers per batch. */
#define CONN_VALUE_SLICE 2048u		/* Value buffer of one GET; larger values are refetched. */
#define CONN_ARGV_MIN 64u		/* Parser argument vector to start with. */
#define CONN_CURSORS 8u			/* SCAN cursors kept per connection. */
#define CONN_BIG_BULK (16u << 10)	/* Bulks above this are sent from their own buffer. */
#define CONN_REFETCH_MAX 8u		/* Attempts to fetch a value that keeps growing. */
#define CONN_LINGER_NS 2000000000ull	/* Longest lingering close. */

struct conn_cursor {
	uint64_t id;			/* Cursor number given to the client; 0 = free. */
	uint64_t used;			/* Last use (for replacement). */
	struct urt_kv_cursor cur;	/* Position. */
};

struct urkv_conn {
	struct urkv_core *cc;		/* Core. */
	struct urkv_conn *next, *prev;	/* The core's list. */
	int fd;				/* Socket. */
	struct urt_io rx;		/* The multishot receive. */
	bool rx_active;			/* rx is armed: its last callback has not run. */
	bool rx_paused;			/* rx was cancelled (or not re-armed) because input_full. */
	bool eof;			/* No more input: peer gone, error, timeout or stop. */
	bool waiting;			/* The fiber waits for input (idle). */
	bool timed_out;			/* Closed by the idle timeout. */
	uint64_t last_active_ns;	/* Last input. */
	struct urt_waitq rx_wq;		/* The fiber, waiting for input or rx's end. */
	char *stage;			/* Bytes received, not yet moved to in. */
	size_t stage_len, stage_cap;	/* Held and allocated bytes of stage. */
	size_t in_max;			/* Unparsed plus staged input that pauses rx: max_request + CONN_IN_MIN. */
	bool close_after;		/* QUIT: close once the replies are out. */
	bool lingering;			/* Write side shut: input is discarded. */
	bool linger_over;		/* The linger timer fired (or was cancelled). */
	bool send_failed;		/* The peer is gone: drop output, start nothing (urkv_conn_gone, as killed). */
	struct urt_io *sending;		/* The send in flight (cancelled at stop), or NULL. */
	int8_t nosync;			/* NOSYNC ON (1) / OFF (0), or -1: the appendfsync policy. */
	struct urkv_client cl;		/* Identity, AUTH state, name (CLIENT, auth.c). */
	/* Input (only the fiber touches it, between batches). */
	char *in;			/* Received bytes. */
	size_t in_cap, in_len, in_off;	/* Size, bytes held, first unparsed byte. */
	struct resp_parser parser;	/* Parser state. */
	struct resp_arg *pargv;		/* Parser's argument vector. */
	size_t pargv_cap;		/* Entries of pargv. */
	bool held;			/* pargv holds a parsed command for the next batch. */
	size_t held_argc;		/* Its arguments. */
	/* Batch. */
	struct urkv_slot slots[CONN_SLOTS];
	unsigned nslots;
	struct resp_arg args[CONN_ARGS];
	unsigned nargs;
	struct urt_kv_req reqs[CONN_REQS];
	unsigned nreqs;
	char *arena;			/* CONN_ARENA bytes of value buffers. */
	size_t arena_used;		/* Handed out by urkv_conn_value_buf. */
	size_t arena_res;		/* Reserved by the commands of the batch. */
	unsigned pending;		/* Requests submitted and not done. */
	struct urt_kv_req *deferred[CONN_REQS];	/* Reads held for one urt_kv_submit_batch. */
	unsigned ndeferred;		/* Entries of deferred. */
	struct urt_waitq wq;		/* The fiber, waiting for them. */
	enum urkv_class cur_cls;	/* Class of what is in flight. */
	unsigned fmt_next;		/* First slot whose reply is not written. */
	uint64_t now_ns;		/* Batch clock (stats): read at its start, after each group of replies and each command run alone. */
	/* Output. */
	char *out;			/* CONN_OUT_CAP bytes. */
	size_t out_len;
	/* SCAN. */
	struct conn_cursor *cursors;	/* CONN_CURSORS entries, allocated on first SCAN. */
	uint64_t cursor_clock;		/* Use counter. */
	uint64_t cursor_next;		/* Next cursor number. */
};

struct urkv_server *urkv_conn_server(struct urkv_conn *c)
{
	return c->cc->srv;
}

struct urkv_core *urkv_conn_core(struct urkv_conn *c)
{
	return c->cc;
}

unsigned urkv_conn_write_flags(struct urkv_conn *c)
{
	if (c->nosync >= 0)
		return c->nosync ? URT_KV_NOSYNC : 0;
	return urkv_fsync_acks_early(c->cc->srv) ? URT_KV_NOSYNC : 0;
}

void urkv_conn_set_nosync(struct urkv_conn *c, bool on)
{
	c->nosync = on;
}

struct urkv_client *urkv_conn_client(struct urkv_conn *c)
{
	return &c->cl;
}

struct urkv_conn *urkv_conn_first(struct urkv_core *cc)
{
	return cc->conns;
}

struct urkv_conn *urkv_conn_next(struct urkv_conn *c)
{
	return c->next;
}

int urkv_conn_fd(struct urkv_conn *c)
{
	return c->fd;
}

uint64_t urkv_conn_idle_ns(struct urkv_conn *c, uint64_t now)
{
	return now > c->last_active_ns ? now - c->last_active_ns : 0;
}

size_t urkv_conn_qbuf(const struct urkv_conn *c)
{
	return c->in_len - c->in_off + c->stage_len;
}

void urkv_conn_kill(struct urkv_conn *c)
{
	/* An idle one leaves now, a busy one once its running command is done (urkv_conn_gone). */
	c->cl.killed = true;
	c->eof = true;
	if (c->sending)
		urt_io_cancel(c->sending);	/* A client that does not read its replies. */
	if (c->rx_active)
		urt_io_cancel(&c->rx);
	urt_waitq_wake_one(&c->rx_wq);
}

bool urkv_conn_gone(const struct urkv_conn *c)
{
	return c->send_failed || c->cl.killed;
}

void urkv_conn_close_after_reply(struct urkv_conn *c)
{
	c->close_after = true;
}

/* Output. */

static void send_all(struct urkv_conn *c, const void *buf, size_t len)
{
	struct urt_io io;
	int ret;

	if (c->send_failed || len == 0)
		return;
	urt_io_prep_send(&io, c->fd, buf, len);
	/*
	 * With an idle timeout, a client that stops reading cannot hold the
	 * fiber longer than that.  Without one (the default, as in Redis) no
	 * deadline: a linked timeout on every send costs ~3% of a GET.
	 */
	io.timeout_ns = atomic_load_explicit(&c->cc->srv->live.timeout_ns, memory_order_relaxed);
	c->sending = &io;
	ret = urt_io_wait(&io);
	c->sending = NULL;
	if (ret < 0 || (size_t)ret != len)
		c->send_failed = true;
	else
		atomic_fetch_add_explicit(&c->cc->st.bytes_out, len, memory_order_relaxed);
}

static void flush(struct urkv_conn *c)
{
	send_all(c, c->out, c->out_len);
	c->out_len = 0;
}

/* Room for len more bytes in out (len <= CONN_OUT_CAP). */
static char *out_room(struct urkv_conn *c, size_t len)
{
	if (c->out_len + len > CONN_OUT_CAP)
		flush(c);
	return c->out + c->out_len;
}

static void out_put(struct urkv_conn *c, const void *p, size_t len)
{
	while (len) {
		size_t n;

		out_room(c, 1);
		n = CONN_OUT_CAP - c->out_len < len ? CONN_OUT_CAP - c->out_len : len;
		memcpy(c->out + c->out_len, p, n);
		c->out_len += n;
		p = (const char *)p + n;
		len -= n;
	}
}

void urkv_out_simple(struct urkv_conn *c, const char *s)
{
	out_put(c, "+", 1);
	out_put(c, s, strlen(s));
	out_put(c, "\r\n", 2);
}

void urkv_out_error(struct urkv_conn *c, const char *msg)
{
	size_t len = strlen(msg);

	c->cl.errors_out++;	/* failed_calls of INFO commandstats (stats.c). */
	urkv_errstats_count(c->cc, msg);	/* INFO errorstats (errstats.c). */
	out_put(c, "-", 1);
	for (size_t i = 0; i < len; i++)
		out_put(c, msg[i] == '\r' || msg[i] == '\n' ? " " : &msg[i], 1);
	out_put(c, "\r\n", 2);
}

void urkv_out_errorf(struct urkv_conn *c, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	urkv_out_error(c, buf);
}

/*
 * Appends "<type><digits>\r\n" without stdio: replies of GET and MGET are
 * mostly such lines, and snprintf's format parsing cost as much as the
 * tree search (docs/engine.md).
 */
static void out_number_line(struct urkv_conn *c, char type, bool negative,
			    unsigned long long magnitude)
{
	char buf[24];	/* Type, sign and up to 20 digits; CRLF is added when copying. */
	char *p = buf + sizeof(buf);

	do {
		*--p = (char)('0' + magnitude % 10);
		magnitude /= 10;
	} while (magnitude != 0);
	if (negative)
		*--p = '-';
	*--p = type;
	if (c->out_len + (size_t)(buf + sizeof(buf) - p) + 2 <= CONN_OUT_CAP) {
		/* The common case: one copy into the output buffer. */
		char *dst = c->out + c->out_len;
		size_t n = (size_t)(buf + sizeof(buf) - p);

		memcpy(dst, p, n);
		memcpy(dst + n, "\r\n", 2);
		c->out_len += n + 2;
		return;
	}
	out_put(c, p, (size_t)(buf + sizeof(buf) - p));
	out_put(c, "\r\n", 2);
}

void urkv_out_int(struct urkv_conn *c, long long v)
{
	/* Negate in unsigned arithmetic, where LLONG_MIN has a magnitude. */
	out_number_line(c, ':', v < 0, v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v);
}

void urkv_out_array(struct urkv_conn *c, size_t n)
{
	out_number_line(c, '*', false, n);
}

void urkv_out_help(struct urkv_conn *c, const char *const *lines, size_t n)
{
	urkv_out_array(c, n);
	for (size_t i = 0; i < n; i++)
		urkv_out_simple(c, lines[i]);
}

void urkv_out_null(struct urkv_conn *c)
{
	out_put(c, "$-1\r\n", 5);
}

void urkv_out_bulk(struct urkv_conn *c, const void *data, size_t len)
{
	out_number_line(c, '$', false, len);
	if (len > CONN_BIG_BULK) {
		/* Straight from its buffer: the output buffer stays small. */
		flush(c);
		send_all(c, data, len);
	} else if (c->out_len + len + 2 <= CONN_OUT_CAP) {
		memcpy(c->out + c->out_len, data, len);
		memcpy(c->out + c->out_len + len, "\r\n", 2);
		c->out_len += len + 2;
		return;
	} else {
		out_put(c, data, len);
	}
	out_put(c, "\r\n", 2);
}

void urkv_out_value(struct urkv_conn *c, struct urt_kv_req *req)
{
	struct urt_kv *kv = c->cc->srv->kv;
	size_t vlen = req->vlen_out;
	int ret = req->res;

	if (ret == URT_E_NOTFOUND) {
		urkv_out_null(c);
		return;
	}
	if (ret == 0 && vlen <= req->buf_len) {
		urkv_out_bulk(c, req->buf, vlen);
		return;
	}
	/* Larger than its slice: fetch it again into a buffer of its size. */
	for (unsigned i = 0; ret == 0 && i < CONN_REFETCH_MAX; i++) {
		size_t cap = vlen;
		char *buf = malloc(cap ? cap : 1);

		if (!buf) {
			ret = -ENOMEM;
			break;
		}
		ret = urt_kv_get(kv, req->key, req->klen, buf, cap, &vlen);
		if (ret == 0 && vlen <= cap) {
			urkv_out_bulk(c, buf, vlen);
			free(buf);
			return;
		}
		free(buf);
	}
	if (ret == URT_E_NOTFOUND) {
		urkv_out_null(c);
	} else {
		struct resp_arg key = { .ptr = req->key, .len = req->klen };

		urkv_store_error_log(c, ret, &key);
		urkv_out_errorf(c, "ERR store: %s", ret ? urt_strerror(ret) : "value keeps changing");
	}
}

/* Requests. */

struct urt_kv_req *urkv_conn_req(struct urkv_conn *c, struct urkv_slot *s, unsigned i)
{
	return &c->reqs[s->req0 + i];
}

static void req_done(struct urt_kv_req *req)
{
	struct urkv_conn *c = req->arg;

	if (--c->pending == 0)
		urt_waitq_wake_one(&c->wq);
}

/* Starts the reads held back, together (the store runs a shard's reads in one transaction). */
static void submit_deferred(struct urkv_conn *c)
{
	size_t failed;

	if (c->ndeferred == 0)
		return;
	failed = urt_kv_submit_batch(c->cc->srv->kv, c->deferred, c->ndeferred);
	c->ndeferred = 0;
	/* Those that could not start have their error in res and no done call. */
	URT_ASSERT(failed <= c->pending);
	c->pending -= (unsigned)failed;
}

/*
 * Reads are held until the connection waits (or a write comes), then
 * started in one urt_kv_submit_batch, so the reads of a pipeline share a
 * read transaction per shard; writes start at once.  Order is kept: a
 * write first starts every read held before it.
 */
void urkv_conn_submit(struct urkv_conn *c, struct urt_kv_req *req)
{
	int ret;

	req->done = req_done;
	req->arg = c;
	c->pending++;
	if (req->op == URT_KV_OP_GET || req->op == URT_KV_OP_EXISTS) {
		if (c->ndeferred == CONN_REQS)
			submit_deferred(c);
		c->deferred[c->ndeferred++] = req;
		return;
	}
	submit_deferred(c);
	if (c->nosync < 0 && (req->flags & URT_KV_NOSYNC))
		urkv_fsync_adjust(c->cc, req);	/* appendfsync everysec. */
	ret = urt_kv_submit(c->cc->srv->kv, req);
	if (ret) {
		req->res = ret;
		c->pending--;
	}
}

void urkv_conn_value_buf(struct urkv_conn *c, struct urt_kv_req *req)
{
	/* The parser reserved the room (batch_add). */
	req->buf = c->arena + c->arena_used;
	req->buf_len = CONN_VALUE_SLICE;
	c->arena_used += CONN_VALUE_SLICE;
}

void urkv_conn_wait(struct urkv_conn *c)
{
	submit_deferred(c);
	while (c->pending)
		urt_waitq_wait(&c->wq);
}

/* Lets go of slot s's cluster gate (cluster.h), if it holds one. */
static void gate_exit(struct urkv_conn *c, struct urkv_slot *s)
{
	if (s->gate) {
		urkv_cluster_gate_exit(c->cc->srv, s->gate);
		s->gate = 0;
	}
}

void urkv_conn_release_gates(struct urkv_conn *c)
{
	urkv_conn_wait(c);
	for (unsigned i = 0; i < c->nslots; i++)
		gate_exit(c, &c->slots[i]);
}

/* SCAN cursors. */

struct urt_kv_cursor *urkv_conn_cursor(struct urkv_conn *c, uint64_t id, bool create,
				       uint64_t *new_id)
{
	struct conn_cursor *victim;

	if (!c->cursors) {
		c->cursors = mem_core_alloc(CONN_CURSORS * sizeof(*c->cursors));
		if (!c->cursors)
			return NULL;
	}
	c->cursor_clock++;
	if (!create) {
		for (unsigned i = 0; i < CONN_CURSORS; i++)
			if (c->cursors[i].id == id && id) {
				c->cursors[i].used = c->cursor_clock;
				return &c->cursors[i].cur;
			}
		return NULL;
	}
	victim = &c->cursors[0];
	for (unsigned i = 0; i < CONN_CURSORS; i++) {
		if (c->cursors[i].id == 0) {
			victim = &c->cursors[i];
			break;
		}
		if (c->cursors[i].used < victim->used)
			victim = &c->cursors[i];
	}
	/* Numbers never repeat on a connection, so a stale cursor is never confused. */
	victim->id = ++c->cursor_next;
	victim->used = c->cursor_clock;
	*new_id = victim->id;
	return &victim->cur;
}

void urkv_conn_cursor_drop(struct urkv_conn *c, uint64_t id)
{
	for (unsigned i = 0; c->cursors && i < CONN_CURSORS; i++)
		if (c->cursors[i].id == id)
			c->cursors[i].id = 0;
}

/* Batches. */

/* Store requests and value bytes a command needs. */
static void needs(const struct urkv_slot *s, unsigned *nreq, size_t *arena)
{
	*nreq = 0;
	*arena = 0;
	if (urkv_slot_class(s) == URKV_SYNC || urkv_slot_class(s) == URKV_NONE)
		return;
	*nreq = s->cmd->key_stride ? (unsigned)((s->argc - 1) / s->cmd->key_stride) : 1;
	if (s->cmd->values)
		*arena = (size_t)*nreq * CONN_VALUE_SLICE;
}

enum add_result { ADD_OK, ADD_FULL, ADD_ALONE };

/*
 * Adds the command in pargv to the batch.  ADD_FULL: it does not fit, run
 * the batch first (the command stays held).  ADD_ALONE: it was added and
 * must run alone (it is too big for a batch and runs in chunks).
 */
static enum add_result batch_add(struct urkv_conn *c, size_t argc)
{
	struct urkv_slot *s = &c->slots[c->nslots];
	const char *err;
	unsigned nreq;
	size_t arena;
	bool alone = false;

	memset(s, 0, offsetof(struct urkv_slot, errbuf));
	s->argc = argc;
	s->cmd = urkv_cmd_lookup(&c->pargv[0]);
	s->argv = c->pargv;
	err = urkv_cmd_check(s->cmd, c->pargv, argc, s->errbuf, sizeof(s->errbuf));
	if (err) {
		s->rejected = s->cmd;
		s->cmd = NULL;
		s->err = err;
	}
	needs(s, &nreq, &arena);
	if (argc > CONN_ARGS || nreq > CONN_REQS || arena > CONN_ARENA) {
		/* Too big for any batch: alone, straight from the parser's vector. */
		if (c->nslots)
			return ADD_FULL;
		alone = true;
	} else if (c->nargs + argc > CONN_ARGS || c->nreqs + nreq > CONN_REQS ||
		   c->arena_res + arena > CONN_ARENA) {
		return ADD_FULL;
	} else {
		memcpy(&c->args[c->nargs], c->pargv, argc * sizeof(*c->pargv));
		s->argv = &c->args[c->nargs];
		c->nargs += (unsigned)argc;
		s->req0 = c->nreqs;
		s->nreq = nreq;
		c->nreqs += nreq;
		c->arena_res += arena;
	}
	c->nslots++;
	return alone ? ADD_ALONE : ADD_OK;
}

/* Writes the replies of slots [fmt_next, upto). */
static void format_upto(struct urkv_conn *c, unsigned upto)
{
	unsigned first = c->fmt_next;
	bool timed = false;

	for (; c->fmt_next < upto; c->fmt_next++) {
		struct urkv_slot *s = &c->slots[c->fmt_next];

		if (!s->cmd) {
			urkv_out_error(c, s->err);
			if (s->rejected)
				urkv_stats_rejected(c->cc, s->rejected);
		} else if (s->cmd->reply) {
			s->cmd->reply(c, s);
			s->failed = c->cl.errors_out != s->errs0;
			timed = true;
		}
		gate_exit(c, s);
	}
	if (!timed)
		return;
	/* One clock read for the group: its replies were written together. */
	c->now_ns = urt_clock_ns();
	for (unsigned i = first; i < upto; i++) {
		struct urkv_slot *s = &c->slots[i];

		if (s->cmd && s->cmd->reply)
			urkv_stats_call(c->cc, s->cmd, c->now_ns - s->t0_ns, s->failed);
	}
}

/* Stats of a command that ran whole (SYNC, or alone): one clock read. */
static void ran_whole(struct urkv_conn *c, struct urkv_slot *s)
{
	c->now_ns = urt_clock_ns();
	urkv_stats_call(c->cc, s->cmd, c->now_ns - s->t0_ns, c->cl.errors_out != s->errs0);
}

/* Runs a multi-key command too big for a batch: its keys in chunks that fit one. */
static void run_alone(struct urkv_conn *c, struct urkv_slot *s)
{
	const struct urkv_cmd *cmd = s->cmd;
	size_t stride = cmd->key_stride;
	size_t nkeys, per = CONN_REQS;

	c->nreqs = 0;
	c->arena_used = 0;
	if (stride == 0) {
		/* One request, but too many arguments for a batch (a syntax error, surely). */
		s->req0 = 0;
		s->nreq = 1;
		cmd->prepare(c, s);
		urkv_conn_wait(c);
		cmd->reply(c, s);
		return;
	}
	nkeys = (s->argc - 1) / stride;

	if (cmd->values && per > CONN_ARENA / CONN_VALUE_SLICE)
		per = CONN_ARENA / CONN_VALUE_SLICE;
	if (cmd->values)
		urkv_out_array(c, nkeys);
	for (size_t k = 0; k < nkeys; k += per) {
		struct urkv_slot sub = *s;
		size_t n = nkeys - k < per ? nkeys - k : per;

		/* A gone client's read stops here; a write runs whole (it may have applied a chunk). */
		if (urkv_conn_gone(c) && !cmd->writes)
			break;

		/* sub.argv[0] is not the name: prepare and tally look at argv[1..] only. */
		sub.argv = s->argv + k * stride;
		sub.argc = 1 + n * stride;
		sub.req0 = 0;
		sub.nreq = (unsigned)n;
		sub.num = 0;
		sub.err = NULL;
		c->nreqs = 0;
		c->arena_used = 0;
		cmd->prepare(c, &sub);
		urkv_conn_wait(c);
		if (cmd->values) {
			for (unsigned i = 0; i < sub.nreq; i++)
				urkv_out_value(c, urkv_conn_req(c, &sub, i));
			continue;
		}
		cmd->tally(c, &sub);
		s->num += sub.num;
		if (sub.err && !s->err) {
			snprintf(s->errbuf, sizeof(s->errbuf), "%s", sub.err);
			s->err = s->errbuf;
		}
	}
	if (cmd->values)
		return;
	if (s->err)
		urkv_out_error(c, s->err);
	else if (cmd->ok_reply)
		urkv_out_simple(c, "OK");
	else
		urkv_out_int(c, s->num);
}

static void batch_run(struct urkv_conn *c, bool alone)
{
	unsigned end = c->nslots;

	c->fmt_next = 0;
	c->cur_cls = URKV_NONE;
	c->arena_used = 0;
	c->now_ns = urt_clock_ns();
	for (unsigned i = 0; i < end; i++) {
		struct urkv_slot *s = &c->slots[i];
		enum urkv_class cls = urkv_slot_class(s);

		if (urkv_conn_gone(c)) {
			/* The client is gone or killed: what has started finishes, nothing more starts. */
			end = i;
			break;
		}
		atomic_fetch_add_explicit(&c->cc->st.commands, 1, memory_order_relaxed);
		if (cls != URKV_NONE && (s->err = urkv_auth_check(c, s)) != NULL) {
			/* Before AUTH: refused in order, as Redis does (auth.c). */
			s->rejected = s->cmd;
			s->cmd = NULL;
			cls = URKV_NONE;
		}
		if (cls != URKV_NONE && c->cc->srv->cluster &&
		    (s->err = urkv_cluster_route(c, s)) != NULL) {
			/* Another node's slot, or a slot on the move: -MOVED, -ASK ... (cluster_cmd.c). */
			s->rejected = s->cmd;
			s->cmd = NULL;
			cls = URKV_NONE;
		}
		if (cls != URKV_NONE && (s->err = urkv_watch_refusal(c->cc->srv, s->cmd)) != NULL) {
			/* The data file left its path: -MISCONF for writes (watch.c). */
			gate_exit(c, s);
			s->rejected = s->cmd;
			s->cmd = NULL;
			cls = URKV_NONE;
		}
		if (cls == URKV_NONE)
			continue;
		c->cl.last_cmd = s->cmd->name;
		if (cls == URKV_SYNC || alone || (c->pending && cls != c->cur_cls)) {
			urkv_conn_wait(c);
			format_upto(c, i);
		}
		c->cur_cls = cls;
		s->errs0 = c->cl.errors_out;
		s->t0_ns = c->now_ns;	/* The batch clock: no clock read per command. */
		if (cls == URKV_SYNC) {
			s->cmd->run(c, s);
			gate_exit(c, s);
			ran_whole(c, s);
			c->fmt_next = i + 1;
			if (c->close_after)
				end = i + 1;	/* QUIT: nothing after it runs. */
		} else if (alone) {
			run_alone(c, s);
			gate_exit(c, s);
			ran_whole(c, s);
			c->fmt_next = i + 1;
		} else {
			s->cmd->prepare(c, s);
		}
	}
	urkv_conn_wait(c);
	format_upto(c, end);
	c->nslots = 0;
	c->nargs = 0;
	c->nreqs = 0;
	c->arena_used = 0;
	c->arena_res = 0;
}

enum parse_result { PARSE_MORE, PARSE_RUN, PARSE_ERROR };

/* Fills the batch from the input buffer. */
static enum parse_result batch_fill(struct urkv_conn *c, int *err, bool *alone)
{
	struct urkv_server *srv = c->cc->srv;

	*alone = false;
	if (c->held) {
		enum add_result r;

		c->held = false;
		r = batch_add(c, c->held_argc);
		if (r == ADD_ALONE) {
			*alone = true;
			return PARSE_RUN;
		}
	}
	while (c->nslots < CONN_SLOTS) {
		struct resp_cmd cmd = { .argv = c->pargv, .argv_max = c->pargv_cap };
		ssize_t n = resp_parse(&c->parser, c->in + c->in_off, c->in_len - c->in_off, &cmd);
		enum add_result r;

		if (n == RESP_E_TOO_MANY_ARGS && c->pargv_cap < srv->o.max_args) {
			/* A long command: a larger vector, and parse it again from its start. */
			size_t cap = c->pargv_cap * 4 < srv->o.max_args ? c->pargv_cap * 4
									 : srv->o.max_args;
			struct resp_arg *v;

			if (c->nslots)
				return PARSE_RUN;	/* Run the batch; the error sticks until then. */
			v = mem_core_realloc(c->pargv, cap * sizeof(*v));
			if (!v) {
				*err = -ENOMEM;
				return PARSE_ERROR;
			}
			c->pargv = v;
			c->pargv_cap = cap;
			resp_parser_reset(&c->parser);
			continue;
		}
		if (n == 0)
			return c->nslots ? PARSE_RUN : PARSE_MORE;
		if (n < 0) {
			*err = (int)n;
			return PARSE_ERROR;
		}
		c->in_off += (size_t)n;
		if (cmd.argc == 0)
			continue;
		r = batch_add(c, cmd.argc);
		if (r == ADD_FULL) {
			c->held = true;
			c->held_argc = cmd.argc;
			return PARSE_RUN;
		}
		if (r == ADD_ALONE) {
			*alone = true;
			return PARSE_RUN;
		}
	}
	return PARSE_RUN;
}

/*
 * Receiving.  One multishot receive per connection into the core's
 * provided buffers.  Its callback (reactor context) copies the bytes to
 * stage and recycles the buffer at once, so one slow connection never
 * holds buffers the others need; the fiber moves stage into in between
 * batches, when no argument points into in: when in holds nothing left
 * to parse (a pipeline ended on a command boundary) the two buffers swap,
 * so no byte is copied again; otherwise stage is appended to what is left.
 *
 * Back-pressure.  States of rx: armed (rx_active), pausing (rx_active and
 * rx_paused: cancelled, its last callback to come), paused (rx_paused
 * only), ended (eof).  Transitions: conn_rx pauses it when input_full;
 * its last callback re-arms it at once unless input is still full;
 * rx_resume (the fiber: in_take, after each batch, before waiting for
 * input) re-arms a paused one once input is no longer full.  Input is
 * full when stage holds more than CONN_STAGE_MAX (bytes wait there only
 * while a batch runs) or when unparsed plus staged bytes pass in_max:
 * without that second bound a client pipelining without reading its
 * replies had everything staged moved into in between batches, whatever
 * in already held, and grew it without limit.  It cannot deadlock: the
 * parser refuses a request over max_request, so with more than in_max
 * bytes unparsed the first command is complete (or refused), the fiber
 * runs it and never waits for input while input is full.
 */
static bool input_full(const struct urkv_conn *c)
{
	return c->stage_len > CONN_STAGE_MAX || urkv_conn_qbuf(c) > c->in_max;
}

static void conn_rx(struct urt_io *io, int res, void *arg);

static void rx_arm(struct urkv_conn *c)
{
	urt_io_prep_recv_multishot(&c->rx, c->fd, c->cc->pb);
	if (urt_io_submit(&c->rx, conn_rx, c) == 0) {
		c->rx_active = true;
		c->rx_paused = false;
	} else {
		c->eof = true;
	}
}

static void stage_append(struct urkv_conn *c, const void *p, size_t n)
{
	if (c->stage_len + n > c->stage_cap) {
		size_t cap = c->stage_cap ? c->stage_cap : CONN_IN_MIN;
		char *q;

		while (cap < c->stage_len + n)
			cap *= 2;
		q = mem_core_realloc(c->stage, cap);
		if (!q) {
			c->eof = true;
			return;
		}
		c->stage = q;
		c->stage_cap = cap;
	}
	memcpy(c->stage + c->stage_len, p, n);
	c->stage_len += n;
}

static void conn_rx(struct urt_io *io, int res, void *arg)
{
	struct urkv_conn *c = arg;

	if (res > 0) {
		struct urt_pbuf *pb = c->cc->pb;

		if (!c->eof && !c->lingering)
			stage_append(c, urt_pbuf_addr(pb, io->buf_id), (size_t)res);
		urt_pbuf_recycle(pb, io->buf_id);
		c->last_active_ns = urt_clock_ns();
		atomic_fetch_add_explicit(&c->cc->st.bytes_in, (uint64_t)res, memory_order_relaxed);
		if (!c->lingering && input_full(c) && !c->rx_paused && (io->flags & URT_IO_MORE)) {
			c->rx_paused = true;
			urt_io_cancel(&c->rx);
		}
	}
	if (res == -ECONNRESET || res == -EPIPE)
		c->send_failed = true;	/* Reset: nothing sent can arrive; stop the batch. */
	if (!(io->flags & URT_IO_MORE)) {
		/*
		 * The receive ended.  Ended with data (the kernel may end a
		 * multishot so), out of the core's buffers for a moment, or
		 * cancelled for back-pressure: go on, now or once the fiber
		 * has made room (rx_resume).  Anything else (end of stream,
		 * an error, a cancel for a timeout, a kill or the stop): eof.
		 */
		bool goes_on = res > 0 || res == -ENOBUFS || (res == -ECANCELED && c->rx_paused);

		c->rx_active = false;
		if (c->eof || !goes_on)
			c->eof = true;
		else if (c->lingering || c->waiting || !input_full(c))
			rx_arm(c);	/* Room, a fiber waiting for input, or a lingering close. */
		else
			c->rx_paused = true;	/* Full: rx_resume re-arms. */
	}
	urt_waitq_wake_one(&c->rx_wq);
}

/* Re-arms a paused receive once input is no longer full (the fiber). */
static void rx_resume(struct urkv_conn *c)
{
	if (c->rx_paused && !c->rx_active && !c->eof && !input_full(c))
		rx_arm(c);
}

/* Moves the staged bytes into in (between batches only); false: out of memory. */
static bool in_take(struct urkv_conn *c)
{
	size_t used = c->in_len - c->in_off;
	size_t need = used + c->stage_len;

	/*
	 * Everything in in was parsed: hand stage over as in, and in's buffer
	 * to stage, instead of copying the bytes (each byte of a pipeline is
	 * then copied once in user space on its way in, not twice).
	 */
	if (used == 0 && c->stage_len > 0) {
		char *b = c->in;
		size_t cap = c->in_cap;

		c->in = c->stage;
		c->in_cap = c->stage_cap;
		c->in_len = c->stage_len;
		c->in_off = 0;
		c->stage = b;
		c->stage_cap = cap;
		c->stage_len = 0;
		rx_resume(c);
		return true;
	}
	/* Drop what was parsed; the parser only keeps offsets into the command. */
	if (c->in_off) {
		memmove(c->in, c->in + c->in_off, used);
		c->in_len = used;
		c->in_off = 0;
	}
	if (need > c->in_cap || (c->in_cap > 4 * (need + CONN_IN_MIN) && c->in_cap > 2 * CONN_IN_MIN)) {
		/* Grow for a large request, or give the memory back after one. */
		size_t cap = need + CONN_IN_MIN;
		char *p = mem_core_realloc(c->in, cap);

		if (!p)
			return false;
		c->in = p;
		c->in_cap = cap;
	}
	memcpy(c->in + c->in_len, c->stage, c->stage_len);
	c->in_len += c->stage_len;
	c->stage_len = 0;
	if (c->stage_cap > 4 * CONN_IN_MIN) {
		mem_core_free(c->stage);
		c->stage = NULL;
		c->stage_cap = 0;
	}
	rx_resume(c);
	return true;
}

/* Gives back a large input buffer once its request is done (between batches, nothing held). */
static void in_shrink(struct urkv_conn *c)
{
	size_t used = c->in_len - c->in_off;
	char *p;

	if (c->held || c->in_cap <= 2 * CONN_IN_MIN || used > CONN_IN_MIN)
		return;
	memmove(c->in, c->in + c->in_off, used);
	c->in_len = used;
	c->in_off = 0;
	p = mem_core_realloc(c->in, 2 * CONN_IN_MIN);
	if (p) {
		c->in = p;
		c->in_cap = 2 * CONN_IN_MIN;
	}
}

static void linger_fired(struct urt_io *io, int res, void *arg)
{
	struct urkv_conn *c = arg;

	(void)io;
	(void)res;
	c->linger_over = true;
	urt_waitq_wake_one(&c->rx_wq);
}

/*
 * Lingering close (see the notes at the top): the replies are out; shut
 * the write side and read to the client's end of stream, for at most
 * CONN_LINGER_NS, so that close() finds no unread input.  Nothing to do
 * when the client already ended its stream (or timed out), cannot take
 * output, or the server is stopping.
 */
static void conn_linger(struct urkv_conn *c)
{
	struct urkv_server *srv = c->cc->srv;
	struct urt_io timer;

	if (c->eof || c->send_failed || atomic_load(&srv->stopping))
		return;
	if (shutdown(c->fd, SHUT_WR) != 0)
		return;
	c->lingering = true;
	c->stage_len = 0;
	if (!c->rx_active)
		rx_arm(c);
	if (c->eof)
		return;
	urt_io_prep_timeout(&timer, CONN_LINGER_NS);
	if (urt_io_submit(&timer, linger_fired, c) != 0)
		return;
	c->waiting = true;	/* The server's stop ends the linger. */
	while (!c->eof && !c->linger_over)
		urt_waitq_wait(&c->rx_wq);
	c->waiting = false;
	if (!c->linger_over)
		urt_io_cancel(&timer);
	while (!c->linger_over)
		urt_waitq_wait(&c->rx_wq);	/* timer lives on this stack. */
}

static void conn_free(struct urkv_conn *c)
{
	struct urkv_core *cc = c->cc;

	/* rx lives in c: wait for its last callback. */
	c->eof = true;
	if (c->rx_active)
		urt_io_cancel(&c->rx);
	while (c->rx_active)
		urt_waitq_wait(&c->rx_wq);
	if (c->fd >= 0)
		close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		cc->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	cc->nconns--;
	atomic_fetch_sub(&cc->srv->clients, 1);
	if (cc->nconns == 0)
		urt_waitq_wake_all(&cc->drained_wq);
	mem_core_free(c->pargv);
	mem_core_free(c->in);
	mem_core_free(c->stage);
	mem_core_free(c->out);
	mem_core_free(c->arena);
	mem_core_free(c->cursors);
	mem_core_free(c);
}

static void conn_main(void *arg)
{
	struct urkv_conn *c = arg;
	struct urkv_server *srv = c->cc->srv;

	rx_arm(c);
	for (;;) {
		bool alone = false;
		int err = 0;
		enum parse_result r;

		if (atomic_load(&srv->stopping))
			break;
		if (!c->held && c->stage_len && !in_take(c)) {
			urkv_out_error(c, "ERR out of memory");
			break;
		}
		r = batch_fill(c, &err, &alone);
		if (c->nslots)
			batch_run(c, alone);
		rx_resume(c);	/* The batch consumed its input. */
		if (r == PARSE_ERROR && !c->close_after) {	/* Bytes after QUIT get no reply. */
			/* A limit that was hit is named with its option and value. */
			if (err == RESP_E_ARG_TOO_LARGE &&
			    srv->o.proto_max_bulk_len <= srv->o.max_request)
				urkv_out_errorf(c, "ERR %s (over urkv's --proto-max-bulk-len %zu, "
						"CONFIG GET proto-max-bulk-len)", resp_strerror(err),
						srv->o.proto_max_bulk_len);
			else if (err == RESP_E_ARG_TOO_LARGE || err == RESP_E_REQUEST_TOO_LARGE)
				urkv_out_errorf(c, "ERR %s (over urkv's --max-request %zu)",
						resp_strerror(err), srv->o.max_request);
			else if (err == RESP_E_INLINE_TOO_LARGE &&
				 c->parser.opts.inline_len_max + 2 == srv->o.max_request)
				/* A --max-request below 64 KiB bounds inline lines too (conn_start). */
				urkv_out_errorf(c, "ERR %s (over %zu bytes, urkv's --max-request %zu "
						"less its CRLF)", resp_strerror(err),
						c->parser.opts.inline_len_max, srv->o.max_request);
			else if (err == RESP_E_INLINE_TOO_LARGE)
				urkv_out_errorf(c, "ERR %s (over urkv's inline limit of %zu bytes; "
						"send larger commands as RESP arrays)", resp_strerror(err),
						c->parser.opts.inline_len_max);
			else if (err == RESP_E_TOO_MANY_ARGS)
				urkv_out_errorf(c, "ERR %s (over urkv's --max-args %zu)",
						resp_strerror(err), srv->o.max_args);
			else
				urkv_out_errorf(c, "ERR %s", err == -ENOMEM ? "out of memory"
									   : resp_strerror(err));
			atomic_fetch_add_explicit(&c->cc->st.protocol_errors, 1,
						  memory_order_relaxed);
		}
		if (r == PARSE_ERROR || c->close_after || urkv_conn_gone(c))
			break;
		if (r == PARSE_RUN || c->stage_len)
			continue;
		/* Nothing complete left: send the replies, then wait for more bytes. */
		flush(c);
		if (c->send_failed)
			break;
		in_shrink(c);
		/*
		 * No complete command is left, so what is unparsed in `in` is
		 * part of one request, within max_request (the parser refuses
		 * more).  (stage may have filled while flush waited on the
		 * socket: then the wait below does not wait.)  Should rx still
		 * be paused, a waiting fiber gets its receive (here and in
		 * conn_rx) rather than wait for ever.
		 */
		URT_DEBUG_ASSERT(c->in_len - c->in_off <= c->in_max);
		if (c->rx_paused && !c->rx_active && !c->eof)
			rx_arm(c);
		c->waiting = true;
		while (!c->stage_len && !c->eof)
			urt_waitq_wait(&c->rx_wq);
		c->waiting = false;
		if (!c->stage_len)
			break;
	}
	flush(c);
	conn_linger(c);	/* Only when the client may still be sending. */
	if (c->timed_out)
		atomic_fetch_add_explicit(&c->cc->st.timeouts, 1, memory_order_relaxed);
	conn_free(c);
}

void urkv_conn_start(struct urkv_core *cc, int fd)
{
	struct urkv_server *srv = cc->srv;
	struct resp_opts ro = resp_opts_default();
	struct urkv_conn *c = mem_core_alloc(sizeof(*c));	/* This core's arena (base/mem.h). */

	if (!c)
		goto err_close;
	c->cc = cc;
	c->fd = fd;
	c->nosync = -1;	/* The appendfsync policy, until NOSYNC ON|OFF. */
	c->last_active_ns = urt_clock_ns();
	c->cl.id = atomic_fetch_add(&srv->next_client_id, 1);
	c->cl.created_ns = c->last_active_ns;
	c->cl.last_cmd = "NULL";
	urkv_auth_conn_init(srv, &c->cl, fd);
	c->in_cap = 2 * CONN_IN_MIN;
	c->in_max = srv->o.max_request + CONN_IN_MIN;	/* Room for a length line past a whole request. */
	c->in = mem_core_malloc(c->in_cap);
	c->out = mem_core_malloc(CONN_OUT_CAP);
	c->arena = mem_core_malloc(CONN_ARENA);
	c->pargv_cap = CONN_ARGV_MIN;
	c->pargv = mem_core_malloc(c->pargv_cap * sizeof(*c->pargv));
	ro.args_max = srv->o.max_args;
	ro.request_len_max = srv->o.max_request;
	ro.bulk_len_max = srv->o.proto_max_bulk_len;
	if (ro.bulk_len_max > srv->o.max_request)
		ro.bulk_len_max = srv->o.max_request;
	if (ro.inline_len_max > srv->o.max_request - 2)
		ro.inline_len_max = srv->o.max_request - 2;
	if (!c->in || !c->out || !c->arena || !c->pargv || resp_parser_init(&c->parser, &ro))
		goto err_free;
	c->next = cc->conns;
	if (cc->conns)
		cc->conns->prev = c;
	cc->conns = c;
	cc->nconns++;
	if (urt_fiber_spawn(conn_main, c) != 0) {
		c->fd = -1;
		conn_free(c);
		goto err_close;
	}
	return;

err_free:
	mem_core_free(c->pargv);
	mem_core_free(c->in);
	mem_core_free(c->out);
	mem_core_free(c->arena);
	mem_core_free(c);
err_close:
	atomic_fetch_sub(&srv->clients, 1);
	close(fd);
}

void urkv_conn_stop_all(struct urkv_core *cc)
{
	for (struct urkv_conn *c = cc->conns; c; c = c->next) {
		/* Idle ones leave now; busy ones after their batch (they check stopping). */
		if (c->waiting)
			c->eof = true;
		if (c->sending)
			urt_io_cancel(c->sending);	/* A client that does not read its replies. */
		if (c->rx_active)
			urt_io_cancel(&c->rx);
		urt_waitq_wake_one(&c->rx_wq);
	}
}

void urkv_conn_reaper(void *arg)
{
	struct urkv_core *cc = arg;
	struct urkv_server *srv = cc->srv;

	while (!atomic_load(&srv->stopping)) {
		/* CONFIG SET timeout changes it at run time; 0 = never (the reaper just ticks). */
		uint64_t timeout = atomic_load_explicit(&srv->live.timeout_ns, memory_order_relaxed);
		uint64_t tick = timeout / 4 < 1000000000ull ? timeout / 4 : 1000000000ull;
		uint64_t now = urt_clock_ns();

		if (tick < 1000000)
			tick = timeout ? 1000000 : 100000000;
		for (struct urkv_conn *c = cc->conns; c && timeout; c = c->next) {
			if (!c->waiting || c->eof || c->lingering || now - c->last_active_ns < timeout)
				continue;
			c->timed_out = true;
			c->eof = true;
			if (c->rx_active)
				urt_io_cancel(&c->rx);
			urt_waitq_wake_one(&c->rx_wq);
		}
		urt_sleep_ns(tick);
	}
	cc->reaper = false;
	urt_waitq_wake_all(&cc->drained_wq);
}
