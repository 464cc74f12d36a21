// test_gc_misc: the collector next to the rest of gomem.
//
//   - gm_free of a GC object twice (small, noscan, large) aborts with
//     "gomem: double free" (forked children, before the parent collects);
//     freeing once does not;
//   - gm_free of GC objects (small and large) makes their memory reusable
//     without a collection: with automatic collection off, allocating and
//     freeing in a loop keeps the heap (and the pacer's count) flat, and
//     freed slots in a live set are allocated again;
//   - malloc and the collector coexist: malloc'ed blocks that nothing points
//     to survive collections intact (the collector only reclaims GC
//     objects) and free normally; GC objects and malloc'ed blocks that point
//     to each other, interleaved in the heap, stay intact;
//   - gm_realloc of a GC object returns a GC object (it can carry a
//     finalizer and is reclaimed when dropped) with the contents; a scanned
//     one stays scanned (keeps what it points to), a noscan one stays noscan;
//   - fork: the child of a process using the collector sees its objects
//     intact, can gm_alloc, gm_collect and have finalizers run; the parent
//     carries on;
//   - GOMEM_GCTRACE=1 prints one line per cycle in Go's format
//       gc N @T s P%: a+b+c ms clock, X->Y->Z MB, G MB goal, W P
//     numbered from 1, as many as num_gc; without it, nothing;
//   - GOMEM_GOGC sets the initial GOGC ("off" turns collection off).
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "gomem.h"
#define TEST_CHILD_TIMEOUT_MS 30000
#include "test.h"
#include "test_gc.h"

#ifndef GOMEM_SANITIZE
#define GOMEM_SANITIZE ""
#endif

static int slow, valgrind;

// ---------------------------------------------------------------------------
// Helpers (the common ones are in test_gc.h)

static _Atomic long fin_count;
static void count_fin(void *obj, void *arg) {
  (void)obj;
  (void)arg;
  atomic_fetch_add(&fin_count, 1);
}

// ---------------------------------------------------------------------------
// Forked children (see test_misuse.c)

static int expect_abort(const char *name, void (*fn)(void), const char *msg) {
  test_outcome_t o;
  test_run_child(fn, &o);
  int aborted = !o.timed_out && WIFSIGNALED(o.status) && WTERMSIG(o.status) == SIGABRT;
  int named = strstr(o.err, msg) != NULL;
  CHECKF(aborted && named, "%s: want SIGABRT and \"%s\"; got %s, stderr \"%s\"", name, msg,
         o.timed_out             ? "a timeout"
         : WIFSIGNALED(o.status) ? strsignal(WTERMSIG(o.status))
                                 : "an exit",
         o.err);
  report(name, aborted && named);
  return aborted && named;
}

static int expect_clean(const char *name, void (*fn)(void)) {
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
  return ok;
}

// ---------------------------------------------------------------------------
// Double free

static void *pass(void *p) {
  void *volatile v = p;
  return v;
}

static void double_free_gc_small(void) {
  void *p = gm_alloc(64);
  gm_free(p);
  gm_free(pass(p));
}
static void double_free_gc_noscan(void) {
  void *p = gm_alloc_noscan(256);
  gm_free(p);
  gm_free(pass(p));
}
static void double_free_gc_large(void) {
  void *p = gm_alloc(1 << 20);
  gm_free(p);
  gm_free(pass(p));
}
// The first free happens after a collection left the object's span
// uncached and swept.
static void double_free_gc_after_collect(void) {
  void **keep = gm_alloc(100 * sizeof *keep);
  for (int i = 0; i < 100; i++)
    keep[i] = gm_alloc(48);
  churn(1 << 20);
  gm_collect();
  void *p = keep[50];
  gm_free(p);
  gm_free(pass(p));
}
static void free_once_ok(void) {
  for (int i = 0; i < 100; i++) {
    gm_free(gm_alloc(64));
    gm_free(gm_alloc_noscan(100));
    gm_free(gm_alloc(100000));
  }
  gm_collect();
  void **keep = gm_alloc(100 * sizeof *keep);
  for (int i = 0; i < 100; i++)
    keep[i] = gm_alloc(48);
  churn(1 << 20);
  gm_collect();
  for (int i = 0; i < 100; i++)
    gm_free(keep[i]);
  gm_collect();
}

// ---------------------------------------------------------------------------
// gm_free makes memory reusable

NOINLINE static void alloc_free_loop(long n, size_t size) {
  for (long i = 0; i < n; i++) {
    uint64_t *p = gm_alloc(size);
    p[0] = (uint64_t)i;
    p[size / 8 - 1] = (uint64_t)i;
    gm_free(p);
  }
}

static void test_free_reuse(void) {
  int old = gm_set_gc_percent(-1); // no collection: only gm_free can reuse
  collect();
  gm_stats_t s0, s1;
  long n = slow ? 100000 : 1000000;
  alloc_free_loop(1000, 64);
  gm_stats(&s0);
  alloc_free_loop(n, 64);
  alloc_free_loop(n / 4, 1000);
  alloc_free_loop(n / 1000, 1 << 20);
  alloc_free_loop(n / 1000, 100000);
  gm_stats(&s1);
  double allocated =
      (double)n * 64 + (double)n / 4 * 1000 + (double)n / 1000 * ((1 << 20) + 100000);
  int flat = s1.heap_inuse <= s0.heap_inuse + (4u << 20);
  CHECKF(flat, "heap in use %" PRIu64 " -> %" PRIu64 " after allocating and freeing %.0f MiB",
         s0.heap_inuse, s1.heap_inuse, allocated / (1 << 20));
  CHECKF(s1.num_gc == s0.num_gc, "collections ran with GOGC off");
  int paced = s1.gc_heap_alloc <= s0.gc_heap_alloc + (4u << 20);
  CHECKF(paced, "gc_heap_alloc %" PRIu64 " -> %" PRIu64 ": freed objects still counted",
         s0.gc_heap_alloc, s1.gc_heap_alloc);

  // Freed slots in the middle of live objects are allocated again.
  int m = slow ? 20000 : 100000;
  void **v = gm_alloc((size_t)m * sizeof *v);
  for (int i = 0; i < m; i++)
    v[i] = gm_alloc(128);
  gm_stats(&s0);
  for (int round = 0; round < 4; round++) {
    for (int i = round % 2; i < m; i += 2) {
      gm_free(v[i]);
      v[i] = gm_alloc(128);
      fill(v[i], 128, (uint64_t)i);
    }
  }
  gm_stats(&s1);
  int bad = 0;
  for (int i = 0; i < m; i++)
    bad += !intact(v[i], 128, (uint64_t)i);
  int reused = s1.heap_inuse <= s0.heap_inuse + (uint64_t)m * 128 / 4;
  CHECKF(reused, "replacing half of %d live objects 4 times: heap in use %" PRIu64 " -> %" PRIu64,
         m, s0.heap_inuse, s1.heap_inuse);
  CHECKF(bad == 0, "%d of %d objects damaged", bad, m);
  v = NULL;
  gm_set_gc_percent(old);
  report("gm_free of GC objects: memory reused without a collection",
         flat && paced && reused && bad == 0);
}

// ---------------------------------------------------------------------------
// malloc and the collector

typedef struct mixed {
  void *gc;  // a GC object (kept by this one: it is a GC object too)
  char *mal; // a malloc'ed block
  uint64_t seed;
  size_t gc_size, mal_size;
} mixed_t;

static mixed_t **volatile g_mixed;

NOINLINE static void build_mixed(int n, uintptr_t *orphans, int norphans) {
  mixed_t **v = gm_alloc((size_t)n * sizeof *v);
  for (int i = 0; i < n; i++) {
    mixed_t *x = gm_alloc(sizeof *x);
    x->seed = (uint64_t)i;
    x->gc_size = 16 + (size_t)(i * 37 % 3000) / 8 * 8;
    x->mal_size = 16 + (size_t)(i * 53 % 5000) / 8 * 8;
    x->gc = gm_alloc(x->gc_size);
    fill(x->gc, x->gc_size, (uint64_t)i);
    x->mal = i % 2 ? malloc(x->mal_size) : gm_malloc(x->mal_size);
    fill(x->mal, x->mal_size, (uint64_t)i + 7777);
    v[i] = x;
    if (i < norphans) { // a malloc'ed block nothing points to
      size_t sz = 64 + (size_t)(i % 100) * 8;
      char *o = i % 2 ? malloc(sz) : gm_malloc(sz);
      fill(o, sz, (uint64_t)i + 99999);
      orphans[i] = hide(o);
    }
  }
  g_mixed = v;
}

static void test_malloc_coexist(void) {
  int n = slow ? 5000 : 20000, norphans = 2000;
  uintptr_t *orphans = malloc((size_t)norphans * sizeof *orphans);
  build_mixed(n, orphans, norphans);
  clear_stack();
  int rounds = slow ? 5 : 15;
  for (int r = 0; r < rounds; r++) {
    // Churn in both allocators, and realloc some malloc'ed blocks.
    churn(1 << 20);
    for (int i = 0; i < 200; i++) {
      void *m = malloc(100 + (size_t)i * 10);
      memset(m, 0xab, 100);
      free(m);
    }
    for (int i = r; i < n; i += 97) {
      mixed_t *x = g_mixed[i];
      char *q = i % 2 ? realloc(x->mal, x->mal_size * 2) : gm_realloc(x->mal, x->mal_size * 2);
      fill(q + x->mal_size, x->mal_size, 1); // the new half: anything
      x->mal = q;
    }
    collect();
  }
  int bad_gc = 0, bad_mal = 0, bad_orphan = 0, not_owned = 0;
  for (int i = 0; i < n; i++) {
    mixed_t *x = g_mixed[i];
    bad_gc += x->seed != (uint64_t)i || !intact(x->gc, x->gc_size, (uint64_t)i);
    bad_mal += !intact(x->mal, x->mal_size, (uint64_t)i + 7777);
    if (!GOMEM_SANITIZE[0] || i % 2 == 0) // sanitizers' malloc is not gomem's
      not_owned += !gm_owns(x->mal);
    not_owned += !gm_owns(x->gc);
  }
  for (int i = 0; i < norphans; i++) {
    size_t sz = 64 + (size_t)(i % 100) * 8;
    bad_orphan += !intact(unhide(orphans[i]), sz, (uint64_t)i + 99999);
  }
  CHECKF(bad_gc == 0, "%d of %d GC objects damaged", bad_gc, n);
  CHECKF(bad_mal == 0, "%d of %d malloc'ed blocks damaged", bad_mal, n);
  CHECKF(bad_orphan == 0, "%d of %d unreferenced malloc'ed blocks damaged by collections",
         bad_orphan, norphans);
  CHECKF(not_owned == 0, "gm_owns false for %d live objects", not_owned);
  // Every malloc'ed block is still allocated: freeing them does not abort.
  for (int i = 0; i < n; i++) {
    mixed_t *x = g_mixed[i];
    if (i % 2)
      free(x->mal);
    else
      gm_free(x->mal);
    x->mal = NULL;
  }
  for (int i = 0; i < norphans; i++) {
    if (i % 2)
      free(unhide(orphans[i]));
    else
      gm_free(unhide(orphans[i]));
  }
  free(orphans);
  g_mixed = NULL;
  report("malloc'ed blocks and GC objects side by side",
         bad_gc == 0 && bad_mal == 0 && bad_orphan == 0 && not_owned == 0);
}

// ---------------------------------------------------------------------------
// gm_realloc

typedef struct holder {
  uint64_t seed;
  void *kid[8];
} holder_t;

static _Atomic long kid_fin_scan, kid_fin_noscan;
static void kid_fin(void *obj, void *arg) {
  (void)obj;
  atomic_fetch_add(arg ? &kid_fin_noscan : &kid_fin_scan, 1);
}

static holder_t *volatile g_scan_holder[64];
static holder_t *volatile g_noscan_holder[64];

// realloc_holders: holders grown with gm_realloc from a scanned and from a
// noscan GC object, each pointing at 8 finalizable kids.
NOINLINE static void realloc_holders(int n) {
  for (int i = 0; i < n; i++) {
    for (int noscan = 0; noscan < 2; noscan++) {
      holder_t *h = noscan ? gm_alloc_noscan(sizeof *h) : gm_alloc(sizeof *h);
      h->seed = (uint64_t)i;
      for (int k = 0; k < 8; k++) {
        h->kid[k] = gm_alloc(64);
        gm_set_finalizer(h->kid[k], kid_fin, (void *)(uintptr_t)noscan);
      }
      holder_t *g = gm_realloc(h, 4000 + (size_t)i * 100);
      if (noscan)
        g_noscan_holder[i] = g;
      else
        g_scan_holder[i] = g;
    }
  }
}

NOINLINE static void drop_realloced(int n) {
  for (int i = 0; i < n; i++) {
    char *p = gm_alloc(40 + (size_t)i % 64);
    fill(p, 40, (uint64_t)i);
    char *q = gm_realloc(p, 3000 + (size_t)i);
    gm_set_finalizer(q, count_fin, NULL); // aborts unless q starts a GC object
  }
}

static void test_realloc(void) {
  int ok = 1;
  // Contents: grow small -> small, small -> large, large -> larger; shrink.
  static const size_t from[] = {40, 100, 3000, 100000}, to[] = {1000, 200000, 70000, 300000};
  for (int i = 0; i < 4; i++) {
    char *p = gm_alloc(from[i]);
    fill(p, from[i], 500 + (uint64_t)i);
    char *q = gm_realloc(p, to[i]);
    int c = q != NULL && intact(q, from[i], 500 + (uint64_t)i);
    CHECKF(c, "gm_realloc(%zu -> %zu) lost the contents", from[i], to[i]);
    char *r = gm_realloc(q, 16);
    int d = r != NULL && intact(r, 16, 500 + (uint64_t)i);
    CHECKF(d, "gm_realloc(%zu -> 16) lost the contents", to[i]);
    ok &= c && d;
  }
  // GC objects: finalizable, reclaimed when dropped.
  int n = slow ? 300 : 1000;
  atomic_store(&fin_count, 0);
  drop_realloced(n);
  long got = wait_until(&fin_count, n * 95 / 100);
  CHECKF(got >= n * 95 / 100, "%ld of %d dropped gm_realloc'ed objects finalized", got, n);
  ok &= got >= n * 95 / 100;
  // Scanned stays scanned, noscan stays noscan.
  int nh = 64;
  realloc_holders(nh);
  clear_stack();
  long noscan_kids = wait_until(&kid_fin_noscan, nh * 8 * 95 / 100);
  for (int i = 0; i < 3; i++)
    collect();
  usleep(20000);
  long scan_kids = atomic_load(&kid_fin_scan);
  CHECKF(noscan_kids >= nh * 8 * 95 / 100,
         "%ld of %d objects pointed to only by gm_realloc'ed noscan objects finalized", noscan_kids,
         nh * 8);
  CHECKF(scan_kids == 0, "%ld objects pointed to by gm_realloc'ed scanned objects finalized",
         scan_kids);
  int bad = 0;
  for (int i = 0; i < nh; i++)
    bad += g_scan_holder[i]->seed != (uint64_t)i || g_noscan_holder[i]->seed != (uint64_t)i;
  CHECKF(bad == 0, "%d gm_realloc'ed holders damaged", bad);
  ok &= noscan_kids >= nh * 8 * 95 / 100 && scan_kids == 0 && bad == 0;
  for (int i = 0; i < nh; i++) {
    for (int k = 0; k < 8; k++)
      gm_set_finalizer(g_scan_holder[i]->kid[k], NULL, NULL);
    g_scan_holder[i] = g_noscan_holder[i] = NULL;
  }
  report("gm_realloc of GC objects: GC objects, contents, kind kept", ok);
}

// ---------------------------------------------------------------------------
// fork

typedef struct fnode {
  struct fnode *next;
  uint64_t idx, check;
} fnode_t;

static fnode_t *volatile g_list;
static const int list_len = 10000;

NOINLINE static void build_list(void) {
  fnode_t *head = NULL;
  for (int i = list_len - 1; i >= 0; i--) {
    fnode_t *x = gm_alloc(sizeof *x);
    x->idx = (uint64_t)i;
    x->check = pat(4242, (size_t)i);
    x->next = head;
    head = x;
  }
  g_list = head;
}

static int list_ok(void) {
  int i = 0;
  for (fnode_t *x = g_list; x; x = x->next, i++)
    if (x->idx != (uint64_t)i || x->check != pat(4242, (size_t)i))
      return 0;
  return i == list_len;
}

NOINLINE static void drop_fin(int n) {
  for (int i = 0; i < n; i++)
    gm_set_finalizer(gm_alloc(48 + (size_t)(i % 5) * 16), count_fin, NULL);
}

static void fork_child(void) {
  alarm(60);
  for (int i = 0; i < 3; i++) {
    churn(1 << 20);
    collect();
  }
  if (!list_ok()) {
    fprintf(stderr, "child: inherited list damaged\n");
    _exit(1);
  }
  atomic_store(&fin_count, 0);
  drop_fin(500);
  long got = wait_until(&fin_count, 475);
  if (got < 475) {
    fprintf(stderr, "child: %ld of 500 finalizers ran\n", got);
    _exit(2);
  }
  gm_stats_t st;
  gm_stats(&st);
  if (st.num_gc == 0) {
    fprintf(stderr, "child: no collection counted\n");
    _exit(3);
  }
  if (!list_ok()) {
    fprintf(stderr, "child: list damaged at the end\n");
    _exit(4);
  }
}

static void test_fork(void) {
  build_list();
  // Some finalizable garbage in flight when fork happens.
  atomic_store(&fin_count, 0);
  drop_fin(200);
  collect();
  int ok = expect_clean("fork: child allocates, collects, finalizes", fork_child);
  // The parent carries on.
  for (int i = 0; i < 3; i++) {
    churn(1 << 20);
    collect();
  }
  int parent_ok = list_ok();
  long base = atomic_load(&fin_count);
  drop_fin(500);
  long got = wait_until(&fin_count, base + 475);
  CHECKF(parent_ok, "the parent's list was damaged after fork");
  CHECKF(got >= base + 475, "parent after fork: %ld of 500 finalizers ran", got - base);
  g_list = NULL;
  report("fork: the parent carries on", ok && parent_ok && got >= base + 475);
}

// ---------------------------------------------------------------------------
// GOMEM_GCTRACE and GOMEM_GOGC (re-executed children)

NOINLINE static void child_gctrace(void) {
  alarm(60);
  for (int i = 0; i < 3; i++)
    collect();
  churn(32u << 20); // automatic collections (goal 4 MiB)
  collect();
  gm_stats_t st;
  gm_stats(&st);
  fflush(stderr);
  fprintf(stderr, "num_gc=%" PRIu64 "\n", st.num_gc);
}

NOINLINE static void child_gogc(void) {
  alarm(60);
  churn(64u << 20);
  gm_stats_t st;
  gm_stats(&st);
  printf("gc_percent=%" PRId64 " num_gc=%" PRIu64 "\n", st.gc_percent, st.num_gc);
}

static void test_gctrace(void) {
  static char out[1 << 16];
  int st = test_run_self("gctrace", "GOMEM_GCTRACE=1", 2, out, sizeof out);
  CHECKF(st == 0, "GOMEM_GCTRACE=1 child: status %d", st);
  regex_t re;
  int rc =
      regcomp(&re,
              "^gc ([0-9]+) @([0-9]+\\.[0-9]+)s ([0-9]+)%: ([0-9]+\\.[0-9]+)\\+([0-9]+\\.[0-9]+)"
              "\\+([0-9]+\\.[0-9]+) ms clock, ([0-9]+)->([0-9]+)->([0-9]+) MB, ([0-9]+) MB goal, "
              "([0-9]+) P$",
              REG_EXTENDED);
  CHECK(rc == 0);
  long lines = 0, bad = 0, expect_n = 1, num_gc = -1;
  double last_t = -1;
  char *save = NULL;
  for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    if (strncmp(line, "num_gc=", 7) == 0) {
      num_gc = strtol(line + 7, NULL, 10);
      continue;
    }
    regmatch_t m[12];
    if (regexec(&re, line, 12, m, 0) != 0) {
      CHECKF(0, "GOMEM_GCTRACE line not in the format: \"%s\"", line);
      bad++;
      continue;
    }
    lines++;
    long n = strtol(line + m[1].rm_so, NULL, 10);
    double t = strtod(line + m[2].rm_so, NULL);
    long pct = strtol(line + m[3].rm_so, NULL, 10);
    long procs = strtol(line + m[11].rm_so, NULL, 10);
    if (n != expect_n || t < last_t || pct > 100 || procs < 1) {
      CHECKF(0, "GOMEM_GCTRACE line %ld: \"%s\" (want gc %ld, time after %.3f)", lines, line,
             expect_n, last_t);
      bad++;
    }
    expect_n = n + 1;
    last_t = t;
  }
  regfree(&re);
  CHECKF(num_gc > 0 && lines == num_gc, "%ld GOMEM_GCTRACE lines for num_gc %ld", lines, num_gc);
  int ok = st == 0 && bad == 0 && num_gc > 0 && lines == num_gc;
  // Without the option: no trace.
  st = test_run_self("gctrace", "GOMEM_GCTRACE=0", 2, out, sizeof out);
  int quiet = st == 0 && strstr(out, "gc 1 @") == NULL && strstr(out, "num_gc=") != NULL;
  CHECKF(quiet, "GOMEM_GCTRACE=0: status %d, stderr \"%.300s\"", st, out);
  report("GOMEM_GCTRACE=1: one line per cycle, in Go's format", ok && quiet);
}

static void test_gogc_env(void) {
  char out[4096];
  int st = test_run_self("gogc", "GOMEM_GOGC=off", 1, out, sizeof out);
  long pct = 0, n = -1;
  int parsed = sscanf(out, "gc_percent=%ld num_gc=%ld", &pct, &n) == 2;
  int off = st == 0 && parsed && pct == -1 && n == 0;
  CHECKF(off, "GOMEM_GOGC=off: status %d, \"%s\"", st, out);
  st = test_run_self("gogc", "GOMEM_GOGC=50", 1, out, sizeof out);
  parsed = sscanf(out, "gc_percent=%ld num_gc=%ld", &pct, &n) == 2;
  int fifty = st == 0 && parsed && pct == 50 && n > 0;
  CHECKF(fifty, "GOMEM_GOGC=50: status %d, \"%s\"", st, out);
  report("GOMEM_GOGC sets GOGC (off: no automatic collection)", off && fifty);
}

// ---------------------------------------------------------------------------

int main(int argc, char **argv) {
  slow = GOMEM_SANITIZE[0] != 0 || GM_DEBUG >= 2;
  valgrind = strcmp(GOMEM_SANITIZE, "valgrind") == 0;
  if (slow)
    fin_timeout = 60;
  if (argc > 1 && strcmp(argv[1], "gctrace") == 0) {
    child_gctrace();
    return 0;
  }
  if (argc > 1 && strcmp(argv[1], "gogc") == 0) {
    child_gogc();
    return 0;
  }

  // Children first, while this process has no collector threads.
  expect_clean("gm_free of GC objects once (control)", free_once_ok);
  expect_abort("double gm_free of a small GC object", double_free_gc_small, "gomem: double free");
  expect_abort("double gm_free of a noscan GC object", double_free_gc_noscan, "gomem: double free");
  expect_abort("double gm_free of a large GC object", double_free_gc_large, "gomem: double free");
  expect_abort("double gm_free after a collection", double_free_gc_after_collect,
               "gomem: double free");

  test_free_reuse();
  test_malloc_coexist();
  test_realloc();
#ifndef TEST_TSAN // TSan: no threads in the child of a multithreaded fork
  test_fork();
#else
  (void)test_fork;
#endif
  if (!valgrind) { // valgrind's /proc/self/exe is valgrind itself
    test_gctrace();
    test_gogc_env();
  }
  return test_done();
}
