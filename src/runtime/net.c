/*
 * Socket ops (prep helpers) and provided-buffer rings; see urt/net.h.
 *
 * A provided-buffer ring is core-local: its memory (the ring of buffer
 * descriptors and the buffers) belongs to the core that created it, and
 * its group id is registered on that core's main ring only.  Recycling a
 * buffer writes one descriptor and publishes the new tail with a release
 * store (io_uring_buf_ring_advance), which is what the kernel reads.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "urt/net.h"
#include "runtime/core.h"
#include "base/mem.h"

struct urt_pbuf {
	struct urt_core *core;		/* Owner. */
	struct io_uring_buf_ring *br;	/* Descriptor ring shared with the kernel. */
	size_t br_bytes;		/* Its mapping size. */
	uint8_t *bufs;			/* nbufs × buf_bytes. */
	unsigned nbufs;			/* Power of two. */
	uint32_t buf_bytes;		/* Size of each buffer. */
	uint16_t bgid;			/* Buffer group id. */
	struct urt_pbuf *next;		/* The core's list, freed at teardown. */
};

static void io_prep_sock(struct urt_io *io, unsigned op, int fd, void *buf, size_t len)
{
	memset(io, 0, sizeof(*io));
	io->op = (uint8_t)op;
	io->fd = fd;
	io->buf = buf;
	io->len = len;
}

URT_API void urt_io_prep_accept(struct urt_io *io, int listen_fd, bool multishot)
{
	io_prep_sock(io, URT_OP_ACCEPT, listen_fd, NULL, 0);
	if (multishot)
		io->flags |= URT_IO_MULTISHOT;
}

URT_API void urt_io_prep_recv(struct urt_io *io, int fd, void *buf, size_t len)
{
	io_prep_sock(io, URT_OP_RECV, fd, buf, len);
}

URT_API void urt_io_prep_recv_multishot(struct urt_io *io, int fd, struct urt_pbuf *pb)
{
	io_prep_sock(io, URT_OP_RECV, fd, pb, 0);
	io->flags |= URT_IO_MULTISHOT;
}

URT_API void urt_io_prep_send(struct urt_io *io, int fd, const void *buf, size_t len)
{
	io_prep_sock(io, URT_OP_SEND, fd, (void *)buf, len);
}

/* Used by req.c to fill the SQE of a socket op. */
void net_prep(struct urt_req *req, struct io_uring_sqe *sqe, int fd)
{
	switch (req->op) {
	case URT_OP_ACCEPT:
		if (req->flags & URT_IO_MULTISHOT)
			io_uring_prep_multishot_accept(sqe, fd, NULL, NULL, SOCK_CLOEXEC);
		else
			io_uring_prep_accept(sqe, fd, NULL, NULL, SOCK_CLOEXEC);
		break;
	case URT_OP_RECV:
		if (req->flags & URT_IO_MULTISHOT) {
			struct urt_pbuf *pb = req->buf;

			io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
			sqe->flags |= IOSQE_BUFFER_SELECT;
			sqe->buf_group = pb->bgid;
		} else {
			io_uring_prep_recv(sqe, fd, req->buf, (size_t)req->len, 0);
		}
		break;
	case URT_OP_SEND:
		io_uring_prep_send(sqe, fd, req->buf, (size_t)req->len, MSG_NOSIGNAL);
		break;
	default:
		abort();	/* Not a socket op: req.c routes only these here. */
	}
}

URT_API int urt_pbuf_create(unsigned nbufs, uint32_t buf_bytes, struct urt_pbuf **out)
{
	struct urt_core *c = core_self();
	struct io_uring_buf_reg reg;
	struct urt_pbuf *pb;
	int ret;

	if (!c || !nbufs || nbufs > 32768 || (nbufs & (nbufs - 1)) || !buf_bytes || buf_bytes > (1u << 24)) {
		urt_set_error("urt_pbuf_create: nbufs must be a power of two up to 32768 and buf_bytes 1..16 MiB, "
			      "on a reactor");
		return -EINVAL;
	}
	if (c->next_bgid == UINT16_MAX)
		return -ENOSPC;
	pb = mem_alloc(c->arena, sizeof(*pb));
	if (!pb)
		return -ENOMEM;
	pb->core = c;
	pb->nbufs = nbufs;
	pb->buf_bytes = buf_bytes;
	pb->bgid = c->next_bgid++;
	pb->br_bytes = nbufs * sizeof(struct io_uring_buf);
	pb->br = mmap(NULL, pb->br_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pb->br == MAP_FAILED) {
		ret = -ENOMEM;
		goto err_free;
	}
	pb->bufs = mmap(NULL, (size_t)nbufs * buf_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pb->bufs == MAP_FAILED) {
		ret = -ENOMEM;
		goto err_unmap_ring;
	}
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)pb->br;
	reg.ring_entries = nbufs;
	reg.bgid = pb->bgid;
	ret = io_uring_register_buf_ring(&c->rings[RING_MAIN].ring, &reg, 0);
	if (ret) {
		urt_set_error("registering a provided-buffer ring: %s (Linux 5.19+)", strerror(-ret));
		goto err_unmap_bufs;
	}
	io_uring_buf_ring_init(pb->br);
	for (unsigned i = 0; i < nbufs; i++)
		io_uring_buf_ring_add(pb->br, pb->bufs + (size_t)i * buf_bytes, buf_bytes, (unsigned short)i,
				      io_uring_buf_ring_mask(nbufs), (int)i);
	io_uring_buf_ring_advance(pb->br, (int)nbufs);
	pb->next = c->pbufs;
	c->pbufs = pb;
	*out = pb;
	return 0;

err_unmap_bufs:
	munmap(pb->bufs, (size_t)nbufs * buf_bytes);
err_unmap_ring:
	munmap(pb->br, pb->br_bytes);
err_free:
	mem_free(c->arena, pb);
	return ret;
}

static void pbuf_free(struct urt_core *c, struct urt_pbuf *pb)
{
	if (c->rings[RING_MAIN].ready)
		io_uring_unregister_buf_ring(&c->rings[RING_MAIN].ring, pb->bgid);
	munmap(pb->bufs, (size_t)pb->nbufs * pb->buf_bytes);
	munmap(pb->br, pb->br_bytes);
	mem_free(c->arena, pb);
}

URT_API void urt_pbuf_destroy(struct urt_pbuf *pb)
{
	struct urt_core *c = core_self();
	struct urt_pbuf **pp;

	if (!pb)
		return;
	if (c != pb->core)
		abort();	/* Core-local object used on another core. */
	for (pp = &c->pbufs; *pp != pb; pp = &(*pp)->next)
		;
	*pp = pb->next;
	pbuf_free(c, pb);
}

/* Teardown: rings that outlive their users are the runtime's to free. */
void net_exit(struct urt_core *c)
{
	while (c->pbufs) {
		struct urt_pbuf *pb = c->pbufs;

		c->pbufs = pb->next;
		pbuf_free(c, pb);
	}
}

URT_API void *urt_pbuf_addr(const struct urt_pbuf *pb, unsigned buf_id)
{
	if (buf_id >= pb->nbufs)
		abort();
	return pb->bufs + (size_t)buf_id * pb->buf_bytes;
}

URT_API uint32_t urt_pbuf_size(const struct urt_pbuf *pb)
{
	return pb->buf_bytes;
}

URT_API void urt_pbuf_recycle(struct urt_pbuf *pb, unsigned buf_id)
{
	if (buf_id >= pb->nbufs)
		abort();
	io_uring_buf_ring_add(pb->br, urt_pbuf_addr(pb, buf_id), pb->buf_bytes, (unsigned short)buf_id,
			      io_uring_buf_ring_mask(pb->nbufs), 0);
	/* Release store of the tail: the kernel may use the buffer from here on. */
	io_uring_buf_ring_advance(pb->br, 1);
}
