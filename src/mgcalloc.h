// mgcalloc.h: the collector's allocation path (mgcalloc.c; the GC side of
// Go's mallocgc): gm_alloc, gm_alloc_noscan, the tiny allocator, large GC
// objects, and the program's gm_free / gm_realloc / gm_usable_size of GC
// objects, which the allocator hands over through gm_gc_hooks.
//
// Invariants:
//   - only registered threads allocate, free or sweep GC objects (the slow
//     paths register the caller), so a stopped world has no writer of GC
//     metadata but the collector (gc_assert_may_mutate);
//   - a thread's GC caches (mcache.gcalloc, the tiny block) are empty while it
//     is not registered: gm_thread_detach gives them back first, so its next
//     GC allocation takes the slow path, which registers it again.
//
// Locking: none of its own; gcentral and large locks through mgcsweep.c.
#ifndef GOMEM_MGCALLOC_H
#define GOMEM_MGCALLOC_H

#include "internal.h"
#include "mallocint.h"

// The tiny allocator: pointer-free objects of at most 16 bytes share 16-byte
// blocks of the 16-byte noscan span class.
#define GC_TINY_SIZE 16
#define GC_TINY_CLASS 2                                // the 16-byte size class
#define GC_TINY_SPC ((uint8_t)(2 * GC_TINY_CLASS + 1)) // its noscan span class

// gc_is_tiny_span: does s hold tiny blocks (and only those)?
GM_INLINE bool gc_is_tiny_span(const mspan_t *s) {
  return s->kind == SPAN_GC_NOSCAN && s->sizeclass == GC_TINY_CLASS;
}

// gc_assert_may_mutate: the caller may change GC metadata (alloc or mark
// bits of GC spans): it is registered (so it is stopped during marks), one of
// gomem's own threads (which the collector excludes itself), or the stopper.
GM_INLINE void gc_assert_may_mutate(void) {
  gm_assert(gm_tls_m.thread != NULL || gm_tls_m.internal || gm_tls_m.stopping);
}

void gcalloc_init(void);             // at gc_init: installs gm_gc_hooks
void gc_release_thread_caches(void); // the caller's GC spans and tiny block go back

#endif // GOMEM_MGCALLOC_H
