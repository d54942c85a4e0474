#!/usr/bin/env bash
# bench-profile.sh: where `chatctl serve`'s CPU goes under `chatctl bench
# logins`. Builds chatctl with its symbols (the release build strips them),
# starts it on a free loopback port (store on disk, as bench-floor and
# bench-peer do), samples it with `perf record` while USERS (20000) new
# users log in, 64 in flight, closing with CLOSE (reset; or sdk), and
# prints the server's CPU per login and perf's top symbols (self time,
# kernel included). docs/BENCHMARKS.md ("Goals: ratios") quotes it.
#
#   scripts/bench-profile.sh            # needs perf (linux-tools)
set -euo pipefail
command -v perf >/dev/null || { echo "bench-profile: perf not found (apt-get install linux-tools-generic)" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
. "$here/start-serve.sh"
tmp=$(mktemp -d)
trap 'serve_stop; rm -rf "$tmp"' EXIT
echo "bench-profile: go build -o $tmp/chatctl . (with symbols)" >&2
(cd "$here/.." && go build -o "$tmp/chatctl" .)
serve_up "$tmp/chatctl" "$tmp" "$tmp/serve" --data-dir "$tmp/data" --hello-interval 10s || exit 1
export CHATCTL_CONFIG_DIR=$tmp CHATCTL_ENDPOINT=$SERVE_WS
perf record -q -F 499 -g -p "$SERVE_PID" -o "$tmp/perf.data" 2>"$tmp/perf.log" &
perf_pid=$!
sleep 1
"$tmp/chatctl" bench logins --users "${USERS:-20000}" --concurrency 64 --close "${CLOSE:-reset}" \
	--server-pid "$SERVE_PID" --user-prefix p- -o json 2>/dev/null |
	jq -c '.result | {close, logins_per_second, server_cpu_us_per_login, failed}'
kill -INT "$perf_pid"
wait "$perf_pid" || true
perf report -i "$tmp/perf.data" --children --sort sym --stdio -g none 2>/dev/null | grep -E "^ +[0-9]" | head -"${TOP:-60}"
