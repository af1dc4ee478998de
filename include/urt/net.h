/**
 * @file
 * Socket operations on the reactor's ring.
 *
 * Sockets are plain file descriptors; these ops put accept, recv and send
 * on the same io_uring as the storage I/O, so one core serves its clients
 * and its device without any other event loop.
 *
 * Multishot (URT_IO_MULTISHOT): one submission, one callback per result.
 * While io->flags has URT_IO_MORE the op is still active and io must not
 * be reused; the last callback comes without URT_IO_MORE (for example
 * -ECANCELED, -ENOBUFS when the provided buffers ran out, or 0 at the end
 * of a stream), after which io may be submitted again.  Multishot ops take
 * no deadline (the kernel refuses to link them to a timeout).
 *
 * Multishot recv reads into provided buffers: a ring of nbufs buffers that
 * the kernel picks from (IORING_REGISTER_PBUF_RING).  The callback finds
 * the data at urt_pbuf_addr(pb, io->buf_id) and must give the buffer back
 * with urt_pbuf_recycle once it has consumed it.
 */
#ifndef URT_NET_H
#define URT_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "urt/common.h"
#include "urt/io.h"

URT_BEGIN_DECLS

struct urt_pbuf;

/** Accept one connection (res = the new fd), or many with URT_IO_MULTISHOT. */
URT_API void urt_io_prep_accept(struct urt_io *io, int listen_fd, bool multishot);

/** Receive up to len bytes into buf (res = bytes, 0 at end of stream). */
URT_API void urt_io_prep_recv(struct urt_io *io, int fd, void *buf, size_t len);

/** Multishot receive into the provided buffers of pb (see above). */
URT_API void urt_io_prep_recv_multishot(struct urt_io *io, int fd, struct urt_pbuf *pb);

/** Send all len bytes (short sends are resubmitted); MSG_NOSIGNAL. */
URT_API void urt_io_prep_send(struct urt_io *io, int fd, const void *buf, size_t len);

/**
 * A ring of nbufs (power of two, at most 32768) buffers of buf_bytes each,
 * registered with the calling core's main ring.  Core-local: create, use
 * and destroy it on one reactor.  -EINVAL for bad sizes, -ENOMEM, or the
 * kernel's error from the registration.
 */
/** Create a provided-buffer ring on the calling core (see above). */
URT_API int urt_pbuf_create(unsigned nbufs, uint32_t buf_bytes, struct urt_pbuf **out);
/** Unregister and free (no op may still use it).  urt_rt_stop frees the rest. */
URT_API void urt_pbuf_destroy(struct urt_pbuf *pb);
/** Address of buffer buf_id (as reported in io->buf_id). */
URT_API void *urt_pbuf_addr(const struct urt_pbuf *pb, unsigned buf_id);
/** Size in bytes of each buffer of pb. */
URT_API uint32_t urt_pbuf_size(const struct urt_pbuf *pb);
/** Hand buffer buf_id back to the kernel. */
URT_API void urt_pbuf_recycle(struct urt_pbuf *pb, unsigned buf_id);

URT_END_DECLS

#endif /* URT_NET_H */
