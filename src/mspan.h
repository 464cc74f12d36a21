// mspan.h: the span, a run of pages holding objects of one size class or
// one large object, and the helpers every half of gomem uses on its window
// and bitmap (mspan.c; twin of Go's mspan in mheap.go and of mbitmap.go).
//
// Windows. A small span's window is one alloc_bits word whose free slots
// were copied into alloc_cache, from which allocation hands them out. The
// two halves of gomem keep the bitmap differently meanwhile:
//   malloc's spans (SPAN_MANUAL)  a slot's bit is set when it is handed out
//     (span_take_slot), so allocated <=> bit set, and a free's double-free
//     test is one bit; the window's free slots are clear in alloc_bits.
//   the collector's spans  loading the window sets its free slots' bits
//     (reserves them; the marker and sweeper read the bitmap with the window
//     snapshot, mgcsweep.h), so allocated <=> bit set && !(slot in window &&
//     alloc_cache bit set).
// In both, nfree counts the free slots outside the window (span_validate, on
// every slow path of the debug build, checks it) and bits past nelems are
// always 1.
//
// Locking: none inside. A span's owner fields belong to its owning thread,
// or to its central list's lock while nobody owns it (see struct mspan).
#ifndef GOMEM_MSPAN_H
#define GOMEM_MSPAN_H

#include "internal.h"

enum span_state {
  SPAN_DEAD = 0, // on the fixalloc free list
  SPAN_SMALL,    // holds objects of sizeclass >= 1
  SPAN_LARGE,    // holds one large object (sizeclass 0)
};

// Where a span is listed. NONE: a thread's current span for its class (or
// not a small span). PARTIAL/FULL: mcentral's lists (mcentral.lock).
// OWN_PARTIAL/OWN_FULL: its owner's mcache lists (owner only).
// LIST_GC + 0..3: a gcentral list (mgcsweep.c: partial/full x sweepgen parity).
enum span_list_id {
  LIST_NONE = 0,
  LIST_PARTIAL,
  LIST_FULL,
  LIST_OWN_PARTIAL,
  LIST_OWN_FULL,
  LIST_GC
};

// Flags in the low bits of mspan.xfree (objects are 8-byte aligned):
//   XF_UNOWNED  no thread owns the span (it is on an mcentral list): remote
//               frees go through mcentral.lock, not the list.
//   XF_FULL     the owner parked the span on its full list and will not look
//               at it again unless told: the next remote free must notify it.
//   XF_NOTED    a notification for the span is on (or entering) its owner's
//               xspans list; set by the notifying freer, cleared only by the
//               owner when it takes that list. While set, the span is never
//               notified again, re-parked with XF_FULL, or given away.
#define XF_UNOWNED ((uintptr_t)1)
#define XF_FULL ((uintptr_t)2)
#define XF_NOTED ((uintptr_t)4)
#define XF_FLAGS ((uintptr_t)7)

// WINDOW_NONE in mspan.window: no window loaded (the span is not current).
#define WINDOW_NONE 0xFFFF
#define TRIGGER_NONE 0xFFFF // above any nfree

typedef struct mcache mcache_t;
typedef struct mspan mspan_t;

// What a span's objects are for.
enum span_kind {
  SPAN_MANUAL = 0, // malloc/free objects; never scanned or swept
  SPAN_GC_SCAN,    // gm_alloc objects: scanned conservatively
  SPAN_GC_NOSCAN,  // gm_alloc_noscan objects: never scanned
};

typedef struct gcbits gcbits_t; // a GC span's collector state (mgcsweep.h)

struct mspan {
  // Line 0: what every free of an object of the span reads, and the first
  // bitmap words, so that freeing into a span of up to 192 objects (every
  // class of 48 bytes and up) reads one line of the record. The fields before
  // alloc_bits change only when the span is created or changes owner.
  uintptr_t base;    // first byte (immutable while in use)
  uint32_t limit;    // nelems * elemsize: offsets of objects are below it
                     // (0 for large spans and span_empty; immutable)
  uint32_t elemsize; // immutable while in use
  uint32_t divmul;   // immutable: offset * divmul >> 32 == offset / elemsize
  uint16_t nelems;   // immutable
  uint8_t sizeclass; // immutable; 0 for large spans
  uint8_t kind;      // enum span_kind (immutable while in use)
  // owner: the mcache holding the span, or NULL. Written only by the owning
  // thread (to itself when taking the span, to NULL when giving it away);
  // other threads read it only to learn "not mine": relaxed atomics suffice.
  // Always NULL for GC spans (they are cached, never owned: see mgcsweep.c).
  _Atomic(mcache_t *) owner;
  // GC spans only (kind != SPAN_MANUAL; immutable while in use):
  gcbits_t *gc; // mark bits and window snapshot
  // alloc_bits: 1 = allocated (or, in GC spans, reserved by the window: see
  // the top of the file). Bits past nelems are always 1. Owner fields (see
  // below). Written by the owner when it hands out a slot (malloc's spans),
  // when a window loads (GC spans), and when frees reach the bitmap (most
  // owner frees go to its lifo).
  uint64_t alloc_bits[GM_BITMAP_WORDS];
  size_t npages; // immutable while in use (large: grows under mheap.lock)
  // sweepgen: == gm_sweepgen: swept this cycle; otherwise unswept. Written by
  // the span's sweeper (mcentral lock, or the caching thread), read by all.
  _Atomic uint32_t sweepgen;
  uint8_t state;   // enum span_state (mheap.lock to change)
  uint8_t sampled; // large spans: a heap profile sample (mprof.c; set by the allocating thread)

  // Owner-hot line. Owner fields: while a thread owns the span they belong
  // to it (no atomics); while no thread does, to mcentral.lock.
  _Alignas(64) uint64_t alloc_cache; // free slots of the window (1 = free, reserved)
  uintptr_t window_base;             // address of the object at bit 0 of alloc_cache
  uint16_t nfree;                    // free slots outside the window
  // trigger: an owner free that brings nfree to it must look at the span's
  // list (OWN_FULL: partial_min, OWN_PARTIAL: nelems, otherwise TRIGGER_NONE),
  // so the free path tests one predictable condition.
  uint16_t trigger;
  uint16_t window;      // alloc_bits word that alloc_cache stands for, or WINDOW_NONE
  uint8_t list;         // enum span_list_id (same protection as the links)
  uint8_t needzero;     // large spans: memory may be dirty (mheap.lock)
  uint8_t released;     // large spans: every page given back to the OS by the
                        // owner before its free (hardened build; owner)
  mspan_t *next, *prev; // list links (mcentral.lock, or owner for OWN_ lists)

  // Remote-hot line: written by other threads' frees, so kept off the
  // owner's lines.
  // xfree: remote free list (objects linked through their first word) | XF_*
  // flags. Pushed with CAS by any thread; taken by the owner (CAS keeping
  // XF_NOTED) or, with mcentral.lock held, by the thread giving the span away.
  _Alignas(64) _Atomic uintptr_t xfree;
  // xnext: link in the owner's xspans notification stack; written by the one
  // freer whose CAS set XF_NOTED, read by the owner after taking the stack.
  mspan_t *xnext;
};

void span_init_small(mspan_t *s, uint8_t sizeclass);
bool span_next_window(mspan_t *s);
void span_bad_object(uintptr_t p) __attribute__((noreturn, cold));

// span_object_index returns the index of the object starting at p in small
// span s; a pointer to the inside of an object, to the tail past the last
// object, or misaligned, is a fatal error.
GM_INLINE uint16_t span_object_index(const mspan_t *s, uintptr_t p) {
  uintptr_t off = p - s->base;
  uint32_t idx = (uint32_t)(((uint64_t)off * s->divmul) >> 32);
  if (unlikely((uintptr_t)idx * s->elemsize != off || idx >= s->nelems))
    span_bad_object(p);
  return (uint16_t)idx;
}
// span_div: off * divmul for an offset off < limit of small span s. Its
// high half is the object's index, off / elemsize. Its low half is below
// divmul exactly when off is a multiple of elemsize (an object's start): for
// off = q * elemsize + r, elemsize * divmul = 2^32 + e with e < elemsize, so
// the low half is q * e + r * divmul, which the size classes keep below 2^32
// (test_span checks every offset of every class). So free's object-start
// test is one compare with the product it already has.
GM_INLINE uint64_t span_div(const mspan_t *s, uintptr_t off) {
  return (uint64_t)off * s->divmul;
}
#define SPAN_DIV_INDEX(d) ((uint32_t)((d) >> 32))
#define SPAN_DIV_EXACT(s, d) ((uint32_t)(d) < (s)->divmul)
// span_allocated: is object idx of small span s allocated? Its bit is set
// and it is not a free slot of the window (still in alloc_cache; in malloc's
// spans such a slot's bit is clear anyway).
GM_INLINE bool span_allocated(const mspan_t *s, uint16_t idx) {
  uint64_t bit = 1ULL << (idx & 63);
  unsigned w = idx >> 6;
  return (s->alloc_bits[w] & bit) && !(w == s->window && (s->alloc_cache & bit));
}
void span_validate(const mspan_t *s);
size_t span_object_size(const mspan_t *s, uintptr_t p); // fatal unless p starts an object

// span_take_slot hands out the lowest free slot of the window of malloc span
// s (alloc_cache != 0) and sets its bit: the allocation fast path's core,
// 6 instructions (blsi, xor, ctz, the bit's or into alloc_bits).
GM_INLINE void *span_take_slot(mspan_t *s) {
  uint64_t v = s->alloc_cache, bit = v & -v;
  s->alloc_cache = v ^ bit;
  s->alloc_bits[s->window] |= bit;
  return (void *)(s->window_base + (uint32_t)__builtin_ctzll(v) * (uintptr_t)s->elemsize);
}

// span_take_reserved hands out the lowest free slot of the window of GC span
// s (alloc_cache != 0), whose bit the window's load already set.
GM_INLINE void *span_take_reserved(mspan_t *s) {
  uint64_t v = s->alloc_cache;
  s->alloc_cache = v & (v - 1);
  return (void *)(s->window_base + (uint32_t)__builtin_ctzll(v) * (uintptr_t)s->elemsize);
}

// span_unreserve_window gives s's unused window slots back (to nfree, and in
// a GC span to its bitmap) and unloads the window; returns the slots given
// back (bits of the window).
GM_INLINE uint64_t span_unreserve_window(mspan_t *s) {
  uint64_t left = s->alloc_cache;
  if (left != 0) {
    if (s->kind != SPAN_MANUAL)
      s->alloc_bits[s->window] &= ~left;
    s->nfree += (uint16_t)gm_popcount(left);
    s->alloc_cache = 0;
  }
  s->window = WINDOW_NONE;
  return left;
}

// partial_min returns how many free slots make a span partial: 1/4 of its
// slots (at least 1), so that taking a span buys a window's worth of objects.
GM_INLINE uint16_t partial_min(const mspan_t *s) {
  return s->nelems >= 8 ? s->nelems / 4 : 1;
}

// Frees applied to a span's bitmap (the owner's, or under its central lock):
// free_apply frees one object (fatal on a double free); span_take_xfree
// takes the span's remote free list (owner); span_apply_xfree applies such a
// list (every link checked to lie in the span); span_collect_remote does both.
void free_apply(mspan_t *s, uintptr_t p);
uintptr_t span_take_xfree(mspan_t *s);
void span_apply_xfree(mspan_t *s, uintptr_t list);
void span_collect_remote(mspan_t *s);

#endif // GOMEM_MSPAN_H
