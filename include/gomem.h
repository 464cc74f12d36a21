// gomem.h: gomem's public API.
//
// gomem is Go's runtime memory manager rebuilt in C: size-classed spans of
// 8 KiB pages, a lock-free per-thread cache (mcache), per-class central lists
// (mcentral), one heap of 64 MiB arenas with Go's radix-tree page allocator,
// and a background scavenger that returns unused memory to the OS.
//
// Linking libgomem (or LD_PRELOAD=libgomem.so) replaces malloc, free and the
// rest of the C allocator; the gm_* names below are the same functions under
// gomem's own names, for programs that want to call them explicitly.
#ifndef GOMEM_H
#define GOMEM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GM_VERSION_MAJOR 0
#define GM_VERSION_MINOR 1

// ---------------------------------------------------------------------------
// Allocation (malloc-compatible semantics: NULL and errno = ENOMEM on failure)

void *gm_malloc(size_t size);
void *gm_calloc(size_t count, size_t size);
void *gm_realloc(void *p, size_t size);
void *gm_reallocarray(void *p, size_t count, size_t size);
void gm_free(void *p);
int gm_posix_memalign(void **out, size_t align, size_t size);
void *gm_aligned_alloc(size_t align, size_t size);
void *gm_memalign(size_t align, size_t size);
size_t gm_usable_size(const void *p);

// gm_owns reports whether p points into gomem's heap at an object slot of a
// span in use (start or interior): true for every live object; a freed small
// object's slot stays "owned" while its span is in use (a freed large object
// is not owned). Cheap and safe to call on any address.
int gm_owns(const void *p);

// ---------------------------------------------------------------------------
// Memory return

// gm_release_memory returns every free page of the heap to the OS now and
// returns the number of bytes released (Go's debug.FreeOSMemory). The calling
// thread's cache is flushed first; other threads flush theirs at their next
// cache refill. malloc_trim(0) does the same.
size_t gm_release_memory(void);

// ---------------------------------------------------------------------------
// Statistics, modelled on Go's runtime.MemStats.

#define GM_NUM_CLASSES 68 // size classes, including class 0 (large objects)

typedef struct gm_class_stats {
  uint32_t size;    // object size of the class (0: large objects)
  uint64_t mallocs; // objects allocated (see note on gm_stats_t)
  uint64_t frees;   // objects freed
} gm_class_stats_t;

typedef struct gm_stats {
  uint64_t heap_alloc;    // bytes in allocated objects (object sizes)
  uint64_t heap_sys;      // bytes of address space reserved for the heap
  uint64_t heap_idle;     // bytes in free pages (some of them released)
  uint64_t heap_inuse;    // bytes in in-use spans
  uint64_t heap_released; // bytes of free pages returned to the OS
  uint64_t heap_objects;  // allocated objects
  uint64_t mallocs;       // cumulative objects allocated
  uint64_t frees;         // cumulative objects freed
  uint64_t meta_sys;      // bytes of metadata (spans, caches, arena maps)
  uint64_t num_threads;   // live thread caches
  // Small objects are counted when a thread's cache reserves them (up to 64
  // slots at a time): mallocs may run ahead by up to 63 objects per size
  // class per thread; frees are counted when they happen.
  gm_class_stats_t by_size[GM_NUM_CLASSES];
} gm_stats_t;

// gm_stats fills *st. Safe from any thread at any time; counters are read one
// by one, so a snapshot taken while other threads allocate is approximate.
void gm_stats(gm_stats_t *st);

// gm_print_stats_fd writes a readable summary to file descriptor fd
// (GOMEM_STATS=1 does this at exit on stderr).
void gm_print_stats_fd(int fd);

#ifdef __cplusplus
}
#endif

#endif // GOMEM_H
