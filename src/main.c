/*
 * main.c - entry point: the daemon and its subcommands
 *
 *   mailshaper -c FILE [-o name=value]... [-f] [-v] [--check-config]
 *   mailshaper fingerprint [-r FILE | -i IFACE] [--db FILE]... [--json] ...
 */
#include <string.h>

#include "admin/feedback.h"
#include "daemon/daemon.h"
#include "fp/fp_cli.h"
#include "report/evaluate.h"
#include "report/report.h"
#include "util/log.h"

int
main(int argc, char **argv)
{
	log_init(LOG_TO_STDERR, "mailshaper");
	if (argc > 1 && strcmp(argv[1], "fingerprint") == 0)
		return fp_cli_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "feedback") == 0)
		return fb_cli_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "evaluate") == 0) return eval_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "report") == 0) return report_main(argc - 1, argv + 1);
	return daemon_main(argc, argv);
}
