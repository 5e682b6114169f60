#!/bin/bash
# tarpit.sh - memory per held hostile session, and trusted relay under load
#
# Per run (a fresh mailshaper each time, default_class = hostile,
# client_class_map = 127.0.0.1/32=trusted, backend_identity = none,
# max_connections = 16000, in front of smtp-sink):
#
#   1. unloaded: smtp-source -s 20 -m 4000 -l 1000 from 127.0.0.1 (trusted)
#      -> msgs/s; this also warms the daemon's heap up;
#   2. VmRSS of mailshaper (RSS_before);
#   3. build/bench/holdconns opens HOLD (15,000) connections, each from its
#      own source address 127.1.0.1, 127.1.0.2, ... (two processes of
#      HOLD/2, so each stays far below the 20,000-file limit); they only
#      read.  The hostile class holds them (banner_delay 290 s, stutter=1:
#      with the default stutter_interval=10s the ~45-byte banner is
#      stuttered out one byte every ~7 s from the start);
#   4. waits until mailshaper has logged HOLD hostile "connect from" lines
#      and `ss` shows HOLD established sockets on its port, lets it settle,
#      and takes VmRSS again (RSS_after):  (RSS_after - RSS_before) / HOLD
#      is the cost per held session (target <= 4096 bytes);
#   5. loaded: the same smtp-source run while the HOLD sessions are held
#      -> msgs/s (target >= 0.5 x unloaded);
#   6. checks the held connections are all still open (none closed, none
#      failed), that the sink got every message, and the event log shows
#      them delivered; stops everything.
#
# Usage: bench/tarpit.sh [-n RUNS] [-c HOLD] [-i STUTTER_INTERVAL] [-b BANNER_DELAY]
#   RUNS default 3, HOLD default 15000, STUTTER_INTERVAL default 10s and
#   BANNER_DELAY default 290s (the class_hostile defaults; the whole class
#   line is restated, with only max_per_client=20000 and max_share=100
#   raised so HOLD sessions fit).  The banner is stuttered over the whole
#   delay when (len-1) x interval exceeds it, so -b 30s makes every session
#   write a byte every ~0.7 s (~22,000 writes/s at 15,000 sessions) while
#   the trusted relay runs; after 30 s the sessions wait silently for EHLO.
#   MAILSHAPER=path (default build/mailshaper), KEEP=dir keeps the logs.
# Loopback only; needs `ulimit -n 20000` to be allowed (root or hard limit).

set -u
cd "$(dirname "$0")/.." || exit 1

RUNS=3 HOLD=15000 SI=10s BD=290s MSGS=4000 SESS=20 LEN=1000
while getopts n:c:i:b:m: o; do
	case $o in
	n) RUNS=$OPTARG ;; c) HOLD=$OPTARG ;; i) SI=$OPTARG ;; b) BD=$OPTARG ;; m) MSGS=$OPTARG ;;
	*) echo "usage: $0 [-n runs] [-c hold] [-i stutter_interval] [-b banner_delay] [-m msgs]" >&2; exit 2 ;;
	esac
done

MS=$(readlink -f "${MAILSHAPER:-build/mailshaper}")
HC=build/bench/holdconns
SMTP_SINK=/usr/sbin/smtp-sink
SMTP_SOURCE=/usr/sbin/smtp-source
[ -x "$HC" ] && [ "$HC" -nt bench/holdconns.c ] ||
    make -s -f bench/Makefile build/bench/holdconns ||
    { mkdir -p build/bench && cc -O2 -o "$HC" bench/holdconns.c; } || exit 1
for b in "$MS" $SMTP_SINK $SMTP_SOURCE "$HC"; do
	[ -x "$b" ] || { echo "tarpit.sh: missing $b" >&2; exit 1; }
done
ulimit -n 20000 || { echo "tarpit.sh: cannot raise the file limit to 20000" >&2; exit 1; }

if [ -n "${KEEP:-}" ]; then
	T=$KEEP; mkdir -p "$T"
else
	T=$(mktemp -d /tmp/mailshaper-tarpit.XXXXXX)
fi
chmod 755 "$T"
PIDS=()

stop_pids() {
	local p
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do
		for ((i = 0; i < 50; i++)); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$p" 2>/dev/null
	done
	wait 2>/dev/null
	PIDS=()
}
cleanup() {
	stop_pids
	[ -z "${KEEP:-}" ] && rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	/usr/bin/python3 -c 'import socket
s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() {	# host port seconds
	local i
	for ((i = 0; i < $3 * 50; i++)); do
		(exec 3<>/dev/tcp/$1/$2) 2>/dev/null && return 0
		sleep 0.02
	done
	echo "tarpit.sh: $1:$2 did not come up" >&2
	return 1
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
sink_count() {
	tr '\r' '\n' <"$T/sink.out" | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -1
}
delivered() {
	[ -f "$T/events.jsonl" ] || { echo 0; return; }
	grep -c '"type":"message".*"outcome":"delivered"' "$T/events.jsonl"
}

HOSTILE="banner_delay=$BD reply_delay=290s stutter=1 stutter_interval=$SI"
HOSTILE="$HOSTILE rate_in=2k rate_out=512 max_messages=1 max_rcpt=5"
HOSTILE="$HOSTILE max_per_client=20000 max_share=100 session_time=60m action=relay"

# relay - one smtp-source run to port $1; prints msgs/s, or FAIL
relay() {
	local port=$1 tag=$2 c0 c1 d0 d1 t0 t1 rc i
	c0=$(sink_count); c0=${c0:-0}; d0=$(delivered)
	t0=$(date +%s.%N)
	timeout 120 $SMTP_SOURCE -s "$SESS" -m "$MSGS" -l "$LEN" \
	    -M bench.local -f sender@bench.local -t rcpt@bench.local \
	    127.0.0.1:"$port" >"$T/source.$tag.out" 2>&1
	rc=$?
	t1=$(date +%s.%N)
	for ((i = 0; i < 50; i++)); do
		c1=$(sink_count); c1=${c1:-0}; d1=$(delivered)
		[ $((c1 - c0)) -ge "$MSGS" ] && [ $((d1 - d0)) -ge "$MSGS" ] && break
		sleep 0.1
	done
	if [ $rc = 0 ] && [ $((c1 - c0)) = "$MSGS" ] && [ $((d1 - d0)) = "$MSGS" ]; then
		echo "scale=1; $MSGS / ($t1 - $t0)" | bc -l
	else
		echo "FAIL(rc=$rc,sink+$((c1 - c0)),delivered+$((d1 - d0)))"
		head -3 "$T/source.$tag.out" >&2
	fi
}

echo "# tarpit.sh $(date -u +%FT%TZ) $(nproc) cpus, runs=$RUNS hold=$HOLD, class_hostile = $HOSTILE"
echo "# trusted relay: smtp-source -s $SESS -m $MSGS -l $LEN from 127.0.0.1"
printf '%3s %8s %9s %9s %9s %8s %10s %10s %6s %s\n' run held rss0_kB rss1_kB \
    B/sess unloaded loaded_msgs ratio hold_s checks
PER=() RAT=() UNL=() LOD=() FAIL=0

for ((r = 1; r <= RUNS; r++)); do
	P_SINK=$(free_port); P_MS=$(free_port)
	while [ "$P_MS" = "$P_SINK" ]; do P_MS=$(free_port); done
	rm -f "$T/events.jsonl" "$T/sink.out"
	U=(); [ "$(id -u)" = 0 ] && U=(-u nobody)
	$SMTP_SINK -c "${U[@]}" -m 1000 inet:127.0.0.1:$P_SINK 4096 >"$T/sink.out" 2>&1 &
	PIDS+=($!)
	wait_port 127.0.0.1 "$P_SINK" 5 || exit 1
	"$MS" -f -o listen=127.0.0.1:$P_MS -o backend=127.0.0.1:$P_SINK \
	    -o eventlog="$T/events.jsonl" -o backend_identity=none \
	    -o default_class=hostile -o rep_store=sqlite:$T/rep.$r.db \
	    -o "client_class_map=127.0.0.1/32=trusted 127.0.0.0/8=hostile" \
	    -o "class_hostile=$HOSTILE" -o max_connections=16000 \
	    -o max_connections_per_client=20000 -o backend_max_connections=1000 \
	    -o grace_time=1s -o myhostname=bench.local \
	    -o listen_backlog=16384 >"$T/mailshaper.$r.out" 2>&1 &
	MSPID=$!
	PIDS=("$MSPID" "${PIDS[@]}")
	wait_port 127.0.0.1 "$P_MS" 5 || { cat "$T/mailshaper.$r.out" >&2; exit 1; }

	unl=$(relay "$P_MS" "unloaded.$r")
	sleep 1
	rss0=$(rss_kb $MSPID)

	# hold: two client processes of HOLD/2 connections each
	h1=$((HOLD / 2)) h2=$((HOLD - HOLD / 2))
	$HC -c $h1 -o 0 -p "$P_MS" -r 3000 -t 170 -s "$T/hc1.status" >"$T/hc1.$r.out" 2>&1 &
	HC1=$!
	$HC -c $h2 -o $h1 -p "$P_MS" -r 3000 -t 170 -s "$T/hc2.status" >"$T/hc2.$r.out" 2>&1 &
	HC2=$!
	PIDS+=($HC1 $HC2)
	t0=$(date +%s.%N)
	ok=0
	for ((i = 0; i < 900; i++)); do
		acc=$(grep -c ': connect from .* class=hostile' "$T/mailshaper.$r.out")
		if [ "$acc" -ge "$HOLD" ]; then
			est=$(ss -Htn state established "( sport = :$P_MS )" | wc -l)
			[ "$est" -ge "$HOLD" ] && { ok=1; break; }
		fi
		sleep 0.1
	done
	hold_s=$(echo "$(date +%s.%N) - $t0" | bc -l)
	sleep 3	# let the daemon settle (first stutter writes, timers)
	rss1=$(rss_kb $MSPID)
	est=$(ss -Htn state established "( sport = :$P_MS )" | wc -l)
	per=$(( (rss1 - rss0) * 1024 / HOLD ))

	lod=$(relay "$P_MS" "loaded.$r")
	rss2=$(rss_kb $MSPID)
	sleep 1
	hc="$(cat "$T/hc1.status" 2>/dev/null | tr -d '\n') | $(cat "$T/hc2.status" 2>/dev/null | tr -d '\n')"
	refused=$(grep -c 'outcome=refused' "$T/mailshaper.$r.out")
	checks="accepted=$acc ss_est=$est rss_after_relay=${rss2}kB outcome_refused=$refused"
	[ $ok = 1 ] || { checks="$checks NOT-ALL-HELD"; FAIL=1; }
	case "$unl$lod" in *FAIL*) ratio=-; FAIL=1 ;;
	*) ratio=$(printf '%.3f' "$(echo "$lod / $unl" | bc -l)")
	   UNL+=("$unl"); LOD+=("$lod"); RAT+=("$ratio") ;;
	esac
	PER+=("$per")
	printf '%3d %8d %9d %9d %9d %8s %10s %10s %6.1f %s\n' "$r" "$est" \
	    "$rss0" "$rss1" "$per" "$unl" "$lod" "$ratio" "$hold_s" "$checks"
	echo "    holdconns: $hc"

	stop_pids	# mailshaper first, then the sink and the clients
	tail -1 "$T/mailshaper.$r.out" | sed 's/^/    /'
	ERR=$(grep -ciwE 'error|fatal|panic|warning|assert' "$T/mailshaper.$r.out")
	[ "$ERR" != 0 ] && grep -iwE 'error|fatal|panic|warning|assert' \
	    "$T/mailshaper.$r.out" | sed 's/^mailshaper\[[0-9]*\]: //; s/\[[0-9.]*\]:[0-9]*/[ip]:port/g; s/[0-9A-F]\{12\}//; s/duration=[0-9.]*s/duration=Ns/' |
	    sort | uniq -c | sort -rn | head -5 | sed 's/^/    log: /'
	sleep 2	# let the loopback sockets drain
done

median() {
	printf '%s\n' "$@" | sed '/^$/d' | sort -n | awk '{a[NR]=$1}
	    END {if (NR == 0) print "-"; else if (NR % 2) print a[(NR+1)/2];
	    else printf "%.3f\n", (a[NR/2] + a[NR/2+1]) / 2}'
}
echo "median bytes per held session: $(median "${PER[@]}") (target <= 4096)"
echo "median trusted msgs/s: unloaded $(median "${UNL[@]}"), loaded $(median "${LOD[@]}")"
echo "median loaded/unloaded ratio: $(median "${RAT[@]}") (target >= 0.5)"
exit $FAIL
