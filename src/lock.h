// lock.h: the bottom layer of gomem: critical sections ("this thread must not
// be stopped here") and every lock, with its rank. Twin of Go's
// acquirem/releasem (runtime2.go), lock_futex.go and lockrank.go.
//
// Critical sections. The collector stops threads with a signal. A thread
// must never be stopped while it holds an allocator lock or is half-way
// through changing a span, or the collector would wait on that lock or see
// torn state. Such code runs inside m_acquire()/m_release(): a stop signal
// that arrives while gm_tls_m.locks > 0 is only noted (stop_pending), and the
// thread parks when it leaves its outermost critical section, through the
// hook the stopper registered (lock_set_deferred_stop). Rule: a critical
// section never waits for anything a stopped thread may hold.
//
// Locks. Every mutex is a gm_mutex_t with a rank (enum lock_rank below, the
// one place the lock order is written): a thread holding locks may take
// another only if its rank is higher than every rank it holds, or equal for
// the ranks whose locks come in arrays (several classes' central locks, the
// fixalloc locks), taken in address order. Debug builds (GM_DEBUG >= 1) check
// every acquisition and abort naming both locks (lock_rank_fail). Three ways
// to take a lock:
//   gm_lock            allocator locks: enters a critical section first, so
//                      the holder is never stopped while holding it.
//   gm_lock_stoppable  collector locks that a thread stopping the world may
//                      hold while it is stopped: the waiter stays stoppable
//                      (under TSan, which delivers signals only at some calls,
//                      by polling). Never inside a critical section.
//   gm_lock_raw        locks of gomem's own threads (never stopped) and of the
//                      fork handlers.
//
// Locking: this unit takes no lock of its own.
#ifndef GOMEM_LOCK_H
#define GOMEM_LOCK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "gmcore.h"

// The lock order: a lock may be taken while holding only locks of lower rank.
enum lock_rank {
  RANK_NONE = 0,
  RANK_FORK,       // lock.c fork_lock: one fork handler at a time
  RANK_GC_INIT,    // mgc.c gc_init_lock: collector initialisation
  RANK_BDW_GOGC,   // bdw.c disable_lock: GC_disable's count (held across GOGC changes)
  RANK_GC,         // mgc.c gc_lock: one collection at a time (held for the cycle)
  RANK_FIN_WAIT,   // mfinal.c wait_lock: the finalizer thread's sleep
  RANK_SWEEPER,    // mgcsweep.c sweeper_lock: the sweeper thread's work count
  RANK_SWEEP_GATE, // mgcsweep.c sweep_gate: the collector keeps the sweeper out
  RANK_THREADS,    // threads.c threads_lock: the registry (held from stop to start)
  RANK_WORK,       // mgcwork.c work_lock: mark helpers' start and end
  RANK_WBUF,       // mgcwork.c wb_lock: work buffer lists
  RANK_FIN,        // mfinal.c fin_lock: finalizer table and queue
  RANK_CLEANUP,    // mcleanup.c cleanup_lock: weak handles and cleanups
  RANK_POOL,       // pool.c pools_lock: the pools and their locals' lists
  RANK_PENDING,    // interpose.c pending_lock: start blocks of new threads
  RANK_EXTRA,      // roots.c extra_lock: gm_add_roots ranges
  RANK_BDW,        // bdw_alloc.c bdw_lock: libgc.so.1's uncollectable objects
  RANK_BDW_KINDS,  // bdw_kinds.c kinds_lock: libgc.so.1's kinds and typed objects
  RANK_GCENTRAL,   // mgcsweep.c gc_central[].lock (array)
  RANK_LARGE,      // mgcsweep.c large_lock: large GC spans
  RANK_SHARED,     // mcache.c shared_lock: caches of threads sharing TLS
  RANK_REGISTRY,   // mcache.c registry_lock: every thread's cache
  RANK_MCENTRAL,   // mcentral.c gm_central[].lock (array)
  RANK_MHEAP,      // mheap.c mheap.lock: pages, arenas
  RANK_SCAV,       // mgcscavenge.c scav_lock: the scavenger's wake-ups
  RANK_FIXALLOC,   // mfixalloc.c: each fixalloc's lock (array of leaves)
  RANK_CORO,       // coro.c co_lock: the registry of coroutines
  RANK_STACK,      // stack.c stack_lock: coroutine stack regions and free slots
  RANK_SECURE,     // secure.c lq_lock: the hardened build's large-object quarantine
  RANK_PROF_DUMP,  // mprof.c dump_lock: one profile written at a time
  RANK_POOL_LOCAL, // pool.c: each pool local's lock (a leaf)
  RANK_PROF,       // mprof.c prof_lock: heap profile records (a leaf)
  RANK_BDW_HEAP,   // bdw.c heap_lock: GC_expand_hp's sizes (a leaf)
  RANK_COUNT
};

typedef struct gm_mutex {
  pthread_mutex_t m;
  uint8_t rank; // enum lock_rank (immutable)
} gm_mutex_t;

#define GM_MUTEX_INIT(r)                                                                           \
  { .m = PTHREAD_MUTEX_INITIALIZER, .rank = (r) }

// gm_m_t: what this unit knows of the calling thread.
typedef struct gm_m {
  int locks;                 // > 0: inside a critical section (this thread only)
  volatile int stop_pending; // set by the stop signal handler while locks > 0
  struct gthread *thread;    // the collector's record of this thread, or NULL
  bool internal;             // one of gomem's own threads (never stopped)
  bool stopping;             // this thread holds the world stopped (stw.c)
#if GM_DEBUG > 0
  // Lock ranks held (lock_rank_acquire): how many locks of each rank, and the
  // highest address held at each.
  uint8_t held[RANK_COUNT];
  const gm_mutex_t *last[RANK_COUNT];
  uint8_t top; // highest rank held
#endif
} gm_m_t;

extern __thread gm_m_t gm_tls_m __attribute__((tls_model("initial-exec")));

// lock_set_deferred_stop registers the function that parks a thread whose
// stop signal arrived inside a critical section (stw.c).
void lock_set_deferred_stop(void (*fn)(void));
void lock_deferred_stop(void);

GM_INLINE void m_acquire(void) {
  gm_tls_m.locks++;
  atomic_signal_fence(memory_order_seq_cst);
}

GM_INLINE void m_release(void) {
  atomic_signal_fence(memory_order_seq_cst);
  if (--gm_tls_m.locks == 0 && unlikely(gm_tls_m.stop_pending))
    lock_deferred_stop();
}

#if GM_DEBUG > 0
void lock_rank_disable(void); // threads share TLS (mcache.c): ranks cannot be told apart
void lock_rank_acquire(const gm_mutex_t *l);
void lock_rank_release(const gm_mutex_t *l);
bool lock_rank_held_any(void);
#else
GM_INLINE void lock_rank_disable(void) {}
GM_INLINE void lock_rank_acquire(const gm_mutex_t *l) {
  (void)l;
}
GM_INLINE void lock_rank_release(const gm_mutex_t *l) {
  (void)l;
}
#endif

GM_INLINE void gm_lock(gm_mutex_t *l) {
  m_acquire();
  lock_rank_acquire(l);
  pthread_mutex_lock(&l->m);
}

GM_INLINE void gm_unlock(gm_mutex_t *l) {
  pthread_mutex_unlock(&l->m);
  lock_rank_release(l);
  m_release();
}

GM_INLINE void gm_lock_raw(gm_mutex_t *l) {
  lock_rank_acquire(l);
  pthread_mutex_lock(&l->m);
}

GM_INLINE void gm_unlock_raw(gm_mutex_t *l) {
  pthread_mutex_unlock(&l->m);
  lock_rank_release(l);
}

// gm_lock_stoppable: see the top of the file. Released with gm_unlock_raw.
void gm_lock_stoppable(gm_mutex_t *l);

// gm_mutex_reinit: in a fork child, a lock the parent's fork handler held.
void gm_mutex_reinit(gm_mutex_t *l);

// Fork. Every lock is registered once (lock_fork_register; fixalloc_init
// registers its own) and the fork handlers take all of them in rank order
// (those up to RANK_GC stoppably: their holders may stop the world), so that
// the child, where only the forking thread survives, finds every structure
// consistent; the child re-initialises them. Registration is lock-free and
// may happen at any time.
void lock_fork_register(gm_mutex_t *l);

// Leaf locks that come and go (a pool's per-thread locks) cannot be
// registered one by one: lock_fork_leaves installs the functions that take
// them all after every registered lock (prepare: never waits for anything
// else, as no lock is taken while a leaf is held), release them (parent) and
// re-initialise them (child). One set; installed once.
typedef struct lock_fork_leaves {
  void (*prepare)(void), (*parent)(void), (*child)(void);
} lock_fork_leaves_t;
void lock_fork_leaves(const lock_fork_leaves_t *fns);
void lock_fork_prepare(void);
void lock_fork_parent(void);
void lock_fork_child(void);

// cpu_relax: a spin-wait hint.
GM_INLINE void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ volatile("yield" ::: "memory");
#else
  atomic_signal_fence(memory_order_seq_cst);
#endif
}

#endif // GOMEM_LOCK_H
