// test_lock: the bottom layer (lock.c): critical sections and the deferred
// stop hook, and, in debug builds, the lock-rank checker: every out-of-order
// acquisition aborts naming both locks, locks of an array rank are taken in
// address order, an unlock of a lock not held aborts, and a stoppable wait
// inside a critical section is caught.
#include <pthread.h>
#include <string.h>
#include <sys/wait.h>

#include "internals.h"
#include "test.h"

static gm_mutex_t a_heap = GM_MUTEX_INIT(RANK_MHEAP);
static gm_mutex_t a_central[3] = {GM_MUTEX_INIT(RANK_MCENTRAL), GM_MUTEX_INIT(RANK_MCENTRAL),
                                  GM_MUTEX_INIT(RANK_MCENTRAL)};
static gm_mutex_t a_gc = GM_MUTEX_INIT(RANK_GC);
static gm_mutex_t a_threads = GM_MUTEX_INIT(RANK_THREADS);

// ---------------------------------------------------------------------------
// Critical sections

static int hook_calls;
static void hook(void) {
  hook_calls++;
  gm_tls_m.stop_pending = 0;
}

static void test_critical_sections(void) {
  lock_set_deferred_stop(hook);
  CHECK(gm_tls_m.locks == 0);
  m_acquire();
  m_acquire();
  gm_tls_m.stop_pending = 1; // a stop signal arrived inside
  m_release();
  CHECKF(hook_calls == 0, "parked inside a nested critical section");
  m_release();
  CHECKF(hook_calls == 1, "the deferred stop ran %d times on leaving", hook_calls);
  m_acquire();
  m_release();
  CHECK(hook_calls == 1);
  gm_lock(&a_heap);
  CHECK(gm_tls_m.locks == 1);
  gm_unlock(&a_heap);
  CHECK(gm_tls_m.locks == 0);
  lock_set_deferred_stop(NULL);
  report("critical sections and the deferred stop", hook_calls == 1);
}

// ---------------------------------------------------------------------------
// Lock ranks (debug builds)

static void in_order(void) {
  gm_lock_stoppable(&a_gc);
  gm_lock_stoppable(&a_threads);
  gm_lock(&a_central[0]);
  gm_lock(&a_central[2]); // same array rank, higher address
  gm_lock(&a_heap);
  gm_unlock(&a_heap);
  gm_unlock(&a_central[2]);
  gm_unlock(&a_central[0]);
  gm_unlock_raw(&a_threads);
  gm_unlock_raw(&a_gc);
}

static void heap_then_central(void) {
  gm_lock(&a_heap);
  gm_lock(&a_central[1]);
}

static void central_backwards(void) {
  gm_lock(&a_central[2]);
  gm_lock(&a_central[1]);
}

static void threads_then_gc(void) {
  gm_lock_stoppable(&a_threads);
  gm_lock_stoppable(&a_gc);
}

static void unlock_unheld(void) {
  gm_unlock_raw(&a_gc);
}

static void stoppable_in_critical(void) {
  m_acquire();
  gm_lock_stoppable(&a_gc);
}

// expect_abort runs fn in a child: it must abort, printing msg.
static void expect_abort(const char *name, void (*fn)(void), const char *msg) {
  test_outcome_t out;
  test_run_child(fn, &out);
  int ok = !out.timed_out && WIFSIGNALED(out.status) && WTERMSIG(out.status) == SIGABRT &&
           strstr(out.err, msg) != NULL;
  CHECKF(ok, "%s: status %#x, stderr: %s", name, out.status, out.err);
  report(name, ok);
}

static void test_ranks(void) {
  test_outcome_t out;
  test_run_child(in_order, &out);
  int ok = WIFEXITED(out.status) && WEXITSTATUS(out.status) == 0;
  CHECKF(ok, "locks taken in rank order: status %#x: %s", out.status, out.err);
  report("locks in rank order are accepted", ok);
  if (GM_DEBUG == 0) {
    test_skip("the lock-rank checker", "release build: no checker");
    return;
  }
  expect_abort("mcentral after mheap is reported", heap_then_central,
               "lock order violated: mcentral.lock taken while holding mheap.lock");
  expect_abort("an array rank out of address order is reported", central_backwards,
               "lock order violated: mcentral.lock taken while holding mcentral.lock");
  expect_abort("gc_lock after threads_lock is reported", threads_then_gc,
               "lock order violated: gc_lock taken while holding threads_lock");
  expect_abort("unlock of a lock not held is reported", unlock_unheld,
               "unlock of a lock this thread does not hold");
  expect_abort("a stoppable wait in a critical section is reported", stoppable_in_critical,
               "assertion failed: gm_tls_m.locks == 0");
}

int main(void) {
  gm_ensure_init();
  test_critical_sections();
  test_ranks();
  return test_done();
}
