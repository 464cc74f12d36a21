// arena.c: the arena map, gomem's answer to "which span owns this address?"
//
// The 47-bit address space is cut into 64 MiB arenas. arena_l1 (in .bss) has
// 2^10 entries, each an L2 array of 2^11 heap_arena pointers; a heap_arena
// holds the page -> span table of one arena. spanof() (internal.h) walks the
// map in three dependent loads for any address, including addresses that are
// not gomem's: holes are static empty tables (arena_l2_empty, arena_empty)
// whose final answer is NULL, "not ours".
//
// Entries are only ever added (arenas are never unmapped), always under
// mheap.lock, and published with release stores so a lock-free reader sees a
// fully built L2 array / heap_arena. Span pointers inside a heap_arena change
// under mheap.lock; readers only look up pointers they own or were given,
// whose span cannot change under them.
#include "arena.h"
#include "mheap.h"
#include "os.h"

#define L2_ENTRIES ((size_t)1 << GM_ARENA_L2_BITS)

heap_arena_t arena_empty;

// Static initialisers: the map must answer before gomem initialises (free of
// a foreign pointer as the first call).
#define R4(x) x, x, x, x
#define R16(x) R4(x), R4(x), R4(x), R4(x)
#define R256(x)                                                                                    \
  R16(x), R16(x), R16(x), R16(x), R16(x), R16(x), R16(x), R16(x), R16(x), R16(x), R16(x), R16(x),  \
      R16(x), R16(x), R16(x), R16(x)
#define R1024(x) R256(x), R256(x), R256(x), R256(x)
_Static_assert(GM_ARENA_L1_BITS == 10 && GM_ARENA_L2_BITS == 11, "arena map initialisers");
heap_arena_t *arena_l2_empty[1 << GM_ARENA_L2_BITS] = {R1024(&arena_empty), R1024(&arena_empty)};
heap_arena_t **arena_l1[1 << GM_ARENA_L1_BITS] = {R1024(arena_l2_empty)};

static size_t arena_meta_bytes;

// arena_of returns the metadata of the arena holding p, or NULL.
heap_arena_t *arena_of(uintptr_t p) {
  if (p >> GM_ADDR_BITS)
    return NULL;
  heap_arena_t **l2 = arena_l1[p >> (GM_ARENA_SHIFT + GM_ARENA_L2_BITS)];
  heap_arena_t *ha = l2[(p >> GM_ARENA_SHIFT) & (L2_ENTRIES - 1)];
  return ha == &arena_empty ? NULL : ha;
}

// arena_register creates the metadata of every arena in [base, base+bytes).
// base and bytes are multiples of GM_ARENA_SIZE. Caller holds mheap.lock.
// Returns 0, or -1 if metadata could not be mapped.
int arena_register(uintptr_t base, size_t bytes) {
  gm_assert(base % GM_ARENA_SIZE == 0 && bytes % GM_ARENA_SIZE == 0);
  for (uintptr_t a = base; a < base + bytes; a += GM_ARENA_SIZE) {
    if (a >> GM_ADDR_BITS)
      return -1;
    size_t i1 = a >> (GM_ARENA_SHIFT + GM_ARENA_L2_BITS);
    heap_arena_t **l2 = arena_l1[i1];
    if (l2 == arena_l2_empty) {
      l2 = os_reserve(L2_ENTRIES * sizeof(*l2), 0);
      if (l2 == NULL)
        return -1;
      for (size_t i = 0; i < L2_ENTRIES; i++)
        l2[i] = &arena_empty;
      arena_meta_bytes += L2_ENTRIES * sizeof(*l2);
      __atomic_store_n(&arena_l1[i1], l2, __ATOMIC_RELEASE);
    }
    size_t i2 = (a >> GM_ARENA_SHIFT) & (L2_ENTRIES - 1);
    if (l2[i2] != &arena_empty)
      continue;
    heap_arena_t *ha = os_reserve(sizeof(heap_arena_t), 0);
    if (ha == NULL)
      return -1;
    arena_meta_bytes += sizeof(heap_arena_t);
    __atomic_store_n(&l2[i2], ha, __ATOMIC_RELEASE);
  }
  return 0;
}

// arena_set_spans points every page of [base, base + npages pages) at s (NULL
// for pages going free). The pages are in registered arenas. Caller holds
// mheap.lock.
void arena_set_spans(uintptr_t base, size_t npages, mspan_t *s) {
  uintptr_t p = base, end = base + npages * GM_PAGE_SIZE;
  while (p < end) {
    heap_arena_t *ha = arena_of(p);
    gm_assert(ha != NULL);
    size_t i = (p >> GM_PAGE_SHIFT) & (GM_PAGES_PER_ARENA - 1);
    for (; i < GM_PAGES_PER_ARENA && p < end; i++, p += GM_PAGE_SIZE)
      __atomic_store_n(&ha->spans[i], s, __ATOMIC_RELEASE);
  }
}

size_t arena_metadata_bytes(void) {
  return arena_meta_bytes;
}
