/*
 * The failure path of URT_ASSERT (assert.h), out of line so that each
 * assertion costs one predicted branch at its call site.
 */
#include <stdio.h>
#include <stdlib.h>

#include "base/assert.h"

void urt_assert_fail(const char *expr, const char *file, int line, const char *func)
{
	fprintf(stderr, "%s:%d: %s: urt assertion failed: %s\n", file, line, func, expr);
	fflush(stderr);
	abort();
}
