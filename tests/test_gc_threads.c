// test_gc_threads: the collector under threads (torture).
//
// For a few seconds:
//   - NWORKERS threads build and mutate linked structures (lists and binary
//     search trees of gm_alloc nodes of many sizes, a few large, each
//     structure with a header holding its node count and a checksum), keep
//     some in locals (their stacks are roots), swap others with a global
//     table shared under a mutex (each structure is verified whenever a
//     thread takes it), drop the rest and allocate garbage;
//   - collections start automatically and from a collector thread calling
//     gm_collect in a loop;
//   - a spawner thread starts short-lived threads that build a structure,
//     wait for a collection, and verify it;
//   - an attach thread detaches and re-attaches itself (gm_thread_detach /
//     gm_thread_attach) and keeps structures on its stack between;
//   - the main thread forks now and then; each child checks that it can
//     gm_alloc and gm_collect, and grow the heap (in kernel-tracking mode a
//     child once aborted there, trying to track the new range);
//   - one thread holds the only pointers to its structures on its stack
//     while blocked in read() on a pipe, one while sleeping in a usleep
//     loop, and (x86-64) one holds an object only in a callee-saved register
//     while blocked in read().
// Afterwards every structure still held verifies, the blocked threads'
// structures are intact after they wake, no verification failed during the
// run, and many collections ran. alarm() is the watchdog: a hang (a thread
// that never stops) fails the test instead of blocking.
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "gomem.h"
#include "test.h"

#ifndef GOMEM_SANITIZE
#define GOMEM_SANITIZE ""
#endif

#define NOINLINE __attribute__((noinline))
#define NWORKERS 4
#define NLOCAL 16
#define NSHARED 64

static int slow;
static double run_seconds = 3;
static atomic_int stop;
static _Atomic long corrupt, ops, spawned, forks_ok, forks_bad, attach_rounds;

static uint64_t pat(uint64_t seed, size_t i) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + i * 0xD6E8FEB86659FD93ull + 0x1234567;
  x ^= x >> 29;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 32;
  return x | 0x8000000000000000ull; // never a user-space address
}

static uint64_t xorshift(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static _Atomic int complaints;
static void complain(const char *what, const void *where, uint64_t a, uint64_t b) {
  atomic_fetch_add(&corrupt, 1);
  if (atomic_fetch_add(&complaints, 1) < 10)
    fprintf(stderr, "test_gc_threads: %s at %p (%#llx, %#llx)\n", what, where,
            (unsigned long long)a, (unsigned long long)b);
}

// ---------------------------------------------------------------------------
// Structures

enum { KIND_LIST = 1, KIND_TREE = 2 };
#define MAGIC 0x5EC0DE5u

typedef struct hdr {
  uint32_t magic, kind;
  uint64_t count, sum; // nodes, and the sum of their values
  void *root;
} hdr_t;

typedef struct lnode {
  struct lnode *next;
  uint64_t val, chk; // chk = pat(val); the object's last word is ~chk
} lnode_t;

typedef struct tnode {
  struct tnode *l, *r;
  uint64_t key, sum; // sum: of the keys in this subtree
} tnode_t;

static size_t lnode_size(uint64_t val) {
  if (val % 509 == 0)
    return 40000;                                       // a large object now and then
  return sizeof(lnode_t) + 8 + (size_t)(val % 16) * 24; // the last word is not chk
}

static lnode_t *new_lnode(uint64_t val) {
  size_t size = lnode_size(val);
  lnode_t *n = gm_alloc(size);
  n->val = val;
  n->chk = pat(val, 1);
  ((uint64_t *)n)[size / 8 - 1] = ~n->chk;
  return n;
}

static int lnode_ok(const lnode_t *n) {
  size_t size = lnode_size(n->val);
  return n->chk == pat(n->val, 1) && ((const uint64_t *)n)[size / 8 - 1] == ~n->chk;
}

static tnode_t *tree_insert(tnode_t *t, uint64_t key) {
  if (t == NULL) {
    tnode_t *n = gm_alloc(sizeof *n);
    n->key = n->sum = key;
    return n;
  }
  if (key < t->key)
    t->l = tree_insert(t->l, key);
  else
    t->r = tree_insert(t->r, key);
  t->sum += key;
  return t;
}

// tree_check returns the subtree's key sum (count in *count), complaining
// about a wrong sum or order.
static uint64_t tree_check(const tnode_t *t, uint64_t lo, uint64_t hi, uint64_t *count, int depth,
                           int *bad) {
  if (t == NULL || *bad)
    return 0;
  if (depth > 200 || t->key < lo || t->key > hi) {
    complain("tree out of order", t, t->key, lo);
    *bad = 1;
    return 0;
  }
  (*count)++;
  uint64_t s = t->key + tree_check(t->l, lo, t->key, count, depth + 1, bad) +
               tree_check(t->r, t->key, hi, count, depth + 1, bad);
  if (s != t->sum && !*bad) {
    complain("tree sum", t, s, t->sum);
    *bad = 1;
  }
  return s;
}

static hdr_t *new_struct(uint64_t *r, int nodes) {
  hdr_t *h = gm_alloc(sizeof *h);
  h->magic = MAGIC;
  h->kind = xorshift(r) % 2 ? KIND_LIST : KIND_TREE;
  for (int i = 0; i < nodes; i++) {
    uint64_t v = pat(xorshift(r), 0);
    if (h->kind == KIND_LIST) {
      lnode_t *n = new_lnode(v);
      n->next = h->root;
      h->root = n;
    } else {
      h->root = tree_insert(h->root, v);
    }
    h->count++;
    h->sum += v;
  }
  return h;
}

// verify checks a structure; 1 if intact.
static int verify(const hdr_t *h) {
  if (h == NULL)
    return 1;
  if (h->magic != MAGIC || (h->kind != KIND_LIST && h->kind != KIND_TREE)) {
    complain("header", h, h->magic, h->kind);
    return 0;
  }
  int bad = 0;
  uint64_t count = 0, sum = 0;
  if (h->kind == KIND_LIST) {
    for (const lnode_t *n = h->root; n && count <= h->count; n = n->next) {
      if (!lnode_ok(n)) {
        complain("list node", n, n->val, n->chk);
        return 0;
      }
      count++;
      sum += n->val;
    }
  } else {
    sum = tree_check(h->root, 0, UINT64_MAX, &count, 0, &bad);
    if (bad)
      return 0;
  }
  if (count != h->count || sum != h->sum) {
    complain("structure count or sum", h, count, h->count);
    return 0;
  }
  return 1;
}

// mutate changes a structure the caller owns (verified first).
static void mutate(hdr_t *h, uint64_t *r) {
  verify(h);
  int k = (int)(xorshift(r) % 8);
  for (int i = 0; i < k; i++) {
    uint64_t v = pat(xorshift(r), 0);
    if (h->kind == KIND_LIST) {
      lnode_t *first = h->root;
      if (first && first->next && xorshift(r) % 2) { // drop the second node
        lnode_t *gone = first->next;
        first->next = gone->next;
        h->count--;
        h->sum -= gone->val;
      } else {
        lnode_t *n = new_lnode(v);
        n->next = h->root;
        h->root = n;
        h->count++;
        h->sum += v;
      }
    } else {
      h->root = tree_insert(h->root, v);
      h->count++;
      h->sum += v;
    }
  }
}

// ---------------------------------------------------------------------------
// Workers

static hdr_t *shared[NSHARED];
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;

NOINLINE static void garbage(uint64_t *r) {
  int n = (int)(xorshift(r) % 64);
  for (int i = 0; i < n; i++) {
    size_t size = xorshift(r) % 100 == 0 ? 50000 : 16 + (size_t)(*r % 2000);
    uint64_t *p = gm_alloc(size);
    p[0] = *r | 0x8000000000000000ull;
  }
}

// lock_shared takes the table's lock. Under TSan a thread waiting in
// pthread_mutex_lock never runs a signal handler, so it could not stop while
// the lock's holder is stopped: there it polls (in a call TSan delivers
// signals in) instead.
static void lock_shared(void) {
#ifdef TEST_TSAN
  while (pthread_mutex_trylock(&shared_lock) != 0)
    usleep(50);
#else
  pthread_mutex_lock(&shared_lock);
#endif
}

static void *worker(void *arg) {
  long id = (long)arg;
  uint64_t r = 0x9E3779B97F4A7C15ull * (uint64_t)(id + 1) + 12345;
  hdr_t *local[NLOCAL];
  int nodes = slow ? 50 : 200;
  for (int i = 0; i < NLOCAL; i++)
    local[i] = new_struct(&r, (int)(xorshift(&r) % (uint64_t)nodes) + 1);
  long n = 0;
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    uint64_t x = xorshift(&r);
    int i = (int)((x >> 8) % NLOCAL);
    switch (x % 10) {
    case 0:
    case 1:
    case 2:
    case 3:
      mutate(local[i], &r);
      if (local[i]->count > (uint64_t)nodes * 3) { // grown too big: start afresh
        verify(local[i]);
        local[i] = new_struct(&r, nodes);
      }
      break;
    case 4:
    case 5:
      verify(local[i]);
      local[i] = new_struct(&r, (int)(xorshift(&r) % (uint64_t)nodes) + 1); // the old one dropped
      break;
    case 6:
    case 7: {
      int j = (int)((x >> 20) % NSHARED);
      lock_shared();
      hdr_t *got = shared[j];
      shared[j] = local[i];
      pthread_mutex_unlock(&shared_lock);
      if (got == NULL)
        got = new_struct(&r, nodes / 2 + 1);
      verify(got); // another thread's, now ours
      local[i] = got;
      break;
    }
    default:
      garbage(&r);
      break;
    }
    n++;
  }
  for (int i = 0; i < NLOCAL; i++)
    verify(local[i]);
  atomic_fetch_add(&ops, n);
  return NULL;
}

static void *collector(void *arg) {
  (void)arg;
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    gm_collect();
    usleep(slow ? 20000 : 3000);
  }
  return NULL;
}

// Short-lived threads, started one after another.
static void *short_life(void *arg) {
  uint64_t r = (uint64_t)(uintptr_t)arg * 0x2545F4914F6CDD1Dull + 1;
  hdr_t *h = new_struct(&r, 100);
  gm_stats_t st;
  gm_stats(&st);
  uint64_t gc0 = st.num_gc;
  double t0 = now_s();
  while (st.num_gc == gc0 && now_s() - t0 < 1 && !atomic_load(&stop)) { // a cycle passes
    garbage(&r);
    usleep(1000);
    gm_stats(&st);
  }
  verify(h);
  return NULL;
}

static void *spawner(void *arg) {
  (void)arg;
  for (uintptr_t k = 1; !atomic_load_explicit(&stop, memory_order_relaxed); k++) {
    pthread_t t[4];
    int started = 0;
    for (int i = 0; i < 4; i++)
      started += pthread_create(&t[started], NULL, short_life, (void *)(k * 4 + (uintptr_t)i)) == 0;
    for (int i = 0; i < started; i++)
      pthread_join(t[i], NULL);
    atomic_fetch_add(&spawned, started);
  }
  return NULL;
}

// Detaches (holding no GC pointer), re-attaches, keeps structures on its
// stack over a few collections.
static void *attacher(void *arg) {
  (void)arg;
  uint64_t r = 777;
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    gm_thread_detach();
    usleep(500);
    if (gm_thread_attach() != 0) {
      complain("gm_thread_attach failed", NULL, 0, 0);
      break;
    }
    hdr_t *h[4];
    for (int i = 0; i < 4; i++)
      h[i] = new_struct(&r, 50);
    usleep(slow ? 50000 : 10000); // collections happen meanwhile
    garbage(&r);
    for (int i = 0; i < 4; i++)
      verify(h[i]);
    atomic_fetch_add(&attach_rounds, 1);
  }
  return NULL;
}

// ---------------------------------------------------------------------------
// Threads holding their only pointers while blocked

static int read_pipe[2], reg_pipe[2];
static atomic_int ready;

// blocking_read reads one byte from fd, blocked until it comes. Under TSan,
// whose read() interceptor holds signals back until read returns (the
// thread would never park), it first waits in poll, which TSan lets signals
// interrupt (see test_stw.c).
static ssize_t blocking_read(int fd, char *c) {
#ifdef TEST_TSAN
  struct pollfd p = {fd, POLLIN, 0};
  while (poll(&p, 1, -1) < 0 && errno == EINTR) {
  }
#endif
  ssize_t k;
  do
    k = read(fd, c, 1);
  while (k < 0 && errno == EINTR);
  return k;
}

static void *blocked_reader(void *arg) {
  (void)arg;
  uint64_t r = 4242;
  hdr_t *a = new_struct(&r, 1000), *b = new_struct(&r, 1000);
  uint64_t *big = gm_alloc(1 << 20);
  for (size_t i = 0; i < (1 << 20) / 8; i += 512)
    big[i] = pat(9, i);
  atomic_fetch_add(&ready, 1);
  char c;
  ssize_t k = blocking_read(read_pipe[0], &c); // blocked for the whole run
  long bad = k != 1;
  bad += !verify(a) + !verify(b);
  for (size_t i = 0; i < (1 << 20) / 8; i += 512)
    bad += big[i] != pat(9, i);
  return (void *)bad;
}

static void *sleeper(void *arg) {
  (void)arg;
  uint64_t r = 4343;
  hdr_t *a = new_struct(&r, 1000), *b = new_struct(&r, 1000);
  atomic_fetch_add(&ready, 1);
  while (!atomic_load(&stop))
    usleep(1000); // interrupted by stop signals now and then: fine
  long bad = !verify(a) + !verify(b);
  return (void *)bad;
}

#if defined(__x86_64__)
// uintptr_t gct_call_in_REG(uintptr_t hidden, void (*fn)(void)): un-hides a
// pointer into REG only, calls fn, returns REG hidden again (see
// test_gc_roots.c).
#define CALL_IN(reg)                                                                               \
  __asm__(".text\n"                                                                                \
          ".p2align 4\n"                                                                           \
          ".globl gct_call_in_" #reg "\n"                                                          \
          ".hidden gct_call_in_" #reg "\n"                                                         \
          ".type gct_call_in_" #reg ",@function\n"                                                 \
          "gct_call_in_" #reg ":\n"                                                                \
          "  push %" #reg "\n"                                                                     \
          "  sub $16, %rsp\n"                                                                      \
          "  mov %rsi, (%rsp)\n"                                                                   \
          "  mov %rdi, %" #reg "\n"                                                                \
          "  not %" #reg "\n"                                                                      \
          "  call *(%rsp)\n"                                                                       \
          "  mov %" #reg ", %rax\n"                                                                \
          "  not %rax\n"                                                                           \
          "  add $16, %rsp\n"                                                                      \
          "  pop %" #reg "\n"                                                                      \
          "  ret\n"                                                                                \
          ".size gct_call_in_" #reg ", .-gct_call_in_" #reg "\n");                                 \
  uintptr_t gct_call_in_##reg(uintptr_t hidden, void (*fn)(void));
CALL_IN(rbp)
CALL_IN(r15)

static void block_on_reg_pipe(void) {
  char c;
  atomic_fetch_add(&ready, 1);
  (void)blocking_read(reg_pipe[0], &c);
}

static uintptr_t reg_hidden2;

static void block_twice(void) {
  // The first pointer is in rbp; hold the second in r15 on top.
  reg_hidden2 = gct_call_in_r15(reg_hidden2, block_on_reg_pipe);
}

NOINLINE static uintptr_t make_hidden(uint64_t seed) {
  uint64_t *p = gm_alloc(256);
  for (int i = 0; i < 32; i++)
    p[i] = pat(seed, (size_t)i);
  return ~(uintptr_t)p;
}

NOINLINE static void clear_stack(void) {
  volatile char pad[32 << 10];
  memset((char *)pad, 0, sizeof pad);
  __asm__ volatile("" : : "r"(pad) : "memory");
}

static void *reg_holder(void *arg) {
  (void)arg;
  uintptr_t h1 = make_hidden(61);
  reg_hidden2 = make_hidden(62);
  clear_stack();
  uintptr_t back = gct_call_in_rbp(h1, block_twice);
  long bad = back != h1;
  uint64_t *p1 = (uint64_t *)~back, *p2 = (uint64_t *)~reg_hidden2;
  for (int i = 0; i < 32; i++) {
    bad += p1[i] != pat(61, (size_t)i);
    bad += p2[i] != pat(62, (size_t)i);
  }
  return (void *)bad;
}
#endif

// ---------------------------------------------------------------------------
// fork

static unsigned child_timeout = 15; // seconds

static void fork_once(void) {
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    atomic_fetch_add(&forks_bad, 1);
    return;
  }
  if (pid == 0) {
    signal(SIGALRM, SIG_DFL); // a hung child dies of SIGALRM
    alarm(child_timeout);
    uint64_t r = 99;
    hdr_t *h = new_struct(&r, 500);
    for (int i = 0; i < 3; i++) {
      garbage(&r);
      gm_collect();
    }
    // The heap grows in the child (a new range): the parent's kernel write
    // tracking does not come across fork, so nothing may try to track it.
    size_t big_bytes = (size_t)256 << 20;
    char *big = gm_alloc_noscan(big_bytes);
    if (big == NULL)
      _exit(2);
    big[0] = big[big_bytes - 1] = 1;
    gm_collect();
    _exit(verify(h) ? 0 : 1);
  }
  int st = 0;
  double t0 = now_s();
  for (;;) {
    pid_t w = waitpid(pid, &st, WNOHANG);
    if (w == pid)
      break;
    if (now_s() - t0 > child_timeout + 10) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      break;
    }
    usleep(2000);
  }
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
    atomic_fetch_add(&forks_ok, 1);
  } else {
    atomic_fetch_add(&forks_bad, 1);
    fprintf(stderr, "test_gc_threads: forked child %s %d after %.1f s\n",
            WIFSIGNALED(st) ? "killed by signal" : "exited with",
            WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st), now_s() - t0);
  }
}

// ---------------------------------------------------------------------------

static void watchdog(int sig) {
  (void)sig;
  static const char msg[] = "test_gc_threads: watchdog: the run did not finish (hang?)\n";
  ssize_t k = write(2, msg, sizeof msg - 1);
  (void)k;
  _exit(3);
}

int main(void) {
  slow = GOMEM_SANITIZE[0] != 0 || GM_DEBUG >= 2;
  if (slow)
    child_timeout = 120;
#ifdef TEST_TSAN
  int forks_allowed = 0; // TSan: no threads in the child of a multithreaded fork
#else
  int forks_allowed = 1;
#endif
  signal(SIGALRM, watchdog);
  alarm(slow ? 400 : 90);
  if (pipe(read_pipe) != 0 || pipe(reg_pipe) != 0)
    return 2;

  gm_stats_t s0, s1;
  gm_stats(&s0);
  pthread_t reader, sleepy, workers[NWORKERS], coll, spawn, attach;
  int nready = 2;
  pthread_create(&reader, NULL, blocked_reader, NULL);
  pthread_create(&sleepy, NULL, sleeper, NULL);
#if defined(__x86_64__)
  pthread_t regs;
  pthread_create(&regs, NULL, reg_holder, NULL);
  nready++;
#endif
  while (atomic_load(&ready) < nready)
    usleep(1000);
  for (long i = 0; i < NWORKERS; i++)
    pthread_create(&workers[i], NULL, worker, (void *)i);
  pthread_create(&coll, NULL, collector, NULL);
  pthread_create(&spawn, NULL, spawner, NULL);
  pthread_create(&attach, NULL, attacher, NULL);

  double t0 = now_s();
  int nforks = 0;
  while (now_s() - t0 < run_seconds) {
    usleep(100000);
    if (forks_allowed && nforks < 5 && now_s() - t0 > 0.4 * (nforks + 1)) {
      fork_once();
      nforks++;
    }
  }
  atomic_store(&stop, 1);
  for (int i = 0; i < NWORKERS; i++)
    pthread_join(workers[i], NULL);
  pthread_join(coll, NULL);
  pthread_join(spawn, NULL);
  pthread_join(attach, NULL);

  // The blocked threads wake after everything else stopped.
  gm_collect();
  gm_collect();
  void *bad_reader = NULL, *bad_sleeper = NULL;
  if (write(read_pipe[1], "x", 1) != 1)
    return 2;
  pthread_join(reader, &bad_reader);
  pthread_join(sleepy, &bad_sleeper);
  CHECKF(bad_reader == NULL, "structures of the thread blocked in read(): %ld faults",
         (long)bad_reader);
  CHECKF(bad_sleeper == NULL, "structures of the sleeping thread: %ld faults", (long)bad_sleeper);
#if defined(__x86_64__)
  void *bad_regs = NULL;
  if (write(reg_pipe[1], "x", 1) != 1)
    return 2;
  pthread_join(regs, &bad_regs);
  CHECKF(bad_regs == NULL, "objects held in registers of a blocked thread: %ld faults",
         (long)bad_regs);
#endif

  int shared_bad = 0;
  for (int j = 0; j < NSHARED; j++)
    shared_bad += !verify(shared[j]);
  CHECKF(shared_bad == 0, "%d shared structures damaged", shared_bad);
  CHECKF(atomic_load(&corrupt) == 0, "%ld verification failures during the run",
         (long)atomic_load(&corrupt));
  gm_stats(&s1);
  uint64_t cycles = s1.num_gc - s0.num_gc;
  CHECKF(cycles >= (slow ? 5u : 50u), "only %llu collections in %.0f s", (unsigned long long)cycles,
         run_seconds);
  CHECKF(s1.num_gc - s1.num_forced_gc > s0.num_gc - s0.num_forced_gc,
         "no automatic collection ran");
  CHECKF(atomic_load(&forks_bad) == 0, "%ld of %d forked children failed",
         (long)atomic_load(&forks_bad), nforks);
  CHECKF(atomic_load(&spawned) > (slow ? 0 : 10), "only %ld short-lived threads ran",
         (long)atomic_load(&spawned));
  CHECKF(atomic_load(&attach_rounds) > (slow ? 0 : 2), "only %ld detach/attach rounds",
         (long)atomic_load(&attach_rounds));
  printf("%llu collections (%llu forced), %ld operations, %ld short-lived threads, %ld "
         "detach/attach rounds, %ld forks\n",
         (unsigned long long)cycles, (unsigned long long)(s1.num_forced_gc - s0.num_forced_gc),
         (long)atomic_load(&ops), (long)atomic_load(&spawned), (long)atomic_load(&attach_rounds),
         (long)atomic_load(&forks_ok));
  for (int j = 0; j < NSHARED; j++)
    shared[j] = NULL;
  return test_done();
}
