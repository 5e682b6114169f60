#!/bin/sh
# demo.sh - `make demo`: mailshaper in front of a real MTA, four senders
#
# Starts Postfix's smtp-sink and the daemon on free loopback ports, with the embedded defaults (only listen, backend, eventlog
# and a client_class_map are set), then sends mail with swaks from four
# loopback addresses that fall into the four default classes:
#   127.0.0.10 trusted   delivered at once
#   127.0.0.20 normal    delivered at once
#   127.0.0.30 suspect   15 s banner delay, 2 s per reply, still delivered
#   127.0.0.40 hostile   a "bot" with 10 s patience: it gives up in the
#                        290 s stuttered banner, and nothing reaches the MTA
# and prints the daemon's log and a summary of the event log.
set -eu
B=${1:-build}
BIN=$(cd "$B" && pwd)/mailshaper
W=$(mktemp -d /tmp/mailshaper-demo.XXXXXX)
chmod 755 "$W"
mkdir "$W/sink" && chown nobody "$W/sink" 2>/dev/null || chmod 777 "$W/sink"
freeport() {
	/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
SINK_PORT=$(freeport)
PORT=$(freeport)

cleanup() {
	[ -n "${MS_PID:-}" ] && kill "$MS_PID" 2>/dev/null || true
	[ -n "${SINK_PID:-}" ] && kill "$SINK_PID" 2>/dev/null || true
	wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

user=""
[ "$(id -u)" = 0 ] && user="-u nobody"
# shellcheck disable=SC2086
/usr/sbin/smtp-sink $user -d "$W/sink/%M." 127.0.0.1:$SINK_PORT 256 &
SINK_PID=$!

cat > "$W/mailshaper.conf" <<CONF
# Everything not named here is an embedded default (mailshaper.conf(5)).
listen = 127.0.0.1:$PORT
backend = 127.0.0.1:$SINK_PORT
eventlog = $W/events.jsonl
rep_store = sqlite:$W/reputation.db
client_class_map = 127.0.0.10/32=trusted, 127.0.0.30/32=suspect,
	127.0.0.40/32=hostile
CONF
"$BIN" -f -c "$W/mailshaper.conf" 2> "$W/mailshaper.log" &
MS_PID=$!
i=0
until grep -q "probe" "$W/mailshaper.log" 2>/dev/null; do
	i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 "$MS_PID" 2>/dev/null; then
		cat "$W/mailshaper.log"
		exit 1
	fi
	sleep 0.1
done

echo "== sending: trusted, normal, suspect (slowed), hostile bot (gives up)"
send() {	# send ADDR LABEL TIMEOUT
	if swaks --server 127.0.0.1 --port $PORT --local-interface "$1" \
	    --helo "$2.demo.test" --from "$2@demo.test" --to user@example.test \
	    --timeout "$3" --body "demo message from the $2 sender" \
	    > "$W/swaks-$2.log" 2>&1; then
		echo "   $2 ($1): delivered"
	else
		echo "   $2 ($1): not delivered (gave up)"
	fi
}
send 127.0.0.10 trusted 60 &
send 127.0.0.20 normal 60 &
send 127.0.0.30 suspect 120 &
send 127.0.0.40 hostile 10 &
wait %3 %4 %5 %6 2>/dev/null || wait

kill "$MS_PID"
wait "$MS_PID" || true
MS_PID=""

echo
echo "== daemon log"
sed 's/^/   /' "$W/mailshaper.log"
echo
echo "== event log summary ($W/events.jsonl)"
/usr/bin/python3 - "$W/events.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("   %-9s %-15s %-10s %-15s %s" % ("class", "client", "messages",
      "outcome", "gave up after / OS"))
for r in rows:
    if r["type"] != "session":
        continue
    gave = r["gave_up_after_s"]
    fp = r["fp"]["os"] if r["fp"] else "no SYN"
    print("   %-9s %-15s %-10d %-15s %s" % (r["class"], r["client_ip"],
          r["messages"], r["outcome"],
          ("%.1f s" % gave if gave is not None else "-") + " / " + fp))
msgs = [r for r in rows if r["type"] == "message"]
print("   messages: %d, delivered: %d" % (len(msgs),
      sum(m["outcome"] == "delivered" for m in msgs)))
PY
echo "   messages stored by smtp-sink: $(ls "$W/sink" | wc -l)"
