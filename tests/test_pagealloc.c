// test_pagealloc.c: tests for the page allocator (src/mpagealloc.c).
//
// The allocator only keeps metadata: it never touches the pages it manages,
// so the tests grow fake, chunk-aligned address ranges and pass a release
// recorder instead of madvise. A byte-per-page model checks first fit,
// counters and scavenging after every random operation.
#include "mpagealloc.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int g_pass, g_fail;

// CHECK counts a pass or a failure (printing file:line) and yields cond.
#define CHECK(cond) check_at(!!(cond), __FILE__, __LINE__, #cond)

static bool check_at(bool ok, const char *file, int line, const char *expr) {
  if (ok) {
    g_pass++;
  } else {
    g_fail++;
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", file, line, expr);
  }
  return ok;
}

#define PAGE PA_PAGE_SIZE
#define CHUNK PA_CHUNK_BYTES
#define FAKE_BASE ((uintptr_t)0x7f0000000000) // 16 GiB aligned: a level-0 boundary

// ---------------------------------------------------------------------------
// Release recorder

typedef struct rec_run {
  uintptr_t addr;
  size_t bytes;
} rec_run_t;

typedef struct recorder {
  rec_run_t *runs;
  size_t n, cap;
} recorder_t;

static void rec_release(void *ctx, uintptr_t addr, size_t bytes) {
  recorder_t *r = ctx;
  if (r->n == r->cap) {
    r->cap = r->cap ? 2 * r->cap : 64;
    r->runs = realloc(r->runs, r->cap * sizeof *r->runs);
    if (r->runs == NULL)
      abort();
  }
  r->runs[r->n++] = (rec_run_t){addr, bytes};
}

// ---------------------------------------------------------------------------
// Pack / unpack

static void test_pack(void) {
  int before = g_pass;
  unsigned vals[] = {0, 1, 7, 64, 511, 512, 4096, 32768, 262144, (1u << 21) - 1};
  size_t nv = sizeof vals / sizeof vals[0];
  for (size_t i = 0; i < nv; i++)
    for (size_t j = 0; j < nv; j++)
      for (size_t k = 0; k < nv; k++) {
        pa_sum_t s = pa_pack(vals[i], vals[j], vals[k]);
        CHECK(pa_start(s) == vals[i] && pa_max(s) == vals[j] && pa_end(s) == vals[k]);
      }
  pa_sum_t all = pa_pack(PA_MAX_PACKED, PA_MAX_PACKED, PA_MAX_PACKED);
  CHECK(all == (pa_sum_t)1 << 63);
  CHECK(pa_start(all) == PA_MAX_PACKED);
  CHECK(pa_max(all) == PA_MAX_PACKED);
  CHECK(pa_end(all) == PA_MAX_PACKED);
  CHECK(pa_pack(0, 0, 0) == 0);
  printf("pack/unpack: %d checks\n", g_pass - before);
}

// ---------------------------------------------------------------------------
// Model: one byte per page over [base, base + npages pages)

enum { M_NONE, M_FREE, M_SCAV, M_USED }; // not grown, free, free+scavenged, in use

typedef struct model {
  uintptr_t base;
  size_t npages;
  unsigned char *st;
} model_t;

static size_t m_index(const model_t *m, uintptr_t addr) {
  return (addr - m->base) / PAGE;
}

static uintptr_t m_addr(const model_t *m, size_t i) {
  return m->base + i * PAGE;
}

static bool m_is_free(const model_t *m, size_t i) {
  return m->st[i] == M_FREE || m->st[i] == M_SCAV;
}

static uintptr_t m_first_fit(const model_t *m, size_t n) {
  size_t run = 0;
  for (size_t i = 0; i < m->npages; i++) {
    run = m_is_free(m, i) ? run + 1 : 0;
    if (run == n)
      return m_addr(m, i + 1 - n);
  }
  return 0;
}

static size_t m_count(const model_t *m, int state) {
  size_t c = 0;
  for (size_t i = 0; i < m->npages; i++)
    c += m->st[i] == state;
  return c;
}

// ---------------------------------------------------------------------------
// Random operations against the model

typedef struct live {
  uintptr_t addr;
  size_t npages;
} live_t;

typedef struct world {
  pagealloc_t pa;
  recorder_t rec;
  model_t m;
  live_t *live;
  size_t nlive;
  uint64_t rng;
  bool failed;
} world_t;

static uint64_t rnd(world_t *w) {
  w->rng ^= w->rng >> 12;
  w->rng ^= w->rng << 25;
  w->rng ^= w->rng >> 27;
  return w->rng * 0x2545F4914F6CDD1DULL;
}

static size_t rnd_below(world_t *w, size_t n) {
  return (size_t)(rnd(w) % n);
}

// CHECKW is CHECK that also marks the world failed, so a broken run stops.
#define CHECKW(w, cond)                                                                            \
  do {                                                                                             \
    if (!CHECK(cond))                                                                              \
      (w)->failed = true;                                                                          \
  } while (0)

static void w_grow(world_t *w, uintptr_t base, size_t chunks) {
  CHECKW(w, pagealloc_grow(&w->pa, base, chunks * CHUNK) == 0);
  size_t i = m_index(&w->m, base);
  memset(w->m.st + i, M_SCAV, chunks * CHUNK / PAGE);
}

static size_t rnd_npages(world_t *w) {
  size_t r = rnd_below(w, 100);
  if (r < 40)
    return 1 + rnd_below(w, 8);
  if (r < 70)
    return 1 + rnd_below(w, 100);
  if (r < 90)
    return 1 + rnd_below(w, 1000);
  return 400 + rnd_below(w, 4000); // often more than a chunk
}

static void w_alloc(world_t *w) {
  size_t n = rnd_npages(w), scav = 12345;
  uintptr_t want = m_first_fit(&w->m, n);
  uintptr_t got = pagealloc_alloc(&w->pa, n, &scav);
  CHECKW(w, got == want);
  if (got != want) {
    fprintf(stderr, "alloc(%zu): got 0x%lx want 0x%lx\n", n, (unsigned long)got,
            (unsigned long)want);
    return;
  }
  if (got == 0) {
    CHECKW(w, scav == 0);
    return;
  }
  size_t i0 = m_index(&w->m, got), s = 0;
  for (size_t i = i0; i < i0 + n; i++) {
    s += w->m.st[i] == M_SCAV;
    w->m.st[i] = M_USED;
  }
  CHECKW(w, scav == s);
  w->live[w->nlive++] = (live_t){got, n};
}

// w_alloc_at claims a random range at a random page (often free, sometimes
// not, sometimes past the grown space) and compares with the model.
static void w_alloc_at(world_t *w) {
  size_t i0 = rnd_below(w, w->m.npages), n = 1 + rnd_below(w, 300), scav = 12345;
  bool want = i0 + n <= w->m.npages, got;
  size_t s = 0;
  for (size_t i = i0; want && i < i0 + n; i++) {
    want = w->m.st[i] == M_FREE || w->m.st[i] == M_SCAV;
    s += w->m.st[i] == M_SCAV;
  }
  got = pagealloc_alloc_at(&w->pa, m_addr(&w->m, i0), n, &scav);
  CHECKW(w, got == want);
  if (!got || !want) {
    CHECKW(w, scav == 0);
    return;
  }
  CHECKW(w, scav == s);
  memset(w->m.st + i0, M_USED, n);
  w->live[w->nlive++] = (live_t){m_addr(&w->m, i0), n};
}

static void w_free(world_t *w) {
  if (w->nlive == 0)
    return;
  size_t k = rnd_below(w, w->nlive);
  live_t l = w->live[k];
  size_t off = 0, n = l.npages;
  if (rnd_below(w, 3) == 0 && l.npages > 1) { // free part of it
    off = rnd_below(w, l.npages);
    n = 1 + rnd_below(w, l.npages - off);
  }
  pagealloc_free(&w->pa, l.addr + off * PAGE, n);
  size_t i0 = m_index(&w->m, l.addr) + off;
  memset(w->m.st + i0, M_FREE, n);
  w->live[k] = w->live[--w->nlive];
  if (off > 0)
    w->live[w->nlive++] = (live_t){l.addr, off};
  if (off + n < l.npages)
    w->live[w->nlive++] = (live_t){l.addr + (off + n) * PAGE, l.npages - off - n};
}

// w_scavenge checks that the released runs are exactly the highest free
// unscavenged pages within the budget, reported highest first.
static void w_scavenge(world_t *w) {
  size_t max_bytes = rnd_below(w, 4) == 0 ? SIZE_MAX : rnd_below(w, 3000) * PAGE / 2 + 17;
  size_t budget = max_bytes / PAGE, expect = 0;
  unsigned char *want = calloc(w->m.npages, 1);
  for (size_t i = w->m.npages; i-- > 0 && expect < budget;)
    if (w->m.st[i] == M_FREE) {
      want[i] = 1;
      expect++;
    }
  w->rec.n = 0;
  size_t got = pagealloc_scavenge(&w->pa, max_bytes);
  CHECKW(w, got == expect * PAGE);
  CHECKW(w, got <= max_bytes);
  uintptr_t prev = UINTPTR_MAX;
  bool ok = true;
  size_t sum = 0;
  for (size_t r = 0; r < w->rec.n; r++) {
    rec_run_t run = w->rec.runs[r];
    ok = ok && run.bytes > 0 && run.bytes % PAGE == 0 && run.addr % PAGE == 0;
    ok = ok && run.addr + run.bytes <= prev; // highest first, no overlap
    prev = run.addr;
    sum += run.bytes;
    for (uintptr_t a = run.addr; ok && a < run.addr + run.bytes; a += PAGE) {
      size_t i = m_index(&w->m, a);
      ok = a >= w->m.base && i < w->m.npages && want[i] == 1;
      if (ok)
        want[i] = 2;
    }
  }
  CHECKW(w, ok);
  CHECKW(w, sum == got);
  for (size_t i = 0; i < w->m.npages; i++)
    if (want[i]) {
      ok = ok && want[i] == 2;
      w->m.st[i] = M_SCAV;
    }
  CHECKW(w, ok);
  free(want);
}

static void w_is_free(world_t *w) {
  size_t i = rnd_below(w, w->m.npages);
  CHECKW(w, pagealloc_is_free(&w->pa, m_addr(&w->m, i)) == m_is_free(&w->m, i));
}

static void w_check_counters(world_t *w) {
  size_t nfree = m_count(&w->m, M_FREE), nscav = m_count(&w->m, M_SCAV);
  CHECKW(w, w->pa.free_pages == nfree + nscav);
  CHECKW(w, w->pa.scav_pages == nscav);
  pagealloc_validate(&w->pa);
}

// run_random grows 3 regions of 1-12 chunks from base and runs nops random
// operations, checking everything after each.
static void run_random(uint64_t seed, uintptr_t base, bool fixed, bool adjacent, int nops) {
  world_t w;
  memset(&w, 0, sizeof w);
  w.rng = seed * 0x9E3779B97F4A7C15ULL + 1;
  CHECK(pagealloc_init(&w.pa, rec_release, &w.rec) == 0);
  size_t chunks[3], stride = 16; // 64 MiB apart
  for (int k = 0; k < 3; k++)
    chunks[k] = 1 + rnd_below(&w, 12);
  w.m.base = base;
  w.m.npages = 3 * stride * CHUNK / PAGE;
  w.m.st = calloc(w.m.npages, 1);
  w.live = calloc(w.m.npages, sizeof *w.live);
  // Region k lives in the 64 MiB slot at base + k*64 MiB, at a random chunk
  // offset inside it (offset 0 when `fixed`), or right after region k-1 when
  // `adjacent`. Grow them out of address order.
  uintptr_t at[3];
  for (int k = 0; k < 3; k++) {
    size_t off = fixed ? 0 : rnd_below(&w, stride - chunks[k] + 1);
    at[k] = adjacent ? (k ? at[k - 1] + chunks[k - 1] * CHUNK : base)
                     : base + ((uintptr_t)k * stride + off) * CHUNK;
  }
  const int order[3] = {2, 0, 1};
  for (int k = 0; k < 3; k++)
    w_grow(&w, at[order[k]], chunks[order[k]]);
  w_check_counters(&w);
  CHECK(w.pa.total_pages == (chunks[0] + chunks[1] + chunks[2]) * PA_CHUNK_PAGES);
  for (int op = 0; op < nops && !w.failed; op++) {
    size_t r = rnd_below(&w, 100);
    if (r < 42)
      w_alloc(&w);
    else if (r < 48)
      w_alloc_at(&w);
    else if (r < 90)
      w_free(&w);
    else if (r < 97)
      w_scavenge(&w);
    else
      w_is_free(&w);
    w_check_counters(&w);
  }
  // Free everything: the whole grown space is one free set again.
  while (w.nlive && !w.failed) {
    live_t l = w.live[--w.nlive];
    pagealloc_free(&w.pa, l.addr, l.npages);
    memset(w.m.st + m_index(&w.m, l.addr), M_FREE, l.npages);
  }
  w_check_counters(&w);
  CHECK(w.pa.free_pages == w.pa.total_pages);
  pagealloc_destroy(&w.pa);
  free(w.m.st);
  free(w.live);
  free(w.rec.runs);
}

static void test_random(void) {
  int before = g_pass;
  for (uint64_t seed = 1; seed <= 6; seed++)
    run_random(seed, FAKE_BASE, false, false, 3000);
  printf("random vs model (gapped regions): %d checks\n", g_pass - before);
  before = g_pass;
  // Regions around a 16 GiB boundary: runs cross level-0..3 node boundaries.
  // Region 1 starts 2 chunks below the line.
  for (uint64_t seed = 7; seed <= 9; seed++)
    run_random(seed, FAKE_BASE - 18 * CHUNK, true, false, 3000);
  for (uint64_t seed = 10; seed <= 12; seed++)
    run_random(seed, FAKE_BASE - 12 * CHUNK, true, true, 3000);
  printf("random vs model (boundary-crossing, adjacent grows): %d checks\n", g_pass - before);
}

// ---------------------------------------------------------------------------
// Edge cases

static pagealloc_t *new_pa(recorder_t *rec) {
  static pagealloc_t pa;
  CHECK(pagealloc_init(&pa, rec ? rec_release : NULL, rec) == 0);
  return &pa;
}

static void test_whole_chunks(void) {
  int before = g_pass;
  pagealloc_t *p = new_pa(NULL);
  CHECK(pagealloc_alloc(p, 1, NULL) == 0); // nothing grown
  pagealloc_validate(p);
  uintptr_t b = FAKE_BASE + 5 * CHUNK;
  CHECK(pagealloc_grow(p, b, 2 * CHUNK) == 0);
  size_t scav = 0;
  CHECK(pagealloc_alloc(p, PA_CHUNK_PAGES, &scav) == b);
  CHECK(scav == PA_CHUNK_PAGES);
  CHECK(pagealloc_alloc(p, PA_CHUNK_PAGES, NULL) == b + CHUNK);
  CHECK(pagealloc_alloc(p, 1, &scav) == 0 && scav == 0);
  CHECK(p->free_pages == 0);
  pagealloc_validate(p);
  pagealloc_free(p, b, PA_CHUNK_PAGES);
  CHECK(pagealloc_alloc(p, PA_CHUNK_PAGES + 1, NULL) == 0);
  CHECK(pagealloc_alloc(p, PA_CHUNK_PAGES, &scav) == b);
  CHECK(scav == 0); // freed pages are not scavenged
  pagealloc_free(p, b, 2 * PA_CHUNK_PAGES);
  CHECK(pagealloc_alloc(p, 2 * PA_CHUNK_PAGES, NULL) == b);
  pagealloc_free(p, b, 2 * PA_CHUNK_PAGES);
  // A run crossing the chunk boundary.
  CHECK(pagealloc_alloc(p, 500, NULL) == b);
  CHECK(pagealloc_alloc(p, 100, NULL) == b + 500 * PAGE);
  CHECK(pagealloc_alloc(p, 1, NULL) == b + 600 * PAGE);
  pagealloc_validate(p);
  pagealloc_destroy(p);
  printf("whole chunks, chunk-crossing runs: %d checks\n", g_pass - before);
}

// test_chunk_patterns frees random runs (many near 64 pages, many touching
// word edges) in an otherwise full chunk and checks the chunk's summary and
// the leaf search against a page-by-page computation.
static void test_chunk_patterns(void) {
  int before = g_pass;
  pagealloc_t *p = new_pa(NULL);
  uintptr_t b = FAKE_BASE + 7 * CHUNK;
  size_t c = b / CHUNK;
  CHECK(pagealloc_grow(p, b, CHUNK) == 0);
  world_t w = {.rng = 99};
  bool ok = true;
#define CHECK_TRIAL(cond) (ok = CHECK(cond) && ok)
  for (int trial = 0; trial < 3000 && ok; trial++) {
    CHECK_TRIAL(pagealloc_alloc(p, PA_CHUNK_PAGES, NULL) == b);
    if (trial < 40) { // a run inside word 1 vs. one across words 2-3, both ~60
      pagealloc_free(p, b + 65 * PAGE, 58 + trial % 5);
      pagealloc_free(p, b + 162 * PAGE, 58 + trial / 5);
    }
    for (int k = (int)rnd_below(&w, 6); k >= 0; k--) {
      size_t len = rnd_below(&w, 2) ? 55 + rnd_below(&w, 12) : 1 + rnd_below(&w, 70);
      size_t at = rnd_below(&w, 512);
      if (rnd_below(&w, 3)) // start or end on a word edge
        at = rnd_below(&w, 9) * 64 - rnd_below(&w, 2) * len;
      if (at >= PA_CHUNK_PAGES || len > PA_CHUNK_PAGES - at)
        continue;
      bool used = true;
      for (size_t i = at; i < at + len; i++)
        used = used && !pagealloc_is_free(p, b + i * PAGE);
      if (used)
        pagealloc_free(p, b + at * PAGE, len);
    }
    unsigned start = 0, max = 0, run = 0;
    bool prefix = true;
    for (size_t i = 0; i < PA_CHUNK_PAGES; i++) {
      bool f = pagealloc_is_free(p, b + i * PAGE);
      run = f ? run + 1 : 0;
      prefix = prefix && f;
      start += prefix;
      max = run > max ? run : max;
    }
    pa_sum_t s = p->summary[PA_LEVELS - 1][c];
    CHECK_TRIAL(pa_start(s) == start && pa_max(s) == max && pa_end(s) == run);
    if (max > 0) {
      uintptr_t want = 0;
      for (size_t i = 0, r = 0; i < PA_CHUNK_PAGES && !want; i++) {
        r = pagealloc_is_free(p, b + i * PAGE) ? r + 1 : 0;
        if (r == max)
          want = b + (i + 1 - max) * PAGE;
      }
      CHECK_TRIAL(pagealloc_alloc(p, max + 1, NULL) == 0);
      CHECK_TRIAL(pagealloc_alloc(p, max, NULL) == want);
      pagealloc_free(p, want, max);
    }
    pagealloc_validate(p);
    // Reset: free what is still in use, page by page in runs.
    for (size_t i = 0; i < PA_CHUNK_PAGES;) {
      size_t j = i;
      while (j < PA_CHUNK_PAGES && !pagealloc_is_free(p, b + j * PAGE))
        j++;
      if (j > i)
        pagealloc_free(p, b + i * PAGE, j - i);
      i = j + 1;
    }
    CHECK_TRIAL(p->free_pages == PA_CHUNK_PAGES);
  }
#undef CHECK_TRIAL
  pagealloc_validate(p);
  pagealloc_destroy(p);
  printf("chunk summary patterns: %d checks\n", g_pass - before);
}

static void test_region(void) {
  int before = g_pass;
  pagealloc_t *p = new_pa(NULL);
  uintptr_t a = FAKE_BASE + 64 * CHUNK, b = FAKE_BASE + 100 * CHUNK;
  CHECK(pagealloc_grow(p, b, 12 * CHUNK) == 0);
  CHECK(pagealloc_grow(p, a, 3 * CHUNK) == 0); // below the first: moves search_addr down
  size_t n = 12 * PA_CHUNK_PAGES;
  CHECK(pagealloc_alloc(p, n + 1, NULL) == 0);
  CHECK(pagealloc_alloc(p, n, NULL) == b); // whole region (the gap is not free)
  CHECK(pagealloc_alloc(p, 3 * PA_CHUNK_PAGES, NULL) == a);
  CHECK(pagealloc_alloc(p, 1, NULL) == 0);
  pagealloc_validate(p);
  pagealloc_free(p, b, n);
  pagealloc_free(p, a, 3 * PA_CHUNK_PAGES);
  // Fragmented: plenty of free pages, no run long enough.
  CHECK(pagealloc_alloc(p, 10, NULL) == a);
  CHECK(pagealloc_alloc(p, 3 * PA_CHUNK_PAGES - 10 + 1, NULL) == b);
  CHECK(pagealloc_alloc(p, 12 * PA_CHUNK_PAGES, NULL) == 0);
  CHECK(p->free_pages == 15 * PA_CHUNK_PAGES - 10 - (3 * PA_CHUNK_PAGES - 9));
  pagealloc_validate(p);
  pagealloc_destroy(p);
  printf("whole region, more than available: %d checks\n", g_pass - before);
}

// test_boundaries grows 64 chunks straddling a 16 GiB line, which is also a
// level-1, level-2 and level-3 node boundary and an L2-block boundary, then
// allocates runs that cross it.
static void test_boundaries(void) {
  int before = g_pass;
  pagealloc_t *p = new_pa(NULL);
  uintptr_t line = FAKE_BASE, lo = line - 32 * CHUNK;
  size_t total = 64 * PA_CHUNK_PAGES;
  CHECK(pagealloc_grow(p, lo, 64 * CHUNK) == 0);
  CHECK(pagealloc_alloc(p, total, NULL) == lo);
  pagealloc_validate(p);
  pagealloc_free(p, line - 3 * PAGE, 8);
  CHECK(pagealloc_alloc(p, 9, NULL) == 0);
  CHECK(pagealloc_alloc(p, 7, NULL) == line - 3 * PAGE);
  CHECK(pagealloc_alloc(p, 1, NULL) == line + 4 * PAGE);
  pagealloc_validate(p);
  // Holes [line - 10 chunks, line + 4 pages) and [line + 5 pages, line + 10
  // chunks): a run ending exactly on the line, then one too big for the rest
  // of the first hole.
  pagealloc_free(p, line - 10 * CHUNK, 10 * PA_CHUNK_PAGES + 4);
  pagealloc_free(p, line + 5 * PAGE, 10 * PA_CHUNK_PAGES - 5);
  pagealloc_validate(p);
  CHECK(pagealloc_alloc(p, 10 * PA_CHUNK_PAGES, NULL) == line - 10 * CHUNK);
  CHECK(pagealloc_alloc(p, 10 * PA_CHUNK_PAGES - 5, NULL) == line + 5 * PAGE);
  CHECK(pagealloc_alloc(p, 4, NULL) == line);
  CHECK(p->free_pages == 0);
  pagealloc_validate(p);
  pagealloc_free(p, lo, total);
  CHECK(pagealloc_alloc(p, total, NULL) == lo);
  pagealloc_free(p, lo, total);
  pagealloc_destroy(p);
  printf("level-0..3 boundary crossing: %d checks\n", g_pass - before);
}

// test_huge covers a level-0 entry that is entirely free (the packed special
// case) and a run of gigabytes spanning two level-0 entries.
static void test_huge(void) {
  int before = g_pass;
  pagealloc_t *p = new_pa(NULL);
  size_t l0_pages = PA_MAX_PACKED; // 16 GiB
  uintptr_t lo = FAKE_BASE - 8 * ((uintptr_t)1 << 30);
  CHECK(pagealloc_grow(p, FAKE_BASE, l0_pages * PAGE) == 0);
  CHECK(p->summary[0][FAKE_BASE >> 34] == (pa_sum_t)1 << 63);
  CHECK(pagealloc_grow(p, lo, 8 * ((size_t)1 << 30)) == 0);
  pagealloc_validate(p);
  size_t total = p->total_pages;
  CHECK(total == l0_pages + l0_pages / 2);
  size_t scav = 0;
  CHECK(pagealloc_alloc(p, total, &scav) == lo);
  CHECK(scav == total);
  CHECK(p->summary[0][FAKE_BASE >> 34] == 0);
  pagealloc_free(p, lo, total);
  CHECK(pagealloc_alloc(p, l0_pages + 1, &scav) == lo && scav == 0);
  CHECK(pagealloc_alloc(p, l0_pages / 2, NULL) == 0);
  CHECK(pagealloc_alloc(p, l0_pages / 2 - 1, NULL) == lo + (l0_pages + 1) * PAGE);
  CHECK(p->free_pages == 0);
  pagealloc_validate(p);
  pagealloc_destroy(p);
  printf("gigabyte runs, all-free level-0 entry: %d checks\n", g_pass - before);
}

static void test_scavenge(void) {
  int before = g_pass;
  recorder_t rec = {0};
  pagealloc_t *p = new_pa(&rec);
  uintptr_t b = FAKE_BASE;
  CHECK(pagealloc_grow(p, b, 4 * CHUNK) == 0);
  CHECK(p->scav_pages == 4 * PA_CHUNK_PAGES);
  CHECK(pagealloc_scavenge(p, SIZE_MAX) == 0 && rec.n == 0); // all scavenged already
  size_t scav;
  uintptr_t x = pagealloc_alloc(p, 1000, &scav);
  CHECK(x == b && scav == 1000);
  pagealloc_free(p, x + 10 * PAGE, 600); // [10, 610) dirty, straddles chunk 0/1
  CHECK(p->scav_pages == 4 * PA_CHUNK_PAGES - 1000);
  CHECK(pagealloc_scavenge(p, PAGE - 1) == 0 && rec.n == 0); // less than a page
  CHECK(pagealloc_scavenge(p, 90 * PAGE + 5) == 90 * PAGE);  // the top 90 pages
  CHECK(rec.n == 1 && rec.runs[0].addr == x + 520 * PAGE && rec.runs[0].bytes == 90 * PAGE);
  rec.n = 0;
  CHECK(pagealloc_scavenge(p, SIZE_MAX) == 510 * PAGE);
  // One run [10, 520), merged across the chunk boundary at page 512.
  CHECK(rec.n == 1 && rec.runs[0].addr == x + 10 * PAGE && rec.runs[0].bytes == 510 * PAGE);
  CHECK(p->scav_pages == p->free_pages);
  CHECK(pagealloc_alloc(p, 20, &scav) == x + 10 * PAGE && scav == 20);
  pagealloc_validate(p);
  // Partially scavenged run: alloc reports only the scavenged part.
  pagealloc_free(p, x + 10 * PAGE, 20);
  pagealloc_free(p, x, 10);
  CHECK(pagealloc_alloc(p, 600, &scav) == x && scav == 570); // [0, 30) dirty
  CHECK(p->scav_pages == p->free_pages);
  pagealloc_validate(p);
  pagealloc_destroy(p);
  free(rec.runs);
  printf("scavenging: %d checks\n", g_pass - before);
}

static void test_is_free(void) {
  int before = g_pass;
  pagealloc_t *p = new_pa(NULL);
  uintptr_t b = FAKE_BASE + 8 * CHUNK;
  CHECK(!pagealloc_is_free(p, b));
  CHECK(pagealloc_grow(p, b, CHUNK) == 0);
  CHECK(pagealloc_grow(p, b + 3 * CHUNK, CHUNK) == 0);
  CHECK(pagealloc_is_free(p, b));
  CHECK(pagealloc_is_free(p, b + CHUNK - 1));
  CHECK(!pagealloc_is_free(p, b + CHUNK));     // gap, same L2 block
  CHECK(!pagealloc_is_free(p, b - 1));         // below the heap
  CHECK(!pagealloc_is_free(p, b + 4 * CHUNK)); // above
  CHECK(!pagealloc_is_free(p, (uintptr_t)1 << 47));
  CHECK(!pagealloc_is_free(p, 0));
  CHECK(pagealloc_alloc(p, 3, NULL) == b);
  CHECK(!pagealloc_is_free(p, b + 2 * PAGE + 100));
  CHECK(pagealloc_is_free(p, b + 3 * PAGE));
  CHECK(pagealloc_alloc(p, PA_CHUNK_PAGES, NULL) == b + 3 * CHUNK); // skips the gap
  pagealloc_validate(p);
  pagealloc_destroy(p);
  printf("is_free, gaps: %d checks\n", g_pass - before);
}

// test_sparse grows regions gigabytes apart, so the grown range holds L2
// blocks that were never mapped.
static void test_sparse(void) {
  int before = g_pass;
  recorder_t rec = {0};
  pagealloc_t *p = new_pa(&rec);
  uintptr_t gib = (uintptr_t)1 << 30, a = FAKE_BASE, b = FAKE_BASE + 8 * gib;
  uintptr_t c = FAKE_BASE - 20 * gib;
  CHECK(pagealloc_grow(p, 0, CHUNK) == -1);        // address 0 is the failure value
  CHECK(pagealloc_grow(p, a + PAGE, CHUNK) == -1); // misaligned
  CHECK(pagealloc_grow(p, a, CHUNK + PAGE) == -1); // misaligned size
  CHECK(pagealloc_grow(p, (uintptr_t)1 << 47, CHUNK) == -1);
  CHECK(pagealloc_grow(p, a, 0) == 0 && p->total_pages == 0);
  CHECK(pagealloc_grow(p, b, 2 * CHUNK) == 0);
  CHECK(pagealloc_grow(p, a, 2 * CHUNK) == 0);
  CHECK(pagealloc_grow(p, c, CHUNK) == 0);
  pagealloc_validate(p);
  CHECK(!pagealloc_is_free(p, a + 4 * gib)); // unmapped block inside [lo, hi)
  CHECK(!pagealloc_is_free(p, c + CHUNK));
  CHECK(pagealloc_alloc(p, PA_CHUNK_PAGES, NULL) == c);
  CHECK(pagealloc_alloc(p, 2 * PA_CHUNK_PAGES + 1, NULL) == 0);
  CHECK(pagealloc_alloc(p, 1000, NULL) == a);
  CHECK(pagealloc_alloc(p, 1000, NULL) == b);
  CHECK(pagealloc_alloc(p, 24, NULL) == a + 1000 * PAGE);
  CHECK(pagealloc_alloc(p, 25, NULL) == 0);
  CHECK(pagealloc_alloc(p, 24, NULL) == b + 1000 * PAGE);
  CHECK(p->free_pages == 0);
  pagealloc_free(p, a + 100 * PAGE, 10);
  pagealloc_free(p, c, PA_CHUNK_PAGES);
  pagealloc_free(p, b + 5 * PAGE, 3);
  pagealloc_validate(p);
  CHECK(pagealloc_scavenge(p, SIZE_MAX) == (10 + PA_CHUNK_PAGES + 3) * PAGE);
  CHECK(rec.n == 3);
  CHECK(rec.n == 3 && rec.runs[0].addr == b + 5 * PAGE && rec.runs[1].addr == a + 100 * PAGE &&
        rec.runs[2].addr == c && rec.runs[2].bytes == CHUNK);
  CHECK(pagealloc_alloc(p, PA_CHUNK_PAGES, NULL) == c);
  CHECK(pagealloc_alloc(p, 4, NULL) == a + 100 * PAGE);
  CHECK(pagealloc_alloc(p, 4, NULL) == a + 104 * PAGE);
  CHECK(pagealloc_alloc(p, 3, NULL) == b + 5 * PAGE);
  CHECK(pagealloc_alloc(p, 2, NULL) == a + 108 * PAGE);
  CHECK(p->free_pages == 0);
  pagealloc_validate(p);
  pagealloc_destroy(p);
  free(rec.runs);
  printf("sparse grows, unmapped blocks: %d checks\n", g_pass - before);
}

// expect_abort runs fn in a child and checks that it dies by SIGABRT with
// "gomem:" on stderr.
static void expect_abort(void (*fn)(pagealloc_t *), pagealloc_t *p) {
  int fds[2];
  CHECK(pipe(fds) == 0);
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    fn(p);
    _exit(0);
  }
  close(fds[1]);
  char buf[512];
  size_t n = 0;
  ssize_t r;
  while (n < sizeof buf - 1 && (r = read(fds[0], buf + n, sizeof buf - 1 - n)) > 0)
    n += (size_t)r;
  buf[n] = 0;
  close(fds[0]);
  int status = 0;
  CHECK(waitpid(pid, &status, 0) == pid);
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
  CHECK(strstr(buf, "gomem:") != NULL);
  CHECK(strstr(buf, "freeing") != NULL);
}

static void free_free_page(pagealloc_t *p) {
  pagealloc_free(p, FAKE_BASE + 100 * PAGE, 1);
}

static void free_partly_free(pagealloc_t *p) {
  pagealloc_free(p, FAKE_BASE, 600); // pages [0, 10) in use, the rest free
}

static void free_outside(pagealloc_t *p) {
  pagealloc_free(p, FAKE_BASE + 100 * CHUNK, 1);
}

static void test_fatal(void) {
  int before = g_pass;
  pagealloc_t *p = new_pa(NULL);
  CHECK(pagealloc_grow(p, FAKE_BASE, 2 * CHUNK) == 0);
  CHECK(pagealloc_alloc(p, 10, NULL) == FAKE_BASE);
  expect_abort(free_free_page, p);
  expect_abort(free_partly_free, p);
  expect_abort(free_outside, p);
  pagealloc_validate(p); // the parent is untouched
  pagealloc_destroy(p);
  printf("fatal double free: %d checks\n", g_pass - before);
}

int main(void) {
  test_pack();
  test_whole_chunks();
  test_chunk_patterns();
  test_region();
  test_boundaries();
  test_huge();
  test_scavenge();
  test_is_free();
  test_sparse();
  test_fatal();
  test_random();
  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
