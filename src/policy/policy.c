/*
 * policy.c - choose a session's shaping class, and say why
 *
 * Exports pol_classify() and pol_violation().
 *
 * pol_classify() is the one hook through which a session gets its class.
 * Today its inputs are static: the first client_class_map entry that holds
 * the client, else default_class.  The decision engine (DNSBLs, learned
 * reputation) plugs in here.  Each input that decided something adds a
 * reason to the session, and the reasons go to the log and the event log.
 *
 * pol_violation() records a protocol violation (pregreet, improper
 * pipelining, bare LF in a command) and moves the session to
 * violation_class.  In observe mode the class is recorded but, like every
 * class setting, has no effect (the session's shaping reads ms->cf->observe).
 */
#include <arpa/inet.h>
#include <string.h>

#include "daemon/daemon.h"
#include "policy/policy.h"
#include "smtp/session.h"
#include "util/log.h"

/* pol_set_class - switch the session's class (counts follow) */
static void
pol_set_class(struct sess *s, const char *name)
{
	const struct shclass *c = conf_class(ms->cf, name);
	int	idx = daemon_class_index(name);

	if (c == NULL || idx < 0)
		return;
	if (s->class_idx >= 0)
		ms->class_count[s->class_idx]--;
	s->cls = *c;
	s->class_idx = idx;
	ms->class_count[idx]++;
}

/* pol_classify - static inputs: client_class_map, then default_class */
void
pol_classify(struct sess *s)
{
	const struct conf *cf = ms->cf;
	int	i;

	for (i = 0; i < cf->nmap; i++) {
		if (addr_cidr_match(&cf->map[i].net,
		    &s->peer.sa)) {
			char	net[INET6_ADDRSTRLEN];

			inet_ntop(cf->map[i].net.family, cf->map[i].net.addr,
			    net, sizeof(net));
			sess_add_reason(s, "client_class_map %s/%d = %s", net,
			    cf->map[i].net.plen, cf->map[i].class_name);
			pol_set_class(s, cf->map[i].class_name);
			return;
		}
	}
	sess_add_reason(s, "default_class = %s", cf->default_class);
	pol_set_class(s, cf->default_class);
}

/* pol_violation - count a protocol violation and demote the session */
void
pol_violation(struct sess *s, const char *what)
{
	const char *to = ms->cf->violation_class;

	s->violations++;
	ms->st.violations++;
	if (*to == 0 || strcmp(s->cls.name, to) == 0) {
		sess_add_reason(s, "violation %s", what);
		log_info("%s: violation: %s from [%s]:%d", s->id, what, s->ip,
		    s->port);
		return;
	}
	sess_add_reason(s, "violation %s -> class %s", what, to);
	log_info("%s: violation: %s from [%s]:%d; class %s -> %s%s", s->id,
	    what, s->ip, s->port, s->cls.name, to,
	    ms->cf->observe ? " (observe)" : "");
	pol_set_class(s, to);
}
