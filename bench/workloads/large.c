// large: large blocks.
//
// A window of `live` slots; each step replaces a random slot with a new block
// of a random size in [min, max] (log-uniform, 64 KiB - 32 MiB by default),
// writes one byte in every 4 KiB page of it, and before freeing a block reads
// those bytes back. This measures the allocator's large-object path and how it
// deals with the OS: mmap/munmap per block, or caching and reusing pages
// (fewer page faults), and returning them.
//
// Parameters: ops=N, live=8, min=64K, max=32M, seed=5.
// Metric: time of the timed steps (s); filling the window is warm-up.
#include "common.h"

#define PAGE 4096

typedef struct {
  unsigned char *p;
  size_t size;
  uint64_t id;
} blk_t;

static void touch(blk_t *b) {
  unsigned char v = (unsigned char)(b->id * 37);
  for (size_t off = 0; off < b->size; off += PAGE) b->p[off] = (unsigned char)(v + off / PAGE);
  b->p[b->size - 1] = v;
}

static uint64_t release(blk_t *b) {
  uint64_t sum = 0;
  unsigned char v = (unsigned char)(b->id * 37);
  for (size_t off = 0; off < b->size; off += PAGE) {
    if (off && b->p[off] != (unsigned char)(v + off / PAGE)) die("large: block corrupted");
    sum += b->p[off];
  }
  if (b->p[b->size - 1] != v) die("large: block corrupted at its end");
  free(b->p);
  return sum + b->size;
}

int main(int argc, char **argv) {
  args_init(argc, argv);
  long long ops = arg_int("ops", 600);
  size_t live = (size_t)arg_int("live", 8);
  size_t min = (size_t)arg_int("min", 64 << 10);
  size_t max = (size_t)arg_int("max", 32 << 20);
  uint64_t seed = (uint64_t)arg_int("seed", 5);
  args_done();
  if (live == 0 || min < 16 || max < min) die("bad parameters");

  blk_t *w = calloc(live, sizeof *w);
  rng_t r = rng_make(seed, 0);
  uint64_t id = 0, sum = 0;
  for (size_t i = 0; i < live; i++) {
    w[i].size = rng_logsize(&r, min, max);
    w[i].p = xmalloc(w[i].size);
    w[i].id = ++id;
    touch(&w[i]);
  }
  double t0 = now_s();
  for (long long k = 0; k < ops; k++) {
    blk_t *b = &w[rng_next(&r) % live];
    sum += release(b);
    b->size = rng_logsize(&r, min, max);
    b->p = xmalloc(b->size);
    b->id = ++id;
    touch(b);
  }
  double t = now_s() - t0;
  for (size_t i = 0; i < live; i++) sum += release(&w[i]);
  free(w);
  report_check(sum);
  report_metric("time", t, "s", "lower");
  return 0;
}
