// gmcore.h: what every layer of gomem shares: compiler helpers, relaxed
// atomics, the debug level, assertions and fatal errors. Nothing here
// belongs to a component.
//
// Locking: none.
#ifndef GOMEM_GMCORE_H
#define GOMEM_GMCORE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

// ---------------------------------------------------------------------------
// Compiler helpers

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define GM_NOINLINE __attribute__((noinline))
#define GM_INLINE static inline __attribute__((always_inline))
#define GM_COLD __attribute__((cold, noinline))
#define GM_EXPORT __attribute__((visibility("default")))
// GM_ENTRY: the allocation entry points a heap profile sample's stack starts
// below (mprof.c skips frames in this section: inlining and tail calls make
// a fixed count of frames wrong).
#define GM_ENTRY __attribute__((section("gomem_entry")))
// GM_NOSCAN: a variable holding heap addresses that must not act as roots
// (see mgcmark.c). Such variables must be initialised to zero.
#define GM_NOSCAN __attribute__((section("gm_noscan")))
// GM_ALIAS(name, target): export `name` as another name of `target`, defined
// in the same file (the malloc family symbols of the drop-in build).
//
// GM_SECURE (the hardened build, libgomem-secure.so): the allocator's own
// malloc family is renamed core_* here, before gomem.h is read, and
// secure.c defines gm_malloc & co. and the drop-in names on top of it.
#ifndef GM_SECURE
#define GM_SECURE 0
#endif
#if GM_SECURE
#define gm_malloc core_malloc
#define gm_calloc core_calloc
#define gm_realloc core_realloc
#define gm_reallocarray core_reallocarray
#define gm_free core_free
#define gm_memalign core_memalign
#define gm_posix_memalign core_posix_memalign
#define gm_aligned_alloc core_aligned_alloc
#define gm_usable_size core_usable_size
#define gm_owns core_owns
#endif
#if GM_OVERRIDE && !GM_SECURE
#define GM_ALIAS(name, target)                                                                     \
  __typeof__(target) name __attribute__((alias(#target), visibility("default"), used));
#else
#define GM_ALIAS(name, target)
#endif

// heap_memset, heap_memcpy: gomem's own writes into heap objects. The
// hardened build exports a guarded memset and memcpy (secure_api.c); these
// reach glibc's directly, through entry points the compiler does not fold
// back into memset and memcpy.
#if GM_SECURE && GM_OVERRIDE
void *gm_libc_memset(void *dst, int c, size_t n, size_t dstlen) __asm__("__memset_chk");
void *gm_libc_memcpy(void *dst, const void *src, size_t n, size_t dstlen) __asm__("__memcpy_chk");
#define heap_memset(d, c, n) gm_libc_memset((d), (c), (n), (size_t)-1)
#define heap_memcpy(d, s, n) gm_libc_memcpy((d), (s), (n), (size_t)-1)
#else
#define heap_memset memset
#define heap_memcpy memcpy
#endif

#define relaxed_load(p) atomic_load_explicit((p), memory_order_relaxed)
#define relaxed_store(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)
// relaxed_inc: an increment by the only writer, readable by other threads.
// A plain load + add + store: no read-modify-write instruction.
#define relaxed_add(p, v) relaxed_store((p), relaxed_load(p) + (v))
// owner_inc: relaxed_add(p, 1) for a 64-bit counter on a fast path. On
// x86-64 one unlocked add to memory, whose aligned 8-byte store other threads
// see whole (the old value or the new), as the relaxed pair would give; two
// instructions fewer. Elsewhere, and under TSan (which must see the access),
// relaxed_add. (volatile: the count is read only by other threads, so the
// compiler must not drop the add as unused.)
#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__)
#define owner_inc(p) __asm__ volatile("addq $1, %0" : "+m"(*(uint64_t *)(p)))
#else
#define owner_inc(p) relaxed_add((p), 1)
#endif

// GM_DEBUG: 0 = release, 1 = cheap asserts, 2 = + invariant validators on
// every span/mcentral/page-allocator operation (set by the debug build).
#ifndef GM_DEBUG
#define GM_DEBUG 0
#endif

#define gm_assert(cond)                                                                            \
  do {                                                                                             \
    if (GM_DEBUG > 0 && unlikely(!(cond)))                                                         \
      gm_fatal_assert(#cond, __FILE__, __LINE__);                                                  \
  } while (0)

// gm_fatal reports a fault as "gomem: <what> at <addr>" (addr may be NULL)
// and aborts, without allocating (mstats.c).
void gm_fatal(const char *what, const void *addr) __attribute__((noreturn, cold));
void gm_fatal_assert(const char *cond, const char *file, int line) __attribute__((noreturn, cold));

// gm_fmt formats into buf (at most n bytes, NUL included) without
// allocating; returns the length written (mstats.c).
size_t gm_fmt(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif // GOMEM_GMCORE_H
