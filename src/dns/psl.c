/*
 * psl.c - the Public Suffix List: organisational (registrable) domains
 *
 * What it does: loads the Public Suffix List (https://publicsuffix.org/list/)
 * into a hash set of rules and answers "what is the registrable domain of
 * this name", the public suffix plus one label.  The algorithm is the
 * list's own: a name matches a rule when the rule's labels equal the name's
 * rightmost labels, a "*" label matching any one label; an exception rule
 * ("!") wins over every other rule and its public suffix is the rule less
 * its leftmost label; otherwise the rule with the most labels prevails; no
 * match means the implicit rule "*" (the top-level label is the suffix).
 * Rules written in Unicode are stored twice, as written and in their
 * Punycode (xn--) form, so ASCII host names from DNS match them.
 *
 * Storage: one rule set, a power-of-two open-addressing table keyed by the
 * rule text without its "!" or "*." prefix, each key carrying flags
 * PSL_NORMAL ("x.y"), PSL_WILD ("*.x.y" stored under "x.y") and PSL_EXC
 * ("!x.y").  Lookups hash suffixes of the name in place: no allocation.
 *
 * Exports: psl_load(), psl_load_mem(), psl_org_domain(), psl_rules(),
 * psl_free().
 *
 * Memory: the module owns the set.  psl_load() builds a new set and swaps
 * it in only on success, so a failed reload keeps the old list.  The
 * string psl_org_domain() returns is the caller's buf.
 *
 * Fallback: when no list could be loaded (file missing or empty), the
 * registrable domain is the last two labels; this is logged once.
 * psl_org_domain() loads PSL_DEFAULT_PATH on its first call if nothing was
 * loaded before.
 *
 * It is an error to call psl_org_domain() from more than one thread, or to
 * pass a buf shorter than PSL_NAME_MAX + 1 bytes when the answer could be
 * that long (a short buf gives NULL, never a truncated name).
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns/psl.h"
#include "util/log.h"

#define PSL_NORMAL	0x01	/* "x.y" */
#define PSL_WILD	0x02	/* "*.x.y", stored under "x.y" */
#define PSL_EXC		0x04	/* "!x.y" */

#define PSL_MAX_LABELS	128	/* 253 bytes hold at most 127 labels */
#define PSL_FILE_MAX	(16 * 1024 * 1024)	/* bytes of a list file */

struct psl_slot {
	uint32_t off;		/* arena offset + 1 (0 = empty slot) */
	uint32_t hash;		/* FNV-1a of the key */
	uint16_t len;		/* key bytes */
	uint8_t	flags;		/* PSL_NORMAL | PSL_WILD | PSL_EXC */
};

struct psl_set {
	char	*arena;		/* keys, back to back, not NUL-terminated */
	size_t	alen, acap;	/* bytes used / allocated */
	struct psl_slot *slots;
	size_t	mask;		/* slots - 1 (power of two) */
	size_t	n;		/* keys stored */
	size_t	rules;		/* rules read (a Unicode rule counts once) */
};

static struct psl_set *cur;	/* NULL: fallback, last two labels */
static int tried;		/* a load was attempted (lazy load only once) */
static int warned;		/* fallback already logged */
static char why[256];		/* why the fallback is in force */

/* psl_hash - FNV-1a over len bytes */
static uint32_t
psl_hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

/* set_find - the slot holding key, or the empty slot where it would go */
static struct psl_slot *
set_find(const struct psl_set *set, const char *key, size_t len,
    uint32_t h)
{
	struct psl_slot *sl;
	size_t i;

	for (i = h & set->mask;; i = (i + 1) & set->mask) {
		sl = &set->slots[i];
		if (sl->off == 0)
			return sl;
		if (sl->hash == h && sl->len == len &&
		    memcmp(set->arena + sl->off - 1, key, len) == 0)
			return sl;
	}
}

/* set_flags - the flags of key, 0 when absent */
static int
set_flags(const struct psl_set *set, const char *key, size_t len)
{
	if (set == NULL || set->n == 0)
		return 0;
	return set_find(set, key, len, psl_hash(key, len))->flags;
}

/* set_grow - double the table; 0 or -1 */
static int
set_grow(struct psl_set *set)
{
	struct psl_slot *old = set->slots, *sl;
	size_t oldn = set->slots ? set->mask + 1 : 0, newn, i;

	newn = oldn ? oldn * 2 : 1024;
	if ((set->slots = calloc(newn, sizeof(*sl))) == NULL) {
		set->slots = old;
		return -1;
	}
	set->mask = newn - 1;
	for (i = 0; i < oldn; i++) {
		if (old[i].off == 0)
			continue;
		sl = set_find(set, set->arena + old[i].off - 1, old[i].len,
		    old[i].hash);
		*sl = old[i];
	}
	free(old);
	return 0;
}

/* set_add - add flag to key (inserting it); 0 or -1 on memory */
static int
set_add(struct psl_set *set, const char *key, size_t len, int flag)
{
	struct psl_slot *sl;
	uint32_t h;
	char *na;
	size_t nc;

	if (set->slots == NULL || (set->n + 1) * 2 > set->mask + 1)
		if (set_grow(set) < 0)
			return -1;
	h = psl_hash(key, len);
	sl = set_find(set, key, len, h);
	if (sl->off == 0) {
		if (set->alen + len > set->acap) {
			nc = set->acap ? set->acap * 2 : 65536;
			while (nc < set->alen + len)
				nc *= 2;
			if ((na = realloc(set->arena, nc)) == NULL)
				return -1;
			set->arena = na;
			set->acap = nc;
		}
		memcpy(set->arena + set->alen, key, len);
		sl->off = (uint32_t)set->alen + 1;
		sl->hash = h;
		sl->len = (uint16_t)len;
		set->alen += len;
		set->n++;
	}
	sl->flags |= flag;
	return 0;
}

/* set_free - free a set and everything in it */
static void
set_free(struct psl_set *set)
{
	if (set == NULL)
		return;
	free(set->arena);
	free(set->slots);
	free(set);
}

/* puny_digit - the Punycode digit for d (0..35) */
static char
puny_digit(uint32_t d)
{
	return d < 26 ? (char)('a' + d) : (char)('0' + d - 26);
}

/* puny_adapt - RFC 3492 section 6.1 bias adaptation */
static uint32_t
puny_adapt(uint32_t delta, uint32_t npoints, int first)
{
	uint32_t k = 0;

	delta = first ? delta / 700 : delta / 2;
	delta += delta / npoints;
	while (delta > ((36 - 1) * 26) / 2) {
		delta /= 36 - 1;
		k += 36;
	}
	return k + (36 * delta) / (delta + 38);
}

/* utf8_decode - code points of s[0..len); their number or -1 if invalid */
static int
utf8_decode(const char *s, size_t len, uint32_t *cp, int max)
{
	const unsigned char *p = (const unsigned char *)s, *e = p + len;
	uint32_t c;
	int n = 0, more;

	while (p < e) {
		if (n == max)
			return -1;
		c = *p++;
		if (c < 0x80)
			more = 0;
		else if ((c & 0xe0) == 0xc0) {
			c &= 0x1f;
			more = 1;
		} else if ((c & 0xf0) == 0xe0) {
			c &= 0x0f;
			more = 2;
		} else if ((c & 0xf8) == 0xf0) {
			c &= 0x07;
			more = 3;
		} else
			return -1;
		while (more-- > 0) {
			if (p == e || (*p & 0xc0) != 0x80)
				return -1;
			c = (c << 6) | (*p++ & 0x3f);
		}
		if (c > 0x10ffff)
			return -1;
		cp[n++] = c;
	}
	return n;
}

/* puny_label - append label s[0..len) in ACE form to out; 0 or -1 */
static int
puny_label(const char *s, size_t len, char *out, size_t *olen, size_t cap)
{
	uint32_t cp[64], n = 128, delta = 0, bias = 72, m, q, t, k, h, b;
	int ncp, i, ascii = 1;
	size_t o = *olen;

#define PUT(ch) do { if (o + 1 >= cap) return -1; out[o++] = (ch); } while (0)
	for (i = 0; i < (int)len; i++)
		if ((unsigned char)s[i] >= 0x80)
			ascii = 0;
	if (ascii) {
		for (i = 0; i < (int)len; i++)
			PUT(s[i]);
		*olen = o;
		return 0;
	}
	if ((ncp = utf8_decode(s, len, cp, 64)) < 0)
		return -1;
	PUT('x'); PUT('n'); PUT('-'); PUT('-');
	for (i = 0, b = 0; i < ncp; i++)
		if (cp[i] < 0x80) {
			PUT((char)tolower((int)cp[i]));
			b++;
		}
	if (b > 0)
		PUT('-');
	for (h = b; h < (uint32_t)ncp; delta++, n++) {
		for (i = 0, m = UINT32_MAX; i < ncp; i++)
			if (cp[i] >= n && cp[i] < m)
				m = cp[i];
		if ((m - n) > (UINT32_MAX - delta) / (h + 1))
			return -1;
		delta += (m - n) * (h + 1);
		n = m;
		for (i = 0; i < ncp; i++) {
			if (cp[i] < n && ++delta == 0)
				return -1;
			if (cp[i] != n)
				continue;
			for (q = delta, k = 36;; k += 36) {
				t = k <= bias ? 1 : k >= bias + 26 ? 26 : k - bias;
				if (q < t)
					break;
				PUT(puny_digit(t + (q - t) % (36 - t)));
				q = (q - t) / (36 - t);
			}
			PUT(puny_digit(q));
			bias = puny_adapt(delta, h + 1, h == b);
			delta = 0;
			h++;
		}
	}
#undef PUT
	*olen = o;
	return 0;
}

/* rule_ace - the rule r[0..len) with every Unicode label in ACE form */
static int
rule_ace(const char *r, size_t len, char *out, size_t cap, size_t *olen)
{
	size_t o = 0, i = 0, j;

	while (i <= len) {
		for (j = i; j < len && r[j] != '.'; j++)
			;
		if (puny_label(r + i, j - i, out, &o, cap) < 0)
			return -1;
		if (j < len) {
			if (o + 1 >= cap)
				return -1;
			out[o++] = '.';
		}
		i = j + 1;
	}
	*olen = o;
	return 0;
}

/* add_rule - parse one rule token into set; 1 added, 0 skipped, -1 memory */
static int
add_rule(struct psl_set *set, const char *tok, size_t len)
{
	char key[PSL_NAME_MAX + 1], ace[PSL_NAME_MAX + 1];
	size_t i, alen;
	int flag = PSL_NORMAL, nonascii = 0;

	if (len > 0 && tok[0] == '!') {
		flag = PSL_EXC;
		tok++;
		len--;
	} else if (len > 1 && tok[0] == '*' && tok[1] == '.') {
		flag = PSL_WILD;
		tok += 2;
		len -= 2;
	}
	if (len > 0 && tok[len - 1] == '.')
		len--;
	if (len == 0 || len > PSL_NAME_MAX || tok[0] == '.')
		return 0;
	for (i = 0; i < len; i++) {
		if (tok[i] == '*' || tok[i] == '!' ||
		    (tok[i] == '.' && tok[i + 1] == '.'))
			return 0;	/* only a leading "*." is defined */
		if ((unsigned char)tok[i] >= 0x80)
			nonascii = 1;
		key[i] = (char)tolower((unsigned char)tok[i]);
	}
	if (set_add(set, key, len, flag) < 0)
		return -1;
	if (nonascii && rule_ace(key, len, ace, sizeof(ace), &alen) == 0 &&
	    set_add(set, ace, alen, flag) < 0)
		return -1;
	return 1;
}

/* psl_load_mem - load a list from text[0..len); 0 or -1 and err */
int
psl_load_mem(const char *text, size_t len, char *err, size_t errlen)
{
	struct psl_set *set;
	const char *p = text, *e = text + len, *t;
	int r;

	tried = 1;
	if ((set = calloc(1, sizeof(*set))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	while (p < e) {
		while (p < e && (*p == ' ' || *p == '\t' || *p == '\r'))
			p++;
		for (t = p; t < e && *t != '\n' && *t != ' ' && *t != '\t' &&
		    *t != '\r'; t++)
			;
		if (t > p && !(t - p >= 2 && p[0] == '/' && p[1] == '/')) {
			if ((r = add_rule(set, p, (size_t)(t - p))) < 0) {
				set_free(set);
				snprintf(err, errlen, "out of memory");
				return -1;
			}
			set->rules += (size_t)r;
		}
		while (t < e && *t != '\n')
			t++;
		p = t + 1;
	}
	if (set->rules == 0) {
		set_free(set);
		snprintf(err, errlen, "no rules in the list");
		return -1;
	}
	set_free(cur);
	cur = set;
	warned = 0;
	return 0;
}

/* psl_load - load the list file at path (NULL: PSL_DEFAULT_PATH) */
int
psl_load(const char *path, char *err, size_t errlen)
{
	char e2[128], *buf = NULL, *nb;
	size_t len = 0, cap = 0, n;
	FILE *fp;
	int r;

	tried = 1;
	if (path == NULL || *path == '\0')
		path = PSL_DEFAULT_PATH;
	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		snprintf(why, sizeof(why), "%s", err);
		return -1;
	}
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 262144;
			if (cap > PSL_FILE_MAX || (nb = realloc(buf, cap)) == NULL) {
				snprintf(err, errlen, "%s: too large or out "
				    "of memory", path);
				goto fail;
			}
			buf = nb;
		}
		if ((n = fread(buf + len, 1, cap - len, fp)) == 0)
			break;
		len += n;
	}
	if (ferror(fp)) {
		snprintf(err, errlen, "%s: read error", path);
		goto fail;
	}
	fclose(fp);
	r = psl_load_mem(buf, len, e2, sizeof(e2));
	free(buf);
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", path, e2);
		if (cur == NULL)
			snprintf(why, sizeof(why), "%s", err);
		return -1;
	}
	log_debug("psl: %zu rules from %s", cur->rules, path);
	return 0;
fail:
	fclose(fp);
	free(buf);
	if (cur == NULL)
		snprintf(why, sizeof(why), "%s", err);
	return -1;
}

/* psl_rules - rules in the loaded list (0 = fallback) */
size_t
psl_rules(void)
{
	return cur ? cur->rules : 0;
}

/* psl_free - drop the list; the next psl_org_domain() loads it again */
void
psl_free(void)
{
	set_free(cur);
	cur = NULL;
	tried = 0;
	warned = 0;
	why[0] = '\0';
}

/* psl_org_domain - the registrable domain of host into buf, or NULL */
const char *
psl_org_domain(const char *host, char *buf, size_t len)
{
	char name[PSL_NAME_MAX + 2], err[256];
	int start[PSL_MAX_LABELS], n = 0, i, flags, ps = 0, exc = -1, llen = 0;
	size_t hl, k;
	unsigned char c;

	if (host == NULL || buf == NULL)
		return NULL;
	if (!tried && psl_load(NULL, err, sizeof(err)) < 0)
		snprintf(why, sizeof(why), "%s", err);
	if (cur == NULL && !warned) {
		log_warnx("psl: no Public Suffix List (%s); organisational "
		    "domains are the last two labels", why[0] ? why : "none");
		warned = 1;
	}
	hl = strlen(host);
	if (hl > 0 && host[hl - 1] == '.')
		hl--;
	if (hl == 0 || hl > PSL_NAME_MAX)
		return NULL;
	for (k = 0; k < hl; k++) {
		c = (unsigned char)host[k];
		if (c == '.') {
			if (llen == 0)
				return NULL;	/* empty label */
			llen = 0;
		} else {
			if (llen == 0) {
				if (n == PSL_MAX_LABELS)
					return NULL;
				start[n++] = (int)k;
			}
			if (++llen > 63)
				return NULL;
			if (!(isalnum(c) || c == '-' || c == '_' || c >= 0x80))
				return NULL;
		}
		name[k] = (char)tolower(c);
	}
	if (llen == 0)
		return NULL;
	name[hl] = '\0';
	for (i = 0; i < n; i++) {
		flags = set_flags(cur, name + start[i], hl - start[i]);
		if ((flags & PSL_EXC) && exc < 0)
			exc = n - i - 1;
		if ((flags & PSL_NORMAL) && n - i > ps)
			ps = n - i;
		if (i + 1 < n && n - i > ps &&
		    (set_flags(cur, name + start[i + 1], hl - start[i + 1]) &
		    PSL_WILD))
			ps = n - i;
	}
	if (exc >= 0)
		ps = exc;
	else if (ps == 0)
		ps = 1;			/* the implicit rule "*" */
	if (ps >= n)
		return NULL;		/* a public suffix itself */
	k = hl - (size_t)start[n - ps - 1];
	if (k + 1 > len)
		return NULL;
	memcpy(buf, name + start[n - ps - 1], k + 1);
	return buf;
}
