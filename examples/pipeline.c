// pipeline.c: goroutine-style coroutines in C. A pipeline of 100,000
// stages, each a coroutine with its own 64 KiB stack (of which it touches
// one page): a value enters at the head and every stage adds its number
// before passing it on, so each value leaves the tail increased by
// 0 + 1 + ... + 99,999. Stage 0 also wraps each value in a garbage-collected
// message that the stages pass along, while collections run: a message held
// only by a suspended coroutine survives. Checks its own results (exit 1 if
// one is wrong).
//
//   build/examples/pipeline [stages]
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "gomem.h"

typedef struct msg {
  uint64_t value;
  uint64_t hops;
} msg_t;

static gm_co_t **stage;
static long nstages;

// run_stage: stage i takes a message from its resumer (the stage before,
// or main), adds i, resumes stage i + 1 with it, and yields what came back.
static void run_stage(void *arg) {
  long i = (long)(intptr_t)arg;
  msg_t *m = gm_co_yield(NULL); // parked until the first message
  for (;;) {
    m->value += (uint64_t)i;
    m->hops++;
    if (i == nstages / 2)
      gm_collect(); // mid-pipeline: the stages before hold m, suspended
    if (i + 1 < nstages)
      m = gm_co_resume(stage[i + 1], m);
    m = gm_co_yield(m);
  }
}

int main(int argc, char **argv) {
  nstages = argc > 1 ? atol(argv[1]) : 100000;
  stage = malloc(sizeof *stage * (size_t)nstages);
  for (long i = 0; i < nstages; i++) {
    stage[i] = gm_co_create(run_stage, (void *)(intptr_t)i, 0);
    if (stage[i] == NULL) {
      perror("gm_co_create");
      return 1;
    }
    gm_co_resume(stage[i], NULL); // runs to its first gm_co_yield
  }
  uint64_t sum = (uint64_t)nstages * (uint64_t)(nstages - 1) / 2;
  int bad = 0;
  for (uint64_t v = 1; v <= 5; v++) {
    msg_t *m = gm_alloc(sizeof *m); // garbage-collected: nothing frees it
    m->value = v;
    m = gm_co_resume(stage[0], m);
    gm_collect(); // the message is held by this frame; earlier ones are garbage
    if (m->value != v + sum || m->hops != (uint64_t)nstages)
      bad++;
    printf("value %llu left the pipeline as %llu after %llu hops\n", (unsigned long long)v,
           (unsigned long long)m->value, (unsigned long long)m->hops);
  }
  gm_stats_t st;
  gm_stats(&st);
  printf("%ld coroutines, %.1f MiB of stacks resident, %llu collections\n", nstages,
         (double)st.co_stack_bytes / 1048576.0, (unsigned long long)st.num_gc);
  for (long i = 0; i < nstages; i++)
    gm_co_destroy(stage[i]);
  free(stage);
  return bad != 0;
}
