/*
 * The environment the NVMe test guest (run-vm.sh) exports to the tests that
 * run inside it: URT_NVME_* variables naming each namespace's devices, LBA
 * size and nsid, and the fault LBAs and throttle.  Convention: a missing
 * variable is a skip outside the guest (URT_NVME_VM unset) and a failure
 * inside it, where the harness promised the device.
 *
 * Shared by tests/nvme-vm/smoke.c and tests/passthru/test_passthru.c; both
 * are built on the host by CMake and only their binaries go into the guest.
 */
#ifndef URT_TESTS_NVME_VM_GUEST_ENV_H
#define URT_TESTS_NVME_VM_GUEST_ENV_H

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static inline const char *env_or_skip(const char *name)
{
	const char *v = getenv(name);

	if (v && *v)
		return v;
	if (getenv("URT_NVME_VM"))
		cr_assert_fail("%s is not set inside the NVMe test guest", name);
	cr_skip_test("%s is not set: run this inside tests/nvme-vm/run-vm.sh", name);
	return NULL;
}

static inline uint64_t env_u64(const char *name)
{
	const char *v = env_or_skip(name);
	char *end;
	unsigned long long x = strtoull(v, &end, 0);

	cr_assert(*end == '\0', "%s=%s is not a number", name, v);
	return x;
}

/*
 * What the guest exported about the namespace of a role (512, 4K, FAULT,
 * SLOW): its generic character device /dev/ngXnY, the block device of the
 * same namespace, its logical block size and its nsid.
 */
static inline void guest_ns_env(const char *role, const char **ng, const char **blk, uint32_t *lbs,
				uint32_t *nsid)
{
	char name[64];

	snprintf(name, sizeof(name), "URT_NVME_NS%s", role);
	*ng = env_or_skip(name);
	snprintf(name, sizeof(name), "URT_NVME_BLK%s", role);
	*blk = env_or_skip(name);
	snprintf(name, sizeof(name), "URT_NVME_LBS%s", role);
	*lbs = (uint32_t)env_u64(name);
	snprintf(name, sizeof(name), "URT_NVME_NSID%s", role);
	*nsid = (uint32_t)env_u64(name);
}

#endif /* URT_TESTS_NVME_VM_GUEST_ENV_H */
