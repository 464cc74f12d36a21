// larson: Larson & Krishnan's server simulation, in a deterministic form.
//
// There are `threads` slot arrays of `slots` objects each. In every round each
// thread owns one array and replaces `ops` random slots with new objects of a
// random size in [min, max] (uniform, as in the original larson); at the end
// of the round the threads meet at a barrier and pass the arrays on (thread t
// takes array (t + round) mod threads), so most frees are of objects that a
// different thread allocated, as when the original hands a thread's array to
// the thread that replaces it. The random stream of an array in a round
// depends only on (seed, array, round), so the checksum does not depend on
// thread timing.
//
// Parameters: threads=2, slots=5000, ops=N (per thread per round), rounds=N,
// min=8, max=1000, seed=4141.
// Metric: ops/s over the timed rounds (round 0 and the initial fill are
// warm-up), counting one malloc+free replacement as one operation.
#include "common.h"

#include <pthread.h>

typedef struct {
  void *p;
  uint32_t size;
  uint32_t round;
} slot_t;

static int g_threads, g_rounds;
static size_t g_slots, g_min, g_max;
static long long g_ops;
static uint64_t g_seed;
static slot_t **g_arrays;
static pthread_barrier_t g_bar;
static double g_t0, g_t1;

typedef struct {
  int id;
  uint64_t sum;
} worker_t;

static uint64_t slot_id(size_t array, size_t idx, uint32_t round) {
  return ((uint64_t)array << 48) ^ ((uint64_t)round << 24) ^ idx;
}

static uint64_t do_round(size_t a, uint32_t round) {
  slot_t *arr = g_arrays[a];
  rng_t r = rng_make(g_seed, ((uint64_t)a << 32) | round);
  uint64_t sum = 0;
  for (long long i = 0; i < g_ops; i++) {
    size_t k = rng_next(&r) % g_slots;
    slot_t *s = &arr[k];
    sum += obj_verify(s->p, s->size, obj_tag(slot_id(a, k, s->round), s->size), "larson");
    free(s->p);
    size_t size = rng_range(&r, g_min, g_max);
    s->p = xmalloc(size);
    s->size = (uint32_t)size;
    s->round = round + 1;
    obj_fill(s->p, size, obj_tag(slot_id(a, k, s->round), size));
  }
  return sum;
}

static void *worker(void *arg) {
  worker_t *w = arg;
  // Initial fill of the thread's own array (warm-up).
  slot_t *arr = g_arrays[w->id];
  rng_t r = rng_make(g_seed, 0xffffffffULL + (uint64_t)w->id);
  for (size_t k = 0; k < g_slots; k++) {
    size_t size = rng_range(&r, g_min, g_max);
    arr[k].p = xmalloc(size);
    arr[k].size = (uint32_t)size;
    arr[k].round = 0;
    obj_fill(arr[k].p, size, obj_tag(slot_id((size_t)w->id, k, 0), size));
  }
  for (int round = 0; round <= g_rounds; round++) {
    pthread_barrier_wait(&g_bar);
    if (round == 1 && w->id == 0) g_t0 = now_s();
    w->sum += do_round((size_t)((w->id + round) % g_threads), (uint32_t)round);
  }
  pthread_barrier_wait(&g_bar);
  if (w->id == 0) g_t1 = now_s();
  return NULL;
}

int main(int argc, char **argv) {
  args_init(argc, argv);
  g_threads = (int)arg_int("threads", 2);
  g_slots = (size_t)arg_int("slots", 5000);
  g_ops = arg_int("ops", 500000);
  g_rounds = (int)arg_int("rounds", 10);
  g_min = (size_t)arg_int("min", 8);
  g_max = (size_t)arg_int("max", 1000);
  g_seed = (uint64_t)arg_int("seed", 4141);
  args_done();
  if (g_threads < 1 || g_slots == 0 || g_rounds < 1 || g_min == 0 || g_max < g_min) die("bad parameters");

  g_arrays = calloc((size_t)g_threads, sizeof *g_arrays);
  for (int i = 0; i < g_threads; i++) g_arrays[i] = calloc(g_slots, sizeof(slot_t));
  pthread_barrier_init(&g_bar, NULL, (unsigned)g_threads);
  pthread_t *tid = calloc((size_t)g_threads, sizeof *tid);
  worker_t *w = calloc((size_t)g_threads, sizeof *w);
  for (int i = 0; i < g_threads; i++) {
    w[i].id = i;
    if (pthread_create(&tid[i], NULL, worker, &w[i])) die("pthread_create");
  }
  uint64_t sum = 0;
  for (int i = 0; i < g_threads; i++) {
    pthread_join(tid[i], NULL);
    sum += w[i].sum;
  }
  double t = g_t1 - g_t0;
  for (int a = 0; a < g_threads; a++) {
    for (size_t k = 0; k < g_slots; k++) {
      slot_t *s = &g_arrays[a][k];
      sum += obj_verify(s->p, s->size, obj_tag(slot_id((size_t)a, k, s->round), s->size), "larson");
      free(s->p);
    }
    free(g_arrays[a]);
  }
  free(g_arrays);
  free(tid);
  free(w);

  double total = (double)g_ops * g_threads * g_rounds;
  report_check(sum);
  report_metric("throughput", total / t, "ops/s", "higher");
  report_metric("time", t, "s", "lower");
  return 0;
}
