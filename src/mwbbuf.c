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
// The explicit barrier (GOMEM_BARRIER=explicit): a program that stores
// every heap pointer with gm_store(slot, ptr) needs no page protection.
// While marking runs (gc_blacken), gm_store records the new value (if not
// NULL) in the calling thread's buffer (Go's wbBuf, 256 entries); a full
// buffer is greyed at once, in a critical section; the last stop greys
// every thread's buffer as a root range and empties it. That is Dijkstra's
// insertion barrier: no black object can come to hide a white one. It
// suffices because stacks, registers and globals are scanned again at the
// last stop. Go shades the old value too (its hybrid barrier) so that it
// need not rescan stacks; gomem rescans them anyway (C stacks are scanned
// conservatively, with the thread stopped), so the deletion half would only
// cost: the old values are scattered (three cache misses each to find and
// test their spans) and everything they reach survives the cycle as
// floating garbage. On gclatency it took 0.9 ms of a 1.9 ms iteration
// while marking ran, and the marked heap grew from 160 to 210 MB.
// A store that read gc_blacken before the first stop holds its new value in
// a register at that stop (a root); an entry written but not yet counted
// when the thread stopped is in its registers too.
//
// Invariants: the written-page rescan runs in the collecting thread while
// gc_blacken is set (pages are armed), the world running (pre-cleaning
// rounds) or stopped (the last round, after which no write can be missed);
// never in explicit mode, where no page is armed.
#include <string.h>

#include "arena.h"
#include "interpose.h"
#include "mgcmark.h"
#include "mgcsweep.h"
#include "mgcwork.h"
#include "mheap.h"
#include "os.h"
#include "threads.h"

// queue_written: the marked objects of GC spans on the written pages
// [lo, hi) go back on the grey queue (of a large object, the pages' part).
GM_NO_SANITIZE static void queue_written(void *ctx, uintptr_t lo, uintptr_t hi) {
  gcwork_t *gw = ctx;
  uintptr_t last = 0; // the last object queued: a page run may cross it
  for (uintptr_t pg = lo; pg < hi; pg += 4096) {
    mspan_t *s = spanof(pg);
    if (s == NULL || gc_span_kind(s) != SPAN_GC_SCAN)
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

bool gc_barrier_explicit; // gc_init: GOMEM_BARRIER=explicit

size_t gc_mark_rescan_written(void) {
  if (gc_barrier_explicit)
    return 0;
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

void wbbuf_shade_range(void *ctx, uintptr_t lo, uintptr_t hi) {
  (void)ctx;
  m_acquire(); // (no stop in here: gc_blacken stays as read)
  if (relaxed_load(&gc_blacken))
    gc_mark_shade((const uintptr_t *)lo, (hi - lo) / sizeof(uintptr_t));
  m_release();
}

// wb_flush greys the calling thread's buffered pointers (if marking still
// runs) and empties the buffer; in a critical section, so that no stop
// finds it half done.
static GM_NOINLINE void wb_flush(gthread_t *r) {
  m_acquire();
  if (relaxed_load(&gc_blacken))
    gc_mark_shade(r->wb, r->wb_n);
  r->wb_n = 0;
  m_release();
}

// wb_record_slow: the buffer is full, or the thread is one gomem does not
// know (one of its own, or one the program did not register: its stack is
// no root either), which shades at once; registering it here would make a
// marker thread stoppable.
static GM_NOINLINE void wb_record_slow(uintptr_t new) {
  gthread_t *r = gm_tls_m.thread;
  if (unlikely(r == NULL)) {
    m_acquire();
    if (relaxed_load(&gc_blacken))
      gc_mark_shade(&new, 1);
    m_release();
    return;
  }
  wb_flush(r);
  r->wb[0] = new;
  atomic_signal_fence(memory_order_seq_cst); // (the entry before the count, for a stop)
  r->wb_n = 1;
}

// gm_store_on_ mirrors gc_blacken for the inline gm_store (gomem.h), which
// reads it with a relaxed atomic load: set and cleared with it, in a stop.
// (Read through the GOT by the library too: a program linked without PIE
// holds the variable itself, by a copy relocation.)
GM_EXPORT volatile int gm_store_on_;

// gm_store_record_: the barrier's slow path, while a cycle marks: the
// pointer goes in the thread's buffer (13 instructions, no stack frame).
GM_EXPORT void gm_store_record_(void *ptr) {
  gthread_t *r = gm_tls_m.thread;
  if (likely(ptr != NULL && r != NULL && r->wb_n < WB_ENTRIES)) {
    size_t n = r->wb_n;
    r->wb[n] = (uintptr_t)ptr;
    atomic_signal_fence(memory_order_seq_cst); // (the entry before the count, for a stop)
    r->wb_n = n + 1;
  } else if (ptr != NULL) {
    wb_record_slow((uintptr_t)ptr);
  }
}

// gm_store, the function (the header's gm_store is the same code inline).
GM_EXPORT void(gm_store)(void **slot, void *ptr) {
  if (unlikely(relaxed_load(&gc_blacken)))
    gm_store_record_(ptr);
  *slot = ptr;
}

void wbbuf_set_marking(int on) {
  relaxed_store(&gc_blacken, on);
  __atomic_store_n(&gm_store_on_, on, __ATOMIC_RELAXED);
}

GM_EXPORT void gm_store_bulk(void **dst, void *const *src, size_t n) {
  if (unlikely(relaxed_load(&gc_blacken)))
    for (size_t i = 0; i < n; i++)
      gm_store_record_(src[i]);
  memmove(dst, src, n * sizeof *dst);
}

void wbbuf_roots(void (*fn)(void *ctx, uintptr_t lo, uintptr_t hi), void *ctx) {
  for (gthread_t *r = threads_list; r; r = r->next)
    if (r->wb_n != 0)
      fn(ctx, (uintptr_t)r->wb, (uintptr_t)(r->wb + r->wb_n));
}

void wbbuf_reset_all(void) {
  for (gthread_t *r = threads_list; r; r = r->next)
    r->wb_n = 0;
}

void wbbuf_thread_exit(gthread_t *r) {
  if (r->wb_n != 0)
    wb_flush(r);
}
