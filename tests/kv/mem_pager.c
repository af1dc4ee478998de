/* SPDX-License-Identifier: MIT */
/*
 * The in-memory test pager.  Page numbers index a table that grows as pages
 * are allocated; page 0 is never used.  Freed pages go on a LIFO free list,
 * so a rolled-back operation replayed from the same snapshot allocates the
 * same page numbers and makes the same calls.
 */
#include "mem_pager.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Page buffers are aligned like a page store frame's usable area. */
#define PAGE_ALIGN 64

struct mp_page {
	uint8_t *data;	 /* Page bytes, or NULL if the page is free. */
	uint8_t *shadow; /* Copy taken at a read-only pin, or NULL. */
	unsigned pins;	 /* Pins held. */
	bool writable;	 /* Pinned with write intent during this pin period. */
	uint64_t dirty_epoch; /* Value of the pager's epoch when last given write intent. */
};

/* A saved state: page bytes, free list and root. */
struct mp_snap {
	uint8_t **data;	   /* Copy of each page's bytes, NULL for free pages. */
	size_t npages;	   /* Entries of data. */
	uint64_t *freel;   /* Copy of the free list. */
	size_t nfree;	   /* Entries of freel. */
	uint64_t root;	   /* Root pointer. */
	uint64_t live;	   /* Live pages. */
};

struct mem_pager {
	struct kv_pager_ops ops; /* Function table with this pager's page_usable. */
	size_t u;		 /* Bytes per page. */
	uint64_t pages_max;	 /* Cap on live pages, 0 for none. */
	bool relocate;		 /* Move bytes on first pin and make_writable(). */
	struct mp_page *pages;	 /* Page table indexed by page number. */
	size_t npages;		 /* Entries of pages (highest page number + 1). */
	uint64_t *freel;	 /* Free page numbers, LIFO. */
	size_t nfree, free_cap;	 /* Entries used and allocated in freel. */
	uint64_t root;		 /* The durable root pointer. */
	uint64_t live;		 /* Pages allocated and not freed. */
	unsigned pinned;	 /* Pins held now. */
	unsigned pinned_max;	 /* Most pins held at once. */
	uint64_t calls;		 /* Fallible calls made. */
	uint64_t write_intents;	 /* Successful get(write), make_writable(), alloc(). */
	uint64_t ranged_writes;	 /* Successful write_at() calls. */
	uint64_t epoch;		 /* Current dirty-tracking epoch, from 1. */
	uint64_t dirty;		 /* Distinct pages given write intent in this epoch. */
	uint64_t changes;	 /* set_root() and rollback calls, for the pager epoch. */
	uint64_t fail_at;	 /* Value of calls at which to fail; 0 for none. */
	int fail_err;		 /* Error to fail with. */
	struct mp_snap snap;	 /* Last snapshot; snap.data NULL if none. */
};

static struct mem_pager *from_pager(struct kv_pager *p)
{
	return (struct mem_pager *)p;
}

static void die(const char *what, uint64_t pgno)
{
	fprintf(stderr, "mem_pager: %s (page %llu)\n", what, (unsigned long long)pgno);
	abort();
}

static uint8_t *page_alloc_bytes(size_t u)
{
	void *p;

	if (posix_memalign(&p, PAGE_ALIGN, u) != 0)
		die("out of memory", 0);
	return p;
}

/* Counts a fallible call; returns the injected error if this is the one. */
static int mp_call(struct mem_pager *mp)
{
	mp->calls++;
	if (mp->fail_at != 0 && mp->calls == mp->fail_at) {
		mp->fail_at = 0;
		return mp->fail_err;
	}
	return 0;
}

static struct mp_page *mp_page(struct mem_pager *mp, uint64_t pgno)
{
	if (pgno == 0 || pgno >= mp->npages || mp->pages[pgno].data == NULL)
		die("access to a page that is not allocated", pgno);
	return &mp->pages[pgno];
}

/*
 * A fallible call on allocated page pgno: counts the call and returns the
 * injected error if this is the one; else 0, with the page in *pg.
 */
static int mp_call_page(struct mem_pager *mp, uint64_t pgno, struct mp_page **pg)
{
	int rc = mp_call(mp);

	if (rc == 0)
		*pg = mp_page(mp, pgno);
	return rc;
}

/* Moves a page's bytes to a fresh buffer, so stale pointers hit freed memory. */
static void mp_relocate(struct mem_pager *mp, struct mp_page *pg)
{
	uint8_t *n = page_alloc_bytes(mp->u);

	memcpy(n, pg->data, mp->u);
	free(pg->data);
	pg->data = n;
}

/* Counts a write intent and, once per epoch, the page as dirty. */
static void mp_intent(struct mem_pager *mp, struct mp_page *pg)
{
	mp->write_intents++;
	if (pg->dirty_epoch != mp->epoch) {
		pg->dirty_epoch = mp->epoch;
		mp->dirty++;
	}
}

static void mp_pin(struct mem_pager *mp, struct mp_page *pg)
{
	pg->pins++;
	mp->pinned++;
	if (mp->pinned > mp->pinned_max)
		mp->pinned_max = mp->pinned;
}

static int mp_get(struct kv_pager *p, uint64_t pgno, bool write, void **data)
{
	struct mem_pager *mp = from_pager(p);
	struct mp_page *pg;
	int rc = mp_call_page(mp, pgno, &pg);

	if (rc != 0)
		return rc;
	if (pg->pins == 0) {
		if (mp->relocate)
			mp_relocate(mp, pg);
		pg->writable = write;
		if (!write) {
			pg->shadow = page_alloc_bytes(mp->u);
			memcpy(pg->shadow, pg->data, mp->u);
		}
	} else if (write) {
		pg->writable = true;
	}
	if (write)
		mp_intent(mp, pg);
	mp_pin(mp, pg);
	*data = pg->data;
	return 0;
}

static int mp_make_writable(struct kv_pager *p, uint64_t pgno, void **data)
{
	struct mem_pager *mp = from_pager(p);
	struct mp_page *pg;
	int rc = mp_call_page(mp, pgno, &pg);

	if (rc != 0)
		return rc;
	if (pg->pins == 0)
		die("make_writable of an unpinned page", pgno);
	if (!pg->writable && pg->shadow != NULL &&
	    memcmp(pg->shadow, pg->data, mp->u) != 0)
		die("page modified before make_writable", pgno);
	pg->writable = true;
	mp_intent(mp, pg);
	if (mp->relocate && pg->pins == 1)
		mp_relocate(mp, pg);
	*data = pg->data;
	return 0;
}

/* write_at as the tree may expect it of any pager: make_writable, then the copy. */
static int mp_write_at(struct kv_pager *p, uint64_t pgno, size_t off, const void *src, size_t len)
{
	struct mem_pager *mp = from_pager(p);
	void *data;
	int rc = mp_make_writable(p, pgno, &data);

	if (rc != 0)
		return rc;
	if (off > mp->u || len > mp->u - off)
		die("write_at past the end of the page", pgno);
	memcpy((uint8_t *)data + off, src, len);
	mp->ranged_writes++;
	return 0;
}

static void mp_put(struct kv_pager *p, uint64_t pgno)
{
	struct mem_pager *mp = from_pager(p);
	struct mp_page *pg = mp_page(mp, pgno);

	if (pg->pins == 0)
		die("put of an unpinned page", pgno);
	pg->pins--;
	mp->pinned--;
	if (pg->pins > 0)
		return;
	if (!pg->writable && memcmp(pg->shadow, pg->data, mp->u) != 0)
		die("page modified without write intent", pgno);
	free(pg->shadow);
	pg->shadow = NULL;
	pg->writable = false;
}

static int mp_alloc(struct kv_pager *p, uint64_t *pgno, void **data)
{
	struct mem_pager *mp = from_pager(p);
	struct mp_page *pg;
	uint64_t n;
	int rc = mp_call(mp);

	if (rc != 0)
		return rc;
	if (mp->pages_max != 0 && mp->live >= mp->pages_max)
		return -ENOSPC;
	if (mp->nfree > 0) {
		n = mp->freel[--mp->nfree];
	} else {
		struct mp_page *t = realloc(mp->pages, (mp->npages + 1) * sizeof(*t));

		if (t == NULL)
			return -ENOMEM;
		mp->pages = t;
		n = mp->npages++;
		memset(&mp->pages[n], 0, sizeof(mp->pages[n]));
	}
	pg = &mp->pages[n];
	pg->data = page_alloc_bytes(mp->u);
	memset(pg->data, 0, mp->u);
	pg->writable = true;
	pg->dirty_epoch = 0;
	mp_intent(mp, pg);
	mp_pin(mp, pg);
	mp->live++;
	*pgno = n;
	*data = pg->data;
	return 0;
}

static int mp_free(struct kv_pager *p, uint64_t pgno)
{
	struct mem_pager *mp = from_pager(p);
	struct mp_page *pg;
	int rc = mp_call_page(mp, pgno, &pg);

	if (rc != 0)
		return rc;
	if (pg->pins != 0)
		die("free of a pinned page", pgno);
	if (mp->nfree == mp->free_cap) {
		size_t cap = mp->free_cap ? 2 * mp->free_cap : 64;
		uint64_t *f = realloc(mp->freel, cap * sizeof(*f));

		if (f == NULL)
			return -ENOMEM;
		mp->freel = f;
		mp->free_cap = cap;
	}
	free(pg->data);
	pg->data = NULL;
	mp->freel[mp->nfree++] = pgno;
	mp->live--;
	return 0;
}

static int mp_get_root(struct kv_pager *p, uint64_t *pgno)
{
	struct mem_pager *mp = from_pager(p);
	int rc = mp_call(mp);

	if (rc != 0)
		return rc;
	*pgno = mp->root;
	return 0;
}

static int mp_set_root(struct kv_pager *p, uint64_t pgno)
{
	struct mem_pager *mp = from_pager(p);
	int rc = mp_call(mp);

	if (rc != 0)
		return rc;
	mp->root = pgno;
	mp->changes++;
	return 0;
}

/* Changes whenever a page may have been written: every write intent, root change and rollback. */
static uint64_t mp_epoch(struct kv_pager *p)
{
	struct mem_pager *mp = from_pager(p);

	return 1 + mp->write_intents + mp->changes;
}

int mem_pager_create(const struct mem_pager_opts *o, struct mem_pager **out)
{
	struct mem_pager *mp = calloc(1, sizeof(*mp));

	if (mp == NULL)
		return -ENOMEM;
	mp->ops = (struct kv_pager_ops){
		.get = mp_get,
		.make_writable = mp_make_writable,
		.write_at = mp_write_at,
		.put = mp_put,
		.alloc = mp_alloc,
		.free = mp_free,
		.get_root = mp_get_root,
		.set_root = mp_set_root,
		.epoch = mp_epoch,
		.page_usable = o->page_usable,
	};
	mp->u = o->page_usable;
	mp->pages_max = o->pages_max;
	mp->relocate = o->relocate;
	/* Page 0 is reserved: the pager never hands it out. */
	mp->pages = calloc(1, sizeof(*mp->pages));
	if (mp->pages == NULL) {
		free(mp);
		return -ENOMEM;
	}
	mp->npages = 1;
	mp->epoch = 1;
	*out = mp;
	return 0;
}

static void snap_clear(struct mp_snap *s)
{
	for (size_t i = 0; s->data != NULL && i < s->npages; i++)
		free(s->data[i]);
	free(s->data);
	free(s->freel);
	memset(s, 0, sizeof(*s));
}

void mem_pager_destroy(struct mem_pager *mp)
{
	if (mp == NULL)
		return;
	snap_clear(&mp->snap);
	for (size_t i = 0; i < mp->npages; i++) {
		free(mp->pages[i].data);
		free(mp->pages[i].shadow);
	}
	free(mp->pages);
	free(mp->freel);
	free(mp);
}

const struct kv_pager_ops *mem_pager_ops(struct mem_pager *mp)
{
	return &mp->ops;
}

struct kv_pager *mem_pager_pager(struct mem_pager *mp)
{
	return (struct kv_pager *)mp;
}

uint64_t mem_pager_live_pages(const struct mem_pager *mp)
{
	return mp->live;
}

bool mem_pager_has_page(const struct mem_pager *mp, uint64_t pgno)
{
	return pgno != 0 && pgno < mp->npages && mp->pages[pgno].data != NULL;
}

unsigned mem_pager_pinned(const struct mem_pager *mp)
{
	return mp->pinned;
}

unsigned mem_pager_pinned_max(const struct mem_pager *mp)
{
	return mp->pinned_max;
}

uint64_t mem_pager_calls(const struct mem_pager *mp)
{
	return mp->calls;
}

uint64_t mem_pager_ranged_writes(const struct mem_pager *mp)
{
	return mp->ranged_writes;
}

uint64_t mem_pager_write_intents(const struct mem_pager *mp)
{
	return mp->write_intents;
}

uint64_t mem_pager_dirty_pages(const struct mem_pager *mp)
{
	return mp->dirty;
}

void mem_pager_dirty_reset(struct mem_pager *mp)
{
	mp->epoch++;
	mp->dirty = 0;
}

void mem_pager_fail_call(struct mem_pager *mp, uint64_t nth, int err)
{
	mp->fail_at = nth == 0 ? 0 : mp->calls + nth;
	mp->fail_err = err;
}

void mem_pager_set_pages_max(struct mem_pager *mp, uint64_t pages_max)
{
	mp->pages_max = pages_max;
}

static uint8_t *dup_page(const uint8_t *src, size_t u)
{
	uint8_t *d;

	if (src == NULL)
		return NULL;
	d = page_alloc_bytes(u);
	memcpy(d, src, u);
	return d;
}

int mem_pager_snapshot(struct mem_pager *mp)
{
	struct mp_snap *s = &mp->snap;

	if (mp->pinned != 0)
		die("snapshot with pages pinned", 0);
	snap_clear(s);
	s->data = calloc(mp->npages, sizeof(*s->data));
	s->freel = malloc((mp->nfree + 1) * sizeof(*s->freel));
	if (s->data == NULL || s->freel == NULL) {
		snap_clear(s);
		return -ENOMEM;
	}
	s->npages = mp->npages;
	for (size_t i = 0; i < mp->npages; i++)
		s->data[i] = dup_page(mp->pages[i].data, mp->u);
	if (mp->nfree > 0)
		memcpy(s->freel, mp->freel, mp->nfree * sizeof(*s->freel));
	s->nfree = mp->nfree;
	s->root = mp->root;
	s->live = mp->live;
	return 0;
}

void mem_pager_rollback(struct mem_pager *mp)
{
	struct mp_snap *s = &mp->snap;

	if (mp->pinned != 0)
		die("rollback with pages pinned", 0);
	if (s->data == NULL)
		die("rollback without a snapshot", 0);
	/* Pages allocated after the snapshot vanish; the table only shrinks back. */
	for (size_t i = 0; i < mp->npages; i++) {
		free(mp->pages[i].data);
		mp->pages[i].data = i < s->npages ? dup_page(s->data[i], mp->u) : NULL;
	}
	mp->npages = s->npages;
	if (mp->free_cap < s->nfree + 1) {
		uint64_t *f = realloc(mp->freel, (s->nfree + 1) * sizeof(*f));

		if (f == NULL)
			die("out of memory", 0);
		mp->freel = f;
		mp->free_cap = s->nfree + 1;
	}
	if (s->nfree > 0)
		memcpy(mp->freel, s->freel, s->nfree * sizeof(*s->freel));
	mp->nfree = s->nfree;
	mp->root = s->root;
	mp->live = s->live;
	mp->fail_at = 0;
	mp->changes++;
}
