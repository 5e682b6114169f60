/*
 * evaluate.c - `mailshaper evaluate`: which reputation keys predict spam
 *
 *   mailshaper evaluate EVENTLOG [--features os,rawsig,ip,prefix,dnsbl,all]
 *                       [--json] [--train-fraction F]
 *
 * Exports eval_main() and, for tests, eval_run(), eval_metrics(),
 * eval_parse_features(), eval_time_ms(), eval_rawsig_key() and
 * eval_prefix().
 *
 * Labels: a message is bad when its outcome is rejected, abandoned or
 * protocol_error, good when delivered; deferred and backend_error messages
 * are skipped.  A feedback record overrides all of that: "spam" makes a
 * message bad and "ham" good, whatever its outcome.  Feedback naming a
 * message beats feedback naming only its session; a later record beats an
 * earlier one.
 *
 * Method: three streaming passes over the file, never sorting it.
 *  1. Validate every line (garbage lines are warned about as file:line:
 *     reason and counted), collect the feedback verdicts, and build an
 *     adaptive histogram of message times; the split time is the bucket
 *     boundary nearest the train fraction of messages.
 *  2. Join each message before the split with its session record (which
 *     comes later, at session end) and count, per feature value, the bad
 *     and good messages.
 *  3. Join each message at or after the split the same way and score it:
 *     per feature value the posterior log-odds of spam under a Beta(1,1)
 *     prior, log((bad + 1) / (good + 1)), summed over the features of the
 *     set (naive Bayes; with a fixed number of features per set the class
 *     prior only shifts every score by a constant, which leaves rankings,
 *     hence every figure, unchanged).  An unseen value adds 0.
 * A message waits in its session's entry until the session record arrives;
 * the entry is then scored and freed.  A session whose record never comes
 * is flushed with the message's own fields once the log's clock is
 * session_max_age_ms past its first message, or when more than max_pending
 * messages wait.  Test scores are kept as a map of distinct score to
 * bad/good counts.  So memory is bounded by distinct feature values,
 * distinct scores, feedback records and open sessions, never by the log's
 * length.
 *
 * Memory: everything is allocated and released inside eval_run().  It is
 * an error to call eval_run() on a file that is not a regular file: it is
 * read three times (and only up to its length at the first pass, so a log
 * being appended to is read consistently).
 */
#include <sys/stat.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf/conf.h"
#include "log/evread.h"
#include "rep/repkind.h"
#include "report/evaluate.h"
#include "report/join.h"
#include "util/jsonl.h"
#include "util/log.h"
#include "util/strmap.h"

#define EV_HIST		4096			/* time histogram buckets */
#define EV_MAX_AGE_MS	(3600LL * 1000)		/* default session flush age */
#define EV_MAX_PENDING	(1u << 20)		/* default waiting messages */
#define EV_VAL		1024			/* longest feature value kept */

static const char *const ev_feat_names[EVAL_NFEAT] = {
	"os", "rawsig", "ip", "prefix", "dnsbl"
};

/*
 * Messages waiting for their session record: a list in the session's join
 * slot.
 */
struct ev_pmsg {
	struct ev_pmsg *next;
	int	bad;		/* 1 bad, 0 good */
	const char *ip, *raw, *os;	/* into buf; NULL when absent */
	char	buf[];
};

struct ev_slot {
	struct ev_pmsg *head, **tail;
};

/* What a session record adds to its messages. */
struct ev_sinfo {
	const char *key;	/* fp.key, or NULL */
	const char *os;		/* fp.os, or NULL */
	const char *ip;		/* client_ip, or NULL */
	const char *dnsbl;	/* "?" unknown, "" not listed, "z1,z2" */
};

struct ev_set {
	unsigned mask;
	struct strmap scores;	/* double bits -> (bad, good) */
	uint64_t bad, good;
};

enum ev_pass { EV_SCAN = 1, EV_TRAIN, EV_TEST };

struct ev {
	const struct eval_opts *o;
	enum ev_pass pass;
	unsigned used;			/* union of the sets' masks */
	struct strmap fb;		/* "m\0id" / "s\0id" -> a: 1 spam 2 ham */
	struct strmap counts;		/* feature byte + value -> bad, good */
	struct ev_set sets[EVAL_MAX_SETS];
	struct eval_stats *st;
	int	oom;
	/* the time histogram */
	uint64_t hist[EV_HIST];
	int64_t	h_t0, h_w;		/* base and bucket width, ms */
	uint64_t h_n;
};

/* eval_opts_init - defaults: every feature alone, then all together */
void
eval_opts_init(struct eval_opts *o)
{
	char err[64];

	memset(o, 0, sizeof(*o));
	o->train_fraction = 0.5;
	o->max_warnings = 20;
	o->max_line = JL_MAX_LINE;
	o->session_max_age_ms = EV_MAX_AGE_MS;
	o->max_pending = EV_MAX_PENDING;
	o->prefix_v4 = 24;		/* rep_prefix_v4's default */
	o->prefix_v6 = 64;		/* rep_prefix_v6's default */
	(void)eval_parse_features("os,rawsig,ip,prefix,dnsbl,all", o, err,
	    sizeof(err));
}

/* eval_parse_features - "os,rawsig+ip,all": each item is one set */
int
eval_parse_features(const char *list, struct eval_opts *o, char *err,
    size_t errlen)
{
	const char *p = list, *end, *q, *qe;
	unsigned mask;
	size_t n;
	int i, found;

	o->nsets = 0;
	if (list == NULL || *list == '\0') {
		snprintf(err, errlen, "empty feature list");
		return -1;
	}
	for (;;) {
		end = p + strcspn(p, ",");
		if (end == p) {
			snprintf(err, errlen, "empty item in feature list '%s'",
			    list);
			return -1;
		}
		if (o->nsets == EVAL_MAX_SETS) {
			snprintf(err, errlen, "more than %d feature sets",
			    EVAL_MAX_SETS);
			return -1;
		}
		/* An item may join features with '+', e.g. rawsig+prefix. */
		mask = 0;
		for (q = p;; q = qe + 1) {
			qe = q + strcspn(q, "+,");
			if (qe > end)
				qe = end;
			n = (size_t)(qe - q);
			found = 0;
			if (n == 3 && strncmp(q, "all", 3) == 0) {
				mask |= EVAL_F_ALL;
				found = 1;
			}
			for (i = 0; i < EVAL_NFEAT && !found; i++)
				if (strlen(ev_feat_names[i]) == n &&
				    strncmp(q, ev_feat_names[i], n) == 0) {
					mask |= 1u << i;
					found = 1;
				}
			if (!found) {
				snprintf(err, errlen, "unknown feature '%.*s' "
				    "(os, rawsig, ip, prefix, dnsbl, all)",
				    (int)(n > 40 ? 40 : n), q);
				return -1;
			}
			if (qe >= end)
				break;
		}
		if ((size_t)(end - p) >= EVAL_SETNAME) {
			snprintf(err, errlen, "feature set name too long");
			return -1;
		}
		o->sets[o->nsets] = mask;
		memcpy(o->names[o->nsets], p, (size_t)(end - p));
		o->names[o->nsets][end - p] = '\0';
		o->nsets++;
		if (*end == '\0')
			return 0;
		p = end + 1;
	}
}

/* eval_rawsig_key - "4:57+7:..." to its key "4:64:..."; 0 or -1 */
int
eval_rawsig_key(const char *raw, char *key, size_t len)
{
	const char *c1 = strchr(raw, ':'), *c2, *plus;
	char *endp;
	unsigned long ttl, dist;
	int n;

	if (c1 == NULL || (c2 = strchr(c1 + 1, ':')) == NULL)
		goto copy;
	plus = memchr(c1 + 1, '+', (size_t)(c2 - c1 - 1));
	if (plus == NULL)
		goto copy;
	errno = 0;
	ttl = strtoul(c1 + 1, &endp, 10);
	if (endp != plus || c1[1] < '0' || c1[1] > '9')
		goto copy;
	dist = strtoul(plus + 1, &endp, 10);
	if (endp != c2 || plus[1] < '0' || plus[1] > '9' || errno ||
	    ttl > 255 || dist > 255)
		goto copy;
	n = snprintf(key, len, "%.*s%lu%s", (int)(c1 - raw + 1), raw,
	    ttl + dist, c2);
	return n >= 0 && (size_t)n < len ? 0 : -1;
copy:
	/* Not "ttl+dist": it is already a key (or opaque); use it as it is. */
	n = snprintf(key, len, "%s", raw);
	return n >= 0 && (size_t)n < len ? 0 : -1;
}

/*
 * eval_prefix - the reputation prefix key of an address ("192.0.2.0/24"
 * with v4 = 24), derived as the daemon derives it (rep_keys_derive());
 * 0, or -1 when ip is not an address or out is too small
 */
int
eval_prefix(const char *ip, int v4, int v6, char *out, size_t len)
{
	struct sockaddr_storage ss;
	struct rep_key keys[REPK_NKINDS];
	struct rep_keyin in;
	int	i, n;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip,
	    &((struct sockaddr_in *)&ss)->sin_addr) == 1)
		ss.ss_family = AF_INET;
	else if (inet_pton(AF_INET6, ip,
	    &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
		ss.ss_family = AF_INET6;
	else
		return -1;
	memset(&in, 0, sizeof(in));
	in.client = (struct sockaddr *)&ss;
	n = rep_keys_derive(&in, v4, v6, keys);
	for (i = 0; i < n; i++)
		if (keys[i].kind == REPK_PREFIX) {
			n = snprintf(out, len, "%s", keys[i].text);
			return n >= 0 && (size_t)n < len ? 0 : -1;
		}
	return -1;
}

/*
 * The time histogram: EV_HIST buckets of h_w ms from h_t0, doubled in
 * width (towards the past or the future) whenever a time falls outside.
 */

/* hist_add - count one message at time t */
static void
hist_add(struct ev *e, int64_t t)
{
	int i;

	if (e->h_n == 0) {
		e->h_t0 = t;
		e->h_w = 1;
	}
	while (t < e->h_t0) {
		for (i = 0; i < EV_HIST / 2; i++)
			e->hist[EV_HIST - 1 - i] = e->hist[EV_HIST - 1 - 2 * i] +
			    e->hist[EV_HIST - 2 - 2 * i];
		memset(e->hist, 0, sizeof(e->hist[0]) * (EV_HIST / 2));
		e->h_t0 -= (int64_t)EV_HIST * e->h_w;
		e->h_w *= 2;
	}
	while (t - e->h_t0 >= (int64_t)EV_HIST * e->h_w) {
		for (i = 0; i < EV_HIST / 2; i++)
			e->hist[i] = e->hist[2 * i] + e->hist[2 * i + 1];
		memset(e->hist + EV_HIST / 2, 0,
		    sizeof(e->hist[0]) * (EV_HIST / 2));
		e->h_w *= 2;
	}
	e->hist[(t - e->h_t0) / e->h_w]++;
	e->h_n++;
}

/* hist_split - the bucket boundary nearest the train fraction */
static int64_t
hist_split(const struct ev *e, double fraction)
{
	double target = fraction * (double)e->h_n, best = -1, d;
	uint64_t cum = 0;
	int k, bk = 0;

	if (e->h_n == 0)
		return 0;
	for (k = 0; k <= EV_HIST; k++) {
		d = fabs((double)cum - target);
		if (best < 0 || d < best) {
			best = d;
			bk = k;
		}
		if (k < EV_HIST)
			cum += e->hist[k];
	}
	return e->h_t0 + (int64_t)bk * e->h_w;
}

/*
 * Feature values, training and scoring.
 */

/* feat_values - the five feature values of a message */
static void
feat_values(const struct eval_opts *o, const struct ev_pmsg *m,
    const struct ev_sinfo *si, char v[EVAL_NFEAT][EV_VAL])
{
	const char *s, *ip;

	s = si && si->os ? si->os : m->os;
	snprintf(v[0], EV_VAL, "%s", s ? s : "");
	v[1][0] = '\0';
	if (si && si->key)
		snprintf(v[1], EV_VAL, "%s", si->key);
	else if (m->raw && eval_rawsig_key(m->raw, v[1], EV_VAL) < 0)
		v[1][0] = '\0';
	ip = m->ip ? m->ip : si ? si->ip : NULL;
	snprintf(v[2], EV_VAL, "%s", ip ? ip : "");
	if (ip == NULL || eval_prefix(ip, o->prefix_v4, o->prefix_v6, v[3],
	    EV_VAL) < 0)
		v[3][0] = '\0';
	snprintf(v[4], EV_VAL, "%s", si ? si->dnsbl : "?");
}

/* feat_key - feature byte, then the value */
static size_t
feat_key(int f, const char *val, char *k)
{
	size_t n = strlen(val);

	k[0] = (char)('0' + f);
	memcpy(k + 1, val, n);
	return n + 1;
}

/* ev_use - train on or score one joined message */
static void
ev_use(struct ev *e, const struct ev_pmsg *m, const struct ev_sinfo *si)
{
	char v[EVAL_NFEAT][EV_VAL], k[EV_VAL + 1];
	double lo[EVAL_NFEAT], score;
	struct strmap_ent *ent;
	size_t kl;
	int f, i;

	feat_values(e->o, m, si, v);
	if (e->pass == EV_TRAIN) {
		for (f = 0; f < EVAL_NFEAT; f++) {
			if (!(e->used & (1u << f)))
				continue;
			kl = feat_key(f, v[f], k);
			if (strmap_insert(&e->counts, k, kl, &ent) < 0) {
				e->oom = 1;
				return;
			}
			if (m->bad)
				ent->a++;
			else
				ent->b++;
		}
		e->st->train++;
		return;
	}
	for (f = 0; f < EVAL_NFEAT; f++) {
		lo[f] = 0;
		if (!(e->used & (1u << f)))
			continue;
		kl = feat_key(f, v[f], k);
		if ((ent = strmap_find(&e->counts, k, kl)) != NULL)
			lo[f] = log(((double)ent->a + 1) / ((double)ent->b + 1));
	}
	for (i = 0; i < e->o->nsets; i++) {
		struct ev_set *set = &e->sets[i];

		score = 0;
		for (f = 0; f < EVAL_NFEAT; f++)
			if (set->mask & (1u << f))
				score += lo[f];
		if (score == 0)
			score = 0;	/* one zero: -0.0 and 0.0 are equal */
		if (strmap_insert(&set->scores, &score, sizeof(score),
		    &ent) < 0) {
			e->oom = 1;
			return;
		}
		if (m->bad) {
			ent->a++;
			set->bad++;
		} else {
			ent->b++;
			set->good++;
		}
	}
	e->st->test++;
}

/* slot_use - use and free a session's waiting messages (si NULL: orphans) */
static void
slot_use(struct ev *e, struct ev_slot *sl, const struct ev_sinfo *si)
{
	struct ev_pmsg *m, *next;

	for (m = sl->head; m != NULL; m = next) {
		next = m->next;
		if (!e->oom)
			ev_use(e, m, si);
		if (si == NULL)
			e->st->unjoined++;
		free(m);
	}
	sl->head = NULL;
}

/* pmsg_new - one block holding a message and copies of its three strings */
static struct ev_pmsg *
pmsg_new(const char *ip, const char *raw, const char *os)
{
	size_t li = ip ? strlen(ip) + 1 : 0, lr = raw ? strlen(raw) + 1 : 0,
	    lo = os ? strlen(os) + 1 : 0;
	struct ev_pmsg *m = malloc(sizeof(*m) + li + lr + lo);
	char *p;

	if (m == NULL)
		return NULL;
	m->next = NULL;
	p = m->buf;
	m->ip = ip ? memcpy(p, ip, li) : NULL;
	p += li;
	m->raw = raw ? memcpy(p, raw, lr) : NULL;
	p += lr;
	m->os = os ? memcpy(p, os, lo) : NULL;
	return m;
}

/* verdict - feedback for a message or its session: 1 spam, 2 ham, 0 */
static int
verdict(struct ev *e, char kind, const char *id)
{
	char k[512];
	size_t n = strlen(id);
	struct strmap_ent *ent;

	if (n + 2 > sizeof(k))
		return 0;
	k[0] = kind;
	k[1] = '\0';
	memcpy(k + 2, id, n);
	ent = strmap_find(&e->fb, k, n + 2);
	return ent ? (int)ent->a : 0;
}

/* on_message - a message record: counted, or held for its session */
static int
on_message(void *arg, struct join *j, const struct evr_rmessage *r,
    unsigned long lineno)
{
	struct ev *e = arg;
	struct ev_slot *sl;
	struct ev_pmsg *m;
	unsigned fl = outcome_flags(r->outcome);
	int	bad, v, isnew;

	(void)lineno;
	if (!(fl & OC_F_MSG))
		bad = -1;		/* an unknown outcome */
	else
		bad = fl & OC_F_GOOD ? 0 : fl & OC_F_BAD ? 1 : -1;
	if (e->pass == EV_SCAN) {
		e->st->messages++;
		hist_add(e, r->time_ms);
		return 0;
	}
	if ((v = verdict(e, 'm', r->id)) == 0)
		v = verdict(e, 's', r->session);
	if (v)
		bad = v == 1;
	if (bad < 0) {			/* deferred, backend_error, unknown */
		if (e->pass == EV_TRAIN)
			e->st->unlabelled++;
		return 0;
	}
	if ((e->pass == EV_TRAIN) != (r->time_ms < e->st->split_ms))
		return 0;
	if ((sl = join_hold(j, r, 0, &isnew)) == NULL)
		return -1;
	if (isnew)
		sl->tail = &sl->head;
	if ((m = pmsg_new(r->client_ip, r->raw_sig, r->os)) == NULL)
		return -1;
	m->bad = bad;
	*sl->tail = m;
	sl->tail = &m->next;
	return 0;
}

/* on_session - a session record: join it with its waiting messages */
static int
on_session(void *arg, const struct evr_rsession *r, void *slot,
    unsigned long lineno)
{
	struct ev *e = arg;
	struct ev_sinfo si;

	(void)lineno;
	if (e->pass == EV_SCAN) {
		e->st->sessions++;
		return 0;
	}
	if (slot == NULL)
		return 0;
	si.key = r->fp_key;
	si.os = r->fp_os;
	si.ip = r->client_ip;
	si.dnsbl = r->dnsbl_asked ? r->dnsbl_zones : "?";
	slot_use(e, slot, &si);
	return e->oom ? -1 : 0;
}

/* on_orphan - messages whose session record did not come */
static int
on_orphan(void *arg, void *slot, int64_t first_ms)
{
	struct ev *e = arg;

	(void)first_ms;
	slot_use(e, slot, NULL);
	return e->oom ? -1 : 0;
}

/* on_discard - free what a session holds, unused */
static void
on_discard(void *arg, void *slot)
{
	struct ev_slot *sl = slot;
	struct ev_pmsg *m, *next;

	(void)arg;
	for (m = sl->head; m != NULL; m = next) {
		next = m->next;
		free(m);
	}
	sl->head = NULL;
}

/* on_feedback - a feedback record: remember its verdict (first pass) */
static int
on_feedback(void *arg, struct join *j, const struct evr_rfeedback *r,
    unsigned long lineno)
{
	struct ev *e = arg;
	struct strmap_ent *ent;
	const char *id;
	char	k[512];
	size_t	n;

	if (e->pass != EV_SCAN)
		return 0;
	id = r->message ? r->message : r->session;
	if ((n = strlen(id)) + 2 > sizeof(k)) {
		join_warn(j, lineno, "feedback record with an over-long id");
		return 0;
	}
	k[0] = r->message ? 'm' : 's';
	k[1] = '\0';
	memcpy(k + 2, id, n);
	if (strmap_insert(&e->fb, k, n + 2, &ent) < 0)
		return -1;
	ent->a = r->verdict == OC_SPAM ? 1 : 2;
	e->st->feedback++;
	return 0;
}

static const struct join_ops ev_join_ops = {
	.message = on_message,
	.session = on_session,
	.orphan = on_orphan,
	.feedback = on_feedback,
	.discard = on_discard,
};

/* ev_pass - one pass over the file (up to limit bytes; 0 = all) */
static int
ev_pass(struct ev *e, const char *path, struct jl_reader *rd,
    enum ev_pass pass, uint64_t limit, char *err, size_t errlen)
{
	const struct join_stats *js;
	struct join_opts jo;
	struct join *j;
	int	rc;

	memset(&jo, 0, sizeof(jo));
	jo.name = path;
	jo.flags = EVR_R_SESSION | EVR_R_MESSAGE | EVR_R_FEEDBACK |
	    EVR_R_MSG_ID;
	if (pass != EV_SCAN && (e->used & EVAL_F_DNSBL))
		jo.flags |= EVR_R_ZONES;	/* only the dnsbl feature */
	jo.quiet = pass != EV_SCAN;	/* the first pass warns for all */
	jo.max_warnings = e->o->max_warnings;
	jo.max_age_ms = e->o->session_max_age_ms;
	jo.max_open = SIZE_MAX;
	jo.max_held = e->o->max_pending;
	jo.slot_size = sizeof(struct ev_slot);
	e->pass = pass;
	jl_reader_rewind(rd, limit);
	if ((j = join_new(&jo, &ev_join_ops, e)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	rc = join_run(j, rd, err, errlen);
	js = join_stats(j);
	if (pass == EV_SCAN) {
		e->st->lines = js->lines;
		e->st->garbage = js->garbage;
	} else if (js->peak_held > e->st->peak_pending)
		e->st->peak_pending = js->peak_held;
	join_free(j);
	return rc;
}

/* point_cmp - highest score first */
static int
point_cmp(const void *a, const void *b)
{
	double x = ((const struct eval_point *)a)->score,
	    y = ((const struct eval_point *)b)->score;

	return x < y ? 1 : x > y ? -1 : 0;
}

/* eval_metrics - figures from distinct scores (sorted here, in place) */
void
eval_metrics(struct eval_point *p, size_t n, struct eval_result *r)
{
	uint64_t bad = 0, good = 0, cb = 0, cg = 0, b0 = 0, b1 = 0, g1 = 0,
	    allowed;
	size_t i;
	int zero_done = 0;

	for (i = 0; i < n; i++) {
		bad += p[i].bad;
		good += p[i].good;
	}
	qsort(p, n, sizeof(*p), point_cmp);
	/* At most 0.1% of good messages may be flagged. */
	allowed = good / 1000;
	r->threshold_01fp = INFINITY;
	for (i = 0; i < n; i++) {
		if (p[i].good > 0 && !zero_done) {
			b0 = cb;
			zero_done = 1;
		}
		if (cg + p[i].good > allowed)
			break;
		cb += p[i].bad;
		cg += p[i].good;
		b1 = cb;
		g1 = cg;
		r->threshold_01fp = p[i].score;
	}
	if (!zero_done) {
		/* No good message above the 0.1% point: find the first. */
		for (; i < n && p[i].good == 0; i++)
			cb += p[i].bad;
		b0 = cb;
	}
	r->bad = bad;
	r->good = good;
	r->messages = bad + good;
	r->recall_0fp = bad ? (double)b0 / (double)bad : -1;
	r->recall_01fp = bad ? (double)b1 / (double)bad : -1;
	r->precision = b1 + g1 ? (double)b1 / (double)(b1 + g1) : -1;
}

/* set_result - collect a set's score map into figures */
static int
set_result(struct ev_set *s, struct eval_result *r)
{
	struct eval_point *p;
	struct strmap_ent *ent;
	size_t n = 0;

	p = malloc((s->scores.n ? s->scores.n : 1) * sizeof(*p));
	if (p == NULL)
		return -1;
	for (ent = strmap_next(&s->scores, NULL); ent != NULL;
	    ent = strmap_next(&s->scores, ent)) {
		memcpy(&p[n].score, ent->key, sizeof(double));
		p[n].bad = ent->a;
		p[n].good = ent->b;
		n++;
	}
	eval_metrics(p, n, r);
	free(p);
	return 0;
}

/* eval_run - evaluate every feature set of o on the log at path */
int
eval_run(const char *path, const struct eval_opts *o,
    struct eval_result *res, struct eval_stats *st, char *err, size_t errlen)
{
	struct jl_reader rd;
	struct stat sb;
	uint64_t limit;
	struct ev *e;
	FILE *f;
	int i, rc = -1;

	memset(st, 0, sizeof(*st));
	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "cannot open %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &sb) < 0 || !S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file (it is read "
		    "three times)", path);
		fclose(f);
		return -1;
	}
	if ((e = calloc(1, sizeof(*e))) == NULL) {
		snprintf(err, errlen, "out of memory");
		fclose(f);
		return -1;
	}
	e->o = o;
	e->st = st;
	for (i = 0; i < o->nsets; i++) {
		e->sets[i].mask = o->sets[i];
		e->used |= o->sets[i];
	}
	jl_reader_init(&rd, f, o->max_line);
	if (ev_pass(e, path, &rd, EV_SCAN, 0, err, errlen) < 0)
		goto out;
	if (o->train_fraction <= 0)
		st->split_ms = INT64_MIN;
	else if (o->train_fraction >= 1)
		st->split_ms = INT64_MAX;
	else
		st->split_ms = hist_split(e, o->train_fraction);
	/* Later passes stop where the first did: the log may be growing. */
	limit = rd.consumed ? rd.consumed : 1;
	if (ev_pass(e, path, &rd, EV_TRAIN, limit, err, errlen) < 0 ||
	    ev_pass(e, path, &rd, EV_TEST, limit, err, errlen) < 0)
		goto out;
	st->keys = e->counts.n;
	for (i = 0; i < o->nsets; i++) {
		snprintf(res[i].features, sizeof(res[i].features), "%s",
		    o->names[i]);
		if (set_result(&e->sets[i], &res[i]) < 0) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
	}
	rc = 0;
out:
	strmap_free(&e->fb, NULL);
	strmap_free(&e->counts, NULL);
	for (i = 0; i < o->nsets; i++)
		strmap_free(&e->sets[i].scores, NULL);
	free(e);
	jl_reader_free(&rd);
	fclose(f);
	return rc;
}

/*
 * The command.
 */

/* usage - print the synopsis */
static void
usage(FILE *f)
{
	fprintf(f, "usage: mailshaper evaluate EVENTLOG "
	    "[--features os,rawsig,ip,prefix,dnsbl,all] [--json] "
	    "[--train-fraction F] [-c mailshaper.conf]\n");
}

/* json_rate - a rate, or null when undefined */
static void
json_rate(const char *key, double v)
{
	if (v < 0)
		printf(",\"%s\":null", key);
	else
		printf(",\"%s\":%.6f", key, v);
}

/* text_rate - a percentage, or "-" when undefined */
static void
text_rate(double v)
{
	if (v < 0)
		printf("  %10s", "-");
	else
		printf("  %9.2f%%", v * 100);
}

/* print_results - the table, or one JSON object per feature set */
static void
print_results(const struct eval_result *r, int n, const struct eval_stats *st,
    int json)
{
	char when[40];
	time_t secs;
	struct tm tm;
	int i;

	if (json) {
		for (i = 0; i < n; i++) {
			printf("{\"features\":\"%s\"", r[i].features);
			json_rate("recall_at_0fp", r[i].recall_0fp);
			json_rate("recall_at_0_1fp", r[i].recall_01fp);
			json_rate("precision", r[i].precision);
			printf(",\"messages\":%llu,\"bad\":%llu,\"good\":%llu,"
			    "\"train_messages\":%llu}\n",
			    (unsigned long long)r[i].messages,
			    (unsigned long long)r[i].bad,
			    (unsigned long long)r[i].good,
			    (unsigned long long)st->train);
		}
		return;
	}
	if (st->split_ms == INT64_MIN || st->split_ms == INT64_MAX)
		snprintf(when, sizeof(when), "%s",
		    st->split_ms == INT64_MIN ? "the start" : "the end");
	else {
		secs = (time_t)(st->split_ms / 1000);
		gmtime_r(&secs, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	printf("trained on %llu messages before %s, tested on %llu "
	    "(%llu without a session record)\n\n",
	    (unsigned long long)st->train, when, (unsigned long long)st->test,
	    (unsigned long long)st->unjoined);
	printf("%-24s  %11s  %11s  %11s  %9s  %9s  %9s\n", "features",
	    "recall@0FP", "recall@.1FP", "precision", "messages", "bad",
	    "good");
	for (i = 0; i < n; i++) {
		printf("%-24s", r[i].features);
		printf(" ");
		text_rate(r[i].recall_0fp);
		text_rate(r[i].recall_01fp);
		text_rate(r[i].precision);
		printf("  %9llu  %9llu  %9llu\n",
		    (unsigned long long)r[i].messages,
		    (unsigned long long)r[i].bad,
		    (unsigned long long)r[i].good);
	}
}

/* eval_main - `mailshaper evaluate ...`; exit status */
int
eval_main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{"features", required_argument, NULL, 'F'},
		{"json", no_argument, NULL, 'j'},
		{"train-fraction", required_argument, NULL, 't'},
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	struct eval_result res[EVAL_MAX_SETS];
	struct eval_stats st;
	struct eval_opts o;
	struct conf *cf;
	const char *config = NULL;
	char err[512], *end;
	int c, json = 0;

	eval_opts_init(&o);
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:h", lopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'F':
			if (eval_parse_features(optarg, &o, err,
			    sizeof(err)) < 0) {
				log_warnx("evaluate: %s", err);
				return 2;
			}
			break;
		case 'j':
			json = 1;
			break;
		case 't':
			errno = 0;
			o.train_fraction = strtod(optarg, &end);
			if (errno || end == optarg || *end != '\0' ||
			    !(o.train_fraction >= 0 &&
			    o.train_fraction <= 1)) {
				log_warnx("evaluate: --train-fraction wants a "
				    "number from 0 to 1, not '%s'", optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 1) {
		usage(stderr);
		return 2;
	}
	/* The prefix lengths the daemon uses: the configuration's. */
	if ((cf = conf_load(config, NULL, 0, err, sizeof(err))) == NULL) {
		log_warnx("evaluate: %s", err);
		return 2;
	}
	o.prefix_v4 = (int)cf->rep_prefix_v4;
	o.prefix_v6 = (int)cf->rep_prefix_v6;
	conf_free(cf);
	memset(res, 0, sizeof(res));
	if (eval_run(argv[optind], &o, res, &st, err, sizeof(err)) < 0) {
		log_warnx("evaluate: %s", err);
		return 1;
	}
	if (st.garbage > 0)
		log_warnx("evaluate: %s: %lu of %lu lines skipped as unusable",
		    argv[optind], st.garbage, st.lines);
	print_results(res, o.nsets, &st, json);
	fflush(stdout);
	return 0;
}
