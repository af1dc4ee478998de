/*
 * urkv's command lookup (examples/kv/commands.c urkv_cmd_lookup): a hash
 * of the names built once, which must answer exactly as a scan of the
 * table with a case-insensitive compare would.  Every command is found by
 * its name in lower, upper and mixed case; names one edit away from a
 * command (a changed, missing, extra or NUL byte) are found only when they
 * are another command's name.  The answers of a scan and of a degenerate
 * hash are the same, so the test also bounds the slots each lookup
 * examines (urkv_cmd_probes): a hash that put every name into one run of
 * slots fails it.
 */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "urkv.h"

#define NAME_MAX_TEST 64
#define HIT_PROBES_MAX 4u	/* Slots a lookup of a command's name may examine. */
#define MISS_PROBES_MAX 8u	/* Slots a lookup of any other name may examine. */

static unsigned hit_probes_max, miss_probes_max, lookups;

static char fold(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

/* The entry a scan finds: same length, bytes equal up to ASCII case. */
static const struct urkv_cmd *scan(const char *name, size_t len)
{
	for (unsigned i = 0; i < urkv_cmd_count(); i++) {
		const struct urkv_cmd *cmd = urkv_cmd_at(i);
		size_t k;

		if (strlen(cmd->name) != len)
			continue;
		for (k = 0; k < len && fold(cmd->name[k]) == fold(name[k]); k++)
			;
		if (k == len)
			return cmd;
	}
	return NULL;
}

/* Looks name up, checks the answer against the scan and the probes against the bounds. */
static const struct urkv_cmd *check(const char *name, size_t len)
{
	struct resp_arg a = { .ptr = name, .len = len };
	const struct urkv_cmd *got = urkv_cmd_lookup(&a), *want = scan(name, len);
	unsigned probes = urkv_cmd_probes(&a);

	lookups++;
	cr_assert_eq(got, want, "lookup of '%.*s' (%zu bytes): %s, a scan finds %s", (int)len, name, len,
		     got ? got->name : "none", want ? want->name : "none");
	if (got) {
		if (probes > hit_probes_max)
			hit_probes_max = probes;
		cr_assert(probes >= 1 && probes <= HIT_PROBES_MAX,
			  "finding '%s' examined %u slots of the hash", got->name, probes);
	} else {
		if (probes > miss_probes_max)
			miss_probes_max = probes;
		cr_assert_leq(probes, MISS_PROBES_MAX, "not finding '%.*s' examined %u slots of the hash",
			      (int)len, name, probes);
	}
	return got;
}

Test(urkv_commands, every_command_is_found_in_any_case)
{
	unsigned n = urkv_cmd_count();

	cr_assert_gt(n, 50, "%u commands", n);
	for (unsigned i = 0; i < n; i++) {
		const struct urkv_cmd *cmd = urkv_cmd_at(i);
		size_t len = strlen(cmd->name);
		char upper[NAME_MAX_TEST], mixed[NAME_MAX_TEST];

		cr_assert_lt(len, sizeof(upper));
		for (size_t k = 0; k < len; k++) {
			char c = cmd->name[k];

			upper[k] = c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
			mixed[k] = k % 2 ? upper[k] : c;
		}
		cr_expect_eq(urkv_cmd_index(cmd), i);
		cr_expect_eq(check(cmd->name, len), cmd, "'%s' lower case", cmd->name);
		cr_expect_eq(check(upper, len), cmd, "'%s' upper case", cmd->name);
		cr_expect_eq(check(mixed, len), cmd, "'%s' mixed case", cmd->name);
	}
	cr_log_info("%u commands: a hit examined at most %u slots", n, hit_probes_max);
}

/*
 * One edit away from every command: each prefix (the empty name too), an
 * extension by one byte, each byte changed (to a neighbour, to the byte
 * the hash folds it with, to NUL, to a high byte), and a NUL inserted at
 * each position.  The scan decides which of them are commands.
 */
Test(urkv_commands, near_names_are_found_only_when_they_are_commands)
{
	static const char subst[] = { 'a', 'z', '-', '0', '\0', '@', '[', '`', '{', (char)0x80, (char)0xc1 };
	unsigned found = 0;

	for (unsigned i = 0; i < urkv_cmd_count(); i++) {
		const char *name = urkv_cmd_at(i)->name;
		size_t len = strlen(name);
		char buf[NAME_MAX_TEST + 2];

		for (size_t k = 0; k < len; k++)
			check(name, k);
		for (size_t s = 0; s < sizeof(subst); s++) {
			memcpy(buf, name, len);
			buf[len] = subst[s];
			check(buf, len + 1);
		}
		for (size_t k = 0; k < len; k++) {
			memcpy(buf, name, len);
			buf[k] = (char)(name[k] + 1);
			found += check(buf, len) != NULL;
			buf[k] = (char)(name[k] - 1);
			found += check(buf, len) != NULL;
			/* The byte "| 0x20" hashes like this one, unless it is the letter's other case. */
			buf[k] = (char)(name[k] ^ 0x20);
			check(buf, len);
			for (size_t s = 0; s < sizeof(subst); s++) {
				buf[k] = subst[s];
				found += check(buf, len) != NULL;
			}
			/* A NUL inserted before byte k: the compare must not stop at it. */
			memcpy(buf, name, k);
			buf[k] = '\0';
			memcpy(buf + k + 1, name + k, len - k);
			cr_expect_null(check(buf, len + 1), "'%s' with a NUL at %zu was found", name, k);
		}
	}
	cr_log_info("%u lookups of near names, %u of them other commands (get/set, incr/decr...); "
		    "a miss examined at most %u slots", lookups, found, miss_probes_max);
	cr_expect_gt(found, 0, "no near name was another command: the scan oracle is broken");
}

/* Names the lookup refuses before hashing: empty, and longer than any command. */
Test(urkv_commands, empty_and_long_names_are_not_found)
{
	char big[256];
	struct resp_arg a = { .ptr = big, .len = 0 };

	memset(big, 'g', sizeof(big));
	cr_expect_null(urkv_cmd_lookup(&a));
	cr_expect_eq(urkv_cmd_probes(&a), 0);
	for (size_t len = 17; len <= sizeof(big); len += 13) {
		a.len = len;
		cr_expect_null(urkv_cmd_lookup(&a), "a %zu-byte name was found", len);
	}
	/* A command's name followed by more than fits a command's length. */
	memcpy(big, "get", 3);
	a.len = 200;
	cr_expect_null(urkv_cmd_lookup(&a));
}

/* Every name of the table is distinct (up to case), else the lookup would hide the later one. */
Test(urkv_commands, names_are_distinct)
{
	for (unsigned i = 0; i < urkv_cmd_count(); i++)
		for (unsigned j = i + 1; j < urkv_cmd_count(); j++)
			cr_expect_neq(strcasecmp(urkv_cmd_at(i)->name, urkv_cmd_at(j)->name), 0,
				      "entries %u and %u: '%s' and '%s'", i, j, urkv_cmd_at(i)->name,
				      urkv_cmd_at(j)->name);
}
