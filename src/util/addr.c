/*
 * addr.c - endpoint and CIDR parsing, address normalisation
 *
 * Exports the addr_* functions of addr.h.  No function allocates memory.
 * Parsers return -1 and fill the caller's error buffer; they never log.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/addr.h"

/* addr_parse_endpoint - "host:port", "[v6]:port", "unix:/path" or "port" */
int
addr_parse_endpoint(const char *s, int default_port, struct endpoint *ep,
    char *err, size_t errlen)
{
	char	host[128];
	const char *port = NULL, *p;
	long	pn;
	char   *end;

	memset(ep, 0, sizeof(*ep));
	snprintf(ep->text, sizeof(ep->text), "%s", s);
	if (strncmp(s, "unix:", 5) == 0) {
		struct sockaddr_un *sun = (struct sockaddr_un *)&ep->ss;

		if (s[5] != '/' || strlen(s + 5) >= sizeof(sun->sun_path)) {
			snprintf(err, errlen, "bad unix socket path '%s'", s);
			return -1;
		}
		sun->sun_family = AF_UNIX;
		strcpy(sun->sun_path, s + 5);
		ep->len = sizeof(*sun);
		return 0;
	}
	if (s[0] == '[') {
		p = strchr(s, ']');
		if (p == NULL || (size_t)(p - s - 1) >= sizeof(host)) {
			snprintf(err, errlen, "bad address '%s': missing ']'", s);
			return -1;
		}
		memcpy(host, s + 1, p - s - 1);
		host[p - s - 1] = 0;
		if (p[1] == ':')
			port = p + 2;
		else if (p[1] != 0) {
			snprintf(err, errlen, "bad address '%s'", s);
			return -1;
		}
	} else if ((p = strrchr(s, ':')) != NULL) {
		if (strchr(s, ':') != p) {
			snprintf(err, errlen,
			    "bad address '%s': write IPv6 as [addr]:port", s);
			return -1;
		}
		if ((size_t)(p - s) >= sizeof(host)) {
			snprintf(err, errlen, "address too long '%s'", s);
			return -1;
		}
		memcpy(host, s, p - s);
		host[p - s] = 0;
		port = p + 1;
	} else if (strspn(s, "0123456789") == strlen(s) && *s) {
		strcpy(host, "0.0.0.0");
		port = s;
	} else {
		snprintf(host, sizeof(host), "%s", s);
	}
	pn = default_port;
	if (port != NULL) {
		errno = 0;
		pn = strtol(port, &end, 10);
		if (!isdigit((unsigned char)*port) || *end != 0 || errno ||
		    pn < 0 || pn > 65535) {
			snprintf(err, errlen, "bad port in '%s'", s);
			return -1;
		}
	}
	if (pn <= 0) {
		snprintf(err, errlen, "missing port in '%s'", s);
		return -1;
	}
	if (strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	if (*host == 0)
		strcpy(host, "0.0.0.0");
	{
		struct sockaddr_in *sin = (struct sockaddr_in *)&ep->ss;
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ep->ss;

		if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
			sin->sin_family = AF_INET;
			sin->sin_port = htons((uint16_t)pn);
			ep->len = sizeof(*sin);
		} else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
			sin6->sin6_family = AF_INET6;
			sin6->sin6_port = htons((uint16_t)pn);
			ep->len = sizeof(*sin6);
		} else {
			snprintf(err, errlen,
			    "bad address '%s': need a numeric IP address", s);
			return -1;
		}
	}
	return 0;
}

/* addr_parse_cidr - "a.b.c.d[/n]" or "v6[/n]"; host bits are cleared */
int
addr_parse_cidr(const char *s, struct cidr *c, char *err, size_t errlen)
{
	char	buf[80];
	char   *slash, *end;
	long	plen;
	int	max, i;

	if (strlen(s) >= sizeof(buf)) {
		snprintf(err, errlen, "bad network '%s'", s);
		return -1;
	}
	strcpy(buf, s);
	memset(c, 0, sizeof(*c));
	slash = strchr(buf, '/');
	if (slash != NULL)
		*slash++ = 0;
	if (inet_pton(AF_INET, buf, c->addr) == 1) {
		c->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, c->addr) == 1) {
		c->family = AF_INET6;
		max = 128;
	} else {
		snprintf(err, errlen, "bad network address '%s'", s);
		return -1;
	}
	plen = max;
	if (slash != NULL) {
		errno = 0;
		plen = strtol(slash, &end, 10);
		if (!isdigit((unsigned char)*slash) || *end || errno ||
		    plen < 0 || plen > max) {
			snprintf(err, errlen, "bad prefix length in '%s'", s);
			return -1;
		}
	}
	c->plen = (int)plen;
	for (i = 0; i < max / 8; i++) {
		int bits = (int)plen - i * 8;

		if (bits >= 8)
			continue;
		c->addr[i] &= bits <= 0 ? 0 : (uint8_t)(0xff << (8 - bits));
	}
	return 0;
}

/* addr_bytes - pointer to the address bytes of sa, and their family */
static const uint8_t *
addr_bytes(const struct sockaddr *sa, int *family)
{
	*family = sa->sa_family;
	if (sa->sa_family == AF_INET)
		return (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
	if (sa->sa_family == AF_INET6)
		return (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
	return NULL;
}

/* addr_cidr_match - 1 when sa lies inside c */
int
addr_cidr_match(const struct cidr *c, const struct sockaddr *sa)
{
	const uint8_t *b;
	int	family, full, rest;

	if ((b = addr_bytes(sa, &family)) == NULL || family != c->family)
		return 0;
	full = c->plen / 8;
	rest = c->plen % 8;
	if (memcmp(b, c->addr, full) != 0)
		return 0;
	if (rest && ((b[full] ^ c->addr[full]) & (0xff << (8 - rest))))
		return 0;
	return 1;
}

/* addr_unmap - turn an IPv4-mapped IPv6 address into plain IPv4 */
void
addr_unmap(struct sockaddr_storage *ss)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in sin;

	if (ss->ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
		return;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = sin6->sin6_port;
	memcpy(&sin.sin_addr, &sin6->sin6_addr.s6_addr[12], 4);
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, &sin, sizeof(sin));
}

/* addr_ntop - numeric host text and port of sa; -1 for other families */
int
addr_ntop(const struct sockaddr *sa, char *host, size_t hostlen, int *port)
{
	const uint8_t *b;
	int	family;

	if ((b = addr_bytes(sa, &family)) == NULL) {
		snprintf(host, hostlen, "unix");
		if (port)
			*port = 0;
		return -1;
	}
	if (inet_ntop(family, b, host, hostlen) == NULL)
		return -1;
	if (port)
		*port = ntohs(family == AF_INET ?
		    ((const struct sockaddr_in *)sa)->sin_port :
		    ((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

/* addr_key - family byte + address truncated to a prefix: a hashable key */
int
addr_key(const struct sockaddr *sa, int v4_bits, int v6_bits, uint8_t key[17])
{
	const uint8_t *b;
	int	family, bits, i;

	memset(key, 0, 17);
	if ((b = addr_bytes(sa, &family)) == NULL)
		return -1;
	key[0] = (uint8_t)family;
	bits = family == AF_INET ? v4_bits : v6_bits;
	for (i = 0; i < bits / 8; i++)
		key[1 + i] = b[i];
	if (bits % 8)
		key[1 + i] = b[i] & (uint8_t)(0xff << (8 - bits % 8));
	return 0;
}
