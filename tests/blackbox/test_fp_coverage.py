"""Issue 3 coverage: with data/mailshaper.fp and Debian's p0f.fp loaded,
>= 90% of the client SYNs in ../shared/real-pcaps (nmap scan excluded) get a
specific (s:) label, exact or fuzzy, and the label names the OS the capture's
file name tells.  Also: the default database list (no --db) is ours first.
"""
import os

import fp_helpers as h

EXPECT = {
    "android.pcap": "Android",
    "iphone.pcap": "iOS",
    "windowsupdate_over_http.pcap": "Windows",
    "zabbix.pcap": "Linux",
}


def test_specific_label_coverage():
    h.need_p0f()
    total = specific = 0
    wrong = []
    for pcap in h.real_pcaps():
        name = os.path.basename(pcap)
        if name == "synscan.pcap":
            continue
        recs = h.run_fp(pcap, [h.OUR_FP, h.P0F_FP])
        total += len(recs)
        for r in recs:
            if r["match"] in ("exact", "fuzzy"):
                specific += 1
            if name in EXPECT and (EXPECT[name] not in r["os"] or
                                   r["match"] not in ("exact", "fuzzy")):
                wrong.append((name, r["os"], r["match"], r["raw_sig"]))
    assert total > 300
    share = specific / total
    print("specific labels: %d of %d SYNs (%.1f%%)" % (specific, total,
                                                      100 * share))
    assert share >= 0.90, "only %.1f%% specific" % (100 * share)
    assert not wrong, wrong


def test_default_database_is_ours_then_p0f():
    h.need_p0f()
    pcaps = dict((os.path.basename(p), p) for p in h.real_pcaps())
    if "android.pcap" not in pcaps:
        import pytest
        pytest.skip("android.pcap missing")
    recs = h.run_fp(pcaps["android.pcap"])
    assert recs and all("Android" in r["os"] for r in recs)


def test_our_file_loads_cleanly():
    import subprocess
    # no bad lines: a clean file makes no warnings
    res = subprocess.run([h.binary(), "fingerprint", "-r", "/dev/null",
                          "--db", h.OUR_FP], capture_output=True, text=True)
    assert "mailshaper.fp:" not in res.stderr, res.stderr
