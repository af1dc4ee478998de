/*
 * Error replies by kind: INFO's total_error_replies (# Stats) and its
 * # Errorstats section, in Redis's format ("errorstat_ERR:count=3"), which
 * redis-cli users and the Prometheus redis_exporter read.  An error's kind
 * is its first word, as in Redis: ERR, WRONGTYPE, NOAUTH, WRONGPASS,
 * MISCONF, and in a cluster MOVED, ASK, CROSSSLOT, TRYAGAIN, CLUSTERDOWN:
 * the redirects a cluster sends its clients are errors on the wire, and
 * counting them shows how often clients use a stale slot map.
 *
 * Design notes.
 *
 * Each core has a table of up to URKV_ERRSTAT_MAX kinds (Redis's limit is
 * also 128), allocated once at start, and a total.  Only urkv_out_error on
 * the connection's own core writes it (plain stores, no lock; an error
 * reply costs a scan of the kinds seen so far, a dozen in practice).  INFO
 * and CONFIG RESETSTAT run a job on every core (urt_core_run), which reads
 * or zeroes that core's table there, so no table is ever read by another
 * thread while it is written.
 *
 * A kind past the 128th is counted in total_error_replies only (a client
 * that makes up error words cannot grow the table, nor INFO's reply).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "urkv.h"
#include "urt/urt.h"

#define ERRSTAT_CODE_MAX 32	/* Bytes of a kind kept (Redis's are at most 16). */

struct urkv_errstat {
	char code[ERRSTAT_CODE_MAX + 1];	/* The error's first word. */
	uint64_t count;				/* Replies of this kind. */
};

struct urkv_errstats {
	uint64_t total;				/* Every error reply (total_error_replies). */
	unsigned n;				/* Kinds in use. */
	struct urkv_errstat kind[URKV_ERRSTAT_MAX];
};

int urkv_errstats_core_init(struct urkv_core *cc)
{
	cc->errstats = calloc(1, sizeof(*cc->errstats));
	return cc->errstats ? 0 : -ENOMEM;
}

void urkv_errstats_core_free(struct urkv_core *cc)
{
	free(cc->errstats);
	cc->errstats = NULL;
}

void urkv_errstats_count(struct urkv_core *cc, const char *msg)
{
	struct urkv_errstats *es = cc->errstats;
	size_t len = strcspn(msg, " \r\n");

	URT_ASSERT(urt_core_id() == cc->core);	/* Only the owning core writes its table. */
	if (!es)
		return;
	es->total++;
	if (len == 0 || len > ERRSTAT_CODE_MAX)
		return;
	for (unsigned i = 0; i < es->n; i++) {
		if (strncmp(es->kind[i].code, msg, len) == 0 && es->kind[i].code[len] == '\0') {
			es->kind[i].count++;
			return;
		}
	}
	if (es->n == URKV_ERRSTAT_MAX)
		return;	/* Counted in the total only (design notes). */
	memcpy(es->kind[es->n].code, msg, len);
	es->kind[es->n].code[len] = '\0';
	es->kind[es->n].count = 1;
	es->n++;
}

/* The sum over the cores, built by a job on each. */
struct errstats_job {
	struct urkv_server *srv;
	struct urkv_errstats *sum;	/* NULL: zero the core's table instead. */
};

static int errstats_core(void *p)
{
	struct errstats_job *j = p;
	struct urkv_errstats *es = j->srv->cores[urt_core_id()].errstats, *sum = j->sum;

	if (!es)
		return 0;
	if (!sum) {
		memset(es, 0, sizeof(*es));
		return 0;
	}
	sum->total += es->total;
	for (unsigned i = 0; i < es->n; i++) {
		unsigned k;

		for (k = 0; k < sum->n && strcmp(sum->kind[k].code, es->kind[i].code) != 0; k++)
			;
		if (k == sum->n) {
			if (sum->n == URKV_ERRSTAT_MAX)
				continue;
			memcpy(sum->kind[k].code, es->kind[i].code, sizeof(sum->kind[k].code));
			sum->n++;
		}
		sum->kind[k].count += es->kind[i].count;
	}
	return 0;
}

uint64_t urkv_errstats_info(struct urkv_server *srv, FILE *f)
{
	struct urkv_errstats *sum = calloc(1, sizeof(*sum));
	struct errstats_job j = { .srv = srv, .sum = sum };
	uint64_t total;

	if (!sum)
		return 0;
	for (unsigned i = 0; i < srv->ncores; i++)
		urt_core_run(srv->rt, i, errstats_core, &j);
	if (f) {
		fprintf(f, "# Errorstats\r\n");
		for (unsigned k = 0; k < sum->n; k++)
			fprintf(f, "errorstat_%s:count=%llu\r\n", sum->kind[k].code,
				(unsigned long long)sum->kind[k].count);
		fprintf(f, "\r\n");
	}
	total = sum->total;
	free(sum);
	return total;
}

void urkv_errstats_reset(struct urkv_server *srv)
{
	struct errstats_job j = { .srv = srv, .sum = NULL };

	for (unsigned i = 0; i < srv->ncores; i++)
		urt_core_run(srv->rt, i, errstats_core, &j);
}
