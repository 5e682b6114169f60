/*
 * rep_sqlite.c - the embedded reputation store: one SQLite file, WAL mode
 *
 * Exports rep_sqlite_ops (rep_store.h) for "sqlite:/path".  The file and
 * its table are created when missing.  One row per key:
 *   rep(kind TEXT, key TEXT, t INTEGER ms, delivered .. listed REAL)
 * and the patience histograms (rep.h), with their own time:
 *   pt INTEGER ms, pat_gaveup TEXT, pat_bad TEXT (16 decayed bucket
 *   masses separated by spaces, "0 0 3 1.5 ..."; '' = none)
 * Two text columns rather than 32 numbers: every row stores a header byte
 * per column, and rows that never learn patience (most) stay as small as
 * they were, so count updates cost what they did.
 * A table from an older version that lacks an outcome's or a patience
 * column gets it at connect (ALTER TABLE .. ADD COLUMN .. DEFAULT 0, in one BEGIN IMMEDIATE
 * transaction so two processes cannot both add it).
 * A write is one BEGIN IMMEDIATE .. COMMIT transaction of UPSERTs whose
 * decay is the SQL function rep_add(old, t_old, delta, t_delta), so a
 * batch is all or nothing and a crash loses at most the batch in flight.
 * synchronous=NORMAL: a committed batch survives kill -9 (the WAL is in the
 * page cache); a power cut may lose the last batches.
 * Only the reputation worker thread uses a handle; it owns the connection.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "rep/rep_store.h"
#include "util/log.h"

#define SQ_BUSY_MS	250	/* wait for another writer's lock, at most */

struct sq {
	char	path[256];
	double	half_life;		/* ms */
	sqlite3 *db;			/* NULL = disconnected */
	sqlite3_stmt *upsert, *select, *begin, *commit, *rollback;
	sqlite3_stmt *upsert_pat;	/* counts and patience */
};

/* Columns after kind, key, t: the outcomes, pt, the histograms. */
#define SQ_NHIST	2				/* gaveup, bad */
#define SQ_NB		(REP_STORE_NPAT / SQ_NHIST)	/* buckets */
#define SQ_NCOL		(OC_NLEARN + 1 + SQ_NHIST)
#define SQ_PT		OC_NLEARN	/* index of pt */
#define SQ_HIST_MAX	(SQ_NB * 24)	/* bytes of one histogram's text */

/* sq_col - the name of column j (0 .. SQ_NCOL - 1) */
static const char *
sq_col(int j)
{
	static const char *const hist[SQ_NHIST] = { "pat_gaveup", "pat_bad" };

	if (j < OC_NLEARN)
		return outcome_name((enum outcome)j);
	if (j == SQ_PT)
		return "pt";
	return hist[j - SQ_PT - 1];
}

/* sq_hist_parse - SQ_NB numbers from text (missing ones are 0) */
static void
sq_hist_parse(const unsigned char *text, double *h)
{
	const char *p = (const char *)text;
	char   *end;
	int	b;

	for (b = 0; b < SQ_NB; b++) {
		h[b] = p != NULL ? strtod(p, &end) : 0;
		if (p == NULL || end == p) {
			h[b] = 0;
			p = NULL;
		} else
			p = end;
	}
}

/* sq_hist_text - SQ_NB numbers as text, "%.9g" each (floats in memory) */
static void
sq_hist_text(const double *h, char *buf, size_t len)
{
	size_t	n = 0;
	int	b;

	buf[0] = '\0';
	for (b = 0; b < SQ_NB && n < len; b++)
		n += (size_t)snprintf(buf + n, len - n, "%s%.9g", b ? " " : "",
		    h[b]);
}

static const char sq_schema[] =
    "CREATE TABLE IF NOT EXISTS rep ("
    " kind TEXT NOT NULL, key TEXT NOT NULL, t INTEGER NOT NULL,"
    " delivered REAL NOT NULL DEFAULT 0, rejected REAL NOT NULL DEFAULT 0,"
    " deferred REAL NOT NULL DEFAULT 0, abandoned REAL NOT NULL DEFAULT 0,"
    " protocol_error REAL NOT NULL DEFAULT 0, spam REAL NOT NULL DEFAULT 0,"
    " ham REAL NOT NULL DEFAULT 0, listed REAL NOT NULL DEFAULT 0,"
    " PRIMARY KEY (kind, key)) WITHOUT ROWID";
/* (the patience columns are added by sq_migrate(), in new files too) */

#define SQ_ADD(c) c " = rep_add(" c ", t, excluded." c ", excluded.t)"
static const char sq_upsert[] =
    "INSERT INTO rep (kind, key, t, delivered, rejected, deferred,"
    " abandoned, protocol_error, spam, ham, listed)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
    " ON CONFLICT (kind, key) DO UPDATE SET "
    SQ_ADD("delivered") ", " SQ_ADD("rejected") ", " SQ_ADD("deferred") ", "
    SQ_ADD("abandoned") ", " SQ_ADD("protocol_error") ", " SQ_ADD("spam")
    ", " SQ_ADD("ham") ", " SQ_ADD("listed") ", t = max(t, excluded.t)";

/* sq_sql_pat - the upsert of counts and patience, the select of both */
static void
sq_sql_pat(char *upsert, size_t ulen, char *select, size_t slen)
{
	size_t	u, v;
	int	j;

	u = (size_t)snprintf(upsert, ulen, "INSERT INTO rep (kind, key, t");
	v = (size_t)snprintf(select, slen, "SELECT t");
	for (j = 0; j < SQ_NCOL; j++) {
		u += (size_t)snprintf(upsert + u, ulen - u, ", %s", sq_col(j));
		v += (size_t)snprintf(select + v, slen - v, ", %s", sq_col(j));
	}
	snprintf(select + v, slen - v, " FROM rep WHERE kind = ?1 AND "
	    "key = ?2");
	u += (size_t)snprintf(upsert + u, ulen - u, ") VALUES (?1, ?2, ?3");
	for (j = 0; j < SQ_NCOL; j++)
		u += (size_t)snprintf(upsert + u, ulen - u, ", ?%d", 4 + j);
	u += (size_t)snprintf(upsert + u, ulen - u, ") ON CONFLICT (kind, "
	    "key) DO UPDATE SET ");
	for (j = 0; j < OC_NLEARN; j++)
		u += (size_t)snprintf(upsert + u, ulen - u, "%s = rep_add(%s, "
		    "t, excluded.%s, excluded.t), ", sq_col(j), sq_col(j),
		    sq_col(j));
	for (j = SQ_PT + 1; j < SQ_NCOL; j++)
		u += (size_t)snprintf(upsert + u, ulen - u, "%s = "
		    "rep_hist_add(%s, pt, excluded.%s, excluded.pt), ",
		    sq_col(j), sq_col(j), sq_col(j));
	snprintf(upsert + u, ulen - u, "t = max(t, excluded.t), "
	    "pt = max(pt, excluded.pt)");
}

/* sq_add - SQL rep_add(old, t_old, delta, t_delta): merged, decayed count */
static void
sq_add(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	struct sq *s = sqlite3_user_data(ctx);
	double	c = sqlite3_value_double(argv[0]);
	double	d = sqlite3_value_double(argv[2]);
	int64_t	t = sqlite3_value_int64(argv[1]);
	int64_t	td = sqlite3_value_int64(argv[3]);

	(void)argc;
	if (td >= t)
		c = c * rep_decay(s->half_life, td - t) + d;
	else
		c += d * rep_decay(s->half_life, t - td);
	sqlite3_result_double(ctx, c);
}

static int	sq_empty(struct sq *);

/*
 * sq_hist_add - SQL rep_hist_add(old, pt_old, delta, pt_delta): the
 * histograms' merge rule, rep_add() on each of the SQ_NB numbers
 */
static void
sq_hist_add(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	struct sq *s = sqlite3_user_data(ctx);
	double	c[SQ_NB], d[SQ_NB];
	char	out[SQ_HIST_MAX];
	int64_t	t = sqlite3_value_int64(argv[1]);

	(void)argc;
	sq_hist_parse(sqlite3_value_text(argv[0]), c);
	sq_hist_parse(sqlite3_value_text(argv[2]), d);
	rep_merge_n(c, &t, d, sqlite3_value_int64(argv[3]), s->half_life,
	    SQ_NB);
	sq_hist_text(c, out, sizeof(out));
	sqlite3_result_text(ctx, out, -1, SQLITE_TRANSIENT);
}

/* sq_fail - "path: message (code)" into err; -1 */
static int
sq_fail(struct sq *s, const char *what, char *err, size_t errlen)
{
	int	code = s->db ? sqlite3_extended_errcode(s->db) : SQLITE_NOMEM;
	int	sys = s->db ? sqlite3_system_errno(s->db) : 0;

	snprintf(err, errlen, "%s: %s: %s (sqlite error %d%s%s)", s->path,
	    what, s->db ? sqlite3_errmsg(s->db) : "out of memory", code,
	    sys ? ", " : "", sys ? strerror(sys) : "");
	return -1;
}

/* sq_columns - which of the SQ_NCOL columns the rep table has; 0 or -1 */
static int
sq_columns(struct sq *s, int have[SQ_NCOL])
{
	sqlite3_stmt *st = NULL;
	const char *name;
	int	j, rc;

	memset(have, 0, SQ_NCOL * sizeof(have[0]));
	if (sqlite3_prepare_v2(s->db, "PRAGMA table_info(rep)", -1, &st,
	    NULL) != SQLITE_OK)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((name = (const char *)sqlite3_column_text(st, 1)) == NULL)
			continue;
		for (j = 0; j < SQ_NCOL; j++)
			if (strcmp(name, sq_col(j)) == 0)
				have[j] = 1;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/*
 * sq_migrate - add the outcome and patience columns that a table made by
 * an older version (or by sq_schema) lacks: an outcome as REAL NOT NULL
 * DEFAULT 0 (an old row has seen none of it), pt as INTEGER NOT NULL
 * DEFAULT 0 and the histograms as TEXT NOT NULL DEFAULT '' (no patience).  Checked without a lock first, so a current table costs
 * one PRAGMA; the change itself runs in BEGIN IMMEDIATE and checks again,
 * so two processes opening one old file add each column once.
 */
static int
sq_migrate(struct sq *s, char *err, size_t errlen)
{
	char	sql[128];
	int	have[SQ_NCOL], j, missing = 0, npat = 0, fresh;

	if (sq_columns(s, have) < 0)
		return sq_fail(s, "open: read the schema", err, errlen);
	for (j = 0; j < SQ_NCOL; j++)
		missing += !have[j];
	if (missing == 0)
		return 0;
	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK)
		return sq_fail(s, "open: upgrade the schema", err, errlen);
	if (sq_columns(s, have) < 0)
		goto fail;
	/* a table sq_schema just made has every outcome, no patience */
	fresh = sq_empty(s);
	for (j = 0; j < SQ_NCOL; j++) {
		if (have[j])
			continue;
		snprintf(sql, sizeof(sql), "ALTER TABLE rep ADD COLUMN %s %s",
		    sq_col(j), j < SQ_PT ? "REAL NOT NULL DEFAULT 0" :
		    j == SQ_PT ? "INTEGER NOT NULL DEFAULT 0" :
		    "TEXT NOT NULL DEFAULT ''");
		if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
			goto fail;
		if (j < OC_NLEARN)
			log_info("reputation store sqlite:%s: added the column "
			    "%s (a table from an older version)", s->path,
			    sq_col(j));
		else
			npat++;
	}
	if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	if (npat > 0 && !fresh)
		log_info("reputation store sqlite:%s: added %d patience "
		    "columns, pt, pat_gaveup and pat_bad (a table from an "
		    "older version)", s->path, npat);
	return 0;

fail:
	sq_fail(s, "open: upgrade the schema", err, errlen);
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* sq_empty - 1 when the rep table has no row */
static int
sq_empty(struct sq *s)
{
	sqlite3_stmt *st = NULL;
	int	empty = 0;

	if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM rep LIMIT 1", -1, &st,
	    NULL) == SQLITE_OK)
		empty = sqlite3_step(st) == SQLITE_DONE;
	sqlite3_finalize(st);
	return empty;
}

/* sq_disconnect - finalize the statements and close the file */
static void
sq_disconnect(void *h)
{
	struct sq *s = h;

	sqlite3_finalize(s->upsert);
	sqlite3_finalize(s->select);
	sqlite3_finalize(s->begin);
	sqlite3_finalize(s->commit);
	sqlite3_finalize(s->rollback);
	sqlite3_finalize(s->upsert_pat);
	s->upsert = s->select = s->begin = s->commit = s->rollback = NULL;
	s->upsert_pat = NULL;
	if (s->db != NULL)
		sqlite3_close(s->db);
	s->db = NULL;
}

/* sq_create - parse "sqlite:/path" */
static void *
sq_create(const char *spec, double half_life_ms, int64_t key_ttl_ms,
    char *err, size_t errlen)
{
	struct sq *s;
	const char *path = spec + strlen("sqlite:");

	(void)key_ttl_ms;	/* SQLite rows decay; they are not expired */
	if (path[0] == '\0' || strlen(path) >= sizeof(s->path)) {
		snprintf(err, errlen, "bad rep_store '%s': need sqlite:/path",
		    spec);
		return NULL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(s->path, sizeof(s->path), "%s", path);
	s->half_life = half_life_ms;
	return s;
}

/* sq_connect - open or create the file, WAL mode, table, statements */
static int
sq_connect(void *h, char *err, size_t errlen)
{
	struct sq *s = h;
	sqlite3_stmt *st = NULL;
	const char *mode;
	char	upsert_pat[4096], select[2048];
	int	rc;

	if (s->db != NULL)
		return 0;
	sq_sql_pat(upsert_pat, sizeof(upsert_pat), select, sizeof(select));
	rc = sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK)
		goto fail_open;
	sqlite3_busy_timeout(s->db, SQ_BUSY_MS);
	if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &st,
	    NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW)
		goto fail_open;
	mode = (const char *)sqlite3_column_text(st, 0);
	if (mode == NULL || strcmp(mode, "wal") != 0) {
		snprintf(err, errlen, "%s: cannot switch to WAL mode (got %s)",
		    s->path, mode ? mode : "nothing");
		sqlite3_finalize(st);
		sq_disconnect(s);
		return -1;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_exec(s->db, "PRAGMA synchronous=NORMAL", NULL, NULL,
	    NULL) != SQLITE_OK ||
	    sqlite3_exec(s->db, sq_schema, NULL, NULL, NULL) != SQLITE_OK)
		goto fail_open;
	if (sq_migrate(s, err, errlen) < 0) {
		sq_disconnect(s);
		return -1;
	}
	if (sqlite3_create_function(s->db, "rep_add", 4, SQLITE_UTF8 |
	    SQLITE_DETERMINISTIC, s, sq_add, NULL, NULL) != SQLITE_OK ||
	    sqlite3_create_function(s->db, "rep_hist_add", 4, SQLITE_UTF8 |
	    SQLITE_DETERMINISTIC, s, sq_hist_add, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, sq_upsert, -1, &s->upsert, NULL) ||
	    sqlite3_prepare_v2(s->db, select, -1, &s->select, NULL) ||
	    sqlite3_prepare_v2(s->db, upsert_pat, -1, &s->upsert_pat, NULL) ||
	    sqlite3_prepare_v2(s->db, "BEGIN IMMEDIATE", -1, &s->begin, NULL) ||
	    sqlite3_prepare_v2(s->db, "COMMIT", -1, &s->commit, NULL) ||
	    sqlite3_prepare_v2(s->db, "ROLLBACK", -1, &s->rollback, NULL))
		goto fail_open;
	return 0;

fail_open:
	sq_fail(s, "open", err, errlen);
	sqlite3_finalize(st);
	sq_disconnect(s);
	return -1;
}

/* sq_run - step a statement without results; SQLITE_DONE or the error */
static int
sq_run(sqlite3_stmt *st)
{
	int	rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc;
}

/* sq_write - one transaction of UPSERTs */
static int
sq_write(void *h, const struct rep_rec *r, size_t n, char *err, size_t errlen)
{
	struct sq *s = h;
	sqlite3_stmt *up;
	size_t	i;
	int	j;

	if (sq_run(s->begin) != SQLITE_DONE)
		return sq_fail(s, "begin", err, errlen);
	for (i = 0; i < n; i++) {
		/* a record without patience writes the counts only */
		up = r[i].pt ? s->upsert_pat : s->upsert;
		sqlite3_bind_text(up, 1, rep_keykind_name(r[i].key.kind),
		    -1, SQLITE_STATIC);
		sqlite3_bind_text(up, 2, r[i].key.text, -1, SQLITE_STATIC);
		sqlite3_bind_int64(up, 3, r[i].t);
		for (j = 0; j < OC_NLEARN; j++)
			sqlite3_bind_double(up, 4 + j, r[i].c[j]);
		if (r[i].pt) {
			char	ht[SQ_HIST_MAX];

			sqlite3_bind_int64(up, 4 + SQ_PT, r[i].pt);
			for (j = 0; j < SQ_NHIST; j++) {
				sq_hist_text(r[i].pat + j * SQ_NB, ht,
				    sizeof(ht));
				sqlite3_bind_text(up, 5 + SQ_PT + j, ht, -1,
				    SQLITE_TRANSIENT);
			}
		}
		if (sq_run(up) != SQLITE_DONE) {
			sq_fail(s, "write", err, errlen);
			sqlite3_clear_bindings(up);
			if (!sqlite3_get_autocommit(s->db))
				sq_run(s->rollback);
			return -1;
		}
	}
	sqlite3_clear_bindings(s->upsert);
	sqlite3_clear_bindings(s->upsert_pat);
	if (sq_run(s->commit) != SQLITE_DONE) {
		sq_fail(s, "commit", err, errlen);
		if (!sqlite3_get_autocommit(s->db))
			sq_run(s->rollback);
		return -1;
	}
	return 0;
}

/* sq_fetch - read n keys (t = 0 when absent) */
static int
sq_fetch(void *h, struct rep_rec *r, size_t n, char *err, size_t errlen)
{
	struct sq *s = h;
	size_t	i;
	int	j, rc;

	for (i = 0; i < n; i++) {
		sqlite3_bind_text(s->select, 1, rep_keykind_name(r[i].key.kind),
		    -1, SQLITE_STATIC);
		sqlite3_bind_text(s->select, 2, r[i].key.text, -1,
		    SQLITE_STATIC);
		memset(r[i].c, 0, sizeof(r[i].c));
		memset(r[i].pat, 0, sizeof(r[i].pat));
		r[i].t = r[i].pt = 0;
		rc = sqlite3_step(s->select);
		if (rc == SQLITE_ROW) {
			r[i].t = sqlite3_column_int64(s->select, 0);
			for (j = 0; j < OC_NLEARN; j++)
				r[i].c[j] = sqlite3_column_double(s->select,
				    1 + j);
			r[i].pt = sqlite3_column_int64(s->select, 1 + SQ_PT);
			for (j = 0; j < SQ_NHIST; j++)
				sq_hist_parse(sqlite3_column_text(s->select,
				    2 + SQ_PT + j), r[i].pat + j * SQ_NB);
		} else if (rc != SQLITE_DONE) {
			sq_fail(s, "read", err, errlen);
			sqlite3_reset(s->select);
			return -1;
		}
		sqlite3_reset(s->select);
	}
	sqlite3_clear_bindings(s->select);
	return 0;
}

/* sq_destroy - close and free */
static void
sq_destroy(void *h)
{
	sq_disconnect(h);
	free(h);
}

const struct rep_store_ops rep_sqlite_ops = {
	.scheme = "sqlite",
	.shared = 0,
	.create = sq_create,
	.connect = sq_connect,
	.write = sq_write,
	.fetch = sq_fetch,
	.disconnect = sq_disconnect,
	.destroy = sq_destroy,
};
