/*
 * kv_example: the urt key-value store embedded in a program, through the
 * public headers only.
 *
 *   kv_example DATA_FILE
 *
 * Starts a runtime (one reactor per CPU), opens or creates the store in
 * DATA_FILE, and from a fiber on core 0: writes a few keys (durably, and
 * one with URT_KV_NOSYNC), reads them back (keys of the other core's
 * shard are forwarded there and answered back), counts, increments a
 * counter, scans in key order, deletes, and closes.  Run it twice: the
 * second run finds the counter where the first left it.
 */
#include <inttypes.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <urt/urt.h>

struct demo {
	struct urt_kv *kv;	/* The store. */
	int ret;		/* First error, or 0. */
	sem_t done;		/* Posted when the fiber is done. */
};

#define CHECK(d, call)                                                                     \
	do {                                                                               \
		int r_ = (call);                                                           \
		if (r_ < 0) {                                                              \
			fprintf(stderr, "%s: %s\n", #call, urt_strerror(r_));              \
			(d)->ret = r_;                                                     \
			goto out;                                                          \
		}                                                                          \
	} while (0)

static void demo_fiber(void *arg)
{
	struct demo *d = arg;
	struct urt_kv *kv = d->kv;
	const char *fruits[] = { "apple", "banana", "cherry", "damson", "elderberry" };
	struct urt_kv_entry ents[8];
	struct urt_kv_cursor cur;
	char buf[64], scan_buf[4096];
	uint64_t count;
	int64_t runs;
	size_t vlen;
	int n;

	for (unsigned i = 0; i < 5; i++) {
		char key[32];
		int klen = snprintf(key, sizeof(key), "fruit:%s", fruits[i]);

		/* Returns once the write is durable; the last one only once applied. */
		CHECK(d, urt_kv_put(kv, key, (size_t)klen, fruits[i], strlen(fruits[i]),
				    i == 4 ? URT_KV_NOSYNC : 0));
		printf("put %-18s on shard %u (core %u)\n", key,
		       urt_kv_shard_of(kv, key, (size_t)klen),
		       urt_kv_shard_core(kv, urt_kv_shard_of(kv, key, (size_t)klen)));
	}
	CHECK(d, urt_kv_get(kv, "fruit:cherry", 12, buf, sizeof(buf), &vlen));
	printf("get fruit:cherry = %.*s\n", (int)vlen, buf);
	printf("exists fruit:fig = %d\n", urt_kv_exists(kv, "fruit:fig", 9));
	CHECK(d, urt_kv_incr(kv, "runs", 4, 1, 0, &runs));
	printf("this program ran %" PRId64 " time(s) on this data file\n", runs);

	/* Keys in order across both shards, three per call. */
	CHECK(d, urt_kv_cursor_init(&cur, "fruit:", 6));
	while (!cur.done) {
		n = urt_kv_scan(kv, &cur, ents, 3, scan_buf, sizeof(scan_buf), 0);
		CHECK(d, n);
		for (int i = 0; i < n; i++)
			printf("scan %.*s = %.*s\n", (int)ents[i].klen, (const char *)ents[i].key,
			       (int)ents[i].vlen, (const char *)ents[i].val);
	}
	CHECK(d, urt_kv_del(kv, "fruit:banana", 12, 0));
	CHECK(d, urt_kv_count(kv, &count));
	printf("%" PRIu64 " keys after deleting fruit:banana\n", count);
out:
	sem_post(&d->done);
}

int main(int argc, char **argv)
{
	struct urt_rt_opts ro;
	struct urt_kv_opts ko;
	struct urt_rt *rt;
	struct demo d = { 0 };
	int ret;

	if (argc != 2) {
		fprintf(stderr, "usage: kv_example DATA_FILE\n");
		return 2;
	}
	urt_kv_opts_default(&ko);
	ko.path = argv[1];
	ko.size_bytes = 64ull << 20;	/* A small file for a demo. */
	ko.cache_bytes = 8ull << 20;
	urt_rt_opts_default(&ro);
	/* One reactor per online CPU (the default), one shard on each. */
	ro.buf_region_bytes = urt_kv_buf_region_bytes(&ko, (unsigned)sysconf(_SC_NPROCESSORS_ONLN));
	ret = urt_rt_start(&ro, &rt);
	if (ret) {
		fprintf(stderr, "urt_rt_start: %s%s%s%s\n", urt_strerror(ret),
			*urt_last_error() ? " (" : "", urt_last_error(), *urt_last_error() ? ")" : "");
		return 1;
	}
	ret = urt_kv_open(rt, &ko, &d.kv);
	if (ret) {
		fprintf(stderr, "urt_kv_open %s: %s%s%s%s\n", argv[1], urt_strerror(ret),
			*urt_last_error() ? " (" : "", urt_last_error(), *urt_last_error() ? ")" : "");
		urt_rt_stop(rt);
		return 1;
	}
	sem_init(&d.done, 0, 0);
	ret = urt_fiber_spawn_on(rt, 0, demo_fiber, &d);
	if (ret == 0)
		sem_wait(&d.done);
	ret = urt_kv_close(d.kv) || ret || d.ret;
	urt_rt_stop(rt);
	return ret ? 1 : 0;
}
