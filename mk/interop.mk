# Interop suite: the unmodified official Web SDK (@tencentcloud/chat, pinned by
# interop/package-lock.json) driven in Node against bin/chatctl serve.
# multinode.test.cjs starts its own redis-server (redis-install puts it on PATH).
NPM  ?= npm
NODE ?= node

interop: build redis-install
	$(NPM) ci --prefix interop --no-audit --no-fund --loglevel=error
	@mkdir -p $(TESTOUT)
	set -o pipefail; CHATCTL_BIN=$(abspath $(BIN)) $(NODE) --test --test-timeout=120000 interop/ 2>&1 | tee $(TESTOUT)/interop.log

test: interop
