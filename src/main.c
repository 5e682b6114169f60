/*
 * main.c - entry point: the daemon and the subcommands
 *
 *   mailshaper -c FILE [-o name=value]... [-f] [--check-config]
 *   mailshaper fingerprint ...
 */
#include <stdio.h>
#include <string.h>

#include "fp/fp_cli.h"
#include "util/log.h"

int
main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	log_init(LOG_TO_STDERR, "mailshaper");
	if (argc > 1 && strcmp(argv[1], "fingerprint") == 0)
		return fp_cli_main(argc - 1, argv + 1);
	return 0;
}
