// test_secure: the hardened build's checks (GM_SECURE builds only; the
// default build reports SKIP). Each misuse runs in a forked child, which must
// die: SIGABRT with a "gomem: ..." message for what a check finds, or
// SIGSEGV for what a guard page or inaccessible region stops.
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gomem.h"
#include "test.h"

static volatile char *volatile victim; // (a read the compiler must make)

static void expect(const char *name, void (*fn)(void), int sig) {
  test_outcome_t o;
  test_run_child(fn, &o);
  int died = !o.timed_out && WIFSIGNALED(o.status) && WTERMSIG(o.status) == sig;
  // (under a sanitizer a fault is the sanitizer's report and exit instead)
  if (sig == SIGSEGV && GOMEM_SANITIZE[0] != 0 && !o.timed_out && WIFEXITED(o.status))
    died = WEXITSTATUS(o.status) != 0 && strstr(o.err, "SEGV") != NULL;
  int named = sig != SIGABRT || strncmp(o.err, "gomem: ", 7) == 0;
  CHECKF(died && named, "%s: want signal %d%s; got status %#x, stderr \"%s\"", name, sig,
         sig == SIGABRT ? " and a gomem: message" : "", o.status, o.err);
  report(name, died && named);
}

static void one_byte_overflow(void) {
  char *p = gm_malloc(24);
  p[24] ^= 'A';
  gm_free(p);
}
static void overflow_into_neighbour(void) { // past the canary, into the next free slot
  char *p = gm_malloc(8);
  p[39] ^= 'A';
  gm_free(p);
}
static void write_after_free(void) {
  char *p = gm_malloc(100);
  gm_free(p);
  p[3] = 'A';
  gm_malloc(100); // the next allocation checks the last frees
}
static void double_free(void) {
  char *p = gm_malloc(100);
  gm_free(p);
  gm_free(p);
}
// No free: the next malloc checks the last allocation. The byte past an
// 8-byte object is its slot's encoded trailer, which may already hold the
// byte an overflow writes (a write that changes nothing is not seen): the
// overflow writes its complement.
static void memcpy_overflow(void) {
  char *p = gm_malloc(8);
  memset(p, ~((volatile char *)p)[8], 9);
  gm_malloc(8);
}
static void read_zero_size(void) {
  victim = gm_malloc(0);
  (void)*victim;
}
static void large_overflow(void) { // flush against the trailing guard page
  char *p = gm_malloc(256 << 10);
  p[256 << 10] = 1;
}
static void large_underflow(void) { // pages below the object's own are inaccessible
  char *p = gm_malloc(256 << 10);
  p[-1] = 1;
}
static void large_use_after_free(void) {
  char *p = gm_malloc(1 << 20);
  gm_free(p);
  p[100] = 1;
}

// The guarded memcpy, memmove and memset (GOMEM_GUARD_MEMOPS=1) stop the
// write itself; without them the child gets to _exit(0). (memcpy and the
// rest through volatile pointers: the compiler must make the calls.)
static void *(*volatile memcpy_fn)(void *, const void *, size_t) = memcpy;
static void *(*volatile memmove_fn)(void *, const void *, size_t) = memmove;
static void *(*volatile memset_fn)(void *, int, size_t) = memset;
static char src[1 << 12];

static void memset_past_small(void) {
  char *p = gm_malloc(40);
  memset_fn(p + 8, 1, 33);
  _exit(0);
}
static void memcpy_past_large(void) { // into the canary, short of the guard page
  char *p = gm_malloc(100000 + 3);
  memcpy_fn(p + 100000 - 8, src, 12);
  _exit(0);
}
static void memmove_into_freed(void) {
  char *p = gm_malloc(64);
  gm_free(p);
  memmove_fn(p, src, 8);
  _exit(0);
}
static void memset_below_large(void) {
  char *p = gm_malloc((1 << 16) - 100); // (p - 16: in p's page, the canary)
  memset_fn(p - 16, 0, 32);
  _exit(0);
}

static void memops(void) {
  char *p = gm_malloc(100), *q = gm_malloc(1 << 20); // writes that fit pass
  memset_fn(p, 1, 100);
  memcpy_fn(q + 1000, src, sizeof src);
  memmove_fn(p + 1, p, 99);
  memcpy_fn(q + (1 << 20) - sizeof src, src, sizeof src);
  gm_free(p);
  gm_free(q);
  report("guarded memops: writes inside their objects", 1);
  const char *on = getenv("GOMEM_GUARD_MEMOPS");
  int sig = on != NULL && strcmp(on, "1") == 0 ? SIGABRT : 0;
  struct {
    const char *name;
    void (*fn)(void);
  } cases[] = {
      {"guarded memset past a small object", memset_past_small},
      {"guarded memcpy past a large object", memcpy_past_large},
      {"guarded memmove into a freed object", memmove_into_freed},
      {"guarded memset below a large object", memset_below_large},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    if (sig != 0) {
      expect(cases[i].name, cases[i].fn, sig);
      continue;
    }
    test_outcome_t o; // off: the write goes through (the child exits 0)
    test_run_child(cases[i].fn, &o);
    bool ok = !o.timed_out && WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0;
    CHECKF(ok, "%s (guard off): status %#x, stderr \"%s\"", cases[i].name, o.status, o.err);
    report(cases[i].name, ok);
  }
}

int main(void) {
  if (!GM_SECURE) {
    test_skip("hardened build checks", "not a hardened build (-DGOMEM_SECURE=ON)");
    return test_done();
  }
  if (!GM_OVERRIDE) {
    test_skip("guarded memops", "memcpy belongs to the sanitizer");
  } else {
    memops();
    if (getenv("GOMEM_GUARD_MEMOPS") != NULL)
      return test_done();
  }
  expect("one-byte overflow, caught at free", one_byte_overflow, SIGABRT);
  expect("overflow into a free neighbour", overflow_into_neighbour, SIGABRT);
  expect("write after free, caught at the next malloc", write_after_free, SIGABRT);
  expect("double free", double_free, SIGABRT);
  expect("overflow without free, caught at the next malloc", memcpy_overflow, SIGABRT);
  expect("read of a zero-size allocation", read_zero_size, SIGSEGV);
  expect("large object overflow (guard page)", large_overflow, SIGSEGV);
  expect("large object underflow", large_underflow, SIGSEGV);
  expect("large object written after free", large_use_after_free, SIGSEGV);

  // Memory comes back zeroed, and a freed object is not handed out at once.
  enum { N = 256 };
  char *v[N];
  for (int i = 0; i < N; i++)
    memset(v[i] = gm_malloc(200), 0xab, 200);
  void *last = v[N - 1];
  for (int i = 0; i < N; i++)
    gm_free(v[i]);
  int dirty = 0, reused_at_once = 0;
  for (int i = 0; i < N; i++) {
    v[i] = gm_malloc(200);
    for (int k = 0; k < 200; k++)
      dirty += v[i][k] != 0;
    reused_at_once += i == 0 && v[i] == last;
  }
  CHECKF(dirty == 0, "%d bytes not zero in reused memory", dirty);
  CHECK(reused_at_once == 0);
  report("reused memory is zero, reuse is delayed", dirty == 0 && !reused_at_once);
  for (int i = 0; i < N; i++)
    gm_free(v[i]);

  // usable size is what was asked; realloc keeps contents, in place or not.
  char *p = gm_malloc(100);
  CHECK(gm_usable_size(p) == 100 && gm_usable_size(gm_malloc(0)) == 0);
  memset(p, 7, 100);
  for (size_t n = 150; n < (4u << 20); n += n / 3) {
    p = gm_realloc(p, n);
    CHECK(p != NULL && p[0] == 7 && p[99] == 7 && gm_usable_size(p) == (size_t)n);
  }
  gm_free(p);
  report("usable size and realloc", 1);
  return test_done();
}
