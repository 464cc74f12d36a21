// tiny_realloc_overlap: gm_realloc of a tiny GC object (gm_alloc_noscan under
// 16 bytes) to a larger size that still fits in 16 bytes returns the same
// pointer, although the next tiny object of the block starts right after it:
// using the new size overwrites the neighbour.
// From the repository root, after `make`:
//   f=tests/fuzz/repro/tiny_realloc_overlap.c
//   cc -Iinclude $f build/libgomem.a -lpthread -ldl -o /tmp/r
//   /tmp/r
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "gomem.h"

int main(void) {
  char *a = gm_alloc_noscan(4); // a tiny block's offset 0
  char *b = gm_alloc_noscan(4); // offset 4: a's neighbour
  memset(b, 'b', 4);
  char *r = gm_realloc(a, 12);
  printf("a=%p b=%p gm_realloc(a, 12)=%p\n", (void *)a, (void *)b, (void *)r);
  memset(r, 'r', 12); // the 12 bytes it asked for
  int ok = memcmp(b, "bbbb", 4) == 0;
  printf("%s\n", ok ? "ok: b intact" : "BUG: gm_realloc(a, 12) overlaps b, which it overwrote");
  return ok ? 0 : 1;
}
