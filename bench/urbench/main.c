/*
 * urbench: a fio-style benchmark of the urt runtime.  See urbench(1).
 */
#include <stdio.h>

#include "urbench/app.h"
#include "urbench/jobfile.h"
#include "urbench/run.h"

int main(int argc, char **argv)
{
	ub_run_catch_sigint();
	if (ub_jobfile_wanted(argc, argv))
		return ub_jobfile_main(argc, argv, stdout, stderr);
	return ub_main(argc, argv, stdout, stderr);
}
