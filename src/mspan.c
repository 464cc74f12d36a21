// mspan.c: span set-up, windows and the bitmap validator (see mspan.h).
//
// Window discipline: loading a window copies the free slots of an alloc_bits
// word into alloc_cache (and, in a GC span, sets their bits: reserves them);
// allocation hands them out (span_take_slot sets the bit of a malloc span's
// slot); every free clears the object's alloc_bits bit (the window finds
// freed slots of its own word again when it next moves); parking the span
// gives back what is left (span_unreserve_window). See mspan.h.
#include <string.h>

#include "mspan.h"

// span_init_small prepares a fresh span of npages for sizeclass: every slot
// free, bits past nelems permanently set, no window loaded.
void span_init_small(mspan_t *s, uint8_t sizeclass) {
  s->elemsize = class_to_size[sizeclass];
  s->divmul = class_to_divmul[sizeclass];
  s->nelems = class_to_nelems[sizeclass];
  s->nfree = s->nelems;
  s->trigger = TRIGGER_NONE;
  s->limit = (uint32_t)s->nelems * s->elemsize;
  s->alloc_cache = 0;
  unsigned nwords = (s->nelems + 63) / 64;
  s->window = WINDOW_NONE; // the first window loaded is word 0
  memset(s->alloc_bits, 0, sizeof s->alloc_bits);
  if (s->nelems % 64)
    s->alloc_bits[nwords - 1] = ~0ULL << (s->nelems % 64);
  atomic_store_explicit(&s->xfree, 0, memory_order_relaxed);
  relaxed_store(&s->owner, NULL);
}

// span_next_window loads the next alloc_bits word with free slots into
// alloc_cache. Returns false if the span has no free slot. Precondition: the
// current window is exhausted (alloc_cache == 0). Owner only.
bool span_next_window(mspan_t *s) {
  gm_assert(s->alloc_cache == 0);
  if (s->nfree == 0)
    return false;
  if (GM_VALIDATE)
    span_validate(s);
  unsigned nwords = (s->nelems + 63) / 64, w = s->window; // WINDOW_NONE: start at 0
  for (unsigned tries = 0;; tries++) {
    if (unlikely(tries == nwords)) // nfree says free slots, the bitmap has none
      gm_fatal("span: free count promises slots the bitmap does not have", (void *)s->base);
    w = w + 1 >= nwords ? 0 : w + 1;
    if (s->alloc_bits[w] != ~0ULL)
      break;
  }
  uint64_t free = ~s->alloc_bits[w];
  if (s->kind != SPAN_MANUAL)
    s->alloc_bits[w] = ~0ULL;
  s->nfree -= (uint16_t)gm_popcount(free);
  s->alloc_cache = free;
  s->window = (uint16_t)w;
  s->window_base = s->base + (uintptr_t)w * 64 * s->elemsize;
  if (GM_VALIDATE)
    span_validate(s);
  return true;
}

void span_bad_object(uintptr_t p) {
  gm_fatal("free of a pointer inside an object or misaligned (not an allocation start)", (void *)p);
}

// span_validate checks the bitmap invariants of small span s (owner only).
void span_validate(const mspan_t *s) {
  unsigned nwords = (s->nelems + 63) / 64, zeros = 0;
  for (unsigned w = 0; w < nwords; w++)
    zeros += 64 - (unsigned)gm_popcount(s->alloc_bits[w]);
  bool manual = s->kind == SPAN_MANUAL;
  if (zeros != s->nfree + (manual ? (unsigned)gm_popcount(s->alloc_cache) : 0))
    gm_fatal("span: nfree does not match alloc_bits", (void *)s->base);
  if (s->nelems % 64 && (~s->alloc_bits[nwords - 1] >> (s->nelems % 64)) != 0)
    gm_fatal("span: bits past the last object are clear", (void *)s->base);
  uint64_t held = s->alloc_cache != 0 ? s->alloc_bits[s->window] & s->alloc_cache : 0;
  if (held != (manual ? 0 : s->alloc_cache))
    gm_fatal(manual ? "span: window slot marked allocated" : "span: window slot not reserved",
             (void *)s->base);
  if (s->alloc_cache != 0 && s->window >= nwords)
    gm_fatal("span: window outside the bitmap", (void *)s->base);
  if (s->window == nwords - 1 && s->nelems % 64 && (s->alloc_cache >> (s->nelems % 64)) != 0)
    gm_fatal("span: window holds slots past the last object", (void *)s->base);
}

// ---------------------------------------------------------------------------
// Frees applied to a span

// free_apply marks object p of malloc span s free: its alloc_bits bit is
// cleared (a slot of the current window included: the window finds it again
// when it next moves). Caller: s's owner, or mcentral.lock holder for an
// unowned span. Fatal on a pointer that does not start an object of s (the
// index from span_div, which also tells an object start) and on a double
// free (a clear bit: malloc's spans set it exactly while the object is
// allocated, mspan.h).
void free_apply(mspan_t *s, uintptr_t p) {
  gm_assert(s->kind == SPAN_MANUAL);
  uintptr_t off = p - s->base;
  uint64_t d = span_div(s, off);
  if (unlikely(off >= s->limit || !SPAN_DIV_EXACT(s, d)))
    span_bad_object(p);
  uint32_t idx = SPAN_DIV_INDEX(d);
  uint64_t bit = 1ULL << (idx & 63), *w = &s->alloc_bits[idx >> 6];
  if (unlikely(!(*w & bit)))
    gm_fatal("double free", (void *)p);
  *w &= ~bit;
  s->nfree++;
}

// span_apply_xfree applies a remote free list taken from malloc span s.
// Every link is checked to lie among s's objects before it is followed (the
// freers checked their objects, so a bad link was written after free), then
// freed by free_apply. About 20 instructions an object.
void span_apply_xfree(mspan_t *s, uintptr_t list) {
  while (list != 0) {
    if (unlikely(list - s->base >= s->limit))
      gm_fatal("corrupted remote free list (object written after free?)", (void *)list);
    uintptr_t next = *(uintptr_t *)list;
    free_apply(s, list);
    list = next;
  }
}

// span_take_xfree takes s's remote free list (flags stripped), keeping
// XF_NOTED (only the owner's processing of its notifications clears that) and
// dropping XF_FULL. Owner only.
uintptr_t span_take_xfree(mspan_t *s) {
  uintptr_t old = atomic_load_explicit(&s->xfree, memory_order_relaxed);
  if ((old & ~XF_FLAGS) == 0 && !(old & XF_FULL))
    return 0;
  while (!atomic_compare_exchange_weak_explicit(&s->xfree, &old, old & XF_NOTED,
                                                memory_order_acquire, memory_order_relaxed)) {
  }
  return old & ~XF_FLAGS;
}

// span_collect_remote applies the frees other threads pushed on s's xfree
// list. Owner of current span s only.
void span_collect_remote(mspan_t *s) {
  span_apply_xfree(s, span_take_xfree(s));
}

// span_object_size returns the size of the object starting at p in s (a
// large span's pages, a small span's element size); fatal if p does not
// start an object.
size_t span_object_size(const mspan_t *s, uintptr_t p) {
  if (s->sizeclass == 0) {
    if (p != s->base)
      gm_fatal("pointer inside a large object where an allocation start was expected", (void *)p);
    return s->npages * GM_PAGE_SIZE;
  }
  (void)span_object_index(s, p);
  return s->elemsize;
}
