/*
 * appendfsync: when urkv acknowledges a write (docs/kv.md, "Durability
 * contract").
 *
 *   always    a write is answered once its log batch is durable (the
 *             store's default path).
 *   no        a write is answered once applied (URT_KV_NOSYNC): visible and
 *             ordered, and the shard's committer writes and flushes its log
 *             batch right behind it, with no deadline of its own.
 *   everysec  as no, plus a bound: the first write each core sends to each
 *             shard in each wall-clock second is submitted durable (without
 *             URT_KV_NOSYNC), and the connection that sent it waits for it.
 *             A shard's log becomes durable in order, so that write's
 *             acknowledgement proves every earlier write of the shard, from
 *             any core, durable.  While writes keep coming, no acknowledged
 *             write of a shard stays non-durable past the next second's
 *             first durable write (plus one log flush); when writes stop, the
 *             committer has already flushed them.  If the log stalls, that
 *             durable write waits and so does its connection; the others go
 *             on (Redis, too, answers writes while its fsync is late, until
 *             it has been late for 2 s).
 *
 * State: per core, per shard, the second of the last durable write this core
 * sent there (cc->fsync_sec).  Only the core's own fibers touch it: no lock,
 * no allocation after urkv_fsync_core_init.  The second comes from
 * CLOCK_MONOTONIC_COARSE (a vDSO read without a hardware clock access).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "urkv.h"
#include "urt/urt.h"

static const char *const names[] = {
	[URKV_FSYNC_ALWAYS] = "always",
	[URKV_FSYNC_EVERYSEC] = "everysec",
	[URKV_FSYNC_NO] = "no",
};

const char *urkv_fsync_name(enum urkv_fsync f)
{
	return (unsigned)f < sizeof(names) / sizeof(names[0]) ? names[f] : "?";
}

int urkv_fsync_parse(const char *s, size_t len, enum urkv_fsync *out)
{
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == len && strncasecmp(names[i], s, len) == 0) {
			*out = (enum urkv_fsync)i;
			return 0;
		}
	return -EINVAL;
}

bool urkv_fsync_acks_early(struct urkv_server *srv)
{
	return atomic_load_explicit(&srv->live.appendfsync, memory_order_relaxed) != URKV_FSYNC_ALWAYS;
}

int urkv_fsync_core_init(struct urkv_core *cc)
{
	cc->fsync_sec = calloc(urt_kv_shards(cc->srv->kv), sizeof(*cc->fsync_sec));
	return cc->fsync_sec ? 0 : -ENOMEM;
}

void urkv_fsync_adjust(struct urkv_core *cc, struct urt_kv_req *req)
{
	struct timespec ts;
	unsigned shard;

	if (atomic_load_explicit(&cc->srv->live.appendfsync, memory_order_relaxed) !=
	    URKV_FSYNC_EVERYSEC)
		return;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	shard = urt_kv_shard_of(cc->srv->kv, req->key, req->klen);
	/* +1: second 0 of the clock must not look like "done already" to a zeroed entry. */
	if (cc->fsync_sec[shard] == (uint64_t)ts.tv_sec + 1)
		return;
	cc->fsync_sec[shard] = (uint64_t)ts.tv_sec + 1;
	req->flags &= ~(unsigned)URT_KV_NOSYNC;	/* This core's group commit point for the shard. */
	atomic_fetch_add_explicit(&cc->st.fsync_points, 1, memory_order_relaxed);
}
