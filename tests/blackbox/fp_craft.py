#!/usr/bin/python3
"""fp_craft - craft one SYN per [tcp:request] signature of a p0f.fp file.

    fp_craft.py [-f p0f.fp] [--ipv6-too] OUT.pcap

For every `sig = ...` line under [tcp:request], build an Ethernet frame
holding an IPv4 (or IPv6) SYN that satisfies the signature: TTL a few hops
below the initial TTL, the exact option layout, window as the signature's
multiple of MSS/MTU, the quirks and the payload class.  The IP and TCP
headers are packed by hand so that every byte is the one we mean; scapy
frames them and writes the pcap.  Signatures that cannot be expressed as a
client SYN (ack-, whose ACK flag makes it no SYN, or options that do not
fill whole 32-bit words) are skipped and listed on stderr.

Each packet gets its own source address and port, so results can be keyed
on (src, sport, dst, dport).  Used by tests/blackbox/test_fp_agree.py and
bench/gen_syn_pcap.py.
"""
import argparse
import struct
import sys

OPT_KIND = {"nop": 1, "mss": 2, "ws": 3, "sok": 4, "sack": 5, "ts": 8}


def parse_fp(path):
    """Yield (line_no, label, sig) for every [tcp:request] signature."""
    section, label = None, None
    with open(path, encoding="utf-8", errors="replace") as f:
        for no, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith(";"):
                continue
            if line.startswith("["):
                section = line
                continue
            if section != "[tcp:request]":
                continue
            k, _, v = line.partition("=")
            k, v = k.strip(), v.strip()
            if k == "label":
                label = v
            elif k == "sig":
                yield no, label, v


class Unsupported(Exception):
    pass


def build(sig, n, ver_override=None, ttl_drop=3, drop=()):
    """Return the IP packet bytes for signature string sig; n makes it unique."""
    f = sig.split(":")
    if len(f) != 8:
        raise Unsupported("field count")
    ver, ttl, olen, mss, winf, layout, quirks, pclass = f
    ws_field = None
    win_s, ws_field = winf.split(",")
    ver = ver_override or (6 if ver == "6" else 4)
    quirks = set(q for q in quirks.split(",") if q) - set(drop)
    if "ack-" in quirks:
        raise Unsupported("ack- needs the ACK flag")
    bad_ttl = ttl.endswith("-")
    ttl = ttl.rstrip("-")
    if "+" in ttl:
        a, b = ttl.split("+")
        ittl = int(a) + int(b)
    else:
        ittl = int(ttl)
    obs_ttl = max(1, ittl - (0 if bad_ttl else ttl_drop))
    olen = int(olen)
    if olen % 4:
        raise Unsupported("IP option length not a multiple of 4")
    if ver == 6 and olen:
        raise Unsupported("IPv6 with IP options")
    mss_v = 1460 if mss == "*" else int(mss)
    if ver == 6 and mss == "*":
        mss_v = 1440
    ws = 7 if ws_field == "*" else int(ws_field)
    hdr_ip = 20 + olen if ver == 4 else 40
    if win_s == "*":
        win = 8192
    elif win_s.startswith("%"):
        win = int(win_s[1:]) * 2
    elif win_s.startswith("mss*"):
        win = int(win_s[4:]) * mss_v
    elif win_s.startswith("mtu*"):
        win = int(win_s[4:]) * (mss_v + 40)
    else:
        win = int(win_s)
    if win > 65535:
        raise Unsupported("window does not fit 16 bits")

    # TCP options, byte for byte
    opts = b""
    ts1 = 0 if "ts1-" in quirks else 100000 + n
    ts2 = 12345 if "ts2+" in quirks else 0
    bad_done = "bad" not in quirks
    items = [o for o in layout.split(",") if o]
    for i, o in enumerate(items):
        if o.startswith("eol+"):
            pad = int(o[4:])
            body = bytearray(pad)
            if "opt+" in quirks:
                if pad < 2:
                    raise Unsupported("opt+ needs 2 bytes of EOL padding")
                body[0] = 1
            opts += b"\x00" + bytes(body)
        elif o == "nop":
            opts += b"\x01"
        elif o == "mss":
            ln = 4
            if not bad_done:
                ln, bad_done = 5, True     # wrong length byte: 'bad'
            opts += struct.pack("!BBH", 2, ln, mss_v)
        elif o == "ws":
            opts += struct.pack("!BBB", 3, 3, ws)
        elif o == "sok":
            opts += b"\x04\x02"
        elif o == "sack":
            opts += b"\x05\x0a" + b"\x00" * 8
        elif o == "ts":
            opts += struct.pack("!BBII", 8, 10, ts1, ts2)
        elif o.startswith("?"):
            k = int(o[1:])
            if k in (0, 1):
                raise Unsupported("?0/?1 cannot carry a length")
            opts += struct.pack("!BB", k, 2)
        else:
            raise Unsupported("option " + o)
    if not bad_done:
        raise Unsupported("bad without an MSS option to break")
    if "opt+" in quirks and "eol+" not in layout:
        raise Unsupported("opt+ without EOL")
    if "exws" in quirks and ws <= 14:
        raise Unsupported("exws with ws <= 14")
    if "exws" not in quirks and "ws" in items and ws > 14:
        raise Unsupported("ws > 14 without exws")
    if len(opts) % 4:
        raise Unsupported("options not a multiple of 4 bytes")
    if len(opts) > 40:
        raise Unsupported("options longer than 40 bytes")

    payload = b"GET / HTTP/1.0\r\n\r\n" if pclass == "+" else b""
    flags = 0x02
    if "urgf+" in quirks:
        flags |= 0x20
    if "pushf+" in quirks:
        flags |= 0x08
    if "ecn" in quirks:
        flags |= 0xc0                      # ECE + CWR on the SYN
    seq = 0 if "seq-" in quirks else 0x10000000 + n * 7919
    ack = 0x01000055 if "ack+" in quirks else 0   # p0f sees only bit 24
    urg = 0x10 if "uptr+" in quirks else 0
    sport = 1024 + (n % 60000)
    dport = 25
    doff = (20 + len(opts)) // 4
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, doff << 4, flags,
                      win, 0, urg) + opts + payload

    if ver == 4:
        src = bytes([10, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff])
        dst = bytes([192, 0, 2, 25])
        ihl = (20 + olen) // 4
        fo = 0
        ident = 0x1234 + (n & 0xfff)
        if "df" in quirks:
            fo |= 0x4000
            if "id+" not in quirks:
                ident = 0
        else:
            if "id-" in quirks:
                ident = 0
        if "0+" in quirks:
            fo |= 0x8000
        tot = 20 + olen + len(tcp)
        ip = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, tot, ident, fo,
                         obs_ttl, 6, 0, src, dst) + b"\x01" * olen
        return ip + tcp
    vt = 6 << 28
    if "flow" in quirks:
        vt |= 0x12345
    src = b"\x20\x01\x0d\xb8" + b"\x00" * 8 + struct.pack("!I", n)
    dst = b"\x20\x01\x0d\xb8" + b"\x00" * 11 + b"\x19"
    return struct.pack("!IHBB16s16s", vt, len(tcp), 6, obs_ttl, src, dst) + tcp


def craft(fpfile, ipv6_too=False, repeat=1, start=1, fuzzy_too=False):
    """List of (line_no, label, sig, ip_bytes); skipped list.

    fuzzy_too adds, per signature, a copy 40 hops away (beyond p0f's
    MAX_DIST of 35: a fuzzy TTL) and a copy with df/id+ removed (quirk
    drift), so the fuzzy paths of the matcher are compared with p0f too."""
    out, skipped, n = [], [], start
    sigs = list(parse_fp(fpfile))
    for rep in range(repeat):
        for no, label, sig in sigs:
            vers = [None]
            if ipv6_too and sig.startswith("*:") and not (
                    set(sig.split(":")[6].split(",")) & {"df", "id+", "id-", "0+"}):
                vers.append(6)
            for v in vers:
                try:
                    pkt = build(sig, n, v, ttl_drop=(3 + rep) % 30)
                except Unsupported as e:
                    if rep == 0:
                        skipped.append((no, sig, str(e)))
                    continue
                out.append((no, label, sig, pkt))
                n += 1
                if not fuzzy_too or rep:
                    continue
                for kw in ({"ttl_drop": 40}, {"drop": ("df", "id+")}):
                    try:
                        pkt = build(sig, n, v, **kw)
                    except Unsupported:
                        continue
                    out.append((no, label, sig, pkt))
                    n += 1
    return out, skipped


def write_pcap(path, pkts):
    from scapy.all import Ether, Raw, wrpcap
    frames = []
    for _, _, _, ip in pkts:
        et = 0x0800 if ip[0] >> 4 == 4 else 0x86dd
        frames.append(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02",
                            type=et) / Raw(load=ip))
    wrpcap(path, frames)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-f", default="/etc/p0f/p0f.fp")
    ap.add_argument("--ipv6-too", action="store_true")
    ap.add_argument("--fuzzy-too", action="store_true")
    ap.add_argument("out")
    a = ap.parse_args()
    pkts, skipped = craft(a.f, a.ipv6_too, fuzzy_too=a.fuzzy_too)
    for no, sig, why in skipped:
        print("skipped line %d (%s): %s" % (no, why, sig), file=sys.stderr)
    write_pcap(a.out, pkts)
    print("%d packets, %d signatures skipped" % (len(pkts), len(skipped)),
          file=sys.stderr)


if __name__ == "__main__":
    main()
