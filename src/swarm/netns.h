/*
 * netns.h - the swarm's private network: namespace, lo, tun0 and routes
 */
#ifndef MS_SWARM_NETNS_H
#define MS_SWARM_NETNS_H

#include <stddef.h>

struct netns_conf {
	int		new_ns;		/* 1 = unshare(CLONE_NEWNET) first (as a
					 * normal user, CLONE_NEWUSER too) */
	const char	*daemon_addr;	/* IPv4 put on lo as /32, NULL = none */
	const char	*daemon_addr6;	/* IPv6 put on lo as /128, NULL = none */
	const char	*tun_name;	/* "tun0" */
	const char	*route4;	/* IPv4 prefix into the TUN, NULL = none */
	const char	*route6;	/* IPv6 prefix into the TUN, NULL = none */
};

int	netns_setup(const struct netns_conf *conf, int *tunfd, char *err,
	    size_t errlen);
int	netns_is_initial(const char *tun_name);
int	netns_parse_mode(const char *, int *new_ns);	/* --netns new|here */
int	netns_write_proc(const char *path, const char *s, char *err,
	    size_t errlen);

#endif
