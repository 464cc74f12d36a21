// gclib.c: a shared library for test_gc_roots. It keeps GC pointers in its
// own writable segments (one slot in .data, one in .bss), which the
// collector must scan as roots like the program's. The slots are static and
// reached through functions, so that no copy relocation moves them into the
// program's own .bss.
#include <stddef.h>

static void *volatile data_slot = (void *)1; // initialised: .data
static void *volatile bss_slot;              // zero: .bss

__attribute__((visibility("default"))) void gclib_set(int which, void *p) {
  if (which == 0)
    data_slot = p;
  else
    bss_slot = p;
}

__attribute__((visibility("default"))) void *gclib_get(int which) {
  return which == 0 ? data_slot : bss_slot;
}

// gclib_slot_addr lets the test check that the slot lies in the library's
// mapping, not in the program's.
__attribute__((visibility("default"))) void *gclib_slot_addr(int which) {
  return which == 0 ? (void *)&data_slot : (void *)&bss_slot;
}
