/*
 * The device scheduler's public API and lifetime: options, a device's
 * scheduler (struct sched_dev) and its per-core queues.
 *
 * The queue's states and the op's path through it are in queue.c's design
 * notes (and the SCHED_SHUT_* bits, sched.h); this file only makes, finds
 * and frees queues.
 *
 * A queue is made (sched_queue_get) the first time a core submits an op to
 * the device, whether the op is then queued or passes at once
 * (sched_pass_bare and sched_enqueue both need it: one allocation per core
 * and device, never per op), and lives until the
 * device's scheduler is replaced or the device is closed, when no I/O is
 * in flight (so no queue is on any core's busy list, queue.c Q2).  The
 * queue pointers are in the device (urt_dev.sched_q, by core index), not
 * in struct sched_dev, so that the per-op paths reach a queue in one load
 * from the device they already hold.
 */
#include <errno.h>
#include <linux/capability.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/core.h"

URT_API void urt_sched_opts_default(struct urt_sched_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->policy = URT_SCHED_FIFO;
	o->merge = true;
	o->depth_max = 32;
	o->expire_ns[URT_PRIO_NORMAL] = 50000000;
	o->expire_ns[URT_PRIO_URGENT] = 10000000;
	o->expire_ns[URT_PRIO_BACKGROUND] = 200000000;
	o->background_share = 8;
	o->merge_ops_max = SCHED_MERGE_OPS_MAX;
}

static const char *const policy_names[] = {
	[URT_SCHED_NONE] = "none", [URT_SCHED_FIFO] = "fifo", [URT_SCHED_SSTF] = "sstf",
	[URT_SCHED_SCAN] = "scan", [URT_SCHED_CSCAN] = "cscan",
};

URT_API int urt_sched_policy_parse(const char *name, enum urt_sched_policy *out)
{
	for (unsigned i = 0; i < sizeof(policy_names) / sizeof(policy_names[0]); i++) {
		if (name && strcmp(name, policy_names[i]) == 0) {
			*out = (enum urt_sched_policy)i;
			return 0;
		}
	}
	urt_set_error("unknown scheduler policy \"%s\" (none, fifo, sstf, scan, cscan)", name ? name : "");
	return -EINVAL;
}

URT_API const char *urt_sched_policy_name(enum urt_sched_policy policy)
{
	return (unsigned)policy < sizeof(policy_names) / sizeof(policy_names[0]) ? policy_names[policy] : "unknown";
}

/* Whether this thread may use the real-time I/O class (CAP_SYS_NICE, as ioprio_check_cap asks). */
static bool sched_rt_allowed(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d))
		return false;
	return d[CAP_SYS_NICE / 32].effective & (1u << (CAP_SYS_NICE % 32));
}

struct sched_queue sched_queue_absent;

static void queue_free(struct sched_queue *q)
{
	if (!q || q == &sched_queue_absent)
		return;
	URT_ASSERT(q->queued == 0 && !q->busy && "a device's scheduler goes away with no I/O queued");
	for (unsigned k = 0; k < SCHED_CLASSES; k++)
		free(q->cls[k].sorted);
	free(q->merges);
	free(q);
}

void sched_dev_free(struct urt_dev *dev)
{
	struct sched_dev *sd = dev->sched;

	if (!sd)
		return;
	dev->sched = NULL;
	for (unsigned i = 0; i < SCHED_CORES_MAX; i++) {
		queue_free(dev->sched_q[i]);
		dev->sched_q[i] = NULL;
	}
	free(sd);
}

static int sched_opts_check(const struct urt_dev *dev, const struct urt_sched_opts *o)
{
	if ((unsigned)o->policy > URT_SCHED_CSCAN) {
		urt_set_error("%s: unknown scheduler policy %u", dev->path, (unsigned)o->policy);
		return -EINVAL;
	}
	if (o->depth_max == 0) {
		urt_set_error("%s: scheduler depth_max must be at least 1", dev->path);
		return -EINVAL;
	}
	if (o->merge_ops_max > SCHED_MERGE_OPS_MAX) {
		urt_set_error("%s: merge_ops_max %u is above %u", dev->path, o->merge_ops_max, SCHED_MERGE_OPS_MAX);
		return -EINVAL;
	}
	return 0;
}

URT_API int urt_dev_sched_set(struct urt_dev *dev, const struct urt_sched_opts *o)
{
	struct sched_dev *sd;
	bool rt_ok;
	int ret;

	if (!o || o->policy == URT_SCHED_NONE) {
		sched_dev_free(dev);
		return 0;
	}
	ret = sched_opts_check(dev, o);
	if (ret)
		return ret;
	sd = calloc(1, sizeof(*sd));
	if (!sd)
		return -ENOMEM;
	sd->o = *o;
	if (!sd->o.merge_ops_max)
		sd->o.merge_ops_max = SCHED_MERGE_OPS_MAX;
	sd->merge_bytes_max = o->merge_bytes_max && o->merge_bytes_max < dev->info.max_io_bytes
				      ? o->merge_bytes_max : dev->info.max_io_bytes;
	rt_ok = sched_rt_allowed();
	for (unsigned k = 0; k < SCHED_CLASSES; k++)
		sd->ioprio[k] = sched_ioprio_of(k, rt_ok);
	sched_dev_free(dev);
	for (unsigned i = 0; i < SCHED_CORES_MAX; i++)
		dev->sched_q[i] = &sched_queue_absent;
	dev->sched = sd;
	return 0;
}

URT_API int urt_dev_sched_stats(const struct urt_dev *dev, struct urt_sched_stats *out)
{
	const struct sched_dev *sd = dev->sched;

	memset(out, 0, sizeof(*out));
	if (!sd)
		return -ENOENT;
	for (unsigned i = 0; i < SCHED_CORES_MAX; i++) {
		const struct sched_queue *q = dev->sched_q[i];
		uint64_t fast;

		if (q == &sched_queue_absent)
			continue;
		/* A fast-path op is counted in taken alone (sched_pass, sched_pass_quick). */
		fast = sched_fast_count(q);
		out->queued += q->st.queued + fast;
		out->dispatched += q->st.dispatched + fast;
		out->commands += q->st.commands + fast;
		out->merged += q->st.merged;
		out->merge_retries += q->st.merge_retries;
		out->expired += q->st.expired;
		out->timed_out += q->st.timed_out;
		out->background_turns += q->st.background_turns;
		out->seek_bytes += q->st.seek_bytes;
		out->fast += fast;
		if (q->st.wait_ns_max > out->wait_ns_max)
			out->wait_ns_max = q->st.wait_ns_max;
	}
	return 0;
}

/* Make core c's queue for dev: sorted arrays as large as the core's request pool. */
static struct sched_queue *queue_new(struct urt_core *c, struct urt_dev *dev)
{
	struct sched_dev *sd = dev->sched;
	struct sched_queue *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	q->sd = sd;
	q->dev = dev;
	q->merge = sd->o.merge;
	q->depth_max = sd->o.depth_max;
	q->limit = sd->o.depth_max;
	memcpy(q->ioprio, sd->ioprio, sizeof(q->ioprio));
	q->dir = 1;
	q->cap = c->req_max;
	for (unsigned k = 0; k < SCHED_CLASSES; k++) {
		struct sched_class *cl = &q->cls[k];

		TAILQ_INIT(&cl->fifo);
		cl->depth_max = sd->o.class_depth_max[k] ? sd->o.class_depth_max[k] : sd->o.depth_max;
		if (cl->depth_max < q->depth_max)
			q->class_depth = true;
		cl->expire_ns = sd->o.expire_ns[k];
		if (sd->o.policy != URT_SCHED_FIFO) {
			cl->sorted = calloc(q->cap, sizeof(*cl->sorted));
			if (!cl->sorted)
				goto err_free;
		}
	}
	/* Shut until a random stretch is seen (the credit starts at 0), and for good by an offset policy or a class bound. */
	sched_shut_set(q, (sd->o.policy != URT_SCHED_FIFO ? SCHED_SHUT_POLICY : 0) |
				  (q->class_depth ? SCHED_SHUT_CLASS : 0) | (q->merge ? SCHED_SHUT_CREDIT : 0));
	q->merges = aligned_alloc(_Alignof(struct sched_merge), SCHED_MERGES_MAX * sizeof(*q->merges));
	if (!q->merges)
		goto err_free;
	memset(q->merges, 0, SCHED_MERGES_MAX * sizeof(*q->merges));
	for (unsigned i = 0; i < SCHED_MERGES_MAX; i++) {
		q->merges[i].q = q;
		q->merges[i].next = q->merge_free;
		q->merge_free = &q->merges[i];
	}
	return q;
err_free:
	queue_free(q);
	return NULL;
}

struct sched_queue *sched_queue_get(struct urt_core *c, struct urt_dev *dev)
{
	struct sched_queue *q;

	URT_ASSERT(dev->sched && c->index < SCHED_CORES_MAX);
	q = dev->sched_q[c->index];
	if (urt_unlikely(q == &sched_queue_absent)) {
		q = queue_new(c, dev);
		if (!q)
			abort();	/* A few KiB once per core and device: out of memory at startup. */
		dev->sched_q[c->index] = q;
	}
	URT_ASSERT(q->cap >= c->req_max);
	return q;
}
