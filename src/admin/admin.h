/*
 * admin.h - the admin HTTP API: /metrics, /api/host/IP, /api/stats,
 *           POST /feedback and the live dashboard at /
 *
 * One instance per process, in the daemon's event loop.  See admin.c for
 * the contracts and doc/internals/admin.md for the endpoints.
 */
#ifndef MS_ADMIN_H
#define MS_ADMIN_H

#include <stddef.h>

struct event_base;
struct conf;
struct evr_session;

#define ADM_HOSTS_MAX		10000	/* hosts kept for /api/host (LRU) */
#define ADM_GROUPS_MAX		256	/* OS labels in /api/stats */

int	adm_open(struct event_base *, const struct conf *, char *err,
	    size_t errlen);
void	adm_close(void);

/* Hooks from the session (cheap, never fail, never block). */
void	adm_sess_start(const struct evr_session *);
void	adm_sess_end(const struct evr_session *);
void	adm_msg_end(const struct evr_session *, int outcome); /* enum outcome */
void	adm_delay(int class_idx, long ms);	/* a reply is held */

extern const char adm_dashboard_html[];		/* dashboard.c */

#endif
