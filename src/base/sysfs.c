#include "base/sysfs.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

int urt_sysfs_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	bool ok;

	if (!f)
		return -errno;
	ok = fgets(buf, (int)len, f) != NULL;
	fclose(f);
	if (!ok)
		return -EIO;
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}
