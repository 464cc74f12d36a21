// test_arena: the arena map answers "which span owns this address?" for
// object starts, interiors, span boundaries, free pages and foreign addresses.
#include <string.h>
#include <sys/mman.h>

#include "internals.h"
#include "test.h"

static int global_var;

int main(void) {
  if (GM_SECURE) { // large objects sit between guard pages, flush against the end
    test_skip("arena map and span geometry", "the hardened build's layout differs by design");
    return test_done();
  }
  int local = 0;
  // Foreign addresses: stack, global, mmap, NULL, addresses above 47 bits.
  CHECK(spanof((uintptr_t)&local) == NULL);
  CHECK(spanof((uintptr_t)&global_var) == NULL);
  void *m = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(spanof((uintptr_t)m) == NULL && !gm_owns(m));
  volatile uintptr_t far[] = {0, ~(uintptr_t)0, (uintptr_t)1 << 47}; // not constant-folded
  CHECK(spanof(far[0]) == NULL && spanof(far[1]) == NULL && spanof(far[2]) == NULL);

  // Small objects: start and interior map to the same span; that span's
  // range covers the object.
  char *p = gm_malloc(100);
  mspan_t *s = spanof((uintptr_t)p);
  CHECK(s != NULL && s->sizeclass == gm_class_of(100));
  CHECK(spanof((uintptr_t)p + 50) == s && spanof((uintptr_t)p + 111) == s);
  CHECK(s->base <= (uintptr_t)p && (uintptr_t)p < s->base + s->npages * GM_PAGE_SIZE);
  CHECK(spanof(s->base) == s && spanof(s->base + s->npages * GM_PAGE_SIZE - 1) == s);
  CHECK(gm_owns(p) && gm_owns(p + 99));
  CHECK(arena_of((uintptr_t)p) != NULL && arena_of((uintptr_t)&local) == NULL);

  // A large object spanning several pages: every page maps to its span; the
  // page after it does not (until something else takes it).
  size_t n = 5 * GM_PAGE_SIZE + 1;
  char *big = gm_malloc(n);
  mspan_t *ls = spanof((uintptr_t)big);
  CHECK(ls != NULL && ls->sizeclass == 0 && ls->base == (uintptr_t)big && ls->npages == 6);
  int all = 1;
  for (size_t off = 0; off < 6 * GM_PAGE_SIZE; off += 512)
    all &= spanof((uintptr_t)big + off) == ls;
  CHECK(all);
  CHECK(spanof((uintptr_t)big + 6 * GM_PAGE_SIZE) != ls);
  gm_free(big);
  CHECK(spanof((uintptr_t)big) == NULL);           // its pages are free now
  CHECK(arena_of((uintptr_t)big) != NULL);         // but still gomem's
  CHECK(pagealloc_is_free(&gm_heap.pages, (uintptr_t)big));

  // A huge object crossing arena boundaries (> 64 MiB).
  size_t hn = GM_ARENA_SIZE + 3 * GM_PAGE_SIZE;
  char *huge = gm_malloc(hn);
  CHECK(huge != NULL);
  mspan_t *hs = spanof((uintptr_t)huge);
  CHECK(hs && spanof((uintptr_t)huge + GM_ARENA_SIZE) == hs &&
        spanof((uintptr_t)huge + hn - 1) == hs);
  gm_free(huge);
  gm_free(p);
  munmap(m, 1 << 20);
  return test_done();
}
