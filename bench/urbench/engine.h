/*
 * urbench engines.  An engine starts its workers, calls ub_run_drive(),
 * stops them, and fills run->r through ub_run_collect() plus its own
 * figures (syscalls, batch).  ub_run_mode() is the one entry point.
 */
#ifndef URBENCH_ENGINE_H
#define URBENCH_ENGINE_H

#include "urbench/opts.h"
#include "urbench/result.h"
#include "urbench/run.h"

/* Blocking pread/pwrite: qd threads per core, each pinned to its core's CPU. */
int ub_engine_psync(struct ub_run *run);

/* urt reactors: qd ops in flight per core, resubmitted from the completion callback. */
int ub_engine_uring(struct ub_run *run);

/*
 * Run mode m on target t (already opened by ub_target_open) and fill *r.
 * Returns r->status (enum ub_exit); r->errmsg holds one line when it is not
 * UB_EXIT_OK.
 */
int ub_run_mode(const struct ub_opts *o, const struct ub_mode *m, const struct ub_target *t, struct ub_result *r);

#endif /* URBENCH_ENGINE_H */
