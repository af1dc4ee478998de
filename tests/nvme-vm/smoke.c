/*
 * Smoke test of the NVMe test guest (tests/nvme-vm/run-vm.sh).
 *
 * It proves, end to end and with nothing but raw io_uring passthrough
 * (IORING_OP_URING_CMD on /dev/ngXnY, NVME_URING_CMD_IO, SQE128|CQE32), that
 * every namespace the harness promises is present with the promised
 * behaviour, so that the passthrough suite can rely on them:
 *   - the URT_NVME_* variables map each role to the right nsid and device;
 *   - data written through passthrough on the 512-byte and the 4-KiB
 *     namespaces reads back the same, and lands at lba * block size as the
 *     block device sees it;
 *   - the FAULT namespace fails a read of URT_NVME_FAULT_READ_LBA with
 *     Unrecovered Read Error (0x281) and a write of URT_NVME_FAULT_WRITE_LBA
 *     with Write Fault (0x280), and serves other I/O normally;
 *   - the SLOW namespace makes an I/O that follows a 64 KiB I/O wait seconds;
 *   - an IOPOLL ring completes passthrough I/O on the guest's poll queues,
 *     without raising an interrupt.
 *
 * Outside the guest the variables are absent and every test skips; inside
 * it (URT_NVME_VM=1) a missing variable or device is a failure.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/nvme_ioctl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "guest_env.h"

/* NVMe I/O command opcodes (NVM command set). */
#define NVME_OP_WRITE 0x01
#define NVME_OP_READ 0x02
/*
 * A passthrough CQE's positive res is the NVMe status field without the
 * phase bit: bits 0-7 status code, 8-10 status code type, 13 More, 14 DNR.
 * The mask keeps the type and the code.
 */
#define NVME_STATUS_MASK 0x7ff
#define NVME_SC_WRITE_FAULT 0x280      /* Media error type, Write Fault. */
#define NVME_SC_UNRECOVERED_READ 0x281 /* Media error type, Unrecovered Read. */

/* The test pattern's seed, fixed so a failure repeats. */
#define PATTERN_SEED 0x75727476u

struct ns {
	int fd;             /* Open /dev/ngXnY. */
	uint32_t nsid;      /* Namespace id, from NVME_IOCTL_ID. */
	uint32_t lbs;       /* Logical block size in bytes. */
	const char *ng;     /* Path of the generic character device. */
	const char *blk;    /* Path of the block device of the same namespace. */
};

/* Opens the namespace of a role (512, 4K, FAULT, SLOW) and checks its nsid. */
static void ns_open(const char *role, struct ns *ns)
{
	int id;

	guest_ns_env(role, &ns->ng, &ns->blk, &ns->lbs, &ns->nsid);
	ns->fd = open(ns->ng, O_RDWR);
	cr_assert(ns->fd >= 0, "open %s: %s", ns->ng, strerror(errno));
	id = ioctl(ns->fd, NVME_IOCTL_ID);
	cr_assert_eq(id, (int)ns->nsid, "%s reports nsid %d, the guest exported %u",
		     ns->ng, id, ns->nsid);
}

static void *buf_alloc(size_t len)
{
	void *p = aligned_alloc(4096, len);

	cr_assert_not_null(p);
	return p;
}

static void pattern_fill(uint8_t *p, size_t len, uint32_t salt)
{
	uint32_t x = PATTERN_SEED ^ salt;

	for (size_t i = 0; i < len; i++) {
		/* xorshift32: cheap, and no two nearby blocks look alike. */
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)x;
	}
}

static void ring_init(struct io_uring *ring, unsigned extra_flags)
{
	int ret = io_uring_queue_init(8, ring,
				      IORING_SETUP_SQE128 | IORING_SETUP_CQE32 | extra_flags);

	cr_assert_eq(ret, 0, "io_uring_queue_init: %s", strerror(-ret));
}

/*
 * Issues one NVMe read or write of len bytes at lba through passthrough and
 * returns the CQE's res: -errno from the kernel, 0, or a positive NVMe status.
 */
static int pt_rw(struct io_uring *ring, const struct ns *ns, uint8_t opcode,
		 uint64_t lba, void *buf, uint32_t len)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	struct io_uring_cqe *cqe;
	struct nvme_uring_cmd *cmd;
	int ret;

	cr_assert_not_null(sqe);
	cr_assert(len % ns->lbs == 0 && len > 0);
	/* An SQE128 entry is two 64-byte slots; the command lives in the tail. */
	memset(sqe, 0, 2 * sizeof(*sqe));
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = ns->fd;
	sqe->cmd_op = NVME_URING_CMD_IO;
	sqe->user_data = lba;
	cmd = (struct nvme_uring_cmd *)sqe->cmd;
	cmd->opcode = opcode;
	cmd->nsid = ns->nsid;
	cmd->addr = (uint64_t)(uintptr_t)buf;
	cmd->data_len = len;
	cmd->cdw10 = (uint32_t)lba;
	cmd->cdw11 = (uint32_t)(lba >> 32);
	cmd->cdw12 = len / ns->lbs - 1; /* Number of logical blocks, 0-based. */

	ret = io_uring_submit(ring);
	cr_assert_eq(ret, 1, "io_uring_submit: %d", ret);
	ret = io_uring_wait_cqe(ring, &cqe);
	cr_assert_eq(ret, 0, "io_uring_wait_cqe: %s", strerror(-ret));
	cr_assert_eq(cqe->user_data, lba);
	ret = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return ret;
}

/* Checks that the block device holds want at lba, read with O_DIRECT. */
static void blk_expect(const struct ns *ns, uint64_t lba, const void *want, size_t len)
{
	void *got = buf_alloc(len);
	int fd = open(ns->blk, O_RDONLY | O_DIRECT);
	ssize_t n;

	cr_assert(fd >= 0, "open %s: %s", ns->blk, strerror(errno));
	n = pread(fd, got, len, (off_t)(lba * ns->lbs));
	cr_assert_eq(n, (ssize_t)len, "pread %s: %zd (%s)", ns->blk, n, strerror(errno));
	cr_assert(memcmp(got, want, len) == 0,
		  "%s at byte %llu differs from what passthrough wrote", ns->blk,
		  (unsigned long long)(lba * ns->lbs));
	close(fd);
	free(got);
}

static void roundtrip(const char *role, uint64_t lba, uint32_t len)
{
	struct io_uring ring;
	struct ns ns;
	uint8_t *wbuf = buf_alloc(len), *rbuf = buf_alloc(len);
	int res;

	ns_open(role, &ns);
	ring_init(&ring, 0);
	pattern_fill(wbuf, len, (uint32_t)lba);
	memset(rbuf, 0xa5, len);

	res = pt_rw(&ring, &ns, NVME_OP_WRITE, lba, wbuf, len);
	cr_assert_eq(res, 0, "write on %s: res %d", ns.ng, res);
	res = pt_rw(&ring, &ns, NVME_OP_READ, lba, rbuf, len);
	cr_assert_eq(res, 0, "read on %s: res %d", ns.ng, res);
	cr_assert(memcmp(wbuf, rbuf, len) == 0, "read back differs on %s", ns.ng);
	blk_expect(&ns, lba, wbuf, len);

	io_uring_queue_exit(&ring);
	close(ns.fd);
	free(wbuf);
	free(rbuf);
}

Test(nvme_vm, roundtrip_512)
{
	roundtrip("512", 100, 64 * 1024);
}

Test(nvme_vm, roundtrip_4k)
{
	struct ns ns;

	ns_open("4K", &ns);
	cr_assert_eq(ns.lbs, 4096u);
	close(ns.fd);
	roundtrip("4K", 10, 16 * 1024);
}

/* The FAULT namespace with a ring and a 4 KiB buffer, around its bad LBA. */
struct fault_run {
	struct io_uring ring;
	struct ns ns;
	uint64_t bad;		/* The LBA that fails, from the variable lba_var. */
	uint8_t *buf;
};

static void fault_open(struct fault_run *f, const char *lba_var)
{
	f->bad = env_u64(lba_var);
	f->buf = buf_alloc(4096);
	ns_open("FAULT", &f->ns);
	ring_init(&f->ring, 0);
}

static void fault_close(struct fault_run *f)
{
	io_uring_queue_exit(&f->ring);
	close(f->ns.fd);
	free(f->buf);
}

/*
 * One block of opcode at the bad LBA must fail with the NVMe status sc
 * (type and code), not with a kernel error; what names the op.
 */
static void expect_media_error(struct fault_run *f, uint8_t opcode, int sc, const char *what)
{
	int res = pt_rw(&f->ring, &f->ns, opcode, f->bad, f->buf, f->ns.lbs);

	cr_assert(res > 0, "%s of LBA %llu gave res %d, want an NVMe status", what,
		  (unsigned long long)f->bad, res);
	cr_assert_eq(res & NVME_STATUS_MASK, sc, "%s of the fault LBA: status %#x", what, res);
	cr_log_info("%s of the fault LBA: res %#x", what, res);
}

Test(nvme_vm, fault_read_is_unrecovered_read_error)
{
	struct fault_run f;
	int res;

	fault_open(&f, "URT_NVME_FAULT_READ_LBA");
	expect_media_error(&f, NVME_OP_READ, NVME_SC_UNRECOVERED_READ, "read");
	/* An I/O that merely overlaps the sector fails the same way. */
	res = pt_rw(&f.ring, &f.ns, NVME_OP_READ, f.bad - 4, f.buf, 8 * f.ns.lbs);
	cr_assert_eq(res & NVME_STATUS_MASK, NVME_SC_UNRECOVERED_READ,
		     "overlapping read: status %#x", res);
	/* Its neighbours and writes to it are healthy. */
	res = pt_rw(&f.ring, &f.ns, NVME_OP_READ, f.bad + 1, f.buf, f.ns.lbs);
	cr_assert_eq(res, 0, "read after the fault LBA: res %#x", res);
	res = pt_rw(&f.ring, &f.ns, NVME_OP_WRITE, f.bad, f.buf, f.ns.lbs);
	cr_assert_eq(res, 0, "write to the read-fault LBA: res %#x", res);
	fault_close(&f);
}

Test(nvme_vm, fault_write_is_write_fault)
{
	struct fault_run f;
	int res;

	fault_open(&f, "URT_NVME_FAULT_WRITE_LBA");
	pattern_fill(f.buf, 4096, 7);
	expect_media_error(&f, NVME_OP_WRITE, NVME_SC_WRITE_FAULT, "write");
	res = pt_rw(&f.ring, &f.ns, NVME_OP_READ, f.bad, f.buf, f.ns.lbs);
	cr_assert_eq(res, 0, "read of the write-fault LBA: res %#x", res);
	fault_close(&f);
}

static double now_s(void)
{
	return (double)urt_clock_ns() / 1e9;
}

Test(nvme_vm, slow_io_after_a_64k_io_takes_seconds)
{
	struct io_uring ring;
	struct ns ns;
	const uint32_t len = 64 * 1024;
	uint64_t bps = env_u64("URT_NVME_SLOW_BPS");
	uint8_t *wbuf = buf_alloc(len), *rbuf = buf_alloc(len);
	double t0, t1, t2, expect;
	int res;

	ns_open("SLOW", &ns);
	ring_init(&ring, 0);
	pattern_fill(wbuf, len, 64);

	/* The throttle's bucket starts empty: this write is admitted at once. */
	t0 = now_s();
	res = pt_rw(&ring, &ns, NVME_OP_WRITE, 0, wbuf, len);
	t1 = now_s();
	cr_assert_eq(res, 0, "priming write: res %d", res);
	/* Now the bucket holds 64 KiB, which drains at bps bytes per second. */
	res = pt_rw(&ring, &ns, NVME_OP_READ, 0, rbuf, len);
	t2 = now_s();
	cr_assert_eq(res, 0, "throttled read: res %d", res);
	cr_assert(memcmp(wbuf, rbuf, len) == 0, "throttled read returned other data");

	expect = (double)len / (double)bps;
	cr_log_info("slow namespace: 64 KiB write %.2f s, following 64 KiB read %.2f s (bucket drain %.2f s)",
		    t1 - t0, t2 - t1, expect);
	cr_assert(t2 - t1 >= expect / 2, "the read took %.2f s, want at least %.2f s",
		  t2 - t1, expect / 2);

	io_uring_queue_exit(&ring);
	close(ns.fd);
	free(wbuf);
	free(rbuf);
}

/* Reads a small sysfs attribute of a block device into buf. */
static void sysfs_read(const char *blk, const char *attr, char *buf, size_t len)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/block/%s/%s", strrchr(blk, '/') + 1, attr);
	f = fopen(path, "r");
	cr_assert_not_null(f, "fopen %s: %s", path, strerror(errno));
	cr_assert_not_null(fgets(buf, (int)len, f), "read %s", path);
	fclose(f);
}

/*
 * Sums the interrupts of the NVMe I/O queues (nvme0q1, nvme0q2, ...; the
 * admin queue nvme0q0 is left out) over every CPU, from /proc/interrupts.
 */
static unsigned long long nvme_io_irqs(void)
{
	char line[1024];
	unsigned long long sum = 0;
	int lines = 0;
	FILE *f = fopen("/proc/interrupts", "r");

	cr_assert_not_null(f, "fopen /proc/interrupts: %s", strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		char *q = strstr(line, "nvme"), *p, *end;

		if (!q || strstr(q, "q0\n") || strstr(q, "q0 "))
			continue;
		lines++;
		/* Skip the "NN:" label, then add the per-CPU counts. */
		p = strchr(line, ':');
		cr_assert_not_null(p);
		for (p++;; p = end) {
			unsigned long long n = strtoull(p, &end, 10);

			if (end == p)
				break;
			sum += n;
		}
	}
	fclose(f);
	cr_assert(lines > 0, "no NVMe I/O queue interrupts in /proc/interrupts");
	return sum;
}

Test(nvme_vm, iopoll_ring_completes_passthrough)
{
	struct io_uring ring, polled;
	struct ns ns;
	const uint32_t len = 16 * 1024;
	uint8_t *wbuf = buf_alloc(len), *rbuf = buf_alloc(len);
	unsigned long long irq0, irq1, irq2;
	char attr[32];
	int res;

	ns_open("512", &ns);
	/* The guest loads nvme with poll_queues, so the queue can poll. */
	sysfs_read(ns.blk, "queue/io_poll", attr, sizeof(attr));
	cr_assert_eq(atoi(attr), 1, "%s has no poll queues (io_poll=%s)", ns.blk, attr);

	ring_init(&ring, 0);
	ring_init(&polled, IORING_SETUP_IOPOLL);
	pattern_fill(wbuf, len, 300);
	memset(rbuf, 0, len);

	/* Control: interrupt-driven passthrough raises NVMe interrupts... */
	irq0 = nvme_io_irqs();
	res = pt_rw(&ring, &ns, NVME_OP_WRITE, 300, wbuf, len);
	cr_assert_eq(res, 0, "write: res %d", res);
	irq1 = nvme_io_irqs();
	cr_assert_gt(irq1, irq0, "an interrupt-driven write raised no NVMe interrupt");

	/* ...and polled passthrough, served by the poll queues, raises none. */
	res = pt_rw(&polled, &ns, NVME_OP_WRITE, 300, wbuf, len);
	cr_assert_eq(res, 0, "polled write: res %d", res);
	res = pt_rw(&polled, &ns, NVME_OP_READ, 300, rbuf, len);
	cr_assert_eq(res, 0, "polled read: res %d", res);
	irq2 = nvme_io_irqs();
	cr_assert_eq(irq2, irq1, "polled I/O raised %llu NVMe interrupts", irq2 - irq1);
	cr_assert(memcmp(wbuf, rbuf, len) == 0, "polled read returned other data");
	blk_expect(&ns, 300, wbuf, len);

	io_uring_queue_exit(&polled);
	io_uring_queue_exit(&ring);
	close(ns.fd);
	free(wbuf);
	free(rbuf);
}
