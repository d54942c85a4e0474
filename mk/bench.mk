# chatctl bench (pkg/loadgen): `make bench-load` runs the quick load set
# against a fresh `chatctl serve` on a free loopback port (its own temp config
# dir): 20k logins, 10k sessions held 30 s, 1k REST kicks. Under 3 minutes;
# the long runs and the figures are in docs/BENCHMARKS.md ("Load"). Nothing is added to
# `test` (cmd/bench_test.go runs with `go test ./...`).
BENCH_LOGINS   ?= 20000
BENCH_SESSIONS ?= 10000
BENCH_HOLD     ?= 30s
BENCH_KICKS    ?= 1000

.PHONY: bench-load
bench-load: build
	@dir=$$(mktemp -d); \
	CHATCTL_CONFIG_DIR=$$dir $(BIN) serve --listen 127.0.0.1:0 -o json --log-level warn >$$dir/ready 2>$$dir/serve.log & pid=$$!; \
	trap 'kill $$pid 2>/dev/null; wait $$pid 2>/dev/null; rm -rf $$dir' EXIT INT TERM; \
	for i in $$(seq 100); do [ -s $$dir/ready ] && break; sleep 0.1; done; \
	ws=$$(sed -n 's/.*"ws":"\([^"]*\)".*/\1/p' $$dir/ready); \
	[ -n "$$ws" ] || { cat $$dir/serve.log; exit 1; }; \
	export CHATCTL_CONFIG_DIR=$$dir CHATCTL_ENDPOINT=$$ws; set -e; \
	echo "== bench logins --users $(BENCH_LOGINS) ($$ws)"; \
	$(BIN) bench logins --users $(BENCH_LOGINS) --concurrency 64; \
	echo "== bench hold --sessions $(BENCH_SESSIONS) --duration $(BENCH_HOLD)"; \
	$(BIN) bench hold --sessions $(BENCH_SESSIONS) --duration $(BENCH_HOLD); \
	echo "== bench kick --sessions $(BENCH_SESSIONS) --kicks $(BENCH_KICKS)"; \
	$(BIN) bench kick --sessions $(BENCH_SESSIONS) --kicks $(BENCH_KICKS) --user-prefix kick-

bench: bench-load
