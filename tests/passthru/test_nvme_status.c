/*
 * NVMe completion statuses on the host, without a device: the status ->
 * errno table (the Linux driver's), the decoding that urt_io_nvme_status
 * gives the caller, the retry rule (DNR, and CRD with the controller's
 * CRDT), and, through a real runtime, that a retry really waits the CRDT
 * delay the status asked for.
 *
 * The runtime tests use a device built in the test: the passthrough
 * backend's own prep, complete and retryable, with the prepared command
 * swapped for a NOP and the NOP's result swapped for a chosen NVMe status
 * (a "fake status"), so that everything from the CQE to the caller is the
 * code a real controller's answer goes through.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "../runtime/fixture.h"
#include "base/clock.h"
#include "passthru/nvme_status.h"
#include "passthru/passthru.h"
#include "runtime/core.h"
#include "runtime/dev/backend.h"
#include "urt/error.h"
#include "urt/nvme.h"

Test(nvme_status, errno_follows_the_linux_driver)
{
	/* Media and data errors: BLK_STS_MEDIUM -> -ENODATA, as a block device read returns. */
	cr_assert_eq(nvme_status_errno(0x281), -ENODATA, "Unrecovered Read Error");
	cr_assert_eq(nvme_status_errno(0x280), -ENODATA, "Write Fault");
	cr_assert_eq(nvme_status_errno(0x287), -ENODATA, "Deallocated or Unwritten Logical Block");
	cr_assert_eq(nvme_status_errno(0x182), -ENODATA, "Attempted Write to Read Only Range");
	/* Protection information: BLK_STS_PROTECTION -> -EILSEQ. */
	cr_assert_eq(nvme_status_errno(0x282), -EILSEQ);
	cr_assert_eq(nvme_status_errno(0x284), -EILSEQ);
	/* Capacity Exceeded: -ENOSPC; LBA Out of Range: BLK_STS_TARGET -> -EREMOTEIO. */
	cr_assert_eq(nvme_status_errno(0x081), -ENOSPC);
	cr_assert_eq(nvme_status_errno(0x080), -EREMOTEIO);
	cr_assert_eq(nvme_status_errno(0x4080), -EREMOTEIO, "DNR does not change the errno");
	cr_assert_eq(nvme_status_errno(0x082), -EREMOTEIO, "Namespace Not Ready");
	/* Invalid opcode, field, namespace: BLK_STS_NOTSUPP -> -EOPNOTSUPP. */
	cr_assert_eq(nvme_status_errno(0x001), -EOPNOTSUPP);
	cr_assert_eq(nvme_status_errno(0x4002), -EOPNOTSUPP);
	cr_assert_eq(nvme_status_errno(0x00b), -EOPNOTSUPP);
	cr_assert_eq(nvme_status_errno(0x083), -EBADE, "Reservation Conflict");
	cr_assert_eq(nvme_status_errno(0x370), -ENOLINK, "Host Pathing Error");
	cr_assert_eq(nvme_status_errno(0x1bd), -EOVERFLOW);
	cr_assert_eq(nvme_status_errno(0x1be), -ETOOMANYREFS);
	/* Everything else is BLK_STS_IOERR: -EIO. */
	cr_assert_eq(nvme_status_errno(0x004), -EIO, "Data Transfer Error");
	cr_assert_eq(nvme_status_errno(0x006), -EIO, "Internal Error");
	cr_assert_eq(nvme_status_errno(0x371), -EIO, "Command Aborted By Host");
	cr_assert_eq(nvme_status_errno(0x7ee), -EIO, "vendor specific");
	cr_assert_eq(nvme_status_errno(0x288), -EIO, "a media code Linux does not name");
	cr_assert_eq(nvme_status_errno(0x4000), 0, "SCT 0 / SC 0 is success, whatever DNR says");
	/* Every result is an errno the C library can explain: no private band is left. */
	for (unsigned s = 1; s < 0x800; s++) {
		int err = nvme_status_errno((uint16_t)s);

		cr_assert(err < 0 && err >= -4095, "status %#x gave %d", s, err);
		cr_assert_null(strstr(urt_strerror(err), "Unknown"), "status %#x: %s", s, urt_strerror(err));
	}
}

Test(nvme_status, names_and_decoding)
{
	struct urt_nvme_status st;
	char buf[128];

	cr_assert(nvme_status_table_sorted(), "the status table must be sorted for its binary search");
	cr_assert_str_eq(nvme_status_name(0x281), "Unrecovered Read Error");
	cr_assert_str_eq(nvme_status_name(0x4080), "LBA Out of Range", "DNR must not change the name");
	cr_assert_str_eq(nvme_status_name(0x371), "Command Aborted By Host");
	cr_assert_null(nvme_status_name(0x2ff));

	/* SCT 2, SC 81h, CRD 2, More, DNR. */
	urt_nvme_status_decode(0x7281, 0x02, &st);
	cr_assert_eq(st.raw, 0x7281);
	cr_assert_eq(st.sct, 2);
	cr_assert_eq(st.sc, 0x81);
	cr_assert_eq(st.crd, 2);
	cr_assert(st.more);
	cr_assert(st.dnr);
	cr_assert_eq(st.opcode, 0x02);
	cr_assert_str_eq(urt_nvme_status_str(&st, buf, sizeof(buf)),
			 "Unrecovered Read Error (SCT 2h, SC 81h, CRD 2, More 1, DNR 1; Read)");
	urt_nvme_status_decode(0x07ee, 0x7f, &st);
	cr_assert_str_eq(urt_nvme_status_str(&st, buf, sizeof(buf)),
			 "Vendor Specific (SCT 7h, SC EEh, CRD 0, More 0, DNR 0; opcode 7Fh)");
	cr_assert_str_eq(nvme_status_format(0x4281, buf, sizeof(buf)),
			 "Unrecovered Read Error (SCT 2h, SC 81h, DNR 1)");
}

Test(nvme_status, retry_delay_from_crdt)
{
	static const uint16_t crdt[3] = { 1, 25, 600 };

	cr_assert_eq(nvme_status_retry_delay_ns(0x0281, crdt), 0, "CRD 0: no delay asked");
	cr_assert_eq(nvme_status_retry_delay_ns(0x0821, crdt), 100000000ull, "CRD 1: CRDT1 x 100 ms");
	cr_assert_eq(nvme_status_retry_delay_ns(0x1021, crdt), 2500000000ull, "CRD 2: CRDT2");
	cr_assert_eq(nvme_status_retry_delay_ns(0x1821, crdt), 60000000000ull, "CRD 3: CRDT3");
}

/* --- The backend's hooks on a device built in the test ----------------------------- */

static struct pt_dev fake_pt;
static struct urt_dev fake_dev;
static struct urt_backend fake_be;
static _Atomic int fake_status;		/* What each command "completes" with. */
static _Atomic unsigned fake_cmds;	/* Commands the fake device saw. */

/* The real passthrough prep, then the command swapped for a NOP that never reaches a device. */
static int64_t fake_prep(struct urt_dev *dev, struct urt_core *c, struct urt_req *req, struct io_uring_sqe *sqe)
{
	int64_t n = urt_backend_passthru.prep(dev, c, req, sqe);

	if (n >= 0) {
		memset(sqe, 0, 2 * sizeof(*sqe));
		io_uring_prep_nop(sqe);
		atomic_fetch_add(&fake_cmds, 1);
	}
	return n;
}

/* The NOP's result replaced by the fake status, then the real passthrough completion. */
static int fake_complete(struct urt_dev *dev, struct urt_req *req, int32_t res, const struct io_uring_cqe *cqe)
{
	return urt_backend_passthru.complete(dev, req, res == 0 ? atomic_load(&fake_status) : res, cqe);
}

static void fake_dev_init(uint16_t crdt1)
{
	memset(&fake_pt, 0, sizeof(fake_pt));
	fake_pt.geo.lba_shift = 9;
	fake_pt.geo.crdt[0] = crdt1;
	fake_be = urt_backend_passthru;
	fake_be.name = "passthru";
	fake_be.open = NULL;
	fake_be.prep = fake_prep;
	fake_be.complete = fake_complete;
	memset(&fake_dev, 0, sizeof(fake_dev));
	fake_dev.be = &fake_be;
	fake_dev.fd = -1;
	atomic_init(&fake_dev.slot, -1);
	fake_dev.priv = &fake_pt;
	fake_dev.info = (struct urt_dev_info){
		.backend = "passthru", .size_bytes = 1u << 20, .block_bytes = 512, .phys_block_bytes = 512,
		.mem_align = 1, .off_align = 512, .max_io_bytes = 1u << 16, .is_nvme = true, .nsid = 1,
	};
	snprintf(fake_dev.path, sizeof(fake_dev.path), "fake-ng0n1");
}

Test(nvme_status, backend_hooks)
{
	struct urt_req req;
	uint64_t delay;

	fake_dev_init(3);
	memset(&req, 0, sizeof(req));
	req.op = URT_OP_READ;
	req.seg = 4096;
	req.be[PT_BE_CMD] = (uint64_t)PT_IO_READ << 16;
	/* A passthrough CQE has no byte count: success is the SQE's share. */
	cr_assert_eq(urt_backend_passthru.complete(&fake_dev, &req, 0, NULL), 4096);
	cr_assert_eq(urt_backend_passthru.complete(&fake_dev, &req, 0x281, NULL), -ENODATA);
	cr_assert_eq(req.be[PT_BE_CMD] & 0xffff, 0x281, "the status is kept for retryable()");
	delay = 1000000;
	cr_assert(urt_backend_passthru.retryable(&fake_dev, &req, -ENODATA, &delay), "DNR clear: retry");
	cr_assert_eq(delay, 1000000, "CRD 0: the runtime's own backoff");
	cr_assert_eq(urt_backend_passthru.complete(&fake_dev, &req, 0x0821, NULL), -EREMOTEIO);
	cr_assert(urt_backend_passthru.retryable(&fake_dev, &req, -EREMOTEIO, &delay));
	cr_assert_eq(delay, 300000000ull, "CRD 1 with CRDT1 = 3: 300 ms");
	delay = 1000000000ull;
	cr_assert(urt_backend_passthru.retryable(&fake_dev, &req, -EREMOTEIO, &delay));
	cr_assert_eq(delay, 1000000000ull, "a longer backoff stays");
	cr_assert_eq(urt_backend_passthru.complete(&fake_dev, &req, 0x4821, NULL), -EREMOTEIO);
	cr_assert_not(urt_backend_passthru.retryable(&fake_dev, &req, -EREMOTEIO, &delay), "DNR: never retry");
	/* Kernel errors carry no status: the runtime's errno rule. */
	cr_assert_eq(urt_backend_passthru.complete(&fake_dev, &req, -EFAULT, NULL), -EFAULT);
	cr_assert_eq(req.be[PT_BE_CMD] & 0xffff, 0, "a kernel error leaves no status behind");
	cr_assert(urt_backend_passthru.retryable(&fake_dev, &req, -EIO, &delay));
	cr_assert_not(urt_backend_passthru.retryable(&fake_dev, &req, -EINVAL, &delay));
	/* The driver's abort (timeout or reset) becomes a bounded, retryable timeout. */
	cr_assert_eq(urt_backend_passthru.complete(&fake_dev, &req, -EINTR, NULL), -ETIMEDOUT);
}

/* --- Through the runtime ------------------------------------------------------------- */

struct crd_run {
	int res;			/* The read's result. */
	int st_ret;			/* urt_io_nvme_status's return. */
	struct urt_nvme_status st;	/* What it gave. */
	uint64_t elapsed_ns;		/* Submit to delivery. */
};

static void crd_body(void *arg)
{
	struct crd_run *r = arg;
	struct urt_io io;
	void *buf = urt_buf_get(4096);
	uint64_t t0 = urt_clock_ns();

	urt_io_prep_read(&io, &fake_dev, buf, 4096, 8192);
	r->res = urt_io_wait(&io);
	r->elapsed_ns = urt_clock_ns() - t0;
	r->st_ret = urt_io_nvme_status(&io, &r->st);
	urt_buf_put(buf);
}

/* One read that "completes" with status, retried at most twice; the runtime's counters in *st. */
static void run_crd(uint16_t status, struct crd_run *r, struct urt_stats *stats)
{
	static const int cpu0[] = { 0 };
	struct urt_rt_opts o;
	struct urt_rt *rt;

	urt_rt_opts_default(&o);
	o.cpus = cpu0;
	o.ncpus = 1;
	o.retry_max = 2;
	o.retry_backoff_ns = 1000000;
	atomic_store(&fake_status, status);
	atomic_store(&fake_cmds, 0);
	rt = fx_start(&o);
	fx_run(rt, 0, crd_body, r);
	cr_assert_eq(urt_rt_stats_total(rt, stats), 0);
	urt_rt_stop(rt);
}

Test(nvme_status, runtime_waits_crdt_before_a_retry)
{
	struct crd_run r = { 0 };
	struct urt_stats st;

	/* CRDT1 = 5: a status with CRD 1 asks for 500 ms before each retry. */
	fake_dev_init(5);
	run_crd(0x0821, &r, &st);
	cr_assert_eq(r.res, -EREMOTEIO, "Command Interrupted is BLK_STS_TARGET: %d (%s)", r.res, urt_strerror(r.res));
	cr_assert_eq(atomic_load(&fake_cmds), 3, "sent once and retried twice");
	cr_assert_eq(st.retried, 2);
	cr_assert_geq(r.elapsed_ns, 2 * 500000000ull - 20000000ull, "two retries after CRDT1 (500 ms) each took %llu ns",
		      (unsigned long long)r.elapsed_ns);
	cr_assert_eq(r.st_ret, 0, "the status stays readable from the op");
	cr_assert_eq(r.st.sct, 0);
	cr_assert_eq(r.st.sc, 0x21);
	cr_assert_eq(r.st.crd, 1);
	cr_assert_not(r.st.dnr);
	cr_assert_eq(r.st.opcode, 0x02, "the Read opcode");
}

Test(nvme_status, runtime_without_crd_uses_its_backoff)
{
	struct crd_run r = { 0 };
	struct urt_stats st;

	fake_dev_init(5);
	run_crd(0x0281, &r, &st);
	cr_assert_eq(r.res, -ENODATA, "%d (%s)", r.res, urt_strerror(r.res));
	cr_assert_eq(st.retried, 2);
	cr_assert_lt(r.elapsed_ns, 400000000ull, "CRD 0 must not wait CRDT: %llu ns", (unsigned long long)r.elapsed_ns);
	cr_assert_eq(r.st_ret, 0);
	cr_assert_eq(r.st.sct, 2);
	cr_assert_eq(r.st.sc, 0x81);
}

Test(nvme_status, runtime_never_retries_dnr)
{
	struct crd_run r = { 0 };
	struct urt_stats st;

	fake_dev_init(5);
	run_crd(0x4821, &r, &st);
	cr_assert_eq(r.res, -EREMOTEIO);
	cr_assert_eq(st.retried, 0, "DNR set: delivered at once, CRD or not");
	cr_assert_eq(atomic_load(&fake_cmds), 1);
	cr_assert(r.st.dnr);
	cr_assert_lt(r.elapsed_ns, 400000000ull);
}

Test(nvme_status, success_leaves_no_status)
{
	struct crd_run r = { 0 };
	struct urt_stats st;

	fake_dev_init(5);
	run_crd(0, &r, &st);
	cr_assert_eq(r.res, 4096);
	cr_assert_eq(r.st_ret, -ENOENT, "no NVMe status on success");
}
