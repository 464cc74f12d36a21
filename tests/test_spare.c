// test_spare: a thread whose objects another thread frees (a producer)
// keeps the spans they empty, up to SPARE_MAX bytes (mcache.c), and takes
// them back at its next refill, instead of sending each through mheap and
// taking a fresh one there.
//
// The producer fills NSPANS spans of one class; a consumer thread frees
// every object but those of the producer's current span (remote frees into
// spans parked full: each notifies the producer). The producer then
// allocates until an object lands outside its current span: that refill
// files the notified spans. mheap's in-use pages tell what happened: a
// thread that keeps its emptied spans takes one of them back, and the pages
// stay in use; one that does not gives them all back and takes a fresh span.
// With more emptied spans than SPARE_MAX, those beyond it go back.
#include <pthread.h>

#include "internals.h"
#include "test.h"

#define SIZE 1024 // 8 objects a span
#define MAXOBJS 4096

static void *objs[MAXOBJS];
static int nobjs;
static mspan_t *keep; // the producer's current span: its objects stay

static void *consumer(void *arg) {
  (void)arg;
  for (int i = 0; i < nobjs; i++)
    if (spanof((uintptr_t)objs[i]) != keep)
      pub_free(objs[i]);
  return NULL;
}

// round_trip fills nspans spans, has them emptied, and returns the change in
// mheap's in-use pages across the refill that follows (in spans).
static long round_trip(int nspans, size_t *span_pages) {
  nobjs = 0;
  mspan_t *first = NULL;
  int spans = 0;
  while (spans <= nspans && nobjs < MAXOBJS) { // nspans full spans after the first
    void *p = pub_malloc(SIZE);
    mspan_t *s = spanof((uintptr_t)p);
    if (s != first) {
      first = s;
      spans++;
    }
    objs[nobjs++] = p;
  }
  keep = spanof((uintptr_t)objs[nobjs - 1]);
  *span_pages = keep->npages;
  pthread_t t;
  CHECK(pthread_create(&t, NULL, consumer, NULL) == 0);
  pthread_join(t, NULL);
  size_t before = atomic_load(&gm_heap.inuse_pages);
  void *fresh[64];
  int n = 0;
  do
    fresh[n] = pub_malloc(SIZE);
  while (spanof((uintptr_t)fresh[n++]) == keep && n < 64);
  size_t after = atomic_load(&gm_heap.inuse_pages);
  for (int i = 0; i < nobjs; i++) // keep's objects (the consumer freed the others)
    if (spanof((uintptr_t)objs[i]) == keep)
      pub_free(objs[i]);
  for (int i = 0; i < n; i++)
    pub_free(fresh[i]);
  return ((long)after - (long)before) / (long)*span_pages;
}

int main(void) {
  size_t pages;
  // A few spans, well under SPARE_MAX: all kept, one taken back.
  long d = round_trip(4, &pages);
  CHECKF(d == 0, "4 emptied spans: in-use pages changed by %ld spans across the refill (0 if "
                 "they are kept)", d);
  // Many more than SPARE_MAX: those beyond it go back to mheap.
  size_t span_bytes = pages * GM_PAGE_SIZE;
  int many = (int)((2 * (256 << 10)) / span_bytes);
  d = round_trip(many, &pages);
  long kept_max = (long)((256 << 10) / span_bytes);
  CHECKF(d < 0 && d >= -(long)many && -d >= many - kept_max - 2,
         "%d emptied spans: in-use pages changed by %ld spans (%ld at most may be kept)", many, d,
         kept_max);
  return test_done();
}
