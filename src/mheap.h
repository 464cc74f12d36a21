// mheap.h: the global heap (mheap.c, twin of Go's mheap.go): arenas, the
// page allocator and span records.
//
// Invariants: every in-use span's pages are marked in use in the page
// allocator and map to it in the arena map; inuse_pages counts them.
//
// Locking: mheap.lock (RANK_MHEAP, gm_lock) for everything here.
#ifndef GOMEM_MHEAP_H
#define GOMEM_MHEAP_H

#include "mfixalloc.h"
#include "mpagealloc.h"
#include "mspan.h"

typedef struct mheap {
  gm_mutex_t lock;
  pagealloc_t pages;                          // lock
  fixalloc_t span_alloc;                      // mspan records
  uintptr_t arena_hint;                       // next address to try for an arena (lock)
  size_t sys_bytes;                           // bytes of arenas reserved (lock; read relaxed)
  _Atomic size_t inuse_pages;                 // pages in in-use spans (written under lock)
  _Atomic size_t large_inuse_bytes;           // bytes in large objects (written under lock)
  _Atomic uint64_t large_allocs, large_frees; // (written under lock)
  size_t peak_sample; // highest inuse_pages since the scavenger's last tick (lock)
  size_t scav_reused; // scavenged pages handed out since the scavenger's last tick (lock)
  // [arena_lo, arena_hi): the span of addresses holding arenas, the
  // collector's first filter for conservative pointers (written under lock).
  _Atomic uintptr_t arena_lo, arena_hi;
  // max_pages: a span larger than this is refused (ENOMEM): RAM + swap, as
  // the kernel's default overcommit heuristic refuses mappings larger than
  // that (unlimited with vm.overcommit_memory = 1). Set once by mheap_init.
  size_t max_pages;
} mheap_t;

extern mheap_t gm_heap;

void mheap_init(void);
mspan_t *mheap_alloc_span(size_t npages, uint8_t sizeclass, size_t align_pages);
void mheap_free_span(mspan_t *s);
bool mheap_grow_span_in_place(mspan_t *s, size_t npages);
// mheap_memory: the bytes of in-use pages plus the heap's metadata, and of
// free pages still resident (what counts against the memory limit).
void mheap_memory(uint64_t *inuse_meta, uint64_t *free_dirty);
// The heap's address ranges (one per growth, never removed): their count
// and each one. mheap_grow_hook, if set, runs for each new range under
// mheap.lock (the collector registers it for write tracking); set it once,
// before the heap grows from another thread, and call it for the ranges
// that exist then.
size_t mheap_nranges(void);
bool mheap_ranges_complete(void); // false once a growth could not be listed
void mheap_range(size_t i, uintptr_t *base, size_t *bytes);
extern void (*mheap_grow_hook)(uintptr_t base, size_t bytes);

#endif // GOMEM_MHEAP_H
