/*
 * urt_strerror (include/urt/error.h, src/base/strerror.c): one function
 * explains 0, -errno, every URT_E_* code and the NVMe status band.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <string.h>

#include "urt/error.h"

Test(error, errno_values_use_the_libc_text)
{
	cr_assert_str_eq(urt_strerror(0), "Success");
	cr_assert_str_eq(urt_strerror(-EIO), "Input/output error");
	cr_assert_str_eq(urt_strerror(-ENOSPC), "No space left on device");
	cr_assert_str_eq(urt_strerror(-EINVAL), "Invalid argument");
}

Test(error, every_engine_code_has_its_own_message)
{
	const char *seen[URT_E_BASE - URT_E_LAST];

	for (int code = URT_E_BASE; code > URT_E_LAST; code--) {
		const char *msg = urt_strerror(code);

		cr_assert_not_null(msg);
		cr_assert(strncmp(msg, "urt: ", 5) == 0, "code %d: '%s'", code, msg);
		seen[URT_E_BASE - code] = msg;
		for (int j = 0; j < URT_E_BASE - code; j++)
			cr_assert_str_neq(seen[j], msg, "codes %d and %d share a message", code,
					  URT_E_BASE - j);
	}
	cr_assert(strstr(urt_strerror(URT_E_CORRUPT), "corrupt"));
	cr_assert(strstr(urt_strerror(URT_E_MISDIRECTED), "misdirected"));
}

Test(error, bands_do_not_overlap)
{
	cr_assert_lt(URT_E_BASE, -4095, "the engine band lies below every errno");
	cr_assert_lt(URT_E_NVME_BASE, URT_E_BAND_END);
	cr_assert_gt(URT_E_LAST, URT_E_BAND_END);
	cr_assert(!urt_err_is_nvme(URT_E_CORRUPT));
	cr_assert(!urt_err_is_nvme(-EIO));
}

Test(error, nvme_status_round_trips_and_is_explained)
{
	/* SCT 0 (generic), SC 0x02 (Invalid Field in Command), do-not-retry set. */
	uint16_t status = (1u << 14) | (0u << 8) | 0x02;
	int err = URT_E_NVME(status);

	cr_assert(urt_err_is_nvme(err));
	cr_assert_eq(urt_err_nvme_status(err), status);
	cr_assert(urt_err_is_nvme(URT_E_NVME(0xffff)));
	cr_assert(urt_err_is_nvme(URT_E_NVME(0)));
	cr_assert_eq(urt_err_nvme_status(URT_E_NVME(0x7fff)), 0x7fff);

	const char *msg = urt_strerror(err);

	cr_assert(strstr(msg, "SCT 0") && strstr(msg, "SC 0x02") && strstr(msg, "do not retry"),
		  "'%s'", msg);
	msg = urt_strerror(URT_E_NVME((2u << 8) | 0x81));
	cr_assert(strstr(msg, "SCT 2") && strstr(msg, "SC 0x81") && !strstr(msg, "retry"), "'%s'", msg);
}

Test(error, unknown_codes_say_so)
{
	cr_assert(strstr(urt_strerror(-5000), "Unknown error -5000"));
	cr_assert(strstr(urt_strerror(URT_E_LAST), "Unknown error"));
	cr_assert(strstr(urt_strerror(7), "Unknown error 7"));
	cr_assert(strstr(urt_strerror(URT_E_NVME_END - 1), "Unknown error"));
}
