/*
 * daemon.h - the daemon's entry point
 *
 * daemon_main() parses the command line, starts everything, runs the loop
 * and returns the exit status.  The state it shares with the modules is in
 * daemon/runtime.h.
 */
#ifndef MS_DAEMON_H
#define MS_DAEMON_H

int	daemon_main(int argc, char **argv);

#endif
