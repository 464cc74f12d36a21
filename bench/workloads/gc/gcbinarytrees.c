// gcbinarytrees: the Computer Language Benchmarks Game binary-trees program
// with a garbage collector: nodes are never freed (single-threaded).
//
// A "stretch" tree of depth max+1 is built and dropped, a long-lived tree of
// depth max is kept, and for each depth d = 4, 6, ..., max, 2^(max - d + 4)
// trees of depth d are built bottom-up, their nodes counted, and dropped.
//
// Parameters: depth=21 (max depth; min depth is 4).
// Metric: time after the stretch tree (s); the stretch tree is warm-up.
// The checksum is FNV-1a over the program's standard output lines (printed
// with a leading "# "), identical to workloads/go/gcbinarytrees.
#include "gc.h"

typedef struct node {
  struct node *left, *right;
} node_t;

static node_t *build(int depth) {
  node_t *n = GC_NEW(sizeof *n);
  if (depth > 0) {
    GC_STORE(n->left, build(depth - 1));
    GC_STORE(n->right, build(depth - 1));
  }
  return n;
}

static long check(const node_t *n) { return n->left ? 1 + check(n->left) + check(n->right) : 1; }

// build_check builds a tree and counts its nodes. A separate function, so no
// register or stack slot of main keeps the tree's root after it returns (a
// conservative collector would otherwise keep the whole tree alive).
static __attribute__((noinline)) long build_check(int depth) { return check(build(depth)); }

int main(int argc, char **argv) {
  GC_INIT();
  args_init(argc, argv);
  int max = (int)arg_int("depth", 21);
  args_done();
  const int min = 4;
  if (max < min + 2) max = min + 2;
  uint64_t h = FNV_INIT;

  out_line(&h, "stretch tree of depth %d\t check: %ld", max + 1, build_check(max + 1));

  double t0 = now_s();
  node_t *longlived = build(max);
  for (int d = min; d <= max; d += 2) {
    long iters = 1L << (max - d + min);
    long chk = 0;
    for (long i = 0; i < iters; i++) chk += build_check(d);
    out_line(&h, "%ld\t trees of depth %d\t check: %ld", iters, d, chk);
  }
  out_line(&h, "long lived tree of depth %d\t check: %ld", max, check(longlived));
  double t = now_s() - t0;
  report_check(h);
  report_metric("time", t, "s", "lower");
  gc_report_mark_share();
  return 0;
}
