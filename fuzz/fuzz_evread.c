/*
 * fuzz_evread.c - libFuzzer target for src/log/evrec_read.c
 *
 * The input is parsed as one JSON line (util/jsonl.c) and, when it parses,
 * read as a record with every flag set and with none of the optional
 * rules.  Invariants: the result is -1 (with a reason) or a record type;
 * a message has a session, an allowed outcome and, under EVR_R_MSG_ID, an
 * id; a session has an id, an allowed outcome and a NUL-terminated zone
 * list; a feedback record names a session or a message and is spam or ham.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/evread.h"
#include "util/jsonl.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* check - one read with these flags */
static void
check(const struct jl_doc *d, unsigned flags)
{
	struct evr_rec rec;
	char	err[160];
	int	rc;

	err[0] = '\0';
	rc = evr_read(d, jl_root(d), flags, &rec, err, sizeof(err));
	if (rc < 0) {
		if (err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL)
			abort();
		return;
	}
	switch (rc) {
	case EVR_MESSAGE:
		if (rec.u.m.session == NULL || (rec.u.m.outcome != OC_NONE &&
		    !(outcome_flags(rec.u.m.outcome) & OC_F_MSG)) ||
		    ((flags & EVR_R_MSG_ID) && rec.u.m.id == NULL))
			abort();
		break;
	case EVR_SESSION:
		if (rec.u.s.id == NULL || (rec.u.s.outcome != OC_NONE &&
		    !(outcome_flags(rec.u.s.outcome) & OC_F_SESS)) ||
		    strlen(rec.u.s.dnsbl_zones) >= EVR_ZONES_MAX ||
		    ((flags & EVR_R_SESS_START) && rec.u.s.start_ms ==
		    INT64_MIN))
			abort();
		break;
	case EVR_FEEDBACK:
		if ((rec.u.f.session == NULL && rec.u.f.message == NULL) ||
		    (rec.u.f.verdict != OC_SPAM && rec.u.f.verdict != OC_HAM))
			abort();
		break;
	case EVR_OTHER:
		break;
	default:
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jl_doc d;
	char	err[200], *copy;

	if ((copy = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	jl_doc_init(&d);
	if (jl_parse(&d, copy, size, err, sizeof(err)) == 0) {
		check(&d, EVR_R_SESSION | EVR_R_MESSAGE | EVR_R_FEEDBACK |
		    EVR_R_MSG_ID | EVR_R_SESS_START | EVR_R_ZONES);
		check(&d, EVR_R_SESSION | EVR_R_MESSAGE | EVR_R_FEEDBACK);
	}
	jl_doc_free(&d);
	free(copy);
	return 0;
}
