# Sessions held across several `chatctl serve` nodes sharing one Redis
# (docs/MULTINODE.md): one process is capped at ~19,900 by the open-file
# limit of 20,000, so `make bench-hold-cluster` holds 100,000 as
# 6 nodes × 16,700 on loopback, one `chatctl bench hold` per node, for 5
# minutes at the server's default hello interval (5 s): 7 minutes or more,
# so it is not part of `make bench`. (On the shared 2-core machine the nodes and generators run out of CPU long before 100,000: the
# ramp stalls with login timeouts; HOLD_SESSIONS=4000 holds 24,000 cleanly.)
# scripts/hold-cluster.sh starts and stops its own redis-server and nodes and
# prints a table per node and the totals. Override, e.g.:
#
#   make bench-hold-cluster HOLD_NODES=3 HOLD_SESSIONS=1000 HOLD_DURATION=20s
#   make bench-hold-cluster HOLD_HELLO=30s HOLD_OUTPUT=json
HOLD_NODES    ?= 6
HOLD_SESSIONS ?= 16700
HOLD_DURATION ?= 5m
HOLD_HELLO    ?=
HOLD_OUTPUT   ?= text

.PHONY: bench-hold-cluster
bench-hold-cluster: build
	NODES=$(HOLD_NODES) SESSIONS_PER_NODE=$(HOLD_SESSIONS) DURATION=$(HOLD_DURATION) HELLO=$(HOLD_HELLO) \
		BIN=$(BIN) scripts/hold-cluster.sh -o $(HOLD_OUTPUT)
