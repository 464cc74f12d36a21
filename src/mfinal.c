// mfinal.c: finalizers, twin of Go's mfinal.go.
//
// gm_set_finalizer records (object -> fn, arg) in an off-heap hash table,
// which the collector does not scan as such: the table keeps its objects
// alive only as described here. During each mark phase the contents of every
// finalizable object are roots (so what it points to stays valid for its
// finalizer, and a finalizable object reachable from another one waits for
// that one: Go's order), and so is every finalizer's argument (Go keeps a
// finalizer's closure alive). After marking, each finalizable object left
// unmarked is marked after all (it survives this cycle), its entry leaves the
// table, and (obj, fn, arg) joins the finalizer queue. The queue is a root
// range, so the object stays valid until its finalizer has run; afterwards,
// if nothing made it reachable again, the next cycle reclaims it. The queue
// has room for every table entry before the world stops (fin_reserve); if the
// OS refused that room, an unmarked object stays in the table, marked, and
// its finalizer waits for a later cycle.
//
// Finalizers run one at a time on gomem's finalizer thread, started at the
// first cycle that queues one. It is a registered thread: the object it is
// finalizing sits on its stack, scanned like any other.
//
// fin_lock (taken with gm_lock: its holders are never stopped) protects the
// table and the queue; the collector reads both with the world stopped.
#include <signal.h>
#include <string.h>

#include "arena.h"
#include "internal.h"
#include "interpose.h"
#include "mallocint.h"
#include "mcleanup.h"
#include "mfinal.h"
#include "mgcalloc.h"
#include "os.h"
#include "threads.h"

typedef struct fin_entry {
  uintptr_t obj; // 0: empty slot; FIN_TOMB: deleted
  void (*fn)(void *, void *);
  void *arg;
  int order; // enum fin_order
} fin_entry_t;

#define FIN_TOMB ((uintptr_t)1)

static gm_mutex_t fin_lock = GM_MUTEX_INIT(RANK_FIN);
static fin_entry_t *table;           // open addressing, linear probing (fin_lock)
static size_t table_cap, table_used; // slots, live + deleted entries (fin_lock)
static _Atomic size_t table_n;       // live entries (written under fin_lock)
static fin_entry_t *queue;           // finalizers to run (fin_lock)
static size_t queue_cap, queue_n;
static _Atomic size_t queue_n_pub; // queue_n, for readers without fin_lock
static pthread_cond_t fin_cond = PTHREAD_COND_INITIALIZER;
static bool fin_thread_started; // fin_lock

static size_t hash(uintptr_t p, size_t cap) {
  return (size_t)((p >> 3) * 0x9e3779b97f4a7c15ULL >> 20) & (cap - 1);
}

static fin_entry_t *table_find(uintptr_t obj) {
  if (table_cap == 0)
    return NULL;
  for (size_t i = hash(obj, table_cap);; i = (i + 1) & (table_cap - 1)) {
    if (table[i].obj == obj)
      return &table[i];
    if (table[i].obj == 0)
      return NULL;
  }
}

static void table_insert_raw(fin_entry_t *t, size_t cap, fin_entry_t e) {
  size_t i = hash(e.obj, cap);
  while (t[i].obj > FIN_TOMB)
    i = (i + 1) & (cap - 1);
  t[i] = e;
}

// table_grow rehashes into a table with room for more entries.
static bool table_grow(void) {
  size_t cap = table_cap ? table_cap * 2 : 1024;
  if (table_n * 4 < table_cap) // mostly tombstones: rehash at the same size
    cap = table_cap;
  fin_entry_t *t = os_reserve(cap * sizeof *t, 0);
  if (t == NULL)
    return false;
  for (size_t i = 0; i < table_cap; i++)
    if (table[i].obj > FIN_TOMB)
      table_insert_raw(t, cap, table[i]);
  if (table)
    os_unmap(table, table_cap * sizeof *table);
  table = t;
  table_cap = cap;
  table_used = table_n;
  return true;
}

// fin_object_start reports whether p is the start of an allocated GC object.
// A tiny object may lie anywhere in its block: its finalizer runs when the
// whole block is unreachable (Go's rule: the block is what is marked).
bool fin_object_start(uintptr_t p) {
  mspan_t *s = spanof(p);
  if (s == NULL || s->kind == SPAN_MANUAL)
    return false;
  if (s->sizeclass == 0)
    return p == s->base;
  uintptr_t off = p - s->base;
  uint32_t idx = (uint32_t)(((uint64_t)off * s->divmul) >> 32);
  if (idx >= s->nelems)
    return false;
  if (gc_is_tiny_span(s))
    return span_allocated(s, (uint16_t)idx);
  return (uintptr_t)idx * s->elemsize == off;
}

bool fin_set(void *ptr, void (*fn)(void *, void *), void *arg, int order,
             void (**old_fn)(void *, void *), void **old_arg) {
  uintptr_t p = (uintptr_t)ptr;
  if (!fin_object_start(p))
    return false;
  threads_register_self_or_die(); // never stopped while holding fin_lock
  gm_lock(&fin_lock);
  fin_entry_t *e = table_find(p);
  *old_fn = e ? e->fn : NULL;
  *old_arg = e ? e->arg : NULL;
  if (fn == NULL) {
    if (e != NULL) {
      e->obj = FIN_TOMB;
      table_n--;
    }
  } else if (e != NULL) {
    e->fn = fn;
    e->arg = arg;
    e->order = order;
  } else {
    if ((table_used + 1) * 2 > table_cap && !table_grow()) {
      gm_unlock(&fin_lock);
      gm_fatal("gm_set_finalizer: out of memory", ptr);
    }
    table_insert_raw(table, table_cap, (fin_entry_t){p, fn, arg, order});
    table_n++;
    table_used++;
  }
  gm_unlock(&fin_lock);
  return true;
}

GM_EXPORT void gm_set_finalizer(void *ptr, void (*fn)(void *, void *), void *arg) {
  void (*old_fn)(void *, void *);
  void *old_arg;
  if (!fin_set(ptr, fn, arg, FIN_ORDERED, &old_fn, &old_arg))
    gm_fatal("gm_set_finalizer: not the start of a GC object", ptr);
}

// fin_forget drops obj's finalizer: gm_free released it.
void fin_forget(uintptr_t obj) {
  cleanup_forget(obj);
  if (relaxed_load(&table_n) == 0)
    return;
  gm_lock(&fin_lock);
  fin_entry_t *e = table_find(obj);
  if (e != NULL) {
    e->obj = FIN_TOMB;
    table_n--;
  }
  gm_unlock(&fin_lock);
}

void fin_for_each(void (*fn)(void *ctx, uintptr_t obj, uintptr_t arg, int order), void *ctx) {
  for (size_t i = 0; i < table_cap; i++)
    if (table[i].obj > FIN_TOMB)
      fn(ctx, table[i].obj, (uintptr_t)table[i].arg, table[i].order);
}

// queue_reserve_locked makes room for `need` queued finalizers.
static bool queue_reserve_locked(size_t need) {
  if (need <= queue_cap)
    return true;
  size_t cap = queue_cap ? queue_cap : 256;
  while (cap < need)
    cap *= 2;
  fin_entry_t *q = os_reserve(cap * sizeof *q, 0);
  if (q == NULL)
    return false;
  if (queue) {
    memcpy(q, queue, queue_n * sizeof *q);
    os_unmap(queue, queue_cap * sizeof *queue);
  }
  queue = q;
  queue_cap = cap;
  return true;
}

void fin_reserve(void) {
  size_t n = relaxed_load(&table_n) + cleanup_count();
  if (n == 0)
    return;
  gm_lock(&fin_lock);
  queue_reserve_locked(queue_n + n);
  gm_unlock(&fin_lock);
}

void fin_queue_roots(root_fn fn, void *ctx) {
  if (queue_n)
    fn(ctx, (uintptr_t)queue, (uintptr_t)(queue + queue_n));
  cleanup_roots(fn, ctx);
}

// A cleanup queued as a finalizer: run_call(fn, arg) calls fn(arg) (the
// entry's fn field is run_call; obj holds fn, no heap address).
static void run_call(void *fnp, void *arg) {
  void (*fn)(void *);
  memcpy(&fn, &fnp, sizeof fn);
  fn(arg);
}
static bool queue_call(void (*fn)(void *), void *arg) {
  if (queue_n == queue_cap && !queue_reserve_locked(queue_n + 1))
    return false;
  queue[queue_n++] = (fin_entry_t){(uintptr_t)fn, run_call, arg, FIN_NO_ORDER};
  return true;
}
static void (*keep_fn)(uintptr_t obj, int order);
static void keep_obj(uintptr_t obj) {
  keep_fn(obj, FIN_ORDERED);
}

// fin_queue_dead: world stopped, marking done.
void fin_queue_dead(bool (*marked)(uintptr_t obj), void (*mark)(uintptr_t obj, int order),
                    bool late) {
  for (size_t i = 0; i < table_cap; i++) {
    fin_entry_t e = table[i];
    if (e.obj <= FIN_TOMB || (e.order == FIN_UNREACHABLE) != late || marked(e.obj))
      continue;
    mark(e.obj, e.order); // (FIN_ORDERED: what it points to is marked already)
    if (queue_n == queue_cap && !queue_reserve_locked(queue_n + 1))
      continue; // no room: it stays in the table, alive, for a later cycle
    queue[queue_n++] = e;
    table[i].obj = FIN_TOMB;
    table_n--;
  }
  if (late) {
    keep_fn = mark;
    cleanup_queue_dead(marked, keep_obj, queue_call);
  }
  relaxed_store(&queue_n_pub, queue_n);
}

// The finalizer thread sleeps on fin_cond under wait_lock, a plain mutex
// never held inside a critical section (a thread stopped while holding
// fin_lock outside one would block the collector).
static gm_mutex_t wait_lock = GM_MUTEX_INIT(RANK_FIN_WAIT);
static bool fin_pending; // wait_lock

static void *fin_main(void *arg) {
  (void)arg;
  gm_tls_m.internal = false; // runs the program's code, and is stopped like its threads
  sigset_t none;
  sigemptyset(&none);
  interpose_sigmask_real(SIG_SETMASK, &none, NULL); // the stop signal must get through
  threads_register_self_or_die();                   // the object being finalized is on its stack
  for (;;) {
    gm_lock(&fin_lock);
    if (queue_n == 0) {
      gm_unlock(&fin_lock);
      gm_lock_stoppable(&wait_lock);
      while (!fin_pending)
        pthread_cond_wait(&fin_cond, &wait_lock.m);
      fin_pending = false;
      gm_unlock_raw(&wait_lock);
      continue;
    }
    fin_entry_t e = queue[--queue_n];
    relaxed_store(&queue_n_pub, queue_n);
    gm_unlock(&fin_lock);
    e.fn((void *)e.obj, e.arg);
  }
  return NULL;
}

// Finalizers run by the program (fin_manual, libgc.so.1's Boehm GC
// semantics): no finalizer thread; after a cycle that queued some, the
// notifier is called, and fin_run_queued runs them in the calling thread,
// never nested in one of its own finalizers.
bool fin_manual;
void (*fin_notifier)(void);
static _Thread_local bool fin_running;

size_t fin_queued(void) {
  return relaxed_load(&queue_n_pub);
}

size_t fin_run_queued(void) {
  if (fin_running || relaxed_load(&queue_n_pub) == 0)
    return 0;
  threads_register_self_or_die(); // the object being finalized is on its stack
  fin_running = true;
  size_t n = 0;
  for (;;) {
    gm_lock(&fin_lock);
    if (queue_n == 0) {
      gm_unlock(&fin_lock);
      break;
    }
    fin_entry_t e = queue[--queue_n];
    relaxed_store(&queue_n_pub, queue_n);
    gm_unlock(&fin_lock);
    e.fn((void *)e.obj, e.arg);
    n++;
  }
  fin_running = false;
  return n;
}

// fin_wake: after a cycle (outside critical sections).
void fin_wake(void) {
  if (fin_manual) {
    if (relaxed_load(&queue_n_pub) != 0 && fin_notifier != NULL)
      fin_notifier();
    return;
  }
  gm_lock(&fin_lock);
  bool queued = queue_n != 0, start = queued && !fin_thread_started;
  if (start)
    fin_thread_started = true;
  gm_unlock(&fin_lock);
  if (!queued)
    return;
  if (start && interpose_create_internal(fin_main, NULL) != 0) {
    gm_lock(&fin_lock);
    fin_thread_started = false;
    gm_unlock(&fin_lock);
    return;
  }
  gm_lock_stoppable(&wait_lock); // its holder may be stopped
  fin_pending = true;
  pthread_cond_signal(&fin_cond);
  gm_unlock_raw(&wait_lock);
}

// ---------------------------------------------------------------------------
// Weak links (Boehm's disappearing links): (link, obj) pairs in an off-heap
// open-addressing table keyed by the link's address (fin_lock), which the
// collector does not scan; a long link's key has bit 0 set (links are
// word-aligned). After marking, with the world stopped and before
// finalizers are queued, a short pair whose link lies in a dead GC object is
// dropped, and one whose object is unmarked has its link cleared (NULL) and
// is dropped: the link is cleared before the object's finalizer, if any,
// runs. Long pairs get the same treatment after the objects of queued
// finalizers are marked: a long link survives while a finalizer may still
// make its object reachable (Boehm's long links).

typedef struct weak_entry {
  uintptr_t link; // 0: empty slot; FIN_TOMB: deleted
  uintptr_t obj;
} weak_entry_t;

static weak_entry_t *weak;             // (fin_lock)
static size_t weak_cap, weak_used;     // slots; live + deleted (fin_lock)
static _Atomic size_t weak_n;          // live entries (written under fin_lock)

static size_t weak_slot(uintptr_t link, size_t cap) {
  return (size_t)((link >> 3) * 0x9e3779b97f4a7c15ull >> 20) & (cap - 1);
}

static weak_entry_t *weak_find(uintptr_t link) {
  if (weak_cap == 0)
    return NULL;
  for (size_t i = weak_slot(link, weak_cap);; i = (i + 1) & (weak_cap - 1)) {
    if (weak[i].link == link)
      return &weak[i];
    if (weak[i].link == 0)
      return NULL;
  }
}

static void weak_insert_raw(weak_entry_t *t, size_t cap, weak_entry_t e) {
  size_t i = weak_slot(e.link, cap);
  while (t[i].link > FIN_TOMB)
    i = (i + 1) & (cap - 1);
  t[i] = e;
}

static bool weak_grow(void) {
  size_t cap = weak_cap ? weak_cap * 2 : 1024;
  if (weak_n * 4 < weak_cap)
    cap = weak_cap;
  weak_entry_t *t = os_reserve(cap * sizeof *t, 0);
  if (t == NULL)
    return false;
  for (size_t i = 0; i < weak_cap; i++)
    if (weak[i].link > FIN_TOMB)
      weak_insert_raw(t, cap, weak[i]);
  if (weak)
    os_unmap(weak, weak_cap * sizeof *weak);
  weak = t;
  weak_cap = cap;
  weak_used = weak_n;
  return true;
}

static void weak_drop(weak_entry_t *e) {
  e->link = FIN_TOMB;
  relaxed_store(&weak_n, weak_n - 1);
}

int fin_weak_register(void **link, void *obj, bool is_long) {
  uintptr_t key = (uintptr_t)link | is_long;
  threads_register_self_or_die(); // never stopped while holding fin_lock
  gm_lock(&fin_lock);
  int r = 0;
  if (weak_find(key) != NULL) {
    r = 1;
  } else if ((weak_used + 1) * 2 > weak_cap && !weak_grow()) {
    r = -1;
  } else {
    weak_insert_raw(weak, weak_cap, (weak_entry_t){key, (uintptr_t)obj});
    relaxed_store(&weak_n, weak_n + 1);
    weak_used++;
  }
  gm_unlock(&fin_lock);
  return r;
}

bool fin_weak_unregister(void **link, bool is_long) {
  if (relaxed_load(&weak_n) == 0)
    return false;
  gm_lock(&fin_lock);
  weak_entry_t *e = weak_find((uintptr_t)link | is_long);
  if (e != NULL)
    weak_drop(e);
  gm_unlock(&fin_lock);
  return e != NULL;
}

int fin_weak_move(void **link, void **new_link, bool is_long) {
  uintptr_t key = (uintptr_t)link | is_long, new_key = (uintptr_t)new_link | is_long;
  threads_register_self_or_die();
  gm_lock(&fin_lock);
  int r = 0;
  weak_entry_t *e = weak_find(key);
  if (e == NULL) {
    r = -1;
  } else if (new_key != key) {
    if (weak_find(new_key) != NULL) {
      r = 1;
    } else if ((weak_used + 1) * 2 > weak_cap && !weak_grow()) {
      r = -2;
    } else {
      e = weak_find(key); // (the table may have moved)
      uintptr_t obj = e->obj;
      weak_drop(e);
      weak_used++;
      weak_insert_raw(weak, weak_cap, (weak_entry_t){new_key, obj});
      relaxed_store(&weak_n, weak_n + 1);
    }
  }
  gm_unlock(&fin_lock);
  return r;
}

void fin_weak_forget_within(uintptr_t lo, uintptr_t hi) {
  if (relaxed_load(&weak_n) == 0)
    return;
  gm_lock(&fin_lock);
  for (size_t i = 0; i < weak_cap; i++) {
    uintptr_t link = weak[i].link & ~(uintptr_t)1;
    if (weak[i].link > FIN_TOMB && link >= lo && link < hi)
      weak_drop(&weak[i]);
  }
  gm_unlock(&fin_lock);
}

void fin_weak_clear(bool (*alive)(uintptr_t addr), bool is_long) {
  if (!is_long)
    cleanup_clear_handles(alive); // (Go's weak pointers are short)
  if (relaxed_load(&weak_n) == 0)
    return;
  for (size_t i = 0; i < weak_cap; i++) {
    weak_entry_t *e = &weak[i];
    if (e->link <= FIN_TOMB || (e->link & 1) != (uintptr_t)is_long)
      continue;
    uintptr_t link = e->link & ~(uintptr_t)1;
    if (!alive(link)) { // the link itself is in a dead object
      weak_drop(e);
    } else if (!alive(e->obj)) {
      *(void **)link = NULL;
      weak_drop(e);
    }
  }
}

void fin_init(void) {
  cleanup_init();
  lock_fork_register(&fin_lock);
  lock_fork_register(&wait_lock);
}

// fin_fork_child: the finalizer thread is gone (its lock was taken by
// lock.c's fork handlers); it restarts on demand.
void fin_fork_child(void) {
  pthread_cond_init(&fin_cond, NULL);
  fin_thread_started = false;
}
