// test_gc_final: finalizers (gm_set_finalizer).
//
//   - misuse: a finalizer on memory that is not the start of a GC object
//     (malloc'ed, stack, global, interior of a small or a large GC object)
//     aborts with "gomem: ..." (in forked children, before the parent uses
//     the collector); setting, replacing and removing finalizers on GC
//     objects (small, large, noscan) does not;
//   - each dropped object's finalizer runs exactly once, with its own arg,
//     on a thread other than the main one, and sees the object and what it
//     points to intact;
//   - an object resurrected by its finalizer (stored into a global) stays
//     intact across later collections, is never finalized again, and is
//     reclaimed once dropped again (the live heap shrinks); a finalizer may
//     set a new finalizer on its object, which runs after the next drop;
//   - gm_set_finalizer(p, NULL, NULL) cancels; a second gm_set_finalizer
//     replaces the first;
//   - order: in chains A -> B -> C of finalizable objects, B's finalizer runs
//     only after A's has, C's only after B's;
//   - a finalizer may allocate GC objects; they are ordinary objects.
// Since roots are conservative, "finalized" checks allow 5% of the objects
// to be kept by stale words; everything else is exact.
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "gomem.h"
#include "test.h"
#include "test_gc.h"

#ifndef GOMEM_SANITIZE
#define GOMEM_SANITIZE ""
#endif

static int slow;
static pthread_t main_thread;

// ---------------------------------------------------------------------------
// Helpers (the common ones are in test_gc.h)

// settle: a few more cycles, with time for the finalizer thread to run what
// they queue.
NOINLINE static void settle(void) {
  for (int i = 0; i < 4; i++) {
    collect();
    usleep(slow ? 50000 : 10000);
  }
}

// ---------------------------------------------------------------------------
// Misuse, in forked children (see test_misuse.c)

static void expect_abort(const char *name, void (*fn)(void)) {
  test_outcome_t o;
  test_run_child(fn, &o);
  int aborted = !o.timed_out && WIFSIGNALED(o.status) && WTERMSIG(o.status) == SIGABRT;
  int named = strncmp(o.err, "gomem:", 6) == 0 || strstr(o.err, "\ngomem:") != NULL;
  CHECKF(aborted && named, "%s: want SIGABRT and a \"gomem:\" line; got %s, stderr \"%s\"", name,
         o.timed_out             ? "a timeout"
         : WIFSIGNALED(o.status) ? strsignal(WTERMSIG(o.status))
                                 : "an exit",
         o.err);
  report(name, aborted && named);
}

static void expect_clean(const char *name, void (*fn)(void)) {
  test_outcome_t o;
  test_run_child(fn, &o);
  int ok = !o.timed_out && WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0 &&
           strstr(o.err, "gomem") == NULL;
  CHECKF(ok, "%s: want a clean exit; got %s %d, stderr \"%s\"", name,
         o.timed_out             ? "timeout"
         : WIFSIGNALED(o.status) ? "signal"
                                 : "exit",
         WIFSIGNALED(o.status) ? WTERMSIG(o.status) : WEXITSTATUS(o.status), o.err);
  report(name, ok);
}

static void nop_fin(void *obj, void *arg) {
  (void)obj;
  (void)arg;
}

static void *hide_ptr(void *p) {
  void *volatile v = p;
  return v;
}

static char misuse_global[64];

static void fin_on_malloc(void) {
  void *p = malloc(64);
  gm_set_finalizer(hide_ptr(p), nop_fin, NULL);
}
static void fin_on_stack(void) {
  char buf[64];
  memset(buf, 0, sizeof buf);
  gm_set_finalizer(hide_ptr(buf), nop_fin, NULL);
}
static void fin_on_global(void) {
  gm_set_finalizer(hide_ptr(misuse_global), nop_fin, NULL);
}
static void fin_on_interior(void) {
  char *p = gm_alloc(64);
  gm_set_finalizer(p + 8, nop_fin, NULL);
}
static void fin_on_interior_large(void) {
  char *p = gm_alloc(1 << 20);
  gm_set_finalizer(p + 4096, nop_fin, NULL);
}

static _Atomic long child_fin;
static void child_fin_fn(void *obj, void *arg) {
  (void)obj;
  (void)arg;
  atomic_fetch_add(&child_fin, 1);
}

// Control: valid uses, and finalizers run in a fresh process.
NOINLINE static void child_drop(void) {
  for (int i = 0; i < 200; i++) {
    void *p = i % 3 == 0 ? gm_alloc_noscan(100) : i % 3 == 1 ? gm_alloc(48) : gm_alloc(50000);
    gm_set_finalizer(p, nop_fin, NULL);
    gm_set_finalizer(p, child_fin_fn, NULL); // replaces
    if (i % 10 == 0) {
      gm_set_finalizer(p, NULL, NULL);
      gm_set_finalizer(p, NULL, NULL); // removing twice is harmless
    }
  }
}
static void fin_valid(void) {
  child_drop();
  if (wait_until(&child_fin, 170) < 170)
    _exit(1);
}

// ---------------------------------------------------------------------------
// Exactly once, right arg, other thread, contents intact

typedef struct kid {
  uint64_t w[8];
} kid_t;

typedef struct fobj {
  uint64_t idx;
  kid_t *kid;
  size_t size;
  uint64_t body[]; // pattern up to size
} fobj_t;

#define MAX_ONCE 2000
static _Atomic int once_calls[MAX_ONCE]; // per object (late finalizers may still come)
static _Atomic long once_total, once_wrong_arg, once_wrong_thread, once_bad_contents;

static void once_fn(void *obj, void *arg) {
  fobj_t *o = obj;
  uint64_t idx = (uintptr_t)arg - 1;
  if (o->idx != idx)
    atomic_fetch_add(&once_wrong_arg, 1);
  if (pthread_equal(pthread_self(), main_thread))
    atomic_fetch_add(&once_wrong_thread, 1);
  size_t body = o->size - sizeof *o;
  if (!gc_intact(o->body, body, idx) || !gc_intact(o->kid, sizeof(kid_t), idx + 1000000))
    atomic_fetch_add(&once_bad_contents, 1);
  if (idx < MAX_ONCE)
    atomic_fetch_add(&once_calls[idx], 1);
  atomic_fetch_add(&once_total, 1);
}

static size_t obj_size(int i) {
  static const size_t sizes[] = {32, 48, 96, 200, 1024, 4096, 9000, 40000};
  return sizes[i % (sizeof sizes / sizeof sizes[0])];
}

NOINLINE static void drop_once(int n) {
  for (int i = 0; i < n; i++) {
    size_t size = obj_size(i);
    fobj_t *o = gm_alloc(size);
    o->idx = (uint64_t)i;
    o->size = size;
    fill(o->body, size - sizeof *o, (uint64_t)i);
    o->kid = gm_alloc(sizeof(kid_t)); // reachable only from o
    fill(o->kid, sizeof(kid_t), (uint64_t)i + 1000000);
    gm_set_finalizer(o, once_fn, (void *)(uintptr_t)(i + 1));
  }
}

static void test_once(void) {
  int n = slow ? 400 : 2000;
  drop_once(n);
  long got = wait_until(&once_total, n * 95 / 100);
  // Objects with churn in between: none finalized twice even while their
  // memory is reused.
  for (int i = 0; i < 3; i++)
    churn(4u << 20);
  settle();
  int twice = 0, finalized = 0;
  for (int i = 0; i < n; i++) {
    int c = atomic_load(&once_calls[i]);
    finalized += c > 0;
    twice += c > 1;
  }
  CHECKF(got >= n * 95 / 100, "%ld of %d dropped objects finalized", got, n);
  CHECKF(twice == 0, "%d objects finalized more than once", twice);
  CHECKF(atomic_load(&once_total) == finalized, "%ld finalizer calls for %d objects",
         (long)atomic_load(&once_total), finalized);
  CHECKF(atomic_load(&once_wrong_arg) == 0, "%ld finalizers got another object's arg",
         (long)atomic_load(&once_wrong_arg));
  CHECKF(atomic_load(&once_wrong_thread) == 0, "%ld finalizers ran on the main thread",
         (long)atomic_load(&once_wrong_thread));
  CHECKF(atomic_load(&once_bad_contents) == 0,
         "%ld finalizers found their object or what it points to damaged",
         (long)atomic_load(&once_bad_contents));
  report("finalizers: once each, right arg, other thread, intact",
         got >= n * 95 / 100 && twice == 0 && !once_wrong_arg && !once_wrong_thread &&
             !once_bad_contents);
}

// ---------------------------------------------------------------------------
// Resurrection

#define NRES 100
#define RES_SIZE (64u << 10)
static fobj_t *resurrected[NRES]; // a root: storing there resurrects
static _Atomic int res_calls[NRES], rearm_calls[NRES];
static _Atomic long res_total, rearm_total, res_bad_contents;
static int res_rearm; // the finalizer sets a new finalizer

static void rearm_fn(void *obj, void *arg) {
  (void)obj;
  uint64_t idx = (uintptr_t)arg - 1;
  if (idx < NRES)
    atomic_fetch_add(&rearm_calls[idx], 1);
  atomic_fetch_add(&rearm_total, 1);
}

static void res_fn(void *obj, void *arg) {
  fobj_t *o = obj;
  uint64_t idx = (uintptr_t)arg - 1;
  if (idx >= NRES || o->idx != idx || !gc_intact(o->kid, sizeof(kid_t), idx + 1000000))
    atomic_fetch_add(&res_bad_contents, 1);
  if (idx < NRES) {
    atomic_fetch_add(&res_calls[idx], 1);
    if (res_rearm)
      gm_set_finalizer(o, rearm_fn, arg);
    __atomic_store_n(&resurrected[idx], o, __ATOMIC_RELEASE);
  }
  atomic_fetch_add(&res_total, 1);
}

NOINLINE static void drop_res(int first, int n) {
  for (int i = first; i < first + n; i++) {
    fobj_t *o = gm_alloc(RES_SIZE);
    o->idx = (uint64_t)i;
    o->size = RES_SIZE;
    fill(o->body, RES_SIZE - sizeof *o, (uint64_t)i);
    o->kid = gm_alloc(sizeof(kid_t));
    fill(o->kid, sizeof(kid_t), (uint64_t)i + 1000000);
    gm_set_finalizer(o, res_fn, (void *)(uintptr_t)(i + 1));
  }
}

static int res_intact(int i) {
  fobj_t *o = __atomic_load_n(&resurrected[i], __ATOMIC_ACQUIRE);
  return o != NULL && o->idx == (uint64_t)i &&
         gc_intact(o->body, RES_SIZE - sizeof *o, (uint64_t)i) &&
         gc_intact(o->kid, sizeof(kid_t), (uint64_t)i + 1000000);
}

static uint64_t live_after_collect(void) {
  collect();
  gm_stats_t st;
  gm_stats(&st);
  return st.gc_heap_live;
}

static void test_resurrect(void) {
  // First half: resurrected; second half: resurrected and re-armed.
  int half = NRES / 2;
  drop_res(0, half);
  long got = wait_until(&res_total, half * 95 / 100);
  CHECKF(got >= half * 95 / 100, "%ld of %d objects resurrected", got, half);
  res_rearm = 1;
  drop_res(half, half);
  got = wait_until(&res_total, (long)(NRES * 95 / 100));
  int rounds = slow ? 8 : 20, bad = 0, n = 0;
  for (int r = 0; r < rounds; r++) {
    churn(2u << 20);
    collect();
  }
  usleep(20000);
  for (int i = 0; i < NRES; i++) {
    if (__atomic_load_n(&resurrected[i], __ATOMIC_ACQUIRE) == NULL)
      continue;
    n++;
    if (!res_intact(i))
      bad++;
  }
  CHECKF(bad == 0, "%d of %d resurrected objects damaged after %d collections", bad, n, rounds);
  CHECKF(atomic_load(&res_bad_contents) == 0, "%ld resurrecting finalizers found damage",
         (long)atomic_load(&res_bad_contents));
  int again = 0;
  for (int i = 0; i < NRES; i++)
    again += atomic_load(&res_calls[i]) > 1;
  CHECKF(again == 0, "%d resurrected objects finalized again while reachable", again);
  long early = atomic_load(&rearm_total);
  CHECKF(early == 0, "%ld re-armed finalizers ran while their objects were reachable", early);
  report("resurrected objects stay intact, not finalized again",
         bad == 0 && again == 0 && early == 0);

  // Drop them all again: the live heap shrinks by (nearly) all of them; the
  // re-armed ones are finalized a second time (by their new finalizer), the
  // others never again.
  uint64_t before = live_after_collect();
  for (int i = 0; i < NRES; i++)
    __atomic_store_n(&resurrected[i], NULL, __ATOMIC_RELEASE);
  long rearmed = wait_until(&rearm_total, half * 95 / 100);
  settle();
  uint64_t after = live_after_collect();
  uint64_t expect = (uint64_t)n * RES_SIZE;
  CHECKF(before >= expect, "live heap %llu bytes with %d resurrected objects of %u bytes",
         (unsigned long long)before, n, RES_SIZE);
  CHECKF(after + expect * 8 / 10 <= before,
         "dropping %d resurrected objects (%llu bytes) freed only %lld bytes", n,
         (unsigned long long)expect, (long long)(before - after));
  again = 0;
  for (int i = 0; i < half; i++)
    again += atomic_load(&res_calls[i]) > 1;
  for (int i = half; i < NRES; i++)
    again += atomic_load(&res_calls[i]) > 1 || atomic_load(&rearm_calls[i]) > 1;
  CHECKF(again == 0, "%d objects finalized twice by the same finalizer", again);
  CHECKF(rearmed >= half * 95 / 100, "%ld of %d re-armed finalizers ran after the drop", rearmed,
         half);
  report("dropped again: reclaimed, re-armed finalizers run",
         after + expect * 8 / 10 <= before && again == 0 && rearmed >= half * 95 / 100);
}

// ---------------------------------------------------------------------------
// Cancel and replace

static _Atomic long cancel_kept, cancel_ran, replaced_first, replaced_second;

static void cancel_fn(void *obj, void *arg) {
  (void)obj;
  atomic_fetch_add((uintptr_t)arg % 2 == 0 ? &cancel_kept : &cancel_ran, 1);
}
static void first_fn(void *obj, void *arg) {
  (void)obj;
  (void)arg;
  atomic_fetch_add(&replaced_first, 1);
}
static void second_fn(void *obj, void *arg) {
  (void)obj;
  (void)arg;
  atomic_fetch_add(&replaced_second, 1);
}

// Objects 4k and 4k + 2 get a finalizer that is then removed; 4k + 1 keep
// theirs; 4k + 3 get first_fn replaced by second_fn.
NOINLINE static void drop_cancel(int n) {
  for (int i = 0; i < n; i++) {
    void *p = gm_alloc(obj_size(i));
    if (i % 4 == 3) {
      gm_set_finalizer(p, first_fn, NULL);
      gm_set_finalizer(p, second_fn, NULL);
      continue;
    }
    gm_set_finalizer(p, cancel_fn, (void *)(uintptr_t)i);
    if (i % 2 == 0)
      gm_set_finalizer(p, NULL, NULL);
  }
}

static void test_cancel(void) {
  int n = slow ? 400 : 2000;
  drop_cancel(n);
  long ran = wait_until(&cancel_ran, (n / 4) * 95 / 100);
  long second = wait_until(&replaced_second, (n / 4) * 95 / 100);
  settle();
  CHECKF(ran >= (n / 4) * 95 / 100, "%ld of %d finalizers ran", ran, n / 4);
  CHECKF(second >= (n / 4) * 95 / 100, "%ld of %d replacing finalizers ran", second, n / 4);
  CHECKF(atomic_load(&cancel_kept) == 0, "%ld removed finalizers ran",
         (long)atomic_load(&cancel_kept));
  CHECKF(atomic_load(&replaced_first) == 0, "%ld replaced finalizers ran",
         (long)atomic_load(&replaced_first));
  report("gm_set_finalizer(p, NULL, NULL) cancels; a second replaces",
         ran >= (n / 4) * 95 / 100 && !cancel_kept && !replaced_first);
}

// ---------------------------------------------------------------------------
// Order: A -> B -> C

typedef struct link {
  struct link *next;
  uint64_t idx, level; // level 0: A, 1: B, 2: C
  uint64_t body[6];
} link_t;

#define MAX_CHAINS 500
static _Atomic unsigned char order_done[MAX_CHAINS * 3]; // [idx * 3 + level]
static _Atomic long order_total[3], order_violations, order_bad_next;

static void order_fn(void *obj, void *arg) {
  link_t *l = obj;
  (void)arg;
  uint64_t i = l->idx, lv = l->level;
  if (lv > 0 && !atomic_load(&order_done[i * 3 + lv - 1]))
    atomic_fetch_add(&order_violations, 1); // the one pointing at it has not run
  if (lv < 2 && atomic_load(&order_done[i * 3 + lv + 1]))
    atomic_fetch_add(&order_violations, 1); // the one it points at ran first
  if (lv < 2 && (l->next == NULL || l->next->idx != i || l->next->level != lv + 1 ||
                 !gc_intact(l->next->body, sizeof l->next->body, i * 3 + lv + 1)))
    atomic_fetch_add(&order_bad_next, 1);
  atomic_store(&order_done[i * 3 + lv], 1);
  atomic_fetch_add(&order_total[lv < 3 ? lv : 0], 1);
}

NOINLINE static void drop_chains(int n) {
  for (int i = 0; i < n; i++) {
    link_t *prev = NULL;
    for (int lv = 2; lv >= 0; lv--) { // C first
      link_t *l = gm_alloc(sizeof *l);
      l->idx = (uint64_t)i;
      l->level = (uint64_t)lv;
      l->next = prev;
      fill(l->body, sizeof l->body, (uint64_t)i * 3 + (uint64_t)lv);
      gm_set_finalizer(l, order_fn, NULL);
      prev = l;
    }
  }
}

static void test_order(void) {
  int n = slow ? 100 : 500;
  drop_chains(n);
  long a = wait_until(&order_total[0], n * 95 / 100);
  long b = wait_until(&order_total[1], n * 90 / 100);
  long c = wait_until(&order_total[2], n * 85 / 100);
  settle();
  CHECKF(a >= n * 95 / 100 && b >= n * 90 / 100 && c >= n * 85 / 100,
         "of %d chains A -> B -> C, %ld A, %ld B, %ld C finalized", n, a, b, c);
  CHECKF(atomic_load(&order_violations) == 0, "%ld finalizers ran out of order",
         (long)atomic_load(&order_violations));
  CHECKF(atomic_load(&order_bad_next) == 0,
         "%ld finalizers found the next object of the chain damaged",
         (long)atomic_load(&order_bad_next));
  report("finalizers of A -> B -> C run in that order", a >= n * 95 / 100 && b >= n * 90 / 100 &&
                                                            c >= n * 85 / 100 &&
                                                            !order_violations && !order_bad_next);
}

// ---------------------------------------------------------------------------
// Finalizers that allocate

#define NMADE 256
static uint64_t *made[NMADE]; // objects allocated by finalizers (a root)
static _Atomic long made_total;

static void alloc_fn(void *obj, void *arg) {
  (void)obj;
  long k = atomic_fetch_add(&made_total, 1);
  uint64_t *p = gm_alloc(1000);
  fill(p, 1000, (uint64_t)(uintptr_t)arg);
  p[0] = (uint64_t)(uintptr_t)arg; // first word: the seed, for the check
  if (k < NMADE)
    __atomic_store_n(&made[k], p, __ATOMIC_RELEASE);
}

static int made_ok(const uint64_t *p, int n) {
  if (!gm_owns(p) || p[0] < 7 || p[0] >= (uint64_t)n + 7)
    return 0;
  for (size_t i = 1; i < 1000 / 8; i++)
    if (p[i] != pat(p[0], i))
      return 0;
  return 1;
}

NOINLINE static void drop_allocating(int n) {
  for (int i = 0; i < n; i++)
    gm_set_finalizer(gm_alloc(64), alloc_fn, (void *)(uintptr_t)(i + 7));
}

static void test_allocating(void) {
  int n = NMADE;
  drop_allocating(n);
  long got = wait_until(&made_total, n * 95 / 100);
  for (int r = 0; r < 5; r++) {
    churn(2u << 20);
    collect();
  }
  usleep(20000);
  int bad = 0, k = 0;
  for (int i = 0; i < NMADE; i++) {
    uint64_t *p = __atomic_load_n(&made[i], __ATOMIC_ACQUIRE);
    if (p == NULL)
      continue;
    k++;
    if (!made_ok(p, n))
      bad++;
  }
  CHECKF(got >= n * 95 / 100, "%ld of %d allocating finalizers ran", got, n);
  CHECKF(bad == 0, "%d of %d objects allocated by finalizers damaged", bad, k);
  report("finalizers may allocate GC objects", got >= n * 95 / 100 && bad == 0);
  memset(made, 0, sizeof made);
}

// ---------------------------------------------------------------------------

int main(void) {
  slow = GOMEM_SANITIZE[0] != 0 || GM_DEBUG >= 2;
  if (slow)
    fin_timeout = 60;
  main_thread = pthread_self();

  // Misuse first: the parent has not used the collector yet (no threads).
  expect_clean("valid set / replace / remove (control)", fin_valid);
  expect_abort("finalizer on malloc'ed memory aborts", fin_on_malloc);
  expect_abort("finalizer on a stack address aborts", fin_on_stack);
  expect_abort("finalizer on a global aborts", fin_on_global);
  expect_abort("finalizer on an interior pointer aborts", fin_on_interior);
  expect_abort("finalizer inside a large object aborts", fin_on_interior_large);

  test_once();
  test_resurrect();
  test_cancel();
  test_order();
  test_allocating();
  return test_done();
}
