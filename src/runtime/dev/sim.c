/*
 * The simulated SSD backend (include/urt/sim.h, docs/sim.md).
 *
 * Design notes
 * ------------
 * The model of one device is two flat images and a list:
 *
 *   durable   what survives a power loss;
 *   current   what a read returns: durable with every cached write applied;
 *   cache     the writes that are not durable yet, in submission order
 *             (seq), each with a copy of its data or marked "zeroes".
 *
 * Every op takes effect synchronously in sim_prep, as in psync.c, and
 * the ring only carries a NOP, or an IORING_OP_TIMEOUT that expires at the
 * op's simulated completion time (absolute, CLOCK_MONOTONIC) so that
 * simulated latency costs no CPU.  The model's notion of "completed" is the
 * moment the runtime reaps that CQE (sim_complete), which is before the
 * caller hears of it: a flush that a caller submits after seeing a write
 * complete therefore always covers that write, and a flush submitted while
 * the write is still in flight never does.
 *
 * Timing (docs/sim.md, "Timing profiles"): with the ssd profile a read or
 * write completes its latency after submission, however many others are
 * in flight, unless `parallelism` bounds how many are served at once
 * (sim_ssd_service: the command takes the slot that frees first).  With
 * the hdd profile one command runs at a time (sim_hdd_service): it waits
 * for the drive, seeks from where the last one ended, waits for its sector
 * to come round, and transfers; the order it sees is the order of
 * submission, which is what the runtime's scheduler decides.  Flushes queue (flush_serial): a drive with a
 * volatile cache and no power-loss protection programs its whole cache to
 * NAND on a flush and runs flushes one at a time, so a flush submitted at
 * t completes at max(t, flush_end) + flush_latency_ns, and flush_end moves
 * there.  An emulated FUA write is a write then a flush: its flush joins
 * the queue when its write part is done.  The queue only sets *when* a
 * flush completes; *what* it covers is still fixed at submission (the
 * stamp), so waiting in the queue never makes a flush cover more.
 *
 * Invariants
 *   I1. current equals durable with every cache entry applied in seq
 *       order, except sectors where a newer write is already durable (I2).
 *   I2. sector_seq[k] is the seq of the write whose data sector k of the
 *       durable image holds (0: none since open).  A write reaches the
 *       durable image only in sectors where its seq is larger, so an older
 *       write never overwrites a newer one, whatever order they become
 *       durable in (flush, FUA, eviction or crash).
 *   I3. An entry is freed only when it becomes durable or at the crash.
 *       An entry still in flight (done == 0) is never evicted nor covered
 *       by a flush, so the pointer its request keeps stays valid until its
 *       completion, which checks `crashed` first, under the lock.
 *   I4. After the crash the images never change again; every op fails
 *       with -EIO and the runtime is told not to retry it.
 *
 * Life of a cache entry (a write, write-zeroes or deallocate command):
 *
 *   IN FLIGHT --completion--> COMPLETED --flush submitted later, completes--> DURABLE
 *       |   \                     \------cache over its bound: eviction-----> DURABLE
 *       |    \--completion, when FUA or no volatile cache-------------------> DURABLE
 *       +-- crash (from either state) --> dropped | applied | torn onto durable
 *
 * Transition table:
 *   write submitted             sim_prep -> sim_write_start (seq, copy, current)
 *   write completed             sim_complete -> sim_write_done (done = ++stamp)
 *   flush submitted             sim_prep: cover = stamp; sim_deadline (queue)
 *   read or write timed         sim_prep -> sim_deadline -> sim_ssd_service / sim_hdd_service
 *   flush completed             sim_complete -> sim_persist_completed(cover)
 *   FUA / write-through write   sim_write_done -> sim_persist
 *   emulated FUA write          sim_write_done -> sim_persist_completed(its stamp)
 *   cache over its bound        sim_write_start -> sim_evict (oldest completed)
 *   power cut                   sim_crash_locked (urt_sim_crash, crash_after, hook)
 *   command stalls (TIMEOUT,    sim_prep -> sim_timeout_hit: no effect on the model; the
 *   HANG)                       ring's TIMEOUT ends it cmd_timeout_ns later with -ETIMEDOUT
 *   controller reset            sim_reset (from dev/health.c's reset thread): clears HANG
 *                               rules unless a RESET_FAIL rule makes it fail
 *   device gone (GONE)          sim_prep: the command fails with -ENODEV before it reaches
 *                               the model; sim_reset fails with -ENODEV while GONE is armed
 *
 * Locking: one mutex per device guards the whole model, so a device can be
 * used by every core of a runtime at once.  This is a test device: the
 * mutex and the per-write allocation are acceptable here and nowhere else.
 * `crashed` is also atomic because the runtime's retry decision reads it
 * without the lock.
 *
 * Opening goes through urt_dev_open (so the device is set up exactly like
 * every other); urt_sim_open and urt_sim_reopen hand their options and
 * source image to sim_open through two thread-local pointers.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "urt/sim.h"
#include "runtime/dev/backend.h"
#include "base/clock.h"
#include "base/fifo.h"
#include "runtime/core.h"

#define SIM_SECTOR	URT_SIM_SECTOR_BYTES
/* The durable image is tracked in 64 KiB chunks, so reopen copies only what was written. */
#define SIM_CHUNK_SHIFT	16
#define SIM_RULES_MAX	16
/* Most SSD commands served at once (opts.parallelism). */
#define SIM_SLOTS_MAX	64
/* HDD seek curve: a square root up to this share of the stroke (in 1/1000), linear after. */
#define SIM_HDD_KNEE	400
/* A generous upper bound on the capacity: both images live in memory. */
#define SIM_SIZE_MAX	(64ull << 30)

/* Scratch words of struct urt_req used by this backend (be[0..1] hold the timespec). */
enum {
	BE_TS = 0,	/* be[0..1]: the __kernel_timespec of the latency TIMEOUT. */
	BE_RES = 2,	/* The op's result, decided in prep. */
	BE_ARG = 3,	/* Write: its cache entry; flush: the stamp it covers. */
	BE_DONE = 4,	/* What completion must do to the model (enum sim_done). */
};

_Static_assert(sizeof(struct __kernel_timespec) <= 2 * sizeof(uint64_t), "timespec fits be[0..1]");

enum sim_done {
	DONE_NONE = 0,	/* Nothing: reads, failed commands. */
	DONE_WRITE,	/* Mark the entry in be[BE_ARG] completed. */
	DONE_FLUSH,	/* Make the writes completed by stamp be[BE_ARG] durable. */
};

struct sim_entry {
	TAILQ_ENTRY(sim_entry) link;	/* The cache, oldest first (base/fifo.h). */
	uint64_t seq;		/* Submission order, from 1. */
	uint64_t done;		/* Completion stamp; 0 while in flight. */
	uint64_t off;		/* Target offset (after a misdirection). */
	uint64_t len;		/* Bytes, a multiple of the block size. */
	bool zeroes;		/* Write-zeroes or deallocate: no data, reads as zeroes. */
	bool persist_on_done;	/* FUA or write-through: durable at completion. */
	bool flush_on_done;	/* Emulated FUA: completion flushes everything completed. */
	uint8_t data[];		/* len bytes unless zeroes. */
};

struct sim_rule {
	uint32_t kind;		/* enum urt_sim_fault; 0 = free slot. */
	uint32_t count;		/* Commands left to hit, or URT_SIM_FOREVER. */
	uint64_t off;		/* Range start. */
	uint64_t len;		/* Range length (0 = the whole device). */
};

struct sim {
	pthread_mutex_t lock;		/* Guards everything below except `crashed` reads. */
	struct urt_dev *dev;		/* Back pointer, for the sticky error. */
	struct urt_sim_opts o;		/* Options (copied). */
	uint8_t *durable;		/* size_bytes: survives the power loss. */
	uint8_t *current;		/* size_bytes: what reads return. */
	uint64_t *sector_seq;		/* Per 512-byte sector: seq of its durable data (I2). */
	uint64_t *dirty;		/* Bitmap of durable chunks ever written. */
	TAILQ_HEAD(, sim_entry) cache;	/* Cached writes, oldest first; entries leave from anywhere. */
	uint64_t nentries;		/* Entries in the cache. */
	uint64_t cache_bytes;		/* Data bytes in the cache. */
	uint64_t seq;			/* Last seq handed out. */
	uint64_t stamp;			/* Last completion stamp handed out. */
	uint64_t crash_at;		/* Command index that crashes the device, 0 = none. */
	uint64_t flush_end_ns;		/* When the last queued flush completes (CLOCK_MONOTONIC). */
	uint64_t slot_free_ns[SIM_SLOTS_MAX];/* SSD with parallelism: when each slot is free. */
	uint64_t hdd_free_ns;		/* HDD: when the drive finishes its last command. */
	uint64_t hdd_head;		/* HDD: offset under the head after that command. */
	urt_sim_hook_fn hook;		/* Command hook or NULL. */
	void *hook_arg;			/* Its argument. */
	struct sim_rule rules[SIM_RULES_MAX];/* Armed faults. */
	_Atomic bool crashed;		/* The power is gone (I4). */
	struct urt_sim_stats st;	/* Counters. */
};

/* Handed from urt_sim_open / urt_sim_reopen to sim_open, on the same thread. */
static __thread const struct urt_sim_opts *sim_open_opts;
static __thread struct sim *sim_open_from;

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The crash seed of crash_after and the hook: the device seed mixed with the command index. */
static uint64_t sim_cmd_seed(const struct sim *s, uint64_t index)
{
	uint64_t st = s->o.seed ^ (index * 0xd1b54a32d192ed03ull);

	return splitmix64(&st);
}

static struct sim *sim_of(const struct urt_dev *dev)
{
	return dev && dev->be == &urt_backend_sim ? dev->priv : NULL;
}

URT_API bool urt_sim_is(const struct urt_dev *dev)
{
	return sim_of(dev) != NULL;
}

URT_API void urt_sim_opts_default(struct urt_sim_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->size_bytes = 64ull << 20;
	o->block_bytes = 4096;
	o->max_io_bytes = 1u << 20;
	o->volatile_cache = true;
	o->fua = true;
	o->emulate_fua = true;
	o->flush_serial = true;
	o->cache_entries_max = 4096;
	o->cache_bytes_max = 16ull << 20;
	o->hdd_seek_track_ns = 800000;
	o->hdd_seek_full_ns = 18000000;
	o->hdd_rpm = 7200;
	o->hdd_track_bytes = 1u << 20;
	o->cmd_timeout_ns = 30ull * 1000000000ull;
}

static int sim_opts_check(const struct urt_sim_opts *o)
{
	if (o->block_bytes != 512 && o->block_bytes != 4096) {
		urt_set_error("sim: block_bytes must be 512 or 4096, not %u", o->block_bytes);
		return -EINVAL;
	}
	if (o->size_bytes == 0 || o->size_bytes % o->block_bytes || o->size_bytes > SIM_SIZE_MAX) {
		urt_set_error("sim: size_bytes %llu must be a non-zero multiple of %u bytes, at most %llu",
			      (unsigned long long)o->size_bytes, o->block_bytes, SIM_SIZE_MAX);
		return -EINVAL;
	}
	if (o->max_io_bytes == 0 || o->max_io_bytes % o->block_bytes || o->max_io_bytes > (1u << 30)) {
		urt_set_error("sim: max_io_bytes %u must be a non-zero multiple of %u bytes, at most 1 GiB",
			      o->max_io_bytes, o->block_bytes);
		return -EINVAL;
	}
	if (o->profile != URT_SIM_SSD && o->profile != URT_SIM_HDD) {
		urt_set_error("sim: unknown profile %u (URT_SIM_SSD or URT_SIM_HDD)", (unsigned)o->profile);
		return -EINVAL;
	}
	if (o->parallelism > SIM_SLOTS_MAX) {
		urt_set_error("sim: parallelism %u is above %u", o->parallelism, SIM_SLOTS_MAX);
		return -EINVAL;
	}
	if (o->profile == URT_SIM_HDD &&
	    (o->hdd_rpm == 0 || o->hdd_track_bytes < o->block_bytes || o->hdd_seek_full_ns < o->hdd_seek_track_ns)) {
		urt_set_error("sim: the hdd profile needs rpm > 0, a track of at least one block and a full-stroke "
			      "seek no shorter than a track-to-track one");
		return -EINVAL;
	}
	if (o->cache_entries_max == 0 || o->cache_bytes_max == 0) {
		urt_set_error("sim: cache_entries_max and cache_bytes_max must be non-zero "
			      "(volatile_cache = false makes every write durable on completion)");
		return -EINVAL;
	}
	return 0;
}

/*
 * The NAME=VALUE options of a sim: path: the field each sets, the unit of
 * VALUE in that field, and the values accepted, so that none is truncated
 * to its field or overflows on scaling.
 */
#define SIM_US_MAX	3600000000ull	/* One hour of added latency, in microseconds. */
#define SIM_RPM_MAX	1000000u

static const struct sim_key {
	const char *name;	/* The key before '='. */
	size_t off;		/* Offset of its field in struct urt_sim_opts. */
	bool wide;		/* The field is uint64_t (else uint32_t). */
	uint64_t scale;		/* Field units per VALUE unit (ns per us, ...). */
	uint64_t min, max;	/* VALUE range. */
} sim_keys[] = {
	{ "par", offsetof(struct urt_sim_opts, parallelism), false, 1, 0, SIM_SLOTS_MAX },
	{ "read_us", offsetof(struct urt_sim_opts, read_latency_ns), true, 1000, 0, SIM_US_MAX },
	{ "write_us", offsetof(struct urt_sim_opts, write_latency_ns), true, 1000, 0, SIM_US_MAX },
	{ "flush_us", offsetof(struct urt_sim_opts, flush_latency_ns), true, 1000, 0, SIM_US_MAX },
	{ "rpm", offsetof(struct urt_sim_opts, hdd_rpm), false, 1, 1, SIM_RPM_MAX },
	{ "seek_ms", offsetof(struct urt_sim_opts, hdd_seek_full_ns), true, 1000000, 0, SIM_US_MAX / 1000 },
};

#define SIM_KEYS_SAID "hdd, ssd, par=, read_us=, write_us=, flush_us=, rpm=, seek_ms="

/* A decimal number that is all of s[0..len); false when it is not one or exceeds UINT64_MAX. */
static bool sim_parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

/* SIZE, s[0..len): bytes with an optional K, M, G or T suffix (powers of two), and "iB" or "B" after it. */
static int sim_parse_size(const char *path, const char *s, size_t len, uint64_t *out)
{
	static const char units[4] = { 'K', 'M', 'G', 'T' };
	size_t digits = 0, rest;
	unsigned shift = 0;
	const char *u, *tail;
	uint64_t v;

	while (digits < len && s[digits] >= '0' && s[digits] <= '9')
		digits++;
	tail = s + digits;
	rest = len - digits;
	/* & ~0x20: the upper case of a letter, so k, m, g and t count too. */
	if (rest && (u = memchr(units, *tail & ~0x20, sizeof(units)))) {
		shift = 10 * (unsigned)(u - units + 1);
		tail++;
		rest--;
		if ((rest == 2 && !strncmp(tail, "iB", 2)) || (rest == 1 && *tail == 'B'))
			rest = 0;
	}
	if (digits == 0 || rest)
		goto bad;
	if (!sim_parse_u64(s, digits, &v) || v > (SIM_SIZE_MAX >> shift)) {
		urt_set_error("sim: size %.*s in \"%s\" is too large: at most %lluG", (int)len, s, path,
			      SIM_SIZE_MAX >> 30);
		return -EINVAL;
	}
	*out = v << shift;
	return 0;
bad:
	urt_set_error("sim: \"%s\" is not sim:SIZE[,option...]: give sim:SIZE, SIZE in bytes with an optional K, M, "
		      "G or T suffix (for example sim:64M or sim:1G,hdd)", path);
	return -EINVAL;
}

/* One option, s[0..len) between commas. */
static int sim_parse_option(const char *path, const char *s, size_t len, struct urt_sim_opts *o)
{
	const char *eq = memchr(s, '=', len);
	size_t klen = eq ? (size_t)(eq - s) : len;
	const struct sim_key *k = NULL;
	uint64_t v;

	if (len == 0) {
		urt_set_error("sim: empty option in \"%s\": remove the extra comma", path);
		return -EINVAL;
	}
	if ((klen == 3 && !strncmp(s, "hdd", 3)) || (klen == 3 && !strncmp(s, "ssd", 3))) {
		if (eq) {
			urt_set_error("sim: %.3s takes no value in \"%s\": write ,%.3s", s, path, s);
			return -EINVAL;
		}
		o->profile = s[0] == 'h' ? URT_SIM_HDD : URT_SIM_SSD;
		return 0;
	}
	for (size_t i = 0; i < sizeof(sim_keys) / sizeof(sim_keys[0]); i++)
		if (strlen(sim_keys[i].name) == klen && !strncmp(s, sim_keys[i].name, klen))
			k = &sim_keys[i];
	if (!k) {
		urt_set_error("sim: unknown option \"%.*s\" in \"%s\" (options: " SIM_KEYS_SAID ")", (int)klen, s,
			      path);
		return -EINVAL;
	}
	if (!eq) {
		urt_set_error("sim: %s needs a value in \"%s\": write %s=N, N in %llu..%llu", k->name, path, k->name,
			      (unsigned long long)k->min, (unsigned long long)k->max);
		return -EINVAL;
	}
	if (!sim_parse_u64(eq + 1, len - klen - 1, &v) || v < k->min || v > k->max) {
		urt_set_error("sim: %.*s in \"%s\": give %s=N, N a whole number in %llu..%llu",
			      (int)len, s, path, k->name, (unsigned long long)k->min, (unsigned long long)k->max);
		return -EINVAL;
	}
	/* max * scale fits its field: checked at build time below for the wide ones, by max for the rest. */
	v *= k->scale;
	if (k->wide) {
		memcpy((char *)o + k->off, &v, sizeof(uint64_t));
	} else {
		uint32_t w = (uint32_t)v;

		URT_ASSERT(v <= UINT32_MAX);
		memcpy((char *)o + k->off, &w, sizeof(w));
	}
	return 0;
}

_Static_assert(SIM_US_MAX <= UINT64_MAX / 1000, "read_us= and the like scale to ns without overflow");
_Static_assert(SIM_SLOTS_MAX <= UINT32_MAX && SIM_RPM_MAX <= UINT32_MAX, "narrow sim options fit 32 bits");

URT_API int urt_sim_opts_parse(const char *path, struct urt_sim_opts *o)
{
	const char *p, *end;
	int ret;

	urt_sim_opts_default(o);
	if (!path || strncmp(path, "sim:", 4) != 0) {
		urt_set_error("sim: path \"%s\" does not start with sim: (for example sim:64M or sim:1G,hdd)",
			      path ? path : "");
		return -EINVAL;
	}
	p = path + 4;
	end = p + strcspn(p, ",");
	ret = sim_parse_size(path, p, (size_t)(end - p), &o->size_bytes);
	while (!ret && *end == ',') {
		p = end + 1;
		end = p + strcspn(p, ",");
		ret = sim_parse_option(path, p, (size_t)(end - p), o);
	}
	return ret ? ret : sim_opts_check(o);
}

static bool sim_match(const char *path)
{
	return strncmp(path, "sim:", 4) == 0;
}

/*
 * An image: anonymous memory straight from the kernel, zero until touched,
 * so the untouched part of a large device costs nothing.  No huge pages:
 * here (THP defrag = madvise) their faults made a reopen four times slower.
 */
static uint8_t *sim_image_alloc(uint64_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static void sim_image_free(uint8_t *p, uint64_t bytes)
{
	if (p)
		munmap(p, bytes);
}

static void sim_free(struct sim *s)
{
	struct sim_entry *e;

	while ((e = TAILQ_FIRST(&s->cache))) {
		TAILQ_REMOVE(&s->cache, e, link);
		free(e);
	}
	free(s->dirty);
	free(s->sector_seq);
	sim_image_free(s->current, s->o.size_bytes);
	sim_image_free(s->durable, s->o.size_bytes);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static uint64_t sim_nchunks(const struct sim *s)
{
	return (s->o.size_bytes + (1ull << SIM_CHUNK_SHIFT) - 1) >> SIM_CHUNK_SHIFT;
}

/* Start from src's durable image: copy only the chunks it ever wrote. */
static void sim_copy_image(struct sim *s, struct sim *src)
{
	uint64_t n = sim_nchunks(s);

	pthread_mutex_lock(&src->lock);
	for (uint64_t k = 0; k < n; k++) {
		uint64_t off = k << SIM_CHUNK_SHIFT;
		uint64_t len = s->o.size_bytes - off;

		if (!(src->dirty[k / 64] & (1ull << (k % 64))))
			continue;
		if (len > (1ull << SIM_CHUNK_SHIFT))
			len = 1ull << SIM_CHUNK_SHIFT;
		memcpy(s->durable + off, src->durable + off, len);
		memcpy(s->current + off, src->durable + off, len);
	}
	memcpy(s->dirty, src->dirty, (n + 63) / 64 * sizeof(uint64_t));
	pthread_mutex_unlock(&src->lock);
}

static int sim_open(struct urt_dev *dev, const char *path, const struct urt_dev_opts *dopts)
{
	struct urt_sim_opts o;
	struct sim *s;
	int ret;

	(void)dopts;
	if (sim_open_opts) {
		o = *sim_open_opts;
	} else {
		ret = urt_sim_opts_parse(path, &o);
		if (ret)
			return ret;
	}
	ret = sim_opts_check(&o);
	if (ret)
		return ret;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	TAILQ_INIT(&s->cache);
	s->dev = dev;
	s->o = o;
	atomic_init(&s->crashed, false);
	s->durable = sim_image_alloc(o.size_bytes);
	s->current = sim_image_alloc(o.size_bytes);
	s->sector_seq = calloc(o.size_bytes / SIM_SECTOR, sizeof(uint64_t));
	s->dirty = calloc((sim_nchunks(s) + 63) / 64, sizeof(uint64_t));
	if (!s->durable || !s->current || !s->sector_seq || !s->dirty) {
		urt_set_error("sim: cannot allocate two %llu-byte images", (unsigned long long)o.size_bytes);
		sim_free(s);
		return -ENOMEM;
	}
	if (sim_open_from)
		sim_copy_image(s, sim_open_from);
	dev->fd = -1;
	dev->priv = s;
	dev->info = (struct urt_dev_info){
		.size_bytes = o.size_bytes,
		.block_bytes = o.block_bytes,
		.phys_block_bytes = o.block_bytes,
		.mem_align = o.block_bytes,
		.off_align = o.block_bytes,
		.max_io_bytes = o.max_io_bytes,
		.atomic_write_bytes = SIM_SECTOR,
		.direct = true,
		.volatile_cache = o.volatile_cache,
		.fua = o.fua,
		.write_zeroes = true,
		.deallocate = true,
	};
	return 0;
}

static void sim_close(struct urt_dev *dev)
{
	struct sim *s = dev->priv;

	if (s)
		sim_free(s);
	dev->priv = NULL;
}

/* Bytes of the whole op described by io (validate sees the op, not a request). */
static uint64_t sim_io_len(const struct urt_io *io)
{
	uint64_t len = 0;

	if (io->op != URT_OP_READV && io->op != URT_OP_WRITEV)
		return io->len;
	for (unsigned i = 0; i < io->nr_iov; i++)
		len += io->iov[i].iov_len;
	return len;
}

static int sim_validate(struct urt_dev *dev, const struct urt_io *io)
{
	const struct sim *s = dev->priv;
	uint64_t len;

	switch (io->op) {
	case URT_OP_READ:
	case URT_OP_WRITE:
	case URT_OP_READV:
	case URT_OP_WRITEV:
	case URT_OP_WRITE_ZEROES:
	case URT_OP_DEALLOCATE:
		len = sim_io_len(io);
		/* A test device is strict: a range past the end is a bug in the caller. */
		if (io->off > s->o.size_bytes || len > s->o.size_bytes - io->off) {
			urt_set_error("%s: [%llu, +%llu) is beyond the end of the %llu-byte device", dev->path,
				      (unsigned long long)io->off, (unsigned long long)len,
				      (unsigned long long)s->o.size_bytes);
			return -EINVAL;
		}
		return 0;
	case URT_OP_FLUSH:
	case URT_OP_FSYNC:
		return 0;
	default:
		urt_set_error("%s: the sim device does not do op %u", dev->path, io->op);
		return -EOPNOTSUPP;
	}
}

/* Whether an armed fault of kind hits [off, off+len); consumes one count if so. */
static bool sim_fault_hit(struct sim *s, uint32_t kind, uint64_t off, uint64_t len)
{
	for (unsigned i = 0; i < SIM_RULES_MAX; i++) {
		struct sim_rule *r = &s->rules[i];

		if (r->kind != kind || r->count == 0)
			continue;
		if (kind != URT_SIM_FAULT_FLUSH_EIO && kind != URT_SIM_FAULT_RESET_FAIL &&
		    kind != URT_SIM_FAULT_GONE && r->len &&
		    (len == 0 || off >= r->off + r->len || off + len <= r->off))
			continue;
		if (r->count != URT_SIM_FOREVER && --r->count == 0)
			r->kind = 0;
		s->st.faults++;
		return true;
	}
	return false;
}

/* Whether a rule of kind is armed (locked); consumes nothing. */
static bool sim_fault_armed(const struct sim *s, uint32_t kind)
{
	for (unsigned i = 0; i < SIM_RULES_MAX; i++)
		if (s->rules[i].kind == kind && s->rules[i].count)
			return true;
	return false;
}

/* Bytes the next command of req transfers: what is left, capped at max_io_bytes. */
static uint64_t sim_req_len(const struct sim *s, const struct urt_req *req)
{
	uint64_t len = 0;

	if (req->op == URT_OP_READ || req->op == URT_OP_WRITE) {
		len = req->len;
	} else {
		/* Only iov[0..nr_iov) belongs to this command; the runtime resubmits the rest. */
		for (unsigned i = 0; i < req->nr_iov; i++)
			len += req->iov[i].iov_len;
	}
	return len < s->o.max_io_bytes ? len : s->o.max_io_bytes;
}

/* Copy n bytes between req's memory and p: into p when from_req, else out of p. */
static void sim_req_copy(const struct urt_req *req, uint8_t *p, uint64_t n, bool from_req)
{
	if (req->op == URT_OP_READ || req->op == URT_OP_WRITE) {
		if (from_req)
			memcpy(p, req->buf, n);
		else
			memcpy(req->buf, p, n);
		return;
	}
	for (unsigned i = 0; i < req->nr_iov && n; i++) {
		uint64_t k = req->iov[i].iov_len < n ? req->iov[i].iov_len : n;

		if (from_req)
			memcpy(p, req->iov[i].iov_base, k);
		else
			memcpy(req->iov[i].iov_base, p, k);
		p += k;
		n -= k;
	}
}

/* Put one sector of a write into the durable image, unless a newer write is there (I2). */
static void sim_durable_sector(struct sim *s, uint64_t sector, const uint8_t *src, uint64_t seq)
{
	uint64_t chunk = (sector * SIM_SECTOR) >> SIM_CHUNK_SHIFT;

	if (s->sector_seq[sector] >= seq)
		return;
	s->sector_seq[sector] = seq;
	if (src)
		memcpy(s->durable + sector * SIM_SECTOR, src, SIM_SECTOR);
	else
		memset(s->durable + sector * SIM_SECTOR, 0, SIM_SECTOR);
	s->dirty[chunk / 64] |= 1ull << (chunk % 64);
}

static void sim_unlink(struct sim *s, struct sim_entry *e)
{
	TAILQ_REMOVE(&s->cache, e, link);
	s->nentries--;
	if (!e->zeroes)
		s->cache_bytes -= e->len;
	free(e);
}

/* Make e durable and drop it from the cache. */
static void sim_persist(struct sim *s, struct sim_entry *e)
{
	uint64_t first = e->off / SIM_SECTOR;

	for (uint64_t i = 0; i < e->len / SIM_SECTOR; i++)
		sim_durable_sector(s, first + i, e->zeroes ? NULL : e->data + i * SIM_SECTOR, e->seq);
	sim_unlink(s, e);
}

/* A flush: every write completed by stamp `cover` becomes durable. */
static void sim_persist_completed(struct sim *s, uint64_t cover)
{
	struct sim_entry *e = TAILQ_FIRST(&s->cache);

	while (e) {
		struct sim_entry *next = TAILQ_NEXT(e, link);

		if (e->done && e->done <= cover)
			sim_persist(s, e);
		e = next;
	}
}

/* Keep the cache within its bounds by writing back the oldest completed entries. */
static void sim_evict(struct sim *s)
{
	struct sim_entry *e = TAILQ_FIRST(&s->cache);

	while (e && (s->nentries > s->o.cache_entries_max || s->cache_bytes > s->o.cache_bytes_max)) {
		struct sim_entry *next = TAILQ_NEXT(e, link);

		/* In-flight writes stay (I3); the bound then holds only for completed ones. */
		if (e->done) {
			sim_persist(s, e);
			s->st.evictions++;
		}
		e = next;
	}
}

/*
 * The power cut.  Each cached write, oldest first, is dropped, applied, or
 * torn: each of its sectors independently old or new.  A one-sector write
 * cannot tear, so it is dropped or applied with even odds.
 */
static void sim_crash_locked(struct sim *s, uint64_t seed)
{
	uint64_t rng = seed;
	struct sim_entry *e;

	while ((e = TAILQ_FIRST(&s->cache))) {
		uint64_t nsec = e->len / SIM_SECTOR, landed = 0, bits = 0;
		uint64_t mode = splitmix64(&rng) % (nsec > 1 ? 3 : 2);	/* 0 drop, 1 apply, 2 tear. */

		for (uint64_t i = 0; i < nsec; i++) {
			bool apply = mode == 1;

			if (mode == 2) {
				if (i % 64 == 0)
					bits = splitmix64(&rng);
				apply = (bits >> (i % 64)) & 1;
			}
			if (!apply)
				continue;
			sim_durable_sector(s, e->off / SIM_SECTOR + i, e->zeroes ? NULL : e->data + i * SIM_SECTOR,
					   e->seq);
			landed++;
		}
		if (landed == 0)
			s->st.crash_dropped++;
		else if (landed == nsec)
			s->st.crash_applied++;
		else
			s->st.crash_torn++;
		sim_unlink(s, e);
	}
	atomic_store(&s->crashed, true);
	/* The device is gone: writes and flushes are refused from now on. */
	dev_set_sticky(s->dev, -EIO);
}

/* Count a write-type or flush command and crash if it is the chosen one. */
static void sim_command(struct sim *s, uint8_t op, bool fua, uint64_t off, uint64_t len)
{
	struct urt_sim_cmd cmd = { .index = ++s->st.commands, .op = op, .fua = fua, .off = off, .len = len };
	bool crash = s->crash_at && cmd.index == s->crash_at;

	if (s->hook && s->hook(s->hook_arg, &cmd))
		crash = true;
	if (crash)
		sim_crash_locked(s, sim_cmd_seed(s, cmd.index));
}

/* A write-type command of n bytes: into the cache and the current image. */
static int64_t sim_write_start(struct sim *s, struct urt_req *req, uint64_t n)
{
	bool zeroes = req->op == URT_OP_WRITE_ZEROES || req->op == URT_OP_DEALLOCATE;
	bool fua = !zeroes && (req->flags & URT_IO_FUA);
	uint64_t off = req->off;
	struct sim_entry *e;

	if (req->op == URT_OP_WRITE_ZEROES)
		s->st.zeroes++;
	else if (req->op == URT_OP_DEALLOCATE)
		s->st.deallocates++;
	else
		s->st.writes++;
	if (fua)
		s->st.fua_writes++;
	if (sim_fault_hit(s, URT_SIM_FAULT_WRITE_EIO, off, n)) {
		sim_command(s, req->op, fua, off, n);
		return -EIO;
	}
	if (!zeroes && sim_fault_hit(s, URT_SIM_FAULT_MISDIRECT, off, n)) {
		uint32_t bb = s->o.block_bytes;

		if (off + bb + n <= s->o.size_bytes)
			off += bb;
		else if (off >= bb)
			off -= bb;
	}
	e = malloc(sizeof(*e) + (zeroes ? 0 : n));
	if (!e)
		return -ENOMEM;
	*e = (struct sim_entry){ .seq = ++s->seq, .off = off, .len = n, .zeroes = zeroes };
	if (!s->o.volatile_cache || (fua && s->o.fua))
		e->persist_on_done = true;
	else if (fua && s->o.emulate_fua)
		e->flush_on_done = true;
	if (zeroes) {
		memset(s->current + off, 0, n);
	} else {
		sim_req_copy(req, e->data, n, true);
		memcpy(s->current + off, e->data, n);
		s->st.bytes_written += n;
		s->cache_bytes += n;
	}
	TAILQ_INSERT_TAIL(&s->cache, e, link);
	s->nentries++;
	req->be[BE_ARG] = (uint64_t)(uintptr_t)e;
	req->be[BE_DONE] = DONE_WRITE;
	sim_evict(s);
	sim_command(s, req->op, fua, req->off, n);
	return zeroes ? 0 : (int64_t)n;
}

static void sim_write_done(struct sim *s, struct sim_entry *e)
{
	e->done = ++s->stamp;
	if (e->flush_on_done)
		sim_persist_completed(s, e->done);	/* Write + flush: covers e and all before it. */
	else if (e->persist_on_done)
		sim_persist(s, e);
}

/* Integer square root (the library links no libm). */
static uint64_t sim_isqrt(uint64_t v)
{
	uint64_t r = 0, bit = 1ull << 62;

	while (bit > v)
		bit >>= 2;
	while (bit) {
		if (v >= r + bit) {
			v -= r + bit;
			r = (r >> 1) + bit;
		} else {
			r >>= 1;
		}
		bit >>= 2;
	}
	return r;
}

/*
 * HDD: the seek time over `dist` bytes of offset, the whole device being
 * one full stroke: a square root of the distance up to SIM_HDD_KNEE of
 * the stroke (the arm accelerates, then brakes), linear after it (it
 * coasts), with the knee's time chosen so that both have one slope there.
 */
static uint64_t sim_hdd_seek_ns(const struct urt_sim_opts *o, uint64_t dist)
{
	uint64_t t0 = o->hdd_seek_track_ns, t1 = o->hdd_seek_full_ns, tk, knee_bytes;

	if (dist < o->hdd_track_bytes)
		return 0;	/* Same track: no seek. */
	knee_bytes = o->size_bytes / 1000 * SIM_HDD_KNEE;
	/* tk = (t0 (1 - k) + 2 k t1) / (1 + k) with k = knee / 1000. */
	tk = (t0 * (1000 - SIM_HDD_KNEE) + 2 * SIM_HDD_KNEE * t1) / (1000 + SIM_HDD_KNEE);
	if (dist <= knee_bytes) {
		/* sqrt(dist / knee_bytes) in millionths. */
		uint64_t frac = (uint64_t)((unsigned __int128)dist * 1000000000000ull / knee_bytes);

		return t0 + (tk - t0) * sim_isqrt(frac) / 1000000;
	}
	return tk + (uint64_t)((unsigned __int128)(t1 - tk) * (dist - knee_bytes) / (o->size_bytes - knee_bytes));
}

/*
 * HDD: the drive takes one command at a time.  It starts when the drive is
 * free, seeks from where the head is, waits for the sector to come round
 * (the platter turns with CLOCK_MONOTONIC; a track's byte k sits at angle
 * k / track_bytes), then transfers.  Returns when it completes.
 */
static uint64_t sim_hdd_service(struct sim *s, uint64_t now, uint64_t off, uint64_t len, uint64_t extra_ns)
{
	const struct urt_sim_opts *o = &s->o;
	uint64_t period = 60000000000ull / o->hdd_rpm, start = now, seek, t, angle, target, rot, xfer;
	uint64_t dist = off > s->hdd_head ? off - s->hdd_head : s->hdd_head - off;

	if (s->hdd_free_ns > start) {
		s->st.slot_waits++;
		s->st.slot_wait_ns += s->hdd_free_ns - start;
		start = s->hdd_free_ns;
	}
	seek = sim_hdd_seek_ns(o, dist);
	t = start + extra_ns + seek;
	angle = t % period;
	target = (off % o->hdd_track_bytes) * period / o->hdd_track_bytes;
	rot = target >= angle ? target - angle : period - angle + target;
	xfer = len * period / o->hdd_track_bytes;
	s->st.seek_bytes += dist;
	s->st.seek_ns += seek;
	s->st.rotate_ns += rot;
	s->st.transfer_ns += xfer;
	s->hdd_head = off + len;
	s->hdd_free_ns = t + rot + xfer;
	return s->hdd_free_ns;
}

/* SSD with bounded parallelism: the command takes the slot that frees first. */
static uint64_t sim_ssd_service(struct sim *s, uint64_t now, uint64_t lat)
{
	unsigned best = 0;
	uint64_t start = now;

	if (!s->o.parallelism)
		return now + lat;
	for (unsigned i = 1; i < s->o.parallelism; i++)
		if (s->slot_free_ns[i] < s->slot_free_ns[best])
			best = i;
	if (s->slot_free_ns[best] > start) {
		s->st.slot_waits++;
		s->st.slot_wait_ns += s->slot_free_ns[best] - start;
		start = s->slot_free_ns[best];
	}
	s->slot_free_ns[best] = start + lat;
	return start + lat;
}

/*
 * When a command submitted at now completes: after its service (lat of its
 * own on an SSD slot, or its turn on the HDD), then, when it includes a
 * flush (flush_lat > 0), after its turn in the flush queue.  Advances the
 * queues; called with the lock held, once per command.  data: a read or
 * write of len bytes at off (flushes have no service of their own).
 */
static uint64_t sim_deadline(struct sim *s, uint64_t now, uint64_t lat, uint64_t flush_lat, bool data,
			     uint64_t off, uint64_t len)
{
	uint64_t t = now + lat;

	if (data && s->o.profile == URT_SIM_HDD)
		t = sim_hdd_service(s, now, off, len, lat);
	else if (data)
		t = sim_ssd_service(s, now, lat);
	if (!flush_lat)
		return t;
	if (s->o.profile == URT_SIM_HDD) {
		/* The drive writes its cache back: nothing else moves meanwhile. */
		if (s->hdd_free_ns > t)
			t = s->hdd_free_ns;
		s->hdd_free_ns = t + flush_lat;
		return t + flush_lat;
	}
	if (s->o.flush_serial) {
		if (s->flush_end_ns > t) {
			s->st.flushes_queued++;
			s->st.flush_queued_ns += s->flush_end_ns - t;
			t = s->flush_end_ns;
		}
		s->flush_end_ns = t + flush_lat;
	}
	return t + flush_lat;
}

/* The ring's part of a command: a TIMEOUT expiring at deadline, or a NOP when 0. */
static void sim_prep_timer(struct urt_req *req, struct io_uring_sqe *sqe, uint64_t deadline)
{
	struct __kernel_timespec ts = {
		.tv_sec = (long long)(deadline / 1000000000ull),
		.tv_nsec = (long long)(deadline % 1000000000ull),
	};

	if (!deadline) {
		io_uring_prep_nop(sqe);
		return;
	}
	/*
	 * An absolute CLOCK_MONOTONIC expiry (the timeout's default clock), so
	 * the time between prep and the kernel taking the SQE is not added on
	 * top, and queued flushes keep their order.  The kernel reads the
	 * timespec when it takes the SQE; the request outlives that.
	 */
	memcpy(&req->be[BE_TS], &ts, sizeof(ts));
	io_uring_prep_timeout(sqe, (struct __kernel_timespec *)(void *)&req->be[BE_TS], 0, IORING_TIMEOUT_ABS);
}

/* Whether an armed TIMEOUT or HANG stalls req's next command (locked); counts it. */
static bool sim_timeout_hit(struct sim *s, const struct urt_req *req)
{
	bool flush = req->op == URT_OP_FLUSH || req->op == URT_OP_FSYNC;
	uint64_t len = flush ? 0 : sim_req_len(s, req);

	if (atomic_load(&s->crashed))
		return false;
	if (req->op == URT_OP_WRITE_ZEROES || req->op == URT_OP_DEALLOCATE)
		len = req->len;
	if (!sim_fault_hit(s, URT_SIM_FAULT_TIMEOUT, req->off, len) &&
	    !sim_fault_hit(s, URT_SIM_FAULT_HANG, req->off, len))
		return false;
	s->st.timeouts++;
	return true;
}

/* The recovery's controller reset (dev/health.c): cures HANG faults unless it fails. */
static int sim_reset(struct urt_dev *dev, uint32_t wait_ms)
{
	struct sim *s = dev->priv;
	struct timespec nap;
	bool fail;

	(void)wait_ms;
	if (s->o.reset_latency_ns) {
		nap.tv_sec = (time_t)(s->o.reset_latency_ns / 1000000000ull);
		nap.tv_nsec = (long)(s->o.reset_latency_ns % 1000000000ull);
		nanosleep(&nap, NULL);
	}
	pthread_mutex_lock(&s->lock);
	s->st.resets++;
	if (sim_fault_armed(s, URT_SIM_FAULT_GONE)) {
		pthread_mutex_unlock(&s->lock);
		urt_set_error("%s: simulated controller reset failed: the device is gone (URT_SIM_FAULT_GONE)",
			      dev->path);
		return -ENODEV;
	}
	fail = sim_fault_hit(s, URT_SIM_FAULT_RESET_FAIL, 0, 0);
	if (!fail)
		for (unsigned i = 0; i < SIM_RULES_MAX; i++)
			if (s->rules[i].kind == URT_SIM_FAULT_HANG)
				s->rules[i] = (struct sim_rule){ 0 };
	pthread_mutex_unlock(&s->lock);
	if (fail) {
		urt_set_error("%s: simulated controller reset failed (URT_SIM_FAULT_RESET_FAIL)", dev->path);
		return -EIO;
	}
	return 0;
}

static int64_t sim_prep(struct urt_dev *dev, struct urt_core *c, struct urt_req *req, struct io_uring_sqe *sqe)
{
	struct sim *s = dev->priv;
	uint64_t lat = 0, flush_lat = 0, n = 0, deadline = 0;
	bool data = false;
	int64_t res;

	(void)c;
	req->be[BE_DONE] = DONE_NONE;
	req->be[BE_ARG] = 0;
	pthread_mutex_lock(&s->lock);
	if (sim_fault_hit(s, URT_SIM_FAULT_GONE, 0, 0)) {
		/* Removed: the command never reaches the model, and fails at once. */
		n = req->op == URT_OP_READ || req->op == URT_OP_READV || req->op == URT_OP_WRITE ||
		    req->op == URT_OP_WRITEV ? sim_req_len(s, req) : 0;
		pthread_mutex_unlock(&s->lock);
		req->be[BE_RES] = (uint64_t)(int64_t)-ENODEV;
		sim_prep_timer(req, sqe, 0);
		return (int64_t)n;
	}
	if (sim_timeout_hit(s, req)) {
		/* A stalled command: nothing happens, and the driver gives up on it later. */
		n = req->op == URT_OP_FLUSH || req->op == URT_OP_FSYNC ? 0 : sim_req_len(s, req);
		req->be[BE_RES] = (uint64_t)(int64_t)-ETIMEDOUT;
		deadline = urt_clock_ns() + s->o.cmd_timeout_ns;
		pthread_mutex_unlock(&s->lock);
		sim_prep_timer(req, sqe, deadline);
		return (int64_t)n;
	}
	switch (req->op) {
	case URT_OP_READ:
	case URT_OP_READV:
		n = sim_req_len(s, req);
		lat = s->o.read_latency_ns;
		data = true;
		if (atomic_load(&s->crashed)) {
			res = -EIO;
			break;
		}
		s->st.reads++;
		if (sim_fault_hit(s, URT_SIM_FAULT_READ_EIO, req->off, n)) {
			res = -EIO;
			break;
		}
		sim_req_copy(req, s->current + req->off, n, false);
		s->st.bytes_read += n;
		res = (int64_t)n;
		break;
	case URT_OP_WRITE:
	case URT_OP_WRITEV:
	case URT_OP_WRITE_ZEROES:
	case URT_OP_DEALLOCATE:
		if (req->op == URT_OP_WRITE || req->op == URT_OP_WRITEV)
			n = sim_req_len(s, req);
		lat = s->o.write_latency_ns;
		data = true;
		if ((req->flags & URT_IO_FUA) && !s->o.fua && s->o.emulate_fua && s->o.volatile_cache)
			flush_lat = s->o.flush_latency_ns;
		if (atomic_load(&s->crashed)) {
			res = -EIO;
			break;
		}
		res = sim_write_start(s, req, n ? n : req->len);
		break;
	case URT_OP_FLUSH:
	case URT_OP_FSYNC:
		flush_lat = s->o.flush_latency_ns;
		if (atomic_load(&s->crashed)) {
			res = -EIO;
			break;
		}
		s->st.flushes++;
		res = 0;
		if (sim_fault_hit(s, URT_SIM_FAULT_FLUSH_EIO, 0, 0)) {
			res = -EIO;
		} else {
			/* Covers exactly the writes that completed before this submission. */
			req->be[BE_ARG] = s->stamp;
			req->be[BE_DONE] = DONE_FLUSH;
		}
		sim_command(s, req->op, false, 0, 0);
		break;
	default:
		pthread_mutex_unlock(&s->lock);
		return -EOPNOTSUPP;
	}
	/* Nothing to wait for once the power is gone. */
	if ((lat || flush_lat || (data && s->o.profile == URT_SIM_HDD)) && !atomic_load(&s->crashed))
		deadline = sim_deadline(s, urt_clock_ns(), lat, flush_lat, data, req->off, n ? n : req->len);
	pthread_mutex_unlock(&s->lock);
	req->be[BE_RES] = (uint64_t)res;
	sim_prep_timer(req, sqe, deadline);
	return (int64_t)n;
}

static int sim_complete(struct urt_dev *dev, struct urt_req *req, int32_t res, const struct io_uring_cqe *cqe)
{
	struct sim *s = dev->priv;
	int ret = (int)(int64_t)req->be[BE_RES];

	/* The ring's own result (-ETIME, 0, or -ECANCELED at stop) says nothing about the op. */
	(void)res;
	(void)cqe;
	pthread_mutex_lock(&s->lock);
	if (atomic_load(&s->crashed)) {
		ret = -EIO;	/* Power lost while in flight: no completion, no model change (I3). */
	} else if (req->be[BE_DONE] == DONE_WRITE) {
		sim_write_done(s, (struct sim_entry *)(uintptr_t)req->be[BE_ARG]);
	} else if (req->be[BE_DONE] == DONE_FLUSH) {
		sim_persist_completed(s, req->be[BE_ARG]);
	}
	pthread_mutex_unlock(&s->lock);
	req->be[BE_DONE] = DONE_NONE;
	return ret;
}

/* The runtime's transient errors (req.c), except that a dead device is never retried. */
static bool sim_retryable(struct urt_dev *dev, const struct urt_req *req, int res, uint64_t *delay_ns)
{
	struct sim *s = dev->priv;

	(void)req;
	(void)delay_ns;

	if (atomic_load(&s->crashed))
		return false;
	return res == -EIO || res == -ENOMEM || res == -EBUSY || res == -ETIMEDOUT || res == -ENOLINK;
}

const struct urt_backend urt_backend_sim = {
	.name = "sim",
	.match = sim_match,
	.open = sim_open,
	.close = sim_close,
	.validate = sim_validate,
	.prep = sim_prep,
	.complete = sim_complete,
	.retryable = sim_retryable,
	.reset = sim_reset,
	/* A simulated op has taken effect at submission: like issued block I/O, it cannot be undone. */
	.cancellable = false,
};

static int sim_dev_open(const struct urt_sim_opts *o, struct sim *from, struct urt_dev **out)
{
	struct urt_dev_opts dopts;
	char path[64];
	int ret;

	urt_dev_opts_default(&dopts);
	dopts.backend = "sim";
	snprintf(path, sizeof(path), "sim:%llu", (unsigned long long)o->size_bytes);
	sim_open_opts = o;
	sim_open_from = from;
	ret = urt_dev_open(path, &dopts, out);
	sim_open_opts = NULL;
	sim_open_from = NULL;
	return ret;
}

URT_API int urt_sim_open(const struct urt_sim_opts *o, struct urt_dev **out)
{
	struct urt_sim_opts def;
	int ret;

	if (!o) {
		urt_sim_opts_default(&def);
		o = &def;
	}
	ret = sim_opts_check(o);
	if (ret)
		return ret;
	return sim_dev_open(o, NULL, out);
}

URT_API int urt_sim_crash(struct urt_dev *dev, uint64_t seed)
{
	struct sim *s = sim_of(dev);

	if (!s)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	if (atomic_load(&s->crashed)) {
		pthread_mutex_unlock(&s->lock);
		return -EALREADY;
	}
	sim_crash_locked(s, seed);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

URT_API int urt_sim_crash_after(struct urt_dev *dev, uint64_t n)
{
	struct sim *s = sim_of(dev);
	int ret = 0;

	if (!s)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	if (atomic_load(&s->crashed))
		ret = -EALREADY;
	else
		s->crash_at = n ? s->st.commands + n : 0;
	pthread_mutex_unlock(&s->lock);
	return ret;
}

URT_API int urt_sim_set_hook(struct urt_dev *dev, urt_sim_hook_fn fn, void *arg)
{
	struct sim *s = sim_of(dev);

	if (!s)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	s->hook = fn;
	s->hook_arg = arg;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

URT_API int urt_sim_reopen(struct urt_dev *crashed, struct urt_dev **out)
{
	struct sim *s = sim_of(crashed);

	if (!s)
		return -EINVAL;
	if (!atomic_load(&s->crashed)) {
		urt_set_error("sim: reopen needs a crashed device (call urt_sim_crash first; after a final "
			      "flush it loses nothing)");
		return -EINVAL;
	}
	/* The options never change after open, and the image is frozen (I4). */
	return sim_dev_open(&s->o, s, out);
}

URT_API int urt_sim_read_durable(struct urt_dev *dev, void *buf, uint64_t len, uint64_t off)
{
	struct sim *s = sim_of(dev);

	if (!s || off > s->o.size_bytes || len > s->o.size_bytes - off)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	memcpy(buf, s->durable + off, len);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

URT_API int urt_sim_inject(struct urt_dev *dev, enum urt_sim_fault kind, uint64_t off, uint64_t len,
			   uint32_t count)
{
	struct sim *s = sim_of(dev);
	int ret = -ENOSPC;

	if (!s || kind < URT_SIM_FAULT_READ_EIO || kind > URT_SIM_FAULT_GONE || off > s->o.size_bytes ||
	    len > s->o.size_bytes - off)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	if (count == 0) {
		for (unsigned i = 0; i < SIM_RULES_MAX; i++)
			if (s->rules[i].kind == (uint32_t)kind)
				s->rules[i] = (struct sim_rule){ 0 };
		ret = 0;
	} else {
		for (unsigned i = 0; i < SIM_RULES_MAX; i++) {
			if (s->rules[i].kind)
				continue;
			s->rules[i] = (struct sim_rule){ .kind = (uint32_t)kind, .count = count, .off = off, .len = len };
			ret = 0;
			break;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

URT_API int urt_sim_stats(const struct urt_dev *dev, struct urt_sim_stats *out)
{
	struct sim *s = sim_of(dev);

	if (!s)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	*out = s->st;
	out->cache_entries = s->nentries;
	out->cache_bytes = s->cache_bytes;
	out->crashed = atomic_load(&s->crashed);
	pthread_mutex_unlock(&s->lock);
	return 0;
}
