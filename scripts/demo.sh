#!/usr/bin/env bash
# make demo: the login lifecycle a newcomer would try first, end to end, on a
# fresh `chatctl serve`. Every command is printed before it runs ("$ ...");
# its stdout follows as is, its messages (stderr) too. Everything lives in a
# temp dir that is removed at the end; the script exits non-zero as soon as
# something does not behave as described.
set -euo pipefail
BIN=${BIN:-bin/chatctl}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
work=$(mktemp -d)
export CHATCTL_CONFIG_DIR=$work/config
unset CHATCTL_PROFILE CHATCTL_ENDPOINT CHATCTL_OUTPUT CHATCTL_USER_SIG CHATCTL_SECRET_KEY CHATCTL_SDKAPPID
serve_pid= watch_pids=()
cleanup() {
  for p in "${watch_pids[@]}" $serve_pid; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

if [ -t 1 ]; then B=$'\033[1m' D=$'\033[2m' N=$'\033[0m'; else B= D= N=; fi
# say LINE...: a comment block, one "# LINE" per argument.
say() { echo; for l in "$@"; do printf '%s# %s%s\n' "$D" "$l" "$N"; done; }
show() { printf '%s$ %s%s\n' "$B" "$*" "$N"; }
die() { printf 'demo FAILED: %s\n' "$*" >&2; exit 1; }
# run CODE ARGS...: print and run `chatctl ARGS`, which must exit with CODE.
run() {
  local want=$1; shift
  show "chatctl $*"
  local code=0
  "$BIN" "$@" 2>&1 || code=$?
  [ "$code" = 0 ] || printf '%s(exit %s)%s\n' "$D" "$code" "$N"
  [ "$code" = "$want" ] || die "chatctl $* exited $code, want $want"
}
# wait_for FILE REGEXP: wait (at most 10 s) until a line of FILE matches.
wait_for() {
  for _ in $(seq 100); do
    grep -Eq "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  die "no line matching $2 in $1 after 10 s: $(cat "$1" 2>/dev/null)"
}
# wait_exit PID WANT NAME: wait (at most 10 s) for a background process.
wait_exit() {
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  local code=0
  wait "$1" || code=$?
  printf '%s(%s exited %s)%s\n' "$D" "$3" "$code" "$N"
  [ "$code" = "$2" ] || die "$3 exited $code, want $2"
}

say "1. A local chat server on a free port. It creates a dev app (SDKAppID + secret" \
    "   key) in the config dir, so login can mint UserSigs with no flags."
show "chatctl serve --listen 127.0.0.1:0 -o json &"
mkfifo "$work/ready"
"$BIN" serve --listen 127.0.0.1:0 --data-dir "$work/data" -o json >"$work/ready" 2>"$work/serve.log" &
serve_pid=$!
read -r line <"$work/ready" || die "serve did not start: $(cat "$work/serve.log")"
echo "$line"
ws=$(sed -E 's/.*"ws":"([^"]+)".*/\1/' <<<"$line")
export CHATCTL_ENDPOINT=$ws
show "export CHATCTL_ENDPOINT=$ws"

say "2. Log alice in (profile \"default\"), then look around."
run 0 login alice
run 0 login alice -o json
run 0 whoami
run 0 whoami --check
run 0 server-time
run 0 server-time --ms -o json

say "3. Watch alice's lifecycle events in the background (one JSON line each)."
show "chatctl watch > laptop.jsonl &"
"$BIN" watch >"$work/laptop.jsonl" 2>"$work/laptop.err" &
laptop=$!; watch_pids+=("$laptop")
wait_for "$work/laptop.jsonl" '"SDK_READY"'
cat "$work/laptop.jsonl"

say "4. alice logs in again from a second profile (another Web instance): the" \
    "   first instance is kicked out (multipleAccount); its watch exits 4."
run 0 --profile phone login alice
wait_exit "$laptop" 4 "laptop watch"
cat "$work/laptop.jsonl"
run 4 whoami

say "5. An admin kicks alice through the REST API (REST_API_Kick)."
show "chatctl --profile phone watch > phone.jsonl &"
"$BIN" --profile phone watch >"$work/phone.jsonl" 2>"$work/phone.err" &
phone=$!; watch_pids+=("$phone")
wait_for "$work/phone.jsonl" '"SDK_READY"'
run 0 admin kick alice
wait_exit "$phone" 4 "phone watch"
cat "$work/phone.jsonl"
run 4 --profile phone whoami

say "6. Log in again with a fresh UserSig; status lists every profile (exit 4:" \
    "   phone is still kicked), then log every profile out."
run 0 login alice
run 4 status
run 0 logout --all
run 3 whoami

say "7. Stop the server (SIGTERM: sockets closed, store flushed)."
show "kill -TERM $serve_pid"
kill -TERM "$serve_pid"
wait_exit "$serve_pid" 0 "chatctl serve"
serve_pid=

grep -q '"KICKED_OUT".*"multipleAccount"' "$work/laptop.jsonl" || die "laptop saw no KICKED_OUT multipleAccount"
grep -q '"KICKED_OUT".*"REST_API_Kick"' "$work/phone.jsonl" || die "phone saw no KICKED_OUT REST_API_Kick"
printf '\n%sdemo ok%s\n' "$B" "$N"
