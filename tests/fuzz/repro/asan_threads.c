// asan_threads: with clang's (static) ASan runtime, gomem's pthread_create
// wrapper, resolving the real one with dlsym(RTLD_NEXT), reaches the C
// library's and bypasses ASan's interceptor (which lives in the same
// executable): ASan never registers the thread, and LeakSanitizer misses
// what only that thread holds. Any libFuzzer target that uses gomem ends
// with a false leak report: libFuzzer's RSS thread's std::thread state (32
// bytes, allocated in main). The same target without gomem exits cleanly.
// (gcc's shared libasan comes after the executable, so RTLD_NEXT finds its
// interceptor: test-asan is not affected.)
// From the repository root, after `make fuzz-build`:
//   f=tests/fuzz/repro/asan_threads.c
//   clang -fsanitize=fuzzer,address -Iinclude $f build-fuzz/libgomem.a -lpthread -ldl -o /tmp/r
//   /tmp/r -max_total_time=3
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>

#include "gomem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 0 && data[0] == 'a')
    gm_free(gm_malloc(size));
  return 0;
}
