/*
 * test_report.c - cmocka tests for src/report/report.c
 *
 * What it tests: --by names and --since values (since_cases[]), and
 * rp_run() on a small hand-written log with exact expected figures
 * (os_want[] and rawsig_want[]): messages joined with a session record
 * that comes after them, backend_error not counted against the sender,
 * sessions that gave up before any message counted as attempts and as
 * unsuccessful senders, a sender with several sessions counted once,
 * fp null, an orphan session (messages without a session record) counted
 * from its messages, waits and their histogram, garbage lines counted;
 * then --since, the other groupings, eviction of an old open session, and
 * the writers' quoting (CSV doubles quotes, JSON escapes controls, text
 * replaces them).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "report/report.h"

struct since_case {
	const char *in;
	int	ok;
	int64_t	want;		/* with now = 1,000,000,000 ms */
};

#define NOW	1000000000LL

static const struct since_case since_cases[] = {
	{"1970-01-01T00:00:01Z", 1, 1000},
	{"2026-11-27T20:44:03.120Z", 1, 1795812243120LL},
	{"24h", 1, NOW - 24 * 3600000LL},
	{"7d", 1, NOW - 7 * 86400000LL},
	{"90m", 1, NOW - 90 * 60000LL},
	{"30s", 1, NOW - 30000},
	{"2w", 1, NOW - 14 * 86400000LL},
	{"1.5h", 1, NOW - 5400000},
	{"0h", 1, NOW},
	{"24", 0, 0},
	{"h", 0, 0},
	{"-1h", 0, 0},
	{"24hours", 0, 0},
	{"yesterday", 0, 0},
	{"", 0, 0},
};

/* test_args - --since and --by */
static void
test_args(void **state)
{
	enum rp_by by;
	char err[200];
	int64_t ms;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(since_cases) / sizeof(since_cases[0]); i++) {
		int rc = rp_parse_since(since_cases[i].in, NOW, &ms, err,
		    sizeof(err));

		if (rc != (since_cases[i].ok ? 0 : -1))
			fail_msg("since case %zu '%s': rc %d", i,
			    since_cases[i].in, rc);
		if (rc == 0 && ms != since_cases[i].want)
			fail_msg("since case %zu: %lld want %lld", i,
			    (long long)ms, (long long)since_cases[i].want);
		if (rc < 0)
			assert_non_null(strstr(err, "--since wants"));
	}
	assert_int_equal(rp_parse_by("os", &by), 0);
	assert_int_equal(by, RP_BY_OS);
	assert_int_equal(rp_parse_by("hour", &by), 0);
	assert_int_equal(by, RP_BY_HOUR);
	assert_int_equal(rp_parse_by("rawsig", &by), 0);
	assert_int_equal(by, RP_BY_RAWSIG);
	assert_int_equal(rp_parse_by("OS", &by), -1);
	assert_int_equal(rp_parse_by("", &by), -1);
}

#define T(s)	"\"2026-11-01T" s "Z\""
#define FP(os, key) "{\"raw_sig\":\"x\",\"key\":\"" key "\",\"os\":\"" os \
	"\",\"match\":\"exact\",\"dist\":7,\"link\":\"Ethernet\"}"
#define MSG(sid, n, t, oc, ip) "{\"type\":\"message\",\"session\":\"" sid \
	"\",\"id\":\"" sid "." n "\",\"time\":" T(t) ",\"outcome\":\"" oc \
	"\",\"client_ip\":\"" ip "\",\"os\":\"Linux\"," \
	"\"raw_sig\":\"4:57+7:0:1460:mss*20,7:mss:df:0\",\"class\":\"slow\"}\n"
#define SESS(id, t0, t1, ip, fp, dnsbl, n, oc, wait) "{\"type\":\"session\"," \
	"\"id\":\"" id "\",\"start\":" T(t0) ",\"end\":" T(t1) \
	",\"client_ip\":\"" ip "\",\"class\":\"normal\",\"fp\":" fp \
	",\"dnsbl\":" dnsbl ",\"messages\":" n ",\"outcome\":\"" oc \
	"\",\"gave_up_after_s\":" wait "}\n"
#define LISTED	"{\"score\":3,\"hits\":[{\"zone\":\"b.example\"}," \
	"{\"zone\":\"a.example\"}]}"
#define CLEAN	"{\"score\":0,\"hits\":[]}"

static const char small_log[] =
	MSG("S1", "1", "00:00:01", "delivered", "192.0.2.1")
	MSG("S1", "2", "00:00:02", "rejected", "192.0.2.1")
	SESS("S1", "00:00:00", "00:00:03", "192.0.2.1", FP("Linux", "K1"),
	    CLEAN, "2", "completed", "null")
	MSG("S2", "1", "00:01:01", "backend_error", "192.0.2.1")
	SESS("S2", "00:01:00", "00:01:02", "192.0.2.1", FP("Linux", "K1"),
	    "null", "1", "completed", "null")
	SESS("S3", "01:00:00", "01:00:12.5", "192.0.2.3",
	    FP("Windows", "KW"), LISTED, "0", "abandoned", "12.5")
	"{\"type\":\"message\",\"session\": oops\n"
	SESS("S4", "02:00:00", "02:11:40", "192.0.2.4",
	    FP("Windows", "KW"), LISTED, "0", "abandoned", "700")
	MSG("S5", "1", "03:00:05", "deferred", "192.0.2.3")
	MSG("S5", "2", "03:00:10", "abandoned", "192.0.2.3")
	SESS("S5", "03:00:00", "03:00:30", "192.0.2.3",
	    FP("Windows", "KW"), LISTED, "2", "abandoned", "30")
	SESS("S6", "04:00:00", "04:00:01", "192.0.2.6", "null", "null", "0",
	    "completed", "null")
	MSG("S7", "1", "05:00:00", "delivered", "192.0.2.7")
	"{\"type\":\"feedback\",\"session\":\"S1\",\"message\":null,"
	    "\"verdict\":\"spam\"}\n"
	"\n";

struct want {
	const char *label;
	uint64_t sessions, messages, delivered, rejected, deferred,
	    abandoned, backend_error, early, senders, ok, bad, attempts,
	    waited;
};

/* Linux: S1, S2, and S7 (an orphan, labelled from its message). */
static const struct want os_want[] = {
	{"Linux", 3, 4, 2, 1, 0, 0, 1, 0, 2, 2, 0, 3, 0},
	{"Windows", 3, 2, 0, 0, 1, 1, 0, 2, 2, 0, 2, 4, 3},
	{"(no SYN)", 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0},
};

static const struct want rawsig_want[] = {
	{"KW", 3, 2, 0, 0, 1, 1, 0, 2, 2, 0, 2, 4, 3},
	{"K1", 2, 3, 1, 1, 0, 0, 1, 0, 1, 1, 0, 2, 0},
	{"(no SYN)", 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0},
	{"4:64:0:1460:mss*20,7:mss:df:0", 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0,
	    1, 0},
};

/* write_log - a temp file holding text; returns its path (static) */
static const char *
write_log(const char *text)
{
	static char path[64];
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "/tmp/test_report.XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

/* check_table - a table is exactly want[], in order */
static void
check_table(const struct rp_table *t, const struct want *w, size_t n)
{
	size_t i;

	assert_int_equal(t->n, n);
	for (i = 0; i < n; i++) {
		const struct rp_group *g = &t->g[i];

		assert_string_equal(g->label, w[i].label);
		assert_int_equal(g->sessions, w[i].sessions);
		assert_int_equal(g->messages, w[i].messages);
		assert_int_equal(g->delivered, w[i].delivered);
		assert_int_equal(g->rejected, w[i].rejected);
		assert_int_equal(g->deferred, w[i].deferred);
		assert_int_equal(g->abandoned, w[i].abandoned);
		assert_int_equal(g->backend_error, w[i].backend_error);
		assert_int_equal(g->early, w[i].early);
		assert_int_equal(g->senders, w[i].senders);
		assert_int_equal(g->ok_senders, w[i].ok);
		assert_int_equal(g->bad_senders, w[i].bad);
		assert_int_equal(rp_attempts(g), w[i].attempts);
		assert_int_equal(g->waited, w[i].waited);
	}
}

/* test_run_small - exact figures on small_log */
static void
test_run_small(void **state)
{
	const char *path = write_log(small_log);
	struct rp_report rep;
	struct rp_opts o;
	const struct rp_group *g;
	char err[256];

	(void)state;
	rp_opts_init(&o);
	if (rp_run(path, &o, &rep, err, sizeof(err)) < 0)
		fail_msg("rp_run: %s", err);
	check_table(&rep.by, os_want, 3);
	check_table(&rep.os, os_want, 3);
	check_table(&rep.rawsig, rawsig_want, 4);
	assert_int_equal(rep.by.by, RP_BY_OS);
	assert_int_equal(rep.st.garbage, 1);
	assert_int_equal(rep.st.lines, 15);
	assert_int_equal(rep.st.sessions, 7);
	assert_int_equal(rep.st.messages, 6);
	assert_int_equal(rep.st.orphans, 1);
	assert_int_equal(rep.st.filtered, 0);
	assert_int_equal(rep.st.peak_open, 1);
	/* Linux: 2 delivered of 3 attempts (backend_error excluded). */
	assert_float_equal(rp_success_rate(&rep.by.g[0]), 2.0 / 3, 1e-9);
	assert_float_equal(rp_success_rate(&rep.by.g[1]), 0, 1e-9);
	assert_float_equal(rp_success_rate(&rep.by.g[2]), -1, 1e-9);
	/* Windows waited 12.5, 700 and 30 seconds. */
	g = &rep.by.g[1];
	assert_float_equal(g->wait_sum, 742.5, 1e-9);
	assert_float_equal(g->wait_max, 700, 1e-9);
	assert_int_equal(g->wait_hist[4], 1);		/* 10-20s */
	assert_int_equal(g->wait_hist[6], 1);		/* 30-60s */
	assert_int_equal(g->wait_hist[RP_NWAIT - 1], 1);	/* >=10m */
	rp_report_free(&rep);
	assert_null(rep.by.g);

	/* --since 01:30: S4, S5, S6 and the orphan S7 remain. */
	o.since_ms = 1793496600000LL;
	if (rp_run(path, &o, &rep, err, sizeof(err)) < 0)
		fail_msg("rp_run: %s", err);
	assert_int_equal(rep.st.sessions, 4);
	assert_int_equal(rep.st.filtered, 3);
	assert_int_equal(rep.by.n, 3);
	assert_string_equal(rep.by.g[0].label, "Windows");
	assert_int_equal(rep.by.g[0].sessions, 2);
	assert_int_equal(rep.by.g[0].early, 1);
	assert_int_equal(rep.by.g[0].bad_senders, 2);
	rp_report_free(&rep);

	/* By DNSBL listing, class and hour. */
	o.since_ms = INT64_MIN;
	o.by = RP_BY_DNSBL;
	if (rp_run(path, &o, &rep, err, sizeof(err)) < 0)
		fail_msg("rp_run: %s", err);
	assert_int_equal(rep.by.n, 4);
	assert_string_equal(rep.by.g[0].label, "a.example,b.example");
	assert_int_equal(rep.by.g[0].sessions, 3);
	assert_string_equal(rep.by.g[1].label, "(not asked)");
	assert_int_equal(rep.by.g[1].sessions, 2);
	assert_string_equal(rep.by.g[2].label, "(not listed)");
	assert_string_equal(rep.by.g[3].label, "(unknown)");
	check_table(&rep.os, os_want, 3);
	rp_report_free(&rep);
	o.by = RP_BY_CLASS;
	if (rp_run(path, &o, &rep, err, sizeof(err)) < 0)
		fail_msg("rp_run: %s", err);
	assert_int_equal(rep.by.n, 2);
	assert_string_equal(rep.by.g[0].label, "normal");
	assert_int_equal(rep.by.g[0].sessions, 6);
	assert_string_equal(rep.by.g[1].label, "slow");
	rp_report_free(&rep);
	o.by = RP_BY_HOUR;
	if (rp_run(path, &o, &rep, err, sizeof(err)) < 0)
		fail_msg("rp_run: %s", err);
	assert_int_equal(rep.by.n, 6);
	assert_string_equal(rep.by.g[0].label, "00");
	assert_int_equal(rep.by.g[0].sessions, 2);
	assert_string_equal(rep.by.g[5].label, "05");
	rp_report_free(&rep);
	unlink(path);
}

/* test_run_eviction - an open session is counted once the clock passes */
static void
test_run_eviction(void **state)
{
	static const char log[] =
		MSG("A", "1", "00:00:00", "delivered", "192.0.2.1")
		MSG("B", "1", "03:00:00", "rejected", "192.0.2.2")
		SESS("B", "02:59:59", "03:00:01", "192.0.2.2",
		    FP("Linux", "K1"), "null", "1", "completed", "null");
	const char *path = write_log(log);
	struct rp_report rep;
	struct rp_opts o;
	char err[256];

	(void)state;
	rp_opts_init(&o);
	if (rp_run(path, &o, &rep, err, sizeof(err)) < 0)
		fail_msg("rp_run: %s", err);
	/* A is counted when B's message moves the clock 3 h on. */
	assert_int_equal(rep.st.orphans, 1);
	assert_int_equal(rep.st.peak_open, 2);
	assert_int_equal(rep.st.sessions, 2);
	assert_int_equal(rep.by.n, 1);
	assert_int_equal(rep.by.g[0].senders, 2);
	assert_int_equal(rep.by.g[0].ok_senders, 1);
	assert_int_equal(rep.by.g[0].bad_senders, 1);
	rp_report_free(&rep);
	unlink(path);

	assert_int_equal(rp_run("/nonexistent/log", &o, &rep, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot open"));
	assert_int_equal(rp_run("/tmp", &o, &rep, err, sizeof(err)), -1);
}

/* capture - a writer's output for rep; caller frees */
static char *
capture(int (*w)(FILE *, const struct rp_report *),
    const struct rp_report *rep)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(w(f, rep), 0);
	fclose(f);
	return buf;
}

/* test_writers - quoting in CSV, JSON, text and HTML */
static void
test_writers(void **state)
{
	struct rp_group g[1];
	struct rp_report rep;
	char *s;

	(void)state;
	memset(&rep, 0, sizeof(rep));
	memset(g, 0, sizeof(g));
	g[0].label = (char *)"a\"b,c\x1b<i>\xff";
	g[0].sessions = 2;
	g[0].delivered = 1;
	g[0].rejected = 1;
	g[0].senders = 1;
	rep.by.by = RP_BY_OS;
	rep.by.g = g;
	rep.by.n = 1;
	rep.os = rep.by;
	s = capture(rp_write_csv, &rep);
	assert_non_null(strstr(s, "\r\nos,\"a\"\"b,c\x1b<i>\xef\xbf\xbd\","
	    "1,0,0,2,0,2,1,0.500000,1,"));
	free(s);
	s = capture(rp_write_json, &rep);
	assert_non_null(strstr(s, "\"group\":\"a\\\"b,c\\u001b<i>"
	    "\xef\xbf\xbd\""));
	assert_non_null(strstr(s, "\"success_rate\":0.5,"));
	assert_non_null(strstr(s, "\"wait_mean_s\":null"));
	free(s);
	s = capture(rp_write_text, &rep);
	assert_non_null(strstr(s, "a\"b,c?<i>\xef\xbf\xbd"));
	assert_non_null(strstr(s, "50.0%"));
	assert_null(strchr(s, '\x1b'));
	free(s);
	s = capture(rp_write_html, &rep);
	assert_non_null(strstr(s, "a&quot;b,c&lt;i&gt;\xef\xbf\xbd"));
	assert_null(strstr(s, "<i>"));
	assert_null(strchr(s, '\x1b'));
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_args),
		cmocka_unit_test(test_run_small),
		cmocka_unit_test(test_run_eviction),
		cmocka_unit_test(test_writers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
