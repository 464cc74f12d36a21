// pool.c: what gm_pool (Go's sync.Pool) saves.
//
//   pool pair N      ns per gm_pool_get + gm_pool_put of a 256-byte object
//   pool alloc N     ns per gm_alloc(256) (the collector reclaims them)
//   pool malloc N    ns per malloc(256) + free
//   pool server R P  R requests on 2 threads, each with a 32 KiB scratch
//                    buffer from a pool (P = 1) or gm_alloc_noscan (P = 0);
//                    prints time, GC cycles and scratch buffers allocated
// One line: "<mode> <value> [cycles] [buffers]".
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gomem.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static volatile uintptr_t sink;

static gm_pool_t *scratch;
static _Atomic long buffers; // scratch buffers allocated
static void *new_buffer(void *arg) {
  (void)arg;
  buffers++;
  return gm_alloc_noscan(32 << 10);
}
static long requests;
static int use_pool;

// A request: a scratch buffer filled and summed, and a few small objects
// that outlive it in a ring (the program's live data).
static void *serve(void *arg) {
  void **ring = gm_alloc(1024 * sizeof(void *));
  uintptr_t sum = (uintptr_t)arg;
  for (long r = 0; r < requests; r++) {
    char *buf = use_pool ? gm_pool_get(scratch) : new_buffer(NULL);
    memset(buf, (int)r, 32 << 10);
    for (int i = 0; i < 32 << 10; i += 512)
      sum += (unsigned char)buf[i];
    if (use_pool)
      gm_pool_put(scratch, buf);
    ring[r % 1024] = gm_alloc(64);
  }
  sink = sum;
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 3)
    return 2;
  long n = atol(argv[2]);
  const char *mode = argv[1];
  double t0 = now();
  if (strcmp(mode, "pair") == 0) {
    gm_pool_t *p = gm_pool_new(256, NULL, NULL);
    for (long i = 0; i < n; i++) {
      char *o = gm_pool_get(p);
      o[i & 255] = (char)i;
      gm_pool_put(p, o);
    }
  } else if (strcmp(mode, "alloc") == 0) {
    for (long i = 0; i < n; i++) {
      char *o = gm_alloc(256);
      o[i & 255] = (char)i;
      sink = (uintptr_t)o;
    }
  } else if (strcmp(mode, "malloc") == 0) {
    for (long i = 0; i < n; i++) {
      char *o = malloc(256);
      o[i & 255] = (char)i;
      sink = (uintptr_t)o;
      free(o);
    }
  } else if (strcmp(mode, "server") == 0 && argc > 3) {
    requests = n;
    use_pool = atoi(argv[3]);
    scratch = gm_pool_new(32 << 10, new_buffer, NULL);
    gm_stats_t s0, s1;
    gm_stats(&s0);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
      pthread_create(&t[i], NULL, serve, (void *)(uintptr_t)i);
    for (int i = 0; i < 2; i++)
      pthread_join(t[i], NULL);
    gm_stats(&s1);
    printf("server %.3f %llu %ld\n", now() - t0, (unsigned long long)(s1.num_gc - s0.num_gc),
           (long)buffers);
    return 0;
  } else {
    return 2;
  }
  printf("%s %.2f\n", mode, (now() - t0) * 1e9 / (double)n);
  return 0;
}
