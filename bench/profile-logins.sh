#!/usr/bin/env bash
# Where a login's server CPU goes, chatctl serve beside the bare gorilla
# floor (docs/BENCHMARKS.md, "Where serve's extra µs per login go"): each
# server built with its symbols, started fresh (serve's store on disk, as
# make bench-floor runs it), sampled with `perf record -g` while `chatctl
# bench logins` logs USERS new users in, 64 in flight, closing with CLOSE
# (reset, as the goals' runs do). Prints each server's CPU per login and
# its samples sorted into the rows of BENCHMARKS.md's table, in µs per
# login (bench/perfbuckets.py); perf's whole reports stay in OUT.
#
#   bench/profile-logins.sh                 # serve, then the floor
#   USERS=20000 CLOSE=reset OUT=/tmp/prof bench/profile-logins.sh
#
# Needs perf, jq and python3.
set -euo pipefail
command -v perf >/dev/null || { echo "profile-logins: perf not found (apt-get install linux-tools-generic)" >&2; exit 1; }
here=$(cd "$(dirname "$0")/.." && pwd)
USERS=${USERS:-20000}
CLOSE=${CLOSE:-reset}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
APP=1400000001
KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export CHATCTL_SDKAPPID=$APP CHATCTL_SECRET_KEY=$KEY
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; true' EXIT
ulimit -n "$(ulimit -Hn)"
(cd "$here" && go build -o "$OUT/chatctl" . && go build -o "$OUT/benchfloor" ./internal/benchfloor/cmd)

# profile NAME PROTO CMD...: start CMD, record it under the generator.
profile() {
	local name=$1 proto=$2
	shift 2
	local d=$OUT/$name
	mkdir -p "$d"
	"$@" >"$d/ready" 2>"$d/err" &
	pid=$!
	for _ in $(seq 100); do [ -s "$d/ready" ] && break; sleep 0.1; done
	local ep
	ep=$(head -1 "$d/ready")
	[ "$proto" = sdk ] && ep=$(jq -r .ws <<<"$ep")
	perf record -q -F 999 -g -p "$pid" -o "$d/perf.data" 2>"$d/perf.log" &
	local perf_pid=$!
	sleep 1
	CHATCTL_CONFIG_DIR=$d "$OUT/chatctl" bench logins --users "$USERS" --concurrency 64 --close "$CLOSE" \
		--protocol "$proto" --endpoint "$ep" --server-pid "$pid" --user-prefix p- -o json 2>/dev/null |
		jq -c --arg s "$name" '.result | {system: $s, close, logins_per_second, server_cpu_us_per_login, failed}' | tee "$d/result.json"
	kill -INT "$perf_pid"
	wait "$perf_pid" || true
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	pid=
	perf report -i "$d/perf.data" --children --sort sym --stdio -g none 2>/dev/null >"$d/report.txt"
	echo "$name: where its CPU per login goes (bench/perfbuckets.py)"
	perf script -i "$d/perf.data" 2>/dev/null | python3 "$here/bench/perfbuckets.py" "$(jq .server_cpu_us_per_login "$d/result.json")"
}

profile serve sdk env CHATCTL_CONFIG_DIR="$OUT/serve" "$OUT/chatctl" serve --listen 127.0.0.1:0 -o json \
	--log-level warn --hello-interval 10s --data-dir "$OUT/serve/data"
profile floor ws "$OUT/benchfloor" ws
echo "reports: $OUT/{serve,floor}/report.txt"
