/*
 * NVMe discovery (urt_nvme_list, urt_nvme_list_print, `urbench --list`).
 *
 *   nvme_list_host  runs anywhere: the printed form of a list built in the
 *                   test (every line a person reads, "not known" reasons
 *                   included), and a scan of this machine, which skips when
 *                   the machine has no NVMe controller.
 *   nvme_list       inside the NVMe test guest (tests/nvme-vm): the scan
 *                   finds the emulated controller's four namespaces with
 *                   the paths, nsids, LBA formats, MDTS, write cache and
 *                   poll queues the guest set up; an unprivileged process
 *                   is told it may not open them; urbench --list prints
 *                   them.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../nvme-vm/guest_env.h"
#include "urbench/app.h"
#include "urt/dev.h"
#include "urt/error.h"
#include "urt/nvme.h"

/* Print list into a string (freed by the caller). */
static char *print_to_string(const struct urt_nvme_list *list)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	cr_assert_not_null(f);
	cr_assert_eq(urt_nvme_list_print(list, f), 0);
	fclose(f);
	return text;
}

static void assert_has(const char *text, const char *want)
{
	cr_assert(strstr(text, want), "missing \"%s\" in:\n%s", want, text);
}

Test(nvme_list_host, print_a_made_up_list)
{
	struct urt_nvme_ctrl_entry ctrl[2] = {
		{ .name = "nvme0", .path = "/dev/nvme0", .transport = "pcie", .model = "QEMU NVMe Ctrl",
		  .serial = "urtvm0001", .firmware = "8.0.0", .identified = true, .mdts_bytes = 512 * 1024,
		  .vwc = true, .oncs = 0x15e, .crdt = { 1, 2, 30 }, .poll_queues = 2, .coalesce_known = true,
		  .coalesce = { .threshold = 7, .time_100us = 3 } },
		{ .name = "nvme1", .path = "/dev/nvme1", .transport = "tcp", .identified = false,
		  .identify_err = -EACCES, .poll_queues = -1, .coalesce_err = -EPERM },
	};
	struct urt_nvme_ns_entry ns[2] = {
		{ .ctrl = 0, .nsid = 1, .generic_path = "/dev/ng0n1", .block_path = "/dev/nvme0n1",
		  .size_bytes = 128ull << 20, .block_bytes = 512, .access = URT_NVME_ACCESS_RW, .identified = true,
		  .nlbaf = 3, .lbaf_in_use = 0,
		  .lbaf = { { 512, 0, 0 }, { 512, 8, 0 }, { 4096, 0, 0 } }, .fua = true, .io_poll = true,
		  .kernel_max_bytes = 512 * 1024 },
		{ .ctrl = 1, .nsid = 7, .generic_path = "/dev/ng1n7", .block_path = "/dev/nvme1n7",
		  .size_bytes = 3ull << 30, .block_bytes = 4096, .access = URT_NVME_ACCESS_NONE, .open_err = -EACCES,
		  .identify_err = -EACCES },
	};
	struct urt_nvme_list list = { .nctrl = 2, .ctrl = ctrl, .nns = 2, .ns = ns };
	struct urt_nvme_list empty = { 0 };
	char *text = print_to_string(&list);

	assert_has(text, "nvme0  pcie  QEMU NVMe Ctrl  serial urtvm0001  firmware 8.0.0\n");
	assert_has(text, "  MDTS 512 KiB, volatile write cache yes, ONCS 0x015e (Write Zeroes yes, DSM yes), "
			 "CRDT 100/200/3000 ms\n");
	assert_has(text, "  poll queues 2 (nvme.poll_queues)\n");
	assert_has(text, "  interrupt coalescing (08h): threshold 8 completions, time 300 us\n");
	assert_has(text, "  nsid 1  /dev/ng0n1 read-write  /dev/nvme0n1  128 MiB in 512 B blocks\n");
	assert_has(text, "    LBA formats: [0*] 512 B [1] 512+8 B [2] 4096 B  (* in use)\n");
	assert_has(text, "    FUA native (kernel queue/fua 1), IOPOLL yes, kernel max 512 KiB\n");
	/* What could not be read says why, and never prints an empty "()". */
	assert_has(text, "  Identify Controller not known: Permission denied\n");
	assert_has(text, "  poll queues not known (no nvme module parameter for transport tcp)\n");
	assert_has(text, "  interrupt coalescing (08h) not known: Operation not permitted (Get Features needs root)\n");
	assert_has(text, "  nsid 7  /dev/ng1n7 no access (Permission denied)  /dev/nvme1n7  3 GiB in 4 KiB blocks\n");
	assert_has(text, "    Identify Namespace not known: Permission denied\n");
	cr_assert_null(strstr(text, "()"), "%s", text);
	/* Namespaces sit under their own controller. */
	cr_assert_lt(strstr(text, "nsid 1 ") - text, strstr(text, "nvme1  tcp") - text);
	free(text);
	text = print_to_string(&empty);
	cr_assert_str_eq(text, "no NVMe controllers found (/sys/class/nvme is empty or missing)\n");
	free(text);
}

Test(nvme_list_host, scan_this_machine)
{
	struct urt_nvme_list *list;
	int ret = urt_nvme_list(&list);

	cr_assert_eq(ret, 0, "urt_nvme_list: %d (%s)", ret, urt_last_error());
	if (list->nctrl == 0) {
		urt_nvme_list_free(list);
		cr_skip_test("this machine has no NVMe controller: nothing to check");
	}
	for (unsigned i = 0; i < list->nns; i++) {
		cr_assert_lt(list->ns[i].ctrl, list->nctrl);
		cr_assert_gt(list->ns[i].nsid, 0);
		cr_assert_eq(strncmp(list->ns[i].block_path, "/dev/nvme", 9), 0, "%s", list->ns[i].block_path);
	}
	urt_nvme_list_free(list);
}

/* --- Guest ------------------------------------------------------------------------ */

static const struct urt_nvme_ns_entry *find_ns(const struct urt_nvme_list *list, const char *ng)
{
	for (unsigned i = 0; i < list->nns; i++)
		if (strcmp(list->ns[i].generic_path, ng) == 0)
			return &list->ns[i];
	return NULL;
}

Test(nvme_list, finds_the_guest_namespaces)
{
	static const char *const roles[] = { "512", "4K", "FAULT", "SLOW" };
	const char *ctrl_path = env_or_skip("URT_NVME_CTRL");
	unsigned poll_queues = (unsigned)env_u64("URT_NVME_POLL_QUEUES");
	const struct urt_nvme_ctrl_entry *ctrl = NULL;
	struct urt_nvme_list *list;
	struct urt_dev *dev;
	char *text;
	int ret = urt_nvme_list(&list);

	cr_assert_eq(ret, 0, "urt_nvme_list: %d (%s)", ret, urt_last_error());
	for (unsigned i = 0; i < list->nctrl; i++)
		if (strcmp(list->ctrl[i].path, ctrl_path) == 0)
			ctrl = &list->ctrl[i];
	cr_assert_not_null(ctrl, "%s not listed", ctrl_path);
	cr_assert_str_eq(ctrl->transport, "pcie");
	cr_assert(ctrl->identified, "Identify Controller as root: %s", urt_strerror(ctrl->identify_err));
	cr_assert_eq(ctrl->mdts_bytes, 512 * 1024, "QEMU's MDTS 7 with 4 KiB pages");
	cr_assert_eq(ctrl->poll_queues, (int)poll_queues);
	cr_assert(ctrl->coalesce_known, "Get Features 08h as root: %s", urt_strerror(ctrl->coalesce_err));
	cr_assert_str_eq(ctrl->serial, "urtvm0001");

	for (unsigned r = 0; r < 4; r++) {
		const char *ng, *blk;
		uint32_t lbs, nsid;
		const struct urt_nvme_ns_entry *ns;

		guest_ns_env(roles[r], &ng, &blk, &lbs, &nsid);
		ns = find_ns(list, ng);
		cr_assert_not_null(ns, "%s (%s) not listed", ng, roles[r]);
		cr_assert_eq(list->ctrl + ns->ctrl, ctrl);
		cr_assert_eq(ns->nsid, nsid);
		cr_assert_str_eq(ns->block_path, blk);
		cr_assert_eq(ns->block_bytes, lbs);
		cr_assert_eq(ns->access, URT_NVME_ACCESS_RW, "root may open %s read-write", ng);
		cr_assert(ns->identified, "%s: %s", ng, urt_strerror(ns->identify_err));
		cr_assert_lt(ns->lbaf_in_use, ns->nlbaf);
		cr_assert_eq(ns->lbaf[ns->lbaf_in_use].data_bytes, lbs);
		cr_assert_eq(ns->lbaf[ns->lbaf_in_use].meta_bytes, 0);
		cr_assert(ns->io_poll, "the guest loads nvme with poll_queues=%u", poll_queues);
		cr_assert_gt(ns->size_bytes, 0);
		/* The same facts the backend finds at open. */
		cr_assert_eq(urt_dev_open(ng, NULL, &dev), 0, "%s", urt_last_error());
		cr_assert_eq(ctrl->vwc, urt_dev_info(dev)->volatile_cache);
		cr_assert_eq(ns->size_bytes, urt_dev_info(dev)->size_bytes);
		urt_dev_close(dev);
	}
	text = print_to_string(list);
	cr_log_info("urt_nvme_list in the guest:\n%s", text);
	free(text);
	urt_nvme_list_free(list);
}

Test(nvme_list, unprivileged_process_is_told)
{
	const char *ng = env_or_skip("URT_NVME_NS512");
	int status;
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct urt_nvme_list *list;
		const struct urt_nvme_ns_entry *ns;

		if (setgid(65534) || setuid(65534))
			_exit(10);
		if (urt_nvme_list(&list))
			_exit(11);
		ns = find_ns(list, ng);
		if (!ns)
			_exit(12);
		if (ns->access != URT_NVME_ACCESS_NONE || ns->open_err != -EACCES)
			_exit(13);
		if (ns->identified || list->ctrl[ns->ctrl].coalesce_known)
			_exit(14);
		_exit(0);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "child status %d (10 setuid, 11 list failed, 12 %s missing, 13 access not NONE/EACCES, "
		  "14 identified without access)", WEXITSTATUS(status), ng);
}

Test(nvme_list, urbench_list_prints_them)
{
	const char *ng = env_or_skip("URT_NVME_NS4K");
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	int status;

	cr_assert_not_null(f);
	status = ub_list(f, stderr);
	fclose(f);
	cr_assert_eq(status, 0);
	assert_has(text, ng);
	assert_has(text, "read-write");
	assert_has(text, "LBA formats:");
	assert_has(text, "poll queues ");
	assert_has(text, "interrupt coalescing (08h): threshold ");
	free(text);
}
