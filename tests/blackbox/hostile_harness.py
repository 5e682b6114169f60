"""hostile_harness.py - one daemon under attack and the checks after each
attack, shared by test_hostile_suite.py (smtp-sink behind) and
test_hostile_chunking.py (a real Postfix with CHUNKING behind)

  Hostile(backend)  the daemon with the suites' configuration (see
                    test_hostile_suite.py), its backend, admin API client,
                    hostile_patterns.Target and probes (RSS, fds, delivery)
  run_case(h, pat)  one pattern, then: a legitimate delivery, sessions,
                    backend connections and descriptors back, RSS back
  ASAN              the binary has AddressSanitizer (RSS checks skipped)

The daemon and backend belong to the Hostile object; stop() ends both and
removes their files.  It is an error to use a Hostile after stop().
"""

import os
import shutil
import subprocess
import tempfile
import time

import pytest

from daemon import BINARY, Daemon
from peers import PostfixSmtpd, SmtpSink, free_port
import hostile_patterns as hp

OPENSSL = "/usr/bin/openssl"
TOKEN = "hostile-token-0123456789"
SMTP_TIMEOUT = 2.0
TLS_TIMEOUT = 2.0
SIZE_LIMIT = 8 << 20
PER_CLIENT = 20
LEGIT_SRC = "127.0.0.1"
MIB = 1 << 20
RSS_SLACK = 2 * MIB


def is_asan():
    """is_asan - the daemon binary was built with AddressSanitizer"""
    with open(BINARY, "rb") as f:
        return b"__asan_init" in f.read()


ASAN = is_asan()


def rss_of(pid):
    """rss_of - VmRSS of pid in bytes"""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS for %d" % pid)


def fds_of(pid):
    """fds_of - open descriptors of pid"""
    return len(os.listdir("/proc/%d/fd" % pid))


def wait_for(pred, timeout, step=0.05):
    """wait_for - poll pred until true; the last value"""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= end:
            return v
        time.sleep(step)


class Hostile:
    """The module's daemon, its backend, its admin client and the Target.

    backend="sink": smtp-sink (no CHUNKING: BDAT is refused);
    backend="postfix": a private Postfix smtpd (CHUNKING, SIZE; every
    message held) that trusts XCLIENT.  backend_identity stays xclient in
    both, so no backend connection is pooled between sessions and
    mailshaper_backend_connections must come back to its level."""

    def __init__(self, backend="sink"):
        self.dir = tempfile.mkdtemp(prefix="ms-hostile-")
        os.chmod(self.dir, 0o755)
        self.crt = os.path.join(self.dir, "cert.pem")
        self.key = os.path.join(self.dir, "key.pem")
        r = subprocess.run([OPENSSL, "req", "-x509", "-newkey", "ec",
                            "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                            "-days", "1", "-subj", "/CN=mx.mailshaper.test",
                            "-keyout", self.key, "-out", self.crt],
                           capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr
        self.backend = backend
        if backend == "postfix":
            self.sink = PostfixSmtpd(mode="xclient", main={
                "message_size_limit": 64 << 20}).start()
        else:
            self.sink = SmtpSink().start()
        self.d = None
        self.crashes = []
        self.timings = []
        self.start()

    def start(self):
        self.admin_port = free_port()
        spool = os.path.join(self.dir, "spool%d" % len(self.crashes))
        os.makedirs(spool, exist_ok=True)
        self.d = Daemon(
            backend=self.sink.address,
            config_text="class_fast = banner_delay=0 reply_delay=0 "
                        "action=relay\n",
            default_class="fast", client_class_map="127.0.0.0/8=fast",
            violation_class="", grace_time="2s",
            smtp_timeout="%ds" % SMTP_TIMEOUT,
            tls_handshake_timeout="%ds" % TLS_TIMEOUT,
            min_data_rate="500", spool_memory="4m", spool_dir=spool,
            message_size_limit=str(SIZE_LIMIT),
            max_connections_per_client=str(PER_CLIENT),
            tls_cert_file=self.crt, tls_key_file=self.key,
            admin_listen="127.0.0.1:%d" % self.admin_port,
            admin_token=TOKEN)
        self.d.start()
        self.pid = self.d.proc.pid
        self.admin = hp.Admin("127.0.0.1", self.admin_port, TOKEN)
        self.t = hp.Target(
            "127.0.0.1", self.d.port, admin=self.admin, src="127.0.0.2",
            flood_src="127.0.0.3", smtp_timeout=SMTP_TIMEOUT,
            tls_timeout=TLS_TIMEOUT, size_limit=SIZE_LIMIT,
            per_client=PER_CLIENT, tls=True,
            rss=None if ASAN else self.rss, delivered=self.delivered,
            exclusive=True)
        # Warm-up: the first TLS handshake, first message and first metrics
        # allocate for good; they must not count against case one.
        for i in range(3):
            hp.legit_session(self.t, hp.marker("warmup"), src=LEGIT_SRC)
        c = hp.greet(self.t)
        hp.starttls(self.t, c)
        c.cmd("EHLO warm.tls", 250)
        c.cmd("QUIT", 221)
        c.close()
        self.settle()

    def alive(self):
        return self.d.proc is not None and self.d.proc.poll() is None

    def rss(self):
        return rss_of(self.pid)

    def metrics(self):
        try:
            return self.admin.metrics()
        except (OSError, RuntimeError):
            return {}

    def delivered(self, mark):
        """delivered - mark is in one of smtp-sink's complete dump files,
        or in one of Postfix's held queue files"""
        needle = mark.encode()
        if self.backend == "postfix":
            d = os.path.join(self.sink.queue_dir, "hold")
            if not os.path.isdir(d):
                return False
        else:
            d = self.sink.dump_dir
        for name in os.listdir(d):
            p = os.path.join(d, name)
            try:
                with open(p, "rb") as f:   # the mark is in the header
                    if needle in f.read(64 * 1024):
                        return True
            except OSError:
                continue
        return False

    def state(self):
        """state - sessions, backend connections, fds, RSS right now"""
        m = self.metrics()
        return {"sessions": m.get("mailshaper_sessions_live"),
                "backend": m.get("mailshaper_backend_connections"),
                "fds": fds_of(self.pid), "rss": rss_of(self.pid)}

    def settle(self, timeout=5):
        """settle - wait until no session is live; the state then"""
        wait_for(lambda: self.metrics().get("mailshaper_sessions_live") == 0,
                 timeout)
        time.sleep(0.1)
        return self.state()

    def restart_after_crash(self, name):
        """restart_after_crash - a fresh daemon (after a crash or a leak)"""
        self.crashes.append(name)
        try:
            self.d.stop()
        except AssertionError:
            pass
        self.d.cleanup()
        self.start()

    def stop(self):
        try:
            if self.d is not None:
                self.d.stop()
                self.d.cleanup()
        finally:
            self.sink.stop()
            shutil.rmtree(self.dir, ignore_errors=True)


def run_case(h, pat):
    """run_case - one attack pattern against h, then the checks (a), (c)
    and (b) of test_hostile_suite.py's docstring; pytest.fail() with every
    problem found.  A crash or a leak restarts h's daemon."""
    if not h.alive():
        h.restart_after_crash("(before %s)" % pat.name)
    before = h.settle()
    problems = []
    t0 = time.monotonic()
    try:
        pat.fn(h.t)
    except AssertionError as e:
        problems.append("pattern: %s" % e)
    except Exception as e:  # noqa: BLE001 - a client-side error is a finding
        problems.append("pattern raised %s: %s" % (type(e).__name__, e))
    took = time.monotonic() - t0

    time.sleep(0.05)
    if not h.alive():
        status, log = h.d.proc.poll(), h.d.log()[-3000:]
        h.restart_after_crash(pat.name)
        pytest.fail("%s: the daemon died (status %s) during the attack:\n"
                    "%s\n%s" % (pat.name, status, "\n".join(problems), log))

    # (a) a new session still gets 220 and delivers.
    mark = hp.marker("legit-" + pat.name)
    try:
        hp.legit_session(h.t, mark, src=LEGIT_SRC)
        if not wait_for(lambda: h.delivered(mark), 5):
            problems.append("(a) the legitimate message %s got 250 but is "
                            "not in the sink" % mark)
    except AssertionError as e:
        problems.append("(a) %s" % e)
    if not h.alive():
        status, log = h.d.proc.poll(), h.d.log()[-3000:]
        h.restart_after_crash(pat.name)
        pytest.fail("%s: the daemon died (status %s) after the attack:\n"
                    "%s\n%s" % (pat.name, status, "\n".join(problems), log))

    # (c) no session, backend connection or descriptor left behind.
    bound = 2 * SMTP_TIMEOUT + 5

    def back():
        s = h.state()
        ok = (s["sessions"] == 0 and s["backend"] is not None and
              s["backend"] <= before["backend"] and s["fds"] <= before["fds"])
        return s if ok else None
    leaked = False
    after = wait_for(back, bound, step=0.1)
    if after is None:
        s = h.state()
        problems.append(
            "(c) after %.0f s: sessions_live %s (want 0), backend_connections "
            "%s (before %s), fds %d (before %d)"
            % (bound, s["sessions"], s["backend"], before["backend"],
               s["fds"], before["fds"]))
        after = s
        leaked = True

    # (b) RSS back within 10% + 2 MiB.
    limit = before["rss"] * 1.10 + RSS_SLACK
    if ASAN:
        print("%s: RSS check skipped under ASan" % pat.name)
    else:
        rss = wait_for(lambda: (lambda r: r if r <= limit else None)(
            rss_of(h.pid)), 5, step=0.2)
        if rss is None:
            rss = rss_of(h.pid)
            problems.append("(b) RSS %.1f MiB after the case, %.1f MiB before"
                            " (limit %.1f MiB)" % (rss / MIB,
                                                   before["rss"] / MIB,
                                                   limit / MIB))
        after["rss"] = rss
    h.timings.append((pat.name, took, before["rss"] // 1024,
                      after["rss"] // 1024, before["fds"], after["fds"]))
    if leaked:
        # A leaked session or descriptor would fail every later case too.
        h.restart_after_crash(pat.name + " (leak)")
    if problems:
        pytest.fail("%s (%s):\n  %s" % (pat.name, pat.desc,
                                         "\n  ".join(problems)),
                    pytrace=False)
