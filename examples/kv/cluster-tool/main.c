/* urkv-cluster: command line and dispatch.  Exit status 0 on success, 1 on
 * a problem of the cluster (a node unreachable, refusing, or disagreeing),
 * 2 on a usage error. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctool.h"

static void usage(FILE *out)
{
	fputs("usage: urkv-cluster [options] <command> [arguments]\n"
	      "commands:\n"
	      "  create host:port host:port ...   split the 16384 slots over empty nodes\n"
	      "  info host:port                   nodes, slot ranges, keys and versions\n"
	      "  check host:port                  exit 1 unless every node agrees, all slots\n"
	      "                                   are covered and none is open\n"
	      "  reshard host:port --from ID --to ID --slots N\n"
	      "                                   move N slots (and their keys) between nodes\n"
	      "  fix host:port                    finish interrupted moves and pushes\n"
	      "options:\n"
	      "  -a, --pass PASS       password of the nodes (AUTH)\n"
	      "      --batch K         most keys per MIGRATE (default 100)\n"
	      "      --slots-per-round N  reshard: slots per SCAN of the source and per\n"
	      "                        topology push (default 512)\n"
	      "      --timeout MS      socket timeout per command (default 60000)\n"
	      "      --migrate-timeout MS  MIGRATE's timeout argument (default 10000)\n"
	      "  -q, --quiet           print only errors and the result\n"
	      "  -h, --help            this text\n"
	      "Node ids may be shortened to a unique prefix of 4 or more characters.\n",
	      out);
}

/* A positive int from arg, or -1. */
static int positive(const char *arg)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || *end || end == arg || v < 1 || v > INT_MAX)
		return -1;
	return (int)v;
}

int main(int argc, char **argv)
{
	enum { OPT_BATCH = 256, OPT_TIMEOUT, OPT_MIGRATE_TIMEOUT, OPT_FROM, OPT_TO, OPT_SLOTS, OPT_ROUND };
	static const struct option longopts[] = {
		{ "pass", required_argument, NULL, 'a' },
		{ "batch", required_argument, NULL, OPT_BATCH },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "migrate-timeout", required_argument, NULL, OPT_MIGRATE_TIMEOUT },
		{ "from", required_argument, NULL, OPT_FROM },
		{ "to", required_argument, NULL, OPT_TO },
		{ "slots", required_argument, NULL, OPT_SLOTS },
		{ "slots-per-round", required_argument, NULL, OPT_ROUND },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ct_opts opts = { .timeout_ms = 60000, .migrate_timeout_ms = 10000, .batch = 100,
				.slots_per_round = 512 };
	const char *from = NULL, *to = NULL, *cmd;
	int slots = -1, c, nargs;
	char **args;

	while ((c = getopt_long(argc, argv, "a:qh", longopts, NULL)) != -1) {
		int *target = NULL, v;

		switch (c) {
		case 'a':
			opts.password = optarg;
			continue;
		case 'q':
			opts.quiet = true;
			continue;
		case 'h':
			usage(stdout);
			return CT_EXIT_OK;
		case OPT_FROM:
			from = optarg;
			continue;
		case OPT_TO:
			to = optarg;
			continue;
		case OPT_BATCH:
			target = &opts.batch;
			break;
		case OPT_TIMEOUT:
			target = &opts.timeout_ms;
			break;
		case OPT_MIGRATE_TIMEOUT:
			target = &opts.migrate_timeout_ms;
			break;
		case OPT_SLOTS:
			target = &slots;
			break;
		case OPT_ROUND:
			target = &opts.slots_per_round;
			break;
		default:
			usage(stderr);
			return CT_EXIT_USAGE;
		}
		v = positive(optarg);
		if (v < 0) {
			fprintf(stderr, "urkv-cluster: --%s wants a positive integer, not '%s'\n",
				longopts[c - OPT_BATCH + 1].name, optarg);
			return CT_EXIT_USAGE;
		}
		*target = v;
	}
	if (optind >= argc) {
		usage(stderr);
		return CT_EXIT_USAGE;
	}
	cmd = argv[optind];
	args = argv + optind + 1;
	nargs = argc - optind - 1;
	if (strcmp(cmd, "reshard") != 0 && (from || to || slots >= 0)) {
		fprintf(stderr, "urkv-cluster: --from, --to and --slots belong to reshard, not %s\n", cmd);
		return CT_EXIT_USAGE;
	}
	if (strcmp(cmd, "create") == 0) {
		if (nargs < 1) {
			fprintf(stderr, "urkv-cluster: create wants at least one host:port\n");
			return CT_EXIT_USAGE;
		}
		return ct_cmd_create(nargs, args, &opts);
	}
	if (strcmp(cmd, "info") == 0 || strcmp(cmd, "check") == 0 || strcmp(cmd, "fix") == 0 ||
	    strcmp(cmd, "reshard") == 0) {
		char ip[64];
		int port;

		if (nargs != 1) {
			fprintf(stderr, "urkv-cluster: %s wants exactly one host:port (any node of the cluster)\n",
				cmd);
			return CT_EXIT_USAGE;
		}
		if (ct_parse_hostport(args[0], ip, sizeof(ip), &port)) {
			fprintf(stderr, "urkv-cluster: '%s' is not host:port (or the host does not resolve)\n",
				args[0]);
			return CT_EXIT_USAGE;
		}
		if (cmd[0] == 'i')
			return ct_cmd_info(args[0], &opts);
		if (cmd[0] == 'c')
			return ct_cmd_check(args[0], &opts);
		if (cmd[0] == 'f')
			return ct_cmd_fix(args[0], &opts);
		if (!from || !to || slots < 0) {
			fprintf(stderr, "urkv-cluster: reshard wants --from ID --to ID --slots N\n");
			return CT_EXIT_USAGE;
		}
		return ct_cmd_reshard(args[0], from, to, slots, &opts);
	}
	fprintf(stderr, "urkv-cluster: unknown command '%s' (create, info, check, reshard, fix)\n", cmd);
	return CT_EXIT_USAGE;
}
