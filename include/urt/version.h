/**
 * @file
 * urt version.  The macros give the version compiled against; urt_version()
 * the version of the library loaded at run time.
 */
#ifndef URT_VERSION_H
#define URT_VERSION_H

#include "urt/common.h"

URT_BEGIN_DECLS

#define URT_VERSION_MAJOR 0		/**< Incompatible API or format changes (after 1.0). */
#define URT_VERSION_MINOR 1		/**< New features. */
#define URT_VERSION_PATCH 0		/**< Fixes. */
#define URT_VERSION_STRING "0.1.0"	/**< "major.minor.patch". */
/** One number that compares in order: major * 10000 + minor * 100 + patch. */
#define URT_VERSION_NUMBER (URT_VERSION_MAJOR * 10000 + URT_VERSION_MINOR * 100 + URT_VERSION_PATCH)

/** The loaded library's version as "major.minor.patch"; never NULL, never fails. */
URT_API const char *urt_version(void);

URT_END_DECLS

#endif /* URT_VERSION_H */
