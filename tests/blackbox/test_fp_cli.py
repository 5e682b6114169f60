"""`mailshaper fingerprint`: formats, link types, bad input, signature files.

Captures are written by hand (fp_helpers.write_pcap / write_pcapng) so that
link headers and bogus sizes are exactly what each case needs.
"""
import json
import re
import struct
import subprocess

import fp_helpers as h

WIN10 = "4:128:0:1460:mss*44,8:mss,nop,ws,nop,nop,sok:df,id+:0"
LINUX = "*:64:0:1460:mss*20,7:mss,sok,ts,nop,ws:df,id+:0"
LINUX6 = "6:64:0:1440:mss*20,7:mss,sok,ts,nop,ws::0"


def run(args, check=None):
    res = subprocess.run([h.binary(), "fingerprint"] + args,
                         capture_output=True, text=True, timeout=60)
    if check is not None:
        assert res.returncode == check, (res.returncode, res.stdout,
                                         res.stderr)
    return res


def p0fdb():
    h.need_p0f()
    return ["--db", h.P0F_FP]


def test_text_line_format(tmp_path):
    pcap = str(tmp_path / "a.pcap")
    h.write_pcap(pcap, h.LINKTYPE_ETHERNET, [h.ether(h.syn(LINUX, 5))])
    res = run(["-r", pcap] + p0fdb(), check=0)
    lines = res.stdout.splitlines()
    assert len(lines) == 1
    m = re.match(r"^10\.0\.0\.5:(\d+) -> 192\.0\.2\.25:25  (.+)  (\S+)  "
                 r"(\d+)  (exact|generic|fuzzy|generic_fuzzy|none)$", lines[0])
    assert m, lines[0]
    assert m.group(2) == "Linux 3.11 and newer"
    assert m.group(3) == "4:61+3:0:1460:mss*20,7:mss,sok,ts,nop,ws:df,id+:0"
    assert m.group(4) == "3"


def test_json_keys_and_key(tmp_path):
    pcap = str(tmp_path / "a.pcap")
    frames = [h.ether(h.syn(LINUX, 1, ttl_drop=3)),
              h.ether(h.syn(LINUX, 2, ttl_drop=9))]
    h.write_pcap(pcap, h.LINKTYPE_ETHERNET, frames)
    recs = h.run_fp(pcap, [h.P0F_FP] if p0fdb() else [])
    assert len(recs) == 2
    for r in recs:
        assert {"src", "sport", "dst", "dport", "raw_sig", "key", "os",
                "match", "dist", "link"} <= set(r)
        assert r["link"] == "Ethernet or modem"
        assert re.fullmatch(r"[0-9a-f]{16}", r["key_hash"])
    # one stack, two distances: two raw signatures, one key
    assert recs[0]["raw_sig"] != recs[1]["raw_sig"]
    assert recs[0]["key"] == recs[1]["key"] == \
        "4:64:0:1460:mss*20,7:mss,sok,ts,nop,ws:df,id+:0"
    assert recs[0]["key_hash"] == recs[1]["key_hash"]
    assert [r["dist"] for r in recs] == [3, 9]


def test_unknown_gets_question_marks(tmp_path):
    pcap = str(tmp_path / "a.pcap")
    h.write_pcap(pcap, h.LINKTYPE_ETHERNET,
                 [h.ether(h.syn("4:64:0:1234:777,3:mss,ws,sok,nop,nop,nop:df:0"))])
    r = h.run_fp(pcap, [h.P0F_FP] if p0fdb() else [])[0]
    assert r["os"] == "???" and r["match"] == "none"
    assert r["link"] == "???"


def test_link_types_and_pcapng(tmp_path):
    dbs = p0fdb()
    ip4, ip6 = h.syn(WIN10, 7), h.syn(LINUX6, 8)
    cases = {
        "eth": (h.LINKTYPE_ETHERNET, h.ether),
        "vlan": (h.LINKTYPE_ETHERNET, lambda ip: h.ether(ip, [(0x8100, 42)])),
        "qinq": (h.LINKTYPE_ETHERNET,
                 lambda ip: h.ether(ip, [(0x88a8, 100), (0x8100, 42)])),
        "sll": (h.LINKTYPE_LINUX_SLL, h.sll),
        "sll2": (h.LINKTYPE_LINUX_SLL2, h.sll2),
        "raw": (h.LINKTYPE_RAW, lambda ip: ip),
        "null": (h.LINKTYPE_NULL, h.null_lo),
        "loop": (h.LINKTYPE_LOOP, h.loop_lo),
    }
    for name, (lt, wrap) in cases.items():
        for fmt in ("pcap", "pcapng"):
            path = str(tmp_path / ("%s.%s" % (name, fmt)))
            writer = h.write_pcap if fmt == "pcap" else h.write_pcapng
            writer(path, lt, [wrap(ip4), wrap(ip6)])
            recs = h.run_fp(path, dbs[1:])
            assert [r["os"] for r in recs] == \
                ["Windows NT kernel", "Linux 3.11 and newer"], (name, fmt)
            assert recs[1]["src"] == "2001:db8::8"


def ipv6_with_ext(ip6, chain):
    """Insert extension headers (list of next-header codes) after the base."""
    base, tcp = ip6[:40], ip6[40:]
    ext = b""
    codes = list(chain) + [6]
    for i, code in enumerate(chain):
        nxt = codes[i + 1]
        if code == 44:
            ext += struct.pack("!BBHI", nxt, 0, 0, 0x1234)
        else:
            ext += struct.pack("!BB6s", nxt, 0, b"\x01\x04\x00\x00\x00\x00")
    plen = len(ext) + len(tcp)
    base = base[:4] + struct.pack("!HB", plen, chain[0] if chain else 6) + \
        base[7:]
    return base + ext + tcp


def test_ipv6_extension_headers(tmp_path):
    dbs = p0fdb()
    ip6 = h.syn(LINUX6, 9)
    good = ipv6_with_ext(ip6, [0, 60, 44])
    long_chain = ipv6_with_ext(ip6, [60] * 40)
    pcap = str(tmp_path / "ext.pcap")
    h.write_pcap(pcap, h.LINKTYPE_RAW, [good, long_chain])
    res = run(["-r", pcap, "--json"] + dbs, check=0)
    recs = [json.loads(x) for x in res.stdout.splitlines()]
    assert len(recs) == 1
    assert recs[0]["os"] == "Linux 3.11 and newer"
    assert "1 malformed" in res.stderr


def test_bad_packets_are_skipped_and_counted(tmp_path):
    dbs = p0fdb()
    ok = h.syn(LINUX, 3)
    ihl_lie = bytes([0x4f]) + ok[1:]                 # IHL 60 > packet
    doff_lie = bytearray(ok)
    doff_lie[20 + 12] = 0xf0                          # TCP header 60 bytes
    opt_overrun = bytearray(ok)
    opt_overrun[20 + 20] = 2                          # MSS option ...
    opt_overrun[20 + 21] = 40                         # ... of length 40
    zero_len = bytearray(ok)
    zero_len[20 + 20:20 + 22] = b"\x1e\x00"            # option 30, length 0
    frames = [h.ether(ok[:30]), h.ether(ihl_lie), h.ether(bytes(doff_lie)),
              h.ether(bytes(opt_overrun)), h.ether(bytes(zero_len)),
              (h.ether(ok), len(h.ether(ok)), 10),   # caplen > len
              b"\x00" * 3, h.ether(ok)]
    pcap = str(tmp_path / "bad.pcap")
    h.write_pcap(pcap, h.LINKTYPE_ETHERNET, frames)
    res = run(["-r", pcap, "--json"] + dbs, check=0)
    recs = [json.loads(x) for x in res.stdout.splitlines()]
    # the two with broken options still parse, flagged 'bad'
    assert len(recs) == 3
    assert [("bad" in r["raw_sig"].split(":")[6]) for r in recs] == \
        [True, True, False]
    assert "3 malformed" in res.stderr and "1 bad caplen" in res.stderr


def test_garbage_and_missing_files(tmp_path):
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"this is not a capture at all" * 10)
    res = run(["-r", str(junk)], check=1)
    assert "junk.pcap" in res.stderr and "cannot read capture" in res.stderr
    res = run(["-r", str(tmp_path / "nope.pcap")], check=1)
    assert "nope.pcap" in res.stderr
    # a capture cut in the middle of a record: what was read is printed,
    # then a clear error and exit 1
    pcap = str(tmp_path / "cut.pcap")
    h.write_pcap(pcap, h.LINKTYPE_ETHERNET, [h.ether(h.syn(LINUX, 1))] * 2)
    data = open(pcap, "rb").read()
    open(pcap, "wb").write(data[:-20])
    res = run(["-r", pcap] + p0fdb(), check=1)
    assert len(res.stdout.splitlines()) == 1
    assert "cut.pcap" in res.stderr
    # usage errors
    run([], check=2)
    run(["-r", pcap, "-i", "lo"], check=2)


def test_signature_files(tmp_path):
    bad = tmp_path / "mine.fp"
    bad.write_text(
        "classes = win,unix,other\n"
        "[tcp:request]\n"
        "label = s:unix:Testix:1.0\n"
        "sig   = *:64:0:*:mss*20,7:mss,sok,ts,nop,ws:df,id+:0\n"
        "sig   = *:64:0:*:mss*20,7:mss,sok,ts,nop,ws:df,id+:0\n"
        "sig   = 4:64:0:*:mss*20,7:mss,bogus,ws:df:0\n"
        "label = s:nope:Bad:class\n"
        "sig   = *:64:0:*:1,0:mss::0\n"
        "label = s:unix:Testix:2.0\n"
        "sig   = *:64:0:*:mss*44,7:mss,sok,ts,nop,ws:df,id+:0\n")
    pcap = str(tmp_path / "a.pcap")
    h.write_pcap(pcap, h.LINKTYPE_ETHERNET,
                 [h.ether(h.syn(LINUX, 1)),
                  h.ether(h.syn("*:64:0:1460:mss*44,7:mss,sok,ts,nop,ws:"
                                "df,id+:0", 2))])
    res = run(["-r", pcap, "--json", "--db", str(bad)], check=0)
    for ln, why in ((5, "already covered"), (6, "option"), (7, "class"),
                    (8, "rejected label")):
        assert re.search(r"mine\.fp:%d: .*%s" % (ln, why), res.stderr), \
            (ln, res.stderr)
    recs = [json.loads(x) for x in res.stdout.splitlines()]
    assert [r["os"] for r in recs] == ["Testix 1.0", "Testix 2.0"]
    # several files: order given is priority order
    h.need_p0f()
    recs = h.run_fp(pcap, [h.P0F_FP, str(bad)])
    assert recs[0]["os"] == "Linux 3.11 and newer"
    # nothing readable: fatal
    res = run(["-r", pcap, "--db", str(tmp_path / "none.fp")], check=1)
    assert "none.fp" in res.stderr


def test_filter(tmp_path):
    dbs = p0fdb()
    pcap = str(tmp_path / "a.pcap")
    h.write_pcap(pcap, h.LINKTYPE_ETHERNET,
                 [h.ether(h.syn(LINUX, 1)), h.ether(h.syn(LINUX, 2))])
    res = run(["-r", pcap, "--filter", "src host 10.0.0.2"] + dbs, check=0)
    assert len(res.stdout.splitlines()) == 1
    assert res.stdout.startswith("10.0.0.2:")
    res = run(["-r", pcap, "--filter", "this is not bpf"] + dbs, check=1)
    assert "filter" in res.stderr
