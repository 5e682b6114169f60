/*
 * join.c - the streaming join of message records with their session record
 *
 * Exports join_new(), join_run(), join_hold(), join_warn(), join_stats()
 * and join_free().  `report` and `evaluate` read the event log through it.
 *
 * join_run() reads a log line by line (util/jsonl.h), turns each line into
 * a typed record (log/evread.h) and hands it to the consumer's callbacks.
 * An unusable line is warned about as "name:line: reason" (at most
 * max_warnings times, then once "further warnings suppressed") and
 * counted; at the end, more than max_warnings of them are summed up in one
 * more warning.
 *
 * The join: messages are written before their session record (which comes
 * at session end).  The message callback keeps the messages it wants with
 * join_hold(), which gives the slot of the message's session: the
 * consumer folds the message into it.  When the session record comes, the
 * session callback gets it with that slot.  A session whose record does
 * not come is handed to the orphan callback, oldest first, once the log's
 * clock (the latest message time or session end read) is max_age_ms past
 * its first held message, when more than max_open sessions or max_held
 * messages wait, or at the end of the log.  Memory is bounded by those
 * caps, never by the log's length.
 *
 * Memory: join_new() allocates the join, join_free() frees it with every
 * slot still waiting (through discard()).  The records passed to the
 * callbacks live until the callback returns.  It is an error to call
 * join_hold() outside the message callback, or to keep a slot after it
 * was handed back.
 */
#include <sys/queue.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/join.h"
#include "util/jsonl.h"
#include "util/log.h"
#include "util/strmap.h"

/* A session waiting for its record. */
struct join_open {
	struct strmap_ent *ent;		/* in join.open; ent->p is us */
	TAILQ_ENTRY(join_open) age;	/* oldest first message first */
	int64_t	first_ms;		/* time of the first held message */
	size_t	nheld;			/* messages held */
	max_align_t slot[];		/* slot_size bytes and the extra */
};

struct join {
	struct join_opts o;
	const struct join_ops *ops;
	void	*arg;
	struct jl_doc doc;
	struct strmap open;		/* session id -> join_open */
	TAILQ_HEAD(, join_open) ages;
	size_t	nheld;			/* messages held, all sessions */
	int64_t	now_ms;			/* latest time seen */
	struct join_stats st;
	int	warned;
	int	oom;
};

/* join_new - a join reading with o, calling ops with arg; NULL if no memory */
struct join *
join_new(const struct join_opts *o, const struct join_ops *ops, void *arg)
{
	struct join *j;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		return NULL;
	j->o = *o;
	j->ops = ops;
	j->arg = arg;
	j->now_ms = INT64_MIN;
	jl_doc_init(&j->doc);
	TAILQ_INIT(&j->ages);
	return j;
}

/* join_warn - a name:line warning, capped, and counted as garbage */
void
join_warn(struct join *j, unsigned long lineno, const char *fmt, ...)
{
	char	msg[256];
	va_list	ap;

	j->st.garbage++;
	if (j->o.quiet)
		return;
	if (j->warned >= j->o.max_warnings) {
		if (j->warned++ == j->o.max_warnings)
			log_warnx("%s: further warnings suppressed", j->o.name);
		return;
	}
	j->warned++;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warnx("%s:%lu: %s", j->o.name, lineno, msg);
}

/* join_stats - the figures of the runs so far */
const struct join_stats *
join_stats(const struct join *j)
{
	return &j->st;
}

/* open_end - forget a waiting session (its slot already handed back) */
static void
open_end(struct join *j, struct join_open *op)
{
	j->nheld -= op->nheld;
	TAILQ_REMOVE(&j->ages, op, age);
	strmap_del(&j->open, op->ent);
	free(op);
}

/*
 * join_hold - keep message m for its session: the session's slot (made,
 * zeroed with extra more bytes, when *isnew is set), or NULL when out of
 * memory
 */
void *
join_hold(struct join *j, const struct evr_rmessage *m, size_t extra,
    int *isnew)
{
	struct strmap_ent *e;
	struct join_open *op;

	*isnew = 0;
	if (strmap_insert(&j->open, m->session, strlen(m->session), &e) < 0) {
		j->oom = 1;
		return NULL;
	}
	if ((op = e->p) == NULL) {
		if ((op = calloc(1, sizeof(*op) + j->o.slot_size + extra)) ==
		    NULL) {
			strmap_del(&j->open, e);
			j->oom = 1;
			return NULL;
		}
		op->ent = e;
		op->first_ms = m->time_ms;
		e->p = op;
		TAILQ_INSERT_TAIL(&j->ages, op, age);
		if (j->open.n > j->st.peak_open)
			j->st.peak_open = j->open.n;
		*isnew = 1;
	}
	op->nheld++;
	if (++j->nheld > j->st.peak_held)
		j->st.peak_held = j->nheld;
	return op->slot;
}

/* flush - hand a waiting session to the orphan callback */
static void
flush(struct join *j, struct join_open *op)
{
	if (j->ops->orphan(j->arg, op->slot, op->first_ms) < 0)
		j->oom = 1;
	open_end(j, op);
}

/* evict - flush sessions too old to expect their record, or too many */
static void
evict(struct join *j)
{
	struct join_open *op;

	while (!j->oom && (op = TAILQ_FIRST(&j->ages)) != NULL &&
	    (op->first_ms + j->o.max_age_ms < j->now_ms ||
	    j->open.n > j->o.max_open || j->nheld > j->o.max_held))
		flush(j, op);
}

/* dispatch - one record to its callback */
static int
dispatch(struct join *j, const struct evr_rec *rec, unsigned long lineno)
{
	const struct evr_rsession *s = &rec->u.s;
	struct strmap_ent *e;
	struct join_open *op;
	int	rc;

	switch (rec->type) {
	case EVR_MESSAGE:
		if (rec->u.m.time_ms > j->now_ms)
			j->now_ms = rec->u.m.time_ms;
		return j->ops->message(j->arg, j, &rec->u.m, lineno);
	case EVR_SESSION:
		if (s->end_ms != INT64_MIN && s->end_ms > j->now_ms)
			j->now_ms = s->end_ms;
		op = (e = strmap_find(&j->open, s->id, strlen(s->id))) ?
		    e->p : NULL;
		rc = j->ops->session(j->arg, s, op ? op->slot : NULL, lineno);
		if (op != NULL)
			open_end(j, op);
		return rc;
	case EVR_FEEDBACK:
		return j->ops->feedback(j->arg, j, &rec->u.f, lineno);
	default:
		return 0;		/* other types are for other readers */
	}
}

/*
 * join_run - read rd to its end (or limit) through the callbacks, then hand
 * every session still waiting to orphan(); 0, or -1 with err filled
 */
int
join_run(struct join *j, struct jl_reader *rd, char *err, size_t errlen)
{
	struct evr_rec rec;
	const char *line;
	char	perr[160], rerr[160];
	size_t	len, i;
	int	rc;

	while ((rc = jl_read_line(rd, &line, &len)) != JL_EOF) {
		if (rc == JL_ERR) {
			snprintf(err, errlen, "cannot read %s: %s", j->o.name,
			    strerror(errno));
			return -1;
		}
		j->st.lines++;
		if (j->ops->progress && (j->st.lines & 0x3fff) == 0)
			j->ops->progress(j->arg, j->st.lines, rd->consumed);
		if (rc == JL_TOOLONG) {
			join_warn(j, rd->lineno, "line longer than %zu bytes",
			    rd->max);
			continue;
		}
		for (i = 0; i < len && (line[i] == ' ' || line[i] == '\t' ||
		    line[i] == '\r'); i++)
			;
		if (i == len)
			continue;		/* blank */
		if (jl_parse(&j->doc, line, len, perr, sizeof(perr)) < 0) {
			join_warn(j, rd->lineno, "not JSON: %s", perr);
			continue;
		}
		if (evr_read(&j->doc, jl_root(&j->doc), j->o.flags, &rec, rerr,
		    sizeof(rerr)) < 0)
			join_warn(j, rd->lineno, "%s", rerr);
		else if (dispatch(j, &rec, rd->lineno) < 0)
			j->oom = 1;
		if (j->oom)
			break;
		evict(j);
	}
	while (!j->oom && !TAILQ_EMPTY(&j->ages))
		flush(j, TAILQ_FIRST(&j->ages));
	if (j->oom) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (!j->o.quiet && j->st.garbage > (unsigned long)j->o.max_warnings)
		log_warnx("%s: %lu unusable lines in all", j->o.name,
		    j->st.garbage);
	return 0;
}

/* join_free - free a join and every session still waiting */
void
join_free(struct join *j)
{
	struct join_open *op;

	if (j == NULL)
		return;
	while ((op = TAILQ_FIRST(&j->ages)) != NULL) {
		if (j->ops->discard != NULL)
			j->ops->discard(j->arg, op->slot);
		TAILQ_REMOVE(&j->ages, op, age);
		free(op);
	}
	strmap_free(&j->open, NULL);
	jl_doc_free(&j->doc);
	free(j);
}
