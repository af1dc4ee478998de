/*
 * The guest half of the device-side FUA/flush check (ctest nvme_vm_smoke,
 * host half tests/nvme-vm/nvme_trace_check.py).
 *
 * Reading data back cannot tell whether a write carried FUA or whether a
 * flush reached the device.  So this program runs known workloads through
 * urt on the 4 KiB namespace's /dev/ngXnY, each in a window that the host
 * can cut out of QEMU's trace of the commands the emulated controller
 * received, and states what the device must have seen in it:
 *
 *   URT-CHK window NAME nsid N begin LBA end LBA fua X flush Y plain Z|- want pass|fail
 *   URT-KTRACE NAME <one nvme_setup_cmd line of the guest kernel's trace>
 *
 * A window starts and ends with a one-block Write Zeroes at a marker LBA
 * (the only Write Zeroes of those LBAs in the boot), issued and completed
 * alone, so everything between the two markers in QEMU's trace belongs to
 * the window.  QEMU 7.2 traces each command's cid, queue, opcode and LBAs
 * but not CDW12, and ignores FUA; so the FUA bit is taken from the guest
 * kernel's nvme_setup_cmd tracepoint (the command as the driver wrote it
 * into the submission queue), and the checker matches every such command
 * to one the device received (same queue, cid, opcode, LBA, length).
 *
 * Windows:
 *   direct     16 FUA writes, 8 plain writes, 4 flushes, through urt_io;
 *   ps-fua     the page store with URT_PS_SYNC_FUA: 16 commits, then a
 *              checkpoint; its own counters give the FUA writes and flushes;
 *   ps-flush   the same with URT_PS_SYNC_FLUSH;
 *   neg-fua    the direct workload with the FUA flag left off but still
 *              claimed: the checker must find the FUA writes missing;
 *   neg-flush  the direct workload with the flushes left out but still
 *              claimed: the checker must find the flushes missing.
 * The neg windows prove, in every run, that the check goes red when a bit
 * or a flush is dropped.  The arguments --drop-fua and --drop-flush make
 * the direct window drop them too, which must fail the whole test:
 *
 *   tests/nvme-vm/run-vm.sh --trace pci_nvme_io_cmd,pci_nvme_read,pci_nvme_write,pci_nvme_flush_ns \
 *       --check 'python3 tests/nvme-vm/nvme_trace_check.py' --args --drop-fua \
 *       build/tests/passthru/pt_trace_workload
 *
 * Outside the guest (URT_NVME_VM unset) it exits 77 (skip).  Needs root
 * (tracefs), like everything in the guest.
 */
#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "urt/buf.h"
#include "urt/dev.h"
#include "urt/error.h"
#include "urt/fiber.h"
#include "urt/io.h"
#include "urt/ps.h"
#include "urt/rt.h"

#define TRACEFS "/sys/kernel/tracing"
#define EVENT_ENABLE TRACEFS "/events/nvme/nvme_setup_cmd/enable"

/* Layout on the 4 KiB namespace (128 MiB): the upper half is this program's. */
#define LBA_DIRECT 16384u	/* 64 MiB: the direct windows' writes. */
#define PS_OFFSET (80ull << 20)	/* The page store windows' region. */
#define PS_BYTES (8ull << 20)
#define LBA_MARKER 32000u	/* Marker LBAs: LBA_MARKER + 2 * window (+ 1 for the end). */

#define N_FUA 16
#define N_PLAIN 8
#define N_FLUSH 4
#define N_COMMITS 16

struct win {
	const char *name;
	unsigned index;		/* Marker pair. */
	bool drop_fua;		/* Leave URT_IO_FUA off the FUA writes (still claimed). */
	bool drop_flush;	/* Leave the flushes out (still claimed). */
	int ps_sync;		/* -1: direct workload; else an enum urt_ps_sync. */
	bool want_pass;		/* What the checker must conclude. */
	/* Filled by the run. */
	unsigned fua, flush, plain;
	int err;		/* First error, 0 if none. */
	char what[256];		/* What failed. */
};

struct job {
	struct urt_dev *dev;
	uint32_t lbs;
	struct win *w;
	sem_t done;
};

static int fail(struct win *w, int err, const char *fmt, ...)
{
	va_list ap;

	if (w->err)
		return err;
	w->err = err ? err : -EIO;
	va_start(ap, fmt);
	vsnprintf(w->what, sizeof(w->what), fmt, ap);
	va_end(ap);
	return err;
}

static int io_write(struct job *j, void *buf, uint64_t lba, bool fua)
{
	struct urt_io io;
	int ret;

	urt_io_prep_write(&io, j->dev, buf, j->lbs, lba * j->lbs);
	if (fua)
		io.flags |= URT_IO_FUA;
	ret = urt_io_wait(&io);
	return ret == (int)j->lbs ? 0 : ret < 0 ? ret : -EIO;
}

static int io_flush(struct job *j)
{
	struct urt_io io;

	urt_io_prep_flush(&io, j->dev);
	return urt_io_wait(&io);
}

/* A marker: one block of Write Zeroes, alone in flight. */
static int io_marker(struct job *j, uint64_t lba)
{
	struct urt_io io;

	urt_io_prep_write_zeroes(&io, j->dev, j->lbs, lba * j->lbs);
	return urt_io_wait(&io);
}

/* 16 FUA writes, 8 plain writes and 4 flushes, interleaved: 4 FUA, 2 plain, a flush. */
static void run_direct(struct job *j, void *buf)
{
	struct win *w = j->w;
	uint64_t lba = LBA_DIRECT + 64ull * w->index;
	int ret;

	for (unsigned r = 0; r < N_FLUSH; r++) {
		for (unsigned i = 0; i < N_FUA / N_FLUSH; i++) {
			memset(buf, (int)(r * 16 + i), j->lbs);
			ret = io_write(j, buf, lba++, !w->drop_fua);
			if (ret) {
				fail(w, ret, "FUA write at LBA %llu: %s", (unsigned long long)(lba - 1), urt_strerror(ret));
				return;
			}
			w->fua++;
		}
		for (unsigned i = 0; i < N_PLAIN / N_FLUSH; i++) {
			ret = io_write(j, buf, lba++, false);
			if (ret) {
				fail(w, ret, "plain write at LBA %llu: %s", (unsigned long long)(lba - 1), urt_strerror(ret));
				return;
			}
			w->plain++;
		}
		if (!w->drop_flush) {
			ret = io_flush(j);
			if (ret) {
				fail(w, ret, "flush: %s", urt_strerror(ret));
				return;
			}
		}
		w->flush++;
	}
}

/* N_COMMITS single-page commits and a checkpoint on a fresh page store; its counters say what it sent. */
static void run_ps(struct job *j)
{
	struct win *w = j->w;
	struct urt_ps_opts o;
	struct urt_ps_stats st0, st1;
	struct urt_ps *ps;
	int ret;

	urt_ps_opts_default(&o);
	o.format = true;
	o.region_offset = PS_OFFSET;
	o.region_bytes = PS_BYTES;
	o.sync = (enum urt_ps_sync)w->ps_sync;
	ret = urt_ps_open(j->dev, &o, &ps);
	if (ret) {
		fail(w, ret, "urt_ps_open: %s", urt_strerror(ret));
		return;
	}
	/* Count from here: formatting wrote its own pages, which the markers leave outside. */
	urt_ps_stats(ps, &st0);
	ret = io_marker(j, LBA_MARKER + 2ull * w->index);
	if (ret) {
		fail(w, ret, "begin marker: %s", urt_strerror(ret));
		goto out;
	}
	for (unsigned i = 0; i < N_COMMITS; i++) {
		struct urt_tx *tx;
		void *data;

		ret = urt_tx_begin(ps, &tx);
		if (!ret)
			ret = urt_page_get(tx, 1 + i, URT_PAGE_WRITE, &data);
		if (ret) {
			fail(w, ret, "transaction %u: %s", i, urt_strerror(ret));
			goto out;
		}
		snprintf(data, 64, "commit %u of window %s", i, w->name);
		ret = urt_tx_commit(tx);
		if (ret) {
			fail(w, ret, "commit %u: %s", i, urt_strerror(ret));
			goto out;
		}
	}
	ret = urt_ps_checkpoint(ps);
	if (ret) {
		fail(w, ret, "checkpoint: %s", urt_strerror(ret));
		goto out;
	}
	urt_ps_stats(ps, &st1);
	w->fua = (unsigned)(st1.fua_writes - st0.fua_writes);
	w->flush = (unsigned)(st1.flushes - st0.flushes);
	w->plain = 0;	/* Page writes home: whatever the checkpoint needed; not checked. */
	ret = io_marker(j, LBA_MARKER + 2ull * w->index + 1);
	if (ret)
		fail(w, ret, "end marker: %s", urt_strerror(ret));
out:
	ret = urt_ps_close(ps);
	if (ret)
		fail(w, ret, "urt_ps_close: %s", urt_strerror(ret));
}

static void body(void *arg)
{
	struct job *j = arg;
	struct win *w = j->w;
	void *buf;
	int ret;

	if (w->ps_sync >= 0) {
		run_ps(j);
		goto out;
	}
	buf = urt_buf_get(j->lbs);
	if (!buf) {
		fail(w, -ENOMEM, "urt_buf_get: %s", urt_last_error());
		goto out;
	}
	ret = io_marker(j, LBA_MARKER + 2ull * w->index);
	if (ret) {
		fail(w, ret, "begin marker: %s", urt_strerror(ret));
	} else {
		run_direct(j, buf);
		ret = io_marker(j, LBA_MARKER + 2ull * w->index + 1);
		if (ret)
			fail(w, ret, "end marker: %s", urt_strerror(ret));
	}
	urt_buf_put(buf);
out:
	sem_post(&j->done);
}

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -EIO;
}

/* Mounts tracefs if needed and clears the trace; 0 or -errno. */
static int ktrace_setup(void)
{
	struct stat st;

	if (stat(EVENT_ENABLE, &st) != 0) {
		mkdir(TRACEFS, 0755);
		if (mount("tracefs", TRACEFS, "tracefs", 0, NULL) != 0 && errno != EBUSY)
			return -errno;
		if (stat(EVENT_ENABLE, &st) != 0)
			return -errno;
	}
	/* Room for every command of a window on either CPU. */
	write_file(TRACEFS "/buffer_size_kb", "4096");
	return write_file(TRACEFS "/trace", "");
}

/*
 * Prints the window's nvme_setup_cmd lines for I/O queues, prefixed, and
 * clears the trace.  Fails if the ring buffer dropped entries.
 */
static int ktrace_dump(const char *name)
{
	FILE *f = fopen(TRACEFS "/trace", "r");
	char line[1024];
	unsigned long in_buf = 0, written = 0;
	int lines = 0;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		const char *e = strstr(line, "entries-in-buffer/entries-written:");

		if (e)
			sscanf(e, "entries-in-buffer/entries-written: %lu/%lu", &in_buf, &written);
		if (line[0] == '#' || !strstr(line, "nvme_setup_cmd:") || !strstr(line, "disk="))
			continue;
		printf("URT-KTRACE %s %s", name, line);
		lines++;
	}
	fclose(f);
	fflush(stdout);
	if (in_buf != written) {
		fprintf(stderr, "pt_trace_workload: the kernel trace lost %lu of %lu entries in window %s\n",
			written - in_buf, written, name);
		return -ENOSPC;
	}
	return write_file(TRACEFS "/trace", "") ? -EIO : lines;
}

static bool has_arg(int argc, char **argv, const char *name)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return true;
	return false;
}

int main(int argc, char **argv)
{
	const char *ng = getenv("URT_NVME_NS4K"), *nsid_s = getenv("URT_NVME_NSID4K");
	struct win wins[] = {
		{ .name = "direct", .ps_sync = -1, .want_pass = true, .drop_fua = has_arg(argc, argv, "--drop-fua"),
		  .drop_flush = has_arg(argc, argv, "--drop-flush") },
		{ .name = "ps-fua", .ps_sync = URT_PS_SYNC_FUA, .want_pass = true },
		{ .name = "ps-flush", .ps_sync = URT_PS_SYNC_FLUSH, .want_pass = true },
		{ .name = "neg-fua", .ps_sync = -1, .drop_fua = true, .want_pass = false },
		{ .name = "neg-flush", .ps_sync = -1, .drop_flush = true, .want_pass = false },
	};
	static const int cpu0[] = { 0 };
	struct urt_rt_opts ro;
	struct urt_dev_opts dopts;
	struct urt_rt *rt;
	struct urt_dev *dev;
	int ret, bad = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--drop-fua") && strcmp(argv[i], "--drop-flush")) {
			fprintf(stderr, "pt_trace_workload: unknown argument %s (known: --drop-fua, --drop-flush)\n",
				argv[i]);
			return 2;
		}
	}
	if (!getenv("URT_NVME_VM")) {
		fprintf(stderr, "pt_trace_workload: not in the NVMe test guest (URT_NVME_VM unset): skip\n");
		return 77;
	}
	if (!ng || !nsid_s) {
		fprintf(stderr, "pt_trace_workload: URT_NVME_NS4K or URT_NVME_NSID4K is not set inside the guest\n");
		return 1;
	}
	ret = ktrace_setup();
	if (ret) {
		fprintf(stderr, "pt_trace_workload: cannot use the kernel's nvme_setup_cmd tracepoint under %s: %s\n",
			TRACEFS, strerror(-ret));
		return 1;
	}
	urt_rt_opts_default(&ro);
	ro.cpus = cpu0;
	ro.ncpus = 1;
	ret = urt_rt_start(&ro, &rt);
	if (ret) {
		fprintf(stderr, "pt_trace_workload: urt_rt_start: %s\n", urt_last_error());
		return 1;
	}
	urt_dev_opts_default(&dopts);
	dopts.backend = "passthru";
	ret = urt_dev_open(ng, &dopts, &dev);
	if (ret) {
		fprintf(stderr, "pt_trace_workload: %s: %s\n", ng, urt_last_error());
		urt_rt_stop(rt);
		return 1;
	}
	if (!urt_dev_info(dev)->volatile_cache) {
		/* Without a volatile cache the backend sends no Flush at all (docs/passthru.md). */
		fprintf(stderr, "pt_trace_workload: %s reports no volatile write cache; the flush check needs one\n",
			ng);
		bad = 1;
		goto out;
	}
	for (unsigned i = 0; i < sizeof(wins) / sizeof(wins[0]); i++) {
		struct win *w = &wins[i];
		struct job j = { .dev = dev, .lbs = urt_dev_info(dev)->block_bytes, .w = w };
		int lines;

		w->index = i;
		sem_init(&j.done, 0, 0);
		write_file(EVENT_ENABLE, "1");
		ret = urt_fiber_spawn_on(rt, 0, body, &j);
		if (ret)
			fail(w, ret, "urt_fiber_spawn_on: %s", urt_strerror(ret));
		else
			sem_wait(&j.done);
		write_file(EVENT_ENABLE, "0");
		sem_destroy(&j.done);
		lines = ktrace_dump(w->name);
		if (lines < 0)
			fail(w, lines, "kernel trace: %s", strerror(-lines));
		if (w->err) {
			fprintf(stderr, "pt_trace_workload: window %s: %s\n", w->name, w->what);
			bad = 1;
			continue;
		}
		char plain[16] = "-";	/* The page store's writes home are not counted. */

		if (w->ps_sync < 0)
			snprintf(plain, sizeof(plain), "%u", w->plain);
		printf("URT-CHK window %s nsid %s begin %u end %u fua %u flush %u plain %s want %s\n", w->name,
		       nsid_s, LBA_MARKER + 2 * i, LBA_MARKER + 2 * i + 1, w->fua, w->flush, plain,
		       w->want_pass ? "pass" : "fail");
		if (w->ps_sync == URT_PS_SYNC_FUA && w->fua == 0)
			bad = fprintf(stderr, "pt_trace_workload: ps-fua committed without one FUA write\n") > 0;
		if (w->ps_sync == URT_PS_SYNC_FLUSH && w->flush == 0)
			bad = fprintf(stderr, "pt_trace_workload: ps-flush committed without one flush\n") > 0;
	}
out:
	urt_dev_close(dev);
	urt_rt_stop(rt);
	printf("URT-CHK done windows %zu\n", bad ? (size_t)0 : sizeof(wins) / sizeof(wins[0]));
	return bad;
}
