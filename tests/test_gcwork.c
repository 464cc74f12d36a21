// test_gcwork: the mark work buffers (mgcwork.c) on their own.
//   - one worker: entries come back exactly once, across many buffers;
//   - balancing: a worker holding all the work shares it (gcw_balance) and
//     an idle worker gets some through the global list;
//   - termination: WORKERS threads (more than the cores) expand a tree of
//     entries that starts on one of them, sharing work as mark workers do, and
//     all stop (gcw_idle) only once every node was processed, exactly once.
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "internals.h"
#include "mgcwork.h"
#include "test.h"

#define WORKERS 8
#define NODES (1u << 18)

// ---------------------------------------------------------------------------
// One worker

static void test_single(void) {
  gcwork_t gw;
  gcw_init(&gw);
  enum { N = 5 * WB_CAP + 7 };
  static unsigned char seen[N];
  for (uintptr_t i = 1; i <= N; i++)
    gcw_put(&gw, i);
  uintptr_t e;
  int bad = 0, got = 0;
  while ((e = gcw_get(&gw)) != 0) {
    bad += e > N || seen[e - 1]++;
    got++;
  }
  CHECKF(got == N && bad == 0, "%d of %d entries back, %d bad", got, N, bad);
  gcw_dispose(&gw);
  report("one worker: every entry back once", got == N && bad == 0);
}

// ---------------------------------------------------------------------------
// Balancing

static atomic_int shared_ready;
static atomic_long taken_by_other;

static void *idle_taker(void *arg) {
  (void)arg;
  gcwork_t gw;
  gcw_init(&gw);
  while (!atomic_load(&shared_ready)) {
  }
  uintptr_t e;
  long n = 0;
  while ((e = gcw_get(&gw)) != 0)
    n++;
  atomic_store(&taken_by_other, n);
  gcw_dispose(&gw);
  return NULL;
}

static void test_balance(void) {
  pthread_t t;
  pthread_create(&t, NULL, idle_taker, NULL);
  gcwork_t gw;
  gcw_init(&gw);
  for (uintptr_t i = 1; i <= 400; i++) // all in w1: nothing published yet
    gcw_put(&gw, i);
  CHECK(atomic_load(&wb_nfull) == 0);
  gcw_balance(&gw); // others starve: publish half
  CHECKF(atomic_load(&wb_nfull) == 1, "balance published %ld buffers",
         (long)atomic_load(&wb_nfull));
  atomic_store(&shared_ready, 1);
  pthread_join(t, NULL);
  long mine = 0;
  while (gcw_get(&gw) != 0)
    mine++;
  long other = atomic_load(&taken_by_other);
  CHECKF(other > 0 && mine + other == 400, "kept %ld, shared %ld of 400", mine, other);
  gcw_dispose(&gw);
  report("balancing: an idle worker gets half", other > 0 && mine + other == 400);
}

// ---------------------------------------------------------------------------
// Termination

static _Atomic unsigned nidle;
static atomic_uchar processed[NODES];
static atomic_long per_worker[WORKERS];
static atomic_int go;

// A node v (1..NODES-1) has children 2v and 2v+1 while they are < NODES.
static void *tree_worker(void *arg) {
  int id = (int)(intptr_t)arg;
  gcwork_t gw;
  gcw_init(&gw);
  if (id == 0)
    gcw_put(&gw, 1);
  while (!atomic_load(&go)) {
  }
  if (id == 0) // start once every other worker is idle, waiting for work
    while (atomic_load(&nidle) != WORKERS - 1)
      sched_yield();
  long n = 0;
  int shared_once = 0;
  for (;;) {
    uintptr_t v;
    while ((v = gcw_get(&gw)) != 0) {
      atomic_fetch_add(&processed[v], 1);
      n++;
      if (2 * v < NODES)
        gcw_put(&gw, 2 * v);
      if (2 * v + 1 < NODES)
        gcw_put(&gw, 2 * v + 1);
      if ((n & 63) == 0 && atomic_load(&nidle) != 0) {
        gcw_balance(&gw);
        // The first time, let an idle worker take what was published (on
        // two cores it might not run before this one takes it back).
        while (id == 0 && !shared_once && atomic_load(&wb_nfull) != 0)
          sched_yield();
        shared_once = 1;
      }
    }
    if (gcw_idle(&nidle, WORKERS))
      break;
  }
  atomic_store(&per_worker[id], n);
  gcw_dispose(&gw);
  return NULL;
}

static void test_termination(void) {
  pthread_t t[WORKERS];
  for (int i = 0; i < WORKERS; i++)
    pthread_create(&t[i], NULL, tree_worker, (void *)(intptr_t)i);
  atomic_store(&go, 1);
  for (int i = 0; i < WORKERS; i++)
    pthread_join(t[i], NULL);
  long missing = 0, twice = 0, total = 0;
  int helped = 0;
  for (unsigned v = 1; v < NODES; v++) {
    missing += atomic_load(&processed[v]) == 0;
    twice += atomic_load(&processed[v]) > 1;
  }
  for (int i = 0; i < WORKERS; i++) {
    total += atomic_load(&per_worker[i]);
    helped += i != 0 && atomic_load(&per_worker[i]) > 0;
  }
  CHECKF(missing == 0 && twice == 0, "%ld nodes never processed, %ld processed twice", missing,
         twice);
  CHECKF(total == NODES - 1, "%ld entries processed for %u nodes", total, NODES - 1);
  CHECKF(helped > 0, "no worker but the first got any work");
  CHECK(atomic_load(&wb_nfull) == 0);
  report("termination: every node once, then all workers stop",
         missing == 0 && twice == 0 && helped > 0);
}

int main(void) {
  gm_ensure_init();
  test_single();
  test_balance();
  test_termination();
  return test_done();
}
