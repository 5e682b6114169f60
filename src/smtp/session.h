/*
 * session.h - one client SMTP session: state machine, shaping, relay
 *
 * The session itself is private to session.c.  What outlives it (the
 * summary the admin API, feedback, learning and the event log read) is a
 * struct evr_session (log/evrec.h), handed to those modules by the
 * session's hooks.
 *
 * sess_accept: take over an accepted socket (closed on any failure) with
 * the SYN the kernel saved for it (synlen 0: none).
 * sess_shutdown_all: end every session now, each told why with a 421.
 * sess_deinit: free what sessions shared, after the last one.
 */
#ifndef MS_SESSION_H
#define MS_SESSION_H

#include <sys/socket.h>

void	sess_accept(int fd, const struct sockaddr *sa, socklen_t salen,
	    const unsigned char *syn, int synlen);
void	sess_shutdown_all(const char *why);
void	sess_deinit(void);
/* for the session fuzzer: run armed timers now (fuzz/fuzz_session.c) */
#define SESS_FIRE_DELAY		0x01	/* delays, stutter */
#define SESS_FIRE_DEADLINE	0x02	/* state deadlines */
#define SESS_FIRE_BACKEND	0x04	/* backend keepalives */
int	sess_fire_timers(int which);

#endif
