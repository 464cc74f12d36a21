// test_threads: threads come and go by the thousand; their caches are given
// back and the heap does not grow with the number of threads that lived.
#include <pthread.h>
#include <string.h>

#include "gomem.h"
#include "test.h"

static void *shared[256];
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;

static void *short_life(void *arg) {
  uintptr_t id = (uintptr_t)arg;
  void *keep[32];
  for (int i = 0; i < 32; i++) { // objects in many classes: many cached spans
    keep[i] = gm_malloc(8 + (size_t)i * 97 + id % 7);
    memset(keep[i], (int)id, 8);
  }
  // Hand one object to the next thread (freed remotely), free the rest.
  pthread_mutex_lock(&shared_lock);
  void *old = shared[id % 256];
  shared[id % 256] = keep[0];
  pthread_mutex_unlock(&shared_lock);
  gm_free(old);
  for (int i = 1; i < 32; i++)
    gm_free(keep[i]);
  return NULL;
}

static void run_threads(int n, int base) {
  for (int i = 0; i < n; i += 8) {
    pthread_t t[8];
    for (int k = 0; k < 8; k++)
      pthread_create(&t[k], NULL, short_life, (void *)(uintptr_t)(base + i + k));
    for (int k = 0; k < 8; k++)
      pthread_join(t[k], NULL);
  }
}

int main(void) {
  int n = GOMEM_SANITIZE[0] ? 400 : 2000;
  gm_stats_t s0, s1, s2;
  gm_stats(&s0);
  run_threads(n, 0);
  gm_stats(&s1);
  run_threads(n, n);
  gm_stats(&s2);
  CHECKF(s2.num_threads <= s0.num_threads + 1, "thread caches not given back: %llu -> %llu",
         (unsigned long long)s0.num_threads, (unsigned long long)s2.num_threads);
  // A second round of as many threads must not need more heap.
  CHECKF(s2.heap_inuse <= s1.heap_inuse + 256 * 1024, "heap grew %llu -> %llu",
         (unsigned long long)s1.heap_inuse, (unsigned long long)s2.heap_inuse);
  CHECKF(s2.meta_sys <= s1.meta_sys + 128 * 1024, "metadata grew %llu -> %llu",
         (unsigned long long)s1.meta_sys, (unsigned long long)s2.meta_sys);
  for (int i = 0; i < 256; i++)
    gm_free(shared[i]);
  return test_done();
}
