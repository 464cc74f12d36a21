// secure.c: the hardened allocator (GM_SECURE builds: libgomem-secure.so,
// cmake -DGOMEM_SECURE=ON). The allocator's own malloc family is renamed
// core_* (gmcore.h); this file is the malloc family on top of it, trading
// speed and memory for catching misuse.
//
// Small objects (up to 32 KiB - 8). A request of n bytes takes a slot of the
// smallest class with room for n + 8 (16-byte aligned from 16 bytes):
//
//     [ object: n bytes | canary: cap - n bytes | trailer: 8 bytes ]
//       ^ p                                       ^ p + cap, cap = slot - 8
//
// The trailer encodes (n, kind, state) with a secret key and the slot's
// address; kind is malloc, new or new[]; state is free, busy or allocated.
// The canary bytes are a key-derived pattern, never zero. Invariants:
//   - a slot that is not allocated is all zero but its trailer (0 if never
//     used, else FREE; word 0 may hold the core's remote-free link when the
//     trailer is FREE); fresh spans are zeroed by mcentral, and the core's
//     per-thread lists are off (free.c), so the core never writes into a
//     free slot but for that link;
//   - an allocated slot's canary and trailer hold what malloc wrote.
// malloc checks the slot it is handed: trailer 0 or FREE and zero body
// (else: written after free); so memory comes back zeroed. free checks the
// trailer (allocated: else double free or corruption; kind: mismatched
// free/delete), the canary (overflow), and the slots of its span within 32 bytes on
// either side (their trailers; free ones zero), then zeroes the object, marks
// it FREE and holds it in the thread's quarantine (SEC_QUARANTINE objects,
// 256 KiB), from which a random one goes back to the core: reuse is delayed
// and its order random. At every allocation, the thread's last SEC_RECENT
// freed objects must still be zero at their start, and its last allocated
// one keep its trailer, canary and the trailer before it (a write after free
// or an overflow is caught at the next malloc, stdio's included). Checks that
// read slots other threads may write look only at spans this thread owns,
// and read a trailer before and after the bytes it guards: a freer writes
// BUSY, zeroes, then FREE, so a check that sees the trailer change skips.
//
// Large objects (secure_large.c; and alignments over 4 KiB) get pages of
// their own between two inaccessible guard pages, the object flush against
// the second (its end rounded down to its alignment; realloc leaves room for
// growth, and grows in place into free pages after the span), a canary on
// either side (SEC_SCAN bytes) and a header in the span record. free checks
// them, makes every page inaccessible and holds the span in a global
// quarantine (64 spans, 64 MiB), resident so that its pages come back
// without page faults; the scavenger gives back the pages of spans that
// stayed a tick. Malloc zeroes what it hands out.
//
// malloc(0) returns a distinct pointer into an inaccessible 1 GiB region.
// Pages of the heap no span has used are inaccessible too (mheap.c), so an
// overflow out of the heap's used part faults. The C++ operators new and
// delete are exported with their kinds; a sized delete must give the size
// that was allocated.
#include <errno.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "arena.h"
#include "os.h"
#include "secure.h"

#if GM_SECURE

// ---------------------------------------------------------------------------
// Set-up, encoding

uint64_t sec_key, canary_word;
uintptr_t zero_lo;
size_t os_page;
_Atomic int sec_ready;

static void sec_flush(mcache_t *c);

GM_NOINLINE void sec_init_slow(void) {
  int z = 0;
  if (!atomic_compare_exchange_strong(&sec_ready, &z, 1)) {
    while (atomic_load(&sec_ready) != 2)
      ;
    return;
  }
  gm_ensure_init();
  os_page = (size_t)sysconf(_SC_PAGESIZE);
  uint64_t k = lifo_key * 0x9e3779b97f4a7c15ull ^ os_nanotime();
  const uint8_t *r = (const uint8_t *)getauxval(AT_RANDOM);
  if (r != NULL) {
    uint64_t w;
    memcpy(&w, r + 8, sizeof w);
    k ^= w;
  }
  sec_key = k;
  canary_word = k | 0x0101010101010101ull;
  void *z0 = os_reserve(ZERO_REGION, 0);
  if (z0 == NULL || !os_protect(z0, ZERO_REGION, false))
    gm_fatal("hardened build: cannot reserve the zero-size region", NULL);
  zero_lo = (uintptr_t)z0;
  mcache_flush_hook = sec_flush;
  large_init();
  atomic_store(&sec_ready, 2);
}

// The canary bytes follow the address: byte a is byte a % 8 of canary_word,
// so every aligned word of canary is canary_word and a partial first word
// is its masked part. Every range here ends on a word boundary (a slot's
// trailer, a page, a 16-byte aligned object), and the bytes of a partial
// first word below lo are the object's own, read and written back.
typedef uint64_t __attribute__((may_alias)) word_t;

GM_INLINE uint64_t mask_from(uintptr_t lo) {
  return ~(uint64_t)0 << (lo & 7) * 8;
}

void canary_fill(uintptr_t lo, uintptr_t hi) {
  gm_assert(hi % 8 == 0);
  if (lo >= hi)
    return;
  word_t *w = (word_t *)(lo & ~(uintptr_t)7);
  if (lo & 7) {
    uint64_t m = mask_from(lo);
    *w = (*w & ~m) | (canary_word & m);
    w++;
  }
  for (; (uintptr_t)w < hi; w++)
    *w = canary_word;
}

// (canary_ok and zero_ok may read a slot another thread is freeing: the
// trailer read after them tells; see slot_sound)
__attribute__((no_sanitize("thread"))) bool canary_ok(uintptr_t lo, uintptr_t hi) {
  gm_assert(hi % 8 == 0);
  if (lo >= hi)
    return true;
  const word_t *w = (const word_t *)(lo & ~(uintptr_t)7);
  uint64_t bad = 0;
  if (lo & 7)
    bad = (*w++ ^ canary_word) & mask_from(lo);
  for (; (uintptr_t)w < hi; w++)
    bad |= *w ^ canary_word;
  return bad == 0;
}

// zero_ok: [lo, hi) (both word-aligned) is all zero. About hi - lo / 8
// instructions, no branch but the loop's.
__attribute__((no_sanitize("thread"))) bool zero_ok(uintptr_t lo, uintptr_t hi) {
  gm_assert(lo % 8 == 0 && hi % 8 == 0);
  const word_t *w = (const word_t *)lo, *e = (const word_t *)hi;
  uint64_t acc = 0;
  for (; e - w >= 4; w += 4)
    acc |= w[0] | w[1] | w[2] | w[3];
  for (; w < e; w++)
    acc |= *w;
  return acc == 0;
}

// ---------------------------------------------------------------------------
// Slots of small spans

// A slot: its start, capacity (slot - 8) and trailer word.
typedef struct slot {
  uintptr_t at, cap;
  _Atomic uint64_t *t;
} slot_t;

static slot_t slot_of(mspan_t *s, uintptr_t at) {
  uintptr_t cap = s->elemsize - 8;
  return (slot_t){at, cap, (_Atomic uint64_t *)(at + cap)};
}

GM_INLINE uint64_t t_load(const slot_t *sl) {
  return enc(sl->at, atomic_load_explicit(sl->t, memory_order_acquire));
}
GM_INLINE void t_store(const slot_t *sl, uint64_t v) {
  atomic_store_explicit(sl->t, enc(sl->at, v), memory_order_release);
}

// small_live: v is the trailer of an allocated small object in a slot of
// capacity cap: every bit must be one malloc writes (align bits zero).
static bool small_live(uint64_t v, uintptr_t cap) {
  return T_STATE(v) == ST_ALLOC && T_KIND(v) <= K_NEW_ARRAY && T_ALIGN(v) == 0 && T_SIZE(v) <= cap;
}

// slot_sound checks an owned slot's trailer and what it guards: a free slot
// is zero (its first SEC_NEAR bytes; word 0 may be a remote-free link once
// used), an allocated one keeps its canary. A slot changing meanwhile is
// skipped. Returns the fault, or NULL.
__attribute__((no_sanitize("thread"))) static const char *slot_sound(const slot_t *sl, bool used) {
  enum { SCAN = SEC_NEAR }; // (an overflow of up to SEC_NEAR bytes shows there)
  uint64_t raw = atomic_load_explicit(sl->t, memory_order_acquire);
  uint64_t v = enc(sl->at, raw);
  const char *bad = NULL;
  if (raw == 0 && used) {
    bad = "heap corruption (an object's trailer was zeroed: overflow)";
  } else if (raw == 0 || v == trailer(0, 0, ST_FREE)) {
    uintptr_t lo = sl->at + (raw == 0 ? 0 : 8), hi = sl->at + sl->cap;
    if (hi > lo + SCAN)
      hi = lo + SCAN;
    if (!zero_ok(lo, hi))
      bad = "write to a free heap slot (use after free, or an overflow)";
  } else if (small_live(v, sl->cap)) {
    uintptr_t lo = sl->at + T_SIZE(v), hi = sl->at + sl->cap;
    if (hi > ((lo + 7) & ~(uintptr_t)7) + SCAN)
      hi = ((lo + 7) & ~(uintptr_t)7) + SCAN;
    if (!canary_ok(lo, hi))
      bad = "heap buffer overflow (canary after an object damaged)";
  } else if (v != trailer(0, 0, ST_BUSY)) {
    bad = "heap corruption (slot trailer damaged: overflow or underflow)";
  }
  if (bad != NULL) {
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(sl->t, memory_order_relaxed) != raw)
      return NULL; // another thread freed it meanwhile
  }
  return bad;
}

// trailer_sound: the trailer of the slot at `at` (capacity cap) is one the
// allocator writes (never used, free, busy or allocated).
__attribute__((no_sanitize("thread"))) static bool trailer_sound(uintptr_t at, uintptr_t cap) {
  uint64_t raw = atomic_load_explicit((_Atomic uint64_t *)(at + cap), memory_order_relaxed);
  uint64_t v = enc(at, raw);
  return raw == 0 || v == trailer(0, 0, ST_FREE) || v == trailer(0, 0, ST_BUSY) ||
         small_live(v, cap);
}

// slot_check: slot_sound of a neighbour, fatal on a fault.
static void slot_check(const slot_t *sl) {
  const char *bad = slot_sound(sl, false);
  if (bad != NULL)
    gm_fatal(bad, (void *)sl->at);
}

// sec_dest_fault tells why writing n > 0 bytes at d would leave the heap
// object holding d or write into a free one (the guarded memcpy and its
// kin), or returns NULL: d is not in a malloc span, or the write fits.
__attribute__((no_sanitize("thread"))) const char *sec_dest_fault(uintptr_t d, size_t n) {
  mspan_t *s = spanof(d);
  if (s == NULL || s->kind != SPAN_MANUAL)
    return NULL;
  uintptr_t p;
  uint64_t v;
  if (s->sizeclass != 0) {
    uintptr_t off = d - s->base;
    if (off >= s->limit)
      return "write past the last object of a heap span";
    slot_t sl = slot_of(s, s->base + (uintptr_t)(((uint64_t)off * s->divmul) >> 32) * s->elemsize);
    p = sl.at;
    v = t_load(&sl);
    if (!small_live(v, sl.cap))
      return "write into a free heap object";
  } else {
    p = s->alloc_bits[1] ^ sec_key;
    v = enc(p, s->alloc_bits[0]);
    if (T_STATE(v) != ST_ALLOC)
      return "write into a free heap object";
  }
  if (d < p || d - p >= T_SIZE(v) || n > T_SIZE(v) - (d - p))
    return "write past the end of its heap object";
  return NULL;
}

// check_near checks the slots of s (self's span, which this thread owns)
// within SEC_NEAR bytes before the slot at self and after its object's end
// (obj_end), past the slot's own end. (Only s: another span's record may be
// recycled by another thread meanwhile, and a slot-0 object's underflow
// lands in the page below, which is inaccessible when no span uses it.)
static void check_near(mspan_t *s, uintptr_t self, uintptr_t obj_end) {
  uintptr_t size = s->elemsize, end = s->base + s->limit;
  for (uintptr_t at = self; at > s->base && at + SEC_NEAR > self;) {
    at -= size;
    slot_t sl = slot_of(s, at);
    slot_check(&sl);
  }
  for (uintptr_t at = self + size; at < end && at < obj_end + SEC_NEAR; at += size) {
    slot_t sl = slot_of(s, at);
    slot_check(&sl);
  }
}

// ---------------------------------------------------------------------------
// Per-thread state: quarantine and recent objects

mcache_t *sec_cache(void) {
  mcache_t *c = gm_tls_mcache;
  if (unlikely(c == &mcache_empty))
    c = mcache_for_thread();
  return c == &mcache_shared ? NULL : c;
}

static uint64_t rng(mcache_t *c) {
  uint64_t x = c->sec_rng ? c->sec_rng : sec_key | 1;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return c->sec_rng = x;
}

static void recent_forget(mcache_t *c, uintptr_t p) {
  for (int i = 0; i < SEC_RECENT; i++)
    if ((c->sec_freed[i] & ~(uintptr_t)1) == p)
      c->sec_freed[i] = 0;
  if (c->sec_alloced == p)
    c->sec_alloced = 0;
}

// check_recent: the thread's last SEC_RECENT frees still start with zero
// (their first two words; bit 0 of an entry: the slot has room for two),
// and its last allocation keeps its trailer, the first canary word after it
// and the trailer of the slot before it.
void check_recent(mcache_t *c) {
  for (int i = 0; i < SEC_RECENT; i++) {
    uintptr_t e = c->sec_freed[i];
    const uint64_t *w = (const uint64_t *)(e & ~(uintptr_t)1);
    if (e != 0 && (w[0] | ((e & 1) ? w[1] : 0)) != 0)
      gm_fatal("write after free", w);
  }
  uintptr_t p = c->sec_alloced;
  if (p == 0)
    return;
  mspan_t *s = c->sec_alloced_span;
  if (relaxed_load(&s->owner) != c)
    return; // (c no longer owns it: the span may be gone; mcache.c clears
            // sec_alloced when the span leaves c)
  if (p - s->base >= s->limit)
    return;
  slot_t sl = slot_of(s, p);
  uint64_t raw = atomic_load_explicit(sl.t, memory_order_relaxed);
  if (likely(raw == c->sec_alloced_raw)) { // as malloc left it: the common case
    uintptr_t lo = p + T_SIZE(enc(p, raw)), hi = ((lo + 7) & ~(uintptr_t)7) + SEC_NEAR;
    if (canary_ok(lo, hi < p + sl.cap ? hi : p + sl.cap) &&
        (p == s->base || trailer_sound(p - s->elemsize, sl.cap)))
      return;
  }
  const char *bad = slot_sound(&sl, true);
  if (bad == NULL && p > s->base) {
    slot_t prev = slot_of(s, p - s->elemsize);
    bad = slot_sound(&prev, false);
  }
  if (bad != NULL)
    gm_fatal(bad, (void *)p);
}

// quarantine holds p (zeroed, FREE, still allocated in the core) and gives
// a random older one back to the core when full.
static void quarantine(mcache_t *c, uintptr_t p, size_t bytes) {
  c->sec_freed[c->sec_freed_i++ % SEC_RECENT] = p | (bytes >= 24); // (slot >= 24: cap >= 16)
  while (c->sec_qn == SEC_QUARANTINE || (c->sec_qbytes + bytes > SEC_QBYTES && c->sec_qn > 0)) {
    uint32_t i = (uint32_t)((rng(c) >> 32) * c->sec_qn >> 32);
    uintptr_t q = c->sec_q[i];
    c->sec_qbytes -= c->sec_qsize[i];
    c->sec_q[i] = c->sec_q[--c->sec_qn];
    c->sec_qsize[i] = c->sec_qsize[c->sec_qn];
    recent_forget(c, q);
    core_free((void *)q);
  }
  c->sec_qsize[c->sec_qn] = (uint32_t)bytes;
  c->sec_q[c->sec_qn++] = p;
  c->sec_qbytes += (uint32_t)bytes;
}

// sec_flush empties c's quarantine and the large objects' (thread exit,
// gm_release_memory).
static void sec_flush(mcache_t *c) {
  large_flush();
  if (c == &mcache_shared)
    return;
  if (c->sec_ldso_pending != 0) {
    uintptr_t p = c->sec_ldso_pending;
    c->sec_ldso_pending = 0;
    sec_free((void *)p, K_MALLOC);
  }
  while (c->sec_qn > 0)
    core_free((void *)c->sec_q[--c->sec_qn]);
  c->sec_qbytes = 0;
  memset(c->sec_freed, 0, sizeof c->sec_freed);
  c->sec_alloced = 0;
}

// ---------------------------------------------------------------------------
// Small objects

// small_class: the class of a request of n bytes (n + 8 <= 32 KiB) aligned
// to align (16 from 16 bytes; more for memalign).
int small_class(size_t n, size_t align) {
  size_t need = n + 8;
  if (need < align)
    need = align;
  for (size_t k = size_class(need); k < GM_NUM_SIZE_CLASSES; k++)
    if ((class_to_size[k] & (align - 1)) == 0) // (align: a power of two)
      return (int)k;
  return -1;
}

void *small_alloc(size_t n, size_t align, int kind) {
  int k = small_class(n, align);
  if (k < 0)
    return NULL;
  uintptr_t p = (uintptr_t)core_malloc(class_to_size[k]);
  if (p == 0)
    return NULL;
  mspan_t *s = spanof(p);
  slot_t sl = slot_of(s, p);
  uint64_t raw = atomic_load_explicit(sl.t, memory_order_relaxed);
  if (raw != 0 && enc(p, raw) != trailer(0, 0, ST_FREE))
    gm_fatal("heap corruption (a free slot's trailer was overwritten)", (void *)p);
  if (!zero_ok(p + 8, p + sl.cap))
    gm_fatal("write after free (a free slot is not zero)", (void *)p);
  *(uint64_t *)p = 0; // (a remote-free link)
  canary_fill(p + n, p + sl.cap);
  t_store(&sl, trailer(n, kind, ST_ALLOC));
  mcache_t *c = gm_tls_mcache;
  if (c != &mcache_empty && c != &mcache_shared) {
    c->sec_alloced = p, c->sec_alloced_span = s;
    c->sec_alloced_raw = enc(p, trailer(n, kind, ST_ALLOC));
  }
  return (void *)p;
}

// small_check returns the trailer of allocated small object p (fatal if p is
// no allocated object start, was freed, or its kind does not match).
uint64_t small_check(mspan_t *s, uintptr_t p, int kind) {
  uintptr_t off = p - s->base;
  uint32_t idx = (uint32_t)(((uint64_t)off * s->divmul) >> 32);
  // (a span's bitmap is its owner's: another thread relies on the trailer)
  bool owned = relaxed_load(&s->owner) == gm_tls_mcache;
  if (off >= s->limit || (uintptr_t)idx * s->elemsize != off ||
      (owned && !span_allocated(s, (uint16_t)idx))) {
    core_free((void *)p); // reports the fault
    gm_fatal("free of an invalid pointer", (void *)p);
  }
  slot_t sl = slot_of(s, p);
  uint64_t v = t_load(&sl);
  if (v == trailer(0, 0, ST_FREE) || v == trailer(0, 0, ST_BUSY))
    gm_fatal("double free", (void *)p);
  if (!small_live(v, sl.cap))
    gm_fatal("heap corruption (trailer damaged: overflow or underflow)", (void *)p);
  if (T_KIND(v) != kind && !(T_KIND(v) == K_MALLOC && kind == K_NEW))
    gm_fatal("mismatched deallocation (malloc/free, new/delete, new[]/delete[])", (void *)p);
  if (!canary_ok(p + T_SIZE(v), p + sl.cap))
    gm_fatal("heap buffer overflow (canary after the object damaged)", (void *)p);
  return v;
}

// small_resize gives allocated object p (old bytes) n bytes in place when its
// slot fits them without wasting half of it (and keeps the 16-byte alignment
// of objects from 16 bytes). Returns false when it must move.
bool small_resize(mspan_t *s, uintptr_t p, size_t old, size_t n) {
  slot_t sl = slot_of(s, p);
  if (n > sl.cap || n <= sl.cap / 2 || (n >= 16 && p % 16 != 0))
    return false;
  if (n > old)
    heap_memset((void *)(p + old), 0, n - old);
  canary_fill(p + n, p + sl.cap);
  t_store(&sl, trailer(n, K_MALLOC, ST_ALLOC));
  return true;
}

void small_free(mspan_t *s, uintptr_t p, int kind) {
  uint64_t v = small_check(s, p, kind);
  slot_t sl = slot_of(s, p);
  mcache_t *c = sec_cache();
  if (c != NULL) {
    if (relaxed_load(&s->owner) == c)
      check_near(s, p, p + T_SIZE(v));
  }
  // ALLOC -> BUSY in one step: of two threads freeing p at once, one fails.
  uint64_t raw = enc(p, v);
  if (!atomic_compare_exchange_strong_explicit(sl.t, &raw, enc(p, trailer(0, 0, ST_BUSY)),
                                               memory_order_relaxed, memory_order_relaxed))
    gm_fatal("double free (by two threads at once)", (void *)p);
  atomic_thread_fence(memory_order_release); // BUSY is seen before any zero (seqlock writer)
  heap_memset((void *)p, 0, sl.cap);
  t_store(&sl, trailer(0, 0, ST_FREE));
  if (c == NULL) {
    core_free((void *)p);
    return;
  }
  if (c->sec_alloced == p) // (checked here, and now in sec_freed)
    c->sec_alloced = 0;
  quarantine(c, p, s->elemsize);
}

#endif // GM_SECURE
