// bdw_extra.c: the rest of Boehm GC's interface, which no Debian client
// imports but bdwgc's own test program (gctest) does: settings and hooks
// kept for their getters, printing, statistics (Boehm's getters and its
// layout), object queries (see bdw.h). Hooks gomem has no event for (collection events,
// heap resizing, thread events, toggle-refs) are stored and never called;
// the suspend and restart signals cannot be changed (gomem's is SIGPWR).
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdw.h"
#include "gc/gc.h"
#include "gomem.h"
#include "mgc.h"
#include "mgcmark.h"
#include "sizeclasses.h"
#include "threads.h"

typedef void (*bdw_abort_fn)(const char *msg);
typedef void (*bdw_print_fn)(void *p);

static void default_abort(const char *msg) {
  if (msg != NULL)
    fprintf(stderr, "%s\n", msg);
  abort();
}
BDW_API bdw_abort_fn GC_on_abort = default_abort;

static void default_same_obj_print(void *p, void *q) {
  fprintf(stderr, "GC_same_obj: %p and %p are not in the same object\n", p, q);
}
static void default_displacement_print(void *p) {
  fprintf(stderr, "GC_is_valid_displacement: %p is not a valid pointer into the heap\n", p);
}
static void default_visible_print(void *p) {
  fprintf(stderr, "GC_is_visible: %p is not visible\n", p);
}
BDW_API void (*GC_same_obj_print_proc)(void *, void *) = default_same_obj_print;
BDW_API bdw_print_fn GC_is_valid_displacement_print_proc = default_displacement_print;
BDW_API bdw_print_fn GC_is_visible_print_proc = default_visible_print;

// Hooks and settings stored for their getters.
static struct {
  void *await_finalize, *on_collection, *on_heap_resize, *on_thread, *stop, *toggleref;
  long disable_auto, manual_vdb, non_gc_bytes, bytes_per_finalizer;
  unsigned long tv_ms, tv_nsec;
} hk = {NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, 0, 10000, 999999, 0};

#define HOOK(name, field)                                                                          \
  BDW_API void GC_set_##name(void *fn) {                                                           \
    hk.field = fn;                                                                                 \
  }                                                                                                \
  BDW_API void *GC_get_##name(void) {                                                              \
    return hk.field;                                                                               \
  }
HOOK(await_finalize_proc, await_finalize)
HOOK(on_collection_event, on_collection)
HOOK(on_heap_resize, on_heap_resize)
HOOK(on_thread_event, on_thread)
HOOK(stop_func, stop)
HOOK(toggleref_func, toggleref)

#define VALUE(name, field, type)                                                                   \
  BDW_API void GC_set_##name(type v) {                                                             \
    hk.field = (long)v;                                                                            \
  }                                                                                                \
  BDW_API type GC_get_##name(void) {                                                               \
    return (type)hk.field;                                                                         \
  }
VALUE(manual_vdb_allowed, manual_vdb, int)
VALUE(non_gc_bytes, non_gc_bytes, unsigned long)
VALUE(allocd_bytes_per_finalizer, bytes_per_finalizer, unsigned long)

// GC_set_disable_automatic_collection: collections only when asked for.
BDW_API void GC_set_disable_automatic_collection(int v) {
  bdw_init();
  if ((hk.disable_auto != 0) != (v != 0))
    v ? GC_disable() : GC_enable();
  hk.disable_auto = v != 0;
}
BDW_API int GC_get_disable_automatic_collection(void) {
  return (int)hk.disable_auto;
}

BDW_API void GC_set_abort_func(bdw_abort_fn fn) {
  GC_on_abort = fn != NULL ? fn : default_abort;
}
BDW_API bdw_abort_fn GC_get_abort_func(void) {
  return GC_on_abort;
}

struct bdw_timeval {
  unsigned long tv_ms, tv_nsec;
};
BDW_API void GC_set_time_limit_tv(struct bdw_timeval tv) {
  hk.tv_ms = tv.tv_ms, hk.tv_nsec = tv.tv_nsec;
}
BDW_API struct bdw_timeval GC_get_time_limit_tv(void) {
  return (struct bdw_timeval){hk.tv_ms, hk.tv_nsec};
}

BDW_API void GC_set_suspend_signal(int sig) {
  (void)sig;
}
BDW_API void GC_set_thr_restart_signal(int sig) {
  (void)sig;
}
BDW_API int GC_incremental_protection_needs(void) {
  return 0; // GC_PROTECTS_NONE
}
BDW_API void GC_incr_bytes_allocd(size_t n) {
  (void)n;
}
BDW_API void GC_incr_bytes_freed(size_t n) {
  (void)n;
}
BDW_API void GC_noop1(uintptr_t x) {
  __asm__ volatile("" : : "r"(x) : "memory");
}

// ---------------------------------------------------------------------------
// Printing

BDW_API void GC_printf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stdout, fmt, ap);
  va_end(ap);
  fflush(stdout);
}
BDW_API void GC_log_printf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
}

// ---------------------------------------------------------------------------
// Statistics in Boehm's layout (struct GC_prof_stats_s: 12 words)

struct bdw_prof_stats {
  uintptr_t heapsize_full, free_bytes_full, unmapped_bytes, bytes_allocd_since_gc,
      allocd_bytes_before_gc, non_gc_bytes, gc_no, markers_m1, bytes_reclaimed_since_gc,
      reclaimed_bytes_before_gc, expl_freed_bytes_since_gc, obtained_from_os_bytes;
};

BDW_API size_t GC_get_prof_stats(struct bdw_prof_stats *out, size_t n) {
  struct bdw_prof_stats s;
  memset(&s, 0xff, sizeof s); // (Boehm's "unknown")
  size_t heap, free_bytes, unmapped, since, total;
  GC_get_heap_usage_safe(&heap, &free_bytes, &unmapped, &since, &total);
  gm_stats_t st;
  gm_stats(&st);
  s.heapsize_full = heap, s.free_bytes_full = free_bytes, s.unmapped_bytes = unmapped;
  s.bytes_allocd_since_gc = since, s.allocd_bytes_before_gc = total - since;
  s.non_gc_bytes = (uintptr_t)hk.non_gc_bytes, s.gc_no = st.num_gc;
  s.markers_m1 = gc_nworkers() - 1, s.obtained_from_os_bytes = st.heap_sys;
  if (n > sizeof s)
    n = sizeof s;
  memcpy(out, &s, n);
  return n;
}
BDW_API size_t GC_get_prof_stats_unsafe(struct bdw_prof_stats *out, size_t n) {
  return GC_get_prof_stats(out, n);
}
BDW_API size_t GC_get_obtained_from_os_bytes(void) {
  gm_stats_t st;
  gm_stats(&st);
  return (size_t)st.heap_sys;
}
static uint64_t perf_from;
BDW_API void GC_start_performance_measurement(void) {
  gm_stats_t st;
  gm_stats(&st);
  perf_from = st.pause_total_ns;
}
BDW_API unsigned long GC_get_full_gc_total_time(void) {
  gm_stats_t st;
  gm_stats(&st);
  return (unsigned long)((st.pause_total_ns - perf_from) / 1000000);
}

// GC_get_size_map_at: the bytes GC_malloc gives for a request of i bytes
// (-1 past the small objects).
BDW_API size_t GC_get_size_map_at(int i) {
  if (i < 0 || i > GM_MAX_SMALL_SIZE / 2)
    return (size_t)-1;
  void *p = GC_malloc((size_t)i);
  size_t n = GC_size(p);
  GC_free(p);
  return n;
}

// ---------------------------------------------------------------------------
// Objects

BDW_API void *GC_malloc_kind(size_t n, int kind) {
  return GC_generic_malloc(n, kind);
}
BDW_API void *GC_generic_or_special_malloc(size_t n, int kind) {
  return GC_generic_malloc(n, kind);
}

BDW_API void *GC_same_obj(void *p, void *q) {
  void *b = GC_base(p);
  if (b == NULL ? (uintptr_t)p / 4096 != (uintptr_t)q / 4096 : b != GC_base(q))
    GC_same_obj_print_proc(p, q);
  return p;
}
BDW_API void *GC_is_valid_displacement(void *p) {
  if (GC_is_heap_ptr(p) && GC_base(p) == NULL)
    GC_is_valid_displacement_print_proc(p);
  return p;
}

// Declared stacks. A coroutine library that runs code on stacks of its own
// (Crystal's fibers) tells the collector where the running one ends: for the
// initial thread by writing GC_stackbottom, for others with
// GC_set_stackbottom. A thread stopped on a stack that is not its own and
// not one gomem can bound (stw.c) has it scanned from its stack pointer to
// that end; its own stack is scanned whole as well. The stacks the program
// is not running on are its to push (GC_set_push_other_roots).
BDW_API void *GC_get_my_stackbottom(struct GC_stack_base *sb) {
  bdw_init();
  if (gm_tls_m.thread == NULL || !gm_tls_m.thread->bounded)
    (void)gm_thread_attach();
  gthread_t *r = gm_tls_m.thread;
  uintptr_t b = r != NULL ? atomic_load(&r->user_hi) : 0;
  if (r != NULL && r->primordial)
    b = (uintptr_t)GC_stackbottom;
  if (b != 0)
    sb->mem_base = (void *)b;
  else
    GC_get_stack_base(sb);
  return r;
}
BDW_API void GC_set_stackbottom(void *handle, const struct GC_stack_base *sb) {
  if (!gc_is_inited()) {
    GC_stackbottom = sb->mem_base; // (the initial thread's, as in Boehm GC)
    return;
  }
  gthread_t *r = handle;
  if (r == NULL) {
    if (gm_tls_m.thread == NULL || !gm_tls_m.thread->bounded)
      (void)gm_thread_attach();
    if ((r = gm_tls_m.thread) == NULL)
      return;
  }
  if (r->primordial)
    GC_stackbottom = sb->mem_base;
  else
    atomic_store(&r->user_hi, (uintptr_t)sb->mem_base);
}

// GC_is_marked: gomem keeps no mark bits a program could read between
// collections; an allocated object counts as marked (it survived, or is
// new since the last collection).
BDW_API int GC_is_marked(const void *p) {
  return GC_base((void *)p) == p;
}

// GC_alloc_lock / GC_alloc_unlock: no collection runs in between.
BDW_API void GC_alloc_lock(void) {
  bdw_init();
  gc_lock_cycle();
}
BDW_API void GC_alloc_unlock(void) {
  gc_unlock_cycle();
}

// GC_enumerate_reachable_objects_inner (under GC_alloc_lock): gomem does
// not list its objects yet; nothing is reported.
BDW_API void GC_enumerate_reachable_objects_inner(void (*fn)(void *, size_t, void *), void *cd) {
  (void)fn, (void)cd;
}

// GC_atfork_*: gomem prepares for fork by itself (pthread_atfork handlers
// of its own), whatever GC_set_handle_fork said.
BDW_API void GC_atfork_prepare(void) {
}
BDW_API void GC_atfork_parent(void) {
}
BDW_API void GC_atfork_child(void) {
}

// ---------------------------------------------------------------------------
// Statistics

static void stats(gm_stats_t *s) {
  gm_stats(s);
}

static size_t heap_size(const gm_stats_t *s) {
  return (size_t)(s->heap_inuse + s->heap_idle - s->heap_released);
}

BDW_API size_t GC_get_heap_size(void) {
  gm_stats_t s;
  stats(&s);
  return heap_size(&s);
}
BDW_API size_t GC_get_free_bytes(void) {
  gm_stats_t s;
  stats(&s);
  size_t h = heap_size(&s);
  return h > s.gc_heap_alloc ? h - (size_t)s.gc_heap_alloc : 0;
}
BDW_API size_t GC_get_unmapped_bytes(void) {
  gm_stats_t s;
  stats(&s);
  return (size_t)s.heap_released;
}
BDW_API size_t GC_get_bytes_since_gc(void) {
  gm_stats_t s;
  stats(&s);
  return s.gc_heap_alloc > s.gc_heap_live ? (size_t)(s.gc_heap_alloc - s.gc_heap_live) : 0;
}
BDW_API size_t GC_get_total_bytes(void) {
  return (size_t)bdw_total_bytes();
}
BDW_API size_t GC_get_gc_no(void) {
  gm_stats_t s;
  stats(&s);
  return (size_t)s.num_gc;
}
BDW_API void GC_get_heap_usage_safe(size_t *heap, size_t *free_bytes, size_t *unmapped,
                                    size_t *since_gc, size_t *total) {
  gm_stats_t s;
  stats(&s);
  size_t h = heap_size(&s);
  if (heap)
    *heap = h;
  if (free_bytes)
    *free_bytes = h > s.gc_heap_alloc ? h - (size_t)s.gc_heap_alloc : 0;
  if (unmapped)
    *unmapped = (size_t)s.heap_released;
  if (since_gc)
    *since_gc = s.gc_heap_alloc > s.gc_heap_live ? (size_t)(s.gc_heap_alloc - s.gc_heap_live) : 0;
  if (total)
    *total = (size_t)bdw_total_bytes();
}
BDW_API size_t GC_get_memory_use(void) {
  gm_stats_t s;
  stats(&s);
  return (size_t)s.gc_heap_alloc;
}
BDW_API void GC_dump(void) {
  gm_print_stats_fd(1);
}
