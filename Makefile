# Herald's front door. `make run` and `make test` work on a fresh Debian 12 machine.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
LISTEN ?= 127.0.0.1:8080

.PHONY: deps build run test unit integration fuzz clean

deps:
	@bash scripts/install-deps.sh

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

run: build
	@echo "herald: WebSocket clients connect to ws://$(LISTEN)/v1/ws, services POST to http://$(LISTEN)/v1/notifications"
	$(BUILD)/herald --listen $(LISTEN) --engine memory

unit: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

integration: build
	HERALD_BIN=$(abspath $(BUILD))/herald /usr/bin/python3 -m pytest -q tests/integration

test: unit integration

fuzz: deps
	bash scripts/fuzz.sh 30

clean:
	rm -rf $(BUILD)
