/*
 * The uring engine: urbench through the urt runtime.
 *
 * Design notes
 * ------------
 * One urt reactor per selected CPU.  Each core owns qd slots; a slot is a
 * caller-owned struct urt_io plus its buffer.  A posted start function
 * issues every slot, and each completion callback records the op and
 * issues the slot again, so qd ops stay in flight per core with no fiber
 * and no allocation per op.  Callbacks only queue SQEs: the reactor hands
 * everything queued in one loop iteration to the kernel in one
 * io_uring_enter, which is the batch size reported (SQEs per enter).
 *
 * Modifiers map to the runtime:
 *   +fixedbufs  buffers from urt_buf_get (registered: READ_FIXED/WRITE_FIXED);
 *               without it, aligned_alloc memory (plain READ/WRITE).
 *   +regfiles   urt_dev_register: the fd sits in each core's fixed-file table.
 *   +sqpoll     URT_POLL_SQPOLL (the SQ thread is pinned next to its reactor).
 *   +iopoll     URT_POLL_IOPOLL: the runtime refuses devices without poll
 *               queues with -EOPNOTSUPP, which ends the run with status 2.
 *   +hybrid     URT_POLL_HYBRID.
 *
 * The sim:SIZE target is the runtime's simulated SSD (urt/sim.h), opened
 * with its defaults (no added latency) and starting all zeroes.
 *
 * A core is finished when it may issue no more and its last op completed;
 * it then reads its own runtime counters and gives its buffers back, on its
 * own thread as urt_buf_put requires.  The main thread closes the device
 * (which unregisters it on every core) before stopping the runtime.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "urbench/engine.h"
#include "urbench/job.h"
#include "urt/buf.h"
#include "urt/dev.h"
#include "urt/error.h"
#include "urt/io.h"
#include "urt/rt.h"
#include "urt/sim.h"

struct uring_core;

struct uring_slot {
	struct urt_io io;	/* The op; owned here for the run. */
	struct uring_core *uc;	/* Its core. */
	void *buf;		/* bs bytes, or NULL for nop. */
	uint64_t t0;		/* Issue time. */
	bool write;		/* The op is a write. */
	bool sync;		/* The op is a --fsync-every flush. */
};

struct uring_core {
	struct ub_run *run;		/* The run. */
	struct ub_worker *w;		/* Its counters. */
	struct urt_rt *rt;		/* The runtime. */
	struct urt_dev *dev;		/* Target, NULL for nop. */
	struct uring_slot *slots;	/* qd slots. */
	unsigned index;			/* Core index. */
	unsigned inflight;		/* Slots with an op in flight. */
	bool finished;			/* Counted in run->done. */
	uint64_t enters0, sqes0;	/* Runtime counters when MEASURE began. */
	uint64_t enters1, sqes1;	/* Runtime counters when the core finished. */
	struct urt_stats st;		/* Scratch for urt_rt_stats (holds a 15 KiB histogram). */
};

static void slot_done(struct urt_io *io, int res, void *arg);

static void core_snapshot(struct uring_core *uc, uint64_t *enters, uint64_t *sqes)
{
	if (urt_rt_stats(uc->rt, uc->index, &uc->st) == 0) {
		*enters = uc->st.enters;
		*sqes = uc->st.sqes_submitted;
	}
}

static void core_finish(struct uring_core *uc)
{
	if (uc->finished)
		return;
	uc->finished = true;
	core_snapshot(uc, &uc->enters1, &uc->sqes1);
	for (unsigned i = 0; uc->slots && i < uc->run->o->qd; i++) {
		if (uc->run->mode.mods & UB_MOD_FIXEDBUFS)
			urt_buf_put(uc->slots[i].buf);
		else
			free(uc->slots[i].buf);
		uc->slots[i].buf = NULL;
	}
	ub_worker_finish(uc->run, uc->w);
}

static const char *why(int ret)
{
	const char *m = urt_last_error();

	return m && *m ? m : urt_strerror(ret);
}

/*
 * Issue slot s.  now is the current time: a completion callback passes the
 * time it read for the finished op, which saves one clock read per op.
 */
static bool slot_issue(struct uring_slot *s, uint64_t now)
{
	struct uring_core *uc = s->uc;
	struct ub_run *run = uc->run;
	struct ub_worker *w = uc->w;
	const struct ub_opts *o = run->o;
	uint64_t off = 0;
	int ret;

	if (!ub_worker_may_issue(run, w))
		return false;
	s->sync = false;
	s->write = false;
	if (o->fsync_every && w->writes_since_sync >= o->fsync_every) {
		w->writes_since_sync = 0;
		if (w->measuring && w->issued)
			w->issued--;	/* A flush is not one of the --ops. */
		urt_io_prep_flush(&s->io, uc->dev);
		s->sync = true;
	} else if (run->t->kind == UB_TARGET_NOP) {
		urt_io_prep_nop(&s->io);
	} else {
		s->write = ub_gen_next(&w->gen, &off);
		if (s->write) {
			if (o->verify)
				ub_pattern_fill(s->buf, o->bs, off);
			urt_io_prep_write(&s->io, uc->dev, s->buf, o->bs, off);
			if (o->fua)
				s->io.flags |= URT_IO_FUA;
		} else {
			urt_io_prep_read(&s->io, uc->dev, s->buf, o->bs, off);
		}
	}
	s->t0 = now;
	ret = urt_io_submit(&s->io, slot_done, s);
	if (ret) {
		ub_run_fail(run, ret, "%s: %s", run->r->mode_name, why(ret));
		return false;
	}
	if (s->write)
		w->writes_since_sync++;
	uc->inflight++;
	return true;
}

static void slot_done(struct urt_io *io, int res, void *arg)
{
	struct uring_slot *s = arg;
	struct uring_core *uc = s->uc;
	struct ub_run *run = uc->run;
	struct ub_worker *w = uc->w;
	const struct ub_opts *o = run->o;
	uint64_t now = urt_clock_ns();
	bool was_measuring;

	uc->inflight--;
	if (res < 0) {
		w->errors++;
		ub_run_fail(run, res, "%s %s at offset %llu: %s", run->r->mode_name,
			    s->sync ? "flush" : s->write ? "write" : "read", (unsigned long long)io->off,
			    urt_strerror(res));
	} else if (s->sync) {
		w->syncs++;
	} else if (run->t->kind != UB_TARGET_NOP && (uint32_t)res != o->bs) {
		w->errors++;
		ub_run_fail(run, -EIO, "%s at offset %llu moved %d of %u bytes (is the target smaller than it "
			    "claims?)", s->write ? "write" : "read", (unsigned long long)io->off, res, o->bs);
	} else {
		if (!s->write && o->verify) {
			int64_t bad = ub_pattern_check(s->buf, o->bs, io->off);

			if (bad >= 0) {
				w->verify_errors++;
				ub_run_fail(run, -EILSEQ, "verification failed: data read at offset %llu is not what "
					    "was written there (first bad byte %llu)", (unsigned long long)io->off,
					    (unsigned long long)(io->off + (uint64_t)bad));
			}
		}
		was_measuring = w->measuring;
		ub_worker_done_op(run, w, now, now - s->t0, run->t->kind == UB_TARGET_NOP ? 0 : o->bs, s->write);
		if (!was_measuring && w->measuring)
			core_snapshot(uc, &uc->enters0, &uc->sqes0);
	}
	if (slot_issue(s, now))
		return;
	if (uc->inflight == 0)
		core_finish(uc);
}

static void core_start(void *arg)
{
	struct uring_core *uc = arg;
	struct ub_run *run = uc->run;
	const struct ub_opts *o = run->o;
	uint32_t align = run->t->mem_align > 4096 ? run->t->mem_align : 4096;

	uc->slots = calloc(o->qd, sizeof(*uc->slots));
	if (!uc->slots) {
		ub_run_fail(run, -ENOMEM, "out of memory for %u slots", o->qd);
		goto err_finish;
	}
	for (unsigned i = 0; i < o->qd; i++) {
		struct uring_slot *s = &uc->slots[i];

		s->uc = uc;
		if (run->t->kind == UB_TARGET_NOP)
			continue;
		if (run->mode.mods & UB_MOD_FIXEDBUFS)
			s->buf = urt_buf_get(o->bs);
		else
			s->buf = aligned_alloc(align, (o->bs + align - 1) / align * align);
		if (!s->buf) {
			ub_run_fail(run, -ENOMEM, "no buffer for slot %u: %s", i,
				    run->mode.mods & UB_MOD_FIXEDBUFS ? urt_last_error() : "out of memory");
			goto err_finish;
		}
		ub_pattern_fill(s->buf, o->bs & ~7u, 0);
	}
	if (uc->w->measuring)
		core_snapshot(uc, &uc->enters0, &uc->sqes0);
	for (unsigned i = 0; i < o->qd; i++)
		if (!slot_issue(&uc->slots[i], urt_clock_ns()))
			break;
	if (uc->inflight == 0)
		core_finish(uc);
	return;

err_finish:
	core_finish(uc);
}

static size_t pow2_at_least(size_t v)
{
	size_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

/*
 * +regfiles and +fixedbufs must not degrade silently: the runtime counts
 * how each device SQE named its file and memory, and a run in which the
 * registered file went by its plain fd, or no op used a fixed buffer,
 * fails (status 1) instead of reporting figures of another mode.  Both
 * engines on a device: uring (READ/WRITE_FIXED) and passthru (URING_CMD
 * with IORING_URING_CMD_FIXED), which the runtime counts alike.  st is
 * scratch for the counters.
 */
static void fixed_paths_check(struct ub_run *run, struct urt_rt *rt, struct urt_stats *st)
{
	uint64_t fixed_file = 0, plain_fd = 0, misses = 0, fixed_buf = 0;

	if (run->t->kind != UB_TARGET_PATH || run->r->total.ops == 0 ||
	    (run->mode.engine != UB_ENGINE_URING && run->mode.engine != UB_ENGINE_PASSTHRU))
		return;
	for (unsigned c = 0; c < run->o->ncpus; c++) {
		if (urt_rt_stats(rt, c, st))
			return;
		fixed_file += st->sqes_fixed_file;
		plain_fd += st->sqes_plain_fd;
		misses += st->fixed_file_misses;
		fixed_buf += st->sqes_fixed_buf;
	}
	if ((run->mode.mods & UB_MOD_REGFILES) && (misses || fixed_file == 0))
		ub_run_fail(run, -EIO, "%s: +regfiles, but %llu of %llu device SQEs named the plain fd", run->r->mode_name,
			    (unsigned long long)plain_fd, (unsigned long long)(plain_fd + fixed_file));
	else if ((run->mode.mods & UB_MOD_FIXEDBUFS) && fixed_buf == 0)
		ub_run_fail(run, -EIO, "%s: +fixedbufs, but no op used a registered buffer (%s)", run->r->mode_name,
			    run->mode.engine == UB_ENGINE_PASSTHRU ? "IORING_URING_CMD_FIXED" : "READ_FIXED/WRITE_FIXED");
}

/* Errors of setup that mean "change the command line", with the runtime's reason. */
static int setup_fail(struct ub_run *run, int ret, const char *what)
{
	ub_run_fail(run, ret, "%s: %s: %s", run->r->mode_name, what, why(ret));
	return ret;
}

int ub_engine_uring(struct ub_run *run)
{
	const struct ub_opts *o = run->o;
	const unsigned mods = run->mode.mods;
	struct urt_rt_opts ro;
	struct urt_dev_opts dopts;
	struct ub_target target;
	struct uring_core *cores;
	struct urt_rt *rt = NULL;
	struct urt_dev *dev = NULL;
	unsigned posted = 0;
	char hint[128] = "";	/* ro.memlock_hint: outlives the runtime, stopped below. */
	int ret;

	cores = calloc(o->ncpus, sizeof(*cores));
	if (!cores)
		return -ENOMEM;
	urt_rt_opts_default(&ro);
	ro.cpus = o->cpus;
	ro.ncpus = o->ncpus;
	ro.mode = mods & UB_MOD_SQPOLL ? URT_POLL_SQPOLL
		: mods & UB_MOD_IOPOLL ? URT_POLL_IOPOLL
		: mods & UB_MOD_HYBRID ? URT_POLL_HYBRID
		: URT_POLL_INTERRUPT;
	ro.req_max = o->qd + 64 > ro.req_max ? o->qd + 64 : ro.req_max;
	ro.sq_entries = (unsigned)pow2_at_least(o->qd + 8 > ro.sq_entries ? o->qd + 8 : ro.sq_entries);
	if (mods & UB_MOD_FIXEDBUFS) {
		/* Every slot's buffer, rounded to its size class, plus room to spare. */
		size_t need = pow2_at_least(o->bs < 4096 ? 4096 : o->bs) * (o->qd + 1) * 2;

		if (need > ro.buf_region_bytes)
			ro.buf_region_bytes = need > (1u << 30) ? (1u << 30) : need;
	} else {
		ro.buf_region_bytes = 64u << 10;	/* The smallest region: nothing is carved from it. */
	}
	/* Too little RLIMIT_MEMLOCK: after the ulimit advice, what urbench's command line can lower, if anything. */
	if (o->ncpus > 1)
		snprintf(hint, sizeof(hint), "use fewer --cores");
	if ((mods & UB_MOD_FIXEDBUFS) && ro.buf_region_bytes > (64u << 10))
		snprintf(hint + strlen(hint), sizeof(hint) - strlen(hint), "%s a smaller --qd or --bs (+fixedbufs "
			 "registers their buffers)", hint[0] ? " or" : "use");
	ro.memlock_hint = hint;
	ret = urt_rt_start(&ro, &rt);
	if (ret) {
		setup_fail(run, ret, "cannot start the runtime");
		goto err_free;
	}
	if (run->t->kind == UB_TARGET_PATH) {
		urt_dev_opts_default(&dopts);
		dopts.direct = o->direct;
		dopts.readonly = !ub_rw_writes(o->rw);
		if (run->mode.engine == UB_ENGINE_PASSTHRU)
			dopts.backend = "passthru";
		ret = urt_dev_open(o->target, &dopts, &dev);
		if (ret) {
			setup_fail(run, ret, "cannot open the target");
			goto err_stop;
		}
		if (run->t->is_chardev) {
			/* Only now is the namespace's capacity known: bound the region by it. */
			uint64_t cap = urt_dev_info(dev)->size_bytes;

			target = *run->t;
			if (cap < target.span_bytes)
				target.span_bytes = cap - cap % o->bs;
			run->t = &target;
			if (target.span_bytes < o->bs) {
				ret = -EINVAL;
				ub_run_fail(run, ret, "%s holds %llu bytes, less than one --bs %u block", o->target,
					    (unsigned long long)cap, o->bs);
				goto err_close;
			}
		}
		if (o->direct && o->bs % urt_dev_info(dev)->off_align) {
			ret = -EINVAL;
			ub_run_fail(run, ret, "--bs %u is not a multiple of %u, the O_DIRECT block size of %s: use "
				    "--bs %u or a multiple", o->bs, urt_dev_info(dev)->off_align, o->target,
				    urt_dev_info(dev)->off_align);
			goto err_close;
		}
		if (mods & UB_MOD_REGFILES) {
			ret = urt_dev_register(rt, dev);
			if (ret) {
				setup_fail(run, ret, "cannot register the target as a fixed file");
				goto err_close;
			}
		}
	} else if (run->t->kind == UB_TARGET_SIM) {
		struct urt_sim_opts so;

		/* The in-memory device, all zeroes at first, with the options of its path (sim.h). */
		urt_sim_opts_parse(o->target, &so);	/* Checked by ub_opts_parse. */
		so.size_bytes = o->size_bytes;
		so.block_bytes = o->bs % 4096 == 0 && o->size_bytes % 4096 == 0 ? 4096 : 512;
		ret = urt_sim_open(&so, &dev);
		if (ret) {
			setup_fail(run, ret, "cannot open the simulated device");
			goto err_stop;
		}
		if (o->bs % urt_dev_info(dev)->block_bytes) {
			ret = -EINVAL;
			ub_run_fail(run, ret, "--bs %u is not a multiple of %u, the block size of %s: use a multiple",
				    o->bs, urt_dev_info(dev)->block_bytes, o->target);
			goto err_close;
		}
	}
	if (dev && o->sched_policy) {
		struct urt_sched_opts sc;

		urt_sched_opts_default(&sc);
		sc.policy = (enum urt_sched_policy)o->sched_policy;
		if (o->sched_depth)
			sc.depth_max = o->sched_depth;
		ret = urt_dev_sched_set(dev, &sc);
		if (ret) {
			setup_fail(run, ret, "cannot set up the I/O scheduler");
			goto err_close;
		}
	}
	snprintf(run->r->backend, sizeof(run->r->backend), "%s", dev ? urt_dev_info(dev)->backend : "nop");
	for (unsigned i = 0; i < o->ncpus; i++) {
		cores[i] = (struct uring_core){ .run = run, .w = &run->workers[i], .rt = rt, .dev = dev, .index = i };
		ub_worker_init(run, i, (int)i);
	}
	for (posted = 0; posted < o->ncpus; posted++) {
		ret = urt_core_post(rt, posted, core_start, &cores[posted]);
		if (ret) {
			ub_run_fail(run, ret, "cannot post to core %u: %s", posted, strerror(-ret));
			atomic_fetch_add(&run->done, o->ncpus - posted);
			break;
		}
	}
	ub_run_drive(run);
	ub_run_collect(run);
	for (unsigned i = 0; i < o->ncpus; i++) {
		run->r->core[i].enters = cores[i].enters1 - cores[i].enters0;
		run->r->core[i].sqes = cores[i].sqes1 - cores[i].sqes0;
	}
	ub_result_sum(run->r);
	if (urt_rt_stats(rt, 0, &cores[0].st) == 0) {
		run->r->bufs_registered = cores[0].st.bufs_registered && (mods & UB_MOD_FIXEDBUFS);
		run->r->ring_flags = cores[0].st.ring_flags;
	}
	fixed_paths_check(run, rt, &cores[0].st);
	/* Recovery from timeouts (dev/health.c): the state the run left the device in. */
	if (dev)
		run->r->has_health = urt_dev_health(dev, &run->r->health) == 0;
	ret = 0;
err_close:
	urt_dev_close(dev);
err_stop:
	urt_rt_stop(rt);
err_free:
	if (ret && posted == 0)
		atomic_store(&run->done, run->nworkers);
	/* Every core finished and the runtime is gone: no op can touch a slot any more. */
	for (unsigned i = 0; i < o->ncpus; i++)
		free(cores[i].slots);
	free(cores);
	return ret;
}
