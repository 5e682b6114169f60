/*
 * policy.c - choose a session's shaping class, say why, and learn
 *
 * Exports pol_classify(), pol_violation(), pol_learn() and
 * pol_learn_listing().
 *
 * pol_classify() is the one hook through which a session gets its class.
 * A client_class_map entry decides outright.  Otherwise the score is the
 * sum of
 *   - the weights of the DNS lists that listed the client (allow lists
 *     are negative), once their answer is in;
 *   - for each reputation key (IP, prefix, raw signature, OS label,
 *     prefix x raw signature, verified domain): weight x log-odds of spam
 *     x evidence / (evidence + rep_evidence_scale), so a key that rests
 *     on little evidence moves the score little;
 * and policy_thresholds turn it into a class (default_class when no
 * threshold applies).  A share of little-known sessions (explore_share)
 * runs in class normal as a control group, because shaping makes bots
 * give up and giving up counts against them: without a control group
 * reputation would only confirm itself.  A protocol violation moves the
 * session to violation_class.  The session calls pol_classify() again
 * when an asynchronous input (a DNS list answer) arrives, so an answer
 * that comes during the banner delay re-classes the session before the
 * client speaks.
 *
 * Every input that moved the score adds a reason in the form
 * `<input> <what> (bad <p>, n=<evidence>) = <+/-contribution>`.
 *
 * pol_learn() turns one outcome into reputation updates for every key of
 * the session.  Backend errors are never passed here.
 *
 * pol_learn_listing() learns from the DNS lists' answer: when at least one
 * block list (a hit of positive weight) listed the client, every key of
 * the session except the IP gets one "listed" observation, bad evidence,
 * so a raw signature shared by a botnet turns bad from its listed members
 * before the unlisted ones have delivered much.  Never the IP key: the
 * list is the authority on the address, and when it delists the address
 * we must not keep punishing it.  Allow lists (negative weights) teach
 * nothing.  Each key learns at most once per session (the session's
 * listed_kinds); a key that appears after the answer (the verified
 * domain, when the reverse lookup ends later) learns when the session
 * calls again.  Like the outcomes, listings are learned in observe mode
 * and in the control group, and only for a session that holds a slot
 * (s->counted): a refused connection teaches nothing.  A client that
 * client_class_map decides at connect is not looked up, so it teaches no
 * listing (its outcomes still teach, as pol_learn() does for it).  The
 * session calls this after re-classing, so its own listing counts once in
 * its own score, as the list's weight.
 */
#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon.h"
#include "dnsbl/dnsbl.h"
#include "fp/fp.h"
#include "policy/policy.h"
#include "rep/rep.h"
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

/* pol_keys - the session's reputation keys; the count */
static int
pol_keys(const struct sess *s, struct rep_key keys[REPK_NKINDS])
{
	return rep_keys_for(&s->peer.sa, s->fp ? s->fp->key_hash : NULL,
	    s->fp ? s->fp->os : NULL, s->domain, keys);
}

/* pol_key_text - how a key is shown in a reason */
static const char *
pol_key_text(const struct sess *s, const struct rep_key *k, char *buf,
    size_t len)
{
	if (k->kind == REPK_RAWSIG && s->fp != NULL)
		snprintf(buf, len, "%.60s", s->fp->key);
	else
		snprintf(buf, len, "%.80s", k->text);
	return buf;
}

/* pol_threshold - the class a score falls into, or NULL */
static const char *
pol_threshold(double score)
{
	const struct conf *cf = ms->cf;
	const char *best = NULL;
	double	bs = 0;
	int	i;

	for (i = 0; i < cf->nthresholds; i++) {
		double	t = cf->thresholds[i].score;

		if ((t > 0 && score >= t && t > bs) ||
		    (t < 0 && score <= t && t < bs)) {
			best = cf->thresholds[i].class_name;
			bs = t;
		}
	}
	return best;
}

/* pol_classify - static map, else the score; then violations */
void
pol_classify(struct sess *s)
{
	const struct conf *cf = ms->cf;
	struct rep_key keys[REPK_NKINDS];
	const char *cls = NULL;
	double	score = 0, most = 0;
	char	kt[100];
	int	i, n;

	sess_clear_reasons(s);
	for (i = 0; i < cf->nmap; i++) {
		if (addr_cidr_match(&cf->map[i].net, &s->peer.sa)) {
			char	net[INET6_ADDRSTRLEN];

			inet_ntop(cf->map[i].net.family, cf->map[i].net.addr,
			    net, sizeof(net));
			sess_add_reason(s, "client_class_map %s/%d = %s", net,
			    cf->map[i].net.plen, cf->map[i].class_name);
			s->static_class = 1;
			cls = cf->map[i].class_name;
			goto decided;
		}
	}
	s->static_class = 0;
	if (s->dnsbl != NULL) {
		for (i = 0; i < s->dnsbl->nhits; i++) {
			score += s->dnsbl->hits[i].weight;
			sess_add_reason(s, "dnsbl %s = %+g", s->dnsbl->hits[i].zone,
			    s->dnsbl->hits[i].weight);
		}
	}
	n = pol_keys(s, keys);
	for (i = 0; i < n; i++) {
		struct rep_est e;
		double	w = cf->rep_weight[keys[i].kind], c;

		if (w == 0 || rep_lookup(&keys[i], &e) < 0 || e.evidence <= 0)
			continue;
		if (e.evidence > most)
			most = e.evidence;
		c = w * e.log_odds * e.evidence /
		    (e.evidence + (double)cf->rep_evidence_scale);
		score += c;
		if (fabs(c) >= 0.05)
			sess_add_reason(s, "%s %s (bad %.2f, n=%.0f) = %+.1f",
			    rep_keykind_name(keys[i].kind),
			    pol_key_text(s, &keys[i], kt, sizeof(kt)), e.p_spam,
			    e.evidence, c);
	}
	s->score = score;
	cls = pol_threshold(score);
	if (cls == NULL)
		cls = cf->default_class;
	/* Exploration: a control group among little-known senders. */
	if (!s->explore_drawn) {
		s->explore_drawn = 1;
		s->control = most < (double)cf->explore_max_evidence &&
		    cf->explore_share > 0 &&
		    drand48() < cf->explore_share &&
		    conf_class(cf, "normal") != NULL;
	}
	if (s->control) {
		sess_add_reason(s, "score %+.1f; control group -> normal", score);
		cls = "normal";
	} else
		sess_add_reason(s, "score %+.1f -> %s", score, cls);
decided:
	if (s->violations > 0 && *cf->violation_class) {
		sess_add_reason(s, "violation %s -> %s", s->violation,
		    cf->violation_class);
		cls = cf->violation_class;
	}
	if (s->class_idx < 0 || strcmp(s->cls.name, cls) != 0)
		pol_set_class(s, cls);
}

/* pol_violation - count a protocol violation and re-class the session */
void
pol_violation(struct sess *s, const char *what)
{
	char	before[CONF_NAME_MAX];

	s->violations++;
	s->violation = what;
	ms->st.violations++;
	snprintf(before, sizeof(before), "%s", s->cls.name);
	pol_classify(s);
	log_info("%s: violation: %s from [%s]:%d; class %s -> %s%s", s->id,
	    what, s->ip, s->port, before, s->cls.name,
	    ms->cf->observe ? " (observe)" : "");
}

/* The key kinds a listing never teaches (bits 1 << enum rep_keykind). */
#define POL_NOT_LISTED	(1u << REPK_IP)

/*
 * pol_update - count outcome o once for each key of the session whose kind
 * is not in skip (bits 1 << kind); returns the kinds counted
 */
static unsigned
pol_update(const struct sess *s, enum outcome o, unsigned skip)
{
	struct rep_key keys[REPK_NKINDS];
	unsigned done = 0;
	int	i, n = pol_keys(s, keys);

	for (i = 0; i < n; i++) {
		if (skip & (1u << keys[i].kind))
			continue;
		rep_update(&keys[i], o, 1.0);
		done |= 1u << keys[i].kind;
	}
	return done;
}

/* pol_learn - one outcome updates every key of the session (listed: not ip) */
void
pol_learn(const struct sess *s, enum pol_outcome oc)
{
	static const enum outcome map[] = {
		[POL_DELIVERED] = OC_DELIVERED, [POL_REJECTED] = OC_REJECTED,
		[POL_DEFERRED] = OC_DEFERRED, [POL_ABANDONED] = OC_ABANDONED,
		[POL_PROTOCOL_ERROR] = OC_PROTOCOL_ERROR,
		[POL_SPAM] = OC_SPAM, [POL_HAM] = OC_HAM,
		[POL_LISTED] = OC_LISTED,
	};

	(void)pol_update(s, map[oc], oc == POL_LISTED ? POL_NOT_LISTED : 0);
}

/* pol_listed - 1 when a block list (positive weight) listed the client */
static int
pol_listed(const struct dnsbl_result *r)
{
	int	i;

	for (i = 0; r != NULL && i < r->nhits; i++)
		if (r->hits[i].weight > 0)
			return 1;
	return 0;
}

/* pol_learn_listing - a block list's listing: each non-ip key once */
void
pol_learn_listing(struct sess *s)
{
	if (!s->counted || !pol_listed(s->dnsbl))
		return;
	s->listed_kinds |= pol_update(s, OC_LISTED,
	    s->listed_kinds | POL_NOT_LISTED);
}
