/* SPDX-License-Identifier: MIT */
/*
 * The slotted-page node of the urkv B+tree: cell encoding, binary search
 * over key heads, insertion with compaction, removal, the node prefix, and
 * layout checks.  These functions work on one page buffer and know nothing
 * of pagers; btree_node.h describes the format.
 *
 * The prefix and the heads are derived data: every function that adds,
 * moves or removes a slot keeps hdr.prefix a common prefix of all keys and
 * each slot's head equal to kv_key_head() of its key after that prefix
 * (kv_node_check_layout() verifies both).  kv_node_insert() sets the
 * prefix to the whole key when it inserts into an empty node and lowers it
 * to what a new key shares, so inserts alone keep it the longest common
 * prefix (up to KV_PREFIX_MAX); removals leave it as it was, shorter than
 * it could be, until kv_node_refresh_prefix() recomputes it.
 */
#include "btree_node.h"

#include <stdlib.h>

#include "base/assert.h"
#include "btree.h"

void kv_node_init(void *pg, size_t u, uint8_t type, uint64_t link)
{
	struct kv_node_hdr *h = kv_node_hdr(pg);

	URT_ASSERT(u <= UINT16_MAX);
	memset(pg, 0, u);
	h->type = type;
	h->prefix = 0;
	h->count = 0;
	h->cell_start = (uint16_t)u;
	h->frag = 0;
	h->link = link;
}

size_t kv_node_used(const void *pg, size_t u)
{
	const struct kv_node_hdr *h = kv_node_hdr_const(pg);

	return KV_SLOT_SIZE * h->count + (u - h->cell_start) - h->frag;
}

size_t kv_cell_size(const uint8_t *c, bool leaf)
{
	uint16_t klen = kv_ld16(c);

	if (!leaf)
		return kv_internal_cell_size(klen);
	return kv_leaf_cell_size_x(klen, kv_ld32(c + 4), c[2] & KV_CELL_OVERFLOW,
				   c[2] & KV_CELL_EXPIRES);
}

size_t kv_node_cell_size(const void *pg, unsigned i)
{
	return kv_cell_size(kv_node_cell(pg, i), kv_node_is_leaf(pg));
}

void kv_leaf_cell_decode(const uint8_t *c, struct kv_leaf_cell *out)
{
	out->klen = kv_ld16(c);
	out->overflow = c[2] & KV_CELL_OVERFLOW;
	out->vlen = kv_ld32(c + 4);
	out->key = c + KV_LEAF_CELL_HDR;
	out->val = NULL;
	out->ovf = 0;
	out->expire_at = 0;
	if (out->overflow)
		out->ovf = kv_ld64(out->key + out->klen);
	else
		out->val = out->key + out->klen;
	if (c[2] & KV_CELL_EXPIRES)
		out->expire_at = kv_ld64(c + kv_leaf_cell_size(out->klen, out->vlen, out->overflow));
}

size_t kv_leaf_cell_encode(uint8_t *buf, const void *key, size_t klen,
			   const void *val, size_t vlen, bool overflow, uint64_t ovf)
{
	return kv_leaf_cell_encode_x(buf, key, klen, val, vlen, overflow, ovf, 0);
}

size_t kv_leaf_cell_encode_x(uint8_t *buf, const void *key, size_t klen,
			     const void *val, size_t vlen, bool overflow, uint64_t ovf,
			     uint64_t expire_at)
{
	uint32_t vlen32 = (uint32_t)vlen;
	size_t size = kv_leaf_cell_size(klen, vlen, overflow);

	kv_st16(buf, (uint16_t)klen);
	buf[2] = (uint8_t)((overflow ? KV_CELL_OVERFLOW : 0) | (expire_at ? KV_CELL_EXPIRES : 0));
	buf[3] = 0;
	memcpy(buf + 4, &vlen32, sizeof(vlen32));
	memcpy(buf + KV_LEAF_CELL_HDR, key, klen);
	if (overflow)
		kv_st64(buf + KV_LEAF_CELL_HDR + klen, ovf);
	else if (vlen > 0)
		memmove(buf + KV_LEAF_CELL_HDR + klen, val, vlen);
	if (expire_at == 0)
		return size;
	kv_st64(buf + size, expire_at);
	return size + KV_CELL_EXPIRE_SIZE;
}

size_t kv_internal_cell_encode(uint8_t *buf, const void *key, size_t klen,
			       uint64_t child)
{
	kv_st16(buf, (uint16_t)klen);
	kv_st64(buf + 2, child);
	memcpy(buf + KV_INTERNAL_CELL_HDR, key, klen);
	return kv_internal_cell_size(klen);
}

/* Key bytes and length of cell c of a node of the given type. */
static const uint8_t *cell_key(const uint8_t *c, bool leaf)
{
	return c + (leaf ? KV_LEAF_CELL_HDR : KV_INTERNAL_CELL_HDR);
}

/* Length of the common prefix of a and b, at most max. */
static size_t common_prefix(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
			    size_t max)
{
	size_t n = 0;

	if (max > alen)
		max = alen;
	if (max > blen)
		max = blen;
	while (n < max && a[n] == b[n])
		n++;
	return n;
}

unsigned kv_node_lower_bound(const void *pg, const void *key, size_t klen, bool *found)
{
	const struct kv_node_hdr *h = kv_node_hdr_const(pg);
	const struct kv_slot *slot = kv_node_slots_const(pg);
	const uint8_t *k = key;
	bool leaf = h->type == KV_PAGE_LEAF;
	unsigned lo = 0, hi = h->count;
	size_t p = h->prefix, ks;
	uint32_t kh;

	*found = false;
	if (hi == 0)
		return 0;
	if (p > 0) {
		/* Every key starts with the prefix: outside it, the key sorts before or after all. */
		const uint8_t *k0 = cell_key((const uint8_t *)pg + slot[0].off, leaf);
		int r = kv_bytes_cmp(k, k0, klen < p ? klen : p);

		if (r < 0 || (r == 0 && klen < p))
			return 0;
		if (r > 0)
			return hi;
	}
	ks = klen - p;
	kh = kv_key_head(k + p, ks);
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		uint32_t mh = slot[mid].head;
		size_t ms = slot[mid].klen - p;
		int r;

		if (mh != kh) {
			r = mh < kh ? -1 : 1;
		} else if (ms <= KV_HEAD_SIZE || ks <= KV_HEAD_SIZE) {
			/* Equal heads: a suffix that ends within its head is a prefix of the other. */
			r = (ms > ks) - (ms < ks);
		} else {
			const uint8_t *mk = cell_key((const uint8_t *)pg + slot[mid].off, leaf);
			size_t rest = (ms < ks ? ms : ks) - KV_HEAD_SIZE;

			r = kv_bytes_cmp(mk + p + KV_HEAD_SIZE, k + p + KV_HEAD_SIZE, rest);
			if (r == 0)
				r = (ms > ks) - (ms < ks);
		}
		if (r < 0) {
			lo = mid + 1;
		} else if (r > 0) {
			hi = mid;
		} else {
			/* Keys are unique: the equal one is the lower bound. */
			*found = true;
			return mid;
		}
	}
	return lo;
}

unsigned kv_node_guess(const void *pg, const void *key, size_t klen)
{
	const struct kv_node_hdr *h = kv_node_hdr_const(pg);
	const struct kv_slot *slot = kv_node_slots_const(pg);
	size_t p = h->prefix < klen ? h->prefix : klen;
	uint32_t kh = kv_key_head((const uint8_t *)key + p, klen - p);
	unsigned lo = 0, hi = h->count;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;

		if (slot[mid].head < kh)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Rewrites every head of the node for prefix p. */
static void set_prefix(void *pg, size_t p)
{
	struct kv_node_hdr *h = kv_node_hdr(pg);
	struct kv_slot *slot = kv_node_slots(pg);
	bool leaf = h->type == KV_PAGE_LEAF;

	URT_ASSERT(p <= KV_PREFIX_MAX);
	h->prefix = (uint8_t)p;
	for (unsigned i = 0; i < h->count; i++) {
		const uint8_t *k = cell_key((const uint8_t *)pg + slot[i].off, leaf);

		URT_ASSERT(slot[i].klen >= p);
		slot[i].head = kv_key_head(k + p, slot[i].klen - p);
	}
}

void kv_node_refresh_prefix(void *pg)
{
	const struct kv_slot *slot = kv_node_slots_const(pg);
	unsigned n = kv_node_count(pg);
	bool leaf = kv_node_is_leaf(pg);
	size_t p = 0;

	if (n > 1) {
		const uint8_t *k0 = cell_key((const uint8_t *)pg + slot[0].off, leaf);

		p = common_prefix(k0, slot[0].klen,
				  cell_key((const uint8_t *)pg + slot[n - 1].off, leaf),
				  slot[n - 1].klen, KV_PREFIX_MAX);
		/*
		 * In key order every key between shares it; keys a damaged page
		 * has out of order may not, and set_prefix asserts that all do.
		 */
		for (unsigned i = 1; i + 1 < n && p > 0; i++)
			p = common_prefix(k0, p, cell_key((const uint8_t *)pg + slot[i].off, leaf),
					  slot[i].klen, p);
	}
	if (p != kv_node_hdr(pg)->prefix)
		set_prefix(pg, p);
}

unsigned kv_internal_child_index(const void *pg, const void *key, size_t klen)
{
	bool found;
	unsigned i = kv_node_lower_bound(pg, key, klen, &found);

	/* A key equal to separator i belongs to the child right of it. */
	return found ? i + 1 : i;
}

uint64_t kv_internal_child(const void *pg, unsigned ci)
{
	if (ci == 0)
		return kv_node_hdr_const(pg)->link;
	return kv_internal_cell_child(kv_node_cell(pg, ci - 1));
}

void kv_internal_set_child(void *pg, unsigned ci, uint64_t child)
{
	if (ci == 0)
		kv_node_hdr(pg)->link = child;
	else
		kv_st64((uint8_t *)pg + kv_node_slot(pg, ci - 1) + 2, child);
}

/* Rewrites the cells contiguously at the end of the page, dropping frag. */
static void node_compact(void *pg, size_t u, void *tmp)
{
	struct kv_node_hdr *h = kv_node_hdr(pg);
	bool leaf = kv_node_is_leaf(pg);
	uint8_t *p = pg;
	size_t end = u;

	memcpy(tmp, pg, u);
	for (unsigned i = 0; i < h->count; i++) {
		const uint8_t *c = kv_node_cell(tmp, i);
		size_t sz = kv_cell_size(c, leaf);

		end -= sz;
		memcpy(p + end, c, sz);
		/* Heads and key lengths stay: only the cell moved. */
		kv_node_slots(pg)[i].off = (uint16_t)end;
	}
	h->cell_start = (uint16_t)end;
	h->frag = 0;
	/* Keep the free gap zeroed so that page images compress and compare. */
	memset(p + KV_NODE_HDR_SIZE + KV_SLOT_SIZE * h->count, 0,
	       end - KV_NODE_HDR_SIZE - KV_SLOT_SIZE * h->count);
}

bool kv_node_insert(void *pg, size_t u, unsigned idx, const void *cell,
		    size_t size, void *tmp)
{
	struct kv_node_hdr *h = kv_node_hdr(pg);
	struct kv_slot *slot = kv_node_slots(pg);
	bool leaf = h->type == KV_PAGE_LEAF;
	uint16_t klen = kv_ld16(cell);
	const uint8_t *key = cell_key(cell, leaf);
	uint8_t *p = pg;
	size_t slots_end = KV_NODE_HDR_SIZE + KV_SLOT_SIZE * h->count;
	size_t gap = h->cell_start - slots_end;

	URT_ASSERT(idx <= h->count);
	if (KV_SLOT_SIZE + size > gap + h->frag)
		return false;
	if (KV_SLOT_SIZE + size > gap)
		node_compact(pg, u, tmp);
	if (h->count == 0) {
		/* A lone key shares all of itself: the prefix follows the keys from the first on. */
		h->prefix = (uint8_t)(klen < KV_PREFIX_MAX ? klen : KV_PREFIX_MAX);
	} else if (h->prefix > 0) {
		/* A key outside the prefix lowers it to what the key shares with the others. */
		const uint8_t *k0 = cell_key(p + slot[0].off, leaf);
		size_t common = common_prefix(key, klen, k0, slot[0].klen, h->prefix);

		if (common < h->prefix)
			set_prefix(pg, common);
	}
	h->cell_start = (uint16_t)(h->cell_start - size);
	memcpy(p + h->cell_start, cell, size);
	memmove(&slot[idx + 1], &slot[idx], KV_SLOT_SIZE * (h->count - idx));
	slot[idx].off = h->cell_start;
	slot[idx].klen = klen;
	slot[idx].head = kv_key_head(key + h->prefix, klen - h->prefix);
	h->count++;
	return true;
}

void kv_node_remove(void *pg, size_t u, unsigned idx)
{
	struct kv_node_hdr *h = kv_node_hdr(pg);
	uint8_t *p = pg;
	unsigned off;
	size_t sz;

	URT_ASSERT(idx < h->count);
	off = kv_node_slot(pg, idx);
	sz = kv_node_cell_size(pg, idx);
	memset(p + off, 0, sz);
	if (off == h->cell_start)
		h->cell_start = (uint16_t)(h->cell_start + sz);
	else
		h->frag = (uint16_t)(h->frag + sz);
	memmove(&kv_node_slots(pg)[idx], &kv_node_slots(pg)[idx + 1],
		KV_SLOT_SIZE * (h->count - idx - 1));
	h->count--;
	memset(&kv_node_slots(pg)[h->count], 0, KV_SLOT_SIZE);
	/* With no live cell left, all remaining dead bytes are reclaimed. */
	if (h->count == 0) {
		h->cell_start = (uint16_t)u;
		h->frag = 0;
		h->prefix = 0;
	}
}

/* A cell's extent, for the overlap check. */
struct cell_extent {
	uint16_t off; /* Offset of the cell. */
	uint16_t len; /* Size of the cell. */
};

static int extent_cmp(const void *a, const void *b)
{
	const struct cell_extent *x = a, *y = b;

	return (x->off > y->off) - (x->off < y->off);
}

const char *kv_node_check_cells(const void *pg, size_t u)
{
	const struct kv_node_hdr *h = kv_node_hdr_const(pg);
	const struct kv_slot *slot = kv_node_slots_const(pg);
	bool leaf = h->type == KV_PAGE_LEAF;
	size_t hdr = leaf ? KV_LEAF_CELL_HDR : KV_INTERNAL_CELL_HDR;
	const char *why = kv_node_check_header(pg, u);
	const uint8_t *key0 = NULL;
	size_t live = 0;

	if (why)
		return why;
	for (unsigned i = 0; i < h->count; i++) {
		unsigned off = slot[i].off;
		const uint8_t *c = (const uint8_t *)pg + off, *key = c + hdr;
		size_t sz;

		/* The cell's header first: its size is read from it. */
		if (off < h->cell_start || off + hdr > u)
			return "slot points outside the cell area";
		sz = kv_cell_size(c, leaf);
		if (off + sz > u)
			return "cell runs past the end of the page";
		if (leaf && (c[2] & ~(KV_CELL_OVERFLOW | KV_CELL_EXPIRES)))
			return "unknown leaf cell flags";
		if (leaf && (c[2] & KV_CELL_OVERFLOW) && kv_ld32(c + 4) > KV_BTREE_BIG_MAX)
			return "value length out of range";
		if (slot[i].klen != kv_ld16(c))
			return "slot key length differs from its cell";
		if (slot[i].klen == 0 || slot[i].klen > KV_BTREE_KEY_MAX)
			return "key length out of range";
		if (slot[i].klen < h->prefix)
			return "key shorter than the node prefix";
		if (i == 0)
			key0 = key;
		if (memcmp(key, key0, h->prefix) != 0)
			return "key outside the node prefix";
		if (slot[i].head != kv_key_head(key + h->prefix, slot[i].klen - h->prefix))
			return "slot head differs from its key";
		live += sz;
	}
	/* So a compaction packs the cells into [cell_start, u) (node_compact). */
	if (live + h->frag != u - h->cell_start)
		return "cell bytes and fragments do not add up to the cell area";
	return NULL;
}

const char *kv_node_check_layout(const void *pg, size_t u, void *tmp)
{
	const struct kv_node_hdr *h = kv_node_hdr_const(pg);
	struct cell_extent *ext = tmp;
	const char *why = kv_node_check_cells(pg, u);

	if (why)
		return why;
	/* Each extent takes 4 bytes and each cell at least 17 with its slot, so tmp fits. */
	for (unsigned i = 0; i < h->count; i++) {
		ext[i].off = (uint16_t)kv_node_slot(pg, i);
		ext[i].len = (uint16_t)kv_node_cell_size(pg, i);
	}
	qsort(ext, h->count, sizeof(*ext), extent_cmp);
	for (unsigned i = 1; i < h->count; i++)
		if (ext[i - 1].off + ext[i - 1].len > ext[i].off)
			return "cells overlap";
	return NULL;
}
