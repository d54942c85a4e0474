# chatctl: `make demo` runs the lifecycle end to end, `make test` the whole suite.
GO      ?= go
BIN     := bin/chatctl
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X chatctl/cmd.Version=$(VERSION)
FUZZTIME ?= 5s

.PHONY: all build test gotest fuzz-short fuzz vet demo bench interop clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) .

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

# The whole suite: vet, Go tests with the race detector, a short fuzz run.
test: vet build gotest fuzz-short

gotest:
	$(GO) test -race -count=1 -timeout 8m ./...

# Short fuzz runs, part of `make test`; `make fuzz FUZZTIME=10m` for long ones.
fuzz-short:
	$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME)

fuzz:
	@for t in $$($(GO) test -list '^Fuzz' ./pkg/sig | grep ^Fuzz); do \
		echo "fuzz pkg/sig $$t $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) ./pkg/sig || exit 1; \
	done

clean:
	rm -rf bin
