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
	cr_assert_gt(URT_E_LAST, URT_E_BAND_END);
}

Test(error, unknown_codes_say_so)
{
	cr_assert(strstr(urt_strerror(-5000), "Unknown error -5000"));
	cr_assert(strstr(urt_strerror(URT_E_LAST), "Unknown error"));
	cr_assert(strstr(urt_strerror(7), "Unknown error 7"));
	/* The old NVMe band (-(20000 + status)) is gone: a device error is an errno now. */
	cr_assert(strstr(urt_strerror(-20641), "Unknown error -20641"));
}
