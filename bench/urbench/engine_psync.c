/*
 * The psync engine: what a plain blocking program does, as fio's psync
 * engine with numjobs = qd.  Each of qd x cores threads is pinned to its
 * core's CPU and loops pread/pwrite (pwritev2 with RWF_DSYNC for --fua),
 * with fdatasync every --fsync-every writes.  One syscall per op.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "urbench/engine.h"
#include "urbench/job.h"

struct psync_thread {
	struct ub_run *run;	/* The run. */
	unsigned index;		/* Worker index. */
	int fd;			/* Shared target descriptor. */
	pthread_t thread;	/* The thread. */
	bool started;		/* pthread_create succeeded. */
};

static void *psync_main(void *arg)
{
	struct psync_thread *pt = arg;
	struct ub_run *run = pt->run;
	const struct ub_opts *o = run->o;
	struct ub_worker *w = &run->workers[pt->index];
	uint32_t align = run->t->mem_align > 4096 ? run->t->mem_align : 4096;
	cpu_set_t set;
	void *buf;

	CPU_ZERO(&set);
	CPU_SET(o->cpus[w->core], &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set)) {
		ub_run_fail(run, -EINVAL, "cannot pin a psync thread to CPU %d", o->cpus[w->core]);
		goto out;
	}
	buf = aligned_alloc(align, (o->bs + align - 1) / align * align);
	if (!buf) {
		ub_run_fail(run, -ENOMEM, "out of memory for psync buffers");
		goto out;
	}
	ub_pattern_fill(buf, o->bs & ~7u, 0);
	while (ub_worker_may_issue(run, w)) {
		uint64_t off, t0, now;
		bool write;
		ssize_t n;

		if (o->fsync_every && w->writes_since_sync >= o->fsync_every) {
			w->writes_since_sync = 0;
			if (w->measuring && w->issued)
				w->issued--;	/* A flush is not one of the --ops. */
			if (fdatasync(pt->fd)) {
				w->errors++;
				ub_run_fail(run, -errno, "fdatasync %s: %s", o->target, strerror(errno));
				break;
			}
			w->syncs++;
			continue;
		}
		write = ub_gen_next(&w->gen, &off);
		if (write && o->verify)
			ub_pattern_fill(buf, o->bs, off);
		t0 = urt_clock_ns();
		if (write && o->fua) {
			struct iovec iov = { .iov_base = buf, .iov_len = o->bs };

			n = pwritev2(pt->fd, &iov, 1, (off_t)off, RWF_DSYNC);
		} else if (write) {
			n = pwrite(pt->fd, buf, o->bs, (off_t)off);
		} else {
			n = pread(pt->fd, buf, o->bs, (off_t)off);
		}
		now = urt_clock_ns();
		if (n != (ssize_t)o->bs) {
			w->errors++;
			ub_run_fail(run, n < 0 ? -errno : -EIO, "%s at offset %llu: %s", write ? "pwrite" : "pread",
				    (unsigned long long)off, n < 0 ? strerror(errno) : "short transfer");
			break;
		}
		if (write)
			w->writes_since_sync++;
		if (!write && o->verify) {
			int64_t bad = ub_pattern_check(buf, o->bs, off);

			if (bad >= 0) {
				w->verify_errors++;
				ub_run_fail(run, -EILSEQ, "verification failed: data read at offset %llu is not what "
					    "was written there (first bad byte %llu)", (unsigned long long)off,
					    (unsigned long long)(off + (uint64_t)bad));
			}
		}
		ub_worker_done_op(run, w, now, now - t0, (uint64_t)n, write);
	}
	free(buf);
out:
	ub_worker_finish(run, w);
	return NULL;
}

int ub_engine_psync(struct ub_run *run)
{
	const struct ub_opts *o = run->o;
	struct psync_thread *threads;
	int fd, ret = 0;

	fd = open(o->target, (ub_rw_writes(o->rw) ? O_RDWR : O_RDONLY) | O_CLOEXEC | (o->direct ? O_DIRECT : 0));
	if (fd < 0) {
		ret = -errno;
		ub_run_fail(run, ret, "cannot open %s: %s%s", o->target, strerror(errno),
			    errno == EINVAL && o->direct ? " (the file system refuses O_DIRECT: use --buffered)" : "");
		return ret;
	}
	threads = calloc(run->nworkers, sizeof(*threads));
	if (!threads) {
		close(fd);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < run->nworkers; i++)
		ub_worker_init(run, i, (int)(i % o->ncpus));
	for (unsigned i = 0; i < run->nworkers; i++) {
		threads[i] = (struct psync_thread){ .run = run, .index = i, .fd = fd };
		ret = -pthread_create(&threads[i].thread, NULL, psync_main, &threads[i]);
		if (ret) {
			ub_run_fail(run, ret, "cannot start psync thread %u of %u: %s (lower --qd)", i, run->nworkers,
				    strerror(-ret));
			/* The threads never started count as done. */
			atomic_fetch_add(&run->done, run->nworkers - i);
			break;
		}
		threads[i].started = true;
	}
	ub_run_drive(run);
	for (unsigned i = 0; i < run->nworkers; i++)
		if (threads[i].started)
			pthread_join(threads[i].thread, NULL);
	ub_run_collect(run);
	for (unsigned c = 0; c < run->r->ncores; c++)
		run->r->core[c].enters = run->r->core[c].ops + run->r->core[c].syncs;
	ub_result_sum(run->r);
	snprintf(run->r->backend, sizeof(run->r->backend), "psync");
	free(threads);
	close(fd);
	return ret;
}
