// fuzz_cov.c: the bounds of libFuzzer's inline 8-bit coverage counters, for
// fuzz_misuse (which copies a forked child's counters back to its parent).
// A separate file built without coverage instrumentation: a file that is
// instrumented and names these symbols itself loses its counters.
#include <stddef.h>
#include <stdint.h>

extern uint8_t fz_cov_start[] __asm__("__start___sancov_cntrs")
    __attribute__((weak, visibility("hidden")));
extern uint8_t fz_cov_stop[] __asm__("__stop___sancov_cntrs")
    __attribute__((weak, visibility("hidden")));

uint8_t *fz_cov_counters(size_t *len);
uint8_t *fz_cov_counters(size_t *len) {
  *len = fz_cov_start ? (size_t)(fz_cov_stop - fz_cov_start) : 0;
  return fz_cov_start;
}
