// roots.c: the collector's roots (see roots.h).
//
// Data segments. roots_data_refresh (world running) reads the writable
// PT_LOAD segments and the PT_TLS sizes of every loaded object with
// dl_iterate_phdr, and, inside the same call (the loader's list lock held),
// a snapshot of the loader's list of objects (_r_debug, every namespace).
// Objects can be loaded or unloaded between that refresh and the stop, so
// with the world stopped roots_data_stale compares the list with the
// snapshot and looks at each namespace's r_state: the dynamic linker sets
// RT_DELETE before it unmaps anything and RT_CONSISTENT only once the
// unmapped objects are off the list. Stale means the collector restarts the
// world and refreshes again (mgc.c), so a cycle never scans an unmapped
// segment nor misses a newly loaded library's globals, and dlclose needs no
// lock of gomem's (a library destructor may collect or fork freely).
//
// gomem's own data is excluded: its variables hold the addresses of arenas
// and pages (the heap's first object starts at the first arena's base),
// which would keep objects alive. Variables that hold such addresses live in
// section gm_noscan (GM_NOSCAN); when gomem is a shared library its whole
// writable segments are excluded too.
//
// TLS. A thread made by pthread_create has its static TLS and its descriptor
// at the top of its stack mapping, which its stack scan covers. Two kinds of
// TLS are elsewhere: the main thread's static TLS and descriptor (mapped by
// the dynamic linker at start-up; the first 32 pthread key values live in
// the descriptor), and dynamic TLS (each thread's block of each library
// loaded with dlopen, allocated with malloc at the thread's first access).
// Each thread's DTV, reached from its thread pointer, lists its block of
// every module: dtv[-1] holds the vector's length, dtv[m] the block of
// module m. report_tls reports every block off the thread's stack, and the
// descriptor of a thread whose thread pointer is off its stack. Every read is
// checked first: a vector or block in gomem's heap must be an allocated
// object (heap_object), anything else a mapped range (mincore). A thread
// stopped while the dynamic linker replaces its vector still has the old one
// installed, and that stays allocated until it has installed the new one
// (malloc.c keeps a block that ld.so's realloc moved until its next one).
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"
#include "interpose.h"
#include "mallocint.h"
#include "mgc.h"
#include "os.h"
#include "coro.h"
#include "roots.h"
#include "stw.h"
#include "vec.h"

typedef struct range {
  uintptr_t lo, hi;
} range_t;

typedef struct tls_mod {
  size_t modid, size; // a module with a TLS segment: its id and block size
} tls_mod_t;

typedef struct loaded {
  uintptr_t map, addr; // a struct link_map on the loader's list, and its l_addr
} loaded_t;

// Refreshed data (gc_lock held: written by roots_data_refresh before the
// stop, read with the world stopped).
static vec_t data_ranges = VEC_INIT(range_t);
static vec_t tls_mods = VEC_INIT(tls_mod_t);
static vec_t loaded_snap = VEC_INIT(loaded_t);
static bool refresh_ok;
static unsigned long long dl_adds, dl_subs = ~0ull; // counts at the last refresh

static gm_mutex_t extra_lock = GM_MUTEX_INIT(RANK_EXTRA);
static vec_t extra_ranges = VEC_INIT(range_t); // gm_add_roots (extra_lock)

// Set once by roots_init.
static uintptr_t excluded[MAX_EXCLUDED][2] GM_NOSCAN;
static int nexcluded GM_NOSCAN;
static size_t desc_size; // sizeof the C library's thread descriptor (0: unknown)
static uintptr_t page_size;

// ---------------------------------------------------------------------------
// Set-up

extern char __start_gm_noscan[], __stop_gm_noscan[];

static int find_self(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  roots_info_t *ri = data;
  if (info->dlpi_addr != ri->self_base || info->dlpi_name == NULL || info->dlpi_name[0] == 0)
    return 0; // not gomem's shared object (or gomem is linked into the program)
  for (int i = 0; i < info->dlpi_phnum && ri->nexcluded < MAX_EXCLUDED; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_LOAD && (ph->p_flags & PF_W)) {
      ri->excluded[ri->nexcluded][0] = info->dlpi_addr + ph->p_vaddr;
      ri->excluded[ri->nexcluded][1] = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
      ri->nexcluded++;
    }
  }
  return 1;
}

// roots_probe asks the dynamic linker what roots_init needs. It holds no lock
// of gomem's: a thread that holds the linker's lock (running a library's
// constructor or destructor) may be waiting for one.
void roots_probe(roots_info_t *ri) {
  memset(ri, 0, sizeof *ri);
  ri->excluded[0][0] = (uintptr_t)__start_gm_noscan;
  ri->excluded[0][1] = (uintptr_t)__stop_gm_noscan;
  ri->nexcluded = 1;
  Dl_info di;
  if (dladdr((void *)&excluded, &di) != 0) {
    ri->self_base = (uintptr_t)di.dli_fbase;
    dl_iterate_phdr(find_self, ri);
  }
  const unsigned *sz = dlsym(RTLD_DEFAULT, "_thread_db_sizeof_pthread"); // glibc
  ri->desc_size = sz != NULL ? *sz : 0;
}

// roots_init (once, under gc_init_lock) keeps what roots_probe found.
void roots_init(const roots_info_t *ri) {
  lock_fork_register(&extra_lock);
  page_size = (uintptr_t)sysconf(_SC_PAGESIZE);
  memcpy(excluded, ri->excluded, sizeof excluded);
  nexcluded = ri->nexcluded;
  desc_size = ri->desc_size;
}

// ---------------------------------------------------------------------------
// Checked reads

// mapped reports whether every page of [lo, hi) is mapped.
static bool mapped(uintptr_t lo, uintptr_t hi) {
  unsigned char vec[256];
  uintptr_t p = lo & ~(page_size - 1);
  while (p < hi) {
    size_t pages = (hi - p + page_size - 1) / page_size;
    if (pages > sizeof vec)
      pages = sizeof vec;
    if (mincore((void *)p, pages * page_size, vec) != 0)
      return false;
    p += pages * page_size;
  }
  return true;
}

// report_checked reports [lo, hi) if it is readable: inside one allocated
// object of gomem's heap (clipped to it), or mapped memory outside the heap.
static void report_checked(root_fn fn, void *ctx, uintptr_t lo, uintptr_t hi) {
  uintptr_t olo, ohi;
  int k = heap_object(lo, &olo, &ohi);
  if (k > 0)
    fn(ctx, lo, hi < ohi ? hi : ohi);
  else if (k == 0 && mapped(lo, hi))
    fn(ctx, lo, hi);
}

// ---------------------------------------------------------------------------
// TLS

typedef struct dtv_entry {
  uintptr_t val; // dtv[-1]: length; dtv[0]: generation; dtv[m]: module m's block
  uintptr_t to_free;
} dtv_entry_t;
#define DTV_UNALLOCATED ((uintptr_t)-1)
#define DTV_MAX 65536 // sanity bound on a vector's length

// tcb_dtv reads the DTV pointer of the thread whose thread pointer is tp.
static dtv_entry_t *tcb_dtv(uintptr_t tp) {
#if defined(__x86_64__)
  return (dtv_entry_t *)((const uintptr_t *)tp)[1]; // tcbhead_t: tcb, dtv, self
#elif defined(__aarch64__)
  return (dtv_entry_t *)((const uintptr_t *)tp)[0]; // tcbhead_t: dtv, private
#else
  (void)tp;
  return NULL;
#endif
}

// dtv_length returns the number of module entries of dtv that can be read
// (0 when the vector cannot be trusted).
static size_t dtv_length(const dtv_entry_t *dtv) {
  if (dtv == NULL)
    return 0;
  uintptr_t block = (uintptr_t)(dtv - 1), olo, ohi;
  int k = heap_object(block, &olo, &ohi);
  if (k < 0 || (k == 0 && !mapped(block, block + 2 * sizeof *dtv)))
    return 0;
  size_t n = dtv[-1].val;
  if (n > DTV_MAX)
    return 0;
  size_t room = k > 0 ? (ohi - block) / sizeof *dtv - 2 : n;
  if (k == 0 && !mapped(block, block + (n + 2) * sizeof *dtv))
    return 0;
  return n < room ? n : room;
}

// report_tls reports the TLS of the thread with thread pointer tp and stack
// [lo, hi) that its stack scan does not cover.
static void report_tls(root_fn fn, void *ctx, uintptr_t tp, uintptr_t lo, uintptr_t hi) {
  if (tp == 0)
    return;
  if (!(tp >= lo && tp < hi) && desc_size != 0)
    report_checked(fn, ctx, tp, tp + desc_size);
  if (!mapped(tp, tp + 2 * sizeof(uintptr_t)))
    return;
  const dtv_entry_t *dtv = tcb_dtv(tp);
  size_t n = dtv_length(dtv);
  for (size_t i = 0; i < tls_mods.n; i++) {
    const tls_mod_t *m = vec_at(&tls_mods, i);
    if (m->modid == 0 || m->modid > n)
      continue;
    uintptr_t b = dtv[m->modid].val;
    if (b == 0 || b == DTV_UNALLOCATED || (b >= lo && b < hi))
      continue;
    report_checked(fn, ctx, b, b + m->size);
  }
}

// ---------------------------------------------------------------------------
// Thread roots (world stopped)

// report_declared reports a stack the program declared (stw_declared_stack),
// [lo, hi), as far as it is readable; with hi = 0 (a declaration that cannot
// be this stack's), to the end of its readable mapping. A stop between a
// coroutine library's store of the new stack's end and its switch sees a
// declaration the program has not made true yet: it must neither make the
// collector read across guard pages nor lose the stack it is still on.
#define DECLARED_SCAN_MAX ((uintptr_t)1 << 30)
static void report_declared(root_fn fn, void *ctx, uintptr_t lo, uintptr_t hi) {
  uintptr_t end = os_readable_end(lo);
  if (end == 0) { // (lo in the red zone, below the stack's first page)
    lo = (lo | (page_size - 1)) + 1;
    end = os_readable_end(lo);
  }
  if (end == 0)
    return;
  if (hi == 0 || hi > end)
    hi = end - lo > DECLARED_SCAN_MAX ? lo + DECLARED_SCAN_MAX : end;
  if (lo < hi)
    fn(ctx, lo, hi);
}

// report_self reports the stopper's stack from this frame up: it covers the
// registers roots_threads spilled into its own frame.
static GM_NOINLINE void report_self(root_fn fn, void *ctx, uintptr_t hi) {
  uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
  if (sp < hi)
    fn(ctx, sp, hi);
}

GM_NOINLINE void roots_threads(root_fn fn, void *ctx, uintptr_t self_sp) {
  __builtin_unwind_init(); // the caller's callee-saved registers, into this frame
  gm_assert(gm_tls_m.stopping);
  gthread_t *me = gm_tls_m.thread;
  uintptr_t olo, ohi;
  for (gthread_t *r = threads_list; r; r = r->next) {
    if (r == me || r->dead)
      continue;
    fn(ctx, r->sp, r->hi);
    if (r->nregs)
      fn(ctx, (uintptr_t)r->regs, (uintptr_t)(r->regs + r->nregs));
    if (r->alt_hi)
      fn(ctx, r->alt_lo, r->alt_hi);
    if (r->co_hi)
      fn(ctx, r->co_lo, r->co_hi);
    else if (r->co_declared && stw_declared_stack(r, r->co_lo, &olo, &ohi))
      report_declared(fn, ctx, olo, ohi);
    report_tls(fn, ctx, r->tp, r->lo, r->hi);
  }
  interpose_pending_roots(fn, ctx);
  coro_roots(fn, ctx);
  uintptr_t hi = stw_stopper_hi();
  if (me != NULL)
    report_tls(fn, ctx, thread_pointer(), me->lo, me->hi);
  uintptr_t here = self_sp != 0 ? self_sp : (uintptr_t)__builtin_frame_address(0);
  if (me != NULL && (here < me->lo || here >= me->hi)) {
    // Collecting on another stack (a coroutine's): that stack from here if
    // gomem can bound it, and the thread's own stack whole (its live part
    // was left at a switch).
    if (stw_other_stack(here, &olo, &ohi))
      fn(ctx, olo, ohi);
    else if (stw_declared_stack(me, here, &olo, &ohi))
      report_declared(fn, ctx, olo, ohi);
    fn(ctx, me->mapped_lo, me->hi);
  } else if (self_sp != 0 && self_sp < hi) {
    fn(ctx, self_sp, hi); // the caller spilled its registers there
  } else {
    report_self(fn, ctx, hi);
  }
}

// ---------------------------------------------------------------------------
// Data roots

static bool has_counts(size_t size) {
  return size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof(unsigned long long);
}

static bool has_tls(size_t size) {
  return size >= offsetof(struct dl_phdr_info, dlpi_tls_modid) + sizeof(size_t);
}

// unchanged_cb stops at the first object: are the load and unload counts
// those of the last refresh?
static int unchanged_cb(struct dl_phdr_info *info, size_t size, void *data) {
  *(bool *)data = has_counts(size) && info->dlpi_adds == dl_adds && info->dlpi_subs == dl_subs;
  return 1;
}

// next_ns returns the loader's record of the namespace after r, or NULL.
static struct r_debug *next_ns(struct r_debug *r) {
  if (r->r_version >= 2)
    return (struct r_debug *)((struct r_debug_extended *)r)->r_next;
  return NULL;
}

// The loader's list is read under the loader's lock (inside dl_iterate_phdr)
// or with the world stopped: synchronisation TSan cannot see, so those reads
// are not instrumented.
#define GM_NO_TSAN __attribute__((no_sanitize_thread))

// snapshot records the loader's list (called with its list lock held).
GM_NO_TSAN static bool snapshot(void) {
  loaded_snap.n = 0;
  for (struct r_debug *r = &_r_debug; r != NULL; r = next_ns(r)) {
    for (struct link_map *lm = r->r_map; lm != NULL; lm = lm->l_next) {
      loaded_t *e = vec_push(&loaded_snap);
      if (e == NULL)
        return false;
      *e = (loaded_t){(uintptr_t)lm, (uintptr_t)lm->l_addr};
    }
  }
  return true;
}

static bool push_range(vec_t *t, uintptr_t lo, uintptr_t hi) {
  range_t *e = vec_push(t);
  if (e == NULL)
    return false;
  *e = (range_t){lo, hi};
  return true;
}

static int collect_cb(struct dl_phdr_info *info, size_t size, void *data) {
  (void)data;
  if (has_counts(size)) {
    if (dl_adds != info->dlpi_adds || dl_subs != info->dlpi_subs)
      refresh_ok &= snapshot(); // the first object: take the list with it
    dl_adds = info->dlpi_adds;
    dl_subs = info->dlpi_subs;
  }
  for (size_t i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_TLS && has_tls(size) && info->dlpi_tls_modid != 0) {
      tls_mod_t *m = vec_push(&tls_mods);
      refresh_ok &= m != NULL;
      if (m)
        *m = (tls_mod_t){info->dlpi_tls_modid, ph->p_memsz};
    }
    if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W) || ph->p_memsz == 0)
      continue;
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
    refresh_ok &= push_range(&data_ranges, lo, lo + ph->p_memsz);
  }
  return 0;
}

// roots_data_refresh re-reads the segments of every loaded object if objects
// were loaded or unloaded since the last time. Caller holds gc_lock; the
// world runs.
void roots_data_refresh(void) {
  bool same = false;
  dl_iterate_phdr(unchanged_cb, &same);
  if (same)
    return;
  refresh_ok = true;
  data_ranges.n = 0;
  tls_mods.n = 0;
  dl_adds = dl_subs = ~0ull;
  dl_iterate_phdr(collect_cb, NULL);
  if (!refresh_ok) // scanning fewer roots than exist would free live objects
    gm_fatal("out of memory for the table of data segments", NULL);
}

// roots_data_stale (world stopped): has the loader's list changed since the
// refresh, or is an object being unloaded?
GM_NO_TSAN bool roots_data_stale(void) {
  size_t i = 0;
  for (struct r_debug *r = &_r_debug; r != NULL; r = next_ns(r)) {
    if (r->r_state == RT_DELETE)
      return true;
    for (struct link_map *lm = r->r_map; lm != NULL; lm = lm->l_next, i++) {
      if (i >= loaded_snap.n)
        return true;
      const loaded_t *e = vec_at(&loaded_snap, i);
      if (e->map != (uintptr_t)lm || e->addr != (uintptr_t)lm->l_addr)
        return true;
    }
  }
  return i != loaded_snap.n;
}

// report_data reports [lo, hi) minus the excluded ranges.
static void report_data(root_fn fn, void *ctx, uintptr_t lo, uintptr_t hi) {
  for (int i = 0; i < nexcluded && lo < hi; i++) {
    uintptr_t xlo = excluded[i][0], xhi = excluded[i][1];
    if (hi <= xlo || lo >= xhi)
      continue;
    if (lo < xlo)
      report_data(fn, ctx, lo, xlo);
    lo = xhi > lo ? xhi : lo;
  }
  if (lo < hi)
    fn(ctx, lo, hi);
}

// roots_data: fn runs inside extra_lock's critical section for the added
// ranges (an unregistered thread may be adding one).
void roots_data(root_fn fn, void *ctx) {
  for (size_t i = 0; i < data_ranges.n; i++) {
    const range_t *r = vec_at(&data_ranges, i);
    report_data(fn, ctx, r->lo, r->hi);
  }
  gm_lock(&extra_lock);
  for (size_t i = 0; i < extra_ranges.n; i++) {
    const range_t *r = vec_at(&extra_ranges, i);
    fn(ctx, r->lo, r->hi);
  }
  gm_unlock(&extra_lock);
}

GM_EXPORT int gm_add_roots(void *lo, void *hi) {
  if ((uintptr_t)hi < (uintptr_t)lo) {
    errno = EINVAL;
    return -1;
  }
  gc_ensure_init();
  gm_lock(&extra_lock);
  bool ok = push_range(&extra_ranges, (uintptr_t)lo, (uintptr_t)hi);
  gm_unlock(&extra_lock);
  if (!ok) {
    errno = ENOMEM;
    return -1;
  }
  return 0;
}

void roots_clear_extra(void) {
  gc_lock_cycle();
  gm_lock(&extra_lock);
  extra_ranges.n = 0;
  gm_unlock(&extra_lock);
  gc_unlock_cycle();
}

// gm_remove_roots waits for a collection in progress (gc_lock), so that the
// caller may unmap the range as soon as it returns.
GM_EXPORT void gm_remove_roots(void *lo, void *hi) {
  (void)hi;
  gc_lock_cycle();
  gm_lock(&extra_lock);
  for (size_t i = 0; i < extra_ranges.n; i++) {
    range_t *r = vec_at(&extra_ranges, i);
    if (r->lo == (uintptr_t)lo) {
      *r = *(range_t *)vec_at(&extra_ranges, --extra_ranges.n);
      break;
    }
  }
  gm_unlock(&extra_lock);
  gc_unlock_cycle();
}
