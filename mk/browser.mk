# Browser suite: the official Web SDK in Debian's headless Chromium, driven
# by playwright-core (pinned in interop/package-lock.json; it downloads no
# browser of its own). interop/browser.test.cjs is one of the interop files,
# so `make interop` (part of `make test`) runs it; this fragment only makes
# sure Chromium is there first.
#
#   make browser-install  install Debian's chromium with apt if it is missing
#   make browser          build, browser-install, npm ci, then only the browser file
export CHROMIUM ?= /usr/bin/chromium

# Playwright's own packages would fetch browser builds on install; the
# project uses Debian's.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: browser browser-install

browser-install:
	@test -x $(CHROMIUM) || { \
		echo "browser-install: $(CHROMIUM) not found: apt-get install chromium (Debian's, for the browser suite)" >&2; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2; \
	}; \
	test -x $(CHROMIUM) || { echo "browser-install: $(CHROMIUM) still missing" >&2; exit 1; }

interop: browser-install

browser: build browser-install
	$(NPM) ci --prefix interop --no-audit --no-fund --loglevel=error
	@mkdir -p $(TESTOUT)
	set -o pipefail; CHATCTL_BIN=$(abspath $(BIN)) $(NODE) --test --test-timeout=240000 interop/browser.test.cjs 2>&1 | tee $(TESTOUT)/browser.log
