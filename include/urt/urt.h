/**
 * @file
 * The whole public API of urt in one include, as <liburing.h> is for
 * liburing:
 *
 *     #include <urt/urt.h>
 *
 * Layers, from the bottom: errors and the version; the runtime (reactors,
 * ops, devices, buffers, fibers, sockets, histograms, the simulated device);
 * the page store; the key-value store.  Each header also stands alone.
 */
#ifndef URT_URT_H
#define URT_URT_H

#include "urt/common.h"
#include "urt/error.h"
#include "urt/version.h"

#include "urt/rt.h"
#include "urt/io.h"
#include "urt/dev.h"
#include "urt/buf.h"
#include "urt/fiber.h"
#include "urt/net.h"
#include "urt/hist.h"
#include "urt/sim.h"
#include "urt/nvme.h"

#include "urt/ps.h"
#include "urt/kv.h"

#endif /* URT_URT_H */
