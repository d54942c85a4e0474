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
systems=("$@")
[ -n "$FLOOR" ] && systems+=("floor")
. "$(dirname "$0")/rounds.sh"

# logins SYSTEM ROUND PROTO: one logins run against the server started for it.
logins() {
	local load out
	load=$(cut -d' ' -f1 /proc/loadavg)
	out=$(CHATCTL_CONFIG_DIR=$tmp CHATCTL_SDKAPPID=$APP CHATCTL_SECRET_KEY=$KEY \
		"$GEN" bench logins --users "$USERS" --concurrency 64 --protocol "$3" --close "$CLOSE" \
		--endpoint "$ep" --server-pid "$pid" --user-prefix "l$2-" -o json 2>/dev/null)
	jq -c --arg sys "$1" --arg load "$load" --argjson round "$2" '.result |
		{system: $sys, round: $round, load: ($load | tonumber), failed: .failed,
		 logins_per_s: (.logins_per_second | round),
		 cpu_us_per_login: ((.server_cpu_us_per_login // 0) * 10 | round / 10)}' <<<"$out"
}

rounds logins "${systems[@]}"
echo "medians (min–max) over $ROUNDS rounds, $USERS new users each, close $CLOSE; load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
medians '"\(.[0].system): logins/s \(f("logins_per_s")), server CPU/login \(f("cpu_us_per_login")) µs"'
