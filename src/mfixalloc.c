// mfixalloc.c: fixed-size allocators for gomem's own metadata (span records,
// thread caches), the twin of Go's fixalloc. Records are carved from 64 KiB
// chunks mapped straight from the OS, so metadata never lives in the heap it
// describes and allocating it never recurses into malloc. Freed records go on
// a free list and are reused; chunks are never returned.
#include <string.h>

#include "mfixalloc.h"
#include "os.h"

#define FIXALLOC_CHUNK (64 * 1024)

void fixalloc_init(fixalloc_t *f, size_t size) {
  gm_assert(size >= sizeof(void *));
  pthread_mutex_init(&f->lock.m, NULL);
  f->lock.rank = RANK_FIXALLOC;
  lock_fork_register(&f->lock);
  // Records of a cache line or more start on a cache line (their fields are
  // laid out by line to keep threads off each other's lines).
  f->size = size >= 64 ? (size + 63) & ~(size_t)63 : (size + 15) & ~(size_t)15;
  f->free_list = NULL;
  f->chunk = f->end = 0;
  f->inuse = f->sys = 0;
}

// fixalloc_alloc returns a zeroed record, or NULL if the OS refuses memory.
void *fixalloc_alloc(fixalloc_t *f) {
  gm_lock(&f->lock);
  void *p = f->free_list;
  if (p != NULL) {
    f->free_list = *(void **)p;
    f->inuse++;
    gm_unlock(&f->lock);
    memset(p, 0, f->size);
    return p;
  }
  if (f->end - f->chunk < f->size) {
    void *c = os_reserve(FIXALLOC_CHUNK, 0);
    if (c == NULL) {
      gm_unlock(&f->lock);
      return NULL;
    }
    f->chunk = (uintptr_t)c;
    f->end = f->chunk + FIXALLOC_CHUNK;
    f->sys += FIXALLOC_CHUNK;
  }
  p = (void *)f->chunk; // fresh from the OS: already zero
  f->chunk += f->size;
  f->inuse++;
  gm_unlock(&f->lock);
  return p;
}

void fixalloc_free(fixalloc_t *f, void *p) {
  gm_lock(&f->lock);
  *(void **)p = f->free_list;
  f->free_list = p;
  f->inuse--;
  gm_unlock(&f->lock);
}

// fixalloc_sys: bytes f has mapped (statistics).
size_t fixalloc_sys(fixalloc_t *f) {
  gm_lock(&f->lock);
  size_t n = f->sys;
  gm_unlock(&f->lock);
  return n;
}
