/*
 * pcap_in.c - libpcap input for `mailshaper fingerprint`
 *
 * Exports fp_pcap_open_file() (pcap or pcapng, libpcap decides),
 * fp_pcap_open_live(), fp_pcap_next(), which hands back one IPv4 or IPv6
 * packet at a time with the link header removed, fp_pcap_close(), and
 * fp_link_strip(), the link-layer decoder on its own (for tests and fuzzing).
 *
 * Link types: Ethernet with any stack of 802.1Q / 802.1ad / QinQ tags,
 * Linux cooked SLL and SLL2, raw IP (DLT_RAW, LINKTYPE_IPV4/IPV6), BSD
 * loopback (DLT_NULL, DLT_LOOP).  Frames of other kinds, and frames without
 * an IP payload, are skipped and counted; a record whose caplen is larger
 * than its wire length or zero is skipped and counted as bad.  We never
 * read past caplen.
 *
 * Memory: the packet pointer from fp_pcap_next() is libpcap's and is valid
 * only until the next call.  The struct fp_pcap owns the pcap_t.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <pcap/pcap.h>

#include "fp/pcap_in.h"

#ifndef DLT_LINUX_SLL2
#define DLT_LINUX_SLL2	276
#endif
#ifndef DLT_IPV4
#define DLT_IPV4	228
#endif
#ifndef DLT_IPV6
#define DLT_IPV6	229
#endif
#define LINKTYPE_RAW_101 101

#define FP_MAX_VLAN	8	/* VLAN tags we peel before giving up */

struct fp_pcap {
	pcap_t			*pc;
	int			dlt;
	int			live;
	off_t			size;	/* file size, 0 if unknown */
	struct fp_pcap_stats	st;
};

/* ether_payload - follow an ethertype (and VLAN tags) to IP */
static int
ether_payload(const unsigned char *f, size_t caplen, size_t off,
    unsigned type, size_t *out)
{
	int tags = 0;

	for (;;) {
		if (type == 0x0800 || type == 0x86dd) {
			*out = off;
			return 0;
		}
		if (type != 0x8100 && type != 0x88a8 && type != 0x9100)
			return -1;
		if (++tags > FP_MAX_VLAN || off + 4 > caplen)
			return -1;
		type = ((unsigned)f[off + 2] << 8) | f[off + 3];
		off += 4;
	}
}

/* fp_link_strip - offset of the IP header in a frame; -1 if none */
int
fp_link_strip(int dlt, const unsigned char *f, size_t caplen, size_t *off)
{
	size_t o;

	switch (dlt) {
	case DLT_EN10MB:
		if (caplen < 14)
			return -1;
		if (ether_payload(f, caplen, 14,
		    ((unsigned)f[12] << 8) | f[13], &o) == -1)
			return -1;
		break;
	case DLT_LINUX_SLL:
		if (caplen < 16)
			return -1;
		if (ether_payload(f, caplen, 16,
		    ((unsigned)f[14] << 8) | f[15], &o) == -1)
			return -1;
		break;
	case DLT_LINUX_SLL2:
		if (caplen < 20)
			return -1;
		if (ether_payload(f, caplen, 20,
		    ((unsigned)f[0] << 8) | f[1], &o) == -1)
			return -1;
		break;
	case DLT_RAW:
	case LINKTYPE_RAW_101:
	case DLT_IPV4:
	case DLT_IPV6:
		o = 0;
		break;
	case DLT_NULL:
	case DLT_LOOP:
		/* The address family's byte order varies; the IP version
		 * nibble below is what we trust. */
		o = 4;
		break;
	default:
		return -1;
	}
	if (o >= caplen)
		return -1;
	if ((f[o] >> 4) != 4 && (f[o] >> 4) != 6)
		return -1;
	*off = o;
	return 0;
}

/* apply_filter - compile and install a BPF filter */
static int
apply_filter(struct fp_pcap *p, const char *filter, char *err, size_t errlen)
{
	struct bpf_program prog;

	if (filter == NULL)
		return 0;
	if (pcap_compile(p->pc, &prog, filter, 1, PCAP_NETMASK_UNKNOWN) == -1) {
		snprintf(err, errlen, "bad filter '%s': %s", filter,
		    pcap_geterr(p->pc));
		return -1;
	}
	if (pcap_setfilter(p->pc, &prog) == -1) {
		snprintf(err, errlen, "cannot set filter: %s",
		    pcap_geterr(p->pc));
		pcap_freecode(&prog);
		return -1;
	}
	pcap_freecode(&prog);
	return 0;
}

/* fp_pcap_open_file - open a pcap or pcapng file */
struct fp_pcap *
fp_pcap_open_file(const char *path, const char *filter, char *err,
    size_t errlen)
{
	char ebuf[PCAP_ERRBUF_SIZE] = "";
	struct fp_pcap *p;
	struct stat sb;

	if ((p = calloc(1, sizeof(*p))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->pc = pcap_open_offline(path, ebuf);
	if (p->pc == NULL) {
		snprintf(err, errlen, "%s: cannot read capture: %s", path, ebuf);
		free(p);
		return NULL;
	}
	if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode))
		p->size = sb.st_size;
	p->dlt = pcap_datalink(p->pc);
	if (apply_filter(p, filter, err, errlen) == -1) {
		fp_pcap_close(p);
		return NULL;
	}
	return p;
}

/* fp_pcap_open_live - capture from an interface */
struct fp_pcap *
fp_pcap_open_live(const char *iface, const char *filter, char *err,
    size_t errlen)
{
	char ebuf[PCAP_ERRBUF_SIZE] = "";
	struct fp_pcap *p;

	if ((p = calloc(1, sizeof(*p))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->live = 1;
	if ((p->pc = pcap_create(iface, ebuf)) == NULL) {
		snprintf(err, errlen, "%s: %s", iface, ebuf);
		free(p);
		return NULL;
	}
	pcap_set_snaplen(p->pc, 256);
	pcap_set_promisc(p->pc, 0);
	pcap_set_timeout(p->pc, 200);
	pcap_set_immediate_mode(p->pc, 1);
	if (pcap_activate(p->pc) < 0) {
		snprintf(err, errlen, "%s: %s", iface, pcap_geterr(p->pc));
		fp_pcap_close(p);
		return NULL;
	}
	p->dlt = pcap_datalink(p->pc);
	if (apply_filter(p, filter, err, errlen) == -1) {
		fp_pcap_close(p);
		return NULL;
	}
	return p;
}

/* fp_pcap_next - next IP packet: 1 = got one, 0 = end, -1 = error */
int
fp_pcap_next(struct fp_pcap *p, const unsigned char **ip, size_t *iplen,
    char *err, size_t errlen)
{
	struct pcap_pkthdr *h;
	const unsigned char *d;
	size_t off;
	int r;

	for (;;) {
		r = pcap_next_ex(p->pc, &h, &d);
		if (r == 0)		/* live timeout */
			continue;
		if (r == PCAP_ERROR_BREAK)
			return 0;
		if (r < 0) {
			snprintf(err, errlen, "%s", pcap_geterr(p->pc));
			return -1;
		}
		p->st.frames++;
		if (h->caplen == 0 || h->caplen > h->len ||
		    h->caplen > 262144) {
			p->st.bad_caplen++;
			continue;
		}
		if (fp_link_strip(p->dlt, d, h->caplen, &off) == -1) {
			p->st.not_ip++;
			continue;
		}
		*ip = d + off;
		*iplen = h->caplen - off;
		return 1;
	}
}

/* fp_pcap_break - make a blocked fp_pcap_next() return 0 (signal-safe) */
void
fp_pcap_break(struct fp_pcap *p)
{
	pcap_breakloop(p->pc);
}

/* fp_pcap_progress - fraction of the file read; -1 if unknown */
int
fp_pcap_progress(struct fp_pcap *p, double *frac)
{
	FILE *f;
	long pos;

	if (p->live || p->size <= 0 || (f = pcap_file(p->pc)) == NULL)
		return -1;
	if ((pos = ftell(f)) < 0)
		return -1;
	*frac = (double)pos / (double)p->size;
	return 0;
}

/* fp_pcap_stats - counters so far */
const struct fp_pcap_stats *
fp_pcap_stats(const struct fp_pcap *p)
{
	return &p->st;
}

/* fp_pcap_datalink - the capture's DLT */
int
fp_pcap_datalink(const struct fp_pcap *p)
{
	return p->dlt;
}

/* fp_pcap_close - close and free */
void
fp_pcap_close(struct fp_pcap *p)
{
	if (p == NULL)
		return;
	if (p->pc != NULL)
		pcap_close(p->pc);
	free(p);
}
