# chatctl: `make demo` runs the lifecycle end to end, `make test` the whole suite.
SHELL   := /bin/bash
GO      ?= go
BIN     := bin/chatctl
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# The commit too: Go's own stamp (vcs.revision) is missing where GOFLAGS
# has -buildvcs=false, as on our CI machine.
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -s -w -X chatctl/cmd.Version=$(VERSION) -X chatctl/cmd.Commit=$(COMMIT)
FUZZTIME ?= 5s
FUZZ_PKGS ?= ./pkg/sig
# The suite's whole output is kept here and scanned for secrets (secret-scan).
TESTOUT := bin/test-output

.PHONY: all build test gotest fuzz-short fuzz vet demo bench interop clean secret-scan

all: build

# Linked without cgo, so statically: a dynamically linked Go binary first
# runs ld.so, libc's start-up and cgo's thread setup, which cost more CPU
# than `chatctl whoami`'s own work (docs/BENCHMARKS.md, "CLI start").
# Nothing in chatctl needs cgo (Go's own DNS resolver, no os/user); the
# race detector does, so only this build goes without.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) .

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

# The whole suite: vet, Go tests with the race detector, a short fuzz run.
test: vet build gotest fuzz-short

# -v so that every log line of every test is in the output that secret-scan
# reads; the console gets the package summaries, or everything on failure.
gotest:
	@mkdir -p $(TESTOUT)
	@echo "$(GO) test -race -count=1 -timeout 8m -v ./... > $(TESTOUT)/go.log"
	@$(GO) test -race -count=1 -timeout 8m -v ./... > $(TESTOUT)/go.log 2>&1 || \
		{ grep -Ev '^=== (RUN|PAUSE|CONT|NAME)|^ *--- PASS' $(TESTOUT)/go.log; exit 1; }
	@grep -E '^(ok|FAIL|\?) ' $(TESTOUT)/go.log

# Short fuzz runs, part of `make test`: an execution count, not a duration.
# Go 1.26's fuzz coordinator can fail a target with a bare "context deadline
# exceeded" when a duration runs out while a worker is busy (golang/go#75804,
# fixed in Go 1.27); a count has no deadline to race. `make fuzz FUZZTIME=10m`
# for long runs.
FUZZSHORT ?= 30000x
fuzz-short:
	$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZSHORT)

# Every Fuzz target of every package in FUZZ_PKGS (mk/*.mk fragments add theirs).
fuzz:
	@for p in $(FUZZ_PKGS); do \
		for t in $$($(GO) test -list '^Fuzz' $$p | grep ^Fuzz); do \
			echo "fuzz $$p $$t $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$p || exit 1; \
		done; \
	done

clean:
	rm -rf bin

# Each area adds its own targets and prerequisites of test/bench/demo here.
include $(wildcard mk/*.mk)

# Last step of `make test`: no UserSig or A2Key anywhere in what the suite
# printed (Go tests with -v, the interop suite).
secret-scan:
	$(GO) run ./internal/secretscan/cmd $(TESTOUT)/*.log

test: secret-scan
