/*
 * Text and JSON reports (see report.h).  Latencies print in microseconds.
 * JSON is built as a json-c object and printed by json-c, so every string
 * (a target path, an error message) is escaped correctly.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "urbench/report.h"

#include <json-c/json.h>

static double us(uint64_t ns)
{
	return (double)ns / 1e3;
}

static void header(FILE *f, const struct ub_opts *o)
{
	fprintf(f, "urbench: %s, bs %u B, QD %u per core, %u core%s (CPU", ub_rw_name(o->rw), o->bs, o->qd, o->ncpus,
		o->ncpus > 1 ? "s" : "");
	for (unsigned i = 0; i < o->ncpus; i++)
		fprintf(f, "%s%d", i ? "," : " ", o->cpus[i]);
	fprintf(f, "), %s, target %s", o->direct ? "O_DIRECT" : "buffered", o->target);
	if (o->rw == UB_RW_RANDRW)
		fprintf(f, ", %u%% reads", o->rwmix_read);
	if (o->fua)
		fprintf(f, ", FUA");
	if (o->fsync_every)
		fprintf(f, ", flush every %u writes", o->fsync_every);
	if (o->ops)
		fprintf(f, ", %" PRIu64 " ops", o->ops);
	else
		fprintf(f, ", %.1f s", o->runtime_s);
	if (o->ramp_s > 0)
		fprintf(f, " after %.1f s ramp", o->ramp_s);
	fprintf(f, "\n");
}

static void core_row(FILE *f, const char *label, const struct ub_core_result *c, bool uring)
{
	struct ub_lat l;

	ub_lat_summary(&c->hist, &l);
	fprintf(f, "%-6s %10.0f %9.1f %8.1f %8.1f %8.1f %9.1f %9.1f %7.2f ", label, ub_core_iops(c), ub_core_mibs(c),
		us(l.p50), us(l.p90), us(l.p99), us(l.p999), us(l.max), ub_core_syscalls_per_io(c));
	if (uring && c->enters)
		fprintf(f, "%6.1f\n", ub_core_batch(c));
	else if (uring)
		fprintf(f, "%6s\n", "-");
	else
		fprintf(f, "%6.1f\n", 1.0);
}

/*
 * The device's recovery state (urt_dev_health): always with `always`, else
 * only when something happened (a timeout or a state other than healthy).
 */
static void health_line(FILE *f, const char *label, const struct urt_dev_health *h, bool has, bool always)
{
	if (!has || (!always && h->state == URT_DEV_HEALTHY && !h->timeouts && !h->resets))
		return;
	fprintf(f, "%s: %s%s (timeouts %" PRIu64 ", retries %" PRIu64 ", resets %" PRIu64 ", failed resets %" PRIu64
		")\n", label, urt_dev_state_name(h->state), h->gone ? ", the device is gone" : "", h->timeouts,
		h->retries, h->resets, h->reset_failures);
}

static void report_one(FILE *f, const struct ub_result *r)
{
	bool uring = r->mode.engine != UB_ENGINE_PSYNC;
	char label[16];

	fprintf(f, "mode %s (backend %s%s)\n", r->mode_name, r->backend[0] ? r->backend : "-",
		r->bufs_registered ? ", registered buffers" : "");
	fprintf(f, "%-6s %10s %9s %8s %8s %8s %9s %9s %7s %6s\n", "core", "IOPS", "MiB/s", "p50 us", "p90 us",
		"p99 us", "p99.9 us", "max us", "sys/IO", "batch");
	for (unsigned i = 0; i < r->ncores; i++) {
		snprintf(label, sizeof(label), "cpu%d", r->core[i].cpu);
		core_row(f, label, &r->core[i], uring);
	}
	if (r->ncores > 1)
		core_row(f, "total", &r->total, uring);
	fprintf(f, "CPU %.2f us/IO (user %.2f s, sys %.2f s over %" PRIu64 " ops); steal %.1f%%", ub_result_cpu_us_per_io(r),
		r->cpu_user_s, r->cpu_sys_s, r->total.ops, r->steal_pct);
	if (r->total.syncs)
		fprintf(f, "; %" PRIu64 " flushes", r->total.syncs);
	if (uring && r->total.enters == 0)
		fprintf(f, "; no io_uring_enter during the measurement (SQPOLL)");
	fprintf(f, "\n");
	if (r->errors || r->verify_errors)
		fprintf(f, "errors: %" PRIu64 " failed ops, %" PRIu64 " failed verification\n", r->errors, r->verify_errors);
	health_line(f, "device", &r->health, r->has_health, true);
}

void ub_report_text(FILE *f, const struct ub_opts *o, const struct ub_result *r, unsigned n)
{
	double base;

	header(f, o);
	if (n == 1) {
		if (r[0].status == UB_EXIT_OK || r[0].total.ops)
			report_one(f, &r[0]);
		return;
	}
	base = ub_core_iops(&r[0].total);
	fprintf(f, "%-30s %10s %7s %9s %8s %8s %9s %8s %7s %6s %6s\n", "mode", "IOPS", "ratio", "MiB/s", "p50 us",
		"p99 us", "p99.9 us", "CPU us/IO", "sys/IO", "batch", "steal%");
	for (unsigned i = 0; i < n; i++) {
		const struct ub_result *x = &r[i];
		struct ub_lat l;

		if (x->not_runnable) {
			fprintf(f, "%-30s not runnable: %s\n", x->mode_name, x->errmsg);
			continue;
		}
		if (x->status != UB_EXIT_OK && x->total.ops == 0) {
			fprintf(f, "%-30s failed: %s\n", x->mode_name, x->errmsg);
			continue;
		}
		ub_lat_summary(&x->total.hist, &l);
		fprintf(f, "%-30s %10.0f %6.2fx %9.1f %8.1f %8.1f %9.1f %8.2f %7.2f ", x->mode_name,
			ub_core_iops(&x->total), base > 0 ? ub_core_iops(&x->total) / base : 0, ub_core_mibs(&x->total),
			us(l.p50), us(l.p99), us(l.p999), ub_result_cpu_us_per_io(x), ub_core_syscalls_per_io(&x->total));
		if (x->mode.engine == UB_ENGINE_PSYNC)
			fprintf(f, "%6.1f", 1.0);
		else if (x->total.enters)
			fprintf(f, "%6.1f", ub_core_batch(&x->total));
		else
			fprintf(f, "%6s", "-");
		fprintf(f, " %6.1f\n", x->steal_pct);
		if (x->status != UB_EXIT_OK)
			fprintf(f, "%-30s   (%s)\n", "", x->errmsg);
		health_line(f, "  device", &x->health, x->has_health, false);
	}
}

/* A number rounded to `digits` decimals (NaN and infinities become 0), printed as written. */
static json_object *num(double v, int digits)
{
	char buf[64];

	if (!isfinite(v))
		v = 0;
	snprintf(buf, sizeof(buf), "%.*f", digits, v);
	return json_object_new_double_s(v, buf);
}

static json_object *u64(uint64_t v)
{
	return json_object_new_uint64(v);
}

static void add(json_object *o, const char *key, json_object *v)
{
	json_object_object_add(o, key, v);
}

static json_object *json_core(const struct ub_core_result *c, bool uring)
{
	json_object *o = json_object_new_object(), *lat = json_object_new_object();
	struct ub_lat l;

	ub_lat_summary(&c->hist, &l);
	add(o, "cpu", json_object_new_int(c->cpu));
	add(o, "ops", u64(c->ops));
	add(o, "reads", u64(c->reads));
	add(o, "writes", u64(c->writes));
	add(o, "syncs", u64(c->syncs));
	add(o, "bytes", u64(c->bytes));
	add(o, "secs", num(c->secs, 6));
	add(o, "iops", num(ub_core_iops(c), 1));
	add(o, "mib_s", num(ub_core_mibs(c), 3));
	add(lat, "min", num(us(l.min), 3));
	add(lat, "mean", num(l.mean / 1e3, 3));
	add(lat, "p50", num(us(l.p50), 3));
	add(lat, "p90", num(us(l.p90), 3));
	add(lat, "p99", num(us(l.p99), 3));
	add(lat, "p99_9", num(us(l.p999), 3));
	add(lat, "max", num(us(l.max), 3));
	add(o, "lat_us", lat);
	add(o, "syscalls", u64(c->enters));
	add(o, "syscalls_per_io", num(ub_core_syscalls_per_io(c), 4));
	add(o, "batch", num(uring ? ub_core_batch(c) : 1.0, 3));
	return o;
}

json_object *ub_report_json_object(const struct ub_opts *o, const struct ub_result *r, unsigned n)
{
	json_object *top = json_object_new_object(), *cpus = json_object_new_array(), *runs = json_object_new_array();
	double base = n ? ub_core_iops(&r[0].total) : 0;

	add(top, "tool", json_object_new_string("urbench"));
	add(top, "format", json_object_new_int(1));
	add(top, "target", json_object_new_string(o->target));
	add(top, "rw", json_object_new_string(ub_rw_name(o->rw)));
	add(top, "rwmix_read", json_object_new_int((int)o->rwmix_read));
	add(top, "bs", u64(o->bs));
	add(top, "qd", u64(o->qd));
	for (unsigned i = 0; i < o->ncpus; i++)
		json_object_array_add(cpus, json_object_new_int(o->cpus[i]));
	add(top, "cpus", cpus);
	add(top, "direct", json_object_new_boolean(o->direct));
	add(top, "runtime_s", num(o->ops ? 0 : o->runtime_s, 3));
	add(top, "ops", u64(o->ops));
	add(top, "ramp_s", num(o->ramp_s, 3));
	add(top, "seed", u64(o->seed));
	add(top, "fua", json_object_new_boolean(o->fua));
	add(top, "fsync_every", u64(o->fsync_every));
	add(top, "verify", json_object_new_boolean(o->verify));
	for (unsigned i = 0; i < n; i++) {
		const struct ub_result *x = &r[i];
		bool uring = x->mode.engine != UB_ENGINE_PSYNC;
		json_object *run = json_object_new_object(), *cores = json_object_new_array();
		json_object *series = json_object_new_array();

		add(run, "mode", json_object_new_string(x->mode_name));
		add(run, "backend", json_object_new_string(x->backend));
		add(run, "status", json_object_new_int(x->status));
		add(run, "error", json_object_new_string(x->errmsg));
		add(run, "ratio_iops", num(base > 0 ? ub_core_iops(&x->total) / base : 0, 4));
		add(run, "cpu_user_s", num(x->cpu_user_s, 4));
		add(run, "cpu_sys_s", num(x->cpu_sys_s, 4));
		add(run, "cpu_us_per_io", num(ub_result_cpu_us_per_io(x), 4));
		add(run, "steal_pct", num(x->steal_pct, 2));
		add(run, "errors", u64(x->errors));
		add(run, "verify_errors", u64(x->verify_errors));
		add(run, "bufs_registered", json_object_new_boolean(x->bufs_registered));
		add(run, "ring_flags", u64(x->ring_flags));
		if (x->has_health) {
			json_object *h = json_object_new_object();

			add(h, "state", json_object_new_string(urt_dev_state_name(x->health.state)));
			add(h, "timeouts", u64(x->health.timeouts));
			add(h, "rounds", u64(x->health.rounds));
			add(h, "retries", u64(x->health.retries));
			add(h, "resets", u64(x->health.resets));
			add(h, "reset_failures", u64(x->health.reset_failures));
			add(h, "gone", json_object_new_boolean(x->health.gone));
			add(run, "device_health", h);
		}
		add(run, "total", json_core(&x->total, uring));
		for (unsigned c = 0; c < x->ncores; c++)
			json_object_array_add(cores, json_core(&x->core[c], uring));
		add(run, "cores", cores);
		for (unsigned s = 0; s < x->nseries; s++)
			json_object_array_add(series, u64(x->series[s]));
		add(run, "iops_series", series);
		json_object_array_add(runs, run);
	}
	add(top, "runs", runs);
	return top;
}

void ub_report_json(FILE *f, const struct ub_opts *o, const struct ub_result *r, unsigned n)
{
	json_object *top = ub_report_json_object(o, r, n);

	/* json-c escapes every string (quotes, backslashes, control characters). */
	fprintf(f, "%s\n", json_object_to_json_string_ext(top, JSON_C_TO_STRING_SPACED |
							    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(top);
}
