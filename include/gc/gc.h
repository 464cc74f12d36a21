/* gc/gc.h: Boehm GC's interface (bdwgc 8.2), served by gomem's libgc.so.1.
 *
 * A program written for Boehm GC compiles against this header unchanged and
 * links with -lgc (pkg-config bdw-gc); binaries built against Boehm's own
 * header run on gomem's libgc.so.1 through LD_LIBRARY_PATH. The types,
 * constants and kind numbers are Boehm's ABI. What gomem does not honour is
 * said in README "Boehm GC programs on gomem" and at each declaration. */
#ifndef GOMEM_GC_H
#define GOMEM_GC_H

#include <stddef.h>

#include "gc_version.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GC_API extern
#define GC_CALL
#define GC_CALLBACK
#define GC_ATTR_MALLOC __attribute__((__malloc__))
#define GC_ATTR_ALLOC_SIZE(n) __attribute__((__alloc_size__(n)))
#define GC_ATTR_NONNULL(n) __attribute__((__nonnull__(n)))
#define GC_ATTR_DEPRECATED __attribute__((__deprecated__))

typedef void *GC_PTR; /* (old name) */
typedef unsigned long GC_word;
typedef long GC_signed_word;
typedef GC_word GC_hidden_pointer;

/* Return codes. */
#define GC_SUCCESS 0
#define GC_DUPLICATE 1
#define GC_NO_THREADS 2
#define GC_NO_MEMORY 2
#define GC_UNIMPLEMENTED 3
#define GC_NOT_FOUND 4

#define GC_TIME_UNLIMITED 999999
#define GC_PROTECTS_NONE 0

/* Data the program may read and write directly (before GC_init, too). */
GC_API int GC_all_interior_pointers; /* 1: an extra byte per object (default) */
GC_API int GC_no_dls;                /* (gomem scans every library anyway) */
GC_API int GC_java_finalization;
GC_API int GC_finalize_on_demand;
GC_API int GC_dont_gc;
GC_API void *GC_stackbottom;
GC_API void *GC_least_plausible_heap_addr, *GC_greatest_plausible_heap_addr;
typedef void (*GC_push_other_roots_proc)(void);
GC_API GC_push_other_roots_proc GC_push_other_roots;

/* Initialisation: optional (the first allocation initialises). */
GC_API void GC_init(void);
GC_API int GC_is_init_called(void);
GC_API unsigned GC_get_version(void);
#define GC_INIT() GC_init()

/* Allocation. GC_malloc's memory is zeroed and scanned; atomic memory is
 * neither; uncollectable objects live (and keep what they point to) until
 * GC_free. */
GC_API void *GC_malloc(size_t) GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1);
GC_API void *GC_malloc_atomic(size_t) GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1);
GC_API void *GC_malloc_uncollectable(size_t) GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1);
GC_API void *GC_malloc_atomic_uncollectable(size_t) GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1);
GC_API void *GC_malloc_ignore_off_page(size_t) GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1);
GC_API void *GC_malloc_atomic_ignore_off_page(size_t) GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1);
GC_API void *GC_generic_malloc(size_t, int /* kind 0-3 */) GC_ATTR_MALLOC;
GC_API void *GC_malloc_many(size_t); /* a list linked through GC_NEXT */
#define GC_NEXT(p) (*(void **)(p))
GC_API void *GC_realloc(void *, size_t) GC_ATTR_ALLOC_SIZE(2); /* keeps the kind */
GC_API void GC_free(void *);
GC_API char *GC_strdup(const char *) GC_ATTR_MALLOC;
GC_API char *GC_strndup(const char *, size_t) GC_ATTR_MALLOC;
GC_API void *GC_memalign(size_t align, size_t n) GC_ATTR_MALLOC;
GC_API int GC_posix_memalign(void **, size_t align, size_t n);

/* Objects. */
GC_API void *GC_base(void *);
GC_API int GC_is_heap_ptr(const void *);
GC_API size_t GC_size(const void *);
GC_API int GC_get_kind_and_size(const void *, size_t *);

/* Finalization: fn(obj, cd) runs once obj is unreachable, in the thread
 * that next allocates (or in GC_invoke_finalizers with finalize-on-demand).
 * ordered: an object reachable from another finalizable one waits for it;
 * no_order: it does not. ignore_self is ordered finalization here (an
 * object pointing to itself is never finalized). fn == NULL unregisters;
 * the previous fn and cd come back in *ofn, *ocd. */
typedef void (*GC_finalization_proc)(void *obj, void *cd);
GC_API void GC_register_finalizer(void *, GC_finalization_proc, void *, GC_finalization_proc *,
                                  void **);
GC_API void GC_register_finalizer_ignore_self(void *, GC_finalization_proc, void *,
                                              GC_finalization_proc *, void **);
GC_API void GC_register_finalizer_no_order(void *, GC_finalization_proc, void *,
                                           GC_finalization_proc *, void **);
GC_API void GC_register_finalizer_unreachable(void *, GC_finalization_proc, void *,
                                              GC_finalization_proc *, void **);
GC_API int GC_should_invoke_finalizers(void);
GC_API int GC_invoke_finalizers(void);
GC_API void GC_set_finalize_on_demand(int);
GC_API int GC_get_finalize_on_demand(void);
GC_API void GC_set_java_finalization(int);
GC_API int GC_get_java_finalization(void);
typedef void (*GC_finalizer_notifier_proc)(void);
GC_API void GC_set_finalizer_notifier(GC_finalizer_notifier_proc);
GC_API GC_finalizer_notifier_proc GC_get_finalizer_notifier(void);

/* Disappearing links: *link becomes NULL once obj is unreachable. */
#define GC_HIDE_POINTER(p) (~(GC_hidden_pointer)(p))
#define GC_REVEAL_POINTER(p) ((void *)GC_HIDE_POINTER(p))
#define HIDE_POINTER(p) GC_HIDE_POINTER(p)
#define REVEAL_POINTER(p) GC_REVEAL_POINTER(p)
GC_API int GC_general_register_disappearing_link(void **link, const void *obj);
GC_API int GC_register_disappearing_link(void **link); /* link inside the object */
GC_API int GC_move_disappearing_link(void **link, void **new_link);
GC_API int GC_unregister_disappearing_link(void **link);
/* Long links: cleared only once no finalizer can bring obj back. */
GC_API int GC_register_long_link(void **link, const void *obj);
GC_API int GC_move_long_link(void **link, void **new_link);
GC_API int GC_unregister_long_link(void **link);

/* Collection. */
GC_API void GC_gcollect(void);
GC_API void GC_gcollect_and_unmap(void);
GC_API int GC_try_to_collect(int (*stop)(void));
GC_API int GC_collect_a_little(void);
GC_API void GC_disable(void);
GC_API void GC_enable(void);
GC_API int GC_is_disabled(void);
GC_API void GC_enable_incremental(void); /* (a no-op: see GOMEM_GC_CONCURRENT) */
GC_API int GC_is_incremental_mode(void);
GC_API int GC_expand_hp(size_t);
GC_API void GC_set_max_heap_size(size_t); /* gomem's soft memory limit */
typedef void (*GC_start_callback_proc)(void);
GC_API void GC_set_start_callback(GC_start_callback_proc);
GC_API GC_start_callback_proc GC_get_start_callback(void);

/* Statistics. */
GC_API size_t GC_get_heap_size(void);
GC_API size_t GC_get_free_bytes(void);
GC_API size_t GC_get_unmapped_bytes(void);
GC_API size_t GC_get_bytes_since_gc(void);
GC_API size_t GC_get_total_bytes(void);
GC_API size_t GC_get_gc_no(void);
GC_API size_t GC_get_memory_use(void);
GC_API void GC_get_heap_usage_safe(size_t *heap, size_t *free_bytes, size_t *unmapped,
                                   size_t *since_gc, size_t *total);
GC_API void GC_dump(void);

/* Roots. */
GC_API void GC_add_roots(void *lo, void *hi);
GC_API void GC_remove_roots(void *lo, void *hi);
GC_API void GC_clear_roots(void);
GC_API void GC_set_no_dls(int);
GC_API int GC_get_no_dls(void);
GC_API void *GC_is_visible(void *);
GC_API void GC_set_push_other_roots(GC_push_other_roots_proc);
GC_API GC_push_other_roots_proc GC_get_push_other_roots(void);
GC_API void GC_push_all(void *lo, void *hi); /* inside GC_push_other_roots */
GC_API void GC_push_all_eager(void *lo, void *hi);
GC_API void GC_register_displacement(size_t);

/* Warnings and out of memory. */
typedef void (*GC_warn_proc)(char *msg, GC_word arg);
GC_API void GC_set_warn_proc(GC_warn_proc);
GC_API GC_warn_proc GC_get_warn_proc(void);
GC_API void GC_ignore_warn_proc(char *, GC_word);
typedef void *(*GC_oom_func)(size_t);
GC_API void GC_set_oom_fn(GC_oom_func);
GC_API GC_oom_func GC_get_oom_fn(void);
GC_API void GC_abort_on_oom(void);

/* Settings kept for their getters (gomem paces with GOGC). */
GC_API void GC_set_free_space_divisor(unsigned long);
GC_API unsigned long GC_get_free_space_divisor(void);
GC_API void GC_set_full_freq(int);
GC_API int GC_get_full_freq(void);
GC_API void GC_set_time_limit(unsigned long);
GC_API unsigned long GC_get_time_limit(void);
GC_API void GC_set_max_retries(unsigned long);
GC_API unsigned long GC_get_max_retries(void);
GC_API void GC_set_dont_expand(int);
GC_API int GC_get_dont_expand(void);
GC_API void GC_set_all_interior_pointers(int);
GC_API int GC_get_all_interior_pointers(void);
GC_API void GC_set_handle_fork(int);
GC_API void GC_set_dont_gc(int);
GC_API int GC_get_dont_gc(void);
GC_API void GC_set_find_leak(int); /* (kept; gomem has no leak-finding mode) */
GC_API int GC_get_find_leak(void);
GC_API void GC_set_force_unmap_on_gcollect(int);
GC_API int GC_get_force_unmap_on_gcollect(void);
GC_API void GC_set_pages_executable(int);
GC_API int GC_get_pages_executable(void);
GC_API void GC_set_max_prior_attempts(int);
GC_API int GC_get_max_prior_attempts(void);
GC_API void GC_set_min_bytes_allocd(size_t);
GC_API size_t GC_get_min_bytes_allocd(void);
GC_API void GC_set_rate(int);
GC_API int GC_get_rate(void);
GC_API void GC_set_dont_precollect(int);
GC_API int GC_get_dont_precollect(void);
GC_API int GC_get_parallel(void);
GC_API void GC_set_markers_count(unsigned);
GC_API void GC_start_mark_threads(void);

/* Threads. gomem registers a thread at its first allocation; these make it
 * explicit. */
struct GC_stack_base {
  void *mem_base; /* where the stack starts: its highest address */
};
typedef void *(*GC_stack_base_func)(struct GC_stack_base *, void *);
typedef void *(*GC_fn_type)(void *);
GC_API void GC_allow_register_threads(void);
GC_API int GC_register_my_thread(const struct GC_stack_base *);
GC_API int GC_unregister_my_thread(void);
GC_API int GC_thread_is_registered(void);
GC_API int GC_get_stack_base(struct GC_stack_base *);
GC_API void *GC_call_with_stack_base(GC_stack_base_func, void *);
/* Coroutine stacks: a thread running on a stack of the program's own
 * declares where it ends (its highest address), the initial thread by
 * writing GC_stackbottom or either with GC_set_stackbottom (handle from
 * GC_get_my_stackbottom, or NULL: the calling thread); the stack is then
 * scanned from the stack pointer to there. Suspended stacks are the
 * program's to push (GC_set_push_other_roots, GC_push_all_eager). */
GC_API void *GC_get_my_stackbottom(struct GC_stack_base *);
GC_API void GC_set_stackbottom(void *, const struct GC_stack_base *);
GC_API void *GC_do_blocking(GC_fn_type, void *);
GC_API void *GC_call_with_gc_active(GC_fn_type, void *);
GC_API void *GC_call_with_alloc_lock(GC_fn_type, void *);
GC_API int GC_get_suspend_signal(void);
GC_API int GC_get_thr_restart_signal(void);

/* Stubborn objects and manual dirty bits: gomem needs no notice. */
GC_API void GC_end_stubborn_change(const void *);
GC_API void GC_change_stubborn(const void *);
GC_API void GC_ptr_store_and_dirty(void *, const void *);

/* Debugging allocation: the same objects (no headers, no checks). */
GC_API void *GC_debug_malloc(size_t, const char *, int);
GC_API void *GC_debug_malloc_atomic(size_t, const char *, int);
GC_API void *GC_debug_malloc_uncollectable(size_t, const char *, int);
GC_API void *GC_debug_realloc(void *, size_t, const char *, int);
GC_API void GC_debug_free(void *);

/* The macros programs use. */
#define GC_MALLOC(n) GC_malloc(n)
#define GC_MALLOC_ATOMIC(n) GC_malloc_atomic(n)
#define GC_MALLOC_UNCOLLECTABLE(n) GC_malloc_uncollectable(n)
#define GC_MALLOC_ATOMIC_UNCOLLECTABLE(n) GC_malloc_atomic_uncollectable(n)
#define GC_MALLOC_IGNORE_OFF_PAGE(n) GC_malloc_ignore_off_page(n)
#define GC_MALLOC_ATOMIC_IGNORE_OFF_PAGE(n) GC_malloc_atomic_ignore_off_page(n)
#define GC_REALLOC(p, n) GC_realloc(p, n)
#define GC_FREE(p) GC_free(p)
#define GC_STRDUP(s) GC_strdup(s)
#define GC_STRNDUP(s, n) GC_strndup(s, n)
#define GC_NEW(t) ((t *)GC_MALLOC(sizeof(t)))
#define GC_NEW_ATOMIC(t) ((t *)GC_MALLOC_ATOMIC(sizeof(t)))
#define GC_NEW_UNCOLLECTABLE(t) ((t *)GC_MALLOC_UNCOLLECTABLE(sizeof(t)))
#define GC_REGISTER_FINALIZER(p, f, d, of, od) GC_register_finalizer(p, f, d, of, od)
#define GC_REGISTER_FINALIZER_IGNORE_SELF(p, f, d, of, od)                                         \
  GC_register_finalizer_ignore_self(p, f, d, of, od)
#define GC_REGISTER_FINALIZER_NO_ORDER(p, f, d, of, od)                                            \
  GC_register_finalizer_no_order(p, f, d, of, od)
#define GC_REGISTER_FINALIZER_UNREACHABLE(p, f, d, of, od)                                         \
  GC_register_finalizer_unreachable(p, f, d, of, od)
#define GC_GENERAL_REGISTER_DISAPPEARING_LINK(l, o) GC_general_register_disappearing_link(l, o)
#define GC_REGISTER_DISPLACEMENT(n) GC_register_displacement(n)
#define GC_PTR_STORE_AND_DIRTY(p, q) GC_ptr_store_and_dirty(p, q)
#define GC_reachable_here(p) __asm__ __volatile__("" : : "X"(p) : "memory")

#if defined(GC_THREADS) && !defined(GC_NO_THREAD_REDIRECTS)
#include "gc_pthread_redirects.h"
#endif

#ifdef __cplusplus
}
#endif

#endif /* GOMEM_GC_H */
