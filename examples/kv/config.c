/*
 * The config file: `urkv /path/urkv.conf` reads redis.conf syntax.
 *
 * A line is `directive arg...`; blank lines and lines whose first
 * non-blank character is '#' are skipped.  Arguments are split as Redis
 * splits them (sdssplitargs: blanks separate, "double quotes" with \n \r
 * \t \b \a \\ \" \xHH escapes, 'single quotes'), which is exactly the
 * inline-command syntax urkv's RESP parser implements, so the parser is
 * reused for it (resp_parse on one line).  libinih, the library the project
 * prefers for config files, parses INI (`name = value` lines in
 * [sections]): it rejects `port 6379` as a line without '=' and would read
 * `bind 127.0.0.1 -::1` as the name "bind 127.0.0.1 -" with the value
 * ":1", so it does not fit redis.conf.
 *
 * Directives: Redis's names for what urkv has (port, bind, protected-mode,
 * requirepass, dir, dbfilename, maxclients, timeout, appendfsync,
 * appendonly yes), and urkv's own long options under their own names
 * (cache 256M, cores 2, size 4G ...).  Anything else, a missing or extra
 * argument, or a bad value stops the start with `urkv: FILE:LINE: reason`.
 * Later lines override earlier ones, and options on the command line
 * override the file (as with redis-server).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "urkv.h"
#include "urt/urt.h"

#define CONFIG_ARGS_MAX 16

/* The arguments the settings point at, kept until urkv_config_free (exit). */
struct config_str {
	struct config_str *next;	/* Kept before it. */
	char s[];			/* NUL-terminated argument. */
};

static struct config_str *kept;

static char *keep(const char *p, size_t len)
{
	struct config_str *k = malloc(sizeof(*k) + len + 1);

	if (!k)
		return NULL;
	memcpy(k->s, p, len);
	k->s[len] = 0;
	k->next = kept;
	kept = k;
	return k->s;
}

void urkv_config_free(void)
{
	while (kept) {
		struct config_str *next = kept->next;

		free(kept);
		kept = next;
	}
}

/* Redis's directive names that map onto one of urkv's settings. */
static const struct {
	const char *redis;	/* Directive. */
	const char *opt;	/* urkv setting (opts.c). */
} aliases[] = {
	{ "maxclients", "max-clients" },
	{ "timeout", "idle-timeout" },
};

static int apply(struct urkv_opts *o, const char *dir, int argc, char **argv, char *why, size_t len)
{
	const char *name = dir;

	if (strcasecmp(dir, "appendonly") == 0) {
		if (argc == 1 && strcasecmp(argv[0], "yes") == 0)
			return 0;
		snprintf(why, len, "urkv always keeps its log: only 'appendonly yes' is accepted");
		return -1;
	}
	if (strcasecmp(dir, "bind") == 0 && argc > 1) {
		snprintf(why, len, "urkv listens on one address; 'bind' got %d", argc);
		return -1;
	}
	for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
		if (strcasecmp(dir, aliases[i].redis) == 0)
			name = aliases[i].opt;
	if (!urkv_opt_known(name) || strcmp(name, "port-file") == 0) {
		snprintf(why, len, "unknown or unsupported directive '%s' (docs/kv.md lists the "
				   "supported ones)", dir);
		return -1;
	}
	if (argc != 1) {
		snprintf(why, len, "'%s' takes one argument, got %d", dir, argc);
		return -1;
	}
	if (strcasecmp(dir, "bind") == 0 && argv[0][0] == '-')
		argv[0]++;	/* Redis's "-addr": skip when unavailable; urkv needs it. */
	return urkv_opt_set(o, name, argv[0], why, len);
}

int urkv_config_load(const char *path, struct urkv_opts *o)
{
	struct resp_opts ro = resp_opts_default();
	struct resp_parser p;
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	unsigned lineno = 0;
	ssize_t n;
	int ret = 0;

	if (!f) {
		fprintf(stderr, "urkv: cannot read the config file %s: %s\n", path, strerror(errno));
		return -1;
	}
	ro.args_max = CONFIG_ARGS_MAX + 1;
	if (resp_parser_init(&p, &ro) != 0) {
		fclose(f);
		return -1;
	}
	while (ret == 0 && (n = getline(&line, &cap, f)) >= 0) {
		struct resp_arg argv[CONFIG_ARGS_MAX + 1];
		struct resp_cmd cmd = { .argv = argv, .argv_max = CONFIG_ARGS_MAX + 1 };
		char *s = line, *copy[CONFIG_ARGS_MAX];
		char why[256];
		ssize_t used;

		lineno++;
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '#' || *s == '\n' || *s == '\r' || *s == 0)
			continue;
		if (line[n - 1] != '\n') {
			/* The last line without its newline: getline left room for it. */
			if ((size_t)n + 2 > cap) {
				char *l = realloc(line, (size_t)n + 2);

				if (!l) {
					ret = -1;
					break;
				}
				s = l + (s - line);
				line = l;
				cap = (size_t)n + 2;
			}
			line[n++] = '\n';
			line[n] = 0;
		}
		resp_parser_reset(&p);
		used = *s == '*' ? RESP_E_BAD_TYPE : resp_parse(&p, s, (size_t)(line + n - s), &cmd);
		if (used <= 0 || cmd.argc == 0) {
			fprintf(stderr, "urkv: %s:%u: cannot parse the line%s%s\n", path, lineno,
				used < 0 ? ": " : "", used < 0 ? resp_strerror((int)used) : "");
			ret = -1;
			break;
		}
		if (cmd.argc > CONFIG_ARGS_MAX) {
			fprintf(stderr, "urkv: %s:%u: too many arguments\n", path, lineno);
			ret = -1;
			break;
		}
		/* Copies: the settings keep pointers to them until urkv_config_free. */
		for (size_t i = 0; i < cmd.argc; i++) {
			copy[i] = keep(argv[i].ptr, argv[i].len);
			if (!copy[i] || strlen(copy[i]) != argv[i].len) {
				fprintf(stderr, "urkv: %s:%u: %s\n", path, lineno,
					copy[i] ? "a NUL byte in an argument" : "out of memory");
				ret = -1;
				break;
			}
		}
		if (ret)
			break;
		if (apply(o, copy[0], (int)cmd.argc - 1, copy + 1, why, sizeof(why)) != 0) {
			fprintf(stderr, "urkv: %s:%u: %s\n", path, lineno, why);
			ret = -1;
		}
	}
	if (ret == 0 && ferror(f)) {
		fprintf(stderr, "urkv: cannot read the config file %s: %s\n", path, strerror(errno));
		ret = -1;
	}
	free(line);
	fclose(f);
	return ret;
}
