/*
 * persona.h - SYN personalities: p0f signatures the swarm's TCP can send
 *
 * A personality is one concrete p0f 3 signature (no wildcards) plus what
 * p0f cannot say: how the IP ID moves and how fast the timestamp clock
 * ticks.  data/personas.conf holds them; see doc/internals/swarm-tcp.md.
 */
#ifndef MS_SWARM_PERSONA_H
#define MS_SWARM_PERSONA_H

#include <stddef.h>
#include <stdint.h>

#include "fp/syn.h"

#define PERSONA_IPID_ZERO	0	/* IP ID always 0 */
#define PERSONA_IPID_INC	1	/* one counter per stack, +1 a packet */
#define PERSONA_IPID_RANDOM	2	/* a fresh random ID on every packet */

#define PERSONA_NAME_MAX	32
#define PERSONA_LABEL_MAX	96

struct persona {
	char	name[PERSONA_NAME_MAX];		/* "winxp" */
	char	p0f_label[PERSONA_LABEL_MAX];	/* p0f 3.09b's "os =" */
	char	our_label[PERSONA_LABEL_MAX];	/* mailshaper fingerprint's os */
	char	sig[160];			/* the signature as written */
	int	ver;			/* 4, 6, or 0 = either */
	uint8_t	ttl;			/* initial TTL */
	uint16_t mss;			/* MSS option value */
	uint16_t win;			/* SYN window, unscaled */
	uint8_t	wscale;			/* window scale (if ws in layout) */
	uint8_t	layout[FP_MAX_OPT];	/* option kinds, in order */
	uint8_t	opt_cnt;		/* entries in layout[] */
	uint8_t	eol_pad;		/* zero bytes after EOL (eol+N) */
	uint32_t quirks;		/* FP_Q_* bits to reproduce */
	int	ipid;			/* PERSONA_IPID_* */
	unsigned ts_hz;			/* timestamp clock, ticks a second */
	int	has_ts, has_ws, has_sok, has_mss; /* 1 = option in layout */
};

struct persona_set {
	struct persona	*v;		/* owned array */
	size_t		n;
};

int	persona_load(const char *path, struct persona_set *set, char *err,
	    size_t errlen);
int	persona_parse_buf(const char *name, const char *buf, size_t len,
	    struct persona_set *set, char *err, size_t errlen);
void	persona_set_free(struct persona_set *set);
const struct persona *persona_find(const struct persona_set *set,
	    const char *name);
int	persona_tcp_options(const struct persona *p, uint32_t tsval,
	    unsigned char *out, size_t outlen);
const char *persona_default_path(void);

#endif
