/*
 * The phases of a run and the main thread's driver loop (see run.h).
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "urbench/run.h"

/* Set by SIGINT: end the measurement, report what was measured. */
static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

void ub_run_catch_sigint(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
}

static void sample_begin(struct ub_run *run)
{
	getrusage(RUSAGE_SELF, &run->ru0);
	ub_cpu_times_read(&run->st0);
}

int ub_run_init(struct ub_run *run, const struct ub_opts *o, const struct ub_mode *m,
		const struct ub_target *t, struct ub_result *r, unsigned nworkers)
{
	memset(run, 0, sizeof(*run));
	run->o = o;
	run->mode = *m;
	run->t = t;
	run->r = r;
	run->nworkers = nworkers;
	run->workers = calloc(nworkers, sizeof(*run->workers));
	if (!run->workers)
		return -ENOMEM;
	pthread_mutex_init(&run->err_lock, NULL);
	atomic_init(&run->phase, o->ramp_s > 0 ? UB_PHASE_RAMP : UB_PHASE_MEASURE);
	run->t_begin_ns = urt_clock_ns();
	if (o->ramp_s <= 0)
		sample_begin(run);
	return 0;
}

void ub_run_exit(struct ub_run *run)
{
	pthread_mutex_destroy(&run->err_lock);
	free(run->workers);
	run->workers = NULL;
}

void ub_worker_init(struct ub_run *run, unsigned i, int core)
{
	struct ub_worker *w = &run->workers[i];
	const struct ub_opts *o = run->o;
	uint64_t now = urt_clock_ns();

	urt_hist_init(&w->hist);
	urt_hist_init(&w->tick_hist);
	ub_gen_init(&w->gen, o, run->t->span_bytes, i, run->nworkers);
	w->core = core;
	w->budget = UINT64_MAX;
	if (o->ops)
		w->budget = o->ops / run->nworkers + (i < o->ops % run->nworkers ? 1 : 0);
	w->next_tick_ns = now + 1000000000ull;
	if (atomic_load(&run->phase) == UB_PHASE_MEASURE) {
		/* No ramp: every op counts, from the first one issued. */
		w->measuring = true;
		w->t_start_ns = now;
		w->t_end_ns = now;
	}
}

void ub_worker_tick(struct ub_worker *w, uint64_t now)
{
	atomic_store_explicit(&w->live_p99_ns, urt_hist_percentile(&w->tick_hist, 99), memory_order_relaxed);
	urt_hist_init(&w->tick_hist);
	w->next_tick_ns = now + 1000000000ull;
}

void ub_worker_finish(struct ub_run *run, struct ub_worker *w)
{
	(void)w;
	atomic_fetch_add_explicit(&run->done, 1, memory_order_release);
}

void ub_run_fail(struct ub_run *run, int err, const char *fmt, ...)
{
	int zero = 0;
	va_list ap;

	pthread_mutex_lock(&run->err_lock);
	if (atomic_compare_exchange_strong(&run->err, &zero, err)) {
		va_start(ap, fmt);
		vsnprintf(run->errmsg, sizeof(run->errmsg), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&run->err_lock);
	atomic_store(&run->phase, UB_PHASE_STOP);
}

static void fmt_count(char *buf, size_t len, double v)
{
	if (v >= 1e6)
		snprintf(buf, len, "%.2fM", v / 1e6);
	else if (v >= 1e3)
		snprintf(buf, len, "%.1fk", v / 1e3);
	else
		snprintf(buf, len, "%.0f", v);
}

static void progress_line(struct ub_run *run, uint64_t now, uint64_t t_measure, uint64_t *last_ops,
			  uint64_t *last_bytes, uint64_t *last_ns)
{
	const struct ub_opts *o = run->o;
	uint64_t ops = 0, bytes = 0, p99 = 0;
	double dt = (double)(now - *last_ns) / 1e9, iops, left;
	int phase = atomic_load(&run->phase);
	char ibuf[32];

	for (unsigned i = 0; i < run->nworkers; i++) {
		uint64_t p = atomic_load_explicit(&run->workers[i].live_p99_ns, memory_order_relaxed);

		ops += atomic_load_explicit(&run->workers[i].live_ops, memory_order_relaxed);
		bytes += atomic_load_explicit(&run->workers[i].live_bytes, memory_order_relaxed);
		if (p > p99)
			p99 = p;
	}
	iops = dt > 0 ? (double)(ops - *last_ops) / dt : 0;
	if (phase == UB_PHASE_RAMP)
		left = o->ramp_s - (double)(now - run->t_begin_ns) / 1e9 + (o->ops ? 0 : o->runtime_s);
	else if (o->ops) {
		uint64_t measured = 0;

		for (unsigned i = 0; i < run->nworkers; i++)
			measured += atomic_load_explicit(&run->workers[i].live_ops, memory_order_relaxed);
		left = iops > 0 && o->ops > measured ? (double)(o->ops - measured) / iops : 0;
	} else {
		left = o->runtime_s - (double)(now - t_measure) / 1e9;
	}
	if (left < 0)
		left = 0;
	fmt_count(ibuf, sizeof(ibuf), iops);
	fprintf(stderr, "\r\033[K%s %s: %s IOPS  %.1f MiB/s  p99 %.1f us  %.0f s left", run->r->mode_name,
		phase == UB_PHASE_RAMP ? "ramp" : "run", ibuf,
		dt > 0 ? (double)(bytes - *last_bytes) / dt / (1024.0 * 1024.0) : 0, (double)p99 / 1e3, left);
	fflush(stderr);
	*last_ops = ops;
	*last_bytes = bytes;
	*last_ns = now;
}

void ub_run_drive(struct ub_run *run)
{
	const struct ub_opts *o = run->o;
	bool progress = o->progress == 1 || (o->progress == -1 && !o->json && isatty(STDERR_FILENO));
	uint64_t t_measure = run->t_begin_ns, last_ops = 0, last_bytes = 0, last_ns = run->t_begin_ns;
	uint64_t next_line = run->t_begin_ns + 1000000000ull;
	struct ub_cpu_times st1;
	struct rusage ru1;
	bool printed = false;

	for (;;) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		uint64_t now;
		int phase;

		if (atomic_load_explicit(&run->done, memory_order_acquire) == run->nworkers)
			break;
		nanosleep(&ts, NULL);
		now = urt_clock_ns();
		phase = atomic_load(&run->phase);
		if (phase == UB_PHASE_RAMP && now - run->t_begin_ns >= (uint64_t)(o->ramp_s * 1e9)) {
			sample_begin(run);
			t_measure = now;
			/* Only the driver moves RAMP -> MEASURE; a failing worker may have set STOP. */
			atomic_compare_exchange_strong(&run->phase, &phase, UB_PHASE_MEASURE);
			phase = atomic_load(&run->phase);
		}
		if (phase == UB_PHASE_MEASURE && !o->ops && now - t_measure >= (uint64_t)(o->runtime_s * 1e9))
			atomic_store(&run->phase, UB_PHASE_STOP);
		if (interrupted)
			atomic_store(&run->phase, UB_PHASE_STOP);
		if (progress && now >= next_line) {
			progress_line(run, now, t_measure, &last_ops, &last_bytes, &last_ns);
			next_line += 1000000000ull;
			printed = true;
		}
	}
	if (printed) {
		fprintf(stderr, "\r\033[K");
		fflush(stderr);
	}
	getrusage(RUSAGE_SELF, &ru1);
	ub_cpu_times_read(&st1);
	run->r->cpu_user_s = (double)(ru1.ru_utime.tv_sec - run->ru0.ru_utime.tv_sec) +
			     (double)(ru1.ru_utime.tv_usec - run->ru0.ru_utime.tv_usec) / 1e6;
	run->r->cpu_sys_s = (double)(ru1.ru_stime.tv_sec - run->ru0.ru_stime.tv_sec) +
			    (double)(ru1.ru_stime.tv_usec - run->ru0.ru_stime.tv_usec) / 1e6;
	run->r->steal_pct = ub_steal_pct(&run->st0, &st1);
}

void ub_run_collect(struct ub_run *run)
{
	struct ub_result *r = run->r;
	const struct ub_opts *o = run->o;
	uint64_t first[UB_CPUS_MAX], last[UB_CPUS_MAX];

	r->ncores = o->ncpus;
	for (unsigned c = 0; c < r->ncores; c++) {
		memset(&r->core[c], 0, sizeof(r->core[c]));
		r->core[c].cpu = o->cpus[c];
		urt_hist_init(&r->core[c].hist);
		first[c] = UINT64_MAX;
		last[c] = 0;
	}
	memset(r->series, 0, sizeof(r->series));
	r->errors = 0;
	r->verify_errors = 0;
	for (unsigned i = 0; i < run->nworkers; i++) {
		const struct ub_worker *w = &run->workers[i];
		struct ub_core_result *c = &r->core[w->core];

		c->ops += w->ops;
		c->reads += w->reads;
		c->writes += w->writes;
		c->syncs += w->syncs;
		c->bytes += w->bytes;
		urt_hist_merge(&c->hist, &w->hist);
		r->errors += w->errors;
		r->verify_errors += w->verify_errors;
		if (w->measuring && w->t_start_ns < first[w->core])
			first[w->core] = w->t_start_ns;
		if (w->measuring && w->t_end_ns > last[w->core])
			last[w->core] = w->t_end_ns;
		for (unsigned s = 0; s < UB_SERIES_MAX; s++)
			r->series[s] += w->series[s];
	}
	for (unsigned c = 0; c < r->ncores; c++)
		r->core[c].secs = last[c] > first[c] && first[c] != UINT64_MAX ? (double)(last[c] - first[c]) / 1e9 : 0;
	ub_result_sum(r);
	r->nseries = 0;
	for (unsigned s = 0; s < UB_SERIES_MAX; s++)
		if (r->series[s])
			r->nseries = s + 1;
	/*
	 * Keep the seconds that are mostly inside the measurement: a last
	 * partial one (the drain after STOP) would read as a collapse.
	 */
	if (r->total.secs >= 1 && r->nseries > (unsigned)(r->total.secs + 0.5))
		r->nseries = (unsigned)(r->total.secs + 0.5);
}
