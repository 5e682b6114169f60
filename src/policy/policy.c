/*
 * policy.c - choose a session's shaping class, say why, and learn
 *
 * Exports pol_classify(), pol_reason(), pol_learn(), pol_learn_listing(),
 * and for patience-aware shaping (issue 12) pol_patience(),
 * pol_first_contact() and pol_learn_patience().
 *
 * pol_classify() is the one hook through which a session gets its class.
 * It reads a struct pol_input (the session fills one; a test or a
 * benchmark may fill its own) and writes a struct pol_verdict; the caller
 * applies it.  A client_class_map entry decides outright.  Otherwise the
 * score is the sum of
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
 * reputation would only confirm itself: the caller draws one uniform
 * number per session (explore_draw) and passes the earlier decision back
 * (control), so a session joins or leaves the group once.  A protocol
 * violation moves the session to violation_class.  The session calls
 * pol_classify() again when an asynchronous input (a DNS list answer)
 * arrives, so an answer that comes during the banner delay re-classes the
 * session before the client speaks.
 *
 * Every input that moved the score adds a reason in the form
 * `<input> <what> (bad <p>, n=<evidence>) = <+/-contribution>`.
 *
 * pol_learn() turns one outcome into reputation updates for every key of
 * the input.  Backend errors are never passed here (they are ignored).
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
 * calls again (the caller keeps the kinds taught and passes them back).
 * Like the outcomes, listings are learned in observe mode and in the
 * control group; the session calls only when it holds a slot: a refused
 * connection teaches nothing.  A client that
 * client_class_map decides at connect is not looked up, so it teaches no
 * listing (its outcomes still teach, as pol_learn() does for it).  The
 * session calls this after re-classing, so its own listing counts once in
 * its own score, as the list's weight.
 *
 * pol_learn_patience() teaches each key's patience histograms at the end
 * of a session (doc/internals/reputation.md, "Patience"); pol_patience()
 * reads them back as a quantile of the most specific key with enough
 * evidence, so a class's delay can be "just past the patience of bad
 * senders like this one"; pol_first_contact() says whether the IP, prefix
 * and verified domain have any good history.
 */
#include <arpa/inet.h>
#include <math.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dnsbl/dnsbl.h"
#include "fp/fp.h"
#include "policy/policy.h"
#include "rep/rep.h"

/*
 * Room kept for the decision's own reasons (the score line and the
 * violation line), so that inputs never crowd out why the class is what
 * it is.
 */
#define POL_RESERVE	(2 * POL_REASON_MAX)

/*
 * pol_reason_add - append a reason to the verdict, each cut at
 * POL_REASON_MAX; an input's reason (final = 0) leaves POL_RESERVE bytes
 * free, and once one does not fit no later input reason is added, so the
 * reasons kept are always the first ones, in order
 */
static void __attribute__((format(printf, 3, 4)))
pol_reason_add(struct pol_verdict *v, int final, const char *fmt, ...)
{
	char	r[POL_REASON_MAX];
	size_t	n, room = sizeof(v->reasons) - (final ? 0 : POL_RESERVE);
	va_list	ap;

	if (!final && v->reasons_cut)
		return;
	va_start(ap, fmt);
	vsnprintf(r, sizeof(r), fmt, ap);
	va_end(ap);
	n = strlen(r) + 1;
	if (v->reasons_len + n > room) {
		v->reasons_cut = 1;
		return;
	}
	memcpy(v->reasons + v->reasons_len, r, n);
	v->reasons_len += n;
	v->nreasons++;
}

/* pol_reason - the i-th reason of a verdict, or NULL */
const char *
pol_reason(const struct pol_verdict *v, int i)
{
	const char *r = v->reasons;

	if (i < 0 || i >= v->nreasons)
		return NULL;
	while (i-- > 0)
		r += strlen(r) + 1;
	return r;
}

/* pol_keys - the input's reputation keys; the count */
static int
pol_keys(const struct pol_input *in, struct rep_key keys[REPK_NKINDS])
{
	return rep_keys_for(in->peer, in->fp ? in->fp->key_hash : NULL,
	    in->fp ? in->fp->os : NULL, in->domain, keys);
}

/* pol_key_text - how a key is shown in a reason */
static const char *
pol_key_text(const struct pol_input *in, const struct rep_key *k,
    char *buf, size_t len)
{
	if (k->kind == REPK_RAWSIG && in->fp != NULL)
		snprintf(buf, len, "%.60s", in->fp->key);
	else
		snprintf(buf, len, "%.80s", k->text);
	return buf;
}

/* pol_threshold - the class a score falls into, or NULL */
static const char *
pol_threshold(const struct conf *cf, double score)
{
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

/* pol_static - a client_class_map entry for the client, or NULL */
static const struct class_map *
pol_static(const struct conf *cf, const struct sockaddr *peer)
{
	int	i;

	for (i = 0; peer != NULL && i < cf->nmap; i++)
		if (addr_cidr_match(&cf->map[i].net, peer))
			return &cf->map[i];
	return NULL;
}

/* pol_classify - static map, else the score; then violations */
void
pol_classify(const struct pol_input *in, struct pol_verdict *v)
{
	const struct conf *cf = in->cf;
	const struct class_map *m;
	struct rep_key keys[REPK_NKINDS];
	const char *cls = NULL;
	double	score = 0, most = 0;
	char	kt[100];
	int	i, n;

	memset(v, 0, offsetof(struct pol_verdict, reasons));
	v->reasons[0] = '\0';
	v->control = in->control > 0;
	if ((m = pol_static(cf, in->peer)) != NULL) {
		char	net[INET6_ADDRSTRLEN];

		inet_ntop(m->net.family, m->net.addr, net, sizeof(net));
		pol_reason_add(v, 1, "client_class_map %s/%d = %s", net,
		    m->net.plen, m->class_name);
		v->static_class = 1;
		cls = m->class_name;
		goto decided;
	}
	if (in->dnsbl != NULL) {
		for (i = 0; i < in->dnsbl->nhits; i++) {
			score += in->dnsbl->hits[i].weight;
			pol_reason_add(v, 0, "dnsbl %s = %+g",
			    in->dnsbl->hits[i].zone, in->dnsbl->hits[i].weight);
		}
	}
	n = pol_keys(in, keys);
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
			pol_reason_add(v, 0, "%s %s (bad %.2f, n=%.0f) = %+.1f",
			    rep_keykind_name(keys[i].kind),
			    pol_key_text(in, &keys[i], kt, sizeof(kt)), e.p_spam,
			    e.evidence, c);
	}
	v->score = score;
	cls = pol_threshold(cf, score);
	if (cls == NULL)
		cls = cf->default_class;
	/* Exploration: a control group among little-known senders. */
	if (in->control < 0)
		v->control = most < (double)cf->explore_max_evidence &&
		    cf->explore_share > 0 &&
		    in->explore_draw < cf->explore_share &&
		    conf_class(cf, "normal") != NULL;
	if (v->control) {
		pol_reason_add(v, 1, "score %+.1f; control group -> normal", score);
		cls = "normal";
	} else
		pol_reason_add(v, 1, "score %+.1f -> %s", score, cls);
decided:
	if (in->violations > 0 && *cf->violation_class) {
		pol_reason_add(v, 1, "violation %s -> %s",
		    in->violation ? in->violation : "?", cf->violation_class);
		cls = cf->violation_class;
	}
	snprintf(v->class_name, sizeof(v->class_name), "%s", cls);
}

/* The key kinds a listing never teaches (bits 1 << enum rep_keykind). */
#define POL_NOT_LISTED	(1u << REPK_IP)

/*
 * pol_update - count outcome o once for each key of the input whose kind
 * is not in skip (bits 1 << kind); returns the kinds counted
 */
static unsigned
pol_update(const struct pol_input *in, enum outcome o, unsigned skip)
{
	struct rep_key keys[REPK_NKINDS];
	unsigned done = 0;
	int	i, n = pol_keys(in, keys);

	for (i = 0; i < n; i++) {
		if (skip & (1u << keys[i].kind))
			continue;
		rep_update(&keys[i], o, 1.0);
		done |= 1u << keys[i].kind;
	}
	return done;
}

/* pol_learn - one outcome updates every key of the input (listed: not ip) */
int
pol_learn(const struct pol_input *in, enum outcome oc)
{
	if ((unsigned)oc >= OC_NLEARN)
		return 0;		/* ours (backend error), or no outcome */
	return __builtin_popcount(pol_update(in, oc,
	    oc == OC_LISTED ? POL_NOT_LISTED : 0));
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
unsigned
pol_learn_listing(const struct pol_input *in, unsigned done)
{
	if (!pol_listed(in->dnsbl))
		return done;
	return done | pol_update(in, OC_LISTED, done | POL_NOT_LISTED);
}

/*
 * The keys pol_patience() tries, most specific first: the address itself,
 * then its network with its raw signature, its network, its verified
 * domain, its raw signature (shared by every host of that stack
 * configuration), its OS label.
 */
static const enum rep_keykind pol_pat_order[REPK_NKINDS] = {
	REPK_IP, REPK_PREFIX_RAWSIG, REPK_PREFIX, REPK_DOMAIN, REPK_RAWSIG,
	REPK_OS
};

/* pol_patience - the patience quantile of the most specific known key */
int
pol_patience(const struct pol_input *in, enum rep_patience kind, double q,
    struct pol_patience *out)
{
	struct rep_key keys[REPK_NKINDS];
	const struct rep_key *k;
	struct rep_est e;
	double	sec, n;
	int	i, j, nk;

	if ((unsigned)kind >= REP_PAT_NKINDS)
		return -1;
	nk = pol_keys(in, keys);
	for (i = 0; i < REPK_NKINDS; i++) {
		for (k = NULL, j = 0; j < nk; j++)
			if (keys[j].kind == pol_pat_order[i])
				k = &keys[j];
		if (k == NULL)
			continue;
		(void)rep_lookup_patience(k, &e);
		if (!(e.patience_n[kind] >= (double)in->cf->patience_min_evidence))
			continue;
		if ((sec = rep_patience_quantile(&e, kind, q, &n)) < 0)
			continue;
		memset(out, 0, sizeof(*out));
		out->seconds = sec;
		out->n = n;
		out->q = q;
		out->kind = kind;
		out->key_kind = k->kind;
		pol_key_text(in, k, out->key, sizeof(out->key));
		snprintf(out->reason, sizeof(out->reason), "patience %s %s "
		    "p%.3g %.1fs (n=%.0f)", rep_keykind_name(k->kind), out->key,
		    q * 100, sec, n);
		return 0;
	}
	return -1;
}

/* pol_first_contact - 1 when ip, prefix and domain have no good history */
int
pol_first_contact(const struct pol_input *in)
{
	struct rep_key keys[REPK_NKINDS];
	struct rep_est e;
	double	good;
	int	i, j, n;

	if (pol_static(in->cf, in->peer) != NULL)
		return 0;	/* its class's delays, exactly */
	n = pol_keys(in, keys);
	for (i = 0; i < n; i++) {
		if (keys[i].kind != REPK_IP && keys[i].kind != REPK_PREFIX &&
		    keys[i].kind != REPK_DOMAIN)
			continue;
		(void)rep_lookup(&keys[i], &e);
		for (good = 0, j = 0; j < OC_NLEARN; j++)
			if (outcome_flags((enum outcome)j) & OC_F_GOOD)
				good += e.counts[j];
		if (good > 0 && good >= in->cf->first_contact_min_good)
			return 0;
	}
	return 1;
}

/* pol_learn_patience - a session's give-up time and, if bad, its time */
int
pol_learn_patience(const struct pol_input *in, double gave_up_s,
    double duration_s, int bad)
{
	struct rep_key keys[REPK_NKINDS];
	double	bad_s;
	int	i, n, taught = 0;

	if (!(gave_up_s >= 0))
		gave_up_s = -1;
	bad = bad || pol_listed(in->dnsbl);
	bad_s = gave_up_s >= 0 ? gave_up_s : duration_s;
	if (gave_up_s < 0 && (!bad || !(bad_s >= 0)))
		return 0;
	n = pol_keys(in, keys);
	for (i = 0; i < n; i++) {
		if (gave_up_s >= 0) {
			rep_update_patience(&keys[i], REP_PAT_GAVEUP,
			    gave_up_s);
			taught++;
		}
		if (bad && bad_s >= 0) {
			rep_update_patience(&keys[i], REP_PAT_BAD, bad_s);
			taught++;
		}
	}
	return taught;
}
