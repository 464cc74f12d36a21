// tlslib.c: a shared library that the collector's tests load with dlopen.
// Its thread-local slots live in dynamic TLS: blocks the dynamic linker
// allocates per thread at the first access, found only through each
// thread's DTV. A GC pointer kept in them must be a root.
#include <stddef.h>

#define TLSLIB_SLOTS 4

static __thread void *volatile slots[TLSLIB_SLOTS];
static __thread char pad[3000] = {1}; // a block bigger than one small object

__attribute__((visibility("default"))) void tlslib_set(int i, void *p) {
  slots[i % TLSLIB_SLOTS] = p;
  pad[0]++;
}

__attribute__((visibility("default"))) void *tlslib_get(int i) {
  return slots[i % TLSLIB_SLOTS];
}
