/*
 * The registered buffer allocator: alignment, no overlap, size classes,
 * reuse, exhaustion with a clear error, and splitting of larger blocks.
 */
#include "fixture.h"

struct buf_run {
	int misaligned, overlaps, not_owned;
	size_t free0, free1, free2;
	int exhausted_null;
	char msg[256];
	int split_ok;
	int reused;
};

static void buf_body(void *p)
{
	struct buf_run *r = p;
	static const size_t sizes[] = { 1, 4096, 4097, 8192, 65536, 100000, 1 << 20 };
	uint8_t *b[7];

	r->free0 = urt_buf_free_bytes();
	for (int i = 0; i < 7; i++) {
		b[i] = urt_buf_get(sizes[i]);
		r->misaligned += ((uintptr_t)b[i] % 4096) != 0;
		r->not_owned += !urt_buf_owns(b[i]);
		memset(b[i], i + 1, sizes[i]);
	}
	for (int i = 0; i < 7; i++)
		for (size_t k = 0; k < sizes[i]; k++)
			if (b[i][k] != (uint8_t)(i + 1)) {
				r->overlaps++;
				break;
			}
	r->free1 = urt_buf_free_bytes();
	for (int i = 0; i < 7; i++)
		urt_buf_put(b[i]);
	r->free2 = urt_buf_free_bytes();
	/* The same class comes back from the free list. */
	b[0] = urt_buf_get(65536);
	b[1] = urt_buf_get(65536);
	urt_buf_put(b[1]);
	r->reused = urt_buf_get(65536) == b[1];
	urt_buf_put(b[1]);
	urt_buf_put(b[0]);
	/* Exhaust with 1 MiB blocks, then ask for more. */
	{
		static void *big[64], *small[4096];
		int n = 0, m = 0;

		while (n < 64 && (big[n] = urt_buf_get(1 << 20)))
			n++;
		r->exhausted_null = n < 64;
		snprintf(r->msg, sizeof(r->msg), "%s", urt_last_error());
		/* Use up the tail and every smaller free block too. */
		while (m < 4096 && (small[m] = urt_buf_get(4096)))
			m++;
		/* No 256 KiB block is free and the tail is gone: only a split can serve it. */
		urt_buf_put(big[0]);
		{
			void *q = urt_buf_get(256 << 10);

			r->split_ok = q != NULL && (uint8_t *)q >= (uint8_t *)big[0] &&
				      (uint8_t *)q < (uint8_t *)big[0] + (1 << 20) && urt_buf_get(1 << 20) == NULL;
			urt_buf_put(q);
		}
		for (int i = 1; i < n; i++)
			urt_buf_put(big[i]);
		for (int i = 0; i < m; i++)
			urt_buf_put(small[i]);
	}
}

Test(buf, allocator)
{
	struct urt_rt_opts o;
	struct urt_rt *rt;
	struct buf_run r = { 0 };

	urt_rt_opts_default(&o);
	o.buf_region_bytes = 8u << 20;
	rt = fx_start(&o);
	fx_run(rt, 0, buf_body, &r);
	urt_rt_stop(rt);
	cr_expect_eq(r.misaligned, 0);
	cr_expect_eq(r.not_owned, 0);
	cr_expect_eq(r.overlaps, 0);
	/* 4K + 4K + 8K + 8K + 64K + 128K + 1M taken. */
	cr_expect_eq(r.free0 - r.free1, 4096 + 4096 + 8192 + 8192 + 65536 + 131072 + (1 << 20));
	cr_expect_eq(r.free2, r.free0);
	cr_expect(r.reused);
	cr_expect(r.exhausted_null);
	cr_expect(strstr(r.msg, "exhausted") != NULL, "%s", r.msg);
	cr_expect(r.split_ok);
}

static void off_core(void *p)
{
	(void)p;
}

Test(buf, outside_reactor_is_null)
{
	cr_expect_null(urt_buf_get(4096));
	cr_expect_not(urt_buf_owns(&off_core));
}
