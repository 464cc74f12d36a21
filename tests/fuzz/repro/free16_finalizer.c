// free16_finalizer: gm_free of a 16-byte pointer-free GC object is ignored
// (its span class is the tiny allocator's: gc_free returns before
// fin_forget), so (1) its finalizer stays and runs once the object is
// unreachable, after the program freed it, and (2) a second gm_free is not
// reported. gomem.h: gm_free releases a GC object at once (only objects
// under 16 bytes share blocks and have their free ignored), and "a second
// gm_free of the same object is reported".
// From the repository root, after `make`:
//   f=tests/fuzz/repro/free16_finalizer.c
//   cc -Iinclude $f build/libgomem.a -lpthread -ldl -o /tmp/r
//   /tmp/r
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include "gomem.h"

static _Atomic int ran;

static void fin(void *obj, void *arg) {
  (void)obj;
  (void)arg;
  atomic_store(&ran, 1);
}

__attribute__((noinline)) static void make_and_free(void) {
  void *p = gm_alloc_noscan(16);
  gm_set_finalizer(p, fin, NULL);
  gm_free(p);
  gm_free(p); // a double free: not reported either
}

int main(void) {
  make_and_free();
  for (int i = 0; i < 50 && !atomic_load(&ran); i++) {
    gm_collect();
    usleep(10000);
  }
  printf("%s\n", atomic_load(&ran) ? "BUG: the finalizer of a freed object ran"
                                   : "ok: the finalizer did not run");
  return atomic_load(&ran);
}
