/* SPDX-License-Identifier: MIT */
/*
 * The slotted-page node of the urkv B+tree: cell encoding, binary search,
 * insertion with compaction, removal, and layout checks.  These functions
 * work on one page buffer and know nothing of pagers; btree_node.h describes
 * the format.
 */
#include "btree_node.h"

#include <stdlib.h>

#include "base/assert.h"

void kv_node_init(void *pg, size_t u, uint8_t type, uint64_t link)
{
	struct kv_node_hdr *h = kv_node_hdr(pg);

	URT_ASSERT(u <= UINT16_MAX);
	memset(pg, 0, u);
	h->type = type;
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

unsigned kv_node_lower_bound(const void *pg, const void *key, size_t klen, bool *found)
{
	unsigned lo = 0, hi = kv_node_count(pg);

	*found = false;
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		uint16_t mlen;
		const uint8_t *mkey = kv_node_key(pg, mid, &mlen);
		int r = kv_key_cmp(mkey, mlen, key, klen);

		if (r < 0) {
			lo = mid + 1;
		} else {
			if (r == 0)
				*found = true;
			hi = mid;
		}
	}
	return lo;
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
		kv_st16(p + KV_NODE_HDR_SIZE + KV_SLOT_SIZE * i, (uint16_t)end);
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
	uint8_t *p = pg;
	size_t slots_end = KV_NODE_HDR_SIZE + KV_SLOT_SIZE * h->count;
	size_t gap = h->cell_start - slots_end;

	URT_ASSERT(idx <= h->count);
	if (KV_SLOT_SIZE + size > gap + h->frag)
		return false;
	if (KV_SLOT_SIZE + size > gap)
		node_compact(pg, u, tmp);
	h->cell_start = (uint16_t)(h->cell_start - size);
	memcpy(p + h->cell_start, cell, size);
	memmove(p + KV_NODE_HDR_SIZE + KV_SLOT_SIZE * (idx + 1),
		p + KV_NODE_HDR_SIZE + KV_SLOT_SIZE * idx,
		KV_SLOT_SIZE * (h->count - idx));
	kv_st16(p + KV_NODE_HDR_SIZE + KV_SLOT_SIZE * idx, h->cell_start);
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
	memmove(p + KV_NODE_HDR_SIZE + KV_SLOT_SIZE * idx,
		p + KV_NODE_HDR_SIZE + KV_SLOT_SIZE * (idx + 1),
		KV_SLOT_SIZE * (h->count - idx - 1));
	h->count--;
	kv_st16(p + KV_NODE_HDR_SIZE + KV_SLOT_SIZE * h->count, 0);
	/* With no live cell left, all remaining dead bytes are reclaimed. */
	if (h->count == 0) {
		h->cell_start = (uint16_t)u;
		h->frag = 0;
	}
}

const char *kv_node_check_header(const void *pg, size_t u)
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

const char *kv_node_check_layout(const void *pg, size_t u, void *tmp)
{
	const struct kv_node_hdr *h = kv_node_hdr_const(pg);
	struct cell_extent *ext = tmp;
	bool leaf = kv_node_is_leaf(pg);
	const char *why = kv_node_check_header(pg, u);
	size_t live = 0;

	if (why)
		return why;
	/* Each extent takes 4 bytes and each cell at least 11, so tmp fits. */
	for (unsigned i = 0; i < h->count; i++) {
		unsigned off = kv_node_slot(pg, i);
		size_t hdr = leaf ? KV_LEAF_CELL_HDR : KV_INTERNAL_CELL_HDR;
		size_t sz;

		if (off < h->cell_start || off + hdr > u)
			return "slot points outside the cell area";
		sz = kv_node_cell_size(pg, i);
		if (off + sz > u)
			return "cell runs past the end of the page";
		if (leaf && (kv_node_cell(pg, i)[2] & ~(KV_CELL_OVERFLOW | KV_CELL_EXPIRES)))
			return "unknown leaf cell flags";
		ext[i].off = (uint16_t)off;
		ext[i].len = (uint16_t)sz;
		live += sz;
	}
	qsort(ext, h->count, sizeof(*ext), extent_cmp);
	for (unsigned i = 1; i < h->count; i++)
		if (ext[i - 1].off + ext[i - 1].len > ext[i].off)
			return "cells overlap";
	if (live + h->frag != u - h->cell_start)
		return "cell bytes and fragments do not add up to the cell area";
	return NULL;
}
