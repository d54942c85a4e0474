#!/usr/bin/env bash
# Logins of two or more chatctl builds side by side in one run (docs/BENCHMARKS.md,
# "Where serve's extra µs per login go": the before/after of each cut):
# every measurement starts its server fresh (store on disk), the builds are
# interleaved round after round (the order turning), and the first
# build's `chatctl bench logins` is the generator for all: USERS new users
# a round, 64 in flight, closed with a reset as make bench-floor's serve
# row. One line of JSON per measurement on stdout, then the medians and
# ranges of logins/s and server CPU per login per build.
#
#   bench/logins.sh /tmp/base-chatctl bin/chatctl
#   ROUNDS=5 USERS=20000 CLOSE=reset bench/logins.sh OLD NEW
#
# FLOOR=bin/benchfloor adds the bare gorilla floor. Needs jq.
set -euo pipefail
ROUNDS=${ROUNDS:-3}
USERS=${USERS:-20000}
CLOSE=${CLOSE:-reset}
FLOOR=${FLOOR:-}
[ $# -gt 0 ] || set -- bin/chatctl
GEN=$1
APP=1400000001
KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
tmp=$(mktemp -d)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"

systems=()
for b in "$@"; do systems+=("$b"); done
[ -n "$FLOOR" ] && systems+=("floor")

. "$(dirname "$0")/start.sh"

for r in $(seq 0 $((ROUNDS - 1))); do
	n=${#systems[@]}
	for i in $(seq 0 $((n - 1))); do
		s=${systems[$(((i + r) % n))]}
		start "$s"
		proto=sdk
		[ "$s" = floor ] && proto=ws
		load=$(cut -d' ' -f1 /proc/loadavg)
		out=$(CHATCTL_CONFIG_DIR=$tmp CHATCTL_SDKAPPID=$APP CHATCTL_SECRET_KEY=$KEY \
			"$GEN" bench logins --users "$USERS" --concurrency 64 --protocol $proto --close "$CLOSE" \
			--endpoint "$ep" --server-pid "$pid" --user-prefix "l$r-" -o json)
		kill "$pid"
		wait "$pid" 2>/dev/null || true
		pid=
		jq -c --arg sys "$s" --arg load "$load" --argjson round "$r" '.result |
			{system: $sys, round: $round, load: ($load | tonumber), failed: .failed,
			 logins_per_s: (.logins_per_second | round),
			 cpu_us_per_login: ((.server_cpu_us_per_login // 0) * 10 | round / 10)}' <<<"$out" | tee -a "$tmp/all.jsonl"
	done
done
echo "medians (min–max) over $ROUNDS rounds, $USERS new users each, close $CLOSE; load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
jq -rs 'def med: sort | if length % 2 == 1 then .[length/2|floor] else (.[length/2-1] + .[length/2]) / 2 end;
	def f(k): [.[] | .[k]] | "\(med) (\(min)–\(max))";
	group_by(.system)[] | "\(.[0].system): logins/s \(f("logins_per_s")), server CPU/login \(f("cpu_us_per_login")) µs"' "$tmp/all.jsonl"
