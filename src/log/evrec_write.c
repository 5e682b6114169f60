/*
 * evrec_write.c - the session and message records' JSON lines
 *
 * Exports evr_session_json(), evr_message_json() and evr_feedback_json().  Every key written
 * here is one the record reader (evrec_read.c) knows; doc/internals/
 * eventlog.md lists them.
 */
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "dnsbl/dnsbl.h"
#include "fp/fp.h"
#include "log/evrec.h"
#include "util/json.h"

/* evr_session_json - the session record line */
int
evr_session_json(const struct evr_session *s, struct evbuffer *b)
{
	const char *reasons[64], *r;
	char	sub[1024];
	struct jw w;
	int	n = 0;

	for (r = s->reasons; r != NULL && n < s->nreasons &&
	    n < (int)(sizeof(reasons) / sizeof(reasons[0])); n++) {
		reasons[n] = r;
		r += strlen(r) + 1;
	}
	jw_begin(&w, b);
	jw_str(&w, "type", "session");
	jw_str(&w, "id", s->id);
	jw_time(&w, "start", &s->start);
	jw_time(&w, "end", &s->end);
	jw_str(&w, "client_ip", s->ip);
	jw_int(&w, "client_port", s->port);
	jw_str(&w, "helo", s->helo);
	jw_bool(&w, "tls", s->tls);
	jw_str(&w, "class", s->class_name);
	jw_strlist(&w, "reasons", reasons, n);
	if (s->fp != NULL && fp_result_json(s->fp, sub, sizeof(sub)) > 0)
		jw_raw(&w, "fp", sub);
	else
		jw_null(&w, "fp");
	if (s->dnsbl != NULL && dnsbl_result_json(s->dnsbl, sub,
	    sizeof(sub)) > 0)
		jw_raw(&w, "dnsbl", sub);
	else
		jw_null(&w, "dnsbl");
	jw_num(&w, "score", s->score);
	jw_bool(&w, "control", s->control);
	jw_str(&w, "domain", s->domain);
	jw_int(&w, "messages", s->messages);
	jw_str(&w, "outcome", outcome_name(s->outcome));
	if (s->gave_up_after_s >= 0)
		jw_num(&w, "gave_up_after_s", s->gave_up_after_s);
	else
		jw_null(&w, "gave_up_after_s");
	jw_bool(&w, "observe", s->observe);
	jw_int(&w, "violations", s->violations);
	jw_end(&w);
	return evbuffer_add(b, "\n", 1);
}

/* evr_message_json - the message record line */
int
evr_message_json(const struct evr_message *m, struct evbuffer *b)
{
	const struct evr_session *s = m->sess;
	char	id[EVR_ID_MAX + 16];
	struct jw w;

	snprintf(id, sizeof(id), "%s.%d", s->id, m->msgno);
	jw_begin(&w, b);
	jw_str(&w, "type", "message");
	jw_str(&w, "session", s->id);
	jw_str(&w, "id", id);
	jw_time(&w, "time", &m->time);
	jw_str(&w, "mail_from", m->mail_from);
	jw_int(&w, "rcpt", m->rcpt);
	jw_int(&w, "rcpt_accepted", m->rcpt_accepted);
	jw_int(&w, "size", (long long)m->size);
	jw_str(&w, "class", s->class_name);
	jw_str(&w, "outcome", outcome_name(m->outcome));
	jw_str(&w, "stage", msg_stage_name(m->stage));
	jw_str(&w, "reply", m->reply);
	jw_str(&w, "client_ip", s->ip);
	jw_str(&w, "raw_sig", s->fp ? s->fp->raw_sig : NULL);
	jw_str(&w, "os", s->fp ? s->fp->os : NULL);
	jw_bool(&w, "control", s->control);
	jw_end(&w);
	return evbuffer_add(b, "\n", 1);
}

/* evr_feedback_json - the feedback record line */
int
evr_feedback_json(const struct evr_feedback *f, struct evbuffer *b)
{
	struct jw w;

	jw_begin(&w, b);
	jw_str(&w, "type", "feedback");
	jw_time(&w, "time", &f->time);
	jw_str(&w, "session", f->session);
	jw_str(&w, "message", f->message);
	jw_str(&w, "verdict", outcome_name(f->verdict));
	jw_end(&w);
	return evbuffer_add(b, "\n", 1);
}
