/*
 * urbench option parsing: every setting lands in its field, and every bad
 * input is refused with -EINVAL and a line that names what to change.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "urbench/opts.h"

static int parse(struct ub_opts *o, char *err, size_t errlen, const char *const *args)
{
	char *argv[64];
	int argc = 0;

	argv[argc++] = (char *)"urbench";
	for (; *args; args++)
		argv[argc++] = (char *)*args;
	argv[argc] = NULL;
	ub_opts_default(o);
	return ub_opts_parse(argc, argv, o, err, errlen);
}

#define PARSE(o, err, ...) parse(o, err, sizeof(err), (const char *const[]){ __VA_ARGS__, NULL })

Test(urbench_opts, defaults_with_only_a_target)
{
	struct ub_opts o;
	char err[512];

	cr_assert_eq(PARSE(&o, err, "/tmp/f"), 0, "%s", err);
	cr_assert_str_eq(o.target, "/tmp/f");
	cr_assert_eq(o.target_kind, UB_TARGET_PATH);
	cr_assert_eq(o.rw, UB_RW_RANDREAD);
	cr_assert_eq(o.bs, 4096);
	cr_assert_eq(o.qd, 1);
	cr_assert_eq(o.ncpus, 1);
	cr_assert(o.direct);
	cr_assert_eq(o.mode.engine, UB_ENGINE_URING);
	cr_assert_eq(o.mode.mods, 0);
	cr_assert_eq(o.ops, 0);
	cr_assert_float_eq(o.runtime_s, 10.0, 1e-9);
	cr_assert_eq(o.size_bytes, 1ull << 30);
	cr_assert_not(o.size_given);
	cr_assert_eq(o.ncompare, 0);
	cr_assert_not(o.defaulted);
}

Test(urbench_opts, every_setting)
{
	struct ub_opts o;
	char err[512];
	cpu_set_t set;
	int cpu = -1;

	sched_getaffinity(0, sizeof(set), &set);
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &set)) {
			cpu = i;
			break;
		}
	char cpus[16];
	snprintf(cpus, sizeof(cpus), "%d", cpu);
	cr_assert_eq(PARSE(&o, err, "--target", "/tmp/x", "--rw", "randrw", "--rwmix", "70", "--bs", "8K", "--qd", "16",
			   "--cpus", cpus, "--ops", "1000", "--ramp", "0.5", "--seed", "42", "--buffered", "--mode",
			   "uring+fixedbufs+regfiles+sqpoll", "--fua", "--fsync-every", "8", "--verify", "--json",
			   "--plot", "x.svg", "--size", "64M", "--no-progress"),
		     0, "%s", err);
	cr_assert_eq(o.rw, UB_RW_RANDRW);
	cr_assert_eq(o.rwmix_read, 70);
	cr_assert_eq(o.bs, 8192);
	cr_assert_eq(o.qd, 16);
	cr_assert_eq(o.ncpus, 1);
	cr_assert_eq(o.cpus[0], cpu);
	cr_assert_eq(o.ops, 1000);
	cr_assert_float_eq(o.ramp_s, 0.5, 1e-9);
	cr_assert_eq(o.seed, 42);
	cr_assert_not(o.direct);
	cr_assert_eq(o.mode.engine, UB_ENGINE_URING);
	cr_assert_eq(o.mode.mods, UB_MOD_FIXEDBUFS | UB_MOD_REGFILES | UB_MOD_SQPOLL);
	cr_assert(o.fua);
	cr_assert_eq(o.fsync_every, 8);
	cr_assert(o.verify);
	cr_assert(o.json);
	cr_assert_str_eq(o.plot, "x.svg");
	cr_assert_eq(o.size_bytes, 64ull << 20);
	cr_assert(o.size_given);
	cr_assert_eq(o.progress, 0);
}

Test(urbench_opts, short_options_and_positional_target)
{
	struct ub_opts o;
	char err[512];

	cr_assert_eq(PARSE(&o, err, "-w", "write", "-b", "64k", "-q", "4", "-c", "1", "-r", "2.5", "-m", "psync", "f"),
		     0, "%s", err);
	cr_assert_str_eq(o.target, "f");
	cr_assert_eq(o.rw, UB_RW_WRITE);
	cr_assert_eq(o.bs, 65536);
	cr_assert_eq(o.qd, 4);
	cr_assert_float_eq(o.runtime_s, 2.5, 1e-9);
	cr_assert_eq(o.mode.engine, UB_ENGINE_PSYNC);
}

Test(urbench_opts, targets_nop_and_sim)
{
	struct ub_opts o;
	char err[512];

	cr_assert_eq(PARSE(&o, err, "nop", "-q", "32"), 0, "%s", err);
	cr_assert_eq(o.target_kind, UB_TARGET_NOP);
	cr_assert_eq(PARSE(&o, err, "sim:2G"), 0, "%s", err);
	cr_assert_eq(o.target_kind, UB_TARGET_SIM);
	cr_assert_eq(o.size_bytes, 2ull << 30);
}

/*
 * sim: targets: an unknown option names itself, a size or value too large
 * for its field is refused with its range instead of wrapping, and T is a
 * suffix as for --size.
 */
Test(urbench_opts, sim_target_errors_name_the_part)
{
	static const struct {
		const char *target;
		const char *says[3];
	} cases[] = {
		{ "sim:8M,bogus", { "\"bogus\"", "hdd, ssd, par=" } },
		{ "sim:8M,bogus=1", { "\"bogus\"", "hdd, ssd, par=" } },
		{ "sim:8M,hdd,bogus", { "\"bogus\"" } },
		{ "sim:8M,", { "empty option" } },
		{ "sim:8M,,hdd", { "empty option" } },
		{ "sim:8M,hdd=1", { "hdd takes no value" } },
		{ "sim:8M,par=x", { "par=x", "0..64" } },
		{ "sim:8M,par=4294967296", { "par=4294967296", "0..64" } },
		{ "sim:8M,par=65", { "par=65", "0..64" } },
		{ "sim:8M,rpm=4294967296", { "rpm=4294967296" } },
		{ "sim:8M,read_us=99999999999999999", { "read_us=99999999999999999", "0.." } },
		{ "sim:8M,seek_ms=99999999999999999", { "seek_ms=99999999999999999", "0.." } },
		{ "sim:17179869185G", { "17179869185G", "too large", "64G" } },
		{ "sim:18446744073709551616", { "18446744073709551616", "too large" } },
		{ "sim:1T", { "1T", "too large", "64G" } },
		{ "sim:8X", { "sim:SIZE" } },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ub_opts o;
		char err[512];

		cr_assert_eq(PARSE(&o, err, cases[i].target), -EINVAL, "%s was accepted", cases[i].target);
		for (size_t k = 0; k < 3 && cases[i].says[k]; k++)
			cr_expect(strstr(err, cases[i].says[k]), "%s: \"%s\" does not say \"%s\"", cases[i].target, err,
				  cases[i].says[k]);
		cr_expect_null(strstr(err, "near \"\""), "%s: points at nothing: %s", cases[i].target, err);
	}
}

Test(urbench_opts, sim_target_sizes_and_values)
{
	struct ub_opts o;
	char err[512];

	cr_assert_eq(PARSE(&o, err, "sim:64G"), 0, "%s", err);
	cr_assert_eq(o.size_bytes, 64ull << 30);
	cr_assert_eq(PARSE(&o, err, "sim:8M,hdd,par=64,rpm=5400,read_us=100"), 0, "%s", err);
	cr_assert_eq(o.size_bytes, 8ull << 20);
}

Test(urbench_opts, compare_list_in_order)
{
	struct ub_opts o;
	char err[512], name[96];

	cr_assert_eq(PARSE(&o, err, "f", "--compare", "psync,uring,uring+fixedbufs+regfiles"), 0, "%s", err);
	cr_assert_eq(o.ncompare, 3);
	cr_assert_str_eq(ub_mode_name(&o.compare[0], name, sizeof(name)), "psync");
	cr_assert_str_eq(ub_mode_name(&o.compare[1], name, sizeof(name)), "uring");
	cr_assert_str_eq(ub_mode_name(&o.compare[2], name, sizeof(name)), "uring+fixedbufs+regfiles");
}

Test(urbench_opts, mode_names_round_trip)
{
	static const char *const names[] = { "psync", "uring", "uring+fixedbufs", "uring+regfiles+hybrid",
					     "uring+fixedbufs+regfiles+sqpoll", "passthru+fixedbufs+iopoll" };
	struct ub_mode m;
	char err[256], name[96];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		cr_assert_eq(ub_mode_parse(names[i], &m, err, sizeof(err)), 0, "%s: %s", names[i], err);
		cr_assert_str_eq(ub_mode_name(&m, name, sizeof(name)), names[i]);
	}
	/* Modifier order does not matter; the canonical name orders them. */
	cr_assert_eq(ub_mode_parse("uring+regfiles+fixedbufs", &m, err, sizeof(err)), 0);
	cr_assert_str_eq(ub_mode_name(&m, name, sizeof(name)), "uring+fixedbufs+regfiles");
}

Test(urbench_opts, no_arguments_is_the_builtin_compare)
{
	struct ub_opts o;
	char err[512];
	char *argv[] = { (char *)"urbench", NULL };

	ub_opts_default(&o);
	cr_assert_eq(ub_opts_parse(1, argv, &o, err, sizeof(err)), 0);
	cr_assert(o.defaulted);
	cr_assert_eq(o.ncompare, 2);
	cr_assert_eq(o.compare[0].engine, UB_ENGINE_PSYNC);
	cr_assert_eq(o.compare[1].engine, UB_ENGINE_URING);
	cr_assert_eq(o.compare[1].mods, UB_MOD_FIXEDBUFS | UB_MOD_REGFILES);
	cr_assert(o.direct);
	cr_assert_eq(o.bs, 4096);
	cr_assert_eq(o.size_bytes, 1ull << 30);
	/* Ramp plus runtime for 2 modes at 2 depths stays near 30 s. */
	cr_assert_leq((o.runtime_s + o.ramp_s) * 4, 30.0);
}

Test(urbench_opts, help)
{
	struct ub_opts o;
	char err[512];

	cr_assert_eq(PARSE(&o, err, "--help"), 0);
	cr_assert(o.help);
	cr_assert(strstr(ub_usage, "--compare"));
	cr_assert(strstr(ub_usage, "Exit status"));
}

Test(urbench_opts, sizes)
{
	uint64_t v;

	cr_assert_eq(ub_size_parse("4096", &v), 0);
	cr_assert_eq(v, 4096);
	cr_assert_eq(ub_size_parse("4K", &v), 0);
	cr_assert_eq(v, 4096);
	cr_assert_eq(ub_size_parse("4KiB", &v), 0);
	cr_assert_eq(v, 4096);
	cr_assert_eq(ub_size_parse("1g", &v), 0);
	cr_assert_eq(v, 1ull << 30);
	cr_assert_eq(ub_size_parse("2T", &v), 0);
	cr_assert_eq(v, 2ull << 40);
	cr_assert_eq(ub_size_parse("4X", &v), -EINVAL);
	cr_assert_eq(ub_size_parse("-4K", &v), -EINVAL);
	cr_assert_eq(ub_size_parse("", &v), -EINVAL);
	cr_assert_eq(ub_size_parse("K", &v), -EINVAL);
	cr_assert_eq(ub_size_parse("99999999999T", &v), -EINVAL);
}

/* Each bad command line, and a word its one-line message must contain. */
struct bad_case {
	const char *args[8];
	const char *says;
};

static const struct bad_case bad_cases[] = {
	{ { "-q", "4" }, "no target" },
	{ { "f", "--bogus" }, "unknown option" },
	{ { "f", "-Z" }, "unknown option" },
	{ { "f", "--bs" }, "needs a value" },
	{ { "f", "--rw", "randomread" }, "unknown --rw" },
	{ { "f", "--rwmix", "50" }, "--rwmix needs --rw randrw" },
	{ { "f", "--rw", "randrw", "--rwmix", "101" }, "0..100" },
	{ { "f", "--bs", "0" }, "bad --bs" },
	{ { "f", "--bs", "8M" }, "bad --bs" },
	{ { "f", "--bs", "4X" }, "bad --bs" },
	{ { "f", "--qd", "0" }, "bad --qd" },
	{ { "f", "--qd", "5000" }, "bad --qd" },
	{ { "f", "--cores", "0" }, "bad --cores" },
	{ { "f", "--cores", "64" }, "CPUs only" },
	{ { "f", "--cpus", "x" }, "bad --cpus" },
	{ { "f", "--cpus", "1023" }, "offline" },
	{ { "f", "--cpus", "3-1" }, "backwards" },
	{ { "f", "--runtime", "0" }, "bad --runtime" },
	{ { "f", "--runtime", "-1" }, "bad --runtime" },
	{ { "f", "--runtime", "5", "--ops", "10" }, "exclude each other" },
	{ { "f", "--ops", "0" }, "bad --ops" },
	{ { "f", "--ramp", "soon" }, "bad --ramp" },
	{ { "f", "--seed", "-3" }, "bad --seed" },
	{ { "f", "--mode", "aio" }, "unknown engine" },
	{ { "f", "--mode", "uring+turbo" }, "unknown modifier" },
	{ { "f", "--mode", "psync+fixedbufs" }, "psync takes no modifiers" },
	{ { "f", "--mode", "uring+sqpoll+iopoll" }, "exclude each other" },
	{ { "f", "--compare", "psync" }, "at least two modes" },
	{ { "f", "--compare", "psync,bogus" }, "unknown engine" },
	{ { "f", "--mode", "uring", "--compare", "psync,uring" }, "not both" },
	{ { "f", "--fua" }, "need a write workload" },
	{ { "f", "--rw", "write", "--fsync-every", "0" }, "bad --fsync-every" },
	{ { "nop", "--verify" }, "--verify needs data" },
	{ { "f", "--verify", "--bs", "1020" }, "multiple of 8" },
	{ { "f", "--buffered", "--mode", "uring+iopoll" }, "needs --direct" },
	{ { "nop", "--mode", "passthru" }, "NVMe generic char device" },
	{ { "nop", "--mode", "psync" }, "psync has no nop target" },
	{ { "nop", "--mode", "uring+regfiles" }, "no file or buffer to register" },
	{ { "sim:lots" }, "give sim:SIZE" },
	{ { "sim:1G", "--verify" }, "starts zeroed" },
	{ { "f", "--size", "0" }, "bad --size" },
	{ { "nop", "--size", "1G" }, "--size means nothing" },
	{ { "f", "g" }, "two targets" },
	{ { "f", "--cores", "1", "--cpus", "0" }, "not both" },
	{ { "f", "--size", "1K", "--bs", "4K" }, "larger than --size" },
	{ { "f", "--plot", "" }, "bad --plot" },
};

Test(urbench_opts, every_error_is_one_clear_line)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		struct ub_opts o;
		char err[512];
		int ret = parse(&o, err, sizeof(err), c->args);

		cr_assert_eq(ret, -EINVAL, "case %zu (%s ...) was accepted", i, c->args[0]);
		cr_assert(strstr(err, c->says), "case %zu: \"%s\" does not say \"%s\"", i, err, c->says);
		cr_assert_null(strchr(err, '\n'), "case %zu: more than one line", i);
	}
}

Test(urbench_opts, parses_again_after_an_error)
{
	struct ub_opts o;
	char err[512];

	cr_assert_eq(PARSE(&o, err, "f", "--bogus"), -EINVAL);
	cr_assert_eq(PARSE(&o, err, "f", "--qd", "7"), 0, "%s", err);
	cr_assert_eq(o.qd, 7);
}
