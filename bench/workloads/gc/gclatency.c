// gclatency: pauses seen by a program with a large live heap and steady
// churn (single-threaded).
//
// The live heap is `live` bytes of 64-byte records {next, id, tag, pad},
// linked in chains of `chain` records hung from one pointer table (itself a
// GC object). Each iteration replaces `replace` records: it picks random
// chains (fixed seed), walks each old chain checking every record's tag
// (so a collector that freed or moved live memory is caught), and hangs a
// new chain in its place, dropping the old one. The time between the ends of
// consecutive iterations (clock_gettime CLOCK_MONOTONIC) is the pause a user
// would see: an iteration's own work plus whatever the collector made it
// wait (stop-the-world pauses, mark assists, sweeping).
//
// Parameters: live=512M chain=8 replace=8192 iters=4096.
// Warm-up: building the live heap and one full collection.
// Metrics: max gap between consecutive iterations (ms, primary), 99.9th
// percentile gap (ms), allocation rate during the iterations (MB/s, 1 MB =
// 10^6 bytes of records), time of the iterations (s), and the most time the
// collector held one iteration up by its own account (max_gc_stall, ms: the
// stops and mark assists inside it, gc.h's gc_stall_ns; the Go version has
// no such count: Go 1.19 does not report its assists). Checksum: over the ids
// of every record checked, identical to workloads/go/gclatency.
#include "gc.h"

typedef struct rec {
  struct rec *next;
  uint64_t id, tag;
  uint64_t pad[5];
} rec_t;
_Static_assert(sizeof(rec_t) == 64, "records are 64 bytes");

static uint64_t next_id;

static rec_t *make_chain(int n) {
  rec_t *head = NULL;
  for (int k = 0; k < n; k++) {
    rec_t *r = GC_NEW(sizeof *r);
    r->id = next_id++;
    r->tag = mix64(r->id);
    GC_STORE(r->next, head);
    head = r;
  }
  return head;
}

static uint64_t walk(const rec_t *r, int n) {
  uint64_t h = 0;
  int k = 0;
  for (; r; r = r->next, k++) {
    if (r->tag != mix64(r->id)) die("record %p (id %" PRIu64 ") corrupted", (const void *)r, r->id);
    h += mix64(r->id ^ 0x5bd1e995);
  }
  if (k != n) die("chain of %d records instead of %d", k, n);
  return h;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static rec_t **slots; // the pointer table (GC memory; its pointer is a root)

int main(int argc, char **argv) {
  GC_INIT();
  args_init(argc, argv);
  long long live = arg_int("live", 512LL << 20);
  int chain = (int)arg_int("chain", 8);
  long long replace = arg_int("replace", 8192);
  long iters = (long)arg_int("iters", 4096);
  args_done();
  if (chain < 1 || replace < 1 || iters < 1) die("chain, replace and iters must be positive");
  long nslots = (long)(live / (long long)(sizeof(rec_t) * (size_t)chain));
  if (nslots < 1) nslots = 1;
  long per_iter = (long)((replace + chain - 1) / chain); // chains replaced per iteration

  slots = GC_NEW(sizeof(rec_t *) * (size_t)nslots);
  for (long s = 0; s < nslots; s++) GC_STORE(slots[s], make_chain(chain));
  GC_COLLECT();

  double *gaps = xmalloc(sizeof(double) * (size_t)iters);
  rng_t rng = rng_make(1, 2);
  uint64_t h = 0;
  gc_stall_init();
  int64_t stall_prev = gc_stall_ns(), stall_max = 0;
  double t0 = now_s(), prev = t0;
  for (long it = 0; it < iters; it++) {
    for (long c = 0; c < per_iter; c++) {
      long s = (long)(rng_next(&rng) % (uint64_t)nslots);
      h += walk(slots[s], chain);
      GC_STORE(slots[s], make_chain(chain));
    }
    double t = now_s();
    gaps[it] = t - prev;
    prev = t;
    int64_t stall = gc_stall_ns();
    if (stall - stall_prev > stall_max) stall_max = stall - stall_prev;
    stall_prev = stall;
  }
  double elapsed = prev - t0;
  for (long s = 0; s < nslots; s++) h = mix64(h ^ walk(slots[s], chain));
  h = mix64(h ^ next_id);

  qsort(gaps, (size_t)iters, sizeof *gaps, cmp_double);
  long i999 = (long)ceil(0.999 * (double)iters) - 1;
  double bytes = (double)iters * (double)per_iter * (double)chain * (double)sizeof(rec_t);
  printf("# %s: %ld chains of %d records (%.1f MiB live), %ld chains replaced per iteration, median gap %.3f ms\n",
         GC_IMPL_NAME, nslots, chain, (double)nslots * chain * sizeof(rec_t) / 1048576.0, per_iter,
         gaps[iters / 2] * 1e3);
  report_check(h);
  report_metric("max_gap", gaps[iters - 1] * 1e3, "ms", "lower");
  report_metric("p99.9_gap", gaps[i999] * 1e3, "ms", "lower");
  report_metric("alloc_rate", bytes / 1e6 / elapsed, "MB/s", "higher");
  report_metric("time", elapsed, "s", "lower");
  report_metric("max_gc_stall", (double)stall_max / 1e6, "ms", "lower");
  gc_report_mark_share();
  free(gaps);
  return 0;
}
