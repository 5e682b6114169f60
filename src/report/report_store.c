/*
 * report_store.c - `mailshaper report --store URL`: the report tables from
 * the reputation store instead of an event log
 *
 * Exports rp_store_run().  URL is a daemon rep_store value: sqlite:/path,
 * redis://host[:port] or redis+unix:/path (rep_store.h's parsers check it).
 * The store is only read: SQLite is opened with SQLITE_OPEN_READONLY and
 * read with one SELECT of the os and rawsig rows (an outcome column that a
 * file from an older version lacks reads as 0); Redis is walked with
 * SCAN MATCH mailshaper:rep:* COUNT 1000 and each batch's os and rawsig
 * hashes are read with one pipeline of HGETALLs (never KEYS, never a
 * script).  The ip keys are only counted.
 *
 * Each os key becomes one group of the OS table and each rawsig key one
 * group of the raw-signature table; its counts are decayed from the key's
 * t to o->now_ms (rep_now() when 0) with rep_decay() and o->half_life_ms,
 * and estimated with rep_estimate().  The store keeps no sessions, senders
 * or waits: those figures stay 0 and rp_report.store = 1 tells the
 * writers to show them as unknown (doc/internals/report.md, "--store").
 *
 * Memory: bounded by the os and rawsig keys (one rp_group each) and one
 * SCAN batch.  rep is filled as by rp_run() and freed by rp_report_free().
 * It is an error to pass an rp_opts whose by is not RP_BY_OS or
 * RP_BY_RAWSIG: the store has no class, dnsbl or hour keys.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>
#include <sqlite3.h>

#include "rep/rep.h"
#include "rep/rep_store.h"
#include "report/report.h"
#include "util/strmap.h"

#define RS_PREFIX	"mailshaper:rep:"	/* rep_redis.c's key names */
#define RS_SCAN_COUNT	1000		/* SCAN COUNT hint, keys per batch */
#define RS_CONNECT_S	2		/* Redis connect timeout */
#define RS_REPLY_S	10		/* Redis reply timeout */

/* The kinds read, by their rep_kinds[] names: which = the index here. */
static const enum rep_keykind rs_kinds[2] = { REPK_OS, REPK_RAWSIG };
#define RS_COUNTED	REPK_IP		/* keys only counted */

/* What is read: the os and rawsig groups by label, and a count. */
struct rs {
	const struct rp_opts *o;
	struct strmap map[2];	/* 0 = os, 1 = rawsig: label -> rp_group */
	uint64_t ip_keys;
	int64_t	now_ms;
	double	half_life;	/* ms */
};

/* rs_add - one key's stored counts at t, decayed to now; 0 or -1 (OOM) */
static int
rs_add(struct rs *s, int which, const char *label, size_t len, int64_t t,
    const double c[OC_NLEARN])
{
	double	d[OC_NLEARN], f;
	struct strmap_ent *e;
	struct rp_group *g;
	int	i;

	if (strmap_insert(&s->map[which], label, len, &e) < 0)
		return -1;
	if (e->p != NULL)
		return 0;		/* SCAN may return a key twice */
	if ((g = calloc(1, sizeof(*g))) == NULL) {
		strmap_del(&s->map[which], e);
		return -1;
	}
	e->p = g;
	f = rep_decay(s->half_life, s->now_ms - t);
	for (i = 0; i < OC_NLEARN; i++)
		d[i] = c[i] > 0 ? c[i] * f : 0;
	rep_estimate(d, &g->est);
	g->updated_ms = t > 0 ? t : 1;
	return 0;
}

/* rs_cmp - most attempts first, then evidence, then label */
static int
rs_cmp(const void *a, const void *b)
{
	const struct rp_group *x = a, *y = b;
	double	ax = rp_store_attempts(x), ay = rp_store_attempts(y);

	if (ax != ay)
		return ax < ay ? 1 : -1;
	if (x->est.evidence != y->est.evidence)
		return x->est.evidence < y->est.evidence ? 1 : -1;
	return strcmp(x->label, y->label);
}

/* rs_table - a sorted table of a map's groups (the map keeps its own) */
static int
rs_table(const struct strmap *m, enum rp_by by, struct rp_table *t)
{
	const struct strmap_ent *e;
	size_t	n = 0;

	t->by = by;
	t->n = 0;
	if ((t->g = calloc(m->n ? m->n : 1, sizeof(*t->g))) == NULL)
		return -1;
	for (e = strmap_next(m, NULL); e != NULL; e = strmap_next(m, e)) {
		t->g[n] = *(const struct rp_group *)e->p;
		if ((t->g[n].label = strdup(e->key)) == NULL)
			return -1;
		t->n = ++n;
	}
	qsort(t->g, n, sizeof(*t->g), rs_cmp);
	return 0;
}

/*
 * SQLite.
 */

/*
 * rs_sqlite_query - the SELECT of the os and rawsig rows: one column per
 * outcome, 0 for an outcome column the table lacks (a file an older daemon
 * wrote and no newer one has opened yet: it cannot be upgraded read-only)
 */
static void
rs_sqlite_query(sqlite3 *db, char *q, size_t len)
{
	sqlite3_stmt *st = NULL;
	const char *name;
	int	have[OC_NLEARN] = { 0 }, j;
	size_t	n;

	if (sqlite3_prepare_v2(db, "PRAGMA table_info(rep)", -1, &st, NULL) ==
	    SQLITE_OK)
		while (sqlite3_step(st) == SQLITE_ROW)
			if ((name = (const char *)sqlite3_column_text(st, 1)) !=
			    NULL)
				for (j = 0; j < OC_NLEARN; j++)
					if (strcmp(name, outcome_name(
					    (enum outcome)j)) == 0)
						have[j] = 1;
	sqlite3_finalize(st);
	n = (size_t)snprintf(q, len, "SELECT kind, key, t");
	for (j = 0; j < OC_NLEARN && n < len; j++)
		n += (size_t)snprintf(q + n, len - n, ", %s", have[j] ?
		    outcome_name((enum outcome)j) : "0");
	if (n < len)
		snprintf(q + n, len - n, " FROM rep WHERE kind IN ('%s', "
		    "'%s')", rep_keykind_name(rs_kinds[0]),
		    rep_keykind_name(rs_kinds[1]));
}

/* rs_sqlite - the os and rawsig rows, and the number of ip rows */
static int
rs_sqlite(struct rs *s, const char *path, char *err, size_t errlen)
{
	char	q[512];
	sqlite3_stmt *st = NULL;
	const char *kind, *key;
	double	c[OC_NLEARN];
	struct stat sb;
	sqlite3 *db = NULL;
	int	rc, i, ret = -1;

	/* READONLY never creates the file; say plainly when it is not there. */
	if (stat(path, &sb) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (S_ISDIR(sb.st_mode)) {
		snprintf(err, errlen, "%s: is a directory", path);
		return -1;
	}
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK)
		goto fail;
	sqlite3_busy_timeout(db, 2000);
	rs_sqlite_query(db, q, sizeof(q));
	if (sqlite3_prepare_v2(db, q, -1, &st, NULL) != SQLITE_OK) {
		if (sqlite3_errcode(db) == SQLITE_ERROR &&
		    strstr(sqlite3_errmsg(db), "no such") != NULL) {
			snprintf(err, errlen, "%s: not a mailshaper reputation "
			    "store (%s)", path, sqlite3_errmsg(db));
			goto out;
		}
		goto fail;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		kind = (const char *)sqlite3_column_text(st, 0);
		key = (const char *)sqlite3_column_text(st, 1);
		if (kind == NULL || key == NULL || *key == '\0')
			continue;
		for (i = 0; i < OC_NLEARN; i++)
			c[i] = sqlite3_column_double(st, 3 + i);
		if (rs_add(s, strcmp(kind, rep_keykind_name(rs_kinds[0])) == 0 ?
		    0 : 1, key,
		    (size_t)sqlite3_column_bytes(st, 1),
		    sqlite3_column_int64(st, 2), c) < 0) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
	}
	if (rc != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM rep WHERE kind = ?",
	    -1, &st, NULL) != SQLITE_OK || sqlite3_bind_text(st, 1,
	    rep_keykind_name(RS_COUNTED), -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW)
		goto fail;
	s->ip_keys = (uint64_t)sqlite3_column_int64(st, 0);
	ret = 0;
	goto out;
fail:
	snprintf(err, errlen, "%s: cannot read the reputation store: %s "
	    "(sqlite error %d)", path, db ? sqlite3_errmsg(db) :
	    "out of memory", db ? sqlite3_extended_errcode(db) : SQLITE_NOMEM);
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return ret;
}

/*
 * Redis.
 */

/* rs_redis_addr - host and port (0 = unix socket path) of a valid URL */
static void
rs_redis_addr(const char *url, char *host, size_t hlen, int *port)
{
	const char *p, *end, *colon;

	*port = 6379;
	if (strncmp(url, "redis+unix:", 11) == 0) {
		snprintf(host, hlen, "%s", url + 11);
		*port = 0;
		return;
	}
	p = url + strlen("redis://");
	if (p[0] == '[') {
		end = strchr(p, ']');
		snprintf(host, hlen, "%.*s", (int)(end - p - 1), p + 1);
		colon = end[1] == ':' ? end + 1 : NULL;
	} else {
		colon = strrchr(p, ':');
		snprintf(host, hlen, "%.*s", (int)(colon ? (size_t)(colon - p) :
		    strlen(p)), p);
	}
	if (colon != NULL)
		*port = atoi(colon + 1);
}

/* rs_hash - one HGETALL reply as a group; 0, or -1 (OOM) */
static int
rs_hash(struct rs *s, int which, const char *label, size_t len,
    const redisReply *r)
{
	double	c[OC_NLEARN] = { 0 };
	int64_t	t = 0;
	size_t	i;
	int	j;

	if (r->type != REDIS_REPLY_ARRAY || r->elements == 0)
		return 0;		/* expired since SCAN */
	for (i = 0; i + 1 < r->elements; i += 2) {
		const redisReply *k = r->element[i], *v = r->element[i + 1];

		if (k->type != REDIS_REPLY_STRING ||
		    v->type != REDIS_REPLY_STRING)
			continue;
		if (strcmp(k->str, "t") == 0) {
			t = strtoll(v->str, NULL, 10);
			continue;
		}
		for (j = 0; j < OC_NLEARN; j++)
			if (strcmp(k->str, outcome_name((enum outcome)j))
			    == 0)
				c[j] = strtod(v->str, NULL);
	}
	return rs_add(s, which, label, len, t, c);
}

/* rs_kind_len - length of "<kind>:" when rest starts with it, else 0 */
static size_t
rs_kind_len(const char *rest, enum rep_keykind kind)
{
	const char *name = rep_keykind_name(kind);
	size_t	n = strlen(name);

	return strncmp(rest, name, n) == 0 && rest[n] == ':' ? n + 1 : 0;
}

/* rs_redis - SCAN everything under the prefix; HGETALL os and rawsig */
static int
rs_redis(struct rs *s, const char *url, char *err, size_t errlen)
{
	static const size_t pl = sizeof(RS_PREFIX) - 1;
	struct timeval ct = { RS_CONNECT_S, 0 }, rt = { RS_REPLY_S, 0 };
	char	host[256], cursor[32] = "0";
	redisContext *c;
	redisReply *r = NULL, *h;
	size_t	i, n;
	int	port, ret = -1, *which = NULL;
	void   *vr;

	rs_redis_addr(url, host, sizeof(host), &port);
	c = port ? redisConnectWithTimeout(host, port, ct) :
	    redisConnectUnixWithTimeout(host, ct);
	if (c == NULL) {
		snprintf(err, errlen, "%s: out of memory", url);
		return -1;
	}
	if (c->err) {
		snprintf(err, errlen, "%s: cannot connect: %s", url, c->errstr);
		goto out;
	}
	redisSetTimeout(c, rt);
	do {
		r = redisCommand(c, "SCAN %s MATCH " RS_PREFIX "* COUNT %d",
		    cursor, RS_SCAN_COUNT);
		if (r == NULL) {
			snprintf(err, errlen, "%s: SCAN: %s", url, c->errstr);
			goto out;
		}
		if (r->type == REDIS_REPLY_ERROR) {
			snprintf(err, errlen, "%s: SCAN: %s", url, r->str);
			goto out;
		}
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING ||
		    r->element[1]->type != REDIS_REPLY_ARRAY) {
			snprintf(err, errlen, "%s: SCAN: unexpected reply", url);
			goto out;
		}
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		n = r->element[1]->elements;
		free(which);
		if ((which = calloc(n ? n : 1, sizeof(*which))) == NULL) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		/* One pipeline of HGETALLs for this batch's os and rawsig. */
		for (i = 0; i < n; i++) {
			const redisReply *k = r->element[1]->element[i];
			const char *rest;

			which[i] = -1;
			if (k->type != REDIS_REPLY_STRING || k->len <= pl)
				continue;
			rest = k->str + pl;
			if (rs_kind_len(rest, RS_COUNTED) > 0)
				s->ip_keys++;
			else if (rs_kind_len(rest, rs_kinds[0]) > 0)
				which[i] = 0;
			else if (rs_kind_len(rest, rs_kinds[1]) > 0)
				which[i] = 1;
			if (which[i] >= 0 && redisAppendCommand(c, "HGETALL %b",
			    k->str, k->len) != REDIS_OK) {
				snprintf(err, errlen, "out of memory");
				goto out;
			}
		}
		for (i = 0; i < n; i++) {
			const redisReply *k = r->element[1]->element[i];
			size_t	off;

			if (which[i] < 0)
				continue;
			if (redisGetReply(c, &vr) != REDIS_OK) {
				snprintf(err, errlen, "%s: HGETALL: %s", url,
				    c->errstr);
				goto out;
			}
			h = vr;
			off = pl + rs_kind_len(k->str + pl, rs_kinds[which[i]]);
			if (h->type == REDIS_REPLY_ERROR) {
				snprintf(err, errlen, "%s: HGETALL %s: %s", url,
				    k->str, h->str);
				freeReplyObject(h);
				goto out;
			}
			if (rs_hash(s, which[i], k->str + off, k->len - off,
			    h) < 0) {
				freeReplyObject(h);
				snprintf(err, errlen, "out of memory");
				goto out;
			}
			freeReplyObject(h);
		}
		freeReplyObject(r);
		r = NULL;
	} while (strcmp(cursor, "0") != 0);
	ret = 0;
out:
	free(which);
	if (r != NULL)
		freeReplyObject(r);
	redisFree(c);
	return ret;
}

/* rp_store_run - the OS and raw-signature tables from a store */
int
rp_store_run(const char *url, const struct rp_opts *o, struct rp_report *rep,
    char *err, size_t errlen)
{
	const struct rep_store_ops *ops;
	struct rs s;
	void   *h;
	int	i, rc;

	memset(rep, 0, sizeof(*rep));
	if (o->by != RP_BY_OS && o->by != RP_BY_RAWSIG) {
		snprintf(err, errlen, "the reputation store has no %s keys: "
		    "use --by os or --by rawsig, or an event log",
		    rp_by_names[o->by]);
		return -2;
	}
	if (strncmp(url, "sqlite:", 7) == 0)
		ops = &rep_sqlite_ops;
	else if (strncmp(url, "redis://", 8) == 0 ||
	    strncmp(url, "redis+unix:", 11) == 0)
		ops = &rep_redis_ops;
	else {
		snprintf(err, errlen, "bad --store '%.200s': use sqlite:/path, "
		    "redis://host[:port] or redis+unix:/path", url);
		return -2;
	}
	/* The daemon's own parser decides what a valid URL is. */
	if ((h = ops->create(url, RP_HALF_LIFE_MS, 0, err, errlen)) == NULL)
		return -2;
	ops->destroy(h);

	memset(&s, 0, sizeof(s));
	s.o = o;
	s.now_ms = o->now_ms ? o->now_ms : rep_now();
	s.half_life = o->half_life_ms > 0 ? o->half_life_ms : RP_HALF_LIFE_MS;
	rc = ops == &rep_sqlite_ops ? rs_sqlite(&s, url + 7, err, errlen) :
	    rs_redis(&s, url, err, errlen);
	if (rc == 0 && (rs_table(&s.map[0], RP_BY_OS, &rep->os) < 0 ||
	    rs_table(&s.map[1], RP_BY_RAWSIG, &rep->rawsig) < 0 ||
	    rs_table(&s.map[o->by == RP_BY_OS ? 0 : 1], o->by,
	    &rep->by) < 0)) {
		snprintf(err, errlen, "out of memory");
		rc = -1;
	}
	if (rc == 0) {
		rep->store = 1;
		snprintf(rep->source, sizeof(rep->source), "%s", url);
		rep->st.store_keys = s.map[0].n + s.map[1].n;
		rep->st.ip_keys = s.ip_keys;
		rep->st.now_ms = s.now_ms;
		rep->st.half_life_ms = s.half_life;
	} else
		rp_report_free(rep);
	for (i = 0; i < 2; i++)
		strmap_free(&s.map[i], free);
	return rc;
}
