/*
 * urt_nvme_list_print: the discovery list for people (`urbench --list`).
 *
 * One block per controller, then one per namespace:
 *
 *   nvme0  pcie  QEMU NVMe Ctrl  serial urtvm0001  firmware 9.2.3
 *     MDTS 512 KiB, volatile write cache yes, ONCS 0x015e, CRDT 0/0/0 ms
 *     poll queues 2 (nvme.poll_queues)
 *     interrupt coalescing (08h): threshold 1 completion, time off
 *     nsid 1  /dev/ng0n1 read-write  /dev/nvme0n1  128 MiB in 512 B blocks
 *       LBA formats: [0] 512 B  [1] 512+8 B  ... (* = in use)
 *       FUA native (kernel queue/fua 1), IOPOLL yes, kernel max 512 KiB
 *
 * Anything not known says why ("not known: Permission denied").
 */
#include <errno.h>
#include <stdio.h>

#include "urt/error.h"
#include "urt/nvme.h"

/* "512 KiB", "128 MiB", "3 GiB" (exact units only, else bytes). */
static const char *bytes_str(uint64_t b, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	unsigned u = 0;

	while (u < 4 && b >= 1024 && b % 1024 == 0) {
		b /= 1024;
		u++;
	}
	snprintf(buf, len, "%llu %s", (unsigned long long)b, units[u]);
	return buf;
}

static const char *access_str(enum urt_nvme_access a)
{
	return a == URT_NVME_ACCESS_RW ? "read-write" : a == URT_NVME_ACCESS_RO ? "read-only" : "no access";
}

static void print_ctrl(const struct urt_nvme_ctrl_entry *c, FILE *f)
{
	char b[32];

	fprintf(f, "%s  %s  %s  serial %s  firmware %s\n", c->name, c->transport[0] ? c->transport : "?",
		c->model[0] ? c->model : "?", c->serial[0] ? c->serial : "?", c->firmware[0] ? c->firmware : "?");
	if (c->identified)
		fprintf(f, "  MDTS %s, volatile write cache %s, ONCS 0x%04x (Write Zeroes %s, DSM %s), "
			"CRDT %u/%u/%u ms\n",
			c->mdts_bytes ? bytes_str(c->mdts_bytes, b, sizeof(b)) : "no limit", c->vwc ? "yes" : "no",
			c->oncs, (c->oncs & (1u << 3)) ? "yes" : "no", (c->oncs & (1u << 2)) ? "yes" : "no",
			c->crdt[0] * 100u, c->crdt[1] * 100u, c->crdt[2] * 100u);
	else
		fprintf(f, "  Identify Controller not known: %s\n", urt_strerror(c->identify_err));
	if (c->poll_queues >= 0)
		fprintf(f, "  poll queues %d (nvme.poll_queues)%s\n", c->poll_queues,
			c->poll_queues ? "" : ": IOPOLL needs modprobe nvme poll_queues=N");
	else
		fprintf(f, "  poll queues not known (no nvme module parameter for transport %s)\n",
			c->transport[0] ? c->transport : "?");
	if (c->coalesce_known) {
		fprintf(f, "  interrupt coalescing (08h): threshold %u completion%s, time ",
			c->coalesce.threshold + 1u, c->coalesce.threshold ? "s" : "");
		if (c->coalesce.time_100us)
			fprintf(f, "%u us\n", c->coalesce.time_100us * 100u);
		else
			fprintf(f, "off\n");
	} else {
		fprintf(f, "  interrupt coalescing (08h) not known: %s%s\n", urt_strerror(c->coalesce_err),
			c->coalesce_err == -EACCES || c->coalesce_err == -EPERM ? " (Get Features needs root)" : "");
	}
}

static void print_ns(const struct urt_nvme_ns_entry *n, FILE *f)
{
	char b1[32], b2[32];

	fprintf(f, "  nsid %u  %s %s", n->nsid, n->generic_path[0] ? n->generic_path : "(no generic device)",
		access_str(n->access));
	if (n->access != URT_NVME_ACCESS_RW && n->open_err)
		fprintf(f, " (%s)", urt_strerror(n->open_err));
	fprintf(f, "  %s  %s in %s blocks\n", n->block_path[0] ? n->block_path : "(no block device)",
		bytes_str(n->size_bytes, b1, sizeof(b1)), bytes_str(n->block_bytes, b2, sizeof(b2)));
	if (n->identified) {
		fprintf(f, "    LBA formats:");
		for (unsigned i = 0; i < n->nlbaf; i++) {
			fprintf(f, " [%u%s] %u", i, i == n->lbaf_in_use ? "*" : "", n->lbaf[i].data_bytes);
			if (n->lbaf[i].meta_bytes)
				fprintf(f, "+%u", n->lbaf[i].meta_bytes);
			fprintf(f, " B");
		}
		fprintf(f, "  (* in use)\n");
	} else {
		fprintf(f, "    Identify Namespace not known: %s\n", urt_strerror(n->identify_err));
	}
	fprintf(f, "    FUA native (kernel queue/fua %d), IOPOLL %s, kernel max %s\n", n->fua ? 1 : 0,
		n->io_poll ? "yes" : "no (no poll queues)",
		n->kernel_max_bytes ? bytes_str(n->kernel_max_bytes, b1, sizeof(b1)) : "not known");
}

URT_API int urt_nvme_list_print(const struct urt_nvme_list *list, FILE *f)
{
	if (!list->nctrl)
		fprintf(f, "no NVMe controllers found (/sys/class/nvme is empty or missing)\n");
	for (unsigned i = 0; i < list->nctrl; i++) {
		unsigned shown = 0;

		print_ctrl(&list->ctrl[i], f);
		for (unsigned j = 0; j < list->nns; j++)
			if (list->ns[j].ctrl == i) {
				print_ns(&list->ns[j], f);
				shown++;
			}
		if (!shown)
			fprintf(f, "  no namespaces with a block device\n");
	}
	return ferror(f) ? -EIO : 0;
}
