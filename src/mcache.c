// mcache.c: per-thread caches and span windows, twin of Go's mcache.
//
// Each thread has one mcache (found through an initial-exec TLS pointer) with
// one span per size class. Allocation takes the lowest set bit of the span's
// alloc_cache (Go's nextFreeFast): no lock and no atomic instruction. When the
// window runs dry, mcache_refill_alloc moves it to the next alloc_bits word
// with free slots; when the span has none left it first collects frees other
// threads pushed on the span's remote list, and only then trades the span for
// another at mcentral.
//
// Window discipline: loading a window reserves its free slots (their
// alloc_bits become 1) and copies them into alloc_cache; allocation hands
// them out; a local free of a window object puts its bit back in alloc_cache;
// uncaching un-reserves what is left. So for every slot:
//   allocated  <=>  alloc_bits bit set && !(slot in window && alloc_cache bit set)
// and nfree counts the 0 bits of alloc_bits, which is what mcentral sees.
//
// A thread's mcache is created at its first allocation (until then the TLS
// pointer names mcache_empty, whose spans are all span_empty with an empty
// window, so the fast path falls into the refill path without a NULL test).
// At thread exit a pthread key destructor gives every span back to mcentral
// and the record to a free list, so threads can come and go without leaks.
#include <string.h>

#include "internal.h"

mspan_t span_empty;

// mcache_empty must be valid before any initialiser runs: every class names
// span_empty, statically.
#define E1 &span_empty
#define E4 E1, E1, E1, E1
#define E16 E4, E4, E4, E4
_Static_assert(GM_NUM_SIZE_CLASSES == 68, "mcache_empty initialiser");
mcache_t mcache_empty = {.alloc = {E16, E16, E16, E16, E4}};
__thread mcache_t *gm_tls_mcache __attribute__((tls_model("initial-exec"))) = &mcache_empty;

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static mcache_t *registry;             // all live caches (registry_lock)
static class_stats_t dead_stats[GM_NUM_SIZE_CLASSES]; // of exited threads (registry_lock)
static uint64_t dead_win_frees;                       // (registry_lock)
static fixalloc_t mcache_alloc;
static pthread_key_t mcache_key;
_Atomic uint64_t gm_trim_epoch;        // bumped by gm_release_memory

// span_init_small prepares a fresh span of npages for sizeclass: every slot
// free, bits past nelems permanently set, no window loaded.
void span_init_small(mspan_t *s, uint8_t sizeclass) {
  s->elemsize = class_to_size[sizeclass];
  s->divmul = class_to_divmul[sizeclass];
  s->nelems = class_to_nelems[sizeclass];
  s->nfree = s->nelems;
  s->alloc_cache = 0;
  unsigned nwords = (s->nelems + 63) / 64;
  s->window = (uint16_t)(nwords - 1); // the first window loaded is word 0
  memset(s->alloc_bits, 0, sizeof s->alloc_bits);
  if (s->nelems % 64)
    s->alloc_bits[nwords - 1] = ~0ULL << (s->nelems % 64);
  atomic_store_explicit(&s->xfree, 0, memory_order_relaxed);
  relaxed_store(&s->owner, NULL);
}

// span_next_window loads the next alloc_bits word with free slots into
// alloc_cache. Returns false if the span has no free slot. Precondition: the
// current window is exhausted (alloc_cache == 0). Owner only.
bool span_next_window(mspan_t *s) {
  gm_assert(s->alloc_cache == 0);
  if (s->nfree == 0)
    return false;
  unsigned nwords = (s->nelems + 63) / 64, w = s->window;
  do
    w = w + 1 == nwords ? 0 : w + 1;
  while (s->alloc_bits[w] == ~0ULL);
  uint64_t free = ~s->alloc_bits[w];
  s->alloc_bits[w] = ~0ULL;
  s->nfree -= (uint16_t)gm_popcount(free);
  s->alloc_cache = free;
  s->window = (uint16_t)w;
  s->window_base = s->base + (uintptr_t)w * 64 * s->elemsize;
  if (GM_VALIDATE)
    span_validate(s);
  return true;
}

void span_bad_object(uintptr_t p) {
  gm_fatal("free of a pointer inside an object or misaligned (not an allocation start)",
           (void *)p);
}

// span_validate checks the bitmap invariants of small span s (owner only).
void span_validate(const mspan_t *s) {
  unsigned nwords = (s->nelems + 63) / 64, zeros = 0;
  for (unsigned w = 0; w < nwords; w++)
    zeros += 64 - (unsigned)gm_popcount(s->alloc_bits[w]);
  if (zeros != s->nfree)
    gm_fatal("span: nfree does not match alloc_bits", (void *)s->base);
  if (s->nelems % 64 && (~s->alloc_bits[nwords - 1] >> (s->nelems % 64)) != 0)
    gm_fatal("span: bits past the last object are clear", (void *)s->base);
  if (s->alloc_cache != 0 && s->alloc_bits[s->window] != ~0ULL)
    gm_fatal("span: window not fully reserved", (void *)s->base);
  if (s->window == nwords - 1 && s->nelems % 64 && (s->alloc_cache >> (s->nelems % 64)) != 0)
    gm_fatal("span: window holds slots past the last object", (void *)s->base);
}

// mcache_uncache gives c's span of sizeclass back to mcentral (owner thread).
static void mcache_uncache(mcache_t *c, uint8_t sizeclass) {
  mspan_t *s = c->alloc[sizeclass];
  if (s == &span_empty)
    return;
  // Reserved but unused window slots were counted as mallocs at load.
  relaxed_store(&c->stats[sizeclass].nmalloc, relaxed_load(&c->stats[sizeclass].nmalloc) -
                                                  (uint64_t)gm_popcount(s->alloc_cache));
  c->alloc[sizeclass] = &span_empty;
  relaxed_store(&s->owner, NULL);
  mcentral_uncache_span(s);
}

// mcache_flush_pending frees c's pending objects of sizeclass (owner only).
void mcache_flush_pending(mcache_t *c, uint8_t sizeclass) {
  uintptr_t list = c->pend[sizeclass];
  if (list == 0)
    return;
  c->pend[sizeclass] = 0;
  c->pend_n[sizeclass] = 0;
  mcentral_free_batch(sizeclass, list, c);
}

// mcache_release_all frees c's pending objects and returns every cached span
// of c to mcentral.
void mcache_release_all(mcache_t *c) {
  for (int i = 1; i < GM_NUM_SIZE_CLASSES; i++) {
    mcache_flush_pending(c, (uint8_t)i);
    mcache_uncache(c, (uint8_t)i);
  }
}

static void mcache_thread_exit(void *arg) {
  mcache_t *c = arg;
  gm_tls_mcache = &mcache_empty;
  mcache_release_all(c);
  pthread_mutex_lock(&registry_lock);
  for (int i = 0; i < GM_NUM_SIZE_CLASSES; i++) {
    relaxed_add(&dead_stats[i].nmalloc, relaxed_load(&c->stats[i].nmalloc));
    relaxed_add(&dead_stats[i].nfree, relaxed_load(&c->stats[i].nfree));
  }
  dead_win_frees += relaxed_load(&c->win_frees);
  mcache_t **pp = &registry;
  while (*pp != c)
    pp = &(*pp)->next;
  *pp = c->next;
  pthread_mutex_unlock(&registry_lock);
  fixalloc_free(&mcache_alloc, c);
}

// mcache_thread_init sets up the cache registry; called once from init after
// the heap works (pthread_key_create does not allocate).
void mcache_thread_init(void) {
  fixalloc_init(&mcache_alloc, sizeof(mcache_t));
  if (pthread_key_create(&mcache_key, mcache_thread_exit) != 0)
    gm_fatal("cannot create the thread-cache key", NULL);
}

// mcache_for_thread returns the calling thread's cache, creating it on first
// use. NULL when out of memory.
mcache_t *mcache_for_thread(void) {
  mcache_t *c = gm_tls_mcache;
  if (c != &mcache_empty)
    return c;
  gm_ensure_init();
  c = fixalloc_alloc(&mcache_alloc);
  if (c == NULL)
    return NULL;
  for (int i = 0; i < GM_NUM_SIZE_CLASSES; i++)
    c->alloc[i] = &span_empty;
  relaxed_store(&c->trim_epoch, relaxed_load(&gm_trim_epoch));
  pthread_mutex_lock(&registry_lock);
  c->next = registry;
  registry = c;
  pthread_mutex_unlock(&registry_lock);
  pthread_setspecific(mcache_key, c);
  gm_tls_mcache = c;
  return c;
}

// mcache_next_span makes c's span of sizeclass one with a loaded window:
// next window, else remote frees, else a span from mcentral. Returns false
// when out of memory.
static bool mcache_next_span(mcache_t *c, uint8_t sizeclass) {
  mspan_t *s = c->alloc[sizeclass];
  if (s != &span_empty) {
    if (span_next_window(s))
      return true;
    span_collect_remote(s);
    if (s->alloc_cache != 0 || span_next_window(s))
      return true;
    mcache_uncache(c, sizeclass);
  }
  mcache_flush_pending(c, sizeclass); // may turn full spans into partial ones
  s = mcentral_cache_span(sizeclass);
  if (s == NULL)
    return false;
  relaxed_store(&s->owner, c);
  c->alloc[sizeclass] = s;
  if (!span_next_window(s))
    gm_fatal("mcentral handed out a span without free slots", (void *)s->base);
  return true;
}

// mcache_refill_alloc is the malloc slow path: the window of c's span for
// sizeclass is empty. Returns an object or NULL with errno = ENOMEM.
GM_NOINLINE void *mcache_refill_alloc(mcache_t *c, uint8_t sizeclass) {
  if (unlikely(c == &mcache_empty)) {
    c = mcache_for_thread();
    if (c == NULL)
      goto oom;
  }
  if (unlikely(relaxed_load(&c->trim_epoch) != relaxed_load(&gm_trim_epoch))) {
    relaxed_store(&c->trim_epoch, relaxed_load(&gm_trim_epoch));
    mcache_release_all(c);
  }
  mspan_t *s = c->alloc[sizeclass];
  if (s->alloc_cache == 0 && !mcache_next_span(c, sizeclass))
    goto oom;
  s = c->alloc[sizeclass];
  relaxed_add(&c->stats[sizeclass].nmalloc, (uint64_t)gm_popcount(s->alloc_cache));
  uint64_t v = s->alloc_cache;
  s->alloc_cache = v & (v - 1);
  return (void *)(s->window_base + (uintptr_t)__builtin_ctzll(v) * s->elemsize);
oom:
  errno = ENOMEM;
  return NULL;
}

// mcache_sum_stats adds every cache's counters (live and exited threads) to st.
void mcache_sum_stats(gm_stats_t *st) {
  pthread_mutex_lock(&registry_lock);
  for (int i = 0; i < GM_NUM_SIZE_CLASSES; i++) {
    st->by_size[i].mallocs += relaxed_load(&dead_stats[i].nmalloc);
    st->by_size[i].frees += relaxed_load(&dead_stats[i].nfree);
  }
  st->mallocs += dead_win_frees;
  st->frees += dead_win_frees;
  for (mcache_t *c = registry; c; c = c->next) {
    st->num_threads++;
    st->mallocs += relaxed_load(&c->win_frees);
    st->frees += relaxed_load(&c->win_frees);
    for (int i = 0; i < GM_NUM_SIZE_CLASSES; i++) {
      st->by_size[i].mallocs += relaxed_load(&c->stats[i].nmalloc);
      st->by_size[i].frees += relaxed_load(&c->stats[i].nfree);
    }
  }
  st->meta_sys += mcache_alloc.sys;
  pthread_mutex_unlock(&registry_lock);
}

void mcache_registry_lock(void) {
  pthread_mutex_lock(&registry_lock);
  pthread_mutex_lock(&mcache_alloc.lock);
}

void mcache_registry_unlock(void) {
  pthread_mutex_unlock(&mcache_alloc.lock);
  pthread_mutex_unlock(&registry_lock);
}

// mcache_registry_reset (fork child): only the forking thread survives; the
// other threads' caches stay registered (their spans stay cached, unused).
void mcache_registry_reset(void) {
  pthread_mutex_init(&registry_lock, NULL);
  pthread_mutex_init(&mcache_alloc.lock, NULL);
}
