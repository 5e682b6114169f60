"""test_daemon_identity.py - the client's identity reaches a real Postfix;
addresses are logged as the client's IP version; identity commands refused

  - XCLIENT (PostfixSmtpd mode="xclient"): swaks from 127.0.0.5 with
    HELO helo.client.test -> Postfix records client 127.0.0.5 and that
    HELO, not the daemon's address or name; the same over IPv6 (::1);
  - PROXY v2 (mode="proxy", backend_identity=proxy): a client on
    127.0.0.6 with a known source port -> Postfix records 127.0.0.6 and
    that port;
  - [::1]:PORT listener: the session record says client_ip "::1";
  - [::]:PORT listener: an IPv4 client is logged as 127.0.0.1, not
    ::ffff:127.0.0.1 (and an IPv6 client there as ::1);
  - XCLIENT, XFORWARD and AUTH from a client get 502, and EHLO never
    advertises them even though the backend (smtp-sink) does.
"""

import contextlib
import os
import socket
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon import Daemon  # noqa: E402
from peers import (POSTFIX, SMTP_SINK, SWAKS, PostfixSmtpd,  # noqa: E402
                   RawSmtp, SmtpSink, free_port, is_root, need, swaks)

CLASS = "class_fast = banner_delay=0 reply_delay=0 action=relay\n"


def mkdaemon(backend, **kw):
    kw.setdefault("violation_class", "")
    kw.setdefault("grace_time", "2s")
    return Daemon(backend=backend, config_text=CLASS, default_class="fast",
                  **kw)


@contextlib.contextmanager
def wildcard_daemon(backend, tries=3):
    """A started daemon on [::]:PORT; retried on a port taken meanwhile
    (free_port() only probes 127.0.0.1, and other tests run alongside)."""
    for i in range(tries):
        port = free_port()
        d = mkdaemon(backend, listen="[::]:%d" % port, port=port)
        try:
            d.start()
            break
        except RuntimeError:
            d.stop()
            if i == tries - 1:
                raise
    try:
        yield d
    finally:
        d.stop()
        d.cleanup()


def need_postfix():
    need(POSTFIX, SWAKS)
    if not is_root():
        pytest.skip("real Postfix needs root")


def need_ipv6():
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no ::1")


def test_xclient_identity_reaches_postfix():
    """swaks from 127.0.0.5, HELO helo.client.test, through the daemon to
    Postfix with XCLIENT: Postfix records 127.0.0.5 and helo.client.test."""
    need_postfix()
    with PostfixSmtpd(mode="xclient") as pf, mkdaemon(pf.address) as d:
        rc, out = swaks("127.0.0.1", d.port, source="127.0.0.5",
                        helo="helo.client.test")
        assert rc == 0, out
        (m,) = pf.wait_messages(1)
        assert m.client_ip == "127.0.0.5", m.attrs
        assert m.helo == "helo.client.test", m.attrs
        assert m.client_name in ("unknown", "[UNAVAILABLE]", None), m.attrs
        assert m.protocol and "SMTP" in m.protocol.upper()
        d.stop()
        (s,) = d.events("session")
        assert s["client_ip"] == "127.0.0.5"
        assert s["helo"] == "helo.client.test"


def test_xclient_identity_ipv6_reaches_postfix():
    """A client on [::1] through an IPv6 listener: Postfix records ::1
    (after XCLIENT ADDR=IPV6:::1) and the client's HELO."""
    need_postfix()
    need_ipv6()
    with PostfixSmtpd(mode="xclient") as pf, \
            mkdaemon(pf.address, host="::1") as d:
        rc, out = swaks("::1", d.port, helo="v6.client.test")
        assert rc == 0, out
        (m,) = pf.wait_messages(1)
        assert m.client_ip.lower() == "::1", m.attrs
        assert m.helo == "v6.client.test"


def test_proxy_v2_identity_reaches_postfix():
    """backend_identity=proxy to Postfix with smtpd_upstream_proxy_protocol
    = haproxy: a RawSmtp client from 127.0.0.6, fixed source port P ->
    Postfix records 127.0.0.6 and port P; the HELO is the client's."""
    need_postfix()
    with PostfixSmtpd(mode="proxy") as pf, \
            mkdaemon(pf.address, backend_identity="proxy") as d:
        sport = free_port("127.0.0.6")
        with RawSmtp("127.0.0.1", d.port, source="127.0.0.6",
                     source_port=sport) as c:
            c.expect(220)
            c.cmd("EHLO proxied.client.test", 250)
            c.cmd("MAIL FROM:<a@client.test>", 250)
            c.cmd("RCPT TO:<b@example.test>", 250)
            c.cmd("DATA", 354)
            c.send(b"Subject: proxy\r\n\r\nhi\r\n.\r\n")
            c.expect(250)
            c.cmd("QUIT", 221)
        (m,) = pf.wait_messages(1)
        assert m.client_ip == "127.0.0.6", m.attrs
        assert m.client_port == str(sport), m.attrs
        d.stop()
        (s,) = d.events("session")
        assert s["client_port"] == sport


def test_identity_none_postfix_sees_daemon():
    """Control: backend_identity=none to a plain Postfix: Postfix records
    the daemon's own address (127.0.0.1), not the client's 127.0.0.5."""
    need_postfix()
    with PostfixSmtpd(mode="plain") as pf, \
            mkdaemon(pf.address, backend_identity="none") as d:
        rc, out = swaks("127.0.0.1", d.port, source="127.0.0.5")
        assert rc == 0, out
        (m,) = pf.wait_messages(1)
        assert m.client_ip == "127.0.0.1", m.attrs


def test_ipv6_listener_client_ip():
    """listen = [::1]:PORT; a client on ::1 -> session record "::1"."""
    need(SMTP_SINK)
    need_ipv6()
    with SmtpSink() as sink, mkdaemon(sink.address, host="::1") as d:
        with RawSmtp("::1", d.port) as c:
            c.expect(220)
            c.cmd("EHLO v6.test", 250)
            c.cmd("QUIT", 221)
        d.stop()
        (s,) = d.events("session")
        assert s["client_ip"] == "::1"
        assert "[::1]" in d.log()


def test_wildcard_v6_listener_logs_ipv4_as_ipv4():
    """listen = [::]:PORT; an IPv4 client (127.0.0.3) -> "127.0.0.3", not
    "::ffff:127.0.0.3"; an IPv6 client on the same socket -> "::1"; the
    fingerprint's raw signature says version 4 for the IPv4 one."""
    need(SMTP_SINK)
    need_ipv6()
    with SmtpSink() as sink, wildcard_daemon(sink.address) as d:
        port = d.port
        with RawSmtp("127.0.0.1", port, source="127.0.0.3") as c:
            c.expect(220)
            c.cmd("EHLO v4.test", 250)
            c.cmd("QUIT", 221)
        with RawSmtp("::1", port) as c:
            c.expect(220)
            c.cmd("EHLO v6.test", 250)
            c.cmd("QUIT", 221)
        d.stop()
        recs = {s["helo"]: s for s in d.events("session")}
        assert recs["v4.test"]["client_ip"] == "127.0.0.3"
        assert recs["v6.test"]["client_ip"] == "::1"
        assert "::ffff:" not in d.log()
        assert "::ffff:" not in open(d.eventlog).read()
        fp4 = recs["v4.test"]["fp"]
        if fp4 is not None:
            assert fp4["raw_sig"].startswith("4:"), fp4
        fp6 = recs["v6.test"]["fp"]
        if fp6 is not None:
            assert fp6["raw_sig"].startswith("6:"), fp6


def test_ipv4_through_wildcard_listener_to_postfix_xclient():
    """[::] listener, IPv4 client 127.0.0.5 -> XCLIENT ADDR is IPv4:
    Postfix records 127.0.0.5 (not IPv6:::ffff:127.0.0.5)."""
    need_postfix()
    need_ipv6()
    with PostfixSmtpd(mode="xclient") as pf, \
            wildcard_daemon(pf.address) as d:
        port = d.port
        rc, out = swaks("127.0.0.1", port, source="127.0.0.5")
        assert rc == 0, out
        (m,) = pf.wait_messages(1)
        assert m.client_address == "127.0.0.5", m.attrs


@pytest.mark.parametrize("cmd", ["XCLIENT ADDR=192.0.2.7 NAME=evil.test",
                                 "XFORWARD ADDR=192.0.2.7",
                                 "AUTH PLAIN AGFAAGI=",
                                 "AUTH LOGIN"])
def test_identity_commands_refused(cmd):
    """EHLO lists none of XCLIENT/XFORWARD/AUTH although smtp-sink offers
    all three; `cmd` gets 502 before and after MAIL; the backend never
    sees it (the message still comes from the real peer address)."""
    need(SMTP_SINK)
    with SmtpSink() as sink, mkdaemon(sink.address) as d:
        with RawSmtp("127.0.0.1", d.port, source="127.0.0.4") as c:
            c.expect(220)
            feats = c.cmd("EHLO client.test", 250)
            up = [f.upper() for f in feats]
            for kw in ("XCLIENT", "XFORWARD", "AUTH"):
                assert not any(f.startswith(kw) for f in up), feats
            code, text = c.cmd(cmd)
            assert code == 502, text
            c.cmd("MAIL FROM:<a@client.test>", 250)
            code, text = c.cmd(cmd)
            assert code == 502, text
            c.cmd("RCPT TO:<b@example.test>", 250)
            c.cmd("DATA", 354)
            c.send(b"Subject: id\r\n\r\nhi\r\n.\r\n")
            c.expect(250)
            c.cmd("QUIT", 221)
        (m,) = sink.wait_messages(1)
        d.stop()
        assert "refused %s" % cmd.split()[0] in d.log()
        (s,) = d.events("session")
        assert s["client_ip"] == "127.0.0.4"


def test_identity_command_before_ehlo_refused():
    """XCLIENT before any EHLO is also 502 (not 503, not relayed)."""
    need(SMTP_SINK)
    with SmtpSink() as sink, mkdaemon(sink.address) as d:
        with RawSmtp("127.0.0.1", d.port) as c:
            c.expect(220)
            code, _ = c.cmd("XCLIENT ADDR=192.0.2.7")
            assert code == 502
            c.cmd("QUIT", 221)
        assert sink.message_count() == 0


def test_xclient_identity_but_backend_lacks_xclient():
    """backend_identity=xclient (default) but smtp-sink -C offers no
    XCLIENT: the daemon must not pass mail under its own address: MAIL
    gets a 4xx and the log says why; nothing reaches the backend."""
    need(SMTP_SINK)
    with SmtpSink(xclient=False) as sink, mkdaemon(sink.address) as d:
        with RawSmtp("127.0.0.1", d.port) as c:
            c.expect(220)
            c.cmd("EHLO client.test", 250)
            code, text = c.cmd("MAIL FROM:<a@client.test>")
            assert 400 <= code < 500, text
            c.cmd("QUIT", 221)
        d.stop()
        assert "XCLIENT" in d.log() or "xclient" in d.log()
        assert sink.message_count() == 0
        (m,) = d.events("message")
        assert m["outcome"] == "backend_error"
