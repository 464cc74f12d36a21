# gomem: convenience targets around CMake. `make demo` and `make test` are the
# two commands of the README.
JOBS ?= 2
CMAKE ?= cmake
BUILD ?= build

.PHONY: bench-coro bench-bdw bench-pool bench-mb bench-prof all secure demo test test-release test-debug test-asan test-tsan test-valgrind test-nogc test-secure test-secure-tsan check-layers security fuzz fuzz-build bench bench-quick bench-smoke format clean deps

all:
	$(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	$(CMAKE) --build $(BUILD) -j$(JOBS)

# The hardened build (build-secure/libgomem-secure.so; README: "Hardened build").
secure:
	$(CMAKE) -S . -B build-secure -DCMAKE_BUILD_TYPE=Release -DGOMEM_SECURE=ON >/dev/null
	$(CMAKE) --build build-secure -j$(JOBS) --target gomem

# The main demonstration: real programs running on gomem, statistics at exit.
demo: all
	examples/demo.sh $(BUILD)

# Every test, in every build: the layering check, release (with the drop-in
# override tests), the allocator alone (no collector compiled in), debug
# (invariant validators and the lock-rank checker on every operation),
# ASan+UBSan, TSan, valgrind memcheck, and the hardened build.
test: deps check-layers test-release test-nogc test-debug test-asan test-tsan test-valgrind test-secure test-secure-tsan
	@echo "gomem: all test builds passed"

check-layers:
	tools/check-layers.sh

# run_suite BUILD_DIR CMAKE_OPTIONS: configure, build and run ctest in one build.
define run_suite
	$(CMAKE) -S . -B $(1) $(2) -DGOMEM_WERROR=ON >/dev/null
	$(CMAKE) --build $(1) -j$(JOBS)
	cd $(1) && ctest --output-on-failure -j$(JOBS)
endef

CHECKED = -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGOMEM_DEBUG_LEVEL=1

test-release:
	$(call run_suite,build-test,-DCMAKE_BUILD_TYPE=Release)

test-nogc:
	$(call run_suite,build-nogc,$(CHECKED) -DGOMEM_GC=OFF)

test-debug:
	$(call run_suite,build-debug,-DCMAKE_BUILD_TYPE=Debug)

test-asan:
	$(call run_suite,build-asan,$(CHECKED) -DGOMEM_SANITIZE=address)

test-tsan:
	$(call run_suite,build-tsan,$(CHECKED) -DGOMEM_SANITIZE=thread)

test-valgrind:
	$(call run_suite,build-valgrind,$(CHECKED) -DGOMEM_SANITIZE=valgrind)

test-secure:
	$(call run_suite,build-secure-test,$(CHECKED) -DGOMEM_SECURE=ON)

test-secure-tsan:
	$(call run_suite,build-secure-tsan,$(CHECKED) -DGOMEM_SECURE=ON -DGOMEM_SANITIZE=thread)

# mimalloc-bench's security suite (116 misuse programs, from
# ../shared/mimalloc-bench-security or $$GOMEM_SECURITY_SUITE): how many
# glibc, the default build and the hardened build catch.
security: all secure
	tools/security.sh $(BUILD)/libgomem.so build-secure/libgomem-secure.so || [ $$? -eq 77 ]

# The fuzz harnesses (tests/fuzz/README.md) as libFuzzer targets: clang,
# ASan+UBSan, gomem's asserts; each runs FUZZ_SECONDS on one core. New
# inputs go to build-fuzz/corpus/<name>, crashes to build-fuzz/crashes/.
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_CXX ?= clang++
FUZZERS = fuzz_malloc fuzz_gc fuzz_misuse

fuzz-build:
	$(CMAKE) -S . -B build-fuzz -DCMAKE_C_COMPILER=$(FUZZ_CC) -DCMAKE_CXX_COMPILER=$(FUZZ_CXX) \
	  $(CHECKED) -DGOMEM_SANITIZE=address -DGOMEM_LIBFUZZER=ON -DGOMEM_WERROR=ON >/dev/null
	$(CMAKE) --build build-fuzz -j$(JOBS) --target $(FUZZERS:%=%_lf)

# (detect_leaks=0: gomem's pthread_create wrapper starts threads behind ASan's
# back, so LeakSanitizer does not scan their stacks and reports what only
# they hold, such as libFuzzer's own thread state, as leaked.)
fuzz: fuzz-build
	@mkdir -p build-fuzz/crashes
	@failed=""; for f in $(FUZZERS); do \
	  mkdir -p build-fuzz/corpus/$$f; \
	  echo "== $$f: $(FUZZ_SECONDS) s"; \
	  ASAN_OPTIONS=detect_leaks=0 build-fuzz/tests/fuzz/$${f}_lf -max_total_time=$(FUZZ_SECONDS) \
	    -max_len=4096 -timeout=60 -rss_limit_mb=4096 -detect_leaks=0 -print_final_stats=1 \
	    -artifact_prefix=build-fuzz/crashes/$$f- \
	    build-fuzz/corpus/$$f tests/fuzz/corpus/$$f tests/fuzz/regressions/$$f || failed="$$failed $$f"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: crashed:$$failed (inputs in build-fuzz/crashes/)"; exit 1; fi

# Installs what a fresh Debian machine lacks for the tests (as root only).
deps:
	@tools/install-deps.sh test

# The benchmarks measure build/libgomem.so: build it first (from this tree).
bench: all
	bench/run.sh

bench-quick: all
	bench/run.sh --quick

bench-smoke: all
	bench/run.sh --smoke

# Boehm GC's clients on Debian's libgc and on gomem's libgc.so.1.
bench-bdw: all
	bench/bdw.sh

# gm_pool against gm_alloc and malloc, and a server-like run with and
# without a pool -> bench/results/pool.md.
bench-pool: all
	bench/pool.sh

# Coroutines against Boost.Context, ucontext and pthreads: switch, create,
# 1,000,000 idle coroutines, a collection with them -> bench/results/coro.md.
bench-coro: all
	bench/coro.sh

# What heap profile sampling costs malloc -> bench/results/prof.md.
bench-prof: all
	bench/prof.sh

# mimalloc-bench's offline programs on every allocator (MB_DIR: a checkout;
# else cloned when the network allows) -> bench/results/mb.md.
bench-mb: all
	bench/mb.sh

format:
	clang-format -i src/*.c src/*.h include/*.h tests/*.c tests/*.h examples/*.c

clean:
	rm -rf build build-test build-nogc build-debug build-asan build-tsan build-valgrind build-fuzz \
	  build-secure build-secure-test build-secure-tsan build-security bench/out
