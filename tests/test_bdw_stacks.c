// test_bdw_stacks: coroutine stacks a Boehm GC program manages itself, as
// Crystal's fibers do: ucontext stacks mapped by the program (each with a
// guard page below it, packed one after another), the running stack's end
// declared to the collector, the suspended ones pushed by the program's
// GC_push_other_roots. Each coroutine builds a list of GC objects held only
// by its own frame, yielding and collecting as it goes, then checks it.
//
//   - the initial thread declares by writing GC_stackbottom at every switch;
//     coroutines collect while running on their stacks, the scheduler while
//     they are suspended: every list intact (without the declared stack, the
//     running coroutine's list is lost at its own collections);
//   - declarations the program has not made true yet (the end of the stack
//     above, across its guard page; the end of one below the stack pointer;
//     the thread's own stack's end), as a stop between a library's store and
//     its switch sees them: a collection neither faults nor loses the list;
//   - another thread declares with GC_set_stackbottom (its handle from
//     GC_get_my_stackbottom, which reads the declaration back) while a third
//     collects back to back, stopping it inside its coroutines; the
//     collecting thread waits while a switch is under way (as Crystal's
//     scheduler and its GC lock arrange), so no stop lands between a
//     declaration and its switch.
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "gc.h"
#include "test.h"

#if __has_include(<valgrind/valgrind.h>) // (a no-op when not under valgrind)
#include <valgrind/valgrind.h>
#else
#define VALGRIND_STACK_REGISTER(lo, hi) 0
#endif
#if defined(__SANITIZE_THREAD__) // (TSan follows the switches as fibers)
#include <sanitizer/tsan_interface.h>
#define FIBER_NEW() __tsan_create_fiber(0)
#define FIBER_SELF() __tsan_get_current_fiber()
#define FIBER_SWITCH(f) __tsan_switch_to_fiber((f), 0)
#else
#define FIBER_NEW() NULL
#define FIBER_SELF() NULL
#define FIBER_SWITCH(f) ((void)(f))
#endif

#define NOINLINE __attribute__((noinline))
#define NCO 6
#define STACK (128 << 10)
#define LEN 400
#define MAGIC 0x5eed0000u

typedef struct node {
  struct node *next;
  unsigned tag;
  char pad[48];
} node_t;

typedef struct sched sched_t;
typedef struct co {
  ucontext_t ctx;
  char *lo, *bottom; // the stack: [lo, bottom)
  void *fiber;       // TSan's
  sched_t *s;
  int id, stale; // stale: which false declarations to try (test_stale)
  bool running, done;
} co_t;

struct sched {
  ucontext_t ctx;
  void *own_bottom; // the thread's own stack's end
  void *handle;     // GC_get_my_stackbottom's (NULL: the initial thread's GC_stackbottom)
  void *fiber;      // TSan's, of the thread
  co_t co[NCO];
  char *region;
  bool collect; // coroutines collect as they go
};

static sched_t *scheds[2];
static _Atomic int bad, stop_hammer;
static _Atomic int want_gc, switching; // (Dekker's exclusion: switches vs hammer)
static GC_push_other_roots_proc prev_push;

static void pause_briefly(void) { // (a blocking call: the stop signal gets in)
  nanosleep(&(struct timespec){0, 1000}, NULL);
}

// switch_begin and switch_end bracket a switch of the second thread's: the
// hammer does not collect in between.
static void switch_begin(sched_t *s) {
  if (s->handle == NULL)
    return;
  for (;;) {
    switching = 1;
    if (!want_gc)
      return;
    switching = 0;
    while (want_gc)
      pause_briefly();
  }
}
static void switch_end(sched_t *s) {
  if (s->handle != NULL)
    switching = 0;
}

static void declare(sched_t *s, void *bottom) {
  if (s->handle == NULL) {
    GC_stackbottom = bottom;
  } else {
    struct GC_stack_base sb = {bottom};
    GC_set_stackbottom(s->handle, &sb);
  }
}

// push_suspended pushes every suspended coroutine's stack from its saved
// stack pointer (Crystal's Fiber#push_gc_roots), never the running one's.
static void push_suspended(void) {
  for (int k = 0; k < 2; k++) {
    sched_t *s = scheds[k];
    for (int i = 0; s != NULL && i < NCO; i++) {
      co_t *c = &s->co[i];
      if (!c->running && !c->done && c->ctx.uc_mcontext.gregs[REG_RSP] != 0)
        GC_push_all_eager((void *)c->ctx.uc_mcontext.gregs[REG_RSP], c->bottom);
    }
  }
  if (prev_push != NULL)
    prev_push();
}

static void yield(co_t *c) {
  switch_begin(c->s);
  declare(c->s, c->s->own_bottom);
  FIBER_SWITCH(c->s->fiber);
  swapcontext(&c->ctx, &c->s->ctx);
}

// resume runs c until it yields (the scheduler side of a switch).
static void resume(co_t *c) {
  switch_begin(c->s);
  c->running = true;
  declare(c->s, c->bottom);
  FIBER_SWITCH(c->fiber);
  swapcontext(&c->s->ctx, &c->ctx);
  c->running = false;
  switch_end(c->s);
}

static NOINLINE node_t *push_node(node_t *head, unsigned tag) {
  node_t *n = GC_MALLOC(sizeof *n);
  n->next = head;
  n->tag = tag;
  return n;
}

// stale_collect collects under declarations that are not c's stack's end.
static NOINLINE void stale_collect(co_t *c) {
  sched_t *s = c->s;
  if (c->id + 1 < NCO) { // the stack above, across its guard page
    declare(s, s->co[c->id + 1].bottom);
    GC_gcollect();
  }
  if (c->id > 0) { // a stack below this one: its end lies below sp
    declare(s, s->co[c->id - 1].bottom);
    GC_gcollect();
  }
  declare(s, s->own_bottom); // the thread's own (a switch back, half done)
  GC_gcollect();
  declare(s, c->bottom);
}

static void body(unsigned lo32, unsigned hi32) {
  co_t *c = (co_t *)((uintptr_t)hi32 << 32 | lo32);
  switch_end(c->s); // (begun by resume)
  for (int round = 0; round < 3; round++) {
    node_t *volatile head = NULL; // this frame is the list's only holder
    for (unsigned i = 0; i < LEN; i++) {
      head = push_node(head, MAGIC | (unsigned)c->id << 12 | i);
      (void)GC_MALLOC(256); // garbage, to reuse what a collection frees
      if (i % 50 == 49) {
        yield(c);
        switch_end(c->s);
      }
      if (c->s->collect && i % 97 == 0)
        GC_gcollect();
      if (c->stale && i == LEN / 2)
        stale_collect(c);
    }
    unsigned want = LEN; // (a reused node may make a cycle: LEN steps at most)
    for (node_t *n = head; n != NULL && want > 0; n = n->next)
      if (n->tag != (MAGIC | (unsigned)c->id << 12 | --want))
        bad++;
    if (want != 0)
      bad++;
  }
  c->done = true;
  yield(c);
  abort(); // (never resumed again)
}

static void sched_init(sched_t *s, bool own_thread, bool collect, bool stale) {
  memset(s, 0, sizeof *s);
  struct GC_stack_base sb;
  s->handle = own_thread ? GC_get_my_stackbottom(&sb) : NULL;
  s->own_bottom = own_thread ? sb.mem_base : GC_stackbottom;
  s->collect = collect;
  s->fiber = FIBER_SELF();
  size_t page = (size_t)sysconf(_SC_PAGESIZE), slot = STACK + page;
  s->region = mmap(NULL, NCO * slot, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (s->region == MAP_FAILED)
    abort();
  for (int i = 0; i < NCO; i++) {
    co_t *c = &s->co[i];
    mprotect(s->region + i * slot, page, PROT_NONE); // the guard below stack i
    c->lo = s->region + i * slot + page;
    c->bottom = c->lo + STACK;
    (void)VALGRIND_STACK_REGISTER(c->lo, c->bottom);
    c->s = s;
    c->id = i;
    c->stale = stale;
    c->fiber = FIBER_NEW();
    getcontext(&c->ctx);
    c->ctx.uc_stack.ss_sp = c->lo;
    c->ctx.uc_stack.ss_size = STACK;
    c->ctx.uc_link = NULL;
    makecontext(&c->ctx, (void (*)(void))body, 2, (unsigned)(uintptr_t)c,
                (unsigned)((uintptr_t)c >> 32));
  }
}

static void sched_run(sched_t *s) {
  for (bool any = true; any;) {
    any = false;
    for (int i = 0; i < NCO; i++) {
      if (s->co[i].done)
        continue;
      resume(&s->co[i]);
      any = true;
    }
    if (!s->collect)
      continue;
    GC_gcollect(); // the scheduler's, with every coroutine suspended
  }
  declare(s, s->own_bottom);
}

static sched_t main_sched, thread_sched;

static void test_main_thread(bool stale) {
  bad = 0;
  scheds[0] = &main_sched;
  sched_init(&main_sched, false, true, stale);
  sched_run(&main_sched);
  scheds[0] = NULL;
  CHECKF(bad == 0, "%d list nodes lost or damaged", (int)bad);
  report(stale ? "declarations not yet true: no fault, nothing lost"
               : "GC_stackbottom: lists on running and suspended coroutines intact",
         bad == 0);
}

static void *hammer(void *arg) {
  (void)arg;
  while (!stop_hammer) {
    want_gc = 1;
    while (switching)
      pause_briefly();
    GC_gcollect();
    want_gc = 0;
    pause_briefly();
  }
  return NULL;
}

static void *other_thread(void *arg) {
  (void)arg;
  sched_init(&thread_sched, true, false, false);
  struct GC_stack_base sb = {thread_sched.co[2].bottom}, back;
  GC_set_stackbottom(NULL, &sb);
  void *h = GC_get_my_stackbottom(&back);
  bool readback = h == thread_sched.handle && back.mem_base == thread_sched.co[2].bottom;
  CHECK(readback);
  declare(&thread_sched, thread_sched.own_bottom);
  scheds[1] = &thread_sched;
  sched_run(&thread_sched);
  scheds[1] = NULL;
  return (void *)(uintptr_t)readback;
}

static void test_other_thread(void) {
  bad = 0;
  GC_allow_register_threads();
  pthread_t h, t;
  pthread_create(&h, NULL, hammer, NULL);
  pthread_create(&t, NULL, other_thread, NULL);
  void *readback;
  pthread_join(t, &readback);
  stop_hammer = 1;
  pthread_join(h, NULL);
  CHECKF(bad == 0, "%d list nodes lost or damaged", (int)bad);
  report("GC_set_stackbottom from another thread, stopped by collections", bad == 0 && readback);
}

int main(void) {
  GC_INIT();
  prev_push = GC_get_push_other_roots();
  GC_set_push_other_roots(push_suspended);
  test_main_thread(false);
  test_main_thread(true);
  test_other_thread();
  return test_done();
}
