/*
 * fio-style job files (see jobfile.h).
 *
 * Reading: libinih parses the INI syntax; our line reader (handed to
 * ini_parse_stream) counts lines and sees every [section] header, which the
 * handler alone cannot: Debian's libinih is built without line numbers in
 * the handler and does not call it for a section that has no keys, and a
 * fio job section is often empty (`[randread]`, everything in [global]).
 * The reader opens a job at its header by copying the [global] keys read so
 * far (fio's rule: a [global] applies to the jobs after it); the handler
 * appends each key, ${VAR} expanded, to the section being read.
 *
 * Translating: job_argv() takes the last value of each key (later keys
 * override earlier ones, a job's own override [global]) and writes the
 * urbench command line.  Values are checked by ub_opts_parse() on that
 * command line; its error names the urbench option, which we map back to
 * the key that produced it, so the message names the section and key.
 */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "urbench/app.h"
#include "urbench/jobfile.h"
#include "urbench/opts.h"

/* What a key means; one translation rule each (see job_argv). */
enum key_kind {
	K_RW, K_BS, K_SIZE, K_IO_SIZE, K_FILENAME, K_RUNTIME, K_TIME_BASED, K_NUMJOBS, K_IODEPTH,
	K_DIRECT, K_BUFFERED, K_IOENGINE, K_FIXEDBUFS, K_REGISTERFILES, K_SQTHREAD_POLL, K_HIPRI,
	K_CMD_TYPE, K_CPUS_ALLOWED, K_RAMP_TIME, K_RANDSEED, K_RANDREPEAT, K_RWMIXREAD, K_RWMIXWRITE,
	K_FSYNC, K_SYNC, K_NUMBER_IOS, K_NAME,
	/* urbench's own names. */
	K_MODE, K_COMPARE, K_QD, K_CORES, K_OPS, K_VERIFY, K_FUA,
	/* fio keys that describe what urbench always does: checked, nothing emitted. */
	K_THREAD, K_SAME, K_NORANDOMMAP, K_LAT_PERCENTILES,
	/* fio reporting keys urbench does not follow: a warning, nothing emitted. */
	K_REPORT,
	K_COUNT
};

static const struct {
	const char *name;
	enum key_kind kind;
} keys[] = {
	{ "rw", K_RW }, { "readwrite", K_RW }, { "bs", K_BS }, { "blocksize", K_BS }, { "size", K_SIZE },
	{ "io_size", K_IO_SIZE }, { "io_limit", K_IO_SIZE }, { "filename", K_FILENAME },
	{ "runtime", K_RUNTIME }, { "time_based", K_TIME_BASED }, { "numjobs", K_NUMJOBS },
	{ "iodepth", K_IODEPTH }, { "direct", K_DIRECT }, { "buffered", K_BUFFERED }, { "ioengine", K_IOENGINE },
	{ "fixedbufs", K_FIXEDBUFS }, { "registerfiles", K_REGISTERFILES }, { "sqthread_poll", K_SQTHREAD_POLL },
	{ "hipri", K_HIPRI }, { "cmd_type", K_CMD_TYPE }, { "cpus_allowed", K_CPUS_ALLOWED },
	{ "ramp_time", K_RAMP_TIME }, { "randseed", K_RANDSEED }, { "randrepeat", K_RANDREPEAT },
	{ "rwmixread", K_RWMIXREAD }, { "rwmixwrite", K_RWMIXWRITE }, { "fsync", K_FSYNC },
	{ "fdatasync", K_FSYNC }, { "sync", K_SYNC }, { "number_ios", K_NUMBER_IOS }, { "name", K_NAME },
	{ "description", K_NAME },
	{ "mode", K_MODE }, { "compare", K_COMPARE }, { "qd", K_QD }, { "cores", K_CORES }, { "cpus", K_CPUS_ALLOWED },
	{ "ops", K_OPS }, { "verify", K_VERIFY }, { "fua", K_FUA }, { "target", K_FILENAME },
	{ "thread", K_THREAD }, { "stonewall", K_SAME }, { "wait_for_previous", K_SAME }, { "new_group", K_SAME },
	{ "group_reporting", K_SAME }, { "norandommap", K_NORANDOMMAP }, { "lat_percentiles", K_LAT_PERCENTILES },
	{ "percentile_list", K_REPORT }, { "clat_percentiles", K_REPORT }, { "slat_percentiles", K_REPORT },
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static int key_find(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* State of one load: the reader's and the handler's view of the file. */
struct loader {
	struct ub_jobfile *jf;
	FILE *f;
	unsigned line;		/* Lines handed to inih so far. */
	struct ub_job *cur;	/* Section being read; NULL before the first. */
	int err;		/* First error, or 0. */
	char errmsg[512];	/* Its message. */
};

static void load_fail(struct loader *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void load_fail(struct loader *l, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (l->err)
		return;
	l->err = -EINVAL;
	n = snprintf(l->errmsg, sizeof(l->errmsg), "%s:%u: ", l->jf->path, l->line);
	va_start(ap, fmt);
	vsnprintf(l->errmsg + n, sizeof(l->errmsg) - (size_t)n, fmt, ap);
	va_end(ap);
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* A [section] header: open the job (or switch to [global]). */
static void section_open(struct loader *l, const char *name)
{
	struct ub_jobfile *jf = l->jf;
	struct ub_job *j;

	if (!*name) {
		load_fail(l, "empty section name []");
		return;
	}
	if (strlen(name) >= UB_JOB_NAME_MAX) {
		load_fail(l, "section name [%.20s...] longer than %d characters", name, UB_JOB_NAME_MAX - 1);
		return;
	}
	if (strcmp(name, "global") == 0) {
		l->cur = &jf->global;
		return;
	}
	for (unsigned i = 0; i < jf->njobs; i++)
		if (strcmp(jf->jobs[i].name, name) == 0) {
			load_fail(l, "[%s] appears twice (first at line %u): give each job its own name", name,
				  jf->jobs[i].line);
			return;
		}
	if (jf->njobs == UB_JOBS_MAX) {
		load_fail(l, "[%s]: at most %d jobs in one file", name, UB_JOBS_MAX);
		return;
	}
	j = &jf->jobs[jf->njobs++];
	*j = jf->global;	/* The [global] keys so far apply to this job. */
	snprintf(j->name, sizeof(j->name), "%s", name);
	j->line = l->line;
	l->cur = j;
}

/* inih's line reader: counts lines, sees headers and key lines without '='. */
static char *reader(char *str, int num, void *stream)
{
	struct loader *l = stream;
	char copy[256], *s;
	size_t len;

	if (l->err || !fgets(str, num, l->f))
		return NULL;
	l->line++;
	len = strlen(str);
	if (len && str[len - 1] != '\n' && !feof(l->f)) {
		load_fail(l, "line longer than %d characters", num - 2);
		return NULL;
	}
	snprintf(copy, sizeof(copy), "%s", str);
	s = trim(copy);
	if (!*s || *s == ';' || *s == '#')
		return str;
	if (*s == '[') {
		char *end = strchr(s, ']');

		if (!end) {
			load_fail(l, "section header %s has no closing ]", s);
			return NULL;
		}
		*end = '\0';
		section_open(l, trim(s + 1));
		return l->err ? NULL : str;
	}
	if (!strchr(s, '=') && !strchr(s, ':')) {
		if (!l->cur)
			load_fail(l, "%s: a line without a value before the first [section]: write key=value lines "
				  "under [global] or a job", s);
		else
			load_fail(l, "[%s] %s: a key without a value; write %s=1 (urbench reads key=value lines only)",
				  l->cur->name, s, s);
		return NULL;
	}
	return str;
}

/* Expand ${NAME} from the environment into out. */
static int expand(struct loader *l, const char *key, const char *v, char *out, size_t outlen)
{
	size_t n = 0;

	while (*v) {
		if (v[0] == '$' && v[1] == '{') {
			const char *end = strchr(v, '}'), *val;
			char name[128];

			if (!end || (size_t)(end - v - 2) >= sizeof(name)) {
				load_fail(l, "[%s] %s: unterminated ${ in the value", l->cur->name, key);
				return -EINVAL;
			}
			memcpy(name, v + 2, (size_t)(end - v - 2));
			name[end - v - 2] = '\0';
			val = getenv(name);
			if (!val) {
				load_fail(l, "[%s] %s: ${%s} is not set in the environment", l->cur->name, key, name);
				return -EINVAL;
			}
			for (; *val && n + 1 < outlen; val++)
				out[n++] = *val;
			v = end + 1;
			continue;
		}
		if (n + 1 < outlen)
			out[n++] = *v;
		v++;
	}
	if (n + 1 >= outlen) {
		load_fail(l, "[%s] %s: value longer than %zu characters", l->cur->name, key, outlen - 1);
		return -EINVAL;
	}
	out[n] = '\0';
	return 0;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct loader *l = user;
	struct ub_job_entry *e;
	char key[UB_JOB_KEY_MAX];
	size_t i;

	if (l->err)
		return 0;
	if (!l->cur) {
		load_fail(l, "%s before the first [section]: put it under [global] or a job", name);
		return 0;
	}
	/* The reader and inih agree on the section; a mismatch is our bug. */
	if (strcmp(section, l->cur == &l->jf->global ? "global" : l->cur->name) != 0) {
		load_fail(l, "[%s] %s: section mismatch between reader and parser", section, name);
		return 0;
	}
	for (i = 0; name[i] && i + 1 < sizeof(key); i++)
		key[i] = (char)tolower((unsigned char)name[i]);
	key[i] = '\0';
	if (name[i] || key_find(key) < 0) {
		load_fail(l, "[%s] unknown option %s (urbench reads fio's rw, bs, iodepth, size, filename, runtime, "
			  "time_based, numjobs, direct, ioengine, fixedbufs, registerfiles, ... and its own mode, qd, "
			  "cores, verify: see urbench(1), JOB FILES)", section, name);
		return 0;
	}
	if (!*value) {
		load_fail(l, "[%s] %s has an empty value", section, name);
		return 0;
	}
	if (l->cur->nentries == UB_JOB_KEYS_MAX) {
		load_fail(l, "[%s]: more than %d keys in one job (with [global])", section, UB_JOB_KEYS_MAX);
		return 0;
	}
	e = &l->cur->entries[l->cur->nentries];
	if (expand(l, key, value, e->value, sizeof(e->value)))
		return 0;
	snprintf(e->key, sizeof(e->key), "%s", key);
	snprintf(e->section, sizeof(e->section), "%s", section);
	e->line = l->line;
	l->cur->nentries++;
	return 1;
}

int ub_jobfile_load(const char *path, struct ub_jobfile **out, char *err, size_t errlen)
{
	struct loader l = { 0 };
	int ret;

	if (strlen(path) >= sizeof(l.jf->path))
		return fail(err, errlen, "job file path longer than %zu bytes", sizeof(l.jf->path) - 1);
	l.f = fopen(path, "r");
	if (!l.f) {
		ret = -errno;
		fail(err, errlen, "cannot open job file %s: %s", path, strerror(-ret));
		return ret;
	}
	l.jf = calloc(1, sizeof(*l.jf));
	if (!l.jf) {
		fclose(l.f);
		fail(err, errlen, "out of memory reading %s", path);
		return -ENOMEM;
	}
	snprintf(l.jf->path, sizeof(l.jf->path), "%s", path);
	snprintf(l.jf->global.name, sizeof(l.jf->global.name), "global");
	ret = ini_parse_stream(reader, &l, handler, &l);
	fclose(l.f);
	if (!l.err && ret > 0) {
		l.line = (unsigned)ret;
		load_fail(&l, "not a [section], key=value, or ; comment line");
	}
	if (!l.err && l.jf->njobs == 0)
		l.err = fail(l.errmsg, sizeof(l.errmsg), "%s: no job: add a [section] per job after [global]", path);
	if (l.err) {
		snprintf(err, errlen, "%s", l.errmsg);
		free(l.jf);
		return l.err;
	}
	*out = l.jf;
	return 0;
}

void ub_jobfile_free(struct ub_jobfile *jf)
{
	free(jf);
}

/* Translation of one job: the last entry of each kind, and the output. */
struct tr {
	const struct ub_jobfile *jf;
	const struct ub_job *job;
	const struct ub_job_entry *last[K_COUNT];
	struct ub_job_argv *a;
	FILE *warn;
	char *err;
	size_t errlen;
};

static int entry_fail(struct tr *t, const struct ub_job_entry *e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int entry_fail(struct tr *t, const struct ub_job_entry *e, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(t->err, t->errlen, "%s:%u: [%s] %s=%s: ", t->jf->path, e->line, t->job->name, e->key,
		     e->value);
	if (n < 0 || (size_t)n >= t->errlen)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(t->err + n, t->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static void warn(struct tr *t, const struct ub_job_entry *e, const char *why)
{
	if (t->warn)
		fprintf(t->warn, "urbench: %s:%u: [%s] %s=%s: %s\n", t->jf->path, e->line, t->job->name, e->key,
			e->value, why);
	t->a->warnings++;
}

static int push(struct tr *t, const struct ub_job_entry *src, const char *s)
{
	struct ub_job_argv *a = t->a;

	if (a->argc >= UB_JOB_ARGS_MAX)
		return fail(t->err, t->errlen, "%s [%s]: more than %d arguments", t->jf->path, t->job->name,
			    UB_JOB_ARGS_MAX);
	snprintf(a->store[a->argc], sizeof(a->store[0]), "%s", s);
	a->argv[a->argc] = a->store[a->argc];
	a->src[a->argc] = src;
	a->argc++;
	a->argv[a->argc] = NULL;
	return 0;
}

static int push2(struct tr *t, const struct ub_job_entry *src, const char *opt, const char *val)
{
	int ret = push(t, src, opt);

	return ret ? ret : push(t, src, val);
}

/* fio booleans: 0 or 1 (also true/false, yes/no). */
static int boolean(struct tr *t, const struct ub_job_entry *e, bool *out)
{
	const char *v = e->value;

	if (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on"))
		*out = true;
	else if (!strcmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off"))
		*out = false;
	else
		return entry_fail(t, e, "give 0 or 1");
	return 0;
}

static int number(struct tr *t, const struct ub_job_entry *e, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(e->value, &end, 10);
	if (errno || end == e->value || *end || e->value[0] == '-' || v > max)
		return entry_fail(t, e, "give a whole number, 0..%lu", max);
	*out = v;
	return 0;
}

/* A fio time ("10", "10s", "500ms", "2m", "1h"; plain numbers are seconds) into seconds. */
static int seconds(struct tr *t, const struct ub_job_entry *e, char *out, size_t outlen)
{
	char *end;
	double v, mul = 1;

	errno = 0;
	v = strtod(e->value, &end);
	if (errno || end == e->value || v < 0)
		return entry_fail(t, e, "give a time, e.g. 10, 10s, 500ms or 2m");
	if (!strcmp(end, "") || !strcmp(end, "s"))
		mul = 1;
	else if (!strcmp(end, "ms"))
		mul = 1e-3;
	else if (!strcmp(end, "us"))
		mul = 1e-6;
	else if (!strcmp(end, "m"))
		mul = 60;
	else if (!strcmp(end, "h"))
		mul = 3600;
	else
		return entry_fail(t, e, "unknown time unit \"%s\": use s, ms, us, m or h", end);
	snprintf(out, outlen, "%.6g", v * mul);
	return 0;
}

static int engine_of(struct tr *t, const struct ub_job_entry *e, enum ub_engine *out)
{
	static const char *const psyncs[] = { "psync", "sync", "pvsync", "pvsync2" };

	for (size_t i = 0; i < sizeof(psyncs) / sizeof(psyncs[0]); i++)
		if (!strcmp(e->value, psyncs[i])) {
			*out = UB_ENGINE_PSYNC;
			return 0;
		}
	if (!strcmp(e->value, "io_uring")) {
		*out = UB_ENGINE_URING;
		return 0;
	}
	if (!strcmp(e->value, "io_uring_cmd")) {
		*out = UB_ENGINE_PASSTHRU;
		return 0;
	}
	return entry_fail(t, e, "urbench runs psync (also sync, pvsync, pvsync2), io_uring and io_uring_cmd");
}

/* The --mode of the fio engine keys; *engine gets the engine. */
static int fio_mode(struct tr *t, char *mode, size_t len, enum ub_engine *engine)
{
	static const struct {
		enum key_kind kind;
		unsigned mod;
	} mods[] = {
		{ K_FIXEDBUFS, UB_MOD_FIXEDBUFS }, { K_REGISTERFILES, UB_MOD_REGFILES },
		{ K_SQTHREAD_POLL, UB_MOD_SQPOLL }, { K_HIPRI, UB_MOD_IOPOLL },
	};
	struct ub_mode m = { .engine = UB_ENGINE_PSYNC };	/* fio's default engine on Linux. */
	int ret;

	if (t->last[K_IOENGINE]) {
		ret = engine_of(t, t->last[K_IOENGINE], &m.engine);
		if (ret)
			return ret;
	}
	for (size_t i = 0; i < sizeof(mods) / sizeof(mods[0]); i++) {
		const struct ub_job_entry *e = t->last[mods[i].kind];
		bool on;

		if (!e)
			continue;
		ret = boolean(t, e, &on);
		if (ret)
			return ret;
		if (on && m.engine == UB_ENGINE_PSYNC)
			return entry_fail(t, e, "an io_uring option: needs ioengine=io_uring or io_uring_cmd");
		if (on)
			m.mods |= mods[i].mod;
	}
	if (t->last[K_CMD_TYPE] && (m.engine != UB_ENGINE_PASSTHRU || strcmp(t->last[K_CMD_TYPE]->value, "nvme")))
		return entry_fail(t, t->last[K_CMD_TYPE], "urbench knows cmd_type=nvme with ioengine=io_uring_cmd only");
	*engine = m.engine;
	ub_mode_name(&m, mode, len);
	return 0;
}

/* rw: fio's names that urbench runs. */
static int rw_check(struct tr *t, const struct ub_job_entry *e)
{
	static const char *const ok[] = { "read", "write", "randread", "randwrite", "randrw" };

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (!strcmp(e->value, ok[i]))
			return 0;
	if (!strcmp(e->value, "rw") || !strcmp(e->value, "readwrite"))
		return entry_fail(t, e, "sequential mixed I/O is not in urbench: use rw=randrw, or separate read and "
				  "write jobs");
	return entry_fail(t, e, "urbench runs read, write, randread, randwrite and randrw");
}

static int checks_without_output(struct tr *t)
{
	const struct ub_job_entry *e;
	bool on;
	int ret;

	if ((e = t->last[K_THREAD])) {
		ret = boolean(t, e, &on);
		if (ret)
			return ret;
		if (!on)
			return entry_fail(t, e, "urbench runs threads (as thread=1), not processes");
	}
	if ((e = t->last[K_NORANDOMMAP])) {
		ret = boolean(t, e, &on);
		if (ret)
			return ret;
		if (!on)
			return entry_fail(t, e, "urbench draws random offsets with repetition (as norandommap=1); "
					  "it keeps no random map");
	}
	if ((e = t->last[K_LAT_PERCENTILES])) {
		ret = boolean(t, e, &on);
		if (ret)
			return ret;
		if (!on)
			warn(t, e, "urbench always reports total latency (issue to completion), as lat_percentiles=1");
	}
	for (unsigned i = 0; i < t->job->nentries; i++) {
		bool later = false;

		e = &t->job->entries[i];
		if (keys[key_find(e->key)].kind != K_REPORT)
			continue;
		for (unsigned k = i + 1; k < t->job->nentries; k++)
			later |= strcmp(t->job->entries[k].key, e->key) == 0;
		/* A [global] key: said once, for the first job. */
		if (!later && (strcmp(e->section, "global") != 0 || t->job == &t->jf->jobs[0]))
			warn(t, e, "ignored: urbench reports min, mean, p50, p90, p99, p99.9 and max of total latency");
	}
	return 0;
}

/* How much I/O a job without time_based does: size / bs per fio job. */
static int ops_of_size(struct tr *t, unsigned long jobs, char *out, size_t outlen)
{
	const struct ub_job_entry *e = t->last[K_NUMBER_IOS] ? t->last[K_NUMBER_IOS]
				     : t->last[K_IO_SIZE] ? t->last[K_IO_SIZE] : t->last[K_SIZE];
	uint64_t bytes, bs = 4096, n;

	if (!e)
		return fail(t->err, t->errlen, "%s:%u: [%s] has neither runtime= with time_based=1 nor size=, "
			    "io_size= or number_ios=: say how long or how much", t->jf->path, t->job->line,
			    t->job->name);
	if (e == t->last[K_NUMBER_IOS]) {
		unsigned long v;
		int ret = number(t, e, UINT32_MAX, &v);

		if (ret)
			return ret;
		if (v == 0)
			return entry_fail(t, e, "give a count more than 0");
		n = v;
	} else {
		if (ub_size_parse(e->value, &bytes) || bytes == 0)
			return entry_fail(t, e, "give a size with an optional K/M/G/T suffix, e.g. 1g");
		if (t->last[K_BS] && (ub_size_parse(t->last[K_BS]->value, &bs) || bs == 0))
			return entry_fail(t, t->last[K_BS], "give a block size with an optional K/M suffix, e.g. 4k");
		n = bytes / bs;
		if (n == 0)
			return entry_fail(t, e, "smaller than one block of bs=%llu", (unsigned long long)bs);
	}
	snprintf(out, outlen, "%llu", (unsigned long long)(n * jobs));
	return 0;
}

int ub_jobfile_job_argv(const struct ub_jobfile *jf, unsigned i, int nextra, char *const *extra,
			struct ub_job_argv *a, FILE *warnf, char *err, size_t errlen)
{
	struct tr t = { .jf = jf, .job = &jf->jobs[i], .a = a, .warn = warnf, .err = err, .errlen = errlen };
	const struct ub_job_entry *e;
	enum ub_engine engine = UB_ENGINE_PSYNC;
	unsigned long numjobs = 1, v;
	char buf[UB_JOB_VALUE_MAX];
	bool on, timed = false;
	int ret;

	memset(a, 0, sizeof(*a));
	for (unsigned k = 0; k < t.job->nentries; k++)
		t.last[keys[key_find(t.job->entries[k].key)].kind] = &t.job->entries[k];
	if ((ret = push(&t, NULL, "urbench")))
		return ret;
	if ((ret = checks_without_output(&t)))
		return ret;
	if ((e = t.last[K_FILENAME]) && (ret = push2(&t, e, "--target", e->value)))
		return ret;
	if ((e = t.last[K_RW])) {
		if ((ret = rw_check(&t, e)) || (ret = push2(&t, e, "--rw", e->value)))
			return ret;
	}
	if ((e = t.last[K_BS]) && (ret = push2(&t, e, "--bs", e->value)))
		return ret;
	if ((e = t.last[K_SIZE]) && (ret = push2(&t, e, "--size", e->value)))
		return ret;
	if ((e = t.last[K_NUMJOBS])) {
		if ((ret = number(&t, e, UB_QD_MAX, &numjobs)))
			return ret;
		if (numjobs == 0)
			return entry_fail(&t, e, "give 1 or more");
	}
	/* The engine: urbench's mode/compare, or fio's ioengine and its options. */
	if (t.last[K_MODE] || t.last[K_COMPARE]) {
		static const enum key_kind fio_keys[] = { K_IOENGINE, K_FIXEDBUFS, K_REGISTERFILES, K_SQTHREAD_POLL,
							  K_HIPRI };
		struct ub_mode m;
		char merr[256];

		for (size_t k = 0; k < sizeof(fio_keys) / sizeof(fio_keys[0]); k++)
			if ((e = t.last[fio_keys[k]]))
				return entry_fail(&t, e, "give fio's ioengine and its options, or urbench's %s=, "
						  "not both", t.last[K_MODE] ? "mode" : "compare");
		if ((e = t.last[K_MODE])) {
			if (ub_mode_parse(e->value, &m, merr, sizeof(merr)))
				return entry_fail(&t, e, "%s", merr);
			engine = m.engine;
			if ((ret = push2(&t, e, "--mode", e->value)))
				return ret;
		}
		if ((e = t.last[K_COMPARE])) {
			engine = UB_ENGINE_URING;
			if ((ret = push2(&t, e, "--compare", e->value)))
				return ret;
		}
	} else {
		if ((ret = fio_mode(&t, buf, sizeof(buf), &engine)))
			return ret;
		if ((ret = push2(&t, t.last[K_IOENGINE], "--mode", buf)))
			return ret;
	}
	/*
	 * Depth: fio's sync engines run one I/O per job whatever iodepth says,
	 * so numjobs is the depth (urbench psync: threads per core); io_uring
	 * runs iodepth per job and a job per CPU (urbench: one reactor per core).
	 * A depth that is not a number of 1 or more is an error in the file
	 * whether or not the engine uses it (fio refuses it too); --qd checks
	 * the upper bound when it is passed on.
	 */
	if ((e = t.last[K_IODEPTH]) && (number(&t, e, UINT32_MAX, &v) || v == 0))
		return entry_fail(&t, e, "give a whole number, 1 or more");
	if ((e = t.last[K_QD])) {
		if ((ret = push2(&t, e, "--qd", e->value)))
			return ret;
	} else if (engine == UB_ENGINE_PSYNC && !t.last[K_COMPARE]) {
		snprintf(buf, sizeof(buf), "%lu", numjobs);
		if ((ret = push2(&t, t.last[K_NUMJOBS], "--qd", buf)))
			return ret;
	} else if ((e = t.last[K_IODEPTH]) && (ret = push2(&t, e, "--qd", e->value))) {
		return ret;
	}
	if ((e = t.last[K_CORES]) && (ret = push2(&t, e, "--cores", e->value)))
		return ret;
	if ((e = t.last[K_CPUS_ALLOWED]) && (ret = push2(&t, e, "--cpus", e->value)))
		return ret;
	if (engine != UB_ENGINE_PSYNC && numjobs > 1 && !t.last[K_CPUS_ALLOWED] && !t.last[K_CORES]) {
		snprintf(buf, sizeof(buf), "%lu", numjobs);
		if ((ret = push2(&t, t.last[K_NUMJOBS], "--cores", buf)))
			return ret;
	}
	/* Direct or buffered: the last of direct= and buffered= wins. */
	e = t.last[K_DIRECT];
	if (t.last[K_BUFFERED] && (!e || t.last[K_BUFFERED] > e))
		e = t.last[K_BUFFERED];
	if (e) {
		if ((ret = boolean(&t, e, &on)))
			return ret;
		if (e == t.last[K_BUFFERED])
			on = !on;
		if ((ret = push(&t, e, on ? "--direct" : "--buffered")))
			return ret;
	}
	/* How long: runtime with time_based, or an amount of I/O as fio does without it. */
	if ((e = t.last[K_TIME_BASED]) && (ret = boolean(&t, e, &timed)))
		return ret;
	if ((e = t.last[K_RUNTIME])) {
		if (!timed)
			return entry_fail(&t, e, "without time_based=1 fio also stops after size= bytes; add "
					  "time_based=1 (urbench runs for a time or for a number of I/Os, not both)");
		if ((ret = seconds(&t, e, buf, sizeof(buf))) || (ret = push2(&t, e, "--runtime", buf)))
			return ret;
	} else if (timed) {
		return entry_fail(&t, t.last[K_TIME_BASED], "time_based=1 needs runtime=");
	} else if ((e = t.last[K_OPS])) {
		if ((ret = push2(&t, e, "--ops", e->value)))
			return ret;
	} else {
		unsigned long jobs = numjobs;

		if ((ret = ops_of_size(&t, jobs, buf, sizeof(buf))))
			return ret;
		if ((ret = push2(&t, t.last[K_NUMBER_IOS] ? t.last[K_NUMBER_IOS]
				 : t.last[K_IO_SIZE] ? t.last[K_IO_SIZE] : t.last[K_SIZE], "--ops", buf)))
			return ret;
	}
	if ((e = t.last[K_RAMP_TIME])) {
		if ((ret = seconds(&t, e, buf, sizeof(buf))) || (ret = push2(&t, e, "--ramp", buf)))
			return ret;
	}
	if ((e = t.last[K_RANDSEED])) {
		if ((ret = push2(&t, e, "--seed", e->value)))
			return ret;
	} else if ((e = t.last[K_RANDREPEAT])) {
		if ((ret = boolean(&t, e, &on)))
			return ret;
		if (!on) {
			/* fio: a new seed every run. */
			uint64_t seed = 0;

			if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
				return entry_fail(&t, e, "getrandom failed: %s", strerror(errno));
			snprintf(buf, sizeof(buf), "%llu", (unsigned long long)seed);
			if ((ret = push2(&t, e, "--seed", buf)))
				return ret;
		}
	}
	if ((e = t.last[K_RWMIXREAD]) && (ret = push2(&t, e, "--rwmix", e->value)))
		return ret;
	if ((e = t.last[K_RWMIXWRITE])) {
		if ((ret = number(&t, e, 100, &v)))
			return ret;
		snprintf(buf, sizeof(buf), "%lu", 100 - v);
		if ((ret = push2(&t, e, "--rwmix", buf)))
			return ret;
	}
	if ((e = t.last[K_FSYNC])) {
		if ((ret = number(&t, e, UINT32_MAX, &v)))
			return ret;
		if (v && (ret = push2(&t, e, "--fsync-every", e->value)))
			return ret;
	}
	if ((e = t.last[K_SYNC])) {
		if (!strcmp(e->value, "dsync")) {
			if ((ret = push(&t, e, "--fua")))
				return ret;
		} else if (strcmp(e->value, "0") && strcmp(e->value, "none")) {
			return entry_fail(&t, e, "urbench writes with RWF_DSYNC only: use sync=dsync (or 0)");
		}
	}
	if ((e = t.last[K_VERIFY])) {
		if ((ret = boolean(&t, e, &on)))
			return ret;
		if (on && (ret = push(&t, e, "--verify")))
			return ret;
	}
	if ((e = t.last[K_FUA])) {
		if ((ret = boolean(&t, e, &on)))
			return ret;
		if (on && (ret = push(&t, e, "--fua")))
			return ret;
	}
	for (int k = 0; k < nextra; k++)
		if ((ret = push(&t, NULL, extra[k])))
			return ret;
	return 0;
}

/* The job's label: name= if given, else its section. */
static const char *job_label(const struct ub_job *j)
{
	for (unsigned i = j->nentries; i-- > 0;)
		if (!strcmp(j->entries[i].key, "name"))
			return j->entries[i].value;
	return j->name;
}

/*
 * Check the command line of job i; on error, prefix err with the key whose
 * urbench option the message names (else the job).
 */
static int job_check(const struct ub_jobfile *jf, unsigned i, struct ub_job_argv *a, struct ub_opts *o,
		     char *err, size_t errlen)
{
	char perr[512];
	const struct ub_job *j = &jf->jobs[i];
	const struct ub_job_entry *nj = NULL;

	ub_opts_default(o);
	if (ub_opts_parse(a->argc, a->argv, o, perr, sizeof(perr)) == 0) {
		for (unsigned k = 0; k < j->nentries; k++)
			if (!strcmp(j->entries[k].key, "numjobs"))
				nj = &j->entries[k];
		if (nj && o->mode.engine != UB_ENGINE_PSYNC && !o->ncompare && strtoul(nj->value, NULL, 10) != o->ncpus)
			return fail(err, errlen, "%s:%u: [%s] numjobs=%s: urbench runs one io_uring job per CPU, and "
				    "this job has %u CPU%s: list numjobs CPUs in cpus_allowed", jf->path, nj->line, j->name,
				    nj->value, o->ncpus, o->ncpus == 1 ? "" : "s");
		return 0;
	}
	if (strstr(perr, "no target"))
		return fail(err, errlen, "%s:%u: [%s] has no filename= (in the job or in [global])", jf->path, j->line,
			    j->name);
	for (int k = 1; k < a->argc; k++) {
		const struct ub_job_entry *e = a->src[k];

		if (e && a->argv[k][0] == '-' && strstr(perr, a->argv[k]))
			return fail(err, errlen, "%s:%u: [%s] %s=%s: %s", jf->path, e->line, j->name, e->key, e->value,
				    perr);
	}
	return fail(err, errlen, "%s:%u: [%s]: %s", jf->path, j->line, j->name, perr);
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n > m && strcmp(s + n - m, suffix) == 0;
}

bool ub_jobfile_wanted(int argc, char *const *argv)
{
	if (argc > 1 && argv[1][0] != '-' && (has_suffix(argv[1], ".ini") || has_suffix(argv[1], ".fio")))
		return true;
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--job") || !strncmp(argv[i], "--job=", 6))
			return true;
	return false;
}

/* Run job i, JSON captured and parsed into *obj when json. */
static int job_run(const struct ub_job_argv *a, bool json, FILE *out, FILE *errf, json_object **obj)
{
	char *text = NULL;
	size_t len = 0;
	FILE *mem;
	int status;

	if (!json)
		return ub_main(a->argc, (char **)a->argv, out, errf);
	mem = open_memstream(&text, &len);
	if (!mem) {
		fprintf(errf, "urbench: open_memstream: %s\n", strerror(errno));
		return UB_EXIT_FAIL;
	}
	status = ub_main(a->argc, (char **)a->argv, mem, errf);
	fclose(mem);
	*obj = len ? json_tokener_parse(text) : NULL;
	if (len && !*obj) {
		fprintf(errf, "urbench: a job's JSON does not parse (a bug): %.80s\n", text);
		status = UB_EXIT_FAIL;
	}
	free(text);
	return status;
}

int ub_jobfile_main(int argc, char **argv, FILE *out, FILE *errf)
{
	struct ub_jobfile *jf = NULL;
	struct ub_job_argv *a;
	struct ub_opts *o;
	const char *path = NULL;
	char *extra[UB_JOB_ARGS_MAX];
	char err[768];
	int nextra = 0, worst = UB_EXIT_OK, ret;
	json_object *top = NULL, *jobs = NULL;
	bool json;

	for (int i = 1; i < argc; i++) {
		const char *p = NULL;

		if (i == 1 && argv[1][0] != '-' && (has_suffix(argv[1], ".ini") || has_suffix(argv[1], ".fio")))
			p = argv[1];
		else if (!strcmp(argv[i], "--job") && i + 1 < argc)
			p = argv[++i];
		else if (!strncmp(argv[i], "--job=", 6))
			p = argv[i] + 6;
		else if (!strcmp(argv[i], "--job"))
			return fprintf(errf, "urbench: --job needs a file\n"), UB_EXIT_USAGE;
		if (p && path)
			return fprintf(errf, "urbench: two job files (%s and %s): give one\n", path, p), UB_EXIT_USAGE;
		if (p)
			path = p;
		else if (nextra == UB_JOB_ARGS_MAX)
			return fprintf(errf, "urbench: too many arguments\n"), UB_EXIT_USAGE;
		else
			extra[nextra++] = argv[i];
	}
	ret = ub_jobfile_load(path, &jf, err, sizeof(err));
	if (ret) {
		fprintf(errf, "urbench: %s\n", err);
		return UB_EXIT_USAGE;
	}
	a = calloc(jf->njobs, sizeof(*a));
	o = malloc(sizeof(*o));
	if (!a || !o) {
		fprintf(errf, "urbench: out of memory\n");
		worst = UB_EXIT_FAIL;
		goto err_free;
	}
	/* Every job is checked before any runs: a bad file runs nothing. */
	for (unsigned i = 0; i < jf->njobs; i++) {
		ret = ub_jobfile_job_argv(jf, i, nextra, extra, &a[i], errf, err, sizeof(err));
		if (!ret)
			ret = job_check(jf, i, &a[i], o, err, sizeof(err));
		if (ret) {
			fprintf(errf, "urbench: %s\n", err);
			worst = UB_EXIT_USAGE;
			goto err_free;
		}
		if (o->help) {
			fputs(ub_usage, out);
			goto err_free;
		}
	}
	json = o->json;	/* The same in every job: only the command line sets it. */
	if (json) {
		top = json_object_new_object();
		jobs = json_object_new_array();
		json_object_object_add(top, "tool", json_object_new_string("urbench"));
		json_object_object_add(top, "format", json_object_new_int(1));
		json_object_object_add(top, "jobfile", json_object_new_string(jf->path));
		json_object_object_add(top, "jobs", jobs);
	}
	for (unsigned i = 0; i < jf->njobs; i++) {
		json_object *obj = NULL;
		int status;

		if (!json) {
			fprintf(out, "%sjob %s (%s:%u)\n", i ? "\n" : "", job_label(&jf->jobs[i]), jf->path,
				jf->jobs[i].line);
			fflush(out);
		}
		status = job_run(&a[i], json, out, errf, &obj);
		if (json) {
			if (!obj)
				obj = json_object_new_object();
			json_object_object_add(obj, "job", json_object_new_string(job_label(&jf->jobs[i])));
			json_object_object_add(obj, "job_status", json_object_new_int(status));
			json_object_array_add(jobs, obj);
		}
		if (status > worst)
			worst = status;
	}
	if (json) {
		fprintf(out, "%s\n", json_object_to_json_string_ext(top, JSON_C_TO_STRING_PRETTY |
								    JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(top);
	}
err_free:
	free(o);
	free(a);
	ub_jobfile_free(jf);
	return worst;
}
