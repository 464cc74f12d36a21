// test_misuse: bad pointers given to gomem are reported as
//   gomem: <fault> at 0x<address>
// on stderr, and the process aborts. Each case runs in a forked child whose
// stderr goes to a pipe; the parent checks that the child died of SIGABRT and
// that the message names the fault. Control cases (valid frees, cross-thread
// frees done right, overflowing sizes) must exit normally.
//
// The parent calls no gm_* function and allocates almost nothing (stdio
// buffers, which in the drop-in build come from gomem), so it stays
// single-threaded (no scavenger thread) and every child starts from a clean,
// single-threaded fork.
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gomem.h"
#include "test.h"


static char global_buf[256];

// ---------------------------------------------------------------------------
// Running a case

enum expect { EXPECT_ABORT, EXPECT_EXIT0 };


// expect_fault runs fn in a child and checks it aborts with
// "gomem: ...<word>... at 0x".
static void expect_fault(const char *name, void (*fn)(void), const char *word) {
  test_outcome_t o;
  test_run_child(fn, &o);
  int aborted = !o.timed_out && WIFSIGNALED(o.status) && WTERMSIG(o.status) == SIGABRT;
  const char *msg = strstr(o.err, "gomem: ");
  if (GM_SECURE && msg != NULL) // the hardened build words its faults its own way
    word = "gomem: ";
  int named = msg != NULL && strstr(msg, word) != NULL && strstr(msg, " at 0x") != NULL;
  // The fault word must be in the same line as "gomem: ".
  if (named) {
    const char *eol = strchr(msg, '\n');
    const char *w = strstr(msg, word), *at = strstr(msg, " at 0x");
    named = eol == NULL || (w < eol && at < eol);
  }
  const char *how = o.timed_out                ? "timed out"
                    : WIFSIGNALED(o.status)    ? strsignal(WTERMSIG(o.status))
                    : WIFEXITED(o.status)      ? "exited"
                                               : "?";
  CHECKF(aborted && named, "%s: want SIGABRT and \"gomem: ...%s... at 0x\"; got %s (status %d), "
         "stderr: \"%s\"", name, word, how, WIFEXITED(o.status) ? WEXITSTATUS(o.status) : -1,
         o.err);
  printf("%-36s %s\n", name, aborted && named ? "ok" : "FAIL");
}

// expect_clean runs fn in a child and checks it exits with status 0 and
// writes nothing about gomem on stderr.
static void expect_clean(const char *name, void (*fn)(void)) {
  test_outcome_t o;
  test_run_child(fn, &o);
  int ok = !o.timed_out && WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0 &&
           strstr(o.err, "gomem") == NULL;
  CHECKF(ok, "%s: want a clean exit; got %s status %d, stderr: \"%s\"", name,
         o.timed_out ? "timeout" : WIFSIGNALED(o.status) ? "signal" : "exit",
         WIFSIGNALED(o.status) ? WTERMSIG(o.status) : WEXITSTATUS(o.status), o.err);
  printf("%-36s %s\n", name, ok ? "ok" : "FAIL");
}

// ---------------------------------------------------------------------------
// Helpers for the cases (run in the child)

// hide keeps the compiler from reasoning about a pointer's origin.
static void *hide(void *p) {
  void *volatile v = p;
  return v;
}

static void *thread_run(void *(*fn)(void *), void *arg) {
  pthread_t t;
  void *ret = NULL;
  if (pthread_create(&t, NULL, fn, arg) != 0)
    _exit(3);
  pthread_join(t, &ret);
  return ret;
}

// churn allocates and frees n objects of size, so a thread's cache goes
// through its span's windows, collects remote frees and trades spans.
static void churn(size_t size, size_t n) {
  void **v = mmap(NULL, n * sizeof(void *), PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (v == MAP_FAILED)
    _exit(4);
  for (size_t i = 0; i < n; i++) {
    v[i] = gm_malloc(size);
    if (v[i] == NULL)
      _exit(5);
  }
  for (size_t i = 0; i < n; i++)
    gm_free(v[i]);
  munmap(v, n * sizeof(void *));
}

// ---------------------------------------------------------------------------
// Cases: bad frees

static void double_free_small(void) {
  void *p = gm_malloc(64);
  gm_free(p);
  gm_free(p);
}

// The object's bit is in the span's bitmap, not in the current window:
// 48-byte objects, 170 per span; after 100 the thread allocates from the
// span's second window.
static void double_free_small_old_window(void) {
  void *v[100];
  for (int i = 0; i < 100; i++)
    v[i] = gm_malloc(48);
  gm_free(v[0]);
  gm_free(v[0]);
}

// The object's span is no longer cached (the thread moved on to a second
// span): both frees join the thread's pending list, applied in one batch at
// the next refill of the class.
static void double_free_small_uncached(void) {
  void *v[300];
  for (int i = 0; i < 300; i++)
    v[i] = gm_malloc(48);
  gm_free(v[0]);
  gm_free(v[0]);
  churn(48, 10000);
}

static void double_free_large(void) {
  void *p = gm_malloc(1 << 20);
  gm_free(p);
  gm_free(p);
}

static void double_free_medium(void) {
  void *p = gm_malloc(20000);
  gm_free(p);
  gm_free(p);
}

// Cross-thread double free (1): the main thread owns the span; another
// thread frees the object twice (two pushes on the span's remote list) and
// exits. The main thread finds out when it collects the remote list.
static void *free_twice(void *p) {
  gm_free(p);
  gm_free(p);
  return NULL;
}

static void double_free_remote(void) {
  void *p = gm_malloc(64);
  thread_run(free_twice, p);
  churn(64, 10000);
}

// Control for the above: one remote free, then the same churn.
static void *free_once(void *p) {
  gm_free(p);
  return NULL;
}

static void remote_free_ok(void) {
  void *p = gm_malloc(64);
  thread_run(free_once, p);
  churn(64, 10000);
  void *q = gm_malloc(1 << 20);
  thread_run(free_once, q);
  gm_release_memory();
}

// Cross-thread double free (2): the allocating thread has exited (its span
// went back to mcentral); the main thread frees twice; the batch of pending
// frees is applied when the main thread next refills that class.
static void *alloc_one(void *arg) {
  (void)arg;
  void *p = gm_malloc(64);
  void *keep = gm_malloc(64); // keeps the span in use after p is freed
  (void)keep;
  return p;
}

static void double_free_orphan(void) {
  void *p = thread_run(alloc_one, NULL);
  gm_free(p);
  gm_free(p);
  churn(64, 10000);
}

// Cross-thread double free (3): as (1), but the owner finds out when it
// gives the span back (gm_release_memory uncaches every span and applies
// the remote list, meeting the object's bit already clear).
static void double_free_remote_release(void) {
  void *p = gm_malloc(64);
  thread_run(free_twice, p);
  gm_release_memory();
}

// The thread's free list (lifo): a free through the arena map (the span is
// not the one the thread last freed into) lists the object; a second free
// finds it there, by either path.
static void double_free_listed_lookup(void) {
  void *p = gm_malloc(64), *q = gm_malloc(2000);
  gm_free(p); // listed
  gm_free(q); // the last span is now q's
  gm_free(p);
}

static void double_free_listed_last_span(void) {
  void *p = gm_malloc(64), *q = gm_malloc(64);
  gm_free(p); // listed; the last span is now p's
  gm_free(q);
  gm_free(p);
}

// The same for 8-byte objects, whose list word is their only word.
static void double_free_listed_8(void) {
  void *p = gm_malloc(8), *q = gm_malloc(2000);
  gm_free(p);
  gm_free(q);
  gm_free(p);
}

static void write_after_free_listed_8(void) {
  char *p = gm_malloc(8);
  void *q = gm_malloc(2000);
  gm_free(p);
  gm_free(q);
  memset(hide(p), 0x41, 8); // use after free, on purpose
  void *r = gm_malloc(8);
  (void)r;
}

// After frees at random over many spans, the thread stops checking its last
// span first (free.c): a double free still meets the listed object.
static void double_free_listed_skipping(void) {
  enum { N = 4096 };
  static void *v[N];
  for (int i = 0; i < N; i++)
    v[i] = gm_malloc(8 + (size_t)(i * 7919 % 61) * 16);
  for (int i = 0; i < N; i++) {
    int k = i * 2741 % N;
    gm_free(v[k]);
    v[k] = gm_malloc(8 + (size_t)(k * 31 % 61) * 16);
  }
  void *p = v[0];
  gm_free(p);
  gm_free(v[N / 2]);
  gm_free(p);
}

// A listed object written after free: malloc finds out when it pops it,
// before handing it out.
static void write_after_free_listed(void) {
  char *p = gm_malloc(64);
  gm_free(p);
  memset(hide(p), 0x41, 16); // use after free, on purpose
  void *r = gm_malloc(64);
  (void)r;
}

// A listed object freed again by another thread (a remote push links it
// through its first word): the owner's next pop reports it.
static void double_free_listed_remote(void) {
  void *p = gm_malloc(64);
  gm_free(p); // listed on the main thread
  thread_run(free_once, p);
  void *r = gm_malloc(64);
  (void)r;
}

// The same, found when the owner gives its list back (gm_release_memory):
// the list is checked as it drains.
static void double_free_listed_remote_release(void) {
  void *p = gm_malloc(64);
  gm_free(p);
  thread_run(free_once, p);
  gm_release_memory();
}

// Remote list corruption: an object freed by another thread is written to
// (use after free); its link word now points outside the span.
static void corrupt_remote_list(void) {
  void *p = gm_malloc(64);
  thread_run(free_once, p);
  uintptr_t garbage = (uintptr_t)0x4141414141414141ULL;
  memcpy(hide(p), &garbage, sizeof garbage); // use after free, on purpose
  churn(64, 10000);
}

static void free_stack(void) {
  char buf[64];
  memset(buf, 1, sizeof buf);
  gm_free(hide(buf));
}

static void free_global(void) {
  gm_free(hide(global_buf));
}

static void free_mmap(void) {
  void *m = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED)
    _exit(6);
  gm_free(m);
}

static void free_interior_small(void) {
  char *p = gm_malloc(64);
  gm_free(p + 8);
}

static void free_interior_large(void) {
  char *p = gm_malloc(1 << 20);
  gm_free(p + 4096);
}

static void free_interior_large_page(void) {
  char *p = gm_malloc(1 << 20);
  gm_free(p + 65536); // page aligned, but not the object's start
}

static void free_misaligned(void) {
  char *p = gm_malloc(64);
  gm_free(p + 1);
}

static void free_misaligned_tail(void) {
  // 48-byte objects: 170 per 8 KiB page, 32 bytes of tail; a pointer into
  // the tail is past the last object.
  char *p = gm_malloc(48);
  uintptr_t page = (uintptr_t)p & ~(uintptr_t)8191;
  gm_free((void *)(page + 170 * 48));
}

static void free_freed_heap_page(void) {
  char *p = gm_malloc(1 << 20);
  gm_free(p);
  gm_free(p + 8200); // inside the freed (now free) pages, not page aligned
}

static void usable_size_foreign(void) {
  int x = 0;
  size_t n = gm_usable_size(hide(&x));
  (void)n;
}

static void usable_size_interior_large(void) {
  char *p = gm_malloc(1 << 20);
  size_t n = gm_usable_size(p + 16);
  (void)n;
}

static void realloc_foreign(void) {
  void *r = gm_realloc(hide(global_buf), 100);
  (void)r;
}

static void realloc_interior(void) {
  char *p = gm_malloc(64);
  void *r = gm_realloc(p + 16, 100);
  (void)r;
}

#if GM_OVERRIDE
static void libc_free_stack(void) {
  char buf[32];
  memset(buf, 1, sizeof buf);
  free(hide(buf));
}

static void libc_double_free(void) {
  void *p = malloc(100);
  void *volatile alias = p; // hidden from -Wuse-after-free
  free(p);
  free(alias);
}
#endif

// ---------------------------------------------------------------------------
// Control cases

static void valid_frees(void) {
  void *p = gm_malloc(64);
  gm_free(p);
  void *q = gm_malloc(1 << 20);
  gm_free(q);
  void *r = gm_calloc(10, 100);
  r = gm_realloc(r, 100000);
  gm_free(r);
  gm_free(NULL);
  churn(64, 5000);
  churn(40000, 100);
}

// Overflowing sizes fail with NULL + ENOMEM; nothing aborts.
static void overflow_ok(void) {
  int bad = 0;
  errno = 0;
  if (gm_calloc(SIZE_MAX / 2 + 1, 2) != NULL || errno != ENOMEM)
    bad |= 1;
  void *p = gm_malloc(100);
  errno = 0;
  if (gm_reallocarray(p, SIZE_MAX / 8, 16) != NULL || errno != ENOMEM)
    bad |= 2;
  gm_free(p); // still ours after the failed reallocarray
  errno = 0;
  if (gm_malloc(SIZE_MAX) != NULL || errno != ENOMEM)
    bad |= 4;
  errno = 0;
  if (gm_malloc((size_t)PTRDIFF_MAX + 1) != NULL || errno != ENOMEM)
    bad |= 8;
  errno = 0;
  if (gm_realloc(NULL, SIZE_MAX / 2) != NULL || errno != ENOMEM)
    bad |= 16;
  void *q = NULL;
  if (gm_posix_memalign(&q, 64, SIZE_MAX) != ENOMEM || q != NULL)
    bad |= 32;
  if (bad) {
    fprintf(stderr, "overflow cases failed: mask %#x\n", bad);
    _exit(1);
  }
}

int main(void) {
  expect_clean("valid frees (control)", valid_frees);
  expect_clean("one remote free (control)", remote_free_ok);
  expect_clean("overflow -> NULL + ENOMEM", overflow_ok);

  expect_fault("double free, small", double_free_small, "double free");
  expect_fault("double free, small, old window", double_free_small_old_window, "double free");
  expect_fault("double free, small, uncached span", double_free_small_uncached, "double free");
  expect_fault("double free, medium class", double_free_medium, "double free");
  expect_fault("double free, large", double_free_large, "double free");
  expect_fault("double free, remote, collected", double_free_remote, "double free");
  expect_fault("double free, remote, release", double_free_remote_release, "double free");
  expect_fault("double free, owner exited", double_free_orphan, "double free");
  expect_fault("free of a stack address", free_stack, "did not allocate");
  expect_fault("free of a global", free_global, "did not allocate");
  expect_fault("free of mmap memory", free_mmap, "did not allocate");
  expect_fault("free of interior p+8 (64 B)", free_interior_small, "inside an object");
  expect_fault("free of interior p+4096 (large)", free_interior_large, "inside a large object");
  expect_fault("free of interior p+64K (large)", free_interior_large_page,
               "inside a large object");
  expect_fault("free of misaligned p+1", free_misaligned, "misaligned");
  expect_fault("free past a span's last object", free_misaligned_tail, "not an allocation start");
  expect_fault("free inside freed heap pages", free_freed_heap_page, "unallocated heap memory");
  expect_fault("write after remote free", corrupt_remote_list, "corrupted");
  expect_fault("double free, listed, found by lookup", double_free_listed_lookup, "double free");
  expect_fault("double free, listed, found from last span", double_free_listed_last_span,
               "double free");
  expect_fault("write after free, listed", write_after_free_listed, "written after free");
  expect_fault("double free, listed, 8 B", double_free_listed_8, "double free");
  expect_fault("write after free, listed, 8 B", write_after_free_listed_8, "written after free");
  expect_fault("double free, listed, last span skipped", double_free_listed_skipping,
               "double free");
  expect_fault("double free, listed, then remote", double_free_listed_remote,
               "freed again by another thread");
  expect_fault("double free, listed, then remote, release", double_free_listed_remote_release,
               "freed again by another thread");
  expect_fault("usable_size of a foreign pointer", usable_size_foreign, "did not allocate");
  expect_fault("usable_size of interior (large)", usable_size_interior_large,
               "inside a large object");
  expect_fault("realloc of a foreign pointer", realloc_foreign, "did not allocate");
  expect_fault("realloc of an interior pointer", realloc_interior, "inside an object");
#if GM_OVERRIDE
  expect_fault("libc free of a stack address", libc_free_stack, "did not allocate");
  expect_fault("libc double free", libc_double_free, "double free");
#endif
  return test_done();
}
