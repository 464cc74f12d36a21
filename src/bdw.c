// bdw.c: Boehm GC's interface besides allocation (see bdw.h):
// initialisation and settings, collection control, statistics, roots,
// threads, warnings and out-of-memory.
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdw.h"
#include "gomem.h"
#include "internal.h"
#include "lock.h"
#include "mallocint.h"
#include "mfinal.h"
#include "mgc.h"
#include "mgcmark.h"
#include "mgcpacer.h"
#include "mheap.h"
#include "os.h"
#include "roots.h"
#include "stw.h"
#include "threads.h"

extern void *__libc_stack_end;

#define BDW_VERSION 0x080202u // the bdwgc release whose interface this is (8.2.2)
#define BDW_TIME_UNLIMITED 999999

enum { BDW_SUCCESS = 0, BDW_DUPLICATE = 1, BDW_NO_THREADS = 2, BDW_UNIMPLEMENTED = 3,
       BDW_NOT_FOUND = 4 };

// Data symbols (Boehm's defaults).
BDW_API int GC_all_interior_pointers = 1;
BDW_API int GC_no_dls;
BDW_API int GC_java_finalization = 1;
BDW_API int GC_finalize_on_demand;
BDW_API int GC_dont_gc;
BDW_API void *GC_stackbottom;
BDW_API void *GC_least_plausible_heap_addr = (void *)~(uintptr_t)0;
BDW_API void *GC_greatest_plausible_heap_addr;
typedef void (*bdw_push_fn)(void);
BDW_API bdw_push_fn GC_push_other_roots;

typedef void (*bdw_warn_fn)(char *msg, uintptr_t arg);
typedef void *(*bdw_oom_fn)(size_t n);
typedef void (*bdw_void_fn)(void);
void bdw_uncoll_roots(void (*fn)(void *ctx, uintptr_t lo, uintptr_t hi), void *ctx);

static void default_warn(char *msg, uintptr_t arg) {
  fprintf(stderr, msg, arg);
}
static void *default_oom(size_t n) {
  (void)n;
  return NULL;
}

// Settings that gomem keeps only to give them back (getter/setter pairs).
static struct {
  bdw_warn_fn warn;
  bdw_oom_fn oom;
  bdw_void_fn start_cb, notifier;
  long free_space_divisor, full_freq, time_limit, max_retries, dont_expand, force_unmap;
  long handle_fork, pages_executable, max_prior_attempts, min_bytes_allocd, rate;
  long dont_precollect, find_leak, max_heap, disable_count;
} st = {default_warn, default_oom, NULL, NULL, 3, 19, BDW_TIME_UNLIMITED, 0, 0, 0,
        0, 0, 0, 1, 10, 0, 0, 0, 0};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static gm_mutex_t disable_lock = GM_MUTEX_INIT(RANK_BDW_GOGC);
static int saved_percent = 100; // GOGC while GC_disable'd (disable_lock)
static _Atomic int allow_register;

static void bdw_notify(void) {
  bdw_void_fn fn = st.notifier;
  if (fn != NULL && relaxed_load(&GC_finalize_on_demand))
    fn();
}

// roots_hook: at every collection, world stopped: the uncollectable
// objects, and the client's GC_push_other_roots (whose GC_set_mark_bit
// calls collect the objects to keep in set_bits, a root range once it
// returns).
static root_fn push_fn;
static void *push_ctx;
static uintptr_t *set_bits;
static size_t set_bits_n, set_bits_cap;

static void roots_hook(root_fn fn, void *ctx) {
  GC_least_plausible_heap_addr = (void *)relaxed_load(&gm_heap.arena_lo);
  GC_greatest_plausible_heap_addr = (void *)relaxed_load(&gm_heap.arena_hi);
  bdw_uncoll_roots(fn, ctx);
  bdw_push_fn push = GC_push_other_roots;
  if (push != NULL) {
    push_fn = fn, push_ctx = ctx;
    set_bits_n = 0;
    push();
    push_fn = NULL;
    if (set_bits_n != 0)
      fn(ctx, (uintptr_t)set_bits, (uintptr_t)(set_bits + set_bits_n));
  }
}

static long env_long(const char *name, long dflt) {
  const char *v = getenv(name);
  return v != NULL && *v ? strtol(v, NULL, 10) : dflt;
}

// env_bytes: a size with Boehm's optional suffix (k, m or g, either case).
static uint64_t env_bytes(const char *name) {
  const char *v = getenv(name);
  char *end;
  if (v == NULL || *v < '0' || *v > '9')
    return 0;
  uint64_t n = strtoull(v, &end, 10);
  unsigned shift = *end == 'k' || *end == 'K'   ? 10
                   : *end == 'm' || *end == 'M' ? 20
                   : *end == 'g' || *end == 'G' ? 30
                                                : 0;
  return n > (UINT64_MAX >> shift) ? UINT64_MAX : n << shift;
}

// Heap sizing. A Boehm heap starts at GC_INITIAL_HEAP_SIZE (64 KiB by
// default), grows by GC_expand_hp, and collects once the program has
// allocated 1/GC_free_space_divisor of what a collection would scan (about
// two thirds of the live heap at the default divisor, 3). On gomem's pacer:
// GOGC is 200/divisor (66) unless GOMEM_GOGC says otherwise, and the
// smallest goal (4 MiB in libgomem, Go's) is the initial size, BDW_MIN_HEAP
// if none is given, plus what GC_expand_hp added.
#define BDW_MIN_HEAP ((uint64_t)1 << 20)
static uint64_t initial_heap = BDW_MIN_HEAP, expanded; // heap_lock
static gm_mutex_t heap_lock = GM_MUTEX_INIT(RANK_BDW_HEAP);

static void apply_heap_size(void) {
  if (!gc_is_inited())
    return;
  gm_lock_stoppable(&heap_lock);
  uint64_t min = initial_heap + expanded;
  gm_unlock_raw(&heap_lock);
  pacer_set_min_heap(min);
}

static int divisor_percent(long divisor) {
  return divisor < 1 ? 200 : (int)(200 / divisor);
}

static void init_once_fn(void) {
  fin_manual = true; // finalizers run in the client's threads
  fin_notifier = bdw_notify;
  gc_roots_hook = roots_hook;
  if (env_long("GC_DONT_GC", 0) || getenv("GC_DONT_GC") != NULL)
    GC_dont_gc = 1;
  uint64_t max = env_bytes("GC_MAXIMUM_HEAP_SIZE"), initial = env_bytes("GC_INITIAL_HEAP_SIZE");
  if (max > 0)
    gm_set_memory_limit((int64_t)(max > INT64_MAX ? INT64_MAX : max));
  if (initial > 0)
    initial_heap = initial;
  long divisor = env_long("GC_FREE_SPACE_DIVISOR", 0);
  if (divisor > 0)
    st.free_space_divisor = divisor;
  gm_ensure_init(); // gomem's options are read: Boehm's variables may add to them
  if (getenv("GC_PRINT_STATS") != NULL)
    gm_opt.gctrace = true; // (gomem's gctrace lines)
  long markers = env_long("GC_MARKERS", 0);
  if (markers > 0 && getenv("GOMEM_GC_PROCS") == NULL)
    gm_opt.gc_procs = (unsigned)markers;
  gc_ensure_init();
  apply_heap_size();
  saved_percent = gm_opt.gogc_set ? gm_opt.gogc : divisor_percent(st.free_space_divisor);
  gm_set_gc_percent(GC_dont_gc ? -1 : saved_percent);
}

void bdw_init(void) {
  pthread_once(&init_once, init_once_fn);
}

__attribute__((constructor)) static void bdw_load(void) {
  fin_manual = true; // before any collection can queue a finalizer
  fin_notifier = bdw_notify;
  gc_roots_hook = roots_hook;
  bdw_kinds_init();
  lock_fork_register(&disable_lock); // (a fork child must not find them held)
  lock_fork_register(&heap_lock);
  if (GC_stackbottom == NULL) // (Boehm GC sets it at GC_init; programs read it before)
    GC_stackbottom = __libc_stack_end;
  stw_main_bottom = (void *volatile *)&GC_stackbottom;
}

BDW_API void GC_init(void) {
  bdw_init();
}
BDW_API int GC_is_init_called(void) {
  return gc_is_inited();
}
BDW_API unsigned GC_get_version(void) {
  return BDW_VERSION;
}

// ---------------------------------------------------------------------------
// Warnings, out of memory

void *bdw_oom(size_t n) {
  return st.oom(n);
}

void bdw_warn(const char *msg, uintptr_t arg) {
  st.warn((char *)msg, arg);
}

BDW_API void GC_set_warn_proc(bdw_warn_fn fn) {
  st.warn = fn != NULL ? fn : default_warn;
}
BDW_API bdw_warn_fn GC_get_warn_proc(void) {
  return st.warn;
}
BDW_API void GC_ignore_warn_proc(char *msg, uintptr_t arg) {
  (void)msg, (void)arg;
}
BDW_API void GC_set_oom_fn(bdw_oom_fn fn) {
  st.oom = fn != NULL ? fn : default_oom;
}
BDW_API bdw_oom_fn GC_get_oom_fn(void) {
  return st.oom;
}
BDW_API void GC_abort_on_oom(void) {
  fprintf(stderr, "GC: out of memory\n");
  abort();
}

// ---------------------------------------------------------------------------
// Collection control

BDW_API void GC_gcollect(void) {
  bdw_init();
  if (relaxed_load(&GC_dont_gc) || relaxed_load(&st.disable_count) > 0)
    return;
  if (st.start_cb != NULL)
    st.start_cb();
  gm_collect();
  bdw_after_alloc();
}
BDW_API void GC_gcollect_and_unmap(void) {
  GC_gcollect();
  gm_release_memory();
}
BDW_API int GC_try_to_collect(int (*stop)(void)) {
  (void)stop; // (a collection is not interruptible)
  GC_gcollect();
  return 1;
}
// GC_collect_a_little: gomem's collections are not incremental; this only
// runs finalizers that are due. Returns 0: no collection in progress.
BDW_API int GC_collect_a_little(void) {
  bdw_after_alloc();
  return 0;
}

BDW_API void GC_disable(void) {
  bdw_init();
  gm_lock_stoppable(&disable_lock);
  if (st.disable_count++ == 0)
    saved_percent = gm_set_gc_percent(-1);
  gm_unlock_raw(&disable_lock);
}
BDW_API void GC_enable(void) {
  gm_lock_stoppable(&disable_lock);
  if (st.disable_count > 0 && --st.disable_count == 0 && !GC_dont_gc)
    gm_set_gc_percent(saved_percent);
  gm_unlock_raw(&disable_lock);
}
BDW_API int GC_is_disabled(void) {
  return st.disable_count > 0 || GC_dont_gc;
}

// Incremental mode: gomem marks beside the program only when started with
// GOMEM_GC_CONCURRENT=1 (or GOMEM_BARRIER=explicit); the call is a no-op.
BDW_API void GC_enable_incremental(void) {
}
BDW_API int GC_is_incremental_mode(void) {
  gm_stats_t s;
  gm_stats(&s);
  return (int)s.gc_concurrent;
}

BDW_API int GC_expand_hp(size_t bytes) {
  gm_lock_stoppable(&heap_lock);
  expanded = bytes > UINT64_MAX / 2 - expanded ? UINT64_MAX / 2 : expanded + bytes;
  gm_unlock_raw(&heap_lock);
  apply_heap_size(); // (or at GC_init)
  return 1;
}
BDW_API void GC_set_max_heap_size(size_t n) {
  st.max_heap = (long)n;
  if (n != 0)
    gm_set_memory_limit((int64_t)n);
}

// ---------------------------------------------------------------------------
// Roots

BDW_API void GC_add_roots(void *lo, void *hi) {
  bdw_init();
  if (gm_add_roots(lo, hi) != 0)
    bdw_warn("GC Warning: cannot add roots at %p\n", (uintptr_t)lo);
}
BDW_API void GC_remove_roots(void *lo, void *hi) {
  gm_remove_roots(lo, hi);
}
BDW_API void GC_clear_roots(void) {
  bdw_init();
  roots_clear_extra();
}
// (GC_no_dls: gomem scans every library's data anyway; scanning more than
// asked only keeps more alive)
BDW_API void GC_set_no_dls(int v) {
  GC_no_dls = v;
}
BDW_API int GC_get_no_dls(void) {
  return GC_no_dls;
}

// GC_push_all and GC_push_conditional: inside GC_push_other_roots, a root
// range of this collection.
BDW_API void GC_push_all(void *lo, void *hi) {
  if (push_fn != NULL)
    push_fn(push_ctx, (uintptr_t)lo, (uintptr_t)hi);
}
BDW_API void GC_push_conditional(void *lo, void *hi, int all) {
  (void)all;
  GC_push_all(lo, hi);
}
BDW_API void GC_push_all_eager(void *lo, void *hi) {
  GC_push_all(lo, hi);
}
BDW_API void GC_push_all_stack(void *lo, void *hi) {
  GC_push_all(lo, hi);
}
// GC_set_mark_bit, inside GC_push_other_roots: the object at p lives
// (and, conservatively, what it points to).
BDW_API void GC_set_mark_bit(const void *p) {
  if (push_fn == NULL)
    return;
  if (set_bits_n == set_bits_cap) {
    size_t cap = set_bits_cap ? set_bits_cap * 2 : 512;
    uintptr_t *t = os_reserve(cap * sizeof *t, 0);
    if (t == NULL)
      gm_fatal("GC_set_mark_bit: out of memory", (void *)p);
    if (set_bits != NULL) {
      memcpy(t, set_bits, set_bits_n * sizeof *t);
      os_unmap(set_bits, set_bits_cap * sizeof *t);
    }
    set_bits = t, set_bits_cap = cap;
  }
  set_bits[set_bits_n++] = (uintptr_t)p;
}

BDW_API void GC_set_push_other_roots(bdw_push_fn fn) {
  GC_push_other_roots = fn;
}
BDW_API bdw_push_fn GC_get_push_other_roots(void) {
  return GC_push_other_roots;
}

// GC_is_visible: gomem scans every writable segment, stack and root range;
// an address in none of them would not be seen.
BDW_API void *GC_is_visible(void *p) {
  return p;
}

// ---------------------------------------------------------------------------
// Threads. gomem registers a thread at its first GC allocation and stops
// registered threads with its own signal; these calls only make it earlier
// or later.

struct GC_stack_base {
  void *mem_base;
};
typedef void *(*bdw_stack_fn)(struct GC_stack_base *sb, void *arg);
typedef void *(*bdw_fn)(void *arg);

BDW_API void GC_allow_register_threads(void) {
  bdw_init();
  atomic_store(&allow_register, 1);
}
BDW_API int GC_register_my_thread(const struct GC_stack_base *sb) {
  (void)sb;
  if (!atomic_load(&allow_register)) {
    fprintf(stderr, "GC_register_my_thread: GC_allow_register_threads was not called\n");
    abort();
  }
  bool known = gm_tls_m.thread != NULL && gm_tls_m.thread->bounded;
  if (gm_thread_attach() != 0)
    return BDW_NO_THREADS;
  return known ? BDW_DUPLICATE : BDW_SUCCESS;
}
BDW_API int GC_unregister_my_thread(void) {
  gm_thread_detach();
  return BDW_SUCCESS;
}
BDW_API int GC_thread_is_registered(void) {
  return gm_tls_m.thread != NULL && gm_tls_m.thread->bounded;
}
BDW_API int GC_get_stack_base(struct GC_stack_base *sb) {
  pthread_attr_t a;
  void *addr;
  size_t size;
  if (pthread_getattr_np(pthread_self(), &a) != 0)
    return BDW_UNIMPLEMENTED;
  pthread_attr_getstack(&a, &addr, &size);
  pthread_attr_destroy(&a);
  sb->mem_base = (char *)addr + size;
  return BDW_SUCCESS;
}
BDW_API void *GC_call_with_stack_base(bdw_stack_fn fn, void *arg) {
  struct GC_stack_base sb;
  if (GC_get_stack_base(&sb) != BDW_SUCCESS)
    sb.mem_base = __builtin_frame_address(0);
  return fn(&sb, arg);
}
// (a blocking thread stays registered: gomem's stop signal interrupts any
// system call, which the C library restarts)
BDW_API void *GC_do_blocking(bdw_fn fn, void *arg) {
  return fn(arg);
}
BDW_API void *GC_call_with_gc_active(bdw_fn fn, void *arg) {
  return fn(arg);
}
// GC_call_with_alloc_lock: fn runs while no collection can start or run.
BDW_API void *GC_call_with_alloc_lock(bdw_fn fn, void *arg) {
  bdw_init();
  gc_lock_cycle();
  void *r = fn(arg);
  gc_unlock_cycle();
  return r;
}
BDW_API int GC_get_suspend_signal(void) {
  return STOP_SIGNAL;
}
BDW_API int GC_get_thr_restart_signal(void) {
  return STOP_SIGNAL; // (gomem resumes threads without a second signal)
}

// (as Boehm's, a thread created through it allows explicit registration)
BDW_API int GC_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *),
                              void *arg) {
  bdw_init();
  atomic_store(&allow_register, 1);
  return pthread_create(t, a, fn, arg);
}
BDW_API int GC_pthread_join(pthread_t t, void **ret) {
  return pthread_join(t, ret);
}
BDW_API int GC_pthread_detach(pthread_t t) {
  return pthread_detach(t);
}
BDW_API int GC_pthread_cancel(pthread_t t) {
  return pthread_cancel(t);
}
BDW_API void GC_pthread_exit(void *ret) {
  pthread_exit(ret);
}
// GC_pthread_sigmask never blocks the stop signal.
BDW_API int GC_pthread_sigmask(int how, const sigset_t *set, sigset_t *old) {
  sigset_t s;
  if (set != NULL && how != SIG_UNBLOCK) {
    s = *set;
    sigdelset(&s, STOP_SIGNAL);
    set = &s;
  }
  return pthread_sigmask(how, set, old);
}
BDW_API void *GC_dlopen(const char *path, int mode) {
  bdw_init();
  return dlopen(path, mode);
}

// ---------------------------------------------------------------------------
// Settings kept for their getters (gomem's pacer has no use for them; the
// free-space divisor, which it has, follows)

#define PAIR(name, field, type)                                                                    \
  BDW_API void GC_set_##name(type v) {                                                             \
    st.field = (long)v;                                                                            \
  }                                                                                                \
  BDW_API type GC_get_##name(void) {                                                               \
    return (type)st.field;                                                                         \
  }
PAIR(full_freq, full_freq, int)
PAIR(time_limit, time_limit, unsigned long)
PAIR(max_retries, max_retries, unsigned long)
PAIR(dont_expand, dont_expand, int)
PAIR(force_unmap_on_gcollect, force_unmap, int)
PAIR(pages_executable, pages_executable, int)
PAIR(max_prior_attempts, max_prior_attempts, int)
PAIR(min_bytes_allocd, min_bytes_allocd, size_t)
PAIR(rate, rate, int)
PAIR(dont_precollect, dont_precollect, int)
PAIR(find_leak, find_leak, int)

// GC_set_free_space_divisor: GOGC = 200 / divisor (see apply_heap_size),
// unless GOMEM_GOGC is set; kept for GC_enable if collection is disabled.
BDW_API void GC_set_free_space_divisor(unsigned long v) {
  st.free_space_divisor = (long)v;
  if (!gc_is_inited() || gm_opt.gogc_set)
    return; // (GC_init applies it)
  gm_lock_stoppable(&disable_lock);
  if (st.disable_count > 0 || GC_dont_gc)
    saved_percent = divisor_percent((long)v);
  else
    gm_set_gc_percent(divisor_percent((long)v));
  gm_unlock_raw(&disable_lock);
}
BDW_API unsigned long GC_get_free_space_divisor(void) {
  return (unsigned long)st.free_space_divisor;
}
BDW_API void GC_set_handle_fork(int v) {
  st.handle_fork = v; // (gomem always handles fork)
}
BDW_API void GC_set_all_interior_pointers(int v) {
  GC_all_interior_pointers = v != 0;
}
BDW_API int GC_get_all_interior_pointers(void) {
  return GC_all_interior_pointers;
}
BDW_API void GC_set_finalize_on_demand(int v) {
  GC_finalize_on_demand = v != 0;
}
BDW_API int GC_get_finalize_on_demand(void) {
  return GC_finalize_on_demand;
}
BDW_API void GC_set_java_finalization(int v) {
  GC_java_finalization = v != 0; // (gomem keeps what a queued object points to either way)
}
BDW_API int GC_get_java_finalization(void) {
  return GC_java_finalization;
}
BDW_API void GC_set_dont_gc(int v) {
  GC_dont_gc = v;
}
BDW_API int GC_get_dont_gc(void) {
  return GC_dont_gc;
}
BDW_API void GC_set_finalizer_notifier(bdw_void_fn fn) {
  st.notifier = fn;
}
BDW_API bdw_void_fn GC_get_finalizer_notifier(void) {
  return st.notifier;
}
BDW_API void GC_set_start_callback(bdw_void_fn fn) {
  st.start_cb = fn; // (called before explicit collections)
}
BDW_API bdw_void_fn GC_get_start_callback(void) {
  return st.start_cb;
}
BDW_API int GC_get_parallel(void) {
  return (int)gc_nworkers() > 1;
}
BDW_API void GC_set_markers_count(unsigned n) {
  (void)n; // (gomem: GOMEM_GC_PROCS)
}
BDW_API void GC_start_mark_threads(void) {
  // (gomem starts its mark helpers at the first collection)
}
// GC_register_displacement: gomem honours every interior pointer already.
BDW_API void GC_register_displacement(size_t offset) {
  (void)offset;
}
