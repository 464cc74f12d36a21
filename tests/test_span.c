// test_span: span bitmaps, windows, local and remote frees, against a model.
//
// Spans come from mcentral_cache_span (real pages from mheap) and are driven
// through the same internal functions malloc and free use, with a boolean
// model of which slots are allocated. span_validate runs after every step.
#include <string.h>

#include "internals.h"
#include "test.h"

// no_owner: these spans are never owned by a thread while the batch runs.
static void no_owner(void *ctx, mspan_t *s, uintptr_t p, uintptr_t x) {
  (void)ctx;
  (void)x;
  fprintf(stderr, "object %p of span %p freed as owned\n", (void *)p, (void *)s->base);
  abort();
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

// span_pop takes one object from s like the malloc fast path + refill do
// (without the mcache): returns 0 if the span is full.
static uintptr_t span_pop(mspan_t *s) {
  if (s->alloc_cache == 0 && !span_next_window(s)) {
    span_collect_remote(s);
    if (s->alloc_cache == 0 && !span_next_window(s))
      return 0;
  }
  return (uintptr_t)span_take_slot(s);
}

// slot_allocated: the documented invariant of malloc's spans (mspan.h): a
// slot is allocated exactly when its bit is set, window or not.
static bool slot_allocated(const mspan_t *s, unsigned i) {
  return s->alloc_bits[i / 64] >> (i % 64) & 1;
}

static void model_test(uint8_t sc, int steps) {
  mspan_t *s = mcentral_cache_span(sc);
  CHECK(s != NULL && s->nfree == s->nelems);
  bool model[GM_MAX_OBJS_PER_SPAN] = {0};
  unsigned live = 0, mismatches = 0, bad_addr = 0;
  for (int step = 0; step < steps; step++) {
    bool do_alloc = live == 0 || (live < s->nelems && next_rand() % 100 < 55);
    if (do_alloc) {
      uintptr_t p = span_pop(s);
      if (p == 0) {
        CHECKF(live == s->nelems, "span full with %u of %u live", live, s->nelems);
        continue;
      }
      unsigned i = (unsigned)((p - s->base) / s->elemsize);
      bad_addr += (p - s->base) % s->elemsize != 0 || i >= s->nelems || model[i];
      model[i] = true;
      live++;
      memset((void *)p, 0xab, s->elemsize);
    } else {
      unsigned i;
      do
        i = (unsigned)(next_rand() % s->nelems);
      while (!model[i]);
      uintptr_t p = s->base + (uintptr_t)i * s->elemsize;
      if (next_rand() % 4 == 0) { // as another thread would: the remote list
        uintptr_t old = atomic_load(&s->xfree);
        do
          *(uintptr_t *)p = old;
        while (!atomic_compare_exchange_weak(&s->xfree, &old, p));
      } else {
        free_apply(s, p);
      }
      model[i] = false;
      live--;
    }
    if (step % 64 == 0)
      span_collect_remote(s);
    span_validate(s);
  }
  span_collect_remote(s);
  for (unsigned i = 0; i < s->nelems; i++)
    mismatches += slot_allocated(s, i) != model[i];
  CHECKF(mismatches == 0, "class %u: %u slots disagree with the model", sc, mismatches);
  CHECKF(bad_addr == 0, "class %u: %u bad addresses handed out", sc, bad_addr);
  // Give it back: un-reserving the window must leave nfree = nelems - live.
  uintptr_t base = s->base;
  mcentral_uncache_span(s);
  if (live == 0) {
    CHECK(spanof(base) == NULL); // fully free spans go back to mheap
  } else {
    CHECK(spanof(base) == s && s->nfree == s->nelems - live && s->alloc_cache == 0);
    mcentral_validate(sc);
    // Free the rest as an unowned span does: batches under mcentral.lock.
    uintptr_t list = 0;
    for (unsigned i = 0; i < s->nelems; i++)
      if (model[i]) {
        uintptr_t p = base + (uintptr_t)i * s->elemsize;
        *(uintptr_t *)p = list;
        list = p;
      }
    mcentral_free_batch(sc, list, no_owner, NULL);
    CHECK(spanof(base) == NULL);
  }
}

// gm_free's last-span modes (free.c): a loop freeing what it just allocated
// keeps checking the last span; frees at random over many classes stop
// checking it (ls_skip > 0); the loop brings checking back. Objects come
// from the public malloc (they share spans with the process's own).
static void last_span_modes(void) {
  if (GM_SECURE) {
    test_skip("gm_free's last-span modes", "the hardened build frees through its own front end");
    return;
  }
  enum { N = 4096 };
  static void *v[N];
  mcache_t *c = gm_tls_mcache;
  for (int i = 0; i < 10000; i++)
    pub_free(pub_malloc(32));
  bool loop_checks = c->ls_skip == 0 && c->last_span != &span_empty;
  for (int i = 0; i < N; i++)
    v[i] = pub_malloc(8 + (size_t)(i * 7919 % 61) * 16);
  long frees = 0, skipped = 0;
  for (int r = 0; r < 4; r++)
    for (int i = 0; i < N; i++) {
      int k = (int)(next_rand() % N);
      pub_free(v[k]);
      frees++;
      skipped += c->ls_skip > 0 && c->last_span == &span_empty;
      v[k] = pub_malloc(8 + (size_t)(next_rand() % 61) * 16);
    }
  bool random_skips = skipped > frees * 9 / 10;
  for (int i = 0; i < 10000; i++)
    pub_free(pub_malloc(32));
  bool loop_again = c->ls_skip == 0 && c->last_span != &span_empty;
  for (int i = 0; i < N; i++)
    pub_free(v[i]);
  CHECKF(loop_checks && random_skips && loop_again,
         "last span: loop checks it %d, random frees skip it %ld of %ld times, loop again "
         "checks it %d",
         loop_checks, skipped, frees, loop_again);
  report("gm_free's last span: checked in loops, skipped under random frees",
         loop_checks && random_skips && loop_again);
}

// span_div's object-start test (mspan.h) against division, for every
// offset below every class's limit: free trusts it to catch interior
// pointers.
static void span_div_exact(void) {
  for (uint8_t sc = 1; sc < GM_NUM_SIZE_CLASSES; sc++) {
    mspan_t *s = mcentral_cache_span(sc);
    unsigned bad = 0;
    for (uintptr_t off = 0; off < s->limit; off++) {
      uint64_t d = span_div(s, off);
      bad += SPAN_DIV_INDEX(d) != off / s->elemsize;
      bad += SPAN_DIV_EXACT(s, d) != (off % s->elemsize == 0);
    }
    CHECKF(bad == 0, "class %u: %u offsets misjudged", sc, bad);
    mcentral_uncache_span(s);
  }
}

int main(void) {
  gm_free(gm_malloc(1)); // initialise
  last_span_modes();
  span_div_exact();
  // Every class drains to exactly nelems distinct objects.
  for (uint8_t sc = 1; sc < GM_NUM_SIZE_CLASSES; sc++) {
    mspan_t *s = mcentral_cache_span(sc);
    unsigned n = 0, dup = 0;
    static bool seen[GM_MAX_OBJS_PER_SPAN];
    memset(seen, 0, sizeof seen);
    for (uintptr_t p; (p = span_pop(s)) != 0; n++) {
      unsigned i = (unsigned)((p - s->base) / s->elemsize);
      dup += seen[i];
      seen[i] = true;
    }
    CHECKF(n == s->nelems && dup == 0, "class %u: drained %u (dup %u) of %u", sc, n, dup,
           s->nelems);
    CHECK(s->nfree == 0);
    span_validate(s);
    mcentral_uncache_span(s); // full: goes on the full list
    mcentral_validate(sc);
    // Free everything through the batch path: the span returns to mheap.
    uintptr_t list = 0, base = s->base;
    for (unsigned i = 0; i < s->nelems; i++) {
      uintptr_t p = base + (uintptr_t)i * s->elemsize;
      *(uintptr_t *)p = list;
      list = p;
    }
    mcentral_free_batch(sc, list, no_owner, NULL);
    CHECK(spanof(base) == NULL);
  }
  // Random alloc/free sequences against the model for a spread of classes.
  uint8_t classes[] = {1, 2, 3, 5, 10, 19, 26, 32, 35, 40, 47, 52, 60, 67};
  for (size_t k = 0; k < sizeof classes; k++)
    for (int rep = 0; rep < 3; rep++)
      model_test(classes[k], 5000);
  return test_done();
}
