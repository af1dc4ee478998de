/*
 * Derived figures and aggregation of urbench results.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "urbench/result.h"

double ub_core_iops(const struct ub_core_result *c)
{
	return c->secs > 0 ? (double)c->ops / c->secs : 0;
}

double ub_core_mibs(const struct ub_core_result *c)
{
	return c->secs > 0 ? (double)c->bytes / c->secs / (1024.0 * 1024.0) : 0;
}

double ub_core_syscalls_per_io(const struct ub_core_result *c)
{
	return c->ops ? (double)c->enters / (double)c->ops : 0;
}

double ub_core_batch(const struct ub_core_result *c)
{
	return c->enters ? (double)c->sqes / (double)c->enters : 0;
}

double ub_result_cpu_us_per_io(const struct ub_result *r)
{
	return r->total.ops ? (r->cpu_user_s + r->cpu_sys_s) * 1e6 / (double)r->total.ops : 0;
}

void ub_lat_summary(const struct urt_hist *h, struct ub_lat *out)
{
	out->min = h->count ? h->min : 0;
	out->p50 = urt_hist_percentile(h, 50);
	out->p90 = urt_hist_percentile(h, 90);
	out->p99 = urt_hist_percentile(h, 99);
	out->p999 = urt_hist_percentile(h, 99.9);
	out->max = h->count ? h->max : 0;
	out->mean = urt_hist_mean(h);
}

void ub_result_sum(struct ub_result *r)
{
	struct ub_core_result *t = &r->total;

	memset(t, 0, sizeof(*t));
	t->cpu = -1;
	urt_hist_init(&t->hist);
	for (unsigned i = 0; i < r->ncores; i++) {
		const struct ub_core_result *c = &r->core[i];

		t->ops += c->ops;
		t->reads += c->reads;
		t->writes += c->writes;
		t->syncs += c->syncs;
		t->bytes += c->bytes;
		t->enters += c->enters;
		t->sqes += c->sqes;
		if (c->secs > t->secs)
			t->secs = c->secs;
		urt_hist_merge(&t->hist, &c->hist);
	}
}

int ub_cpu_times_read(struct ub_cpu_times *t)
{
	uint64_t v[8] = { 0 };
	FILE *f = fopen("/proc/stat", "re");
	int n;

	memset(t, 0, sizeof(*t));
	if (!f)
		return -errno;
	n = fscanf(f, "cpu %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
		   " %" SCNu64, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n < 8)
		return -EIO;
	/* user nice system idle iowait irq softirq steal; guest time is already in user. */
	t->steal = v[7];
	for (int i = 0; i < 8; i++)
		t->total += v[i];
	return 0;
}

double ub_steal_pct(const struct ub_cpu_times *a, const struct ub_cpu_times *b)
{
	uint64_t dt = b->total - a->total;

	return dt ? 100.0 * (double)(b->steal - a->steal) / (double)dt : 0;
}
