"""test_decision.py - the decision engine inside the daemon (issue 4)

Scenarios, each with its own daemon, store and peers on loopback:
  - a client listed by a real rbldnsd is re-classed before its banner, and
    the reason names the list; an unlisted client stays normal;
  - a raw SYN signature that only abandons goes to hostile although its
    OS label ("Linux 2.2.x-3.x") is mostly good, and a raw signature that
    only delivers goes to trusted although the same OS label is mostly bad
    (different raw signatures come from different TCP_MAXSEG values);
  - relayed messages carry the trace header; spam feedback moves a key;
  - explore_share=100% puts little-known sessions in the control group;
  - a block list's listings teach every key but the IP: a raw signature
    whose listed senders only said EHLO makes an unlisted sender with it
    hostile; an allow list teaches nothing.
"""

import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time

import pytest

from daemon import Daemon, BINARY
from peers import SmtpSink, need, is_root, free_port, SMTP_SINK

RBLDNSD = "/usr/sbin/rbldnsd"

# Short delays so a test can see a class by its banner time.
CLASSES = """
class_trusted = banner_delay=0 action=relay
class_normal = banner_delay=0 action=relay
class_suspect = banner_delay=1s action=relay
class_hostile = banner_delay=2s action=relay
"""


def dns_ok(port, name):
    q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00" + struct.pack(">HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.2)
    try:
        s.sendto(q, ("127.0.0.1", port))
        r = s.recv(512)
        return r[3] & 0x0f == 0
    except OSError:
        return False
    finally:
        s.close()


def rbldnsd(zones, probe):
    """a real rbldnsd on a free loopback port; zones: {zone: ip4set
    data}; waits until the name probe resolves; yields the port"""
    need(RBLDNSD)
    d = tempfile.mkdtemp(prefix="rbldnsd.")
    os.chmod(d, 0o777)
    for zone, data in zones.items():
        with open(os.path.join(d, zone), "w") as f:
            f.write(data)
        os.chmod(os.path.join(d, zone), 0o644)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    cmd = [RBLDNSD, "-n", "-b", "127.0.0.1/%d" % port, "-w", d,
           "-p", os.path.join(d, "pid")] + \
        ["%s:ip4set:%s" % (zone, zone) for zone in zones]
    if is_root():
        cmd[1:1] = ["-u", "rbldns"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 5
        while not dns_ok(port, probe):
            assert proc.poll() is None and time.monotonic() < end
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=5)
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def rbl():
    yield from rbldnsd({"bl.test": "127.0.0.2\n127.0.0.66\n"},
                       "2.0.0.127.bl.test")


def smtp_session(port, src, mss=0, deliver=True, timeout=10):
    """one session; deliver: a message, else give up after RCPT"""
    c = socket.socket()
    if mss:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, mss)
    c.settimeout(timeout)
    c.bind((src, 0))
    c.connect(("127.0.0.1", port))
    f = c.makefile("rb")

    def reply():
        while True:
            line = f.readline()
            assert line, "connection closed"
            if line[3:4] != b"-":
                return line

    t0 = time.monotonic()
    assert reply().startswith(b"220")
    banner_s = time.monotonic() - t0
    for cmd in (b"EHLO client.test", b"MAIL FROM:<a@client.test>",
                b"RCPT TO:<b@example.test>"):
        c.sendall(cmd + b"\r\n")
        assert reply()[:1] == b"2"
    if deliver:
        c.sendall(b"DATA\r\n")
        assert reply().startswith(b"354")
        c.sendall(b"Subject: t\r\n\r\nhello\r\n.\r\n")
        assert reply().startswith(b"250")
        c.sendall(b"QUIT\r\n")
        reply()
    c.close()
    return banner_s


def last_session(d, ip):
    d.wait_events("session", 1)
    recs = [r for r in d.events("session") if r["client_ip"] == ip]
    return recs[-1]


def test_dnsbl_reclasses_before_banner(rbl):
    """127.0.0.66 is listed in bl.test*5: the banner waits for the answer,
    the session becomes hostile (2 s banner) with reason "dnsbl bl.test =
    +5"; 127.0.0.67 is not listed and gets its banner at once, class
    normal."""
    need(SMTP_SINK)
    with SmtpSink() as sink, Daemon(
            backend=sink.address, config_text=CLASSES,
            dns_servers="127.0.0.1:%d" % rbl, dnsbl_sites="bl.test*5",
            dnsbl_timeout="2s") as d:
        slow = smtp_session(d.port, "127.0.0.66", deliver=False)
        fast = smtp_session(d.port, "127.0.0.67", deliver=False)
        time.sleep(0.3)
        d.stop()
        listed = last_session(d, "127.0.0.66")
        clean = last_session(d, "127.0.0.67")
    assert listed["class"] == "hostile", listed
    assert any(r == "dnsbl bl.test = +5" for r in listed["reasons"]), listed
    assert listed["dnsbl"]["score"] == 5
    assert slow >= 1.8, slow
    assert clean["class"] == "normal", clean
    assert clean["dnsbl"]["score"] == 0 and clean["dnsbl"]["hits"] == []
    assert fast < 1.0, fast


def train(port, n, first_ip, mss, deliver):
    base = [int(x) for x in first_ip.split(".")]
    for i in range(n):
        ip = "%d.%d.%d.%d" % (base[0], base[1] + i // 250, base[2],
                              base[3] + i % 250)
        smtp_session(port, ip, mss=mss, deliver=deliver)


# The raw-signature tests read the class from the event log; no delays,
# so training does not wait on the tarpit it builds.
FAST = """
class_trusted = action=relay
class_normal = action=relay
class_suspect = action=relay
class_hostile = action=relay
"""


def rawsig_daemon(sink):
    return Daemon(backend=sink.address, config_text=FAST,
                  rep_weights="ip=1 prefix=0 rawsig=1.5 os=0.3 "
                              "prefix_rawsig=0 domain=1.5")


def test_rawsig_spam_beats_good_os_label():
    """Raw signature mss=536 only abandons (60 sessions) while the same
    OS label delivers 200 times with the default SYN: a new client with
    mss=536 is hostile, a new client with the default SYN is not."""
    need(SMTP_SINK)
    with SmtpSink() as sink, rawsig_daemon(sink) as d:
        train(d.port, 200, "127.10.0.1", 0, True)
        train(d.port, 60, "127.20.0.1", 536, False)
        smtp_session(d.port, "127.30.0.1", mss=536, deliver=False)
        smtp_session(d.port, "127.30.0.2", mss=0, deliver=False)
        time.sleep(0.3)
        d.stop()
        bad = last_session(d, "127.30.0.1")
        good = last_session(d, "127.30.0.2")
    assert bad["fp"]["os"] == good["fp"]["os"] == "Linux 2.2.x-3.x"
    assert bad["fp"]["key"] != good["fp"]["key"]
    assert bad["class"] == "hostile", bad["reasons"]
    assert any(r.startswith("rawsig ") and "bad 0.9" in r
               for r in bad["reasons"]), bad["reasons"]
    assert good["class"] in ("normal", "trusted"), good["reasons"]


def test_rawsig_ham_beats_bad_os_label():
    """The reverse: mss=8960 abandons 300 times, so the OS label is mostly
    bad; mss=1200 delivers 60 times: a new mss=1200 client is trusted."""
    need(SMTP_SINK)
    with SmtpSink() as sink, rawsig_daemon(sink) as d:
        train(d.port, 300, "127.40.0.1", 8960, False)
        train(d.port, 60, "127.50.0.1", 1200, True)
        smtp_session(d.port, "127.60.0.1", mss=1200, deliver=False)
        time.sleep(0.3)
        d.stop()
        rec = last_session(d, "127.60.0.1")
    assert rec["fp"]["os"] == "Linux 2.2.x-3.x"
    assert rec["class"] == "trusted", rec["reasons"]
    assert any(r.startswith("os Linux 2.2.x-3.x (bad 0.8") for r in
               rec["reasons"]), rec["reasons"]


# DNS-list listings as reputation evidence: bl.test (a block list) lists
# 127.0.1.0/24, wl.test (an allow list) 127.0.3.0/24, and both the RFC 5782
# test address 127.0.0.2, or the broken-list probe would disable them; the
# probes come from 127.0.9.0/24, which nobody lists.  os weighs 0 here, and
# the probes' prefix is not the bots', so a probe can only turn bad
# through rawsig.
LISTS = {"bl.test": "127.0.0.2\n127.0.1.0/24\n",
         "wl.test": "127.0.0.2\n127.0.3.0/24\n"}
LEARN_WEIGHTS = "ip=1 prefix=0.5 rawsig=1.5 os=0 prefix_rawsig=1 domain=1.5"


@pytest.fixture
def lists():
    yield from rbldnsd(LISTS, "2.0.0.127.wl.test")


def listing_daemon(sink, dns_port):
    return Daemon(backend=sink.address, config_text=FAST,
                  dns_servers="127.0.0.1:%d" % dns_port,
                  dnsbl_sites="bl.test*5 wl.test*-5", dnsbl_timeout="2s",
                  rep_weights=LEARN_WEIGHTS)


def hello_session(port, src, mss):
    """EHLO and QUIT: no message, so no outcome reaches reputation"""
    c = socket.socket()
    if mss:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, mss)
    c.settimeout(10)
    c.bind((src, 0))
    c.connect(("127.0.0.1", port))
    f = c.makefile("rb")
    for cmd in (None, b"EHLO client.test", b"QUIT"):
        if cmd:
            c.sendall(cmd + b"\r\n")
        while True:
            line = f.readline()
            assert line, "connection closed"
            if line[3:4] != b"-":
                break
        assert line[:1] == b"2", line
    c.close()


def store_rows(d):
    """the daemon's SQLite store: (kind, key) -> {outcome: count}"""
    import sqlite3
    db = sqlite3.connect(os.path.join(d.dir, "rep.db"))
    db.row_factory = sqlite3.Row
    try:
        return {(r["kind"], r["key"]): dict(r) for r in
                db.execute("SELECT * FROM rep")}
    finally:
        db.close()


def contribution(reason):
    """the signed number after the last '= ' of a reason"""
    return float(reason.rsplit("= ", 1)[1])


def test_listing_teaches_rawsig_not_ip(lists):
    """41 bots with one raw signature (mss=1300), all listed by bl.test:
    40 say only EHLO and QUIT (no message, nothing but the listing to
    learn from), one gives up after RCPT.  A client from an unlisted /24
    with the same raw signature is then hostile through the rawsig key
    alone, with a positive contribution; one with the default SYN is not.
    The store has one listing per session (the reverse-name answer
    re-classes every session again, and teaches nothing twice) on rawsig,
    prefix, os and prefix_rawsig, and none on any ip key: the giving-up
    bot's ip row has its abandoned count and listed 0.  report --store
    shows the listings."""
    need(SMTP_SINK)
    with SmtpSink() as sink, listing_daemon(sink, lists) as d:
        for i in range(40):
            hello_session(d.port, "127.0.1.%d" % (i + 1), 1300)
        smtp_session(d.port, "127.0.1.200", mss=1300, deliver=False)
        hello_session(d.port, "127.0.9.1", 1300)
        hello_session(d.port, "127.0.9.2", 0)
        time.sleep(0.3)
        d.stop()
        bot = last_session(d, "127.0.1.1")
        probe = last_session(d, "127.0.9.1")
        other = last_session(d, "127.0.9.2")
        rows = store_rows(d)
        rep = subprocess.run([BINARY, "report", "--store",
                              "sqlite:" + os.path.join(d.dir, "rep.db"),
                              "--by", "rawsig", "--format", "json"],
                             capture_output=True, text=True)
    assert bot["class"] == "hostile", bot
    assert "dnsbl bl.test = +5" in bot["reasons"], bot["reasons"]
    assert probe["fp"]["key"] == bot["fp"]["key"] != other["fp"]["key"]
    assert probe["dnsbl"]["hits"] == [], probe["dnsbl"]
    rawsig = [r for r in probe["reasons"] if r.startswith("rawsig ")]
    assert len(rawsig) == 1 and contribution(rawsig[0]) > 0, \
        probe["reasons"]
    assert "n=42" in rawsig[0], rawsig     # 41 listings, 1 abandoned
    assert probe["class"] == "hostile", probe["reasons"]
    assert not any(r.startswith(("ip ", "prefix", "os ", "dnsbl"))
                   for r in probe["reasons"]), probe["reasons"]
    assert other["class"] == "normal", other["reasons"]
    assert not any(r.startswith("rawsig ") for r in other["reasons"])

    listed = {}
    for (kind, key), r in rows.items():
        listed[kind] = listed.get(kind, 0) + r["listed"]
    for kind in ("rawsig", "prefix", "os", "prefix_rawsig"):
        assert listed.get(kind) == pytest.approx(41, rel=1e-3), (kind,
                                                                  listed)
    assert listed.get("ip", 0) == 0, rows
    assert "domain" not in listed        # no verified names here
    gave_up = rows[("ip", "127.0.1.200")]
    assert gave_up["abandoned"] == pytest.approx(1, rel=1e-3)
    assert gave_up["listed"] == 0
    assert rows[("prefix", "127.0.1.0/24")]["abandoned"] == \
        pytest.approx(1, rel=1e-3)

    assert rep.returncode == 0, rep.stderr
    groups = [json.loads(l) for l in rep.stdout.splitlines()][:-1]
    assert len(groups) == 1, groups
    assert groups[0]["listed"] == pytest.approx(41, rel=1e-3)
    assert groups[0]["abandoned"] == pytest.approx(1, rel=1e-3)


def test_allow_list_teaches_nothing(lists):
    """20 senders only the allow list wl.test (weight -5) lists, raw
    signature mss=1200: they are trusted, and no key learns a listing, so
    a client from an unlisted /24 with that raw signature has no rawsig
    reason and stays normal."""
    need(SMTP_SINK)
    with SmtpSink() as sink, listing_daemon(sink, lists) as d:
        for i in range(20):
            hello_session(d.port, "127.0.3.%d" % (i + 1), 1200)
        hello_session(d.port, "127.0.9.3", 1200)
        time.sleep(0.3)
        d.stop()
        allowed = last_session(d, "127.0.3.1")
        probe = last_session(d, "127.0.9.3")
        rows = store_rows(d)
    assert allowed["dnsbl"]["score"] == -5, allowed["dnsbl"]
    assert allowed["class"] == "trusted", allowed["reasons"]
    assert probe["fp"]["key"] == allowed["fp"]["key"]
    assert probe["class"] == "normal", probe["reasons"]
    assert not any(r.startswith("rawsig ") for r in probe["reasons"])
    assert all(r["listed"] == 0 for r in rows.values()), rows


def test_trace_header_and_feedback():
    """The backend sees the trace header with the session id, class, raw
    signature key and OS; spam feedback for that message is accepted and
    logged; feedback for an unknown id is a clear not-found error."""
    need(SMTP_SINK)
    fport = free_port()
    with SmtpSink() as sink, Daemon(
            backend=sink.address, feedback_listen="127.0.0.1:%d" % fport) as d:
        smtp_session(d.port, "127.0.0.5")
        (m,) = sink.wait_messages(1)
        hdr = m.header("X-Mailshaper")
        assert hdr and "class=normal" in hdr and "rawsig=" in hdr, m.data
        assert 'os="Linux' in hdr and 'key="4:64:' in hdr
        path = os.path.join(d.dir, "msg.eml")
        with open(path, "wb") as f:
            f.write(m.data)
        time.sleep(0.2)
        r = subprocess.run([BINARY, "feedback", "--spam", "-c", d.config,
                            path], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        r = subprocess.run([BINARY, "feedback", "--ham", "-c", d.config,
                            "ABCDEF012345"], capture_output=True, text=True)
        assert r.returncode == 1 and "unknown session id" in r.stderr
        d.stop()
        fb = [e for e in d.events() if e["type"] == "feedback"]
    assert len(fb) == 1 and fb[0]["verdict"] == "spam"
    assert fb[0]["message"].endswith(".1")


def test_exploration_control_group():
    """explore_share=100%: a client nobody knows runs in class normal as
    the control group even when default_class is suspect."""
    need(SMTP_SINK)
    with SmtpSink() as sink, Daemon(
            backend=sink.address, config_text=CLASSES, explore_share="100%",
            default_class="suspect") as d:
        smtp_session(d.port, "127.0.0.8")
        time.sleep(0.3)
        d.stop()
        s = last_session(d, "127.0.0.8")
        (m,) = d.events("message")
    assert s["class"] == "normal" and s["control"] is True, s
    assert any("control group" in r for r in s["reasons"])
    assert m["control"] is True


@pytest.fixture
def redis():
    need("/usr/bin/redis-server")
    port = free_port()
    d = tempfile.mkdtemp(prefix="redis.")
    proc = subprocess.Popen(["/usr/bin/redis-server", "--port", str(port),
                             "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", d],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 5
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < end
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=5)
        shutil.rmtree(d, ignore_errors=True)


def test_farm_shares_reputation_through_redis(redis):
    """Two daemons on one Redis store: what daemon A learns about a raw
    signature (60 abandoned sessions with mss=536, 200 delivered with the
    default SYN) makes daemon B put that signature in hostile, once B's
    cache has fetched the keys."""
    need(SMTP_SINK)
    store = "redis://127.0.0.1:%d" % redis
    with SmtpSink() as sink:
        with Daemon(backend=sink.address, config_text=FAST, rep_store=store,
                    rep_weights="ip=1 prefix=0 rawsig=1.5 os=0.3 "
                                "prefix_rawsig=0 domain=1.5") as a:
            train(a.port, 200, "127.70.0.1", 0, True)
            train(a.port, 60, "127.80.0.1", 536, False)
        # A has stopped: its write-behind queue is flushed to Redis.
        with Daemon(backend=sink.address, config_text=FAST, rep_store=store,
                    rep_weights="ip=1 prefix=0 rawsig=1.5 os=0.3 "
                                "prefix_rawsig=0 domain=1.5") as b:
            smtp_session(b.port, "127.90.0.1", mss=536, deliver=False)
            time.sleep(0.5)     # the first lookup fetched the keys
            smtp_session(b.port, "127.90.0.2", mss=536, deliver=False)
            time.sleep(0.3)
            b.stop()
            rec = last_session(b, "127.90.0.2")
    assert rec["class"] == "hostile", rec["reasons"]


DNSMASQ = "/usr/sbin/dnsmasq"
M365 = "mail-dm6nam10on2041.outbound.protection.outlook.com"


@pytest.fixture
def dnsmasq():
    """a real DNS server on loopback: 127.0.0.77 <-> the M365-like name"""
    need(DNSMASQ)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    proc = subprocess.Popen([
        DNSMASQ, "--no-daemon", "--no-resolv", "--no-hosts",
        "--listen-address=127.0.0.1", "--bind-interfaces", "--pid-file=",
        "--port=%d" % port, "--local=/outlook.com/",
        "--local=/in-addr.arpa/", "--host-record=%s,127.0.0.77" % M365,
        "--ptr-record=78.0.0.127.in-addr.arpa,liar.outlook.com",
        "--host-record=liar.outlook.com,127.0.0.99"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        assert proc.poll() is None, "dnsmasq did not start"
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def test_verified_domain_key_and_xclient_name(dnsmasq):
    """127.0.0.77's PTR name resolves back to it: the session's domain is
    outlook.com (a reputation key, shown in the record) and a real Postfix
    gets the verified name through XCLIENT NAME; 127.0.0.78's PTR name
    points elsewhere, so it stays unverified ([UNAVAILABLE] -> unknown)."""
    from peers import PostfixSmtpd, POSTFIX
    need(POSTFIX)
    with PostfixSmtpd(mode="xclient") as pf, Daemon(
            backend=pf.address, dns_servers="127.0.0.1:%d" % dnsmasq,
            dnsbl_timeout="2s") as d:
        smtp_session(d.port, "127.0.0.77")
        smtp_session(d.port, "127.0.0.78")
        msgs = pf.wait_messages(2)
        time.sleep(0.3)
        d.stop()
        good = last_session(d, "127.0.0.77")
        bad = last_session(d, "127.0.0.78")
    assert good["domain"] == "outlook.com", good
    assert bad["domain"] is None, bad
    names = {m.client_ip: m.client_name for m in msgs}
    assert names["127.0.0.77"] == M365, names
    assert names["127.0.0.78"] == "unknown", names


def test_pregreet_reclasses_before_the_banner():
    """A violation during the banner delay re-classes the session before
    the client speaks: default class banner_delay=1s, the client talks at
    once, violation_class has banner_delay=3s, so the banner comes after
    about 3 s, not 1 s."""
    need(SMTP_SINK)
    with SmtpSink() as sink, Daemon(
            backend=sink.address,
            config_text="class_wait1 = banner_delay=1s\n"
                        "class_wait3 = banner_delay=3s\n",
            default_class="wait1", violation_class="wait3") as d:
        c = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        t0 = time.monotonic()
        c.sendall(b"EHLO early.test\r\n")
        assert c.recv(100).startswith(b"220")
        waited = time.monotonic() - t0
        c.close()
        time.sleep(0.3)
        d.stop()
        (s,) = d.events("session")
    assert 2.8 <= waited <= 4.5, waited
    assert s["class"] == "wait3"
    assert any("pregreet" in r for r in s["reasons"]), s["reasons"]
