// interpose.c: the C library functions the collector wraps (see
// interpose.h), resolved to the next definition (the C library's, or a
// sanitizer's) with dlsym(RTLD_NEXT).
//
// pthread_create. A new thread's start routine and argument travel in a start
// block (off-heap), which is a root until the thread has registered and taken
// them onto its own stack: the argument is often the only reference to a GC
// object. thread_start registers the thread, unblocks the stop signal it may
// have inherited blocked, and runs the routine.
//
// pthread_sigmask / sigprocmask. "Block every signal in worker threads" is a
// common pattern; a registered thread that blocks the stop signal could
// never be stopped and every collection would hang. While the collector is in
// use (gc_is_inited), the stop signal is taken out of every set these calls
// block (Boehm GC does the same); before, they are passed through unchanged,
// so a program that never collects is not affected. A thread that blocked the
// signal before the collector started is named, and the process aborts, at
// the first stop it does not answer (stw.c).
//
// dlopen and dlclose are not wrapped: glibc resolves RPATH from dlopen's
// caller, and roots.c checks the loader's list with the world stopped.
#include <dlfcn.h>
#include <errno.h>
#include <string.h>

#include "dlist.h"
#include "internal.h"
#include "interpose.h"
#include "mallocint.h"
#include "mfixalloc.h"
#include "mgc.h"
#include "os.h"
#include "stw.h"

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
typedef int (*sigmask_fn)(int, const sigset_t *, sigset_t *);

static _Atomic(create_fn) real_create;
static _Atomic(sigmask_fn) real_pthread_sigmask, real_sigprocmask;

// A thread the program created that has not registered yet.
typedef struct start_block {
  void *(*fn)(void *);
  void *arg;
  struct start_block *next, *prev; // pending list (pending_lock)
} start_block_t;

static gm_mutex_t pending_lock = GM_MUTEX_INIT(RANK_PENDING);
static start_block_t *pending; // pending_lock (gm_lock: never torn at a stop)
static fixalloc_t start_alloc; // start_block_t records
static pthread_once_t alloc_once = PTHREAD_ONCE_INIT;

static void alloc_setup(void) {
  fixalloc_init(&start_alloc, sizeof(start_block_t));
  lock_fork_register(&pending_lock);
}

// resolve returns the next definition of name after gomem's. May allocate.
static void *resolve(const char *name) {
  void *p = os_next_symbol(name);
  if (p == NULL) {
    char buf[96];
    gm_fmt(buf, sizeof buf, "cannot find the C library's %s", name);
    gm_fatal(buf, NULL);
  }
  return p;
}

#define REAL(var, type, name)                                                                      \
  type f = atomic_load_explicit(&var, memory_order_acquire);                                       \
  if (f == NULL) {                                                                                 \
    f = __extension__(type) resolve(name);                                                         \
    atomic_store_explicit(&var, f, memory_order_release);                                          \
  }

static create_fn create_real(void) {
  REAL(real_create, create_fn, "pthread_create")
  return f;
}

int interpose_sigmask_real(int how, const sigset_t *set, sigset_t *old) {
  REAL(real_pthread_sigmask, sigmask_fn, "pthread_sigmask")
  return f(how, set, old);
}

static int sigprocmask_real(int how, const sigset_t *set, sigset_t *old) {
  REAL(real_sigprocmask, sigmask_fn, "sigprocmask")
  return f(how, set, old);
}

// interpose_init resolves every function gomem wraps, and os_thread_create's
// pthread_create: dlsym waits for the dynamic linker's lock, so this runs
// before gc_init takes any lock, and the collector later calls none of them
// for the first time with a lock held. Idempotent; holds no lock.
void interpose_init(void) {
  os_thread_create(NULL, NULL); // resolves only
  (void)create_real();
  sigset_t none;
  sigemptyset(&none);
  interpose_sigmask_real(SIG_BLOCK, &none, NULL);
  sigprocmask_real(SIG_BLOCK, &none, NULL);
}

// ---------------------------------------------------------------------------
// Signal masks

// stoppable_set returns set, or a copy in *tmp without the stop signal when
// the call would block it while the collector is in use.
static const sigset_t *stoppable_set(int how, const sigset_t *set, sigset_t *tmp) {
  if (set == NULL || how == SIG_UNBLOCK || !gc_is_inited() || !sigismember(set, STOP_SIGNAL))
    return set;
  *tmp = *set;
  sigdelset(tmp, STOP_SIGNAL);
  return tmp;
}

GM_EXPORT int pthread_sigmask(int how, const sigset_t *set, sigset_t *old) {
  sigset_t tmp;
  return interpose_sigmask_real(how, stoppable_set(how, set, &tmp), old);
}

GM_EXPORT int sigprocmask(int how, const sigset_t *set, sigset_t *old) {
  sigset_t tmp;
  return sigprocmask_real(how, stoppable_set(how, set, &tmp), old);
}

// ---------------------------------------------------------------------------
// Thread creation

static start_block_t *start_block_new(void *(*fn)(void *), void *arg) {
  pthread_once(&alloc_once, alloc_setup); // (no dynamic linker call inside)
  start_block_t *b = fixalloc_alloc(&start_alloc);
  if (b != NULL) {
    b->fn = fn;
    b->arg = arg;
  }
  return b;
}

static void pending_add(start_block_t *b) {
  gm_lock(&pending_lock);
  DLIST_PUSH(&pending, b);
  gm_unlock(&pending_lock);
}

static void pending_remove(start_block_t *b) {
  gm_lock(&pending_lock);
  DLIST_REMOVE(&pending, b);
  gm_unlock(&pending_lock);
  fixalloc_free(&start_alloc, b);
}

void interpose_pending_roots(root_fn fn, void *ctx) {
  gm_lock(&pending_lock); // an unregistered thread (never stopped) may be adding one
  for (start_block_t *b = pending; b; b = b->next)
    fn(ctx, (uintptr_t)b, (uintptr_t)(b + 1));
  gm_unlock(&pending_lock);
}

// thread_start runs first on every thread the program creates: it registers
// the thread (loudly failing: its stack must be a root), or only notes it
// while the collector is not in use (threads.h), lets the stop signal
// through, then takes fn and arg off the start block (from then on the
// thread's own stack or registers hold them) and runs fn.
static void *thread_start(void *p) {
  start_block_t *b = p;
  if (gc_is_inited())
    threads_register_self_or_die();
  else
    threads_note_self(); // the collector is not in use: a record, no bounds
  if (gc_is_inited()) {
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, STOP_SIGNAL);
    interpose_sigmask_real(SIG_UNBLOCK, &stop, NULL);
  }
  void *(*fn)(void *) = b->fn;
  void *arg = b->arg;
  pending_remove(b);
  return fn(arg);
}

GM_EXPORT int pthread_create(pthread_t *restrict t, const pthread_attr_t *restrict attr,
                             void *(*fn)(void *), void *restrict arg) {
  create_fn real = create_real();
  threads_setup();
  start_block_t *b = start_block_new(fn, arg);
  if (b == NULL)
    return EAGAIN;
  pending_add(b);
  int rc = real(t, attr, thread_start, b);
  if (rc != 0)
    pending_remove(b);
  return rc;
}

int interpose_create_internal(void *(*fn)(void *), void *arg) {
  return os_thread_create(fn, arg);
}

// interpose_fork_child (pending_lock is taken by lock.c's fork handlers):
// the start blocks of threads that do not exist in the child are dropped.
void interpose_fork_child(void) {
  pending = NULL;
}
