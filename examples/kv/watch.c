/*
 * The data file watch: whether urkv's data path still names the file the
 * store opened.
 *
 * A data file renamed away (mv other urkv.data, mv urkv.data elsewhere)
 * or deleted (rm urkv.data) under a running server stays open: the store
 * keeps applying and acknowledging writes into that inode, and the next
 * start opens whatever the path names then, without them.  Every write
 * acknowledged after such a change is lost at restart.  So once a second
 * the path's (st_dev, st_ino) is compared with the open file's
 * (urt_kv_file_id), and while they differ writes are refused, as Redis
 * refuses them with -MISCONF when it cannot persist; reads go on.  The
 * commands refused are those the command table marks `writes`: every
 * command that changes the data set, and SAVE (its checkpoint would go to
 * the file the next start does not open, and an OK would say the data is
 * safe).
 *
 * Design notes.
 *
 * States (struct urkv_watch.state), and what moves between them:
 *
 *   OK --path names no file (stat ENOENT, ENOTDIR)--> GONE
 *   OK --path names another file------------------> REPLACED
 *   GONE, REPLACED --path names the open file again (moved back)--> OK
 *   GONE <-> REPLACED as the path changes.
 *
 * Each change prints one line on stderr (--quiet or not: it is about
 * lost data).  A stat that fails otherwise (EACCES, EIO ...) proves
 * nothing and changes nothing.
 *
 * Invariants.
 *  1. Only the watch thread (watch_main) checks and writes state; every
 *     core reads it with one relaxed atomic load per command, and looks at
 *     the command only when it is not OK, so a healthy server pays no
 *     syscall and no compare per request.
 *  2. The refusals (msg) are formatted once at start and never change, so
 *     a core may hold one while the watch thread moves the state.
 *  3. A write that passed the check just before the change is applied and
 *     acknowledged into the old file: the watch narrows the window to
 *     about a second, it cannot close it (the change is not an event urkv
 *     hears of).
 *
 *  4. The check is a stat(2) of the path once a second on a thread of its
 *     own, started after the store opened (urkv_watch_start) and joined
 *     before it closes (urkv_watch_stop): stat blocks, for microseconds on
 *     a local disk and without bound on a network file system that hangs,
 *     and no reactor may block.  The thread inherits main's signal mask
 *     (signals go to main's sigwait) and sleeps on a condition variable, so
 *     urkv_watch_stop ends it at once while it sleeps; one stuck in stat is
 *     waited for WATCH_JOIN_S, then left (detached) with a line on stderr,
 *     and the process exits around it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/assert.h"
#include "urkv.h"
#include "urt/urt.h"

#define WATCH_PERIOD_NS 1000000000ull	/* Checks once a second. */
#define WATCH_JOIN_S 2			/* How long the stop waits for a thread stuck in stat. */

void urkv_watch_init(struct urkv_server *srv)
{
	struct urkv_watch *w = &srv->watch;
	uint64_t dev = 0, ino = 0;

	atomic_init(&w->state, URKV_WATCH_OK);
	/* A store without a file of its own (a device name urt_dev_open parses) is not watched. */
	w->on = urt_kv_file_id(srv->kv, &dev, &ino) == 0;
	w->dev = dev;
	w->ino = ino;
	w->stop = false;
	w->running = false;
	snprintf(w->msg[URKV_WATCH_GONE], sizeof(w->msg[0]),
		 "MISCONF the data file %s was deleted or renamed while urkv ran (no file has that "
		 "path now): writes are refused, since the next start would not see them; reads "
		 "still work. Put the file back at its path, or see docs/kv.md", srv->data_path);
	snprintf(w->msg[URKV_WATCH_REPLACED], sizeof(w->msg[0]),
		 "MISCONF the data file %s was replaced while urkv ran (that path names another file "
		 "now): writes are refused, since the next start would not see them; reads still "
		 "work. Put the file back at its path, or see docs/kv.md", srv->data_path);
}

/* The state the path shows now, or -1 when the stat proves nothing. */
static int watch_look(const struct urkv_server *srv)
{
	const struct urkv_watch *w = &srv->watch;
	struct stat st;

	if (stat(srv->data_path, &st) != 0)
		return errno == ENOENT || errno == ENOTDIR ? URKV_WATCH_GONE : -1;
	if ((uint64_t)st.st_dev == w->dev && (uint64_t)st.st_ino == w->ino)
		return URKV_WATCH_OK;
	return URKV_WATCH_REPLACED;
}

/* One check: the state the path shows now, printed when it changed (watch thread). */
static void watch_check(struct urkv_server *srv)
{
	struct urkv_watch *w = &srv->watch;
	int was, is;

	is = watch_look(srv);
	was = atomic_load_explicit(&w->state, memory_order_relaxed);
	if (is < 0 || is == was)
		return;
	atomic_store_explicit(&w->state, is, memory_order_relaxed);
	if (is == URKV_WATCH_OK)
		fprintf(stderr, "urkv: the data file %s is back at its path: writes are accepted "
			"again\n", srv->data_path);
	else
		fprintf(stderr, "urkv: the data file %s %s while urkv ran: writes are refused from "
			"now on (MISCONF) and reads still work; writes acknowledged before this went "
			"to the open file, which the next start will not open\n", srv->data_path,
			is == URKV_WATCH_GONE ? "was deleted or renamed (no file has that path now)"
					      : "was replaced (that path names another file now)");
}

static void *watch_main(void *arg)
{
	struct urkv_server *srv = arg;
	struct urkv_watch *w = &srv->watch;
	struct timespec until;

	pthread_mutex_lock(&w->lock);
	while (!w->stop) {
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += WATCH_PERIOD_NS / 1000000000ull;
		while (!w->stop && pthread_cond_timedwait(&w->wake, &w->lock, &until) != ETIMEDOUT)
			;
		if (w->stop)
			break;
		pthread_mutex_unlock(&w->lock);
		watch_check(srv);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int urkv_watch_start(struct urkv_server *srv)
{
	struct urkv_watch *w = &srv->watch;
	pthread_condattr_t ca;
	int ret;

	if (!w->on)
		return 0;
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->wake, &ca);
	pthread_condattr_destroy(&ca);
	ret = -pthread_create(&w->thread, NULL, watch_main, srv);
	if (ret) {
		pthread_cond_destroy(&w->wake);
		pthread_mutex_destroy(&w->lock);
		fprintf(stderr, "urkv: cannot start the data file watch: %s\n", urt_strerror(ret));
		return ret;
	}
	pthread_setname_np(w->thread, "urkv-watch");	/* As ps -L and /proc/PID/task show it. */
	w->running = true;
	return 0;
}

void urkv_watch_stop(struct urkv_server *srv)
{
	struct urkv_watch *w = &srv->watch;
	struct timespec until;

	if (!w->running)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	/* Bounded (design note 4): a stat that hangs must not hang the shutdown with it. */
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += WATCH_JOIN_S;
	if (pthread_timedjoin_np(w->thread, NULL, &until) != 0) {
		fprintf(stderr, "urkv: the data file watch is still in stat(%s) after %d s; not waiting "
			"for it\n", srv->data_path, WATCH_JOIN_S);
		pthread_detach(w->thread);
		w->running = false;
		return;	/* Its lock and condition stay: the thread may still take them. */
	}
	pthread_cond_destroy(&w->wake);
	pthread_mutex_destroy(&w->lock);
	w->running = false;
}

const char *urkv_watch_refusal(struct urkv_server *srv, const struct urkv_cmd *cmd)
{
	int st = atomic_load_explicit(&srv->watch.state, memory_order_relaxed);

	if (st == URKV_WATCH_OK || !cmd->writes)
		return NULL;
	return srv->watch.msg[st];
}

const char *urkv_watch_status(struct urkv_server *srv)
{
	switch (atomic_load_explicit(&srv->watch.state, memory_order_relaxed)) {
	case URKV_WATCH_GONE:
		return "deleted";
	case URKV_WATCH_REPLACED:
		return "replaced";
	default:
		return srv->watch.on ? "ok" : "unwatched";
	}
}
