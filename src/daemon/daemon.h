/*
 * daemon.h - process-wide state of the daemon, shared by its modules
 *
 * One event loop owns everything here; no lock protects it.  `ms` is set by
 * daemon_main() and lives until exit.
 */
#ifndef MS_DAEMON_H
#define MS_DAEMON_H

#include <stdint.h>

#include "conf/conf.h"

struct event_base;
struct evdns_base;
struct sigdb;
struct ssl_ctx_st;

/* What the backend probe learned (EHLO keywords). */
struct bk_caps {
	int	known;			/* a probe has succeeded */
	int	pipelining;
	int	eightbit;
	int	smtputf8;
	int	chunking;
	int	enhanced;		/* ENHANCEDSTATUSCODES */
	int	starttls;
	long	size;			/* SIZE value (0 = none / unlimited) */
	int	has_size;
	unsigned xclient;		/* XCLIENT attributes: BK_XA_* bits */
};

#define BK_XA_NAME	0x01
#define BK_XA_ADDR	0x02
#define BK_XA_PORT	0x04
#define BK_XA_PROTO	0x08
#define BK_XA_HELO	0x10
#define BK_XA_ANY	0x80		/* XCLIENT advertised at all */

/* Counters (read by the admin API later; logged at exit). */
struct ms_stats {
	unsigned long accepted;
	unsigned long refused;		/* 421 at connect: caps */
	unsigned long syn_missing;	/* no saved SYN: fp null */
	unsigned long pregreet;
	unsigned long violations;
	unsigned long messages;
	unsigned long delivered;
	unsigned long backend_errors;
	unsigned long by_class[CONF_MAX_CLASSES];
};

struct ms {
	struct event_base *base;
	struct conf *cf;		/* current configuration */
	const char *conf_path;		/* NULL: defaults only */
	char  **overrides;
	int	noverrides;
	struct sigdb *sigdb;		/* NULL when no signature file loads */
	struct ssl_ctx_st *tls;		/* server side, NULL = no STARTTLS */
	struct ssl_ctx_st *tls_client;	/* backend side */
	struct bk_caps caps;
	long	nsess;			/* live sessions */
	long	nbackend;		/* live backend connections */
	long	class_count[CONF_MAX_CLASSES];	/* live sessions by class */
	int	stopping;		/* SIGTERM seen */
	struct ms_stats st;
};

extern struct ms *ms;

int	daemon_main(int argc, char **argv);
void	daemon_session_gone(void);
int	daemon_class_index(const char *name);

#endif
