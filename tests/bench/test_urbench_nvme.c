/*
 * urbench on a real NVMe driver, inside the test guest (tests/nvme-vm):
 * passthrough on the generic char device, polled I/O on the block device
 * (the guest has poll queues), and data written by one mode read back and
 * verified by another.  Outside the guest every test skips; inside it a
 * missing device variable is a failure, as tests/nvme-vm/README.md asks.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "urbench/engine.h"
#include "urbench/target.h"

static struct ub_result *res;

static void setup(void)
{
	res = calloc(1, sizeof(*res));
	cr_assert_not_null(res);
}

static void teardown(void)
{
	free(res);
}

TestSuite(urbench_nvme, .init = setup, .fini = teardown, .timeout = 240);

static const char *env_or_skip(const char *name)
{
	const char *v = getenv(name);

	if (v && *v)
		return v;
	if (!getenv("URT_NVME_VM"))
		cr_skip_test("not in the NVMe test guest (tests/nvme-vm/run-vm.sh): %s unset", name);
	cr_assert_fail("the guest promised %s but it is unset", name);
	return NULL;
}

static void opts_for(struct ub_opts *o, const char *path, enum ub_rw rw, unsigned qd, uint64_t ops)
{
	ub_opts_default(o);
	snprintf(o->target, sizeof(o->target), "%s", path);
	o->target_kind = UB_TARGET_PATH;
	o->size_bytes = 4u << 20;	/* The first 4 MiB of the namespace. */
	o->size_given = true;
	o->rw = rw;
	o->qd = qd;
	o->ops = ops;
	o->progress = 0;
	o->verify = true;
}

static int run(const struct ub_opts *o, const char *mode_name)
{
	struct ub_mode m;
	struct ub_target t;
	bool created;
	char err[512];

	cr_assert_eq(ub_mode_parse(mode_name, &m, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(ub_target_open(o, &m, 1, &t, &created, err, sizeof(err)), 0, "%s: %s", mode_name, err);
	cr_assert_not(created);
	return ub_run_mode(o, &m, &t, res);
}

/* Write the signature over 4 MiB with writer, then read it all back with reader. */
static void write_then_verify(const char *wpath, const char *writer, const char *rpath, const char *reader)
{
	struct ub_opts o;
	uint64_t blocks = (4u << 20) / 4096;
	int status;

	opts_for(&o, wpath, UB_RW_WRITE, 8, blocks);
	status = run(&o, writer);
	cr_assert_eq(status, UB_EXIT_OK, "%s: %s", writer, res->errmsg);
	cr_assert_eq(res->total.writes, blocks);
	opts_for(&o, rpath, UB_RW_READ, 8, blocks);
	status = run(&o, reader);
	cr_assert_eq(status, UB_EXIT_OK, "%s after %s: %s", reader, writer, res->errmsg);
	cr_assert_eq(res->total.reads, blocks);
	cr_assert_eq(res->verify_errors, 0);
}

Test(urbench_nvme, passthru_writes_uring_reads)
{
	const char *ng = env_or_skip("URT_NVME_NS4K");
	const char *blk = env_or_skip("URT_NVME_BLK4K");

	write_then_verify(ng, "passthru+fixedbufs", blk, "uring+fixedbufs+regfiles");
	cr_assert_str_eq(res->backend, "file");
}

Test(urbench_nvme, uring_writes_passthru_reads)
{
	const char *ng = env_or_skip("URT_NVME_NS512");
	const char *blk = env_or_skip("URT_NVME_BLK512");

	write_then_verify(blk, "uring+fixedbufs+regfiles", ng, "passthru");
	cr_assert_str_eq(res->backend, "passthru");
}

Test(urbench_nvme, iopoll_on_the_block_device)
{
	const char *blk = env_or_skip("URT_NVME_BLK4K");
	struct ub_opts o;
	int status;

	write_then_verify(blk, "psync", blk, "uring+fixedbufs+regfiles+iopoll");
	opts_for(&o, blk, UB_RW_RANDREAD, 16, 3000);
	status = run(&o, "uring+iopoll");
	cr_assert_eq(status, UB_EXIT_OK, "%s", res->errmsg);
	cr_assert_eq(res->total.ops, 3000);
}

Test(urbench_nvme, passthru_iopoll)
{
	const char *ng = env_or_skip("URT_NVME_NS4K");
	struct ub_opts o;
	int status;

	opts_for(&o, ng, UB_RW_RANDREAD, 16, 3000);
	o.verify = false;
	status = run(&o, "passthru+fixedbufs+regfiles+iopoll");
	cr_assert_eq(status, UB_EXIT_OK, "%s", res->errmsg);
	cr_assert_eq(res->total.ops, 3000);
	cr_assert_eq(res->total.bytes, 3000ull * 4096);
}

Test(urbench_nvme, uring_on_the_char_device_says_use_passthru)
{
	const char *ng = env_or_skip("URT_NVME_NS4K");
	struct ub_opts o;
	struct ub_mode m;
	struct ub_target t;
	bool created;
	char err[512];

	opts_for(&o, ng, UB_RW_RANDREAD, 1, 10);
	cr_assert_eq(ub_mode_parse("uring", &m, err, sizeof(err)), 0);
	cr_assert_eq(ub_target_open(&o, &m, 1, &t, &created, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "use --mode passthru"), "%s", err);
}
