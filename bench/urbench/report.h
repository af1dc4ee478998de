/*
 * urbench output: a human table, JSON, and the gnuplot chart.
 *
 * One function prints any number of runs of the same workload: one run
 * gives the detailed per-core table, several give the --compare table with
 * each mode's ratio to the first.
 */
#ifndef URBENCH_REPORT_H
#define URBENCH_REPORT_H

#include <stddef.h>
#include <stdio.h>

#include "urbench/opts.h"
#include "urbench/result.h"

/* The table(s) for n runs. */
void ub_report_text(FILE *f, const struct ub_opts *o, const struct ub_result *r, unsigned n);

/* One JSON document for n runs (an object with a "runs" array). */
void ub_report_json(FILE *f, const struct ub_opts *o, const struct ub_result *r, unsigned n);

struct json_object;

/* The same document as a json-c object (release with json_object_put). */
struct json_object *ub_report_json_object(const struct ub_opts *o, const struct ub_result *r, unsigned n);

/*
 * Draw the latency distribution and IOPS over time of n runs into the SVG
 * file o->plot with gnuplot.  Returns 0, -ENOENT with "gnuplot not found:
 * install gnuplot-nox" in err, or another -errno.
 */
int ub_plot(const struct ub_opts *o, const struct ub_result *r, unsigned n, char *err, size_t errlen);

/*
 * Whether --plot path can be written (created, or opened for writing when
 * it exists), before any run: 0, or -errno with the reason in err.  A file
 * it creates is removed again.
 */
int ub_plot_path_check(const char *path, char *err, size_t errlen);

/* Whether gnuplot is on PATH. */
bool ub_gnuplot_found(void);

#endif /* URBENCH_REPORT_H */
