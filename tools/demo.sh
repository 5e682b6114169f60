#!/bin/sh
# demo.sh - `make demo`: mixed sender populations through the real daemon
#
# Runs data/scenarios/default.scn with `mailshaper-swarm run`
# (doc/internals/driver.md): in a private network namespace, botnet
# zombies on Windows XP and 7 (half of them on a local rbldnsd list),
# hijacked routers, legitimate MTAs on Linux and FreeBSD, a bulk sender and
# a big sender on Windows Server stacks with forward-confirmed names, all
# with their own SYN personalities over the swarm's own TCP, connect to
# mailshaper (embedded defaults, an empty SQLite store, learning on) in
# front of the counting backend.  About two minutes.  Then it prints the
# swarm's table and the delivery tables by OS and by raw signature from
# the daemon's event log (mailshaper report), and writes the HTML report.
#
# Needs root (a network namespace and a TUN device).
set -eu
B=${1:-build}
B=$(cd "$B" && pwd)
if [ "$(id -u)" != 0 ]; then
	echo "make demo: needs root: the swarm makes a network namespace and a TUN device" >&2
	echo "           (run it as root, e.g. sudo make demo)" >&2
	exit 1
fi
W=$(mktemp -d /tmp/mailshaper-demo.XXXXXX)

echo "== mailshaper-swarm run -S default: 90 s of mixed senders, then a short drain"
"$B/mailshaper-swarm" run -S default -w "$W/run"
echo
echo "== delivery by OS label (mailshaper report --by os)"
"$B/mailshaper" report "$W/run/events.jsonl" --by os
echo
echo "== delivery by raw SYN signature (mailshaper report --by rawsig)"
"$B/mailshaper" report "$W/run/events.jsonl" --by rawsig
echo
echo "== sessions by class (mailshaper report --by class)"
"$B/mailshaper" report "$W/run/events.jsonl" --by class
"$B/mailshaper" report "$W/run/events.jsonl" --by os --out "$W/report" \
    > /dev/null
echo
echo "== everything is in $W:"
echo "   run/events.jsonl     the daemon's event log"
echo "   run/reputation.db    what it learned (mailshaper report --store sqlite:$W/run/reputation.db)"
echo "   run/*.log            the daemon's, backend's, rbldnsd's and dnsmasq's logs"
echo "   report/index.html    the HTML report with its charts"
