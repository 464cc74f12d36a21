// test_gc_regress: the collector's thread and lock protocol, one case per
// defect it once had (each failed before its fix). Cases that could hang run
// in a forked child with a timeout: a hang is a failure, not a stuck suite.
//   detach      gm_alloc after gm_thread_detach registers the thread again
//   dlclose     a library destructor collects while another thread collects
//   dlclose-fork  ... or forks
//   sigmask     threads that block every signal can still be stopped
//   tiny        gm_free / gm_realloc / gm_usable_size of any tiny object
//   remove      gm_remove_roots of a range that is then unmapped, while
//               another thread collects
//   clone       a thread made by clone() without CLONE_SETTLS gets a cache
//               of its own; one that shares TLS behind gomem's back is reported
//   prestart    threads started before the collector's first use are roots
//   quiet       a process that never collects: no signal handler, no thread
//   keyorder    a thread whose first gomem call was pthread_create releases
//               its caches before it leaves the collector's registry
#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
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
#define TEST_CHILD_TIMEOUT_MS 60000 // 40 dlopen/dlclose rounds under TSan take a while
#include "test.h"
#include "test_gc.h"

#ifndef GOMEM_SANITIZE
#define GOMEM_SANITIZE ""
#endif

static int sanitized; // ASan, TSan or valgrind build
static _Atomic int stop_flag;

// collector_main collects until stop_flag is set.
static void *collector_main(void *arg) {
  (void)arg;
  while (!atomic_load(&stop_flag)) {
    churn(64 << 10);
    gm_collect();
  }
  return NULL;
}

// The cases that run in a process of their own (re-executed: a fresh,
// single-threaded process, as TSan requires of processes that fork or start
// threads).
typedef struct child_case {
  const char *arg;
  void (*fn)(void);
} child_case_t;
static const child_case_t *child_cases;

// in_child runs fn in a new process and checks that it exited 0 in time.
static void in_child(const char *name, void (*fn)(void)) {
  const char *arg = NULL;
  for (const child_case_t *c = child_cases; c->arg; c++)
    if (c->fn == fn)
      arg = c->arg;
  test_outcome_t out;
  test_exec_self(arg, NULL, &out);
  int ok = !out.timed_out && WIFEXITED(out.status) && WEXITSTATUS(out.status) == 0;
  CHECKF(ok, "%s: %s (status %#x)\n%s", name, out.timed_out ? "hung" : "failed", out.status,
         out.err);
  report(name, ok);
}

// ---------------------------------------------------------------------------
// detach: an object a detached thread allocates and keeps on its stack

static sem_t det_ready, det_go;

static void *detach_main(void *arg) {
  (void)arg;
  gm_alloc(48); // registered, with windows of both classes loaded
  gm_alloc(3000);
  gm_thread_detach();
  void *volatile p[2];
  store_at(&p[0], make_guarded(48, 1, 1)); // a fast-path allocation
  store_at(&p[1], make_guarded(3000, 2, 1));
  clear_stack();
  sem_post(&det_ready);
  while (sem_wait(&det_go) != 0) {
  }
  churn(1 << 20); // sweeps this thread's cached spans: a reclaimed slot is reused
  int ok = gc_intact(p[0], 48, 1) && gc_intact(p[1], 3000, 2);
  if (ok) {
    gm_set_finalizer(p[0], NULL, NULL);
    gm_set_finalizer(p[1], NULL, NULL);
  }
  return (void *)(uintptr_t)ok;
}

static void case_detach(void) {
  sem_init(&det_ready, 0, 0);
  sem_init(&det_go, 0, 0);
  pthread_t t;
  pthread_create(&t, NULL, detach_main, NULL);
  while (sem_wait(&det_ready) != 0) {
  }
  for (int i = 0; i < 6; i++) {
    churn(1 << 20);
    collect();
  }
  sem_post(&det_go);
  void *ok;
  pthread_join(t, &ok);
  usleep(20000); // the finalizer thread runs what the cycles queued
  int k = atomic_load(&sentinel_ran[1]);
  CHECKF(ok != NULL && k == 0, "objects allocated after gm_thread_detach were reclaimed (%d)", k);
  report("gm_alloc after gm_thread_detach", ok != NULL && k == 0);
}

// ---------------------------------------------------------------------------
// dlclose: a destructor that collects, allocates or forks

static void hook_collect(void) {
  gm_collect();
}

static void hook_fork(void) {
  pid_t pid = fork();
  if (pid == 0)
    _exit(0);
  if (pid > 0)
    waitpid(pid, NULL, 0);
}

static void (*dtor_hook)(void);

static void dlclose_loop(void) {
  // The collector starts first: a thread blocked on the dynamic linker's lock
  // (the first gc_init asks the linker things) cannot be stopped under TSan,
  // which delivers signals only inside the calls it intercepts.
  gm_collect();
  pthread_t t;
  pthread_create(&t, NULL, collector_main, NULL);
  for (int i = 0; i < 40; i++) {
    void *h = dlopen(DTORLIB_PATH, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL)
      _exit(3);
    void (*set)(void (*)(void));
    *(void **)&set = dlsym(h, "dtorlib_set_hook");
    set(dtor_hook);
    dlclose(h);
  }
  atomic_store(&stop_flag, 1);
  pthread_join(t, NULL);
}

static void dlclose_collect(void) {
  dtor_hook = hook_collect;
  dlclose_loop();
}

static void dlclose_fork(void) {
  dtor_hook = hook_fork;
  dlclose_loop();
}

// ---------------------------------------------------------------------------
// sigmask: worker threads that block every signal

static void *blocking_main(void *arg) {
  (void)arg;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  sigprocmask(SIG_SETMASK, &all, NULL);
  while (!atomic_load(&stop_flag))
    churn(16 << 10); // allocates: registered, must be stoppable
  return NULL;
}

static void sigmask_child(void) {
  gm_collect(); // the collector is in use before any thread blocks signals
  pthread_t t[2];
  pthread_create(&t[0], NULL, blocking_main, NULL);
  // A thread created while its creator blocks every signal.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_create(&t[1], NULL, blocking_main, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  for (int i = 0; i < 20; i++)
    gm_collect();
  atomic_store(&stop_flag, 1);
  pthread_join(t[0], NULL);
  pthread_join(t[1], NULL);
  // The mask the program asked for holds, but for the stop signal.
  sigset_t now;
  pthread_sigmask(SIG_BLOCK, &all, &old);
  pthread_sigmask(SIG_SETMASK, &old, &now);
  if (!sigismember(&now, SIGUSR1) || !sigismember(&now, SIGTERM))
    _exit(4);
}

// ---------------------------------------------------------------------------
// tiny: objects of the tiny allocator, wherever they sit in their block

static void count_tiny_fin(void *obj, void *arg) {
  (void)obj;
  atomic_fetch_add((_Atomic int *)arg, 1);
}

NOINLINE static void tiny_child(void) {
  int ok = 1;
  for (int round = 0; round < 50; round++) {
    char *a = gm_alloc_noscan(1 + (size_t)round % 7);
    char *b = gm_alloc_noscan(3);
    char *c = gm_alloc_noscan(5);
    memcpy(b, "ab", 3);
    memcpy(c, "wxyz", 5);
    size_t ub = gm_usable_size(b), uc = gm_usable_size(c);
    ok &= ub <= 16 && uc <= 16;
    char *r = gm_realloc(c, 100); // grows: a new object with c's bytes
    ok &= r != NULL && memcmp(r, "wxyz", 5) == 0 && gm_usable_size(r) >= 100;
    char *x = gm_alloc_noscan(6); // grows into a tiny object carved just after it
    memcpy(x, "hello", 6);
    char *y = gm_realloc(x, 7);
    ok &= y != NULL && memcmp(y, "hello", 6) == 0;
    char *s = gm_realloc(b, 2); // shrinks: may stay
    ok &= s != NULL && s[0] == 'a' && s[1] == 'b';
    gm_free(a);
    if (s != b)
      gm_free(b);
    gm_free(r);
  }
  // A finalizer on a tiny object inside its block runs once the block is
  // unreachable; one freed with gm_free never runs.
  // (The thread's current tiny block is a root: a few may stay.)
  static _Atomic int tiny_fins, freed_fins;
  for (int i = 0; i < 64; i++) {
    char *t1 = gm_alloc_noscan(3), *t2 = gm_alloc_noscan(5);
    gm_set_finalizer(t2, count_tiny_fin, (void *)&tiny_fins);
    gm_set_finalizer(t1, count_tiny_fin, (void *)&freed_fins);
    gm_free(t1); // its finalizer goes with it
  }
  clear_stack();
  for (int r = 0; r < 20 && atomic_load(&tiny_fins) < 60; r++) {
    collect();
    usleep(5000);
  }
  if (atomic_load(&tiny_fins) < 56 || atomic_load(&freed_fins) != 0)
    fprintf(stderr, "tiny finalizers run: %d of 64, of freed objects %d\n", atomic_load(&tiny_fins),
            atomic_load(&freed_fins));
  ok &= atomic_load(&tiny_fins) >= 56 && atomic_load(&tiny_fins) <= 64 &&
        atomic_load(&freed_fins) == 0;
  if (!ok)
    _exit(5); // gm_usable_size / gm_realloc gave wrong results
}

// ---------------------------------------------------------------------------
// remove: a root range removed and unmapped while collections run

static void remove_child(void) {
  pthread_t t;
  pthread_create(&t, NULL, collector_main, NULL);
  size_t len = 1 << 20;
  for (int i = 0; i < 300; i++) {
    void **r = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (r == MAP_FAILED)
      _exit(3);
    for (size_t k = 0; k < len / sizeof(void *); k += 512)
      r[k] = gm_alloc(64);
    gm_add_roots(r, (char *)r + len);
    gm_remove_roots(r, (char *)r + len);
    munmap(r, len);
  }
  atomic_store(&stop_flag, 1);
  pthread_join(t, NULL);
}

// ---------------------------------------------------------------------------
// clone: threads sharing their parent's TLS

#define CLONE_OBJS 20000
static _Atomic int clone_go, clone_done;

// clone_work allocates CLONE_OBJS objects tagged with tag, frees every other
// one, and checks the rest; returns 0 if every object kept its tag.
static int clone_work(unsigned char tag) {
  static unsigned char *objs[2][CLONE_OBJS];
  unsigned char **o = objs[tag & 1];
  for (int i = 0; i < CLONE_OBJS; i++) {
    size_t n = 16 + (size_t)(i % 13) * 24;
    o[i] = gm_malloc(n);
    memset(o[i], tag, n);
  }
  for (int i = 0; i < CLONE_OBJS; i += 2)
    gm_free(o[i]);
  int bad = 0;
  for (int i = 1; i < CLONE_OBJS; i += 2)
    for (size_t k = 0; k < 16 + (size_t)(i % 13) * 24; k++)
      bad |= o[i][k] != tag;
  return bad;
}

static int clone_fn(void *arg) {
  (void)arg;
  while (!atomic_load(&clone_go)) {
  }
  atomic_store(&clone_done, clone_work(0xB1) ? 2 : 1);
  return 0;
}

static void *nothing(void *arg) {
  return arg;
}

// multi_threaded: the C library takes its locks without atomics until the
// process has made a thread with pthread_create (a raw clone does not count),
// so a program that clones threads makes a pthread first.
static void multi_threaded(void) {
  pthread_t t;
  pthread_create(&t, NULL, nothing, NULL);
  pthread_join(t, NULL);
}

// clone_child: glibc's clone without CLONE_SETTLS: gomem gives each thread
// its own cache; both threads' objects stay distinct.
static void clone_child(void) {
  multi_threaded();
  gm_free(gm_malloc(32)); // the parent's cache exists
  size_t len = 1 << 20;
  char *stack = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  int flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
  if (clone(clone_fn, stack + len, flags, NULL) < 0)
    _exit(3);
  atomic_store(&clone_go, 1);
  int bad = clone_work(0xA2);
  while (atomic_load(&clone_done) == 0) {
  }
  _exit(bad || atomic_load(&clone_done) != 1 ? 4 : 0);
}

// hidden_child: a thread given its parent's thread pointer as its TLS (as a
// raw clone would leave it): reported at its first cache refill.
static void hidden_child(void) {
  multi_threaded();
  gm_free(gm_malloc(32));
  size_t len = 1 << 20;
  char *stack = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  void *tp;
  __asm__("mov %%fs:0, %0" : "=r"(tp));
  int flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM |
              CLONE_SETTLS;
  if (clone(clone_fn, stack + len, flags, NULL, NULL, tp, NULL) < 0)
    _exit(3);
  atomic_store(&clone_go, 1);
  sleep(5); // the clone thread's report ends the process
}

static void case_clone(void) {
  const char *name = "clone() without CLONE_SETTLS: a cache per thread";
  const char *name2 = "a thread sharing TLS unknown to gomem is reported";
  if (sanitized) { // gomem's malloc is not the program's; sanitizers need a TLS per thread
    test_skip(name, "sanitizer or valgrind build");
    test_skip(name2, "sanitizer or valgrind build");
    return;
  }
  in_child(name, clone_child);
#if defined(__x86_64__)
  test_outcome_t out;
  test_exec_self("hidden", NULL, &out);
  int ok = !out.timed_out && WIFSIGNALED(out.status) && WTERMSIG(out.status) == SIGABRT &&
           strstr(out.err, "CLONE_SETTLS") != NULL;
  CHECKF(ok, "a thread sharing TLS not reported (status %#x): %s", out.status, out.err);
  report(name2, ok);
#else
  test_skip(name2, "x86-64 only");
#endif
}

// ---------------------------------------------------------------------------
// prestart: threads started before the collector is in use hold GC pointers

#define PRE_THREADS 3
static sem_t pre_go[PRE_THREADS], pre_ready[PRE_THREADS], pre_check[PRE_THREADS];
static void *volatile pre_handoff[PRE_THREADS];
static _Atomic int pre_bad;

static void *pre_main(void *arg) {
  int i = (int)(intptr_t)arg;
  while (sem_wait(&pre_go[i]) != 0) {
  }
  void *volatile mine = pre_handoff[i]; // only this thread's stack holds it now
  pre_handoff[i] = NULL;
  sem_post(&pre_ready[i]);
  while (sem_wait(&pre_check[i]) != 0) {
  }
  if (!gc_intact(mine, 200, 500 + (uint64_t)i))
    atomic_fetch_add(&pre_bad, 1);
  return NULL;
}

static void prestart_child(void) {
  pthread_t t[PRE_THREADS];
  for (int i = 0; i < PRE_THREADS; i++) {
    sem_init(&pre_go[i], 0, 0);
    sem_init(&pre_ready[i], 0, 0);
    sem_init(&pre_check[i], 0, 0);
    pthread_create(&t[i], NULL, pre_main, (void *)(intptr_t)i);
  }
  for (int i = 0; i < PRE_THREADS; i++) { // the collector's first use
    store_at(&pre_handoff[i], make_guarded(200, 500 + (uint64_t)i, 2));
    sem_post(&pre_go[i]);
    while (sem_wait(&pre_ready[i]) != 0) {
    }
  }
  for (int r = 0; r < 6; r++) {
    churn(1 << 20);
    collect();
  }
  for (int i = 0; i < PRE_THREADS; i++) {
    sem_post(&pre_check[i]);
    pthread_join(t[i], NULL);
  }
  usleep(20000);
  if (atomic_load(&pre_bad) != 0 || atomic_load(&sentinel_ran[2]) != 0)
    _exit(6);
}

// quiet: a process that never calls a collector function gets no stop
// signal handler and no thread of gomem's, even as it starts threads.
static void *quiet_thread(void *arg) {
  free(malloc(100));
  return arg;
}

static int task_count(void) {
  int n = 0;
  DIR *d = opendir("/proc/self/task");
  if (d == NULL)
    return -1;
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

static void quiet_child(void) {
  pthread_t t[4];
  for (int i = 0; i < 4; i++)
    pthread_create(&t[i], NULL, quiet_thread, NULL);
  for (int i = 0; i < 4; i++)
    pthread_join(t[i], NULL);
  for (int i = 0; i < 100000; i++) // enough frees to wake a scavenger, if it were the collector's
    free(malloc(64 + (size_t)(i % 50) * 64));
  struct sigaction sa;
  sigaction(SIGPWR, NULL, &sa);
  if (sa.sa_handler != SIG_DFL)
    _exit(7); // a stop signal handler was installed
  sigset_t all, now;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  pthread_sigmask(SIG_BLOCK, NULL, &now);
  if (!sigismember(&now, SIGPWR))
    _exit(8); // the mask was changed
  int n = task_count();
  if (n != 1 && n != 2) // the main thread, and perhaps the allocator's scavenger
    _exit(9);
}

// ---------------------------------------------------------------------------
// keyorder: run in a new process whose first gomem call is pthread_create

static void *keyorder_thread(void *arg) {
  (void)arg;
  churn(256 << 10);
  return NULL;
}

static int keyorder_main(void) {
  pthread_t c;
  pthread_create(&c, NULL, collector_main, NULL);
  for (int i = 0; i < 50; i++) {
    pthread_t t;
    pthread_create(&t, NULL, keyorder_thread, NULL);
    pthread_join(t, NULL);
  }
  atomic_store(&stop_flag, 1);
  pthread_join(c, NULL);
  return 0;
}

static void case_keyorder(void) {
  char out[4096];
  int st = test_run_self("keyorder", "GOMEM_GOGC=10", 2, out, sizeof out);
  int ok = st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
  CHECKF(ok, "threads whose first call was pthread_create (status %#x): %s", st, out);
  report("thread exit when pthread_create came first", ok);
}

// ---------------------------------------------------------------------------

static const child_case_t cases[] = {
    {"dlclose-collect", dlclose_collect},
    {"dlclose-fork", dlclose_fork},
    {"sigmask", sigmask_child},
    {"tiny", tiny_child},
    {"remove", remove_child},
    {"clone", clone_child},
    {"hidden", hidden_child},
    {"prestart", prestart_child},
    {"quiet", quiet_child},
    {NULL, NULL},
};

int main(int argc, char **argv) {
  child_cases = cases;
  test_self = argv[0];
  if (argc > 1 && strcmp(argv[1], "keyorder") == 0)
    return keyorder_main();
  for (const child_case_t *c = cases; argc > 1 && c->arg; c++) {
    if (strcmp(argv[1], c->arg) == 0) {
      c->fn();
      return 0;
    }
  }
  if (argc > 1) {
    fprintf(stderr, "test_gc_regress: no case %s\n", argv[1]);
    return 2;
  }
  sanitized = GOMEM_SANITIZE[0] != 0;
  case_detach();
  in_child("a library destructor collects during dlclose", dlclose_collect);
  in_child("a library destructor forks during dlclose", dlclose_fork);
  in_child("threads that block every signal are stopped", sigmask_child);
  in_child("gm_free / gm_realloc / gm_usable_size of tiny objects", tiny_child);
  in_child("gm_remove_roots, then munmap, while collecting", remove_child);
  case_clone();
  in_child("threads started before the collector hold GC pointers", prestart_child);
  if (GOMEM_SANITIZE[0] == 0) // the sanitizers' runtimes start threads and handle signals
    in_child("no collector threads or signals without a collector call", quiet_child);
  else
    test_skip("no collector threads or signals without a collector call",
              "the sanitizers' runtimes start threads and handle signals");
  case_keyorder();
  return test_done();
}
