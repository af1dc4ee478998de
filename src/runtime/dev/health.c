/*
 * Recovery of a device from command timeouts: the cascade that follows a
 * command the device (or its driver) gave up on.  One state machine per
 * device, shared by every backend; only the reset itself is the backend's
 * (struct urt_backend.reset: NVME_IOCTL_RESET for passthru, a model for
 * sim).  docs/passthru.md, "Recovery from timeouts", is the operator's view.
 *
 * Design notes
 * ------------
 * A timeout is a command result of -ETIMEDOUT from the backend: the NVMe
 * driver aborted a passthrough command whose timeout (the device's
 * nvme_timeout_ms, or the op's deadline with deadline_abort) expired, the
 * block layer timed out a request, or the sim device modelled either.  The
 * runtime's own deadline firing is the caller's business and is not one.
 *
 * States (health.state, enum urt_dev_state):
 *
 *   HEALTHY --timeout--> DEGRADED --N rounds in the window--> RESETTING
 *      ^                  |  ^                                  |   |
 *      +--window quiet----+  +--reset worked (controller live)--+   |
 *                                                                   |
 *   DEGRADED --a command issued after that reset times out          |
 *              (the reset did not cure it)--> RESETTING             |
 *   RESETTING --M resets in a row failed or did not cure--> OFFLINE <+
 *
 *   any state --a command, or a reset, fails with ENODEV (the device is gone)--> OFFLINE
 *
 *   from        to         function
 *   HEALTHY     DEGRADED   health_on_timeout (a new round; or any timeout when
 *                          timeouts_max is 0: no escalation policy, the state
 *                          only shows that timeouts happen)
 *   DEGRADED    RESETTING  health_on_timeout -> health_reset_start (N rounds within
 *                          window_ns, or a timeout that judges the last reset failed)
 *   RESETTING   DEGRADED   health_reset_main (the backend's reset returned 0: the
 *                          controller is live again)
 *   RESETTING   RESETTING  health_reset_main (a reset failed; fewer than M in a row)
 *   RESETTING   DEGRADED   health_reset_start (no thread could be started: a failed reset,
 *                          fewer than M in a row)
 *   RESETTING,  OFFLINE    health_go_offline (from health_reset_main: M failures in a
 *   DEGRADED               row, or a reset that failed with ENODEV, the controller gone;
 *                          from health_reset_start: the failed thread start is the Mth;
 *                          from health_on_timeout: a failed verdict that is the Mth)
 *   DEGRADED    HEALTHY    health_quiet (from health_on_success, health_on_timeout and
 *                          urt_dev_health: window_ns without a timeout, no verdict due)
 *   HEALTHY,    OFFLINE    health_on_gone (a command of the device failed with ENODEV:
 *   DEGRADED,              the driver removed the controller or the namespace, as Linux
 *   RESETTING              does after a reset that failed, or the drive was pulled;
 *                          or a block device read (0 bytes) or write (ENOSPC) below the
 *                          size it had at open, with its capacity now ending there: the
 *                          kernel sets a removed disk's capacity to 0, so its reads look
 *                          like an end of file (req_dev_gone); there is nothing to reset)
 *   OFFLINE     -          terminal until the device is closed and reopened; a reset
 *                          thread that returns after it changes nothing (H5)
 *
 * Rounds.  One stall usually ends many commands at once (a controller
 * reset by the driver cancels every command in flight), so counting each
 * timeout towards N would escalate on the first stall.  A timeout counts
 * as a new round only when its command was issued at or after epoch_ns,
 * the time of the previous round (or of the last reset); the others are
 * counted in st.timeouts only.  "N rounds" therefore means: N times, the
 * device timed out a command that was sent after it had already timed
 * out, that is, retries keep timing out.
 *
 * Verdict of a reset.  A reset that returned 0 is judged by what follows:
 * a command issued after reset_done_ns that times out means it did not
 * cure the device (reset_failures++, and another reset, or OFFLINE at the
 * Mth in a row); a success of such a command, or window_ns without a
 * timeout, means it did (failed_in_row = 0).
 *
 * Invariants
 *   H1. state changes only under lock; readers on the I/O path load it
 *       without the lock (acquire), so an op may see a state one
 *       transition old.  That is harmless: a retry parked behind RESETTING
 *       looks again every HEALTH_PARK_NS; OFFLINE is terminal.
 *   H2. At most one reset thread runs per device (resetting); it is the
 *       only caller of the backend's reset, and health_exit waits for it,
 *       so the device outlives it.
 *   H3. OFFLINE implies dev->error == -ENODEV (dev_set_sticky), so every
 *       write and flush is refused like after a failed flush, and
 *       urt_dev_error reports it.
 *   H4. The reset runs on its own thread, never on a reactor: it blocks
 *       for up to reset_wait_ms, and the reactors keep serving the other
 *       devices (and park this device's retries) meanwhile.
 *   H5. OFFLINE is terminal: health_reset_main looks at the state before
 *       and after every reset and stops without a transition when the
 *       device went offline meanwhile (health_on_gone), so no reset runs
 *       on a device already gone, and one that returns 0 then cannot bring
 *       it back to DEGRADED.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "runtime/core.h"

URT_API void urt_dev_health_opts_default(struct urt_dev_health_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->timeouts_max = 3;
	o->window_ns = 30ull * 1000000000ull;
	o->resets_max = 2;
	o->reset_wait_ms = 30000;
	o->op_timeouts_max = 8;
}

URT_API const char *urt_dev_state_name(enum urt_dev_state state)
{
	switch (state) {
	case URT_DEV_HEALTHY:
		return "healthy";
	case URT_DEV_DEGRADED:
		return "degraded";
	case URT_DEV_RESETTING:
		return "resetting";
	case URT_DEV_OFFLINE:
		return "offline";
	}
	return "unknown";
}

static void health_set_opts(struct dev_health *h, const struct urt_dev_health_opts *o)
{
	if (o)
		h->o = *o;
	else
		urt_dev_health_opts_default(&h->o);
	/* A request counts its retries in eight bits. */
	if (h->o.op_timeouts_max > 255)
		h->o.op_timeouts_max = 255;
	if (h->o.resets_max == 0)
		h->o.resets_max = 1;
}

void health_init(struct urt_dev *dev, const struct urt_dev_health_opts *o)
{
	struct dev_health *h = &dev->health;

	memset(h, 0, sizeof(*h));
	atomic_init(&h->state, URT_DEV_HEALTHY);
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->idle, NULL);
	health_set_opts(h, o);
}

void health_exit(struct urt_dev *dev)
{
	struct dev_health *h = &dev->health;

	/* H2: the reset thread uses the device until it ends. */
	pthread_mutex_lock(&h->lock);
	while (h->resetting)
		pthread_cond_wait(&h->idle, &h->lock);
	pthread_mutex_unlock(&h->lock);
	pthread_cond_destroy(&h->idle);
	pthread_mutex_destroy(&h->lock);
}

static void health_set_state(struct dev_health *h, enum urt_dev_state to)
{
	atomic_store_explicit(&h->state, (int)to, memory_order_release);
}

/* Transition to OFFLINE (locked).  H3: the sticky error goes first. */
static void health_go_offline(struct urt_dev *dev)
{
	struct dev_health *h = &dev->health;

	if (health_state(h) == URT_DEV_OFFLINE)
		return;
	dev_set_sticky(dev, -ENODEV);
	health_set_state(h, URT_DEV_OFFLINE);
	/* The one event an operator must see even if no caller prints its error. */
	if (h->st.gone)
		fprintf(stderr,
			"urt: %s: device offline: it is gone (its driver removed the controller or the "
			"namespace, or the drive was pulled: a command failed with ENODEV, or the device now "
			"ends before the size it had at open; %llu timeouts and %llu resets before): every "
			"op now fails with ENODEV until it is reopened\n",
			dev->path, (unsigned long long)h->st.timeouts, (unsigned long long)h->st.resets);
	else
		fprintf(stderr,
			"urt: %s: device offline after %u controller resets in a row that failed or did "
			"not end the timeouts (%llu timeouts, last reset error %s): every op now fails with "
			"ENODEV until it is reopened\n",
			dev->path, h->failed_in_row, (unsigned long long)h->st.timeouts,
			h->st.last_reset_err ? urt_strerror(h->st.last_reset_err)
					     : "none: the resets worked, the timeouts went on");
}

/* DEGRADED -> HEALTHY, or a pending verdict judged good, after a quiet window (locked). */
static void health_quiet(struct dev_health *h, uint64_t now_ns)
{
	if (h->verdict_pending && now_ns - h->reset_done_ns >= h->o.window_ns) {
		h->verdict_pending = false;
		h->failed_in_row = 0;
	}
	if (health_state(h) == URT_DEV_DEGRADED && !h->verdict_pending &&
	    now_ns - h->last_timeout_ns >= h->o.window_ns) {
		h->window_rounds = 0;
		health_set_state(h, URT_DEV_HEALTHY);
	}
}

/* The reset thread (H2, H4): reset until it works or M in a row have failed. */
static void *health_reset_main(void *arg)
{
	struct urt_dev *dev = arg;
	struct dev_health *h = &dev->health;
	int ret;

	for (;;) {
		pthread_mutex_lock(&h->lock);
		if (health_state(h) == URT_DEV_OFFLINE)
			break;	/* H5: gone between two resets (health_on_gone): no further reset. */
		pthread_mutex_unlock(&h->lock);
		ret = dev->be->reset ? dev->be->reset(dev, h->o.reset_wait_ms) : -EOPNOTSUPP;
		pthread_mutex_lock(&h->lock);
		if (health_state(h) == URT_DEV_OFFLINE) {
			/* H5: gone meanwhile (health_on_gone); nothing to bring back. */
			if (ret)
				h->st.last_reset_err = ret;
			break;
		}
		if (ret == 0) {
			uint64_t now = urt_clock_ns();

			h->reset_done_ns = now;
			h->epoch_ns = now;
			h->last_timeout_ns = now;
			h->verdict_pending = true;
			health_set_state(h, URT_DEV_DEGRADED);
			break;
		}
		h->st.reset_failures++;
		h->st.last_reset_err = ret;
		h->failed_in_row++;
		if (ret == -ENODEV) {
			/* The controller is gone (removed, dead): no reset can bring it back. */
			h->st.gone = true;
			health_go_offline(dev);
			break;
		}
		if (h->failed_in_row >= h->o.resets_max) {
			health_go_offline(dev);
			break;
		}
		h->st.resets++;
		pthread_mutex_unlock(&h->lock);
	}
	h->resetting = false;
	pthread_cond_broadcast(&h->idle);
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

/* Transition to RESETTING (locked): start the reset thread. */
static void health_reset_start(struct urt_dev *dev, uint64_t now_ns)
{
	struct dev_health *h = &dev->health;
	pthread_attr_t attr;
	pthread_t t;
	int ret;

	URT_ASSERT(!h->resetting);
	health_set_state(h, URT_DEV_RESETTING);
	h->epoch_ns = now_ns;
	h->window_rounds = 0;
	h->st.resets++;
	h->resetting = true;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ret = pthread_create(&t, &attr, health_reset_main, dev);
	pthread_attr_destroy(&attr);
	if (ret) {
		/* No thread, no reset: it counts as failed. */
		h->resetting = false;
		h->st.reset_failures++;
		h->st.last_reset_err = -ret;
		h->failed_in_row++;
		if (h->failed_in_row >= h->o.resets_max)
			health_go_offline(dev);
		else
			health_set_state(h, URT_DEV_DEGRADED);
	}
}

int health_on_timeout(struct urt_dev *dev, uint64_t issue_ns, uint64_t now_ns)
{
	struct dev_health *h = &dev->health;
	int state;

	pthread_mutex_lock(&h->lock);
	h->st.timeouts++;
	health_quiet(h, now_ns);
	state = health_state(h);
	if (state == URT_DEV_OFFLINE || state == URT_DEV_RESETTING || h->o.timeouts_max == 0) {
		/* Offline; or a command the reset cancels, retried once it is over; or no policy. */
		if (state == URT_DEV_HEALTHY)
			health_set_state(h, URT_DEV_DEGRADED);
		h->last_timeout_ns = now_ns;
		goto out;
	}
	h->last_timeout_ns = now_ns;
	if (h->verdict_pending && issue_ns >= h->reset_done_ns) {
		/* Sent after the reset and timed out anyway: the reset did not cure it. */
		h->verdict_pending = false;
		h->st.rounds++;
		h->st.reset_failures++;
		h->failed_in_row++;
		if (h->failed_in_row >= h->o.resets_max)
			health_go_offline(dev);
		else
			health_reset_start(dev, now_ns);
		goto out;
	}
	if (issue_ns < h->epoch_ns)
		goto out;	/* Part of a round already counted. */
	h->st.rounds++;
	h->epoch_ns = now_ns;
	if (h->window_rounds == 0 || now_ns - h->window_start_ns >= h->o.window_ns) {
		h->window_start_ns = now_ns;
		h->window_rounds = 0;
	}
	h->window_rounds++;
	if (state == URT_DEV_HEALTHY)
		health_set_state(h, URT_DEV_DEGRADED);
	if (h->window_rounds >= h->o.timeouts_max)
		health_reset_start(dev, now_ns);
out:
	state = health_state(h);
	pthread_mutex_unlock(&h->lock);
	return state == URT_DEV_OFFLINE ? -ENODEV : 0;
}

void health_on_gone(struct urt_dev *dev)
{
	struct dev_health *h = &dev->health;

	pthread_mutex_lock(&h->lock);
	if (health_state(h) != URT_DEV_OFFLINE) {
		h->st.gone = true;
		health_go_offline(dev);
	}
	pthread_mutex_unlock(&h->lock);
}

void health_count_retry(struct urt_dev *dev)
{
	struct dev_health *h = &dev->health;

	pthread_mutex_lock(&h->lock);
	h->st.retries++;
	pthread_mutex_unlock(&h->lock);
}

void health_on_success(struct urt_dev *dev, uint64_t issue_ns, uint64_t now_ns)
{
	struct dev_health *h = &dev->health;

	pthread_mutex_lock(&h->lock);
	if (h->verdict_pending && issue_ns >= h->reset_done_ns) {
		/* A command sent after the reset came back: the reset worked. */
		h->verdict_pending = false;
		h->failed_in_row = 0;
	}
	health_quiet(h, now_ns);
	pthread_mutex_unlock(&h->lock);
}

int health_offline_error(const struct urt_dev *dev)
{
	/* st.gone is written once, under the lock, before the state turns OFFLINE (acquire: H1). */
	if (dev->health.st.gone)
		urt_set_error("%s: device offline: it is gone (its driver removed the controller or the "
			      "namespace, or the drive was pulled: a command failed with ENODEV, or the device "
			      "now ends before the size it had at open); every op fails with ENODEV until the "
			      "device is closed and reopened (docs/passthru.md, \"When a device goes "
			      "offline\")", dev->path);
	else
		urt_set_error("%s: device offline: urt's controller resets failed after repeated command "
			      "timeouts (urt_dev_health has the counts); every op fails with ENODEV until the "
			      "device is closed and reopened (docs/passthru.md, \"When a device goes "
			      "offline\")", dev->path);
	return -ENODEV;
}

URT_API int urt_dev_health(const struct urt_dev *dev, struct urt_dev_health *out)
{
	struct dev_health *h;

	if (!dev || !out)
		return -EINVAL;
	h = &((struct urt_dev *)dev)->health;
	pthread_mutex_lock(&h->lock);
	health_quiet(h, urt_clock_ns());
	*out = h->st;
	out->state = (enum urt_dev_state)health_state(h);
	pthread_mutex_unlock(&h->lock);
	return 0;
}

URT_API int urt_dev_health_set(struct urt_dev *dev, const struct urt_dev_health_opts *o)
{
	struct dev_health *h;

	if (!dev)
		return -EINVAL;
	h = &dev->health;
	pthread_mutex_lock(&h->lock);
	health_set_opts(h, o);
	pthread_mutex_unlock(&h->lock);
	return 0;
}
