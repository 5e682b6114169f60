"""`mailshaper report --store URL`: the report from the reputation store.

The stores (a SQLite file, and a redis-server started here on a free
loopback port: skipped with a message when redis-server is missing) are
filled through the rep API by tests/blackbox/rep_fill.c, compiled here
against $MAILSHAPER_BUILD/libmailshaper.a and libmscommon.a.  Known counts are written "now"
and read with a half-life of 100,000 weeks, so the decay is below the
printed precision and the numbers are exact; counts written one default
half-life (7 days) ago must come back halved.
"""
import csv
import html.parser
import io
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET

import pytest

from fp_helpers import binary

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("MAILSHAPER_BUILD", os.path.join(REPO, "build"))
PKGS = "libevent libevent_openssl libevent_pthreads openssl libpcap sqlite3 hiredis"
WEEK_MS = 7 * 86400 * 1000
NODECAY = ["--half-life", "100000w"]
UNKNOWN = ("senders", "ok_senders", "bad_senders", "sessions", "messages",
           "gave_up", "backend_error", "other", "waited", "wait_mean_s",
           "wait_max_s")

# (kind, text, outcome, weight), written now
KNOWN = [
    ("os", "Linux 2.2.x-3.x", "delivered", 8),
    ("os", "Linux 2.2.x-3.x", "rejected", 1),
    ("os", "Linux 2.2.x-3.x", "deferred", 1),
    ("os", "Windows XP", "delivered", 1),
    ("os", "Windows XP", "abandoned", 10),
    ("os", "Windows XP", "protocol_error", 2),
    ("os", "Windows XP", "spam", 3),
    ("os", "Windows XP", "listed", 2),
    ("os", "<script>alert('x')</script> & \"q\"", "rejected", 4),
    ("rawsig", "00112233aabbccdd", "delivered", 3),
    ("rawsig", "00112233aabbccdd", "rejected", 1),
    ("rawsig", "ffeeddccbbaa9988", "abandoned", 5),
    ("ip", "192.0.2.1", "delivered", 1),
    ("ip", "192.0.2.2", "rejected", 1),
    ("prefix", "192.0.2.0/24", "delivered", 1),
]
# expected: label -> (attempts, delivered, rejected, deferred, abandoned,
#                     protocol_error, spam, listed); a DNS-list listing is
# evidence, not a delivery attempt
OS = {
    "Windows XP": (13, 1, 0, 0, 10, 2, 3, 2),
    "Linux 2.2.x-3.x": (10, 8, 1, 1, 0, 0, 0, 0),
    "<script>alert('x')</script> & \"q\"": (4, 0, 4, 0, 0, 0, 0, 0),
}
RAWSIG = {
    "ffeeddccbbaa9988": (5, 0, 0, 0, 5, 0, 0, 0),
    "00112233aabbccdd": (4, 3, 1, 0, 0, 0, 0, 0),
}
NAMES = ("attempts", "delivered", "rejected", "deferred", "abandoned",
         "protocol_error", "spam", "listed")


def run(args, check=None):
    res = subprocess.run([binary(), "report"] + args, capture_output=True,
                         text=True, timeout=60)
    if check is not None:
        assert res.returncode == check, (res.returncode, res.stdout[-2000:],
                                         res.stderr[-2000:])
    return res


@pytest.fixture(scope="module")
def fill_bin():
    """rep_fill, built against this build's library"""
    lib = os.path.join(BUILD, "libmailshaper.a")
    if not os.path.exists(lib):
        pytest.skip("%s not built (run make)" % lib)
    d = tempfile.mkdtemp(prefix="rep_fill.")
    out = os.path.join(d, "rep_fill")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs"] + PKGS.split(),
                           capture_output=True, text=True, check=True).stdout.split()
    nm = subprocess.run(["nm", lib], capture_output=True, text=True).stdout
    san = ["-fsanitize=address,undefined"] if "__asan_report" in nm else []
    subprocess.run(["cc", "-std=c11", "-D_GNU_SOURCE", "-g", "-Wall", "-Wextra",
                    "-Werror", "-I" + os.path.join(REPO, "src")] + san +
                   ["-o", out, os.path.join(REPO, "tests/blackbox/rep_fill.c"),
                    lib, os.path.join(BUILD, "libmscommon.a")] + flags +
                    ["-lpthread", "-lm"], check=True)
    yield out
    shutil.rmtree(d, ignore_errors=True)


def fill(fill_bin, spec, updates):
    """updates: (t_ms, kind, outcome, weight, text)"""
    text = "".join("%d %s %s %s %s\n" % u for u in updates)
    res = subprocess.run([fill_bin, spec, str(WEEK_MS)], input=text,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr


def known_updates():
    now = int(time.time() * 1000)
    ups = [(now, k, o, w, t) for k, t, o, w in KNOWN]
    ups.append((now - WEEK_MS, "os", "delivered", 10, "FreeBSD"))
    return ups


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sqlite_store(fill_bin, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("rs") / "reputation.db")
    fill(fill_bin, "sqlite:" + path, known_updates())
    return "sqlite:" + path


@pytest.fixture(scope="module")
def redis_store(fill_bin, tmp_path_factory):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not found: skipping the Redis store "
                    "(apt-get install redis-server)")
    port = free_port()
    d = str(tmp_path_factory.mktemp("redis"))
    p = subprocess.Popen(["redis-server", "--port", str(port), "--bind",
                          "127.0.0.1", "--save", "", "--appendonly", "no",
                          "--dir", d], stdout=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    spec = "redis://127.0.0.1:%d" % port
    try:
        fill(fill_bin, spec, known_updates())
        yield spec
    finally:
        p.kill()
        p.wait()


@pytest.fixture(params=["sqlite", "redis"])
def store(request):
    return request.getfixturevalue(request.param + "_store")


def json_rows(out):
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows[-1]["type"] == "summary"
    return {r["group"]: r for r in rows[:-1]}, rows[-1]


def check_rows(got, want):
    assert set(got) == set(want)
    for label, vals in want.items():
        g = got[label]
        for k, v in zip(NAMES, vals):
            assert g[k] == v, (label, k, g[k], v)
        assert g["success_rate"] == pytest.approx(vals[1] / vals[0], abs=1e-6)
        for k in UNKNOWN:
            assert g[k] is None, (label, k)


def test_json_by_os(store):
    res = run(["--store", store, "--format", "json"] + NODECAY, check=0)
    got, summary = json_rows(res.stdout)
    fb = got.pop("FreeBSD")
    check_rows(got, OS)
    assert summary["source"] == "store" and summary["store"] == store
    assert summary["groups"] == 4 and summary["keys"] == 6
    assert summary["ip_keys"] == 2
    assert summary["sessions"] is None
    # p_spam from rep_estimate(): XP bad 17 (2 listed) good 1 -> 18/20
    assert got["Windows XP"]["p_spam"] == pytest.approx(18 / 20, abs=1e-6)
    assert got["Windows XP"]["evidence"] == 18
    # order: most decayed attempts first
    order = [json.loads(l)["group"] for l in res.stdout.splitlines()[:-1]]
    assert order == ["Windows XP", "Linux 2.2.x-3.x", "FreeBSD",
                     "<script>alert('x')</script> & \"q\""]
    assert fb["delivered"] == pytest.approx(10, rel=1e-4)   # a week of 1e5


def test_decay_default_half_life(store):
    """FreeBSD's 10 deliveries are one default half-life (7 d) old."""
    res = run(["--store", store, "--format", "json"], check=0)
    got, summary = json_rows(res.stdout)
    assert summary["half_life_s"] == 7 * 86400
    assert got["FreeBSD"]["delivered"] == pytest.approx(5, rel=1e-4)
    assert got["Linux 2.2.x-3.x"]["delivered"] == pytest.approx(8, rel=1e-4)


def test_csv_by_rawsig(store):
    res = run(["--store", store, "--by", "rawsig", "--format", "csv"] +
              NODECAY, check=0)
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert len(rows) == 2
    got = {r["group"]: r for r in rows}
    assert set(got) == set(RAWSIG)
    for label, vals in RAWSIG.items():
        r = got[label]
        assert r["by"] == "rawsig"
        for k, v in zip(NAMES, vals):
            assert float(r[k]) == v, (label, k, r[k])
        for k in UNKNOWN:
            assert r[k] == "", (label, k)
    assert float(got["00112233aabbccdd"]["success_rate"]) == 0.75
    assert float(got["ffeeddccbbaa9988"]["success_rate"]) == 0
    assert [r["group"] for r in rows] == ["ffeeddccbbaa9988",
                                          "00112233aabbccdd"]


def test_text(store):
    res = run(["--store", store] + NODECAY, check=0)
    lines = res.stdout.splitlines()
    assert "not in the store" in res.stdout
    row = [l for l in lines if l.startswith("Linux 2.2.x-3.x")][0].split()
    # label (2 words), then 5 unknown columns, delivered, success
    assert row[2:7] == ["-"] * 5
    assert row[7] == "8.0" and row[8] == "80.0%"


class _Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)


def test_charts(store, tmp_path):
    out = str(tmp_path / "charts")
    res = run(["--store", store, "--out", out, "--format", "json"] + NODECAY,
              check=0)
    assert "patience_by_os omitted" in res.stderr
    files = set(os.listdir(out))
    assert files == {"index.html", "share_successful.svg",
                     "share_unsuccessful.svg", "success_by_os.svg",
                     "success_by_rawsig.svg"}
    for f in files - {"index.html"}:
        root = ET.parse(os.path.join(out, f)).getroot()
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert b"<script" not in open(os.path.join(out, f), "rb").read()
    page = open(os.path.join(out, "index.html"), encoding="utf-8").read()
    p = _Page()
    p.feed(page)
    assert "script" not in p.tags
    assert p.tags.count("svg") == 4
    assert "Omitted: patience_by_os" in page
    shares = ET.parse(os.path.join(out, "share_successful.svg")).getroot()
    titles = " ".join(t.text or "" for t in shares.iter(
        "{http://www.w3.org/2000/svg}title"))
    assert "Linux 2.2.x-3.x: 42.1%" in titles       # 8 of 19 delivered
    assert "<script>" not in titles     # the hostile label has no delivery


@pytest.mark.parametrize("by", ["class", "dnsbl", "hour"])
def test_no_such_key(store, by):
    res = run(["--store", store, "--by", by], check=2)
    assert "no %s keys" % by in res.stderr


def test_usage_errors(sqlite_store, tmp_path):
    assert "does not apply" in run(["--store", sqlite_store, "--since", "1d"],
                                   check=2).stderr
    assert "not both" in run(["--store", sqlite_store, "x.jsonl"],
                             check=2).stderr
    assert "bad --store" in run(["--store", "mysql://x"], check=2).stderr
    run(["--store", "redis://host:99999"], check=2)
    run(["--store", sqlite_store, "--half-life", "soon"], check=2)
    run(["--half-life", "1d", str(tmp_path / "x")], check=2)


def test_store_errors(tmp_path):
    res = run(["--store", "sqlite:" + str(tmp_path / "missing.db")], check=1)
    assert "No such file" in res.stderr
    assert not os.path.exists(tmp_path / "missing.db")
    bad = tmp_path / "corrupt.db"
    bad.write_bytes(b"\0garbage, not SQLite\n" * 300)
    res = run(["--store", "sqlite:" + str(bad)], check=1)
    assert "not a database" in res.stderr
    other = tmp_path / "other.db"
    subprocess.run(["python3", "-c", "import sqlite3,sys; c=sqlite3.connect"
                    "(sys.argv[1]); c.execute('create table t(a)'); "
                    "c.commit()", str(other)], check=True)
    res = run(["--store", "sqlite:" + str(other)], check=1)
    assert "not a mailshaper reputation store" in res.stderr
    res = run(["--store", "redis://127.0.0.1:%d" % free_port()], check=1)
    assert "cannot connect" in res.stderr


def test_sqlite_not_written(sqlite_store):
    path = sqlite_store[len("sqlite:"):]
    before = open(path, "rb").read()
    run(["--store", sqlite_store, "--format", "csv"], check=0)
    assert open(path, "rb").read() == before
