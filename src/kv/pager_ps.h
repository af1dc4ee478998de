/*
 * The B+tree's pager (pager.h) over a page-store transaction, and the
 * shard's meta page (page 0) that it keeps: the tree's root pointer, the
 * page high-water mark, the free-page list and the write sequence number.
 *
 * One struct kv_pps serves one transaction at a time: bind it to a fresh
 * transaction, run tree operations through kv_pps_ops, then commit or
 * abort the transaction yourself.
 */
#ifndef URT_KV_PAGER_PS_H
#define URT_KV_PAGER_PS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pager.h"

struct urt_ps;
struct urt_tx;

#define KV_META_MAGIC 0x6468737672756b75ull	/* "ukurvshd" little-endian. */
#define KV_META_VERSION 1u
#define KV_TRUNK_MAGIC 0x6b6e7572u		/* "runk": a free-list trunk page. */

/*
 * Page 0 of every shard.  All fields little-endian (host order, as the
 * tree's pages).  Page 0 is never handed to the tree.
 */
struct kv_shard_meta {
	uint64_t magic;		/* KV_META_MAGIC; 0 on a freshly formatted shard. */
	uint32_t version;	/* KV_META_VERSION. */
	uint32_t page_usable;	/* Usable bytes per page the tree was built with. */
	uint32_t shard_id;	/* This shard's index. */
	uint32_t shard_count;	/* Shards of the store. */
	uint64_t store_id;	/* Random id shared by the shards of one store. */
	uint64_t root;		/* The tree's meta page (pager root pointer); 0 = no tree. */
	uint64_t hwm;		/* First page never allocated (pages 1 .. hwm-1 are in use or free). */
	uint64_t free_head;	/* First free-list trunk page; 0 = the list is empty. */
	uint64_t free_pages;	/* Pages on the free list, trunks included. */
	uint64_t tx_seq;	/* Incremented by every write transaction (readers' seqlock). */
	uint64_t keys;		/* Keys in the tree (kept here, so counting costs no page write). */
	uint64_t volatile_keys;	/* Of those, keys with an expiry (expired or not); 0 in older stores, which have none. */
	uint64_t chain_pending;	/* Large value's chain being built, not yet in a leaf (freed if never linked); 0: none.  Zero in older stores. */
	uint64_t chain_free;	/* Detached chain of a replaced or deleted large value, being freed; 0: none. */
	uint8_t reserved[24];	/* Zero. */
};
_Static_assert(sizeof(struct kv_shard_meta) == 128, "on-disk shard meta page header");

/*
 * A free-list trunk page: a stack of free page numbers.  When a trunk is
 * full, the next freed page becomes the new head trunk; when a trunk is
 * empty, the trunk page itself is the next page handed out.
 */
struct kv_free_trunk {
	uint32_t magic;		/* KV_TRUNK_MAGIC. */
	uint32_t count;		/* Entries in pgno[]. */
	uint64_t next;		/* Next trunk, 0 for the last. */
	uint64_t pgno[];	/* Free pages. */
};
_Static_assert(sizeof(struct kv_free_trunk) == 16, "on-disk free-list trunk header");

/* One entry of the set of pages a write transaction touched. */
struct kv_pps_slot {
	uint64_t pgno;		/* Page number. */
	uint32_t gen;		/* Valid when equal to the pager's gen. */
	uint32_t written;	/* The page was pinned for write. */
};

/*
 * Pages already pinned in the bound transaction, by page number: a read of
 * one of them again (the meta page, the root and the inner nodes, once per
 * request of a batch) takes its pointer from here instead of asking the
 * page store and the touched-page set again.  Direct-mapped, tagged with
 * the transaction's generation.
 */
#define KV_PPS_MEMO 64u

struct kv_pps_memo {
	uint64_t pgno;		/* Page number. */
	void *data;		/* What urt_page_get gave for it last in the transaction. */
	uint32_t gen;		/* Valid when equal to the pager's gen. */
};

struct kv_pps {
	struct kv_pager_ops ops;	/* Pager table handed to the tree (ops.page_usable set). */
	struct urt_ps *ps;		/* Shard's page store. */
	struct urt_tx *tx;		/* Bound transaction, NULL between transactions. */
	struct kv_shard_meta *meta;	/* Page 0 in tx: private copy (writer) or committed. */
	uint64_t page_count;		/* Pages of the shard. */
	bool writer;			/* Bound for writing (page 0 pinned for write). */
	bool store_full;		/* The last alloc failed because every page is in use. */
	uint32_t pages_write_max;	/* Distinct pages a transaction may write. */
	uint32_t pages_read_max;	/* Distinct pages a transaction may only read. */
	uint32_t nwritten;		/* Distinct pages written in tx (writer). */
	uint32_t nread;			/* Distinct pages only read in tx (writer). */
	uint32_t gets;			/* Page gets in tx (reader: bounds the pins). */
	uint32_t gen;			/* Generation of the page set. */
	uint32_t set_mask;		/* Slots in set minus one (power of two). */
	uint64_t bad_pgno;		/* Reader: the first page the tree found damaged in tx... */
	const char *bad_why;		/* ...and why; NULL: none (see kv_pps_corrupt_confirm). */
	uint64_t memo_hits;		/* Page reads memo answered, since init (in the cache line of gets). */
	uint64_t memo_misses;		/* Page reads memo could not answer (asked the store). */
	struct kv_pps_slot *set;	/* Pages touched by tx (writer only). */
	struct kv_pps_memo memo[KV_PPS_MEMO];	/* Pages pinned in tx (see above). */
};

/*
 * Initialises p for ps.  writer: it will run write transactions, so it
 * tracks the pages they touch (pages_write_max / pages_read_max bound
 * them).  Returns 0 or -ENOMEM.
 */
int kv_pps_init(struct kv_pps *p, struct urt_ps *ps, bool writer, uint32_t pages_write_max,
		uint32_t pages_read_max);
void kv_pps_exit(struct kv_pps *p);

/*
 * Binds p to tx and pins page 0 (for write when p is a writer).  Returns
 * 0, URT_E_CORRUPT (page 0 is not a shard meta page of this layout), or
 * the page store's error (-EBUSY: another transaction writes page 0).
 */
int kv_pps_bind(struct kv_pps *p, struct urt_tx *tx);

/* Forgets the transaction (the caller commits or aborts it). */
void kv_pps_unbind(struct kv_pps *p);

/*
 * Damage the tree finds (ops.corrupt) and the pager's own checks find
 * (the free list, page 0) is recorded in the page store (urt_ps_page_corrupt:
 * urt_ps_stats bad_pgno, which urt_kv_shard_stats passes on), so that an
 * URT_E_CORRUPT names its page.  A writer's transaction sees the tree as
 * its last commit left it, so a writer records at once.  A reader may
 * combine pages of two commits (shard.c's seqlock) and find a damage that
 * is not there, so a reader only notes its first finding; the shard calls
 * kv_pps_corrupt_confirm once the transaction proved consistent (no commit
 * installed while it ran), which records it, and the next bind forgets it.
 * kv_pps_corrupt_forget drops it (a read of pages that may have been
 * reused, such as a stale large value's chain).
 */
void kv_pps_corrupt_confirm(struct kv_pps *p);
void kv_pps_corrupt_forget(struct kv_pps *p);

/*
 * Writes a fresh meta page for shard id of count into page 0 of tx (a
 * shard whose page 0 is all zero).  Returns 0 or the page store's error.
 */
int kv_pps_format(struct urt_tx *tx, size_t page_usable, uint32_t id, uint32_t count,
		  uint64_t store_id);

/* Drops every page: an empty tree, no free list (writer bound). */
void kv_pps_clear(struct kv_pps *p);

/* Would a change writing up to w more pages and reading up to r fit in tx? */
bool kv_pps_has_room(const struct kv_pps *p, uint32_t w, uint32_t r);

/*
 * The page store's read check for a store of B+tree pages (urt_ps_opts
 * page_check, arg unused): a node must pass kv_node_check_cells() (its
 * header and every slot's cell); other page types are checked where they
 * are used.  A pager over a store opened with it sets ops.nodes_checked,
 * so the tree checks nodes once per device read, not per visit.
 */
const char *kv_pps_page_check(const void *data, size_t len, void *arg);

/*
 * The store's page_hole (urt_ps_page_hole_fn): a node's free gap between
 * its slot array and its cells, or the tail of an overflow page after its
 * bytes.  The tree keeps both zeroed (btree_node.c), so page images in the
 * log leave them out.
 */
uint32_t kv_pps_page_hole(const void *data, size_t len, uint32_t *off, void *arg);

/* The pager ops table the tree is given. */
extern const struct kv_pager_ops kv_pps_ops_template;

#endif /* URT_KV_PAGER_PS_H */
