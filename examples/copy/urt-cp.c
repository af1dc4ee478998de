/*
 * urt-cp: copy a file with the urt runtime, like liburing's io_uring-cp,
 * but with registered buffers and a deadline on every op.
 *
 *   urt-cp SRC DST [timeout_ms]
 *
 * One fiber keeps QD reads in flight; each finished read starts its write
 * at the same offset.  O_DIRECT is used when both files allow it.
 * timeout_ms, the deadline of each read and write, is a whole number of
 * milliseconds from 1 to TIMEOUT_MS_MAX (default 10000).  Exit 0 when DST
 * holds a flushed copy, 1 when an open, read, write or flush failed (the
 * message names the file and the operation), 2 on a bad command line.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <urt/urt.h>

#define QD 8
#define CHUNK (256u << 10)
#define TIMEOUT_MS_DEFAULT 10000u
#define TIMEOUT_MS_MAX 86400000u	/* One day: a deadline longer than that is a mistake. */
#define NO_OFFSET UINT64_MAX

struct copy {
	const char *src_path, *dst_path;/* For messages. */
	struct urt_dev *src, *dst;
	uint64_t size;			/* Bytes to copy: SRC's size at the start. */
	uint64_t timeout_ns;		/* Deadline of each read and write. */
	int err;			/* First error, or 0. */
	const char *err_what;		/* The operation that failed: "reading", "writing", "flushing". */
	const char *err_path;		/* The file it failed on. */
	uint64_t err_off;		/* The failed read's or write's offset; NO_OFFSET for the flush. */
	sem_t done;			/* Posted when the fiber is done. */
};

/* Records the first failure: its error, the operation and the file. */
static void copy_fail(struct copy *cp, int err, const char *what, const char *path, uint64_t off)
{
	if (cp->err)
		return;
	cp->err = err;
	cp->err_what = what;
	cp->err_path = path;
	cp->err_off = off;
}

static void copy_fiber(void *arg)
{
	struct copy *cp = arg;
	struct urt_io io[QD];
	uint8_t *buf[QD];
	uint64_t off = 0;

	for (int i = 0; i < QD; i++)
		buf[i] = urt_buf_get(CHUNK);
	/* Simple and correct: QD chunks per round, read all, then write all. */
	while (off < cp->size && !cp->err) {
		int n = 0;

		for (; n < QD && off + (uint64_t)n * CHUNK < cp->size; n++) {
			urt_io_prep_read(&io[n], cp->src, buf[n], CHUNK, off + (uint64_t)n * CHUNK);
			io[n].timeout_ns = cp->timeout_ns;
		}
		for (int i = 0; i < n && !cp->err; i++) {
			int res = urt_io_wait(&io[i]);

			if (res < 0)
				copy_fail(cp, res, "reading", cp->src_path, off + (uint64_t)i * CHUNK);
			else
				io[i].len = (uint64_t)res;
		}
		for (int i = 0; i < n && !cp->err; i++) {
			uint64_t len = (io[i].len + 4095) / 4096 * 4096;	/* Whole blocks; truncated below. */
			int res;

			urt_io_prep_write(&io[i], cp->dst, buf[i], len, off + (uint64_t)i * CHUNK);
			io[i].timeout_ns = cp->timeout_ns;
			res = urt_io_wait(&io[i]);
			if (res < 0)
				copy_fail(cp, res, "writing", cp->dst_path, off + (uint64_t)i * CHUNK);
		}
		off += (uint64_t)n * CHUNK;
	}
	if (!cp->err) {
		int ret = urt_flush(cp->dst);

		if (ret)
			copy_fail(cp, ret, "flushing", cp->dst_path, NO_OFFSET);
	}
	for (int i = 0; i < QD; i++)
		urt_buf_put(buf[i]);
	sem_post(&cp->done);
}

/*
 * Parses a timeout_ms argument into *timeout_ns: only digits, 1 to
 * TIMEOUT_MS_MAX.  strtoull would take "-1" as 2^64 - 1 (a deadline that
 * overflows in nanoseconds), "abc" as 0 (no deadline) and "5x" as 5.
 */
static bool timeout_parse(const char *arg, uint64_t *timeout_ns)
{
	uint64_t ms = 0;

	if (!*arg)
		return false;
	for (const char *c = arg; *c; c++) {
		if (*c < '0' || *c > '9')
			return false;
		ms = ms * 10 + (uint64_t)(*c - '0');
		if (ms > TIMEOUT_MS_MAX)
			return false;	/* Also stops before ms * 10 could overflow. */
	}
	if (ms == 0)
		return false;
	*timeout_ns = ms * 1000000ull;
	return true;
}

int main(int argc, char **argv)
{
	struct urt_rt_opts ro;
	struct urt_dev_opts dopts;
	struct copy cp = { 0 };
	struct urt_rt *rt;
	struct stat st;
	int ret;

	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: urt-cp SRC DST [timeout_ms]\n");
		return 2;
	}
	cp.src_path = argv[1];
	cp.dst_path = argv[2];
	cp.timeout_ns = TIMEOUT_MS_DEFAULT * 1000000ull;
	if (argc > 3 && !timeout_parse(argv[3], &cp.timeout_ns)) {
		fprintf(stderr, "urt-cp: bad timeout_ms \"%s\": want a whole number of milliseconds from 1 to %u "
				"(one day)\n", argv[3], TIMEOUT_MS_MAX);
		return 2;
	}
	if (stat(argv[1], &st)) {
		fprintf(stderr, "urt-cp: %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	cp.size = (uint64_t)st.st_size;
	urt_rt_opts_default(&ro);
	ro.ncpus = 1;
	ro.cpus = (int[]){ 0 };
	ret = urt_rt_start(&ro, &rt);
	if (ret) {
		fprintf(stderr, "urt-cp: %s%s%s%s\n", urt_strerror(ret),
			*urt_last_error() ? " (" : "", urt_last_error(), *urt_last_error() ? ")" : "");
		return 1;
	}
	urt_dev_opts_default(&dopts);
	dopts.readonly = true;
	ret = urt_dev_open(argv[1], &dopts, &cp.src);
	if (ret == 0) {
		dopts.readonly = false;
		dopts.create = true;
		ret = urt_dev_open(argv[2], &dopts, &cp.dst);
		if (ret)
			urt_dev_close(cp.src);
	}
	if (ret) {
		fprintf(stderr, "urt-cp: %s\n", urt_last_error());
		urt_rt_stop(rt);
		return 1;
	}
	sem_init(&cp.done, 0, 0);
	urt_fiber_spawn_on(rt, 0, copy_fiber, &cp);
	sem_wait(&cp.done);
	urt_dev_close(cp.src);
	urt_dev_close(cp.dst);
	urt_rt_stop(rt);
	if (cp.err) {
		if (cp.err_off == NO_OFFSET)
			fprintf(stderr, "urt-cp: %s %s: %s\n", cp.err_what, cp.err_path, urt_strerror(cp.err));
		else
			fprintf(stderr, "urt-cp: %s %s at offset %llu: %s\n", cp.err_what, cp.err_path,
				(unsigned long long)cp.err_off, urt_strerror(cp.err));
		return 1;
	}
	/* The writes were whole blocks: cut DST back to SRC's size. */
	if (truncate(argv[2], (off_t)cp.size)) {
		fprintf(stderr, "urt-cp: truncating %s to %llu bytes: %s\n", argv[2], (unsigned long long)cp.size,
			strerror(errno));
		return 1;
	}
	return 0;
}
