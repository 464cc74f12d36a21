// test_gc.h: helpers shared by the collector's tests.
#ifndef GOMEM_TEST_GC_H
#define GOMEM_TEST_GC_H

#include <stdint.h>
#include <string.h>
#include <time.h>

#include "gomem.h"

#define NOINLINE __attribute__((noinline))

// clear_stack zeroes 64 KiB of dead stack below the caller, so stale words
// left by earlier calls do not keep dropped objects alive (roots are
// conservative); collect does that, then a full collection.
NOINLINE static void clear_stack(void) {
  volatile char pad[64 << 10];
  memset((char *)pad, 0, sizeof pad);
  __asm__ volatile("" : : "r"(pad) : "memory");
}

__attribute__((noinline, unused)) static void collect(void) {
  clear_stack();
  gm_collect();
}

static inline double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// Pattern words: pseudo-random 64-bit values, which never look like heap
// addresses (that would keep garbage alive).
static inline uint64_t pat(uint64_t seed, size_t i) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + i * 0xD6E8FEB86659FD93ull + 0x1234567;
  x ^= x >> 29;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 32;
  return x | 0x8000000000000000ull; // top bit set: not a user address
}

static inline void fill(void *p, size_t size, uint64_t seed) {
  uint64_t *w = p;
  for (size_t i = 0; i < size / 8; i++)
    w[i] = pat(seed, i);
  for (size_t i = size & ~(size_t)7; i < size; i++)
    ((unsigned char *)p)[i] = (unsigned char)(seed + i);
}

#endif // GOMEM_TEST_GC_H
