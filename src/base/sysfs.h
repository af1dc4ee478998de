/*
 * One line of a sysfs (or procfs) attribute file, as the kernel exports it:
 * "live\n", "write back\n", "512\n".  Used by the file backend (queue/
 * attributes of a block device), NVMe discovery and the NVMe reset's wait
 * for the controller state.  Part of src/base: it uses nothing else of urt.
 */
#ifndef URT_BASE_SYSFS_H
#define URT_BASE_SYSFS_H

#include <stddef.h>

/*
 * Reads the first line of path into buf (at most len - 1 bytes), without
 * its newline.  0, -errno when the file cannot be opened, -EIO when it is
 * empty or unreadable.
 */
int urt_sysfs_line(const char *path, char *buf, size_t len);

#endif
