/*
 * Per-command statistics: INFO commandstats, INFO latencystats and
 * LATENCY HISTOGRAM, in Redis's formats (field names as redis-cli and the
 * Prometheus redis_exporter parse them).
 *
 * Each core has its own array of struct urkv_cmdstat, one per entry of the
 * command table, allocated once at start; only that core's fibers write it
 * (plain stores, no lock, no allocation on the command path).  INFO and
 * LATENCY run a job on every core that copies that core's array, and merge
 * the copies: figures are exact per core and a snapshot per core.
 *
 * Latency histogram: log-linear, like HdrHistogram with one significant
 * hex digit: values below 16 ns have a bucket each, above that every power
 * of two [2^e, 2^(e+1)) has LAT_SUB buckets, so a bucket is at most 1/16
 * (6%) wide.  Percentiles report a bucket's upper edge.  LATENCY
 * HISTOGRAM's power-of-two buckets from 1024 ns (Redis's) are unions of
 * whole buckets, so their cumulative counts are exact.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "urkv.h"
#include "urt/urt.h"

#define LAT_SUB_BITS 4
#define LAT_SUB (1u << LAT_SUB_BITS)	/* Buckets per power of two. */
#define LAT_EXP_MAX 40			/* 2^41 ns (~37 min): larger values go to the last bucket. */
#define LAT_BUCKETS ((LAT_EXP_MAX - LAT_SUB_BITS + 2) * LAT_SUB)

struct urkv_cmdstat {
	uint64_t calls;			/* Times run. */
	uint64_t ns;			/* Total time. */
	uint64_t rejected;		/* Refused before running (arity, NOAUTH). */
	uint64_t failed;		/* Ran and answered an error. */
	uint64_t lat[LAT_BUCKETS];	/* Latency histogram (ns). */
};

static unsigned lat_bucket(uint64_t v)
{
	unsigned e;

	if (v < LAT_SUB)
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v);
	if (e > LAT_EXP_MAX)
		return LAT_BUCKETS - 1;
	return (e - LAT_SUB_BITS + 1) * LAT_SUB + (unsigned)((v >> (e - LAT_SUB_BITS)) & (LAT_SUB - 1));
}

/* The largest value of bucket b. */
static uint64_t lat_upper(unsigned b)
{
	unsigned e, sub;

	if (b < LAT_SUB)
		return b;
	e = b / LAT_SUB + LAT_SUB_BITS - 1;
	sub = b % LAT_SUB;
	return (1ull << e) + ((uint64_t)(sub + 1) << (e - LAT_SUB_BITS)) - 1;
}

int urkv_stats_core_init(struct urkv_core *cc)
{
	cc->cmdstats = calloc(urkv_cmd_count(), sizeof(*cc->cmdstats));
	return cc->cmdstats ? 0 : -ENOMEM;
}

void urkv_stats_core_free(struct urkv_core *cc)
{
	free(cc->cmdstats);
	cc->cmdstats = NULL;
}

void urkv_stats_call(struct urkv_core *cc, const struct urkv_cmd *cmd, uint64_t dt_ns, bool failed)
{
	struct urkv_cmdstat *st = &cc->cmdstats[urkv_cmd_index(cmd)];

	st->calls++;
	st->ns += dt_ns;
	st->failed += failed;
	st->lat[lat_bucket(dt_ns)]++;
}

void urkv_stats_rejected(struct urkv_core *cc, const struct urkv_cmd *cmd)
{
	cc->cmdstats[urkv_cmd_index(cmd)].rejected++;
}

/* Merging: a job per core copies its array into the sum. */
struct merge_arg {
	struct urkv_server *srv;	/* Server. */
	struct urkv_cmdstat *sum;	/* urkv_cmd_count() entries. */
	bool reset;			/* Zero the core's counters instead. */
};

static int merge_core(void *p)
{
	struct merge_arg *a = p;
	struct urkv_core *cc = &a->srv->cores[urt_core_id()];
	unsigned n = urkv_cmd_count();

	if (!cc->cmdstats)
		return 0;
	if (a->reset) {
		memset(cc->cmdstats, 0, n * sizeof(*cc->cmdstats));
		return 0;
	}
	for (unsigned i = 0; i < n; i++) {
		struct urkv_cmdstat *d = &a->sum[i], *s = &cc->cmdstats[i];

		if (!s->calls && !s->rejected)
			continue;
		d->calls += s->calls;
		d->ns += s->ns;
		d->rejected += s->rejected;
		d->failed += s->failed;
		for (unsigned b = 0; b < LAT_BUCKETS; b++)
			d->lat[b] += s->lat[b];
	}
	return 0;
}

/* The merged counters of every core (caller frees), or NULL. */
static struct urkv_cmdstat *merged(struct urkv_server *srv)
{
	struct merge_arg a = { .srv = srv };

	a.sum = calloc(urkv_cmd_count(), sizeof(*a.sum));
	if (!a.sum)
		return NULL;
	/* One core after the other: the jobs add into one sum. */
	for (unsigned i = 0; i < srv->ncores; i++)
		urt_core_run(srv->rt, i, merge_core, &a);
	return a.sum;
}

void urkv_stats_reset(struct urkv_server *srv)
{
	struct merge_arg a = { .srv = srv, .reset = true };

	for (unsigned i = 0; i < srv->ncores; i++)
		urt_core_run(srv->rt, i, merge_core, &a);
}

/* The value (ns) at percentile p of st's histogram. */
static uint64_t percentile(const struct urkv_cmdstat *st, double p)
{
	uint64_t total = 0, want, seen = 0;

	for (unsigned b = 0; b < LAT_BUCKETS; b++)
		total += st->lat[b];
	if (!total)
		return 0;
	want = (uint64_t)((double)total * p / 100.0 + 0.5);
	if (want < 1)
		want = 1;
	for (unsigned b = 0; b < LAT_BUCKETS; b++) {
		seen += st->lat[b];
		if (seen >= want)
			return lat_upper(b);
	}
	return lat_upper(LAT_BUCKETS - 1);
}

void urkv_stats_info(struct urkv_server *srv, FILE *f, bool commandstats, bool latencystats)
{
	struct urkv_cmdstat *sum = merged(srv);
	unsigned n = urkv_cmd_count();

	if (!sum)
		return;
	if (commandstats) {
		fprintf(f, "# Commandstats\r\n");
		for (unsigned i = 0; i < n; i++) {
			const struct urkv_cmdstat *st = &sum[i];
			uint64_t usec = st->ns / 1000;

			if (!st->calls && !st->rejected)
				continue;
			fprintf(f, "cmdstat_%s:calls=%llu,usec=%llu,usec_per_call=%.2f,"
				   "rejected_calls=%llu,failed_calls=%llu\r\n",
				urkv_cmd_at(i)->name, (unsigned long long)st->calls,
				(unsigned long long)usec,
				st->calls ? (double)st->ns / 1000.0 / (double)st->calls : 0.0,
				(unsigned long long)st->rejected, (unsigned long long)st->failed);
		}
		fprintf(f, "\r\n");
	}
	if (latencystats) {
		fprintf(f, "# Latencystats\r\n");
		for (unsigned i = 0; i < n; i++) {
			const struct urkv_cmdstat *st = &sum[i];

			if (!st->calls)
				continue;
			fprintf(f, "latency_percentiles_usec_%s:p50=%.3f,p99=%.3f,p99.9=%.3f\r\n",
				urkv_cmd_at(i)->name, (double)percentile(st, 50) / 1000.0,
				(double)percentile(st, 99) / 1000.0, (double)percentile(st, 99.9) / 1000.0);
		}
		fprintf(f, "\r\n");
	}
	free(sum);
}

/* One command's entry of LATENCY HISTOGRAM: name, then calls and the cumulative buckets. */
static void histogram_reply(struct urkv_conn *c, const struct urkv_cmd *cmd, const struct urkv_cmdstat *st)
{
	uint64_t cum = 0, prev = 0;
	unsigned nb = 0, b = 0;
	long long pairs[2 * (LAT_EXP_MAX + 2)];

	/* Redis's buckets: values below 1024 ns, 2048 ns, ... each reported in whole usec. */
	for (unsigned e = 10; e <= LAT_EXP_MAX + 1; e++) {
		for (; b < LAT_BUCKETS && (b < LAT_SUB ? b : lat_upper(b)) < (1ull << e); b++)
			cum += st->lat[b];
		if (e == LAT_EXP_MAX + 1)
			for (; b < LAT_BUCKETS; b++)
				cum += st->lat[b];
		if (cum > prev) {
			pairs[nb++] = (long long)((1ull << e) / 1000);
			pairs[nb++] = (long long)cum;
		}
		prev = cum;
	}
	urkv_out_bulk(c, cmd->name, strlen(cmd->name));
	urkv_out_array(c, 4);
	urkv_out_bulk(c, "calls", 5);
	urkv_out_int(c, (long long)st->calls);
	urkv_out_bulk(c, "histogram_usec", 14);
	urkv_out_array(c, nb);
	for (unsigned i = 0; i < nb; i++)
		urkv_out_int(c, pairs[i]);
}

/* LATENCY HELP: Redis's lines for the subcommands urkv has, and what urkv's differ in. */
static void latency_help(struct urkv_conn *c)
{
	static const char *const lines[] = {
		"LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
		"LATEST",
		"    Return the latest latency samples for all events.",
		"    urkv has no latency monitor, so it records no events: the reply is always empty.",
		"RESET [<event> ...]",
		"    Reset the command latency histograms and the INFO commandstats counters.",
		"    urkv records no events, so the reply (events reset) is always 0.",
		"HISTOGRAM [COMMAND ...]",
		"    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
		"    If no commands are specified then all histograms are replied.",
		"HELP",
		"    Prints this help.",
	};

	urkv_out_help(c, lines, sizeof(lines) / sizeof(lines[0]));
}

/* LATENCY HISTOGRAM [command ...] | LATENCY LATEST | LATENCY RESET | LATENCY HELP. */
void urkv_latency_run(struct urkv_conn *c, struct urkv_slot *s)
{
	struct urkv_server *srv = urkv_conn_server(c);
	struct urkv_cmdstat *sum;
	unsigned n = urkv_cmd_count(), shown = 0;

	if (resp_arg_eq_nocase(&s->argv[1], "HELP")) {
		if (s->argc == 2)
			latency_help(c);
		else
			urkv_out_error(c, "ERR wrong number of arguments for 'latency|help' command");
		return;
	}
	if (resp_arg_eq_nocase(&s->argv[1], "RESET")) {
		urkv_stats_reset(srv);
		urkv_out_int(c, 0);
		return;
	}
	if (resp_arg_eq_nocase(&s->argv[1], "LATEST")) {
		/* No latency-monitor events are recorded (Redis with latency-monitor-threshold 0). */
		urkv_out_array(c, 0);
		return;
	}
	if (!resp_arg_eq_nocase(&s->argv[1], "HISTOGRAM")) {
		urkv_out_errorf(c, "ERR unknown subcommand or wrong number of arguments for '%.*s'. "
				   "Try LATENCY HELP.",
				(int)(s->argv[1].len > 64 ? 64 : s->argv[1].len), s->argv[1].ptr);
		return;
	}
	sum = merged(srv);
	if (!sum) {
		urkv_out_error(c, "ERR out of memory");
		return;
	}
	/* Commands asked for (or all) that ran at least once; each once. */
	for (int pass = 0; pass < 2; pass++) {
		for (unsigned i = 0; i < n; i++) {
			bool asked = s->argc == 2;

			for (size_t a = 2; a < s->argc && !asked; a++)
				asked = resp_arg_eq_nocase(&s->argv[a], urkv_cmd_at(i)->name);
			if (!asked || !sum[i].calls)
				continue;
			if (pass == 0)
				shown++;
			else
				histogram_reply(c, urkv_cmd_at(i), &sum[i]);
		}
		if (pass == 0)
			urkv_out_array(c, 2 * (size_t)shown);
	}
	free(sum);
}
