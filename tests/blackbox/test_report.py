"""`mailshaper report`: known answers, every format, charts, bad input, memory.

Event logs come from gen_report_log.py, which also computes the expected
report by OS and by raw signature with the definitions of
doc/internals/report.md.  One OS label is hostile markup; nothing of it
may reach the HTML or SVG unescaped.
"""
import csv
import html.parser
import io
import json
import os
import re
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest

import gen_report_log as gen
from fp_helpers import binary

SVG_NS = "{http://www.w3.org/2000/svg}"
CHARTS = {"share_successful.svg", "share_unsuccessful.svg",
          "success_by_os.svg", "success_by_rawsig.svg", "patience_by_os.svg"}
FIELDS = ("senders", "ok_senders", "bad_senders", "sessions", "messages",
          "attempts", "delivered", "rejected", "deferred", "abandoned",
          "gave_up", "protocol_error", "backend_error", "waited")


def run(args, check=None, timeout=120):
    res = subprocess.run([binary(), "report"] + args, capture_output=True,
                         text=True, timeout=timeout)
    if check is not None:
        assert res.returncode == check, (res.returncode, res.stdout[-2000:],
                                         res.stderr[-2000:])
    return res


@pytest.fixture(scope="module")
def known(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("rp") / "events.jsonl")
    by_os, by_raw, st = gen.generate(path, sessions=3000, seed=5, garbage=6)
    return path, by_os, by_raw, st


def json_rows(res):
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert rows[-1]["type"] == "summary"
    return {r["group"]: r for r in rows[:-1]}, rows[-1]


def check_truth(got, truth):
    assert set(got) == set(truth)
    for label, t in truth.items():
        g = got[label]
        for k in FIELDS:
            assert g[k] == t[k], (label, k, g[k], t[k])
        rate = t["delivered"] / t["attempts"] if t["attempts"] else None
        if rate is None:
            assert g["success_rate"] is None
        else:
            assert abs(g["success_rate"] - rate) < 1e-5


def test_json_by_os_matches_ground_truth(known):
    path, by_os, _, st = known
    got, summary = json_rows(run([path, "--format", "json"], check=0))
    check_truth(got, by_os)
    assert summary["garbage"] == st["garbage"]
    assert summary["lines"] == st["lines"]
    assert summary["sessions"] == st["sessions"]
    assert summary["orphans"] == 0
    assert all(r["by"] == "os" for r in got.values())
    # The hostile label survives the round trip exactly.
    assert gen.HOSTILE in got


def test_json_by_rawsig_matches_ground_truth(known):
    path, _, by_raw, _ = known
    got, _ = json_rows(run([path, "--by", "rawsig", "--format", "json"],
                           check=0))
    check_truth(got, by_raw)


def test_other_groupings(known):
    path = known[0]
    for by, labels in (("class", {"normal"}), ("dnsbl", {"(not asked)"})):
        got, _ = json_rows(run([path, "--by", by, "--format", "json"],
                               check=0))
        assert set(got) == labels
        assert got[labels.pop()]["sessions"] == 3000
    got, _ = json_rows(run([path, "--by", "hour", "--format", "json"],
                           check=0))
    assert set(got) <= {"%02d" % h for h in range(24)}
    assert sum(r["sessions"] for r in got.values()) == 3000


def test_csv_parses_and_agrees(known):
    path, by_os, _, _ = known
    res = subprocess.run([binary(), "report", path, "--format", "csv"],
                         capture_output=True, timeout=60)
    assert res.returncode == 0
    out = res.stdout.decode()
    assert out.count("\r\n") == out.count("\n") == 1 + len(by_os)
    rows = list(csv.DictReader(io.StringIO(out, newline="")))
    assert {r["group"] for r in rows} == set(by_os)
    for r in rows:
        t = by_os[r["group"]]
        for k in FIELDS:
            assert int(r[k]) == t[k], (r["group"], k)


def test_text_is_aligned_and_safe(known):
    path, by_os, _, _ = known
    out = run([path], check=0).stdout
    assert "\x1b" not in out
    lines = out.splitlines()
    table = lines[2:]
    assert len(table) == 1 + len(by_os)
    assert len({len(line.rstrip()) for line in table}) == 1, table
    assert "Linux 2.2.x-3.x" in out


class Collect(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []
        self.urls = []
        self.text = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for k, v in attrs:
            if k in ("src", "href") or (v and re.match(r"\s*https?:", v) and
                                        k != "xmlns"):
                self.urls.append((tag, k, v))

    def handle_data(self, data):
        self.text.append(data)


def check_page(page):
    p = Collect()
    p.feed(page)
    p.close()
    assert p.tags.count("svg") == 5, p.tags.count("svg")
    assert "script" not in p.tags and "b" not in p.tags
    assert p.urls == []
    assert "<script>alert" not in page
    # Each inline chart is well-formed XML on its own.
    for frag in re.findall(r"<svg.*?</svg>", page, re.S):
        ET.fromstring(frag)
    return "".join(p.text)


def test_html_to_stdout(known):
    path = known[0]
    text = check_page(run([path, "--format", "html"], check=0).stdout)
    assert gen.HOSTILE.replace("\x1b", "") in text


def svg_texts(root):
    return ["".join(t.itertext()) for t in root.iter(SVG_NS + "text")]


def test_out_dir_charts(known, tmp_path):
    path, by_os, _, _ = known
    out = tmp_path / "charts"
    res = run([path, "--out", str(out), "--format", "json"], check=0)
    json_rows(res)      # the table still goes to stdout
    assert set(os.listdir(out)) == CHARTS | {"index.html"}
    roots = {}
    for name in CHARTS:
        roots[name] = ET.parse(str(out / name)).getroot()
        assert roots[name].tag == SVG_NS + "svg"
        raw = (out / name).read_text()
        assert "<script" not in raw and "<b>" not in raw
    check_page((out / "index.html").read_text())
    # Headline charts: the legends give each OS's share of its senders.
    for name, key in (("share_successful.svg", "ok_senders"),
                      ("share_unsuccessful.svg", "bad_senders")):
        total = sum(g[key] for g in by_os.values())
        legend = " ".join(svg_texts(roots[name]))
        for label, g in by_os.items():
            if g[key]:
                want = "%s \u2014 %.1f%%" % (label.replace("\x1b", ""),
                                             100 * g[key] / total)
                assert want in legend, (want, legend)
    legend = " ".join(svg_texts(roots["share_unsuccessful.svg"]))
    assert "Zombie <b>&amp;" in legend
    # Patience: the zombies' row has the generator's histogram.
    for g in roots["patience_by_os.svg"].iter(SVG_NS + "g"):
        if g.find(SVG_NS + "title").text == "Zombie <b>&amp;":
            counts = [int(r.find(SVG_NS + "title").text.rsplit(": ", 1)[1])
                      for r in g.iter(SVG_NS + "rect")]
            assert counts == by_os["Zombie <b>&amp;"]["wait_hist"]
            break
    else:
        pytest.fail("no zombie row in patience_by_os.svg")
    bars = [t for t in svg_texts(roots["success_by_rawsig.svg"])[1:]
            if "%" in t]
    assert 1 <= len(bars) <= 15


def test_since(known, tmp_path):
    path = known[0]
    starts = []
    with open(path) as f:
        for line in f:
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if isinstance(r, dict) and r.get("type") == "session" and \
                    "start" in r:
                starts.append(r["start"])
    starts.sort()
    cut = starts[len(starts) // 3]
    _, summary = json_rows(run([path, "--since", cut, "--format", "json"],
                               check=0))
    assert summary["sessions"] == sum(1 for s in starts if s >= cut)
    assert summary["filtered"] == sum(1 for s in starts if s < cut)
    # A relative --since counts back from now.
    log = tmp_path / "recent.jsonl"
    now = time.time()
    with open(log, "w") as f:
        for i, age in enumerate((3 * 86400, 2 * 3600, 600)):
            f.write(json.dumps({
                "type": "session", "id": "S%d" % i,
                "start": gen.rfc3339(now - age), "end": gen.rfc3339(now - age),
                "client_ip": "192.0.2.%d" % i, "fp": None, "class": "normal",
                "dnsbl": None, "messages": 0, "outcome": "abandoned",
                "gave_up_after_s": 1.0}) + "\n")
    for since, n in (("1h", 1), ("3h", 2), ("7d", 3), ("30m", 1)):
        _, summary = json_rows(run([str(log), "--since", since,
                                    "--format", "json"], check=0))
        assert summary["sessions"] == n, since


def test_garbage_lines_warned_and_capped(tmp_path):
    log = tmp_path / "garbage.jsonl"
    good = json.dumps({"type": "session", "id": "A", "start":
                       "2026-11-01T00:00:00Z", "client_ip": "192.0.2.1",
                       "fp": None, "messages": 0, "outcome": "completed"})
    lines = [good]
    for i in range(30):
        lines.append(("{broken", "[]", '{"type":1}', '{"type":"message"}',
                      '{"type":"session","id":"x","start":"yesterday"}',
                      "\x00\xff<svg>")[i % 6])
    lines.append(good.replace('"A"', '"B"'))
    log.write_text("\n".join(lines) + "\n")
    res = run([str(log), "--format", "json"], check=0)
    _, summary = json_rows(res)
    assert summary["garbage"] == 30 and summary["sessions"] == 2
    warn = re.findall(r"%s:(\d+): " % re.escape(str(log)), res.stderr)
    assert [int(n) for n in warn] == list(range(2, 22))
    assert "further warnings suppressed" in res.stderr
    assert "30 of 32 lines skipped" in res.stderr


def test_bad_arguments(tmp_path):
    log = tmp_path / "empty.jsonl"
    log.write_text("")
    assert "usage: mailshaper report" in run([], check=2).stderr
    assert "--by wants" in run([str(log), "--by", "ttl"], check=2).stderr
    assert "--format wants" in run([str(log), "--format", "pdf"],
                                   check=2).stderr
    assert "--since wants" in run([str(log), "--since", "soon"],
                                  check=2).stderr
    # --store is tested in test_report_store.py; here only its usage.
    res = run(["--store", "sqlite:" + str(tmp_path / "nope.db")], check=1)
    assert "No such file" in res.stderr
    assert "not both" in run([str(log), "--store", "sqlite:/x"],
                             check=2).stderr
    assert "cannot open" in run([str(tmp_path / "nope")], check=1).stderr
    # An empty log is a valid, empty report in every format.
    _, summary = json_rows(run([str(log), "--format", "json"], check=0))
    assert summary["sessions"] == 0
    check_page(run([str(log), "--format", "html"], check=0).stdout)


def max_rss_kb(path):
    res = subprocess.run(["/usr/bin/time", "-v", binary(), "report", path,
                          "--format", "json"], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", res.stderr)
    assert m, res.stderr[-2000:]
    return int(m.group(1)), json_rows(res)[1]


def test_memory_flat(tmp_path):
    """Five times the log, same keys: the peak RSS must not follow."""
    if not os.path.exists("/usr/bin/time"):
        pytest.skip("no /usr/bin/time")
    with open(binary(), "rb") as f:
        if b"__asan_init" in f.read():
            pytest.skip("ASan's quarantine and shadow make RSS meaningless")
    small, big = str(tmp_path / "small"), str(tmp_path / "big")
    gen.generate(small, sessions=20000, seed=21)
    gen.generate(big, sessions=100000, seed=22)
    rss_small, _ = max_rss_kb(small)
    rss_big, summary = max_rss_kb(big)
    os.unlink(small)
    os.unlink(big)
    print("max RSS: %d KiB at 20k sessions, %d KiB at 100k" % (
        rss_small, rss_big))
    assert summary["sessions"] == 100000
    assert rss_big < 40 * 1024, rss_big
    assert rss_big <= rss_small * 1.2 + 1024, (rss_small, rss_big)


def test_progress_only_on_a_terminal(tmp_path):
    import pty
    path = str(tmp_path / "p.jsonl")
    gen.generate(path, sessions=8000, seed=3)   # > 16384 lines
    res = run([path, "--format", "json"], check=0)
    assert "report: [" not in res.stderr
    master, slave = pty.openpty()
    proc = subprocess.Popen([binary(), "report", path, "--format", "json"],
                            stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    out, _ = proc.communicate(timeout=60)
    err = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        err += chunk
    os.close(master)
    assert proc.returncode == 0
    assert b"report: [" in err and b"%" in err, err[:200]
    # stdout stays clean: every line is JSON.
    for line in out.decode().splitlines():
        json.loads(line)
