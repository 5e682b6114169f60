/*
 * evrec_read.c - the event-log record reader
 *
 * Exports evr_read(), evr_time_ms() and evr_dnsbl_zones().  evr_read()
 * turns one parsed JSON line into a struct evr_rec: the session and
 * message records of evrec_write.c and the feedback records of `mailshaper
 * feedback`, with outcomes and verdicts as enum outcome (outcome_parse()),
 * never as strings.  It reads only the types the caller asks for; any
 * other record, of whatever type, is EVR_OTHER and not checked.
 *
 * What a record must carry, else it is unusable (-1, and err says why in
 * the words `report` and `evaluate` have always warned with):
 *  - any: be an object with a string "type";
 *  - message: strings "session", "id" (with EVR_R_MSG_ID) and "outcome",
 *    then a valid RFC 3339 "time";
 *  - session: a string "id", then a valid "start" (with EVR_R_SESS_START);
 *  - feedback: a string "session" or "message", a "message" that is a
 *    string or null, and a "verdict" of "spam" or "ham".
 * Everything else is optional and reads as NULL, INT64_MIN or -1.
 *
 * Memory: nothing is allocated.  The record's strings point into the
 * caller's struct jl_doc and are valid until its next jl_parse(); it is an
 * error to keep them longer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/evread.h"
#include "util/jsonl.h"

/* days_from_civil - days since 1970-01-01 (Howard Hinnant's algorithm) */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* digits - n decimal digits at s; -1 if not */
static int
digits(const char *s, int n)
{
	int v = 0;

	while (n--) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s++ - '0');
	}
	return v;
}

/* evr_time_ms - RFC 3339 to Unix milliseconds; 0 or -1 */
int
evr_time_ms(const char *s, int64_t *ms)
{
	int Y, M, D, h, m, sec, frac = 0, scale = 100, oh, om;
	int64_t t;

	if (s == NULL || strlen(s) < 20)
		return -1;
	if ((Y = digits(s, 4)) < 0 || s[4] != '-' ||
	    (M = digits(s + 5, 2)) < 1 || M > 12 || s[7] != '-' ||
	    (D = digits(s + 8, 2)) < 1 || D > 31 ||
	    (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    (h = digits(s + 11, 2)) < 0 || h > 23 || s[13] != ':' ||
	    (m = digits(s + 14, 2)) < 0 || m > 59 || s[16] != ':' ||
	    (sec = digits(s + 17, 2)) < 0 || sec > 60)
		return -1;
	s += 19;
	if (*s == '.') {
		s++;
		if (*s < '0' || *s > '9')
			return -1;
		for (; *s >= '0' && *s <= '9'; s++) {
			frac += (*s - '0') * scale;
			scale /= 10;
		}
	}
	t = (days_from_civil(Y, (unsigned)M, (unsigned)D) * 86400 +
	    h * 3600 + m * 60 + sec) * 1000 + frac;
	if ((*s == 'Z' || *s == 'z') && s[1] == '\0') {
		*ms = t;
		return 0;
	}
	if ((*s == '+' || *s == '-') && (oh = digits(s + 1, 2)) >= 0 &&
	    oh < 24 && s[3] == ':' && (om = digits(s + 4, 2)) >= 0 &&
	    om < 60 && s[6] == '\0') {
		t -= (*s == '+' ? 1 : -1) * (int64_t)(oh * 3600 + om * 60) *
		    1000;
		*ms = t;
		return 0;
	}
	return -1;
}

/* zone_cmp - qsort order for zone names */
static int
zone_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * evr_dnsbl_zones - a session's "dnsbl" object as its listing zones,
 * sorted, unique and comma-separated ("" when no list listed it); -1 when
 * no list was asked (null or not an object).  Zones that do not fit in
 * len are left out; at most EVR_MAX_ZONES are read.
 */
int
evr_dnsbl_zones(const struct jl_doc *d, const struct jl_val *dn, char *out,
    size_t len)
{
	const char *z[EVR_MAX_ZONES];
	const struct jl_val *h;
	size_t	o = 0, n;
	int	nz = 0, i;

	if (len > 0)
		out[0] = '\0';
	if (dn == NULL || dn->type != JL_OBJ)
		return -1;
	for (h = jl_first(d, jl_get(d, dn, "hits")); h != NULL &&
	    nz < EVR_MAX_ZONES; h = jl_next(d, h))
		if ((z[nz] = jl_get_str(d, h, "zone")) != NULL)
			nz++;
	qsort(z, (size_t)nz, sizeof(z[0]), zone_cmp);
	for (i = 0; i < nz; i++) {
		if (i > 0 && strcmp(z[i], z[i - 1]) == 0)
			continue;
		n = strlen(z[i]);
		if (o + n + 2 > len)
			break;
		if (o > 0)
			out[o++] = ',';
		memcpy(out + o, z[i], n);
		o += n;
		out[o] = '\0';
	}
	return 0;
}

/* read_message - the message record of root; 0 or -1 with err */
static int
read_message(const struct jl_doc *d, const struct jl_val *r, unsigned flags,
    struct evr_rmessage *m, char *err, size_t errlen)
{
	const char *oc;
	int	i;

	m->session = jl_get_str(d, r, "session");
	m->id = jl_get_str(d, r, "id");
	oc = jl_get_str(d, r, "outcome");
	if (m->session == NULL || (m->id == NULL && (flags & EVR_R_MSG_ID)) ||
	    oc == NULL) {
		snprintf(err, errlen, "message record without a string '%s'",
		    m->session == NULL ? "session" : m->id == NULL &&
		    (flags & EVR_R_MSG_ID) ? "id" : "outcome");
		return -1;
	}
	if (evr_time_ms(jl_get_str(d, r, "time"), &m->time_ms) < 0) {
		snprintf(err, errlen, "message record without a valid 'time'");
		return -1;
	}
	i = outcome_parse(oc);
	m->outcome = i >= 0 && (outcome_flags((enum outcome)i) & OC_F_MSG) ?
	    (enum outcome)i : OC_NONE;
	m->client_ip = jl_get_str(d, r, "client_ip");
	m->os = jl_get_str(d, r, "os");
	m->raw_sig = jl_get_str(d, r, "raw_sig");
	m->class_name = jl_get_str(d, r, "class");
	return 0;
}

/* read_session - the session record of root; 0 or -1 with err */
static int
read_session(const struct jl_doc *d, const struct jl_val *r, unsigned flags,
    struct evr_rsession *s, char *err, size_t errlen)
{
	const struct jl_val *fp, *v;
	int	i;

	if ((s->id = jl_get_str(d, r, "id")) == NULL) {
		snprintf(err, errlen, "session record without a string 'id'");
		return -1;
	}
	if (evr_time_ms(jl_get_str(d, r, "start"), &s->start_ms) < 0) {
		if (flags & EVR_R_SESS_START) {
			snprintf(err, errlen, "session record without a valid "
			    "'start'");
			return -1;
		}
		s->start_ms = INT64_MIN;
	}
	if (evr_time_ms(jl_get_str(d, r, "end"), &s->end_ms) < 0)
		s->end_ms = INT64_MIN;
	s->client_ip = jl_get_str(d, r, "client_ip");
	s->class_name = jl_get_str(d, r, "class");
	fp = jl_get(d, r, "fp");
	s->fp = fp != NULL && fp->type == JL_OBJ;
	s->fp_os = jl_get_str(d, fp, "os");
	s->fp_key = jl_get_str(d, fp, "key");
	s->fp_raw_sig = jl_get_str(d, fp, "raw_sig");
	s->dnsbl_asked = evr_dnsbl_zones(d, jl_get(d, r, "dnsbl"),
	    s->dnsbl_zones, sizeof(s->dnsbl_zones)) == 0;
	i = outcome_parse(jl_get_str(d, r, "outcome"));
	s->outcome = i >= 0 && (outcome_flags((enum outcome)i) & OC_F_SESS) ?
	    (enum outcome)i : OC_NONE;
	v = jl_get(d, r, "messages");
	s->has_messages = v != NULL && v->type == JL_NUM;
	s->messages = s->has_messages ? v->num : 0;
	v = jl_get(d, r, "gave_up_after_s");
	s->gave_up_after_s = v != NULL && v->type == JL_NUM && v->num >= 0 ?
	    v->num : -1;
	return 0;
}

/* read_feedback - the feedback record of root; 0 or -1 with err */
static int
read_feedback(const struct jl_doc *d, const struct jl_val *r,
    struct evr_rfeedback *f, char *err, size_t errlen)
{
	const struct jl_val *mv = jl_get(d, r, "message");
	int	v;

	f->session = jl_get_str(d, r, "session");
	f->message = jl_str(d, mv);
	if (f->session == NULL && f->message == NULL) {
		snprintf(err, errlen, "feedback record without a string "
		    "'session'");
		return -1;
	}
	if (mv != NULL && mv->type != JL_NULL && f->message == NULL) {
		snprintf(err, errlen, "feedback record whose 'message' is "
		    "neither a string nor null");
		return -1;
	}
	v = outcome_parse(jl_get_str(d, r, "verdict"));
	if (v != OC_SPAM && v != OC_HAM) {
		snprintf(err, errlen, "feedback record without a 'verdict' of "
		    "\"spam\" or \"ham\"");
		return -1;
	}
	f->verdict = (enum outcome)v;
	return 0;
}

/*
 * evr_read - the record of a parsed line (root), if of a type flags asks
 * for: rec->type, else EVR_OTHER; -1 with err when it is unusable
 */
int
evr_read(const struct jl_doc *d, const struct jl_val *root, unsigned flags,
    struct evr_rec *rec, char *err, size_t errlen)
{
	const char *type;
	int	rc = 0;

	if (root == NULL || root->type != JL_OBJ) {
		snprintf(err, errlen, "not a JSON object");
		return -1;
	}
	if ((type = jl_get_str(d, root, "type")) == NULL) {
		snprintf(err, errlen, "record without a string 'type'");
		return -1;
	}
	rec->type = EVR_OTHER;
	if (strcmp(type, "message") == 0 && (flags & EVR_R_MESSAGE)) {
		rec->type = EVR_MESSAGE;
		rc = read_message(d, root, flags, &rec->u.m, err, errlen);
	} else if (strcmp(type, "session") == 0 && (flags & EVR_R_SESSION)) {
		rec->type = EVR_SESSION;
		rc = read_session(d, root, flags, &rec->u.s, err, errlen);
	} else if (strcmp(type, "feedback") == 0 &&
	    (flags & EVR_R_FEEDBACK)) {
		rec->type = EVR_FEEDBACK;
		rc = read_feedback(d, root, &rec->u.f, err, errlen);
	}
	return rc < 0 ? -1 : (int)rec->type;
}
