// gomem.h: gomem's public API.
//
// gomem is Go's runtime memory manager rebuilt in C: size-classed spans of
// 8 KiB pages, a lock-free per-thread cache (mcache), per-class central lists
// (mcentral), one heap of 64 MiB arenas with Go's radix-tree page allocator,
// and a background scavenger that returns unused memory to the OS. On the
// same heap, gm_alloc offers garbage-collected memory (Go's collector).
//
// Linking libgomem (or LD_PRELOAD=libgomem.so) replaces malloc, free and the
// rest of the C allocator; the gm_* names below are the same functions under
// gomem's own names, for programs that want to call them explicitly.
#ifndef GOMEM_H
#define GOMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GM_VERSION_MAJOR 0
#define GM_VERSION_MINOR 1

// ---------------------------------------------------------------------------
// Allocation (malloc-compatible semantics: NULL and errno = ENOMEM on failure)

void *gm_malloc(size_t size);
void *gm_calloc(size_t count, size_t size);
void *gm_realloc(void *p, size_t size);
void *gm_reallocarray(void *p, size_t count, size_t size);
void gm_free(void *p);
int gm_posix_memalign(void **out, size_t align, size_t size);
void *gm_aligned_alloc(size_t align, size_t size);
void *gm_memalign(size_t align, size_t size);
size_t gm_usable_size(const void *p);

// gm_owns reports whether p points into gomem's heap at an object slot of a
// span in use (start or interior): true for every live object; a freed small
// object's slot stays "owned" while its span is in use (a freed large object
// is not owned). Cheap and safe to call on any address.
int gm_owns(const void *p);

// ---------------------------------------------------------------------------
// Memory return

// gm_release_memory returns every free page of the heap to the OS now and
// returns the number of bytes released (Go's debug.FreeOSMemory). The calling
// thread's cache is flushed first; other threads flush theirs at their next
// cache refill. malloc_trim(0) does the same.
size_t gm_release_memory(void);

// gm_set_memory_limit sets a soft limit, in bytes, on the memory gomem holds
// (its in-use pages, free pages not yet returned to the OS, and its
// metadata) and returns the previous one; a negative value only returns it
// (Go's debug.SetMemoryLimit). INT64_MAX, the default, means none;
// GOMEM_MEMLIMIT sets the initial value (bytes, or with a suffix B, KiB,
// MiB, GiB or TiB, as Go's GOMEMLIMIT). Above 95% of the limit the
// scavenger returns free pages at once; with the collector, collections
// start when the garbage-collected heap would take the memory held to the
// limit, even with GOGC off. Collections the limit alone asks for take at
// most half of the time (Go's limiter): a program whose live heap exceeds
// the limit runs on over it, slowed, instead of thrashing.
int64_t gm_set_memory_limit(int64_t limit);

// ---------------------------------------------------------------------------
// Garbage-collected heap (Go's tri-color mark-sweep, with conservative roots)
//
// GC objects are never freed by the program: when no pointer to them (to
// their start or their inside) is left in a root or in another reachable GC
// object, a later collection reclaims them. Roots are the stacks and saved
// registers of every registered thread, the data and bss segments of the
// program and of every loaded shared object, and ranges added with
// gm_add_roots. Memory from malloc is NOT scanned: a pointer to a GC object
// kept only in malloc'ed memory does not keep it alive (add the range as a
// root, or allocate the holder with gm_alloc).
//
// Threads created with pthread_create after gomem is loaded are registered
// automatically, and so is any thread that allocates from gomem; a thread
// that holds GC pointers without ever allocating calls gm_thread_attach.
// Collections stop registered threads with a signal (SIGPWR): system calls
// that the signal interrupts are restarted (SA_RESTART) and errno is kept,
// but calls that Linux never restarts (nanosleep, poll, epoll_wait, select,
// ...) may return early with EINTR, as under any signal.

// gm_alloc returns n bytes of zeroed memory that may hold pointers to other
// GC objects (it is scanned), or NULL with errno = ENOMEM.
void *gm_alloc(size_t n);

// gm_alloc_noscan returns n bytes of zeroed memory that holds no pointers
// (never scanned: what it points to is not kept alive). Objects of 16 bytes
// or less may be packed together into 16-byte blocks (Go's tiny allocator):
// such an object's size is not recorded, so gm_usable_size returns 0 for it,
// gm_free drops only its finalizer (the block is reclaimed when none of its
// objects is reachable), gm_realloc copies up to the end of its block, and a
// finalizer set on it runs once its whole block is unreachable.
void *gm_alloc_noscan(size_t n);

// gm_collect runs a full, blocking collection (Go's runtime.GC).
void gm_collect(void);

// The explicit write barrier (GOMEM_BARRIER=explicit): a program that
// stores every pointer into a GC object with these lets the collector mark
// beside it without page protection (no kernel write tracking needed).
// gm_store(slot, ptr) is *slot = ptr; gm_store_bulk copies n pointers like
// memmove. Stores into GC memory by other means (memcpy, read(2)) are then
// the program's to route through them. Without that mode they are plain
// stores, whatever the collector does.
// gm_store is inline: while no cycle marks, a load, a predicted branch and
// the store (define GOMEM_NO_INLINE_STORE before including this header for
// the function; (gm_store)(slot, ptr) and &gm_store always name it).
void gm_store(void **slot, void *ptr);
void gm_store_bulk(void **dst, void *const *src, size_t n);

// Not API: what the inline gm_store uses. gm_store_on_ is nonzero while a
// cycle marks; gm_store_record_ records a stored pointer (not NULL) then.
// (volatile: no compiler may read it once for several stores, say before a
// loop: a cycle may start between two of them.)
extern volatile int gm_store_on_;
void gm_store_record_(void *ptr);
#ifndef GOMEM_NO_INLINE_STORE
static inline void gm_store_inline_(void **slot, void *ptr) {
  if (__builtin_expect(__atomic_load_n(&gm_store_on_, __ATOMIC_RELAXED) != 0, 0))
    gm_store_record_(ptr);
  *slot = ptr;
}
#define gm_store(slot, ptr) gm_store_inline_((slot), (ptr))
#endif

// gm_free (above) also takes GC objects: the object is released at once if
// no other thread is allocating from its span; otherwise its contents are
// cleared (it then keeps nothing alive) and the collector reclaims it.
// Tiny objects: see gm_alloc_noscan. A second gm_free of the same object is
// reported (but for tiny objects, and for an object whose span another thread
// is allocating from, freed by threads that are not).
// gm_realloc of a GC object returns a GC object of the same kind.

// gm_set_finalizer arranges for fn(p, arg) to run once, on gomem's finalizer
// thread, after p (the start of a GC object, or a tiny object) becomes
// unreachable. p, what it points to and arg stay valid until fn has run; p
// is reclaimed by a later collection if it is still unreachable then (fn may
// make it reachable again). fn == NULL removes p's finalizer. A finalizer
// reachable from another finalizable object runs only after that one's (Go's
// order).
void gm_set_finalizer(void *p, void (*fn)(void *obj, void *arg), void *arg);

// Weak pointers (Go's weak.Pointer). gm_weak_make(p), p the start of a GC
// object (or a tiny object), returns p's weak handle, or NULL (errno EINVAL
// if p is not one, ENOMEM): gm_weak_get(w) gives p while p is reachable,
// and NULL from the collection that finds p unreachable on, for every
// handle to p, even if a finalizer makes p reachable again. Handles are
// canonical: while a handle to p is alive, gm_weak_make(p) returns it, so
// handles to one object compare equal. A handle is itself a small GC object
// that does not keep p alive: keep it where the collector looks (a GC
// object, a stack, a global, a gm_add_roots range), as any GC pointer.
// gm_free(p) clears p's handle. A tiny object's handle is cleared when its
// whole block is unreachable (see gm_alloc_noscan).
typedef struct gm_weak *gm_weak_t;
gm_weak_t gm_weak_make(void *p);
void *gm_weak_get(gm_weak_t w);

// Cleanups (Go's runtime.AddCleanup). gm_add_cleanup arranges for fn(arg) to
// run once, on gomem's finalizer thread, after p (as for gm_weak_make)
// becomes unreachable; an object may have several, and they never bring p
// back (fn gets arg, not p). arg is kept alive until fn has run: if arg
// reaches p, p never becomes unreachable and fn never runs. If p also has a
// finalizer, its cleanups run only once the finalizer has run and p is
// unreachable again. Returns a handle for gm_cancel_cleanup, or 0 (errno
// EINVAL or ENOMEM). gm_cancel_cleanup of a cleanup that ran, or was
// cancelled, does nothing. gm_free(p) drops p's cleanups, as it drops its
// finalizer.
typedef unsigned long long gm_cleanup_t;
gm_cleanup_t gm_add_cleanup(void *p, void (*fn)(void *arg), void *arg);
void gm_cancel_cleanup(gm_cleanup_t c);

// Pools (Go's sync.Pool): a cache of GC objects for reuse, e.g. per-request
// scratch buffers. gm_pool_new makes a pool (NULL, errno ENOMEM, on
// failure); pools live for the whole process. gm_pool_get returns an object
// that was put back, else new_fn(arg), else gm_alloc(size) if new_fn is
// NULL; the object is as it was put (not cleared). gm_pool_put gives an
// object to the pool; the pool may drop it at any time. Each collection
// empties the pool in two steps (Go 1.13's victim cache), so an object
// unused for two cycles is gone and a pool never keeps memory alive for
// long. Get and put are thread-safe and take no lock on the fast path (a
// per-thread slot), other threads' parts being reached when one's own is
// empty.
typedef struct gm_pool gm_pool_t;
gm_pool_t *gm_pool_new(size_t size, void *(*new_fn)(void *arg), void *arg);
void *gm_pool_get(gm_pool_t *p);
void gm_pool_put(gm_pool_t *p, void *x);

// Heap profiles (Go's MemProfile, in pprof's format). With a rate set, one
// allocation in about `rate` bytes (drawn at random, so the profile is
// unbiased) is sampled with its call stack. gm_set_profile_rate sets the
// rate in bytes (Go's MemProfileRate: 524288 is Go's default; 1 samples every
// allocation; 0, the default, turns sampling off) and returns the old one.
// gm_heap_profile_write writes a gzipped pprof protobuf of the samples to fd
// (`go tool pprof -top prog file`): alloc_objects, alloc_space,
// inuse_objects and inuse_space, scaled to estimate all allocations as Go
// scales them. Returns 0, or -1 (errno). The environment variable
// GOMEM_HEAPPROFILE=path sets the rate to 512 KiB (GOMEM_PROFILE_RATE
// overrides it) and writes the profile to path at exit; with
// GOMEM_HEAPPROFILE_SIGNAL=n, also to path.1, path.2, ... at the next sampled
// allocation after each signal n. Samples come from malloc, calloc and
// realloc's new blocks and from gm_alloc; a sampled object takes a span of
// its own (8 KiB at least: about 1.6% more memory at 512 KiB if every sample
// were tiny; in the hardened build, a large object with its guard pages).
int64_t gm_set_profile_rate(int64_t bytes);
int gm_heap_profile_write(int fd);

// gm_keep_alive(p) (Go's runtime.KeepAlive): p is reachable until this call,
// however the compiler arranges the caller's variables; used after the last
// use of an object whose cleanup or finalizer must not run early.
void gm_keep_alive(const void *p);

// gm_add_roots makes [lo, hi) a root range: every aligned word in it is
// scanned at each collection. gm_remove_roots removes a range added with the
// same lo (hi is ignored). Returns 0, or -1 with errno = ENOMEM.
int gm_add_roots(void *lo, void *hi);
void gm_remove_roots(void *lo, void *hi);

// gm_set_gc_percent sets GOGC: a collection starts when the heap grows by
// this percentage over what the last collection found live (minimum goal
// 4 MiB * GOGC/100); any negative value turns automatic collection off (and
// is returned as -1 later). Returns the previous value.
// The environment variable GOMEM_GOGC sets the initial value (default 100).
int gm_set_gc_percent(int percent);

// gm_thread_attach registers the calling thread with the collector (its
// stack and registers become roots); gm_thread_detach undoes it (before the
// thread exits, or while it holds no GC pointers). Returns 0, or -1.
int gm_thread_attach(void);
void gm_thread_detach(void);

// ---------------------------------------------------------------------------
// Coroutines (goroutine-style stacks for C; x86_64).
//
// gm_co_create makes a coroutine that will run fn(arg) on a stack of its own
// of at least stack_size bytes (0: 64 KiB; classes of 64 KiB, 256 KiB, 1 MiB
// and 8 MiB), of which only the pages it touches are resident: an idle
// coroutine costs about 4 KiB. Returns NULL with errno EINVAL (no fn, or
// more than 8 MiB) or ENOMEM (no address space, or, on kernels before 6.13
// whose guard pages split mappings, half of vm.max_map_count reached).
// Running past the stack ends the process with a message naming the
// coroutine, never silently.
//
// gm_co_resume runs co on the calling thread until it calls gm_co_yield or
// fn returns, and returns the value given to gm_co_yield (NULL when fn
// returned: gm_co_done then says so). value is what that gm_co_yield
// returns inside co (the first resume's value is dropped: pass data through
// arg). Coroutines may resume others (nested); gm_co_yield returns to the
// resumer. gm_co_self is the running coroutine (NULL on a thread's own
// stack).
//
// A coroutine belongs to the thread that created it: only that thread may
// resume or destroy it (otherwise the process ends with a message).
// gm_co_destroy frees a coroutine that is suspended or finished; the frames
// of a suspended one are dropped without running anything. Resuming or
// destroying it again ends the process with a message while its slot is
// still cached (a handle outliving its coroutine is the program's fault,
// as a pointer outliving free() is). Its stack goes
// back to a per-thread cache, so the next gm_co_create is cheap.
//
// The collector scans every live coroutine's stack (objects reachable only
// from a suspended coroutine live), and after each collection gives back the
// pages of stacks that shrank to under a quarter of their size. Switches
// save the callee-saved registers and the stack pointer only: coroutines
// share the thread's floating-point environment and signal mask.
typedef struct gm_co gm_co_t;
gm_co_t *gm_co_create(void (*fn)(void *arg), void *arg, size_t stack_size);
void *gm_co_resume(gm_co_t *co, void *value);
void *gm_co_yield(void *value);
bool gm_co_done(const gm_co_t *co);
gm_co_t *gm_co_self(void);
void gm_co_destroy(gm_co_t *co);

// ---------------------------------------------------------------------------
// Statistics, modelled on Go's runtime.MemStats.

#define GM_NUM_CLASSES 68 // size classes, including class 0 (large objects)

typedef struct gm_class_stats {
  uint32_t size;    // object size of the class (0: large objects)
  uint64_t mallocs; // objects allocated (see note on gm_stats_t)
  uint64_t frees;   // objects freed
} gm_class_stats_t;

typedef struct gm_stats {
  uint64_t heap_alloc;    // bytes in allocated objects (object sizes)
  uint64_t heap_sys;      // bytes of address space reserved for the heap
  uint64_t heap_idle;     // bytes in free pages (some of them released)
  uint64_t heap_inuse;    // bytes in in-use spans
  uint64_t heap_released; // bytes of free pages returned to the OS
  uint64_t heap_objects;  // allocated objects
  uint64_t mallocs;       // cumulative objects allocated
  uint64_t frees;         // cumulative objects freed
  uint64_t meta_sys;      // bytes of metadata (spans, caches, arena maps)
  uint64_t num_threads;   // live thread caches
  // Small objects are counted when a thread's cache reserves them (up to 64
  // slots at a time): mallocs may run ahead by up to 63 objects per size
  // class per thread; frees are counted when they happen.
  gm_class_stats_t by_size[GM_NUM_CLASSES];

  // Garbage collector. Counters are zero until the first gm_alloc;
  // next_gc is the current goal (0 while GOGC is off), gc_percent the
  // current GOGC.
  uint64_t gc_heap_alloc;  // bytes of GC objects allocated and not yet swept away
  uint64_t gc_heap_live;   // bytes marked live by the last collection
  uint64_t next_gc;        // heap goal: the next collection starts here (bytes)
  uint64_t num_gc;         // completed collections
  uint64_t num_forced_gc;  // of which started by gm_collect
  uint64_t num_limit_gc;   // of which started by the memory limit (not GOGC)
  uint64_t pause_total_ns; // sum of stop-the-world pauses
  uint64_t pause_ns[256];  // recent pauses, circular: the latest at (num_gc + 255) % 256
  uint64_t last_gc_ns;     // when the last collection ended (CLOCK_MONOTONIC ns)
  double gc_cpu_fraction;  // share of the process's CPU time spent in the collector
  int64_t gc_percent;      // current GOGC (-1: off)
  int64_t memory_limit;    // the soft memory limit (INT64_MAX: none)

  // Marking beside the program (GOMEM_GC_CONCURRENT=1; zero otherwise).
  int64_t gc_concurrent;    // 1 if cycles mark beside the program
  uint64_t last_stop1_ns;   // the last such cycle's first stop (roots greyed)
  uint64_t last_mark_ns;    // its marking beside the program
  uint64_t last_stop2_ns;   // its last stop (mark termination)
  uint64_t assist_total_ns; // time allocating threads spent in mark assists
  uint64_t assist_scanned;  // bytes they scanned

  // Coroutines (gm_co_create).
  uint64_t co_count;       // coroutines not destroyed
  uint64_t co_stack_bytes; // bytes of their stacks resident (measured after each collection)
  uint64_t co_shrinks;     // stacks shrunk after collections

  // Marking beside the program, in total: its clock, and the background
  // marker's CPU time then as Go's dedicated or fractional worker (its share
  // is a quarter of the CPUs) and as Go's idle worker (a core was idle).
  uint64_t mark_total_ns;
  uint64_t mark_background_ns;
  uint64_t mark_idle_ns;
  // (New fields are added here, at the end: see gm_stats.)
} gm_stats_t;

// gm_stats fills *st. Safe from any thread at any time; counters are read one
// by one, so a snapshot taken while other threads allocate is approximate.
// gm_stats is a macro passing the size of the caller's gm_stats_t: a
// program built against an older header gets the fields it knows, and the
// memory past them is not touched (the function gm_stats, which programs
// built before gm_stats_sized call, fills the fields up to co_shrinks).
void gm_stats_sized(gm_stats_t *st, size_t size);
void(gm_stats)(gm_stats_t *st);
#define gm_stats(st) gm_stats_sized((st), sizeof *(st))

// gm_print_stats_fd writes a readable summary to file descriptor fd
// (GOMEM_STATS=1 does this at exit on stderr).
void gm_print_stats_fd(int fd);

#ifdef __cplusplus
}
#endif

#endif // GOMEM_H
