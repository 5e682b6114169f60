"""test_smtpc.py - the swarm's SMTP client engine (src/swarm/smtpc.c) over
kernel sockets

The engine is driven by tests/blackbox/smtpc_drv.c, compiled here against
$MAILSHAPER_BUILD/libswarm.a and libmscommon.a (with ASan+UBSan when that library was
built with them): it runs N sessions at once, each over a socket
bufferevent, and prints one JSON line per session and a summary.  The
server is the project's counting backend (tests/blackbox/countsink_drv.c,
built the same way), alone or behind build/mailshaper.  Each case says
what it runs and what it expects:

  truth reaches the backend  6 sessions x 4 messages, spam and ham
                             alternating, --reject-spam 100: every ham is
                             delivered, every spam rejected with 550 after
                             the dot; the backend counts 12 + 12 by truth
                             under the population we labelled
  pipelining                 the backend offers PIPELINING: the sessions
                             use it, 2 recipients each, all delivered
  pregreet                   EHLO before the banner: still delivered
  big body, dot-stuffing     100 kB messages with dot lines: delivered,
                             marker found, no conflicting markers
  mailshaper, patience 1 s   a class with banner_delay=3s: every session
                             gives up at ~1 s (RST) waiting for the banner;
                             nothing reaches the backend
  mailshaper, patience rfc   the same class: banner after ~3 s, delivered;
                             the backend counts the messages
  nobody listening           connection refused: abandoned at connect

STARTTLS (--starttls; certificates from the driver's --tlsgen, i.e.
src/swarm/tlsgen.c):
  mailshaper, starttls 1/0   tls_cert_file set: with --starttls every
                             session ran TLS (result tls, the daemon's
                             session records say tls=true, its log "TLS
                             established"), pipelined after the new EHLO,
                             all delivered; without, tls=false everywhere
  Postfix smtpd, starttls 1/0  smtpd_tls_security_level=may: with
                             --starttls Postfix logs ehlo=2 starttls=1
                             for the session and its Received: says
                             ESMTPS; without, ehlo=1 and ESMTP
  not offered                the backend has no STARTTLS: plaintext, all
                             delivered
  454 / 502 to STARTTLS      a fake server: STARTTLS went alone, then the
                             transaction went on in plaintext, delivered
  garbage after 220          a fake server answers 220 and sends garbage
                             (after the ClientHello, or in the 220's own
                             packet): end "tls", the message abandoned at
                             stage "tls", no crash, no MAIL sent
  silent after 220           patience 1 s covers the handshake: end
                             "patience" at stage "tls" after ~1 s
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon import Daemon  # noqa: E402
from peers import POSTFIX, PostfixSmtpd, free_port, is_root, need  # noqa

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("MAILSHAPER_BUILD", os.path.join(REPO, "build"))
PKGS = "libevent libevent_openssl libevent_pthreads openssl libpcap sqlite3 hiredis"


def build(src, tmp, name):
    """build - compile a driver against this build's library"""
    lib = os.path.join(BUILD, "libswarm.a")
    if not os.path.exists(lib):
        pytest.skip("%s not built (run make)" % lib)
    out = os.path.join(tmp, name)
    flags = subprocess.run(["pkg-config", "--cflags", "--libs"] + PKGS.split(),
                           capture_output=True, text=True, check=True).stdout.split()
    nm = subprocess.run(["nm", lib], capture_output=True, text=True).stdout
    san = ["-fsanitize=address,undefined"] if "__asan_report" in nm else []
    subprocess.run(["cc", "-std=c11", "-D_GNU_SOURCE", "-g", "-Wall", "-Wextra",
                    "-Werror", "-I" + os.path.join(REPO, "src")] + san +
                   ["-o", out, os.path.join(REPO, "tests/blackbox", src),
                    lib, os.path.join(BUILD, "libmscommon.a")] + flags +
                    ["-lpthread", "-lm"], check=True)
    return out


@pytest.fixture(scope="module")
def bins():
    """(smtpc_drv, countsink_drv), built against this build's library"""
    d = tempfile.mkdtemp(prefix="smtpc_drv.")
    yield build("smtpc_drv.c", d, "smtpc_drv"), \
        build("countsink_drv.c", d, "countsink_drv")
    shutil.rmtree(d, ignore_errors=True)


class Sink:
    """one countsink_drv on 127.0.0.1:<free port>, with a stats file"""

    def __init__(self, drv, *args):
        self.dir = tempfile.mkdtemp(prefix="countsink.")
        self.port = free_port()
        self.stats_path = os.path.join(self.dir, "stats.json")
        self.errlog = os.path.join(self.dir, "stderr.log")
        self._err = open(self.errlog, "w")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        self.proc = subprocess.Popen(
            [drv, "-l", "127.0.0.1:%d" % self.port, "--hostname", "sink.test",
             "--stats", self.stats_path, "--stats-interval", "0"] + list(args),
            stdout=subprocess.DEVNULL, stderr=self._err, env=env)
        end = time.monotonic() + 10
        while "ready:" not in self.log():
            if self.proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError("countsink did not start:\n" + self.log())
            time.sleep(0.02)

    def log(self):
        with open(self.errlog, errors="replace") as f:
            return f.read()

    def stats(self):
        """stats - SIGUSR1, then the rewritten file"""
        if os.path.exists(self.stats_path):
            os.unlink(self.stats_path)
        self.proc.send_signal(signal.SIGUSR1)
        end = time.monotonic() + 5
        while not os.path.exists(self.stats_path):
            assert time.monotonic() < end, "no stats after SIGUSR1"
            time.sleep(0.02)
        with open(self.stats_path) as f:
            return json.load(f)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=15)
        self._err.close()
        assert self.proc.returncode == 0, self.log()
        assert "ERROR: AddressSanitizer" not in self.log()
        assert "runtime error:" not in self.log()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def sink(bins):
    sinks = []

    def make(*args):
        s = Sink(bins[1], *args)
        sinks.append(s)
        return s
    yield make
    for s in sinks:
        s.stop()


def run(drv, port, *args, timeout=60):
    """run - the driver against 127.0.0.1:port; (sessions, summary)"""
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    p = subprocess.run([drv, "-c", "127.0.0.1:%d" % port] + list(args),
                       capture_output=True, text=True, timeout=timeout, env=env)
    assert p.returncode == 0, p.stderr
    assert "ERROR: AddressSanitizer" not in p.stderr, p.stderr
    assert "runtime error:" not in p.stderr, p.stderr
    lines = [json.loads(x) for x in p.stdout.splitlines()]
    assert "summary" in lines[-1], p.stdout
    sessions = sorted(lines[:-1], key=lambda r: r["session"])
    return sessions, lines[-1]["summary"]


def test_truth_reaches_backend(bins, sink):
    s = sink("--reject-spam", "100")
    sessions, summary = run(bins[0], s.port, "-n", "6", "-m", "4",
                            "--truth", "mix", "--pop", "mixpop")
    assert len(sessions) == 6
    for r in sessions:
        assert r["end"] == "quit", r
        assert 0 <= r["banner_s"] < 2
        assert r["giveup_s"] == -1
        outs = [(m["outcome"], m["code"], m["stage"]) for m in r["msgs"]]
        # message 0, 2 are spam, 1, 3 ham (--truth mix)
        assert outs == [("rejected", 550, "dot"), ("delivered", 250, "dot")] * 2
        assert r["last_code"] == 221
    assert summary["delivered"] == 12 and summary["rejected"] == 12
    st = s.stats()
    assert st["ham"]["accepted"] == 12 and st["spam"]["rejected"] == 12
    pop = st["by_population"]["mixpop"]
    assert pop["ham"]["received"] == 12 and pop["spam"]["received"] == 12
    assert st["server"]["conflicting_markers"] == 0


def test_pipelining(bins, sink):
    s = sink("--pipelining", "--reject-spam", "0")
    sessions, summary = run(bins[0], s.port, "-n", "4", "-m", "3", "-r", "2",
                            "--pipelining", "--truth", "ham", "--pop", "pl")
    assert summary["delivered"] == 12
    for r in sessions:
        assert r["pipelined"] is True
        assert all(m["rcpt_ok"] == 2 for m in r["msgs"])
    assert s.stats()["by_population"]["pl"]["ham"]["accepted"] == 12


def test_pregreet_and_big_body(bins, sink):
    s = sink("--reject-spam", "0")
    sessions, summary = run(bins[0], s.port, "-n", "3", "--pregreet",
                            "--helo", "random", "--size", "100000",
                            "--truth", "spam", "--pop", "pg")
    assert summary["delivered"] == 3, sessions
    st = s.stats()
    assert st["spam"]["accepted"] == 3
    assert st["server"]["conflicting_markers"] == 0
    assert st["by_population"]["pg"]["spam"]["received"] == 3


def test_connection_refused(bins):
    port = free_port()
    sessions, summary = run(bins[0], port, "-n", "2")
    assert summary["abandoned"] == 2
    for r in sessions:
        assert r["connected"] is False
        assert r["end"] == "reset"
        assert r["msgs"][0]["stage"] == "connect"


SLOW = "class_slow = banner_delay=3s reply_delay=0 action=relay\n"


def slow_daemon(sink_port):
    return Daemon(backend=("127.0.0.1", sink_port), config_text=SLOW,
                  default_class="slow", violation_class="", grace_time="2s")


def test_mailshaper_impatient_bots_give_up(bins, sink):
    s = sink("--xclient", "--reject-spam", "0")
    with slow_daemon(s.port) as d:
        t0 = time.monotonic()
        sessions, summary = run(bins[0], d.port, "-n", "5",
                                "--patience", "1000", "--truth", "spam",
                                "--pop", "zombie")
        took = time.monotonic() - t0
    assert summary["abandoned"] == 5, sessions
    assert took < 2.9, took
    for r in sessions:
        assert r["end"] == "patience"
        assert r["banner_s"] == -1
        assert r["last_stage"] == "greeting"
        assert 0.95 <= r["giveup_s"] < 1.5, r
        assert 0.95 <= r["waited_s"] < 1.5, r
        m = r["msgs"][0]
        assert m["outcome"] == "abandoned" and m["stage"] == "greeting"
        assert 0.95 <= m["giveup_s"] < 1.5
    st = s.stats()
    for truth in ("spam", "ham", "unknown"):
        assert st[truth]["received"] == 0
    assert "zombie" not in st["by_population"]


def test_mailshaper_rfc_patience_delivers(bins, sink):
    s = sink("--xclient", "--reject-spam", "0")
    with slow_daemon(s.port) as d:
        sessions, summary = run(bins[0], d.port, "-n", "3", "-m", "2",
                                "--patience", "rfc", "--truth", "ham",
                                "--pop", "legit")
    assert summary["delivered"] == 6, sessions
    for r in sessions:
        assert r["end"] == "quit"
        assert 2.9 <= r["banner_s"] < 5, r
        # the wait beyond the 200 ms baseline, almost all of it the banner
        assert 2.6 <= r["added_delay_s"] < 5, r
        assert r["msgs"][0]["added_delay_s"] >= 2.6
    st = s.stats()
    assert st["ham"]["accepted"] == 6
    assert st["by_population"]["legit"]["via_xclient"] == 6


# ---------------------------------------------------------------- STARTTLS

@pytest.fixture
def cert(bins):
    """(cert, key) for mx.mailshaper.test, made by src/swarm/tlsgen.c"""
    d = tempfile.mkdtemp(prefix="smtpc-tls.")
    os.chmod(d, 0o755)
    crt, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    p = subprocess.run([bins[0], "--tlsgen", crt, key, "mx.mailshaper.test"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert os.stat(key).st_mode & 0o777 == 0o600
    yield crt, key
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("starttls", [True, False])
def test_mailshaper_starttls(bins, sink, cert, starttls):
    s = sink("--xclient", "--reject-spam", "0")
    crt, key = cert
    with Daemon(backend=("127.0.0.1", s.port), tls_cert_file=crt,
                tls_key_file=key, violation_class="", grace_time="2s") as d:
        sessions, summary = run(bins[0], d.port, "-n", "3", "-m", "2",
                                "-r", "2", "--pipelining", "--truth", "ham",
                                "--pop", "tls", *(["--starttls"] if starttls
                                                  else []))
        d.stop()
        recs = d.events("session")
        log = d.log()
    assert summary["delivered"] == 6, sessions
    for r in sessions:
        assert r["end"] == "quit", r
        assert r["tls"] is starttls, r
        assert r["esmtp"] is True
        assert r["pipelined"] is True       # the (post-TLS) EHLO offers it
        assert all(m["rcpt_ok"] == 2 for m in r["msgs"])
        assert r["last_code"] == 221
    assert len(recs) == 3
    assert all(x["tls"] is starttls for x in recs), recs
    assert ("TLS established" in log) == starttls
    st = s.stats()
    assert st["by_population"]["tls"]["ham"]["accepted"] == 6


@pytest.mark.parametrize("starttls", [True, False])
def test_postfix_starttls(bins, cert, starttls):
    need(POSTFIX)
    if not is_root():
        pytest.skip("real Postfix needs root")
    crt, key = cert
    main = {"smtpd_tls_security_level": "may", "smtpd_tls_cert_file": crt,
            "smtpd_tls_key_file": key}
    with PostfixSmtpd(mode="plain", main=main) as pf:
        sessions, summary = run(bins[0], pf.port, "--pipelining",
                                "--truth", "ham",
                                *(["--starttls"] if starttls else []))
        (m,) = pf.wait_messages(1)
        end = time.time() + 5
        while "mail=1" not in pf.log() and time.time() < end:
            time.sleep(0.05)
        log = pf.log()
    assert summary["delivered"] == 1, sessions
    (r,) = sessions
    assert r["end"] == "quit" and r["tls"] is starttls, r
    assert r["pipelined"] is True
    # Postfix's Received: says "with ESMTPS" for a TLS session
    assert ("with ESMTPS" in (m.received or "")) == starttls, m.received
    assert "with ESMTP" in (m.received or ""), m.received
    # Postfix's per-session summary: EHLO twice around STARTTLS, or once
    want = (r"ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1" if starttls
            else r"ehlo=1 mail=1 rcpt=1 data=1 quit=1")
    assert re.search(r"disconnect from \S+ " + want + " commands=", log), \
        log[-2000:]


def test_starttls_not_offered(bins, sink):
    """The counting backend offers no STARTTLS: plaintext, delivered."""
    s = sink("--reject-spam", "0")
    sessions, summary = run(bins[0], s.port, "-n", "2", "--starttls",
                            "--truth", "ham")
    assert summary["delivered"] == 2, sessions
    for r in sessions:
        assert r["end"] == "quit" and r["tls"] is False and r["esmtp"], r


class FakeServer:
    """One-connection scripted SMTP server on 127.0.0.1 for bad paths.

    script(conn, fake) runs in a thread with the accepted socket; it uses
    fake.line(conn) to read a command line and appends what it saw to
    fake.seen.  Exceptions end up in fake.error, checked by join()."""

    def __init__(self, script):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.script = script
        self.seen = []
        self.extra = {}     # command -> bytes that came in its packet
        self.error = None
        self.buf = b""
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            conn, _ = self.sock.accept()
            conn.settimeout(10)
            with conn:
                self.script(conn, self)
        except Exception as e:  # reported by join()
            self.error = e

    def line(self, conn):
        """line - the next CRLF line, b"" at EOF"""
        while b"\r\n" not in self.buf:
            data = conn.recv(65536)
            if not data:
                return b""
            self.buf += data
        ln, self.buf = self.buf.split(b"\r\n", 1)
        self.seen.append(ln)
        return ln

    def join(self):
        self.thread.join(20)
        self.sock.close()
        assert not self.thread.is_alive()
        assert self.error is None, repr(self.error)


EHLO_TLS = b"250-fake.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n"


def to_starttls(conn, f):
    """a fake server's dialogue up to the client's STARTTLS"""
    conn.sendall(b"220 fake.test ESMTP\r\n")
    assert f.line(conn).startswith(b"EHLO ")
    conn.sendall(EHLO_TLS)
    assert f.line(conn) == b"STARTTLS"


@pytest.mark.parametrize("refusal", [b"454 4.7.0 TLS not available",
                                     b"502 5.5.1 not now"])
def test_starttls_refused_goes_on_in_plaintext(bins, refusal):
    def script(conn, f):
        to_starttls(conn, f)
        time.sleep(0.2)         # anything pipelined behind it is here now
        f.extra["STARTTLS"] = f.buf
        conn.sendall(refusal + b"\r\n")
        while True:
            ln = f.line(conn)
            if ln == b"" or ln == b"QUIT":
                break
            if ln == b"DATA":
                conn.sendall(b"354 go\r\n")
                while f.line(conn) != b".":
                    pass
            conn.sendall(b"250 ok\r\n")
        conn.sendall(b"221 bye\r\n")

    fake = FakeServer(script)
    sessions, summary = run(bins[0], fake.port, "--starttls", "--pipelining",
                            timeout=30)
    fake.join()
    (r,) = sessions
    assert r["end"] == "quit", r
    assert r["tls"] is False
    assert r["msgs"][0]["outcome"] == "delivered", r
    assert fake.extra["STARTTLS"] == b""            # STARTTLS went alone
    cmds = [x.split(b":")[0].split(b" ")[0] for x in fake.seen
            if x[:4] in (b"EHLO", b"STAR", b"MAIL", b"RCPT", b"DATA",
                         b"QUIT")]
    assert cmds == [b"EHLO", b"STARTTLS", b"MAIL", b"RCPT", b"DATA",
                    b"QUIT"], fake.seen


GARBAGE = b"this is not a TLS record, just text\r\n" * 4


@pytest.mark.parametrize("when", ["after_hello", "with_220"])
def test_starttls_garbage_instead_of_handshake(bins, when):
    def script(conn, f):
        to_starttls(conn, f)
        if when == "with_220":
            conn.sendall(b"220 go ahead\r\n" + GARBAGE)
        else:
            conn.sendall(b"220 go ahead\r\n")
            hello = conn.recv(65536)
            assert hello[:1] == b"\x16", hello[:16]  # a TLS handshake record
            f.extra["hello"] = hello
            conn.sendall(GARBAGE)
        rest = b""
        while True:
            data = conn.recv(65536)
            if not data:
                break
            rest += data
        f.extra["rest"] = rest

    fake = FakeServer(script)
    sessions, summary = run(bins[0], fake.port, "--starttls", timeout=30)
    fake.join()
    (r,) = sessions
    assert r["end"] == "tls", r
    assert r["tls"] is False
    assert r["last_stage"] == "tls"
    m = r["msgs"][0]
    assert m["outcome"] == "abandoned" and m["stage"] == "tls", r
    assert summary["abandoned"] == 1
    # no SMTP command in clear after the 220; at most TLS records (the
    # ClientHello, an alert)
    assert b"MAIL" not in fake.extra["rest"] and b"QUIT" not in \
        fake.extra["rest"], fake.extra
    assert fake.extra["rest"][:1] in (b"", b"\x15", b"\x16"), fake.extra


def test_starttls_silent_handshake_patience(bins):
    """220 to STARTTLS, then nothing: the patience covers the handshake."""
    def script(conn, f):
        to_starttls(conn, f)
        conn.sendall(b"220 go ahead\r\n")
        try:
            while conn.recv(65536):
                pass
        except ConnectionResetError:
            pass

    fake = FakeServer(script)
    t0 = time.monotonic()
    sessions, summary = run(bins[0], fake.port, "--starttls",
                            "--patience", "1000", timeout=30)
    took = time.monotonic() - t0
    fake.join()
    (r,) = sessions
    assert r["end"] == "patience" and r["last_stage"] == "tls", r
    assert 0.95 <= r["waited_s"] < 1.5, r
    assert r["msgs"][0]["outcome"] == "abandoned"
    assert r["msgs"][0]["stage"] == "tls"
    assert took < 5
