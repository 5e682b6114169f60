/*
 * fp_cli.h - `mailshaper fingerprint`: the p0f-compatible CLI
 */
#ifndef MS_FP_CLI_H
#define MS_FP_CLI_H

int	fp_cli_main(int argc, char **argv);

#endif
