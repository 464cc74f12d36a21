// test_dlopen: gomem loaded late, with dlopen, beside the copy this program
// links statically (which is the program's malloc in this build).
//
// libgomem.so keeps its thread-cache pointer in initial-exec TLS; a library
// loaded after startup must still get working static TLS. The dlopened copy
// is a separate heap: its objects are not the static copy's and vice versa.
// It is used from the main thread and from several threads that hand objects
// to each other (allocated on one thread, freed on another), and its own
// gm_stats must count what was done through it.
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gomem.h"
#include "test.h"

#ifndef GOMEM_SO
#error "GOMEM_SO must name libgomem.so"
#endif

static void *(*d_malloc)(size_t);
static void (*d_free)(void *);
static size_t (*d_usable_size)(const void *);
static void (*d_stats)(gm_stats_t *);
static int (*d_owns)(const void *);
static void *(*d_realloc)(void *, size_t);
static size_t (*d_release)(void);

// sym: dlsym into a function pointer without an object-to-function cast.
static int sym(void *h, const char *name, void *fnptr, size_t fnsize) {
  void *p = dlsym(h, name);
  if (p == NULL) {
    fprintf(stderr, "dlsym(%s): %s\n", name, dlerror());
    return 0;
  }
  memcpy(fnptr, &p, fnsize);
  return 1;
}

static unsigned char pat(size_t tag, size_t i) {
  return (unsigned char)(tag * 67 + i * 13 + 5);
}

static void fill(unsigned char *p, size_t n, size_t tag) {
  for (size_t i = 0; i < n; i++)
    p[i] = pat(tag, i);
}

static int check(const unsigned char *p, size_t n, size_t tag) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != pat(tag, i))
      return 0;
  return 1;
}

// ---------------------------------------------------------------------------
// Threads passing objects around a ring: thread i allocates a batch, hands it
// to thread i+1, which checks and frees it.

#define NTHREADS 4
#define ROUNDS 50
#define BATCH 200

typedef struct obj {
  unsigned char *p;
  size_t size, tag;
} obj_t;

static obj_t mailbox[NTHREADS][BATCH]; // mailbox[i]: written by i, read by i+1
static pthread_barrier_t barrier;

typedef struct tresult {
  long mallocs, frees, bad_content, bad_owner, null;
} tresult_t;

static tresult_t results[NTHREADS];

static size_t size_for(size_t k) {
  static const size_t sizes[] = {8, 16, 40, 64, 100, 256, 700, 1024, 3000, 9000, 20000, 40000};
  return sizes[k % (sizeof sizes / sizeof sizes[0])];
}

static void *ring_thread(void *arg) {
  int id = (int)(intptr_t)arg;
  tresult_t *r = &results[id];
  int from = (id + NTHREADS - 1) % NTHREADS;
  for (int round = 0; round < ROUNDS; round++) {
    for (size_t k = 0; k < BATCH; k++) {
      size_t size = size_for(k + (size_t)round);
      size_t tag = (size_t)id * 1000003u + (size_t)round * 1009u + k;
      unsigned char *p = d_malloc(size);
      r->mallocs++;
      if (p == NULL) {
        r->null++;
        mailbox[id][k].p = NULL;
        continue;
      }
      if (!d_owns(p) || gm_owns(p) || d_usable_size(p) < size)
        r->bad_owner++;
      fill(p, size, tag);
      mailbox[id][k] = (obj_t){p, size, tag};
      // The static copy works on this thread too, alongside.
      void *s = gm_malloc(size);
      if (s == NULL || !gm_owns(s) || d_owns(s))
        r->bad_owner++;
      gm_free(s);
    }
    pthread_barrier_wait(&barrier);
    for (size_t k = 0; k < BATCH; k++) {
      obj_t *o = &mailbox[from][k];
      if (o->p == NULL)
        continue;
      if (!check(o->p, o->size, o->tag))
        r->bad_content++;
      d_free(o->p);
      r->frees++;
      o->p = NULL;
    }
    pthread_barrier_wait(&barrier);
  }
  return NULL;
}

int main(void) {
  void *h = dlopen(GOMEM_SO, RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) {
    fprintf(stderr, "dlopen(%s): %s\n", GOMEM_SO, dlerror());
    CHECK(h != NULL);
    return test_done();
  }
  int ok = sym(h, "gm_malloc", &d_malloc, sizeof d_malloc) &&
           sym(h, "gm_free", &d_free, sizeof d_free) &&
           sym(h, "gm_usable_size", &d_usable_size, sizeof d_usable_size) &&
           sym(h, "gm_stats", &d_stats, sizeof d_stats) &&
           sym(h, "gm_owns", &d_owns, sizeof d_owns) &&
           sym(h, "gm_realloc", &d_realloc, sizeof d_realloc) &&
           sym(h, "gm_release_memory", &d_release, sizeof d_release);
  CHECK(ok);
  if (!ok)
    return test_done();
  // A separate copy: not the functions this program links.
  CHECK((void *)(uintptr_t)d_malloc != (void *)(uintptr_t)gm_malloc);

  gm_stats_t s0, s1;
  d_stats(&s0);
  gm_stats_t g0, g1;
  gm_stats(&g0);

  // Main thread: objects of every kind, small and large.
  enum { NMAIN = 500 };
  unsigned char *v[NMAIN];
  size_t vs[NMAIN];
  int bad = 0;
  for (int i = 0; i < NMAIN; i++) {
    vs[i] = i % 50 == 0 ? (size_t)(100000 + i * 1000) : (size_t)(1 + (i * 97) % 9000);
    v[i] = d_malloc(vs[i]);
    if (v[i] == NULL || !d_owns(v[i]) || gm_owns(v[i]) || d_usable_size(v[i]) < vs[i]) {
      bad++;
      continue;
    }
    fill(v[i], vs[i], (size_t)i);
  }
  CHECKF(bad == 0, "%d main-thread objects NULL, misowned or too small", bad);
  bad = 0;
  for (int i = 0; i < NMAIN; i++)
    if (v[i] && !check(v[i], vs[i], (size_t)i))
      bad++;
  CHECKF(bad == 0, "%d main-thread objects overwritten", bad);
  d_stats(&s1);
  CHECKF(s1.mallocs >= s0.mallocs + NMAIN, "dlopened mallocs %llu -> %llu",
         (unsigned long long)s0.mallocs, (unsigned long long)s1.mallocs);
  CHECK(s1.by_size[0].mallocs == s0.by_size[0].mallocs + NMAIN / 50); // the large ones
  CHECK(s1.heap_alloc > s0.heap_alloc);
  // realloc within the dlopened copy keeps contents.
  unsigned char *rp = d_realloc(v[1], 50000);
  CHECK(rp != NULL && d_owns(rp) && check(rp, vs[1], 1));
  v[1] = rp;
  for (int i = 0; i < NMAIN; i++)
    d_free(v[i]);
  gm_stats(&g1);
  // Nothing large went through the static copy.
  CHECKF(g1.by_size[0].mallocs == g0.by_size[0].mallocs,
         "static copy large mallocs %llu -> %llu", (unsigned long long)g0.by_size[0].mallocs,
         (unsigned long long)g1.by_size[0].mallocs);

  // Threads: objects allocated on one thread, freed on the next.
  d_stats(&s0);
  pthread_barrier_init(&barrier, NULL, NTHREADS);
  pthread_t t[NTHREADS];
  for (int i = 0; i < NTHREADS; i++)
    pthread_create(&t[i], NULL, ring_thread, (void *)(intptr_t)i);
  for (int i = 0; i < NTHREADS; i++)
    pthread_join(t[i], NULL);
  pthread_barrier_destroy(&barrier);
  d_stats(&s1);
  long tm = 0, tf = 0, bc = 0, bo = 0, nn = 0;
  for (int i = 0; i < NTHREADS; i++) {
    tm += results[i].mallocs;
    tf += results[i].frees;
    bc += results[i].bad_content;
    bo += results[i].bad_owner;
    nn += results[i].null;
  }
  CHECKF(nn == 0, "%ld NULL results on threads", nn);
  CHECKF(bc == 0, "%ld objects changed between threads", bc);
  CHECKF(bo == 0, "%ld objects with the wrong owner or size", bo);
  CHECK(tm == (long)NTHREADS * ROUNDS * BATCH && tf == tm);
  CHECKF(s1.mallocs - s0.mallocs >= (uint64_t)tm, "dlopened mallocs +%llu for %ld",
         (unsigned long long)(s1.mallocs - s0.mallocs), tm);
  CHECKF(GM_SECURE || s1.frees - s0.frees == (uint64_t)tf, "dlopened frees +%llu for %ld",
         (unsigned long long)(s1.frees - s0.frees), tf); // (hardened: the quarantine holds some)
  // The threads' caches went away with them; their objects are all freed
  // (mallocs - frees back where it was, up to the main thread's windows).
  CHECKF(s1.num_threads == s0.num_threads, "dlopened thread caches %llu -> %llu",
         (unsigned long long)s0.num_threads, (unsigned long long)s1.num_threads);
  long long live0 = (long long)(s0.mallocs - s0.frees), live1 = (long long)(s1.mallocs - s1.frees);
  CHECKF(GM_SECURE || live1 == live0, "dlopened live objects %lld -> %lld", live0, live1);

  // Releasing the dlopened heap works and leaves it usable.
  d_release();
  void *p = d_malloc(12345);
  CHECK(p != NULL && d_owns(p));
  d_free(p);
  return test_done();
}
