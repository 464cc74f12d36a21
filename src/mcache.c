// mcache.c: per-thread caches and span windows, twin of Go's mcache.
//
// Each thread has one mcache (found through an initial-exec TLS pointer) with
// one current span per size class. Allocation takes the lowest set bit of the
// span's alloc_cache (Go's nextFreeFast): no lock and no atomic instruction.
// When the window runs dry, mcache_refill_alloc moves it to the next
// alloc_bits word with free slots; when the span has none left it collects
// frees other threads pushed on the span's remote list, then parks the span
// and takes one of the thread's own partial spans, and only then goes to
// mcentral. Unlike Go, where spans return to mcentral when a P's cache lets
// them go, gomem's threads keep the spans they took (see "Owned spans"
// below), because C frees objects one by one and the owner's frees must stay
// lock-free whichever span the object lives in.
//
// Window discipline (mspan.h): loading a window copies the free slots of one
// alloc_bits word into alloc_cache; allocation hands them out and sets their
// bits; every free clears the object's alloc_bits bit (the window finds freed
// slots of its own word again when it next moves); parking the span gives
// back what is left. So for every slot of a malloc span:
//   allocated  <=>  alloc_bits bit set
// and nfree counts the 0 bits of alloc_bits outside alloc_cache.
//
// A thread's mcache is created at its first allocation (until then the TLS
// pointer names mcache_empty, whose spans are all span_empty with an empty
// window, so the fast path falls into the refill path without a NULL test).
// At thread exit a pthread key destructor gives every span back to mcentral
// and the record to a free list, so threads can come and go without leaks.
#include <stdlib.h>
#include <string.h>

#include "free.h"
#include "mallocint.h"
#include "mcache.h"
#include "mcentral.h"
#include "mfixalloc.h"
#include "mheap.h"
#include "mprof.h"
#include "os.h"

mspan_t span_empty;

// mcache_empty must be valid before any initialiser runs: every class names
// span_empty, statically.
#define E1 &span_empty
#define E4 E1, E1, E1, E1
#define E16 E4, E4, E4, E4
_Static_assert(GM_NUM_SIZE_CLASSES == 68, "mcache_empty initialiser");
#define E68 E16, E16, E16, E16, E4
#define C1                                                                                         \
  { .alloc = &span_empty }
#define C4 C1, C1, C1, C1
#define C16 C4, C4, C4, C4
#define C68 C16, C16, C16, C16, C4
mcache_t mcache_empty = {.last_span = E1, .cls = {C68}, .gcalloc = {E68, E68}};
mcache_t mcache_shared = {.last_span = E1, .cls = {C68}, .gcalloc = {E68, E68}};
__thread mcache_t *gm_tls_mcache __attribute__((tls_model("initial-exec"))) = &mcache_empty;

static gm_mutex_t registry_lock = GM_MUTEX_INIT(RANK_REGISTRY);
static gm_mutex_t shared_lock = GM_MUTEX_INIT(RANK_SHARED); // threads sharing TLS (below)
static mcache_t *registry;                                  // all live caches (registry_lock)
static class_stats_t dead_stats[GM_NUM_SIZE_CLASSES];       // of exited threads (registry_lock)
static fixalloc_t mcache_alloc;
static pthread_key_t mcache_key;
_Atomic uint64_t gm_trim_epoch; // bumped by gm_release_memory

// Owned spans. A thread keeps the spans it takes until it exits (or
// gm_release_memory asks): besides its current span per class, spans with
// free slots wait on c->partial[class] and full ones on c->full[class], all
// owner-only lists. So the owner frees into any of its spans without a lock.
// Other threads push their frees on the span's xfree list; for a span parked
// as full the first such free notifies the owner (XF_FULL -> XF_NOTED, span
// pushed on c->xspans), which files the span again at its next refill.

// own_push files s on c's partial list (at the tail: the list is a queue, so
// the span taken next is the one parked longest, which has had the most time
// to collect frees) or full list (at the head).
static void own_push(mcache_t *c, mspan_t *s, uint8_t id) {
  uint8_t sc = s->sizeclass;
  s->list = id;
  if (id == LIST_OWN_PARTIAL) {
    s->trigger = s->nelems;
    s->next = NULL;
    s->prev = c->partial_tail[sc];
    if (s->prev)
      s->prev->next = s;
    else
      c->partial[sc] = s;
    c->partial_tail[sc] = s;
    return;
  }
  s->trigger = partial_min(s);
  s->prev = NULL;
  s->next = c->full[sc];
  if (s->next)
    s->next->prev = s;
  c->full[sc] = s;
}

static void own_remove(mcache_t *c, mspan_t *s) {
  uint8_t sc = s->sizeclass;
  bool partial = s->list == LIST_OWN_PARTIAL;
  if (s->prev)
    s->prev->next = s->next;
  else
    *(partial ? &c->partial[sc] : &c->full[sc]) = s->next;
  if (s->next)
    s->next->prev = s->prev;
  else if (partial)
    c->partial_tail[sc] = s->prev;
  s->next = s->prev = NULL;
  s->list = LIST_NONE;
  s->trigger = TRIGGER_NONE;
}

// mcache_release_span gives span s, owned by the caller and on none of its
// lists, to mcentral (which sends it on to mheap if it is empty).
static void mcache_release_span(mspan_t *s) {
  relaxed_store(&s->owner, NULL);
  mcentral_uncache_span(s);
}

// mcache_file puts owned, non-current span s (on no list, no window) where it
// belongs after applying its remote frees: back to mheap when empty and the
// thread keeps SPARE_MAX bytes of empty spans already (a thread whose objects
// another thread frees, a producer, would otherwise send every span through
// mheap and take a fresh one), on the partial list, or parked on the full
// list with XF_FULL set so the next remote free notifies us. A span with
// XF_NOTED is awaiting processing: it is parked without XF_FULL (the pending
// notification brings it back).
#define SPARE_MAX ((size_t)256 << 10)
static void mcache_file(mcache_t *c, mspan_t *s) {
  for (;;) {
    span_apply_xfree(s, span_take_xfree(s));
    uintptr_t x = atomic_load_explicit(&s->xfree, memory_order_relaxed);
    size_t bytes = s->npages * GM_PAGE_SIZE;
    if (s->nfree == s->nelems && !(x & XF_NOTED) && c->spare_bytes + bytes > SPARE_MAX) {
      if (c->last_span == s)
        c->last_span = &span_empty;
#if GM_SECURE
      if (c->sec_alloced_span == s) // (checked only in a span c owns)
        c->sec_alloced = 0;
#endif
      relaxed_store(&s->owner, NULL);
      mheap_free_span(s); // every object is free: no remote free can be in flight
      return;
    }
    if (s->nfree >= partial_min(s)) {
      if (s->nfree == s->nelems)
        c->spare_bytes += bytes;
      own_push(c, s, LIST_OWN_PARTIAL);
      return;
    }
    if (x == XF_NOTED) {
      own_push(c, s, LIST_OWN_FULL);
      return;
    }
    if (x == 0 && atomic_compare_exchange_strong_explicit(
                      &s->xfree, &x, XF_FULL, memory_order_acq_rel, memory_order_relaxed)) {
      own_push(c, s, LIST_OWN_FULL);
      return;
    }
    // A remote free arrived meanwhile: apply it and decide again.
  }
}

// mcache_park retires c's current span of sizeclass: gives back its window
// and files it.
static void mcache_park(mcache_t *c, uint8_t sizeclass) {
  mspan_t *s = c->cls[sizeclass].alloc;
  if (s == &span_empty)
    return;
  // Reserved but unused window slots were counted as mallocs at load.
  uint64_t left = span_unreserve_window(s);
  relaxed_store(&c->nmalloc[sizeclass],
                relaxed_load(&c->nmalloc[sizeclass]) - (uint64_t)gm_popcount(left));
  c->cls[sizeclass].alloc = &span_empty;
  mcache_file(c, s);
}

// mcache_process_notes takes c's notification stack and files again every
// parked span on it. Stale entries (a span no longer ours) are skipped.
static void mcache_process_notes(mcache_t *c) {
  mspan_t *s = atomic_exchange_explicit(&c->xspans, NULL, memory_order_acquire);
  while (s != NULL) {
    mspan_t *next = s->xnext;
    if (relaxed_load(&s->owner) == c) {
      uintptr_t x = atomic_load_explicit(&s->xfree, memory_order_relaxed);
      while (!atomic_compare_exchange_weak_explicit(&s->xfree, &x, x & ~XF_NOTED,
                                                    memory_order_acq_rel, memory_order_relaxed)) {
      }
      if (s->list == LIST_OWN_FULL) {
        own_remove(c, s);
        mcache_file(c, s);
      }
    }
    s = next;
  }
}

// mcache_free_owned frees object p of span s, owned by c, and moves s
// between c's lists when its free count says so: a parked full span with
// partial_min free slots becomes partial, an empty partial span goes back to
// mheap (unless a notification for it is pending).
void mcache_free_owned(mcache_t *c, mspan_t *s, uintptr_t p) {
  free_apply(s, p);
  if (s->nfree < s->trigger)
    return;
  if (s->list == LIST_OWN_FULL) {
    own_remove(c, s);
    mcache_file(c, s);
  } else if (s->list == LIST_OWN_PARTIAL) {
    if (atomic_load_explicit(&s->xfree, memory_order_relaxed) & XF_NOTED) {
      s->trigger = TRIGGER_NONE; // empty: stays, a spare (mcache_file; its note finds it partial)
      c->spare_bytes += s->npages * GM_PAGE_SIZE;
      return;
    }
    own_remove(c, s);
    mcache_file(c, s); // empty: back to mheap, or kept as the class's spare
  }
}

// spares_validate checks that c's spare_bytes is the size of the empty spans
// on its partial lists (validators on).
static void spares_validate(const mcache_t *c) {
  size_t bytes = 0;
  for (int i = 1; i < GM_NUM_SIZE_CLASSES; i++)
    for (const mspan_t *s = c->partial[i]; s != NULL; s = s->next)
      bytes += s->nfree == s->nelems ? s->npages * GM_PAGE_SIZE : 0;
  if (bytes != c->spare_bytes)
    gm_fatal("mcache: spare_bytes does not match the empty partial spans", (void *)c);
}

// mcache_take_partial makes an owned partial span of sizeclass current.
// Returns false if c has none (after looking at its notifications).
static bool mcache_take_partial(mcache_t *c, uint8_t sizeclass) {
  if (c->partial[sizeclass] == NULL &&
      atomic_load_explicit(&c->xspans, memory_order_relaxed) != NULL)
    mcache_process_notes(c);
  mspan_t *s = c->partial[sizeclass];
  if (s == NULL)
    return false;
  own_remove(c, s);
  if (s->nfree == s->nelems) // a spare (mcache_file)
    c->spare_bytes -= s->npages * GM_PAGE_SIZE;
  span_apply_xfree(s, span_take_xfree(s));
  c->cls[sizeclass].alloc = s;
  if (!span_next_window(s))
    gm_fatal("owned partial span without free slots", (void *)s->base);
  return true;
}

// free_batch_owned: an object of mcache_flush_pending's batch whose span a
// thread took since: c frees it as the owner, or pushes it to the owner
// (mcentral_free_batch calls this under the class's lock).
static void free_batch_owned(void *ctx, mspan_t *s, uintptr_t p, uintptr_t x) {
  mcache_t *c = ctx;
  if (relaxed_load(&s->owner) == c)
    mcache_free_owned(c, s, p);
  else if (!free_push_remote(s, p, x))
    gm_fatal("mcentral: span lost its owner under the lock", (void *)s->base);
}

// mcache_flush_pending frees c's pending objects of sizeclass (owner only).
void mcache_flush_pending(mcache_t *c, uint8_t sizeclass) {
  uintptr_t list = c->pend[sizeclass];
  if (list == 0)
    return;
  c->pend[sizeclass] = 0;
  c->pend_n[sizeclass] = 0;
  mcentral_free_batch(sizeclass, list, free_batch_owned, c);
}

// mcache_release_all frees c's pending objects and gives every span c owns
// to mcentral (or mheap, when empty). Afterwards c owns nothing, so its
// notification stack can only hold stale entries: it is dropped unread.
void mcache_release_all(mcache_t *c) {
  lifo_drain(c);
  c->last_span = &span_empty;
#if GM_SECURE
  c->sec_alloced = 0; // (checked only in a span c owns)
#endif
  for (int i = 1; i < GM_NUM_SIZE_CLASSES; i++) {
    mcache_flush_pending(c, (uint8_t)i);
    mspan_t *s = c->cls[i].alloc;
    if (s != &span_empty) {
      relaxed_store(&c->nmalloc[i],
                    relaxed_load(&c->nmalloc[i]) - (uint64_t)gm_popcount(s->alloc_cache));
      c->cls[i].alloc = &span_empty;
      mcache_release_span(s);
    }
    while ((s = c->partial[i]) != NULL || (s = c->full[i]) != NULL) {
      own_remove(c, s);
      mcache_release_span(s);
    }
  }
  c->spare_bytes = 0;
  atomic_store_explicit(&c->xspans, NULL, memory_order_relaxed);
  if (gm_gc_hooks.release_cache != NULL)
    gm_gc_hooks.release_cache(c); // its GC spans and tiny block
}

static void mcache_release_dead(mcache_t *c);

// exit_hook: the collector's part of a thread's exit (written once).
static void (*_Atomic exit_hook)(void);

void mcache_set_exit_hook(void (*fn)(void)) {
  atomic_store_explicit(&exit_hook, fn, memory_order_release);
}

// mcache_arm_exit: the key's destructor runs only for a non-NULL value.
void mcache_arm_exit(void) {
  if (pthread_getspecific(mcache_key) == NULL)
    pthread_setspecific(mcache_key, gm_tls_mcache);
}

// mcache_thread_exit is the one thread-exit path: the thread's caches go
// back (its GC spans are swept on the way: it is still registered), then the
// collector forgets the thread. A destructor that runs after this one and
// allocates gets a new cache and the path runs again (the C library repeats
// destructors while values are set).
void (*mcache_flush_hook)(mcache_t *c);

static void mcache_thread_exit(void *arg) {
  mcache_t *c = arg;
  if (GM_SECURE && c != &mcache_empty && mcache_flush_hook != NULL)
    mcache_flush_hook(c);
  gm_tls_mcache = &mcache_empty;
  if (c != &mcache_empty)
    mcache_release_dead(c);
  void (*hook)(void) = atomic_load_explicit(&exit_hook, memory_order_acquire);
  if (hook != NULL)
    hook();
}

// mcache_release_dead gives an exiting thread's cache away for good.
static void mcache_release_dead(mcache_t *c) {
  if (c->ldso_pending != 0)
    gm_free((void *)c->ldso_pending);
  c->ldso_pending = 0;
  mcache_release_all(c);
  gm_lock(&registry_lock);
  for (int i = 0; i < GM_NUM_SIZE_CLASSES; i++) {
    relaxed_add(&dead_stats[i].nmalloc, relaxed_load(&c->nmalloc[i]));
    relaxed_add(&dead_stats[i].nfree, relaxed_load(&c->cls[i].nfree));
    relaxed_add(&dead_stats[i].nlifo, LIFO_PUSHES(relaxed_load(&c->cls[i].lifo.state)));
  }
  mcache_t **pp = &registry;
  while (*pp != c)
    pp = &(*pp)->next;
  *pp = c->next;
  gm_unlock(&registry_lock);
  fixalloc_free(&mcache_alloc, c);
}

// mcache_thread_init sets up the cache registry; called once from init after
// the heap works (pthread_key_create does not allocate).
void mcache_thread_init(void) {
  lifo_init();
  lock_fork_register(&registry_lock);
  lock_fork_register(&shared_lock);
  fixalloc_init(&mcache_alloc, sizeof(mcache_t));
  if (pthread_key_create(&mcache_key, mcache_thread_exit) != 0)
    gm_fatal("cannot create the thread-cache key", NULL);
}

// mcache_for_thread returns the calling thread's cache, creating it on first
// use. NULL when out of memory.
// mcache_new returns a new registered cache for the calling thread, or NULL.
static mcache_t *mcache_new(void) {
  mcache_t *c = fixalloc_alloc(&mcache_alloc);
  if (c == NULL)
    return NULL;
  c->last_span = &span_empty;
  c->ls_cls = &c->cls[0];
  c->ls_mark = 0;
  c->ls_score = LS_MAX;
  c->ls_skip = 0;
  for (int i = 0; i < GM_NUM_SIZE_CLASSES; i++) {
    c->cls[i].alloc = &span_empty;
    c->cls[i].lifo.head = 0;
    relaxed_store(&c->cls[i].lifo.state, lifo_cap[i]);
  }
  for (int i = 0; i < GM_NUM_SPAN_CLASSES; i++)
    c->gcalloc[i] = &span_empty;
  relaxed_store(&c->trim_epoch, relaxed_load(&gm_trim_epoch));
  c->prof_epoch = relaxed_load(&prof_epoch);
  c->sample_left = prof_next_sample();
  c->owner_tid = os_gettid();
  os_stack_near(&c->stack_lo, &c->stack_hi);
  gm_lock(&registry_lock);
  c->next = registry;
  registry = c;
  gm_unlock(&registry_lock);
  return c;
}

mcache_t *mcache_for_thread(void) {
  mcache_t *c = gm_tls_mcache;
  if (c != &mcache_empty)
    return unlikely(c == &mcache_shared) ? mcache_shared_self() : c;
  gm_ensure_init();
  c = mcache_new();
  if (c == NULL)
    return NULL;
  pthread_setspecific(mcache_key, c);
  gm_tls_mcache = c;
  return c;
}

// Threads sharing TLS. A thread made by clone() with CLONE_VM but without
// CLONE_SETTLS (and not CLONE_VFORK) shares its parent's TLS, so the two
// would share one cache and be handed the same objects. The C library's
// clone is wrapped (override.c): before such a clone the parent's TLS is
// switched to mcache_shared, whose windows and lists stay empty, so every
// malloc and free of both threads takes a slow path, which finds the calling
// thread's own cache by its kernel tid (mcache_shared_self). Correct, but a
// system call per allocation; the collector refuses such threads (their
// registration would be shared too). A thread made by a raw clone system call
// is caught at its first refill or misuse report (mcache_check_owner,
// gm_fatal): reported, since it cannot be helped. (As everywhere in such a
// program, the C library's locks work only once the process has made a
// thread with pthread_create: until then they take no atomic steps.)
#define SHARED_MAX 64
static struct {
  pid_t tid;
  mcache_t *c;
} shared[SHARED_MAX];  // shared_lock
static size_t nshared; // shared_lock

// mcache_share_tls: the calling thread is about to make a thread that
// shares its TLS.
void mcache_share_tls(void) {
  mcache_t *c = gm_tls_mcache;
  if (c == &mcache_shared)
    return;
  lock_rank_disable(); // the shared TLS holds one thread's lock ranks
  gm_lock(&shared_lock);
  if (c != &mcache_empty && nshared < SHARED_MAX) {
    shared[nshared].tid = c->owner_tid;
    shared[nshared++].c = c;
  }
  gm_unlock(&shared_lock);
  gm_tls_mcache = &mcache_shared;
}

mcache_t *mcache_shared_self(void) {
  pid_t tid = os_gettid();
  mcache_t *c = NULL;
  gm_lock(&shared_lock);
  for (size_t i = 0; i < nshared && c == NULL; i++)
    if (shared[i].tid == tid)
      c = shared[i].c;
  if (c == NULL && nshared < SHARED_MAX && (c = mcache_new()) != NULL) {
    shared[nshared].tid = tid;
    shared[nshared++].c = c;
  }
  gm_unlock(&shared_lock);
  if (c == NULL)
    gm_fatal("too many threads share their TLS (clone() without CLONE_SETTLS)", NULL);
  return c;
}

// mcache_check_owner: is the caller the thread that made c? Threads made by
// clone() without CLONE_SETTLS share their parent's TLS, and so its cache:
// two threads would hand out the same objects. The caller's stack pointer
// inside the owner's stack region settles it for free; otherwise (a signal
// handler on an alternate stack, a coroutine, or another thread) the kernel
// tid does.
GM_INLINE void mcache_check_owner(mcache_t *c) {
  uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
  if (unlikely(sp - c->stack_lo >= c->stack_hi - c->stack_lo) && os_gettid() != c->owner_tid)
    mcache_foreign_thread(c);
}

void mcache_foreign_thread(mcache_t *c) {
  char buf[240];
  size_t n = gm_fmt(buf, sizeof buf,
                    "gomem: thread %d uses the thread cache of thread %d: a thread created by "
                    "clone() without CLONE_SETTLS shares its parent's TLS; create threads with "
                    "pthread_create\n",
                    (int)os_gettid(), (int)c->owner_tid);
  os_write_stderr(buf, n);
  abort();
}

// mcache_next_span makes c's span of sizeclass one with a loaded window:
// next window, else its remote frees, else one of c's partial spans, else a
// span from mcentral. Returns false when out of memory.
static bool mcache_next_span(mcache_t *c, uint8_t sizeclass) {
  mspan_t *s = c->cls[sizeclass].alloc;
  if (s != &span_empty) {
    if (span_next_window(s))
      return true;
    span_collect_remote(s);
    if (s->alloc_cache != 0 || span_next_window(s))
      return true;
    mcache_park(c, sizeclass);
  }
  if (mcache_take_partial(c, sizeclass))
    return true;
  mcache_flush_pending(c, sizeclass); // may turn full spans into partial ones
  s = mcentral_cache_span(sizeclass);
  if (s == NULL)
    return false;
  relaxed_store(&s->owner, c);
  c->cls[sizeclass].alloc = s;
  if (!span_next_window(s))
    gm_fatal("mcentral handed out a span without free slots", (void *)s->base);
  return true;
}

// mcache_refill_alloc is the malloc slow path: the window of c's span for
// sizeclass is empty. Returns an object or NULL with errno = ENOMEM.
GM_ENTRY GM_NOINLINE void *mcache_refill_alloc(mcache_t *c, uint8_t sizeclass) {
  if (unlikely(c == &mcache_empty || c == &mcache_shared)) {
    c = mcache_for_thread();
    if (c == NULL)
      goto oom;
  } else {
    mcache_check_owner(c);
  }
  if (unlikely(relaxed_load(&c->trim_epoch) != relaxed_load(&gm_trim_epoch))) {
    relaxed_store(&c->trim_epoch, relaxed_load(&gm_trim_epoch));
    mcache_release_all(c);
  }
  if (GM_VALIDATE) {
    lifo_validate(c);
    spares_validate(c);
  }
  mspan_t *s = c->cls[sizeclass].alloc;
  if (s->alloc_cache == 0 && !mcache_next_span(c, sizeclass))
    goto oom;
  s = c->cls[sizeclass].alloc;
  relaxed_add(&c->nmalloc[sizeclass], (uint64_t)gm_popcount(s->alloc_cache));
  prof_check_rate(c);
  if (PROF_CORE && unlikely((c->sample_left -= class_to_size[sizeclass]) < 0))
    return prof_malloc(class_to_size[sizeclass], false); // a sample (mprof.c); the window stays
  return span_take_slot(s);
oom:
  errno = ENOMEM;
  return NULL;
}

// mcache_sum_stats adds every cache's counters (live and exited threads) to st.
void mcache_sum_stats(gm_stats_t *st) {
  gm_lock(&registry_lock);
  // An object freed onto a lifo counts as freed when listed and as allocated
  // when popped: pops = listed so far - still listed.
  for (int i = 0; i < GM_NUM_SIZE_CLASSES; i++) {
    uint64_t lifo = relaxed_load(&dead_stats[i].nlifo); // lists drained at exit
    st->by_size[i].mallocs += relaxed_load(&dead_stats[i].nmalloc) + lifo;
    st->by_size[i].frees += relaxed_load(&dead_stats[i].nfree) + lifo;
  }
  for (mcache_t *c = registry; c; c = c->next) {
    st->num_threads++;
    for (int i = 0; i < GM_NUM_SIZE_CLASSES; i++) {
      uint64_t state = relaxed_load(&c->cls[i].lifo.state);
      uint64_t lifo = LIFO_PUSHES(state);
      uint64_t listed = lifo_cap[i] - LIFO_ROOM(state);
      st->by_size[i].mallocs += relaxed_load(&c->nmalloc[i]) + lifo - listed;
      st->by_size[i].frees += relaxed_load(&c->cls[i].nfree) + lifo;
    }
  }
  gm_unlock(&registry_lock);
  st->meta_sys += fixalloc_sys(&mcache_alloc);
}

// mcache_fork_child: registry_lock was taken by lock.c's fork handlers; the
// other threads' caches stay registered (their spans stay cached, unused).
void mcache_fork_child(void) {
  mcache_t *c = gm_tls_mcache;
  if (c != &mcache_empty)
    c->owner_tid = os_gettid();
}

void mcache_for_each(void (*fn)(mcache_t *c, void *ctx), void *ctx) {
  gm_lock(&registry_lock);
  for (mcache_t *c = registry; c; c = c->next)
    fn(c, ctx);
  gm_unlock(&registry_lock);
}
