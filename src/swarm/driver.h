/*
 * driver.h - mailshaper-swarm run: a scenario through the real daemon
 *
 * The driver builds the private network (swarm/netns.h), starts the
 * counting backend, rbldnsd, dnsmasq and mailshaper inside it, runs the
 * scenario's populations over the swarm's own TCP (swarm/utcp.h) with one
 * SMTP client engine per session (swarm/smtpc.h), and reports one row per
 * population from what the senders saw, what the backend counted and what
 * the daemon logged.  See doc/internals/driver.md.
 */
#ifndef MS_SWARM_DRIVER_H
#define MS_SWARM_DRIVER_H

int	run_main(int argc, char **argv);

#endif
