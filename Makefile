# gomem: convenience targets around CMake. `make demo` and `make test` are the
# two commands of the README.
JOBS ?= 2
CMAKE ?= cmake
BUILD ?= build

.PHONY: all demo test test-release test-debug test-asan test-tsan test-valgrind bench bench-quick bench-smoke format clean deps

all:
	$(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	$(CMAKE) --build $(BUILD) -j$(JOBS)

# The main demonstration: real programs running on gomem, statistics at exit.
demo: all
	examples/demo.sh $(BUILD)

# Every test, in every build: release (with the drop-in override tests),
# debug (invariant validators on every operation), ASan+UBSan, TSan, and
# valgrind memcheck.
test: deps test-release test-debug test-asan test-tsan test-valgrind
	@echo "gomem: all test builds passed"

test-release:
	$(CMAKE) -S . -B build-test -DCMAKE_BUILD_TYPE=Release -DGOMEM_WERROR=ON >/dev/null
	$(CMAKE) --build build-test -j$(JOBS)
	cd build-test && ctest --output-on-failure -j$(JOBS)

test-debug:
	$(CMAKE) -S . -B build-debug -DCMAKE_BUILD_TYPE=Debug -DGOMEM_WERROR=ON >/dev/null
	$(CMAKE) --build build-debug -j$(JOBS)
	cd build-debug && ctest --output-on-failure -j$(JOBS)

test-asan:
	$(CMAKE) -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGOMEM_SANITIZE=address -DGOMEM_DEBUG_LEVEL=1 -DGOMEM_WERROR=ON >/dev/null
	$(CMAKE) --build build-asan -j$(JOBS)
	cd build-asan && ctest --output-on-failure -j$(JOBS)

test-tsan:
	$(CMAKE) -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGOMEM_SANITIZE=thread -DGOMEM_DEBUG_LEVEL=1 -DGOMEM_WERROR=ON >/dev/null
	$(CMAKE) --build build-tsan -j$(JOBS)
	cd build-tsan && ctest --output-on-failure -j$(JOBS)

test-valgrind:
	$(CMAKE) -S . -B build-valgrind -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGOMEM_SANITIZE=valgrind -DGOMEM_DEBUG_LEVEL=1 -DGOMEM_WERROR=ON >/dev/null
	$(CMAKE) --build build-valgrind -j$(JOBS)
	cd build-valgrind && ctest --output-on-failure -j$(JOBS)

# Installs what a fresh Debian machine lacks for the tests (as root only).
deps:
	@tools/install-deps.sh test

bench:
	bench/run.sh

bench-quick:
	bench/run.sh --quick

bench-smoke:
	bench/run.sh --smoke

format:
	clang-format -i src/*.c src/*.h include/*.h tests/*.c examples/*.c

clean:
	rm -rf build build-test build-debug build-asan build-tsan build-valgrind bench/out
