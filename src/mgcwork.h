// mgcwork.h: grey-object work buffers, twin of Go's mgcwork.go.
//
// A mark worker keeps grey objects in two private buffers (gcwork: w1 is
// pushed and popped, w2 is a spare, so a worker alternating around a buffer
// boundary does not touch the global lists every time). Full buffers go to a
// global list other workers take from; empty ones to a global free list.
// Buffers are 4 KiB, mapped from the OS in chunks and never returned.
//
// A work entry encodes a range to scan: its address in the low 47 bits and
// its length in words above them (at most GC_OBLET_WORDS), so scanning an
// object needs no second arena-map lookup. Large objects are split into
// oblets of 128 KiB (as in Go) so that one object does not serialise the
// mark phase.
#ifndef GOMEM_MGCWORK_H
#define GOMEM_MGCWORK_H

#include "internal.h"
#include "mspan.h"

#if defined(__SANITIZE_THREAD__)
#define GC_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GC_TSAN 1
#endif
#endif
#ifdef GC_TSAN
#include <sanitizer/tsan_interface.h>
#endif

// Scanning reads other threads' stacks, redzones included, and objects the
// program is writing: no sanitizer instrumentation on those loads.
#define GM_NO_SANITIZE __attribute__((no_sanitize_address, no_sanitize_thread))

// gc_span_kind returns the kind of span s, which a scanner found in the
// arena map, with acquire: a GC span's set-up (gc_span_setup) stores the
// kind last, with release, so a scanner that finds a GC kind sees the span
// and its mark bits set up, however new the span. TSan does not see that
// acquire, made in a GM_NO_SANITIZE function, but it sees the scanner's
// callees that the compiler keeps out of line and instruments (set_mark,
// object_size): it is told of the acquire, or it reports each span set up
// while marking runs, and found by a scanner before its first object is
// marked black, as a race with that set-up.
GM_INLINE uint8_t gc_span_kind(const mspan_t *s) {
  uint8_t kind = __atomic_load_n(&s->kind, __ATOMIC_ACQUIRE);
#ifdef GC_TSAN
  if (kind != SPAN_MANUAL)
    __tsan_acquire((void *)&s->kind);
#endif
  return kind;
}

#define WB_CAP 510 // entries per 4 KiB buffer
#define GC_ENTRY_ADDR_BITS 47
#define GC_OBLET_BYTES ((uintptr_t)128 << 10)

typedef struct workbuf {
  struct workbuf *next; // global list link (wb lock)
  uintptr_t n;          // entries in use (owner worker)
  uintptr_t obj[WB_CAP];
} workbuf_t;

typedef struct gcwork {
  workbuf_t *w1, *w2;
  uint64_t bytes_marked; // object bytes this worker marked this cycle
  uint64_t scanned;      // bytes this worker scanned this cycle
  uint64_t published;    // of which added to gc_scan_done
} gcwork_t;

extern _Atomic long wb_nfull;    // buffers on the global full list
extern _Atomic long wb_nentries; // the entries they hold

void gcwork_init(void); // at gc_init
void gcw_init(gcwork_t *gw);
void gcw_dispose(gcwork_t *gw); // gives its (empty) buffers back
void gcw_flush(gcwork_t *gw);   // publishes its entries on the global list
workbuf_t *gcw_put_slow(gcwork_t *gw);
uintptr_t gcw_get_slow(gcwork_t *gw);
void gcw_balance(gcwork_t *gw); // share w2 when others are starving
// gcw_idle: the caller, one of nworkers, has no work (its buffers and the
// global list are empty). It waits, counted in *nidle, until some worker
// publishes work (returns false: look again) or all are idle (returns true:
// the work is done; nothing can appear any more).
bool gcw_idle(_Atomic unsigned *nidle, unsigned nworkers);

// gc_run_workers runs worker on the caller and on every helper thread
// (gc_start_helpers, mgcmark.h) and returns the sum of what they return
// (the bytes they marked).
uint64_t gc_run_workers(uint64_t (*worker)(void));

GM_INLINE uintptr_t gc_entry(uintptr_t addr, uintptr_t bytes) {
  return addr | (bytes / 8) << GC_ENTRY_ADDR_BITS;
}

GM_INLINE void gcw_put(gcwork_t *gw, uintptr_t entry) {
  workbuf_t *b = gw->w1;
  if (unlikely(b->n == WB_CAP))
    b = gcw_put_slow(gw);
  b->obj[b->n++] = entry;
}

// gcw_put_object queues the object [base, base + size) for scanning, in
// oblets.
GM_INLINE void gcw_put_object(gcwork_t *gw, uintptr_t base, uintptr_t size) {
  while (size > GC_OBLET_BYTES) {
    gcw_put(gw, gc_entry(base, GC_OBLET_BYTES));
    base += GC_OBLET_BYTES;
    size -= GC_OBLET_BYTES;
  }
  gcw_put(gw, gc_entry(base, size));
}

// gcw_get returns a work entry, or 0 when this worker and the global list
// have none.
GM_INLINE uintptr_t gcw_get(gcwork_t *gw) {
  workbuf_t *b = gw->w1;
  if (likely(b->n != 0))
    return b->obj[--b->n];
  return gcw_get_slow(gw);
}

#endif // GOMEM_MGCWORK_H
