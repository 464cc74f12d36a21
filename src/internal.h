// internal.h: gomem's cross-file declarations, grouped by the file that
// defines them.
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
// Lock order (a thread holding one may only take those below it):
//   mcentral.lock  >  mheap.lock  >  fixalloc / registry locks
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
#include "gomem.h"
#include "mpagealloc.h"
#include "sizeclasses.h"

#include "lock.h"

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
// os_linux.c: the OS primitives, the only file that talks to the kernel.

void *os_reserve(size_t bytes, uintptr_t hint);       // PROT_READ|WRITE, NORESERVE
void *os_reserve_aligned(size_t bytes, size_t align); // NULL on failure
void os_unmap(void *p, size_t bytes);
void os_release(void *ctx, uintptr_t addr, size_t bytes); // MADV_DONTNEED
void os_hugepages(void *p, size_t bytes, bool on);        // MADV_(NO)HUGEPAGE
void os_write_stderr(const char *s, size_t n);
void gm_write_fd(int fd, const char *s, size_t n);
uint64_t os_nanotime(void);
pid_t os_gettid(void);
// os_stack_near sets [*lo, *hi) to a region holding the calling thread's
// stack: a hint for cheap checks, not exact bounds.
void os_stack_near(uintptr_t *lo, uintptr_t *hi);
// os_thread_create starts one of gomem's own threads: detached, every
// signal blocked, gm_tls_m.internal set, with the C library's
// pthread_create (never the collector's wrapper). 0 or an error number.
// Its first call resolves pthread_create (dlsym: it waits for the dynamic
// linker's lock), so it must not be made with a gomem lock held;
// os_thread_create(NULL, NULL) only resolves.
int os_thread_create(void *(*fn)(void *), void *arg);

// ---------------------------------------------------------------------------
// mfixalloc.c: off-heap allocator of fixed-size metadata records.

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

// ---------------------------------------------------------------------------
// mspan (mheap.c / mcache.c / mcentral.c)

enum span_state {
  SPAN_DEAD = 0, // on the fixalloc free list
  SPAN_SMALL,    // holds objects of sizeclass >= 1
  SPAN_LARGE,    // holds one large object (sizeclass 0)
};

// Where a span is listed. NONE: a thread's current span for its class (or
// not a small span). PARTIAL/FULL: mcentral's lists (mcentral.lock).
// OWN_PARTIAL/OWN_FULL: its owner's mcache lists (owner only).
// LIST_GC + 0..3: a gcentral list (mgcsweep.c: partial/full x sweepgen parity).
enum span_list_id {
  LIST_NONE = 0,
  LIST_PARTIAL,
  LIST_FULL,
  LIST_OWN_PARTIAL,
  LIST_OWN_FULL,
  LIST_GC
};

// Flags in the low bits of mspan.xfree (objects are 8-byte aligned):
//   XF_UNOWNED  no thread owns the span (it is on an mcentral list): remote
//               frees go through mcentral.lock, not the list.
//   XF_FULL     the owner parked the span on its full list and will not look
//               at it again unless told: the next remote free must notify it.
//   XF_NOTED    a notification for the span is on (or entering) its owner's
//               xspans list; set by the notifying freer, cleared only by the
//               owner when it takes that list. While set, the span is never
//               notified again, re-parked with XF_FULL, or given away.
#define XF_UNOWNED ((uintptr_t)1)
#define XF_FULL ((uintptr_t)2)
#define XF_NOTED ((uintptr_t)4)
#define XF_FLAGS ((uintptr_t)7)

// WINDOW_NONE in mspan.window: no window loaded (the span is not current).
#define WINDOW_NONE 0xFFFF
#define TRIGGER_NONE 0xFFFF // above any nfree

typedef struct mcache mcache_t;
typedef struct mspan mspan_t;

// What a span's objects are for.
enum span_kind {
  SPAN_MANUAL = 0, // malloc/free objects; never scanned or swept
  SPAN_GC_SCAN,    // gm_alloc objects: scanned conservatively
  SPAN_GC_NOSCAN,  // gm_alloc_noscan objects: never scanned
};

// gcbits: a GC span's collector state, off-heap (mgcsweep.c allocates it).
typedef struct gcbits {
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
} gcbits_t;
#define GCBITS_SMALL_WORDS 8 // records for spans of up to 512 objects

struct mspan {
  // Line 0: what every free of an object of the span reads, and the first
  // bitmap words, so that freeing into a span of up to 192 objects (every
  // class of 48 bytes and up) reads one line of the record. The fields before
  // alloc_bits change only when the span is created or changes owner.
  uintptr_t base;    // first byte (immutable while in use)
  uint32_t limit;    // nelems * elemsize: offsets of objects are below it
                     // (0 for large spans and span_empty; immutable)
  uint32_t elemsize; // immutable while in use
  uint32_t divmul;   // immutable: offset * divmul >> 32 == offset / elemsize
  uint16_t nelems;   // immutable
  uint8_t sizeclass; // immutable; 0 for large spans
  uint8_t kind;      // enum span_kind (immutable while in use)
  // owner: the mcache holding the span, or NULL. Written only by the owning
  // thread (to itself when taking the span, to NULL when giving it away);
  // other threads read it only to learn "not mine": relaxed atomics suffice.
  // Always NULL for GC spans (they are cached, never owned: see mgcsweep.c).
  _Atomic(mcache_t *) owner;
  // GC spans only (kind != SPAN_MANUAL; immutable while in use):
  gcbits_t *gc; // mark bits and window snapshot
  // alloc_bits: 1 = allocated or reserved by the window. Bits past nelems are
  // always 1. Owner fields (see below). Written by the owner when a window
  // loads and when frees reach the bitmap (most owner frees go to its lifo).
  uint64_t alloc_bits[GM_BITMAP_WORDS];
  size_t npages; // immutable while in use (large: grows under mheap.lock)
  // sweepgen: == gm_sweepgen: swept this cycle; otherwise unswept. Written by
  // the span's sweeper (mcentral lock, or the caching thread), read by all.
  _Atomic uint32_t sweepgen;
  uint8_t state; // enum span_state (mheap.lock to change)

  // Owner-hot line. Owner fields: while a thread owns the span they belong
  // to it (no atomics); while no thread does, to mcentral.lock.
  _Alignas(64) uint64_t alloc_cache; // free slots of the window (1 = free, reserved)
  uintptr_t window_base;             // address of the object at bit 0 of alloc_cache
  uint16_t nfree;                    // 0 bits of alloc_bits (neither allocated nor reserved)
  // trigger: an owner free that brings nfree to it must look at the span's
  // list (OWN_FULL: partial_min, OWN_PARTIAL: nelems, otherwise TRIGGER_NONE),
  // so the free path tests one predictable condition.
  uint16_t trigger;
  uint16_t window;      // alloc_bits word that alloc_cache stands for, or WINDOW_NONE
  uint8_t list;         // enum span_list_id (same protection as the links)
  uint8_t needzero;     // large spans: memory may be dirty (mheap.lock)
  mspan_t *next, *prev; // list links (mcentral.lock, or owner for OWN_ lists)

  // Remote-hot line: written by other threads' frees, so kept off the
  // owner's lines.
  // xfree: remote free list (objects linked through their first word) | XF_*
  // flags. Pushed with CAS by any thread; taken by the owner (CAS keeping
  // XF_NOTED) or, with mcentral.lock held, by the thread giving the span away.
  _Alignas(64) _Atomic uintptr_t xfree;
  // xnext: link in the owner's xspans notification stack; written by the one
  // freer whose CAS set XF_NOTED, read by the owner after taking the stack.
  mspan_t *xnext;
};

// ---------------------------------------------------------------------------
// arena.c: the two-level arena map and per-arena metadata.

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

// ---------------------------------------------------------------------------
// mheap.c

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
  // [arena_lo, arena_hi): the span of addresses holding arenas, the
  // collector's first filter for conservative pointers (written under lock).
  _Atomic uintptr_t arena_lo, arena_hi;
} mheap_t;

extern mheap_t gm_heap;

void mheap_init(void);
mspan_t *mheap_alloc_span(size_t npages, uint8_t sizeclass, size_t align_pages);
void mheap_free_span(mspan_t *s);
bool mheap_grow_span_in_place(mspan_t *s, size_t npages);

// ---------------------------------------------------------------------------
// mspan helpers (mcache.c)

void span_init_small(mspan_t *s, uint8_t sizeclass);
bool span_next_window(mspan_t *s);
void span_bad_object(uintptr_t p) __attribute__((noreturn, cold));

// span_object_index returns the index of the object starting at p in small
// span s; a pointer to the inside of an object, to the tail past the last
// object, or misaligned, is a fatal error.
GM_INLINE uint16_t span_object_index(const mspan_t *s, uintptr_t p) {
  uintptr_t off = p - s->base;
  uint32_t idx = (uint32_t)(((uint64_t)off * s->divmul) >> 32);
  if (unlikely((uintptr_t)idx * s->elemsize != off || idx >= s->nelems))
    span_bad_object(p);
  return (uint16_t)idx;
}
// span_allocated: is object idx of small span s allocated? Its bit is set
// and it is not a free slot of the window (still in alloc_cache).
GM_INLINE bool span_allocated(const mspan_t *s, uint16_t idx) {
  uint64_t bit = 1ULL << (idx & 63);
  unsigned w = idx >> 6;
  return (s->alloc_bits[w] & bit) && !(w == s->window && (s->alloc_cache & bit));
}
void span_validate(const mspan_t *s);

// span_take_slot hands out the lowest free slot of s's window (alloc_cache
// != 0): ctz + clear lowest bit, the allocation fast path's core.
GM_INLINE void *span_take_slot(mspan_t *s) {
  uint64_t v = s->alloc_cache;
  s->alloc_cache = v & (v - 1);
  return (void *)(s->window_base + (uint32_t)__builtin_ctzll(v) * (uintptr_t)s->elemsize);
}

// span_unreserve_window gives s's unused window slots back to its bitmap and
// unloads the window; returns the slots given back (bits of the window).
GM_INLINE uint64_t span_unreserve_window(mspan_t *s) {
  uint64_t left = s->alloc_cache;
  if (left != 0) {
    s->alloc_bits[s->window] &= ~left;
    s->nfree += (uint16_t)gm_popcount(left);
    s->alloc_cache = 0;
  }
  s->window = WINDOW_NONE;
  return left;
}

// ---------------------------------------------------------------------------
// mcentral.c

typedef struct mcentral {
  gm_mutex_t lock;
  mspan_t *partial; // spans with free slots, no owner (lock)
  mspan_t *full;    // spans without free slots, no owner (lock)
  size_t nspans;    // spans on the two lists (lock)
  char pad[64];
} mcentral_t;

extern mcentral_t gm_central[GM_NUM_SIZE_CLASSES];

void mcentral_init(void);
mspan_t *mcentral_cache_span(uint8_t sizeclass);
void mcentral_uncache_span(mspan_t *s);
void mcentral_free_batch(uint8_t sizeclass, uintptr_t list, mcache_t *c);
void mcentral_validate(uint8_t sizeclass);

// ---------------------------------------------------------------------------
// mcache.c

typedef struct class_stats {
  _Atomic uint64_t nmalloc; // objects handed to this cache's windows
  _Atomic uint64_t nfree;   // objects freed by this thread, but onto its lifo
  _Atomic uint64_t nlifo;   // objects freed onto its lifo (exited threads only)
} class_stats_t;

// lifo_t: one class's list of a thread. head: the last object freed (0: none);
// a listed object stays allocated in alloc_bits (nothing else hands it out,
// and its span cannot be given away while it is listed); its word 0 holds
// lifo_check(p, next), word 1 the link. state: how many more objects the list
// takes (low 16 bits: lifo_cap - listed) and how many were ever pushed
// (above): a push adds LIFO_PUSH - 1, a pop adds 1, so each is one add and
// gm_stats reads both counts in one word.
typedef struct lifo {
  uintptr_t head;
  _Atomic uint64_t state;
} lifo_t;
#define LIFO_PUSH ((uint64_t)1 << 16)
#define LIFO_ROOM(st) ((uint16_t)(st))
#define LIFO_PUSHES(st) ((st) >> 16)

// mclass_t: a thread's hot state for one size class, 32 bytes (two per
// cache line): the malloc and free fast paths of the class touch this record
// and the span alone.
//   alloc  the current span (&span_empty when none; owner only)
//   lifo   objects this thread freed into spans it owns, most recent first;
//          malloc hands them out again before the window, while they are
//          still in cache (free.c). Owner only, but lifo.state, which
//          gm_stats reads relaxed.
//   nfree  objects freed by this thread, but onto the list (owner writes,
//          anyone reads)
typedef struct mclass {
  mspan_t *alloc;
  lifo_t lifo;
  _Atomic uint64_t nfree;
} mclass_t;

struct mcache {
  // cls: what malloc and free touch per class, on one half cache line.
  mclass_t cls[GM_NUM_SIZE_CLASSES];
  // last_span: the small span this thread last freed into through the arena
  // map, always one it owns (&span_empty when none); gm_free checks it first.
  // Reset whenever the thread gives a span away (owner only).
  mspan_t *last_span;
  // GC spans cached by span class (&span_empty when none), the current tiny
  // block (0: none) and its first free byte, and GC bytes handed to windows
  // not yet added to gc_heap_live. Owner only, inside critical sections but
  // for the allocation fast paths; the collector reads (and resets
  // gc_alloc_local) with the world stopped.
  mspan_t *gcalloc[GM_NUM_SPAN_CLASSES];
  uintptr_t tiny;
  uintptr_t tiny_off;
  uint64_t gc_alloc_local;
  // Spans this thread owns besides the current ones (owner only): partial
  // (at least partial_min free slots) and full.
  mspan_t *partial[GM_NUM_SIZE_CLASSES];
  mspan_t *partial_tail[GM_NUM_SIZE_CLASSES];
  mspan_t *full[GM_NUM_SIZE_CLASSES];
  // xspans: spans on the full list that received a remote free (XF_NOTED),
  // pushed by freers with CAS, taken whole by the owner with exchange. On a
  // line of its own: other threads write it.
  _Alignas(64) _Atomic(mspan_t *) xspans;
  char xspans_pad[56];
  _Atomic uint64_t nmalloc[GM_NUM_SIZE_CLASSES]; // objects handed to windows (owner writes)
  // Frees of objects in unowned spans, batched per class so mcentral.lock
  // is taken once per PEND_MAX objects (owner only). Linked through objects.
  uintptr_t pend[GM_NUM_SIZE_CLASSES];
  uint32_t pend_n[GM_NUM_SIZE_CLASSES];
  _Atomic uint64_t trim_epoch; // last gm_release_memory epoch honoured (owner)
  mcache_t *next;              // all-caches list (registry lock)
  // The thread that made the cache (mcache_check_owner; owner only).
  pid_t owner_tid;
  uintptr_t stack_lo, stack_hi; // a region holding its stack (os_stack_near)
  // ldso_pending: a block that ld.so's realloc moved, freed at this thread's
  // next such realloc or exit (malloc.c; owner only).
  uintptr_t ldso_pending;
};

extern _Atomic uint64_t gm_trim_epoch;
extern mspan_t span_empty;
extern mcache_t mcache_empty;
extern mcache_t mcache_shared; // the cache of threads sharing TLS (mcache.c)
void mcache_share_tls(void);
mcache_t *mcache_shared_self(void);
extern __thread mcache_t *gm_tls_mcache __attribute__((tls_model("initial-exec")));

void *mcache_refill_alloc(mcache_t *c, uint8_t sizeclass);

// The per-thread free lists (lifo, above; free.c). lifo_cap: list length per
// class (0 for 8-byte objects, which have no room for the check word).
// lifo_key: random, bit 63 set, so a check word is never a heap address or 0
// (what a remote free or malloc's pop writes into word 0).
extern uint16_t lifo_cap[GM_NUM_SIZE_CLASSES];
extern uintptr_t lifo_key;
GM_INLINE uintptr_t lifo_check(uintptr_t p, uintptr_t next) {
  return p ^ next ^ lifo_key;
}
void lifo_init(void);
void lifo_corrupt(uintptr_t p) __attribute__((noreturn, cold));
void *lifo_corrupt_pop(uintptr_t p) __attribute__((cold)); // never returns (tail-called)
void lifo_drain(mcache_t *c);                              // every listed object back to its span
void lifo_validate(const mcache_t *c);

// lifo_pop takes p, the head of list l: the check word must still tie p to
// its link (else the object was written after free, or freed again by
// another thread), and is cleared so that p does not look listed.
GM_INLINE void *lifo_pop(lifo_t *l, uintptr_t p) {
  uintptr_t *o = (uintptr_t *)p;
  uintptr_t next = o[1];
  if (unlikely(o[0] != lifo_check(p, next)))
    return lifo_corrupt_pop(p); // a jump: malloc's fast path needs no frame
  o[0] = 0;
  l->head = next;
  relaxed_store(&l->state, relaxed_load(&l->state) + 1);
  return (void *)p;
}
mcache_t *mcache_for_thread(void); // creates the thread's cache if needed
void mcache_release_all(mcache_t *c);
void mcache_free_owned(mcache_t *c, mspan_t *s, uintptr_t p);
uintptr_t span_take_xfree(mspan_t *s);

// partial_min returns how many free slots make a span partial: 1/4 of its
// slots (at least 1), so that taking a span buys a window's worth of objects.
GM_INLINE uint16_t partial_min(const mspan_t *s) {
  return s->nelems >= 8 ? s->nelems / 4 : 1;
}
void mcache_flush_pending(mcache_t *c, uint8_t sizeclass);
void mcache_sum_stats(gm_stats_t *st);
void mcache_thread_init(void);
void mcache_fork_child(void);
// mcache_for_each calls fn on every thread's cache (world stopped).
void mcache_for_each(void (*fn)(mcache_t *c, void *ctx), void *ctx);
// The thread-exit path. One pthread key destructor per thread releases its
// caches (mcache_release_all), then runs the hook (the collector's: leave
// its registry). mcache_arm_exit makes it run for the calling thread even if
// it has no cache.
void mcache_set_exit_hook(void (*fn)(void));
void mcache_arm_exit(void);
// mcache_check_owner: a thread created by clone() without CLONE_SETTLS shares
// its parent's TLS, and so its cache: fatal (refill paths check it).
void mcache_foreign_thread(mcache_t *c) __attribute__((noreturn, cold));

// ---------------------------------------------------------------------------
// malloc.c

extern _Atomic int gm_inited;
void gm_init_slow(void);
GM_INLINE void gm_ensure_init(void) {
  // acquire: what initialisation wrote (options, tables) is visible after
  if (unlikely(atomic_load_explicit(&gm_inited, memory_order_acquire) != 2))
    gm_init_slow();
}
void *malloc_large(size_t size, size_t align, bool zero);
size_t gm_class_of(size_t size);
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

// ---------------------------------------------------------------------------
// free.c

void free_slow(void *p, mspan_t *s, mcache_t *c);
void free_lookup(void *p, mcache_t *c);
void free_local_slow(void *p, mspan_t *s, mcache_t *c);
void span_collect_remote(mspan_t *s); // owner: apply xfree list to bits
void span_apply_xfree(mspan_t *s, uintptr_t list);
bool free_push_remote(mspan_t *s, uintptr_t p, uintptr_t old); // false: s is unowned
void free_apply(mspan_t *s, uintptr_t p); // owner or mcentral.lock: mark p free

// ---------------------------------------------------------------------------
// mgcscavenge.c

void scavenger_kick(size_t dirty_pages); // after a span free: start / wake the scavenger
size_t scavenge_all(void);               // release every free page now
void scavenger_init(void);
void scavenger_fork_child(void);

// ---------------------------------------------------------------------------
// options.c

typedef struct gm_options {
  bool stats_at_exit;      // GOMEM_STATS
  bool scavenger;          // GOMEM_SCAVENGE (default on)
  unsigned scavenge_ms;    // GOMEM_SCAVENGE_MS: scavenger tick
  unsigned retain_percent; // GOMEM_RETAIN_PERCENT: kept over recent peak
  unsigned debug;          // GOMEM_DEBUG: 1 = validate heap on every slow path
  bool hugepages;          // GOMEM_HUGEPAGES: back arenas with transparent huge pages
  bool gctrace;            // GOMEM_GCTRACE: one line per collection
  unsigned gc_procs;       // GOMEM_GC_PROCS: mark workers (0 = CPUs)
  bool gc_pad;             // GOMEM_GC_PAD: GC objects one byte longer
  int gogc;                // GOMEM_GOGC (when gogc_set)
  bool gogc_set;
} gm_options_t;

extern gm_options_t gm_opt;
void options_init(void);
void options_print(int fd);

// ---------------------------------------------------------------------------
// mstats.c / panic

void mstats_init(void);
size_t gm_fmt(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif // GOMEM_INTERNAL_H
