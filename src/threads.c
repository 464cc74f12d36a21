// threads.c: the collector's thread registry (see threads.h).
//
// A thread is registered by threads_register_self: from interpose.c's
// pthread_create wrapper (threads the program starts once the collector is
// in use), from its first GC allocation, from gm_thread_attach, and by
// threads_init for the main thread and the initialising thread. It leaves
// the registry on the allocator's thread-exit path (mcache_set_exit_hook:
// after its caches are released, so no GC span is swept by an unregistered
// thread) or by gm_thread_detach (which gives its GC caches back first).
#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dlist.h"
#include "internal.h"
#include "mallocint.h"
#include "mfixalloc.h"
#include "mgc.h"
#include "mgcalloc.h"
#include "mgcmark.h"
#include "threads.h"

#define MAIN_STACK_CAP ((uintptr_t)1 << 30) // largest main-thread stack assumed

extern void *__libc_stack_end;

gm_mutex_t threads_lock = GM_MUTEX_INIT(RANK_THREADS);
gthread_t *threads_list;        // threads_lock
static _Atomic size_t nthreads; // records on the list (written under threads_lock)
static pthread_once_t setup_once = PTHREAD_ONCE_INIT;
static fixalloc_t thread_alloc;  // gthread_t records
static uintptr_t page_size;      // immutable after setup
static __thread int registering; // threads_register_self is on this thread's stack
static bool all_bounded;         // threads_init has run: no more notes (threads_lock)
static _Atomic long unnoted;     // threads that could not be noted (out of memory)

pid_t sys_gettid(void) {
  return (pid_t)syscall(SYS_gettid);
}

static void setup(void) {
  page_size = (uintptr_t)sysconf(_SC_PAGESIZE);
  fixalloc_init(&thread_alloc, sizeof(gthread_t));
  lock_fork_register(&threads_lock);
  mcache_set_exit_hook(threads_unregister_self);
}

void threads_setup(void) {
  gm_ensure_init(); // the allocator's thread-exit key
  pthread_once(&setup_once, setup);
}

void threads_lock_acquire(void) {
  gm_lock_stoppable(&threads_lock);
}

void threads_lock_release(void) {
  gm_unlock_raw(&threads_lock);
}

// ---------------------------------------------------------------------------
// The list (threads_lock)

gthread_t *threads_find_locked(pid_t tid) {
  for (gthread_t *r = threads_list; r; r = r->next)
    if (r->tid == tid)
      return r;
  return NULL;
}

static void link_locked(gthread_t *r) {
  DLIST_PUSH(&threads_list, r);
  relaxed_store(&nthreads, relaxed_load(&nthreads) + 1);
}

static void unlink_locked(gthread_t *r) {
  DLIST_REMOVE(&threads_list, r);
  relaxed_store(&nthreads, relaxed_load(&nthreads) - 1);
}

// threads_self_record returns the calling thread's record, or NULL. The main
// thread may have been registered by another thread (then its TLS does not
// name its record): the list is searched by tid. In a stop handler the list
// is stable (the stopper holds threads_lock).
gthread_t *threads_self_record(pid_t tid) {
  gthread_t *r = gm_tls_m.thread;
  return r ? r : threads_find_locked(tid);
}

void threads_drop_dead_locked(void) {
  gthread_t *next;
  for (gthread_t *r = threads_list; r; r = next) {
    next = r->next;
    if (r->dead) {
      unlink_locked(r);
      fixalloc_free(&thread_alloc, r);
    }
  }
}

size_t threads_count(void) {
  return relaxed_load(&nthreads);
}

// ---------------------------------------------------------------------------
// Stack bounds

static uintptr_t main_stack_max(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_STACK, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
      rl.rlim_cur > MAIN_STACK_CAP)
    return MAIN_STACK_CAP;
  return (uintptr_t)rl.rlim_cur;
}

// on_main_stack reports whether sp lies on the initial thread's stack, which
// ends at __libc_stack_end (thread stacks are mapped far below it).
static bool on_main_stack(uintptr_t sp) {
  uintptr_t end = (uintptr_t)__libc_stack_end;
  return sp <= end && end - sp < main_stack_max();
}

// main_stack_bounds: hi is the end of the page holding __libc_stack_end
// (argv and the environment live above it), lo a generous guess from the
// stack limit, mapped_lo the lowest page known to be mapped (at or below
// `seen`, an address on that stack). Calls nothing that allocates.
static void main_stack_bounds(gthread_t *r, uintptr_t seen) {
  uintptr_t end = (uintptr_t)__libc_stack_end;
  r->hi = (end | (page_size - 1)) + 1;
  r->lo = r->hi - main_stack_max();
  r->mapped_lo = (seen < end ? seen : end) & ~(page_size - 1);
}

// thread_stack_bounds: the calling (non-initial) thread's stack from its
// attributes; [lo, hi) covers its TLS and thread descriptor, at the top.
static int thread_stack_bounds(gthread_t *r) {
  pthread_attr_t attr;
  void *addr;
  size_t size;
  if (pthread_getattr_np(pthread_self(), &attr) != 0)
    return -1;
  int rc = pthread_attr_getstack(&attr, &addr, &size);
  pthread_attr_destroy(&attr);
  if (rc != 0)
    return -1;
  r->lo = r->mapped_lo = (uintptr_t)addr;
  r->hi = (uintptr_t)addr + size;
  return 0;
}

static int self_stack_bounds(gthread_t *r) {
  uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
  if (on_main_stack(sp)) {
    main_stack_bounds(r, sp);
    return 0;
  }
  return thread_stack_bounds(r);
}

int threads_stack_bounds(uintptr_t *lo, uintptr_t *hi, uintptr_t *mapped_lo) {
  gthread_t *r = gm_tls_m.thread, tmp;
  if (r == NULL) {
    threads_setup();
    if (self_stack_bounds(&tmp) != 0)
      return -1;
    r = &tmp;
  }
  *lo = r->lo;
  *hi = r->hi;
  *mapped_lo = r->mapped_lo;
  return 0;
}

// ---------------------------------------------------------------------------
// Registration

// thread_new returns a record for the calling thread (self) or for the main
// thread seen from another one; NULL with errno set on failure.
static gthread_t *thread_new(bool self) {
  gthread_t *r = fixalloc_alloc(&thread_alloc);
  if (r == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  if (!self) {
    r->tid = getpid();
    r->primordial = true;
    main_stack_bounds(r, (uintptr_t)__libc_stack_end);
    return r;
  }
  r->tid = sys_gettid();
  r->primordial = r->tid == getpid();
  r->tp = thread_pointer();
  r->self = pthread_self();
  if (self_stack_bounds(r) != 0) {
    fixalloc_free(&thread_alloc, r);
    errno = EAGAIN;
    return NULL;
  }
  r->bounded = true;
  return r;
}

// register_self_locked links r, the caller's new record. A record with the
// same tid is either the main thread registered by threads_init from another
// thread, or that of a thread that died without unregistering (its tid
// reused): r replaces it. Returns the record to free, or NULL.
static gthread_t *register_self_locked(gthread_t *r) {
  gthread_t *old = threads_find_locked(r->tid);
  if (old)
    unlink_locked(old);
  link_locked(r);
  gm_tls_m.thread = r;
  return old;
}

// is_stopper: the caller holds threads_lock between stw_stop and stw_start
// (registering or leaving then would deadlock).
static bool is_stopper(void) {
  return gm_tls_m.stopping;
}

// threads_register_self registers the calling thread; 0 if it is (or is
// being) registered, -1 with errno on failure. Not in a critical section.
int threads_register_self(void) {
  if ((gm_tls_m.thread != NULL && gm_tls_m.thread->bounded) || registering || is_stopper())
    return 0;
  threads_setup();
  registering = 1; // pthread_getattr_np allocates
  gthread_t *r = thread_new(true);
  if (r == NULL) {
    registering = 0;
    return -1;
  }
  threads_lock_acquire();
  gthread_t *old = register_self_locked(r);
  threads_lock_release();
  if (old)
    fixalloc_free(&thread_alloc, old);
  mcache_arm_exit(); // leave the registry at exit
  registering = 0;
  return 0;
}

// threads_register_self_or_die: for callers about to hold GC pointers; an
// unregistered thread's stack would not be scanned.
void threads_register_self_or_die(void) {
  if (unlikely(gm_tls_mcache == &mcache_shared))
    gm_fatal("the collector cannot serve threads that share their TLS (made by clone() "
             "without CLONE_SETTLS)",
             NULL);
  if (likely(gm_tls_m.thread != NULL && gm_tls_m.thread->bounded))
    return;
  if (threads_register_self() != 0)
    gm_fatal("cannot register the thread with the collector (out of memory?)", NULL);
}

// threads_note_self notes the calling thread, new, while the collector is
// not in use: no stack bounds yet (threads_init completes the record). If
// threads_init has run meanwhile, the thread registers in full instead.
void threads_note_self(void) {
  threads_setup();
  gthread_t *r = fixalloc_alloc(&thread_alloc);
  if (r == NULL) {
    atomic_fetch_add(&unnoted, 1); // gc_init will say so
    return;
  }
  r->tid = sys_gettid();
  r->tp = thread_pointer();
  r->self = pthread_self();
  threads_lock_acquire();
  bool late = all_bounded;
  if (!late) {
    link_locked(r);
    gm_tls_m.thread = r;
  }
  threads_lock_release();
  if (late) {
    fixalloc_free(&thread_alloc, r);
    threads_register_self_or_die();
    return;
  }
  mcache_arm_exit(); // leave the registry at exit
}

// bound_noted_locked completes every noted record: a thread's stack bounds
// can be read from another thread (pthread_getattr_np). A noted thread is
// alive: it leaves the list itself, at its exit, under threads_lock.
static void bound_noted_locked(void) {
  for (gthread_t *r = threads_list; r; r = r->next) {
    if (r->bounded)
      continue;
    pthread_attr_t attr;
    void *addr;
    size_t size;
    if (pthread_getattr_np(r->self, &attr) != 0 || pthread_attr_getstack(&attr, &addr, &size) != 0)
      gm_fatal("cannot read the stack bounds of a thread started before the collector", NULL);
    pthread_attr_destroy(&attr);
    r->lo = r->mapped_lo = (uintptr_t)addr;
    r->hi = (uintptr_t)addr + size;
    r->bounded = true;
  }
  all_bounded = true;
}

// register_main registers the main thread from another thread.
static void register_main(void) {
  gthread_t *r = thread_new(false);
  if (r == NULL)
    gm_fatal("cannot register the main thread with the collector (out of memory)", NULL);
  r->bounded = true;
  threads_lock_acquire();
  bool known = threads_find_locked(r->tid) != NULL;
  if (!known)
    link_locked(r);
  threads_lock_release();
  if (known)
    fixalloc_free(&thread_alloc, r);
}

// threads_unregister_self removes the calling thread's record, if any. Not
// in a critical section.
void threads_unregister_self(void) {
  if ((gm_tls_m.thread == NULL && relaxed_load(&nthreads) == 0) || is_stopper())
    return;
  threads_setup();
  if (gm_tls_m.thread != NULL)
    wbbuf_thread_exit(gm_tls_m.thread); // (its buffered pointers are greyed)
  threads_lock_acquire();
  gthread_t *r = threads_self_record(sys_gettid());
  if (r)
    unlink_locked(r);
  gm_tls_m.thread = NULL;
  threads_lock_release();
  if (r)
    fixalloc_free(&thread_alloc, r);
}

// threads_init (gc_init) completes the noted threads' records, and
// registers the main thread and the caller.
void threads_init(void) {
  threads_setup();
  if (atomic_load(&unnoted) != 0)
    gm_fatal("threads started before the collector could not be tracked (out of memory)", NULL);
  threads_lock_acquire();
  bound_noted_locked();
  threads_lock_release();
  if (sys_gettid() != getpid())
    register_main();
  threads_register_self_or_die();
}

GM_EXPORT int gm_thread_attach(void) {
  gc_ensure_init();
  return threads_register_self();
}

// gm_thread_detach: the thread's GC caches go back first, so its next GC
// allocation takes the slow path, which registers it again.
GM_EXPORT void gm_thread_detach(void) {
  if (gc_is_inited())
    gc_release_thread_caches();
  threads_unregister_self();
}

// ---------------------------------------------------------------------------
// fork (threads_lock is taken by lock.c's fork handlers): only the forking
// thread survives.

// survivor finds the forking thread's record: through its TLS, or (the main
// thread registered by another thread) as the record whose stack holds ours.
static gthread_t *survivor(void) {
  if (gm_tls_m.thread)
    return gm_tls_m.thread;
  uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
  for (gthread_t *r = threads_list; r; r = r->next)
    if (sp >= r->lo && sp < r->hi)
      return r;
  return NULL;
}

// threads_fork_child drops every record but the survivor's (their memory is
// not reused: the record allocator's state is the parent's).
void threads_fork_child(void) {
  gthread_t *me = survivor();
  threads_list = NULL;
  relaxed_store(&nthreads, 0);
  if (me) {
    me->tid = sys_gettid();
    me->tp = thread_pointer();
    me->self = pthread_self();
    me->dead = false;
    atomic_store(&me->parked_epoch, 0);
    link_locked(me);
    gm_tls_m.thread = me;
  }
}
