#!/usr/bin/python3
"""gen_eventlog.py - event logs whose right answer is known, for `evaluate`

    gen_eventlog.py OUT [--sessions N] [--seed S] [--ip-pool N]
                        [--feedback] [--garbage K]

Writes records in the daemon's format (doc/man/mailshaper.8, EVENT LOG):
message records first, their session record at session end, sessions
overlapping in time, so the file is in time order of writing like a real
log.  Prints a JSON summary of what was generated.

Populations (shares of sessions):
  linux   60%  "Linux 2.2.x-3.x", 24 raw signatures of real MTAs, a pool of
               400 server addresses; 97% delivered, 3% rejected.
  router  15%  "Linux 2.2.x-3.x" too, but ONE embedded-router signature;
               every message rejected or abandoned; addresses drawn from a
               large pool so the address alone rarely repeats.
  windows 25%  "Windows 7 or 8", 3 signatures; 90% rejected or abandoned,
               10% delivered.
A few messages are deferred or get backend_error (they must be skipped).
The router hides inside a mostly-good OS label: by raw signature it is
100% spam, by OS label it is not separable.  With --feedback, 3% of
linux sessions are reported as spam (every message of the session, deferred
ones included) and 5% of bad windows messages as ham; with --garbage K, K unusable lines are scattered in.
"""
import heapq
import json
import random
import sys
import time as _time

ROUTER_RAW = "4:57+7:0:1452:2920,0:mss,sok,ts,nop,ws:df,id+:0"
ROUTER_KEY = "4:64:0:1452:2920,0:mss,sok,ts,nop,ws:df,id+:0"
LINUX_OS = "Linux 2.2.x-3.x"
WIN_OS = "Windows 7 or 8"
START = 1793491200  # 2026-11-01T00:00:00Z


def linux_sigs():
    out = []
    for i, mss in enumerate((1460, 1440, 1400, 1380, 1360, 1300)):
        for j, win in enumerate(("mss*20,7", "mss*10,7", "mss*44,7",
                                 "29200,7")):
            dist = (i + j) % 9
            raw = "4:%d+%d:0:%d:%s:mss,sok,ts,nop,ws:df,id+:0" % (
                64 - dist, dist, mss, win)
            key = "4:64:0:%d:%s:mss,sok,ts,nop,ws:df,id+:0" % (mss, win)
            out.append((raw, key))
    return out


def win_sigs():
    out = []
    for dist, win in ((11, "8192,8"), (14, "65535,8"), (9, "mss*44,8")):
        raw = "4:%d+%d:0:1460:%s:mss,nop,ws,nop,nop,sok:df,id+:0" % (
            128 - dist, dist, win)
        key = "4:128:0:1460:%s:mss,nop,ws,nop,nop,sok:df,id+:0" % win
        out.append((raw, key))
    return out


def rfc3339(t):
    ms = int(round(t * 1000))
    s, ms = divmod(ms, 1000)
    return _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(s)) + \
        ".%03dZ" % ms


def dumps(o):
    return json.dumps(o, separators=(",", ":"))


def generate(path, sessions=2000, seed=1, ip_pool=None, feedback=False,
             garbage=0):
    """Write the log; return a summary of what it holds."""
    rnd = random.Random(seed)
    lsigs, wsigs = linux_sigs(), win_sigs()
    linux_ips = ["198.51.%d.%d" % (rnd.randrange(0, 40), rnd.randrange(1, 255))
                 for _ in range(400)]
    pool = ip_pool or 200000
    st = {"sessions": sessions, "messages": 0, "bad": 0, "good": 0,
          "skipped": 0, "router_bad": 0, "lines": 0, "garbage": garbage,
          "feedback": 0, "garbage_lines": []}
    heap = []
    seq = 0
    t = float(START)
    garbage_at = set(rnd.sample(range(1, sessions + 1), garbage)) \
        if garbage else set()
    f = open(path, "w")

    def emit_until(tt):
        while heap and heap[0][0] <= tt:
            _, _, line = heapq.heappop(heap)
            f.write(line + "\n")
            st["lines"] += 1

    def push(tt, rec):
        nonlocal seq
        seq += 1
        heapq.heappush(heap, (tt, seq, dumps(rec)))

    for n in range(1, sessions + 1):
        t += rnd.expovariate(1.0)          # about one session a second
        emit_until(t)
        if n in garbage_at:
            f.write('{"type":"message","session": garbage\n')
            st["lines"] += 1
            st["garbage_lines"].append(st["lines"])
        r = rnd.random()
        if r < 0.60:
            kind = "linux"
            raw, key = rnd.choice(lsigs)
            os_, ip = LINUX_OS, rnd.choice(linux_ips)
        elif r < 0.75:
            kind = "router"
            raw, key, os_ = ROUTER_RAW, ROUTER_KEY, LINUX_OS
            k = rnd.randrange(pool)
            ip = "10.%d.%d.%d" % (k >> 16 & 255, k >> 8 & 255, k & 255)
        else:
            kind = "windows"
            raw, key = rnd.choice(wsigs)
            os_ = WIN_OS
            k = rnd.randrange(pool)
            ip = "172.%d.%d.%d" % (16 + (k >> 16 & 15), k >> 8 & 255,
                                   k & 255)
        sid = "%08X%04X" % (START, n)
        nmsg = rnd.choice((1, 1, 1, 2, 3))
        mt = t
        listed = rnd.random() < {"linux": 0.01, "router": 0.5,
                                 "windows": 0.6}[kind]
        # Session-wide spam reports come after the session.
        reported = feedback and kind == "linux" and rnd.random() < 0.03
        if reported:
            push(t + 3600, {"type": "feedback", "time": rfc3339(t + 3600),
                            "session": sid, "message": None,
                            "verdict": "spam"})
            st["feedback"] += 1
        for i in range(1, nmsg + 1):
            mt += rnd.uniform(0.5, 5)
            x = rnd.random()
            if x < 0.02:
                oc = rnd.choice(("deferred", "backend_error"))
            elif kind == "linux":
                oc = "delivered" if x < 0.97 else "rejected"
            elif kind == "router":
                oc = "rejected" if x < 0.6 else "abandoned"
            else:
                oc = "delivered" if x < 0.10 else \
                    rnd.choice(("rejected", "abandoned", "protocol_error"))
            mid = "%s.%d" % (sid, i)
            label = None
            if oc == "delivered":
                label = "good"
            elif oc in ("rejected", "abandoned", "protocol_error"):
                label = "bad"
            if reported:
                label = "bad"   # whatever the outcome, deferred included
            elif feedback and kind == "windows" and label == "bad" and \
                    rnd.random() < 0.05:
                push(mt + 900, {"type": "feedback", "time": rfc3339(mt + 900),
                                "session": sid, "message": mid,
                                "verdict": "ham"})
                st["feedback"] += 1
                label = "good"
            push(mt, {"type": "message", "session": sid, "id": mid,
                      "time": rfc3339(mt), "mail_from": "a@example.org",
                      "rcpt": 1, "rcpt_accepted": 1 if oc == "delivered"
                      else 0, "size": 1234, "class": "normal",
                      "outcome": oc, "stage": "dot", "reply": None,
                      "client_ip": ip, "raw_sig": raw, "os": os_})
            st["messages"] += 1
            if label is None:
                st["skipped"] += 1
            else:
                st[label] += 1
                if kind == "router" and label == "bad":
                    st["router_bad"] += 1
        end = mt + rnd.uniform(0.1, 2)
        dnsbl = {"score": 3 if listed else 0,
                 "hits": [{"zone": "zen.example", "answer": "127.0.0.2",
                           "weight": 3}] if listed else [],
                 "timeouts": 0, "errors": 0, "latency_ms": 3}
        # A session record that a feedback record may override later.
        push(end, {"type": "session", "id": sid, "start": rfc3339(t),
                   "end": rfc3339(end), "client_ip": ip, "client_port": 40000,
                   "helo": "h.example", "tls": False, "class": "normal",
                   "reasons": ["default"],
                   "fp": {"raw_sig": raw, "key": key,
                          "key_hash": "0123456789abcdef", "os": os_,
                          "match": "exact", "dist": 7, "link": "Ethernet"},
                   "dnsbl": dnsbl, "messages": nmsg, "outcome": "completed",
                   "gave_up_after_s": None})
    emit_until(float("inf"))
    f.close()
    return st


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--sessions", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ip-pool", type=int, default=None)
    ap.add_argument("--feedback", action="store_true")
    ap.add_argument("--garbage", type=int, default=0)
    a = ap.parse_args(argv)
    st = generate(a.out, a.sessions, a.seed, a.ip_pool, a.feedback,
                  a.garbage)
    st.pop("garbage_lines")
    print(dumps(st))


if __name__ == "__main__":
    main(sys.argv[1:])
