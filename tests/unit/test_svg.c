/*
 * test_svg.c - cmocka tests for src/report/svg.c
 *
 * What it tests: text escaping and sanitising (text_cases[]: markup,
 * quotes, control characters, invalid, over-long and surrogate UTF-8,
 * truncation by characters), and the shape of each chart: one bar per
 * item, one slice per positive item (a full circle for a single one, the
 * large-arc flag past half), one bucket bar per series and bucket, "no
 * data" for empty input, hostile labels escaped everywhere, and -1 on a
 * write error.  Well-formedness is also checked with a real XML parser in
 * tests/blackbox/test_report.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "report/svg.h"

struct text_case {
	const char *in;
	size_t	max;
	const char *out;
};

#define FFFD	"\xef\xbf\xbd"

static const struct text_case text_cases[] = {
	{"plain", 0, "plain"},
	{"a<b>c", 0, "a&lt;b&gt;c"},
	{"&\"'", 0, "&amp;&quot;&#39;"},
	{"<script>alert(1)</script>", 0,
	    "&lt;script&gt;alert(1)&lt;/script&gt;"},
	{"]]>", 0, "]]&gt;"},
	{"\x1b[31mred\x7f", 0, "[31mred"},
	{"tab\there\nnl\r", 0, "tab\there\nnl"},
	{"\xff", 0, FFFD},
	{"a\xc3", 0, "a" FFFD},
	{"\xc0\x80", 0, FFFD FFFD},
	{"\xed\xa0\x80", 0, FFFD FFFD FFFD},
	{"\xf4\x90\x80\x80", 0, FFFD FFFD FFFD FFFD},
	{"\xef\xbf\xbe", 0, ""},
	{"h\xc3\xa9llo", 3, "h\xc3\xa9l\xe2\x80\xa6"},
	{"abc", 3, "abc"},
	{"abcd", 3, "abc\xe2\x80\xa6"},
	{"<<<<", 2, "&lt;&lt;\xe2\x80\xa6"},
	{"\xe2\x82\xac \xf0\x9f\x98\x80", 0, "\xe2\x82\xac \xf0\x9f\x98\x80"},
	{NULL, 0, ""},
};

/* capture - what fn wrote to a memory stream; caller frees */
static char *
text_of(const char *in, size_t max)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	svg_text(f, in, max);
	assert_int_equal(fclose(f), 0);
	return buf;
}

/* test_text - every row of text_cases[] */
static void
test_text(void **state)
{
	size_t i;
	char *s;

	(void)state;
	for (i = 0; i < sizeof(text_cases) / sizeof(text_cases[0]); i++) {
		s = text_of(text_cases[i].in, text_cases[i].max);
		if (strcmp(s, text_cases[i].out) != 0)
			fail_msg("case %zu: got '%s' want '%s'", i, s,
			    text_cases[i].out);
		free(s);
	}
}

/* count - occurrences of needle in hay */
static int
count(const char *hay, const char *needle)
{
	int n = 0;

	while ((hay = strstr(hay, needle)) != NULL) {
		n++;
		hay += strlen(needle);
	}
	return n;
}

static const char hostile[] = "<script>x</script>\"&'\x1b\xff";

/* chart_check - things every chart must be */
static void
chart_check(const char *s)
{
	assert_int_equal(strncmp(s, "<svg xmlns=\"http://www.w3.org/2000/svg\"",
	    39), 0);
	assert_int_equal(count(s, "<svg"), 1);
	assert_int_equal(count(s, "</svg>"), 1);
	assert_null(strstr(s, "<script"));
	assert_null(strstr(s, "\x1b"));
	assert_null(strstr(s, "href"));
	assert_int_equal(count(s, "<title>"), count(s, "</title>"));
	assert_int_equal(count(s, "<text"), count(s, "</text>"));
	assert_int_equal(count(s, "<g>"), count(s, "</g>"));
}

/* test_bars - one bar per item, labels escaped, vmax honoured */
static void
test_bars(void **state)
{
	struct svg_item it[3] = {
		{"Linux", 90, "90.0% of 10"},
		{hostile, 50, "50.0% of 2"},
		{NULL, -1, NULL},
	};
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	f = open_memstream(&buf, &len);
	assert_int_equal(svg_bars(f, "Success <by> OS", it, 3, 100), 0);
	fclose(f);
	chart_check(buf);
	/* The background and three bars. */
	assert_int_equal(count(buf, "<rect"), 4);
	assert_non_null(strstr(buf, "Success &lt;by&gt; OS"));
	assert_non_null(strstr(buf, "&lt;script&gt;x&lt;/script&gt;"
	    "&quot;&amp;&#39;" FFFD));
	/* 90 of 100 over a 280 px scale. */
	assert_non_null(strstr(buf, "width=\"252.0\""));
	assert_non_null(strstr(buf, "width=\"0.0\""));
	free(buf);

	f = open_memstream(&buf, &len);
	assert_int_equal(svg_bars(f, "empty", it, 0, 0), 0);
	fclose(f);
	chart_check(buf);
	assert_non_null(strstr(buf, "no data"));
	free(buf);
}

/* test_share - slices, the single-slice circle, the large arc, no data */
static void
test_share(void **state)
{
	struct svg_item it[3] = {
		{"Linux", 3, "3 senders"},
		{hostile, 1, NULL},
		{"none", 0, NULL},
	};
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	f = open_memstream(&buf, &len);
	assert_int_equal(svg_share(f, "share", it, 3), 0);
	fclose(f);
	chart_check(buf);
	assert_int_equal(count(buf, "<path"), 2);
	assert_int_equal(count(buf, "<circle"), 0);
	assert_non_null(strstr(buf, "Linux \xe2\x80\x94 75.0%"));
	assert_non_null(strstr(buf, " 0 1 1 "));	/* 75%: large arc */
	assert_null(strstr(buf, ">none"));
	free(buf);

	f = open_memstream(&buf, &len);
	assert_int_equal(svg_share(f, "one", it, 1), 0);
	fclose(f);
	chart_check(buf);
	assert_int_equal(count(buf, "<path"), 0);
	assert_int_equal(count(buf, "<circle"), 1);
	assert_non_null(strstr(buf, "Linux \xe2\x80\x94 100.0%"));
	free(buf);

	f = open_memstream(&buf, &len);
	assert_int_equal(svg_share(f, "zero", it + 2, 1), 0);
	fclose(f);
	chart_check(buf);
	assert_non_null(strstr(buf, "no data"));
	free(buf);
}

/* test_histograms - a bar per bucket per series, bucket titles counted */
static void
test_histograms(void **state)
{
	static const char *const buckets[3] = { "<1s", "1-2s", ">=2s" };
	const double a[3] = { 1, 0, 5 }, b[3] = { 0, 2, 0 };
	struct svg_series s[2] = { { "Linux", a }, { hostile, b } };
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	f = open_memstream(&buf, &len);
	assert_int_equal(svg_histograms(f, "waits", buckets, 3, s, 2), 0);
	fclose(f);
	chart_check(buf);
	assert_int_equal(count(buf, "<rect"), 1 + 6);
	assert_non_null(strstr(buf, "<title>&lt;1s: 1</title>"));
	assert_non_null(strstr(buf, "<title>&gt;=2s: 5</title>"));
	assert_non_null(strstr(buf, "n=6"));
	assert_non_null(strstr(buf, "n=2"));
	free(buf);

	f = open_memstream(&buf, &len);
	assert_int_equal(svg_histograms(f, "none", buckets, 3, s, 0), 0);
	fclose(f);
	assert_non_null(strstr(buf, "no data"));
	free(buf);
}

/* test_write_error - a full disk is reported */
static void
test_write_error(void **state)
{
	struct svg_item it[1] = { {"x", 1, NULL} };
	FILE *f = fopen("/dev/full", "w");

	(void)state;
	if (f == NULL)
		skip();
	setvbuf(f, NULL, _IONBF, 0);
	assert_int_equal(svg_bars(f, "t", it, 1, 0), -1);
	fclose(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_bars),
		cmocka_unit_test(test_share),
		cmocka_unit_test(test_histograms),
		cmocka_unit_test(test_write_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
