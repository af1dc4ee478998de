/* SPDX-License-Identifier: MIT */
/*
 * test_resp.c - the RESP2 request parser and reply writer of urkv.
 *
 * Every input is copied into a heap buffer of exactly its length before it
 * is parsed, so that AddressSanitizer catches a read past len.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"

#define ARGV_MAX 32

/* An expected argument; S("...") also counts NULs inside the literal. */
struct want {
	const char *s;
	size_t len;
};
#define S(lit) ((struct want){ (lit), sizeof(lit) - 1 })

/* A fresh copy of in[0, n) whose allocation ends at its last byte. */
static char *copy_exact(const char *in, size_t n)
{
	char *buf = malloc(n ? n : 1);

	cr_assert_not_null(buf);
	memcpy(buf, in, n);
	return buf;
}

static struct resp_parser new_parser(const struct resp_opts *opts)
{
	struct resp_opts def = resp_opts_default();
	struct resp_parser p;

	cr_assert_eq(resp_parser_init(&p, opts ? opts : &def), 0);
	return p;
}

/* Checks that the complete command in cmd equals want[0, n) and lies in buf[0, consumed). */
static void expect_argv(const struct resp_cmd *cmd, const char *buf, ssize_t consumed,
			const struct want *want, size_t n)
{
	cr_assert_gt(consumed, 0);
	cr_assert_eq(cmd->argc, n, "argc %zu, want %zu", cmd->argc, n);
	for (size_t i = 0; i < n; i++) {
		const struct resp_arg *a = &cmd->argv[i];

		cr_assert_eq(a->len, want[i].len, "argv[%zu] len %zu, want %zu", i, a->len,
			     want[i].len);
		cr_assert(a->ptr >= buf && a->ptr + a->len <= buf + consumed,
			  "argv[%zu] lies outside the consumed bytes", i);
		cr_assert_eq(memcmp(a->ptr, want[i].s, a->len), 0, "argv[%zu] is \"%.*s\"", i,
			     (int)a->len, a->ptr);
	}
}

/* Parses in[0, n) with a fresh parser in one call and checks the command. */
static void expect_command(const char *in, size_t n, const struct want *want, size_t argc)
{
	struct resp_parser p = new_parser(NULL);
	struct resp_arg argv[ARGV_MAX];
	struct resp_cmd cmd = { .argv = argv, .argv_max = ARGV_MAX };
	char *buf = copy_exact(in, n);
	ssize_t rc = resp_parse(&p, buf, n, &cmd);

	cr_assert_eq(rc, (ssize_t)n, "consumed %zd of %zu bytes of \"%.*s\"", rc, n, (int)n, in);
	expect_argv(&cmd, buf, rc, want, argc);
	free(buf);
}

/* Parses in[0, n) with the given limits (NULL: defaults) and argv capacity. */
static ssize_t parse_with(const char *in, size_t n, const struct resp_opts *opts,
			  size_t argv_max)
{
	struct resp_parser p = new_parser(opts);
	struct resp_arg argv[ARGV_MAX];
	struct resp_cmd cmd = { .argv = argv, .argv_max = argv_max };
	char *buf = copy_exact(in, n);
	ssize_t rc;

	cr_assert_leq(argv_max, ARGV_MAX);
	rc = resp_parse(&p, buf, n, &cmd);
	free(buf);
	return rc;
}

static void expect_error(const char *in, size_t n, int error)
{
	ssize_t rc = parse_with(in, n, NULL, ARGV_MAX);

	cr_assert_eq(rc, error, "\"%.*s\": got %zd (%s), want %d (%s)", (int)n, in, rc,
		     resp_strerror((int)rc), error, resp_strerror(error));
}

#define EXPECT_ERROR(lit, error) expect_error((lit), sizeof(lit) - 1, (error))
#define EXPECT_COMMAND(lit, ...)                                                   \
	do {                                                                       \
		const struct want w_[] = { __VA_ARGS__ };                          \
		expect_command((lit), sizeof(lit) - 1, w_, sizeof(w_) / sizeof(w_[0])); \
	} while (0)

Test(resp_parse, multibulk)
{
	EXPECT_COMMAND("*1\r\n$4\r\nPING\r\n", S("PING"));
	EXPECT_COMMAND("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n", S("SET"), S("key"),
		       S("value"));
	EXPECT_COMMAND("*2\r\n$3\r\nGET\r\n$0\r\n\r\n", S("GET"), S(""));
}

Test(resp_parse, binary_safe_bulk)
{
	/* A bulk may hold CR, LF, NUL and the type bytes themselves. */
	EXPECT_COMMAND("*2\r\n$3\r\nSET\r\n$12\r\n\r\n\0*1\r\n$\0\r\n\0\r\n", S("SET"),
		       S("\r\n\0*1\r\n$\0\r\n\0"));
}

Test(resp_parse, inline_commands)
{
	EXPECT_COMMAND("PING\r\n", S("PING"));
	EXPECT_COMMAND("PING\n", S("PING"));
	EXPECT_COMMAND("set k v\r\n", S("set"), S("k"), S("v"));
	EXPECT_COMMAND("  \tset \t k\f\vv  \r\n", S("set"), S("k"), S("v"));
	EXPECT_COMMAND("SET \"a b\" 'c d'\r\n", S("SET"), S("a b"), S("c d"));
	EXPECT_COMMAND("SET \"\\x4A\\x7a\\n\\r\\t\\b\\a\\\\\\\"\\q\" x\r\n", S("SET"),
		       S("Jz\n\r\t\b\a\\\"q"), S("x"));
	/* A \x without two hex digits is a plain 'x', as in Redis. */
	EXPECT_COMMAND("SET \"\\x4g\" x\r\n", S("SET"), S("x4g"), S("x"));
	EXPECT_COMMAND("SET 'it\\'s' 'a\\b'\r\n", S("SET"), S("it's"), S("a\\b"));
	EXPECT_COMMAND("SET foo\"bar baz\" x\r\n", S("SET"), S("foobar baz"), S("x"));
	EXPECT_COMMAND("SET \"\" ''\r\n", S("SET"), S(""), S(""));
	EXPECT_COMMAND("SET a\0b\r\n", S("SET"), S("a\0b"));
	/* A '*' anywhere but first is an ordinary byte of an inline command. */
	EXPECT_COMMAND("ECHO *1\r\n", S("ECHO"), S("*1"));
}

Test(resp_parse, empty_commands)
{
	static const char *const inputs[] = { "\r\n", "\n", "   \t\r\n", "*0\r\n", "*-1\r\n" };

	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		struct resp_parser p = new_parser(NULL);
		struct resp_arg argv[ARGV_MAX];
		struct resp_cmd cmd = { .argv = argv, .argv_max = ARGV_MAX, .argc = 99 };
		size_t n = strlen(inputs[i]);
		char *buf = copy_exact(inputs[i], n);

		cr_assert_eq(resp_parse(&p, buf, n, &cmd), (ssize_t)n, "input %zu", i);
		cr_assert_eq(cmd.argc, 0, "input %zu", i);
		free(buf);
	}
}

Test(resp_parse, pipelined)
{
	static const char in[] = "*1\r\n$4\r\nPING\r\n"
				 "GET k\r\n"
				 "\r\n"
				 "*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n"
				 "*0\r\n"
				 "SET 'a b' c\n"
				 "*1\r\n$4\r\nPI"; /* incomplete tail */
	static const struct {
		size_t len;
		struct want argv[3];
		size_t argc;
	} expect[] = {
		{ 14, { S("PING") }, 1 },
		{ 7, { S("GET"), S("k") }, 2 },
		{ 2, { { 0 } }, 0 },
		{ 22, { S("ECHO"), S("hi") }, 2 },
		{ 4, { { 0 } }, 0 },
		{ 12, { S("SET"), S("a b"), S("c") }, 3 },
	};
	struct resp_parser p = new_parser(NULL);
	struct resp_arg argv[ARGV_MAX];
	struct resp_cmd cmd = { .argv = argv, .argv_max = ARGV_MAX };
	size_t n = sizeof(in) - 1;
	char *buf = copy_exact(in, n);
	size_t off = 0;

	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		ssize_t rc = resp_parse(&p, buf + off, n - off, &cmd);

		cr_assert_eq(rc, (ssize_t)expect[i].len, "command %zu: %zd", i, rc);
		expect_argv(&cmd, buf + off, rc, expect[i].argv, expect[i].argc);
		off += (size_t)rc;
	}
	/* The tail waits for the rest of the bulk. */
	cr_assert_eq(resp_parse(&p, buf + off, n - off, &cmd), 0);
	free(buf);
}

/*
 * Feeds in[0, n) split at every position, two ways: one parser fed every
 * prefix in turn, and for each k a fresh parser fed k bytes, then all.  Each
 * call gets its own copy of the bytes, at a new address, as if the caller's
 * buffer moved.  The result must be the one-shot result every time: a
 * prefix gives 0 or, for bad input, the one-shot error.
 */
static void check_every_split(const char *in, size_t n)
{
	struct resp_arg ref_argv[ARGV_MAX], argv[ARGV_MAX];
	struct resp_cmd ref = { .argv = ref_argv, .argv_max = ARGV_MAX };
	struct resp_cmd cmd = { .argv = argv, .argv_max = ARGV_MAX };
	struct resp_parser p = new_parser(NULL);
	char *ref_buf = copy_exact(in, n);
	ssize_t ref_rc = resp_parse(&p, ref_buf, n, &ref);
	struct want want[ARGV_MAX];

	cr_assert_neq(ref_rc, 0, "the whole input must decide");
	for (size_t i = 0; ref_rc > 0 && i < ref.argc; i++)
		want[i] = (struct want){ ref.argv[i].ptr, ref.argv[i].len };

	/* One parser, every prefix in turn. */
	p = new_parser(NULL);
	for (size_t k = 1; k <= n; k++) {
		char *buf = copy_exact(in, k);
		ssize_t rc = resp_parse(&p, buf, k, &cmd);

		if (ref_rc > 0 && k == n) {
			cr_assert_eq(rc, ref_rc, "prefix %zu of %zu", k, n);
			expect_argv(&cmd, buf, rc, want, ref.argc);
		} else if (ref_rc > 0) {
			cr_assert_eq(rc, 0, "prefix %zu of %zu gave %zd", k, n, rc);
		} else {
			cr_assert(rc == 0 || rc == ref_rc, "prefix %zu of %zu gave %zd", k, n, rc);
			if (k == n)
				cr_assert_eq(rc, ref_rc);
		}
		free(buf);
	}

	/* Two chunks, split at every position. */
	for (size_t k = 1; k < n; k++) {
		char *head = copy_exact(in, k);
		char *all = copy_exact(in, n);
		ssize_t rc;

		p = new_parser(NULL);
		rc = resp_parse(&p, head, k, &cmd);
		cr_assert(rc == 0 || (ref_rc < 0 && rc == ref_rc), "split at %zu gave %zd", k, rc);
		rc = resp_parse(&p, all, n, &cmd);
		cr_assert_eq(rc, ref_rc, "split at %zu gave %zd", k, rc);
		if (rc > 0)
			expect_argv(&cmd, all, rc, want, ref.argc);
		free(all);
		free(head);
	}
	free(ref_buf);
}

#define CHECK_EVERY_SPLIT(lit) check_every_split((lit), sizeof(lit) - 1)

Test(resp_parse, split_at_every_byte)
{
	CHECK_EVERY_SPLIT("*3\r\n$3\r\nSET\r\n$10\r\nkey\r\n\0\r\nab\r\n$5\r\nvalue\r\n");
	CHECK_EVERY_SPLIT("*1\r\n$0\r\n\r\n");
	CHECK_EVERY_SPLIT("*-1\r\n");
	CHECK_EVERY_SPLIT("SET \"a\\x41 b\" 'c\\'d' e\r\n");
	CHECK_EVERY_SPLIT("PING\n");
	/* Bad input fails at the same byte whatever the split. */
	CHECK_EVERY_SPLIT("*2\r\n$3\r\nGET\r\n+k\r\n");
	CHECK_EVERY_SPLIT("*1\r\n$3\r\nGETX\r\n");
	CHECK_EVERY_SPLIT("*1\r\n$-5\r\n");
	CHECK_EVERY_SPLIT("SET \"abc\r\n");
}

/* xorshift64: the random commands below are the same on every run. */
static uint64_t rnd_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A length line's digits: mostly right, sometimes one of the forms the parser must judge. */
static int rnd_len(uint64_t *s, char *out, size_t cap, size_t want)
{
	static const char *const odd[] = { "0", "-1", "-2", "01", "007", "", "+3", "1x",
					   "99999999999999999999", "123456789012345678",
					   "9223372036854775807", " 3" };

	if (rnd_next(s) % 6 != 0)
		return snprintf(out, cap, "%zu", want);
	if (rnd_next(s) % 2 == 0)
		return snprintf(out, cap, "%zu", want + 1 - rnd_next(s) % 3);
	return snprintf(out, cap, "%s", odd[rnd_next(s) % (sizeof(odd) / sizeof(odd[0]))]);
}

/* A line end: mostly CRLF, sometimes broken. */
static const char *rnd_crlf(uint64_t *s)
{
	static const char *const odd[] = { "\n", "\r", "\r\r", "", "\n\r" };

	return rnd_next(s) % 8 != 0 ? "\r\n" : odd[rnd_next(s) % 5];
}

/*
 * Random multibulk commands, right and wrong in the ways a client can get
 * them wrong, and cut short at random: a whole buffer (which the parser
 * may take in one pass) and the same bytes one more byte per call (which
 * it must take state by state) give the same answer, the same error, or
 * both wait for more.
 */
Test(resp_parse, random_commands_whole_and_split_agree)
{
	struct resp_arg argv_a[ARGV_MAX], argv_b[ARGV_MAX];
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	unsigned ok = 0, bad = 0, wait = 0;

	for (unsigned it = 0; it < 3000; it++) {
		char in[512], num[32];
		size_t n = 0, argc = 1 + rnd_next(&seed) % 4;
		struct resp_cmd a = { .argv = argv_a, .argv_max = ARGV_MAX };
		struct resp_cmd b = { .argv = argv_b, .argv_max = ARGV_MAX };
		struct resp_parser pa, pb;
		ssize_t ra, rb = 0;
		char *buf;

		rnd_len(&seed, num, sizeof(num), argc);
		n += (size_t)snprintf(in + n, sizeof(in) - n, "*%s%s", num, rnd_crlf(&seed));
		for (size_t i = 0; i < argc && n < sizeof(in) - 128; i++) {
			size_t dl = rnd_next(&seed) % 20;

			rnd_len(&seed, num, sizeof(num), dl);
			n += (size_t)snprintf(in + n, sizeof(in) - n, "%c%s%s",
					      rnd_next(&seed) % 16 ? '$' : ':', num, rnd_crlf(&seed));
			for (size_t j = 0; j < dl; j++)
				in[n++] = (char)("ab\r\n$*0"[rnd_next(&seed) % 7]);
			n += (size_t)snprintf(in + n, sizeof(in) - n, "%s", rnd_crlf(&seed));
		}
		if (rnd_next(&seed) % 4 == 0)
			n = rnd_next(&seed) % (n + 1);
		if (n == 0)
			continue;

		pa = new_parser(NULL);
		buf = copy_exact(in, n);
		ra = resp_parse(&pa, buf, n, &a);
		pb = new_parser(NULL);
		for (size_t k = 1; k <= n && rb == 0; k++)
			rb = resp_parse(&pb, buf, k, &b);
		cr_assert_eq(ra, rb, "input %u: whole %zd, byte by byte %zd: \"%.*s\"", it, ra, rb,
			     (int)n, in);
		if (ra > 0) {
			cr_assert_eq(a.argc, b.argc, "input %u", it);
			for (size_t i = 0; i < a.argc; i++) {
				cr_assert_eq(a.argv[i].len, b.argv[i].len, "input %u arg %zu", it, i);
				cr_assert_eq(a.argv[i].ptr, b.argv[i].ptr, "input %u arg %zu", it, i);
			}
			ok++;
		} else if (ra < 0) {
			bad++;
		} else {
			wait++;
		}
		free(buf);
	}
	/* The generator must reach all three outcomes, or the test checks less than it says. */
	cr_assert(ok > 300 && bad > 300 && wait > 50, "ok %u, bad %u, wait %u", ok, bad, wait);
}

Test(resp_parse, buffer_moves_between_calls)
{
	static const char in[] = "*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n";
	size_t n = sizeof(in) - 1;
	struct resp_parser p = new_parser(NULL);
	struct resp_arg argv[ARGV_MAX];
	struct resp_cmd cmd = { .argv = argv, .argv_max = ARGV_MAX };
	char *first = copy_exact(in, 20);
	char *second;
	ssize_t rc;

	cr_assert_eq(resp_parse(&p, first, 20, &cmd), 0);
	/* Free the first buffer before the second is made, so they differ. */
	memset(first, 'x', 20);
	free(first);
	second = copy_exact(in, n);
	rc = resp_parse(&p, second, n, &cmd);
	expect_argv(&cmd, second, rc, (struct want[]){ S("ECHO"), S("hello") }, 2);
	free(second);
}

Test(resp_parse, bad_type_byte)
{
	EXPECT_ERROR("*1\r\n+PING\r\n", RESP_E_BAD_TYPE);
	EXPECT_ERROR("*2\r\n$3\r\nGET\r\n:1\r\n", RESP_E_BAD_TYPE);
	EXPECT_ERROR("*1\r\n*1\r\n$1\r\na\r\n", RESP_E_BAD_TYPE);
}

Test(resp_parse, bad_length)
{
	EXPECT_ERROR("*abc\r\n", RESP_E_BAD_LENGTH);
	EXPECT_ERROR("*\r\n", RESP_E_BAD_LENGTH);
	EXPECT_ERROR("*-\r\n", RESP_E_BAD_LENGTH);
	EXPECT_ERROR("*-2\r\n", RESP_E_BAD_LENGTH);
	EXPECT_ERROR("*01\r\n", RESP_E_BAD_LENGTH);
	EXPECT_ERROR("*+1\r\n", RESP_E_BAD_LENGTH);
	EXPECT_ERROR("* 1\r\n", RESP_E_BAD_LENGTH);
	EXPECT_ERROR("*1 \r\n", RESP_E_BAD_LENGTH);
	EXPECT_ERROR("*1\n$1\r\na\r\n", RESP_E_BAD_LENGTH);
	EXPECT_ERROR("*1-\r\n", RESP_E_BAD_LENGTH);
	EXPECT_ERROR("*1\r\n$-1\r\n", RESP_E_BAD_LENGTH);
	EXPECT_ERROR("*1\r\n$-0\r\n", RESP_E_BAD_LENGTH);
	EXPECT_ERROR("*1\r\n$3x\r\nabc\r\n", RESP_E_BAD_LENGTH);
	EXPECT_ERROR("*1\r\n$\r\n", RESP_E_BAD_LENGTH);
	/* Overflowing numbers fail without waiting for the end of the line. */
	EXPECT_ERROR("*99999999999999999999\r\n", RESP_E_BAD_LENGTH);
	EXPECT_ERROR("*1\r\n$-9223372036854775809\r\n", RESP_E_BAD_LENGTH);
	EXPECT_ERROR("*1\r\n$123456789012345678901", RESP_E_BAD_LENGTH);
}

Test(resp_parse, missing_crlf)
{
	EXPECT_ERROR("*1\rX", RESP_E_NO_CRLF);
	EXPECT_ERROR("*1\r\n$3\rX", RESP_E_NO_CRLF);
	EXPECT_ERROR("*1\r\n$3\r\nfooX", RESP_E_NO_CRLF);
	EXPECT_ERROR("*1\r\n$3\r\nfoo\rX", RESP_E_NO_CRLF);
	EXPECT_ERROR("*1\r\n$3\r\nfoo\n\r", RESP_E_NO_CRLF);
}

Test(resp_parse, too_many_args)
{
	struct resp_opts opts = resp_opts_default();

	/* More than the argv capacity. */
	cr_assert_eq(parse_with("*3\r\n", 4, NULL, 2), RESP_E_TOO_MANY_ARGS);
	cr_assert_eq(parse_with("a b c\r\n", 7, NULL, 2), RESP_E_TOO_MANY_ARGS);
	/* Exactly the capacity is fine. */
	cr_assert_eq(parse_with("*2\r\n$1\r\na\r\n$1\r\nb\r\n", 18, NULL, 2), 18);
	cr_assert_eq(parse_with("a b\r\n", 5, NULL, 2), 5);
	/* More than args_max, with room in argv. */
	opts.args_max = 2;
	cr_assert_eq(parse_with("*3\r\n", 4, &opts, ARGV_MAX), RESP_E_TOO_MANY_ARGS);
	cr_assert_eq(parse_with("a b c\r\n", 7, &opts, ARGV_MAX), RESP_E_TOO_MANY_ARGS);
	cr_assert_eq(parse_with("a b\r\n", 5, &opts, ARGV_MAX), 5);
	/* The default limit is Redis's. */
	cr_assert_eq(resp_opts_default().args_max, 1024 * 1024);
}

Test(resp_parse, arg_too_large)
{
	struct resp_opts opts = resp_opts_default();
	char line[64];
	int n;

	/* The default fits a 1 MiB value with room to spare, and no more. */
	cr_assert_geq(opts.bulk_len_max, 1024 * 1024);
	n = snprintf(line, sizeof(line), "*1\r\n$%zu\r\n", opts.bulk_len_max + 1);
	cr_assert_eq(parse_with(line, (size_t)n, NULL, ARGV_MAX), RESP_E_ARG_TOO_LARGE);
	n = snprintf(line, sizeof(line), "*1\r\n$%zu\r\n", opts.bulk_len_max);
	cr_assert_eq(parse_with(line, (size_t)n, NULL, ARGV_MAX), 0, "must wait for the data");

	opts.bulk_len_max = 3;
	cr_assert_eq(parse_with("*1\r\n$4\r\n", 8, &opts, ARGV_MAX), RESP_E_ARG_TOO_LARGE);
	cr_assert_eq(parse_with("*1\r\n$3\r\nabc\r\n", 13, &opts, ARGV_MAX), 13);
	/* The limit holds even for a number that does not fit in size_t. */
	EXPECT_ERROR("*1\r\n$9223372036854775807\r\n", RESP_E_ARG_TOO_LARGE);
}

Test(resp_parse, request_too_large)
{
	struct resp_opts opts = resp_opts_default();
	static const char ok[] = "*2\r\n$3\r\nGET\r\n$8\r\nabcdefgh\r\n"; /* 27 bytes */

	opts.request_len_max = 27;
	cr_assert_eq(parse_with(ok, 27, &opts, ARGV_MAX), 27);
	opts.request_len_max = 26;
	/* Refused at the "$8" header, before the data is buffered. */
	cr_assert_eq(parse_with(ok, 17, &opts, ARGV_MAX), RESP_E_REQUEST_TOO_LARGE);
	/* A count whose smallest arguments cannot fit is refused at once. */
	opts.request_len_max = 64;
	cr_assert_eq(parse_with("*10\r\n", 5, &opts, ARGV_MAX), RESP_E_REQUEST_TOO_LARGE);
	cr_assert_eq(parse_with("*9\r\n", 4, &opts, ARGV_MAX), 0);
	/* A length line that itself ends past the limit. */
	opts.request_len_max = 16;
	cr_assert_eq(parse_with("*2\r\n$3\r\nabc\r\n$1\r\n", 17, &opts, ARGV_MAX),
		     RESP_E_REQUEST_TOO_LARGE);
	cr_assert_eq(parse_with("*2\r\n$3\r\nabc\r\n$1\r", 16, &opts, ARGV_MAX), 0);

	/* Inline lines have their own, tighter limit. */
	opts = resp_opts_default();
	opts.inline_len_max = 8;
	cr_assert_eq(parse_with("12345678\r\n", 10, &opts, ARGV_MAX), 10);
	cr_assert_eq(parse_with("12345678\n", 9, &opts, ARGV_MAX), 9);
	cr_assert_eq(parse_with("123456789\r\n", 11, &opts, ARGV_MAX), RESP_E_INLINE_TOO_LARGE);
	/* Without a newline: 9 bytes may still end in "\r\n", 10 may not. */
	cr_assert_eq(parse_with("12345678\r", 9, &opts, ARGV_MAX), 0);
	cr_assert_eq(parse_with("123456789", 9, &opts, ARGV_MAX), RESP_E_INLINE_TOO_LARGE);
	cr_assert_eq(parse_with("12345678\r\r", 10, &opts, ARGV_MAX), RESP_E_INLINE_TOO_LARGE);
	/* The inline limit has its own error, with Redis's text: it is not the request limit. */
	cr_assert_str_eq(resp_strerror(RESP_E_INLINE_TOO_LARGE), "Protocol error: too big inline request");
}

Test(resp_parse, bad_inline_quoting)
{
	EXPECT_ERROR("SET \"abc\r\n", RESP_E_BAD_QUOTING);
	EXPECT_ERROR("SET 'abc\r\n", RESP_E_BAD_QUOTING);
	EXPECT_ERROR("SET \"abc\"def\r\n", RESP_E_BAD_QUOTING);
	EXPECT_ERROR("SET 'abc'def\r\n", RESP_E_BAD_QUOTING);
	EXPECT_ERROR("SET \"abc\\\"\r\n", RESP_E_BAD_QUOTING);
	EXPECT_ERROR("SET 'abc\\'\r\n", RESP_E_BAD_QUOTING);
	EXPECT_ERROR("\"\n", RESP_E_BAD_QUOTING);
}

Test(resp_parse, error_is_sticky)
{
	static const char bad[] = "*1\r\n+x\r\n";
	static const char good[] = "PING\r\n";
	struct resp_parser p = new_parser(NULL);
	struct resp_arg argv[ARGV_MAX];
	struct resp_cmd cmd = { .argv = argv, .argv_max = ARGV_MAX };
	char *buf = copy_exact(bad, sizeof(bad) - 1);
	char *next = copy_exact(good, sizeof(good) - 1);
	ssize_t rc;

	cr_assert_eq(resp_parse(&p, buf, sizeof(bad) - 1, &cmd), RESP_E_BAD_TYPE);
	cr_assert_eq(resp_parse(&p, next, sizeof(good) - 1, &cmd), RESP_E_BAD_TYPE);
	resp_parser_reset(&p);
	rc = resp_parse(&p, next, sizeof(good) - 1, &cmd);
	expect_argv(&cmd, next, rc, (struct want[]){ S("PING") }, 1);
	free(next);
	free(buf);
}

Test(resp_parse, waits_for_more_data)
{
	cr_assert_eq(parse_with("", 0, NULL, ARGV_MAX), 0);
	cr_assert_eq(parse_with("*", 1, NULL, ARGV_MAX), 0);
	cr_assert_eq(parse_with("*2\r\n$3\r\nGET\r\n", 13, NULL, ARGV_MAX), 0);
	cr_assert_eq(parse_with("GET k", 5, NULL, ARGV_MAX), 0);
}

/*
 * Invariant 2 of resp.c, after a call that returned 0 for the first k bytes:
 * the parser stands where those bytes ran out, so the next call goes on from
 * there.  Either it waits for a bulk's data to reach bulk_end (and its CRLF),
 * comparing lengths only, or the line it searches has been searched up to
 * the last byte (scan; at most the '\r' of a "\r\n" is looked at again).
 * A parser that went back to the command's start (its fast path tried again,
 * a state reset, a line searched from its start) fails this at once.
 */
static void expect_resumes_at_end(const struct resp_parser *p, size_t k)
{
	if (p->scan + 1 >= k || p->bulk_end + 1 >= k)
		return;
	cr_assert_fail("after a prefix of %zu bytes the parser resumes from scan %zu / bulk_end %zu: "
		       "it would read the command again", k, p->scan, p->bulk_end);
}

/*
 * A 1 MiB bulk fed one byte per call, then a command of 100000 one-byte
 * arguments and a 4 MiB inline line fed the same way.  Each call must leave
 * the parser where the bytes ran out (expect_resumes_at_end), so the work is
 * linear in the input; a parser that rescanned from the start each call
 * would also take about 10^12 steps (the timeout only stops such a run).
 */
Test(resp_parse, byte_at_a_time_is_linear, .timeout = 60)
{
	enum { BULK = 1024 * 1024, ARGS = 100000 };
	struct resp_opts opts = resp_opts_default();
	struct resp_parser p = new_parser(&opts);
	static struct resp_arg argv[ARGS];
	struct resp_cmd cmd = { .argv = argv, .argv_max = ARGS };
	size_t cap = 32 + BULK + (size_t)ARGS * 8;
	char *buf = malloc(cap);
	size_t n;
	ssize_t rc = 0;

	cr_assert_not_null(buf);
	n = (size_t)sprintf(buf, "*1\r\n$%d\r\n", BULK);
	for (size_t i = 0; i < BULK; i++)
		buf[n++] = (char)(i * 7);
	buf[n++] = '\r';
	buf[n++] = '\n';
	for (size_t k = 1; k <= n; k++) {
		rc = resp_parse(&p, buf, k, &cmd);
		if (k < n && rc != 0)
			cr_assert_fail("prefix %zu of %zu gave %zd", k, n, rc);
		if (k < n)
			expect_resumes_at_end(&p, k);
	}
	cr_assert_eq(rc, (ssize_t)n);
	cr_assert_eq(cmd.argc, 1);
	cr_assert_eq(cmd.argv[0].len, BULK);
	cr_assert_eq(cmd.argv[0].ptr[BULK - 1], (char)((BULK - 1) * 7));

	n = (size_t)sprintf(buf, "*%d\r\n", ARGS);
	for (size_t i = 0; i < ARGS; i++)
		n += (size_t)sprintf(buf + n, "$1\r\n%c\r\n", 'a' + (int)(i % 26));
	for (size_t k = 1; k <= n; k++) {
		rc = resp_parse(&p, buf, k, &cmd);
		if (k < n && rc != 0)
			cr_assert_fail("prefix %zu of %zu gave %zd", k, n, rc);
		if (k < n)
			expect_resumes_at_end(&p, k);
	}
	cr_assert_eq(rc, (ssize_t)n);
	cr_assert_eq(cmd.argc, ARGS);
	for (size_t i = 0; i < ARGS; i++)
		cr_assert_eq(cmd.argv[i].ptr[0], 'a' + (int)(i % 26));
	free(buf);

	/* A 4 MiB inline line: searching it again from its start on every
	 * call would take about 8 * 10^12 byte comparisons. */
	opts.inline_len_max = 4 * 1024 * 1024;
	p = new_parser(&opts);
	n = opts.inline_len_max + 2;
	buf = malloc(n);
	cr_assert_not_null(buf);
	memset(buf, 'a', n - 2);
	buf[0] = 'E';
	buf[1] = ' ';
	buf[n - 2] = '\r';
	buf[n - 1] = '\n';
	for (size_t k = 1; k <= n; k++) {
		rc = resp_parse(&p, buf, k, &cmd);
		if (k < n && rc != 0)
			cr_assert_fail("prefix %zu of %zu gave %zd", k, n, rc);
		if (k < n)
			expect_resumes_at_end(&p, k);
	}
	cr_assert_eq(rc, (ssize_t)n);
	cr_assert_eq(cmd.argc, 2);
	cr_assert_eq(cmd.argv[1].len, n - 4);
	free(buf);
}

/* Breaking the caller's side of the contract is a programming error: abort. */
Test(resp_parse, shrinking_input_aborts, .signal = SIGABRT)
{
	struct resp_parser p = new_parser(NULL);
	struct resp_arg argv[ARGV_MAX];
	struct resp_cmd cmd = { .argv = argv, .argv_max = ARGV_MAX };
	char buf[] = "*1\r\n$4\r\nPI";

	cr_assert_eq(resp_parse(&p, buf, sizeof(buf) - 1, &cmd), 0);
	resp_parse(&p, buf, sizeof(buf) - 2, &cmd);
	cr_assert_fail("resp_parse() accepted fewer bytes than before");
}

Test(resp_parse, switching_argv_aborts, .signal = SIGABRT)
{
	struct resp_parser p = new_parser(NULL);
	struct resp_arg argv[ARGV_MAX], other[ARGV_MAX];
	struct resp_cmd cmd = { .argv = argv, .argv_max = ARGV_MAX };
	char buf[] = "*1\r\n$4\r\nPI";

	cr_assert_eq(resp_parse(&p, buf, sizeof(buf) - 1, &cmd), 0);
	cmd.argv = other;
	resp_parse(&p, buf, sizeof(buf) - 1, &cmd);
	cr_assert_fail("resp_parse() accepted another argv mid-command");
}

Test(resp_parse, init_rejects_bad_limits)
{
	struct resp_opts opts;
	struct resp_parser p;

	opts = resp_opts_default();
	opts.args_max = 0;
	cr_assert_eq(resp_parser_init(&p, &opts), -EINVAL);
	opts = resp_opts_default();
	opts.inline_len_max = 0;
	cr_assert_eq(resp_parser_init(&p, &opts), -EINVAL);
	opts = resp_opts_default();
	opts.request_len_max = (size_t)SSIZE_MAX + 1;
	cr_assert_eq(resp_parser_init(&p, &opts), -EINVAL);
	opts = resp_opts_default();
	opts.request_len_max = 15;
	cr_assert_eq(resp_parser_init(&p, &opts), -EINVAL);
	/* An inline limit above the request limit is cut down to fit. */
	opts.request_len_max = 16;
	cr_assert_eq(resp_parser_init(&p, &opts), 0);
	cr_assert_eq(parse_with("12345678901234\r\n", 16, &opts, ARGV_MAX), 16);
	cr_assert_eq(parse_with("123456789012345\r\n", 17, &opts, ARGV_MAX),
		     RESP_E_INLINE_TOO_LARGE);
}

Test(resp_strerror, names_every_code)
{
	static const int codes[] = { RESP_E_BAD_TYPE,	   RESP_E_BAD_LENGTH,
				     RESP_E_TOO_MANY_ARGS, RESP_E_ARG_TOO_LARGE,
				     RESP_E_REQUEST_TOO_LARGE, RESP_E_BAD_QUOTING,
				     RESP_E_NO_CRLF, RESP_E_INLINE_TOO_LARGE };
	size_t n = sizeof(codes) / sizeof(codes[0]);

	for (size_t i = 0; i < n; i++) {
		cr_assert_lt(codes[i], -4095, "code %d collides with errno", codes[i]);
		cr_assert_eq(strncmp(resp_strerror(codes[i]), "Protocol error: ", 16), 0);
		for (size_t j = 0; j < i; j++)
			cr_assert_str_neq(resp_strerror(codes[i]), resp_strerror(codes[j]));
	}
	cr_assert_str_eq(resp_strerror(0), "Success");
	cr_assert_str_eq(resp_strerror(-ENOSPC), "No space left on device");
	cr_assert_str_eq(resp_strerror(-99999), "Unknown error");
}

Test(resp_arg, eq_nocase)
{
	struct resp_arg get = { .ptr = "gEt", .len = 3 };
	struct resp_arg nul = { .ptr = "GE\0", .len = 3 };
	struct resp_arg empty = { .ptr = "", .len = 0 };

	cr_assert(resp_arg_eq_nocase(&get, "GET"));
	cr_assert(resp_arg_eq_nocase(&get, "get"));
	cr_assert_not(resp_arg_eq_nocase(&get, "GETX"));
	cr_assert_not(resp_arg_eq_nocase(&get, "GE"));
	cr_assert_not(resp_arg_eq_nocase(&get, "SET"));
	cr_assert_not(resp_arg_eq_nocase(&nul, "GE"));
	cr_assert(resp_arg_eq_nocase(&empty, ""));
	cr_assert_not(resp_arg_eq_nocase(&empty, "A"));
	/* Only ASCII letters fold: '@' (0x40) is not '`' (0x60). */
	cr_assert_not(resp_arg_eq_nocase(&(struct resp_arg){ .ptr = "@", .len = 1 }, "`"));
}

static void expect_ll(const char *s, int rc, long long value)
{
	long long v = 12345;

	cr_assert_eq(resp_parse_ll(s, strlen(s), &v), rc, "\"%s\"", s);
	cr_assert_eq(v, rc == 0 ? value : 12345, "\"%s\" gave %lld", s, v);
}

Test(resp_parse_ll, edge_cases)
{
	expect_ll("0", 0, 0);
	expect_ll("1", 0, 1);
	expect_ll("-1", 0, -1);
	expect_ll("1234567890", 0, 1234567890);
	/* 18 digits take the short loop, 19 the checked one. */
	expect_ll("999999999999999999", 0, 999999999999999999LL);
	expect_ll("-999999999999999999", 0, -999999999999999999LL);
	expect_ll("1000000000000000000", 0, 1000000000000000000LL);
	expect_ll("99999999999999999x", -EINVAL, 0);
	expect_ll("9223372036854775807", 0, LLONG_MAX);
	expect_ll("-9223372036854775808", 0, LLONG_MIN);
	expect_ll("9223372036854775808", -ERANGE, 0);
	expect_ll("-9223372036854775809", -ERANGE, 0);
	expect_ll("18446744073709551616", -ERANGE, 0);
	expect_ll("99999999999999999999999999", -ERANGE, 0);
	expect_ll("", -EINVAL, 0);
	expect_ll("-", -EINVAL, 0);
	expect_ll("+1", -EINVAL, 0);
	expect_ll(" 1", -EINVAL, 0);
	expect_ll("1 ", -EINVAL, 0);
	expect_ll("01", -EINVAL, 0);
	expect_ll("00", -EINVAL, 0);
	expect_ll("-0", -EINVAL, 0);
	expect_ll("-01", -EINVAL, 0);
	expect_ll("1a", -EINVAL, 0);
	expect_ll("0x10", -EINVAL, 0);
	expect_ll("--1", -EINVAL, 0);
	/* Bad syntax wins over overflow. */
	expect_ll("99999999999999999999999x", -EINVAL, 0);
	/* The length bounds the parse: a NUL inside is a bad byte, not an end. */
	long long v;
	cr_assert_eq(resp_parse_ll("12\0", 3, &v), -EINVAL);
	cr_assert_eq(resp_parse_ll("123", 2, &v), 0);
	cr_assert_eq(v, 12);
}

/* Checks that out holds exactly lit. */
#define EXPECT_OUT(out, lit)                                                       \
	do {                                                                       \
		cr_assert_eq((out)->len, sizeof(lit) - 1, "len %zu", (out)->len);  \
		cr_assert_eq(memcmp((out)->buf, (lit), sizeof(lit) - 1), 0,        \
			     "got \"%.*s\"", (int)(out)->len, (out)->buf);         \
	} while (0)

Test(resp_write, byte_exact)
{
	char buf[256];
	struct resp_out out;

#define ONE(call, lit)                                                             \
	do {                                                                       \
		resp_out_init(&out, buf, sizeof(buf));                             \
		cr_assert_eq(call, 0);                                             \
		EXPECT_OUT(&out, lit);                                             \
	} while (0)
	ONE(resp_write_simple(&out, "OK", 2), "+OK\r\n");
	ONE(resp_write_simple(&out, "", 0), "+\r\n");
	ONE(resp_write_error(&out, "ERR syntax error", 16), "-ERR syntax error\r\n");
	ONE(resp_write_errorf(&out, "ERR unknown command '%s'", "FOO"),
	    "-ERR unknown command 'FOO'\r\n");
	ONE(resp_write_int(&out, 0), ":0\r\n");
	ONE(resp_write_int(&out, 42), ":42\r\n");
	ONE(resp_write_int(&out, -7), ":-7\r\n");
	ONE(resp_write_int(&out, LLONG_MAX), ":9223372036854775807\r\n");
	ONE(resp_write_int(&out, LLONG_MIN), ":-9223372036854775808\r\n");
	ONE(resp_write_bulk(&out, "bar", 3), "$3\r\nbar\r\n");
	ONE(resp_write_bulk(&out, "", 0), "$0\r\n\r\n");
	ONE(resp_write_bulk(&out, NULL, 0), "$0\r\n\r\n");
	ONE(resp_write_bulk(&out, "a\r\n\0b", 5), "$5\r\na\r\n\0b\r\n");
	ONE(resp_write_null_bulk(&out), "$-1\r\n");
	ONE(resp_write_array_len(&out, 0), "*0\r\n");
	ONE(resp_write_array_len(&out, 1234), "*1234\r\n");
	ONE(resp_write_null_array(&out), "*-1\r\n");
#undef ONE
	/* Replies append. */
	resp_out_init(&out, buf, sizeof(buf));
	cr_assert_eq(resp_write_array_len(&out, 2), 0);
	cr_assert_eq(resp_write_bulk(&out, "k", 1), 0);
	cr_assert_eq(resp_write_null_bulk(&out), 0);
	EXPECT_OUT(&out, "*2\r\n$1\r\nk\r\n$-1\r\n");
}

Test(resp_write, error_and_simple_lose_crlf)
{
	char buf[64];
	struct resp_out out;

	resp_out_init(&out, buf, sizeof(buf));
	cr_assert_eq(resp_write_error(&out, "ERR a\r\nb\n", 9), 0);
	EXPECT_OUT(&out, "-ERR a  b \r\n");
	resp_out_init(&out, buf, sizeof(buf));
	cr_assert_eq(resp_write_errorf(&out, "ERR bad '%s'", "x\r\ny"), 0);
	EXPECT_OUT(&out, "-ERR bad 'x  y'\r\n");
	resp_out_init(&out, buf, sizeof(buf));
	cr_assert_eq(resp_write_simple(&out, "O\rK", 3), 0);
	EXPECT_OUT(&out, "+O K\r\n");
}

/*
 * Each writer, given every capacity below what its reply needs, returns
 * -ENOSPC and leaves the length and the bytes after it alone; at the exact
 * size it succeeds.
 */
static void expect_all_or_nothing(int (*write)(struct resp_out *), const char *want, size_t n)
{
	char buf[128];

	cr_assert_lt(n, sizeof(buf));
	for (size_t room = 0; room <= n; room++) {
		struct resp_out out;

		memset(buf, '#', sizeof(buf));
		resp_out_init(&out, buf, 5 + room);
		out.len = 5;
		if (room < n) {
			cr_assert_eq(write(&out), -ENOSPC, "room %zu of %zu", room, n);
			cr_assert_eq(out.len, 5);
			for (size_t i = 0; i < sizeof(buf); i++)
				cr_assert_eq(buf[i], '#', "byte %zu written with room %zu", i, room);
		} else {
			cr_assert_eq(write(&out), 0);
			cr_assert_eq(out.len, 5 + n);
			cr_assert_eq(memcmp(buf + 5, want, n), 0);
		}
	}
}

static int w_simple(struct resp_out *o) { return resp_write_simple(o, "PONG", 4); }
static int w_error(struct resp_out *o) { return resp_write_error(o, "ERR x", 5); }
static int w_errorf(struct resp_out *o) { return resp_write_errorf(o, "ERR %d", 12); }
static int w_int(struct resp_out *o) { return resp_write_int(o, LLONG_MIN); }
static int w_bulk(struct resp_out *o) { return resp_write_bulk(o, "0123456789", 10); }
static int w_null_bulk(struct resp_out *o) { return resp_write_null_bulk(o); }
static int w_array(struct resp_out *o) { return resp_write_array_len(o, 100); }
static int w_null_array(struct resp_out *o) { return resp_write_null_array(o); }

Test(resp_write, all_or_nothing)
{
	expect_all_or_nothing(w_simple, "+PONG\r\n", 7);
	expect_all_or_nothing(w_error, "-ERR x\r\n", 8);
	expect_all_or_nothing(w_errorf, "-ERR 12\r\n", 9);
	expect_all_or_nothing(w_int, ":-9223372036854775808\r\n", 23);
	expect_all_or_nothing(w_bulk, "$10\r\n0123456789\r\n", 17);
	expect_all_or_nothing(w_null_bulk, "$-1\r\n", 5);
	expect_all_or_nothing(w_array, "*100\r\n", 6);
	expect_all_or_nothing(w_null_array, "*-1\r\n", 5);
}

Test(resp_write, bulk_size)
{
	cr_assert_eq(resp_bulk_size(0), 6);
	cr_assert_eq(resp_bulk_size(3), 9);
	cr_assert_eq(resp_bulk_size(10), 17);
	cr_assert_eq(resp_bulk_size(1024 * 1024), 1 + 7 + 2 + 1024 * 1024 + 2);
	cr_assert_eq(resp_bulk_size(SIZE_MAX), SIZE_MAX);
}

/* What the writer encodes as a request, the parser reads back unchanged. */
Test(resp_write, round_trip_through_parser)
{
	static const struct want args[] = { S("MSET"), S(""), S("\r\n"), S("\0\0\0"),
					    S("*1\r\n$1\r\nx\r\n") };
	size_t n = sizeof(args) / sizeof(args[0]);
	char wire[256];
	struct resp_out out;
	struct resp_parser p = new_parser(NULL);
	struct resp_arg argv[ARGV_MAX];
	struct resp_cmd cmd = { .argv = argv, .argv_max = ARGV_MAX };
	ssize_t rc;

	resp_out_init(&out, wire, sizeof(wire));
	cr_assert_eq(resp_write_array_len(&out, n), 0);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(resp_write_bulk(&out, args[i].s, args[i].len), 0);
	rc = resp_parse(&p, wire, out.len, &cmd);
	cr_assert_eq(rc, (ssize_t)out.len);
	expect_argv(&cmd, wire, rc, args, n);
}
