/*
 * The target of a run: checked, created and filled when it is a missing
 * regular file, and described for the engines (struct ub_target, run.h).
 */
#ifndef URBENCH_TARGET_H
#define URBENCH_TARGET_H

#include <stdbool.h>
#include <stddef.h>

#include "urbench/opts.h"
#include "urbench/run.h"

/*
 * Check o->target against every mode that will run on it and fill *t.
 * A missing regular file is created with o->size_bytes and filled with the
 * data signature (job.h); *created tells the caller to remove it later if
 * it wants to.  Returns 0 or a negative errno with one line in err that
 * says what to change.
 */
int ub_target_open(const struct ub_opts *o, const struct ub_mode *modes, unsigned nmodes, struct ub_target *t,
		   bool *created, char *err, size_t errlen);

/* Whether path names an NVMe generic char device (/dev/ngXnY). */
bool ub_path_is_nvme_generic(const char *path);

#endif /* URBENCH_TARGET_H */
