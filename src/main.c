/*
 * main.c - entry point: the daemon and the subcommands
 *
 *   mailshaper -c FILE [-o name=value]... [-f] [--check-config]
 *   mailshaper fingerprint ...
 */
#include <stdio.h>
#include <string.h>

#include "util/log.h"

int
main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	log_init(LOG_TO_STDERR, "mailshaper");
	return 0;
}
