/*
 * repkind.c - the table of reputation key kinds: name, derivation, weight
 *
 * Exports rep_kinds[] (one row per enum rep_keykind, in enum order),
 * rep_keykind_name(), rep_kind_parse() and rep_keys_derive().  Every other
 * place that needs the list of kinds walks this table: the configuration
 * (rep_weights parsing and its default), the cache and stores (the name
 * is part of a stored key), policy, admin and feedback (rep_keys_for()).
 * Adding a kind is an enum value in rep.h, one row here and its
 * derivation function (doc/internals/adding-a-key.md lists the rest).
 *
 * A derivation function is pure: it reads the session's inputs and the
 * prefix lengths (through a struct rep_keyctx, which also holds the work
 * kinds share: the folded address, the prefix) and writes at most
 * REP_KEY_MAX bytes of key text; it
 * returns 1 for a key, 0 when the session has no key of that kind (an
 * empty or NULL input, a client that is not IPv4 or IPv6).  Nothing here
 * needs rep_open(): report and evaluate may derive keys offline.
 * No state, no allocation; it is an error to pass a keys array with fewer
 * than REPK_NKINDS slots to rep_keys_derive().
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "rep/repkind.h"
#include "util/addr.h"

/*
 * One derivation: the inputs and the prefix lengths, and the work two
 * kinds share (the folded address, the prefix text), done once.
 */
struct rep_keyctx {
	const struct rep_keyin *in;
	int	v4, v6;			/* prefix lengths, bits */
	int	addr;			/* 0 = not yet, 1 = ss, -1 = none */
	struct sockaddr_storage ss;	/* the client, IPv4-mapped folded */
	int	prefix;			/* 0 = not yet, 1 = net, -1 = none */
	char	net[INET6_ADDRSTRLEN + 4];	/* "192.0.2.0/24" */
};

/* rk_addr - the client folded to IPv4 when mapped; NULL for none */
static const struct sockaddr *
rk_addr(struct rep_keyctx *x)
{
	const struct sockaddr *sa = x->in->client;

	if (x->addr == 0) {
		x->addr = -1;
		if (sa != NULL && (sa->sa_family == AF_INET ||
		    sa->sa_family == AF_INET6)) {
			memset(&x->ss, 0, sizeof(x->ss));
			memcpy(&x->ss, sa, sa->sa_family == AF_INET ?
			    sizeof(struct sockaddr_in) :
			    sizeof(struct sockaddr_in6));
			addr_unmap(&x->ss);
			x->addr = 1;
		}
	}
	return x->addr > 0 ? (const struct sockaddr *)&x->ss : NULL;
}

/* rk_net - "192.0.2.0/24", "2001:db8::/64" with v4 / v6 bits, or NULL */
static const char *
rk_net(struct rep_keyctx *x)
{
	const struct sockaddr *sa;
	char	net[INET6_ADDRSTRLEN];
	uint8_t	kb[17];

	if (x->prefix == 0) {
		x->prefix = -1;
		if ((sa = rk_addr(x)) != NULL &&
		    addr_key(sa, x->v4, x->v6, kb) == 0 &&
		    inet_ntop(kb[0], kb + 1, net, sizeof(net)) != NULL) {
			snprintf(x->net, sizeof(x->net), "%s/%d", net,
			    kb[0] == AF_INET ? x->v4 : x->v6);
			x->prefix = 1;
		}
	}
	return x->prefix > 0 ? x->net : NULL;
}

/* rk_text - a key of text, none when it is NULL or empty */
static int
rk_text(const char *s, char text[REP_KEY_MAX])
{
	if (s == NULL || s[0] == '\0')
		return 0;
	snprintf(text, REP_KEY_MAX, "%s", s);
	return 1;
}

/* rk_ip - "192.0.2.7", "2001:db8::7" */
static int
rk_ip(struct rep_keyctx *x, char text[REP_KEY_MAX])
{
	const struct sockaddr *sa = rk_addr(x);

	return sa != NULL && addr_ntop(sa, text, REP_KEY_MAX, NULL) == 0;
}

/* rk_prefix - the client's prefix */
static int
rk_prefix(struct rep_keyctx *x, char text[REP_KEY_MAX])
{
	return rk_text(rk_net(x), text);
}

/* rk_rawsig - the raw-signature key hash */
static int
rk_rawsig(struct rep_keyctx *x, char text[REP_KEY_MAX])
{
	return rk_text(x->in->rawsig_hash, text);
}

/* rk_os - the OS label */
static int
rk_os(struct rep_keyctx *x, char text[REP_KEY_MAX])
{
	return rk_text(x->in->os, text);
}

/* rk_prefix_rawsig - "192.0.2.0/24|<hash>": both, or no key */
static int
rk_prefix_rawsig(struct rep_keyctx *x, char text[REP_KEY_MAX])
{
	const char *net;

	if (x->in->rawsig_hash == NULL || x->in->rawsig_hash[0] == '\0' ||
	    (net = rk_net(x)) == NULL)
		return 0;
	snprintf(text, REP_KEY_MAX, "%.*s|%s", (int)(REP_KEY_MAX / 2), net,
	    x->in->rawsig_hash);
	return 1;
}

/* rk_domain - the verified organisational domain */
static int
rk_domain(struct rep_keyctx *x, char text[REP_KEY_MAX])
{
	return rk_text(x->in->domain, text);
}

/*
 * The kinds, in enum rep_keykind order.  The weights are the defaults of
 * rep_weights (conf.c prints them with %g into the parameter's default).
 */
const struct rep_kind rep_kinds[] = {
	{REPK_IP, "ip", rk_ip, 1},
	{REPK_PREFIX, "prefix", rk_prefix, 0.5},
	{REPK_RAWSIG, "rawsig", rk_rawsig, 1.5},
	{REPK_OS, "os", rk_os, 0.3},
	{REPK_PREFIX_RAWSIG, "prefix_rawsig", rk_prefix_rawsig, 1},
	{REPK_DOMAIN, "domain", rk_domain, 1.5},
};

_Static_assert(sizeof(rep_kinds) / sizeof(rep_kinds[0]) == REPK_NKINDS,
    "one row of rep_kinds[] per enum rep_keykind");

/* rep_keykind_name - "ip", "prefix", ...; "?" when out of range */
const char *
rep_keykind_name(enum rep_keykind k)
{
	return (unsigned)k < REPK_NKINDS ? rep_kinds[k].name : "?";
}

/* rep_kind_parse - the kind called name, or -1 */
int
rep_kind_parse(const char *name)
{
	int	i;

	for (i = 0; i < REPK_NKINDS; i++)
		if (strcmp(rep_kinds[i].name, name) == 0)
			return i;
	return -1;
}

/* rep_keys_derive - a session's keys in table order; how many */
int
rep_keys_derive(const struct rep_keyin *in, int prefix_v4, int prefix_v6,
    struct rep_key keys[REPK_NKINDS])
{
	struct rep_keyctx x;
	int	i, n = 0;

	x.in = in;
	x.addr = x.prefix = 0;		/* the address and net when needed */
	x.v4 = prefix_v4;
	x.v6 = prefix_v6;
	for (i = 0; i < REPK_NKINDS; i++)
		if (rep_kinds[i].derive(&x, keys[n].text)) {
			keys[n].kind = rep_kinds[i].kind;
			n++;
		}
	return n;
}
