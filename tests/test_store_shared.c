// test_store_shared: the inline gm_store of a program linked against the
// shared library (run with GOMEM_BARRIER=explicit). The inline reads
// gm_store_on_, which the library sets while a cycle marks. A program built
// as a position-dependent or PIE executable holds that variable itself (a
// copy relocation), so the library must write it through its GOT: were it
// to write its own copy, the program would never record a store and the
// barrier would lose objects. The test allocates until it has seen
// gm_store_on_ set (a cycle marking beside it) and cleared, and checks a
// structure it rewired with gm_store all along.
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "gomem.h"
#include "test.h"

typedef struct node {
  struct node *next;
  uint64_t v;
} node_t;

static node_t *volatile g_head;

int main(void) {
  enum { N = 4096 };
  node_t *head = NULL;
  for (uint64_t i = 0; i < N; i++) {
    node_t *n = gm_alloc(sizeof *n);
    n->v = i;
    gm_store((void **)&n->next, head);
    head = n;
  }
  g_head = head;
  gm_stats_t s;
  gm_stats(&s);
  uint64_t gc0 = s.num_gc;
  bool seen_on = false, seen_off_after = false;
  time_t until = time(NULL) + 60;
  for (uint64_t k = 0; !(seen_on && seen_off_after) && time(NULL) < until; k++) {
    // Rotate the list's head to its tail through gm_store while cycles run.
    node_t *h = g_head, *second = h->next, *t = h;
    while (t->next)
      t = t->next;
    gm_store((void **)&h->next, NULL);
    gm_store((void **)&t->next, h);
    g_head = second;
    for (int j = 0; j < 256; j++) // garbage: cycles come
      *(volatile char *)gm_alloc(64) = 1;
    int on = __atomic_load_n(&gm_store_on_, __ATOMIC_RELAXED);
    seen_on |= on != 0;
    seen_off_after |= seen_on && on == 0;
  }
  gm_stats(&s);
  uint64_t sum = 0, count = 0;
  for (node_t *n = g_head; n; n = n->next, count++)
    sum += n->v;
  bool intact = count == N && sum == (uint64_t)N * (N - 1) / 2;
  CHECKF(s.gc_concurrent == 1, "gc_concurrent %lld (GOMEM_BARRIER=explicit?)",
         (long long)s.gc_concurrent);
  CHECKF(seen_on && seen_off_after, "gm_store_on_ seen set: %d, then cleared: %d (%llu cycles)",
         seen_on, seen_off_after, (unsigned long long)(s.num_gc - gc0));
  CHECKF(intact, "the list has %llu nodes summing to %llu", (unsigned long long)count,
         (unsigned long long)sum);
  report("the library's marking flag reaches the program's inline gm_store",
         seen_on && seen_off_after);
  report("a list rewired with gm_store while cycles marked is intact", intact);
  return test_done();
}
