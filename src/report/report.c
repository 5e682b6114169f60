/*
 * report.c - `mailshaper report`: delivery success by OS, raw signature,
 * class, DNSBL listing or hour, as tables and SVG charts
 *
 *   mailshaper report EVENTLOG [--since T] [--by os|rawsig|class|dnsbl|hour]
 *                     [--format text|json|csv|html] [--out DIR]
 *   mailshaper report --store URL [--half-life T] [--by os|rawsig] ...
 *
 * With --store the tables come from the reputation store (report_store.c);
 * the writers below then print its decayed counts and show the figures a
 * store does not keep as unknown (rp_report.store).
 *
 * Exports report_main() and, for tests, rp_run(), rp_report_free(),
 * rp_parse_by(), rp_parse_since(), rp_attempts(), rp_success_rate(),
 * rp_store_attempts() and
 * the writers rp_write_text/json/csv/html() and rp_write_charts().
 *
 * Definitions (per group; doc/internals/report.md says why):
 *  - A session belongs to one group, from its session record: os is fp.os
 *    ("(no SYN)" when fp is null, "(unknown)" when os is null); rawsig is
 *    fp.key, the distance-free form of fp.raw_sig; class is the session's
 *    class; dnsbl is the sorted zones that listed the client, "(not
 *    listed)" or "(not asked)"; hour is the UTC hour of its start.  Its
 *    message records count in the same group.
 *  - Messages whose session record never comes (an orphan session) use
 *    the message records' own client_ip, os, raw_sig and class; dnsbl is
 *    then "(unknown)", hour the first message's.
 *  - attempts = delivered + rejected + deferred + abandoned +
 *    protocol_error messages + gave_up, where gave_up counts sessions
 *    whose outcome is "abandoned" and that have no message at all (the
 *    client gave up before MAIL).  backend_error messages are never
 *    counted against the sender: they are not attempts.
 *    success rate = delivered / attempts (undefined when attempts = 0).
 *  - senders = distinct client_ip; a sender is successful when it
 *    delivered at least one message in the group, unsuccessful when it
 *    made attempts in the group and delivered none (so an address that
 *    only connected and gave up is an unsuccessful sender).  Senders with
 *    no attempts (QUIT without MAIL, refused) are in neither.
 *  - The wait of an abandoned session (session outcome "abandoned") is its
 *    gave_up_after_s, kept as a count, sum, maximum and log-scale
 *    histogram per group.
 *  - --since keeps the sessions that started at or after T (orphans: whose
 *    first message is at or after T).
 *
 * Method: one streaming pass through the join (join.c).  Message records
 * come before their session record (written at session end), so a
 * session's message outcomes wait in its join slot (a few counters and
 * four short strings) until the record arrives.  A session whose record
 * never comes is counted as an orphan once the log's clock is
 * session_max_age_ms past its first message, when more than max_open
 * sessions wait, or at the end.  Memory is bounded by the distinct
 * (group, address) pairs, the groups and the open sessions, never by the
 * log's length.
 *
 * Output: the four formats (JSON, CSV, text, HTML) write the columns of
 * one table, rp_cols[]: a column is one row there, with its names, where
 * its value comes from (event log or store) and in which formats it shows.
 *
 * Memory: rp_run() fills an rp_report whose tables it owns; the caller
 * frees it with rp_report_free().  It is an error to use a report after
 * freeing it, or to call a writer on a report rp_run() did not fill.
 */
#include <sys/stat.h>

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log/evread.h"
#include "log/evrec.h"
#include "report/evaluate.h"
#include "report/join.h"
#include "report/report.h"
#include "report/svg.h"
#include "util/jsonl.h"
#include "util/log.h"
#include "util/strmap.h"

#define RP_MAX_AGE_MS	(3600LL * 1000)	/* default orphan age */
#define RP_MAX_OPEN	(1u << 20)	/* default open sessions */
#define RP_VAL		1024		/* longest group label kept */
#define RP_SHARE_TOP	9		/* slices before "(other)" */
#define RP_WAIT_ROWS	8		/* OSes in the patience chart */

const char *const rp_by_names[RP_NBY] = {
	"os", "rawsig", "class", "dnsbl", "hour"
};

/* Upper bounds of the wait buckets, seconds; the last is open. */
static const double rp_wait_edges[RP_NWAIT - 1] = {
	1, 2, 5, 10, 20, 30, 60, 120, 300, 600
};
const char *const rp_wait_buckets[RP_NWAIT] = {
	"<1s", "1-2s", "2-5s", "5-10s", "10-20s", "20-30s", "30-60s",
	"1-2m", "2-5m", "5-10m", ">=10m"
};

/* Message outcomes are indices of rp_slot.oc[] (enum outcome); OC_NONE
 * collects names that are not message outcomes. */
#define RP_NOC	OC_N

/*
 * A session waiting for its record (its join slot): its message outcomes,
 * and its first message's four strings in case the record never comes.
 */
struct rp_slot {
	uint64_t oc[RP_NOC];		/* messages by outcome */
	const char *ip, *os, *raw, *cls;	/* into buf; NULL when absent */
	char	buf[];			/* the slot's extra bytes */
};

/* What one session contributes, from its record or its messages. */
struct rp_sess {
	const char *ip;		/* client_ip, or NULL */
	char	label[RP_NBY][RP_VAL];	/* its group under each --by */
	int64_t	start_ms;	/* start (orphans: first message) */
	int	gave_up;	/* abandoned with no message at all */
	int	abandoned;	/* session outcome "abandoned" */
	double	wait;		/* gave_up_after_s (< 0 = none) */
};

/* One table being built. */
struct rp_dim {
	enum rp_by by;
	struct strmap groups;	/* label -> struct rp_group (p) */
	struct strmap senders;	/* label \0 ip -> a: 1 delivered 2 attempted */
};

struct rp {
	const struct rp_opts *o;
	struct rp_dim dims[3];	/* --by, os, rawsig (shared when equal) */
	int	ndims;
	struct rp_stats *st;
	uint64_t size;		/* the log's bytes (0 = unknown) */
	int	oom;
};

/* rp_opts_init - defaults: by OS, everything, 20 warnings */
void
rp_opts_init(struct rp_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->by = RP_BY_OS;
	o->since_ms = INT64_MIN;
	o->max_warnings = 20;
	o->max_line = JL_MAX_LINE;
	o->session_max_age_ms = RP_MAX_AGE_MS;
	o->max_open = RP_MAX_OPEN;
}

/* rp_parse_by - a --by name; 0 or -1 */
int
rp_parse_by(const char *s, enum rp_by *by)
{
	int i;

	for (i = 0; i < RP_NBY; i++)
		if (strcmp(s, rp_by_names[i]) == 0) {
			*by = (enum rp_by)i;
			return 0;
		}
	return -1;
}

/* rp_parse_since - RFC 3339, or "N" s/m/h/d/w before now_ms; 0 or -1 */
int
rp_parse_since(const char *s, int64_t now_ms, int64_t *since, char *err,
    size_t errlen)
{
	char *end;
	double n;
	int64_t unit;

	if (evr_time_ms(s, since) == 0)
		return 0;
	errno = 0;
	n = strtod(s, &end);
	if (errno == 0 && end != s && *s >= '0' && *s <= '9' && n >= 0 &&
	    n < 1e7 && end[0] != '\0' && end[1] == '\0') {
		switch (*end) {
		case 's': unit = 1000; break;
		case 'm': unit = 60 * 1000; break;
		case 'h': unit = 3600 * 1000; break;
		case 'd': unit = 86400 * 1000; break;
		case 'w': unit = 7 * 86400 * 1000LL; break;
		default: unit = 0;
		}
		if (unit) {
			*since = now_ms - (int64_t)(n * (double)unit);
			return 0;
		}
	}
	snprintf(err, errlen, "--since wants an RFC 3339 time or an age "
	    "like 24h or 7d, not '%.60s'", s);
	return -1;
}

/* rp_attempts - the attempts of a group (see the top of this file) */
uint64_t
rp_attempts(const struct rp_group *g)
{
	return g->delivered + g->rejected + g->deferred + g->abandoned +
	    g->protocol_error + g->early;
}

/* rp_store_attempts - a store group's decayed attempts (gave_up: abandoned) */
double
rp_store_attempts(const struct rp_group *g)
{
	const double *c = g->est.counts;

	return c[OC_DELIVERED] + c[OC_REJECTED] + c[OC_DEFERRED] +
	    c[OC_ABANDONED] + c[OC_PROTOCOL_ERROR];
}

/* rp_success_rate - delivered / attempts, or -1 when undefined */
double
rp_success_rate(const struct rp_group *g)
{
	uint64_t a = rp_attempts(g);
	double	d;

	if (g->updated_ms != 0) {		/* from a store: decayed */
		d = rp_store_attempts(g);
		return d > 0 ? g->est.counts[OC_DELIVERED] / d : -1;
	}
	return a ? (double)g->delivered / (double)a : -1;
}

/*
 * Counting.
 */

/* group_get - the group of a dimension with this label, created */
static struct rp_group *
group_get(struct rp *r, struct rp_dim *d, const char *label)
{
	struct strmap_ent *e;
	struct rp_group *g;

	if (strmap_insert(&d->groups, label, strlen(label), &e) < 0) {
		r->oom = 1;
		return NULL;
	}
	if (e->p == NULL) {
		if ((g = calloc(1, sizeof(*g))) == NULL) {
			strmap_del(&d->groups, e);
			r->oom = 1;
			return NULL;
		}
		e->p = g;
	}
	return e->p;
}

/* wait_bucket - the histogram bucket of a wait in seconds */
static int
wait_bucket(double s)
{
	int i;

	for (i = 0; i < RP_NWAIT - 1; i++)
		if (s < rp_wait_edges[i])
			return i;
	return RP_NWAIT - 1;
}

/* rp_count - add one session and its message outcomes to every table */
static void
rp_count(struct rp *r, const struct rp_sess *s, const uint64_t *oc)
{
	uint64_t nmsg = 0, att;
	char k[RP_VAL + 64];
	struct rp_group *g;
	struct strmap_ent *e;
	size_t n, ni;
	int i;

	if (s->start_ms < r->o->since_ms) {
		r->st->filtered++;
		return;
	}
	for (i = 0; i < RP_NOC; i++)
		nmsg += oc[i];
	att = oc[OC_DELIVERED] + oc[OC_REJECTED] + oc[OC_DEFERRED] +
	    oc[OC_ABANDONED] + oc[OC_PROTOCOL_ERROR] + (s->gave_up && nmsg == 0);
	r->st->sessions++;
	r->st->messages += nmsg;
	for (i = 0; i < r->ndims; i++) {
		struct rp_dim *d = &r->dims[i];
		const char *label = s->label[d->by];

		if ((g = group_get(r, d, label)) == NULL)
			return;
		g->sessions++;
		g->messages += nmsg;
		g->delivered += oc[OC_DELIVERED];
		g->rejected += oc[OC_REJECTED];
		g->deferred += oc[OC_DEFERRED];
		g->abandoned += oc[OC_ABANDONED];
		g->protocol_error += oc[OC_PROTOCOL_ERROR];
		g->backend_error += oc[OC_BACKEND_ERROR];
		g->other += oc[OC_NONE];
		if (s->gave_up && nmsg == 0)
			g->early++;
		if (s->abandoned && s->wait >= 0) {
			g->waited++;
			g->wait_sum += s->wait;
			if (s->wait > g->wait_max)
				g->wait_max = s->wait;
			g->wait_hist[wait_bucket(s->wait)]++;
		}
		if (s->ip == NULL)
			continue;
		n = strlen(label);
		ni = strlen(s->ip);
		if (ni > 63)
			ni = 63;
		memcpy(k, label, n);
		k[n] = '\0';
		memcpy(k + n + 1, s->ip, ni);
		if (strmap_insert(&d->senders, k, n + 1 + ni, &e) < 0) {
			r->oom = 1;
			return;
		}
		e->p = g;
		if (oc[OC_DELIVERED])
			e->a |= 1;
		if (att)
			e->a |= 2;
	}
}

/* label_set - a group label, or its fallback when s is NULL or empty */
static void
label_set(char *out, const char *s, const char *fallback)
{
	snprintf(out, RP_VAL, "%s", s && *s ? s : fallback);
}

/* label_rawsig - the key of a raw signature ("4:57+7:..." -> "4:64:...") */
static void
label_rawsig(char *out, const char *key, const char *raw,
    const char *fallback)
{
	if (key && *key)
		snprintf(out, RP_VAL, "%s", key);
	else if (raw == NULL || *raw == '\0' ||
	    eval_rawsig_key(raw, out, RP_VAL) < 0)
		snprintf(out, RP_VAL, "%s", fallback);
}

/* label_hour - the UTC hour of a time, "00".."23" */
static void
label_hour(char *out, int64_t ms)
{
	int64_t h = (ms / 1000 / 3600) % 24;

	if (h < 0)
		h += 24;
	snprintf(out, RP_VAL, "%02d", (int)h);
}

/* on_orphan - count a session seen only through its messages */
static int
on_orphan(void *arg, void *slot, int64_t first_ms)
{
	struct rp *r = arg;
	struct rp_slot *op = slot;
	struct rp_sess s;

	memset(&s, 0, sizeof(s));
	s.ip = op->ip;
	s.start_ms = first_ms;
	s.wait = -1;
	label_set(s.label[RP_BY_OS], op->os, "(unknown)");
	label_rawsig(s.label[RP_BY_RAWSIG], NULL, op->raw, "(unknown)");
	label_set(s.label[RP_BY_CLASS], op->cls, "(unknown)");
	label_set(s.label[RP_BY_DNSBL], NULL, "(unknown)");
	label_hour(s.label[RP_BY_HOUR], first_ms);
	r->st->orphans++;
	rp_count(r, &s, op->oc);
	return r->oom ? -1 : 0;
}

/* on_message - a message record: its outcome waits for its session */
static int
on_message(void *arg, struct join *j, const struct evr_rmessage *m,
    unsigned long lineno)
{
	const char *in[4] = { m->client_ip, m->os, m->raw_sig, m->class_name };
	size_t	len[4], tot = 0, i;
	struct rp_slot *op;
	const char **out[4];
	char	*p;
	int	isnew;

	(void)arg;
	(void)lineno;
	for (i = 0; i < 4; i++) {
		len[i] = in[i] ? strnlen(in[i], RP_VAL - 1) + 1 : 0;
		tot += len[i];
	}
	if ((op = join_hold(j, m, tot, &isnew)) == NULL)
		return -1;
	if (isnew) {
		/* Copies of the first message's strings, for an orphan. */
		out[0] = &op->ip;
		out[1] = &op->os;
		out[2] = &op->raw;
		out[3] = &op->cls;
		p = op->buf;
		for (i = 0; i < 4; i++) {
			if (in[i] == NULL)
				continue;
			memcpy(p, in[i], len[i] - 1);
			p[len[i] - 1] = '\0';
			*out[i] = p;
			p += len[i];
		}
	}
	op->oc[m->outcome]++;
	return 0;
}

/* label_dnsbl - "(not asked)", "(not listed)", else the sorted zones */
static void
label_dnsbl(const struct evr_rsession *rs, char *out)
{
	if (!rs->dnsbl_asked)
		snprintf(out, RP_VAL, "(not asked)");
	else if (rs->dnsbl_zones[0] == '\0')
		snprintf(out, RP_VAL, "(not listed)");
	else
		snprintf(out, RP_VAL, "%s", rs->dnsbl_zones);
}

/* on_session - a session record: count it with its waiting messages */
static int
on_session(void *arg, const struct evr_rsession *rs, void *slot,
    unsigned long lineno)
{
	static const uint64_t none[RP_NOC];
	struct rp *r = arg;
	struct rp_slot *op = slot;
	struct rp_sess s;

	(void)lineno;
	memset(&s, 0, sizeof(s));
	s.start_ms = rs->start_ms;
	s.ip = rs->client_ip;
	if (s.ip == NULL && op != NULL)
		s.ip = op->ip;
	if (!rs->fp) {
		label_set(s.label[RP_BY_OS], NULL, "(no SYN)");
		label_set(s.label[RP_BY_RAWSIG], NULL, "(no SYN)");
	} else {
		label_set(s.label[RP_BY_OS], rs->fp_os, "(unknown)");
		label_rawsig(s.label[RP_BY_RAWSIG], rs->fp_key, rs->fp_raw_sig,
		    "(unknown)");
	}
	label_set(s.label[RP_BY_CLASS], rs->class_name, "(unknown)");
	label_dnsbl(rs, s.label[RP_BY_DNSBL]);
	label_hour(s.label[RP_BY_HOUR], s.start_ms);
	s.abandoned = rs->outcome == OC_ABANDONED;
	s.gave_up = s.abandoned && op == NULL && rs->messages == 0;
	s.wait = rs->gave_up_after_s;
	rp_count(r, &s, op ? op->oc : none);
	return r->oom ? -1 : 0;
}

/* progress - a bar on stderr: done of total bytes (total 0 = unknown) */
static void
progress(unsigned long lines, uint64_t done, uint64_t total, int final)
{
	char bar[41];
	int i, w;

	if (final) {
		fprintf(stderr, "\r%70s\r", "");
		return;
	}
	if (total == 0) {
		fprintf(stderr, "\rreport: %lu lines", lines);
		return;
	}
	w = (int)(done * 40 / total);
	for (i = 0; i < 40; i++)
		bar[i] = i < w ? '#' : '.';
	bar[40] = '\0';
	fprintf(stderr, "\rreport: [%s] %3d%% %lu lines", bar,
	    (int)(done * 100 / total), lines);
}

/* on_progress - the join's progress hook */
static void
on_progress(void *arg, unsigned long lines, uint64_t done)
{
	progress(lines, done, ((struct rp *)arg)->size, 0);
}

static const struct join_ops rp_join_ops = {
	.message = on_message,
	.session = on_session,
	.orphan = on_orphan,
};

/* group_cmp - most sessions first, then by label */
static int
group_cmp(const void *a, const void *b)
{
	const struct rp_group *x = a, *y = b;

	if (x->sessions != y->sessions)
		return x->sessions < y->sessions ? 1 : -1;
	return strcmp(x->label, y->label);
}

/* dim_table - move a dimension's groups into a sorted table */
static int
dim_table(struct rp_dim *d, struct rp_table *t)
{
	struct strmap_ent *e;
	struct rp_group *g;
	size_t n = 0;

	for (e = strmap_next(&d->senders, NULL); e != NULL;
	    e = strmap_next(&d->senders, e)) {
		g = e->p;
		g->senders++;
		if (e->a & 1)
			g->ok_senders++;
		else if (e->a & 2)
			g->bad_senders++;
	}
	t->by = d->by;
	t->n = 0;
	if ((t->g = calloc(d->groups.n ? d->groups.n : 1, sizeof(*t->g))) ==
	    NULL)
		return -1;
	for (e = strmap_next(&d->groups, NULL); e != NULL;
	    e = strmap_next(&d->groups, e)) {
		if ((t->g[n].label = strdup(e->key)) == NULL) {
			t->n = n;
			return -1;
		}
		g = e->p;
		g->label = t->g[n].label;
		t->g[n++] = *g;
	}
	t->n = n;
	qsort(t->g, n, sizeof(*t->g), group_cmp);
	return 0;
}

/* table_copy - a deep copy of a table */
static int
table_copy(const struct rp_table *from, struct rp_table *to)
{
	size_t i;

	to->by = from->by;
	to->n = 0;
	if ((to->g = calloc(from->n ? from->n : 1, sizeof(*to->g))) == NULL)
		return -1;
	for (i = 0; i < from->n; i++) {
		to->g[i] = from->g[i];
		if ((to->g[i].label = strdup(from->g[i].label)) == NULL)
			return -1;
		to->n = i + 1;
	}
	return 0;
}

/* table_free - free a table's groups */
static void
table_free(struct rp_table *t)
{
	size_t i;

	for (i = 0; i < t->n; i++) {
		free(t->g[i].label);
		t->g[i].label = NULL;
	}
	free(t->g);
	t->g = NULL;
	t->n = 0;
}

/* rp_report_free - free what rp_run() filled */
void
rp_report_free(struct rp_report *rep)
{
	table_free(&rep->by);
	table_free(&rep->os);
	table_free(&rep->rawsig);
}

/* rp_run - read the log at path ("-" = stdin) into rep */
int
rp_run(const char *path, const struct rp_opts *o, struct rp_report *rep,
    char *err, size_t errlen)
{
	struct join_ops ops = rp_join_ops;
	struct join_opts jo;
	struct jl_reader rd;
	struct join *j = NULL;
	struct stat sb;
	struct rp *r;
	FILE *f;
	int i, rc = -1, stdin_ = strcmp(path, "-") == 0;

	memset(rep, 0, sizeof(*rep));
	memset(&sb, 0, sizeof(sb));
	if ((f = stdin_ ? stdin : fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "cannot open %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &sb) < 0)
		memset(&sb, 0, sizeof(sb));
	if (S_ISDIR(sb.st_mode)) {
		snprintf(err, errlen, "%s: is a directory", path);
		if (!stdin_)
			fclose(f);
		return -1;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		snprintf(err, errlen, "out of memory");
		if (!stdin_)
			fclose(f);
		return -1;
	}
	if (S_ISREG(sb.st_mode))
		r->size = (uint64_t)sb.st_size;
	r->o = o;
	r->st = &rep->st;
	r->dims[r->ndims++].by = o->by;
	if (o->by != RP_BY_OS)
		r->dims[r->ndims++].by = RP_BY_OS;
	if (o->by != RP_BY_RAWSIG)
		r->dims[r->ndims++].by = RP_BY_RAWSIG;
	memset(&jo, 0, sizeof(jo));
	jo.name = stdin_ ? "(stdin)" : path;
	jo.flags = EVR_R_SESSION | EVR_R_MESSAGE | EVR_R_SESS_START |
	    EVR_R_ZONES;
	jo.max_warnings = o->max_warnings;
	jo.max_age_ms = o->session_max_age_ms;
	jo.max_open = o->max_open;
	jo.max_held = SIZE_MAX;
	jo.slot_size = sizeof(struct rp_slot);
	if (o->progress)
		ops.progress = on_progress;
	jl_reader_init(&rd, f, o->max_line ? o->max_line : JL_MAX_LINE);
	if ((j = join_new(&jo, &ops, r)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	rc = join_run(j, &rd, err, errlen);
	if (o->progress)
		progress(0, 0, 0, 1);
	rep->st.lines = join_stats(j)->lines;
	rep->st.garbage = join_stats(j)->garbage;
	rep->st.peak_open = join_stats(j)->peak_open;
	if (rc < 0)
		goto out;
	rc = -1;
	for (i = 0; i < r->ndims; i++) {
		rep->st.keys += r->dims[i].senders.n;
		if (dim_table(&r->dims[i], r->dims[i].by == o->by ? &rep->by :
		    r->dims[i].by == RP_BY_OS ? &rep->os : &rep->rawsig) < 0)
			goto oom;
	}
	if ((o->by == RP_BY_OS && table_copy(&rep->by, &rep->os) < 0) ||
	    (o->by == RP_BY_RAWSIG && table_copy(&rep->by, &rep->rawsig) < 0))
		goto oom;
	rc = 0;
	goto out;
oom:
	snprintf(err, errlen, "out of memory");
	rp_report_free(rep);
out:
	join_free(j);
	for (i = 0; i < r->ndims; i++) {
		strmap_free(&r->dims[i].groups, free);
		strmap_free(&r->dims[i].senders, NULL);
	}
	free(r);
	jl_reader_free(&rd);
	if (!stdin_)
		fclose(f);
	return rc;
}

/*
 * Writers.
 */

/* utf8_each - s with invalid UTF-8 replaced; each character through put */
static void
utf8_each(FILE *f, const char *s, void (*put)(FILE *, unsigned long,
    const char *, size_t))
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), len;
	unsigned long cp;

	while (n > 0) {
		if ((len = svg_utf8_len(p, n, &cp)) == 0) {
			put(f, 0xfffd, "\xef\xbf\xbd", 3);
			p++;
			n--;
			continue;
		}
		put(f, cp, (const char *)p, len);
		p += len;
		n -= len;
	}
}

/* put_json - one character of a JSON string */
static void
put_json(FILE *f, unsigned long cp, const char *p, size_t len)
{
	if (cp == '"' || cp == '\\')
		fprintf(f, "\\%c", (int)cp);
	else if (cp < 0x20 || cp == 0x7f)
		fprintf(f, "\\u%04lx", cp);
	else
		fwrite(p, 1, len, f);
}

/* put_csv - one character of a quoted CSV field */
static void
put_csv(FILE *f, unsigned long cp, const char *p, size_t len)
{
	if (cp == '"')
		fputs("\"\"", f);
	else
		fwrite(p, 1, len, f);
}

/* put_term - one character for a terminal: controls become '?' */
static void
put_term(FILE *f, unsigned long cp, const char *p, size_t len)
{
	if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0))
		fputc('?', f);
	else
		fwrite(p, 1, len, f);
}

/*
 * The columns.  One row per column of a group, in output order: its JSON
 * key and CSV header, its text and HTML headers (NULL: not in that table),
 * where its value comes from, and when it is shown.  From a store
 * (rep->store) the decayed counts fill delivered, rejected, deferred,
 * abandoned, protocol_error, attempts and the success rate, and add spam,
 * ham, listed, p_spam, evidence and updated; the per-session figures
 * (senders, sessions, messages, gave_up, backend_error, other, waits) are
 * unknown: null in JSON, empty in CSV, "-" in text and HTML.
 */

/* What a value is, which decides how each format writes it. */
enum rp_vk {
	RP_V_NONE,	/* unknown or undefined: null, empty, "-" */
	RP_V_INT,	/* a count */
	RP_V_NUM,	/* a decayed count (from a store) */
	RP_V_RATE,	/* a share, 0..1 */
	RP_V_SECS,	/* seconds */
	RP_V_PROB,	/* a probability (p_spam) */
	RP_V_TIME	/* a time, as text */
};

struct rp_val {
	enum rp_vk k;
	uint64_t u;		/* RP_V_INT */
	double	d;		/* RP_V_NUM, RATE, SECS, PROB */
	char	s[40];		/* RP_V_TIME */
};

#define RP_C_STORE	0x01	/* in JSON and CSV from a store only */
#define RP_C_TSTORE	0x02	/* in the text table from a store only */

struct rp_col {
	const char *name;	/* JSON key and CSV header */
	const char *text;	/* text header (NULL = not in the text table) */
	const char *html;	/* HTML header (NULL = not in the HTML table) */
	unsigned flags;		/* RP_C_* */
	int	off;		/* event log: a uint64_t of rp_group (-1 none) */
	int	oc;		/* store: est.counts[oc] (-1 none) */
	void	(*get)(const struct rp_group *, int store, struct rp_val *);
				/* else: computed (NULL = off / oc) */
};

/* time_str - ms since the epoch as RFC 3339 UTC, seconds */
static void
time_str(int64_t ms, char *buf, size_t len)
{
	time_t	t = (time_t)(ms / 1000);
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "?");
}

/* col_attempts - attempts, counted or decayed */
static void
col_attempts(const struct rp_group *g, int store, struct rp_val *v)
{
	if (store) {
		v->k = RP_V_NUM;
		v->d = rp_store_attempts(g);
	} else {
		v->k = RP_V_INT;
		v->u = rp_attempts(g);
	}
}

/* col_success - the success rate, or undefined */
static void
col_success(const struct rp_group *g, int store, struct rp_val *v)
{
	(void)store;
	v->d = rp_success_rate(g);
	v->k = v->d < 0 ? RP_V_NONE : RP_V_RATE;
}

/* col_wait_mean - the mean wait of abandoned sessions */
static void
col_wait_mean(const struct rp_group *g, int store, struct rp_val *v)
{
	v->k = store || g->waited == 0 ? RP_V_NONE : RP_V_SECS;
	v->d = g->waited ? g->wait_sum / (double)g->waited : 0;
}

/* col_wait_max - the longest wait of abandoned sessions */
static void
col_wait_max(const struct rp_group *g, int store, struct rp_val *v)
{
	v->k = store || g->waited == 0 ? RP_V_NONE : RP_V_SECS;
	v->d = g->wait_max;
}

/* col_p_spam - the store's estimate */
static void
col_p_spam(const struct rp_group *g, int store, struct rp_val *v)
{
	(void)store;
	v->k = RP_V_PROB;
	v->d = g->est.p_spam;
}

/* col_evidence - the store's decayed evidence */
static void
col_evidence(const struct rp_group *g, int store, struct rp_val *v)
{
	(void)store;
	v->k = RP_V_NUM;
	v->d = g->est.evidence;
}

/* col_updated - when the store last wrote the key */
static void
col_updated(const struct rp_group *g, int store, struct rp_val *v)
{
	(void)store;
	v->k = RP_V_TIME;
	time_str(g->updated_ms, v->s, sizeof(v->s));
}

#define G(f)	((int)offsetof(struct rp_group, f))

static const struct rp_col rp_cols[] = {
	{"senders", "senders", "senders", 0, G(senders), -1, NULL},
	{"ok_senders", "ok", "ok senders", 0, G(ok_senders), -1, NULL},
	{"bad_senders", "failed", "failed senders", 0, G(bad_senders), -1,
	    NULL},
	{"sessions", "sessions", "sessions", 0, G(sessions), -1, NULL},
	{"messages", "messages", "messages", 0, G(messages), -1, NULL},
	{"attempts", NULL, NULL, 0, -1, -1, col_attempts},
	{"delivered", "delivered", "delivered", 0, G(delivered),
	    OC_DELIVERED, NULL},
	{"success_rate", "success", "success", 0, -1, -1, col_success},
	{"rejected", "rejected", "rejected", 0, G(rejected), OC_REJECTED,
	    NULL},
	{"deferred", "deferred", "deferred", 0, G(deferred), OC_DEFERRED,
	    NULL},
	{"abandoned", "abandoned", "abandoned", 0, G(abandoned), OC_ABANDONED,
	    NULL},
	{"gave_up", "gave_up", "gave up", 0, G(early), -1, NULL},
	{"protocol_error", "proto_err", NULL, RP_C_TSTORE, G(protocol_error),
	    OC_PROTOCOL_ERROR, NULL},
	{"backend_error", NULL, NULL, 0, G(backend_error), -1, NULL},
	{"other", NULL, NULL, 0, G(other), -1, NULL},
	{"waited", NULL, NULL, 0, G(waited), -1, NULL},
	{"wait_mean_s", NULL, NULL, 0, -1, -1, col_wait_mean},
	{"wait_max_s", NULL, NULL, 0, -1, -1, col_wait_max},
	{"spam", "spam", NULL, RP_C_STORE | RP_C_TSTORE, -1, OC_SPAM, NULL},
	{"ham", "ham", NULL, RP_C_STORE | RP_C_TSTORE, -1, OC_HAM, NULL},
	{"listed", "listed", NULL, RP_C_STORE | RP_C_TSTORE, -1, OC_LISTED,
	    NULL},
	{"p_spam", "p_spam", NULL, RP_C_STORE | RP_C_TSTORE, -1, -1,
	    col_p_spam},
	{"evidence", NULL, NULL, RP_C_STORE, -1, -1, col_evidence},
	{"updated", NULL, NULL, RP_C_STORE, -1, -1, col_updated},
};

#undef G

#define RP_NCOLS	(sizeof(rp_cols) / sizeof(rp_cols[0]))

/* col_value - a column's value for a group */
static void
col_value(const struct rp_col *c, const struct rp_group *g, int store,
    struct rp_val *v)
{
	v->k = RP_V_NONE;
	if (c->get != NULL)
		c->get(g, store, v);
	else if (store && c->oc >= 0) {
		v->k = RP_V_NUM;
		v->d = g->est.counts[c->oc];
	} else if (!store && c->off >= 0) {
		v->k = RP_V_INT;
		memcpy(&v->u, (const char *)g + c->off, sizeof(v->u));
	}
}

/* col_in - is the column in JSON and CSV (text: in the text table)? */
static int
col_in(const struct rp_col *c, int store, int text)
{
	if (text)
		return c->text != NULL && (store || !(c->flags & RP_C_TSTORE));
	return store || !(c->flags & RP_C_STORE);
}

/* rp_write_json - one object per group per line, then a summary line */
int
rp_write_json(FILE *f, const struct rp_report *rep)
{
	const struct rp_table *t = &rep->by;
	const struct rp_col *c;
	struct rp_val v;
	char	ts[40];
	size_t	i;

	for (i = 0; i < t->n; i++) {
		fprintf(f, "{\"type\":\"group\",\"by\":\"%s\",\"group\":\"",
		    rp_by_names[t->by]);
		utf8_each(f, t->g[i].label, put_json);
		fputc('"', f);
		for (c = rp_cols; c < rp_cols + RP_NCOLS; c++) {
			if (!col_in(c, rep->store, 0))
				continue;
			col_value(c, &t->g[i], rep->store, &v);
			fprintf(f, ",\"%s\":", c->name);
			switch (v.k) {
			case RP_V_NONE: fputs("null", f); break;
			case RP_V_INT: fprintf(f, "%llu",
			    (unsigned long long)v.u); break;
			case RP_V_NUM: fprintf(f, "%.10g", v.d); break;
			case RP_V_TIME: fprintf(f, "\"%s\"", v.s); break;
			default: fprintf(f, "%.6g", v.d); break;
			}
		}
		fputs("}\n", f);
	}
	if (rep->store) {
		time_str(rep->st.now_ms, ts, sizeof(ts));
		fprintf(f, "{\"type\":\"summary\",\"by\":\"%s\",\"source\":"
		    "\"store\",\"store\":\"", rp_by_names[t->by]);
		utf8_each(f, rep->source, put_json);
		fprintf(f, "\",\"groups\":%zu,\"keys\":%zu,\"ip_keys\":%llu,"
		    "\"decayed_to\":\"%s\",\"half_life_s\":%.10g,\"lines\":"
		    "null,\"garbage\":null,\"sessions\":null,\"messages\":null,"
		    "\"filtered\":null,\"orphans\":null}\n", t->n,
		    rep->st.store_keys, (unsigned long long)rep->st.ip_keys, ts,
		    rep->st.half_life_ms / 1000);
	} else
		fprintf(f, "{\"type\":\"summary\",\"by\":\"%s\",\"groups\":%zu,"
		    "\"lines\":%lu,\"garbage\":%lu,\"sessions\":%llu,"
		    "\"messages\":%llu,\"filtered\":%llu,\"orphans\":%llu}\n",
		    rp_by_names[t->by], t->n, rep->st.lines, rep->st.garbage,
		    (unsigned long long)rep->st.sessions,
		    (unsigned long long)rep->st.messages,
		    (unsigned long long)rep->st.filtered,
		    (unsigned long long)rep->st.orphans);
	return ferror(f) ? -1 : 0;
}

/* rp_write_csv - RFC 4180: a header row, one row per group, CRLF */
int
rp_write_csv(FILE *f, const struct rp_report *rep)
{
	const struct rp_table *t = &rep->by;
	const struct rp_col *c;
	struct rp_val v;
	size_t	i;

	fputs("by,group", f);
	for (c = rp_cols; c < rp_cols + RP_NCOLS; c++)
		if (col_in(c, rep->store, 0))
			fprintf(f, ",%s", c->name);
	fputs("\r\n", f);
	for (i = 0; i < t->n; i++) {
		fprintf(f, "%s,\"", rp_by_names[t->by]);
		utf8_each(f, t->g[i].label, put_csv);
		fputc('"', f);
		for (c = rp_cols; c < rp_cols + RP_NCOLS; c++) {
			if (!col_in(c, rep->store, 0))
				continue;
			col_value(c, &t->g[i], rep->store, &v);
			fputc(',', f);
			switch (v.k) {
			case RP_V_NONE: break;
			case RP_V_INT: fprintf(f, "%llu",
			    (unsigned long long)v.u); break;
			case RP_V_NUM: fprintf(f, "%.10g", v.d); break;
			case RP_V_RATE: fprintf(f, "%.6f", v.d); break;
			case RP_V_SECS: fprintf(f, "%.3f", v.d); break;
			case RP_V_PROB: fprintf(f, "%.6g", v.d); break;
			case RP_V_TIME: fputs(v.s, f); break;
			}
		}
		fputs("\r\n", f);
	}
	return ferror(f) ? -1 : 0;
}

/* term_label - a label for a terminal, cut to w columns, padded */
static void
term_label(FILE *f, const char *s, int w)
{
	char buf[RP_VAL + 8];
	const unsigned char *p;
	size_t n, len;
	unsigned long cp;
	int cols = 0;

	/* Cut by characters, then sanitise. */
	p = (const unsigned char *)s;
	n = strlen(s);
	while (n > 0 && cols < w) {
		len = svg_utf8_len(p, n, &cp);
		if (len == 0)
			len = 1;
		if (cols == w - 1 && n > len)
			break;
		p += len;
		n -= len;
		cols++;
	}
	len = (size_t)(p - (const unsigned char *)s);
	memcpy(buf, s, len);
	buf[len] = '\0';
	utf8_each(f, buf, put_term);
	if (n > 0) {
		fputs("~", f);
		cols++;
	}
	for (; cols < w; cols++)
		fputc(' ', f);
}

/* text_sep - the text table's gap before a column: two spaces before the
 * first and before the success rate, else one */
static const char *
text_sep(const struct rp_col *c, int first)
{
	return first || c->get == col_success ? "  " : " ";
}

/* text_width - the text table's width of a column */
static int
text_width(const struct rp_col *c)
{
	return c->get == col_success || c->get == col_p_spam ? 7 : 9;
}

/* rp_write_text - an aligned table */
int
rp_write_text(FILE *f, const struct rp_report *rep)
{
	const struct rp_table *t = &rep->by;
	const struct rp_col *c;
	struct rp_val v;
	char	ts[40];
	size_t	i, l;
	int	w = 5, first;

	for (i = 0; i < t->n; i++) {
		l = strlen(t->g[i].label);
		if ((int)l > w)
			w = (int)l;
	}
	if (w > 56)
		w = 56;
	if (rep->store) {
		time_str(rep->st.now_ms, ts, sizeof(ts));
		fprintf(f, "reputation store %s: %zu %s keys, %llu ip keys; "
		    "counts decayed to %s (half-life %.4gh); success = "
		    "delivered / attempts;\nsenders, sessions, messages and "
		    "gave_up are not in the store (-)\n\n", rep->source, t->n,
		    rp_by_names[t->by], (unsigned long long)rep->st.ip_keys,
		    ts, rep->st.half_life_ms / 3600e3);
	} else
		fprintf(f, "%lu sessions, %llu messages from %lu lines (%lu "
		    "skipped); success = delivered / attempts\n\n",
		    (unsigned long)rep->st.sessions,
		    (unsigned long long)rep->st.messages, rep->st.lines,
		    rep->st.garbage);
	term_label(f, rp_by_names[t->by], w);
	for (c = rp_cols, first = 1; c < rp_cols + RP_NCOLS; c++) {
		if (!col_in(c, rep->store, 1))
			continue;
		fprintf(f, "%s%*s", text_sep(c, first), text_width(c),
		    c->text);
		first = 0;
	}
	fputc('\n', f);
	for (i = 0; i < t->n; i++) {
		term_label(f, t->g[i].label, w);
		for (c = rp_cols, first = 1; c < rp_cols + RP_NCOLS; c++) {
			if (!col_in(c, rep->store, 1))
				continue;
			col_value(c, &t->g[i], rep->store, &v);
			fputs(text_sep(c, first), f);
			first = 0;
			switch (v.k) {
			case RP_V_INT: fprintf(f, "%9llu",
			    (unsigned long long)v.u); break;
			case RP_V_NUM: fprintf(f, "%9.1f", v.d); break;
			case RP_V_RATE: fprintf(f, "%6.1f%%", v.d * 100); break;
			case RP_V_PROB: fprintf(f, "%7.3f", v.d); break;
			default: fprintf(f, "%*s", text_width(c), "-");
			    break;
			}
		}
		fputc('\n', f);
	}
	return ferror(f) ? -1 : 0;
}

/*
 * Charts.
 */

#define RP_NCHARTS	6

struct rp_chart {
	char	name[40];	/* file name without ".svg" */
	char	*svg;		/* owned */
	size_t	len;
};

/* rank_cmp - qsort order for items: largest value first */
static int
rank_cmp(const void *a, const void *b)
{
	const struct svg_item *x = a, *y = b;

	if (x->value != y->value)
		return x->value < y->value ? 1 : -1;
	return strcmp(x->label, y->label);
}

/* share_items - top groups by ok (or bad) senders, the rest as "(other)" */
static size_t
share_items(const struct rp_table *t, int ok, struct svg_item *it,
    char notes[][32])
{
	size_t i, n = 0;
	double rest = 0;

	for (i = 0; i < t->n; i++) {
		const struct rp_group *g = &t->g[i];
		double v = (double)(ok ? g->ok_senders : g->bad_senders);

		/* From a store: delivered, or failed, decayed attempts. */
		if (g->updated_ms != 0)
			v = ok ? g->est.counts[OC_DELIVERED] :
			    rp_store_attempts(g) - g->est.counts[OC_DELIVERED];

		if (v <= 0)
			continue;
		it[n].label = t->g[i].label;
		it[n].value = v;
		n++;
	}
	qsort(it, n, sizeof(*it), rank_cmp);
	if (n > RP_SHARE_TOP + 1) {
		for (i = RP_SHARE_TOP; i < n; i++)
			rest += it[i].value;
		n = RP_SHARE_TOP;
		it[n].label = "(other)";
		it[n].value = rest;
		n++;
	}
	for (i = 0; i < n; i++) {
		if (t->n > 0 && t->g[0].updated_ms != 0)
			snprintf(notes[i], 32, "%.1f %s", it[i].value,
			    ok ? "delivered" : "failed");
		else
			snprintf(notes[i], 32, "%.0f senders", it[i].value);
		it[i].note = notes[i];
	}
	return n;
}

/* rate_items - success rate per group, the top by sessions */
static size_t
rate_items(const struct rp_table *t, size_t max, struct svg_item *it,
    char notes[][48])
{
	size_t i, n = 0;
	double sr;

	for (i = 0; i < t->n && n < max; i++) {
		if ((sr = rp_success_rate(&t->g[i])) < 0)
			continue;
		it[n].label = t->g[i].label;
		it[n].value = sr * 100;
		if (t->g[i].updated_ms != 0)
			snprintf(notes[n], 48, "%.1f%% of %.1f (decayed)",
			    sr * 100, rp_store_attempts(&t->g[i]));
		else
			snprintf(notes[n], 48, "%.1f%% of %llu", sr * 100,
			    (unsigned long long)rp_attempts(&t->g[i]));
		it[n].note = notes[n];
		n++;
	}
	return n;
}

/* chart_begin - a memory stream for one chart */
static FILE *
chart_begin(struct rp_chart *c, const char *name)
{
	snprintf(c->name, sizeof(c->name), "%.39s", name);
	c->svg = NULL;
	c->len = 0;
	return open_memstream(&c->svg, &c->len);
}

/* charts_make - every chart, as SVG text; the number made or -1 */
static int
charts_make(const struct rp_report *rep, struct rp_chart *c)
{
	size_t nmax = rep->os.n > rep->rawsig.n ? rep->os.n : rep->rawsig.n,
	    n, i, j;
	struct svg_item *it;
	struct svg_series *ser;
	double (*counts)[RP_NWAIT];
	char (*notes)[48], title[160];
	int nc = 0, rc = 0;
	FILE *f;

	if (rep->by.n > nmax)
		nmax = rep->by.n;
	it = calloc(nmax + 2, sizeof(*it));
	notes = calloc(nmax + 2, sizeof(*notes));
	ser = calloc(RP_WAIT_ROWS, sizeof(*ser));
	counts = calloc(RP_WAIT_ROWS, sizeof(*counts));
	if (it == NULL || notes == NULL || ser == NULL || counts == NULL) {
		rc = -1;
		goto out;
	}
	for (j = 0; j < 2; j++) {
		if ((f = chart_begin(&c[nc], j == 0 ? "share_successful" :
		    "share_unsuccessful")) == NULL)
			goto fail;
		n = share_items(&rep->os, j == 0, it, (char (*)[32])notes);
		if (rep->store)
			rc |= svg_share(f, j == 0 ? "OS share of delivered "
			    "messages (reputation store, decayed)" : "OS share "
			    "of failed attempts (reputation store, decayed)",
			    it, n);
		else
			rc |= svg_share(f, j == 0 ? "OS of successful senders "
			    "(delivered at least one message)" : "OS of "
			    "unsuccessful senders (attempted, never delivered)",
			    it, n);
		rc |= fclose(f);
		nc++;
	}
	if ((f = chart_begin(&c[nc], "success_by_os")) == NULL)
		goto fail;
	n = rate_items(&rep->os, RP_TOP, it, notes);
	rc |= svg_bars(f, "Delivery success rate by OS (delivered / "
	    "attempts, %)", it, n, 100);
	rc |= fclose(f);
	nc++;
	if ((f = chart_begin(&c[nc], "success_by_rawsig")) == NULL)
		goto fail;
	n = rate_items(&rep->rawsig, RP_TOP, it, notes);
	snprintf(title, sizeof(title), "Delivery success rate of the %zu most "
	    "common raw signatures (%%)", n);
	rc |= svg_bars(f, title, it, n, 100);
	rc |= fclose(f);
	nc++;
	if (rep->store)		/* no per-session waits in a store */
		goto out;
	if ((f = chart_begin(&c[nc], "patience_by_os")) == NULL)
		goto fail;
	for (i = 0, n = 0; i < rep->os.n && n < RP_WAIT_ROWS; i++) {
		if (rep->os.g[i].waited == 0)
			continue;
		for (j = 0; j < RP_NWAIT; j++)
			counts[n][j] = (double)rep->os.g[i].wait_hist[j];
		ser[n].label = rep->os.g[i].label;
		ser[n].counts = counts[n];
		n++;
	}
	rc |= svg_histograms(f, "Abandoned sessions: how long each OS waited "
	    "before giving up (gave_up_after_s)", rp_wait_buckets, RP_NWAIT,
	    ser, n);
	rc |= fclose(f);
	nc++;
	if (rep->by.by != RP_BY_OS && rep->by.by != RP_BY_RAWSIG) {
		snprintf(title, sizeof(title), "success_by_%s",
		    rp_by_names[rep->by.by]);
		if ((f = chart_begin(&c[nc], title)) == NULL)
			goto fail;
		n = rate_items(&rep->by, RP_TOP, it, notes);
		snprintf(title, sizeof(title), "Delivery success rate by %s (%%)",
		    rp_by_names[rep->by.by]);
		rc |= svg_bars(f, title, it, n, 100);
		rc |= fclose(f);
		nc++;
	}
	goto out;
fail:
	rc = -1;
out:
	free(it);
	free(notes);
	free(ser);
	free(counts);
	if (rc != 0) {
		for (i = 0; i < (size_t)nc; i++) {
			free(c[i].svg);
			c[i].svg = NULL;
		}
		return -1;
	}
	return nc;
}

/* charts_free - free what charts_make() made */
static void
charts_free(struct rp_chart *c, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		free(c[i].svg);
		c[i].svg = NULL;
	}
}

/* html_page - the index page with the table and the given charts inline */
static int
html_page(FILE *f, const struct rp_report *rep, const struct rp_chart *c,
    int nc)
{
	const struct rp_table *t = &rep->by;
	const struct rp_col *col;
	struct rp_val v;
	char ts[40];
	size_t i;
	int k;

	fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
	    "<meta charset=\"utf-8\">\n<title>mailshaper report</title>\n"
	    "<style>\nbody{font-family:sans-serif;margin:1.5em;color:#222}\n"
	    "table{border-collapse:collapse;font-size:13px}\n"
	    "th,td{border:1px solid #ccc;padding:2px 6px}\n"
	    "td.n{text-align:right}\ntd.l{min-width:14em;max-width:36em;"
	    "overflow-wrap:anywhere}\n.scroll{overflow-x:auto}\n"
	    ".chart{margin:1em 0}\n</style>\n</head>\n<body>\n"
	    "<h1>mailshaper report</h1>\n", f);
	if (rep->store) {
		time_str(rep->st.now_ms, ts, sizeof(ts));
		fputs("<p>From the reputation store ", f);
		svg_text(f, rep->source, 0);
		fprintf(f, ": %zu %s keys, %llu ip keys; counts decayed to %s "
		    "(half-life %.4g h). Success rate = delivered / (delivered "
		    "+ rejected + deferred + abandoned + protocol_error). "
		    "Senders, sessions, messages and gave_up are not kept in "
		    "the store (shown as -); the OS shares are of delivered "
		    "messages and failed attempts, not of senders.</p>\n"
		    "<p class=\"note\">Omitted: patience_by_os (the store keeps "
		    "no per-session waits; use an event log).</p>\n", t->n,
		    rp_by_names[t->by], (unsigned long long)rep->st.ip_keys, ts,
		    rep->st.half_life_ms / 3600e3);
	} else
		fprintf(f, "<p>%llu sessions and %llu messages from %lu lines "
		    "(%lu skipped as unusable). Success rate = delivered / "
		    "attempts; attempts include sessions that gave up before "
		    "any message.</p>\n",
		    (unsigned long long)rep->st.sessions,
		    (unsigned long long)rep->st.messages, rep->st.lines,
		    rep->st.garbage);
	for (k = 0; k < nc; k++) {
		fprintf(f, "<div class=\"chart\" id=\"%s\">\n", c[k].name);
		fwrite(c[k].svg, 1, c[k].len, f);
		fputs("</div>\n", f);
	}
	fprintf(f, "<h2>By %s</h2>\n<div class=\"scroll\"><table>\n"
	    "<tr><th>%s</th>", rp_by_names[t->by], rp_by_names[t->by]);
	for (col = rp_cols; col < rp_cols + RP_NCOLS; col++)
		if (col->html != NULL)
			fprintf(f, "<th>%s</th>", col->html);
	fputs("</tr>\n", f);
	for (i = 0; i < t->n; i++) {
		fputs("<tr><td class=\"l\">", f);
		svg_text(f, t->g[i].label, 0);
		fputs("</td>", f);
		for (col = rp_cols; col < rp_cols + RP_NCOLS; col++) {
			if (col->html == NULL)
				continue;
			col_value(col, &t->g[i], rep->store, &v);
			switch (v.k) {
			case RP_V_INT: fprintf(f, "<td class=\"n\">%llu</td>",
			    (unsigned long long)v.u); break;
			case RP_V_NUM: fprintf(f, "<td class=\"n\">%.1f</td>",
			    v.d); break;
			case RP_V_RATE: fprintf(f, "<td class=\"n\">%.1f%%</td>",
			    v.d * 100); break;
			default: fputs("<td class=\"n\">-</td>", f); break;
			}
		}
		fputs("</tr>\n", f);
	}
	fputs("</table></div>\n</body>\n</html>\n", f);
	return ferror(f) ? -1 : 0;
}

/* rp_write_html - the index page, charts inline, to f */
int
rp_write_html(FILE *f, const struct rp_report *rep)
{
	struct rp_chart c[RP_NCHARTS];
	int nc, rc;

	if ((nc = charts_make(rep, c)) < 0)
		return -1;
	rc = html_page(f, rep, c, nc);
	charts_free(c, nc);
	return rc;
}

/* write_file - dir/name, all of buf; 0 or -1 with err filled */
static int
write_file(const char *dir, const char *name, const char *buf, size_t len,
    char *err, size_t errlen)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "w")) == NULL ||
	    fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
		snprintf(err, errlen, "cannot write %s: %s", path,
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* rp_write_charts - DIR/<chart>.svg for every chart and DIR/index.html */
int
rp_write_charts(const char *dir, const struct rp_report *rep, char *err,
    size_t errlen)
{
	struct rp_chart c[RP_NCHARTS];
	char name[64], *page = NULL;
	size_t plen = 0;
	FILE *f;
	int nc, k, rc = -1;

	if (mkdir(dir, 0777) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", dir,
		    strerror(errno));
		return -1;
	}
	if ((nc = charts_make(rep, c)) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (k = 0; k < nc; k++) {
		snprintf(name, sizeof(name), "%.39s.svg", c[k].name);
		if (write_file(dir, name, c[k].svg, c[k].len, err, errlen) < 0)
			goto out;
	}
	if ((f = open_memstream(&page, &plen)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (html_page(f, rep, c, nc) < 0 || fclose(f) != 0) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	rc = write_file(dir, "index.html", page, plen, err, errlen);
out:
	free(page);
	charts_free(c, nc);
	return rc;
}

/*
 * The command.
 */

/* usage - print the synopsis */
static void
usage(FILE *f)
{
	fprintf(f, "usage: mailshaper report EVENTLOG [--since T] "
	    "[--by os|rawsig|class|dnsbl|hour]\n"
	    "                         [--format text|json|csv|html] "
	    "[--out DIR]\n"
	    "       mailshaper report --store URL [--half-life T] "
	    "[--by os|rawsig]\n"
	    "                         [--format text|json|csv|html] "
	    "[--out DIR]\n");
}

/* report_main - `mailshaper report ...`; exit status */
int
report_main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{"since", required_argument, NULL, 's'},
		{"by", required_argument, NULL, 'b'},
		{"format", required_argument, NULL, 'f'},
		{"out", required_argument, NULL, 'o'},
		{"store", required_argument, NULL, 'S'},
		{"half-life", required_argument, NULL, 'H'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	static const char *const formats[] = { "text", "json", "csv", "html" };
	struct rp_report rep;
	struct rp_opts o;
	const char *out = NULL, *store = NULL;
	char err[512];
	int64_t hl;
	int c, fmt = 0, rc, i, since = 0;

	rp_opts_init(&o);
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (rp_parse_since(optarg, (int64_t)time(NULL) * 1000,
			    &o.since_ms, err, sizeof(err)) < 0) {
				log_warnx("report: %s", err);
				return 2;
			}
			since = 1;
			break;
		case 'H':
			/* An age parsed back from 0 is minus the duration. */
			if (rp_parse_since(optarg, 0, &hl, err,
			    sizeof(err)) < 0 || strchr("smhdw",
			    optarg[strlen(optarg) - 1]) == NULL || hl >= 0) {
				log_warnx("report: --half-life wants a duration "
				    "like 7d or 36h, not '%.40s'", optarg);
				return 2;
			}
			o.half_life_ms = (double)-hl;
			break;
		case 'b':
			if (rp_parse_by(optarg, &o.by) < 0) {
				log_warnx("report: --by wants os, rawsig, class, "
				    "dnsbl or hour, not '%.40s'", optarg);
				return 2;
			}
			break;
		case 'f':
			for (i = 0; i < 4 && strcmp(optarg, formats[i]) != 0;
			    i++)
				;
			if (i == 4) {
				log_warnx("report: --format wants text, json, "
				    "csv or html, not '%.40s'", optarg);
				return 2;
			}
			fmt = i;
			break;
		case 'o':
			out = optarg;
			break;
		case 'S':
			store = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (store != NULL) {
		if (argc - optind != 0) {
			log_warnx("report: give an event log or --store, "
			    "not both");
			return 2;
		}
		if (since) {
			log_warnx("report: --since does not apply to --store: "
			    "the store keeps decayed counts, not sessions");
			return 2;
		}
		if ((rc = rp_store_run(store, &o, &rep, err,
		    sizeof(err))) < 0) {
			log_warnx("report: %s", err);
			return rc == -2 ? 2 : 1;
		}
	} else if (o.half_life_ms > 0) {
		log_warnx("report: --half-life applies to --store only");
		return 2;
	} else if (argc - optind != 1) {
		usage(stderr);
		return 2;
	} else {
		o.progress = isatty(STDERR_FILENO);
		if (rp_run(argv[optind], &o, &rep, err, sizeof(err)) < 0) {
			log_warnx("report: %s", err);
			return 1;
		}
	}
	if (rep.store && (out != NULL || fmt == 3))
		log_info("report: patience_by_os omitted: the store keeps no "
		    "per-session waits");
	else if (rep.st.garbage > 0)
		log_warnx("report: %s: %lu of %lu lines skipped as unusable",
		    argv[optind], rep.st.garbage, rep.st.lines);
	rc = 0;
	if (out != NULL && rp_write_charts(out, &rep, err, sizeof(err)) < 0) {
		log_warnx("report: %s", err);
		rc = 1;
	}
	/* With --out, html goes to DIR/index.html; the others to stdout. */
	if (rc == 0 && !(out != NULL && fmt == 3)) {
		switch (fmt) {
		case 0: rc = rp_write_text(stdout, &rep); break;
		case 1: rc = rp_write_json(stdout, &rep); break;
		case 2: rc = rp_write_csv(stdout, &rep); break;
		default: rc = rp_write_html(stdout, &rep); break;
		}
		if (fflush(stdout) != 0 || rc < 0) {
			log_warn("report: writing the report");
			rc = 1;
		}
	}
	rp_report_free(&rep);
	return rc;
}
