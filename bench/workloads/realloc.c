// realloc: growing (and some shrinking) buffers.
//
// `bufs` buffers grow step by step from 16 B to `max` bytes, interleaved
// (one step of every buffer, then the next step), each step by a random
// 1/16..1/4 of its size plus 16 B, as a string builder or vector does. Each
// step writes the new tail and checks that the old contents survived the
// move. When all have reached `max`, one buffer in four shrinks step by step
// (halving) down to 64 B; then all are freed. That is one round.
//
// Parameters: bufs=64, max=1M, rounds=N, seed=3.
// Metric: time of the timed rounds (s); round 0 is warm-up.
#include "common.h"

typedef struct {
  uint64_t *p;
  size_t words;
  uint64_t base;
} buf_t;

static inline uint64_t word(const buf_t *b, size_t i) { return b->base + i * 0x9e3779b97f4a7c15ULL; }

static uint64_t check(const buf_t *b, size_t words) {
  uint64_t sum = 0;
  size_t idx[3] = {0, words / 2, words - 1};
  for (int k = 0; k < 3; k++) {
    if (b->p[idx[k]] != word(b, idx[k])) die("realloc: contents lost at word %zu of %zu", idx[k], words);
    sum += b->p[idx[k]];
  }
  return sum;
}

static uint64_t resize(buf_t *b, size_t words) {
  size_t old = b->words;
  uint64_t sum = 0;
  b->p = xrealloc(b->p, words * 8);
  if (old) sum += check(b, old < words ? old : words);
  for (size_t i = old; i < words; i++) b->p[i] = word(b, i);
  b->words = words;
  return sum;
}

static uint64_t round_(buf_t *bufs, size_t n, size_t maxw, uint64_t seed, int round) {
  rng_t r = rng_make(seed, (uint64_t)round);
  uint64_t sum = 0;
  for (size_t i = 0; i < n; i++) {
    bufs[i].p = NULL;
    bufs[i].words = 0;
    bufs[i].base = rng_next(&r);
    sum += resize(&bufs[i], 2);
  }
  for (int growing = 1; growing;) {
    growing = 0;
    for (size_t i = 0; i < n; i++) {
      buf_t *b = &bufs[i];
      if (b->words >= maxw) continue;
      size_t step = (size_t)rng_range(&r, b->words / 16, b->words / 4) + 2;
      size_t w = b->words + step;
      sum += resize(b, w < maxw ? w : maxw);
      growing = 1;
    }
  }
  for (size_t i = 0; i < n; i += 4)
    while (bufs[i].words > 8) sum += resize(&bufs[i], bufs[i].words / 2);
  for (size_t i = 0; i < n; i++) {
    sum += check(&bufs[i], bufs[i].words);
    free(bufs[i].p);
  }
  return sum;
}

int main(int argc, char **argv) {
  args_init(argc, argv);
  size_t n = (size_t)arg_int("bufs", 64);
  size_t max = (size_t)arg_int("max", 1 << 20);
  int rounds = (int)arg_int("rounds", 20);
  uint64_t seed = (uint64_t)arg_int("seed", 3);
  args_done();
  if (n == 0 || max < 64 || rounds < 1) die("bad parameters");
  buf_t *bufs = calloc(n, sizeof *bufs);
  uint64_t sum = round_(bufs, n, max / 8, seed, 0);
  double t0 = now_s();
  for (int i = 1; i <= rounds; i++) sum += round_(bufs, n, max / 8, seed, i);
  double t = now_s() - t0;
  free(bufs);
  report_check(sum);
  report_metric("time", t, "s", "lower");
  return 0;
}
