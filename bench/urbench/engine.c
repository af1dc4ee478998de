/*
 * ub_run_mode: one mode on one target, from setup to status.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "urbench/engine.h"
#include "urt/error.h"

/*
 * Errors that mean "change the command line or the setup", exit status 2.
 * ENOSYS is io_uring missing or blocked (a seccomp filter may answer it as
 * well as EPERM): the kernel cannot do the mode, the run did not fail.
 */
static bool err_is_usage(int err)
{
	switch (-err) {
	case EINVAL: case EOPNOTSUPP: case ENOENT: case EACCES: case EPERM: case ENODEV: case ENXIO:
	case ENOTTY: case ENOMEM: case ENFILE: case EMFILE: case EROFS: case EBUSY: case ENOSPC: case ENOSYS:
		return true;
	default:
		return false;
	}
}

int ub_run_mode(const struct ub_opts *o, const struct ub_mode *m, const struct ub_target *t, struct ub_result *r)
{
	struct ub_run run;
	unsigned nworkers = m->engine == UB_ENGINE_PSYNC ? o->qd * o->ncpus : o->ncpus;
	int ret, err;

	memset(r, 0, sizeof(*r));
	r->mode = *m;
	ub_mode_name(m, r->mode_name, sizeof(r->mode_name));
	r->ncores = o->ncpus;
	for (unsigned i = 0; i < o->ncpus; i++) {
		r->core[i].cpu = o->cpus[i];
		urt_hist_init(&r->core[i].hist);
	}
	urt_hist_init(&r->total.hist);
	r->total.cpu = -1;
	ret = ub_run_init(&run, o, m, t, r, nworkers);
	if (ret) {
		r->err = ret;
		r->status = UB_EXIT_FAIL;
		snprintf(r->errmsg, sizeof(r->errmsg), "out of memory for %u workers", nworkers);
		return r->status;
	}
	ret = m->engine == UB_ENGINE_PSYNC ? ub_engine_psync(&run) : ub_engine_uring(&run);
	err = atomic_load(&run.err);
	if (err) {
		r->err = err;
		snprintf(r->errmsg, sizeof(r->errmsg), "%s", run.errmsg);
	} else if (ret) {
		r->err = ret;
		snprintf(r->errmsg, sizeof(r->errmsg), "%s: %s", r->mode_name, urt_strerror(ret));
	}
	if (r->err)
		r->status = err_is_usage(r->err) ? UB_EXIT_USAGE : UB_EXIT_FAIL;
	else if (r->errors || r->verify_errors)
		r->status = UB_EXIT_FAIL;
	ub_run_exit(&run);
	return r->status;
}
