/*
 * evrec.c - outcome and stage names (the event-log schema's words)
 *
 * Exports outcome_name(), outcome_parse(), outcome_flags(),
 * msg_stage_name(), msg_stage_parse() and evr_reason().  The JSON writers
 * are in evrec_write.c, so that readers of the log (report, evaluate, the
 * swarm) link these names without the daemon's modules.
 */
#include <stdio.h>
#include <string.h>

#include "log/evrec.h"

static const struct {
	const char *name;
	unsigned flags;
} outcomes[OC_N] = {
	[OC_DELIVERED] = {"delivered", OC_F_MSG | OC_F_GOOD},
	[OC_REJECTED] = {"rejected", OC_F_MSG | OC_F_BAD},
	[OC_DEFERRED] = {"deferred", OC_F_MSG},
	[OC_ABANDONED] = {"abandoned", OC_F_MSG | OC_F_SESS | OC_F_BAD},
	[OC_PROTOCOL_ERROR] = {"protocol_error",
	    OC_F_MSG | OC_F_SESS | OC_F_BAD},
	[OC_SPAM] = {"spam", OC_F_BAD},
	[OC_HAM] = {"ham", OC_F_GOOD},
	[OC_LISTED] = {"listed", OC_F_BAD},
	[OC_BACKEND_ERROR] = {"backend_error", OC_F_MSG | OC_F_SESS},
	[OC_COMPLETED] = {"completed", OC_F_SESS},
	[OC_REFUSED] = {"refused", OC_F_SESS},
	[OC_NONE] = {"none", 0},
};

static const char *const stages[MST_N] = {
	[MST_MAIL] = "mail", [MST_RCPT] = "rcpt", [MST_DATA] = "data",
	[MST_DOT] = "dot",
};

/* outcome_name - the outcome's name in records and stores; "?" if none */
const char *
outcome_name(enum outcome o)
{
	return (unsigned)o < OC_N && outcomes[o].name ? outcomes[o].name : "?";
}

/* outcome_parse - the outcome with this name, or -1 */
int
outcome_parse(const char *name)
{
	int	i;

	for (i = 0; name != NULL && i < OC_N; i++)
		if (outcomes[i].name && strcmp(outcomes[i].name, name) == 0)
			return i;
	return -1;
}

/* outcome_flags - OC_F_* of an outcome (0 when out of range) */
unsigned
outcome_flags(enum outcome o)
{
	return (unsigned)o < OC_N ? outcomes[o].flags : 0;
}

/* msg_stage_name - "mail", "rcpt", "data", "dot"; "?" */
const char *
msg_stage_name(enum msg_stage st)
{
	return (unsigned)st < MST_N ? stages[st] : "?";
}

/* msg_stage_parse - the stage with this name, or -1 */
int
msg_stage_parse(const char *name)
{
	int	i;

	for (i = 0; name != NULL && i < MST_N; i++)
		if (strcmp(stages[i], name) == 0)
			return i;
	return -1;
}

/* evr_reason - the i-th reason of a summary, or NULL */
const char *
evr_reason(const struct evr_session *s, int i)
{
	const char *r = s->reasons;

	if (r == NULL || i < 0 || i >= s->nreasons)
		return NULL;
	while (i-- > 0)
		r += strlen(r) + 1;
	return r;
}
