"""test_admin.py - the admin HTTP API (issue 6) with a real HTTP client

Each test starts smtp-sink and the daemon with admin_listen on loopback
(or a unix socket), sends mail through it with RawSmtp/swaks, and talks to
the API with http.client:
  - /metrics parses under a strict Prometheus text-format 0.0.4 parser
    (names, HELP/TYPE, label syntax and escapes, values, histogram rules)
    and its counters agree with what was sent;
  - /api/stats has the report tables by OS and by class;
  - /api/host/IP has first/last seen, fingerprints, reputation per key
    with evidence and the class with its reasons, for a live session too;
    an unknown address is 404, a bad one or a traversal is 400;
  - a missing or wrong token is 401 everywhere; a unix socket needs none;
  - POST /feedback works here, through `mailshaper feedback` too, and the
    old feedback_listen still works as an alias;
  - malformed requests, huge headers and bodies, odd methods get a 4xx and
    the daemon stays up; --check-config refuses a non-loopback address;
  - hammering /metrics and /api/stats does not slow SMTP sessions.
The dashboard in headless Chromium is in test_admin_dashboard.py.
"""

import http.client
import json
import math
import multiprocessing
import os
import re
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from daemon import Daemon, BINARY, check_config
from peers import SmtpSink, RawSmtp, need, free_port, swaks, SMTP_SINK

TOKEN = "test-token-0123456789abcdef"

CLASSES = """
class_normal = banner_delay=0 action=relay
class_slow = banner_delay=300ms reply_delay=100ms action=relay
class_hostile = banner_delay=0 action=reject
"""


# ---------------------------------------------------------------- helpers

class Admin:
    """A small client for the admin API on 127.0.0.1:port or a unix path."""

    def __init__(self, port=None, path=None, token=TOKEN):
        self.port, self.path, self.token = port, path, token

    def conn(self, timeout=10):
        if self.path is not None:
            c = http.client.HTTPConnection("localhost", timeout=timeout)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            s.connect(self.path)
            c.sock = s
            return c
        return http.client.HTTPConnection("127.0.0.1", self.port,
                                          timeout=timeout)

    def request(self, method, target, token="default", headers=None,
                body=None):
        """(status, headers dict, body bytes)"""
        h = dict(headers or {})
        tok = self.token if token == "default" else token
        if tok is not None:
            h["Authorization"] = "Bearer " + tok
        c = self.conn()
        try:
            c.request(method, target, body=body, headers=h)
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, \
                r.read()
        finally:
            c.close()

    def get(self, target, **kw):
        return self.request("GET", target, **kw)

    def json(self, target, want=200):
        st, h, b = self.get(target)
        assert st == want, (target, st, b)
        assert h["content-type"].startswith("application/json")
        return json.loads(b)


def raw_http(port, data, timeout=10):
    """Send bytes, read until the reply's header is in or the peer closes;
    the reply's status code or None."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            try:
                c = s.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                break
            if not c:
                break
            out += c
            if b"\r\n\r\n" in out:
                break
    finally:
        s.close()
    m = re.match(rb"HTTP/1\.[01] (\d{3}) ", out)
    return int(m.group(1)) if m else None


def smtp_session(port, source="127.0.0.1", quit_after=None, timeout=10):
    """One SMTP session with one message; quit_after="RCPT" abandons it."""
    c = RawSmtp("127.0.0.1", port, source=source, timeout=timeout)
    try:
        c.expect(220)
        c.cmd("EHLO client.test", 250)
        c.cmd("MAIL FROM:<a@client.test>", (250, 550, 554, 451))
        c.cmd("RCPT TO:<b@example.test>")
        if quit_after == "RCPT":
            c.send(b"QUIT\r\n")
            return
        code, _ = c.cmd("DATA")
        if code == 354:
            c.send(b"Subject: t\r\n\r\nhello\r\n.\r\n")
            c.reply()
        c.cmd("QUIT", 221)
    finally:
        c.close()


def wait_for(pred, timeout=5.0):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    return pred()


# ------------------------------------------------- a strict 0.0.4 parser

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


def _value(text, where):
    if text in ("+Inf", "Inf"):
        return math.inf
    if text == "-Inf":
        return -math.inf
    if text == "NaN":
        return math.nan
    if not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", text):
        raise AssertionError("%s: bad value %r" % (where, text))
    return float(text)


def _labels(text, where):
    """The inside of {...}: name="value" pairs with \\\\, \\" and \\n."""
    out, i = {}, 0
    while i < len(text):
        m = re.compile(LABEL).match(text, i)
        assert m, "%s: bad label name at %r" % (where, text[i:])
        name = m.group(0)
        assert not name.startswith("__"), "%s: reserved label" % where
        i = m.end()
        assert text[i:i + 2] == '="', "%s: want =\" after %s" % (where, name)
        i += 2
        val = []
        while True:
            assert i < len(text), "%s: unterminated label value" % where
            ch = text[i]
            if ch == "\\":
                nxt = text[i + 1:i + 2]
                assert nxt in ("\\", '"', "n"), "%s: bad escape" % where
                val.append("\n" if nxt == "n" else nxt)
                i += 2
            elif ch == '"':
                i += 1
                break
            elif ch == "\n":
                raise AssertionError("%s: newline in label value" % where)
            else:
                val.append(ch)
                i += 1
        assert name not in out, "%s: duplicate label %s" % (where, name)
        out[name] = "".join(val)
        if i < len(text):
            assert text[i] == ",", "%s: want , between labels" % where
            i += 1
            assert i < len(text), "%s: trailing comma" % where
    return out


def parse_prometheus(text):
    """Parse text format 0.0.4 strictly; return {family: {"type", "help",
    "samples": [(name, labels, value)]}}.  Raises AssertionError."""
    assert text.endswith("\n"), "must end with a newline"
    fams, order, current = {}, [], None
    seen = set()

    def family_of(name):
        for suf in ("_bucket", "_sum", "_count"):
            base = name[:-len(suf)]
            if name.endswith(suf) and base in fams and \
                    fams[base]["type"] in ("histogram", "summary"):
                return base
        return name

    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = "line %d %r" % (n, line[:80])
        if line == "":
            continue
        if line.startswith("#"):
            m = re.fullmatch(r"# (HELP|TYPE) (%s) (.*)" % NAME, line)
            assert m, "%s: only HELP and TYPE comments" % where
            kind, name, rest = m.groups()
            f = fams.setdefault(name, {"type": None, "help": None,
                                       "samples": []})
            assert not f["samples"], "%s: %s after samples" % (where, kind)
            if kind == "TYPE":
                assert f["type"] is None, "%s: second TYPE" % where
                assert rest in TYPES, "%s: bad type" % where
                f["type"] = rest
            else:
                assert f["help"] is None, "%s: second HELP" % where
                assert rest.strip(), "%s: empty HELP" % where
                assert "\\" not in rest.replace("\\\\", "").replace(
                    "\\n", ""), "%s: bad escape in HELP" % where
                f["help"] = rest
            if name not in order:
                order.append(name)
            current = name
            continue
        m = re.fullmatch(r"(%s)(\{(.*)\})? (\S+)( -?\d+)?" % NAME, line)
        assert m, "%s: not a sample line" % where
        name, _, ltext, vtext, _ts = m.groups()
        labels = _labels(ltext, where) if ltext else {}
        value = _value(vtext, where)
        fam = family_of(name)
        assert fam in fams and fams[fam]["type"], \
            "%s: sample before its TYPE" % where
        assert fam == current, "%s: family %s is not contiguous" % (where,
                                                                     fam)
        key = (name, tuple(sorted(labels.items())))
        assert key not in seen, "%s: duplicate sample" % where
        seen.add(key)
        fams[fam]["samples"].append((name, labels, value))
    for name, f in fams.items():
        assert f["type"], "%s: HELP without TYPE" % name
        assert f["help"], "%s: no HELP" % name
        if f["type"] == "counter":
            assert name.endswith("_total"), "%s: counter without _total" % name
            for s in f["samples"]:
                assert s[0] == name and s[2] >= 0, (name, s)
        if f["type"] == "histogram":
            _check_histogram(name, f["samples"])
    return fams


def _check_histogram(name, samples):
    buckets = [(s[1], s[2]) for s in samples if s[0] == name + "_bucket"]
    sums = [s[2] for s in samples if s[0] == name + "_sum"]
    counts = [s[2] for s in samples if s[0] == name + "_count"]
    assert buckets and len(sums) == 1 and len(counts) == 1, name
    les = [_value(b[0]["le"], name) for b in buckets]
    assert les == sorted(les) and les[-1] == math.inf, (name, les)
    vals = [b[1] for b in buckets]
    assert vals == sorted(vals), "%s: buckets not cumulative" % name
    assert vals[-1] == counts[0], "%s: +Inf bucket != count" % name
    assert sums[0] >= 0


def test_prometheus_parser_is_strict():
    """The parser refuses what Prometheus refuses (so it can fail)."""
    good = ("# HELP a_total A.\n# TYPE a_total counter\n"
            'a_total{x="q\\"\\\\\\n"} 3\n')
    assert parse_prometheus(good)["a_total"]["samples"][0][1]["x"] == \
        'q"\\\n'
    for bad in (
            "a 1\n",                                    # no TYPE
            "# TYPE a gauge\na 1\n",                    # no HELP
            "# HELP a x\n# TYPE a gauge\na{b=1} 1\n",   # unquoted value
            "# HELP a x\n# TYPE a gauge\na{b=\"\\t\"} 1\n",  # bad escape
            "# HELP a x\n# TYPE a gauge\na one\n",      # bad value
            "# HELP a x\n# TYPE a gauge\na 1\na 2\n",   # duplicate
            "# HELP a x\n# TYPE a counter\na 1\n",      # counter w/o _total
            "# HELP 1a x\n# TYPE 1a gauge\n1a 1\n",     # bad name
            "# HELP a x\n# TYPE a gauge\na 1",          # no final newline
            "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\n"
            "h_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",  # decreasing
    ):
        with pytest.raises(AssertionError):
            parse_prometheus(bad)


# ---------------------------------------------------------------- fixtures

@pytest.fixture
def sink():
    need(SMTP_SINK)
    with SmtpSink() as s:
        yield s


@pytest.fixture
def admin(sink):
    """A daemon with the admin API on TCP, a token and three classes:
    127.0.0.9 is slow (delays), 127.0.0.10 hostile (MAIL rejected)."""
    port = free_port()
    with Daemon(backend=sink.address, config_text=CLASSES,
                admin_listen="127.0.0.1:%d" % port, admin_token=TOKEN,
                client_class_map="127.0.0.9/32=slow 127.0.0.10/32=hostile",
                policy_thresholds="hostile=100") as d:
        d.api = Admin(port=port)
        d.admin_port = port
        yield d


def metrics(api):
    st, h, b = api.get("/metrics")
    assert st == 200
    assert h["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return parse_prometheus(b.decode("utf-8"))


def sample(fams, name, **labels):
    fam = fams[name]
    for n, l, v in fam["samples"]:
        if n == name and l == labels:
            return v
    raise KeyError((name, labels))


# ---------------------------------------------------------------- tests

def test_metrics_parse_and_count(admin):
    """/metrics is valid text format and counts what happened."""
    for _ in range(3):
        smtp_session(admin.port)
    smtp_session(admin.port, source="127.0.0.9")
    smtp_session(admin.port, source="127.0.0.9", quit_after="RCPT")
    smtp_session(admin.port, source="127.0.0.10")
    admin.wait_events("session", 6)
    wait_for(lambda: sample(metrics(admin.api), "mailshaper_sessions_live")
             == 0)
    m = metrics(admin.api)
    assert sample(m, "mailshaper_up") == 1
    assert sample(m, "mailshaper_connections_accepted_total") == 6
    assert sample(m, "mailshaper_connections_total", **{"class": "normal"}) \
        == 3
    assert sample(m, "mailshaper_connections_total", **{"class": "slow"}) == 2
    assert sample(m, "mailshaper_messages_total", outcome="delivered") == 4
    assert sample(m, "mailshaper_messages_total", outcome="abandoned") == 1
    assert sample(m, "mailshaper_messages_total", outcome="rejected") == 1
    # small messages stay in memory, and nothing is held after the end
    assert sample(m, "mailshaper_spool_memory_bytes") == 0
    assert sample(m, "mailshaper_spool_files_total") == 0
    q = {l["quality"]: v for n, l, v in
         m["mailshaper_fingerprint_matches_total"]["samples"]}
    assert set(q) == {"exact", "generic", "fuzzy", "generic_fuzzy", "none",
                      "null_syn"}
    assert sum(q.values()) == 6
    # Shaping: the slow class held its replies, normal never did.
    slow = sample(m, "mailshaper_shaping_delay_seconds_total",
                  **{"class": "slow"})
    assert slow >= 0.3 + 0.1, slow
    assert sample(m, "mailshaper_shaping_delay_seconds_total",
                  **{"class": "normal"}) == 0
    assert sample(m, "mailshaper_shaping_delays_total", **{"class": "slow"}) \
        >= 4
    for fam in ("mailshaper_dnsbl_queries_total",
                "mailshaper_dnsbl_hits_total",
                "mailshaper_dnsbl_timeouts_total",
                "mailshaper_dnsbl_errors_total",
                "mailshaper_rep_queue_depth",
                "mailshaper_rep_store_latency_seconds",
                "mailshaper_sessions_live"):
        assert fam in m, fam
    assert m["mailshaper_dnsbl_lookup_seconds"]["type"] == "histogram"
    assert sample(m, "mailshaper_rep_updates_total") >= 6


def test_api_stats_tables(admin):
    """/api/stats: the report tables by OS and by class, live."""
    for _ in range(2):
        smtp_session(admin.port)
    smtp_session(admin.port, source="127.0.0.9", quit_after="RCPT")
    smtp_session(admin.port, source="127.0.0.10")
    admin.wait_events("session", 4)
    s = admin.api.json("/api/stats")
    assert s["accepted"] == 4 and s["messages"] == 4 and s["delivered"] == 2
    keys = {"label", "senders", "ok_senders", "bad_senders", "sessions",
            "messages", "delivered", "rejected", "deferred", "abandoned",
            "early", "success_rate"}
    for g in s["by_os"] + s["by_class"]:
        assert keys <= set(g), g
    cls = {g["label"]: g for g in s["by_class"]}
    assert cls["normal"]["delivered"] == 2 and cls["normal"]["senders"] == 1
    assert cls["normal"]["ok_senders"] == 1
    assert cls["normal"]["success_rate"] == 1
    assert cls["slow"]["abandoned"] == 1 and cls["slow"]["bad_senders"] == 1
    assert cls["hostile"]["rejected"] == 1
    assert cls["hostile"]["success_rate"] == 0
    total = sum(g["messages"] for g in s["by_os"])
    assert total == 4
    assert sum(g["senders"] for g in s["by_os"]) == 3


def test_api_host(admin):
    """/api/host/IP: what we know about one client, live and after."""
    smtp_session(admin.port, source="127.0.0.9")
    admin.wait_events("session", 1)
    h = admin.api.json("/api/host/127.0.0.9")
    assert h["ip"] == "127.0.0.9" and h["known"] is True
    assert h["sessions"] == 1 and h["messages"]["delivered"] == 1
    assert h["first_seen"] <= h["last_seen"]
    fp = h["fingerprints"]
    assert len(fp) == 1 and fp[0]["raw_sig"].startswith("4:")
    assert fp[0]["os"] and fp[0]["match"] in ("exact", "generic", "fuzzy",
                                              "generic_fuzzy", "none")
    assert isinstance(fp[0]["distance"], int) and "link" in fp[0]
    assert h["class"]["name"] == "slow" and h["class"]["live"] is False
    assert any("client_class_map" in r or "slow" in r
               for r in h["class"]["reasons"]), h["class"]
    kinds = {r["kind"] for r in h["reputation"]}
    assert {"ip", "prefix", "rawsig", "os", "prefix_rawsig"} <= kinds
    ip = [r for r in h["reputation"] if r["kind"] == "ip"][0]
    assert ip["key"] == "127.0.0.9" and ip["evidence"] > 0
    assert ip["counts"]["delivered"] >= 1 and 0 < ip["p_spam"] < 1

    # A live session: its class comes from the session itself.
    c = RawSmtp("127.0.0.1", admin.port, source="127.0.0.10")
    try:
        c.expect(220)
        h = admin.api.json("/api/host/127.0.0.10")
        assert h["sessions_live"] == 1 and h["class"]["live"] is True
        assert h["class"]["name"] == "hostile"
    finally:
        c.close()
    wait_for(lambda: admin.api.json("/api/host/127.0.0.10")
             ["sessions_live"] == 0)

    # Unknown, canonical forms, bad addresses and traversal.
    h = admin.api.json("/api/host/192.0.2.77", want=404)
    assert h["known"] is False and h["reputation"][0]["evidence"] == 0
    assert admin.api.json("/api/host/2001:DB8::0:1", want=404)["ip"] == \
        "2001:db8::1"
    assert admin.api.json("/api/host/::ffff:127.0.0.9")["ip"] == "127.0.0.9"
    for bad in ("/api/host/../../etc/passwd", "/api/host/%2e%2e%2fetc",
                "/api/host/", "/api/host/1.2.3", "/api/host/1.2.3.4/x",
                "/api/host/127.0.0.1%00", "/api/host/" + "1" * 5000,
                "/api/host/fe80::1%25eth0", "/api/host/0x7f.1"):
        st, _, b = admin.api.get(bad)
        assert 400 <= st < 500, (bad, st, b)
    for bad in ("/../etc/passwd", "/api/../metrics/..", "/api", "/api/hostx",
                "//metrics", "/metrics/"):
        st, _, _ = admin.api.get(bad)
        assert st in (400, 404), (bad, st)


def test_token_required(admin):
    """A missing or wrong token is 401 everywhere, a right one works."""
    for path in ("/metrics", "/api/stats", "/api/host/127.0.0.1",
                 "/nope", "/feedback?id=AB&verdict=spam"):
        for tok in (None, "", "wrong", TOKEN + "x", TOKEN[:-1]):
            method = "POST" if path.startswith("/feedback") else "GET"
            st, h, _ = admin.api.request(method, path, token=tok)
            assert st == 401, (path, tok, st)
            assert h.get("www-authenticate", "").startswith("Bearer")
    st, _, _ = admin.api.get("/metrics", token=None,
                             headers={"Authorization": "Basic " + TOKEN})
    assert st == 401
    st, _, _ = admin.api.get("/metrics", token=None,
                             headers={"Authorization": "bearer " + TOKEN})
    assert st == 200
    # The page itself is static and served to anyone; a token in the query
    # opens no data endpoint.
    st, _, page = admin.api.get("/", token=None)
    assert st == 200 and b"/api/stats" in page
    assert admin.api.request("POST", "/", token=None)[0] == 401
    assert admin.api.get("/metrics?token=" + TOKEN, token=None)[0] == 401
    assert admin.api.get("/api/stats?token=" + TOKEN, token=None)[0] == 401


def test_dashboard_is_self_contained(admin):
    """The page loads nothing from anywhere else (CSP says so, too)."""
    st, h, b = admin.api.get("/")
    assert st == 200 and h["content-type"].startswith("text/html")
    page = b.decode()
    assert "default-src 'none'" in h["content-security-policy"]
    for m in re.finditer(r"""(?:src|href|action)\s*=\s*["']?([^"' >]+)""",
                         page):
        assert not re.match(r"(https?:)?//", m.group(1)), m.group(0)
    assert "@import" not in page and "url(" not in page
    assert re.findall(r"https?://[^\s\"']+", page) == \
        ["http://www.w3.org/2000/svg"]
    assert "setInterval" in page and "/api/stats" in page


def test_methods_and_bad_input(admin):
    """Odd methods, malformed requests and huge input: 4xx, daemon alive."""
    api = admin.api
    assert api.request("POST", "/metrics")[0] == 405
    assert api.request("DELETE", "/api/stats")[0] == 405
    assert api.request("PUT", "/")[0] == 405
    assert api.request("GET", "/feedback?id=AB&verdict=spam")[0] == 405
    assert api.request("HEAD", "/metrics")[0] == 200
    p = admin.admin_port
    auth = b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
    cases = [
        b"GARBAGE\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + auth +
        b"X-Big: " + b"a" * 20000 + b"\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + auth +
        b"".join(b"X-%d: y\r\n" % i for i in range(2000)) + b"\r\n",
        b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /feedback?id=AB&verdict=spam HTTP/1.1\r\nHost: x\r\n" +
        auth + b"Content-Length: 100000\r\n\r\n" + b"x" * 100000,
        b"POST /feedback HTTP/1.1\r\nHost: x\r\n" + auth +
        b"Content-Length: -5\r\n\r\n",
        b"POST /feedback HTTP/1.1\r\nHost: x\r\n" + auth +
        b"Transfer-Encoding: chunked\r\n\r\nZZZ\r\n",
        b"GET /api/host/\x00\xff HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n",
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
        b"\xff" * 3000 + b"\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: " +
        b"Bearer\r\n\r\n",
    ]
    for data in cases:
        st = raw_http(p, data)
        assert st is not None and 400 <= st < 500, (data[:60], st)
    # A client that sends half a request and leaves.
    s = socket.create_connection(("127.0.0.1", p))
    s.sendall(b"GET /metrics HTTP/1.1\r\nHo")
    s.close()
    assert api.get("/metrics")[0] == 200
    smtp_session(admin.port)
    assert admin.proc.poll() is None


def test_feedback_moved_here(sink):
    """POST /feedback on the admin API and through `mailshaper feedback`;
    feedback_listen keeps working as an alias."""
    port, fport = free_port(), free_port()
    with Daemon(backend=sink.address, admin_listen="127.0.0.1:%d" % port,
                admin_token=TOKEN) as d:
        api = Admin(port=port)
        smtp_session(d.port)
        sid = d.wait_events("session", 1)[0]["id"]
        st, _, b = api.request("POST", "/feedback?id=%s&verdict=spam" % sid)
        assert st == 200 and json.loads(b)["keys"] >= 4, b
        st, _, b = api.request("POST", "/feedback?id=ABCDEF&verdict=spam")
        assert st == 404
        st, _, b = api.request("POST", "/feedback?id=%s&verdict=maybe" % sid)
        assert st == 400
        # The command line finds the admin API and its token in the file.
        r = subprocess.run([BINARY, "feedback", "--ham", "-c", d.config, sid],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 0, r.stderr
        fb = d.wait_events("feedback", 2)
        assert [e["verdict"] for e in fb] == ["spam", "ham"]
    with Daemon(backend=sink.address, admin_listen="127.0.0.1:%d" % port,
                admin_token=TOKEN,
                feedback_listen="127.0.0.1:%d" % fport) as d:
        smtp_session(d.port)
        sid = d.wait_events("session", 1)[0]["id"]
        r = subprocess.run([BINARY, "feedback", "--spam", "-c", d.config,
                            sid], capture_output=True, text=True, timeout=20)
        assert r.returncode == 0, r.stderr
        st, _, _ = Admin(port=port).request(
            "POST", "/feedback?id=%s&verdict=spam" % sid)
        assert st == 200
        assert len(d.wait_events("feedback", 2)) == 2


def test_unix_socket(sink):
    """unix:/path needs no token unless one is set; it goes at exit."""
    d0 = tempfile.mkdtemp(prefix="ms-admin-")
    path = os.path.join(d0, "admin.sock")
    with Daemon(backend=sink.address, admin_listen="unix:" + path) as d:
        api = Admin(path=path, token=None)
        smtp_session(d.port)
        d.wait_events("session", 1)
        assert api.json("/api/stats")["accepted"] == 1
        assert api.get("/metrics")[0] == 200
        r = subprocess.run([BINARY, "feedback", "--spam", "-c", d.config,
                            d.events("session")[0]["id"]],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 0, r.stderr
    assert not os.path.exists(path)
    with Daemon(backend=sink.address, admin_listen="unix:" + path,
                admin_token=TOKEN) as d:
        assert Admin(path=path, token=None).get("/metrics")[0] == 401
        assert Admin(path=path).get("/metrics")[0] == 200
    os.rmdir(d0)


def test_config_check():
    """admin_listen is loopback or unix:, never an SMTP port; TCP needs a
    token; errors name file:line."""
    cases = [
        ("admin_listen = 192.0.2.1:8025\nadmin_token = %s\n" % TOKEN,
         r":1: admin_listen: 192\.0\.2\.1:8025 is not a loopback address"),
        ("admin_listen = 0.0.0.0:8025\nadmin_token = %s\n" % TOKEN,
         r":1: admin_listen: .*not a loopback"),
        ("admin_token = %s\nadmin_listen = [::]:8025\n" % TOKEN,
         r":2: admin_listen: .*not a loopback"),
        ("admin_listen = 127.0.0.1:8025\n",
         r":1: admin_listen: a TCP address needs admin_token"),
        ("listen = 127.0.0.1:2525\nadmin_listen = 127.0.0.2:2525\n"
         "admin_token = %s\n" % TOKEN,
         r":2: admin_listen: port of .* is an SMTP listen port"),
        ("admin_listen = 127.0.0.1:8025\nadmin_token = short\n",
         r":2: admin_token: at least 16 characters"),
        ("admin_listen = 127.0.0.1:8025\nadmin_token = has space in it ok\n",
         r":2: admin_token: at least 16"),
        ("admin_listen = nonsense\n", r":1: admin_listen: "),
    ]
    for text, want in cases:
        rc, out, path = check_config(text)
        assert rc == 1, (text, out)
        assert re.search(re.escape(path) + want, out), (text, out)
    for text in ("admin_listen = 127.0.0.1:8025\nadmin_token = %s\n" % TOKEN,
                 "admin_listen = [::1]:8025\nadmin_token = %s\n" % TOKEN,
                 "admin_listen = unix:/run/mailshaper/admin.sock\n",
                 ""):
        rc, out, _ = check_config(text)
        assert rc == 0, (text, out)


# ---------------------------------------------------- load vs SMTP

def _hammer(port, stop_at, counter, lock):
    """Worker process: GET /metrics and /api/stats until stop_at.  It runs
    at nice 19: on a small machine the load generator must not take the
    CPU from the SMTP client that measures; the daemon's own work for
    these requests is what the test is about."""
    os.nice(19)
    n = 0
    paths = ("/metrics", "/api/stats", "/api/host/127.0.0.1")
    while time.time() < stop_at:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            for i in range(20):
                c.request("GET", paths[(n + i) % 3],
                          headers={"Authorization": "Bearer " + TOKEN})
                r = c.getresponse()
                r.read()
                if r.status in (200, 404):
                    n += 1
            c.close()
        except (OSError, http.client.HTTPException):
            pass
    with lock:
        counter.value += n


def _smtp_round(port, seconds):
    """Sequential SMTP sessions for `seconds`: (sessions, latencies)."""
    lat = []
    end = time.time() + seconds
    while time.time() < end:
        t = time.monotonic()
        smtp_session(port)
        lat.append(time.monotonic() - t)
    return len(lat), sorted(lat)


def test_admin_load_does_not_slow_smtp(admin):
    """Eight processes hammer /metrics, /api/stats and /api/host for a few
    seconds: SMTP sessions keep at least half their unloaded rate (the
    slower of a round before and one after) and a bounded median latency.
    The daemon bounds its admin work (event priority, ADM_RATE)."""
    for _ in range(20):
        smtp_session(admin.port)		# warm up; a table to serve
    before_n, before_lat = _smtp_round(admin.port, 2.0)
    ctx = multiprocessing.get_context("fork")
    counter, lock = ctx.Value("l", 0), ctx.Lock()
    stop_at = time.time() + 3.5
    procs = [ctx.Process(target=_hammer, args=(admin.admin_port, stop_at,
                                               counter, lock))
             for _ in range(8)]
    for p in procs:
        p.start()
    time.sleep(0.5)
    load_n, load_lat = _smtp_round(admin.port, 2.0)
    for p in procs:
        p.join(20)
    after_n, after_lat = _smtp_round(admin.port, 2.0)
    served = counter.value
    base_n = min(before_n, after_n)
    med0 = max(before_lat[len(before_lat) // 2],
               after_lat[len(after_lat) // 2])
    med1 = load_lat[len(load_lat) // 2]
    print("unloaded %d/%d sessions in 2 s (median %.1f ms), loaded %d "
          "(median %.1f ms, p95 %.1f ms) while %d admin requests were served"
          % (before_n, after_n, med0 * 1000, load_n, med1 * 1000,
             load_lat[int(len(load_lat) * 0.95)] * 1000, served))
    assert served >= 300, served
    assert load_n >= 0.5 * base_n, (base_n, load_n)
    assert med1 < max(0.05, 3 * med0), (med0, med1)
    assert admin.proc.poll() is None
    assert admin.api.get("/metrics")[0] == 200
