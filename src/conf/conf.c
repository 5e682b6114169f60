/*
 * conf.c - parameter table and the parser for mailshaper.conf
 *
 * Exports conf_load(), conf_free(), conf_reload_merge(), conf_class() and
 * the two tables conf_params[] and conf_class_keys[].
 *
 * Syntax (Postfix main.cf style): "name = value" lines; '#' starts a comment
 * line; a line that starts with white space continues the previous one.
 * Lists are separated by commas and/or white space.  Errors are reported as
 * "file:line: reason" (or "-o name=value: reason") and make conf_load()
 * return NULL; nothing is half-applied.
 *
 * The caller owns the returned struct conf and frees it with conf_free().
 * It is an error to modify a struct conf that sessions may still read.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "util/str.h"

/*
 * Row tails: the member's offset and sizeof, then words and defgen.  Every
 * row ends in one of these, so no row can name a member without its size.
 */
#define MEMBER(t, f)	offsetof(t, f), sizeof(((t *)0)->f)
#define OFF(f)		MEMBER(struct conf, f), NULL, NULL
#define OFF_ENUM(f, w)	MEMBER(struct conf, f), w, NULL
#define OFF_GEN(f, g)	MEMBER(struct conf, f), NULL, g
#define COFF(f)		MEMBER(struct shclass, f), NULL, NULL
#define COFF_ENUM(f, w)	MEMBER(struct shclass, f), w, NULL
#define NO_MEMBER	0, 0, NULL, NULL	/* class_<name>: a whole class */
#define LMAX	LONG_MAX

/* The words of the CT_ENUM rows, index = enum value. */
static const char *const enum_identity[] = {	/* enum conf_identity */
	"xclient", "proxy", "none", NULL,
};
static const char *const enum_bare[] = {	/* enum conf_bare */
	"normalize", "reject", NULL,
};
static const char *const enum_action[] = {	/* enum conf_action */
	"relay", "tempfail", "reject", NULL,
};

#define NWORDS(w)	(sizeof(w) / sizeof((w)[0]) - 1)
_Static_assert(NWORDS(enum_identity) == IDENT_NONE + 1 &&
    NWORDS(enum_bare) == BARE_REJECT + 1 &&
    NWORDS(enum_action) == ACTION_REJECT + 1,
    "one word per value of enum conf_identity, conf_bare, conf_action");

static void conf_rep_weights_default(char *, size_t);

/*
 * The parameter table.  Defaults are in text form and go through the same
 * parser as the file, so a default can never be out of its own bounds.
 * Times are in milliseconds internally and accept ms, s, m, h, d suffixes
 * (a bare number means seconds); sizes accept k, m, g suffixes.
 */
const struct conf_param conf_params[] = {
	{"listen", CT_LISTEN, "[::]:25", "", 0, 0, 0,
	    "addresses to accept SMTP on; [::] takes IPv4 too", OFF(listen)},
	{"listen_backlog", CT_INT, "4096", "", 16, 65535, 0,
	    "listen(2) backlog; large enough that SYN cookies stay off", OFF(listen_backlog)},
	{"backend", CT_ENDPOINT, "127.0.0.1:10025", "", 0, 0, 1,
	    "the real MTA: host:port, [v6]:port or unix:/path", OFF(backend)},
	{"backend_identity", CT_ENUM, "xclient", "", 0, 0, 1,
	    "how the client's identity reaches the backend",
	    OFF_ENUM(backend_identity, enum_identity)},
	{"backend_max_connections", CT_INT, "100", "", 1, 100000, 1,
	    "concurrent backend connections; beyond it MAIL waits, then gets 451", OFF(backend_max_connections)},
	{"backend_connect_timeout", CT_TIME, "30s", "time", 100, 300000, 1,
	    "time to connect to the backend and read its greeting", OFF(backend_connect_timeout)},
	{"backend_timeout", CT_TIME, "300s", "time", 100, 3600000, 1,
	    "time to wait for a backend reply (twice that after end of data)", OFF(backend_timeout)},
	{"backend_keepalive", CT_TIME, "60s", "time", 1000, 3600000, 1,
	    "idle time after which a held backend connection gets NOOP", OFF(backend_keepalive)},
	{"backend_tls", CT_BOOL, "no", "yes|no", 0, 0, 1,
	    "use STARTTLS on the backend connection", OFF(backend_tls)},
	{"eventlog", CT_STR, "/var/log/mailshaper/events.jsonl", "path", 0, 0, 0,
	    "JSON-lines event log (empty = none); reopened on SIGUSR1", OFF(eventlog)},
	{"myhostname", CT_STR, "", "", 0, 0, 1,
	    "name in the banner and EHLO reply (empty = gethostname())", OFF(myhostname)},
	{"max_connections", CT_INT, "5000", "", 1, 1000000, 1,
	    "concurrent client sessions; beyond it clients get 421", OFF(max_connections)},
	{"max_connections_per_client", CT_INT, "50", "", 1, 1000000, 1,
	    "concurrent sessions per client IPv4 address or IPv6 /64", OFF(max_connections_per_client)},
	{"observe", CT_BOOL, "no", "yes|no", 0, 0, 1,
	    "dry run: classify and log, but apply no class setting", OFF(observe)},
	{"default_class", CT_STR, "normal", "class", 0, 0, 1,
	    "class of a client nothing else decides", OFF(default_class)},
	{"client_class_map", CT_MAP, "", "cidr=class ...", 0, 0, 1,
	    "static client networks and their classes; first match wins", OFF(map)},
	{"class_trusted", CT_CLASS,
	    "banner_delay=0 reply_delay=0 action=relay max_share=100", "key=value ...", 0, 0, 1,
	    "known-good senders: no shaping", NO_MEMBER},
	{"class_normal", CT_CLASS,
	    "banner_delay=0 banner_patience=5s reply_delay=0 action=relay max_share=100",
	    "key=value ...", 0, 0, 1,
	    "the default: relayed without delay", NO_MEMBER},
	{"class_suspect", CT_CLASS,
	    "banner_delay=15s banner_patience=5s reply_delay=2s rate_in=64k rate_out=8k "
	    "max_messages=10 "
	    "max_rcpt=50 max_per_client=5 max_share=50 backend_share=30 session_time=30m "
	    "action=relay",
	    "key=value ...", 0, 0, 1,
	    "doubtful senders: past the 10 s patience of most bots", NO_MEMBER},
	{"class_hostile", CT_CLASS,
	    "banner_delay=290s reply_delay=290s stutter=1 stutter_interval=10s rate_in=2k "
	    "rate_out=512 max_messages=1 max_rcpt=5 max_per_client=2 max_share=40 "
	    "backend_share=10 session_time=60m action=relay",
	    "key=value ...", 0, 0, 1,
	    "tarpit: RFC 5321 client timeouts less 10 s, stuttered", NO_MEMBER},
	{"user", CT_STR, "", "", 0, 0, 0,
	    "drop root to this user after opening sockets and files (empty = stay)", OFF(user)},
	{"grace_time", CT_TIME, "30s", "time", 0, 3600000, 1,
	    "on SIGTERM, how long running sessions may finish", OFF(grace_time)},
	{"smtp_timeout", CT_TIME, "300s", "time", 1000, 3600000, 1,
	    "client silence before the session ends with 421", OFF(smtp_timeout)},
	{"smtp_line_limit", CT_INT, "1024", "bytes", 512, 65536, 1,
	    "longest command line (RFC 5321 4.5.3.1.4: 512 plus extensions)", OFF(smtp_line_limit)},
	{"smtp_error_limit", CT_INT, "10", "", 1, 1000, 1,
	    "errors before the session ends with 421", OFF(smtp_error_limit)},
	{"smtp_junk_command_limit", CT_INT, "100", "", 1, 1000000, 1,
	    "NOOP, RSET, VRFY, EXPN and HELP commands before each more counts as an error", OFF(smtp_junk_command_limit)},
	{"smtp_recipient_limit", CT_INT, "1000", "", 1, 1000000, 1,
	    "recipients per transaction; more get 452 (Postfix smtpd_recipient_limit)", OFF(smtp_recipient_limit)},
	{"min_data_rate", CT_SIZE, "500", "bytes/s", 0, LMAX, 1,
	    "slowest message content accepted after the first smtp_timeout; slower gets 421 (0 = any)", OFF(min_data_rate)},
	{"tls_handshake_timeout", CT_TIME, "60s", "time", 1000, 3600000, 1,
	    "time for a client's TLS handshake after STARTTLS", OFF(tls_handshake_timeout)},
	{"spool_memory", CT_SIZE, "64m", "bytes", 0, LMAX, 1,
	    "message content held in memory across all sessions; beyond it content goes to spool_dir", OFF(spool_memory)},
	{"spool_dir", CT_STR, "/var/spool/mailshaper", "path", 0, 0, 0,
	    "directory for unlinked spool files (O_TMPFILE), created at start-up", OFF(spool_dir)},
	{"bare_policy", CT_ENUM, "normalize", "", 0, 0, 1,
	    "bare LF, bare CR and NUL in DATA: normalize or reject with 5xx",
	    OFF_ENUM(bare_policy, enum_bare)},
	{"message_size_limit", CT_SIZE, "0", "bytes", 0, LMAX, 1,
	    "largest message (0 = the backend's SIZE, or unlimited)", OFF(message_size_limit)},
	{"vrfy_command", CT_BOOL, "no", "yes|no", 0, 0, 1,
	    "answer VRFY with 252 (yes) or refuse it with 502 (no)", OFF(vrfy_command)},
	{"expn_command", CT_BOOL, "no", "yes|no", 0, 0, 1,
	    "answer EXPN with 252 (yes) or refuse it with 502 (no)", OFF(expn_command)},
	{"tls_cert_file", CT_STR, "", "path", 0, 0, 0,
	    "PEM certificate chain; STARTTLS is offered when this and the key are set", OFF(tls_cert_file)},
	{"tls_key_file", CT_STR, "", "path", 0, 0, 0,
	    "PEM private key for tls_cert_file", OFF(tls_key_file)},
	{"violation_class", CT_STR, "hostile", "class", 0, 0, 1,
	    "class a session moves to after a protocol violation (empty = stay)", OFF(violation_class)},
	{"syslog_name", CT_STR, "mailshaper", "", 0, 0, 0,
	    "syslog ident", OFF(syslog_name)},
	{"signatures", CT_PATHS, "", "path ...", 0, 0, 0,
	    "p0f.fp-format files in load order (empty = ours, then /etc/p0f/p0f.fp)", OFF(signatures)},
	{"dnsbl_sites", CT_STR, "", "zone[=filter]*weight ...", 0, 0, 1,
	    "DNS lists and their weights, postscreen syntax; negative = allow list", OFF(dnsbl_sites)},
	{"dns_servers", CT_STR, "", "ip[:port] ...", 0, 0, 0,
	    "resolvers for DNSBL and reverse lookups (empty = /etc/resolv.conf)", OFF(dns_servers)},
	{"dnsbl_timeout", CT_TIME, "5s", "time", 100, 60000, 1,
	    "time to wait for one DNS list answer", OFF(dnsbl_timeout)},
	{"dnsbl_negative_ttl", CT_TIME, "300s", "time", 0, 86400000, 1,
	    "how long a not-listed answer is cached", OFF(dnsbl_negative_ttl)},
	{"dnsbl_cache_size", CT_INT, "100000", "entries", 0, 10000000, 0,
	    "DNS list answers kept in memory", OFF(dnsbl_cache_size)},
	{"rep_store", CT_STR, "sqlite:/var/lib/mailshaper/reputation.db", "url", 0, 0, 0,
	    "reputation store: sqlite:/path or redis://host:port (empty = memory only)", OFF(rep_store)},
	{"rep_half_life", CT_TIME, "7d", "time", 60000, 31536000000L, 1,
	    "half-life of outcome counts", OFF(rep_half_life)},
	{"rep_prefix_v4", CT_INT, "24", "bits", 8, 32, 1,
	    "IPv4 network prefix used as a reputation key", OFF(rep_prefix_v4)},
	{"rep_prefix_v6", CT_INT, "64", "bits", 16, 128, 1,
	    "IPv6 network prefix used as a reputation key", OFF(rep_prefix_v6)},
	{"rep_cache_size", CT_INT, "200000", "entries", 0, 50000000, 0,
	    "reputation keys kept in memory", OFF(rep_cache_size)},
	{"rep_key_ttl", CT_TIME, "90d", "time", 60000, 31536000000L, 1,
	    "how long a Redis key lives after its last update", OFF(rep_key_ttl)},
	{"policy_thresholds", CT_STR, "hostile=4 suspect=2 trusted=-4",
	    "class=score ...", 0, 0, 1,
	    "score to class: a positive threshold applies at or above it, a negative one at or below it",
	    OFF(policy_thresholds)},
	{"rep_weights", CT_STR, NULL, "kind=weight ...", 0, 0, 1,
	    "weight of each reputation key's log-odds in the score",
	    OFF_GEN(rep_weights, conf_rep_weights_default)},
	{"rep_evidence_scale", CT_INT, "10", "observations", 1, 1000000, 1,
	    "a key with this much evidence counts half; more evidence counts more", OFF(rep_evidence_scale)},
	{"explore_share", CT_STR, "1%", "percent", 0, 0, 1,
	    "share of little-known sessions run in class normal as a control group", OFF(explore_share_text)},
	{"explore_max_evidence", CT_INT, "10", "observations", 0, 1000000, 1,
	    "a session is little-known when none of its keys has this much evidence", OFF(explore_max_evidence)},
	{"patience_min_evidence", CT_INT, "20", "sessions", 1, 1000000, 1,
	    "a key's learned patience is used once this many (decayed) sessions taught it", OFF(patience_min_evidence)},
	{"first_contact_min_good", CT_STR, "0.5", "observations", 0, 0, 1,
	    "good evidence (delivered + ham, decayed) that makes an IP, prefix or verified domain known", OFF(first_contact_min_good_text)},
	{"trace_header", CT_STR, "X-Mailshaper", "header name", 0, 0, 1,
	    "header added to relayed messages with session, class, raw signature and OS (empty = none)",
	    OFF(trace_header)},
	{"feedback_listen", CT_STR, "", "host:port", 0, 0, 0,
	    "loopback address of the HTTP feedback listener (empty = none)", OFF(feedback_listen)},
	{"feedback_cache_size", CT_INT, "50000", "sessions", 0, 10000000, 0,
	    "recent sessions remembered so feedback can find their keys", OFF(feedback_cache_size)},
	{"admin_listen", CT_STR, "", "host:port", 0, 0, 0,
	    "loopback host:port or unix:/path of the admin HTTP API (empty = none)", OFF(admin_listen)},
	{"admin_token", CT_STR, "", "token", 0, 0, 1,
	    "bearer token the admin API requires on a TCP address", OFF(admin_token)},
	{"admin_token_file", CT_STR, "", "path", 0, 0, 1,
	    "file whose first line is admin_token (read as root at start, again on SIGHUP)",
	    OFF(admin_token_file)},
	{NULL, 0, NULL, NULL, 0, 0, 0, NULL, 0, 0, NULL, NULL},
};

/* Rows of conf_params[] (the NULL end not counted); each has a setline[]
 * slot, and conf_setline() is the only way to one. */
#define CONF_NROWS	(sizeof(conf_params) / sizeof(conf_params[0]) - 1)
_Static_assert(CONF_NROWS <= CONF_MAX_PARAMS, "raise CONF_MAX_PARAMS");

/* The keys of a class_<name> line. */
const struct conf_param conf_class_keys[] = {
	{"banner_delay", CT_TIME, "0", "time", 0, 290000, 1,
	    "time until the banner is complete (capped at 290 s)", COFF(banner_delay)},
	{"banner_patience", CT_TIME, "0", "time", 0, 290000, 1,
	    "first contacts: banner held this long past the learned p90 patience of bad senders on their keys (0 = off)",
	    COFF(banner_patience)},
	{"reply_delay", CT_TIME, "0", "time", 0, 590000, 1,
	    "time until each reply is complete, capped per command at the RFC 5321 timeout less 10 s",
	    COFF(reply_delay)},
	{"stutter", CT_INT, "0", "bytes", 0, 512, 1,
	    "while delaying, send the reply this many bytes at a time (0 = all at the end)",
	    COFF(stutter)},
	{"stutter_interval", CT_TIME, "1s", "time", 10, 60000, 1,
	    "time between stutter writes", COFF(stutter_interval)},
	{"rate_in", CT_SIZE, "0", "bytes/s", 0, LMAX, 1,
	    "read rate from the client (0 = unlimited)", COFF(rate_in)},
	{"rate_out", CT_SIZE, "0", "bytes/s", 0, LMAX, 1,
	    "write rate to the client (0 = unlimited)", COFF(rate_out)},
	{"max_messages", CT_INT, "0", "", 0, 1000000, 1,
	    "messages per session (0 = unlimited)", COFF(max_messages)},
	{"max_rcpt", CT_INT, "0", "", 0, 1000000, 1,
	    "recipients per session (0 = unlimited)", COFF(max_rcpt)},
	{"max_per_client", CT_INT, "0", "", 0, 1000000, 1,
	    "concurrent sessions per client in this class (0 = max_connections_per_client)",
	    COFF(max_per_client)},
	{"max_share", CT_INT, "100", "%", 1, 100, 1,
	    "share of max_connections this class may hold", COFF(max_share)},
	{"backend_share", CT_INT, "100", "%", 1, 100, 1,
	    "share of backend_max_connections this class may hold; beyond it MAIL waits",
	    COFF(backend_share)},
	{"session_time", CT_TIME, "0", "time", 0, 86400000, 1,
	    "session length before 421 (0 = unlimited)", COFF(session_time)},
	{"action", CT_ENUM, "relay", "", 0, 0, 1,
	    "after the delays: relay, or answer MAIL with 451 or 554",
	    COFF_ENUM(action, enum_action)},
	{NULL, 0, NULL, NULL, 0, 0, 0, NULL, 0, 0, NULL, NULL},
};

/* conf_setline - the setline[] slot of row p of conf_params[] */
static int *
conf_setline(struct conf *cf, const struct conf_param *p)
{
	size_t	i = (size_t)(p - conf_params);

	assert(i < CONF_NROWS && CONF_NROWS <= CONF_MAX_PARAMS);
	return &cf->setline[i];
}

/* conf_rep_weights_default - "ip=1 prefix=0.5 ..." from rep_kinds[] */
static void
conf_rep_weights_default(char *buf, size_t len)
{
	size_t	n = 0;
	int	i;

	buf[0] = 0;
	for (i = 0; i < REPK_NKINDS && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s=%g",
		    i ? " " : "", rep_kinds[i].name, rep_kinds[i].weight);
}

/* conf_default - the row's default text */
const char *
conf_default(const struct conf_param *p, char *buf, size_t len)
{
	if (p->defval != NULL || p->defgen == NULL)
		return p->defval ? p->defval : "";
	p->defgen(buf, len);
	return buf;
}

/* conf_words_text - "a|b|c": the words of a CT_ENUM row */
static const char *
conf_words_text(const struct conf_param *p, char *buf, size_t len)
{
	size_t	n = 0;
	int	i;

	buf[0] = 0;
	for (i = 0; p->words != NULL && p->words[i] && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? "|" : "",
		    p->words[i]);
	return buf;
}

/* conf_word - the word of value v of an enum parameter or class key */
const char *
conf_word(const char *name, int v)
{
	const struct conf_param *tabs[] = {conf_params, conf_class_keys};
	const struct conf_param *p;
	size_t	t;
	int	i;

	for (t = 0; t < sizeof(tabs) / sizeof(tabs[0]); t++)
		for (p = tabs[t]; p->name; p++) {
			if (strcmp(p->name, name) != 0 || p->type != CT_ENUM ||
			    p->words == NULL || v < 0)
				continue;
			for (i = 0; p->words[i]; i++)
				if (i == v)
					return p->words[i];
		}
	return "?";
}

/* conf_table_check - every row's size fits its type; see conf.h */
int
conf_table_check(const struct conf_param *tab, size_t base_size,
    size_t max_rows, char *err, size_t errlen)
{
	const struct conf_param *p;
	size_t	want, rows = 0;

	for (p = tab; p->name; p++) {
		const char *why = NULL;

		if (++rows > max_rows) {
			snprintf(err, errlen, "parameter table: more than %zu "
			    "rows at %s", max_rows, p->name);
			return -1;
		}
		switch (p->type) {
		case CT_INT:
		case CT_TIME:
		case CT_SIZE:
			want = sizeof(long);
			break;
		case CT_BOOL:
		case CT_ENUM:
			want = sizeof(int);
			break;
		case CT_ENDPOINT:
			want = sizeof(struct endpoint);
			break;
		case CT_CLASS:
			want = 0;
			break;
		default:	/* strings and lists: any size but none */
			want = p->size ? p->size : 1;
			break;
		}
		if (p->size != want)
			why = p->size ? "its member's size does not fit its type" :
			    "no member size (write the row with OFF())";
		else if (p->off + p->size > base_size)
			why = "its member is outside the structure";
		else if ((p->type == CT_ENUM) != (p->words != NULL) ||
		    (p->words != NULL && p->words[0] == NULL))
			why = "words are for CT_ENUM rows, and CT_ENUM needs them";
		else if ((p->defval == NULL) == (p->defgen == NULL))
			why = "it needs exactly one of defval and defgen";
		if (why != NULL) {
			snprintf(err, errlen, "parameter table: %s: %s", p->name,
			    why);
			return -1;
		}
	}
	return 0;
}

/* conf_parse_num - number with optional unit suffix; times in ms */
static int
conf_parse_num(const char *v, int type, long *out, char *err, size_t errlen)
{
	char   *end;
	double	d, mul = 1;

	errno = 0;
	d = strtod(v, &end);
	if (end == v || errno || isnan(d) || d < 0 || !isdigit((unsigned char)*v)) {
		snprintf(err, errlen, "'%s' is not a non-negative number", v);
		return -1;
	}
	if (type == CT_TIME) {
		mul = 1000;
		if (strcmp(end, "ms") == 0)
			mul = 1;
		else if (strcmp(end, "s") == 0 || *end == 0)
			mul = 1000;
		else if (strcmp(end, "m") == 0)
			mul = 60000;
		else if (strcmp(end, "h") == 0)
			mul = 3600000;
		else if (strcmp(end, "d") == 0)
			mul = 86400000;
		else
			goto badunit;
	} else if (type == CT_SIZE) {
		if (*end == 0)
			mul = 1;
		else if (strcasecmp(end, "k") == 0)
			mul = 1024;
		else if (strcasecmp(end, "m") == 0)
			mul = 1024 * 1024;
		else if (strcasecmp(end, "g") == 0)
			mul = 1024.0 * 1024 * 1024;
		else
			goto badunit;
	} else if (*end != 0 || !isfinite(d) || d >= (double)LONG_MAX ||
	    d != floor(d)) {
		snprintf(err, errlen, "'%s' is not an integer", v);
		return -1;
	}
	if (!(d * mul < (double)LONG_MAX)) {
		snprintf(err, errlen, "'%s' is too large", v);
		return -1;
	}
	*out = (long)(d * mul);
	return 0;
badunit:
	snprintf(err, errlen, "'%s' has an unknown unit '%s'", v, end);
	return -1;
}

/* conf_next_word - split lists on commas and white space; NULL at end */
static char *
conf_next_word(char **cursor)
{
	char   *p = *cursor, *w;

	while (*p && (isspace((unsigned char)*p) || *p == ','))
		p++;
	if (*p == 0)
		return NULL;
	w = p;
	while (*p && !isspace((unsigned char)*p) && *p != ',')
		p++;
	if (*p)
		*p++ = 0;
	*cursor = p;
	return w;
}

/* conf_set_value - parse one value of type p->type into base+p->off */
static int
conf_set_value(const struct conf_param *p, void *base, const char *value,
    char *err, size_t errlen)
{
	char   *copy, *cur, *w;
	char	sub[256] = "";
	int	rc = 0;
	long	n;

	switch (p->type) {
	case CT_STR:
		if (strlen(value) >= p->size) {
			snprintf(err, errlen, "value too long (at most %zu "
			    "bytes)", p->size - 1);
			return -1;
		}
		strcpy((char *)base + p->off, value);
		return 0;
	case CT_INT:
	case CT_TIME:
	case CT_SIZE:
		if (conf_parse_num(value, p->type, &n, err, errlen) < 0)
			return -1;
		if (n < p->min || n > p->max) {
			if (p->type == CT_TIME)
				snprintf(err, errlen, "'%s' is out of range "
				    "(%ldms..%ldms)", value, p->min, p->max);
			else
				snprintf(err, errlen, "'%s' is out of range "
				    "(%ld..%ld)", value, p->min, p->max);
			return -1;
		}
		*(long *)((char *)base + p->off) = n;
		return 0;
	case CT_BOOL:
		if (strcmp(value, "yes") == 0)
			*(int *)((char *)base + p->off) = 1;
		else if (strcmp(value, "no") == 0)
			*(int *)((char *)base + p->off) = 0;
		else {
			snprintf(err, errlen, "'%s' is not yes or no", value);
			return -1;
		}
		return 0;
	case CT_ENUM: {
		int	i;

		for (i = 0; p->words[i]; i++)
			if (strcmp(p->words[i], value) == 0) {
				*(int *)((char *)base + p->off) = i;
				return 0;
			}
		snprintf(err, errlen, "'%s' is not one of %s", value,
		    conf_words_text(p, sub, sizeof(sub)));
		return -1;
	}
	case CT_ENDPOINT:
		return addr_parse_endpoint(value, 25,
		    (struct endpoint *)((char *)base + p->off), err, errlen);
	default:
		break;
	}

	/* List types. */
	if ((copy = strdup(value)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	cur = copy;
	if (p->type == CT_LISTEN) {
		struct conf *cf = base;

		cf->nlisten = 0;
		while ((w = conf_next_word(&cur)) != NULL && rc == 0) {
			if (cf->nlisten == CONF_MAX_LISTEN) {
				snprintf(err, errlen, "more than %d addresses",
				    CONF_MAX_LISTEN);
				rc = -1;
			} else
				rc = addr_parse_endpoint(w, 25,
				    &cf->listen[cf->nlisten++], sub, sizeof(sub));
			if (rc < 0 && *sub)
				snprintf(err, errlen, "%s", sub), *sub = 0;
		}
		if (rc == 0 && cf->nlisten == 0) {
			snprintf(err, errlen, "no listen address");
			rc = -1;
		}
	} else if (p->type == CT_MAP) {
		struct conf *cf = base;

		cf->nmap = 0;
		while ((w = conf_next_word(&cur)) != NULL && rc == 0) {
			char   *eq = strchr(w, '=');
			struct class_map *m = &cf->map[cf->nmap];

			if (cf->nmap == CONF_MAX_MAP) {
				snprintf(err, errlen, "more than %d entries",
				    CONF_MAX_MAP);
				rc = -1;
			} else if (eq == NULL || eq[1] == 0 ||
			    strlen(eq + 1) >= CONF_NAME_MAX) {
				snprintf(err, errlen,
				    "'%s' is not network/len=class", w);
				rc = -1;
			} else {
				*eq = 0;
				rc = addr_parse_cidr(w, &m->net, err, errlen);
				strcpy(m->class_name, eq + 1);
				cf->nmap++;
			}
		}
	} else if (p->type == CT_PATHS) {
		struct conf *cf = base;

		cf->nsignatures = 0;
		while ((w = conf_next_word(&cur)) != NULL && rc == 0) {
			if (cf->nsignatures == CONF_MAX_SIGFILES ||
			    strlen(w) >= sizeof(cf->signatures[0])) {
				snprintf(err, errlen, "too many or too long paths");
				rc = -1;
			} else
				strcpy(cf->signatures[cf->nsignatures++], w);
		}
	} else if (p->type == CT_CLASS) {
		struct shclass *c = base;

		while ((w = conf_next_word(&cur)) != NULL && rc == 0) {
			char   *eq = strchr(w, '=');
			const struct conf_param *k;

			if (eq == NULL) {
				snprintf(err, errlen, "'%s' is not key=value", w);
				rc = -1;
				break;
			}
			*eq = 0;
			for (k = conf_class_keys; k->name; k++)
				if (strcmp(k->name, w) == 0)
					break;
			if (k->name == NULL) {
				snprintf(err, errlen, "unknown class key '%s'", w);
				rc = -1;
			} else if (conf_set_value(k, c, eq + 1, sub,
			    sizeof(sub)) < 0) {
				snprintf(err, errlen, "%s: %s", w, sub);
				rc = -1;
			}
		}
	}
	free(copy);
	return rc;
}

/* conf_class_slot - the class called name, created from key defaults */
static struct shclass *
conf_class_slot(struct conf *cf, const char *name, char *err, size_t errlen)
{
	const struct conf_param *k;
	struct shclass *c;
	int	i;

	for (i = 0; i < cf->nclasses; i++)
		if (strcmp(cf->classes[i].name, name) == 0)
			return &cf->classes[i];
	if (cf->nclasses == CONF_MAX_CLASSES || strlen(name) >= CONF_NAME_MAX ||
	    *name == 0 || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_")
	    != strlen(name)) {
		snprintf(err, errlen, "bad class name '%s' (lower case, digits, "
		    "'_'; at most %d classes)", name, CONF_MAX_CLASSES);
		return NULL;
	}
	c = &cf->classes[cf->nclasses++];
	memset(c, 0, sizeof(*c));
	strcpy(c->name, name);
	for (k = conf_class_keys; k->name; k++)
		if (conf_set_value(k, c, k->defval, err, errlen) < 0)
			return NULL;
	return c;
}

/* conf_set - apply "name = value"; the class line replaces the whole class */
static int
conf_set(struct conf *cf, const char *name, const char *value, int line,
    char *err, size_t errlen)
{
	const struct conf_param *p;
	struct shclass *c;
	char	cname[CONF_NAME_MAX];

	for (p = conf_params; p->name; p++)
		if (strcmp(p->name, name) == 0)
			break;
	if (p->name == NULL && strncmp(name, "class_", 6) != 0) {
		snprintf(err, errlen, "unknown parameter '%s'", name);
		return -1;
	}
	if (p->name != NULL)
		*conf_setline(cf, p) = line;
	if (p->name != NULL && p->type != CT_CLASS)
		return conf_set_value(p, cf, value, err, errlen);
	if (strlen(name + 6) >= sizeof(cname)) {
		snprintf(err, errlen, "class name too long");
		return -1;
	}
	strcpy(cname, name + 6);
	if ((c = conf_class_slot(cf, cname, err, errlen)) == NULL)
		return -1;
	{
		/* A class line is complete: unnamed keys take key defaults. */
		struct shclass fresh;
		const struct conf_param *k;

		memset(&fresh, 0, sizeof(fresh));
		strcpy(fresh.name, cname);
		for (k = conf_class_keys; k->name; k++)
			(void)conf_set_value(k, &fresh, k->defval, err, errlen);
		if (conf_set_value(&(struct conf_param){name, CT_CLASS, "", "",
		    0, 0, 1, "", NO_MEMBER}, &fresh, value, err, errlen) < 0)
			return -1;
		*c = fresh;
	}
	return 0;
}

/* conf_apply_line - "name = value" from file:line (lineno -1: -o) */
static int
conf_apply_line(struct conf *cf, char *line, const char *where, int lineno,
    char *err, size_t errlen)
{
	char	sub[256];
	char   *eq, *name, *value;

	if ((eq = strchr(line, '=')) == NULL) {
		snprintf(err, errlen, "%s: missing '=' in \"%.40s\"", where,
		    str_trim(line));
		return -1;
	}
	*eq = 0;
	name = str_trim(line);
	value = str_trim(eq + 1);
	if (*name == 0) {
		snprintf(err, errlen, "%s: missing parameter name", where);
		return -1;
	}
	if (conf_set(cf, name, value, lineno, sub, sizeof(sub)) < 0) {
		snprintf(err, errlen, "%s: %s: %s", where, name, sub);
		return -1;
	}
	return 0;
}

/* conf_read_file - parse the file, handling continuation lines */
static int
conf_read_file(struct conf *cf, const char *path, char *err, size_t errlen)
{
	FILE   *fp;
	char   *line = NULL, *logical = NULL;
	size_t	cap = 0, llen = 0;
	ssize_t	n;
	int	lineno = 0, startline = 0, rc = 0;
	char	where[300];

	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	for (;;) {
		n = getline(&line, &cap, fp);
		if (n >= 0)
			lineno++;
		if (n > 0 && memchr(line, 0, n) != NULL) {
			snprintf(err, errlen, "%s:%d: NUL byte in line", path,
			    lineno);
			rc = -1;
			break;
		}
		/* A continuation line extends the logical line. */
		if (n >= 0 && (line[0] == ' ' || line[0] == '\t') &&
		    *str_trim(line) != 0 && *str_trim(line) != '#' &&
		    logical != NULL) {
			char   *t = str_trim(line);
			char   *grown = realloc(logical, llen + strlen(t) + 2);

			if (grown == NULL) {
				rc = -1;
				snprintf(err, errlen, "out of memory");
				break;
			}
			logical = grown;
			logical[llen++] = ' ';
			strcpy(logical + llen, t);
			llen += strlen(t);
			continue;
		}
		if (logical != NULL) {
			snprintf(where, sizeof(where), "%s:%d", path, startline);
			rc = conf_apply_line(cf, logical, where, startline,
			    err, errlen);
			free(logical);
			logical = NULL;
			if (rc < 0)
				break;
		}
		if (n < 0)
			break;
		{
			char   *t = str_trim(line);

			if (*t == 0 || *t == '#')
				continue;
			if (line[0] == ' ' || line[0] == '\t') {
				snprintf(err, errlen, "%s:%d: continuation line "
				    "without a parameter", path, lineno);
				rc = -1;
				break;
			}
			if ((logical = strdup(t)) == NULL) {
				rc = -1;
				break;
			}
			llen = strlen(logical);
			startline = lineno;
		}
	}
	if (rc == 0 && ferror(fp)) {
		snprintf(err, errlen, "%s: read error", path);
		rc = -1;
	}
	free(logical);
	free(line);
	fclose(fp);
	return rc;
}

/* conf_where - "file:line", "-o name" or "file" for a parameter */
static const char *
conf_where(const struct conf *cf, const char *name, char *buf, size_t len)
{
	const struct conf_param *p;
	int	line = 0;

	for (p = conf_params; p->name; p++)
		if (strcmp(p->name, name) == 0)
			line = *conf_setline((struct conf *)cf, p);
	if (line > 0)
		snprintf(buf, len, "%s:%d", cf->path, line);
	else if (line < 0)
		snprintf(buf, len, "-o %s", name);
	else
		snprintf(buf, len, "%s", *cf->path ? cf->path : "defaults");
	return buf;
}

/* conf_parse_policy - thresholds, weights and the exploration share */
static int
conf_parse_policy(struct conf *cf, char *err, size_t errlen)
{
	char	buf[256], w[300], kinds[200], *cur, *word, *eq, *end;
	double	v;
	size_t	n;
	int	i;

	snprintf(buf, sizeof(buf), "%s", cf->policy_thresholds);
	cur = buf;
	cf->nthresholds = 0;
	while ((word = conf_next_word(&cur)) != NULL) {
		eq = strchr(word, '=');
		if (eq != NULL)
			*eq = 0;
		v = eq ? strtod(eq + 1, &end) : 0;
		if (eq == NULL || end == eq + 1 || *end || !isfinite(v) ||
		    v == 0) {
			snprintf(err, errlen, "%s: policy_thresholds: '%s' is not "
			    "class=score with a non-zero score", conf_where(cf,
			    "policy_thresholds", w, sizeof(w)), word);
			return -1;
		}
		if (conf_class(cf, word) == NULL) {
			snprintf(err, errlen, "%s: policy_thresholds: no class "
			    "'%s'", conf_where(cf, "policy_thresholds", w,
			    sizeof(w)), word);
			return -1;
		}
		if (cf->nthresholds == CONF_MAX_CLASSES)
			break;
		snprintf(cf->thresholds[cf->nthresholds].class_name,
		    CONF_NAME_MAX, "%s", word);
		cf->thresholds[cf->nthresholds++].score = v;
	}
	snprintf(buf, sizeof(buf), "%s", cf->rep_weights);
	cur = buf;
	for (i = 0; i < REPK_NKINDS; i++)
		cf->rep_weight[i] = 0;
	while ((word = conf_next_word(&cur)) != NULL) {
		eq = strchr(word, '=');
		if (eq != NULL)
			*eq = 0;
		v = eq ? strtod(eq + 1, &end) : 0;
		i = rep_kind_parse(word);
		if (eq == NULL || end == eq + 1 || *end || !isfinite(v) ||
		    i < 0) {
			for (i = 0, n = 0; i < REPK_NKINDS &&
			    n < sizeof(kinds); i++)
				n += (size_t)snprintf(kinds + n,
				    sizeof(kinds) - n, "%s%s", i ? ", " : "",
				    rep_kinds[i].name);
			snprintf(err, errlen, "%s: rep_weights: '%s' is not "
			    "kind=weight with kind one of %s", conf_where(cf,
			    "rep_weights", w, sizeof(w)), word, kinds);
			return -1;
		}
		cf->rep_weight[i] = v;
	}
	v = strtod(cf->explore_share_text, &end);
	if (end == cf->explore_share_text || (*end && strcmp(end, "%")) ||
	    !isfinite(v) || v < 0 || v > 100) {
		snprintf(err, errlen, "%s: explore_share: '%s' is not a "
		    "percentage from 0 to 100", conf_where(cf, "explore_share",
		    w, sizeof(w)), cf->explore_share_text);
		return -1;
	}
	cf->explore_share = v / 100;
	v = strtod(cf->first_contact_min_good_text, &end);
	if (end == cf->first_contact_min_good_text || *end || !isfinite(v) ||
	    v < 0 || v > 1000000) {
		snprintf(err, errlen, "%s: first_contact_min_good: '%s' is not "
		    "a number from 0 to 1000000", conf_where(cf,
		    "first_contact_min_good", w, sizeof(w)),
		    cf->first_contact_min_good_text);
		return -1;
	}
	cf->first_contact_min_good = v;
	return 0;
}

/* conf_is_loopback - 1 for 127.0.0.0/8 and ::1 */
static int
conf_is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr)
		    >> 24) == 127;
	if (ss->ss_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(
		    &((const struct sockaddr_in6 *)ss)->sin6_addr);
	return 0;
}

/* conf_token_ok - 16 or more characters of the bearer token alphabet */
static int
conf_token_ok(const char *t)
{
	size_t	tl = strlen(t);

	return tl >= 16 && strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-._~+/=") == tl;
}

/*
 * conf_token_load - read admin_token_file into admin_token: the file's
 * first line, white space trimmed, held to the admin_token rules; nothing
 * to do without admin_token_file.  -1 + err when the file cannot be read
 * or its token is malformed (admin_token is then left as it was).  The
 * daemon calls it as root at start-up and again on SIGHUP, where the
 * caller decides what an unreadable file means.
 */
int
conf_token_load(struct conf *cf, char *err, size_t errlen)
{
	char	buf[512], *nl, *t;
	ssize_t	n;
	int	fd;

	if (*cf->admin_token_file == 0)
		return 0;
	if ((fd = open(cf->admin_token_file, O_RDONLY | O_CLOEXEC |
	    O_NOCTTY | O_NONBLOCK)) < 0) {
		snprintf(err, errlen, "admin_token_file %s: %s",
		    cf->admin_token_file, strerror(errno));
		return -1;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "admin_token_file %s: %s",
		    cf->admin_token_file, strerror(errno));
		return -1;
	}
	buf[n] = 0;
	if ((nl = strchr(buf, '\n')) != NULL)
		*nl = 0;
	t = str_trim(buf);
	if (strlen(t) >= sizeof(cf->admin_token) || !conf_token_ok(t)) {
		snprintf(err, errlen, "admin_token_file %s: the first line must "
		    "be a token of 16 to %zu characters of A-Z a-z 0-9 "
		    "- . _ ~ + / =", cf->admin_token_file,
		    sizeof(cf->admin_token) - 1);
		return -1;
	}
	strcpy(cf->admin_token, t);
	return 0;
}

/*
 * conf_check_admin - admin_listen is loopback or unix:, never an SMTP
 * address; a TCP address needs an admin_token of 16+ token characters
 */
static int
conf_check_admin(struct conf *cf, char *err, size_t errlen)
{
	struct endpoint ep;
	char	w[300], sub[256];
	int	i;

	if (*cf->admin_token && !conf_token_ok(cf->admin_token)) {
		snprintf(err, errlen, "%s: admin_token: at least 16 characters "
		    "of A-Z a-z 0-9 - . _ ~ + / =", conf_where(cf,
		    "admin_token", w, sizeof(w)));
		return -1;
	}
	if (*cf->admin_token && *cf->admin_token_file) {
		snprintf(err, errlen, "%s: admin_token_file: admin_token is set "
		    "too; keep one of them", conf_where(cf, "admin_token_file",
		    w, sizeof(w)));
		return -1;
	}
	if (*cf->admin_listen == 0)
		return 0;
	if (addr_parse_endpoint(cf->admin_listen, 0, &ep, sub,
	    sizeof(sub)) < 0) {
		snprintf(err, errlen, "%s: admin_listen: %s", conf_where(cf,
		    "admin_listen", w, sizeof(w)), sub);
		return -1;
	}
	if (ep.ss.ss_family == AF_UNIX)
		return 0;
	if (!conf_is_loopback(&ep.ss)) {
		snprintf(err, errlen, "%s: admin_listen: %s is not a loopback "
		    "address (use 127.0.0.1, [::1] or unix:/path)",
		    conf_where(cf, "admin_listen", w, sizeof(w)),
		    cf->admin_listen);
		return -1;
	}
	for (i = 0; i < cf->nlisten; i++) {
		const struct sockaddr_storage *l = &cf->listen[i].ss;
		int	lport = l->ss_family == AF_INET ?
		    ((const struct sockaddr_in *)l)->sin_port :
		    l->ss_family == AF_INET6 ?
		    ((const struct sockaddr_in6 *)l)->sin6_port : -1;
		int	aport = ep.ss.ss_family == AF_INET ?
		    ((const struct sockaddr_in *)&ep.ss)->sin_port :
		    ((const struct sockaddr_in6 *)&ep.ss)->sin6_port;

		if (lport == aport) {
			snprintf(err, errlen, "%s: admin_listen: port of %s is "
			    "an SMTP listen port", conf_where(cf,
			    "admin_listen", w, sizeof(w)), cf->admin_listen);
			return -1;
		}
	}
	if (*cf->admin_token == 0 && *cf->admin_token_file == 0) {
		snprintf(err, errlen, "%s: admin_listen: a TCP address needs "
		    "admin_token (or admin_token_file)", conf_where(cf,
		    "admin_listen", w, sizeof(w)));
		return -1;
	}
	return 0;
}

/* conf_check - cross-parameter rules, reported where the value was set */
static int
conf_check(struct conf *cf, char *err, size_t errlen)
{
	char	w[300];
	int	i;

	if (conf_parse_policy(cf, err, errlen) < 0)
		return -1;

	if (conf_class(cf, cf->default_class) == NULL) {
		snprintf(err, errlen, "%s: default_class: no class '%s'",
		    conf_where(cf, "default_class", w, sizeof(w)),
		    cf->default_class);
		return -1;
	}
	if (*cf->violation_class && !conf_class(cf, cf->violation_class)) {
		snprintf(err, errlen, "%s: violation_class: no class '%s'",
		    conf_where(cf, "violation_class", w, sizeof(w)),
		    cf->violation_class);
		return -1;
	}
	for (i = 0; i < cf->nmap; i++)
		if (conf_class(cf, cf->map[i].class_name) == NULL) {
			snprintf(err, errlen, "%s: client_class_map: no class "
			    "'%s'", conf_where(cf, "client_class_map", w,
			    sizeof(w)), cf->map[i].class_name);
			return -1;
		}
	if ((*cf->tls_cert_file != 0) != (*cf->tls_key_file != 0)) {
		snprintf(err, errlen, "%s: tls_cert_file and tls_key_file must "
		    "be set together", conf_where(cf, *cf->tls_cert_file ?
		    "tls_cert_file" : "tls_key_file", w, sizeof(w)));
		return -1;
	}
	if (cf->backend.ss.ss_family == AF_INET ||
	    cf->backend.ss.ss_family == AF_INET6) {
		for (i = 0; i < cf->nlisten; i++)
			if (cf->listen[i].len == cf->backend.len &&
			    memcmp(&cf->listen[i].ss, &cf->backend.ss,
			    cf->backend.len) == 0) {
				snprintf(err, errlen, "%s: backend %s is one of "
				    "our own listen addresses", conf_where(cf,
				    "backend", w, sizeof(w)), cf->backend.text);
				return -1;
			}
	}
	return conf_check_admin(cf, err, errlen);
}

/* conf_load - defaults, then the file (if any), then -o overrides */
struct conf *
conf_load(const char *path, char **overrides, int noverrides, char *err,
    size_t errlen)
{
	const struct conf_param *p;
	struct conf *cf;
	char	where[300], def[512];
	int	i;

	/* A broken row is a bug in the table: no configuration at all. */
	if (conf_table_check(conf_params, sizeof(struct conf), CONF_MAX_PARAMS,
	    err, errlen) < 0 || conf_table_check(conf_class_keys,
	    sizeof(struct shclass), SIZE_MAX, err, errlen) < 0)
		return NULL;
	if ((cf = calloc(1, sizeof(*cf))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (p = conf_params; p->name; p++) {
		if (conf_set(cf, p->name, conf_default(p, def, sizeof(def)), 0,
		    err, errlen) < 0) {
			/* A broken default is a bug in the table. */
			char	sub[256];

			snprintf(sub, sizeof(sub), "default of %s: %s", p->name,
			    err);
			snprintf(err, errlen, "%s", sub);
			goto bad;
		}
	}
	if (path != NULL) {
		snprintf(cf->path, sizeof(cf->path), "%s", path);
		if (conf_read_file(cf, path, err, errlen) < 0)
			goto bad;
	}
	for (i = 0; i < noverrides; i++) {
		char   *copy = strdup(overrides[i]);
		int	rc;

		if (copy == NULL)
			goto bad;
		snprintf(where, sizeof(where), "-o %.200s", overrides[i]);
		rc = conf_apply_line(cf, copy, where, -1, err, errlen);
		free(copy);
		if (rc < 0)
			goto bad;
	}
	if (*cf->myhostname == 0 &&
	    gethostname(cf->myhostname, sizeof(cf->myhostname) - 1) < 0)
		strcpy(cf->myhostname, "localhost");
	if (conf_check(cf, err, errlen) < 0)
		goto bad;
	return cf;
bad:
	free(cf);
	return NULL;
}

/* conf_free - release a configuration */
void
conf_free(struct conf *cf)
{
	free(cf);
}

/* conf_reload_merge - keep the old values of non-reloadable parameters */
void
conf_reload_merge(struct conf *fresh, const struct conf *old)
{
	const struct conf_param *p;

	for (p = conf_params; p->name; p++) {
		if (p->reloadable)
			continue;
		switch (p->type) {
		case CT_LISTEN:
			memcpy(fresh->listen, old->listen, sizeof(old->listen));
			fresh->nlisten = old->nlisten;
			break;
		case CT_PATHS:
			memcpy(fresh->signatures, old->signatures,
			    sizeof(old->signatures));
			fresh->nsignatures = old->nsignatures;
			break;
		default:	/* the member, whatever its type */
			memcpy((char *)fresh + p->off,
			    (const char *)old + p->off, p->size);
			break;
		}
	}
}

/* conf_class - the class called name, or NULL */
const struct shclass *
conf_class(const struct conf *cf, const char *name)
{
	int	i;

	for (i = 0; i < cf->nclasses; i++)
		if (strcmp(cf->classes[i].name, name) == 0)
			return &cf->classes[i];
	return NULL;
}
