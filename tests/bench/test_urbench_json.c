/*
 * urbench JSON is written by json-c: strings with quotes, backslashes,
 * newlines and other control characters come back unchanged when the output
 * is parsed, both from the report function and from a real run on a file
 * with such a name.
 */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "urbench/app.h"
#include "urbench/opts.h"
#include "urbench/report.h"
#include "urbench/result.h"

static const char weird[] = "we\"ird\\name\nwith\ttab\x01 and \xc3\xa9";

static json_object *parse_report(const struct ub_opts *o, const struct ub_result *r, unsigned n)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	json_object *top;

	cr_assert_not_null(f);
	ub_report_json(f, o, r, n);
	cr_assert_eq(fclose(f), 0);
	top = json_tokener_parse(text);
	cr_assert_not_null(top, "not JSON: %s", text);
	free(text);
	return top;
}

Test(urbench_json, strings_round_trip_through_the_report)
{
	struct ub_opts o;
	struct ub_result *r = calloc(1, sizeof(*r));
	json_object *top, *run;

	cr_assert_not_null(r);
	ub_opts_default(&o);
	snprintf(o.target, sizeof(o.target), "/tmp/%s.dat", weird);
	snprintf(r->mode_name, sizeof(r->mode_name), "uring");
	snprintf(r->backend, sizeof(r->backend), "file");
	snprintf(r->errmsg, sizeof(r->errmsg), "open \"%s\": no\\such\nfile", weird);
	r->total.cpu = -1;
	top = parse_report(&o, r, 1);
	cr_assert_str_eq(json_object_get_string(json_object_object_get(top, "target")), o.target);
	run = json_object_array_get_idx(json_object_object_get(top, "runs"), 0);
	cr_assert_str_eq(json_object_get_string(json_object_object_get(run, "error")), r->errmsg);
	cr_assert_str_eq(json_object_get_string(json_object_object_get(run, "mode")), "uring");
	json_object_put(top);
	free(r);
}

Test(urbench_json, a_run_on_a_file_with_a_strange_name)
{
	const char *tmp = getenv("TMPDIR");
	char dir[200], path[400], cmd[600], *out = NULL, *err = NULL;
	char *argv[] = { "urbench", path, "--size", "1M", "--ops", "50", "--json", "--no-progress", NULL };
	size_t olen, elen;
	FILE *fo, *fe;
	json_object *top, *run;
	int status;

	snprintf(dir, sizeof(dir), "%s/urbench-json-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/%s", dir, weird);
	fo = open_memstream(&out, &olen);
	fe = open_memstream(&err, &elen);
	status = ub_main(8, argv, fo, fe);
	fclose(fo);
	fclose(fe);
	cr_assert_eq(status, 0, "%s", err);
	top = json_tokener_parse(out);
	cr_assert_not_null(top, "not JSON: %s", out);
	cr_assert_str_eq(json_object_get_string(json_object_object_get(top, "target")), path);
	run = json_object_array_get_idx(json_object_object_get(top, "runs"), 0);
	cr_assert_eq(json_object_get_int64(json_object_object_get(json_object_object_get(run, "total"), "ops")), 50);
	json_object_put(top);
	free(out);
	free(err);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}
