// test_gc_roots: what keeps a GC object alive, and what does not.
//
// Survival (no slack: every reachable object must survive with its contents
// intact). Each object is filled with a pattern, carries a "sentinel"
// finalizer (which must never run while the object is reachable) and lives
// through ROUNDS collections, with garbage of many size classes allocated in
// between (a slot wrongly freed is soon reused and overwritten). Roots:
//   (a) locals on the stack: a volatile slot, a slot many frames up, the two
//       ends of a 128 KiB stack array;
//   (b) registers: on x86-64, an assembly function keeps the pointer (start
//       or interior) only in one callee-saved register (rbx, rbp, r12-r15)
//       while collections run; everywhere, a pointer passed down a chain of
//       noinline calls;
//   (c) globals in .data and .bss;
//   (d) globals of a shared library (gclib.c);
//   (e) a gm_add_roots range inside malloc'ed memory;
//   (f) another GC object: pointers to the start, inside, and last byte of
//       small and large objects, and pointers in the last oblet of a 2 MiB
//       object;
//   (g) a chain of 100000 nodes, linked alternately by start and interior
//       pointers;
//   (h) the object a gm_alloc returns when that very allocation started a
//       collection (small and large objects, kept in a scanned array): it
//       comes out allocated, zeroed, overlapping nothing live;
//   tiny objects (gm_alloc_noscan(1..15)): distinct, aligned to their size's
//   power-of-two factor (at most 8), zeroed even where garbage was, and
//   surviving while a scanned object points at them.
// Reclaiming (statistics over many objects, since roots are conservative):
//   dropped objects' memory is reused and the live heap does not grow;
//   finalizers see dropped objects; a pointer kept only in malloc'ed memory,
//   only in a gm_alloc_noscan object, or in a gm_add_roots range after
//   gm_remove_roots keeps nothing alive.
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gomem.h"
#include "test.h"
#include "test_gc.h"

#ifndef GOMEM_SANITIZE
#define GOMEM_SANITIZE ""
#endif

// gclib.c (shared library)
void gclib_set(int which, void *p);
void *gclib_get(int which);
void *gclib_slot_addr(int which);

static int slow;           // sanitizer, valgrind or validating build
static int rounds = 24;    // collections per survival case
static size_t churn_bytes; // garbage allocated before each of them

// ---------------------------------------------------------------------------
// Helpers (the common ones are in test_gc.h)

// Sentinel finalizers (test_gc.h): set on objects that must stay reachable.
#define NCASES 16
static const char *case_names[NCASES] = {"stack",        "registers",  "globals", "shared library",
                                         "gm_add_roots", "heap links", "chain",   "tiny"};
enum { C_STACK, C_REGS, C_GLOBALS, C_SHLIB, C_ADDROOTS, C_HEAP, C_CHAIN, C_TINY };

// guard sets the sentinel on a new object (after checking it is allocated:
// gm_set_finalizer would abort on a free one).
static void guard(void *p, int c) {
  int owned = gm_owns(p);
  CHECKF(owned, "gm_alloc returned %p, which is not an allocated object", p);
  if (owned)
    gm_set_finalizer(p, sentinel, (void *)(uintptr_t)c);
}
// unguard removes the sentinel of an object found intact (one that is not
// may have been reclaimed: it is left alone).
static void unguard(int ok, void *p) {
  if (ok)
    gm_set_finalizer(p, NULL, NULL);
}

// survive runs the collections of a survival case.
NOINLINE static void survive(void) {
  for (int r = 0; r < rounds; r++) {
    churn(churn_bytes);
    collect();
  }
}

// Counting finalizers: arg = case << 24 | index; the object's first word
// must hold the index (the finalizer gets the right object).
static _Atomic long fin_count[NCASES];
static _Atomic long fin_wrong_obj;

static void count_fin(void *obj, void *arg) {
  uintptr_t a = (uintptr_t)arg;
  if (*(uint64_t *)obj != (a & 0xffffff))
    atomic_fetch_add(&fin_wrong_obj, 1);
  atomic_fetch_add(&fin_count[(a >> 24) % NCASES], 1);
}

// drop_finalizable allocates n objects of size with counting finalizers for
// case c, storing each pointer at holder[i] (holder may be NULL), and drops
// them.
NOINLINE static void drop_finalizable(int c, int n, size_t size, void **holder) {
  for (int i = 0; i < n; i++) {
    uint64_t *p = gm_alloc(size);
    p[0] = (uint64_t)i;
    gm_set_finalizer(p, count_fin, (void *)(((uintptr_t)c << 24) | (uintptr_t)i));
    if (holder)
      holder[i] = p;
  }
}

// ---------------------------------------------------------------------------
// (a) stack

// make_hidden allocates, fills and guards an object for case c; returns
// hide(p + off).
NOINLINE static uintptr_t make_hidden(size_t size, uint64_t seed, size_t off, int c) {
  char *p = gm_alloc(size);
  fill(p, size, seed);
  guard(p, c);
  return hide(p + off);
}

// alloc_into stores p + off for a new object into *slot, and nowhere else:
// the stack the allocation used is cleared before the pointer is revealed.
NOINLINE static void alloc_into_off(void *volatile *slot, size_t size, uint64_t seed, size_t off,
                                    int c) {
  uintptr_t h = make_hidden(size, seed, off, c);
  clear_stack();
  store_at(slot, h);
}

static void alloc_into(void *volatile *slot, size_t size, uint64_t seed, int c) {
  alloc_into_off(slot, size, seed, 0, c);
}

NOINLINE static int deep(int depth, size_t size, uint64_t seed) {
  if (depth > 0) {
    int r = deep(depth - 1, size, seed);
    __asm__ volatile("" : : : "memory");
    return r;
  }
  survive();
  return 1;
}

NOINLINE static int stack_deep(int depth) {
  void *volatile slot = NULL;
  alloc_into(&slot, 200, 11, C_STACK);
  deep(depth, 200, 11);
  int ok = gc_intact(slot, 200, 11);
  unguard(ok, slot);
  return ok;
}

NOINLINE static void case_stack(void) {
  void *volatile slot[3];
  alloc_into(&slot[0], 48, 1, C_STACK);
  alloc_into(&slot[1], 3000, 2, C_STACK);
  alloc_into(&slot[2], 300000, 3, C_STACK); // large
  survive();
  int ok0 = gc_intact(slot[0], 48, 1), ok1 = gc_intact(slot[1], 3000, 2),
      ok2 = gc_intact(slot[2], 300000, 3);
  CHECKF(ok0 && ok1 && ok2, "objects on the stack: %d %d %d intact", ok0, ok1, ok2);
  unguard(ok0, slot[0]);
  unguard(ok1, slot[1]);
  unguard(ok2, slot[2]);
  int okd = stack_deep(100);
  CHECKF(okd, "object 100 frames up the stack not intact");
  // Both ends of a 128 KiB array (more than one root job).
  void *volatile big[16384];
  memset((void *)big, 0, sizeof big);
  alloc_into(&big[0], 64, 4, C_STACK);
  alloc_into(&big[16383], 64, 5, C_STACK);
  survive();
  int oka = gc_intact(big[0], 64, 4), okb = gc_intact(big[16383], 64, 5);
  CHECKF(oka && okb, "objects at the ends of a stack array: %d %d", oka, okb);
  unguard(oka, big[0]);
  unguard(okb, big[16383]);
  report("(a) locals on the stack", ok0 && ok1 && ok2 && okd && oka && okb);
}

// ---------------------------------------------------------------------------
// (b) registers

#if defined(__x86_64__)
// gct_churn: called from the assembly below between collections.
void gct_churn(void);
void gct_churn(void) {
  churn(churn_bytes);
}

// uintptr_t gct_hold_REG(uintptr_t hidden, long n): un-hides the pointer
// into callee-saved register REG (nowhere else), then n times calls
// gct_churn and gm_collect (directly: no frame of C code between the
// register and the collector), and returns the register's content hidden
// again.
#define HOLD_FN(reg)                                                                               \
  __asm__(".text\n"                                                                                \
          ".p2align 4\n"                                                                           \
          ".globl gct_hold_" #reg "\n"                                                             \
          ".hidden gct_hold_" #reg "\n"                                                            \
          ".type gct_hold_" #reg ",@function\n"                                                    \
          "gct_hold_" #reg ":\n"                                                                   \
          "  push %" #reg "\n"                                                                     \
          "  sub $16, %rsp\n"                                                                      \
          "  mov %rsi, (%rsp)\n"                                                                   \
          "  mov %rdi, %" #reg "\n"                                                                \
          "  not %" #reg "\n"                                                                      \
          "1:\n"                                                                                   \
          "  call gct_churn\n"                                                                     \
          "  call gm_collect\n"                                                                    \
          "  decq (%rsp)\n"                                                                        \
          "  jnz 1b\n"                                                                             \
          "  mov %" #reg ", %rax\n"                                                                \
          "  not %rax\n"                                                                           \
          "  add $16, %rsp\n"                                                                      \
          "  pop %" #reg "\n"                                                                      \
          "  ret\n"                                                                                \
          ".size gct_hold_" #reg ", .-gct_hold_" #reg "\n");                                       \
  uintptr_t gct_hold_##reg(uintptr_t hidden, long n);
HOLD_FN(rbx)
HOLD_FN(rbp)
HOLD_FN(r12)
HOLD_FN(r13)
HOLD_FN(r14)
HOLD_FN(r15)

typedef uintptr_t (*hold_fn)(uintptr_t, long);
static const struct {
  const char *reg;
  hold_fn fn;
  size_t size, off; // object size, offset of the held pointer
} holds[] = {
    {"rbx", gct_hold_rbx, 48, 0},        {"rbp", gct_hold_rbp, 48, 0},
    {"r12", gct_hold_r12, 48, 16},       {"r13", gct_hold_r13, 512, 0},
    {"r14", gct_hold_r14, 100000, 5000}, {"r15", gct_hold_r15, 16, 8},
    {"rbp", gct_hold_rbp, 100000, 0},    {"rbp", gct_hold_rbp, 64, 40},
};
#endif

// through passes p down depth noinline calls, then collects.
NOINLINE static int through(char *p, size_t size, uint64_t seed, int depth) {
  if (depth > 0) {
    int r = through(p, size, seed, depth - 1);
    __asm__ volatile("" : : "r"(p));
    return r;
  }
  survive();
  return gc_intact(p, size, seed);
}

NOINLINE static int case_through(void) {
  uintptr_t h = make_hidden(128, 77, 0, C_REGS);
  clear_stack();
  char *p = unhide(h);
  int ok = through(p, 128, 77, 8);
  unguard(ok, p);
  return ok;
}

NOINLINE static void case_registers(void) {
  int all = 1;
#if defined(__x86_64__)
  for (size_t i = 0; i < sizeof holds / sizeof holds[0]; i++) {
    uint64_t seed = 100 + i;
    uintptr_t h = make_hidden(holds[i].size, seed, holds[i].off, C_REGS);
    clear_stack();
    uintptr_t back = holds[i].fn(h, rounds);
    char *p = (char *)unhide(back) - holds[i].off;
    int ok = back == h && gc_intact(p, holds[i].size, seed);
    CHECKF(ok, "object (%zu bytes) held only in %s (pointer at +%zu) not intact", holds[i].size,
           holds[i].reg, holds[i].off);
    unguard(ok, p);
    all &= ok;
  }
#endif
  int ok = case_through();
  CHECKF(ok, "object passed down noinline calls not intact");
  report("(b) registers", all && ok);
}

// ---------------------------------------------------------------------------
// (c) globals, (d) shared library

static void *volatile g_data = (void *)1; // .data
static void *volatile g_bss;              // .bss
static void *volatile g_bss_interior;

NOINLINE static void case_globals(void) {
  alloc_into(&g_data, 40, 21, C_GLOBALS);
  alloc_into(&g_bss, 70000, 22, C_GLOBALS);
  alloc_into_off(&g_bss_interior, 800, 23, 400, C_GLOBALS);
  survive();
  int ok0 = gc_intact(g_data, 40, 21), ok1 = gc_intact(g_bss, 70000, 22),
      ok2 = gc_intact((char *)g_bss_interior - 400, 800, 23);
  CHECKF(ok0 && ok1 && ok2, "objects in globals: .data %d, .bss %d, .bss interior %d", ok0, ok1,
         ok2);
  unguard(ok0, g_data);
  unguard(ok1, g_bss);
  unguard(ok2, (char *)g_bss_interior - 400);
  g_data = g_bss = g_bss_interior = NULL;
  report("(c) globals (.data, .bss)", ok0 && ok1 && ok2);
}

NOINLINE static void lib_store(int which, size_t size, uint64_t seed) {
  uintptr_t h = make_hidden(size, seed, 0, C_SHLIB);
  clear_stack();
  gclib_set(which, unhide(h));
}

NOINLINE static void case_shlib(void) {
  Dl_info di;
  int in_lib = dladdr(gclib_slot_addr(1), &di) != 0 && di.dli_fname != NULL &&
               strstr(di.dli_fname, "gclib") != NULL;
  CHECKF(in_lib, "the library's slot at %p is not in libgclib", gclib_slot_addr(1));
  lib_store(0, 96, 31);
  lib_store(1, 50000, 32);
  survive();
  int ok0 = gc_intact(gclib_get(0), 96, 31), ok1 = gc_intact(gclib_get(1), 50000, 32);
  CHECKF(ok0 && ok1, "objects in a shared library's globals: .data %d, .bss %d", ok0, ok1);
  unguard(ok0, gclib_get(0));
  unguard(ok1, gclib_get(1));
  gclib_set(0, NULL);
  gclib_set(1, NULL);
  report("(d) globals of a shared library", ok0 && ok1);
}

// ---------------------------------------------------------------------------
// (e) gm_add_roots

NOINLINE static void case_add_roots(void) {
  // Survival: one object, one pointer in the middle of a malloc'ed block.
  uintptr_t *blk = malloc(4096);
  memset(blk, 0, 4096);
  int r = gm_add_roots(blk, blk + 512);
  CHECKF(r == 0, "gm_add_roots returned %d", r);
  alloc_into((void *volatile *)&blk[200], 1000, 41, C_ADDROOTS);
  survive();
  int ok = gc_intact((void *)blk[200], 1000, 41);
  CHECKF(ok, "object held by a gm_add_roots range not intact");
  unguard(ok, (void *)blk[200]);
  gm_remove_roots(blk, blk + 512);
  free(blk);
  report("(e) gm_add_roots range keeps an object", ok);

  // Reclaiming after gm_remove_roots: while the range is a root, no
  // finalizer may run; after, (nearly) all must.
  int n = slow ? 300 : 1000;
  void **holder = malloc((size_t)n * sizeof *holder);
  memset(holder, 0, (size_t)n * sizeof *holder);
  r = gm_add_roots(holder, holder + n);
  CHECK(r == 0);
  drop_finalizable(C_ADDROOTS, n, 64, holder);
  for (int i = 0; i < 4; i++)
    collect();
  usleep(50000);
  long early = atomic_load(&fin_count[C_ADDROOTS]);
  CHECKF(early == 0, "%ld objects held by a gm_add_roots range finalized", early);
  gm_remove_roots(holder, holder + n);
  long got = wait_until(&fin_count[C_ADDROOTS], n * 95 / 100);
  CHECKF(got >= n * 95 / 100, "after gm_remove_roots %ld of %d objects finalized", got, n);
  free(holder);
  report("(e) ... and nothing after gm_remove_roots", early == 0 && got >= n * 95 / 100);
}

// ---------------------------------------------------------------------------
// (f) links between GC objects

typedef struct parent {
  char *start;     // -> child 0 (small)
  char *inside;    // -> child 1 + 24 (small)
  char *last;      // -> last byte of child 2 (small)
  char *large_in;  // -> child 3 + 700000 (1 MiB)
  char *large_end; // -> last byte of child 4 (1 MiB)
  char *big;       // -> a 2 MiB scanned object pointing at 5, 6, 7 from its oblets
} parent_t;

static parent_t *volatile g_parent;
static const size_t child_size[8] = {64, 256, 1000, 1 << 20, 1 << 20, 80, 80, 80};
static const size_t big_size = 2 << 20;
static const size_t big_off[3] = {0, (1 << 20) + 8, (2 << 20) - 8};

NOINLINE static char *child(int i) {
  char *c = gm_alloc(child_size[i]);
  fill(c, child_size[i], 50 + (uint64_t)i);
  guard(c, C_HEAP);
  return c;
}

NOINLINE static void build_parent(void) {
  parent_t *p = gm_alloc(sizeof *p);
  guard(p, C_HEAP);
  p->start = child(0);
  p->inside = child(1) + 24;
  p->last = child(2) + child_size[2] - 1;
  p->large_in = child(3) + 700000;
  p->large_end = child(4) + child_size[4] - 1;
  p->big = gm_alloc(big_size);
  guard(p->big, C_HEAP);
  for (int k = 0; k < 3; k++)
    *(char **)(p->big + big_off[k]) = child(5 + k);
  g_parent = p;
}

static char *child_base(int i) {
  parent_t *p = g_parent;
  switch (i) {
  case 0:
    return p->start;
  case 1:
    return p->inside - 24;
  case 2:
    return p->last - (child_size[2] - 1);
  case 3:
    return p->large_in - 700000;
  case 4:
    return p->large_end - (child_size[4] - 1);
  default:
    return *(char **)(p->big + big_off[i - 5]);
  }
}

NOINLINE static void case_heap_links(void) {
  build_parent();
  clear_stack();
  survive();
  int all = 1, ok[8];
  static const char *what[8] = {"start",
                                "interior +24",
                                "last byte",
                                "large +700000",
                                "large last byte",
                                "2 MiB object at 0",
                                "2 MiB object at 1 MiB + 8",
                                "2 MiB object at its end"};
  for (int i = 0; i < 8; i++) {
    ok[i] = gc_intact(child_base(i), child_size[i], 50 + (uint64_t)i);
    CHECKF(ok[i], "child reached through a pointer to its %s not intact", what[i]);
    all &= ok[i];
  }
  for (int i = 0; i < 8; i++)
    unguard(ok[i], child_base(i));
  unguard(ok[5] || ok[6] || ok[7], g_parent->big);
  unguard(all, g_parent);
  g_parent = NULL;
  report("(f) pointers from GC objects (start, interior)", all);
}

// ---------------------------------------------------------------------------
// (g) a long chain

typedef struct node {
  uint64_t idx;
  char *next; // node i+1: its start if i is even, else its address + 8
  uint64_t check;
} node_t;

static node_t *volatile g_chain;

static uint64_t node_check(uint64_t i) {
  return pat(999, (size_t)i);
}

NOINLINE static void build_chain(int n) {
  node_t *head = NULL, *prev = NULL;
  for (int i = 0; i < n; i++) {
    node_t *x = gm_alloc(sizeof *x);
    x->idx = (uint64_t)i;
    x->check = node_check((uint64_t)i);
    if (i % 1000 == 500)
      guard(x, C_CHAIN);
    if (prev)
      prev->next = (char *)x + ((i - 1) % 2 ? 8 : 0);
    else
      head = x;
    prev = x;
  }
  g_chain = head;
}

// walk_chain returns the number of intact nodes from the head; with unguard,
// it also removes the sentinels.
static int walk_chain(int n, int unguard_them) {
  node_t *x = g_chain;
  int i = 0;
  while (x && i < n) {
    if (x->idx != (uint64_t)i || x->check != node_check((uint64_t)i))
      break;
    if (unguard_them && i % 1000 == 500)
      unguard(1, x);
    char *nx = x->next;
    x = nx == NULL ? NULL : (node_t *)(nx - (i % 2 ? 8 : 0));
    i++;
  }
  return i;
}

NOINLINE static void case_chain(void) {
  int n = 100000;
  build_chain(n);
  clear_stack();
  survive();
  int got = walk_chain(n, 0);
  CHECKF(got == n, "chain of %d nodes: the first %d intact", n, got);
  walk_chain(got, 1);
  g_chain = NULL;
  report("(g) chain of 100000 nodes", got == n);
}

// ---------------------------------------------------------------------------
// (h) objects handed out by allocations that start a collection

#define KEEP 64
static char **volatile g_keep; // scanned array of the objects kept

static uint64_t xorshift(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

// The first 16 bytes and the last aligned 16 bytes of an object carry its
// seed's pattern.
static size_t tail_off(size_t size) {
  return (size - 16) & ~(size_t)7;
}
static void mark_ends(char *p, size_t size, uint64_t seed) {
  fill(p, 16, seed);
  fill(p + tail_off(size), 16, seed + 1);
}
static int ends_ok(const char *p, size_t size, uint64_t seed) {
  return gc_intact(p, 16, seed) && gc_intact(p + tail_off(size), 16, seed + 1);
}
static int ends_zero(const char *p, size_t size) {
  static const char zero[16];
  return memcmp(p, zero, 16) == 0 && memcmp(p + size - 16, zero, 16) == 0;
}

// Automatic collections (GOGC 100) start inside gm_alloc calls: the object
// being allocated must come out allocated, and every kept one intact.
NOINLINE static void case_fresh(void) {
  int n = slow ? 4000 : 20000;
  char **keep = gm_alloc(KEEP * sizeof *keep);
  g_keep = keep;
  size_t sz[KEEP] = {0};
  uint64_t seed[KEEP] = {0}, r = 88172645463325252ull;
  gm_stats_t s0, s1;
  gm_stats(&s0);
  int bad = 0, dirty = 0, overlap = 0;
  for (int i = 0; i < n; i++) {
    xorshift(&r);
    int k = (int)(r % KEEP);
    if (keep[k] && !ends_ok(keep[k], sz[k], seed[k]))
      bad++;
    size_t size = (r >> 8) % 20 == 0 ? 33000 + (r >> 16) % (1 << 20) : 32 + (r >> 16) % 4096;
    char *p = gm_alloc(size);
    if (!ends_zero(p, size))
      dirty++;
    for (int j = 0; j < KEEP; j++)
      if (j != k && keep[j] && p < keep[j] + sz[j] && keep[j] < p + size)
        overlap++;
    mark_ends(p, size, (uint64_t)i * 2);
    keep[k] = p;
    sz[k] = size;
    seed[k] = (uint64_t)i * 2;
  }
  for (int k = 0; k < KEEP; k++)
    if (keep[k] && !ends_ok(keep[k], sz[k], seed[k]))
      bad++;
  gm_stats(&s1);
  CHECKF(bad == 0, "%d kept objects overwritten", bad);
  CHECKF(dirty == 0, "%d new objects not zeroed", dirty);
  CHECKF(overlap == 0, "%d new objects overlap kept ones", overlap);
  CHECKF(s1.num_gc > s0.num_gc, "no automatic collection ran");
  g_keep = NULL;
  report("(h) objects allocated as collections start", !bad && !dirty && !overlap);
}

// ---------------------------------------------------------------------------
// Tiny objects

static void **volatile g_tiny; // scanned holder of tiny objects (interior pointers)

static int cmp_uptr(const void *a, const void *b) {
  uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
  return x < y ? -1 : x > y;
}

static size_t tiny_size(int i) {
  return (size_t)(i * 7 % 15) + 1; // 1..15
}

// tiny_garbage fills n dropped tiny objects with 0xff.
NOINLINE static void tiny_garbage(int n) {
  for (int i = 0; i < n; i++) {
    size_t s = tiny_size(i);
    memset(gm_alloc_noscan(s), 0xff, s);
  }
}

NOINLINE static void tiny_alloc(int n, int *misaligned, int *dirty) {
  void **h = gm_alloc((size_t)n * sizeof *h);
  for (int i = 0; i < n; i++) {
    size_t s = tiny_size(i);
    unsigned char *p = gm_alloc_noscan(s);
    size_t align = s & (~s + 1);
    if (align > 8)
      align = 8;
    if ((uintptr_t)p % align)
      (*misaligned)++;
    for (size_t k = 0; k < s; k++)
      if (p[k])
        (*dirty)++;
    memset(p, (int)(i * 31 + 7) & 0xff, s);
    h[i] = p;
  }
  g_tiny = h;
}

NOINLINE static void case_tiny(void) {
  int n = slow ? 5000 : 20000;
  tiny_garbage(n);
  collect();
  collect();
  int misaligned = 0, dirty = 0;
  tiny_alloc(n, &misaligned, &dirty);
  CHECKF(misaligned == 0, "%d tiny objects misaligned", misaligned);
  CHECKF(dirty == 0, "%d bytes of new tiny objects not zero", dirty);
  // Distinct: the intervals [p, p + size) do not overlap.
  uintptr_t *iv = malloc((size_t)n * 2 * sizeof *iv);
  for (int i = 0; i < n; i++) {
    iv[2 * i] = hide(g_tiny[i]); // sorted by hidden address: reverse order
    iv[2 * i + 1] = tiny_size(i);
  }
  qsort(iv, (size_t)n, 2 * sizeof *iv, cmp_uptr);
  int overlaps = 0;
  for (int i = 0; i + 1 < n; i++) {
    uintptr_t hi = (uintptr_t)unhide(iv[2 * i]), lo = (uintptr_t)unhide(iv[2 * i + 2]);
    if (lo + iv[2 * i + 3] > hi) // the lower object ends after the higher starts
      overlaps++;
  }
  free(iv);
  CHECKF(overlaps == 0, "%d tiny objects overlap", overlaps);
  clear_stack();
  survive();
  int bad = 0;
  for (int i = 0; i < n; i++) {
    unsigned char *p = g_tiny[i];
    for (size_t k = 0; k < tiny_size(i); k++)
      if (p[k] != ((i * 31 + 7) & 0xff)) {
        bad++;
        break;
      }
  }
  CHECKF(bad == 0, "%d of %d tiny objects not intact", bad, n);
  g_tiny = NULL;
  report("tiny objects: distinct, aligned, zeroed, kept",
         !misaligned && !dirty && !overlaps && !bad);
}

// ---------------------------------------------------------------------------
// Reclaiming

// make_garbage allocates n objects of size, filled, recording their hidden
// addresses in out.
NOINLINE static void make_garbage(uintptr_t *out, int n, size_t size) {
  for (int i = 0; i < n; i++) {
    void *p = gm_alloc(size);
    fill(p, size, (uint64_t)i);
    out[i] = hide(p);
  }
}

NOINLINE static int reuse_hits(const uintptr_t *old_sorted, int n, size_t size, void **keep) {
  int hits = 0;
  for (int i = 0; i < n; i++) {
    void *p = gm_alloc(size);
    keep[i] = p;
    uintptr_t h = hide(p);
    if (bsearch(&h, old_sorted, (size_t)n, sizeof h, cmp_uptr))
      hits++;
  }
  return hits;
}

NOINLINE static void case_reuse(void) {
  int old_pct = gm_set_gc_percent(-1); // only gm_collect reclaims
  int n = slow ? 5000 : 50000;
  size_t size = 64;
  uintptr_t *old = malloc((size_t)n * sizeof *old);
  collect();
  gm_stats_t s0, s1;
  gm_stats(&s0);
  make_garbage(old, n, size);
  collect();
  gm_stats(&s1);
  qsort(old, (size_t)n, sizeof *old, cmp_uptr);
  void **keep = gm_alloc((size_t)n * sizeof *keep); // the new objects stay live
  int hits = reuse_hits(old, n, size, keep);
  CHECKF(hits >= n / 2, "%d of %d new objects reuse the memory of dropped ones", hits, n);
  uint64_t dropped = (uint64_t)n * size;
  CHECKF(s1.gc_heap_live < s0.gc_heap_live + dropped / 4,
         "live heap %llu -> %llu bytes after dropping %llu bytes",
         (unsigned long long)s0.gc_heap_live, (unsigned long long)s1.gc_heap_live,
         (unsigned long long)dropped);
  CHECKF(s1.num_gc >= s0.num_gc + 1, "num_gc %llu -> %llu", (unsigned long long)s0.num_gc,
         (unsigned long long)s1.num_gc);
  keep = NULL;
  // Rounds of 4 MiB of garbage each, collected: the heap stays the same.
  gm_stats_t a, b;
  int nrounds = slow ? 6 : 20;
  for (int r = 0; r < nrounds; r++) {
    churn(4u << 20);
    collect();
    if (r == 1)
      gm_stats(&a);
  }
  gm_stats(&b);
  CHECKF(b.heap_inuse <= a.heap_inuse + (2u << 20), "heap in use grew %llu -> %llu over %d rounds",
         (unsigned long long)a.heap_inuse, (unsigned long long)b.heap_inuse, nrounds);
  CHECKF(b.gc_heap_live < (8u << 20), "%llu bytes live after the garbage rounds",
         (unsigned long long)b.gc_heap_live);
  free(old);
  gm_set_gc_percent(old_pct);
  report("dropped objects: memory reused, heap stable",
         hits >= n / 2 && s1.gc_heap_live < s0.gc_heap_live + dropped / 4 &&
             b.heap_inuse <= a.heap_inuse + (2u << 20));
}

enum { F_DROPPED = 8, F_MALLOC, F_NOSCAN };
static void **volatile g_noscan_holder;

NOINLINE static void case_not_roots(void) {
  int n = slow ? 300 : 1000;
  // Plainly dropped.
  drop_finalizable(F_DROPPED, n, 48, NULL);
  long got = wait_until(&fin_count[F_DROPPED], n * 95 / 100);
  CHECKF(got >= n * 95 / 100, "dropped objects: %ld of %d finalized", got, n);
  report("dropped objects are finalized", got >= n * 95 / 100);
  // Pointers only in malloc'ed memory.
  void **m = malloc((size_t)n * sizeof *m);
  drop_finalizable(F_MALLOC, n, 48, m);
  got = wait_until(&fin_count[F_MALLOC], n * 95 / 100);
  CHECKF(got >= n * 95 / 100, "objects pointed to from malloc'ed memory: %ld of %d finalized", got,
         n);
  report("malloc'ed memory keeps nothing alive", got >= n * 95 / 100);
  free(m);
  // Pointers only in a live gm_alloc_noscan object.
  g_noscan_holder = gm_alloc_noscan((size_t)n * sizeof(void *));
  drop_finalizable(F_NOSCAN, n, 48, g_noscan_holder);
  got = wait_until(&fin_count[F_NOSCAN], n * 95 / 100);
  CHECKF(got >= n * 95 / 100, "objects pointed to from a noscan object: %ld of %d finalized", got,
         n);
  report("a gm_alloc_noscan object keeps nothing alive", got >= n * 95 / 100);
  g_noscan_holder = NULL;
  CHECKF(atomic_load(&fin_wrong_obj) == 0, "%ld finalizers got an object with the wrong contents",
         (long)atomic_load(&fin_wrong_obj));
}

// ---------------------------------------------------------------------------

int main(void) {
  slow = GOMEM_SANITIZE[0] != 0 || GM_DEBUG >= 2;
  churn_bytes = slow ? (256u << 10) : (1u << 20);
  if (slow)
    fin_timeout = 60;

  case_stack();
  case_registers();
  case_globals();
  case_shlib();
  case_add_roots();
  case_heap_links();
  case_chain();
  case_fresh();
  case_tiny();
  case_reuse();
  case_not_roots();

  // A sentinel queued by the last cycles may not have run yet: a few more
  // cycles and a pause for the finalizer thread.
  for (int i = 0; i < 3; i++) {
    collect();
    usleep(20000);
  }
  int wrong = 0;
  for (int c = 0; c < NCASES; c++) {
    int k = atomic_load(&sentinel_ran[c]);
    CHECKF(k == 0, "%d reachable objects of case \"%s\" were finalized", k,
           case_names[c] ? case_names[c] : "?");
    wrong += k;
  }
  report("no reachable object finalized", wrong == 0);
  return test_done();
}
