"""test_peers.py - the real-peer fixtures in peers.py work on their own

Each test starts its peers on loopback and stops them.  192.0.2.x appears
only as data inside XCLIENT and PROXY headers; no packet goes there.
Run: /usr/bin/python3 -m pytest -q tests/blackbox/test_peers.py
"""

import os
import socket
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402
from peers import (PostfixSmtpd, RawSmtp, SmtpSink, proxy_v2_header,  # noqa
                   swaks)

needs_root = pytest.mark.skipif(os.geteuid() != 0,
                                reason="real Postfix needs root")


def test_free_port_is_bindable():
    p = peers.free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", p))


def test_non_loopback_refused():
    with pytest.raises(ValueError):
        SmtpSink(host="192.0.2.1")
    with pytest.raises(ValueError):
        PostfixSmtpd(host="0.0.0.0")
    with pytest.raises(ValueError):
        swaks("192.0.2.1", 25)


def test_swaks_to_sink_dumps_message():
    peers.need(peers.SMTP_SINK, peers.SWAKS)
    with SmtpSink(hostname="sink.test") as sink:
        rc, tr = swaks("127.0.0.1", sink.port, "--body", "hello\n.dot",
                       "--header", "Subject: peers", source="127.0.0.5",
                       helo="helo.test", sender="a@client.test",
                       to="b@example.test")
        assert rc == 0, tr
        assert "220 sink.test ESMTP" in tr
        msgs = sink.wait_messages(1)
        assert sink.message_count() == 1
        assert len(msgs) == 1
        m = msgs[0]
        assert m.client_addr == "127.0.0.5"   # real peer, from X-Client-Addr
        assert m.client_proto == "ESMTP"
        assert m.helo == "helo.test"
        assert m.mail_from == "a@client.test"
        assert m.rcpt_to == ["b@example.test"]
        assert m.received.startswith("from helo.test ([127.0.0.5])")
        assert m.header("Subject") == "peers"
        assert b"hello\n.dot\n" in m.body     # dot-unstuffed, LF ends


def test_sink_feature_flags_and_failures():
    peers.need(peers.SMTP_SINK)
    with SmtpSink(pipelining=False, eightbitmime=False, xclient=False,
                  reject_soft=["RCPT"], dump=False) as sink:
        with RawSmtp(*sink.address, source="127.0.0.6") as c:
            c.expect(220)
            feats = c.cmd("EHLO x", 250)
            assert "PIPELINING" not in feats
            assert "8BITMIME" not in feats
            assert not any(f.startswith("XCLIENT") for f in feats)
            c.cmd("MAIL FROM:<a@b>", 250)
            code, text = c.cmd("RCPT TO:<c@d>")
            assert code == 450, text
            c.cmd("QUIT", 221)


def test_sink_ipv6_and_xclient_not_applied():
    """smtp-sink answers XCLIENT with 250 but keeps the real peer."""
    peers.need(peers.SMTP_SINK)
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    with SmtpSink(host="::1") as sink:
        with RawSmtp(*sink.address) as c:
            c.expect(220)
            assert "XCLIENT NAME HELO" in c.cmd("EHLO x", 250)
            c.cmd("XCLIENT ADDR=192.0.2.7 NAME=bot.example", 250)
            c.cmd("EHLO y", 250)
            c.send(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n")
            c.expect(250)
            c.expect(250)
            c.expect(354)
            c.send(b"Subject: v6\r\n\r\n..x\r\n.\r\n")
            c.expect(250)
        (m,) = sink.wait_messages(1)
        assert m.client_addr == "ipv6:::1"
        assert m.client_ip == "::1"
        assert m.helo == "y"
        assert m.body == b".x\n"


def test_sink_disconnect_injection():
    peers.need(peers.SMTP_SINK)
    with SmtpSink(disconnect=["DATA"], disconnect_421=["RSET"],
                  dump=False) as sink:
        with RawSmtp(*sink.address) as c:
            c.expect(220)
            c.cmd("HELO x", 250)
            c.cmd("RSET", 421)
            assert c.closed()
        with RawSmtp(*sink.address) as c:
            c.expect(220)
            c.cmd("HELO x", 250)
            c.cmd("MAIL FROM:<a@b>", 250)
            c.cmd("RCPT TO:<c@d>", 250)
            c.send(b"DATA\r\n")
            assert c.closed()             # no reply at all


def test_sink_kill_makes_port_refuse():
    peers.need(peers.SMTP_SINK)
    sink = SmtpSink(dump=False).start()
    try:
        c = RawSmtp(*sink.address)
        c.expect(220)
        c.cmd("EHLO x", 250)
        c.cmd("MAIL FROM:<a@b>", 250)
        sink.kill()                      # dies mid-transaction
        assert not sink.alive()
        assert c.closed(timeout=2)
        c.close()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(sink.address, timeout=2).close()
    finally:
        sink.stop()


@needs_root
def test_xclient_identity_recorded_by_postfix():
    peers.need(peers.POSTFIX, peers.POSTCAT, peers.SWAKS)
    with PostfixSmtpd(mode="xclient") as pf:
        rc, tr = swaks("127.0.0.1", pf.port, "--xclient-addr", "192.0.2.7",
                       "--xclient-name", "bot.example", source="127.0.0.5",
                       helo="after.xclient")
        assert rc == 0, tr
        (m,) = pf.wait_messages(1)
        assert m.client_address == "192.0.2.7"
        assert m.client_name == "bot.example"
        assert m.helo == "after.xclient"
        assert m.recipients == ["rcpt@example.test"]
        assert "(bot.example [192.0.2.7])" in m.received


@needs_root
def test_proxy_v2_identity_recorded_by_postfix():
    peers.need(peers.POSTFIX, peers.POSTCAT)
    with PostfixSmtpd(mode="proxy") as pf:
        with RawSmtp(*pf.address, source="127.0.0.7") as c:
            c.send(proxy_v2_header("192.0.2.9", 4321, "127.0.0.1", pf.port))
            c.expect(220)
            c.cmd("EHLO proxied.test", 250)
            c.cmd("MAIL FROM:<a@client.test>", 250)
            c.cmd("RCPT TO:<b@example.test>", 250)
            c.cmd("DATA", 354)
            c.send(b"Subject: via proxy\r\n\r\nbody\r\n.\r\n")
            c.expect(250)
            c.cmd("QUIT", 221)
        (m,) = pf.wait_messages(1)
        assert m.client_address == "192.0.2.9"
        assert m.client_port == "4321"
        assert m.helo == "proxied.test"
        assert m.header("Subject") == "via proxy"
        assert "[192.0.2.9]" in m.received


@needs_root
def test_plain_postfix_sees_loopback_source():
    peers.need(peers.POSTFIX, peers.POSTCAT, peers.SWAKS)
    with PostfixSmtpd(mode="plain", ehlo_discard=["CHUNKING"]) as pf:
        rc, tr = swaks("127.0.0.1", pf.port, "--pipeline",
                       source="127.0.0.8")
        assert rc == 0, tr
        assert "CHUNKING" not in tr
        (m,) = pf.wait_messages(1)
        assert m.client_address == "127.0.0.8"
