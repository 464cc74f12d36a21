// gc_double_free_threads: a GC object freed twice, each time by a thread
// other than the one whose cache holds its span, is not reported: both
// frees clear the object ("cached elsewhere: cleared, left to the
// collector"). gomem.h: "A second gm_free of the same object is reported."
// From the repository root, after `make`:
//   f=tests/fuzz/repro/gc_double_free_threads.c
//   cc -Iinclude $f build/libgomem.a -lpthread -ldl -o /tmp/r
//   /tmp/r
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>

#include "gomem.h"

static void *free_it(void *p) {
  gm_free(p);
  return NULL;
}

int main(void) {
  void *p = gm_alloc(64); // its span stays cached by the main thread
  for (int i = 0; i < 2; i++) {
    pthread_t t;
    pthread_create(&t, NULL, free_it, p);
    pthread_join(t, NULL);
  }
  gm_collect();
  printf("BUG: the second gm_free of %p was not reported\n", p);
  return 1;
}
