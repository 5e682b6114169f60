/*
 * syn.c - parse the IP + TCP headers of a SYN into p0f v3 fields
 *
 * Exports fp_syn_parse(), which reads an IPv4 or IPv6 packet (as returned by
 * getsockopt(TCP_SAVED_SYN) or cut from a pcap frame) and fills a struct
 * fp_syn with everything a p0f v3 signature looks at: TTL, IP option length,
 * MSS, window, window scale, the option layout, the quirks and the payload
 * class.  The quirk and option rules follow p0f 3.09b's parse_packet() so
 * that our raw signatures render byte for byte like p0f's.
 *
 * Differences from p0f, all on input p0f refuses: IPv6 extension headers are
 * walked (at most FP_MAX_EXT of them), and a packet whose IP total length
 * promises more bytes than were captured is accepted as long as the IP and
 * TCP headers are all there (the payload class then comes from the declared
 * length, and syn->truncated is set).  TCP_SAVED_SYN returns headers only.
 *
 * Memory: nothing is allocated; the caller owns buf and syn.  Every read is
 * bounds-checked against len.  It is an error to pass buf == NULL with a
 * non-zero len.
 */
#include <stdio.h>
#include <string.h>

#include "fp/syn.h"

const char *const fp_quirk_names[FP_Q_COUNT] = {
	"df", "id+", "id-", "ecn", "0+", "flow", "seq-", "ack+", "ack-",
	"uptr+", "urgf+", "pushf+", "ts1-", "ts2+", "opt+", "exws", "bad"
};

/* rd16 - read a big-endian 16-bit value */
static uint16_t
rd16(const unsigned char *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

/* rd32 - read a big-endian 32-bit value */
static uint32_t
rd32(const unsigned char *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	    ((uint32_t)p[2] << 8) | p[3];
}

/* fail - fill the error buffer and return -1 */
static int
fail(char *err, size_t errlen, const char *msg)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s", msg);
	return -1;
}

/* parse_options - walk the TCP options exactly as p0f does */
static void
parse_options(const unsigned char *p, const unsigned char *end,
    struct fp_syn *s)
{
	while (p < end && s->opt_cnt < FP_MAX_OPT) {
		unsigned char kind = *p++;
		size_t left;

		s->layout[s->opt_cnt++] = kind;
		left = (size_t)(end - p);	/* bytes after the kind byte */

		switch (kind) {
		case FP_OPT_EOL:
			s->eol_pad = (uint8_t)left;
			/* p0f stops at the first non-zero byte; one in the
			 * very last position goes unnoticed, as in p0f */
			while (p < end && *p++ == 0)
				;
			if (p != end) {
				s->quirks |= FP_Q_OPT_EOL_NZ;
				p = end;
			}
			break;
		case FP_OPT_NOP:
			break;
		case FP_OPT_MSS:
			if (left < 3)
				goto bad;
			if (p[0] != 4)
				s->quirks |= FP_Q_OPT_BAD;
			s->mss = rd16(p + 1);
			p += 3;
			break;
		case FP_OPT_WS:
			if (left < 2)
				goto bad;
			if (p[0] != 3)
				s->quirks |= FP_Q_OPT_BAD;
			s->wscale = p[1];
			if (s->wscale > 14)
				s->quirks |= FP_Q_EXWS;
			p += 2;
			break;
		case FP_OPT_SOK:
			if (left < 1)
				goto bad;
			if (p[0] != 2)
				s->quirks |= FP_Q_OPT_BAD;
			p += 1;
			break;
		case FP_OPT_SACK:
			if (left < 1 || p[0] < 10 || p[0] > 34)
				goto bad;
			if ((size_t)p[0] - 1 > left)
				goto bad;
			p += p[0] - 1;
			break;
		case FP_OPT_TS:
			if (left < 9)
				goto bad;
			if (p[0] != 10)
				s->quirks |= FP_Q_OPT_BAD;
			s->ts1 = rd32(p + 1);
			if (s->ts1 == 0)
				s->quirks |= FP_Q_ZERO_TS1;
			if ((s->flags & (FP_TH_SYN | FP_TH_ACK | FP_TH_FIN |
			    FP_TH_RST)) == FP_TH_SYN && rd32(p + 5) != 0)
				s->quirks |= FP_Q_NZ_TS2;
			p += 9;
			break;
		default:
			if (left < 1 || p[0] < 2 || p[0] > 40)
				goto bad;
			if ((size_t)p[0] - 1 > left)
				goto bad;
			p += p[0] - 1;
			break;
		}
	}
	if (p == end)
		return;
bad:
	s->quirks |= FP_Q_OPT_BAD;
}

/* parse_ipv4 - IPv4 header; sets *off to the TCP header and *iplen */
static int
parse_ipv4(const unsigned char *b, size_t len, struct fp_syn *s,
    size_t *off, size_t *iplen, char *err, size_t errlen)
{
	size_t hl, tot;
	uint16_t fo;

	if (len < 20)
		return fail(err, errlen, "truncated IPv4 header");
	hl = (size_t)(b[0] & 0x0f) * 4;
	if (hl < 20)
		return fail(err, errlen, "bogus IPv4 header length");
	if (hl > len)
		return fail(err, errlen, "truncated IPv4 options");
	if (b[9] != 6)
		return fail(err, errlen, "not TCP");
	fo = rd16(b + 6);
	if (fo & ~(0x4000 | 0x8000))
		return fail(err, errlen, "IPv4 fragment");
	tot = rd16(b + 2);
	if (tot < hl + 20)
		return fail(err, errlen, "IPv4 total length too short for TCP");

	s->ver = 4;
	s->olen = (uint8_t)(hl - 20);
	memcpy(s->src, b + 12, 4);
	memcpy(s->dst, b + 16, 4);
	s->tos = b[1] >> 2;
	s->ttl = b[8];
	if (b[1] & 0x03)
		s->quirks |= FP_Q_ECN;
	if (fo & 0x8000)
		s->quirks |= FP_Q_NZ_MBZ;
	if (fo & 0x4000) {
		s->quirks |= FP_Q_DF;
		if (rd16(b + 4) != 0)
			s->quirks |= FP_Q_NZ_ID;
	} else if (rd16(b + 4) == 0)
		s->quirks |= FP_Q_ZERO_ID;
	*off = hl;
	*iplen = tot;
	return 0;
}

/* parse_ipv6 - IPv6 header and extension chain; sets *off and *iplen */
static int
parse_ipv6(const unsigned char *b, size_t len, struct fp_syn *s,
    size_t *off, size_t *iplen, char *err, size_t errlen)
{
	uint32_t vt;
	size_t tot, o, lim;
	unsigned nh;

	if (len < 40)
		return fail(err, errlen, "truncated IPv6 header");
	vt = rd32(b);
	tot = (size_t)rd16(b + 4) + 40;
	if (tot == 40)
		return fail(err, errlen, "IPv6 payload length zero (jumbogram?)");
	lim = tot < len ? tot : len;
	s->ver = 6;
	s->olen = 0;
	memcpy(s->src, b + 8, 16);
	memcpy(s->dst, b + 24, 16);
	s->tos = (vt >> 22) & 0x3f;
	s->ttl = b[7];
	if (vt & 0xfffff)
		s->quirks |= FP_Q_FLOW;
	if ((vt >> 20) & 0x03)
		s->quirks |= FP_Q_ECN;

	nh = b[6];
	o = 40;
	while (nh != 6) {
		size_t hlen;

		if (s->n_ext >= FP_MAX_EXT)
			return fail(err, errlen,
			    "IPv6 extension header chain too long");
		switch (nh) {
		case 0:		/* hop-by-hop */
		case 43:	/* routing */
		case 60:	/* destination options */
		case 135:	/* mobility */
		case 139:	/* HIP */
		case 140:	/* shim6 */
			if (o + 8 > lim)
				return fail(err, errlen,
				    "truncated IPv6 extension header");
			hlen = ((size_t)b[o + 1] + 1) * 8;
			break;
		case 44:	/* fragment */
			if (o + 8 > lim)
				return fail(err, errlen,
				    "truncated IPv6 fragment header");
			if ((rd16(b + o + 2) & 0xfff9) != 0)
				return fail(err, errlen, "IPv6 fragment");
			hlen = 8;
			break;
		case 51:	/* authentication header */
			if (o + 8 > lim)
				return fail(err, errlen,
				    "truncated IPv6 AH header");
			hlen = ((size_t)b[o + 1] + 2) * 4;
			break;
		default:
			return fail(err, errlen, "not TCP");
		}
		if (o + hlen > lim)
			return fail(err, errlen,
			    "IPv6 extension header overruns packet");
		nh = b[o];
		o += hlen;
		s->n_ext++;
	}
	*off = o;
	*iplen = tot;
	return 0;
}

/* fp_syn_parse - parse an IP packet holding a TCP segment into *syn */
int
fp_syn_parse(const unsigned char *buf, size_t len, struct fp_syn *syn,
    char *err, size_t errlen)
{
	size_t off = 0, iplen = 0, doff, caplen;
	const unsigned char *t;

	memset(syn, 0, sizeof(*syn));
	if (buf == NULL || len == 0)
		return fail(err, errlen, "empty packet");
	switch (buf[0] >> 4) {
	case 4:
		if (parse_ipv4(buf, len, syn, &off, &iplen, err, errlen) == -1)
			return -1;
		break;
	case 6:
		if (parse_ipv6(buf, len, syn, &off, &iplen, err, errlen) == -1)
			return -1;
		break;
	default:
		return fail(err, errlen, "not an IPv4 or IPv6 packet");
	}
	/* Trust the IP length over trailing link padding. */
	caplen = len < iplen ? len : iplen;
	if (off + 20 > caplen)
		return fail(err, errlen, "truncated TCP header");
	t = buf + off;
	doff = (size_t)(t[12] >> 4) * 4;
	if (doff < 20)
		return fail(err, errlen, "bogus TCP data offset");
	if (off + doff > iplen)
		return fail(err, errlen, "TCP header longer than IP packet");
	if (off + doff > caplen)
		return fail(err, errlen, "truncated TCP options");

	syn->tot_hdr = (uint32_t)(off + doff);
	syn->sport = rd16(t);
	syn->dport = rd16(t + 2);
	syn->seq = rd32(t + 4);
	syn->flags = t[13];
	syn->win = rd16(t + 14);
	syn->pay_len = (uint32_t)(iplen - off - doff);
	if (len < iplen)
		syn->truncated = 1;

	if ((t[13] & 0xc0) || (t[12] & 0x01))
		syn->quirks |= FP_Q_ECN;
	if (syn->seq == 0)
		syn->quirks |= FP_Q_ZERO_SEQ;
	if (t[13] & FP_TH_ACK) {
		if (rd32(t + 8) == 0)
			syn->quirks |= FP_Q_ZERO_ACK;
	} else if ((t[8] & 1) && !(t[13] & FP_TH_RST)) {
		/* p0f 3.09b tests "RD32(ack) & !(flags & RST)": a bitwise
		 * AND with 1, i.e. the low bit of the ACK field's first
		 * byte on little-endian hosts.  We copy that so that raw
		 * signatures agree with p0f's. */
		syn->quirks |= FP_Q_NZ_ACK;
	}
	if (t[13] & FP_TH_URG)
		syn->quirks |= FP_Q_URG;
	else if (rd16(t + 18) != 0)
		syn->quirks |= FP_Q_NZ_URG;
	if (t[13] & FP_TH_PUSH)
		syn->quirks |= FP_Q_PUSH;

	parse_options(t + 20, t + doff, syn);
	return 0;
}
