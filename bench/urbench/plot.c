/*
 * --plot: an SVG with two charts, drawn by gnuplot.
 *
 * Left: the latency distribution of every run on a "nines" axis
 * (x = -log10(1 - p/100), so 90, 99, 99.9 are equally spaced), read from
 * each run's histogram.  Right: completed ops per second of measurement.
 * The data go to gnuplot inline as datablocks, so no temporary file is left.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "urbench/report.h"

static const double pcts[] = { 1, 10, 25, 50, 75, 90, 95, 97, 99, 99.5, 99.9, 99.95, 99.99, 99.999 };

bool ub_gnuplot_found(void)
{
	const char *path = getenv("PATH");
	char dir[4096], file[4200];

	if (!path)
		return false;
	while (*path) {
		size_t n = strcspn(path, ":");

		if (n && n < sizeof(dir)) {
			memcpy(dir, path, n);
			dir[n] = '\0';
			snprintf(file, sizeof(file), "%s/gnuplot", dir);
			if (access(file, X_OK) == 0)
				return true;
		}
		path += n;
		if (*path == ':')
			path++;
	}
	return false;
}

int ub_plot(const struct ub_opts *o, const struct ub_result *r, unsigned n, char *err, size_t errlen)
{
	FILE *g;
	int status;

	if (!ub_gnuplot_found()) {
		snprintf(err, errlen, "gnuplot not found: install gnuplot-nox (or drop --plot)");
		return -ENOENT;
	}
	if (strchr(o->plot, '"') || strchr(o->plot, '\\')) {
		snprintf(err, errlen, "--plot %s: use a path without quotes or backslashes", o->plot);
		return -EINVAL;
	}
	g = popen("gnuplot", "w");
	if (!g) {
		snprintf(err, errlen, "cannot run gnuplot: %s", strerror(errno));
		return -errno;
	}
	for (unsigned i = 0; i < n; i++) {
		fprintf(g, "$LAT%u << EOD\n", i);
		for (size_t k = 0; k < sizeof(pcts) / sizeof(pcts[0]); k++)
			if (r[i].total.hist.count)
				fprintf(g, "%.5f %.3f\n", -log10(1 - pcts[k] / 100),
					(double)urt_hist_percentile(&r[i].total.hist, pcts[k]) / 1e3);
		fprintf(g, "EOD\n$SER%u << EOD\n", i);
		for (unsigned s = 0; s < r[i].nseries; s++)
			fprintf(g, "%u %llu\n", s + 1, (unsigned long long)r[i].series[s]);
		fprintf(g, "EOD\n");
	}
	fprintf(g, "set terminal svg size 1200,500 dynamic noenhanced background rgb 'white'\n");
	fprintf(g, "set output \"%s\"\n", o->plot);
	fprintf(g, "set multiplot layout 1,2 title \"urbench: %s, bs %u, QD %u per core, %u core(s), %s\"\n",
		ub_rw_name(o->rw), o->bs, o->qd, o->ncpus, o->direct ? "O_DIRECT" : "buffered");
	fprintf(g, "set title 'Latency distribution'\nset xlabel 'percentile'\nset ylabel 'latency (us)'\n"
		"set logscale y\nset grid\nset key top left\n"
		"set xtics ('50' 0.301, '90' 1, '99' 2, '99.9' 3, '99.99' 4, '99.999' 5)\n");
	fprintf(g, "plot ");
	for (unsigned i = 0; i < n; i++)
		fprintf(g, "%s$LAT%u using 1:2 with linespoints title '%s'", i ? ", " : "", i, r[i].mode_name);
	fprintf(g, "\nunset logscale y\nset title 'IOPS over time'\nset xlabel 'second'\nset ylabel 'IOPS'\n"
		"set xtics autofreq\nset yrange [0:*]\nset key bottom right\nplot ");
	for (unsigned i = 0; i < n; i++)
		fprintf(g, "%s$SER%u using 1:2 with lines title '%s'", i ? ", " : "", i, r[i].mode_name);
	fprintf(g, "\nunset multiplot\n");
	status = pclose(g);
	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		snprintf(err, errlen, "gnuplot failed drawing %s (exit status %d)", o->plot,
			 status == -1 ? -1 : WEXITSTATUS(status));
		return -EIO;
	}
	return 0;
}
