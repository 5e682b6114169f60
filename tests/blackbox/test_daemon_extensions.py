"""test_daemon_extensions.py - SIZE, 8BITMIME, SMTPUTF8 and CHUNKING/BDAT
are offered exactly when the backend offers them; BDAT content arrives
intact at a real Postfix

  - Postfix backend (which offers all four): EHLO lists SIZE, 8BITMIME,
    SMTPUTF8, CHUNKING; SIZE is Postfix's limit;
  - smtp-sink backend (no SIZE/SMTPUTF8/CHUNKING): EHLO lists none of
    them; BDAT -> 502; with smtp-sink -8 no 8BITMIME either, and
    MAIL ... BODY=8BITMIME -> 555;
  - BDAT to Postfix: two chunks, the second LAST, whose bytes hold a
    CRLF "." CRLF line and a smuggled MAIL: one message, the "." line and
    the MAIL line are data.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon import Daemon  # noqa: E402
from peers import (POSTFIX, SMTP_SINK, PostfixSmtpd, RawSmtp,  # noqa: E402
                   SmtpSink, is_root, need)

CLASS = "class_fast = banner_delay=0 reply_delay=0 action=relay\n"


def mkdaemon(backend, **kw):
    kw.setdefault("violation_class", "")
    kw.setdefault("grace_time", "2s")
    return Daemon(backend=backend, config_text=CLASS, default_class="fast",
                  **kw)


@pytest.fixture
def postfix():
    need(POSTFIX)
    if not is_root():
        pytest.skip("real Postfix needs root")
    with PostfixSmtpd(mode="plain", main={"message_size_limit": 200000}) \
            as pf:
        yield pf


def ehlo(port):
    with RawSmtp("127.0.0.1", port) as c:
        c.expect(220)
        feats = c.cmd("EHLO client.test", 250)
        c.cmd("QUIT", 221)
    return [f.upper() for f in feats]


def test_postfix_extensions_offered(postfix):
    """Postfix offers SIZE 200000, 8BITMIME, SMTPUTF8, CHUNKING: so does
    the daemon; SIZE is Postfix's value."""
    with mkdaemon(postfix.address, backend_identity="none") as d:
        f = ehlo(d.port)
        assert "SIZE 200000" in f, f
        for kw in ("8BITMIME", "SMTPUTF8", "CHUNKING", "PIPELINING"):
            assert kw in f, (kw, f)


def test_sink_extensions_not_offered():
    """smtp-sink offers none of SIZE/SMTPUTF8/CHUNKING: neither does the
    daemon, and BDAT gets 502 (after its chunk is read)."""
    need(SMTP_SINK)
    with SmtpSink() as sink, mkdaemon(sink.address) as d:
        f = ehlo(d.port)
        assert "8BITMIME" in f
        for kw in ("SMTPUTF8", "CHUNKING"):
            assert kw not in f, (kw, f)
        assert not any(x.startswith("SIZE") for x in f), f
        with RawSmtp("127.0.0.1", d.port) as c:
            c.expect(220)
            c.cmd("EHLO client.test", 250)
            c.cmd("MAIL FROM:<a@client.test>", 250)
            c.cmd("RCPT TO:<b@example.test>", 250)
            c.send(b"BDAT 5 LAST\r\nhello")
            code, text = c.reply()
            assert code == 502, text
            c.cmd("NOOP", 250)  # the 5 bytes were not read as a command
            c.cmd("QUIT", 221)
        assert sink.message_count() == 0


def test_sink_without_8bitmime():
    """smtp-sink -8: no 8BITMIME in EHLO; BODY=8BITMIME -> 555;
    BODY=7BIT -> 250."""
    need(SMTP_SINK)
    with SmtpSink(eightbitmime=False) as sink, mkdaemon(sink.address) as d:
        assert "8BITMIME" not in ehlo(d.port)
        with RawSmtp("127.0.0.1", d.port) as c:
            c.expect(220)
            c.cmd("EHLO client.test", 250)
            assert c.cmd("MAIL FROM:<a@client.test> BODY=8BITMIME")[0] == 555
            c.cmd("MAIL FROM:<a@client.test> BODY=7BIT", 250)
            c.cmd("QUIT", 221)


def test_bdat_to_postfix_dot_line_is_data(postfix):
    """BDAT chunk 1 = headers + "part1\\r\\n.\\r\\n"; chunk 2 (LAST) =
    "MAIL FROM:<evil@x>\\r\\nsmuggled\\r\\n": 250 for each; Postfix holds
    ONE message with the "." line and the MAIL line as body text."""
    with mkdaemon(postfix.address, backend_identity="none") as d:
        with RawSmtp("127.0.0.1", d.port) as c:
            c.expect(220)
            c.cmd("EHLO client.test", 250)
            c.cmd("MAIL FROM:<good@client.test>", 250)
            c.cmd("RCPT TO:<rcpt@example.test>", 250)
            one = b"Subject: bdat\r\n\r\npart1\r\n.\r\n"
            two = b"MAIL FROM:<evil@x>\r\nsmuggled\r\n"
            c.send(b"BDAT %d\r\n" % len(one) + one)
            c.expect(250)
            c.send(b"BDAT %d LAST\r\n" % len(two) + two)
            c.expect(250)
            c.cmd("QUIT", 221)
        (m,) = postfix.wait_messages(1)
        d.stop()
        lines = m.body.split(b"\n")
        assert b"part1" in lines and b"." in lines, m.body
        assert b"MAIL FROM:<evil@x>" in lines and b"smuggled" in lines
        assert m.recipients == ["rcpt@example.test"]
        (rec,) = d.events("message")
        assert rec["outcome"] == "delivered"


def test_smtputf8_to_postfix(postfix):
    """MAIL FROM:<...> SMTPUTF8 with a UTF-8 local part: relayed; Postfix
    holds the message with the UTF-8 sender.

    Pins a bug: bytes >= 0x80 in an address were taken for control
    characters (signed char), so "501 bad character in address"."""
    with mkdaemon(postfix.address, backend_identity="none") as d:
        with RawSmtp("127.0.0.1", d.port) as c:
            c.expect(220)
            c.cmd("EHLO client.test", 250)
            c.cmd("MAIL FROM:<j\u00f6rg@client.test> SMTPUTF8".encode(), 250)
            c.cmd("RCPT TO:<rcpt@example.test>", 250)
            c.cmd("DATA", 354)
            c.send(b"Subject: utf8\r\n\r\nhi\r\n.\r\n")
            c.expect(250)
            c.cmd("QUIT", 221)
        (m,) = postfix.wait_messages(1)
        assert m.sender == "j\u00f6rg@client.test", m.sender
