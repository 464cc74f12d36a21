// secure_api.c: the hardened build's malloc family, malloc(0)'s region and
// C++'s operators new and delete (design: secure.c).
#include <errno.h>
#include <string.h>

#include "arena.h"
#include "mprof.h"
#include "os.h"
#include "secure.h"

#if GM_SECURE

static _Atomic uint64_t zero_next;

// ---------------------------------------------------------------------------
// The entry points

// zero_alloc: a new pointer into the zero-size region, aligned to align (a
// power of two up to 4 KiB).
static void *zero_alloc(size_t align) {
  size_t step = align < 16 ? 16 : align;
  uint64_t i = atomic_fetch_add_explicit(&zero_next, 1, memory_order_relaxed);
  return (void *)(zero_lo + (uintptr_t)(i % (ZERO_REGION / step)) * step);
}

// sec_prof_alloc: a heap profile sample (mprof.c): a large object of its own,
// whose span's sampled flag has large_free report it.
static GM_ENTRY GM_NOINLINE void *sec_prof_alloc(mcache_t *c, size_t n, size_t align, int kind) {
  c->sample_left = prof_next_sample();
  void *p = large_alloc(n, align, kind, 0, 0);
  if (p != NULL) {
    spanof((uintptr_t)p)->sampled = 1;
    prof_record_alloc((uintptr_t)p, n);
  }
  return p;
}

static GM_ENTRY void *sec_alloc(size_t n, size_t align, int kind) {
  sec_init();
  mcache_t *c = gm_tls_mcache;
  if (c != &mcache_empty && c != &mcache_shared) {
    check_recent(c);
    prof_check_rate(c);
    if (unlikely((c->sample_left -= (int64_t)(n < INT64_MAX ? n : INT64_MAX)) < 0) && n != 0)
      return sec_prof_alloc(c, n, align, kind);
  }
  if (n == 0 && align <= 4096)
    return zero_alloc(align);
  size_t a = n < 16 && align <= 8 ? 8 : (align < 16 ? 16 : align);
  if (align <= 4096 && n <= SEC_SMALL_MAX && small_class(n, a) >= 0)
    return small_alloc(n, a, kind);
  return large_alloc(n, align, kind, 0, 0); // flush against its trailing guard
}

void sec_free(void *ptr, int kind) {
  uintptr_t p = (uintptr_t)ptr;
  if (p == 0)
    return;
  sec_init();
  if (in_zero_region(p)) {
    if (p % 16 != 0)
      gm_fatal("free of a pointer inside a zero-size allocation", ptr);
    return;
  }
  mspan_t *s = spanof(p);
  if (s == NULL || s->kind != SPAN_MANUAL) { // not ours, or a GC object
    core_free(ptr);
    return;
  }
  if (s->sizeclass != 0)
    small_free(s, p, kind);
  else
    large_free(s, p, kind);
}

// sec_size: the requested size of allocated object p.
static size_t sec_size(void *ptr, int kind) {
  uintptr_t p = (uintptr_t)ptr;
  mspan_t *s = spanof(p);
  if (s->sizeclass != 0)
    return T_SIZE(small_check(s, p, kind));
  return T_SIZE(large_check(s, p, kind));
}

GM_EXPORT GM_ENTRY void *gm_malloc(size_t n) {
  return sec_alloc(n, 8, K_MALLOC);
}

GM_EXPORT void gm_free(void *p) {
  sec_free(p, K_MALLOC);
}

GM_EXPORT GM_ENTRY void *gm_calloc(size_t count, size_t size) {
  size_t n;
  if (__builtin_mul_overflow(count, size, &n)) {
    errno = ENOMEM;
    return NULL;
  }
  return sec_alloc(n, 8, K_MALLOC); // always zeroed
}

GM_EXPORT size_t gm_usable_size(const void *ptr) {
  uintptr_t p = (uintptr_t)ptr;
  if (p == 0)
    return 0;
  sec_init();
  if (in_zero_region(p))
    return 0;
  mspan_t *s = spanof(p);
  if (s == NULL || s->kind != SPAN_MANUAL)
    return core_usable_size(ptr);
  return sec_size((void *)p, K_MALLOC);
}

GM_EXPORT int gm_owns(const void *ptr) {
  sec_init();
  return in_zero_region((uintptr_t)ptr) || core_owns(ptr);
}

GM_EXPORT GM_ENTRY void *gm_realloc(void *ptr, size_t n) {
  uintptr_t p = (uintptr_t)ptr, ra = (uintptr_t)__builtin_return_address(0);
  if (p == 0)
    return gm_malloc(n);
  sec_init();
  if (in_zero_region(p))
    return gm_malloc(n);
  mspan_t *s = spanof(p);
  if (s == NULL || s->kind != SPAN_MANUAL)
    return core_realloc(ptr, n); // reports a foreign pointer; GC objects
  size_t old = sec_size(ptr, K_MALLOC);
  if (n == 0) { // glibc: realloc(p, 0) frees p
    gm_free(ptr);
    return NULL;
  }
  if (s->sizeclass != 0 ? small_resize(s, p, old, n) : large_resize(s, p, old, n))
    return ptr;
  // A large object that must grow gets half as much again as room (left
  // between it and its trailing guard, untouched): one grown step by step is
  // not copied at every step. (Half, not the default build's quarter: freed
  // spans wait in quarantine, so growing in place into the pages after a
  // span succeeds less often here.)
  void *q = NULL;
  if (n > old && n > SEC_SMALL_MAX && n < PTRDIFF_MAX / 4) {
    sec_init();
    q = large_alloc(n, 16, K_MALLOC, n / 2, old);
  }
  if (q == NULL && (q = gm_malloc(n)) == NULL)
    return NULL;
  heap_memcpy(q, ptr, n < old ? n : old);
  mcache_t *c = sec_cache();
  if (c != NULL && malloc_called_from_ldso(ra)) { // ld.so installs the new DTV later
    uintptr_t prev = c->sec_ldso_pending;
    c->sec_ldso_pending = p;
    if (prev != 0)
      gm_free((void *)prev);
    return q;
  }
  gm_free(ptr);
  return q;
}

GM_EXPORT GM_ENTRY void *gm_reallocarray(void *p, size_t count, size_t size) {
  return reallocarray_via(gm_realloc, p, count, size);
}

GM_EXPORT GM_ENTRY void *gm_memalign(size_t align, size_t n) {
  if (!align_round(&align))
    return NULL;
  return sec_alloc(n, align < 8 ? 8 : align, K_MALLOC);
}

GM_EXPORT GM_ENTRY int gm_posix_memalign(void **out, size_t align, size_t n) {
  return posix_memalign_via(gm_memalign, out, align, n);
}

GM_EXPORT GM_ENTRY void *gm_aligned_alloc(size_t align, size_t n) {
  return aligned_alloc_via(gm_memalign, align, n);
}

// The drop-in names and C++'s operators: not under a sanitizer or valgrind,
// which own malloc (GM_OVERRIDE = 0; tests then call gm_*).
#if GM_OVERRIDE
#define SEC_ALIAS(name, target)                                                                    \
  __typeof__(target) name __attribute__((alias(#target), visibility("default"), used));
SEC_ALIAS(malloc, gm_malloc)
SEC_ALIAS(free, gm_free)
SEC_ALIAS(cfree, gm_free)
SEC_ALIAS(calloc, gm_calloc)
SEC_ALIAS(realloc, gm_realloc)
SEC_ALIAS(reallocarray, gm_reallocarray)
SEC_ALIAS(memalign, gm_memalign)
SEC_ALIAS(aligned_alloc, gm_aligned_alloc)
SEC_ALIAS(posix_memalign, gm_posix_memalign)
SEC_ALIAS(malloc_usable_size, gm_usable_size)
SEC_ALIAS(__libc_malloc, gm_malloc)
SEC_ALIAS(__libc_free, gm_free)
SEC_ALIAS(__libc_calloc, gm_calloc)
SEC_ALIAS(__libc_realloc, gm_realloc)
SEC_ALIAS(__libc_memalign, gm_memalign)

// ---------------------------------------------------------------------------
// Guarded memcpy, memmove and memset (GOMEM_GUARD_MEMOPS=1): a destination
// inside gomem's heap must lie within one live object's requested bytes.
// Off, each costs a load and a branch before glibc's own, reached through
// its __*_chk entry points (no interposable symbol: no recursion; see
// heap_memset in gmcore.h). gomem's own writes into the heap do not come here.
void *libc_memmove(void *dst, const void *src, size_t n, size_t dstlen) __asm__("__memmove_chk");

static void guard_dest(const char *op, void *dst, size_t n) {
  uintptr_t d = (uintptr_t)dst;
  const char *bad = in_zero_region(d) ? "write into a zero-size allocation" : sec_dest_fault(d, n);
  if (bad != NULL) {
    char msg[96];
    size_t k = strlen(op);
    gm_libc_memcpy(msg, op, k, sizeof msg);
    gm_libc_memcpy(msg + k, ": ", 2, sizeof msg - k);
    size_t m = strlen(bad);
    gm_libc_memcpy(msg + k + 2, bad, m + 1, sizeof msg - k - 2);
    gm_fatal(msg, dst);
  }
}

GM_EXPORT void *memcpy(void *restrict dst, const void *restrict src, size_t n) {
  if (unlikely(gm_opt.guard_memops) && n != 0)
    guard_dest("memcpy", dst, n);
  return gm_libc_memcpy(dst, src, n, (size_t)-1);
}
GM_EXPORT void *memmove(void *dst, const void *src, size_t n) {
  if (unlikely(gm_opt.guard_memops) && n != 0)
    guard_dest("memmove", dst, n);
  return libc_memmove(dst, src, n, (size_t)-1);
}
GM_EXPORT void *memset(void *dst, int c, size_t n) {
  if (unlikely(gm_opt.guard_memops) && n != 0)
    guard_dest("memset", dst, n);
  return gm_libc_memset(dst, c, n, (size_t)-1);
}

// ---------------------------------------------------------------------------
// C++: operator new and delete with their kinds. A throwing new that finds
// no memory hands over to the C++ library's own operator new
// (cxx_new_failed, malloc.c), which calls malloc (gomem's) and throws
// std::bad_alloc or calls the new handler.

static void sized_delete(void *p, size_t n, int kind) {
  sec_init();
  if (p == NULL || in_zero_region((uintptr_t)p))
    return;
  mspan_t *s = spanof((uintptr_t)p);
  if (s != NULL && s->kind == SPAN_MANUAL && sec_size(p, kind) != n)
    gm_fatal("sized delete with a size other than the allocated one", p);
  sec_free(p, kind);
}

#define NEW_FN(mangled, kind, aligned, nothrow)                                                    \
  GM_EXPORT GM_ENTRY void *mangled(size_t n, size_t align) {                                       \
    size_t a = aligned ? align : 16;                                                               \
    void *p = sec_alloc(n, a < 8 ? 8 : a, kind);                                                   \
    if (p == NULL && !(nothrow))                                                                   \
      return cxx_new_failed(#mangled, n, a, aligned);                                              \
    return p;                                                                                      \
  }
// (the unused second argument of the unaligned forms is the nothrow tag,
// or nothing: harmless in the x86-64 and AArch64 calling conventions)
NEW_FN(_Znwm, K_NEW, false, false)
NEW_FN(_Znam, K_NEW_ARRAY, false, false)
NEW_FN(_ZnwmRKSt9nothrow_t, K_NEW, false, true)
NEW_FN(_ZnamRKSt9nothrow_t, K_NEW_ARRAY, false, true)
NEW_FN(_ZnwmSt11align_val_t, K_NEW, true, false)
NEW_FN(_ZnamSt11align_val_t, K_NEW_ARRAY, true, false)
NEW_FN(_ZnwmSt11align_val_tRKSt9nothrow_t, K_NEW, true, true)
NEW_FN(_ZnamSt11align_val_tRKSt9nothrow_t, K_NEW_ARRAY, true, true)

GM_EXPORT void _ZdlPv(void *p) {
  sec_free(p, K_NEW);
}
GM_EXPORT void _ZdaPv(void *p) {
  sec_free(p, K_NEW_ARRAY);
}
GM_EXPORT void _ZdlPvm(void *p, size_t n) {
  sized_delete(p, n, K_NEW);
}
GM_EXPORT void _ZdaPvm(void *p, size_t n) {
  sized_delete(p, n, K_NEW_ARRAY);
}
SEC_ALIAS(_ZdlPvRKSt9nothrow_t, _ZdlPv)
SEC_ALIAS(_ZdaPvRKSt9nothrow_t, _ZdaPv)
SEC_ALIAS(_ZdlPvSt11align_val_t, _ZdlPv)
SEC_ALIAS(_ZdaPvSt11align_val_t, _ZdaPv)
SEC_ALIAS(_ZdlPvSt11align_val_tRKSt9nothrow_t, _ZdlPv)
SEC_ALIAS(_ZdaPvSt11align_val_tRKSt9nothrow_t, _ZdaPv)
GM_EXPORT void _ZdlPvmSt11align_val_t(void *p, size_t n, size_t align) {
  (void)align;
  sized_delete(p, n, K_NEW);
}
GM_EXPORT void _ZdaPvmSt11align_val_t(void *p, size_t n, size_t align) {
  (void)align;
  sized_delete(p, n, K_NEW_ARRAY);
}

#endif // GM_OVERRIDE
#endif // GM_SECURE
