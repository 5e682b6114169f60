"""`mailshaper evaluate`: known answers, output formats, bad input, memory.

Event logs come from gen_eventlog.py: one embedded-router raw signature
sends only spam from inside "Linux 2.2.x-3.x", an OS label that is mostly
ham.  rawsig must find the router at 0% false positives; os must not.
"""
import json
import os
import re
import subprocess

import pytest

import gen_eventlog as gen
from fp_helpers import binary

ROUTER = gen.ROUTER_RAW


def run(args, check=None, timeout=120):
    res = subprocess.run([binary(), "evaluate"] + args, capture_output=True,
                         text=True, timeout=timeout)
    if check is not None:
        assert res.returncode == check, (res.returncode, res.stdout,
                                         res.stderr)
    return res


def rows(res):
    return {r["features"]: r for r in map(json.loads,
                                          res.stdout.splitlines())}


def test_share(path, split_at):
    """Share of the router in the bad messages at or after split_at."""
    times = []
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            if r["type"] == "message" and r["outcome"] in (
                    "rejected", "abandoned", "protocol_error", "delivered"):
                times.append((r["time"], r["outcome"] != "delivered",
                              r["raw_sig"] == ROUTER))
    times.sort()
    test = times[int(len(times) * split_at):]
    bad = [t for t in test if t[1]]
    return sum(1 for t in bad if t[2]) / len(bad), len(test)


test_share.__test__ = False


@pytest.fixture(scope="module")
def known_log(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("ev") / "events.jsonl")
    summary = gen.generate(path, sessions=6000, seed=7)
    return path, summary


def test_rawsig_finds_router_os_does_not(known_log):
    path, summary = known_log
    res = run([path, "--json", "--features", "rawsig,os,all"], check=0)
    r = rows(res)
    assert set(r) == {"rawsig", "os", "all"}
    for row in r.values():
        assert {"features", "recall_at_0fp", "recall_at_0_1fp", "precision",
                "messages"} <= set(row)
    share, ntest = test_share(path, 0.5)
    # Every router message in the test half is flagged, nothing good is.
    assert r["rawsig"]["recall_at_0fp"] >= 0.95 * share, (r, share)
    assert r["rawsig"]["recall_at_0fp"] <= 1.05 * share + 0.01, (r, share)
    assert r["rawsig"]["precision"] == 1.0
    assert r["rawsig"]["recall_at_0_1fp"] >= r["rawsig"]["recall_at_0fp"]
    # The OS label cannot tell the router from the Linux MTAs.
    assert r["os"]["recall_at_0fp"] <= 0.01, r["os"]
    assert r["os"]["recall_at_0_1fp"] <= 0.01, r["os"]
    # About half the labelled messages are tested.
    labelled = summary["bad"] + summary["good"]
    assert abs(r["rawsig"]["messages"] - ntest) <= 0.02 * labelled
    assert r["os"]["messages"] == r["rawsig"]["messages"]


def test_train_fraction_moves_the_split(known_log):
    path, summary = known_log
    a = rows(run([path, "--json", "--features", "rawsig",
                  "--train-fraction", "0.8"], check=0))["rawsig"]
    b = rows(run([path, "--json", "--features", "rawsig",
                  "--train-fraction", "0.2"], check=0))["rawsig"]
    labelled = summary["bad"] + summary["good"]
    assert abs(a["messages"] - 0.2 * labelled) <= 0.03 * labelled
    assert abs(b["messages"] - 0.8 * labelled) <= 0.03 * labelled


def test_text_table(known_log):
    path, _ = known_log
    res = run([path, "--features", "os,rawsig"], check=0)
    lines = res.stdout.splitlines()
    assert re.match(r"trained on \d+ messages before 2026-11-\d\dT.*Z, "
                    r"tested on \d+ \(0 without a session record\)$",
                    lines[0]), lines[0]
    head = lines[2].split()
    assert head[:4] == ["features", "recall@0FP", "recall@.1FP",
                        "precision"]
    assert lines[3].split()[0] == "os"
    assert lines[4].split()[0] == "rawsig"
    assert re.match(r"rawsig\s+\d+\.\d\d%\s+\d+\.\d\d%\s+100\.00%\s+\d+",
                    lines[4]), lines[4]
    assert res.stderr == ""


def test_default_feature_sets(known_log):
    path, _ = known_log
    r = rows(run([path, "--json"], check=0))
    assert list(r) == ["os", "rawsig", "ip", "prefix", "dnsbl", "all"]
    for row in r.values():
        for k in ("recall_at_0fp", "recall_at_0_1fp"):
            assert 0 <= row[k] <= 1


def test_feedback_overrides_outcome(tmp_path):
    """With nothing trained every message is tested: the bad and good
    counts are the generator's, feedback included."""
    path = str(tmp_path / "fb.jsonl")
    st = gen.generate(path, sessions=3000, seed=3, feedback=True)
    assert st["feedback"] > 20
    r = rows(run([path, "--json", "--features", "os",
                  "--train-fraction", "0"], check=0))["os"]
    assert (r["bad"], r["good"]) == (st["bad"], st["good"])
    plain = str(tmp_path / "plain.jsonl")
    st2 = gen.generate(plain, sessions=3000, seed=3, feedback=False)
    r2 = rows(run([plain, "--json", "--features", "os",
                   "--train-fraction", "0"], check=0))["os"]
    assert (r2["bad"], r2["good"]) == (st2["bad"], st2["good"])
    assert r2["bad"] != r["bad"]


def test_garbage_lines_warned_and_counted(tmp_path):
    path = str(tmp_path / "g.jsonl")
    st = gen.generate(path, sessions=2000, seed=5, garbage=6)
    with open(path, "ab") as f:
        f.write(b"\x00\xff\xfe binary\n")
        f.write(b"{\"type\":\"message\",\"x\":\"" + b"z" * (3 << 20) +
                b"\"}\n")
        f.write(b"[\"not\",\"an\",\"object\"]\n")
    res = run([path, "--json", "--features", "rawsig"], check=0)
    base = st["lines"]
    for n in st["garbage_lines"]:
        assert "%s:%d: not JSON: column 30: unexpected character" % (
            path, n) in res.stderr, res.stderr
    assert "%s:%d: not JSON" % (path, base + 1) in res.stderr
    assert "%s:%d: line longer than 1048576 bytes" % (path, base + 2) \
        in res.stderr
    assert "%s:%d: not a JSON object" % (path, base + 3) in res.stderr
    assert "9 of %d lines skipped as unusable" % (base + 3) in res.stderr
    assert rows(res)["rawsig"]["messages"] > 0


def test_blank_lines_with_cr_are_blank_as_in_report(tmp_path):
    """A line of blanks and CRs (a CRLF log) is blank in evaluate, as in
    report: not garbage, not warned, not counted as skipped."""
    path = str(tmp_path / "crlf.jsonl")
    gen.generate(path, sessions=300, seed=3)
    with open(path, "ab") as f:
        f.write(b"\r\n \t\r\n")
    res = run([path, "--json", "--features", "os"], check=0)
    assert "not JSON" not in res.stderr, res.stderr
    assert "skipped as unusable" not in res.stderr, res.stderr
    rep = subprocess.run([binary(), "report",
                          path, "--format", "json"], capture_output=True,
                         text=True)
    assert rep.returncode == 0 and "not JSON" not in rep.stderr


def test_many_garbage_lines_are_summarised(tmp_path):
    path = str(tmp_path / "all-garbage")
    with open(path, "w") as f:
        for i in range(5000):
            f.write("garbage %d\n" % i)
    res = run([path, "--json", "--features", "os"], check=0)
    assert res.stderr.count("not JSON") == 20
    assert "further warnings suppressed" in res.stderr
    assert "5000 of 5000 lines skipped" in res.stderr
    row = rows(res)["os"]
    assert row["messages"] == 0 and row["recall_at_0fp"] is None


def test_unreadable_and_usage(tmp_path):
    res = run([str(tmp_path / "missing.jsonl")], check=1)
    assert "cannot open %s: No such file or directory" % (
        tmp_path / "missing.jsonl") in res.stderr
    assert res.stdout == ""
    res = run([str(tmp_path)], check=1)
    assert "not a regular file" in res.stderr
    if os.geteuid() != 0:
        p = tmp_path / "secret"
        p.write_text("{}\n")
        p.chmod(0)
        res = run([str(p)], check=1)
        assert "Permission denied" in res.stderr
    log = tmp_path / "e.jsonl"
    log.write_text("")
    assert "usage: mailshaper evaluate" in run([], check=2).stderr
    assert "unknown feature 'bogus'" in run(
        [str(log), "--features", "os,bogus"], check=2).stderr
    assert "--train-fraction wants" in run(
        [str(log), "--train-fraction", "1.5"], check=2).stderr
    assert "--train-fraction wants" in run(
        [str(log), "--train-fraction", "x"], check=2).stderr


def max_rss_kb(path):
    res = subprocess.run(["/usr/bin/time", "-v", binary(), "evaluate",
                          path, "--json"], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", res.stderr)
    assert m, res.stderr
    return int(m.group(1)), rows(res)


def test_memory_bounded_by_keys_not_length(tmp_path):
    """Three times the log, same keys: the peak RSS must not follow."""
    if not os.path.exists("/usr/bin/time"):
        pytest.skip("no /usr/bin/time")
    with open(binary(), "rb") as f:
        if b"__asan_init" in f.read():
            pytest.skip("ASan's quarantine and shadow make RSS meaningless")
    small, big = str(tmp_path / "small"), str(tmp_path / "big")
    gen.generate(small, sessions=60000, seed=11, ip_pool=5000)
    st = gen.generate(big, sessions=180000, seed=12, ip_pool=5000)
    assert st["lines"] > 450000 and os.path.getsize(big) > 190e6
    rss_small, _ = max_rss_kb(small)
    rss_big, r = max_rss_kb(big)
    os.unlink(small)
    os.unlink(big)
    print("max RSS: %d KiB at 60k sessions, %d KiB at 180k" % (
        rss_small, rss_big))
    assert rss_big < 50 * 1024, rss_big
    assert rss_big <= rss_small * 1.25 + 2048, (rss_small, rss_big)
    assert r["rawsig"]["messages"] > 130000


def test_prefix_lengths_come_from_the_configuration(tmp_path):
    """The prefix feature uses the daemon's rep_prefix_v4/v6 (-c FILE),
    derived as the daemon derives its prefix key; a bad file is an
    error with file:line."""
    path = str(tmp_path / "p.jsonl")
    gen.generate(path, sessions=3000, seed=5)
    base = rows(run([path, "--json", "--features", "prefix"], check=0))
    conf = tmp_path / "p8.conf"
    conf.write_text("rep_prefix_v4 = 8\n")
    wide = rows(run([path, "--json", "--features", "prefix", "-c",
                     str(conf)], check=0))
    assert base["prefix"]["messages"] == wide["prefix"]["messages"]
    assert base["prefix"]["recall_at_0fp"] != wide["prefix"]["recall_at_0fp"]
    same = tmp_path / "p24.conf"
    same.write_text("rep_prefix_v4 = 24\nrep_prefix_v6 = 64\n")
    assert rows(run([path, "--json", "--features", "prefix", "-c",
                     str(same)], check=0)) == base
    bad = tmp_path / "bad.conf"
    bad.write_text("rep_prefix_v4 = 99\n")
    res = run([path, "-c", str(bad)], check=2)
    assert "%s:1:" % bad in res.stderr, res.stderr
