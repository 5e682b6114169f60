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
 * prefix lengths and writes at most REP_KEY_MAX bytes of key text; it
 * returns 1 for a key, 0 when the session has no key of that kind (an
 * empty or NULL input, a client that is not IPv4 or IPv6).  Nothing here
 * needs rep_open(): report and evaluate may derive keys offline.
 * No state, no allocation; it is an error to pass a keys array with fewer
 * than REPK_NKINDS slots to rep_keys_derive().
 */
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "rep/rep.h"
#include "util/addr.h"

/* rk_addr - the client folded to IPv4 when mapped; 0, or -1 for none */
static int
rk_addr(const struct rep_keyin *in, struct sockaddr_storage *ss)
{
	const struct sockaddr *sa = in->client;

	if (sa == NULL || (sa->sa_family != AF_INET &&
	    sa->sa_family != AF_INET6))
		return -1;
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, sa, sa->sa_family == AF_INET ?
	    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
	addr_unmap(ss);
	return 0;
}

/* rk_ip - "192.0.2.7", "2001:db8::7" */
static int
rk_ip(const struct rep_keyin *in, int v4, int v6, char text[REP_KEY_MAX])
{
	struct sockaddr_storage ss;
	char	host[INET6_ADDRSTRLEN];

	(void)v4;
	(void)v6;
	if (rk_addr(in, &ss) < 0 || addr_ntop((struct sockaddr *)&ss, host,
	    sizeof(host), NULL) != 0)
		return 0;
	snprintf(text, REP_KEY_MAX, "%s", host);
	return 1;
}

/* rk_prefix - "192.0.2.0/24", "2001:db8::/64" with v4 / v6 bits */
static int
rk_prefix(const struct rep_keyin *in, int v4, int v6, char text[REP_KEY_MAX])
{
	struct sockaddr_storage ss;
	char	net[INET6_ADDRSTRLEN];
	uint8_t	kb[17];

	if (rk_addr(in, &ss) < 0 ||
	    addr_key((struct sockaddr *)&ss, v4, v6, kb) != 0 ||
	    inet_ntop(kb[0], kb + 1, net, sizeof(net)) == NULL)
		return 0;
	snprintf(text, REP_KEY_MAX, "%s/%d", net, kb[0] == AF_INET ? v4 : v6);
	return 1;
}

/* rk_rawsig - the raw-signature key hash */
static int
rk_rawsig(const struct rep_keyin *in, int v4, int v6, char text[REP_KEY_MAX])
{
	(void)v4;
	(void)v6;
	if (in->rawsig_hash == NULL || in->rawsig_hash[0] == '\0')
		return 0;
	snprintf(text, REP_KEY_MAX, "%s", in->rawsig_hash);
	return 1;
}

/* rk_os - the OS label */
static int
rk_os(const struct rep_keyin *in, int v4, int v6, char text[REP_KEY_MAX])
{
	(void)v4;
	(void)v6;
	if (in->os == NULL || in->os[0] == '\0')
		return 0;
	snprintf(text, REP_KEY_MAX, "%s", in->os);
	return 1;
}

/* rk_prefix_rawsig - "192.0.2.0/24|<hash>": both, or no key */
static int
rk_prefix_rawsig(const struct rep_keyin *in, int v4, int v6,
    char text[REP_KEY_MAX])
{
	char	prefix[REP_KEY_MAX];

	if (in->rawsig_hash == NULL || in->rawsig_hash[0] == '\0' ||
	    !rk_prefix(in, v4, v6, prefix))
		return 0;
	snprintf(text, REP_KEY_MAX, "%.*s|%s", (int)(REP_KEY_MAX / 2), prefix,
	    in->rawsig_hash);
	return 1;
}

/* rk_domain - the verified organisational domain */
static int
rk_domain(const struct rep_keyin *in, int v4, int v6, char text[REP_KEY_MAX])
{
	(void)v4;
	(void)v6;
	if (in->domain == NULL || in->domain[0] == '\0')
		return 0;
	snprintf(text, REP_KEY_MAX, "%s", in->domain);
	return 1;
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
	int	i, n = 0;

	for (i = 0; i < REPK_NKINDS; i++)
		if (rep_kinds[i].derive(in, prefix_v4, prefix_v6,
		    keys[n].text)) {
			keys[n].kind = rep_kinds[i].kind;
			n++;
		}
	return n;
}
