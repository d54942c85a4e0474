# pkg/sig against the official Go library, in the nested module bench/sig
# (keeps github.com/tencentyun/tls-sig-api-v2-golang out of the main go.mod).
# pkg/sig's own fuzz targets are in FUZZ_PKGS already (Makefile default).
SIG_BENCH_COUNT ?= 10

.PHONY: sig-equiv bench-sig bench

# Randomized equivalence with the official library: mint equal, each side
# verifies the other's UserSigs.
sig-equiv:
	cd bench/sig && $(GO) vet ./... && $(GO) test -count=1 ./...

test: sig-equiv

# Side-by-side benchmarks (docs/BENCHMARKS.md "UserSig" records the medians).
bench-sig:
	$(GO) test -run '^$$' -bench . -benchmem -count=$(SIG_BENCH_COUNT) ./pkg/sig
	cd bench/sig && $(GO) test -run '^$$' -bench . -benchmem -count=$(SIG_BENCH_COUNT) ./...

# `make bench` is the quick set (under 5 minutes): 3 runs of each instead
# of the 10 that docs/BENCHMARKS.md's medians come from.
bench: SIG_BENCH_COUNT = 3
bench: bench-sig
