#!/bin/sh
# dnsbl_bench.sh - DNSBL cache lookups per second (issue 4 target: >= 1M/s)
#
#   make && sh bench/dnsbl_bench.sh          # N=100000 entries, 5 runs
#
# Starts rbldnsd on a free UDP port of 127.0.0.1 with one zone, bench.test,
# listing 10.0.0.0/17 (plus the RFC 5782 test point 127.0.0.2), builds
# build/bench/dnsbl_bench, warms its cache with N real queries and times
# RUNS rounds of LOOKUPS cached lookups.  Environment: B (build dir), N,
# LOOKUPS, RUNS.
set -eu
B=${B:-build}
N=${N:-100000}
LOOKUPS=${LOOKUPS:-2000000}
RUNS=${RUNS:-5}

make -s -f bench/Makefile B="$B" "$B/bench/dnsbl_bench"
dir=$(mktemp -d)
chmod 755 "$dir"
trap '[ -f "$dir/pid" ] && kill "$(cat "$dir/pid")" 2>/dev/null; rm -rf "$dir"' EXIT INT TERM
printf '$TTL 3600\n:127.0.0.2:listed\n127.0.0.2\n10.0.0.0/17\n' > "$dir/bench"
chmod 644 "$dir/bench"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
user=""
[ "$(id -u)" = 0 ] && user="-u rbldns"
# shellcheck disable=SC2086
rbldnsd $user -b "127.0.0.1/$port" -w "$dir" -p "$dir/pid" bench.test:ip4set:bench >/dev/null
sleep 0.3
"$B/bench/dnsbl_bench" -s "127.0.0.1:$port" -n "$N" -l "$LOOKUPS" -r "$RUNS"
