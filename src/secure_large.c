// secure_large.c: the hardened build's large objects (and alignments over
// 4 KiB): pages of their own between two guard pages, the object flush
// against the second, and a quarantine of freed spans (design: secure.c).
//
// Locking: lq_lock (RANK_SECURE, a leaf) guards the quarantine ring.
#include <errno.h>
#include <string.h>

#include "arena.h"
#include "mgcscavenge.h"
#include "mheap.h"
#include "mprof.h"
#include "os.h"
#include "secure.h"

#if GM_SECURE

static gm_mutex_t lq_lock = GM_MUTEX_INIT(RANK_SECURE);
static bool lq_scavenge(void);

void large_init(void) {
  lock_fork_register(&lq_lock);
  atomic_store(&scavenge_hook, lq_scavenge);
}

typedef struct lq_entry {
  uintptr_t base;
  size_t bytes;
  uint32_t tick; // lq_tick when it came in
  bool released; // its pages given back to the OS
} lq_entry_t;

static lq_entry_t lq[LQ_MAX] GM_NOSCAN; // FIFO ring (lq_lock; stale bases are no roots)
static unsigned lq_head, lq_n;
static uint32_t lq_tick;
static _Atomic unsigned lq_count; // lq_n, for a look without the lock
static size_t lq_bytes;

// The canary around a large object covers SEC_SCAN bytes on either side (up
// to its page's start and the trailing guard): a realloc's room after the
// object stays untouched, so neither costs memory nor a pass over it.
GM_INLINE uintptr_t canary_end(uintptr_t p, size_t n, uintptr_t end) {
  uintptr_t e = ((p + n + 7) & ~(uintptr_t)7) + SEC_SCAN;
  return e < end ? e : end;
}
GM_INLINE uintptr_t canary_start(uintptr_t p) {
  uintptr_t pg = p & ~(uintptr_t)(os_page - 1);
  return p - SEC_SCAN > pg ? p - SEC_SCAN : pg;
}

// A large object's header lives in its span record (alloc_bits[0..1], unused
// by large spans), out of reach of overflows: the encoded trailer word (with
// log2 of the alignment) and p ^ key. Its bytes from zero_from on are zero
// (the ones below are the caller's to fill: realloc copies them).
void *large_alloc(size_t n, size_t align, int kind, size_t room, size_t zero_from) {
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
  uintptr_t base = (uintptr_t)malloc_large(bytes, unit, false);
  if (base == 0)
    return NULL;
  mspan_t *s = spanof(base);
  uintptr_t end = base + bytes - g, p = (end - n - room) & ~(uintptr_t)(align - 1);
  uintptr_t pg = p & ~(uintptr_t)(g - 1); // pages below p's own are inaccessible
  unsigned lg = (unsigned)__builtin_ctzll(align);
  s->alloc_bits[0] = enc(p, trailer(n, kind, ST_ALLOC) | (uint64_t)lg << 4);
  s->alloc_bits[1] = p ^ sec_key;
  if (s->needzero && zero_from < n)
    heap_memset((void *)(p + zero_from), 0, n - zero_from);
  canary_fill(canary_start(p), p);
  canary_fill(p + n, canary_end(p, n, end));
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
  uintptr_t base = s->base, bytes = s->npages * GM_PAGE_SIZE;
  uintptr_t end = base + bytes - os_page;
  uint64_t v = enc(p, s->alloc_bits[0]);
  if (s->alloc_bits[1] != (p ^ sec_key))
    gm_fatal("free of a pointer inside a large object", (void *)p);
  if (v == trailer(0, 0, ST_FREE))
    gm_fatal("double free (the object's pages are in quarantine)", (void *)p);
  if (T_STATE(v) != ST_ALLOC || T_KIND(v) > K_NEW_ARRAY || T_ALIGN(v) > 40 || T_SIZE(v) > end - p ||
      p % ((uintptr_t)1 << T_ALIGN(v)) != 0)
    gm_fatal("heap corruption (large object header damaged)", (void *)p);
  if (T_KIND(v) != kind && !(T_KIND(v) == K_MALLOC && kind == K_NEW))
    gm_fatal("mismatched deallocation (malloc/free, new/delete, new[]/delete[])", (void *)p);
  if (!canary_ok(canary_start(p), p))
    gm_fatal("heap buffer underflow (canary before a large object damaged)", (void *)p);
  if (!canary_ok(p + T_SIZE(v), canary_end(p, T_SIZE(v), end)))
    gm_fatal("heap buffer overflow (canary after a large object damaged)", (void *)p);
  return v;
}

// large_grow moves large span s's trailing guard so that n bytes from p fit
// before it, taking the pages after the span if they are free.
static bool large_grow(mspan_t *s, uintptr_t p, size_t n) {
  size_t g = os_page, unit = g > GM_PAGE_SIZE ? g : GM_PAGE_SIZE, bytes;
  if (n > PTRDIFF_MAX / 2 || __builtin_add_overflow(p - s->base + n, g + unit - 1, &bytes))
    return false;
  bytes &= ~(unit - 1);
  uintptr_t end = s->base + s->npages * GM_PAGE_SIZE - g;
  if (!mheap_grow_span_in_place(s, bytes / GM_PAGE_SIZE))
    return false;
  uintptr_t nend = s->base + bytes - g;
  if (!os_protect((void *)nend, g, false)) // (the span keeps its new pages till freed)
    return false;
  if (!os_protect((void *)end, g, true))
    gm_fatal("hardened build: cannot open a large object's guard page", (void *)end);
  return true;
}

// large_resize gives live large object p (old bytes) n bytes in place when
// they fit before its trailing guard (moved on if the pages after it are
// free) and use more than half of what it has: the part grown is zeroed,
// the canary after it rewritten.
bool large_resize(mspan_t *s, uintptr_t p, size_t old, size_t n) {
  uintptr_t end = s->base + s->npages * GM_PAGE_SIZE - os_page;
  if (n > end - p) {
    if (!large_grow(s, p, n))
      return false;
    end = s->base + s->npages * GM_PAGE_SIZE - os_page;
  } else if (n <= (end - p) / 2) {
    return false;
  }
  if (n > old) // (pages the span took over may hold old data)
    heap_memset((void *)(p + old), 0, n - old);
  canary_fill(p + n, canary_end(p, n, end));
  uint64_t v = enc(p, s->alloc_bits[0]);
  s->alloc_bits[0] = enc(p, trailer(n, K_MALLOC, ST_ALLOC) | (uint64_t)T_ALIGN(v) << 4);
  return true;
}
// lq_reopen gives quarantined span e back to the core.
static void lq_reopen(lq_entry_t e) {
  if (!os_protect((void *)e.base, e.bytes, true))
    gm_fatal("hardened build: cannot reopen a quarantined span", (void *)e.base);
  spanof(e.base)->released = e.released; // (zero pages: the core skips zeroing them)
  core_free((void *)e.base);
}

// large_free makes the object's pages inaccessible and holds them in the
// quarantine (LQ_MAX spans, LQ_BYTES), resident: they come back without page
// faults, zeroed by malloc. The scavenger gives the pages of spans that
// stayed a whole tick back to the OS (lq_scavenge; they come back zero).
void large_free(mspan_t *s, uintptr_t p, int kind) {
  (void)large_check(s, p, kind);
  if (unlikely(s->sampled)) { // a heap profile sample (sec_prof_alloc)
    s->sampled = 0;
    prof_record_free(p);
  }
  s->alloc_bits[0] = enc(p, trailer(0, 0, ST_FREE));
  uintptr_t base = s->base;
  size_t bytes = s->npages * GM_PAGE_SIZE;
  if (!os_protect((void *)base, bytes, false)) { // no quarantine: back at once
    os_protect((void *)base, bytes, true);
    core_free((void *)base);
    return;
  }
  lq_entry_t out[LQ_MAX];
  unsigned nout = 0;
  gm_lock(&lq_lock);
  while (lq_n > 0 && (lq_n == LQ_MAX || lq_bytes + bytes > LQ_BYTES)) {
    lq_entry_t e = lq[lq_head];
    lq_bytes -= e.bytes;
    out[nout++] = e;
    lq_head = (lq_head + 1) % LQ_MAX;
    lq_n--;
  }
  lq[(lq_head + lq_n++) % LQ_MAX] = (lq_entry_t){base, bytes, lq_tick, false};
  lq_bytes += bytes;
  relaxed_store(&lq_count, lq_n);
  size_t held = lq_bytes / GM_PAGE_SIZE;
  gm_unlock(&lq_lock);
  for (unsigned i = 0; i < nout; i++)
    lq_reopen(out[i]);
  scavenger_kick(held);
}

// lq_scavenge (the scavenger's hook) releases the pages of the spans that
// were already quarantined at the previous tick; true while some resident
// remain. (Under lq_lock: a span is not the core's until it leaves the ring.)
// Over 95% of a memory limit the quarantine gives every span back to the
// core instead, for the scavenger to release: the limit comes first.
static bool lq_scavenge(void) {
  uint64_t limit = relaxed_load(&gm_mem_limit);
  if (limit != UINT64_MAX && relaxed_load(&lq_count) != 0) {
    uint64_t held, dirty;
    mheap_memory(&held, &dirty);
    if (held + dirty > limit / 100 * 95) {
      large_flush();
      return false;
    }
  }
  gm_lock(&lq_lock);
  bool held = false;
  for (unsigned i = 0; i < lq_n; i++) {
    lq_entry_t *e = &lq[(lq_head + i) % LQ_MAX];
    if (!e->released && e->tick != lq_tick) {
      os_release(NULL, e->base, e->bytes);
      e->released = true;
    }
    held |= !e->released;
  }
  lq_tick++;
  gm_unlock(&lq_lock);
  return held;
}

// large_flush gives every quarantined span back to the core.
void large_flush(void) {
  if (relaxed_load(&lq_count) == 0)
    return;
  for (;;) {
    gm_lock(&lq_lock);
    lq_entry_t e = {0, 0, 0, false};
    if (lq_n > 0) {
      e = lq[lq_head];
      lq_bytes -= e.bytes;
      lq_head = (lq_head + 1) % LQ_MAX;
      relaxed_store(&lq_count, --lq_n);
    }
    gm_unlock(&lq_lock);
    if (e.base == 0)
      return;
    lq_reopen(e);
  }
}

#endif // GM_SECURE
