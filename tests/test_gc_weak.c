// test_gc_weak: weak pointers, cleanups and gm_keep_alive (Go's weak.Pointer,
// runtime.AddCleanup, runtime.KeepAlive).
//
//   - a handle yields its object while it is reachable and NULL once a
//     collection found it unreachable; handles to one object are equal,
//     to two objects differ; bad pointers give NULL and EINVAL;
//   - a weak cache (a table keyed by handles) loses the entries whose keys
//     died and keeps the others, whose objects are intact;
//   - an object with a finalizer that brings it back: its handle is NULL
//     before the finalizer runs and stays NULL; a new handle to the
//     resurrected object yields it;
//   - cleanups run exactly once each, several per object, with their own
//     argument, never while the object is reachable; cancelled ones never;
//     cancelling one that ran does nothing; an object's argument lives until
//     its cleanup ran (it is intact when the cleanup reads it);
//   - an object with a finalizer and a cleanup: the finalizer runs first,
//     the cleanup only after the object became unreachable again;
//   - gm_free clears the object's handle and drops its cleanups;
//   - while marking runs beside the program (the _concurrent variant), an
//     object whose only strong reference is dropped right after gm_weak_get
//     returned it stays intact while the caller holds it.
// Objects that must die are made by short-lived threads (no stale copy of
// their address on this stack); since roots are conservative, a few cases
// allow 5% of the objects to be kept by stale words.
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gomem.h"
#include "test.h"
#include "test_gc.h"

#ifndef GOMEM_SANITIZE
#define GOMEM_SANITIZE ""
#endif

static int slow;

// settle: collections, with time for the finalizer thread to run what they
// queue.
NOINLINE static void settle(int n) {
  for (int i = 0; i < n; i++) {
    collect();
    usleep(slow ? 40000 : 5000);
  }
}

// on_thread runs fn(arg) on a thread of its own and waits for it.
static void on_thread(void *(*fn)(void *), void *arg) {
  pthread_t t;
  if (pthread_create(&t, NULL, fn, arg) != 0 || pthread_join(t, NULL) != 0)
    abort();
}

// ---------------------------------------------------------------------------
// Handles

#define NOBJ 200
static gm_weak_t g_weak[NOBJ]; // globals: scanned, so the handles live
static void **g_keep;          // a GC array: the objects kept
static _Atomic long fin_runs, fin_null_handle;
static gm_weak_t g_fin_weak;
static void *g_resurrected;

static void *make_objects(void *arg) {
  (void)arg;
  g_keep = gm_alloc(NOBJ * sizeof(void *));
  for (int i = 0; i < NOBJ; i++) {
    void *p = gm_alloc(48 + (i % 4) * 1000);
    fill(p, 48, (uint64_t)i);
    g_keep[i] = p;
    g_weak[i] = gm_weak_make(p);
  }
  return NULL;
}

static void *drop_odd(void *arg) {
  (void)arg;
  for (int i = 1; i < NOBJ; i += 2)
    g_keep[i] = NULL;
  return NULL;
}

static void test_handles(void) {
  on_thread(make_objects, NULL);
  bool same = true, distinct = g_weak[0] != g_weak[1], yields = true;
  for (int i = 0; i < NOBJ; i++) {
    same &= gm_weak_make(g_keep[i]) == g_weak[i];
    yields &= gm_weak_get(g_weak[i]) == g_keep[i];
  }
  settle(2);
  bool live_ok = true;
  for (int i = 0; i < NOBJ; i++)
    live_ok &= gm_weak_get(g_weak[i]) == g_keep[i] && intact(g_keep[i], 48, (uint64_t)i);
  on_thread(drop_odd, NULL);
  settle(3);
  int cleared = 0, kept_ok = 0, wrong = 0;
  for (int i = 0; i < NOBJ; i++) {
    void *p = gm_weak_get(g_weak[i]);
    if (i % 2 == 0)
      kept_ok += p == g_keep[i] && intact(p, 48, (uint64_t)i);
    else if (p == NULL)
      cleared++;
    else
      wrong += !intact(p, 48, (uint64_t)i); // (kept by a stale word: still intact)
  }
  errno = 0;
  int local;
  void *m = malloc(32);
  bool bad = gm_weak_make(m) == NULL && errno == EINVAL && gm_weak_make(&local) == NULL &&
             gm_weak_make((char *)g_keep[0] + 8) == NULL && gm_weak_make(NULL) == NULL &&
             gm_weak_get(NULL) == NULL;
  free(m);
  CHECKF(same && distinct && yields, "canonical %d, distinct %d, yields %d", same, distinct,
         yields);
  CHECKF(live_ok, "a live object's handle changed");
  CHECKF(kept_ok == NOBJ / 2, "%d of %d kept objects yielded intact", kept_ok, NOBJ / 2);
  CHECKF(cleared >= NOBJ / 2 * 95 / 100 && wrong == 0, "%d of %d dead objects cleared, %d damaged",
         cleared, NOBJ / 2, wrong);
  CHECKF(bad, "bad pointers: want NULL and EINVAL");
  report("weak handles: canonical, cleared once unreachable, kept while reachable",
         same && distinct && yields && live_ok && kept_ok == NOBJ / 2 &&
             cleared >= NOBJ / 2 * 95 / 100 && wrong == 0 && bad);
  g_keep = NULL;
}

// A weak cache: entries keyed by a handle, values strong (GC arrays), looked
// up by object; an entry whose key died is gone.
typedef struct entry {
  gm_weak_t key;
  void *value;
} entry_t;
static entry_t *g_cache;
static void **g_keys;
#define NCACHE 256

static void *fill_cache(void *arg) {
  (void)arg;
  g_cache = gm_alloc(NCACHE * sizeof(entry_t));
  g_keys = gm_alloc(NCACHE * sizeof(void *));
  for (int i = 0; i < NCACHE; i++) {
    void *k = gm_alloc(32), *v = gm_alloc(64);
    fill(v, 64, (uint64_t)i + 1000);
    g_cache[i] = (entry_t){gm_weak_make(k), v};
    g_keys[i] = i % 4 == 0 ? k : NULL; // a quarter of the keys stay reachable
  }
  return NULL;
}

static void *lookup_all(void *arg) {
  int *hits = arg;
  for (int i = 0; i < NCACHE; i++)
    for (int j = 0; j < NCACHE; j++)
      if (g_keys[i] != NULL && gm_weak_get(g_cache[j].key) == g_keys[i])
        hits[0] += j == i && intact(g_cache[j].value, 64, (uint64_t)j + 1000);
  for (int j = 0; j < NCACHE; j++)
    if (gm_weak_get(g_cache[j].key) == NULL) {
      g_cache[j].value = NULL; // the entry is gone: drop its value
      hits[1]++;
    }
  return NULL;
}

static void test_weak_cache(void) {
  on_thread(fill_cache, NULL);
  settle(3);
  int res[2] = {0, 0};
  on_thread(lookup_all, res);
  CHECKF(res[0] == NCACHE / 4, "%d of %d live keys found their value", res[0], NCACHE / 4);
  CHECKF(res[1] >= NCACHE * 3 / 4 * 95 / 100, "%d of %d dead keys' entries gone", res[1],
         NCACHE * 3 / 4);
  report("a weak cache loses the entries of dead keys, keeps the others",
         res[0] == NCACHE / 4 && res[1] >= NCACHE * 3 / 4 * 95 / 100);
  g_cache = NULL;
  g_keys = NULL;
}

// Finalizer and weak handle: the handle is NULL when the finalizer runs.
static void resurrect(void *obj, void *arg) {
  (void)arg;
  fin_null_handle += gm_weak_get(g_fin_weak) == NULL;
  g_resurrected = obj;
  fin_runs++;
}

static void *make_finalizable(void *arg) {
  (void)arg;
  void *p = gm_alloc(64);
  fill(p, 64, 77);
  g_fin_weak = gm_weak_make(p);
  gm_set_finalizer(p, resurrect, NULL);
  return NULL;
}

static void test_no_resurrection(void) {
  bool ok = false;
  for (int attempt = 0; attempt < 3 && !ok; attempt++) {
    fin_runs = fin_null_handle = 0;
    g_resurrected = NULL;
    on_thread(make_finalizable, NULL);
    for (int i = 0; i < 8 && fin_runs == 0; i++)
      settle(1);
    ok = fin_runs == 1;
  }
  settle(2);
  void *r = g_resurrected;
  bool null_before = fin_null_handle == 1, null_after = gm_weak_get(g_fin_weak) == NULL;
  gm_weak_t w2 = r ? gm_weak_make(r) : NULL;
  bool fresh = w2 != NULL && w2 != g_fin_weak && gm_weak_get(w2) == r && intact(r, 64, 77);
  CHECKF(ok, "the finalizer ran %ld times", (long)fin_runs);
  CHECKF(null_before && null_after, "handle NULL when the finalizer ran: %d, after: %d",
         null_before, null_after);
  CHECKF(fresh, "a new handle to the resurrected object");
  report("a finalizer's resurrection never revives a weak handle",
         ok && null_before && null_after && fresh);
  g_resurrected = NULL;
}

// ---------------------------------------------------------------------------
// Cleanups

#define NCLEAN 300
static _Atomic int clean_runs[NCLEAN * 2];
static _Atomic int clean_bad_arg, clean_early;
static _Atomic int g_alive_flag[NCLEAN]; // 1 while the object is known reachable
static gm_cleanup_t g_cancel_ids[NCLEAN];
static void **g_clean_keep;

static void on_clean(void *arg) {
  uint64_t *a = arg; // a GC object: [index, pattern...]
  size_t k = (size_t)a[0];
  if (k >= NCLEAN * 2 || !intact(a + 1, 24, k + 500)) {
    clean_bad_arg++;
    return;
  }
  if (g_alive_flag[k / 2])
    clean_early++;
  clean_runs[k]++;
}

static void *make_cleanups(void *arg) {
  (void)arg;
  g_clean_keep = gm_alloc(NCLEAN * sizeof(void *));
  for (int i = 0; i < NCLEAN; i++) {
    void *p = gm_alloc(40);
    g_clean_keep[i] = p;
    g_alive_flag[i] = 1;
    for (int j = 0; j < 2; j++) {
      uint64_t *a = gm_alloc(32);
      a[0] = (uint64_t)(2 * i + j);
      fill(a + 1, 24, (uint64_t)(2 * i + j) + 500);
      gm_cleanup_t id = gm_add_cleanup(p, on_clean, a);
      if (j == 1 && i % 3 == 0)
        g_cancel_ids[i] = id; // cancelled below
    }
  }
  return NULL;
}

static void *drop_cleanups(void *arg) {
  (void)arg;
  for (int i = 0; i < NCLEAN; i++)
    if (i % 5 != 0) {
      g_alive_flag[i] = 0;
      g_clean_keep[i] = NULL;
    }
  return NULL;
}

static void test_cleanups(void) {
  on_thread(make_cleanups, NULL);
  for (int i = 0; i < NCLEAN; i += 3)
    gm_cancel_cleanup(g_cancel_ids[i]);
  settle(2);
  int early = 0;
  for (int k = 0; k < NCLEAN * 2; k++)
    early += clean_runs[k];
  on_thread(drop_cleanups, NULL);
  settle(4);
  int once = 0, twice = 0, cancelled_ran = 0, kept_ran = 0, dead = 0;
  for (int i = 0; i < NCLEAN; i++)
    for (int j = 0; j < 2; j++) {
      int n = clean_runs[2 * i + j];
      twice += n > 1;
      if (i % 5 == 0)
        kept_ran += n;
      else if (j == 1 && i % 3 == 0)
        cancelled_ran += n;
      else {
        dead++;
        once += n == 1;
      }
    }
  // Cancelling a cleanup that ran does nothing; nor does a stale handle.
  gm_cancel_cleanup(g_cancel_ids[3]);
  gm_cancel_cleanup(0);
  errno = 0;
  int local;
  bool bad = gm_add_cleanup(&local, on_clean, NULL) == 0 && errno == EINVAL &&
             gm_add_cleanup(NULL, on_clean, NULL) == 0;
  CHECKF(early == 0 && kept_ran == 0 && clean_early == 0,
         "cleanups of reachable objects ran: %d before the drop, %d of kept objects, %d early",
         early, kept_ran, (int)clean_early);
  CHECKF(twice == 0 && cancelled_ran == 0 && clean_bad_arg == 0,
         "%d ran twice, %d cancelled ones ran, %d saw a damaged argument", twice, cancelled_ran,
         (int)clean_bad_arg);
  CHECKF(once >= dead * 95 / 100, "%d of %d cleanups of dead objects ran", once, dead);
  CHECKF(bad, "gm_add_cleanup of a bad pointer: want 0 and EINVAL");
  report("cleanups: once each, several per object, never early, cancellable",
         early == 0 && kept_ran == 0 && clean_early == 0 && twice == 0 && cancelled_ran == 0 &&
             clean_bad_arg == 0 && once >= dead * 95 / 100 && bad);
  g_clean_keep = NULL;
}

// Finalizer, then cleanup: the cleanup runs once the finalizer has and the
// object is unreachable again.
static _Atomic int order_step, fin_at, clean_at;
static void order_fin(void *obj, void *arg) {
  (void)obj;
  (void)arg;
  fin_at = ++order_step;
}
static void order_clean(void *arg) {
  (void)arg;
  clean_at = ++order_step;
}
static void *make_ordered(void *arg) {
  (void)arg;
  void *p = gm_alloc(64);
  gm_set_finalizer(p, order_fin, NULL);
  gm_add_cleanup(p, order_clean, NULL);
  return NULL;
}

static void test_cleanup_after_finalizer(void) {
  bool ok = false;
  for (int attempt = 0; attempt < 3 && !ok; attempt++) {
    order_step = fin_at = clean_at = 0;
    on_thread(make_ordered, NULL);
    for (int i = 0; i < 10 && clean_at == 0; i++)
      settle(1);
    ok = fin_at == 1 && clean_at == 2;
  }
  CHECKF(ok, "finalizer at step %d, cleanup at step %d", (int)fin_at, (int)clean_at);
  report("an object's cleanup runs after its finalizer", ok);
}

// gm_free: the handle is cleared and the cleanups dropped.
static _Atomic int freed_clean_runs;
static void freed_clean(void *arg) {
  (void)arg;
  freed_clean_runs++;
}
static void test_free(void) {
  void *p = gm_alloc(64), *q = gm_alloc(64);
  gm_weak_t w = gm_weak_make(p);
  gm_add_cleanup(p, freed_clean, NULL);
  gm_free(p);
  bool cleared = gm_weak_get(w) == NULL;
  gm_weak_t wq = gm_weak_make(q);
  settle(2);
  bool ok = cleared && freed_clean_runs == 0 && gm_weak_get(wq) == q;
  gm_keep_alive(q);
  CHECKF(ok, "after gm_free: handle %s, %d cleanups ran", cleared ? "cleared" : "kept",
         (int)freed_clean_runs);
  report("gm_free clears the handle and drops the cleanups", ok);
}

// ---------------------------------------------------------------------------
// gm_weak_get during marking: the object it returns is kept by the caller.

#define NRACE 64
static void **g_race_strong;
static gm_weak_t g_race_weak[NRACE];
static _Atomic int race_stop, race_bad;
static _Atomic long race_rounds;

static void *race_make(void *arg) {
  (void)arg;
  g_race_strong = gm_alloc(NRACE * sizeof(void *));
  for (int i = 0; i < NRACE; i++) {
    void **node = gm_alloc(64);
    node[1] = gm_alloc(48);
    fill(node[1], 48, (uint64_t)i + 9000);
    g_race_strong[i] = node;
    g_race_weak[i] = gm_weak_make(node);
  }
  return NULL;
}

// race_worker: takes each object through its handle, drops the strong
// reference at once, and checks the object (and what it points to) across
// garbage allocation; then makes a new object for the slot.
static void *race_worker(void *arg) {
  (void)arg;
  uint64_t r = 1;
  while (!race_stop) {
    for (int i = 0; i < NRACE; i++) {
      void **node = gm_weak_get(g_race_weak[i]);
      if (node == NULL)
        continue;
      g_race_strong[i] = NULL;
      for (int k = 0; k < 20; k++)
        gm_alloc(64 + (r = r * 6364136223846793005ull + 1) % 512);
      if (!intact(node[1], 48, (uint64_t)i + 9000))
        race_bad++;
      void **fresh = gm_alloc(64);
      fresh[1] = node[1]; // (the payload moves to a new node)
      g_race_strong[i] = fresh;
      g_race_weak[i] = gm_weak_make(fresh);
      gm_keep_alive(node);
    }
    race_rounds++;
  }
  return NULL;
}

static void test_get_while_marking(void) {
  on_thread(race_make, NULL);
  pthread_t t;
  if (pthread_create(&t, NULL, race_worker, NULL) != 0)
    abort();
  double t0 = now_s();
  while (now_s() - t0 < (slow ? 1.0 : 0.5))
    gm_collect();
  race_stop = 1;
  pthread_join(t, NULL);
  CHECKF(race_bad == 0 && race_rounds > 0, "%d damaged objects in %ld rounds", (int)race_bad,
         (long)race_rounds);
  report("an object taken through its handle while marking runs stays intact",
         race_bad == 0 && race_rounds > 0);
  g_race_strong = NULL;
}

int main(void) {
  slow = GOMEM_SANITIZE[0] != 0;
  test_handles();
  test_weak_cache();
  test_no_resurrection();
  test_cleanups();
  test_cleanup_after_finalizer();
  test_free();
  test_get_while_marking();
  return test_done();
}
