/*
 * match.c - match a parsed SYN against the signature database, p0f-style
 *
 * Exports fp_match(), which follows p0f 3.09b's tcp_find_match() to the
 * letter (doc/internals/matcher.md): among the signatures that share the
 * packet's option layout, in load order, the first exact specific (s:)
 * match wins at once; otherwise the first exact generic (g:) match;
 * otherwise the first fuzzy one (TTL out of range, or quirks that drift
 * only by df/id+ vanishing or id-/ecn appearing), unless that one is an
 * application signature.  Also fp_render_sig(), which prints a SYN the way
 * p0f's dump_sig() does (or, for the canonical key, with the initial TTL
 * instead of "ttl+dist"), fp_win_multi() (p0f's detect_win_multi()) and
 * fp_fnv1a64(), the key hash.
 *
 * Memory: nothing is allocated; the match points into the database, which
 * must outlive it.  It is an error to call fp_match() on a database that
 * has not been through sigdb_finish().
 */
#include <string.h>

#include "fp/match.h"

/* fp_guess_dist - hops from the TTL to the next of 32, 64, 128, 255 */
int
fp_guess_dist(int ttl)
{
	if (ttl <= 32)
		return 32 - ttl;
	if (ttl <= 64)
		return 64 - ttl;
	if (ttl <= 128)
		return 128 - ttl;
	return 255 - ttl;
}

/* fp_win_multi - window as a multiple of MSS or MTU; -1 if none */
int
fp_win_multi(const struct fp_syn *s, int *use_mtu)
{
	int win = s->win, mss = s->mss;
	int div[10], mtu[10], n = 0, i;

	*use_mtu = 0;
	if (win == 0 || mss < 100)
		return -1;
	div[n] = mss; mtu[n++] = 0;
	if (s->ts1) {
		div[n] = mss - 12; mtu[n++] = 0;
	}
	div[n] = 1500 - 40; mtu[n++] = 0;
	div[n] = 1500 - 40 - 12; mtu[n++] = 0;
	if (s->ver == 6) {
		div[n] = 1500 - 60; mtu[n++] = 0;
		div[n] = 1500 - 60 - 12; mtu[n++] = 0;
	}
	div[n] = mss + 40; mtu[n++] = 1;
	div[n] = mss + (int)s->tot_hdr; mtu[n++] = 1;
	if (s->ver == 6) {
		div[n] = mss + 60; mtu[n++] = 1;
	}
	div[n] = 1500; mtu[n++] = 1;
	for (i = 0; i < n; i++) {
		if (win % div[i] == 0) {
			*use_mtu = mtu[i];
			return win / div[i];
		}
	}
	return -1;
}

/* fp_match - find the best signature for s, as p0f does */
void
fp_match(const struct sigdb *db, const struct fp_syn *s, struct fp_match *m)
{
	const struct sigdb_group *gr;
	const struct sigdb_sig *fmatch = NULL, *gmatch = NULL;
	int use_mtu = 0, win_multi, pclass = s->pay_len != 0;
	size_t i;

	memset(m, 0, sizeof(*m));
	gr = sigdb_find_group(db, s->layout, s->opt_cnt);
	if (gr == NULL)
		goto nomatch;
	win_multi = fp_win_multi(s, &use_mtu);

	for (i = 0; i < gr->n; i++) {
		const struct sigdb_sig *ref = &db->sigs[gr->idx[i]];
		uint32_t rq = ref->quirks;
		int fuzzy = 0;

		if (ref->ver == -1)
			rq &= s->ver == 4 ? ~(uint32_t)FP_Q_FLOW :
			    ~(uint32_t)(FP_Q_DF | FP_Q_NZ_ID | FP_Q_ZERO_ID);
		if (rq != s->quirks) {
			uint32_t deleted = (rq ^ s->quirks) & rq;
			uint32_t added = (rq ^ s->quirks) & s->quirks;

			if (fmatch != NULL ||
			    (deleted & ~(uint32_t)(FP_Q_DF | FP_Q_NZ_ID)) ||
			    (added & ~(uint32_t)(FP_Q_ZERO_ID | FP_Q_ECN)))
				continue;
			fuzzy = 1;
		}
		if (ref->eol_pad != s->eol_pad || ref->olen != s->olen)
			continue;
		if (ref->bad_ttl) {
			if (ref->ttl < s->ttl)
				continue;
		} else if (ref->ttl < s->ttl ||
		    ref->ttl - s->ttl > FP_MAX_DIST)
			fuzzy = 1;
		if (ref->mss != -1 && ref->mss != s->mss)
			continue;
		if (ref->wscale != -1 && ref->wscale != s->wscale)
			continue;
		if (ref->pclass != -1 && ref->pclass != pclass)
			continue;
		switch (ref->win_type) {
		case SIGDB_WIN_NORMAL:
			if (ref->win != s->win)
				continue;
			break;
		case SIGDB_WIN_MOD:
			if (s->win % ref->win)
				continue;
			break;
		case SIGDB_WIN_MSS:
			if (use_mtu || ref->win != win_multi)
				continue;
			break;
		case SIGDB_WIN_MTU:
			if (!use_mtu || ref->win != win_multi)
				continue;
			break;
		default:
			break;
		}
		if (!fuzzy) {
			if (!db->labels[ref->label].generic) {
				m->sig = ref;
				m->label = &db->labels[ref->label];
				m->dist = ref->ttl - s->ttl;
				return;
			}
			if (gmatch == NULL)
				gmatch = ref;
		} else if (fmatch == NULL)
			fmatch = ref;
	}
	if (gmatch != NULL) {
		m->sig = gmatch;
		m->label = &db->labels[gmatch->label];
		m->dist = gmatch->ttl - s->ttl;
		return;
	}
	/* No fuzzy matching for userland tools: p0f leaves dist at 0. */
	if (fmatch != NULL && db->labels[fmatch->label].class_id == -1)
		return;
	if (fmatch == NULL || fmatch->ttl < s->ttl ||
	    (!fmatch->bad_ttl && fmatch->ttl - s->ttl > FP_MAX_DIST))
		m->dist = fp_guess_dist(s->ttl);
	else
		m->dist = fmatch->ttl - s->ttl;
	if (fmatch != NULL) {
		m->sig = fmatch;
		m->label = &db->labels[fmatch->label];
		m->fuzzy = 1;
	}
	return;
nomatch:
	m->dist = fp_guess_dist(s->ttl);
}

/* fp_match_kind - "exact", "generic", "fuzzy", "generic_fuzzy" or "none" */
const char *
fp_match_kind(const struct fp_match *m)
{
	if (m->label == NULL)
		return "none";
	if (m->label->generic)
		return m->fuzzy ? "generic_fuzzy" : "generic";
	return m->fuzzy ? "fuzzy" : "exact";
}

/* Bounded string builder: no printf on the hot path. */
struct sbuf {
	char	*p;
	size_t	len;	/* size of p */
	size_t	o;	/* bytes written, may pass len (then truncated) */
};

/* sb_str - append a string */
static void
sb_str(struct sbuf *b, const char *s)
{
	while (*s) {
		if (b->o + 1 < b->len)
			b->p[b->o] = *s;
		b->o++;
		s++;
	}
}

/* sb_uint - append a decimal number */
static void
sb_uint(struct sbuf *b, unsigned v)
{
	char tmp[12];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n > 0) {
		if (b->o + 1 < b->len)
			b->p[b->o] = tmp[n - 1];
		b->o++;
		n--;
	}
}

/* fp_render_sig - p0f's raw_sig (key = 0) or the canonical key (key = 1) */
int
fp_render_sig(const struct fp_syn *s, int key, char *buf, size_t len)
{
	static const char *const onames[9] = {
		NULL, "nop", "mss", "ws", "sok", "sack", NULL, NULL, "ts"
	};
	struct sbuf b = { buf, len, 0 };
	int dist = fp_guess_dist(s->ttl), use_mtu, wm, i, first;

	if (len == 0)
		return -1;
	sb_uint(&b, (unsigned)s->ver);
	sb_str(&b, ":");
	if (key) {
		sb_uint(&b, (unsigned)(s->ttl + dist));
	} else {
		sb_uint(&b, s->ttl);
		sb_str(&b, "+");
		if (dist > FP_MAX_DIST)
			sb_str(&b, "?");
		else
			sb_uint(&b, (unsigned)dist);
	}
	sb_str(&b, ":");
	sb_uint(&b, s->olen);
	sb_str(&b, ":");
	sb_uint(&b, s->mss);
	sb_str(&b, ":");
	wm = fp_win_multi(s, &use_mtu);
	if (wm > 0) {
		sb_str(&b, use_mtu ? "mtu*" : "mss*");
		sb_uint(&b, (unsigned)wm);
	} else
		sb_uint(&b, s->win);
	sb_str(&b, ",");
	sb_uint(&b, s->wscale);
	sb_str(&b, ":");
	for (i = 0; i < s->opt_cnt; i++) {
		unsigned k = s->layout[i];

		if (i)
			sb_str(&b, ",");
		if (k == FP_OPT_EOL) {
			sb_str(&b, "eol+");
			sb_uint(&b, s->eol_pad);
		} else if (k < 9 && onames[k] != NULL)
			sb_str(&b, onames[k]);
		else {
			sb_str(&b, "?");
			sb_uint(&b, k);
		}
	}
	sb_str(&b, ":");
	first = 1;
	for (i = 0; i < FP_Q_COUNT; i++) {
		if (s->quirks & (1u << i)) {
			if (!first)
				sb_str(&b, ",");
			sb_str(&b, fp_quirk_names[i]);
			first = 0;
		}
	}
	sb_str(&b, s->pay_len ? ":+" : ":0");
	buf[b.o < len ? b.o : len - 1] = '\0';
	if (b.o >= len)
		return -1;
	return (int)b.o;
}

/* fp_fnv1a64 - 64-bit FNV-1a of a string */
uint64_t
fp_fnv1a64(const char *s)
{
	uint64_t h = 14695981039346656037ull;

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 1099511628211ull;
	}
	return h;
}
