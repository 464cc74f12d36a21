// fuzz_misuse: deliberate misuse after a random benign prefix.
//
// Each input runs in a forked child (test_run_child): a benign prefix of up
// to 64 operations (malloc family and GC allocations of many sizes, frees,
// reallocs, collections, short-lived threads that allocate and free,
// gm_release_memory), then one misuse. The child writes the address the
// report must name ("fuzz-expect: 0x..."), then commits the misuse. The
// parent checks that the child died of SIGABRT and that its stderr has a
// line "gomem: <fault> ... at <that address>" naming the right fault (the
// messages of src/free.c, src/malloc.c, src/mfinal.c, src/mgcsweep.c). The
// control case commits no misuse: the child must exit cleanly, without a
// word from gomem, whatever the prefix did.
//
// Input: byte 0 picks the case (cases[], those gomem catches; the misuse's
// size and offset come from bytes 1-4), the remaining bytes decode the prefix
// (an opcode byte and operand bytes per operation; missing bytes read 0).
//
// Cases that gomem does not catch today are not fuzzed: `fuzz_misuse
// --survey` runs every case once, without a prefix, and prints which ones
// gomem catches (see README.md).
//
// The misuse cases that need an object on the calling thread's free list
// first empty that class's list, so that whatever the prefix did, the object
// is listed when it is freed.
#define FUZZ_NAME "fuzz_misuse"
#include "fuzz.h"

#include <sys/mman.h>
#include <sys/wait.h>

#define TEST_TSAN_NO_DEADLOCKS // (test.h: a child forks while locks are held)
#include "test.h"

#define RES_A 1100 // sizes of the objects freed onto a thread's list
#define RES_B 1200
#define NSLOTS 32
#define MAX_PREFIX 64

static const uint8_t *cur_data; // the input, for the child
static size_t cur_size;
static char global_buf[256];
void *volatile fz_misuse_roots[NSLOTS]; // prefix objects (GC ones stay reachable)
static uint8_t slot_gc[NSLOTS];         // the slot holds a GC object

// hide keeps the compiler from reasoning about a pointer's origin (it would
// warn about the misuse, or fold it).
static void *hide(void *p) {
  void *volatile v = p;
  return v;
}

// expect writes the address the child's report must name.
static void expect(const void *addr) {
  char buf[64];
  int n = snprintf(buf, sizeof buf, "fuzz-expect: %p\n", addr);
  ssize_t k = write(2, buf, (size_t)n);
  (void)k;
}

// ---------------------------------------------------------------------------
// The benign prefix

static void *prefix_thread(void *arg) {
  unsigned n = (unsigned)(uintptr_t)arg;
  void *v[16];
  for (unsigned i = 0; i < 16; i++)
    v[i] = gm_malloc((n * 37 + i * 91) % 3000);
  for (unsigned i = 0; i < 16; i++)
    gm_free(v[(i * 7) % 16]);
  return gm_alloc(n % 200);
}

static size_t prefix_size(fz_in_t *in) {
  unsigned v = fz_u16(in);
  return v >> 15 ? v % 40000 : v % 2048;
}

// put stores p in slot s, freeing what the slot held (GC objects are left to
// the collector).
static void put(unsigned s, void *p, int gc) {
  if (!slot_gc[s])
    gm_free(fz_misuse_roots[s]);
  fz_misuse_roots[s] = p;
  slot_gc[s] = (uint8_t)gc;
}

static void prefix_op(fz_in_t *in) {
  unsigned op = fz_u8(in) % 10, s = fz_u8(in) % NSLOTS;
  switch (op) {
  case 0:
  case 1:
  case 2:
    put(s, gm_malloc(prefix_size(in)), 0);
    break;
  case 3:
    put(s, (fz_u8(in) & 1) ? gm_alloc(prefix_size(in)) : gm_alloc_noscan(prefix_size(in)), 1);
    break;
  case 4:
  case 5:
    put(s, NULL, 0);
    break;
  case 6:
    if (!slot_gc[s])
      fz_misuse_roots[s] = gm_realloc(fz_misuse_roots[s], prefix_size(in));
    break;
  case 7: {
    pthread_t t;
    void *r = NULL;
    if (pthread_create(&t, NULL, prefix_thread, (void *)(uintptr_t)fz_u8(in)) == 0)
      pthread_join(t, &r);
    put(s, r, 1);
    break;
  }
  case 8:
    gm_collect();
    break;
  default:
    gm_release_memory();
    break;
  }
}

// ---------------------------------------------------------------------------
// Helpers of the cases

static void *thread_free(void *p) {
  gm_free(p);
  return NULL;
}

static void *thread_free_twice(void *p) {
  gm_free(p);
  gm_free(p);
  return NULL;
}

static void run_thread(void *(*fn)(void *), void *arg) {
  pthread_t t;
  if (pthread_create(&t, NULL, fn, arg) != 0)
    _exit(3);
  pthread_join(t, NULL);
}

// listed_object returns an object of the reserved class of `size`, freed
// onto the calling thread's free list: the list is emptied first (its
// objects allocated again), and the free goes through the arena map (the
// thread last freed into another span), which lists it.
static void *volatile listed_keep[128];

static char *listed_object(size_t size) {
  for (int i = 0; i < 128; i++)
    listed_keep[i] = gm_malloc(size);
  char *p = gm_malloc(size);
  gm_free(gm_malloc(size == RES_A ? RES_B : RES_A));
  gm_free(p);
  return p;
}

static size_t small_size(fz_in_t *in) {
  return 1 + fz_u16(in) % 32768;
}

static size_t large_size(fz_in_t *in) {
  return 32769 + fz_u16(in) * 16;
}

// ---------------------------------------------------------------------------
// The cases: each commits one misuse after expect(address). The parameters
// come from the input.

static void c_double_free_small(fz_in_t *in) {
  char *p = gm_malloc(small_size(in));
  expect(p);
  gm_free(p);
  gm_free(hide(p));
}

static void c_double_free_large(fz_in_t *in) {
  char *p = gm_malloc(large_size(in));
  expect(p);
  gm_free(p);
  gm_free(hide(p));
}

static void c_free_interior_small(fz_in_t *in) {
  size_t size = 2 + fz_u16(in) % 32767;
  char *p = gm_malloc(size);
  char *q = p + 1 + fz_u16(in) % (gm_usable_size(p) - 1);
  expect(q);
  gm_free(hide(q));
}

static void c_free_interior_large(fz_in_t *in) {
  char *p = gm_malloc(large_size(in));
  char *q = p + 1 + fz_u32(in) % (gm_usable_size(p) - 1);
  expect(q);
  gm_free(hide(q));
}

static void c_free_stack(fz_in_t *in) {
  char buf[64];
  memset(buf, 1, sizeof buf);
  char *q = buf + fz_u8(in) % 64;
  expect(q);
  gm_free(hide(q));
}

static void c_free_global(fz_in_t *in) {
  char *q = global_buf + fz_u8(in) % sizeof global_buf;
  expect(q);
  gm_free(hide(q));
}

static void c_free_mmap(fz_in_t *in) {
  char *m = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED)
    _exit(4);
  char *q = m + fz_u16(in);
  expect(q);
  gm_free(q);
}

static void c_free_freed_pages(fz_in_t *in) {
  char *p = gm_malloc(((size_t)1 << 20) + fz_u16(in));
  gm_free(p);
  // Inside the second page, not at its start (that is "double free (page not in use)").
  char *q = p + 8192 + 8 + fz_u16(in) % 1023 * 8;
  expect(q);
  gm_free(hide(q));
}

static void c_realloc_interior_small(fz_in_t *in) {
  char *p = gm_malloc(16 + fz_u16(in) % 16384);
  char *q = p + 8 * (1 + fz_u8(in) % (gm_usable_size(p) / 8 - 1));
  expect(q);
  void *r = gm_realloc(hide(q), fz_u16(in));
  (void)r;
}

static void c_realloc_interior_large(fz_in_t *in) {
  char *p = gm_malloc(large_size(in));
  char *q = p + 8 * (1 + fz_u16(in) % (gm_usable_size(p) / 8 - 1));
  expect(q);
  void *r = gm_realloc(hide(q), fz_u16(in));
  (void)r;
}

static void c_realloc_foreign(fz_in_t *in) {
  char *q = global_buf + 8 * (fz_u8(in) % 32);
  expect(q);
  void *r = gm_realloc(hide(q), fz_u16(in));
  (void)r;
}

static void c_usable_size_foreign(fz_in_t *in) {
  char buf[32];
  char *q = fz_u8(in) & 1 ? global_buf : buf;
  expect(q);
  size_t n = gm_usable_size(hide(q));
  (void)n;
}

static void c_usable_size_interior_large(fz_in_t *in) {
  char *p = gm_malloc(large_size(in));
  char *q = p + 1 + fz_u16(in) % (gm_usable_size(p) - 1);
  expect(q);
  size_t n = gm_usable_size(hide(q));
  (void)n;
}

static void c_write_after_free_listed(fz_in_t *in) {
  size_t size = fz_u8(in) & 1 ? RES_A : RES_B;
  char *p = listed_object(size);
  expect(p);
  memset(hide(p), fz_u8(in) | 1, 8 + fz_u8(in) % 8); // use after free, on purpose
  void *r = gm_malloc(size);
  (void)r;
}

static void c_double_free_listed_remote(fz_in_t *in) {
  size_t size = fz_u8(in) & 1 ? RES_A : RES_B;
  char *p = listed_object(size);
  expect(p);
  run_thread(thread_free, p); // freed again, by another thread
  void *r = gm_malloc(size);
  (void)r;
}

static void c_double_free_remote(fz_in_t *in) {
  char *p = gm_malloc(small_size(in));
  expect(p);
  run_thread(thread_free_twice, p);
  gm_release_memory(); // the owner applies the remote list
}

static void c_write_after_remote_free(fz_in_t *in) {
  char *p = gm_malloc(8 + fz_u16(in) % 32760);
  uintptr_t garbage = 0x4141414141414141ull ^ ((uintptr_t)fz_u8(in) << 8);
  run_thread(thread_free, p);
  expect((void *)garbage);
  memcpy(hide(p), &garbage, sizeof garbage); // use after free, on purpose
  gm_release_memory();
}

static void nop_fin(void *obj, void *arg) {
  (void)obj;
  (void)arg;
}

static void c_finalizer_on_malloc(fz_in_t *in) {
  char *p = gm_malloc(fz_u16(in));
  expect(p);
  gm_set_finalizer(hide(p), nop_fin, NULL);
}

static void c_finalizer_on_stack(fz_in_t *in) {
  char buf[64];
  memset(buf, 0, sizeof buf);
  char *q = buf + 8 * (fz_u8(in) % 8);
  expect(q);
  gm_set_finalizer(hide(q), nop_fin, NULL);
}

static void c_finalizer_interior(fz_in_t *in) {
  size_t size = 17 + fz_u16(in) % 60000; // not tiny: (fuzz_gc covers tiny objects)
  char *p = fz_u8(in) & 1 ? gm_alloc(size) : gm_alloc_noscan(size);
  char *q = p + 1 + fz_u16(in) % (size - 1);
  expect(q);
  gm_set_finalizer(hide(q), nop_fin, NULL);
}

static void c_gc_double_free(fz_in_t *in) {
  size_t size = fz_u8(in) & 1 ? 17 + fz_u16(in) % 32000 : 32769 + fz_u16(in);
  char *p = fz_u8(in) & 1 ? gm_alloc(size) : gm_alloc_noscan(size);
  expect(p);
  gm_free(p);
  gm_free(hide(p));
}

static void c_gc_free_interior(fz_in_t *in) {
  size_t size = 17 + fz_u16(in) % 60000;
  char *p = fz_u8(in) & 1 ? gm_alloc(size) : gm_alloc_noscan(size);
  char *q = p + 1 + fz_u16(in) % (size - 1);
  expect(q);
  gm_free(hide(q));
}

// The control: no misuse.
static void c_none(fz_in_t *in) {
  gm_free(gm_malloc(fz_u16(in)));
}

// Misuses gomem does not catch today (--survey only).
static void u_double_free_gc16(fz_in_t *in) {
  (void)in;
  char *p = gm_alloc_noscan(16);
  expect(p);
  gm_free(p);
  gm_free(hide(p));
}

static void u_gc_double_free_threads(fz_in_t *in) {
  (void)in;
  char *p = gm_alloc(64); // the span stays cached by this thread
  expect(p);
  run_thread(thread_free, p);
  run_thread(thread_free, p);
  gm_collect();
}

static void u_finalizer_on_freed(fz_in_t *in) {
  (void)in;
  char *p = gm_alloc(64);
  gm_free(p);
  expect(p);
  gm_set_finalizer(hide(p), nop_fin, NULL);
}

static void u_realloc_freed(fz_in_t *in) {
  (void)in;
  char *p = gm_malloc(64);
  gm_free(p);
  expect(p);
  void *r = gm_realloc(hide(p), 40);
  (void)r;
}

static void u_usable_size_freed(fz_in_t *in) {
  (void)in;
  char *p = gm_malloc(64);
  gm_free(p);
  expect(p);
  size_t n = gm_usable_size(hide(p));
  (void)n;
}

static void u_write_after_free_bitmap(fz_in_t *in) {
  (void)in;
  char *p = gm_malloc(64);
  gm_free(p);
  gm_free(gm_malloc(64)); // the second free goes to the bitmap path, p's span last
  expect(p);
  memset(hide(p), 0x41, 64);
  for (int i = 0; i < 200; i++)
    fz_misuse_roots[i % NSLOTS] = gm_malloc(64);
}

typedef struct mcase {
  const char *name;
  void (*run)(fz_in_t *in);
  const char *fault; // the words the gomem line must hold; NULL: a clean exit
  int caught;        // 0: gomem does not catch it today (survey only)
} mcase_t;

static const mcase_t cases[] = {
    {"no misuse (control)", c_none, NULL, 1},
    {"double free, small", c_double_free_small, "double free", 1},
    {"double free, large", c_double_free_large, "double free", 1},
    {"free of an interior pointer, small", c_free_interior_small, "inside an object or misaligned",
     1},
    {"free of an interior pointer, large", c_free_interior_large, "inside a large object", 1},
    {"free of a stack address", c_free_stack, "did not allocate", 1},
    {"free of a global", c_free_global, "did not allocate", 1},
    {"free of mmap memory", c_free_mmap, "did not allocate", 1},
    {"free inside freed heap pages", c_free_freed_pages, "unallocated heap memory", 1},
    {"realloc of an interior pointer, small", c_realloc_interior_small, "inside an object", 1},
    {"realloc of an interior pointer, large", c_realloc_interior_large, "inside a large object", 1},
    {"realloc of a global", c_realloc_foreign, "realloc of a pointer gomem did not allocate", 1},
    {"usable_size of a foreign pointer", c_usable_size_foreign, "did not allocate", 1},
    {"usable_size of an interior pointer, large", c_usable_size_interior_large,
     "inside a large object", 1},
    {"write after free, listed object", c_write_after_free_listed, "written after free", 1},
    {"double free across threads, listed", c_double_free_listed_remote,
     "freed again by another thread", 1},
    {"double free by another thread", c_double_free_remote, "double free", 1},
    {"write after a remote free", c_write_after_remote_free, "corrupted remote free list", 1},
    {"gm_set_finalizer on malloc memory", c_finalizer_on_malloc, "not the start of a GC object", 1},
    {"gm_set_finalizer on the stack", c_finalizer_on_stack, "not the start of a GC object", 1},
    {"gm_set_finalizer inside a GC object", c_finalizer_interior, "not the start of a GC object",
     1},
    {"double free of a GC object", c_gc_double_free, "double free", 1},
    {"free inside a GC object", c_gc_free_interior, "inside a", 1},
    {"double free of a 16-byte pointer-free GC object", u_double_free_gc16, "double free", 0},
    {"double free of a GC object by two other threads", u_gc_double_free_threads, "double free", 0},
    {"gm_set_finalizer on a freed GC object", u_finalizer_on_freed, "", 0},
    {"realloc of a freed pointer (shrinking)", u_realloc_freed, "", 0},
    {"usable_size of a freed pointer", u_usable_size_freed, "", 0},
    {"write after free, object freed to the bitmap", u_write_after_free_bitmap, "", 0},
};

#define NCAUGHT 23 // cases[0 .. NCAUGHT): fuzzed

// ---------------------------------------------------------------------------
// Coverage of the child (libFuzzer): the child copies its coverage counters
// into shared memory when it exits or aborts, and the parent adds them to its
// own before returning to libFuzzer, which would otherwise see nothing of
// what the child ran.

#ifdef FUZZ_LIBFUZZER
uint8_t *fz_cov_counters(size_t *len); // fuzz_cov.c
static uint8_t *cov_shared, *cov_counters;
static size_t cov_n;

static void cov_setup(void) {
  cov_counters = fz_cov_counters(&cov_n);
  if (cov_n == 0)
    return;
  cov_shared = mmap(NULL, cov_n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (cov_shared == MAP_FAILED)
    cov_shared = NULL;
}

static void cov_save(void) { // in the child; async-signal-safe
  for (size_t i = 0; cov_shared != NULL && i < cov_n; i++)
    cov_shared[i] = cov_counters[i];
}

static void cov_on_abort(int sig) {
  cov_save();
  signal(sig, SIG_DFL);
  raise(sig);
}

static void cov_merge(void) { // in the parent, after the child
  for (size_t i = 0; cov_shared != NULL && i < cov_n; i++) {
    if (cov_shared[i] > cov_counters[i])
      cov_counters[i] = cov_shared[i];
    cov_shared[i] = 0;
  }
}
#else
static void cov_setup(void) {}
static void cov_save(void) {}
static void cov_merge(void) {}
#endif

// ---------------------------------------------------------------------------
// Parent and child

static const mcase_t *cur_case;

static void child(void) {
#ifndef FUZZ_LIBFUZZER
  fz_child_reset();
#else
  signal(SIGABRT, cov_on_abort); // (libFuzzer's handler would report a crash)
#endif
  fz_in_t params = {cur_data + (cur_size > 0), cur_size > 5 ? 4 : 0, 0};
  fz_in_t in = {cur_data + (cur_size > 5 ? 5 : cur_size), cur_size > 5 ? cur_size - 5 : 0, 0};
  for (int i = 0; i < MAX_PREFIX && fz_more(&in); i++)
    prefix_op(&in);
  cur_case->run(&params);
  cov_save();
}

// reported: whether err has a line "gomem: ...<fault>... at <addr>".
static int reported(const char *err, const char *fault) {
  const char *e = strstr(err, "fuzz-expect: ");
  if (e == NULL)
    return 0;
  char addr[40];
  if (sscanf(e, "fuzz-expect: %39s", addr) != 1)
    return 0;
  for (const char *g = strstr(err, "gomem: "); g != NULL; g = strstr(g + 1, "gomem: ")) {
    const char *eol = strchr(g, '\n');
    size_t len = eol ? (size_t)(eol - g) : strlen(g);
    char line[512];
    snprintf(line, sizeof line, "%.*s", (int)len, g);
    char at[64];
    snprintf(at, sizeof at, " at %s", addr);
    size_t n = strlen(line), k = strlen(at);
    // (the hardened build words its faults its own way: the address must match)
    if ((GM_SECURE || strstr(line, fault) != NULL) && n >= k && strcmp(line + n - k, at) == 0)
      return 1;
  }
  return 0;
}

static const char *outcome_str(const test_outcome_t *o, char *buf, size_t n) {
  if (o->timed_out)
    snprintf(buf, n, "timed out");
  else if (WIFSIGNALED(o->status))
    snprintf(buf, n, "signal %d", WTERMSIG(o->status));
  else
    snprintf(buf, n, "exit %d", WEXITSTATUS(o->status));
  return buf;
}

static void run_case(const mcase_t *c, const uint8_t *data, size_t size) {
  test_outcome_t o;
  char how[32];
  cur_case = c;
  cur_data = data;
  cur_size = size;
  test_run_child(child, &o);
  cov_merge();
  outcome_str(&o, how, sizeof how);
  if (c->fault == NULL) {
    FZ_CHECK(!o.timed_out && WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0 &&
                 strstr(o.err, "gomem") == NULL,
             "%s: want a clean exit; got %s, stderr: \"%s\"", c->name, how, o.err);
    return;
  }
  int aborted = !o.timed_out && WIFSIGNALED(o.status) && WTERMSIG(o.status) == SIGABRT;
  FZ_CHECK(aborted && reported(o.err, c->fault),
           "%s: want SIGABRT and \"gomem: ...%s... at <the address>\"; got %s, stderr: \"%s\"",
           c->name, c->fault, how, o.err);
}

// survey runs every case once without a prefix and prints what gomem does.
static void survey(void) {
  for (size_t i = 0; i < FZ_ARRAY_LEN(cases); i++) {
    test_outcome_t o;
    char how[32];
    cur_case = &cases[i];
    cur_data = NULL;
    cur_size = 0;
    test_run_child(child, &o);
    const char *g = strstr(o.err, "gomem: ");
    printf("%-50s %-9s %s%.*s\n", cases[i].name, outcome_str(&o, how, sizeof how),
           cases[i].caught ? "" : "[not fuzzed] ",
           g ? (int)(strchr(g, '\n') ? strchr(g, '\n') - g : (long)strlen(g)) : 0, g ? g : "");
  }
  fflush(stdout);
}

static void fuzz_setup(void) {
  cov_setup();
  (void)test_passed; // (test.h's counters: this harness fails through FZ_CHECK)
  (void)test_failed;
  if (getenv("GOMEM_FUZZ_SURVEY") != NULL)
    survey();
#ifndef FUZZ_LIBFUZZER
  // valgrind: a child takes seconds; the regressions still run (ctest
  // leaves the corpus out), the random phase is skipped.
  if (strcmp(GOMEM_SANITIZE, "valgrind") == 0)
    fz_skip_random = "a forked child per input takes seconds under valgrind; corpus not replayed";
#endif
}

static void fuzz_one(const uint8_t *data, size_t size) {
  unsigned pick = size > 0 ? data[0] : 0;
  run_case(&cases[pick % NCAUGHT], data, size);
}
