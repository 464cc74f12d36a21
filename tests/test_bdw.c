// test_bdw: libgc.so.1, Boehm GC's interface on gomem's collector, used as a
// Boehm GC program uses it (include/gc.h, linked with the library alone).
// Each case checks a semantic Boehm GC's clients depend on:
//   - implicit initialisation; Boehm's sizes (GC_size of 0, 7, 15, 17 bytes
//     with the extra byte; GC_base of an interior pointer; GC_is_heap_ptr);
//   - zeroed GC_malloc; GC_realloc keeps the kind (uncollectable stays);
//   - an uncollectable object, reachable from nowhere scanned, survives
//     collections with what it points to, and goes with GC_free;
//   - finalizers run in the allocating thread at its next allocation (never
//     on another thread), once; with finalize-on-demand only through
//     GC_invoke_finalizers after the notifier; ordered finalization keeps
//     an object reachable from a finalizable one for a later cycle, no-order
//     does not; ignore-self finalizes an object that points to itself,
//     still in order along chains; unreachable order waits while a no-order
//     object reaches it; unregistering returns the old function and data;
//   - disappearing links: cleared once the object is unreachable, not while
//     it lives; the return codes of register, move and unregister;
//   - GC_push_other_roots (chained, as ECL does) keeps an object alive
//     through GC_push_all and through GC_set_mark_bit; GC_clear_roots drops
//     GC_add_roots ranges;
//   - GC_malloc_many lists, GC_call_with_alloc_lock, GC_register_my_thread's
//     codes, GC_get_suspend_signal;
//   - heap sizing: the free-space divisor (set or from the environment),
//     GC_expand_hp and GC_INITIAL_HEAP_SIZE change how often it collects;
//   - fork while other threads hold libgc's own locks (kinds, uncollectable
//     set, GC_disable's count, GC_expand_hp's size): every child can take
//     each of them again.
// Objects are built in separate, non-inlined functions and their addresses
// kept only hidden (GC_HIDE_POINTER), so no stale copy on the stack keeps
// them alive; a case that needs an object to die retries a few collections.
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#include "gc.h"
#include "gc/gc_mark.h"
#include "gc/gc_typed.h"
#include "test.h"

#define NOINLINE __attribute__((noinline))

static void collect(void) {
  for (int i = 0; i < 3; i++)
    GC_gcollect();
}

// Clears the stack below the caller, where dead frames may hold addresses.
static NOINLINE void clear_stack(void) {
  volatile char buf[16384];
  memset((char *)buf, 0, sizeof buf);
}

static void test_sizes(void) {
  CHECK(!GC_is_init_called() || 1); // (may be called by the harness already)
  void *p0 = GC_malloc(0), *p7 = GC_malloc(7), *p15 = GC_malloc(15), *p17 = GC_malloc(17);
  bool ok = GC_size(p0) == 16 && GC_size(p7) == 16 && GC_size(p15) == 16 && GC_size(p17) == 32;
  CHECKF(ok, "GC_size: %zu %zu %zu %zu", GC_size(p0), GC_size(p7), GC_size(p15), GC_size(p17));
  char *big = GC_malloc(100000);
  ok = ok && GC_base(big + 5000) == big && GC_base(p17 + 3) == p17 && GC_is_heap_ptr(big + 10);
  static int global;
  int local;
  ok = ok && !GC_is_heap_ptr(&global) && !GC_is_heap_ptr(&local) && GC_base(&global) == NULL;
  CHECK(ok);
  unsigned char *z = GC_malloc(4000);
  int nonzero = 0;
  for (int i = 0; i < 4000; i++)
    nonzero += z[i] != 0;
  CHECK(nonzero == 0);
  report("implicit init; Boehm's sizes, GC_base, GC_is_heap_ptr; zeroed", ok && nonzero == 0);
}

// An uncollectable object holding the only pointer to a collectable one;
// weak links to both tell whether the collector ever found them dead.
static GC_hidden_pointer g_uncoll;
static void *g_uncoll_link, *g_str_link;
static NOINLINE void make_uncoll(void) {
  void **u = GC_malloc_uncollectable(64);
  char *s = GC_malloc_atomic(32);
  strcpy(s, "held by uncollectable");
  u[0] = s;
  g_uncoll = GC_HIDE_POINTER(u);
  GC_general_register_disappearing_link(&g_uncoll_link, u);
  GC_general_register_disappearing_link(&g_str_link, s);
  g_uncoll_link = (void *)GC_HIDE_POINTER(u);
  g_str_link = (void *)GC_HIDE_POINTER(s);
}

static void test_uncollectable(void) {
  make_uncoll();
  clear_stack();
  for (int i = 0; i < 20; i++) { // churn: freed slots would be reused
    collect();
    for (int k = 0; k < 1000; k++)
      memset(GC_malloc(32), 0xab, 32);
  }
  void **u = GC_REVEAL_POINTER(g_uncoll);
  bool ok = g_uncoll_link != NULL && g_str_link != NULL &&
            strcmp((char *)u[0], "held by uncollectable") == 0;
  GC_unregister_disappearing_link(&g_uncoll_link);
  GC_unregister_disappearing_link(&g_str_link);
  int kind = GC_get_kind_and_size(u, NULL);
  void **v = GC_realloc(u, 200); // keeps the kind
  ok = ok && kind == 2 && GC_get_kind_and_size(v, NULL) == 2 && strcmp((char *)v[0], "held by uncollectable") == 0;
  GC_free(v);
  CHECKF(ok, "uncollectable: kind %d", kind);
  report("an uncollectable object lives, with what it points to; realloc keeps its kind", ok);
}

// Finalizers. Object i's client datum is i; fin_obj[i] its hidden address.
enum { NFIN = 100 };
static int fin_count, fin_wrong_thread, fin_bad_cd, fin_twice;
static GC_hidden_pointer fin_obj[NFIN];
static int fin_runs[NFIN];
static pthread_t fin_expect;
static void on_fin(void *obj, void *cd) {
  uintptr_t i = (uintptr_t)cd;
  fin_count++;
  fin_wrong_thread += !pthread_equal(pthread_self(), fin_expect);
  fin_bad_cd += i >= NFIN || fin_obj[i] != GC_HIDE_POINTER(obj);
  if (i < NFIN)
    fin_twice += ++fin_runs[i] > 1;
}

static NOINLINE void make_finalizable(int n, int order) {
  for (int i = 0; i < n; i++) {
    void *p = GC_malloc(48);
    fin_obj[i] = GC_HIDE_POINTER(p);
    fin_runs[i] = 0;
    if (order)
      GC_register_finalizer_no_order(p, on_fin, (void *)(uintptr_t)i, NULL, NULL);
    else
      GC_register_finalizer(p, on_fin, (void *)(uintptr_t)i, NULL, NULL);
  }
}

static void test_finalizers_sync(void) {
  fin_count = fin_wrong_thread = fin_bad_cd = fin_twice = 0;
  fin_expect = pthread_self();
  make_finalizable(NFIN, 0);
  clear_stack();
  for (int i = 0; i < 10 && fin_count < 90; i++) {
    GC_gcollect(); // (runs due finalizers too: it is an allocation point)
    GC_malloc(16);
  }
  for (int i = 0; i < 3; i++) { // (and never again)
    collect();
    GC_malloc(16);
  }
  bool ok = fin_count >= 90 && fin_twice == 0 && fin_wrong_thread == 0 && fin_bad_cd == 0;
  CHECKF(ok, "finalizers: %d ran, %d twice, %d on another thread, %d with a wrong client datum",
         fin_count, fin_twice, fin_wrong_thread, fin_bad_cd);
  report("finalizers run once, in the allocating thread, with their client data", ok);
}

static int notified;
static void notifier(void) {
  notified++;
}

static void test_finalize_on_demand(void) {
  fin_count = 0;
  fin_expect = pthread_self();
  GC_set_finalize_on_demand(1);
  GC_set_finalizer_notifier(notifier);
  fin_twice = 0;
  make_finalizable(50, 1);
  clear_stack();
  for (int i = 0; i < 10 && !GC_should_invoke_finalizers(); i++)
    collect();
  for (int i = 0; i < 1000; i++)
    GC_malloc(16); // allocation must not run them
  int before = fin_count, invoked = GC_invoke_finalizers();
  bool ok = before == 0 && notified > 0 && invoked >= 45 && fin_count == invoked;
  CHECKF(ok, "on demand: %d ran before GC_invoke_finalizers, %d by it; notified %d", before,
         invoked, notified);
  GC_set_finalize_on_demand(0);
  GC_set_finalizer_notifier(NULL);
  report("finalize on demand: the notifier, then GC_invoke_finalizers", ok);
}

// Ordered finalization: A -> B, both finalizable: B's finalizer runs in a
// later cycle than A's. A cycle A <-> B of finalizable objects: never
// finalized in order (Boehm's rule), both finalized without order. An object
// pointing to itself: never finalized in order, finalized with ignore-self.
// No-order A -> unreachable-order B: B waits for A's finalizer.
enum { ORD, NO_ORD, SELF, UNREACH };
static int order_seen[2];
static int order_step;
static uintptr_t order_gen; // the pair being watched (one of an older pair may die late)
static void on_order(void *obj, void *cd) {
  (void)obj;
  if ((uintptr_t)cd >> 1 == order_gen)
    order_seen[(uintptr_t)cd & 1] = ++order_step;
}
static void reg(void *p, int mode, uintptr_t cd) {
  if (mode == ORD)
    GC_register_finalizer(p, on_order, (void *)cd, NULL, NULL);
  else if (mode == NO_ORD)
    GC_register_finalizer_no_order(p, on_order, (void *)cd, NULL, NULL);
  else if (mode == SELF)
    GC_register_finalizer_ignore_self(p, on_order, (void *)cd, NULL, NULL);
  else
    GC_register_finalizer_unreachable(p, on_order, (void *)cd, NULL, NULL);
}
// make_pair: a -> b (and b -> a if cycle), a -> a and b -> b (if self),
// finalizers of modes ma and mb.
static NOINLINE void make_pair(int ma, int mb, int cycle, int self) {
  void **a = GC_malloc(32), **b = GC_malloc(32);
  a[0] = b;
  if (cycle)
    b[0] = a;
  if (self)
    a[1] = a, b[1] = (char *)b + 8; // (an interior pointer is a self-pointer too)
  reg(a, ma, order_gen << 1);
  reg(b, mb, order_gen << 1 | 1);
}

// The pair is made by a thread of its own, so that no stale copy of an
// address on this stack or in its registers keeps it alive.
static void *pair_thread(void *arg) {
  const int *m = arg;
  make_pair(m[0], m[1], m[2], m[3]);
  return NULL;
}

// run_pair: collections until both finalizers ran (at most 12); the cycles
// at which a's and b's first ran (-1: never).
static void run_pair(int ma, int mb, int cycle, int self, int *at_a, int *at_b) {
  order_seen[0] = order_seen[1] = order_step = 0;
  order_gen++;
  int m[4] = {ma, mb, cycle, self};
  pthread_t t;
  if (pthread_create(&t, NULL, pair_thread, m) != 0 || pthread_join(t, NULL) != 0)
    abort();
  *at_a = *at_b = -1;
  for (int c = 0; c < 12 && (*at_a < 0 || *at_b < 0); c++) {
    GC_gcollect();
    GC_malloc(16);
    if (*at_a < 0 && order_seen[0])
      *at_a = c;
    if (*at_b < 0 && order_seen[1])
      *at_b = c;
  }
}

static void test_order(void) {
  int a, b, ca, cb, na, nb;
  run_pair(ORD, ORD, 0, 0, &a, &b);
  bool ok1 = a >= 0 && b > a;
  run_pair(ORD, ORD, 1, 0, &ca, &cb);
  bool ok2 = ca < 0 && cb < 0;
  run_pair(NO_ORD, NO_ORD, 1, 0, &na, &nb);
  bool ok3 = na >= 0 && nb >= 0;
  CHECKF(ok1, "ordered chain: a's finalizer at cycle %d, b's at %d", a, b);
  CHECKF(ok2, "ordered cycle: finalized at cycles %d and %d", ca, cb);
  CHECKF(ok3, "no-order cycle: finalized at cycles %d and %d", na, nb);
  GC_finalization_proc ofn = NULL;
  void *ocd = NULL, *p = GC_malloc(16);
  GC_register_finalizer(p, on_fin, (void *)7, NULL, NULL);
  GC_register_finalizer(p, NULL, NULL, &ofn, &ocd);
  bool ok4 = ofn == on_fin && ocd == (void *)7;
  CHECK(ok4);
  report("ordered finalization: chains in order, cycles never; no-order: cycles too; unregistering",
         ok1 && ok2 && ok3 && ok4);
}

static void test_order_self(void) {
  int a, b, sa, sb, ua, ub, na, nb;
  run_pair(ORD, ORD, 0, 1, &a, &b);
  bool ok1 = a < 0 && b < 0;
  run_pair(SELF, SELF, 0, 1, &sa, &sb);
  bool ok2 = sa >= 0 && sb > sa;
  run_pair(NO_ORD, UNREACH, 0, 0, &ua, &ub);
  bool ok3 = ua >= 0 && ub > ua;
  run_pair(NO_ORD, NO_ORD, 0, 0, &na, &nb);
  bool ok4 = na >= 0 && nb == na;
  CHECKF(ok1, "ordered, pointing to themselves: finalized at cycles %d and %d", a, b);
  CHECKF(ok2, "ignore-self chain, pointing to themselves: at cycles %d and %d", sa, sb);
  CHECKF(ok3, "no-order a -> unreachable-order b: at cycles %d and %d", ua, ub);
  CHECKF(ok4, "no-order a -> no-order b: at cycles %d and %d", na, nb);
  report("ignore-self finalization ignores self-pointers only; unreachable order waits for "
         "no-order objects that reach it",
         ok1 && ok2 && ok3 && ok4);
}

// Disappearing links.
static void *g_link, *g_link2;
static GC_hidden_pointer g_live;
static NOINLINE void make_links(void) {
  void *dead = GC_malloc(40), *live = GC_malloc(40);
  g_link = dead;
  g_link2 = live;
  GC_general_register_disappearing_link(&g_link, dead);
  GC_general_register_disappearing_link(&g_link2, live);
  g_link = (void *)GC_HIDE_POINTER(dead); // (hidden: not a reference)
  g_live = GC_HIDE_POINTER(live);
}

static void test_links(void) {
  make_links();
  void *keep = GC_REVEAL_POINTER(g_live); // a real reference, on the stack
  clear_stack();
  for (int i = 0; i < 10 && g_link != NULL; i++)
    collect();
  bool cleared = g_link == NULL, kept = g_link2 == keep;
  CHECKF(cleared && kept, "links: dead one %s, live one %s", cleared ? "cleared" : "kept",
         kept ? "kept" : "changed");
  static void *moved;
  int dup = GC_general_register_disappearing_link(&g_link2, keep);
  int mv = GC_move_disappearing_link(&g_link2, &moved), mv_missing = GC_move_disappearing_link(&g_link2, &moved);
  int un = GC_unregister_disappearing_link(&moved), un_again = GC_unregister_disappearing_link(&moved);
  bool codes = dup == GC_DUPLICATE && mv == GC_SUCCESS && mv_missing == GC_NOT_FOUND && un == 1 && un_again == 0;
  CHECKF(codes, "codes: duplicate %d, move %d/%d, unregister %d/%d", dup, mv, mv_missing, un, un_again);
  GC_reachable_here(keep);
  report("disappearing links: cleared when unreachable, kept while live; return codes",
         cleared && kept && codes);
}

// A link inside an object that GC_free releases goes with it: when its
// target later dies, nothing is written into the slot, which by then holds
// another object.
static NOINLINE GC_hidden_pointer make_target(void) {
  void *t = GC_malloc(40);
  (void)GC_malloc_atomic(16); // (the last allocation's address lingers in registers)
  return GC_HIDE_POINTER(t);
}

static void test_link_in_freed_object(void) {
  void **holder = GC_malloc(64);
  void *target = GC_REVEAL_POINTER(make_target());
  GC_general_register_disappearing_link(&holder[2], target);
  holder[2] = (void *)GC_HIDE_POINTER(target);
  target = NULL;
  GC_free(holder);
  enum { N = 4096 };
  uintptr_t **all = GC_malloc(N * sizeof *all); // objects of holder's size, reachable
  for (int i = 0; i < N; i++) {
    all[i] = GC_malloc(64);
    for (int k = 0; k < 8; k++)
      all[i][k] = 0x5151515151515151u;
  }
  clear_stack();
  for (int i = 0; i < 4; i++)
    collect();
  int overwritten = 0;
  bool reused = false;
  for (int i = 0; i < N; i++) {
    reused |= (void *)all[i] == (void *)holder;
    for (int k = 0; k < 8; k++)
      overwritten += all[i][k] != 0x5151515151515151u;
  }
  CHECKF(overwritten == 0 && reused, "%d words of live objects overwritten (holder's slot reused: %s)",
         overwritten, reused ? "yes" : "no");
  GC_reachable_here(all);
  report("a link inside a freed object is forgotten with it", overwritten == 0 && reused);
}

// Long links: an object with a finalizer loses its short link in the cycle
// that queues the finalizer, its long link only once it is really gone.
static void *g_short, *g_long;
static int long_fin_ran;
static void on_long_fin(void *obj, void *cd) {
  (void)obj, (void)cd;
  long_fin_ran++;
}
static NOINLINE void make_long(void) {
  void *p = GC_malloc(64);
  GC_register_finalizer(p, on_long_fin, NULL, NULL, NULL);
  GC_general_register_disappearing_link(&g_short, p);
  GC_register_long_link(&g_long, p);
  g_short = g_long = (void *)GC_HIDE_POINTER(p);
}

static void test_long_links(void) {
  make_long();
  clear_stack();
  bool long_after_short = false;
  for (int i = 0; i < 12 && g_long != NULL; i++) {
    GC_gcollect(); // (runs due finalizers at its end)
    if (g_short == NULL && g_long != NULL && long_fin_ran)
      long_after_short = true;
  }
  bool ok = long_after_short && g_long == NULL && long_fin_ran == 1;
  CHECKF(ok, "long links: short %p, long %p, finalizer ran %d times", g_short, g_long,
         long_fin_ran);
  report("a long link outlives the short one until the finalized object is gone", ok);
}

// GC_push_other_roots, chained as ECL chains it. The pushed range is in
// memory gomem does not scan (mmap'ed), and is read when the collector
// drains, after the hook has returned.
static GC_hidden_pointer g_pushed, g_marked;
static void **g_pushed_slot;
static GC_push_other_roots_proc old_push;
static int push_calls;
static void my_push(void) {
  push_calls++;
  GC_push_all(g_pushed_slot, g_pushed_slot + 1);
  GC_set_mark_bit(GC_REVEAL_POINTER(g_marked));
  if (old_push)
    old_push();
}
static NOINLINE void make_pushed(void) {
  char *a = GC_malloc_atomic(24), *b = GC_malloc_atomic(24);
  strcpy(a, "pushed");
  strcpy(b, "marked");
  g_pushed = GC_HIDE_POINTER(a);
  g_marked = GC_HIDE_POINTER(b);
  g_pushed_slot[0] = a;
}

static void test_push_other_roots(void) {
  g_pushed_slot = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(g_pushed_slot != MAP_FAILED);
  old_push = GC_push_other_roots;
  GC_push_other_roots = my_push;
  make_pushed();
  clear_stack();
  for (int i = 0; i < 10; i++) {
    collect();
    for (int k = 0; k < 1000; k++)
      memset(GC_malloc_atomic(24), 0xcd, 24);
  }
  bool ok = push_calls > 0 && strcmp(GC_REVEAL_POINTER(g_pushed), "pushed") == 0 &&
            strcmp(GC_REVEAL_POINTER(g_marked), "marked") == 0;
  GC_push_other_roots = old_push;
  CHECKF(ok, "push_other_roots called %d times", push_calls);
  report("GC_push_other_roots: GC_push_all and GC_set_mark_bit keep objects", ok);
}

// Mark procedures (Guile's threads): objects of a kind whose procedure is
// the only way to find what they hold, in memory no collector scans.
typedef struct holder {
  void **side; // mmap'ed: invisible to the collector
  int n;
} holder_t;
static int proc_calls;
static struct GC_ms_entry *holder_mark(GC_word *addr, struct GC_ms_entry *msp,
                                        struct GC_ms_entry *lim, GC_word env) {
  holder_t *h = (holder_t *)addr;
  proc_calls += env == 42;
  for (int i = 0; i < h->n; i++)
    msp = GC_MARK_AND_PUSH(h->side[i], msp, lim, (void **)&h->side[i]);
  return msp;
}
static unsigned holder_kind;
static void *g_held_link[2];

// make_holder: a holder of the kind holding, in its side area, strings
// "held 0" and "held 1"; weak links tell whether they were ever found dead.
static NOINLINE holder_t *make_holder(void) {
  holder_t *h = GC_generic_malloc(sizeof *h, (int)holder_kind);
  h->side = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  h->n = 2;
  for (int i = 0; i < 2; i++) {
    char *str = GC_malloc_atomic(16);
    snprintf(str, 16, "held %d", i);
    h->side[i] = str;
    GC_general_register_disappearing_link(&g_held_link[i], str);
    g_held_link[i] = (void *)GC_HIDE_POINTER(str);
  }
  (void)GC_malloc_atomic(16); // (the last allocation's address lingers in registers)
  return h;
}

// holder_kept: the holder (kept in g_holder_root meanwhile) still holds
// both strings; then the root goes.
static void *volatile g_holder_root;
static NOINLINE bool holder_kept(void) {
  holder_t *h = g_holder_root;
  bool kept = g_held_link[0] != NULL && g_held_link[1] != NULL &&
              strcmp(h->side[0], "held 0") == 0 && strcmp(h->side[1], "held 1") == 0;
  g_holder_root = NULL;
  return kept;
}

static void test_mark_procs(void) {
  holder_kind = GC_new_kind(GC_new_free_list(), GC_MAKE_PROC(GC_new_proc(holder_mark), 42), 0, 1);
  g_holder_root = make_holder();
  clear_stack();
  for (int i = 0; i < 5; i++) {
    collect();
    for (int k = 0; k < 1000; k++)
      memset(GC_malloc_atomic(16), 0xee, 16);
  }
  bool kept = holder_kept();
  int calls = proc_calls;
  clear_stack();
  for (int i = 0; i < 12 && g_held_link[0] != NULL; i++)
    collect(); // the holder is unreachable: its procedure no longer runs
  bool gone = g_held_link[0] == NULL && g_held_link[1] == NULL;
  CHECKF(kept && calls > 0 && gone, "mark procedure: called %d times; held strings %s, then %s",
         calls, kept ? "kept" : "lost", gone ? "freed" : "still held");
  report("a kind's mark procedure keeps what only it can find", kept && calls > 0 && gone);
}

// Typed objects: a pointer in a field the bitmap names keeps its object; one
// in a field it leaves out does not (a weak table's entry).
static GC_hidden_pointer g_typed;
static void *g_typed_link[2];
// (field 1's object, which must die, is not the last allocation: its
// address would linger in a register)
static NOINLINE void make_typed(GC_descr d) {
  void **t = GC_malloc_explicitly_typed(4 * sizeof(void *), d);
  for (int i = 1; i >= 0; i--) {
    char *str = GC_malloc_atomic(16);
    snprintf(str, 16, "field %d", i);
    t[i] = str;
    GC_general_register_disappearing_link(&g_typed_link[i], str);
    g_typed_link[i] = (void *)GC_HIDE_POINTER(str);
  }
  g_typed = GC_HIDE_POINTER(t);
}

static void test_typed(void) {
  GC_word bitmap[1] = {0};
  GC_set_bit(bitmap, 0); // word 0 a pointer, words 1-3 not
  GC_descr d = GC_make_descriptor(bitmap, 4);
  make_typed(d);
  void **t = GC_REVEAL_POINTER(g_typed); // the object itself stays reachable
  clear_stack();
  for (int i = 0; i < 12 && g_typed_link[1] != NULL; i++)
    collect();
  bool ok = g_typed_link[0] != NULL && g_typed_link[1] == NULL && strcmp(t[0], "field 0") == 0;
  CHECKF(ok, "typed: the named field's object %s, the other's %s",
         g_typed_link[0] ? "kept" : "lost", g_typed_link[1] ? "kept" : "freed");
  GC_reachable_here(t);
  report("typed objects: only the fields the bitmap names keep objects", ok);
}

static void *add_lock_fn(void *arg) {
  return (void *)((uintptr_t)arg + 1);
}

static void test_misc(void) {
  void *list = GC_malloc_many(48);
  int n = 0;
  for (void *p = list; p != NULL; p = GC_NEXT(p))
    n += GC_size(p) >= 48;
  bool ok = n > 1 && GC_call_with_alloc_lock(add_lock_fn, (void *)41) == (void *)42;
  GC_allow_register_threads();
  struct GC_stack_base sb;
  ok = ok && GC_get_stack_base(&sb) == GC_SUCCESS && (char *)sb.mem_base > (char *)&sb;
  ok = ok && GC_register_my_thread(&sb) == GC_DUPLICATE && GC_thread_is_registered();
  ok = ok && GC_get_suspend_signal() > 0 && GC_get_version() == 0x080202;
  CHECKF(ok, "malloc_many gave %d objects", n);
  report("malloc_many, alloc lock, thread registration, version", ok);
}

// env_child (a re-executed child): 64 MiB of garbage; exit status 0 if no
// collection ran, 1 otherwise.
static int env_child(void) {
  for (int i = 0; i < 1 << 16; i++)
    memset(GC_malloc(1024), 1, 1024);
  return GC_get_gc_no() == 0 ? 0 : 1;
}

static void test_environment(void) {
  if (strcmp(GOMEM_SANITIZE, "valgrind") == 0) { // (re-executing would run valgrind's binary)
    test_skip("GC_DONT_GC and GC_PRINT_STATS from the environment", "under valgrind");
    return;
  }
  char out[8192];
  int st = test_run_self("env", "GC_DONT_GC=1", 2, out, sizeof out);
  bool dont = st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
  st = test_run_self("env", "GC_PRINT_STATS=1", 2, out, sizeof out);
  bool stats = st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 1 && strstr(out, "gc 1 @") != NULL;
  CHECKF(dont && stats, "GC_DONT_GC %s, GC_PRINT_STATS %s", dont ? "ok" : "collected",
         stats ? "ok" : "silent");
  report("GC_DONT_GC and GC_PRINT_STATS from the environment", dont && stats);
}

// Heap sizing: collections while 64 MiB of short-lived objects are
// allocated, at the free-space divisor the environment gives, then at
// divisor 1 (fewer), then after GC_expand_hp(256 MiB) (none).
static size_t churn(void) {
  size_t before = GC_get_gc_no();
  for (int i = 0; i < 1 << 16; i++)
    memset(GC_malloc(1000), 1, 1000);
  return GC_get_gc_no() - before;
}
static int heap_child(void) {
  size_t start = churn();
  GC_set_free_space_divisor(1);
  size_t one = churn();
  GC_expand_hp((size_t)256 << 20);
  size_t expanded = churn();
  printf("%zu %zu %zu %lu\n", start, one, expanded, GC_get_free_space_divisor());
  return 0;
}

static bool heap_run(const char *env, size_t n[4]) {
  char out[256];
  int st = test_run_self("heap", env, 1, out, sizeof out);
  return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0 &&
         sscanf(out, "%zu %zu %zu %zu", &n[0], &n[1], &n[2], &n[3]) == 4;
}

static void test_heap_sizing(void) {
  if (strcmp(GOMEM_SANITIZE, "valgrind") == 0) {
    test_skip("heap sizing: the free-space divisor, GC_expand_hp", "under valgrind");
    return;
  }
  size_t d[4], big[4], div6[4];
  bool ok = heap_run("GOMEM_X=1", d) && heap_run("GC_INITIAL_HEAP_SIZE=128M", big) &&
            heap_run("GC_FREE_SPACE_DIVISOR=6", div6);
  CHECKF(ok, "a child failed");
  bool ok1 = ok && d[0] > 2 * d[1] && d[1] > 0 && d[2] == 0 && d[3] == 1;
  bool ok2 = ok && big[0] == 0;
  bool ok3 = ok && div6[0] > d[0] + d[0] / 2;
  CHECKF(ok1, "collections: %zu at divisor 3, %zu at 1, %zu after GC_expand_hp", d[0], d[1], d[2]);
  CHECKF(ok2, "GC_INITIAL_HEAP_SIZE=128M: %zu collections for 64 MiB", big[0]);
  CHECKF(ok3, "GC_FREE_SPACE_DIVISOR=6: %zu collections (%zu at 3)", div6[0], d[0]);
  report("heap sizing: the free-space divisor, GC_expand_hp, GC_INITIAL_HEAP_SIZE",
         ok1 && ok2 && ok3);
}

// Fork while two threads take libgc's locks as fast as they can: a kind's
// objects and typed objects (the kinds lock), uncollectable objects (their
// set's lock), GC_disable/GC_enable and GC_expand_hp (their own locks). A
// child takes every one of them again and exits; one that hangs (a lock
// inherited held) is killed after 10 s and fails the case.
static _Atomic int fork_stop;
static _Atomic long fork_hammer_ops;
static GC_descr fork_descr;

static void *fork_hammer_kinds(void *arg) {
  (void)arg;
  while (!fork_stop) {
    void **h = GC_generic_malloc(4 * sizeof(void *), (int)holder_kind);
    void **t = GC_malloc_explicitly_typed(4 * sizeof(void *), fork_descr);
    void *u = GC_malloc_uncollectable(32);
    if (h == NULL || t == NULL || u == NULL)
      abort();
    GC_free(u);
    fork_hammer_ops++;
  }
  return NULL;
}

static void *fork_hammer_sizes(void *arg) {
  (void)arg;
  while (!fork_stop) {
    GC_disable();
    GC_expand_hp(1);
    GC_enable();
    fork_hammer_ops++;
  }
  return NULL;
}

static int fork_child(void) {
  GC_disable(); // (no collection: under TSan a child may start no thread)
  GC_expand_hp(1);
  for (int i = 0; i < 100; i++) {
    void **h = GC_generic_malloc(4 * sizeof(void *), (int)holder_kind);
    void **t = GC_malloc_explicitly_typed(4 * sizeof(void *), fork_descr);
    void *u = GC_malloc_uncollectable(32);
    if (h == NULL || t == NULL || u == NULL)
      return 1;
    GC_free(u);
  }
  GC_enable();
  return 0;
}

static void test_fork_locks(void) {
  GC_word bitmap[1] = {0};
  GC_set_bit(bitmap, 0);
  fork_descr = GC_make_descriptor(bitmap, 4);
  pthread_t t[2];
  pthread_create(&t[0], NULL, fork_hammer_kinds, NULL);
  pthread_create(&t[1], NULL, fork_hammer_sizes, NULL);
  while (fork_hammer_ops < 1000)
    sched_yield();
  int hung = 0, bad = 0;
  test_fork_children(strcmp(GOMEM_SANITIZE, "valgrind") == 0 ? 10 : 60, fork_child, &hung, &bad);
  fork_stop = 1;
  pthread_join(t[0], NULL);
  pthread_join(t[1], NULL);
  CHECKF(hung == 0 && bad == 0, "fork: %d children hung, %d failed", hung, bad);
  report("fork while threads hold libgc's locks: every child can take them again",
         hung == 0 && bad == 0);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "env") == 0)
    return env_child();
  if (argc > 1 && strcmp(argv[1], "heap") == 0)
    return heap_child();
  test_sizes();
  test_uncollectable();
  test_finalizers_sync();
  test_finalize_on_demand();
  test_order();
  test_order_self();
  test_links();
  test_link_in_freed_object();
  test_long_links();
  test_push_other_roots();
  test_mark_procs();
  test_typed();
  test_misc();
  test_environment();
  test_heap_sizing();
  test_fork_locks();
  return test_done();
}
