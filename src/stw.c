// stw.c: stopping the world with signals (see stw.h).
//
// The protocol (Boehm GC's):
//   1. stw_stop takes threads_lock (held until stw_start: no thread registers
//      or leaves meanwhile), makes stop_epoch odd, and sends STOP_SIGNAL to
//      every registered thread but itself with tgkill.
//   2. stop_handler runs on the target thread. Inside an allocator critical
//      section (gm_tls_m.locks > 0) it only sets gm_tls_m.stop_pending; the
//      thread parks from m_release -> stw_stop_deferred when it leaves the
//      section. Otherwise it parks at once: it saves its registers, thread
//      pointer and stack pointer in its record, acknowledges (stop_acks,
//      release), and sleeps on the stop_epoch futex until the epoch changes.
//      Every other signal stays blocked meanwhile, so no program code runs on
//      a parked thread.
//   3. When every signalled thread has acknowledged, the collector reads the
//      records (roots.c) and scans.
//   4. stw_start makes the epoch even, wakes the parked threads and releases
//      threads_lock.
// A thread parks at most once per epoch (gthread.parked_epoch), so a second
// signal (another program's SIGPWR) never acknowledges twice; a SIGPWR that
// arrives while no stop is in progress (even epoch) is ignored. A thread that
// does not answer is signalled again every STOP_POLL_NS (TSan can drop a
// signal that arrives while a thread starts or exits); one that blocks the
// signal is reported and the process aborts, rather than hang.
//
// Races of the critical-section protocol: a stop signal that arrives between
// the decrement of gm_tls_m.locks and the test of stop_pending in m_release
// finds locks == 0 and parks from the handler; stop_pending stays 0, so
// m_release does not park a second time. One that arrives before the
// decrement sets stop_pending, which m_release then sees.
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "internal.h"
#include "interpose.h"
#include "os.h"
#include "stack.h"
#include "stw.h"

#define STOP_WARN_NS (10ull * 1000000000u) // silence after which a thread is named
#define STOP_POLL_NS (10 * 1000000)        // stopper's futex timeout while waiting for acks
#define RED_ZONE 128                       // bytes below sp a leaf function may use

// stop_epoch: odd while the world is stopping or stopped. Written by the
// stopper (threads_lock), read by everyone; parked threads wait on it.
static _Atomic uint32_t stop_epoch;
static _Atomic uint32_t stop_acks; // threads parked in this epoch (futex word)
static _Atomic pid_t stopper_tid;  // the thread stopping the world (never parks)
static uintptr_t stopper_hi;       // its stack top (threads_lock; 0: unknown)
static bool handler_installed;     // threads_lock
static uintptr_t page_size;        // set with the handler

static void futex_wait(_Atomic uint32_t *word, uint32_t val, long ns) {
  struct timespec ts = {0, ns};
  syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, val, ns ? &ts : NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *word, int n) {
  syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

bool stw_stopped(void) {
  return atomic_load_explicit(&stop_epoch, memory_order_acquire) & 1;
}

uintptr_t stw_stopper_hi(void) {
  return stopper_hi;
}

void stop_signal_mask(sigset_t *s) {
  sigfillset(s);
  sigdelset(s, SIGSEGV);
  sigdelset(s, SIGBUS);
  sigdelset(s, SIGILL);
  sigdelset(s, SIGFPE);
  sigdelset(s, SIGABRT);
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

// stw_other_stack: if sp lies on a stack other than a thread's own that
// gomem can bound, sets [*lo, *hi) to its live part: a coroutine's slot
// (from sp to the slot's top), or a block of gomem's heap used as a stack by
// a coroutine library (ucontext, Boost.Context) on memory from malloc or
// gm_alloc (from sp to the block's end). Other memory (a stack the program
// mapped itself) cannot be bounded: the program registers it as a root
// (gm_add_roots) or uses gm_co_create. Lock-free and async-signal-safe.
bool stw_other_stack(uintptr_t sp, uintptr_t *lo, uintptr_t *hi) {
  uintptr_t base;
  int c;
  if (stack_slot_of(sp, &base, &c)) {
    *lo = sp > base + STACK_GUARD ? sp : base + STACK_GUARD;
    *hi = base + stack_class_size(c);
    return true;
  }
  mspan_t *s = GM_SECURE ? NULL : spanof(sp); // (hardened: guard pages in blocks)
  if (s == NULL || s->npages == 0)
    return false;
  *lo = sp;
  if (s->sizeclass == 0) {
    *hi = s->base + s->npages * GM_PAGE_SIZE;
  } else {
    uint32_t idx = (uint32_t)(((uint64_t)(sp - s->base) * s->divmul) >> 32);
    *hi = s->base + ((uintptr_t)idx + 1) * s->elemsize;
  }
  return *hi > sp;
}

void *volatile *stw_main_bottom;

#define DECLARED_MAX ((uintptr_t)1 << 30) // largest declared stack believed

bool stw_declared_stack(const gthread_t *r, uintptr_t sp, uintptr_t *lo, uintptr_t *hi) {
  uintptr_t b = atomic_load_explicit(&r->user_hi, memory_order_relaxed);
  if (b == 0 && r->primordial && stw_main_bottom != NULL)
    b = (uintptr_t)*stw_main_bottom;
  if (b == 0)
    return false;
  *lo = sp;
  *hi = sp < b && b - sp <= DECLARED_MAX && !(b > r->lo && b <= r->hi) ? b : 0;
  return true;
}

// other_stack bounds the stack sp is on, other than r's own, if it is
// gomem's (stw_other_stack); else notes sp in co_lo with co_declared set,
// for roots.c to bound from the end the program declares by then (a Boehm
// GC program may declare it in its push_other_roots, after the stop).
static bool other_stack(gthread_t *r, uintptr_t sp) {
  r->co_declared = false;
  if (stw_other_stack(sp, &r->co_lo, &r->co_hi))
    return true;
  r->co_lo = sp;
  r->co_declared = true;
  return false;
}

// record_other_stack: if the thread parks on a stack other than its own
// (sp: its handler's frame is there) or was interrupted on one (alt, the
// handler running on an alternate stack), that stack is scanned from there
// to its top. A coroutine's registers are pushed on its stack before its
// stack pointer is saved at a switch, so a stop landing mid-switch finds
// them either on the stack it is on or on the one it left, which coro_roots
// reports from its saved stack pointer.
static void record_other_stack(gthread_t *r, uintptr_t sp, uintptr_t alt) {
  r->co_lo = r->co_hi = 0;
  r->co_declared = false;
  if (sp >= r->lo && sp < r->hi)
    return;
  if (other_stack(r, sp))
    return;
  if (alt == 0) // (parked where it ran: sp is on that stack)
    return;
  if (alt >= r->lo && alt < r->hi) { // (sp: its alternate signal stack)
    r->co_declared = false;
    return;
  }
  if (!other_stack(r, alt)) {
    r->co_lo = alt - RED_ZONE; // (declared: a leaf function's red zone too)
    return;
  }
  uintptr_t lo, hi; // a leaf function's red zone too, if on the same stack
  if (stw_other_stack(alt - RED_ZONE, &lo, &hi) && hi == r->co_hi)
    r->co_lo = lo;
}

// record_sp sets the scan start of r and its thread pointer. sp is where the
// thread's live stack begins. An sp off its own stack is either on the
// thread's alternate signal stack (a handler running there was interrupted):
// then [sp, top of that stack) is scanned too; or on a stack the program
// switched to. Either way the thread's own stack is scanned from `alt` (the
// interrupted stack pointer, 0 if unknown) if that lies on it, else whole.
static void record_sp(gthread_t *r, uintptr_t sp, uintptr_t alt) {
  r->tp = thread_pointer();
  r->alt_lo = r->alt_hi = 0;
  record_other_stack(r, sp, alt);
  if (!(sp >= r->lo && sp < r->hi)) {
    stack_t ss;
    if (sigaltstack(NULL, &ss) == 0 && (ss.ss_flags & SS_ONSTACK)) {
      r->alt_lo = sp;
      r->alt_hi = (uintptr_t)ss.ss_sp + ss.ss_size;
    }
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
  gm_assert(atomic_load_explicit(&stop_epoch, memory_order_relaxed) == e); // (the stop waits for us)
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
  gthread_t *r = threads_self_record(tid);
  if (r == NULL || atomic_exchange_explicit(&r->parked_epoch, e, memory_order_relaxed) == e)
    return NULL;
  return r;
}

static void stop_requested(uint32_t e, const ucontext_t *uc) {
  if (gm_tls_m.locks > 0) {
    gm_tls_m.stop_pending = 1; // m_release parks (stw_stop_deferred)
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

// stw_stop_deferred parks a thread whose stop signal arrived inside a
// critical section, now that it has left it (locks == 0); the lock unit's
// stoppable waits call it too. Signals are blocked meanwhile, as they are in
// the handler (through the C library's own pthread_sigmask: interpose.c's
// would let the stop signal through).
// The epoch is read again once signals are blocked: the stop read before
// may have ended meanwhile (its signal handled in between, or two whole
// stops), and parking for it would acknowledge the current stop for a
// thread that has not parked for it, letting the collector scan a running
// thread (seen under TSan, whose pthread_sigmask delivers pending signals).
static GM_NOINLINE void stw_stop_deferred(void) {
  gm_tls_m.stop_pending = 0;
  atomic_signal_fence(memory_order_seq_cst);
  if (!(atomic_load_explicit(&stop_epoch, memory_order_acquire) & 1))
    return;
  sigset_t block, old;
  stop_signal_mask(&block);
  interpose_sigmask_real(SIG_BLOCK, &block, &old);
  atomic_signal_fence(memory_order_seq_cst);
  uint32_t e = atomic_load_explicit(&stop_epoch, memory_order_acquire);
  gthread_t *r = e & 1 ? claim_stop(e) : NULL;
  if (r) {
    __builtin_unwind_init(); // callee-saved registers into this frame
    park_spilled(r, e);
  }
  interpose_sigmask_real(SIG_SETMASK, &old, NULL);
}

// ---------------------------------------------------------------------------
// Stopping and starting the world (stopper side)

static void install_handler_locked(void) {
  if (handler_installed)
    return;
  page_size = (uintptr_t)sysconf(_SC_PAGESIZE);
  lock_set_deferred_stop(stw_stop_deferred);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = stop_handler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK; // (coroutines' threads have one)
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
  for (gthread_t *r = threads_list; r; r = r->next) {
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

// blocks_stop_signal reads whether thread tid blocks STOP_SIGNAL, from the
// SigBlk line of /proc/self/task/tid/status (no allocation).
static bool blocks_stop_signal(pid_t tid) {
  char path[64], buf[2048];
  gm_fmt(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return false;
  buf[n] = 0;
  const char *p = strstr(buf, "SigBlk:");
  if (p == NULL)
    return false;
  uint64_t mask = 0;
  for (p += 7; *p == ' ' || *p == '\t'; p++) {
  }
  for (; (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'); p++)
    mask = mask << 4 | (uint64_t)(*p <= '9' ? *p - '0' : *p - 'a' + 10);
  return (mask >> (STOP_SIGNAL - 1)) & 1;
}

static void warn_silent_locked(uint32_t e, pid_t self) {
  for (gthread_t *r = threads_list; r; r = r->next) {
    if (r->tid == self || r->dead || atomic_load(&r->parked_epoch) == e)
      continue;
    char buf[192];
    if (blocks_stop_signal(r->tid)) {
      gm_fmt(buf, sizeof buf,
             "thread %d blocks SIGPWR, the collector's stop signal, so it cannot be stopped "
             "(a thread must not block it while the collector is in use)",
             (int)r->tid);
      gm_fatal(buf, NULL);
    }
    size_t n =
        gm_fmt(buf, sizeof buf, "gomem: thread %d does not answer the stop signal\n", (int)r->tid);
    os_write_stderr(buf, n);
  }
}

// resignal_silent_locked sends the stop signal again to the signalled
// threads that have not parked for stop e, marks dead those that no longer
// exist (a thread can end between the signal and its delivery) and returns
// how many it found.
static uint32_t resignal_silent_locked(uint32_t e, pid_t self) {
  uint32_t gone = 0;
  pid_t pid = getpid();
  for (gthread_t *r = threads_list; r; r = r->next) {
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
// silent ones once after STOP_WARN_NS without progress (and aborting if one
// blocks the stop signal).
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

void stw_stop(void) {
  gm_assert(gm_tls_m.locks == 0);
  threads_setup();
  uintptr_t lo, hi, mapped;
  if (threads_stack_bounds(&lo, &hi, &mapped) != 0) // before threads_lock: may allocate
    hi = 0;
  threads_lock_acquire();
  stopper_hi = hi;
  install_handler_locked();
  pid_t self = sys_gettid();
  gm_tls_m.stopping = true;
  atomic_store(&stopper_tid, self);
  atomic_store(&stop_acks, 0);
  uint32_t e = atomic_load(&stop_epoch) + 1; // odd: stopping
  atomic_store(&stop_epoch, e);
  wait_acks(signal_all_locked(self), e, self);
}

void stw_start(void) {
  uint32_t e = atomic_load(&stop_epoch);
  gm_assert(e & 1);
  threads_drop_dead_locked();
  atomic_store(&stopper_tid, 0);
  gm_tls_m.stopping = false;
  atomic_store_explicit(&stop_epoch, e + 1, memory_order_release);
  futex_wake(&stop_epoch, INT32_MAX);
  threads_lock_release();
}

void stw_fork_child(void) {
  atomic_store(&stop_epoch, (atomic_load(&stop_epoch) + 1) & ~1u);
  atomic_store(&stop_acks, 0);
  atomic_store(&stopper_tid, 0);
  gm_tls_m.stopping = false;
  gm_tls_m.stop_pending = 0;
}
