// wtrack: what kernel write tracking costs on this machine (os_wtrack.c),
// the numbers concurrent marking is designed around. Not a workload of the
// suite: `make -C bench wtrack && bench/out/bin/wtrack [MiB]`.
//
// On a populated region of MiB (default 512) MiB, median of 5 runs of:
//   arm        write-protect the whole region
//   fault      the first write to an armed page (per page, 16,384 pages)
//   fetch_1k   fetch (and re-protect) 1,024 scattered written pages
//   fetch_0    a fetch that finds nothing (a pre-cleaning round's floor)
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "os.h"

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}
static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}
static void nothing(void *ctx, uintptr_t lo, uintptr_t hi) {
  (void)ctx, (void)lo, (void)hi;
}

int main(int argc, char **argv) {
  size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 512, bytes = mib << 20;
  size_t pg = (size_t)sysconf(_SC_PAGESIZE), pages = bytes / pg;
  const char *why = "";
  if (!os_wtrack_init(&why)) {
    printf("wtrack: unavailable: %s\n", why);
    return 0;
  }
  unsigned char *r = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (r == MAP_FAILED || !os_wtrack_register((uintptr_t)r, bytes))
    return 1;
  madvise(r, bytes, MADV_NOHUGEPAGE);
  memset(r, 1, bytes);
  enum { RUNS = 5, FAULTS = 16384, SCATTER = 1024 };
  double arm[RUNS], fault[RUNS], f1k[RUNS], f0[RUNS];
  for (int k = 0; k < RUNS; k++) {
    double t = now_us();
    os_wtrack_arm((uintptr_t)r, bytes);
    arm[k] = now_us() - t;
    t = now_us();
    for (size_t i = 0; i < FAULTS; i++)
      r[(i * 7919 % pages) * pg] ^= 1;
    fault[k] = (now_us() - t) / FAULTS;
    os_wtrack_fetch((uintptr_t)r, bytes, nothing, NULL);
    for (size_t i = 0; i < SCATTER; i++)
      r[(i * (pages / SCATTER) + 3) % pages * pg] ^= 1;
    t = now_us();
    ssize_t n = os_wtrack_fetch((uintptr_t)r, bytes, nothing, NULL);
    f1k[k] = now_us() - t;
    t = now_us();
    os_wtrack_fetch((uintptr_t)r, bytes, nothing, NULL);
    f0[k] = now_us() - t;
    if (n != SCATTER)
      printf("wtrack: fetched %zd pages, wrote %d\n", n, SCATTER);
  }
  qsort(arm, RUNS, sizeof arm[0], cmp);
  qsort(fault, RUNS, sizeof fault[0], cmp);
  qsort(f1k, RUNS, sizeof f1k[0], cmp);
  qsort(f0, RUNS, sizeof f0[0], cmp);
  printf("region %zu MiB, %zu pages of %zu bytes (medians of %d runs)\n", mib, pages, pg, RUNS);
  printf("arm       %9.1f us\n", arm[RUNS / 2]);
  printf("fault     %9.2f us per page\n", fault[RUNS / 2]);
  printf("fetch_1k  %9.1f us\n", f1k[RUNS / 2]);
  printf("fetch_0   %9.1f us\n", f0[RUNS / 2]);
  return 0;
}
