"""test_swarm_persona.py - the swarm's SYN personalities, proved by p0f

Runs as root in a network namespace the test creates (`ip netns add`,
deleted afterwards): lo up with 192.0.2.25/32 and 2001:db8::25/128, a
persistent tun0 made with `ip tuntap` so tcpdump can listen on it before
the swarm attaches.  A Python listener on 192.0.2.25:25 and
[2001:db8::25]:25 sends a banner, reads QUIT, answers 221 and closes,
logging each client address that said QUIT.

  personalities   `mailshaper-swarm probe -p all` sends one session per
                  personality of data/personas.conf from its own address
                  (IPv4 ones to 192.0.2.25, IPv6 ones to 2001:db8::25);
                  every handshake completes, every banner arrives, every
                  QUIT is answered; in the tcpdump capture `p0f -r` gives
                  each SYN the personality's "p0f" label and
                  `mailshaper fingerprint` its "ours" label
  concurrency     2000 sessions at once over one TUN device all complete
  zero window     20000 pipelined NOOPs to a listener (port 2525) with a
                  2 KB buffer that starts reading after 3 s: persist
                  probes are sent and the listener counts every NOOP
  early close     a listener (port 2526) that sends 421 and closes: every
                  session sees the banner and ends (done or reset) at once
  file errors     a bad personas file is refused with file:line: reason
  host guard      outside a fresh namespace the swarm refuses to add routes

Skips with a message when not root, or /dev/net/tun, ip, tcpdump or p0f is
missing.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

import fp_helpers as h

REPO = h.REPO
PERSONAS = os.path.join(REPO, "data", "personas.conf")
IP = shutil.which("ip") or "/usr/sbin/ip"
TCPDUMP = shutil.which("tcpdump") or "/usr/bin/tcpdump"
DADDR = "192.0.2.25"
DADDR6 = "2001:db8::25"

LISTENER = r'''
import socket, sys, threading, time
log = open(sys.argv[1], "a", buffering=1)
def normal(c, a):               # port 25: banner, QUIT, 221
    c.sendall(b"220 swarm-test.example ESMTP\r\n")
    buf = b""
    while b"\n" not in buf:
        d = c.recv(512)
        if not d:
            return
        buf += d
    if buf.upper().startswith(b"QUIT"):
        log.write("%s QUIT\n" % a[0])
    c.sendall(b"221 2.0.0 bye\r\n")
def slow(c, a):                 # port 2525: a tiny buffer read late
    c.sendall(b"220 slow.example ESMTP\r\n")
    time.sleep(3)
    buf, noops = b"", 0
    while True:
        d = c.recv(65536)
        if not d:
            return
        buf += d
        while b"\r\n" in buf:
            line, buf = buf.split(b"\r\n", 1)
            if line == b"NOOP":
                noops += 1
            elif line == b"QUIT":
                log.write("%s QUIT %d\n" % (a[0], noops))
                c.sendall(b"221 2.0.0 bye\r\n")
                return
def early(c, a):                # port 2526: 421 and close at once
    c.sendall(b"421 4.3.2 too busy\r\n")
def serve(port, fn, rcvbuf, host="192.0.2.25"):
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((host, port))
    s.listen(4096)
    def one(c, a):
        try:
            fn(c, a)
        finally:
            c.close()
    def loop():
        while True:
            c, a = s.accept()
            threading.Thread(target=one, args=(c, a), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()
serve(25, normal, 0)
serve(25, normal, 0, "2001:db8::25")
serve(2525, slow, 2048)
serve(2526, early, 0)
print("ready", flush=True)
while True:
    time.sleep(3600)
'''


def swarm_bin():
    path = os.path.join(h.build_dir(), "mailshaper-swarm")
    if not os.access(path, os.X_OK):
        pytest.skip("no mailshaper-swarm at %s (run make)" % path)
    return path


def need_root_net():
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespace and TUN device)")
    if not os.path.exists("/dev/net/tun"):
        pytest.skip("/dev/net/tun is missing")
    for tool in (IP, TCPDUMP):
        if not os.access(tool, os.X_OK):
            pytest.skip("%s is not installed" % tool)


def sh(*args):
    subprocess.run(list(args), check=True, capture_output=True, timeout=30)


class Netns:
    """A fresh namespace with lo, 192.0.2.25/32, tun0 and a listener."""

    def __init__(self, tmp):
        self.name = "mswarm%d" % os.getpid()
        self.tmp = tmp
        self.procs = []
        self.quit_log = os.path.join(tmp, "quit.log")

    def __enter__(self):
        subprocess.run([IP, "netns", "del", self.name], capture_output=True)
        sh(IP, "netns", "add", self.name)
        try:
            self.ip("link", "set", "lo", "up")
            self.ip("addr", "add", DADDR + "/32", "dev", "lo")
            self.ip("addr", "add", DADDR6 + "/128", "dev", "lo", "nodad")
            self.ip("tuntap", "add", "dev", "tun0", "mode", "tun")
            self.ip("link", "set", "tun0", "up")
            script = os.path.join(self.tmp, "listener.py")
            with open(script, "w") as f:
                f.write(LISTENER)
            p = self.spawn(["/usr/bin/python3", script, self.quit_log],
                           stdout=subprocess.PIPE)
            assert p.stdout.readline().strip() == b"ready"
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.kill()
            p.wait()
        subprocess.run([IP, "netns", "del", self.name], capture_output=True)

    def ip(self, *args):
        sh(IP, "netns", "exec", self.name, IP, *args)

    def spawn(self, argv, **kw):
        p = subprocess.Popen([IP, "netns", "exec", self.name] + argv, **kw)
        self.procs.append(p)
        return p

    def run(self, argv, timeout=60):
        return subprocess.run([IP, "netns", "exec", self.name] + argv,
                              capture_output=True, text=True, timeout=timeout)

    def quit_lines(self):
        if not os.path.exists(self.quit_log):
            return []
        with open(self.quit_log) as f:
            return [line.split() for line in f if line.strip()]

    def quitters(self):
        return {w[0] for w in self.quit_lines()}


@pytest.fixture
def netns():
    need_root_net()
    with tempfile.TemporaryDirectory(prefix="swarm-") as tmp:
        with Netns(tmp) as ns:
            yield ns


def personas():
    res = subprocess.run([swarm_bin(), "personas", "-P", PERSONAS, "--json"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    return [json.loads(line) for line in res.stdout.splitlines()]


def probe(ns, *args, timeout=60, port=25, v6=False):
    target = "[%s]:%d" % (DADDR6, port) if v6 else "%s:%d" % (DADDR, port)
    res = ns.run([swarm_bin(), "probe", "-P", PERSONAS, "--json"] +
                 list(args) + [target], timeout=timeout)
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    return res, rows


def start_capture(ns, pcap):
    cap = ns.spawn([TCPDUMP, "-Z", "root", "-n", "-i", "tun0", "-U",
                    "--immediate-mode", "-B", "8192", "-w", pcap,
                    "(ip and tcp[tcpflags] & tcp-syn != 0) or "
                    "(ip6 and ip6[6] == 6 and ip6[53] & 2 != 0)"],
                   stderr=subprocess.PIPE)
    line = cap.stderr.readline().decode(errors="replace")
    assert "listening on" in line, line
    return cap


def stop_capture(cap):
    time.sleep(0.5)
    cap.send_signal(signal.SIGINT)
    cap.wait(timeout=10)


@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
def test_personalities_p0f_and_ours(netns, v6):
    """Each personality's SYN gets its p0f label and our label."""
    h.need_p0f()
    h.binary()
    want = [p for p in personas() if (p["sig"][0] == "6") == v6 or
            p["sig"][0] == "*"]
    names = {p["name"] for p in want}
    if v6:
        assert {"win7-6", "linux6", "freebsd6", "macos6"} <= names
    else:
        assert {"winxp", "win7", "win10", "router", "appliance", "linux",
                "freebsd", "macos"} <= names
        # the appliances share the routers' OS label, not their raw sig
        by_name = {p["name"]: p for p in want}
        assert by_name["appliance"]["ours"] == by_name["router"]["ours"]
        assert by_name["appliance"]["sig"] != by_name["router"]["sig"]
    pcap = os.path.join(netns.tmp, "syn.pcap")
    cap = start_capture(netns, pcap)
    first = "2001:db8:1::1" if v6 else "198.18.0.1"
    res, rows = probe(netns, "-p", "all", "-s", first, v6=v6)
    stop_capture(cap)
    assert res.returncode == 0, res.stdout + res.stderr
    assert len(rows) == len(want)
    by_src = {}
    for row in rows:
        assert row["connected"] and row["ok"], row
        assert row["banner"] == "220 swarm-test.example ESMTP", row
        assert row["quit_answered"] and row["result"] == "done", row
        by_src[h.norm(row["src"])] = next(p for p in want
                                          if p["name"] == row["persona"])
    assert {h.norm(a) for a in netns.quitters()} == set(by_src), \
        "listener saw QUIT from each"

    p0f = {r["src"]: r for r in h.run_p0f(pcap) if r["dport"] == 25}
    ours = {r["src"]: r for r in h.run_fp(pcap) if r["dport"] == 25}
    bad = []
    for src, p in sorted(by_src.items()):
        got_p0f = p0f.get(src, {}).get("os")
        got_ours = ours.get(src, {}).get("os")
        if got_p0f != p["p0f"] or got_ours != p["ours"]:
            bad.append("%s (%s): p0f %r want %r; ours %r want %r; raw %s" % (
                p["name"], src, got_p0f, p["p0f"], got_ours, p["ours"],
                p0f.get(src, {}).get("raw_sig")))
    assert not bad, "\n".join(bad)
    # the capture holds exactly the personality's signature (distance 0)
    for src, p in by_src.items():
        ver, ttl, rest = p["sig"].split(":", 2)
        assert p0f[src]["raw_sig"] == "%s:%s+0:%s" % (ver, ttl, rest), src


def test_many_concurrent_sessions(netns):
    """2000 sessions at once from 2000 addresses all complete."""
    res, rows = probe(netns, "-p", "all", "-n", "2000", "-s", "198.18.16.1",
                      "-t", "60", timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert len(rows) == 2000
    assert all(r["ok"] for r in rows)
    assert len({r["src"] for r in rows}) == 2000
    assert len(netns.quitters()) == 2000


def test_zero_window(netns):
    """A server that reads late through a tiny buffer shuts its window; the
    swarm probes it and delivers every byte once it opens."""
    res, rows = probe(netns, "-p", "win10,linux", "--noop", "20000",
                      "-s", "198.18.32.1", "-t", "60", port=2525,
                      timeout=90)
    assert res.returncode == 0, res.stdout + res.stderr[-2000:]
    assert [r["ok"] for r in rows] == [True, True]
    got = {w[0]: int(w[2]) for w in netns.quit_lines()}
    assert got == {"198.18.32.1": 20000, "198.18.32.2": 20000}
    m = re.search(r"(\d+) persist probes", res.stderr)
    assert m and int(m.group(1)) > 0, res.stderr


def test_daemon_closes_early(netns):
    """A 421 and an immediate close end each session quickly, never hang."""
    t0 = time.monotonic()
    res, rows = probe(netns, "-p", "all", "-s", "198.18.48.1", "-t", "20",
                      port=2526)
    assert time.monotonic() - t0 < 10
    assert len(rows) == len([p for p in personas() if p["sig"][0] != "6"])
    for r in rows:
        assert r["connected"], r
        assert r["banner"] == "421 4.3.2 too busy", r
        assert r["result"] in ("done", "reset"), r


def test_bad_personas_file(tmp_path):
    """Errors name the file and line."""
    bad = tmp_path / "bad.conf"
    bad.write_text("name = x\np0f = a\nours = b\n"
                   "sig = 4:64:0:1460:*,0:mss:df,id+:0\n")
    res = subprocess.run([swarm_bin(), "personas", "-P", str(bad)],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 1
    assert "%s:4: the window must be a number, mss*N or mtu*N" % bad \
        in res.stderr


def test_refuses_host_namespace():
    """Outside a fresh namespace (other interfaces present) no route is added."""
    need_root_net()
    others = [i for i in os.listdir("/sys/class/net") if i != "lo"]
    if not others:
        pytest.skip("this namespace has only lo: the guard cannot tell it "
                    "from a fresh one")
    res = subprocess.run([swarm_bin(), "probe", "-P", PERSONAS, "-p", "winxp",
                          "--tun", "mswarmguard0", DADDR + ":25"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 1
    assert "refusing to set up routes" in res.stderr
    assert not os.path.exists("/sys/class/net/mswarmguard0")
