// test.h: gomem's minimal test harness. CHECK counts and reports; each test
// program ends with test_done(), which prints "N passed, M failed" and sets
// the exit status.
#ifndef GOMEM_TEST_H
#define GOMEM_TEST_H

#include <stdio.h>
#include <stdlib.h>

static int test_passed, test_failed;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (cond) {                                                                \
      test_passed++;                                                           \
    } else {                                                                   \
      test_failed++;                                                           \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                          \
  } while (0)

#define CHECKF(cond, ...)                                                      \
  do {                                                                         \
    if (cond) {                                                                \
      test_passed++;                                                           \
    } else {                                                                   \
      test_failed++;                                                           \
      fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                            \
      fputc('\n', stderr);                                                     \
    }                                                                          \
  } while (0)

static inline int test_done(void) {
  printf("%d passed, %d failed\n", test_passed, test_failed);
  return test_failed ? 1 : 0;
}

#endif
