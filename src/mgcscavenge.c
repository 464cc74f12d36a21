// mgcscavenge.c: the scavenger, twin of Go's background scavenger.
//
// Free pages stay mapped and resident after free so the next allocation
// finds them warm. The scavenger returns the ones a program no longer needs:
// every tick (GOMEM_SCAVENGE_MS, default 100 ms) it samples the heap's
// in-use pages, keeps the highest sample of each tick for the last
// PEAK_TICKS ticks (the recent peak), and releases free pages (madvise) until
//   in-use + free-but-resident <= recent peak * (1 + GOMEM_RETAIN_PERCENT/100)
// (default 10%, Go's retain margin). A program that frees and re-allocates in
// a loop keeps its peak inside the window and is never trimmed (no thrash);
// after a burst is freed, the peak ages out within PEAK_TICKS ticks and RSS
// comes down by itself.
//
// The peak counts pages in use, not the free pages around them that a
// fragmented heap needs to place its next objects (large objects of varied
// sizes: a 20 MiB request may not fit the hole a 15 MiB object left). What
// the scavenger releases and the program takes back soon after was needed:
// those re-used pages (scavenged pages handed out, up to what was released
// recently) raise the goal as a credit that decays by 1/DECAY_TICKS a tick
// (half-life ~4.5 s), as jemalloc's dirty pages decay, so a heap that keeps
// re-faulting what was trimmed stops being trimmed, and one that goes quiet
// still comes down within seconds.
//
// The thread starts the first time enough dirty free memory exists
// (START_DIRTY_PAGES), so small programs never get one, and parks when the
// heap is steady with nothing to release; a span free wakes it. Releasing
// holds mheap.lock for at most one SLICE at a time.
#include <time.h>

#include "mgcscavenge.h"
#include "mheap.h"
#include "os.h"

#define PEAK_TICKS 10                 // the recent peak covers ~1 s
#define DECAY_TICKS 64                // re-use credit and recent releases decay by 1/64 a tick
#define SLICE_BYTES ((size_t)4 << 20) // release per mheap.lock hold
#define START_DIRTY_PAGES ((4u << 20) / GM_PAGE_SIZE)
#define MIN_RELEASE_PAGES ((1u << 20) / GM_PAGE_SIZE)

static gm_mutex_t scav_lock = GM_MUTEX_INIT(RANK_SCAV);
static pthread_cond_t scav_cond = PTHREAD_COND_INITIALIZER;
static _Atomic int scav_state;       // 0 = not started, 1 = running, 2 = parked
static size_t peak_ring[PEAK_TICKS]; // scavenger thread only
_Atomic(scavenge_hook_fn) scavenge_hook;
_Atomic uint64_t gm_mem_limit = UINT64_MAX;
_Atomic(mem_limit_hook_fn) mem_limit_hook;
static unsigned ring_pos;
static size_t released_recent, credit; // pages, decaying (scavenger thread only)

// decay takes 1/DECAY_TICKS of v, at least one page, down to zero.
static size_t decay(size_t v) {
  return v - (v + DECAY_TICKS - 1) / DECAY_TICKS;
}

// credit_update: scavenged pages the program took since the last tick,
// as far as the scavenger released them recently, join the credit.
static void credit_update(size_t reused) {
  size_t refault = reused < released_recent ? reused : released_recent;
  released_recent = decay(released_recent - refault);
  credit = decay(credit) + refault;
}

// scavenge_slice releases up to bytes of free pages, one slice per lock hold.
static size_t scavenge_bytes(size_t bytes) {
  size_t done = 0;
  while (done < bytes) {
    size_t want = bytes - done < SLICE_BYTES ? bytes - done : SLICE_BYTES;
    gm_lock(&gm_heap.lock);
    size_t got = pagealloc_scavenge(&gm_heap.pages, want);
    gm_unlock(&gm_heap.lock);
    done += got;
    if (got < want)
      break;
  }
  return done;
}

size_t scavenge_all(void) {
  return scavenge_bytes(SIZE_MAX);
}

// scavenger_tick does one round; returns true if the heap is steady and
// there is nothing left to release (the thread may park).
static bool scavenger_tick(void) {
  scavenge_hook_fn hook = relaxed_load(&scavenge_hook);
  bool held = hook != NULL && hook();
  gm_lock(&gm_heap.lock);
  size_t inuse = relaxed_load(&gm_heap.inuse_pages);
  size_t sample = gm_heap.peak_sample > inuse ? gm_heap.peak_sample : inuse;
  gm_heap.peak_sample = inuse;
  size_t dirty = gm_heap.pages.free_pages - gm_heap.pages.scav_pages;
  size_t reused = gm_heap.scav_reused;
  gm_heap.scav_reused = 0;
  gm_unlock(&gm_heap.lock);
  credit_update(reused);

  peak_ring[ring_pos++ % PEAK_TICKS] = sample;
  size_t peak = 0, low = SIZE_MAX;
  for (int i = 0; i < PEAK_TICKS; i++) {
    peak = peak_ring[i] > peak ? peak_ring[i] : peak;
    low = peak_ring[i] < low ? peak_ring[i] : low;
  }
  size_t goal = peak + peak * gm_opt.retain_percent / 100 + credit;
  size_t retained = inuse + dirty;
  uint64_t limit = relaxed_load(&gm_mem_limit);
  if (limit != UINT64_MAX && dirty > 0) { // over 95% of the limit: release now
    uint64_t held_meta, held_dirty;
    mheap_memory(&held_meta, &held_dirty);
    uint64_t want = limit / 100 * 95, total = held_meta + held_dirty;
    if (total > want) {
      uint64_t excess = total - want;
      scavenge_bytes(excess < held_dirty ? excess : held_dirty);
      return false;
    }
  }
  if (retained > goal + MIN_RELEASE_PAGES) {
    size_t excess = retained - goal;
    released_recent +=
        scavenge_bytes((excess < dirty ? excess : dirty) * GM_PAGE_SIZE) / GM_PAGE_SIZE;
    return false;
  }
  return ((peak == low && credit == 0) || dirty == 0) && !held;
}

static void *scavenger_main(void *arg) {
  (void)arg;
  for (;;) {
    bool idle = scavenger_tick();
    gm_lock_raw(&scav_lock);
    if (idle) {
      atomic_store(&scav_state, 2);
      while (atomic_load(&scav_state) == 2)
        pthread_cond_wait(&scav_cond, &scav_lock.m);
    } else {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)gm_opt.scavenge_ms * 1000000u;
      ts.tv_sec += (time_t)(ns / 1000000000u);
      ts.tv_nsec = (long)(ns % 1000000000u);
      pthread_cond_timedwait(&scav_cond, &scav_lock.m, &ts);
    }
    gm_unlock_raw(&scav_lock);
  }
  return NULL;
}

static void scavenger_start(void) {
  if (atomic_load(&gm_forked))
    return; // (see internal.h)
  int expect = 0;
  if (!atomic_compare_exchange_strong(&scav_state, &expect, 1))
    return;
  if (os_thread_create(scavenger_main, NULL) != 0)
    atomic_store(&scav_state, 0);
}

// scavenger_kick is called after a span went back to the heap with the
// number of free, resident pages; no locks held.
void scavenger_kick(size_t dirty_pages) {
  if (!gm_opt.scavenger || dirty_pages < START_DIRTY_PAGES / 4)
    return;
  int st = atomic_load_explicit(&scav_state, memory_order_relaxed);
  if (st == 1)
    return;
  if (st == 0) {
    // Never start a thread inside a critical section: a stopped thread may
    // hold the C library's thread-creation locks. A later kick starts it.
    if (dirty_pages >= START_DIRTY_PAGES && gm_tls_m.locks == 0)
      scavenger_start();
    return;
  }
  gm_lock(&scav_lock); // may be called inside a critical section
  if (atomic_load(&scav_state) == 2) {
    atomic_store(&scav_state, 1);
    pthread_cond_signal(&scav_cond);
  }
  gm_unlock(&scav_lock);
}

void scavenger_init(void) {
  if (gm_opt.memlimit != 0)
    relaxed_store(&gm_mem_limit, gm_opt.memlimit);
  lock_fork_register(&scav_lock);
}

// scavenger_fork_child: the thread did not survive fork (scav_lock was taken
// by lock.c's fork handlers); start afresh.
void scavenger_fork_child(void) {
  pthread_cond_init(&scav_cond, NULL);
  atomic_store(&scav_state, 0);
}
