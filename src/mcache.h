// mcache.h: the per-thread cache (mcache.c, twin of Go's mcache.go) and
// the per-thread free lists (free.c).
//
// Invariants: a thread's cache is used only by that thread (but for the
// counters gm_stats reads relaxed and the xspans stack other threads push
// to); a span a cache owns is on exactly one of: current, partial list, full
// list.
//
// Locking: registry_lock (RANK_REGISTRY) for the list of all caches;
// shared_lock (RANK_SHARED) for threads that share TLS. Nothing else.
#ifndef GOMEM_MCACHE_H
#define GOMEM_MCACHE_H

#include "mspan.h"

typedef struct class_stats {
  _Atomic uint64_t nmalloc; // objects handed to this cache's windows
  _Atomic uint64_t nfree;   // objects freed by this thread, but onto its lifo
  _Atomic uint64_t nlifo;   // objects freed onto its lifo (exited threads only)
} class_stats_t;

// lifo_t: one class's list of a thread. head: the last object freed (0: none);
// a listed object stays allocated in alloc_bits (nothing else hands it out,
// and its span cannot be given away while it is listed); its word 0 holds
// lifo_word(p, next): the link and a tag (below). state: how many more objects the list
// takes (low 16 bits: lifo_cap - listed) and how many were ever pushed
// (above): a push adds LIFO_PUSH - 1, a pop adds 1, so each is one add and
// gm_stats reads both counts in one word.
typedef struct lifo {
  uintptr_t head;
  _Atomic uint64_t state;
} lifo_t;
#define SEC_QUARANTINE 64 // hardened build: freed small objects held back per thread
#define SEC_RECENT 2      // hardened build: recent frees checked at every allocation
#define LIFO_PUSH ((uint64_t)1 << 16)
#define LS_MAX 64 // bound of mcache.ls_score (free.c: the last span's modes)
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
  // sample_left: bytes malloc may hand out before its next heap profile
  // sample (mprof.c; INT64_MAX while profiling is off). Owner only.
  int64_t sample_left;
  // last_span: the small span this thread last freed into through the arena
  // map, always one it owns (&span_empty when none); gm_free checks it first.
  // Reset whenever the thread gives a span away (owner only). While its frees
  // mostly miss it, it stays &span_empty for ls_skip frees, so gm_free goes
  // to the arena map without a mispredicted branch (free.c: the last span's
  // modes; ls_score and ls_mark are theirs). Owner only.
  mspan_t *last_span;
  mclass_t *ls_cls; // &cls[last_span->sizeclass] (stale while last_span is &span_empty)
  uint64_t ls_mark;
  int32_t ls_score;
  uint32_t ls_skip;
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
  // spare_bytes: the size of the empty spans on the partial lists, which a
  // thread keeps rather than send them through mheap (up to SPARE_MAX;
  // mcache_file). Owner only.
  size_t spare_bytes;
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
  uint64_t prof_epoch;         // prof_epoch when sample_left was drawn (owner)
  mcache_t *next;              // all-caches list (registry lock)
  // The thread that made the cache (mcache_check_owner; owner only).
  pid_t owner_tid;
  uintptr_t stack_lo, stack_hi; // a region holding its stack (os_stack_near)
  // ldso_pending: a block that ld.so's realloc moved, freed at this thread's
  // next such realloc or exit (malloc.c; owner only).
  uintptr_t ldso_pending;
#if GM_SECURE
  // The hardened build's per-thread state (secure.c; owner only): freed
  // objects waiting for reuse (quarantine, evicted at random), the last
  // objects freed and allocated (checked at every allocation), its random state,
  // and ld.so's moved block.
  uintptr_t sec_q[SEC_QUARANTINE];
  uint32_t sec_qsize[SEC_QUARANTINE], sec_qn, sec_qbytes;
  uintptr_t sec_freed[SEC_RECENT], sec_alloced;
  uint32_t sec_freed_i;
  struct mspan *sec_alloced_span; // sec_alloced's span (c's until sec_alloced is cleared)
  uint64_t sec_alloced_raw;       // the trailer word malloc wrote there
  uint64_t sec_rng;
  uintptr_t sec_ldso_pending;
#endif
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
// class. A listed object's one word (so 8-byte objects have lists too):
// the link (0, or a heap address: below 2^47) in the low 48 bits, and a
// 16-bit tag tying it to the object's address: bit 63 set (so the word is
// never a heap address or 0, what a remote free or malloc's pop writes
// there), and 15 bits of p ^ next keyed with lifo_tag_key (lifo_key's top
// 16 bits; lifo_key is random). A word that merely looks like one (1 in 2^15
// of values with bit 63 set) only costs a walk of the list, which tells. (p
// and a real link are 8-aligned, so the shifted p ^ next leaves the link's
// bits clear: no mask needed.)
#define LIFO_LINK_MASK (((uintptr_t)1 << 48) - 1)
extern uint16_t lifo_cap[GM_NUM_SIZE_CLASSES];
extern uintptr_t lifo_key, lifo_tag_key;
GM_INLINE uintptr_t lifo_word(uintptr_t p, uintptr_t next) {
  return next | (((p ^ next) << 45) ^ lifo_tag_key) | (uintptr_t)1 << 63;
}
void lifo_init(void);
void lifo_corrupt(uintptr_t p) __attribute__((noreturn, cold));
void *lifo_corrupt_pop(uintptr_t p) __attribute__((cold)); // never returns (tail-called)
void lifo_drain(mcache_t *c);                              // every listed object back to its span
void lifo_validate(const mcache_t *c);

// lifo_pop takes p, the head of list l: its word must still tie p to its
// link (else the object was written after free, or freed again by another
// thread), and is cleared so that p does not look listed.
GM_INLINE void *lifo_pop(lifo_t *l, uintptr_t p) {
  uintptr_t *o = (uintptr_t *)p;
  uintptr_t next = o[0] & LIFO_LINK_MASK;
  if (unlikely(o[0] != lifo_word(p, next)))
    return lifo_corrupt_pop(p); // a jump: malloc's fast path needs no frame
  o[0] = 0;
  l->head = next;
  owner_inc(&l->state);
  return (void *)p;
}
mcache_t *mcache_for_thread(void); // creates the thread's cache if needed
void mcache_release_all(mcache_t *c);
void mcache_free_owned(mcache_t *c, mspan_t *s, uintptr_t p);

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
// mcache_flush_hook (hardened build: secure.c) gives back what a cache holds
// beyond its spans (its quarantine), first thing at thread exit and in
// gm_release_memory, while the cache is still the thread's.
extern void (*mcache_flush_hook)(mcache_t *c);
void mcache_arm_exit(void);
// mcache_check_owner: a thread created by clone() without CLONE_SETTLS shares
// its parent's TLS, and so its cache: fatal (refill paths check it).
void mcache_foreign_thread(mcache_t *c) __attribute__((noreturn, cold));

#endif // GOMEM_MCACHE_H
