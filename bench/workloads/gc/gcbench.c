// gcbench: John Ellis and Pete Kovac's GCBench, as adapted by Hans Boehm
// (single-threaded), with the original's constants as parameters.
//
// A stretch tree of depth `stretch` is built and dropped; a long-lived tree
// of depth `longlived` (built top-down) and an array of `array` doubles
// (pointer-free; its first half is filled with 1/i) are kept; then for each
// depth d = min, min+2, ..., max, NumIters(d) = 2 * TreeSize(stretch) /
// TreeSize(d) trees of depth d are built top-down (Populate) and dropped,
// then as many bottom-up (MakeTree) and dropped. Nodes are {left, right,
// int i, int j} (24 bytes). Nothing is freed.
//
// Parameters: stretch=18 longlived=16 array=500000 min=4 max=16 (the
// original's kStretchTreeDepth, kLongLivedTreeDepth, kArraySize,
// kMinTreeDepth, kMaxTreeDepth).
// Metric: the whole benchmark's time (s), as the original reports it (no
// warm-up excluded). Checksum: FNV-1a over the output lines, which include
// the node count of the last tree of each phase and of the long-lived tree
// (so the trees are really built); identical to workloads/go/gcbench.
#include "gc.h"

typedef struct node {
  struct node *left, *right;
  int i, j;
} node_t;

static node_t *new_node(node_t *l, node_t *r) {
  node_t *n = GC_NEW(sizeof *n);
  GC_STORE(n->left, l);
  GC_STORE(n->right, r);
  return n;
}

static long tree_size(int i) { return (1L << (i + 1)) - 1; }

// Build the tree top-down.
static void populate(int depth, node_t *n) {
  if (depth <= 0) return;
  depth--;
  GC_STORE(n->left, new_node(NULL, NULL));
  GC_STORE(n->right, new_node(NULL, NULL));
  populate(depth, n->left);
  populate(depth, n->right);
}

// Build the tree bottom-up.
static node_t *make_tree(int depth) {
  if (depth <= 0) return new_node(NULL, NULL);
  return new_node(make_tree(depth - 1), make_tree(depth - 1));
}

static long count(const node_t *n) { return n ? 1 + count(n->left) + count(n->right) : 0; }

static int g_stretch;
static uint64_t h = FNV_INIT;

static void time_construction(int depth) {
  long iters = 2 * tree_size(g_stretch) / tree_size(depth);
  out_line(&h, "Creating %ld trees of depth %d", iters, depth);
  node_t *t = NULL;
  long top = 0, bottom = 0;
  for (long i = 0; i < iters; i++) {
    t = new_node(NULL, NULL);
    populate(depth, t);
    if (i == iters - 1) top = count(t);
    t = NULL;
  }
  for (long i = 0; i < iters; i++) {
    t = make_tree(depth);
    if (i == iters - 1) bottom = count(t);
    t = NULL;
  }
  escape(&t);
  out_line(&h, "Top down construction: %ld nodes; bottom up construction: %ld nodes", top, bottom);
}

int main(int argc, char **argv) {
  GC_INIT();
  args_init(argc, argv);
  g_stretch = (int)arg_int("stretch", 18);
  int longlived_depth = (int)arg_int("longlived", 16);
  long array_size = (long)arg_int("array", 500000);
  int min = (int)arg_int("min", 4);
  int max = (int)arg_int("max", 16);
  args_done();
  if (array_size < 2002) die("array must be at least 2002");

  double t0 = now_s();
  out_line(&h, "Garbage Collector Test");
  out_line(&h, " Stretching memory with a binary tree of depth %d", g_stretch);
  node_t *temp = make_tree(g_stretch);
  temp = NULL;
  escape(&temp);

  out_line(&h, " Creating a long-lived binary tree of depth %d", longlived_depth);
  node_t *longlived = new_node(NULL, NULL);
  populate(longlived_depth, longlived);

  out_line(&h, " Creating a long-lived array of %ld doubles", array_size);
  double *array = GC_NEW_NOSCAN(sizeof(double) * (size_t)array_size);
  for (long i = 0; i < array_size / 2; i++) array[i] = 1.0 / (double)i;

  for (int d = min; d <= max; d += 2) time_construction(d);

  if (array[1000] != 1.0 / 1000) die("the long-lived array was overwritten");
  out_line(&h, "Long-lived tree: %ld nodes", count(longlived));
  escape(&longlived);
  escape(&array);
  double t = now_s() - t0;
  report_check(h);
  report_metric("time", t, "s", "lower");
  gc_report_mark_share();
  return 0;
}
