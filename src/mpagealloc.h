// mpagealloc.h: the page allocator, gomem's twin of Go's pageAlloc (mpagealloc.go).
//
// It tracks which 8 KiB pages of the heap are free, over the whole 47-bit user
// address space, and finds runs of free pages by address-ordered first fit.
//
// Data structures
//   chunk     512 pages (4 MiB). Each chunk has an alloc bitmap (1 = page in use)
//             and a scavenged bitmap (1 = page returned to the OS / never touched;
//             meaningful for free pages only). Chunk data lives in a sparse
//             two-level array; an L2 block is mapped when the heap first grows
//             into its range.
//   summary   one 64-bit word per node: (start, max, end) in 21-bit fields =
//             free pages at the start, the longest free run, free pages at the
//             end. Bit 63 set means "all 2^21 pages free" (only a level-0 entry
//             can cover that many). Five levels, 8-way fan-out; a level-4 entry
//             covers one chunk, a level-0 entry 16 GiB. Each level is one array
//             indexed by address, reserved once (MAP_NORESERVE) and touched only
//             where the heap is.
//   grow      memory not handed to pagealloc_grow has summary 0 (no free pages),
//             so the search never enters it.
//
// Invariants (checked by pagealloc_validate)
//   - every level-4 summary equals the summary computed from its chunk bitmap;
//   - every level-l summary (l < 4) equals the merge of its 8 children;
//   - free_pages = number of 0 bits in all grown chunks' alloc bitmaps;
//   - scav_pages = number of pages that are free and have the scavenged bit;
//   - scavenged bits are clear on in-use pages;
//   - no free page lies below search_addr.
//
// Locking: none inside. The caller serialises every call (gomem holds
// mheap.lock); tests call it from one thread.
#ifndef GOMEM_MPAGEALLOC_H
#define GOMEM_MPAGEALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PA_PAGE_SHIFT 13
#define PA_PAGE_SIZE ((uintptr_t)1 << PA_PAGE_SHIFT)
#define PA_ADDR_BITS 47 // x86-64 / arm64 Linux user space without 5-level hints
#define PA_CHUNK_PAGES 512
#define PA_CHUNK_SHIFT (PA_PAGE_SHIFT + 9) // 4 MiB
#define PA_CHUNK_BYTES ((uintptr_t)1 << PA_CHUNK_SHIFT)
#define PA_LEVELS 5
#define PA_LEVEL_BITS 3 // 8-way fan-out
#define PA_L0_BITS (PA_ADDR_BITS - PA_CHUNK_SHIFT - (PA_LEVELS - 1) * PA_LEVEL_BITS) // 13
#define PA_MAX_PACKED ((uint64_t)1 << 21)

typedef uint64_t pa_sum_t;

// pa_release_fn is called by pagealloc_scavenge for each run of pages it
// returns to the OS: [addr, addr+bytes). gomem passes os_release (madvise);
// tests pass a recorder that touches nothing.
typedef void (*pa_release_fn)(void *ctx, uintptr_t addr, size_t bytes);

typedef struct pa_chunk {
  uint64_t alloc[PA_CHUNK_PAGES / 64]; // 1 = in use
  uint64_t scav[PA_CHUNK_PAGES / 64];  // 1 = scavenged (free pages only)
} pa_chunk_t;

typedef struct pagealloc {
  pa_sum_t *summary[PA_LEVELS]; // level l has 1 << (PA_L0_BITS + l*3) entries
  pa_chunk_t **chunks;          // L1 array of L2 blocks (sparse)
  uintptr_t search_addr;        // no free page below this address (hint)
  uintptr_t lo_chunk, hi_chunk; // grown chunk indices: [lo_chunk, hi_chunk)
  size_t free_pages;            // free pages in grown memory
  size_t scav_pages;            // free pages that are scavenged
  size_t total_pages;           // pages handed to pagealloc_grow
  pa_release_fn release;
  void *release_ctx;
} pagealloc_t;

// Summary packing helpers (exposed for tests).
pa_sum_t pa_pack(unsigned start, unsigned max, unsigned end);
unsigned pa_start(pa_sum_t s);
unsigned pa_max(pa_sum_t s);
unsigned pa_end(pa_sum_t s);

// pagealloc_init sets up an empty allocator (no memory grown). Returns 0, or -1
// with errno if the summary reservation fails. release may be NULL (no-op).
int pagealloc_init(pagealloc_t *p, pa_release_fn release, void *ctx);

// pagealloc_destroy unmaps all metadata (tests).
void pagealloc_destroy(pagealloc_t *p);

// pagealloc_grow adds [base, base+bytes) to the heap. base (non-zero: 0 is
// pagealloc_alloc's failure value) and bytes are multiples of PA_CHUNK_BYTES,
// below 2^47, and the range was never grown before. The new pages are free
// and scavenged (fresh from the OS, zero, not resident). Returns 0, or -1 with
// errno = EINVAL for bad arguments or ENOMEM if metadata could not be mapped.
int pagealloc_grow(pagealloc_t *p, uintptr_t base, size_t bytes);

// pagealloc_alloc finds the lowest-addressed run of npages free pages, marks it
// in use and returns its address, or 0 if there is none. *scav (if not NULL)
// receives how many of those pages were scavenged; their scavenged bits are
// cleared. npages >= 1.
uintptr_t pagealloc_alloc(pagealloc_t *p, size_t npages, size_t *scav);

// pagealloc_alloc_at marks [base, base + npages pages) in use if every page
// of it is grown and free, and returns true; otherwise changes nothing and
// returns false. *scav as for pagealloc_alloc. (Growing an object in place.)
bool pagealloc_alloc_at(pagealloc_t *p, uintptr_t base, size_t npages, size_t *scav);

// pagealloc_free marks [base, base + npages pages) free. Every page must be in
// use (a fatal error otherwise). Freed pages are not scavenged.
void pagealloc_free(pagealloc_t *p, uintptr_t base, size_t npages);

// pagealloc_free_released is pagealloc_free of pages the caller has already
// given back to the OS (zero, not resident): they are marked scavenged.
void pagealloc_free_released(pagealloc_t *p, uintptr_t base, size_t npages);

// pagealloc_fresh_run returns how many pages from addr on, at most max and
// within addr's 4 MiB chunk, are free and scavenged (a hint for populating
// ahead; the bits are not changed).
size_t pagealloc_fresh_run(const pagealloc_t *p, uintptr_t addr, size_t max);

// pagealloc_scavenge returns up to max_bytes of free, unscavenged memory to the
// OS, highest addresses first, in runs of whole pages, calling release for each
// run and marking the pages scavenged. Returns the bytes released.
size_t pagealloc_scavenge(pagealloc_t *p, size_t max_bytes);

// pagealloc_is_free reports whether the page holding addr is grown and free.
bool pagealloc_is_free(const pagealloc_t *p, uintptr_t addr);

// pagealloc_validate checks every invariant above and aborts with a message
// naming the broken one. Cost: proportional to grown memory.
void pagealloc_validate(const pagealloc_t *p);

#endif // GOMEM_MPAGEALLOC_H
