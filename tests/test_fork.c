// test_fork: fork while other threads are inside the allocator.
//
// Hammer threads allocate and free small objects across many classes (span
// trades at mcentral), large objects (mheap), and now and then release memory
// (mheap + scavenging), so at any moment some allocator lock is likely held.
// The main thread forks many times; each child allocates and frees a few
// hundred objects of various sizes (large included), checks their contents,
// reads the statistics, releases memory, starts a thread that allocates, and
// exits 0. gomem's pthread_atfork handlers must leave every lock usable in
// the child: a child that hangs (deadlock) is killed after a timeout and
// counted as a failure, as is any non-zero exit or signal.
//
// Under TSan the children do not create threads (TSan does not support new
// threads after a multi-threaded fork).
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gomem.h"
#include "test.h"

#ifndef GOMEM_SANITIZE
#define GOMEM_SANITIZE ""
#endif

#define NFORKS 200
#define NHAMMER 3
// (the hardened build zeroes, guards and quarantines every large object:
// a child's 300 objects of up to 6 MiB take seconds there under load)
#define CHILD_TIMEOUT_MS (GM_SECURE ? 30000 : 5000)
#define MAX_HUNG 2           // stop forking after this many hung children
#define MIN_FORKS 50         // forks every run makes (a slow machine takes longer)
#define TIME_BUDGET_MS 15000 // past MIN_FORKS, stop forking after this long

static atomic_int stop;
static atomic_long progress; // bumped by the main loop; the watchdog checks it
static atomic_long hammer_ops[NHAMMER];

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t rng_next(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

// ---------------------------------------------------------------------------
// Hammer threads (parent)

static void *hammer(void *arg) {
  int id = (int)(intptr_t)arg;
  uint64_t seed = 0x9e3779b97f4a7c15ULL * (uint64_t)(id + 1);
  enum { SLOTS = 512 };
  void *slot[SLOTS] = {0};
  long ops = 0;
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    uint64_t r = rng_next(&seed);
    size_t i = r % SLOTS;
    if (slot[i]) {
      gm_free(slot[i]);
      slot[i] = NULL;
    }
    size_t size;
    switch ((r >> 16) % 16) {
    case 0: // large: mheap lock
      size = 32769 + (r >> 24) % (512 * 1024);
      break;
    case 1: // bigger classes: more span trades per object
      size = 8192 + (r >> 24) % 24576;
      break;
    default: // small, many classes
      size = 1 + (r >> 24) % 2048;
      break;
    }
    slot[i] = gm_malloc(size);
    if (slot[i])
      *(volatile char *)slot[i] = (char)i;
    if ((r >> 40) % 4096 == 0) { // free everything: spans go back to mheap
      for (size_t k = 0; k < SLOTS; k++) {
        gm_free(slot[k]);
        slot[k] = NULL;
      }
      if (id == 0)
        gm_release_memory();
    }
    atomic_store_explicit(&hammer_ops[id], ++ops, memory_order_relaxed);
  }
  for (size_t k = 0; k < SLOTS; k++)
    gm_free(slot[k]);
  return NULL;
}

// ---------------------------------------------------------------------------
// Child

// child_threads_ok: may a child start a thread? Not under TSan (it kills a
// child of a multi-threaded process that does), nor under GCC 12's ASan,
// whose allocator is not locked around fork: a child's new thread can hang
// in ASan's own start-up (pthread_getattr_np -> free -> quarantine) on an
// allocator lock inherited held. Release, debug and valgrind builds test it.
static int child_threads_ok(void) {
#ifdef TEST_TSAN
  return 0;
#else
  return strcmp(GOMEM_SANITIZE, "thread") != 0 && strcmp(GOMEM_SANITIZE, "address") != 0;
#endif
}

static void *child_thread(void *arg) {
  (void)arg;
  intptr_t bad = 0;
  for (int i = 0; i < 200; i++) {
    char *p = gm_malloc((size_t)(i * 37 % 5000) + 1);
    if (!p) {
      bad = 1;
      break;
    }
    p[0] = 1;
    gm_free(p);
  }
  void *big = gm_malloc(200000);
  if (!big)
    bad = 1;
  gm_free(big);
  return (void *)bad;
}

static const size_t child_sizes[] = {1,     8,     24,    64,     100,     256,    513,
                                     1024,  1500,  4000,  8192,   12000,   20000,  32768,
                                     32769, 65536, 70000, 200000, 1 << 20, 3 << 20};
#define NCHILD_SIZES (sizeof child_sizes / sizeof child_sizes[0])

static int child_main(unsigned iter) {
  enum { N = 300 };
  char *p[N];
  size_t sz[N];
  for (int i = 0; i < N; i++) {
    sz[i] = child_sizes[(iter + (unsigned)i) % NCHILD_SIZES];
    p[i] = gm_malloc(sz[i]);
    if (p[i] == NULL)
      return 10;
    memset(p[i], (unsigned char)i, sz[i] < 4096 ? sz[i] : 4096);
    p[i][sz[i] - 1] = (char)(i ^ 0x5a);
  }
  for (int i = 0; i < N; i++) {
    size_t n = sz[i] < 4096 ? sz[i] : 4096;
    for (size_t k = 0; k + 1 < n; k++)
      if ((unsigned char)p[i][k] != (unsigned char)i)
        return 11;
    if (p[i][sz[i] - 1] != (char)(i ^ 0x5a))
      return 12;
  }
  for (int i = 0; i < N; i += 2)
    gm_free(p[i]);
  // Reallocations and calloc across classes while half is still live.
  for (int i = 1; i < N; i += 2) {
    char first = sz[i] == 1 ? (char)(i ^ 0x5a) : (char)i;
    char *q = gm_realloc(p[i], sz[i] * 2 + 1);
    if (q == NULL || q[0] != first || q[sz[i] - 1] != (char)(i ^ 0x5a))
      return 13;
    gm_free(q);
  }
  unsigned char *z = gm_calloc(1000, 1000);
  if (z == NULL || z[0] != 0 || z[999999] != 0)
    return 14;
  gm_free(z);
  gm_stats_t st;
  gm_stats(&st); // registry and heap locks
  if (st.heap_sys == 0 || st.mallocs < N)
    return 15;
  gm_release_memory(); // heap lock, scavenging
  if (child_threads_ok()) {
    pthread_t t;
    void *ret = (void *)1;
    if (pthread_create(&t, NULL, child_thread, NULL) != 0)
      return 16;
    pthread_join(t, &ret);
    if (ret != NULL)
      return 17;
  }
  void *last = gm_malloc(100);
  if (last == NULL)
    return 18;
  gm_free(last);
  return 0;
}

// ---------------------------------------------------------------------------
// Watchdog: a hang in the parent (fork handlers deadlocking) ends the test.

static void *watchdog(void *arg) {
  (void)arg;
  long last = -1, since = now_ms();
  while (!atomic_load(&stop)) {
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    long p = atomic_load(&progress);
    if (p != last) {
      last = p;
      since = now_ms();
    } else if (now_ms() - since > 20000) {
      static const char msg[] = "test_fork: parent made no progress for 20 s (deadlock in fork?)\n"
                                "0 passed, 1 failed\n";
      if (write(2, msg, sizeof msg - 1) < 0) {
      }
      _exit(1);
    }
  }
  return NULL;
}

// dump_stacks prints every thread's stack of a hung child with gdb, when
// gdb is installed, so that a deadlock names its locks in the test log.
static void dump_stacks(pid_t pid) {
  if (access("/usr/bin/gdb", X_OK) != 0)
    return;
  char cmd[128];
  snprintf(cmd, sizeof cmd,
           "timeout 60 /usr/bin/gdb -p %d -batch -ex 'thread apply all bt' 1>&2 2>/dev/null",
           (int)pid);
  if (system(cmd) != 0)
    fprintf(stderr, "(gdb could not attach to child %d)\n", (int)pid);
}

// wait_child waits up to CHILD_TIMEOUT_MS for pid; returns its status, or -1
// if it hung (it is then killed and reaped).
static int wait_child(pid_t pid) {
  long t0 = now_ms();
  int status;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid)
      return status;
    if (r < 0 && errno != EINTR)
      return -2;
    if (now_ms() - t0 > CHILD_TIMEOUT_MS) {
      dump_stacks(pid);
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    struct timespec ts = {0, 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0); // nothing buffered to duplicate in children
  struct rlimit no_core = {0, 0};
  setrlimit(RLIMIT_CORE, &no_core);

  if (!child_threads_ok()) {
    // No thread may start in a child (child_threads_ok), and
    // gomem's scavenger thread starts on demand after large frees, in the
    // children too. Turn it off (read once, at gomem's initialisation).
    printf("GOMEM_SANITIZE=\"%s\": children start no threads and the scavenger is off "
           "(the sanitizer does not support threads after a multi-threaded fork)\n",
           GOMEM_SANITIZE);
    setenv("GOMEM_SCAVENGE", "0", 1);
  } else if (strcmp(GOMEM_SANITIZE, "") != 0) {
    // GCC 12's ASan does not lock its own thread registry around fork: a
    // child forked while the parent's scavenger thread is being created
    // inherits that lock held and hangs in its own pthread_create. So no
    // thread may be created in the parent while it forks: the scavenger
    // (started on demand) is off under sanitizers.
    printf("GOMEM_SANITIZE=\"%s\": the scavenger is off (no thread creation while forking)\n",
           GOMEM_SANITIZE);
    setenv("GOMEM_SCAVENGE", "0", 1);
  }
  // Initialise gomem (and its fork handlers) before any thread starts.
  gm_free(gm_malloc(16));

  pthread_t wd, th[NHAMMER];
  pthread_create(&wd, NULL, watchdog, NULL);
  for (int i = 0; i < NHAMMER; i++)
    pthread_create(&th[i], NULL, hammer, (void *)(intptr_t)i);
  // Let the hammers get going.
  while (atomic_load(&hammer_ops[NHAMMER - 1]) < 1000) {
    struct timespec ts = {0, 1000 * 1000};
    nanosleep(&ts, NULL);
  }

  int forks = 0, ok = 0, hung = 0, bad_exit = 0, signalled = 0;
  long t0 = now_ms();
  for (unsigned i = 0; i < NFORKS; i++) {
    if (hung >= MAX_HUNG || (forks >= MIN_FORKS && now_ms() - t0 > TIME_BUDGET_MS))
      break;
    pid_t pid = fork();
    if (pid < 0) {
      perror("fork");
      break;
    }
    if (pid == 0)
      _exit(child_main(i));
    forks++;
    int st = wait_child(pid);
    if (st == -1) {
      hung++;
      fprintf(stderr, "child %u hung (killed after %d ms)\n", i, CHILD_TIMEOUT_MS);
    } else if (st < 0) {
      bad_exit++;
      fprintf(stderr, "child %u: waitpid failed\n", i);
    } else if (WIFSIGNALED(st)) {
      signalled++;
      fprintf(stderr, "child %u died of signal %d\n", i, WTERMSIG(st));
    } else if (WEXITSTATUS(st) != 0) {
      bad_exit++;
      fprintf(stderr, "child %u exited %d\n", i, WEXITSTATUS(st));
    } else {
      ok++;
    }
    atomic_fetch_add(&progress, 1);
  }
  atomic_store(&stop, 1);
  for (int i = 0; i < NHAMMER; i++)
    pthread_join(th[i], NULL);
  pthread_join(wd, NULL);

  long ops = 0;
  for (int i = 0; i < NHAMMER; i++)
    ops += atomic_load(&hammer_ops[i]);
  printf("%d forks in %ld ms, %d ok, %d hung, %d bad exits, %d signalled; %ld hammer ops\n", forks,
         now_ms() - t0, ok, hung, bad_exit, signalled, ops);
  CHECKF(forks >= MIN_FORKS, "only %d forks", forks);
  CHECK(hung == 0);
  CHECK(bad_exit == 0);
  CHECK(signalled == 0);
  CHECK(ok == forks);
  // The parent's heap still works after all the forks.
  void *p = gm_malloc(1 << 20), *q = gm_malloc(100);
  CHECK(p != NULL && q != NULL);
  gm_free(p);
  gm_free(q);
  return test_done();
}
