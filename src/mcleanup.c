// mcleanup.c: weak pointers and cleanups, twins of Go 1.24's weak.Pointer
// (the runtime's weak handles) and runtime.AddCleanup (mcleanup.go).
//
// Weak handles. gm_weak_make(p) returns p's handle: a 16-byte pointer-free
// GC object (a cell) whose first word holds p's address. The collector never
// scans a cell, so a handle does not keep its object alive; the program keeps
// the handle alive as it keeps any GC pointer. An off-heap map, object ->
// cell, makes handles canonical: while p's cell lives, every gm_weak_make(p)
// returns it, so handles to one object compare equal. After marking, with
// the world stopped and before any finalizer is queued (mfinal.c calls
// cleanup_clear_handles), the cell of an unmarked object is cleared, and an
// entry whose object or cell is unmarked leaves the map: every handle to an
// object yields NULL from the same cycle on, before a finalizer could make
// the object reachable again, and never yields it again. gm_weak_get, while
// marking runs beside the program, shades the object it returns (Go's
// weak.Pointer.Value does the same), so the new reference cannot hide from
// the marker.
//
// Cleanups. gm_add_cleanup(p, fn, arg) stores a record (the object's address
// complemented, fn) and, in a parallel array, arg; the records of one object
// are chained from an off-heap map, object -> first record. The arg array is
// a root range (an argument lives as long as its record); the records hold
// no address the scan could take for an object. After marking, once the
// finalizers of this cycle are queued (their objects marked for them), every
// record of an unmarked object moves to the finalizer queue as a call
// fn(arg): a finalizable object's cleanups run only after its finalizer ran
// and the object became unreachable again (Go's order). A handle is
// gm_cleanup_t = generation << 32 | (index + 1): gm_cancel_cleanup of a
// record that ran or was reused does nothing.
//
// gm_free of an object clears its weak handle and drops its cleanups, as it
// drops its finalizer: the program released the object itself.
//
// Locking: cleanup_lock (gm_lock: its holders are never stopped) protects
// the maps and the records; the collector reads them with the world stopped.
#include "mcleanup.h"
#include "internal.h"
#include "mfinal.h"
#include "mgcalloc.h"
#include "mgcmark.h"
#include "omap.h"
#include "threads.h"
#include "vec.h"

typedef struct record {
  uintptr_t hidden; // ~object; 0: a free record
  void (*fn)(void *arg);
  uint32_t next; // the object's next record, or the next free one (index + 1; 0: none)
  uint32_t gen;  // bumped when the record is freed
} record_t;

static gm_mutex_t cleanup_lock = GM_MUTEX_INIT(RANK_CLEANUP);
static omap_t handles;                  // object -> cell (cleanup_lock)
static omap_t chains;                   // object -> first record + 1 (cleanup_lock)
static vec_t recs = VEC_INIT(record_t); // (cleanup_lock)
static vec_t args = VEC_INIT(void *);   // recs' arguments: a root range (cleanup_lock)
static uint32_t free_rec;               // first free record + 1 (cleanup_lock)
static _Atomic size_t live_recs;        // records in use (written under cleanup_lock)
static _Atomic size_t live_handles;     // handles.n (written under cleanup_lock)

// ---------------------------------------------------------------------------
// Weak handles

typedef struct gm_weak {
  _Atomic uintptr_t obj; // cleared by the collector
  uintptr_t pad;         // (16 bytes: never a tiny object, whose block would outlive it)
} cell_t;

// shade: while marking runs beside the program, the caller is about to hold
// p, which it read from memory the marker does not watch (a cell, the map):
// p must count as reached. (Outside marking, and in a stop, there is nothing
// to do: a stop clears a dead cell before any thread could read it.)
static void shade(void *p) {
  if (!relaxed_load(&gc_blacken))
    return;
  m_acquire(); // (no stop in here: gc_blacken stays as read)
  uintptr_t w = (uintptr_t)p;
  if (relaxed_load(&gc_blacken))
    gc_mark_shade(&w, 1);
  m_release();
}

GM_EXPORT gm_weak_t gm_weak_make(void *p) {
  if (p == NULL)
    return NULL;
  if (!fin_object_start((uintptr_t)p)) {
    errno = EINVAL;
    return NULL;
  }
  cell_t *fresh = gm_alloc_noscan(sizeof(cell_t)), *cell = fresh;
  if (fresh == NULL)
    return NULL;
  relaxed_store(&fresh->obj, (uintptr_t)p);
  threads_register_self_or_die(); // never stopped while holding cleanup_lock
  gm_lock(&cleanup_lock);
  omap_slot_t *s = omap_get(&handles, (uintptr_t)p);
  if (s != NULL)
    cell = (cell_t *)s->val;
  else if (!omap_put(&handles, (uintptr_t)p, (uintptr_t)fresh))
    cell = NULL;
  relaxed_store(&live_handles, handles.n);
  gm_unlock(&cleanup_lock);
  if (cell == NULL)
    errno = ENOMEM;
  else if (cell != fresh)
    shade(cell);    // (an old cell, known to the map only as a number)
  gm_keep_alive(p); // (so is p)
  return cell;
}

GM_EXPORT void *gm_weak_get(gm_weak_t w) {
  if (w == NULL)
    return NULL;
  m_acquire(); // (no stop clears the cell between the load and the shade)
  void *p = (void *)relaxed_load(&w->obj);
  if (p != NULL)
    shade(p);
  m_release();
  return p;
}

GM_EXPORT GM_NOINLINE void gm_keep_alive(const void *p) {
  __asm__ volatile("" : : "r"(p) : "memory");
}

// cleanup_clear_handles (world stopped, after the drain): see the top.
void cleanup_clear_handles(bool (*alive)(uintptr_t addr)) {
  for (size_t i = 0; handles.n != 0 && i < handles.cap; i++) {
    omap_slot_t *s = &handles.t[i];
    if (!omap_live(s))
      continue;
    bool obj_alive = alive(s->key), cell_alive = alive(s->val);
    if (!obj_alive && cell_alive)
      relaxed_store(&((cell_t *)s->val)->obj, 0);
    if (!obj_alive || !cell_alive)
      omap_del_slot(&handles, s);
  }
  relaxed_store(&live_handles, handles.n);
}

// ---------------------------------------------------------------------------
// Cleanups

static record_t *rec(uint32_t i1) {
  return vec_at(&recs, i1 - 1);
}
static void **arg_of(uint32_t i1) {
  return vec_at(&args, i1 - 1);
}

// rec_new returns a free record's index + 1 (0 when out of memory).
static uint32_t rec_new(void) {
  if (free_rec != 0) {
    uint32_t i1 = free_rec;
    free_rec = rec(i1)->next;
    return i1;
  }
  if (recs.n >= UINT32_MAX - 1 || !vec_reserve(&recs, recs.n + 1) ||
      !vec_reserve(&args, args.n + 1))
    return 0;
  *(record_t *)vec_push(&recs) = (record_t){0, NULL, 0, 1};
  *(void **)vec_push(&args) = NULL;
  return (uint32_t)recs.n;
}

static void rec_free(uint32_t i1) {
  record_t *r = rec(i1);
  r->hidden = 0;
  r->fn = NULL;
  r->gen++;
  r->next = free_rec;
  *arg_of(i1) = NULL;
  free_rec = i1;
  relaxed_store(&live_recs, live_recs - 1);
}

GM_EXPORT gm_cleanup_t gm_add_cleanup(void *p, void (*fn)(void *arg), void *arg) {
  if (p == NULL || fn == NULL || !fin_object_start((uintptr_t)p)) {
    errno = EINVAL;
    return 0;
  }
  threads_register_self_or_die();
  gm_lock(&cleanup_lock);
  omap_slot_t *s = omap_get(&chains, (uintptr_t)p);
  uint32_t i1 = rec_new();
  if (i1 != 0 && (s != NULL || omap_put(&chains, (uintptr_t)p, 0))) {
    s = omap_get(&chains, (uintptr_t)p);
    *rec(i1) = (record_t){~(uintptr_t)p, fn, (uint32_t)s->val, rec(i1)->gen};
    *arg_of(i1) = arg;
    s->val = i1;
    relaxed_store(&live_recs, live_recs + 1);
  } else if (i1 != 0) { // no map slot: give the record back
    rec(i1)->next = free_rec;
    free_rec = i1;
    i1 = 0;
  }
  gm_cleanup_t id = i1 ? (gm_cleanup_t)rec(i1)->gen << 32 | i1 : 0;
  gm_unlock(&cleanup_lock);
  gm_keep_alive(p);
  if (id == 0)
    errno = ENOMEM;
  return id;
}

// unlink removes record i1 from its object's chain (under cleanup_lock).
static void unlink_rec(uint32_t i1) {
  uintptr_t obj = ~rec(i1)->hidden;
  omap_slot_t *s = omap_get(&chains, obj);
  uint32_t *at = s != NULL ? (uint32_t *)&s->val : NULL;
  while (at != NULL && *at != 0 && *at != i1)
    at = &rec(*at)->next;
  if (at != NULL && *at == i1)
    *at = rec(i1)->next;
  if (s != NULL && s->val == 0)
    omap_del_slot(&chains, s);
}

GM_EXPORT void gm_cancel_cleanup(gm_cleanup_t id) {
  uint32_t i1 = (uint32_t)id, gen = (uint32_t)(id >> 32);
  if (i1 == 0 || relaxed_load(&live_recs) == 0)
    return;
  threads_register_self_or_die();
  gm_lock(&cleanup_lock);
  if (i1 <= recs.n && rec(i1)->gen == gen && rec(i1)->hidden != 0) {
    unlink_rec(i1);
    rec_free(i1);
  }
  gm_unlock(&cleanup_lock);
}

// cleanup_forget: gm_free released obj (see the top).
void cleanup_forget(uintptr_t obj) {
  if (relaxed_load(&live_handles) == 0 && relaxed_load(&live_recs) == 0)
    return;
  gm_lock(&cleanup_lock);
  omap_slot_t *s = omap_get(&handles, obj);
  if (s != NULL) {
    relaxed_store(&((cell_t *)s->val)->obj, 0);
    omap_del_slot(&handles, s);
    relaxed_store(&live_handles, handles.n);
  }
  s = omap_get(&chains, obj);
  if (s != NULL) {
    for (uint32_t i1 = (uint32_t)s->val, next; i1 != 0; i1 = next) {
      next = rec(i1)->next;
      rec_free(i1);
    }
    omap_del_slot(&chains, s);
  }
  gm_unlock(&cleanup_lock);
}

size_t cleanup_count(void) {
  return relaxed_load(&live_recs);
}

void cleanup_roots(root_fn fn, void *ctx) {
  if (args.n != 0)
    fn(ctx, (uintptr_t)args.v, (uintptr_t)((void **)args.v + args.n));
}

// cleanup_queue_dead (world stopped, marking done, finalizers queued): the
// records of every unmarked object go to push (fn, arg). When push has no
// room (the OS refused it), the object is marked instead (keep), so that
// its address is not reused while its records wait for a later cycle.
void cleanup_queue_dead(bool (*marked)(uintptr_t obj), void (*keep)(uintptr_t obj),
                        bool (*push)(void (*fn)(void *), void *arg)) {
  for (size_t i = 0; chains.n != 0 && i < chains.cap; i++) {
    omap_slot_t *s = &chains.t[i];
    if (!omap_live(s) || marked(s->key))
      continue;
    while (s->val != 0 && push(rec((uint32_t)s->val)->fn, *arg_of((uint32_t)s->val))) {
      uint32_t i1 = (uint32_t)s->val;
      s->val = rec(i1)->next;
      rec_free(i1);
    }
    if (s->val != 0)
      keep(s->key);
    else
      omap_del_slot(&chains, s);
  }
}

void cleanup_init(void) {
  lock_fork_register(&cleanup_lock);
}
