/*
 * SAVE and SHUTDOWN.
 *
 * SAVE checkpoints every shard (urt_kv_checkpoint) and records the time for
 * INFO persistence (rdb_last_save_time).
 *
 * SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE]: checkpoints, then asks the main
 * thread to stop the server the way SIGTERM does (every connection
 * finishes its batch, the store closes, which checkpoints again, exit 0).
 * The calling connection gets no reply and is closed, as with Redis.  A
 * failed checkpoint is answered with Redis's error and the server goes on
 * (FORCE stops it anyway: the log still holds every acknowledged write).
 * NOSAVE checkpoints too: urkv's data file is its only copy, and every
 * acknowledged write is in its log whatever the option says.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "urkv.h"
#include "urt/urt.h"

static int checkpoint(struct urkv_server *srv)
{
	int ret = urt_kv_checkpoint(srv->kv);

	if (ret == 0) {
		atomic_store(&srv->live.last_save_wall_ns, urt_clock_wall_ns());
		atomic_fetch_add(&srv->live.saves, 1);
	}
	return ret;
}

void urkv_save_run(struct urkv_conn *c, struct urkv_slot *s)
{
	int ret = checkpoint(urkv_conn_server(c));

	(void)s;
	if (ret)
		urkv_out_errorf(c, "ERR checkpoint failed: %s", urt_strerror(ret));
	else
		urkv_out_simple(c, "OK");
}

void urkv_shutdown_run(struct urkv_conn *c, struct urkv_slot *s)
{
	struct urkv_server *srv = urkv_conn_server(c);
	bool nosave = false, save = false, force = false;
	int ret;

	for (size_t i = 1; i < s->argc; i++) {
		const struct resp_arg *a = &s->argv[i];

		if (resp_arg_eq_nocase(a, "NOSAVE"))
			nosave = true;
		else if (resp_arg_eq_nocase(a, "SAVE"))
			save = true;
		else if (resp_arg_eq_nocase(a, "NOW"))
			;	/* No replicas to wait for. */
		else if (resp_arg_eq_nocase(a, "FORCE"))
			force = true;
		else if (resp_arg_eq_nocase(a, "ABORT") && s->argc == 2) {
			urkv_out_error(c, "ERR No shutdown in progress.");
			return;
		} else {
			urkv_out_error(c, "ERR syntax error");
			return;
		}
	}
	if (nosave && save) {
		urkv_out_error(c, "ERR syntax error");
		return;
	}
	ret = checkpoint(srv);
	if (ret && !force) {
		fprintf(stderr, "urkv: SHUTDOWN: checkpoint failed: %s\n", urt_strerror(ret));
		urkv_out_error(c, "ERR Errors trying to SHUTDOWN. Check logs.");
		return;
	}
	atomic_store(&srv->shutdown_req, nosave ? 2 : 1);
	urkv_conn_close_after_reply(c);	/* No reply: the connection just closes. */
	/* The main thread waits for this in sigwait (every thread blocks SIGTERM). */
	kill(getpid(), SIGTERM);
}
