/* SPDX-License-Identifier: MIT */
/*
 * resp.c - RESP2 request parser and reply writer for urkv.
 *
 * Design notes
 * ============
 *
 * Invariants of the parser:
 *  1. Every offset it keeps (pos, scan, bulk_end, argv[i].off) counts from the
 *     first byte of the command in progress, never from a pointer, so the
 *     caller may move its buffer between calls (grow it, compact it) as long
 *     as the bytes it already passed stay the same.
 *  2. A call costs the bytes added since the last call plus a constant: a
 *     line is searched on from `scan`, a bulk is waited for by comparing len
 *     with `bulk_end`, and only a few bytes (a type byte, a CR) are looked at
 *     again.  A complete inline line is split once, and a complete command's
 *     offsets are turned into pointers once.  The work for one command is
 *     therefore linear in its size, however it is split.
 *  3. Every byte read lies below the len of the current call.
 *  4. An error is decided by the bytes seen, in order, so a prefix of an
 *     input never fails with another error than the whole input would.  The
 *     error then sticks: a connection that sent garbage is to be closed.
 *  5. Nothing is written to the caller's buffer, except that an inline line
 *     with quotes or escapes is decoded in place once it is complete.
 *
 * States (p->state), for one command:
 *
 *	START --'*'--> COUNT --"N\r\n", N>0--> BULK_HDR --"$L\r\n"--> BULK_DATA
 *	  |              |                        ^                      |
 *	  |              +--N = 0 or -1--> done   +------more args-------+
 *	  +--other--> INLINE --'\n'--> done              last arg --> done
 *
 *	transition                      performed by
 *	START -> COUNT or INLINE        resp_parse()
 *	COUNT -> BULK_HDR or done       parse_count()
 *	BULK_HDR -> BULK_DATA           parse_bulk_header()
 *	BULK_DATA -> BULK_HDR or done   parse_bulk_data()
 *	INLINE -> done                  parse_inline(), split_inline()
 *	done -> START                   resp_parse(), after command_done()
 *	any -> error (sticky)           resp_parse()
 *
 * The multibulk syntax is stricter than Redis's, which skips the two bytes
 * after a line or a bulk without looking at them and takes any count <= 0 as
 * an empty command: here those bytes must be "
", and counts below -1 are
 * RESP_E_BAD_LENGTH.
 *
 * The inline syntax follows Redis's sdssplitargs(): arguments are separated
 * by blanks; "double quotes" take the escapes \n \r \t \b \a \\ \" and \xHH;
 * 'single quotes' take \'; a closing quote must be followed by a blank or the
 * end of the line.  Unlike Redis, a NUL byte is an ordinary character, and
 * \v and \f separate arguments everywhere.
 */
#include "resp.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Cheap checks of the caller's side of the contract, kept in release builds. */
#define RESP_ASSERT(cond)                                                          \
	do {                                                                       \
		if (!(cond))                                                       \
			resp_assert_failed(#cond, __FILE__, __LINE__);             \
	} while (0)

__attribute__((noreturn)) static void resp_assert_failed(const char *cond, const char *file,
							 int line)
{
	fprintf(stderr, "%s:%d: assertion failed: %s\n", file, line, cond);
	abort();
}

enum resp_state {
	ST_START,     /* At the first byte of a command. */
	ST_INLINE,    /* Searching an inline command for its '\n'. */
	ST_COUNT,     /* Reading the "*N\r\n" line. */
	ST_BULK_HDR,  /* Reading a "$L\r\n" line. */
	ST_BULK_DATA, /* Waiting for L bytes and their "\r\n". */
};

/*
 * Longest digit string of a count or length line: "-9223372036854775808" has
 * 20 characters, and anything longer cannot be a valid long long.
 */
#define LEN_CHARS_MAX 20

/*
 * The least a multibulk argument can take on the wire is "$0\r\n\r\n", six
 * bytes; a count whose arguments cannot fit in the request limit is refused
 * at once instead of after buffering.
 */
#define BULK_WIRE_MIN 6

/* The smallest request limit that init accepts; any real limit is far above. */
#define REQUEST_LEN_MIN 16

struct resp_opts resp_opts_default(void)
{
	return (struct resp_opts){
		.args_max = 1024 * 1024,
		.bulk_len_max = 1024 * 1024 + 4096,
		.request_len_max = 64 * 1024 * 1024,
		.inline_len_max = 64 * 1024,
	};
}

int resp_parser_init(struct resp_parser *p, const struct resp_opts *opts)
{
	if (opts->args_max == 0 || opts->inline_len_max == 0 ||
	    opts->request_len_max < REQUEST_LEN_MIN || opts->request_len_max > SSIZE_MAX)
		return -EINVAL;
	memset(p, 0, sizeof(*p));
	p->opts = *opts;
	/* An inline line and its "\r\n" must fit in a request, so that the
	 * request limit never has to be checked on the inline path. */
	if (p->opts.inline_len_max > p->opts.request_len_max - 2)
		p->opts.inline_len_max = p->opts.request_len_max - 2;
	p->state = ST_START;
	return 0;
}

void resp_parser_reset(struct resp_parser *p)
{
	p->state = ST_START;
	p->error = 0;
	p->pos = 0;
	p->scan = 0;
	p->seen = 0;
	p->argc = 0;
	p->argi = 0;
	p->bulk_end = 0;
	p->argv = NULL;
}

/*
 * What a parsing step reports to resp_parse(), besides a RESP_E_* code: it
 * needs more bytes, it moved to another state, or it completed a command,
 * whose length it left in p->pos and whose argv it filled with pointers.
 */
enum resp_step {
	STEP_WAIT,
	STEP_NEXT,
	STEP_DONE,
};

/* Turns the offsets of a complete multibulk command into pointers. */
static int command_done(struct resp_parser *p, const char *buf, size_t end,
			struct resp_cmd *cmd, size_t argc)
{
	for (size_t i = 0; i < argc; i++) {
		size_t off = cmd->argv[i].off;

		cmd->argv[i].ptr = buf + off;
	}
	cmd->argc = argc;
	p->pos = end;
	return STEP_DONE;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * Reads a "*N\r\n" or "$N\r\n" line whose type byte is at p->pos.  Returns
 * STEP_NEXT with *value set and p->pos just past the "\r\n", STEP_WAIT if
 * the line is not complete yet, or a RESP_E_* code.
 */
static int read_len_line(struct resp_parser *p, const char *buf, size_t len, long long *value)
{
	size_t start = p->pos + 1;
	size_t i = p->scan;

	while (i < len && buf[i] != '\r') {
		if (!is_digit(buf[i]) && buf[i] != '-')
			return RESP_E_BAD_LENGTH;
		if (i - start >= LEN_CHARS_MAX)
			return RESP_E_BAD_LENGTH;
		i++;
	}
	p->scan = i;
	if (i + 1 >= len)
		return STEP_WAIT;
	if (buf[i + 1] != '\n')
		return RESP_E_NO_CRLF;
	if (resp_parse_ll(buf + start, i - start, value) != 0)
		return RESP_E_BAD_LENGTH;
	p->pos = i + 2;
	if (p->pos > p->opts.request_len_max)
		return RESP_E_REQUEST_TOO_LARGE;
	return STEP_NEXT;
}

static int parse_count(struct resp_parser *p, const char *buf, size_t len, struct resp_cmd *cmd)
{
	long long n;
	int rc = read_len_line(p, buf, len, &n);

	if (rc != STEP_NEXT)
		return rc;
	/* "*0" and the null array "*-1" are empty commands, as in Redis. */
	if (n == 0 || n == -1)
		return command_done(p, buf, p->pos, cmd, 0);
	if (n < 0)
		return RESP_E_BAD_LENGTH;
	if ((unsigned long long)n > p->opts.args_max || (unsigned long long)n > cmd->argv_max)
		return RESP_E_TOO_MANY_ARGS;
	if ((unsigned long long)n > (p->opts.request_len_max - p->pos) / BULK_WIRE_MIN)
		return RESP_E_REQUEST_TOO_LARGE;
	p->argc = (size_t)n;
	p->argi = 0;
	p->state = ST_BULK_HDR;
	p->scan = p->pos + 1;
	return STEP_NEXT;
}

static int parse_bulk_header(struct resp_parser *p, const char *buf, size_t len,
			     struct resp_cmd *cmd)
{
	long long n;
	int rc;

	if (p->pos >= len)
		return STEP_WAIT;
	if (buf[p->pos] != '$')
		return RESP_E_BAD_TYPE;
	rc = read_len_line(p, buf, len, &n);
	if (rc != STEP_NEXT)
		return rc;
	/* A null bulk "$-1" means nothing inside a request. */
	if (n < 0)
		return RESP_E_BAD_LENGTH;
	if ((unsigned long long)n > p->opts.bulk_len_max)
		return RESP_E_ARG_TOO_LARGE;
	/* read_len_line() checked pos <= request_len_max, so this cannot wrap. */
	if ((unsigned long long)n + 2 > p->opts.request_len_max - p->pos)
		return RESP_E_REQUEST_TOO_LARGE;
	cmd->argv[p->argi].off = p->pos;
	cmd->argv[p->argi].len = (size_t)n;
	p->bulk_end = p->pos + (size_t)n;
	p->state = ST_BULK_DATA;
	return STEP_NEXT;
}

static int parse_bulk_data(struct resp_parser *p, const char *buf, size_t len,
			   struct resp_cmd *cmd)
{
	if (len <= p->bulk_end)
		return STEP_WAIT;
	if (buf[p->bulk_end] != '\r')
		return RESP_E_NO_CRLF;
	if (len <= p->bulk_end + 1)
		return STEP_WAIT;
	if (buf[p->bulk_end + 1] != '\n')
		return RESP_E_NO_CRLF;
	p->pos = p->bulk_end + 2;
	p->argi++;
	if (p->argi == p->argc)
		return command_done(p, buf, p->pos, cmd, p->argc);
	p->state = ST_BULK_HDR;
	p->scan = p->pos + 1;
	return STEP_NEXT;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The byte a backslash escape inside double quotes stands for. */
static char unescape(char c)
{
	switch (c) {
	case 'n':
		return '\n';
	case 'r':
		return '\r';
	case 't':
		return '\t';
	case 'b':
		return '\b';
	case 'a':
		return '\a';
	default:
		return c;
	}
}

/*
 * Splits the complete inline line line[0, n) into cmd->argv, decoding quoted
 * arguments in place: the write index w never passes the read index r,
 * because every escape and every quote is at least as long as what it
 * decodes to.  Returns the argument count or a RESP_E_* code.
 */
static ssize_t split_inline(const struct resp_parser *p, char *line, size_t n,
			    struct resp_cmd *cmd)
{
	size_t argv_max = cmd->argv_max < p->opts.args_max ? cmd->argv_max : p->opts.args_max;
	size_t argc = 0;
	size_t r = 0;

	for (;;) {
		enum { Q_NONE, Q_DOUBLE, Q_SINGLE } quote = Q_NONE;
		size_t start, w;

		while (r < n && is_blank(line[r]))
			r++;
		if (r == n)
			break;
		if (argc == argv_max)
			return RESP_E_TOO_MANY_ARGS;
		start = w = r;
		while (r < n) {
			char c = line[r];
			int hi, lo;

			if (quote == Q_NONE) {
				if (is_blank(c))
					break;
				if (c == '"' || c == '\'') {
					quote = c == '"' ? Q_DOUBLE : Q_SINGLE;
					r++;
					continue;
				}
			} else if (c == (quote == Q_DOUBLE ? '"' : '\'')) {
				/* A closing quote ends the argument. */
				if (r + 1 < n && !is_blank(line[r + 1]))
					return RESP_E_BAD_QUOTING;
				quote = Q_NONE;
				r++;
				break;
			} else if (c == '\\' && quote == Q_DOUBLE && r + 3 < n && line[r + 1] == 'x' &&
				   (hi = hex_value(line[r + 2])) >= 0 &&
				   (lo = hex_value(line[r + 3])) >= 0) {
				line[w++] = (char)(hi << 4 | lo);
				r += 4;
				continue;
			} else if (c == '\\' && quote == Q_DOUBLE && r + 1 < n) {
				line[w++] = unescape(line[r + 1]);
				r += 2;
				continue;
			} else if (c == '\\' && quote == Q_SINGLE && r + 1 < n && line[r + 1] == '\'') {
				line[w++] = '\'';
				r += 2;
				continue;
			}
			/* A literal byte; store it only if decoding shifted the argument. */
			if (w != r)
				line[w] = c;
			w++;
			r++;
		}
		if (quote != Q_NONE)
			return RESP_E_BAD_QUOTING;
		cmd->argv[argc].ptr = line + start;
		cmd->argv[argc].len = w - start;
		argc++;
	}
	return (ssize_t)argc;
}

static int parse_inline(struct resp_parser *p, char *buf, size_t len, struct resp_cmd *cmd)
{
	const char *nl = memchr(buf + p->scan, '\n', len - p->scan);
	size_t line_len, end;
	ssize_t argc;

	if (nl == NULL) {
		/* Without its '\n' the line holds at least len bytes, or len - 1
		 * if the last one turns out to be the '\r' of a "\r\n". */
		size_t line_min = len - (buf[len - 1] == '\r');

		if (line_min > p->opts.inline_len_max)
			return RESP_E_INLINE_TOO_LARGE;
		p->scan = len;
		return STEP_WAIT;
	}
	end = (size_t)(nl - buf);
	line_len = end;
	if (line_len > 0 && buf[line_len - 1] == '\r')
		line_len--;
	if (line_len > p->opts.inline_len_max)
		return RESP_E_INLINE_TOO_LARGE;
	argc = split_inline(p, buf, line_len, cmd);
	if (argc < 0)
		return (int)argc;
	cmd->argc = (size_t)argc;
	p->pos = end + 1;
	return STEP_DONE;
}

/*
 * A plain length ("123\r\n": digits only, no leading zero, at most 18) at
 * *pos; moves *pos past its CRLF.  False for anything else, an incomplete
 * line included: the state machine then parses it and reports what it is.
 */
static bool fast_len(const char *buf, size_t len, size_t *pos, size_t *out)
{
	size_t i = *pos, start = i, v = 0;

	while (i < len && is_digit(buf[i])) {
		v = v * 10 + (size_t)(buf[i] - '0');
		if (++i - start > 18)
			return false;
	}
	if (i == start || i + 1 >= len || buf[i] != '\r' || buf[i + 1] != '\n' ||
	    (buf[start] == '0' && i - start > 1))
		return false;
	*out = v;
	*pos = i + 2;
	return true;
}

/*
 * The common request in one pass: a whole multibulk command already in
 * buf, with plain lengths within every limit.  Returns its length with cmd
 * filled, or 0 to leave it to the state machine (incomplete, unusual or
 * wrong), which then gives exactly the answer it always gives: this path
 * only ever accepts what the state machine accepts.
 */
static size_t parse_fast(const struct resp_parser *p, const char *buf, size_t len,
			 struct resp_cmd *cmd)
{
	size_t pos = 1, argc, n;

	if (!fast_len(buf, len, &pos, &argc) || argc == 0 || argc > p->opts.args_max ||
	    argc > cmd->argv_max)
		return 0;
	for (size_t i = 0; i < argc; i++) {
		if (pos >= len || buf[pos] != '$')
			return 0;
		pos++;
		if (!fast_len(buf, len, &pos, &n) || n > p->opts.bulk_len_max || n + 2 > len - pos ||
		    buf[pos + n] != '\r' || buf[pos + n + 1] != '\n')
			return 0;
		cmd->argv[i].ptr = buf + pos;
		cmd->argv[i].len = n;
		pos += n + 2;
	}
	/* Every position the state machine checks is at most the end. */
	if (pos > p->opts.request_len_max)
		return 0;
	cmd->argc = argc;
	return pos;
}

ssize_t resp_parse(struct resp_parser *p, char *buf, size_t len, struct resp_cmd *cmd)
{
	size_t end;
	int rc;

	RESP_ASSERT(buf != NULL || len == 0);
	RESP_ASSERT(cmd->argv != NULL || cmd->argv_max == 0);
	if (p->error)
		return p->error;
	if (p->state == ST_START) {
		if (len == 0)
			return 0;
		if (buf[0] == '*' && (end = parse_fast(p, buf, len, cmd)) > 0)
			return (ssize_t)end;
		p->argv = cmd->argv;
		p->pos = 0;
		if (buf[0] == '*') {
			p->state = ST_COUNT;
			p->scan = 1;
		} else {
			p->state = ST_INLINE;
			p->scan = 0;
		}
	} else {
		/* The caller must keep its argv array and only ever add bytes. */
		RESP_ASSERT(cmd->argv == p->argv);
		RESP_ASSERT(len >= p->seen);
	}
	p->seen = len;

	do {
		switch (p->state) {
		case ST_INLINE:
			rc = parse_inline(p, buf, len, cmd);
			break;
		case ST_COUNT:
			rc = parse_count(p, buf, len, cmd);
			break;
		case ST_BULK_HDR:
			rc = parse_bulk_header(p, buf, len, cmd);
			break;
		case ST_BULK_DATA:
			rc = parse_bulk_data(p, buf, len, cmd);
			break;
		default:
			RESP_ASSERT(!"resp parser in an unknown state");
			return -EINVAL;
		}
	} while (rc == STEP_NEXT);

	if (rc < 0) {
		/* Sticky: the stream cannot be resynchronised after garbage. */
		p->error = rc;
		return rc;
	}
	if (rc == STEP_WAIT)
		return 0;
	end = p->pos;
	resp_parser_reset(p);
	return (ssize_t)end;
}

const char *resp_strerror(int error)
{
	const char *s;

	switch (error) {
	case 0:
		return "Success";
	case RESP_E_BAD_TYPE:
		return "Protocol error: expected '$'";
	case RESP_E_BAD_LENGTH:
		return "Protocol error: invalid multibulk or bulk length";
	case RESP_E_TOO_MANY_ARGS:
		return "Protocol error: too many arguments";
	case RESP_E_ARG_TOO_LARGE:
		return "Protocol error: bulk argument too large";
	case RESP_E_REQUEST_TOO_LARGE:
		return "Protocol error: request too large";
	case RESP_E_BAD_QUOTING:
		return "Protocol error: unbalanced quotes in request";
	case RESP_E_NO_CRLF:
		return "Protocol error: expected CRLF";
	case RESP_E_INLINE_TOO_LARGE:
		return "Protocol error: too big inline request";	/* Redis's text. */
	}
	/* strerrordesc_np() is thread-safe, unlike strerror(). */
	s = error < 0 && error > -4096 ? strerrordesc_np(-error) : NULL;
	return s ? s : "Unknown error";
}

static char ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

bool resp_arg_eq_nocase(const struct resp_arg *arg, const char *name)
{
	size_t i;

	for (i = 0; i < arg->len; i++) {
		if (name[i] == '\0' || ascii_lower(arg->ptr[i]) != ascii_lower(name[i]))
			return false;
	}
	return name[i] == '\0';
}

int resp_parse_ll(const char *s, size_t len, long long *out)
{
	unsigned long long v = 0;
	unsigned long long limit = LLONG_MAX;
	bool negative = false, overflow = false;
	size_t i = 0;

	if (len == 0)
		return -EINVAL;
	if (s[0] == '-') {
		negative = true;
		/* The magnitude of LLONG_MIN is one more than LLONG_MAX. */
		limit = (unsigned long long)LLONG_MAX + 1;
		i = 1;
	}
	if (i == len)
		return -EINVAL;
	if (s[i] == '0') {
		/* Only a bare "0": no leading zeros and no "-0". */
		if (negative || len != 1)
			return -EINVAL;
		*out = 0;
		return 0;
	}
	if (len - i <= 18) {
		/*
		 * At most 18 digits cannot pass LLONG_MAX (19 digits): no
		 * overflow test, which costs a 64-bit division per digit, on
		 * every length line of every request.
		 */
		for (; i < len; i++) {
			if (!is_digit(s[i]))
				return -EINVAL;
			v = v * 10 + (unsigned)(s[i] - '0');
		}
		*out = negative ? -(long long)v : (long long)v;
		return 0;
	}
	for (; i < len; i++) {
		unsigned digit;

		if (!is_digit(s[i]))
			return -EINVAL;
		digit = (unsigned)(s[i] - '0');
		/* Keep checking the syntax after an overflow: "1e99" is -EINVAL. */
		if (overflow || v > (limit - digit) / 10)
			overflow = true;
		else
			v = v * 10 + digit;
	}
	if (overflow)
		return -ERANGE;
	if (negative)
		*out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
	else
		*out = (long long)v;
	return 0;
}

void resp_out_init(struct resp_out *out, char *buf, size_t cap)
{
	out->buf = buf;
	out->len = 0;
	out->cap = cap;
}

/* Writes the decimal digits of v, right-aligned, ending at end; returns the first. */
static char *format_ull(char *end, unsigned long long v)
{
	char *p = end;

	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	return p;
}

/* Longest decimal form of a long long or a size_t: 20 digits and a sign. */
#define DEC_CHARS_MAX 21

/* Appends "<type><v>\r\n", where v is signed or not as negative says. */
static int write_number_line(struct resp_out *out, char type, bool negative,
			     unsigned long long magnitude)
{
	char tmp[DEC_CHARS_MAX];
	char *end = tmp + sizeof(tmp);
	char *digits = format_ull(end, magnitude);
	size_t n, need;

	if (negative)
		*--digits = '-';
	n = (size_t)(end - digits);
	need = 1 + n + 2;
	if (need > out->cap - out->len)
		return -ENOSPC;
	out->buf[out->len] = type;
	memcpy(out->buf + out->len + 1, digits, n);
	memcpy(out->buf + out->len + 1 + n, "\r\n", 2);
	out->len += need;
	return 0;
}

/* Copies s, replacing CR and LF by spaces so that the line cannot be split. */
static void copy_line_sanitized(char *dst, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		dst[i] = s[i] == '\r' || s[i] == '\n' ? ' ' : s[i];
}

static int write_line(struct resp_out *out, char type, const char *s, size_t len)
{
	size_t avail = out->cap - out->len;

	if (avail < 3 || len > avail - 3)
		return -ENOSPC;
	out->buf[out->len] = type;
	copy_line_sanitized(out->buf + out->len + 1, s, len);
	memcpy(out->buf + out->len + 1 + len, "\r\n", 2);
	out->len += 1 + len + 2;
	return 0;
}

int resp_write_simple(struct resp_out *out, const char *s, size_t len)
{
	return write_line(out, '+', s, len);
}

int resp_write_error(struct resp_out *out, const char *msg, size_t len)
{
	return write_line(out, '-', msg, len);
}

int resp_write_errorf(struct resp_out *out, const char *fmt, ...)
{
	size_t avail = out->cap - out->len;
	char *dst;
	va_list ap;
	int n;

	/* Measure first, so that a reply too long leaves no partial bytes. */
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if (avail < 3 || (size_t)n > avail - 3)
		return -ENOSPC;
	dst = out->buf + out->len + 1;
	va_start(ap, fmt);
	/* The NUL lands where the '\r' goes next. */
	vsnprintf(dst, (size_t)n + 1, fmt, ap);
	va_end(ap);
	out->buf[out->len] = '-';
	copy_line_sanitized(dst, dst, (size_t)n);
	memcpy(dst + n, "\r\n", 2);
	out->len += 1 + (size_t)n + 2;
	return 0;
}

int resp_write_int(struct resp_out *out, long long v)
{
	/* Negate in unsigned arithmetic, where LLONG_MIN has a magnitude. */
	unsigned long long magnitude = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

	return write_number_line(out, ':', v < 0, magnitude);
}

size_t resp_bulk_size(size_t len)
{
	char tmp[DEC_CHARS_MAX];
	char *end = tmp + sizeof(tmp);
	size_t header = 1 + (size_t)(end - format_ull(end, len)) + 2;

	if (len > SIZE_MAX - header - 2)
		return SIZE_MAX;
	return header + len + 2;
}

int resp_write_bulk(struct resp_out *out, const void *data, size_t len)
{
	size_t need = resp_bulk_size(len);
	size_t start = out->len;
	int rc;

	if (need > out->cap - out->len)
		return -ENOSPC;
	rc = write_number_line(out, '$', false, len);
	RESP_ASSERT(rc == 0);
	if (len > 0)
		memcpy(out->buf + out->len, data, len);
	memcpy(out->buf + out->len + len, "\r\n", 2);
	out->len += len + 2;
	RESP_ASSERT(out->len - start == need);
	return 0;
}

int resp_write_null_bulk(struct resp_out *out)
{
	return write_number_line(out, '$', true, 1);
}

int resp_write_array_len(struct resp_out *out, size_t n)
{
	return write_number_line(out, '*', false, n);
}

int resp_write_null_array(struct resp_out *out)
{
	return write_number_line(out, '*', true, 1);
}
