"""test_daemon_lifecycle.py - configuration check, signals, privileges and
the event log contract

  --check-config: a good file exits 0; malformed files exit non-zero with
    "file:line: reason" (unknown parameter, bad value, missing '=', bad
    class key, unknown class);
  SIGHUP: a changed default_class applies to new sessions, "reloaded" is
    logged; a broken file is refused with a warning, the old configuration
    stays and the daemon lives;
  SIGUSR1: after the event log is renamed, new records go to a new file at
    the original path;
  SIGTERM with a session mid-transaction and grace_time=2s: exits within
    ~3 s with status 0 and every record written;
  the event log reaches disk within 1 s while the daemon runs;
  user = nobody: the running daemon's uids are nobody's and it relays;
  the session and message record schema (keys and JSON types).
"""

import os
import pwd
import re
import signal
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon import Daemon, check_config  # noqa: E402
from peers import (SMTP_SINK, SWAKS, RawSmtp, SmtpSink, is_root,  # noqa
                   need, port_open, swaks)

CLASSES = ("class_fast = banner_delay=0 reply_delay=0 action=relay\n"
           "class_slow = banner_delay=1s reply_delay=0 action=relay\n")


def mkdaemon(backend, **kw):
    kw.setdefault("violation_class", "")
    kw.setdefault("grace_time", "2s")
    kw.setdefault("default_class", "fast")
    return Daemon(backend=backend, config_text=CLASSES, **kw)


@pytest.fixture
def sink():
    need(SMTP_SINK)
    with SmtpSink() as s:
        yield s


def wait_log(d, text, timeout=5.0):
    end = time.time() + timeout
    while time.time() < end:
        if text in d.log():
            return True
        time.sleep(0.05)
    return False


def edit_config(d, old, new):
    with open(d.config) as f:
        text = f.read()
    assert old in text
    with open(d.config, "w") as f:
        f.write(text.replace(old, new))


def session_class(d, helo, source=None):
    with RawSmtp("127.0.0.1", d.port, source=source) as c:
        c.expect(220, timeout=5)
        c.cmd("EHLO %s" % helo, 250)
        c.cmd("QUIT", 221)
    recs = [s for s in d.wait_events("session", 1 + len(d.events("session")),
                                     timeout=2)
            if s["helo"] == helo]
    end = time.time() + 3
    while not recs and time.time() < end:
        time.sleep(0.05)
        recs = [s for s in d.events("session") if s["helo"] == helo]
    assert recs, d.events("session")
    return recs[-1]["class"]


# ------------------------------------------------------------ check-config

GOOD = ("listen = 127.0.0.1:2525 [::1]:2525\n"
        "backend = 127.0.0.1:10025\n"
        "eventlog = /tmp/ms-check-config-test.jsonl\n"
        "# a comment\n"
        "client_class_map = 127.0.0.7/32=suspect, 10.0.0.0/8=trusted\n"
        "class_quick = banner_delay=500ms reply_delay=1s action=relay\n"
        "default_class = quick\n")


def test_check_config_good():
    """A valid file (lists, v6 listen, class map, custom class) -> 0."""
    rc, out, path = check_config(GOOD)
    assert rc == 0, out


@pytest.mark.parametrize("bad,line,why", [
    ("bogus_param = 1\n", 3, "unknown parameter"),
    ("max_connections = abc\n", 3, "not a non-negative number"),
    ("max_connections = 0\n", 3, ""),
    ("smtp_timeout = 5 fortnights\n", 3, ""),
    ("just some words\n", 3, "missing '='"),
    ("backend_identity = carrier-pigeon\n", 3, ""),
    ("class_x = banner_delay=2s frobnicate=1\n", 3, "frobnicate"),
    ("class_x = banner_delay=forever\n", 3, ""),
    ("observe = perhaps\n", 3, ""),
    ("listen = nowhere\n", 3, ""),
], ids=["unknown", "not-number", "below-min", "bad-unit", "no-equals",
        "bad-enum", "bad-class-key", "bad-class-value", "bad-bool",
        "bad-listen"])
def test_check_config_malformed(bad, line, why):
    """Line 3 is malformed -> non-zero exit and "FILE:3: reason"."""
    text = "listen = 127.0.0.1:2525\nbackend = 127.0.0.1:10025\n" + bad
    rc, out, path = check_config(text)
    assert rc != 0, out
    assert "%s:%d: " % (path, line) in out, out
    assert why in out, out


def test_check_config_unknown_default_class():
    """default_class naming no class -> non-zero with a file:line."""
    rc, out, path = check_config("listen = 127.0.0.1:2525\n"
                                 "default_class = nosuchclass\n")
    assert rc != 0, out
    assert path in out and "nosuchclass" in out, out


# ------------------------------------------------------------ signals

def test_sighup_reload_changes_default_class(sink):
    """default_class fast -> slow in the file, SIGHUP: "reloaded" in the
    log; a new session is in class slow (and its banner is delayed).

    Pins a bug (ASan): after a reload every log line read the syslog
    ident from the freed old configuration (heap-use-after-free)."""
    with mkdaemon(sink.address) as d:
        assert session_class(d, "before.test") == "fast"
        edit_config(d, "default_class = fast", "default_class = slow")
        d.signal(signal.SIGHUP)
        assert wait_log(d, "reloaded"), d.log()
        t0 = time.monotonic()
        assert session_class(d, "after.test") == "slow"
        assert time.monotonic() - t0 >= 0.9
        d.stop()
        assert d.returncode == 0


def test_sighup_broken_file_keeps_old_config(sink):
    """A malformed line then SIGHUP: a warning naming file:line, the daemon
    stays up with the old configuration (class fast), and a later good
    reload works."""
    with mkdaemon(sink.address) as d:
        edit_config(d, "default_class = fast",
                    "default_class = slow\nbogus_param = 1")
        d.signal(signal.SIGHUP)
        assert wait_log(d, "reload failed"), d.log()
        assert d.config in d.log().split("reload failed", 1)[1]
        time.sleep(0.2)
        assert d.proc.poll() is None
        assert session_class(d, "still.test") == "fast"
        edit_config(d, "bogus_param = 1", "")
        d.signal(signal.SIGHUP)
        assert wait_log(d, "reloaded"), d.log()
        assert session_class(d, "fixed.test") == "slow"
        d.stop()
        assert d.returncode == 0


def test_sigusr1_reopens_event_log(sink):
    """Rename events.jsonl to events.jsonl.1, SIGUSR1, new session: its
    record is in a new events.jsonl; the old file has only the first."""
    with mkdaemon(sink.address) as d:
        session_class(d, "first.test")
        old = d.eventlog + ".1"
        os.rename(d.eventlog, old)
        d.signal(signal.SIGUSR1)
        assert wait_log(d, "reopening"), d.log()
        time.sleep(0.2)
        session_class(d, "second.test")
        d.stop()
        new = [s["helo"] for s in d.events("session")]
        assert new == ["second.test"], new
        with open(old) as f:
            text = f.read()
        assert "first.test" in text and "second.test" not in text


def test_sigterm_grace_mid_transaction(sink):
    """MAIL accepted, then SIGTERM with grace_time=2s: the listener closes
    at once, the daemon exits in under ~3.5 s with status 0, and the
    session and message records are on disk."""
    with mkdaemon(sink.address) as d:
        c = RawSmtp("127.0.0.1", d.port)
        c.expect(220)
        c.cmd("EHLO client.test", 250)
        c.cmd("MAIL FROM:<a@client.test>", 250)
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        time.sleep(0.3)
        assert not port_open("127.0.0.1", d.port)
        d.proc.wait(timeout=6)
        dt = time.monotonic() - t0
        assert 1.8 <= dt <= 3.5, dt
        assert d.proc.returncode == 0
        c.close()
        d.stop()
        (s,) = d.events("session")
        assert s["helo"] == "client.test"
        (m,) = d.events("message")
        assert m["outcome"] in ("abandoned", "backend_error")
        assert m["stage"] == "mail"


def test_sigterm_grace_over_client_gets_421(sink):
    """A session still open when grace_time (2s) ends is told "421 4.3.2
    ... shutting down" before the close, not just dropped.

    Pins a bug: the 421 went to a socket bufferevent's frozen output
    buffer with evbuffer_write() and was never sent."""
    with mkdaemon(sink.address) as d:
        with RawSmtp("127.0.0.1", d.port) as c:
            c.expect(220)
            c.cmd("EHLO client.test", 250)
            c.cmd("MAIL FROM:<a@client.test>", 250)
            d.signal(signal.SIGTERM)
            d.proc.wait(timeout=6)
            code, text = c.reply(timeout=2)
            assert code == 421, text
        d.stop()
        assert d.returncode == 0


def test_sigterm_session_finishing_within_grace(sink):
    """A transaction that completes during the grace time is delivered
    (250), and the daemon exits as soon as the last session is gone."""
    with mkdaemon(sink.address, grace_time="10s") as d:
        with RawSmtp("127.0.0.1", d.port) as c:
            c.expect(220)
            c.cmd("EHLO client.test", 250)
            c.cmd("MAIL FROM:<a@client.test>", 250)
            d.signal(signal.SIGTERM)
            time.sleep(0.3)
            c.cmd("RCPT TO:<b@example.test>", 250)
            c.cmd("DATA", 354)
            c.send(b"Subject: g\r\n\r\nhi\r\n.\r\n")
            c.expect(250)
            t0 = time.monotonic()
            c.cmd("QUIT", 221)
        d.proc.wait(timeout=5)
        assert time.monotonic() - t0 < 2.0
        d.stop()
        assert d.returncode == 0
        (m,) = d.events("message")
        assert m["outcome"] == "delivered"
        assert sink.message_count() == 1


def test_eventlog_reaches_disk_within_1s(sink):
    """swaks delivers; 1.2 s later (daemon still running) the file holds
    the message and session records."""
    need(SWAKS)
    with mkdaemon(sink.address) as d:
        rc, out = swaks("127.0.0.1", d.port)
        assert rc == 0, out
        time.sleep(1.2)
        assert d.proc.poll() is None
        with open(d.eventlog) as f:
            text = f.read()
        assert '"type":"message"' in text.replace(" ", ""), text
        assert '"type":"session"' in text.replace(" ", ""), text
        assert len(d.events("message")) == 1


def test_user_nobody(sink):
    """user = nobody (started as root): after start the process's real,
    effective and saved uids are nobody's; a message is still relayed and
    recorded in the event log opened before the drop."""
    need(SWAKS)
    if not is_root():
        pytest.skip("needs root to drop privileges")
    nobody = pwd.getpwnam("nobody")
    with mkdaemon(sink.address, user="nobody") as d:
        assert wait_log(d, "running as nobody"), d.log()
        with open("/proc/%d/status" % d.proc.pid) as f:
            st = f.read()
        uids = re.search(r"^Uid:\s+(.*)$", st, re.M).group(1).split()
        assert all(int(u) == nobody.pw_uid for u in uids), uids
        gids = re.search(r"^Gid:\s+(.*)$", st, re.M).group(1).split()
        assert all(int(g) == nobody.pw_gid for g in gids), gids
        rc, out = swaks("127.0.0.1", d.port)
        assert rc == 0, out
        sink.wait_messages(1)
        d.stop()
        assert d.returncode == 0
        assert len(d.events("message")) == 1


# ------------------------------------------------------------ schema

RFC3339Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
SESSION_KEYS = {"type", "id", "start", "end", "client_ip", "client_port",
                "helo", "tls", "class", "reasons", "fp", "dnsbl",
                "messages", "outcome", "gave_up_after_s"}
MESSAGE_KEYS = {"type", "session", "id", "time", "mail_from", "rcpt",
                "rcpt_accepted", "size", "class", "outcome", "stage",
                "reply"}


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def check_session(s):
    assert SESSION_KEYS <= set(s), SESSION_KEYS - set(s)
    assert s["type"] == "session"
    assert isinstance(s["id"], str) and s["id"]
    assert RFC3339Z.match(s["start"]) and RFC3339Z.match(s["end"]), s
    assert s["start"] <= s["end"]
    assert isinstance(s["client_ip"], str)
    assert is_int(s["client_port"]) and 0 < s["client_port"] < 65536
    assert s["helo"] is None or isinstance(s["helo"], str)
    assert isinstance(s["tls"], bool)
    assert isinstance(s["class"], str)
    assert isinstance(s["reasons"], list)
    assert all(isinstance(r, str) for r in s["reasons"])
    assert s["fp"] is None or isinstance(s["fp"], dict)
    assert s["dnsbl"] is None
    assert is_int(s["messages"]) and s["messages"] >= 0
    assert s["outcome"] in ("completed", "abandoned", "protocol_error",
                            "refused", "backend_error")
    g = s["gave_up_after_s"]
    assert g is None or (isinstance(g, (int, float)) and
                         not isinstance(g, bool) and g >= 0)


def check_message(m):
    assert MESSAGE_KEYS <= set(m), MESSAGE_KEYS - set(m)
    assert m["type"] == "message"
    assert isinstance(m["session"], str) and isinstance(m["id"], str)
    assert RFC3339Z.match(m["time"]), m
    assert isinstance(m["mail_from"], str)
    for k in ("rcpt", "rcpt_accepted", "size"):
        assert is_int(m[k]) and m[k] >= 0, (k, m[k])
    assert m["rcpt_accepted"] <= m["rcpt"]
    assert isinstance(m["class"], str)
    assert m["outcome"] in ("delivered", "rejected", "deferred",
                            "abandoned", "protocol_error", "backend_error")
    assert m["stage"] in ("mail", "rcpt", "data", "dot")
    assert m["reply"] is None or isinstance(m["reply"], str)


def test_eventlog_schema(sink):
    """One delivered message (swaks), one abandoned transaction (MAIL then
    hang up), one null-sender message, and one session closed during the
    banner delay: every record has the fixed keys with the right types;
    ids match between message and session; gave_up_after_s is a number
    exactly for the sessions closed without QUIT."""
    need(SWAKS)
    with mkdaemon(sink.address,
                  client_class_map="127.0.0.7/32=slow") as d:
        rc, out = swaks("127.0.0.1", d.port)
        assert rc == 0, out
        with RawSmtp("127.0.0.1", d.port) as c:
            c.expect(220)
            c.cmd("EHLO abandon.test", 250)
            c.cmd("MAIL FROM:<>", 250)
        with RawSmtp("127.0.0.1", d.port, source="127.0.0.7"):
            time.sleep(0.3)
        time.sleep(0.3)
        d.stop()
        sessions = d.events("session")
        msgs = d.events("message")
        assert len(sessions) == 3 and len(msgs) == 2, (sessions, msgs)
        for s in sessions:
            check_session(s)
        for m in msgs:
            check_message(m)
        ids = {s["id"] for s in sessions}
        assert len(ids) == 3
        assert all(m["session"] in ids for m in msgs)
        by_helo = {s["helo"]: s for s in sessions}
        assert by_helo["client.test"]["outcome"] == "completed"
        assert by_helo["client.test"]["gave_up_after_s"] is None
        assert by_helo["client.test"]["messages"] == 1
        assert by_helo["abandon.test"]["outcome"] == "abandoned"
        assert isinstance(by_helo["abandon.test"]["gave_up_after_s"], float)
        banner = by_helo[None]
        assert banner["class"] == "slow" and banner["outcome"] == "abandoned"
        assert isinstance(banner["gave_up_after_s"], float)
        delivered = [m for m in msgs if m["outcome"] == "delivered"]
        assert len(delivered) == 1
        assert delivered[0]["stage"] == "dot"
        assert delivered[0]["reply"].startswith("250")
        assert delivered[0]["size"] > 0
        ab = [m for m in msgs if m["outcome"] == "abandoned"]
        assert len(ab) == 1 and ab[0]["mail_from"] == "" and \
            ab[0]["reply"] is None


def test_sighup_reprobes_backend():
    """backend = sink A (smtp-sink -8: no 8BITMIME): EHLO lacks 8BITMIME;
    change backend to sink B (with 8BITMIME), SIGHUP: after the new probe
    EHLO lists 8BITMIME and mail goes to B."""
    need(SMTP_SINK)
    with SmtpSink(eightbitmime=False) as a, SmtpSink() as b, \
            mkdaemon(a.address) as d:
        with RawSmtp("127.0.0.1", d.port) as c:
            c.expect(220)
            assert "8BITMIME" not in c.cmd("EHLO client.test", 250)
            c.cmd("QUIT", 221)
        edit_config(d, "backend = 127.0.0.1:%d" % a.port,
                    "backend = 127.0.0.1:%d" % b.port)
        n = d.log().count("probe ok")
        d.signal(signal.SIGHUP)
        end = time.time() + 5
        while d.log().count("probe ok") <= n and time.time() < end:
            time.sleep(0.05)
        assert d.log().count("probe ok") > n, d.log()
        with RawSmtp("127.0.0.1", d.port) as c:
            c.expect(220)
            assert "8BITMIME" in c.cmd("EHLO client.test", 250)
            c.cmd("MAIL FROM:<a@client.test>", 250)
            c.cmd("RCPT TO:<b@example.test>", 250)
            c.cmd("DATA", 354)
            c.send(b"Subject: r\r\n\r\nhi\r\n.\r\n")
            c.expect(250)
            c.cmd("QUIT", 221)
        b.wait_messages(1)
        assert a.message_count() == 0
