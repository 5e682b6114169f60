/*
 * repkind.h - reputation key kinds: what a key is, the table of kinds and
 *	       the derivation of a session's keys
 *
 * Pure and stateless (repkind.c): the daemon, the stores, report and
 * evaluate derive and name keys with it, with or without rep_open().
 */
#ifndef MS_REPKIND_H
#define MS_REPKIND_H

#include <sys/socket.h>

enum rep_keykind {
	REPK_IP,		/* "192.0.2.7", "2001:db8::7" */
	REPK_PREFIX,		/* "192.0.2.0/24", "2001:db8::/64" */
	REPK_RAWSIG,		/* raw-signature key hash */
	REPK_OS,		/* OS label */
	REPK_PREFIX_RAWSIG,	/* "192.0.2.0/24|<hash>" */
	REPK_DOMAIN,		/* verified organisational domain */
	REPK_NKINDS
};

#define REP_KEY_MAX	200	/* bytes of rep_key.text, NUL included */

struct rep_key {
	enum rep_keykind kind;
	char	text[REP_KEY_MAX];	/* NUL-terminated, never empty */
};

/* What a session's keys are derived from; NULL or "" = not known. */
struct rep_keyin {
	const struct sockaddr *client;	/* AF_INET or AF_INET6, else none */
	const char *rawsig_hash;	/* raw-signature key hash */
	const char *os;			/* OS label */
	const char *domain;		/* verified organisational domain */
};

/*
 * One row per kind, in enum order (repkind.c): the name used in
 * rep_weights, the stores and the logs; the derivation (1 = a key written
 * to text, 0 = none; prefix lengths in bits); the default weight of the
 * kind's log-odds in rep_weights.  doc/internals/adding-a-key.md says how
 * to add a row.
 */
struct rep_keyctx;		/* one derivation's inputs and shared work */

struct rep_kind {
	enum rep_keykind kind;		/* == its index in rep_kinds[] */
	const char *name;		/* "ip", "prefix", ... */
	int	(*derive)(struct rep_keyctx *, char text[REP_KEY_MAX]);
	double	weight;			/* default weight in rep_weights */
};

extern const struct rep_kind rep_kinds[REPK_NKINDS];

/*
 * rep_keykind_name: the kind's name, "?" when out of range.
 * rep_kind_parse: the kind called name, or -1.
 * rep_keys_derive: the keys of a session in enum order, with these prefix
 * lengths (bits, as rep_prefix_v4 / rep_prefix_v6 allow); returns how
 * many.  Needs no rep_open(): offline tools derive keys with it.
 */
const char *rep_keykind_name(enum rep_keykind);
int	rep_kind_parse(const char *name);
int	rep_keys_derive(const struct rep_keyin *, int prefix_v4, int prefix_v6,
	    struct rep_key keys[REPK_NKINDS]);

#endif
