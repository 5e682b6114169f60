#!/bin/sh
# fp_bench.sh - mailshaper fingerprint vs p0f on the same 150k-SYN capture
#
#   sh bench/fp_bench.sh [N]          (from the repository root)
#
# 1. writes build/bench/syn<N>.pcap (default N = 150000) with
#    bench/gen_syn_pcap.py, SYNs drawn from every signature of p0f.fp and
#    data/mailshaper.fp, at varied distances;
# 2. times `mailshaper fingerprint -r` and `p0f -r` on it as whole
#    processes, output to /dev/null, both with only /etc/p0f/p0f.fp loaded,
#    5 runs each, and reports the medians and their ratio;
# 3. checks that both give every SYN the same raw_sig and label;
# 4. runs build/bench/fp_match_bench for the in-process cost per SYN.
# Environment: MAILSHAPER (default build/mailshaper), RUNS (default 5).
set -eu

N=${1:-150000}
RUNS=${RUNS:-5}
MS=${MAILSHAPER:-build/mailshaper}
PCAP=build/bench/syn$N.pcap
P0F=/usr/sbin/p0f
DB=/etc/p0f/p0f.fp

[ -x "$MS" ] || { echo "fp_bench: $MS missing: run make" >&2; exit 1; }
[ -x "$P0F" ] || { echo "fp_bench: p0f missing: apt-get install p0f" >&2; exit 1; }
make -s -f bench/Makefile
mkdir -p build/bench
[ -s "$PCAP" ] || /usr/bin/python3 bench/gen_syn_pcap.py -n "$N" "$PCAP"

# median_secs CMD... - median wall time of RUNS runs, in seconds
median_secs() {
	i=0
	: > build/bench/times
	while [ $i -lt "$RUNS" ]; do
		t0=$(date +%s%N)
		"$@" > /dev/null 2>&1
		t1=$(date +%s%N)
		echo $(( (t1 - t0) / 1000 )) >> build/bench/times
		i=$((i + 1))
	done
	sort -n build/bench/times | awk '{ a[NR] = $1 } END {
	    printf "%.3f", a[int((NR + 1) / 2)] / 1e6 }'
}

echo "== $N SYNs: $PCAP ($(du -h "$PCAP" | cut -f1))"
ms=$(median_secs "$MS" fingerprint -r "$PCAP" --db "$DB")
pf=$(median_secs "$P0F" -r "$PCAP" -f "$DB")
echo "mailshaper fingerprint -r: median $ms s of $RUNS runs"
echo "p0f -r:                    median $pf s of $RUNS runs"
awk -v a="$ms" -v b="$pf" -v n="$N" 'BEGIN {
    printf "ratio: %.1fx faster than p0f; %.2f us/SYN vs %.2f us/SYN, whole process\n",
        b / a, a * 1e6 / n, b * 1e6 / n }'

echo "== labels"
/usr/bin/python3 - "$MS" "$PCAP" <<'PY'
import os, sys
sys.path.insert(0, "tests/blackbox")
os.environ["MAILSHAPER_BUILD"] = os.path.dirname(os.path.abspath(sys.argv[1]))
import fp_helpers as h
p0f = h.run_p0f(sys.argv[2])
ours = h.run_fp(sys.argv[2], [h.P0F_FP])
bad = h.compare(p0f, ours)
print("p0f reported %d SYNs, we printed %d; %d differ in raw_sig or label"
      % (len(p0f), len(ours), len(bad)))
for b in bad[:5]:
    print("  ", b)
sys.exit(1 if bad else 0)
PY

echo "== in-process cost (build/bench/fp_match_bench)"
build/bench/fp_match_bench "$PCAP" "$DB"
