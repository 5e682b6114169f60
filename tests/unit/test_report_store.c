/*
 * test_report_store.c - `mailshaper report --store`: rp_store_run() against
 * a SQLite file and a redis-server the test starts itself on a free
 * loopback port (the Redis group is skipped, with a message, when
 * redis-server is not installed)
 *
 * Each store is filled through the rep API with the clock frozen at T0,
 * then read with now = T0 + one half-life, so every count is exactly half
 * of what was written.  Checked: the OS and raw-signature tables (values,
 * order, success rate, rep_estimate()'s p_spam), the JSON and CSV lines,
 * the ip key count, 2,500 OS keys (several SCAN batches, no key twice),
 * that the SQLite file is not written, a SQLite file with the table of the
 * version before the "listed" outcome (read as listed 0, not upgraded),
 * and the errors: --by class, a bad URL, a missing, corrupt or foreign
 * SQLite file, Redis down.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <sqlite3.h>

#include "conf/conf.h"
#include "rep/rep.h"
#include "report/report.h"

#define T0	1800000000000LL		/* a fixed "now", ms */
#define HL	(24 * 3600000LL)	/* half-life, ms */
#define NMANY	2500			/* OS keys of the batching test */

struct fx {
	char	dir[64];
	char	spec[256];
	int	redis;		/* 1 = the Redis group */
	int	port;
	pid_t	pid;
};

/* ------------------------------------------------------------ helpers */

static int
free_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int	fd = socket(AF_INET, SOCK_STREAM, 0), port;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

static pid_t
redis_start(int port, const char *dir)
{
	struct timeval tv = { 1, 0 };
	char	portstr[16];
	redisContext *c;
	redisReply *r;
	pid_t	pid;
	int	i, fd;

	snprintf(portstr, sizeof(portstr), "%d", port);
	if ((pid = fork()) == 0) {
		fd = open("/dev/null", O_WRONLY);
		dup2(fd, 1);
		execlp("redis-server", "redis-server", "--port", portstr,
		    "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		    "--dir", dir, (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 100; i++) {
		usleep(50000);
		c = redisConnectWithTimeout("127.0.0.1", port, tv);
		if (c == NULL || c->err) {
			if (c)
				redisFree(c);
			continue;
		}
		r = redisCommand(c, "FLUSHALL");
		redisFree(c);
		if (r != NULL) {
			freeReplyObject(r);
			return pid;
		}
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return 0;
}

/* fill - the store of the fixture, through the rep API, at T0 */
static void
fill(const char *spec, void (*body)(void))
{
	struct rep_counters rc;
	struct conf cf;
	char	err[256];

	memset(&cf, 0, sizeof(cf));
	snprintf(cf.rep_store, sizeof(cf.rep_store), "%s", spec);
	cf.rep_half_life = HL;
	cf.rep_prefix_v4 = 24;
	cf.rep_prefix_v6 = 64;
	cf.rep_cache_size = 10000;
	cf.rep_key_ttl = 90 * 24 * 3600000LL;
	rep_set_clock(T0);
	if (rep_open(NULL, &cf, err, sizeof(err)) < 0)
		fail_msg("rep_open(%s): %s", spec, err);
	body();
	assert_int_equal(rep_sync(10000), 0);
	rep_counters(&rc);
	rep_close();
	rep_set_clock(0);
	assert_int_equal(rc.store_errors, 0);
	assert_int_equal(rc.dropped, 0);
}

static void
upd(enum rep_keykind kind, const char *text, enum outcome oc, double w)
{
	struct rep_key k;

	k.kind = kind;
	snprintf(k.text, sizeof(k.text), "%s", text);
	rep_update(&k, oc, w);
}

/* known - the counts every test of the suite expects */
static void
known(void)
{
	upd(REPK_OS, "Linux 2.2.x-3.x", OC_DELIVERED, 16);
	upd(REPK_OS, "Linux 2.2.x-3.x", OC_REJECTED, 2);
	upd(REPK_OS, "Linux 2.2.x-3.x", OC_DEFERRED, 2);
	upd(REPK_OS, "Windows XP", OC_DELIVERED, 2);
	upd(REPK_OS, "Windows XP", OC_ABANDONED, 20);
	upd(REPK_OS, "Windows XP", OC_PROTOCOL_ERROR, 4);
	upd(REPK_OS, "Windows XP", OC_SPAM, 6);
	upd(REPK_OS, "Windows XP", OC_LISTED, 4);
	upd(REPK_OS, "only feedback", OC_HAM, 2);
	upd(REPK_RAWSIG, "00112233aabbccdd", OC_DELIVERED, 6);
	upd(REPK_RAWSIG, "00112233aabbccdd", OC_REJECTED, 2);
	upd(REPK_IP, "192.0.2.1", OC_DELIVERED, 1);
	upd(REPK_IP, "192.0.2.2", OC_DELIVERED, 1);
	upd(REPK_IP, "2001:db8::1", OC_REJECTED, 1);
	upd(REPK_PREFIX, "192.0.2.0/24", OC_DELIVERED, 2);
	upd(REPK_PREFIX_RAWSIG, "192.0.2.0/24|00112233aabbccdd",
	    OC_DELIVERED, 2);
	upd(REPK_DOMAIN, "example.net", OC_DELIVERED, 2);
}

static void
many(void)
{
	char	os[32];
	int	i;

	for (i = 0; i < NMANY; i++) {
		snprintf(os, sizeof(os), "OS %04d", i);
		upd(REPK_OS, os, OC_DELIVERED, 2);
	}
}

static int
run(struct fx *f, enum rp_by by, struct rp_report *rep)
{
	struct rp_opts o;
	char	err[512];
	int	rc;

	rp_opts_init(&o);
	o.by = by;
	o.now_ms = T0 + HL;
	o.half_life_ms = HL;
	rc = rp_store_run(f->spec, &o, rep, err, sizeof(err));
	if (rc < 0)
		print_message("rp_store_run: %s\n", err);
	return rc;
}

static char *
written(int (*w)(FILE *, const struct rp_report *),
    const struct rp_report *rep)
{
	char	*buf = NULL;
	size_t	len = 0;
	FILE	*f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(w(f, rep), 0);
	fclose(f);
	return buf;
}

/* ------------------------------------------------------------ setup */

static int
setup(void **state, int redis)
{
	static int serial;
	struct fx *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/test_report_store.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	f->redis = redis;
	if (redis) {
		f->port = free_port();
		if ((f->pid = redis_start(f->port, f->dir)) == 0)
			return -1;
		snprintf(f->spec, sizeof(f->spec), "redis://127.0.0.1:%d",
		    f->port);
	} else
		snprintf(f->spec, sizeof(f->spec), "sqlite:%s/rep%d.db",
		    f->dir, serial++);
	*state = f;
	return 0;
}

static int
setup_sqlite(void **state)
{
	return setup(state, 0);
}

static int
setup_redis(void **state)
{
	return setup(state, 1);
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char	cmd[128];

	if (f->pid) {
		kill(f->pid, SIGKILL);
		waitpid(f->pid, NULL, 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* ------------------------------------------------------------ tests */

static void
test_by_os(void **state)
{
	struct fx *f = *state;
	struct rp_report rep;
	const struct rp_group *g;
	char	*s;

	fill(f->spec, known);
	assert_int_equal(run(f, RP_BY_OS, &rep), 0);
	assert_int_equal(rep.store, 1);
	assert_int_equal(rep.by.by, RP_BY_OS);
	assert_int_equal(rep.by.n, 3);
	assert_int_equal(rep.os.n, 3);
	assert_int_equal(rep.rawsig.n, 1);
	assert_int_equal(rep.st.ip_keys, 3);
	assert_int_equal(rep.st.store_keys, 4);
	/* most (decayed) attempts first: XP 13, Linux 10, feedback-only 0 */
	g = &rep.by.g[0];
	assert_string_equal(g->label, "Windows XP");
	assert_true(g->est.counts[OC_DELIVERED] == 1);
	assert_true(g->est.counts[OC_ABANDONED] == 10);
	assert_true(g->est.counts[OC_PROTOCOL_ERROR] == 2);
	assert_true(g->est.counts[OC_SPAM] == 3);
	assert_true(g->est.counts[OC_LISTED] == 2);
	/* a listing is evidence, not a delivery attempt */
	assert_true(rp_store_attempts(g) == 13);
	assert_float_equal(rp_success_rate(g), 1.0 / 13, 1e-12);
	/* bad 17 (listed 2 among them), good 1: p = 18 / 20 */
	assert_float_equal(g->est.p_spam, 18.0 / 20, 1e-12);
	assert_float_equal(g->est.evidence, 18, 1e-12);
	assert_int_equal(g->senders, 0);
	g = &rep.by.g[1];
	assert_string_equal(g->label, "Linux 2.2.x-3.x");
	assert_true(g->est.counts[OC_DELIVERED] == 8);
	assert_true(g->est.counts[OC_DEFERRED] == 1);
	assert_float_equal(rp_success_rate(g), 0.8, 1e-12);
	g = &rep.by.g[2];
	assert_string_equal(g->label, "only feedback");
	assert_true(rp_success_rate(g) < 0);
	assert_true(g->est.counts[OC_HAM] == 1);

	s = written(rp_write_json, &rep);
	assert_non_null(strstr(s, "{\"type\":\"group\",\"by\":\"os\",\"group\":"
	    "\"Linux 2.2.x-3.x\",\"senders\":null,\"ok_senders\":null,"
	    "\"bad_senders\":null,\"sessions\":null,\"messages\":null,"
	    "\"attempts\":10,\"delivered\":8,\"success_rate\":0.8,"
	    "\"rejected\":1,\"deferred\":1,\"abandoned\":0,\"gave_up\":null,"
	    "\"protocol_error\":0,\"backend_error\":null,\"other\":null,"
	    "\"waited\":null,\"wait_mean_s\":null,\"wait_max_s\":null,"
	    "\"spam\":0,\"ham\":0,\"listed\":0,\"p_spam\":0.181818,"
	    "\"evidence\":9,"
	    "\"updated\":\"2027-01-15T08:00:00Z\"}\n"));
	assert_non_null(strstr(s, "\"group\":\"only feedback\""));
	assert_non_null(strstr(s, "\"success_rate\":null"));
	assert_non_null(strstr(s, "{\"type\":\"summary\",\"by\":\"os\","
	    "\"source\":\"store\""));
	assert_non_null(strstr(s, "\"groups\":3,\"keys\":4,\"ip_keys\":3,"
	    "\"decayed_to\":\"2027-01-16T08:00:00Z\",\"half_life_s\":86400,"));
	free(s);
	s = written(rp_write_csv, &rep);
	assert_non_null(strstr(s, "\r\nos,\"Windows XP\",,,,,,13,1,0.076923,"
	    "0,0,10,,2,,,,,,3,0,2,0.9,18,2027-01-15T08:00:00Z\r\n"));
	free(s);
	s = written(rp_write_text, &rep);
	assert_non_null(strstr(s, "not in the store"));
	free(s);
	s = written(rp_write_html, &rep);
	assert_non_null(strstr(s, "Omitted: patience_by_os"));
	assert_null(strstr(s, "id=\"patience_by_os\""));
	assert_non_null(strstr(s, "id=\"share_successful\""));
	assert_non_null(strstr(s, "id=\"success_by_rawsig\""));
	free(s);
	rp_report_free(&rep);
}

static void
test_by_rawsig(void **state)
{
	struct fx *f = *state;
	struct rp_report rep;
	char	*s;

	fill(f->spec, known);
	assert_int_equal(run(f, RP_BY_RAWSIG, &rep), 0);
	assert_int_equal(rep.by.by, RP_BY_RAWSIG);
	assert_int_equal(rep.by.n, 1);
	assert_int_equal(rep.os.n, 3);
	/* the store keeps the key hash, never the key text */
	assert_string_equal(rep.by.g[0].label, "00112233aabbccdd");
	s = written(rp_write_csv, &rep);
	assert_non_null(strstr(s, "\r\nrawsig,\"00112233aabbccdd\",,,,,,4,3,"
	    "0.750000,1,0,0,,0,,,,,,0,0,0,0.333333,4,2027-01-15T08:00:00Z\r\n"));
	free(s);
	rp_report_free(&rep);
}

static void
test_many_keys(void **state)
{
	struct fx *f = *state;
	struct rp_report rep;
	size_t	i;

	fill(f->spec, many);
	assert_int_equal(run(f, RP_BY_OS, &rep), 0);
	assert_int_equal(rep.by.n, NMANY);
	for (i = 0; i < rep.by.n; i++)
		assert_true(rep.by.g[i].est.counts[OC_DELIVERED] == 1);
	/* equal attempts: by label */
	assert_string_equal(rep.by.g[0].label, "OS 0000");
	assert_string_equal(rep.by.g[NMANY - 1].label, "OS 2499");
	rp_report_free(&rep);
}

static void
test_errors(void **state)
{
	struct fx *f = *state;
	struct rp_report rep;
	struct rp_opts o;
	char	err[512], spec[300];
	FILE	*fp;

	rp_opts_init(&o);
	o.by = RP_BY_CLASS;
	assert_int_equal(rp_store_run(f->spec, &o, &rep, err, sizeof(err)),
	    -2);
	assert_non_null(strstr(err, "no class keys"));
	o.by = RP_BY_HOUR;
	assert_int_equal(rp_store_run(f->spec, &o, &rep, err, sizeof(err)),
	    -2);
	o.by = RP_BY_OS;
	assert_int_equal(rp_store_run("mysql://x", &o, &rep, err,
	    sizeof(err)), -2);
	assert_int_equal(rp_store_run("redis://", &o, &rep, err,
	    sizeof(err)), -2);
	assert_int_equal(rp_store_run("sqlite:", &o, &rep, err,
	    sizeof(err)), -2);
	snprintf(spec, sizeof(spec), "sqlite:%s/missing.db", f->dir);
	assert_int_equal(rp_store_run(spec, &o, &rep, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "No such file"));
	snprintf(spec, sizeof(spec), "%s/corrupt.db", f->dir);
	fp = fopen(spec, "w");
	fputs("this is not a database, not even a little\n", fp);
	fclose(fp);
	snprintf(spec, sizeof(spec), "sqlite:%s/corrupt.db", f->dir);
	assert_int_equal(rp_store_run(spec, &o, &rep, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a database"));
	snprintf(spec, sizeof(spec), "sqlite:%s", f->dir);
	assert_int_equal(rp_store_run(spec, &o, &rep, err, sizeof(err)), -1);
	snprintf(spec, sizeof(spec), "redis://127.0.0.1:%d", free_port());
	assert_int_equal(rp_store_run(spec, &o, &rep, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot connect"));
}

/*
 * SQLite only: a file written by the version before "listed" (its exact
 * table, no listed column) reads with listed 0, and stays as it was: the
 * report opens it read-only and never adds the column.
 */
static void
test_sqlite_old_schema(void **state)
{
	static const char old[] =
	    "CREATE TABLE IF NOT EXISTS rep ("
	    " kind TEXT NOT NULL, key TEXT NOT NULL, t INTEGER NOT NULL,"
	    " delivered REAL NOT NULL DEFAULT 0,"
	    " rejected REAL NOT NULL DEFAULT 0,"
	    " deferred REAL NOT NULL DEFAULT 0,"
	    " abandoned REAL NOT NULL DEFAULT 0,"
	    " protocol_error REAL NOT NULL DEFAULT 0,"
	    " spam REAL NOT NULL DEFAULT 0, ham REAL NOT NULL DEFAULT 0,"
	    " PRIMARY KEY (kind, key)) WITHOUT ROWID;";
	struct fx *f = *state;
	struct rp_report rep;
	const struct rp_group *g;
	sqlite3 *db;
	sqlite3_stmt *st;
	char	sql[1024], *s;
	int	cols = 0;

	snprintf(sql, sizeof(sql), "%s INSERT INTO rep VALUES ('os', "
	    "'Windows XP', %lld, 2, 0, 0, 20, 4, 6, 0), ('rawsig', "
	    "'00112233aabbccdd', %lld, 6, 2, 0, 0, 0, 0, 0), ('ip', "
	    "'192.0.2.1', %lld, 1, 0, 0, 0, 0, 0, 0)", old, (long long)T0,
	    (long long)T0, (long long)T0);
	assert_int_equal(sqlite3_open(f->spec + 7, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(run(f, RP_BY_OS, &rep), 0);
	assert_int_equal(rep.by.n, 1);
	assert_int_equal(rep.st.ip_keys, 1);
	g = &rep.by.g[0];
	assert_string_equal(g->label, "Windows XP");
	assert_true(g->est.counts[OC_ABANDONED] == 10);
	assert_true(g->est.counts[OC_SPAM] == 3);
	assert_true(g->est.counts[OC_LISTED] == 0);
	assert_float_equal(g->est.p_spam, 16.0 / 18, 1e-12);
	s = written(rp_write_json, &rep);
	assert_non_null(strstr(s, "\"spam\":3,\"ham\":0,\"listed\":0,"));
	free(s);
	rp_report_free(&rep);
	/* still the old table: reading did not upgrade it */
	assert_int_equal(sqlite3_open(f->spec + 7, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA table_info(rep)", -1,
	    &st, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		cols++;
		assert_string_not_equal((const char *)sqlite3_column_text(st, 1),
		    "listed");
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	assert_int_equal(cols, 10);
}

/* SQLite only: the report never writes the database file. */
static void
test_sqlite_readonly(void **state)
{
	struct fx *f = *state;
	struct rp_report rep;
	struct stat a, b;
	char	path[300];

	fill(f->spec, known);
	snprintf(path, sizeof(path), "%s", f->spec + 7);
	assert_int_equal(stat(path, &a), 0);
	assert_int_equal(chmod(path, 0444), 0);
	sleep(1);
	assert_int_equal(run(f, RP_BY_OS, &rep), 0);
	assert_int_equal(rep.by.n, 3);
	rp_report_free(&rep);
	assert_int_equal(stat(path, &b), 0);
	assert_int_equal(a.st_mtime, b.st_mtime);
	assert_int_equal(a.st_size, b.st_size);
}

int
main(void)
{
	const struct CMUnitTest sq[] = {
		cmocka_unit_test_setup_teardown(test_by_os, setup_sqlite,
		    teardown),
		cmocka_unit_test_setup_teardown(test_by_rawsig, setup_sqlite,
		    teardown),
		cmocka_unit_test_setup_teardown(test_many_keys, setup_sqlite,
		    teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup_sqlite,
		    teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_readonly,
		    setup_sqlite, teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_old_schema,
		    setup_sqlite, teardown),
	};
	const struct CMUnitTest rd[] = {
		cmocka_unit_test_setup_teardown(test_by_os, setup_redis,
		    teardown),
		cmocka_unit_test_setup_teardown(test_by_rawsig, setup_redis,
		    teardown),
		cmocka_unit_test_setup_teardown(test_many_keys, setup_redis,
		    teardown),
	};
	int	rc;

	signal(SIGPIPE, SIG_IGN);
	rc = cmocka_run_group_tests_name("report_store_sqlite", sq, NULL,
	    NULL);
	if (system("command -v redis-server >/dev/null 2>&1") != 0) {
		print_message("redis-server not found: skipping the Redis "
		    "tests (apt-get install redis-server)\n");
		return rc;
	}
	return rc | cmocka_run_group_tests_name("report_store_redis", rd,
	    NULL, NULL);
}
