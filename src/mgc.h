// mgc.h: the collector's cycle (mgc.c), as the rest of the
// collector sees them.
//
// Invariants:
//   - gc_inited goes 0 -> 1 once (release), after every collector unit is set
//     up; nothing of the collector runs before (gc_is_inited is an acquire);
//   - gc_lock is held for a whole cycle: while it is held by another thread,
//     no scan is in progress only if that thread is waiting for it.
//
// Locking: gc_lock (RANK_GC) and gc_init_lock (RANK_GC_INIT), both taken
// stoppably, never inside a critical section.
#ifndef GOMEM_MGC_H
#define GOMEM_MGC_H

#include <stdbool.h>
#include <stdint.h>

#include "gomem.h"
#include "lock.h"

extern _Atomic int gc_inited;

GM_INLINE bool gc_is_inited(void) {
  return atomic_load_explicit(&gc_inited, memory_order_acquire) != 0;
}

void gc_init(void); // idempotent: sets up every collector unit
GM_INLINE void gc_ensure_init(void) {
  if (unlikely(!gc_is_inited()))
    gc_init();
}

// gc_lock_cycle / gc_unlock_cycle: wait until no collection runs, and keep
// one from starting (gm_remove_roots, gm_set_gc_percent).
void gc_lock_cycle(void);
void gc_unlock_cycle(void);

void gc_maybe_start(void); // outside critical sections: collect if the heap reached the goal
void gc_note_unused(uint64_t slots, uint32_t elemsize); // window slots given back
void gc_stats(gm_stats_t *st);

#endif // GOMEM_MGC_H
