"""hostile_patterns.py - the hostile-client patterns of issue 10, as a table

  PATTERNS      [Pattern(name, desc, fn)]: every attack, in a fixed order
  CHUNKING_PATTERNS  the BDAT attacks again plus ones that need a backend
                offering CHUNKING (accepted chunks, spooled and spilled)
  Target        where and how to attack: the daemon's address, the admin
                API, the configured limits, optional probes (RSS, delivery)
  legit_session(t, marker)  one full EHLO/MAIL/RCPT/DATA/QUIT delivery
  Admin         a tiny client for the admin API's /metrics

Used by tests/blackbox/test_hostile_suite.py (one pytest case per pattern,
against one shared daemon) and by bench/soak (the same patterns in loops,
next to legitimate traffic).  Each pattern is fn(t): it attacks the daemon
at t.host:t.port from t.src, closes everything it opened before returning,
and raises AssertionError when the daemon's behaviour towards the attacker
itself is wrong (a session never cut, a smuggled command executed, a reply
that must not be there).  Whether the daemon survived, leaked or bloated is
the caller's business.

Patterns use only loopback (t.host, t.src are checked by RawSmtp) and the
standard library, plus /usr/bin/openssl for the renegotiation cases.  A
pattern's running time is bounded by a few smtp_timeouts.
"""

import collections
import http.client
import itertools
import os
import re
import select
import socket
import ssl
import struct
import subprocess
import threading
import time

from peers import RawSmtp, SmtpError, proxy_v1_header, proxy_v2_header

OPENSSL = "/usr/bin/openssl"


# ---------------------------------------------------------------- target

class Admin:
    """GET /metrics from the admin API with a bearer token."""

    def __init__(self, host, port, token):
        self.host, self.port, self.token = host, port, token

    def metrics(self, timeout=5):
        """metrics - {name: value} of the label-less samples of /metrics"""
        c = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            c.request("GET", "/metrics",
                      headers={"Authorization": "Bearer " + self.token})
            r = c.getresponse()
            body = r.read().decode("utf-8", "replace")
            if r.status != 200:
                raise RuntimeError("/metrics: HTTP %d" % r.status)
        finally:
            c.close()
        out = {}
        for line in body.splitlines():
            m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*) (\S+)$", line)
            if m:
                out[m.group(1)] = float(m.group(2))
        return out


class Target:
    """Everything a pattern needs to know about the daemon under attack.

    host, port        the daemon's SMTP listener (loopback)
    admin             Admin for /metrics, or None
    src               loopback source address of the attacker
    flood_src         source for the per-client connection flood (a
                      different address, so the cap hits only the flood)
    smtp_timeout      seconds (the daemon's smtp_timeout)
    tls_timeout       seconds (tls_handshake_timeout)
    size_limit        bytes (message_size_limit)
    per_client        max_connections_per_client
    rcpt_limit        smtp_recipient_limit
    tls               STARTTLS is offered
    rss               callable -> daemon RSS in bytes, or None (ASan, remote)
    delivered         callable(marker) -> bool: the marker reached the
                      backend, or None when it cannot be told (soak)
    exclusive         no one else talks to the daemon (the suite, not soak)
    """

    def __init__(self, host, port, *, admin=None, src="127.0.0.2",
                 flood_src="127.0.0.3", smtp_timeout=2.0, tls_timeout=2.0,
                 size_limit=8 << 20, per_client=20, rcpt_limit=1000,
                 tls=True, rss=None, delivered=None, exclusive=False):
        self.host, self.port, self.admin = host, port, admin
        self.src, self.flood_src = src, flood_src
        self.smtp_timeout, self.tls_timeout = smtp_timeout, tls_timeout
        self.size_limit, self.per_client = size_limit, per_client
        self.rcpt_limit, self.tls = rcpt_limit, tls
        self.rss, self.delivered, self.exclusive = rss, delivered, exclusive

    @property
    def cut_bound(self):
        """cut_bound - seconds within which a stalling client must be cut"""
        return 2 * self.smtp_timeout + 2.0


_serial = itertools.count(1)


def marker(tag):
    """marker - a unique token for one message (Message-ID local part)"""
    return "%s.%d.%d.%d" % (tag, os.getpid(), next(_serial),
                            time.monotonic_ns())


def message(mark, body=b"hello\r\n"):
    """message - a small RFC 5322 message carrying mark, without the dot"""
    return (b"From: <a@client.test>\r\nTo: <b@example.test>\r\n"
            b"Subject: hostile " + mark.encode() + b"\r\n"
            b"Message-ID: <" + mark.encode() + b"@client.test>\r\n\r\n" + body)


def legit_session(t, mark, src=None, timeout=10):
    """legit_session - 220, EHLO, MAIL, RCPT, DATA, ".", QUIT; raise
    AssertionError with the transcript unless every step succeeds"""
    c = None
    try:
        c = RawSmtp(t.host, t.port, source=src, timeout=timeout)
        c.expect(220)
        c.cmd("EHLO legit.client.test", 250)
        c.cmd("MAIL FROM:<legit@client.test>", 250)
        c.cmd("RCPT TO:<rcpt@example.test>", 250)
        c.cmd("DATA", 354)
        c.send(message(mark) + b".\r\n")
        c.expect(250)
        c.cmd("QUIT", 221)
    except (SmtpError, OSError) as e:
        log = b"".join((b"C: " if d == ">" else b"S: ") + x[:200]
                       for d, x in (c.log if c else []))
        raise AssertionError("legitimate session failed: %s\n%s"
                             % (e, log.decode("latin-1")))
    finally:
        if c:
            c.close()


# ---------------------------------------------------------------- helpers

def connect(t, src=None, timeout=None, rcvbuf=None):
    """connect - RawSmtp from the attacker's address"""
    tmo = timeout or (t.cut_bound + 3)
    if rcvbuf is None:
        return RawSmtp(t.host, t.port, source=src or t.src, timeout=tmo)
    # A tiny receive window must be set before connect().
    s = socket.socket(socket.AF_INET6 if ":" in t.host else socket.AF_INET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((src or t.src, 0))
    s.settimeout(tmo)
    s.connect((t.host, t.port))
    c = RawSmtp.__new__(RawSmtp)
    c.timeout, c.buf, c.log, c.sock = tmo, b"", [], s
    return c


def greet(t, src=None, **kw):
    """greet - connected, banner read, EHLO answered"""
    c = connect(t, src, **kw)
    try:
        c.expect(220)
        c.cmd("EHLO hostile.client.test", 250)
    except Exception:
        c.close()
        raise
    return c


def in_txn(t, rcpt=True):
    """in_txn - greeted, MAIL (and RCPT) accepted"""
    c = greet(t)
    try:
        c.cmd("MAIL FROM:<a@client.test>", 250)
        if rcpt:
            c.cmd("RCPT TO:<b@example.test>", 250)
    except Exception:
        c.close()
        raise
    return c


def rst_close(sock):
    """rst_close - close with SO_LINGER 0: the peer sees a RST"""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def send_quiet(sock, data):
    """send_quiet - sendall, ignoring a peer that closed or reset"""
    try:
        sock.sendall(data)
        return True
    except (OSError, ssl.SSLError):
        return False


def tcp_state(sock):
    """tcp_state - the kernel's TCP state of sock (1 ESTABLISHED,
    7 CLOSE, 8 CLOSE_WAIT), without reading anything"""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
        return info[0]
    except OSError:
        return 7


def wait_eof(sock, bound):
    """wait_eof - read and discard until EOF/RST; seconds it took, or None
    if the peer still had not closed after bound seconds"""
    start = time.monotonic()
    end = start + bound
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return None
        r, _, _ = select.select([sock], [], [], min(left, 0.5))
        if not r:
            continue
        try:
            b = sock.recv(65536)
        except ssl.SSLWantReadError:
            continue
        except (OSError, ssl.SSLError):
            return time.monotonic() - start
        if not b:
            return time.monotonic() - start


def read_all_replies(c, bound):
    """read_all_replies - [(code, first line)] until EOF or bound seconds"""
    out = []
    end = time.monotonic() + bound
    while time.monotonic() < end:
        try:
            code, lines = c.reply(timeout=max(0.05, end - time.monotonic()))
        except SmtpError:
            break
        except OSError:
            break
        out.append((code, lines[0] if lines else ""))
    return out


def codes(replies):
    return [c for c, _ in replies]


def assert_cut(elapsed, what, bound):
    assert elapsed is not None, (
        "the daemon still held %s after %.1f s" % (what, bound))


def trickle(sock, data, bound, interval=1.0):
    """trickle - send data one byte per interval until the peer closes;
    seconds until it closed, or None after bound seconds"""
    start = time.monotonic()
    end = start + bound
    nxt = start
    it = iter(data)
    sock.setblocking(False)
    try:
        while time.monotonic() < end:
            now = time.monotonic()
            if now >= nxt:
                b = next(it, None)
                if b is not None:
                    try:
                        sock.send(bytes([b]))
                    except (ssl.SSLWantWriteError, ssl.SSLWantReadError,
                            BlockingIOError):
                        pass
                    except (OSError, ssl.SSLError):
                        return time.monotonic() - start
                nxt += interval
            r, _, _ = select.select([sock], [], [],
                                    max(0.0, min(nxt, end) - now))
            if r:
                try:
                    chunk = sock.recv(65536)
                except (ssl.SSLWantReadError, BlockingIOError):
                    continue
                except (OSError, ssl.SSLError):
                    return time.monotonic() - start
                if not chunk:
                    return time.monotonic() - start
        return None
    finally:
        try:
            sock.setblocking(True)
        except OSError:
            pass


def tls_ctx(**kw):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


def starttls(t, c):
    """starttls - STARTTLS on a greeted RawSmtp; the TLS socket"""
    c.cmd("STARTTLS", 220)
    s = tls_ctx().wrap_socket(c.sock, server_hostname="mx")
    c.sock = s
    return s


def client_hello():
    """client_hello - the bytes of a real TLS ClientHello"""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    o = tls_ctx().wrap_bio(inc, out, server_hostname="mx.mailshaper.test")
    try:
        o.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def flood(t, setup, payload, bound=None):
    """flood - after setup(c), send payload from a thread while reading
    every reply; [(code, line)] until EOF or bound seconds"""
    c = setup(t) if setup else connect(t)
    bound = bound or (t.cut_bound + 10)
    try:
        if not setup:
            c.expect(220)
        th = threading.Thread(target=send_quiet, args=(c.sock, payload),
                              daemon=True)
        th.start()
        replies = read_all_replies(c, bound)
        th.join(2)
        return replies
    finally:
        rst_close(c.sock)


def assert_flood_replies(replies, ok=(), allow_close=True, what="flood"):
    """every reply is 2xx/3xx of ok, 4xx or 5xx; at most one 421 (last)"""
    bad = [(cd, ln) for cd, ln in replies
           if not (cd in ok or 400 <= cd < 600)]
    assert not bad, "%s: unexpected replies %r" % (what, bad[:5])
    n421 = [i for i, (cd, _) in enumerate(replies) if cd == 421]
    assert len(n421) <= 1 and (not n421 or n421[0] == len(replies) - 1), \
        "%s: replies after 421: %r" % (what, replies[n421[0]:][:5])


# ---------------------------------------------------------------- BDAT

def p_bdat_no_txn(t):
    c = greet(t)
    try:
        c.send(b"BDAT 12 LAST\r\nhello world\n")
        code, text = c.reply()
        assert 500 <= code < 600, "BDAT without MAIL/RCPT: %d %s" % (
            code, text)
        c.cmd("NOOP", 250)
        c.cmd("QUIT", 221)
    finally:
        c.close()


def p_bdat_refused_commands(t):
    c = in_txn(t)
    chunk = (b"RSET\r\nMAIL FROM:<evil@client.test>\r\nRCPT TO:<x@y>\r\n"
             b"QUIT\r\n")
    try:
        c.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
        code, text = c.reply()
        assert code >= 500 or code == 250, (code, text)
        # The chunk's lines are data: the next reply is NOOP's, not RSET's
        # 250 followed by MAIL's and a 221.
        c.cmd("NOOP", 250)
        assert not c.closed(0.3), "QUIT inside the BDAT chunk was executed"
        c.cmd("RSET", 250)
        c.cmd("QUIT", 221)
    finally:
        c.close()


def p_bdat_maxlong(t):
    c = in_txn(t)
    try:
        c.send(b"BDAT 9223372036854775807\r\n" + b"x" * 65536 +
               b"\r\nMAIL FROM:<smuggled@client.test>\r\n")
        # Everything is chunk data; then the client stalls.
        el = wait_eof(c.sock, t.cut_bound)
        assert_cut(el, "a BDAT 2^63-1 chunk that stalls", t.cut_bound)
    finally:
        c.close()


def p_bdat_overflow(t):
    """Sizes that do not parse or do not fit: a 5xx and the session goes
    on, or 421 and the end (no way to find such a chunk's end)."""
    for arg in (b"99999999999999999999999", b"-1 LAST", b"0x10",
                b"18446744073709551616 LAST", b"", b"12 LAST junk"):
        c = in_txn(t)
        try:
            c.send(b"BDAT " + arg + b"\r\n" + b"MAIL FROM:<s@x>\r\n")
            code, text = c.reply()
            assert 500 <= code < 600 or code == 421, "BDAT %r: %d %s" % (
                arg, code, text)
            if code == 421:
                el = wait_eof(c.sock, 3)
                assert_cut(el, "a session after 421", 3)
                continue
            rest = codes(read_all_replies(c, 0.3))
            assert all(x >= 400 for x in rest), (arg, rest)
            c.cmd("NOOP", 250)
            c.cmd("QUIT", 221)
        finally:
            c.close()


def p_bdat_huge(t):
    n = t.size_limit + (4 << 20)
    c = in_txn(t)
    try:
        c.send(b"BDAT %d LAST\r\n" % n)
        blk = b"y" * 65535 + b"\n"
        sent = 0
        while sent < n:
            k = min(len(blk), n - sent)
            c.send(blk[:k])
            sent += k
        code, text = c.reply(timeout=t.cut_bound + 5)
        assert 500 <= code < 600, "BDAT past the size limit: %d %s" % (
            code, text)
        c.cmd("NOOP", 250)
        c.cmd("QUIT", 221)
    finally:
        c.close()


def p_data_after_bdat(t):
    mark = marker("after-bdat")
    c = in_txn(t)
    try:
        c.send(b"BDAT 5\r\nhello")
        code, text = c.reply()
        assert code in (250,) or 500 <= code < 600, (code, text)
        code, text = c.cmd("DATA")
        if code == 354:
            c.send(message(mark) + b".\r\n")
            code, text = c.reply()
            assert code == 250 or 400 <= code < 600, (code, text)
        else:
            assert 500 <= code < 600, "DATA after BDAT: %d %s" % (code,
                                                                 text)
        c.cmd("QUIT", 221)
    finally:
        c.close()


# ---------------------------------------------------------------- floods

def _never_reads(line):
    return lambda t: p_never_reads(t, line)


def p_never_reads(t, line):
    """2 MB of a pipelined command from a client with a tiny window that
    never reads: back-pressure must stop the daemon reading, and the
    session must end within a bound while the client still holds the
    socket.  (HELP alone now meets smtp_junk_command_limit first; EHLO,
    whose reply is ten times its size, is the back-pressure case.)"""
    c = connect(t, rcvbuf=4096)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    rss0 = t.rss() if t.rss else None
    peak = rss0 or 0
    payload = line * (2 * 1024 * 1024 // len(line))
    try:
        c.sock.setblocking(False)
        view = memoryview(payload)
        start = time.monotonic()
        end = start + t.cut_bound + 4
        closed_at = None
        while time.monotonic() < end:
            if view:
                try:
                    k = c.sock.send(view[:65536])
                    view = view[k:]
                except BlockingIOError:
                    pass
                except OSError:
                    closed_at = time.monotonic() - start
                    break
            if t.rss:
                peak = max(peak, t.rss())
            st = tcp_state(c.sock)
            if st != 1:
                closed_at = time.monotonic() - start
                break
            if t.exclusive and t.admin and not view:
                if t.admin.metrics().get("mailshaper_sessions_live", 1) == 0:
                    closed_at = time.monotonic() - start
                    break
            time.sleep(0.1)
        if rss0:
            grew = (peak - rss0) / 2 ** 20
            assert grew < 16, ("RSS grew by %.1f MiB while a client did not "
                               "read (no output back-pressure?)" % grew)
        assert closed_at is not None, (
            "the daemon still held a client that never reads after %.1f s "
            "(%d of %d bytes of %r accepted)" % (
                t.cut_bound + 4, len(payload) - len(view), len(payload),
                line))
    finally:
        rst_close(c.sock)


def _mk_flood(verb_line, n=10000, setup=greet, ok=(250,)):
    def fn(t):
        replies = flood(t, setup, verb_line * n + b"QUIT\r\n")
        assert_flood_replies(replies, ok=ok + (214, 221, 354),
                             what=verb_line.strip().decode("latin-1")[:20])
    return fn


FLOODS = [
    ("EHLO", b"EHLO flood.client.test\r\n"),
    ("HELO", b"HELO flood.client.test\r\n"),
    ("MAIL", b"MAIL FROM:<a@client.test>\r\n"),
    ("RCPT", b"RCPT TO:<b@example.test>\r\n"),
    ("DATA", b"DATA\r\n"),
    ("BDAT", b"BDAT 1\r\nx"),
    ("RSET", b"RSET\r\n"),
    ("NOOP", b"NOOP\r\n"),
    ("VRFY", b"VRFY root\r\n"),
    ("HELP", b"HELP\r\n"),
    ("STARTTLS", b"STARTTLS\r\n"),
    ("QUIT", b"QUIT\r\n"),
    ("XCLIENT", b"XCLIENT ADDR=192.0.2.1 NAME=spoofed.example\r\n"),
    ("AUTH", b"AUTH PLAIN AGFAAGI=\r\n"),
    ("junk", b"XYZZY plugh\r\n"),
]


def p_flood_starttls(t):
    """STARTTLS x10000: at most one 220, then the rest is TLS garbage."""
    c = greet(t)
    try:
        c.send(b"STARTTLS\r\n" * 10000 + b"QUIT\r\n")
        replies = read_all_replies(c, t.cut_bound + 5)
        assert codes(replies).count(220) <= 1, replies[:5]
    finally:
        rst_close(c.sock)


def p_flood_quit(t):
    """QUIT x10000: one 221 and the connection closes."""
    c = greet(t)
    try:
        send_quiet(c.sock, b"QUIT\r\n" * 10000)
        replies = read_all_replies(c, t.cut_bound + 5)
        assert codes(replies) == [221], replies[:5]
    finally:
        rst_close(c.sock)


def p_rcpt_10000(t):
    def setup(t):
        c = greet(t)
        c.cmd("MAIL FROM:<a@client.test>", 250)
        return c
    payload = b"".join(b"RCPT TO:<r%d@example.test>\r\n" % i
                       for i in range(10000)) + b"RSET\r\nQUIT\r\n"
    replies = flood(t, setup, payload, bound=60)
    ok = codes(replies).count(250)
    assert ok <= t.rcpt_limit + 1, (
        "%d RCPTs accepted in one transaction (smtp_recipient_limit %d)"
        % (ok - 1, t.rcpt_limit))
    assert_flood_replies(replies, ok=(250, 221), what="10000 RCPT")


def p_rset_storm(t):
    def setup(t):
        c = greet(t)
        c.cmd("MAIL FROM:<a@client.test>", 250)
        return c
    replies = flood(t, setup, b"RSET\r\n" * 5000 + b"QUIT\r\n", bound=60)
    assert_flood_replies(replies, ok=(250, 221), what="RSET storm")


def p_mail_no_rcpt(t):
    payload = b"MAIL FROM:<m@client.test>\r\nRSET\r\n" * 1000 + b"QUIT\r\n"
    replies = flood(t, greet, payload, bound=60)
    assert_flood_replies(replies, ok=(250, 221), what="MAIL+RSET x1000")


# ---------------------------------------------------------------- slowloris

def at_state(t, state, content=b"", bdat=b"BDAT 100000 LAST\r\n"):
    """a client connection brought to `state` (banner: before the 220;
    data: after 354 and `content`; bdat: after the `bdat` command line)"""
    if state in ("banner", "helo"):
        c = connect(t)
        if state == "helo":
            c.expect(220)
    elif state in ("mail", "tls"):
        c = greet(t)
        if state == "tls":
            starttls(t, c)
    elif state == "rcpt":
        c = in_txn(t, rcpt=False)
    elif state == "data":
        c = in_txn(t)
        c.cmd("DATA", 354)
        if content:
            c.send(content)
    elif state == "bdat":
        c = in_txn(t)
        c.send(bdat)
    else:
        raise ValueError(state)
    return c


def _slow(state):
    def fn(t):
        c = at_state(t, state)
        verbs = {"banner": b"EHLO ", "helo": b"EHLO ", "mail": b"MAIL FROM:<",
                 "rcpt": b"RCPT TO:<", "tls": b"EHLO "}
        data = verbs.get(state, b"") + b"x" * 1000
        try:
            el = trickle(c.sock, data, t.cut_bound)
            assert_cut(el, "a 1 byte/s client in state %s" % state,
                       t.cut_bound)
        finally:
            c.close()
    return fn


# ---------------------------------------------------------------- STARTTLS

def p_starttls_silent(t):
    c = greet(t)
    try:
        c.cmd("STARTTLS", 220)
        el = wait_eof(c.sock, t.tls_timeout + 3)
        assert_cut(el, "a client silent after STARTTLS", t.tls_timeout + 3)
    finally:
        c.close()


def p_starttls_half_hello(t):
    c = greet(t)
    try:
        c.cmd("STARTTLS", 220)
        ch = client_hello()
        c.send(ch[:len(ch) // 2])
        el = wait_eof(c.sock, t.tls_timeout + 3)
        assert_cut(el, "half a ClientHello", t.tls_timeout + 3)
    finally:
        c.close()


def p_starttls_garbage(t):
    c = greet(t)
    try:
        c.cmd("STARTTLS", 220)
        send_quiet(c.sock, os.urandom(16384))
        el = wait_eof(c.sock, t.tls_timeout + 3)
        assert_cut(el, "garbage instead of a ClientHello", t.tls_timeout + 3)
    finally:
        rst_close(c.sock)


def p_starttls_plain_smtp(t):
    """STARTTLS, then plain-text EHLO/MAIL as if TLS had not started."""
    c = greet(t)
    try:
        c.cmd("STARTTLS", 220)
        send_quiet(c.sock, b"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"
                   b"DATA\r\n")
        el = wait_eof(c.sock, t.tls_timeout + 3)
        assert_cut(el, "plain SMTP after STARTTLS", t.tls_timeout + 3)
    finally:
        rst_close(c.sock)


def _s_client(t, args, script, bound):
    """_s_client - openssl s_client -starttls smtp, script on its stdin;
    (returncode, output).  s_client reads stdin only after the handshake,
    so the whole script can be written at once."""
    p = subprocess.Popen([OPENSSL, "s_client", "-quiet", "-starttls", "smtp",
                          "-connect", "%s:%d" % (t.host, t.port)] + args,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    try:
        out, _ = p.communicate(input=script, timeout=bound)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
    return p.returncode, out


def p_tls_renegotiate(t):
    """TLS 1.2, then 20 client-initiated renegotiations ("R" in s_client),
    then EHLO and QUIT inside TLS."""
    _s_client(t, ["-tls1_2"], b"R\n" * 20 + b"EHLO after.reneg\r\n"
              b"QUIT\r\n", t.cut_bound + 5)


def p_tls_keyupdate(t):
    """TLS 1.3, then 200 KeyUpdate requests ("K": update and request)."""
    _s_client(t, ["-tls1_3"], b"K\n" * 200 + b"NOOP\r\nQUIT\r\n",
              t.cut_bound + 5)


def p_starttls_injection(t):
    """STARTTLS plus pipelined commands in the same packet (CVE-2011-0411):
    none of them may be answered inside TLS."""
    c = greet(t)
    try:
        c.send(b"STARTTLS\r\nRSET\r\nMAIL FROM:<inj@client.test>\r\n")
        c.expect(220)
        s = tls_ctx().wrap_socket(c.sock, server_hostname="mx")
        c.sock = s
        code, text = c.cmd("EHLO after.tls")
        assert code == 250, "first reply inside TLS: %d %s" % (code, text)
        c.cmd("QUIT", 221)
    except ssl.SSLError:
        pass  # refusing the handshake after injection is fine too
    finally:
        c.close()


# ---------------------------------------------------------------- half-close

def _half(state):
    def fn(t):
        c = at_state(t, state, content=b"Subject: half\r\n\r\npartial line",
                     bdat=b"BDAT 1000 LAST\r\nabc")
        try:
            c.sock.shutdown(socket.SHUT_WR)
            el = wait_eof(c.sock, 3 + t.smtp_timeout)
            assert_cut(el, "a half-closed client in state %s" % state,
                       3 + t.smtp_timeout)
        finally:
            c.close()
    return fn


def p_half_pipelined_quit(t):
    """Whole transaction and QUIT pipelined, then SHUT_WR: every reply
    is still owed (250 for the message, 221), then the daemon closes."""
    mark = marker("half-quit")
    c = connect(t)
    try:
        c.send(b"EHLO half.client.test\r\nMAIL FROM:<a@client.test>\r\n"
               b"RCPT TO:<b@example.test>\r\nDATA\r\n" + message(mark) +
               b".\r\nQUIT\r\n")
        c.sock.shutdown(socket.SHUT_WR)
        got = codes(read_all_replies(c, t.cut_bound + 3))
        assert got == [220, 250, 250, 250, 354, 250, 221], got
    finally:
        c.close()
    if t.delivered:
        assert t.delivered(mark), "pipelined message before SHUT_WR lost"


def p_half_pipelined_noquit(t):
    """Transaction pipelined without QUIT, then SHUT_WR: no reply after
    EOF may be a lie; the daemon closes within a bound."""
    mark = marker("half-noquit")
    c = connect(t)
    try:
        c.send(b"EHLO half.client.test\r\nMAIL FROM:<a@client.test>\r\n"
               b"RCPT TO:<b@example.test>\r\nDATA\r\n" + message(mark) +
               b".\r\n")
        c.sock.shutdown(socket.SHUT_WR)
        got = codes(read_all_replies(c, t.cut_bound + 3))
        assert got[:5] == [220, 250, 250, 250, 354], got
        if len(got) > 5 and got[5] == 250 and t.delivered:
            assert t.delivered(mark), "250 for a message the backend lacks"
        el = wait_eof(c.sock, 1)
        assert_cut(el, "a half-closed pipelining client", t.cut_bound + 4)
    finally:
        c.close()


def p_half_pipelined_middata(t):
    """EHLO..DATA and half a message pipelined, then SHUT_WR: nothing is
    delivered and the daemon closes."""
    mark = marker("half-mid")
    c = connect(t)
    try:
        c.send(b"EHLO half.client.test\r\nMAIL FROM:<a@client.test>\r\n"
               b"RCPT TO:<b@example.test>\r\nDATA\r\n" + message(mark) +
               b"no dot here\r\n")
        c.sock.shutdown(socket.SHUT_WR)
        got = codes(read_all_replies(c, t.cut_bound + 3))
        assert 250 not in got[5:], "250 after a message without its dot"
    finally:
        c.close()
    if t.delivered:
        time.sleep(0.2)
        assert not t.delivered(mark), "half a message was delivered"


# ---------------------------------------------------------------- bytes

def _bytes_case(field):
    def fn(t):
        c = greet(t)
        try:
            if field == "verb":
                lines = [b"NO\x00OP", b"\xe9HLO x", b"MA\xffIL FROM:<a@b>",
                         b"\x00\x00\x00\x00"]
            elif field == "helo":
                lines = [b"EHLO a\x00b.example", b"HELO \xff\xfe\xfd",
                         b"EHLO \xc3\xa9t\xc3\xa9.example"]
            elif field == "mail":
                lines = [b"MAIL FROM:<a\x00b@client.test>",
                         b"MAIL FROM:<\xff\xfe@client.test>",
                         b"RSET"]
            elif field == "rcpt":
                c.cmd("MAIL FROM:<a@client.test>", 250)
                lines = [b"RCPT TO:<a\x00b@example.test>",
                         b"RCPT TO:<\x80\x81@example.test>", b"RSET"]
            elif field == "params":
                lines = [b"MAIL FROM:<a@client.test> SIZE=1\x00",
                         b"MAIL FROM:<a@client.test> BODY=\xff8BITMIME",
                         b"MAIL FROM:<a@client.test> X\x01=\x02",
                         b"RSET"]
            for ln in lines:
                code, text = c.cmd(ln)
                assert code in (250, 221) or 400 <= code < 600, (ln, code)
                if code == 421:
                    return
                if b"\x00" in ln:
                    assert code >= 500, "NUL accepted in %r: %d" % (ln, code)
            c.cmd("NOOP", 250)
            c.cmd("QUIT", 221)
        finally:
            c.close()
    return fn


def p_bytes_data(t):
    """NUL, 8-bit, bare CR and bare LF inside DATA: normalised or refused,
    never a smuggled end of data."""
    mark = marker("bytes-data")
    c = in_txn(t)
    try:
        c.cmd("DATA", 354)
        c.send(message(mark, b"nul\x00here \xff\xfe 8bit\r\nbare\rcr\r\n"
                       b"bare\nlf\n.\nMAIL FROM:<smuggled@x>\n\x00.\x00\r\n"))
        c.send(b".\r\n")
        code, text = c.reply()
        assert code == 250 or 500 <= code < 600, (code, text)
        # Only one reply for the whole message, then NOOP's.
        c.cmd("NOOP", 250)
        c.cmd("QUIT", 221)
    finally:
        c.close()


def p_bare_lf_commands(t):
    c = connect(t)
    try:
        c.expect(220)
        c.send(b"EHLO bare.lf\nNOOP\nMAIL FROM:<a@client.test>\nRSET\n")
        got = codes(read_all_replies(c, 1.5))
        assert all(x == 250 or 400 <= x < 600 for x in got), got
        c.send(b"QUIT\r\n")
        wait_eof(c.sock, 3)
    finally:
        c.close()


def p_bare_cr_commands(t):
    """Commands ended by a bare CR never end: line limit, then go on."""
    c = connect(t)
    try:
        c.expect(220)
        c.send(b"EHLO bare.cr\rNOOP\r" * 200 + b"\r\n")
        code, text = c.reply()
        assert 400 <= code < 600 or code == 250, (code, text)
        c.send(b"NOOP\r\n")
        got = codes(read_all_replies(c, 1.0))
        assert got and got[-1] in (250, 421), got
    finally:
        c.close()


def p_long_line_one_read(t):
    c = greet(t)
    try:
        c.send(b"NOOP " + b"a" * (1 << 20) + b"\r\n")
        code, text = c.reply()
        assert code == 500, (code, text)
        c.cmd("NOOP", 250)
        c.cmd("QUIT", 221)
    finally:
        c.close()


def p_long_line_many_reads(t):
    c = greet(t)
    try:
        c.send(b"MAIL FROM:<")
        for _ in range(64):
            c.send(b"b" * 16384)
            time.sleep(0.005)
        c.send(b">\r\n")
        code, text = c.reply()
        assert code == 500, (code, text)
        c.cmd("NOOP", 250)
        c.cmd("QUIT", 221)
    finally:
        c.close()


def p_huge_path(t):
    c = greet(t)
    try:
        code, _ = c.cmd(b"MAIL FROM:<" + b"p" * 900 + b"@client.test>")
        assert 500 <= code < 600, code
        c.cmd("MAIL FROM:<a@client.test>", 250)
        code, _ = c.cmd(b"RCPT TO:<" + b"q" * 900 + b"@example.test>")
        assert 500 <= code < 600, code
        code, _ = c.cmd(b"MAIL FROM:<a@client.test> SIZE=" + b"9" * 40)
        assert 500 <= code < 600, code
        c.cmd("QUIT", 221)
    finally:
        c.close()


# ---------------------------------------------------------------- foreign

def p_proxy_v1(t):
    c = connect(t)
    try:
        c.send(proxy_v1_header("192.0.2.66", 4444, "127.0.0.1", 25))
        c.expect(220)
        code, text = c.reply()
        assert 500 <= code < 600, "PROXY v1 line: %d %s" % (code, text)
        c.cmd("EHLO after.proxy", 250)
        c.cmd("QUIT", 221)
    finally:
        c.close()


def p_proxy_v2(t):
    """A PROXY v2 header: its signature holds CRLF CRLF NUL CRLF "QUIT" LF,
    so an SMTP server answers junk, then 221 and closes."""
    c = connect(t)
    try:
        c.send(proxy_v2_header("192.0.2.66", 4444, "127.0.0.1", 25) +
               b"EHLO after.proxy2\r\n")
        c.expect(220)
        got = codes(read_all_replies(c, t.cut_bound))
        assert all(400 <= x < 600 or x in (221, 250) for x in got), got
        assert 250 not in got[got.index(221):] if 221 in got else True, \
            "commands after the header's QUIT were answered: %r" % got
    finally:
        c.close()


def p_http_get(t):
    c = connect(t)
    try:
        c.send(b"GET / HTTP/1.1\r\nHost: mx.mailshaper.test\r\n"
               b"User-Agent: hostile\r\nAccept: */*\r\n\r\n")
        got = codes(read_all_replies(c, t.cut_bound))
        assert got[0] == 220 and all(400 <= x < 600 for x in got[1:]), got
    finally:
        c.close()


def p_http_post_big(t):
    c = connect(t)
    try:
        body = b"z" * 300000
        send_quiet(c.sock, b"POST /upload HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Length: %d\r\n\r\n" % len(body) + body)
        got = codes(read_all_replies(c, t.cut_bound))
        assert got[0] == 220 and all(400 <= x < 600 for x in got[1:]), got
    finally:
        rst_close(c.sock)


def p_smtp_to_admin(t):
    assert t.admin, "no admin API"
    s = socket.create_connection((t.admin.host, t.admin.port), timeout=5)
    try:
        send_quiet(s, b"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"
                   + b"x" * 100000 + b"\r\n.\r\nQUIT\r\n")
        el = wait_eof(s, 5)
        assert_cut(el, "an SMTP client on the admin port", 5)
    finally:
        rst_close(s)


def p_xclient_inject(t):
    c = greet(t)
    try:
        for ln in (b"XCLIENT ADDR=192.0.2.1 NAME=spoofed.example",
                   b"XFORWARD ADDR=192.0.2.1",
                   b"MAIL FROM:<a@client.test> XCLIENT=ADDR=192.0.2.1"):
            code, text = c.cmd(ln)
            assert 500 <= code < 600, "%r: %d %s" % (ln, code, text)
        c.cmd("QUIT", 221)
    finally:
        c.close()


def p_auth_inject(t):
    c = greet(t)
    try:
        for ln in (b"AUTH PLAIN AGFkbWluAHNlY3JldA==", b"AUTH LOGIN",
                   b"YWRtaW4=", b"AUTH CRAM-MD5 " + b"A" * 800):
            code, text = c.cmd(ln)
            assert 500 <= code < 600 or code == 421, "%r: %d" % (ln, code)
            if code == 421:
                return
        c.cmd("QUIT", 221)
    finally:
        c.close()


# ---------------------------------------------------------------- content

def p_data_nodot_20mb(t):
    c = in_txn(t)
    rss0 = t.rss() if t.rss else None
    peak = rss0 or 0
    try:
        c.cmd("DATA", 354)
        blk = (b"q" * 998 + b"\r\n") * 64
        ok = True
        for i in range((20 << 20) // len(blk)):
            ok = send_quiet(c.sock, blk)
            if not ok:
                break
            if t.rss and i % 64 == 0:
                peak = max(peak, t.rss())
        el = wait_eof(c.sock, t.cut_bound)
        if t.rss:
            peak = max(peak, t.rss())
        assert_cut(el, "a client stalled after 20 MB of DATA", t.cut_bound)
        if rss0:
            grew = (peak - rss0) / 2 ** 20
            assert grew < 24, "RSS grew by %.1f MiB for one 20 MB message " \
                "(spool_memory not applied?)" % grew
    finally:
        rst_close(c.sock)


def p_data_spill_6mb(t):
    """A 6 MB message (over spool_memory) with its dot: delivered."""
    mark = marker("spill")
    c = in_txn(t)
    try:
        c.cmd("DATA", 354)
        c.send(message(mark))
        blk = (b"s" * 998 + b"\r\n") * 64
        for _ in range((6 << 20) // len(blk)):
            c.send(blk)
        c.send(b".\r\n")
        code, text = c.reply(timeout=30)
        assert code == 250, "6 MB message: %d %s" % (code, text)
        c.cmd("QUIT", 221)
    finally:
        c.close()


def p_data_too_big(t):
    """DATA past message_size_limit, with the dot: 552, session goes on."""
    c = in_txn(t)
    try:
        c.cmd("DATA", 354)
        blk = (b"t" * 998 + b"\r\n") * 64
        for _ in range((t.size_limit + (1 << 20)) // len(blk)):
            c.send(blk)
        c.send(b".\r\n")
        code, text = c.reply(timeout=30)
        assert 500 <= code < 600, "over the size limit: %d %s" % (code, text)
        c.cmd("NOOP", 250)
        c.cmd("QUIT", 221)
    finally:
        c.close()


def p_rst_mid_data(t):
    mark = marker("rst-data")
    c = in_txn(t)
    try:
        c.cmd("DATA", 354)
        c.send(message(mark, b"r" * 200000))
        time.sleep(0.1)
    finally:
        rst_close(c.sock)
    if t.delivered:
        time.sleep(0.3)
        assert not t.delivered(mark), "a message cut by RST was delivered"


def p_rst_after_pipeline(t):
    """A whole pipelined transaction, then RST before any reply."""
    c = connect(t)
    try:
        c.send(b"EHLO rst.client.test\r\nMAIL FROM:<a@client.test>\r\n"
               b"RCPT TO:<b@example.test>\r\nDATA\r\n" + message(marker("rp"))
               + b".\r\nQUIT\r\n")
    finally:
        rst_close(c.sock)
    time.sleep(0.2)


def p_rst_mid_tls(t):
    c = greet(t)
    try:
        c.cmd("STARTTLS", 220)
        ch = client_hello()
        c.send(ch)
        time.sleep(0.05)
    finally:
        rst_close(c.sock)


def p_conn_flood(t):
    """max_connections_per_client + 10 connections from one address: the
    cap gets 220, the rest 421; all of them closed at once."""
    socks, got = [], collections.Counter()
    try:
        for _ in range(t.per_client + 10):
            c = connect(t, src=t.flood_src, timeout=5)
            socks.append(c)
        for c in socks:
            try:
                code, _ = c.reply(timeout=5)
            except SmtpError:
                code = 0
            got[code] += 1
        if t.exclusive:
            assert got[220] == t.per_client, dict(got)
            assert got[421] == 10, dict(got)
    finally:
        for c in socks:
            rst_close(c.sock)


def p_idle(t):
    c = connect(t)
    try:
        c.expect(220)
        el = wait_eof(c.sock, t.cut_bound)
        assert_cut(el, "an idle client", t.cut_bound)
    finally:
        c.close()


def p_pregreet_flood(t):
    """1 MB sent right after connect, before reading the banner."""
    c = connect(t)
    try:
        send_quiet(c.sock, b"EHLO pre\r\n" * 100000)
        got = codes(read_all_replies(c, t.cut_bound + 3))
        assert got and got[0] == 220, got[:3]
        assert_flood_replies([(x, "") for x in got[1:]], ok=(250,),
                             what="pregreet flood")
    finally:
        rst_close(c.sock)


def p_error_storm(t):
    """Unknown commands until smtp_error_limit: 421 and close."""
    c = greet(t)
    try:
        send_quiet(c.sock, b"BOGUS\r\n" * 50)
        got = codes(read_all_replies(c, t.cut_bound + 3))
        assert got and got[-1] == 421, got
        assert len(got) <= 50, got
    finally:
        c.close()


# ---------------------------------------------------------------- more

def p_tls_never_reads(t):
    """STARTTLS, then 2 MB of pipelined EHLO inside TLS from a client that
    never reads: the same back-pressure and write timeout under TLS."""
    c = connect(t, rcvbuf=4096)
    try:
        c.expect(220)
        c.cmd("EHLO tls.never.reads", 250)
        s = starttls(t, c)
        s.setblocking(False)
        line = b"EHLO tls.never.reads\r\n"
        payload = memoryview(line * (2 * 1024 * 1024 // len(line)))
        rss0 = t.rss() if t.rss else None
        peak = rss0 or 0
        start = time.monotonic()
        end = start + t.cut_bound + 4
        closed = False
        while time.monotonic() < end:
            if payload:
                try:
                    k = s.send(payload[:16384])
                    payload = payload[k:]
                except (ssl.SSLWantWriteError, ssl.SSLWantReadError,
                        BlockingIOError):
                    pass
                except (OSError, ssl.SSLError):
                    closed = True
                    break
            if t.rss:
                peak = max(peak, t.rss())
            if tcp_state(s) != 1:
                closed = True
                break
            if t.exclusive and t.admin and not payload:
                if t.admin.metrics().get("mailshaper_sessions_live", 1) == 0:
                    closed = True
                    break
            time.sleep(0.05)
        if rss0:
            grew = (peak - rss0) / 2 ** 20
            assert grew < 16, "RSS grew by %.1f MiB while a TLS client did " \
                "not read" % grew
        assert closed, "the daemon still held a TLS client that never " \
            "reads after %.1f s" % (t.cut_bound + 4)
    finally:
        rst_close(c.sock)


def p_tls_long_line(t):
    """STARTTLS, then a 1 MB command line inside TLS: one 500, go on."""
    c = greet(t)
    try:
        starttls(t, c)
        c.cmd("EHLO inside.tls", 250)
        c.send(b"NOOP " + b"l" * (1 << 20) + b"\r\n")
        code, text = c.reply()
        assert code == 500, (code, text)
        c.cmd("NOOP", 250)
        c.cmd("QUIT", 221)
    finally:
        c.close()


def p_many_slowloris(t):
    """16 slow clients at once (4 each in helo, mail, data and TLS), one
    byte a second: every one of them is cut within the bound."""
    conns = []
    try:
        for i in range(16):      # under max_connections_per_client
            st = ("helo", "mail", "data", "tls")[i % 4]
            if st == "helo":
                c = connect(t)
                c.expect(220)
            elif st == "mail":
                c = greet(t)
            elif st == "data":
                c = in_txn(t)
                c.cmd("DATA", 354)
            else:
                c = greet(t)
                starttls(t, c)
            c.sock.setblocking(False)
            conns.append([st, c, None])
        start = time.monotonic()
        end = start + t.cut_bound
        while time.monotonic() < end and any(x[2] is None for x in conns):
            for x in conns:
                if x[2] is not None:
                    continue
                try:
                    x[1].sock.send(b"z")
                except (ssl.SSLWantWriteError, ssl.SSLWantReadError,
                        BlockingIOError):
                    pass
                except (OSError, ssl.SSLError):
                    x[2] = time.monotonic() - start
                    continue
                try:
                    while True:
                        b = x[1].sock.recv(65536)
                        if not b:
                            x[2] = time.monotonic() - start
                            break
                except (ssl.SSLWantReadError, BlockingIOError):
                    pass
                except (OSError, ssl.SSLError):
                    x[2] = time.monotonic() - start
            time.sleep(1.0)
        held = [x[0] for x in conns if x[2] is None]
        assert not held, "still held after %.1f s: %d slow clients (%s)" % (
            t.cut_bound, len(held), ", ".join(held))
    finally:
        for x in conns:
            rst_close(x[1].sock)


def p_concurrent_spill(t):
    """Three 3 MB messages at once (9 MB > spool_memory together): all
    three delivered."""
    marks = [marker("cspill") for _ in range(3)]
    conns = [in_txn(t) for _ in marks]
    try:
        for c in conns:
            c.cmd("DATA", 354)
        for c, m in zip(conns, marks):
            c.send(message(m))
        blk = (b"c" * 998 + b"\r\n") * 64
        for _ in range((3 << 20) // len(blk)):
            for c in conns:
                c.send(blk)
        for c in conns:
            c.send(b".\r\n")
        for c in conns:
            code, text = c.reply(timeout=30)
            assert code == 250, "concurrent 3 MB message: %d %s" % (code,
                                                                   text)
            c.cmd("QUIT", 221)
    finally:
        for c in conns:
            c.close()
    if t.delivered:
        for m in marks:
            assert t.delivered(m), "a concurrent 3 MB message is missing"


def p_many_messages_pipelined(t):
    """200 small messages pipelined in one session (MAIL RCPT DATA body .):
    200 x 250 for the dots, every one at the backend."""
    marks = [marker("pipe") for _ in range(200)]
    c = greet(t)
    try:
        payload = b"".join(b"MAIL FROM:<a@client.test>\r\nRCPT TO:<b@example."
                           b"test>\r\nDATA\r\n" + message(m) + b".\r\n"
                           for m in marks) + b"QUIT\r\n"
        th = threading.Thread(target=send_quiet, args=(c.sock, payload),
                              daemon=True)
        th.start()
        got = codes(read_all_replies(c, 60))
        th.join(2)
        assert got.count(354) == 200 and got.count(250) == 600 and \
            got[-1] == 221, "replies: %s" % collections.Counter(got)
    finally:
        c.close()
    if t.delivered:
        missing = [m for m in marks[::40] if not t.delivered(m)]
        assert not missing, "pipelined messages missing: %s" % missing


def p_after_quit(t):
    """QUIT, then 1 MB more: 221, close, nothing else answered."""
    c = greet(t)
    try:
        c.send(b"QUIT\r\n")
        send_quiet(c.sock, b"NOOP\r\n" * 170000)
        got = codes(read_all_replies(c, t.cut_bound))
        assert got == [221], got
    finally:
        rst_close(c.sock)


def p_connect_rst_storm(t):
    """300 connections, each reset at once (some before the banner)."""
    for i in range(300):
        s = socket.socket()
        s.bind((t.src, 0))
        s.settimeout(5)
        s.connect((t.host, t.port))
        if i % 2:
            s.send(b"EHLO x\r\n")
        rst_close(s)


def p_admin_slowloris(t):
    """1 byte/s of an HTTP request to the admin port: cut within 15 s (the
    admin API's request deadline is 10 s); /metrics answers meanwhile."""
    assert t.admin, "no admin API"
    s = socket.create_connection((t.admin.host, t.admin.port), timeout=5)
    res = {}
    try:
        data = b"GET /metrics HTTP/1.1\r\nX-Slow: " + b"s" * 200
        th = threading.Thread(target=lambda: res.setdefault(
            "el", trickle(s, data, 15)), daemon=True)
        th.start()
        time.sleep(1.5)
        t.admin.metrics()          # not wedged by the slow one
        th.join(20)
        assert res.get("el") is not None, \
            "the admin API still held a 1 byte/s client after 15 s"
    finally:
        rst_close(s)


# ---------------------------------------------------------------- CHUNKING
# For a backend that offers CHUNKING (test_hostile_chunking.py): the
# daemon accepts BDAT, so chunks are spooled, spilled and delivered.

def _bdat_mark_chunk(mark, size):
    head = message(mark)
    return head + b"b" * max(0, size - len(head))


def p_bdat_many_chunks(t):
    """10,000 BDAT chunks of 10 bytes, pipelined, then BDAT 0 LAST: one
    message with every chunk, delivered."""
    mark = marker("bdat-many")
    c = in_txn(t)
    try:
        first = message(mark)
        payload = (b"BDAT %d\r\n" % len(first) + first +
                   b"BDAT 10\r\n0123456789" * 10000 + b"BDAT 0 LAST\r\n")
        th = threading.Thread(target=send_quiet, args=(c.sock, payload),
                              daemon=True)
        th.start()
        got = []
        end = time.monotonic() + 60
        while len(got) < 10002 and time.monotonic() < end:
            try:
                got.append(c.reply(timeout=max(0.1, end - time.monotonic()))[0])
            except SmtpError:
                break
        th.join(2)
        assert got == [250] * 10002, "replies: %s" % collections.Counter(got)
        c.cmd("QUIT", 221)
    finally:
        c.close()
    if t.delivered:
        assert t.delivered(mark), "the 10,000-chunk message is missing"


def p_bdat_spill(t):
    """A 6 MB message in 64 KB BDAT chunks (over spool_memory): 250 and
    delivered."""
    mark = marker("bdat-spill")
    c = in_txn(t)
    try:
        first = message(mark)
        c.send(b"BDAT %d\r\n" % len(first) + first)
        blk = (b"s" * 1022 + b"\r\n") * 64
        n = (6 << 20) // len(blk)
        for i in range(n):
            c.send(b"BDAT %d%s\r\n" % (len(blk), b" LAST" if i == n - 1
                                        else b"") + blk)
        got = [c.reply(timeout=30)[0] for _ in range(n + 1)]
        assert got == [250] * (n + 1), collections.Counter(got)
        c.cmd("QUIT", 221)
    finally:
        c.close()
    if t.delivered:
        assert t.delivered(mark), "the 6 MB BDAT message is missing"


def p_bdat_concurrent_spill(t):
    """Three 3 MB BDAT messages at once: all three delivered."""
    marks = [marker("bdat-cspill") for _ in range(3)]
    conns = [in_txn(t) for _ in marks]
    try:
        size = 3 << 20
        for c, m in zip(conns, marks):
            c.send(b"BDAT %d LAST\r\n" % size)
            c.send(_bdat_mark_chunk(m, 65536))
        blk = b"k" * 65536
        for _ in range(size // 65536 - 1):
            for c in conns:
                c.send(blk)
        for c in conns:
            code, text = c.reply(timeout=30)
            assert code == 250, "concurrent 3 MB BDAT: %d %s" % (code, text)
            c.cmd("QUIT", 221)
    finally:
        for c in conns:
            c.close()
    if t.delivered:
        for m in marks:
            assert t.delivered(m), "a concurrent BDAT message is missing"


def p_bdat_rset_mid(t):
    """BDAT without LAST, RSET, then a new transaction: only the second
    message is delivered."""
    m1, m2 = marker("bdat-rset1"), marker("bdat-rset2")
    c = in_txn(t)
    try:
        ch = message(m1)
        c.send(b"BDAT %d\r\n" % len(ch) + ch)
        c.expect(250)
        c.cmd("RSET", 250)
        c.cmd("MAIL FROM:<a@client.test>", 250)
        c.cmd("RCPT TO:<b@example.test>", 250)
        ch = message(m2)
        c.send(b"BDAT %d LAST\r\n" % len(ch) + ch)
        c.expect(250)
        c.cmd("QUIT", 221)
    finally:
        c.close()
    if t.delivered:
        assert t.delivered(m2), "the message after RSET is missing"
        assert not t.delivered(m1), "a chunk dropped by RSET was delivered"


def p_bdat_smuggle(t):
    """A LAST chunk holding CRLF.CRLF and a whole second transaction: one
    message, one 250, and the next reply is NOOP's."""
    mark = marker("bdat-smuggle")
    c = in_txn(t)
    try:
        ch = message(mark, b"x\r\n.\r\nMAIL FROM:<evil@client.test>\r\n"
                     b"RCPT TO:<victim@example.test>\r\nDATA\r\n"
                     b"smuggled\r\n.\r\n")
        c.send(b"BDAT %d LAST\r\n" % len(ch) + ch)
        c.expect(250)
        code, text = c.cmd("NOOP")
        assert code == 250, "after the chunk: %d %s" % (code, text)
        c.cmd("QUIT", 221)
    finally:
        c.close()


def p_bdat_rst_mid(t):
    """RST in the middle of an accepted 1 MB chunk: nothing delivered."""
    mark = marker("bdat-rst")
    c = in_txn(t)
    try:
        c.send(b"BDAT 1000000 LAST\r\n" + _bdat_mark_chunk(mark, 300000))
        time.sleep(0.1)
    finally:
        rst_close(c.sock)
    if t.delivered:
        time.sleep(0.3)
        assert not t.delivered(mark), "a chunk cut by RST was delivered"


def p_bdat_bytes(t):
    """NUL, 8-bit, bare CR and LF inside a chunk: passed through or 5xx."""
    c = in_txn(t)
    try:
        ch = message(marker("bdat-bytes"), b"\x00\xff\r\x80\n.\n\x00\r\n")
        c.send(b"BDAT %d LAST\r\n" % len(ch) + ch)
        code, text = c.reply()
        assert code == 250 or 500 <= code < 600, (code, text)
        c.cmd("NOOP", 250)
        c.cmd("QUIT", 221)
    finally:
        c.close()


def p_bdat_halfclose_quit(t):
    """EHLO..BDAT LAST and QUIT pipelined, then SHUT_WR: 250 and 221."""
    mark = marker("bdat-half")
    c = connect(t)
    try:
        ch = message(mark)
        c.send(b"EHLO half.client.test\r\nMAIL FROM:<a@client.test>\r\n"
               b"RCPT TO:<b@example.test>\r\nBDAT %d LAST\r\n" % len(ch) +
               ch + b"QUIT\r\n")
        c.sock.shutdown(socket.SHUT_WR)
        got = codes(read_all_replies(c, t.cut_bound + 3))
        assert got == [220, 250, 250, 250, 250, 221], got
    finally:
        c.close()
    if t.delivered:
        assert t.delivered(mark), "pipelined BDAT before SHUT_WR lost"


# ---------------------------------------------------------------- the table

Pattern = collections.namedtuple("Pattern", "name desc fn")

PATTERNS = [
    Pattern("bdat_no_txn", "BDAT 12 LAST with a chunk, no MAIL/RCPT",
            p_bdat_no_txn),
    Pattern("bdat_refused_commands", "BDAT chunk holding RSET/MAIL/QUIT "
            "lines (refused without CHUNKING): they stay data",
            p_bdat_refused_commands),
    Pattern("bdat_maxlong", "BDAT 9223372036854775807 + 64 KB + pipelined "
            "MAIL, then stall", p_bdat_maxlong),
    Pattern("bdat_bad_sizes", "BDAT with overflowing, negative, hex, empty "
            "sizes", p_bdat_overflow),
    Pattern("bdat_huge", "BDAT of message_size_limit + 4 MB, sent whole",
            p_bdat_huge),
    Pattern("data_after_bdat", "BDAT 5 then DATA in one transaction",
            p_data_after_bdat),
    Pattern("help_never_reads", "2 MB of pipelined HELP, the client never "
            "reads (4 KB window)", _never_reads(b"HELP\r\n")),
    Pattern("ehlo_never_reads", "2 MB of pipelined EHLO, the client never "
            "reads (4 KB window)", _never_reads(b"EHLO never.reads\r\n")),
] + [
    Pattern("flood_" + name.lower(), "10,000 pipelined %s commands, then "
            "QUIT" % name, _mk_flood(line))
    for name, line in FLOODS if name not in ("STARTTLS", "QUIT")
] + [
    Pattern("flood_starttls", "10,000 pipelined STARTTLS", p_flood_starttls),
    Pattern("flood_quit", "10,000 pipelined QUIT", p_flood_quit),
    Pattern("rcpt_10000", "10,000 RCPTs in one transaction (pipelined)",
            p_rcpt_10000),
    Pattern("rset_storm", "5,000 pipelined RSETs inside a transaction",
            p_rset_storm),
    Pattern("mail_no_rcpt", "1,000 MAIL+RSET pairs, never a RCPT",
            p_mail_no_rcpt),
] + [
    Pattern("slowloris_" + st, "1 byte/s in state %s; must be cut" % st,
            _slow(st))
    for st in ("banner", "helo", "mail", "rcpt", "data", "bdat", "tls")
] + [
    Pattern("starttls_silent", "STARTTLS then nothing", p_starttls_silent),
    Pattern("starttls_half_hello", "STARTTLS then half a ClientHello",
            p_starttls_half_hello),
    Pattern("starttls_garbage", "STARTTLS then 16 KB of random bytes",
            p_starttls_garbage),
    Pattern("starttls_plaintext", "STARTTLS then plain-text SMTP",
            p_starttls_plain_smtp),
    Pattern("starttls_injection", "STARTTLS with pipelined RSET/MAIL in the "
            "same packet", p_starttls_injection),
    Pattern("tls_renegotiate", "TLS 1.2, 20 client renegotiations",
            p_tls_renegotiate),
    Pattern("tls_keyupdate", "TLS 1.3, 200 KeyUpdate requests",
            p_tls_keyupdate),
] + [
    Pattern("halfclose_" + st, "shutdown(SHUT_WR) in state %s" % st,
            _half(st))
    for st in ("banner", "helo", "mail", "rcpt", "data", "bdat", "tls")
] + [
    Pattern("halfclose_pipelined_quit", "pipelined transaction + QUIT, then "
            "SHUT_WR: all replies owed", p_half_pipelined_quit),
    Pattern("halfclose_pipelined_noquit", "pipelined transaction, then "
            "SHUT_WR", p_half_pipelined_noquit),
    Pattern("halfclose_pipelined_middata", "pipelined EHLO..half a message, "
            "then SHUT_WR", p_half_pipelined_middata),
] + [
    Pattern("bytes_" + f, "NUL and 8-bit bytes in the %s" % f,
            _bytes_case(f))
    for f in ("verb", "helo", "mail", "rcpt", "params")
] + [
    Pattern("bytes_data", "NUL, 8-bit, bare CR/LF and a bare-LF dot in DATA",
            p_bytes_data),
    Pattern("bare_lf_commands", "commands ended by bare LF", p_bare_lf_commands),
    Pattern("bare_cr_commands", "commands ended by bare CR",
            p_bare_cr_commands),
    Pattern("long_line_one_read", "1 MB command line in one write",
            p_long_line_one_read),
    Pattern("long_line_many_reads", "1 MB command line in 64 writes",
            p_long_line_many_reads),
    Pattern("huge_paths", "900-byte MAIL/RCPT paths, 40-digit SIZE",
            p_huge_path),
    Pattern("proxy_v1", "PROXY v1 header from the client", p_proxy_v1),
    Pattern("proxy_v2", "PROXY v2 binary header from the client", p_proxy_v2),
    Pattern("http_get", "HTTP GET to the SMTP port", p_http_get),
    Pattern("http_post_big", "HTTP POST with a 300 KB body to the SMTP port",
            p_http_post_big),
    Pattern("smtp_to_admin", "SMTP session with 100 KB of DATA to the admin "
            "port", p_smtp_to_admin),
    Pattern("xclient_inject", "XCLIENT/XFORWARD from the client, XCLIENT= "
            "MAIL parameter", p_xclient_inject),
    Pattern("auth_inject", "AUTH PLAIN/LOGIN/CRAM-MD5 attempts", p_auth_inject),
    Pattern("data_nodot_20mb", "20 MB of DATA without the dot, then stall",
            p_data_nodot_20mb),
    Pattern("data_spill_6mb", "6 MB message (over spool_memory) delivered",
            p_data_spill_6mb),
    Pattern("data_too_big", "message_size_limit + 1 MB with the dot",
            p_data_too_big),
    Pattern("rst_mid_data", "RST (SO_LINGER 0) after 200 KB of DATA",
            p_rst_mid_data),
    Pattern("rst_after_pipeline", "whole transaction pipelined, then RST",
            p_rst_after_pipeline),
    Pattern("rst_mid_tls", "RST right after the ClientHello", p_rst_mid_tls),
    Pattern("conn_flood", "max_connections_per_client + 10 connections from "
            "one address", p_conn_flood),
    Pattern("idle", "banner read, then silence", p_idle),
    Pattern("pregreet_flood", "1 MB of EHLO before the banner",
            p_pregreet_flood),
    Pattern("error_storm", "50 unknown commands pipelined", p_error_storm),
    Pattern("tls_never_reads", "STARTTLS, 2 MB of EHLO inside TLS, the "
            "client never reads", p_tls_never_reads),
    Pattern("tls_long_line", "1 MB command line inside TLS", p_tls_long_line),
    Pattern("many_slowloris", "16 concurrent 1 byte/s clients in helo, mail, "
            "data and TLS", p_many_slowloris),
    Pattern("concurrent_spill", "three 3 MB messages at once (over "
            "spool_memory together), all delivered", p_concurrent_spill),
    Pattern("many_messages_pipelined", "200 messages pipelined in one "
            "session, all delivered", p_many_messages_pipelined),
    Pattern("after_quit", "QUIT then 1 MB of NOOPs", p_after_quit),
    Pattern("connect_rst_storm", "300 connections reset at once",
            p_connect_rst_storm),
    Pattern("admin_slowloris", "1 byte/s HTTP request to the admin port",
            p_admin_slowloris),
]

BY_NAME = {p.name: p for p in PATTERNS}
assert len(BY_NAME) == len(PATTERNS)

CHUNKING_PATTERNS = [BY_NAME[n] for n in (
    "bdat_no_txn", "bdat_refused_commands", "bdat_maxlong", "bdat_bad_sizes",
    "bdat_huge", "data_after_bdat", "flood_bdat", "slowloris_bdat",
    "halfclose_bdat")] + [
    Pattern("bdat_many_chunks", "10,000 pipelined 10-byte chunks, then BDAT "
            "0 LAST", p_bdat_many_chunks),
    Pattern("bdat_spill", "6 MB in 64 KB chunks (over spool_memory), "
            "delivered", p_bdat_spill),
    Pattern("bdat_concurrent_spill", "three 3 MB BDAT messages at once",
            p_bdat_concurrent_spill),
    Pattern("bdat_rset_mid", "BDAT without LAST, RSET, a new transaction",
            p_bdat_rset_mid),
    Pattern("bdat_smuggle", "a LAST chunk holding CRLF.CRLF and a second "
            "transaction", p_bdat_smuggle),
    Pattern("bdat_rst_mid", "RST in the middle of an accepted 1 MB chunk",
            p_bdat_rst_mid),
    Pattern("bdat_bytes", "NUL, 8-bit, bare CR/LF inside a chunk",
            p_bdat_bytes),
    Pattern("bdat_halfclose_quit", "pipelined EHLO..BDAT LAST, QUIT, then "
            "SHUT_WR", p_bdat_halfclose_quit),
]
