// gc_tree.c: gomem's garbage-collected heap from C. Nothing is ever freed:
// threads build binary trees with gm_alloc, keep some, drop the rest, and
// the collector reclaims what is no longer reachable. A finalizer reports
// when a dropped tree's root has been collected.
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "gomem.h"

typedef struct node {
  struct node *left, *right;
  char *label; // pointer-free text: gm_alloc_noscan
} node_t;

static node_t *build(int depth) {
  node_t *n = gm_alloc(sizeof *n);
  n->label = gm_alloc_noscan(8);
  strcpy(n->label, depth ? "inner" : "leaf");
  if (depth > 0) {
    n->left = build(depth - 1);
    n->right = build(depth - 1);
  }
  return n;
}

static long count(const node_t *n) {
  return n ? 1 + count(n->left) + count(n->right) : 0;
}

static node_t *kept[4]; // a global root: these trees survive every collection
static atomic_int finalized;

static void on_collect(void *obj, void *arg) {
  (void)obj;
  (void)arg;
  atomic_fetch_add(&finalized, 1);
}

static void *worker(void *arg) {
  int id = (int)(long)arg;
  for (int i = 0; i < 200; i++) {
    node_t *t = build(12); // 8191 nodes, dropped at the next iteration
    if (i % 50 == 0)
      gm_set_finalizer(t, on_collect, NULL);
  }
  kept[id] = build(14);
  return NULL;
}

int main(void) {
  pthread_t th[4];
  for (long i = 0; i < 4; i++)
    pthread_create(&th[i], NULL, worker, (void *)i);
  for (int i = 0; i < 4; i++)
    pthread_join(th[i], NULL);
  gm_collect();
  gm_collect(); // finalizers of the first collection have had time to be queued

  long nodes = 0;
  for (int i = 0; i < 4; i++)
    nodes += count(kept[i]);
  gm_stats_t st;
  gm_stats(&st);
  printf("gc_tree: 4 threads built 800 dropped trees and kept 4 (%ld nodes, all intact)\n",
         nodes);
  printf("gc_tree: %llu collections, %.1f MiB live, total pause %.1f ms, %d dropped roots "
         "finalized so far\n",
         (unsigned long long)st.num_gc, (double)st.gc_heap_live / (1 << 20),
         (double)st.pause_total_ns / 1e6, atomic_load(&finalized));
  return nodes == 4 * 32767 ? 0 : 1;
}
