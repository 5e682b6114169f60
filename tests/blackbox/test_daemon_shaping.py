"""test_daemon_shaping.py - shaping classes do what they say, measured

Custom short classes (never the 290 s defaults):
  fast   no delay                    slow   banner_delay=2s
  stut   banner_delay=3s stutter=1 stutter_interval=100ms
  reply  reply_delay=1s              one    max_messages=1
  two    max_rcpt=2                  tf     reply_delay=1s action=tempfail
  rj     action=reject               hos    banner_delay=3s max_share=20
  rin    rate_in=1k                  st     session_time=1s
  pc     banner_delay=2s max_per_client=1
  rout   rate_out=64                 sr     reply_delay=2s stutter=4 (100ms)
  bs     backend_share=10
Each test says what it sends and what it measures.
"""

import os
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon import Daemon  # noqa: E402
from peers import SMTP_SINK, RawSmtp, SmtpError, SmtpSink, need  # noqa: E402

CLASSES = (
    "class_fast = banner_delay=0 reply_delay=0 action=relay\n"
    "class_slow = banner_delay=2s reply_delay=0 action=relay\n"
    "class_stut = banner_delay=3s stutter=1 stutter_interval=100ms\n"
    "class_reply = banner_delay=0 reply_delay=1s\n"
    "class_one = max_messages=1\n"
    "class_two = max_rcpt=2\n"
    "class_tf = reply_delay=1s action=tempfail\n"
    "class_rj = action=reject\n"
    "class_hos = banner_delay=3s max_share=20\n"
    "class_rin = rate_in=1k\n"
    "class_st = session_time=1s\n"
    "class_pc = banner_delay=2s max_per_client=1\n"
    "class_rout = rate_out=64\n"
    "class_sr = reply_delay=2s stutter=4 stutter_interval=100ms\n"
    "class_bs = backend_share=10\n"
)


def mkdaemon(backend, default_class="fast", **kw):
    """A daemon with class fast, the default class and the mapped ones
    (a configuration holds at most 16 classes, defaults included)."""
    kw.setdefault("violation_class", "")
    kw.setdefault("grace_time", "2s")
    want = {"fast", default_class}
    for entry in kw.get("client_class_map", "").split():
        want.add(entry.split("=", 1)[1])
    text = "".join(line + "\n" for line in CLASSES.splitlines()
                   if line.split(" = ")[0][len("class_"):] in want)
    return Daemon(backend=backend, config_text=text,
                  default_class=default_class, **kw)


@pytest.fixture
def sink():
    need(SMTP_SINK)
    with SmtpSink() as s:
        yield s


def timed(c, line, code):
    t0 = time.monotonic()
    c.cmd(line, code, timeout=10)
    return time.monotonic() - t0


def deliver(c, to=("b@example.test",)):
    c.cmd("MAIL FROM:<a@client.test>", 250)
    for r in to:
        c.cmd("RCPT TO:<%s>" % r, 250)
    c.cmd("DATA", 354)
    c.send(b"Subject: s\r\n\r\nhi\r\n.\r\n")
    c.expect(250, timeout=10)


def test_banner_delay(sink):
    """Class slow: the 220 arrives after >= 1.9 s (and < 3.5 s), in one
    piece (no stutter); EHLO afterwards is immediate."""
    with mkdaemon(sink.address, default_class="slow") as d:
        t0 = time.monotonic()
        with RawSmtp("127.0.0.1", d.port) as c:
            c.expect(220, timeout=5)
            dt = time.monotonic() - t0
            assert 1.9 <= dt < 3.5, dt
            assert timed(c, "EHLO client.test", 250) < 0.5
            c.cmd("QUIT", 221)
        d.stop()
        (s,) = d.events("session")
        assert s["class"] == "slow"


def test_stutter_banner(sink):
    """Class stut (banner_delay=3s, stutter=1, 100 ms): the banner comes
    in many small reads, the first well before 3 s, the last at ~3 s."""
    with mkdaemon(sink.address, default_class="stut") as d:
        with RawSmtp("127.0.0.1", d.port) as c:
            t0 = time.monotonic()
            reads = []
            data = b""
            c.sock.settimeout(6)
            while not data.endswith(b"\r\n"):
                chunk = c.sock.recv(4096)
                assert chunk, data
                reads.append((time.monotonic() - t0, len(chunk)))
                data += chunk
            assert data.startswith(b"220 ")
            assert len(reads) >= 10, reads
            assert max(n for _, n in reads) <= 4, reads
            assert reads[0][0] < 1.5, reads
            assert 2.6 <= reads[-1][0] <= 3.8, reads
            c.cmd("QUIT", 221)


def test_reply_delay_mail_rcpt(sink):
    """Class reply (reply_delay=1s): EHLO takes >= 0.9 s; the MAIL that
    opens a relayed transaction carries the delays of MAIL, RCPT, DATA and
    the end of data (4 s) before the backend connection is opened, and
    once the session holds it nothing is delayed: RCPT, DATA and the end
    of data answer at once.  The message is delivered."""
    with mkdaemon(sink.address, default_class="reply") as d:
        with RawSmtp("127.0.0.1", d.port) as c:
            c.expect(220)
            assert 0.9 <= timed(c, "EHLO client.test", 250) < 2.5
            assert 3.9 <= timed(c, "MAIL FROM:<a@client.test>", 250) < 6
            assert timed(c, "RCPT TO:<b@example.test>", 250) < 0.5
            assert timed(c, "DATA", 354) < 0.5
            t0 = time.monotonic()
            c.send(b"Subject: s\r\n\r\nhi\r\n.\r\n")
            c.expect(250, timeout=5)
            assert time.monotonic() - t0 < 0.5
            # The next transaction waits again, without a connection.
            assert 3.9 <= timed(c, "MAIL FROM:<a@client.test>", 250) < 6
            c.cmd("QUIT", 221)
        sink.wait_messages(1)


def test_backend_share(sink):
    """backend_max_connections=10, class bs (backend_share=10: one
    connection) for 127.0.0.40/29.  A bs client in a transaction holds the
    class's connection; a second bs client's MAIL waits (no reply) while a
    client of a full-share class gets its 250 at once; when the first one
    quits, the waiting MAIL gets the connection and its 250."""
    with mkdaemon(sink.address, backend_max_connections=10,
                  client_class_map="127.0.0.40/29=bs") as d:
        a = RawSmtp("127.0.0.1", d.port, source="127.0.0.41")
        b = RawSmtp("127.0.0.1", d.port, source="127.0.0.42")
        try:
            for c in (a, b):
                c.expect(220)
                c.cmd("EHLO client.test", 250)
            a.cmd("MAIL FROM:<a@client.test>", 250)
            b.send(b"MAIL FROM:<b@client.test>\r\n")
            with RawSmtp("127.0.0.1", d.port) as c:
                c.expect(220)
                c.cmd("EHLO client.test", 250)
                assert timed(c, "MAIL FROM:<c@client.test>", 250) < 1
                c.cmd("QUIT", 221)
            with pytest.raises(SmtpError):
                b.reply(timeout=1.5)	# still waiting
            a.cmd("QUIT", 221)
            t0 = time.monotonic()
            b.expect(250, timeout=5)
            assert time.monotonic() - t0 < 2
            b.cmd("RCPT TO:<x@example.test>", 250)
            b.cmd("QUIT", 221)
        finally:
            a.close()
            b.close()
        d.stop()
        assert "waiting for a backend connection (class bs)" in d.log()
        assert "backend connection after" in d.log()


def test_class_map_by_source(sink):
    """client_class_map 127.0.0.7/32=slow, default fast: from 127.0.0.7
    the banner takes >= 1.9 s and the record says class slow with a
    client_class_map reason; from 127.0.0.8 it is immediate, class fast
    (and its reasons do not mention the map)."""
    with mkdaemon(sink.address, client_class_map="127.0.0.7/32=slow") as d:
        t0 = time.monotonic()
        with RawSmtp("127.0.0.1", d.port, source="127.0.0.8") as c:
            c.expect(220)
            assert time.monotonic() - t0 < 0.5
            c.cmd("EHLO fast.test", 250)
            c.cmd("QUIT", 221)
        t0 = time.monotonic()
        with RawSmtp("127.0.0.1", d.port, source="127.0.0.7") as c:
            c.expect(220, timeout=5)
            assert time.monotonic() - t0 >= 1.9
            c.cmd("EHLO slow.test", 250)
            c.cmd("QUIT", 221)
        d.stop()
        recs = {s["helo"]: s for s in d.events("session")}
        assert recs["slow.test"]["class"] == "slow"
        assert any("client_class_map" in r
                   for r in recs["slow.test"]["reasons"])
        assert recs["fast.test"]["class"] == "fast"
        fr = recs["fast.test"]["reasons"]
        assert fr and not any("client_class_map" in r for r in fr), fr


def test_observe_no_delays_class_named(sink):
    """observe=yes, same map: from 127.0.0.7 the banner is immediate and
    a MAIL in class tf (tempfail) is relayed; the records still name the
    class that would have applied."""
    with mkdaemon(sink.address, observe="yes",
                  client_class_map="127.0.0.7/32=slow 127.0.0.12/32=tf") as d:
        t0 = time.monotonic()
        with RawSmtp("127.0.0.1", d.port, source="127.0.0.7") as c:
            c.expect(220)
            assert time.monotonic() - t0 < 0.5
            c.cmd("EHLO slow.test", 250)
            c.cmd("QUIT", 221)
        with RawSmtp("127.0.0.1", d.port, source="127.0.0.12") as c:
            c.expect(220)
            c.cmd("EHLO tf.test", 250)
            assert timed(c, "MAIL FROM:<a@client.test>", 250) < 0.5
            c.cmd("RCPT TO:<b@example.test>", 250)
            c.cmd("DATA", 354)
            c.send(b"Subject: s\r\n\r\nhi\r\n.\r\n")
            c.expect(250)
            c.cmd("QUIT", 221)
        sink.wait_messages(1)
        d.stop()
        recs = {s["helo"]: s for s in d.events("session")}
        assert recs["slow.test"]["class"] == "slow"
        assert recs["tf.test"]["class"] == "tf"
        (m,) = d.events("message")
        assert m["class"] == "tf" and m["outcome"] == "delivered"


def test_max_messages(sink):
    """Class one (max_messages=1): first message delivered; the second
    MAIL -> 452; only one message at the backend."""
    with mkdaemon(sink.address, default_class="one") as d:
        with RawSmtp("127.0.0.1", d.port) as c:
            c.expect(220)
            c.cmd("EHLO client.test", 250)
            deliver(c)
            code, text = c.cmd("MAIL FROM:<a@client.test>")
            assert code == 452, text
            c.cmd("QUIT", 221)
        sink.wait_messages(1)
        d.stop()
        assert sink.message_count() == 1


def test_max_rcpt(sink):
    """Class two (max_rcpt=2): RCPT 1 and 2 -> 250, RCPT 3 -> 452; the
    message goes to two recipients.

    Pins a bug: each accepted recipient was counted twice, so max_rcpt=2
    allowed only one."""
    with mkdaemon(sink.address, default_class="two") as d:
        with RawSmtp("127.0.0.1", d.port) as c:
            c.expect(220)
            c.cmd("EHLO client.test", 250)
            c.cmd("MAIL FROM:<a@client.test>", 250)
            c.cmd("RCPT TO:<r1@example.test>", 250)
            c.cmd("RCPT TO:<r2@example.test>", 250)
            code, text = c.cmd("RCPT TO:<r3@example.test>")
            assert code == 452, text
            c.cmd("DATA", 354)
            c.send(b"Subject: s\r\n\r\nhi\r\n.\r\n")
            c.expect(250)
            c.cmd("QUIT", 221)
        (m,) = sink.wait_messages(1)
        assert m.rcpt_to == ["r1@example.test", "r2@example.test"]


def test_rate_in(sink):
    """Class rin (rate_in=1k): a 5 KiB message takes >= 2.5 s to be
    accepted (the daemon reads at ~1 KiB/s; 1 s burst)."""
    with mkdaemon(sink.address, default_class="rin") as d:
        with RawSmtp("127.0.0.1", d.port) as c:
            c.expect(220)
            c.cmd("EHLO client.test", 250)
            c.cmd("MAIL FROM:<a@client.test>", 250)
            c.cmd("RCPT TO:<b@example.test>", 250)
            c.cmd("DATA", 354)
            t0 = time.monotonic()
            c.send(b"Subject: r\r\n\r\n" + (b"y" * 98 + b"\r\n") * 52 +
                   b".\r\n")
            c.expect(250, timeout=15)
            dt = time.monotonic() - t0
            assert dt >= 2.5, dt
            c.cmd("QUIT", 221)


def test_action_tempfail(sink):
    """Class tf (reply_delay=1s, action=tempfail): MAIL -> 451 4.7.1 after
    >= 0.9 s; the backend sees no message; record outcome deferred."""
    with mkdaemon(sink.address, default_class="tf") as d:
        with RawSmtp("127.0.0.1", d.port) as c:
            c.expect(220)
            c.cmd("EHLO client.test", 250, timeout=5)
            t0 = time.monotonic()
            code, text = c.cmd("MAIL FROM:<a@client.test>", timeout=5)
            assert code == 451 and text[0].startswith("4.7.1"), text
            assert time.monotonic() - t0 >= 0.9
            c.cmd("QUIT", 221)
        d.stop()
        assert sink.message_count() == 0
        (m,) = d.events("message")
        assert m["outcome"] == "deferred"
        assert m["class"] == "tf"


def test_action_reject(sink):
    """Class rj (action=reject): MAIL -> 554; record outcome rejected."""
    with mkdaemon(sink.address, default_class="rj") as d:
        with RawSmtp("127.0.0.1", d.port) as c:
            c.expect(220)
            c.cmd("EHLO client.test", 250)
            code, text = c.cmd("MAIL FROM:<a@client.test>")
            assert code == 554, text
            c.cmd("QUIT", 221)
        d.stop()
        (m,) = d.events("message")
        assert m["outcome"] == "rejected"


def test_max_share(sink):
    """max_connections=10, class hos (max_share=20 -> 2 sessions) for
    127.0.0.32/28: two hos sessions are held (banner_delay=3s), the third
    gets 421 at once; a fast client from 127.0.0.1 still gets its 220."""
    with mkdaemon(sink.address, max_connections=10,
                  client_class_map="127.0.0.32/28=hos") as d:
        held = [RawSmtp("127.0.0.1", d.port, source="127.0.0.3%d" % i)
                for i in (3, 4)]
        try:
            time.sleep(0.2)
            with RawSmtp("127.0.0.1", d.port, source="127.0.0.35") as c:
                code, text = c.reply(timeout=2)
                assert code == 421, text
            with RawSmtp("127.0.0.1", d.port) as c:
                c.expect(220, timeout=2)
                c.cmd("QUIT", 221)
            for h in held:
                h.expect(220, timeout=5)
        finally:
            for h in held:
                h.close()
        d.stop()
        assert "too many connections of your class" in d.log()
        refused = [s for s in d.events("session")
                   if s["outcome"] == "refused"]
        assert len(refused) == 1 and refused[0]["class"] == "hos"


def test_session_time(sink):
    """Class st (session_time=1s): NOOP at once -> 250; after 1.3 s the
    next command -> 421 (session time limit) and the connection closes."""
    with mkdaemon(sink.address, default_class="st") as d:
        with RawSmtp("127.0.0.1", d.port) as c:
            c.expect(220)
            c.cmd("EHLO client.test", 250)
            c.cmd("NOOP", 250)
            time.sleep(1.3)
            code, text = c.cmd("NOOP")
            assert code == 421, text
            assert c.closed(2.0)


def test_class_max_per_client(sink):
    """Class pc (max_per_client=1, banner held 2 s): a second concurrent
    session from 127.0.0.13 gets 421 at once; one from 127.0.0.14 gets in."""
    with mkdaemon(sink.address, default_class="pc") as d:
        with RawSmtp("127.0.0.1", d.port, source="127.0.0.13") as first:
            time.sleep(0.2)
            with RawSmtp("127.0.0.1", d.port, source="127.0.0.13") as c:
                code, text = c.reply(timeout=1.5)
                assert code == 421, text
            with RawSmtp("127.0.0.1", d.port, source="127.0.0.14") as c:
                c.expect(220, timeout=5)
            first.expect(220, timeout=5)


def test_global_max_connections(sink):
    """max_connections=2, class slow (banner held 2 s): two sessions are
    held, the third gets 421 (too many connections) at once."""
    with mkdaemon(sink.address, default_class="slow",
                  max_connections=2) as d:
        held = [RawSmtp("127.0.0.1", d.port, source="127.0.0.%d" % i)
                for i in (21, 22)]
        try:
            time.sleep(0.2)
            with RawSmtp("127.0.0.1", d.port, source="127.0.0.23") as c:
                code, text = c.reply(timeout=1.5)
                assert code == 421, text
            for h in held:
                h.expect(220, timeout=5)
        finally:
            for h in held:
                h.close()
        d.stop()
        assert "too many connections" in d.log()


def test_rate_out(sink):
    """Class rout (rate_out=64 B/s, 1 s burst): the ~80-byte EHLO reply
    needs a second bucket tick, so it completes after >= 0.8 s; in class
    fast the same reply takes < 0.3 s."""
    with mkdaemon(sink.address, default_class="rout",
                  client_class_map="127.0.0.15/32=fast") as d:
        with RawSmtp("127.0.0.1", d.port) as c:
            c.expect(220, timeout=5)
            time.sleep(1.1)  # let the bucket refill after the banner
            dt = timed(c, "EHLO client.test", 250)
            assert dt >= 0.8, dt
        with RawSmtp("127.0.0.1", d.port, source="127.0.0.15") as c:
            c.expect(220)
            assert timed(c, "EHLO client.test", 250) < 0.3


def test_stutter_reply(sink):
    """Class sr (reply_delay=2s, stutter=4, 100 ms): the EHLO reply comes
    in many reads of <= 4 bytes and is complete at ~2 s."""
    with mkdaemon(sink.address, default_class="sr") as d:
        with RawSmtp("127.0.0.1", d.port) as c:
            c.expect(220)
            c.send(b"EHLO client.test\r\n")
            t0 = time.monotonic()
            reads, data = [], b""
            c.sock.settimeout(6)
            while not (data.endswith(b"\r\n") and
                       data.split(b"\r\n")[-2][3:4] == b" "):
                chunk = c.sock.recv(4096)
                assert chunk, data
                reads.append((time.monotonic() - t0, len(chunk)))
                data += chunk
            assert data.startswith(b"250-")
            assert len(reads) >= 8, reads
            assert max(n for _, n in reads) <= 8, reads
            assert 1.7 <= reads[-1][0] <= 2.8, reads
