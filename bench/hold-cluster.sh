#!/usr/bin/env bash
# Sessions held across several `chatctl serve` nodes on one Redis
# (docs/BENCHMARKS.md, "Across nodes"): NODES nodes on loopback, each
# driven by its own `chatctl bench hold` (open files are limited per
# process: 20,000 on the machine of BENCHMARKS.md), TOTAL sessions in all,
# held HOLD at the cadence of BENCHMARKS.md's hold figures (the server's
# HelloInterval 10 s: a wshello every 10 s, the SDK's heartbeat after 10 s
# idle). A login that times out or gets 70169 during the ramp (13
# processes on the machine's cores) is tried again, as an app would, up
# to 3 times (login_retried). One line of JSON per node, then the sums;
# exit 1 on any unexpected disconnect or session that did not log in.
#
#   bench/hold-cluster.sh                       100,000 over 6 nodes, 5 min
#   NODES=2 TOTAL=2000 HOLD=20s bench/hold-cluster.sh
#
# Needs redis-server (make redis-install) and jq.
set -euo pipefail
BIN=${BIN:-bin/chatctl}
NODES=${NODES:-6}
TOTAL=${TOTAL:-100000}
HOLD=${HOLD:-5m}
REDIS=${REDIS:-redis-server}
APP=1400000001
KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"

port=$((20000 + RANDOM % 20000))
"$REDIS" --port "$port" --bind 127.0.0.1 --save '' --appendonly no >"$tmp/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
	sleep 0.1
done

export CHATCTL_SDKAPPID=$APP CHATCTL_SECRET_KEY=$KEY
per=$(((TOTAL + NODES - 1) / NODES)) # at least TOTAL in all
eps=() spids=()
for i in $(seq 1 "$NODES"); do
	d=$tmp/n$i
	mkdir -p "$d"
	CHATCTL_CONFIG_DIR=$d "$BIN" serve --store "redis://127.0.0.1:$port/0" --listen 127.0.0.1:0 \
		-o json --log-level warn --hello-interval 10s >"$d/out" 2>"$d/err" &
	spids+=($!)
	pids+=($!)
	for _ in $(seq 300); do
		[ -s "$d/out" ] && break
		sleep 0.1
	done
	ep=$(jq -r .ws <"$d/out")
	[ -n "$ep" ] && [ "$ep" != null ] || { cat "$d/err" >&2; exit 1; }
	eps+=("$ep")
done
echo "$NODES nodes on redis 127.0.0.1:$port, $per sessions each, held $HOLD" >&2

gens=()
for i in $(seq 1 "$NODES"); do
	CHATCTL_CONFIG_DIR=$tmp/g$i "$BIN" bench hold --sessions "$per" --duration "$HOLD" \
		--endpoint "${eps[$((i - 1))]}" --server-pid "${spids[$((i - 1))]}" --user-prefix "n$i-" \
		--concurrency 16 --retries 3 -o json >"$tmp/g$i.json" 2>"$tmp/g$i.err" &
	gens+=($!)
done
fail=0
for i in $(seq 1 "$NODES"); do
	wait "${gens[$((i - 1))]}" || fail=1
	jq -c --argjson node "$i" '.result | {node: $node, held: .logged_in, disconnects: .unexpected_disconnects,
		heartbeat_timeouts, rss_kib_per_session: ((.server_memory.rss_bytes_per_session // 0) / 1024 * 10 | round / 10),
		cpu_us_per_keepalive: ((.server_cpu_us_per_keepalive // 0) | round), login_errors, login_retried}' "$tmp/g$i.json" \
		| tee -a "$tmp/all.jsonl" || { tail -5 "$tmp/g$i.err" >&2; fail=1; }
done
for i in $(seq 1 "$NODES"); do kill -0 "${spids[$((i - 1))]}" 2>/dev/null || { echo "node $i died" >&2; tail -5 "$tmp/n$i/err" >&2; fail=1; }; done
jq -rs --argjson total "$TOTAL" --argjson per "$per" --argjson nodes "$NODES" '
	{held: (map(.held) | add), disconnects: (map(.disconnects) | add), late: (map(.heartbeat_timeouts) | add)} as $s
	| "held \($s.held) of \($per * $nodes) at once, unexpected disconnects \($s.disconnects), heartbeats answered after 3 s \($s.late) (the SDK would reconnect)"' "$tmp/all.jsonl"
echo "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
held=$(jq -s 'map(.held) | add' "$tmp/all.jsonl")
disc=$(jq -s 'map(.disconnects) | add' "$tmp/all.jsonl")
[ "$fail" = 0 ] && [ "$held" = $((per * NODES)) ] && [ "$disc" = 0 ]
