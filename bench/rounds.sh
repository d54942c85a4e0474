# rounds.sh: the rounds of bench/hold.sh and bench/logins.sh. Sourced by
# bash, not run; needs jq. Sets APP, KEY (the app every server and the
# generator share), tmp (removed at exit, with the server still running),
# raises the open-file limit, and defines:
#
#   rounds MEASURE SYSTEM...   ROUNDS times, each SYSTEM (a chatctl binary,
#                              or "floor": $FLOOR ws, the bare gorilla floor)
#                              on a fresh server, the order turning each
#                              round: MEASURE SYSTEM ROUND PROTO, with pid
#                              and ep set (the server's pid and WebSocket
#                              endpoint), prints one JSON line, which is
#                              kept in $tmp/all.jsonl.
#   medians JQ                 per system, the medians (min–max) of the
#                              lines' fields: JQ formats one system's
#                              lines with f("field").
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

# start SYSTEM: a fresh server (serve's store on disk in a directory of its
# own, a wshello every 10 s); sets pid and ep.
start() {
	local d
	d=$(mktemp -d "$tmp/s-XXXX")
	if [ "$1" = floor ]; then
		"$FLOOR" ws >"$d/out" 2>"$d/err" &
	else
		CHATCTL_CONFIG_DIR=$d CHATCTL_SDKAPPID=$APP CHATCTL_SECRET_KEY=$KEY \
			"$1" serve --listen 127.0.0.1:0 -o json --log-level warn --hello-interval 10s \
			--data-dir "$d/data" >"$d/out" 2>"$d/err" &
	fi
	pid=$!
	for _ in $(seq 300); do
		[ -s "$d/out" ] && break
		sleep 0.1
	done
	ep=$(head -1 "$d/out")
	if [ "$1" != floor ]; then ep=$(jq -r .ws <<<"$ep"); fi
	[ -n "$ep" ] || { cat "$d/err" >&2; exit 1; }
}

rounds() {
	local measure=$1 r i n s proto
	shift
	local systems=("$@")
	n=${#systems[@]}
	for r in $(seq 0 $((ROUNDS - 1))); do
		for i in $(seq 0 $((n - 1))); do
			s=${systems[$(((i + r) % n))]}
			start "$s"
			proto=sdk
			[ "$s" = floor ] && proto=ws
			"$measure" "$s" "$r" "$proto" | tee -a "$tmp/all.jsonl"
			kill "$pid"
			wait "$pid" 2>/dev/null || true
			pid=
		done
	done
}

medians() {
	jq -rs 'def med: sort | if length % 2 == 1 then .[length/2|floor] else (.[length/2-1] + .[length/2]) / 2 end;
		def f(k): [.[] | .[k]] | "\(med) (\(min)–\(max))";
		group_by(.system)[] | '"$1" "$tmp/all.jsonl"
}
