/*
 * Open a sim device for a test and assert that it opened: the one place the
 * fixtures (page store, key-value store) and the tests with their own
 * latencies or caches turn a struct urt_sim_opts into a device.
 */
#ifndef URT_TESTS_SIM_OPEN_H
#define URT_TESTS_SIM_OPEN_H

#include <criterion/criterion.h>

#include "urt/dev.h"
#include "urt/sim.h"

static inline struct urt_dev *tests_sim_open(const struct urt_sim_opts *o)
{
	struct urt_dev *dev = NULL;
	int ret = urt_sim_open(o, &dev);

	cr_assert_eq(ret, 0, "urt_sim_open: %d", ret);
	return dev;
}

#endif /* URT_TESTS_SIM_OPEN_H */
