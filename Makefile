# Herald's front door. `make run` and `make test` work on a fresh Debian 12 machine.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
LISTEN ?= 127.0.0.1:8080

.PHONY: deps build run test unit integration interop fuzz fuzz-smoke bench bench-compare bench-charts test-sanitize clean

deps:
	@bash scripts/install-deps.sh

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

run: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS) --target herald
	@echo "herald: WebSocket clients connect to ws://$(LISTEN)/v1/ws, services POST to http://$(LISTEN)/v1/notifications"
	$(BUILD)/herald --listen $(LISTEN) --engine memory

unit: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# Debian's python3 (not a pyenv shim): it has python3-websockets and python3-pytest.
integration: build
	HERALD_BIN=$(abspath $(BUILD))/herald BEAST_CLIENT=$(abspath $(BUILD))/tests/beast_interop_client \
	  REDIS_SERVER=$$(command -v redis-server) /usr/bin/python3 -m pytest -q tests/integration

# Node's `ws` as an independent client of Herald's framing.
interop: build
	cd tests/interop/node && npm ci --no-audit --no-fund --loglevel=error && \
	  HERALD_BIN=$(abspath $(BUILD))/herald node --test interop.test.mjs

# A short libFuzzer run of every fuzz target (scripts/fuzz.sh; the long runs are `make fuzz`).
FUZZ_SMOKE_SECONDS ?= 15
FUZZ_SECONDS ?= 600
fuzz-smoke: deps
	bash scripts/fuzz.sh $(FUZZ_SMOKE_SECONDS)

test: fuzz-smoke unit interop test-js integration chaos test-sanitize

# The chaos test (docs/testing.md): 2,500 clients reconnecting at random to 3 heralds on Redis (AOF,
# fsync always) while instances and Redis are killed with SIGKILL; every notification answered 202
# must reach its client, in order. One JSON line of figures; a hard time limit.
.PHONY: chaos
CHAOS_TIMEOUT ?= 420
CHAOS_ARGS ?=
chaos: build
	HERALD_BIN=$(abspath $(BUILD))/herald REDIS_SERVER=$$(command -v redis-server) \
	  timeout -k 10 $(CHAOS_TIMEOUT) /usr/bin/python3 tests/chaos/chaos.py $(CHAOS_ARGS)

fuzz: deps
	bash scripts/fuzz.sh $(FUZZ_SECONDS)

# The unit and integration suites on an ASan+UBSan build (build-asan/), part of `make test`.
# Any report fails the run: UBSan is fatal (-fno-sanitize-recover=all), ASan aborts, and LeakSanitizer
# checks every process at exit (herald exits cleanly on SIGTERM and the harness fails a test whose
# herald exits non-zero). SANITIZE_PYTEST_ARGS narrows the integration suite if it must.
SANITIZE_ENV = ASAN_OPTIONS=detect_leaks=1:check_initialization_order=1:strict_init_order=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
SANITIZE_PYTEST_ARGS ?=
test-sanitize: deps
	cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHERALD_SANITIZE=ON -DHERALD_BENCH=OFF
	cmake --build build-asan -j $(JOBS)
	cd build-asan && $(SANITIZE_ENV) ctest --output-on-failure -j $(JOBS)
	$(SANITIZE_ENV) HERALD_BIN=$(abspath build-asan)/herald BEAST_CLIENT=$(abspath build-asan)/tests/beast_interop_client \
	  REDIS_SERVER=$$(command -v redis-server) /usr/bin/python3 -m pytest -q $(SANITIZE_PYTEST_ARGS) tests/integration

# The default load suite (memory and redis engines, storm, the Redis ceiling, the baseline beside
# herald; under 5 minutes on 2 cores): JSON lines and SVG charts in build/bench/.
bench: build
	bash bench/run.sh $(BUILD)

# Copies the charts of the last `make bench` into docs/bench/ (what the README shows).
bench-charts:
	mkdir -p docs/bench && cp $(BUILD)/bench/latency.svg $(BUILD)/bench/memory.svg $(BUILD)/bench/compare.svg docs/bench/

include mk/js.mk

# Herald beside the baseline it replaces (bench/baseline/: Node ws + ioredis), the same scenarios
# (notify flat out and at a fixed rate, idle memory, offline -> replay), 2 instances each on one
# local redis-server, in one run; JSON lines and ratios in build/bench/compare.jsonl.
bench-compare: build
	HERALD=$(abspath $(BUILD))/herald BENCH=$(abspath $(BUILD))/bench/herald-bench bash bench/baseline/compare.sh

clean:
	rm -rf $(BUILD)
