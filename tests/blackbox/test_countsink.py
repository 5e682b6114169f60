"""test_countsink.py - the swarm's counting backend (src/swarm/countsink.c)

The backend is driven by tests/blackbox/countsink_drv.c, compiled here
against $MAILSHAPER_BUILD/libswarm.a and libmscommon.a (with ASan+UBSan when that library
was built with them); it is what `mailshaper-swarm backend` runs.  Each case
starts one backend on a free loopback port and says what it sends and what
it expects:

  replies and counts   200 spam, 50 ham, 10 unmarked messages with --seed 7:
                       exactly 19 of the spam get 550 5.7.1 (the seeded
                       stream rejects 181 of its first 200 at 90%), all ham
                       and unmarked mail 250; the stats file says the same,
                       by truth and by population
  pipelining           PIPELINING only with --pipelining; 20 transactions in
                       one write get 100 replies in order
  DATA framing         dot-unstuffing, a bare-LF "." that does not end the
                       message, a marker hidden by a leading dot, a line
                       longer than the split limit
  XCLIENT              advertised and answered 220 with --xclient (the
                       address then counts as the client), 550 without,
                       501 on bad attributes, 503 inside a transaction
  garbage              random bytes, a 5000-byte command line, NULs, commands
                       out of order, the error limit's 421; the server keeps
                       serving
  size, timeout        SIZE= and an oversize message get 552; an idle session
                       gets 421
  SIGTERM              the final stats are written, a half-sent message is
                       counted as aborted, exit status 0
  swaks, the relay     swaks delivers ham and sees spam refused; mailshaper
                       in front (default backend_identity xclient) relays
                       ham and the backend counts the client XCLIENT named
"""

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from peers import RawSmtp, free_port, need, swaks, SWAKS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("MAILSHAPER_BUILD", os.path.join(REPO, "build"))
PKGS = "libevent libevent_openssl libevent_pthreads openssl libpcap sqlite3 hiredis"

M64 = (1 << 64) - 1


def sink_reject(seed, n, bp):
    """sink_reject - the C decision, for expected counts"""
    if bp <= 0:
        return False
    if bp >= 10000:
        return True
    z = (seed + (n + 1) * 0x9e3779b97f4a7c15) & M64
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M64
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M64
    z ^= z >> 31
    return z % 10000 < bp


@pytest.fixture(scope="module")
def drv():
    """the driver, built against this build's library"""
    lib = os.path.join(BUILD, "libswarm.a")
    if not os.path.exists(lib):
        pytest.skip("%s not built (run make)" % lib)
    d = tempfile.mkdtemp(prefix="countsink_drv.")
    out = os.path.join(d, "countsink_drv")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs"] + PKGS.split(),
                           capture_output=True, text=True, check=True).stdout.split()
    nm = subprocess.run(["nm", lib], capture_output=True, text=True).stdout
    san = ["-fsanitize=address,undefined"] if "__asan_report" in nm else []
    subprocess.run(["cc", "-std=c11", "-D_GNU_SOURCE", "-g", "-Wall", "-Wextra",
                    "-Werror", "-I" + os.path.join(REPO, "src")] + san +
                   ["-o", out, os.path.join(REPO, "tests/blackbox/countsink_drv.c"),
                    lib, os.path.join(BUILD, "libmscommon.a")] + flags +
                    ["-lpthread", "-lm"], check=True)
    yield out
    shutil.rmtree(d, ignore_errors=True)


class Sink:
    """one countsink_drv on 127.0.0.1:<free port>"""

    def __init__(self, drv, *args, stats=True):
        self.dir = tempfile.mkdtemp(prefix="countsink.")
        self.port = free_port()
        self.stats_path = os.path.join(self.dir, "stats.json")
        argv = [drv, "-l", "127.0.0.1:%d" % self.port,
                "--hostname", "sink.test"] + list(args)
        if stats:
            argv += ["--stats", self.stats_path]
        self.errlog = os.path.join(self.dir, "stderr.log")
        self._err = open(self.errlog, "w")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                     stderr=self._err, env=env)
        end = time.monotonic() + 10
        while "ready:" not in self.log():
            if self.proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError("countsink did not start:\n" + self.log())
            time.sleep(0.02)

    def log(self):
        with open(self.errlog, errors="replace") as f:
            return f.read()

    def client(self, **kw):
        c = RawSmtp("127.0.0.1", self.port, **kw)
        c.expect(220)
        return c

    def stats(self):
        """stats - SIGUSR1, then the file once it has been rewritten"""
        before = os.stat(self.stats_path).st_mtime_ns \
            if os.path.exists(self.stats_path) else 0
        os.unlink(self.stats_path) if before else None
        self.proc.send_signal(signal.SIGUSR1)
        end = time.monotonic() + 5
        while not os.path.exists(self.stats_path):
            assert time.monotonic() < end, "no stats after SIGUSR1"
            time.sleep(0.02)
        with open(self.stats_path) as f:
            return json.load(f)

    def stop(self):
        """stop - SIGTERM; the exit status; fails on a sanitizer report"""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._err.close()
        log = self.log()
        assert "ERROR: AddressSanitizer" not in log and \
            "runtime error:" not in log and \
            "ERROR: LeakSanitizer" not in log, log[-4000:]
        return self.proc.returncode

    def final_stats(self):
        with open(self.stats_path) as f:
            return json.load(f)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def sink_factory(drv):
    made = []

    def make(*args, **kw):
        s = Sink(drv, *args, **kw)
        made.append(s)
        return s
    yield make
    for s in made:
        rc = s.stop()
        assert rc == 0, s.log()
        s.cleanup()


def message(truth=None, pop=None, body="hello"):
    """message - the DATA payload (dot-stuffed, ending CRLF.CRLF)"""
    lines = ["Received: from client.test by mx.test; trace above the marker",
             "Subject: test"]
    if truth:
        lines.append("X-Swarm-Truth: %s" % truth)
    if pop:
        lines.append("X-Swarm-Population: %s" % pop)
    lines += ["", body]
    return ("\r\n".join(lines) + "\r\n.\r\n").encode()


def send_one(c, payload, rcpt=b"rcpt@example.test"):
    """send_one - one transaction, step by step; the final reply code"""
    c.send(b"MAIL FROM:<s@client.test>\r\n")
    c.expect(250)
    c.send(b"RCPT TO:<" + rcpt + b">\r\n")
    c.expect(250)
    c.send(b"DATA\r\n")
    c.expect(354)
    c.send(payload)
    code, _ = c.reply()
    return code


ZERO = {"received": 0, "accepted": 0, "rejected": 0}


def test_replies_and_counts(sink_factory):
    """200 spam, 50 ham, 10 unmarked with --seed 7: exact replies and stats"""
    s = sink_factory("--seed", "7")
    want_rej = sum(sink_reject(7, n, 9000) for n in range(200))
    assert want_rej == 181
    codes = {"spam": [], "ham": [], None: []}
    order = ["spam"] * 200 + ["ham"] * 50 + [None] * 10
    random.Random(1).shuffle(order)
    c = s.client()
    c.send(b"EHLO client.test\r\n")
    c.expect(250)
    for i, t in enumerate(order):
        if i and i % 50 == 0:          # several sessions
            c.send(b"QUIT\r\n")
            c.expect(221)
            c = s.client()
            c.send(b"HELO client.test\r\n")
            c.expect(250)
        pop = {"spam": "zombie", "ham": "legit", None: None}[t]
        codes[t].append(send_one(c, message(t, pop)))
    c.send(b"QUIT\r\n")
    c.expect(221)
    assert codes["spam"].count(550) == 181
    assert codes["spam"].count(250) == 19
    assert codes["ham"] == [250] * 50
    assert codes[None] == [250] * 10
    st = s.stats()
    assert st["spam"] == {"received": 200, "accepted": 19, "rejected": 181}
    assert st["ham"] == {"received": 50, "accepted": 50, "rejected": 0}
    assert st["unknown"] == {"received": 10, "accepted": 10, "rejected": 0}
    bp = st["by_population"]
    assert set(bp) == {"zombie", "legit", "(none)"}
    assert bp["zombie"]["spam"] == st["spam"]
    assert bp["zombie"]["ham"] == ZERO
    assert bp["legit"]["ham"] == st["ham"]
    assert bp["(none)"]["unknown"] == st["unknown"]
    assert bp["zombie"]["clients"] == 1 and bp["zombie"]["via_xclient"] == 0
    assert st["server"]["connections"] == 6
    assert st["config"]["seed"] == 7 and st["config"]["reject_spam_pct"] == 90


def test_reject_share_option(sink_factory):
    """--reject-spam 0 accepts all spam; 100 rejects all; 25 as the stream"""
    for pct, seed in (("0", 1), ("100", 1), ("25", 99)):
        s = sink_factory("--reject-spam", pct, "--seed", str(seed))
        c = s.client()
        codes = [send_one(c, message("spam")) for _ in range(40)]
        want = [550 if sink_reject(seed, n, int(pct) * 100) else 250
                for n in range(40)]
        assert codes == want, pct


def test_pipelining(sink_factory):
    """PIPELINING only with --pipelining; 20 transactions in one write"""
    s = sink_factory("--seed", "3")
    c = s.client()
    c.send(b"EHLO x\r\n")
    assert not any("PIPELINING" in l for l in c.expect(250))
    s2 = sink_factory("--pipelining", "--seed", "3")
    c = s2.client()
    c.send(b"EHLO x\r\n")
    ext = c.expect(250)
    for e in ("PIPELINING", "SIZE 10485760", "8BITMIME", "ENHANCEDSTATUSCODES"):
        assert e in ext
    assert not any("XCLIENT" in l for l in ext)
    batch = b""
    truths = ["spam" if i % 2 else "ham" for i in range(20)]
    for t in truths:
        batch += b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nRCPT TO:<e@f>\r\nDATA\r\n"
        batch += message(t)
    c.send(batch + b"QUIT\r\n")
    finals = []
    for t in truths:
        assert c.reply()[0] == 250
        assert c.reply()[0] == 250
        assert c.reply()[0] == 250
        assert c.reply()[0] == 354
        finals.append(c.reply()[0])
    c.expect(221)
    nspam = 0
    for t, code in zip(truths, finals):
        if t == "ham":
            assert code == 250
        else:
            assert code == (550 if sink_reject(3, nspam, 9000) else 250)
            nspam += 1
    st = s2.stats()
    assert st["ham"]["received"] == 10 and st["spam"]["received"] == 10


def test_data_framing(sink_factory):
    """dot-unstuffing, bare LF, a hidden marker, an over-long line"""
    s = sink_factory("--reject-spam", "100")
    c = s.client()
    # "..X-Swarm..." unstuffs to ".X-Swarm...": not a marker.
    assert send_one(c, b"..X-Swarm-Truth: spam\r\n..\r\n.\r\n") == 250
    # A bare-LF "." does not end the message; the marker after it counts.
    assert send_one(c, b"a\n.\nb\r\nX-Swarm-Truth: spam\r\n.\r\n") == 550
    # Empty message.
    assert send_one(c, b".\r\n") == 250
    # A 200 KB line is counted but not scanned; the marker after it is.
    assert send_one(c, b"x" * 200000 + b"\r\nX-Swarm-Truth: ham\r\n.\r\n") == 250
    # A marker cut by the split is not a marker; CRLF split across writes.
    c.send(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n")
    c.expect(250), c.expect(250), c.expect(354)
    c.send(b"X-Swarm-Truth: spam\r")
    time.sleep(0.1)
    c.send(b"\n.")
    time.sleep(0.1)
    c.send(b"\r\n")
    assert c.reply()[0] == 550
    st = s.stats()
    assert st["unknown"]["received"] == 2
    assert st["spam"] == {"received": 2, "accepted": 0, "rejected": 2}
    assert st["ham"]["received"] == 1
    assert st["server"]["long_lines"] == 1


def test_xclient(sink_factory):
    """XCLIENT like Postfix: advertised, 220, the address becomes the client"""
    s = sink_factory("--xclient")
    c = s.client()
    c.send(b"EHLO mailshaper\r\n")
    assert "XCLIENT NAME ADDR PORT PROTO HELO" in c.expect(250)
    c.send(b"XCLIENT ADDR=198.18.0.7 PORT=40000 NAME=[UNAVAILABLE] "
           b"PROTO=ESMTP HELO=zombie+2Etest\r\n")
    code, lines = c.reply()
    assert code == 220 and "sink.test" in lines[0]
    c.send(b"EHLO mailshaper\r\n")
    c.expect(250)
    assert send_one(c, message("ham", "p1")) == 250
    c.send(b"XCLIENT ADDR=IPV6:2001:db8::9\r\n")
    c.expect(220)
    assert send_one(c, message("ham", "p1")) == 250
    # inside a transaction: 503
    c.send(b"MAIL FROM:<a@b>\r\n")
    c.expect(250)
    c.send(b"XCLIENT ADDR=198.18.0.8\r\n")
    c.expect(503)
    c.send(b"RSET\r\n")
    c.expect(250)
    for bad in (b"XCLIENT", b"XCLIENT ADDR=999.1.1.1", b"XCLIENT FOO=1",
                b"XCLIENT PORT=70000", b"XCLIENT PROTO=UUCP",
                b"XCLIENT NAME=a+zz", b"XCLIENT =x", b"XCLIENT ADDR"):
        c.send(bad + b"\r\n")
        c.expect(501)
    c.send(b"QUIT\r\n")
    c.expect(221)
    # the peer, not an XCLIENT address, for a plain session
    c = s.client()
    assert send_one(c, message("ham", "p2")) == 250
    st = s.stats()
    assert st["by_population"]["p1"]["clients"] == 2
    assert st["by_population"]["p1"]["via_xclient"] == 2
    assert st["by_population"]["p2"]["clients"] == 1
    assert st["by_population"]["p2"]["via_xclient"] == 0
    assert st["server"]["xclient"] == 2
    # without --xclient: neither advertised nor accepted
    s2 = sink_factory()
    c = s2.client()
    c.send(b"EHLO x\r\n")
    assert not any("XCLIENT" in l for l in c.expect(250))
    c.send(b"XCLIENT ADDR=198.18.0.7\r\n")
    code, lines = c.reply()
    assert code == 550 and lines[0].startswith("5.7.0")


def test_garbage(sink_factory):
    """random bytes, long lines, NULs, bad order, the error limit"""
    s = sink_factory()
    c = s.client()
    c.send(b"RCPT TO:<a@b>\r\n")
    c.expect(503)
    c.send(b"DATA\r\n")
    c.expect(503)
    c.send(b"MAIL FROM:<a@b>\r\nDATA\r\n")
    c.expect(250)
    c.expect(503)
    c.send(b"MAIL FROM:<a@b>\r\n")
    c.expect(503)                       # nested MAIL
    c.send(b"RSET\r\nMAIL FROM:a@b\r\nRCPT TO:<>\r\nHELO\r\nEHLO\r\n")
    c.expect(250)
    c.expect(501)
    c.expect(503)
    c.expect(501)
    c.expect(501)
    c.send(b"A" * 5000 + b"\r\nNOOP\r\n")
    code, lines = c.reply()
    assert code == 500 and "too long" in lines[0]
    c.expect(250)                       # the tail was dropped, NOOP ran
    c.send(b"NO\x00OP\r\n\r\nWHAT\r\n")
    c.expect(500)
    c.expect(500)
    c.expect(502)
    c.send(b"QUIT\r\n")
    c.expect(221)
    # the error limit
    c = s.client()
    c.send(b"BOGUS\r\n" * 30)
    for _ in range(20):                 # the 20th: its reply, then 421
        c.expect(502)
    c.expect(421)
    assert c.closed()
    # pure noise, many sessions
    rnd = random.Random(5)
    for i in range(20):
        c = RawSmtp("127.0.0.1", s.port)
        try:
            c.send(bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 20000))))
            if i % 2:
                c.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        c.sock.close()
    c = s.client()
    assert send_one(c, message("ham")) == 250
    st = s.stats()
    assert st["ham"]["received"] == 1
    assert st["server"]["bad_commands"] >= 30


def test_size_and_timeout(sink_factory):
    """SIZE= over the limit and an oversize message: 552; idle: 421"""
    s = sink_factory("--max-size", "1000", "--timeout", "1")
    c = s.client()
    c.send(b"EHLO x\r\n")
    assert "SIZE 1000" in c.expect(250)
    c.send(b"MAIL FROM:<a@b> SIZE=5000\r\n")
    c.expect(552)
    c.send(b"MAIL FROM:<a@b> BODY=8BITMIME SIZE=500\r\n")
    c.expect(250)
    c.send(b"RSET\r\n")
    c.expect(250)
    assert send_one(c, message("spam", body="x" * 2000)) == 552
    assert send_one(c, message("ham")) == 250
    code, lines = c.reply()             # then wait: the idle timeout
    assert code == 421 and "timeout" in lines[0]
    st = s.stats()
    assert st["server"]["oversize"] == 1 and st["server"]["timeouts"] == 1
    assert st["spam"]["received"] == 0 and st["ham"]["received"] == 1


def test_sigterm_final_stats(sink_factory, drv):
    """SIGTERM: final stats written, half-sent message counted aborted"""
    s = Sink(drv, "--stats-interval", "0", "--seed", "1")
    try:
        c = s.client()
        assert send_one(c, message("ham", "legit")) == 250
        c.send(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n")
        c.expect(250), c.expect(250), c.expect(354)
        c.send(b"X-Swarm-Truth: spam\r\nhalf")
        time.sleep(0.2)
        assert s.stop() == 0
        st = s.final_stats()
        assert st["ham"]["received"] == 1
        assert st["spam"]["received"] == 0
        assert st["by_population"]["legit"]["ham"]["accepted"] == 1
        assert st["server"]["aborted"] == 1
        assert "SIGTERM: stopping" in s.log()
    finally:
        s.cleanup()


def test_periodic_stats(sink_factory):
    """--stats-interval 1 rewrites the file without a signal"""
    s = sink_factory("--stats-interval", "1")
    c = s.client()
    assert send_one(c, message("ham")) == 250
    end = time.monotonic() + 5
    while True:
        try:
            with open(s.stats_path) as f:
                if json.load(f)["ham"]["received"] == 1:
                    break
        except (OSError, ValueError):
            pass
        assert time.monotonic() < end, "periodic stats not written"
        time.sleep(0.1)


def test_bad_options(drv):
    """bad values exit 2 with the option named"""
    for args in (["--reject-spam", "101"], ["--seed", "x"], ["-l", "nowhere"],
                 ["--timeout", "0"], ["extra"]):
        r = subprocess.run([drv] + args, capture_output=True, text=True,
                           timeout=10)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr


def test_swaks(sink_factory):
    """swaks delivers ham, and sees spam refused with 550 5.7.1"""
    need(SWAKS)
    s = sink_factory("--reject-spam", "100", "--pipelining")
    rc, out = swaks("127.0.0.1", s.port, "--pipeline", "--body",
                    "X-Swarm-Truth: ham\nhello\n")
    assert rc == 0, out
    rc, out = swaks("127.0.0.1", s.port, "--add-header",
                    "X-Swarm-Truth: spam", "--add-header",
                    "X-Swarm-Population: zombie")
    assert rc != 0 and "550 5.7.1" in out, out
    st = s.stats()
    assert st["ham"]["received"] == 1 and st["spam"]["rejected"] == 1
    assert st["by_population"]["zombie"]["spam"]["rejected"] == 1


def test_behind_mailshaper(sink_factory):
    """mailshaper relays ham; XCLIENT tells the backend the real client"""
    binary = os.path.join(BUILD, "mailshaper")
    if not os.path.exists(binary):
        pytest.skip("%s not built" % binary)
    from daemon import Daemon
    s = sink_factory("--xclient", "--pipelining", "--reject-spam", "100")
    with Daemon(backend=("127.0.0.1", s.port)) as d:
        c = RawSmtp("127.0.0.1", d.port, source="127.0.0.9")
        c.expect(220)
        c.send(b"EHLO client.test\r\n")
        c.expect(250)
        assert send_one(c, message("ham", "legit")) == 250
        code = send_one(c, message("spam", "zombie"))
        assert code == 550
        c.send(b"QUIT\r\n")
        c.expect(221)
    st = s.stats()
    assert st["ham"]["accepted"] == 1 and st["spam"]["rejected"] == 1
    assert st["by_population"]["legit"]["via_xclient"] == 1
    assert st["server"]["xclient"] >= 1
