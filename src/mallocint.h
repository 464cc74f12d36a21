// mallocint.h: the allocator's entry points other files use (malloc.c):
// initialisation, large objects, size classes, heap queries, and the hooks
// through which the collector serves its own objects.
//
// Locking: init_lock (once, outside the rank order: nothing else is held).
#ifndef GOMEM_MALLOCINT_H
#define GOMEM_MALLOCINT_H

#include "mcache.h"

extern _Atomic int gm_inited;
void gm_init_slow(void);
GM_INLINE void gm_ensure_init(void) {
  // acquire: what initialisation wrote (options, tables) is visible after
  if (unlikely(atomic_load_explicit(&gm_inited, memory_order_acquire) != 2))
    gm_init_slow();
}
void *malloc_large(size_t size, size_t align, bool zero);
// cxx_new_failed: operator new `name` found no memory; the C++ library's own
// takes over (drop-in builds: malloc.c).
void *cxx_new_failed(const char *name, size_t n, size_t align, bool aligned);
// malloc_called_from_ldso: ra (a return address) lies in the dynamic
// linker's text (its realloc of a thread's DTV needs the old block kept).
bool malloc_called_from_ldso(uintptr_t ra);
// size_class returns the size class for size (<= GM_MAX_SMALL_SIZE): one
// table load (gm_class_of is the same, out of line).
GM_INLINE size_t size_class(size_t size) {
  if (size <= GM_SMALL_SIZE_MAX)
    return size_to_class8[(size + GM_SMALL_SIZE_DIV - 1) / GM_SMALL_SIZE_DIV];
  return size_to_class128[(size - GM_SMALL_SIZE_MAX + GM_LARGE_SIZE_DIV - 1) / GM_LARGE_SIZE_DIV];
}
size_t gm_class_of(size_t size);

// The entry points that only check arguments and call another: one body for
// the default build (malloc.c) and the hardened one (secure_api.c), which
// pass their own memalign / realloc.
#include <errno.h>
// align_round: glibc's memalign rounds a bad alignment up to a power of two;
// false (EINVAL) when there is none.
GM_INLINE bool align_round(size_t *align) {
  if ((*align & (*align - 1)) == 0)
    return true;
  if (*align > PTRDIFF_MAX / 2) {
    errno = EINVAL;
    return false;
  }
  *align = (size_t)1 << (64 - __builtin_clzll(*align));
  return true;
}
GM_INLINE int posix_memalign_via(void *(*memalign)(size_t, size_t), void **out, size_t align,
                                 size_t size) {
  if (align < sizeof(void *) || (align & (align - 1)))
    return EINVAL;
  int saved = errno;
  void *p = memalign(align, size);
  if (p == NULL)
    return ENOMEM;
  errno = saved;
  *out = p;
  return 0;
}
GM_INLINE void *aligned_alloc_via(void *(*memalign)(size_t, size_t), size_t align, size_t size) {
  if (align == 0 || (align & (align - 1))) {
    errno = EINVAL;
    return NULL;
  }
  return memalign(align, size);
}
GM_INLINE void *reallocarray_via(void *(*realloc)(void *, size_t), void *p, size_t count,
                                 size_t size) {
  size_t n;
  if (__builtin_mul_overflow(count, size, &n)) {
    errno = ENOMEM;
    return NULL;
  }
  return realloc(p, n);
}
// heap_object: where p lies. 0: outside gomem's heap; 1: inside the allocated
// malloc object [*lo, *hi); -1: in the heap but in no allocated malloc object
// (a free slot or page, or a GC object). Reads a span's bits without its
// lock: exact for objects that stay allocated meanwhile.
int heap_object(uintptr_t p, uintptr_t *lo, uintptr_t *hi);

// The collector's entry points for its own objects, set by gc_init before
// the first GC span exists (the allocator meets GC spans only after that):
// gm_free, gm_usable_size and gm_realloc of a GC object, a thread's GC caches
// at its exit, and the collector's statistics.
typedef struct gc_hooks {
  void (*free)(uintptr_t p, mspan_t *s);
  size_t (*usable)(uintptr_t p, mspan_t *s);
  void *(*realloc)(void *p, mspan_t *s, size_t size);
  void (*release_cache)(mcache_t *c);
  void (*stats)(gm_stats_t *st);
} gc_hooks_t;
extern gc_hooks_t gm_gc_hooks;

#endif // GOMEM_MALLOCINT_H
