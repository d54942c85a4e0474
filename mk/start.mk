# CLI start-up: `make bench-start` times whole chatctl processes against a
# minimal Go binary (`package main; func main() {}`, built the same way into
# bin/minimal): `chatctl version`, `chatctl whoami` (logged in), and
# `chatctl login` against a `chatctl serve` on loopback, all in a temp
# config dir. hyperfine (installed with apt-get when missing) reports the
# median wall time and the mean CPU time (user + system) of each, and the
# ratio to the minimal binary; without hyperfine (or with START_TOOL=loop) a
# shell loop reports mean wall times. The machine is shared: compare CPU
# time and ratios from one run, not wall times across runs. Figures and
# their reading: docs/BENCHMARKS.md ("CLI start").
START_RUNS       ?= 300
# hyperfine runs each command's runs in a row: START_ROUNDS rounds of
# START_RUNS/START_ROUNDS each spread a load change over every command.
START_ROUNDS     ?= 5
START_LOGIN_RUNS ?= 100
START_USER       ?= startbench
# hyperfine, or loop for the shell loop (mean wall time only)
START_TOOL       ?= hyperfine

# One line per command from hyperfine's JSON files (one per round): median
# wall time over every run, mean CPU time (user + system) over the rounds,
# each also as a ratio to the first command (the minimal binary).
START_JQ = [.[].results[]] | group_by(.command) | map({c: .[0].command, t: (map(.times[]) | sort), \
	cpu: (map(.user + .system) | add / length)}) | map(. + {med: .t[(.t | length) / 2 | floor]}) | \
	sort_by([(.c | test("minimal$$") | not), (.c | test(" login ")), .c]) as $$r | $$r[0] as $$m | \
	"command\tmedian wall ms\tratio\tmean CPU ms\tratio", \
	($$r[] | "\(.c | sub(".*/"; ""))\t\(.med * 100000 | round / 100)\t\(.med / $$m.med * 100 | round / 100)x\t\(.cpu * 100000 | round / 100)\t\(.cpu / $$m.cpu * 100 | round / 100)x")

.PHONY: bench-start start-minimal
start-minimal:
	@mkdir -p bin
	@d=$$(mktemp -d); printf 'package main\n\nfunc main() {}\n' > $$d/main.go; \
	(cd $$d && CGO_ENABLED=0 GO111MODULE=off $(GO) build -trimpath -ldflags '-s -w' -o $(abspath bin/minimal) main.go); \
	rc=$$?; rm -rf $$d; exit $$rc

bench-start: build start-minimal
	@[ "$(START_TOOL)" != hyperfine ] || command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine >/dev/null 2>&1 || \
		{ apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq hyperfine >/dev/null 2>&1; } || true
	@[ "$(START_TOOL)" != hyperfine ] || command -v jq >/dev/null || apt-get install -y -qq jq >/dev/null 2>&1 || true
	@set -e; bin=$(abspath $(BIN)); min=$(abspath bin/minimal); dir=$$(mktemp -d); \
	. scripts/start-serve.sh; trap 'serve_stop; rm -rf $$dir' EXIT INT TERM; \
	serve_up $$bin $$dir $$dir/serve || exit 1; ws=$$SERVE_WS; \
	for k in $$(env | sed -n 's/^\(CHATCTL_[A-Z_]*\)=.*/\1/p'); do unset $$k; done; \
	export CHATCTL_CONFIG_DIR=$$dir CHATCTL_ENDPOINT=$$ws; \
	$$bin login $(START_USER) >/dev/null; \
	echo "== start-up: $(START_RUNS) runs each in $(START_ROUNDS) rounds ($(START_LOGIN_RUNS) for login), $$(nproc) CPUs, load $$(cut -d' ' -f1-3 /proc/loadavg)"; \
	if [ "$(START_TOOL)" = hyperfine ] && command -v hyperfine >/dev/null && command -v jq >/dev/null; then \
		for r in $$(seq $(START_ROUNDS)); do \
			hyperfine -N --style none --warmup 10 --runs $$(( $(START_RUNS) / $(START_ROUNDS) )) --export-json $$dir/fast-$$r.json \
				"$$min" "$$bin version" "$$bin whoami" >/dev/null 2>$$dir/hf.err || { cat $$dir/hf.err; exit 1; }; \
		done; \
		hyperfine -N --style none --warmup 5 --runs $(START_LOGIN_RUNS) --prepare "$$bin logout" --export-json $$dir/login.json \
			"$$bin login $(START_USER)" >/dev/null 2>$$dir/hf.err || { cat $$dir/hf.err; exit 1; }; \
		jq -rs '$(START_JQ)' $$dir/fast-*.json $$dir/login.json | awk -F '\t' '{printf "%-30s %15s %7s %12s %7s\n", $$1, $$2, $$3, $$4, $$5}'; \
	else \
		echo "(shell loop: mean wall time of the whole batch, fork and exec from bash included)"; \
		batch() { n=$$1; shift; s=$$(date +%s%N); for i in $$(seq $$n); do "$$@" >/dev/null 2>&1 || true; done; e=$$(date +%s%N); echo $$(( (e - s) / n / 1000 )); }; \
		base=$$(batch $(START_RUNS) $$min); printf '%-30s %8s us\n' minimal $$base; \
		for c in version whoami; do m=$$(batch $(START_RUNS) $$bin $$c); \
			printf '%-30s %8s us  %s x\n' "chatctl $$c" $$m $$(awk -v a=$$m -v b=$$base 'BEGIN {printf "%.2f", a / b}'); done; \
		s=0; for i in $$(seq $(START_LOGIN_RUNS)); do $$bin logout >/dev/null 2>&1; t=$$(batch 1 $$bin login $(START_USER)); s=$$((s + t)); done; \
		printf '%-30s %8s us\n' "chatctl login $(START_USER)" $$((s / $(START_LOGIN_RUNS))); \
	fi

bench: bench-start
