/*
 * fp_cli.c - `mailshaper fingerprint`: p0f-compatible SYN fingerprinting
 *
 *   mailshaper fingerprint [-r FILE | -i IFACE] [--db FILE]... [--json]
 *                          [--filter BPF] [-v]
 *
 * Exports fp_cli_main().  Reads a capture (pcap or pcapng) or sniffs an
 * interface, and prints one line per client SYN (SYN set; ACK, FIN, RST
 * clear), text or JSON (see doc/man/mailshaper-fingerprint.1).  Unlike p0f,
 * every SYN is printed, retransmissions included.  Packets that fail to
 * parse are skipped and counted; the counts go to stderr at the end.
 * Exit status: 0 on success, 1 on a fatal error (unreadable or garbage
 * capture, no signature file), 2 on bad usage.
 *
 * Memory: everything is released before returning; the database is loaded
 * once.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fp/fp.h"
#include "fp/fp_cli.h"
#include "fp/pcap_in.h"
#include "fp/sigdb.h"
#include "fp/syn.h"
#include "util/log.h"

#define CLI_MAX_DB	32

static struct fp_pcap *volatile cli_pcap;

/* usage - print the synopsis */
static void
usage(FILE *f)
{
	fprintf(f, "usage: mailshaper fingerprint [-r FILE | -i IFACE] "
	    "[--db FILE]... [--json] [--filter BPF] [-v]\n");
}

/* on_signal - stop a live capture cleanly */
static void
on_signal(int sig)
{
	(void)sig;
	if (cli_pcap != NULL)
		fp_pcap_break(cli_pcap);
}

/* Output line builder: printf is too slow for 150k lines a second. */
struct line {
	char	buf[1024];
	size_t	o;
};

/* ln_str - append a string (silently truncated) */
static void
ln_str(struct line *l, const char *s)
{
	size_t n = strlen(s);

	if (n > sizeof(l->buf) - 1 - l->o)
		n = sizeof(l->buf) - 1 - l->o;
	memcpy(l->buf + l->o, s, n);
	l->o += n;
}

/* ln_int - append a decimal number */
static void
ln_int(struct line *l, long v)
{
	char tmp[24];
	int n = 0;

	if (v < 0) {
		ln_str(l, "-");
		v = -v;
	}
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n > 0 && l->o < sizeof(l->buf) - 1)
		l->buf[l->o++] = tmp[--n];
}

/* ln_json - append a JSON string */
static void
ln_json(struct line *l, const char *s)
{
	char tmp[512];

	if (fp_json_str(tmp, sizeof(tmp), s) < 0)
		ln_str(l, "\"\"");
	else
		ln_str(l, tmp);
}

/* fmt_addr - address text */
static void
fmt_addr(const struct fp_syn *s, const unsigned char *a, char *buf,
    size_t len)
{
	if (s->ver == 4 && len >= 16) {
		size_t o = 0;
		int i;

		for (i = 0; i < 4; i++) {
			unsigned v = a[i];

			if (i)
				buf[o++] = '.';
			if (v >= 100)
				buf[o++] = (char)('0' + v / 100);
			if (v >= 10)
				buf[o++] = (char)('0' + v / 10 % 10);
			buf[o++] = (char)('0' + v % 10);
		}
		buf[o] = '\0';
		return;
	}
	if (inet_ntop(AF_INET6, a, buf, (socklen_t)len) == NULL)
		snprintf(buf, len, "?");
}

/* print_text - src:port -> dst:port  os  raw_sig  dist  match */
static void
print_text(const struct fp_syn *s, const struct fp_result *r)
{
	char src[64], dst[64];
	struct line l;

	l.o = 0;
	fmt_addr(s, s->src, src, sizeof(src));
	fmt_addr(s, s->dst, dst, sizeof(dst));
	ln_str(&l, s->ver == 6 ? "[" : "");
	ln_str(&l, src);
	ln_str(&l, s->ver == 6 ? "]:" : ":");
	ln_int(&l, s->sport);
	ln_str(&l, s->ver == 6 ? " -> [" : " -> ");
	ln_str(&l, dst);
	ln_str(&l, s->ver == 6 ? "]:" : ":");
	ln_int(&l, s->dport);
	ln_str(&l, "  ");
	ln_str(&l, r->os);
	ln_str(&l, "  ");
	ln_str(&l, r->raw_sig);
	ln_str(&l, "  ");
	ln_int(&l, r->dist);
	ln_str(&l, "  ");
	ln_str(&l, r->match);
	l.buf[l.o++] = '\n';
	fwrite(l.buf, 1, l.o, stdout);
}

/* print_json - one JSON object per line */
static void
print_json(const struct fp_syn *s, const struct fp_result *r)
{
	char src[64], dst[64];
	struct line l;

	l.o = 0;
	fmt_addr(s, s->src, src, sizeof(src));
	fmt_addr(s, s->dst, dst, sizeof(dst));
	ln_str(&l, "{\"src\":\"");
	ln_str(&l, src);
	ln_str(&l, "\",\"sport\":");
	ln_int(&l, s->sport);
	ln_str(&l, ",\"dst\":\"");
	ln_str(&l, dst);
	ln_str(&l, "\",\"dport\":");
	ln_int(&l, s->dport);
	ln_str(&l, ",\"raw_sig\":");
	ln_json(&l, r->raw_sig);
	ln_str(&l, ",\"key\":");
	ln_json(&l, r->key);
	ln_str(&l, ",\"key_hash\":\"");
	ln_str(&l, r->key_hash);
	ln_str(&l, "\",\"os\":");
	ln_json(&l, r->os);
	ln_str(&l, ",\"match\":\"");
	ln_str(&l, r->match);
	ln_str(&l, "\",\"dist\":");
	ln_int(&l, r->dist);
	ln_str(&l, ",\"link\":");
	ln_json(&l, r->link);
	ln_str(&l, "}");
	l.buf[l.o++] = '\n';
	fwrite(l.buf, 1, l.o, stdout);
}

/* progress - a one-line bar on stderr */
static void
progress(struct fp_pcap *p, unsigned long long syns, int done)
{
	double frac = 0;
	int i, w = 40, fill;

	if (fp_pcap_progress(p, &frac) == -1)
		return;
	if (done)
		frac = 1;
	if (frac > 1)
		frac = 1;
	fill = (int)(frac * w);
	fputc('\r', stderr);
	fputc('[', stderr);
	for (i = 0; i < w; i++)
		fputc(i < fill ? '#' : '.', stderr);
	fprintf(stderr, "] %3d%%  %llu SYNs", (int)(frac * 100), syns);
	if (done)
		fputc('\n', stderr);
	fflush(stderr);
}

/* fp_cli_main - entry point of the fingerprint subcommand */
int
fp_cli_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ "filter", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *dbs[CLI_MAX_DB], *rfile = NULL, *iface = NULL;
	const char *filter = NULL;
	size_t ndb = 0;
	int json = 0, c, rc = 0, tty = isatty(STDERR_FILENO);
	char err[512], perr[128];
	struct sigdb *db;
	struct fp_pcap *p;
	const unsigned char *ip;
	size_t iplen;
	unsigned long long syns = 0, bad = 0, other = 0, n = 0;
	static char outbuf[1 << 16];

	optind = 1;
	while ((c = getopt_long(argc, argv, "r:i:hv", opts, NULL)) != -1) {
		switch (c) {
		case 'r': rfile = optarg; break;
		case 'i': iface = optarg; break;
		case 'd':
			if (ndb == CLI_MAX_DB) {
				fprintf(stderr, "mailshaper fingerprint: "
				    "too many --db\n");
				return 2;
			}
			dbs[ndb++] = optarg;
			break;
		case 'j': json = 1; break;
		case 'f': filter = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'v': log_set_verbose(1); break;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || (rfile == NULL) == (iface == NULL)) {
		usage(stderr);
		return 2;
	}

	if (ndb > 0)
		db = sigdb_load_files(dbs, ndb, err, sizeof(err));
	else
		db = sigdb_load_default(err, sizeof(err));
	if (db == NULL) {
		fprintf(stderr, "mailshaper fingerprint: %s\n", err);
		return 1;
	}
	if (rfile != NULL)
		p = fp_pcap_open_file(rfile, filter, err, sizeof(err));
	else
		p = fp_pcap_open_live(iface, filter, err, sizeof(err));
	if (p == NULL) {
		fprintf(stderr, "mailshaper fingerprint: %s\n", err);
		sigdb_free(db);
		return 1;
	}
	setvbuf(stdout, outbuf, iface ? _IOLBF : _IOFBF, sizeof(outbuf));
	if (iface != NULL) {
		cli_pcap = p;
		signal(SIGINT, on_signal);
		signal(SIGTERM, on_signal);
	}

	for (;;) {
		struct fp_syn s;
		struct fp_result r;
		int got = fp_pcap_next(p, &ip, &iplen, err, sizeof(err));

		if (got == 0)
			break;
		if (got < 0) {
			fflush(stdout);
			if (tty && rfile)
				fputc('\n', stderr);
			fprintf(stderr, "mailshaper fingerprint: %s: %s\n",
			    rfile ? rfile : iface, err);
			rc = 1;
			break;
		}
		if (tty && rfile && (++n & 0x3fff) == 0)
			progress(p, syns, 0);
		if (fp_syn_parse(ip, iplen, &s, perr, sizeof(perr)) == -1) {
			/* non-TCP IP and fragments are not errors */
			log_debug("skipped packet: %s", perr);
			if (strcmp(perr, "not TCP") == 0 ||
			    strstr(perr, "fragment") != NULL)
				other++;
			else
				bad++;
			continue;
		}
		if ((s.flags & (FP_TH_SYN | FP_TH_ACK | FP_TH_FIN |
		    FP_TH_RST)) != FP_TH_SYN)
			continue;
		syns++;
		fp_result_from_syn(db, &s, &r);
		if (json)
			print_json(&s, &r);
		else
			print_text(&s, &r);
	}
	fflush(stdout);
	if (tty && rfile && rc == 0)
		progress(p, syns, 1);
	{
		const struct fp_pcap_stats *st = fp_pcap_stats(p);

		if (tty || bad || st->bad_caplen)
			fprintf(stderr, "mailshaper fingerprint: %llu frames, "
			    "%llu client SYNs, %llu malformed packets skipped, "
			    "%llu bad caplen, %llu non-IP, %llu other IP\n",
			    (unsigned long long)st->frames, syns, bad,
			    (unsigned long long)st->bad_caplen,
			    (unsigned long long)st->not_ip, other);
	}
	cli_pcap = NULL;
	fp_pcap_close(p);
	sigdb_free(db);
	return rc;
}
