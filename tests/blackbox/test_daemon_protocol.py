"""test_daemon_protocol.py - bad input gets the reply a careful MTA gives

Each test says what it sends and what it expects.  Sessions run in class
"fast" (no delays) unless the test needs a delay; violation_class is a
short class "vio" so a violation is visible without waiting 290 s.
After every test the daemon is stopped with SIGTERM and must exit 0
without a sanitizer report (Daemon.stop checks the latter).
"""

import os
import socket
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon import Daemon  # noqa: E402
from peers import SMTP_SINK, RawSmtp, SmtpSink, need  # noqa: E402

CLASSES = ("class_fast = banner_delay=0 reply_delay=0 action=relay\n"
           "class_slowbanner = banner_delay=2s reply_delay=0 action=relay\n"
           "class_slowreply = banner_delay=0 reply_delay=500ms action=relay\n"
           "class_vio = banner_delay=0 reply_delay=100ms action=relay\n")


def mkdaemon(backend, default_class="fast", **kw):
    kw.setdefault("violation_class", "vio")
    kw.setdefault("grace_time", "2s")
    return Daemon(backend=backend, config_text=CLASSES,
                  default_class=default_class, **kw)


@pytest.fixture
def sink():
    need(SMTP_SINK)
    with SmtpSink() as s:
        yield s


def stop_ok(d):
    d.stop()
    assert d.returncode == 0, d.log()[-2000:]


def hello(d, **kw):
    c = RawSmtp("127.0.0.1", d.port, **kw)
    c.expect(220)
    c.cmd("EHLO client.test", 250)
    return c


def test_overlong_command_line(sink):
    """"NOOP " + 2000 x's (> smtp_line_limit 1024) -> 500, then NOOP ->
    250: the session continues; the same for a long line sent in pieces.

    Pins a bug: errors below the error limit were not logged."""
    with mkdaemon(sink.address) as d:
        with hello(d) as c:
            code, text = c.cmd(b"NOOP " + b"x" * 2000)
            assert code == 500, text
            c.cmd("NOOP", 250)
            c.send(b"MAIL FROM:<" + b"y" * 1500)
            time.sleep(0.3)
            c.send(b"z" * 1500 + b">\r\n")
            code, text = c.cmd("NOOP")
            # the long line got exactly one 500, then NOOP its 250
            assert code == 500, text
            c.expect(250)
            c.cmd("QUIT", 221)
        stop_ok(d)
        assert "line too long" in d.log()
        (s,) = d.events("session")
        assert s["outcome"] == "completed"


def test_line_at_limit_accepted(sink):
    """A 1000-byte NOOP line (within 1024) is fine: 250."""
    with mkdaemon(sink.address) as d:
        with hello(d) as c:
            c.cmd(b"NOOP " + b"x" * 995, 250)
            c.cmd("QUIT", 221)
        stop_ok(d)


def test_binary_garbage(sink):
    """b"\\x01\\x02\\x7f\\x00garbage\\r\\n" -> 500 (bad characters); the
    session still works afterwards (NOOP 250)."""
    with mkdaemon(sink.address) as d:
        with hello(d) as c:
            code, text = c.cmd(b"\x01\x02\x7f\x00garbage")
            assert code == 500, text
            c.cmd("NOOP", 250)
            c.cmd("QUIT", 221)
        stop_ok(d)


def test_binary_flood_ends_in_421(sink):
    """64 KiB of random bytes with some line ends: only 5xx replies, then
    421 (too many errors) and close; the daemon keeps serving."""
    import random
    rnd = random.Random(7)
    blob = bytes(rnd.randrange(256) for _ in range(65536))
    with mkdaemon(sink.address, smtp_error_limit=5) as d:
        with RawSmtp("127.0.0.1", d.port) as c:
            c.expect(220)
            c.send(blob + b"\r\n" * 10)
            codes = []
            while True:
                try:
                    code, _ = c.reply(timeout=5)
                except Exception:
                    break
                codes.append(code)
                if code == 421:
                    break
            assert codes and codes[-1] == 421, codes
            assert all(x >= 500 for x in codes[:-1]), codes
        with hello(d) as c2:
            c2.cmd("QUIT", 221)
        stop_ok(d)


def test_unknown_commands_then_error_limit(sink):
    """smtp_error_limit=3: FOO -> 502, BAR -> 502, BAZ -> 421 and the
    connection closes; session outcome protocol_error."""
    with mkdaemon(sink.address, smtp_error_limit=3) as d:
        with hello(d) as c:
            assert c.cmd("FOO")[0] == 502
            assert c.cmd("BAR x y")[0] == 502
            code, text = c.cmd("BAZ")
            assert code == 421, text
            assert c.closed(2.0)
        stop_ok(d)
        (s,) = d.events("session")
        assert s["outcome"] == "protocol_error"
        assert s["gave_up_after_s"] is None
        assert "too many errors" in d.log()


def test_commands_before_ehlo(sink):
    """MAIL / RCPT / DATA before EHLO -> 503 each; then EHLO works."""
    with mkdaemon(sink.address) as d:
        with RawSmtp("127.0.0.1", d.port) as c:
            c.expect(220)
            assert c.cmd("MAIL FROM:<a@b.test>")[0] == 503
            assert c.cmd("RCPT TO:<a@b.test>")[0] == 503
            assert c.cmd("DATA")[0] == 503
            c.cmd("EHLO client.test", 250)
            c.cmd("MAIL FROM:<a@b.test>", 250)
            c.cmd("QUIT", 221)
        stop_ok(d)
        assert sink.message_count() == 0


def test_rcpt_before_mail(sink):
    """EHLO, RCPT -> 503; DATA -> 503; no backend message."""
    with mkdaemon(sink.address) as d:
        with hello(d) as c:
            assert c.cmd("RCPT TO:<b@example.test>")[0] == 503
            assert c.cmd("DATA")[0] == 503
            c.cmd("QUIT", 221)
        stop_ok(d)


def test_data_without_valid_rcpt():
    """MAIL ok, RCPT refused by the backend (550), DATA -> 554 or 503;
    nothing is delivered."""
    need(SMTP_SINK)
    with SmtpSink(reject_hard=["RCPT"]) as sink, \
            mkdaemon(sink.address) as d:
        with hello(d) as c:
            c.cmd("MAIL FROM:<a@client.test>", 250)
            assert c.cmd("RCPT TO:<b@example.test>")[0] == 500
            code, text = c.cmd("DATA")
            assert code in (554, 503), text
            c.cmd("QUIT", 221)
        stop_ok(d)
        assert sink.message_count() == 0


def test_mail_syntax_errors(sink):
    """MAIL FROM:a@b (no <>) -> 501; nested MAIL -> 503; RCPT TO:<> ->
    501; unknown MAIL parameter -> 555."""
    with mkdaemon(sink.address) as d:
        with hello(d) as c:
            assert c.cmd("MAIL FROM:a@b.test")[0] == 501
            assert c.cmd("MAIL FROM:<a@b.test> FOO=bar")[0] == 555
            c.cmd("MAIL FROM:<a@b.test>", 250)
            assert c.cmd("MAIL FROM:<a@b.test>")[0] == 503
            assert c.cmd("RCPT TO:<>")[0] == 501
            c.cmd("QUIT", 221)
        stop_ok(d)


def test_pregreet(sink):
    """Class slowbanner (banner_delay=2s): send EHLO at once, before the
    banner.  The banner still comes (after >=1.9 s), the pregreet bytes get
    no reply; the session record has violations >= 1, class "vio"
    (violation_class) and a reason that mentions pregreet."""
    with mkdaemon(sink.address, default_class="slowbanner") as d:
        with RawSmtp("127.0.0.1", d.port) as c:
            t0 = time.monotonic()
            c.send(b"EHLO early.test\r\n")
            c.expect(220, timeout=5)
            assert time.monotonic() - t0 >= 1.9
            # the early EHLO was discarded: nothing else is pending
            assert c.buf == b""
            assert not c.closed(0.5)
            c.cmd("EHLO client.test", 250)
            c.cmd("QUIT", 221)
        stop_ok(d)
        (s,) = d.events("session")
        assert s["violations"] >= 1
        assert s["class"] == "vio"
        assert any("pregreet" in r for r in s["reasons"]), s["reasons"]
        assert "violation: pregreet" in d.log()


def test_no_pregreet_for_patient_client(sink):
    """Control: a client that waits for the banner has no violation."""
    with mkdaemon(sink.address, default_class="slowbanner") as d:
        with RawSmtp("127.0.0.1", d.port) as c:
            c.expect(220, timeout=5)
            c.cmd("EHLO client.test", 250)
            c.cmd("QUIT", 221)
        stop_ok(d)
        (s,) = d.events("session")
        assert s["violations"] == 0
        assert s["class"] == "slowbanner"


def test_improper_pipelining(sink):
    """"EHLO x\\r\\nMAIL FROM:<a@b>\\r\\n" in one packet: both are answered
    (250, 250), and the log and session record show an improper
    pipelining violation (class -> vio)."""
    with mkdaemon(sink.address) as d:
        with RawSmtp("127.0.0.1", d.port) as c:
            c.expect(220)
            c.send(b"EHLO client.test\r\nMAIL FROM:<a@client.test>\r\n")
            c.expect(250)
            c.expect(250)
            c.cmd("QUIT", 221)
        stop_ok(d)
        assert "improper pipelining" in d.log()
        (s,) = d.events("session")
        assert s["violations"] >= 1
        assert any("pipelining" in r for r in s["reasons"]), s["reasons"]
        assert s["class"] == "vio"


def test_proper_pipelining_no_violation(sink):
    """MAIL, RCPT, DATA in one packet after EHLO is allowed (PIPELINING is
    offered): 250, 250, 354; no violation."""
    with mkdaemon(sink.address) as d:
        with hello(d) as c:
            c.send(b"MAIL FROM:<a@client.test>\r\nRCPT TO:<b@example.test>"
                   b"\r\nDATA\r\n")
            c.expect(250)
            c.expect(250)
            c.expect(354)
            c.send(b"Subject: p\r\n\r\nhi\r\n.\r\n")
            c.expect(250)
            c.cmd("QUIT", 221)
        sink.wait_messages(1)
        stop_ok(d)
        (s,) = d.events("session")
        assert s["violations"] == 0


def test_size_param_too_big(sink):
    """message_size_limit=1000: EHLO says SIZE 1000; MAIL FROM with
    SIZE=2000 -> 552, SIZE=500 -> 250."""
    with mkdaemon(sink.address, message_size_limit=1000) as d:
        with RawSmtp("127.0.0.1", d.port) as c:
            c.expect(220)
            feats = c.cmd("EHLO client.test", 250)
            assert "SIZE 1000" in feats
            code, text = c.cmd("MAIL FROM:<a@client.test> SIZE=2000")
            assert code == 552, text
            c.cmd("MAIL FROM:<a@client.test> SIZE=500", 250)
            c.cmd("QUIT", 221)
        stop_ok(d)


def test_data_larger_than_size(sink):
    """message_size_limit=1000, 5000 bytes of DATA -> 552 after the dot;
    the backend completes no message; record rejected; the session
    goes on and a small message is then delivered.

    Pins a bug: the backend transaction stayed open after the local 552,
    so the next MAIL got "503 nested MAIL command" from the backend."""
    with mkdaemon(sink.address, message_size_limit=1000) as d:
        with hello(d) as c:
            c.cmd("MAIL FROM:<a@client.test>", 250)
            c.cmd("RCPT TO:<b@example.test>", 250)
            c.cmd("DATA", 354)
            c.send(b"Subject: big\r\n\r\n" + (b"x" * 70 + b"\r\n") * 70 +
                   b".\r\n")
            code, text = c.reply()
            assert code == 552, text
            assert sink.message_count() == 0
            c.cmd("MAIL FROM:<a@client.test>", 250)
            c.cmd("RCPT TO:<b@example.test>", 250)
            c.cmd("DATA", 354)
            c.send(b"Subject: small\r\n\r\nok\r\n.\r\n")
            c.expect(250)
            c.cmd("QUIT", 221)
        msgs = sink.wait_messages(1)
        stop_ok(d)
        assert len(msgs) == 1 and msgs[0].header("Subject") == "small"
        recs = d.events("message")
        assert [m["outcome"] for m in recs] == ["rejected", "delivered"]


def test_silent_client_times_out(sink):
    """smtp_timeout=2s, the client never speaks after the banner -> 421
    (timeout) after ~2 s and close; outcome abandoned."""
    with mkdaemon(sink.address, smtp_timeout="2s") as d:
        with RawSmtp("127.0.0.1", d.port) as c:
            c.expect(220)
            t0 = time.monotonic()
            code, text = c.reply(timeout=6)
            dt = time.monotonic() - t0
            assert code == 421, text
            assert "timeout" in " ".join(text).lower()
            assert 1.8 <= dt <= 4.0, dt
            assert c.closed(2.0)
        stop_ok(d)
        (s,) = d.events("session")
        assert s["outcome"] == "abandoned"


def test_silent_client_mid_transaction_times_out(sink):
    """smtp_timeout=2s, silent after MAIL: 421, message record abandoned."""
    with mkdaemon(sink.address, smtp_timeout="2s") as d:
        with hello(d) as c:
            c.cmd("MAIL FROM:<a@client.test>", 250)
            code, text = c.reply(timeout=6)
            assert code == 421, text
        stop_ok(d)
        (m,) = d.events("message")
        assert m["outcome"] in ("abandoned", "protocol_error")


def test_half_close_after_ehlo_quit(sink):
    """Send "EHLO x\\r\\n", then "QUIT\\r\\n", then shutdown(SHUT_WR):
    250 and 221 still arrive; session outcome completed."""
    with mkdaemon(sink.address) as d:
        with RawSmtp("127.0.0.1", d.port) as c:
            c.expect(220)
            c.send(b"EHLO client.test\r\n")
            c.send(b"QUIT\r\n")
            c.sock.shutdown(socket.SHUT_WR)
            c.expect(250)
            c.expect(221)
            assert c.closed(2.0)
        stop_ok(d)
        (s,) = d.events("session")
        assert s["outcome"] == "completed"
        assert s["gave_up_after_s"] is None


def test_half_close_with_reply_delay(sink):
    """Class slowreply (reply_delay=500ms): "EHLO x\\r\\nQUIT\\r\\n" then
    SHUT_WR: the delayed 250 and the 221 still arrive (a half-close is
    not a hang-up); outcome completed.

    Pins a bug: EOF while a reply was held dropped the buffered QUIT."""
    with mkdaemon(sink.address, default_class="slowreply",
                  violation_class="") as d:
        with RawSmtp("127.0.0.1", d.port) as c:
            c.expect(220)
            c.send(b"EHLO client.test\r\nQUIT\r\n")
            c.sock.shutdown(socket.SHUT_WR)
            c.expect(250, timeout=5)
            c.expect(221, timeout=5)
        stop_ok(d)
        (s,) = d.events("session")
        assert s["outcome"] == "completed"


def test_half_close_without_quit(sink):
    """EHLO, wait for 250, then SHUT_WR without QUIT: the daemon closes;
    outcome abandoned, gave_up_after_s a number."""
    with mkdaemon(sink.address) as d:
        with hello(d) as c:
            c.sock.shutdown(socket.SHUT_WR)
            assert c.closed(3.0)
        stop_ok(d)
        (s,) = d.events("session")
        assert s["outcome"] == "abandoned"
        assert isinstance(s["gave_up_after_s"], (int, float))


def test_close_during_banner_delay(sink):
    """Class slowbanner: connect, close after 0.7 s (before the banner):
    session outcome abandoned; gave_up_after_s is a float close to 0.7."""
    with mkdaemon(sink.address, default_class="slowbanner") as d:
        c = RawSmtp("127.0.0.1", d.port)
        time.sleep(0.7)
        c.close()
        recs = d.wait_events("session", 1, timeout=3)
        stop_ok(d)
        (s,) = recs
        assert s["outcome"] == "abandoned"
        g = s["gave_up_after_s"]
        assert isinstance(g, float), g
        assert 0.5 <= g <= 1.5, g


def test_many_connections_one_address(sink):
    """max_connections_per_client=5: 300 connections from 127.0.0.9 held
    open: the first 5 get 220, the other 295 get 421 at once; the daemon
    then serves a new client (other address) and, once they are closed,
    127.0.0.9 again."""
    # The map pins the class: 295 refusals must not make the reputation
    # of 127.0.0.0/24 push the follow-up clients into a tarpit class.
    with mkdaemon(sink.address, max_connections_per_client=5,
                  client_class_map="127.0.0.0/8=fast") as d:
        conns = []
        try:
            for _ in range(300):
                conns.append(RawSmtp("127.0.0.1", d.port,
                                     source="127.0.0.9"))
            codes = [c.reply(timeout=10)[0] for c in conns]
            assert codes.count(220) == 5, codes
            assert codes.count(421) == 295, codes
            assert set(codes[:5]) == {220}, codes
        finally:
            for c in conns:
                c.close()
        with RawSmtp("127.0.0.1", d.port, source="127.0.0.10") as c:
            c.expect(220, timeout=5)
            c.cmd("QUIT", 221)
        time.sleep(0.3)
        with RawSmtp("127.0.0.1", d.port, source="127.0.0.9") as c:
            c.expect(220, timeout=5)
            c.cmd("QUIT", 221)
        stop_ok(d)
        refused = [s for s in d.events("session") if s["outcome"] ==
                   "refused"]
        assert len(refused) == 295
        assert "too many connections from your address" in d.log()


def test_vrfy_default_disabled(sink):
    """VRFY b@example.test -> 502 by default; EXPN -> 502."""
    with mkdaemon(sink.address) as d:
        with hello(d) as c:
            assert c.cmd("VRFY b@example.test")[0] == 502
            assert c.cmd("EXPN list")[0] == 502
            c.cmd("QUIT", 221)
        stop_ok(d)


def test_vrfy_enabled(sink):
    """vrfy_command=yes: EHLO lists VRFY; VRFY b@example.test -> 252."""
    with mkdaemon(sink.address, vrfy_command="yes") as d:
        with RawSmtp("127.0.0.1", d.port) as c:
            c.expect(220)
            feats = c.cmd("EHLO client.test", 250)
            assert "VRFY" in feats
            assert c.cmd("VRFY b@example.test")[0] == 252
            c.cmd("QUIT", 221)
        stop_ok(d)


def test_lf_only_commands_are_a_violation(sink):
    """Commands ended by bare LF work (250) but count as a violation."""
    with mkdaemon(sink.address) as d:
        with RawSmtp("127.0.0.1", d.port) as c:
            c.expect(220)
            c.send(b"EHLO client.test\n")
            c.expect(250)
            c.send(b"QUIT\n")
            c.expect(221)
        stop_ok(d)
        (s,) = d.events("session")
        assert s["violations"] >= 1
        assert any("bare LF" in r for r in s["reasons"]), s["reasons"]
