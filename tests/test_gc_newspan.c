// test_gc_newspan: a scanner that finds a GC span another thread has just
// set up sees it set up, with no synchronization but the span's kind
// (gc_span_setup stores it with release, the scanner loads it with
// acquire). Marking beside the program meets that when a stale word points
// into a span set up while marking runs, before its first object is marked
// black: TSan, which sees the scanner's mark-bit write and its reads of the
// span (set_mark, object_size) but not the acquire, in a function it does
// not instrument, reported those as races with the set-up until it was told
// of the acquire (gc_span_kind). So under TSan this test fails without that.
//
// The main thread allocates an object in a new span and hands its address
// to a scanner thread with a relaxed store (as a word the scanner reads from
// memory); the scanner greys it (gc_mark_shade) and says so with release;
// the main thread checks the mark and frees the object, whose span record
// and mark bits the next round reuses. No cycle runs meanwhile (GOGC off).
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "lock.h"
#include "mgcmark.h"
#include "test.h"
#include "test_gc.h"

#define ROUNDS 32
#define LARGE_BYTES (64 << 10)
#define SMALL_BYTES 28000 // a size class with a few objects per span

static _Atomic uintptr_t handoff; // the word the scanner reads (relaxed)
static _Atomic int shaded;        // rounds the scanner has greyed (release)

static void *scanner_main(void *arg) {
  (void)arg;
  for (int round = 1; round <= ROUNDS; round++) {
    uintptr_t w;
    while ((w = atomic_load_explicit(&handoff, memory_order_relaxed)) == 0)
      sched_yield();
    atomic_store_explicit(&handoff, 0, memory_order_relaxed);
    m_acquire();
    gc_mark_shade(&w, 1);
    m_release();
    atomic_store_explicit(&shaded, round, memory_order_release);
  }
  return NULL;
}

// shade_new has the scanner grey p, new in its span; true if it is marked.
static bool shade_new(void *p, int round) {
  atomic_store_explicit(&handoff, (uintptr_t)p, memory_order_relaxed);
  while (atomic_load_explicit(&shaded, memory_order_acquire) != round)
    sched_yield();
  return gc_is_marked((uintptr_t)p);
}

int main(void) {
  gm_set_gc_percent(-1);
  void *volatile first = gm_alloc(16); // the heap's first arena, before
  collect();                           // a cycle sets the scanner's bounds
  (void)first;
  pthread_t scanner;
  if (pthread_create(&scanner, NULL, scanner_main, NULL) != 0)
    return 2;
  int marked = 0;
  for (int round = 1; round <= ROUNDS; round++) {
    void *p = round == 1 ? gm_alloc_noscan(SMALL_BYTES) : gm_alloc_noscan(LARGE_BYTES);
    marked += p != NULL && shade_new(p, round);
    if (round > 1)
      gm_free(p); // (its span's record and mark bits go to the next round's)
  }
  pthread_join(scanner, NULL);
  CHECKF(marked == ROUNDS, "%d of %d objects in new spans marked by another thread", marked,
         ROUNDS);
  return test_done();
}
