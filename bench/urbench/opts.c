/*
 * Command-line parsing and validation for urbench.
 *
 * Every check that needs only the command line happens here, so that a bad
 * combination is refused with one line before any device is opened.  Checks
 * that need the device (O_DIRECT alignment, passthrough on a non-NVMe path,
 * a mode the kernel refuses) happen in run.c and end the same way: one line
 * and exit status 2.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "urt/dev.h"
#include "urt/error.h"
#include "urt/sim.h"

#include "urbench/opts.h"

#include "urt/buf.h"

const char ub_usage[] =
	"usage: urbench [TARGET] [options]\n"
	"       urbench JOBFILE.ini|.fio [options]   (fio-style job file; see urbench(1), JOB FILES)\n"
	"       urbench              (no arguments: 30 s psync vs uring+fixedbufs+regfiles compare,\n"
	"                             4 KiB randread at QD1 and QD32 on a 1 GiB O_DIRECT temp file)\n"
	"       urbench --list       (the NVMe controllers and namespaces: /dev/ngXnY paths, access,\n"
	"                             LBA formats, MDTS, write cache, poll queues, interrupt coalescing)\n"
	"\n"
	"TARGET is a regular file (created and filled when missing, see --size), a block\n"
	"device, an NVMe generic char device (/dev/ngXnY, --mode passthru), sim:SIZE for the\n"
	"simulated device (sim:SIZE,hdd: the disk model, docs/sim.md), or nop (IORING_OP_NOP, no\n"
	"device: the CPU ceiling).\n"
	"\n"
	"Workload:\n"
	"  -t, --target PATH      the target (or give it as the first argument)\n"
	"  -s, --size SIZE        size of a created file or of sim; on an existing target,\n"
	"                         the region to use (K/M/G/T suffixes; default 1G / whole)\n"
	"  -w, --rw KIND          randread|randwrite|read|write|randrw (default randread)\n"
	"      --rwmix PCT        randrw: percent of reads (default 50)\n"
	"  -b, --bs SIZE          block size (default 4K)\n"
	"  -q, --qd N             queue depth per core; psync: threads per core (default 1)\n"
	"  -c, --cores N          run on the first N CPUs (default 1)\n"
	"      --cpus LIST        run on these CPUs, e.g. 0,1 or 0-3\n"
	"  -r, --runtime SEC      measured time (default 10)\n"
	"  -n, --ops N            measured ops in total instead of a time\n"
	"      --ramp SEC         unmeasured warm-up before the measurement (default 0)\n"
	"      --seed N           seed of the random offsets (default 1)\n"
	"      --direct           O_DIRECT (default)\n"
	"      --buffered         through the page cache\n"
	"      --fua              writes are FUA (RWF_DSYNC)\n"
	"      --fsync-every N    a flush after every N writes of a worker\n"
	"      --verify           writes write an offset signature; reads check it\n"
	"      --sched POL[:DEPTH] the runtime's I/O scheduler on the target: none, fifo, sstf,\n"
	"                         scan or cscan, DEPTH commands in flight per core (default none)\n"
	"\n"
	"Engine:\n"
	"  -m, --mode MODE        psync | uring | passthru, the last two with modifiers\n"
	"                         +fixedbufs +regfiles +sqpoll +iopoll +hybrid\n"
	"                         (e.g. uring+fixedbufs+regfiles+sqpoll; default uring)\n"
	"      --compare M1,M2,.. run each mode in turn; one table, ratios to M1\n"
	"\n"
	"Output:\n"
	"      --json             JSON on stdout\n"
	"      --plot FILE.svg    latency distribution and IOPS over time (gnuplot)\n"
	"      --progress         live line every second (default: when stderr is a TTY)\n"
	"      --no-progress      no live line\n"
	"  -h, --help             this text\n"
	"\n"
	"Exit status: 0 done, 1 the run failed (I/O error, verification), 2 bad input or\n"
	"a mode this kernel or device cannot do.  See urbench(1).\n";

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* The CPUs this process may run on, in order.  Returns how many. */
static unsigned cpus_allowed(int *cpus, unsigned max)
{
	cpu_set_t set;
	unsigned n = 0;

	if (sched_getaffinity(0, sizeof(set), &set))
		return 0;
	for (int i = 0; i < CPU_SETSIZE && n < max; i++)
		if (CPU_ISSET(i, &set))
			cpus[n++] = i;
	return n;
}

static bool cpu_allowed(int cpu)
{
	cpu_set_t set;

	if (cpu < 0 || cpu >= CPU_SETSIZE || sched_getaffinity(0, sizeof(set), &set))
		return false;
	return CPU_ISSET(cpu, &set);
}

void ub_opts_default(struct ub_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->size_bytes = 1ull << 30;
	o->rw = UB_RW_RANDREAD;
	o->rwmix_read = 50;
	o->bs = 4096;
	o->qd = 1;
	o->ncpus = cpus_allowed(o->cpus, 1);
	o->runtime_s = 10;
	o->seed = 1;
	o->direct = true;
	o->mode.engine = UB_ENGINE_URING;
	o->progress = -1;
	o->keep = true;
}

int ub_size_parse(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case '\0':
		break;
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default:
		return -EINVAL;
	}
	/* Accept "4KiB" and "4KB" as well as "4K". */
	if (shift && (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0))
		end += strlen(end);
	if (*end)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

static int uint_parse(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int seconds_parse(const char *s, double *out)
{
	char *end;
	double v;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || !isfinite(v) || v < 0)
		return -EINVAL;
	if (*end == 's' && end[1] == '\0')
		end++;
	if (*end)
		return -EINVAL;
	*out = v;
	return 0;
}

static const struct {
	const char *name;
	unsigned mod;
} mod_names[] = {
	{ "fixedbufs", UB_MOD_FIXEDBUFS },
	{ "regfiles", UB_MOD_REGFILES },
	{ "sqpoll", UB_MOD_SQPOLL },
	{ "iopoll", UB_MOD_IOPOLL },
	{ "hybrid", UB_MOD_HYBRID },
};

#define NMODS (sizeof(mod_names) / sizeof(mod_names[0]))

int ub_mode_parse(const char *s, struct ub_mode *m, char *err, size_t errlen)
{
	char buf[128];
	char *save = NULL, *tok;
	unsigned polls;

	if (!s || strlen(s) >= sizeof(buf))
		return fail(err, errlen, "bad --mode: give psync, uring or passthru, optionally with "
			    "+fixedbufs+regfiles+sqpoll+iopoll+hybrid");
	snprintf(buf, sizeof(buf), "%s", s);
	tok = strtok_r(buf, "+", &save);
	if (!tok)
		return fail(err, errlen, "empty --mode: give psync, uring or passthru");
	if (strcmp(tok, "psync") == 0)
		m->engine = UB_ENGINE_PSYNC;
	else if (strcmp(tok, "uring") == 0 || strcmp(tok, "io_uring") == 0)
		m->engine = UB_ENGINE_URING;
	else if (strcmp(tok, "passthru") == 0)
		m->engine = UB_ENGINE_PASSTHRU;
	else
		return fail(err, errlen, "unknown engine \"%s\" in --mode %s: use psync, uring or passthru", tok, s);
	m->mods = 0;
	while ((tok = strtok_r(NULL, "+", &save))) {
		size_t i;

		for (i = 0; i < NMODS; i++)
			if (strcmp(tok, mod_names[i].name) == 0)
				break;
		if (i == NMODS)
			return fail(err, errlen, "unknown modifier \"+%s\" in --mode %s: use +fixedbufs, +regfiles, "
				    "+sqpoll, +iopoll or +hybrid", tok, s);
		m->mods |= mod_names[i].mod;
	}
	if (m->engine == UB_ENGINE_PSYNC && m->mods)
		return fail(err, errlen, "--mode %s: psync takes no modifiers (they are io_uring features); "
			    "use uring+... instead", s);
	polls = m->mods & (UB_MOD_SQPOLL | UB_MOD_IOPOLL | UB_MOD_HYBRID);
	if (polls & (polls - 1))
		return fail(err, errlen, "--mode %s: +sqpoll, +iopoll and +hybrid exclude each other; pick one", s);
	return 0;
}

const char *ub_mode_name(const struct ub_mode *m, char *buf, size_t len)
{
	static const char *const engines[] = { "psync", "uring", "passthru" };
	size_t used;

	snprintf(buf, len, "%s", engines[m->engine]);
	for (size_t i = 0; i < NMODS; i++) {
		if (!(m->mods & mod_names[i].mod))
			continue;
		used = strlen(buf);
		if (used < len)
			snprintf(buf + used, len - used, "+%s", mod_names[i].name);
	}
	return buf;
}

static const char *const rw_names[] = { "randread", "randwrite", "read", "write", "randrw" };

const char *ub_rw_name(enum ub_rw rw)
{
	return rw_names[rw];
}

bool ub_rw_writes(enum ub_rw rw)
{
	return rw == UB_RW_RANDWRITE || rw == UB_RW_WRITE || rw == UB_RW_RANDRW;
}

/* "0,2-3" into cpus.  Every CPU must be one this process may run on. */
static int cpus_parse(const char *s, struct ub_opts *o, char *err, size_t errlen)
{
	char buf[256];
	char *save = NULL, *tok;

	if (strlen(s) >= sizeof(buf))
		return fail(err, errlen, "--cpus list too long");
	snprintf(buf, sizeof(buf), "%s", s);
	o->ncpus = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		uint64_t lo, hi;
		char *dash = strchr(tok, '-');

		if (dash)
			*dash = '\0';
		if (uint_parse(tok, CPU_SETSIZE - 1, &lo) || (dash && uint_parse(dash + 1, CPU_SETSIZE - 1, &hi)))
			return fail(err, errlen, "bad --cpus %s: give CPU numbers like 0,1 or 0-3", s);
		if (!dash)
			hi = lo;
		if (hi < lo)
			return fail(err, errlen, "bad --cpus %s: range %llu-%llu runs backwards", s,
				    (unsigned long long)lo, (unsigned long long)hi);
		for (uint64_t c = lo; c <= hi; c++) {
			if (!cpu_allowed((int)c))
				return fail(err, errlen, "--cpus %s: CPU %llu is offline or outside this process's "
					    "affinity (see nproc / taskset -p $$)", s, (unsigned long long)c);
			for (unsigned i = 0; i < o->ncpus; i++)
				if (o->cpus[i] == (int)c)
					return fail(err, errlen, "--cpus %s: CPU %llu is listed twice", s,
						    (unsigned long long)c);
			if (o->ncpus == UB_CPUS_MAX)
				return fail(err, errlen, "--cpus %s: at most %d CPUs", s, UB_CPUS_MAX);
			o->cpus[o->ncpus++] = (int)c;
		}
	}
	if (o->ncpus == 0)
		return fail(err, errlen, "empty --cpus: give CPU numbers like 0,1");
	return 0;
}

static int compare_parse(const char *s, struct ub_opts *o, char *err, size_t errlen)
{
	char buf[512];
	char *save = NULL, *tok;
	int ret;

	if (strlen(s) >= sizeof(buf))
		return fail(err, errlen, "--compare list too long");
	snprintf(buf, sizeof(buf), "%s", s);
	o->ncompare = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (o->ncompare == UB_COMPARE_MAX)
			return fail(err, errlen, "--compare: at most %d modes", UB_COMPARE_MAX);
		ret = ub_mode_parse(tok, &o->compare[o->ncompare], err, errlen);
		if (ret)
			return ret;
		o->ncompare++;
	}
	if (o->ncompare < 2)
		return fail(err, errlen, "--compare needs at least two modes, e.g. --compare psync,uring");
	return 0;
}

enum {
	OPT_RWMIX = 256, OPT_CPUS, OPT_RAMP, OPT_SEED, OPT_DIRECT, OPT_BUFFERED, OPT_FUA, OPT_FSYNC_EVERY,
	OPT_VERIFY, OPT_JSON, OPT_PLOT, OPT_COMPARE, OPT_PROGRESS, OPT_NO_PROGRESS, OPT_SCHED,
};

static const struct option long_opts[] = {
	{ "target", required_argument, NULL, 't' },
	{ "size", required_argument, NULL, 's' },
	{ "rw", required_argument, NULL, 'w' },
	{ "rwmix", required_argument, NULL, OPT_RWMIX },
	{ "bs", required_argument, NULL, 'b' },
	{ "qd", required_argument, NULL, 'q' },
	{ "cores", required_argument, NULL, 'c' },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "runtime", required_argument, NULL, 'r' },
	{ "ops", required_argument, NULL, 'n' },
	{ "ramp", required_argument, NULL, OPT_RAMP },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "direct", no_argument, NULL, OPT_DIRECT },
	{ "buffered", no_argument, NULL, OPT_BUFFERED },
	{ "mode", required_argument, NULL, 'm' },
	{ "fua", no_argument, NULL, OPT_FUA },
	{ "fsync-every", required_argument, NULL, OPT_FSYNC_EVERY },
	{ "verify", no_argument, NULL, OPT_VERIFY },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "plot", required_argument, NULL, OPT_PLOT },
	{ "compare", required_argument, NULL, OPT_COMPARE },
	{ "progress", no_argument, NULL, OPT_PROGRESS },
	{ "no-progress", no_argument, NULL, OPT_NO_PROGRESS },
	{ "sched", required_argument, NULL, OPT_SCHED },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int target_set(struct ub_opts *o, const char *t, char *err, size_t errlen)
{
	if (!*t)
		return fail(err, errlen, "empty target: give a file, block device, /dev/ngXnY, sim:SIZE or nop");
	if (strlen(t) >= sizeof(o->target))
		return fail(err, errlen, "target path longer than %d bytes", UB_PATH_MAX - 1);
	if (o->target[0])
		return fail(err, errlen, "two targets given (%s and %s): give one", o->target, t);
	snprintf(o->target, sizeof(o->target), "%s", t);
	return 0;
}

/* Checks that need the whole command line. */
static int opts_check(struct ub_opts *o, bool size_given, bool rwmix_given, bool runtime_given,
		      bool mode_given, char *err, size_t errlen)
{
	struct ub_mode modes[UB_COMPARE_MAX + 1];
	unsigned nmodes = 0;

	if (!o->target[0])
		return fail(err, errlen, "no target: give a file, block device, /dev/ngXnY, sim:SIZE or nop "
			    "(or no arguments at all for the built-in compare)");
	if (strcmp(o->target, "nop") == 0) {
		o->target_kind = UB_TARGET_NOP;
	} else if (strncmp(o->target, "sim:", 4) == 0) {
		o->target_kind = UB_TARGET_SIM;
		o->size_given = true;
		struct urt_sim_opts so;

		/* The runtime's message names the path and its bad part. */
		if (urt_sim_opts_parse(o->target, &so))
			return fail(err, errlen, "bad target: %s", urt_last_error());
		o->size_bytes = so.size_bytes;
	} else {
		o->target_kind = UB_TARGET_PATH;
	}
	if (o->size_bytes == 0)
		return fail(err, errlen, "--size must be more than 0");
	if (size_given && o->target_kind == UB_TARGET_NOP)
		return fail(err, errlen, "--size means nothing for the nop target: drop it");
	if (rwmix_given && o->rw != UB_RW_RANDRW)
		return fail(err, errlen, "--rwmix needs --rw randrw");
	if ((o->fua || o->fsync_every) && !ub_rw_writes(o->rw))
		return fail(err, errlen, "--fua and --fsync-every need a write workload (--rw randwrite, write "
			    "or randrw)");
	if (o->ops && runtime_given)
		return fail(err, errlen, "--ops and --runtime exclude each other: give one");
	if (!o->ops && o->runtime_s <= 0)
		return fail(err, errlen, "--runtime must be more than 0 seconds");
	if (o->bs == 0 || o->bs > URT_BUF_MAX_BYTES)
		return fail(err, errlen, "--bs %u out of range: give 1 byte to %u KiB", o->bs, URT_BUF_MAX_BYTES >> 10);
	if ((uint64_t)o->bs > o->size_bytes && o->target_kind != UB_TARGET_NOP)
		return fail(err, errlen, "--bs %u is larger than --size %llu", o->bs,
			    (unsigned long long)o->size_bytes);
	if (o->qd == 0 || o->qd > UB_QD_MAX)
		return fail(err, errlen, "--qd %u out of range: give 1..%d", o->qd, UB_QD_MAX);
	if (o->ncpus == 0)
		return fail(err, errlen, "no CPU to run on");
	if (o->ncompare && mode_given)
		return fail(err, errlen, "give --mode or --compare, not both");
	if (o->ncompare) {
		memcpy(modes, o->compare, o->ncompare * sizeof(modes[0]));
		nmodes = o->ncompare;
	} else {
		modes[nmodes++] = o->mode;
	}
	for (unsigned i = 0; i < nmodes; i++) {
		char name[96];

		ub_mode_name(&modes[i], name, sizeof(name));
		if (modes[i].engine == UB_ENGINE_PSYNC && o->target_kind == UB_TARGET_NOP)
			return fail(err, errlen, "psync has no nop target: use --mode uring with nop, or a file with psync");
		if (modes[i].engine == UB_ENGINE_PSYNC && o->target_kind == UB_TARGET_SIM)
			return fail(err, errlen, "psync cannot drive the simulated device (it lives inside urt): "
				    "use --mode uring with sim:SIZE");
		if (modes[i].engine == UB_ENGINE_PSYNC && o->qd * o->ncpus > UB_QD_MAX)
			return fail(err, errlen, "psync runs --qd x cores = %u threads; at most %d", o->qd * o->ncpus,
				    UB_QD_MAX);
		if ((modes[i].mods & UB_MOD_IOPOLL) && !o->direct)
			return fail(err, errlen, "--mode %s needs --direct: buffered I/O cannot be polled", name);
		if (modes[i].engine == UB_ENGINE_PASSTHRU && o->target_kind != UB_TARGET_PATH)
			return fail(err, errlen, "--mode %s needs an NVMe generic char device (/dev/ngXnY) as target",
				    name);
		if (modes[i].engine == UB_ENGINE_PASSTHRU && !o->direct)
			return fail(err, errlen, "--mode %s bypasses the page cache: drop --buffered", name);
		if ((modes[i].mods & (UB_MOD_REGFILES | UB_MOD_FIXEDBUFS)) && o->target_kind == UB_TARGET_NOP)
			return fail(err, errlen, "--mode %s: the nop target has no file or buffer to register; "
				    "use uring, uring+sqpoll or uring+hybrid", name);
	}
	if (o->verify && o->target_kind == UB_TARGET_SIM && o->rw != UB_RW_WRITE && o->rw != UB_RW_RANDWRITE)
		return fail(err, errlen, "--verify on sim:SIZE needs --rw write or randwrite: the simulated device "
			    "starts zeroed and lives only for one run");
	if (o->verify && o->target_kind == UB_TARGET_NOP)
		return fail(err, errlen, "--verify needs data: the nop target moves none");
	if (o->verify && o->bs % 8)
		return fail(err, errlen, "--verify needs --bs a multiple of 8 bytes (the signature is per 8-byte word)");
	return 0;
}

int ub_opts_parse(int argc, char **argv, struct ub_opts *o, char *err, size_t errlen)
{
	bool size_given = false, rwmix_given = false, runtime_given = false, mode_given = false;
	bool cores_given = false, cpus_given = false;
	uint64_t v;
	int c, ret;

	err[0] = '\0';
	if (argc <= 1) {
		/* The README's main job: see main.c for the sequence. */
		o->defaulted = true;
		o->rw = UB_RW_RANDREAD;
		o->bs = 4096;
		o->direct = true;
		o->runtime_s = 5;
		o->ramp_s = 1;
		o->size_bytes = 1ull << 30;
		o->ncompare = 2;
		o->compare[0] = (struct ub_mode){ .engine = UB_ENGINE_PSYNC };
		o->compare[1] = (struct ub_mode){ .engine = UB_ENGINE_URING,
						  .mods = UB_MOD_FIXEDBUFS | UB_MOD_REGFILES };
		return 0;
	}
	optind = 0;	/* Full reinitialisation, so that tests may parse many times. */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":t:s:w:b:q:c:r:n:m:h", long_opts, NULL)) != -1) {
		switch (c) {
		case 't':
			ret = target_set(o, optarg, err, errlen);
			if (ret)
				return ret;
			break;
		case 's':
			if (ub_size_parse(optarg, &o->size_bytes) || o->size_bytes == 0)
				return fail(err, errlen, "bad --size %s: give bytes with an optional K/M/G/T suffix, e.g. 1G",
					    optarg);
			size_given = true;
			o->size_given = true;
			break;
		case 'w': {
			size_t i;

			for (i = 0; i < sizeof(rw_names) / sizeof(rw_names[0]); i++)
				if (strcmp(optarg, rw_names[i]) == 0)
					break;
			if (i == sizeof(rw_names) / sizeof(rw_names[0]))
				return fail(err, errlen, "unknown --rw %s: use randread, randwrite, read, write or randrw",
					    optarg);
			o->rw = (enum ub_rw)i;
			break;
		}
		case OPT_RWMIX:
			if (uint_parse(optarg, 100, &v))
				return fail(err, errlen, "bad --rwmix %s: give the percent of reads, 0..100", optarg);
			o->rwmix_read = (unsigned)v;
			rwmix_given = true;
			break;
		case 'b':
			if (ub_size_parse(optarg, &v) || v == 0 || v > URT_BUF_MAX_BYTES)
				return fail(err, errlen, "bad --bs %s: give 1 byte to %u KiB, e.g. 4K", optarg,
					    URT_BUF_MAX_BYTES >> 10);
			o->bs = (uint32_t)v;
			break;
		case 'q':
			if (uint_parse(optarg, UB_QD_MAX, &v) || v == 0)
				return fail(err, errlen, "bad --qd %s: give 1..%d", optarg, UB_QD_MAX);
			o->qd = (unsigned)v;
			break;
		case 'c': {
			int all[UB_CPUS_MAX];
			unsigned n = cpus_allowed(all, UB_CPUS_MAX);

			if (uint_parse(optarg, UB_CPUS_MAX, &v) || v == 0)
				return fail(err, errlen, "bad --cores %s: give 1..%u", optarg, n);
			if (v > n)
				return fail(err, errlen, "--cores %s: this process may run on %u CPUs only", optarg, n);
			memcpy(o->cpus, all, v * sizeof(int));
			o->ncpus = (unsigned)v;
			cores_given = true;
			break;
		}
		case OPT_CPUS:
			ret = cpus_parse(optarg, o, err, errlen);
			if (ret)
				return ret;
			cpus_given = true;
			break;
		case 'r':
			if (seconds_parse(optarg, &o->runtime_s) || o->runtime_s <= 0 || o->runtime_s > 86400)
				return fail(err, errlen, "bad --runtime %s: give seconds, more than 0", optarg);
			runtime_given = true;
			break;
		case 'n':
			if (uint_parse(optarg, UINT64_MAX / 2, &v) || v == 0)
				return fail(err, errlen, "bad --ops %s: give a count, more than 0", optarg);
			o->ops = v;
			break;
		case OPT_RAMP:
			if (seconds_parse(optarg, &o->ramp_s) || o->ramp_s > 3600)
				return fail(err, errlen, "bad --ramp %s: give seconds, 0 or more", optarg);
			break;
		case OPT_SEED:
			if (uint_parse(optarg, UINT64_MAX, &v))
				return fail(err, errlen, "bad --seed %s: give an unsigned integer", optarg);
			o->seed = v;
			break;
		case OPT_DIRECT:
			o->direct = true;
			break;
		case OPT_BUFFERED:
			o->direct = false;
			break;
		case 'm':
			ret = ub_mode_parse(optarg, &o->mode, err, errlen);
			if (ret)
				return ret;
			mode_given = true;
			break;
		case OPT_FUA:
			o->fua = true;
			break;
		case OPT_SCHED: {
			char pol[16];
			const char *colon = strchr(optarg, ':');
			size_t plen = colon ? (size_t)(colon - optarg) : strlen(optarg);
			enum urt_sched_policy p;

			snprintf(pol, sizeof(pol), "%.*s", (int)(plen < sizeof(pol) ? plen : sizeof(pol) - 1), optarg);
			if (urt_sched_policy_parse(pol, &p))
				return fail(err, errlen, "bad --sched %s: give none, fifo, sstf, scan or cscan, "
					    "optionally :DEPTH", optarg);
			o->sched_policy = (int)p;
			o->sched_depth = 0;
			if (colon && (uint_parse(colon + 1, 65536, &v) || v == 0))
				return fail(err, errlen, "bad --sched %s: DEPTH is 1..65536", optarg);
			if (colon)
				o->sched_depth = (unsigned)v;
			break;
		}
		case OPT_FSYNC_EVERY:
			if (uint_parse(optarg, UINT32_MAX, &v) || v == 0)
				return fail(err, errlen, "bad --fsync-every %s: give a write count, more than 0", optarg);
			o->fsync_every = (unsigned)v;
			break;
		case OPT_VERIFY:
			o->verify = true;
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case OPT_PLOT:
			if (!*optarg || strlen(optarg) >= sizeof(o->plot))
				return fail(err, errlen, "bad --plot path: give FILE.svg");
			snprintf(o->plot, sizeof(o->plot), "%s", optarg);
			break;
		case OPT_COMPARE:
			ret = compare_parse(optarg, o, err, errlen);
			if (ret)
				return ret;
			break;
		case OPT_PROGRESS:
			o->progress = 1;
			break;
		case OPT_NO_PROGRESS:
			o->progress = 0;
			break;
		case 'h':
			o->help = true;
			return 0;
		case ':':
			return fail(err, errlen, "option %s needs a value (see urbench --help)", argv[optind - 1]);
		default:
			if (optopt)
				return fail(err, errlen, "unknown option -%c (see urbench --help)", optopt);
			return fail(err, errlen, "unknown option %s (see urbench --help)", argv[optind - 1]);
		}
	}
	for (; optind < argc; optind++) {
		ret = target_set(o, argv[optind], err, errlen);
		if (ret)
			return ret;
	}
	if (cores_given && cpus_given)
		return fail(err, errlen, "give --cores or --cpus, not both");
	return opts_check(o, size_given, rwmix_given, runtime_given, mode_given, err, errlen);
}
