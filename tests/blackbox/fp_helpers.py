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
            if not head.endswith("(syn)"):
                continue
            left, right = head[:-len(" (syn)")].split(" -> ")
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
