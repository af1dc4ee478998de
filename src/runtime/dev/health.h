/*
 * Recovery of a device from command timeouts (dev/health.c has the design
 * notes): the per-device state machine every backend shares.  The reset
 * itself is the backend's (struct urt_backend.reset).
 */
#ifndef URT_RUNTIME_DEV_HEALTH_H
#define URT_RUNTIME_DEV_HEALTH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "urt/dev.h"

struct urt_dev;

/* How often a retry parked behind a reset looks again (10 ms). */
#define HEALTH_PARK_NS 10000000ull

struct dev_health {
	_Atomic int state;		/* enum urt_dev_state: read without the lock by every op. */
	pthread_mutex_t lock;		/* Guards every field below. */
	pthread_cond_t idle;		/* Signalled when the reset thread ends. */
	struct urt_dev_health_opts o;	/* The policy. */
	struct urt_dev_health st;	/* Counters (st.state is filled in by urt_dev_health). */
	uint64_t window_start_ns;	/* Start of the window the counted rounds fall in. */
	uint32_t window_rounds;		/* Rounds counted in that window. */
	uint64_t epoch_ns;		/* A timeout of a command issued before this is not a new round. */
	uint64_t last_timeout_ns;	/* The latest timeout (or reset), for DEGRADED -> HEALTHY. */
	uint64_t reset_done_ns;		/* When the last reset brought the controller back. */
	bool verdict_pending;		/* That reset is not yet judged (cured or not). */
	uint32_t failed_in_row;		/* Failed resets since the last one that cured the device. */
	bool resetting;			/* The reset thread runs (health_exit waits for it). */
};

/* dev.c: from urt_dev_open and urt_dev_close. */
void health_init(struct urt_dev *dev, const struct urt_dev_health_opts *o);
void health_exit(struct urt_dev *dev);

/*
 * A command of dev issued at issue_ns ended in a timeout at now_ns.
 * Records it and escalates (see the design notes).  0 when the op may be
 * reissued, -ENODEV when the device is offline.
 */
int health_on_timeout(struct urt_dev *dev, uint64_t issue_ns, uint64_t now_ns);

/*
 * A command of dev failed with ENODEV, or a block device now ends before
 * its size at open (req.c, req_dev_gone): the device is gone (its driver
 * removed it).
 * OFFLINE at once, whatever the state; no reset is tried.
 */
void health_on_gone(struct urt_dev *dev);

/* An op retried after a timeout (the counter of urt_dev_health). */
void health_count_retry(struct urt_dev *dev);

/* A command issued at issue_ns succeeded on a device that is not HEALTHY. */
void health_on_success(struct urt_dev *dev, uint64_t issue_ns, uint64_t now_ns);

/* The state of h now (enum urt_dev_state), without the lock. */
static inline int health_state(const struct dev_health *h)
{
	return atomic_load_explicit(&((struct dev_health *)h)->state, memory_order_acquire);
}

/* Sets urt_last_error to why dev is offline (naming it) and returns -ENODEV. */
int health_offline_error(const struct urt_dev *dev);

#endif /* URT_RUNTIME_DEV_HEALTH_H */
