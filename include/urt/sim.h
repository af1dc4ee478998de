/**
 * @file
 * The simulated SSD ("sim" backend): an in-memory device with a volatile
 * write cache that can lose power at any point, for crash-consistency tests.
 *
 * A sim device is a struct urt_dev like any other: every op of io.h and
 * fiber.h works on it through the runtime.  What it adds is a model of what
 * survives a power loss, and control over when that happens:
 *
 *   - a write lands in a volatile cache; it is only durable after a flush
 *     that was submitted once the write had completed, or when it was a FUA
 *     write, or when the cache evicts it;
 *   - urt_sim_crash() cuts the power: every write that is not durable yet
 *     (including those still in flight) is, independently and from a seeded
 *     generator, dropped, applied, or torn at 512-byte sector granularity;
 *   - urt_sim_reopen() gives a fresh device holding the post-crash image,
 *     on which recovery can run;
 *   - urt_sim_crash_after() and urt_sim_set_hook() crash at an exact
 *     command, so a test can place a crash point anywhere in a protocol;
 *   - urt_sim_inject() makes chosen reads, writes or flushes fail with EIO,
 *     or time out (a stalled device, for the recovery of dev/health.c), or
 *     sends a write to the wrong block, or makes controller resets fail;
 *   - optional latencies, completed by kernel timers without using CPU;
 *     flushes queue one behind another, as in a drive without power-loss
 *     protection draining its cache (flush_serial).
 *
 * Everything is deterministic: the same seeds and the same sequence of
 * commands give the same images, byte for byte.  docs/sim.md has the exact
 * model and a crash-test recipe.
 *
 * Threading: a sim device may be used from every core of a runtime at
 * once; its model is protected by one mutex (it is a test device).  The
 * functions below may be called from any thread, including a fiber.
 */
#ifndef URT_SIM_H
#define URT_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "urt/common.h"

URT_BEGIN_DECLS

struct urt_dev;

/** The unit a crash tears writes at: each such sector is old or new, never mixed. */
#define URT_SIM_SECTOR_BYTES 512u

/** A fault count meaning "every matching command, until cleared". */
#define URT_SIM_FOREVER UINT32_MAX

/** Timing model of a simulated device (docs/sim.md). */
enum urt_sim_profile {
	URT_SIM_SSD = 0,	/**< Fixed latencies, `parallelism` commands served at once. */
	URT_SIM_HDD,		/**< One command at a time: seek, rotation and transfer. */
};

/** Options of a simulated device; start from urt_sim_opts_default(). */
struct urt_sim_opts {
	uint64_t size_bytes;		/**< Capacity, a multiple of block_bytes (default 64 MiB). */
	uint32_t block_bytes;		/**< Logical block: 512 or 4096 (default 4096). */
	uint32_t max_io_bytes;		/**< Largest command; bigger ops are split (default 1 MiB). */
	bool volatile_cache;		/**< Writes are cached until flushed (default true). */
	bool fua;			/**< FUA writes are native: durable on completion (default true). */
	bool emulate_fua;		/**< fua = false: a FUA write acts as write + flush (default true);
					 * false: the FUA flag is ignored, as by a lying device. */
	uint64_t seed;			/**< Seed of the crashes started by crash_after or the hook. */
	uint64_t read_latency_ns;	/**< Per read command; 0 = complete at once (default 0). */
	uint64_t write_latency_ns;	/**< Per write, write-zeroes or deallocate command (default 0). */
	uint64_t flush_latency_ns;	/**< Per flush; also added to an emulated FUA write (default 0). */
	bool flush_serial;		/**< Flushes run one at a time in submission order, as a drive
					 * drains its one cache: a flush submitted at t completes at
					 * max(t, end of the previous flush) + flush_latency_ns, and
					 * an emulated FUA write's flush queues the same way (default
					 * true); false: concurrent flushes overlap freely. */
	uint32_t cache_entries_max;	/**< Cached writes before the oldest is evicted (default 4096). */
	uint64_t cache_bytes_max;	/**< Cached bytes before the oldest is evicted (default 16 MiB). */
	enum urt_sim_profile profile;	/**< Timing model (default URT_SIM_SSD). */
	uint32_t parallelism;		/**< SSD: reads and writes served at once; later ones wait for a
					 * free slot (0 = unbounded, the default). */
	uint64_t hdd_seek_track_ns;	/**< HDD: seek to the next track (default 0.8 ms). */
	uint64_t hdd_seek_full_ns;	/**< HDD: full-stroke seek (default 18 ms); the curve is a square
					 * root up to 40% of the stroke, then linear, with one slope. */
	uint32_t hdd_rpm;		/**< HDD: spindle speed (default 7200). */
	uint32_t hdd_track_bytes;	/**< HDD: bytes per track (default 1 MiB: 126 MB/s at 7200 rpm). */
	uint64_t cmd_timeout_ns;	/**< How long a command hit by URT_SIM_FAULT_TIMEOUT or _HANG waits
					 * before the simulated driver aborts it with -ETIMEDOUT, as the
					 * NVMe driver's io_timeout does (default 30 s, its default). */
	uint64_t reset_latency_ns;	/**< How long a controller reset takes (default 0). */
};

/** Faults that urt_sim_inject arms. */
enum urt_sim_fault {
	URT_SIM_FAULT_READ_EIO = 1,	/**< A read overlapping the range fails with -EIO. */
	URT_SIM_FAULT_WRITE_EIO,	/**< A write overlapping the range fails with -EIO; nothing lands. */
	URT_SIM_FAULT_FLUSH_EIO,	/**< A flush fails with -EIO and makes nothing durable. */
	URT_SIM_FAULT_MISDIRECT,	/**< A write overlapping the range succeeds but lands one
					 * block further (one block back at the end of the device). */
	URT_SIM_FAULT_TIMEOUT,		/**< A read, write or flush overlapping the range (a flush: when
					 * len is 0) does nothing and, cmd_timeout_ns later, fails
					 * with -ETIMEDOUT: a stalled device whose driver aborted the
					 * command.  A controller reset does not cure it. */
	URT_SIM_FAULT_HANG,		/**< The same, but a successful controller reset (the recovery's,
					 * dev/health.c) removes every armed HANG: a hung controller
					 * that a reset revives. */
	URT_SIM_FAULT_RESET_FAIL,	/**< A controller reset fails with -EIO (range ignored). */
	URT_SIM_FAULT_GONE,		/**< The device is gone, as when the driver removes a controller
					 * whose reset failed or the drive is pulled: a command fails at
					 * once with -ENODEV (range ignored, one count per command), and
					 * while the rule is armed a controller reset fails with -ENODEV.
					 * The runtime takes the device OFFLINE at the first such result. */
};

/** Counters of a simulated device, from urt_sim_stats(). */
struct urt_sim_stats {
	uint64_t reads;			/**< Read commands. */
	uint64_t writes;		/**< Write commands, FUA or not (write-zeroes and deallocate apart). */
	uint64_t fua_writes;		/**< Write commands with the FUA flag. */
	uint64_t flushes;		/**< Flush commands (FLUSH and FSYNC). */
	uint64_t zeroes;		/**< Write-zeroes commands. */
	uint64_t deallocates;		/**< Deallocate commands. */
	uint64_t bytes_read;		/**< Bytes returned by reads. */
	uint64_t bytes_written;		/**< Bytes carried by writes. */
	uint64_t commands;		/**< Write-type and flush commands since open: what crash_after counts. */
	uint64_t evictions;		/**< Cached writes made durable because the cache was full. */
	uint64_t faults;		/**< Injected faults that fired. */
	uint64_t flushes_queued;	/**< Flushes (and emulated FUA writes) that waited for an earlier flush. */
	uint64_t flush_queued_ns;	/**< Total time they waited for earlier flushes (flush_serial). */
	uint64_t cache_entries;		/**< Writes cached now (completed or in flight, not durable). */
	uint64_t cache_bytes;		/**< Data bytes cached now. */
	bool crashed;			/**< The device lost power. */
	uint64_t crash_dropped;		/**< At the crash: cached writes of which no sector landed. */
	uint64_t crash_applied;		/**< At the crash: cached writes of which every sector landed. */
	uint64_t crash_torn;		/**< At the crash: cached writes of which some sectors landed. */
	uint64_t seek_bytes;		/**< HDD: head travel, bytes of offset, summed over commands. */
	uint64_t seek_ns;		/**< HDD: time spent seeking. */
	uint64_t rotate_ns;		/**< HDD: time spent waiting for the sector to come round. */
	uint64_t transfer_ns;		/**< HDD: time spent transferring. */
	uint64_t slot_waits;		/**< Commands that waited for the head (HDD) or a free slot (SSD). */
	uint64_t slot_wait_ns;		/**< Total time they waited. */
	uint64_t timeouts;		/**< Commands that timed out (URT_SIM_FAULT_TIMEOUT, _HANG). */
	uint64_t resets;		/**< Controller resets asked for, failed ones included. */
};

/** A write-type or flush command, as passed to the hook. */
struct urt_sim_cmd {
	uint64_t index;			/**< Its number, counted from 1 since the device was opened. */
	uint8_t op;			/**< enum urt_op: WRITE, WRITEV, WRITE_ZEROES, DEALLOCATE, FLUSH, FSYNC. */
	bool fua;			/**< A FUA write. */
	uint64_t off;			/**< Byte offset (0 for flushes). */
	uint64_t len;			/**< Byte length (0 for flushes). */
};

/**
 * Called for every write-type and flush command right after the device has
 * accepted it (it is in flight, in the cache).  Returning true cuts the
 * power at that point, exactly as urt_sim_crash(dev, seed) would with the
 * seed documented at urt_sim_crash_after.  It runs on the submitting reactor
 * thread with the device's lock held: it must not call urt_sim_* on the
 * same device, nor block.
 */
typedef bool (*urt_sim_hook_fn)(void *arg, const struct urt_sim_cmd *cmd);

/** Fill o with the defaults listed in struct urt_sim_opts. */
URT_API void urt_sim_opts_default(struct urt_sim_opts *o);

/**
 * Parse the options of a "sim:" path into o (which it first resets to the
 * defaults): "sim:SIZE[,KEY[=VALUE]]...", SIZE with an optional K, M, G or T,
 * keys hdd, ssd, par=N (parallelism), read_us=, write_us=, flush_us=,
 * rpm=, seek_ms= (full stroke).  For example "sim:1G,hdd" or
 * "sim:256M,ssd,par=4,write_us=100,flush_us=1000".  0 or -EINVAL with
 * urt_last_error() naming the bad part: an unknown key, a size above
 * 64 GiB, or a value outside its range (par 0..64, rpm 1..1000000, the
 * _us keys up to one hour, seek_ms up to 3600000).
 */
URT_API int urt_sim_opts_parse(const char *path, struct urt_sim_opts *o);

/**
 * Open a sim device with an all-zero image.  NULL o means the defaults.
 * Returns 0, -EINVAL for an inconsistent option (urt_last_error() says
 * which), or -ENOMEM.  urt_dev_open("sim:SIZE", opts with backend "sim" or
 * NULL) opens one too, with default options and SIZE bytes (suffixes K, M, G, T
 * accepted, and the options of urt_sim_opts_parse).  Close it with urt_dev_close.
 */
URT_API int urt_sim_open(const struct urt_sim_opts *o, struct urt_dev **out);

/** Whether dev is a sim device. */
URT_API bool urt_sim_is(const struct urt_dev *dev);

/**
 * Cut the power now.  Every cached write, in submission order, is dropped,
 * applied or torn (each 512-byte sector independently old or new), drawn
 * from a generator seeded with seed; a sector that a newer durable write
 * already covers is never overwritten.  From then on the device is frozen:
 * ops in flight and every later op fail with -EIO (never retried by the
 * runtime), and urt_dev_error(dev) is -EIO.  Returns 0, -EINVAL when dev is
 * not a sim device, -EALREADY when it has crashed already.
 */
URT_API int urt_sim_crash(struct urt_dev *dev, uint64_t seed);

/**
 * Arm a crash right after the n-th write-type or flush command submitted
 * from now on (n >= 1; split parts of a large op and retries each count
 * once).  That command is in flight when the power goes, so it may land
 * partly or not at all; no later command has any effect.  The crash seed
 * is opts.seed mixed with the command's index (struct urt_sim_cmd.index),
 * so every crash point draws differently and reproducibly.  n = 0 disarms.
 * Returns 0, -EINVAL (not a sim device), -EALREADY (crashed already).
 */
URT_API int urt_sim_crash_after(struct urt_dev *dev, uint64_t n);

/** Install (fn != NULL) or remove the command hook.  0 or -EINVAL. */
URT_API int urt_sim_set_hook(struct urt_dev *dev, urt_sim_hook_fn fn, void *arg);

/**
 * Open a new sim device whose image is the post-crash durable image of
 * crashed, with the same options.  crashed stays valid (and frozen) until
 * closed, and may be reopened again, giving the same image each time.
 * Returns 0, -EINVAL (not a sim device, or it has not crashed: after a
 * final flush a crash loses nothing), or -ENOMEM.
 */
URT_API int urt_sim_reopen(struct urt_dev *crashed, struct urt_dev **out);

/**
 * Copy [off, off+len) of the durable image into buf: what would survive a
 * crash that drops every cached write, or after a crash, the post-crash
 * image.  Any alignment.  0, or -EINVAL (not a sim device, out of range).
 */
URT_API int urt_sim_read_durable(struct urt_dev *dev, void *buf, uint64_t len, uint64_t off);

/**
 * Arm a fault for the next count commands of its kind that overlap
 * [off, off+len) (len 0: the whole device; ignored for flushes).  count
 * URT_SIM_FOREVER never runs out; count 0 removes every armed fault of that
 * kind.  Up to 16 faults may be armed at once.  Returns 0, -EINVAL (bad
 * kind or range, not a sim device), or -ENOSPC (table full).
 */
URT_API int urt_sim_inject(struct urt_dev *dev, enum urt_sim_fault kind, uint64_t off, uint64_t len,
			   uint32_t count);

/** Copy the device's counters into out.  0 or -EINVAL. */
URT_API int urt_sim_stats(const struct urt_dev *dev, struct urt_sim_stats *out);

URT_END_DECLS

#endif /* URT_SIM_H */
