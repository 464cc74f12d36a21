// test_wtrack: kernel write tracking (os_wtrack.c), the basis of concurrent
// marking without a compiler barrier. Where the kernel lacks it (before
// Linux 6.7, seccomp, valgrind) the test reports SKIP with the reason.
//
// Checked: exactly the pages written after arming are reported, once (a
// fetch re-protects them); pages never touched before arming are tracked
// too; a write by the kernel (read(2) into an armed page) works and is
// reported; writes racing with fetches from another thread are never lost;
// a forked child may write armed pages and its writes are not the parent's;
// disarmed pages count as written.
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "os.h"
#include "test.h"

#define PAGES 4096 // a 16 MiB region of 4 KiB pages

static size_t pg;
static unsigned char seen[PAGES]; // pages reported by the last fetch
static unsigned char *region;

static void mark_seen(void *ctx, uintptr_t lo, uintptr_t hi) {
  (void)ctx;
  for (uintptr_t a = lo; a < hi; a += pg)
    if (a >= (uintptr_t)region && a < (uintptr_t)region + PAGES * pg)
      seen[(a - (uintptr_t)region) / pg] = 1;
}

static ssize_t fetch(void) {
  memset(seen, 0, sizeof seen);
  return os_wtrack_fetch((uintptr_t)region, PAGES * pg, mark_seen, NULL);
}

// The written pages are exactly those reported.
static bool exactly(const int *pages, int n) {
  unsigned char want[PAGES] = {0};
  for (int i = 0; i < n; i++)
    want[pages[i]] = 1;
  return memcmp(want, seen, sizeof want) == 0;
}

static void exact_pages(void) {
  memset(region, 1, PAGES * pg / 2); // half populated, half never touched
  CHECK(os_wtrack_arm((uintptr_t)region, PAGES * pg));
  CHECK(fetch() == 0);
  int w[] = {0, 1, 7, 100, 2047, 2048, 3000, PAGES - 1}; // both halves
  int n = (int)(sizeof w / sizeof w[0]);
  for (int i = 0; i < n; i++)
    region[(size_t)w[i] * pg + 17] = 2;
  ssize_t got = fetch();
  CHECKF(got == n && exactly(w, n), "fetched %zd pages, wrote %d", got, n);
  CHECK(fetch() == 0); // re-protected: nothing new
  region[5 * pg] = 3;
  CHECK(fetch() == 1 && seen[5]);
  report("exactly the written pages, each fetched once", got == n);
}

static void kernel_write(void) {
  int p[2];
  CHECK(pipe(p) == 0);
  CHECK(write(p[1], "gomem", 5) == 5);
  CHECK(fetch() == 0);
  ssize_t r = read(p[0], region + 9 * pg + 100, 5); // the kernel writes an armed page
  bool ok = r == 5 && memcmp(region + 9 * pg + 100, "gomem", 5) == 0;
  CHECKF(ok, "read(2) into an armed page returned %zd", r);
  int w[] = {9};
  CHECK(fetch() == 1 && exactly(w, 1));
  close(p[0]);
  close(p[1]);
  report("read(2) into an armed page works and is tracked", ok);
}

// A writer bumps a counter in random pages while the main thread fetches.
// After each fetch the main thread notes the counters of the pages it
// reported; once the writer has stopped and a last fetch is done, every
// page's counter must equal the note (or 0 if never reported): a write that
// no fetch reported after it happened would leave the note behind.
static atomic_int stop;
static uint64_t note[PAGES];
static void *writer(void *arg) {
  (void)arg;
  unsigned x = 12345;
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    x = x * 1103515245u + 12345u;
    _Atomic uint64_t *c = (_Atomic uint64_t *)(region + (size_t)((x >> 8) % PAGES) * pg + 64);
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
  }
  return NULL;
}
static void take_notes(void) {
  for (int i = 0; i < PAGES; i++)
    if (seen[i])
      note[i] = atomic_load((_Atomic uint64_t *)(region + (size_t)i * pg + 64));
}
static void racing_writer(void) {
  for (int i = 0; i < PAGES; i++)
    *(uint64_t *)(region + (size_t)i * pg + 64) = 0;
  fetch();
  pthread_t t;
  CHECK(pthread_create(&t, NULL, writer, NULL) == 0);
  ssize_t total = 0;
  for (int round = 0; round < 300; round++) {
    total += fetch();
    take_notes();
  }
  atomic_store(&stop, 1);
  pthread_join(t, NULL);
  fetch();
  take_notes();
  int lost = 0;
  for (int i = 0; i < PAGES; i++)
    lost += atomic_load((_Atomic uint64_t *)(region + (size_t)i * pg + 64)) != note[i];
  CHECKF(lost == 0, "%d pages written after their last report (%zd reports)", lost, total);
  report("writes racing with fetches are never lost", lost == 0);
}

static void forked_child(void) {
  fetch();
  pid_t pid = fork();
  if (pid == 0) {
    os_wtrack_fork_child();
    for (int i = 0; i < 64; i++)
      region[(size_t)i * pg] = 9; // armed in the parent: must just work here
    _exit(region[0] == 9 ? 0 : 1);
  }
  int st = 0;
  CHECK(waitpid(pid, &st, 0) == pid);
  bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
  CHECKF(ok, "child status %#x", st);
  CHECKF(fetch() == 0, "the child's writes reported in the parent");
  report("fork: the child writes armed pages, not tracked in the parent", ok);
}

// Disarmed, every page counts as written (a fetch reports each and arms it
// again).
static void disarm(void) {
  CHECK(os_wtrack_disarm((uintptr_t)region, PAGES * pg));
  region[3 * pg] = 4;
  ssize_t got = fetch();
  CHECKF(got == PAGES, "%zd pages reported after disarm", got);
  CHECK(fetch() == 0);
  region[4 * pg] = 4;
  CHECK(fetch() == 1 && seen[4]);
  report("disarmed pages count as written; a fetch arms them", got == PAGES);
}

int main(void) {
  const char *why = "";
  if (!os_wtrack_init(&why)) {
    test_skip("kernel write tracking", why);
    return test_done();
  }
  pg = (size_t)sysconf(_SC_PAGESIZE);
  region = mmap(NULL, PAGES * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(region != MAP_FAILED);
  madvise(region, PAGES * pg, MADV_NOHUGEPAGE); // page-exact reports
  CHECK(os_wtrack_register((uintptr_t)region, PAGES * pg));
  exact_pages();
  kernel_write();
  racing_writer();
  forked_child();
  disarm();
  return test_done();
}
