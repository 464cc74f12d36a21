// test_coro: coroutines (gm_co_*) and their stacks.
//
//   - semantics: values both ways, gm_co_done, gm_co_self, nesting, bad
//     arguments (EINVAL), destroying a suspended coroutine, slot reuse;
//   - objects reachable only from a suspended coroutine's stack, only from a
//     callee-saved register at its suspension, only from a thread's own
//     stack while that thread runs a coroutine, or only from a coroutine
//     that collects while it runs: each survives collections (its contents
//     intact, its weak handle alive) while memory is reused around it;
//   - a thread switching between coroutines that allocate, while another
//     thread collects back to back (stop signals land mid-switch);
//   - running past a stack ends the process with a message naming the
//     coroutine; with guard pages by mprotect (GOMEM_STACK_MPROTECT=1, the
//     fallback before Linux 6.13) creation fails with ENOMEM at the mapping
//     limit, and works again once coroutines are destroyed;
//   - shrinking: after a collection, stacks that touched 48 KiB and now use
//     little give their pages back (RSS falls) and still work;
//   - GOMEM_GCTRACE's line counts the coroutines (both kinds of cycle).
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include "gomem.h"
#include "test.h"
#include "test_gc.h"

#ifndef GOMEM_SANITIZE
#define GOMEM_SANITIZE ""
#endif

#define MASK 0x5a5a5a5a5a5a5a5aull

// ---------------------------------------------------------------------------
// Semantics

static void counter(void *arg) {
  long n = (long)(intptr_t)arg, acc = 0;
  for (long i = 0; i < n; i++)
    acc += (long)(intptr_t)gm_co_yield((void *)(intptr_t)(i * 10 + acc));
}

static gm_co_t *inner_co;
static void inner(void *arg) {
  (void)arg;
  gm_co_yield((void *)1);
  gm_co_yield((void *)2);
}
static void outer(void *arg) {
  (void)arg;
  for (;;) {
    void *v = gm_co_resume(inner_co, NULL);
    if (gm_co_done(inner_co))
      break;
    CHECK(gm_co_self() != inner_co);
    gm_co_yield((void *)((intptr_t)v + 100));
  }
}

static void forever(void *arg) {
  for (;;)
    gm_co_yield(arg);
}

static void semantics(void) {
  gm_co_t *co = gm_co_create(counter, (void *)4, 0);
  CHECK(co != NULL && !gm_co_done(co) && gm_co_self() == NULL);
  // Resume i passes i + 1 (the first is dropped); the coroutine adds what
  // its yields return and yields i * 10 + that sum: (i+1)(i+2)/2 - 1.
  for (long i = 0; i < 4; i++) {
    long v = (long)(intptr_t)gm_co_resume(co, (void *)(intptr_t)(i + 1));
    long acc = (i + 1) * (i + 2) / 2 - 1;
    CHECKF(v == i * 10 + acc, "yield %ld gave %ld, want %ld", i, v, i * 10 + acc);
  }
  CHECK(gm_co_resume(co, (void *)5) == NULL && gm_co_done(co));
  gm_co_destroy(co);

  inner_co = gm_co_create(inner, NULL, 0);
  gm_co_t *out = gm_co_create(outer, NULL, 256 << 10);
  CHECK((intptr_t)gm_co_resume(out, NULL) == 101);
  CHECK((intptr_t)gm_co_resume(out, NULL) == 102);
  CHECK(gm_co_resume(out, NULL) == NULL && gm_co_done(out) && gm_co_done(inner_co));
  gm_co_destroy(out);
  gm_co_destroy(inner_co);

  errno = 0;
  CHECK(gm_co_create(forever, NULL, (8u << 20) + 1) == NULL && errno == EINVAL);
  errno = 0;
  CHECK(gm_co_create(NULL, NULL, 0) == NULL && errno == EINVAL);

  // A suspended coroutine destroyed mid-frame; its slot comes back clean.
  gm_co_t *a = gm_co_create(forever, (void *)7, 0);
  CHECK((intptr_t)gm_co_resume(a, NULL) == 7);
  gm_co_destroy(a);
  gm_co_t *b = gm_co_create(forever, (void *)8, 0);
  CHECK((intptr_t)gm_co_resume(b, NULL) == 8 && (intptr_t)gm_co_resume(b, NULL) == 8);
  gm_co_destroy(b);
  gm_stats_t st;
  gm_stats(&st);
  CHECKF(st.co_count == 0, "co_count %llu after destroying all", (unsigned long long)st.co_count);
  report("semantics: values, nesting, errors, destroy", test_failed == 0);
}

// ---------------------------------------------------------------------------
// Roots

#define NCO 64
#define OBJ 256

// churn_gc allocates and drops garbage, so a wrongly freed object is reused
// and overwritten.
NOINLINE static void churn_gc(void) {
  for (int i = 0; i < 4000; i++) {
    void *p = gm_alloc(OBJ);
    if (p)
      fill(p, OBJ, 0xdead);
  }
}

NOINLINE static uintptr_t make_encoded(uint64_t seed, gm_weak_t *w) {
  void *p = gm_alloc(OBJ);
  fill(p, OBJ, seed);
  *w = gm_weak_make(p);
  return (uintptr_t)p ^ MASK;
}

// on_stack: the object's address lives in this coroutine's frame only.
static void on_stack(void *arg) {
  uint64_t seed = (uint64_t)(uintptr_t)arg;
  gm_weak_t w;
  void *volatile p = (void *)(make_encoded(seed, &w) ^ MASK);
  for (;;) {
    gm_co_yield((void *)(uintptr_t)w);
    if (!intact(p, OBJ, seed))
      gm_co_yield((void *)1); // reported as a broken handle
  }
}

// in_register: the address is in r12/rbx across the suspension (the
// switch pushes them on this coroutine's stack), never in a frame slot.
static void in_register(void *arg) {
  uint64_t seed = (uint64_t)(uintptr_t)arg;
  gm_weak_t w;
  uintptr_t enc = make_encoded(seed, &w);
  register uintptr_t r asm("r12") = enc;
  __asm__ volatile("xor %1, %0" : "+r"(r) : "r"((uintptr_t)MASK));
  for (;;) {
    gm_co_yield((void *)(uintptr_t)w);
    __asm__ volatile("" : "+r"(r));
    if (!intact((void *)r, OBJ, seed))
      gm_co_yield((void *)1);
  }
}

// collects: the object's address in its frame, it collects while it runs.
static void collects(void *arg) {
  uint64_t seed = (uint64_t)(uintptr_t)arg;
  gm_weak_t w;
  void *volatile p = (void *)(make_encoded(seed, &w) ^ MASK);
  for (;;) {
    churn_gc();
    gm_collect();
    gm_co_yield((void *)(uintptr_t)(intact(p, OBJ, seed) && gm_weak_get(w) == p));
  }
}

static int check_all(gm_co_t **cos, const gm_weak_t *w, int n) {
  int bad = 0;
  for (int i = 0; i < n; i++)
    bad += gm_weak_get(w[i]) == NULL || (uintptr_t)gm_co_resume(cos[i], NULL) != (uintptr_t)w[i];
  return bad;
}

static void roots_case(const char *name, void (*fn)(void *)) {
  gm_co_t *cos[NCO];
  gm_weak_t w[NCO];
  for (int i = 0; i < NCO; i++) {
    cos[i] = gm_co_create(fn, (void *)(uintptr_t)(1000 + i), 0);
    w[i] = (gm_weak_t)(uintptr_t)gm_co_resume(cos[i], NULL);
  }
  int bad = 0;
  for (int round = 0; round < 5; round++) {
    churn_gc();
    collect();
    bad += check_all(cos, w, NCO);
  }
  for (int i = 0; i < NCO; i++)
    gm_co_destroy(cos[i]);
  CHECKF(bad == 0, "%s: %d objects lost or damaged", name, bad);
  report(name, bad == 0);
}

// the thread's own stack: the object's address is in this frame, which is
// suspended in gm_co_resume while the coroutine collects.
NOINLINE static void own_stack_case(void) {
  gm_weak_t w;
  void *volatile mine = (void *)(make_encoded(77, &w) ^ MASK);
  gm_co_t *co = gm_co_create(collects, (void *)5, 0);
  int ok = 1;
  for (int i = 0; i < 5; i++)
    ok &= (uintptr_t)gm_co_resume(co, NULL) == 1;
  ok &= intact(mine, OBJ, 77) && gm_weak_get(w) == mine;
  gm_co_destroy(co);
  CHECK(ok);
  report("roots: a thread's own stack while a coroutine collects", ok);
}

// ---------------------------------------------------------------------------
// Switches while another thread stops the world

static atomic_int stop_collecting;

static void *collector(void *arg) {
  (void)arg;
  while (!atomic_load(&stop_collecting))
    gm_collect();
  return NULL;
}

static void allocator(void *arg) {
  uint64_t seed = (uint64_t)(uintptr_t)arg;
  for (uint64_t k = 0;; k++) {
    void *volatile p = gm_alloc(OBJ);
    fill(p, OBJ, seed + k);
    gm_co_yield(NULL);
    if (!intact(p, OBJ, seed + k))
      gm_co_yield((void *)1);
  }
}

static void hammer(void) {
  pthread_t t;
  atomic_store(&stop_collecting, 0);
  if (pthread_create(&t, NULL, collector, NULL) != 0)
    abort();
  gm_co_t *cos[4];
  for (int i = 0; i < 4; i++)
    cos[i] = gm_co_create(allocator, (void *)(uintptr_t)((i + 1) << 20), 0);
  long bad = 0, n = 0;
  double end = now_s() + 1.5;
  while (now_s() < end)
    for (int i = 0; i < 4; i++, n++)
      bad += gm_co_resume(cos[i], NULL) != NULL;
  atomic_store(&stop_collecting, 1);
  pthread_join(t, NULL);
  for (int i = 0; i < 4; i++)
    gm_co_destroy(cos[i]);
  CHECKF(bad == 0 && n > 1000, "%ld damaged objects in %ld switches under collections", bad, n);
  report("switches while another thread collects back to back", bad == 0);
}

// ---------------------------------------------------------------------------
// Collections started by the pacer while coroutines allocate (marking beside
// them in the _concurrent variant). Each coroutine keeps the object it was
// last given, and hands back the one it kept before: between two of its
// turns an object lives in that suspended coroutine's frame only. Others
// stay suspended throughout, each holding an object in its frame (found,
// in a concurrent cycle, by the scan beside the program alone).

static void relay(void *arg) {
  void *volatile keep = gm_alloc(OBJ), *volatile out = NULL;
  fill(keep, OBJ, (uint64_t)(uintptr_t)arg);
  for (;;) {
    void *in = gm_co_yield(out);
    out = keep;
    keep = in;
    for (int i = 0; i < 64; i++) // 64 KiB of garbage per turn
      (void)gm_alloc(1024);
  }
}

NOINLINE static void *fresh(uint64_t seed) {
  void *p = gm_alloc(OBJ);
  fill(p, OBJ, seed);
  return p;
}

static void paced(void) {
  enum { M = 8 };
  gm_co_t *cos[M], *sleepers[NCO]; // sleepers: suspended throughout
  gm_weak_t sw[NCO];
  for (int i = 0; i < NCO; i++) {
    sleepers[i] = gm_co_create(on_stack, (void *)(uintptr_t)(3000 + i), 0);
    sw[i] = (gm_weak_t)(uintptr_t)gm_co_resume(sleepers[i], NULL);
  }
  void *held[M];
  uint64_t hseed[M], kseed[M];
  for (int i = 0; i < M; i++) {
    kseed[i] = 0x1000 + (uint64_t)i;
    cos[i] = gm_co_create(relay, (void *)(uintptr_t)kseed[i], 0);
    gm_co_resume(cos[i], NULL);
    hseed[i] = 0x2000 + (uint64_t)i;
    held[i] = fresh(hseed[i]);
  }
  gm_stats_t s0, s1;
  gm_stats(&s0);
  long bad = 0;
  for (int step = 0; step < 3000; step++) {
    int i = step % M;
    void *volatile obj = held[i];
    held[i] = NULL;
    void *out = gm_co_resume(cos[i], obj); // it keeps obj, returns what it kept
    obj = NULL;
    bad += !intact(out, OBJ, kseed[i]);
    uint64_t given = hseed[i];
    held[i] = out;
    hseed[i] = kseed[i];
    kseed[i] = given;
  }
  gm_stats(&s1);
  for (int i = 0; i < M; i++)
    gm_co_destroy(cos[i]);
  int lost = check_all(sleepers, sw, NCO);
  for (int i = 0; i < NCO; i++)
    gm_co_destroy(sleepers[i]);
  CHECKF(bad == 0, "%ld objects damaged in coroutines' hands", bad);
  CHECKF(lost == 0, "%d objects of coroutines suspended throughout lost", lost);
  CHECKF(s1.num_gc - s0.num_gc >= 5, "only %llu collections",
         (unsigned long long)(s1.num_gc - s0.num_gc));
  report("objects kept by suspended coroutines through paced collections", bad == 0 && lost == 0);
}

// ---------------------------------------------------------------------------
// A coroutine library's own stack (ucontext) in a block from malloc or
// gm_alloc: while the thread runs on it, that stack is a root up to the
// block's end, whether this thread collects or another one stops it.

static ucontext_t uc_main, uc_co;
static long uc_bad;

static void on_foreign_stack(void) {
  for (int i = 0; i < 300; i++) {
    void *volatile p = gm_alloc(OBJ);
    fill(p, OBJ, 0x4000 + (uint64_t)i);
    churn_gc();
    if (i % 10 == 0)
      gm_collect(); // collecting on this stack
    uc_bad += !intact(p, OBJ, 0x4000 + (uint64_t)i);
  }
  swapcontext(&uc_co, &uc_main);
}

static void foreign_stack(const char *name, void *stack, size_t size) {
  pthread_t t;
  atomic_store(&stop_collecting, 0);
  if (pthread_create(&t, NULL, collector, NULL) != 0)
    abort();
  uc_bad = 0;
  getcontext(&uc_co);
  uc_co.uc_stack.ss_sp = stack;
  uc_co.uc_stack.ss_size = size;
  uc_co.uc_link = &uc_main;
  makecontext(&uc_co, on_foreign_stack, 0);
  swapcontext(&uc_main, &uc_co);
  atomic_store(&stop_collecting, 1);
  pthread_join(t, NULL);
  CHECKF(uc_bad == 0, "%s: %ld objects lost", name, uc_bad);
  report(name, uc_bad == 0);
}

static void foreign_stacks(void) {
  if (GM_SECURE || strcmp(GOMEM_SANITIZE, "") != 0) {
    // (ASan and TSan do not follow swapcontext onto a stack; the hardened
    // build's blocks end in guard pages, so it does not bound them)
    test_skip("ucontext stacks in heap blocks", "not under sanitizers or the hardened build");
    return;
  }
  size_t size = 256 << 10;
  void *m = malloc(size);
  foreign_stack("roots: a ucontext stack from malloc, running", m, size);
  free(m);
  void **keep = gm_alloc(sizeof *keep); // (the stack must stay reachable)
  *keep = gm_alloc_noscan(size);
  foreign_stack("roots: a ucontext stack from gm_alloc, running", *keep, size);
}

// ---------------------------------------------------------------------------
// Overflow and the mapping limit (children)

NOINLINE static long deep(long n) {
  volatile char frame[1024];
  frame[0] = (char)n;
  return n == 0 ? frame[0] : deep(n - 1) + frame[0];
}

static void overflow_fn(void *arg) {
  (void)arg;
  gm_co_yield((void *)deep(1000)); // 1 MiB of frames in a 64 KiB stack
}

static void child_overflow(void) {
  gm_co_t *co = gm_co_create(overflow_fn, NULL, 0);
  gm_co_resume(co, NULL);
  printf("survived the overflow\n");
}

static void child_limit(void) {
  static gm_co_t *cos[70000];
  int n = 0;
  while (n < 70000 && (cos[n] = gm_co_create(forever, NULL, 0)) != NULL)
    n++;
  int e = errno;
  fprintf(stderr, "created %d, errno %d\n", n, e);
  if (n == 70000 || e != ENOMEM || n < 1000)
    exit(3);
  for (int i = 0; i < n; i++)
    gm_co_destroy(cos[i]);
  gm_co_t *again = gm_co_create(forever, (void *)9, 0);
  if (again == NULL || (intptr_t)gm_co_resume(again, NULL) != 9)
    exit(4);
  exit(0);
}

// Misuse: a destroyed coroutine resumed or destroyed again (while its slot
// is cached, before another coroutine reuses it), another thread resuming.
static void child_resume_freed(void) {
  gm_co_t *co = gm_co_create(forever, NULL, 0);
  gm_co_destroy(co);
  gm_co_resume(co, NULL);
}
static void child_destroy_twice(void) {
  gm_co_t *co = gm_co_create(forever, NULL, 0);
  gm_co_destroy(co);
  gm_co_destroy(co);
}
static gm_co_t *foreign_co;
static void *resume_elsewhere(void *arg) {
  (void)arg;
  gm_co_resume(foreign_co, NULL);
  return NULL;
}
static void child_other_thread(void) {
  foreign_co = gm_co_create(forever, NULL, 0);
  pthread_t t;
  pthread_create(&t, NULL, resume_elsewhere, NULL);
  pthread_join(t, NULL);
}

// gctrace names the coroutines whose stacks the stop scanned.
static void child_gctrace(void) {
  for (int i = 0; i < 3; i++)
    gm_co_resume(gm_co_create(forever, NULL, 0), NULL);
  gm_collect();
  exit(0);
}
static void gctrace_case(void) {
  test_outcome_t out;
  test_exec_self("gctrace", "GOMEM_GCTRACE=1", &out);
  bool ok = WIFEXITED(out.status) && WEXITSTATUS(out.status) == 0 &&
            strstr(out.err, ", 3 coroutines (") != NULL && strstr(out.err, " shrinks)") != NULL;
  CHECKF(ok, "gctrace: status %#x, stderr: %s", out.status, out.err);
  report("gctrace counts the coroutines", ok);
}

static void misuse_case(const char *name, void (*fn)(void), const char *want) {
  test_outcome_t out;
  test_run_child(fn, &out);
  int ok = WIFSIGNALED(out.status) && strstr(out.err, want) != NULL;
  CHECKF(ok, "%s: status %#x, stderr: %s", name, out.status, out.err);
  report(name, ok);
}

static void limits(const char *argv0_mode) {
  misuse_case("misuse: resuming a destroyed coroutine", child_resume_freed,
              "the coroutine was destroyed");
  misuse_case("misuse: destroying a coroutine twice", child_destroy_twice, "already destroyed");
  test_outcome_t out;
#ifdef TEST_TSAN // (TSan refuses threads after a fork of a threaded process: a new one)
  test_exec_self("otherthread", NULL, &out);
#else // (valgrind cannot run /proc/self/exe again)
  test_run_child(child_other_thread, &out);
#endif
  int ok = WIFSIGNALED(out.status) && strstr(out.err, "belongs to another thread") != NULL;
  CHECKF(ok, "other thread: status %#x, stderr: %s", out.status, out.err);
  report("misuse: resuming from another thread", ok);
  (void)argv0_mode;
  test_run_child(child_overflow, &out);
  ok = WIFSIGNALED(out.status) && // (SIGABRT; valgrind ends its child with SIGKILL)
       (WTERMSIG(out.status) == SIGABRT || strcmp(GOMEM_SANITIZE, "valgrind") == 0) &&
       strstr(out.err, "overflowed its 64 KiB stack") != NULL;
  CHECKF(ok, "overflow: status %#x, stderr: %s", out.status, out.err);
  report("overflow ends with a message naming the coroutine", ok);
  if (strcmp(GOMEM_SANITIZE, "") != 0) {
    // At the mapping limit ASan cannot map its shadow; TSan counts each
    // coroutine as a thread (8,128 at most); valgrind takes minutes.
    test_skip("mprotect guards: ENOMEM at the mapping limit", "not under " GOMEM_SANITIZE);
    return;
  }
  test_exec_self("limit", "GOMEM_STACK_MPROTECT=1", &out);
  ok = WIFEXITED(out.status) && WEXITSTATUS(out.status) == 0;
  CHECKF(ok, "mapping limit: status %#x, stderr: %s", out.status, out.err);
  report("mprotect guards: ENOMEM at the mapping limit, then reuse", ok);
}

// ---------------------------------------------------------------------------
// Shrinking

static long rss_kib(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long size = 0, res = 0;
  if (f == NULL || fscanf(f, "%ld %ld", &size, &res) != 2)
    res = 0;
  if (f)
    fclose(f);
  return res * (sysconf(_SC_PAGESIZE) / 1024);
}

NOINLINE static long touch(long n) { // about 4 KiB of stack per level
  volatile char frame[4000];
  memset((char *)frame, (int)n, sizeof frame);
  return n == 0 ? 1 : touch(n - 1) + frame[100];
}

static void sometimes_deep(void *arg) {
  (void)arg;
  void *cmd = (void *)1;
  for (;;)
    cmd = gm_co_yield((void *)(cmd ? touch(11) : 0)); // 48 KiB when asked
}

NOINLINE static long touch_and_yield(long n) { // suspends 48 KiB deep
  volatile char frame[4000];
  memset((char *)frame, (int)n, sizeof frame);
  if (n == 0) {
    while (gm_co_yield((void *)1) == NULL) {
    }
    return 0;
  }
  return touch_and_yield(n - 1) + frame[100];
}

static void deep_suspended(void *arg) {
  (void)arg;
  touch_and_yield(11);
}

static void shrinking(void) {
  enum { N = 96 };
  gm_co_t *cos[N + 1];
  long want = touch(11);
  int ok = 1;
  for (int i = 0; i < N; i++) {
    cos[i] = gm_co_create(sometimes_deep, NULL, 0);
    ok &= (long)(intptr_t)gm_co_resume(cos[i], NULL) == want;
  }
  cos[N] = gm_co_create(deep_suspended, NULL, 0); // uses over a quarter: kept
  ok &= gm_co_resume(cos[N], NULL) == (void *)1;
  gm_stats_t s0, s1;
  gm_stats(&s0);
  long before = rss_kib();
  collect();
  // The shrink pass runs a few coroutines per resume after a cycle; a cycle
  // the pacer starts meanwhile (concurrent mode) postpones it to its end.
  for (int k = 0; k < 400; k++) {
    for (int i = 0; i <= N; i++)
      gm_co_resume(cos[i], NULL);
    gm_stats(&s1);
    if (k >= 3 && s1.co_shrinks - s0.co_shrinks >= N)
      break;
    if (k >= 3)
      usleep(1000);
  }
  long after = rss_kib();
  gm_stats(&s1);
  uint64_t shrinks = s1.co_shrinks - s0.co_shrinks;
  CHECKF(shrinks == N, "%llu shrinks for %d coroutines", (unsigned long long)shrinks, N);
  CHECKF(before - after >= N * 24, "RSS %ld KiB -> %ld KiB: want at least %d KiB back", before,
         after, N * 24);
  // Measured at the pass: the deep one keeps its 48 KiB, the others a few
  // pages each.
  CHECKF(s1.co_stack_bytes >= (44u << 10) && s1.co_stack_bytes <= (52u << 10) + N * (16u << 10),
         "co_stack_bytes %llu after the pass", (unsigned long long)s1.co_stack_bytes);
  for (int i = 0; i < N; i++) // deep again: the stacks still work
    ok &= (long)(intptr_t)gm_co_resume(cos[i], (void *)1) == want;
  for (int i = 0; i <= N; i++)
    gm_co_destroy(cos[i]);
  CHECK(ok);
  printf("shrink: RSS %ld -> %ld KiB, %llu shrinks\n", before, after, (unsigned long long)shrinks);
  report("shrinking returns pages and the stacks still work",
         ok && shrinks == N && before - after >= N * 24);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "limit") == 0)
    child_limit();
  if (argc > 1 && strcmp(argv[1], "gctrace") == 0)
    child_gctrace();
  if (argc > 1 && strcmp(argv[1], "otherthread") == 0) {
    child_other_thread();
    return 0;
  }
  semantics();
  roots_case("roots: a suspended coroutine's frame", on_stack);
  roots_case("roots: a callee-saved register at suspension", in_register);
  own_stack_case();
  hammer();
  paced();
  foreign_stacks();
  limits(argv[0]);
  shrinking();
  test_self = argv[0]; // (under valgrind, natively)
  gctrace_case();
  return test_done();
}
