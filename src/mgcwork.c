// mgcwork.c: work buffer lists and the mark workers' threads (see mgcwork.h).
#include <sched.h>
#include <sys/sysinfo.h>

#include "interpose.h"
#include "mgcmark.h"
#include "mgcwork.h"
#include "os.h"

#define WB_CHUNK 64 // buffers mapped at once

static gm_mutex_t wb_lock = GM_MUTEX_INIT(RANK_WBUF);
static workbuf_t *wb_full;  // buffers with entries (wb_lock)
static workbuf_t *wb_empty; // free buffers (wb_lock)
_Atomic long wb_nfull;      // length of wb_full (written under wb_lock)
_Atomic long wb_nentries;   // entries in wb_full's buffers (written under wb_lock)

// Workers run while the world is stopped, so wb_lock is a plain mutex: no
// stopped thread can hold it.
static workbuf_t *wb_get_empty(void) {
  gm_lock_raw(&wb_lock);
  workbuf_t *b = wb_empty;
  if (b == NULL) {
    workbuf_t *chunk = os_reserve(WB_CHUNK * sizeof(workbuf_t), 0);
    if (chunk == NULL)
      gm_fatal("out of memory for the collector's work buffers", NULL);
    for (int i = 1; i < WB_CHUNK; i++) {
      chunk[i].next = wb_empty;
      wb_empty = &chunk[i];
    }
    b = chunk;
  } else {
    wb_empty = b->next;
  }
  gm_unlock_raw(&wb_lock);
  b->next = NULL;
  b->n = 0;
  return b;
}

static void wb_put_empty(workbuf_t *b) {
  gm_lock_raw(&wb_lock);
  b->next = wb_empty;
  wb_empty = b;
  gm_unlock_raw(&wb_lock);
}

static void wb_put_full(workbuf_t *b) {
  gm_lock_raw(&wb_lock);
  b->next = wb_full;
  wb_full = b;
  relaxed_store(&wb_nfull, relaxed_load(&wb_nfull) + 1);
  relaxed_store(&wb_nentries, relaxed_load(&wb_nentries) + (long)b->n);
  gm_unlock_raw(&wb_lock);
}

static workbuf_t *wb_try_get_full(void) {
  if (relaxed_load(&wb_nfull) == 0)
    return NULL;
  gm_lock_raw(&wb_lock);
  workbuf_t *b = wb_full;
  if (b != NULL) {
    wb_full = b->next;
    relaxed_store(&wb_nfull, relaxed_load(&wb_nfull) - 1);
    relaxed_store(&wb_nentries, relaxed_load(&wb_nentries) - (long)b->n);
  }
  gm_unlock_raw(&wb_lock);
  return b;
}

void gcw_init(gcwork_t *gw) {
  gw->w1 = wb_get_empty();
  gw->w2 = wb_get_empty();
  gw->bytes_marked = 0;
  gw->scanned = 0;
  gw->published = 0;
}

void gcw_dispose(gcwork_t *gw) {
  if (gw->w1->n != 0 || gw->w2->n != 0)
    gm_fatal("collector: worker finished with work left", NULL);
  wb_put_empty(gw->w1);
  wb_put_empty(gw->w2);
  gw->w1 = gw->w2 = NULL;
}

void gcw_flush(gcwork_t *gw) {
  for (workbuf_t **b = &gw->w1; b <= &gw->w2; b++)
    if ((*b)->n != 0) {
      wb_put_full(*b);
      *b = wb_get_empty();
    }
}

// gcw_put_slow: w1 is full. Swap in w2 if it has room, else publish w1.
workbuf_t *gcw_put_slow(gcwork_t *gw) {
  workbuf_t *t = gw->w1;
  gw->w1 = gw->w2;
  gw->w2 = t;
  if (gw->w1->n == WB_CAP) {
    wb_put_full(gw->w1);
    gw->w1 = wb_get_empty();
  }
  return gw->w1;
}

// gcw_get_slow: w1 is empty. Take w2 if it has entries, else a full buffer
// from the global list.
uintptr_t gcw_get_slow(gcwork_t *gw) {
  if (gw->w2->n != 0) {
    workbuf_t *t = gw->w1;
    gw->w1 = gw->w2;
    gw->w2 = t;
    return gw->w1->obj[--gw->w1->n];
  }
  workbuf_t *b = wb_try_get_full();
  if (b == NULL)
    return 0;
  wb_put_empty(gw->w1);
  gw->w1 = b;
  return b->obj[--b->n];
}

// gcw_balance publishes w2 when the global list is empty, so idle workers
// find something (Go's gcWork.balance).
void gcw_balance(gcwork_t *gw) {
  if (relaxed_load(&wb_nfull) != 0)
    return;
  if (gw->w2->n != 0) {
    wb_put_full(gw->w2);
    gw->w2 = wb_get_empty();
  } else if (gw->w1->n > 4) {
    // Split w1: the top half stays, the bottom half is published.
    workbuf_t *b = wb_get_empty();
    uintptr_t half = gw->w1->n / 2;
    for (uintptr_t i = 0; i < half; i++)
      b->obj[i] = gw->w1->obj[i];
    for (uintptr_t i = half; i < gw->w1->n; i++)
      gw->w1->obj[i - half] = gw->w1->obj[i];
    b->n = half;
    gw->w1->n -= half;
    wb_put_full(b);
  }
}

// gcw_idle: see mgcwork.h. A worker counts itself idle only after its
// buffers and the global list were found empty, and a worker that publishes
// work takes it back before it idles (gcw_get reads the global list), so
// when all nworkers are idle no work is left anywhere and none can appear.
bool gcw_idle(_Atomic unsigned *nidle, unsigned nworkers) {
  atomic_fetch_add(nidle, 1);
  for (unsigned spins = 0;; spins++) {
    if (relaxed_load(&wb_nfull) != 0) {
      atomic_fetch_sub(nidle, 1);
      return false;
    }
    if (atomic_load(nidle) == nworkers)
      return true;
    if (spins > 64)
      sched_yield();
    else
      cpu_relax();
  }
}

// ---------------------------------------------------------------------------
// The helper threads: gc_nworkers() - 1 threads of gomem's own, started at
// the first parallel mark, each taking part in every later one.

#define MAX_WORKERS 32
// nworkers: set once (gc_nworkers), then by gc_start_helpers (work_lock);
// read without a lock (gctrace, the pacer): relaxed.
static _Atomic unsigned nworkers;
static gm_mutex_t work_lock = GM_MUTEX_INIT(RANK_WORK);
static pthread_cond_t work_cond = PTHREAD_COND_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;
static uint64_t work_gen;         // bumped to start helpers (work_lock)
static uint64_t (*work_fn)(void); // what they run (work_lock)
static unsigned helpers_done;     // helpers finished this run (work_lock)
static unsigned helpers;          // helper threads started (work_lock)
static uint64_t helper_marked;    // bytes marked by helpers this run (work_lock)

unsigned gc_nworkers(void) {
  unsigned w = relaxed_load(&nworkers);
  if (w == 0) {
    unsigned n = gm_opt.gc_procs ? gm_opt.gc_procs : (unsigned)get_nprocs();
    w = n < 1 ? 1 : n > MAX_WORKERS ? MAX_WORKERS : n;
    relaxed_store(&nworkers, w);
  }
  return w;
}

// helper_main: arg is the work generation when the helper was started; it
// takes part in every later one (a fork child inherits a non-zero count).
static void *helper_main(void *arg) {
  uint64_t seen = (uint64_t)(uintptr_t)arg;
  gm_lock_raw(&work_lock);
  for (;;) {
    while (work_gen == seen)
      pthread_cond_wait(&work_cond, &work_lock.m);
    seen = work_gen;
    uint64_t (*fn)(void) = work_fn;
    gm_unlock_raw(&work_lock);
    uint64_t marked = fn();
    gm_lock_raw(&work_lock);
    helper_marked += marked;
    helpers_done++;
    pthread_cond_signal(&done_cond);
  }
  return NULL;
}

void gc_start_helpers(void) {
  unsigned n = atomic_load(&gm_forked) ? 1 : gc_nworkers(); // (internal.h)
  gm_lock_raw(&work_lock);
  while (helpers < n - 1) {
    if (interpose_create_internal(helper_main, (void *)(uintptr_t)work_gen) != 0)
      break;
    helpers++;
  }
  // Every started helper takes part in every run, so nworkers counts them.
  relaxed_store(&nworkers, helpers + 1);
  gm_unlock_raw(&work_lock);
}

uint64_t gc_run_workers(uint64_t (*worker)(void)) {
  gm_lock_raw(&work_lock);
  helpers_done = 0;
  helper_marked = 0;
  work_fn = worker;
  work_gen++;
  pthread_cond_broadcast(&work_cond);
  gm_unlock_raw(&work_lock);
  uint64_t marked = worker();
  gm_lock_raw(&work_lock);
  while (helpers_done < helpers)
    pthread_cond_wait(&done_cond, &work_lock.m);
  marked += helper_marked;
  gm_unlock_raw(&work_lock);
  return marked;
}

// gcwork_fork_child: the helpers are gone (work_lock was taken by lock.c's
// fork handlers); they restart at the next parallel mark.
void gcwork_fork_child(void) {
  pthread_cond_init(&work_cond, NULL);
  pthread_cond_init(&done_cond, NULL);
  helpers = 0;
  helpers_done = 0;
}

void gcwork_init(void) {
  lock_fork_register(&wb_lock);
  lock_fork_register(&work_lock);
  gc_nworkers();
}
