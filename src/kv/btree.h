/* SPDX-License-Identifier: MIT */
/*
 * btree.h - the urkv B+tree: sorted byte-string keys to byte-string values,
 * stored in pages reached only through a struct kv_pager_ops (pager.h).
 *
 * Keys are 1..KV_BTREE_KEY_MAX bytes, compared as unsigned bytes (a shorter
 * key sorts before its extensions).  Values are 0..KV_BTREE_VALUE_MAX bytes;
 * large ones live in chains of overflow pages.  The tree keeps its root, its
 * height and (unless created without) its key count in a meta page, which
 * the pager's root pointer names.
 *
 * Errors: every call returns 0 (or a count) on success and a negative value
 * on failure (urt_strerror() explains all of them): a pager error passed
 * through unchanged, or one of
 *   -EINVAL        an empty key, or a page size the tree cannot use;
 *   URT_E_TOOBIG   a key or value above the limits below;
 *   -ENOENT        no such key (get, del, put with KV_BTREE_XX);
 *   -EEXIST        the key exists (put with KV_BTREE_NX);
 *   URT_E_CORRUPT  a page that does not hold what the tree expects.
 * Absent keys are -ENOENT rather than URT_E_NOTFOUND so that they cannot be
 * mistaken for a pager reporting a missing page.
 * After a failed put or del the pages may hold a half-done change; the
 * caller must roll the pager back (abort the transaction) before reusing the
 * tree.  Reads never modify pages.
 *
 * Concurrency: a struct kv_btree serves one call at a time.  It owns
 * scratch buffers that stay in use across pager calls, and a pager may
 * block inside a call (a fiber waiting for a page read), so fibers or
 * threads must not share a handle without serializing whole calls.  The
 * handle caches nothing about the tree but a copy of its meta page, and
 * that only while the pager's epoch (pager.h) is unchanged, so several
 * handles may work on one tree, e.g. one per fiber, each pointed at its own
 * transaction's pager instance with kv_btree_set_pager().  With a page store that refuses two
 * writers of one page, note that every insert and delete of a tree that
 * counts keys writes the meta page, so such writers always collide; see
 * struct kv_btree_opts.
 */
#ifndef URKV_BTREE_H
#define URKV_BTREE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pager.h"
#include "urt/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest key, in bytes. */
#define KV_BTREE_KEY_MAX 1024u
/* Longest value one put writes in one transaction, in bytes (1 MiB). */
#define KV_BTREE_VALUE_MAX (1024u * 1024u)
/*
 * Longest value of all (512 MiB).  A value over KV_BTREE_VALUE_MAX is a
 * "large" value: its chain is built, read and freed over several
 * transactions (kv_btree_chain_build/_read/_free) and linked into its leaf
 * with KV_BTREE_CHAIN; puts and deletes hand its old chain back in
 * x->detached instead of freeing it.
 */
#define KV_BTREE_BIG_MAX (512u * 1024u * 1024u)

/* kv_btree_put() flags. */
enum kv_btree_put_flags {
	KV_BTREE_NX = 1u << 0, /* Only insert: fail with -EEXIST if the key exists. */
	KV_BTREE_XX = 1u << 1, /* Only overwrite: fail with -ENOENT if it does not. */
	KV_BTREE_KEEPTTL = 1u << 2, /* put_x: keep the live key's expiry, not x->expire_at. */
	KV_BTREE_KEEPVAL = 1u << 3, /* put_x: keep the value, set the expiry (-ENOENT if absent). */
	KV_BTREE_CHAIN = 1u << 5, /* put_x: the value is the built chain x->chain (val unused). */
};
/* kv_btree_del_x() flag: delete only a key that has expired at x->now. */
#define KV_BTREE_IF_EXPIRED (1u << 4)

/*
 * Expiry of a put_x or del_x.  Keys carry an optional absolute expiry time
 * (milliseconds since the Unix epoch, never 0).  The tree never drops a key
 * by itself; it only treats a key whose expire_at <= now as absent for
 * KV_BTREE_NX, KV_BTREE_XX, KV_BTREE_KEEPTTL and KV_BTREE_KEEPVAL.
 */
struct kv_btree_xput {
	uint64_t expire_at;	/* In: expiry of the new cell; 0 = never. */
	uint64_t now;		/* In: keys with expire_at <= now are absent; 0 = none are. */
	bool found;		/* Out: a cell of the key was there (expired or not). */
	uint64_t old_expire_at;	/* Out: that cell's expiry (0: none). */
	uint64_t new_expire_at;	/* Out, put_x: the expiry the key has now. */
	uint64_t chain;		/* In, KV_BTREE_CHAIN: head of the value's chain. */
	uint64_t detached;	/* Out: the old value's chain if it was large (not freed), else 0. */
};


struct kv_btree;

/* Options of kv_btree_open(); start from kv_btree_opts_default(). */
struct kv_btree_opts {
	/*
	 * Used when the first put creates the tree, then fixed: keep the key
	 * count in the meta page, which makes kv_btree_count() O(1) but makes
	 * every insert and delete write the meta page too (with a page store
	 * that logs full page images, twice the log bytes of an insert that
	 * fits its leaf).  Without it kv_btree_count() walks the leaves; a
	 * caller can still keep a count of its own from the return values of
	 * kv_btree_put() and kv_btree_del().  Default true.
	 */
	bool count_keys;
};

void kv_btree_opts_default(struct kv_btree_opts *o);

/*
 * Opens the tree kept in the pager; o may be NULL for the defaults.  No page
 * is written: a pager whose root pointer is 0 holds an empty tree, created
 * by the first put.  Fails with -EINVAL if ops->page_usable is outside
 * [KV_BTREE_PAGE_USABLE_MIN, 65535] or differs from the one the tree was
 * built with.
 */
int kv_btree_open(const struct kv_pager_ops *ops, struct kv_pager *pager,
		  const struct kv_btree_opts *o, struct kv_btree **out);
void kv_btree_close(struct kv_btree *t);
/*
 * Points the handle at another instance of the same pager (same ops), e.g.
 * the transaction of the next operation.  Open cursors re-seek.
 */
void kv_btree_set_pager(struct kv_btree *t, struct kv_pager *pager);

/*
 * Prefetching for a batch of lookups, in stages, each run over the whole
 * batch before the next, so that the batch waits for its cache misses
 * together instead of one lookup after another: hints that take no pin,
 * do no I/O and cannot fail, for pagers that have peek (pager.h) and
 * promise nodes_checked; otherwise they do nothing.
 *   kv_btree_prefetch_leaf   descends to key's leaf through the internal
 *                            nodes the pager holds and returns the leaf's
 *                            page number (0 when a page on the way is not
 *                            in memory), asking the CPU for the pager's
 *                            index entry of it;
 *   kv_btree_prefetch_node   step 0: the pager's record of that leaf;
 *                            step 1: the leaf's header and slot array;
 *   kv_btree_prefetch_cell   searches the leaf by key heads and asks for
 *                            key's cell.
 * The lookups then start at the leaf (kv_btree_get_hinted).
 */
uint64_t kv_btree_prefetch_leaf(struct kv_btree *t, const void *key, size_t klen);
void kv_btree_prefetch_node(struct kv_btree *t, uint64_t leaf, unsigned step);
void kv_btree_prefetch_cell(struct kv_btree *t, uint64_t leaf, const void *key, size_t klen);

/* Smallest page_usable that holds three maximal cells per node. */
#define KV_BTREE_PAGE_USABLE_MIN 3200u

/*
 * Copies up to buf_len bytes of the value of key into buf and sets *vlen to
 * the full value length (buf may be NULL when buf_len is 0).
 */
int kv_btree_get(struct kv_btree *t, const void *key, size_t klen, void *buf,
		 size_t buf_len, size_t *vlen);
/* Returns 1 if key exists, 0 if not, or a negative error. */
int kv_btree_exists(struct kv_btree *t, const void *key, size_t klen);
/*
 * Inserts or overwrites key; flags is 0 or one of enum kv_btree_put_flags.
 * Returns 1 if the key was added, 0 if its value was replaced, or an error.
 */
int kv_btree_put(struct kv_btree *t, const void *key, size_t klen,
		 const void *val, size_t vlen, unsigned flags);
/* Deletes key; -ENOENT if it is absent. */
int kv_btree_del(struct kv_btree *t, const void *key, size_t klen);
/*
 * put and del with expiry (struct kv_btree_xput).  put_x flags: enum
 * kv_btree_put_flags; with KV_BTREE_KEEPVAL val/vlen are ignored and only
 * the expiry changes (no overflow page is touched).  del_x flags: 0 or
 * KV_BTREE_IF_EXPIRED (-ENOENT for a live key).  Same returns as put/del.
 */
int kv_btree_put_x(struct kv_btree *t, const void *key, size_t klen, const void *val,
		   size_t vlen, unsigned flags, struct kv_btree_xput *x);
int kv_btree_del_x(struct kv_btree *t, const void *key, size_t klen, unsigned flags,
		   struct kv_btree_xput *x);

/*
 * Large values over several transactions.  A chain is built back to front:
 * *end is the length of the value's prefix not yet in the chain (start
 * with vlen), *head the chain built so far (start with 0); each call
 * writes up to max_pages pages of the value before *end, linked in front
 * of *head, and lowers *end (to 0 when the chain is complete).  So *head
 * is always a well-formed chain, which a caller can record durably and
 * free after a crash.
 */
int kv_btree_chain_build(struct kv_btree *t, const void *val, size_t vlen, size_t *end,
			 uint32_t max_pages, uint64_t *head);
/* Frees up to max_pages pages from the front of chain *head and advances it (0: all freed). */
int kv_btree_chain_free(struct kv_btree *t, uint64_t *head, uint32_t max_pages);
/*
 * Copies the next pages of a vlen-byte chain to buf + *off, from page *pgno
 * on, reading at most max_pages pages and never past buf_len; advances
 * *pgno and *off.
 */
int kv_btree_chain_read(struct kv_btree *t, uint64_t *pgno, size_t *off, size_t vlen,
			void *buf, size_t buf_len, uint32_t max_pages);
/*
 * One lookup for a reader that copies values up to KV_BTREE_VALUE_MAX and
 * reads longer ones itself (kv_btree_chain_read): as kv_btree_get_x, but
 * a value over KV_BTREE_VALUE_MAX is not copied: *chain is set to the head
 * of its overflow chain (0 for any other value, which is copied as
 * kv_btree_get_x copies it).  *vlen and *expire_at (may be NULL) are set
 * either way.  Returns 0, -ENOENT or a pager error.
 */
int kv_btree_get_or_ref(struct kv_btree *t, const void *key, size_t klen, void *buf,
			size_t buf_len, size_t *vlen, uint64_t *expire_at, uint64_t *chain);
/*
 * kv_btree_get_or_ref (chain non-NULL) or kv_btree_get_x (chain NULL) that
 * first tries the leaf hint (0: none), as kv_btree_prefetch_leaf returned
 * it earlier in the same read transaction: when the key is in that leaf
 * the descent from the root is skipped.  A hint that is stale, wrong or
 * not in memory costs a page peek, then the lookup descends as without
 * one: same results either way.  The pager must have peek.
 */
int kv_btree_get_hinted(struct kv_btree *t, uint64_t hint, const void *key, size_t klen,
			void *buf, size_t buf_len, size_t *vlen, uint64_t *expire_at,
			uint64_t *chain);
/* get that also sets *expire_at (may be NULL) to the key's expiry, 0 = never. */
int kv_btree_get_x(struct kv_btree *t, const void *key, size_t klen, void *buf,
		   size_t buf_len, size_t *vlen, uint64_t *expire_at);
/*
 * Sets *count to the number of keys: read from the meta page (O(1)) if the
 * tree counts keys, else summed over the leaves (one page read per leaf).
 */
int kv_btree_count(struct kv_btree *t, uint64_t *count);

/*
 * Sets *pages to an upper bound on the distinct pages that one put of a
 * vlen-byte value, or one del (vlen 0), writes or allocates in the tree as
 * it is now: two per level (the node on the path and one sibling, split off
 * or rebalanced with), a new root, the meta page and the value's overflow
 * chain.  Pages a pager writes for its own bookkeeping, such as a free list
 * that takes a replaced value's chain, are not included.  For callers whose
 * transactions bound the pages they may write.
 */
int kv_btree_write_bound(struct kv_btree *t, size_t vlen, uint64_t *pages);

/*
 * Tells the tree that its pages changed behind its back (the pager rolled a
 * transaction back), so that open cursors re-seek by key on their next call.
 */
void kv_btree_invalidate_cursors(struct kv_btree *t);

/*
 * A cursor over the keys in order.  It remembers its key, so it survives
 * modifications of the tree: after a put or del through its handle it
 * re-seeks to the first key after the one it was on.  It cannot see changes
 * made through another handle or rolled back by the pager: call
 * kv_btree_invalidate_cursors() after those.  The fields are private; the
 * struct is declared here only so that callers can embed it without an
 * allocation.
 */
struct kv_btree_cursor {
	struct kv_btree *tree; /* Tree the cursor walks. */
	uint64_t gen;	       /* Tree generation at which leaf/idx were valid. */
	uint64_t leaf;	       /* Page of the leaf that holds the current key. */
	uint32_t idx;	       /* Slot of the current key in that leaf. */
	bool valid;	       /* True if positioned on a key, false at the end. */
	uint16_t klen;	       /* Length of key. */
	size_t vlen;	       /* Length of the current value. */
	uint64_t expire_at;    /* Expiry of the current key (0: never). */
	uint8_t key[KV_BTREE_KEY_MAX]; /* Copy of the current key. */
};

void kv_btree_cursor_init(struct kv_btree_cursor *c, struct kv_btree *t);
/*
 * Positions the cursor on the first key >= key (klen 0: the first key).  On
 * success the cursor is valid unless no such key exists.
 */
int kv_btree_cursor_seek(struct kv_btree_cursor *c, const void *key, size_t klen);
/* Moves to the next key; the cursor becomes invalid past the last key. */
int kv_btree_cursor_next(struct kv_btree_cursor *c);
/* True if the cursor is on a key. */
bool kv_btree_cursor_valid(const struct kv_btree_cursor *c);
/* The current key; valid until the next cursor call. */
const void *kv_btree_cursor_key(const struct kv_btree_cursor *c, size_t *klen);
/* Length of the current value. */
size_t kv_btree_cursor_value_len(const struct kv_btree_cursor *c);
/* Expiry of the current key, 0 = never (the tree does not hide expired keys). */
uint64_t kv_btree_cursor_expire_at(const struct kv_btree_cursor *c);
/*
 * Copies up to buf_len bytes of the current value into buf and sets *vlen to
 * its full length.  -ENOENT if the key was deleted since the cursor moved.
 */
int kv_btree_cursor_value(struct kv_btree_cursor *c, void *buf, size_t buf_len,
			  size_t *vlen);

/* Levels counted separately by struct kv_btree_counters. */
#define KV_BTREE_LEVELS 8

/*
 * Structural changes made through a handle since kv_btree_open(), indexed by
 * level - 1 (0: leaves; the last entry also counts every higher level).
 * Changes that a transaction abort later undid are counted too.
 */
struct kv_btree_counters {
	uint64_t splits[KV_BTREE_LEVELS];	   /* Nodes split in two. */
	uint64_t merges[KV_BTREE_LEVELS];	   /* Sibling pairs merged into one. */
	uint64_t redistributions[KV_BTREE_LEVELS]; /* Sibling pairs rebalanced. */
	uint64_t rebalance_splits; /* Parents split by a longer separator. */
	uint64_t root_grows;	   /* New roots (the tree got taller). */
	uint64_t root_shrinks;	   /* Roots dropped (the tree got shorter). */
	uint64_t overflow_pages_written; /* Pages of new overflow chains. */
	uint64_t overflow_pages_freed;	 /* Pages of dropped overflow chains. */
	uint64_t overwrites;	   /* Puts that rewrote a cell of the same size in place. */
	uint64_t hinted_gets;	   /* kv_btree_get_hinted lookups answered by their hint's leaf. */
};

void kv_btree_get_counters(const struct kv_btree *t, struct kv_btree_counters *out);

/* What kv_btree_check() saw. */
struct kv_btree_stats {
	uint32_t height;	 /* Levels; 1 if the root is a leaf, 0 if no tree. */
	uint64_t keys;		 /* Keys found in the leaves. */
	uint64_t meta_pages;	 /* 1, or 0 if no tree exists. */
	uint64_t internal_pages; /* Internal nodes. */
	uint64_t leaf_pages;	 /* Leaves. */
	uint64_t overflow_pages; /* Pages of overflow value chains. */
	uint64_t node_bytes_used; /* Bytes in use in leaves and internal nodes. */
	char why[256];		 /* First violation found, or empty. */
};

/*
 * Walks the whole tree and checks every invariant: page types, slot and cell
 * bounds, strictly increasing keys, separators bounding their subtrees, all
 * leaves at the meta page's height, the leaf chain visiting the leaves in
 * key order, overflow chains matching their value lengths, no page reached
 * twice, and the meta page's key count if it keeps one.  Returns 0, URT_E_CORRUPT with
 * st->why set, or a pager error.  st may be NULL.  O(pages); for tests.
 */
int kv_btree_check(struct kv_btree *t, struct kv_btree_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* URKV_BTREE_H */
