// test_gc_pacer: pacing of cycles that mark beside the program
// (GOMEM_GC_CONCURRENT=1). The test re-executes itself with the option and
// reports SKIP where the kernel cannot track writes.
//
//   - assists: beside 32 MiB of live records (8 MiB under sanitizers) in
//     short chains hung from one table, with the background marker slowed
//     down (a scan hook spins 2 microseconds per object it scans, so
//     that alone it cannot keep up), a thread allocating pointer-holding
//     garbage as fast as it can, GOGC=25, pays for it with mark assists
//     (gm_stats assist_total_ns and assist_scanned grow); the heap it sees
//     (gc_heap_alloc, sampled every 2 MiB) stays under twice the goal, where
//     a thread waits for the cycle to end.
//   - the runway by rate: after two cycles that marked (slowly: 2 us per
//     object) while the program allocated 64 KiB every 10 ms, it allocates
//     as fast as it can; the next cycle starts in the first three quarters
//     of the way from live to goal (gc_due re-estimates the runway from the
//     rate since the last cycle ended), where the bytes the slow cycles saw
//     allocated (under 2 MiB of an 8 MiB distance) would have started it
//     near the goal (0.87). Measured 0.07-0.30; 0.56 once in a fresh-clone
//     CI run, where other tests slowed the fast allocator and so its rate.
//   - the statistics of a concurrent cycle: gc_concurrent is 1, and the
//     first stop, the marking and the last stop each have a length.
//   - gctrace's CPU terms (a child with GOMEM_GCTRACE=1): each concurrent
//     line gives the background thread's CPU time while it marked, more
//     than zero and no more than the marking's clock time.
//   - the background marker's share of the CPUs (children with the explicit
//     barrier, the default pauses and GOMEM_GC_PROCS=1: a quarter of a
//     core): beside 32 MiB of
//     live records, a thread allocating as fast as it can with every thread
//     of the process bound to one CPU, over four cycles (after one to
//     settle in), the marker takes
//     at most 0.4 of the marking's clock (it takes half without its pauses);
//     a thread that sleeps a millisecond after each 64 KiB leaves the CPUs
//     idle, and the marker runs on as an idle worker: idle time at least a
//     tenth of its background time (0.45-2 of it measured, 0.25-0.36 of the
//     clock in all with other tests running, 0.85 without; none when it
//     never sees a core idle).
//   - the forced fallback (GOMEM_WTRACK=0, as where the kernel refuses):
//     a child asking for concurrent marking collects stop-the-world
//     (gc_concurrent 0, no first-stop length) and gctrace says why.
#include <dirent.h>
#include <inttypes.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mgcmark.h"
#include "mgcpacer.h"
#include "test.h"
#include "test_gc.h"

#ifndef GOMEM_SANITIZE
#define GOMEM_SANITIZE ""
#endif
#define MiB ((uint64_t)1 << 20)

typedef struct rec {
  struct rec *next;
  uint64_t v[7];
} rec_t;

static rec_t *volatile g_live;

static rec_t *make_list(uint64_t bytes) {
  rec_t *head = NULL;
  for (uint64_t i = 0; i < bytes / sizeof(rec_t); i++) {
    rec_t *r = gm_alloc(sizeof *r);
    r->next = head;
    r->v[0] = i;
    head = r;
  }
  return head;
}

static bool list_intact(const rec_t *r, uint64_t bytes) {
  uint64_t n = bytes / sizeof(rec_t);
  for (; r; r = r->next)
    if (r->v[0] != --n)
      return false;
  return n == 0;
}

// The live records: chains of CHAIN hung from one table (the table's scan
// greys many at once: work the assists can take).
enum { CHAIN = 8 };
static rec_t **volatile g_table;

static rec_t **make_table(uint64_t bytes, size_t *n) {
  *n = bytes / (sizeof(rec_t) * CHAIN);
  rec_t **t = gm_alloc(*n * sizeof *t);
  for (size_t i = 0; i < *n; i++)
    t[i] = make_list(CHAIN * sizeof(rec_t));
  return t;
}

static bool table_intact(rec_t **t, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!list_intact(t[i], CHAIN * sizeof(rec_t)))
      return false;
  return true;
}

// slow_scan (gc_debug_scan_hook, called for each object the background
// marker or a stop's workers scan; never for an assist's).
static void slow_scan(uintptr_t entry) {
  (void)entry;
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  do
    clock_gettime(CLOCK_MONOTONIC, &t);
  while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < 2000);
}

static void garbage_64k(void) {
  for (int i = 0; i < 1024; i++)
    *(volatile char *)gm_alloc_noscan(64) = 1;
}

static void test_rate(void) {
  size_t n;
  g_table = make_table(8 * MiB, &n);
  collect();
  gc_debug_scan_hook = slow_scan;
  gm_stats_t s0, s;
  gm_stats(&s0);
  struct timespec nap = {0, 10 * 1000 * 1000};
  do { // slowly, through two whole cycles
    garbage_64k();
    nanosleep(&nap, NULL);
    gm_stats(&s);
  } while (s.num_gc < s0.num_gc + 2);
  uint64_t live = s.gc_heap_live, goal = s.next_gc, at = 0;
  for (uint64_t done = 0; done < 4 * goal && at == 0; done += 64 << 10) {
    garbage_64k();
    if (atomic_load(&gc_blacken))
      at = atomic_load(&gc_heap_live);
    gm_stats(&s);
    if (s.num_gc != s0.num_gc + 2 && at == 0)
      break; // a cycle began and ended between two looks (not expected)
  }
  gc_debug_scan_hook = NULL;
  double where = at > live && goal > live ? (double)(at - live) / (double)(goal - live) : -1;
  bool ok = table_intact(g_table, n) && where >= 0 && where < 0.75;
  CHECKF(ok,
         "the cycle started at %.2f of the way from live (%" PRIu64 " MiB) to goal (%" PRIu64
         " MiB)",
         where, live / MiB, goal / MiB);
  printf("after slow cycles, a fast allocator's cycle started at %.2f of the way to the goal\n",
         where);
  report("the runway follows the allocation rate since the last cycle", ok);
  g_table = NULL;
}

static void test_assists(uint64_t scale) {
  size_t n;
  g_table = make_table(32 * MiB / scale, &n);
  int gogc = gm_set_gc_percent(25); // a short runway
  collect();
  gc_debug_scan_hook = slow_scan;
  gm_stats_t s0, s;
  gm_stats(&s0);
  double worst = 0;
  rec_t *keep = NULL; // short chains of garbage: the marker has work
  uint64_t bytes = 512 * MiB / scale;
  for (uint64_t done = 0; done < bytes; done += sizeof(rec_t)) {
    rec_t *r = gm_alloc(sizeof *r);
    r->next = (done & 1023) ? keep : NULL;
    keep = r;
    if ((done & (2 * MiB - 1)) == 0) {
      gm_stats(&s);
      double ratio = s.next_gc ? (double)s.gc_heap_alloc / (double)s.next_gc : 0;
      worst = ratio > worst ? ratio : worst;
    }
  }
  gc_debug_scan_hook = NULL;
  gm_stats(&s);
  bool ok = table_intact(g_table, n);
  CHECK(ok);
  uint64_t cycles = s.num_gc - s0.num_gc;
  CHECKF(cycles > 1, "%" PRIu64 " collections", cycles);
  CHECKF(s.assist_total_ns > s0.assist_total_ns && s.assist_scanned > s0.assist_scanned,
         "assists: %" PRIu64 " ns, %" PRIu64 " bytes scanned",
         s.assist_total_ns - s0.assist_total_ns, s.assist_scanned - s0.assist_scanned);
  CHECKF(worst <= 2.0, "the heap reached %.2f x its goal", worst);
  printf("%" PRIu64 " cycles, assists %.1f ms scanning %" PRIu64 " MiB, heap at most %.2f x goal\n",
         cycles, (double)(s.assist_total_ns - s0.assist_total_ns) * 1e-6,
         (s.assist_scanned - s0.assist_scanned) / MiB, worst);
  report("a fast allocator pays with assists, the heap under twice its goal",
         ok && worst <= 2.0 && s.assist_scanned > s0.assist_scanned);
  g_table = NULL;
  gm_set_gc_percent(gogc);
}

static void test_stats(void) {
  g_live = make_list(4 * MiB);
  gm_stats_t s0, s;
  gm_stats(&s0);
  for (int k = 0; k < 1 << 22; k++) { // garbage until a cycle of the pacer's ends
    *(volatile char *)gm_alloc_noscan(128) = 1;
    if ((k & 4095) == 0) {
      gm_stats(&s);
      if (s.num_gc > s0.num_gc + 1)
        break;
    }
  }
  gm_stats(&s);
  bool ok = s.gc_concurrent == 1 && s.num_gc > s0.num_gc + 1 && s.last_stop1_ns > 0 &&
            s.last_mark_ns > 0 && s.last_stop2_ns > 0;
  CHECKF(ok,
         "gc_concurrent %" PRId64 ", %" PRIu64 " cycles, stops %" PRIu64 " and %" PRIu64
         " ns, marking %" PRIu64 " ns",
         s.gc_concurrent, s.num_gc - s0.num_gc, s.last_stop1_ns, s.last_stop2_ns, s.last_mark_ns);
  report("gm_stats: the two stops and the marking between them", ok);
  g_live = NULL;
}

// trace_child: run with GOMEM_GC_CONCURRENT=1 GOMEM_GCTRACE=1; three
// cycles of the pacer's, then a check of the live list.
static int trace_child(void) {
  g_live = make_list(4 * MiB);
  gm_stats_t s0, s;
  gm_stats(&s0);
  rec_t *keep = NULL;
  for (int k = 0; k < 1 << 24; k++) {
    rec_t *r = gm_alloc(sizeof *r);
    r->next = (k & 255) ? keep : NULL;
    keep = r;
    if ((k & 4095) == 0) {
      gm_stats(&s);
      if (s.num_gc >= s0.num_gc + 3)
        break;
    }
  }
  return list_intact(g_live, 4 * MiB) ? 0 : 1;
}

static void test_trace(void) {
  char out[8192];
  char *envp[] = {(char *)"GOMEM_GC_CONCURRENT=1", (char *)"GOMEM_GCTRACE=1", NULL};
  int st = test_run_self_envp("trace", envp, 2, out, sizeof out), lines = 0, bad = 0;
  for (char *l = strstr(out, "gc "); l != NULL; l = strstr(l + 1, "\ngc ")) {
    double clock[3], cpu[5];
    if (strstr(l, "concurrent") == NULL ||
        sscanf(l + (*l == '\n'), "gc %*u @%*fs: %lf+%lf+%lf ms clock, %lf+%lf/%lf/%lf+%lf ms cpu",
               &clock[0], &clock[1], &clock[2], &cpu[0], &cpu[1], &cpu[2], &cpu[3], &cpu[4]) != 8)
      continue;
    lines++;
    bad += !(cpu[2] > 0 && cpu[2] <= clock[1] * 1.02 + 0.5);
  }
  bool ok = st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0 && lines > 0 && bad == 0;
  CHECKF(ok,
         "trace child: status %#x, %d concurrent lines, %d with background CPU out of range:\n%s",
         st, lines, bad, out);
  report("gctrace: the background marker's CPU time, within the marking's clock", ok);
}

// bind_all binds every thread of the process to the first CPU it may use.
static void bind_all(void) {
  cpu_set_t m, one;
  CPU_ZERO(&one);
  if (sched_getaffinity(0, sizeof m, &m) != 0)
    return;
  for (int c = 0; c < CPU_SETSIZE; c++)
    if (CPU_ISSET(c, &m)) {
      CPU_SET(c, &one);
      break;
    }
  DIR *d = opendir("/proc/self/task");
  for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;)
    if (e->d_name[0] != '.')
      sched_setaffinity((pid_t)atoi(e->d_name), sizeof one, &one);
  if (d != NULL)
    closedir(d);
}

// share_child: run with GOMEM_BARRIER=explicit GOMEM_GC_PROCS=1; prints the
// marking's clock and the marker's CPU time (background, idle) over four
// cycles, in ns.
static int share_child(bool busy) {
  g_live = make_list(32 * MiB);
  gm_stats_t s0, s;
  gm_stats(&s0);
  rec_t *keep = NULL;
  int phase = 0; // 0: no cycle yet; 1: bound, a cycle to settle in; 2: counting
  for (uint64_t k = 0;; k++) {
    rec_t *r = gm_alloc(sizeof *r);
    gm_store((void **)&r->next, (k & 255) ? keep : NULL);
    keep = r;
    if ((k & 1023) != 0)
      continue;
    gm_stats(&s);
    if (phase < 2 && s.num_gc > s0.num_gc) { // (after one: the background thread exists)
      if (busy && phase == 0)
        bind_all();
      phase++;
      s0 = s;
    }
    if (phase == 2 && s.num_gc >= s0.num_gc + 4)
      break;
    struct timespec ms = {0, 1000000};
    if (!busy)
      nanosleep(&ms, NULL);
  }
  printf("%" PRIu64 " %" PRIu64 " %" PRIu64 "\n", s.mark_total_ns - s0.mark_total_ns,
         s.mark_background_ns - s0.mark_background_ns, s.mark_idle_ns - s0.mark_idle_ns);
  return list_intact(g_live, 32 * MiB) ? 0 : 1;
}

static void test_share(void) {
  char out[8192];
  // (The pauses are the default: no GOMEM_GC_FRACTIONAL.)
  char *envp[] = {(char *)"GOMEM_BARRIER=explicit", (char *)"GOMEM_GC_PROCS=1", NULL};
  bool all = true;
  for (int busy = 1; busy >= 0; busy--) {
    int st = test_run_self_envp(busy ? "share_busy" : "share_idle", envp, 1, out, sizeof out);
    uint64_t clock = 0, bg = 0, idle = 0;
    bool ran = st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0 &&
               sscanf(out, "%" SCNu64 " %" SCNu64 " %" SCNu64, &clock, &bg, &idle) == 3 && clock;
    double share = ran ? (double)(bg + idle) / (double)clock : 0;
    bool ok = ran && (busy ? share <= 0.4 && bg > 0 : idle > 0 && idle >= bg / 10);
    CHECKF(ok, "%s child: status %#x, marking %.1f ms, background %.1f ms, idle %.1f ms",
           busy ? "busy" : "sleeping", st, clock * 1e-6, bg * 1e-6, idle * 1e-6);
    all = all && ok;
  }
  report("the background marker: a quarter of a core when the CPU is busy, idle time else", all);
}

// fallback_child: run with GOMEM_GC_CONCURRENT=1 GOMEM_WTRACK=0.
static int fallback_child(void) {
  gm_stats_t s;
  for (int k = 0; k < 1 << 20; k++)
    *(volatile char *)gm_alloc_noscan(256) = 1;
  gm_stats(&s);
  return s.gc_concurrent == 0 && s.num_gc > 1 && s.last_stop1_ns == 0 ? 0 : 1;
}

static void test_fallback(void) {
  char out[8192];
  char *envp[] = {(char *)"GOMEM_GC_CONCURRENT=1", (char *)"GOMEM_WTRACK=0",
                  (char *)"GOMEM_GCTRACE=1", NULL};
  int st = test_run_self_envp("fallback", envp, 2, out, sizeof out);
  bool said = strstr(out, "marking stops the world: GOMEM_WTRACK=0") != NULL;
  bool ok = st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0 && said;
  CHECKF(ok, "fallback child: status %#x, gctrace %s", st, said ? "says why" : "silent");
  report("no write tracking: stop-the-world cycles, and gctrace says why", ok);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "fallback") == 0)
    return fallback_child();
  if (argc > 1 && strcmp(argv[1], "trace") == 0)
    return trace_child();
  if (argc > 1 && strncmp(argv[1], "share_", 6) == 0)
    return share_child(strcmp(argv[1], "share_busy") == 0);
  int rc = run_concurrent(argc, argv, "concurrent pacing", GOMEM_SANITIZE);
  if (rc >= 0)
    return rc;
  test_fallback();
  gm_stats_t s;
  gm_stats(&s);
  *(volatile char *)gm_alloc(8) = 1; // the collector starts (and finds write tracking or not)
  gm_stats(&s);
  if (s.gc_concurrent != 1) {
    test_skip("concurrent pacing", "the kernel cannot track writes (GOMEM_GCTRACE=1 says why)");
    return test_done();
  }
  uint64_t scale = GOMEM_SANITIZE[0] ? 4 : 1;
  test_stats();
  test_trace();
  test_share();
  test_rate();
  test_assists(scale);
  return test_done();
}
