// binary-trees: the Computer Language Benchmarks Game program, with
// malloc/free for every node (single-threaded).
//
// A "stretch" tree of depth max+1 is built and freed, a long-lived tree of
// depth max is kept, and for each depth d = min, min+2, ..., max,
// 2^(max - d + min) trees of depth d are built, checked and freed.
//
// Parameters: depth=18 (max depth; min depth is 4).
// Metric: time of the whole program after the stretch tree (s); the stretch
// tree is warm-up. The checksum is over the standard output lines.
#include "common.h"

typedef struct node {
  struct node *left, *right;
} node_t;

static node_t *build(int depth) {
  node_t *n = xmalloc(sizeof *n);
  if (depth > 0) {
    n->left = build(depth - 1);
    n->right = build(depth - 1);
  } else {
    n->left = n->right = NULL;
  }
  return n;
}

static long check(const node_t *n) { return n->left ? 1 + check(n->left) + check(n->right) : 1; }

static void destroy(node_t *n) {
  if (n->left) {
    destroy(n->left);
    destroy(n->right);
  }
  free(n);
}

static uint64_t hsum;
static void out(const char *kind, long iters, int depth, long chk) {
  printf("# %s %ld trees of depth %d check: %ld\n", kind, iters, depth, chk);
  hsum = mix64(hsum ^ (uint64_t)iters) + mix64((uint64_t)depth ^ ((uint64_t)chk << 8));
}

int main(int argc, char **argv) {
  args_init(argc, argv);
  int max = (int)arg_int("depth", 18);
  args_done();
  const int min = 4;
  if (max < min + 2) max = min + 2;

  node_t *stretch = build(max + 1);
  out("stretch", 1, max + 1, check(stretch));
  destroy(stretch);

  double t0 = now_s();
  node_t *longlived = build(max);
  for (int d = min; d <= max; d += 2) {
    long iters = 1L << (max - d + min);
    long chk = 0;
    for (long i = 0; i < iters; i++) {
      node_t *t = build(d);
      chk += check(t);
      destroy(t);
    }
    out("", iters, d, chk);
  }
  out("long lived", 1, max, check(longlived));
  destroy(longlived);
  double t = now_s() - t0;
  report_check(hsum);
  report_metric("time", t, "s", "lower");
  return 0;
}
