# Redis for the multi-node backend (docs/MULTINODE.md). `make test` runs the
# Redis store and bus tests against a real redis-server: the one REDIS_URL
# names, else one started here on a free loopback port (installed with apt
# if missing) and stopped afterwards, even when the tests fail.
# (Plain `go test ./...` starts its own redis-server from PATH, or skips.)
#
#   make redis-install install redis-server with apt if it is not on PATH
#   make redis-up      start one; prints its URL, also in $(REDIS_DIR)/url
#   make redis-down    stop it
#   make test-redis    redis-up, the tests with REDIS_URL, redis-down
#   make bench-redis   store ops/s, kick latency between two buses, Redis memory
#                      per online session (REDIS_MEM_N sessions' keys, default 100000)
REDIS_DIR  ?= $(CURDIR)/bin/redis
REDIS_PKGS := ./pkg/server/store/redis/... ./pkg/server/redisbus ./pkg/server/cluster
REDIS_MEM_N ?= 100000

.PHONY: redis-up redis-down test-redis bench-redis
.PHONY: redis-install

# redis-server on PATH (the interop suite starts its own, mk/interop.mk).
redis-install:
	@command -v redis-server >/dev/null || { \
		echo "redis-server not found: apt-get install redis-server" >&2; \
		apt-get update -qq && apt-get install -y -qq redis-server >&2; \
	}; \
	command -v redis-server >/dev/null || { echo "redis-install: redis-server still not on PATH" >&2; exit 1; }

redis-up:
	@if [ -n "$(REDIS_URL)" ]; then echo "$(REDIS_URL)"; exit 0; fi; \
	set -e; \
	command -v redis-server >/dev/null || (apt-get update -qq && apt-get install -y -qq redis-server) >&2; \
	mkdir -p $(REDIS_DIR); \
	if [ -s $(REDIS_DIR)/pid ] && kill -0 $$(cat $(REDIS_DIR)/pid) 2>/dev/null; then cat $(REDIS_DIR)/url; exit 0; fi; \
	for try in 1 2 3 4 5 6 7 8; do \
		port=$$(( 20000 + $$(od -An -N2 -tu2 /dev/urandom) % 40000 )); \
		rm -f $(REDIS_DIR)/pid; \
		redis-server --port $$port --bind 127.0.0.1 --save '' --appendonly no \
			--daemonize yes --pidfile $(REDIS_DIR)/pid --dir $(REDIS_DIR) \
			--logfile $(REDIS_DIR)/redis.log || continue; \
		for i in $$(seq 50); do [ -s $(REDIS_DIR)/pid ] && break; sleep 0.1; done; \
		pid=$$(cat $(REDIS_DIR)/pid 2>/dev/null || true); \
		for i in $$(seq 50); do \
			got=$$(redis-cli -p $$port info server 2>/dev/null | sed -n 's/^process_id:\([0-9]*\).*/\1/p'); \
			[ -n "$$got" ] && break; sleep 0.1; \
		done; \
		if [ -n "$$pid" ] && [ "$$got" = "$$pid" ]; then \
			echo "redis://127.0.0.1:$$port/0" > $(REDIS_DIR)/url; cat $(REDIS_DIR)/url; exit 0; \
		fi; \
		[ -n "$$pid" ] && kill $$pid 2>/dev/null || true; \
	done; \
	echo "redis-up: could not start redis-server (see $(REDIS_DIR)/redis.log)" >&2; exit 1

redis-down:
	@if [ -s $(REDIS_DIR)/pid ]; then \
		pid=$$(cat $(REDIS_DIR)/pid); kill $$pid 2>/dev/null || true; \
		for i in $$(seq 50); do kill -0 $$pid 2>/dev/null || break; sleep 0.1; done; \
	fi; \
	rm -rf $(REDIS_DIR)

test-redis:
	@set -e; url="$(REDIS_URL)"; \
	if [ -z "$$url" ]; then \
		trap '$(MAKE) --no-print-directory redis-down' EXIT INT TERM; \
		url=$$($(MAKE) --no-print-directory redis-up); \
	fi; \
	echo "REDIS_URL=$$url"; \
	REDIS_URL=$$url $(GO) test -race -count=1 $(REDIS_PKGS)

bench-redis:
	@set -e; url="$(REDIS_URL)"; \
	if [ -z "$$url" ]; then \
		trap '$(MAKE) --no-print-directory redis-down' EXIT INT TERM; \
		url=$$($(MAKE) --no-print-directory redis-up); \
	fi; \
	REDIS_URL=$$url $(GO) test -run '^$$' -bench 'Ops|CrossNode' -benchmem ./pkg/server/store/redis ./pkg/server/redisbus; \
	REDIS_URL=$$url $(GO) test -run '^$$' -bench 'Memory' -benchtime $(REDIS_MEM_N)x ./pkg/server/store/redis

test: test-redis
bench: bench-redis
