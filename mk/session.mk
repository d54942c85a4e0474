# pkg/session: the session file parser joins the short fuzz run of `make test`;
# `make bench` includes the locked read-modify-write (fsync included) and read.
FUZZ_PKGS += ./pkg/session

.PHONY: bench-session
bench-session:
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/session

bench: bench-session
