// test_gc_bounded: the pacer keeps the heap bounded, and the collector's
// statistics say what happened.
//
// Statistics (in this process, automatic collection off unless said):
//   - before the first GC allocation no collection is counted;
//   - gm_set_gc_percent returns the previous value, gc_percent reflects it;
//   - each gm_collect adds exactly one to num_gc and num_forced_gc, a pause
//     to pause_total_ns and pause_ns[(num_gc + 255) % 256], and sets
//     last_gc_ns to a time within the call;
//   - gc_heap_live after gm_collect is the live data (a known 8 MiB set, give
//     or take); next_gc is live * (1 + GOGC/100) (at least 4 MiB * GOGC/100);
//   - automatic collections run as garbage is allocated (num_gc advances,
//     num_forced_gc does not); gc_cpu_fraction is in [0, 1].
// Bounded heap (a child process per GOGC value, re-executed with
// GOMEM_GOGC set): 2 GiB of garbage in objects of 16 B - 64 KiB, with a
// steady live set of 20 MiB that keeps being replaced (each replaced object
// is checked first). Peak heap in use (sampled) and peak RSS (VmHWM) stay
// under live * (1 + GOGC/100) * 1.5 + 32 MiB; GOGC=50 peaks lower than
// GOGC=200; many collections ran; no live object was damaged.
// Under sanitizers and valgrind: less garbage, no RSS bound (their shadow
// memory and tools' heaps are counted there), heap in use only; under
// valgrind the workload runs once in this process (no re-execution).
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gomem.h"
#include "test.h"
#include "test_gc.h"

#ifndef GOMEM_SANITIZE
#define GOMEM_SANITIZE ""
#endif

#define MiB (1024.0 * 1024.0)

static int slow, valgrind;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t xorshift(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

// status_kb reads a "Name:   N kB" line of /proc/self/status.
static long status_kb(const char *name) {
  FILE *f = fopen("/proc/self/status", "r");
  if (f == NULL)
    return -1;
  char line[256];
  long v = -1;
  size_t n = strlen(name);
  while (fgets(line, sizeof line, f))
    if (strncmp(line, name, n) == 0 && line[n] == ':') {
      v = strtol(line + n + 1, NULL, 10);
      break;
    }
  fclose(f);
  return v;
}

// ---------------------------------------------------------------------------
// Statistics

// hold_live allocates a live set of n objects of size, held by a gm_alloc'ed
// array returned to the caller.
NOINLINE static void **hold_live(int n, size_t size) {
  void **v = gm_alloc((size_t)n * sizeof *v);
  for (int i = 0; i < n; i++) {
    uint64_t *p = gm_alloc(size);
    p[0] = pat(1, (size_t)i);
    v[i] = p;
  }
  return v;
}

NOINLINE static void garbage(size_t bytes, size_t size) {
  for (size_t done = 0; done < bytes; done += size)
    *(volatile char *)gm_alloc(size) = 1;
}

static void *volatile g_live;

static void test_stats(void) {
  gm_stats_t s0, s1, s2;
  gm_stats(&s0);
  CHECKF(s0.num_gc == 0 && s0.pause_total_ns == 0 && s0.gc_heap_alloc == 0 &&
             s0.gc_heap_live == 0 && s0.last_gc_ns == 0,
         "before the first gm_alloc: num_gc %" PRIu64 ", pause %" PRIu64 ", gc_heap_alloc %" PRIu64
         ", gc_heap_live %" PRIu64,
         s0.num_gc, s0.pause_total_ns, s0.gc_heap_alloc, s0.gc_heap_live);

  int env_gogc = getenv("GOMEM_GOGC") != NULL;
  int prev = gm_set_gc_percent(-1);
  if (!env_gogc)
    CHECKF(prev == 100, "gm_set_gc_percent: previous value %d, want the default 100", prev);
  gm_stats(&s1);
  CHECKF(s1.gc_percent == -1, "gc_percent %" PRId64 " after gm_set_gc_percent(-1)", s1.gc_percent);

  // A known live set: 128 objects of 64 KiB (8 MiB), held from a global.
  const uint64_t live = 128u * 65536u;
  g_live = hold_live(128, 65536);
  clear_stack();
  gm_stats(&s1);
  uint64_t t0 = now_ns();
  gm_collect();
  uint64_t t1 = now_ns();
  gm_stats(&s2);
  CHECKF(s2.num_gc == s1.num_gc + 1, "num_gc %" PRIu64 " -> %" PRIu64 " over one gm_collect",
         s1.num_gc, s2.num_gc);
  CHECKF(s2.num_forced_gc == s1.num_forced_gc + 1,
         "num_forced_gc %" PRIu64 " -> %" PRIu64 " over one gm_collect", s1.num_forced_gc,
         s2.num_forced_gc);
  uint64_t pause = s2.pause_total_ns - s1.pause_total_ns;
  uint64_t last = s2.pause_ns[(s2.num_gc + 255) % 256];
  CHECKF(s2.pause_total_ns > 0 && pause > 0 && pause <= t1 - t0,
         "pause_total_ns %" PRIu64 " -> %" PRIu64 " over a gm_collect of %" PRIu64 " ns",
         s1.pause_total_ns, s2.pause_total_ns, t1 - t0);
  CHECKF(last == pause,
         "pause_ns[(num_gc + 255) %% 256] = %" PRIu64 ", pause_total_ns grew %" PRIu64, last,
         pause);
  CHECKF(s2.last_gc_ns >= t0 && s2.last_gc_ns <= t1,
         "last_gc_ns %" PRIu64 " not within the gm_collect call [%" PRIu64 ", %" PRIu64 "]",
         s2.last_gc_ns, t0, t1);
  CHECKF(s2.gc_heap_live >= live && s2.gc_heap_live <= live + (2u << 20),
         "gc_heap_live %" PRIu64 " with %" PRIu64 " bytes live", s2.gc_heap_live, live);
  CHECKF(s2.gc_heap_alloc >= s2.gc_heap_live, "gc_heap_alloc %" PRIu64 " < gc_heap_live %" PRIu64,
         s2.gc_heap_alloc, s2.gc_heap_live);
  uint64_t marked = s2.gc_heap_live;

  // GOGC values: next_gc follows (live * (1 + GOGC/100)).
  static const int gogc[] = {100, 50, 200, 300};
  int expect_prev = -1;
  for (size_t i = 0; i < sizeof gogc / sizeof gogc[0]; i++) {
    prev = gm_set_gc_percent(gogc[i]);
    CHECKF(prev == expect_prev, "gm_set_gc_percent(%d) returned %d, want %d", gogc[i], prev,
           expect_prev);
    expect_prev = gogc[i];
    gm_stats(&s1);
    uint64_t goal = marked + marked / 100 * (uint64_t)gogc[i];
    CHECKF(s1.gc_percent == gogc[i], "gc_percent %" PRId64 ", want %d", s1.gc_percent, gogc[i]);
    CHECKF(s1.next_gc >= goal - goal / 50 && s1.next_gc <= goal + goal / 50 + (1u << 20),
           "GOGC %d, %" PRIu64 " bytes live: next_gc %" PRIu64 ", want about %" PRIu64, gogc[i],
           marked, s1.next_gc, goal);
  }
  prev = gm_set_gc_percent(-1);
  CHECKF(prev == 300, "gm_set_gc_percent(-1) returned %d, want 300", prev);
  prev = gm_set_gc_percent(100);
  CHECKF(prev == -1, "gm_set_gc_percent(100) returned %d, want -1", prev);

  // The heap minimum: with little live, the goal is 4 MiB * GOGC/100. A
  // stale copy of the dropped array's address (a register or stack word of
  // an earlier call: roots are conservative) may keep it a cycle or two
  // more (under ASan, in a busy CI run, three were not always enough), so
  // up to six collections, each after clearing the stack; gomem itself
  // holding it would keep it through all six.
  g_live = NULL;
  gm_set_gc_percent(-1);
  for (int tries = 0; tries < 6; tries++) {
    clear_stack();
    gm_collect();
    gm_stats(&s1);
    if (s1.gc_heap_live < (1u << 20)) {
      if (tries > 0)
        printf("dropped live set reclaimed by collection %d after dropping it\n", tries + 1);
      break;
    }
  }
  gm_set_gc_percent(100);
  gm_stats(&s1);
  CHECKF(s1.gc_heap_live < (1u << 20), "gc_heap_live %" PRIu64 " after dropping the live set",
         s1.gc_heap_live);
  // (4 MiB give or take the rounding of 4 MiB * GOGC / 100.)
  CHECKF(s1.next_gc >= (4u << 20) - 1024 && s1.next_gc <= (5u << 20),
         "next_gc %" PRIu64 " with %" PRIu64 " bytes live, want the 4 MiB minimum", s1.next_gc,
         s1.gc_heap_live);

  // Automatic collections: 64 MiB of garbage with a 4 MiB goal.
  gm_stats(&s1);
  garbage(64u << 20, 1024);
  gm_stats(&s2);
  CHECKF(s2.num_gc >= s1.num_gc + 5, "64 MiB of garbage, goal 4 MiB: %" PRIu64 " collections",
         s2.num_gc - s1.num_gc);
  CHECKF(s2.num_forced_gc == s1.num_forced_gc, "automatic collections counted as forced");
  CHECKF(s2.gc_cpu_fraction >= 0 && s2.gc_cpu_fraction <= 1, "gc_cpu_fraction %f",
         s2.gc_cpu_fraction);
  CHECKF(s2.gc_heap_alloc < (32u << 20), "gc_heap_alloc %" PRIu64 " with a 4 MiB goal",
         s2.gc_heap_alloc);
  printf("statistics: %" PRIu64 " collections, %.3f ms of pauses, gc cpu %.1f%%\n", s2.num_gc,
         (double)s2.pause_total_ns / 1e6, s2.gc_cpu_fraction * 100);
}

// ---------------------------------------------------------------------------
// The bounded-heap workload

typedef struct result {
  uint64_t peak_inuse, num_gc, live, allocated;
  long peak_rss_kb, base_rss_kb;
  int bad;
  double seconds;
} result_t;

// A live object: its seed in the first word, its size in the second, the
// pattern in the last.
static size_t pick_size(uint64_t r) {
  // About log-uniform in [16, 64 KiB): [2^e, 2^(e+1)) for e in 4..15.
  unsigned e = 4 + (unsigned)(r % 12);
  return ((size_t)1 << e) + (size_t)((r >> 8) % ((uint64_t)1 << e));
}

static void mark_obj(uint64_t *p, size_t size, uint64_t seed) {
  p[0] = pat(seed, 0);
  p[1] = size;
  if (size >= 24)
    p[size / 8 - 1] = pat(seed, 1);
}
static int obj_ok(const uint64_t *p, uint64_t seed) {
  size_t size = p[1];
  return p[0] == pat(seed, 0) && size >= 16 && size <= 65536 &&
         (size < 24 || p[size / 8 - 1] == pat(seed, 1));
}

typedef struct live_set {
  uint64_t **obj; // gm_alloc'ed: scanned
  uint64_t *seed; // malloc'ed
  int n;
  uint64_t bytes;
} live_set_t;

static live_set_t *volatile g_set;

NOINLINE static void build_live(live_set_t *ls, uint64_t target, uint64_t *r) {
  int cap = (int)(target / 1024) + 16;
  ls->obj = gm_alloc((size_t)cap * sizeof *ls->obj);
  ls->seed = malloc((size_t)cap * sizeof *ls->seed);
  ls->n = 0;
  ls->bytes = 0;
  while (ls->bytes < target && ls->n < cap) {
    size_t size = pick_size(xorshift(r));
    uint64_t *p = gm_alloc(size);
    ls->seed[ls->n] = *r;
    mark_obj(p, size, *r);
    ls->obj[ls->n++] = p;
    ls->bytes += size;
  }
}

NOINLINE static void run_workload(uint64_t live_target, uint64_t total, result_t *res) {
  memset(res, 0, sizeof *res);
  uint64_t r = 0x2545F4914F6CDD1Dull;
  res->base_rss_kb = status_kb("VmRSS");
  live_set_t ls;
  build_live(&ls, live_target, &r);
  g_set = &ls;
  res->live = ls.bytes;
  gm_stats_t st;
  gm_stats(&st);
  uint64_t gc0 = st.num_gc, next_sample = 0, t0 = now_ns();
  uint64_t done = 0;
  while (done < total) {
    uint64_t x = xorshift(&r);
    if (x % 8 == 0) { // replace a live object (same size: the live set stays put)
      int k = (int)((x >> 8) % (uint64_t)ls.n);
      uint64_t *old = ls.obj[k];
      if (!obj_ok(old, ls.seed[k]))
        res->bad++;
      size_t size = old[1];
      if (size < 16 || size > 65536)
        size = 64;
      uint64_t *p = gm_alloc(size);
      ls.seed[k] = x;
      mark_obj(p, size, x);
      ls.obj[k] = p;
      done += size;
    } else {
      size_t size = pick_size(x);
      uint64_t *p = gm_alloc(size);
      p[0] = x | 0x8000000000000000ull;
      done += size;
    }
    if (done >= next_sample) {
      next_sample = done + (8u << 20);
      gm_stats(&st);
      if (st.heap_inuse > res->peak_inuse)
        res->peak_inuse = st.heap_inuse;
    }
  }
  for (int k = 0; k < ls.n; k++)
    if (!obj_ok(ls.obj[k], ls.seed[k]))
      res->bad++;
  gm_stats(&st);
  res->num_gc = st.num_gc - gc0;
  res->allocated = done;
  res->peak_rss_kb = status_kb("VmHWM");
  res->seconds = (double)(now_ns() - t0) * 1e-9;
  g_set = NULL;
  free(ls.seed);
}

static uint64_t live_target(void) {
  return valgrind ? (8u << 20) : (20u << 20);
}
static uint64_t total_bytes(void) {
  return valgrind ? (128ull << 20) : slow ? (512ull << 20) : (2048ull << 20);
}

static void print_result(FILE *f, const result_t *r) {
  fprintf(f,
          "peak_inuse=%" PRIu64 " peak_rss_kb=%ld base_rss_kb=%ld num_gc=%" PRIu64 " live=%" PRIu64
          " allocated=%" PRIu64 " bad=%d seconds=%.2f\n",
          r->peak_inuse, r->peak_rss_kb, r->base_rss_kb, r->num_gc, r->live, r->allocated, r->bad,
          r->seconds);
}

static int parse_result(const char *s, result_t *r) {
  const char *p = strstr(s, "peak_inuse=");
  if (p == NULL)
    return 0;
  return sscanf(p,
                "peak_inuse=%" SCNu64 " peak_rss_kb=%ld base_rss_kb=%ld num_gc=%" SCNu64
                " live=%" SCNu64 " allocated=%" SCNu64 " bad=%d seconds=%lf",
                &r->peak_inuse, &r->peak_rss_kb, &r->base_rss_kb, &r->num_gc, &r->live,
                &r->allocated, &r->bad, &r->seconds) == 8;
}

// check_result applies the bounds for GOGC gogc.
static int check_result(const result_t *r, int gogc) {
  double goal = (double)r->live * (1 + gogc / 100.0);
  double bound = goal * 1.5 + 32 * MiB;
  int ok = 1;
  printf("GOGC %3d: live %.1f MiB, peak heap in use %.1f MiB, peak RSS %.1f MiB (bound %.1f), "
         "%" PRIu64 " collections, %.2f s\n",
         gogc, (double)r->live / MiB, (double)r->peak_inuse / MiB, (double)r->peak_rss_kb / 1024,
         bound / MiB, r->num_gc, r->seconds);
  CHECKF(r->bad == 0, "GOGC %d: %d live objects damaged", gogc, r->bad);
  ok &= r->bad == 0;
  CHECKF((double)r->peak_inuse <= bound, "GOGC %d: peak heap in use %.1f MiB > bound %.1f MiB",
         gogc, (double)r->peak_inuse / MiB, bound / MiB);
  ok &= (double)r->peak_inuse <= bound;
  if (!slow) {
    CHECKF(r->peak_rss_kb > 0 && (double)r->peak_rss_kb * 1024 <= bound,
           "GOGC %d: peak RSS %.1f MiB > bound %.1f MiB", gogc, (double)r->peak_rss_kb / 1024,
           bound / MiB);
    ok &= r->peak_rss_kb > 0 && (double)r->peak_rss_kb * 1024 <= bound;
  }
  // Each cycle can let the heap grow by live * GOGC/100 (or the 4 MiB
  // minimum): at least half as many cycles as that predicts.
  double step = (double)r->live * gogc / 100.0;
  if (step < 4 * MiB * gogc / 100.0)
    step = 4 * MiB * gogc / 100.0;
  uint64_t want = (uint64_t)((double)r->allocated / step / 2);
  CHECKF(r->num_gc >= want,
         "GOGC %d: %" PRIu64 " collections for %.0f MiB allocated, want %" PRIu64, gogc, r->num_gc,
         (double)r->allocated / MiB, want);
  ok &= r->num_gc >= want;
  return ok;
}

int main(int argc, char **argv) {
  slow = GOMEM_SANITIZE[0] != 0 || GM_DEBUG >= 2;
  valgrind = strcmp(GOMEM_SANITIZE, "valgrind") == 0;
  if (argc > 1 && strcmp(argv[1], "workload") == 0) { // child: GOMEM_GOGC is set
    result_t r;
    run_workload(live_target(), total_bytes(), &r);
    print_result(stdout, &r);
    return 0;
  }

  test_stats();

  if (valgrind) { // valgrind runs /proc/self/exe as its own tool: in process
    result_t r;
    gm_set_gc_percent(100);
    run_workload(live_target(), total_bytes(), &r);
    check_result(&r, 100);
    return test_done();
  }
  static const int gogc[] = {100, 50, 200};
  result_t res[3];
  int ok[3];
  for (int i = 0; i < 3; i++) {
    char env[32], out[1024];
    snprintf(env, sizeof env, "GOMEM_GOGC=%d", gogc[i]);
    int st = test_run_self("workload", env, 1, out, sizeof out);
    ok[i] = st == 0 && parse_result(out, &res[i]);
    CHECKF(ok[i], "%s child: status %d, output \"%s\"", env, st, out);
    if (ok[i])
      ok[i] = check_result(&res[i], gogc[i]);
  }
  if (ok[1] && ok[2]) {
    // GOGC=50 aims at 1.5 x live, 200 at 3 x live: the difference is live
    // itself (20 MiB); ask for a quarter of it.
    double margin = (double)res[1].live / 4;
    CHECKF((double)res[1].peak_inuse + margin <= (double)res[2].peak_inuse,
           "peak heap in use: GOGC=50 %.1f MiB, GOGC=200 %.1f MiB", (double)res[1].peak_inuse / MiB,
           (double)res[2].peak_inuse / MiB);
    if (!slow)
      CHECKF((double)res[1].peak_rss_kb * 1024 + margin <= (double)res[2].peak_rss_kb * 1024,
             "peak RSS: GOGC=50 %.1f MiB, GOGC=200 %.1f MiB", (double)res[1].peak_rss_kb / 1024,
             (double)res[2].peak_rss_kb / 1024);
    CHECKF(res[1].num_gc > res[2].num_gc, "collections: GOGC=50 %" PRIu64 ", GOGC=200 %" PRIu64,
           res[1].num_gc, res[2].num_gc);
  }
  return test_done();
}
