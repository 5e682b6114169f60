/*
 * test_rep_store.c - one cmocka suite run against every reputation store
 *
 * What it tests, for memory-only, sqlite:/tmp/... and a redis-server the
 * test starts itself on a free loopback port (the Redis group is skipped,
 * with a message, when redis-server is not installed):
 *   - updates visible in the cache at once, without waiting for the store;
 *   - persistence: close, reopen, the first lookup is a miss (the prior)
 *     and schedules a fetch, the next one is warm and decayed;
 *   - a cache smaller than the working set: evicted keys come back from the
 *     store with their exact counts (fetch-after-write ordering);
 *   - two processes updating the same keys at once: nothing lost (atomic
 *     counters);
 *   - no rep_update()/rep_lookup() call takes more than 5 ms while 200,000
 *     updates stream through (the event loop never stalls).
 * Faults: SQLite killed with SIGKILL mid-stream (everything acknowledged is
 * there, the file is intact), SQLite locked by another connection, a
 * corrupt file, an unwritable path, the disk full (RLIMIT_FSIZE), the queue
 * full (updates dropped and counted, never blocking); Redis down at start
 * and restarted (updates made meanwhile arrive), and keys expiring.
 * Upgrades: the "listed" outcome round-trips through each store; a SQLite
 * file with the table of the version before it gains the column (also
 * with two processes opening it at once) and keeps its rows; an old Redis
 * hash without the field reads it as 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
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

#define T0	1800000000000LL		/* a fixed "now", ms */
#define HOUR	3600000LL
#define EPS	1e-6

enum store_kind { ST_MEMORY, ST_SQLITE, ST_REDIS };

struct fixture {
	enum store_kind kind;
	const char *name;
	char	dir[64];		/* scratch directory */
	char	spec[256];		/* rep_store of the current test */
	int	port;			/* redis */
	pid_t	redis;			/* 0 = not running */
	int	serial;			/* per-test file names */
};

/* ------------------------------------------------------------ helpers */

static void
conf_for(struct conf *cf, const char *spec, long cache)
{
	memset(cf, 0, sizeof(*cf));
	snprintf(cf->rep_store, sizeof(cf->rep_store), "%s", spec);
	cf->rep_half_life = 24 * HOUR;
	cf->rep_prefix_v4 = 24;
	cf->rep_prefix_v6 = 64;
	cf->rep_cache_size = cache;
	cf->rep_key_ttl = 90 * 24 * HOUR;
}

static void
open_or_fail(const char *spec, long cache)
{
	struct conf cf;
	char	err[512];

	conf_for(&cf, spec, cache);
	if (rep_open(NULL, &cf, err, sizeof(err)) < 0)
		fail_msg("rep_open(%s): %s", spec, err);
}

static struct rep_key
mkkey(enum rep_keykind kind, const char *fmt, ...)
{
	struct rep_key k;
	va_list	ap;

	memset(&k, 0, sizeof(k));
	k.kind = kind;
	va_start(ap, fmt);
	vsnprintf(k.text, sizeof(k.text), fmt, ap);
	va_end(ap);
	return k;
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/*
 * A stall meter: each timed call is bracketed by getrusage(RUSAGE_THREAD).
 * A call during which the thread was preempted (another process took the
 * CPU: the machine is shared) says nothing about our code, so only its CPU
 * time counts; every other call counts with its wall time, which includes
 * any wait on a lock or on I/O.  Target: no call over 5 ms.
 */
struct stall {
	double	worst;			/* ms, wall, calls not preempted */
	double	worst_cpu;		/* ms of CPU, any call */
	long	preempted;		/* calls excluded from worst */
	struct rusage ra;
	double	wa, ca;
};

static double
cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void
stall_begin(struct stall *s)
{
	getrusage(RUSAGE_THREAD, &s->ra);
	s->ca = cpu_ms();
	s->wa = now_ms();
}

static void
stall_end(struct stall *s)
{
	struct rusage rb;
	double	w = now_ms() - s->wa, c = cpu_ms() - s->ca;

	getrusage(RUSAGE_THREAD, &rb);
	if (c > s->worst_cpu)
		s->worst_cpu = c;
	if (rb.ru_nivcsw != s->ra.ru_nivcsw)
		s->preempted++;
	else if (w > s->worst)
		s->worst = w;
}

static void
stall_check(const struct stall *s, const char *what)
{
	print_message("%s: longest call %.3f ms (%.3f ms CPU; %ld calls "
	    "preempted by other processes, not counted)\n", what, s->worst,
	    s->worst_cpu, s->preempted);
	assert_true(s->worst < 5.0);
	assert_true(s->worst_cpu < 5.0);
}

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

static int
have_redis(void)
{
	return system("command -v redis-server >/dev/null 2>&1") == 0;
}

static redisContext *
redis_client(int port)
{
	struct timeval tv = { 1, 0 };
	redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);

	if (c != NULL && c->err) {
		redisFree(c);
		return NULL;
	}
	return c;
}

/* redis_start - redis-server on 127.0.0.1:port, no persistence; its pid */
static pid_t
redis_start(int port, const char *dir)
{
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
		if ((c = redis_client(port)) == NULL)
			continue;
		r = redisCommand(c, "PING");
		if (r != NULL) {
			freeReplyObject(r);
			redisFree(c);
			return pid;
		}
		redisFree(c);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	fail_msg("redis-server on port %d did not start", port);
	return 0;
}

static void
redis_stop(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* redis_field - HGET of a key's field as a number (-1 when absent) */
static double
redis_field(int port, const struct rep_key *k, const char *field,
    long long *pttl)
{
	redisContext *c = redis_client(port);
	redisReply *r;
	double	v = -1;

	assert_non_null(c);
	r = redisCommand(c, "HGET mailshaper:rep:%s:%s %s",
	    rep_keykind_name(k->kind), k->text, field);
	if (r != NULL && r->type == REDIS_REPLY_STRING)
		v = strtod(r->str, NULL);
	freeReplyObject(r);
	if (pttl != NULL) {
		r = redisCommand(c, "PTTL mailshaper:rep:%s:%s",
		    rep_keykind_name(k->kind), k->text);
		*pttl = r != NULL && r->type == REDIS_REPLY_INTEGER ?
		    r->integer : -3;
		freeReplyObject(r);
	}
	redisFree(c);
	return v;
}

/* sqlite_rows - rows in the reputation table (-1 if unreadable) */
static long
sqlite_rows(const char *path, const char *where)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	char	sql[256];
	long	n = -1;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM rep%s%s",
	    where ? " WHERE " : "", where ? where : "");
	if (sqlite3_open(path, &db) != SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

static int
sqlite_intact(const char *path)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int	ok = 0;

	if (sqlite3_open(path, &db) != SQLITE_OK)
		return 0;
	if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st,
	    NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		ok = strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
	sqlite3_finalize(st);
	sqlite3_close(db);
	return ok;
}

/* ------------------------------------------------------------ fixtures */

static struct fixture *group_fixture;	/* the group main() runs next */

static int
group_setup(void **state)
{
	struct fixture *f = group_fixture;

	*state = f;

	snprintf(f->dir, sizeof(f->dir), "/tmp/test_rep.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	if (f->kind == ST_REDIS && have_redis()) {
		f->port = free_port();
		f->redis = redis_start(f->port, f->dir);
	}
	return 0;
}

static int
group_teardown(void **state)
{
	struct fixture *f = *state;
	char	cmd[128];

	if (f->redis)
		redis_stop(f->redis);
	f->redis = 0;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* test_setup - a fresh store for each test */
static int
test_setup(void **state)
{
	struct fixture *f = *state;
	redisContext *c;
	redisReply *r;

	rep_set_clock(0);
	switch (f->kind) {
	case ST_MEMORY:
		f->spec[0] = '\0';
		break;
	case ST_SQLITE:
		snprintf(f->spec, sizeof(f->spec), "sqlite:%s/rep%d.db",
		    f->dir, ++f->serial);
		break;
	case ST_REDIS:
		if (!f->redis) {
			print_message("redis-server not found: skipping the "
			    "Redis tests (apt-get install redis-server)\n");
			skip();
		}
		snprintf(f->spec, sizeof(f->spec), "redis://127.0.0.1:%d",
		    f->port);
		if ((c = redis_client(f->port)) != NULL) {
			r = redisCommand(c, "FLUSHALL");
			freeReplyObject(r);
			redisFree(c);
		}
		break;
	}
	return 0;
}

static int
test_teardown(void **state)
{
	(void)state;
	rep_close();
	rep_set_clock(0);
	return 0;
}

/* ------------------------------------------------------------ suite */

static void
test_cache_first(void **state)
{
	struct fixture *f = *state;
	struct rep_key k = mkkey(REPK_RAWSIG, "4:64+0:1460:mss,nop,ws");
	struct rep_est e;
	int	i;

	open_or_fail(f->spec, 1000);
	rep_set_clock(T0);
	for (i = 0; i < 10; i++)
		rep_update(&k, i < 7 ? OC_SPAM : OC_DELIVERED, 1);
	/* visible at once, whatever the store is doing */
	rep_lookup(&k, &e);
	assert_true(fabs(e.counts[OC_SPAM] - 7) < EPS);
	assert_true(fabs(e.evidence - 10) < EPS);
	assert_true(fabs(e.p_spam - 8.0 / 12) < EPS);
	assert_int_equal(rep_sync(10000), f->kind == ST_MEMORY ? 0 : 0);
	rep_lookup(&k, &e);
	assert_true(fabs(e.evidence - 10) < EPS);
}

static void
test_persist(void **state)
{
	struct fixture *f = *state;
	struct rep_key keys[REPK_NKINDS];
	struct sockaddr_in sin;
	struct rep_counters c;
	struct rep_est e;
	int	n, i, j;

	if (f->kind == ST_MEMORY)
		skip();
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	inet_pton(AF_INET, "192.0.2.7", &sin.sin_addr);
	open_or_fail(f->spec, 1000);
	rep_set_clock(T0);
	n = rep_keys_for((struct sockaddr *)&sin, "abc123", "Linux 2.2.x-3.x",
	    "example.net", keys);
	assert_int_equal(n, REPK_NKINDS);	/* every kind from these inputs */
	for (i = 0; i < n; i++) {
		for (j = 0; j <= i; j++)
			rep_update(&keys[i], OC_REJECTED, 1);
		rep_update(&keys[i], OC_HAM, 0.5);
	}
	assert_int_equal(rep_sync(10000), 0);
	rep_close();

	/* a new process: the cache is cold, the store has it */
	open_or_fail(f->spec, 1000);
	rep_set_clock(T0 + 24 * HOUR);		/* one half-life later */
	for (i = 0; i < n; i++) {
		assert_int_equal(rep_lookup(&keys[i], &e), 0);
		assert_true(e.evidence == 0);
	}
	assert_int_equal(rep_sync(10000), 0);
	for (i = 0; i < n; i++) {
		assert_int_equal(rep_lookup(&keys[i], &e), 1);
		if (fabs(e.counts[OC_REJECTED] - (i + 1) / 2.0) > EPS ||
		    fabs(e.counts[OC_HAM] - 0.25) > EPS)
			fail_msg("%s %s: rejected %g ham %g",
			    rep_keykind_name(keys[i].kind), keys[i].text,
			    e.counts[OC_REJECTED], e.counts[OC_HAM]);
	}
	/* an update before the answer arrives is not lost or doubled */
	rep_close();
	open_or_fail(f->spec, 1000);
	assert_int_equal(rep_lookup(&keys[0], &e), 0);
	rep_update(&keys[0], OC_REJECTED, 1);
	assert_int_equal(rep_sync(10000), 0);
	assert_int_equal(rep_lookup(&keys[0], &e), 1);
	assert_true(fabs(e.counts[OC_REJECTED] - 1.5) < EPS);
	rep_counters(&c);
	assert_int_equal(c.store_errors, 0);
	assert_int_equal(c.dropped, 0);
	assert_true(c.store_up);
	rep_close();
	open_or_fail(f->spec, 1000);
	rep_lookup(&keys[0], &e);
	rep_sync(10000);
	rep_lookup(&keys[0], &e);
	assert_true(fabs(e.counts[OC_REJECTED] - 1.5) < EPS);
}

static void
test_small_cache(void **state)
{
	struct fixture *f = *state;
	struct rep_key k;
	struct rep_est e;
	int	round, i, bad = 0;

	if (f->kind == ST_MEMORY)
		skip();
	open_or_fail(f->spec, 16);
	rep_set_clock(T0);
	/* 300 keys through 16 slots, three times: fetches follow writes */
	for (round = 0; round < 3; round++)
		for (i = 0; i < 300; i++) {
			k = mkkey(REPK_PREFIX, "10.%d.0.0/24", i);
			rep_update(&k, OC_ABANDONED, 1);
		}
	assert_int_equal(rep_sync(10000), 0);
	for (i = 0; i < 16; i++) {
		k = mkkey(REPK_PREFIX, "10.%d.0.0/24", i);
		rep_lookup(&k, &e);
	}
	assert_int_equal(rep_sync(10000), 0);
	for (i = 0; i < 16; i++) {
		k = mkkey(REPK_PREFIX, "10.%d.0.0/24", i);
		assert_int_equal(rep_lookup(&k, &e), 1);
		if (fabs(e.counts[OC_ABANDONED] - 3) > EPS)
			bad++;
	}
	assert_int_equal(bad, 0);
	rep_close();
	open_or_fail(f->spec, 1000);
	for (i = 0; i < 300; i++) {
		k = mkkey(REPK_PREFIX, "10.%d.0.0/24", i);
		rep_lookup(&k, &e);
	}
	assert_int_equal(rep_sync(10000), 0);
	for (i = 0; i < 300; i++) {
		k = mkkey(REPK_PREFIX, "10.%d.0.0/24", i);
		assert_int_equal(rep_lookup(&k, &e), 1);
		if (fabs(e.counts[OC_ABANDONED] - 3) > EPS)
			fail_msg("%s: %g abandoned, want 3", k.text,
			    e.counts[OC_ABANDONED]);
	}
}

static void
test_two_processes(void **state)
{
	struct fixture *f = *state;
	struct rep_key k = mkkey(REPK_OS, "Windows 7 or 8"), k2;
	struct rep_est e;
	pid_t	pid[2];
	int	p, i, st;

	if (f->kind == ST_MEMORY)
		skip();
	for (p = 0; p < 2; p++) {
		if ((pid[p] = fork()) == 0) {
			struct conf cf;
			char	err[512];

			conf_for(&cf, f->spec, 1000);
			if (rep_open(NULL, &cf, err, sizeof(err)) < 0)
				_exit(2);
			rep_set_clock(T0);
			for (i = 0; i < 5000; i++) {
				rep_update(&k, OC_DELIVERED, 1);
				k2 = mkkey(REPK_IP, "198.51.100.%d", i % 50);
				rep_update(&k2, OC_REJECTED, 1);
				if (i % 1000 == 0)
					usleep(1000);
			}
			_exit(rep_sync(20000) == 0 ? 0 : 3);
		}
	}
	for (p = 0; p < 2; p++) {
		assert_int_equal(waitpid(pid[p], &st, 0), pid[p]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	open_or_fail(f->spec, 1000);
	rep_set_clock(T0);
	rep_lookup(&k, &e);
	k2 = mkkey(REPK_IP, "198.51.100.%d", 7);
	rep_lookup(&k2, &e);
	assert_int_equal(rep_sync(10000), 0);
	assert_int_equal(rep_lookup(&k, &e), 1);
	assert_true(fabs(e.counts[OC_DELIVERED] - 10000) < EPS);
	assert_int_equal(rep_lookup(&k2, &e), 1);
	assert_true(fabs(e.counts[OC_REJECTED] - 200) < EPS);
}

/* A "listed" count goes through every store and comes back. */
static void
test_listed_persists(void **state)
{
	struct fixture *f = *state;
	struct rep_key k = mkkey(REPK_RAWSIG, "00112233aabbccdd");
	struct rep_est e;

	if (f->kind == ST_MEMORY)
		skip();
	open_or_fail(f->spec, 1000);
	rep_set_clock(T0);
	rep_update(&k, OC_LISTED, 1);
	rep_update(&k, OC_LISTED, 1);
	rep_update(&k, OC_DELIVERED, 1);
	assert_int_equal(rep_sync(10000), 0);
	rep_close();
	if (f->kind == ST_SQLITE)
		assert_int_equal(sqlite_rows(f->spec + strlen("sqlite:"),
		    "kind = 'rawsig' AND listed = 2 AND delivered = 1"), 1);
	else
		assert_true(fabs(redis_field(f->port, &k, "listed", NULL) -
		    2) < EPS);
	open_or_fail(f->spec, 1000);
	rep_set_clock(T0);
	assert_int_equal(rep_lookup(&k, &e), 0);
	assert_int_equal(rep_sync(10000), 0);
	assert_int_equal(rep_lookup(&k, &e), 1);
	assert_true(fabs(e.counts[OC_LISTED] - 2) < EPS);
	assert_true(fabs(e.evidence - 3) < EPS);
	assert_true(fabs(e.p_spam - 3.0 / 5) < EPS);
}

/* The table of the version before "listed", exactly as it created it. */
static const char old_schema[] =
    "CREATE TABLE IF NOT EXISTS rep ("
    " kind TEXT NOT NULL, key TEXT NOT NULL, t INTEGER NOT NULL,"
    " delivered REAL NOT NULL DEFAULT 0, rejected REAL NOT NULL DEFAULT 0,"
    " deferred REAL NOT NULL DEFAULT 0, abandoned REAL NOT NULL DEFAULT 0,"
    " protocol_error REAL NOT NULL DEFAULT 0, spam REAL NOT NULL DEFAULT 0,"
    " ham REAL NOT NULL DEFAULT 0,"
    " PRIMARY KEY (kind, key)) WITHOUT ROWID";

/* sqlite_column - the listed column's "notnull|default" ("" = none) */
static void
sqlite_column(const char *path, const char *col, char *buf, size_t len)
{
	sqlite3 *db;
	sqlite3_stmt *st;

	buf[0] = '\0';
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA table_info(rep)", -1,
	    &st, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW)
		if (strcmp((const char *)sqlite3_column_text(st, 1), col) == 0)
			snprintf(buf, len, "%d|%s", sqlite3_column_int(st, 3),
			    sqlite3_column_text(st, 4) ?
			    (const char *)sqlite3_column_text(st, 4) : "NULL");
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/*
 * A file written by the version before "listed": its rows keep their
 * counts, the column is added (NOT NULL DEFAULT 0) and learns; two
 * processes opening such a file at once both work and lose nothing.
 */
static void
test_sqlite_migrate(void **state)
{
	struct fixture *f = *state;
	const char *path = f->spec + strlen("sqlite:");
	struct rep_key k = mkkey(REPK_OS, "Windows XP");
	struct rep_key k2 = mkkey(REPK_PREFIX, "198.51.100.0/24");
	struct rep_counters c;
	struct rep_est e;
	char	sql[512], col[64];
	sqlite3 *db;
	pid_t	pid[2];
	int	p, i, st;

	if (f->kind != ST_SQLITE)
		skip();
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	snprintf(sql, sizeof(sql), "%s; INSERT INTO rep VALUES ('os', "
	    "'Windows XP', %lld, 1, 4, 2, 3, 0, 0, 0)", old_schema,
	    (long long)T0);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	sqlite_column(path, "listed", col, sizeof(col));
	assert_string_equal(col, "");

	open_or_fail(f->spec, 1000);
	rep_set_clock(T0);
	assert_int_equal(rep_lookup(&k, &e), 0);
	assert_int_equal(rep_sync(10000), 0);
	assert_int_equal(rep_lookup(&k, &e), 1);
	assert_true(fabs(e.counts[OC_REJECTED] - 4) < EPS);
	assert_true(fabs(e.counts[OC_DEFERRED] - 2) < EPS);
	assert_true(e.counts[OC_LISTED] == 0);
	assert_true(fabs(e.evidence - 8) < EPS);
	rep_update(&k, OC_LISTED, 1);
	assert_int_equal(rep_sync(10000), 0);
	rep_counters(&c);
	assert_int_equal(c.store_errors, 0);
	rep_close();
	sqlite_column(path, "listed", col, sizeof(col));
	assert_string_equal(col, "1|0");
	assert_int_equal(sqlite_rows(path, "kind = 'os' AND key = 'Windows XP'"
	    " AND delivered = 1 AND rejected = 4 AND abandoned = 3 AND "
	    "listed = 1"), 1);
	assert_true(sqlite_intact(path));

	/* again, from scratch, with two processes racing to upgrade */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, old_schema, NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	for (p = 0; p < 2; p++) {
		if ((pid[p] = fork()) == 0) {
			struct conf cf;
			char	err[512];

			conf_for(&cf, f->spec, 1000);
			if (rep_open(NULL, &cf, err, sizeof(err)) < 0)
				_exit(2);
			rep_set_clock(T0);
			for (i = 0; i < 500; i++)
				rep_update(&k2, OC_LISTED, 1);
			_exit(rep_sync(20000) == 0 ? 0 : 3);
		}
	}
	for (p = 0; p < 2; p++) {
		assert_int_equal(waitpid(pid[p], &st, 0), pid[p]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	assert_int_equal(sqlite_rows(path, "kind = 'prefix' AND listed = 1000"),
	    1);
	assert_true(sqlite_intact(path));
}

/* A hash written by the version before "listed" reads as listed 0, and
 * an update adds the field while keeping and decaying the old ones. */
static void
test_redis_old_hash(void **state)
{
	struct fixture *f = *state;
	struct rep_key k = mkkey(REPK_RAWSIG, "8899aabbccddeeff");
	redisContext *rc;
	redisReply *r;
	struct rep_est e;

	if (f->kind != ST_REDIS)
		skip();
	assert_non_null(rc = redis_client(f->port));
	r = redisCommand(rc, "HSET mailshaper:rep:rawsig:%s t %lld delivered 2 "
	    "rejected 0 deferred 0 abandoned 6 protocol_error 0 spam 0 ham 0",
	    k.text, (long long)T0);
	assert_true(r != NULL && r->type == REDIS_REPLY_INTEGER);
	freeReplyObject(r);
	redisFree(rc);
	open_or_fail(f->spec, 1000);
	rep_set_clock(T0 + 24 * HOUR);		/* one half-life later */
	assert_int_equal(rep_lookup(&k, &e), 0);
	assert_int_equal(rep_sync(10000), 0);
	assert_int_equal(rep_lookup(&k, &e), 1);
	assert_true(fabs(e.counts[OC_ABANDONED] - 3) < EPS);
	assert_true(e.counts[OC_LISTED] == 0);
	assert_true(fabs(e.evidence - 4) < EPS);
	rep_update(&k, OC_LISTED, 1);
	assert_int_equal(rep_sync(10000), 0);
	rep_close();
	assert_true(fabs(redis_field(f->port, &k, "listed", NULL) - 1) < EPS);
	assert_true(fabs(redis_field(f->port, &k, "abandoned", NULL) - 3) <
	    EPS);
	assert_true(fabs(redis_field(f->port, &k, "delivered", NULL) - 1) <
	    EPS);
}

/*
 * Patience histograms persist like the counts, decay with the same
 * half-life from their own time, and an update made before the store's
 * answer arrives is neither lost nor counted twice.
 */
static void
test_patience_persists(void **state)
{
	struct fixture *f = *state;
	struct rep_key k = mkkey(REPK_RAWSIG, "feedfacecafebeef");
	struct rep_counters c;
	struct rep_est e;
	int	b12 = rep_patience_bucket(12), b40 = rep_patience_bucket(40);

	if (f->kind == ST_MEMORY)
		skip();
	assert_int_equal(b12, 6);		/* [10, 15) */
	assert_int_equal(b40, 9);		/* [30, 45) */
	open_or_fail(f->spec, 1000);
	rep_set_clock(T0);
	rep_update_patience(&k, REP_PAT_GAVEUP, 12);
	rep_update_patience(&k, REP_PAT_GAVEUP, 12);
	rep_update_patience(&k, REP_PAT_GAVEUP, 12);
	rep_update_patience(&k, REP_PAT_BAD, 40);
	rep_update(&k, OC_REJECTED, 1);
	assert_int_equal(rep_sync(10000), 0);
	rep_close();

	open_or_fail(f->spec, 1000);
	rep_set_clock(T0 + 24 * HOUR);		/* one half-life later */
	assert_int_equal(rep_lookup_patience(&k, &e), 0);
	assert_true(e.patience_n[REP_PAT_GAVEUP] == 0);
	assert_int_equal(rep_sync(10000), 0);
	assert_int_equal(rep_lookup_patience(&k, &e), 1);
	assert_true(fabs(e.patience[REP_PAT_GAVEUP][b12] - 1.5) < 1e-6);
	assert_true(fabs(e.patience_n[REP_PAT_GAVEUP] - 1.5) < 1e-6);
	assert_true(fabs(e.patience[REP_PAT_BAD][b40] - 0.5) < 1e-6);
	assert_true(fabs(e.patience_n[REP_PAT_BAD] - 0.5) < 1e-6);
	assert_true(fabs(e.counts[OC_REJECTED] - 0.5) < EPS);
	/* rep_lookup() does not read them */
	assert_int_equal(rep_lookup(&k, &e), 1);
	assert_true(e.patience_n[REP_PAT_GAVEUP] == -1);
	assert_true(rep_patience_quantile(&e, REP_PAT_GAVEUP, 0.5, NULL) == -1);
	rep_close();

	/* an update while the fetch is outstanding: store + it, once */
	open_or_fail(f->spec, 1000);
	rep_set_clock(T0 + 24 * HOUR);
	assert_int_equal(rep_lookup_patience(&k, &e), 0);
	rep_update_patience(&k, REP_PAT_GAVEUP, 12);
	rep_update(&k, OC_DELIVERED, 1);	/* counts only: no patience */
	assert_int_equal(rep_sync(10000), 0);
	assert_int_equal(rep_lookup_patience(&k, &e), 1);
	assert_true(fabs(e.patience[REP_PAT_GAVEUP][b12] - 2.5) < 1e-6);
	assert_true(fabs(e.patience_n[REP_PAT_BAD] - 0.5) < 1e-6);
	rep_counters(&c);
	assert_int_equal(c.store_errors, 0);
	rep_close();
	open_or_fail(f->spec, 1000);
	rep_set_clock(T0 + 24 * HOUR);
	rep_lookup_patience(&k, &e);
	assert_int_equal(rep_sync(10000), 0);
	assert_int_equal(rep_lookup_patience(&k, &e), 1);
	assert_true(fabs(e.patience[REP_PAT_GAVEUP][b12] - 2.5) < 1e-6);
	assert_true(fabs(e.patience[REP_PAT_BAD][b40] - 0.5) < 1e-6);
	assert_true(fabs(e.counts[OC_DELIVERED] - 1) < EPS);
	assert_true(fabs(e.counts[OC_REJECTED] - 0.5) < EPS);
	/* p50 of 2.5 sessions all in [10, 15): 10 + 0.5 x 5 */
	assert_true(fabs(rep_patience_quantile(&e, REP_PAT_GAVEUP, 0.5, NULL) -
	    12.5) < 1e-5);
}

/* The schema of the version before patience (with "listed"). */
static const char prepatience_schema[] =
    "CREATE TABLE rep ("
    " kind TEXT NOT NULL, key TEXT NOT NULL, t INTEGER NOT NULL,"
    " delivered REAL NOT NULL DEFAULT 0, rejected REAL NOT NULL DEFAULT 0,"
    " deferred REAL NOT NULL DEFAULT 0, abandoned REAL NOT NULL DEFAULT 0,"
    " protocol_error REAL NOT NULL DEFAULT 0, spam REAL NOT NULL DEFAULT 0,"
    " ham REAL NOT NULL DEFAULT 0, listed REAL NOT NULL DEFAULT 0,"
    " PRIMARY KEY (kind, key)) WITHOUT ROWID";

/*
 * A file written before patience: its rows keep their counts and read
 * no patience; pt (INTEGER NOT NULL DEFAULT 0), pat_gaveup and pat_bad
 * (TEXT NOT NULL DEFAULT '') are added and learn; a patience-only update
 * leaves the counts and t alone.
 */
static void
test_sqlite_migrate_patience(void **state)
{
	struct fixture *f = *state;
	const char *path = f->spec + strlen("sqlite:");
	struct rep_key k = mkkey(REPK_PREFIX, "203.0.113.0/24");
	struct rep_est e;
	char	sql[1024], col[64];
	sqlite3 *db;

	if (f->kind != ST_SQLITE)
		skip();
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	snprintf(sql, sizeof(sql), "%s; INSERT INTO rep VALUES ('prefix', "
	    "'203.0.113.0/24', %lld, 5, 1, 0, 2, 0, 0, 0, 1)",
	    prepatience_schema, (long long)T0);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	sqlite_column(path, "pt", col, sizeof(col));
	assert_string_equal(col, "");

	open_or_fail(f->spec, 1000);
	rep_set_clock(T0);
	assert_int_equal(rep_lookup_patience(&k, &e), 0);
	assert_int_equal(rep_sync(10000), 0);
	assert_int_equal(rep_lookup_patience(&k, &e), 1);
	assert_true(fabs(e.counts[OC_DELIVERED] - 5) < EPS);
	assert_true(fabs(e.counts[OC_LISTED] - 1) < EPS);
	assert_true(e.patience_n[REP_PAT_GAVEUP] == 0);
	assert_true(e.patience_n[REP_PAT_BAD] == 0);
	rep_set_clock(T0 + HOUR);
	rep_update_patience(&k, REP_PAT_BAD, 0.4);	/* bucket 0 */
	rep_update_patience(&k, REP_PAT_GAVEUP, 700);	/* bucket 15 */
	assert_int_equal(rep_sync(10000), 0);
	rep_close();
	sqlite_column(path, "pt", col, sizeof(col));
	assert_string_equal(col, "1|0");
	sqlite_column(path, "pat_gaveup", col, sizeof(col));
	assert_string_equal(col, "1|''");
	sqlite_column(path, "pat_bad", col, sizeof(col));
	assert_string_equal(col, "1|''");
	snprintf(sql, sizeof(sql), "kind = 'prefix' AND t = %lld AND "
	    "delivered = 5 AND listed = 1 AND pt = %lld AND "
	    "pat_bad = '1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0' AND "
	    "pat_gaveup = '0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1'", (long long)T0,
	    (long long)(T0 + HOUR));
	assert_int_equal(sqlite_rows(path, sql), 1);
	assert_true(sqlite_intact(path));
	/* a current file is not changed again */
	open_or_fail(f->spec, 1000);
	rep_lookup_patience(&k, &e);
	assert_int_equal(rep_sync(10000), 0);
	assert_int_equal(rep_lookup_patience(&k, &e), 1);
	assert_true(fabs(e.patience[REP_PAT_GAVEUP][15] - 1) < 1e-6);
	assert_true(fabs(rep_patience_quantile(&e, REP_PAT_GAVEUP, 0.9,
	    NULL) - 600) < 1e-9);
}

/* A hash written before patience reads as no patience; a patience
 * update adds pt and the pat_* fields and leaves t and the counts. */
static void
test_redis_old_hash_patience(void **state)
{
	struct fixture *f = *state;
	struct rep_key k = mkkey(REPK_OS, "Windows 10");
	redisContext *rc;
	redisReply *r;
	struct rep_est e;

	if (f->kind != ST_REDIS)
		skip();
	assert_non_null(rc = redis_client(f->port));
	r = redisCommand(rc, "HSET mailshaper:rep:os:%s t %lld delivered 2 "
	    "rejected 0 deferred 0 abandoned 6 protocol_error 0 spam 0 ham 0 "
	    "listed 0", k.text, (long long)T0);
	assert_true(r != NULL && r->type == REDIS_REPLY_INTEGER);
	freeReplyObject(r);
	redisFree(rc);
	open_or_fail(f->spec, 1000);
	rep_set_clock(T0 + 24 * HOUR);
	assert_int_equal(rep_lookup_patience(&k, &e), 0);
	assert_int_equal(rep_sync(10000), 0);
	assert_int_equal(rep_lookup_patience(&k, &e), 1);
	assert_true(fabs(e.counts[OC_ABANDONED] - 3) < EPS);
	assert_true(e.patience_n[REP_PAT_GAVEUP] == 0);
	rep_update_patience(&k, REP_PAT_GAVEUP, 21);	/* [20, 30) */
	assert_int_equal(rep_sync(10000), 0);
	rep_close();
	assert_true(fabs(redis_field(f->port, &k, "pat_gaveup_8", NULL) - 1) <
	    EPS);
	assert_true(redis_field(f->port, &k, "pat_bad_8", NULL) == 0);
	assert_true(fabs(redis_field(f->port, &k, "pt", NULL) -
	    (double)(T0 + 24 * HOUR)) < 1);
	assert_true(fabs(redis_field(f->port, &k, "t", NULL) - (double)T0) < 1);
	assert_true(fabs(redis_field(f->port, &k, "abandoned", NULL) - 6) <
	    EPS);
}

static void
test_no_stall(void **state)
{
	struct fixture *f = *state;
	struct rep_counters c;
	struct stall st;
	struct rep_key k;
	struct rep_est e;
	char	what[64];
	int	i;

	memset(&st, 0, sizeof(st));
	open_or_fail(f->spec, 50000);
	for (i = 0; i < 200000; i++) {
		k = mkkey(REPK_IP, "10.%d.%d.%d", i % 7, (i / 7) % 200,
		    i % 211);
		stall_begin(&st);
		rep_update(&k, OC_DELIVERED, 1);
		rep_lookup(&k, &e);
		stall_end(&st);
		if (i % 20000 == 0)	/* let the worker keep up */
			usleep(20000);
	}
	snprintf(what, sizeof(what), "%s rep_update+rep_lookup", f->name);
	stall_check(&st, what);
	assert_int_equal(rep_sync(30000), 0);
	rep_counters(&c);
	assert_int_equal(c.updates, 200000);
	if (f->kind != ST_MEMORY)
		assert_int_equal(c.written + c.dropped, 200000);
}

/* ------------------------------------------------------------ faults */

static void
test_sqlite_kill9(void **state)
{
	struct fixture *f = *state;
	const char *path = f->spec + strlen("sqlite:");
	unsigned long acked = 0;
	int	pfd[2], st, i;
	long	rows;
	pid_t	pid;

	if (f->kind != ST_SQLITE)
		skip();
	assert_int_equal(pipe(pfd), 0);
	if ((pid = fork()) == 0) {
		struct rep_counters c;
		struct rep_key k;

		close(pfd[0]);
		open_or_fail(f->spec, 100000);
		/* a steady stream: each chunk is written before the next */
		for (i = 0; i < 40000; i++) {
			k = mkkey(REPK_IP, "a.%d", i);
			rep_update(&k, OC_SPAM, 1);
			if (i % 1000 == 999 && rep_sync(10000) < 0)
				_exit(3);
		}
		/* one more chunk, then die with it queued or in flight */
		for (i = 0; i < 1000; i++) {
			k = mkkey(REPK_IP, "b.%d", i);
			rep_update(&k, OC_SPAM, 1);
		}
		usleep(1000);
		rep_counters(&c);
		(void)!write(pfd[1], &c.written, sizeof(c.written));
		kill(getpid(), SIGKILL);
		_exit(4);
	}
	close(pfd[1]);
	assert_int_equal(read(pfd[0], &acked, sizeof(acked)),
	    (ssize_t)sizeof(acked));
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	assert_true(sqlite_intact(path));
	assert_int_equal(sqlite_rows(path, "key LIKE 'a.%'"), 40000);
	rows = sqlite_rows(path, NULL);
	print_message("kill -9: %lu updates acknowledged, %ld rows on disk, "
	    "%ld of the last 1000 missing\n", acked, rows, 41000 - rows);
	assert_true(rows >= (long)acked);
	assert_true(41000 - rows <= 1000 && 1000 <= REP_BATCH_MAX);
}

/* holder - another connection holding the write lock of path */
static sqlite3 *
holder(const char *path)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE; "
	    "INSERT INTO rep (kind, key, t) VALUES ('os', 'holder', 1)",
	    NULL, NULL, NULL), SQLITE_OK);
	return db;
}

static void
test_sqlite_locked(void **state)
{
	struct fixture *f = *state;
	const char *path = f->spec + strlen("sqlite:");
	struct rep_key k = mkkey(REPK_DOMAIN, "locked.example");
	struct rep_counters c;
	struct stall stl;
	struct rep_est e;
	sqlite3 *db;
	int	i;

	if (f->kind != ST_SQLITE)
		skip();
	memset(&stl, 0, sizeof(stl));
	open_or_fail(f->spec, 1000);
	rep_set_clock(T0);
	rep_update(&k, OC_HAM, 1);		/* creates file and table */
	assert_int_equal(rep_sync(10000), 0);
	db = holder(path);
	for (i = 0; i < 100; i++) {
		stall_begin(&stl);
		rep_update(&k, OC_SPAM, 1);
		rep_lookup(&k, &e);
		stall_end(&stl);
		usleep(1000);
	}
	stall_check(&stl, "sqlite locked");
	assert_int_equal(rep_sync(1500), -1);	/* the lock holds it up */
	rep_counters(&c);
	assert_true(c.store_errors > 0);
	assert_false(c.store_up);
	assert_true(fabs(e.counts[OC_SPAM] - 100) < EPS);	/* served */
	assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(rep_sync(15000), 0);	/* caught up */
	rep_counters(&c);
	assert_true(c.store_up);
	rep_close();
	assert_int_equal(sqlite_rows(path,
	    "key = 'locked.example' AND spam = 100 AND ham = 1"), 1);
}

static void
test_sqlite_corrupt(void **state)
{
	struct fixture *f = *state;
	const char *path = f->spec + strlen("sqlite:");
	struct rep_key k = mkkey(REPK_IP, "192.0.2.99");
	struct rep_counters c;
	struct rep_est e;
	char	junk[65536];
	double	t;
	int	fd;
	size_t	i;

	if (f->kind != ST_SQLITE)
		skip();
	for (i = 0; i < sizeof(junk); i++)
		junk[i] = (char)(i * 131 + 7);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	open_or_fail(f->spec, 1000);		/* service goes on */
	rep_update(&k, OC_PROTOCOL_ERROR, 1);
	assert_int_equal(rep_lookup(&k, &e), 1);
	assert_true(fabs(e.counts[OC_PROTOCOL_ERROR] - 1) < EPS);
	assert_int_equal(rep_sync(500), -1);
	rep_counters(&c);
	assert_true(c.store_errors > 0);
	t = now_ms();
	rep_close();				/* gives up after a grace */
	assert_true(now_ms() - t < 8000);
}

static void
test_sqlite_bad_path(void **state)
{
	struct fixture *f = *state;
	struct rep_key k = mkkey(REPK_IP, "192.0.2.98");
	struct rep_counters c;
	struct rep_est e;
	char	spec[300];

	if (f->kind != ST_SQLITE)
		skip();
	snprintf(spec, sizeof(spec), "sqlite:%s/no/such/dir/rep.db", f->dir);
	open_or_fail(spec, 1000);
	rep_update(&k, OC_DELIVERED, 2);
	assert_int_equal(rep_lookup(&k, &e), 1);
	assert_true(fabs(e.evidence - 2) < EPS);
	assert_int_equal(rep_sync(300), -1);
	rep_counters(&c);
	assert_true(c.store_errors > 0);
}

static void
test_sqlite_disk_full(void **state)
{
	struct fixture *f = *state;
	pid_t	pid;
	int	st;

	if (f->kind != ST_SQLITE)
		skip();
	if ((pid = fork()) == 0) {
		struct rlimit rl = { 256 * 1024, 256 * 1024 };
		struct rep_counters c;
		struct rep_key k;
		struct rep_est e;
		char	pad[150];
		int	i;

		signal(SIGXFSZ, SIG_IGN);	/* writes fail with EFBIG */
		setrlimit(RLIMIT_FSIZE, &rl);
		memset(pad, 'x', sizeof(pad) - 1);
		pad[sizeof(pad) - 1] = '\0';
		open_or_fail(f->spec, 100000);
		rep_set_clock(T0);
		for (i = 0; i < 20000; i++) {
			k = mkkey(REPK_RAWSIG, "%s%d", pad, i);
			rep_update(&k, OC_DEFERRED, 1);
		}
		if (rep_sync(3000) != -1)
			_exit(10);		/* it all fitted? */
		rep_counters(&c);
		if (c.store_errors == 0)
			_exit(11);
		k = mkkey(REPK_RAWSIG, "%s%d", pad, 19999);
		if (rep_lookup(&k, &e) != 1 ||
		    fabs(e.counts[OC_DEFERRED] - 1) > EPS)
			_exit(12);		/* still served */
		rep_close();
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("disk-full child: status %d", st);
}

static void
test_queue_full(void **state)
{
	struct fixture *f = *state;
	const char *path = f->spec + strlen("sqlite:");
	struct rep_counters c;
	struct stall stl;
	struct rep_key k;
	sqlite3 *db;
	int	i;

	if (f->kind != ST_SQLITE)
		skip();
	memset(&stl, 0, sizeof(stl));
	open_or_fail(f->spec, 1000);
	k = mkkey(REPK_OS, "first");
	rep_update(&k, OC_HAM, 1);
	assert_int_equal(rep_sync(10000), 0);
	db = holder(path);			/* the worker is stuck */
	for (i = 0; i < REP_QUEUE_MAX + REP_BATCH_MAX + 5000; i++) {
		k = mkkey(REPK_OS, "os %d", i % 100);
		stall_begin(&stl);
		rep_update(&k, OC_HAM, 1);
		stall_end(&stl);
	}
	rep_counters(&c);
	assert_true(c.dropped >= 5000);
	assert_true(c.queue_depth <= REP_QUEUE_MAX);
	stall_check(&stl, "queue full");
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);
	assert_int_equal(rep_sync(30000), 0);
	rep_counters(&c);
	assert_int_equal(c.written + c.dropped, c.updates);
}

static void
test_redis_restart(void **state)
{
	struct fixture *f = *state;
	struct rep_key k = mkkey(REPK_PREFIX_RAWSIG, "192.0.2.0/24|cafe");
	struct rep_key early = mkkey(REPK_IP, "192.0.2.200");
	struct rep_counters c;
	struct rep_est e;
	struct conf cf;
	char	err[512], spec[64];
	long long pttl;
	struct stall stl;
	pid_t	srv;
	int	port, i;

	if (f->kind != ST_REDIS)
		skip();
	/* down at start: nothing listens on the port yet */
	port = free_port();
	snprintf(spec, sizeof(spec), "redis://127.0.0.1:%d", port);
	conf_for(&cf, spec, 1000);
	cf.rep_key_ttl = 3600000;
	assert_int_equal(rep_open(NULL, &cf, err, sizeof(err)), 0);
	rep_set_clock(T0);
	rep_update(&early, OC_REJECTED, 1);
	assert_int_equal(rep_sync(300), -1);
	srv = redis_start(port, f->dir);
	assert_int_equal(rep_sync(15000), 0);	/* caught up */
	assert_true(fabs(redis_field(port, &early, "rejected", &pttl) - 1) <
	    EPS);
	assert_true(pttl > 3500000 && pttl <= 3600000);	/* expires */
	for (i = 0; i < 5; i++)
		rep_update(&k, OC_SPAM, 1);
	assert_int_equal(rep_sync(10000), 0);
	assert_true(fabs(redis_field(port, &k, "spam", NULL) - 5) < EPS);

	/* restart: updates made while it is down arrive afterwards */
	redis_stop(srv);
	memset(&stl, 0, sizeof(stl));
	for (i = 0; i < 1000; i++) {
		stall_begin(&stl);
		rep_update(&k, OC_SPAM, 1);
		rep_lookup(&k, &e);
		stall_end(&stl);
		if (i % 100 == 0)
			usleep(10000);	/* the worker retries meanwhile */
	}
	stall_check(&stl, "redis down");
	assert_true(fabs(e.counts[OC_SPAM] - 1005) < EPS);	/* served */
	assert_int_equal(rep_sync(500), -1);
	rep_counters(&c);
	assert_true(c.store_errors > 0);
	assert_false(c.store_up);
	srv = redis_start(port, f->dir);	/* empty: --save '' */
	assert_int_equal(rep_sync(15000), 0);
	rep_counters(&c);
	assert_true(c.store_up);
	assert_int_equal(c.dropped, 0);
	assert_true(fabs(redis_field(port, &k, "spam", NULL) - 1000) < EPS);
	rep_close();
	redis_stop(srv);
}

static void
test_redis_expire(void **state)
{
	struct fixture *f = *state;
	struct rep_key k = mkkey(REPK_IP, "192.0.2.201");
	struct conf cf;
	char	err[512];
	long long pttl;

	if (f->kind != ST_REDIS)
		skip();
	conf_for(&cf, f->spec, 1000);
	cf.rep_key_ttl = 300;			/* ms */
	assert_int_equal(rep_open(NULL, &cf, err, sizeof(err)), 0);
	rep_update(&k, OC_DELIVERED, 1);
	assert_int_equal(rep_sync(10000), 0);
	assert_true(fabs(redis_field(f->port, &k, "delivered", &pttl) - 1) <
	    EPS);
	assert_true(pttl > 0 && pttl <= 300);
	usleep(600000);
	assert_true(redis_field(f->port, &k, "delivered", &pttl) == -1);
	assert_int_equal(pttl, -2);		/* gone */
}

#define SUITE {							\
	cmocka_unit_test_setup_teardown(test_cache_first, test_setup,	\
	    test_teardown),						\
	cmocka_unit_test_setup_teardown(test_persist, test_setup,	\
	    test_teardown),						\
	cmocka_unit_test_setup_teardown(test_small_cache, test_setup,	\
	    test_teardown),						\
	cmocka_unit_test_setup_teardown(test_two_processes, test_setup,\
	    test_teardown),						\
	cmocka_unit_test_setup_teardown(test_no_stall, test_setup,	\
	    test_teardown),						\
	cmocka_unit_test_setup_teardown(test_listed_persists, test_setup,\
	    test_teardown),						\
	cmocka_unit_test_setup_teardown(test_sqlite_migrate, test_setup,\
	    test_teardown),						\
	cmocka_unit_test_setup_teardown(test_redis_old_hash, test_setup,\
	    test_teardown),						\
	cmocka_unit_test_setup_teardown(test_patience_persists, test_setup,\
	    test_teardown),						\
	cmocka_unit_test_setup_teardown(test_sqlite_migrate_patience,	\
	    test_setup, test_teardown),					\
	cmocka_unit_test_setup_teardown(test_redis_old_hash_patience,	\
	    test_setup, test_teardown),					\
	cmocka_unit_test_setup_teardown(test_sqlite_kill9, test_setup,	\
	    test_teardown),						\
	cmocka_unit_test_setup_teardown(test_sqlite_locked, test_setup,\
	    test_teardown),						\
	cmocka_unit_test_setup_teardown(test_sqlite_corrupt, test_setup,\
	    test_teardown),						\
	cmocka_unit_test_setup_teardown(test_sqlite_bad_path, test_setup,\
	    test_teardown),						\
	cmocka_unit_test_setup_teardown(test_sqlite_disk_full, test_setup,\
	    test_teardown),						\
	cmocka_unit_test_setup_teardown(test_queue_full, test_setup,	\
	    test_teardown),						\
	cmocka_unit_test_setup_teardown(test_redis_restart, test_setup,\
	    test_teardown),						\
	cmocka_unit_test_setup_teardown(test_redis_expire, test_setup,	\
	    test_teardown),						\
}

int
main(void)
{
	static struct fixture fx[] = {
		{ST_MEMORY, "memory", "", "", 0, 0, 0},
		{ST_SQLITE, "sqlite", "", "", 0, 0, 0},
		{ST_REDIS, "redis", "", "", 0, 0, 0},
	};
	const struct CMUnitTest suite[] = SUITE;
	size_t	i;
	int	rc = 0;

	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < sizeof(fx) / sizeof(fx[0]); i++) {
		char	name[64];

		snprintf(name, sizeof(name), "rep_store_%s", fx[i].name);
		group_fixture = &fx[i];
		rc |= _cmocka_run_group_tests(name, suite,
		    sizeof(suite) / sizeof(suite[0]), group_setup,
		    group_teardown);
	}
	return rc;
}
