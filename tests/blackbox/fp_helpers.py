"""fp_helpers - shared fixtures for the fingerprinting black-box tests.

Runs `mailshaper fingerprint` and `p0f -r` on a capture and lines their
answers up by (src, sport, dst, dport).  Used by tests/blackbox/test_fp_*.py
(issue 3).  Addresses are normalised with ipaddress, because p0f prints IPv6
without zero compression.
"""
import ipaddress
import json
import os
import shutil
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REAL_PCAPS = os.path.join(os.path.dirname(REPO), "shared", "real-pcaps")
P0F = "/usr/sbin/p0f"
P0F_FP = "/etc/p0f/p0f.fp"
OUR_FP = os.path.join(REPO, "data", "mailshaper.fp")


def build_dir():
    return os.environ.get("MAILSHAPER_BUILD", os.path.join(REPO, "build"))


def binary():
    path = os.path.join(build_dir(), "mailshaper")
    if not os.access(path, os.X_OK):
        pytest.skip("no mailshaper binary at %s (run make)" % path)
    return path


def need_p0f():
    if not os.access(P0F, os.X_OK):
        pytest.skip("p0f is not installed (%s missing): apt-get install p0f" % P0F)
    if not os.path.exists(P0F_FP):
        pytest.skip("%s missing" % P0F_FP)


def real_pcaps():
    """Every capture in ../shared/real-pcaps, or skip."""
    if not os.path.isdir(REAL_PCAPS):
        pytest.skip("%s is absent" % REAL_PCAPS)
    files = sorted(f for f in os.listdir(REAL_PCAPS)
                   if f.endswith(".pcap") or f.endswith(".pcapng"))
    if not files:
        pytest.skip("no captures in %s" % REAL_PCAPS)
    return [os.path.join(REAL_PCAPS, f) for f in files]


def norm(addr):
    return str(ipaddress.ip_address(addr))


def run_fp(pcap, dbs=None, extra=(), check=True):
    """Our fingerprints of every client SYN in pcap, as dicts."""
    cmd = [binary(), "fingerprint", "-r", pcap, "--json"]
    for d in dbs or []:
        cmd += ["--db", d]
    cmd += list(extra)
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if check:
        assert res.returncode == 0, "%s failed: %s" % (cmd, res.stderr)
    out = []
    for line in res.stdout.splitlines():
        rec = json.loads(line)
        rec["src"] = norm(rec["src"])
        rec["dst"] = norm(rec["dst"])
        out.append(rec)
    return out


def run_p0f(pcap, fpfile=P0F_FP):
    """p0f's (syn) observations: dicts with src, sport, dst, dport, os, raw_sig."""
    res = subprocess.run([P0F, "-r", pcap, "-f", fpfile], capture_output=True,
                         text=True, errors="replace", timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    out, cur = [], None
    for line in res.stdout.splitlines():
        if line.startswith(".-[ "):
            cur = None
            head = line[4:line.rindex(" ]-")]
            kind = head[head.rindex(" ("):]
            if kind not in (" (syn)", " (sendsyn probe)"):
                continue
            left, right = head[:-len(kind)].split(" -> ")
            s, sp = left.rsplit("/", 1)
            d, dp = right.rsplit("/", 1)
            cur = {"src": norm(s), "sport": int(sp), "dst": norm(d),
                   "dport": int(dp)}
            out.append(cur)
        elif cur is not None and line.startswith("| "):
            k, _, v = line[2:].partition("=")
            k, v = k.strip(), v.strip()
            if k in ("os", "app"):
                cur["os"] = v
            elif k == "raw_sig":
                cur["raw_sig"] = v
            elif k == "dist":
                cur["dist"] = v
    return out


def tuple_key(rec):
    return (rec["src"], rec["sport"], rec["dst"], rec["dport"])


def compare(p0f_recs, our_recs):
    """Mismatches: p0f SYNs for which no SYN of ours on the same 4-tuple has
    the same raw_sig and OS label."""
    ours = {}
    for r in our_recs:
        ours.setdefault(tuple_key(r), []).append(r)
    bad = []
    for p in p0f_recs:
        cands = ours.get(tuple_key(p), [])
        if not any(c["raw_sig"] == p.get("raw_sig") and c["os"] == p.get("os")
                   for c in cands):
            bad.append((p, [(c["raw_sig"], c["os"]) for c in cands]))
    return bad


def have_scapy():
    try:
        import scapy  # noqa: F401
        return True
    except ImportError:
        return False


def tool(name):
    return shutil.which(name)


# --- writing captures by hand, so every byte (and every bogus field) is ours

import struct  # noqa: E402

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276


def write_pcap(path, linktype, frames, snaplen=65535):
    """frames: list of bytes, or (bytes, caplen, wirelen) to lie about sizes."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, snaplen,
                            linktype))
        for i, fr in enumerate(frames):
            if isinstance(fr, tuple):
                data, caplen, wirelen = fr
            else:
                data, caplen, wirelen = fr, len(fr), len(fr)
            f.write(struct.pack("<IIII", 1700000000 + i, 0, caplen, wirelen))
            f.write(data)


def write_pcapng(path, linktype, frames):
    def block(btype, body):
        body += b"\x00" * ((4 - len(body) % 4) % 4)
        ln = 12 + len(body)
        return struct.pack("<II", btype, ln) + body + struct.pack("<I", ln)
    with open(path, "wb") as f:
        f.write(block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
        f.write(block(1, struct.pack("<HHI", linktype, 0, 65535)))
        for i, fr in enumerate(frames):
            f.write(block(6, struct.pack("<IIIII", 0, 0, i, len(fr), len(fr))
                          + fr))


def ether(ip, tags=()):
    """Ethernet frame; tags = sequence of (tpid, vid) outer first."""
    et = 0x0800 if ip[0] >> 4 == 4 else 0x86dd
    hdr = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01"
    for tpid, vid in tags:
        hdr += struct.pack("!H", tpid)
        # the TCI follows; the inner type comes with the next tag or at the end
        hdr += struct.pack("!H", vid)
    return hdr + struct.pack("!H", et) + ip


def sll(ip):
    et = 0x0800 if ip[0] >> 4 == 4 else 0x86dd
    return struct.pack("!HHH8sH", 0, 1, 6, b"\x02\x00\x00\x00\x00\x01\x00\x00",
                       et) + ip


def sll2(ip):
    et = 0x0800 if ip[0] >> 4 == 4 else 0x86dd
    return struct.pack("!HHIHBB8s", et, 0, 2, 1, 0, 6,
                       b"\x02\x00\x00\x00\x00\x01\x00\x00") + ip


def null_lo(ip):
    af = 2 if ip[0] >> 4 == 4 else 10
    return struct.pack("<I", af) + ip


def loop_lo(ip):
    af = 2 if ip[0] >> 4 == 4 else 24
    return struct.pack("!I", af) + ip


def syn(sig, n=1, **kw):
    """IP bytes of a SYN matching p0f signature string sig (see fp_craft)."""
    import sys
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import fp_craft
    return fp_craft.build(sig, n, **kw)
