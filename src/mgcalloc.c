// mgcalloc.c: the collector's allocation path (see mgcalloc.h).
//
// GC objects live in GC spans (mgcsweep.c), one span class per (size class,
// noscan) pair: spc = sizeclass * 2 + noscan. A thread caches one span per
// span class (mcache.gcalloc) and allocates from its window exactly as malloc
// does (gc_alloc_spc: no lock, no atomic). When the window runs dry,
// gc_refill_alloc moves it (sweeping the span first if a cycle ended since)
// or takes another span from the class's gcentral, inside a critical section;
// bytes handed to windows are added to the pacer's gc_heap_live 64 KiB at a
// time, and a thread that finds the heap at its goal collects
// (gc_maybe_start). Large objects get a span each.
//
// Allocated black: a slot handed out from a window after the world stopped
// is in the collector's window snapshot (mgcmark.c) and survives the next
// sweep. The fast path computes the object's address into a register before
// it takes the slot, so a thread stopped in between either has not taken it
// (the snapshot has it free) or holds its address in a register (a root).
//
// The tiny allocator (Go's): pointer-free objects of fewer than 16 bytes are
// packed into 16-byte blocks, each aligned to its size's largest
// power-of-two factor (at most 8). A tiny object's size is not recorded:
// gm_free ignores it, gm_usable_size returns 0, gm_realloc copies up to the
// end of its block.
#include <string.h>

#include "arena.h"
#include "mfinal.h"
#include "mgc.h"
#include "mgcalloc.h"
#include "mgcmark.h"
#include "mgcpacer.h"
#include "mgcsweep.h"
#include "mprof.h"
#include "threads.h"

// ---------------------------------------------------------------------------
// Small objects

// gc_zero_small clears a small object of at most 64 bytes (size a multiple
// of 8) with two or four possibly overlapping 16-byte stores, no call.
typedef uint64_t gm_v2 __attribute__((vector_size(16), aligned(8)));
GM_INLINE void gc_zero_small(void *p, size_t size) {
  char *c = p;
  gm_v2 z = {0, 0};
  if (size <= 32) {
    if (size < 16) {
      *(uint64_t *)c = 0;
      return;
    }
    *(gm_v2 *)c = z;
    *(gm_v2 *)(c + size - 16) = z;
  } else {
    *(gm_v2 *)c = z;
    *(gm_v2 *)(c + 16) = z;
    *(gm_v2 *)(c + size - 32) = z;
    *(gm_v2 *)(c + size - 16) = z;
  }
}

// gc_next_window gives c a span of spc with a loaded window: the next window
// of its cached span (swept first if a cycle ended since), else a span from
// gcentral. Inside a critical section. Returns NULL when out of memory.
static mspan_t *gc_next_window(mcache_t *c, uint8_t spc) {
  mspan_t *s = c->gcalloc[spc];
  if (s != &span_empty) {
    gc_sweep_cached(s);
    if (span_next_window(s))
      return s;
    c->gcalloc[spc] = &span_empty;
    gcentral_uncache_span(s, spc);
  }
  s = gcentral_cache_span(spc);
  if (s == NULL)
    return NULL;
  c->gcalloc[spc] = s;
  if (!span_next_window(s))
    gm_fatal("gcentral handed out a span without free slots", (void *)s->base);
  return s;
}

#define GC_FLUSH_BYTES ((uint64_t)64 << 10)

// gc_pad: 1 with GOMEM_GC_PAD=1: every GC object is one byte longer than
// asked, so a pointer just past its end still points into it (Boehm GC's
// default). Set by gcalloc_init; a thread reads it after it has seen
// gc_inited (its first allocation takes the slow path, which does).
static _Atomic size_t gc_pad; // relaxed: a late reader only takes the slow path

static void *gc_alloc_large(size_t n, bool noscan);

// gc_spc returns the span class for a small object of size bytes.
GM_INLINE uint8_t gc_spc(size_t size, bool noscan) {
  size_t sc = size <= GM_SMALL_SIZE_MAX
                  ? size_to_class8[(size + GM_SMALL_SIZE_DIV - 1) / GM_SMALL_SIZE_DIV]
                  : size_class(size);
  return (uint8_t)(2 * sc + noscan);
}

// gc_refill_alloc allocates one zeroed object when the fast path found its
// window empty: of n bytes as asked (the class is computed again now that
// gc_pad is known), or, when n is 0, of span class spc (a tiny block). May
// start a collection.
static void *gc_prof_alloc(size_t n, bool noscan);
static void *gc_alloc_large_sampled(size_t n, bool noscan);

static GM_ENTRY GM_NOINLINE void *gc_refill_alloc(uint8_t spc, size_t n) {
  gc_ensure_init();
  if (n != 0) {
    if (n + relaxed_load(&gc_pad) > GM_MAX_SMALL_SIZE)
      return gc_alloc_large_sampled(n, spc_noscan(spc));
    spc = gc_spc(n + relaxed_load(&gc_pad), spc_noscan(spc));
  }
  threads_ensure_registered(); // this thread now holds GC pointers
  mcache_t *c = gm_tls_mcache;
  if (unlikely(c == &mcache_empty) && (c = mcache_for_thread()) == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  m_acquire();
  mspan_t *s = c->gcalloc[spc];
  if (s->alloc_cache == 0) {
    s = gc_next_window(c, spc);
    if (s == NULL) {
      m_release();
      errno = ENOMEM;
      return NULL;
    }
    c->gc_alloc_local += (uint64_t)gm_popcount(s->alloc_cache) * s->elemsize;
    if (relaxed_load(&gc_blacken)) // marking runs: what this window hands out is black
      atomic_fetch_or_explicit(&s->gc->mark[s->window], s->alloc_cache, memory_order_relaxed);
  }
  prof_check_rate(c);
  if (n != 0 && unlikely((c->sample_left -= (int64_t)n) < 0)) { // a heap profile sample
    m_release();
    return gc_prof_alloc(n, spc_noscan(spc));
  }
  void *p = span_take_reserved(s);
  bool zero = s->needzero;
  size_t size = s->elemsize;
  __asm__ volatile("" : : "r"(p) : "memory"); // in a register before m_release
  uint64_t flush = 0;
  if (c->gc_alloc_local >= GC_FLUSH_BYTES) {
    flush = c->gc_alloc_local;
    c->gc_alloc_local = 0;
    atomic_fetch_add_explicit(&gc_heap_live, flush, memory_order_relaxed);
  }
  m_release();
  if (zero)
    memset(p, 0, size);
  if (flush) {
    gc_assist(flush);
    gc_maybe_start();
  }
  return p;
}

// gc_alloc_spc allocates one zeroed object of span class spc (for n bytes
// as asked; 0 for a tiny block) from the calling thread's cached GC span: the
// fast path (see the top of the file for why it needs no critical section).

GM_INLINE void *gc_alloc_spc(uint8_t spc, size_t n) {
  mcache_t *c = gm_tls_mcache;
  mspan_t *s = c->gcalloc[spc];
  uint64_t v = s->alloc_cache;
  if (unlikely(v == 0))
    return gc_refill_alloc(spc, n);
  if (unlikely((c->sample_left -= (int64_t)n) < 0)) // a heap profile sample (mprof.c)
    return gc_prof_alloc(n, spc_noscan(spc));
  void *p = (void *)(s->window_base + (uint32_t)__builtin_ctzll(v) * (uintptr_t)s->elemsize);
  __asm__ volatile("" : : "r"(p) : "memory");
  s->alloc_cache = v & (v - 1);
  if (s->needzero) {
    size_t size = s->elemsize; // smallest first: small objects are the most common
    if (likely(size <= 32))
      gc_zero_small(p, size);
    else if (size <= 64)
      gc_zero_small(p, size);
    else
      return memset(p, 0, size); // a tail call: the fast path needs no frame
  }
  return p;
}

// ---------------------------------------------------------------------------
// Tiny objects

// gc_tiny_alloc_slow: the tiny block has no room for n bytes (n < 16).
static GM_NOINLINE void *gc_tiny_alloc_slow(size_t n) {
  void *p = gc_alloc_spc(GC_TINY_SPC, 0);
  if (p == NULL)
    return NULL;
  // Keep whichever block has more room left (Go's rule).
  mcache_t *c = gm_tls_mcache;
  if (c->tiny == 0 || n < c->tiny_off) {
    c->tiny = (uintptr_t)p;
    c->tiny_off = n;
  }
  return p;
}

// gc_tiny_alloc: n bytes (1..15) from the calling thread's tiny block.
GM_INLINE void *gc_tiny_alloc(size_t n) {
  mcache_t *c = gm_tls_mcache;
  uintptr_t off = c->tiny_off;
  if ((n & 7) == 0)
    off = (off + 7) & ~(uintptr_t)7;
  else if ((n & 3) == 0)
    off = (off + 3) & ~(uintptr_t)3;
  else if ((n & 1) == 0)
    off = (off + 1) & ~(uintptr_t)1;
  if (likely(off + n <= GC_TINY_SIZE && c->tiny != 0)) {
    if (unlikely((c->sample_left -= (int64_t)n) < 0))
      return gc_prof_alloc(n, true);
    c->tiny_off = off + n;
    return (void *)(c->tiny + off);
  }
  return gc_tiny_alloc_slow(n);
}

// ---------------------------------------------------------------------------
// Large objects

// gc_alloc_large allocates a large GC object of n bytes (as asked); zeroed.
static GM_NOINLINE void *gc_alloc_large(size_t n, bool noscan) {
  gc_ensure_init();
  threads_register_self_or_die();
  size_t size = n + relaxed_load(&gc_pad);
  if (n > PTRDIFF_MAX - GM_PAGE_SIZE) {
    errno = ENOMEM;
    return NULL;
  }
  size_t npages = (size + GM_PAGE_SIZE - 1) / GM_PAGE_SIZE;
  // A critical section until the object's address is in a register: a
  // thread stopped after the span was listed but before that would leave the
  // new object without a root, and the next sweep would free it.
  m_acquire();
  mspan_t *s = gc_large_alloc(npages, noscan);
  if (s == NULL) {
    m_release();
    errno = ENOMEM;
    return NULL;
  }
  void *p = (void *)s->base;
  bool zero = s->needzero;
  if (relaxed_load(&gc_blacken)) // allocated black
    atomic_fetch_or_explicit(&s->gc->mark[0], 1, memory_order_relaxed);
  __asm__ volatile("" : : "r"(p) : "memory");
  m_release();
  if (zero)
    memset(p, 0, npages * GM_PAGE_SIZE);
  atomic_fetch_add_explicit(&gc_heap_live, npages * GM_PAGE_SIZE, memory_order_relaxed);
  gc_assist(npages * GM_PAGE_SIZE);
  gc_maybe_start();
  return p;
}

// gc_prof_alloc: a heap profile sample (see mprof.c): a large object of its
// own, flagged, so that its death (sweep or gm_free) is reported.
static GM_ENTRY GM_NOINLINE void *gc_prof_alloc(size_t n, bool noscan) {
  gm_tls_mcache->sample_left = prof_next_sample();
  void *p = gc_alloc_large(n, noscan);
  if (p != NULL) {
    __atomic_store_n(&spanof((uintptr_t)p)->sampled, 1, __ATOMIC_RELAXED);
    prof_record_alloc((uintptr_t)p, n);
  }
  return p;
}

static GM_ENTRY GM_NOINLINE void *gc_alloc_large_sampled(size_t n, bool noscan) {
  mcache_t *c = gm_tls_mcache;
  if (c != &mcache_empty && c != &mcache_shared &&
      unlikely((c->sample_left -= (int64_t)(n < INT64_MAX ? n : INT64_MAX)) < 0))
    return gc_prof_alloc(n, noscan);
  return gc_alloc_large(n, noscan);
}

// ---------------------------------------------------------------------------
// The API

// gm_alloc / gm_alloc_noscan: n is what the caller asked (never 0 below, so
// the slow path can tell it from a tiny block's request).
GM_EXPORT GM_ENTRY void *gm_alloc(size_t n) {
  size_t size = n + relaxed_load(&gc_pad);
  if (likely(size <= GM_SMALL_SIZE_MAX))
    return gc_alloc_spc(
        (uint8_t)(2 * size_to_class8[(size + GM_SMALL_SIZE_DIV - 1) / GM_SMALL_SIZE_DIV]), n | !n);
  if (size <= GM_MAX_SMALL_SIZE)
    return gc_alloc_spc((uint8_t)(2 * size_class(size)), n);
  return gc_alloc_large_sampled(n, false);
}

GM_EXPORT GM_ENTRY void *gm_alloc_noscan(size_t n) {
  size_t size = n + relaxed_load(&gc_pad);
  if (size < GC_TINY_SIZE)
    return gc_tiny_alloc(size ? size : 1);
  if (likely(size <= GM_SMALL_SIZE_MAX))
    return gc_alloc_spc(
        (uint8_t)(2 * size_to_class8[(size + GM_SMALL_SIZE_DIV - 1) / GM_SMALL_SIZE_DIV] + 1), n);
  if (size <= GM_MAX_SMALL_SIZE)
    return gc_alloc_spc((uint8_t)(2 * size_class(size) + 1), n);
  return gc_alloc_large_sampled(n, true);
}

// ---------------------------------------------------------------------------
// Thread caches

// gc_release_cache gives c's GC spans back to their gcentrals and drops its
// tiny block (a critical section: the spans may be swept on the way).
static void gc_release_cache(mcache_t *c) {
  m_acquire();
  for (int spc = 2; spc < GM_NUM_SPAN_CLASSES; spc++) {
    mspan_t *s = c->gcalloc[spc];
    if (s != &span_empty) {
      c->gcalloc[spc] = &span_empty;
      gcentral_uncache_span(s, (uint8_t)spc);
    }
  }
  c->tiny = 0;
  c->tiny_off = 0;
  m_release();
}

void gc_release_thread_caches(void) {
  mcache_t *c = gm_tls_mcache;
  if (c != &mcache_empty)
    gc_release_cache(c);
}

// ---------------------------------------------------------------------------
// gm_free, gm_realloc, gm_usable_size of GC objects (gm_gc_hooks)

// tiny_check: p must lie in an allocated tiny block of s.
static void tiny_check(const mspan_t *s, uintptr_t p) {
  uint16_t idx = (uint16_t)(((uint64_t)(p - s->base) * s->divmul) >> 32);
  if (idx >= s->nelems || !span_allocated(s, idx))
    gm_fatal("free of a pointer into a free tiny block", (void *)p);
}

// gc_free_hook: gm_free of GC object p in span s. The object is released at
// once when possible (mgcsweep.c); tiny objects share blocks: ignored.
static void gc_free_hook(uintptr_t p, mspan_t *s) {
  threads_register_self_or_die(); // it changes GC metadata
  if (gc_is_tiny_span(s)) {       // the block stays, but the object is dead: no finalizer
    tiny_check(s, p);
    fin_forget(p);
    return;
  }
  // While marking runs beside the program the object is left to the
  // collector (a marker may hold its address). The test and the free are
  // one critical section: no cycle starts in between.
  m_acquire();
  if (relaxed_load(&gc_blacken))
    fin_forget(p); // (gc_free's part of the work that cannot wait)
  else
    gc_free(p, s);
  m_release();
}

static size_t gc_usable_hook(uintptr_t p, mspan_t *s) {
  if (gc_is_tiny_span(s)) {
    tiny_check(s, p);
    return 0; // its size is not recorded
  }
  return span_object_size(s, p);
}

// gc_realloc_hook: realloc of a GC object gives a GC object of the same
// kind; the old one is left to the collector. A tiny object's bytes are
// copied up to the end of its block, with memmove: the new object may be
// carved from the same block, just after it.
static GM_ENTRY void *gc_realloc_hook(void *ptr, mspan_t *s, size_t size) {
  uintptr_t p = (uintptr_t)ptr;
  size_t old = gc_usable_hook(p, s);
  if (gc_is_tiny_span(s))
    old = GC_TINY_SIZE - (p - s->base) % GC_TINY_SIZE;
  else if (size <= old && (size > old / 2 || old <= 16))
    return ptr;
  void *q = s->kind == SPAN_GC_NOSCAN ? gm_alloc_noscan(size) : gm_alloc(size);
  if (q != NULL)
    memmove(q, ptr, size < old ? size : old);
  return q;
}

void gcalloc_init(void) {
  relaxed_store(&gc_pad, gm_opt.gc_pad);
  gm_gc_hooks.free = gc_free_hook;
  gm_gc_hooks.usable = gc_usable_hook;
  gm_gc_hooks.realloc = gc_realloc_hook;
  gm_gc_hooks.release_cache = gc_release_cache;
  gm_gc_hooks.stats = gc_stats;
}
