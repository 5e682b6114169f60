/*
 * countsink_drv.c - run src/swarm/countsink.c without mailshaper-swarm
 *
 *   countsink_drv [sink_main options]...
 *
 * Logs to stderr under the ident "countsink" and hands its arguments to
 * sink_main(), as `mailshaper-swarm backend ...` does; the exit status is
 * sink_main()'s.  Built by tests/blackbox/test_countsink.py against
 * $MAILSHAPER_BUILD/libswarm.a and libmscommon.a (with ASan+UBSan when that library was
 * built with them).
 */
#include "swarm/countsink.h"
#include "util/log.h"

int
main(int argc, char **argv)
{
	log_init(LOG_TO_STDERR, "countsink");
	return sink_main(argc, argv);
}
