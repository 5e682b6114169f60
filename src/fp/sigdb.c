/*
 * sigdb.c - load p0f.fp-format signature files
 *
 * Exports sigdb_new(), sigdb_parse_buf(), sigdb_load_file(), sigdb_finish(),
 * sigdb_load_files(), sigdb_load_default() and sigdb_free(), plus the lookups
 * the matcher uses (sigdb_find_group(), sigdb_mtu_link()).
 *
 * Format: p0f 3's p0f.fp.  We read 'classes', [mtu] and [tcp:request]; the
 * other sections ([tcp:response], [http:*]) are skipped silently.  A line
 * that p0f would reject with FATAL is instead logged as "file:line: reason"
 * (log_warnx, or only counted when db->quiet) and skipped; a signature after
 * a rejected label is skipped with it.  Files load in the order given and
 * their signatures keep that order, which is the matcher's priority order.
 * A signature identical to an earlier specific one in the same file is a
 * warning (p0f: "already covered"); across files it is dropped silently.
 *
 * Memory: the struct sigdb owns every string and array in it; sigdb_free()
 * releases all.  It is an error to add to a database after sigdb_finish()
 * (the layout index would be stale) or to match against one before it.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "fp/sigdb.h"
#include "util/log.h"

#ifndef MS_DATADIR
#define MS_DATADIR "/usr/local/share/mailshaper"
#endif

#define NAME_CHARS " ./-_!?()"

enum { SEC_NONE, SEC_MTU, SEC_TCP, SEC_SKIP };
enum { ST_NEED_SECT, ST_NEED_LABEL, ST_NEED_SYS, ST_NEED_SIG };

struct parse_state {
	struct sigdb	*db;
	const char	*name;
	int		file;
	unsigned	line;
	int		section;
	int		state;
	int		label;		/* current label, -1 = none or bad */
	const char	*mtu_label;	/* current [mtu] label */
};

/* xgrow - make room for one more element in a growable array */
static int
xgrow(void **arr, size_t *cap, size_t n, size_t elem)
{
	void *p;
	size_t ncap;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 16;
	p = realloc(*arr, ncap * elem);
	if (p == NULL)
		return -1;
	*arr = p;
	*cap = ncap;
	return 0;
}

/* xstrndup - strndup that tolerates NULL-terminated input */
static char *
xstrndup(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p == NULL)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* bad_line - report one rejected line */
static void
bad_line(struct parse_state *ps, const char *reason)
{
	ps->db->nbad++;
	if (!ps->db->quiet)
		log_warnx("%s:%u: %s", ps->name, ps->line, reason);
}

/* sigdb_new - an empty database */
struct sigdb *
sigdb_new(void)
{
	struct sigdb *db = calloc(1, sizeof(*db));
	size_t i;

	if (db == NULL)
		return NULL;
	for (i = 0; i < SIGDB_BUCKETS; i++)
		db->bucket[i] = -1;
	return db;
}

/* sigdb_free - release a database and everything it owns */
void
sigdb_free(struct sigdb *db)
{
	size_t i;

	if (db == NULL)
		return;
	for (i = 0; i < db->nlabels; i++) {
		free(db->labels[i].flavor);
		free(db->labels[i].os);
	}
	for (i = 0; i < db->nmtu_labels; i++)
		free(db->mtu_labels[i]);
	for (i = 0; i < db->nclasses; i++)
		free(db->classes[i]);
	for (i = 0; i < db->nnames; i++)
		free(db->names[i]);
	for (i = 0; i < db->nfiles; i++)
		free(db->files[i]);
	for (i = 0; i < db->ngroups; i++)
		free(db->groups[i].idx);
	free(db->sigs);
	free(db->labels);
	free(db->mtus);
	free(db->mtu_labels);
	free(db->classes);
	free(db->names);
	free(db->files);
	free(db->groups);
	free(db);
}

/* push_str - append an owned copy of s[0..n) to a string array */
static int
push_str(char ***arr, size_t *n, const char *s, size_t len)
{
	char **p = realloc(*arr, (*n + 1) * sizeof(char *));

	if (p == NULL)
		return -1;
	*arr = p;
	if ((p[*n] = xstrndup(s, len)) == NULL)
		return -1;
	(*n)++;
	return 0;
}

/* parse_classes - 'classes = win,unix,other' */
static void
parse_classes(struct parse_state *ps, const char *val)
{
	struct sigdb *db = ps->db;

	while (*val) {
		const char *nxt;
		size_t i;

		while (isblank((unsigned char)*val) || *val == ',')
			val++;
		if (*val == '\0')
			break;
		nxt = val;
		while (isalnum((unsigned char)*nxt))
			nxt++;
		if (nxt == val || (*nxt && *nxt != ',' &&
		    !isblank((unsigned char)*nxt))) {
			bad_line(ps, "malformed class entry");
			return;
		}
		for (i = 0; i < db->nclasses; i++)
			if (strlen(db->classes[i]) == (size_t)(nxt - val) &&
			    strncasecmp(db->classes[i], val, nxt - val) == 0)
				break;
		if (i == db->nclasses &&
		    push_str(&db->classes, &db->nclasses, val, nxt - val) == -1) {
			bad_line(ps, "out of memory");
			return;
		}
		val = nxt;
	}
}

/* name_id - find or add an OS / application name (case-insensitive) */
static int
name_id(struct sigdb *db, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < db->nnames; i++)
		if (strncasecmp(db->names[i], name, len) == 0 &&
		    db->names[i][len] == '\0')
			return (int)i;
	if (push_str(&db->names, &db->nnames, name, len) == -1)
		return -1;
	return (int)db->nnames - 1;
}

/* parse_label - 'label = s:unix:Linux:3.11 and newer' */
static int
parse_label(struct parse_state *ps, const char *val)
{
	struct sigdb *db = ps->db;
	struct sigdb_label lb;
	const char *nxt, *name;
	size_t i, nlen;
	int nid;

	memset(&lb, 0, sizeof(lb));
	if (*val == 'g')
		lb.generic = 1;
	else if (*val != 's')
		return bad_line(ps, "label must start with s: or g:"), -1;
	if (val[1] != ':')
		return bad_line(ps, "malformed label"), -1;
	val += 2;
	nxt = val;
	while (isalnum((unsigned char)*nxt) || *nxt == '!')
		nxt++;
	if (nxt == val || *nxt != ':')
		return bad_line(ps, "malformed class in label"), -1;
	if (*val == '!' && val[1] == ':') {
		lb.class_id = -1;
	} else {
		for (i = 0; i < db->nclasses; i++)
			if (strlen(db->classes[i]) == (size_t)(nxt - val) &&
			    strncasecmp(db->classes[i], val, nxt - val) == 0)
				break;
		if (i == db->nclasses)
			return bad_line(ps, "unknown class in label"), -1;
		lb.class_id = (int)i;
	}
	val = ++nxt;
	while (isalnum((unsigned char)*nxt) ||
	    (*nxt && strchr(NAME_CHARS, *nxt)))
		nxt++;
	if (nxt == val || *nxt != ':')
		return bad_line(ps, "malformed name in label"), -1;
	name = val;
	nlen = (size_t)(nxt - val);
	if ((nid = name_id(db, name, nlen)) == -1)
		return bad_line(ps, "out of memory"), -1;
	lb.name_id = nid;
	if (nxt[1] != '\0' && (lb.flavor = strdup(nxt + 1)) == NULL)
		return bad_line(ps, "out of memory"), -1;
	if (asprintf(&lb.os, "%s%s%s", db->names[nid], lb.flavor ? " " : "",
	    lb.flavor ? lb.flavor : "") == -1) {
		free(lb.flavor);
		return bad_line(ps, "out of memory"), -1;
	}
	if (xgrow((void **)&db->labels, &db->caplabels, db->nlabels,
	    sizeof(*db->labels)) == -1) {
		free(lb.flavor);
		free(lb.os);
		return bad_line(ps, "out of memory"), -1;
	}
	db->labels[db->nlabels] = lb;
	return (int)db->nlabels++;
}

/* parse_sys - 'sys = Windows,@unix'; only checked, not kept */
static int
parse_sys(struct parse_state *ps, const char *val)
{
	while (*val) {
		const char *nxt;

		while (isblank((unsigned char)*val) || *val == ',')
			val++;
		if (*val == '\0')
			break;
		if (*val == '@')
			val++;
		nxt = val;
		while (isalnum((unsigned char)*nxt) ||
		    (*nxt && strchr(NAME_CHARS, *nxt)))
			nxt++;
		if (nxt == val || (*nxt && *nxt != ','))
			return bad_line(ps, "malformed sys entry"), -1;
		val = nxt;
	}
	return 0;
}

/* num - parse decimal digits at *p into *v; 0 if none */
static int
num(const char **p, long *v)
{
	const char *s = *p;
	long n = 0;

	if (!isdigit((unsigned char)*s))
		return 0;
	while (isdigit((unsigned char)*s)) {
		if (n < 100000)
			n = n * 10 + (*s - '0');
		s++;
	}
	*p = s;
	*v = n;
	return 1;
}

#define SIGERR(msg) do { if (err && errlen) snprintf(err, errlen, "%s", msg); \
	return -1; } while (0)

/* sigdb_parse_sig - parse one p0f [tcp] signature string into *sig */
int
sigdb_parse_sig(const char *val, struct sigdb_sig *sig, char *err,
    size_t errlen)
{
	long v, add;
	static const struct { const char *s; size_t n; uint32_t q; int no_v6;
	    int no_v4; } qt[] = {
		{ "df", 2, FP_Q_DF, 1, 0 }, { "id+", 3, FP_Q_NZ_ID, 1, 0 },
		{ "id-", 3, FP_Q_ZERO_ID, 1, 0 }, { "ecn", 3, FP_Q_ECN, 0, 0 },
		{ "0+", 2, FP_Q_NZ_MBZ, 1, 0 }, { "flow", 4, FP_Q_FLOW, 0, 1 },
		{ "seq-", 4, FP_Q_ZERO_SEQ, 0, 0 },
		{ "ack+", 4, FP_Q_NZ_ACK, 0, 0 },
		{ "ack-", 4, FP_Q_ZERO_ACK, 0, 0 },
		{ "uptr+", 5, FP_Q_NZ_URG, 0, 0 },
		{ "urgf+", 5, FP_Q_URG, 0, 0 },
		{ "pushf+", 6, FP_Q_PUSH, 0, 0 },
		{ "ts1-", 4, FP_Q_ZERO_TS1, 0, 0 },
		{ "ts2+", 4, FP_Q_NZ_TS2, 0, 0 },
		{ "opt+", 4, FP_Q_OPT_EOL_NZ, 0, 0 },
		{ "exws", 4, FP_Q_EXWS, 0, 0 }, { "bad", 3, FP_Q_OPT_BAD, 0, 0 },
	};

	memset(sig, 0, sizeof(*sig));
	/* IP version */
	switch (*val) {
	case '4': sig->ver = 4; break;
	case '6': sig->ver = 6; break;
	case '*': sig->ver = -1; break;
	default: SIGERR("unrecognized IP version");
	}
	if (val[1] != ':')
		SIGERR("malformed signature (IP version)");
	val += 2;
	/* initial TTL: N, N+D or N- */
	if (!num(&val, &v))
		SIGERR("malformed initial TTL");
	if (v < 1 || v > 255)
		SIGERR("bogus initial TTL");
	sig->ttl = (int)v;
	if (*val == '-') {
		if (val[1] != ':')
			SIGERR("malformed initial TTL");
		sig->bad_ttl = 1;
		val++;
	} else if (*val == '+') {
		val++;
		if (!num(&val, &add))
			SIGERR("malformed TTL distance");
		if (sig->ttl + add > 255)
			SIGERR("bogus initial TTL");
		sig->ttl += (int)add;
	}
	if (*val++ != ':')
		SIGERR("malformed signature (TTL)");
	/* IP option length */
	if (!num(&val, &v) || *val != ':')
		SIGERR("malformed IP option length");
	if (v > 255)
		SIGERR("bogus IP option length");
	sig->olen = (int)v;
	val++;
	/* MSS */
	if (val[0] == '*' && val[1] == ':') {
		sig->mss = -1;
		val += 2;
	} else {
		if (!num(&val, &v) || *val != ':')
			SIGERR("malformed MSS");
		if (v > 65535)
			SIGERR("bogus MSS");
		sig->mss = (int)v;
		val++;
	}
	/* window */
	if (val[0] == '*' && val[1] == ',') {
		sig->win_type = SIGDB_WIN_ANY;
		val += 2;
	} else if (*val == '%') {
		val++;
		if (!num(&val, &v) || *val != ',')
			SIGERR("malformed '%' window");
		if (v < 2 || v > 65535)
			SIGERR("bogus '%' value");
		sig->win_type = SIGDB_WIN_MOD;
		sig->win = (int)v;
		val++;
	} else if (strncmp(val, "mss*", 4) == 0 ||
	    strncmp(val, "mtu*", 4) == 0) {
		sig->win_type = val[1] == 's' ? SIGDB_WIN_MSS : SIGDB_WIN_MTU;
		val += 4;
		if (!num(&val, &v) || *val != ',')
			SIGERR("malformed MSS/MTU multiplier");
		if (v < 1 || v > 1000)
			SIGERR("bogus MSS/MTU multiplier");
		sig->win = (int)v;
		val++;
	} else {
		if (!num(&val, &v) || *val != ',')
			SIGERR("malformed window size");
		if (v > 65535)
			SIGERR("bogus window size");
		sig->win_type = SIGDB_WIN_NORMAL;
		sig->win = (int)v;
		val++;
	}
	/* window scale */
	if (val[0] == '*' && val[1] == ':') {
		sig->wscale = -1;
		val += 2;
	} else {
		if (!num(&val, &v) || *val != ':')
			SIGERR("malformed window scale");
		if (v > 255)
			SIGERR("bogus window scale");
		sig->wscale = (int)v;
		val++;
	}
	/* option layout */
	while (*val != ':') {
		if (sig->opt_cnt >= FP_MAX_OPT)
			SIGERR("too many TCP options");
		if (strncmp(val, "eol+", 4) == 0) {
			sig->layout[sig->opt_cnt++] = FP_OPT_EOL;
			val += 4;
			if (!num(&val, &v))
				SIGERR("malformed EOL option");
			if (*val != ':')
				SIGERR("EOL must be the last option");
			if (v > 255)
				SIGERR("bogus EOL padding");
			sig->eol_pad = (uint8_t)v;
		} else if (strncmp(val, "nop", 3) == 0) {
			sig->layout[sig->opt_cnt++] = FP_OPT_NOP;
			val += 3;
		} else if (strncmp(val, "mss", 3) == 0) {
			sig->layout[sig->opt_cnt++] = FP_OPT_MSS;
			val += 3;
		} else if (strncmp(val, "ws", 2) == 0) {
			sig->layout[sig->opt_cnt++] = FP_OPT_WS;
			val += 2;
		} else if (strncmp(val, "sok", 3) == 0) {
			sig->layout[sig->opt_cnt++] = FP_OPT_SOK;
			val += 3;
		} else if (strncmp(val, "sack", 4) == 0) {
			sig->layout[sig->opt_cnt++] = FP_OPT_SACK;
			val += 4;
		} else if (strncmp(val, "ts", 2) == 0) {
			sig->layout[sig->opt_cnt++] = FP_OPT_TS;
			val += 2;
		} else if (*val == '?') {
			val++;
			if (!num(&val, &v) || (*val != ':' && *val != ','))
				SIGERR("malformed '?' option");
			if (v > 255)
				SIGERR("bogus '?' option");
			sig->layout[sig->opt_cnt++] = (uint8_t)v;
		} else if (*val == '\0') {
			SIGERR("truncated signature (options)");
		} else
			SIGERR("unrecognized TCP option");
		if (*val == ':')
			break;
		if (*val != ',')
			SIGERR("malformed TCP options");
		val++;
	}
	val++;
	/* quirks */
	while (*val != ':') {
		size_t i;

		for (i = 0; i < sizeof(qt) / sizeof(qt[0]); i++)
			if (strncmp(val, qt[i].s, qt[i].n) == 0)
				break;
		if (i == sizeof(qt) / sizeof(qt[0])) {
			if (*val == '\0')
				SIGERR("truncated signature (quirks)");
			SIGERR("unrecognized quirk");
		}
		if (qt[i].no_v6 && sig->ver == 6)
			SIGERR("quirk not valid for IPv6");
		if (qt[i].no_v4 && sig->ver == 4)
			SIGERR("quirk not valid for IPv4");
		sig->quirks |= qt[i].q;
		val += qt[i].n;
		if (*val == ':')
			break;
		if (*val != ',')
			SIGERR("malformed quirks");
		val++;
	}
	val++;
	/* payload class */
	if (strcmp(val, "*") == 0)
		sig->pclass = -1;
	else if (strcmp(val, "0") == 0)
		sig->pclass = 0;
	else if (strcmp(val, "+") == 0)
		sig->pclass = 1;
	else
		SIGERR("malformed payload class");
	return 0;
}

/* same_sig - are two signatures field-for-field identical? */
static int
same_sig(const struct sigdb_sig *a, const struct sigdb_sig *b)
{
	return a->ver == b->ver && a->ttl == b->ttl &&
	    a->bad_ttl == b->bad_ttl && a->olen == b->olen &&
	    a->mss == b->mss && a->win_type == b->win_type &&
	    a->win == b->win && a->wscale == b->wscale &&
	    a->opt_cnt == b->opt_cnt && a->eol_pad == b->eol_pad &&
	    memcmp(a->layout, b->layout, a->opt_cnt) == 0 &&
	    a->quirks == b->quirks && a->pclass == b->pclass;
}

/* add_sig - parse and register a [tcp:request] signature */
static void
add_sig(struct parse_state *ps, const char *val)
{
	struct sigdb *db = ps->db;
	struct sigdb_sig sig;
	char why[96];
	size_t i;

	if (sigdb_parse_sig(val, &sig, why, sizeof(why)) == -1) {
		bad_line(ps, why);
		return;
	}
	sig.label = ps->label;
	sig.file = ps->file;
	sig.line = ps->line;
	for (i = 0; i < db->nsigs; i++) {
		const struct sigdb_sig *o = &db->sigs[i];

		if (db->labels[o->label].generic || !same_sig(o, &sig))
			continue;
		if (o->file == ps->file) {
			snprintf(why, sizeof(why),
			    "signature already covered by line %u", o->line);
			bad_line(ps, why);
		} else
			log_debug("%s:%u: signature already covered by %s:%u",
			    ps->name, ps->line, db->files[o->file], o->line);
		return;
	}
	if (xgrow((void **)&db->sigs, &db->capsigs, db->nsigs,
	    sizeof(*db->sigs)) == -1) {
		bad_line(ps, "out of memory");
		return;
	}
	db->sigs[db->nsigs++] = sig;
}

/* add_mtu - parse and register an [mtu] signature */
static void
add_mtu(struct parse_state *ps, const char *val)
{
	struct sigdb *db = ps->db;
	const char *p = val;
	long v;

	if (!num(&p, &v) || *p != '\0' || v <= 0 || v > 65535) {
		bad_line(ps, "malformed MTU value");
		return;
	}
	if (xgrow((void **)&db->mtus, &db->capmtus, db->nmtus,
	    sizeof(*db->mtus)) == -1) {
		bad_line(ps, "out of memory");
		return;
	}
	db->mtus[db->nmtus].mtu = (int)v;
	db->mtus[db->nmtus].label = ps->mtu_label;
	db->nmtus++;
}

/* parse_section - '[mtu]', '[tcp:request]' and the sections we skip */
static void
parse_section(struct parse_state *ps, const char *line)
{
	if (strcmp(line, "[mtu]") == 0)
		ps->section = SEC_MTU;
	else if (strcmp(line, "[tcp:request]") == 0)
		ps->section = SEC_TCP;
	else if (strcmp(line, "[tcp:response]") == 0 ||
	    strcmp(line, "[http:request]") == 0 ||
	    strcmp(line, "[http:response]") == 0)
		ps->section = SEC_SKIP;
	else {
		bad_line(ps, "unrecognized section");
		ps->section = SEC_SKIP;
	}
	ps->state = ST_NEED_LABEL;
	ps->label = -1;
	ps->mtu_label = NULL;
}

/* parse_line - one non-comment line, already trimmed */
static void
parse_line(struct parse_state *ps, char *line)
{
	char *val, *eon;

	if (*line == '[') {
		parse_section(ps, line);
		return;
	}
	val = line;
	while (isalpha((unsigned char)*val) || *val == '_')
		val++;
	eon = val;
	while (isblank((unsigned char)*val))
		val++;
	if (val == line || *val != '=') {
		bad_line(ps, "unexpected statement");
		return;
	}
	val++;
	while (isblank((unsigned char)*val))
		val++;
	*eon = '\0';

	if (strcmp(line, "classes") == 0) {
		if (ps->state != ST_NEED_SECT)
			bad_line(ps, "misplaced 'classes'");
		else
			parse_classes(ps, val);
		return;
	}
	if (ps->section == SEC_SKIP)
		return;
	if (strcmp(line, "label") == 0) {
		if (ps->state == ST_NEED_SECT) {
			bad_line(ps, "misplaced 'label'");
			return;
		}
		if (ps->section == SEC_MTU) {
			if (*val == '\0' || push_str(&ps->db->mtu_labels,
			    &ps->db->nmtu_labels, val, strlen(val)) == -1) {
				bad_line(ps, "empty MTU label");
				ps->mtu_label = NULL;
				ps->state = ST_NEED_SIG;
				return;
			}
			ps->mtu_label =
			    ps->db->mtu_labels[ps->db->nmtu_labels - 1];
			ps->state = ST_NEED_SIG;
			return;
		}
		ps->label = parse_label(ps, val);
		if (ps->label >= 0 && ps->db->labels[ps->label].class_id < 0)
			ps->state = ST_NEED_SYS;
		else
			ps->state = ST_NEED_SIG;
		return;
	}
	if (strcmp(line, "sys") == 0) {
		if (ps->state != ST_NEED_SYS) {
			bad_line(ps, "misplaced 'sys'");
			return;
		}
		parse_sys(ps, val);
		ps->state = ST_NEED_SIG;
		return;
	}
	if (strcmp(line, "sig") == 0) {
		if (ps->state != ST_NEED_SIG) {
			if (ps->state == ST_NEED_SYS && ps->label >= 0)
				bad_line(ps, "misplaced 'sig' (need 'sys')");
			else
				bad_line(ps, "misplaced 'sig'");
			return;
		}
		if (ps->section == SEC_MTU) {
			if (ps->mtu_label == NULL)
				bad_line(ps, "MTU signature without a label");
			else
				add_mtu(ps, val);
		} else if (ps->label < 0)
			bad_line(ps, "signature under a rejected label");
		else
			add_sig(ps, val);
		return;
	}
	bad_line(ps, "unrecognized field");
}

/* sigdb_parse_buf - parse one file's text; returns the bad-line count */
int
sigdb_parse_buf(struct sigdb *db, const char *name, const char *buf,
    size_t len)
{
	struct parse_state ps;
	char line[SIGDB_LINE_MAX + 1];
	unsigned before = db->nbad;
	size_t pos = 0;

	memset(&ps, 0, sizeof(ps));
	ps.db = db;
	ps.label = -1;
	if (push_str(&db->files, &db->nfiles, name, strlen(name)) == -1)
		return -1;
	ps.name = db->files[db->nfiles - 1];
	ps.file = (int)db->nfiles - 1;
	ps.section = SEC_NONE;
	ps.state = ST_NEED_SECT;

	while (pos < len) {
		size_t s = pos, e, n;
		char *l;

		while (pos < len && buf[pos] != '\n')
			pos++;
		e = pos;
		pos++;		/* skip '\n' */
		ps.line++;
		while (s < e && isspace((unsigned char)buf[s]))
			s++;
		while (e > s && isspace((unsigned char)buf[e - 1]))
			e--;
		if (s == e || buf[s] == ';')
			continue;
		n = e - s;
		if (n > SIGDB_LINE_MAX) {
			bad_line(&ps, "line too long");
			continue;
		}
		memcpy(line, buf + s, n);
		line[n] = '\0';
		if (memchr(line, '\0', n) != NULL) {
			bad_line(&ps, "NUL byte in line");
			continue;
		}
		l = line;
		parse_line(&ps, l);
	}
	return (int)(db->nbad - before);
}

/* sigdb_load_file - read and parse one file; -1 + err if unreadable */
int
sigdb_load_file(struct sigdb *db, const char *path, char *err, size_t errlen)
{
	FILE *f;
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (len + 4096 > cap) {
			char *p;

			cap = cap ? cap * 2 : 65536;
			if ((p = realloc(buf, cap)) == NULL) {
				free(buf);
				fclose(f);
				snprintf(err, errlen, "%s: out of memory", path);
				return -1;
			}
			buf = p;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	sigdb_parse_buf(db, path, buf, len);
	free(buf);
	return 0;
}

/* sigdb_layout_hash - FNV-1a over the option count and layout */
uint32_t
sigdb_layout_hash(const uint8_t *layout, size_t n)
{
	uint32_t h = 2166136261u;
	size_t i;

	h = (h ^ (uint32_t)n) * 16777619u;
	for (i = 0; i < n; i++)
		h = (h ^ layout[i]) * 16777619u;
	return h;
}

/* sigdb_find_group - the signatures sharing an option layout, or NULL */
const struct sigdb_group *
sigdb_find_group(const struct sigdb *db, const uint8_t *layout, size_t n)
{
	uint32_t h = sigdb_layout_hash(layout, n);
	int g;

	for (g = db->bucket[h % SIGDB_BUCKETS]; g != -1;
	    g = db->groups[g].next) {
		const struct sigdb_group *gr = &db->groups[g];

		if (gr->hash == h && gr->opt_cnt == n &&
		    memcmp(gr->layout, layout, n) == 0)
			return gr;
	}
	return NULL;
}

/* sigdb_finish - build the layout index; call once after loading */
int
sigdb_finish(struct sigdb *db, char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < db->nsigs; i++) {
		const struct sigdb_sig *s = &db->sigs[i];
		const struct sigdb_group *found;
		struct sigdb_group *gr;
		uint32_t h = sigdb_layout_hash(s->layout, s->opt_cnt);
		int g = -1;

		found = sigdb_find_group(db, s->layout, s->opt_cnt);
		if (found != NULL)
			g = (int)(found - db->groups);

		if (g == -1) {
			gr = realloc(db->groups,
			    (db->ngroups + 1) * sizeof(*gr));
			if (gr == NULL)
				goto oom;
			db->groups = gr;
			g = (int)db->ngroups++;
			gr = &db->groups[g];
			memset(gr, 0, sizeof(*gr));
			memcpy(gr->layout, s->layout, s->opt_cnt);
			gr->opt_cnt = s->opt_cnt;
			gr->hash = h;
			gr->next = db->bucket[h % SIGDB_BUCKETS];
			db->bucket[h % SIGDB_BUCKETS] = g;
		}
		gr = &db->groups[g];
		if (xgrow((void **)&gr->idx, &gr->cap, gr->n,
		    sizeof(*gr->idx)) == -1)
			goto oom;
		gr->idx[gr->n++] = (uint32_t)i;
	}
	return 0;
oom:
	snprintf(err, errlen, "out of memory building the signature index");
	return -1;
}

/* sigdb_mtu_link - link type for an MTU, first match in file order */
const char *
sigdb_mtu_link(const struct sigdb *db, int mtu)
{
	size_t i;

	for (i = 0; i < db->nmtus; i++)
		if (db->mtus[i].mtu == mtu)
			return db->mtus[i].label;
	return NULL;
}

/* sigdb_load_files - load several files in order into a new database */
struct sigdb *
sigdb_load_files(const char *const *paths, size_t n, char *err, size_t errlen)
{
	struct sigdb *db;
	char why[512];
	size_t i, ok = 0;

	if ((db = sigdb_new()) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (i = 0; i < n; i++) {
		if (sigdb_load_file(db, paths[i], why, sizeof(why)) == -1) {
			log_warnx("signature file %s", why);
			snprintf(err, errlen, "%s", why);
			continue;
		}
		ok++;
	}
	if (ok == 0) {
		if (n == 0)
			snprintf(err, errlen, "no signature file given");
		sigdb_free(db);
		return NULL;
	}
	if (sigdb_finish(db, err, errlen) == -1) {
		sigdb_free(db);
		return NULL;
	}
	return db;
}

/* file_ok - is path a readable file? */
static int
file_ok(const char *path)
{
	return access(path, R_OK) == 0;
}

/* sigdb_default_paths - ours (beside the binary or MS_DATADIR), then p0f's */
size_t
sigdb_default_paths(const char **paths, size_t max)
{
	static char exe_rel[2][PATH_MAX + 64];
	char exe[PATH_MAX];
	ssize_t r;
	size_t n = 0;

	if (max == 0)
		return 0;
	r = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (r > 0) {
		char *slash;

		exe[r] = '\0';
		if ((slash = strrchr(exe, '/')) != NULL)
			*slash = '\0';
		snprintf(exe_rel[0], sizeof(exe_rel[0]),
		    "%s/../data/mailshaper.fp", exe);
		snprintf(exe_rel[1], sizeof(exe_rel[1]),
		    "%s/../../data/mailshaper.fp", exe);
		if (file_ok(exe_rel[0]))
			paths[n++] = exe_rel[0];
		else if (file_ok(exe_rel[1]))
			paths[n++] = exe_rel[1];
	}
	if (n == 0 && file_ok(MS_DATADIR "/mailshaper.fp"))
		paths[n++] = MS_DATADIR "/mailshaper.fp";
	if (n < max && file_ok("/etc/p0f/p0f.fp"))
		paths[n++] = "/etc/p0f/p0f.fp";
	return n;
}

/* sigdb_load_default - load the default list: ours, then /etc/p0f/p0f.fp */
struct sigdb *
sigdb_load_default(char *err, size_t errlen)
{
	const char *paths[2];
	size_t n = sigdb_default_paths(paths, 2);

	if (n == 0) {
		snprintf(err, errlen, "no signature file found (looked for "
		    "data/mailshaper.fp beside the binary, %s/mailshaper.fp "
		    "and /etc/p0f/p0f.fp)", MS_DATADIR);
		return NULL;
	}
	return sigdb_load_files(paths, n, err, errlen);
}
