// cache-scratch: passive false sharing (Hoard's cache-scratch).
//
// The main thread allocates one small object per worker, back to back, so with
// most allocators they share a cache line. Each worker frees the object it was
// given, then `iters` times allocates an object of the same size, writes every
// byte of it `reps` times and frees it. An allocator that hands the worker
// memory on a cache line another worker also writes (for instance by reusing
// the freed object in a shared heap) makes the cores fight over that line and
// runs many times slower; one with thread-local heaps does not.
//
// Parameters: threads=2, iters=1000, size=8, reps=N.
// Metric: time from the first worker's start to the last worker's end (s).
#include "common.h"

#include <pthread.h>

static long long g_iters, g_reps;
static size_t g_size;
static pthread_barrier_t g_bar;

typedef struct {
  char *given;
  uint64_t sum;
  double t0, t1;
} arg_t;

static void *worker(void *va) {
  arg_t *a = va;
  pthread_barrier_wait(&g_bar);
  a->t0 = now_s();
  free(a->given);
  uint64_t sum = 0;
  for (long long i = 0; i < g_iters; i++) {
    volatile char *p = xmalloc(g_size);
    for (size_t k = 0; k < g_size; k++) p[k] = 0;
    for (long long j = 0; j < g_reps; j++)
      for (size_t k = 0; k < g_size; k++) p[k] = (char)(p[k] + (char)k + 1);
    for (size_t k = 0; k < g_size; k++) sum += (unsigned char)p[k];
    free((void *)p);
  }
  a->sum = sum;
  a->t1 = now_s();
  return NULL;
}

int main(int argc, char **argv) {
  args_init(argc, argv);
  int threads = (int)arg_int("threads", 2);
  g_iters = arg_int("iters", 1000);
  g_size = (size_t)arg_int("size", 8);
  g_reps = arg_int("reps", 200000);
  args_done();
  if (threads < 1 || threads > 1024 || g_iters < 1 || g_size < 1 || g_reps < 1) die("bad parameters");

  pthread_barrier_init(&g_bar, NULL, (unsigned)threads + 1);
  pthread_t tid[1024];
  arg_t args[1024];
  for (int i = 0; i < threads; i++) {
    args[i].given = xmalloc(g_size);
    memset(args[i].given, 0, g_size);
  }
  for (int i = 0; i < threads; i++)
    if (pthread_create(&tid[i], NULL, worker, &args[i])) die("pthread_create");
  pthread_barrier_wait(&g_bar);
  uint64_t sum = 0;
  double t0 = 0, t1 = 0;
  for (int i = 0; i < threads; i++) {
    pthread_join(tid[i], NULL);
    sum += args[i].sum;
    if (i == 0 || args[i].t0 < t0) t0 = args[i].t0;
    if (args[i].t1 > t1) t1 = args[i].t1;
  }
  double t = t1 - t0;
  report_check(sum);
  report_metric("time", t, "s", "lower");
  return 0;
}
