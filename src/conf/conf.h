/*
 * conf.h - the configuration: one table of parameters, Postfix syntax
 *
 * A configuration is built by conf_load() from built-in defaults, then the
 * file, then -o overrides, and is immutable afterwards.  SIGHUP builds a new
 * one and conf_reload_merge() keeps the values of non-reloadable parameters.
 * Every parameter is a row of conf_params[]; doc/man/mailshaper.conf.5 must
 * list each row (a test checks this).
 */
#ifndef MS_CONF_H
#define MS_CONF_H

#include <stddef.h>

#include "rep/repkind.h"
#include "util/addr.h"

#define CONF_MAX_LISTEN		16
#define CONF_MAX_CLASSES	16
#define CONF_MAX_MAP		256
#define CONF_MAX_SIGFILES	8
#define CONF_NAME_MAX		32
#define CONF_MAX_PARAMS		96	/* rows of conf_params[] */

enum conf_action {
	ACTION_RELAY,		/* relay to the backend */
	ACTION_TEMPFAIL,	/* 451 to MAIL after the delays */
	ACTION_REJECT,		/* 554 to MAIL after the delays */
};

enum conf_identity {
	IDENT_XCLIENT,
	IDENT_PROXY,
	IDENT_NONE,
};

enum conf_bare {
	BARE_NORMALIZE,		/* bare LF ends a line; CR, NUL become space */
	BARE_REJECT,		/* the message is refused with 5xx */
};

struct shclass {
	char	name[CONF_NAME_MAX];
	long	banner_delay;		/* ms until the banner is complete */
	long	reply_delay;		/* ms until each reply is complete */
	long	stutter;		/* bytes per write while delaying (0 = off) */
	long	stutter_interval;	/* ms between stutter writes */
	long	rate_in;		/* client->us bytes/s (0 = unlimited) */
	long	rate_out;		/* us->client bytes/s (0 = unlimited) */
	long	max_messages;		/* per session (0 = unlimited) */
	long	max_rcpt;		/* per session (0 = unlimited) */
	long	max_per_client;		/* concurrent sessions (0 = global limit) */
	long	max_share;		/* % of max_connections this class may hold */
	long	backend_share;		/* % of backend_max_connections */
	long	banner_patience;	/* ms past the learned patience of bad
					   senders (0 = off) */
	long	session_time;		/* ms per session (0 = unlimited) */
	int	action;			/* enum conf_action */
};

struct class_map {
	struct cidr net;
	char	class_name[CONF_NAME_MAX];
};

struct conf {
	char	path[256];		/* file it came from ("" = defaults) */
	int	setline[CONF_MAX_PARAMS]; /* per row: file line, 0 = default,
					   * -1 = an -o override */
	struct endpoint listen[CONF_MAX_LISTEN];
	int	nlisten;
	long	listen_backlog;
	struct endpoint backend;
	int	backend_identity;	/* enum conf_identity */
	long	backend_max_connections;
	long	backend_connect_timeout;	/* ms */
	long	backend_timeout;	/* ms, per reply; 2x for end of data */
	long	backend_keepalive;	/* ms idle before a NOOP */
	int	backend_tls;		/* STARTTLS to the backend */
	char	eventlog[256];
	char	myhostname[256];
	long	max_connections;
	long	max_connections_per_client;
	int	observe;
	char	default_class[CONF_NAME_MAX];
	struct class_map map[CONF_MAX_MAP];
	int	nmap;
	struct shclass classes[CONF_MAX_CLASSES];
	int	nclasses;
	char	user[64];
	long	grace_time;		/* ms */
	long	smtp_timeout;		/* ms of client silence */
	long	smtp_line_limit;	/* bytes, command lines */
	long	smtp_error_limit;
	long	smtp_junk_command_limit; /* NOOP etc. before they are errors */
	long	smtp_recipient_limit;	/* RCPTs per transaction */
	long	min_data_rate;		/* bytes/s in DATA/BDAT (0 = off) */
	long	tls_handshake_timeout;	/* ms for the client's handshake */
	long	spool_memory;		/* bytes of content in memory, all
					   sessions together */
	char	spool_dir[256];		/* unlinked spool files */
	int	bare_policy;		/* enum conf_bare */
	long	message_size_limit;	/* bytes (0 = backend's SIZE) */
	int	vrfy_command;
	int	expn_command;
	char	tls_cert_file[256];
	char	tls_key_file[256];
	char	violation_class[CONF_NAME_MAX];
	char	syslog_name[64];
	char	signatures[CONF_MAX_SIGFILES][256];
	int	nsignatures;		/* 0 = built-in default list */
	/* Decision engine (issue 4). */
	char	dnsbl_sites[1024];	/* zone[=filter]*weight ... */
	char	dns_servers[256];	/* ip[:port] ... ("" = /etc/resolv.conf) */
	long	dnsbl_timeout;		/* ms per query */
	long	dnsbl_negative_ttl;	/* ms a not-listed answer is cached */
	long	dnsbl_cache_size;	/* entries */
	char	rep_store[256];		/* sqlite:/path or redis://host:port */
	long	rep_half_life;		/* ms */
	long	rep_prefix_v4;		/* bits */
	long	rep_prefix_v6;		/* bits */
	long	rep_cache_size;		/* entries */
	long	rep_key_ttl;		/* ms a Redis key lives after its last update */
	char	policy_thresholds[256];	/* class=score ... (text) */
	struct {
		char	class_name[CONF_NAME_MAX];
		double	score;		/* >0: at least; <0: at most */
	}	thresholds[CONF_MAX_CLASSES];
	int	nthresholds;
	char	rep_weights[256];	/* kind=weight ... (text) */
	double	rep_weight[REPK_NKINDS];	/* per enum rep_keykind */
	long	rep_evidence_scale;	/* observations for half weight */
	char	explore_share_text[16];
	double	explore_share;		/* 0..1 */
	long	explore_max_evidence;	/* only keys with less evidence */
	long	patience_min_evidence;	/* sessions a key's patience needs */
	char	first_contact_min_good_text[16];
	double	first_contact_min_good;	/* good evidence: not a first contact */
	char	trace_header[64];	/* header name ("" = none) */
	char	feedback_listen[128];	/* host:port of the HTTP listener */
	long	feedback_cache_size;	/* sessions remembered for feedback */
	/* Admin API (issue 6). */
	char	admin_listen[128];	/* loopback host:port, unix:/path, "" */
	char	admin_token[128];	/* bearer token ("" = none); from
					 * admin_token_file after
					 * conf_token_load() */
	char	admin_token_file[256];	/* file whose first line is the token */
};

/*
 * One row of the parameter table.  Rows are written with conf.c's OFF()
 * family of macros, which take the member and record its offset and its
 * sizeof together, so a row cannot lack its size; conf_table_check()
 * holds every row to its type at each conf_load().
 */
struct conf_param {
	const char *name;
	int	type;			/* CT_* */
	const char *defval;		/* text form, parsed like a file line
					 * (NULL = defgen writes it) */
	const char *unit;		/* for the man page: "ms", "bytes", "";
					 * CT_ENUM: "" (words says it) */
	long	min, max;		/* bounds for numbers */
	int	reloadable;
	const char *doc;		/* one line */
	size_t	off;			/* offset in struct conf (or class key) */
	size_t	size;			/* sizeof that member (0 = no member:
					 * the class_<name> rows) */
	const char *const *words;	/* CT_ENUM: the words, index = value,
					 * NULL-terminated; otherwise NULL */
	void	(*defgen)(char *buf, size_t len); /* the default text when
					 * defval is NULL, else NULL */
};

enum { CT_STR, CT_INT, CT_TIME, CT_SIZE, CT_BOOL, CT_ENUM, CT_LISTEN,
	CT_ENDPOINT, CT_MAP, CT_CLASS, CT_PATHS };

extern const struct conf_param conf_params[];
extern const struct conf_param conf_class_keys[];

/*
 * conf_default: the row's default text (defval, or what defgen writes
 * into buf).
 * conf_word: the word of value v of the CT_ENUM parameter or class key
 * called name, or "?" (unknown name, not an enum, v out of range).
 * conf_table_check: every row of tab (NULL-terminated, members of a
 * struct of base_size bytes, at most max_rows rows) has a size that fits
 * its type, words exactly when it is an enum, a default; 0, or -1 + err
 * naming the row.  conf_load() runs it on both tables, so a broken row
 * fails every load (and every test) instead of misbehaving.
 */
const char *conf_default(const struct conf_param *, char *buf, size_t len);
const char *conf_word(const char *name, int v);
int	conf_table_check(const struct conf_param *tab, size_t base_size,
	    size_t max_rows, char *err, size_t errlen);
struct conf *conf_load(const char *path, char **overrides, int noverrides,
	    char *err, size_t errlen);
void	conf_free(struct conf *);
void	conf_reload_merge(struct conf *fresh, const struct conf *old);
int	conf_token_load(struct conf *, char *err, size_t errlen);
const struct shclass *conf_class(const struct conf *, const char *name);

#endif
