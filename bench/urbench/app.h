/*
 * The urbench program as a function, so that tests drive exactly what the
 * tool does: parse, check the target, run one mode or a --compare list,
 * report, plot.  main.c only calls ub_main.
 */
#ifndef URBENCH_APP_H
#define URBENCH_APP_H

#include <stdbool.h>
#include <stdio.h>

/* Run urbench with argv; results go to out, errors (one line) to err.  Returns enum ub_exit. */
int ub_main(int argc, char **argv, FILE *out, FILE *err);

/*
 * The directory of urbench's default target: $TMPDIR, else /tmp, unless
 * /tmp is in memory (tmpfs, ramfs) and /var/tmp is writable and on disk:
 * then /var/tmp, and *why (else "") says so for the banner.
 */
const char *ub_default_dir(const char **why);

/*
 * Whether path, a regular file or a directory, is on a file system that
 * keeps its files in memory (tmpfs, ramfs).  False for a device node (its
 * node is on devtmpfs, its data on the device) and when statfs fails.
 */
bool ub_in_memory(const char *path);

/* urbench --list (list.c): print the NVMe controllers and namespaces.  Returns enum ub_exit. */
int ub_list(FILE *out, FILE *err);

#endif /* URBENCH_APP_H */
