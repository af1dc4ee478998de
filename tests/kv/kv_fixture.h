/*
 * Shared helpers of the key-value store tests: a runtime sized for the
 * store, running a function in a fiber on a core and waiting for it, a
 * deterministic generator, and an ordered in-memory model of the store.
 *
 * Criterion's assertions must run on the test's main thread, so code in a
 * fiber records the first failure in a struct kvx_fail and the test
 * asserts on it after kvx_run returns.
 */
#ifndef URT_TESTS_KV_FIXTURE_H
#define URT_TESTS_KV_FIXTURE_H

#include <criterion/criterion.h>
#include <errno.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "urt/dev.h"
#include "urt/error.h"
#include "urt/fiber.h"
#include "urt/kv.h"
#include "urt/rt.h"
#include "urt/sim.h"
#include "../fiber_run.h"
#include "../sim_open.h"

/* Runs fn(arg) in a fiber on core and waits until it returns. */
static inline void kvx_run(struct urt_rt *rt, unsigned core, void (*fn)(void *arg), void *arg)
{
	tests_fiber_run(rt, core, fn, arg);
}

/* Store options for tests: small cache, default batches (1 MiB values fit). */
static inline void kvx_opts(struct urt_kv_opts *o, struct urt_dev *dev)
{
	urt_kv_opts_default(o);
	o->dev = dev;
	o->cache_bytes = 8u << 20;
	o->readers_max = 16;
}

/* A runtime of ncores cores (CPUs 0..ncores-1 modulo the machine) for the store of o. */
static inline struct urt_rt *kvx_start(unsigned ncores, const struct urt_kv_opts *o)
{
	static const int cpus[4] = { 0, 1, 0, 1 };
	struct urt_rt_opts ro;

	urt_rt_opts_default(&ro);
	ro.cpus = cpus;
	ro.ncpus = ncores;
	ro.pin = false;
	ro.buf_region_bytes = urt_kv_buf_region_bytes(o, ncores);
	ro.fiber_stack_bytes = 128u << 10;
	return tests_rt_start(&ro);
}

static inline struct urt_dev *kvx_sim(uint64_t size, uint64_t seed)
{
	struct urt_sim_opts o;

	urt_sim_opts_default(&o);
	o.size_bytes = size;
	o.seed = seed;
	o.cache_bytes_max = 64u << 20;
	o.cache_entries_max = 1u << 16;
	return tests_sim_open(&o);
}

/* The first failure seen in a fiber, asserted on the main thread (fiber_run.h). */
#define kvx_fail tests_fail
#define kvx_failf tests_failf

#define kvx_assert_ok(f) cr_assert_eq((f)->failed, 0, "%d failures, first: %s", (f)->failed, (f)->msg)

static inline uint64_t kvx_rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

/* Fills buf with len bytes derived from (a, b), so a value is recognisable. */
static inline void kvx_fill(void *buf, size_t len, uint64_t a, uint64_t b)
{
	uint64_t x = (a * 0x9e3779b97f4a7c15ull) ^ (b + 0x632be59bd9b4e019ull) ^ len;
	uint8_t *p = buf;

	if (!x)
		x = 1;
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(kvx_rnd(&x) >> 24);
}

/* The ordered model: a sorted array of owned keys and values. */
struct kvx_ent {
	uint8_t *key;
	size_t klen;
	uint8_t *val;
	size_t vlen;
};

struct kvx_model {
	struct kvx_ent *e;
	size_t n, cap;
};

static inline int kvx_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

/* Index of the first entry >= key; *found when equal. */
static inline size_t kvx_lower(const struct kvx_model *m, const void *key, size_t klen, bool *found)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (kvx_cmp(m->e[mid].key, m->e[mid].klen, key, klen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < m->n && kvx_cmp(m->e[lo].key, m->e[lo].klen, key, klen) == 0;
	return lo;
}

static inline const struct kvx_ent *kvx_model_get(const struct kvx_model *m, const void *key,
						  size_t klen)
{
	bool found;
	size_t i = kvx_lower(m, key, klen, &found);

	return found ? &m->e[i] : NULL;
}

static inline void kvx_model_put(struct kvx_model *m, const void *key, size_t klen, const void *val,
				 size_t vlen)
{
	bool found;
	size_t i = kvx_lower(m, key, klen, &found);

	if (found) {
		free(m->e[i].val);
	} else {
		if (m->n == m->cap) {
			m->cap = m->cap ? 2 * m->cap : 256;
			m->e = realloc(m->e, m->cap * sizeof(*m->e));
		}
		memmove(&m->e[i + 1], &m->e[i], (m->n - i) * sizeof(*m->e));
		m->n++;
		m->e[i].key = malloc(klen);
		memcpy(m->e[i].key, key, klen);
		m->e[i].klen = klen;
	}
	m->e[i].val = malloc(vlen ? vlen : 1);
	memcpy(m->e[i].val, val, vlen);
	m->e[i].vlen = vlen;
}

static inline bool kvx_model_del(struct kvx_model *m, const void *key, size_t klen)
{
	bool found;
	size_t i = kvx_lower(m, key, klen, &found);

	if (!found)
		return false;
	free(m->e[i].key);
	free(m->e[i].val);
	memmove(&m->e[i], &m->e[i + 1], (m->n - i - 1) * sizeof(*m->e));
	m->n--;
	return true;
}

static inline void kvx_model_free(struct kvx_model *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->e[i].key);
		free(m->e[i].val);
	}
	free(m->e);
	memset(m, 0, sizeof(*m));
}

/*
 * Checks that a full scan of kv returns exactly the model, in order, with
 * every value, in chunks of chunk entries.  Fiber only.
 */
static inline void kvx_check_scan(struct urt_kv *kv, const struct kvx_model *m, size_t chunk,
				  struct kvx_fail *f)
{
	size_t buf_len = urt_kv_shards(kv) * (URT_KV_UPDATE_VALUE_MAX + URT_KV_KEY_MAX + 64) + 4096;
	struct urt_kv_entry *ents = calloc(chunk, sizeof(*ents));
	uint8_t *buf = malloc(buf_len);
	struct urt_kv_cursor c;
	size_t at = 0;
	int rounds = 0;

	urt_kv_cursor_init(&c, NULL, 0);
	while (!c.done && rounds++ < 1000000) {
		int n = urt_kv_scan(kv, &c, ents, chunk, buf, buf_len, 0);

		if (n < 0) {
			kvx_failf(f, "scan: %d (%s)", n, urt_strerror(n));
			break;
		}
		for (int i = 0; i < n; i++, at++) {
			if (at >= m->n) {
				kvx_failf(f, "scan returned more than the %zu model keys", m->n);
				goto out;
			}
			if (kvx_cmp(ents[i].key, ents[i].klen, m->e[at].key, m->e[at].klen) != 0) {
				kvx_failf(f, "scan entry %zu: key differs from the model", at);
				goto out;
			}
			if (ents[i].vlen != m->e[at].vlen ||
			    memcmp(ents[i].val, m->e[at].val, m->e[at].vlen) != 0) {
				kvx_failf(f, "scan entry %zu: value differs (%zu vs %zu bytes)", at,
					  ents[i].vlen, m->e[at].vlen);
				goto out;
			}
		}
	}
	if (at != m->n)
		kvx_failf(f, "scan returned %zu keys, the model has %zu", at, m->n);
out:
	free(buf);
	free(ents);
}

#endif /* URT_TESTS_KV_FIXTURE_H */
