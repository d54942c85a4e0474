#!/usr/bin/env bash
# Per-session cost of idle held sessions, side by side in one run
# (docs/BENCHMARKS.md, "What an idle session holds"): RSS per held session
# and server CPU per keep-alive round trip at the SDK's cadence (a wshello
# every 10 s), for one or more chatctl builds beside the bare gorilla
# floor (which holds memory but has no keep-alive). Every measurement
# starts its server fresh; the systems are interleaved round after round
# (the order turning) and the generator is the first build's `chatctl
# bench hold` for all. One line of JSON per measurement on stdout, then
# the medians and ranges per system.
#
#   bench/hold.sh [CHATCTL...]          default bin/chatctl; e.g. a base build and the new one
#   ROUNDS=3 SESSIONS=10000 HOLD=30s FLOOR=bin/benchfloor bench/hold.sh /tmp/base bin/chatctl
#
# FLOOR= (empty) leaves the floor out. Needs jq.
set -euo pipefail
ROUNDS=${ROUNDS:-3}
SESSIONS=${SESSIONS:-10000}
HOLD=${HOLD:-30s}
FLOOR=${FLOOR-bin/benchfloor}
[ $# -gt 0 ] || set -- bin/chatctl
GEN=$1
systems=("$@")
[ -n "$FLOOR" ] && systems+=("floor")
. "$(dirname "$0")/rounds.sh"

# hold SYSTEM ROUND PROTO: one hold against the server started for it.
hold() {
	local load out
	load=$(cut -d' ' -f1 /proc/loadavg)
	out=$(CHATCTL_CONFIG_DIR=$tmp CHATCTL_SDKAPPID=$APP CHATCTL_SECRET_KEY=$KEY \
		"$GEN" bench hold --sessions "$SESSIONS" --duration "$HOLD" --protocol "$3" --close reset \
		--endpoint "$ep" --server-pid "$pid" --user-prefix "h$2-" -o json)
	jq -c --arg sys "$1" --arg load "$load" --argjson round "$2" '.result |
		{system: $sys, round: $round, load: ($load | tonumber), held: .logged_in,
		 disconnects: .unexpected_disconnects,
		 rss_kib: ((.server_memory.rss_bytes_per_session // 0) / 1024 * 10 | round / 10),
		 heap_stack_kib: ((.server_memory.bytes_per_session // 0) / 1024 * 10 | round / 10),
		 goroutines: .server_memory.goroutines_per_session,
		 cpu_us_per_keepalive: ((.server_cpu_us_per_keepalive // 0) | round)}' <<<"$out"
}

rounds hold "${systems[@]}"
echo "medians (min–max) over $ROUNDS rounds, $SESSIONS sessions held $HOLD; load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
medians '"\(.[0].system): RSS/session \(f("rss_kib")) KiB, heap+stacks \(f("heap_stack_kib")) KiB, CPU/keep-alive \(f("cpu_us_per_keepalive")) µs"'
