// test_api: every exported function of gomem, through the public API only
// (gomem.h; sizeclasses.h for the class boundaries). Under GM_OVERRIDE the
// libc names are checked to reach gomem too.
//
//   gm_malloc          sizes 0, 1, every class boundary +-1, large sizes up to
//                      64 MiB: distinct, non-overlapping, writable, aligned,
//                      usable size >= request; many objects per class
//   gm_calloc          zeroed on reuse (small and large, dirty and released
//                      pages), overflow -> NULL + ENOMEM
//   gm_realloc         NULL pointer, growth and shrink across classes and
//                      large objects with contents kept, realloc(p, 0) frees
//   gm_reallocarray    overflow -> NULL + ENOMEM, original untouched
//   gm_posix_memalign, gm_aligned_alloc, gm_memalign: alignments 8 .. 1 MiB,
//                      small and large sizes, EINVAL for bad alignments
//   gm_owns, gm_usable_size, gm_release_memory, gm_stats, gm_print_stats_fd
//   huge requests (SIZE_MAX, SIZE_MAX/2, PTRDIFF_MAX+1) -> NULL + ENOMEM
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gomem.h"
#include "sizeclasses.h"
#include "test.h"

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

static int global_var;

// ---------------------------------------------------------------------------
// Helpers

// Byte i of a region tagged `tag`: differs between neighbouring tags and
// along the region, so overlaps and shifted copies are both caught.
static inline unsigned char pat(size_t tag, size_t i) {
  return (unsigned char)(tag * 131 + i * 7 + (i >> 8) + 1);
}

static void fill(void *p, size_t n, size_t tag) {
  unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    b[i] = pat(tag, i);
}

// check_fill returns the first bad offset, or SIZE_MAX if all n bytes match.
static size_t check_fill(const void *p, size_t n, size_t tag) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != pat(tag, i))
      return i;
  return SIZE_MAX;
}

// Sparse fill for big regions: one word per 64 KiB, plus the last byte.
#define SPARSE_STEP (64 * KiB)
static void fill_sparse(void *p, size_t n, size_t tag) {
  unsigned char *b = p;
  for (size_t i = 0; i + sizeof(uint64_t) <= n; i += SPARSE_STEP) {
    uint64_t v = (uint64_t)tag << 32 | (uint64_t)i;
    memcpy(b + i, &v, sizeof v);
  }
  b[n - 1] = pat(tag, n - 1);
}

static int check_sparse(const void *p, size_t n, size_t tag) {
  const unsigned char *b = p;
  for (size_t i = 0; i + sizeof(uint64_t) <= n; i += SPARSE_STEP) {
    uint64_t v;
    memcpy(&v, b + i, sizeof v);
    if (v != ((uint64_t)tag << 32 | (uint64_t)i))
      return 0;
  }
  return b[n - 1] == pat(tag, n - 1);
}

// fill_any / check_any: full pattern up to 1 MiB, sparse above.
static void fill_any(void *p, size_t n, size_t tag) {
  if (n == 0)
    return;
  if (n <= MiB)
    fill(p, n, tag);
  else
    fill_sparse(p, n, tag);
}

static int check_any(const void *p, size_t n, size_t tag) {
  if (n == 0)
    return 1;
  return n <= MiB ? check_fill(p, n, tag) == SIZE_MAX : check_sparse(p, n, tag);
}

static int all_zero(const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i])
      return 0;
  return 1;
}

static size_t rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long size = 0, rss = 0;
  if (f == NULL)
    return 0;
  if (fscanf(f, "%lu %lu", &size, &rss) != 2)
    rss = 0;
  fclose(f);
  return rss * (size_t)sysconf(_SC_PAGESIZE);
}

static int is_aligned(const void *p, size_t a) {
  return ((uintptr_t)p & (a - 1)) == 0;
}

// ---------------------------------------------------------------------------
// gm_malloc

typedef struct block {
  char *p;
  size_t size, usable, tag;
} block_t;

static int cmp_block(const void *a, const void *b) {
  uintptr_t x = (uintptr_t)((const block_t *)a)->p, y = (uintptr_t)((const block_t *)b)->p;
  return x < y ? -1 : x > y;
}

static size_t size_list(size_t *out) {
  size_t n = 0;
  out[n++] = 0;
  out[n++] = 1;
  for (int c = 1; c < GM_NUM_SIZE_CLASSES; c++) {
    size_t s = class_to_size[c];
    out[n++] = s - 1;
    out[n++] = s;
    out[n++] = s + 1;
  }
  static const size_t large[] = {
      48 * KiB, 64 * KiB - 1, 64 * KiB,    64 * KiB + 1, 100000,          256 * KiB + 3, MiB - 1,
      MiB,      MiB + 1,      4 * MiB + 7, 16 * MiB,     32 * MiB + 8193, 64 * MiB - 1,  64 * MiB,
  };
  for (size_t i = 0; i < sizeof large / sizeof large[0]; i++)
    out[n++] = large[i];
  return n;
}

static void test_malloc_sizes(void) {
  SKIP_IF_SECURE("malloc sizes: usable size is the class size");
  size_t sizes[512];
  size_t n = size_list(sizes);
  block_t *b = calloc(n, sizeof *b);
  int bad_null = 0, bad_align8 = 0, bad_align16 = 0, bad_usable = 0, bad_owns = 0;
  for (size_t i = 0; i < n; i++) {
    size_t sz = sizes[i];
    char *p = gm_malloc(sz);
    b[i].p = p;
    b[i].size = sz;
    b[i].tag = i + 1;
    if (p == NULL) {
      bad_null++;
      fprintf(stderr, "gm_malloc(%zu) returned NULL\n", sz);
      continue;
    }
    b[i].usable = gm_usable_size(p);
    if (!is_aligned(p, 8)) {
      bad_align8++;
      fprintf(stderr, "gm_malloc(%zu) = %p: not 8-byte aligned\n", sz, (void *)p);
    }
    if (sz >= 16 && sz % 16 == 0 && !is_aligned(p, 16)) {
      bad_align16++;
      fprintf(stderr, "gm_malloc(%zu) = %p: not 16-byte aligned\n", sz, (void *)p);
    }
    if (b[i].usable < sz) {
      bad_usable++;
      fprintf(stderr, "gm_usable_size(gm_malloc(%zu)) = %zu\n", sz, b[i].usable);
    }
    if (!gm_owns(p) || (sz > 0 && !gm_owns(p + sz - 1)))
      bad_owns++;
    // The whole usable size is writable.
    fill_any(p, b[i].usable, b[i].tag);
  }
  CHECKF(bad_null == 0, "%d NULL results", bad_null);
  CHECKF(bad_align8 == 0, "%d results not 8-byte aligned", bad_align8);
  CHECKF(bad_align16 == 0, "%d results not 16-byte aligned", bad_align16);
  CHECKF(bad_usable == 0, "%d usable sizes below the request", bad_usable);
  CHECKF(bad_owns == 0, "%d results not owned", bad_owns);

  // Every block still holds its own pattern (nobody overwrote it).
  int bad_content = 0;
  for (size_t i = 0; i < n; i++)
    if (b[i].p && !check_any(b[i].p, b[i].usable, b[i].tag)) {
      bad_content++;
      fprintf(stderr, "block %zu (size %zu at %p) was overwritten\n", i, b[i].size, (void *)b[i].p);
    }
  CHECKF(bad_content == 0, "%d blocks overwritten", bad_content);

  // Distinct and non-overlapping, usable ranges included.
  qsort(b, n, sizeof *b, cmp_block);
  int overlaps = 0;
  for (size_t i = 1; i < n; i++)
    if (b[i - 1].p &&
        (uintptr_t)b[i - 1].p + (b[i - 1].usable ? b[i - 1].usable : 1) > (uintptr_t)b[i].p) {
      overlaps++;
      fprintf(stderr, "overlap: %p+%zu and %p\n", (void *)b[i - 1].p, b[i - 1].usable,
              (void *)b[i].p);
    }
  CHECKF(overlaps == 0, "%d overlapping blocks", overlaps);

  // Small sizes are served by their class: usable == class size.
  int bad_class = 0;
  for (size_t i = 0; i < n; i++) {
    size_t sz = b[i].size;
    if (!b[i].p || sz > GM_MAX_SMALL_SIZE)
      continue;
    size_t want = 0;
    for (int c = 1; c < GM_NUM_SIZE_CLASSES; c++)
      if (class_to_size[c] >= (sz ? sz : 1)) {
        want = class_to_size[c];
        break;
      }
    if (b[i].usable != want) {
      bad_class++;
      fprintf(stderr, "size %zu: usable %zu, class size %zu\n", sz, b[i].usable, want);
    }
  }
  CHECKF(bad_class == 0, "%d sizes not served by their size class", bad_class);
  // Large sizes: whole pages, at most one page of rounding.
  int bad_large = 0;
  for (size_t i = 0; i < n; i++)
    if (b[i].p && b[i].size > GM_MAX_SMALL_SIZE &&
        (b[i].usable % GM_PAGE_SIZE != 0 || b[i].usable - b[i].size >= GM_PAGE_SIZE))
      bad_large++;
  CHECKF(bad_large == 0, "%d large objects with a bad usable size", bad_large);

  for (size_t i = 0; i < n; i++)
    gm_free(b[i].p);
  free(b);

  // malloc(0) returns distinct, freeable pointers.
  void *z1 = gm_malloc(0), *z2 = gm_malloc(0);
  CHECK(z1 != NULL && z2 != NULL && z1 != z2);
  gm_free(z1);
  gm_free(z2);
  gm_free(NULL); // no-op
  CHECK(gm_usable_size(NULL) == 0);

  // A full 64 MiB block, every byte written and read back.
  size_t big = 64 * MiB;
  unsigned char *q = gm_malloc(big);
  CHECK(q != NULL);
  if (q) {
    memset(q, 0x5a, big);
    int ok = 1;
    for (size_t i = 0; i < big; i += 4093)
      ok &= q[i] == 0x5a;
    CHECK(ok && q[big - 1] == 0x5a);
    gm_free(q);
  }
}

// Many objects of every class at once: several spans and windows per class.
static void test_malloc_many(void) {
  enum { PER_CLASS = 150 };
  int bad = 0, bad_content = 0;
  static char *objs[GM_NUM_SIZE_CLASSES][PER_CLASS];
  for (int c = 1; c < GM_NUM_SIZE_CLASSES; c++) {
    size_t sz = class_to_size[c];
    size_t count = sz > 8 * KiB ? PER_CLASS / 5 : PER_CLASS;
    for (size_t i = 0; i < count; i++) {
      objs[c][i] = gm_malloc(sz);
      if (!objs[c][i] || gm_usable_size(objs[c][i]) != sz) {
        bad++;
        continue;
      }
      // Tag the first and last words of each object.
      size_t tag = (size_t)c * 1000 + i;
      memcpy(objs[c][i], &tag, sizeof tag);
      memcpy(objs[c][i] + sz - sizeof tag, &tag, sizeof tag);
    }
  }
  CHECKF(bad == 0, "%d objects NULL or with a wrong usable size", bad);
  for (int c = 1; c < GM_NUM_SIZE_CLASSES; c++) {
    size_t sz = class_to_size[c];
    size_t count = sz > 8 * KiB ? PER_CLASS / 5 : PER_CLASS;
    for (size_t i = 0; i < count; i++) {
      if (!objs[c][i])
        continue;
      size_t tag = (size_t)c * 1000 + i, a, z;
      memcpy(&a, objs[c][i], sizeof a);
      memcpy(&z, objs[c][i] + sz - sizeof z, sizeof z);
      if (a != tag || z != tag)
        bad_content++;
    }
    // Free in a scattered order: every other one, then the rest.
    for (size_t i = 0; i < count; i += 2)
      gm_free(objs[c][i]);
    for (size_t i = 1; i < count; i += 2)
      gm_free(objs[c][i]);
  }
  CHECKF(bad_content == 0, "%d objects overwritten", bad_content);
}

// ---------------------------------------------------------------------------
// gm_calloc

static void test_calloc(void) {
  // Small sizes: dirty the slots, free them, calloc the same class again
  // (the slots come back from the window) and check every byte is zero.
  static const size_t sizes[] = {1, 8, 24, 64, 100, 512, 1000, 1024, 3000, 8192, 20000, 32768};
  int not_zero = 0, reused = 0;
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    enum { N = 100 };
    char *p[N], *q[N];
    size_t sz = sizes[k];
    for (int i = 0; i < N; i++) {
      p[i] = gm_malloc(sz);
      memset(p[i], 0xa5, gm_usable_size(p[i]));
    }
    for (int i = N - 1; i >= 0; i--)
      gm_free(p[i]);
    for (int i = 0; i < N; i++) {
      q[i] = gm_calloc(1, sz);
      if (!q[i] || !all_zero(q[i], sz))
        not_zero++;
      for (int j = 0; j < N; j++)
        if (q[i] == p[j]) {
          reused++;
          break;
        }
    }
    for (int i = 0; i < N; i++)
      gm_free(q[i]);
  }
  CHECKF(not_zero == 0, "%d small calloc results not zeroed", not_zero);
  CHECKF(reused > 0, "calloc never reused a freed slot: the zeroing check proves nothing");

  // count * size forms: calloc(n, s) == n*s bytes.
  unsigned *arr = gm_calloc(1000, sizeof(unsigned));
  CHECK(arr != NULL && gm_usable_size(arr) >= 1000 * sizeof(unsigned) &&
        all_zero(arr, 1000 * sizeof(unsigned)));
  gm_free(arr);
  void *z = gm_calloc(0, 16);
  CHECK(z != NULL);
  gm_free(z);

  // Large: dirty pages reused.
  for (int round = 0; round < 3; round++) {
    size_t sz = (size_t)(1 + round * 3) * MiB + 12345;
    char *p = gm_malloc(sz);
    memset(p, 0xcc, gm_usable_size(p));
    gm_free(p);
    char *q = gm_calloc(sz / 5, 5);
    CHECKF(q != NULL && all_zero(q, sz / 5 * 5), "large calloc of %zu not zeroed", sz);
    gm_free(q);
  }
  // Large: pages released to the OS in between (zero without memset).
  char *p = gm_malloc(3 * MiB);
  memset(p, 0xcc, 3 * MiB);
  gm_free(p);
  gm_release_memory();
  char *q = gm_calloc(3, MiB);
  CHECK(q != NULL && all_zero(q, 3 * MiB));
  memset(q, 0xdd, 3 * MiB); // dirty again for the mixed case below
  gm_free(q);
  // Mixed: part released, part dirty. Allocate a bigger block over both.
  char *r = gm_calloc(1, 6 * MiB);
  CHECK(r != NULL && all_zero(r, 6 * MiB));
  gm_free(r);

  // Overflow of count * size.
  static const size_t ov[][2] = {
      {SIZE_MAX, 2}, {SIZE_MAX / 2 + 1, 2}, {(size_t)1 << 33, (size_t)1 << 33}, {3, SIZE_MAX / 2}};
  for (size_t i = 0; i < sizeof ov / sizeof ov[0]; i++) {
    errno = 0;
    void *o = gm_calloc(ov[i][0], ov[i][1]);
    CHECKF(o == NULL && errno == ENOMEM, "calloc(%zu, %zu) = %p errno %d", ov[i][0], ov[i][1], o,
           errno);
  }
  // Product fits but is huge.
  errno = 0;
  CHECK(gm_calloc(SIZE_MAX / 4, 2) == NULL && errno == ENOMEM);
}

// ---------------------------------------------------------------------------
// gm_realloc / gm_reallocarray

static void test_realloc(void) {
  SKIP_IF_SECURE("realloc: frees counted at once");
  // realloc(NULL, n) is malloc(n).
  char *p = gm_realloc(NULL, 100);
  CHECK(p != NULL && gm_usable_size(p) >= 100 && gm_owns(p));
  gm_free(p);
  p = gm_realloc(NULL, 0);
  CHECK(p != NULL);
  gm_free(p);

  // Growth through classes and into large objects; every step keeps the old
  // contents and the new tail is writable.
  static const size_t steps[] = {1,     7,     8,     9,      16,   17,      100,     256,
                                 257,   1024,  1025,  4000,   8192, 8193,    20000,   32767,
                                 32768, 32769, 65536, 100001, MiB,  MiB + 1, 5 * MiB, 9 * MiB + 3};
  size_t nsteps = sizeof steps / sizeof steps[0];
  p = gm_malloc(steps[0]);
  fill(p, steps[0], 77);
  int bad_keep = 0, bad_usable = 0;
  for (size_t i = 1; i < nsteps; i++) {
    char *q = gm_realloc(p, steps[i]);
    if (q == NULL) {
      CHECKF(0, "realloc to %zu failed", steps[i]);
      break;
    }
    size_t bad = check_fill(q, steps[i - 1], 77);
    if (bad != SIZE_MAX) {
      bad_keep++;
      fprintf(stderr, "realloc %zu -> %zu lost byte %zu\n", steps[i - 1], steps[i], bad);
    }
    if (gm_usable_size(q) < steps[i])
      bad_usable++;
    for (size_t j = steps[i - 1]; j < steps[i]; j++)
      q[j] = (char)pat(77, j);
    p = q;
  }
  CHECKF(bad_keep == 0, "%d growth steps lost contents", bad_keep);
  // Shrink back down, across the same boundaries.
  for (size_t i = nsteps - 1; i-- > 0;) {
    char *q = gm_realloc(p, steps[i]);
    if (q == NULL) {
      CHECKF(0, "realloc down to %zu failed", steps[i]);
      break;
    }
    size_t bad = check_fill(q, steps[i], 77);
    if (bad != SIZE_MAX) {
      bad_keep++;
      fprintf(stderr, "realloc %zu -> %zu (shrink) lost byte %zu\n", steps[i + 1], steps[i], bad);
    }
    if (gm_usable_size(q) < steps[i])
      bad_usable++;
    p = q;
  }
  CHECKF(bad_keep == 0, "%d shrink steps lost contents", bad_keep);
  CHECKF(bad_usable == 0, "%d realloc results with usable size below the request", bad_usable);
  gm_free(p);

  // A large object shrunk to a small size leaves the large span (so the
  // memory is not wasted) and keeps the prefix.
  p = gm_malloc(4 * MiB);
  fill(p, 4 * MiB, 5);
  char *q = gm_realloc(p, 100);
  CHECK(q != NULL && check_fill(q, 100, 5) == SIZE_MAX && gm_usable_size(q) < 4 * MiB);
  gm_free(q);

  // Huge realloc fails and leaves the block alone.
  p = gm_malloc(300);
  fill(p, 300, 9);
  errno = 0;
  q = gm_realloc(p, SIZE_MAX - 100);
  CHECK(q == NULL && errno == ENOMEM);
  CHECK(check_fill(p, 300, 9) == SIZE_MAX && gm_usable_size(p) >= 300);
  gm_free(p);

  // realloc(p, 0) frees p and returns NULL (glibc): the class's free count
  // moves by one, and a large object's pages go back (no longer owned).
  gm_stats_t a, b;
  p = gm_malloc(5000);
  gm_stats(&a);
  q = gm_realloc(p, 0);
  gm_stats(&b);
  int c5000 = 0;
  for (int c = 1; c < GM_NUM_SIZE_CLASSES; c++)
    if (class_to_size[c] >= 5000) {
      c5000 = c;
      break;
    }
  CHECK(q == NULL);
  CHECKF(b.frees == a.frees + 1, "frees %llu -> %llu", (unsigned long long)a.frees,
         (unsigned long long)b.frees);
  CHECK(b.by_size[c5000].frees - a.by_size[c5000].frees <= 1);
  p = gm_malloc(2 * MiB);
  gm_stats(&a);
  q = gm_realloc(p, 0);
  gm_stats(&b);
  CHECK(q == NULL && !gm_owns(p));
  CHECK(b.by_size[0].frees == a.by_size[0].frees + 1);

  // reallocarray: overflow fails with ENOMEM and leaves the block alone.
  p = gm_malloc(200);
  fill(p, 200, 11);
  size_t us = gm_usable_size(p);
  errno = 0;
  q = gm_reallocarray(p, SIZE_MAX / 2, 3);
  CHECK(q == NULL && errno == ENOMEM);
  errno = 0;
  q = gm_reallocarray(p, (size_t)1 << 40, (size_t)1 << 40);
  CHECK(q == NULL && errno == ENOMEM);
  CHECK(check_fill(p, 200, 11) == SIZE_MAX && gm_usable_size(p) == us && gm_owns(p));
  // And grows like realloc otherwise.
  q = gm_reallocarray(p, 100, 50);
  CHECK(q != NULL && gm_usable_size(q) >= 5000 && check_fill(q, 200, 11) == SIZE_MAX);
  char *r = gm_reallocarray(q, 1000, 100);
  CHECK(r != NULL && gm_usable_size(r) >= 100000 && check_fill(r, 200, 11) == SIZE_MAX);
  gm_free(r);
  r = gm_reallocarray(NULL, 10, 10);
  CHECK(r != NULL && gm_usable_size(r) >= 100);
  gm_free(r);
}

// ---------------------------------------------------------------------------
// Aligned allocation

// test_realloc_in_place: a large object whose following pages are free
// grows without moving; one that must move gets headroom, so the next small
// growth step stays in place. Contents survive both.
static void test_realloc_in_place(void) {
  SKIP_IF_SECURE("realloc in place");
  // 200 MiB fits in no hole of this test's heap: it gets fresh arenas (grown
  // in 64 MiB steps), so the pages after it are free. Only a few bytes are
  // touched.
  size_t n = (size_t)200 << 20;
  char *p = gm_malloc(n);
  CHECK(p != NULL);
  p[0] = 1, p[n - 1] = 2;
  char *q = gm_realloc(p, n + (4u << 20));
  CHECKF(q == p, "large realloc moved (%p -> %p) though the next pages were free", (void *)p,
         (void *)q);
  CHECK(q[0] == 1 && q[n - 1] == 2);
  CHECK(gm_usable_size(q) >= n + (4u << 20));
  // Block the tail: the next growth must move, and gets headroom so that a
  // further step of up to 25% does not move again.
  size_t cur = gm_usable_size(q);
  char *blocker = NULL;
  while (!gm_owns(q + cur)) { // take the pages after q
    blocker = gm_malloc(64 * 1024);
    if (blocker == NULL || (char *)blocker > q + cur)
      break;
  }
  CHECK(gm_owns(q + cur));
  char *r = gm_realloc(q, cur + 4096);
  CHECK(r != NULL && r != q && r[0] == 1 && r[n - 1] == 2);
  CHECKF(gm_usable_size(r) >= cur + cur / 4, "moved realloc without headroom: %zu of %zu",
         gm_usable_size(r), cur);
  char *t = gm_realloc(r, cur + cur / 5);
  CHECK(t == r);
  gm_free(t);
}

static void test_aligned(void) {
  static const size_t sizes[] = {1, 8, 24, 100, 1000, 4096, 5000, 32768, 40000, MiB + 1};
  int bad = 0, tag = 0;
  for (size_t align = 8; align <= MiB; align *= 2) {
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
      size_t sz = sizes[k];
      // posix_memalign
      void *p = (void *)&global_var;
      int rc = gm_posix_memalign(&p, align, sz);
      if (rc != 0 || p == NULL || !is_aligned(p, align) || gm_usable_size(p) < sz || !gm_owns(p)) {
        bad++;
        fprintf(stderr, "posix_memalign(%zu, %zu): rc %d, %p\n", align, sz, rc, p);
      } else {
        fill(p, sz, (size_t)++tag);
        if (check_fill(p, sz, (size_t)tag) != SIZE_MAX)
          bad++;
      }
      // aligned_alloc, with the size rounded to the alignment as C11 asks.
      size_t asz = (sz + align - 1) & ~(align - 1);
      void *q = gm_aligned_alloc(align, asz);
      if (q == NULL || !is_aligned(q, align) || gm_usable_size(q) < asz) {
        bad++;
        fprintf(stderr, "aligned_alloc(%zu, %zu) = %p\n", align, asz, q);
      } else {
        fill(q, sz, (size_t)++tag);
      }
      // memalign
      void *r = gm_memalign(align, sz);
      if (r == NULL || !is_aligned(r, align) || gm_usable_size(r) < sz) {
        bad++;
        fprintf(stderr, "memalign(%zu, %zu) = %p\n", align, sz, r);
      } else {
        fill(r, sz, (size_t)++tag);
      }
      // The three are distinct and kept their contents.
      if (rc == 0 && q && r) {
        if (p == q || q == r || p == r)
          bad++;
        if (check_fill(q, sz, (size_t)tag - 1) != SIZE_MAX ||
            check_fill(r, sz, (size_t)tag) != SIZE_MAX)
          bad++;
      }
      if (rc == 0)
        gm_free(p);
      gm_free(q);
      gm_free(r);
    }
  }
  CHECKF(bad == 0, "%d aligned allocations failed or misaligned", bad);

  // Several live 1 MiB-aligned objects at once.
  void *al[6];
  int ok = 1;
  for (int i = 0; i < 6; i++) {
    al[i] = gm_memalign(MiB, 100 + (size_t)i * 50000);
    ok &= al[i] != NULL && is_aligned(al[i], MiB);
  }
  for (int i = 0; i < 6; i++)
    gm_free(al[i]);
  CHECK(ok);

  // Bad alignments: EINVAL, *out untouched.
  static const size_t badal[] = {0, 1, 2, 4, 3, 12, 24, 48, 4097, 3 * 4096};
  for (size_t i = 0; i < sizeof badal / sizeof badal[0]; i++) {
    void *p = (void *)&global_var;
    int rc = gm_posix_memalign(&p, badal[i], 64);
    CHECKF(rc == EINVAL && p == (void *)&global_var, "posix_memalign(%zu): rc %d", badal[i], rc);
  }
  static const size_t badal2[] = {0, 3, 12, 24, 4097};
  for (size_t i = 0; i < sizeof badal2 / sizeof badal2[0]; i++) {
    errno = 0;
    void *p = gm_aligned_alloc(badal2[i], 64);
    CHECKF(p == NULL && errno == EINVAL, "aligned_alloc(%zu) = %p errno %d", badal2[i], p, errno);
  }
  // posix_memalign: huge size -> ENOMEM, *out untouched.
  void *hp = (void *)&global_var;
  CHECK(gm_posix_memalign(&hp, 64, SIZE_MAX - 4096) == ENOMEM && hp == (void *)&global_var);
  // memalign: small alignments give plain objects; a non-power-of-two
  // alignment is rounded up to the next power of two (glibc).
  void *m1 = gm_memalign(1, 10), *m4 = gm_memalign(4, 10), *m24 = gm_memalign(24, 100);
  CHECK(m1 && m4 && is_aligned(m1, 8) && is_aligned(m4, 8));
  CHECK(m24 && is_aligned(m24, 32) && gm_usable_size(m24) >= 100);
  gm_free(m1);
  gm_free(m4);
  gm_free(m24);
  errno = 0;
  CHECK(gm_memalign(64, SIZE_MAX - 4096) == NULL && errno == ENOMEM);
}

// ---------------------------------------------------------------------------
// Huge requests

static void test_huge(void) {
  const size_t huge[] = {SIZE_MAX, SIZE_MAX / 2, (size_t)PTRDIFF_MAX + 1, (size_t)PTRDIFF_MAX,
                         SIZE_MAX - GM_PAGE_SIZE};
  for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
    errno = 0;
    void *p = gm_malloc(huge[i]);
    CHECKF(p == NULL && errno == ENOMEM, "malloc(%zu) = %p errno %d", huge[i], p, errno);
    errno = 0;
    p = gm_calloc(1, huge[i]);
    CHECKF(p == NULL && errno == ENOMEM, "calloc(1, %zu) = %p errno %d", huge[i], p, errno);
    errno = 0;
    p = gm_realloc(NULL, huge[i]);
    CHECKF(p == NULL && errno == ENOMEM, "realloc(NULL, %zu) = %p errno %d", huge[i], p, errno);
    errno = 0;
    p = gm_aligned_alloc(4096, huge[i]);
    CHECKF(p == NULL && errno == ENOMEM, "aligned_alloc(4096, %zu) = %p errno %d", huge[i], p,
           errno);
  }
  // More than the machine could back (RAM + swap, as the kernel's default
  // overcommit heuristic judges): refused at once, no metadata mapped for it.
  FILE *f = fopen("/proc/sys/vm/overcommit_memory", "r");
  int mode = f != NULL ? fgetc(f) : '0';
  if (f != NULL)
    fclose(f);
  if (mode != '1') {
    size_t tib = (size_t)1 << 40;
    gm_stats_t before, after;
    gm_stats(&before);
    errno = 0;
    void *q = gm_malloc(tib);
    gm_stats(&after);
    CHECKF(q == NULL && errno == ENOMEM, "malloc(1 TiB) = %p errno %d", q, errno);
    CHECKF(after.heap_sys - before.heap_sys < ((size_t)1 << 30), "malloc(1 TiB) reserved %llu MiB",
           (unsigned long long)(after.heap_sys - before.heap_sys) >> 20);
  } else {
    test_skip("malloc(1 TiB) fails", "vm.overcommit_memory = 1: the kernel would back it");
  }
  // The heap still works afterwards.
  void *p = gm_malloc(MiB);
  CHECK(p != NULL);
  gm_free(p);
}

// ---------------------------------------------------------------------------
// gm_owns, gm_usable_size

static void test_owns(void) {
  SKIP_IF_SECURE("gm_owns: a freed object's pages are unowned at once");
  int local = 0;
  CHECK(!gm_owns(&local));
  CHECK(!gm_owns(&global_var));
  CHECK(!gm_owns(NULL));
  void *m = mmap(NULL, MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(m != MAP_FAILED && !gm_owns(m) && !gm_owns((char *)m + 4096));
  munmap(m, MiB);

  char *s = gm_malloc(100);
  CHECK(gm_owns(s) && gm_owns(s + 50) && gm_owns(s + 99));
  char *l = gm_malloc(3 * MiB);
  CHECK(gm_owns(l) && gm_owns(l + 4096) && gm_owns(l + 3 * MiB - 1));
  gm_free(l);
  // A freed large object's pages are free: no longer owned.
  CHECK(!gm_owns(l) && !gm_owns(l + MiB));
  gm_free(s);

  // usable size of each class and of large objects.
  for (int c = 1; c < GM_NUM_SIZE_CLASSES; c++) {
    void *p = gm_malloc(class_to_size[c]);
    CHECKF(gm_usable_size(p) == class_to_size[c], "class %d: usable %zu", c, gm_usable_size(p));
    gm_free(p);
  }
  void *p = gm_malloc(GM_MAX_SMALL_SIZE + 1);
  CHECK(gm_usable_size(p) == GM_MAX_SMALL_SIZE + GM_PAGE_SIZE);
  gm_free(p);
}

// ---------------------------------------------------------------------------
// gm_stats

typedef struct class_probe {
  int cls;
  size_t size, n;
  int ok_mid, ok_after;
  long long live_before, live_mid, live_after;
  uint64_t mallocs_delta, frees_delta, total_frees_delta, threads_before, threads_mid;
  uint64_t heap_alloc_before, heap_alloc_mid;
} class_probe_t;

static long long live_of(const gm_stats_t *st, int c) {
  return (long long)st->by_size[c].mallocs - (long long)st->by_size[c].frees;
}

static void *stats_thread(void *arg) {
  class_probe_t *pr = arg;
  gm_stats_t a, b, c;
  gm_stats(&a);
  char **v = malloc(pr->n * sizeof *v); // the test's own bookkeeping: libc or gomem
  if (v == NULL)
    return NULL;
  for (size_t i = 0; i < pr->n; i++) {
    v[i] = gm_malloc(pr->size);
    v[i][0] = 1;
  }
  gm_stats(&b);
  for (size_t i = 0; i < pr->n; i++)
    gm_free(v[i]);
  gm_stats(&c);
  free(v);
  pr->live_before = live_of(&a, pr->cls);
  pr->live_mid = live_of(&b, pr->cls);
  pr->live_after = live_of(&c, pr->cls);
  pr->mallocs_delta = b.by_size[pr->cls].mallocs - a.by_size[pr->cls].mallocs;
  pr->frees_delta = c.by_size[pr->cls].frees - a.by_size[pr->cls].frees;
  pr->total_frees_delta = c.frees - a.frees;
  pr->threads_before = a.num_threads;
  pr->threads_mid = b.num_threads;
  pr->heap_alloc_before = a.heap_alloc;
  pr->heap_alloc_mid = b.heap_alloc;
  return NULL;
}

typedef struct list_probe {
  size_t n, k;
  int release; // gm_release_memory before the last allocations (lists drained)
  size_t reused;
  uint64_t frees_delta, mallocs_a;
  long long live_a, live_b;
} list_probe_t;

static int class_for(size_t size);

static void *list_thread(void *arg) {
  list_probe_t *lp = arg;
  int ca = class_for(64), cb = class_for(2000);
  gm_stats_t a, c;
  gm_stats(&a);
  char **va = malloc(lp->n * sizeof *va), **vb = malloc(lp->n * sizeof *vb);
  void *fresh[64];
  if (va == NULL || vb == NULL || lp->k > 64)
    return NULL;
  for (size_t i = 0; i < lp->n; i++) {
    va[i] = gm_malloc(64);
    vb[i] = gm_malloc(2000);
    va[i][0] = vb[i][0] = 1;
  }
  for (size_t i = 0; i < lp->n; i++) {
    gm_free(va[i]);
    gm_free(vb[i]);
  }
  if (lp->release)
    gm_release_memory();
  for (size_t j = 0; j < lp->k; j++) {
    fresh[j] = gm_malloc(64);
    lp->reused += fresh[j] == va[63 - j]; // the list took the first 64 frees
  }
  for (size_t j = 0; j < lp->k; j++)
    gm_free(fresh[j]);
  gm_stats(&c);
  lp->frees_delta = c.frees - a.frees;
  lp->mallocs_a = c.by_size[ca].mallocs - a.by_size[ca].mallocs;
  lp->live_a = live_of(&c, ca) - live_of(&a, ca);
  lp->live_b = live_of(&c, cb) - live_of(&a, cb);
  free(va);
  free(vb);
  return NULL;
}

// pair_thread: malloc+free of one size in a loop, on a fresh thread (the
// first free goes on the thread's list, the others into the bitmap): each
// call is counted once.
typedef struct pair_probe {
  uint64_t frees_delta, mallocs_delta;
  long long live_delta;
} pair_probe_t;

static void *pair_thread(void *arg) {
  pair_probe_t *pp = arg;
  int c64 = class_for(64);
  gm_stats_t a, c;
  gm_stats(&a);
  char *first = gm_malloc(64);
  first[0] = 1;
  gm_free(first);
  for (int i = 0; i < 1000; i++) {
    char *p = gm_malloc(64);
    p[63] = (char)i;
    gm_free(p);
  }
  gm_stats(&c);
  pp->frees_delta = c.by_size[c64].frees - a.by_size[c64].frees;
  pp->mallocs_delta = c.by_size[c64].mallocs - a.by_size[c64].mallocs;
  pp->live_delta = live_of(&c, c64) - live_of(&a, c64);
  return NULL;
}

static int class_for(size_t size) {
  for (int c = 1; c < GM_NUM_SIZE_CLASSES; c++)
    if (class_to_size[c] >= size)
      return c;
  return 0;
}

// A program built against an older gomem.h calls the function gm_stats,
// which fills the fields up to co_shrinks and nothing past them; one built
// against a newer header (a larger struct) gets its unknown fields zeroed.
static void test_stats_abi(void) {
  gm_stats_t st;
  memset(&st, 0xA5, sizeof st);
  (gm_stats)(&st);
  const unsigned char *tail = (const unsigned char *)&st.mark_total_ns;
  bool untouched = true;
  for (size_t i = 0; i < sizeof st - offsetof(gm_stats_t, mark_total_ns); i++)
    untouched &= tail[i] == 0xA5;
  bool ok = untouched && st.heap_sys > 0 && st.by_size[1].size == 8;
  CHECK(ok);
  struct {
    gm_stats_t st;
    uint64_t later[4];
  } big;
  memset(&big, 0xA5, sizeof big);
  gm_stats_sized(&big.st, sizeof big);
  bool zeroed = big.st.heap_sys > 0 && big.later[0] == 0 && big.later[3] == 0;
  CHECK(zeroed);
  report("gm_stats: the function of older headers fills only their fields", ok && zeroed);
}

static void test_stats(void) {
  SKIP_IF_SECURE("statistics per size class, frees counted at once");
  test_stats_abi();
  gm_stats_t st;
  gm_stats(&st);
  CHECK(st.by_size[0].size == 0 && st.by_size[1].size == 8 && st.by_size[67].size == 32768);
  int sizes_ok = 1;
  for (int c = 1; c < GM_NUM_CLASSES; c++)
    sizes_ok &= st.by_size[c].size == class_to_size[c];
  CHECK(sizes_ok);
  CHECK(st.heap_sys > 0 && st.heap_sys % (64 * MiB) == 0);
  CHECK(st.heap_inuse + st.heap_idle <= st.heap_sys);
  CHECK(st.heap_released <= st.heap_idle);
  CHECK(st.meta_sys > 0);
  CHECK(st.mallocs >= st.frees && st.num_threads >= 1);
  // Totals and classes agree on live objects (totals may also count objects
  // freed into a window and handed out again, once on each side).
  uint64_t sum_m = 0, sum_f = 0;
  for (int c = 0; c < GM_NUM_CLASSES; c++) {
    sum_m += st.by_size[c].mallocs;
    sum_f += st.by_size[c].frees;
  }
  CHECKF(sum_m <= st.mallocs && sum_f <= st.frees && st.mallocs - sum_m == st.frees - sum_f,
         "classes %llu/%llu, totals %llu/%llu", (unsigned long long)sum_m,
         (unsigned long long)sum_f, (unsigned long long)st.mallocs, (unsigned long long)st.frees);
  CHECK(st.mallocs - st.frees == st.heap_objects);

  // A fresh thread allocates and frees N objects of one class; the class's
  // mallocs - frees goes up by N (plus at most 64 reserved window slots),
  // comes back within 64 of its start after the frees, and exactly to it
  // when the thread exits (its cache un-reserves the window).
  static const size_t probe_sizes[] = {64, 1152, 16384};
  for (size_t k = 0; k < sizeof probe_sizes / sizeof probe_sizes[0]; k++) {
    class_probe_t pr = {.size = probe_sizes[k], .n = 1000, .cls = class_for(probe_sizes[k])};
    gm_stats_t before, after;
    gm_stats(&before);
    pthread_t t;
    pthread_create(&t, NULL, stats_thread, &pr);
    pthread_join(t, NULL);
    gm_stats(&after);
    long long n = (long long)pr.n;
    CHECKF(pr.live_mid - pr.live_before >= n && pr.live_mid - pr.live_before <= n + 64,
           "size %zu: live %lld -> %lld after %lld mallocs", pr.size, pr.live_before, pr.live_mid,
           n);
    CHECKF(pr.mallocs_delta >= pr.n && pr.mallocs_delta <= pr.n + 64, "size %zu: mallocs +%llu",
           pr.size, (unsigned long long)pr.mallocs_delta);
    CHECKF(pr.frees_delta <= pr.n, "size %zu: class frees +%llu after %zu frees", pr.size,
           (unsigned long long)pr.frees_delta, pr.n);
    CHECKF(pr.total_frees_delta == pr.n, "size %zu: frees +%llu, want %zu", pr.size,
           (unsigned long long)pr.total_frees_delta, pr.n);
    CHECKF(pr.live_after - pr.live_before >= 0 && pr.live_after - pr.live_before <= 64,
           "size %zu: live %lld -> %lld after freeing everything", pr.size, pr.live_before,
           pr.live_after);
    CHECKF(live_of(&after, pr.cls) == live_of(&before, pr.cls),
           "size %zu: live %lld before the thread, %lld after it exited", pr.size,
           live_of(&before, pr.cls), live_of(&after, pr.cls));
    CHECKF(pr.heap_alloc_mid >= pr.heap_alloc_before + pr.n * class_to_size[pr.cls],
           "size %zu: heap_alloc %llu -> %llu", pr.size, (unsigned long long)pr.heap_alloc_before,
           (unsigned long long)pr.heap_alloc_mid);
    CHECKF(pr.threads_mid == before.num_threads + 1 && after.num_threads == before.num_threads,
           "thread caches: %llu before, %llu with the thread, %llu after",
           (unsigned long long)before.num_threads, (unsigned long long)pr.threads_mid,
           (unsigned long long)after.num_threads);
    CHECK(after.mallocs >= before.mallocs + pr.n && after.frees >= before.frees + pr.n);
  }

  // Objects freed onto a thread's list and allocated again from it: a fresh
  // thread allocates N objects of two classes alternately and frees them
  // alternately (each free changes span: frees through the arena map, which
  // fill the lists), then allocates and frees K of one class (popped from its
  // list). Every malloc and free is counted once; live counts come back.
  for (int round = 0; round < 2; round++) {
    list_probe_t lp = {.n = 1000, .k = 40, .release = round == 1};
    gm_stats_t before, after;
    gm_stats(&before);
    pthread_t t;
    pthread_create(&t, NULL, list_thread, &lp);
    pthread_join(t, NULL);
    gm_stats(&after);
    int ca = class_for(64), cb = class_for(2000);
    CHECKF(lp.release || lp.reused == lp.k,
           "only %zu of %zu allocations reused the last object listed", lp.reused, lp.k);
    CHECKF(lp.frees_delta == 2 * lp.n + lp.k, "frees +%llu, want %zu",
           (unsigned long long)lp.frees_delta, 2 * lp.n + lp.k);
    CHECKF(lp.mallocs_a >= lp.n + lp.k && lp.mallocs_a <= lp.n + lp.k + 64,
           "class of 64 B: mallocs +%llu for %zu", (unsigned long long)lp.mallocs_a, lp.n + lp.k);
    CHECKF(lp.live_a >= 0 && lp.live_a <= 64 && lp.live_b >= 0 && lp.live_b <= 64,
           "live after freeing everything: %lld and %lld", lp.live_a, lp.live_b);
    CHECKF(live_of(&after, ca) == live_of(&before, ca) &&
               live_of(&after, cb) == live_of(&before, cb),
           "live %lld/%lld before the thread, %lld/%lld after it exited", live_of(&before, ca),
           live_of(&before, cb), live_of(&after, ca), live_of(&after, cb));
  }

  pair_probe_t pp = {0};
  pthread_t pt;
  pthread_create(&pt, NULL, pair_thread, &pp);
  pthread_join(pt, NULL);
  CHECKF(pp.frees_delta == 1001 && pp.mallocs_delta >= 1001 && pp.mallocs_delta <= 1001 + 64 &&
             pp.live_delta >= 0 && pp.live_delta <= 64,
         "1001 pairs: mallocs +%llu, frees +%llu, live %+lld", (unsigned long long)pp.mallocs_delta,
         (unsigned long long)pp.frees_delta, pp.live_delta);

  // Large objects: heap_alloc, heap_inuse and class 0 counts.
  gm_stats_t a, b, c;
  size_t big = 5 * MiB + 1;
  gm_stats(&a);
  void *p = gm_malloc(big);
  gm_stats(&b);
  gm_free(p);
  gm_stats(&c);
  CHECK(p != NULL);
  CHECKF(b.heap_alloc >= a.heap_alloc + big, "heap_alloc %llu -> %llu",
         (unsigned long long)a.heap_alloc, (unsigned long long)b.heap_alloc);
  CHECKF(c.heap_alloc + big <= b.heap_alloc, "heap_alloc %llu -> %llu after free",
         (unsigned long long)b.heap_alloc, (unsigned long long)c.heap_alloc);
  CHECK(b.heap_inuse >= a.heap_inuse + big && c.heap_inuse + big <= b.heap_inuse);
  CHECK(b.by_size[0].mallocs == a.by_size[0].mallocs + 1);
  CHECK(c.by_size[0].frees == b.by_size[0].frees + 1);
  CHECK(b.heap_objects == a.heap_objects + 1 && c.heap_objects == a.heap_objects);
  CHECK(b.mallocs == a.mallocs + 1 && c.frees == b.frees + 1);
  CHECK(b.heap_sys >= b.heap_inuse + b.heap_idle && b.heap_sys >= big);
}

// ---------------------------------------------------------------------------
// gm_release_memory

static void test_release(void) {
  size_t big = 48 * MiB;
  char *p = gm_malloc(big);
  CHECK(p != NULL);
  if (!p)
    return;
  memset(p, 0x11, big);
  size_t rss_full = rss_bytes();
  gm_free(p);
  size_t r = gm_release_memory();
  size_t r2 = gm_release_memory(); // nothing left to release
  gm_stats_t st;
  gm_stats(&st);
  size_t rss_after = rss_bytes();
  CHECKF(st.heap_released == st.heap_idle, "after release: %llu idle, %llu released",
         (unsigned long long)st.heap_idle, (unsigned long long)st.heap_released);
  CHECK(st.heap_released >= big);
  // r may miss pages the background scavenger got first; usually it is all.
  CHECKF(r >= big || st.heap_released >= big, "release returned %zu", r);
  CHECKF(r2 == 0, "second release returned %zu", r2);
  CHECKF(rss_full > rss_after && rss_full - rss_after >= big / 2,
         "RSS %zu -> %zu after releasing %zu", rss_full, rss_after, big);
  // The heap works after a release, and released pages come back zeroed.
  char *q = gm_malloc(big);
  CHECK(q != NULL && all_zero(q, big));
  gm_free(q);
  void *s = gm_malloc(64);
  CHECK(s != NULL);
  gm_free(s);
}

// ---------------------------------------------------------------------------
// gm_print_stats_fd

static void test_print_stats(void) {
  int fd[2];
  if (pipe(fd) != 0) {
    CHECK(!"pipe");
    return;
  }
  gm_print_stats_fd(fd[1]);
  close(fd[1]);
  static char buf[1 << 16];
  size_t n = 0;
  ssize_t k;
  while (n < sizeof buf - 1 && (k = read(fd[0], buf + n, sizeof buf - 1 - n)) > 0)
    n += (size_t)k;
  buf[n] = 0;
  close(fd[0]);
  CHECK(n > 100);
  CHECK(strstr(buf, "gomem statistics") != NULL);
  CHECK(strstr(buf, "mallocs") != NULL && strstr(buf, "frees") != NULL);
}

// ---------------------------------------------------------------------------
// The libc names (drop-in build only)

#if GM_OVERRIDE
extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

// Keep the compiler from pairing or eliding allocations.
static void *volatile sink;
static volatile size_t huge_n = SIZE_MAX; // not a constant: no -Walloc-size warnings

static void test_libc_names(void) {
  char *p = malloc(100);
  sink = p;
  if (p)
    memset(p, 0, 100);
  CHECK(p && gm_owns(p) && malloc_usable_size(p) == gm_usable_size(p) &&
        malloc_usable_size(p) >= 100);
  p = realloc(p, 100000);
  sink = p;
  CHECK(p && gm_owns(p) && gm_usable_size(p) >= 100000);
  void *volatile pv = p; // the address, hidden from -Wuse-after-free
  free(p);
  CHECK(GM_SECURE || !gm_owns(pv)); // a large object: its pages are free (hardened: quarantined)
  int *c = calloc(100, sizeof(int));
  sink = c;
  CHECK(c && gm_owns(c) && all_zero(c, 100 * sizeof(int)));
  c = reallocarray(c, 1000, sizeof(int));
  sink = c;
  CHECK(c && gm_owns(c) && gm_usable_size(c) >= 1000 * sizeof(int) && all_zero(c, 400));
  errno = 0;
  int *volatile keep = c; // still valid after the failed call below
  CHECK(reallocarray(c, huge_n, 2) == NULL && errno == ENOMEM && gm_owns(keep));
  free(keep);
  errno = 0;
  sink = calloc(huge_n, 2);
  CHECK(sink == NULL && errno == ENOMEM);
  errno = 0;
  sink = malloc(huge_n);
  CHECK(sink == NULL && errno == ENOMEM);

  void *a = NULL;
  CHECK(posix_memalign(&a, 256, 1000) == 0 && gm_owns(a) && is_aligned(a, 256));
  free(a);
  CHECK(posix_memalign(&a, 3, 1000) == EINVAL);
  a = aligned_alloc(4096, 8192);
  CHECK(a && gm_owns(a) && is_aligned(a, 4096));
  free(a);
  a = memalign(65536, 100);
  CHECK(a && gm_owns(a) && is_aligned(a, 65536));
  free(a);

  // Several live at once: the first object of a fresh span is page aligned
  // anyway, the next ones only if valloc asks for it.
  void *va[8];
  int valigned = 1;
  for (int i = 0; i < 8; i++) {
    va[i] = valloc(100);
    valigned &= va[i] && gm_owns(va[i]) && is_aligned(va[i], 4096) && gm_usable_size(va[i]) >= 100;
  }
  CHECK(valigned);
  for (int i = 0; i < 8; i++)
    free(va[i]);
  a = valloc(10000);
  CHECK(a && gm_owns(a) && is_aligned(a, 4096) && gm_usable_size(a) >= 10000);
  free(a);
  for (int i = 0; i < 8; i++) {
    va[i] = pvalloc(100);
    valigned &= va[i] && gm_owns(va[i]) && is_aligned(va[i], 4096) && gm_usable_size(va[i]) >= 4096;
  }
  CHECK(valigned);
  for (int i = 0; i < 8; i++)
    free(va[i]);
  a = pvalloc(5000);
  CHECK(a && gm_owns(a) && is_aligned(a, 4096) && gm_usable_size(a) >= 8192);
  free(a);
  a = pvalloc(0);
  CHECK(a && gm_owns(a) && is_aligned(a, 4096) && gm_usable_size(a) >= 4096);
  free(a);

  p = __libc_malloc(200);
  sink = p;
  CHECK(p && gm_owns(p) && gm_usable_size(p) >= 200);
  fill(p, 200, 3);
  p = __libc_realloc(p, 3000);
  sink = p;
  CHECK(p && gm_owns(p) && check_fill(p, 200, 3) == SIZE_MAX);
  __libc_free(p);
  c = __libc_calloc(10, 100);
  sink = c;
  CHECK(c && gm_owns(c) && all_zero(c, 1000));
  __libc_free(c);
  a = __libc_memalign(1024, 10);
  CHECK(a && gm_owns(a) && is_aligned(a, 1024));
  __libc_free(a);

  // Mixing the names: gm_malloc'd memory freed with free and vice versa.
  p = gm_malloc(50);
  free(p);
  p = malloc(50);
  sink = p;
  gm_free(p);

  // glibc's own allocations reach gomem too.
  char *d = strdup("gomem");
  CHECK(d && gm_owns(d) && strcmp(d, "gomem") == 0);
  free(d);
  FILE *f = fopen("/proc/self/statm", "r");
  CHECK(f != NULL);
  if (f)
    fclose(f);

  // malloc_trim releases free memory: 1 after a big free, then 0 when there
  // is nothing to release.
  p = malloc(20 * MiB);
  sink = p;
  memset(p, 1, 20 * MiB);
  free(p);
  CHECK(malloc_trim(0) == 1);
  CHECK(malloc_trim(0) == 0);
}
#endif

int main(void) {
  test_malloc_sizes();
  test_malloc_many();
  test_calloc();
  test_realloc();
  test_realloc_in_place();
  test_aligned();
  test_huge();
  test_owns();
  test_stats();
  test_release();
  test_print_stats();
#if GM_OVERRIDE
  test_libc_names();
#endif
  return test_done();
}
