/*
 * The per-thread last error message behind urt_last_error().  Thread-local,
 * so cores and outside threads never see each other's messages.
 */
#include <stdarg.h>
#include <stdio.h>

#include "base/error.h"

static __thread char last_error[512];

void urt_set_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
}

void urt_clear_error(void)
{
	last_error[0] = '\0';
}

URT_API const char *urt_last_error(void)
{
	return last_error;
}
