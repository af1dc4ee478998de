/*
 * urkv's settings: defaults and the parser of one setting's value, shared
 * by the command line (main.c) and the config file (config.c), so that
 * `--max-clients 10` and `maxclients 10` are checked by the same code.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "urkv.h"
#include "urt/urt.h"

void urkv_opts_default(struct urkv_opts *o)
{
	*o = (struct urkv_opts){
		.bind_addr = "127.0.0.1",
		.port = 6379,
		.data_path = "urkv.data",
		.size_bytes = 1ull << 30,
		.cache_bytes = 256ull << 20,
		.max_clients = 1024,
		.max_request = 0,	/* proto_max_bulk_len + 1 MiB unless given (main.c). */
		.proto_max_bulk_len = URT_KV_VALUE_MAX,
		.max_args = 65536,
		.sync = URT_PS_SYNC_AUTO,
		.read_prefetch_min = 16ull << 20,
		.appendfsync = URKV_FSYNC_ALWAYS,
		.protected_mode = true,
		.dir = ".",
		.dbfilename = "urkv.data",
	};
}

const char *urkv_opts_data_path(const struct urkv_opts *o, char *buf, size_t len)
{
	if (o->data_set || (strcmp(o->dir, ".") == 0 && strcmp(o->dbfilename, "urkv.data") == 0))
		snprintf(buf, len, "%s", o->data_path);
	else
		snprintf(buf, len, "%s/%s", o->dir, o->dbfilename);
	return buf;
}

/*
 * A size: digits, then K/M/G/T as powers of 1024 (urkv's own) or Redis's
 * kb/mb/gb.  A size whose unit carries it past 2^64 - 1 is refused: the
 * shift would wrap it silently (99999999999T read as a few hundred MiB,
 * or as 2^60 bytes of cache).
 */
static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default: break;
	}
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end || v > (UINT64_MAX >> shift))
		return -1;
	*out = v << shift;
	return 0;
}

/*
 * A count (a port, clients, cores, seconds, microseconds): digits only.
 * Redis refuses a unit on these too ("timeout 1m" is not a minute); read
 * as a size it would be 1048576 seconds.
 */
static int parse_count(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

static bool is_numeric_ip(const char *s)
{
	struct in6_addr a6;
	struct in_addr a4;

	return inet_pton(AF_INET, s, &a4) == 1 || inet_pton(AF_INET6, s, &a6) == 1;
}

static int parse_yesno(const char *s, bool *out)
{
	if (strcasecmp(s, "yes") == 0)
		*out = true;
	else if (strcasecmp(s, "no") == 0)
		*out = false;
	else
		return -1;
	return 0;
}

struct opt_def {
	const char *name;	/* Long option name. */
	const char *want;	/* What a valid value looks like (for the error). */
};

static const struct opt_def defs[] = {
	{ "bind", "a numeric IPv4 or IPv6 address, such as 127.0.0.1 or ::1" },
	{ "port", "a number from 0 to 65535" },
	{ "port-file", "a path, not empty" },
	{ "data", "a path of a data file or block device, not empty" },
	{ "size", "a size such as 1G" },
	{ "cache", "a size such as 256M" },
	{ "log-size", "a size such as 512M, 0 = automatic" },
	{ "cores", "a number from 1 to 1024" },
	{ "max-clients", "a number from 1 to 1000000" },
	{ "max-request", "a size from 1K to 1G" },
	{ "proto-max-bulk-len", "a size from 1K to 512M" },
	{ "max-args", "a number from 3 to 1048576" },
	{ "idle-timeout", "seconds from 0 (never) to 1000000000, digits only" },
	{ "sync", "auto, fua, flush or none" },
	{ "group-delay-us", "microseconds from 0 to 1000000" },
	{ "read-prefetch-min", "a size such as 16M, 0 = always" },
	{ "poll", "interrupt, hybrid or sqpoll" },
	{ "requirepass", "a password" },
	{ "protected-mode", "yes or no" },
	{ "appendfsync", "always, everysec or no" },
	{ "dir", "a directory" },
	{ "dbfilename", "a file name without '/'" },
	{ "cluster-enabled", "yes or no" },
	{ "cluster-config-file", "a path" },
	{ "enable-debug-command", "yes, no or local" },
};

bool urkv_opt_known(const char *name)
{
	for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++)
		if (strcmp(defs[i].name, name) == 0)
			return true;
	return false;
}

int urkv_opt_set(struct urkv_opts *o, const char *name, const char *val, char *why, size_t len)
{
	uint64_t v = 0;
	bool ok = true;
	const struct opt_def *d = NULL;

	for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++)
		if (strcmp(defs[i].name, name) == 0)
			d = &defs[i];
	if (!d) {
		snprintf(why, len, "unknown setting '%s'", name);
		return -1;
	}
	if (strcmp(name, "bind") == 0) {
		/* Checked here, so a host name is refused with its file and line, not at listen(). */
		ok = is_numeric_ip(val);
		o->bind_addr = val;
	} else if (strcmp(name, "port") == 0) {
		ok = !parse_count(val, &v) && v <= 65535;
		o->port = (uint16_t)v;
	} else if (strcmp(name, "port-file") == 0) {
		ok = *val != 0;
		o->port_file = val;
	} else if (strcmp(name, "data") == 0) {
		ok = *val != 0;	/* "" would reach the store as a path and fail there, unclearly. */
		o->data_path = val;
		o->data_set = true;
	} else if (strcmp(name, "size") == 0) {
		ok = !parse_size(val, &o->size_bytes);
	} else if (strcmp(name, "cache") == 0) {
		ok = !parse_size(val, &o->cache_bytes);
	} else if (strcmp(name, "log-size") == 0) {
		ok = !parse_size(val, &o->log_bytes) && (o->log_bytes == 0 || o->log_bytes >= 4096);
	} else if (strcmp(name, "cores") == 0) {
		ok = !parse_count(val, &v) && v >= 1 && v <= 1024;
		o->cores = (unsigned)v;
	} else if (strcmp(name, "max-clients") == 0) {
		ok = !parse_count(val, &v) && v >= 1 && v <= 1000000;
		o->max_clients = (unsigned)v;
	} else if (strcmp(name, "max-request") == 0) {
		ok = !parse_size(val, &v) && v >= 1024 && v <= (1ull << 30);
		o->max_request = (size_t)v;
	} else if (strcmp(name, "proto-max-bulk-len") == 0) {
		ok = !parse_size(val, &v) && v >= 1024 && v <= URT_KV_VALUE_MAX;
		o->proto_max_bulk_len = (size_t)v;
	} else if (strcmp(name, "max-args") == 0) {
		ok = !parse_count(val, &v) && v >= 3 && v <= (1u << 20);
		o->max_args = (size_t)v;
	} else if (strcmp(name, "idle-timeout") == 0) {
		ok = !parse_count(val, &v) && v <= 1000000000ull;
		o->idle_timeout_ns = v * 1000000000ull;
	} else if (strcmp(name, "sync") == 0) {
		if (strcmp(val, "auto") == 0)
			o->sync = URT_PS_SYNC_AUTO;
		else if (strcmp(val, "fua") == 0)
			o->sync = URT_PS_SYNC_FUA;
		else if (strcmp(val, "flush") == 0)
			o->sync = URT_PS_SYNC_FLUSH;
		else if (strcmp(val, "none") == 0)
			o->sync = URT_PS_SYNC_NONE_UNSAFE;
		else
			ok = false;
	} else if (strcmp(name, "group-delay-us") == 0) {
		ok = !parse_count(val, &v) && v <= 1000000;
		o->group_delay_ns = v * 1000;
	} else if (strcmp(name, "read-prefetch-min") == 0) {
		ok = !parse_size(val, &o->read_prefetch_min);
	} else if (strcmp(name, "poll") == 0) {
		if (strcmp(val, "interrupt") == 0)
			o->poll_mode = URT_POLL_INTERRUPT;
		else if (strcmp(val, "hybrid") == 0)
			o->poll_mode = URT_POLL_HYBRID;
		else if (strcmp(val, "sqpoll") == 0)
			o->poll_mode = URT_POLL_SQPOLL;
		else
			ok = false;
	} else if (strcmp(name, "requirepass") == 0) {
		o->requirepass = *val ? val : NULL;
	} else if (strcmp(name, "protected-mode") == 0) {
		ok = !parse_yesno(val, &o->protected_mode);
	} else if (strcmp(name, "appendfsync") == 0) {
		ok = !urkv_fsync_parse(val, strlen(val), &o->appendfsync);
	} else if (strcmp(name, "dir") == 0) {
		ok = *val != 0;
		o->dir = val;
	} else if (strcmp(name, "dbfilename") == 0) {
		ok = *val != 0 && !strchr(val, '/');
		o->dbfilename = val;
	} else if (strcmp(name, "cluster-enabled") == 0) {
		ok = !parse_yesno(val, &o->cluster_enabled);
	} else if (strcmp(name, "enable-debug-command") == 0) {
		bool yes;

		if (strcasecmp(val, "local") == 0)
			o->enable_debug = URKV_DEBUG_LOCAL;
		else if ((ok = !parse_yesno(val, &yes)))
			o->enable_debug = yes ? URKV_DEBUG_YES : URKV_DEBUG_NO;
	} else if (strcmp(name, "cluster-config-file") == 0) {
		ok = *val != 0;
		o->cluster_config_file = val;
	}
	if (!ok) {
		snprintf(why, len, "bad value '%s' for %s (want %s)", val, name, d->want);
		return -1;
	}
	return 0;
}
