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
 * Everything else is optional and reads as NULL, INT64_MIN or -1.  A
 * session's DNS list zones are sorted and joined only with EVR_R_ZONES
 * (dnsbl_asked is read either way).
 *
 * Memory: nothing is allocated.  The record's strings point into the
 * caller's struct jl_doc and are valid until its next jl_parse(); it is an
 * error to keep them longer.
 */
#include <stdint.h>
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

/* The members a record is read from; one walk finds them all. */
enum evr_field {
	F_TYPE, F_SESSION, F_ID, F_OUTCOME, F_TIME, F_CLIENT_IP, F_OS,
	F_RAW_SIG, F_CLASS, F_START, F_END, F_FP, F_DNSBL, F_MESSAGES,
	F_GAVE_UP, F_MESSAGE, F_VERDICT, F_CONTROL, F_N
};

#define K(s)	{ s, sizeof(s) - 1 }
static const struct {
	const char *name;
	uint32_t len;
} fields[F_N] = {
	[F_TYPE] = K("type"), [F_SESSION] = K("session"), [F_ID] = K("id"),
	[F_OUTCOME] = K("outcome"), [F_TIME] = K("time"),
	[F_CLIENT_IP] = K("client_ip"), [F_OS] = K("os"),
	[F_RAW_SIG] = K("raw_sig"), [F_CLASS] = K("class"),
	[F_START] = K("start"), [F_END] = K("end"), [F_FP] = K("fp"),
	[F_DNSBL] = K("dnsbl"), [F_MESSAGES] = K("messages"),
	[F_GAVE_UP] = K("gave_up_after_s"), [F_MESSAGE] = K("message"),
	[F_VERDICT] = K("verdict"), [F_CONTROL] = K("control"),
};
#undef K

/* The fields of each name length (the names are at most 15 bytes), each
 * row ended by -1. */
static const signed char bylen[16][7] = {
	{ -1 }, { -1 },
	{ F_ID, F_OS, F_FP, -1 },
	{ F_END, -1 },
	{ F_TYPE, F_TIME, -1 },
	{ F_CLASS, F_START, F_DNSBL, -1 },
	{ -1 },
	{ F_SESSION, F_OUTCOME, F_RAW_SIG, F_MESSAGE, F_VERDICT, F_CONTROL,
	    -1 },
	{ F_MESSAGES, -1 },
	{ F_CLIENT_IP, -1 },
	{ -1 }, { -1 }, { -1 }, { -1 }, { -1 },
	{ F_GAVE_UP, -1 },
};

/* walk - the first member of obj with each field's name (as jl_get()) */
static void
walk(const struct jl_doc *d, const struct jl_val *obj,
    const struct jl_val *v[F_N])
{
	const struct jl_val *m;
	const signed char *c;
	const char *k;

	memset(v, 0, sizeof(v[0]) * F_N);
	for (m = jl_first(d, obj); m != NULL; m = jl_next(d, m)) {
		if (m->klen >= 16)
			continue;
		k = d->str + m->key;
		for (c = bylen[m->klen]; *c >= 0; c++)
			if (fields[*c].len == m->klen &&
			    k[0] == fields[*c].name[0] &&
			    memcmp(k, fields[*c].name, m->klen) == 0) {
				if (v[*c] == NULL)
					v[*c] = m;
				break;
			}
	}
}

/* read_message - the message record of root; 0 or -1 with err */
static int
read_message(const struct jl_doc *d, const struct jl_val *const v[F_N],
    unsigned flags, struct evr_rmessage *m, char *err, size_t errlen)
{
	const char *oc;
	int	i;

	m->session = jl_str(d, v[F_SESSION]);
	m->id = jl_str(d, v[F_ID]);
	oc = jl_str(d, v[F_OUTCOME]);
	if (m->session == NULL || (m->id == NULL && (flags & EVR_R_MSG_ID)) ||
	    oc == NULL) {
		snprintf(err, errlen, "message record without a string '%s'",
		    m->session == NULL ? "session" : m->id == NULL &&
		    (flags & EVR_R_MSG_ID) ? "id" : "outcome");
		return -1;
	}
	if (evr_time_ms(jl_str(d, v[F_TIME]), &m->time_ms) < 0) {
		snprintf(err, errlen, "message record without a valid 'time'");
		return -1;
	}
	i = outcome_parse(oc);
	m->outcome = i >= 0 && (outcome_flags((enum outcome)i) & OC_F_MSG) ?
	    (enum outcome)i : OC_NONE;
	m->client_ip = jl_str(d, v[F_CLIENT_IP]);
	m->os = jl_str(d, v[F_OS]);
	m->raw_sig = jl_str(d, v[F_RAW_SIG]);
	m->class_name = jl_str(d, v[F_CLASS]);
	return 0;
}

/* read_session - the session record of root; 0 or -1 with err */
static int
read_session(const struct jl_doc *d, const struct jl_val *const v[F_N],
    unsigned flags, struct evr_rsession *s, char *err, size_t errlen)
{
	const struct jl_val *fp, *n;
	int	i;

	if ((s->id = jl_str(d, v[F_ID])) == NULL) {
		snprintf(err, errlen, "session record without a string 'id'");
		return -1;
	}
	if (evr_time_ms(jl_str(d, v[F_START]), &s->start_ms) < 0) {
		if (flags & EVR_R_SESS_START) {
			snprintf(err, errlen, "session record without a valid "
			    "'start'");
			return -1;
		}
		s->start_ms = INT64_MIN;
	}
	if (evr_time_ms(jl_str(d, v[F_END]), &s->end_ms) < 0)
		s->end_ms = INT64_MIN;
	s->client_ip = jl_str(d, v[F_CLIENT_IP]);
	s->class_name = jl_str(d, v[F_CLASS]);
	s->control = v[F_CONTROL] != NULL && v[F_CONTROL]->type == JL_TRUE;
	fp = v[F_FP];
	s->fp = fp != NULL && fp->type == JL_OBJ;
	s->fp_os = jl_get_str(d, fp, "os");
	s->fp_key = jl_get_str(d, fp, "key");
	s->fp_raw_sig = jl_get_str(d, fp, "raw_sig");
	if (flags & EVR_R_ZONES)
		s->dnsbl_asked = evr_dnsbl_zones(d, v[F_DNSBL], s->dnsbl_zones,
		    sizeof(s->dnsbl_zones)) == 0;
	else {
		s->dnsbl_asked = v[F_DNSBL] != NULL &&
		    v[F_DNSBL]->type == JL_OBJ;
		s->dnsbl_zones[0] = '\0';
	}
	i = outcome_parse(jl_str(d, v[F_OUTCOME]));
	s->outcome = i >= 0 && (outcome_flags((enum outcome)i) & OC_F_SESS) ?
	    (enum outcome)i : OC_NONE;
	n = v[F_MESSAGES];
	s->has_messages = n != NULL && n->type == JL_NUM;
	s->messages = s->has_messages ? n->num : 0;
	n = v[F_GAVE_UP];
	s->gave_up_after_s = n != NULL && n->type == JL_NUM && n->num >= 0 ?
	    n->num : -1;
	return 0;
}

/* read_feedback - the feedback record of root; 0 or -1 with err */
static int
read_feedback(const struct jl_doc *d, const struct jl_val *const v[F_N],
    struct evr_rfeedback *f, char *err, size_t errlen)
{
	const struct jl_val *mv = v[F_MESSAGE];
	int	vd;

	f->session = jl_str(d, v[F_SESSION]);
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
	vd = outcome_parse(jl_str(d, v[F_VERDICT]));
	if (vd != OC_SPAM && vd != OC_HAM) {
		snprintf(err, errlen, "feedback record without a 'verdict' of "
		    "\"spam\" or \"ham\"");
		return -1;
	}
	f->verdict = (enum outcome)vd;
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
	const struct jl_val *v[F_N];
	const char *type;
	int	rc = 0;

	if (root == NULL || root->type != JL_OBJ) {
		snprintf(err, errlen, "not a JSON object");
		return -1;
	}
	walk(d, root, v);
	if ((type = jl_str(d, v[F_TYPE])) == NULL) {
		snprintf(err, errlen, "record without a string 'type'");
		return -1;
	}
	rec->type = EVR_OTHER;
	if (strcmp(type, "message") == 0 && (flags & EVR_R_MESSAGE)) {
		rec->type = EVR_MESSAGE;
		rc = read_message(d, v, flags, &rec->u.m, err, errlen);
	} else if (strcmp(type, "session") == 0 && (flags & EVR_R_SESSION)) {
		rec->type = EVR_SESSION;
		rc = read_session(d, v, flags, &rec->u.s, err, errlen);
	} else if (strcmp(type, "feedback") == 0 &&
	    (flags & EVR_R_FEEDBACK)) {
		rec->type = EVR_FEEDBACK;
		rc = read_feedback(d, v, &rec->u.f, err, errlen);
	}
	return rc < 0 ? -1 : (int)rec->type;
}
