/*
 * Kernel feature probing, done once per process and cached.
 */
#ifndef URT_RUNTIME_PROBE_H
#define URT_RUNTIME_PROBE_H

#include "urt/rt.h"

/* The cached result of urt_kernel_probe(). */
const struct urt_kernel_features *probe_features(void);

#endif /* URT_RUNTIME_PROBE_H */
