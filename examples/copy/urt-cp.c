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
 * holds a flushed copy, 1 when an open, read, write or flush failed, 2 on a
 * bad command line.
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

struct copy {
	struct urt_dev *src, *dst;
	uint64_t size;
	uint64_t timeout_ns;
	int err;
	sem_t done;
};

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
				cp->err = res;
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
				cp->err = res;
		}
		off += (uint64_t)n * CHUNK;
	}
	if (!cp->err)
		cp->err = urt_flush(cp->dst);
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
	if (!cp.err && truncate(argv[2], (off_t)cp.size))
		cp.err = -errno;
	if (cp.err) {
		fprintf(stderr, "urt-cp: %s\n", urt_strerror(cp.err));
		return 1;
	}
	return 0;
}
