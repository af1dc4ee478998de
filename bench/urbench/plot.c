/*
 * --plot: an SVG with two charts, drawn by gnuplot.
 *
 * Left: the latency distribution of every run on a "nines" axis
 * (x = -log10(1 - p/100), so 90, 99, 99.9 are equally spaced), read from
 * each run's histogram.  Right: completed ops per second of measurement.
 * The data go to gnuplot inline as datablocks, so no temporary file is left.
 *
 * The file: ub_plot_path_check tries it before the run, so that a path
 * that cannot be written costs no run.  ub_plot opens it itself and hands
 * it to gnuplot as its standard output (gnuplot's default output): gnuplot
 * never sees the path, and when it cannot write, nothing lands on
 * urbench's own stdout (which may be a --json document).
 */
#include <errno.h>
#include <fcntl.h>
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

int ub_plot_path_check(const char *path, char *err, size_t errlen)
{
	/* O_NONBLOCK: a FIFO without a reader fails instead of blocking the run. */
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NONBLOCK | O_CLOEXEC, 0644);
	int ret;

	if (fd >= 0) {
		/* A new file: not left behind if the run fails; ub_plot creates it again. */
		close(fd);
		unlink(path);
		return 0;
	}
	if (errno == EEXIST)
		fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	ret = -errno;
	snprintf(err, errlen, "--plot %s: cannot write it: %s (give a file in an existing, writable directory)",
		 path, strerror(-ret));
	return ret;
}

/* gnuplot, reading its script from the returned stream, with its stdout on fd. */
static FILE *gnuplot_start(int fd, pid_t *pid)
{
	int p[2];
	FILE *g;

	if (pipe2(p, O_CLOEXEC))
		return NULL;
	*pid = fork();
	if (*pid < 0) {
		close(p[0]);
		close(p[1]);
		return NULL;
	}
	if (*pid == 0) {
		if (dup2(p[0], STDIN_FILENO) < 0 || dup2(fd, STDOUT_FILENO) < 0)
			_exit(127);
		execlp("gnuplot", "gnuplot", (char *)NULL);
		_exit(127);
	}
	close(p[0]);
	g = fdopen(p[1], "w");
	if (!g) {
		close(p[1]);
		waitpid(*pid, NULL, 0);
	}
	return g;
}

int ub_plot(const struct ub_opts *o, const struct ub_result *r, unsigned n, char *err, size_t errlen)
{
	FILE *g;
	pid_t pid;
	int fd, status, ret;

	if (!ub_gnuplot_found()) {
		snprintf(err, errlen, "gnuplot not found: install gnuplot-nox (or drop --plot)");
		return -ENOENT;
	}
	fd = open(o->plot, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "--plot %s: cannot write it: %s", o->plot, strerror(-ret));
		return ret;
	}
	g = gnuplot_start(fd, &pid);
	close(fd);
	if (!g) {
		ret = -errno;
		snprintf(err, errlen, "cannot run gnuplot: %s", strerror(-ret));
		return ret;
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
	/* No "set output": the SVG goes to gnuplot's stdout, which is the file. */
	fprintf(g, "set terminal svg size 1200,500 dynamic noenhanced background rgb 'white'\n");
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
	fclose(g);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		snprintf(err, errlen, "gnuplot failed drawing %s (%s %d)", o->plot,
			 WIFEXITED(status) ? "exit status" : "signal",
			 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		return -EIO;
	}
	return 0;
}
