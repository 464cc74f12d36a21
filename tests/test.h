// test.h: gomem's minimal test harness. CHECK counts and reports; each test
// program ends with test_done(), which prints "N passed, M failed" and sets
// the exit status.
#ifndef GOMEM_TEST_H
#define GOMEM_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static int test_passed, test_failed;

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

// test_run_self re-executes this program as `prog arg` with the single
// environment variable env (gomem reads its options once, at start, so a
// setting needs a new process), and captures what the child writes on file
// descriptor fd (1 or 2) into out (NUL-terminated). Returns the wait status,
// or -1 if the child could not be started.
static inline int test_run_self(const char *arg, const char *env, int fd, char *out, size_t n) {
  int p[2];
  if (pipe(p) != 0)
    return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(p[1], fd);
    close(p[0]);
    char *envp[] = {(char *)env, NULL};
    char *argv[] = {(char *)"self", (char *)arg, NULL};
    execve("/proc/self/exe", argv, envp);
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

static inline int test_done(void) {
  printf("%d passed, %d failed\n", test_passed, test_failed);
  return test_failed ? 1 : 0;
}

#endif
