/*
 * syn.h - parse the IP + TCP headers of a SYN into p0f v3 fields
 */
#ifndef MS_FP_SYN_H
#define MS_FP_SYN_H

#include <stddef.h>
#include <stdint.h>

#define FP_MAX_OPT	24	/* p0f's MAX_TCP_OPT: options kept in a layout */
#define FP_MAX_EXT	16	/* longest IPv6 extension chain we walk */
#define FP_MAX_DIST	35	/* p0f's MAX_DIST: farthest believable hop count */

/* TCP option kinds that have names in a signature */
#define FP_OPT_EOL	0
#define FP_OPT_NOP	1
#define FP_OPT_MSS	2
#define FP_OPT_WS	3
#define FP_OPT_SOK	4
#define FP_OPT_SACK	5
#define FP_OPT_TS	8

/* Quirks, in p0f's rendering order (see fp_quirk_names[]) */
#define FP_Q_DF		0x00001	/* df: IPv4 don't fragment set */
#define FP_Q_NZ_ID	0x00002	/* id+: DF set but IPID non-zero */
#define FP_Q_ZERO_ID	0x00004	/* id-: DF clear but IPID zero */
#define FP_Q_ECN	0x00008	/* ecn: explicit congestion notification */
#define FP_Q_NZ_MBZ	0x00010	/* 0+: IPv4 "must be zero" bit set */
#define FP_Q_FLOW	0x00020	/* flow: IPv6 flow label non-zero */
#define FP_Q_ZERO_SEQ	0x00040	/* seq-: sequence number zero */
#define FP_Q_NZ_ACK	0x00080	/* ack+: ACK number set without ACK flag */
#define FP_Q_ZERO_ACK	0x00100	/* ack-: ACK flag with zero ACK number */
#define FP_Q_NZ_URG	0x00200	/* uptr+: urgent pointer without URG */
#define FP_Q_URG	0x00400	/* urgf+: URG flag */
#define FP_Q_PUSH	0x00800	/* pushf+: PUSH flag */
#define FP_Q_ZERO_TS1	0x01000	/* ts1-: own timestamp zero */
#define FP_Q_NZ_TS2	0x02000	/* ts2+: peer timestamp set on a SYN */
#define FP_Q_OPT_EOL_NZ	0x04000	/* opt+: non-zero bytes after EOL */
#define FP_Q_EXWS	0x08000	/* exws: window scale > 14 */
#define FP_Q_OPT_BAD	0x10000	/* bad: malformed options */
#define FP_Q_COUNT	17

extern const char *const fp_quirk_names[FP_Q_COUNT];

/* TCP flags */
#define FP_TH_FIN	0x01
#define FP_TH_SYN	0x02
#define FP_TH_RST	0x04
#define FP_TH_PUSH	0x08
#define FP_TH_ACK	0x10
#define FP_TH_URG	0x20

struct fp_syn {
	int		ver;		/* 4 or 6 */
	unsigned char	src[16];	/* source address (4 bytes used for v4) */
	unsigned char	dst[16];	/* destination address */
	uint16_t	sport;		/* source port, host order */
	uint16_t	dport;		/* destination port, host order */
	uint8_t		ttl;		/* observed TTL / hop limit */
	uint8_t		tos;		/* DSCP (TOS >> 2) */
	uint8_t		flags;		/* TCP flags byte */
	uint8_t		olen;		/* IPv4 option bytes (0 for IPv6) */
	uint16_t	mss;		/* MSS option value (0 = none) */
	uint16_t	win;		/* TCP window, unscaled */
	uint8_t		wscale;		/* window scale option (0 = none) */
	uint32_t	ts1;		/* own timestamp (0 = none or zero) */
	uint32_t	seq;		/* sequence number */
	uint32_t	quirks;		/* FP_Q_* bits */
	uint8_t		layout[FP_MAX_OPT]; /* option kinds, in order */
	uint8_t		opt_cnt;	/* entries used in layout[] */
	uint8_t		eol_pad;	/* bytes after EOL */
	uint32_t	pay_len;	/* TCP payload bytes as declared by IP */
	uint32_t	tot_hdr;	/* IP + extension + TCP header bytes */
	uint8_t		n_ext;		/* IPv6 extension headers skipped */
	uint8_t		truncated;	/* payload declared but not captured */
};

int	fp_syn_parse(const unsigned char *buf, size_t len, struct fp_syn *syn,
	    char *err, size_t errlen);

#endif
