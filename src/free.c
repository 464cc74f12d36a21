// free.c: explicit free, cross-thread free and misuse detection.
//
// gm_free finds the span of a pointer through the arena map. Three cases:
//   local   the span is owned by the calling thread (current, or parked on
//           its partial/full lists): clear the object's bit. No lock, no
//           atomic RMW, one predictable branch (free_owned_fast).
//   remote  the span is owned by another thread: push the object on the
//           span's xfree list with one CAS (free_push_remote); the owner
//           applies the list when the span is current and runs dry, or, for
//           a span it parked as full, after the freer notifies it (xspans).
//   unowned the span sits in mcentral: the object joins the thread's pending
//           list for its class; every 64 objects (or 64 KiB) the list is freed
//           under one mcentral.lock hold (mcentral_free_batch), moving spans
//           to the partial list or, when empty, back to mheap.
// Large objects go straight back to mheap.
//
// Misuse: a pointer outside gomem's arenas, inside a free page, inside an
// object, or an object whose bit says free, is reported as
//   gomem: <fault> at <address>
// and the process aborts before any metadata is modified. A double free that
// travels through a remote list is caught when the list is applied.
#include <string.h>

#include "internal.h"

GM_COLD static void free_invalid(uintptr_t p) {
  if (arena_of(p) == NULL)
    gm_fatal("free of a pointer gomem did not allocate", (void *)p);
  if (p % GM_PAGE_SIZE == 0)
    gm_fatal("double free (page not in use)", (void *)p);
  gm_fatal("free of a pointer into unallocated heap memory", (void *)p);
}

// free_apply marks object p of small span s free: its alloc_bits bit is
// cleared (a slot of the current window included: the window finds it again
// when it next moves). Caller: s's owner, or mcentral.lock holder for an
// unowned span. Fatal on a double free: a clear bit, or a window slot still
// waiting in alloc_cache.
void free_apply(mspan_t *s, uintptr_t p) {
  uint16_t idx = span_object_index(s, p);
  uint64_t bit = 1ULL << (idx & 63);
  unsigned w = idx >> 6;
  if (unlikely(!(s->alloc_bits[w] & bit) || (w == s->window && (s->alloc_cache & bit))))
    gm_fatal("double free", (void *)p);
  s->alloc_bits[w] &= ~bit;
  s->nfree++;
}

// span_apply_xfree applies a remote free list taken from s. Every link is
// checked to lie inside s before it is followed.
void span_apply_xfree(mspan_t *s, uintptr_t list) {
  uintptr_t lo = s->base, hi = s->base + s->npages * GM_PAGE_SIZE;
  while (list != 0) {
    if (unlikely(list < lo || list >= hi))
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

// free_push_remote pushes object p on the remote list of span s, owned by
// another thread; old is a recent value of s->xfree. If the owner had parked
// s as full (XF_FULL), this freer's CAS turns the flag into XF_NOTED and it
// pushes s on the owner's xspans stack, so the owner learns that s has free
// slots. Returns false, doing nothing, if s turns out to be unowned.
bool free_push_remote(mspan_t *s, uintptr_t p, uintptr_t old) {
  for (;;) {
    if (old & XF_UNOWNED)
      return false;
    // The owner is read before the CAS: a successful CAS on a value with
    // XF_FULL proves the span was still parked by that owner.
    mcache_t *owner = relaxed_load(&s->owner);
    *(uintptr_t *)p = old & ~XF_FLAGS;
    bool notify = (old & XF_FULL) != 0;
    uintptr_t new_x = p | (old & XF_NOTED) | (notify ? XF_NOTED : 0);
    // acq_rel: a notifier acquires the owner's CAS that set XF_FULL, which
    // the owner made after it last read s->xnext; so our write of xnext
    // below happens after that read.
    if (atomic_compare_exchange_weak_explicit(&s->xfree, &old, new_x, memory_order_acq_rel,
                                              memory_order_relaxed)) {
      if (notify && owner != NULL) {
        mspan_t *head = atomic_load_explicit(&owner->xspans, memory_order_relaxed);
        do
          s->xnext = head;
        while (!atomic_compare_exchange_weak_explicit(&owner->xspans, &head, s,
                                                      memory_order_release, memory_order_relaxed));
      }
      return true;
    }
  }
}

// pend_full: a class's pending list is flushed at 64 objects or 64 KiB.
static inline bool pend_full(const mcache_t *c, uint8_t sizeclass) {
  return c->pend_n[sizeclass] >= 64 ||
         (size_t)c->pend_n[sizeclass] * class_to_size[sizeclass] >= 64 * 1024;
}

// free_remote frees object p of small span s that the calling thread (cache
// c) does not own: a CAS push on the owner's remote list, or, when s is
// unowned, onto c's pending list for a batched mcentral free.
static void free_remote(uintptr_t p, mspan_t *s, mcache_t *c) {
  (void)span_object_index(s, p); // validate before the object joins a list
  uint8_t sc = s->sizeclass;
  if (free_push_remote(s, p, atomic_load_explicit(&s->xfree, memory_order_relaxed)))
    return;
  *(uintptr_t *)p = c->pend[sc];
  c->pend[sc] = p;
  c->pend_n[sc]++;
  if (pend_full(c, sc))
    mcache_flush_pending(c, sc);
}

// free_slow handles everything but a local free of a small object: large
// objects, objects of spans owned elsewhere or unowned, bad pointers.
GM_NOINLINE void free_slow(void *ptr, mspan_t *s, mcache_t *c) {
  uintptr_t p = (uintptr_t)ptr;
  if (s == NULL) {
    if (p == 0)
      return;
    free_invalid(p);
  }
  if (unlikely(s->kind != SPAN_MANUAL)) {
    gc_free(p, s);
    return;
  }
  if (s->sizeclass == 0) {
    if (unlikely(p != s->base))
      gm_fatal("free of a pointer inside a large object", ptr);
    mheap_free_span(s);
    return;
  }
  // Read the class now: once p is handed over, another thread may empty the
  // span and recycle its record.
  uint8_t sc = s->sizeclass;
  if (c == &mcache_empty && (c = mcache_for_thread()) == NULL) {
    uintptr_t one = p; // no cache and no memory for one: free it alone
    *(uintptr_t *)p = 0;
    mcentral_free_batch(sc, one, &mcache_empty);
    return;
  }
  relaxed_add(&c->stats[sc].nfree, 1);
  free_remote(p, s, c);
}

// free_local_slow: an owner free that needs more than the fast path: a bad
// pointer or double free (reported by free_apply), or a span whose list must
// change (its nfree reached its trigger).
GM_NOINLINE void free_local_slow(void *ptr, mspan_t *s, mcache_t *c) {
  uint8_t sc = s->sizeclass; // s may go back to the heap below
  mcache_free_owned(c, s, (uintptr_t)ptr);
  relaxed_add(&c->stats[sc].nfree, 1);
}

// free_owned_fast frees object p at offset off (< s->limit) of span s, owned
// by c: one bit cleared, nfree counted. Every test is folded into one
// predictable branch: not an object start, a double free (clear bit, or a
// window slot still in alloc_cache), or nfree reaching the span's trigger.
GM_INLINE void free_owned_fast(void *ptr, mspan_t *s, mcache_t *c, uintptr_t off) {
  uint32_t idx = (uint32_t)(((uint64_t)off * s->divmul) >> 32);
  uint64_t bit = 1ULL << (idx & 63);
  unsigned w = idx >> 6;
  uint64_t word = s->alloc_bits[w];
  uint64_t in_window = (uint64_t)(w == s->window) & (s->alloc_cache >> (idx & 63));
  uint16_t nfree = (uint16_t)(s->nfree + 1);
  if (unlikely(((uintptr_t)idx * s->elemsize != off) | !(word & bit) | in_window |
               (nfree >= s->trigger))) {
    free_local_slow(ptr, s, c);
    return;
  }
  s->alloc_bits[w] = word & ~bit;
  s->nfree = nfree;
  relaxed_add(&c->stats[s->sizeclass].nfree, 1);
}

// free_lookup: the object is not in c's last span. Find its span through the
// arena map; if c owns it, remember it as the last span and free locally.
GM_NOINLINE void free_lookup(void *ptr, mcache_t *c) {
  uintptr_t p = (uintptr_t)ptr;
  mspan_t *s = spanof(p);
  if (unlikely(s == NULL || relaxed_load(&s->owner) != c)) {
    free_slow(ptr, s, c);
    return;
  }
  uintptr_t off = p - s->base;
  if (unlikely(off >= s->limit)) { // past the last object
    free_local_slow(ptr, s, c);
    return;
  }
  c->last_span = s;
  free_owned_fast(ptr, s, c, off);
}

// gm_free: the free fast path, for an object of the span this thread last
// freed into, which it owns (recent objects die young, and near each other).
// No arena-map walk and no owner test: one range check against the cached
// span, the index by reciprocal multiply, one folded check, one bit cleared;
// about 30 instructions, no stack frame. Anything else is a tail call.
GM_EXPORT void gm_free(void *ptr) {
  mcache_t *c = gm_tls_mcache;
  mspan_t *s = c->last_span;
  uintptr_t off = (uintptr_t)ptr - s->base;
  if (unlikely(off >= s->limit)) {
    free_lookup(ptr, c);
    return;
  }
  free_owned_fast(ptr, s, c, off);
}

GM_ALIAS(free, gm_free)
GM_ALIAS(cfree, gm_free)
GM_ALIAS(__libc_free, gm_free)
