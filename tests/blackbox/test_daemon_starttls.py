"""test_daemon_starttls.py - STARTTLS to clients, and CVE-2011-0411

A self-signed certificate (openssl req -x509) is made in a temp dir and
given to the daemon as tls_cert_file/tls_key_file, in front of smtp-sink.
  - EHLO advertises STARTTLS (and not without a certificate);
  - swaks --tls delivers; the session record says tls=true;
  - "STARTTLS\\r\\nRSET\\r\\n" in one packet: after the handshake the
    injected RSET gets no reply: the first reply inside TLS is EHLO's 250,
    and the log says bytes were discarded (CVE-2011-0411);
  - TLS 1.1 is refused (TLS 1.2 is the minimum);
  - backend_tls=yes: the hop to a real Postfix (smtpd_tls_security_level
    = may) is encrypted (Postfix logs starttls=1 for the session and its
    Received header says ESMTPS); without it, neither.
"""

import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon import Daemon  # noqa: E402
from peers import (POSTFIX, SMTP_SINK, SWAKS, PostfixSmtpd, RawSmtp,  # noqa
                   SmtpSink, is_root, need, swaks)

OPENSSL = "/usr/bin/openssl"


@pytest.fixture
def cert():
    need(OPENSSL)
    d = tempfile.mkdtemp(prefix="ms-tls-")
    crt, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    r = subprocess.run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048",
                        "-nodes", "-days", "1", "-subj",
                        "/CN=mx.mailshaper.test", "-keyout", key, "-out",
                        crt], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    os.chmod(d, 0o755)
    yield crt, key
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def tls_relay(cert):
    need(SMTP_SINK)
    crt, key = cert
    with SmtpSink() as sink:
        with Daemon(backend=sink.address, tls_cert_file=crt,
                    tls_key_file=key, violation_class="",
                    grace_time="2s") as d:
            d.sink = sink
            yield d


def client_ctx(**kw):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


def read_reply(f):
    """(code, lines) from a file-like over the TLS socket"""
    lines = []
    while True:
        line = f.readline()
        if not line:
            raise EOFError("closed inside TLS")
        lines.append(line)
        if line[3:4] != b"-":
            return int(line[:3]), lines


def test_ehlo_advertises_starttls(tls_relay):
    """EHLO -> 250 with a STARTTLS line; after TLS, EHLO no longer has it."""
    with RawSmtp("127.0.0.1", tls_relay.port) as c:
        c.expect(220)
        feats = c.cmd("EHLO client.test", 250)
        assert "STARTTLS" in feats
        c.cmd("STARTTLS", 220)
        t = client_ctx().wrap_socket(c.sock, server_hostname="mx")
        t.sendall(b"EHLO client.test\r\n")
        f = t.makefile("rb")
        code, lines = read_reply(f)
        assert code == 250
        assert not any(b"STARTTLS" in ln for ln in lines)
        t.sendall(b"STARTTLS\r\n")
        code, lines = read_reply(f)
        assert code == 502, lines
        t.sendall(b"QUIT\r\n")
        assert read_reply(f)[0] == 221
        t.close()


def test_no_starttls_without_certificate():
    """Without tls_cert_file: no STARTTLS keyword; STARTTLS -> 502."""
    need(SMTP_SINK)
    with SmtpSink() as sink, Daemon(backend=sink.address) as d:
        with RawSmtp("127.0.0.1", d.port) as c:
            c.expect(220)
            feats = c.cmd("EHLO client.test", 250)
            assert "STARTTLS" not in feats
            c.cmd("STARTTLS", 502)
            c.cmd("QUIT", 221)


def test_swaks_tls_delivers(tls_relay):
    """swaks --tls: message delivered, session record tls=true.

    Pins a bug: QUIT inside TLS closed the connection before the 221
    left the TLS filter (swaks: "Remote host closed connection")."""
    need(SWAKS)
    rc, out = swaks("127.0.0.1", tls_relay.port, "--tls", timeout=10)
    assert rc == 0, out
    assert "<~ 250" in out or "<~  250" in out, out
    tls_relay.sink.wait_messages(1)
    tls_relay.stop()
    (s,) = tls_relay.events("session")
    assert s["tls"] is True
    assert s["outcome"] == "completed"
    (m,) = tls_relay.events("message")
    assert m["outcome"] == "delivered"
    assert "TLS established" in tls_relay.log()


def test_plaintext_session_record_tls_false(tls_relay):
    """Without STARTTLS the session record says tls=false."""
    need(SWAKS)
    rc, out = swaks("127.0.0.1", tls_relay.port)
    assert rc == 0, out
    tls_relay.stop()
    (s,) = tls_relay.events("session")
    assert s["tls"] is False


def test_cve_2011_0411_injected_command_discarded(tls_relay):
    """Send "STARTTLS\\r\\nRSET\\r\\n" in one packet; 220; handshake; then
    EHLO inside TLS: the first TLS reply is EHLO's 250 (the RSET got none)
    and the log says bytes pipelined after STARTTLS were discarded.  Then
    a message goes through inside TLS.

    Pins a bug: the injected bytes were dropped silently (no log line)."""
    with RawSmtp("127.0.0.1", tls_relay.port) as c:
        c.expect(220)
        c.cmd("EHLO client.test", 250)
        c.send(b"STARTTLS\r\nRSET\r\n")
        c.expect(220)
        assert c.buf == b""  # no plaintext reply to RSET either
        t = client_ctx().wrap_socket(c.sock, server_hostname="mx")
        t.sendall(b"EHLO inside.test\r\n")
        f = t.makefile("rb")
        code, lines = read_reply(f)
        assert code == 250, lines
        assert lines[0].startswith(b"250-mx.mailshaper.test"), lines
        t.sendall(b"MAIL FROM:<a@client.test>\r\n")
        assert read_reply(f)[0] == 250
        t.sendall(b"RCPT TO:<b@example.test>\r\n")
        assert read_reply(f)[0] == 250
        t.sendall(b"DATA\r\n")
        assert read_reply(f)[0] == 354
        t.sendall(b"Subject: tls\r\n\r\nhello\r\n.\r\n")
        assert read_reply(f)[0] == 250
        t.sendall(b"QUIT\r\n")
        assert read_reply(f)[0] == 221
        t.close()
    tls_relay.sink.wait_messages(1)
    tls_relay.stop()
    assert "discarded" in tls_relay.log()
    assert "pipelined after STARTTLS" in tls_relay.log()
    (s,) = tls_relay.events("session")
    assert s["tls"] is True
    assert s["helo"] == "inside.test"


def test_cve_2011_0411_injected_mail_not_relayed(tls_relay):
    """Injected "STARTTLS\\r\\nMAIL FROM:<evil@x>\\r\\n": after TLS an
    RCPT must get 503 (no MAIL in effect) - the injected MAIL was dropped."""
    with RawSmtp("127.0.0.1", tls_relay.port) as c:
        c.expect(220)
        c.cmd("EHLO client.test", 250)
        c.send(b"STARTTLS\r\nMAIL FROM:<evil@x>\r\n")
        c.expect(220)
        t = client_ctx().wrap_socket(c.sock, server_hostname="mx")
        f = t.makefile("rb")
        t.sendall(b"EHLO inside.test\r\n")
        assert read_reply(f)[0] == 250
        t.sendall(b"RCPT TO:<b@example.test>\r\n")
        code, lines = read_reply(f)
        assert code == 503, lines
        t.sendall(b"QUIT\r\n")
        assert read_reply(f)[0] == 221
        t.close()
    tls_relay.stop()
    assert tls_relay.events("message") == []


def test_tls11_refused(tls_relay):
    """A client that offers at most TLS 1.1 cannot complete the handshake."""
    try:
        ctx = client_ctx()
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError) as e:
        pytest.skip("local OpenSSL cannot build a TLS 1.1 context: %s" % e)
    with RawSmtp("127.0.0.1", tls_relay.port) as c:
        c.expect(220)
        c.cmd("EHLO client.test", 250)
        c.cmd("STARTTLS", 220)
        with pytest.raises((ssl.SSLError, OSError)):
            t = ctx.wrap_socket(c.sock, server_hostname="mx")
            t.sendall(b"EHLO x\r\n")
            t.recv(100)
    tls_relay.stop()
    (s,) = tls_relay.events("session")
    assert s["tls"] is False


def test_tls12_accepted(tls_relay):
    """Control for the test above: a TLS 1.2-only client gets through."""
    ctx = client_ctx()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with RawSmtp("127.0.0.1", tls_relay.port) as c:
        c.expect(220)
        c.cmd("EHLO client.test", 250)
        c.cmd("STARTTLS", 220)
        t = ctx.wrap_socket(c.sock, server_hostname="mx")
        assert t.version() == "TLSv1.2"
        t.sendall(b"EHLO x\r\n")
        assert read_reply(t.makefile("rb"))[0] == 250
        t.sendall(b"QUIT\r\n")
        t.close()


def test_starttls_during_transaction_refused(tls_relay):
    """STARTTLS after MAIL -> 503; the session continues."""
    with RawSmtp("127.0.0.1", tls_relay.port) as c:
        c.expect(220)
        c.cmd("EHLO client.test", 250)
        c.cmd("MAIL FROM:<a@client.test>", 250)
        c.cmd("STARTTLS", 503)
        c.cmd("RSET", 250)
        c.cmd("QUIT", 221)


@pytest.mark.parametrize("backend_tls", ["yes", "no"])
def test_backend_tls_to_postfix(cert, backend_tls):
    """Plain client; backend_tls=yes -> the backend hop used STARTTLS
    (Postfix: starttls=1, Received "with ESMTPS"); =no -> it did not."""
    need(POSTFIX)
    if not is_root():
        pytest.skip("real Postfix needs root")
    crt, key = cert
    main = {"smtpd_tls_security_level": "may", "smtpd_tls_cert_file": crt,
            "smtpd_tls_key_file": key}
    with PostfixSmtpd(mode="plain", main=main) as pf, \
            Daemon(backend=pf.address, backend_identity="none",
                   backend_tls=backend_tls, grace_time="2s") as d:
        with RawSmtp("127.0.0.1", d.port) as c:
            c.expect(220)
            c.cmd("EHLO client.test", 250)
            c.cmd("MAIL FROM:<a@client.test>", 250)
            c.cmd("RCPT TO:<b@example.test>", 250)
            c.cmd("DATA", 354)
            c.send(b"Subject: btls\r\n\r\nhi\r\n.\r\n")
            c.expect(250)
            c.cmd("QUIT", 221)
        (m,) = pf.wait_messages(1)
        d.stop()  # closes a cached idle backend connection too
        # Postfix's per-session summary counts the STARTTLS it completed.
        end = time.time() + 5
        while "mail=1" not in pf.log() and time.time() < end:
            time.sleep(0.05)
        tls_used = re.search(r"disconnect from .* starttls=1 mail=1",
                             pf.log()) is not None
        assert tls_used == (backend_tls == "yes"), pf.log()[-2000:]
        assert ("ESMTPS" in (m.received or "")) == (backend_tls == "yes"), \
            m.received
