"""test_dnsbl.py - src/dnsbl/ against a real rbldnsd on loopback

The module is driven by tests/blackbox/dnsbl_probe.c, compiled here against
$MAILSHAPER_BUILD/libmailshaper.a and libmscommon.a (with ASan+UBSan when that library was
built with them).  One rbldnsd, started by the module fixture on a free
UDP port of 127.0.0.1, serves these zones:

  bl.test    ip4set: 127.0.0.2, 192.0.2.1 (127.0.0.2), 192.0.2.4
             (127.0.0.4), 192.0.2.9 (127.255.255.254: Spamhaus-style refusal)
  wl.test    ip4set: 127.0.0.2 and 192.0.2.7 (127.0.10.2), an allow list
  v6.test    bl's IPv4 test points plus ip6trie 2001:db8:1::/48 (127.0.0.3)
  all.test   ip4trie 0.0.0.0/0: lists everything, 127.0.0.1 included
  none.test  ip4set 192.0.2.1 only: does not list 127.0.0.2

Each case says what it asks and what it expects; a UDP socket that never
answers stands in for a dead DNS server.  Malformed answers (garbage,
truncated, TC, SERVFAIL, wrong id, A records outside 127/8) are covered by
tests/unit/test_dnsbl.c's fake server.
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

from peers import need, is_root

RBLDNSD = "/usr/sbin/rbldnsd"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("MAILSHAPER_BUILD", os.path.join(REPO, "build"))
PKGS = "libevent libevent_openssl libevent_pthreads openssl libpcap sqlite3 hiredis"

ZONES = {
    "bl": "$TTL 60\n:127.0.0.2:listed\n127.0.0.2\n192.0.2.1\n"
          "192.0.2.4 :127.0.0.4:four\n192.0.2.9 :127.255.255.254:refused\n",
    "wl": "$TTL 60\n:127.0.10.2:allowed\n127.0.0.2\n192.0.2.7\n",
    "v6": "$TTL 60\n:127.0.0.3:v6 listed\n2001:db8:1::/48\n",
    "all": "$TTL 60\n0.0.0.0/0 :127.0.0.2:everything\n",
    "none": "$TTL 60\n:127.0.0.2:listed\n192.0.2.1\n",
}


def dns_query(port, name, timeout=0.2):
    """dns_query - one A query to 127.0.0.1:port; the rcode or None"""
    pkt = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        pkt += bytes([len(label)]) + label.encode()
    pkt += b"\0" + struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(pkt, ("127.0.0.1", port))
        try:
            data = s.recv(512)
        except socket.timeout:
            return None
    return data[3] & 0x0f


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def probe_bin():
    """the driver, built against this build's library"""
    lib = os.path.join(BUILD, "libmailshaper.a")
    if not os.path.exists(lib):
        pytest.skip("%s not built (run make)" % lib)
    d = tempfile.mkdtemp(prefix="dnsbl_probe.")
    out = os.path.join(d, "dnsbl_probe")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs"] + PKGS.split(),
                           capture_output=True, text=True, check=True).stdout.split()
    nm = subprocess.run(["nm", lib], capture_output=True, text=True).stdout
    san = ["-fsanitize=address,undefined"] if "__asan_report" in nm else []
    subprocess.run(["cc", "-std=c11", "-D_GNU_SOURCE", "-g", "-Wall", "-Wextra",
                    "-Werror", "-I" + os.path.join(REPO, "src")] + san +
                   ["-o", out, os.path.join(REPO, "tests/blackbox/dnsbl_probe.c"),
                    lib, os.path.join(BUILD, "libmscommon.a")] + flags +
                    ["-lpthread", "-lm"], check=True)
    yield out
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def rbl():
    """rbldnsd on 127.0.0.1:<free port>; yields (port, querylog path)"""
    need(RBLDNSD)
    d = tempfile.mkdtemp(prefix="rbldnsd.")
    os.chmod(d, 0o777)              # rbldnsd runs as rbldns when we are root
    for name, text in ZONES.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
        os.chmod(os.path.join(d, name), 0o644)
    port = free_udp_port()
    cmd = [RBLDNSD, "-n", "-b", "127.0.0.1/%d" % port, "-w", d,
           "-p", os.path.join(d, "pid"), "-l", "+querylog",
           "bl.test:ip4set:bl", "wl.test:ip4set:wl", "v6.test:ip4set:bl",
           "v6.test:ip6trie:v6", "all.test:ip4trie:all", "none.test:ip4set:none"]
    if is_root():
        cmd[1:1] = ["-u", "rbldns"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        end = time.monotonic() + 5
        while dns_query(port, "2.0.0.127.bl.test") != 0:
            if proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError("rbldnsd did not start: %s"
                                   % proc.stdout.read().decode(errors="replace"))
        yield port, os.path.join(d, "querylog")
    finally:
        proc.terminate()
        proc.wait(timeout=5)
        shutil.rmtree(d, ignore_errors=True)


def run(probe_bin, port, sites, ips, *opts, repeat=False, timeout_ms=2000):
    """run the driver; (results by ip in order, stats, stderr, exit code)"""
    cmd = [probe_bin, "-o", "dns_servers=127.0.0.1:%d" % port,
           "-o", "dnsbl_sites=%s" % sites, "-o", "dnsbl_timeout=%dms" % timeout_ms]
    for o in opts:
        cmd += ["-o", o]
    if repeat:
        cmd.append("-r")
    p = subprocess.run(cmd + list(ips), capture_output=True, text=True, timeout=30)
    lines = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
    results = [l for l in lines if "ip" in l]
    stats = [l["stats"] for l in lines if "stats" in l]
    return results, (stats[0] if stats else None), p.stderr, p.returncode


def one(probe_bin, port, sites, ip, *opts):
    results, _, err, rc = run(probe_bin, port, sites, [ip], *opts)
    assert rc == 0, err
    assert len(results) == 1, (results, err)
    return results[0]["result"]


def test_listed_weight_3(probe_bin, rbl):
    """192.0.2.1 and 127.0.0.2 in bl.test*3: score 3, one hit"""
    port, _ = rbl
    for ip in ("192.0.2.1", "127.0.0.2", "::ffff:192.0.2.1"):
        r = one(probe_bin, port, "bl.test*3", ip)
        assert r["score"] == 3
        assert r["hits"] == [{"zone": "bl.test", "answer": "127.0.0.2", "weight": 3}]
        assert r["timeouts"] == 0 and r["errors"] == 0


def test_not_listed(probe_bin, rbl):
    """192.0.2.100 is in no list: score 0, no hits, nothing timed out"""
    port, _ = rbl
    r = one(probe_bin, port, "bl.test*3 wl.test*-2", "192.0.2.100")
    assert r == {"score": 0, "hits": [], "timeouts": 0, "errors": 0,
                 "latency_ms": r["latency_ms"]}
    assert r["latency_ms"] < 1000


def test_allow_list(probe_bin, rbl):
    """wl.test*-2 lists 192.0.2.7: score -2; both lists for 127.0.0.2: 3-2"""
    port, _ = rbl
    r = one(probe_bin, port, "bl.test*3 wl.test*-2", "192.0.2.7")
    assert r["score"] == -2
    assert r["hits"] == [{"zone": "wl.test", "answer": "127.0.10.2", "weight": -2}]
    r = one(probe_bin, port, "bl.test*3,wl.test*-2", "127.0.0.2")
    assert r["score"] == 1 and len(r["hits"]) == 2


def test_filter(probe_bin, rbl):
    """192.0.2.4 answers 127.0.0.4: outside [2..3] not listed, inside listed"""
    port, _ = rbl
    assert one(probe_bin, port, "bl.test=127.0.0.[2..3]*3", "192.0.2.4")["score"] == 0
    assert one(probe_bin, port, "bl.test=127.0.0.[2;4]*3", "192.0.2.4")["score"] == 3
    assert one(probe_bin, port, "bl.test=127.0.0.4*3", "192.0.2.4")["hits"][0]["answer"] \
        == "127.0.0.4"
    # postscreen: each matching entry of a zone adds its weight
    r = one(probe_bin, port, "bl.test*1 bl.test=127.0.0.4*2 bl.test=127.0.0.2*4",
            "192.0.2.4")
    assert r["score"] == 3


def test_ipv6_client(probe_bin, rbl):
    """ip6trie 2001:db8:1::/48 answers 127.0.0.3 for 2001:db8:1::5"""
    port, _ = rbl
    r = one(probe_bin, port, "v6.test*2", "2001:db8:1::5")
    assert r["score"] == 2
    assert r["hits"] == [{"zone": "v6.test", "answer": "127.0.0.3", "weight": 2}]
    assert one(probe_bin, port, "v6.test*2", "2001:db8:2::5")["score"] == 0


def test_refusal_code_is_an_error(probe_bin, rbl):
    """127.255.255.254 (query refused) counts as errors=1, never as a hit"""
    port, _ = rbl
    results, _, err, rc = run(probe_bin, port, "bl.test*3", ["192.0.2.9"])
    assert rc == 0
    r = results[0]["result"]
    assert r["score"] == 0 and r["hits"] == [] and r["errors"] == 1
    assert "bl.test: query refused (answer in 127.255.255.0/24)" in err


def test_probe_disables_broken_lists(probe_bin, rbl):
    """all.test lists 127.0.0.1, none.test misses 127.0.0.2: both disabled"""
    port, _ = rbl
    results, _, err, rc = run(probe_bin, port, "bl.test*3 all.test*5 none.test*7",
                              ["192.0.2.1", "192.0.2.50"])
    assert rc == 0
    assert results[0]["result"]["score"] == 3      # not 15
    assert results[1]["result"]["score"] == 0      # all.test would say 5
    assert "all.test disabled: it lists 127.0.0.1" in err
    assert "none.test disabled: it does not list 127.0.0.2" in err
    # only broken lists: nothing to ask, dnsbl_lookup() returns NULL
    results, _, err, rc = run(probe_bin, port, "all.test none.test", ["192.0.2.1"])
    assert rc == 0
    assert results == [{"ip": "192.0.2.1", "enabled": 0, "result": None}]


def test_cache_second_lookup_sends_no_query(probe_bin, rbl):
    """each address twice: the second answer comes from the cache"""
    port, qlog = rbl
    results, stats, err, rc = run(probe_bin, port, "bl.test*3",
                                  ["192.0.2.1", "192.0.2.101"], repeat=True)
    assert rc == 0, err
    assert [r["result"]["score"] for r in results] == [3, 3, 0, 0]
    assert stats["queries"] == 2 and stats["cache_hits"] == 2
    time.sleep(0.2)
    with open(qlog) as f:
        log = f.read().lower()
    assert log.count("101.2.0.192.bl.test") == 1


def test_negative_ttl_expires(probe_bin, rbl):
    """dnsbl_negative_ttl=0 caches nothing: both lookups query the server"""
    port, _ = rbl
    _, stats, err, rc = run(probe_bin, port, "bl.test*3", ["192.0.2.102"],
                            "dnsbl_negative_ttl=0", repeat=True)
    assert rc == 0, err
    assert stats["queries"] == 2 and stats["cache_hits"] == 0


def test_dead_server_times_out(probe_bin):
    """a UDP socket that never answers: timeouts=1 within dnsbl_timeout"""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        t0 = time.monotonic()
        results, stats, err, rc = run(probe_bin, port, "bl.test*3 wl.test*-2",
                                      ["192.0.2.1"], timeout_ms=500)
        elapsed = time.monotonic() - t0
    assert rc == 0, err
    r = results[0]["result"]
    assert r["timeouts"] == 2 and r["hits"] == [] and r["score"] == 0
    assert 450 <= r["latency_ms"] < 1500
    assert elapsed < 5
    assert stats["timeouts"] == 2
    assert "no answer within 500 ms from bl.test wl.test" in err


def test_bad_sites_rejected(probe_bin, rbl):
    """bad syntax: dnsbl_init() fails with 'dnsbl_sites: reason'"""
    port, _ = rbl
    _, _, err, rc = run(probe_bin, port, "bl.test*three", ["192.0.2.1"])
    assert rc == 2
    assert "dnsbl_sites: bad weight in 'bl.test*three'" in err
    _, _, err, rc = run(probe_bin, port, "bl.test=127.0.0.[9..2]", ["192.0.2.1"])
    assert rc == 2
    assert "dnsbl_sites: bad filter in 'bl.test=127.0.0.[9..2]'" in err
