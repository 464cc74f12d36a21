// huge_malloc: gm_malloc(1 TiB) succeeds after seconds and about 1 GiB of
// resident metadata (a span pointer per 8 KiB page), where glibc refuses at
// once (ENOMEM); each further doubling doubles both (2^46 bytes: tens of
// GiB before anything is returned). README: huge requests return NULL with
// errno = ENOMEM.
// From the repository root, after `make` (needs ~1.2 GiB of free memory):
//   f=tests/fuzz/repro/huge_malloc.c
//   cc -Iinclude $f build/libgomem.a -lpthread -ldl -o /tmp/r
//   /tmp/r
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "gomem.h"

static long rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kib = -1;
  while (f != NULL && fgets(line, sizeof line, f) != NULL)
    if (strncmp(line, "VmRSS:", 6) == 0)
      sscanf(line + 6, "%ld", &kib);
  if (f != NULL)
    fclose(f);
  return kib;
}

int main(void) {
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  errno = 0;
  void *p = gm_malloc((size_t)1 << 40);
  int e = errno;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
  printf("gm_malloc(1 TiB) = %p (errno %d) in %.2f s; VmRSS %ld MiB\n", p, e, s, rss_kib() / 1024);
  return p == NULL ? 0 : 1;
}
