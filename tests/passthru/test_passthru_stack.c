/*
 * The upper layers on NVMe passthrough, inside the QEMU guest: the page
 * store commits and recovers on /dev/ngXnY, and urbench runs its
 * passthrough mode there and its block mode on the same namespace's
 * /dev/nvmeXnY, side by side (the ratio is printed; emulation dominates
 * the absolute numbers).  Outside the guest every test is a skip.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "urt/dev.h"
#include "urt/fiber.h"
#include "urt/ps.h"
#include "urt/rt.h"
#include "urbench/app.h"

static const char *need_env(const char *name)
{
	const char *v = getenv(name);

	if (!v || !*v)
		cr_skip_test("%s is not set: run this inside tests/nvme-vm/run-vm.sh", name);
	return v;
}

struct ps_run {
	struct urt_dev *dev;
	int open1, open2, commits_bad, verify_bad, close1, close2;
	uint64_t pages;
	sem_t done;
};

#define NTX 64

static void ps_body(void *p)
{
	struct ps_run *r = p;
	struct urt_ps_opts o;
	struct urt_ps *ps;

	urt_ps_opts_default(&o);
	o.format = true;
	o.region_bytes = 32u << 20;
	r->open1 = urt_ps_open(r->dev, &o, &ps);
	if (r->open1)
		goto out;
	r->pages = urt_ps_page_count(ps);
	for (int i = 0; i < NTX; i++) {
		struct urt_tx *tx;
		void *data;

		if (urt_tx_begin(ps, &tx) || urt_page_get(tx, 1 + (uint64_t)i, URT_PAGE_WRITE, &data)) {
			r->commits_bad++;
			continue;
		}
		memset(data, 0, 64);
		snprintf(data, 64, "passthrough page %d", i);
		r->commits_bad += urt_tx_commit(tx) != 0;
	}
	r->close1 = urt_ps_close(ps);
	/* Reopen: recovery from the log and checkpoint on the NVMe namespace. */
	o.format = false;
	r->open2 = urt_ps_open(r->dev, &o, &ps);
	if (r->open2)
		goto out;
	for (int i = 0; i < NTX; i++) {
		struct urt_tx *tx;
		void *data;
		char want[64];

		snprintf(want, sizeof(want), "passthrough page %d", i);
		if (urt_tx_begin(ps, &tx) || urt_page_get(tx, 1 + (uint64_t)i, URT_PAGE_READ, &data)) {
			r->verify_bad++;
			continue;
		}
		r->verify_bad += strcmp(data, want) != 0;
		urt_tx_commit(tx);
	}
	r->close2 = urt_ps_close(ps);
out:
	sem_post(&r->done);
}

Test(passthru_stack, page_store_on_ng)
{
	const char *ng = need_env("URT_NVME_NS512");
	struct ps_run r = { 0 };
	struct urt_rt_opts o;
	struct urt_rt *rt;
	static const int cpu0[] = { 0 };

	urt_rt_opts_default(&o);
	o.cpus = cpu0;
	o.ncpus = 1;
	cr_assert_eq(urt_rt_start(&o, &rt), 0, "%s", urt_last_error());
	cr_assert_eq(urt_dev_open(ng, NULL, &r.dev), 0, "%s", urt_last_error());
	cr_assert_str_eq(urt_dev_info(r.dev)->backend, "passthru");
	sem_init(&r.done, 0, 0);
	cr_assert_eq(urt_fiber_spawn_on(rt, 0, ps_body, &r), 0);
	sem_wait(&r.done);
	urt_dev_close(r.dev);
	urt_rt_stop(rt);
	cr_expect_eq(r.open1, 0, "format: %d", r.open1);
	cr_expect_gt(r.pages, NTX);
	cr_expect_eq(r.commits_bad, 0);
	cr_expect_eq(r.close1, 0);
	cr_expect_eq(r.open2, 0, "reopen: %d", r.open2);
	cr_expect_eq(r.verify_bad, 0);
	cr_expect_eq(r.close2, 0);
}

/* Run urbench in-process with args; return its exit code and its JSON. */
static int urbench(char *json, size_t cap, int argc, const char **argv)
{
	FILE *out = fmemopen(json, cap, "w");
	int rc;

	cr_assert(out);
	rc = ub_main(argc, (char **)argv, out, stderr);
	fclose(out);
	return rc;
}

/* The first "iops": value of urbench's total (the last "iops" in the JSON is the total). */
static double json_last_iops(const char *json)
{
	const char *p = json, *last = NULL;

	while ((p = strstr(p, "\"iops\":")))
		last = p++;
	return last ? strtod(last + 7, NULL) : -1;
}

Test(passthru_stack, urbench_passthru_vs_block)
{
	const char *ng = need_env("URT_NVME_NS512");
	const char *blk = need_env("URT_NVME_BLK512");
	static char j1[1 << 16], j2[1 << 16], j3[1 << 16];
	const char *verify[] = { "urbench", ng, "--mode", "passthru+fixedbufs", "--rw", "write", "--bs", "64K",
				 "--size", "16M", "--ops", "256", "--verify", "--json", "--no-progress" };
	const char *pt[] = { "urbench", ng, "--mode", "passthru+fixedbufs", "--rw", "randread", "--bs", "4K",
			     "--qd", "32", "--size", "64M", "--runtime", "3", "--json", "--no-progress" };
	const char *bl[] = { "urbench", blk, "--mode", "uring+fixedbufs", "--rw", "randread", "--bs", "4K",
			     "--qd", "32", "--size", "64M", "--runtime", "3", "--json", "--no-progress" };
	double a, b;

	cr_expect_eq(urbench(j1, sizeof(j1), 15, verify), 0, "urbench --verify write on %s", ng);
	cr_assert_eq(urbench(j2, sizeof(j2), 16, pt), 0, "urbench passthru on %s", ng);
	cr_assert_eq(urbench(j3, sizeof(j3), 16, bl), 0, "urbench block on %s", blk);
	a = json_last_iops(j2);
	b = json_last_iops(j3);
	cr_expect_gt(a, 0);
	cr_expect_gt(b, 0);
	printf("urbench 4K randread QD32 in the guest: passthru %.0f IOPS, block %.0f IOPS, ratio %.2f\n", a, b,
	       b > 0 ? a / b : 0);
}
