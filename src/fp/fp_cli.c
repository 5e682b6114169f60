/*
 * fp_cli.c - `mailshaper fingerprint` (being written: see issue 3)
 */
#include <stdio.h>

#include "fp/fp_cli.h"

/* fp_cli_main - entry point of the fingerprint subcommand */
int
fp_cli_main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "mailshaper fingerprint: not built yet\n");
	return 2;
}
