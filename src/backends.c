/*
 * The device backends compiled into liburt, in the order urt_dev_open
 * tries them by path.
 *
 * This file sits above the folders it names: the runtime (src/runtime/dev)
 * declares the table and uses it; the backends define their entries; only
 * this file includes both, so no folder includes one above it.  Adding a
 * backend is one file in its folder and one line here.
 */
#include "passthru/passthru.h"
#include "runtime/dev/backend.h"

const struct urt_backend *const urt_backends[] = {
	&urt_backend_passthru,	/* /dev/ngXnY */
	&urt_backend_sim,	/* sim:... */
	&urt_backend_psync,	/* psync:... */
	&urt_backend_file,	/* anything else: a file or block device */
};

const unsigned urt_backends_count = sizeof(urt_backends) / sizeof(urt_backends[0]);
