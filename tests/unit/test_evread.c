/*
 * test_evread.c - cmocka tests for src/log/evrec_read.c
 *
 * What it tests: RFC 3339 times (time_cases[], moved here from
 * test_evaluate.c with evr_time_ms()), records read from one JSON line
 * (read_cases[]: each type and the flags that ask for it, the reason of
 * every unusable record in the order the rules are checked, outcomes that
 * a record may not carry reading as OC_NONE) and the DNS list zones.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "log/evread.h"
#include "util/jsonl.h"

struct time_case {
	const char *in;
	int	ok;
	int64_t	ms;
};

static const struct time_case time_cases[] = {
	{"1970-01-01T00:00:00Z", 1, 0},
	{"1970-01-01T00:00:00.001Z", 1, 1},
	{"2026-11-27T20:44:03.120Z", 1, 1795812243120LL},
	{"2026-11-27T20:44:03.12Z", 1, 1795812243120LL},
	{"2026-11-27T20:44:03.123456Z", 1, 1795812243123LL},
	{"2026-11-27t20:44:03z", 1, 1795812243000LL},
	{"2026-11-27T21:44:03+01:00", 1, 1795812243000LL},
	{"2026-11-27T19:14:03-01:30", 1, 1795812243000LL},
	{"2000-02-29T00:00:00Z", 1, 951782400000LL},
	{"2026-11-27T20:44:03", 0, 0},
	{"2026-11-27T20:44:03.Z", 0, 0},
	{"2026-13-27T20:44:03Z", 0, 0},
	{"2026-11-27T24:00:00Z", 0, 0},
	{"2026-11-27T20:44:03Zjunk", 0, 0},
	{"27/11/2026 20:44:03", 0, 0},
	{"", 0, 0},
};

/* test_time - every row of time_cases[] */
static void
test_time(void **state)
{
	size_t i;
	int64_t ms;

	(void)state;
	assert_int_equal(evr_time_ms(NULL, &ms), -1);
	for (i = 0; i < sizeof(time_cases) / sizeof(time_cases[0]); i++) {
		int rc = evr_time_ms(time_cases[i].in, &ms);

		if (rc != (time_cases[i].ok ? 0 : -1))
			fail_msg("'%s': rc %d", time_cases[i].in, rc);
		if (rc == 0 && ms != time_cases[i].ms)
			fail_msg("'%s': %lld, want %lld", time_cases[i].in,
			    (long long)ms, (long long)time_cases[i].ms);
	}
}

#define ALL	(EVR_R_SESSION | EVR_R_MESSAGE | EVR_R_FEEDBACK)
#define T0	"\"time\":\"1970-01-01T00:00:01Z\""

struct read_case {
	const char *line;
	unsigned flags;
	int	rc;		/* enum evr_type, or -1 */
	const char *err;	/* the reason when rc is -1 */
	int	outcome;	/* message/session outcome, feedback verdict */
};

static const struct read_case read_cases[] = {
	{"[1]", ALL, -1, "not a JSON object", 0},
	{"{\"type\":1}", ALL, -1, "record without a string 'type'", 0},
	{"{\"type\":\"admin\"}", ALL, EVR_OTHER, NULL, 0},
	/* Types not asked for are not checked. */
	{"{\"type\":\"message\"}", EVR_R_SESSION, EVR_OTHER, NULL, 0},
	{"{\"type\":\"feedback\"}", EVR_R_MESSAGE, EVR_OTHER, NULL, 0},
	{"{\"type\":\"message\",\"session\":\"S\",\"outcome\":\"delivered\","
	    T0 "}", ALL, EVR_MESSAGE, NULL, OC_DELIVERED},
	/* A repeated member: the first counts (as jl_get()). */
	{"{\"type\":\"message\",\"session\":\"S\",\"outcome\":\"delivered\","
	    "\"outcome\":\"rejected\"," T0 "}", ALL, EVR_MESSAGE, NULL,
	    OC_DELIVERED},
	{"{\"type\":\"message\",\"session\":\"S\",\"outcome\":\"spam\"," T0
	    "}", ALL, EVR_MESSAGE, NULL, OC_NONE},
	{"{\"type\":\"message\",\"session\":\"S\",\"outcome\":\"what\"," T0
	    "}", ALL, EVR_MESSAGE, NULL, OC_NONE},
	{"{\"type\":\"message\",\"outcome\":\"delivered\"," T0 "}", ALL, -1,
	    "message record without a string 'session'", 0},
	{"{\"type\":\"message\",\"session\":\"S\"," T0 "}", ALL, -1,
	    "message record without a string 'outcome'", 0},
	/* With EVR_R_MSG_ID the id comes before the outcome. */
	{"{\"type\":\"message\",\"session\":\"S\"," T0 "}",
	    ALL | EVR_R_MSG_ID, -1, "message record without a string 'id'", 0},
	{"{\"type\":\"message\",\"session\":\"S\",\"id\":\"S.1\","
	    "\"outcome\":\"rejected\"," T0 "}", ALL | EVR_R_MSG_ID,
	    EVR_MESSAGE, NULL, OC_REJECTED},
	{"{\"type\":\"message\",\"session\":\"S\",\"outcome\":\"rejected\","
	    "\"time\":\"yesterday\"}", ALL, -1,
	    "message record without a valid 'time'", 0},
	{"{\"type\":\"session\",\"id\":\"S\",\"outcome\":\"abandoned\"}", ALL,
	    EVR_SESSION, NULL, OC_ABANDONED},
	{"{\"type\":\"session\",\"id\":\"S\",\"outcome\":\"delivered\"}", ALL,
	    EVR_SESSION, NULL, OC_NONE},
	{"{\"type\":\"session\",\"id\":\"S\"}", ALL | EVR_R_SESS_START, -1,
	    "session record without a valid 'start'", 0},
	{"{\"type\":\"session\",\"start\":\"1970-01-01T00:00:00Z\"}", ALL, -1,
	    "session record without a string 'id'", 0},
	{"{\"type\":\"feedback\",\"session\":\"S\",\"verdict\":\"spam\"}",
	    ALL, EVR_FEEDBACK, NULL, OC_SPAM},
	{"{\"type\":\"feedback\",\"message\":\"S.1\",\"verdict\":\"ham\"}",
	    ALL, EVR_FEEDBACK, NULL, OC_HAM},
	{"{\"type\":\"feedback\",\"verdict\":\"ham\"}", ALL, -1,
	    "feedback record without a string 'session'", 0},
	{"{\"type\":\"feedback\",\"session\":\"S\",\"message\":1,"
	    "\"verdict\":\"ham\"}", ALL, -1, "feedback record whose 'message' "
	    "is neither a string nor null", 0},
	{"{\"type\":\"feedback\",\"session\":\"S\",\"verdict\":\"listed\"}",
	    ALL, -1, "feedback record without a 'verdict' of \"spam\" or "
	    "\"ham\"", 0},
};

/* test_read - every row of read_cases[] */
static void
test_read(void **state)
{
	struct evr_rec rec;
	struct jl_doc d;
	char	err[160];
	size_t	i;
	int	rc, oc;

	(void)state;
	jl_doc_init(&d);
	for (i = 0; i < sizeof(read_cases) / sizeof(read_cases[0]); i++) {
		const struct read_case *c = &read_cases[i];

		err[0] = '\0';
		assert_int_equal(jl_parse(&d, c->line, strlen(c->line), err,
		    sizeof(err)), 0);
		rc = evr_read(&d, jl_root(&d), c->flags, &rec, err,
		    sizeof(err));
		if (rc != c->rc)
			fail_msg("%s: rc %d, want %d (%s)", c->line, rc, c->rc,
			    err);
		if (rc < 0) {
			assert_string_equal(err, c->err);
			continue;
		}
		oc = rc == EVR_MESSAGE ? (int)rec.u.m.outcome :
		    rc == EVR_SESSION ? (int)rec.u.s.outcome :
		    rc == EVR_FEEDBACK ? (int)rec.u.f.verdict : 0;
		if (oc != c->outcome)
			fail_msg("%s: outcome %d, want %d", c->line, oc,
			    c->outcome);
	}
	jl_doc_free(&d);
}

/* test_session_fields - what a full session record reads as */
static void
test_session_fields(void **state)
{
	static const char line[] = "{\"type\":\"session\",\"id\":\"S\","
	    "\"start\":\"1970-01-01T00:00:01Z\",\"end\":\"bad\","
	    "\"client_ip\":\"192.0.2.1\",\"class\":\"slow\",\"fp\":{\"os\":"
	    "\"Linux\",\"key\":\"4:64:k\",\"raw_sig\":\"4:60+4:k\"},\"dnsbl\":"
	    "{\"hits\":[{\"zone\":\"b.z\"},{\"zone\":\"a.z\"},{\"zone\":"
	    "\"b.z\"}]},\"messages\":0,\"gave_up_after_s\":2.5,"
	    "\"control\":true}";
	struct evr_rec rec;
	struct evr_rsession *s = &rec.u.s;
	struct jl_doc d;
	char	err[160];

	(void)state;
	jl_doc_init(&d);
	assert_int_equal(jl_parse(&d, line, strlen(line), err, sizeof(err)),
	    0);
	/* Without EVR_R_ZONES: asked, but the zones are not joined. */
	assert_int_equal(evr_read(&d, jl_root(&d), ALL, &rec, err,
	    sizeof(err)), EVR_SESSION);
	assert_int_equal(s->dnsbl_asked, 1);
	assert_string_equal(s->dnsbl_zones, "");
	assert_int_equal(evr_read(&d, jl_root(&d), ALL | EVR_R_ZONES, &rec,
	    err, sizeof(err)), EVR_SESSION);
	assert_string_equal(s->id, "S");
	assert_int_equal(s->start_ms, 1000);
	assert_true(s->end_ms == INT64_MIN);
	assert_string_equal(s->client_ip, "192.0.2.1");
	assert_string_equal(s->class_name, "slow");
	assert_int_equal(s->control, 1);
	assert_int_equal(s->fp, 1);
	assert_string_equal(s->fp_os, "Linux");
	assert_string_equal(s->fp_key, "4:64:k");
	assert_string_equal(s->fp_raw_sig, "4:60+4:k");
	assert_int_equal(s->dnsbl_asked, 1);
	assert_string_equal(s->dnsbl_zones, "a.z,b.z");
	assert_int_equal(s->has_messages, 1);
	assert_true(s->messages == 0);
	assert_true(s->gave_up_after_s == 2.5);
	/* fp null, dnsbl not an object, no messages, a negative wait */
	static const char bare[] = "{\"type\":\"session\",\"id\":\"S\","
	    "\"fp\":null,\"dnsbl\":5,\"gave_up_after_s\":-1}";
	assert_int_equal(jl_parse(&d, bare, strlen(bare), err, sizeof(err)),
	    0);
	assert_int_equal(evr_read(&d, jl_root(&d), ALL, &rec, err,
	    sizeof(err)), EVR_SESSION);
	assert_int_equal(s->fp, 0);
	assert_null(s->fp_os);
	assert_int_equal(s->dnsbl_asked, 0);
	assert_string_equal(s->dnsbl_zones, "");
	assert_int_equal(s->has_messages, 0);
	assert_true(s->gave_up_after_s < 0);
	assert_true(s->start_ms == INT64_MIN);
	assert_int_equal(s->outcome, OC_NONE);
	jl_doc_free(&d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_time),
		cmocka_unit_test(test_read),
		cmocka_unit_test(test_session_fields),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
