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
// Large objects (and alignments over 4 KiB) get pages of their own between
// two inaccessible guard pages, the object flush against the second (its
// end rounded down to its alignment, the slack canary-filled), with a
// header (trailer word and canary word) just before it. free checks them,
// makes every page inaccessible and holds the span in a global quarantine
// (64 spans, 256 MiB) before the core gets it back.
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
static gm_mutex_t lq_lock = GM_MUTEX_INIT(RANK_SECURE);

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
  lock_fork_register(&lq_lock);
  mcache_flush_hook = sec_flush;
  atomic_store(&sec_ready, 2);
}



void canary_fill(uintptr_t lo, uintptr_t hi) {
  for (; lo < hi && (lo & 7); lo++)
    *(uint8_t *)lo = canary_at(lo);
  for (; lo + 8 <= hi; lo += 8)
    *(uint64_t *)lo = canary_word;
  for (; lo < hi; lo++)
    *(uint8_t *)lo = canary_at(lo);
}

// (canary_ok and zero_ok may read a slot another thread is freeing: the
// trailer read after them tells; see slot_sound)
__attribute__((no_sanitize("thread"))) bool canary_ok(uintptr_t lo, uintptr_t hi) {
  for (; lo < hi && (lo & 7); lo++)
    if (*(const uint8_t *)lo != canary_at(lo))
      return false;
  for (; lo + 8 <= hi; lo += 8)
    if (*(const uint64_t *)lo != canary_word)
      return false;
  for (; lo < hi; lo++)
    if (*(const uint8_t *)lo != canary_at(lo))
      return false;
  return true;
}

__attribute__((no_sanitize("thread"))) bool zero_ok(uintptr_t lo, uintptr_t hi) {
  for (; lo < hi && (lo & 7); lo++)
    if (*(const uint8_t *)lo != 0)
      return false;
  for (; lo + 32 <= hi; lo += 32) { // (slots are mostly 8-byte aligned multiples)
    const uint64_t *w = (const uint64_t *)lo;
    if ((w[0] | w[1] | w[2] | w[3]) != 0)
      return false;
  }
  for (; lo + 8 <= hi; lo += 8)
    if (*(const uint64_t *)lo != 0)
      return false;
  for (; lo < hi; lo++)
    if (*(const uint8_t *)lo != 0)
      return false;
  return true;
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
    if (hi > lo + SCAN)
      hi = lo + SCAN;
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

// slot_check: slot_sound of a neighbour, fatal on a fault.
static void slot_check(const slot_t *sl) {
  const char *bad = slot_sound(sl, false);
  if (bad != NULL)
    gm_fatal(bad, (void *)sl->at);
}

// near_slot: the slot of s (p's span, which c owns) containing a, if any.
// (Only s: another span's record may be recycled by another thread
// meanwhile, and a slot-0 object's underflow lands in the page below, which
// is inaccessible when no span uses it.)
static slot_t near_slot(mspan_t *s, uintptr_t a) {
  if (a - s->base >= s->limit)
    return (slot_t){0};
  uint32_t idx = (uint32_t)(((uint64_t)(a - s->base) * s->divmul) >> 32);
  return slot_of(s, s->base + (uintptr_t)idx * s->elemsize);
}

// check_near checks the owned slots within SEC_NEAR bytes before the slot at
// self (in span s, owned by c) and after its object's end (obj_end), past
// the slot's own end.
static void check_near(mspan_t *s, uintptr_t self, uintptr_t obj_end) {
  slot_t sl;
  for (uintptr_t a = self - 1; a + SEC_NEAR >= self && (sl = near_slot(s, a)).at; a = sl.at - 1)
    slot_check(&sl);
  for (uintptr_t a = self + s->elemsize; a < obj_end + SEC_NEAR && (sl = near_slot(s, a)).at;
       a = sl.at + s->elemsize)
    slot_check(&sl);
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
  mspan_t *s = spanof(p);
  if (s != c->cls[c->sec_alloced_class].alloc)
    return; // no longer the span c allocates from: nothing to check safely
  slot_t sl = slot_of(s, p);
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
    uint32_t i = (uint32_t)(rng(c) % c->sec_qn);
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

static void large_flush(void);

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
    if (class_to_size[k] % align == 0)
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
  if (c != &mcache_empty && c != &mcache_shared)
    c->sec_alloced = p, c->sec_alloced_class = s->sizeclass;
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
    memset((void *)(p + old), 0, n - old);
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
  memset((void *)p, 0, sl.cap);
  t_store(&sl, trailer(0, 0, ST_FREE));
  if (c == NULL) {
    core_free((void *)p);
    return;
  }
  quarantine(c, p, s->elemsize);
}

// ---------------------------------------------------------------------------
// Large objects: guard pages, flush against the end

typedef struct lq_entry {
  uintptr_t base;
  size_t bytes;
} lq_entry_t;

static lq_entry_t lq[LQ_MAX]; // FIFO ring (lq_lock)
static unsigned lq_head, lq_n;
static _Atomic unsigned lq_count; // lq_n, for a look without the lock
static size_t lq_bytes;

// A large object's header lives in its span record (alloc_bits[0..1], unused
// by large spans), out of reach of overflows: the encoded trailer word (with
// log2 of the alignment) and p ^ key.
void *large_alloc(size_t n, size_t align, int kind, size_t room) {
  if (align < 16)
    align = 16;
  size_t g = os_page, need;
  if (n > PTRDIFF_MAX / 2 || align > PTRDIFF_MAX / 4 || room > PTRDIFF_MAX / 4 ||
      __builtin_add_overflow(n + room, 2 * g + align, &need)) {
    errno = ENOMEM;
    return NULL;
  }
  size_t unit = g > GM_PAGE_SIZE ? g : GM_PAGE_SIZE;
  size_t bytes = (need + unit - 1) & ~(unit - 1);
  uintptr_t base = (uintptr_t)malloc_large(bytes, unit, true);
  if (base == 0)
    return NULL;
  mspan_t *s = spanof(base);
  uintptr_t end = base + bytes - g, p = (end - n - room) & ~(uintptr_t)(align - 1);
  uintptr_t pg = p & ~(uintptr_t)(g - 1); // pages below p's own are inaccessible
  unsigned lg = (unsigned)__builtin_ctzll(align);
  s->alloc_bits[0] = enc(p, trailer(n, kind, ST_ALLOC) | (uint64_t)lg << 4);
  s->alloc_bits[1] = p ^ sec_key;
  canary_fill(pg, p);
  canary_fill(p + n, end);
  if (!os_protect((void *)base, pg - base, false) || !os_protect((void *)end, g, false)) {
    os_protect((void *)base, bytes, true);
    core_free((void *)base);
    errno = ENOMEM;
    return NULL;
  }
  return (void *)p;
}

// large_check returns the header of large object p (fatal if it is not one,
// was freed, or its kind or canaries are wrong).
uint64_t large_check(mspan_t *s, uintptr_t p, int kind) {
  uintptr_t base = s->base, bytes = s->npages * GM_PAGE_SIZE, g = os_page;
  uintptr_t end = base + bytes - g;
  uint64_t v = enc(p, s->alloc_bits[0]);
  if (s->alloc_bits[1] != (p ^ sec_key))
    gm_fatal("free of a pointer inside a large object", (void *)p);
  if (v == trailer(0, 0, ST_FREE))
    gm_fatal("double free (the object's pages are in quarantine)", (void *)p);
  if (T_STATE(v) != ST_ALLOC || T_KIND(v) > K_NEW_ARRAY || T_ALIGN(v) > 40 ||
      T_SIZE(v) > end - p || p % ((uintptr_t)1 << T_ALIGN(v)) != 0)
    gm_fatal("heap corruption (large object header damaged)", (void *)p);
  if (T_KIND(v) != kind && !(T_KIND(v) == K_MALLOC && kind == K_NEW))
    gm_fatal("mismatched deallocation (malloc/free, new/delete, new[]/delete[])", (void *)p);
  uintptr_t pg = p & ~(uintptr_t)(g - 1);
  if (!canary_ok(p - SEC_SCAN > pg ? p - SEC_SCAN : pg, p))
    gm_fatal("heap buffer underflow (canary before a large object damaged)", (void *)p);
  if (!canary_ok(p + T_SIZE(v), end))
    gm_fatal("heap buffer overflow (canary after a large object damaged)", (void *)p);
  return v;
}

// large_resize gives live large object p (old bytes) n bytes in place when
// they fit before its trailing guard and use more than half of what it
// has: the part grown is zeroed, the slack after it canary-filled.
bool large_resize(mspan_t *s, uintptr_t p, size_t old, size_t n) {
  uintptr_t end = s->base + s->npages * GM_PAGE_SIZE - os_page;
  if (n > end - p || n <= (end - p) / 2)
    return false;
  if (n > old)
    memset((void *)(p + old), 0, n - old);
  canary_fill(p + n, end);
  uint64_t v = enc(p, s->alloc_bits[0]);
  s->alloc_bits[0] = enc(p, trailer(n, K_MALLOC, ST_ALLOC) | (uint64_t)T_ALIGN(v) << 4);
  return true;
}

void large_free(mspan_t *s, uintptr_t p, int kind) {
  (void)large_check(s, p, kind);
  s->alloc_bits[0] = enc(p, trailer(0, 0, ST_FREE));
  uintptr_t base = s->base;
  size_t bytes = s->npages * GM_PAGE_SIZE;
  if (!os_protect((void *)base, bytes, false)) { // no quarantine: back at once
    os_protect((void *)base, bytes, true);
    core_free((void *)base);
    return;
  }
  os_release(NULL, base, bytes); // its memory goes back to the OS meanwhile
  lq_entry_t out[LQ_MAX];
  unsigned nout = 0;
  gm_lock(&lq_lock);
  while (lq_n > 0 && (lq_n == LQ_MAX || lq_bytes + bytes > LQ_BYTES)) {
    out[nout++] = lq[lq_head];
    lq_bytes -= lq[lq_head].bytes;
    lq_head = (lq_head + 1) % LQ_MAX;
    lq_n--;
  }
  lq[(lq_head + lq_n++) % LQ_MAX] = (lq_entry_t){base, bytes};
  lq_bytes += bytes;
  relaxed_store(&lq_count, lq_n);
  gm_unlock(&lq_lock);
  for (unsigned i = 0; i < nout; i++) {
    if (!os_protect((void *)out[i].base, out[i].bytes, true))
      gm_fatal("hardened build: cannot reopen a quarantined span", (void *)out[i].base);
    core_free((void *)out[i].base);
  }
}

// large_flush gives every quarantined span back to the core.
static void large_flush(void) {
  if (relaxed_load(&lq_count) == 0)
    return;
  for (;;) {
    gm_lock(&lq_lock);
    lq_entry_t e = {0, 0};
    if (lq_n > 0) {
      e = lq[lq_head];
      lq_bytes -= e.bytes;
      lq_head = (lq_head + 1) % LQ_MAX;
      relaxed_store(&lq_count, --lq_n);
    }
    gm_unlock(&lq_lock);
    if (e.base == 0)
      return;
    if (!os_protect((void *)e.base, e.bytes, true))
      gm_fatal("hardened build: cannot reopen a quarantined span", (void *)e.base);
    core_free((void *)e.base);
  }
}

#endif // GM_SECURE
