/*
 * urt_version(); CMake checks that URT_VERSION_STRING matches the project
 * version, so the two cannot drift.
 */
#include "urt/version.h"

_Static_assert(sizeof(URT_VERSION_STRING) > 1, "version string");

URT_API const char *urt_version(void)
{
	return URT_VERSION_STRING;
}
