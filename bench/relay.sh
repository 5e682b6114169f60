#!/bin/bash
# relay.sh - messages/second through mailshaper vs. haproxy vs. direct
#
# Sends `smtp-source -s 20 -m 4000 -l 1000` (20 parallel sessions, one
# message per connection, 1000-byte body) to smtp-sink in three ways:
#
#   direct   smtp-source -> smtp-sink
#   haproxy  smtp-source -> haproxy (mode tcp, maxconn 4000) -> smtp-sink
#   shaper   smtp-source -> mailshaper (every client trusted,
#            backend_identity = none) -> smtp-sink
#
# The three are interleaved (direct, haproxy, shaper, direct, ...) N times
# in one run, so drift of the machine hits all of them alike.  Each run's
# wall time is taken around smtp-source with date +%s.%N; the sink's -c
# counter must have grown by exactly MSGS, and for mailshaper its event
# log must show MSGS "delivered" messages, or the run counts as failed.
#
# Prints one line per run, then the median msgs/s of each configuration
# and the ratios shaper/haproxy (target >= 1.0) and shaper/direct
# (target >= 0.6).  Also mailshaper's peak RSS (VmHWM, and /usr/bin/time
# -v's "Maximum resident set size" over the whole run).
#
# Usage: bench/relay.sh [-n RUNS] [-m MSGS] [-s SESSIONS] [-l LEN]
#        MAILSHAPER=path/to/mailshaper (default build/mailshaper)
#        PERF=1  also record a perf profile of mailshaper during the last
#                shaper run (perf record -g), report in $KEEP/perf.txt
#        KEEP=dir  keep logs there (default: a temp dir, removed)
# Loopback only.  Needs root or not; as root smtp-sink runs with -u nobody.
# Everything started is stopped on exit (trap), every step has a timeout.

set -u
cd "$(dirname "$0")/.." || exit 1

N=5 MSGS=4000 SESS=20 LEN=1000
while getopts n:m:s:l: o; do
	case $o in
	n) N=$OPTARG ;; m) MSGS=$OPTARG ;; s) SESS=$OPTARG ;; l) LEN=$OPTARG ;;
	*) echo "usage: $0 [-n runs] [-m msgs] [-s sessions] [-l len]" >&2; exit 2 ;;
	esac
done

MS=${MAILSHAPER:-build/mailshaper}
MS=$(readlink -f "$MS")
SMTP_SINK=/usr/sbin/smtp-sink
SMTP_SOURCE=/usr/sbin/smtp-source
HAPROXY=/usr/sbin/haproxy
for b in "$MS" $SMTP_SINK $SMTP_SOURCE $HAPROXY /usr/bin/time; do
	[ -x "$b" ] || { echo "relay.sh: missing $b" >&2; exit 1; }
done

ulimit -n 20000 2>/dev/null || ulimit -n 4096

if [ -n "${KEEP:-}" ]; then
	T=$KEEP; mkdir -p "$T"
else
	T=$(mktemp -d /tmp/mailshaper-relay.XXXXXX)
fi
chmod 755 "$T"
PIDS=()

cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	sleep 0.3
	for p in "${PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null
	done
	wait 2>/dev/null
	[ -z "${KEEP:-}" ] && rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_port - a TCP port on 127.0.0.1 that nothing listens on
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
	echo "relay.sh: $1:$2 did not come up" >&2
	return 1
}

P_SINK=$(free_port); P_HAP=$(free_port); P_MS=$(free_port)
while [ "$P_HAP" = "$P_SINK" ]; do P_HAP=$(free_port); done
while [ "$P_MS" = "$P_SINK" ] || [ "$P_MS" = "$P_HAP" ]; do P_MS=$(free_port); done

# --- smtp-sink: counters (-c), no dump, large backlog and session bound
U=(); [ "$(id -u)" = 0 ] && U=(-u nobody)
$SMTP_SINK -c "${U[@]}" -m 1000 inet:127.0.0.1:$P_SINK 4096 >"$T/sink.out" 2>&1 &
PIDS+=($!)
wait_port 127.0.0.1 $P_SINK 5 || exit 1

# sink_count - the last mesg=N the sink printed (it updates with \r)
sink_count() {
	tr '\r' '\n' <"$T/sink.out" | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -1
}

# --- haproxy, TCP mode
cat >"$T/haproxy.cfg" <<EOF
global
	maxconn 4000
	log stderr format short local0 err
defaults
	mode tcp
	log global
	option dontlognull
	timeout connect 5s
	timeout client 60s
	timeout server 60s
frontend smtp
	bind 127.0.0.1:$P_HAP
	maxconn 4000
	default_backend sink
backend sink
	server sink 127.0.0.1:$P_SINK maxconn 4000
EOF
$HAPROXY -db -f "$T/haproxy.cfg" >"$T/haproxy.out" 2>&1 &
PIDS+=($!)
wait_port 127.0.0.1 $P_HAP 5 || exit 1

# --- mailshaper, every client trusted, no identity to the backend
/usr/bin/time -v -o "$T/mailshaper.time" "$MS" -f \
	-o listen=127.0.0.1:$P_MS -o backend=127.0.0.1:$P_SINK \
	-o eventlog="$T/events.jsonl" -o backend_identity=none \
	-o default_class=trusted -o max_connections=16000 \
	-o max_connections_per_client=20000 -o backend_max_connections=1000 \
	-o grace_time=1s -o myhostname=bench.local \
	-o rep_store=sqlite:$T/rep.db >"$T/mailshaper.out" 2>&1 &
TPID=$!
PIDS+=($TPID)
wait_port 127.0.0.1 $P_MS 5 || { cat "$T/mailshaper.out" >&2; exit 1; }
MSPID=$(pgrep -P $TPID | head -1)
PIDS=("$MSPID" "${PIDS[@]}")	# mailshaper first, so time(1) can report

delivered() {
	[ -f "$T/events.jsonl" ] || { echo 0; return; }
	grep -c '"type":"message".*"outcome":"delivered"' "$T/events.jsonl"
}

echo "# relay.sh $(date -u +%FT%TZ) $(nproc) cpus, N=$N, smtp-source -s $SESS -m $MSGS -l $LEN"
echo "# mailshaper $MS (pid $MSPID) on :$P_MS, haproxy $($HAPROXY -v | head -1 | awk '{print $3}') on :$P_HAP, smtp-sink on :$P_SINK"
printf '%-8s %3s %9s %9s %s\n' config run wall_s msgs_s check

declare -A RATES
FAIL=0
perf_pid=

one_run() {	# config port run
	local cfg=$1 port=$2 run=$3 c0 c1 d0 d1 t0 t1 wall rate ok rc
	c0=$(sink_count); c0=${c0:-0}
	d0=$(delivered)
	if [ "$cfg" = shaper ] && [ "${PERF:-}" = 1 ] && [ "$run" = "$N" ] &&
	    command -v perf >/dev/null; then
		perf record -F 2000 -g -p "$MSPID" -o "$T/perf.data" \
		    >"$T/perf.rec.out" 2>&1 &
		perf_pid=$!
		sleep 0.3
	fi
	t0=$(date +%s.%N)
	timeout 120 $SMTP_SOURCE -s "$SESS" -m "$MSGS" -l "$LEN" \
	    -M bench.local -f sender@bench.local -t rcpt@bench.local \
	    127.0.0.1:$port >"$T/source.$cfg.$run.out" 2>&1
	rc=$?
	t1=$(date +%s.%N)
	if [ -n "$perf_pid" ]; then
		kill -INT "$perf_pid"; wait "$perf_pid"; perf_pid=
	fi
	# the sink counts "." when it answers it; allow the last replies
	# and the event log writes to land
	local i
	for ((i = 0; i < 50; i++)); do
		c1=$(sink_count); c1=${c1:-0}
		[ $((c1 - c0)) -ge "$MSGS" ] && break
		sleep 0.1
	done
	ok="sink+$((c1 - c0))"
	if [ "$cfg" = shaper ]; then
		for ((i = 0; i < 20; i++)); do
			d1=$(delivered)
			[ $((d1 - d0)) -ge "$MSGS" ] && break
			sleep 0.1
		done
		ok="$ok delivered+$((d1 - d0))"
		[ $((d1 - d0)) -eq "$MSGS" ] || rc=99
	fi
	[ $((c1 - c0)) -eq "$MSGS" ] || rc=98
	wall=$(echo "$t1 - $t0" | bc -l)
	rate=$(echo "scale=1; $MSGS / $wall" | bc -l)
	if [ "$rc" != 0 ]; then
		ok="$ok FAILED(rc=$rc)"
		FAIL=1
		sed 's/^/    /' "$T/source.$cfg.$run.out" | head -5
	else
		ok="$ok ok"
		RATES[$cfg]="${RATES[$cfg]:-} $rate"
	fi
	printf '%-8s %3d %9.3f %9.1f %s\n' "$cfg" "$run" "$wall" "$rate" "$ok"
}

for ((r = 1; r <= N; r++)); do
	one_run direct $P_SINK $r
	one_run haproxy $P_HAP $r
	one_run shaper $P_MS $r
done

median() {
	tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{a[NR]=$1}
	    END {if (NR == 0) print 0; else if (NR % 2) print a[(NR+1)/2];
	    else printf "%.1f\n", (a[NR/2] + a[NR/2+1]) / 2}'
}

MD=$(echo "${RATES[direct]:-}" | median)
MH=$(echo "${RATES[haproxy]:-}" | median)
MM=$(echo "${RATES[shaper]:-}" | median)
echo "median msgs/s: direct $MD  haproxy $MH  mailshaper $MM"
if [ "$MH" != 0 ] && [ "$MD" != 0 ]; then
	printf 'ratio mailshaper/haproxy %.3f (target >= 1.0)\n' "$(echo "$MM / $MH" | bc -l)"
	printf 'ratio mailshaper/direct  %.3f (target >= 0.6)\n' "$(echo "$MM / $MD" | bc -l)"
fi
echo "mailshaper VmHWM $(awk '/VmHWM/ {print $2, $3}' /proc/$MSPID/status)," \
    "VmRSS $(awk '/VmRSS/ {print $2, $3}' /proc/$MSPID/status)," \
    "CPU $(awk '{printf "%.2fs user %.2fs sys", $14/100, $15/100}' /proc/$MSPID/stat)"
HP=$(pgrep -x haproxy -P "${PIDS[2]}" 2>/dev/null | head -1)
for p in ${PIDS[2]} $HP; do
	[ -r /proc/$p/stat ] && echo "haproxy pid $p CPU $(awk '{printf "%.2fs user %.2fs sys", $14/100, $15/100}' /proc/$p/stat)"
done
if perf stat -e instructions true >/dev/null 2>&1 &&
    ! perf stat -e instructions true 2>&1 | grep -q 'not supported'; then
	echo "(instructions counter available: see PERF=1)"
else
	echo "(perf: hardware 'instructions' counter not supported on this machine)"
fi

# stop mailshaper so /usr/bin/time -v reports the whole run
kill -TERM "$MSPID" 2>/dev/null
wait "$TPID" 2>/dev/null
sed -n 's/^\s*Maximum resident set size (kbytes): /mailshaper max RSS (time -v): /p' \
    "$T/mailshaper.time" | sed 's/$/ kB/'
grep -E 'Elapsed|User time|System time|context switches' "$T/mailshaper.time" | sed 's/^\s*/  /'
ERR=$(grep -ciwE 'error|fatal|panic|warning' "$T/mailshaper.out")
echo "mailshaper log: $(wc -l <"$T/mailshaper.out") lines, $ERR matching error|fatal|panic|warning"
[ "$ERR" != 0 ] && grep -iwE 'error|fatal|panic|warning' "$T/mailshaper.out" | sort | uniq -c | sort -rn | head -5
if [ -f "$T/perf.data" ]; then
	perf report -i "$T/perf.data" --no-children --stdio --sort symbol 2>/dev/null |
	    grep -v '^$' | grep '%' | head -40 >"$T/perf.txt"
	echo "perf profile of the last mailshaper run (self time, top 25):"
	head -25 "$T/perf.txt"
fi
exit $FAIL
