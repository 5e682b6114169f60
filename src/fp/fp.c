/*
 * fp.c - SYN bytes in, fingerprint out: the glue the daemon and CLI call
 *
 * Exports fp_fingerprint_syn() (parse + match + render, for the bytes of
 * getsockopt(TCP_SAVED_SYN)), fp_result_from_syn() (the same for a SYN
 * already parsed, e.g. from a pcap), fp_result_json() and fp_json_str().
 *
 * The canonical key is the raw signature with "ttl+dist" replaced by the
 * initial TTL (32, 64, 128 or 255, as p0f rounds); key_hash is its 64-bit
 * FNV-1a in 16 lower-case hex digits.  Both are stable across releases:
 * they are reputation keys.
 *
 * Memory: results are filled in caller-owned structs; result->match points
 * to a static string.  It is an error to pass a database that was not
 * returned by a sigdb_load_*() function.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fp/fp.h"
#include "fp/match.h"

/* copy_str - bounded copy that always terminates */
static void
copy_str(char *dst, size_t len, const char *src)
{
	size_t n = strlen(src);

	if (n >= len)
		n = len - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* make_key - the raw signature with "ttl+dist" replaced by the initial TTL */
static void
make_key(const char *raw, const struct fp_syn *syn, char *key, size_t len)
{
	const char *c1 = strchr(raw, ':'), *c2;
	unsigned ittl = (unsigned)(syn->ttl + fp_guess_dist(syn->ttl));
	char num[4];
	size_t o = 0, n;
	int i = 3;

	if (c1 == NULL || (c2 = strchr(c1 + 1, ':')) == NULL) {
		copy_str(key, len, "?");
		return;
	}
	num[3] = '\0';
	do {
		num[--i] = (char)('0' + ittl % 10);
		ittl /= 10;
	} while (ittl && i > 0);
	n = (size_t)(c1 - raw) + 1;		/* "4:" */
	if (n + strlen(num + i) + strlen(c2) >= len) {
		copy_str(key, len, "?");
		return;
	}
	memcpy(key, raw, n);
	o = n;
	n = strlen(num + i);
	memcpy(key + o, num + i, n);
	o += n;
	memcpy(key + o, c2, strlen(c2) + 1);
}

/* hex64 - 16 lower-case hex digits and a NUL */
static void
hex64(uint64_t v, char out[17])
{
	static const char hx[] = "0123456789abcdef";
	int i;

	for (i = 15; i >= 0; i--) {
		out[i] = hx[v & 0xf];
		v >>= 4;
	}
	out[16] = '\0';
}

/* fp_result_from_syn - match a parsed SYN and fill *out */
void
fp_result_from_syn(const struct sigdb *db, const struct fp_syn *syn,
    struct fp_result *out)
{
	struct fp_match m;
	const char *link = NULL;

	memset(out, 0, sizeof(*out));
	fp_match(db, syn, &m);
	if (fp_render_sig(syn, 0, out->raw_sig, sizeof(out->raw_sig)) < 0)
		copy_str(out->raw_sig, sizeof(out->raw_sig), "?");
	make_key(out->raw_sig, syn, out->key, sizeof(out->key));
	hex64(fp_fnv1a64(out->key), out->key_hash);
	copy_str(out->os, sizeof(out->os), m.label ? m.label->os : "???");
	out->is_app = m.label != NULL && m.label->class_id == -1;
	out->match = fp_match_kind(&m);
	out->dist = m.dist;
	if (syn->mss != 0)
		link = sigdb_mtu_link(db, syn->mss + (syn->ver == 4 ? 40 : 60));
	copy_str(out->link, sizeof(out->link), link ? link : "???");
}

/* fp_fingerprint_syn - fingerprint the IP+TCP header bytes of a SYN */
int
fp_fingerprint_syn(const struct sigdb *db, const unsigned char *hdr,
    size_t len, struct fp_result *out, char *err, size_t errlen)
{
	struct fp_syn syn;

	if (db == NULL) {
		snprintf(err, errlen, "no signature database");
		return -1;
	}
	if (fp_syn_parse(hdr, len, &syn, err, errlen) == -1)
		return -1;
	if ((syn.flags & (FP_TH_SYN | FP_TH_ACK | FP_TH_FIN | FP_TH_RST)) !=
	    FP_TH_SYN) {
		snprintf(err, errlen, "not a client SYN (flags 0x%02x)",
		    syn.flags);
		return -1;
	}
	fp_result_from_syn(db, &syn, out);
	return 0;
}

/* fp_json_str - write s as a JSON string; returns length or -1 */
int
fp_json_str(char *buf, size_t len, const char *s)
{
	size_t o = 0;

	if (len < 3)
		return -1;
	buf[o++] = '"';
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (o + 7 >= len)
			return -1;
		if (c == '"' || c == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else if (c < 0x20) {
			o += (size_t)snprintf(buf + o, len - o, "\\u%04x", c);
		} else
			buf[o++] = (char)c;
	}
	if (o + 2 > len)
		return -1;
	buf[o++] = '"';
	buf[o] = '\0';
	return (int)o;
}

/* fp_result_json - {"raw_sig":..,"key":..,...}; returns length or -1 */
int
fp_result_json(const struct fp_result *r, char *buf, size_t len)
{
	char rs[400], k[400], os[400], ln[120];
	int n;

	if (fp_json_str(rs, sizeof(rs), r->raw_sig) < 0 ||
	    fp_json_str(k, sizeof(k), r->key) < 0 ||
	    fp_json_str(os, sizeof(os), r->os) < 0 ||
	    fp_json_str(ln, sizeof(ln), r->link) < 0)
		return -1;
	n = snprintf(buf, len, "{\"raw_sig\":%s,\"key\":%s,\"key_hash\":\"%s\","
	    "\"os\":%s,\"match\":\"%s\",\"dist\":%d,\"link\":%s}", rs, k,
	    r->key_hash, os, r->match ? r->match : "none", r->dist, ln);
	if (n < 0 || (size_t)n >= len)
		return -1;
	return n;
}
