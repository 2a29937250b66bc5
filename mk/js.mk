# The JavaScript client SDK (clients/js), its Node tests against a real herald, and the browser
# demo test in headless Chromium (tests/browser). Included by the top-level Makefile; also runs
# alone as `make -f mk/js.mk test-js` from the repository root.
BUILD ?= build
JS_ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
JS_HERALD_BIN ?= $(abspath $(JS_ROOT)/$(BUILD))/herald
NPM_CI = npm ci --no-audit --no-fund --loglevel=error

.PHONY: test-js js-deps js-build

# Debian's chromium (playwright's own browser download does not work here) and the npm packages.
js-deps:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium; fi; }
	cd $(JS_ROOT)/clients/js && $(NPM_CI)
	cd $(JS_ROOT)/tests/browser && $(NPM_CI)

# `npm ci` already runs `prepare` (tsc); this rebuilds after source edits.
js-build: js-deps
	cd $(JS_ROOT)/clients/js && npm run --silent build

test-js: js-build
	@test -x $(JS_HERALD_BIN) || $(MAKE) -C $(JS_ROOT) -f Makefile build BUILD=$(BUILD)
	cd $(JS_ROOT)/clients/js && HERALD_BIN=$(JS_HERALD_BIN) node --test test/*.test.mjs
	cd $(JS_ROOT)/tests/browser && HERALD_BIN=$(JS_HERALD_BIN) node --test demo.test.mjs
