/*
 * Socket ops (net.c): SQE preparation and per-core teardown.
 */
#ifndef URT_RUNTIME_NET_H
#define URT_RUNTIME_NET_H

#include "runtime/core.h"

/* net.c */
void net_prep(struct urt_req *req, struct io_uring_sqe *sqe, int fd);
void net_exit(struct urt_core *c);

#endif /* URT_RUNTIME_NET_H */
