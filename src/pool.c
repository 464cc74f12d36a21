// pool.c: pools of reusable GC objects, twin of Go's sync.Pool (sync/pool.go,
// and the runtime's poolCleanup).
//
// A pool hands out objects that were put back instead of allocating, and
// never keeps memory alive for long: each collection empties it. As in Go
// 1.13, the emptying is in two steps so that a steady load keeps its
// objects: at the first stop of every cycle, what each thread's part of the
// pool holds (primary) becomes its victim cache, and the previous victims
// are dropped (their objects are garbage unless the program holds them).
// An object thus leaves the pool after two cycles without use.
//
// Each thread has a local part of each pool it uses (pool_local_t): a
// private slot, reached without any lock, and a shared stack of up to
// SHARED_CAP objects that other threads may take from when their own part
// is empty (Go's poolChain, here behind a per-local lock that only thieves
// and the owner's overflow take). get: private, own shared, others' shared,
// own victim, others' victims, else new (the pool's function, or gm_alloc).
// put: private if empty, else own shared, else the object is dropped.
//
// Locals live in OS memory registered as a root range (gm_add_roots), so
// the collector sees pooled objects at every stop, including objects put
// while marking runs beside the program (the last stop rescans roots).
// get and put run in a critical section: the collector empties pools with
// the world stopped, never in the middle of either. A thread finds its
// locals through a thread-local array indexed by the pool's number; when
// the thread exits, its locals are marked free and the next thread to use
// the pool adopts one (its objects stay stealable meanwhile).
//
// Locking: pools_lock (RANK_POOL) protects the list of pools and each
// pool's list of locals (append only); a local's lock (RANK_POOL_LOCAL, a
// leaf) protects its shared stack and victim; private is its owner's, and
// the collector's with the world stopped.
#include <pthread.h>
#include <string.h>

#include "internal.h"
#include "mgc.h"
#include "mgcalloc.h"
#include "os.h"
#include "pool.h"
#include "threads.h"

#define SHARED_CAP 62
#define VICTIM_CAP (SHARED_CAP + 1)

typedef struct pool_local {
  // The words the collector scans (one root range): private, shared, victim.
  void *priv;
  void *shared[SHARED_CAP];
  void *victim[VICTIM_CAP];
  // Not pointers into the heap:
  unsigned nshared, nvictim; // (lock)
  gm_mutex_t lock;
  _Atomic int owned;       // a thread uses it (0: free, adoptable)
  struct pool_local *next; // the pool's list (pools_lock; append only)
} pool_local_t;

struct gm_pool {
  size_t size;
  void *(*new_fn)(void *arg);
  void *arg;
  unsigned id;
  pool_local_t *_Atomic locals; // (pools_lock writes)
  struct gm_pool *next;         // all pools (pools_lock)
};

static gm_mutex_t pools_lock = GM_MUTEX_INIT(RANK_POOL);
static gm_pool_t *pools; // (pools_lock)
static unsigned npools;  // ids given (pools_lock)
static pthread_key_t exit_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static __thread pool_local_t **tls_locals; // indexed by pool id
static __thread unsigned tls_cap;

// thread_exit frees the exiting thread's locals for adoption.
static void thread_exit(void *arg) {
  pool_local_t **v = arg;
  for (unsigned i = 0; i < tls_cap; i++)
    if (v[i] != NULL)
      atomic_store(&v[i]->owned, 0);
  os_unmap(v, tls_cap * sizeof *v);
  tls_locals = NULL;
  tls_cap = 0;
}
static void make_key(void) {
  if (pthread_key_create(&exit_key, thread_exit) != 0)
    gm_fatal("gm_pool: no thread key left", NULL);
}

GM_EXPORT gm_pool_t *gm_pool_new(size_t size, void *(*new_fn)(void *arg), void *arg) {
  gc_ensure_init();
  pthread_once(&key_once, make_key);
  gm_pool_t *p = os_reserve(sizeof *p, 0);
  if (p == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  *p = (gm_pool_t){.size = size, .new_fn = new_fn, .arg = arg};
  gm_lock(&pools_lock);
  p->id = npools++;
  p->next = pools;
  pools = p;
  gm_unlock(&pools_lock);
  return p;
}

// local_slow: the calling thread's local of pool p, adopted or made; NULL
// when out of memory. Outside critical sections.
GM_NOINLINE static pool_local_t *local_slow(gm_pool_t *p) {
  threads_register_self_or_die();
  if (p->id >= tls_cap) {
    unsigned cap = tls_cap ? tls_cap : 16;
    while (cap <= p->id)
      cap *= 2;
    pool_local_t **v = os_reserve(cap * sizeof *v, 0);
    if (v == NULL)
      return NULL;
    if (tls_locals != NULL) {
      memcpy(v, tls_locals, tls_cap * sizeof *v);
      os_unmap(tls_locals, tls_cap * sizeof *v);
    }
    tls_locals = v;
    tls_cap = cap;
    pthread_setspecific(exit_key, v);
  }
  for (pool_local_t *l = atomic_load(&p->locals); l != NULL; l = l->next) {
    int free_ = 0;
    if (atomic_compare_exchange_strong(&l->owned, &free_, 1))
      return tls_locals[p->id] = l;
  }
  pool_local_t *l = os_reserve(sizeof *l, 0);
  if (l == NULL)
    return NULL;
  l->lock = (gm_mutex_t)GM_MUTEX_INIT(RANK_POOL_LOCAL);
  atomic_store(&l->owned, 1);
  if (gm_add_roots(l, &l->victim[VICTIM_CAP]) != 0) {
    os_unmap(l, sizeof *l);
    return NULL;
  }
  gm_lock(&pools_lock);
  l->next = atomic_load(&p->locals);
  atomic_store(&p->locals, l);
  gm_unlock(&pools_lock);
  return tls_locals[p->id] = l;
}

static inline pool_local_t *local_of(gm_pool_t *p) {
  return p->id < tls_cap && tls_locals[p->id] != NULL ? tls_locals[p->id] : local_slow(p);
}

// take pops from l's shared stack, or (victim) its victim cache.
static void *take(pool_local_t *l, bool victim) {
  void *x = NULL;
  gm_lock(&l->lock);
  if (!victim && l->nshared != 0) {
    x = l->shared[--l->nshared];
    l->shared[l->nshared] = NULL;
  } else if (victim && l->nvictim != 0) {
    x = l->victim[--l->nvictim];
    l->victim[l->nvictim] = NULL;
  }
  gm_unlock(&l->lock);
  return x;
}

// get_slow: own shared, others' shared, own victim, others' victims (in a
// critical section).
static void *get_slow(gm_pool_t *p, pool_local_t *own) {
  void *x;
  for (int victim = 0; victim < 2; victim++) {
    if ((x = take(own, victim)) != NULL)
      return x;
    for (pool_local_t *l = atomic_load(&p->locals); l != NULL; l = l->next)
      if (l != own && (x = take(l, victim)) != NULL)
        return x;
  }
  return NULL;
}

GM_EXPORT void *gm_pool_get(gm_pool_t *p) {
  pool_local_t *l = local_of(p);
  void *x = NULL;
  if (l != NULL) {
    m_acquire(); // (no stop empties the pool in here)
    x = l->priv;
    l->priv = NULL;
    if (x == NULL)
      x = get_slow(p, l);
    m_release();
  }
  if (x == NULL)
    x = p->new_fn != NULL ? p->new_fn(p->arg) : gm_alloc(p->size);
  return x;
}

GM_EXPORT void gm_pool_put(gm_pool_t *p, void *x) {
  if (x == NULL)
    return;
  pool_local_t *l = local_of(p);
  if (l == NULL)
    return; // (out of memory for a local: the object is garbage)
  m_acquire();
  if (l->priv == NULL) {
    l->priv = x;
  } else {
    gm_lock(&l->lock);
    if (l->nshared < SHARED_CAP)
      l->shared[l->nshared++] = x;
    gm_unlock(&l->lock);
  }
  m_release();
}

// pool_cleanup (Go's poolCleanup), world stopped before marking: primaries
// become victims; the old victims are dropped.
void pool_cleanup(void) {
  for (gm_pool_t *p = pools; p != NULL; p = p->next)
    for (pool_local_t *l = atomic_load(&p->locals); l != NULL; l = l->next) {
      memset(l->victim, 0, sizeof l->victim);
      memcpy(l->victim, l->shared, l->nshared * sizeof(void *));
      l->nvictim = l->nshared;
      if (l->priv != NULL)
        l->victim[l->nvictim++] = l->priv;
      l->priv = NULL;
      memset(l->shared, 0, sizeof l->shared);
      l->nshared = 0;
    }
}

// Fork: the locals' locks are too many to register with lock.c one by one;
// fork takes them all as leaves (lock_fork_leaves), after pools_lock and
// every other registered lock, so no thread is half-way through a shared
// stack when the child is made. No lock is taken while a local's lock is
// held, so this waits only for the one stack operation. The rank checker is
// bypassed: one thread holds many locals here, which it never does else.
static void pool_fork_prepare(void) {
  for (gm_pool_t *p = pools; p != NULL; p = p->next)
    for (pool_local_t *l = atomic_load(&p->locals); l != NULL; l = l->next)
      pthread_mutex_lock(&l->lock.m);
}

static void pool_fork_parent(void) {
  for (gm_pool_t *p = pools; p != NULL; p = p->next)
    for (pool_local_t *l = atomic_load(&p->locals); l != NULL; l = l->next)
      pthread_mutex_unlock(&l->lock.m);
}

static void pool_fork_child(void) {
  for (gm_pool_t *p = pools; p != NULL; p = p->next)
    for (pool_local_t *l = atomic_load(&p->locals); l != NULL; l = l->next)
      l->lock = (gm_mutex_t)GM_MUTEX_INIT(RANK_POOL_LOCAL);
}

void pool_init(void) {
  static const lock_fork_leaves_t leaves = {pool_fork_prepare, pool_fork_parent, pool_fork_child};
  lock_fork_register(&pools_lock);
  lock_fork_leaves(&leaves);
}
