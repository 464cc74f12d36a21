// secure.h: the hardened build's shared parts (secure.c: slots, quarantine,
// small objects; secure_large.c: large objects; secure_api.c: the malloc
// family and C++'s operators on top). Design at the top of secure.c. Only GM_SECURE builds
// compile these files.
//
// Locking: lq_lock (secure_large.c, a leaf: the large objects' quarantine).
#ifndef GOMEM_SECURE_H
#define GOMEM_SECURE_H

#include "mallocint.h"

#undef gm_malloc
#undef gm_calloc
#undef gm_realloc
#undef gm_reallocarray
#undef gm_free
#undef gm_memalign
#undef gm_posix_memalign
#undef gm_aligned_alloc
#undef gm_usable_size
#undef gm_owns

#define SEC_SMALL_MAX (GM_MAX_SMALL_SIZE - 8) // largest small request
#define SEC_QBYTES (256u << 10)               // quarantine bytes per thread
#define SEC_NEAR 32                           // bytes checked on either side at free
#define SEC_SCAN 64                           // canary bytes on either side of a large object
#define ZERO_REGION ((size_t)1 << 30)         // malloc(0)'s inaccessible region
#define LQ_MAX 64                             // large spans in quarantine
#define LQ_BYTES ((size_t)64 << 20)

enum { K_MALLOC, K_NEW, K_NEW_ARRAY };
enum { ST_FREE = 1, ST_BUSY = 2, ST_ALLOC = 3 };

// Set once by sec_init_slow.
extern uint64_t sec_key, canary_word; // secret
extern uintptr_t zero_lo;             // malloc(0)'s region
extern size_t os_page;
extern _Atomic int sec_ready; // 0, 1 (in progress), 2
void sec_init_slow(void);

GM_INLINE void sec_init(void) {
  if (unlikely(atomic_load_explicit(&sec_ready, memory_order_acquire) != 2))
    sec_init_slow();
}

GM_INLINE uint64_t enc(uintptr_t at, uint64_t v) {
  return v ^ sec_key ^ (at * 0x9e3779b97f4a7c15ull);
}
GM_INLINE uint64_t trailer(size_t n, int kind, int state) {
  return (uint64_t)n << 10 | (uint64_t)kind << 2 | (uint64_t)state;
}
#define T_STATE(v) ((int)((v)&3))
#define T_KIND(v) ((int)((v) >> 2 & 3))
#define T_ALIGN(v) ((unsigned)((v) >> 4 & 63)) // large objects: log2 of the alignment
#define T_SIZE(v) ((size_t)((v) >> 10))

GM_INLINE uint8_t canary_at(uintptr_t a) {
  return (uint8_t)(canary_word >> ((a & 7) * 8));
}

GM_INLINE bool in_zero_region(uintptr_t p) {
  return p - zero_lo < ZERO_REGION;
}

void canary_fill(uintptr_t lo, uintptr_t hi);
bool canary_ok(uintptr_t lo, uintptr_t hi);
bool zero_ok(uintptr_t lo, uintptr_t hi);
mcache_t *sec_cache(void);      // the thread's cache for the quarantine, or NULL
void check_recent(mcache_t *c); // the checks made at every allocation
int small_class(size_t n, size_t align);
void *small_alloc(size_t n, size_t align, int kind);
uint64_t small_check(mspan_t *s, uintptr_t p, int kind); // the trailer of a live object
void small_free(mspan_t *s, uintptr_t p, int kind);
bool small_resize(mspan_t *s, uintptr_t p, size_t old, size_t n);
// room: bytes left for growth; zero_from: where the zeroed part starts
void *large_alloc(size_t n, size_t align, int kind, size_t room, size_t zero_from);
bool large_resize(mspan_t *s, uintptr_t p, size_t old, size_t n);
uint64_t large_check(mspan_t *s, uintptr_t p, int kind); // the header of a live object
void large_free(mspan_t *s, uintptr_t p, int kind);
void large_init(void);              // at sec_init_slow
void large_flush(void);             // every quarantined span back to the core
void sec_free(void *ptr, int kind); // secure_api.c
const char *sec_dest_fault(uintptr_t d, size_t n);

#endif // GOMEM_SECURE_H
