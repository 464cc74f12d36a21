// churn: single-thread churn of small objects.
//
// Two pools of slots: a small "short-lived" pool (replaced often) and a large
// "long-lived" pool (replaced rarely), so lifetimes are bimodal-random. Every
// operation picks a pool and a random slot, frees the object there (after
// verifying its tags) and allocates a new one of a random size in
// [min, max] (log-uniform). Fixed seed: the sequence is the same for every
// allocator.
//
// Parameters: ops=N (timed operations), live=N (long-lived slots),
// short=N (short-lived slots), min=8, max=1024, seed=1.
// Metric: time of the timed operations (s); warm-up (filling the pools and
// `ops/10` operations) is excluded.
#include "common.h"

typedef struct {
  void *p;
  uint32_t size;
  uint64_t id;
} slot_t;

static uint64_t g_id;

static uint64_t replace(slot_t *s, rng_t *r, size_t min, size_t max) {
  uint64_t sum = 0;
  if (s->p) {
    sum = obj_verify(s->p, s->size, obj_tag(s->id, s->size), "churn");
    free(s->p);
  }
  size_t size = rng_logsize(r, min, max);
  s->p = xmalloc(size);
  s->size = (uint32_t)size;
  s->id = ++g_id;
  obj_fill(s->p, size, obj_tag(s->id, size));
  return sum;
}

static uint64_t run(slot_t *lp, size_t nlong, slot_t *sp, size_t nshort, long long ops, rng_t *r, size_t min,
                    size_t max) {
  uint64_t sum = 0;
  for (long long i = 0; i < ops; i++) {
    uint64_t x = rng_next(r);
    if ((x & 3) == 0) sum += replace(&lp[(x >> 8) % nlong], r, min, max);
    else sum += replace(&sp[(x >> 8) % nshort], r, min, max);
  }
  return sum;
}

int main(int argc, char **argv) {
  args_init(argc, argv);
  long long ops = arg_int("ops", 5000000);
  size_t nlong = (size_t)arg_int("live", 20000);
  size_t nshort = (size_t)arg_int("short", 256);
  size_t min = (size_t)arg_int("min", 8);
  size_t max = (size_t)arg_int("max", 1024);
  uint64_t seed = (uint64_t)arg_int("seed", 1);
  args_done();
  if (nlong == 0 || nshort == 0 || min == 0 || max < min) die("bad parameters");

  slot_t *lp = calloc(nlong, sizeof *lp), *sp = calloc(nshort, sizeof *sp);
  if (!lp || !sp) die("out of memory");
  rng_t r = rng_make(seed, 0);
  uint64_t sum = 0;

  // Warm-up: fill both pools, then a tenth of the operations untimed.
  for (size_t i = 0; i < nlong; i++) sum += replace(&lp[i], &r, min, max);
  for (size_t i = 0; i < nshort; i++) sum += replace(&sp[i], &r, min, max);
  sum += run(lp, nlong, sp, nshort, ops / 10, &r, min, max);

  double t0 = now_s();
  sum += run(lp, nlong, sp, nshort, ops, &r, min, max);
  double t = now_s() - t0;

  for (size_t i = 0; i < nlong; i++) {
    sum += obj_verify(lp[i].p, lp[i].size, obj_tag(lp[i].id, lp[i].size), "churn");
    free(lp[i].p);
  }
  for (size_t i = 0; i < nshort; i++) {
    sum += obj_verify(sp[i].p, sp[i].size, obj_tag(sp[i].id, sp[i].size), "churn");
    free(sp[i].p);
  }
  free(lp);
  free(sp);

  report_check(sum);
  report_metric("time", t, "s", "lower");
  report_metric("rate", (double)ops / t / 1e6, "Mops/s", "higher");
  return 0;
}
