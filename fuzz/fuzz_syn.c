/*
 * fuzz_syn.c - libFuzzer target: link header + SYN parser + matcher
 *
 * Input: one byte choosing the link type, then a frame.  The frame goes
 * through fp_link_strip(), fp_syn_parse(), the matcher (against
 * data/mailshaper.fp's style of database, built in), fp_render_sig() and
 * fp_result_json().  The input buffer is copied to an exact-size heap block
 * so that ASan catches any read past its end.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <pcap/pcap.h>

#include "fp/fp.h"
#include "fp/match.h"
#include "fp/pcap_in.h"
#include "fp/sigdb.h"
#include "fp/syn.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz_db[] =
	"classes = win,unix,other\n"
	"[mtu]\nlabel = Ethernet or modem\nsig = 1500\n"
	"[tcp:request]\n"
	"label = g:unix:Linux:generic\n"
	"sig = *:64:0:*:*,*:mss,sok,ts,nop,ws:df,id+:0\n"
	"label = s:unix:Linux:3.11 and newer\n"
	"sig = *:64:0:*:mss*20,7:mss,sok,ts,nop,ws:df,id+:0\n"
	"label = s:win:Windows:7 or 8\n"
	"sig = *:128:0:*:8192,8:mss,nop,ws,nop,nop,sok:df,id+:0\n"
	"label = s:unix:Tester:mtu\n"
	"sig = 4:64:0:1460:mtu*4,0:mss,eol+3:opt+:0\n"
	"label = s:unix:Tester:mod\n"
	"sig = 6:64:0:1400:%1000,0:mss,?30:flow:+\n"
	"label = s:!:NMap:SYN scan\nsys = @unix\n"
	"sig = *:64-:0:1460:1024,0:mss::0\n";

static const int dlts[] = {
	DLT_EN10MB, DLT_RAW, DLT_NULL, DLT_LOOP, DLT_LINUX_SLL, 276, 228, 229
};

/* LLVMFuzzerTestOneInput - one input */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sigdb *db;
	unsigned char *buf;
	struct fp_syn s;
	struct fp_result r;
	char err[128], json[1024];
	size_t off;

	if (db == NULL) {
		db = sigdb_new();
		db->quiet = 1;
		sigdb_parse_buf(db, "fuzz.fp", fuzz_db, sizeof(fuzz_db) - 1);
		if (sigdb_finish(db, err, sizeof(err)) == -1)
			abort();
	}
	if (size < 1)
		return 0;
	buf = malloc(size - 1 ? size - 1 : 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data + 1, size - 1);
	if (fp_link_strip(dlts[data[0] % (sizeof(dlts) / sizeof(dlts[0]))],
	    buf, size - 1, &off) == 0 &&
	    fp_syn_parse(buf + off, size - 1 - off, &s, err, sizeof(err)) == 0) {
		fp_result_from_syn(db, &s, &r);
		(void)fp_result_json(&r, json, sizeof(json));
	}
	/* the daemon's path: the bytes are the IP packet itself */
	(void)fp_fingerprint_syn(db, buf, size - 1, &r, err, sizeof(err));
	free(buf);
	return 0;
}
