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
	. scripts/start-serve.sh; trap 'serve_stop; rm -rf $$dir' EXIT INT TERM; \
	serve_up $(BIN) $$dir $$dir/serve || exit 1; ws=$$SERVE_WS; \
	export CHATCTL_CONFIG_DIR=$$dir CHATCTL_ENDPOINT=$$ws; set -e; \
	echo "== bench logins --users $(BENCH_LOGINS) ($$ws)"; \
	$(BIN) bench logins --users $(BENCH_LOGINS) --concurrency 64; \
	echo "== bench hold --sessions $(BENCH_SESSIONS) --duration $(BENCH_HOLD)"; \
	$(BIN) bench hold --sessions $(BENCH_SESSIONS) --duration $(BENCH_HOLD); \
	echo "== bench kick --sessions $(BENCH_SESSIONS) --kicks $(BENCH_KICKS)"; \
	$(BIN) bench kick --sessions $(BENCH_SESSIONS) --kicks $(BENCH_KICKS) --user-prefix kick-

bench: bench-load
