// test_gc.h: helpers shared by the collector's tests.
#ifndef GOMEM_TEST_GC_H
#define GOMEM_TEST_GC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gomem.h"

#define NOINLINE __attribute__((noinline))

// clear_stack zeroes 64 KiB of dead stack below the caller, so stale words
// left by earlier calls do not keep dropped objects alive (roots are
// conservative); collect does that, then a full collection.
NOINLINE static void clear_stack(void) {
  volatile char pad[64 << 10];
  memset((char *)pad, 0, sizeof pad);
  __asm__ volatile("" : : "r"(pad) : "memory");
}

__attribute__((noinline, unused)) static void collect(void) {
  clear_stack();
  gm_collect();
}

static inline double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// Pattern words: pseudo-random 64-bit values, which never look like heap
// addresses (that would keep garbage alive).
static inline uint64_t pat(uint64_t seed, size_t i) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + i * 0xD6E8FEB86659FD93ull + 0x1234567;
  x ^= x >> 29;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 32;
  return x | 0x8000000000000000ull; // top bit set: not a user address
}

static inline void fill(void *p, size_t size, uint64_t seed) {
  uint64_t *w = p;
  for (size_t i = 0; i < size / 8; i++)
    w[i] = pat(seed, i);
  for (size_t i = size & ~(size_t)7; i < size; i++)
    ((unsigned char *)p)[i] = (unsigned char)(seed + i);
}

// intact reports whether p still holds what fill(p, size, seed) wrote.
__attribute__((unused)) static int intact(const void *p, size_t size, uint64_t seed) {
  const uint64_t *w = p;
  for (size_t i = 0; i < size / 8; i++)
    if (w[i] != pat(seed, i))
      return 0;
  for (size_t i = size & ~(size_t)7; i < size; i++)
    if (((const unsigned char *)p)[i] != (unsigned char)(seed + i))
      return 0;
  return 1;
}

// gc_intact: intact, and inside allocated heap memory (a GC object: a
// pointer read from a reclaimed object may lead anywhere).
__attribute__((unused)) static int gc_intact(const void *p, size_t size, uint64_t seed) {
  return gm_owns(p) && gm_owns((const char *)p + size - 1) && intact(p, size, seed);
}

// fin_timeout: seconds wait_until waits for a count (tests raise it for slow
// builds).
static double fin_timeout = 10;

// A hidden pointer is its complement: never an address in the heap, so the
// variables that keep track of dropped objects do not keep them alive.
static inline uintptr_t hide(const void *p) {
  return ~(uintptr_t)p;
}
static inline void *unhide(uintptr_t h) {
  return (void *)~h;
}

// Sentinel finalizers: a test sets one on each object that must stay
// reachable, with the number of its case as the argument. One that runs
// means the collector found a reachable object unreachable (a reclaimed
// object may still look intact when nothing has reused its memory yet).
#define SENTINEL_CASES 32
static _Atomic int sentinel_ran[SENTINEL_CASES];

__attribute__((unused)) static void sentinel(void *obj, void *arg) {
  (void)obj;
  atomic_fetch_add(&sentinel_ran[(uintptr_t)arg % SENTINEL_CASES], 1);
}

// make_guarded returns hide(p) for a new gm_alloc object of size, filled
// from seed, with a sentinel for case c.
__attribute__((noinline, unused)) static uintptr_t make_guarded(size_t size, uint64_t seed, int c) {
  void *p = gm_alloc(size);
  fill(p, size, seed);
  gm_set_finalizer(p, sentinel, (void *)(uintptr_t)c);
  return hide(p);
}

// store_at is a leaf: the pointer passes through a scratch register only.
__attribute__((noinline, unused)) static void store_at(void *volatile *slot, uintptr_t h) {
  *slot = unhide(h);
}

// wait_until waits until *ctr >= target (or fin_timeout), collecting
// whenever the count stops moving (the finalizer thread is idle). Returns
// the last count.
__attribute__((noinline, unused)) static long wait_until(_Atomic long *ctr, long target) {
  double t0 = now_s();
  long last = -1;
  for (;;) {
    long n = atomic_load(ctr);
    if (n >= target || now_s() - t0 > fin_timeout)
      return n;
    if (n == last)
      collect();
    last = n;
    usleep(5000);
  }
}

// churn allocates garbage of many size classes (and large objects); the
// first and last words get a non-pointer value.
__attribute__((noinline, unused)) static void churn(size_t bytes) {
  static const size_t sizes[] = {16, 24, 32, 48, 64, 96, 128, 256, 512, 1024, 4096, 9000, 40000};
  size_t done = 0;
  for (unsigned i = 0; done < bytes; i++) {
    size_t n = sizes[i % (sizeof sizes / sizeof sizes[0])];
    uint64_t *p = gm_alloc(n);
    if (p == NULL)
      return;
    p[0] = 0xDEADBEEFDEADBEEFull;
    p[n / 8 - 1] = 0xDEADBEEFDEADBEEFull;
    done += n;
  }
}

// run_concurrent: a test of marking beside the program calls it first. The
// first run re-executes the program as `prog run` with
// GOMEM_GC_CONCURRENT=1 (or GOMEM_BARRIER=explicit, if it has that) and
// returns its exit status; the re-executed run
// gets -1 and goes on. Under valgrind (no userfaultfd, no re-execution) it
// reports what as skipped and returns the test's result.
__attribute__((unused)) static int run_concurrent(int argc, char **argv, const char *what,
                                                  const char *sanitize) {
  if (strcmp(sanitize, "valgrind") == 0) {
    test_skip(what, "valgrind has no userfaultfd");
    return test_done();
  }
  if (argc >= 2 && strcmp(argv[1], "run") == 0)
    return -1;
  char out[8192];
  const char *b = getenv("GOMEM_BARRIER"); // (explicit: marking beside it too)
  bool explicit = b != NULL && strcmp(b, "explicit") == 0;
  int st = test_run_self("run", explicit ? "GOMEM_BARRIER=explicit" : "GOMEM_GC_CONCURRENT=1", 1,
                         out, sizeof out);
  fputs(out, stdout);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

#endif // GOMEM_TEST_GC_H
