/*
 * Why io_uring is unavailable to this process, in words a user can act on.
 *
 * io_uring_setup fails before any ring exists for three reasons seen in
 * practice, and the bare errno ("Operation not permitted") names none:
 *
 *   kernel.io_uring_disabled  (Linux 6.6+) 2: off for every process;
 *                             1: only CAP_SYS_ADMIN and members of
 *                             kernel.io_uring_group may create rings.
 *   a seccomp filter          container runtimes' default profiles block
 *                             io_uring_setup (Docker 25+ answers EPERM);
 *                             /proc/self/status shows "Seccomp: 2".
 *   the kernel itself         built without CONFIG_IO_URING: ENOSYS.
 *
 * The checks only read /proc, so they are cheap and safe to run from any
 * thread; the answer is a guess ranked by what the files say, and says so.
 */
#include <errno.h>
#include <linux/capability.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/error.h"
#include "runtime/probe.h"

/* The first integer of a /proc file, or -1 when it is absent or unreadable. */
static long proc_long(const char *path)
{
	FILE *f = fopen(path, "re");
	long v = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/* The value of a "Name:\tvalue" line of /proc/self/status, or -1. */
static long status_field(const char *name)
{
	FILE *f = fopen("/proc/self/status", "re");
	size_t n = strlen(name);
	char line[256];
	long v = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, name, n) == 0 && line[n] == ':') {
			v = strtol(line + n + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

static bool has_cap_sys_admin(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2];

	if (syscall(SYS_capget, &hdr, data))
		return false;
	return data[CAP_SYS_ADMIN / 32].effective & (1u << (CAP_SYS_ADMIN % 32));
}

/* Whether the process is in group gid (real, effective or supplementary). */
static bool in_group(long gid)
{
	gid_t groups[256];
	int n;

	if (gid < 0)
		return false;
	if (getgid() == (gid_t)gid || getegid() == (gid_t)gid)
		return true;
	n = getgroups(sizeof(groups) / sizeof(groups[0]), groups);
	for (int i = 0; i < n; i++)
		if (groups[i] == (gid_t)gid)
			return true;
	return false;
}

int uring_blocked_explain(int err, char *buf, size_t len)
{
	long disabled = proc_long("/proc/sys/kernel/io_uring_disabled");
	long group = proc_long("/proc/sys/kernel/io_uring_group");
	long seccomp = status_field("Seccomp");
	long filters = status_field("Seccomp_filters");
	int n;

	n = snprintf(buf, len, "io_uring is unavailable to this process (io_uring_setup: %s). ", strerror(-err));
	if (n < 0 || (size_t)n >= len)
		return err;
	buf += n;
	len -= (size_t)n;
	if (disabled == 2) {
		snprintf(buf, len, "Cause: kernel.io_uring_disabled is 2, which turns io_uring off for every process%s. "
			 "Fix: sysctl -w kernel.io_uring_disabled=0 as root (and in /etc/sysctl.d/ to keep it)",
			 seccomp == 2 ? " (a seccomp filter is installed too, Seccomp: 2)" : "");
	} else if (disabled == 1 && !in_group(group) && !has_cap_sys_admin()) {
		snprintf(buf, len, "Cause: kernel.io_uring_disabled is 1, which allows io_uring only to CAP_SYS_ADMIN "
			 "and to group %ld (kernel.io_uring_group). Fix: add the user to that group, or sysctl -w "
			 "kernel.io_uring_disabled=0 as root", group);
	} else if (seccomp == 2) {
		snprintf(buf, len, "Cause: a seccomp filter (Seccomp: 2, %ld filter%s in /proc/self/status), as the "
			 "default profiles of container runtimes install (Docker 25+ blocks io_uring); "
			 "kernel.io_uring_disabled is %ld, so not the sysctl. Fix: run under a seccomp profile that "
			 "allows io_uring_setup, io_uring_enter and io_uring_register (docker run --security-opt "
			 "seccomp=PROFILE.json)", filters, filters == 1 ? "" : "s", disabled);
	} else if (err == -ENOSYS) {
		snprintf(buf, len, "Cause: this kernel has no io_uring (built without CONFIG_IO_URING); "
			 "kernel.io_uring_disabled is %ld and Seccomp is %ld. Fix: a kernel with io_uring "
			 "(Linux 5.19 or later)", disabled, seccomp);
	} else {
		snprintf(buf, len, "Cause unknown: kernel.io_uring_disabled is %ld and no seccomp filter is installed "
			 "(Seccomp: %ld); a security module (SELinux, AppArmor) may deny it. Fix: check the audit "
			 "log (dmesg | grep -i denied) and allow io_uring for this program", disabled, seccomp);
	}
	return err;
}

void uring_blocked_set_error(int err)
{
	char why[512];

	uring_blocked_explain(err, why, sizeof(why));
	urt_set_error("%s", why);
}
