// stack.c: the stack allocator for coroutines (see stack.h).
#include <errno.h>
#include <string.h>

#include "internal.h"
#include "os.h"
#include "stack.h"

static const size_t class_size[STACK_CLASSES] = {64 << 10, 256 << 10, 1 << 20, 8 << 20};

#define REGION_SHIFT 32 // a region is 4 GiB of address space, of one class
#define REGION_BYTES ((uintptr_t)1 << REGION_SHIFT)
#define MAX_REGIONS 1024 // 4 TiB: 65,536 slots of 64 KiB per region
#define GRANULES ((size_t)1 << (47 - REGION_SHIFT))
#define STACK_CACHE 16 // slots per class in a thread's cache (Go's stackcache)

typedef struct region {
  uintptr_t base; // 4 GiB-aligned
  int cls;
  size_t fresh; // slots carved so far (stack_lock)
} region_t;

static gm_mutex_t stack_lock = GM_MUTEX_INIT(RANK_STACK);
static region_t regions[MAX_REGIONS]; // append-only; [0, nregions) published
static _Atomic unsigned nregions;
// granule_region[addr >> 32] = 1 + index of the region covering addr, or 0.
static _Atomic uint16_t granule_region[GRANULES];
static int carving[STACK_CLASSES] = {-1, -1, -1, -1}; // region being carved (stack_lock)
static uintptr_t free_list[STACK_CLASSES];           // global free slots (stack_lock)
// The mprotect fallback splits a mapping per slot: it stops at half the
// kernel's vm.max_map_count, leaving the rest to the program.
static size_t splits, split_limit; // stack_lock

static __thread struct {
  uint8_t n[STACK_CLASSES];
  uintptr_t slot[STACK_CLASSES][STACK_CACHE];
} cache;

size_t stack_class_size(int c) {
  return class_size[c];
}

int stack_class_for(size_t bytes) {
  if (bytes == 0)
    return 0;
  for (int c = 0; c < STACK_CLASSES; c++)
    if (bytes <= class_size[c] - STACK_GUARD)
      return c;
  return -1;
}

// A free slot on the global list keeps its top page; the list link is the
// last word of the slot.
static uintptr_t *link_of(uintptr_t lo, int c) {
  return (uintptr_t *)(lo + class_size[c]) - 1;
}

// new_region reserves a region for class c (stack_lock held). -1: no memory.
static int new_region(int c) {
  unsigned n = atomic_load_explicit(&nregions, memory_order_relaxed);
  if (n == MAX_REGIONS)
    return -1;
  void *p = os_reserve_aligned(REGION_BYTES, REGION_BYTES);
  if (p == NULL || (uintptr_t)p >> 47)
    return -1;
  regions[n] = (region_t){(uintptr_t)p, c, 0};
  atomic_store_explicit(&granule_region[(uintptr_t)p >> REGION_SHIFT], (uint16_t)(n + 1),
                        memory_order_release);
  atomic_store_explicit(&nregions, n + 1, memory_order_release);
  return (int)n;
}

// carve returns a never-used slot of class c with its guard (stack_lock
// held), or 0 with errno.
static uintptr_t carve(int c) {
  int r = carving[c];
  if (r < 0 || regions[r].fresh == REGION_BYTES / class_size[c]) {
    if ((r = new_region(c)) < 0) {
      errno = ENOMEM;
      return 0;
    }
    carving[c] = r;
  }
  uintptr_t lo = regions[r].base + regions[r].fresh * class_size[c];
  if (split_limit == 0)
    split_limit = os_max_map_count() / 2;
  int g = os_guard((void *)lo, STACK_GUARD, !gm_opt.stack_mprotect, splits < split_limit);
  if (g < 0) {
    errno = ENOMEM; // the mapping limit: no guard, no stack
    return 0;
  }
  splits += g == 0;
  regions[r].fresh++;
  return lo;
}

uintptr_t stack_alloc(int c) {
  uintptr_t lo;
  if (cache.n[c] > 0) {
    lo = cache.slot[c][--cache.n[c]];
  } else {
    gm_lock(&stack_lock);
    lo = free_list[c];
    if (lo != 0)
      free_list[c] = *link_of(lo, c);
    else
      lo = carve(c);
    gm_unlock(&stack_lock);
    if (lo == 0)
      return 0;
  }
  return lo;
}

// release_to_list releases all but the slot's top page and lists it
// (stack_lock not held: the madvise runs first).
void stack_fork_init(void) {
  lock_fork_register(&stack_lock);
}

static void release_to_list(uintptr_t lo, int c) {
  os_release(NULL, lo + STACK_GUARD, class_size[c] - STACK_GUARD - 4096);
  gm_lock(&stack_lock);
  *link_of(lo, c) = free_list[c];
  free_list[c] = lo;
  gm_unlock(&stack_lock);
}

void stack_free(uintptr_t lo, int c) {
  if (cache.n[c] < STACK_CACHE) {
    cache.slot[c][cache.n[c]++] = lo;
    return;
  }
  release_to_list(lo, c);
}

void stack_thread_exit(void) {
  for (int c = 0; c < STACK_CLASSES; c++)
    while (cache.n[c] > 0)
      release_to_list(cache.slot[c][--cache.n[c]], c);
}

bool stack_slot_of(uintptr_t addr, uintptr_t *lo, int *c) {
  if (addr >> 47)
    return false;
  unsigned r = atomic_load_explicit(&granule_region[addr >> REGION_SHIFT], memory_order_acquire);
  if (r == 0)
    return false;
  const region_t *g = &regions[r - 1];
  size_t size = class_size[g->cls];
  *lo = g->base + (addr - g->base) / size * size;
  *c = g->cls;
  return true;
}
