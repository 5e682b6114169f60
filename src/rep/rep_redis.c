/*
 * rep_redis.c - the shared reputation store: Redis through hiredis
 *
 * Exports rep_redis_ops (rep_store.h) for "redis://host[:port]" (default
 * port 6379) and "redis+unix:/path".  One hash per key,
 *   mailshaper:rep:<kind>:<text> -> t (ms), delivered .. listed (decayed
 *   counts; a field missing from a hash, say one an older version wrote,
 *   is 0), pt (ms) and pat_gaveup_0 .. pat_bad_15 (the patience
 *   histograms, decayed from pt; written only by a record that has some)
 * A delta is applied by the Lua script rd_script (EVALSHA, up to 32 keys a
 * call): it reads the hash, decays it to the later of the two times, adds
 * the delta, writes it back and PEXPIREs the key rep_key_ttl ms ahead, all
 * atomically, so several daemons may update the same key.  A batch is pipelined inside MULTI/EXEC:
 * a connection lost before EXEC applies nothing and the batch is retried.
 * Synchronous hiredis: only the reputation worker thread calls these, with a
 * 2 s timeout per reply; the event loop never waits for Redis.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "rep/rep_store.h"

#define RD_PREFIX	"mailshaper:rep:"
#define RD_CONNECT_S	1	/* connect timeout */
#define RD_REPLY_S	2	/* reply timeout */

/*
 * KEYS: up to RD_KEYS_PER_CALL hashes.  ARGV: half-life ms, ttl ms, then
 * for each key its time t (ms) and its deltas, one per entry of the
 * script's names (enum outcome's order; a field an old hash lacks is
 * 0), then its patience time pt (0 = none) and, only when pt is not 0,
 * the 32 patience deltas (rep_pat_field() order).  t = 0: no count delta.
 * A key's counts and its patience are merged separately, each from its
 * own time, in the same call (atomic together).  One call per 32 keys
 * saves Redis the per-command cost, which is most of a small script's.
 */
#define RD_KEYS_PER_CALL	32
#define RD_ARGS_PER_KEY		(2 + OC_NLEARN + REP_STORE_NPAT)	/* at most */
static const char rd_script[] =
    "local names = {'delivered', 'rejected', 'deferred', 'abandoned',"
    " 'protocol_error', 'spam', 'ham', 'listed'}\n"
    "local pnames = {}\n"
    "for _, kind in ipairs({'gaveup', 'bad'}) do\n"
    "  for b = 0, 15 do pnames[#pnames + 1] = 'pat_' .. kind .. '_' .. b end\n"
    "end\n"
    "local hl, ttl = tonumber(ARGV[1]), ARGV[2]\n"
    "local pos = 3\n"
    "local function merge(key, tname, fields, t, at, args)\n"
    "  local old = redis.call('HMGET', key, tname, unpack(fields))\n"
    "  local ot = tonumber(old[1])\n"
    "  local fo, fd, nt = 1, 1, t\n"
    "  if not ot then fo = 0\n"
    "  elseif t >= ot then fo = 2 ^ (-(t - ot) / hl)\n"
    "  else fd = 2 ^ (-(ot - t) / hl); nt = ot end\n"
    "  args[#args + 1] = tname\n"
    "  args[#args + 1] = string.format('%.0f', nt)\n"
    "  for i = 1, #fields do\n"
    "    local v = (tonumber(old[i + 1]) or 0) * fo +"
    " tonumber(ARGV[at + i - 1]) * fd\n"
    "    args[#args + 1] = fields[i]\n"
    "    args[#args + 1] = string.format('%.17g', v)\n"
    "  end\n"
    "end\n"
    "for k = 1, #KEYS do\n"
    "  local args = {}\n"
    "  local t = tonumber(ARGV[pos])\n"
    "  if t ~= 0 then merge(KEYS[k], 't', names, t, pos + 1, args) end\n"
    "  pos = pos + 1 + #names\n"
    "  local pt = tonumber(ARGV[pos])\n"
    "  pos = pos + 1\n"
    "  if pt ~= 0 then\n"
    "    merge(KEYS[k], 'pt', pnames, pt, pos, args)\n"
    "    pos = pos + #pnames\n"
    "  end\n"
    "  if #args > 0 then redis.call('HSET', KEYS[k], unpack(args)) end\n"
    "  redis.call('PEXPIRE', KEYS[k], ttl)\n"
    "end\n"
    "return #KEYS\n";

struct rd {
	char	spec[256];
	char	host[256];		/* or the unix socket path */
	int	port;			/* 0 = unix socket */
	double	half_life;		/* ms */
	long long ttl;			/* ms */
	redisContext *c;		/* NULL = disconnected */
	char	sha[48];		/* of rd_script, after SCRIPT LOAD */
	char	keys[RD_KEYS_PER_CALL][256];	/* rd_write's arguments */
	char	num[2 + RD_KEYS_PER_CALL * RD_ARGS_PER_KEY][32];
};

/* rd_fail - "spec: what: reason" into err; -1 */
static int
rd_fail(struct rd *r, const char *what, const char *why, char *err,
    size_t errlen)
{
	snprintf(err, errlen, "%s: %s: %s", r->spec, what, why);
	return -1;
}

/* rd_disconnect - drop the connection */
static void
rd_disconnect(void *h)
{
	struct rd *r = h;

	if (r->c != NULL)
		redisFree(r->c);
	r->c = NULL;
}

/* rd_create - parse redis://host[:port] or redis+unix:/path */
static void *
rd_create(const char *spec, double half_life_ms, int64_t key_ttl_ms,
    char *err, size_t errlen)
{
	struct rd *r;
	const char *p, *colon;
	char   *end;
	long	port = 6379;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(r->spec, sizeof(r->spec), "%s", spec);
	r->half_life = half_life_ms;
	r->ttl = key_ttl_ms;
	if (strncmp(spec, "redis+unix:", 11) == 0) {
		p = spec + 11;
		if (p[0] != '/' || strlen(p) >= 108)
			goto bad;
		snprintf(r->host, sizeof(r->host), "%s", p);
		return r;
	}
	p = spec + strlen("redis://");
	if (p[0] == '[') {			/* [v6]:port */
		if ((colon = strchr(p, ']')) == NULL)
			goto bad;
		snprintf(r->host, sizeof(r->host), "%.*s", (int)(colon - p - 1),
		    p + 1);
		colon = colon[1] == ':' ? colon + 1 : colon[1] ? p : NULL;
		if (colon == p)
			goto bad;
	} else {
		colon = strrchr(p, ':');
		snprintf(r->host, sizeof(r->host), "%.*s",
		    (int)(colon ? (size_t)(colon - p) : strlen(p)), p);
	}
	if (colon != NULL) {
		port = strtol(colon + 1, &end, 10);
		if (*end != '\0' && *end != '/')
			goto bad;
	}
	if (r->host[0] == '\0' || port < 1 || port > 65535)
		goto bad;
	r->port = (int)port;
	return r;

bad:
	snprintf(err, errlen, "bad rep_store '%s': need redis://host[:port] "
	    "or redis+unix:/path", spec);
	free(r);
	return NULL;
}

/* rd_connect - connect, set the timeout, load the script */
static int
rd_connect(void *h, char *err, size_t errlen)
{
	struct rd *r = h;
	struct timeval ct = { RD_CONNECT_S, 0 }, rt = { RD_REPLY_S, 0 };
	redisReply *rep;

	if (r->c != NULL)
		return 0;
	r->c = r->port ? redisConnectWithTimeout(r->host, r->port, ct) :
	    redisConnectUnixWithTimeout(r->host, ct);
	if (r->c == NULL)
		return rd_fail(r, "connect", "out of memory", err, errlen);
	if (r->c->err) {
		rd_fail(r, "connect", r->c->errstr, err, errlen);
		rd_disconnect(r);
		return -1;
	}
	redisSetTimeout(r->c, rt);
	rep = redisCommand(r->c, "SCRIPT LOAD %s", rd_script);
	if (rep == NULL || rep->type != REDIS_REPLY_STRING) {
		rd_fail(r, "SCRIPT LOAD", rep ? (rep->type == REDIS_REPLY_ERROR
		    ? rep->str : "unexpected reply") : r->c->errstr, err,
		    errlen);
		if (rep)
			freeReplyObject(rep);
		rd_disconnect(r);
		return -1;
	}
	snprintf(r->sha, sizeof(r->sha), "%s", rep->str);
	freeReplyObject(rep);
	return 0;
}

/* rd_keyname - mailshaper:rep:<kind>:<text> */
static size_t
rd_keyname(const struct rep_key *k, char *buf, size_t len)
{
	int	n = snprintf(buf, len, RD_PREFIX "%s:%s",
	    rep_keykind_name(k->kind), k->text);

	return n < 0 ? 0 : (size_t)n >= len ? len - 1 : (size_t)n;
}

/* rd_write - MULTI, one EVALSHA per 32 records, EXEC; pipelined */
static int
rd_write(void *h, const struct rep_rec *recs, size_t n, char *err,
    size_t errlen)
{
	enum { MAXARG = 3 + RD_KEYS_PER_CALL * (1 + RD_ARGS_PER_KEY) + 2 };
	struct rd *r = h;
	char	(*keys)[256] = r->keys, (*num)[32] = r->num;
	const char *argv[MAXARG];
	size_t	argl[MAXARG], i, k, m, calls = 0;
	char	nkeys[16];
	redisReply *rep = NULL;
	int	j, a, v, rc = 0;
	void   *vr;

	redisAppendCommand(r->c, "MULTI");
	for (i = 0; i < n; i += m) {
		m = n - i < RD_KEYS_PER_CALL ? n - i : RD_KEYS_PER_CALL;
		snprintf(nkeys, sizeof(nkeys), "%zu", m);
		a = 0;
		argv[a] = "EVALSHA", argl[a++] = 7;
		argv[a] = r->sha, argl[a++] = strlen(r->sha);
		argv[a] = nkeys, argl[a++] = strlen(nkeys);
		for (k = 0; k < m; k++) {
			argv[a] = keys[k];
			argl[a++] = rd_keyname(&recs[i + k].key, keys[k],
			    sizeof(keys[k]));
		}
		v = 0;
		snprintf(num[v], sizeof(num[v]), "%.17g", r->half_life);
		argv[a] = num[v], argl[a++] = strlen(num[v]), v++;
		snprintf(num[v], sizeof(num[v]), "%lld", r->ttl);
		argv[a] = num[v], argl[a++] = strlen(num[v]), v++;
		for (k = 0; k < m; k++) {
			snprintf(num[v], sizeof(num[v]), "%lld",
			    (long long)recs[i + k].t);
			argv[a] = num[v], argl[a++] = strlen(num[v]), v++;
			for (j = 0; j < OC_NLEARN; j++) {
				snprintf(num[v], sizeof(num[v]), "%.17g",
				    recs[i + k].c[j]);
				argv[a] = num[v], argl[a++] = strlen(num[v]);
				v++;
			}
			snprintf(num[v], sizeof(num[v]), "%lld",
			    (long long)recs[i + k].pt);
			argv[a] = num[v], argl[a++] = strlen(num[v]), v++;
			for (j = 0; recs[i + k].pt && j < REP_STORE_NPAT;
			    j++) {
				snprintf(num[v], sizeof(num[v]), "%.17g",
				    recs[i + k].pat[j]);
				argv[a] = num[v], argl[a++] = strlen(num[v]);
				v++;
			}
		}
		if (redisAppendCommandArgv(r->c, a, argv, argl) != REDIS_OK)
			return rd_fail(r, "write", "out of memory", err, errlen);
		calls++;
	}
	redisAppendCommand(r->c, "EXEC");
	/* +OK, one QUEUED (or an error) per call, then EXEC's array */
	for (i = 0; i < calls + 2; i++) {
		if (redisGetReply(r->c, &vr) != REDIS_OK)
			return rd_fail(r, "write", r->c->errstr, err, errlen);
		rep = vr;
		if (rep->type == REDIS_REPLY_ERROR && rc == 0)
			rc = rd_fail(r, "write", rep->str, err, errlen);
		else if (i == calls + 1 && rc == 0) {
			if (rep->type != REDIS_REPLY_ARRAY)
				rc = rd_fail(r, "write", "EXEC aborted", err,
				    errlen);
			else
				for (k = 0; k < rep->elements && rc == 0; k++)
					if (rep->element[k]->type ==
					    REDIS_REPLY_ERROR)
						rc = rd_fail(r, "write",
						    rep->element[k]->str, err,
						    errlen);
		}
		freeReplyObject(rep);
	}
	return rc;
}

/*
 * rd_fetch - pipelined HMGETs (t = 0 when absent): the counts and pt of
 * every key, then, for the keys that have patience, pt again and the 32
 * patience fields (one HMGET, so pt and the histograms agree).  Most keys
 * have no patience; their fetch reads one field more than before.
 */
static int
rd_fetch(void *h, struct rep_rec *recs, size_t n, char *err, size_t errlen)
{
	enum { NF = 3 + REP_STORE_NPAT };	/* HMGET key pt pat... */
	struct rd *r = h;
	char	key[256];
	const char *argv[NF];
	size_t	argl[NF], i, kl, npat = 0;
	redisReply *rep, *el;
	void   *vr;
	int	j, a, rc = 0;

	for (i = 0; i < n; i++) {
		kl = rd_keyname(&recs[i].key, key, sizeof(key));
		redisAppendCommand(r->c, "HMGET %b t delivered rejected "
		    "deferred abandoned protocol_error spam ham listed pt", key,
		    kl);
	}
	for (i = 0; i < n; i++) {
		if (redisGetReply(r->c, &vr) != REDIS_OK)
			return rd_fail(r, "read", r->c->errstr, err, errlen);
		rep = vr;
		memset(recs[i].c, 0, sizeof(recs[i].c));
		memset(recs[i].pat, 0, sizeof(recs[i].pat));
		recs[i].t = recs[i].pt = 0;
		if (rep->type == REDIS_REPLY_ARRAY &&
		    rep->elements == 2 + OC_NLEARN) {
			el = rep->element[1 + OC_NLEARN];
			if (el->type == REDIS_REPLY_STRING &&
			    (recs[i].pt = strtoll(el->str, NULL, 10)) != 0)
				npat++;
			if (rep->element[0]->type == REDIS_REPLY_STRING) {
				recs[i].t = strtoll(rep->element[0]->str, NULL,
				    10);
				for (j = 0; j < OC_NLEARN; j++)
					if (rep->element[1 + j]->type ==
					    REDIS_REPLY_STRING)
						recs[i].c[j] = strtod(
						    rep->element[1 + j]->str,
						    NULL);
			}
		} else if (rc == 0)
			rc = rd_fail(r, "read", rep->type == REDIS_REPLY_ERROR ?
			    rep->str : "unexpected reply", err, errlen);
		freeReplyObject(rep);
	}
	if (rc != 0 || npat == 0)
		return rc;
	for (i = 0; i < n; i++) {
		if (recs[i].pt == 0)
			continue;
		kl = rd_keyname(&recs[i].key, key, sizeof(key));
		a = 0;
		argv[a] = "HMGET", argl[a++] = 5;
		argv[a] = key, argl[a++] = kl;
		argv[a] = "pt", argl[a++] = 2;
		for (j = 0; j < REP_STORE_NPAT; j++)
			argv[a] = rep_pat_field(j),
			    argl[a++] = strlen(rep_pat_field(j));
		if (redisAppendCommandArgv(r->c, a, argv, argl) != REDIS_OK)
			return rd_fail(r, "read", "out of memory", err, errlen);
	}
	for (i = 0; i < n; i++) {
		if (recs[i].pt == 0)
			continue;
		if (redisGetReply(r->c, &vr) != REDIS_OK)
			return rd_fail(r, "read", r->c->errstr, err, errlen);
		rep = vr;
		recs[i].pt = 0;
		if (rep->type == REDIS_REPLY_ARRAY && rep->elements == NF - 2) {
			el = rep->element[0];
			if (el->type == REDIS_REPLY_STRING)
				recs[i].pt = strtoll(el->str, NULL, 10);
			for (j = 0; recs[i].pt && j < REP_STORE_NPAT; j++) {
				el = rep->element[1 + j];
				if (el->type == REDIS_REPLY_STRING)
					recs[i].pat[j] = strtod(el->str, NULL);
			}
		} else if (rc == 0)
			rc = rd_fail(r, "read", rep->type == REDIS_REPLY_ERROR ?
			    rep->str : "unexpected reply", err, errlen);
		freeReplyObject(rep);
	}
	return rc;
}

/* rd_destroy - disconnect and free */
static void
rd_destroy(void *h)
{
	rd_disconnect(h);
	free(h);
}

const struct rep_store_ops rep_redis_ops = {
	.scheme = "redis",
	.shared = 1,
	.create = rd_create,
	.connect = rd_connect,
	.write = rd_write,
	.fetch = rd_fetch,
	.disconnect = rd_disconnect,
	.destroy = rd_destroy,
};
