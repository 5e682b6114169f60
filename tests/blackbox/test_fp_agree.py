"""Issue 3 acceptance: our raw_sig and OS label equal p0f's, SYN for SYN.

Only Debian's /etc/p0f/p0f.fp is loaded on both sides.  Compared on
(a) SYNs crafted from every [tcp:request] signature of that file, over
IPv4 and IPv6, at a normal distance, beyond p0f's MAX_DIST (fuzzy TTL) and
with df/id+ dropped (fuzzy quirks); (b) every capture in
../shared/real-pcaps (skipped when absent).  p0f skips retransmitted SYNs,
so only the SYNs p0f reports are compared, keyed on src/sport/dst/dport.
"""
import os

import pytest

import fp_helpers as h


def test_crafted_from_every_p0f_signature(tmp_path):
    h.need_p0f()
    if not h.have_scapy():
        pytest.skip("python3-scapy is not installed")
    import fp_craft
    pkts, skipped = fp_craft.craft(h.P0F_FP, ipv6_too=True, fuzzy_too=True)
    nsigs = len(list(fp_craft.parse_fp(h.P0F_FP)))
    assert nsigs > 80
    assert not skipped, skipped
    pcap = str(tmp_path / "crafted.pcap")
    fp_craft.write_pcap(pcap, pkts)
    p0f = h.run_p0f(pcap)
    ours = h.run_fp(pcap, [h.P0F_FP])
    assert len(ours) == len(pkts)
    # p0f reports every crafted SYN: each one opens a new flow.
    assert len(p0f) == len(pkts)
    bad = h.compare(p0f, ours)
    assert not bad, "\n".join(repr(b) for b in bad[:20])
    kinds = {r["match"] for r in ours}
    assert {"exact", "generic", "fuzzy", "generic_fuzzy"} <= kinds


def test_real_captures(tmp_path):
    h.need_p0f()
    total, problems = 0, []
    for pcap in h.real_pcaps():
        p0f = h.run_p0f(pcap)
        ours = h.run_fp(pcap, [h.P0F_FP])
        total += len(p0f)
        for b in h.compare(p0f, ours):
            problems.append((os.path.basename(pcap), b))
    assert total > 0
    assert not problems, "\n".join(repr(p) for p in problems[:20])
