// thread_exit_race: live GC objects are lost when threads exit while
// collections run, in a process whose first request to gomem is
// pthread_create (a libFuzzer target: its driver starts a thread before the
// first input; any program that starts threads before its first malloc).
// gomem's thread-registry key (proc.c, created by the pthread_create
// wrapper) is then older than its cache key (mcache.c, created at heap
// initialisation), and at thread exit the C library runs key destructors in
// key order: the exiting thread unregisters from the collector (proc.c
// thread_exit) before it gives its GC spans back (mcache_thread_exit ->
// mcache_release_gc -> gcentral_uncache_span, which sweeps). That release
// runs unstopped while collections mark and sweep: TSan reports the races
// (prepare_cache, greyobject, sweep_bits, gc_span_free against
// mcache_release_gc, gcentral_uncache_span), and live objects are freed.
// fuzz_gc saw it as finalizer-table objects whose span was gone (NULL span
// in is_marked, mgcmark.c:438) and as reachable objects already freed.
// Here: threads allocate GC objects that a global root keeps, and exit,
// while another thread collects; every object is checked after each round.
// From the repository root, after `make` (release build):
//   f=tests/fuzz/repro/thread_exit_race.c
//   cc -Iinclude $f build/libgomem.a -lpthread -ldl -o /tmp/r
//   /tmp/r
// prints "round N: object M (...) lost" within a few rounds; `/tmp/r
// first-alloc` (a GC allocation before the first pthread_create: the cache
// key comes first) loses nothing. With a TSan build (`make test-tsan`):
//   gcc -fsanitize=thread -Iinclude $f build-tsan/libgomem.a -lpthread -ldl -o /tmp/r
//   /tmp/r 2>&1 | grep -m3 -A8 'WARNING: ThreadSanitizer'
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "gomem.h"

#define NOBJ 64
#define ROUNDS 300

static void *volatile objs[NOBJ]; // a root: the program's .bss
static _Atomic int stop;

static void *mutator(void *arg) {
  unsigned r = (unsigned)(uintptr_t)arg;
  for (int i = 0; i < NOBJ; i++) {
    size_t size = 16 + (size_t)((r * 131 + (unsigned)i * 977) % 30000);
    unsigned char *p = gm_alloc_noscan(size);
    memset(p, (int)(r & 0xff), 16);
    objs[i] = p;
  }
  return NULL; // exits: its cache goes back (see above)
}

static void *collector(void *arg) {
  (void)arg;
  while (!stop)
    gm_collect();
  return NULL;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "first-alloc") == 0)
    gm_alloc(16);
  pthread_t c;
  pthread_create(&c, NULL, collector, NULL);
  int bad = 0;
  for (unsigned r = 1; r <= ROUNDS && !bad; r++) {
    pthread_t t;
    pthread_create(&t, NULL, mutator, (void *)(uintptr_t)r);
    pthread_join(t, NULL);
    for (int i = 0; i < NOBJ && !bad; i++) {
      const unsigned char *p = objs[i];
      if (!gm_owns(p) || p[0] != (unsigned char)(r & 0xff) || p[15] != (unsigned char)(r & 0xff)) {
        printf("round %u: object %d (%p) lost\n", r, i, (const void *)p);
        bad = 1;
      }
    }
  }
  stop = 1;
  pthread_join(c, NULL);
  printf("%s\n", bad ? "BUG: a live object was lost" : "no object lost");
  return bad;
}
