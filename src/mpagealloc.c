// mpagealloc.c: the page allocator (design and invariants: mpagealloc.h).
//
// Owns the summary radix tree, the sparse chunk array, first-fit search,
// alloc/free/grow, the scavenger's walk over free pages and the validator;
// the operations on one chunk's bitmaps and on summaries are in mpallocbits.c.
//
// Details beyond the header:
//   - An L2 block of `chunks` holds PA_L2_CHUNKS chunks (2 GiB, the span of one
//     level-1 summary). When a block is first mapped every chunk in it is
//     marked fully in use with no scavenged pages, so chunks that were never
//     grown look like allocated memory: they count in no free total and their
//     summaries are 0. pagealloc_grow turns a chunk into free + scavenged.
//   - Scavenged bits are kept clear on in-use pages (alloc clears them), so
//     scav_pages is simply the number of scavenged bits set.
//   - search_addr is a lower bound on the first free page. Alloc moves it up
//     to the lowest free page its search saw (exactly, when it can tell);
//     free and grow move it down.
#include "mpagealloc.h"
#include "bits.h"
#include "mpallocbits.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

// ---------------------------------------------------------------------------
// Fatal errors

// pa_die prints "gomem: page allocator: <message>" to stderr and aborts.
// It formats into a stack buffer and calls write(2): no allocation.
static void pa_die(const char *fmt, ...) __attribute__((noreturn, cold, format(printf, 1, 2)));
static void pa_die(const char *fmt, ...) {
  char buf[320];
  static const char prefix[] = "gomem: page allocator: ";
  size_t n = sizeof prefix - 1;
  memcpy(buf, prefix, n);
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(buf + n, sizeof buf - n - 1, fmt, ap);
  va_end(ap);
  if (m > 0)
    n += PA_MIN((size_t)m, sizeof buf - n - 2);
  buf[n++] = '\n';
  ssize_t r = write(STDERR_FILENO, buf, n);
  (void)r;
  abort();
}

// ---------------------------------------------------------------------------
// Chunks

// pa_chunk returns chunk c's data, or NULL if its L2 block was never mapped.
static inline pa_chunk_t *pa_chunk(const pagealloc_t *p, size_t c) {
  pa_chunk_t *l2 = p->chunks[c >> PA_L2_BITS];
  return l2 ? l2 + (c & (PA_L2_CHUNKS - 1)) : NULL;
}

// ---------------------------------------------------------------------------
// Summary updates

// pa_update recomputes the summaries of chunks [c0, c1] (inclusive) and of
// their ancestors, stopping early once a level is unchanged.
static void pa_update(pagealloc_t *p, size_t c0, size_t c1) {
  bool changed = false;
  for (size_t c = c0; c <= c1; c++) {
    pa_sum_t s = pa_chunk_summary(pa_chunk(p, c));
    if (s != p->summary[PA_LEVELS - 1][c]) {
      p->summary[PA_LEVELS - 1][c] = s;
      changed = true;
    }
  }
  for (int l = PA_LEVELS - 2; l >= 0 && changed; l--) {
    unsigned sh = pa_chunk_shift(l);
    size_t kid_pages = pa_level_pages(l + 1);
    pa_sum_t *sum = p->summary[l], *kids = p->summary[l + 1];
    changed = false;
    for (size_t i = c0 >> sh; i <= c1 >> sh; i++) {
      pa_sum_t s = pa_merge(kids + (i << PA_LEVEL_BITS), kid_pages);
      if (s != sum[i]) {
        sum[i] = s;
        changed = true;
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Search

// pa_find_leaf returns the address of the first run of npages free pages
// inside chunk c, which its summary says exists. If first_free is not NULL, c
// holds the lowest free page and *first_free receives its address.
static uintptr_t pa_find_leaf(const pagealloc_t *p, size_t c, size_t npages,
                              uintptr_t *first_free) {
  const pa_chunk_t *ch = pa_chunk(p, c);
  uintptr_t base = (uintptr_t)c << PA_CHUNK_SHIFT, sa = p->search_addr;
  unsigned from = sa > base ? (unsigned)((sa - base) >> PA_PAGE_SHIFT) / 64 : 0;
  size_t at = pa_chunk_find(ch, npages, from);
  if (at == PA_NONE)
    pa_die("chunk %zu summary says a run of %zu pages exists, bitmap disagrees", c, npages);
  if (first_free)
    *first_free = PA_MAX(sa, base + pa_chunk_first_free(ch, from) * PA_PAGE_SIZE);
  return base + at * PA_PAGE_SIZE;
}

// pa_find returns the address of the lowest run of npages free pages, or 0.
// *first_free receives a lower bound on the lowest free page (>= the old
// search_addr); it equals the result when that page starts the run.
// Precondition: something is grown, npages >= 1.
static uintptr_t pa_find(const pagealloc_t *p, size_t npages, uintptr_t *first_free) {
  uintptr_t sa = p->search_addr;
  *first_free = sa;
  if (sa >= PA_ADDR_LIMIT)
    return 0;
  size_t begin = PA_MAX(p->lo_chunk >> pa_chunk_shift(0), sa >> pa_addr_shift(0));
  size_t end = ((p->hi_chunk - 1) >> pa_chunk_shift(0)) + 1;
  bool track = true; // the entries we descend into contain the lowest free page
  for (int l = 0;; l++) {
    const pa_sum_t *sum = p->summary[l];
    size_t pages = pa_level_pages(l), run = 0, first_nz = PA_NONE, hit = PA_NONE;
    for (size_t i = begin; i < end; i++) {
      pa_sum_t s = sum[i];
      if (s == 0) {
        run = 0;
        continue;
      }
      if (first_nz == PA_NONE) {
        first_nz = i;
        if (track)
          *first_free = PA_MAX(sa, (uintptr_t)i << pa_addr_shift(l));
      }
      if (run + pa_start(s) >= npages) // carried run + i's free prefix fit
        return ((uintptr_t)i << pa_addr_shift(l)) - run * PA_PAGE_SIZE;
      if (pa_max(s) >= npages) { // a run lies inside entry i; none is lower
        hit = i;
        break;
      }
      size_t e = pa_end(s);
      run = e == pages ? run + e : e;
    }
    if (hit == PA_NONE) {
      if (l == 0)
        return 0;
      pa_die("summary tree inconsistent: level %d entry %zu has no run of %zu pages", l - 1,
             begin >> PA_LEVEL_BITS, npages);
    }
    track = track && hit == first_nz;
    if (l == PA_LEVELS - 1)
      return pa_find_leaf(p, hit, npages, track ? first_free : NULL);
    begin = PA_MAX(hit << PA_LEVEL_BITS, sa >> pa_addr_shift(l + 1));
    end = (hit + 1) << PA_LEVEL_BITS;
  }
}

// ---------------------------------------------------------------------------
// Public operations

int pagealloc_init(pagealloc_t *p, pa_release_fn release, void *ctx) {
  memset(p, 0, sizeof *p);
  size_t total = 0;
  for (int l = 0; l < PA_LEVELS; l++)
    total += pa_level_len(l) * sizeof(pa_sum_t);
  int prot = PROT_READ | PROT_WRITE, flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
  char *mem = mmap(NULL, total, prot, flags, -1, 0);
  if (mem == MAP_FAILED)
    return -1;
  void *l1 = mmap(NULL, PA_L1_ENTRIES * sizeof(pa_chunk_t *), prot, flags, -1, 0);
  if (l1 == MAP_FAILED) {
    int e = errno;
    munmap(mem, total);
    errno = e;
    return -1;
  }
  for (int l = 0; l < PA_LEVELS; l++) {
    p->summary[l] = (pa_sum_t *)(void *)mem;
    mem += pa_level_len(l) * sizeof(pa_sum_t);
  }
  p->chunks = l1;
  p->search_addr = PA_ADDR_LIMIT; // nothing is free
  p->release = release;
  p->release_ctx = ctx;
  return 0;
}

void pagealloc_destroy(pagealloc_t *p) {
  if (p->summary[0] == NULL)
    return;
  if (p->lo_chunk < p->hi_chunk) {
    for (size_t b = p->lo_chunk >> PA_L2_BITS; b <= (p->hi_chunk - 1) >> PA_L2_BITS; b++)
      if (p->chunks[b])
        munmap(p->chunks[b], PA_L2_BYTES);
  }
  munmap(p->chunks, PA_L1_ENTRIES * sizeof(pa_chunk_t *));
  size_t total = 0;
  for (int l = 0; l < PA_LEVELS; l++)
    total += pa_level_len(l) * sizeof(pa_sum_t);
  munmap(p->summary[0], total);
  memset(p, 0, sizeof *p);
}

// pa_map_l2 maps L2 block b with every chunk in it marked in use.
static int pa_map_l2(pagealloc_t *p, size_t b) {
  pa_chunk_t *l2 =
      mmap(NULL, PA_L2_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (l2 == MAP_FAILED)
    return -1;
  for (size_t i = 0; i < PA_L2_CHUNKS; i++)
    memset(l2[i].alloc, 0xff, sizeof l2[i].alloc);
  p->chunks[b] = l2;
  return 0;
}

// pa_map_blocks maps the missing L2 blocks for chunks [c0, c1). On failure it
// unmaps the blocks it mapped and returns -1.
static int pa_map_blocks(pagealloc_t *p, size_t c0, size_t c1) {
  size_t b0 = c0 >> PA_L2_BITS, b1 = (c1 - 1) >> PA_L2_BITS;
  for (size_t b = b0; b <= b1; b++) {
    if (p->chunks[b] || pa_map_l2(p, b) == 0)
      continue;
    int e = errno;
    for (size_t u = b0; u < b; u++) {
      bool grown = p->lo_chunk < p->hi_chunk && u >= p->lo_chunk >> PA_L2_BITS &&
                   u <= (p->hi_chunk - 1) >> PA_L2_BITS;
      if (!grown && p->chunks[u]) { // only blocks this call mapped
        munmap(p->chunks[u], PA_L2_BYTES);
        p->chunks[u] = NULL;
      }
    }
    errno = e;
    return -1;
  }
  return 0;
}

int pagealloc_grow(pagealloc_t *p, uintptr_t base, size_t bytes) {
  if (bytes == 0)
    return 0;
  if (base == 0 || ((base | bytes) & (PA_CHUNK_BYTES - 1)) || base >= PA_ADDR_LIMIT ||
      bytes > PA_ADDR_LIMIT - base) {
    errno = EINVAL;
    return -1;
  }
  size_t c0 = base >> PA_CHUNK_SHIFT, c1 = c0 + (bytes >> PA_CHUNK_SHIFT);
  if (pa_map_blocks(p, c0, c1) != 0)
    return -1;
  for (size_t c = c0; c < c1; c++) {
    pa_chunk_t *ch = &p->chunks[c >> PA_L2_BITS][c & (PA_L2_CHUNKS - 1)]; // mapped above
    memset(ch->alloc, 0, sizeof ch->alloc);
    memset(ch->scav, 0xff, sizeof ch->scav);
  }
  pa_update(p, c0, c1 - 1);
  size_t n = bytes >> PA_PAGE_SHIFT;
  p->free_pages += n;
  p->scav_pages += n;
  p->total_pages += n;
  if (p->lo_chunk == p->hi_chunk) {
    p->lo_chunk = c0;
    p->hi_chunk = c1;
  } else {
    p->lo_chunk = PA_MIN(p->lo_chunk, c0);
    p->hi_chunk = PA_MAX(p->hi_chunk, c1);
  }
  p->search_addr = PA_MIN(p->search_addr, base);
  return 0;
}

// pa_mark_in_use marks the free pages [base, base + npages pages) in use,
// updates summaries and counters, and returns how many were scavenged.
static size_t pa_mark_in_use(pagealloc_t *p, uintptr_t base, size_t npages) {
  size_t page = base >> PA_PAGE_SHIFT, left = npages, nscav = 0;
  while (left) {
    size_t c = page / PA_CHUNK_PAGES;
    unsigned b = page % PA_CHUNK_PAGES, k = (unsigned)PA_MIN(left, (size_t)PA_CHUNK_PAGES - b);
    nscav += pa_chunk_set(pa_chunk(p, c), b, k);
    page += k;
    left -= k;
  }
  pa_update(p, base >> PA_CHUNK_SHIFT, (page - 1) / PA_CHUNK_PAGES);
  p->free_pages -= npages;
  p->scav_pages -= nscav;
  return nscav;
}

uintptr_t pagealloc_alloc(pagealloc_t *p, size_t npages, size_t *scav) {
  if (scav)
    *scav = 0;
  if (npages == 0 || npages > p->free_pages)
    return 0;
  uintptr_t first_free;
  uintptr_t addr = pa_find(p, npages, &first_free);
  if (addr == 0)
    return 0;
  size_t nscav = pa_mark_in_use(p, addr, npages);
  p->search_addr = first_free == addr ? addr + npages * PA_PAGE_SIZE : first_free;
  if (scav)
    *scav = nscav;
  return addr;
}

// pa_range_free reports whether every page of [base, base + npages pages) is
// grown and free.
static bool pa_range_free(const pagealloc_t *p, uintptr_t base, size_t npages) {
  uintptr_t limit = base + npages * PA_PAGE_SIZE;
  if ((base & (PA_PAGE_SIZE - 1)) || npages == 0 || limit > PA_ADDR_LIMIT || limit <= base)
    return false;
  size_t c0 = base >> PA_CHUNK_SHIFT, c1 = (limit - 1) >> PA_CHUNK_SHIFT;
  if (c0 < p->lo_chunk || c1 >= p->hi_chunk)
    return false;
  for (size_t b = c0 >> PA_L2_BITS; b <= c1 >> PA_L2_BITS; b++)
    if (!p->chunks[b])
      return false;
  size_t page = base >> PA_PAGE_SHIFT, left = npages;
  while (left) {
    const pa_chunk_t *ch = pa_chunk(p, page / PA_CHUNK_PAGES);
    unsigned b = page % PA_CHUNK_PAGES, k = (unsigned)PA_MIN(left, (size_t)PA_CHUNK_PAGES - b);
    while (k) {
      unsigned i = b / 64, lo = b % 64, n = PA_MIN(k, 64 - lo);
      if (ch->alloc[i] & pa_mask(lo, n))
        return false;
      b += n;
      k -= n;
      page += n;
      left -= n;
    }
  }
  return true;
}

bool pagealloc_alloc_at(pagealloc_t *p, uintptr_t base, size_t npages, size_t *scav) {
  if (scav)
    *scav = 0;
  if (!pa_range_free(p, base, npages))
    return false;
  size_t nscav = pa_mark_in_use(p, base, npages);
  if (scav)
    *scav = nscav;
  return true; // search_addr stays a valid lower bound
}

// pa_check_range aborts unless [base, base + npages pages) is page-aligned
// and inside chunks whose metadata exists.
static void pa_check_range(const pagealloc_t *p, uintptr_t base, size_t npages) {
  uintptr_t limit = base + npages * PA_PAGE_SIZE;
  if ((base & (PA_PAGE_SIZE - 1)) || npages == 0 || npages > PA_ADDR_LIMIT >> PA_PAGE_SHIFT ||
      limit > PA_ADDR_LIMIT || limit <= base)
    pa_die("freeing bad range at 0x%" PRIxPTR " (%zu pages)", base, npages);
  size_t c0 = base >> PA_CHUNK_SHIFT, c1 = (limit - 1) >> PA_CHUNK_SHIFT;
  if (c0 < p->lo_chunk || c1 >= p->hi_chunk)
    pa_die("freeing pages outside the heap at 0x%" PRIxPTR, base);
  for (size_t b = c0 >> PA_L2_BITS; b <= c1 >> PA_L2_BITS; b++)
    if (!p->chunks[b])
      pa_die("freeing pages outside the heap at 0x%" PRIxPTR, base);
}

void pagealloc_free(pagealloc_t *p, uintptr_t base, size_t npages) {
  pa_check_range(p, base, npages);
  size_t page = base >> PA_PAGE_SHIFT, left = npages;
  while (left) {
    size_t c = page / PA_CHUNK_PAGES;
    unsigned b = page % PA_CHUNK_PAGES, k = (unsigned)PA_MIN(left, (size_t)PA_CHUNK_PAGES - b);
    size_t bad = pa_chunk_clear(pa_chunk(p, c), b, k);
    if (bad != PA_NONE)
      pa_die("freeing free page at 0x%" PRIxPTR,
             ((uintptr_t)c << PA_CHUNK_SHIFT) + bad * PA_PAGE_SIZE);
    page += k;
    left -= k;
  }
  pa_update(p, base >> PA_CHUNK_SHIFT, (page - 1) / PA_CHUNK_PAGES);
  p->free_pages += npages;
  p->search_addr = PA_MIN(p->search_addr, base);
}

void pagealloc_free_released(pagealloc_t *p, uintptr_t base, size_t npages) {
  pagealloc_free(p, base, npages);
  size_t page = base >> PA_PAGE_SHIFT, end = page + npages;
  while (page < end) {
    pa_chunk_t *ch = pa_chunk(p, page / PA_CHUNK_PAGES);
    unsigned b = page % PA_CHUNK_PAGES, n = (unsigned)PA_MIN(end - page, (size_t)(64 - b % 64));
    ch->scav[b / 64] |= pa_mask(b % 64, n);
    page += n;
  }
  p->scav_pages += npages;
}

bool pagealloc_is_free(const pagealloc_t *p, uintptr_t addr) {
  if (addr >= PA_ADDR_LIMIT)
    return false;
  size_t c = addr >> PA_CHUNK_SHIFT;
  if (c < p->lo_chunk || c >= p->hi_chunk)
    return false;
  const pa_chunk_t *ch = pa_chunk(p, c);
  if (ch == NULL)
    return false;
  size_t i = (addr >> PA_PAGE_SHIFT) % PA_CHUNK_PAGES;
  return !(ch->alloc[i / 64] >> (i % 64) & 1);
}

size_t pagealloc_fresh_run(const pagealloc_t *p, uintptr_t addr, size_t max) {
  size_t c = addr >> PA_CHUNK_SHIFT;
  if (addr >= PA_ADDR_LIMIT || c < p->lo_chunk || c >= p->hi_chunk)
    return 0;
  const pa_chunk_t *ch = pa_chunk(p, c);
  size_t i = (addr >> PA_PAGE_SHIFT) % PA_CHUNK_PAGES, n = 0;
  if (ch == NULL)
    return 0;
  for (; n < max && i < PA_CHUNK_PAGES; n++, i++)
    if ((ch->alloc[i / 64] >> (i % 64) & 1) || !(ch->scav[i / 64] >> (i % 64) & 1))
      break;
  return n;
}

// ---------------------------------------------------------------------------
// Scavenging

// pa_scav_state accumulates the scavenger's current run of pages to release,
// which grows downward (pieces are found highest first).
typedef struct pa_scav_state {
  uintptr_t lo, hi; // pending run [lo, hi); empty when lo == hi
  size_t budget;    // pages still allowed
  size_t released;  // pages released so far
} pa_scav_state_t;

static void pa_scav_flush(pagealloc_t *p, pa_scav_state_t *st) {
  if (st->lo == st->hi)
    return;
  if (p->release)
    p->release(p->release_ctx, st->lo, st->hi - st->lo);
  st->lo = st->hi = 0;
}

// pa_scav_piece adds [lo, hi) (below everything added before) to the run.
static void pa_scav_piece(pagealloc_t *p, pa_scav_state_t *st, uintptr_t lo, uintptr_t hi) {
  if (st->lo != st->hi && st->lo == hi) {
    st->lo = lo;
    return;
  }
  pa_scav_flush(p, st);
  st->lo = lo;
  st->hi = hi;
}

// pa_scav_chunk marks free unscavenged pages of chunk c scavenged, highest
// first, while the budget lasts, and feeds them to the pending run.
static void pa_scav_chunk(pagealloc_t *p, pa_scav_state_t *st, size_t c, pa_chunk_t *ch) {
  uintptr_t base = (uintptr_t)c << PA_CHUNK_SHIFT;
  for (int i = PA_WORDS - 1; i >= 0 && st->budget; i--) {
    uint64_t x = ~(ch->alloc[i] | ch->scav[i]);
    while (x && st->budget) {
      unsigned top = 63 - __builtin_clzll(x);
      uint64_t y = ~(x << (63 - top)); // leading zeros of y = run length below top
      unsigned len = y ? __builtin_clzll(y) : 64;
      len = (unsigned)PA_MIN((size_t)len, st->budget);
      unsigned lo = top + 1 - len;
      uint64_t m = pa_mask(lo, len);
      ch->scav[i] |= m;
      x &= ~m;
      st->budget -= len;
      st->released += len;
      uintptr_t a = base + ((uintptr_t)i * 64 + lo) * PA_PAGE_SIZE;
      pa_scav_piece(p, st, a, a + len * PA_PAGE_SIZE);
    }
  }
}

size_t pagealloc_scavenge(pagealloc_t *p, size_t max_bytes) {
  pa_scav_state_t st = {0, 0, max_bytes >> PA_PAGE_SHIFT, 0};
  st.budget = PA_MIN(st.budget, p->free_pages - p->scav_pages);
  for (size_t c = p->hi_chunk; c-- > p->lo_chunk && st.budget;) {
    pa_chunk_t *ch = pa_chunk(p, c);
    if (ch == NULL) {
      c &= ~(PA_L2_CHUNKS - 1); // skip the whole unmapped block
      continue;
    }
    if (p->summary[PA_LEVELS - 1][c] != 0)
      pa_scav_chunk(p, &st, c, ch);
  }
  pa_scav_flush(p, &st);
  p->scav_pages += st.released;
  return st.released * PA_PAGE_SIZE;
}

// ---------------------------------------------------------------------------
// Validation

static void pa_check_sum(int l, size_t i, pa_sum_t have, pa_sum_t want) {
  if (have != want)
    pa_die("validate: level-%d summary %zu (addr 0x%" PRIxPTR ") is (%u,%u,%u), want (%u,%u,%u)", l,
           i, (uintptr_t)i << pa_addr_shift(l), pa_start(have), pa_max(have), pa_end(have),
           pa_start(want), pa_max(want), pa_end(want));
}

// pa_validate_chunks checks level-4 summaries and bitmaps of mapped chunks
// in [lo, hi) and returns the free and scavenged page counts and the first
// free page (PA_ADDR_LIMIT if none).
static void pa_validate_chunks(const pagealloc_t *p, size_t *nfree, size_t *nscav,
                               uintptr_t *first) {
  *nfree = *nscav = 0;
  *first = PA_ADDR_LIMIT;
  for (size_t c = p->lo_chunk; c < p->hi_chunk; c++) {
    const pa_chunk_t *ch = pa_chunk(p, c);
    if (ch == NULL) {
      c |= PA_L2_CHUNKS - 1;
      continue;
    }
    pa_check_sum(PA_LEVELS - 1, c, p->summary[PA_LEVELS - 1][c], pa_chunk_summary(ch));
    size_t f = 0;
    for (int i = 0; i < PA_WORDS; i++) {
      if (ch->alloc[i] & ch->scav[i])
        pa_die("validate: scavenged bit set on in-use page in chunk %zu word %d", c, i);
      f += gm_popcount(~ch->alloc[i]);
      *nscav += gm_popcount(ch->scav[i]);
    }
    if (f && *first == PA_ADDR_LIMIT)
      *first = ((uintptr_t)c << PA_CHUNK_SHIFT) + pa_chunk_first_free(ch, 0) * PA_PAGE_SIZE;
    *nfree += f;
  }
}

void pagealloc_validate(const pagealloc_t *p) {
  if (p->lo_chunk == p->hi_chunk) {
    if (p->free_pages || p->scav_pages || p->total_pages)
      pa_die("validate: nothing grown but free_pages=%zu scav_pages=%zu total_pages=%zu",
             p->free_pages, p->scav_pages, p->total_pages);
    return;
  }
  size_t nfree, nscav;
  uintptr_t first;
  pa_validate_chunks(p, &nfree, &nscav, &first);
  for (int l = PA_LEVELS - 2; l >= 0; l--) {
    unsigned sh = pa_chunk_shift(l);
    for (size_t i = p->lo_chunk >> sh; i <= (p->hi_chunk - 1) >> sh; i++) {
      if (l > 0 && !p->chunks[(i << sh) >> PA_L2_BITS])
        continue; // no chunk under this node was ever mapped
      pa_sum_t want = pa_merge(p->summary[l + 1] + (i << PA_LEVEL_BITS), pa_level_pages(l + 1));
      pa_check_sum(l, i, p->summary[l][i], want);
    }
  }
  if (nfree != p->free_pages)
    pa_die("validate: free_pages is %zu, bitmaps have %zu free", p->free_pages, nfree);
  if (nscav != p->scav_pages)
    pa_die("validate: scav_pages is %zu, bitmaps have %zu scavenged", p->scav_pages, nscav);
  if (nfree > p->total_pages)
    pa_die("validate: free_pages %zu exceeds total_pages %zu", nfree, p->total_pages);
  if (first < p->search_addr)
    pa_die("validate: free page at 0x%" PRIxPTR " below search_addr 0x%" PRIxPTR, first,
           p->search_addr);
}
