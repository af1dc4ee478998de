/*
 * Text and JSON reports (see report.h).  Latencies print in microseconds.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "urbench/report.h"

static double us(uint64_t ns)
{
	return (double)ns / 1e3;
}

/* A finite number for JSON: NaN and infinities become 0. */
static double fin(double v)
{
	return isfinite(v) ? v : 0;
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
	}
}

void ub_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch == '\n')
			fputs("\\n", f);
		else if (ch == '\t')
			fputs("\\t", f);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void json_core(FILE *f, const struct ub_core_result *c, bool uring)
{
	struct ub_lat l;

	ub_lat_summary(&c->hist, &l);
	fprintf(f, "{\"cpu\": %d, \"ops\": %" PRIu64 ", \"reads\": %" PRIu64 ", \"writes\": %" PRIu64
		", \"syncs\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"secs\": %.6f, \"iops\": %.1f, \"mib_s\": %.3f, "
		"\"lat_us\": {\"min\": %.3f, \"mean\": %.3f, \"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, "
		"\"p99_9\": %.3f, \"max\": %.3f}, \"syscalls\": %" PRIu64 ", \"syscalls_per_io\": %.4f, \"batch\": %.3f}",
		c->cpu, c->ops, c->reads, c->writes, c->syncs, c->bytes, fin(c->secs), fin(ub_core_iops(c)),
		fin(ub_core_mibs(c)), us(l.min), fin(l.mean / 1e3), us(l.p50), us(l.p90), us(l.p99), us(l.p999),
		us(l.max), c->enters, fin(ub_core_syscalls_per_io(c)), uring ? fin(ub_core_batch(c)) : 1.0);
}

void ub_report_json(FILE *f, const struct ub_opts *o, const struct ub_result *r, unsigned n)
{
	double base = n ? ub_core_iops(&r[0].total) : 0;

	fprintf(f, "{\"tool\": \"urbench\", \"format\": 1, \"target\": ");
	ub_json_string(f, o->target);
	fprintf(f, ", \"rw\": \"%s\", \"rwmix_read\": %u, \"bs\": %u, \"qd\": %u, \"cpus\": [", ub_rw_name(o->rw),
		o->rwmix_read, o->bs, o->qd);
	for (unsigned i = 0; i < o->ncpus; i++)
		fprintf(f, "%s%d", i ? ", " : "", o->cpus[i]);
	fprintf(f, "], \"direct\": %s, \"runtime_s\": %.3f, \"ops\": %" PRIu64 ", \"ramp_s\": %.3f, \"seed\": %" PRIu64
		", \"fua\": %s, \"fsync_every\": %u, \"verify\": %s, \"runs\": [",
		o->direct ? "true" : "false", o->ops ? 0 : o->runtime_s, o->ops, o->ramp_s, o->seed,
		o->fua ? "true" : "false", o->fsync_every, o->verify ? "true" : "false");
	for (unsigned i = 0; i < n; i++) {
		const struct ub_result *x = &r[i];
		bool uring = x->mode.engine != UB_ENGINE_PSYNC;

		fprintf(f, "%s\n  {\"mode\": ", i ? "," : "");
		ub_json_string(f, x->mode_name);
		fprintf(f, ", \"backend\": ");
		ub_json_string(f, x->backend);
		fprintf(f, ", \"status\": %d, \"error\": ", x->status);
		ub_json_string(f, x->errmsg);
		fprintf(f, ", \"ratio_iops\": %.4f, \"cpu_user_s\": %.4f, \"cpu_sys_s\": %.4f, \"cpu_us_per_io\": %.4f"
			", \"steal_pct\": %.2f, \"errors\": %" PRIu64 ", \"verify_errors\": %" PRIu64
			", \"bufs_registered\": %s, \"ring_flags\": %u,\n   \"total\": ",
			base > 0 ? fin(ub_core_iops(&x->total) / base) : 0, fin(x->cpu_user_s), fin(x->cpu_sys_s),
			fin(ub_result_cpu_us_per_io(x)), fin(x->steal_pct), x->errors, x->verify_errors,
			x->bufs_registered ? "true" : "false", x->ring_flags);
		json_core(f, &x->total, uring);
		fprintf(f, ",\n   \"cores\": [");
		for (unsigned c = 0; c < x->ncores; c++) {
			fprintf(f, "%s", c ? ", " : "");
			json_core(f, &x->core[c], uring);
		}
		fprintf(f, "],\n   \"iops_series\": [");
		for (unsigned s = 0; s < x->nseries; s++)
			fprintf(f, "%s%" PRIu64, s ? ", " : "", x->series[s]);
		fprintf(f, "]}");
	}
	fprintf(f, "\n]}\n");
}
