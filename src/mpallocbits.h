// mpallocbits.h: the page allocator's operations on one chunk's bitmaps and
// on summaries (mpallocbits.c, twin of Go's mpallocbits.go); used by
// mpagealloc.c only.
//
// Locking: none inside (the page allocator's caller holds mheap.lock).
#ifndef GOMEM_MPALLOCBITS_H
#define GOMEM_MPALLOCBITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mpagealloc.h"

#define PA_WORDS (PA_CHUNK_PAGES / 64)
#define PA_FIELD_BITS 21
#define PA_FIELD_MASK (((uint64_t)1 << PA_FIELD_BITS) - 1)
#define PA_ALL_FREE ((pa_sum_t)1 << 63)
#define PA_ADDR_LIMIT ((uintptr_t)1 << PA_ADDR_BITS)
#define PA_CHUNK_COUNT ((size_t)1 << (PA_ADDR_BITS - PA_CHUNK_SHIFT)) // 2^25
#define PA_L2_BITS 9
#define PA_L2_CHUNKS ((size_t)1 << PA_L2_BITS)
#define PA_L1_ENTRIES (PA_CHUNK_COUNT >> PA_L2_BITS)
#define PA_L2_BYTES (PA_L2_CHUNKS * sizeof(pa_chunk_t))
#define PA_NONE SIZE_MAX

#define PA_MIN(a, b) ((a) < (b) ? (a) : (b))
#define PA_MAX(a, b) ((a) > (b) ? (a) : (b))

unsigned pa_word_longest_free(uint64_t w);
uint64_t pa_word_runs(uint64_t x, unsigned n);
unsigned pa_chunk_inner_max(const uint64_t *a, unsigned floor);
pa_sum_t pa_chunk_summary(const pa_chunk_t *ch);
pa_sum_t pa_merge(const pa_sum_t *kids, size_t kid_pages);
size_t pa_chunk_find(const pa_chunk_t *ch, size_t n, unsigned from_word);
size_t pa_chunk_first_free(const pa_chunk_t *ch, unsigned from_word);
unsigned pa_chunk_set(pa_chunk_t *ch, unsigned b, unsigned k);
size_t pa_chunk_clear(pa_chunk_t *ch, unsigned b, unsigned k);

// pa_addr_shift is log2 of the bytes covered by one level-l summary entry.
static inline unsigned pa_addr_shift(int l) {
  return PA_CHUNK_SHIFT + PA_LEVEL_BITS * (PA_LEVELS - 1 - l);
}

// pa_chunk_shift is log2 of the chunks covered by one level-l entry.
static inline unsigned pa_chunk_shift(int l) {
  return PA_LEVEL_BITS * (PA_LEVELS - 1 - l);
}

// pa_level_pages is the number of pages covered by one level-l entry.
static inline size_t pa_level_pages(int l) {
  return (size_t)PA_CHUNK_PAGES << pa_chunk_shift(l);
}

static inline size_t pa_level_len(int l) {
  return (size_t)1 << (PA_L0_BITS + PA_LEVEL_BITS * l);
}

// pa_mask has n bits set from bit lo. Precondition: 1 <= n, lo + n <= 64.
static inline uint64_t pa_mask(unsigned lo, unsigned n) {
  return (n == 64 ? ~(uint64_t)0 : ((uint64_t)1 << n) - 1) << lo;
}

#endif // GOMEM_MPALLOCBITS_H
