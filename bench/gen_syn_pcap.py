#!/usr/bin/python3
"""gen_syn_pcap - write a pcap of many client SYNs drawn from varied signatures.

    gen_syn_pcap.py [-n 150000] [-f FILE.fp]... OUT.pcap

Every [tcp:request] signature of the given files (default: Debian's
/etc/p0f/p0f.fp and data/mailshaper.fp) is turned into a SYN by
tests/blackbox/fp_craft.py, over IPv4 and, where the signature allows, IPv6,
at hop distances that vary from copy to copy (some beyond p0f's 35, so the
fuzzy paths are timed too).  The list is repeated until N SYNs, each with
its own source address and port, one per flow, as Ethernet frames.  The
pcap is written directly with struct, which is far quicker than scapy.
"""
import argparse
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "blackbox"))
import fp_craft  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=150000)
    ap.add_argument("-f", action="append")
    ap.add_argument("out")
    a = ap.parse_args()
    files = a.f or [p for p in ("/etc/p0f/p0f.fp",
                                os.path.join(REPO, "data", "mailshaper.fp"))
                    if os.path.exists(p)]
    sigs = []
    for f in files:
        sigs += [s for _, _, s in fp_craft.parse_fp(f)]
    variants = []
    for s in sigs:
        vers = [None]
        q = set(s.split(":")[6].split(","))
        if s.startswith("*:") and not q & {"df", "id+", "id-", "0+"}:
            vers.append(6)
        for v in vers:
            variants.append((s, v))
    mac = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01"
    n = written = 0
    with open(a.out, "wb") as o:
        o.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
        while written < a.n:
            s, v = variants[n % len(variants)]
            drop = (n // len(variants)) % 40
            n += 1
            try:
                ip = fp_craft.build(s, written + 1, v, ttl_drop=drop)
            except fp_craft.Unsupported:
                continue
            et = b"\x08\x00" if ip[0] >> 4 == 4 else b"\x86\xdd"
            frame = mac + et + ip
            sec, usec = divmod(written * 100, 1000000)
            o.write(struct.pack("<IIII", 1700000000 + sec, usec, len(frame),
                                len(frame)))
            o.write(frame)
            written += 1
    print("%s: %d SYNs from %d signatures (%d variants)" % (
        a.out, written, len(sigs), len(variants)), file=sys.stderr)


if __name__ == "__main__":
    main()
