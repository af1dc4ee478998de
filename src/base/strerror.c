/*
 * urt_strerror: one explanation function for every urt return value.
 *
 * The two bands of include/urt/error.h are handled here in turn: -errno
 * goes to glibc's strerrordesc_np (a static string, unlike strerror), and
 * URT_E_* codes come from the table below.  NVMe statuses are no band of
 * their own: a failed passthrough command is an errno, and its status is
 * read from the op (urt_io_nvme_status, urt_nvme_status_str).
 */
#include <stdio.h>
#include <string.h>

#include "urt/error.h"

/* Messages of the engine band, indexed by URT_E_BASE - code. */
static const char *const engine_msgs[] = {
	[URT_E_BASE - URT_E_BASE] = "urt: unspecified engine error",
	[URT_E_BASE - URT_E_CORRUPT] = "urt: on-disk data is corrupt (checksum or consistency check failed)",
	[URT_E_BASE - URT_E_NOTFOUND] = "urt: not found",
	[URT_E_BASE - URT_E_FULL] = "urt: store is full",
	[URT_E_BASE - URT_E_VERSION] = "urt: on-disk format is newer than this build supports",
	[URT_E_BASE - URT_E_BADFORMAT] = "urt: not a urt store or a field is out of range",
	[URT_E_BASE - URT_E_STICKY] = "urt: an earlier I/O error left the object in an error state",
	[URT_E_BASE - URT_E_TOOBIG] = "urt: item too big to ever fit",
	[URT_E_BASE - URT_E_MISDIRECTED] = "urt: page holds another page's id (misdirected write)",
	[URT_E_BASE - URT_E_FOREIGN] = "urt: data belongs to another store",
};
_Static_assert(sizeof(engine_msgs) / sizeof(engine_msgs[0]) == URT_E_BASE - URT_E_LAST,
	       "every URT_E_* code needs a message");

/* Linux never returns an errno above this (include/linux/err.h MAX_ERRNO). */
#define ERRNO_MAX 4095

/* Formatted messages (unknown codes) live here, one per thread. */
static __thread char msg_buf[48];

const char *urt_strerror(int err)
{
	if (err == 0)
		return "Success";
	if (err < 0 && err >= -ERRNO_MAX) {
		const char *s = strerrordesc_np(-err);

		if (s)
			return s;
	} else if (err <= URT_E_BASE && err > URT_E_LAST) {
		return engine_msgs[URT_E_BASE - err];
	}
	snprintf(msg_buf, sizeof(msg_buf), "Unknown error %d", err);
	return msg_buf;
}
