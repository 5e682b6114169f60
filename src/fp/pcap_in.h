/*
 * pcap_in.h - read IP packets out of pcap/pcapng files or a live interface
 */
#ifndef MS_FP_PCAP_IN_H
#define MS_FP_PCAP_IN_H

#include <stddef.h>
#include <stdint.h>

struct fp_pcap;

struct fp_pcap_stats {
	uint64_t	frames;		/* records read */
	uint64_t	not_ip;		/* frames without an IPv4/IPv6 payload */
	uint64_t	bad_caplen;	/* records with caplen > len or 0 */
};

struct fp_pcap	*fp_pcap_open_file(const char *path, const char *filter,
		    char *err, size_t errlen);
struct fp_pcap	*fp_pcap_open_live(const char *iface, const char *filter,
		    char *err, size_t errlen);
int	fp_pcap_next(struct fp_pcap *p, const unsigned char **ip,
	    size_t *iplen, char *err, size_t errlen);
void	fp_pcap_break(struct fp_pcap *p);
int	fp_pcap_progress(struct fp_pcap *p, double *frac);
const struct fp_pcap_stats *fp_pcap_stats(const struct fp_pcap *p);
int	fp_pcap_datalink(const struct fp_pcap *p);
void	fp_pcap_close(struct fp_pcap *p);
int	fp_link_strip(int dlt, const unsigned char *frame, size_t caplen,
	    size_t *off);

#endif
