"""test_daemon_scenarios.py - run tests/scenarios/<area>/*.scn

One pytest case per scenario file; the language is described in
tests/scenarios/README.md.  Each scenario gets its own smtp-sink (or a
dead port with "backend none") and its own daemon, in class "fast" with
violation_class empty unless the scenario configures otherwise.
"""

import ast
import glob
import json
import os
import socket
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon import ROOT, Daemon  # noqa: E402
from peers import SMTP_SINK, RawSmtp, SmtpSink, free_port, need  # noqa: E402

SCEN_DIR = os.path.join(ROOT, "tests", "scenarios")
FILES = sorted(glob.glob(os.path.join(SCEN_DIR, "*", "*.scn")))


def parse(path):
    """[(lineno, directive, args)] and the header comment"""
    steps = []
    with open(path) as f:
        for n, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            word, _, rest = line.partition(" ")
            steps.append((n, word, rest.strip()))
    return steps


def unquote(s):
    """"..." with Python escapes -> bytes"""
    v = ast.literal_eval("b" + s) if s.startswith('"') else s.encode()
    return v


def run(path):
    steps = parse(path)
    classes = ["class_fast = banner_delay=0 reply_delay=0 action=relay"]
    params = {"default_class": "fast", "violation_class": "",
              "grace_time": "2s"}
    backend = "sink"
    for n, word, rest in steps:
        if word == "class":
            name, _, kv = rest.partition(" ")
            classes.append("class_%s = %s" % (name, kv))
        elif word == "config":
            k, _, v = rest.partition("=")
            params[k.strip()] = v.strip()
        elif word == "backend":
            backend = rest
    sink = None
    if backend == "sink":
        need(SMTP_SINK)
        sink = SmtpSink().start()
        addr = sink.address
    else:
        addr = ("127.0.0.1", free_port())
    d = Daemon(backend=addr, config_text="\n".join(classes) + "\n",
               **params)
    c = None
    try:
        d.start()
        for n, word, rest in steps:
            where = "%s:%d: %s %s" % (os.path.relpath(path, ROOT), n, word,
                                      rest)
            if word in ("class", "config", "backend"):
                continue
            if word == "connect":
                if c is not None:
                    c.close()
                c = RawSmtp("127.0.0.1", d.port, source=rest or None)
            elif word == "send":
                c.send(unquote(rest))
            elif word == "expect":
                code, _, text = rest.partition(" ")
                got, lines = c.reply(timeout=10)
                assert got == int(code), "%s: got %d %s" % (where, got,
                                                             lines)
                assert text in " ".join(lines), "%s: got %s" % (where,
                                                                lines)
            elif word == "shutdown":
                c.sock.shutdown(socket.SHUT_WR)
            elif word == "closed":
                assert c.closed(2.0), where
            elif word == "sleep":
                time.sleep(float(rest))
            elif word == "stop":
                if c is not None:
                    c.close()
                    c = None
                time.sleep(0.1)
                d.stop()
            elif word == "backend_messages":
                assert sink is not None, where
                got = sink.message_count()
                assert got == int(rest), "%s: backend has %d" % (where, got)
            elif word == "log":
                assert unquote(rest).decode() in d.log(), where
            elif word == "event":
                typ, _, kv = rest.partition(" ")
                k, _, v = kv.partition("=")
                recs = d.events(typ)
                assert recs, "%s: no %s record" % (where, typ)
                want = json.loads(v)
                assert recs[-1].get(k) == want, "%s: record %s" % (
                    where, recs[-1])
            else:
                raise AssertionError("%s: unknown directive" % where)
    finally:
        if c is not None:
            c.close()
        d.stop()
        if sink is not None:
            sink.stop()
        d.cleanup()


@pytest.mark.parametrize("path", FILES,
                         ids=[os.path.relpath(p, SCEN_DIR) for p in FILES])
def test_scenario(path):
    """The scenario's header says what it sends and expects."""
    run(path)


def test_scenarios_exist():
    """The scenario directory is not empty (a wrong path would pass)."""
    assert len(FILES) >= 5, FILES


def test_runner_catches_wrong_expectation(tmp_path):
    """Control: a scenario expecting 250 for an unknown command fails."""
    need(SMTP_SINK)
    p = tmp_path / "bad.scn"
    p.write_text('connect\nexpect 220\nsend "FOO\\r\\n"\nexpect 250\n')
    with pytest.raises(AssertionError):
        run(str(p))
