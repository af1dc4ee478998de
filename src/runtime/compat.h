/*
 * io_uring UAPI newer than the liburing 2.3 headers Debian 12 ships.  Each
 * constant comes from the kernel's include/uapi/linux/io_uring.h; whether
 * the running kernel has it is probed at run time (probe.c), never assumed.
 */
#ifndef URT_RUNTIME_COMPAT_H
#define URT_RUNTIME_COMPAT_H

#include <liburing.h>

#ifndef IORING_SETUP_NO_SQARRAY
#define IORING_SETUP_NO_SQARRAY (1U << 16)	/* 6.6 */
#endif
#ifndef IORING_SETUP_HYBRID_IOPOLL
#define IORING_SETUP_HYBRID_IOPOLL (1U << 17)	/* 6.13 */
#endif
#ifndef IORING_URING_CMD_FIXED
#define IORING_URING_CMD_FIXED (1U << 0)	/* 6.1: sqe->uring_cmd_flags */
#endif
#ifndef IORING_ASYNC_CANCEL_ALL
#define IORING_ASYNC_CANCEL_ALL (1U << 0)
#endif
#ifndef IORING_ASYNC_CANCEL_ANY
#define IORING_ASYNC_CANCEL_ANY (1U << 2)
#endif
#ifndef IORING_TIMEOUT_ETIME_SUCCESS
#define IORING_TIMEOUT_ETIME_SUCCESS (1U << 5)
#endif

/* Vectored reads and writes from registered buffers (6.15); opcode numbers of the kernel UAPI. */
#define URT_IORING_OP_READV_FIXED 60
#define URT_IORING_OP_WRITEV_FIXED 61
#ifndef IORING_OP_READV_FIXED
#define IORING_OP_READV_FIXED URT_IORING_OP_READV_FIXED
#define IORING_OP_WRITEV_FIXED URT_IORING_OP_WRITEV_FIXED
#endif

#endif /* URT_RUNTIME_COMPAT_H */
