// override.c: the rest of the C library's allocator interface, for the
// drop-in build (GM_OVERRIDE=1: libgomem.so, libgomem.a). malloc, free,
// calloc, realloc and the aligned variants are aliases defined beside their
// gm_* twins (malloc.c, free.c); here are the ones that need a line of code.
//
// Interposition works because the dynamic linker resolves malloc & co. to the
// first object defining them: the executable (static link), then LD_PRELOAD
// libraries, then libraries in link order, before libc. glibc's own internal
// allocations (strdup, fopen, ...) call malloc through the PLT and so reach
// gomem too; __libc_* names cover code that asks for glibc's entry points.
#include <unistd.h>

#include "internal.h"

#if GM_OVERRIDE

#define OS_PAGE 4096 // valloc/pvalloc promise the OS page, which is 4 KiB here

GM_EXPORT void *valloc(size_t size) {
  return gm_memalign(OS_PAGE, size);
}

GM_EXPORT void *pvalloc(size_t size) {
  size_t rounded = (size + OS_PAGE - 1) & ~(size_t)(OS_PAGE - 1);
  if (rounded < size) {
    errno = ENOMEM;
    return NULL;
  }
  return gm_memalign(OS_PAGE, rounded ? rounded : OS_PAGE);
}

GM_EXPORT void *__libc_valloc(size_t size) {
  return valloc(size);
}

GM_EXPORT void *__libc_pvalloc(size_t size) {
  return pvalloc(size);
}

// malloc_trim returns free memory to the OS: every thread's cache is flushed
// (the others at their next refill) and all free pages are released. Returns
// 1 if memory was released, as glibc does.
GM_EXPORT int malloc_trim(size_t pad) {
  (void)pad;
  return gm_release_memory() > 0;
}

#endif
