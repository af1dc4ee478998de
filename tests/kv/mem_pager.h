/* SPDX-License-Identifier: MIT */
/*
 * mem_pager.h - an in-memory struct kv_pager_ops for tests.
 *
 * Besides serving pages it polices the pager contract (pager.h) and aborts
 * the test on a breach: pinning a page that is not allocated, unpinning a
 * page that is not pinned, freeing a pinned page, and modifying a page that
 * was pinned read-only (detected by comparing it with a copy taken at the
 * pin).  With relocate set, a page's bytes move to a new buffer on every
 * first pin and on every make_writable(), so that, under ASan, a pointer kept
 * past put() or past make_writable() is caught.
 *
 * For fault injection it can fail the n-th fallible call (any call but put)
 * with a chosen error, cap the number of live pages (-ENOSPC), and snapshot
 * and roll back every page, the free list and the root pointer, as a
 * transaction abort would.
 */
#ifndef URKV_TEST_MEM_PAGER_H
#define URKV_TEST_MEM_PAGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pager.h"

struct mem_pager_opts {
	size_t page_usable; /* Bytes per page given to the user. */
	uint64_t pages_max; /* alloc() fails with -ENOSPC beyond this; 0: no cap. */
	bool relocate;	    /* Move page bytes on first pin and make_writable(). */
};

struct mem_pager;

int mem_pager_create(const struct mem_pager_opts *o, struct mem_pager **out);
void mem_pager_destroy(struct mem_pager *mp);

const struct kv_pager_ops *mem_pager_ops(struct mem_pager *mp);
struct kv_pager *mem_pager_pager(struct mem_pager *mp);

/* Pages allocated and not freed. */
uint64_t mem_pager_live_pages(const struct mem_pager *mp);
/*
 * Is pgno an allocated page?  The pager aborts on any other, so a caller
 * that follows page numbers out of damaged bytes asks first.
 */
bool mem_pager_has_page(const struct mem_pager *mp, uint64_t pgno);
/* Pins held now, and the most held at once since creation. */
unsigned mem_pager_pinned(const struct mem_pager *mp);
unsigned mem_pager_pinned_max(const struct mem_pager *mp);
/* Fallible calls made so far. */
uint64_t mem_pager_calls(const struct mem_pager *mp);
/* Write intents announced so far: get(write), make_writable() and alloc(). */
uint64_t mem_pager_write_intents(const struct mem_pager *mp);
/* Successful write_at() calls (the tree's in-place cell rewrites). */
uint64_t mem_pager_ranged_writes(const struct mem_pager *mp);
/* Distinct pages given write intent since the last reset. */
uint64_t mem_pager_dirty_pages(const struct mem_pager *mp);
void mem_pager_dirty_reset(struct mem_pager *mp);

/* Makes the nth fallible call from now (1 = the next) fail with err; 0 disarms. */
void mem_pager_fail_call(struct mem_pager *mp, uint64_t nth, int err);
/* Caps live pages (0: no cap). */
void mem_pager_set_pages_max(struct mem_pager *mp, uint64_t pages_max);

/* Saves the state of every page; requires that nothing is pinned. */
int mem_pager_snapshot(struct mem_pager *mp);
/* Restores the last snapshot, which stays available; nothing may be pinned. */
void mem_pager_rollback(struct mem_pager *mp);

#endif /* URKV_TEST_MEM_PAGER_H */
