/*
 * test_conf.c - cmocka tests for src/conf/conf.c and its man page
 *
 * What it tests:
 *   - the parameter table against doc/man/mailshaper.conf.5 (Postfix's
 *     check-postconf-undocumented): every row of conf_params[] has one
 *     ".TP" / ".B name" entry in the PARAMETERS section, every row of
 *     conf_class_keys[] one in the "Class keys" subsection, each entry
 *     states the row's type, default, range and reloadable flag, and no
 *     entry in those sections names something the table lacks;
 *   - conf_load() on the rows of good_cases[] (files and -o overrides: a
 *     listen list with IPv4, IPv6 and [::1]:2525 over continuation lines, a
 *     unix backend, class lines, client_class_map, time and size units);
 *   - conf_load() on the rows of bad_cases[]: each must return NULL with
 *     exactly the expected "file:line: reason" text (unknown parameter,
 *     missing '=', bad number, out of range, unknown class key, a class
 *     that does not exist, continuation line without a parameter, NUL
 *     byte, ...);
 *   - conf_reload_merge() keeping non-reloadable values;
 *   - the table itself: conf_table_check() passes both tables and fails
 *     broken_rows[] (a string without a size, a size that does not fit
 *     the type, enum words missing or misplaced, no default, too many
 *     rows); every string row takes size - 1 bytes and refuses size;
 *     known member sizes; every enum word parses to its index and
 *     conf_word() prints it back; rep_weights defaults come from
 *     rep_kinds[], a partial list zeroes the rest, an unknown kind fails.
 * Temporary files are made under /tmp with mkstemp() and removed.
 * The man page is found from __FILE__ (or $MAILSHAPER_SRCDIR).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "conf/conf.h"

#define MAN_PAGE	"doc/man/mailshaper.conf.5"
#define THIS_FILE	"tests/unit/test_conf.c"

/* ---- the man page ---------------------------------------------------- */

/* man_path - the man page, relative to the repository root */
static void
man_path(char *buf, size_t len)
{
	const char *src = getenv("MAILSHAPER_SRCDIR");
	size_t	n = strlen(__FILE__), t = strlen(THIS_FILE);

	if (src != NULL && *src) {
		snprintf(buf, len, "%s/%s", src, MAN_PAGE);
		return;
	}
	/* __FILE__ is "tests/unit/test_conf.c" or "/abs/root/tests/...". */
	if (n >= t && strcmp(__FILE__ + n - t, THIS_FILE) == 0)
		snprintf(buf, len, "%.*s%s", (int)(n - t), __FILE__, MAN_PAGE);
	else
		snprintf(buf, len, "%s", MAN_PAGE);
}

#define MAN_MAX_LINES	4000

struct man {
	char   *text;
	char   *line[MAN_MAX_LINES];
	int	nline;
};

/* man_read - the page split into lines */
static void
man_read(struct man *m)
{
	char	path[PATH_MAX];
	FILE   *fp;
	long	size;
	char   *p;

	man_path(path, sizeof(path));
	if ((fp = fopen(path, "r")) == NULL) {
		print_error("cannot open %s (run from the repository root, or set MAILSHAPER_SRCDIR)\n", path);
		fail();
	}
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	size = ftell(fp);
	rewind(fp);
	m->text = malloc((size_t)size + 1);
	assert_non_null(m->text);
	assert_int_equal(fread(m->text, 1, (size_t)size, fp), (size_t)size);
	m->text[size] = 0;
	fclose(fp);
	m->nline = 0;
	for (p = m->text; *p && m->nline < MAN_MAX_LINES;) {
		char   *nl = strchr(p, '\n');

		m->line[m->nline++] = p;
		if (nl == NULL)
			break;
		*nl = 0;
		p = nl + 1;
	}
}

/* man_find - index of the line equal to s, from `from`, or -1 */
static int
man_find(const struct man *m, int from, const char *s)
{
	int	i;

	for (i = from; i < m->nline; i++)
		if (strcmp(m->line[i], s) == 0)
			return i;
	return -1;
}

/* man_is_heading - a line that ends an entry and a (sub)section */
static int
man_is_heading(const char *l)
{
	return strncmp(l, ".SH", 3) == 0 || strncmp(l, ".SS", 3) == 0;
}

struct entry {
	const char *name;	/* the ".B name" */
	int	first, last;	/* body lines [first, last) */
	int	seen;
};

/*
 * man_entries - the ".TP" + ".B name" entries between the heading lines
 * `start` and the next .SH/.SS
 */
static int
man_entries(const struct man *m, int start, struct entry *e, int max)
{
	int	i, n = 0;

	for (i = start + 1; i < m->nline && !man_is_heading(m->line[i]); i++) {
		if (strcmp(m->line[i], ".TP") != 0 || i + 1 >= m->nline ||
		    strncmp(m->line[i + 1], ".B ", 3) != 0)
			continue;
		if (n > 0)
			e[n - 1].last = i;
		assert_true(n < max);
		e[n].name = m->line[i + 1] + 3;
		e[n].first = i + 2;
		e[n].last = m->nline;
		e[n].seen = 0;
		n++;
	}
	if (n > 0 && e[n - 1].last > i)
		e[n - 1].last = i;
	return n;
}

/* type_name - the words an entry uses for a CT_* type */
static const char *
type_name(int t)
{
	switch (t) {
	case CT_STR:		return "string";
	case CT_INT:		return "integer";
	case CT_TIME:		return "time";
	case CT_SIZE:		return "size";
	case CT_BOOL:		return "boolean";
	case CT_ENUM:		return "one word";
	case CT_LISTEN:		return "list of endpoints";
	case CT_ENDPOINT:	return "endpoint";
	case CT_MAP:		return "list of network=class";
	case CT_CLASS:		return "list of key=value";
	case CT_PATHS:		return "list of paths";
	}
	return "?";
}

/* time_text - ms in the largest unit that divides it */
static void
time_text(long v, char *buf, size_t len)
{
	if (v == 0)
		snprintf(buf, len, "0");
	else if (v % 86400000 == 0)
		snprintf(buf, len, "%ldd", v / 86400000);
	else if (v % 3600000 == 0)
		snprintf(buf, len, "%ldh", v / 3600000);
	else if (v % 60000 == 0)
		snprintf(buf, len, "%ldm", v / 60000);
	else if (v % 1000 == 0)
		snprintf(buf, len, "%lds", v / 1000);
	else
		snprintf(buf, len, "%ldms", v);
}

/* entry_line - the first body line a row's entry must have */
static void
entry_line(const struct conf_param *p, char *buf, size_t len)
{
	char	a[64], b[64], words[128], def[512];
	const char *dv = conf_default(p, def, sizeof(def));
	size_t	n, w = 0;
	int	i;

	n = (size_t)snprintf(buf, len, "Type: %s", type_name(p->type));
	/* An enum's words come from its row, joined here independently. */
	for (i = 0; p->type == CT_ENUM && p->words[i]; i++)
		w += (size_t)snprintf(words + w, sizeof(words) - w, "%s%s",
		    i ? "|" : "", p->words[i]);
	if (p->type == CT_ENUM)
		n += (size_t)snprintf(buf + n, len - n, " (\\fB%s\\fR)", words);
	if (p->type == CT_BOOL)
		n += (size_t)snprintf(buf + n, len - n, " (\\fB%s\\fR)", p->unit);
	if (*dv)
		n += (size_t)snprintf(buf + n, len - n, ". Default: \\fB%s\\fR.",
		    dv);
	else
		n += (size_t)snprintf(buf + n, len - n, ". Default: empty.");
	if (p->type == CT_INT || p->type == CT_TIME || p->type == CT_SIZE) {
		if (p->type == CT_TIME) {
			time_text(p->min, a, sizeof(a));
			time_text(p->max, b, sizeof(b));
		} else {
			snprintf(a, sizeof(a), "%ld", p->min);
			snprintf(b, sizeof(b), "%ld", p->max);
		}
		if (p->max == LONG_MAX)
			n += (size_t)snprintf(buf + n, len - n,
			    " Range: %s or more", a);
		else
			n += (size_t)snprintf(buf + n, len - n,
			    " Range: %s to %s", a, b);
		if (*p->unit && p->type != CT_TIME)
			n += (size_t)snprintf(buf + n, len - n, " %s", p->unit);
		n += (size_t)snprintf(buf + n, len - n, ".");
	}
	snprintf(buf + n, len - n, " Reloadable: %s.",
	    p->reloadable ? "yes" : "no");
}

/* check_table - table rows and man entries of one section agree */
static void
check_table(const struct man *m, int heading, const struct conf_param *tab,
    const char *what)
{
	struct entry e[128];
	const struct conf_param *p;
	char	want[1024];
	int	n, i, errors = 0;

	assert_true(heading >= 0);
	n = man_entries(m, heading, e, 128);
	for (p = tab; p->name; p++) {
		int	found = 0;

		for (i = 0; i < n; i++) {
			if (strcmp(e[i].name, p->name) != 0)
				continue;
			found++;
			e[i].seen = 1;
			entry_line(p, want, sizeof(want));
			if (e[i].first >= e[i].last ||
			    strcmp(m->line[e[i].first], want) != 0) {
				print_error("%s %s: man page says\n  %s\n"
				    "table says\n  %s\n", what, p->name,
				    e[i].first < e[i].last ?
				    m->line[e[i].first] : "(nothing)", want);
				errors++;
			}
		}
		if (found != 1) {
			print_error("%s %s: %d entries in the man page, want 1\n",
			    what, p->name, found);
			errors++;
		}
	}
	for (i = 0; i < n; i++)
		if (!e[i].seen) {
			print_error("man page %s entry %s is not in the table\n",
			    what, e[i].name);
			errors++;
		}
	assert_int_equal(errors, 0);
}

/* test_man_parameters - conf_params[] vs the PARAMETERS section */
static void
test_man_parameters(void **state)
{
	struct man m;
	(void)state;

	man_read(&m);
	check_table(&m, man_find(&m, 0, ".SH PARAMETERS"), conf_params,
	    "parameter");
	free(m.text);
}

/* test_man_class_keys - conf_class_keys[] vs CLASSES, "Class keys" */
static void
test_man_class_keys(void **state)
{
	struct man m;
	int	sh;
	(void)state;

	man_read(&m);
	sh = man_find(&m, 0, ".SH CLASSES");
	assert_true(sh >= 0);
	check_table(&m, man_find(&m, sh, ".SS Class keys"), conf_class_keys,
	    "class key");
	free(m.text);
}

/* test_man_default_classes - each default class line shows its value */
static void
test_man_default_classes(void **state)
{
	const struct conf_param *p;
	struct man m;
	struct entry e[16];
	char	want[512];
	int	sh, n, i;
	(void)state;

	man_read(&m);
	sh = man_find(&m, man_find(&m, 0, ".SH CLASSES"), ".SS Default classes");
	assert_true(sh >= 0);
	n = man_entries(&m, sh, e, 16);
	for (p = conf_params; p->name; p++) {
		if (p->type != CT_CLASS)
			continue;
		snprintf(want, sizeof(want), ".B %s", p->defval);
		for (i = 0; i < n; i++)
			if (strcmp(e[i].name, p->name + 6) == 0)
				break;
		if (i == n || e[i].first >= e[i].last ||
		    strcmp(m.line[e[i].first], want) != 0) {
			print_error("default class %s: want \"%s\"\n",
			    p->name + 6, want);
			fail();
		}
	}
	free(m.text);
}

/* ---- conf_load() ----------------------------------------------------- */

/* Lengths are explicit so that files may contain NUL bytes. */
#define FILE_TEXT(lit)	lit, sizeof(lit) - 1

/* write_temp - text into a new /tmp file; its name into path */
static void
write_temp(const char *text, size_t len, char *path, size_t pathlen)
{
	int	fd;

	snprintf(path, pathlen, "/tmp/test_conf.XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
}

/* ep_is - the endpoint has this family, numeric host and port */
static void
ep_is(const struct endpoint *ep, int family, const char *host, int port)
{
	char	buf[INET6_ADDRSTRLEN];

	assert_int_equal(ep->ss.ss_family, family);
	if (family == AF_INET) {
		const struct sockaddr_in *sin =
		    (const struct sockaddr_in *)&ep->ss;

		inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
		assert_int_equal(ntohs(sin->sin_port), port);
	} else {
		const struct sockaddr_in6 *sin6 =
		    (const struct sockaddr_in6 *)&ep->ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
		assert_int_equal(ntohs(sin6->sin6_port), port);
	}
	assert_string_equal(buf, host);
}

/* check_defaults - an empty file gives the table's defaults */
static void
check_defaults(const struct conf *cf)
{
	const struct shclass *c;

	assert_int_equal(cf->nlisten, 1);
	ep_is(&cf->listen[0], AF_INET6, "::", 25);
	assert_int_equal(cf->listen_backlog, 4096);
	ep_is(&cf->backend, AF_INET, "127.0.0.1", 10025);
	assert_int_equal(cf->backend_identity, IDENT_XCLIENT);
	assert_int_equal(cf->backend_timeout, 300000);
	assert_int_equal(cf->backend_tls, 0);
	assert_string_equal(cf->eventlog, "/var/log/mailshaper/events.jsonl");
	assert_true(*cf->myhostname != 0);	/* gethostname() */
	assert_int_equal(cf->observe, 0);
	assert_string_equal(cf->default_class, "normal");
	assert_string_equal(cf->violation_class, "hostile");
	assert_int_equal(cf->nmap, 0);
	assert_int_equal(cf->nclasses, 4);
	assert_int_equal(cf->bare_policy, BARE_NORMALIZE);
	assert_int_equal(cf->nsignatures, 0);
	assert_non_null(conf_class(cf, "trusted"));
	assert_non_null(c = conf_class(cf, "normal"));
	assert_int_equal(c->banner_delay, 0);
	assert_int_equal(c->stutter_interval, 1000);
	assert_int_equal(c->max_share, 100);
	assert_non_null(c = conf_class(cf, "suspect"));
	assert_int_equal(c->banner_delay, 15000);
	assert_int_equal(c->reply_delay, 2000);
	assert_int_equal(c->rate_in, 64 * 1024);
	assert_int_equal(c->rate_out, 8 * 1024);
	assert_int_equal(c->session_time, 30 * 60000);
	assert_int_equal(c->max_share, 50);
	assert_non_null(c = conf_class(cf, "hostile"));
	assert_int_equal(c->banner_delay, 290000);
	assert_int_equal(c->reply_delay, 290000);
	assert_int_equal(c->stutter, 1);
	assert_int_equal(c->stutter_interval, 10000);
	assert_int_equal(c->rate_in, 2048);
	assert_int_equal(c->rate_out, 512);
	assert_int_equal(c->max_messages, 1);
	assert_int_equal(c->max_rcpt, 5);
	assert_int_equal(c->max_per_client, 2);
	assert_int_equal(c->max_share, 40);
	assert_int_equal(c->session_time, 3600000);
	assert_int_equal(c->action, ACTION_RELAY);
	assert_null(conf_class(cf, "nosuch"));
}

/* check_full - the listen list, unix backend, class and map file */
static void
check_full(const struct conf *cf)
{
	const struct shclass *c;
	const struct sockaddr_un *sun =
	    (const struct sockaddr_un *)&cf->backend.ss;
	struct sockaddr_in sin;

	assert_int_equal(cf->nlisten, 4);
	ep_is(&cf->listen[0], AF_INET, "192.0.2.25", 25);
	ep_is(&cf->listen[1], AF_INET6, "2001:db8::25", 25);
	ep_is(&cf->listen[2], AF_INET6, "::1", 2525);
	ep_is(&cf->listen[3], AF_INET, "127.0.0.1", 2526);
	assert_int_equal(sun->sun_family, AF_UNIX);
	assert_string_equal(sun->sun_path, "/var/spool/postfix/private/smtpd");
	assert_int_equal(cf->backend_identity, IDENT_PROXY);
	assert_int_equal(cf->backend_connect_timeout, 250);
	assert_int_equal(cf->backend_timeout, 90000);
	assert_int_equal(cf->grace_time, 1500);
	assert_int_equal(cf->smtp_timeout, 2000);
	assert_int_equal(cf->message_size_limit, 10L * 1024 * 1024);
	assert_int_equal(cf->observe, 1);
	assert_int_equal(cf->bare_policy, BARE_REJECT);
	assert_string_equal(cf->myhostname, "mx.example.org");
	assert_string_equal(cf->eventlog, "");
	assert_int_equal(cf->nsignatures, 2);
	assert_string_equal(cf->signatures[0], "/etc/a.fp");
	assert_string_equal(cf->signatures[1], "/etc/b.fp");
	assert_int_equal(cf->nclasses, 5);
	assert_non_null(c = conf_class(cf, "grey_list2"));
	assert_int_equal(c->banner_delay, 20000);
	assert_int_equal(c->reply_delay, 60000);
	assert_int_equal(c->stutter, 2);
	assert_int_equal(c->stutter_interval, 1000);	/* key default */
	assert_int_equal(c->rate_in, 1024L * 1024 * 1024);
	assert_int_equal(c->session_time, 86400000);
	assert_int_equal(c->action, ACTION_TEMPFAIL);
	assert_string_equal(cf->default_class, "grey_list2");
	assert_int_equal(cf->nmap, 3);
	assert_string_equal(cf->map[0].class_name, "trusted");
	assert_string_equal(cf->map[1].class_name, "hostile");
	assert_string_equal(cf->map[2].class_name, "grey_list2");
	assert_int_equal(cf->map[2].net.family, AF_INET6);
	assert_int_equal(cf->map[2].net.plen, 64);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	inet_pton(AF_INET, "192.0.2.77", &sin.sin_addr);
	assert_int_equal(addr_cidr_match(&cf->map[0].net,
	    (struct sockaddr *)&sin), 1);
}

/* check_overrides - -o wins over the file, the last -o wins */
static void
check_overrides(const struct conf *cf)
{
	assert_int_equal(cf->listen_backlog, 300);
	assert_int_equal(cf->observe, 1);
	assert_int_equal(cf->nlisten, 2);
	ep_is(&cf->listen[0], AF_INET6, "::1", 2525);
	ep_is(&cf->listen[1], AF_INET, "0.0.0.0", 2526);
	assert_string_equal(cf->default_class, "suspect");
}

/* check_class_replaced - a class line replaces the whole class */
static void
check_class_replaced(const struct conf *cf)
{
	const struct shclass *c = conf_class(cf, "hostile");

	assert_non_null(c);
	assert_int_equal(c->banner_delay, 60000);
	assert_int_equal(c->reply_delay, 0);
	assert_int_equal(c->stutter, 0);
	assert_int_equal(c->max_share, 100);
	assert_int_equal(cf->nclasses, 4);
}

/* check_crlf - CRLF files and last-one-wins */
static void
check_crlf(const struct conf *cf)
{
	assert_int_equal(cf->listen_backlog, 200);
	assert_int_equal(cf->backend_identity, IDENT_NONE);
	ep_is(&cf->backend, AF_INET6, "::1", 10026);
}

struct good_case {
	const char *label;
	const char *text;	/* NULL: no file */
	size_t	len;
	const char *ovr[4];
	void	(*check)(const struct conf *);
};

static const struct good_case good_cases[] = {
	{"empty file: the table's defaults", FILE_TEXT(""), {NULL},
	    check_defaults},
	{"no file: the table's defaults", NULL, 0, {NULL}, check_defaults},
	{"comments and blank lines only", FILE_TEXT(
	    "# mailshaper.conf\n\n   \n\t# indented comment\n"), {NULL},
	    check_defaults},
	{"listen list, unix backend, class, map, units", FILE_TEXT(
	    "# front end\n"
	    "listen = 192.0.2.25:25, [2001:db8::25]:25\n"
	    "    [::1]:2525,127.0.0.1:2526\n"
	    "backend = unix:/var/spool/postfix/private/smtpd\n"
	    "backend_identity = proxy\n"
	    "backend_connect_timeout = 250ms\n"
	    "backend_timeout = 1.5m\n"
	    "grace_time = 1.5s\n"
	    "smtp_timeout = 2\n"
	    "message_size_limit = 10m\n"
	    "observe = yes\n"
	    "bare_policy = reject\n"
	    "myhostname = mx.example.org\n"
	    "eventlog =\n"
	    "signatures = /etc/a.fp,/etc/b.fp\n"
	    "class_grey_list2 = banner_delay=20s reply_delay=1m\n"
	    "\tstutter=2 rate_in=1g session_time=1d action=tempfail\n"
	    "client_class_map = 192.0.2.0/24=trusted, 198.51.100.0/24=hostile\n"
	    "  2001:db8:1:2::/64=grey_list2\n"
	    "default_class = grey_list2\n"), {NULL}, check_full},
	{"-o overrides the file, last one wins", FILE_TEXT(
	    "listen_backlog = 100\nobserve = no\ndefault_class = suspect\n"),
	    {"listen_backlog=200", "listen = [::1]:2525 2526", "observe=yes",
	    "listen_backlog = 300"}, check_overrides},
	{"-o alone", NULL, 0, {"listen_backlog=300", "observe = yes",
	    "listen=[::1]:2525,2526", "default_class=suspect"},
	    check_overrides},
	{"a class line replaces the whole class", FILE_TEXT(
	    "class_hostile = banner_delay=60s\n"), {NULL},
	    check_class_replaced},
	{"CRLF line ends, last setting wins", FILE_TEXT(
	    "listen_backlog = 100\r\nbackend = [::1]:10026\r\n"
	    "backend_identity = none\r\nlisten_backlog = 200\r\n"), {NULL},
	    check_crlf},
};

/* load - conf_load() a case's file and overrides */
static struct conf *
load(const char *text, size_t len, const char *const *ovr, char *path,
    size_t pathlen, char *err, size_t errlen)
{
	char   *ov[4];
	int	n;
	struct conf *cf;

	for (n = 0; n < 4 && ovr[n]; n++)
		ov[n] = (char *)ovr[n];
	*path = 0;
	if (text != NULL)
		write_temp(text, len, path, pathlen);
	cf = conf_load(text ? path : NULL, ov, n, err, errlen);
	if (text != NULL)
		unlink(path);
	return cf;
}

/* test_good_cases - every good_cases[] row loads and checks out */
static void
test_good_cases(void **state)
{
	size_t	i;
	(void)state;

	for (i = 0; i < sizeof(good_cases) / sizeof(good_cases[0]); i++) {
		const struct good_case *tc = &good_cases[i];
		char	path[64], err[512] = "";
		struct conf *cf;

		cf = load(tc->text, tc->len, tc->ovr, path, sizeof(path), err,
		    sizeof(err));
		if (cf == NULL) {
			print_error("%s: %s\n", tc->label, err);
			fail();
		}
		tc->check(cf);
		conf_free(cf);
	}
}


struct bad_case {
	const char *label;
	const char *text;	/* NULL: no file */
	size_t	len;
	const char *ovr[2];
	const char *want;	/* "%s" is the file's path */
	int	line;		/* the line the error names (0: -o) */
};

/* 17 listen addresses, one more than CONF_MAX_LISTEN. */
#define L17 "listen = 10.0.0.1:1 10.0.0.1:2 10.0.0.1:3 10.0.0.1:4 10.0.0.1:5 " \
	"10.0.0.1:6 10.0.0.1:7 10.0.0.1:8 10.0.0.1:9 10.0.0.1:10 10.0.0.1:11 " \
	"10.0.0.1:12 10.0.0.1:13 10.0.0.1:14 10.0.0.1:15 10.0.0.1:16 " \
	"10.0.0.1:17\n"

/* 13 new classes, 17 in all. */
#define C13 "class_c1 = max_rcpt=1\nclass_c2 = max_rcpt=1\n" \
	"class_c3 = max_rcpt=1\nclass_c4 = max_rcpt=1\nclass_c5 = max_rcpt=1\n" \
	"class_c6 = max_rcpt=1\nclass_c7 = max_rcpt=1\nclass_c8 = max_rcpt=1\n" \
	"class_c9 = max_rcpt=1\nclass_c10 = max_rcpt=1\n" \
	"class_c11 = max_rcpt=1\nclass_c12 = max_rcpt=1\n" \
	"class_c13 = max_rcpt=1\n"

static const struct bad_case bad_cases[] = {
	{"unknown parameter", FILE_TEXT("# x\nfoo = 1\n"), {NULL},
	    "%s:2: foo: unknown parameter 'foo'", 2},
	{"missing '='", FILE_TEXT("listen 127.0.0.1:25\n"), {NULL},
	    "%s:1: missing '=' in \"listen 127.0.0.1:25\"", 1},
	{"missing name", FILE_TEXT("\n= 5\n"), {NULL},
	    "%s:2: missing parameter name", 2},
	{"bad number", FILE_TEXT("listen_backlog = abc\n"), {NULL},
	    "%s:1: listen_backlog: 'abc' is not a non-negative number", 1},
	{"negative number", FILE_TEXT("grace_time = -1s\n"), {NULL},
	    "%s:1: grace_time: '-1s' is not a non-negative number", 1},
	{"not an integer", FILE_TEXT("listen_backlog = 12x\n"), {NULL},
	    "%s:1: listen_backlog: '12x' is not an integer", 1},
	{"fraction for an integer", FILE_TEXT("smtp_error_limit = 2.5\n"),
	    {NULL}, "%s:1: smtp_error_limit: '2.5' is not an integer", 1},
	{"out of range", FILE_TEXT("\n\nlisten_backlog = 10\n"), {NULL},
	    "%s:3: listen_backlog: '10' is out of range (16..65535)", 3},
	{"time out of range", FILE_TEXT("smtp_timeout = 500ms\n"), {NULL},
	    "%s:1: smtp_timeout: '500ms' is out of range (1000ms..3600000ms)",
	    1},
	{"unknown time unit", FILE_TEXT("smtp_timeout = 5x\n"), {NULL},
	    "%s:1: smtp_timeout: '5x' has an unknown unit 'x'", 1},
	{"unknown size unit", FILE_TEXT("message_size_limit = 5t\n"), {NULL},
	    "%s:1: message_size_limit: '5t' has an unknown unit 't'", 1},
	{"bad boolean", FILE_TEXT("observe = true\n"), {NULL},
	    "%s:1: observe: 'true' is not yes or no", 1},
	{"bad enum", FILE_TEXT("backend_identity = haproxy\n"), {NULL},
	    "%s:1: backend_identity: 'haproxy' is not one of xclient|proxy|none",
	    1},
	{"IPv6 without brackets", FILE_TEXT("listen = ::1:25\n"), {NULL},
	    "%s:1: listen: bad address '::1:25': write IPv6 as [addr]:port",
	    1},
	{"host name as address", FILE_TEXT("backend = mx.example:25\n"), {NULL},
	    "%s:1: backend: bad address 'mx.example:25': need a numeric IP "
	    "address", 1},
	{"relative unix path", FILE_TEXT("backend = unix:smtpd\n"), {NULL},
	    "%s:1: backend: bad unix socket path 'unix:smtpd'", 1},
	{"too many listen addresses", FILE_TEXT(L17), {NULL},
	    "%s:1: listen: more than 16 addresses", 1},
	{"infinite integer", FILE_TEXT("listen_backlog = inf\n"), {NULL},
	    "%s:1: listen_backlog: 'inf' is not a non-negative number", 1},
	{"huge integer", FILE_TEXT("listen_backlog = 1e30\n"), {NULL},
	    "%s:1: listen_backlog: '1e30' is not an integer", 1},
	{"NaN time", FILE_TEXT("smtp_timeout = nan\n"), {NULL},
	    "%s:1: smtp_timeout: 'nan' is not a non-negative number", 1},
	{"empty listen", FILE_TEXT("listen = ,\n"), {NULL},
	    "%s:1: listen: no listen address", 1},
	{"error in a continued line names its first line", FILE_TEXT(
	    "# x\nlisten = 127.0.0.1:25,\n  [::1:25\nobserve = yes\n"), {NULL},
	    "%s:2: listen: bad address '[::1:25': missing ']'", 2},
	{"unknown class key", FILE_TEXT("class_x = banner_delay=1s foo=1\n"),
	    {NULL}, "%s:1: class_x: unknown class key 'foo'", 1},
	{"class key out of range", FILE_TEXT("class_x = banner_delay=300s\n"),
	    {NULL}, "%s:1: class_x: banner_delay: '300s' is out of range "
	    "(0ms..290000ms)", 1},
	{"class item without '='", FILE_TEXT("class_x = fast\n"), {NULL},
	    "%s:1: class_x: 'fast' is not key=value", 1},
	{"bad class action", FILE_TEXT("class_x = action=drop\n"), {NULL},
	    "%s:1: class_x: action: 'drop' is not one of relay|tempfail|reject",
	    1},
	{"bad class name", FILE_TEXT("class_Big = max_rcpt=1\n"), {NULL},
	    "%s:1: class_Big: bad class name 'Big' (lower case, digits, '_'; "
	    "at most 16 classes)", 1},
	{"too many classes", FILE_TEXT(C13), {NULL},
	    "%s:13: class_c13: bad class name 'c13' (lower case, digits, '_'; "
	    "at most 16 classes)", 13},
	{"bad map entry", FILE_TEXT("client_class_map = 10.0.0.0/8\n"), {NULL},
	    "%s:1: client_class_map: '10.0.0.0/8' is not network/len=class",
	    1},
	{"bad map prefix", FILE_TEXT("client_class_map = 10.0.0.0/33=normal\n"),
	    {NULL}, "%s:1: client_class_map: bad prefix length in '10.0.0.0/33'",
	    1},
	{"continuation line first", FILE_TEXT("  listen = 127.0.0.1:25\n"),
	    {NULL}, "%s:1: continuation line without a parameter", 1},
	{"continuation line after a comment", FILE_TEXT(
	    "listen_backlog = 100\n# note\n  200\n"), {NULL},
	    "%s:3: continuation line without a parameter", 3},
	{"NUL byte", FILE_TEXT("listen_backlog = 100\nsmtp_timeout = 1\0s\n"),
	    {NULL}, "%s:2: NUL byte in line", 2},
	/* Cross-parameter errors name the line that set the value. */
	{"default_class names no class", FILE_TEXT(
	    "observe = no\ndefault_class = nosuch\n"), {NULL},
	    "%s:2: default_class: no class 'nosuch'", 2},
	{"violation_class names no class", FILE_TEXT(
	    "violation_class = tarpit\n"), {NULL},
	    "%s:1: violation_class: no class 'tarpit'", 1},
	{"client_class_map names no class", FILE_TEXT(
	    "client_class_map = 10.0.0.0/8=nosuch\n"), {NULL},
	    "%s:1: client_class_map: no class 'nosuch'", 1},
	{"certificate without key", FILE_TEXT("tls_cert_file = /x.pem\n"),
	    {NULL}, "%s:1: tls_cert_file and tls_key_file must be set together",
	    1},
	{"backend is a listen address", FILE_TEXT(
	    "listen = 127.0.0.1:2525\nbackend = 127.0.0.1:2525\n"), {NULL},
	    "%s:2: backend 127.0.0.1:2525 is one of our own listen addresses",
	    2},
	/* -o errors name the override. */
	{"-o unknown parameter", FILE_TEXT(""), {"foo=bar"},
	    "-o foo=bar: foo: unknown parameter 'foo'", 0},
	{"-o missing '='", NULL, 0, {"observe"},
	    "-o observe: missing '=' in \"observe\"", 0},
	{"-o out of range", NULL, 0, {"class_hostile=reply_delay=11m"},
	    "-o class_hostile=reply_delay=11m: class_hostile: reply_delay: "
	    "'11m' is out of range (0ms..590000ms)", 0},
	{"-o class that does not exist", NULL, 0, {"default_class=x"},
	    "-o default_class: default_class: no class 'x'", 0},
	/* Kinds come from rep_kinds[]; the message lists them. */
	{"unknown reputation kind", FILE_TEXT(
	    "observe = no\nrep_weights = ip=1 asn=2\n"), {NULL},
	    "%s:2: rep_weights: 'asn' is not kind=weight with kind one of ip, "
	    "prefix, rawsig, os, prefix_rawsig, domain", 2},
	{"-o weight without a number", NULL, 0, {"rep_weights=os="},
	    "-o rep_weights: rep_weights: 'os' is not kind=weight with kind "
	    "one of ip, prefix, rawsig, os, prefix_rawsig, domain", 0},
	/* The last row of conf_params[] has its own setline[] slot. */
	{"the last row names its line", FILE_TEXT(
	    "admin_token = abcdefghijklmnop1234\n\nadmin_token_file = /x\n"),
	    {NULL}, "%s:3: admin_token_file: admin_token is set too; keep one "
	    "of them", 3},
	{"too long a string", FILE_TEXT("\ntrace_header = "
	    "X-01234567890123456789012345678901234567890123456789012345678901\n"),
	    {NULL}, "%s:2: trace_header: value too long (at most 63 bytes)", 2},
};

/* test_bad_cases - every bad_cases[] row fails with its exact text */
static void
test_bad_cases(void **state)
{
	size_t	i;
	(void)state;

	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *tc = &bad_cases[i];
		char	path[64], err[512], want[512], prefix[128];
		struct conf *cf;

		memset(err, 0, sizeof(err));
		cf = load(tc->text, tc->len, tc->ovr, path, sizeof(path), err,
		    sizeof(err));
		if (cf != NULL) {
			print_error("%s: loaded, want an error\n", tc->label);
			conf_free(cf);
			fail();
		}
		snprintf(want, sizeof(want), tc->want, path);
		if (strcmp(err, want) != 0) {
			print_error("%s:\n  got  \"%s\"\n  want \"%s\"\n",
			    tc->label, err, want);
			fail();
		}
		if (tc->line > 0) {
			snprintf(prefix, sizeof(prefix), "%s:%d: ", path,
			    tc->line);
			assert_memory_equal(err, prefix, strlen(prefix));
		}
	}
}

/* test_missing_file - an unreadable file names itself */
static void
test_missing_file(void **state)
{
	char	err[512];
	(void)state;

	assert_null(conf_load("/nonexistent/mailshaper.conf", NULL, 0, err,
	    sizeof(err)));
	assert_string_equal(err,
	    "/nonexistent/mailshaper.conf: No such file or directory");
}

/* test_reload_merge - non-reloadable values survive a reload */
static void
test_reload_merge(void **state)
{
	static const char *const a[] = {"listen=127.0.0.1:2525",
	    "backend=127.0.0.1:1", "syslog_name=old", "signatures=/a.fp"};
	static const char *const b[] = {"listen=127.0.0.1:2526",
	    "backend=127.0.0.1:2", "syslog_name=new", "listen_backlog=100"};
	char	path[64], err[512];
	struct conf *old, *fresh;
	(void)state;

	old = load(NULL, 0, a, path, sizeof(path), err, sizeof(err));
	fresh = load(NULL, 0, b, path, sizeof(path), err, sizeof(err));
	assert_non_null(old);
	assert_non_null(fresh);
	conf_reload_merge(fresh, old);
	ep_is(&fresh->listen[0], AF_INET, "127.0.0.1", 2525);	/* kept */
	ep_is(&fresh->backend, AF_INET, "127.0.0.1", 2);	/* reloaded */
	assert_string_equal(fresh->syslog_name, "old");
	assert_int_equal(fresh->listen_backlog, 4096);
	assert_int_equal(fresh->nsignatures, 1);
	assert_string_equal(fresh->signatures[0], "/a.fp");
	conf_free(old);
	conf_free(fresh);
}

/* ---- the table ------------------------------------------------------ */

struct tiny {
	long	n;
	int	flag;
	char	s[8];
};

static const char *const tiny_words[] = {"a", "b", NULL};

/* Rows that conf_table_check() must refuse, one fault each. */
static const struct {
	const char *label;
	struct conf_param row;
	const char *want;
} broken_rows[] = {
	{"string without a size", {"s", CT_STR, "", "", 0, 0, 1, "",
	    offsetof(struct tiny, s), 0, NULL, NULL},
	    "parameter table: s: no member size (write the row with OFF())"},
	{"integer in an int", {"flag", CT_INT, "1", "", 0, 9, 1, "",
	    offsetof(struct tiny, flag), sizeof(int), NULL, NULL},
	    "parameter table: flag: its member's size does not fit its type"},
	{"boolean in a long", {"n", CT_BOOL, "no", "yes|no", 0, 0, 1, "",
	    offsetof(struct tiny, n), sizeof(long), NULL, NULL},
	    "parameter table: n: its member's size does not fit its type"},
	{"member outside", {"s", CT_STR, "", "", 0, 0, 1, "",
	    offsetof(struct tiny, s), 64, NULL, NULL},
	    "parameter table: s: its member is outside the structure"},
	{"enum without words", {"flag", CT_ENUM, "a", "", 0, 0, 1, "",
	    offsetof(struct tiny, flag), sizeof(int), NULL, NULL},
	    "parameter table: flag: words are for CT_ENUM rows, and CT_ENUM "
	    "needs them"},
	{"words on a boolean", {"flag", CT_BOOL, "no", "yes|no", 0, 0, 1, "",
	    offsetof(struct tiny, flag), sizeof(int), tiny_words, NULL},
	    "parameter table: flag: words are for CT_ENUM rows, and CT_ENUM "
	    "needs them"},
	{"no default", {"s", CT_STR, NULL, "", 0, 0, 1, "",
	    offsetof(struct tiny, s), 8, NULL, NULL},
	    "parameter table: s: it needs exactly one of defval and defgen"},
};

/* test_table_check - both tables pass; each broken row fails */
static void
test_table_check(void **state)
{
	struct conf_param tab[2];
	char	err[256], want[256];
	size_t	i, rows;
	(void)state;

	assert_int_equal(conf_table_check(conf_params, sizeof(struct conf),
	    CONF_MAX_PARAMS, err, sizeof(err)), 0);
	assert_int_equal(conf_table_check(conf_class_keys,
	    sizeof(struct shclass), SIZE_MAX, err, sizeof(err)), 0);
	for (i = 0; i < sizeof(broken_rows) / sizeof(broken_rows[0]); i++) {
		memset(tab, 0, sizeof(tab));
		tab[0] = broken_rows[i].row;
		*err = 0;
		if (conf_table_check(tab, sizeof(struct tiny), 10, err,
		    sizeof(err)) != -1 || strcmp(err, broken_rows[i].want))
			fail_msg("%s: got \"%s\"", broken_rows[i].label, err);
	}
	/* The row count: setline[] has CONF_MAX_PARAMS slots. */
	for (rows = 0; conf_params[rows].name; rows++)
		;
	assert_true(rows <= CONF_MAX_PARAMS);
	assert_int_equal(conf_table_check(conf_params, sizeof(struct conf),
	    rows - 1, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "parameter table: more than %zu rows at "
	    "%s", rows - 1, conf_params[rows - 1].name);
	assert_string_equal(err, want);
}

/* test_string_sizes - each string row holds size - 1 bytes, not size */
static void
test_string_sizes(void **state)
{
	static const struct {
		const char *name;
		size_t	size;
	} known[] = {
		{"myhostname", sizeof(((struct conf *)0)->myhostname)},
		{"default_class", CONF_NAME_MAX},
		{"violation_class", CONF_NAME_MAX},
		{"explore_share", 16},
		{"first_contact_min_good", 16},
		{"trace_header", 64},
		{"dnsbl_sites", 1024},
		{"admin_token", 128},
		{"admin_token_file", 256},
	};
	const struct conf_param *p;
	char	val[2048], ovr[2100], err[512], *ov[1] = {ovr};
	struct conf *cf;
	size_t	i, strings = 0;
	(void)state;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		for (p = conf_params; p->name; p++)
			if (strcmp(p->name, known[i].name) == 0)
				break;
		assert_non_null(p->name);
		assert_int_equal(p->type, CT_STR);
		if (p->size != known[i].size)
			fail_msg("%s: size %zu, want %zu", p->name, p->size,
			    known[i].size);
	}
	for (p = conf_params; p->name; p++) {
		if (p->type != CT_STR)
			continue;
		strings++;
		assert_true(p->size > 1 && p->size < sizeof(val));
		/* size bytes: refused as too long, whatever else is wrong */
		memset(val, 'a', p->size);
		val[p->size] = 0;
		snprintf(ovr, sizeof(ovr), "%s=%s", p->name, val);
		cf = conf_load(NULL, ov, 1, err, sizeof(err));
		if (cf != NULL || strstr(err, "value too long") == NULL)
			fail_msg("%s: %zu bytes: \"%s\"", p->name, p->size,
			    cf ? "loaded" : err);
		/* size - 1 bytes: other checks may refuse it, length not */
		val[p->size - 1] = 0;
		snprintf(ovr, sizeof(ovr), "%s=%s", p->name, val);
		cf = conf_load(NULL, ov, 1, err, sizeof(err));
		if (cf == NULL && strstr(err, "value too long") != NULL)
			fail_msg("%s: %zu bytes: \"%s\"", p->name,
			    p->size - 1, err);
		conf_free(cf);
	}
	assert_true(strings >= 20);
}

/* test_enum_words - every word parses to its index and prints back */
static void
test_enum_words(void **state)
{
	const struct conf_param *tabs[] = {conf_params, conf_class_keys};
	const struct conf_param *p;
	char	ovr[256], err[512], *ov[1] = {ovr};
	struct conf *cf;
	size_t	t;
	int	i, enums = 0, v;
	(void)state;

	for (t = 0; t < 2; t++)
		for (p = tabs[t]; p->name; p++) {
			if (p->type != CT_ENUM)
				continue;
			enums++;
			for (i = 0; p->words[i]; i++) {
				assert_string_equal(conf_word(p->name, i),
				    p->words[i]);
				if (t == 0)
					snprintf(ovr, sizeof(ovr), "%s=%s",
					    p->name, p->words[i]);
				else
					snprintf(ovr, sizeof(ovr),
					    "class_normal=%s=%s", p->name,
					    p->words[i]);
				cf = conf_load(NULL, ov, 1, err, sizeof(err));
				if (cf == NULL)
					fail_msg("%s: %s", ovr, err);
				v = t == 0 ? *(int *)((char *)cf + p->off) :
				    *(const int *)((const char *)
				    conf_class(cf, "normal") + p->off);
				assert_int_equal(v, i);
				conf_free(cf);
			}
			assert_string_equal(conf_word(p->name, i), "?");
			assert_string_equal(conf_word(p->name, -1), "?");
		}
	assert_int_equal(enums, 3);
	/* Known answers: the enums of conf.h and their words. */
	assert_string_equal(conf_word("backend_identity", IDENT_XCLIENT),
	    "xclient");
	assert_string_equal(conf_word("backend_identity", IDENT_PROXY), "proxy");
	assert_string_equal(conf_word("backend_identity", IDENT_NONE), "none");
	assert_string_equal(conf_word("bare_policy", BARE_NORMALIZE),
	    "normalize");
	assert_string_equal(conf_word("bare_policy", BARE_REJECT), "reject");
	assert_string_equal(conf_word("action", ACTION_RELAY), "relay");
	assert_string_equal(conf_word("action", ACTION_TEMPFAIL), "tempfail");
	assert_string_equal(conf_word("action", ACTION_REJECT), "reject");
	assert_string_equal(conf_word("observe", 0), "?");	/* boolean */
	assert_string_equal(conf_word("nosuch", 0), "?");
}

/* test_rep_weights - defaults from rep_kinds[], partial lists, order */
static void
test_rep_weights(void **state)
{
	static const double want_default[REPK_NKINDS] = {
		[REPK_IP] = 1, [REPK_PREFIX] = 0.5, [REPK_RAWSIG] = 1.5,
		[REPK_OS] = 0.3, [REPK_PREFIX_RAWSIG] = 1, [REPK_DOMAIN] = 1.5,
	};
	const struct conf_param *p;
	char	err[512], def[512];
	char   *ov[1] = {(char *)"rep_weights = domain=-2.5, os=0 ip=3"};
	struct conf *cf;
	int	i;
	(void)state;

	for (p = conf_params; p->name; p++)
		if (strcmp(p->name, "rep_weights") == 0)
			break;
	assert_non_null(p->name);
	assert_string_equal(conf_default(p, def, sizeof(def)),
	    "ip=1 prefix=0.5 rawsig=1.5 os=0.3 prefix_rawsig=1 domain=1.5");
	assert_non_null(cf = conf_load(NULL, NULL, 0, err, sizeof(err)));
	for (i = 0; i < REPK_NKINDS; i++) {
		assert_true(cf->rep_weight[i] == want_default[i]);
		assert_true(cf->rep_weight[i] == rep_kinds[i].weight);
	}
	assert_int_equal(sizeof(cf->rep_weight) / sizeof(cf->rep_weight[0]),
	    REPK_NKINDS);
	conf_free(cf);
	/* A list names some kinds; the others weigh 0. */
	assert_non_null(cf = conf_load(NULL, ov, 1, err, sizeof(err)));
	assert_true(cf->rep_weight[REPK_DOMAIN] == -2.5);
	assert_true(cf->rep_weight[REPK_OS] == 0);
	assert_true(cf->rep_weight[REPK_IP] == 3);
	assert_true(cf->rep_weight[REPK_PREFIX] == 0);
	assert_true(cf->rep_weight[REPK_RAWSIG] == 0);
	assert_true(cf->rep_weight[REPK_PREFIX_RAWSIG] == 0);
	conf_free(cf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_man_parameters),
		cmocka_unit_test(test_man_class_keys),
		cmocka_unit_test(test_man_default_classes),
		cmocka_unit_test(test_good_cases),
		cmocka_unit_test(test_bad_cases),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_reload_merge),
		cmocka_unit_test(test_table_check),
		cmocka_unit_test(test_string_sizes),
		cmocka_unit_test(test_enum_words),
		cmocka_unit_test(test_rep_weights),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
