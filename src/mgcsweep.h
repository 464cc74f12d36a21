// mgcsweep.h: GC spans, their central lists (gcentral) and sweeping
// (mgcsweep.c; twin of the GC side of Go's mcentral.go and of mgcsweep.go).
//
// Invariants:
//   - a GC span with sweepgen == gm_sweepgen is swept; any other value means
//     its alloc_bits still describe the heap before the last mark;
//   - gm_sweepgen changes only while the world is stopped, so it is stable
//     inside any critical section;
//   - a span is swept only inside a critical section (or by the sweeper,
//     which the collector shuts out with sweep_gate), so a stopped world has
//     no half-swept span.
//
// Locking: gc_central[spc].lock (RANK_GCENTRAL), large_lock (RANK_LARGE),
// both with gm_lock; sweeper_lock and sweep_gate for the sweeper thread.
#ifndef GOMEM_MGCSWEEP_H
#define GOMEM_MGCSWEEP_H

#include "internal.h"
#include "mcache.h"
#include "mspan.h"

// gcbits: a GC span's collector state, off-heap (mgcsweep.c allocates it).
struct gcbits {
  // snap: for a span cached by a thread when the world stopped, the slots of
  // its window (word `window` of alloc_bits) that were still free then; they
  // are handed out afterwards and survive the span's next sweep (allocated
  // black). 0 for uncached spans. Written with the world stopped.
  uint64_t snap;
  uint16_t snap_window; // the window snap describes (WINDOW_NONE: none)
  // mark: 1 = marked (reachable) in the current or last cycle. Set by mark
  // workers (atomic OR) while the world is stopped; applied and cleared by
  // the span's sweep. Sized by the span's object count (mgcsweep.c).
  _Atomic uint64_t mark[];
};
#define GCBITS_SMALL_WORDS 8 // records for spans of up to 512 objects

// Span classes of GC spans: spc = sizeclass * 2 + noscan (spc 0/1: large);
// GM_NUM_SPAN_CLASSES is defined with the heap geometry.
GM_INLINE uint8_t spc_sizeclass(uint8_t spc) {
  return spc >> 1;
}
GM_INLINE bool spc_noscan(uint8_t spc) {
  return spc & 1;
}

typedef struct gcentral {
  gm_mutex_t lock;
  // Uncached spans by sweepgen parity: [gm_sweepgen/2 % 2] swept, the other
  // unswept (lock).
  mspan_t *partial[2];
  mspan_t *full[2];
  size_t nspans; // on the four lists (lock)
  char pad[32];
} gcentral_t;

extern gcentral_t gc_central[GM_NUM_SPAN_CLASSES];
// gm_sweepgen: +2 per cycle, written only while the world is stopped.
extern _Atomic uint32_t gm_sweepgen;
// gc_span_bytes: the bytes of every GC span in use, free slots included
// (what the memory limit's goal leaves out of the non-heap memory).
extern _Atomic uint64_t gc_span_bytes;

void gcsweep_init(void);
size_t gcsweep_meta_bytes(void); // mark-bit records mapped (statistics)
mspan_t *gcentral_cache_span(uint8_t spc);
void gcentral_uncache_span(mspan_t *s, uint8_t spc);
void gc_sweep_cached(mspan_t *s);
mspan_t *gc_large_alloc(size_t npages, bool noscan);
void gc_large_free(mspan_t *s);
void gc_sweep_all(void);
bool gc_sweep_pending(void);
void gc_sweeper_wake(void);
void gc_sweeper_pause(void);
void gc_sweeper_resume(void);
void gc_free(uintptr_t p, mspan_t *s); // the program frees GC object p (not tiny)
void gcsweep_fork_child(void);

#endif // GOMEM_MGCSWEEP_H
