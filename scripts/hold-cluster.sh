#!/usr/bin/env bash
# hold-cluster.sh: sessions held at once across several `chatctl serve`
# nodes on one machine that share their state through one Redis: the way
# past one process's open-file limit to 100,000 held sessions with no
# unexpected disconnect over 5 min (docs/MULTINODE.md, docs/BENCHMARKS.md).
#
# Starts a redis-server on a free loopback port in a temp dir, NODES nodes of
# `chatctl serve --store redis://… --listen 127.0.0.1:0` sharing one
# CHATCTL_CONFIG_DIR (node 1 first: it creates the dev app), then one
# `chatctl bench hold` per node, all at once, each holding SESSIONS_PER_NODE
# sessions (users nodeI-0 …) on its node for DURATION. Prints a table per node
# and the totals (or, with -o json, one JSON document); everything it started
# is stopped on exit, failure or Ctrl-C.
#
#   NODES=6 SESSIONS_PER_NODE=16700 DURATION=5m scripts/hold-cluster.sh
#   NODES=3 SESSIONS_PER_NODE=1000 DURATION=20s HELLO=30s scripts/hold-cluster.sh -o json
#
# Environment:
#   NODES               serve nodes, one generator each (default 6)
#   SESSIONS_PER_NODE   sessions held on each node (default 16700; one process
#                       holds at most ~19,900 under an open-file limit of 20,000)
#   DURATION            how long they are held once logged in (default 5m)
#   HELLO               the nodes' --hello-interval, which the generators
#                       follow as the SDK does (default: the server's, 5s)
#   CONCURRENCY         logins in flight per generator (default 64)
#   BIN                 chatctl binary (default bin/chatctl)
#   KEEP                a directory to copy the logs and raw results into
#
# Figures: sessions held (sum of the nodes' /debug/stats "sessions", sampled
# every 2 s, and each generator's online count at its end), unexpected
# disconnects, server memory per session (bench hold: heap+stacks from
# /debug/stats; RSS from /proc with --server-pid), generator memory per
# session (its own heap+stacks) and max RSS, CPU seconds of every process
# (nodes and Redis from /proc/PID/stat, generators from GNU time when
# present), CPU cores used while all generators hold (each past its ramp,
# none finished) and the sessions on the nodes meanwhile, the 1-minute load,
# Redis used_memory per online session (INFO memory, before the logins and at
# the peak), and the ramp (generators started → all of them holding; UserSig
# minting included, which bench hold's own ramp_seconds leaves out).
#
# Each generator holds for DURATION after its own ramp, so all sessions are
# held at once for a little less than DURATION: the report gives that window.
# On a machine that cannot keep up, a generator never finishes its ramp (login
# timeouts, 70169 from a node whose Redis calls time out): stop it with
# SIGTERM to its pid (it reports what it held) or Ctrl-C the script (no report).
#
# Exit: 0 when every session logged in and none was disconnected unexpectedly;
# 1 otherwise (the report is printed either way); 2 bad usage; 130/143 when
# interrupted.
set -euo pipefail

NODES=${NODES:-6}
SESSIONS_PER_NODE=${SESSIONS_PER_NODE:-16700}
DURATION=${DURATION:-5m}
HELLO=${HELLO:-}
CONCURRENCY=${CONCURRENCY:-64}
BIN=${BIN:-bin/chatctl}
KEEP=${KEEP:-}
OUT=text

usage() { echo "usage: [NODES=N SESSIONS_PER_NODE=S DURATION=D HELLO=H] $0 [-o text|json]" >&2; exit 2; }
while [ $# -gt 0 ]; do
	case $1 in
	-o) [ $# -ge 2 ] || usage; OUT=$2; shift 2 ;;
	-o*) OUT=${1#-o}; shift ;;
	--output=*) OUT=${1#*=}; shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) usage ;;
	esac
done
case $OUT in text | json) ;; *) echo "hold-cluster: -o must be text or json" >&2; exit 2 ;; esac
for v in NODES SESSIONS_PER_NODE CONCURRENCY; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "hold-cluster: $v must be a positive integer, not '${!v}'" >&2; exit 2; }
done
[ -x "$BIN" ] || { echo "hold-cluster: $BIN not found (make build)" >&2; exit 2; }
for c in redis-server redis-cli jq curl; do
	command -v $c >/dev/null || { echo "hold-cluster: $c is not on PATH" >&2; exit 2; }
done
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
TIME=
if /usr/bin/time -f '%e' -o /dev/null true 2>/dev/null; then TIME=/usr/bin/time; fi

log() { echo "hold-cluster: $*" >&2; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/hold-cluster.XXXXXX")
cfg=$dir/config
mkdir -p "$cfg"
redis_pid= mon_pid=
node_pids=() gen_pids=()

# children of a process started here (the generator under GNU time)
kids() { cat /proc/"$1"/task/*/children 2>/dev/null || true; }

stop_pid() { # stop_pid PID: SIGTERM, up to 10 s, then SIGKILL
	local p=$1 i
	kill -0 "$p" 2>/dev/null || return 0
	kill -TERM "$p" 2>/dev/null || true
	for i in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
}

cleanup() {
	local rc=$? p
	trap - EXIT INT TERM
	[ -n "$mon_pid" ] && stop_pid "$mon_pid"
	for p in "${gen_pids[@]}"; do
		for k in $(kids "$p"); do kill -TERM "$k" 2>/dev/null || true; done
		stop_pid "$p"
	done
	for p in "${node_pids[@]}"; do stop_pid "$p"; done
	[ -n "$redis_pid" ] && stop_pid "$redis_pid"
	if [ -n "$KEEP" ]; then mkdir -p "$KEEP" && cp -r "$dir"/. "$KEEP"/ && rm -rf "$KEEP/config" && log "logs and results kept in $KEEP"; fi
	rm -rf "$dir"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# --- Redis on a free loopback port ------------------------------------------
for try in $(seq 20); do
	port=$((20000 + RANDOM % 30000))
	redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --save '' --appendonly no \
		--daemonize no --logfile "$dir/redis.log" &
	redis_pid=$!
	ok=
	for i in $(seq 50); do
		kill -0 "$redis_pid" 2>/dev/null || break
		if [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ]; then ok=1; break; fi
		sleep 0.1
	done
	[ -n "$ok" ] && break
	stop_pid "$redis_pid"; redis_pid=
done
[ -n "$redis_pid" ] || { log "could not start redis-server (see $dir/redis.log)"; exit 1; }
store=redis://127.0.0.1:$port/0
log "redis-server pid $redis_pid on 127.0.0.1:$port"

# --- the nodes -----------------------------------------------------------------
. "$(dirname "$0")/start-serve.sh"
serve_args=(--store "$store")
[ -n "$HELLO" ] && serve_args+=(--hello-interval "$HELLO")
ws=()
start_node() { # start_node I
	serve_start "$BIN" "$cfg" "$dir/node$1" "${serve_args[@]}"
	node_pids[$1]=$SERVE_PID
}
wait_node() { # wait_node I: its ready line's ws URL into ws[I]
	serve_wait "$dir/node$1" "${node_pids[$1]}" || { log "node $1 did not start"; exit 1; }
	ws[$1]=$SERVE_WS
	log "node $1 pid ${node_pids[$1]} on ${ws[$1]}"
}
start_node 1
wait_node 1 # it creates the dev app the others and the generators use
for n in $(seq 2 "$NODES"); do start_node "$n"; done
for n in $(seq 2 "$NODES"); do wait_node "$n"; done

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
redis_mem() { redis-cli -p "$port" info memory | tr -d '\r' | sed -n 's/^used_memory:\([0-9]*\)$/\1/p'; }
# a node's sessions, or nothing when /debug/stats did not answer in time
node_sessions() { curl -fsS --max-time 5 "${ws[$1]/ws:/http:}/debug/stats" 2>/dev/null | jq -r '.sessions // empty' 2>/dev/null || true; }

sleep 1 # the nodes' first heartbeats
redis_base=$(redis_mem)
declare -A cpu0
for n in $(seq "$NODES"); do cpu0[node$n]=$(cpu_ticks "${node_pids[$n]}"); done
cpu0[redis]=$(cpu_ticks "$redis_pid")

# --- the generators --------------------------------------------------------------
target=$((NODES * SESSIONS_PER_NODE))
log "holding $NODES × $SESSIONS_PER_NODE = $target sessions for $DURATION${HELLO:+ (hello $HELLO)}"
t_start=$(date +%s.%N)
for n in $(seq "$NODES"); do
	args=(bench hold --endpoint "${ws[$n]}" --sessions "$SESSIONS_PER_NODE" --duration "$DURATION"
		--user-prefix "node$n-" --concurrency "$CONCURRENCY" --server-pid "${node_pids[$n]}" -o json)
	if [ -n "$TIME" ]; then
		CHATCTL_CONFIG_DIR=$cfg $TIME -f '%e %U %S %M' -o "$dir/gen$n.time" "$BIN" "${args[@]}" \
			>"$dir/gen$n.json" 2>"$dir/gen$n.log" &
	else
		CHATCTL_CONFIG_DIR=$cfg "$BIN" "${args[@]}" >"$dir/gen$n.json" 2>"$dir/gen$n.log" &
	fi
	gen_pids[$n]=$!
done

# --- the monitor: every 2 s, t, load, sessions on the nodes (-1: a node did
# not answer), Redis memory, CPU ticks of nodes, generators, Redis, machine,
# generators holding (past their ramp: their progress line reads
# "hold: ELAPSED/DURATION", ELAPSED short of DURATION), generators alive
monitor() {
	local n s tot nt gt p miss ramped alive last
	while :; do
		tot=0 nt=0 gt=0 miss= ramped=0 alive=0
		for n in $(seq "$NODES"); do
			s=$(node_sessions "$n"); [ -n "$s" ] || miss=1; tot=$((tot + ${s:-0}))
			nt=$((nt + $(cpu_ticks "${node_pids[$n]}")))
			for p in "${gen_pids[$n]}" $(kids "${gen_pids[$n]}"); do gt=$((gt + $(cpu_ticks "$p"))); done
			last=$(tail -c 400 "$dir/gen$n.log" 2>/dev/null | tr '\r' '\n' | grep -a . | tail -1 || true)
			[[ $last =~ ^hold:\ ([0-9][^/ ]*)/([^ ]+) && ${BASH_REMATCH[1]} != "${BASH_REMATCH[2]}" ]] && ramped=$((ramped + 1))
			kill -0 "${gen_pids[$n]}" 2>/dev/null && alive=$((alive + 1))
		done
		[ -z "$miss" ] || tot=-1
		echo "$(date +%s.%N) $(cut -d' ' -f1 /proc/loadavg) $tot $(redis_mem) $nt $gt $(cpu_ticks "$redis_pid") $(awk '/^cpu /{print $2+$3+$4+$6+$7+$8}' /proc/stat) $ramped $alive"
		sleep 2
	done
}
monitor >"$dir/monitor.txt" 2>/dev/null &
mon_pid=$!

gen_rc=()
for n in $(seq "$NODES"); do
	rc=0; wait "${gen_pids[$n]}" || rc=$?
	gen_rc[$n]=$rc
done
t_end=$(date +%s.%N)
stop_pid "$mon_pid"; mon_pid=
gen_pids=()

# --- the report --------------------------------------------------------------------
hz=$(getconf CLK_TCK)
nodes_json=$dir/nodes.json
: >"$nodes_json"
for n in $(seq "$NODES"); do
	g=$(jq -c '.result // empty' "$dir/gen$n.json" 2>/dev/null || true)
	[ -n "$g" ] || { g=null; log "generator $n gave no result (exit ${gen_rc[$n]}):"; tail -5 "$dir/gen$n.log" >&2; }
	tm=null
	if [ -s "$dir/gen$n.time" ]; then
		tm=$(tail -1 "$dir/gen$n.time" | awk '{printf "{\"wall_s\":%s,\"cpu_s\":%.2f,\"max_rss_kib\":%s}", $1, $2+$3, $4}')
	fi
	jq -n --argjson node "$n" --arg ws "${ws[$n]}" --argjson pid "${node_pids[$n]}" \
		--argjson cpu "$(( $(cpu_ticks "${node_pids[$n]}") - ${cpu0[node$n]} ))" --argjson hz "$hz" \
		--argjson rss "$(awk '/^VmHWM/{print $2}' /proc/"${node_pids[$n]}"/status 2>/dev/null || echo 0)" \
		--argjson rc "${gen_rc[$n]}" --argjson gen "$g" --argjson gtime "$tm" \
		'{node:$node, ws:$ws, pid:$pid, cpu_s:($cpu/$hz), max_rss_kib:$rss,
		  generator:{exit:$rc, time:$gtime, result:$gen}}' >>"$nodes_json"
done
redis_cpu=$(( $(cpu_ticks "$redis_pid") - ${cpu0[redis]} ))

jq -s \
	--argjson target "$target" --argjson per "$SESSIONS_PER_NODE" --arg duration "$DURATION" \
	--arg hello "${HELLO:-default}" --argjson hz "$hz" --argjson redis_base "${redis_base:-0}" \
	--argjson redis_cpu "$redis_cpu" --argjson t0 "$t_start" --argjson t1 "$t_end" \
	--rawfile mon "$dir/monitor.txt" --argjson cores "$(nproc)" '
	def mon: $mon | split("\n") | map(select(length > 0) | split(" ") | map(tonumber)
		| {t:.[0], load1:.[1], sessions:.[2], redis:.[3], nodes:.[4], gens:.[5], redis_cpu:.[6], machine:.[7], ramped:.[8], alive:.[9]});
	def rate(a; b; f): if a == null or b == null or (b.t - a.t) <= 0 then null
		else (((b|f) - (a|f)) / $hz / (b.t - a.t) * 100 | round / 100) end;
	. as $nodes | (mon) as $m
	| ($m | map(.sessions) | max // 0) as $peak
	| ($m | map(select(.sessions == $peak)) | last) as $pk
	# all held: every generator past its ramp and none ended yet
	| ($m | map(select(.ramped == ($nodes|length) and .alive == ($nodes|length)))) as $win
	| ($win | first) as $full | ($win | last) as $fullend
	| ($win | map(.sessions) | map(select(. >= 0))) as $winsess
	| {
		nodes: $nodes,
		parameters: {nodes: ($nodes|length), sessions_per_node: $per, duration: $duration, hello_interval: $hello},
		total: {
			sessions: $target,
			logged_in: ($nodes | map(.generator.result.logged_in // 0) | add),
			held_peak: $peak,
			held_while_all_held: (if ($winsess|length) > 0 then {min: ($winsess|min), max: ($winsess|max), samples: ($winsess|length)} else null end),
			online_at_end: ($nodes | map(.generator.result.online_at_end // 0) | add),
			unexpected_disconnects: ($nodes | map(.generator.result.unexpected_disconnects // 0) | add),
			login_errors: ($nodes | map(.generator.result.login_errors // {} | to_entries[]) | group_by(.key) | map({key:.[0].key, value:(map(.value)|add)}) | from_entries),
			hello_errors: ($nodes | map(.generator.result.hello_errors // 0) | add),
			heartbeat_timeouts: ($nodes | map(.generator.result.heartbeat_timeouts // 0) | add),
			ramp_seconds_all_held: (if $full then (($full.t - $t0) * 10 | round / 10) else null end),
			ramp_seconds_max_generator: ($nodes | map(.generator.result.ramp_seconds // 0) | max),
			wall_seconds: (($t1 - $t0) * 10 | round / 10),
			cpu_seconds: {nodes: ($nodes | map(.cpu_s) | add), generators: ($nodes | map(.generator.time.cpu_s // 0) | add), redis: ($redis_cpu / $hz)},
			cores: $cores,
			cores_used_while_all_held: (if $full and $fullend and $fullend.t > $full.t then
				{nodes: rate($full; $fullend; .nodes), generators: rate($full; $fullend; .gens),
				 redis: rate($full; $fullend; .redis_cpu), machine_all_processes: rate($full; $fullend; .machine),
				 seconds: (($fullend.t - $full.t) | round)} else null end),
			load1_max: ($m | map(.load1) | max),
			redis: {used_memory_before: $redis_base, used_memory_held: ($pk.redis // null),
				bytes_per_session: (if $pk and $peak > 0 then (($pk.redis - $redis_base) / $peak | round) else null end)}
		}
	}' "$nodes_json" >"$dir/report.json"

if [ "$OUT" = json ]; then
	cat "$dir/report.json"
else
	jq -r '
	def kib: if . == null or . == 0 then "-" else (. / 1024 * 10 | round / 10 | tostring) end;
	def errs: if . == null or length == 0 then "none" else (to_entries | map("\(.key) ×\(.value)") | join(", ")) end;
	(["node","ws","logged in","online@end","disconn","login errors","ramp s","login p99 ms","srv heap+stk KiB/s","srv RSS KiB/s","goroutines/s","gen KiB/s","gen maxRSS MiB","node CPU s","gen CPU s","hellos","hb timeouts"] | @tsv),
	(.nodes[] | . as $n | .generator.result as $r | [
		$n.node, $n.ws, ($r.logged_in // "-"), ($r.online_at_end // "-"), ($r.unexpected_disconnects // "-"),
		($r.login_errors | errs), ($r.ramp_seconds // 0 | . * 10 | round / 10),
		($r.login_latency.p99_ms // "-"), ($r.server_memory.bytes_per_session | kib),
		($r.server_memory.rss_bytes_per_session | kib), ($r.server_memory.goroutines_per_session // "-"),
		($r.loadgen_bytes_per_session | kib), (($n.generator.time.max_rss_kib // 0) / 1024 | round),
		($n.cpu_s | . * 10 | round / 10), ($n.generator.time.cpu_s // "-" | tostring), ($r.hellos // "-"), ($r.heartbeat_timeouts // "-")
	] | @tsv)' "$dir/report.json" | column -t -s $'\t'
	echo
	jq -r '.total as $t | .parameters as $p |
	"nodes × sessions          \($p.nodes) × \($p.sessions_per_node) = \($t.sessions)  (duration \($p.duration), hello \($p.hello_interval))",
	"logged in                 \($t.logged_in)   login errors: \($t.login_errors | if length == 0 then "none" else (to_entries | map("\(.key) ×\(.value)") | join(", ")) end)",
	"held at once (peak)       \($t.held_peak)   (sum of the nodes /debug/stats sessions, every 2 s)",
	"online at end             \($t.online_at_end)",
	"unexpected disconnects    \($t.unexpected_disconnects)   hello/heartbeat errors \($t.hello_errors)   heartbeat timeouts \($t.heartbeat_timeouts)",
	"ramp                      \(if $t.ramp_seconds_all_held then "\($t.ramp_seconds_all_held) s from the generators start to every generator holding" else "some generator never finished its ramp" end) (slowest generator: \($t.ramp_seconds_max_generator * 10 | round / 10) s, UserSig minting excluded)",
	"all holding at once       \(if $t.cores_used_while_all_held then "\($t.cores_used_while_all_held.seconds) s, sessions on the nodes min \($t.held_while_all_held.min // "?") max \($t.held_while_all_held.max // "?")" else "-" end)",
	"CPU seconds               nodes \($t.cpu_seconds.nodes * 10 | round / 10)  generators \($t.cpu_seconds.generators * 10 | round / 10)  redis \($t.cpu_seconds.redis * 10 | round / 10)  over \($t.wall_seconds) s wall, \($t.cores) cores",
	"cores used, all holding   \(if $t.cores_used_while_all_held then ($t.cores_used_while_all_held | "nodes \(.nodes)  generators \(.generators)  redis \(.redis)  whole machine \(.machine_all_processes)  (over \(.seconds) s)") else "-" end)",
	"load (1 min) max          \($t.load1_max)",
	"redis used_memory         \($t.redis.used_memory_before) → \($t.redis.used_memory_held) B: \($t.redis.bytes_per_session) B per online session"
	' "$dir/report.json"
fi

ok=$(jq '.total | (.logged_in == .sessions and .unexpected_disconnects == 0)' "$dir/report.json")
[ "$ok" = true ]
