/*
 * ps-example: the urt page store embedded in a program, through the public
 * headers only.
 *
 *   ps-example [--] DATA_FILE
 *   ps-example -h | --help
 *
 * The first run creates DATA_FILE (8 MiB), formats it and commits 16
 * transactions, each writing a counter into page 1 and a line into page
 * 2 + i; every commit returns only once its log batch is durable.  Each
 * later run reopens the store (recovering from the log if the last run
 * crashed), checks what the earlier runs committed, and commits 16 more.
 * Exit 0 when everything committed before is there, 1 on an error, 2 on a
 * bad command line.
 *
 * The page store assumes it is the only writer of its device: the library
 * takes no lock, because the caller owns the device and knows who else may
 * use it (a partition, a file shared with a backup tool).  Two programs
 * committing to one store at once would each overwrite the other's pages
 * and log, and both would report success.  So this program, as the owner,
 * holds an exclusive flock(2) on DATA_FILE for its whole run and refuses
 * when another process holds one (another ps-example, or urkv, which locks
 * its file the same way).
 *
 * Only an empty file (the one just created, or one left empty) is sized to
 * 8 MiB; an existing file is opened at its own size, and the page store
 * refuses one that holds anything but a store, so a mistyped path changes
 * nothing.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <urt/urt.h>

#define PER_RUN 16
#define STORE_BYTES (8u << 20)	/* Size of a new store, its log and pages together. */
/*
 * No store is smaller than its two 4 KiB superblock slots (docs/format.md).
 * urt_ps_open refuses a shorter file only with a bare -EIO (a short read),
 * so the example says why itself.
 */
#define STORE_BYTES_MIN 8192u

struct demo {
	struct urt_dev *dev;	/* The data file. */
	int ret;		/* First error, or 0. */
	char why[512];		/* urt_last_error() of that error, copied on the reactor's thread. */
	uint64_t before;	/* Transactions committed by earlier runs. */
	sem_t done;		/* Posted when the fiber is done. */
};

static int check_and_commit(struct demo *d, struct urt_ps *ps)
{
	struct urt_tx *tx;
	void *p;
	int ret;

	/* Page 1 holds the number of transactions committed so far. */
	if ((ret = urt_tx_begin(ps, &tx)) || (ret = urt_page_get(tx, 1, URT_PAGE_READ, &p)))
		return ret;
	memcpy(&d->before, p, sizeof(d->before));
	for (uint64_t i = 0; i < d->before; i++) {
		char want[64];

		snprintf(want, sizeof(want), "transaction %" PRIu64, i);
		ret = urt_page_get(tx, 2 + i % 1000, URT_PAGE_READ, &p);
		if (ret)
			return ret;
		if (i + 1000 >= d->before && strcmp(p, want) != 0) {
			fprintf(stderr, "page %" PRIu64 " lost \"%s\"\n", 2 + i % 1000, want);
			urt_tx_abort(tx);
			return URT_E_CORRUPT;
		}
	}
	if ((ret = urt_tx_commit(tx)))
		return ret;
	for (uint64_t i = d->before; i < d->before + PER_RUN; i++) {
		uint64_t n = i + 1;

		if ((ret = urt_tx_begin(ps, &tx)))
			return ret;
		if ((ret = urt_page_get(tx, 1, URT_PAGE_WRITE, &p))) {
			urt_tx_abort(tx);
			return ret;
		}
		memcpy(p, &n, sizeof(n));
		if ((ret = urt_page_get(tx, 2 + i % 1000, URT_PAGE_WRITE, &p))) {
			urt_tx_abort(tx);
			return ret;
		}
		snprintf(p, 64, "transaction %" PRIu64, i);
		if ((ret = urt_tx_commit(tx)))	/* Returns once durable. */
			return ret;
	}
	return 0;
}

static void demo_fiber(void *arg)
{
	struct demo *d = arg;
	struct urt_ps_opts o;
	struct urt_ps *ps;

	urt_ps_opts_default(&o);
	o.create = true;	/* Format a blank file; recover an existing store. */
	d->ret = urt_ps_open(d->dev, &o, &ps);
	if (d->ret == 0) {
		d->ret = check_and_commit(d, ps);
		if (urt_ps_close(ps) && !d->ret)
			d->ret = -EIO;
	}
	if (d->ret)
		snprintf(d->why, sizeof(d->why), "%s", urt_last_error());
	sem_post(&d->done);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: ps-example [--] DATA_FILE\n"
		   "       ps-example -h | --help\n"
		   "Creates DATA_FILE as an 8 MiB urt page store if it does not exist (or is empty),\n"
		   "checks the transactions earlier runs committed, and commits %d more.\n", PER_RUN);
}

/*
 * The DATA_FILE argument, or NULL with *exit_code set: 0 after -h/--help,
 * 2 for an unknown option or a wrong number of arguments.  An argument that
 * starts with '-' is an option, never a file name, unless it follows "--".
 */
static const char *parse_args(int argc, char **argv, int *exit_code)
{
	const char *path = NULL;
	bool options = true;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (options && strcmp(a, "--") == 0) {
			options = false;
		} else if (options && (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)) {
			usage(stdout);
			*exit_code = 0;
			return NULL;
		} else if (options && a[0] == '-') {
			fprintf(stderr, "ps-example: unknown option %s (a file name that starts with '-' "
					"goes after \"--\")\n", a);
			usage(stderr);
			*exit_code = 2;
			return NULL;
		} else if (path) {
			fprintf(stderr, "ps-example: one DATA_FILE expected, got %s and %s\n", path, a);
			usage(stderr);
			*exit_code = 2;
			return NULL;
		} else {
			path = a;
		}
	}
	if (!path) {
		usage(stderr);
		*exit_code = 2;
	}
	return path;
}

/*
 * Claims path for this run: opens it (creating it when missing) and takes an
 * exclusive flock(2), held until the returned descriptor is closed.  Only
 * then, with no other ps-example able to be sizing or writing it, an empty
 * regular file is sized to STORE_BYTES; a file with anything in it keeps its
 * size, and one too short to be a store is refused here.  Returns the
 * descriptor, or -1 after saying why on stderr.
 */
static int store_claim(const char *path)
{
	struct stat st;
	int fd;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "ps-example: cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno == EWOULDBLOCK)
			fprintf(stderr, "ps-example: %s is in use: another process (another ps-example?) holds "
					"its lock; not opening it, as two writers would overwrite each other's "
					"transactions\n", path);
		else
			fprintf(stderr, "ps-example: cannot lock %s: %s\n", path, strerror(errno));
		goto err_close;
	}
	if (fstat(fd, &st) != 0) {
		fprintf(stderr, "ps-example: cannot stat %s: %s\n", path, strerror(errno));
		goto err_close;
	}
	/* Empty: new, or left by a run that stopped before sizing it.  Nothing in it to lose. */
	if (S_ISREG(st.st_mode) && st.st_size == 0 && ftruncate(fd, STORE_BYTES) != 0) {
		fprintf(stderr, "ps-example: cannot size %s to %u bytes: %s\n", path, STORE_BYTES,
			strerror(errno));
		goto err_close;
	}
	if (S_ISREG(st.st_mode) && st.st_size > 0 && (uint64_t)st.st_size < STORE_BYTES_MIN) {
		fprintf(stderr, "ps-example: %s holds %lld bytes, too few for a urt page store (at least %u); "
				"not touching it\n", path, (long long)st.st_size, STORE_BYTES_MIN);
		goto err_close;
	}
	return fd;

err_close:
	close(fd);
	return -1;
}

int main(int argc, char **argv)
{
	struct urt_rt_opts ro;
	struct urt_dev_opts dopts;
	struct demo d = { 0 };
	struct urt_rt *rt;
	const char *path;
	int lock_fd, ret;

	path = parse_args(argc, argv, &ret);
	if (!path)
		return ret;
	lock_fd = store_claim(path);
	if (lock_fd < 0)
		return 1;
	urt_rt_opts_default(&ro);
	ret = urt_rt_start(&ro, &rt);
	if (ret) {
		fprintf(stderr, "ps-example: %s%s%s%s\n", urt_strerror(ret),
			*urt_last_error() ? " (" : "", urt_last_error(), *urt_last_error() ? ")" : "");
		goto err_unlock;
	}
	/* store_claim made and sized the file: open it at its own size, creating and growing nothing. */
	urt_dev_opts_default(&dopts);
	ret = urt_dev_open(path, &dopts, &d.dev);
	if (ret) {
		fprintf(stderr, "ps-example: %s\n", urt_last_error());
		goto err_stop;
	}
	sem_init(&d.done, 0, 0);
	urt_fiber_spawn_on(rt, 0, demo_fiber, &d);
	sem_wait(&d.done);
	urt_dev_close(d.dev);
	urt_rt_stop(rt);
	close(lock_fd);
	if (d.ret) {
		fprintf(stderr, "ps-example: %s: %s%s%s%s\n", path, urt_strerror(d.ret), d.why[0] ? " (" : "",
			d.why, d.why[0] ? ")" : "");
		return 1;
	}
	printf("ps-example: %" PRIu64 " transactions found, %d more committed\n", d.before, PER_RUN);
	return 0;

err_stop:
	urt_rt_stop(rt);
err_unlock:
	close(lock_fd);
	return 1;
}
