/*
 * test_evaluate.c - cmocka tests for src/report/evaluate.c
 *
 * What it tests (RFC 3339 times are test_evread.c's): raw signature to
 * key (rawsig_cases[]), address to prefix (prefix_cases[]), --features lists
 * (feature_cases[]), the figures from distinct scores (metric_cases[]: 0%
 * FP with ties, the 0.1% FP allowance, undefined rates), and eval_run() on
 * small hand-written logs: messages joined with a session record that comes
 * after them, feedback overriding the outcome (per session and per
 * message, message beating session), deferred and backend_error skipped,
 * a session without a record flushed at the end, garbage lines counted,
 * and an unreadable file.
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

#include "report/evaluate.h"


struct str_case {
	const char *in;
	const char *out;	/* NULL: error */
};

static const struct str_case rawsig_cases[] = {
	{"4:57+7:0:1452:2920,0:mss,sok,ts,nop,ws:df,id+:0",
	    "4:64:0:1452:2920,0:mss,sok,ts,nop,ws:df,id+:0"},
	{"4:113+15:0:1460:8192,8:mss,nop,ws,nop,nop,sok:df,id+:0",
	    "4:128:0:1460:8192,8:mss,nop,ws,nop,nop,sok:df,id+:0"},
	{"*:64:0:1460:mss*20,7:mss,sok,ts,nop,ws:df,id+:0",
	    "*:64:0:1460:mss*20,7:mss,sok,ts,nop,ws:df,id+:0"},
	{"6:64+0:0:1440:mss*20,7:mss,sok,ts,nop,ws::0",
	    "6:64:0:1440:mss*20,7:mss,sok,ts,nop,ws::0"},
	{"4:x+1:0", "4:x+1:0"},
	{"4:64+:0", "4:64+:0"},
	{"garbage", "garbage"},
};

static const struct str_case prefix_cases[] = {
	{"192.0.2.7", "192.0.2.0/24"},
	{"10.1.2.255", "10.1.2.0/24"},
	{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
	{"2001:db8::1", "2001:db8::/64"},
	{"::ffff:192.0.2.9", "192.0.2.0/24"},
	{"::1", "::/64"},
	{"192.0.2", NULL},
	{"example.org", NULL},
	{"", NULL},
};

/* test_rawsig_prefix - rawsig_cases[] and prefix_cases[] */
static void
test_rawsig_prefix(void **state)
{
	char out[200];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rawsig_cases) / sizeof(rawsig_cases[0]); i++) {
		assert_int_equal(eval_rawsig_key(rawsig_cases[i].in, out,
		    sizeof(out)), 0);
		assert_string_equal(out, rawsig_cases[i].out);
	}
	assert_int_equal(eval_rawsig_key("4:57+7:0:1452", out, 8), -1);
	for (i = 0; i < sizeof(prefix_cases) / sizeof(prefix_cases[0]); i++) {
		int rc = eval_prefix(prefix_cases[i].in, 24, 64, out,
		    sizeof(out));

		if (prefix_cases[i].out == NULL) {
			assert_int_equal(rc, -1);
			continue;
		}
		assert_int_equal(rc, 0);
		assert_string_equal(out, prefix_cases[i].out);
	}
	/* Other lengths, as rep_prefix_v4 / rep_prefix_v6 allow. */
	assert_int_equal(eval_prefix("192.0.2.7", 16, 64, out, sizeof(out)),
	    0);
	assert_string_equal(out, "192.0.0.0/16");
	assert_int_equal(eval_prefix("2001:db8:1:2:3::9", 24, 48, out,
	    sizeof(out)), 0);
	assert_string_equal(out, "2001:db8:1::/48");
	assert_int_equal(eval_prefix("::ffff:10.1.2.3", 8, 48, out,
	    sizeof(out)), 0);
	assert_string_equal(out, "10.0.0.0/8");
	assert_int_equal(eval_prefix("192.0.2.7", 24, 64, out, 5), -1);
}

struct feature_case {
	const char *in;
	int	nsets;		/* -1: error */
	unsigned sets[4];
	const char *err;
};

static const struct feature_case feature_cases[] = {
	{"os", 1, {EVAL_F_OS}, NULL},
	{"os,rawsig,ip,prefix,dnsbl,all", 6, {EVAL_F_OS, EVAL_F_RAWSIG,
	    EVAL_F_IP, EVAL_F_PREFIX}, NULL},
	{"rawsig+prefix,all", 2, {EVAL_F_RAWSIG | EVAL_F_PREFIX, EVAL_F_ALL},
	    NULL},
	{"os+os", 1, {EVAL_F_OS}, NULL},
	{"", -1, {0}, "empty feature list"},
	{"os,,ip", -1, {0}, "empty item"},
	{"os,", -1, {0}, "empty item"},
	{"osx", -1, {0}, "unknown feature 'osx'"},
	{"os+", -1, {0}, "unknown feature ''"},
	{"a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", -1, {0}, "unknown feature 'a'"},
	{"os,os,os,os,os,os,os,os,os,os,os,os,os,os,os,os,os", -1, {0},
	    "more than 16 feature sets"},
};

/* test_features - every row of feature_cases[] */
static void
test_features(void **state)
{
	struct eval_opts o;
	char err[200];
	size_t i;
	int j;

	(void)state;
	eval_opts_init(&o);
	assert_int_equal(o.nsets, 6);
	assert_int_equal(o.sets[5], EVAL_F_ALL);
	assert_string_equal(o.names[5], "all");
	for (i = 0; i < sizeof(feature_cases) / sizeof(feature_cases[0]);
	    i++) {
		const struct feature_case *c = &feature_cases[i];
		int rc = eval_parse_features(c->in, &o, err, sizeof(err));

		if (c->nsets < 0) {
			if (rc != -1 || strstr(err, c->err) == NULL)
				fail_msg("'%s': rc %d err '%s'", c->in, rc,
				    err);
			continue;
		}
		assert_int_equal(rc, 0);
		assert_int_equal(o.nsets, c->nsets);
		for (j = 0; j < c->nsets && j < 4; j++)
			assert_int_equal(o.sets[j], c->sets[j]);
	}
}

struct metric_case {
	const char *name;
	struct eval_point p[8];
	size_t	n;
	double	r0, r01, prec;	/* -1: undefined */
};

static const struct metric_case metric_cases[] = {
	{"separable", {{5, 10, 0}, {1, 0, 10}, {-1, 0, 100}}, 3, 1, 1, 1},
	{"tie at the top", {{5, 10, 1}, {1, 0, 10}}, 2, 0, 0, -1},
	{"bad below the best good", {{5, 10, 0}, {3, 0, 1}, {2, 10, 0},
	    {0, 0, 50}}, 4, 0.5, 0.5, 1},
	/* 2000 good allow 2 above the threshold. */
	{"0.1% allowance", {{9, 40, 0}, {8, 0, 1}, {7, 40, 1}, {6, 20, 1},
	    {0, 0, 1997}}, 5, 0.4, 0.8, 80.0 / 82},
	{"999 good allow none", {{9, 5, 0}, {8, 0, 1}, {7, 5, 0},
	    {0, 0, 998}}, 4, 0.5, 0.5, 1},
	{"no good at all", {{1, 4, 0}, {0, 6, 0}}, 2, 1, 1, 1},
	{"no bad at all", {{1, 0, 4}}, 1, -1, -1, -1},
	{"empty", {{0, 0, 0}}, 0, -1, -1, -1},
};

/* near - equal within rounding, both undefined counting as equal */
static int
near(double a, double b)
{
	return (a < 0 && b < 0) || (a - b < 1e-9 && b - a < 1e-9);
}

/* test_metrics - every row of metric_cases[] */
static void
test_metrics(void **state)
{
	struct eval_point p[8];
	struct eval_result r;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(metric_cases) / sizeof(metric_cases[0]); i++) {
		const struct metric_case *c = &metric_cases[i];

		memcpy(p, c->p, sizeof(p));
		/* Unsorted input must not matter. */
		if (c->n > 1) {
			struct eval_point t = p[0];

			p[0] = p[c->n - 1];
			p[c->n - 1] = t;
		}
		memset(&r, 0, sizeof(r));
		eval_metrics(p, c->n, &r);
		if (!near(r.recall_0fp, c->r0) || !near(r.recall_01fp, c->r01) ||
		    !near(r.precision, c->prec))
			fail_msg("%s: got %g %g %g, want %g %g %g", c->name,
			    r.recall_0fp, r.recall_01fp, r.precision, c->r0,
			    c->r01, c->prec);
	}
}

/* write_log - a temp file holding text; returns its path (static) */
static const char *
write_log(const char *text)
{
	static char path[64];
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "/tmp/test_evaluate.XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

#define MSG(sid, n, t, oc, ip, raw, os) \
	"{\"type\":\"message\",\"session\":\"" sid "\",\"id\":\"" sid "." n \
	"\",\"time\":\"2026-11-27T20:" t "Z\",\"outcome\":\"" oc \
	"\",\"client_ip\":\"" ip "\",\"raw_sig\":\"" raw "\",\"os\":\"" os \
	"\"}\n"
#define SESS(sid, t, key, dnsbl) \
	"{\"type\":\"session\",\"id\":\"" sid "\",\"end\":\"2026-11-27T20:" \
	t "Z\",\"client_ip\":\"192.0.2.1\",\"fp\":{\"raw_sig\":\"r\"," \
	"\"key\":\"" key "\",\"os\":\"Linux\"},\"dnsbl\":" dnsbl "}\n"
#define FB(sid, msg, v) \
	"{\"type\":\"feedback\",\"time\":\"2026-11-27T21:00:00Z\"," \
	"\"session\":\"" sid "\",\"message\":" msg ",\"verdict\":\"" v "\"}\n"

/*
 * Train: S1 (key A) bad twice, S2 (key B) good, S3 (key B) good but
 * reported as spam for the session, S4 deferred (skipped).  Test: S5 key A
 * rejected, S6 key B delivered, S7 key B rejected but reported ham for the
 * message (session says spam: the message wins), S8 with no session record
 * (its own raw_sig gives key A).
 */
static const char small_log[] =
    MSG("S1", "1", "00:01", "rejected", "10.0.0.1", "4:57+7:a", "Linux")
    MSG("S2", "1", "00:02", "delivered", "10.0.0.2", "4:60+4:b", "Linux")
    MSG("S1", "2", "00:03", "abandoned", "10.0.0.1", "4:57+7:a", "Linux")
    SESS("S1", "00:04", "4:64:a", "null")
    "this line is garbage\n"
    SESS("S2", "00:05", "4:64:b", "{\"hits\":[]}")
    MSG("S3", "1", "00:06", "delivered", "10.0.0.3", "4:60+4:b", "Linux")
    SESS("S3", "00:07", "4:64:b", "null")
    MSG("S4", "1", "00:08", "deferred", "10.0.0.4", "4:60+4:b", "Linux")
    SESS("S4", "00:09", "4:64:b", "null")
    "\n"
    MSG("S5", "1", "10:01", "rejected", "10.0.0.5", "4:50+14:a", "Linux")
    MSG("S6", "1", "10:02", "delivered", "10.0.0.6", "4:60+4:b", "Linux")
    MSG("S7", "1", "10:03", "rejected", "10.0.0.7", "4:60+4:b", "Linux")
    SESS("S5", "10:04", "4:64:a", "null")
    SESS("S6", "10:05", "4:64:b", "null")
    SESS("S7", "10:06", "4:64:b", "null")
    MSG("S8", "1", "10:07", "protocol_error", "10.0.0.8", "4:57+7:a", "Linux")
    "{\"type\":\"message\",\"session\":\"S9\"}\n"
    "[1,2,3]\n"
    "{\"type\":\"somethingelse\"}\n"
    FB("S3", "null", "spam")
    FB("S7", "null", "spam")
    FB("S7", "\"S7.1\"", "ham")
    "{\"type\":\"feedback\",\"session\":\"S7\",\"verdict\":\"maybe\"}\n";

/* test_run_small - join, feedback, skipping, flushing, garbage */
static void
test_run_small(void **state)
{
	struct eval_result res[EVAL_MAX_SETS];
	struct eval_stats st;
	struct eval_opts o;
	const char *path = write_log(small_log);
	char err[200];

	(void)state;
	eval_opts_init(&o);
	o.train_fraction = 0.5;
	assert_int_equal(eval_parse_features("rawsig,os,dnsbl", &o, err,
	    sizeof(err)), 0);
	memset(res, 0, sizeof(res));
	if (eval_run(path, &o, res, &st, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	unlink(path);
	/* garbage: the text line, S9 (no id), [1,2,3], the bad verdict */
	assert_int_equal(st.garbage, 4);
	assert_int_equal(st.feedback, 3);
	assert_int_equal(st.messages, 9);
	assert_int_equal(st.train, 4);		/* S1 x2, S2, S3 */
	assert_int_equal(st.test, 4);		/* S5, S6, S7, S8 */
	assert_int_equal(st.unlabelled, 1);	/* S4 */
	assert_int_equal(st.unjoined, 1);	/* S8 */
	/* rawsig: A has 2 bad, B 1 bad 1 good.  Test bad: S5 (A), S8 (A);
	 * good: S6 (B), S7 (B, ham by feedback). */
	assert_string_equal(res[0].features, "rawsig");
	assert_int_equal(res[0].bad, 2);
	assert_int_equal(res[0].good, 2);
	assert_true(res[0].recall_0fp == 1.0);
	assert_true(res[0].precision == 1.0);
	/* os: everyone is "Linux": one score for all, nothing separable. */
	assert_true(res[1].recall_0fp == 0.0);
	assert_true(res[1].precision < 0);
	/* dnsbl: unknown ("?") for all but S2 and the unjoined S8. */
	assert_int_equal(res[2].messages, 4);
}

/* test_run_errors - unreadable file, a directory, and an empty log */
static void
test_run_errors(void **state)
{
	struct eval_result res[EVAL_MAX_SETS];
	struct eval_stats st;
	struct eval_opts o;
	const char *path;
	char err[200];

	(void)state;
	eval_opts_init(&o);
	assert_int_equal(eval_run("/nonexistent/log", &o, res, &st, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot open /nonexistent/log: No such"));
	assert_int_equal(eval_run("/tmp", &o, res, &st, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a regular file"));
	path = write_log("");
	memset(res, 0, sizeof(res));
	assert_int_equal(eval_run(path, &o, res, &st, err, sizeof(err)), 0);
	unlink(path);
	assert_int_equal(res[0].messages, 0);
	assert_true(res[0].recall_0fp < 0);
}

/* test_run_eviction - a session record that never comes is flushed */
static void
test_run_eviction(void **state)
{
	struct eval_result res[EVAL_MAX_SETS];
	struct eval_stats st;
	struct eval_opts o;
	const char *path;
	char err[200];

	(void)state;
	path = write_log(
	    MSG("A", "1", "00:01", "rejected", "10.0.0.1", "4:57+7:a", "L")
	    MSG("B", "1", "00:02", "delivered", "10.0.0.2", "4:60+4:b", "L")
	    MSG("C", "1", "30:01", "rejected", "10.0.0.1", "4:57+7:a", "L")
	    MSG("D", "1", "30:02", "delivered", "10.0.0.2", "4:60+4:b", "L")
	    SESS("C", "30:03", "4:64:a", "null"));
	eval_opts_init(&o);
	o.session_max_age_ms = 60 * 1000;
	o.max_pending = 2;
	memset(res, 0, sizeof(res));
	assert_int_equal(eval_run(path, &o, res, &st, err, sizeof(err)), 0);
	unlink(path);
	assert_int_equal(st.train, 2);
	assert_int_equal(st.test, 2);
	assert_int_equal(st.unjoined, 3);	/* A, B (age), D (end) */
	assert_true(st.peak_pending <= 2);
	assert_true(res[1].recall_0fp == 1.0);	/* rawsig */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rawsig_prefix),
		cmocka_unit_test(test_features),
		cmocka_unit_test(test_metrics),
		cmocka_unit_test(test_run_small),
		cmocka_unit_test(test_run_errors),
		cmocka_unit_test(test_run_eviction),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
