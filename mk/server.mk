# pkg/server: its fuzz targets (A2Key parser, head sniffer) and pkg/wire's (frames
# decoded as encoding/json does) join the short fuzz
# run of `make test`; `make bench` reports the memory one held session costs,
# a heartbeat round trip and a first login.
FUZZ_PKGS += ./pkg/server ./pkg/wire

.PHONY: bench-server
bench-server:
	$(GO) test -run '^$$' -bench 'HeldSession|Login' -benchtime 2000x -benchmem ./pkg/server
	$(GO) test -run '^$$' -bench 'Heartbeat' -benchmem ./pkg/server

bench: bench-server
