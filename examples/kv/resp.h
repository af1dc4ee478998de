/* SPDX-License-Identifier: MIT */
/*
 * resp.h - RESP2 request parser and reply writer for urkv.
 *
 * The parser turns the bytes a client sent into one command at a time, as an
 * argv of (pointer, length) slices into the caller's own buffer.  It never
 * allocates and never copies an argument, it keeps enough state that a large
 * request arriving in many small pieces costs linear work in total, and every
 * malformed input ends in a negative RESP_E_* code, never in a read outside
 * the bytes it was given.
 *
 * The reply writer appends whole RESP2 replies to a bounded output buffer: a
 * reply that does not fit is not written at all.
 *
 * Typical use by a connection, whose input buffer holds `in_len` unparsed
 * bytes starting at `in`:
 *
 *	struct resp_arg argv[64];
 *	struct resp_cmd cmd = { .argv = argv, .argv_max = 64 };
 *	for (;;) {
 *		ssize_t n = resp_parse(&conn->parser, in, in_len, &cmd);
 *		if (n == 0)
 *			break;			   (wait for more bytes)
 *		if (n < 0)
 *			reply resp_strerror(n), then close;
 *		if (cmd.argc > 0)
 *			execute(cmd.argv, cmd.argc);
 *		in += n; in_len -= n;
 *	}
 */
#ifndef URKV_RESP_H
#define URKV_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Protocol errors returned by resp_parse().  They sit in a band below the
 * errno range (errno values stop at 4095), so a caller can tell them from a
 * -errno, and resp_strerror() explains both kinds.
 */
enum resp_error {
	RESP_E_BAD_TYPE = -4401,	  /* A multibulk element did not start with '$'. */
	RESP_E_BAD_LENGTH = -4402,	  /* A count or length was not a valid integer in range. */
	RESP_E_TOO_MANY_ARGS = -4403,	  /* More arguments than args_max or the argv capacity. */
	RESP_E_ARG_TOO_LARGE = -4404,	  /* A bulk argument longer than bulk_len_max. */
	RESP_E_REQUEST_TOO_LARGE = -4405, /* A multibulk request longer than request_len_max. */
	RESP_E_BAD_QUOTING = -4406,	  /* An inline command with unbalanced or misplaced quotes. */
	RESP_E_NO_CRLF = -4407,		  /* A line or bulk was not terminated by "\r\n". */
	RESP_E_INLINE_TOO_LARGE = -4408,  /* An inline line longer than inline_len_max. */
};

/* Limits of the parser; build them with resp_opts_default() and adjust. */
struct resp_opts {
	size_t args_max;	/* Most arguments one command may declare. */
	size_t bulk_len_max;	/* Longest bulk argument, in bytes. */
	size_t request_len_max; /* Longest whole request (headers included), in bytes. */
	size_t inline_len_max;	/* Longest inline line, in bytes, without its newline; at most request_len_max - 2. */
};

/*
 * Defaults: 1 Mi arguments and a 64 KiB inline line, as Redis has; bulks of
 * 1 MiB + 4 KiB, because urkv caps values at 1 MiB and replies a readable
 * error to a slightly larger one, while anything much larger is cut off as a
 * protocol error before it is buffered; and 64 MiB per request, enough for
 * an MSET of dozens of maximal values.
 */
struct resp_opts resp_opts_default(void);

/* One argument: a slice of the caller's buffer, not NUL-terminated. */
struct resp_arg {
	union {
		const char *ptr; /* First byte, once resp_parse() returned > 0. */
		size_t off;	 /* Parser-private while the command is incomplete. */
	};
	size_t len; /* Length in bytes. */
};

/* The command being parsed; the caller provides the argv array. */
struct resp_cmd {
	struct resp_arg *argv; /* Caller-owned array of argv_max entries. */
	size_t argv_max;       /* Capacity of argv; a longer command is RESP_E_TOO_MANY_ARGS. */
	size_t argc;	       /* Arguments of the last complete command. */
};

/*
 * Parser state of one connection.  The fields are private; the struct is
 * public only so that a connection can embed it without an allocation.
 */
struct resp_parser {
	struct resp_opts opts;	      /* Limits, copied at init. */
	int state;		      /* Where in a command the parser stands (enum in resp.c). */
	int error;		      /* Sticky protocol error, 0 if none. */
	size_t pos;		      /* Offset from the command start of the next byte to parse. */
	size_t scan;		      /* Offset up to which the current line was searched for its end. */
	size_t seen;		      /* Largest len passed for this command, to catch shrinking input. */
	size_t argc;		      /* Argument count declared by the multibulk header. */
	size_t argi;		      /* Arguments completely parsed so far. */
	size_t bulk_end;	      /* Offset just past the data of the bulk being read. */
	const struct resp_arg *argv;  /* argv array of the command in progress. */
};

/*
 * Initialise a parser.  Returns -EINVAL if args_max or inline_len_max is 0,
 * or request_len_max is below 16 or above SSIZE_MAX.  An inline_len_max
 * above request_len_max - 2 is lowered to it.
 */
int resp_parser_init(struct resp_parser *p, const struct resp_opts *opts);

/* Forget any partial command and any sticky error. */
void resp_parser_reset(struct resp_parser *p);

/*
 * Parse the next command from buf[0, len).
 *
 * buf must start at the first byte not yet consumed, and from call to call
 * the caller may only append bytes: the bytes passed before must still be
 * there, unchanged, though the buffer may have moved.  cmd->argv must be the
 * same array until a command completes.
 *
 * Returns > 0, the number of bytes the command took, with cmd->argc and
 * cmd->argv[0, argc) pointing into buf; cmd->argc == 0 means an empty
 * command (a blank inline line, "*0" or "*-1"), which the caller skips.
 * Returns 0 if more bytes are needed, and a RESP_E_* code on a protocol
 * error, which sticks until resp_parser_reset().  After a return <= 0,
 * cmd->argc and cmd->argv hold nothing the caller may use.
 *
 * An inline command with quoted arguments is decoded in place, inside the
 * bytes it consumes; no other byte of buf is written.
 */
ssize_t resp_parse(struct resp_parser *p, char *buf, size_t len, struct resp_cmd *cmd);

/* Message for a RESP_E_* code (a Redis-style "Protocol error: ..."), or strerror of a -errno. */
const char *resp_strerror(int error);

/* True if the argument equals name, compared ASCII case-insensitively. */
bool resp_arg_eq_nocase(const struct resp_arg *arg, const char *name);

/*
 * Parse a decimal integer as strictly as Redis's string2ll: an optional '-',
 * then "0" or digits without a leading zero, nothing else ("-0", "+1", " 1",
 * "01" and "" are rejected).  Returns 0, -EINVAL on bad syntax, or -ERANGE if
 * the value does not fit in a long long.
 */
int resp_parse_ll(const char *s, size_t len, long long *out);

/* Output buffer the reply writers append to. */
struct resp_out {
	char *buf;  /* Caller-owned bytes. */
	size_t len; /* Bytes written so far. */
	size_t cap; /* Size of buf. */
};

/* Point out at an empty buffer of cap bytes. */
void resp_out_init(struct resp_out *out, char *buf, size_t cap);

/*
 * Reply writers.  Each appends one complete reply and returns 0, or returns
 * -ENOSPC and writes nothing when the reply does not fit.
 *
 * Simple strings and errors cannot carry CR or LF: resp_write_simple() and
 * resp_write_error() replace each by a space.  An error message starts with
 * its code word, as Redis's do ("ERR syntax error", "WRONGTYPE ...").
 */
int resp_write_simple(struct resp_out *out, const char *s, size_t len);
int resp_write_error(struct resp_out *out, const char *msg, size_t len);
int resp_write_errorf(struct resp_out *out, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int resp_write_int(struct resp_out *out, long long v);
int resp_write_bulk(struct resp_out *out, const void *data, size_t len);
int resp_write_null_bulk(struct resp_out *out);
int resp_write_array_len(struct resp_out *out, size_t n);
int resp_write_null_array(struct resp_out *out);

/* Bytes resp_write_bulk() needs for a bulk of len bytes. */
size_t resp_bulk_size(size_t len);

#ifdef __cplusplus
}
#endif

#endif /* URKV_RESP_H */
