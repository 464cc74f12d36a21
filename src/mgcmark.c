// mgcmark.c: the mark phase, twin of Go's mgcmark.go.
//
// gomem marks with the world stopped (stw.c), in parallel on every core:
// the collecting thread and gc_nworkers() - 1 helper threads of gomem's own
// (mgcwork.c); or beside the program, its background thread alone, the
// stops greying the roots and finishing (concurrent cycles, at the end).
//
// Roots are ranges of words scanned conservatively: what roots.c reports
// (every registered thread's stack, saved registers and TLS, the writable
// segments of the program and its libraries, gm_add_roots ranges), the
// finalizer queue, the contents of objects that have a finalizer (so what
// they point to outlives them) and the finalizers' arguments, and each
// thread's current tiny block. The ranges are cut into jobs of at most
// JOB_BYTES that workers claim with one atomic add.
//
// Conservative pointers (greyobject): a word is a pointer candidate if it
// falls in the range of addresses holding arenas; the arena map gives its
// span in O(1); only GC spans count, and only an allocated slot: a word
// pointing at a free slot, at the tail of a span, into malloc's spans or
// outside the heap marks nothing. Interior pointers mark their object.
// Marking sets the object's bit in its span's gcbits with an atomic OR (other
// workers may mark the same word) and, for scanned spans, pushes the object
// on the worker's gcwork as a grey entry (mgcwork.h); it turns black when a
// worker has scanned it.
//
// Spans cached by threads when the world stopped: a thread allocates from
// its span's window without any lock or atomic, so the window's free slots
// are read (snapshot) from alloc_cache; slots not in the snapshot have been
// handed out and are ordinary objects. The snapshot also tells the span's
// next sweep which slots were handed out after this mark (allocated black).
//
// Termination: a worker with no local work and nothing on the global full
// list counts itself idle; when every worker is idle and no work is
// published, marking is done (nobody can produce more).
#include <sched.h>
#include <sys/sysinfo.h>

#include "arena.h"
#include "interpose.h"
#include "mallocint.h"
#include "mfinal.h"
#include "mgcmark.h"
#include "mgcpacer.h"
#include "mgcsweep.h"
#include "mgcwork.h"
#include "mheap.h"
#include "os.h"
#include "roots.h"
#include "vec.h"

#ifdef GM_VALGRIND
#include <valgrind/memcheck.h>
// Stacks and segments hold uninitialised words; scanning reads them as
// integers, which memcheck would report. The copy is declared defined.
#define SCAN_DEFINED(w) VALGRIND_MAKE_MEM_DEFINED(&(w), sizeof(w))
#else
#define SCAN_DEFINED(w) ((void)0)
#endif

#define JOB_BYTES ((uintptr_t)64 << 10)

typedef struct root_job {
  uintptr_t lo, hi;
} root_job_t;

// Root jobs: built by the collector with the world stopped, claimed by
// workers through job_next.
static root_job_t *jobs;
static size_t njobs, jobs_cap;
static _Atomic size_t job_next;

// Filter for pointer candidates: [heap_lo, heap_lo + heap_len).
static uintptr_t heap_lo GM_NOSCAN, heap_len GM_NOSCAN;

// Workers (their threads: mgcwork.c).
static _Atomic unsigned nactive; // workers of the current drain (set before it)
static _Atomic unsigned nidle;   // workers out of work this cycle
_Atomic int gc_mark_helpers = 1; // 0: the caller marks alone (see mgcmark.h)

// Tiny blocks of every cache and finalizers' arguments, as one root range
// (world stopped; off-heap).
static uintptr_t *word_roots;
static size_t word_cap, nwords;

// grow_array doubles a full off-heap array of elem-sized items.
static void *grow_array(void *old, size_t *cap, size_t elem) {
  vec_t v = {old, *cap, *cap, elem};
  if (!vec_reserve(&v, *cap * 2 > 1024 ? *cap * 2 : 1024))
    gm_fatal("out of memory for the collector's root table", NULL);
  *cap = v.cap;
  return v.v;
}

// add_root is the root_fn: it records [lo, hi) as jobs, aligned inward.
static void add_root(void *ctx, uintptr_t lo, uintptr_t hi) {
  (void)ctx;
  lo = (lo + 7) & ~(uintptr_t)7;
  hi &= ~(uintptr_t)7;
  while (lo < hi) {
    uintptr_t end = hi - lo > JOB_BYTES ? lo + JOB_BYTES : hi;
    if (njobs == jobs_cap)
      jobs = grow_array(jobs, &jobs_cap, sizeof *jobs);
    jobs[njobs++] = (root_job_t){lo, end};
    lo = end;
  }
}

// gcmark_init: at gc_init.
void gcmark_init(void) {
  gcwork_init();
}

// ---------------------------------------------------------------------------
// Greying and scanning

// object_size returns the bytes of GC object at base in span s.
static inline uintptr_t object_size(const mspan_t *s) {
  return s->sizeclass ? s->elemsize : s->npages * GM_PAGE_SIZE;
}

// set_mark sets a mark bit. Two workers may both find the bit clear and both
// set it: the object is then scanned twice, which is harmless (Go accepts the
// same race), so no compare-and-swap loop is needed.
static inline void set_mark(_Atomic uint64_t *word, uint64_t bit) {
  if (relaxed_load(&nactive) == 1 && !relaxed_load(&gc_blacken)) // (blackening threads too)
    relaxed_store(word, relaxed_load(word) | bit);
  else
    atomic_fetch_or_explicit(word, bit, memory_order_relaxed);
}

// greyobject marks the object w points into, in span s (the GC span holding
// w), if it is allocated and not marked yet, and queues it for scanning if
// it may hold pointers.
// (Marking beside the program, the span's owner may load a window meanwhile:
// the reads of alloc_bits race with it by design, see gc_mark_begin.)
GM_NO_SANITIZE static inline void greyobject(gcwork_t *gw, mspan_t *s, uintptr_t w) {
  gcbits_t *g = s->gc;
  uintptr_t base;
  unsigned word;
  uint64_t bit;
  if (s->sizeclass != 0) {
    uintptr_t off = w - s->base;
    uint32_t idx = (uint32_t)(((uint64_t)off * s->divmul) >> 32);
    if (idx >= s->nelems)
      return;
    word = idx >> 6;
    bit = 1ULL << (idx & 63);
    if (!(s->alloc_bits[word] & bit) || (word == g->snap_window && (g->snap & bit)))
      return; // a free slot
    base = s->base + (uintptr_t)idx * s->elemsize;
  } else {
    word = 0;
    bit = 1;
    base = s->base;
  }
  if (relaxed_load(&g->mark[word]) & bit)
    return;
  set_mark(&g->mark[word], bit);
  uintptr_t size = object_size(s);
  gw->bytes_marked += size;
  if (s->kind == SPAN_GC_SCAN)
    gcw_put_object(gw, base, size);
}

// scan_block greys every pointer candidate among the words of [lo, hi). The
// span of the last candidate is kept: neighbouring objects point to each
// other, and the test against it replaces the arena map walk.
GM_NO_SANITIZE static inline __attribute__((always_inline)) void
scan_block(gcwork_t *gw, uintptr_t lo, uintptr_t hi) {
  const uintptr_t hlo = heap_lo, hlen = heap_len;
  mspan_t *last = NULL;
  uintptr_t last_base = 0, last_len = 0;
  gw->scanned += hi - lo;
  for (const uintptr_t *p = (const uintptr_t *)lo; p < (const uintptr_t *)hi; p++) {
    uintptr_t w = *(const volatile uintptr_t *)p;
    SCAN_DEFINED(w);
    if (w - hlo >= hlen)
      continue;
    mspan_t *s = last;
    if (w - last_base >= last_len) {
      s = spanof(w);
      if (s == NULL || gc_span_kind(s) == SPAN_MANUAL)
        continue;
      last = s;
      last_base = s->base;
      last_len = s->npages * GM_PAGE_SIZE;
    }
    greyobject(gw, s, w);
  }
}

GM_NO_SANITIZE static inline __attribute__((always_inline)) void scan_entry(gcwork_t *gw,
                                                                            uintptr_t e) {
  uintptr_t lo = e & (((uintptr_t)1 << GC_ENTRY_ADDR_BITS) - 1);
  scan_block(gw, lo, lo + (e >> GC_ENTRY_ADDR_BITS) * 8);
}

#ifdef GM_VALGRIND
// Under memcheck a stopped thread's stack range includes the red zone below
// its stack pointer, which memcheck holds unaddressable: root words are
// scanned one by one, skipping those.
GM_NOINLINE static void scan_root(gcwork_t *gw, uintptr_t lo, uintptr_t hi) {
  for (uintptr_t p = lo; p + 8 <= hi; p += 8) {
    uint64_t vbits;
    if (VALGRIND_GET_VBITS((void *)p, &vbits, 8) == 3)
      continue;
    scan_block(gw, p, p + 8);
  }
}
#else
GM_NO_SANITIZE GM_NOINLINE static void scan_root(gcwork_t *gw, uintptr_t lo, uintptr_t hi) {
  scan_block(gw, lo, hi);
}
#endif

void (*gc_debug_scan_hook)(uintptr_t entry);
_Atomic uint64_t gc_scan_done;             // bytes scanned this cycle, roughly
static _Atomic uint64_t assist_marked;     // bytes the assists marked this cycle

// drain_pause: the background marker, beside the program, keeps to its
// share of the CPUs (mgcpacer.c): it scans the n entries in flight in its
// FIFO from head, publishes its work for the assists, and pauses.
static GM_NOINLINE void drain_pause(gcwork_t *gw, const uintptr_t *ring, unsigned head, unsigned n);

// drain scans grey entries until there are none. Entries pass through a
// small FIFO: each is prefetched when taken and scanned PREFETCH_DEPTH
// entries later, so several cache misses are in flight at once.
#define PREFETCH_DEPTH 8
static bool pacing; // the background marker drains beside the program
GM_NO_SANITIZE static void drain(gcwork_t *gw) {
  uintptr_t ring[PREFETCH_DEPTH];
  unsigned head = 0, n = 0, count = 0;
  for (;;) {
    uintptr_t e = gcw_get(gw);
    if (e == 0) {
      if (n == 0) {
        relaxed_add(&gc_scan_done, gw->scanned - gw->published);
        gw->published = gw->scanned;
        return;
      }
      // Scan what is in flight; it may produce more work.
      e = ring[head];
      head = (head + 1) % PREFETCH_DEPTH;
      n--;
      scan_entry(gw, e);
      if (unlikely(gc_debug_scan_hook != NULL))
        gc_debug_scan_hook(e);
      continue;
    }
    __builtin_prefetch((void *)(e & (((uintptr_t)1 << GC_ENTRY_ADDR_BITS) - 1)));
    if (n == PREFETCH_DEPTH) {
      uintptr_t old = ring[head];
      ring[head] = e;
      head = (head + 1) % PREFETCH_DEPTH;
      scan_entry(gw, old);
      if (unlikely(gc_debug_scan_hook != NULL))
        gc_debug_scan_hook(old);
    } else {
      ring[(head + n) % PREFETCH_DEPTH] = e;
      n++;
    }
    if (unlikely((++count & 255) == 0)) {
      relaxed_add(&gc_scan_done, gw->scanned - gw->published); // (for the assists)
      gw->published = gw->scanned;
      if (relaxed_load(&nactive) > 1 && relaxed_load(&nidle) != 0)
        gcw_balance(gw);
      if (pacing && pacer_worker_due()) {
        drain_pause(gw, ring, head, n);
        n = 0;
      }
    }
  }
}

GM_NO_SANITIZE static GM_NOINLINE void drain_pause(gcwork_t *gw, const uintptr_t *ring,
                                                   unsigned head, unsigned n) {
  for (; n > 0; n--, head = (head + 1) % PREFETCH_DEPTH) {
    scan_entry(gw, ring[head]);
    if (unlikely(gc_debug_scan_hook != NULL))
      gc_debug_scan_hook(ring[head]);
  }
  relaxed_add(&gc_scan_done, gw->scanned - gw->published);
  gw->published = gw->scanned;
  gcw_flush(gw);
  pacer_worker_pause();
}

// roots_only: the workers scan the root jobs and publish what they greyed,
// without draining it (the first stop of a concurrent cycle).
static bool roots_only;

// mark_worker does one worker's share of the mark phase; returns the bytes
// it marked.
static uint64_t mark_worker(void) {
  gcwork_t gw;
  gcw_init(&gw);
  if (roots_only) {
    size_t j;
    while ((j = atomic_fetch_add_explicit(&job_next, 1, memory_order_relaxed)) < njobs)
      scan_root(&gw, jobs[j].lo, jobs[j].hi);
    gcw_flush(&gw);
    gcw_dispose(&gw);
    return gw.bytes_marked;
  }
  for (;;) {
    size_t j;
    while ((j = atomic_fetch_add_explicit(&job_next, 1, memory_order_relaxed)) < njobs) {
      scan_root(&gw, jobs[j].lo, jobs[j].hi);
      drain(&gw);
    }
    drain(&gw);
    // Out of work: idle until others publish some or everyone is idle.
    if (gcw_idle(&nidle, relaxed_load(&nactive))) {
      gcw_dispose(&gw);
      return gw.bytes_marked;
    }
  }
}

// run_workers runs the mark workers (the caller is one of them) until the
// heap reachable from the root jobs is marked. Returns the bytes marked.
static uint64_t run_workers(void) {
  bool all = relaxed_load(&gc_mark_helpers); // (else the caller alone)
  relaxed_store(&nactive, all ? gc_nworkers() : 1);
  atomic_store(&nidle, 0);
  atomic_store(&job_next, 0);
  return all ? gc_run_workers(mark_worker) : mark_worker();
}

// ---------------------------------------------------------------------------
// Preparing the roots (world stopped)

// add_word_root makes the word w a root.
static void add_word_root(uintptr_t w) {
  if (nwords == word_cap)
    word_roots = grow_array(word_roots, &word_cap, sizeof *word_roots);
  word_roots[nwords++] = w;
}

// prepare_cache records, for each span cache c holds, the window snapshot
// (see the top of the file), and collects c's tiny block.
static void prepare_cache(mcache_t *c, void *ctx) {
  (void)ctx;
  uint32_t sg = relaxed_load(&gm_sweepgen);
  for (int spc = 2; spc < GM_NUM_SPAN_CLASSES; spc++) {
    mspan_t *s = c->gcalloc[spc];
    if (s == &span_empty)
      continue;
    gcbits_t *g = s->gc;
    if (relaxed_load(&s->sweepgen) != sg) { // marks of an earlier cycle, never applied
      for (unsigned w = 0; w < (s->nelems + 63u) / 64; w++)
        relaxed_store(&g->mark[w], 0);
    }
    g->snap = s->alloc_cache;
    g->snap_window = s->window;
  }
  if (c->tiny != 0)
    add_word_root(c->tiny);
  c->gc_alloc_local = 0; // counted into the live heap by this mark
}

// add_fin_root: a finalizable object's contents (those that do not point
// into it, for FIN_IGNORE_SELF) and its finalizer's argument.
GM_NO_SANITIZE static void add_fin_root(void *ctx, uintptr_t obj, uintptr_t arg, int order) {
  mspan_t *s = spanof(obj);
  size_t size = s != NULL && s->kind == SPAN_GC_SCAN && order != FIN_NO_ORDER ? object_size(s) : 0;
  if (order != FIN_IGNORE_SELF)
    add_root(ctx, obj, obj + size); // (nothing if size is 0)
  for (size_t i = 0; order == FIN_IGNORE_SELF && i < size / sizeof(uintptr_t); i++)
    if (((const uintptr_t *)obj)[i] - obj >= size)
      add_word_root(((const uintptr_t *)obj)[i]);
  add_word_root(arg);
}

bool gc_is_marked(uintptr_t obj) {
  mspan_t *s = spanof(obj);
  if (s->sizeclass == 0)
    return relaxed_load(&s->gc->mark[0]) & 1;
  uint32_t idx = (uint32_t)(((uint64_t)(obj - s->base) * s->divmul) >> 32);
  return (relaxed_load(&s->gc->mark[idx >> 6]) >> (idx & 63)) & 1;
}

static uint64_t fin_marked_bytes;

// addr_alive: addr lies outside the GC heap, or in a marked GC object.
static bool addr_alive(uintptr_t addr) {
  mspan_t *s = spanof(addr);
  if (s == NULL || s->kind == SPAN_MANUAL)
    return true;
  if (s->sizeclass != 0 && addr - s->base >= s->limit)
    return false; // (the tail of a span holds no object)
  return gc_is_marked(addr);
}

// mark_one marks a finalizable object being queued; one of FIN_NO_ORDER,
// whose contents were no roots, has them scanned now (a root job of the
// drain that follows), so that what it points to lives for its finalizer.
static void mark_one(uintptr_t obj, int order) {
  mspan_t *s = spanof(obj);
  uint32_t idx = s->sizeclass ? (uint32_t)(((uint64_t)(obj - s->base) * s->divmul) >> 32) : 0;
  atomic_fetch_or_explicit(&s->gc->mark[idx >> 6], 1ULL << (idx & 63), memory_order_relaxed);
  fin_marked_bytes += object_size(s);
  if (order == FIN_NO_ORDER && s->kind == SPAN_GC_SCAN)
    add_root(NULL, obj, obj + object_size(s));
}

// collect_roots records every root range as jobs (world stopped; tiny blocks
// are in word_roots). The hook first: it may declare where stacks end (bdw).
static void collect_roots(uintptr_t self_sp) {
  heap_lo = relaxed_load(&gm_heap.arena_lo);
  heap_len = relaxed_load(&gm_heap.arena_hi) - heap_lo;
  if (gc_roots_hook != NULL)
    gc_roots_hook(add_root, NULL);
  roots_threads(add_root, NULL, self_sp);
  roots_data(add_root, NULL);
  fin_queue_roots(add_root, NULL);
  fin_for_each(add_fin_root, NULL);
  if (nwords)
    add_root(NULL, (uintptr_t)word_roots, (uintptr_t)(word_roots + nwords));
  wbbuf_roots(add_root, NULL); // (empty but at a concurrent cycle's last stop)
}

// drain_all drains on every worker, then has gc_mark_more_hook grey more
// (mark procedures of marked objects) until it finds nothing new.
static uint64_t drain_all(void) {
  uint64_t marked = run_workers();
  for (bool (*more)(bool) = gc_mark_more_hook; more != NULL && (njobs = 0, more(false));)
    marked += run_workers();
  return marked;
}

// mark_and_finalize drains, then queues the finalizers of what stayed
// unmarked and drains again. Returns the bytes marked.
static uint64_t mark_and_finalize(void) {
  uint64_t marked = drain_all();
  fin_weak_clear(addr_alive, false);
  fin_marked_bytes = 0;
  njobs = 0;
  fin_queue_dead(gc_is_marked, mark_one, false);
  marked += drain_all(); // (the contents of queued FIN_NO_ORDER objects)
  fin_queue_dead(gc_is_marked, mark_one, true);
  fin_weak_clear(addr_alive, true);
  if (gc_mark_more_hook != NULL)
    gc_mark_more_hook(true);
  return marked + fin_marked_bytes;
}

// gc_mark: see the top of the file. Called by the collector with the world
// stopped and every uncached GC span swept (mark bits clear).
uint64_t gc_mark(uintptr_t self_sp) {
  relaxed_store(&gc_scan_done, 0);
  njobs = nwords = 0;
  mcache_for_each(prepare_cache, NULL);
  collect_roots(self_sp);
  return mark_and_finalize();
}

// ---------------------------------------------------------------------------
// Concurrent marking (mgc.c's concurrent cycle, whose comment tells the
// steps; design.md §14). Whatever the windows hand out while gc_blacken is
// set is allocated black.

_Atomic int gc_blacken;
void (*gc_roots_hook)(root_fn fn, void *ctx);
bool (*gc_mark_more_hook)(bool done);

// blacken_cache (first stop): c's cached spans lose stale marks (as in
// prepare_cache) and count as swept, so that their thread does not sweep
// them with this cycle's partial marks (their garbage of the last cycle
// waits for the next sweep); the free slots of their windows are marked.
static void blacken_cache(mcache_t *c, void *ctx) {
  (void)ctx;
  prepare_cache(c, NULL);
  uint32_t sg = relaxed_load(&gm_sweepgen);
  for (int spc = 2; spc < GM_NUM_SPAN_CLASSES; spc++) {
    mspan_t *s = c->gcalloc[spc];
    if (s == &span_empty)
      continue;
    relaxed_store(&s->sweepgen, sg);
    if (s->window != WINDOW_NONE)
      atomic_fetch_or_explicit(&s->gc->mark[s->window], s->alloc_cache, memory_order_relaxed);
  }
}

uint64_t gc_mark_begin(uintptr_t self_sp) {
  relaxed_store(&gc_scan_done, 0);
  relaxed_store(&assist_marked, 0);
  njobs = 0;
  nwords = 0;
  mcache_for_each(blacken_cache, NULL);
  wbbuf_set_marking(1); // gc_blacken and its copy
  collect_roots(self_sp);
  roots_only = true;
  uint64_t marked = run_workers();
  roots_only = false;
  return marked;
}

uint64_t gc_mark_drain(void) {
  njobs = 0;
  relaxed_store(&gc_mark_helpers, 0);
  pacing = true;
  uint64_t marked = run_workers();
  pacing = false;
  relaxed_store(&gc_mark_helpers, 1);
  return marked;
}

uint64_t gc_mark_reroot(uintptr_t self_sp) {
  njobs = 0;
  nwords = 0;
  gc_mark_rescan_written();
  collect_roots(self_sp); // (the barrier's buffers included)
  roots_only = true;
  uint64_t marked = run_workers();
  roots_only = false;
  wbbuf_reset_all();
  return marked;
}

uint64_t gc_mark_end(void) {
  wbbuf_set_marking(0);
  njobs = 0;
  nwords = 0;
  // The window snapshot and the tiny blocks. (The marks of a cached span are
  // never stale here: blacken_cache made the spans cached at the first stop
  // count as swept, and a span cached since was swept first.)
  mcache_for_each(prepare_cache, NULL);
  if (nwords)
    add_root(NULL, (uintptr_t)word_roots, (uintptr_t)(word_roots + nwords));
  return mark_and_finalize() + relaxed_load(&assist_marked);
}

size_t gc_mark_pending(void) {
  long n = relaxed_load(&wb_nentries);
  return n > 0 ? (size_t)n : 0;
}

GM_NO_SANITIZE void gc_mark_shade(const uintptr_t *w, size_t n) {
  gcwork_t gw;
  gcw_init(&gw);
  scan_block(&gw, (uintptr_t)w, (uintptr_t)(w + n));
  gcw_flush(&gw);
  gcw_dispose(&gw);
  relaxed_add(&assist_marked, gw.bytes_marked);
}

// gc_mark_assist: in a critical section, so that no stop finds grey objects
// held here, nor this thread holding wb_lock (the collector needs it); the
// greys it makes are published before it ends.
GM_NO_SANITIZE uint64_t gc_mark_assist(uint64_t work) {
  gcwork_t gw;
  m_acquire();
  gcw_init(&gw);
  if (relaxed_load(&gc_blacken)) { // (cleared only in a stop: not while here)
    uintptr_t e;
    while (gw.scanned < work && (e = gcw_get(&gw)) != 0)
      scan_entry(&gw, e);
    gcw_flush(&gw);
    relaxed_add(&gc_scan_done, gw.scanned);
    relaxed_add(&assist_marked, gw.bytes_marked);
  }
  gcw_dispose(&gw);
  m_release();
  return gw.scanned;
}
