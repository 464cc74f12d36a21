// prodcons: producer/consumer, every object freed by a thread that did not
// allocate it.
//
// Producer threads allocate batches of `batch` objects (random size in
// [min, max], log-uniform), tag them and push each batch (itself a malloc'd
// block) through a bounded queue; consumer threads pop batches, verify and
// free every object and the batch. The checksum is a sum over objects, so it
// does not depend on which consumer got which batch.
//
// Parameters: threads=2 (split into producers and consumers; or give
// producers=N consumers=N), batches=N (per producer), batch=100, min=16,
// max=512, queue=64 (capacity in batches), seed=7.
// Metric: time of the timed pipeline run (s); a first pipeline run of
// batches/10 per producer is warm-up.
#include "common.h"

#include <pthread.h>

typedef struct {
  uint32_t n;
  uint32_t producer;
  uint64_t index;
  void *obj[];
} batch_t;

static int g_prod, g_cons, g_cap;
static long long g_batches;
static size_t g_batch, g_min, g_max;
static uint64_t g_seed;

static batch_t **g_q;
static size_t g_head, g_tail, g_count;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_notfull = PTHREAD_COND_INITIALIZER, g_notempty = PTHREAD_COND_INITIALIZER;

static void push(batch_t *b) {
  pthread_mutex_lock(&g_mu);
  while (g_count == (size_t)g_cap) pthread_cond_wait(&g_notfull, &g_mu);
  g_q[g_tail] = b;
  g_tail = (g_tail + 1) % (size_t)g_cap;
  g_count++;
  pthread_cond_signal(&g_notempty);
  pthread_mutex_unlock(&g_mu);
}

static batch_t *pop(void) {
  pthread_mutex_lock(&g_mu);
  while (g_count == 0) pthread_cond_wait(&g_notempty, &g_mu);
  batch_t *b = g_q[g_head];
  g_head = (g_head + 1) % (size_t)g_cap;
  g_count--;
  pthread_cond_signal(&g_notfull);
  pthread_mutex_unlock(&g_mu);
  return b;
}

typedef struct {
  int id;
  long long nbatches;
  uint64_t phase;
  uint64_t sum;
} arg_t;

// Object j of batch i of producer p: size and tag are a function of (p, i, j)
// so the consumer can recompute them.
static size_t obj_size(rng_t *r) { return rng_logsize(r, g_min, g_max); }

static void *producer(void *va) {
  arg_t *a = va;
  for (long long i = 0; i < a->nbatches; i++) {
    batch_t *b = xmalloc(sizeof(batch_t) + g_batch * sizeof(void *));
    b->n = (uint32_t)g_batch;
    b->producer = (uint32_t)a->id;
    b->index = (uint64_t)i | (a->phase << 48);
    rng_t r = rng_make(g_seed + a->phase, ((uint64_t)a->id << 40) | (uint64_t)i);
    for (size_t j = 0; j < g_batch; j++) {
      size_t size = obj_size(&r);
      b->obj[j] = xmalloc(size);
      obj_fill(b->obj[j], size, obj_tag((b->index << 12) ^ ((uint64_t)a->id << 56) ^ j, size));
    }
    push(b);
  }
  return NULL;
}

static void *consumer(void *va) {
  arg_t *a = va;
  for (;;) {
    batch_t *b = pop();
    if (!b) break;
    rng_t r = rng_make(g_seed + a->phase, ((uint64_t)b->producer << 40) | (b->index & 0xffffffffffffULL));
    for (size_t j = 0; j < b->n; j++) {
      size_t size = obj_size(&r);
      a->sum += obj_verify(b->obj[j], size, obj_tag((b->index << 12) ^ ((uint64_t)b->producer << 56) ^ j, size),
                           "prodcons");
      free(b->obj[j]);
    }
    free(b);
  }
  return NULL;
}

static uint64_t pipeline(long long nbatches, uint64_t phase) {
  pthread_t tid[256];
  arg_t args[256];
  int n = g_prod + g_cons;
  for (int i = 0; i < n; i++) {
    args[i] = (arg_t){.id = i < g_prod ? i : i - g_prod, .nbatches = nbatches, .phase = phase, .sum = 0};
    if (pthread_create(&tid[i], NULL, i < g_prod ? producer : consumer, &args[i])) die("pthread_create");
  }
  for (int i = 0; i < g_prod; i++) pthread_join(tid[i], NULL);
  for (int i = 0; i < g_cons; i++) push(NULL); // one end marker per consumer
  uint64_t sum = 0;
  for (int i = g_prod; i < n; i++) {
    pthread_join(tid[i], NULL);
    sum += args[i].sum;
  }
  return sum;
}

int main(int argc, char **argv) {
  args_init(argc, argv);
  int threads = (int)arg_int("threads", 2);
  g_prod = (int)arg_int("producers", threads / 2 > 0 ? threads / 2 : 1);
  g_cons = (int)arg_int("consumers", threads - g_prod > 0 ? threads - g_prod : 1);
  g_batches = arg_int("batches", 20000);
  g_batch = (size_t)arg_int("batch", 100);
  g_min = (size_t)arg_int("min", 16);
  g_max = (size_t)arg_int("max", 512);
  g_cap = (int)arg_int("queue", 64);
  g_seed = (uint64_t)arg_int("seed", 7);
  args_done();
  if (g_prod < 1 || g_cons < 1 || g_prod + g_cons > 256 || g_batches < 1 || g_batch < 1 || g_cap < 1 ||
      g_min == 0 || g_max < g_min)
    die("bad parameters");
  g_q = calloc((size_t)g_cap, sizeof *g_q);

  uint64_t sum = pipeline(g_batches / 10 > 0 ? g_batches / 10 : 1, 1); // warm-up
  double t0 = now_s();
  sum += pipeline(g_batches, 2);
  double t = now_s() - t0;
  free(g_q);

  double objs = (double)g_batches * (double)g_prod * (double)g_batch;
  report_check(sum);
  report_metric("time", t, "s", "lower");
  report_metric("rate", objs / t / 1e6, "Mobj/s", "higher");
  return 0;
}
