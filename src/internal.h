// internal.h: what crosses every layer of gomem's allocator and collector:
// the glossary, the heap's geometry and the options. Each component has a
// header of its own (mspan.h, mheap.h, mcache.h, ...); this one names none.
//
// Glossary
//   page       8 KiB, the heap's unit (GM_PAGE_SIZE).
//   size class one of 67 object sizes <= 32 KiB (sizeclasses.h); class 0 = large.
//   span       mspan: a run of pages holding objects of one size class, or one
//              large object. Small spans carry an allocation bitmap.
//   window     the 64 objects of a cached span whose free bits sit in
//              alloc_cache; allocating is ctz + clear-lowest-bit on that word.
//   mcache     a thread's cache: one span per size class, no locks.
//   mcentral   per size class: spans no thread owns (partial and full).
//   mheap      the global heap: arenas, the page allocator, large objects.
//   arena      64 MiB of address space reserved from the OS at once.
//   scavenge   return free pages to the OS (madvise) while keeping the range.
//
// Lock order: written once, in lock.h (enum lock_rank), and checked in debug
// builds.
#ifndef GOMEM_INTERNAL_H
#define GOMEM_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bits.h"
#include "gmcore.h"
#include "gomem.h"
#include "lock.h"
#include "mpagealloc.h"
#include "sizeclasses.h"

// GM_VALIDATE: run the invariant validators (span_validate,
// mcentral_validate_locked, pagealloc_validate) on this slow-path operation:
// always in the debug build, at run time with GOMEM_DEBUG=1.
#define GM_VALIDATE (GM_DEBUG >= 2 || unlikely(gm_opt.debug))

// ---------------------------------------------------------------------------
// Heap geometry

#define GM_ARENA_SHIFT 26 // 64 MiB arenas
#define GM_ARENA_SIZE ((uintptr_t)1 << GM_ARENA_SHIFT)
#define GM_PAGES_PER_ARENA (GM_ARENA_SIZE / GM_PAGE_SIZE) // 8192
#define GM_ADDR_BITS PA_ADDR_BITS
#define GM_ARENA_L1_BITS 10
#define GM_ARENA_L2_BITS (GM_ADDR_BITS - GM_ARENA_SHIFT - GM_ARENA_L1_BITS) // 11
#define GM_BITMAP_WORDS (GM_MAX_OBJS_PER_SPAN / 64)
#define GM_WORD_ALIGN 8 // alignment of every object; >= 16 via memalign paths
#define GM_NUM_SPAN_CLASSES (2 * GM_NUM_SIZE_CLASSES) // GC span classes

// ---------------------------------------------------------------------------
// options.c

typedef struct gm_options {
  bool stats_at_exit;       // GOMEM_STATS
  bool scavenger;           // GOMEM_SCAVENGE (default on)
  unsigned scavenge_ms;     // GOMEM_SCAVENGE_MS: scavenger tick
  unsigned retain_percent;  // GOMEM_RETAIN_PERCENT: kept over recent peak
  unsigned debug;           // GOMEM_DEBUG: 1 = validate heap on every slow path
  bool hugepages;           // GOMEM_HUGEPAGES: back arenas with transparent huge pages
  bool stack_mprotect;      // GOMEM_STACK_MPROTECT: coroutine stack guards by mprotect
  bool gctrace;             // GOMEM_GCTRACE: one line per collection
  unsigned gc_procs;        // GOMEM_GC_PROCS: mark workers (0 = CPUs)
  bool gc_pad;              // GOMEM_GC_PAD: GC objects one byte longer
  bool gc_concurrent;       // GOMEM_GC_CONCURRENT: mark beside the program
  bool gc_barrier_explicit; // GOMEM_BARRIER=explicit: gm_store instead of page tracking
  bool gc_fractional;       // GOMEM_GC_FRACTIONAL (default 1): the marker pauses to keep its share
  bool wtrack;              // GOMEM_WTRACK (1): 0 acts as if the kernel could not track writes
  bool guard_memops;        // GOMEM_GUARD_MEMOPS: hardened build's checked memcpy & co.
  uint64_t memlimit;        // GOMEM_MEMLIMIT in bytes (0: none)
  int gogc;                 // GOMEM_GOGC (when gogc_set)
  bool gogc_set;
} gm_options_t;

extern gm_options_t gm_opt;

// gm_forked: this process is the child of a fork (set by gomem's fork
// handler). POSIX allows a multithreaded program's child only async-signal-
// safe calls until it execs, and sanitizer runtimes (GCC 12's ASan) can
// deadlock in pthread_create there, so in the child gomem starts none of
// its optional threads: marking runs on the collecting thread, sweeping is
// lazy, memory goes back to the OS only through gm_release_memory. (The
// finalizer thread still starts if a finalizer is due.)
extern _Atomic bool gm_forked;
void options_init(void);
void options_print(int fd);

#endif // GOMEM_INTERNAL_H
