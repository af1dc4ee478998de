/*
 * Helpers of urkv's expiry, string and keyspace commands (cmd_ext.h):
 * error replies and the log of damage behind them, argument parsing,
 * whole-value reads, and the store's clock with the offset DEBUG
 * CLOCK-ADVANCE adds.
 *
 * The damage log.  A store error that means damaged data or a failing
 * device (a corrupt or misdirected page, another store's page, an I/O
 * error, a shard turned sticky) reaches the client as "ERR store error:
 * ...", which names no page and which no operator reads.  So the first
 * such error of each damage is also one line on stderr, with the shard
 * and the page (the shard's bad_pgno, from urt_kv_shard_stats: the page
 * store records the page of every checksum or read failure, and the
 * store the page its tree's own checks found wrong; a damage with no page
 * to name, such as a pointer past the shard's end, records none, and the
 * line then says so).
 *
 * Invariants.
 *  1. A damage (error, shard, page) gets one line, and then no other for
 *     STORE_LOG_REPEAT_NS however often clients meet it; the next line
 *     says how many times it was met meanwhile.
 *  2. At most STORE_LOG_BURST lines per STORE_LOG_WINDOW_NS in all, so
 *     many damaged pages cannot flood the log either; the next line says
 *     how many were left out.
 *  3. Cores are threads: the table is under a mutex, held for a lookup
 *     and never across the store call or the write to stderr.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "cmd_ext.h"
#include "urt/urt.h"

#define STORE_LOG_SEEN_MAX 64					/* Damages remembered. */
#define STORE_LOG_REPEAT_NS (60ull * 1000000000ull)		/* One line per damage per minute. */
#define STORE_LOG_BURST 10					/* Lines per window, all damages. */
#define STORE_LOG_WINDOW_NS (10ull * 1000000000ull)		/* The window of STORE_LOG_BURST. */
#define STORE_LOG_NO_SHARD UINT_MAX				/* A damage no shard could be named for. */

/* One damage the log has reported. */
struct store_damage {
	int err;		/* The store's error. */
	unsigned shard;		/* Its shard, or STORE_LOG_NO_SHARD. */
	uint64_t pgno;		/* The shard's bad page, or UINT64_MAX when none was recorded. */
	uint64_t logged_ns;	/* When its last line was written. */
	uint64_t met;		/* Times met since that line. */
	bool used;		/* The entry holds a damage. */
};

static struct {
	pthread_mutex_t lock;				/* Invariant 3. */
	struct store_damage seen[STORE_LOG_SEEN_MAX];	/* Damages reported lately. */
	uint64_t window_ns;				/* Start of the current burst window. */
	unsigned window_lines;				/* Lines written in it. */
	uint64_t left_out;				/* Lines not written for the burst bound. */
} store_log = { .lock = PTHREAD_MUTEX_INITIALIZER };

bool urkv_store_error_is_damage(int err)
{
	return err == URT_E_CORRUPT || err == URT_E_MISDIRECTED || err == URT_E_FOREIGN ||
	       err == URT_E_STICKY || err == -EIO;
}

/*
 * Whether damage d gets a line now (invariants 1 and 2).  When it does,
 * *met is how often it was met since its last line and *left_out how
 * many lines the burst bound dropped since the last one written.
 */
static bool store_log_admit(const struct store_damage *d, uint64_t now, uint64_t *met,
			    uint64_t *left_out)
{
	struct store_damage *e = NULL, *victim = &store_log.seen[0];
	bool admit = false;

	pthread_mutex_lock(&store_log.lock);
	for (unsigned i = 0; i < STORE_LOG_SEEN_MAX; i++) {
		struct store_damage *x = &store_log.seen[i];

		if (x->used && x->err == d->err && x->shard == d->shard && x->pgno == d->pgno)
			e = x;
		/* The entry to reuse: a free one, else the one logged longest ago. */
		if (victim->used && (!x->used || x->logged_ns < victim->logged_ns))
			victim = x;
	}
	if (e && now - e->logged_ns < STORE_LOG_REPEAT_NS) {
		e->met++;
		goto out;
	}
	if (now - store_log.window_ns >= STORE_LOG_WINDOW_NS) {
		store_log.window_ns = now;
		store_log.window_lines = 0;
	}
	if (store_log.window_lines >= STORE_LOG_BURST) {
		store_log.left_out++;
		if (e)
			e->met++;
		goto out;
	}
	store_log.window_lines++;
	if (!e) {
		e = victim;
		*e = *d;
		e->met = 0;
		e->used = true;
	}
	*met = e->met;
	e->met = 0;
	e->logged_ns = now;
	*left_out = store_log.left_out;
	store_log.left_out = 0;
	admit = true;
out:
	pthread_mutex_unlock(&store_log.lock);
	return admit;
}

/* Up to 64 bytes of key, non-printable bytes as \xNN, into buf. */
static void key_text(const struct resp_arg *key, char *buf, size_t len)
{
	size_t n = 0, shown = key->len > 64 ? 64 : key->len;

	for (size_t i = 0; i < shown && n + 5 < len; i++) {
		unsigned char ch = (unsigned char)key->ptr[i];

		if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\')
			buf[n++] = (char)ch;
		else
			n += (size_t)snprintf(buf + n, len - n, "\\x%02x", ch);
	}
	snprintf(buf + n, len - n, "%s", shown < key->len ? "..." : "");
}

/* Logs damage (err, shard, pgno) met by the command of c on key (or NULL), unless admit says not. */
static void store_log_one(struct urkv_conn *c, int err, unsigned shard, uint64_t pgno,
			  const struct resp_arg *key)
{
	struct store_damage d = { .err = err, .shard = shard, .pgno = pgno };
	char where[96], what[384], k[272], more[160] = "";
	uint64_t met = 0, left_out = 0;
	size_t n;

	if (!store_log_admit(&d, urt_clock_ns(), &met, &left_out))
		return;
	if (shard == STORE_LOG_NO_SHARD)
		snprintf(where, sizeof(where), "no shard recorded a bad page");
	else if (pgno == UINT64_MAX)
		snprintf(where, sizeof(where), "shard %u, no bad page recorded", shard);
	else
		snprintf(where, sizeof(where), "shard %u, page %llu", shard, (unsigned long long)pgno);
	if (key) {
		key_text(key, k, sizeof(k));
		snprintf(what, sizeof(what), "%s of key \"%s\"", urkv_conn_client(c)->last_cmd, k);
	} else {
		snprintf(what, sizeof(what), "%s", urkv_conn_client(c)->last_cmd);
	}
	n = 0;
	if (met)
		n += (size_t)snprintf(more + n, sizeof(more) - n, "; met %llu more times since its last line",
				      (unsigned long long)met);
	if (left_out)
		snprintf(more + n, sizeof(more) - n, "; %llu other lines left out (at most %u per %llu s)",
			 (unsigned long long)left_out, STORE_LOG_BURST,
			 (unsigned long long)(STORE_LOG_WINDOW_NS / 1000000000ull));
	fprintf(stderr, "urkv: store error (%s) in %s: %s%s; repeats are logged once a minute\n", where,
		what, urt_strerror(err), more);
}

void urkv_store_error_log(struct urkv_conn *c, int err, const struct resp_arg *key)
{
	struct urt_kv *kv = urkv_conn_server(c)->kv;
	struct urt_kv_shard_stats st;
	bool named = false;

	if (!urkv_store_error_is_damage(err))
		return;
	if (key && !urkv_key_error(key)) {
		unsigned shard = urt_kv_shard_of(kv, key->ptr, key->len);

		store_log_one(c, err, shard, urt_kv_shard_stats(kv, shard, &st) == 0 ? st.ps.bad_pgno
										      : UINT64_MAX, key);
		return;
	}
	/* No key (KEYS, DBSIZE, FLUSHALL ...): every shard that recorded damage. */
	for (unsigned shard = 0; shard < urt_kv_shards(kv); shard++) {
		if (urt_kv_shard_stats(kv, shard, &st) != 0 ||
		    (st.ps.bad_pgno == UINT64_MAX && !st.ps.sticky_error))
			continue;
		store_log_one(c, err, shard, st.ps.bad_pgno, NULL);
		named = true;
	}
	if (!named)
		store_log_one(c, err, STORE_LOG_NO_SHARD, UINT64_MAX, NULL);
}

void urkv_out_store_error(struct urkv_conn *c, int err)
{
	urkv_store_error_log(c, err, NULL);
	switch (err) {
	case URT_E_TOOBIG:
		urkv_out_error(c, "ERR string exceeds maximum allowed size (proto-max-bulk-len)");
		break;
	case URT_E_FULL:
		urkv_out_error(c, "ERR store full (the data file has no free pages)");
		break;
	case -ESHUTDOWN:
		urkv_out_error(c, "ERR server is shutting down");
		break;
	case -ENOMEM:
		urkv_out_error(c, "ERR out of memory");
		break;
	default:
		urkv_out_errorf(c, "ERR store error: %s", urt_strerror(err));
		break;
	}
}

const char *urkv_key_error(const struct resp_arg *key)
{
	if (key->len == 0)
		return "ERR empty keys are not supported by urkv";
	if (key->len > URT_KV_KEY_MAX)
		return "ERR key too large (urkv keys are at most 1024 bytes)";
	return NULL;
}

bool urkv_arg_ll(const struct resp_arg *a, long long *out)
{
	return resp_parse_ll(a->ptr, a->len, out) == 0;
}

int urkv_read_value(struct urkv_conn *c, const struct resp_arg *key, char **val, size_t *vlen,
		    uint64_t *expire_at)
{
	struct urt_kv *kv = urkv_conn_server(c)->kv;
	size_t cap = 256;
	int ret;

	*val = NULL;
	/* A value may grow between two reads: retry with its new size. */
	for (int tries = 0; tries < 8; tries++) {
		char *buf = malloc(cap);
		size_t len = 0;

		if (!buf)
			return -ENOMEM;
		ret = urt_kv_get_expire(kv, key->ptr, key->len, buf, cap, &len, expire_at);
		if (ret != 0 || len <= cap) {
			if (ret != 0) {
				free(buf);
				return ret;
			}
			*val = buf;
			*vlen = len;
			return 0;
		}
		free(buf);
		cap = len;
	}
	return -EAGAIN;
}

uint64_t urkv_now_ms(struct urkv_conn *c)
{
	return urt_kv_now_ms(urkv_conn_server(c)->kv);
}

uint64_t urkv_store_clock(void *arg)
{
	struct urkv_server *srv = arg;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u +
	       (uint64_t)atomic_load_explicit(&srv->clock_offset_ms, memory_order_relaxed);
}
