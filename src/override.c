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
#include <dlfcn.h>
#include <sched.h>
#include <stdarg.h>
#include <unistd.h>

#include "mallocint.h"
#include "os.h"

#if GM_OVERRIDE

#define OS_PAGE 4096 // valloc/pvalloc promise the OS page, which is 4 KiB here

#if GM_SECURE // the hardened memalign (secure.c), not the allocator's own
#undef gm_memalign
void *gm_memalign(size_t align, size_t size);
#endif

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

// clone: a thread that will share its parent's TLS (CLONE_VM without
// CLONE_SETTLS or CLONE_VFORK) must not share its cache (mcache.c). The
// optional arguments are read whatever the flags: the C library's clone
// passes them on in registers the same way.
typedef int (*clone_fn)(int (*)(void *), void *, int, void *, ...);

GM_EXPORT int clone(int (*fn)(void *), void *stack, int flags, void *arg, ...) {
  static _Atomic(clone_fn) real;
  clone_fn f = atomic_load_explicit(&real, memory_order_acquire);
  if (f == NULL) {
    f = __extension__(clone_fn) os_next_symbol("clone");
    if (f == NULL) {
      errno = ENOSYS;
      return -1;
    }
    atomic_store_explicit(&real, f, memory_order_release);
  }
  va_list ap;
  va_start(ap, arg);
  pid_t *ptid = va_arg(ap, pid_t *);
  void *tls = va_arg(ap, void *);
  pid_t *ctid = va_arg(ap, pid_t *);
  va_end(ap);
  if ((flags & CLONE_VM) && !(flags & (CLONE_SETTLS | CLONE_VFORK)))
    mcache_share_tls();
  return f(fn, stack, flags, arg, ptid, tls, ctid);
}

#endif
