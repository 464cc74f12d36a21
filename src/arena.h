// arena.h: the two-level arena map (arena.c): address -> span in three
// loads, for every page of every 64 MiB arena gomem reserved.
//
// Invariants: arena_l1 entries never hold NULL (an absent L2 array is
// arena_l2_empty); a page's entry names its span while the span is in use,
// NULL otherwise.
//
// Locking: the map is written under mheap.lock; read without locks
// (acquire loads).
#ifndef GOMEM_ARENA_H
#define GOMEM_ARENA_H

#include "mspan.h"

typedef struct heap_arena {
  mspan_t *spans[GM_PAGES_PER_ARENA]; // page -> span; NULL for free pages
} heap_arena_t;

// arena_l1 entries never hold NULL: an absent L2 array is arena_l2_empty,
// whose entries name arena_empty, whose spans are all NULL. So spanof walks
// three loads without testing for holes (a hole answers NULL at the end).
extern heap_arena_t **arena_l1[1 << GM_ARENA_L1_BITS];
extern heap_arena_t *arena_l2_empty[1 << GM_ARENA_L2_BITS];
extern heap_arena_t arena_empty;

// spanof returns the in-use span holding address p, or NULL if p is not in
// gomem's heap or lies in a free page. O(1): three dependent loads.
GM_INLINE mspan_t *spanof(uintptr_t p) {
  if (unlikely(p >> GM_ADDR_BITS))
    return NULL;
  heap_arena_t **l2 =
      __atomic_load_n(&arena_l1[p >> (GM_ARENA_SHIFT + GM_ARENA_L2_BITS)], __ATOMIC_ACQUIRE);
  heap_arena_t *ha = __atomic_load_n(&l2[(p >> GM_ARENA_SHIFT) & ((1u << GM_ARENA_L2_BITS) - 1)],
                                     __ATOMIC_ACQUIRE);
  return __atomic_load_n(&ha->spans[(p >> GM_PAGE_SHIFT) & (GM_PAGES_PER_ARENA - 1)],
                         __ATOMIC_ACQUIRE);
}

heap_arena_t *arena_of(uintptr_t p);                             // NULL if not ours
int arena_register(uintptr_t base, size_t bytes);                // mheap.lock
void arena_set_spans(uintptr_t base, size_t npages, mspan_t *s); // mheap.lock
size_t arena_metadata_bytes(void);                               // mheap.lock

#endif // GOMEM_ARENA_H
