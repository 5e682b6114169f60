/*
 * addr.h - socket addresses and CIDR prefixes
 *
 * Text forms: "host:port", "[v6addr]:port", "unix:/path" for endpoints;
 * "a.b.c.d/n" and "v6addr/n" for prefixes.  IPv4-mapped IPv6 addresses are
 * folded to IPv4 everywhere, so a client is always logged in its own family.
 */
#ifndef MS_ADDR_H
#define MS_ADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>

#define ADDR_STRLEN	64	/* enough for "[ipv6]:port" and a NUL */

struct endpoint {
	struct sockaddr_storage ss;	/* AF_INET, AF_INET6 or AF_UNIX */
	socklen_t len;			/* valid bytes of ss */
	char	text[128];		/* as written in the configuration */
};

/* A socket address of either IP family, in 28 bytes instead of 128. */
union ipaddr {
	struct sockaddr sa;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
};

struct cidr {
	int	family;			/* AF_INET or AF_INET6 */
	uint8_t	addr[16];		/* network bytes, host bits zeroed */
	int	plen;			/* prefix length in bits */
};

int	addr_parse_endpoint(const char *, int default_port, struct endpoint *,
	    char *err, size_t errlen);
int	addr_parse_cidr(const char *, struct cidr *, char *err, size_t errlen);
int	addr_cidr_match(const struct cidr *, const struct sockaddr *);
void	addr_unmap(struct sockaddr_storage *);
int	addr_ntop(const struct sockaddr *, char *host, size_t hostlen,
	    int *port);
int	addr_key(const struct sockaddr *, int v4_bits, int v6_bits,
	    uint8_t key[17]);

#endif
