/*
 * The passthrough command builder (src/passthru/nvme_cmd.c), without a
 * device: every test builds one SQE128 entry into a local buffer and
 * checks the io_uring fields and the NVMe command inside it, field by
 * field, as the kernel and the controller would read them.  A dropped FUA
 * bit, a wrong SLBA or NLB, a Flush that is not sent, a lost
 * IORING_URING_CMD_FIXED or buffer index all fail here.
 */
#include <criterion/criterion.h>
#include <linux/nvme_ioctl.h>
#include <string.h>

#include "passthru/nvme_cmd.h"
#include "urt/io.h"

/* One SQE128 entry: two struct io_uring_sqe, as the ring lays them out. */
struct sqe128 {
	struct io_uring_sqe sqe[2];
};

static const struct nvme_cmd_target ns512 = {
	.fd = 7,
	.nsid = 3,
	.lba_shift = 9,
	.timeout_ms = 2500,
	.max_io_bytes = 520192,	/* The guest's limit: 127 pages. */
	.volatile_cache = true,
};

static struct nvme_uring_cmd *prep(const struct nvme_cmd_target *t, const struct nvme_cmd_op *op,
				   struct sqe128 *s, int64_t *n)
{
	memset(s, 0xa5, sizeof(*s));	/* Garbage: prep must write every field it relies on. */
	*n = nvme_cmd_prep(t, op, s->sqe);
	return (struct nvme_uring_cmd *)s->sqe[0].cmd;
}

static uint64_t slba_of(const struct nvme_uring_cmd *cmd)
{
	return (uint64_t)cmd->cdw11 << 32 | cmd->cdw10;
}

/* NLB: CDW12 bits 0-15, zero-based. */
static uint32_t nlb_of(const struct nvme_uring_cmd *cmd)
{
	return (cmd->cdw12 & 0xffffu) + 1;
}

static bool fua_of(const struct nvme_uring_cmd *cmd)
{
	return cmd->cdw12 & (1u << 30);
}

Test(nvme_cmd, read_heap_buffer)
{
	static uint8_t buf[8192];
	struct nvme_cmd_op op = { .op = URT_OP_READ, .buf = buf, .len = 8192, .off = 0x12345600, .buf_index = -1 };
	struct sqe128 s;
	int64_t n;
	struct nvme_uring_cmd *cmd = prep(&ns512, &op, &s, &n);

	cr_assert_eq(n, 8192);
	cr_assert_eq(s.sqe[0].opcode, IORING_OP_URING_CMD);
	cr_assert_eq(s.sqe[0].cmd_op, NVME_URING_CMD_IO);
	cr_assert_eq(s.sqe[0].fd, 7);
	cr_assert_eq(s.sqe[0].flags & IOSQE_FIXED_FILE, 0);
	cr_assert_eq(s.sqe[0].uring_cmd_flags & IORING_URING_CMD_FIXED, 0, "heap memory is not a registered buffer");
	cr_assert_eq(cmd->opcode, 0x02, "Read");
	cr_assert_eq(cmd->nsid, 3);
	cr_assert_eq(slba_of(cmd), 0x12345600ull >> 9);
	cr_assert_eq(nlb_of(cmd), 16);
	cr_assert_not(fua_of(cmd));
	cr_assert_eq(cmd->addr, (uint64_t)(uintptr_t)buf);
	cr_assert_eq(cmd->data_len, 8192);
	cr_assert_eq(cmd->timeout_ms, 2500);
	cr_assert_eq(cmd->metadata, 0);
	cr_assert_eq(cmd->metadata_len, 0);
	cr_assert_eq(nvme_cmd_opcode(s.sqe), 0x02);
}

Test(nvme_cmd, write_fixed_buffer_fixed_file_fua)
{
	static uint8_t buf[4096];
	struct nvme_cmd_target t = ns512;
	struct nvme_cmd_op op = {
		.op = URT_OP_WRITE, .flags = URT_IO_FUA, .buf = buf, .len = 4096, .off = 1ull << 45, .buf_index = 5,
	};
	struct sqe128 s;
	int64_t n;
	struct nvme_uring_cmd *cmd;

	t.fd = 2;
	t.fixed_file = true;
	cmd = prep(&t, &op, &s, &n);
	cr_assert_eq(n, 4096);
	cr_assert_eq(cmd->opcode, 0x01, "Write");
	cr_assert(fua_of(cmd), "URT_IO_FUA must set CDW12 bit 30");
	cr_assert_eq(nlb_of(cmd), 8);
	cr_assert_eq(slba_of(cmd), 1ull << 36);
	cr_assert_eq(cmd->cdw11, 16, "SLBA bits 32-63 go to CDW11");
	cr_assert_eq(cmd->cdw10, 0);
	cr_assert_eq(s.sqe[0].uring_cmd_flags, IORING_URING_CMD_FIXED);
	cr_assert_eq(s.sqe[0].buf_index, 5);
	cr_assert_eq(s.sqe[0].fd, 2);
	cr_assert(s.sqe[0].flags & IOSQE_FIXED_FILE);
}

Test(nvme_cmd, write_without_fua_and_read_ignores_fua)
{
	static uint8_t buf[4096];
	struct nvme_cmd_op op = { .op = URT_OP_WRITE, .buf = buf, .len = 4096, .buf_index = -1 };
	struct sqe128 s;
	int64_t n;

	cr_assert_not(fua_of(prep(&ns512, &op, &s, &n)), "a plain write must not carry FUA");
	op.op = URT_OP_READ;
	op.flags = URT_IO_FUA;
	cr_assert_not(fua_of(prep(&ns512, &op, &s, &n)), "FUA is a write flag");
}

Test(nvme_cmd, split_at_max_io_bytes)
{
	static uint8_t buf[1 << 21];
	struct nvme_cmd_op op = { .op = URT_OP_READ, .buf = buf, .len = sizeof(buf), .off = 4096, .buf_index = -1 };
	struct sqe128 s;
	int64_t n;
	struct nvme_uring_cmd *cmd = prep(&ns512, &op, &s, &n);

	cr_assert_eq(n, 520192, "one command carries at most max_io_bytes");
	cr_assert_eq(cmd->data_len, 520192);
	cr_assert_eq(nlb_of(cmd), 520192 / 512);
	cr_assert_eq(slba_of(cmd), 8);
}

Test(nvme_cmd, nlb_on_4k_blocks)
{
	static uint8_t buf[65536];
	struct nvme_cmd_target t = ns512;
	struct nvme_cmd_op op = { .op = URT_OP_WRITE, .buf = buf, .len = 65536, .off = 3 * 4096, .buf_index = -1 };
	struct sqe128 s;
	int64_t n;
	struct nvme_uring_cmd *cmd;

	t.lba_shift = 12;
	cmd = prep(&t, &op, &s, &n);
	cr_assert_eq(slba_of(cmd), 3);
	cr_assert_eq(nlb_of(cmd), 16);
	cr_assert_eq(cmd->cdw12 & 0xffffu, 15, "NLB is zero-based");
}

Test(nvme_cmd, flush_with_and_without_write_cache)
{
	struct nvme_cmd_target t = ns512;
	struct nvme_cmd_op op = { .op = URT_OP_FLUSH, .buf_index = -1 };
	struct sqe128 s;
	int64_t n;
	struct nvme_uring_cmd *cmd = prep(&t, &op, &s, &n);

	cr_assert_eq(n, 0);
	cr_assert_eq(s.sqe[0].opcode, IORING_OP_URING_CMD, "a volatile cache needs a real Flush");
	cr_assert_eq(cmd->opcode, 0x00, "Flush");
	cr_assert_eq(cmd->nsid, 3);
	cr_assert_eq(cmd->addr, 0);
	cr_assert_eq(cmd->data_len, 0);
	cr_assert_eq(cmd->cdw10 | cmd->cdw11 | cmd->cdw12, 0);
	cr_assert_eq(nvme_cmd_opcode(s.sqe), 0x00);
	op.op = URT_OP_FSYNC;
	cr_assert_eq(prep(&t, &op, &s, &n)->opcode, 0x00, "FSYNC is a Flush too");

	t.volatile_cache = false;
	prep(&t, &op, &s, &n);
	cr_assert_eq(s.sqe[0].opcode, IORING_OP_NOP, "no volatile cache: nothing to flush");
	cr_assert_eq(nvme_cmd_opcode(s.sqe), -1);
}

Test(nvme_cmd, vectors)
{
	static uint8_t a[4096], b[8192];
	struct iovec iov[2] = { { a, sizeof(a) }, { b, sizeof(b) } };
	struct nvme_cmd_op op = { .op = URT_OP_WRITEV, .flags = URT_IO_FUA, .iov = iov, .nr_iov = 2, .off = 512,
				  .buf_index = -1 };
	struct nvme_cmd_target t = ns512;
	struct sqe128 s;
	int64_t n;
	struct nvme_uring_cmd *cmd = prep(&t, &op, &s, &n);

	cr_assert_eq(n, 12288);
	cr_assert_eq(s.sqe[0].cmd_op, NVME_URING_CMD_IO_VEC);
	cr_assert_eq(cmd->addr, (uint64_t)(uintptr_t)iov);
	cr_assert_eq(cmd->data_len, 2, "a vector's data_len is its entry count");
	cr_assert_eq(cmd->opcode, 0x01);
	cr_assert(fua_of(cmd), "WRITEV carries FUA too");
	cr_assert_eq(nlb_of(cmd), 24);
	cr_assert_eq(slba_of(cmd), 1);

	/* Only whole entries that fit: the first one. */
	t.max_io_bytes = 8192;
	cmd = prep(&t, &op, &s, &n);
	cr_assert_eq(n, 4096);
	cr_assert_eq(cmd->data_len, 1);
	/* A first entry larger than the limit goes as a plain command on part of it. */
	iov[0] = (struct iovec){ b, sizeof(b) };
	t.max_io_bytes = 4096;
	op.op = URT_OP_READV;
	cmd = prep(&t, &op, &s, &n);
	cr_assert_eq(n, 4096);
	cr_assert_eq(s.sqe[0].cmd_op, NVME_URING_CMD_IO);
	cr_assert_eq(cmd->addr, (uint64_t)(uintptr_t)b);
	cr_assert_eq(cmd->data_len, 4096);
	cr_assert_eq(cmd->opcode, 0x02);
	cr_assert_not(fua_of(cmd));
}

Test(nvme_cmd, write_zeroes_and_deallocate)
{
	struct nvme_dsm_range_le range;
	struct nvme_cmd_op op = { .op = URT_OP_WRITE_ZEROES, .len = 1 << 20, .off = 1 << 20, .buf_index = -1,
				  .range = &range };
	struct sqe128 s;
	int64_t n;
	struct nvme_uring_cmd *cmd = prep(&ns512, &op, &s, &n);

	cr_assert_eq(n, 0);
	cr_assert_eq(cmd->opcode, 0x08, "Write Zeroes");
	cr_assert_eq(slba_of(cmd), 2048);
	cr_assert_eq(nlb_of(cmd), 2048);
	cr_assert_eq(cmd->addr, 0);

	memset(&range, 0xff, sizeof(range));
	op.op = URT_OP_DEALLOCATE;
	cmd = prep(&ns512, &op, &s, &n);
	cr_assert_eq(cmd->opcode, 0x09, "Dataset Management");
	cr_assert_eq(cmd->cdw10, 0, "one range (zero-based)");
	cr_assert_eq(cmd->cdw11, 1u << 2, "the Deallocate attribute");
	cr_assert_eq(cmd->addr, (uint64_t)(uintptr_t)&range);
	cr_assert_eq(cmd->data_len, 16);
	cr_assert_eq(range.slba, 2048);
	cr_assert_eq(range.nlb, 2048, "a DSM range's length is not zero-based");
	cr_assert_eq(range.cattr, 0);
}

Test(nvme_cmd, unsupported_op)
{
	struct nvme_cmd_op op = { .op = URT_OP_TIMEOUT, .buf_index = -1 };
	struct sqe128 s;
	int64_t n;

	prep(&ns512, &op, &s, &n);
	cr_assert_eq(n, -EOPNOTSUPP);
}
