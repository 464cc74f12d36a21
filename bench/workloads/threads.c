// threads: the cost of a short-lived thread, as a server that starts one per
// request pays it: create, allocate and free a few small blocks, exit, join.
// Under LD_PRELOAD the allocator's work at thread start and exit is in it
// (a cache to set up and give back; for gomem also its pthread_create wrapper
// and, while the collector is not in use, the note it takes of the thread).
//
// Parameters: threads=N (created one after another), allocs=N per thread.
// Metrics: per_thread (us, lower), then rate (threads/s).
#include "common.h"

#include <pthread.h>

static long allocs;

static void *body(void *arg) {
  uint64_t sum = (uint64_t)(uintptr_t)arg;
  void *p[16];
  for (long i = 0; i < allocs; i++) {
    size_t n = 16 + (size_t)(i % 16) * 24;
    p[i % 16] = xmalloc(n);
    memset(p[i % 16], (int)(i & 0x7f), n);
    sum += ((unsigned char *)p[i % 16])[n - 1];
    if (i % 16 == 15)
      for (int k = 0; k < 16; k++)
        free(p[k]);
  }
  for (long k = 0; k < allocs % 16; k++)
    free(p[k]);
  return (void *)(uintptr_t)sum;
}

int main(int argc, char **argv) {
  args_init(argc, argv);
  long n = arg_int("threads", 20000);
  allocs = arg_int("allocs", 32);
  args_done();
  if (n <= 0 || allocs < 0) die("bad parameters");
  uint64_t sum = 0;
  double t0 = now_s();
  for (long i = 0; i < n; i++) {
    pthread_t t;
    if (pthread_create(&t, NULL, body, (void *)(uintptr_t)i) != 0)
      die("pthread_create failed");
    void *r;
    pthread_join(t, &r);
    sum += (uint64_t)(uintptr_t)r;
  }
  double t = now_s() - t0;
  report_check(sum);
  report_metric("per_thread", t / (double)n * 1e6, "us", "lower");
  report_metric("rate", (double)n / t, "threads/s", "higher");
  return 0;
}
