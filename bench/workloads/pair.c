// pair: latency of a malloc(n) + free pair in a tight loop.
//
// For each size in sizes=16,64,256 the program runs `warmup` untimed pairs,
// then `iters` timed pairs split into 5 batches, and reports the median batch
// time per pair in ns. The block is written and read back so the pair cannot
// be optimised away or left unused. This is the allocator's fast path
// (thread cache hit) and nothing else.
//
// Parameters: iters=N, warmup=N, sizes=16,64,256.
// Metrics: pair (geometric mean over the sizes, ns), then pair_<size> (ns).
#include "common.h"

#define BATCHES 5

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static uint64_t loop(size_t size, long long n) {
  uint64_t sum = 0;
  for (long long i = 0; i < n; i++) {
    volatile unsigned char *p = malloc(size);
    if (!p) die("malloc(%zu) returned NULL", size);
    p[0] = (unsigned char)i;
    p[size - 1] = (unsigned char)(i >> 3);
    sum += p[0] + p[size - 1];
    escape((void *)p);
    free((void *)p);
  }
  return sum;
}

int main(int argc, char **argv) {
  args_init(argc, argv);
  long long iters = arg_int("iters", 20000000);
  long long warmup = arg_int("warmup", 1000000);
  double sizes[16];
  int nsizes = arg_list("sizes", "16,64,256", sizes, 16);
  args_done();
  if (iters < BATCHES || nsizes == 0) die("bad parameters");

  uint64_t sum = 0;
  double ns[16], logsum = 0;
  for (int k = 0; k < nsizes; k++) {
    size_t size = (size_t)sizes[k];
    if (size == 0) die("size 0");
    sum += loop(size, warmup);
    double b[BATCHES];
    long long per = iters / BATCHES;
    for (int j = 0; j < BATCHES; j++) {
      double t0 = now_s();
      sum += loop(size, per);
      b[j] = (now_s() - t0) * 1e9 / (double)per;
    }
    qsort(b, BATCHES, sizeof b[0], cmp_d);
    ns[k] = b[BATCHES / 2];
    logsum += log(ns[k]);
  }
  report_check(sum);
  report_metric("pair", exp(logsum / nsizes), "ns", "lower");
  for (int k = 0; k < nsizes; k++) {
    char name[32];
    snprintf(name, sizeof name, "pair_%d", (int)sizes[k]);
    report_metric(name, ns[k], "ns", "lower");
  }
  return 0;
}
