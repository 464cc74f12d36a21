// test_secure: the hardened build's checks (GM_SECURE builds only; the
// default build reports SKIP). Each misuse runs in a forked child, which must
// die: SIGABRT with a "gomem: ..." message for what a check finds, or
// SIGSEGV for what a guard page or inaccessible region stops.
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "gomem.h"
#include "test.h"

static volatile char *volatile victim; // (a read the compiler must make)

static void expect(const char *name, void (*fn)(void), int sig) {
  test_outcome_t o;
  test_run_child(fn, &o);
  int died = !o.timed_out && WIFSIGNALED(o.status) && WTERMSIG(o.status) == sig;
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
static void memcpy_overflow(void) { // no free: the next malloc checks the last allocation
  char *p = gm_malloc(8);
  memset(p, 0, 9);
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

int main(void) {
  if (!GM_SECURE) {
    test_skip("hardened build checks", "not a hardened build (-DGOMEM_SECURE=ON)");
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
