#!/usr/bin/python3
"""gen_report_log.py - event logs with a known report, for `mailshaper report`

    gen_report_log.py OUT [--sessions N] [--seed S] [--garbage K]

Writes records in the daemon's format (doc/man/mailshaper.8, EVENT LOG),
message records before their session record, sessions overlapping in time,
and prints the expected report by OS as JSON (see truth()).

Populations (shares of sessions), each with its own raw signatures:
  linux    50%  mostly delivered, a few rejected or deferred
  windows  25%  mostly rejected, abandoned or protocol_error
  zombie   10%  "Zombie <b>&amp;" OS label (markup that must be escaped);
                 every session is abandoned, most before any message, with
                 gave_up_after_s from 0.2 s to 900 s
  hostile   5%  an OS label full of markup and a control character
  nosyn    10%  fp is null (a SYN cookie); mostly delivered
Addresses come from a pool per population so senders repeat.  With
--garbage K, K unusable lines are scattered in.
"""
import heapq
import json
import random
import sys
import time as _time

START = 1793491200  # 2026-11-01T00:00:00Z
HOSTILE = "<script>alert(1)</script>\"&'\x1b[31m]]>"
WAIT_EDGES = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600)

POPS = {
    #          share, os label,          ips, (delivered, rejected, deferred,
    #                                          abandoned, protocol_error,
    #                                          backend_error) weights
    "linux": (0.50, "Linux 2.2.x-3.x", 300, (90, 4, 3, 1, 0, 2)),
    "windows": (0.25, "Windows 7 or 8", 2000, (8, 40, 2, 25, 25, 0)),
    "zombie": (0.10, "Zombie <b>&amp;", 500, (0, 0, 0, 100, 0, 0)),
    "hostile": (0.05, HOSTILE, 50, (30, 70, 0, 0, 0, 0)),
    "nosyn": (0.10, None, 100, (80, 20, 0, 0, 0, 0)),
}
OUTCOMES = ("delivered", "rejected", "deferred", "abandoned",
            "protocol_error", "backend_error")


def rfc3339(t):
    ms = int(round(t * 1000))
    s, ms = divmod(ms, 1000)
    return _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(s)) + \
        ".%03dZ" % ms


def dumps(o):
    return json.dumps(o, separators=(",", ":"))


def sigs(kind):
    base = {"linux": 64, "windows": 128, "zombie": 255, "hostile": 64,
            "nosyn": 64}[kind]
    n = {"linux": 20, "windows": 3, "zombie": 2, "hostile": 1,
         "nosyn": 1}[kind]
    out = []
    for i in range(n):
        mss = 1460 - 10 * i - {"windows": 1, "zombie": 2,
                               "hostile": 3}.get(kind, 0) * 300
        raw = "4:%d+%d:0:%d:mss*20,7:mss,sok,ts,nop,ws:df,id+:0" % (
            base - 3, 3, mss)
        key = "4:%d:0:%d:mss*20,7:mss,sok,ts,nop,ws:df,id+:0" % (base, mss)
        out.append((raw, key))
    return out


def wait_bucket(s):
    for i, e in enumerate(WAIT_EDGES):
        if s < e:
            return i
    return len(WAIT_EDGES)


def empty_group():
    return {"sessions": 0, "messages": 0, "delivered": 0, "rejected": 0,
            "deferred": 0, "abandoned": 0, "protocol_error": 0,
            "backend_error": 0, "gave_up": 0, "waited": 0,
            "wait_hist": [0] * (len(WAIT_EDGES) + 1), "ips": {}}


def generate(path, sessions=3000, seed=1, garbage=0):
    """Write the log; return (truth by os, truth by rawsig, stats)."""
    rnd = random.Random(seed)
    pools = {k: ["%d.%d.%d.%d" % (20 + n, rnd.randrange(256),
                                   rnd.randrange(256), rnd.randrange(1, 255))
                 for _ in range(v[2])]
             for n, (k, v) in enumerate(POPS.items())}
    psigs = {k: sigs(k) for k in POPS}
    by_os, by_raw = {}, {}
    heap = []
    seq = 0
    lines = 0
    garbage_at = set(rnd.sample(range(1, sessions + 1), garbage)) \
        if garbage else set()
    f = open(path, "w")

    def emit_until(tt):
        nonlocal lines
        while heap and heap[0][0] <= tt:
            _, _, line = heapq.heappop(heap)
            f.write(line + "\n")
            lines += 1

    def push(tt, rec):
        nonlocal seq
        seq += 1
        heapq.heappush(heap, (tt, seq, dumps(rec)))

    t = float(START)
    kinds = list(POPS)
    weights = [POPS[k][0] for k in kinds]
    for n in range(1, sessions + 1):
        t += rnd.expovariate(2.0)
        emit_until(t)
        if n in garbage_at:
            f.write(rnd.choice(('{"type":"message","session": garbage',
                                'not json at all <svg onload=alert(1)>',
                                '[1,2,3]', '{"type":"session"}')) + "\n")
            lines += 1
        kind = rnd.choices(kinds, weights)[0]
        _, os_, _, ow = POPS[kind]
        ip = rnd.choice(pools[kind])
        raw, key = rnd.choice(psigs[kind])
        sid = "%08X%05X" % (START, n)
        if kind == "zombie":
            nmsg = 0 if rnd.random() < 0.8 else 1
        else:
            nmsg = rnd.choice((1, 1, 2, 3))
        mt = t
        ocs = []
        for i in range(1, nmsg + 1):
            mt += rnd.uniform(0.2, 3)
            oc = rnd.choices(OUTCOMES, ow)[0]
            ocs.append(oc)
            push(mt, {"type": "message", "session": sid,
                      "id": "%s.%d" % (sid, i), "time": rfc3339(mt),
                      "mail_from": "a@example.org", "rcpt": 1,
                      "rcpt_accepted": int(oc == "delivered"), "size": 99,
                      "class": "normal", "outcome": oc, "stage": "dot",
                      "reply": None, "client_ip": ip,
                      "raw_sig": raw if os_ else None, "os": os_})
        if kind == "zombie":
            outcome = "abandoned"
            wait = round(rnd.choice((0.3, 1.5, 4, 8, 15, 25, 45, 90, 200,
                                     400, 900)) * rnd.uniform(0.9, 1.0), 3)
            if nmsg and wait < mt - t + 0.5:
                # It gave up after its message, not before.
                wait = round(mt - t + 0.5 + wait, 3)
            end = t + wait
        else:
            outcome = "completed"
            wait = None
            end = mt + rnd.uniform(0.1, 1)
        fp = None if os_ is None else {
            "raw_sig": raw, "key": key, "os": os_, "match": "exact",
            "dist": 3, "link": "Ethernet"}
        push(end, {"type": "session", "id": sid, "start": rfc3339(t),
                   "end": rfc3339(end), "client_ip": ip, "client_port": 4000,
                   "helo": None, "tls": False, "class": "normal",
                   "reasons": ["default"], "fp": fp, "dnsbl": None,
                   "messages": nmsg, "outcome": outcome,
                   "gave_up_after_s": wait})
        for truth, label in ((by_os, os_ if os_ else "(no SYN)"),
                             (by_raw, key if os_ else "(no SYN)")):
            g = truth.setdefault(label, empty_group())
            g["sessions"] += 1
            g["messages"] += nmsg
            for oc in ocs:
                g[oc] += 1
            early = outcome == "abandoned" and nmsg == 0
            g["gave_up"] += early
            if wait is not None:
                g["waited"] += 1
                g["wait_hist"][wait_bucket(wait)] += 1
            att = sum(1 for oc in ocs if oc != "backend_error") + early
            flags = g["ips"].setdefault(ip, [False, False])
            flags[0] |= "delivered" in ocs
            flags[1] |= att > 0
    emit_until(float("inf"))
    f.close()
    out = []
    for truth in (by_os, by_raw):
        for g in truth.values():
            ips = g.pop("ips")
            g["senders"] = len(ips)
            g["ok_senders"] = sum(1 for d, a in ips.values() if d)
            g["bad_senders"] = sum(1 for d, a in ips.values() if a and not d)
            g["attempts"] = (g["delivered"] + g["rejected"] + g["deferred"] +
                             g["abandoned"] + g["protocol_error"] +
                             g["gave_up"])
        out.append(truth)
    return out[0], out[1], {"lines": lines, "garbage": garbage,
                            "sessions": sessions}


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--sessions", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--garbage", type=int, default=0)
    a = ap.parse_args(argv)
    by_os, _, st = generate(a.out, a.sessions, a.seed, a.garbage)
    print(dumps({"by_os": by_os, "stats": st}))


if __name__ == "__main__":
    main(sys.argv[1:])
