# pkg/server/rest: the REST handler's fuzz target joins the short fuzz run of
# `make test`; `make bench` includes the bolt store's benchmarks (fsync included).
FUZZ_PKGS += ./pkg/server/rest

.PHONY: bench-store
bench-store:
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/server/store/bolt

bench: bench-store
