/*
 * runtime.h - the daemon's process-wide state: the loop, the current
 *	       configuration, shared contexts, live counts and counters
 *
 * One event loop owns everything here; no lock protects it.  daemon.c
 * fills `ms` at start-up and it lives until exit.  The modules that serve
 * clients (listener, session, backend, spool) and the admin API read and
 * count here; the decision (src/policy/) and reputation never do: they get
 * what they need as arguments.  This header belongs to no part, so that
 * no module has to include the daemon to reach its state.
 */
#ifndef MS_RUNTIME_H
#define MS_RUNTIME_H

#include <stddef.h>

#include "conf/conf.h"

struct event_base;
struct sigdb;
struct ssl_ctx_st;

/* Counters (read by the admin API; logged at exit). */
struct ms_stats {
	unsigned long accepted;
	unsigned long refused;		/* 421 at connect: caps */
	unsigned long syn_missing;	/* no saved SYN: fp null */
	unsigned long pregreet;
	unsigned long violations;
	unsigned long messages;
	unsigned long delivered;
	unsigned long backend_errors;
	unsigned long backend_waits;	/* MAILs that waited for a backend
					   connection */
	unsigned long by_class[CONF_MAX_CLASSES];
	size_t	spool_mem;		/* bytes of content in memory */
	unsigned long spool_files;	/* spools moved to a file */
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
	long	nsess;			/* live sessions */
	long	nbackend;		/* live backend connections */
	long	bk_class[CONF_MAX_CLASSES];	/* of them held by sessions,
						   by class */
	long	class_count[CONF_MAX_CLASSES];	/* live sessions by class */
	int	stopping;		/* SIGTERM seen */
	struct ms_stats st;
};

extern struct ms *ms;

/*
 * ms_class_index: the stable counter slot of a class name (slots outlive
 * reloads; -1 when all CONF_MAX_CLASSES are taken).
 * ms_class_name: the name of a slot, or NULL.
 * ms_session_gone: a session ended; ends the loop when a shutdown waits
 * for the last one.
 */
int	ms_class_index(const char *name);
const char *ms_class_name(int idx);
void	ms_session_gone(void);

#endif
