# Thin wrapper over CMake. `make demo` and `make test` are the two commands.
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: all deps build test demo asan clean format

all: build

deps:
	@scripts/deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_FLAGS)

demo: build
	@mkdir -p out
	$(BUILD)/bin/faultline run --junit out/junit.xml --html out/report.html --json out/report.json scenarios/demo scenarios/shop

asan:
	$(MAKE) BUILD=build-asan CMAKE_FLAGS="-DFL_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug" test

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan out
