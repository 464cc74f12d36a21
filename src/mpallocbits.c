// mpallocbits.c: a chunk's bitmaps and the summaries built from them (see
// mpagealloc.h for the design). A summary packs (start, max, end): free pages
// at the start of a range, the longest free run in it, free pages at its end.
#include "mpallocbits.h"
#include "bits.h"

// ---------------------------------------------------------------------------
// Summaries

pa_sum_t pa_pack(unsigned start, unsigned max, unsigned end) {
  if (max == PA_MAX_PACKED)
    return PA_ALL_FREE; // then start == end == max
  return (pa_sum_t)start | (pa_sum_t)max << PA_FIELD_BITS | (pa_sum_t)end << (2 * PA_FIELD_BITS);
}

unsigned pa_start(pa_sum_t s) {
  return s & PA_ALL_FREE ? PA_MAX_PACKED : (unsigned)(s & PA_FIELD_MASK);
}

unsigned pa_max(pa_sum_t s) {
  return s & PA_ALL_FREE ? PA_MAX_PACKED : (unsigned)(s >> PA_FIELD_BITS & PA_FIELD_MASK);
}

unsigned pa_end(pa_sum_t s) {
  return s & PA_ALL_FREE ? PA_MAX_PACKED : (unsigned)(s >> (2 * PA_FIELD_BITS) & PA_FIELD_MASK);
}

// pa_word_longest_free is the longest run of 0 bits in w.
// Precondition: w != 0 and w != ~0.
unsigned pa_word_longest_free(uint64_t w) {
  uint64_t x = ~w;
  unsigned best = 0;
  while (x) {
    x >>= __builtin_ctzll(x);           // bit 0 starts a run of ones
    unsigned len = __builtin_ctzll(~x); // < 64: x has a 0 above the run
    best = PA_MAX(best, len);
    x >>= len;
  }
  return best;
}

// pa_word_runs returns the positions p in x where bits p..p+n-1 are all set.
// Precondition: 1 <= n <= 64. Takes O(log n) steps.
uint64_t pa_word_runs(uint64_t x, unsigned n) {
  for (unsigned len = 1; len < n && x;) {
    unsigned step = PA_MIN(len, n - len); // x marks runs of len; extend by step
    x &= x >> step;
    len += step;
  }
  return x;
}

// pa_chunk_inner_max returns the longest run of 0 bits lying inside a single
// alloc word if that is more than floor, else floor. The common answer
// ("none longer") takes O(log floor) shift-and steps over all words at once.
unsigned pa_chunk_inner_max(const uint64_t *a, unsigned floor) {
  if (floor >= 63) // an in-word run is at most 63 pages (a 0 word is a 64-run)
    return floor;
  uint64_t x[PA_WORDS], any = 0;
  for (int i = 0; i < PA_WORDS; i++)
    x[i] = ~a[i];
  unsigned n = floor + 1;
  for (unsigned len = 1; len < n;) {
    unsigned step = PA_MIN(len, n - len);
    for (int i = 0; i < PA_WORDS; i++)
      x[i] &= x[i] >> step;
    len += step;
  }
  for (int i = 0; i < PA_WORDS; i++)
    any |= x[i];
  if (any == 0)
    return floor;
  for (int i = 0; i < PA_WORDS; i++)
    if (x[i])
      floor = PA_MAX(floor, pa_word_longest_free(a[i]));
  return floor;
}

// pa_chunk_summary computes a chunk's (start, max, end) a word at a time:
// runs that touch a word boundary come from ctz/clz, the rest from
// pa_chunk_inner_max.
pa_sum_t pa_chunk_summary(const pa_chunk_t *ch) {
  const uint64_t *a = ch->alloc;
  unsigned run = 0, max = 0, start = PA_CHUNK_PAGES + 1;
  for (int i = 0; i < PA_WORDS; i++) {
    uint64_t w = a[i];
    if (w == 0) {
      run += 64;
      continue;
    }
    unsigned head = run + (unsigned)__builtin_ctzll(w);
    if (start > PA_CHUNK_PAGES)
      start = head;
    max = PA_MAX(max, head);
    run = (unsigned)__builtin_clzll(w);
  }
  if (start > PA_CHUNK_PAGES)
    return pa_pack(PA_CHUNK_PAGES, PA_CHUNK_PAGES, PA_CHUNK_PAGES);
  max = pa_chunk_inner_max(a, PA_MAX(max, run));
  return pa_pack(start, max, run);
}

// pa_merge computes a parent summary from its 8 children, each covering
// kid_pages pages.
pa_sum_t pa_merge(const pa_sum_t *kids, size_t kid_pages) {
  size_t start = 0, max = 0, end = 0;
  bool prefix = true; // all children so far are entirely free
#pragma GCC unroll 8
  for (int i = 0; i < (1 << PA_LEVEL_BITS); i++) {
    pa_sum_t s = kids[i];
    size_t st, mx, en;
    if (s & PA_ALL_FREE) {
      st = mx = en = PA_MAX_PACKED;
    } else {
      st = s & PA_FIELD_MASK;
      mx = s >> PA_FIELD_BITS & PA_FIELD_MASK;
      en = s >> (2 * PA_FIELD_BITS);
    }
    if (prefix) {
      start += st;
      prefix = st == kid_pages;
    }
    max = PA_MAX(max, end + st);
    max = PA_MAX(max, mx);
    end = en == kid_pages ? end + en : en;
  }
  return pa_pack((unsigned)start, (unsigned)max, (unsigned)end);
}

// ---------------------------------------------------------------------------
// Chunks

// pa_chunk_find returns the first page index >= 64*from_word of a run of n
// free pages that lies inside the chunk, or PA_NONE.
// Precondition: 1 <= n <= PA_CHUNK_PAGES.
size_t pa_chunk_find(const pa_chunk_t *ch, size_t n, unsigned from_word) {
  size_t run = 0; // free pages ending at the current word's start
  for (unsigned i = from_word; i < PA_WORDS; i++) {
    uint64_t w = ch->alloc[i];
    if (w == 0) {
      run += 64;
      if (run >= n)
        return (size_t)(i + 1) * 64 - run;
      continue;
    }
    if (run + __builtin_ctzll(w) >= n)
      return (size_t)i * 64 - run;
    if (n < 64) {
      uint64_t at = pa_word_runs(~w, (unsigned)n);
      if (at)
        return (size_t)i * 64 + __builtin_ctzll(at);
    }
    run = __builtin_clzll(w);
  }
  return PA_NONE;
}

// pa_chunk_first_free returns the first free page index >= 64*from_word, or
// PA_CHUNK_PAGES if there is none.
size_t pa_chunk_first_free(const pa_chunk_t *ch, unsigned from_word) {
  for (unsigned i = from_word; i < PA_WORDS; i++)
    if (~ch->alloc[i])
      return (size_t)i * 64 + __builtin_ctzll(~ch->alloc[i]);
  return PA_CHUNK_PAGES;
}

// pa_chunk_set marks pages [b, b+k) of ch in use and clears their scavenged
// bits. Returns how many were scavenged. Precondition: the pages are free.
unsigned pa_chunk_set(pa_chunk_t *ch, unsigned b, unsigned k) {
  unsigned scav = 0;
  while (k) {
    unsigned i = b / 64, lo = b % 64, n = PA_MIN(k, 64 - lo);
    uint64_t m = pa_mask(lo, n);
    uint64_t sm = ch->scav[i] & m;
    if (sm) {
      scav += (unsigned)gm_popcount(sm);
      ch->scav[i] &= ~m;
    }
    ch->alloc[i] |= m;
    b += n;
    k -= n;
  }
  return scav;
}

// pa_chunk_clear marks pages [b, b+k) of ch free (not scavenged). Returns
// PA_NONE, or the index of a page in the range that was already free (and
// then changes nothing from that word on).
size_t pa_chunk_clear(pa_chunk_t *ch, unsigned b, unsigned k) {
  while (k) {
    unsigned i = b / 64, lo = b % 64, n = PA_MIN(k, 64 - lo);
    uint64_t m = pa_mask(lo, n);
    uint64_t bad = m & ~ch->alloc[i];
    if (bad)
      return (size_t)i * 64 + __builtin_ctzll(bad);
    ch->alloc[i] &= ~m;
    b += n;
    k -= n;
  }
  return PA_NONE;
}
