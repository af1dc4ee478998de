/*
 * The registered buffer region of a core and its allocator.
 *
 * Design notes
 * ------------
 * At setup a core maps buf_region_bytes (2 MiB huge pages when the system
 * has them reserved, else normal pages with MADV_HUGEPAGE) and registers it
 * with each of its rings as fixed buffer 0.  Any I/O whose memory lies
 * inside the region then uses READ_FIXED/WRITE_FIXED, which skips the
 * per-I/O page pinning.
 *
 * Allocation is by power-of-two classes from 4 KiB (class 0) to 4 MiB
 * (class 10).  A class with an empty free list carves from the never-used
 * tail, else splits the smallest larger free block in halves.  Blocks are
 * not merged back: a long-running workload reuses the same sizes, and the
 * bound on memory is the region itself.  Each block's first 4 KiB page
 * records its class and a reference count; the free list links through the
 * free blocks themselves, so the allocator owns no memory beyond two small
 * per-page arrays.
 *
 * Reference counts: urt_buf_get sets 1; an op with a deadline takes one
 * more (req.c) so that a buffer whose op timed out is only recycled after
 * the device has finished with it.
 *
 * Memory limit: registering pins the pages, which counts against
 * RLIMIT_MEMLOCK unless the process has CAP_IPC_LOCK, once per ring the
 * region is registered with.  memlock.c checks first, counting every ring
 * of every core, so the error names the limit instead of surfacing as
 * ENOMEM from the kernel.
 */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "runtime/dev/backend.h"
#include "runtime/core.h"
#include "runtime/memlock.h"

#define BUF_PAGE 4096u
#define BUF_CLASSES 11
#define HUGE_2M (2u << 20)

_Static_assert((BUF_PAGE << (BUF_CLASSES - 1)) == URT_BUF_MAX_BYTES, "classes cover URT_BUF_MAX_BYTES");

int buf_region_init(struct urt_core *c)
{
	struct buf_region *b = &c->bufs;
	size_t bytes = c->rt->opts.buf_region_bytes;
	size_t pages;
	void *p = MAP_FAILED;

	bytes = (bytes + BUF_PAGE - 1) / BUF_PAGE * BUF_PAGE;
	if (c->rt->opts.buf_hugepages && bytes % HUGE_2M == 0)
		p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | (21 << MAP_HUGE_SHIFT), -1, 0);
	b->huge = p != MAP_FAILED;
	if (p == MAP_FAILED) {
		p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			urt_set_error("mapping the %zu KiB buffer region: %s", bytes / 1024, strerror(errno));
			return -ENOMEM;
		}
		if (c->rt->opts.buf_hugepages)
			madvise(p, bytes, MADV_HUGEPAGE);
	}
	b->base = p;
	b->bytes = bytes;
	pages = bytes / BUF_PAGE;
	b->page_class = calloc(pages, sizeof(*b->page_class));
	b->page_refs = calloc(pages, sizeof(*b->page_refs));
	if (!b->page_class || !b->page_refs) {
		buf_region_exit(c);
		return -ENOMEM;
	}
	return 0;
}

void buf_region_exit(struct urt_core *c)
{
	struct buf_region *b = &c->bufs;

	if (b->base)
		munmap(b->base, b->bytes);
	free(b->page_class);
	free(b->page_refs);
	memset(b, 0, sizeof(*b));
}

int buf_register(struct urt_core *c, struct io_uring *ring)
{
	struct buf_region *b = &c->bufs;
	struct iovec iov = { .iov_base = b->base, .iov_len = b->bytes };
	char what[64];
	unsigned kinds;
	int ret;

	if (!b->registered && c->rings[RING_MAIN].ready && ring != &c->rings[RING_MAIN].ring)
		return 0;	/* The main ring already fell back to unregistered memory. */
	/* Every ring of every core registers the region: count them all, this ring's kind included. */
	kinds = memlock_start_kinds(&c->rt->opts) | (ring == &c->rings[RING_BIG].ring ? 1u << RING_BIG : 0u);
	ret = memlock_check(&c->rt->opts, c->rt->ncores, kinds, true);
	if (!ret) {
		ret = io_uring_register_buffers(ring, &iov, 1);
		if (ret == -ENOMEM && !memlock_unlimited()) {
			snprintf(what, sizeof(what), "registering the %zu KiB buffer region", b->bytes / 1024);
			memlock_refused(&c->rt->opts, c->rt->ncores, kinds, true, what, ret);
		} else if (ret) {
			urt_set_error("registering the %zu KiB buffer region failed: %s", b->bytes / 1024,
				      strerror(-ret));
		}
	}
	if (ret) {
		if (!c->rt->opts.buf_allow_unregistered)
			return ret;
		b->registered = false;
		c->stats.bufs_registered = false;
		return 0;
	}
	b->registered = true;
	c->stats.bufs_registered = true;
	return 0;
}

bool buf_region_contains(const struct urt_core *c, const void *p, size_t len)
{
	const struct buf_region *b = &c->bufs;
	const uint8_t *q = p;

	return b->base && q >= b->base && q + len <= b->base + b->bytes && q + len >= q;
}

static size_t buf_page(const struct urt_core *c, const void *p)
{
	return (size_t)((const uint8_t *)p - c->bufs.base) / BUF_PAGE;
}

static void buf_free_push(struct buf_region *b, unsigned cls, void *p)
{
	*(void **)p = b->free_head[cls];
	b->free_head[cls] = p;
}

static void *buf_block(struct urt_core *c, unsigned cls)
{
	struct buf_region *b = &c->bufs;
	size_t size = (size_t)BUF_PAGE << cls;
	void *p;

	if (b->free_head[cls]) {
		p = b->free_head[cls];
		b->free_head[cls] = *(void **)p;
		return p;
	}
	if (b->tail + size <= b->bytes) {
		p = b->base + b->tail;
		b->tail += size;
		return p;
	}
	/* Split the smallest larger free block, keeping the upper halves free. */
	for (unsigned k = cls + 1; k < BUF_CLASSES; k++) {
		if (!b->free_head[k])
			continue;
		p = b->free_head[k];
		b->free_head[k] = *(void **)p;
		while (k > cls) {
			k--;
			buf_free_push(b, k, (uint8_t *)p + ((size_t)BUF_PAGE << k));
			b->page_class[buf_page(c, (uint8_t *)p + ((size_t)BUF_PAGE << k))] = (uint8_t)k;
		}
		return p;
	}
	return NULL;
}

URT_API void *urt_buf_get(size_t len)
{
	struct urt_core *c = core_self();
	unsigned cls = 0;
	void *p;

	if (!c || len == 0 || len > URT_BUF_MAX_BYTES) {
		urt_set_error(c ? "urt_buf_get: length %zu out of range (1..%u)" : "urt_buf_get: not on a reactor",
			      len, URT_BUF_MAX_BYTES);
		return NULL;
	}
	while (((size_t)BUF_PAGE << cls) < len)
		cls++;
	p = buf_block(c, cls);
	if (!p) {
		urt_set_error("buffer region of core %u exhausted (%zu KiB); raise buf_region_bytes",
			      c->index, c->bufs.bytes / 1024);
		return NULL;
	}
	c->bufs.page_class[buf_page(c, p)] = (uint8_t)cls;
	c->bufs.page_refs[buf_page(c, p)] = 1;
	return p;
}

void buf_ref(struct urt_core *c, void *p)
{
	size_t pg = buf_page(c, p);

	if (c->bufs.page_refs[pg] == 0 || c->bufs.page_refs[pg] == UINT16_MAX)
		abort();	/* A reference on a free buffer, or a leak of references. */
	c->bufs.page_refs[pg]++;
}

void buf_unref(struct urt_core *c, void *p)
{
	struct buf_region *b = &c->bufs;
	size_t pg = buf_page(c, p);

	if (b->page_refs[pg] == 0)
		abort();	/* Double put. */
	if (--b->page_refs[pg] == 0)
		buf_free_push(b, b->page_class[pg], p);
}

URT_API void urt_buf_put(void *p)
{
	struct urt_core *c = core_self();

	if (!p)
		return;
	if (!c || !buf_region_contains(c, p, 1) || ((uint8_t *)p - c->bufs.base) % BUF_PAGE)
		abort();	/* Not a buffer of this core: a programmer error. */
	buf_unref(c, p);
}

URT_API bool urt_buf_owns(const void *p)
{
	struct urt_core *c = core_self();

	return c && buf_region_contains(c, p, 1);
}

URT_API size_t urt_buf_free_bytes(void)
{
	struct urt_core *c = core_self();
	size_t n;

	if (!c)
		return 0;
	n = c->bufs.bytes - c->bufs.tail;
	for (unsigned k = 0; k < BUF_CLASSES; k++)
		for (void *p = c->bufs.free_head[k]; p; p = *(void **)p)
			n += (size_t)BUF_PAGE << k;
	return n;
}

int dev_buf_index(const struct urt_core *c, const void *p, uint64_t len)
{
	return c->bufs.registered && buf_region_contains(c, p, len) ? 0 : -1;
}
