// lock.c: the lock-rank checker and the stoppable wait (see lock.h).
//
// Invariants (debug builds, checked at every acquisition):
//   - a thread takes a lock only with every lock it holds of a lower rank,
//     or of the same rank for array ranks (RANK_GCENTRAL, RANK_MCENTRAL,
//     RANK_FIXALLOC) at a lower address;
//   - gm_lock_stoppable is never called inside a critical section.
#include <string.h>
#include <time.h>

#include "lock.h"

__thread gm_m_t gm_tls_m __attribute__((tls_model("initial-exec")));

// deferred_stop: stw.c's park-now function (written once, before the first
// stop signal can arrive; read by any thread afterwards).
static void (*_Atomic deferred_stop)(void);

void lock_set_deferred_stop(void (*fn)(void)) {
  atomic_store_explicit(&deferred_stop, fn, memory_order_release);
}

GM_NOINLINE void lock_deferred_stop(void) {
  void (*fn)(void) = atomic_load_explicit(&deferred_stop, memory_order_acquire);
  if (fn != NULL)
    fn();
  else
    gm_tls_m.stop_pending = 0;
}

// ---------------------------------------------------------------------------
// Lock ranks

#if GM_DEBUG > 0
static const char *const rank_names[RANK_COUNT] = {
    [RANK_NONE] = "none",
    [RANK_FORK] = "fork_lock",
    [RANK_GC_INIT] = "gc_init_lock",
    [RANK_BDW_GOGC] = "bdw disable_lock",
    [RANK_GC] = "gc_lock",
    [RANK_FIN_WAIT] = "fin wait_lock",
    [RANK_SWEEPER] = "sweeper_lock",
    [RANK_SWEEP_GATE] = "sweep_gate",
    [RANK_THREADS] = "threads_lock",
    [RANK_WORK] = "work_lock",
    [RANK_WBUF] = "wb_lock",
    [RANK_FIN] = "fin_lock",
    [RANK_CLEANUP] = "cleanup_lock",
    [RANK_POOL] = "pools_lock",
    [RANK_PENDING] = "pending_lock",
    [RANK_EXTRA] = "extra_lock",
    [RANK_BDW] = "bdw_lock",
    [RANK_BDW_KINDS] = "bdw kinds_lock",
    [RANK_REGISTRY] = "registry_lock",
    [RANK_GCENTRAL] = "gcentral.lock",
    [RANK_SHARED] = "shared_lock",
    [RANK_LARGE] = "large_lock",
    [RANK_MCENTRAL] = "mcentral.lock",
    [RANK_MHEAP] = "mheap.lock",
    [RANK_SCAV] = "scav_lock",
    [RANK_FIXALLOC] = "fixalloc.lock",
    [RANK_CORO] = "co_lock",
    [RANK_STACK] = "stack_lock",
    [RANK_SECURE] = "secure.lq_lock",
    [RANK_PROF_DUMP] = "prof dump_lock",
    [RANK_POOL_LOCAL] = "pool local lock",
    [RANK_PROF] = "prof_lock",
    [RANK_BDW_HEAP] = "bdw heap_lock",
};

static bool rank_is_array(uint8_t r) {
  return r == RANK_GCENTRAL || r == RANK_MCENTRAL || r == RANK_FIXALLOC;
}

GM_COLD static void lock_rank_fail(const gm_mutex_t *l, uint8_t held) {
  char buf[160];
  const char *a = l->rank < RANK_COUNT && rank_names[l->rank] ? rank_names[l->rank] : "?";
  const char *b = held < RANK_COUNT && rank_names[held] ? rank_names[held] : "?";
  strcpy(buf, "lock order violated: ");
  strcat(buf, a);
  strcat(buf, " taken while holding ");
  strcat(buf, b);
  gm_fatal(buf, l);
}

static _Atomic bool rank_off;

void lock_rank_disable(void) {
  atomic_store(&rank_off, true);
}

void lock_rank_acquire(const gm_mutex_t *l) {
  if (atomic_load_explicit(&rank_off, memory_order_relaxed))
    return;
  gm_m_t *m = &gm_tls_m;
  uint8_t r = l->rank;
  if (unlikely(r == RANK_NONE || r >= RANK_COUNT))
    gm_fatal("lock without a rank", l);
  if (m->top > r || (m->top == r && (!rank_is_array(r) || l <= m->last[r])))
    lock_rank_fail(l, m->top);
  m->held[r]++;
  m->last[r] = l;
  m->top = r;
}

void lock_rank_release(const gm_mutex_t *l) {
  if (atomic_load_explicit(&rank_off, memory_order_relaxed))
    return;
  gm_m_t *m = &gm_tls_m;
  uint8_t r = l->rank;
  if (unlikely(m->held[r] == 0))
    gm_fatal("unlock of a lock this thread does not hold", l);
  if (--m->held[r] == 0)
    m->last[r] = NULL;
  while (m->top > RANK_NONE && m->held[m->top] == 0)
    m->top--;
}

bool lock_rank_held_any(void) {
  return gm_tls_m.top != RANK_NONE;
}
#endif

// ---------------------------------------------------------------------------
// Stoppable waits

// TSan runs an asynchronous signal's handler only when the thread enters one
// of its interceptors, or while it waits in one TSan knows to block
// (nanosleep, poll, pthread_join, ...): not in pthread_mutex_lock. A
// registered thread waiting there for a lock a stopper holds would never
// park. Under TSan such waits poll, and a poll that finds a stop in progress
// parks at once (the deferred-stop hook parks only then) rather than wait for
// TSan to deliver the signal (which it may never do for an exiting thread).
#if defined(__SANITIZE_THREAD__)
#define STOPPABLE_POLL 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define STOPPABLE_POLL 1
#endif
#endif
#define STOPPABLE_POLL_NS (50 * 1000)

#ifdef STOPPABLE_POLL
static void nap_stoppable(void) {
  if (gm_tls_m.thread != NULL && gm_tls_m.locks == 0)
    lock_deferred_stop();
  struct timespec ts = {0, STOPPABLE_POLL_NS};
  nanosleep(&ts, NULL);
}
#endif

void gm_lock_stoppable(gm_mutex_t *l) {
  gm_assert(gm_tls_m.locks == 0); // a critical section never waits for a stopper
  lock_rank_acquire(l);
#ifdef STOPPABLE_POLL
  while (pthread_mutex_trylock(&l->m) != 0)
    nap_stoppable();
#else
  pthread_mutex_lock(&l->m);
#endif
}

// gm_mutex_reinit: in a fork child, l was taken by the fork handler of the
// forking thread (the only one left): it is made new and counted released.
void gm_mutex_reinit(gm_mutex_t *l) {
  pthread_mutex_init(&l->m, NULL);
  lock_rank_release(l);
}

// ---------------------------------------------------------------------------
// Fork

#define FORK_MAX 512 // registered locks (about 230 today)

static gm_mutex_t *_Atomic fork_locks[FORK_MAX];
static _Atomic size_t fork_nlocks;
static gm_mutex_t fork_lock = GM_MUTEX_INIT(RANK_FORK);
static gm_mutex_t *fork_taken[FORK_MAX]; // sorted by rank, then address (fork_lock)
static size_t fork_ntaken;               // (fork_lock)

// lock_fork_register adds l to the locks fork takes. Each lock is
// registered once, by its unit's one-time set-up.
void lock_fork_register(gm_mutex_t *l) {
  size_t i = atomic_fetch_add(&fork_nlocks, 1);
  if (i >= FORK_MAX)
    gm_fatal("too many locks registered for fork", l);
  atomic_store_explicit(&fork_locks[i], l, memory_order_release);
}

static bool fork_before(const gm_mutex_t *a, const gm_mutex_t *b) {
  return a->rank < b->rank || (a->rank == b->rank && a < b);
}

// fork_collect copies the registered locks into fork_taken, sorted.
static void fork_collect(void) {
  size_t n = atomic_load(&fork_nlocks), k = 0;
  for (size_t i = 0; i < n && i < FORK_MAX; i++) {
    gm_mutex_t *l;
    while ((l = atomic_load_explicit(&fork_locks[i], memory_order_acquire)) == NULL)
      cpu_relax(); // being registered
    if (GM_DEBUG > 0)
      for (size_t d = 0; d < k; d++)
        if (fork_taken[d] == l)
          gm_fatal("lock registered twice for fork", l);
    size_t j = k++;
    for (; j > 0 && fork_before(l, fork_taken[j - 1]); j--)
      fork_taken[j] = fork_taken[j - 1];
    fork_taken[j] = l;
  }
  fork_ntaken = k;
}

static const lock_fork_leaves_t *_Atomic fork_leaves;
static const lock_fork_leaves_t *fork_leaves_taken; // (fork_lock)

void lock_fork_leaves(const lock_fork_leaves_t *fns) {
  atomic_store_explicit(&fork_leaves, fns, memory_order_release);
}

void lock_fork_prepare(void) {
  gm_lock_stoppable(&fork_lock);
  fork_collect();
  size_t i = 0;
  for (; i < fork_ntaken && fork_taken[i]->rank <= RANK_GC; i++)
    gm_lock_stoppable(fork_taken[i]);
  m_acquire(); // no stop can start now (gc_lock is held): defensive
  for (; i < fork_ntaken; i++)
    gm_lock_raw(fork_taken[i]);
  fork_leaves_taken = atomic_load_explicit(&fork_leaves, memory_order_acquire);
  if (fork_leaves_taken != NULL)
    fork_leaves_taken->prepare();
}

void lock_fork_parent(void) {
  if (fork_leaves_taken != NULL)
    fork_leaves_taken->parent();
  for (size_t i = fork_ntaken; i > 0; i--)
    gm_unlock_raw(fork_taken[i - 1]);
  m_release();
  gm_unlock_raw(&fork_lock);
}

void lock_fork_child(void) {
  if (fork_leaves_taken != NULL)
    fork_leaves_taken->child();
  for (size_t i = fork_ntaken; i > 0; i--)
    gm_mutex_reinit(fork_taken[i - 1]);
  gm_tls_m.locks--; // lock_fork_prepare's critical section
  gm_tls_m.stop_pending = 0;
  gm_mutex_reinit(&fork_lock);
}
