"""test_daemon_lostmail.py - nothing is lost: a client sees 250 for a
message only when the backend said 250 for it

Each test drives one transaction with RawSmtp through the daemon to
smtp-sink and breaks the backend at one stage: not listening at all,
SIGKILLed after MAIL, after RCPT, during DATA (before the dot), while it
sits on the dot (-W .:N), a backend that drops the connection at the dot,
one that times out, one that refuses.  The client must get 4xx (451/421)
and never a 250 for the message; the message record says backend_error.
A backend refusal reaches the client as the backend's own text.
backend_max_connections=1 with two transactions: the second gets 451 4.3.2.
"""

import os
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon import Daemon  # noqa: E402
from peers import (SMTP_SINK, RawSmtp, SmtpError, SmtpSink,  # noqa: E402
                   free_port, need)

CLASS = "class_fast = banner_delay=0 reply_delay=0 action=relay\n"


def mkdaemon(backend, **kw):
    kw.setdefault("violation_class", "")
    kw.setdefault("grace_time", "2s")
    return Daemon(backend=backend, config_text=CLASS, default_class="fast",
                  **kw)


def finish(c, sent_data=False):
    """Send the rest of a transaction; return every (code, text) seen.

    Stops at the first 4xx/5xx or at the dot's reply."""
    seen = []
    steps = [] if sent_data else [b"RCPT TO:<b@example.test>", b"DATA"]
    for step in steps:
        try:
            code, text = c.cmd(step, timeout=5)
        except SmtpError as e:
            seen.append((0, str(e)))
            return seen
        seen.append((code, text))
        if code >= 400:
            return seen
    try:
        c.send(b"Subject: lost\r\n\r\nbody\r\n.\r\n")
        code, text = c.reply(timeout=5)
    except (SmtpError, OSError) as e:
        seen.append((0, str(e)))
        return seen
    seen.append((code, text))
    return seen


def assert_tempfail_no_250(seen):
    """The transaction ended in 451 or 421 (so no 250 for the dot)."""
    codes = [c for c, _ in seen]
    assert codes, seen
    assert codes[-1] in (421, 451), seen


def start_txn(port):
    c = RawSmtp("127.0.0.1", port)
    c.expect(220)
    c.cmd("EHLO client.test", 250)
    return c


def test_backend_down_at_start():
    """No listener at the backend port: MAIL -> 451; message record
    backend_error with reply null; session outcome backend_error.

    Pins a bug: QUIT overwrote the session outcome with "completed"."""
    port = free_port()
    with mkdaemon(("127.0.0.1", port)) as d:
        with start_txn(d.port) as c:
            code, text = c.cmd("MAIL FROM:<a@client.test>")
            assert code == 451, text
            c.cmd("QUIT", 221)
        d.stop()
        (m,) = d.events("message")
        assert m["outcome"] == "backend_error"
        assert m["stage"] == "mail"
        assert m["reply"] is None
        (s,) = d.events("session")
        assert s["outcome"] == "backend_error"
        assert "backend" in d.log()


def test_backend_down_then_up_recovers():
    """Backend down -> 451; a backend that comes up later is used by the
    next MAIL in the same session (250), and the message is delivered."""
    need(SMTP_SINK)
    port = free_port()
    with mkdaemon(("127.0.0.1", port)) as d:
        with start_txn(d.port) as c:
            c.cmd("MAIL FROM:<a@client.test>", 451)
            with SmtpSink(port=port) as sink:
                c.cmd("MAIL FROM:<a@client.test>", 250)
                seen = finish(c)
                assert seen[-1][0] == 250, seen
                c.cmd("QUIT", 221)
                sink.wait_messages(1)
        d.stop()
        outcomes = [m["outcome"] for m in d.events("message")]
        assert outcomes == ["backend_error", "delivered"]


def test_kill_after_mail():
    """MAIL -> 250 from the backend; SIGKILL the backend; RCPT (or the
    rest) must end in 451/421, never 250 for the message.

    Pins a bug: a backend that died while its connection was idle was
    never noticed; the next command waited forever for a reply."""
    need(SMTP_SINK)
    with SmtpSink() as sink, mkdaemon(sink.address) as d:
        with start_txn(d.port) as c:
            c.cmd("MAIL FROM:<a@client.test>", 250)
            sink.kill()
            seen = finish(c)
            assert_tempfail_no_250(seen)
            assert seen[0][0] in (421, 451), seen  # the RCPT itself
        d.stop()
        (m,) = d.events("message")
        assert m["outcome"] == "backend_error"
        assert m["reply"] is None


def test_kill_after_rcpt():
    """MAIL, RCPT -> 250 from the backend; kill it; DATA/dot -> 4xx."""
    need(SMTP_SINK)
    with SmtpSink() as sink, mkdaemon(sink.address) as d:
        with start_txn(d.port) as c:
            c.cmd("MAIL FROM:<a@client.test>", 250)
            c.cmd("RCPT TO:<b@example.test>", 250)
            sink.kill()
            seen = []
            code, text = c.cmd("DATA", timeout=5)
            seen.append((code, text))
            if code == 354:
                seen += finish(c, sent_data=True)
            assert seen[-1][0] in (421, 451), seen
            assert 250 not in [x for x, _ in seen], seen
        d.stop()
        (m,) = d.events("message")
        assert m["outcome"] == "backend_error"
        assert m["stage"] in ("rcpt", "data", "dot")


def test_kill_during_data():
    """After 354 and half the body, kill the backend, send the rest and
    the dot: 451/421, never 250; nothing was completed at the backend."""
    need(SMTP_SINK)
    with SmtpSink() as sink, mkdaemon(sink.address) as d:
        with start_txn(d.port) as c:
            c.cmd("MAIL FROM:<a@client.test>", 250)
            c.cmd("RCPT TO:<b@example.test>", 250)
            c.cmd("DATA", 354)
            c.send(b"Subject: half\r\n\r\nfirst half\r\n")
            time.sleep(0.2)
            count = sink.message_count()
            sink.kill()
            c.send(b"second half\r\n.\r\n")
            code, text = c.reply(timeout=5)
            assert code in (421, 451), (code, text)
        assert count == 0
        d.stop()
        (m,) = d.events("message")
        assert m["outcome"] == "backend_error"
        assert m["reply"] is None


def test_kill_at_dot():
    """The backend waits 3 s before answering the dot (-W .:3); we kill
    it meanwhile: the client gets 451/421, not 250."""
    need(SMTP_SINK)
    with SmtpSink(delays={".": 3}) as sink, mkdaemon(sink.address) as d:
        with start_txn(d.port) as c:
            c.cmd("MAIL FROM:<a@client.test>", 250)
            c.cmd("RCPT TO:<b@example.test>", 250)
            c.cmd("DATA", 354)
            c.send(b"Subject: dot\r\n\r\nbody\r\n.\r\n")
            time.sleep(0.8)
            sink.kill()
            code, text = c.reply(timeout=5)
            assert code in (421, 451), (code, text)
        d.stop()
        (m,) = d.events("message")
        assert m["outcome"] == "backend_error"
        assert m["stage"] == "dot"
        assert m["reply"] is None


def test_backend_drops_at_dot():
    """smtp-sink -q .: the backend drops the connection instead of
    answering the dot: 451/421 to the client."""
    need(SMTP_SINK)
    with SmtpSink(disconnect=["."]) as sink, mkdaemon(sink.address) as d:
        with start_txn(d.port) as c:
            c.cmd("MAIL FROM:<a@client.test>", 250)
            seen = finish(c)
            assert_tempfail_no_250(seen)
        d.stop()
        (m,) = d.events("message")
        assert m["outcome"] == "backend_error"


def test_backend_421_on_rcpt():
    """smtp-sink -Q RCPT: the backend says 421 and hangs up: the client
    gets 4xx, no 250 afterwards, record backend_error or deferred.

    Pins a bug: the record said "abandoned"."""
    need(SMTP_SINK)
    with SmtpSink(disconnect_421=["RCPT"]) as sink, \
            mkdaemon(sink.address) as d:
        with start_txn(d.port) as c:
            c.cmd("MAIL FROM:<a@client.test>", 250)
            seen = finish(c)
            assert seen[-1][0] in (421, 451), seen
            assert 250 not in [x for x, _ in seen], seen
        d.stop()
        (m,) = d.events("message")
        assert m["outcome"] in ("backend_error", "deferred")


def test_backend_timeout_on_rcpt():
    """backend_timeout=1s, backend answers RCPT after 3 s: 451/421."""
    need(SMTP_SINK)
    with SmtpSink(delays={"RCPT": 3}) as sink, \
            mkdaemon(sink.address, backend_timeout="1s") as d:
        with start_txn(d.port) as c:
            c.cmd("MAIL FROM:<a@client.test>", 250)
            t0 = time.monotonic()
            code, text = c.cmd("RCPT TO:<b@example.test>", timeout=5)
            assert code in (421, 451), (code, text)
            assert time.monotonic() - t0 < 2.9
        d.stop()
        (m,) = d.events("message")
        assert m["outcome"] == "backend_error"


def test_backend_soft_reject_rcpt_text_relayed():
    """smtp-sink -r RCPT -b "450 4.2.0 <b@example.test>: busy backend":
    the client gets that exact reply line; no message."""
    need(SMTP_SINK)
    reply = "450 4.2.0 <b@example.test>: busy backend"
    with SmtpSink(reject_soft=["RCPT"], soft_reply=reply) as sink, \
            mkdaemon(sink.address) as d:
        with start_txn(d.port) as c:
            c.cmd("MAIL FROM:<a@client.test>", 250)
            code, text = c.cmd("RCPT TO:<b@example.test>")
            assert code == 450
            assert text == ["4.2.0 <b@example.test>: busy backend"]
            code, text = c.cmd("DATA")
            assert code in (503, 554), (code, text)
            c.cmd("QUIT", 221)
        d.stop()
        (m,) = d.events("message")
        assert m["rcpt"] == 1 and m["rcpt_accepted"] == 0
        assert m["outcome"] != "delivered"


def test_backend_hard_reject_rcpt_text_relayed():
    """smtp-sink -f RCPT -B "550 5.1.1 <b@example.test>: no such user":
    the client gets that exact reply."""
    need(SMTP_SINK)
    reply = "550 5.1.1 <b@example.test>: no such user here"
    with SmtpSink(reject_hard=["RCPT"], hard_reply=reply) as sink, \
            mkdaemon(sink.address) as d:
        with start_txn(d.port) as c:
            c.cmd("MAIL FROM:<a@client.test>", 250)
            code, text = c.cmd("RCPT TO:<b@example.test>")
            assert code == 550
            assert text == ["5.1.1 <b@example.test>: no such user here"]
            c.cmd("QUIT", 221)
        assert sink.message_count() == 0


def test_backend_rejects_dot_text_relayed():
    """smtp-sink -f . : the dot gets the backend's 5xx text, and the
    message record says rejected with that reply."""
    need(SMTP_SINK)
    reply = "554 5.7.1 content rejected by backend"
    with SmtpSink(reject_hard=["."], hard_reply=reply) as sink, \
            mkdaemon(sink.address) as d:
        with start_txn(d.port) as c:
            c.cmd("MAIL FROM:<a@client.test>", 250)
            seen = finish(c)
            assert seen[-1] == (554, ["5.7.1 content rejected by backend"])
            c.cmd("QUIT", 221)
        d.stop()
        (m,) = d.events("message")
        assert m["outcome"] == "rejected"
        assert m["reply"] == reply


def test_backend_max_connections():
    """backend_max_connections=1: client A holds the backend (MAIL 250);
    client B's MAIL waits for the connection instead of getting 451 at
    once; when A quits, B's MAIL gets it, its 250 and delivers.  Nothing
    is lost and nobody got a 4xx."""
    need(SMTP_SINK)
    with SmtpSink() as sink, \
            mkdaemon(sink.address, backend_max_connections=1) as d:
        with start_txn(d.port) as a, start_txn(d.port) as b:
            a.cmd("MAIL FROM:<a@client.test>", 250)
            b.send(b"MAIL FROM:<b@client.test>\r\n")
            with pytest.raises(SmtpError):
                b.reply(timeout=1)		# waiting, not refused
            seen = finish(a)
            assert seen[-1][0] == 250, seen
            a.cmd("QUIT", 221)
            b.expect(250, timeout=5)
            assert finish(b)[-1][0] == 250
            b.cmd("QUIT", 221)
        sink.wait_messages(2)
        d.stop()
        assert "waiting for a backend connection" in d.log()
        outcomes = sorted(m["outcome"] for m in d.events("message"))
        assert outcomes == ["delivered", "delivered"]


def test_backend_timeout_at_dot():
    """backend_timeout=1s (2 s after the end of data); the backend sits on
    the dot for 5 s: the client gets 451/421 before the backend answers."""
    need(SMTP_SINK)
    with SmtpSink(delays={".": 5}) as sink, \
            mkdaemon(sink.address, backend_timeout="1s") as d:
        with start_txn(d.port) as c:
            c.cmd("MAIL FROM:<a@client.test>", 250)
            c.cmd("RCPT TO:<b@example.test>", 250)
            c.cmd("DATA", 354)
            t0 = time.monotonic()
            c.send(b"Subject: slow\r\n\r\nbody\r\n.\r\n")
            code, text = c.reply(timeout=8)
            dt = time.monotonic() - t0
            assert code in (421, 451), (code, text)
            assert 0.9 <= dt < 4.5, dt
        d.stop()
        (m,) = d.events("message")
        assert m["outcome"] == "backend_error"
        assert m["stage"] == "dot"


def test_two_messages_and_rset_one_session():
    """One session: message 1 delivered; MAIL+RCPT then RSET (250); message
    2 delivered: the backend holds exactly the two complete messages and
    the records say delivered, abandoned, delivered."""
    need(SMTP_SINK)
    with SmtpSink() as sink, mkdaemon(sink.address) as d:
        with start_txn(d.port) as c:
            for subj in (b"one", b"-", b"two"):
                c.cmd("MAIL FROM:<a@client.test>", 250)
                c.cmd("RCPT TO:<b@example.test>", 250)
                if subj == b"-":
                    c.cmd("RSET", 250)
                    continue
                c.cmd("DATA", 354)
                c.send(b"Subject: " + subj + b"\r\n\r\nbody\r\n.\r\n")
                c.expect(250)
            c.cmd("QUIT", 221)
        msgs = sink.wait_messages(2)
        d.stop()
        assert sink.message_count() == 2
        assert sorted(m.header("Subject") for m in msgs) == ["one", "two"]
        assert [m["outcome"] for m in d.events("message")] == \
            ["delivered", "abandoned", "delivered"]
        (s,) = d.events("session")
        assert s["messages"] == 2 and s["outcome"] == "completed"


def test_cached_backend_connection_not_dirty():
    """backend_identity=none (backend connections may be reused): client
    1 gives MAIL+RCPT and hangs up mid-transaction; client 2 then sends a
    whole message: 250 at every step (no "503 nested MAIL" from a reused
    connection), and the backend holds only client 2's message."""
    need(SMTP_SINK)
    with SmtpSink() as sink, \
            mkdaemon(sink.address, backend_identity="none") as d:
        with start_txn(d.port) as c:
            c.cmd("MAIL FROM:<one@client.test>", 250)
            c.cmd("RCPT TO:<b@example.test>", 250)
        time.sleep(0.3)
        for i in range(2):
            with start_txn(d.port) as c:
                c.cmd("MAIL FROM:<two@client.test>", 250)
                seen = finish(c)
                assert seen[-1][0] == 250, seen
                c.cmd("QUIT", 221)
        msgs = sink.wait_messages(2)
        assert [m.mail_from for m in msgs] == ["two@client.test"] * 2


def test_cached_backend_connection_backend_died():
    """backend_identity=none: a message is delivered (its backend
    connection may be cached); the backend is killed and restarted on the
    same port; the next client's message gets 250 (a fresh connection) or
    451 - never a hang - and a 250 means the new backend has it."""
    need(SMTP_SINK)
    sink = SmtpSink().start()
    port = sink.port
    try:
        with mkdaemon(sink.address, backend_identity="none") as d:
            with start_txn(d.port) as c:
                c.cmd("MAIL FROM:<a@client.test>", 250)
                assert finish(c)[-1][0] == 250
                c.cmd("QUIT", 221)
            sink.kill()
            sink.stop()
            sink = SmtpSink(port=port).start()
            with start_txn(d.port) as c:
                code, text = c.cmd("MAIL FROM:<a@client.test>", timeout=5)
                assert code in (250, 451), (code, text)
                if code == 250:
                    seen = finish(c)
                    assert seen[-1][0] in (250, 451), seen
                    if seen[-1][0] == 250:
                        sink.wait_messages(1)
    finally:
        sink.stop()
