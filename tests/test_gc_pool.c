// test_gc_pool: pools of GC objects (gm_pool_*, Go's sync.Pool).
//
//   - an object put back is the next one got on the same thread; an empty
//     pool calls its function with its argument, or allocates zeroed
//     objects of its size;
//   - a collection keeps pooled objects (victim cache: got back after one
//     cycle), two cycles without use drop them (their weak handles turn
//     NULL: the pool kept nothing alive);
//   - one thread's objects are taken by another when its own part is
//     empty, also after the first thread exited;
//   - threads getting and putting as fast as they can, with collections
//     back to back, never get an object another thread holds (an owner word
//     claimed with a compare-and-swap) and never see one damaged;
//   - fork while those threads get and put: every child can take objects
//     from every thread's part (their locks) and finds them intact.
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gomem.h"
#include "test.h"
#include "test_gc.h"

#ifndef GOMEM_SANITIZE
#define GOMEM_SANITIZE ""
#endif

static int slow;

static void on_thread(void *(*fn)(void *), void *arg) {
  pthread_t t;
  if (pthread_create(&t, NULL, fn, arg) != 0 || pthread_join(t, NULL) != 0)
    abort();
}

static _Atomic int made;
static void *make_obj(void *arg) {
  made++;
  uint64_t *o = gm_alloc(64);
  o[0] = (uint64_t)(uintptr_t)arg;
  return o;
}

static void test_basics(void) {
  gm_pool_t *p = gm_pool_new(64, make_obj, (void *)77);
  uint64_t *a = gm_pool_get(p);
  bool made_one = made == 1 && a[0] == 77;
  gm_pool_put(p, a);
  bool same = gm_pool_get(p) == a && made == 1;
  gm_pool_t *q = gm_pool_new(200, NULL, NULL);
  unsigned char *z = gm_pool_get(q);
  bool zeroed = z != NULL && gm_usable_size(z) >= 200;
  for (int i = 0; i < 200 && zeroed; i++)
    zeroed = z[i] == 0;
  gm_pool_put(q, NULL); // (ignored)
  CHECKF(made_one && same && zeroed, "new %d, same object back %d, zeroed %d", made_one, same,
         zeroed);
  report("put then get: the same object; empty: the pool's function or gm_alloc",
         made_one && same && zeroed);
}

// Victims: what a cycle found in the pool comes back after it; what two
// cycles found unused is gone.
#define NV 100
static gm_pool_t *vpool;
static gm_weak_t vweak[NV];
static void *put_many(void *arg) {
  (void)arg;
  for (int i = 0; i < NV; i++) {
    void *o = gm_alloc(4096);
    fill(o, 4096, (uint64_t)i);
    vweak[i] = gm_weak_make(o);
    gm_pool_put(vpool, o);
  }
  return NULL;
}
static void *get_back(void *arg) {
  int *n = arg;
  void *o;
  void *held[NV];
  int k = 0;
  while (k < NV && (o = gm_pool_get(vpool)) != NULL) {
    bool ours = false;
    for (int i = 0; i < NV && !ours; i++)
      ours = gm_weak_get(vweak[i]) == o && intact(o, 4096, (uint64_t)i);
    if (!ours)
      break;
    held[k++] = o;
    n[0]++;
  }
  for (int i = 0; i < k; i++)
    gm_pool_put(vpool, held[i]); // back into the pool
  return NULL;
}

static void test_victims(void) {
  vpool = gm_pool_new(4096, NULL, NULL);
  on_thread(put_many, NULL);
  collect(); // primaries become victims
  int back[1] = {0};
  on_thread(get_back, back); // (the other thread's part: stolen; its victims)
  collect();
  collect(); // unused for two cycles
  collect();
  int cleared = 0;
  for (int i = 0; i < NV; i++)
    cleared += gm_weak_get(vweak[i]) == NULL;
  // The putter exited; the getter found its objects by stealing from its
  // part's victim cache. A part keeps at least a thread's last 32 objects.
  int want = 32;
  CHECKF(back[0] >= want, "%d of %d pooled objects got back after one collection", back[0], want);
  CHECKF(cleared >= NV * 95 / 100, "%d of %d objects gone two cycles after their last use", cleared,
         NV);
  report("a cycle keeps pooled objects (victims), two unused cycles drop them",
         back[0] >= want && cleared >= NV * 95 / 100);
}

// Stealing: what a thread put is got by another.
static gm_pool_t *spool;
static void *put_three(void *arg) {
  void **objs = arg;
  for (int i = 0; i < 3; i++)
    gm_pool_put(spool, objs[i]);
  return NULL;
}
static void test_steal(void) {
  spool = gm_pool_new(32, NULL, NULL);
  void *objs[3] = {gm_alloc(32), gm_alloc(32), gm_alloc(32)};
  on_thread(put_three, objs); // that thread exits: its part is left to others
  int found = 0;
  for (int i = 0; i < 3; i++) {
    void *o = gm_pool_get(spool);
    found += o == objs[0] || o == objs[1] || o == objs[2];
  }
  CHECKF(found == 3, "%d of 3 objects of an exited thread got by another", found);
  report("objects another thread put, even one that exited, are got", found == 3);
}

// Stress: exclusive ownership and contents under collections.
#define NT 4
static gm_pool_t *tpool;
static _Atomic int stress_stop, stress_bad, stress_double;
static _Atomic long stress_ops;
typedef struct obj {
  _Atomic uint64_t owner;
  uint64_t words[15];
} obj_t;

static void *stress_worker(void *arg) {
  uint64_t me = (uint64_t)(uintptr_t)arg + 1, r = me;
  obj_t *held[8];
  while (!stress_stop) {
    int n = 1 + (int)((r = r * 6364136223846793005ull + 1442695040888963407ull) >> 61);
    for (int i = 0; i < n; i++) {
      obj_t *o = gm_pool_get(tpool);
      uint64_t zero = 0;
      if (!atomic_compare_exchange_strong(&o->owner, &zero, me)) {
        stress_double++;
        held[i] = gm_alloc(sizeof(obj_t));
        continue;
      }
      if (o->words[0] != 0 && !intact(o->words + 1, sizeof o->words - 8, o->words[0]))
        stress_bad++;
      o->words[0] = (r >> 20) | 1; // the seed of the pattern after it
      fill(o->words + 1, sizeof o->words - 8, o->words[0]);
      held[i] = o;
    }
    for (int i = 0; i < n; i++) {
      obj_t *o = held[i];
      if (atomic_load(&o->owner) == me) {
        if (!intact(o->words + 1, sizeof o->words - 8, o->words[0]))
          stress_bad++;
        atomic_store(&o->owner, 0);
        gm_pool_put(tpool, o);
      }
    }
    stress_ops++;
  }
  return NULL;
}

static void test_stress(void) {
  tpool = gm_pool_new(sizeof(obj_t), NULL, NULL);
  pthread_t t[NT];
  for (int i = 0; i < NT; i++)
    if (pthread_create(&t[i], NULL, stress_worker, (void *)(uintptr_t)i) != 0)
      abort();
  double t0 = now_s();
  int cycles = 0;
  while (now_s() - t0 < (slow ? 1.5 : 0.7)) {
    gm_collect();
    cycles++;
  }
  stress_stop = 1;
  for (int i = 0; i < NT; i++)
    pthread_join(t[i], NULL);
  CHECKF(stress_bad == 0 && stress_double == 0 && stress_ops > 100,
         "%d damaged, %d handed out twice, in %ld rounds and %d collections", (int)stress_bad,
         (int)stress_double, (long)stress_ops, cycles);
  report("threads and collections: no object handed out twice or damaged",
         stress_bad == 0 && stress_double == 0 && stress_ops > 100);
}

// fork_child takes objects until the pool is empty (its own part, then the
// others', through their locks) and checks each. No collection: under TSan
// a child may start no thread.
static int fork_child(void) {
  gm_set_gc_percent(-1);
  for (int i = 0; i < 4 * NT * 64; i++) {
    obj_t *o = gm_pool_get(tpool);
    if (o == NULL || atomic_load(&o->owner) != 0)
      return 1;
    if (o->words[0] != 0 && !intact(o->words + 1, sizeof o->words - 8, o->words[0]))
      return 2;
  }
  return 0;
}

static void test_fork(void) {
  stress_stop = 0;
  stress_ops = 0;
  pthread_t t[NT];
  for (int i = 0; i < NT; i++)
    if (pthread_create(&t[i], NULL, stress_worker, (void *)(uintptr_t)i) != 0)
      abort();
  while (stress_ops < 100)
    sched_yield();
  int hung = 0, bad = 0;
  test_fork_children(strcmp(GOMEM_SANITIZE, "valgrind") == 0 ? 10 : 60, fork_child, &hung, &bad);
  stress_stop = 1;
  for (int i = 0; i < NT; i++)
    pthread_join(t[i], NULL);
  bool ok = hung == 0 && bad == 0 && stress_bad == 0 && stress_double == 0;
  CHECKF(ok, "fork: %d children hung, %d failed; parent: %d damaged, %d handed out twice", hung,
         bad, (int)stress_bad, (int)stress_double);
  report("fork while threads get and put: children take every part's objects intact", ok);
}

int main(void) {
  slow = GOMEM_SANITIZE[0] != 0;
  test_basics();
  test_victims();
  test_steal();
  test_stress();
  test_fork();
  return test_done();
}
