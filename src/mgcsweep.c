// mgcsweep.c: GC spans, their central lists and sweeping, twin of Go's
// mcentral.go (for GC spans) and mgcsweep.go.
//
// GC objects live in spans of their own (kind SPAN_GC_SCAN or SPAN_GC_NOSCAN,
// never mixed with malloc's spans), one span class per (size class, noscan)
// pair: spc = sizeclass * 2 + noscan. A thread caches one span per span class
// (mcache.gcalloc) and allocates from its window like malloc does; GC spans
// are never owned, and objects in them are freed by sweeping, not by the
// program, so a cached span goes back to its gcentral as soon as it is full
// (Go's model) instead of staying with the thread.
//
// Sweeping. Every GC span carries mark bits (gcbits_t) and a sweepgen. The
// collector adds 2 to gm_sweepgen at the end of each mark phase; a span with
// sweepgen == gm_sweepgen is swept, any other value means unswept: its
// alloc_bits still describe the heap before that mark phase. Sweeping a span
// applies its marks:
//     alloc_bits = alloc_bits & (mark | black)      mark = 0
// where black is the window snapshot of a span that was cached when the
// world stopped (slots free then, handed out since: allocated black).
// Objects are never touched. Who sweeps:
//   - uncached spans, under their gcentral's lock: lazily when a thread needs
//     a span of that class (gcentral_cache_span, Go's budget of 100 spans),
//     and in the background (gc_sweep_all, from the sweeper thread and before
//     each cycle starts);
//   - a cached span, only by the thread caching it, when its window runs dry
//     or it gives the span back (gc_sweep_cached).
// Both run inside critical sections, so when the world stops no span is half
// swept, and gm_sweepgen (changed only while the world is stopped) is stable
// inside any critical section.
//
// Lists. A gcentral keeps uncached spans on partial (some slot free) and
// full lists, two of each indexed by sweepgen parity as in Go: with sg =
// gm_sweepgen, list [sg/2 % 2] holds swept spans and the other one unswept
// spans. Adding 2 to gm_sweepgen turns every swept list into an unswept one.
// Fully free spans go back to mheap when swept. Large GC objects have one span
// each, kept on one list (gc_large) and swept by gc_sweep_all or freed by the
// program with gm_free.
#include <string.h>

#include "arena.h"
#include "interpose.h"
#include "mallocint.h"
#include "mfinal.h"
#include "mfixalloc.h"
#include "mgc.h"
#include "mgcalloc.h"
#include "mgcmark.h"
#include "mgcsweep.h"
#include "mheap.h"
#include "mprof.h"

gcentral_t gc_central[GM_NUM_SPAN_CLASSES];
_Atomic uint32_t gm_sweepgen = 2;

// gcbits records in two sizes: most classes have at most 512 objects per
// span, and the mark bits are a large part of a small span's metadata.
static fixalloc_t gcbits_alloc;       // full size (1024 objects)
static fixalloc_t gcbits_small_alloc; // up to 512 objects
static gm_mutex_t large_lock = GM_MUTEX_INIT(RANK_LARGE);
static mspan_t *large_spans; // every large GC span (large_lock)

// Sweeper thread: sweeps after each cycle while programs allocate.
static gm_mutex_t sweeper_lock = GM_MUTEX_INIT(RANK_SWEEPER);
// sweep_gate: the sweeper sweeps a batch of spans (or the large spans) at a
// time holding it; the collector holds it from before it stops the world
// until it has restarted it, so the sweeper never touches a span while marks
// are being set, and the collector waits for one batch at most.
static gm_mutex_t sweep_gate = GM_MUTEX_INIT(RANK_SWEEP_GATE);
static pthread_cond_t sweeper_cond = PTHREAD_COND_INITIALIZER;
static bool sweeper_started;  // sweeper_lock
static uint64_t sweeper_work; // cycles to sweep after (sweeper_lock)

void gcsweep_init(void) {
  fixalloc_init(&gcbits_alloc, sizeof(gcbits_t) + GM_BITMAP_WORDS * sizeof(uint64_t));
  fixalloc_init(&gcbits_small_alloc, sizeof(gcbits_t) + GCBITS_SMALL_WORDS * sizeof(uint64_t));
  for (int i = 0; i < GM_NUM_SPAN_CLASSES; i++) {
    pthread_mutex_init(&gc_central[i].lock.m, NULL);
    gc_central[i].lock.rank = RANK_GCENTRAL;
    lock_fork_register(&gc_central[i].lock);
  }
  lock_fork_register(&large_lock);
  lock_fork_register(&sweeper_lock);
  lock_fork_register(&sweep_gate);
}

#define SWEPT(sg) (((sg) / 2) % 2)
#define UNSWEPT(sg) (1 - SWEPT(sg))

// gcsweep_meta_bytes: bytes mapped for mark-bit records (statistics).
size_t gcsweep_meta_bytes(void) {
  return fixalloc_sys(&gcbits_alloc) + fixalloc_sys(&gcbits_small_alloc);
}

// ---------------------------------------------------------------------------
// Span set up and release

// gc_span_setup makes fresh span s (from mheap) a GC span of spc, swept for
// the current cycle. Returns false when out of memory (s is then freed).
static fixalloc_t *gcbits_for(unsigned nelems) {
  return nelems <= GCBITS_SMALL_WORDS * 64 ? &gcbits_small_alloc : &gcbits_alloc;
}

_Atomic uint64_t gc_span_bytes;

static bool gc_span_setup(mspan_t *s, uint8_t spc) {
  unsigned nelems = spc_sizeclass(spc) ? class_to_nelems[spc_sizeclass(spc)] : 1;
  gcbits_t *g = fixalloc_alloc(gcbits_for(nelems));
  if (g == NULL) {
    mheap_free_span(s);
    return false;
  }
  g->snap_window = WINDOW_NONE;
  if (spc_sizeclass(spc) != 0)
    span_init_small(s, spc_sizeclass(spc));
  s->list = LIST_NONE;
  s->next = s->prev = NULL;
  s->gc = g;
  atomic_store_explicit(&s->sweepgen, relaxed_load(&gm_sweepgen), memory_order_relaxed);
  // Last, with release: a concurrent marker that finds the span a GC span
  // (acquire, gc_span_kind) sees it set up.
  __atomic_store_n(&s->kind, spc_noscan(spc) ? SPAN_GC_NOSCAN : SPAN_GC_SCAN, __ATOMIC_RELEASE);
  atomic_fetch_add_explicit(&gc_span_bytes, s->npages * GM_PAGE_SIZE, memory_order_relaxed);
  return true;
}

// gc_span_free returns GC span s (on no list) to mheap.
static void gc_span_free(mspan_t *s) {
  if (unlikely(__atomic_load_n(&s->sampled, __ATOMIC_RELAXED)))
    prof_record_free(s->base); // a heap profile sample died
  gcbits_t *g = s->gc;
  s->gc = NULL;
  s->kind = SPAN_MANUAL;
  atomic_fetch_sub_explicit(&gc_span_bytes, s->npages * GM_PAGE_SIZE, memory_order_relaxed);
  fixalloc_free(gcbits_for(s->nelems), g);
  mheap_free_span(s);
}

// ---------------------------------------------------------------------------
// Sweeping one span

// sweep_bits applies s's marks to its alloc_bits (see the top of the file)
// and clears them. Caller: the span's sweeper (gcentral lock, or the thread
// caching it with alloc_cache == 0).
static void sweep_bits(mspan_t *s) {
  gc_assert_may_mutate();
  gcbits_t *g = s->gc;
  unsigned nwords = (s->nelems + 63) / 64, zeros = 0;
  bool freed = false;
  for (unsigned w = 0; w < nwords; w++) {
    uint64_t keep = relaxed_load(&g->mark[w]) | (w == g->snap_window ? g->snap : 0);
    if (w == nwords - 1 && s->nelems % 64)
      keep |= ~0ULL << (s->nelems % 64); // bits past the last object stay set
    uint64_t old = s->alloc_bits[w], now = old & keep;
    freed |= now != old;
    zeros += 64 - (unsigned)gm_popcount(now);
    s->alloc_bits[w] = now;
    relaxed_store(&g->mark[w], 0);
  }
  g->snap = 0;
  g->snap_window = WINDOW_NONE;
  s->nfree = (uint16_t)zeros;
  if (freed)
    s->needzero = 1; // freed slots hold old contents
  atomic_store_explicit(&s->sweepgen, relaxed_load(&gm_sweepgen), memory_order_release);
}

// gc_sweep_cached sweeps span s cached by the calling thread, if it is not
// swept yet. Its window must be exhausted or unreserved (alloc_cache == 0).
void gc_sweep_cached(mspan_t *s) {
  if (relaxed_load(&s->sweepgen) == relaxed_load(&gm_sweepgen))
    return;
  gm_assert(s->alloc_cache == 0);
  sweep_bits(s);
}

// ---------------------------------------------------------------------------
// gcentral lists (lock held)

static mspan_t **list_head(gcentral_t *m, bool full, unsigned parity) {
  return full ? &m->full[parity] : &m->partial[parity];
}

static void gl_push(gcentral_t *m, mspan_t *s, bool full, unsigned parity) {
  mspan_t **head = list_head(m, full, parity);
  s->list = (uint8_t)(LIST_GC + (full ? 2 : 0) + parity);
  s->prev = NULL;
  s->next = *head;
  if (*head)
    (*head)->prev = s;
  *head = s;
  m->nspans++;
}

static void gl_remove(gcentral_t *m, mspan_t *s) {
  unsigned id = s->list - LIST_GC;
  mspan_t **head = list_head(m, id >= 2, id & 1);
  if (s->prev)
    s->prev->next = s->next;
  else
    *head = s->next;
  if (s->next)
    s->next->prev = s->prev;
  s->next = s->prev = NULL;
  s->list = LIST_NONE;
  m->nspans--;
}

static mspan_t *gl_pop(gcentral_t *m, bool full, unsigned parity) {
  mspan_t *s = *list_head(m, full, parity);
  if (s)
    gl_remove(m, s);
  return s;
}

// gl_file puts swept span s (on no list) on m's swept lists, or back to
// mheap when every slot is free, unless marking runs beside the program: a
// marker may be reading s (a stale word pointed into it), which must not
// become another span meanwhile; the next sweep frees it.
static void gl_file(gcentral_t *m, mspan_t *s) {
  if (s->nfree == s->nelems && !relaxed_load(&gc_blacken)) {
    gc_span_free(s);
    return;
  }
  gl_push(m, s, s->nfree == 0, SWEPT(relaxed_load(&gm_sweepgen)));
}

// sweep_locked sweeps uncached span s, taken off m's unswept lists, and
// files it. Returns s if it has a free slot and is still in use (not filed:
// the caller may take it), NULL otherwise.
static mspan_t *sweep_locked(gcentral_t *m, mspan_t *s, bool want) {
  sweep_bits(s);
  if (want && s->nfree > 0 && s->nfree < s->nelems)
    return s;
  gl_file(m, s);
  return NULL;
}

// ---------------------------------------------------------------------------
// Cache and uncache

// gcentral_cache_span returns a span of span class spc with a free slot,
// swept, for the calling thread to cache (in a critical section), or NULL
// when out of memory. Like Go's cacheSpan: a swept partial span, else sweep
// up to 100 unswept spans looking for room, else a fresh span.
mspan_t *gcentral_cache_span(uint8_t spc) {
  gcentral_t *m = &gc_central[spc];
  uint32_t sg = relaxed_load(&gm_sweepgen);
  gm_lock(&m->lock);
  mspan_t *s = gl_pop(m, false, SWEPT(sg));
  for (int budget = 100; s == NULL && budget > 0; budget--) {
    mspan_t *t = gl_pop(m, false, UNSWEPT(sg));
    if (t == NULL && (t = gl_pop(m, true, UNSWEPT(sg))) == NULL)
      break;
    s = sweep_locked(m, t, true);
  }
  gm_unlock(&m->lock);
  if (s != NULL) {
    s->needzero = 1;
    return s;
  }
  uint8_t sc = spc_sizeclass(spc);
  s = mheap_alloc_span(class_to_npages[sc], sc, 1);
  if (s == NULL || !gc_span_setup(s, spc))
    return NULL;
  return s;
}

// gcentral_uncache_span takes back span s from the thread that cached it.
// Any window slots left are un-reserved; the span is swept if needed.
void gcentral_uncache_span(mspan_t *s, uint8_t spc) {
  uint64_t left = span_unreserve_window(s);
  if (left != 0)
    gc_note_unused(left, s->elemsize);
  gc_sweep_cached(s);
  gcentral_t *m = &gc_central[spc];
  gm_lock(&m->lock);
  gl_file(m, s);
  gm_unlock(&m->lock);
}

// ---------------------------------------------------------------------------
// Large GC objects

// gc_large_alloc returns a new large GC span of npages (zeroed memory), or
// NULL when out of memory.
mspan_t *gc_large_alloc(size_t npages, bool noscan) {
  mspan_t *s = mheap_alloc_span(npages, 0, 1);
  if (s == NULL || !gc_span_setup(s, (uint8_t)noscan))
    return NULL;
  s->elemsize = npages * GM_PAGE_SIZE > UINT32_MAX ? 0 : (uint32_t)(npages * GM_PAGE_SIZE);
  s->nelems = 1;
  gm_lock(&large_lock);
  s->prev = NULL;
  s->next = large_spans;
  if (large_spans)
    large_spans->prev = s;
  large_spans = s;
  gm_unlock(&large_lock);
  return s;
}

static void large_remove_locked(mspan_t *s) {
  if (s->prev)
    s->prev->next = s->next;
  else
    large_spans = s->next;
  if (s->next)
    s->next->prev = s->prev;
  s->next = s->prev = NULL;
}

// gc_large_free frees large GC span s at the program's request (gm_free).
void gc_large_free(mspan_t *s) {
  gm_lock(&large_lock);
  large_remove_locked(s);
  gm_unlock(&large_lock);
  gc_span_free(s);
}

// sweep_large sweeps every unswept large span: unmarked ones are freed.
// gm_sweepgen is read inside the critical section: gm_collect sweeps with
// gc_lock released, and a value read before a stop that ended a concurrent
// cycle would take the spans swept or allocated since for unswept and
// unmarked.
static void sweep_large(void) {
  gm_lock(&large_lock);
  uint32_t sg = relaxed_load(&gm_sweepgen);
  mspan_t *s = large_spans;
  while (s != NULL) {
    mspan_t *next = s->next;
    if (relaxed_load(&s->sweepgen) != sg) {
      if (relaxed_load(&s->gc->mark[0]) & 1) {
        relaxed_store(&s->gc->mark[0], 0);
        atomic_store_explicit(&s->sweepgen, sg, memory_order_release);
      } else {
        large_remove_locked(s);
        gc_span_free(s);
      }
    }
    s = next;
  }
  gm_unlock(&large_lock);
}

// ---------------------------------------------------------------------------
// gm_free of a GC object

// free_slot frees object p of GC span s (small), which the caller may change:
// s is cached by the caller, or its gcentral lock is held and s is swept.
static void free_slot(mspan_t *s, uintptr_t p) {
  gc_assert_may_mutate();
  uint16_t idx = span_object_index(s, p);
  unsigned w = idx >> 6;
  uint64_t bit = 1ULL << (idx & 63);
  if (!span_allocated(s, idx))
    gm_fatal("double free of a GC object", (void *)p);
  s->alloc_bits[w] &= ~bit;
  relaxed_store(&s->gc->mark[w], relaxed_load(&s->gc->mark[w]) & ~bit);
  s->nfree++;
  s->needzero = 1;
}

// gc_free releases GC object p of span s at once (the program knows it is
// dead), when its span is cached by the calling thread or by nobody. When
// another thread is allocating from the span, the object's contents are
// cleared instead (so it keeps nothing alive) and the collector reclaims it.
// The caller is registered; tiny objects never come here (mgcalloc.c).
void gc_free(uintptr_t p, mspan_t *s) {
  if (s->sizeclass == 0) {
    if (p != s->base)
      gm_fatal("free of a pointer inside a large object", (void *)p);
    fin_forget(p);
    gm_lock(&large_lock);
    bool ok = spanof(p) == s && s->kind != SPAN_MANUAL && s->sizeclass == 0;
    if (ok)
      large_remove_locked(s);
    gm_unlock(&large_lock);
    if (!ok)
      gm_fatal("double free of a GC object", (void *)p);
    gc_note_unused(1, s->elemsize);
    gc_span_free(s);
    return;
  }
  uint8_t spc = (uint8_t)(s->sizeclass * 2 + (s->kind == SPAN_GC_NOSCAN));
  (void)span_object_index(s, p); // fatal unless p is an object start
  fin_forget(p);
  m_acquire();
  mcache_t *c = gm_tls_mcache;
  if (c->gcalloc[spc] == s) {
    free_slot(s, p);
    m_release();
    gc_note_unused(1, s->elemsize);
    return;
  }
  gcentral_t *m = &gc_central[spc];
  gm_lock(&m->lock);
  mspan_t *now = spanof(p);
  if (now != s || s->kind == SPAN_MANUAL || s->sizeclass * 2 + (s->kind == SPAN_GC_NOSCAN) != spc)
    gm_fatal("double free of a GC object (its span was freed)", (void *)p);
  uint32_t size = s->elemsize;
  if (s->list >= LIST_GC) { // uncached: free it here
    gl_remove(m, s);
    if (relaxed_load(&s->sweepgen) != relaxed_load(&gm_sweepgen))
      sweep_bits(s);
    free_slot(s, p);
    gl_file(m, s);
  } else {
    memset((void *)p, 0, size); // cached elsewhere: cleared, left to the collector
  }
  gm_unlock(&m->lock);
  m_release();
  gc_note_unused(1, size);
}

// ---------------------------------------------------------------------------
// Sweeping everything

// sweep_class sweeps every unswept span of span class spc, releasing the
// lock every 32 spans so allocating threads get their turn.
static void sweep_class(uint8_t spc) {
  gcentral_t *m = &gc_central[spc];
  for (;;) {
    gm_lock(&m->lock);
    uint32_t sg = relaxed_load(&gm_sweepgen);
    int n = 0;
    mspan_t *t = NULL;
    for (; n < 32; n++) {
      if ((t = gl_pop(m, false, UNSWEPT(sg))) == NULL && (t = gl_pop(m, true, UNSWEPT(sg))) == NULL)
        break;
      sweep_locked(m, t, false);
    }
    gm_unlock(&m->lock);
    if (t == NULL)
      return;
  }
}

// sweeper_class: the sweeper thread's sweep_class. It takes a batch of
// unswept spans off the lists and sweeps them without the lock, so a thread
// that needs a span of the class waits for a few list operations, not for
// 32 sweeps (with the lock held through them, gclatency's refills queued
// behind the sweeper after each cycle). A span off the lists is the
// sweeper's alone: the cache path takes listed spans only, and gm_free of an
// object in it leaves the object to the collector. Each batch is taken,
// swept and filed holding sweep_gate, which the collector takes before it
// stops the world: no stop finds a batch half done.
#define SWEEP_BATCH 32
static void sweeper_class(uint8_t spc) {
  gcentral_t *m = &gc_central[spc];
  mspan_t *batch[SWEEP_BATCH];
  for (int n = SWEEP_BATCH; n == SWEEP_BATCH;) {
    gm_lock_raw(&sweep_gate);
    gm_lock(&m->lock);
    uint32_t sg = relaxed_load(&gm_sweepgen);
    n = 0;
    for (mspan_t *t; n < SWEEP_BATCH; batch[n++] = t)
      if ((t = gl_pop(m, false, UNSWEPT(sg))) == NULL && (t = gl_pop(m, true, UNSWEPT(sg))) == NULL)
        break;
    gm_unlock(&m->lock);
    for (int i = 0; i < n; i++)
      sweep_bits(batch[i]);
    gm_lock(&m->lock);
    for (int i = 0; i < n; i++)
      gl_file(m, batch[i]);
    gm_unlock(&m->lock);
    gm_unlock_raw(&sweep_gate);
  }
}

// gc_sweep_all sweeps every uncached unswept GC span (Go's finishsweep).
void gc_sweep_all(void) {
  for (int spc = 2; spc < GM_NUM_SPAN_CLASSES; spc++)
    sweep_class((uint8_t)spc);
  sweep_large();
}

// gc_sweep_pending reports whether some uncached span is unswept (world
// stopped: a check that finish-sweep left nothing behind).
bool gc_sweep_pending(void) {
  unsigned u = UNSWEPT(relaxed_load(&gm_sweepgen));
  for (int spc = 2; spc < GM_NUM_SPAN_CLASSES; spc++)
    if (gc_central[spc].partial[u] || gc_central[spc].full[u])
      return true;
  return false;
}

// The sweeper is one of gomem's own threads: never stopped by the collector.
// It sweeps in batches holding sweep_gate, which the collector holds from
// before it stops the world until it has restarted it, so the sweeper never
// touches a span while marks are being set. (At nice 19 it cost a program
// that keeps every core busy its collections: the collector waited for a
// starved sweeper to finish its batch. It runs at normal priority.)

void gc_sweeper_pause(void) {
  gm_lock_raw(&sweep_gate); // its holder, the sweeper, is never stopped
}

void gc_sweeper_resume(void) {
  gm_unlock_raw(&sweep_gate);
}

static void *sweeper_main(void *arg) {
  (void)arg;
  uint64_t done = 0;
  for (;;) {
    gm_lock_raw(&sweeper_lock);
    while (sweeper_work == done)
      pthread_cond_wait(&sweeper_cond, &sweeper_lock.m);
    done = sweeper_work;
    gm_unlock_raw(&sweeper_lock);
    for (int spc = 2; spc < GM_NUM_SPAN_CLASSES; spc++)
      sweeper_class((uint8_t)spc);
    gm_lock_raw(&sweep_gate);
    sweep_large();
    gm_unlock_raw(&sweep_gate);
  }
  return NULL;
}

// gc_sweeper_wake asks the sweeper thread to sweep what the last cycle left
// unswept, starting it the first time. Caller: not in a critical section.
void gc_sweeper_wake(void) {
  gm_lock_stoppable(&sweeper_lock); // its holder may be stopped
  sweeper_work++;
  if (!sweeper_started)
    sweeper_started =
        !atomic_load(&gm_forked) && interpose_create_internal(sweeper_main, NULL) == 0;
  pthread_cond_signal(&sweeper_cond);
  gm_unlock_raw(&sweeper_lock);
}

// gcsweep_fork_child: the sweeper thread is gone (its locks were taken by
// lock.c's fork handlers); it restarts on demand.
void gcsweep_fork_child(void) {
  pthread_cond_init(&sweeper_cond, NULL);
  sweeper_started = false;
}
