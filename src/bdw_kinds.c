// bdw_kinds.c: Boehm GC's object kinds and mark procedures (GC_new_kind,
// GC_new_proc, GC_mark_and_push; see bdw.h), what Guile needs: its threads
// and some of its objects are found only by a procedure of its own (a
// thread's VM stack is mmap'ed memory no collector scans).
//
// A kind whose descriptor names a mark procedure (GC_DS_PROC) allocates
// pointer-free GC objects, so gomem's marker marks them but never reads
// them, and lists each in `objs`, an off-heap open-addressing set. With the
// world stopped, after each drain (mgcmark.c's gc_mark_more_hook), every
// listed object that is marked and was not seen yet this cycle gets its
// procedure called; GC_mark_and_push greys what it names, entries the
// procedure pushes itself are scanned as ranges, and the drain resumes,
// until no procedure runs. Once marking is complete the unmarked objects
// leave the set (they are swept). Kinds with other descriptors (lengths,
// bitmaps, per-object) allocate ordinary scanned objects: scanned whole,
// they keep at least what the descriptor would.
//
// GC_least/greatest_plausible_heap_addr (read by Boehm's GC_MARK_AND_PUSH
// macro, compiled into clients) are set from the heap's arena range at every
// collection (bdw.c's roots hook).
//
// Locking: kinds_lock (RANK_BDW_KINDS, gm_lock) around the kind and procedure
// tables and the object set; the collector reads them with the world
// stopped.
#include <string.h>

#include "bdw.h"
#include "gomem.h"
#include "lock.h"
#include "mgcmark.h"
#include "os.h"

#define DS_TAG_BITS 2
#define DS_PROC 2
#define MAX_PROCS 64 // (Boehm's GC_LOG_MAX_MARK_PROCS = 6)
#define MAX_KINDS 64
#define FIRST_KIND 4 // after Boehm's built-in kinds 0-3

typedef void *(*bdw_proc_t)(uintptr_t *addr, void *msp, void *limit, uintptr_t env);
typedef struct ms_entry {
  void *start;
  uintptr_t descr;
} ms_entry_t;

static gm_mutex_t kinds_lock = GM_MUTEX_INIT(RANK_BDW_KINDS);
static bdw_proc_t procs[MAX_PROCS];
static unsigned nprocs;
static struct {
  uintptr_t descr;
  bool clear;
} kinds[MAX_KINDS];
static unsigned nkinds = FIRST_KIND;

// A listed object: of a procedure's kind, or typed (kind TYPED_KIND: its
// layout `layout`, repeated `reps` times every `stride` words).
#define TYPED_KIND 0xffffffffu
typedef struct layout layout_t;
typedef struct pobj {
  uintptr_t obj; // 0: empty; 1: deleted
  uint32_t kind;
  uint32_t seen; // its procedure ran, or its pointers were greyed, this cycle
  const layout_t *layout;
  uint32_t stride, reps;
} pobj_t;
static pobj_t *objs;
static size_t objs_cap, objs_used, objs_live;

static size_t slot(uintptr_t p, size_t cap) {
  return (size_t)((p >> 4) * 0x9e3779b97f4a7c15ull >> 20) & (cap - 1);
}

static void insert_raw(pobj_t *t, size_t cap, pobj_t e) {
  size_t i = slot(e.obj, cap);
  while (t[i].obj > 1)
    i = (i + 1) & (cap - 1);
  t[i] = e;
}

// objs_add lists obj (kinds_lock). A larger set is filled before it
// replaces the old one.
static bool objs_add(uintptr_t obj, unsigned kind, const layout_t *layout, size_t stride,
                     size_t reps) {
  if ((objs_used + 1) * 2 > objs_cap) {
    size_t cap = objs_live * 4 < objs_cap ? objs_cap : objs_cap ? objs_cap * 2 : 1024;
    pobj_t *t = os_reserve(cap * sizeof *t, 0);
    if (t == NULL)
      return false;
    for (size_t i = 0; i < objs_cap; i++)
      if (objs[i].obj > 1)
        insert_raw(t, cap, objs[i]);
    pobj_t *old = objs;
    size_t old_cap = objs_cap;
    objs = t, objs_cap = cap, objs_used = objs_live;
    if (old != NULL)
      os_unmap(old, old_cap * sizeof *old);
  }
  insert_raw(objs, objs_cap, (pobj_t){obj, kind, 0, layout, (uint32_t)stride, (uint32_t)reps});
  objs_used++, objs_live++;
  return true;
}

// ---------------------------------------------------------------------------
// The collector's hook (world stopped)

static ms_entry_t stack[256]; // what procedures push themselves (collector only)

// Words to grey, batched: one gc_mark_shade (a work buffer taken and
// published) per PENDING words rather than per word (a Guile VM stack is
// pushed slot by slot). Collector only.
#define PENDING 4096
static uintptr_t pending[PENDING];
static size_t npending;

static void shade_flush(void) {
  if (npending != 0)
    gc_mark_shade(pending, npending);
  npending = 0;
}

static void shade(uintptr_t p) {
  if (npending == PENDING)
    shade_flush();
  pending[npending++] = p;
}

// run_proc calls the procedure of marked object e, then scans the entries
// it pushed by hand.
static void run_proc(pobj_t *e) {
  uintptr_t descr = kinds[e->kind].descr;
  bdw_proc_t proc = procs[(descr >> DS_TAG_BITS) % MAX_PROCS];
  ms_entry_t *top = proc((uintptr_t *)e->obj, stack, stack + 256, descr >> (DS_TAG_BITS + 6));
  for (ms_entry_t *m = stack + 1; m <= top && m < stack + 256; m++) {
    if ((m->descr & 3) == 0) { // a length: a range to scan
      shade_flush();
      gc_mark_shade(m->start, m->descr / sizeof(uintptr_t));
    } else
      shade((uintptr_t)m->start);
  }
}

static void grey_typed(const pobj_t *e);

static bool mark_more(bool done) {
  bool ran = false;
  for (size_t i = 0; i < objs_cap; i++) {
    pobj_t *e = &objs[i];
    if (e->obj <= 1)
      continue;
    if (done) { // marking is complete: the unmarked leave, the others reset
      if (!gc_is_marked(e->obj))
        e->obj = 1, objs_live--;
      e->seen = 0;
    } else if (!e->seen && gc_is_marked(e->obj)) {
      e->seen = 1;
      if (e->kind == TYPED_KIND)
        grey_typed(e);
      else
        run_proc(e);
      ran = true;
    }
  }
  shade_flush();
  return ran;
}

void bdw_kinds_init(void) {
  gc_mark_more_hook = mark_more;
  lock_fork_register(&kinds_lock);
}

// ---------------------------------------------------------------------------
// The interface

BDW_API void **GC_new_free_list(void) {
  // (objects of a kind are allocated by GC_generic_malloc: the list that
  // Boehm's inline allocation would fill stays empty)
  void **fl = os_reserve(256 * sizeof(void *), 0);
  if (fl == NULL)
    bdw_warn("GOMEM: GC_new_free_list: out of memory\n", 0);
  return fl;
}
BDW_API void **GC_new_free_list_inner(void) {
  return GC_new_free_list();
}

BDW_API unsigned GC_new_proc(bdw_proc_t proc) {
  bdw_init();
  gm_lock(&kinds_lock);
  unsigned i = nprocs < MAX_PROCS ? nprocs++ : MAX_PROCS;
  if (i < MAX_PROCS)
    procs[i] = proc;
  gm_unlock(&kinds_lock);
  if (i == MAX_PROCS)
    gm_fatal("GC_new_proc: too many mark procedures", NULL);
  return i;
}
BDW_API unsigned GC_new_proc_inner(bdw_proc_t proc) {
  return GC_new_proc(proc);
}

BDW_API unsigned GC_new_kind(void **free_list, uintptr_t descr, int adjust, int clear) {
  (void)free_list, (void)adjust;
  bdw_init();
  gm_lock(&kinds_lock);
  unsigned k = nkinds < MAX_KINDS ? nkinds++ : MAX_KINDS;
  if (k < MAX_KINDS)
    kinds[k].descr = descr, kinds[k].clear = clear != 0;
  gm_unlock(&kinds_lock);
  if (k == MAX_KINDS)
    gm_fatal("GC_new_kind: too many object kinds", NULL);
  return k;
}
BDW_API unsigned GC_new_kind_inner(void **free_list, uintptr_t descr, int adjust, int clear) {
  return GC_new_kind(free_list, descr, adjust, clear);
}

void *bdw_kind_alloc(size_t n, int kind) {
  if (kind < FIRST_KIND || (unsigned)kind >= relaxed_load(&nkinds)) {
    bdw_warn("GOMEM: GC_generic_malloc of an unknown kind %ld\n", (uintptr_t)kind);
    return NULL;
  }
  if ((kinds[kind].descr & 3) != DS_PROC)
    return bdw_alloc(n, BDW_NORMAL); // scanned whole
  void *p = bdw_alloc(n, BDW_PTRFREE);
  if (p == NULL)
    return NULL;
  if (kinds[kind].clear)
    memset(p, 0, n);
  gm_lock(&kinds_lock);
  bool ok = objs_add((uintptr_t)p, (unsigned)kind, NULL, 0, 0);
  gm_unlock(&kinds_lock);
  return ok ? p : bdw_oom(n);
}

// GC_mark_and_push (inside a mark procedure): obj, if it is in a GC
// object, is marked and will be scanned; the mark stack is gomem's.
BDW_API void *GC_mark_and_push(void *obj, void *msp, void *limit, void **src) {
  (void)limit, (void)src;
  shade((uintptr_t)obj);
  return msp;
}

// GC_mark_and_push_stack: the same, for a word read from a stack.
BDW_API void GC_mark_and_push_stack(void *obj) {
  shade((uintptr_t)obj);
}

// bdw_kind_of: the kind of a listed object, or -1.
int bdw_kind_of(uintptr_t obj) {
  if (relaxed_load(&objs_live) == 0)
    return -1;
  gm_lock(&kinds_lock);
  int k = -1;
  for (size_t i = slot(obj, objs_cap); objs_cap != 0 && objs[i].obj != 0; i = (i + 1) & (objs_cap - 1))
    if (objs[i].obj == obj) {
      k = (int)objs[i].kind;
      break;
    }
  gm_unlock(&kinds_lock);
  return k;
}

// bdw_kind_forget: obj is freed (GC_free): its slot may hold another
// object soon.
void bdw_kind_forget(uintptr_t obj) {
  if (relaxed_load(&objs_live) == 0)
    return;
  gm_lock(&kinds_lock);
  for (size_t i = slot(obj, objs_cap); objs_cap != 0 && objs[i].obj != 0; i = (i + 1) & (objs_cap - 1))
    if (objs[i].obj == obj) {
      objs[i].obj = 1;
      objs_live--;
      break;
    }
  gm_unlock(&kinds_lock);
}

// ---------------------------------------------------------------------------
// Typed objects (gc_typed.h): pointer-free GC objects, listed with their
// layout; once marked, only the words the layout's bitmap names are greyed
// (a weak table's other fields keep nothing alive). A layout of all
// pointers is an ordinary scanned object, one of none an atomic one.

struct layout {
  size_t len;         // words described
  uintptr_t bits[];   // bit i: word i holds a pointer
};

static void grey_typed(const pobj_t *e) {
  uintptr_t *w = (uintptr_t *)e->obj;
  const layout_t *l = e->layout;
  for (size_t r = 0; r < e->reps; r++, w += e->stride)
    for (size_t i = 0; i < l->len; i++)
      if (l->bits[i / 64] >> (i % 64) & 1)
        shade(w[i]);
}

// Descriptors: 0 (no pointers), ~0 (all pointers), or a layout's address.
#define DESCR_NONE ((uintptr_t)0)
#define DESCR_ALL (~(uintptr_t)0)

BDW_API uintptr_t GC_make_descriptor(const uintptr_t *bitmap, size_t len) {
  size_t set = 0;
  for (size_t i = 0; i < len; i++)
    set += bitmap[i / 64] >> (i % 64) & 1;
  if (set == 0)
    return DESCR_NONE;
  if (set == len)
    return DESCR_ALL;
  size_t words = (len + 63) / 64;
  layout_t *l = os_reserve(sizeof *l + words * sizeof(uintptr_t), 0); // (once per type)
  if (l == NULL)
    return DESCR_ALL; // conservative: Boehm's answer when out of memory too
  l->len = len;
  memcpy(l->bits, bitmap, words * sizeof(uintptr_t));
  return (uintptr_t)l;
}

// typed_alloc: reps elements of elem bytes each, laid out as d.
static void *typed_alloc(size_t elem, size_t reps, uintptr_t d) {
  if (elem != 0 && reps > SIZE_MAX / elem)
    return NULL;
  size_t n = elem * reps;
  if (d == DESCR_ALL)
    return bdw_alloc(n, BDW_NORMAL);
  void *p = bdw_alloc(n, BDW_PTRFREE);
  if (p == NULL || d == DESCR_NONE)
    return p;
  memset(p, 0, n);
  if (reps > UINT32_MAX || elem / sizeof(uintptr_t) > UINT32_MAX)
    return bdw_alloc(n, BDW_NORMAL);
  gm_lock(&kinds_lock);
  bool ok = objs_add((uintptr_t)p, TYPED_KIND, (const layout_t *)d, elem / sizeof(uintptr_t), reps);
  gm_unlock(&kinds_lock);
  return ok ? p : bdw_oom(n);
}

BDW_API void *GC_malloc_explicitly_typed(size_t n, uintptr_t d) {
  return typed_alloc(n, 1, d);
}
BDW_API void *GC_malloc_explicitly_typed_ignore_off_page(size_t n, uintptr_t d) {
  return typed_alloc(n, 1, d);
}
BDW_API void *GC_calloc_explicitly_typed(size_t k, size_t n, uintptr_t d) {
  return typed_alloc(n, k, d);
}
