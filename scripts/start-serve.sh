# start-serve.sh: start `chatctl serve` on a free loopback port and read its
# ready line. Sourced by bash (mk/start.mk, mk/bench.mk,
# scripts/hold-cluster.sh), not run:
#
#   . scripts/start-serve.sh
#   trap 'serve_stop' EXIT
#   serve_up BIN CONFIG_DIR OUT [serve flags…] || exit 1   # SERVE_PID, SERVE_WS
#
# serve_start BIN CONFIG_DIR OUT [serve flags…]
#   starts `BIN serve --listen 127.0.0.1:0 -o json --log-level warn [flags…]`
#   with CHATCTL_CONFIG_DIR=CONFIG_DIR in the background, its stdout (the
#   ready line) in OUT.ready and its stderr in OUT.log; sets SERVE_PID.
# serve_wait OUT PID
#   waits up to 10 s for the ready line of the server PID started with OUT,
#   sets SERVE_WS to its "ws" URL; if none comes (or PID ends first) it
#   prints OUT.log on stderr, stops PID and returns 1.
# serve_up BIN CONFIG_DIR OUT [serve flags…]
#   serve_start then serve_wait.
# serve_stop [PID]
#   SIGTERM to PID (default SERVE_PID), then waits for it.

serve_start() {
	local bin=$1 cfg=$2 out=$3
	shift 3
	CHATCTL_CONFIG_DIR=$cfg "$bin" serve --listen 127.0.0.1:0 -o json --log-level warn "$@" \
		>"$out.ready" 2>"$out.log" &
	SERVE_PID=$!
}

serve_wait() {
	local out=$1 pid=$2 i u=
	for i in $(seq 100); do
		u=$(sed -n 's/.*"ws": *"\([^"]*\)".*/\1/p' "$out.ready" 2>/dev/null)
		[ -n "$u" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if [ -z "$u" ]; then
		echo "chatctl serve (pid $pid) gave no ready line:" >&2
		cat "$out.log" >&2
		serve_stop "$pid"
		return 1
	fi
	SERVE_WS=$u
}

serve_up() {
	serve_start "$@" && serve_wait "$3" "$SERVE_PID"
}

serve_stop() {
	local pid=${1:-${SERVE_PID:-}}
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}
