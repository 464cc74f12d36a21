// test.h: gomem's minimal test harness. CHECK counts and reports; each test
// program ends with test_done(), which prints "N passed, M failed" and sets
// the exit status.
#ifndef GOMEM_TEST_H
#define GOMEM_TEST_H

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

// TEST_TSAN: built with ThreadSanitizer. gomem's fork handlers hold every
// lock at once (about 300), more than TSan's deadlock detector can track
// (64), so every test runs with that detector off; gomem's own lock-rank
// checker (debug builds, lock.c) checks the lock order instead.
#if defined(__SANITIZE_THREAD__)
#define TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TEST_TSAN 1
#endif
#endif
#if defined(TEST_TSAN)
const char *__tsan_default_options(void);
const char *__tsan_default_options(void) {
  return "detect_deadlocks=0";
}
#endif

static int test_passed, test_failed, test_skipped;

// TEST_SKIP_CODE: the exit status of a test program that had nothing it
// could check (every case skipped): ctest reports it as skipped, not passed.
#define TEST_SKIP_CODE 77

#ifndef GM_SECURE
#define GM_SECURE 0
#endif
// SKIP_IF_SECURE: the case checks the default build's geometry or counts
// (usable size = class size, in-place growth, a free counted and its pages
// unowned at once), which the hardened build changes on purpose (requested
// sizes, guard pages, quarantine).
#define SKIP_IF_SECURE(what)                                                                       \
  do {                                                                                             \
    if (GM_SECURE) {                                                                               \
      test_skip(what, "the hardened build's layout and quarantine differ by design");              \
      return;                                                                                      \
    }                                                                                              \
  } while (0)

// report prints one case's verdict.
__attribute__((unused)) static void report(const char *name, int ok) {
  printf("%-60s %s\n", name, ok ? "ok" : "FAIL");
  fflush(stdout);
}

// test_skip records a case that cannot run here, and why.
static inline void test_skip(const char *what, const char *why) {
  test_skipped++;
  printf("%-60s SKIP (%s)\n", what, why);
  fflush(stdout);
}

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (cond) {                                                                                    \
      test_passed++;                                                                               \
    } else {                                                                                       \
      test_failed++;                                                                               \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                     \
    }                                                                                              \
  } while (0)

#define CHECKF(cond, ...)                                                                          \
  do {                                                                                             \
    if (cond) {                                                                                    \
      test_passed++;                                                                               \
    } else {                                                                                       \
      test_failed++;                                                                               \
      fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);                     \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fputc('\n', stderr);                                                                         \
    }                                                                                              \
  } while (0)

// test_self: the program test_run_self and test_exec_self start. Under
// valgrind /proc/self/exe is valgrind's own tool: a test that re-executes
// itself sets this to argv[0] (the child then runs natively).
static const char *test_self = "/proc/self/exe";

// test_run_self re-executes this program as `prog arg` with the single
// environment variable env (gomem reads its options once, at start, so a
// setting needs a new process), and captures what the child writes on file
// descriptor fd (1 or 2) into out (NUL-terminated). Returns the wait status,
// or -1 if the child could not be started.
// test_run_self_envp: the same with the environment envp (NULL-terminated).
static inline int test_run_self_envp(const char *arg, char *const *envp, int fd, char *out,
                                     size_t n) {
  int p[2];
  if (pipe(p) != 0)
    return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(p[1], fd);
    close(p[0]);
    char *argv[] = {(char *)"self", (char *)arg, NULL};
    execve(test_self, argv, envp);
    _exit(127);
  }
  close(p[1]);
  size_t got = 0;
  ssize_t k;
  while (got + 1 < n && (k = read(p[0], out + got, n - 1 - got)) > 0)
    got += (size_t)k;
  out[got] = 0;
  close(p[0]);
  int st = 0;
  if (pid < 0 || waitpid(pid, &st, 0) < 0)
    return -1;
  return st;
}

static inline int test_run_self(const char *arg, const char *env, int fd, char *out, size_t n) {
  char *envp[] = {(char *)env, NULL};
  return test_run_self_envp(arg, envp, fd, out, n);
}

// test_run_child runs fn in a forked child (no core file), capturing what
// it writes on stderr into out->err; a child still running after
// TEST_CHILD_TIMEOUT_MS is killed (out->timed_out). out->status is the wait
// status.
#ifndef TEST_CHILD_TIMEOUT_MS
#define TEST_CHILD_TIMEOUT_MS 15000
#endif

// test_wait_child reaps child pid: its exit code, 128 + the signal that
// killed it, -1 if it ran past timeout_ms (then it is killed), -2 if it
// cannot be waited for.
static inline int test_wait_child(pid_t pid, int timeout_ms) {
  for (int ms = 0; ms < timeout_ms; ms++) {
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid)
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (r < 0 && errno != EINTR)
      return -2;
    struct timespec ts = {0, 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  return -1;
}

// test_fork_children forks n children one after the other, each running
// child() and exiting with its result; counts those that ran past 10 s
// (stopping at the first) and those that failed.
static inline void test_fork_children(int n, int (*child)(void), int *hung, int *bad) {
  for (int i = 0; i < n && *hung == 0; i++) {
    pid_t pid = fork();
    if (pid == 0)
      _exit(child());
    int r = pid < 0 ? -2 : test_wait_child(pid, 10000);
    *hung += r == -1;
    *bad += r != 0 && r != -1;
  }
}

typedef struct test_outcome {
  int status;
  int timed_out;
  char err[4096];
} test_outcome_t;

static inline long test_elapsed_ms(const struct timespec *t0) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

// test_collect reads fd into out->err until EOF or TEST_CHILD_TIMEOUT_MS
// (then kills pid), and reaps pid.
static inline void test_collect(pid_t pid, int fd, test_outcome_t *out) {
  size_t n = 0;
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    long elapsed = test_elapsed_ms(&t0);
    if (elapsed >= TEST_CHILD_TIMEOUT_MS) {
      out->timed_out = 1;
      kill(pid, SIGKILL);
      break;
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, (int)(TEST_CHILD_TIMEOUT_MS - elapsed)) <= 0)
      continue; // EINTR or timeout: the loop's top decides
    char tmp[1024];
    ssize_t k = read(fd, tmp, sizeof tmp);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      break; // EOF: the child (and its threads) are gone
    size_t room = sizeof out->err - 1 - n;
    size_t take = (size_t)k < room ? (size_t)k : room;
    memcpy(out->err + n, tmp, take);
    n += take;
  }
  out->err[n] = 0;
  close(fd);
  while (waitpid(pid, &out->status, 0) < 0 && errno == EINTR) {
  }
}

// test_spawn forks a child with stderr on a pipe and no core file, which
// runs fn(arg) (and exits 0 if fn returns), and collects it into out.
static inline void test_spawn(void (*fn)(void *), void *arg, test_outcome_t *out) {
  memset(out, 0, sizeof *out);
  int fd[2];
  if (pipe(fd) != 0) {
    perror("pipe");
    exit(2);
  }
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    exit(2);
  }
  if (pid == 0) {
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core); // aborts are expected: no core files
    close(fd[0]);
    dup2(fd[1], 2);
    close(fd[1]);
    fn(arg);
    _exit(0);
  }
  close(fd[1]);
  test_collect(pid, fd[0], out);
}

typedef struct test_fn_box {
  void (*fn)(void);
} test_fn_box_t;

static inline void test_call(void *box) {
  ((test_fn_box_t *)box)->fn();
}

static inline void test_run_child(void (*fn)(void), test_outcome_t *out) {
  test_fn_box_t box = {fn};
  test_spawn(test_call, &box, out);
}

// test_exec_self runs this program again as `prog arg` in a new process
// (single-threaded: for cases that fork or start threads, which some
// sanitizers forbid after a multi-threaded fork), with the environment plus
// env (NULL: none), capturing its stderr into out, killed after
// TEST_CHILD_TIMEOUT_MS.
extern char **environ;
typedef struct test_exec_args {
  const char *arg, *env;
} test_exec_args_t;

static inline void test_exec(void *p) {
  const test_exec_args_t *a = p;
  if (a->env != NULL)
    putenv((char *)a->env);
  char *argv[] = {(char *)"self", (char *)a->arg, NULL};
  execve(test_self, argv, environ);
  _exit(127);
}

static inline void test_exec_self(const char *arg, const char *env, test_outcome_t *out) {
  test_exec_args_t a = {arg, env};
  test_spawn(test_exec, &a, out);
}

static inline int test_done(void) {
  printf("%d passed, %d failed, %d skipped\n", test_passed, test_failed, test_skipped);
  if (test_failed)
    return 1;
  return test_passed == 0 && test_skipped > 0 ? TEST_SKIP_CODE : 0;
}

#endif
