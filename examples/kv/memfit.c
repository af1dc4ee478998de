/*
 * urkv's memory preflight: whether the cores asked for fit in the memory
 * this process may still use, before the runtime pins their buffer
 * regions (urkv_cores_fit_memory, called by main.c).  Without it a
 * --cores far above what memory holds ends in the kernel's OOM killer,
 * with no message.  Reads /proc/meminfo and the memory cgroup (v2 or v1);
 * no state.
 */
#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "urkv.h"

/*
 * A core's memory besides its buffer region: rings, the fiber stacks in
 * use, the allocator's arena, tables.  Measured: each core added to
 * `--cores 1 --cache 16M` added 2.1 MiB of resident memory that is not
 * the pinned region (1, 3 and 8 cores).
 */
#define URKV_CORE_OWN_BYTES (2ull << 20)

/* CPUs this process may run on (its affinity mask); 0 if unknown. */
static unsigned cpus_allowed(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return 0;
	return (unsigned)CPU_COUNT(&set);
}

/* The first number in file path (a /proc or cgroup file); false if none ("max"). */
static bool file_number(const char *path, const char *key, uint64_t *out)
{
	char line[256];
	bool found = false;
	FILE *f = fopen(path, "r");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned long long v;

		if (key && strncmp(line, key, strlen(key)) != 0)
			continue;
		found = sscanf(line + (key ? strlen(key) : 0), " %llu", &v) == 1;
		if (found)
			*out = v;
		if (!key)
			break;
	}
	fclose(f);
	return found;
}

/*
 * What the memory cgroup of this process still allows, in bytes, or
 * UINT64_MAX when it sets no limit (or none can be read).  cgroup v2:
 * memory.max - memory.current; v1: memory.limit_in_bytes - usage.  The
 * process's own cgroup first, then the mount's root (a cgroup namespace
 * shows the process's cgroup there).
 */
static uint64_t cgroup_room(void)
{
	char line[512], path[1024];
	char v2[512] = "", v1[512] = "";
	uint64_t limit, usage;
	FILE *f = fopen("/proc/self/cgroup", "r");

	while (f && fgets(line, sizeof(line), f)) {
		char *ctl = strchr(line, ':'), *rel = ctl ? strchr(ctl + 1, ':') : NULL;

		if (!rel)
			continue;
		rel[strcspn(rel, "\n")] = 0;
		if (strncmp(line, "0::", 3) == 0)
			snprintf(v2, sizeof(v2), "%s", rel + 1);
		else if (strncmp(ctl + 1, "memory:", 7) == 0 || strstr(ctl + 1, ",memory:"))
			snprintf(v1, sizeof(v1), "%s", rel + 1);
	}
	if (f)
		fclose(f);
	for (int root = 0; root < 2; root++) {
		const char *rel2 = root ? "" : v2, *rel1 = root ? "" : v1;

		snprintf(path, sizeof(path), "/sys/fs/cgroup%s/memory.max", rel2);
		if (file_number(path, NULL, &limit)) {
			snprintf(path, sizeof(path), "/sys/fs/cgroup%s/memory.current", rel2);
			if (file_number(path, NULL, &usage))
				return usage < limit ? limit - usage : 0;
		}
		snprintf(path, sizeof(path), "/sys/fs/cgroup/memory%s/memory.limit_in_bytes", rel1);
		if (file_number(path, NULL, &limit)) {
			snprintf(path, sizeof(path), "/sys/fs/cgroup/memory%s/memory.usage_in_bytes", rel1);
			if (file_number(path, NULL, &usage))
				return usage < limit ? limit - usage : 0;
		}
	}
	return UINT64_MAX;
}

/*
 * Memory this process can still make resident, in bytes: MemAvailable
 * plus the free reserved huge pages (a buffer region takes those first,
 * and MemAvailable leaves them out), or less when the memory cgroup
 * allows less.  0 when /proc/meminfo cannot be read.
 */
static uint64_t mem_available(void)
{
	uint64_t avail_kb, huge_free = 0, huge_kb = 0, room = cgroup_room();

	if (!file_number("/proc/meminfo", "MemAvailable:", &avail_kb))
		return 0;
	file_number("/proc/meminfo", "HugePages_Free:", &huge_free);
	file_number("/proc/meminfo", "Hugepagesize:", &huge_kb);
	avail_kb += huge_free * huge_kb;
	return avail_kb * 1024 < room ? avail_kb * 1024 : room;
}

/*
 * Refuses a start whose cores would not fit in memory.  Each core's
 * buffer region is registered with io_uring, so all of it is pinned at
 * start: with more cores than memory, the kernel's OOM killer would end
 * urkv with no message (1000 cores of --cache 16M take 35 GiB).  More
 * cores than CPUs is allowed (docs/kv.md: a store opens on more cores
 * than it has shards; test_urkv_reopen), so memory is the bound.
 * 0, or -ENOMEM after the message.
 */
int urkv_cores_fit_memory(const struct urkv_opts *o, const struct urt_kv_opts *ko,
			    const struct urt_rt_opts *ro, unsigned ncores)
{
	struct urt_kv_opts least = *ko;
	uint64_t avail = mem_available(), per_core, need, floor;
	unsigned cpus = cpus_allowed();
	char cpus_text[64] = "";

	if (avail == 0)
		return 0;	/* No /proc/meminfo: nothing to go by. */
	per_core = ro->buf_region_bytes + URKV_CORE_OWN_BYTES;
	need = per_core * ncores;
	if (need <= avail)
		return 0;
	least.cache_bytes = 0;	/* The region of the least cache: the floor --cache cannot lower. */
	floor = ((uint64_t)urt_kv_buf_region_bytes(&least, ncores) + URKV_CORE_OWN_BYTES) * ncores;
	if (cpus)
		snprintf(cpus_text, sizeof(cpus_text), " (this process may run on %u CPU%s)", cpus,
			 cpus == 1 ? "" : "s");
	fprintf(stderr, "urkv: %u cores need about %llu MiB of memory (%llu MiB each: a %llu MiB buffer "
			"region, which io_uring pins, and about %llu MiB more), but %llu MiB is available: "
			"%s%s%s\n",
		ncores, (unsigned long long)(need >> 20), (unsigned long long)(per_core >> 20),
		(unsigned long long)(ro->buf_region_bytes >> 20),
		(unsigned long long)(URKV_CORE_OWN_BYTES >> 20), (unsigned long long)(avail >> 20),
		o->cores ? "give fewer --cores" : "give --cores a smaller count than the default (one per CPU)",
		floor <= avail ? " or a smaller --cache" : "", cpus_text);
	return -ENOMEM;
}

