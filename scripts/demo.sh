#!/usr/bin/env bash
# make demo: the login lifecycle a user would try first, end to end, on the
# embedded server. Everything lives in a temp dir that is removed at the end.
set -euo pipefail
BIN=${BIN:-bin/chatctl}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
work=$(mktemp -d)
export CHATCTL_CONFIG_DIR=$work/config
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m$ %s\033[0m\n' "$*" >&2; }
run() { step "chatctl $*"; "$BIN" "$@"; }

# 1. the server, on a free port; its one JSON line says where it listens
step "chatctl serve --listen 127.0.0.1:0 -o json &"
mkfifo "$work/ready"
"$BIN" serve --listen 127.0.0.1:0 -o json >"$work/ready" 2>"$work/serve.log" &
pids+=($!)
read -r line <"$work/ready"
echo "$line"
ws=$(sed -E 's/.*"ws":"([^"]+)".*/\1/' <<<"$line")
export CHATCTL_ENDPOINT=$ws

# 2. log in, look around
run login alice
run whoami
run server-time

# 3. watch alice's events in the background
step "chatctl watch > events-laptop.jsonl &"
"$BIN" watch >"$work/laptop.jsonl" 2>"$work/laptop.err" & watch1=$!
"$BIN" watch --until SDK_READY --timeout 10s >/dev/null 2>&1 || true

# 4. alice again from a second profile: the first instance is kicked (multipleAccount)
run --profile phone login alice
set +e; wait "$watch1"; code=$?; set -e
echo "laptop watch exited $code (4 = kicked out)" >&2

# 5. a REST kick of the second instance (REST_API_Kick)
step "chatctl --profile phone watch > events-phone.jsonl &"
"$BIN" --profile phone watch >"$work/phone.jsonl" 2>"$work/phone.err" & watch2=$!
sleep 0.5
run admin kick alice
set +e; wait "$watch2"; code=$?; set -e
echo "phone watch exited $code (4 = kicked out)" >&2

# 6. whoami now knows why; log in again with a fresh UserSig and log out
set +e; run --profile phone whoami; echo "whoami exited $? (3 = not logged in)" >&2; set -e
run login alice
run logout

step "the event streams"
echo "# laptop" >&2; cat "$work/laptop.jsonl"
echo "# phone" >&2; cat "$work/phone.jsonl"
grep -q '"KICKED_OUT".*"multipleAccount"' "$work/laptop.jsonl"
grep -q '"KICKED_OUT".*"REST_API_Kick"' "$work/phone.jsonl"
echo "demo ok" >&2
