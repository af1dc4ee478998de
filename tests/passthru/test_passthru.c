/*
 * The NVMe passthrough backend (src/passthru) through the urt runtime.
 *
 * Two groups:
 *   pt_host  runs anywhere: the errors for a path that is not an NVMe
 *            generic device (statuses: test_nvme_status.c).
 *   pt       runs inside the NVMe test guest (tests/nvme-vm/run-vm.sh),
 *            which exports URT_NVME_* with the namespaces: data round trips
 *            on 512 B and 4 KiB LBAs (checked against the block device),
 *            FUA and Flush, registered and heap buffers, vectors, IOPOLL,
 *            MDTS splitting, Write Zeroes and deallocate, an LBA out of
 *            range, a media error injected by blkdebug with its retries
 *            (the errno the Linux driver gives, the status from the op),
 *            and a deadline on a throttled namespace.  Outside the guest
 *            these skip; inside it a missing variable is a failure.
 *
 * Criterion's assertions run on the main thread only: code on a reactor
 * records what it saw and the test asserts after fx_run returns.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "../nvme-vm/guest_env.h"
#include "../runtime/fixture.h"
#include "passthru/nvme_status.h"
#include "passthru/passthru.h"
#include "runtime/dev/backend.h"
#include "runtime/core.h"
#include "urt/error.h"
#include "urt/nvme.h"

/* Seeds of the data patterns, fixed so that a failure repeats. */
#define SEED_A 0x70617373u
#define SEED_B 0x74687275u

/* --- Guest environment --------------------------------------------------- */

/* A namespace of the guest, by role (512, 4K, FAULT, SLOW). */
struct ns {
	const char *ng;		/* /dev/ngXnY. */
	const char *blk;	/* /dev/nvmeXnY, the same namespace. */
	uint32_t lbs;		/* Logical block size the guest reported. */
	uint32_t nsid;		/* Namespace id. */
	struct urt_dev *dev;	/* Opened through urt (backend chosen by path). */
};

static void ns_open(const char *role, struct ns *ns)
{
	int ret;

	guest_ns_env(role, &ns->ng, &ns->blk, &ns->lbs, &ns->nsid);
	ret = urt_dev_open(ns->ng, NULL, &ns->dev);
	cr_assert_eq(ret, 0, "urt_dev_open(%s): %d (%s)", ns->ng, ret, urt_last_error());
}

/* Check what identify found against what the guest says about the namespace. */
static void ns_check_info(const struct ns *ns)
{
	const struct urt_dev_info *in = urt_dev_info(ns->dev);

	cr_assert_str_eq(in->backend, "passthru", "%s was opened by %s", ns->ng, in->backend);
	cr_assert(in->is_nvme && in->direct && in->fua);
	cr_assert_eq(in->nsid, ns->nsid);
	cr_assert_eq(in->block_bytes, ns->lbs);
	cr_assert_eq(in->off_align, ns->lbs);
	cr_assert_geq(in->max_io_bytes, ns->lbs);
	cr_assert_eq(in->max_io_bytes % ns->lbs, 0);
	cr_assert_gt(in->size_bytes, 0);
	cr_assert_eq(in->size_bytes % ns->lbs, 0);
	cr_assert_geq(in->atomic_write_bytes, ns->lbs);
	cr_log_info("%s: nsid %u, %u-byte LBAs, %llu bytes, max_io %u, atomic %u, vwc %d, poll %d, "
		    "write_zeroes %d, deallocate %d", ns->ng, in->nsid, in->block_bytes,
		    (unsigned long long)in->size_bytes, in->max_io_bytes, in->atomic_write_bytes, in->volatile_cache,
		    in->poll_capable, in->write_zeroes, in->deallocate);
}

/* Read len bytes at off from the namespace's block device, O_DIRECT. */
static void blk_pread(const struct ns *ns, void *buf, size_t len, uint64_t off)
{
	int fd = open(ns->blk, O_RDONLY | O_DIRECT);
	ssize_t n;

	cr_assert_geq(fd, 0, "open %s: %s", ns->blk, strerror(errno));
	n = pread(fd, buf, len, (off_t)off);
	close(fd);
	cr_assert_eq(n, (ssize_t)len, "pread %s: %zd (%s)", ns->blk, n, strerror(errno));
}

static void fill(uint8_t *p, size_t len, uint64_t seed, uint64_t off)
{
	for (size_t i = 0; i < len; i++)
		p[i] = fx_pattern(seed, off + i);
}

/* Index of the first byte that differs from the pattern, or -1. */
static ssize_t mismatch(const uint8_t *p, size_t len, uint64_t seed, uint64_t off)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != fx_pattern(seed, off + i))
			return (ssize_t)i;
	return -1;
}

static struct urt_rt *start_rt(enum urt_poll_mode mode)
{
	static const int cpu0[] = { 0 };
	struct urt_rt_opts o;

	urt_rt_opts_default(&o);
	o.cpus = cpu0;
	o.ncpus = 1;
	o.mode = mode;
	o.retry_backoff_ns = 1000000;
	return fx_start(&o);
}

/*
 * Runs body(state) in a fiber on a fresh interrupt-driven runtime; *st gets
 * the runtime's counters before it stops (when st is not NULL).
 */
static void run_interrupt(void (*body)(void *), void *state, struct urt_stats *st)
{
	struct urt_rt *rt = start_rt(URT_POLL_INTERRUPT);

	fx_run(rt, 0, body, state);
	if (st)
		cr_assert_eq(urt_rt_stats_total(rt, st), 0);
	urt_rt_stop(rt);
}

/* --- Host: bad input ------------------------------------------------------- */

/* The status table, its errno mapping and the retry rule: test_nvme_status.c. */

Test(pt_host, not_an_nvme_device)
{
	struct urt_dev_opts o;
	struct urt_dev *dev = NULL;
	char path[] = "/tmp/urt-pt-XXXXXX";
	int fd, ret;

	urt_dev_opts_default(&o);
	o.backend = "passthru";
	ret = urt_dev_open("/dev/null", &o, &dev);
	cr_assert_eq(ret, -ENODEV, "a character device that is not nvme-generic: %d", ret);
	cr_assert(strstr(urt_last_error(), "not an NVMe generic character device"), "%s", urt_last_error());
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	close(fd);
	ret = urt_dev_open(path, &o, &dev);
	unlink(path);
	cr_assert_eq(ret, -ENODEV, "a regular file: %d", ret);
	ret = urt_dev_open("/dev/urt-no-such-ng0n1", &o, &dev);
	cr_assert_eq(ret, -ENOENT);
	/* Chosen by path, /dev/null is never taken for an NVMe device. */
	cr_assert_not(urt_backend_passthru.match("/dev/null"));
}

/* --- Guest: identify and permissions ----------------------------------------- */

Test(pt, identify_both_lba_sizes)
{
	struct ns a, b;

	ns_open("512", &a);
	ns_open("4K", &b);
	ns_check_info(&a);
	ns_check_info(&b);
	cr_assert_eq(urt_dev_info(a.dev)->block_bytes, 512);
	cr_assert_eq(urt_dev_info(b.dev)->block_bytes, 4096);
	cr_assert(urt_backend_passthru.match(a.ng));
	cr_assert_not(urt_backend_passthru.match(a.blk), "the block device belongs to the file backend");
	urt_dev_close(a.dev);
	urt_dev_close(b.dev);
}

Test(pt, permission_denied_message)
{
	const char *ng = env_or_skip("URT_NVME_NS512");
	struct stat st;
	int status;
	pid_t pid;

	cr_assert_eq(stat(ng, &st), 0);
	if (st.st_mode & 0006)
		cr_skip_test("%s is world-accessible here", ng);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct urt_dev *dev;
		int ret;

		/* An unprivileged user, as on a machine without a udev rule. */
		if (setgid(65534) || setuid(65534))
			_exit(3);
		ret = urt_dev_open(ng, NULL, &dev);
		_exit(ret == -EACCES && strstr(urt_last_error(), "udev") ? 0 : 1);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "opening %s as nobody must give -EACCES with a permissions hint (child status %d)", ng, status);
}

/* --- Guest: data paths ------------------------------------------------------- */

struct rw_run {
	struct urt_dev *dev;
	uint32_t lbs;
	bool registered;	/* Use urt_buf (FIXED) rather than heap memory. */
	uint64_t off;		/* Where the test writes. */
	size_t len;
	ssize_t w, r, wf, fl, rv, wv;
	ssize_t bad, bad_fua, bad_vec;
	bool bufs_fixed;	/* The buffer was in the registered region. */
	uint8_t *copy;		/* What was written, for the block-device check. */
};

static void *rw_alloc(const struct rw_run *r, size_t len)
{
	/* aligned_alloc wants a size that is a multiple of the alignment. */
	return r->registered ? urt_buf_get(len) : aligned_alloc(4096, (len + 4095) & ~(size_t)4095);
}

static void rw_free(const struct rw_run *r, void *p)
{
	if (r->registered)
		urt_buf_put(p);
	else
		free(p);
}

static void rw_body(void *p)
{
	struct rw_run *r = p;
	uint8_t *buf = rw_alloc(r, r->len), *a, *b, *c;
	struct iovec iov[3];

	r->bufs_fixed = urt_buf_owns(buf);
	/* Plain write, read back. */
	fill(buf, r->len, SEED_A, r->off);
	r->w = urt_write(r->dev, buf, r->len, r->off);
	memset(buf, 0, r->len);
	r->r = urt_read(r->dev, buf, r->len, r->off);
	r->bad = mismatch(buf, r->len, SEED_A, r->off);
	/* FUA write of the next range, then a flush; read back. */
	fill(buf, r->len, SEED_B, r->off + r->len);
	r->wf = urt_write_fua(r->dev, buf, r->len, r->off + r->len);
	r->fl = urt_flush(r->dev);
	memset(buf, 0, r->len);
	r->rv = urt_read(r->dev, buf, r->len, r->off + r->len);
	r->bad_fua = mismatch(buf, r->len, SEED_B, r->off + r->len);
	memcpy(r->copy, buf, r->len);
	/* A three-entry vector over the first range, with a second pattern. */
	a = rw_alloc(r, r->lbs);
	b = rw_alloc(r, 2 * (size_t)r->lbs);
	c = rw_alloc(r, r->lbs);
	iov[0] = (struct iovec){ a, r->lbs };
	iov[1] = (struct iovec){ b, 2 * (size_t)r->lbs };
	iov[2] = (struct iovec){ c, r->lbs };
	fill(a, r->lbs, SEED_B, r->off);
	fill(b, 2 * (size_t)r->lbs, SEED_B, r->off + r->lbs);
	fill(c, r->lbs, SEED_B, r->off + 3 * (uint64_t)r->lbs);
	r->wv = urt_writev(r->dev, iov, 3, r->off);
	memset(buf, 0, r->len);
	r->bad_vec = urt_read(r->dev, buf, 4 * (size_t)r->lbs, r->off) == 4 * (ssize_t)r->lbs
			     ? mismatch(buf, 4 * (size_t)r->lbs, SEED_B, r->off)
			     : -2;
	rw_free(r, a);
	rw_free(r, b);
	rw_free(r, c);
	rw_free(r, buf);
}

static void roundtrip(const char *role, bool registered, enum urt_poll_mode mode)
{
	struct urt_rt *rt;
	struct rw_run r = { 0 };
	struct urt_stats st;
	struct ns ns;
	uint8_t *blk;

	ns_open(role, &ns);
	rt = start_rt(mode);
	r.dev = ns.dev;
	r.lbs = ns.lbs;
	r.registered = registered;
	r.len = 64 * 1024;
	r.off = (registered ? 1 : 3) * (1ull << 20) + (mode == URT_POLL_IOPOLL ? 8ull << 20 : 0);
	r.copy = malloc(r.len);
	blk = aligned_alloc(4096, r.len);
	cr_assert_eq(urt_dev_register(rt, ns.dev), 0, "%s", urt_last_error());
	fx_run(rt, 0, rw_body, &r);
	cr_assert_eq(urt_rt_stats_total(rt, &st), 0);
	urt_rt_stop(rt);
	cr_assert_eq(r.bufs_fixed, registered);
	cr_assert(!registered || st.bufs_registered, "the urt_buf region is not registered: FIXED untested");
	/*
	 * The commands really named the registered buffer (IORING_URING_CMD_FIXED):
	 * a prep that silently fell back to plain memory moves the same data.
	 * Heap memory must never be sent as FIXED.
	 */
	if (registered)
		cr_assert_gt(st.sqes_fixed_buf, 0, "no passthrough command used IORING_URING_CMD_FIXED on urt_buf memory");
	else
		cr_assert_eq(st.sqes_fixed_buf, 0, "%llu commands on heap memory were sent as FIXED",
			     (unsigned long long)st.sqes_fixed_buf);
	cr_assert_eq(r.w, (ssize_t)r.len, "write: %zd (%s)", r.w, urt_strerror((int)r.w));
	cr_assert_eq(r.r, (ssize_t)r.len, "read: %zd (%s)", r.r, urt_strerror((int)r.r));
	cr_assert_eq(r.bad, -1, "read back differs at byte %zd", r.bad);
	cr_assert_eq(r.wf, (ssize_t)r.len, "FUA write: %zd (%s)", r.wf, urt_strerror((int)r.wf));
	cr_assert_eq(r.fl, 0, "flush: %zd (%s)", r.fl, urt_strerror((int)r.fl));
	cr_assert_eq(r.rv, (ssize_t)r.len);
	cr_assert_eq(r.bad_fua, -1, "FUA data differs at byte %zd", r.bad_fua);
	cr_assert_eq(r.wv, 4 * (ssize_t)ns.lbs, "writev: %zd (%s)", r.wv, urt_strerror((int)r.wv));
	cr_assert_eq(r.bad_vec, -1, "vector data differs at byte %zd", r.bad_vec);
	cr_assert_eq(st.failed, 0);
	/* The device put the data where the block layer sees it: LBA * block size. */
	blk_pread(&ns, blk, r.len, r.off + r.len);
	cr_assert_eq(memcmp(blk, r.copy, r.len), 0, "the block device sees other data at %llu",
		     (unsigned long long)(r.off + r.len));
	free(blk);
	free(r.copy);
	urt_dev_close(ns.dev);
}

Test(pt, roundtrip_512_heap) { roundtrip("512", false, URT_POLL_INTERRUPT); }
Test(pt, roundtrip_512_fixed) { roundtrip("512", true, URT_POLL_INTERRUPT); }
Test(pt, roundtrip_4k_heap) { roundtrip("4K", false, URT_POLL_INTERRUPT); }
Test(pt, roundtrip_4k_fixed) { roundtrip("4K", true, URT_POLL_INTERRUPT); }

Test(pt, iopoll_512)
{
	struct urt_kernel_features kf;
	struct ns ns;

	urt_kernel_probe(&kf);
	if (!kf.iopoll)
		cr_skip_test("the kernel refuses IORING_SETUP_IOPOLL");
	ns_open("512", &ns);
	cr_assert(urt_dev_info(ns.dev)->poll_capable, "the guest loads nvme with poll_queues=%s",
		  getenv("URT_NVME_POLL_QUEUES"));
	urt_dev_close(ns.dev);
	roundtrip("512", true, URT_POLL_IOPOLL);
	roundtrip("512", false, URT_POLL_IOPOLL);
}

/* --- Guest: splitting by MDTS ------------------------------------------------- */

struct split_run {
	struct urt_dev *dev;
	size_t len;
	ssize_t w, r, rv, wv8, rv8;
	ssize_t bad, bad_vec, bad_vec8;
};

static void split_body(void *p)
{
	struct split_run *r = p;
	uint8_t *buf = aligned_alloc(4096, r->len);
	struct iovec iov;

	fill(buf, r->len, SEED_A, 16ull << 20);
	r->w = urt_write(r->dev, buf, r->len, 16ull << 20);
	memset(buf, 0, r->len);
	r->r = urt_read(r->dev, buf, r->len, 16ull << 20);
	r->bad = mismatch(buf, r->len, SEED_A, 16ull << 20);
	/* One vector entry larger than the limit: sent in plain pieces. */
	memset(buf, 0, r->len);
	iov = (struct iovec){ buf, r->len };
	r->rv = urt_readv(r->dev, &iov, 1, 16ull << 20);
	r->bad_vec = mismatch(buf, r->len, SEED_A, 16ull << 20);
	/* Eight 256 KiB entries: each SQE takes the longest prefix of whole entries. */
	{
		struct iovec v[8];
		size_t part = r->len / 8;

		for (unsigned i = 0; i < 8; i++)
			v[i] = (struct iovec){ buf + i * part, part };
		fill(buf, r->len, SEED_B, 32ull << 20);
		r->wv8 = urt_writev(r->dev, v, 8, 32ull << 20);
		memset(buf, 0, r->len);
		r->rv8 = urt_read(r->dev, buf, r->len, 32ull << 20);
		r->bad_vec8 = mismatch(buf, r->len, SEED_B, 32ull << 20);
	}
	free(buf);
}

Test(pt, mdts_split_2mib)
{
	struct split_run r = { .len = 2u << 20 };
	struct urt_stats st;
	struct ns ns;

	ns_open("512", &ns);
	if (urt_dev_info(ns.dev)->max_io_bytes >= r.len)
		cr_skip_test("max_io_bytes %u is not below 2 MiB", urt_dev_info(ns.dev)->max_io_bytes);
	r.dev = ns.dev;
	run_interrupt(split_body, &r, &st);
	cr_assert_eq(r.w, (ssize_t)r.len, "2 MiB write: %zd (%s)", r.w, urt_strerror((int)r.w));
	cr_assert_eq(r.r, (ssize_t)r.len, "2 MiB read: %zd (%s)", r.r, urt_strerror((int)r.r));
	cr_assert_eq(r.bad, -1, "split read differs at byte %zd", r.bad);
	cr_assert_eq(r.rv, (ssize_t)r.len, "2 MiB readv: %zd (%s)", r.rv, urt_strerror((int)r.rv));
	cr_assert_eq(r.bad_vec, -1, "split readv differs at byte %zd", r.bad_vec);
	cr_assert_eq(r.wv8, (ssize_t)r.len, "2 MiB writev of 8 entries: %zd (%s)", r.wv8, urt_strerror((int)r.wv8));
	cr_assert_eq(r.rv8, (ssize_t)r.len);
	cr_assert_eq(r.bad_vec8, -1, "8-entry writev data differs at byte %zd", r.bad_vec8);
	/* Each op went to the kernel in ceil(len / max) commands. */
	cr_log_info("2 MiB ops with max_io %u: %llu SQEs", urt_dev_info(ns.dev)->max_io_bytes,
		    (unsigned long long)st.sqes_submitted);
	cr_assert_geq(st.sqes_submitted, 5 * ((r.len + urt_dev_info(ns.dev)->max_io_bytes - 1) /
					       urt_dev_info(ns.dev)->max_io_bytes));
	urt_dev_close(ns.dev);
}

/* --- Guest: the scheduler's merged commands across MDTS ----------------------- */

#define MERGE_OPS_MAX 1024
/* Bytes per op: 16 KiB, so that MDTS, not the 64-op cap, ends a merge. */
#define MERGE_OP_BYTES 16384u

struct merge_run {
	struct urt_dev *dev;
	unsigned n;		/* MERGE_OP_BYTES writes, contiguous on the device. */
	bool scattered;		/* Buffers every other page: vectored commands. */
	int res[MERGE_OPS_MAX];
	unsigned done;
	ssize_t r;		/* The read back. */
	ssize_t bad;		/* First differing byte, -1 when equal. */
	struct urt_io io[MERGE_OPS_MAX];
	struct urt_waitq wq;
};

static void merge_done(struct urt_io *io, int res, void *arg)
{
	struct merge_run *m = arg;

	m->res[io - m->io] = res;
	m->done++;
	urt_waitq_wake_all(&m->wq);
}

static void merge_body(void *p)
{
	struct merge_run *m = p;
	size_t len = (size_t)m->n * MERGE_OP_BYTES;
	uint8_t *src = aligned_alloc(4096, 2 * len), *back = aligned_alloc(4096, len);
	uint64_t base = 48ull << 20;

	memset(&m->wq, 0, sizeof(m->wq));
	for (unsigned i = 0; i < m->n; i++) {
		uint8_t *b = src + (size_t)i * MERGE_OP_BYTES * (m->scattered ? 2 : 1);
		uint64_t off = base + (uint64_t)i * MERGE_OP_BYTES;

		fill(b, MERGE_OP_BYTES, SEED_B, off);
		urt_io_prep_write(&m->io[i], m->dev, b, MERGE_OP_BYTES, off);
		m->io[i].prio = URT_PRIO_BACKGROUND;
		if (urt_io_submit(&m->io[i], merge_done, m))
			m->res[i] = -1000;
		else
			m->res[i] = 1;
	}
	while (m->done < m->n)
		urt_waitq_wait(&m->wq);
	memset(back, 0, len);
	m->r = urt_read(m->dev, back, len, base);
	m->bad = mismatch(back, len, SEED_B, base);
	free(src);
	free(back);
}

static void merged_across_mdts(bool scattered)
{
	struct urt_sched_opts so;
	struct urt_sched_stats st;
	struct merge_run *m = calloc(1, sizeof(*m));
	uint32_t max;
	struct ns ns;

	ns_open("512", &ns);
	max = urt_dev_info(ns.dev)->max_io_bytes;
	/* Two MDTS-sized commands and a bit: the merge must stop at each boundary. */
	m->n = 2 * (max / MERGE_OP_BYTES) + 3;
	if (m->n > MERGE_OPS_MAX)
		cr_skip_test("max_io_bytes %u needs more than %u ops", max, MERGE_OPS_MAX);
	urt_sched_opts_default(&so);
	so.depth_max = 1;
	cr_assert_eq(urt_dev_sched_set(ns.dev, &so), 0, "%s", urt_last_error());
	m->dev = ns.dev;
	m->scattered = scattered;
	run_interrupt(merge_body, m, NULL);
	for (unsigned i = 0; i < m->n; i++)
		cr_assert_eq(m->res[i], (int)MERGE_OP_BYTES, "write %u: %d (%s)", i, m->res[i], urt_strerror(m->res[i]));
	cr_assert_eq(m->r, (ssize_t)m->n * MERGE_OP_BYTES, "read back: %zd", m->r);
	cr_assert_eq(m->bad, -1, "merged data differs at byte %zd", m->bad);
	cr_assert_eq(urt_dev_sched_stats(ns.dev, &st), 0);
	cr_log_info("%u writes of 16 KiB, max_io %u: %llu commands, %llu merged", m->n, max,
		    (unsigned long long)st.commands, (unsigned long long)st.merged);
	/* The writes went out merged, never past MDTS: at least ceil(total / max) commands. */
	cr_assert_geq(st.merged, m->n - 3);
	cr_assert_geq(st.commands, ((uint64_t)m->n * MERGE_OP_BYTES + max - 1) / max + 1);
	{
		/* A merged command also holds at most 64 ops (merge_ops_max). */
		uint64_t per = max < 64 * MERGE_OP_BYTES ? max : 64 * MERGE_OP_BYTES;

		cr_assert_leq(st.commands, 1 + ((uint64_t)m->n * MERGE_OP_BYTES + per - 1) / per + 2);
	}
	free(m);
	urt_dev_close(ns.dev);
}

Test(pt, sched_merged_writes_across_mdts) { merged_across_mdts(false); }
Test(pt, sched_merged_writev_across_mdts) { merged_across_mdts(true); }

/* --- Guest: Write Zeroes and deallocate ----------------------------------------- */

struct zero_run {
	struct urt_dev *dev;
	bool zeroes, dealloc;
	int wz, dsm;
	ssize_t w, r1, r2;
	bool all_zero, dealloc_ok;
};

static bool is_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static void zero_body(void *p)
{
	struct zero_run *r = p;
	const size_t len = 64 * 1024;
	const uint64_t off = 24ull << 20;
	uint8_t *buf = urt_buf_get(len);
	struct urt_io io;

	fill(buf, len, SEED_A, off);
	r->w = urt_write(r->dev, buf, len, off);
	if (r->zeroes) {
		urt_io_prep_write_zeroes(&io, r->dev, len, off);
		r->wz = urt_io_wait(&io);
		r->r1 = urt_read(r->dev, buf, len, off);
		r->all_zero = is_zero(buf, len);
	}
	if (r->dealloc) {
		fill(buf, len, SEED_B, off);
		urt_write(r->dev, buf, len, off);
		urt_io_prep_deallocate(&io, r->dev, len, off);
		r->dsm = urt_io_wait(&io);
		r->r2 = urt_read(r->dev, buf, len, off);
		/* Deallocated blocks read as zeroes or keep their data (DLFEAT, QEMU's discard=ignore). */
		r->dealloc_ok = is_zero(buf, len) || mismatch(buf, len, SEED_B, off) == -1;
	}
	urt_buf_put(buf);
}

Test(pt, write_zeroes_and_deallocate)
{
	struct zero_run r = { 0 };
	struct ns ns;

	ns_open("4K", &ns);
	r.dev = ns.dev;
	r.zeroes = urt_dev_info(ns.dev)->write_zeroes;
	r.dealloc = urt_dev_info(ns.dev)->deallocate;
	if (!r.zeroes && !r.dealloc)
		cr_skip_test("the controller's ONCS has neither Write Zeroes nor DSM");
	run_interrupt(zero_body, &r, NULL);
	cr_assert_eq(r.w, 64 * 1024);
	if (r.zeroes) {
		cr_assert_eq(r.wz, 0, "Write Zeroes: %d (%s)", r.wz, urt_strerror(r.wz));
		cr_assert_eq(r.r1, 64 * 1024);
		cr_assert(r.all_zero, "Write Zeroes left data behind");
	}
	if (r.dealloc) {
		cr_assert_eq(r.dsm, 0, "deallocate: %d (%s)", r.dsm, urt_strerror(r.dsm));
		cr_assert_eq(r.r2, 64 * 1024);
		cr_assert(r.dealloc_ok, "deallocated blocks read as neither zeroes nor their old data");
	}
	urt_dev_close(ns.dev);
}

/* --- Guest: NVMe errors ---------------------------------------------------------- */

struct err_run {
	struct urt_dev *dev;
	uint64_t off;
	bool write;
	bool warm;			/* A good read first, so the big ring exists and the op can go bare. */
	bool was_bare;			/* The op went bare (no request) at submission. */
	ssize_t res;
	int st_ret;			/* urt_io_nvme_status's return. */
	struct urt_nvme_status st;	/* The op's NVMe status. */
	char msg[160];
};

static void err_done(struct urt_io *io, int res, void *arg)
{
	(void)io;
	((struct err_run *)arg)->res = res;
}

static void err_body(void *p)
{
	struct err_run *r = p;
	uint8_t *buf = urt_buf_get(4096);
	struct urt_io io;
	int ret;

	if (r->warm && urt_read(r->dev, buf, 4096, 0) != 4096) {
		r->res = 1;	/* Not an errno: the test's assertion names it. */
		goto out;
	}
	memset(buf, 0x5a, 4096);
	if (r->write)
		urt_io_prep_write(&io, r->dev, buf, 4096, r->off);
	else
		urt_io_prep_read(&io, r->dev, buf, 4096, r->off);
	/* Submitted by hand, to see whether it went bare; retries take backoffs of milliseconds. */
	r->res = 1;
	ret = urt_io_submit(&io, err_done, r);
	if (ret) {
		r->res = ret;
		goto out;
	}
	r->was_bare = io_is_bare(&io);
	while (r->res == 1)
		urt_sleep_ns(1000000);
	r->st_ret = urt_io_nvme_status(&io, &r->st);
	if (r->st_ret == 0)
		urt_nvme_status_str(&r->st, r->msg, sizeof(r->msg));
	else
		snprintf(r->msg, sizeof(r->msg), "%s", urt_strerror((int)r->res));
out:
	urt_buf_put(buf);
}

/* Run one op; returns the runtime's retry count for it. */
static uint64_t run_err(struct err_run *r)
{
	struct urt_stats st;

	run_interrupt(err_body, r, &st);
	return st.retried;
}

/*
 * Runs r's op, which must fail with the errno err and an NVMe status whose
 * type and code are sc (DNR aside), with opcode and a name containing
 * name; returns the status, and the op's retries in *retried.
 */
static uint16_t expect_nvme_error(struct err_run *r, int err, uint16_t sc, uint8_t opcode, const char *name,
				  uint64_t *retried)
{
	*retried = run_err(r);
	cr_assert_eq(r->res, err, "got %zd (%s), want %d (%s)", r->res, urt_strerror((int)r->res), err,
		     urt_strerror(err));
	cr_assert_eq(r->st_ret, 0, "no NVMe status readable from the op");
	cr_assert_eq(r->st.raw & NVME_STATUS_CODE_MASK, sc, "status %#x", r->st.raw);
	cr_assert_eq(r->st.sct, sc >> 8);
	cr_assert_eq(r->st.sc, sc & 0xff);
	cr_assert_eq(r->st.opcode, opcode);
	cr_assert(strstr(r->msg, name), "%s", r->msg);
	cr_log_info("%s at byte %llu: %s, status %#x, \"%s\", retried %llu", r->write ? "write" : "read",
		    (unsigned long long)r->off, urt_strerror((int)r->res), r->st.raw, r->msg,
		    (unsigned long long)*retried);
	return r->st.raw;
}

/*
 * A read of ns at off must fail with err and the NVMe status sc (named
 * name), and the runtime retries it retry_max (3) times exactly when the
 * controller left DNR clear.
 */
static void expect_read_error(const struct ns *ns, uint64_t off, bool warm, int err, uint16_t sc, const char *name)
{
	struct err_run r = { .dev = ns->dev, .off = off, .warm = warm };
	uint64_t retried;
	uint16_t status = expect_nvme_error(&r, err, sc, 0x02, name, &retried);

	cr_assert_eq(retried, (status & NVME_STATUS_DNR) ? 0 : 3, "status %#x retried %llu", status,
		     (unsigned long long)retried);
	/* After a good read the big ring exists: the failing read went bare, and its request came later. */
	cr_assert_eq(r.was_bare, warm, "the read %s bare", r.was_bare ? "went" : "did not go");
}

Test(pt, lba_out_of_range_is_decoded)
{
	struct ns ns;

	ns_open("512", &ns);
	/* The first LBA past the end: BLK_STS_TARGET on the block path, -EREMOTEIO. */
	expect_read_error(&ns, urt_dev_info(ns.dev)->size_bytes, false, -EREMOTEIO, 0x080, "LBA Out of Range");
	/* The same as a bare op: its status reaches the backend through the request it gets then. */
	expect_read_error(&ns, urt_dev_info(ns.dev)->size_bytes, true, -EREMOTEIO, 0x080, "LBA Out of Range");
	urt_dev_close(ns.dev);
}

Test(pt, media_errors_are_decoded_and_retried)
{
	struct err_run r = { 0 };
	uint64_t retried;
	struct ns ns;

	ns_open("FAULT", &ns);
	/*
	 * QEMU reports an I/O error without DNR: the runtime retries it
	 * retry_max (3) times.  A media error is -ENODATA, as a read of the
	 * block device gives.  Once as the device's first op (through a
	 * request), once as a bare op (after a good read).
	 */
	expect_read_error(&ns, env_u64("URT_NVME_FAULT_READ_LBA") * ns.lbs, false, -ENODATA, 0x281,
			  "Unrecovered Read Error (SCT 2h, SC 81h, CRD 0, More 0, DNR 0; Read)");
	expect_read_error(&ns, env_u64("URT_NVME_FAULT_READ_LBA") * ns.lbs, true, -ENODATA, 0x281,
			  "Unrecovered Read Error (SCT 2h, SC 81h, CRD 0, More 0, DNR 0; Read)");

	r.dev = ns.dev;
	r.off = env_u64("URT_NVME_FAULT_WRITE_LBA") * ns.lbs;
	r.write = true;
	r.warm = true;
	expect_nvme_error(&r, -ENODATA, 0x280, 0x01, "Write Fault", &retried);
	cr_assert(r.was_bare, "the write after a good read did not go bare");

	/* Next to the bad sectors the namespace works, and leaves no status behind. */
	r.off = 0;
	r.write = false;
	run_err(&r);
	cr_assert_eq(r.res, 4096, "%zd (%s)", r.res, r.msg);
	cr_assert_eq(r.st_ret, -ENOENT);
	cr_assert(r.was_bare);
	urt_dev_close(ns.dev);
}

/* --- Guest: deadlines on a throttled namespace ------------------------------------ */

struct slow_run {
	struct urt_dev *dev;
	int res_load, res_read;		/* Results of the load write and the timed read. */
	int calls_read;			/* Deliveries of the timed read. */
	uint64_t t_deliver_ns;		/* Submit to -ETIMEDOUT. */
	size_t free_before, free_after_put, free_released;
	uint64_t t_release_ns;		/* Submit to the buffer's return. */
};

static void slow_load_cb(struct urt_io *io, int res, void *arg)
{
	(void)io;
	((struct slow_run *)arg)->res_load = res;
}

static void slow_read_cb(struct urt_io *io, int res, void *arg)
{
	struct slow_run *r = arg;

	(void)io;
	r->res_read = res;
	r->calls_read++;
}

static void slow_body(void *p)
{
	struct slow_run *r = p;
	uint8_t *load = aligned_alloc(4096, 64 * 1024);
	uint8_t *buf;
	struct urt_io io_load, io_read;
	uint64_t t0;

	memset(load, 0x11, 64 * 1024);
	r->res_load = 1;
	/* 64 KiB first: the throttle makes every I/O after it wait seconds. */
	urt_io_prep_write(&io_load, r->dev, load, 64 * 1024, 0);
	urt_io_submit(&io_load, slow_load_cb, r);
	buf = urt_buf_get(4096);
	r->free_before = urt_buf_free_bytes();
	urt_io_prep_read(&io_read, r->dev, buf, 4096, 1u << 20);
	io_read.timeout_ns = 200000000;
	t0 = urt_clock_ns();
	if (urt_io_submit(&io_read, slow_read_cb, r)) {
		r->res_read = 1;
		goto out;
	}
	while (!r->calls_read)
		urt_sleep_ns(5000000);
	r->t_deliver_ns = urt_clock_ns() - t0;
	/* The caller gave up, but the device still owns the buffer. */
	urt_buf_put(buf);
	r->free_after_put = urt_buf_free_bytes();
	while (urt_buf_free_bytes() == r->free_after_put && urt_clock_ns() - t0 < 60000000000ull)
		urt_sleep_ns(20000000);
	r->free_released = urt_buf_free_bytes();
	r->t_release_ns = urt_clock_ns() - t0;
	while (r->res_load == 1 && urt_clock_ns() - t0 < 120000000000ull)
		urt_sleep_ns(20000000);
out:
	free(load);
}

Test(pt, deadline_on_throttled_namespace_keeps_buffer)
{
	struct slow_run r = { 0 };
	struct ns ns;

	ns_open("SLOW", &ns);
	r.dev = ns.dev;
	run_interrupt(slow_body, &r, NULL);
	cr_assert_eq(r.res_read, -ETIMEDOUT, "timed read: %d (%s)", r.res_read, urt_strerror(r.res_read));
	cr_assert_eq(r.calls_read, 1, "delivered %d times", r.calls_read);
	cr_assert_lt(r.t_deliver_ns, 2000000000ull, "-ETIMEDOUT came after %llu ns",
		     (unsigned long long)r.t_deliver_ns);
	cr_assert_geq(r.t_deliver_ns, 150000000ull);
	cr_assert_eq(r.free_after_put, r.free_before, "the buffer was recycled while the device owned it");
	cr_assert_eq(r.free_released, r.free_before + 4096, "the buffer never came back (after %llu ns)",
		     (unsigned long long)r.t_release_ns);
	cr_assert_gt(r.t_release_ns, r.t_deliver_ns);
	cr_assert_eq(r.res_load, 64 * 1024, "load write: %d (%s)", r.res_load, urt_strerror(r.res_load));
	urt_dev_close(ns.dev);
}

/*
 * --- Guest: a core asleep on the big ring still wakes for its main ring ---------
 *
 * With passthrough commands in flight an interrupt-mode core sleeps on the
 * big ring (src/runtime/ring.c); a post from another thread arrives on the
 * main ring and must still wake it at once, through the main ring's
 * eventfd, not when the slow command ends seconds later.
 */

struct wake_run {
	struct urt_dev *dev;
	uint8_t *load, *small;
	struct urt_io io_load, io_small;
	_Atomic int res_load, res_small;	/* 1 while in flight. */
	_Atomic int writes_done;		/* Deliveries of the two writes. */
	int done_at_post;			/* writes_done when the post ran. */
	bool big_sleep;				/* The core may sleep on its big ring. */
};

static void wake_write_cb(struct urt_io *io, int res, void *arg)
{
	struct wake_run *r = arg;

	atomic_store(io == &r->io_load ? &r->res_load : &r->res_small, res);
	atomic_fetch_add(&r->writes_done, 1);
}

static int wake_submit(void *arg)
{
	struct wake_run *r = arg;
	int ret;

	/* 64 KiB drain the throttle's bucket: the 4 KiB write after it waits seconds. */
	urt_io_prep_write(&r->io_load, r->dev, r->load, 64 * 1024, 0);
	urt_io_prep_write(&r->io_small, r->dev, r->small, 4096, 1u << 20);
	ret = urt_io_submit(&r->io_load, wake_write_cb, r);
	if (ret)
		return ret;
	return urt_io_submit(&r->io_small, wake_write_cb, r);
}

static int wake_probe(void *arg)
{
	struct wake_run *r = arg;

	r->done_at_post = atomic_load(&r->writes_done);
	r->big_sleep = core_self()->big_sleep;
	return 0;
}

Test(pt, post_wakes_a_core_asleep_on_passthrough)
{
	struct wake_run r = { .res_load = 1, .res_small = 1 };
	struct urt_rt *rt;
	uint64_t t0, t_post, t_end;
	struct ns ns;

	ns_open("SLOW", &ns);
	r.dev = ns.dev;
	r.load = aligned_alloc(4096, 64 * 1024);
	r.small = aligned_alloc(4096, 4096);
	memset(r.load, 0x33, 64 * 1024);
	memset(r.small, 0x44, 4096);
	rt = start_rt(URT_POLL_INTERRUPT);
	cr_assert_eq(urt_core_run(rt, 0, wake_submit, &r), 0, "%s", urt_last_error());
	/* Let the core go to sleep with both writes in flight. */
	usleep(300000);
	t0 = urt_clock_ns();
	cr_assert_eq(urt_core_run(rt, 0, wake_probe, &r), 0);
	t_post = urt_clock_ns() - t0;
	while (atomic_load(&r.writes_done) < 2 && urt_clock_ns() - t0 < 60000000000ull)
		usleep(20000);
	t_end = urt_clock_ns() - t0;
	urt_rt_stop(rt);
	cr_log_info("post answered in %llu us; the writes ended after %llu ms",
		    (unsigned long long)t_post / 1000, (unsigned long long)t_end / 1000000);
	cr_assert(r.big_sleep, "the core does not sleep on its big ring: this test checks nothing new");
	cr_assert_lt(r.done_at_post, 2, "both writes were done before the post: the core was not asleep on them");
	cr_assert_lt(t_post, 1000000000ull, "the post waited %llu ms for a core asleep on passthrough",
		     (unsigned long long)t_post / 1000000);
	cr_assert_eq(r.res_load, 64 * 1024, "load write: %d (%s)", r.res_load, urt_strerror(r.res_load));
	cr_assert_eq(r.res_small, 4096, "slow write: %d (%s)", r.res_small, urt_strerror(r.res_small));
	free(r.load);
	free(r.small);
	urt_dev_close(ns.dev);
}

/* --- Guest: passthrough against the block path (a measurement) -------------------- */

#define BENCH_QD 32
#define BENCH_SPAN (64ull << 20)	/* Reads land in the first 64 MiB. */

struct bench_run {
	struct urt_dev *dev;
	uint64_t end_ns;		/* Stop issuing after this time. */
	uint64_t rng;			/* Offsets, fixed seed. */
	uint64_t done, errors;		/* Completed reads; failed ones. */
	unsigned inflight;
	int first_err;
	uint8_t *bufs[BENCH_QD];
	struct urt_io ios[BENCH_QD];
};

static void bench_issue(struct bench_run *r, unsigned i);

static void bench_cb(struct urt_io *io, int res, void *arg)
{
	struct bench_run *r = arg;

	r->inflight--;
	if (res == 4096) {
		r->done++;
	} else {
		r->errors++;
		if (!r->first_err)
			r->first_err = res;
	}
	if (urt_clock_ns() < r->end_ns)
		bench_issue(r, (unsigned)(io - r->ios));
}

static void bench_issue(struct bench_run *r, unsigned i)
{
	uint64_t off = (fx_rand(&r->rng) % (BENCH_SPAN / 4096)) * 4096;

	urt_io_prep_read(&r->ios[i], r->dev, r->bufs[i], 4096, off);
	if (urt_io_submit(&r->ios[i], bench_cb, r) == 0)
		r->inflight++;
	else
		r->errors++;
}

static void bench_body(void *p)
{
	struct bench_run *r = p;

	for (unsigned i = 0; i < BENCH_QD; i++)
		r->bufs[i] = urt_buf_get(4096);
	r->end_ns = urt_clock_ns() + 1500000000ull;
	for (unsigned i = 0; i < BENCH_QD; i++)
		bench_issue(r, i);
	while (r->inflight)
		urt_sleep_ns(10000000);
	for (unsigned i = 0; i < BENCH_QD; i++)
		urt_buf_put(r->bufs[i]);
}

/* 4 KiB random reads at QD 32 for 1.5 s; returns reads per second. */
static double bench_one(const char *path, enum urt_poll_mode mode)
{
	struct bench_run *r = calloc(1, sizeof(*r));
	struct urt_rt *rt = start_rt(mode);
	struct urt_dev *dev;
	double iops;
	int ret;

	ret = urt_dev_open(path, NULL, &dev);
	cr_assert_eq(ret, 0, "%s: %s", path, urt_last_error());
	cr_assert_eq(urt_dev_register(rt, dev), 0);
	r->dev = dev;
	r->rng = 0x62656e6368ull;
	fx_run(rt, 0, bench_body, r);
	urt_rt_stop(rt);
	cr_assert_eq(r->errors, 0, "%s: %llu failed reads, first %d (%s)", path, (unsigned long long)r->errors,
		     r->first_err, urt_strerror(r->first_err));
	cr_assert_gt(r->done, BENCH_QD);
	iops = (double)r->done / 1.5;
	cr_log_info("%s (%s, %s): %.0f reads/s", path, urt_dev_info(dev)->backend,
		    mode == URT_POLL_IOPOLL ? "iopoll" : "interrupt", iops);
	urt_dev_close(dev);
	free(r);
	return iops;
}

Test(pt_bench, passthru_vs_block_randread_qd32)
{
	const char *ng = env_or_skip("URT_NVME_NS512");
	const char *blk = env_or_skip("URT_NVME_BLK512");

	/* Figures only: under TCG emulation they say little about real hardware. */
	bench_one(ng, URT_POLL_INTERRUPT);
	bench_one(blk, URT_POLL_INTERRUPT);
	bench_one(ng, URT_POLL_IOPOLL);
	bench_one(blk, URT_POLL_IOPOLL);
}

/* --- Guest: a read-only open ---------------------------------------------------- */

struct ro_run {
	struct urt_dev *dev;
	ssize_t r, w;
};

static void ro_body(void *p)
{
	struct ro_run *r = p;
	uint8_t *buf = urt_buf_get(4096);

	r->r = urt_read(r->dev, buf, 4096, 0);
	r->w = urt_write(r->dev, buf, 4096, 0);
	urt_buf_put(buf);
}

Test(pt, readonly_open_reads_and_refuses_writes)
{
	const char *ng = env_or_skip("URT_NVME_NS4K");
	struct ro_run r = { 0 };
	struct urt_dev_opts o;
	int ret;

	urt_dev_opts_default(&o);
	o.readonly = true;
	ret = urt_dev_open(ng, &o, &r.dev);
	cr_assert_eq(ret, 0, "%s: %s", ng, urt_last_error());
	cr_assert_str_eq(urt_dev_info(r.dev)->backend, "passthru");
	run_interrupt(ro_body, &r, NULL);
	cr_assert_eq(r.r, 4096, "read: %zd (%s)", r.r, urt_strerror((int)r.r));
	cr_assert_eq(r.w, -EPERM, "write on a read-only device: %zd", r.w);
	urt_dev_close(r.dev);
}
