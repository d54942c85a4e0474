# pkg/client: its inbound-frame fuzz target joins the short fuzz run of
# `make test`; `make bench` includes round trips against the real server.
FUZZ_PKGS += ./pkg/client

.PHONY: bench-client
bench-client:
	$(GO) test -run '^$$' -bench . -benchmem ./e2e

bench: bench-client
