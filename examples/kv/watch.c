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
 *  1. Only core 0's housekeeping fiber (urkv_conn_reaper, which always
 *     runs there) checks and writes state; every core reads it with one
 *     relaxed atomic load per command, and looks at the command only when
 *     it is not OK, so a healthy server pays no syscall and no compare per
 *     request.
 *  2. The refusals (msg) are formatted once at start and never change, so
 *     a core may hold one while core 0 moves the state.
 *  3. A write that passed the check just before the change is applied and
 *     acknowledged into the old file: the watch narrows the window to
 *     about a second, it cannot close it (the change is not an event urkv
 *     hears of).
 *
 * The check is a stat(2) of the path on core 0's reactor thread once a
 * second: microseconds, and the fiber's only blocking call (a data path on
 * a network file system that hangs would stall core 0's connections with
 * it; the store's own I/O to that file would hang too).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/assert.h"
#include "base/clock.h"
#include "urkv.h"
#include "urt/urt.h"

#define WATCH_PERIOD_NS 1000000000ull	/* Checks once a second. */

void urkv_watch_init(struct urkv_server *srv)
{
	struct urkv_watch *w = &srv->watch;
	uint64_t dev = 0, ino = 0;

	atomic_init(&w->state, URKV_WATCH_OK);
	/* A store without a file of its own (a device name urt_dev_open parses) is not watched. */
	w->on = urt_kv_file_id(srv->kv, &dev, &ino) == 0;
	w->dev = dev;
	w->ino = ino;
	w->last_ns = urt_clock_ns();
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

void urkv_watch_tick(struct urkv_server *srv)
{
	struct urkv_watch *w = &srv->watch;
	uint64_t now = urt_clock_ns();
	int was, is;

	if (!w->on || now - w->last_ns < WATCH_PERIOD_NS)
		return;
	w->last_ns = now;
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
