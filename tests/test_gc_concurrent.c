// test_gc_concurrent: marking beside the program (GOMEM_GC_CONCURRENT=1)
// loses no object the program moves while the marker runs. The test
// re-executes itself with the option, and reports SKIP where the kernel
// cannot track writes (gctrace says why).
//
// Each case holds the marker between two objects. The roots g_roots[0] = A
// and g_roots[1] = B are greyed at the cycle's first stop; the marker scans
// B (black) before A. A holds the only pointer to X, which has a finalizer.
// When the marker has just scanned B, a hook (in the marker's thread) moves
// X's pointer somewhere already scanned and clears A's field; the finalizer
// must never run while X is reachable, and X keeps its contents. Where to:
//   - into B (a heap object already scanned: its page was written);
//   - into a global (the data segments are scanned again at the last stop);
//   - into the main thread's stack (it is allocating all along);
//   - into B by read(2) from a pipe (the kernel writes B's page);
//   - into B by gm_store_bulk;
//   - into B by the gm_store function ((gm_store)(...): the header's
//     gm_store is inline, the other cases use that);
//   - into B by gm_store from another thread, which then exits (the hook
//     joins it): under the explicit barrier its buffer alone held X, and
//     its exit must grey it;
//   - into a register: the hook asks the main thread, which is allocating,
//     to load X's address into r15 (x86-64; a register this file never uses
//     otherwise), waits for it (at most 0.2 s: else the attempt is
//     repeated), and clears A's field: X's address is then in the running
//     main thread's registers, or in the frames that saved them, alone.
// A case whose hook did not find B scanned before A is repeated. With
// GOMEM_BARRIER=explicit (ctest's test_gc_concurrent_explicit) the move
// into B goes through gm_store, no page is protected, and the read(2) case
// does not apply.
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mgcmark.h"
#include "test.h"
#include "test_gc.h"

enum how { TO_HEAP, TO_GLOBAL, TO_STACK, TO_READ, TO_REG, TO_BULK, TO_FUNC, TO_EXIT };

#if defined(__x86_64__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic" // (a global register variable: a GNU extension)
register uintptr_t g_reg __asm__("r15");    // TO_REG: X's address, in a register only
#pragma GCC diagnostic pop
#define HAVE_REG 1
#else
static uintptr_t g_reg;
#define HAVE_REG 0
#endif

typedef struct obj {
  struct obj *p;
  uint64_t pattern[7];
} obj_t;

static obj_t *volatile g_roots[2]; // A, B (scanned in that order of words)
// The hook (in the marker's thread) and the main thread share A, B and A's
// field without a lock, by design: relaxed atomic accesses (a cycle may
// start before setup and run the hook after it, with no stop in between).
#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
static obj_t *volatile g_global;
static obj_t *volatile *volatile g_stack_slot;
static _Atomic int fin_ran, moved, a_first, reg_ask, reg_done;
static _Atomic int exit_ask; // TO_EXIT: 1 store and exit, 2 exit
static pthread_t g_exiter;
static bool exiter_joined;
static enum how g_how;
static int g_pipe[2];

static void x_fin(void *obj, void *arg) {
  (void)obj, (void)arg;
  atomic_fetch_add(&fin_ran, 1);
}

// The hook: the marker has scanned an entry.
static void on_scan(uintptr_t e) {
  uintptr_t addr = e & (((uintptr_t)1 << 47) - 1);
  obj_t *a = LOAD(g_roots[0]), *b = LOAD(g_roots[1]);
  if (atomic_load(&moved) || a == NULL)
    return;
  if (addr == (uintptr_t)a) {
    atomic_store(&a_first, 1); // the wrong order: this cycle proves nothing
    return;
  }
  if (addr != (uintptr_t)b || atomic_load(&a_first))
    return;
  obj_t *x = LOAD(a->p);
  switch (g_how) {
  case TO_HEAP: // (a plain store when the barrier is not explicit)
    gm_store((void **)&b->p, x);
    break;
  case TO_FUNC: // the exported function, not the header's inline barrier
    (gm_store)((void **)&b->p, x);
    break;
  case TO_GLOBAL:
    g_global = x;
    break;
  case TO_STACK:
    *g_stack_slot = x;
    break;
  case TO_READ:
    if (write(g_pipe[1], &x, sizeof x) != sizeof x || read(g_pipe[0], &b->p, sizeof x) != sizeof x)
      abort();
    break;
  case TO_BULK: { // through gm_store_bulk (a memmove of pointers)
    void *src[1] = {x};
    gm_store_bulk((void **)&b->p, src, 1);
    src[0] = NULL;
    __asm__ volatile("" : : "r"(src) : "memory");
    break;
  }
  case TO_EXIT: { // a thread stores it with gm_store, then exits (joined here)
    atomic_store(&exit_ask, 1);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 1;
    if (pthread_timedjoin_np(g_exiter, NULL, &until) != 0) {
      atomic_store(&a_first, 1); // (not this cycle; run_case joins it)
      return;
    }
    exiter_joined = true;
    break;
  }
  case TO_REG: { // the main thread loads it into r15 (reg_poll)
    atomic_store(&reg_ask, 1);
    for (int i = 0; i < 4000 && !atomic_load(&reg_done); i++)
      usleep(50);
    if (!atomic_load(&reg_done)) {
      atomic_store(&reg_ask, 0);
      atomic_store(&a_first, 1); // (not this cycle)
      return;
    }
    break;
  }
  }
  x = NULL;
  STORE(a->p, NULL);
  atomic_store(&moved, 1);
}

// exiter_main (TO_EXIT): a registered thread that, when the hook asks,
// moves X from A into B with gm_store and exits: under the explicit barrier
// the pointer is then only in its buffer, which its exit must grey.
static void *exiter_main(void *arg) {
  (void)arg;
  *(volatile char *)gm_alloc(8) = 1; // (registered: gm_store buffers)
  int ask;
  while ((ask = atomic_load(&exit_ask)) == 0)
    usleep(50);
  if (ask == 1) {
    obj_t *a = LOAD(g_roots[0]), *b = LOAD(g_roots[1]);
    gm_store((void **)&b->p, LOAD(a->p));
  }
  return NULL;
}

// reg_poll (main thread, TO_REG): load X's address into r15 when asked.
static inline void reg_poll(void) {
  if (atomic_load_explicit(&reg_ask, memory_order_acquire) && !atomic_load(&reg_done)) {
    g_reg = (uintptr_t)LOAD(LOAD(g_roots[0])->p);
    atomic_store(&reg_done, 1);
  }
}

NOINLINE static void setup(void) {
  obj_t *a = gm_alloc(sizeof *a), *b = gm_alloc(sizeof *b), *x = gm_alloc(sizeof *x);
  for (int i = 0; i < 7; i++)
    x->pattern[i] = pat(99, (size_t)i);
  gm_set_finalizer(x, x_fin, NULL);
  STORE(a->p, x);
  STORE(g_roots[0], a);
  STORE(g_roots[1], b);
}

NOINLINE static obj_t *where(obj_t *volatile *slot) {
  switch (g_how) {
  case TO_HEAP:
  case TO_READ:
  case TO_BULK:
  case TO_FUNC:
  case TO_EXIT:
    return g_roots[1]->p;
  case TO_GLOBAL:
    return g_global;
  case TO_STACK:
    return *slot;
  case TO_REG:
    return (obj_t *)g_reg;
  }
  return NULL;
}

// run_case: one scenario; false if the marker never took the order needed.
static bool run_case(enum how how, const char *name) {
  static const char *const names[] = {"heap",     "global", "stack",    "read",
                                      "register", "bulk",   "function", "exit"};
  (void)names;
  obj_t *volatile slot = NULL; // TO_STACK: the main thread's stack
  for (int attempt = 0; attempt < 20; attempt++) {
    g_how = how;
    g_stack_slot = &slot;
    atomic_store(&moved, 0);
    atomic_store(&a_first, 0);
    atomic_store(&fin_ran, 0);
    setup();
    clear_stack();
    atomic_store(&reg_ask, 0);
    atomic_store(&reg_done, 0);
    atomic_store(&exit_ask, 0);
    exiter_joined = false;
    if (how == TO_EXIT && pthread_create(&g_exiter, NULL, exiter_main, NULL) != 0)
      abort();
    gm_stats_t s;
    gm_stats(&s);
    uint64_t n0 = s.num_gc;
    // Garbage until a cycle with the move has completed.
    for (int k = 0; k < 1000000; k++) {
      *(volatile char *)gm_alloc_noscan(256) = 1;
      reg_poll();
      if (atomic_load(&moved) && (k & 1023) == 0) {
        gm_stats(&s);
        if (s.num_gc > n0 + 1)
          break;
      }
    }
    if (how == TO_EXIT && !exiter_joined) {
      atomic_store(&exit_ask, 2);
      pthread_join(g_exiter, NULL);
    }
    if (!atomic_load(&moved)) { // (X is still A's: its finalizer must not count later)
      gm_set_finalizer(LOAD(LOAD(g_roots[0])->p), NULL, NULL);
      g_reg = 0;
      STORE(g_roots[0], NULL);
      STORE(g_roots[1], NULL);
      continue;
    }
    for (int i = 0; i < 4; i++) { // more cycles, time for a queued finalizer
      collect();
      usleep(10000);
    }
    obj_t *x = where(&slot);
    bool ok = x != NULL && atomic_load(&fin_ran) == 0;
    for (int i = 0; ok && i < 7; i++)
      ok = x->pattern[i] == pat(99, (size_t)i);
    CHECKF(ok, "%s: X %p, its finalizer ran %d times", name, (void *)x, atomic_load(&fin_ran));
    report(name, ok);
    gm_set_finalizer(x, NULL, NULL);
    STORE(g_roots[0], NULL);
    STORE(g_roots[1], NULL);
    g_global = NULL;
    slot = NULL;
    g_reg = 0;
    return true;
  }
  return false;
}

#ifndef GOMEM_SANITIZE
#define GOMEM_SANITIZE ""
#endif

int main(int argc, char **argv) {
  int rc = run_concurrent(argc, argv, "concurrent marking", GOMEM_SANITIZE);
  if (rc >= 0)
    return rc;
  if (pipe(g_pipe) != 0)
    return 1;
  gm_set_gc_percent(25);
  gc_debug_scan_hook = on_scan;
  gm_stats_t s;
  gm_stats(&s);
  (void)s;
  static const struct {
    enum how how;
    const char *name;
  } cases[] = {
      {TO_HEAP, "moved into a scanned heap object"},
      {TO_GLOBAL, "moved into a global"},
      {TO_STACK, "moved onto a running thread's stack"},
      {TO_READ, "moved into a scanned object by read(2)"},
      {TO_REG, "kept only in a running thread's register"},
      {TO_BULK, "moved into a scanned heap object by gm_store_bulk"},
      {TO_FUNC, "moved into a scanned heap object by the gm_store function"},
      {TO_EXIT, "moved by a thread that exits while marking runs"},
  };
  const char *barrier = getenv("GOMEM_BARRIER");
  bool explicit = barrier != NULL && strcmp(barrier, "explicit") == 0;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    if (cases[i].how == TO_REG && !HAVE_REG)
      test_skip(cases[i].name, "x86-64 only");
    else if (cases[i].how == TO_READ && explicit)
      test_skip(cases[i].name, "with the explicit barrier, read(2) of pointers is the program's");
    else if (!run_case(cases[i].how, cases[i].name)) {
      test_skip(cases[i].name, "no concurrent cycle took the order needed (no write tracking?)");
    }
  gc_debug_scan_hook = NULL;
  return test_done();
}
