# Interop suite: the unmodified official Web SDK (@tencentcloud/chat, pinned by
# interop/package-lock.json) driven in Node against bin/chatctl serve.
# multinode.test.cjs starts its own redis-server (redis-install puts it on PATH).
# --test-timeout bounds each test file too (node --test runs one file per
# process): multinode.test.cjs takes 40-75 s on the shared machine.
NPM  ?= npm
NODE ?= node

interop: build redis-install
	$(NPM) ci --prefix interop --no-audit --no-fund --loglevel=error
	@mkdir -p $(TESTOUT)
	set -o pipefail; CHATCTL_BIN=$(abspath $(BIN)) $(NODE) --test --test-timeout=240000 interop/ 2>&1 | tee $(TESTOUT)/interop.log

test: interop
