// mallocs_decrease: gm_stats' `mallocs` ("cumulative objects allocated")
// goes down after gm_release_memory, which takes back the slots thread
// caches had reserved (and counted) but not handed out.
// From the repository root, after `make`:
//   f=tests/fuzz/repro/mallocs_decrease.c
//   cc -Iinclude $f build/libgomem.a -lpthread -ldl -o /tmp/r
//   /tmp/r
#define _GNU_SOURCE
#include <stdio.h>

#include "gomem.h"

int main(void) {
  void *p = gm_malloc(1000);
  gm_stats_t a, b;
  gm_stats(&a);
  gm_release_memory();
  gm_stats(&b);
  printf("mallocs %llu -> %llu across gm_release_memory\n", (unsigned long long)a.mallocs,
         (unsigned long long)b.mallocs);
  gm_free(p);
  return b.mallocs < a.mallocs;
}
