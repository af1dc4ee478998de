/* SPDX-License-Identifier: MIT */
/*
 * fuzz_resp.c - libFuzzer target of the urkv RESP2 parser.
 *
 * The first three bytes of an input choose the limits, how the stream is cut
 * into chunks, and whether the rest is the byte stream a client sends or
 * opcodes that generate() turns into a mostly well-formed stream.  The stream is
 * parsed twice, all at once and chunk by chunk (every call on a fresh heap
 * copy of exactly the pending bytes, so AddressSanitizer sees any read past
 * len and any stale pointer into an earlier copy), and the two transcripts of
 * commands and errors must be equal.  Each complete command must also lie in
 * the bytes it consumed, and survive a round trip through the reply writer.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ARGV_MAX 64

/* Aborts with a message; libFuzzer reports the input that got here. */
#define CHECK(cond)                                                                \
	do {                                                                       \
		if (!(cond)) {                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,     \
				__LINE__, #cond);                                  \
			abort();                                                   \
		}                                                                  \
	} while (0)

/* A growing record of everything one run of the parser produced. */
struct transcript {
	unsigned char *buf; /* Heap bytes. */
	size_t len;	    /* Bytes used. */
	size_t cap;	    /* Bytes allocated. */
};

static void record(struct transcript *t, const void *p, size_t n)
{
	if (t->len + n > t->cap) {
		size_t cap = t->cap ? t->cap : 256;

		while (cap < t->len + n)
			cap *= 2;
		t->buf = realloc(t->buf, cap);
		CHECK(t->buf != NULL);
		t->cap = cap;
	}
	memcpy(t->buf + t->len, p, n);
	t->len += n;
}

static void record_u64(struct transcript *t, uint64_t v)
{
	record(t, &v, sizeof(v));
}

static bool is_resp_error(ssize_t rc)
{
	switch (rc) {
	case RESP_E_BAD_TYPE:
	case RESP_E_BAD_LENGTH:
	case RESP_E_TOO_MANY_ARGS:
	case RESP_E_ARG_TOO_LARGE:
	case RESP_E_REQUEST_TOO_LARGE:
	case RESP_E_BAD_QUOTING:
	case RESP_E_NO_CRLF:
	case RESP_E_INLINE_TOO_LARGE:
		return true;
	default:
		return false;
	}
}

/* The helpers, checked against each argument of a complete command. */
static void check_helpers(const struct resp_arg *a)
{
	char *z = malloc(a->len + 1);
	char out_buf[64];
	struct resp_out out;
	long long v;
	int rc;

	CHECK(z != NULL);
	memcpy(z, a->ptr, a->len);
	z[a->len] = '\0';

	/* An argument equals its own NUL-terminated copy iff it has no NUL. */
	CHECK(resp_arg_eq_nocase(a, z) == (memchr(a->ptr, '\0', a->len) == NULL));

	/* A strictly parsed integer is in canonical form, so it prints back the same. */
	rc = resp_parse_ll(a->ptr, a->len, &v);
	CHECK(rc == 0 || rc == -EINVAL || rc == -ERANGE);
	if (rc == 0) {
		CHECK(strtoll(z, NULL, 10) == v);
		resp_out_init(&out, out_buf, sizeof(out_buf));
		CHECK(resp_write_int(&out, v) == 0);
		CHECK(out.len == a->len + 3);
		CHECK(memcmp(out.buf + 1, a->ptr, a->len) == 0);
	}
	free(z);
}

/* Encodes a command as a multibulk request and parses it back. */
static void check_round_trip(const struct resp_cmd *cmd)
{
	struct resp_opts opts = resp_opts_default();
	struct resp_arg argv[ARGV_MAX];
	struct resp_cmd back = { .argv = argv, .argv_max = ARGV_MAX };
	struct resp_parser p;
	struct resp_out out;
	size_t cap = 32;
	char *wire;

	for (size_t i = 0; i < cmd->argc; i++)
		cap += resp_bulk_size(cmd->argv[i].len);
	wire = malloc(cap);
	CHECK(wire != NULL);
	resp_out_init(&out, wire, cap);
	CHECK(resp_write_array_len(&out, cmd->argc) == 0);
	for (size_t i = 0; i < cmd->argc; i++)
		CHECK(resp_write_bulk(&out, cmd->argv[i].ptr, cmd->argv[i].len) == 0);
	CHECK(resp_parser_init(&p, &opts) == 0);
	CHECK(resp_parse(&p, wire, out.len, &back) == (ssize_t)out.len);
	CHECK(back.argc == cmd->argc);
	for (size_t i = 0; i < cmd->argc; i++) {
		CHECK(back.argv[i].len == cmd->argv[i].len);
		CHECK(memcmp(back.argv[i].ptr, cmd->argv[i].ptr, cmd->argv[i].len) == 0);
	}
	free(wire);

	/* Error and status replies made of the first argument stay on one
	 * line, and one byte too little room writes nothing. */
	if (cmd->argc > 0) {
		char line[128];
		size_t n = cmd->argv[0].len < 100 ? cmd->argv[0].len : 100;
		const char *arg = cmd->argv[0].ptr;

		for (int kind = 0; kind < 3; kind++) {
			int rc;

			if (kind == 2 && memchr(arg, '\0', n) != NULL)
				continue; /* %.*s would stop at the NUL. */
			resp_out_init(&out, line, n + 3);
			rc = kind == 0 ? resp_write_error(&out, arg, n) :
			     kind == 1 ? resp_write_simple(&out, arg, n) :
					 resp_write_errorf(&out, "%.*s", (int)n, arg);
			CHECK(rc == 0);
			CHECK(out.len == n + 3);
			CHECK(line[0] == (kind == 1 ? '+' : '-'));
			CHECK(memchr(line, '\r', n + 1) == NULL);
			CHECK(memchr(line, '\n', n + 1) == NULL);
			CHECK(memcmp(line + n + 1, "\r\n", 2) == 0);
			out.len = 0;
			out.cap = n + 2;
			rc = kind == 0 ? resp_write_error(&out, arg, n) :
			     kind == 1 ? resp_write_simple(&out, arg, n) :
					 resp_write_errorf(&out, "%.*s", (int)n, arg);
			CHECK(rc == -ENOSPC && out.len == 0);
		}
	}
}

/* Checks and records one complete command parsed from buf. */
static void command_parsed(struct transcript *t, const char *buf, ssize_t rc,
			   const struct resp_cmd *cmd, bool check)
{
	record_u64(t, (uint64_t)rc);
	record_u64(t, cmd->argc);
	CHECK(cmd->argc <= cmd->argv_max);
	for (size_t i = 0; i < cmd->argc; i++) {
		const struct resp_arg *a = &cmd->argv[i];

		CHECK(a->ptr >= buf && a->len <= (size_t)rc &&
		      (size_t)(a->ptr - buf) <= (size_t)rc - a->len);
		record_u64(t, (uint64_t)(a->ptr - buf));
		record_u64(t, a->len);
		record(t, a->ptr, a->len);
		if (check)
			check_helpers(a);
	}
	if (check)
		check_round_trip(cmd);
}

/* A small xorshift generator, seeded from the input, that places the cuts. */
static uint32_t next_cut(uint32_t *state)
{
	uint32_t x = *state;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*state = x;
	return x;
}

/*
 * Parses stream[0, size) as a connection would, receiving it in chunks whose
 * sizes come from cut_seed (0: all at once), and records the outcome.
 */
static void run(struct transcript *t, const struct resp_opts *opts, size_t argv_max,
		const uint8_t *stream, size_t size, uint8_t cut_seed, bool check)
{
	struct resp_arg argv[ARGV_MAX];
	struct resp_cmd cmd = { .argv = argv, .argv_max = argv_max };
	struct resp_parser p;
	uint32_t rng = 0x9e3779b9u ^ cut_seed;
	size_t off = 0, received = cut_seed ? 0 : size;

	CHECK(resp_parser_init(&p, opts) == 0);
	for (;;) {
		size_t pending;
		char *buf;
		ssize_t rc;

		if (received < size) {
			/* Mostly short cuts, and now and then a long one. */
			uint32_t r = next_cut(&rng);
			size_t chunk = cut_seed & 1 ? 1 : (r & 7) == 0 ? r >> 8 : 1 + (r >> 8) % 8;

			/* Each call copies all pending bytes; about 256 calls per
			 * stream keep that copying from dominating the run. */
			if (chunk < size / 256)
				chunk = size / 256;

			received = chunk < size - received ? received + chunk : size;
		}
		pending = received - off;
		buf = malloc(pending ? pending : 1);
		CHECK(buf != NULL);
		memcpy(buf, stream + off, pending);
		rc = resp_parse(&p, buf, pending, &cmd);
		CHECK(rc <= (ssize_t)pending);
		if (rc > 0) {
			command_parsed(t, buf, rc, &cmd, check);
			off += (size_t)rc;
		} else if (rc < 0) {
			CHECK(is_resp_error(rc));
			/* The error sticks. */
			CHECK(resp_parse(&p, buf, pending, &cmd) == rc);
			record_u64(t, (uint64_t)rc);
		} else if (received == size) {
			/* An incomplete tail: record how long it is. */
			record_u64(t, 0);
			record_u64(t, pending);
		}
		free(buf);
		if (rc < 0 || (rc == 0 && received == size))
			return;
	}
}

/* Longest stream generate() writes. */
#define GENERATED_MAX (64 * 1024)

/* Appends n bytes to the generated stream, as far as they fit. */
static void emit(uint8_t *out, size_t *len, const void *p, size_t n)
{
	if (n > GENERATED_MAX - *len)
		n = GENERATED_MAX - *len;
	memcpy(out + *len, p, n);
	*len += n;
}

static void emit_bulk(uint8_t *out, size_t *len, long long header_len, const uint8_t *data,
		      size_t avail, size_t data_len, const char *end)
{
	char line[32];
	int n = snprintf(line, sizeof(line), "$%lld\r\n", header_len);

	emit(out, len, line, (size_t)n);
	emit(out, len, data, data_len < avail ? data_len : avail);
	/* Short input pads the bulk, so its header stays true. */
	for (size_t i = avail; i < data_len; i++)
		emit(out, len, "z", 1);
	emit(out, len, end, 2);
}

/*
 * Turns in[0, n) into a RESP stream, one opcode byte and its operands at a
 * time: mostly well-formed multibulk and inline commands, whose lengths are
 * hard for a byte-level mutator to get right, mixed with raw bytes and
 * lengths that are off by a little.  Returns the stream's length.
 */
static size_t generate(uint8_t *out, const uint8_t *in, size_t n)
{
	size_t len = 0, i = 0;

	while (i + 1 < n && len < GENERATED_MAX) {
		uint8_t op = in[i], arg = in[i + 1];
		char line[32];
		size_t k;

		i += 2;
		switch (op % 8) {
		case 0: /* An array header, sometimes a negative one. */
			snprintf(line, sizeof(line), "*%d\r\n", arg >= 240 ? 239 - arg : arg % 16);
			emit(out, &len, line, strlen(line));
			break;
		case 1: /* A short bulk. */
		case 2:
			k = arg % 32;
			emit_bulk(out, &len, (long long)k, in + i, n - i, k, "\r\n");
			i += k < n - i ? k : n - i;
			break;
		case 3: /* A long bulk. */
			k = (size_t)arg * 64;
			emit_bulk(out, &len, (long long)k, in + i, n - i, k, "\r\n");
			i += k < n - i ? k : n - i;
			break;
		case 4: /* Raw bytes. */
			k = arg % 8;
			k = k < n - i ? k : n - i;
			emit(out, &len, in + i, k);
			i += k;
			break;
		case 5: /* An inline line. */
			k = arg % 16;
			k = k < n - i ? k : n - i;
			emit(out, &len, in + i, k);
			emit(out, &len, "\r\n", 2);
			i += k;
			break;
		case 6: /* A bulk whose header lies by -6 to +1 bytes, or a bad CRLF. */
			k = arg % 32;
			emit_bulk(out, &len, (long long)k + 1 - (arg >> 5), in + i, n - i, k,
				  arg >> 5 == 1 ? "\r\r" : "\r\n");
			i += k < n - i ? k : n - i;
			break;
		default: /* A whole command of 1 to 4 short bulks. */
			snprintf(line, sizeof(line), "*%d\r\n", arg % 4 + 1);
			emit(out, &len, line, strlen(line));
			for (int a = 0; a <= arg % 4; a++) {
				k = (size_t)(arg >> 2) % 8 + (size_t)a;
				emit_bulk(out, &len, (long long)k, in + i, n - i, k, "\r\n");
				i += k < n - i ? k : n - i;
			}
			break;
		}
	}
	return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t generated[GENERATED_MAX];
	struct transcript whole = { 0 }, chunked = { 0 };
	struct resp_opts opts = resp_opts_default();
	size_t argv_max = ARGV_MAX;
	uint8_t limits, cut_seed, mode;

	if (size < 3)
		return 0;
	limits = data[0];
	cut_seed = data[1] ? data[1] : 1;
	mode = data[2];
	/* Half the inputs are raw streams, half are opcodes for generate(). */
	if (mode & 1) {
		size = generate(generated, data + 3, size - 3);
		data = generated;
	} else {
		data += 3;
		size -= 3;
	}

	/* Half the inputs run with small limits, so that each one is reached. */
	if (limits & 1) {
		opts.args_max = 1 + (limits >> 1 & 7);
		opts.bulk_len_max = (size_t)(limits >> 4) * 4;
		opts.inline_len_max = 8 + (limits >> 4) * 8;
		opts.request_len_max = 16 + (size_t)(mode >> 1) * 4;
		argv_max = 1 + (limits >> 3 & 15);
	}

	run(&whole, &opts, argv_max, data, size, 0, true);
	run(&chunked, &opts, argv_max, data, size, cut_seed, false);
	CHECK(whole.len == chunked.len);
	CHECK(memcmp(whole.buf, chunked.buf, whole.len) == 0);
	free(whole.buf);
	free(chunked.buf);
	return 0;
}
