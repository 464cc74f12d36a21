// test_stw: thread registration, stopping the world, thread and data roots
// (stw.c, roots.c), driven directly through stw_* and roots_*.
//
// Worker threads, all started with pthread_create (gomem's wrapper registers
// them):
//   spin    increments a counter in a loop without calls, holding magic values
//           in r12-r14 (x86-64 inline assembly) and errno set to a magic value
//   read    blocked in read() on a pipe
//   sleep   nanosleep loop; on command detaches and re-attaches itself
//   alloc   the public gm_malloc/gm_free of small and large (mheap.lock) objects
//   crit    spins inside an allocator critical section (m_acquire/m_release)
//   create  creates and joins short-lived threads (some end in pthread_exit)
// The main thread stops and restarts the world many times. While stopped:
// every counter stays put for a millisecond, no thread is inside a critical
// section, the registered-thread count does not change, roots_threads
// reports for each worker a range holding the address of one of its locals,
// and the spinner's magic register values are found in ranges other than the
// caller's own. Some rounds are run by another registered thread (the main
// thread is then stopped) and by an unregistered internal thread. Afterwards:
// the pipe reader got its data without EINTR (SA_RESTART), errno survived,
// created and exited threads balance, detach/attach work, and the data roots
// cover the test's globals, a libc global, gm_add_roots ranges (until
// removed) and a dlopen'ed library (until dlclose'd).
//
// TSan delays an asynchronous signal until the thread enters one of its
// interceptors: a thread spinning without calls never sees the stop signal.
// Under TSan the spinner (from its assembly loop, registers still holding
// the magic values) and the critical-section spinner call gettimeofday, an
// interceptor, every few thousand iterations; everything else is checked as
// in the other builds. TSan's read() interceptor also holds signals back
// until read returns (the thread would never park), so there the pipe reader
// blocks in poll (an interceptor TSan lets signals interrupt) before reading.
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#endif
#endif
#ifndef VALGRIND_MAKE_MEM_DEFINED
#define VALGRIND_MAKE_MEM_DEFINED(p, n) ((void)0)
#define VALGRIND_GET_VBITS(p, v, n) 0
#endif

#include "internals.h"
#include "interpose.h"
#include "mgc.h"
#include "roots.h"
#include "stw.h"
#include "test.h"

#ifndef GOMEM_SANITIZE
#define GOMEM_SANITIZE ""
#endif
#define NO_SANITIZE __attribute__((no_sanitize_address, no_sanitize_thread))

enum { W_SPIN, W_READ, W_SLEEP, W_ALLOC, W_CRIT, W_CREATE, NWORKERS };
static const char *const wname[NWORKERS] = {"spin", "read", "sleep", "alloc", "crit", "create"};

// The spinner's assembly loop knows the offsets of count and stop.
typedef struct worker {
  _Atomic long count;      // progress
  _Atomic int stop;        // set by main at the end
  _Atomic uintptr_t local; // address of a local variable of the thread
  _Atomic int tid;         // kernel thread id (named when a stop hangs)
  pthread_t t;
  bool joined;
} worker_t;

static worker_t w[NWORKERS];

#define ERRNO_MAGIC 4242
#define MAGIC0 0x5ca1ab1e00c0ffeeull
#define MAGIC1 0x5ca1ab1e01c0ffeeull
#define MAGIC2 0x5ca1ab1e02c0ffeeull
#define STR_(x) #x
#define STR(x) STR_(x)

static int pipefd[2];
static char read_buf[64];
static int read_eintr, read_got;
static int spin_errno_ok;
static _Atomic int in_cs;
static _Atomic long crit_deferred;        // stops that arrived inside the critical section
static _Atomic int sleep_cmd, sleep_done; // 1 = detach, 2 = attach
static _Atomic long created, exited, child_registered;
static _Atomic long progress, wd_ticks;
static _Atomic int last_child;

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_us(long us) {
  struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static void publish(worker_t *self, volatile int *local) {
  atomic_store(&self->tid, (int)syscall(SYS_gettid));
  atomic_store(&self->local, (uintptr_t)local);
}

// ---------------------------------------------------------------------------
// Workers

// test_spin_poll: an interceptor call, so that TSan delivers pending signals.
void test_spin_poll(void);
void test_spin_poll(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
}

#ifdef TEST_TSAN
#define SPIN_POLL "testl $0xfff, (%[w])\n\tjnz 2f\n\tcall test_spin_poll\n2:\n\t"
#else
#define SPIN_POLL ""
#endif

// spin_magic counts in self->count until self->stop, with MAGIC0..2 held
// only in r12..r14 (they are immediates of the code, in no data memory).
static void spin_magic(worker_t *self) {
#if defined(__x86_64__)
  register worker_t *wr __asm__("r15") = self; // callee-saved: survives the poll call
  // clang-format off
  __asm__ volatile("movabs $" STR(MAGIC0) ", %%r12\n\t"
                   "movabs $" STR(MAGIC1) ", %%r13\n\t"
                   "movabs $" STR(MAGIC2) ", %%r14\n\t"
                   "mov %%rsp, %%rbx\n\t"
                   "sub $128, %%rsp\n\t" // past the red zone, aligned for calls
                   "and $-16, %%rsp\n"
                   "1:\n\t"
                   "incq (%[w])\n\t"
                   SPIN_POLL
                   "cmpl $0, %c[stop](%[w])\n\t"
                   "je 1b\n\t"
                   "mov %%rbx, %%rsp\n\t"
                   "xor %%r12d, %%r12d\n\t"
                   "xor %%r13d, %%r13d\n\t"
                   "xor %%r14d, %%r14d\n\t"
                   : [w] "+r"(wr)
                   : [stop] "i"(offsetof(worker_t, stop))
                   : "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12",
                     "r13", "r14", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
                     "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "cc",
                     "memory");
  // clang-format on
#else
  while (!atomic_load_explicit(&self->stop, memory_order_relaxed)) {
    atomic_fetch_add_explicit(&self->count, 1, memory_order_relaxed);
#ifdef TEST_TSAN
    if ((atomic_load_explicit(&self->count, memory_order_relaxed) & 0xfff) == 0)
      test_spin_poll();
#endif
  }
#endif
}

static void *spinner(void *arg) {
  worker_t *self = arg;
  volatile int local = 0;
  publish(self, &local);
  errno = ERRNO_MAGIC;
  spin_magic(self);
  spin_errno_ok = errno == ERRNO_MAGIC;
  return NULL;
}

// wait_readable: under TSan, whose read() interceptor holds signals back
// until read returns, the reader blocks in poll (which TSan lets signals
// interrupt: EINTR, never restarted) and reads only available data.
static void wait_readable(int fd) {
#ifdef TEST_TSAN
  struct pollfd p = {fd, POLLIN, 0};
  while (poll(&p, 1, -1) < 0 && errno == EINTR) {
  }
#else
  (void)fd;
#endif
}

static void *reader(void *arg) {
  worker_t *self = arg;
  volatile int local = 0;
  publish(self, &local);
  while (read_got < (int)sizeof read_buf) {
    wait_readable(pipefd[0]);
    ssize_t k = read(pipefd[0], read_buf + read_got, sizeof read_buf - (size_t)read_got);
    if (k < 0 && errno == EINTR) {
      read_eintr++;
      continue;
    }
    if (k <= 0)
      break;
    read_got += (int)k;
    atomic_fetch_add(&self->count, k);
  }
  return NULL;
}

static void sleeper_command(void) {
  int c = atomic_load(&sleep_cmd);
  if (c == 0 || atomic_load(&sleep_done) == c)
    return;
  if (c == 1)
    gm_thread_detach();
  else if (gm_thread_attach() != 0)
    c = -1;
  atomic_store(&sleep_done, c);
}

static void *sleeper(void *arg) {
  worker_t *self = arg;
  volatile int local = 0;
  publish(self, &local);
  while (!atomic_load(&self->stop)) {
    struct timespec ts = {0, 200 * 1000};
    nanosleep(&ts, NULL); // EINTR at a stop: fine
    atomic_fetch_add(&self->count, 1);
    sleeper_command();
  }
  return NULL;
}

static uint64_t rng(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

// Few live objects: the heap stays far below the scavenger's start threshold.
static void *hammer(void *arg) {
  worker_t *self = arg;
  volatile int local = 0;
  publish(self, &local);
  enum { SLOTS = 8 };
  char *slot[SLOTS] = {0};
  uint64_t s = 0x9e3779b97f4a7c15ull;
  while (!atomic_load_explicit(&self->stop, memory_order_relaxed)) {
    uint64_t r = rng(&s);
    size_t i = r % SLOTS;
    pub_free(slot[i]);
    size_t size = (r >> 8) % 4 == 0 ? 32769 + (r >> 16) % 32768 : 1 + (r >> 16) % 1024;
    slot[i] = pub_malloc(size);
    if (slot[i])
      slot[i][0] = (char)i;
    atomic_fetch_add_explicit(&self->count, 1, memory_order_relaxed);
  }
  for (size_t i = 0; i < SLOTS; i++)
    pub_free(slot[i]);
  return NULL;
}

static void *crit(void *arg) {
  worker_t *self = arg;
  volatile int local = 0;
  publish(self, &local);
  while (!atomic_load_explicit(&self->stop, memory_order_relaxed)) {
    m_acquire();
    atomic_store(&in_cs, 1);
    for (int i = 0; i < 20000; i++) {
      atomic_fetch_add_explicit(&self->count, 1, memory_order_relaxed);
#ifdef TEST_TSAN
      if ((i & 0xfff) == 0)
        test_spin_poll();
#endif
    }
    if (gm_tls_m.stop_pending)
      atomic_fetch_add_explicit(&crit_deferred, 1, memory_order_relaxed);
    atomic_store(&in_cs, 0);
    m_release();
  }
  return NULL;
}

static void *child(void *arg) {
  atomic_store(&last_child, (int)syscall(SYS_gettid));
  if (gm_tls_m.thread != NULL)
    atomic_fetch_add(&child_registered, 1);
  pub_free(pub_malloc(100));
  atomic_fetch_add(&exited, 1);
  if ((uintptr_t)arg & 1)
    pthread_exit(NULL);
  return NULL;
}

static void *creator(void *arg) {
  worker_t *self = arg;
  volatile int local = 0;
  publish(self, &local);
  for (uintptr_t n = 0; !atomic_load(&self->stop); n++) {
    pthread_t t;
    if (pthread_create(&t, NULL, child, (void *)n) == 0) {
      atomic_fetch_add(&created, 1);
      pthread_join(t, NULL);
    }
    atomic_fetch_add(&self->count, 1);
  }
  return NULL;
}

static void *(*const wfn[NWORKERS])(void *) = {spinner, reader, sleeper, hammer, crit, creator};

// watchdog (an internal thread: unregistered, never stopped) ends the test if
// a stop hangs, and ticks so the test can see it runs while the world is
// stopped.
static void *watchdog(void *arg) {
  (void)arg;
  long last = -1, since = now_ms();
  for (;;) {
    sleep_us(1000);
    atomic_fetch_add(&wd_ticks, 1);
    long p = atomic_load(&progress);
    if (p != last) {
      last = p;
      since = now_ms();
    } else if (now_ms() - since > 60000) {
      for (int i = 0; i < NWORKERS; i++)
        fprintf(stderr, "worker %s: thread %d\n", wname[i], atomic_load(&w[i].tid));
      fprintf(stderr, "last child created: thread %d\n", atomic_load(&last_child));
      static const char msg[] =
          "test_stw: no progress for 60 s (a stop hangs?)\n0 passed, 1 failed\n";
      if (write(2, msg, sizeof msg - 1) < 0) {
      }
      _exit(1);
    }
  }
  return NULL;
}

// ---------------------------------------------------------------------------
// Ranges reported by roots_*

#define MAX_RANGES 4096
typedef struct ranges {
  size_t n;
  uintptr_t lo[MAX_RANGES], hi[MAX_RANGES];
} ranges_t;

static void collect(void *ctx, uintptr_t lo, uintptr_t hi) {
  ranges_t *rs = ctx;
  if (rs->n < MAX_RANGES) {
    rs->lo[rs->n] = lo;
    rs->hi[rs->n] = hi;
    rs->n++;
  }
}

// covering returns the index of a range holding [p, p + n), or -1.
static long covering(const ranges_t *rs, uintptr_t p, size_t n) {
  for (size_t i = 0; i < rs->n; i++)
    if (p >= rs->lo[i] && p + n <= rs->hi[i])
      return (long)i;
  return -1;
}

static bool has_range(const ranges_t *rs, uintptr_t lo, uintptr_t hi) {
  for (size_t i = 0; i < rs->n; i++)
    if (rs->lo[i] == lo && rs->hi[i] == hi)
      return true;
  return false;
}

// range_holds reports whether the aligned words of [lo, hi) include v. The
// words are another thread's stack and registers: read uninstrumented, as a
// conservative scanner would. Under memcheck, the words are declared defined
// and those it deems unaddressable are skipped: the 128-byte red zone below
// an interrupted thread's stack pointer, which the signal frame skips, is
// part of the stack range but noaccess to memcheck.
NO_SANITIZE static bool range_holds(uintptr_t lo, uintptr_t hi, uintptr_t v) {
  const volatile uintptr_t *p = (const uintptr_t *)((lo + 7) & ~(uintptr_t)7);
  const volatile uintptr_t *end = (const uintptr_t *)(hi & ~(uintptr_t)7);
  for (; p < end; p++) {
    uintptr_t word, vbits;
    if (VALGRIND_GET_VBITS((const void *)p, &vbits, sizeof word) == 3)
      continue; // unaddressable to memcheck
    word = *p;
    VALGRIND_MAKE_MEM_DEFINED(&word, sizeof word);
    if (word == v)
      return true;
  }
  return false;
}

static bool holds_outside(const ranges_t *rs, long skip, uintptr_t v) {
  for (size_t i = 0; i < rs->n; i++)
    if ((long)i != skip && range_holds(rs->lo[i], rs->hi[i], v))
      return true;
  return false;
}

// ---------------------------------------------------------------------------
// Stop rounds

typedef struct round_stats {
  int rounds;
  int moved[NWORKERS];    // counter changed while stopped
  int no_local[NWORKERS]; // no range held the worker's local
  int no_magic;           // a magic register value not found
  int self_missing;       // the caller's own frame not covered
  int in_cs;              // a thread parked inside a critical section
  int count_changed;      // threads_count changed while stopped
  int main_missing;       // (other stoppers) the main thread's local not covered
  int wd_ran;             // rounds in which the internal watchdog kept running
} round_stats_t;

static ranges_t round_ranges; // one stopper at a time

static void check_locals(round_stats_t *st, const ranges_t *rs, long self) {
  for (int i = 0; i < NWORKERS; i++) {
    if (w[i].joined)
      continue;
    long k = covering(rs, atomic_load(&w[i].local), sizeof(int));
    if (k < 0 || k == self)
      st->no_local[i]++;
  }
}

static void check_magic(round_stats_t *st, const ranges_t *rs, long self) {
#if defined(__x86_64__)
  const uintptr_t magic[3] = {MAGIC0, MAGIC1, MAGIC2};
  for (int j = 0; j < 3; j++)
    if (!holds_outside(rs, self, magic[j]))
      st->no_magic++;
#else
  (void)st;
  (void)rs;
  (void)self;
#endif
}

// stopped_round checks what holds while the world is stopped; main_local is
// the main thread's local when the caller is another thread (else 0).
static void stopped_round(round_stats_t *st, uintptr_t main_local) {
  volatile int here = 0;
  long before[NWORKERS];
  size_t n0 = threads_count();
  long wd0 = atomic_load(&wd_ticks);
  for (int i = 0; i < NWORKERS; i++)
    before[i] = atomic_load(&w[i].count);
  st->in_cs += atomic_load(&in_cs);
  sleep_us(1000);
  // The watchdog sleeps 1 ms between ticks; on a loaded machine it may not be
  // scheduled within this window. Give it time: it must tick while stopped.
  for (long end = now_ms() + 200; atomic_load(&wd_ticks) == wd0 && now_ms() < end;)
    sleep_us(200);
  for (int i = 0; i < NWORKERS; i++)
    st->moved[i] += atomic_load(&w[i].count) != before[i];
  st->count_changed += threads_count() != n0;
  st->wd_ran += atomic_load(&wd_ticks) != wd0;

  ranges_t *rs = &round_ranges;
  rs->n = 0;
  roots_threads(collect, rs, 0);
  long self = covering(rs, (uintptr_t)&here, sizeof here);
  st->self_missing += self < 0;
  check_locals(st, rs, self);
  check_magic(st, rs, self);
  if (main_local) {
    long k = covering(rs, main_local, sizeof(int));
    st->main_missing += k < 0 || k == self;
  }
  st->rounds++;
}

static void run_rounds(round_stats_t *st, int n, uintptr_t main_local) {
  for (int r = 0; r < n; r++) {
    stw_stop();
    stopped_round(st, main_local);
    stw_start();
    atomic_fetch_add(&progress, 1);
    sleep_us(300);
  }
}

static void report_rounds(const char *who, const round_stats_t *st) {
  printf("%s: %d rounds\n", who, st->rounds);
  for (int i = 0; i < NWORKERS; i++) {
    CHECKF(st->moved[i] == 0, "%s: %s moved while stopped in %d rounds", who, wname[i],
           st->moved[i]);
    CHECKF(st->no_local[i] == 0, "%s: %s's local not in its ranges in %d rounds", who, wname[i],
           st->no_local[i]);
  }
  CHECKF(st->no_magic == 0, "%s: magic register values missing %d times", who, st->no_magic);
  CHECKF(st->self_missing == 0, "%s: own frame not covered in %d rounds", who, st->self_missing);
  CHECKF(st->in_cs == 0, "%s: stopped inside a critical section in %d rounds", who, st->in_cs);
  CHECKF(st->count_changed == 0, "%s: thread count changed while stopped (%d)", who,
         st->count_changed);
  CHECKF(st->main_missing == 0, "%s: main thread's local not covered in %d rounds", who,
         st->main_missing);
  CHECKF(st->wd_ran > 0, "%s: the internal watchdog never ran while stopped", who);
}

typedef struct other_stopper {
  int n;
  uintptr_t main_local;
  round_stats_t st;
} other_stopper_t;

static void *other_stopper(void *arg) {
  other_stopper_t *o = arg;
  run_rounds(&o->st, o->n, o->main_local);
  return NULL;
}

// internal_stopper runs rounds from an unregistered thread; done is its
// completion flag (it is detached).
static _Atomic int internal_done;
static void *internal_stopper(void *arg) {
  other_stopper_t *o = arg;
  run_rounds(&o->st, o->n, o->main_local);
  atomic_store(&internal_done, 1);
  return NULL;
}

// ---------------------------------------------------------------------------
// Detach / attach, data roots

static void sleeper_do(int cmd) {
  atomic_store(&sleep_cmd, cmd);
  while (atomic_load(&sleep_done) != cmd && atomic_load(&sleep_done) != -1)
    sleep_us(100);
}

static void test_detach_attach(size_t nreg) {
  sleeper_do(1);
  CHECK(threads_count() == nreg - 1);
  stw_stop();
  long c0 = atomic_load(&w[W_SLEEP].count);
  sleep_us(20000);
  long c1 = atomic_load(&w[W_SLEEP].count);
  round_ranges.n = 0;
  roots_threads(collect, &round_ranges, 0);
  bool seen = covering(&round_ranges, atomic_load(&w[W_SLEEP].local), sizeof(int)) >= 0;
  stw_start();
  CHECKF(c1 != c0, "a detached thread was stopped");
  CHECKF(!seen, "a detached thread's stack was reported");
  sleeper_do(2);
  CHECK(atomic_load(&sleep_done) == 2);
  CHECK(threads_count() == nreg);
  round_stats_t st = {0};
  run_rounds(&st, 5, 0);
  report_rounds("after attach", &st);
}

static int g_data = 42;
static int g_bss;
static const char g_ro[] = "read-only";
static char extra[600][64];

static void data_roots(ranges_t *rs) {
  gc_lock_cycle();
  roots_data_refresh();
  stw_stop();
  rs->n = 0;
  roots_data(collect, rs);
  stw_start();
  gc_unlock_cycle();
}

static void test_add_remove(ranges_t *rs) {
  int fails = 0;
  for (int i = 0; i < 600; i++)
    fails += gm_add_roots(extra[i], extra[i] + 64) != 0;
  CHECK(fails == 0);
  data_roots(rs);
  int missing = 0;
  for (int i = 0; i < 600; i++)
    missing += !has_range(rs, (uintptr_t)extra[i], (uintptr_t)(extra[i] + 64));
  CHECKF(missing == 0, "%d added ranges missing", missing);
  for (int i = 0; i < 600; i += 2)
    gm_remove_roots(extra[i], extra[i] + 64);
  data_roots(rs);
  int wrong = 0;
  for (int i = 0; i < 600; i++)
    wrong += has_range(rs, (uintptr_t)extra[i], (uintptr_t)(extra[i] + 64)) != (i & 1);
  CHECKF(wrong == 0, "%d ranges wrong after removing half", wrong);
  for (int i = 1; i < 600; i += 2)
    gm_remove_roots(extra[i], NULL);
  data_roots(rs);
  wrong = 0;
  for (int i = 0; i < 600; i++)
    wrong += has_range(rs, (uintptr_t)extra[i], (uintptr_t)(extra[i] + 64));
  CHECKF(wrong == 0, "%d ranges still reported after removal", wrong);
}

static void test_dlopen_roots(ranges_t *rs) {
  void *h = dlopen("libm.so.6", RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) {
    test_skip("dlopen'ed library's segments are roots", "libm.so.6 not found");
    return;
  }
  int *sg = dlsym(h, "signgam");
  CHECK(sg != NULL);
  data_roots(rs);
  CHECKF(covering(rs, (uintptr_t)sg, sizeof *sg) >= 0, "libm's signgam not in the data roots");
  CHECK(dlclose(h) == 0);
  void *again = dlopen("libm.so.6", RTLD_NOW | RTLD_NOLOAD);
  if (again != NULL) { // loaded by something else too
    dlclose(again);
    return;
  }
  data_roots(rs);
  CHECKF(covering(rs, (uintptr_t)sg, sizeof *sg) < 0, "an unloaded library is still a root");
}

static void test_data_roots(void) {
  static ranges_t rs;
  data_roots(&rs);
  CHECKF(covering(&rs, (uintptr_t)&g_data, sizeof g_data) >= 0, "a .data global not covered");
  CHECKF(covering(&rs, (uintptr_t)&g_bss, sizeof g_bss) >= 0, "a .bss global not covered");
  CHECKF(covering(&rs, (uintptr_t)stdout, sizeof(void *)) >= 0, "libc's stdout FILE not covered");
  CHECKF(covering(&rs, (uintptr_t)&environ, sizeof environ) >= 0, "&environ not covered");
  CHECKF(covering(&rs, (uintptr_t)g_ro, sizeof g_ro) < 0, "read-only data reported as a root");
  void *heap = pub_malloc(256);
  CHECK(gm_add_roots(heap, (char *)heap + 256) == 0);
  data_roots(&rs);
  CHECK(has_range(&rs, (uintptr_t)heap, (uintptr_t)heap + 256));
  gm_remove_roots(heap, NULL);
  pub_free(heap);
  test_add_remove(&rs);
  test_dlopen_roots(&rs);
}

// ---------------------------------------------------------------------------

static void start_workers(void) {
  for (int i = 0; i < NWORKERS; i++)
    if (pthread_create(&w[i].t, NULL, wfn[i], &w[i]) != 0) {
      fprintf(stderr, "cannot start worker %s\n", wname[i]);
      exit(1);
    }
  for (int i = 0; i < NWORKERS; i++)
    while (atomic_load(&w[i].local) == 0)
      sleep_us(100);
  while (atomic_load(&w[W_CREATE].count) < 5 || atomic_load(&w[W_ALLOC].count) < 100)
    sleep_us(100);
}

// stop_worker ends worker i (the others keep being checked).
static void stop_worker(int i) {
  atomic_store(&w[i].stop, 1);
  pthread_join(w[i].t, NULL);
  w[i].joined = true;
}

static void stop_workers(void) {
  static const char msg[sizeof read_buf] = "the pipe reader's data, intact after all the stops";
  for (int i = 0; i < NWORKERS; i++)
    atomic_store(&w[i].stop, 1);
  CHECK(write(pipefd[1], msg, sizeof msg) == (ssize_t)sizeof msg);
  for (int i = 0; i < NWORKERS; i++)
    if (!w[i].joined)
      stop_worker(i);
  CHECK(read_got == (int)sizeof msg && memcmp(read_buf, msg, sizeof msg) == 0);
  CHECKF(read_eintr == 0, "read() returned EINTR %d times (not restarted)", read_eintr);
  CHECKF(spin_errno_ok, "errno changed under the spinner");
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  volatile int main_local = 0;
  int rounds = strcmp(GOMEM_SANITIZE, "valgrind") == 0 ? 100 : 300;
  gm_ensure_init();
  gc_ensure_init(); // registers this (the main) thread
  CHECK(gm_tls_m.thread != NULL);
  CHECK(threads_count() == 1);
  CHECK(pipe(pipefd) == 0);
  CHECK(interpose_create_internal(watchdog, NULL) == 0);
  start_workers();
  size_t nreg = 1 + NWORKERS;
  size_t n = threads_count();
  CHECKF(n == nreg || n == nreg + 1, "%zu threads registered", n); // + a creator's child

  long t0 = now_ms();
  round_stats_t st = {0};
  run_rounds(&st, rounds, 0);
  report_rounds("main", &st);

  other_stopper_t o = {rounds / 10, (uintptr_t)&main_local, {0}};
  pthread_t ot;
  CHECK(pthread_create(&ot, NULL, other_stopper, &o) == 0);
  pthread_join(ot, NULL);
  report_rounds("registered thread", &o.st);

  other_stopper_t io = {rounds / 10, (uintptr_t)&main_local, {0}};
  CHECK(interpose_create_internal(internal_stopper, &io) == 0);
  while (!atomic_load(&internal_done))
    sleep_us(1000);
  report_rounds("internal thread", &io.st);
  printf("%d + %d + %d rounds in %ld ms; %ld stops deferred out of a critical section\n", st.rounds,
         o.st.rounds, io.st.rounds, now_ms() - t0, atomic_load(&crit_deferred));

  stop_worker(W_CREATE); // the thread count is steady from here on
  CHECK(threads_count() == NWORKERS);
  test_detach_attach(NWORKERS);
  stop_workers();
  for (int i = 0; i < NWORKERS; i++)
    CHECKF(atomic_load(&w[i].count) > 0, "%s made no progress", wname[i]);
  CHECKF(atomic_load(&crit_deferred) > 0, "no stop was ever deferred out of a critical section");
  printf("%ld threads created, %ld exited, %ld registered\n", atomic_load(&created),
         atomic_load(&exited), atomic_load(&child_registered));
  CHECK(atomic_load(&created) > 0);
  CHECK(atomic_load(&created) == atomic_load(&exited));
  CHECK(atomic_load(&child_registered) == atomic_load(&created));
  CHECKF(threads_count() == 1, "%zu threads registered after all joined", threads_count());

  test_data_roots();
  return test_done();
}
