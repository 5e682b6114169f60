"""test_swarm_run.py - `mailshaper-swarm run`: a scenario through the daemon

Runs as root: the swarm makes its own network namespace (unshare), starts
rbldnsd, dnsmasq, the counting backend and mailshaper inside it, and runs
a short scenario over its own TCP.  Nothing leaves the namespace.

  mixed run       zombies (half of them listed), routers, legitimate MTAs
                  with STARTTLS and a big sender with forward-confirmed
                  names: every legitimate message is delivered over TLS
                  and counted by the backend; the daemon put every listed
                  zombie in class hostile for its DNS listing; the big
                  sender's sessions carry the verified domain; the zombies
                  that gave up did so at their drawn patience; the table
                  and the JSON agree
  costs           the per-population costs (issue 12) in the mixed run:
                  first-contact and returning deliveries add up, no
                  backend 4xx with the default capacity; against a
                  stand-in daemon with known replies: backend_4xx counts
                  the 4.3.2 and "busy" 4xx at MAIL and RCPT and not a
                  class's 451 4.7.1, messages of sessions still waiting at
                  the end are zombie_unfinished_at_end, and the scenario's
                  daemon_option lines reach the configuration
  retry           a daemon that answers MAIL with 451 makes legitimate
                  MTAs retry on the compressed clock until their retry
                  time is over: each message ends expired or queued
  unprivileged    as user nobody: its own user namespace, every helper
                  running as nobody, the same results
  map-root-user   under unshare --user --map-root-user --net, --netns
                  here: rbldnsd leaves uid 0 in a nested namespace
  reused -w       a second run in the same directory learns from the
                  first one's store but counts only its own sessions
  bad input       a broken scenario gives file:line: reason and exit 2;
                  a daemon that cannot start (bad -o) stops the run with
                  its log, exit 1, and no helper is left running; a daemon
                  killed during the run: exit 1, its log, no report

Skips with a message when not root, or rbldnsd, dnsmasq or /dev/net/tun
is missing.
"""
import json
import os
import subprocess
import tempfile

import pytest

import fp_helpers as h
from peers import need

REPO = h.REPO
BUILD = os.environ.get("MAILSHAPER_BUILD", os.path.join(REPO, "build"))
SWARM = os.path.join(BUILD, "mailshaper-swarm")

MIXED = """\
duration    = 8s
rate        = 25
drain       = 40s
clock       = 600
concurrency = 300
seed        = 7

population zombies
    kind      = zombie
    share     = 50%
    persona   = winxp
    addresses = 200
    patience  = 3s:100%
    pregreet  = 0%

population routers
    kind      = router
    share     = 10%
    persona   = router
    addresses = 10

population mtas
    kind      = legit_mta
    share     = 30%
    persona   = linux
    addresses = 10

population o365
    kind        = big_sender
    share       = 10%
    persona     = win10
    addresses   = 20
    messages    = 3
    rdns_domain = outbound.swarm.example
"""


def need_run():
    if os.geteuid() != 0:
        pytest.skip("needs root: the swarm makes a network namespace and "
                    "a TUN device")
    if not os.path.exists("/dev/net/tun"):
        pytest.skip("no /dev/net/tun")
    need("/usr/sbin/rbldnsd", "/usr/sbin/dnsmasq")


def run(scn_text, *extra, timeout=240):
    d = tempfile.mkdtemp(prefix="swarm-run.")
    scn = os.path.join(d, "t.scn")
    with open(scn, "w") as f:
        f.write(scn_text)
    work = os.path.join(d, "work")
    p = subprocess.run([SWARM, "run", "-S", scn, "-w", work, "--json"] +
                       list(extra), capture_output=True, text=True,
                       timeout=timeout)
    return p, work


def records(work):
    with open(os.path.join(work, "events.jsonl")) as f:
        return [json.loads(line) for line in f]


def helpers_alive(work):
    """pids of processes whose command line names the work directory"""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                if work.encode() in f.read():
                    out.append(int(pid))
        except OSError:
            pass
    return out


def test_mixed_run():
    need_run()
    p, work = run(MIXED)
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout.strip().splitlines()[-1])
    pops = {x["name"]: x for x in res["populations"]}
    backend = json.load(open(os.path.join(work, "backend.json")))
    by_pop = backend["by_population"]

    # every legitimate message arrived, and the backend agrees
    for name in ("mtas", "o365"):
        x = pops[name]
        assert x["attempted"] > 0
        assert x["delivered"] == x["attempted"], x
        assert by_pop[name]["ham"]["received"] == x["attempted"]
        assert x["tls_sessions"] == x["sessions"], x  # STARTTLS offered
    assert res["summary"]["legit_lost"] == 0
    assert res["summary"]["legit_delivered_pct"] == 100
    # zombies: what the senders say reached the backend is what it counted
    z = pops["zombies"]
    assert z["reached_backend"] == by_pop.get("zombies", {}).get(
        "spam", {}).get("received", 0)
    assert z["attempted"] == (z["delivered"] + z["rejected"] +
                              z["deferred"] + z["abandoned"])
    # the patience of 3 s is the give-up time
    if z["sessions_gave_up"]:
        assert 2.9 <= z["giveup_median_s"] <= 4.0, z

    recs = [r for r in records(work) if r["type"] == "session"]
    assert len(recs) >= sum(x["sessions"] for x in res["populations"]) - 5
    listed = set(open(os.path.join(work, "bl.zone")).read().split())
    lz = [r for r in recs if r["client_ip"] in listed]
    assert lz, "no listed zombie came"
    for r in lz:
        assert r["class"] == "hostile", r
        assert any(x.startswith("dnsbl bl.swarm.example")
                   for x in r["reasons"]), r
    # the big sender's names are forward-confirmed in its domain
    o = [r for r in recs if r["helo"] and r["helo"].startswith("o")
         and r["helo"].endswith(".outbound.swarm.example")]
    assert o and all(r["domain"] == "swarm.example" for r in o), o[:2]
    # the memory figures are the daemon's (not its supervisor's), and the
    # peak is what the swarm held
    ld = res["load"]
    assert ld["daemon_rss_start_kb"] > 6000, ld
    assert ld["daemon_rss_at_peak_kb"] >= ld["daemon_rss_start_kb"], ld
    assert 0 < ld["peak_open"] <= 300, ld
    # the table is there, one row per population
    for name in pops:
        assert "\n%s " % name in p.stdout
    assert not helpers_alive(work)
    check_costs(res, p.stdout)
    # the default capacity (100 backend connections) is never reached
    assert all(x["backend_4xx"] == 0 for x in res["populations"]), pops
    assert res["summary"]["legit_backend_4xx"] == 0
    # first contacts: at most one session per address is one, and the
    # first session of every address that delivered something is one
    for name in ("mtas", "o365"):
        x = pops[name]
        nmsg = 3 if name == "o365" else 1
        addrs = 10 if name == "mtas" else 20
        assert 0 < x["delivered_first"] <= addrs * nmsg, x
        assert x["added_delay_first_p99_s"] is not None, x


COST_KEYS = ("delivered_first", "delivered_returning", "backend_4xx",
             "mail_4xx", "unfinished_at_end", "added_delay_first_p99_s",
             "added_delay_returning_p99_s")
LEGIT = ("legit_mta", "bulk_sender", "big_sender")


def check_costs(res, table):
    """the issue-12 keys are there and agree with each other"""
    zunf = l4xx = 0
    for x in res["populations"]:
        for k in COST_KEYS:
            assert k in x, (k, x)
        # existing keys keep their meaning
        assert "added_delay_p99_s" in x and "added_delay_median_s" in x
        assert x["delivered_first"] + x["delivered_returning"] == \
            x["delivered"], x
        assert x["unfinished_at_end"] <= x["attempted"], x
        for k in ("added_delay_first_p99_s", "added_delay_returning_p99_s"):
            v = x[k]
            if x["kind"] not in LEGIT:
                assert v is None, x         # delays are legitimate ham's
            elif v is not None:
                assert 0 <= v, x
                assert x["added_delay_p99_s"] is not None, x
        if x["kind"] in LEGIT and x["delivered"]:
            # ham only here, so the split covers every delay
            assert (x["added_delay_first_p99_s"] is None) == \
                (x["delivered_first"] == 0), x
            assert (x["added_delay_returning_p99_s"] is None) == \
                (x["delivered_returning"] == 0), x
        if x["kind"] == "zombie":
            zunf += x["unfinished_at_end"]
        if x["kind"] in LEGIT:
            l4xx += x["backend_4xx"]
    sm = res["summary"]
    assert sm["zombie_unfinished_at_end"] == zunf, sm
    assert sm["legit_backend_4xx"] == l4xx, sm
    if sm["zombie_kept_out_pct"] is not None:
        assert sm["zombie_kept_out_strict_pct"] <= sm["zombie_kept_out_pct"]
    for col in ("p99_1st", "p99_ret", "bk4xx"):
        assert col in table
    assert "still open when the drain ended" in table


# A stand-in for the daemon (--mailshaper), so that the replies the cost
# counters classify are known exactly and come at once: by the sender's
# population (MAIL FROM:<senderN@POP.swarm.example>) it answers MAIL with
# the daemon's own backend refusal (src/smtp/session.c), with the 451
# 4.7.1 of a class whose action is tempfail, not at all, or accepts it
# and refuses RCPT with a 4xx whose text says busy; everyone else
# delivers.
FAKE_DAEMON = r"""#!/usr/bin/python3
import asyncio, re, sys
conf = {}
for line in open(sys.argv[sys.argv.index("-c") + 1]):
    if " = " in line and not line.startswith("#"):
        k, v = line.rstrip("\n").split(" = ", 1)
        conf[k] = v
host, port = conf["listen"].rsplit(":", 1)
open(conf["eventlog"], "w").close()
MAIL = {"busy": b"451 4.3.2 Too busy, try again later\r\n",
        "tempfail": b"451 4.7.1 Service temporarily unavailable, "
                    b"try again later\r\n",
        "hang": b""}


async def session(r, w):
    w.write(b"220 fake ESMTP\r\n")
    pop = ""
    try:
        while True:
            line = await r.readline()
            if not line:
                break
            cmd = line.decode("ascii", "replace").strip()
            u = cmd.upper()
            if u.startswith("EHLO") or u.startswith("HELO"):
                w.write(b"250 fake\r\n")
            elif u.startswith("MAIL"):
                m = re.search(r"@([A-Za-z0-9_-]+)\.", cmd)
                pop = m.group(1) if m else ""
                w.write(MAIL.get(pop, b"250 2.1.0 Ok\r\n"))
            elif u.startswith("RCPT"):
                w.write(b"450 4.3.0 Backend busy, later\r\n"
                        if pop == "rcptbusy" else b"250 2.1.5 Ok\r\n")
            elif u == "DATA":
                w.write(b"354 go\r\n")
                await w.drain()
                while True:
                    b = await r.readline()
                    if not b or b == b".\r\n":
                        break
                w.write(b"250 2.0.0 Ok: queued\r\n")
            elif u == "RSET":
                w.write(b"250 2.0.0 Ok\r\n")
            elif u == "QUIT":
                w.write(b"221 2.0.0 Bye\r\n")
                await w.drain()
                break
            else:
                w.write(b"502 5.5.2 Error\r\n")
            await w.drain()
    except Exception:
        pass
    w.close()


async def main():
    srv = await asyncio.start_server(session, host, int(port))
    print("probe: listening", flush=True)
    async with srv:
        await srv.serve_forever()

asyncio.run(main())
"""

COSTS = """\
duration      = 4s
rate          = 20
drain         = 3s
seed          = 12
daemon_option = backend_max_connections = 7
daemon_option = class_suspect = banner_delay=1s

population busy
    kind      = zombie
    share     = 20%
    persona   = winxp
    addresses = 50
    messages  = 2
    patience  = rfc
    pregreet  = 0%

population tempfail
    kind      = zombie
    share     = 20%
    persona   = win7
    addresses = 50
    messages  = 2
    patience  = rfc
    pregreet  = 0%

population rcptbusy
    kind      = zombie
    share     = 20%
    persona   = win10
    addresses = 50
    messages  = 2
    patience  = rfc
    pregreet  = 0%

population hang
    kind      = zombie
    share     = 20%
    persona   = router
    addresses = 50
    messages  = 2
    patience  = rfc
    pregreet  = 0%

population ok
    kind      = legit_mta
    share     = 20%
    persona   = linux
    addresses = 3
"""


def test_costs_exact():
    """backend_4xx counts exactly the 4xx that refuse for want of backend
    capacity (enhanced code 4.3.2, or text saying busy), at MAIL and at
    RCPT, and not a class's 451 4.7.1; mail_4xx counts every 4xx to MAIL;
    messages of sessions still waiting when the drain ends are
    unfinished_at_end and zombie_unfinished_at_end; first contacts are at
    most one per address; the scenario's daemon_option lines reach the
    daemon's configuration"""
    need_run()
    d = tempfile.mkdtemp(prefix="swarm-costs.")
    fake = os.path.join(d, "fake-mailshaper")
    with open(fake, "w") as f:
        f.write(FAKE_DAEMON)
    os.chmod(fake, 0o755)
    p, work = run(COSTS, "--mailshaper", fake, timeout=120)
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout.strip().splitlines()[-1])
    check_costs(res, p.stdout)
    pops = {x["name"]: x for x in res["populations"]}
    for x in pops.values():
        assert x["sessions"] > 3, x
        assert x["attempted"] == 2 * x["sessions"] or x["name"] == "ok", x
    b, t, r, h, ok = (pops[n] for n in ("busy", "tempfail", "rcptbusy",
                                         "hang", "ok"))
    assert b["backend_4xx"] == b["mail_4xx"] == b["attempted"], b
    assert b["deferred"] == b["attempted"], b
    assert t["backend_4xx"] == 0 and t["mail_4xx"] == t["attempted"], t
    assert r["backend_4xx"] == r["attempted"] and r["mail_4xx"] == 0, r
    assert h["backend_4xx"] == h["mail_4xx"] == 0, h
    assert h["unfinished_at_end"] == h["attempted"], h
    for x in (b, t, r, ok):
        assert x["unfinished_at_end"] == 0, x
    sm = res["summary"]
    assert sm["zombie_unfinished_at_end"] == h["attempted"], sm
    assert sm["zombie_kept_out_pct"] == 100, sm     # nothing reached it
    zmsgs = sum(x["attempted"] for x in (b, t, r, h))
    assert abs(sm["zombie_kept_out_strict_pct"] -
               100.0 * (zmsgs - h["attempted"]) / zmsgs) < 0.01, sm
    assert sm["legit_backend_4xx"] == 0
    assert ok["delivered"] == ok["attempted"] > 3, ok
    assert 1 <= ok["delivered_first"] <= 3, ok
    assert ok["added_delay_first_p99_s"] is not None, ok
    assert ok["added_delay_returning_p99_s"] is not None, ok
    conf = open(os.path.join(work, "mailshaper.conf")).read()
    assert "\nbackend_max_connections = 7\nclass_suspect = " \
        "banner_delay=1s\n" in conf, conf
    assert not helpers_alive(work)


RETRY = """\
duration    = 4s
rate        = 10
drain       = 60s
clock       = 300
concurrency = 100

population mtas
    kind      = legit_mta
    share     = 100%
    persona   = linux
    addresses = 5
    retry     = 5m..10m
    retry_for = 30m
"""


def test_retry_until_delivered():
    """the daemon answers MAIL with 451 to every sender (all mapped to a
    class whose action is tempfail): the MTAs retry on the compressed
    clock (5 min = 1 s) until retry_for (30 min = 6 s) is over; nothing is
    delivered, every message ends expired or still queued, and the
    expired ones are what the summary calls lost"""
    need_run()
    p, work = run(RETRY, "-o", "client_class_map=198.18.0.0/15=suspect",
                  "-o", "class_suspect=banner_delay=0 reply_delay=0 "
                  "action=tempfail", "-o", "policy_thresholds=hostile=4 "
                  "suspect=2 trusted=-4")
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout.strip().splitlines()[-1])
    m = res["populations"][0]
    assert m["attempted"] > 0
    assert m["delivered"] == 0
    first = m["sessions"] - m["retry_sessions"]
    assert first == m["attempted"], m             # one message a session
    assert m["retry_sessions"] >= 2 * first, m    # 1 s, 2 s, 2 s, ...
    assert m["pending"] + m["expired"] == m["attempted"], m
    assert res["summary"]["legit_lost"] == m["expired"]
    # a class's 451 4.7.1 is a 4xx to MAIL, not a backend refusal
    assert m["sessions"] - m["pending"] <= m["mail_4xx"] <= m["sessions"], m
    assert m["backend_4xx"] == 0, m


def test_bad_scenario():
    need_run()
    p, _ = run("duration = 8s\nrate = 0\n")
    assert p.returncode == 2
    assert "t.scn:2: '0' is out of range" in p.stderr


def test_daemon_fails_to_start():
    need_run()
    p, work = run(MIXED, "-o", "policy_thresholds=nonsense")
    assert p.returncode == 1
    assert "mailshaper exited" in p.stderr
    assert "policy_thresholds" in p.stderr  # its log is shown
    assert not helpers_alive(work)


def test_unprivileged_user():
    """as a normal user (nobody) the swarm makes its own user and network
    namespaces; rbldnsd, dnsmasq, the backend and the daemon run as that
    user, ports below 1024 opened to it in that namespace only.  Debian's
    /dev/net/tun is 0666; where it is not, the test opens it for the run
    and restores its mode afterwards."""
    need_run()
    import shutil
    import stat
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is missing")
    path = SWARM
    while path != "/":      # nobody must reach the binary and data/
        path = os.path.dirname(path)
        if not os.stat(path).st_mode & 0o001:
            pytest.skip("%s is not searchable by other users, so user "
                        "nobody cannot run the build" % path)
    d = tempfile.mkdtemp(prefix="swarm-unpriv.")
    os.chmod(d, 0o777)
    scn = os.path.join(d, "t.scn")
    with open(scn, "w") as f:
        f.write(MIXED)
    os.chmod(scn, 0o644)
    work = os.path.join(d, "work")
    mode = stat.S_IMODE(os.stat("/dev/net/tun").st_mode)
    try:
        os.chmod("/dev/net/tun", mode | 0o666)
        p = subprocess.run([setpriv, "--reuid=65534", "--regid=65534",
                            "--clear-groups", SWARM, "run", "-S", scn, "-w",
                            work, "--json"], capture_output=True, text=True,
                           timeout=240, cwd="/")
    finally:
        os.chmod("/dev/net/tun", mode)
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout.strip().splitlines()[-1])
    pops = {x["name"]: x for x in res["populations"]}
    assert pops["mtas"]["delivered"] == pops["mtas"]["attempted"] > 0
    assert res["summary"]["legit_lost"] == 0
    # the daemon ran as nobody and wrote its event log
    assert os.stat(os.path.join(work, "events.jsonl")).st_uid == 65534
    assert not helpers_alive(work)


SHORT = """\
duration    = 3s
rate        = 20
drain       = 20s

population mtas
    kind      = legit_mta
    share     = 100%
    persona   = linux
    addresses = 5
"""


def test_reused_work_directory():
    """a second run in the same directory keeps the store (what it
    learned) but counts only its own sessions"""
    need_run()
    d = tempfile.mkdtemp(prefix="swarm-reuse.")
    scn = os.path.join(d, "t.scn")
    with open(scn, "w") as f:
        f.write(SHORT)
    work = os.path.join(d, "work")
    for i in range(2):
        p = subprocess.run([SWARM, "run", "-S", scn, "-w", work, "--json"],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        m = json.loads(p.stdout.strip().splitlines()[-1])["populations"][0]
        classes = sum(v for k, v in m["classes"].items())
        assert classes == m["sessions"] > 0, m
        assert len(records(work)) >= m["sessions"]
    # the second run built on what the first one learned: its raw
    # signature's evidence is more than its own sessions could give
    import re
    ev = [int(m.group(1)) for r in records(work) if r["type"] == "session"
          for x in r["reasons"] if x.startswith("rawsig ")
          for m in [re.search(r"n=(\d+)", x)] if m]
    assert ev and max(ev) > m["sessions"] + 5, (max(ev or [0]), m)


def test_daemon_dies_mid_run():
    """the daemon killed during the run: the swarm says so, shows its log,
    exits 1 and leaves nothing running"""
    need_run()
    import signal
    import threading
    import time
    d = tempfile.mkdtemp(prefix="swarm-kill.")
    scn = os.path.join(d, "t.scn")
    with open(scn, "w") as f:
        f.write(SHORT.replace("duration    = 3s", "duration    = 20s"))
    work = os.path.join(d, "work")

    def killer():
        end = time.monotonic() + 30
        while time.monotonic() < end:
            for pid in helpers_alive(work):
                try:
                    cmd = open("/proc/%d/cmdline" % pid, "rb").read()
                except OSError:
                    continue
                if cmd.split(b"\0")[0].endswith(b"/mailshaper") and \
                        os.path.exists(os.path.join(work, "events.jsonl")):
                    time.sleep(2)
                    os.kill(pid, signal.SIGKILL)
                    return
            time.sleep(0.2)
    t = threading.Thread(target=killer)
    t.start()
    p = subprocess.run([SWARM, "run", "-S", scn, "-w", work, "--json"],
                       capture_output=True, text=True, timeout=120)
    t.join()
    assert p.returncode == 1, p.stdout
    assert "mailshaper exited during the run" in p.stderr
    assert not p.stdout.strip().endswith("}")     # no report
    assert not helpers_alive(work)


def test_map_root_user():
    """under `unshare --user --map-root-user --net` with --netns here: uid 0
    of a user namespace that maps nobody else.  rbldnsd, which refuses
    root, runs in a nested namespace as uid 1 (the same kernel uid); the
    run works as in a namespace of its own"""
    need_run()
    import shutil
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare (util-linux) is missing")
    d = tempfile.mkdtemp(prefix="swarm-maproot.")
    scn = os.path.join(d, "t.scn")
    with open(scn, "w") as f:
        f.write(SHORT)
    work = os.path.join(d, "work")
    p = subprocess.run([unshare, "--user", "--map-root-user", "--net", SWARM,
                        "run", "--netns", "here", "-S", scn, "-w", work,
                        "--json"], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    m = json.loads(p.stdout.strip().splitlines()[-1])["populations"][0]
    assert m["delivered"] == m["attempted"] > 0, m
    assert "listening on 127.0.0.1/5353" in open(
        os.path.join(work, "rbldnsd.log")).read()
    assert not helpers_alive(work)
