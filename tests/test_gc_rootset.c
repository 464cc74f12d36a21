// test_gc_rootset: the root-set matrix. A GC object whose only pointer sits
// in one kind of place must survive many collections with its contents
// intact, and its sentinel finalizer (which runs only if the collector
// thought it unreachable) must never run. The places (test_gc_roots covers
// the stack, callee-saved registers, globals, a shared library's globals,
// gm_add_roots ranges and heap links):
//   - static TLS of the main thread, and of another thread;
//   - dynamic TLS of a dlopen'ed library (tlslib.c), main thread and another;
//   - a pthread key's value on the main thread (its descriptor is not on a stack);
//   - a finalizer's argument (kept alive until the finalizer has run);
//   - the stack of a thread blocked in a system call (poll on a pipe);
//   - the stack of a thread with a 64 KiB stack that collects itself;
//   - the alternate signal stack of a handler that is waiting;
//   - a pointer just past the end of an object, with GOMEM_GC_PAD=1 (objects
//     one byte longer; by default such a pointer keeps nothing alive).
#include <dlfcn.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gomem.h"
#include "test.h"
#include "test_gc.h"

#ifndef GOMEM_SANITIZE
#define GOMEM_SANITIZE ""
#endif

static int rounds = 12;
static size_t churn_bytes = 1u << 20;
static int cur_case; // the case running (objects made now are counted for it)

static uintptr_t make(size_t size, uint64_t seed) {
  return make_guarded(size, seed, cur_case);
}

// verdict reports case c: ok, and none of its objects finalized.
static void verdict(const char *name, int c, int ok) {
  for (int i = 0; i < 3; i++) { // let the finalizer thread run what is queued
    collect();
    usleep(10000);
  }
  int k = atomic_load(&sentinel_ran[c]);
  CHECKF(k == 0, "%s: %d reachable objects were finalized", name, k);
  report(name, ok && k == 0);
}

// check reports whether p is intact and, if so, drops its sentinel.
static int check(void *p, size_t size, uint64_t seed) {
  int ok = p != NULL && gc_intact(p, size, seed);
  if (ok)
    gm_set_finalizer(p, NULL, NULL);
  return ok;
}

NOINLINE static void survive(void) {
  for (int r = 0; r < rounds; r++) {
    churn(churn_bytes);
    collect();
  }
}

// ---------------------------------------------------------------------------
// Static TLS

static __thread void *volatile tls_slot[2];
// A large static TLS segment: the dynamic linker cannot fit the main thread's
// TLS block into the tail of its own data segment and maps it anonymously.
static __thread char tls_big[8 << 10];

NOINLINE static void tls_store(uintptr_t a, uintptr_t b) {
  tls_big[a % sizeof tls_big]++;
  tls_slot[0] = unhide(a);
  tls_slot[1] = (char *)unhide(b) + 100; // interior
}

NOINLINE static int tls_check(uint64_t seed) {
  return check(tls_slot[0], 64, seed) & check((char *)tls_slot[1] - 100, 5000, seed + 1);
}

NOINLINE static void case_main_tls(void) {
  uintptr_t a = make(64, 1), b = make(5000, 2);
  clear_stack();
  tls_store(a, b);
  survive();
  int ok = tls_check(1);
  CHECKF(ok, "objects in the main thread's static TLS not intact");
  verdict("static TLS, main thread", 1, ok);
  tls_slot[0] = tls_slot[1] = NULL;
}

// A parked thread: fills its slots, then blocks until the main thread has
// collected.
typedef struct parked {
  sem_t ready, go;
  int ok;
  void (*store)(uint64_t seed);
  int (*verify)(uint64_t seed);
  uint64_t seed;
} parked_t;

NOINLINE static void tls_store_seed(uint64_t seed) {
  uintptr_t a = make(64, seed), b = make(5000, seed + 1);
  clear_stack();
  tls_store(a, b);
}

static void *parked_main(void *arg) {
  parked_t *pk = arg;
  pk->store(pk->seed);
  sem_post(&pk->ready);
  while (sem_wait(&pk->go) != 0) {
  }
  pk->ok = pk->verify(pk->seed);
  return NULL;
}

// run_parked runs store on a new thread, collects while it waits, then runs
// verify there. Returns verify's result.
static int run_parked(void (*store)(uint64_t), int (*verify)(uint64_t), uint64_t seed) {
  parked_t pk = {.store = store, .verify = verify, .seed = seed};
  sem_init(&pk.ready, 0, 0);
  sem_init(&pk.go, 0, 0);
  pthread_t t;
  pthread_create(&t, NULL, parked_main, &pk);
  while (sem_wait(&pk.ready) != 0) {
  }
  survive();
  sem_post(&pk.go);
  pthread_join(t, NULL);
  sem_destroy(&pk.ready);
  sem_destroy(&pk.go);
  return pk.ok;
}

static void case_thread_tls(void) {
  int ok = run_parked(tls_store_seed, tls_check, 10);
  CHECKF(ok, "objects in another thread's static TLS not intact");
  verdict("static TLS, another thread", 2, ok);
}

// ---------------------------------------------------------------------------
// Dynamic TLS (dlopen)

static void (*tl_set)(int, void *);
static void *(*tl_get)(int);

NOINLINE static void dyn_store(uint64_t seed) {
  uintptr_t a = make(48, seed), b = make(40000, seed + 1);
  clear_stack();
  tl_set(0, unhide(a));
  tl_set(1, (char *)unhide(b) + 8);
}

NOINLINE static int dyn_check(uint64_t seed) {
  int ok = check(tl_get(0), 48, seed) & check((char *)tl_get(1) - 8, 40000, seed + 1);
  tl_set(0, NULL);
  tl_set(1, NULL);
  return ok;
}

static void case_dynamic_tls(void) {
  void *h = dlopen(TLSLIB_PATH, RTLD_NOW | RTLD_LOCAL);
  CHECKF(h != NULL, "dlopen %s: %s", TLSLIB_PATH, dlerror());
  if (h == NULL)
    return;
  *(void **)&tl_set = dlsym(h, "tlslib_set");
  *(void **)&tl_get = dlsym(h, "tlslib_get");
  dyn_store(20);
  survive();
  int ok_main = dyn_check(20);
  CHECKF(ok_main, "objects in a dlopen'ed library's TLS (main thread) not intact");
  int ok_thread = run_parked(dyn_store, dyn_check, 30);
  CHECKF(ok_thread, "objects in a dlopen'ed library's TLS (another thread) not intact");
  verdict("dynamic TLS of a dlopen'ed library", 3, ok_main && ok_thread);
  // The library stays loaded: other threads' blocks of it may still exist.
}

// ---------------------------------------------------------------------------
// A pthread key's value on the main thread

static pthread_key_t key;

NOINLINE static void case_key(void) {
  pthread_key_create(&key, NULL);
  uintptr_t a = make(96, 40);
  clear_stack();
  pthread_setspecific(key, unhide(a));
  survive();
  int ok = check(pthread_getspecific(key), 96, 40);
  CHECKF(ok, "object held by a pthread key of the main thread not intact");
  verdict("pthread key value, main thread", 4, ok);
  pthread_setspecific(key, NULL);
}

// ---------------------------------------------------------------------------
// A finalizer's argument

// The finalizer waits until the main thread has allocated over the memory
// the argument would occupy if it had been reclaimed, then checks it.
static _Atomic int arg_fin_started, arg_fin_ran, arg_fin_ok;
static sem_t arg_go;

static void arg_fin(void *obj, void *arg) {
  (void)obj;
  atomic_store(&arg_fin_started, 1);
  while (sem_wait(&arg_go) != 0) {
  }
  atomic_store(&arg_fin_ok, gc_intact(arg, 256, 50) && gc_intact((char *)arg + 256, 256, 51));
  atomic_store(&arg_fin_ran, 1);
}

// reuse512 allocates n objects of the argument's size class (gm_alloc
// zeroes them): a reclaimed argument would be among them.
NOINLINE static void reuse512(int n) {
  for (int i = 0; i < n; i++)
    ((uint64_t *)gm_alloc(512))[0] = 0xDEADBEEFDEADBEEFull;
}

NOINLINE static void make_arg_fin(void) {
  void *obj = gm_alloc(32);
  char *arg = gm_alloc(512);
  fill(arg, 256, 50);
  fill(arg + 256, 256, 51);
  gm_set_finalizer(obj, arg_fin, arg);
}

NOINLINE static void case_fin_arg(void) {
  sem_init(&arg_go, 0, 0);
  make_arg_fin();
  clear_stack();
  for (int r = 0; r < 4 * rounds && !atomic_load(&arg_fin_started); r++) {
    collect();
    usleep(2000);
  }
  for (int r = 0; r < 3; r++) {
    reuse512(20000);
    collect();
  }
  sem_post(&arg_go);
  for (int r = 0; r < 1000 && !atomic_load(&arg_fin_ran); r++)
    usleep(2000);
  int ok = atomic_load(&arg_fin_ran) && atomic_load(&arg_fin_ok);
  CHECKF(atomic_load(&arg_fin_ran), "the finalizer never ran");
  CHECKF(ok || !atomic_load(&arg_fin_ran), "a finalizer's argument was reclaimed before it ran");
  report("finalizer argument", ok);
}

// ---------------------------------------------------------------------------
// A thread blocked in a system call

static int pipefd[2];
static _Atomic int blocked_ok;

NOINLINE static void *blocked_main(void *arg) {
  (void)arg;
  void *volatile p;
  store_at(&p, make(700, 60));
  clear_stack();
  char c;
  write(pipefd[1], "r", 1); // ready
  // Blocked in poll (under TSan, which delivers signals only inside the calls
  // it knows to block, a thread blocked in read could not be stopped).
  struct pollfd pfd = {.fd = pipefd[0], .events = POLLIN};
  while (poll(&pfd, 1, -1) != 1 || read(pipefd[0], &c, 1) != 1 || c != 'g') {
  }
  atomic_store(&blocked_ok, check(p, 700, 60));
  return NULL;
}

static void case_blocked(void) {
  int in[2], out[2];
  if (pipe(in) != 0 || pipe(out) != 0)
    abort();
  pipefd[0] = in[0];
  pipefd[1] = out[1];
  pthread_t t;
  pthread_create(&t, NULL, blocked_main, NULL);
  char c;
  while (read(out[0], &c, 1) != 1) {
  }
  survive();
  write(in[1], "g", 1);
  pthread_join(t, NULL);
  int ok = atomic_load(&blocked_ok);
  CHECKF(ok, "object on the stack of a thread blocked in read() not intact");
  verdict("thread blocked in a system call", 6, ok);
  close(in[0]);
  close(in[1]);
  close(out[0]);
  close(out[1]);
}

// ---------------------------------------------------------------------------
// A thread with a small stack that collects itself

NOINLINE static void *small_main(void *arg) {
  (void)arg;
  void *volatile p;
  store_at(&p, make(200, 70));
  for (int r = 0; r < rounds; r++) {
    churn(churn_bytes / 4);
    gm_collect();
  }
  return (void *)(uintptr_t)check(p, 200, 70);
}

static void case_small_stack(void) {
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setstacksize(&a, 64 << 10);
  pthread_t t;
  void *ret = NULL;
  int rc = pthread_create(&t, &a, small_main, NULL);
  CHECKF(rc == 0, "pthread_create with a 64 KiB stack: %d", rc);
  if (rc == 0)
    pthread_join(t, &ret);
  pthread_attr_destroy(&a);
  CHECKF(ret != NULL, "object on a 64 KiB thread stack not intact");
  verdict("thread with a 64 KiB stack, collecting", 7, ret != NULL);
}

// ---------------------------------------------------------------------------
// A signal handler waiting on its alternate stack

static sem_t alt_ready, alt_go;
static _Atomic int alt_ok, alt_on_stack;

NOINLINE static void alt_handler(int sig) {
  (void)sig;
  stack_t ss;
  sigaltstack(NULL, &ss);
  atomic_store(&alt_on_stack, (ss.ss_flags & SS_ONSTACK) != 0);
  void *volatile p;
  store_at(&p, make(300, 80));
  sem_post(&alt_ready);
  while (sem_wait(&alt_go) != 0) {
  }
  atomic_store(&alt_ok, check(p, 300, 80));
}

static void *alt_main(void *arg) {
  (void)arg;
  stack_t ss = {.ss_size = 256 << 10, .ss_flags = 0};
  ss.ss_sp = mmap(NULL, ss.ss_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  sigaltstack(&ss, NULL);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = alt_handler;
  sa.sa_flags = SA_ONSTACK;
  sigaction(SIGUSR1, &sa, NULL);
  raise(SIGUSR1);
  ss.ss_flags = SS_DISABLE;
  sigaltstack(&ss, NULL);
  return NULL;
}

static void case_altstack(void) {
#ifdef TEST_TSAN
  // TSan blocks every signal while a program's handler runs: a thread waiting
  // in its handler cannot be stopped.
  test_skip("signal handler on an alternate stack", "TSan blocks signals in handlers");
  return;
#endif
  sem_init(&alt_ready, 0, 0);
  sem_init(&alt_go, 0, 0);
  pthread_t t;
  pthread_create(&t, NULL, alt_main, NULL);
  while (sem_wait(&alt_ready) != 0) {
  }
  survive();
  sem_post(&alt_go);
  pthread_join(t, NULL);
  CHECKF(atomic_load(&alt_on_stack), "the handler did not run on its alternate stack");
  int ok = atomic_load(&alt_ok);
  CHECKF(ok, "object held by a handler on its alternate signal stack not intact");
  verdict("signal handler on an alternate stack", 8, ok);
}

// ---------------------------------------------------------------------------
// One past the end (GOMEM_GC_PAD=1, in a process of its own)

static int pad_child(void) {
  void *volatile end[3];
  static const size_t sizes[3] = {48, 1000, 70000}; // class sizes, and a large object
  for (int i = 0; i < 3; i++) {
    char *p = unhide(make(sizes[i], 90 + (uint64_t)i));
    end[i] = p + sizes[i];
  }
  clear_stack();
  survive();
  int ok = 1;
  for (int i = 0; i < 3; i++)
    ok &= check((char *)end[i] - sizes[i], sizes[i], 90 + (uint64_t)i);
  for (int i = 0; i < 3; i++) {
    collect();
    usleep(10000);
  }
  ok &= atomic_load(&sentinel_ran[cur_case]) == 0;
  return ok ? 0 : 1;
}

static void case_pad(void) {
  test_outcome_t out;
  test_exec_self("pad", "GOMEM_GC_PAD=1", &out);
  int ok = !out.timed_out && WIFEXITED(out.status) && WEXITSTATUS(out.status) == 0;
  CHECKF(ok, "objects held only by a pointer just past their end (status %#x): %s", out.status,
         out.err);
  report("a pointer just past the end, GOMEM_GC_PAD=1", ok);
}

// ---------------------------------------------------------------------------

int main(int argc, char **argv) {
  test_self = argv[0];
  if (argc > 1 && strcmp(argv[1], "pad") == 0) {
    cur_case = 9;
    return pad_child();
  }
  if (GOMEM_SANITIZE[0] != 0 || GM_DEBUG >= 2) {
    rounds = 6;
    churn_bytes = 256u << 10;
  }
  static void (*const cases[])(void) = {case_main_tls,    case_thread_tls, case_dynamic_tls,
                                        case_key,         case_fin_arg,    case_blocked,
                                        case_small_stack, case_altstack, case_pad};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cur_case = (int)i + 1;
    cases[i]();
  }
  return test_done();
}
