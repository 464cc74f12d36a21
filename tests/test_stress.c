// test_stress: many threads allocate, hand objects to each other through
// queues, free them on other threads, and verify every object's contents.
// Threads are created and destroyed throughout. Run in the debug build (every
// span / mcentral / page-allocator operation validated) and under TSan.
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "gomem.h"
#include "test.h"

#define QCAP 4096

typedef struct queue {
  pthread_mutex_t lock;
  void *items[QCAP];
  size_t sizes[QCAP];
  int n;
} queue_t;

static queue_t queues[4];
static _Atomic long corrupt, allocated, freed;
static long rounds = 30000;

static uint64_t xs(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static size_t pick_size(uint64_t *r) {
  uint64_t k = xs(r) % 100;
  if (k < 60)
    return 1 + xs(r) % 128;
  if (k < 90)
    return 1 + xs(r) % 2048;
  if (k < 99)
    return 1 + xs(r) % 32768;
  return 32769 + xs(r) % (256 * 1024);
}

// fill / verify: the object's bytes derive from its address and size, so any
// overlap between two live objects or a stray write is caught at free.
static void fill(unsigned char *p, size_t n) {
  unsigned char v = (unsigned char)((uintptr_t)p >> 4 ^ n);
  size_t m = n < 64 ? n : 64;
  for (size_t i = 0; i < m; i++)
    p[i] = (unsigned char)(v + i);
  if (n > 64)
    p[n - 1] = v;
}

static void verify_free(unsigned char *p, size_t n) {
  unsigned char v = (unsigned char)((uintptr_t)p >> 4 ^ n);
  size_t m = n < 64 ? n : 64;
  int bad = 0;
  for (size_t i = 0; i < m; i++)
    bad |= p[i] != (unsigned char)(v + i);
  if (n > 64)
    bad |= p[n - 1] != v;
  if (bad || gm_usable_size(p) < n)
    atomic_fetch_add(&corrupt, 1);
  gm_free(p);
  atomic_fetch_add_explicit(&freed, 1, memory_order_relaxed);
}

static void *worker(void *arg) {
  uint64_t r = (uintptr_t)arg * 2654435761u + 1;
  void *mine[64];
  size_t mine_n[64];
  int nm = 0;
  for (long i = 0; i < rounds; i++) {
    size_t n = pick_size(&r);
    unsigned char *p = gm_malloc(n);
    fill(p, n);
    atomic_fetch_add_explicit(&allocated, 1, memory_order_relaxed);
    uint64_t what = xs(&r) % 3;
    if (what == 0 && nm < 64) { // keep it for a while, free locally later
      mine[nm] = p;
      mine_n[nm++] = n;
    } else { // hand it to a queue: someone else frees it
      queue_t *q = &queues[xs(&r) % 4];
      pthread_mutex_lock(&q->lock);
      if (q->n < QCAP) {
        q->items[q->n] = p;
        q->sizes[q->n++] = n;
        p = NULL;
      }
      pthread_mutex_unlock(&q->lock);
      if (p)
        verify_free(p, n);
    }
    if (nm == 64 || xs(&r) % 8 == 0) { // take from a queue and free
      queue_t *q = &queues[xs(&r) % 4];
      pthread_mutex_lock(&q->lock);
      void *t = q->n ? q->items[--q->n] : NULL;
      size_t tn = t ? q->sizes[q->n] : 0;
      pthread_mutex_unlock(&q->lock);
      if (t)
        verify_free(t, tn);
    }
    if (nm == 64)
      while (nm > 0)
        --nm, verify_free(mine[nm], mine_n[nm]);
  }
  while (nm > 0)
    --nm, verify_free(mine[nm], mine_n[nm]);
  return NULL;
}

int main(void) {
  if (GOMEM_SANITIZE[0] == 't' || GM_DEBUG >= 2)
    rounds = 6000; // TSan and the validators are slow; the interleavings remain
  for (int i = 0; i < 4; i++)
    pthread_mutex_init(&queues[i].lock, NULL);
  gm_stats_t before;
  gm_stats(&before);
  // Generations of threads: each generation's threads exit while objects
  // they allocated are still in queues (freed later by others) and objects
  // they own are in other threads' spans.
  for (int gen = 0; gen < 6; gen++) {
    pthread_t t[4];
    for (long i = 0; i < 4; i++)
      pthread_create(&t[i], NULL, worker, (void *)(gen * 4 + i + 1));
    for (int i = 0; i < 4; i++)
      pthread_join(t[i], NULL);
  }
  for (int i = 0; i < 4; i++)
    while (queues[i].n > 0) {
      queues[i].n--;
      verify_free(queues[i].items[queues[i].n], queues[i].sizes[queues[i].n]);
    }
  CHECKF(corrupt == 0, "%ld objects corrupted", (long)corrupt);
  CHECKF(allocated == freed, "allocated %ld freed %ld", (long)allocated, (long)freed);
  gm_stats_t after;
  gm_stats(&after);
  // Every object is freed: what remains allocated is at most the reserved
  // window slots of the main thread's cached spans (64 per class).
  CHECKF(after.heap_objects <= before.heap_objects + 64 * 67, "heap objects %llu -> %llu",
         (unsigned long long)before.heap_objects, (unsigned long long)after.heap_objects);
  CHECKF(after.mallocs - before.mallocs >= (uint64_t)allocated, "mallocs counted %llu < %ld",
         (unsigned long long)(after.mallocs - before.mallocs), (long)allocated);
  CHECKF(after.num_threads <= before.num_threads + 1, "thread caches leaked: %llu -> %llu",
         (unsigned long long)before.num_threads, (unsigned long long)after.num_threads);
  return test_done();
}
