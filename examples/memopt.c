// memopt.c: the memory-optimisation practices of Go, in C with gomem (see
// the README's "Memory optimisation with gomem"). Each step measures itself
// and the program exits non-zero if a practice did not pay off.
//
//   1. A pool for per-request scratch buffers (Go's sync.Pool): fewer
//      allocations and collections.
//   2. Preallocating instead of growing step by step (Go's
//      make([]T, 0, n)): one allocation instead of many, fewer collections.
//   3. A weak cache (Go's weak.Pointer): entries vanish with their keys.
//   4. A heap profile (Go's pprof) names the allocation hot spot.
//   5. The statistics that matter (Go's MemStats), and GOMEM_GCTRACE=1.
//
//   ./memopt [profile-file]      (default /tmp/memopt.prof)
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gomem.h"

#define REQUESTS 20000
#define SCRATCH (16 << 10)

static volatile uintptr_t sink;

static uint64_t cycles(void) {
  gm_stats_t s;
  gm_stats(&s);
  return s.num_gc;
}

// 1. handle(): every request needs a scratch buffer.
static gm_pool_t *scratch_pool;
static void handle(int r, int pooled) {
  char *buf = pooled ? gm_pool_get(scratch_pool) : gm_alloc_noscan(SCRATCH);
  memset(buf, r, SCRATCH);
  sink += (unsigned char)buf[r % SCRATCH];
  if (pooled)
    gm_pool_put(scratch_pool, buf); // back for the next request
}

static int step_pool(void) {
  scratch_pool = gm_pool_new(SCRATCH, NULL, NULL);
  uint64_t c0 = cycles();
  for (int r = 0; r < REQUESTS; r++)
    handle(r, 0);
  uint64_t c1 = cycles();
  for (int r = 0; r < REQUESTS; r++)
    handle(r, 1);
  uint64_t c2 = cycles();
  printf("1. scratch buffers: %llu collections without a pool, %llu with one\n",
         (unsigned long long)(c1 - c0), (unsigned long long)(c2 - c1));
  return c2 - c1 < (c1 - c0) / 4;
}

// 2. Growing an array one element at a time copies it again and again;
// preallocating allocates once.
typedef struct vec {
  long *v;
  size_t n, cap;
} vec_t;
static void push(vec_t *a, long x) {
  if (a->n == a->cap) {
    size_t cap = a->cap + 16; // (a naive growth step)
    long *v = gm_alloc_noscan(cap * sizeof *v);
    if (a->n)
      memcpy(v, a->v, a->n * sizeof *v);
    a->v = v, a->cap = cap;
  }
  a->v[a->n++] = x;
}

static int step_prealloc(void) {
  gm_stats_t s0, s1, s2;
  gm_stats(&s0);
  vec_t grown = {0};
  for (long i = 0; i < 20000; i++)
    push(&grown, i);
  gm_stats(&s1);
  vec_t pre = {gm_alloc_noscan(20000 * sizeof(long)), 0, 20000};
  for (long i = 0; i < 20000; i++)
    push(&pre, i);
  gm_stats(&s2);
  uint64_t grown_cycles = s1.num_gc - s0.num_gc, pre_cycles = s2.num_gc - s1.num_gc;
  printf("2. 20,000 pushes: %zu reallocations growing by 16 (%llu collections), one with "
         "preallocation (%llu)\n",
         grown.cap / 16, (unsigned long long)grown_cycles, (unsigned long long)pre_cycles);
  sink += (uintptr_t)grown.v[19999] + (uintptr_t)pre.v[19999];
  return pre_cycles <= grown_cycles;
}

// 3. A weak cache: key objects -> computed values, without keeping keys.
#define NKEYS 1000
typedef struct entry {
  gm_weak_t key;
  long value;
} entry_t;
static entry_t *cache; // a GC object: the handles in it live
static void **keys;    // the program's own references to the keys

static void *make_keys(void) {
  cache = gm_alloc(NKEYS * sizeof *cache);
  keys = gm_alloc(NKEYS * sizeof *keys);
  for (int i = 0; i < NKEYS; i++) {
    keys[i] = gm_alloc(32);
    cache[i] = (entry_t){gm_weak_make(keys[i]), (long)i * i};
  }
  return NULL;
}

static int step_weak_cache(void) {
  make_keys();
  for (int i = 0; i < NKEYS; i += 2)
    keys[i] = NULL; // half the keys are no longer used
  for (int i = 0; i < 3; i++)
    gm_collect();
  int live = 0, gone = 0;
  for (int i = 0; i < NKEYS; i++) {
    void *k = gm_weak_get(cache[i].key);
    if (k == NULL)
      gone++;
    else
      live += k == keys[i];
  }
  printf("3. weak cache: %d entries still keyed, %d gone with their keys\n", live, gone);
  return live == NKEYS / 2 && gone >= NKEYS / 2 * 9 / 10;
}

// 4. Which function allocates most? A heap profile says.
static __attribute__((noinline)) void hot_spot(void) {
  for (int i = 0; i < 100000; i++)
    sink += (uintptr_t)gm_alloc(256);
}
static __attribute__((noinline)) void cold_spot(void) {
  for (int i = 0; i < 1000; i++)
    sink += (uintptr_t)gm_alloc(256);
}

static int step_profile(const char *path) {
  if (gm_set_profile_rate(64 << 10) < 0) {
    printf("4. heap profile: not in this build\n");
    return 1;
  }
  hot_spot();
  cold_spot();
  FILE *f = fopen(path, "w");
  int ok = f != NULL && gm_heap_profile_write(fileno(f)) == 0;
  if (f != NULL)
    fclose(f);
  gm_set_profile_rate(0);
  printf("4. heap profile written to %s: go tool pprof -top -sample_index=alloc_space "
         "<this program> %s\n   shows hot_spot with about 25 MB\n",
         path, path);
  return ok;
}

// 5. The statistics that matter.
static int step_stats(void) {
  gm_stats_t s;
  gm_stats(&s);
  printf("5. gm_stats: live at the last collection %.1f MiB, next goal %.1f MiB, %llu "
         "collections, pauses %.1f ms in all, GC CPU %.1f%%, heap from the OS %.1f MiB\n"
         "   (GOMEM_GCTRACE=1 prints one line per collection)\n",
         s.gc_heap_live / 1048576.0, s.next_gc / 1048576.0, (unsigned long long)s.num_gc,
         s.pause_total_ns / 1e6, s.gc_cpu_fraction * 100,
         (s.heap_sys - s.heap_released) / 1048576.0);
  return s.num_gc > 0;
}

int main(int argc, char **argv) {
  const char *path = argc > 1 ? argv[1] : "/tmp/memopt.prof";
  int ok = 1;
  ok &= step_pool();
  ok &= step_prealloc();
  ok &= step_weak_cache();
  ok &= step_profile(path);
  ok &= step_stats();
  if (argc <= 1)
    unlink(path);
  printf("%s\n", ok ? "every practice paid off" : "a practice did not pay off");
  return ok ? 0 : 1;
}
