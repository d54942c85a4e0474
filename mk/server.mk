# pkg/server: its fuzz targets (A2Key parser, head sniffer) join the short fuzz
# run of `make test`; `make bench` reports the memory one held session costs.
FUZZ_PKGS += ./pkg/server

.PHONY: bench-server
bench-server:
	$(GO) test -run '^$$' -bench HeldSession -benchtime 2000x ./pkg/server

bench: bench-server
