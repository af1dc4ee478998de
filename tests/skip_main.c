/*
 * The main of every Criterion test that urt_add_test builds: Criterion's
 * usual run, with one difference.  When tests ran and every one of them was
 * skipped (a missing device, kernel feature or guest), the program exits 77,
 * which ctest's SKIP_RETURN_CODE shows as Skipped: a suite that ran nothing
 * on this host did not pass.  A run with any test that passed or failed
 * exits as Criterion decides (0 or 1).  Inside the NVMe guest the same
 * binary's 77 means "every test skipped" there too (tests/nvme-vm/init).
 */
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <stdbool.h>

#define EXIT_ALL_SKIPPED 77

static size_t tests_run;	/* Tests that ran, as the last report counted them. */
static size_t tests_skipped;	/* Of those, skipped. */

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	tests_run = stats->nb_tests;
	tests_skipped = stats->tests_skipped;
}

int main(int argc, char *argv[])
{
	struct criterion_test_set *tests = criterion_initialize();
	bool ran = false;
	int result = 0;

	/* criterion_handle_args answers --help, --list and --version itself and returns 0. */
	if (criterion_handle_args(argc, argv, true)) {
		result = !criterion_run_all_tests(tests);
		ran = true;
	}
	criterion_finalize(tests);
	if (ran && result == 0 && tests_run > 0 && tests_skipped == tests_run)
		return EXIT_ALL_SKIPPED;
	return result;
}
