// bdw_alloc.c: Boehm GC's allocation functions and object queries on
// gomem's collector (see bdw.h).
//
// Sizes: a request of n bytes becomes n + 1 (while GC_all_interior_pointers,
// Boehm's extra byte, so that a pointer just past the object still points
// into it) rounded up to Boehm's 16-byte granule, at least 16, which keeps
// small objects out of gomem's tiny blocks and makes GC_size agree with
// Boehm's for every object of up to 256 bytes. Larger objects get gomem's
// size classes and pages; GC_size reports what the object really holds.
//
// Uncollectable objects (kinds 2 and 3) are GC objects whose addresses sit
// in `uncoll`, an off-heap open-addressing set that is a root range of every
// collection (bdw.c's roots hook): an entry keeps its object, and what a
// scanned one points to, alive; GC_free takes it out. Empty slots hold 0 and
// deleted ones 1, which point nowhere.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "bdw.h"
#include "gomem.h"
#include "lock.h"
#include "mfinal.h"
#include "mgc.h"
#include "mspan.h"
#include "os.h"

static gm_mutex_t bdw_lock = GM_MUTEX_INIT(RANK_BDW);
__attribute__((constructor)) static void bdw_alloc_load(void) {
  lock_fork_register(&bdw_lock); // (a fork child must not find it held)
}
static uintptr_t *uncoll;           // the set (bdw_lock); a root range
static size_t uncoll_cap, uncoll_n; // slots; entries, deleted ones included (bdw_lock)
static size_t uncoll_live;          // entries (bdw_lock)

#define UNCOLL_DELETED ((uintptr_t)1)

static size_t uncoll_hash(uintptr_t p) {
  return (size_t)((p >> 4) * 0x9e3779b97f4a7c15ull >> 20) & (uncoll_cap - 1);
}

static void uncoll_insert_raw(uintptr_t *t, size_t cap, uintptr_t p) {
  size_t i = (size_t)((p >> 4) * 0x9e3779b97f4a7c15ull >> 20) & (cap - 1);
  while (t[i] > UNCOLL_DELETED)
    i = (i + 1) & (cap - 1);
  t[i] = p;
}

// uncoll_grow: a larger set (bdw_lock). The new set is filled before it
// replaces the old, so a collection (world stopped) sees one or the other.
static bool uncoll_grow(void) {
  size_t cap = uncoll_cap ? uncoll_cap * 2 : 1024;
  if (uncoll_live * 4 < uncoll_cap)
    cap = uncoll_cap; // mostly deleted slots: rehash at the same size
  uintptr_t *t = os_reserve(cap * sizeof *t, 0);
  if (t == NULL)
    return false;
  for (size_t i = 0; i < uncoll_cap; i++)
    if (uncoll[i] > UNCOLL_DELETED)
      uncoll_insert_raw(t, cap, uncoll[i]);
  uintptr_t *old = uncoll;
  size_t old_cap = uncoll_cap;
  uncoll = t;
  uncoll_cap = cap;
  uncoll_n = uncoll_live;
  if (old != NULL)
    os_unmap(old, old_cap * sizeof *old);
  return true;
}

static bool uncoll_add(uintptr_t p) {
  gm_lock(&bdw_lock);
  bool ok = (uncoll_n + 1) * 2 <= uncoll_cap || uncoll_grow();
  if (ok) {
    uncoll_insert_raw(uncoll, uncoll_cap, p);
    uncoll_n++;
    uncoll_live++;
  }
  gm_unlock(&bdw_lock);
  return ok;
}

// uncoll_find: the slot holding p, or NULL (bdw_lock).
static uintptr_t *uncoll_find(uintptr_t p) {
  if (uncoll_cap == 0)
    return NULL;
  for (size_t i = uncoll_hash(p);; i = (i + 1) & (uncoll_cap - 1)) {
    if (uncoll[i] == p)
      return &uncoll[i];
    if (uncoll[i] == 0)
      return NULL;
  }
}

static bool uncoll_remove(uintptr_t p) {
  gm_lock(&bdw_lock);
  uintptr_t *e = uncoll_find(p);
  if (e != NULL) {
    *e = UNCOLL_DELETED;
    uncoll_live--;
  }
  gm_unlock(&bdw_lock);
  return e != NULL;
}

static bool uncoll_has(uintptr_t p) {
  if (relaxed_load(&uncoll_live) == 0)
    return false;
  gm_lock(&bdw_lock);
  bool has = uncoll_find(p) != NULL;
  gm_unlock(&bdw_lock);
  return has;
}

// bdw_uncoll_roots: the set as a root range (world stopped).
void bdw_uncoll_roots(void (*fn)(void *ctx, uintptr_t lo, uintptr_t hi), void *ctx) {
  if (uncoll_cap != 0)
    fn(ctx, (uintptr_t)uncoll, (uintptr_t)(uncoll + uncoll_cap));
}

// ---------------------------------------------------------------------------
// Allocation

static _Thread_local uint64_t local_bytes; // allocated, not yet in total_bytes
static _Atomic uint64_t total_bytes;

uint64_t bdw_total_bytes(void) {
  return relaxed_load(&total_bytes) + local_bytes;
}

// bdw_size: the bytes allocated for a request of n (0 on overflow).
static size_t bdw_size(size_t n) {
  size_t extra = relaxed_load(&GC_all_interior_pointers) ? 1 : 0;
  if (n > SIZE_MAX - 32)
    return 0;
  size_t r = (n + extra + 15) & ~(size_t)15;
  return r < 16 ? 16 : r;
}

void *bdw_alloc(size_t n, int kind) {
  bdw_init();
  size_t size = bdw_size(n);
  bool scan = kind == BDW_NORMAL || kind == BDW_UNCOLLECTABLE;
  void *p = size == 0 ? NULL : scan ? gm_alloc(size) : gm_alloc_noscan(size);
  if (p == NULL)
    return bdw_oom(n);
  if (kind >= BDW_UNCOLLECTABLE && !uncoll_add((uintptr_t)p))
    return bdw_oom(n);
  if ((local_bytes += size) >= (64u << 10)) {
    relaxed_add(&total_bytes, local_bytes);
    local_bytes = 0;
  }
  bdw_after_alloc();
  return p;
}

BDW_API void *GC_malloc(size_t n) {
  return bdw_alloc(n, BDW_NORMAL);
}
BDW_API void *GC_malloc_atomic(size_t n) {
  return bdw_alloc(n, BDW_PTRFREE);
}
BDW_API void *GC_malloc_uncollectable(size_t n) {
  return bdw_alloc(n, BDW_UNCOLLECTABLE);
}
BDW_API void *GC_malloc_atomic_uncollectable(size_t n) {
  return bdw_alloc(n, BDW_AUNCOLLECTABLE);
}
// (ignore_off_page: the client promises a pointer near the start is kept;
// gomem honours interior pointers anyway)
BDW_API void *GC_malloc_ignore_off_page(size_t n) {
  return bdw_alloc(n, BDW_NORMAL);
}
BDW_API void *GC_malloc_atomic_ignore_off_page(size_t n) {
  return bdw_alloc(n, BDW_PTRFREE);
}

// GC_generic_malloc: kinds 0-3 here, GC_new_kind's in bdw_kinds.c.
BDW_API void *GC_generic_malloc(size_t n, int kind) {
  if (kind < BDW_PTRFREE || kind > BDW_AUNCOLLECTABLE)
    return bdw_kind_alloc(n, kind);
  return bdw_alloc(n, kind);
}

// GC_generic_malloc_many: objects of a kind linked through their first
// word (GC_NEXT), as many as make about 4 KiB.
BDW_API void GC_generic_malloc_many(size_t n, int kind, void **result) {
  size_t size = bdw_size(n), count = size >= 2048 ? 1 : 4096 / size;
  void *head = NULL;
  for (size_t i = 0; i < count; i++) {
    void **p = GC_generic_malloc(n, kind);
    if (p == NULL)
      break;
    *p = head;
    head = p;
  }
  *result = head;
}

BDW_API void *GC_malloc_many(size_t n) {
  void *list;
  GC_generic_malloc_many(n, BDW_NORMAL, &list);
  return list;
}

// bdw_base: the start of the GC object holding p and its size, or 0.
static uintptr_t bdw_base(uintptr_t p, size_t *size) {
  mspan_t *s = spanof(p);
  if (s == NULL || s->kind == SPAN_MANUAL)
    return 0;
  if (s->sizeclass == 0) {
    *size = s->npages * GM_PAGE_SIZE;
    return s->base;
  }
  uint32_t idx = (uint32_t)(((uint64_t)(p - s->base) * s->divmul) >> 32);
  if (idx >= s->nelems)
    return 0;
  *size = s->elemsize;
  return s->base + (uintptr_t)idx * s->elemsize;
}

BDW_API void *GC_base(void *p) {
  size_t size;
  return (void *)bdw_base((uintptr_t)p, &size);
}

BDW_API int GC_is_heap_ptr(const void *p) {
  size_t size;
  return bdw_base((uintptr_t)p, &size) != 0;
}

BDW_API size_t GC_size(const void *p) {
  size_t size;
  return bdw_base((uintptr_t)p, &size) != 0 ? size : 0;
}

static int kind_of(uintptr_t base) {
  int k = bdw_kind_of(base);
  if (k >= 0)
    return k;
  bool scan = spanof(base)->kind == SPAN_GC_SCAN;
  if (uncoll_has(base))
    return scan ? BDW_UNCOLLECTABLE : BDW_AUNCOLLECTABLE;
  return scan ? BDW_NORMAL : BDW_PTRFREE;
}

BDW_API int GC_get_kind_and_size(const void *p, size_t *psize) {
  size_t size = 0;
  uintptr_t b = bdw_base((uintptr_t)p, &size);
  if (psize != NULL)
    *psize = size;
  return kind_of(b);
}

// GC_free: an uncollectable object leaves the registry; the object itself
// goes back at once unless marking runs beside the program (gm_free).
BDW_API void GC_free(void *p) {
  size_t size;
  uintptr_t b = bdw_base((uintptr_t)p, &size);
  if (p == NULL || b == 0)
    return;
  uncoll_remove(b);
  bdw_kind_forget(b);
  fin_weak_forget_within(b, b + size); // (else a dead target's clearing writes into its next tenant)
  gm_free((void *)b);
}

// GC_realloc keeps the object's kind; n == 0 frees it.
BDW_API void *GC_realloc(void *p, size_t n) {
  if (p == NULL)
    return GC_malloc(n);
  if (n == 0) {
    GC_free(p);
    return NULL;
  }
  size_t old;
  uintptr_t b = bdw_base((uintptr_t)p, &old);
  if (b == 0) {
    bdw_warn("GOMEM: GC_realloc of a pointer not from the collector: %p\n", (uintptr_t)p);
    return NULL;
  }
  int kind = kind_of(b);
  size_t want = bdw_size(n);
  if (want != 0 && want <= old && want > old / 2)
    return p;
  void *q = kind <= BDW_AUNCOLLECTABLE ? bdw_alloc(n, kind) : bdw_kind_alloc(n, kind);
  if (q == NULL)
    return NULL;
  memcpy(q, p, n < old ? n : old);
  if (kind >= BDW_UNCOLLECTABLE)
    GC_free(p);
  return q;
}

BDW_API char *GC_strdup(const char *s) {
  if (s == NULL)
    return NULL;
  size_t n = strlen(s);
  char *p = GC_malloc_atomic(n + 1);
  if (p != NULL)
    memcpy(p, s, n + 1);
  return p;
}

BDW_API char *GC_strndup(const char *s, size_t max) {
  if (s == NULL)
    return NULL;
  size_t n = strnlen(s, max);
  char *p = GC_malloc_atomic(n + 1);
  if (p != NULL) {
    memcpy(p, s, n);
    p[n] = 0;
  }
  return p;
}

// GC_memalign: every object is 16-byte aligned; a larger alignment (up to
// gomem's 8 KiB page) gets a large object, which starts a page.
BDW_API void *GC_memalign(size_t align, size_t n) {
  if (align <= 16)
    return GC_malloc(n);
  if (align & (align - 1) || align > GM_PAGE_SIZE)
    return NULL;
  return GC_malloc(n < GM_MAX_SMALL_SIZE + 1 ? GM_MAX_SMALL_SIZE + 1 : n);
}

BDW_API int GC_posix_memalign(void **out, size_t align, size_t n) {
  if (align < sizeof(void *) || (align & (align - 1)))
    return EINVAL;
  void *p = GC_memalign(align, n);
  if (p == NULL)
    return ENOMEM;
  *out = p;
  return 0;
}

// ---------------------------------------------------------------------------
// Finalizers

typedef void (*bdw_fin_fn)(void *obj, void *cd);

static void register_finalizer(void *obj, bdw_fin_fn fn, void *cd, int order, bdw_fin_fn *ofn,
                               void **ocd) {
  bdw_fin_fn old_fn = NULL;
  void *old_cd = NULL;
  size_t size;
  uintptr_t b = bdw_base((uintptr_t)obj, &size);
  if (b != 0 && b == (uintptr_t)obj && !uncoll_has(b))
    fin_set(obj, fn, cd, order, &old_fn, &old_cd);
  if (ofn != NULL)
    *ofn = old_fn;
  if (ocd != NULL)
    *ocd = old_cd;
}

BDW_API void GC_register_finalizer(void *obj, bdw_fin_fn fn, void *cd, bdw_fin_fn *ofn,
                                   void **ocd) {
  register_finalizer(obj, fn, cd, FIN_ORDERED, ofn, ocd);
}
BDW_API void GC_register_finalizer_ignore_self(void *obj, bdw_fin_fn fn, void *cd,
                                               bdw_fin_fn *ofn, void **ocd) {
  register_finalizer(obj, fn, cd, FIN_IGNORE_SELF, ofn, ocd);
}
BDW_API void GC_register_finalizer_no_order(void *obj, bdw_fin_fn fn, void *cd, bdw_fin_fn *ofn,
                                            void **ocd) {
  register_finalizer(obj, fn, cd, FIN_NO_ORDER, ofn, ocd);
}
BDW_API void GC_register_finalizer_unreachable(void *obj, bdw_fin_fn fn, void *cd,
                                               bdw_fin_fn *ofn, void **ocd) {
  register_finalizer(obj, fn, cd, FIN_UNREACHABLE, ofn, ocd);
}

BDW_API int GC_should_invoke_finalizers(void) {
  return fin_queued() != 0;
}

BDW_API int GC_invoke_finalizers(void) {
  return (int)fin_run_queued();
}

void bdw_after_alloc(void) {
  if (!relaxed_load(&GC_finalize_on_demand) && fin_queued() != 0)
    fin_run_queued();
}

// ---------------------------------------------------------------------------
// Disappearing links (mfinal.c's weak links)

enum { BDW_NO_MEMORY = 2, BDW_NOT_FOUND = 4 };

BDW_API int GC_general_register_disappearing_link(void **link, const void *obj) {
  size_t size;
  if (((uintptr_t)link & (sizeof(void *) - 1)) != 0 || bdw_base((uintptr_t)obj, &size) == 0) {
    bdw_warn("GOMEM: GC_general_register_disappearing_link: bad link or object %p\n",
             (uintptr_t)obj);
    return BDW_NOT_FOUND;
  }
  int r = fin_weak_register(link, (void *)bdw_base((uintptr_t)obj, &size), false);
  return r == 0 ? 0 : r == 1 ? 1 : BDW_NO_MEMORY;
}

// GC_register_disappearing_link: cleared when the object holding the link
// becomes unreachable.
BDW_API int GC_register_disappearing_link(void **link) {
  size_t size;
  uintptr_t b = bdw_base((uintptr_t)link, &size);
  if (b == 0) {
    bdw_warn("GOMEM: GC_register_disappearing_link: %p is not in a GC object\n",
             (uintptr_t)link);
    return BDW_NOT_FOUND;
  }
  return GC_general_register_disappearing_link(link, (void *)b);
}

BDW_API int GC_unregister_disappearing_link(void **link) {
  return fin_weak_unregister(link, false);
}

BDW_API int GC_move_disappearing_link(void **link, void **new_link) {
  int r = fin_weak_move(link, new_link, false);
  return r == 0 ? 0 : r == 1 ? 1 : r == -1 ? BDW_NOT_FOUND : BDW_NO_MEMORY;
}

// Long links: cleared only once no finalizer can make the object
// reachable again.
BDW_API int GC_register_long_link(void **link, const void *obj) {
  size_t size;
  uintptr_t b = bdw_base((uintptr_t)obj, &size);
  if (((uintptr_t)link & (sizeof(void *) - 1)) != 0 || b == 0) {
    bdw_warn("GOMEM: GC_register_long_link: bad link or object %p\n", (uintptr_t)obj);
    return BDW_NOT_FOUND;
  }
  int r = fin_weak_register(link, (void *)b, true);
  return r == 0 ? 0 : r == 1 ? 1 : BDW_NO_MEMORY;
}

BDW_API int GC_unregister_long_link(void **link) {
  return fin_weak_unregister(link, true);
}

BDW_API int GC_move_long_link(void **link, void **new_link) {
  int r = fin_weak_move(link, new_link, true);
  return r == 0 ? 0 : r == 1 ? 1 : r == -1 ? BDW_NOT_FOUND : BDW_NO_MEMORY;
}

// ---------------------------------------------------------------------------
// The debugging allocator: the same objects, without Boehm's headers and
// checks (the file and line are not kept).

BDW_API void *GC_debug_malloc(size_t n, const char *file, int line) {
  (void)file, (void)line;
  return GC_malloc(n);
}
BDW_API void *GC_debug_malloc_atomic(size_t n, const char *file, int line) {
  (void)file, (void)line;
  return GC_malloc_atomic(n);
}
BDW_API void *GC_debug_malloc_uncollectable(size_t n, const char *file, int line) {
  (void)file, (void)line;
  return GC_malloc_uncollectable(n);
}
BDW_API void *GC_debug_realloc(void *p, size_t n, const char *file, int line) {
  (void)file, (void)line;
  return GC_realloc(p, n);
}
BDW_API void GC_debug_free(void *p) {
  GC_free(p);
}
BDW_API void GC_debug_register_finalizer_ignore_self(void *obj, bdw_fin_fn fn, void *cd,
                                                     bdw_fin_fn *ofn, void **ocd) {
  GC_register_finalizer_ignore_self(obj, fn, cd, ofn, ocd);
}

// ---------------------------------------------------------------------------
// Typed objects, kinds and mark procedures

// Stubborn objects and the manual dirty bits: gomem needs no notice of a
// change (its collections see every write), so these only store.
BDW_API void GC_end_stubborn_change(const void *p) {
  (void)p;
}
BDW_API void GC_debug_end_stubborn_change(const void *p) {
  (void)p;
}
BDW_API void GC_change_stubborn(const void *p) {
  (void)p;
}
BDW_API void GC_debug_change_stubborn(const void *p) {
  (void)p;
}
BDW_API void GC_ptr_store_and_dirty(void *p, const void *q) {
  *(const void **)p = q;
}
BDW_API void GC_debug_ptr_store_and_dirty(void *p, const void *q) {
  *(const void **)p = q;
}
