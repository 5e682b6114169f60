#!/usr/bin/python3
"""gen_seeds - seed corpora for the fuzz targets (run by fuzz/Makefile).

    gen_seeds.py OUTDIR

Writes OUTDIR/syn/*: one SYN per signature of data/mailshaper.fp and of
/etc/p0f/p0f.fp when present (built by tests/blackbox/fp_craft.py), each
prefixed with the link-type selector byte and wrapped in the matching link
header; and OUTDIR/sigdb/*: the signature files themselves plus a few
hand-written broken ones.
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "blackbox"))
import fp_craft  # noqa: E402

BROKEN = [
    "classes = win,unix,other\n[tcp:request]\nlabel = s:unix:X:1\n"
    "sig = *:64:0:*:mss*20,7:mss,sok,ts,nop,ws:df,id+:0\n"
    "sig = *:64:0:*:mss*20,7:mss,sok,ts,nop,ws:df,id+:0\n",
    "[mtu]\nlabel = a\nsig = 1500\nsig = 99999\n[tcp:request]\nsig = 4\n",
    "classes = a\n[tcp:request]\nlabel = s:!:Tool:x\nsys = @a,b\n"
    "sig = *:64-:0:*:%8,*:eol+3:opt+:*\n",
    "label = g:x\n[http:request]\nua_os = x\n[bogus]\n",
]


def wrap(sel, ip):
    et = 0x0800 if ip[0] >> 4 == 4 else 0x86dd
    if sel == 0:
        return b"\x02" * 12 + struct.pack("!H", et) + ip
    if sel == 1:
        return ip
    if sel == 4:
        return struct.pack("!HHH8sH", 0, 1, 6, b"\x00" * 8, et) + ip
    return b"\x02" * 12 + b"\x81\x00\x00\x2a" + struct.pack("!H", et) + ip


def main():
    out = sys.argv[1]
    os.makedirs(os.path.join(out, "syn"), exist_ok=True)
    os.makedirs(os.path.join(out, "sigdb"), exist_ok=True)
    files = [os.path.join(REPO, "data", "mailshaper.fp")]
    if os.path.exists("/etc/p0f/p0f.fp"):
        files.append("/etc/p0f/p0f.fp")
    n = 0
    for f in files:
        pkts, _ = fp_craft.craft(f, ipv6_too=True)
        for _, _, _, ip in pkts:
            sel = (0, 1, 4, 0)[n % 4]
            with open(os.path.join(out, "syn", "s%04d" % n), "wb") as o:
                o.write(bytes([sel]) + wrap(sel if n % 4 != 3 else 9, ip))
            n += 1
        with open(f, "rb") as i, open(os.path.join(
                out, "sigdb", os.path.basename(f)), "wb") as o:
            o.write(i.read())
    for i, text in enumerate(BROKEN):
        with open(os.path.join(out, "sigdb", "broken%d.fp" % i), "w") as o:
            o.write(text)
    print("fuzz seeds: %d SYNs, %d signature files" % (n, len(files) + len(BROKEN)))


if __name__ == "__main__":
    main()
