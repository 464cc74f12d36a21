// bits.h: bit helpers shared by every component, the page allocator included.
#ifndef GOMEM_BITS_H
#define GOMEM_BITS_H

#include <stdint.h>

// gm_popcount: population count without a libgcc call on baseline x86-64
// (which has no popcnt instruction): SWAR, a dozen ALU operations.
static inline __attribute__((always_inline)) unsigned gm_popcount(uint64_t x) {
#if defined(__POPCNT__) || !defined(__x86_64__)
  return (unsigned)__builtin_popcountll(x);
#else
  x = x - ((x >> 1) & 0x5555555555555555ull);
  x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
  x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
  return (unsigned)((x * 0x0101010101010101ull) >> 56);
#endif
}

#endif // GOMEM_BITS_H
