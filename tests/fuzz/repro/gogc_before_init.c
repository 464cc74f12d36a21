// gogc_before_init: with GOMEM_GOGC set, a gm_set_gc_percent made before the
// first GC allocation is replaced by the environment's value when the
// collector initialises (gc_init), without a word.
// From the repository root, after `make`:
//   f=tests/fuzz/repro/gogc_before_init.c
//   cc -Iinclude $f build/libgomem.a -lpthread -ldl -o /tmp/r
//   GOMEM_GOGC=50 /tmp/r
#define _GNU_SOURCE
#include <stdio.h>

#include "gomem.h"

int main(void) {
  gm_set_gc_percent(300);
  gm_alloc(16); // the first GC allocation: the collector initialises
  int now = gm_set_gc_percent(300);
  printf("GOGC set to 300 before the first gm_alloc; it was %d after\n", now);
  return now == 300 ? 0 : 1;
}
