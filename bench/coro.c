// coro.c: what gomem's coroutines cost, measured against Boost.Context
// (libboost-context-dev's jump_fcontext, when built with -DHAVE_BOOST),
// ucontext's swapcontext and pthreads. One measurement per run; prints
// "name value" lines.
//
//   coro switch N        ns per switch: gm_co_resume + gm_co_yield / 2
//   coro boost N         ns per switch: a jump_fcontext round trip / 2
//   coro ucontext N      ns per switch: a swapcontext round trip / 2
//   coro create N        ns per gm_co_create from a cached slot (16 at a
//                        time, destroyed between), and per create+destroy
//   coro idle N          N idle coroutines, each suspended holding a GC
//                        object: KiB resident per coroutine, ns per create,
//                        the pause of a collection with them and without
//                        them (their stacks' scan), and a check that every
//                        object survived; with GOMEM_GC_CONCURRENT=1 also
//                        the longest stop of three concurrent cycles (whose
//                        scan of suspended stacks runs beside the program)
//   coro threads N       N pthreads blocked on a barrier: KiB resident and
//                        us to create per thread; ns per switch between two
//                        threads (a futex ping-pong round trip / 2)
#define _GNU_SOURCE
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "gomem.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static long rss_kib(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long size = 0, res = 0;
  if (f == NULL || fscanf(f, "%ld %ld", &size, &res) != 2)
    res = 0;
  if (f)
    fclose(f);
  return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static void spin(void *arg) {
  for (;;)
    gm_co_yield(arg);
}

static void bench_switch(long n) {
  gm_co_t *co = gm_co_create(spin, NULL, 0);
  for (long i = 0; i < 1000; i++)
    gm_co_resume(co, NULL);
  double t = now();
  for (long i = 0; i < n; i++)
    gm_co_resume(co, NULL);
  printf("switch_ns %.3f\n", (now() - t) / (double)n / 2 * 1e9);
}

#ifdef HAVE_BOOST
typedef void *fcontext_t;
typedef struct {
  fcontext_t fctx;
  void *data;
} transfer_t;
transfer_t jump_fcontext(fcontext_t const to, void *vp);
fcontext_t make_fcontext(void *sp, size_t size, void (*fn)(transfer_t));
static void bspin(transfer_t t) {
  for (;;)
    t = jump_fcontext(t.fctx, NULL);
}
static void bench_boost(long n) {
  size_t sz = 64 << 10;
  char *stk = malloc(sz);
  fcontext_t c = make_fcontext(stk + sz, sz, bspin);
  for (long i = 0; i < 1000; i++)
    c = jump_fcontext(c, NULL).fctx;
  double t = now();
  for (long i = 0; i < n; i++)
    c = jump_fcontext(c, NULL).fctx;
  printf("boost_ns %.3f\n", (now() - t) / (double)n / 2 * 1e9);
}
#endif

static ucontext_t um, uc;
static void uspin(void) {
  for (;;)
    swapcontext(&uc, &um);
}
static void bench_ucontext(long n) {
  size_t sz = 64 << 10;
  getcontext(&uc);
  uc.uc_stack.ss_sp = malloc(sz);
  uc.uc_stack.ss_size = sz;
  uc.uc_link = &um;
  makecontext(&uc, uspin, 0);
  double t = now();
  for (long i = 0; i < n; i++)
    swapcontext(&um, &uc);
  printf("ucontext_ns %.3f\n", (now() - t) / (double)n / 2 * 1e9);
}

static void bench_create(long n) {
  gm_co_t *co[16];
  for (int i = 0; i < 16; i++) // warm the cache
    co[i] = gm_co_create(spin, NULL, 0);
  for (int i = 0; i < 16; i++)
    gm_co_destroy(co[i]);
  double busy = 0;
  for (long r = 0; r < n / 16; r++) {
    double t = now();
    for (int i = 0; i < 16; i++)
      co[i] = gm_co_create(spin, NULL, 0);
    busy += now() - t;
    for (int i = 0; i < 16; i++)
      gm_co_destroy(co[i]);
  }
  printf("create_ns %.3f\n", busy / (double)(n / 16 * 16) * 1e9);
  double t = now();
  for (long i = 0; i < n; i++)
    gm_co_destroy(gm_co_create(spin, NULL, 0));
  printf("create_destroy_ns %.3f\n", (now() - t) / (double)n * 1e9);
}

// holder: allocates an object, keeps it in its frame while suspended, and
// checks it each time it is resumed.
static void holder(void *arg) {
  uint64_t seed = (uint64_t)(uintptr_t)arg;
  uint64_t *volatile obj = gm_alloc(64);
  for (int i = 0; i < 8; i++)
    obj[i] = seed * 0x9E3779B97F4A7C15ull + (uint64_t)i;
  for (;;) {
    gm_co_yield(NULL);
    for (int i = 0; i < 8; i++)
      if (obj[i] != seed * 0x9E3779B97F4A7C15ull + (uint64_t)i)
        gm_co_yield((void *)1);
  }
}

static uint64_t last_pause(void) {
  gm_stats_t *st = malloc(sizeof *st);
  gm_stats(st);
  uint64_t p = st->pause_ns[(st->num_gc + 255) % 256];
  free(st);
  return p;
}

// conc_cycles: three concurrent cycles the pacer starts while this thread
// allocates garbage; their longest stop and their marking beside it.
static void conc_cycles(gm_stats_t *st) {
  uint64_t gc0 = st->num_gc, seen = gc0, stop = 0, mark = 0;
  while (seen < gc0 + 3) {
    for (int i = 0; i < 4096; i++)
      (void)gm_alloc(64);
    gm_stats(st);
    if (st->num_gc == seen)
      continue;
    seen = st->num_gc;
    uint64_t s = st->last_stop1_ns > st->last_stop2_ns ? st->last_stop1_ns : st->last_stop2_ns;
    stop = s > stop ? s : stop;
    mark = st->last_mark_ns > mark ? st->last_mark_ns : mark;
  }
  printf("conc_stop_ms %.3f\n", (double)stop * 1e-6);
  printf("conc_mark_ms %.3f\n", (double)mark * 1e-6);
}

static void bench_idle(long n) {
  gm_co_t **co = malloc(sizeof *co * (size_t)n);
  // The same heap without coroutines: n objects of 64 bytes held in a table.
  void **table = malloc(sizeof *table * (size_t)n);
  for (long i = 0; i < n; i++)
    table[i] = gm_alloc(64);
  gm_add_roots(table, table + n);
  gm_collect();
  gm_collect();
  uint64_t base_pause = last_pause();
  gm_remove_roots(table, table + n);
  free(table);
  gm_collect();
  long rss0 = rss_kib();
  double t = now();
  for (long i = 0; i < n; i++)
    co[i] = gm_co_create(holder, (void *)(uintptr_t)(i + 1), 0);
  double create = now() - t;
  for (long i = 0; i < n; i++)
    gm_co_resume(co[i], NULL);
  long rss1 = rss_kib();
  gm_collect();
  gm_collect();
  uint64_t pause = last_pause();
  gm_stats_t *st = malloc(sizeof *st);
  gm_stats(st);
  if (st->gc_concurrent) // (GOMEM_GC_CONCURRENT=1) the pacer's cycles, marking beside
    conc_cycles(st);
  long bad = 0;
  for (long i = 0; i < n; i++)
    bad += gm_co_resume(co[i], NULL) != NULL;
  gm_stats(st);
  printf("idle_kib %.3f\n", (double)(rss1 - rss0) / (double)n);
  printf("idle_create_ns %.3f\n", create / (double)n * 1e9);
  printf("gc_pause_ms %.3f\n", (double)pause * 1e-6);
  printf("gc_pause_base_ms %.3f\n", (double)base_pause * 1e-6);
  printf("co_stack_mib %.1f\n", (double)st->co_stack_bytes / 1048576.0);
  printf("lost %ld\n", bad);
  for (long i = 0; i < n; i++)
    gm_co_destroy(co[i]);
}

static pthread_barrier_t bar;
static void *blocked(void *arg) {
  (void)arg;
  pthread_barrier_wait(&bar);
  return NULL;
}

static _Atomic uint32_t turn;
static void *pong(void *arg) {
  long n = (long)(intptr_t)arg;
  for (long i = 0; i < n; i++) {
    while (atomic_load(&turn) != 1)
      syscall(SYS_futex, &turn, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    atomic_store(&turn, 0);
    syscall(SYS_futex, &turn, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
  }
  return NULL;
}

static void bench_threads(long n) {
  pthread_t *t = malloc(sizeof *t * (size_t)n);
  pthread_barrier_init(&bar, NULL, (unsigned)n + 1);
  long rss0 = rss_kib();
  double t0 = now();
  long made = 0;
  for (; made < n; made++)
    if (pthread_create(&t[made], NULL, blocked, NULL) != 0)
      break;
  double create = now() - t0;
  long rss1 = rss_kib();
  if (made < n) {
    printf("threads_made %ld\n", made);
    exit(1);
  }
  pthread_barrier_wait(&bar);
  for (long i = 0; i < made; i++)
    pthread_join(t[i], NULL);
  printf("thread_kib %.3f\n", (double)(rss1 - rss0) / (double)n);
  printf("thread_create_us %.3f\n", create / (double)n * 1e6);
  long rounds = 100000;
  pthread_t p;
  pthread_create(&p, NULL, pong, (void *)(intptr_t)rounds);
  t0 = now();
  for (long i = 0; i < rounds; i++) {
    atomic_store(&turn, 1);
    syscall(SYS_futex, &turn, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    while (atomic_load(&turn) != 0)
      syscall(SYS_futex, &turn, FUTEX_WAIT_PRIVATE, 1, NULL, NULL, 0);
  }
  printf("thread_switch_ns %.3f\n", (now() - t0) / (double)rounds / 2 * 1e9);
  pthread_join(p, NULL);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: coro switch|boost|ucontext|create|idle|threads N\n");
    return 2;
  }
  long n = atol(argv[2]);
  const char *m = argv[1];
  if (!strcmp(m, "switch"))
    bench_switch(n);
#ifdef HAVE_BOOST
  else if (!strcmp(m, "boost"))
    bench_boost(n);
#endif
  else if (!strcmp(m, "ucontext"))
    bench_ucontext(n);
  else if (!strcmp(m, "create"))
    bench_create(n);
  else if (!strcmp(m, "idle"))
    bench_idle(n);
  else if (!strcmp(m, "threads"))
    bench_threads(n);
  else
    return 2;
  return 0;
}
