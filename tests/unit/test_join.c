/*
 * test_join.c - cmocka tests for src/report/join.c
 *
 * What it tests: on small logs (join_cases[]), which sessions reach the
 * session callback with their held messages and which become orphans,
 * and when: the age bound, the cap on waiting sessions, the cap on
 * waiting messages, the end of the log; that every slot comes back exactly
 * once; lines and garbage counted; the peaks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "report/join.h"
#include "util/jsonl.h"

#define M(s, t) "{\"type\":\"message\",\"session\":\"" s "\",\"outcome\":" \
	"\"delivered\",\"time\":\"1970-01-01T" t "Z\"}\n"
#define S(s) "{\"type\":\"session\",\"id\":\"" s "\"}\n"

struct join_case {
	const char *log;
	int64_t	max_age_ms;
	size_t	max_open, max_held;
	const char *want;	/* "S<id>:<held>" / "O<id>:<held>" in order */
	unsigned long garbage;
	size_t	peak_open, peak_held;
};

static const struct join_case join_cases[] = {
	/* Joined; a session without messages; an orphan at the end. */
	{M("a", "00:00:01") M("a", "00:00:02") M("b", "00:00:02") S("a")
	    S("c") "junk\n", 3600000, SIZE_MAX, SIZE_MAX,
	    "Sa:2 Sc:0 Ob:1 ", 1, 2, 3},
	/* Age: b is flushed once the clock is a minute past it. */
	{M("b", "00:00:01") M("a", "00:01:02") S("a") S("b"), 60000,
	    SIZE_MAX, SIZE_MAX, "Ob:1 Sa:1 Sb:0 ", 0, 2, 2},
	/* At most one waiting session. */
	{M("a", "00:00:01") M("b", "00:00:02") S("b") S("a"), 3600000, 1,
	    SIZE_MAX, "Oa:1 Sb:1 Sa:0 ", 0, 2, 2},
	/* At most two waiting messages. */
	{M("a", "00:00:01") M("a", "00:00:01") M("b", "00:00:02") S("b")
	    S("a"), 3600000, SIZE_MAX, 2, "Oa:2 Sb:1 Sa:0 ", 0, 2, 3},
};

struct tj {
	char	got[256];
	int	slots;		/* slots made minus slots handed back */
};

struct tslot {
	int	held;
	char	id[8];
};

/* tj_message - hold every message */
static int
tj_message(void *arg, struct join *j, const struct evr_rmessage *m,
    unsigned long lineno)
{
	struct tj *t = arg;
	struct tslot *s;
	int	isnew;

	(void)lineno;
	if ((s = join_hold(j, m, 0, &isnew)) == NULL)
		return -1;
	if (isnew) {
		t->slots++;
		snprintf(s->id, sizeof(s->id), "%s", m->session);
	}
	s->held++;
	return 0;
}

/* tj_session - note "S<id>:<held>" */
static int
tj_session(void *arg, const struct evr_rsession *rs, void *slot,
    unsigned long lineno)
{
	struct tj *t = arg;
	struct tslot *s = slot;
	size_t	n = strlen(t->got);

	(void)lineno;
	snprintf(t->got + n, sizeof(t->got) - n, "S%s:%d ", rs->id,
	    s ? s->held : 0);
	if (s != NULL)
		t->slots--;
	return 0;
}

/* tj_orphan - note "O<id>:<held>" */
static int
tj_orphan(void *arg, void *slot, int64_t first_ms)
{
	struct tj *t = arg;
	struct tslot *s = slot;
	size_t	n = strlen(t->got);

	(void)first_ms;
	snprintf(t->got + n, sizeof(t->got) - n, "O%s:%d ", s->id, s->held);
	t->slots--;
	return 0;
}

static const struct join_ops tj_ops = {
	.message = tj_message,
	.session = tj_session,
	.orphan = tj_orphan,
};

/* test_join - every row of join_cases[] */
static void
test_join(void **state)
{
	const struct join_stats *st;
	struct join_opts o;
	struct jl_reader rd;
	struct join *j;
	struct tj t;
	char	err[160];
	size_t	i;
	FILE	*f;

	(void)state;
	for (i = 0; i < sizeof(join_cases) / sizeof(join_cases[0]); i++) {
		const struct join_case *c = &join_cases[i];

		memset(&t, 0, sizeof(t));
		memset(&o, 0, sizeof(o));
		o.name = "test";
		o.flags = EVR_R_SESSION | EVR_R_MESSAGE;
		o.quiet = 1;
		o.max_warnings = 20;
		o.max_age_ms = c->max_age_ms;
		o.max_open = c->max_open;
		o.max_held = c->max_held;
		o.slot_size = sizeof(struct tslot);
		f = fmemopen((void *)c->log, strlen(c->log), "r");
		assert_non_null(f);
		jl_reader_init(&rd, f, 4096);
		assert_non_null(j = join_new(&o, &tj_ops, &t));
		assert_int_equal(join_run(j, &rd, err, sizeof(err)), 0);
		st = join_stats(j);
		if (strcmp(t.got, c->want) != 0)
			fail_msg("case %zu: got '%s', want '%s'", i, t.got,
			    c->want);
		assert_int_equal(t.slots, 0);
		assert_int_equal(st->garbage, c->garbage);
		assert_int_equal(st->peak_open, c->peak_open);
		assert_int_equal(st->peak_held, c->peak_held);
		join_free(j);
		jl_reader_free(&rd);
		fclose(f);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_join),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
