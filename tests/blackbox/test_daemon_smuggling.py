"""test_daemon_smuggling.py - SMTP smuggling end-of-data variants never
make a second message at a real backend

Each variant test sends, with RawSmtp, one command at a time:
  EHLO, MAIL FROM:<good@client.test>, RCPT TO:<rcpt@example.test>, DATA,
  then the body  "part1" + VARIANT + "MAIL FROM:<evil@x>\\r\\nRCPT TO:
  <victim@y>\\r\\nDATA\\r\\nsmuggled\\r\\n" + "\\r\\n.\\r\\n",  then QUIT.
It expects 354, exactly one 250 for the message, then 221 for QUIT (no
reply to a smuggled command), and proves that the backend stored exactly
ONE message, from good@client.test to rcpt@example.test only, whose content
holds the smuggled commands as data.

The meaningful backend is a real Postfix smtpd (what a smuggler wants to
fool); smtp-sink is tested too.  Postfix runs with backend_identity=none.
Also: bare_policy=reject refuses a bare LF with 550 and nothing reaches the
backend; normalize turns a bare CR and a NUL into spaces.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon import Daemon  # noqa: E402
from peers import (POSTFIX, SMTP_SINK, PostfixSmtpd, RawSmtp,  # noqa: E402
                   SmtpSink, is_root, need)

SMUGGLED = (b"MAIL FROM:<evil@x>\r\nRCPT TO:<victim@y>\r\nDATA\r\n"
            b"smuggled\r\n")

# The variants: none of them is CRLF "." CRLF, so none ends the data.
VARIANTS = {
    "lf.lf": b"\n.\n",
    "lf.crlf": b"\n.\r\n",
    "cr.lf": b"\r.\n",
    "cr.cr": b"\r.\r",
    "cr.crlf": b"\r.\r\n",
    "lf.cr": b"\n.\r",
    "crlf-nul.crlf": b"\r\n\x00.\r\n",
    "crlf.crcrlf": b"\r\n.\r\r\n",
    "crlf.lf": b"\r\n.\n",
    # more of our own
    "crlf.nul-crlf": b"\r\n.\x00\r\n",
    "crlf.cr-nul-lf": b"\r\n.\r\x00\n",
    "lf-cr.crlf": b"\n\r.\r\n",
    "crlf.lf-crlf": b"\r\n.\n\r\n",
    "crlf.space-crlf": b"\r\n. \r\n",
    "crlf.stuffed": b"\r\n..\r\n",
    "crlf.cr": b"\r\n.\r",
    "lf.lf-lf": b"\n.\n\n",
}

CLASS = "class_fast = banner_delay=0 reply_delay=0 action=relay\n"


def send_smuggle(port, variant, source=None):
    """One transaction with the smuggling payload; return replies seen."""
    body = b"Subject: smuggle\r\n\r\npart1" + variant + SMUGGLED + b"\r\n.\r\n"
    with RawSmtp("127.0.0.1", port, source=source) as c:
        c.expect(220)
        c.cmd("EHLO client.test", 250)
        c.cmd("MAIL FROM:<good@client.test>", 250)
        c.cmd("RCPT TO:<rcpt@example.test>", 250)
        c.cmd("DATA", 354)
        c.send(body)
        code, text = c.reply(timeout=15)
        assert code == 250, (code, text)
        # Anything smuggled would be answered before QUIT's 221.
        code2, text2 = c.cmd("QUIT")
        assert code2 == 221, ("reply to a smuggled command?", code2, text2)
        assert c.closed(2.0)
        return code, text


def smuggle_daemon(backend, **kw):
    return Daemon(backend=backend, config_text=CLASS, default_class="fast",
                  violation_class="", **kw)


@pytest.fixture(scope="module")
def postfix():
    # One private Postfix for the module: starting one costs a second or
    # two, and each test counts the held messages before and after.
    need(POSTFIX)
    if not is_root():
        pytest.skip("real Postfix needs root")
    with PostfixSmtpd(mode="plain") as pf:
        yield pf


@pytest.mark.parametrize("name", list(VARIANTS))
def test_smuggling_postfix_one_message(postfix, name):
    """Variant `name` to a real Postfix: one 250, one held message, which
    carries the smuggled lines as data; the envelope is unchanged."""
    before = {m.queue_id for m in postfix.messages()}
    with smuggle_daemon(postfix.address, backend_identity="none") as d:
        send_smuggle(d.port, VARIANTS[name])
        msgs = postfix.wait_messages(len(before) + 1, timeout=10)
        d.stop()
        new = [m for m in postfix.messages() if m.queue_id not in before]
        assert len(new) == 1, [m.queue_id for m in new]
        (m,) = new
        assert m.sender == "good@client.test"
        assert m.recipients == ["rcpt@example.test"], m.recipients
        assert b"smuggled" in m.body
        assert b"MAIL FROM:<evil@x>" in m.body
        assert b"RCPT TO:<victim@y>" in m.body
        assert b"part1" in m.body
        assert "victim@y" not in m.postcat.split("MESSAGE CONTENTS")[0]
        (rec,) = d.events("message")
        assert rec["outcome"] == "delivered"
        assert rec["rcpt"] == 1 and rec["rcpt_accepted"] == 1
        assert len(msgs) >= 1


@pytest.mark.parametrize("name", list(VARIANTS))
def test_smuggling_sink_one_message(name):
    """Variant `name` to smtp-sink: exactly one message is completed."""
    need(SMTP_SINK)
    with SmtpSink() as sink, smuggle_daemon(sink.address) as d:
        send_smuggle(d.port, VARIANTS[name])
        msgs = sink.wait_messages(1)
        d.stop()
        assert sink.message_count() == 1
        assert len(msgs) == 1
        m = msgs[0]
        assert m.mail_from == "good@client.test"
        assert m.rcpt_to == ["rcpt@example.test"]
        assert b"smuggled" in m.data
        assert b"MAIL FROM:<evil@x>" in m.data
        assert len(d.events("message")) == 1


def test_dot_line_after_bare_lf_is_stuffed_for_backend():
    """`\\r\\n.\\n` then data: the lone "." line is data, so the backend
    must get it dot-stuffed; smtp-sink unstuffs it back to "."."""
    need(SMTP_SINK)
    with SmtpSink() as sink, smuggle_daemon(sink.address) as d:
        send_smuggle(d.port, b"\r\n.\n")
        (m,) = sink.wait_messages(1)
        d.stop()
        lines = m.data.split(b"\n")
        assert b"." in lines, m.data


def test_bare_lf_rejected_with_reject_policy():
    """bare_policy=reject: "a\\nb" in DATA -> 550 after the dot, the
    backend completes no message, the record says protocol_error; a clean
    message after it in the same session is delivered (250)."""
    need(SMTP_SINK)
    with SmtpSink() as sink, smuggle_daemon(sink.address,
                                            bare_policy="reject") as d:
        with RawSmtp("127.0.0.1", d.port) as c:
            c.expect(220)
            c.cmd("EHLO client.test", 250)
            c.cmd("MAIL FROM:<good@client.test>", 250)
            c.cmd("RCPT TO:<rcpt@example.test>", 250)
            c.cmd("DATA", 354)
            c.send(b"Subject: x\r\n\r\nline a\nline b\r\n.\r\n")
            code, text = c.reply()
            assert code == 550, text
            assert sink.message_count() == 0
            # the session goes on: a clean message is then delivered
            c.cmd("MAIL FROM:<good@client.test>", 250)
            c.cmd("RCPT TO:<rcpt@example.test>", 250)
            c.cmd("DATA", 354)
            c.send(b"Subject: clean\r\n\r\nclean\r\n.\r\n")
            c.expect(250)
            c.cmd("QUIT", 221)
        (m,) = sink.wait_messages(1)
        d.stop()
        assert m.header("Subject") == "clean"
        rec = d.events("message")[0]
        assert rec["outcome"] == "protocol_error"
        assert rec["reply"] is None
        assert "bare LF" in d.log() or "refused" in d.log()


@pytest.mark.parametrize("bad", [b"\r", b"\x00"], ids=["cr", "nul"])
def test_bare_cr_and_nul_rejected_with_reject_policy(bad):
    """bare_policy=reject: a bare CR or a NUL in DATA -> 550, no message."""
    need(SMTP_SINK)
    with SmtpSink() as sink, smuggle_daemon(sink.address,
                                            bare_policy="reject") as d:
        with RawSmtp("127.0.0.1", d.port) as c:
            c.expect(220)
            c.cmd("EHLO client.test", 250)
            c.cmd("MAIL FROM:<good@client.test>", 250)
            c.cmd("RCPT TO:<rcpt@example.test>", 250)
            c.cmd("DATA", 354)
            c.send(b"Subject: x\r\n\r\nab" + bad + b"cd\r\n.\r\n")
            code, text = c.reply()
            assert code == 550, text
            c.cmd("QUIT", 221)
        d.stop()
        assert sink.message_count() == 0


def test_normalize_bare_cr_nul_become_spaces():
    """Default policy: "a\\rb\\x00c" is stored as "a b c"; a bare-LF line
    end becomes a line end; the message is delivered."""
    need(SMTP_SINK)
    with SmtpSink() as sink, smuggle_daemon(sink.address) as d:
        with RawSmtp("127.0.0.1", d.port) as c:
            c.expect(220)
            c.cmd("EHLO client.test", 250)
            c.cmd("MAIL FROM:<good@client.test>", 250)
            c.cmd("RCPT TO:<rcpt@example.test>", 250)
            c.cmd("DATA", 354)
            c.send(b"Subject: x\r\n\r\na\rb\x00c\r\nfirst\nsecond\r\n.\r\n")
            c.expect(250)
            c.cmd("QUIT", 221)
        (m,) = sink.wait_messages(1)
        d.stop()
        assert b"a b c\n" in m.body, m.body
        assert b"\r" not in m.data and b"\x00" not in m.data
        assert b"first\nsecond\n" in m.body


def test_normalize_postfix_stores_spaces():
    """Same against a real Postfix: the held message has "a b c"."""
    need(POSTFIX)
    if not is_root():
        pytest.skip("real Postfix needs root")
    with PostfixSmtpd(mode="plain") as pf, \
            smuggle_daemon(pf.address, backend_identity="none") as d:
        with RawSmtp("127.0.0.1", d.port) as c:
            c.expect(220)
            c.cmd("EHLO client.test", 250)
            c.cmd("MAIL FROM:<good@client.test>", 250)
            c.cmd("RCPT TO:<rcpt@example.test>", 250)
            c.cmd("DATA", 354)
            c.send(b"Subject: x\r\n\r\na\rb\x00c\r\n.\r\n")
            c.expect(250)
            c.cmd("QUIT", 221)
        (m,) = pf.wait_messages(1)
        d.stop()
        assert b"a b c" in m.body, m.body


def test_dot_stuffing_round_trip():
    """Client sends stuffed lines "..hidden" and "..": the backend stores
    ".hidden" and "." (unstuffed once, restuffed on the way out)."""
    need(SMTP_SINK)
    with SmtpSink() as sink, smuggle_daemon(sink.address) as d:
        with RawSmtp("127.0.0.1", d.port) as c:
            c.expect(220)
            c.cmd("EHLO client.test", 250)
            c.cmd("MAIL FROM:<good@client.test>", 250)
            c.cmd("RCPT TO:<rcpt@example.test>", 250)
            c.cmd("DATA", 354)
            c.send(b"Subject: x\r\n\r\n..hidden\r\n..\r\nend\r\n.\r\n")
            c.expect(250)
            c.cmd("QUIT", 221)
        (m,) = sink.wait_messages(1)
        d.stop()
        assert m.body.split(b"\n")[:3] == [b".hidden", b".", b"end"], m.body


def test_large_message_intact():
    """A 3 MiB message (lines of 998 bytes, some starting with ".") passes
    whole: the backend's copy has every byte, dots unstuffed."""
    need(SMTP_SINK)
    import hashlib
    line = b"x" * 996 + b"\r\n"
    body = b"".join((b"." if i % 7 == 0 else b"y") + line
                    for i in range(3 * 1024))
    with SmtpSink() as sink, smuggle_daemon(sink.address) as d:
        with RawSmtp("127.0.0.1", d.port, timeout=30) as c:
            c.expect(220)
            c.cmd("EHLO client.test", 250)
            c.cmd("MAIL FROM:<good@client.test>", 250)
            c.cmd("RCPT TO:<rcpt@example.test>", 250)
            c.cmd("DATA", 354)
            stuffed = b"".join((b"." + ln if ln.startswith(b".") else ln)
                               for ln in body.splitlines(True))
            c.send(b"Subject: big\r\n\r\n" + stuffed + b".\r\n")
            c.expect(250, timeout=30)
            c.cmd("QUIT", 221)
        (m,) = sink.wait_messages(1, timeout=15)
        d.stop()
        want = body.replace(b"\r\n", b"\n")
        assert hashlib.sha256(m.body).hexdigest() == \
            hashlib.sha256(want).hexdigest(), (len(m.body), len(want))
