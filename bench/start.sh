# start.sh: a fresh server for the scripts of bench/ (hold.sh, logins.sh).
# Sourced by bash, not run; needs jq, and tmp (a temporary directory), APP
# and KEY set by the script that sources it.
#
#   start SYSTEM     SYSTEM is a chatctl binary (its `serve`, store on disk
#                    in a directory of its own, a wshello every 10 s) or
#                    "floor" ($FLOOR ws, the bare gorilla floor); sets pid
#                    (the server's) and ep (its WebSocket endpoint).
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
