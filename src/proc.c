// proc.c: the collector's view of the process: which threads exist, how to
// stop them, and where their roots are (twin of the thread and signal parts
// of Go's proc.go and of Boehm GC's pthread_stop_world.c).
//
// Threads. Every thread the collector must scan has a record (gthread_t,
// off-heap) on the `threads` list: its kernel tid, its stack bounds and,
// while the world is stopped, its stack pointer and registers. A thread is
// registered by proc_register_self: from the pthread_create wrapper below
// (threads the program starts), from gm_thread_attach, and by proc_init for
// the main thread and the initialising thread. A pthread key destructor
// unregisters it when it exits (return or pthread_exit).
//
// Stopping the world (Boehm's signal protocol):
//   1. proc_stop_world takes threads_lock (held until proc_start_world: no
//      thread registers or leaves meanwhile), makes stop_epoch odd, and sends
//      STOP_SIGNAL to every registered thread but itself with tgkill.
//   2. stop_handler runs on the target thread. Inside an allocator critical
//      section (gm_tls_m.locks > 0) it only sets gm_tls_m.stop_pending; the
//      thread parks from m_release -> proc_stop_deferred when it leaves the
//      section. Otherwise it parks at once: it saves its registers and stack
//      pointer in its record, acknowledges (stop_acks, release), and sleeps
//      on the stop_epoch futex until the epoch changes. Every other signal
//      stays blocked meanwhile, so no program code runs on a parked thread.
//   3. When every signalled thread has acknowledged, the collector reads the
//      records (proc_thread_roots) and scans.
//   4. proc_start_world makes the epoch even, wakes the parked threads and
//      releases threads_lock.
// A thread parks at most once per epoch (gthread.parked_epoch), so a second
// signal (another program's SIGPWR) never acknowledges twice; a SIGPWR that
// arrives while no stop is in progress (even epoch) is ignored.
//
// Races of the critical-section protocol: a stop signal that arrives between
// the decrement of gm_tls_m.locks and the test of stop_pending in m_release
// finds locks == 0 and parks from the handler; stop_pending stays 0, so
// m_release does not park a second time. One that arrives before the
// decrement sets stop_pending, which m_release then sees.
//
// Roots besides stacks: the start blocks of threads created but not yet
// registered (they hold the thread's argument), the writable segments of the
// program and its shared objects (re-read by proc_data_roots_refresh when
// the set of loaded objects changed), and the ranges of gm_add_roots.
// roots_rwlock keeps dlclose from unmapping a segment while a collection
// holds it (collector: write side; dlclose and gm_remove_roots: read side).
//
// Lock order: threads_lock and roots_rwlock are never taken inside a
// critical section; pending_lock, extra_lock and the fixalloc locks are
// allocator-style locks (gm_lock), taken below them.
#include <dlfcn.h>
#include <link.h>
#include <linux/futex.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "internal.h"

#define STOP_SIGNAL SIGPWR
#define STOP_WARN_NS (10ull * 1000000000u)  // silence after which a thread is named
#define STOP_POLL_NS (10 * 1000000)         // stopper's futex timeout while waiting for acks
#define MAIN_STACK_CAP ((uintptr_t)1 << 30) // largest main-thread stack assumed
#define RED_ZONE 128                        // bytes below sp a leaf function may use

// Saved registers of an interrupted thread. x86-64: the general registers and
// the FXSAVE area (xmm0-15 carry pointers in the middle of struct copies).
// Elsewhere: the whole machine context.
#if defined(__x86_64__)
#define SAVED_REG_WORDS (NGREG + 512 / sizeof(uintptr_t))
#else
#define SAVED_REG_WORDS ((sizeof(mcontext_t) + sizeof(uintptr_t) - 1) / sizeof(uintptr_t))
#endif

// TSan runs an asynchronous signal's handler only when the thread enters
// one of its interceptors, or while it waits in one TSan knows to block
// (nanosleep, poll, pthread_join, ...): not in pthread_mutex_lock nor in
// pthread_rwlock_*lock. A registered thread waiting there for threads_lock or
// roots_rwlock, which a stopper holds, would never park. Under TSan such
// waits poll instead (lock_stoppable, below), and a poll that finds a stop in
// progress parks at once rather than wait for TSan to deliver the signal
// (which it may never do for a thread that is exiting).
#if defined(__SANITIZE_THREAD__)
#define STOPPABLE_POLL 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define STOPPABLE_POLL 1
#endif
#endif
#define STOPPABLE_POLL_NS (50 * 1000)

extern void *__libc_stack_end;

__thread gm_m_t gm_tls_m __attribute__((tls_model("initial-exec")));

struct gthread {
  gthread_t *next, *prev; // threads list (threads_lock)
  pid_t tid;              // kernel thread id (threads_lock)
  pthread_t self;         // 0 while only another thread registered it (main)
  uintptr_t lo, hi;       // stack bounds (immutable)
  // mapped_lo: lowest stack address known to be mapped (lo but for the main
  // thread, whose stack grows on demand). Written by the thread itself while
  // parking, read by the stopper after the ack.
  uintptr_t mapped_lo;
  bool dead; // tgkill said ESRCH; dropped at restart (threads_lock)
  // Parking: written by the thread itself before it acknowledges, read by the
  // stopper after it has seen the ack (stop_acks orders them).
  _Atomic uint32_t parked_epoch; // the stop it last parked for
  uintptr_t sp;                  // lowest address of its live stack
  size_t nregs;                  // words in regs (0: spilled on the stack)
  uintptr_t regs[SAVED_REG_WORDS];
};

// A thread the program created that has not registered yet: the collector
// must see arg (a start routine's argument is often its only reference).
typedef struct start_block {
  void *(*fn)(void *);
  void *arg;
  struct start_block *next, *prev; // pending list (pending_lock)
} start_block_t;

typedef struct range {
  uintptr_t lo, hi;
} range_t;

// range_table: a growable array of ranges mapped from the OS.
typedef struct range_table {
  range_t *v;
  size_t n, cap;
} range_table_t;

static pthread_once_t setup_once = PTHREAD_ONCE_INIT;
static pthread_key_t thread_key; // value: the thread's record (destructor unregisters)
static fixalloc_t thread_alloc;  // gthread_t records
static fixalloc_t start_alloc;   // start_block_t records
static uintptr_t page_size;      // immutable after setup

static pthread_mutex_t threads_lock = PTHREAD_MUTEX_INITIALIZER;
static gthread_t *threads;      // threads_lock; read by stop handlers while stopping
static _Atomic size_t nthreads; // records on the list (written under threads_lock)
static bool handler_installed;  // threads_lock

// stop_epoch: odd while the world is stopping or stopped. Written by the
// stopper (threads_lock), read by everyone; parked threads wait on it.
static _Atomic uint32_t stop_epoch;
static _Atomic uint32_t stop_acks; // threads parked in this epoch (futex word)
static _Atomic pid_t stopper_tid;  // the thread stopping the world (never parks)
static uintptr_t stopper_hi;       // its stack top (threads_lock; 0: unknown)

static pthread_mutex_t pending_lock = PTHREAD_MUTEX_INITIALIZER;
static start_block_t *pending; // pending_lock (gm_lock: never torn at a stop)

static pthread_rwlock_t roots_rwlock = PTHREAD_RWLOCK_INITIALIZER;
static __thread int roots_read_depth;               // read holds of this thread (dlclose nesting)
static range_table_t data_ranges;                   // roots_rwlock (write side)
static unsigned long long dl_adds, dl_subs = ~0ull; // roots_rwlock: last set read

static pthread_mutex_t extra_lock = PTHREAD_MUTEX_INITIALIZER;
static range_table_t extra_ranges; // gm_add_roots (extra_lock, taken with gm_lock)

static __thread int registering; // proc_register_self is on this thread's stack

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
typedef int (*dlclose_fn)(void *);
static _Atomic(create_fn) real_create;
static _Atomic(dlclose_fn) real_dlclose;

// ---------------------------------------------------------------------------
// Small helpers: system calls usable in a signal handler.

static pid_t sys_gettid(void) {
  return (pid_t)syscall(SYS_gettid);
}

static void futex_wait(_Atomic uint32_t *word, uint32_t val, long ns) {
  struct timespec ts = {0, ns};
  syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, val, ns ? &ts : NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *word, int n) {
  syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

#ifdef STOPPABLE_POLL
// nap_stoppable parks if a stop is in progress, else sleeps briefly where
// TSan delivers pending signals. The caller is a safe point: outside any
// critical section, holding no lock a stopper needs. Only a thread that
// registered itself parks here: it was on the list when the stopper (which
// holds threads_lock while the epoch is odd) signalled, so the stopper waits
// for it and the list stays put while claim_stop reads it.
static void nap_stoppable(void) {
  if (gm_tls_m.thread != NULL && gm_tls_m.locks == 0 &&
      (atomic_load_explicit(&stop_epoch, memory_order_acquire) & 1))
    proc_stop_deferred();
  struct timespec ts = {0, STOPPABLE_POLL_NS};
  nanosleep(&ts, NULL);
}
#endif

// Waits of a registered thread for a lock a stopper may hold while the
// world is stopped: the thread must stay stoppable meanwhile.
static void lock_stoppable(pthread_mutex_t *m) {
#ifdef STOPPABLE_POLL
  while (pthread_mutex_trylock(m) != 0)
    nap_stoppable();
#else
  pthread_mutex_lock(m);
#endif
}

// proc_lock_stoppable: lock_stoppable for the collector's lock (mgc.c).
void proc_lock_stoppable(pthread_mutex_t *m) {
  lock_stoppable(m);
}

static void rdlock_stoppable(pthread_rwlock_t *l) {
#ifdef STOPPABLE_POLL
  while (pthread_rwlock_tryrdlock(l) != 0)
    nap_stoppable();
#else
  pthread_rwlock_rdlock(l);
#endif
}

static void wrlock_stoppable(pthread_rwlock_t *l) {
#ifdef STOPPABLE_POLL
  while (pthread_rwlock_trywrlock(l) != 0)
    nap_stoppable();
#else
  pthread_rwlock_wrlock(l);
#endif
}

static void threads_lock_acquire(void) {
  gm_assert(gm_tls_m.locks == 0); // a critical section never waits for a stopper
  lock_stoppable(&threads_lock);
}

static void threads_lock_release(void) {
  pthread_mutex_unlock(&threads_lock);
}

static void thread_exit(void *arg) {
  (void)arg;
  proc_unregister_self();
}

static void setup(void) {
  page_size = (uintptr_t)sysconf(_SC_PAGESIZE);
  fixalloc_init(&thread_alloc, sizeof(gthread_t));
  fixalloc_init(&start_alloc, sizeof(start_block_t));
  if (pthread_key_create(&thread_key, thread_exit) != 0)
    gm_fatal("cannot create the thread-registry key", NULL);
}

// proc_setup makes the registry usable; it needs neither the heap nor
// proc_init (threads may be created before gomem initialises).
static void proc_setup(void) {
  pthread_once(&setup_once, setup);
}

// ---------------------------------------------------------------------------
// The thread list (threads_lock)

static gthread_t *find_locked(pid_t tid) {
  for (gthread_t *r = threads; r; r = r->next)
    if (r->tid == tid)
      return r;
  return NULL;
}

static void link_locked(gthread_t *r) {
  r->prev = NULL;
  r->next = threads;
  if (threads)
    threads->prev = r;
  threads = r;
  relaxed_store(&nthreads, relaxed_load(&nthreads) + 1);
}

static void unlink_locked(gthread_t *r) {
  if (r->prev)
    r->prev->next = r->next;
  else
    threads = r->next;
  if (r->next)
    r->next->prev = r->prev;
  relaxed_store(&nthreads, relaxed_load(&nthreads) - 1);
}

// self_record returns the calling thread's record, or NULL. The main thread
// may have been registered by another thread (then its TLS does not name its
// record): the list is searched by tid. In a stop handler the list is stable
// (the stopper holds threads_lock).
static gthread_t *self_record(pid_t tid) {
  gthread_t *r = gm_tls_m.thread;
  return r ? r : find_locked(tid);
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
    main_stack_bounds(r, (uintptr_t)__libc_stack_end);
    return r;
  }
  r->tid = sys_gettid();
  r->self = pthread_self();
  if (self_stack_bounds(r) != 0) {
    fixalloc_free(&thread_alloc, r);
    errno = EAGAIN;
    return NULL;
  }
  return r;
}

// register_self_locked links r, the caller's new record. A record with the
// same tid is either the main thread registered by proc_init from another
// thread, or that of a thread that died without unregistering (its tid
// reused): r replaces it. Returns the record to free, or NULL.
static gthread_t *register_self_locked(gthread_t *r) {
  gthread_t *old = find_locked(r->tid);
  if (old)
    unlink_locked(old);
  link_locked(r);
  gm_tls_m.thread = r;
  return old;
}

// is_stopper: the caller holds threads_lock between proc_stop_world and
// proc_start_world (registering or leaving then would deadlock).
static bool is_stopper(void) {
  pid_t s = atomic_load_explicit(&stopper_tid, memory_order_relaxed);
  return s != 0 && s == sys_gettid();
}

// proc_register_self registers the calling thread; 0 if it is (or is being)
// registered, -1 with errno on failure. Not in a critical section. (A
// stopper is left alone: it may not take threads_lock again.)
int proc_register_self(void) {
  if (gm_tls_m.thread != NULL || registering || is_stopper())
    return 0;
  proc_setup();
  registering = 1; // pthread_getattr_np may allocate, and allocating registers
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
  pthread_setspecific(thread_key, r); // unregisters at exit
  registering = 0;
  return 0;
}

// register_main registers the main thread from another thread (proc_init).
static void register_main(void) {
  gthread_t *r = thread_new(false);
  if (r == NULL)
    return;
  threads_lock_acquire();
  bool known = find_locked(r->tid) != NULL;
  if (!known)
    link_locked(r);
  threads_lock_release();
  if (known)
    fixalloc_free(&thread_alloc, r);
}

// proc_unregister_self removes the calling thread's record, if any. Not in
// a critical section.
void proc_unregister_self(void) {
  if ((gm_tls_m.thread == NULL && relaxed_load(&nthreads) == 0) || is_stopper())
    return;
  proc_setup();
  threads_lock_acquire();
  gthread_t *r = self_record(sys_gettid());
  if (r)
    unlink_locked(r);
  gm_tls_m.thread = NULL;
  threads_lock_release();
  if (r) {
    pthread_setspecific(thread_key, NULL);
    fixalloc_free(&thread_alloc, r);
  }
}

// proc_init registers the main thread and the caller. Idempotent.
void proc_init(void) {
  proc_setup();
  if (sys_gettid() != getpid())
    register_main();
  proc_register_self();
}

size_t proc_thread_count(void) {
  return relaxed_load(&nthreads);
}

GM_EXPORT int gm_thread_attach(void) {
  gm_ensure_init();
  return proc_register_self();
}

GM_EXPORT void gm_thread_detach(void) {
  proc_unregister_self();
}

// ---------------------------------------------------------------------------
// Parking (runs on the stopped thread; async-signal-safe)

// save_context copies the interrupted registers into r and returns the
// interrupted stack pointer (0 if unknown). Reads the kernel's (or the
// sanitizer's) copy of the context, which instrumentation knows nothing of.
__attribute__((no_sanitize_address)) static uintptr_t save_context(gthread_t *r,
                                                                   const ucontext_t *uc) {
  volatile uintptr_t *dst = r->regs; // volatile: no call to an intercepted memcpy
#if defined(__x86_64__)
  const uintptr_t *g = (const uintptr_t *)uc->uc_mcontext.gregs;
  const uintptr_t *fp = (const uintptr_t *)uc->uc_mcontext.fpregs;
  size_t n = 0;
  for (size_t i = 0; i < NGREG; i++)
    dst[n++] = g[i];
  for (size_t i = 0; fp && i < 512 / sizeof(uintptr_t); i++)
    dst[n++] = fp[i];
  r->nregs = n;
  return (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
#else
  const uintptr_t *m = (const uintptr_t *)&uc->uc_mcontext;
  for (size_t i = 0; i < SAVED_REG_WORDS; i++)
    dst[i] = m[i];
  r->nregs = SAVED_REG_WORDS;
  return 0;
#endif
}

// record_sp sets the scan start of r. sp is where the thread's live stack
// begins; an sp off its own stack (an alternate signal stack, or a stack the
// program switched to) falls back to `alt` (the interrupted stack pointer,
// 0 if unknown) or to the whole known stack.
static void record_sp(gthread_t *r, uintptr_t sp, uintptr_t alt) {
  if (!(sp >= r->lo && sp < r->hi)) {
    sp = r->mapped_lo;
    if (alt >= r->lo + RED_ZONE && alt < r->hi) {
      uintptr_t page = alt & ~(page_size - 1); // mapped: the thread was using it
      sp = alt - RED_ZONE >= r->mapped_lo ? alt - RED_ZONE : page < sp ? page : sp;
    }
  }
  if (sp < r->mapped_lo)
    r->mapped_lo = sp & ~(page_size - 1);
  r->sp = sp;
}

// park acknowledges stop e and waits until the world restarts.
static void park(uint32_t e) {
  atomic_fetch_add_explicit(&stop_acks, 1, memory_order_release);
  futex_wake(&stop_acks, 1);
  while (atomic_load_explicit(&stop_epoch, memory_order_acquire) == e)
    futex_wait(&stop_epoch, e, 0);
}

// claim_stop returns r if the calling thread should park for stop e: it is
// registered, is not the stopper, and has not parked for e yet (the
// exchange makes the test and the claim one step, even against a nested
// handler).
static gthread_t *claim_stop(uint32_t e) {
  pid_t tid = sys_gettid();
  if (tid == atomic_load_explicit(&stopper_tid, memory_order_relaxed))
    return NULL;
  gthread_t *r = self_record(tid);
  if (r == NULL || atomic_exchange_explicit(&r->parked_epoch, e, memory_order_relaxed) == e)
    return NULL;
  return r;
}

static void stop_requested(uint32_t e, const ucontext_t *uc) {
  if (gm_tls_m.locks > 0) {
    gm_tls_m.stop_pending = 1; // m_release parks (proc_stop_deferred)
    return;
  }
  gthread_t *r = claim_stop(e);
  if (r == NULL)
    return;
  // The handler's frame lies below the signal frame, which holds the
  // interrupted registers again (and the full vector state) on this stack.
  uintptr_t alt = save_context(r, uc);
  record_sp(r, (uintptr_t)__builtin_frame_address(0), alt);
  park(e);
}

static void stop_handler(int sig, siginfo_t *info, void *uc) {
  (void)sig;
  (void)info;
  int saved_errno = errno;
  atomic_signal_fence(memory_order_seq_cst);
  uint32_t e = atomic_load_explicit(&stop_epoch, memory_order_acquire);
  if (e & 1) // else: not from a stop in progress
    stop_requested(e, uc);
  atomic_signal_fence(memory_order_seq_cst);
  errno = saved_errno;
}

// park_spilled parks with the caller's registers already spilled into the
// caller's frame, which lies above this one.
static GM_NOINLINE void park_spilled(gthread_t *r, uint32_t e) {
  r->nregs = 0;
  record_sp(r, (uintptr_t)__builtin_frame_address(0), 0);
  park(e);
}

// stop_signal_mask: every signal but the synchronous ones (faults must still
// kill a parked thread).
static void stop_signal_mask(sigset_t *s) {
  sigfillset(s);
  sigdelset(s, SIGSEGV);
  sigdelset(s, SIGBUS);
  sigdelset(s, SIGILL);
  sigdelset(s, SIGFPE);
  sigdelset(s, SIGABRT);
}

// proc_stop_deferred parks a thread whose stop signal arrived inside a
// critical section, now that it has left it (locks == 0). Signals are
// blocked meanwhile, as they are in the handler.
GM_NOINLINE void proc_stop_deferred(void) {
  gm_tls_m.stop_pending = 0;
  atomic_signal_fence(memory_order_seq_cst);
  uint32_t e = atomic_load_explicit(&stop_epoch, memory_order_acquire);
  if (!(e & 1))
    return;
  sigset_t block, old;
  stop_signal_mask(&block);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  gthread_t *r = claim_stop(e);
  if (r) {
    __builtin_unwind_init(); // callee-saved registers into this frame
    park_spilled(r, e);
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
}

// ---------------------------------------------------------------------------
// Stopping and starting the world (stopper side)

static void install_handler_locked(void) {
  if (handler_installed)
    return;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = stop_handler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  stop_signal_mask(&sa.sa_mask);
  if (sigaction(STOP_SIGNAL, &sa, NULL) != 0)
    gm_fatal("cannot install the stop signal handler (SIGPWR)", NULL);
  handler_installed = true;
}

// signal_all_locked sends the stop signal to every registered thread but
// tid; returns how many were sent. A thread that no longer exists is marked
// dead (its record goes at restart: stop handlers may be reading the list).
static uint32_t signal_all_locked(pid_t tid) {
  uint32_t sent = 0;
  pid_t pid = getpid();
  for (gthread_t *r = threads; r; r = r->next) {
    if (r->tid == tid || r->dead)
      continue;
    if (syscall(SYS_tgkill, pid, r->tid, STOP_SIGNAL) == 0)
      sent++;
    else if (errno == ESRCH)
      r->dead = true;
    else
      gm_fatal("cannot send the stop signal", NULL);
  }
  return sent;
}

static void warn_silent_locked(uint32_t e, pid_t self) {
  for (gthread_t *r = threads; r; r = r->next) {
    if (r->tid == self || r->dead || atomic_load(&r->parked_epoch) == e)
      continue;
    char buf[128];
    size_t n =
        gm_fmt(buf, sizeof buf,
               "gomem: thread %d does not answer the stop signal (SIGPWR blocked?)\n", (int)r->tid);
    os_write_stderr(buf, n);
  }
}

// resignal_silent_locked sends the stop signal again to the signalled
// threads that have not parked for stop e (a thread parks once per epoch, so
// a repeated signal is harmless; TSan can drop one that arrives while a
// thread starts or exits), marks dead those that no longer exist (a thread
// can end between the signal and its delivery) and returns how many it found.
static uint32_t resignal_silent_locked(uint32_t e, pid_t self) {
  uint32_t gone = 0;
  pid_t pid = getpid();
  for (gthread_t *r = threads; r; r = r->next) {
    if (r->tid == self || r->dead || atomic_load(&r->parked_epoch) == e)
      continue;
    if (syscall(SYS_tgkill, pid, r->tid, STOP_SIGNAL) != 0 && errno == ESRCH) {
      r->dead = true;
      gone++;
    }
  }
  return gone;
}

// wait_acks waits until `want` threads have parked for stop e, naming the
// silent ones once after STOP_WARN_NS without progress.
static void wait_acks(uint32_t want, uint32_t e, pid_t self) {
  uint32_t last = 0;
  uint64_t since = os_nanotime();
  bool warned = false;
  for (;;) {
    uint32_t n = atomic_load_explicit(&stop_acks, memory_order_acquire);
    if (n >= want)
      return;
    if (n == last && os_nanotime() - since > STOP_POLL_NS) {
      uint32_t gone = resignal_silent_locked(e, self);
      want = gone < want ? want - gone : 0;
      if (n >= want)
        return;
    }
    if (n != last) {
      last = n;
      since = os_nanotime();
    } else if (!warned && os_nanotime() - since > STOP_WARN_NS) {
      warn_silent_locked(e, self);
      warned = true;
    }
    futex_wait(&stop_acks, n, STOP_POLL_NS);
  }
}

// self_stack_hi returns the top of the caller's stack, or 0. Before
// threads_lock: it may allocate (pthread_getattr_np).
static uintptr_t self_stack_hi(void) {
  if (gm_tls_m.thread)
    return gm_tls_m.thread->hi;
  gthread_t tmp;
  return self_stack_bounds(&tmp) == 0 ? tmp.hi : 0;
}

void proc_stop_world(void) {
  gm_assert(gm_tls_m.locks == 0);
  proc_setup();
  uintptr_t hi = self_stack_hi();
  threads_lock_acquire();
  stopper_hi = hi;
  install_handler_locked();
  pid_t self = sys_gettid();
  atomic_store(&stopper_tid, self);
  atomic_store(&stop_acks, 0);
  uint32_t e = atomic_load(&stop_epoch) + 1; // odd: stopping
  atomic_store(&stop_epoch, e);
  wait_acks(signal_all_locked(self), e, self);
}

static void drop_dead_locked(void) {
  gthread_t *next;
  for (gthread_t *r = threads; r; r = next) {
    next = r->next;
    if (r->dead) {
      unlink_locked(r);
      fixalloc_free(&thread_alloc, r);
    }
  }
}

void proc_start_world(void) {
  uint32_t e = atomic_load(&stop_epoch);
  gm_assert(e & 1);
  drop_dead_locked();
  atomic_store(&stopper_tid, 0);
  atomic_store_explicit(&stop_epoch, e + 1, memory_order_release);
  futex_wake(&stop_epoch, INT32_MAX);
  threads_lock_release();
}

// ---------------------------------------------------------------------------
// Thread roots (world stopped)

// report_self reports the stopper's stack from this frame up: it covers the
// registers proc_thread_roots spilled into its own frame.
static GM_NOINLINE void report_self(root_fn fn, void *ctx) {
  uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
  if (sp < stopper_hi)
    fn(ctx, sp, stopper_hi);
}

// report_pending: fn runs inside pending_lock's critical section (an
// unregistered thread, never stopped, may be creating a thread).
static void report_pending(root_fn fn, void *ctx) {
  gm_lock(&pending_lock);
  for (start_block_t *b = pending; b; b = b->next)
    fn(ctx, (uintptr_t)b, (uintptr_t)(b + 1));
  gm_unlock(&pending_lock);
}

GM_NOINLINE void proc_thread_roots(root_fn fn, void *ctx, uintptr_t self_sp) {
  __builtin_unwind_init(); // the caller's callee-saved registers, into this frame
  pid_t self = sys_gettid();
  gm_assert(self == atomic_load(&stopper_tid));
  for (gthread_t *r = threads; r; r = r->next) {
    if (r->tid == self || r->dead)
      continue;
    fn(ctx, r->sp, r->hi);
    if (r->nregs)
      fn(ctx, (uintptr_t)r->regs, (uintptr_t)(r->regs + r->nregs));
  }
  report_pending(fn, ctx);
  if (self_sp != 0 && self_sp < stopper_hi)
    fn(ctx, self_sp, stopper_hi); // the caller spilled its registers there
  else
    report_self(fn, ctx);
}

// ---------------------------------------------------------------------------
// Data roots

// table_push appends [lo, hi) to t, growing it from the OS; false when out
// of memory.
static bool table_push(range_table_t *t, uintptr_t lo, uintptr_t hi) {
  if (t->n == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 4096 / sizeof(range_t);
    range_t *v = os_reserve(cap * sizeof(range_t), 0);
    if (v == NULL)
      return false;
    if (t->n)
      memcpy(v, t->v, t->n * sizeof(range_t));
    if (t->v)
      os_unmap(t->v, t->cap * sizeof(range_t));
    t->v = v;
    t->cap = cap;
  }
  t->v[t->n++] = (range_t){lo, hi};
  return true;
}

static bool has_counts(size_t size) {
  return size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof(unsigned long long);
}

// unchanged_cb stops at the first object: are the load and unload counts
// those of the last refresh?
static int unchanged_cb(struct dl_phdr_info *info, size_t size, void *data) {
  *(bool *)data = has_counts(size) && info->dlpi_adds == dl_adds && info->dlpi_subs == dl_subs;
  return 1;
}

static int collect_cb(struct dl_phdr_info *info, size_t size, void *data) {
  if (has_counts(size)) {
    dl_adds = info->dlpi_adds;
    dl_subs = info->dlpi_subs;
  }
  for (size_t i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W) || ph->p_memsz == 0)
      continue;
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
    if (!table_push(&data_ranges, lo, lo + ph->p_memsz))
      *(bool *)data = false;
  }
  return 0;
}

// proc_data_roots_refresh re-reads the writable segments of every loaded
// object if objects were loaded or unloaded since the last time. Caller
// holds proc_roots_lock; the world runs.
void proc_data_roots_refresh(void) {
  bool same = false;
  dl_iterate_phdr(unchanged_cb, &same);
  if (same)
    return;
  bool ok = true;
  data_ranges.n = 0;
  dl_iterate_phdr(collect_cb, &ok);
  if (!ok) // scanning fewer roots than exist would free live objects
    gm_fatal("out of memory for the table of data segments", NULL);
}

// proc_data_roots: fn runs inside extra_lock's critical section for the
// added ranges (an unregistered thread may be adding one).
void proc_data_roots(root_fn fn, void *ctx) {
  for (size_t i = 0; i < data_ranges.n; i++)
    fn(ctx, data_ranges.v[i].lo, data_ranges.v[i].hi);
  gm_lock(&extra_lock);
  for (size_t i = 0; i < extra_ranges.n; i++)
    fn(ctx, extra_ranges.v[i].lo, extra_ranges.v[i].hi);
  gm_unlock(&extra_lock);
}

GM_EXPORT int gm_add_roots(void *lo, void *hi) {
  if ((uintptr_t)hi < (uintptr_t)lo) {
    errno = EINVAL;
    return -1;
  }
  gm_lock(&extra_lock);
  bool ok = table_push(&extra_ranges, (uintptr_t)lo, (uintptr_t)hi);
  gm_unlock(&extra_lock);
  if (!ok) {
    errno = ENOMEM;
    return -1;
  }
  return 0;
}

GM_EXPORT void gm_remove_roots(void *lo, void *hi) {
  (void)hi;
  gm_assert(gm_tls_m.locks == 0);
  rdlock_stoppable(&roots_rwlock); // not while a collection scans
  gm_lock(&extra_lock);
  for (size_t i = 0; i < extra_ranges.n; i++) {
    if (extra_ranges.v[i].lo == (uintptr_t)lo) {
      extra_ranges.v[i] = extra_ranges.v[--extra_ranges.n];
      break;
    }
  }
  gm_unlock(&extra_lock);
  pthread_rwlock_unlock(&roots_rwlock);
}

// proc_roots_lock takes the write side. A collection started from a
// destructor that dlclose runs would wait for its own read hold: that hold
// is dropped meanwhile (the closing object stays mapped until its
// destructors return, and the write hold keeps every other dlclose out).
void proc_roots_lock(void) {
  gm_assert(gm_tls_m.locks == 0);
  for (int i = 0; i < roots_read_depth; i++)
    pthread_rwlock_unlock(&roots_rwlock);
  wrlock_stoppable(&roots_rwlock);
}

void proc_roots_unlock(void) {
  pthread_rwlock_unlock(&roots_rwlock);
  for (int i = 0; i < roots_read_depth; i++)
    rdlock_stoppable(&roots_rwlock);
}

// ---------------------------------------------------------------------------
// Interposed functions: pthread_create and dlclose

// resolve returns the next definition of name after gomem's (the C
// library's, or a sanitizer's). Not at init: dlsym may allocate.
static void *resolve(const char *name) {
  void *p = dlsym(RTLD_NEXT, name);
  if (p == NULL) {
    char buf[96];
    gm_fmt(buf, sizeof buf, "cannot find the C library's %s", name);
    gm_fatal(buf, NULL);
  }
  return p;
}

static create_fn create_real(void) {
  create_fn f = atomic_load_explicit(&real_create, memory_order_acquire);
  if (f == NULL) {
    f = __extension__(create_fn) resolve("pthread_create");
    atomic_store_explicit(&real_create, f, memory_order_release);
  }
  return f;
}

static void pending_add(start_block_t *b) {
  gm_lock(&pending_lock);
  b->prev = NULL;
  b->next = pending;
  if (pending)
    pending->prev = b;
  pending = b;
  gm_unlock(&pending_lock);
}

static void pending_remove(start_block_t *b) {
  gm_lock(&pending_lock);
  if (b->prev)
    b->prev->next = b->next;
  else
    pending = b->next;
  if (b->next)
    b->next->prev = b->prev;
  gm_unlock(&pending_lock);
  fixalloc_free(&start_alloc, b);
}

// thread_start runs first on every thread the program creates: it registers
// the thread, then takes fn and arg off the start block (from then on the
// thread's own stack or registers hold them) and runs fn. The key destructor
// unregisters the thread when it exits.
static void *thread_start(void *p) {
  start_block_t *b = p;
  proc_register_self();
  void *(*fn)(void *) = b->fn;
  void *arg = b->arg;
  pending_remove(b);
  return fn(arg);
}

GM_EXPORT int pthread_create(pthread_t *restrict t, const pthread_attr_t *restrict attr,
                             void *(*fn)(void *), void *restrict arg) {
  create_fn real = create_real();
  proc_setup();
  start_block_t *b = fixalloc_alloc(&start_alloc);
  if (b == NULL)
    return EAGAIN;
  b->fn = fn;
  b->arg = arg;
  pending_add(b);
  int rc = real(t, attr, thread_start, b);
  if (rc != 0)
    pending_remove(b);
  return rc;
}

int proc_create_internal_thread(void *(*fn)(void *), void *arg) {
  create_fn real = create_real();
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old); // the new thread inherits the mask
  pthread_t t;
  int rc = real(&t, &attr, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  return rc;
}

// dlclose holds the roots lock for reading, so that a collection never scans
// a segment being unmapped. (dlopen is not wrapped: glibc resolves RPATH
// from dlopen's caller.)
GM_EXPORT int dlclose(void *handle) {
  dlclose_fn real = atomic_load_explicit(&real_dlclose, memory_order_acquire);
  if (real == NULL) {
    real = __extension__(dlclose_fn) resolve("dlclose");
    atomic_store_explicit(&real_dlclose, real, memory_order_release);
  }
  rdlock_stoppable(&roots_rwlock);
  roots_read_depth++;
  int rc = real(handle);
  roots_read_depth--;
  pthread_rwlock_unlock(&roots_rwlock);
  return rc;
}

// ---------------------------------------------------------------------------
// fork

// survivor finds the forking thread's record: through its TLS, or (the main
// thread registered by another thread) as the record whose stack holds ours.
static gthread_t *survivor(void) {
  if (gm_tls_m.thread)
    return gm_tls_m.thread;
  uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
  for (gthread_t *r = threads; r; r = r->next)
    if (sp >= r->lo && sp < r->hi)
      return r;
  return NULL;
}

// proc_fork_child runs in the child of fork, where only the forking thread
// exists: every lock is re-initialised (another thread may have held one),
// every other record and start block is dropped (their memory is not
// reused: the record allocators may have been in use mid-fork).
void proc_fork_child(void) {
  gthread_t *me = survivor();
  pthread_mutex_init(&threads_lock, NULL);
  pthread_mutex_init(&pending_lock, NULL);
  pthread_mutex_init(&extra_lock, NULL);
  pthread_rwlock_init(&roots_rwlock, NULL);
  for (int i = 0; i < roots_read_depth; i++)
    pthread_rwlock_rdlock(&roots_rwlock);
  if (page_size != 0) { // set up
    fixalloc_init(&thread_alloc, sizeof(gthread_t));
    fixalloc_init(&start_alloc, sizeof(start_block_t));
  }
  pending = NULL;
  threads = NULL;
  relaxed_store(&nthreads, 0);
  if (me) {
    me->tid = sys_gettid();
    me->self = pthread_self();
    me->dead = false;
    atomic_store(&me->parked_epoch, 0);
    link_locked(me);
    gm_tls_m.thread = me;
  }
  atomic_store(&stop_epoch, (atomic_load(&stop_epoch) + 1) & ~1u);
  atomic_store(&stop_acks, 0);
  atomic_store(&stopper_tid, 0);
}
