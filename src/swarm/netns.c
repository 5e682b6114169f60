/*
 * netns.c - set up the swarm's private network inside a namespace
 *
 * Exports netns_setup(): optionally enter a new network namespace (as a
 * normal user, inside a new user namespace that maps only that user), bring
 * lo up, put the daemon's addresses on lo (IPv4 /32, IPv6 /128 without
 * duplicate address detection), create a TUN device (IFF_TUN | IFF_NO_PI,
 * non-blocking) and route the simulated senders' prefixes into it.  Links
 * go up with SIOCSIFFLAGS; addresses and routes are added over rtnetlink;
 * nothing is shelled out.  The caller owns the returned TUN descriptor.
 * Also netns_parse_mode() for the --netns option and netns_write_proc().
 *
 * It is an error to call netns_setup() in the initial network namespace
 * without new_ns: the swarm must never route test addresses on the host.
 * Where pid 1's namespace cannot be seen, a namespace counts as the
 * host's if it has any interface besides lo and the TUN device.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "swarm/netns.h"
#include "util/addr.h"

struct nlreq {			/* one rtnetlink request with attributes */
	struct nlmsghdr	nh;
	union {
		struct ifaddrmsg ifa;
		struct rtmsg	rt;
	} u;
	char		attrs[128];
};

/*
 * netns_is_initial - 1 if this may be the host's network namespace: the
 * same namespace as pid 1, or (when pid 1's is out of sight, as in a
 * container) any interface besides lo and the TUN device we manage.
 */
int
netns_is_initial(const char *tun_name)
{
	struct stat self, init;
	struct if_nameindex *ifs, *i;
	int foreign = 0;

	if (stat("/proc/self/ns/net", &self) == -1)
		return 1;
	if (stat("/proc/1/ns/net", &init) == 0)
		return self.st_ino == init.st_ino && self.st_dev == init.st_dev;
	if ((ifs = if_nameindex()) == NULL)
		return 1;
	for (i = ifs; i->if_index != 0; i++)
		if (strcmp(i->if_name, "lo") != 0 &&
		    strcmp(i->if_name, tun_name) != 0)
			foreign = 1;
	if_freenameindex(ifs);
	return foreign;
}

/* add_attr - append one rtattr to a request */
static void
add_attr(struct nlreq *r, unsigned short type, const void *data, size_t len)
{
	struct rtattr *a = (struct rtattr *)((char *)r +
	    NLMSG_ALIGN(r->nh.nlmsg_len));

	a->rta_type = type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	memcpy(RTA_DATA(a), data, len);
	r->nh.nlmsg_len = NLMSG_ALIGN(r->nh.nlmsg_len) + RTA_ALIGN(a->rta_len);
}

/* nl_talk - send one request and read its acknowledgement */
static int
nl_talk(struct nlreq *r, const char *what, char *err, size_t errlen)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	char buf[4096];
	struct nlmsghdr *h;
	ssize_t n;
	int fd, rc = -1;

	if ((fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC,
	    NETLINK_ROUTE)) == -1) {
		snprintf(err, errlen, "%s: netlink socket: %s", what,
		    strerror(errno));
		return -1;
	}
	r->nh.nlmsg_seq = 1;
	if (sendto(fd, r, r->nh.nlmsg_len, 0, (struct sockaddr *)&sa,
	    sizeof(sa)) == -1) {
		snprintf(err, errlen, "%s: netlink send: %s", what,
		    strerror(errno));
		goto out;
	}
	if ((n = recv(fd, buf, sizeof(buf), 0)) < 0) {
		snprintf(err, errlen, "%s: netlink recv: %s", what,
		    strerror(errno));
		goto out;
	}
	for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (unsigned)n);
	    h = NLMSG_NEXT(h, n)) {
		if (h->nlmsg_type == NLMSG_ERROR) {
			struct nlmsgerr *e = NLMSG_DATA(h);

			if (e->error == 0 || e->error == -EEXIST)
				rc = 0;
			else
				snprintf(err, errlen, "%s: %s", what,
				    strerror(-e->error));
			goto out;
		}
	}
	snprintf(err, errlen, "%s: no netlink acknowledgement", what);
out:
	close(fd);
	return rc;
}

/* link_up - set IFF_UP on an interface */
static int
link_up(const char *ifname, char *err, size_t errlen)
{
	struct ifreq ifr;
	int fd, rc = -1;

	if ((fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) == -1) {
		snprintf(err, errlen, "%s: SIOCGIFFLAGS: %s", ifname,
		    strerror(errno));
		goto out;
	}
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) == -1) {
		snprintf(err, errlen, "%s: SIOCSIFFLAGS: %s", ifname,
		    strerror(errno));
		goto out;
	}
	rc = 0;
out:
	close(fd);
	return rc;
}

/* parse_ip - an IPv4 or IPv6 literal into buf; returns the family or -1 */
static int
parse_ip(const char *s, unsigned char *buf)
{
	if (inet_pton(AF_INET, s, buf) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, s, buf) == 1)
		return AF_INET6;
	return -1;
}

/* addr_add - put a host address (/32 or /128) on an interface; one that
 * is already there is fine */
static int
addr_add(const char *ifname, const char *addr, char *err, size_t errlen)
{
	struct nlreq r;
	unsigned char a[16];
	unsigned idx = if_nametoindex(ifname);
	int af = parse_ip(addr, a);
	size_t alen = af == AF_INET6 ? 16 : 4;

	if (af == -1) {
		snprintf(err, errlen, "%s: not an IP address", addr);
		return -1;
	}
	if (idx == 0) {
		snprintf(err, errlen, "%s: no such interface", ifname);
		return -1;
	}
	memset(&r, 0, sizeof(r));
	r.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
	r.nh.nlmsg_type = RTM_NEWADDR;
	r.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE |
	    NLM_F_EXCL;
	r.u.ifa.ifa_family = (unsigned char)af;
	r.u.ifa.ifa_prefixlen = (unsigned char)(alen * 8);
	r.u.ifa.ifa_flags = af == AF_INET6 ? IFA_F_NODAD : 0;
	r.u.ifa.ifa_scope = RT_SCOPE_UNIVERSE;
	r.u.ifa.ifa_index = idx;
	add_attr(&r, IFA_LOCAL, a, alen);
	add_attr(&r, IFA_ADDRESS, a, alen);
	return nl_talk(&r, "add address", err, errlen);
}

/* route_add - route an IPv4 or IPv6 prefix out of an interface */
static int
route_add(const char *ifname, const char *prefix, char *err, size_t errlen)
{
	struct nlreq r;
	struct cidr c;
	unsigned idx = if_nametoindex(ifname);
	uint32_t oif;

	if (addr_parse_cidr(prefix, &c, err, errlen) == -1)
		return -1;
	if (idx == 0) {
		snprintf(err, errlen, "%s: no such interface", ifname);
		return -1;
	}
	oif = idx;
	memset(&r, 0, sizeof(r));
	r.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
	r.nh.nlmsg_type = RTM_NEWROUTE;
	r.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE |
	    NLM_F_REPLACE;
	r.u.rt.rtm_family = (unsigned char)c.family;
	r.u.rt.rtm_dst_len = (unsigned char)c.plen;
	r.u.rt.rtm_table = RT_TABLE_MAIN;
	r.u.rt.rtm_protocol = RTPROT_STATIC;
	r.u.rt.rtm_scope = RT_SCOPE_LINK;
	r.u.rt.rtm_type = RTN_UNICAST;
	add_attr(&r, RTA_DST, c.addr, c.family == AF_INET6 ? 16 : 4);
	add_attr(&r, RTA_OIF, &oif, sizeof(oif));
	return nl_talk(&r, "add route", err, errlen);
}

/* tun_open - create (or attach to) a TUN device; returns its fd */
static int
tun_open(const char *name, char *err, size_t errlen)
{
	struct ifreq ifr;
	int fd;

	if ((fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC)) ==
	    -1) {
		snprintf(err, errlen, "/dev/net/tun: %s", strerror(errno));
		return -1;
	}
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) == -1) {
		snprintf(err, errlen, "%s: TUNSETIFF: %s", name,
		    strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* netns_parse_mode - "new" (make a namespace) or "here" (use this one) */
int
netns_parse_mode(const char *s, int *new_ns)
{
	if (strcmp(s, "new") == 0)
		*new_ns = 1;
	else if (strcmp(s, "here") == 0)
		*new_ns = 0;
	else
		return -1;
	return 0;
}

/* netns_write_proc - write a short string to a /proc file */
int
netns_write_proc(const char *path, const char *s, char *err, size_t errlen)
{
	size_t	n = strlen(s);
	int	fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd == -1 || write(fd, s, n) != (ssize_t)n) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/*
 * userns_enter - as a normal user: a new user namespace that maps only our
 * own uid and gid (so helpers keep running as us, not as a fake root), and
 * a new network namespace owned by it.  Until the next execve() this
 * process holds every capability there, enough to build the network;
 * ports below 1024 are opened to everyone in that namespace alone, so the
 * daemon (port 25) and dnsmasq (port 53) need no capability.
 */
static int
userns_enter(char *err, size_t errlen)
{
	char	map[64];
	uid_t	uid = geteuid();
	gid_t	gid = getegid();

	if (unshare(CLONE_NEWUSER | CLONE_NEWNET) == -1) {
		snprintf(err, errlen, "unshare(CLONE_NEWUSER|CLONE_NEWNET): %s "
		    "(unprivileged user namespaces are not allowed here; run "
		    "as root)", strerror(errno));
		return -1;
	}
	if (netns_write_proc("/proc/self/setgroups", "deny", err, errlen) == -1)
		return -1;
	snprintf(map, sizeof(map), "%lu %lu 1", (unsigned long)uid,
	    (unsigned long)uid);
	if (netns_write_proc("/proc/self/uid_map", map, err, errlen) == -1)
		return -1;
	snprintf(map, sizeof(map), "%lu %lu 1", (unsigned long)gid,
	    (unsigned long)gid);
	if (netns_write_proc("/proc/self/gid_map", map, err, errlen) == -1)
		return -1;
	return netns_write_proc("/proc/sys/net/ipv4/ip_unprivileged_port_start",
	    "0", err, errlen);
}

/* netns_setup - build the private network; *tunfd gets the TUN fd */
int
netns_setup(const struct netns_conf *conf, int *tunfd, char *err,
    size_t errlen)
{
	int fd;

	if (conf->new_ns && geteuid() != 0) {
		if (userns_enter(err, errlen) == -1)
			return -1;
	} else if (conf->new_ns && unshare(CLONE_NEWNET) == -1) {
		snprintf(err, errlen, "unshare(CLONE_NEWNET): %s (run as "
		    "root, or as a normal user where user namespaces are allowed)",
		    strerror(errno));
		return -1;
	}
	if (netns_is_initial(conf->tun_name)) {
		snprintf(err, errlen, "refusing to set up routes in what may "
		    "be the host's network namespace (pid 1's, or one with "
		    "interfaces besides lo): use --netns new or run under "
		    "ip netns exec in a fresh namespace");
		return -1;
	}
	if (link_up("lo", err, errlen) == -1)
		return -1;
	if (conf->daemon_addr != NULL &&
	    addr_add("lo", conf->daemon_addr, err, errlen) == -1)
		return -1;
	if (conf->daemon_addr6 != NULL &&
	    addr_add("lo", conf->daemon_addr6, err, errlen) == -1)
		return -1;
	if ((fd = tun_open(conf->tun_name, err, errlen)) == -1)
		return -1;
	if (link_up(conf->tun_name, err, errlen) == -1 ||
	    (conf->route4 != NULL &&
	    route_add(conf->tun_name, conf->route4, err, errlen) == -1) ||
	    (conf->route6 != NULL &&
	    route_add(conf->tun_name, conf->route6, err, errlen) == -1)) {
		close(fd);
		return -1;
	}
	*tunfd = fd;
	return 0;
}
