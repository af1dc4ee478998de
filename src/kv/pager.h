/* SPDX-License-Identifier: MIT */
/*
 * pager.h - the page interface the urkv B+tree is written against.
 *
 * The tree never touches storage directly: it pins pages through this table
 * of function pointers, so it can run on the urt page store (whose
 * transactions log every page the tree marks writable) or on the in-memory
 * pager of the tests.  The rules a pager may rely on, and the tree keeps:
 *
 *   1. A page's bytes are read or written only between get()/alloc() and the
 *      matching put().  Every pin is released on every path, errors included.
 *   2. A page is modified only after it was pinned with write = true, came
 *      from alloc(), or was upgraded with make_writable().  The pointer
 *      returned by make_writable() replaces the one from get(): a pager may
 *      move the page to log or copy it.
 *   3. free() is called only on an unpinned page the tree owns.
 *   4. Any call but put() may fail.  The tree then returns that error at
 *      once.  Pages it already modified in the same operation stay modified:
 *      the caller must roll them back (abort the transaction) before using
 *      the tree again.
 *
 * A pager holds one durable root pointer for the tree (get_root/set_root).
 */
#ifndef URKV_PAGER_H
#define URKV_PAGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A pager instance; opaque to the tree. */
struct kv_pager;

struct kv_pager_ops {
	/*
	 * Pins page pgno and points *data at its usable bytes (page_usable of
	 * them, 8-byte aligned).  write = true announces that the caller will
	 * modify the page, so the pager logs it.  Returns 0 or a negative error.
	 */
	int (*get)(struct kv_pager *p, uint64_t pgno, bool write, void **data);
	/* Upgrades a page pinned read-only to write intent; *data may move. */
	int (*make_writable)(struct kv_pager *p, uint64_t pgno, void **data);
	/*
	 * Optional (may be NULL).  Copies len bytes from src to offset off of
	 * the pinned page pgno, as make_writable() and a memcpy would (a data
	 * pointer of the page the caller holds may be stale afterwards), and
	 * tells the pager which bytes the write covers, so that it need not
	 * compare the page with its committed image to find them.  Returns 0
	 * or a negative error.
	 */
	int (*write_at)(struct kv_pager *p, uint64_t pgno, size_t off, const void *src, size_t len);
	/* Unpins a page pinned by get() or alloc(); cannot fail. */
	void (*put)(struct kv_pager *p, uint64_t pgno);
	/* Allocates a zeroed page, pinned for write.  Page numbers are never 0. */
	int (*alloc)(struct kv_pager *p, uint64_t *pgno, void **data);
	/* Returns an unpinned page to the free space. */
	int (*free)(struct kv_pager *p, uint64_t pgno);
	/* Reads the durable root pointer; 0 means that no tree exists yet. */
	int (*get_root)(struct kv_pager *p, uint64_t *pgno);
	/* Writes the durable root pointer. */
	int (*set_root)(struct kv_pager *p, uint64_t pgno);
	/*
	 * Optional (may be NULL).  A number that differs from every value it
	 * returned before whenever a page or the root pointer may have changed
	 * since; 0 means "unknown".  The tree keeps the contents of its meta
	 * page while the epoch stays the same, which spares a page get per
	 * lookup.  Cannot fail.
	 */
	uint64_t (*epoch)(struct kv_pager *p);
	/*
	 * Optional (may be NULL, then so are locate and prefetch).  The committed bytes of
	 * page pgno if the pager holds them in memory, else NULL: no pin, no
	 * I/O, no wait, good only until the caller next suspends, and maybe
	 * older than the caller's own writes.  For hints only (prefetching).
	 */
	const void *(*peek)(struct kv_pager *p, uint64_t pgno);
	/*
	 * Asks the CPU for the pager's bookkeeping of page pgno: step 0, then
	 * (for a batch, after step 0 of every page) step 1; prefetch after
	 * both finds it cached.  A hint: no I/O, cannot fail.
	 */
	void (*locate)(struct kv_pager *p, uint64_t pgno, unsigned step);
	/*
	 * Asks the CPU to cache bytes [off, off + len) of page pgno's data (as
	 * peek returns it).  A hint: no I/O, cannot fail.
	 */
	void (*prefetch)(struct kv_pager *p, uint64_t pgno, size_t off, size_t len);
	/*
	 * Optional (may be NULL).  The tree found page pgno not holding what
	 * it expects (why: a string literal) and is about to return
	 * URT_E_CORRUPT; the pager records it where its user looks for
	 * damaged pages.  Cannot fail.
	 */
	void (*corrupt)(struct kv_pager *p, uint64_t pgno, const char *why);
	/* Usable bytes per page: the page size minus the pager's own header. */
	size_t page_usable;
	/*
	 * True when the pager promises that every page get() or peek()
	 * returns whose type byte is KV_PAGE_LEAF or KV_PAGE_INTERNAL passes
	 * kv_node_check_cells(): it checked it when it read the page from its
	 * device, and every other page is the tree's own write.  The tree
	 * then checks only the type byte on each visit.  False: the tree
	 * checks the whole node on every visit, and searches no peeked page.
	 */
	bool nodes_checked;
};

#ifdef __cplusplus
}
#endif

#endif /* URKV_PAGER_H */
