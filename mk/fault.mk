# fault/: the fault and attack suite (docs/RELIABILITY.md). Its fast tests
# run in `make test` (go test ./...); its fuzz target (any frame against a
# real server) joins the short fuzz run. `make soak` runs the long versions:
# 5,000 logins killed with SIGKILL, 10,000 idle sockets with the login
# latency and server memory measured, and the whole suite 3 times.
FUZZ_PKGS += ./fault

SOAK_IDLE   ?= 10000
SOAK_LOGINS ?= 5000
SOAK_COUNT  ?= 3

.PHONY: soak
soak:
	FAULT_KILL_LOGINS=$(SOAK_LOGINS) $(GO) test -count=1 -timeout 20m -v -run 'TestKillMidLogins' ./fault
	FAULT_IDLE=$(SOAK_IDLE) $(GO) test -count=1 -timeout 20m -v -run 'TestHostileTraffic' ./fault
	for a in idle loris rest flood hbflood; do \
		FAULT_IDLE=$(SOAK_IDLE) FAULT_ATTACKS=$$a $(GO) test -count=1 -timeout 20m -v -run 'TestHostileTraffic' ./fault || exit 1; \
	done
	$(GO) test -race -count=$(SOAK_COUNT) -timeout 30m ./fault
