/*
 * persona.c - load SYN personalities and lay out their TCP options
 *
 * Exports persona_load() / persona_parse_buf() (a personas.conf file into a
 * struct persona_set), persona_find(), persona_tcp_options() (the SYN's
 * option bytes) and persona_default_path().  The set owns its array;
 * persona_set_free() releases it.  The signature syntax is p0f 3's,
 * parsed by sigdb_parse_sig(), with every field made concrete: it is an
 * error to give a wildcard, a randomised TTL, IP options, a payload, or
 * option bytes that are not a multiple of four.  Errors read
 * "file:line: reason".
 *
 * File format (one block per personality, "name" starts a block):
 *   name  = winxp
 *   p0f   = Windows XP              ; what p0f 3.09b prints as "os ="
 *   ours  = Windows XP              ; what mailshaper fingerprint prints
 *   ipid  = inc                     ; zero | inc | random (default: quirks)
 *   ts_hz = 1000                    ; timestamp clock (only with ts)
 *   sig   = 4:128:0:1460:65535,0:mss,nop,nop,sok:df,id+:0
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fp/sigdb.h"
#include "swarm/persona.h"
#include "util/str.h"

#ifndef MS_DATADIR
#define MS_DATADIR "/usr/local/share/mailshaper"
#endif

#define PERSONA_FILE_MAX	(1 << 20)	/* largest file we read */

struct pstate {			/* parser state for one file */
	const char	*file;
	unsigned	line;
	struct persona_set *set;
	struct persona	*cur;	/* block being filled, NULL before the first */
	unsigned	cur_line;	/* line of its "name =" */
	int		have_sig, have_ipid;
	char		*err;
	size_t		errlen;
};

/* perr - format "file:line: reason" into the caller's buffer */
static int
perr(struct pstate *ps, unsigned line, const char *fmt, const char *arg)
{
	char why[256];

	snprintf(why, sizeof(why), fmt, arg ? arg : "");
	snprintf(ps->err, ps->errlen, "%s:%u: %s", ps->file, line, why);
	return -1;
}

/* opt_bytes - bytes one layout entry takes on the wire */
static size_t
opt_bytes(uint8_t kind)
{
	switch (kind) {
	case FP_OPT_EOL: case FP_OPT_NOP: return 1;
	case FP_OPT_MSS: return 4;
	case FP_OPT_WS: return 3;
	case FP_OPT_SOK: return 2;
	case FP_OPT_TS: return 10;
	default: return 0;
	}
}

/* set_sig - parse a sig = line into the current personality */
static int
set_sig(struct pstate *ps, const char *val)
{
	struct persona *p = ps->cur;
	struct sigdb_sig sig;
	char why[160];
	size_t i, total = 0;
	const uint32_t supported = FP_Q_DF | FP_Q_NZ_ID | FP_Q_ZERO_ID |
	    FP_Q_ECN | FP_Q_NZ_MBZ | FP_Q_ZERO_SEQ | FP_Q_NZ_ACK |
	    FP_Q_NZ_URG | FP_Q_URG | FP_Q_PUSH | FP_Q_ZERO_TS1 |
	    FP_Q_NZ_TS2 | FP_Q_OPT_EOL_NZ | FP_Q_EXWS | FP_Q_FLOW;

	if (sigdb_parse_sig(val, &sig, why, sizeof(why)) == -1)
		return perr(ps, ps->line, "%s", why);
	if (sig.bad_ttl)
		return perr(ps, ps->line, "a randomised TTL (ttl-) cannot be "
		    "sent", NULL);
	if (sig.olen != 0)
		return perr(ps, ps->line, "IP options are not supported", NULL);
	if (sig.mss < 0)
		return perr(ps, ps->line, "the MSS must be a number", NULL);
	if (sig.pclass == 1)
		return perr(ps, ps->line, "a SYN payload is not supported",
		    NULL);
	if (sig.quirks & ~supported)
		return perr(ps, ps->line, "unsupported quirk (bad)", NULL);
	switch (sig.win_type) {
	case SIGDB_WIN_NORMAL: p->win = (uint16_t)sig.win; break;
	case SIGDB_WIN_MSS:
		if ((long)sig.win * sig.mss > 65535)
			return perr(ps, ps->line, "mss*N window exceeds 65535",
			    NULL);
		p->win = (uint16_t)(sig.win * sig.mss);
		break;
	case SIGDB_WIN_MTU:
		if ((long)sig.win * (sig.mss + 40) > 65535)
			return perr(ps, ps->line, "mtu*N window exceeds 65535",
			    NULL);
		p->win = (uint16_t)(sig.win * (sig.mss + 40));
		break;
	default:
		return perr(ps, ps->line, "the window must be a number, "
		    "mss*N or mtu*N", NULL);
	}
	p->has_ts = p->has_ws = p->has_sok = p->has_mss = 0;
	for (i = 0; i < sig.opt_cnt; i++) {
		uint8_t k = sig.layout[i];

		if (opt_bytes(k) == 0) {
			snprintf(why, sizeof(why), "option kind %u cannot be "
			    "sent", k);
			return perr(ps, ps->line, "%s", why);
		}
		total += opt_bytes(k);
		if (k == FP_OPT_EOL)
			total += sig.eol_pad;
		p->has_ts |= k == FP_OPT_TS;
		p->has_ws |= k == FP_OPT_WS;
		p->has_sok |= k == FP_OPT_SOK;
		p->has_mss |= k == FP_OPT_MSS;
	}
	if (total % 4 != 0 || total > 40) {
		snprintf(why, sizeof(why), "the options take %zu bytes: not "
		    "a multiple of 4 up to 40 (pad with nop or eol+N)", total);
		return perr(ps, ps->line, "%s", why);
	}
	if (p->has_ws && sig.wscale < 0)
		return perr(ps, ps->line, "the window scale must be a number",
		    NULL);
	if ((sig.quirks & FP_Q_EXWS) ? sig.wscale <= 14 : sig.wscale > 14)
		return perr(ps, ps->line, "scale > 14 needs the exws quirk, "
		    "and exws needs a scale > 14", NULL);
	if ((sig.quirks & (FP_Q_ZERO_TS1 | FP_Q_NZ_TS2)) && !p->has_ts)
		return perr(ps, ps->line, "ts1- and ts2+ need a ts option",
		    NULL);
	if ((sig.quirks & FP_Q_OPT_EOL_NZ) &&
	    (sig.eol_pad == 0 || sig.layout[sig.opt_cnt - 1] != FP_OPT_EOL))
		return perr(ps, ps->line, "opt+ needs eol+N with N > 0", NULL);
	if ((sig.quirks & FP_Q_NZ_ID) && !(sig.quirks & FP_Q_DF))
		return perr(ps, ps->line, "id+ is only seen with df", NULL);
	if ((sig.quirks & FP_Q_ZERO_ID) && (sig.quirks & FP_Q_DF))
		return perr(ps, ps->line, "id- is only seen without df", NULL);
	if (!p->has_mss && sig.mss != 0)
		return perr(ps, ps->line, "an MSS without an mss option", NULL);
	p->ver = sig.ver < 0 ? 0 : sig.ver;
	p->ttl = (uint8_t)sig.ttl;
	p->mss = (uint16_t)sig.mss;
	p->wscale = sig.wscale < 0 ? 0 : (uint8_t)sig.wscale;
	memcpy(p->layout, sig.layout, sizeof(p->layout));
	p->opt_cnt = sig.opt_cnt;
	p->eol_pad = sig.eol_pad;
	p->quirks = sig.quirks;
	snprintf(p->sig, sizeof(p->sig), "%s", val);
	ps->have_sig = 1;
	return 0;
}

/* finish_block - check the block just ended is complete and consistent */
static int
finish_block(struct pstate *ps)
{
	struct persona *p = ps->cur;
	int need_zero;

	if (p == NULL)
		return 0;
	if (!ps->have_sig)
		return perr(ps, ps->cur_line, "personality '%s' has no sig",
		    p->name);
	if (p->p0f_label[0] == '\0' || p->our_label[0] == '\0')
		return perr(ps, ps->cur_line, "personality '%s' needs both "
		    "p0f and ours labels", p->name);
	need_zero = (p->quirks & FP_Q_ZERO_ID) ||
	    ((p->quirks & FP_Q_DF) && !(p->quirks & FP_Q_NZ_ID));
	if (!ps->have_ipid)
		p->ipid = need_zero ? PERSONA_IPID_ZERO : PERSONA_IPID_INC;
	else if (p->ver != 6 && need_zero != (p->ipid == PERSONA_IPID_ZERO))
		return perr(ps, ps->cur_line, "personality '%s': ipid "
		    "contradicts the df/id+/id- quirks", p->name);
	if (p->has_ts && p->ts_hz == 0)
		p->ts_hz = 1000;
	return 0;
}

/* new_block - start a personality named val */
static int
new_block(struct pstate *ps, const char *val)
{
	struct persona_set *set = ps->set;
	struct persona *nv;
	size_t i;

	if (finish_block(ps) == -1)
		return -1;
	if (*val == '\0' || strlen(val) >= PERSONA_NAME_MAX)
		return perr(ps, ps->line, "bad personality name", NULL);
	for (i = 0; val[i] != '\0'; i++)
		if (!isalnum((unsigned char)val[i]) && val[i] != '-' &&
		    val[i] != '_' && val[i] != '.')
			return perr(ps, ps->line, "personality names use "
			    "letters, digits, '-', '_' and '.'", NULL);
	if (persona_find(set, val) != NULL)
		return perr(ps, ps->line, "personality '%s' defined twice",
		    val);
	nv = realloc(set->v, (set->n + 1) * sizeof(*set->v));
	if (nv == NULL)
		return perr(ps, ps->line, "out of memory", NULL);
	set->v = nv;
	ps->cur = &set->v[set->n++];
	memset(ps->cur, 0, sizeof(*ps->cur));
	snprintf(ps->cur->name, sizeof(ps->cur->name), "%s", val);
	ps->cur_line = ps->line;
	ps->have_sig = ps->have_ipid = 0;
	return 0;
}

/* set_label - copy a label value, checking its length */
static int
set_label(struct pstate *ps, char *dst, const char *val)
{
	if (*val == '\0' || strlen(val) >= PERSONA_LABEL_MAX)
		return perr(ps, ps->line, "label empty or too long", NULL);
	snprintf(dst, PERSONA_LABEL_MAX, "%s", val);
	return 0;
}

/* parse_line - one "key = value" line */
static int
parse_line(struct pstate *ps, char *line)
{
	char *eq, *key, *val, *end;
	long v;

	if ((eq = strchr(line, '=')) == NULL)
		return perr(ps, ps->line, "expected 'key = value'", NULL);
	*eq = '\0';
	key = str_trim(line);
	val = str_trim(eq + 1);
	if (strcmp(key, "name") == 0)
		return new_block(ps, val);
	if (ps->cur == NULL)
		return perr(ps, ps->line, "'%s' before the first name =", key);
	if (strcmp(key, "p0f") == 0)
		return set_label(ps, ps->cur->p0f_label, val);
	if (strcmp(key, "ours") == 0)
		return set_label(ps, ps->cur->our_label, val);
	if (strcmp(key, "sig") == 0) {
		if (ps->have_sig)
			return perr(ps, ps->line, "a personality has one sig",
			    NULL);
		return set_sig(ps, val);
	}
	if (strcmp(key, "ipid") == 0) {
		if (strcmp(val, "zero") == 0)
			ps->cur->ipid = PERSONA_IPID_ZERO;
		else if (strcmp(val, "inc") == 0)
			ps->cur->ipid = PERSONA_IPID_INC;
		else if (strcmp(val, "random") == 0)
			ps->cur->ipid = PERSONA_IPID_RANDOM;
		else
			return perr(ps, ps->line, "ipid is zero, inc or random",
			    NULL);
		ps->have_ipid = 1;
		return 0;
	}
	if (strcmp(key, "ts_hz") == 0) {
		errno = 0;
		v = strtol(val, &end, 10);
		if (errno != 0 || *end != '\0' || v < 1 || v > 1000000)
			return perr(ps, ps->line, "ts_hz is 1 to 1000000", NULL);
		ps->cur->ts_hz = (unsigned)v;
		return 0;
	}
	return perr(ps, ps->line, "unknown key '%s'", key);
}

/* persona_parse_buf - parse a whole file's text into set (appends) */
int
persona_parse_buf(const char *name, const char *buf, size_t len,
    struct persona_set *set, char *err, size_t errlen)
{
	struct pstate ps;
	char line[1024];
	size_t i = 0, n0 = set->n;

	memset(&ps, 0, sizeof(ps));
	ps.file = name;
	ps.set = set;
	ps.err = err;
	ps.errlen = errlen;
	while (i < len) {
		size_t j = i, l;
		char *s, *c;

		while (j < len && buf[j] != '\n')
			j++;
		ps.line++;
		l = j - i;
		if (l >= sizeof(line)) {
			perr(&ps, ps.line, "line too long", NULL);
			goto fail;
		}
		memcpy(line, buf + i, l);
		line[l] = '\0';
		i = j + 1;
		if (memchr(line, '\0', l) != NULL) {
			perr(&ps, ps.line, "NUL byte in line", NULL);
			goto fail;
		}
		if ((c = strchr(line, ';')) != NULL)
			*c = '\0';
		s = str_trim(line);
		if (*s == '\0')
			continue;
		if (parse_line(&ps, s) == -1)
			goto fail;
	}
	if (finish_block(&ps) == -1)
		goto fail;
	if (set->n == n0) {
		snprintf(err, errlen, "%s: no personality defined", name);
		goto fail;
	}
	return 0;
fail:
	set->n = n0;
	return -1;
}

/* persona_load - read and parse a personas file */
int
persona_load(const char *path, struct persona_set *set, char *err,
    size_t errlen)
{
	FILE *f;
	char *buf;
	size_t n;
	int rc;

	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if ((buf = malloc(PERSONA_FILE_MAX)) == NULL) {
		fclose(f);
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	n = fread(buf, 1, PERSONA_FILE_MAX, f);
	if (ferror(f) || n == PERSONA_FILE_MAX) {
		snprintf(err, errlen, "%s: %s", path, ferror(f) ?
		    "read error" : "file too large");
		fclose(f);
		free(buf);
		return -1;
	}
	fclose(f);
	rc = persona_parse_buf(path, buf, n, set, err, errlen);
	free(buf);
	return rc;
}

/* persona_set_free - release the array; the set is empty afterwards */
void
persona_set_free(struct persona_set *set)
{
	free(set->v);
	set->v = NULL;
	set->n = 0;
}

/* persona_find - the personality called name, or NULL */
const struct persona *
persona_find(const struct persona_set *set, const char *name)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		if (strcmp(set->v[i].name, name) == 0)
			return &set->v[i];
	return NULL;
}

/* persona_tcp_options - write the SYN's options; returns bytes or -1 */
int
persona_tcp_options(const struct persona *p, uint32_t tsval,
    unsigned char *out, size_t outlen)
{
	size_t i, o = 0, k;

	for (i = 0; i < p->opt_cnt; i++) {
		size_t need = opt_bytes(p->layout[i]);

		if (p->layout[i] == FP_OPT_EOL)
			need += p->eol_pad;
		if (o + need > outlen)
			return -1;
		switch (p->layout[i]) {
		case FP_OPT_EOL:
			out[o++] = 0;
			for (k = 0; k < p->eol_pad; k++)	/* opt+: 0x01 */
				out[o++] = (p->quirks & FP_Q_OPT_EOL_NZ) &&
				    k == 0 ? 1 : 0;
			break;
		case FP_OPT_NOP:
			out[o++] = 1;
			break;
		case FP_OPT_MSS:
			out[o++] = 2; out[o++] = 4;
			out[o++] = p->mss >> 8; out[o++] = p->mss & 0xff;
			break;
		case FP_OPT_WS:
			out[o++] = 3; out[o++] = 3; out[o++] = p->wscale;
			break;
		case FP_OPT_SOK:
			out[o++] = 4; out[o++] = 2;
			break;
		case FP_OPT_TS: {
			uint32_t t1 = (p->quirks & FP_Q_ZERO_TS1) ? 0 : tsval;
			uint32_t t2 = (p->quirks & FP_Q_NZ_TS2) ? 1 : 0;

			if (t1 == 0 && !(p->quirks & FP_Q_ZERO_TS1))
				t1 = 1;
			out[o++] = 8; out[o++] = 10;
			out[o++] = t1 >> 24; out[o++] = t1 >> 16;
			out[o++] = t1 >> 8; out[o++] = t1;
			out[o++] = t2 >> 24; out[o++] = t2 >> 16;
			out[o++] = t2 >> 8; out[o++] = t2;
			break;
		}
		default:
			return -1;
		}
	}
	return (int)o;
}

/* persona_default_path - data/personas.conf beside the binary, or datadir */
const char *
persona_default_path(void)
{
	static char buf[PATH_MAX + 64];
	char exe[PATH_MAX], *slash;
	ssize_t r;

	r = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (r > 0) {
		exe[r] = '\0';
		if ((slash = strrchr(exe, '/')) != NULL)
			*slash = '\0';
		snprintf(buf, sizeof(buf), "%s/../data/personas.conf", exe);
		if (access(buf, R_OK) == 0)
			return buf;
		snprintf(buf, sizeof(buf), "%s/../../data/personas.conf", exe);
		if (access(buf, R_OK) == 0)
			return buf;
	}
	return MS_DATADIR "/personas.conf";
}
