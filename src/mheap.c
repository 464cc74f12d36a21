// mheap.c: the global heap, twin of Go's mheap (mheap.go).
//
// mheap owns every page of gomem's address space: it reserves 64 MiB arenas
// from the OS, registers them in the arena map (arena.c) and the page
// allocator (mpagealloc.c), and carves spans out of free pages: small-object
// spans for mcentral, one span per large object (> 32 KiB). Span records come
// from an off-heap fixalloc. Freed spans give their pages back to the page
// allocator, where adjacent free pages coalesce; the scavenger later returns
// long-idle free pages to the OS.
//
// Everything here is protected by mheap.lock. Counters that other threads read
// for statistics are atomics written under the lock.
#include "mheap.h"
#include "arena.h"
#include "mgcscavenge.h"
#include "os.h"

mheap_t gm_heap GM_NOSCAN = {.lock = GM_MUTEX_INIT(RANK_MHEAP)};

// Arenas are placed from this address up, as Go does on 64-bit Linux, so the
// heap is contiguous and far from the program's brk heap and libraries.
#define ARENA_HINT_START ((uintptr_t)0x00c0 << 32)

// mheap_init sets up the heap. Called once by gm_init_slow.
void mheap_init(void) {
  if (pagealloc_init(&gm_heap.pages, os_release, NULL) != 0)
    gm_fatal("cannot reserve page allocator metadata", NULL);
  lock_fork_register(&gm_heap.lock);
  fixalloc_init(&gm_heap.span_alloc, sizeof(mspan_t));
  gm_heap.max_pages = os_memory_limit() / GM_PAGE_SIZE;
  gm_heap.arena_hint = ARENA_HINT_START;
}

// mheap_reserve_locked maps `bytes` (a multiple of the arena size) of arena
// address space, at the hint if possible so the heap stays contiguous.
static uintptr_t mheap_reserve_locked(size_t bytes) {
  uintptr_t hint = gm_heap.arena_hint;
  uintptr_t p = 0;
  if (hint != 0 && hint + bytes > hint && ((hint + bytes - 1) >> GM_ADDR_BITS) == 0) {
    p = (uintptr_t)os_reserve(bytes, hint);
    if (p != 0 && p % GM_ARENA_SIZE != 0) {
      os_unmap((void *)p, bytes);
      p = 0;
    }
  }
  if (p == 0)
    p = (uintptr_t)os_reserve_aligned(bytes, GM_ARENA_SIZE);
  if (p == 0)
    return 0;
  // Hardened build: pages no span has used stay inaccessible, so a far
  // overflow out of the heap's used part faults (mheap_alloc_span opens them).
  if (GM_SECURE && !os_protect((void *)p, bytes, false)) {
    os_unmap((void *)p, bytes);
    return 0;
  }
  if ((p + bytes - 1) >> GM_ADDR_BITS) { // outside what the maps can describe
    os_unmap((void *)p, bytes);
    return 0;
  }
  gm_heap.arena_hint = p + bytes;
  return p;
}

#define MAX_RANGES 4096
static struct {
  uintptr_t base;
  size_t bytes;
} ranges[MAX_RANGES] GM_NOSCAN;  // appended under mheap.lock (not a root: a base is an object)
static _Atomic size_t nranges;   // published with release
static _Atomic bool ranges_lost; // a growth past MAX_RANGES: the list is partial
void (*mheap_grow_hook)(uintptr_t base, size_t bytes);

size_t mheap_nranges(void) {
  return atomic_load_explicit(&nranges, memory_order_acquire);
}

bool mheap_ranges_complete(void) {
  return !relaxed_load(&ranges_lost);
}

void mheap_range(size_t i, uintptr_t *base, size_t *bytes) {
  *base = ranges[i].base;
  *bytes = ranges[i].bytes;
}

// mheap_grow_locked adds at least npages free pages to the heap. Returns
// false if the OS refuses the memory. Caller holds mheap.lock.
static bool mheap_grow_locked(size_t npages) {
  if (npages > (SIZE_MAX - GM_ARENA_SIZE) / GM_PAGE_SIZE)
    return false;
  size_t bytes = (npages * GM_PAGE_SIZE + GM_ARENA_SIZE - 1) & ~(GM_ARENA_SIZE - 1);
  uintptr_t base = mheap_reserve_locked(bytes);
  if (base == 0)
    return false;
  if (arena_register(base, bytes) != 0 || pagealloc_grow(&gm_heap.pages, base, bytes) != 0) {
    os_unmap((void *)base, bytes);
    return false;
  }
  os_hugepages((void *)base, bytes, gm_opt.hugepages);
  gm_heap.sys_bytes += bytes;
  size_t n = relaxed_load(&nranges);
  if (n < MAX_RANGES) { // (beyond: 4096 growths of 64 MiB or more, 256 GiB)
    ranges[n].base = base;
    ranges[n].bytes = bytes;
    atomic_store_explicit(&nranges, n + 1, memory_order_release);
  } else {
    relaxed_store(&ranges_lost, true);
  }
  if (mheap_grow_hook != NULL)
    mheap_grow_hook(base, bytes);
  uintptr_t lo = relaxed_load(&gm_heap.arena_lo), hi = relaxed_load(&gm_heap.arena_hi);
  if (lo == 0 || base < lo)
    relaxed_store(&gm_heap.arena_lo, base);
  if (base + bytes > hi)
    relaxed_store(&gm_heap.arena_hi, base + bytes);
  return true;
}

// mheap_alloc_pages_locked finds npages free pages aligned to align_pages
// pages (a power of two), growing the heap if needed. Returns the base or 0;
// *scav receives how many of the pages were scavenged.
static uintptr_t mheap_alloc_pages_locked(size_t npages, size_t align_pages, size_t *scav) {
  size_t want = npages + align_pages - 1;
  if (want < npages)
    return 0;
  uintptr_t base = pagealloc_alloc(&gm_heap.pages, want, scav);
  if (base == 0) {
    if (!mheap_grow_locked(want))
      return 0;
    base = pagealloc_alloc(&gm_heap.pages, want, scav);
    if (base == 0)
      return 0;
  }
  if (align_pages > 1) {
    uintptr_t align = align_pages * GM_PAGE_SIZE;
    uintptr_t aligned = (base + align - 1) & ~(align - 1);
    size_t head = (aligned - base) / GM_PAGE_SIZE;
    size_t tail = want - head - npages;
    if (head > 0)
      pagealloc_free(&gm_heap.pages, base, head);
    if (tail > 0)
      pagealloc_free(&gm_heap.pages, aligned + npages * GM_PAGE_SIZE, tail);
    *scav = 0; // trimmed pages went back dirty; count conservatively
    base = aligned;
  }
  return base;
}

// populate_range: a small-object span is carved into objects that will all
// be handed out, so in a heap past POPULATE_MIN its fresh pages are made
// resident in one call, with the free fresh pages after it (the class's next
// spans come from there, lowest address first): up to 1/64 of the pages in
// use, at most POPULATE_AHEAD. That replaces one page fault per page as the
// program first writes them: on the 2-core VM of bench/results a fault
// costs 17.8 us against 1.1 us a page populated. Small heaps are left to
// fault (populating a span's unused tail there cost a 2 MiB program 15% of
// its RSS), and so are large spans: a program may use a big block sparsely.
// Pages populated ahead stay marked scavenged (they are zero) and are not
// populated again while they lie in the last range. Returns the end of the
// range to populate (0: none). Caller holds gm_heap.lock.
#define POPULATE_MIN ((size_t)(8 << 20) / GM_PAGE_SIZE)
#define POPULATE_AHEAD 32 // pages: 256 KiB
static uintptr_t pop_lo GM_NOSCAN, pop_hi GM_NOSCAN; // the last range populated (gm_heap.lock)

static uintptr_t populate_range(uintptr_t base, size_t npages, size_t inuse) {
  uintptr_t end = base + npages * GM_PAGE_SIZE;
  if (inuse < POPULATE_MIN || (base >= pop_lo && end <= pop_hi))
    return 0;
  size_t ahead = inuse / 64 < POPULATE_AHEAD ? inuse / 64 : POPULATE_AHEAD;
  pop_lo = base;
  pop_hi = end + pagealloc_fresh_run(&gm_heap.pages, end, ahead) * GM_PAGE_SIZE;
  return pop_hi;
}

// mheap_alloc_span returns a new span of npages pages for sizeclass (0 =
// large object), its base aligned to align_pages pages, or NULL when out of
// memory. The span's pages point at it in the arena map. For large spans,
// needzero tells whether the memory may be dirty.
mspan_t *mheap_alloc_span(size_t npages, uint8_t sizeclass, size_t align_pages) {
  gm_assert(npages > 0 && align_pages > 0 && (align_pages & (align_pages - 1)) == 0);
  if (npages > gm_heap.max_pages)
    return NULL; // more than the machine could ever back
  gm_lock(&gm_heap.lock);
  size_t scav = 0;
  uintptr_t base = mheap_alloc_pages_locked(npages, align_pages, &scav);
  mspan_t *s = base ? fixalloc_alloc(&gm_heap.span_alloc) : NULL;
  if (GM_SECURE && s != NULL && !os_protect((void *)base, npages * GM_PAGE_SIZE, true)) {
    fixalloc_free(&gm_heap.span_alloc, s);
    s = NULL;
  }
  if (s == NULL) {
    if (base)
      pagealloc_free(&gm_heap.pages, base, npages);
    gm_unlock(&gm_heap.lock);
    return NULL;
  }
  s->base = base;
  s->npages = npages;
  s->sizeclass = sizeclass;
  s->state = sizeclass ? SPAN_SMALL : SPAN_LARGE;
  s->sampled = 0;
  s->needzero = scav < npages;
  gm_heap.scav_reused += scav;
  size_t inuse = relaxed_load(&gm_heap.inuse_pages) + npages;
  relaxed_store(&gm_heap.inuse_pages, inuse);
  if (inuse > gm_heap.peak_sample)
    gm_heap.peak_sample = inuse;
  if (sizeclass == 0) {
    relaxed_add(&gm_heap.large_inuse_bytes, npages * GM_PAGE_SIZE);
    relaxed_add(&gm_heap.large_allocs, 1);
  }
  arena_set_spans(base, npages, s);
  uintptr_t pop_end = sizeclass != 0 && scav > 0 ? populate_range(base, npages, inuse) : 0;
  if (GM_VALIDATE)
    pagealloc_validate(&gm_heap.pages);
  gm_unlock(&gm_heap.lock);
  if (pop_end > base)
    os_populate((void *)base, pop_end - base);
  return s;
}

// mheap_free_span returns s's pages to the heap and its record to the span
// allocator. s must not be reachable from any mcache or mcentral list.
void mheap_free_span(mspan_t *s) {
  gm_lock(&gm_heap.lock);
  if (unlikely(s->state != SPAN_SMALL && s->state != SPAN_LARGE))
    gm_fatal("freeing a span that is not in use", (void *)s->base);
  arena_set_spans(s->base, s->npages, NULL);
  if (GM_SECURE && s->released)
    pagealloc_free_released(&gm_heap.pages, s->base, s->npages);
  else
    pagealloc_free(&gm_heap.pages, s->base, s->npages);
  s->released = 0;
  relaxed_store(&gm_heap.inuse_pages, relaxed_load(&gm_heap.inuse_pages) - s->npages);
  if (s->sizeclass == 0) {
    relaxed_store(&gm_heap.large_inuse_bytes,
                  relaxed_load(&gm_heap.large_inuse_bytes) - s->npages * GM_PAGE_SIZE);
    relaxed_add(&gm_heap.large_frees, 1);
  }
  s->state = SPAN_DEAD;
  fixalloc_free(&gm_heap.span_alloc, s);
  if (GM_VALIDATE)
    pagealloc_validate(&gm_heap.pages);
  size_t dirty = gm_heap.pages.free_pages - gm_heap.pages.scav_pages;
  gm_unlock(&gm_heap.lock);
  scavenger_kick(dirty);
}

void mheap_memory(uint64_t *inuse_meta, uint64_t *free_dirty) {
  gm_lock(&gm_heap.lock);
  *inuse_meta = (uint64_t)relaxed_load(&gm_heap.inuse_pages) * GM_PAGE_SIZE +
                fixalloc_sys(&gm_heap.span_alloc) + arena_metadata_bytes();
  *free_dirty = (uint64_t)(gm_heap.pages.free_pages - gm_heap.pages.scav_pages) * GM_PAGE_SIZE;
  gm_unlock(&gm_heap.lock);
}

// mheap_grow_span_in_place extends large span s to npages pages if the pages
// after it are free. Returns true on success. The caller owns s (it is a
// live large object being reallocated).
bool mheap_grow_span_in_place(mspan_t *s, size_t npages) {
  gm_assert(s->sizeclass == 0 && npages > s->npages);
  size_t extra = npages - s->npages;
  uintptr_t tail = s->base + s->npages * GM_PAGE_SIZE;
  gm_lock(&gm_heap.lock);
  size_t scav = 0;
  bool ok = pagealloc_alloc_at(&gm_heap.pages, tail, extra, &scav);
  if (ok && GM_SECURE && !os_protect((void *)tail, extra * GM_PAGE_SIZE, true)) {
    pagealloc_free(&gm_heap.pages, tail, extra);
    ok = false;
  }
  if (ok) {
    gm_heap.scav_reused += scav;
    arena_set_spans(tail, extra, s);
    s->npages = npages;
    size_t inuse = relaxed_load(&gm_heap.inuse_pages) + extra;
    relaxed_store(&gm_heap.inuse_pages, inuse);
    if (inuse > gm_heap.peak_sample)
      gm_heap.peak_sample = inuse;
    relaxed_add(&gm_heap.large_inuse_bytes, extra * GM_PAGE_SIZE);
    s->needzero = 1;
  }
  gm_unlock(&gm_heap.lock);
  return ok;
}
