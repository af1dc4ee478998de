/* SPDX-License-Identifier: MIT */
/*
 * btree_node.h - on-page formats of the urkv B+tree (internal to btree*.c).
 *
 * Every page the tree owns starts with a one-byte type.  Nodes (leaves and
 * internal nodes) are slotted pages of page_usable (u) bytes:
 *
 *	0                16          16+8*count     cell_start            u
 *	| kv_node_hdr    | slot[0..count) | free ...   | cells (any order)  |
 *
 * slot[i] (struct kv_slot, 8 bytes) holds the offset and key length of
 * cell i and the key's head; slots are sorted by key, cells are packed
 * down from the end of the page.  Removing a cell adds its bytes to frag;
 * an insert that finds too little contiguous room compacts the page.
 * Hence, for every node:  cell_start = u - (sum of live cell sizes) - frag.
 *
 * Key heads and the node prefix (format version 2).  Every key of a node
 * shares its first hdr.prefix bytes (0..255; not necessarily the longest
 * common prefix, only a common one).  A slot's head is the next four key
 * bytes after that prefix, read big-endian and zero-padded, so comparing
 * heads as integers orders keys as memcmp does whenever the heads differ.
 * A search compares its key with the prefix once per node, then binary
 * searches the slot array on heads; only equal heads of two keys that both
 * go on past the head need the cells' key bytes.  The first key inserted
 * into an empty node sets the prefix to the whole key; an insert of a key
 * that does not share it lowers it, rewriting every head; a split, merge or
 * rebalance recomputes it from the node's first and last keys.  Cells keep
 * their whole keys: the prefix shortens comparisons, not the stored bytes.
 *
 * Leaf cell:     u16 klen | u8 flags | u8 0 | u32 vlen | key | value or u64
 *                first overflow page (flags & KV_CELL_OVERFLOW)
 *                [| u64 expire_at (flags & KV_CELL_EXPIRES)]
 *                expire_at is the key's absolute expiry time in milliseconds
 *                since the Unix epoch (never 0); a cell without the flag
 *                never expires.  It is the last field, so the key and the
 *                value sit at the same offsets with and without it.
 * Internal cell: u16 klen | u64 child | key
 *
 * An internal node with n cells has n + 1 children: the header's link is
 * child 0 (keys below cell 0's key) and cell i's child is child i + 1 (keys
 * from cell i's key up to, not including, cell i + 1's key).  A leaf's link
 * is the next leaf in key order, 0 for the last one.
 *
 * Overflow page: kv_ovf_hdr, then len bytes of the value; next is the
 * following page of the chain, 0 for the last.  Every page but the last is
 * full, so the chain of a value of vlen bytes has ceil(vlen / (u - 16))
 * pages.
 *
 * Multi-byte fields are in host order (the engine runs on little-endian
 * x86-64 and aarch64 only), heads included: a head is stored as the
 * integer, not as the bytes.  Cells sit at any offset, so they are read and
 * written with memcpy; headers and slots are 8-byte aligned (the pager
 * guarantees it for the page).
 */
#ifndef URKV_BTREE_NODE_H
#define URKV_BTREE_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "urkv pages are little-endian");

/* Page types; 0 is left unused so that a zeroed page is never valid. */
enum kv_page_type {
	KV_PAGE_META = 1,
	KV_PAGE_LEAF = 2,
	KV_PAGE_INTERNAL = 3,
	KV_PAGE_OVERFLOW = 4,
};

/* Header of a leaf or internal node. */
struct kv_node_hdr {
	uint8_t type;	     /* KV_PAGE_LEAF or KV_PAGE_INTERNAL. */
	uint8_t prefix;	     /* Leading bytes every key shares; heads start after them. */
	uint16_t count;	     /* Number of cells (and slots). */
	uint16_t cell_start; /* Offset of the lowest cell byte; u if none. */
	uint16_t frag;	     /* Dead bytes between cell_start and u. */
	uint64_t link;	     /* Leaf: next leaf or 0.  Internal: child 0. */
};
_Static_assert(sizeof(struct kv_node_hdr) == 16, "on-disk node header");

/* One entry of a node's slot array. */
struct kv_slot {
	uint32_t head;	     /* Key bytes prefix .. prefix + 3, big-endian, zero-padded. */
	uint16_t off;	     /* Offset of the cell in the page. */
	uint16_t klen;	     /* Length of the whole key (as in the cell). */
};
_Static_assert(sizeof(struct kv_slot) == 8, "on-disk slot");

/* Header of an overflow page. */
struct kv_ovf_hdr {
	uint8_t type;	     /* KV_PAGE_OVERFLOW. */
	uint8_t reserved[3]; /* Zero. */
	uint32_t len;	     /* Value bytes held by this page. */
	uint64_t next;	     /* Next page of the chain, or 0. */
};
_Static_assert(sizeof(struct kv_ovf_hdr) == 16, "on-disk overflow header");

/* The meta page, named by the pager's root pointer. */
struct kv_btree_meta {
	uint8_t type;	      /* KV_PAGE_META. */
	uint8_t version;      /* KV_BTREE_META_VERSION. */
	uint16_t flags;	      /* KV_META_* flags. */
	uint32_t magic;	      /* KV_BTREE_META_MAGIC. */
	uint32_t page_usable; /* page_usable the tree was built with. */
	uint32_t height;      /* Levels: 1 when the root is a leaf. */
	uint64_t root;	      /* Root node. */
	uint64_t count;	      /* Keys in the tree, if KV_BTREE_META_COUNTED; else 0. */
};
_Static_assert(sizeof(struct kv_btree_meta) == 32, "on-disk meta page");

#define KV_BTREE_META_MAGIC 0x42564b55u /* "UKVB" read as little-endian bytes. */
/* 2: slots of 8 bytes with key heads, and the node prefix (was 2-byte slots). */
#define KV_BTREE_META_VERSION 2
#define KV_BTREE_META_COUNTED 0x0001u /* count is maintained by every insert and delete. */

#define KV_NODE_HDR_SIZE sizeof(struct kv_node_hdr)
#define KV_OVF_HDR_SIZE sizeof(struct kv_ovf_hdr)
#define KV_SLOT_SIZE 8u
#define KV_HEAD_SIZE 4u		/* Key bytes a head holds. */
#define KV_PREFIX_MAX 255u	/* Largest node prefix (it is a uint8_t). */
#define KV_LEAF_CELL_HDR 8u
#define KV_INTERNAL_CELL_HDR 10u
#define KV_CELL_OVERFLOW 0x01u /* Leaf cell flag: the value is in overflow pages. */
#define KV_CELL_EXPIRES 0x02u  /* Leaf cell flag: a u64 expire_at ends the cell. */
#define KV_CELL_EXPIRE_SIZE 8u /* Bytes of expire_at. */
/* Largest internal cell: a maximal key plus its header. */
#define KV_INTERNAL_CELL_MAX (KV_INTERNAL_CELL_HDR + 1024u)

/* A decoded leaf cell; pointers point into the page. */
struct kv_leaf_cell {
	const uint8_t *key; /* Key bytes. */
	uint16_t klen;	    /* Key length. */
	bool overflow;	    /* Value lives in an overflow chain. */
	uint32_t vlen;	    /* Full value length. */
	const uint8_t *val; /* Inline value bytes (when !overflow). */
	uint64_t ovf;	    /* First overflow page (when overflow). */
	uint64_t expire_at; /* Absolute expiry in ms since the epoch; 0 = never. */
};

static inline struct kv_node_hdr *kv_node_hdr(void *pg)
{
	return (struct kv_node_hdr *)pg;
}

static inline const struct kv_node_hdr *kv_node_hdr_const(const void *pg)
{
	return (const struct kv_node_hdr *)pg;
}

static inline unsigned kv_node_count(const void *pg)
{
	return kv_node_hdr_const(pg)->count;
}

static inline bool kv_node_is_leaf(const void *pg)
{
	return kv_node_hdr_const(pg)->type == KV_PAGE_LEAF;
}

static inline uint16_t kv_ld16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint32_t kv_ld32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint64_t kv_ld64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline void kv_st16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, sizeof(v));
}

static inline void kv_st64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v));
}

static inline struct kv_slot *kv_node_slots(void *pg)
{
	return (struct kv_slot *)((uint8_t *)pg + KV_NODE_HDR_SIZE);
}

static inline const struct kv_slot *kv_node_slots_const(const void *pg)
{
	return (const struct kv_slot *)((const uint8_t *)pg + KV_NODE_HDR_SIZE);
}

/* Offset of cell i, read from slot i. */
static inline unsigned kv_node_slot(const void *pg, unsigned i)
{
	return kv_node_slots_const(pg)[i].off;
}

/*
 * Head of a key suffix of len bytes: its first four bytes as a big-endian
 * integer, zero-padded, so that heads compare as the bytes do.
 */
static inline uint32_t kv_key_head(const uint8_t *k, size_t len)
{
	uint32_t h;

	if (len >= KV_HEAD_SIZE) {
		memcpy(&h, k, sizeof(h));
		return __builtin_bswap32(h);
	}
	h = 0;
	for (size_t i = 0; i < KV_HEAD_SIZE; i++)
		h = h << 8 | (i < len ? k[i] : 0u);
	return h;
}

static inline const uint8_t *kv_node_cell(const void *pg, unsigned i)
{
	return (const uint8_t *)pg + kv_node_slot(pg, i);
}

/* Key of cell i of a leaf or internal node. */
static inline const uint8_t *kv_node_key(const void *pg, unsigned i, uint16_t *klen)
{
	const uint8_t *c = kv_node_cell(pg, i);

	*klen = kv_ld16(c);
	return c + (kv_node_is_leaf(pg) ? KV_LEAF_CELL_HDR : KV_INTERNAL_CELL_HDR);
}

/*
 * memcmp of n bytes, inline and eight at a time (as big-endian integers):
 * the search compares node prefixes and key tails of a dozen bytes, where
 * a call into libc's memcmp costs more than the comparison.
 */
static inline int kv_bytes_cmp(const uint8_t *a, const uint8_t *b, size_t n)
{
	for (; n >= sizeof(uint64_t); a += 8, b += 8, n -= 8) {
		uint64_t x = kv_ld64(a), y = kv_ld64(b);

		if (x != y)
			return __builtin_bswap64(x) < __builtin_bswap64(y) ? -1 : 1;
	}
	for (; n > 0; a++, b++, n--)
		if (*a != *b)
			return *a < *b ? -1 : 1;
	return 0;
}

/* Compares two keys as unsigned bytes; a prefix sorts first. */
static inline int kv_key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
	int r = memcmp(a, b, alen < blen ? alen : blen);

	if (r != 0)
		return r;
	return (alen > blen) - (alen < blen);
}

/* Size of a leaf cell holding a key of klen and an inline or overflow value. */
static inline size_t kv_leaf_cell_size(size_t klen, size_t vlen, bool overflow)
{
	return KV_LEAF_CELL_HDR + klen + (overflow ? sizeof(uint64_t) : vlen);
}

/* The same with an expiry time when expires. */
static inline size_t kv_leaf_cell_size_x(size_t klen, size_t vlen, bool overflow, bool expires)
{
	return kv_leaf_cell_size(klen, vlen, overflow) + (expires ? KV_CELL_EXPIRE_SIZE : 0);
}

static inline size_t kv_internal_cell_size(size_t klen)
{
	return KV_INTERNAL_CELL_HDR + klen;
}

/* An empty node (prefix 0). */
void kv_node_init(void *pg, size_t u, uint8_t type, uint64_t link);
/*
 * Sets the node's prefix to the common prefix of its first and last keys
 * (at most KV_PREFIX_MAX) and rewrites every head; for a node just rebuilt
 * by a split, a merge or a rebalance.  O(count).
 */
void kv_node_refresh_prefix(void *pg);
/* Bytes the cells and slots occupy, fragmentation excluded. */
size_t kv_node_used(const void *pg, size_t u);
/* Size of cell i, slot excluded. */
size_t kv_node_cell_size(const void *pg, unsigned i);
/* Size of the cell at c in a node of the given type, slot excluded. */
size_t kv_cell_size(const uint8_t *c, bool leaf);

void kv_leaf_cell_decode(const uint8_t *c, struct kv_leaf_cell *out);
/* Encodes a leaf cell into buf; val is copied inline unless overflow. */
size_t kv_leaf_cell_encode(uint8_t *buf, const void *key, size_t klen,
			   const void *val, size_t vlen, bool overflow, uint64_t ovf);
/* The same with an expiry time (0: none, the cell gets no KV_CELL_EXPIRES). */
size_t kv_leaf_cell_encode_x(uint8_t *buf, const void *key, size_t klen,
			     const void *val, size_t vlen, bool overflow, uint64_t ovf,
			     uint64_t expire_at);
size_t kv_internal_cell_encode(uint8_t *buf, const void *key, size_t klen,
			       uint64_t child);
static inline uint64_t kv_internal_cell_child(const uint8_t *c)
{
	return kv_ld64(c + 2);
}

/*
 * Index of the first cell whose key is >= key; *found tells whether it is
 * equal.  Works on leaves and internal nodes.  Compares the key with the
 * node prefix once (cell 0's key bytes), then searches the heads.
 */
unsigned kv_node_lower_bound(const void *pg, const void *key, size_t klen, bool *found);
/*
 * A guess at kv_node_lower_bound's answer from the slots' key heads alone,
 * reading no cell: the first slot whose head is not below the key's (past
 * the node's prefix, which is assumed to match).  For prefetching: where
 * heads tie, or the prefix differs, the guess may be off.
 */
unsigned kv_node_guess(const void *pg, const void *key, size_t klen);
/* Index (0..count) of the child of an internal node whose range holds key. */
unsigned kv_internal_child_index(const void *pg, const void *key, size_t klen);
uint64_t kv_internal_child(const void *pg, unsigned ci);
void kv_internal_set_child(void *pg, unsigned ci, uint64_t child);

/*
 * Inserts a copy of the size-byte cell as cell idx (0..count), compacting
 * through the u-byte buffer tmp if needed.  Returns false, leaving the page
 * untouched, if the cell and its slot do not fit.
 */
bool kv_node_insert(void *pg, size_t u, unsigned idx, const void *cell,
		    size_t size, void *tmp);
/* Removes cell idx. */
void kv_node_remove(void *pg, size_t u, unsigned idx);

/*
 * Checks the header of a node against a page of u bytes: its type, and that
 * the slot array and the cell area fit.  Returns NULL or a static
 * description of the problem.  Reads only the header's cache line; the
 * first step of kv_node_check_cells().
 */
static inline const char *kv_node_check_header(const void *pg, size_t u)
{
	const struct kv_node_hdr *h = kv_node_hdr_const(pg);

	if (h->type != KV_PAGE_LEAF && h->type != KV_PAGE_INTERNAL)
		return "not a node page";
	if (h->cell_start > u ||
	    KV_NODE_HDR_SIZE + (size_t)KV_SLOT_SIZE * h->count > h->cell_start)
		return "slot array overlaps the cell area";
	if (h->frag > u - h->cell_start)
		return "fragment count exceeds the cell area";
	return NULL;
}

/*
 * Checks everything of a node that a search, a cell decode or an insert
 * reads, against a page of u bytes: the header; for each slot, that its
 * cell lies in the cell area with its key, value and expiry, has known
 * flags, a key of 1..KV_BTREE_KEY_MAX bytes (as the slot says) that starts
 * with the node prefix, a head that matches, and an overflow value of at
 * most KV_BTREE_BIG_MAX bytes; and that the cells and frag fill the cell
 * area.  Returns NULL or a static description of the first problem.
 * O(count): a read check (kv_pps_page_check) and, for a pager that has
 * none, node_get's check of every visit.  A node that passes can be
 * searched and decoded without a read outside the page; whether its keys
 * are in order and its cells apart is for kv_node_check_layout().
 */
const char *kv_node_check_cells(const void *pg, size_t u);

/*
 * kv_node_check_cells(), and that no two cells overlap (tmp: u bytes).
 * O(count log count); for the tree checker.
 */
const char *kv_node_check_layout(const void *pg, size_t u, void *tmp);

#endif /* URKV_BTREE_NODE_H */
