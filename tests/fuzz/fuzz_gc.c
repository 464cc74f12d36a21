// fuzz_gc: random object graphs on gomem's garbage-collected heap.
//
// A mutator (one, or two threads in two-thread mode) builds a graph of GC
// objects, scanned (gm_alloc) and pointer-free (gm_alloc_noscan), tiny (< 16
// bytes), small and large (> 32 KiB), and keeps a model of it: each object's
// address (stored complemented, so the model keeps nothing alive), size,
// kind, pattern and outgoing links, and the roots. Roots are places the
// collector really scans: a global array (fz_gc_roots, in .bss), ranges
// added with gm_add_roots (malloc'ed or mmap'ed arrays), the slots where
// finalizers resurrect their objects (fz_gc_resurrect), and, while an
// operation holds a pointer the model does not (yet, or any more), a pin word
// (fz_gc_pin): local variables are not relied on.
//
// Object layout: objects of 16 bytes and more start with a tag word (top bit
// set; kind, serial and size); a scanned object then has up to 4 link words
// (0 or a pointer to the start or inside of another object); the other words
// hold pattern words (top bit set: never a heap address); the last size % 8
// bytes are pattern bytes (pointer-free objects) or stay zero (scanned ones).
// Scanned objects of 8-15 bytes are one link word; smaller ones stay zero;
// pointer-free objects under 16 bytes are all pattern bytes.
//
// What it checks:
//   - after every collection it runs and every few operations: every object
//     the model can reach from its roots is intact (tag, links, pattern,
//     zeroed tail), gm_owns it, and no two of them overlap;
//   - a finalizer runs only on an object the model cannot reach, and only
//     after the collection count read before the object was dropped
//     (num_gc); never twice, never after gm_set_finalizer(p, NULL) replaced
//     or removed it, never after gm_free; the finalizer sees its object
//     intact; no finalizer runs while the object is reachable from the
//     contents of another object whose finalizer has not run (gomem.h's
//     order: the contents of every finalizable object are roots);
//   - objects kept only by a pending finalizer (the object and what it points
//     to) stay intact and do not overlap new objects (single-thread mode);
//   - a resurrected object and everything it points to are intact;
//   - gm_realloc keeps the prefix and returns a GC object; gm_usable_size >=
//     the size; gm_set_gc_percent returns the previous GOGC; after
//     gm_collect, num_gc and num_forced_gc grew, gc_percent and next_gc
//     follow GOGC (gomem.h's goal), and gc_heap_live covers the objects the
//     model reaches.
// Garbage is never required to be collected: roots are conservative.
//
// Input: byte 0: bit 0 two-thread mode (the second half of the input drives a
// second mutator thread with its own objects and roots; both share objects,
// immutable and link-free, through fz_gc_shared), bits 1-2 the check period
// (8 << n operations), bit 3 the second mutator's thread exits at the end of
// the input (else it waits for the next one). Then operations: an opcode byte (op_table) and its
// operands (object, place, size, mode bytes; missing bytes read as 0).
//
// GOMEM_FUZZ_THREAD_EXIT=0 keeps the second mutator's thread for good (an
// exiting thread gives its GC spans back while collections run: it once lost
// objects, repro/thread_exit_race.c). GOMEM_FUZZ_TWO_THREADS=0 runs every
// input on one mutator. GOMEM_FUZZ_TINY=0 leaves out gm_free, gm_realloc,
// gm_usable_size and gm_set_finalizer on tiny objects (pointer-free, 16
// bytes or less: gomem.h's contract for them is checked otherwise).
#define FUZZ_NAME "fuzz_gc"
#include "fuzz.h"

#include <stdatomic.h>
#include <stddef.h>
#include <sys/mman.h>

#define NMUT 2         // mutators: the main thread and, in two-thread mode, a worker
#define MAXOBJ 512     // model entries per mutator
#define NROOT 32       // global root words per mutator
#define NRES 16        // resurrection words per mutator
#define NRANGE 4       // gm_add_roots ranges per mutator
#define RANGE_WORDS 16 // words of each range
#define NSHARED 16     // shared root words
#define MAXLINK 4      // link words of a scanned object
#define LOG_CAP 1024   // finalizer events waiting per mutator

// The roots. Not static: their stores must happen, and the collector finds
// them in the program's .bss.
volatile uintptr_t fz_gc_roots[NMUT][NROOT];
volatile uintptr_t fz_gc_resurrect[NMUT][NRES]; // written under log_lock
volatile uintptr_t fz_gc_shared[NSHARED];       // written under shared_lock
volatile uintptr_t fz_gc_pin[NMUT][2];          // pointers in transit (pin)

enum { FIN_NONE, FIN_SET, FIN_RAN };

typedef struct ref {
  int16_t to; // model entry, -1: none
  uint32_t off;
} ref_t;

typedef struct obj {
  uintptr_t hidden; // ~address; 0: free entry
  uint64_t serial;
  uint32_t size;
  uint8_t scan;      // gm_alloc (1) or gm_alloc_noscan (0)
  uint8_t shared;    // immutable, never freed or finalized
  uint8_t fin;       // FIN_*
  uint8_t resurrect; // its finalizer stores it in a resurrection slot
  uint8_t tiny;      // allocated by the tiny allocator (pointer-free, <= 16 bytes)
  uint16_t fin_version;
  int64_t dead_gc; // num_gc read before it became unreachable; -1 while reachable
  ref_t link[MAXLINK];
} obj_t;

typedef struct range {
  uintptr_t *mem; // NULL until first used
  int mmapped, active;
  ref_t word[RANGE_WORDS];
} range_t;

typedef struct mut {
  int id;
  fz_in_t in;
  unsigned period;
  obj_t obj[MAXOBJ];
  ref_t root[NROOT], res[NRES];
  range_t range[NRANGE];
  uint16_t version[MAXOBJ]; // last finalizer version of each entry (never reset)
  uint8_t reach[MAXOBJ], keep[MAXOBJ];
  int16_t reach_list[MAXOBJ];
  int nreach;
  int64_t change_gc; // num_gc read before the current change
  int freed_fin;     // objects freed while their finalizer was pending
} mut_t;

static mut_t muts[NMUT];
static int tiny_ops;    // GOMEM_FUZZ_TINY
static int two_threads; // this input runs two mutators
static int gogc_model, gogc_initial;
static _Atomic uint64_t serials;

// ---------------------------------------------------------------------------
// Small helpers

static inline uintptr_t hide(const void *p) {
  return ~(uintptr_t)p;
}
static inline unsigned char *addr_of(const mut_t *m, int e) {
  return (unsigned char *)~m->obj[e].hidden;
}

static uint64_t gc_count(void) {
  gm_stats_t st;
  gm_stats(&st);
  return st.num_gc;
}

static size_t nlinks_of(size_t size, int scan) {
  if (!scan || size < 8)
    return 0;
  if (size < 16)
    return 1;
  size_t words = size / 8 - 1;
  return words < MAXLINK ? words : MAXLINK;
}

// first_link: the word index of link 0 (after the tag, if there is one).
static size_t first_link(size_t size) {
  return size >= 16 ? 1 : 0;
}

static inline uint64_t tag_of(uint64_t serial, size_t size, int scan) {
  return 1ull << 63 | (uint64_t)scan << 62 | (serial & ((1ull << 38) - 1)) << 24 |
         (size & 0xffffff);
}

static inline unsigned char pbyte(uint64_t serial, size_t i) {
  return (unsigned char)(fz_pat(serial, i / 8) >> (8 * (i & 7))) | 0x80;
}

// pin / unpin: p stays a root (a word of fz_gc_pin, in .bss) from pin to
// unpin. A pointer the model is about to store, or has just dropped but still
// passes to gomem, must be pinned: in two-thread mode the other mutator may
// collect at any instruction, and a local variable is no root the compiler
// promises to keep. The model holds only complemented addresses, and a
// compiler may keep ~p in a register across calls and complement it only at
// its last use (clang did, in op_free: the object was collected between the
// redirect and gm_free, and gm_free then freed an object whose finalizer was
// already queued).
static void pin(const mut_t *m, int slot, const void *p) {
  fz_gc_pin[m->id][slot] = (uintptr_t)p;
}
static void unpin(const mut_t *m, int slot) {
  fz_gc_pin[m->id][slot] = 0;
}

// is_tiny: an object of the tiny allocator's span class (gomem.h: pointer-
// free, 16 bytes or less): its usable size is 0 (not recorded), gm_free
// drops only its finalizer, gm_realloc always moves it.
static int is_tiny(const obj_t *o) {
  return o->tiny;
}

// ---------------------------------------------------------------------------
// Object contents

// write_body writes everything but the link words: tag, pattern words, tail.
static void write_body(unsigned char *p, uint64_t serial, size_t size, int scan) {
  if (size < 16 && !scan) {
    for (size_t i = 0; i < size; i++)
      p[i] = pbyte(serial, i);
    return;
  }
  size_t w0 = first_link(size) + nlinks_of(size, scan);
  if (size >= 16) {
    uint64_t t = tag_of(serial, size, scan);
    memcpy(p, &t, 8);
  }
  for (size_t i = w0; i < size / 8; i++) {
    uint64_t w = fz_pat(serial, i);
    memcpy(p + 8 * i, &w, 8);
  }
  for (size_t i = size & ~(size_t)7; i < size; i++)
    p[i] = scan ? 0 : pbyte(serial, i);
}

// body_bad returns the offset of the first byte that differs from what
// write_body wrote, or SIZE_MAX.
static size_t body_bad(const unsigned char *p, uint64_t serial, size_t size, int scan) {
  if (size < 16 && !scan) {
    for (size_t i = 0; i < size; i++)
      if (p[i] != pbyte(serial, i))
        return i;
    return SIZE_MAX;
  }
  uint64_t w;
  if (size >= 16 && (memcpy(&w, p, 8), w != tag_of(serial, size, scan)))
    return 0;
  for (size_t i = first_link(size) + nlinks_of(size, scan); i < size / 8; i++)
    if (memcpy(&w, p + 8 * i, 8), w != fz_pat(serial, i))
      return 8 * i;
  for (size_t i = size & ~(size_t)7; i < size; i++)
    if (p[i] != (scan ? 0 : pbyte(serial, i)))
      return i;
  return SIZE_MAX;
}

static uintptr_t ref_value(const mut_t *m, ref_t r) {
  return r.to < 0 ? 0 : (uintptr_t)addr_of(m, r.to) + r.off;
}

static volatile uintptr_t *link_word(const mut_t *m, int e, size_t i) {
  return (volatile uintptr_t *)(addr_of(m, e) + 8 * (first_link(m->obj[e].size) + i));
}

static void verify_obj(const mut_t *m, int e, const char *when) {
  const obj_t *o = &m->obj[e];
  const unsigned char *p = addr_of(m, e);
  FZ_CHECK(gm_owns(p) && (o->size == 0 || gm_owns(p + o->size - 1)),
           "%s: object %d (%p, %u bytes) is not gomem's", when, e, (const void *)p, o->size);
  size_t bad = body_bad(p, o->serial, o->size, o->scan);
  FZ_CHECK(bad == SIZE_MAX,
           "%s: mutator %d object %d (%p, %u bytes, %s, serial %llu) corrupted "
           "at offset %zu",
           when, m->id, e, (const void *)p, o->size, o->scan ? "scan" : "noscan",
           (unsigned long long)o->serial, bad);
  for (size_t i = 0; i < nlinks_of(o->size, o->scan); i++) {
    uintptr_t got = *link_word(m, e, i), want = ref_value(m, o->link[i]);
    FZ_CHECK(got == want, "%s: mutator %d object %d (%p) link %zu is %#lx, want %#lx", when, m->id,
             e, (const void *)p, i, (unsigned long)got, (unsigned long)want);
  }
}

// ---------------------------------------------------------------------------
// Reachability in the model

static void mark_from(uint8_t *set, int e, int16_t *stack, int *sp) {
  if (e < 0 || set[e])
    return;
  set[e] = 1;
  stack[(*sp)++] = (int16_t)e;
}

static void mark_links(mut_t *m, uint8_t *set, int16_t *stack, int *sp) {
  while (*sp > 0) {
    const obj_t *o = &m->obj[stack[--*sp]];
    for (size_t i = 0; i < nlinks_of(o->size, o->scan); i++)
      mark_from(set, o->link[i].to, stack, sp);
  }
}

static void mark_roots(mut_t *m, uint8_t *set, int16_t *stack, int *sp) {
  for (int i = 0; i < NROOT; i++)
    mark_from(set, m->root[i].to, stack, sp);
  for (int i = 0; i < NRES; i++)
    mark_from(set, m->res[i].to, stack, sp);
  for (int r = 0; r < NRANGE; r++)
    for (int i = 0; m->range[r].active && i < RANGE_WORDS; i++)
      mark_from(set, m->range[r].word[i].to, stack, sp);
  mark_links(m, set, stack, sp);
}

// recompute_reach: what the roots reach. An object that stopped being
// reachable records change_gc (read before the change) as its death.
static void recompute_reach(mut_t *m) {
  int16_t stack[MAXOBJ];
  int sp = 0;
  uint8_t was[MAXOBJ];
  memcpy(was, m->reach, sizeof was);
  memset(m->reach, 0, sizeof m->reach);
  mark_roots(m, m->reach, stack, &sp);
  m->nreach = 0;
  for (int e = 0; e < MAXOBJ; e++) {
    if (m->reach[e]) {
      m->reach_list[m->nreach++] = (int16_t)e;
      m->obj[e].dead_gc = -1;
    } else if (was[e] && m->obj[e].hidden != 0) {
      m->obj[e].dead_gc = m->change_gc;
    }
  }
}

// compute_keep: what must stay valid: the reachable objects, and what the
// contents of objects with a pending finalizer reach (themselves included).
static void compute_keep(mut_t *m) {
  int16_t stack[MAXOBJ];
  int sp = 0;
  memset(m->keep, 0, sizeof m->keep);
  for (int e = 0; e < MAXOBJ; e++)
    if (m->obj[e].hidden != 0 && m->obj[e].fin == FIN_SET)
      mark_from(m->keep, e, stack, &sp);
  mark_roots(m, m->keep, stack, &sp);
}

// begin_change / end_change bracket an operation that may drop objects.
static void begin_change(mut_t *m) {
  m->change_gc = (int64_t)gc_count();
}
static void end_change(mut_t *m) {
  recompute_reach(m);
}

// ---------------------------------------------------------------------------
// Finalizers. The argument encodes (generation, mutator, entry, version,
// resurrect, has-tag); the finalizer checks its object, then logs an event
// for the mutator, which checks it against the model at its next checkpoint.

typedef struct event {
  int16_t entry, res;
  uint16_t version;
  uint64_t tag, num_gc;
} event_t;

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
  event_t ev[LOG_CAP];
  int n, overflow;
  uint16_t started[MAXOBJ]; // the version whose finalizer has started
} fin_log[NMUT];
static unsigned generation = 1; // log_lock; old generations are ignored
static _Atomic int fin_ran;     // some finalizer has run: gomem's finalizer thread is up

#define ARG_GEN(a) ((unsigned)((a) >> 32))
#define ARG_MUT(a) ((int)((a) >> 31) & 1)
#define ARG_ENTRY(a) ((int)((a) >> 20) & 0x3ff)
#define ARG_VERSION(a) ((uint16_t)((a) >> 4) & 0xffff)
#define ARG_RESURRECT(a) ((int)((a) >> 1) & 1)
#define ARG_TAGGED(a) ((int)(a)&1)

static uintptr_t make_arg(const mut_t *m, int e) {
  const obj_t *o = &m->obj[e];
  return (uintptr_t)generation << 32 | (uintptr_t)m->id << 31 | (uintptr_t)e << 20 |
         (uintptr_t)o->fin_version << 4 | (uintptr_t)o->resurrect << 1 | (o->size >= 16);
}

// fin_check: the object a finalizer receives is intact (from its tag alone).
static void fin_check(const unsigned char *p, uintptr_t a, uint64_t *tag) {
  FZ_CHECK(gm_owns(p), "finalizer: object %p is not gomem's", (const void *)p);
  *tag = 0;
  if (!ARG_TAGGED(a))
    return;
  memcpy(tag, p, 8);
  size_t size = *tag & 0xffffff;
  uint64_t serial = *tag >> 24 & ((1ull << 38) - 1);
  FZ_CHECK(*tag >> 63 && size >= 16, "finalizer: object %p has a bad tag %#llx", (const void *)p,
           (unsigned long long)*tag);
  size_t bad = body_bad(p, serial, size, (int)(*tag >> 62 & 1));
  FZ_CHECK(bad == SIZE_MAX, "finalizer: object %p (%zu bytes) corrupted at offset %zu",
           (const void *)p, size, bad);
}

// take_res_slot: a free resurrection word (log_lock held). A word is in use
// while non-zero: the model writes its resurrection words under log_lock too.
static int take_res_slot(int mid) {
  for (int k = 0; k < NRES; k++)
    if (fz_gc_resurrect[mid][k] == 0)
      return k;
  return -1;
}

static void fin_fn(void *obj, void *arg) {
  uintptr_t a = (uintptr_t)arg;
  event_t ev = {.entry = (int16_t)ARG_ENTRY(a), .res = -1, .version = ARG_VERSION(a)};
  fin_check(obj, a, &ev.tag);
  ev.num_gc = gc_count();
  atomic_store(&fin_ran, 1);
  int mid = ARG_MUT(a);
  fz_lock(&log_lock);
  if (ARG_GEN(a) == generation) {
    fin_log[mid].started[ev.entry] = ev.version;
    if (ARG_RESURRECT(a) && (ev.res = (int16_t)take_res_slot(mid)) >= 0)
      fz_gc_resurrect[mid][ev.res] = (uintptr_t)obj;
    if (fin_log[mid].n < LOG_CAP)
      fin_log[mid].ev[fin_log[mid].n++] = ev;
    else
      fin_log[mid].overflow = 1;
  }
  fz_unlock(&log_lock);
}

// pending_reaches: whether entry e is reachable from the roots or from the
// contents of an object whose finalizer is still pending (e's own included).
static int pending_reaches(mut_t *m, int e) {
  int16_t stack[MAXOBJ];
  int sp = 0;
  uint8_t set[MAXOBJ] = {0};
  for (int x = 0; x < MAXOBJ; x++) {
    const obj_t *o = &m->obj[x];
    if (o->hidden == 0 || o->fin != FIN_SET)
      continue;
    for (size_t i = 0; i < nlinks_of(o->size, o->scan); i++)
      mark_from(set, o->link[i].to, stack, &sp);
  }
  mark_roots(m, set, stack, &sp);
  return set[e];
}

static void check_event(mut_t *m, const event_t *ev) {
  int e = ev->entry;
  obj_t *o = &m->obj[e];
  FZ_CHECK(o->hidden != 0 && o->fin == FIN_SET && o->fin_version == ev->version,
           "mutator %d: a finalizer ran for entry %d (version %u) that has no such pending "
           "finalizer (state %d, version %u: removed, replaced, already run, or freed)",
           m->id, e, ev->version, o->hidden ? o->fin : -1, o->fin_version);
  FZ_CHECK(o->size < 16 || ev->tag == tag_of(o->serial, o->size, o->scan),
           "mutator %d: finalizer of object %d saw tag %#llx", m->id, e,
           (unsigned long long)ev->tag);
  FZ_CHECK(!m->reach[e], "mutator %d: finalizer ran on object %d (%p), which the roots reach",
           m->id, e, (void *)addr_of(m, e));
  FZ_CHECK((int64_t)ev->num_gc >= o->dead_gc,
           "mutator %d: finalizer of object %d ran at num_gc %llu, but it was dropped at %lld",
           m->id, e, (unsigned long long)ev->num_gc, (long long)o->dead_gc);
  FZ_CHECK(!pending_reaches(m, e),
           "mutator %d: finalizer ran on object %d (%p), reachable from the contents of an "
           "object whose finalizer has not run",
           m->id, e, (void *)addr_of(m, e));
}

// process_events checks the finalizers that ran since the last call, in the
// order they ran, applying their resurrections to the model.
static void process_events(mut_t *m) {
  static event_t evs[NMUT][LOG_CAP];
  fz_lock(&log_lock);
  int n = fin_log[m->id].n, overflow = fin_log[m->id].overflow;
  memcpy(evs[m->id], fin_log[m->id].ev, (size_t)n * sizeof(event_t));
  fin_log[m->id].n = 0;
  fz_unlock(&log_lock);
  FZ_CHECK(!overflow, "mutator %d: finalizer log overflow", m->id);
  for (int i = 0; i < n; i++) {
    const event_t *ev = &evs[m->id][i];
    check_event(m, ev);
    m->obj[ev->entry].fin = FIN_RAN;
    if (ev->res >= 0) {
      m->res[ev->res] = (ref_t){ev->entry, 0};
      recompute_reach(m);
      verify_obj(m, ev->entry, "resurrected");
    }
  }
}

// ---------------------------------------------------------------------------
// Checks

static void verify_reachable(mut_t *m, const char *when) {
  for (int i = 0; i < m->nreach; i++)
    verify_obj(m, m->reach_list[i], when);
}

// verify_kept (single mutator): objects that only a pending finalizer keeps
// are intact, and nothing the model must keep overlaps. Under log_lock: a
// finalizer that has not started cannot return meanwhile.
static void verify_kept(mut_t *m) {
  static fz_range_t r[MAXOBJ]; // cleared after use: it must keep nothing alive
  size_t n = 0;
  fz_lock(&log_lock);
  memset(m->keep, 0, sizeof m->keep);
  int16_t stack[MAXOBJ];
  int sp = 0;
  for (int e = 0; e < MAXOBJ; e++)
    if (m->obj[e].hidden != 0 && m->obj[e].fin == FIN_SET &&
        fin_log[m->id].started[e] != m->obj[e].fin_version)
      mark_from(m->keep, e, stack, &sp);
  mark_roots(m, m->keep, stack, &sp);
  for (int e = 0; e < MAXOBJ; e++) {
    if (!m->keep[e])
      continue;
    if (!m->reach[e])
      verify_obj(m, e, "kept by a pending finalizer");
    uintptr_t lo = (uintptr_t)addr_of(m, e);
    r[n++] = (fz_range_t){lo, lo + m->obj[e].size, e};
  }
  fz_unlock(&log_lock);
  long i = fz_find_overlap(r, n);
  fz_range_t a = i < 0 ? (fz_range_t){0} : r[i], b = i < 0 ? (fz_range_t){0} : r[i + 1];
  memset(r, 0, sizeof r);
  FZ_CHECK(i < 0, "mutator %d: objects %d and %d overlap (%#lx + %lu, %#lx + %lu)", m->id, a.id,
           b.id, (unsigned long)a.lo, (unsigned long)(a.hi - a.lo), (unsigned long)b.lo,
           (unsigned long)(b.hi - b.lo));
}

// verify_roots: the root words hold what the model says.
static void verify_roots(mut_t *m, const char *when) {
  for (int i = 0; i < NROOT; i++)
    FZ_CHECK(fz_gc_roots[m->id][i] == ref_value(m, m->root[i]),
             "%s: mutator %d root %d is %#lx, the model says entry %d", when, m->id, i,
             (unsigned long)fz_gc_roots[m->id][i], m->root[i].to);
  for (int r = 0; r < NRANGE; r++)
    for (int i = 0; m->range[r].active && i < RANGE_WORDS; i++)
      FZ_CHECK(m->range[r].mem[i] == ref_value(m, m->range[r].word[i]),
               "%s: mutator %d range %d word %d is %#lx, the model says entry %d", when, m->id, r,
               i, (unsigned long)m->range[r].mem[i], m->range[r].word[i].to);
  fz_lock(&log_lock);
  for (int i = 0; i < NRES; i++) {
    uintptr_t got = fz_gc_resurrect[m->id][i];
    int ok = m->res[i].to < 0 || got == ref_value(m, m->res[i]);
    fz_unlock(&log_lock);
    FZ_CHECK(ok, "%s: mutator %d resurrection word %d is %#lx, the model says entry %d", when,
             m->id, i, (unsigned long)got, m->res[i].to);
    fz_lock(&log_lock);
  }
  fz_unlock(&log_lock);
}

static void checkpoint(mut_t *m, const char *when) {
  process_events(m);
  verify_roots(m, when);
  verify_reachable(m, when);
  if (!two_threads)
    verify_kept(m);
}

// check_gc_stats: after a gm_collect by this thread.
static void check_gc_stats(const mut_t *m, const gm_stats_t *before) {
  gm_stats_t st;
  gm_stats(&st);
  FZ_CHECK(st.num_gc > before->num_gc && st.num_forced_gc > before->num_forced_gc,
           "gm_collect: num_gc %llu -> %llu, num_forced_gc %llu -> %llu",
           (unsigned long long)before->num_gc, (unsigned long long)st.num_gc,
           (unsigned long long)before->num_forced_gc, (unsigned long long)st.num_forced_gc);
  FZ_CHECK(st.gc_percent == gogc_model, "gc_percent %lld, GOGC set to %d", (long long)st.gc_percent,
           gogc_model);
  uint64_t live = st.gc_heap_live, p = (uint64_t)gogc_model;
  // (two mutators: another collection may come between the reads of the goal
  // and of the live heap)
  FZ_CHECK(two_threads || gogc_model < 0
               ? two_threads || st.next_gc == 0
               : st.next_gc >= (4ull << 20) * p / 100 && st.next_gc + p >= live + live * p / 100,
           "next_gc %llu for GOGC %d and %llu bytes live", (unsigned long long)st.next_gc,
           gogc_model, (unsigned long long)live);
  static fz_range_t r[MAXOBJ]; // (cleared after use: it must keep nothing alive)
  for (int i = 0; i < m->nreach; i++) {
    uintptr_t lo = (uintptr_t)addr_of(m, m->reach_list[i]);
    r[i] = (fz_range_t){lo, lo + m->obj[m->reach_list[i]].size, 0};
  }
  fz_sort_ranges(r, (size_t)m->nreach);
  uint64_t reached = 0; // (a shared object may be in the model twice)
  for (int i = 0; i < m->nreach; i++)
    reached += i > 0 && r[i].lo == r[i - 1].lo ? 0 : r[i].hi - r[i].lo;
  memset(r, 0, sizeof r);
  FZ_CHECK(st.gc_heap_live >= reached, "gc_heap_live %llu < %llu bytes the model reaches",
           (unsigned long long)st.gc_heap_live, (unsigned long long)reached);
}

// ---------------------------------------------------------------------------
// Places: where a reference lives (a root word, a range word, a
// resurrection word, a link word of a reachable scanned object).

enum { PL_ROOT, PL_RANGE, PL_LINK, PL_RES };

typedef struct place {
  int kind, a, b; // ROOT: a; RANGE: range a, word b; LINK: entry a, link b; RES: a
} place_t;

static int pick_reachable(mut_t *m, unsigned v) {
  return m->nreach == 0 ? -1 : m->reach_list[v % (unsigned)m->nreach];
}

// pick_place decodes 2 bytes into a place (a root word if the choice does not
// exist). Resurrection words only when `res` (to drop them), and only those
// the model holds: a zero one may be taken by a finalizer meanwhile, and one
// the model does not know yet holds a resurrection to come.
static place_t pick_place(mut_t *m, int res) {
  unsigned k = fz_u8(&m->in), v = fz_u8(&m->in);
  place_t pl = {PL_ROOT, (int)(v % NROOT), 0};
  if (k % 4 == PL_RANGE && m->range[k / 4 % NRANGE].active)
    pl = (place_t){PL_RANGE, (int)(k / 4 % NRANGE), (int)(v % RANGE_WORDS)};
  if (k % 4 == PL_RES && res && m->res[v % NRES].to >= 0)
    pl = (place_t){PL_RES, (int)(v % NRES), 0};
  if (k % 4 == PL_LINK) {
    int e = pick_reachable(m, v);
    size_t nl = e < 0 || m->obj[e].shared ? 0 : nlinks_of(m->obj[e].size, m->obj[e].scan);
    if (nl > 0)
      pl = (place_t){PL_LINK, e, (int)((k / 4) % nl)};
  }
  return pl;
}

static ref_t *place_ref(mut_t *m, place_t pl) {
  switch (pl.kind) {
  case PL_RANGE:
    return &m->range[pl.a].word[pl.b];
  case PL_LINK:
    return &m->obj[pl.a].link[pl.b];
  case PL_RES:
    return &m->res[pl.a];
  default:
    return &m->root[pl.a];
  }
}

static volatile uintptr_t *place_word(mut_t *m, place_t pl) {
  switch (pl.kind) {
  case PL_RANGE:
    return (volatile uintptr_t *)&m->range[pl.a].mem[pl.b];
  case PL_LINK:
    return link_word(m, pl.a, (size_t)pl.b);
  case PL_RES:
    return &fz_gc_resurrect[m->id][pl.a];
  default:
    return &fz_gc_roots[m->id][pl.a];
  }
}

// place_store writes r into the place and the model (inside a change).
static void place_store(mut_t *m, place_t pl, ref_t r) {
  if (pl.kind == PL_RES)
    fz_lock(&log_lock);
  *place_word(m, pl) = ref_value(m, r);
  *place_ref(m, pl) = r;
  if (pl.kind == PL_RES)
    fz_unlock(&log_lock);
}

static void store_ref(mut_t *m, place_t pl, ref_t r) {
  begin_change(m);
  place_store(m, pl, r);
  end_change(m);
}

// ---------------------------------------------------------------------------
// The model's entries

static int free_entry(mut_t *m) {
  for (int e = 0; e < MAXOBJ; e++)
    if (m->obj[e].hidden == 0)
      return e;
  return -1;
}

// compact frees the entries the model no longer needs: unreachable, not kept
// by a pending finalizer, no finalizer pending.
static void compact(mut_t *m) {
  compute_keep(m);
  for (int e = 0; e < MAXOBJ; e++)
    if (m->obj[e].hidden != 0 && !m->keep[e] && m->obj[e].fin != FIN_SET)
      m->obj[e].hidden = 0;
  for (int e = 0; e < MAXOBJ; e++)
    for (int i = 0; i < MAXLINK; i++)
      if (m->obj[e].link[i].to >= 0 && m->obj[m->obj[e].link[i].to].hidden == 0)
        m->obj[e].link[i].to = -1;
}

static int new_entry(mut_t *m) {
  int e = free_entry(m);
  if (e < 0) {
    compact(m);
    e = free_entry(m);
  }
  return e;
}

// adopt records object p (size bytes, zeroed by gomem) as entry e and writes
// its body.
static void adopt(mut_t *m, int e, void *p, size_t size, int scan) {
  FZ_CHECK(p != NULL, "gm_alloc%s(%zu) returned NULL", scan ? "" : "_noscan", size);
  obj_t *o = &m->obj[e];
  *o = (obj_t){.hidden = hide(p),
               .serial = atomic_fetch_add(&serials, 1) + 1,
               .size = (uint32_t)size,
               .scan = (uint8_t)scan,
               .tiny = (uint8_t)(!scan && size <= 16),
               .dead_gc = -1};
  for (int i = 0; i < MAXLINK; i++)
    o->link[i].to = -1;
  const unsigned char *c = p;
  for (size_t i = 0; i < size; i++)
    FZ_CHECK(c[i] == 0, "gm_alloc%s(%zu) = %p: byte %zu is not zero", scan ? "" : "_noscan", size,
             p, i);
  FZ_CHECK(gm_owns(p), "gm_owns(%p) is false for a new GC object", p);
  write_body(p, o->serial, size, scan);
}

static size_t pick_gc_size(fz_in_t *in) {
  unsigned v = fz_u16(in), lo = v & 0xfff;
  switch (v >> 12) {
  case 0:
  case 1:
  case 2:
  case 3:
    return lo % 16; // tiny when pointer-free
  case 4:
  case 5:
  case 6:
  case 7:
  case 8:
    return 16 + lo % 240;
  case 9:
  case 10:
  case 11:
    return lo % 2048;
  case 12:
  case 13:
    return (size_t)lo * 8 + (v & 7); // up to 32 KiB
  case 14:
    return 32769 + (size_t)lo * 24; // large, up to 128 KiB
  default:
    return (lo & 31) == 0 ? 131072 + (size_t)lo * 224 : 32768 + lo; // rarely up to 1 MiB
  }
}

// ---------------------------------------------------------------------------
// Operations

// op_alloc: allocate an object and store it in a place.
FZ_NOINLINE static void op_alloc(mut_t *m) {
  unsigned kind = fz_u8(&m->in);
  size_t size = pick_gc_size(&m->in);
  place_t pl = pick_place(m, 0);
  int e = new_entry(m);
  if (e < 0)
    return;
  int scan = kind % 3 != 0;
  void *p = scan ? gm_alloc(size) : gm_alloc_noscan(size);
  pin(m, 0, p);
  adopt(m, e, p, size, scan);
  uint32_t off = kind / 3 % 4 == 0 && size > 0 ? (uint32_t)(fz_u16(&m->in) % size) : 0;
  store_ref(m, pl, (ref_t){(int16_t)e, off});
  unpin(m, 0);
}

// op_link: store a reference to a reachable object (its start or inside).
FZ_NOINLINE static void op_link(mut_t *m) {
  int e = pick_reachable(m, fz_u8(&m->in));
  unsigned v = fz_u16(&m->in);
  place_t pl = pick_place(m, 0);
  if (e < 0)
    return;
  uint32_t off = v % 2 == 0 || m->obj[e].size == 0 ? 0 : (uint32_t)(v / 2 % m->obj[e].size);
  store_ref(m, pl, (ref_t){(int16_t)e, off});
}

FZ_NOINLINE static void op_drop(mut_t *m) {
  place_t pl = pick_place(m, 1);
  store_ref(m, pl, (ref_t){-1, 0});
}

static void range_clear(mut_t *m, int r) {
  for (int i = 0; i < RANGE_WORDS; i++) {
    m->range[r].mem[i] = 0;
    m->range[r].word[i] = (ref_t){-1, 0};
  }
}

// op_range toggles root range r: added (memory from malloc or mmap on first
// use), or removed (its words cleared: they no longer keep anything).
FZ_NOINLINE static void op_range(mut_t *m) {
  unsigned v = fz_u8(&m->in);
  range_t *g = &m->range[v % NRANGE];
  if (g->mem == NULL) {
    g->mmapped = v / NRANGE % 2;
    g->mem = g->mmapped
                 ? mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                 : malloc(RANGE_WORDS * sizeof(uintptr_t));
    FZ_CHECK(g->mem != NULL && g->mem != MAP_FAILED, "no memory for a root range");
    range_clear(m, (int)(v % NRANGE));
  }
  if (!g->active) {
    FZ_CHECK(gm_add_roots(g->mem, g->mem + RANGE_WORDS) == 0, "gm_add_roots failed");
    g->active = 1;
    return;
  }
  begin_change(m);
  gm_remove_roots(g->mem, g->mem + RANGE_WORDS);
  g->active = 0;
  range_clear(m, (int)(v % NRANGE));
  end_change(m);
}

static void range_release(mut_t *m, int r) {
  range_t *g = &m->range[r];
  if (g->active)
    gm_remove_roots(g->mem, g->mem + RANGE_WORDS);
  if (g->mem != NULL && g->mmapped)
    munmap(g->mem, 4096);
  else
    free(g->mem);
  *g = (range_t){0};
}

// tiny_ok: whether the operations gated by GOMEM_FUZZ_TINY may take e.
static int tiny_ok(const mut_t *m, int e) {
  return tiny_ops || !is_tiny(&m->obj[e]);
}

FZ_NOINLINE static void op_finalizer(mut_t *m) {
  unsigned v = fz_u8(&m->in);
  int e = pick_reachable(m, fz_u8(&m->in));
  if (e < 0 || m->obj[e].shared || !tiny_ok(m, e))
    return;
  obj_t *o = &m->obj[e];
  if (v % 5 == 0) {
    gm_set_finalizer(addr_of(m, e), NULL, NULL);
    o->fin = FIN_NONE;
    return;
  }
  m->version[e] = (uint16_t)(m->version[e] + 1 ? m->version[e] + 1 : 1);
  o->fin_version = m->version[e];
  o->resurrect = v % 5 == 1;
  o->fin = FIN_SET;
  gm_set_finalizer(addr_of(m, e), fin_fn, (void *)make_arg(m, e));
}

// held_only_by_reachable: whether every link to e comes from a reachable
// object (an unreachable object's words cannot be updated, so e must not be
// freed or moved under it).
static int held_only_by_reachable(const mut_t *m, int e) {
  for (int x = 0; x < MAXOBJ; x++)
    for (int i = 0; m->obj[x].hidden != 0 && !m->reach[x] && i < MAXLINK; i++)
      if (m->obj[x].link[i].to == e)
        return 0;
  return 1;
}

// redirect replaces every reference to entry from in a place the program
// holds with one to entry to (-1: none), keeping offsets that still fit.
static void redirect(mut_t *m, int from, int to) {
  uint32_t size = to < 0 ? 0 : m->obj[to].size;
  for (int kind = PL_ROOT; kind <= PL_RES; kind++) {
    int na = kind == PL_ROOT ? NROOT : kind == PL_RANGE ? NRANGE : kind == PL_RES ? NRES : MAXOBJ;
    for (int a = 0; a < na; a++) {
      int nb = kind == PL_RANGE  ? (m->range[a].active ? RANGE_WORDS : 0)
               : kind == PL_LINK ? (m->obj[a].hidden != 0 && m->reach[a] && a != from ? MAXLINK : 0)
                                 : 1;
      for (int b = 0; b < nb; b++) {
        place_t pl = {kind, a, b};
        if (kind == PL_LINK && (size_t)b >= nlinks_of(m->obj[a].size, m->obj[a].scan))
          break;
        ref_t *r = place_ref(m, pl);
        if (r->to == from)
          place_store(m, pl, (ref_t){(int16_t)to, to < 0 || r->off >= size ? 0 : r->off});
      }
    }
  }
}

FZ_NOINLINE static void op_free(mut_t *m) {
  int e = pick_reachable(m, fz_u8(&m->in));
  if (e < 0 || m->obj[e].shared || !tiny_ok(m, e) || !held_only_by_reachable(m, e))
    return;
  void *p = addr_of(m, e);
  pin(m, 0, p); // reachable until freed: the model says so
  begin_change(m);
  redirect(m, e, -1);
  m->obj[e].hidden = 0;
  m->freed_fin += m->obj[e].fin == FIN_SET;
  m->obj[e].fin = FIN_NONE;
  gm_free(p);
  unpin(m, 0);
  end_change(m);
}

// realloc_in_place: the object stayed where it was, with its new size. Its
// links move if the layout changed (8-15 bytes: no tag): written at their new
// place before the tag may overwrite the old one, so that what they point to
// stays referenced.
static void realloc_in_place(mut_t *m, int e, size_t size) {
  obj_t *o = &m->obj[e];
  o->size = (uint32_t)size;
  for (size_t i = 0; i < nlinks_of(size, o->scan); i++)
    *link_word(m, e, i) = ref_value(m, o->link[i]);
  write_body(addr_of(m, e), o->serial, size, o->scan);
}

// realloc_moved: the object moved to q (entry ne); the old one is garbage.
static void realloc_moved(mut_t *m, int e, int ne, unsigned char *q, size_t size) {
  obj_t *o = &m->obj[e], *n = &m->obj[ne];
  const unsigned char *p = addr_of(m, e);
  size_t keep = o->size < size ? o->size : size;
  FZ_CHECK(gm_owns(q) && memcmp(p, q, keep) == 0, "gm_realloc(%p, %zu) = %p lost the prefix",
           (const void *)p, size, (void *)q);
  *n = (obj_t){.hidden = hide(q),
               .serial = atomic_fetch_add(&serials, 1) + 1,
               .size = (uint32_t)size,
               .scan = o->scan,
               .tiny = (uint8_t)(!o->scan && size <= 16),
               .dead_gc = -1};
  size_t nl = nlinks_of(size, o->scan), ol = nlinks_of(o->size, o->scan);
  for (size_t i = 0; i < MAXLINK; i++)
    n->link[i] =
        i < nl && i < ol && first_link(size) == first_link(o->size) ? o->link[i] : (ref_t){-1, 0};
  for (size_t i = 0; i < nl; i++) // links the copy did not bring stay empty
    *link_word(m, ne, i) = ref_value(m, n->link[i]);
  write_body(q, n->serial, size, n->scan);
  redirect(m, e, ne);
}

FZ_NOINLINE static void op_realloc(mut_t *m) {
  int e = pick_reachable(m, fz_u8(&m->in));
  size_t size = pick_gc_size(&m->in);
  if (e < 0 || m->obj[e].shared || !tiny_ok(m, e) || !held_only_by_reachable(m, e))
    return;
  if (m->obj[e].fin == FIN_SET && (m->obj[e].size < 16) != (size < 16))
    return;              // its finalizer's argument says whether it has a tag
  int ne = new_entry(m); // (compacting keeps e: it is reachable)
  if (ne < 0)
    return;
  obj_t *o = &m->obj[e];
  begin_change(m);
  for (size_t i = nlinks_of(size, o->scan); i < nlinks_of(o->size, o->scan); i++)
    place_store(m, (place_t){PL_LINK, e, (int)i}, (ref_t){-1, 0}); // the part given up
  unsigned char *p = addr_of(m, e), *q = gm_realloc(p, size);
  pin(m, 1, q); // (p stays where the model put it until redirect)
  int tiny = q == p ? o->tiny : !o->scan && size <= 16; // its usable size is 0
  FZ_CHECK(q != NULL && (tiny ? gm_usable_size(q) == 0 : gm_usable_size(q) >= size),
           "gm_realloc(%p, %zu) = %p", (void *)p, size, (void *)q);
  FZ_CHECK(!is_tiny(o) || q != p, "gm_realloc(%p, %zu) of a tiny object did not move it",
           (void *)p, size);
  if (q == p)
    realloc_in_place(m, e, size);
  else
    realloc_moved(m, e, ne, q, size);
  unpin(m, 1);
  end_change(m);
}

FZ_NOINLINE static void op_usable(mut_t *m) {
  int e = pick_reachable(m, fz_u8(&m->in));
  unsigned off = fz_u16(&m->in);
  if (e < 0 || !tiny_ok(m, e))
    return;
  const unsigned char *p = addr_of(m, e);
  size_t u = gm_usable_size(p), size = m->obj[e].size;
  if (is_tiny(&m->obj[e]))
    FZ_CHECK(u == 0, "gm_usable_size(%p) = %zu of a tiny object", (const void *)p, u);
  else
    FZ_CHECK(u >= size, "gm_usable_size(%p) = %zu < %zu", (const void *)p, u, size);
  FZ_CHECK(size == 0 || gm_owns(p + off % size), "gm_owns(%p + %zu) is false", (const void *)p,
           (size_t)(off % size));
}

FZ_NOINLINE static void op_gogc(mut_t *m) {
  static const int values[] = {-1, 10, 50, 100, 200, 400};
  int v = values[fz_u8(&m->in) % FZ_ARRAY_LEN(values)];
  if (m->id != 0)
    return;
  int old = gm_set_gc_percent(v);
  FZ_CHECK(old == gogc_model, "gm_set_gc_percent(%d) returned %d, GOGC was %d", v, old, gogc_model);
  gogc_model = v < 0 ? -1 : v;
}

// finalizers_due: whether a finalizer may run now (pending on an object the
// model cannot reach), or must not (its object was freed).
static int finalizers_due(const mut_t *m) {
  for (int e = 0; e < MAXOBJ; e++)
    if (m->obj[e].hidden != 0 && m->obj[e].fin == FIN_SET && !m->reach[e])
      return 1;
  return m->freed_fin > 0;
}

// settle gives the finalizer thread up to a millisecond (50 the first time:
// gomem starts it then) to run what the collection queued, so that its
// events are checked close to the cycle.
static void settle(const mut_t *m) {
  int naps = atomic_load(&fin_ran) ? 50 : 2500;
  for (int i = 0; i < naps && finalizers_due(m); i++) {
    fz_lock(&log_lock);
    int n = fin_log[m->id].n;
    fz_unlock(&log_lock);
    if (n > 0)
      return;
    fz_nap();
  }
}

// clear_stack zeroes dead stack below the caller: stale words of earlier
// operations would keep dropped objects alive (roots are conservative), and
// their finalizers would not run.
FZ_NOINLINE static void clear_stack(void) {
  volatile char pad[32 << 10];
  memset((char *)pad, 0, sizeof pad);
  __asm__ volatile("" : : "r"(pad) : "memory");
}

FZ_NOINLINE static void op_collect(mut_t *m) {
  if (m->id != 0) {
    checkpoint(m, "checkpoint");
    return;
  }
  gm_stats_t before;
  gm_stats(&before);
  clear_stack();
  gm_collect();
  check_gc_stats(m, &before);
  settle(m);
  checkpoint(m, "after gm_collect");
}

// op_churn allocates garbage: collections start, freed memory is reused.
FZ_NOINLINE static void op_churn(mut_t *m) {
  unsigned n = 1 + fz_u8(&m->in) % 64;
  for (unsigned i = 0; i < n; i++) {
    size_t size = pick_gc_size(&m->in) / 4;
    void *p = i % 2 ? gm_alloc(size) : gm_alloc_noscan(size);
    FZ_CHECK(p != NULL, "gm_alloc(%zu) returned NULL", size);
    uint64_t w = 0xDEADBEEFDEADBEEFull; // (tiny objects are aligned to their size only)
    if (size >= 8)
      memcpy(p, &w, 8);
  }
}

// ---------------------------------------------------------------------------
// Shared objects (two-thread mode): immutable, link-free, published in
// fz_gc_shared under shared_lock with their size, kind and serial.

static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static obj_t shared_meta[NSHARED]; // shared_lock

FZ_NOINLINE static void op_share_put(mut_t *m) {
  unsigned k = fz_u8(&m->in) % NSHARED;
  int e = new_entry(m);
  size_t size = pick_gc_size(&m->in);
  if (e < 0)
    return;
  int scan = k % 2;
  void *p = scan ? gm_alloc(size) : gm_alloc_noscan(size);
  pin(m, 0, p);
  adopt(m, e, p, size, scan);
  m->obj[e].shared = 1;
  store_ref(m, (place_t){PL_ROOT, (int)(k % NROOT), 0}, (ref_t){(int16_t)e, 0});
  unpin(m, 0);
  fz_lock(&shared_lock);
  fz_gc_shared[k] = (uintptr_t)addr_of(m, e);
  shared_meta[k] = m->obj[e];
  fz_unlock(&shared_lock);
}

FZ_NOINLINE static void op_share_take(mut_t *m) {
  unsigned k = fz_u8(&m->in) % NSHARED;
  place_t pl = pick_place(m, 0);
  int e = new_entry(m);
  if (e < 0)
    return;
  fz_lock(&shared_lock);
  uintptr_t p = fz_gc_shared[k];
  pin(m, 0, (void *)p); // the other mutator may drop it once the lock is free
  if (p != 0) {
    m->obj[e] = shared_meta[k];
    m->obj[e].dead_gc = -1;
    verify_obj(m, e, "shared object");
  }
  fz_unlock(&shared_lock);
  if (p != 0)
    store_ref(m, pl, (ref_t){(int16_t)e, 0});
  unpin(m, 0);
}

// ---------------------------------------------------------------------------
// Running a mutator

enum {
  OP_ALLOC,
  OP_LINK,
  OP_DROP,
  OP_RANGE,
  OP_FINALIZER,
  OP_FREE,
  OP_REALLOC,
  OP_USABLE,
  OP_GOGC,
  OP_COLLECT,
  OP_CHURN,
  OP_SHARE_PUT,
  OP_SHARE_TAKE,
  OP_CHECK
};

// (A collection scans the program's data and bss: a libFuzzer target's
// 10 MB of bss make it cost about 20 ms; one operation in 32 collects.)
static const uint8_t op_table[32] = {
    OP_ALLOC,     OP_ALLOC,      OP_ALLOC,     OP_ALLOC,     OP_ALLOC, OP_ALLOC, OP_LINK,
    OP_LINK,      OP_LINK,       OP_LINK,      OP_DROP,      OP_DROP,  OP_DROP,  OP_DROP,
    OP_RANGE,     OP_FINALIZER,  OP_FINALIZER, OP_FINALIZER, OP_FREE,  OP_FREE,  OP_REALLOC,
    OP_REALLOC,   OP_USABLE,     OP_GOGC,      OP_COLLECT,   OP_LINK,  OP_CHURN, OP_CHURN,
    OP_SHARE_PUT, OP_SHARE_TAKE, OP_CHECK,     OP_ALLOC};

static int trace; // GOMEM_FUZZ_TRACE=1: print each operation

// run_op runs one operation. The operations are not inlined, so that the
// pointers they held die with their frames, and the stack is cleared before
// a collection, so that these dead frames leave nothing in its frame either.
static void run_op(mut_t *m) {
  unsigned op = op_table[fz_u8(&m->in) % 32];
  if (op == OP_COLLECT)
    clear_stack();
  if (trace)
    fprintf(stderr, "mutator %d op %u at byte %zu, %d reachable\n", m->id, op, m->in.i, m->nreach);
  switch (op) {
  case OP_ALLOC:
    op_alloc(m);
    break;
  case OP_LINK:
    op_link(m);
    break;
  case OP_DROP:
    op_drop(m);
    break;
  case OP_RANGE:
    op_range(m);
    break;
  case OP_FINALIZER:
    op_finalizer(m);
    break;
  case OP_FREE:
    op_free(m);
    break;
  case OP_REALLOC:
    op_realloc(m);
    break;
  case OP_USABLE:
    op_usable(m);
    break;
  case OP_GOGC:
    op_gogc(m);
    break;
  case OP_COLLECT:
    op_collect(m);
    break;
  case OP_CHURN:
    op_churn(m);
    break;
  case OP_SHARE_PUT:
    if (two_threads)
      op_share_put(m);
    break;
  case OP_SHARE_TAKE:
    if (two_threads)
      op_share_take(m);
    break;
  default:
    checkpoint(m, "checkpoint");
    break;
  }
}

static void mut_init(mut_t *m, int id, const uint8_t *data, size_t size, unsigned period) {
  memset(m, 0, offsetof(mut_t, version));
  m->id = id;
  m->in = (fz_in_t){data, size, 0};
  m->period = period;
  for (int i = 0; i < NROOT; i++)
    m->root[i].to = -1;
  for (int i = 0; i < NRES; i++)
    m->res[i].to = -1;
  memset(m->reach, 0, sizeof m->reach);
  m->nreach = 0;
  m->freed_fin = 0;
}

// mut_finish drops every root (the model's objects become garbage).
static void mut_finish(mut_t *m) {
  checkpoint(m, "end of input");
  fz_lock(&log_lock);
  for (int i = 0; i < NRES; i++)
    fz_gc_resurrect[m->id][i] = 0;
  fz_unlock(&log_lock);
  for (int i = 0; i < NROOT; i++)
    fz_gc_roots[m->id][i] = 0;
  for (int r = 0; r < NRANGE; r++)
    range_release(m, r);
}

static int paranoid; // GOMEM_FUZZ_PARANOID=1: roots and reachable objects checked after each op

static void mut_run(mut_t *m) {
  for (unsigned n = 1; fz_more(&m->in); n++) {
    run_op(m);
    if (n % m->period == 0)
      checkpoint(m, "checkpoint");
    else if (paranoid) {
      verify_roots(m, "after an operation");
      verify_reachable(m, "after an operation");
    }
  }
  mut_finish(m);
}

// The second mutator runs on a thread that exits at the end of the input
// (input option bit 3) or on a persistent one that waits for the next input.
static int thread_exit_ok; // GOMEM_FUZZ_THREAD_EXIT
static int two_threads_ok; // GOMEM_FUZZ_TWO_THREADS
static _Atomic int job_posted, job_done;

static void *worker_once(void *arg) {
  mut_run(arg);
  return NULL;
}

static void *worker_loop(void *arg) {
  for (;;) {
    for (int i = 0; !atomic_load(&job_posted); i++)
      i < 1000 ? fz_nap() : (void)usleep(1000); // (idle: rarely awake)
    atomic_store(&job_posted, 0);
    mut_run(arg);
    atomic_store(&job_done, 1);
  }
  return NULL;
}

// run_worker starts the second mutator; wait_worker waits for it to finish.
static void run_worker(int exiting, pthread_t *t) {
  static int loop_started;
  if (exiting) {
    FZ_CHECK(pthread_create(t, NULL, worker_once, &muts[1]) == 0, "cannot start a mutator");
    return;
  }
  if (!loop_started) {
    pthread_t lt;
    FZ_CHECK(pthread_create(&lt, NULL, worker_loop, &muts[1]) == 0, "cannot start a mutator");
    pthread_detach(lt);
    loop_started = 1;
  }
  atomic_store(&job_done, 0);
  atomic_store(&job_posted, 1);
}

static void wait_worker(int exiting, pthread_t t) {
  if (exiting)
    pthread_join(t, NULL);
  else
    while (!atomic_load(&job_done))
      fz_nap();
}

static void *no_op(void *arg) {
  return arg;
}

// ---------------------------------------------------------------------------
// Inputs

static void reset_shared(void) {
  fz_lock(&log_lock);
  generation++;
  memset(fin_log, 0, sizeof fin_log);
  fz_unlock(&log_lock);
  fz_lock(&shared_lock);
  for (int k = 0; k < NSHARED; k++)
    fz_gc_shared[k] = 0;
  fz_unlock(&shared_lock);
}

static void fuzz_setup(void) {
  // A thread first, before anything asks gomem for memory, as libFuzzer's
  // driver does: the same order of gomem's thread keys in every build (it
  // decides which of their destructors runs first: see
  // repro/thread_exit_race.c).
  pthread_t t;
  FZ_CHECK(pthread_create(&t, NULL, no_op, NULL) == 0, "cannot start a thread");
  pthread_join(t, NULL);
  tiny_ops = fz_env_flag("GOMEM_FUZZ_TINY", 1);
  thread_exit_ok = fz_env_flag("GOMEM_FUZZ_THREAD_EXIT", 1);
  two_threads_ok = fz_env_flag("GOMEM_FUZZ_TWO_THREADS", 1);
  trace = fz_env_flag("GOMEM_FUZZ_TRACE", 0);
  paranoid = fz_env_flag("GOMEM_FUZZ_PARANOID", 0);
  gogc_initial = gm_set_gc_percent(100);
  gm_set_gc_percent(gogc_initial);
  gogc_model = gogc_initial;
}

static void fuzz_one(const uint8_t *data, size_t size) {
  unsigned opts = size > 0 ? data[0] : 0;
  unsigned period = 8u << ((opts >> 1) & 3);
  two_threads = (opts & 1) && two_threads_ok;
  int exiting = (opts >> 3 & 1) && thread_exit_ok;
  reset_shared();
  data += size > 0;
  size -= size > 0;
  size_t half = two_threads ? size / 2 : size;
  mut_init(&muts[0], 0, data, half, period);
  pthread_t t = 0;
  if (two_threads) {
    mut_init(&muts[1], 1, data + half, size - half, period);
    run_worker(exiting, &t);
  }
  mut_run(&muts[0]);
  if (two_threads)
    wait_worker(exiting, t);
  if (gogc_model != gogc_initial) {
    FZ_CHECK(gm_set_gc_percent(gogc_initial) == gogc_model, "GOGC changed behind the model");
    gogc_model = gogc_initial;
  }
  reset_shared();
}
