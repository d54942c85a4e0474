# Side by side (docs/BENCHMARKS.md, "Goals: ratios"): one generator
# (`chatctl bench`, pkg/loadgen) against `chatctl serve` and what it is
# measured against, in one run, each server a fresh process per
# measurement, the systems interleaved round after round; medians, ranges
# and the ratios of the goals on stdout (markdown), progress on stderr.
# Benchmarks: not part of `make test` (internal/benchcmp,
# internal/benchfloor and pkg/loadgen's modes have their tests there).
#
#   make bench-floor   serve (also with --close sdk, and driven by a simple
#                      generator) beside the bare gorilla floor and the bare
#                      TCP floor (internal/benchfloor): logins/s, server CPU
#                      per login, RSS per held session. About 6 minutes.
#   make bench-peer    serve beside Centrifugo $(CENTRIFUGO_VERSION) (installed
#                      into bin/ from the Go module proxy, outside go.mod;
#                      HMAC JWT connect, 10 s pings), twice: listening on
#                      plain TCP as serve does (GODEBUG=multipathtcp=0, the
#                      goals' comparison) and as built (Go's default
#                      Multipath TCP listener): logins/s, CPU per login,
#                      RSS per held session, CPU per keep-alive. About 9
#                      minutes at 3 rounds (plus the first install).
#
#   make bench-peer BENCHCMP_ARGS='-rounds 5 -users 20000 -sessions 10000 -hold 30s'
#   make bench-hold    idle held sessions only (bench/hold.sh): RSS per
#                      session and CPU per keep-alive of serve beside the
#                      gorilla floor's RSS, 3 rounds. About 5 minutes.
#                      bench/hold.sh OLD NEW compares two builds in one run.
CENTRIFUGO_VERSION ?= v6.9.1
CENTRIFUGO         := bin/centrifugo
BENCHCMP_ARGS      ?=

.PHONY: bench-floor bench-peer bench-hold centrifugo-install benchcmp-tools

benchcmp-tools: build
	@echo "benchcmp: go build -o bin/benchfloor ./internal/benchfloor/cmd; go build -o bin/benchcmp ./internal/benchcmp/cmd" >&2
	@$(GO) build -o bin/benchfloor ./internal/benchfloor/cmd
	@$(GO) build -o bin/benchcmp ./internal/benchcmp/cmd

bench-floor: benchcmp-tools
	bin/benchcmp -set floor -chatctl $(BIN) -floor bin/benchfloor $(BENCHCMP_ARGS)

bench-hold: benchcmp-tools
	FLOOR=bin/benchfloor bench/hold.sh $(BIN)

# `go install pkg@version` builds outside any module: Centrifugo's
# dependencies stay out of chatctl's go.mod. The version is stamped as the
# release's goreleaser does (else `centrifugo version` says 0.0.0), which
# is how a bin/centrifugo of that version already is recognised and kept.
# The first build takes minutes (18 on a loaded 2-core machine).
CENTRIFUGO_PKG := github.com/centrifugal/centrifugo/v6
centrifugo-install:
	@if ! $(CENTRIFUGO) version 2>/dev/null | grep -qF 'Centrifugo $(CENTRIFUGO_VERSION) '; then \
		echo "centrifugo-install: GOBIN=$(abspath bin) $(GO) install -ldflags '-s -w -X $(CENTRIFUGO_PKG)/internal/build.Version=$(CENTRIFUGO_VERSION:v%=%)' $(CENTRIFUGO_PKG)@$(CENTRIFUGO_VERSION)" >&2; \
		GOBIN=$(abspath bin) $(GO) install -ldflags '-s -w -X $(CENTRIFUGO_PKG)/internal/build.Version=$(CENTRIFUGO_VERSION:v%=%)' $(CENTRIFUGO_PKG)@$(CENTRIFUGO_VERSION) || exit 1; \
	fi
	@$(CENTRIFUGO) version

bench-peer: benchcmp-tools centrifugo-install
	bin/benchcmp -set peer -chatctl $(BIN) -centrifugo $(CENTRIFUGO) $(BENCHCMP_ARGS)
