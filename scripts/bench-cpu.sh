#!/usr/bin/env bash
# bench-cpu.sh: one `chatctl bench` run against a fresh `chatctl serve`,
# with the CPU both processes spent (utime+stime from /proc/PID/stat, 10 ms
# ticks). docs/BENCHMARKS.md quotes its output; it prints one JSON object.
#
#   scripts/bench-cpu.sh logins SERVER_BIN [GEN_BIN]
#       USERS (20000) new users, 64 in flight: logins/s and µs per login
#   scripts/bench-cpu.sh kick SERVER_BIN [GEN_BIN]
#       SESSIONS (15000) held, KICKS (10000) REST kicks, IN_FLIGHT (64) at
#       once: when all were delivered, latencies, and the CPU of the whole
#       run (run it with KICKS=1 too: the difference is the kicks' CPU)
#   scripts/bench-cpu.sh hold SERVER_BIN [GEN_BIN]
#       SESSIONS (15000) held 22 s: µs per hello round trip, over 15 s from
#       3 s after the ramp
#
# GEN_BIN (default SERVER_BIN) runs the load, so two builds can be compared
# against the same generator. DATA=/dev/shm puts the store on tmpfs.
set -euo pipefail
mode=${1:-} sb=${2:-} gb=${3:-${2:-}}
case $mode in logins | kick | hold) [ -n "$sb" ] ;; *) false ;; esac || {
	echo "usage: $0 logins|kick|hold SERVER_BIN [GEN_BIN]" >&2
	exit 2
}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/start-serve.sh"
tmp=$(mktemp -d)
data=$(mktemp -d -p "${DATA:-/tmp}")
trap 'serve_stop; rm -rf "$tmp" "$data"' EXIT
serve_up "$sb" "$tmp" "$tmp/serve" --data-dir "$data" || exit 1
export CHATCTL_CONFIG_DIR=$tmp CHATCTL_ENDPOINT=$SERVE_WS
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
prefix=c$RANDOM-

case $mode in
logins)
	n=${USERS:-20000}
	a=$(ticks "$SERVE_PID")
	/usr/bin/time -f "%U %S" -o "$tmp/gen" "$gb" bench logins --users "$n" --concurrency 64 \
		--user-prefix "$prefix" -o json >"$tmp/out" 2>/dev/null
	b=$(ticks "$SERVE_PID")
	jq -c --argjson s "$(((b - a) * 10000 / n))" \
		--argjson g "$(awk -v n="$n" '{printf "%d", ($1+$2)*1e6/n}' "$tmp/gen")" \
		'.result | {logins_per_second, failed, p99_ms: .latency.p99_ms,
			server_us_per_login: $s, generator_us_per_login: $g}' "$tmp/out"
	;;
kick)
	a=$(ticks "$SERVE_PID")
	/usr/bin/time -f "%U %S" -o "$tmp/gen" "$gb" bench kick --sessions "${SESSIONS:-15000}" \
		--kicks "${KICKS:-10000}" --kick-concurrency "${IN_FLIGHT:-64}" --wait 30s \
		--user-prefix "$prefix" -o json >"$tmp/out" 2>/dev/null
	b=$(ticks "$SERVE_PID")
	jq -c --argjson s "$(awk -v t=$((b - a)) 'BEGIN{printf "%.2f", t/100}')" --argjson g "$(awk '{printf "%.2f", $1+$2}' "$tmp/gen")" \
		'.result | {all_delivered_seconds, delivered, undelivered,
			kick_p50_ms: .kick_to_kicked_out.p50_ms, kick_p99_ms: .kick_to_kicked_out.p99_ms,
			rest_p50_ms: .rest_call.p50_ms, unexpected_disconnects,
			server_cpu_s: $s, generator_cpu_s: $g}' "$tmp/out"
	;;
hold)
	"$gb" bench hold --sessions "${SESSIONS:-15000}" --duration 22s --user-prefix "$prefix" \
		>"$tmp/out" 2>"$tmp/progress" &
	gen=$!
	until grep -q "hold: [0-9]" "$tmp/progress" 2>/dev/null; do
		kill -0 "$gen" 2>/dev/null || { cat "$tmp/progress" >&2; exit 1; }
		sleep 0.2
	done
	sleep 3
	hellos() { grep -o "hellos [0-9]*" "$tmp/progress" | tail -1 | awk '{print $2}'; }
	a=$(ticks "$SERVE_PID") ga=$(ticks "$gen") h0=$(hellos)
	sleep 15
	b=$(ticks "$SERVE_PID") gbt=$(ticks "$gen") h1=$(hellos)
	wait "$gen"
	h=$((h1 - h0))
	echo "{\"hellos\":$h,\"server_us_per_hello\":$(((b - a) * 10000 / h)),\"generator_us_per_hello\":$(((gbt - ga) * 10000 / h))}"
	;;
esac
