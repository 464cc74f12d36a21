// test_remote: cross-thread frees into spans their owners have parked.
//
// Larson's pattern: each thread owns an array of slots holding objects of
// random sizes; in every round a thread works on another thread's array,
// freeing the objects there (allocated by the other thread, so remote frees,
// often into spans their owner parked as full: the XF_FULL -> XF_NOTED
// notification path) and replacing them with its own. Checks:
//   - every object's contents survive until it is freed (no slot handed out
//     twice, no free lost into another object);
//   - the heap does not grow with the number of rounds: free slots in parked
//     spans are found again (a lost notification would strand them);
//   - after all threads exit and everything is freed, no object is live.
// Run in the debug build (validators on every span operation), under TSan
// and under ASan.
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "gomem.h"
#include "test.h"

#define NTHREADS 4
#define SLOTS 2000

typedef struct slot {
  unsigned char *p;
  uint32_t size;
  uint32_t tag;
} slot_t;

static slot_t arrays[NTHREADS][SLOTS];
static pthread_barrier_t barrier;
static _Atomic long corrupt;
static int rounds = 40, ops = 20000;

static uint64_t xs(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

// The first bytes (up to 32, not the last) carry tag + i; the last byte the
// tag's second byte.
static void fill(slot_t *s) {
  size_t n = s->size - 1 < 32 ? s->size - 1 : 32;
  for (size_t i = 0; i < n; i++)
    s->p[i] = (unsigned char)(s->tag + i);
  s->p[s->size - 1] = (unsigned char)(s->tag >> 8);
}

static void check(const slot_t *s) {
  size_t n = s->size - 1 < 32 ? s->size - 1 : 32;
  int bad = s->p[s->size - 1] != (unsigned char)(s->tag >> 8);
  for (size_t i = 0; i < n; i++)
    bad |= s->p[i] != (unsigned char)(s->tag + i);
  if (bad)
    atomic_fetch_add(&corrupt, 1);
}

static void replace(slot_t *s, uint64_t *r, uint32_t tag) {
  if (s->p) {
    check(s);
    gm_free(s->p);
  }
  s->size = (uint32_t)(8 + xs(r) % 1016);
  s->p = gm_malloc(s->size);
  s->tag = tag;
  fill(s);
}

static void *worker(void *arg) {
  long id = (long)arg;
  uint64_t r = (uint64_t)id * 0x9E3779B97F4A7C15ull + 7;
  for (int k = 0; k < SLOTS; k++)
    replace(&arrays[id][k], &r, (uint32_t)xs(&r));
  for (int round = 0; round < rounds; round++) {
    pthread_barrier_wait(&barrier);
    slot_t *a = arrays[(id + round + 1) % NTHREADS]; // someone else's objects
    for (int i = 0; i < ops; i++)
      replace(&a[xs(&r) % SLOTS], &r, (uint32_t)xs(&r));
    pthread_barrier_wait(&barrier);
  }
  return NULL;
}

static void run(int nrounds) {
  rounds = nrounds;
  pthread_t t[NTHREADS];
  pthread_barrier_init(&barrier, NULL, NTHREADS);
  for (long i = 0; i < NTHREADS; i++)
    pthread_create(&t[i], NULL, worker, (void *)i);
  for (int i = 0; i < NTHREADS; i++)
    pthread_join(t[i], NULL);
  pthread_barrier_destroy(&barrier);
}

int main(void) {
  if (GOMEM_SANITIZE[0] || GM_DEBUG >= 2)
    ops = 4000; // slow builds: fewer operations, the same interleavings
  gm_stats_t s0, s1, s2;
  gm_stats(&s0);
  // Two generations of threads on the same arrays: the second finds objects
  // of exited threads (spans given to mcentral) as well as its own.
  run(10);
  gm_stats(&s1);
  run(40);
  gm_stats(&s2);
  CHECKF(corrupt == 0, "%ld objects corrupted", (long)corrupt);
  // Live data is constant (NTHREADS * SLOTS objects of <= 1 KiB, ~4 MiB):
  // four times as many rounds must not need a bigger heap.
  CHECKF(s2.heap_inuse <= s1.heap_inuse + (s1.heap_inuse >> 1) + (1u << 20),
         "heap grew with rounds: %llu -> %llu bytes in use", (unsigned long long)s1.heap_inuse,
         (unsigned long long)s2.heap_inuse);
  CHECKF(s2.heap_inuse < (64u << 20), "heap in use %llu bytes for ~4 MiB of live data",
         (unsigned long long)s2.heap_inuse);
  for (int i = 0; i < NTHREADS; i++)
    for (int k = 0; k < SLOTS; k++) {
      check(&arrays[i][k]);
      gm_free(arrays[i][k].p);
    }
  CHECKF(corrupt == 0, "%ld objects corrupted at the end", (long)corrupt);
  gm_stats_t s3;
  gm_stats(&s3);
  // Everything is freed: what stays "live" is at most the main thread's
  // reserved window slots (< 64 per class).
  CHECKF(s3.heap_objects <= s0.heap_objects + 64 * 67, "%llu objects still live",
         (unsigned long long)(s3.heap_objects - s0.heap_objects));
  return test_done();
}
