// mwbbuf.c: what the program wrote while marking ran beside it, twin of
// Go's mwbbuf.go (design.md §14).
//
// Go's compiler puts a write barrier at every pointer store; C has none.
// gomem learns of the program's writes from the kernel instead: os_wtrack
// (userfaultfd write-protection in asynchronous mode, read and re-armed by
// the PAGEMAP_SCAN ioctl) reports every heap page written since it was
// armed. The marked objects on those pages may now hold pointers to
// objects nobody has marked: they go back on the grey queue and are scanned
// again (incremental update: Boehm GC's mostly-parallel marking, with the
// kernel's dirty bits in place of its mprotect faults). Unmarked objects on
// those pages need nothing: they will be scanned when they are reached.
//
// Invariant: called by the collecting thread while gc_blacken is set (pages
// are armed), the world running (pre-cleaning rounds) or stopped (the last
// round, after which no write can be missed).
#include "arena.h"
#include "mgcmark.h"
#include "mgcsweep.h"
#include "mgcwork.h"
#include "mheap.h"
#include "os.h"

// queue_written: the marked objects of GC spans on the written pages
// [lo, hi) go back on the grey queue (of a large object, the pages' part).
GM_NO_SANITIZE static void queue_written(void *ctx, uintptr_t lo, uintptr_t hi) {
  gcwork_t *gw = ctx;
  uintptr_t last = 0; // the last object queued: a page run may cross it
  for (uintptr_t pg = lo; pg < hi; pg += 4096) {
    mspan_t *s = spanof(pg);
    if (s == NULL || s->kind != SPAN_GC_SCAN)
      continue;
    gcbits_t *g = s->gc;
    if (s->sizeclass == 0) {
      if (relaxed_load(&g->mark[0]) & 1)
        gcw_put_object(gw, pg, 4096);
      continue;
    }
    uintptr_t end = s->base + s->limit, e = pg + 4096 < end ? pg + 4096 : end;
    if (pg >= end)
      continue;
    uint32_t i0 = (uint32_t)(((uint64_t)(pg - s->base) * s->divmul) >> 32);
    uint32_t i1 = (uint32_t)(((uint64_t)(e - 1 - s->base) * s->divmul) >> 32);
    for (uint32_t i = i0; i <= i1; i++) {
      uintptr_t obj = s->base + (uintptr_t)i * s->elemsize;
      if (obj != last && ((relaxed_load(&g->mark[i >> 6]) >> (i & 63)) & 1)) {
        gcw_put_object(gw, obj, s->elemsize);
        last = obj;
      }
    }
  }
}

size_t gc_mark_rescan_written(void) {
  gcwork_t gw;
  gcw_init(&gw);
  size_t pages = 0;
  for (size_t i = 0, n = mheap_nranges(); i < n; i++) {
    uintptr_t base;
    size_t bytes;
    mheap_range(i, &base, &bytes);
    ssize_t k = os_wtrack_fetch(base, bytes, queue_written, &gw);
    if (k < 0)
      gm_fatal("collector: the kernel stopped tracking writes", (void *)base);
    pages += (size_t)k;
  }
  gcw_flush(&gw);
  gcw_dispose(&gw);
  return pages;
}

