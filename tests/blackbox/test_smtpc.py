"""test_smtpc.py - the swarm's SMTP client engine (src/swarm/smtpc.c) over
kernel sockets

The engine is driven by tests/blackbox/smtpc_drv.c, compiled here against
$MAILSHAPER_BUILD/libmailshaper.a (with ASan+UBSan when that library was
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
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon import Daemon  # noqa: E402
from peers import free_port  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("MAILSHAPER_BUILD", os.path.join(REPO, "build"))
PKGS = "libevent libevent_openssl libevent_pthreads openssl libpcap sqlite3 hiredis"


def build(src, tmp, name):
    """build - compile a driver against this build's library"""
    lib = os.path.join(BUILD, "libmailshaper.a")
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
                    lib] + flags + ["-lpthread", "-lm"], check=True)
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
