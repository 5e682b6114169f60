#!/bin/sh
# install-deps.sh - install the Debian 12 packages mailshaper builds and tests with
#
# Run by every make target (through the deps stamp) and by .ci/run.  It only
# calls apt-get when a package is missing, so a second run costs one
# dpkg-query.  Packages are grouped by what needs them; the list is the one
# place a dependency is declared.
set -eu

BUILD="build-essential pkg-config clang libclang-rt-14-dev llvm \
 libevent-dev libssl-dev libpcap-dev libsqlite3-dev libhiredis-dev libcmocka-dev"
# Real peers for black-box tests, benchmarks and the demo.
# swaks needs libio-socket-inet6-perl for ::1 and libnet-ssleay-perl for --tls.
PEERS="postfix swaks rbldnsd redis-server p0f haproxy dnsmasq-base publicsuffix \
 python3 python3-pytest python3-scapy tcpdump iproute2 openssl procps \
 sqlite3 psmisc libio-socket-inet6-perl libnet-ssleay-perl"
# The admin dashboard's test opens the page in headless Chromium.
PEERS="$PEERS chromium"
# test_hardening.py holds the daemon's bind(2) with strace's syscall delay.
PEERS="$PEERS strace"

missing=""
for p in $BUILD $PEERS; do
	s=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$s" = "installed" ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing packages:$missing (run as root to install)" >&2
	exit 1
fi
echo "install-deps: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# Postfix must not be configured as a running MTA: we only use its
# smtp-sink, smtp-source and smtpd binaries, started by the tests.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
