// mfixalloc.h: off-heap allocators of fixed-size metadata records (span
// records, thread caches, thread records), twin of Go's fixalloc.
//
// Invariants: records never live in the heap they describe; a freed record
// goes on its allocator's free list and is reused; chunks are never returned.
//
// Locking: each fixalloc's lock (RANK_FIXALLOC, a leaf), inside.
#ifndef GOMEM_MFIXALLOC_H
#define GOMEM_MFIXALLOC_H

#include "lock.h"
#include <stddef.h>
#include <stdint.h>

typedef struct fixalloc {
  gm_mutex_t lock;
  size_t size;          // record size (immutable)
  void *free_list;      // lock
  uintptr_t chunk, end; // current carving chunk (lock)
  size_t inuse, sys;    // records in use, bytes mapped (lock)
} fixalloc_t;

void fixalloc_init(fixalloc_t *f, size_t size);
void *fixalloc_alloc(fixalloc_t *f); // zeroed; NULL when out of memory
void fixalloc_free(fixalloc_t *f, void *p);
size_t fixalloc_sys(fixalloc_t *f); // bytes mapped

#endif // GOMEM_MFIXALLOC_H
