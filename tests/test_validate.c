// test_validate: corrupted heap metadata is reported, not used. The test
// re-executes itself (options are read once, at start) in children that
// corrupt their current span's free count, then allocate across window loads:
//   "more": one free slot more than the bitmap has. The window search bounds
//           itself and reports "span: free count promises slots the bitmap
//           does not have" in every build.
//   "less": one free slot less. With the validators (debug build, or
//           GOMEM_DEBUG=1) span_validate reports "span: nfree does not match
//           alloc_bits" at the next window load; without them the count
//           underflows a few windows later and the bounded search reports it.
// Either way the process aborts with "gomem: <fault> at 0x<span>".
#include <signal.h>
#include <string.h>

#include <stdbool.h>

#include "internals.h"
#include "test.h"

static int child(const char *how) {
  void *p = gm_malloc(48);
  mspan_t *s = spanof((uintptr_t)p);
  if (strcmp(how, "more") == 0)
    s->nfree++;
  else
    s->nfree--;
  for (int i = 0; i < 2 * GM_MAX_OBJS_PER_SPAN; i++)
    (void)gm_malloc(48); // loads windows: validated ones notice
  return 0;
}

// run_child: the wait status of a child corrupting `how` with
// GOMEM_DEBUG=debug; its stderr in err.
static int run_child(const char *how, const char *debug, char *err, size_t n) {
  char env[32];
  snprintf(env, sizeof env, "GOMEM_DEBUG=%s", debug);
  return test_run_self(how, env, 2, err, n);
}

static const char *const validator = "gomem: span: nfree does not match alloc_bits at 0x";
static const char *const bounded =
    "gomem: span: free count promises slots the bitmap does not have at 0x";

static void expect_report(const char *how, const char *debug, const char *report) {
  char err[4096];
  int st = run_child(how, debug, err, sizeof err);
  CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "%s, GOMEM_DEBUG=%s: status %d", how, debug,
         st);
  CHECKF(strstr(err, report) != NULL, "%s, GOMEM_DEBUG=%s: want '%s', got: %s", how, debug, report,
         err);
}

int main(int argc, char **argv) {
  if (argc > 1)
    return child(argv[1]);
  bool validators = GM_DEBUG >= 2;
  expect_report("more", "0", validators ? validator : bounded);
  expect_report("more", "1", validator);
  expect_report("less", "1", validator);
  expect_report("less", "0", validators ? validator : bounded);
  return test_done();
}
