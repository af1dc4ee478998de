/*
 * urt_strerror: one explanation function for every urt return value.
 *
 * The three bands of include/urt/error.h are handled here in turn: -errno
 * goes to glibc's strerrordesc_np (a static string, unlike strerror),
 * URT_E_* codes come from the table below, and NVMe statuses are decoded by
 * the passthrough backend.
 *
 * Extension point for the NVMe band: the passthrough backend defines
 *
 *     const char *nvme_status_name(uint16_t status);
 *
 * returning a static string such as "Invalid Field in Command" for the
 * status field (SCT and SC, retry bits ignored), or NULL when it does not
 * know the status.  The reference below is weak, so liburt links and
 * urt_strerror still prints the raw SCT/SC numbers when no backend provides
 * the table.
 */
#include <stdio.h>
#include <string.h>

#include "urt/error.h"

extern const char *nvme_status_name(uint16_t status) __attribute__((weak, visibility("hidden")));

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

/* Formatted messages (NVMe statuses, unknown codes) live here, one per thread. */
static __thread char msg_buf[96];

static const char *nvme_msg(int err)
{
	uint16_t status = urt_err_nvme_status(err);
	unsigned int sct = (status >> 8) & 0x7;
	unsigned int sc = status & 0xff;
	const char *name = nvme_status_name ? nvme_status_name(status) : NULL;
	bool dnr = status & (1u << 14);

	if (name)
		snprintf(msg_buf, sizeof(msg_buf), "NVMe: %s (SCT %u, SC 0x%02x%s)", name, sct, sc,
			 dnr ? ", do not retry" : "");
	else
		snprintf(msg_buf, sizeof(msg_buf), "NVMe status SCT %u, SC 0x%02x%s", sct, sc,
			 dnr ? ", do not retry" : "");
	return msg_buf;
}

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
	} else if (urt_err_is_nvme(err)) {
		return nvme_msg(err);
	}
	snprintf(msg_buf, sizeof(msg_buf), "Unknown error %d", err);
	return msg_buf;
}
