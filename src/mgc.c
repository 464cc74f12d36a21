// mgc.c: the collector's cycle, twin of Go's mgc.go.
//
// gomem's collector is Go's non-moving tri-color mark-sweep with the changes
// C asks for (conservative roots, threads stopped by signals). Its files:
// mgcalloc.c (gm_alloc, the tiny allocator), mgcsweep.c (GC spans, sweeping),
// mgcmark.c and mgcwork.c (marking), mfinal.c (finalizers), threads.c (the
// registry), stw.c (stopping the world), roots.c (where the roots are),
// interpose.c (pthread_create and signal masks), mgcpacer.c (when cycles
// start, assists), mwbbuf.c (the pages written while marking). A cycle:
//
//   1. Sweep termination (world running): the collecting thread sweeps every
//      span the last cycle left unswept (Go's finishsweep), pauses the
//      background sweeper and refreshes the list of data segments (roots.c).
//   2. Stop the world (stw.c): every registered thread parks outside any
//      allocator critical section, its registers saved. If a library was
//      loaded or is being unloaded since the refresh (roots_data_stale), the
//      world restarts and step 2 begins again with a new refresh.
//   3. Mark (mgcmark.c): parallel, from the roots; finalizers of unreachable
//      objects are queued and their objects kept for one more cycle.
//   4. Mark termination: gm_sweepgen += 2 makes every span unswept; the live
//      heap and the next goal are computed.
//   5. Start the world. Sweeping (mgcsweep.c) is lazy, at allocation, and in
//      the background; gm_collect sweeps everything before returning.
//
// The phases map onto Go's (_GCoff / _GCmark / _GCmarktermination in
// gc_phase). The world stays stopped from 2 to 5, unless cycles mark beside
// the program (GOMEM_GC_CONCURRENT=1; the concurrent cycle below).
//
// Pacer (mgcpacer.c): when the heap reaches a trigger set from GOGC, or
// from the memory limit, a cycle is due.
// Threads check the goal in their allocation slow path, outside critical
// sections; whoever finds it reached collects, the others wait on gc_lock
// and find the goal moved.
//
// Invariants: gc_lock is held for a whole cycle (and by gm_remove_roots and
// gm_set_gc_percent); only the thread holding it stops the world; no dynamic
// linker call is made while a gomem lock is held (gc_init asks first).
#include <linux/futex.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>

#include "coro.h"
#include "internal.h"
#include "interpose.h"
#include "mallocint.h"
#include "mfinal.h"
#include "mgc.h"
#include "mgcalloc.h"
#include "mgcmark.h"
#include "mgcpacer.h"
#include "mgcscavenge.h"
#include "mgcsweep.h"
#include "mheap.h"
#include "os.h"
#include "pool.h"
#include "roots.h"
#include "stw.h"

enum gc_phase { GC_OFF = 0, GC_MARK, GC_MARKTERM };

// gc_lock: held for a whole cycle. Never taken inside a critical section.
static gm_mutex_t gc_lock = GM_MUTEX_INIT(RANK_GC);
static gm_mutex_t gc_init_lock = GM_MUTEX_INIT(RANK_GC_INIT);
_Atomic int gc_inited;
static _Atomic int gc_phase;

// Statistics (written under gc_lock, read relaxed).
static _Atomic uint64_t num_gc, num_forced_gc, num_limit_gc, pause_total_ns, last_gc_ns;
static _Atomic uint64_t pause_ring[256];
static _Atomic uint64_t gc_cpu_ns; // collector CPU time (ns, all workers)
static _Atomic uint64_t last_stop1_ns, last_mark_ns, last_stop2_ns;
static uint64_t start_ns; // gc_init time

void gc_lock_cycle(void) {
  gm_lock_stoppable(&gc_lock);
}

void gc_unlock_cycle(void) {
  gm_unlock_raw(&gc_lock);
}

static void gc_fork_child(void);
static void conc_init(void);

// gc_init sets up every collector unit, then publishes gc_inited (release).
// What needs the dynamic linker is asked first, holding no lock: a library
// constructor or destructor holds the linker's lock and may be waiting for
// gc_init_lock (a GC allocation) or every lock (fork).
void gc_init(void) {
  if (gc_is_inited())
    return;
  gm_ensure_init();
  interpose_init();
  roots_info_t ri;
  roots_probe(&ri);
  gm_lock_stoppable(&gc_init_lock);
  if (!relaxed_load(&gc_inited)) {
    lock_fork_register(&gc_init_lock);
    lock_fork_register(&gc_lock);
    roots_init(&ri);
    gcsweep_init();
    gcmark_init();
    gcalloc_init();
    fin_init();
    pool_init();
    pacer_init();
    conc_init();
    start_ns = os_nanotime();
    pthread_atfork(NULL, NULL, gc_fork_child);
    threads_init(); // the main thread and this one, before any cycle can start
    atomic_store_explicit(&gc_inited, 1, memory_order_release);
  }
  gm_unlock_raw(&gc_init_lock);
}

void gc_note_unused(uint64_t slots, uint32_t elemsize) {
  uint64_t b = (uint64_t)gm_popcount(slots) * elemsize;
  uint64_t live = relaxed_load(&gc_heap_live);
  while (!atomic_compare_exchange_weak(&gc_heap_live, &live, live > b ? live - b : 0)) {
  }
}

// ---------------------------------------------------------------------------
// The cycle

typedef struct cycle_times {
  uint64_t t0, t_stopped, t_marked, t_end; // wall clock (ns)
  uint64_t heap0, marked, goal, cpu_mark, idle_mark; // concurrent cycles: conc_trace
} cycle_times_t;

static void gctrace(const cycle_times_t *ct, uint64_t n) {
  char buf[320];
  double ms = 1e-6;
  uint64_t now = os_nanotime();
  double elapsed = (double)(now - start_ns) * 1e-9;
  double frac =
      elapsed > 0 ? (double)relaxed_load(&gc_cpu_ns) * 1e-9 / (elapsed * (double)gc_nworkers()) : 0;
  char co[96];
  coro_trace(co, sizeof co);
  size_t len =
      gm_fmt(buf, sizeof buf,
             "gc %llu @%.3fs %.0f%%: %.3f+%.3f+%.3f ms clock, %llu->%llu->%llu MB, "
             "%llu MB goal, %u P%s\n",
             (unsigned long long)n, elapsed, frac * 100, (double)(ct->t_stopped - ct->t0) * ms,
             (double)(ct->t_marked - ct->t_stopped) * ms, (double)(ct->t_end - ct->t_marked) * ms,
             (unsigned long long)(ct->heap0 >> 20), (unsigned long long)(ct->heap0 >> 20),
             (unsigned long long)(ct->marked >> 20), (unsigned long long)(ct->goal >> 20),
             gc_nworkers(), co);
  os_write_stderr(buf, len);
}

// mark_terminate is step 4, the world stopped: every span becomes unswept,
// the live heap is what was marked, and the goals follow from it (grew:
// bytes allocated while a concurrent mark ran).
static void mark_terminate(cycle_times_t *ct, uint64_t marked, uint64_t grew, bool conc) {
  relaxed_store(&gc_phase, GC_MARKTERM);
  atomic_store(&gm_sweepgen, relaxed_load(&gm_sweepgen) + 2);
  ct->marked = marked;
  ct->goal = pacer_mark_done(marked, relaxed_load(&gc_scan_done), grew, conc);
  relaxed_store(&gc_phase, GC_OFF);
  ct->t_end = os_nanotime();
}

// cycle_done records a finished cycle that paused the program for pause ns;
// why: 1 the pacer, 2 the memory limit, 3 gm_collect. CPU: the collecting
// thread's since cpu0, plus the helpers' share of the parallel mark (they
// run only then, flat out). Returns the cycle's number.
static uint64_t cycle_done(const cycle_times_t *ct, uint64_t pause, uint64_t cpu0, int why) {
  uint64_t n = relaxed_load(&num_gc);
  relaxed_store(&pause_ring[n % 256], pause);
  relaxed_add(&pause_total_ns, pause);
  pacer_cycle_done(ct->t_end, pause);
  relaxed_store(&last_gc_ns, ct->t_end);
  relaxed_add(&gc_cpu_ns, os_clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0 +
                              (uint64_t)(gc_nworkers() - 1) * (ct->t_marked - ct->t_stopped));
  if (why == 3)
    relaxed_add(&num_forced_gc, 1);
  else if (why == 2)
    relaxed_add(&num_limit_gc, 1);
  relaxed_store(&num_gc, n + 1);
  coro_cycle_done(); // (coroutines' threads shrink their stacks)
  return n + 1;
}

// gc_self_sp: the lowest address of the collecting thread's own stack that
// is a root (see collect_spilled). The collector's frames below it hold no pointer the
// program needs, only stale words that would keep garbage alive.
static uintptr_t gc_self_sp; // gc_lock

// SOLO_SCAN: a stop-the-world mark whose last scan was smaller marks on the
// collecting thread alone. Waking a helper and waiting for it costs about
// 60 us on a virtual machine, as much as scanning some 256 KiB; a small
// heap's cycles (a Boehm GC program's 1 MiB heap) ran twice as long with it.
// GOMEM_GC_PROCS (or GC_MARKERS) set: always as many workers as it says.
#define SOLO_SCAN ((uint64_t)256 << 10)

// gc_cycle runs one collection. Caller holds gc_lock, not in a critical
// section, registered.
static void gc_cycle(bool forced, int due) {
  cycle_times_t ct;
  ct.t0 = os_nanotime();
  uint64_t cpu0 = os_clock_ns(CLOCK_THREAD_CPUTIME_ID);
  ct.heap0 = relaxed_load(&gc_heap_live);

  gc_sweep_all(); // 1. sweep termination
  gc_start_helpers();
  gc_sweeper_pause();
  for (;;) {
    roots_data_refresh();
    stw_stop(); // 2.
    if (!roots_data_stale())
      break;
    stw_start(); // a library came or is going: read the segments again
    sched_yield();
  }
  ct.t_stopped = os_nanotime();
  pool_cleanup();         // primaries become victims
  if (gc_sweep_pending()) // spans released since step 1
    gc_sweep_all();
  relaxed_store(&gc_phase, GC_MARK);
  relaxed_store(&gc_mark_helpers, gm_opt.gc_procs != 0 || pacer_scan_estimate() >= SOLO_SCAN);
  uint64_t marked = gc_mark(gc_self_sp); // 3.
  relaxed_store(&gc_mark_helpers, 1);
  ct.t_marked = os_nanotime();

  mark_terminate(&ct, marked, 0, false); // 4.
  stw_start();                           // 5.

  gc_sweeper_resume();
  uint64_t n = cycle_done(&ct, ct.t_end - ct.t0, cpu0, forced ? 3 : due);
  if (gm_opt.gctrace)
    gctrace(&ct, n);
}

// clear_dead_stack zeroes up to CLEAR_BYTES of the stack just below the
// caller's frame, dead since the cycle returned: stale pointers left there by
// deep calls would otherwise reappear in uninitialised slots of later frames
// and be scanned (Boehm GC's GC_clear_stack does the same). It stays
// CLEAR_MARGIN above the stack's end, so a thread with a small stack never
// overflows for it.
#define CLEAR_BYTES ((uintptr_t)16 << 10)
#define CLEAR_MARGIN ((uintptr_t)16 << 10)
GM_NOINLINE static void clear_dead_stack(void) {
  uintptr_t lo, hi, mapped, sp = (uintptr_t)__builtin_frame_address(0);
  if (threads_stack_bounds(&lo, &hi, &mapped) != 0 || sp < lo + CLEAR_MARGIN)
    return;
  uintptr_t n = sp - lo - CLEAR_MARGIN;
  n = n < CLEAR_BYTES ? n : CLEAR_BYTES;
  char *pad = __builtin_alloca(n);
  memset(pad, 0, n);
  __asm__ volatile("" : : "r"(pad) : "memory");
}

// gc_begin: the calling thread is about to collect. It must be registered
// (its own stack is a root) and outside every critical section.
static void gc_begin(void) {
  if (unlikely(gm_tls_m.locks != 0))
    gm_fatal("collector: collection started inside an allocator critical section", NULL);
  threads_register_self_or_die();
  gc_lock_cycle();
}

// collect_spilled runs a cycle (forced: gm_collect) from a frame that holds
// every register of the calling thread: __builtin_unwind_init spills the
// callee-saved ones in the prologue, above the locals, and getcontext copies
// them all (setjmp would not do: glibc mangles the saved rbp). The scan of
// this thread's stack starts at the lowest local, so a pointer the program
// keeps only in a register is a root, and the collector's own frames below
// are not.
GM_NOINLINE static void collect_spilled(bool forced) {
  __builtin_unwind_init();
  ucontext_t regs;
  getcontext(&regs);
  gc_begin();
  int due = forced ? 1 : gc_due();
  if (due != 0) { // (not forced: another thread may have collected meanwhile)
    gc_self_sp = (uintptr_t)&regs;
    gc_cycle(forced, due);
  }
  gc_unlock_cycle();
  __asm__ volatile("" : : "r"(&regs) : "memory");
}

// ---------------------------------------------------------------------------
// The concurrent cycle (GOMEM_GC_CONCURRENT=1; design.md §14)
//
// A background thread of gomem's runs the cycles the pacer asks for: a stop
// to grey the roots, marking beside the program with the kernel tracking
// its writes (os_wtrack) or gm_store recording them (the explicit barrier,
// mwbbuf.c), rounds that rescan the marked objects on written pages or
// drain what the barrier greyed, and a last stop that rescans those
// written since, the barrier's buffers and every root, before the sweep.
// gm_collect still runs a stop-the-world cycle (after the running one).
// Allocating threads pay with assists (mgcpacer.c); one past twice the goal
// while a cycle runs waits for it.

static bool gc_conc; // gc_init: asked for, and the kernel tracks writes or gm_store does
// The background thread. No lock: a program thread that asks for a cycle
// or waits for one may be stopped at any point, so it only flips atomics,
// wakes the thread with a futex and waits by sleeping.
static _Atomic int bg_state;   // 0: no thread, 1: being started, 2: running
static _Atomic int bg_request; // futex word: a cycle is asked for
static _Atomic int bg_running; // a cycle is asked for or running

static void wtrack_register(uintptr_t base, size_t bytes) {
  if (!os_wtrack_register(base, bytes))
    gm_fatal("collector: cannot track writes to a heap range", (void *)base);
}

// conc_init (gc_init): concurrent mode if asked for and the kernel can.
static void conc_init(void) {
  if (!gm_opt.gc_concurrent)
    return;
  if (gm_opt.gc_barrier_explicit) { // gm_store reports the writes: no tracking
    gc_barrier_explicit = true;
    gc_conc = true;
    pacer_concurrent(true);
    return;
  }
  const char *why = "GOMEM_WTRACK=0";
  if (!gm_opt.wtrack || !os_wtrack_init(&why)) {
    if (gm_opt.gctrace) {
      char buf[200];
      os_write_stderr(buf, gm_fmt(buf, sizeof buf, "gc: marking stops the world: %s\n", why));
    }
    return;
  }
  gm_lock(&gm_heap.lock);
  for (size_t i = 0, n = mheap_nranges(); i < n; i++) {
    uintptr_t base;
    size_t bytes;
    mheap_range(i, &base, &bytes);
    wtrack_register(base, bytes);
  }
  mheap_grow_hook = wtrack_register;
  gm_unlock(&gm_heap.lock);
  gc_conc = true;
  pacer_concurrent(true);
}

static void wtrack_arm_all(void) {
  for (size_t i = 0, n = mheap_nranges(); i < n; i++) {
    uintptr_t base;
    size_t bytes;
    mheap_range(i, &base, &bytes);
    if (!os_wtrack_arm(base, bytes))
      gm_fatal("collector: cannot arm write tracking", (void *)base);
  }
}

// disarm_until_due drops the write protection after a cycle, with no lock
// held, 1 MiB at a time with a 50 us nap in between, and stops when the next
// cycle is due: its arm covers the rest. Writes to armed pages fault (a few
// microseconds each: leaving the heap armed halved gclatency's allocation
// rate), and dropping the protection is slow (about 1 ms per MiB against
// 0.15 for arming) and stalls the program's page faults while it runs (in
// 4 MiB steps, or 1 MiB with sched_yield, gclatency saw 60-90 ms gaps; in
// 1 MiB steps with naps, 33-38 ms, its longest stop being 1-2 ms).
#define DISARM_CHUNK ((size_t)1 << 20)
static void disarm_until_due(void) {
  for (size_t i = 0, n = mheap_nranges(); i < n; i++) {
    uintptr_t base;
    size_t bytes;
    mheap_range(i, &base, &bytes);
    for (size_t off = 0; off < bytes; off += DISARM_CHUNK) {
      if (gc_due() != 0)
        return;
      size_t len = bytes - off < DISARM_CHUNK ? bytes - off : DISARM_CHUNK;
      if (!os_wtrack_disarm(base + off, len))
        gm_fatal("collector: cannot disarm write tracking", (void *)(base + off));
      struct timespec nap = {0, 50000}; // (the program's page faults get through)
      nanosleep(&nap, NULL);
    }
  }
}

// stop_world stops the world with the data segments' list fresh (step 2).
static void stop_world(void) {
  for (;;) {
    roots_data_refresh();
    stw_stop();
    if (!roots_data_stale())
      return;
    stw_start();
    sched_yield();
  }
}

// conc_trace: Go's gctrace line for a concurrent cycle. Clock: the first
// stop, the marking beside the program, the last stop. CPU, as Go's: the
// stops' clock times the workers; between them assists/background/idle.
static void conc_trace(const cycle_times_t *ct, uint64_t n, uint64_t s1, uint64_t m0,
                       uint64_t live1, size_t pages, int tries) {
  static uint64_t assist0; // (gc_lock no longer held: only this thread traces)
  uint64_t total = pacer_assist_ns(), assist = total - assist0;
  double P = 1e-6 * gc_nworkers();
  assist0 = total;
  char buf[320], co[96];
  coro_trace(co, sizeof co);
  os_write_stderr(
      buf,
      gm_fmt(buf, sizeof buf,
             "gc %llu @%.3fs: %.3f+%.3f+%.3f ms clock, %.3f+%.3f/%.3f/%.3f+%.3f ms cpu, "
             "%llu->%llu->%llu MB, %llu MB goal, %zu pages rescanned, "
             "%d last stop%s, concurrent%s\n",
             (unsigned long long)n, (double)(ct->t0 - start_ns) * 1e-9, (double)(m0 - s1) * 1e-6,
             (double)(ct->t_stopped - m0) * 1e-6, (double)(ct->t_end - ct->t_stopped) * 1e-6,
             (double)(m0 - s1) * P, (double)assist * 1e-6,
             (double)(ct->cpu_mark - ct->idle_mark) * 1e-6, (double)ct->idle_mark * 1e-6,
             (double)(ct->t_end - ct->t_stopped) * P, (unsigned long long)(ct->heap0 >> 20),
             (unsigned long long)(live1 >> 20), (unsigned long long)(ct->marked >> 20),
             (unsigned long long)(ct->goal >> 20), pages, tries, tries > 1 ? "s" : "", co));
}

// The last stop finishes marking in place when what the roots, the written
// pages and the barrier's buffers greyed is at most END_PENDING grey
// entries (objects, or 128 KiB pieces of large ones); otherwise the world runs again while the
// collector drains them, up to END_ATTEMPTS stops. (An assist in flight when
// the pre-cleaning ended publishes its leftovers just before the stop:
// finishing those in place made 20-30 ms stops.)
#define END_PENDING 1024
#define END_ATTEMPTS 8

// gc_cycle_concurrent: one cycle, run by the background thread.
static void gc_cycle_concurrent(void) {
  gc_lock_cycle();
  int due = gc_due();
  bool tracked = !gc_barrier_explicit; // pages armed (else gm_store's buffers)
  if (due == 0 || (tracked && !mheap_ranges_complete())) {
    gc_unlock_cycle();
    if (tracked && !mheap_ranges_complete()) // (more than 4096 ranges: stop the world)
      gc_conc = false, pacer_concurrent(false);
    return;
  }
  cycle_times_t ct = {.t0 = os_nanotime(), .heap0 = relaxed_load(&gc_heap_live)};
  uint64_t cpu0 = os_clock_ns(CLOCK_THREAD_CPUTIME_ID);
  gc_sweep_all();
  gc_start_helpers();
  gc_sweeper_pause();
  if (tracked)
    wtrack_arm_all(); // before the stop: writes from now on are seen
  stop_world();
  uint64_t s1 = os_nanotime();
  pool_cleanup();
  if (gc_sweep_pending())
    gc_sweep_all();
  relaxed_store(&gc_phase, GC_MARK);
  coro_mark_begin(); // (the suspended coroutines' stacks: coro_scan, below)
  uint64_t marked = gc_mark_begin(0);
  uint64_t live0 = relaxed_load(&gc_heap_live);
  pacer_mark_begin();
  stw_start();
  uint64_t m0 = os_nanotime(), c0 = os_clock_ns(CLOCK_THREAD_CPUTIME_ID);
  pacer_worker_begin(gc_nworkers());
  coro_scan(wbbuf_shade_range, NULL);
  marked += gc_mark_drain();
  size_t pages = 0;
  // Pre-cleaning: the marked objects on written pages again, or (explicit
  // barrier) the greys that full gm_store buffers published meanwhile,
  // until few remain for the last stop.
  for (int round = 0; round < 16; round++) {
    size_t n = gc_mark_rescan_written(); // (0 with the explicit barrier)
    pages += n;
    marked += gc_mark_drain();
    if (gc_mark_pending() == 0 && (tracked ? n < 256 || round >= 3 : round >= 1))
      break;
  }
  uint64_t stops = m0 - s1;
  int attempt;
  for (attempt = 1;; attempt++) {
    stop_world();
    ct.t_stopped = os_nanotime();
    ct.cpu_mark = os_clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
    marked += gc_mark_reroot(0);
    if (gc_mark_pending() <= END_PENDING || attempt == END_ATTEMPTS)
      break;
    stw_start(); // much left: drain it beside the program first
    stops += os_nanotime() - ct.t_stopped;
    marked += gc_mark_drain();
  }
  ct.idle_mark = pacer_worker_end(ct.t_stopped, c0 + ct.cpu_mark);
  marked += gc_mark_end();
  ct.t_marked = os_nanotime();
  uint64_t live1 = relaxed_load(&gc_heap_live);
  uint64_t black = live1 > live0 ? live1 - live0 : 0; // allocated black
  mark_terminate(&ct, marked + black, live1 > ct.heap0 ? live1 - ct.heap0 : 0, true);
  stw_start();
  gc_sweeper_resume();
  relaxed_store(&last_stop1_ns, m0 - s1);
  relaxed_store(&last_mark_ns, ct.t_stopped - m0);
  relaxed_store(&last_stop2_ns, ct.t_end - ct.t_stopped);
  uint64_t n = cycle_done(&ct, stops + (ct.t_end - ct.t_stopped), cpu0, due);
  gc_sweeper_wake(); // (under gc_lock: this thread is never stopped, so
  fin_wake();        // only gc_lock keeps it apart from another cycle)
  gc_unlock_cycle();
  if (gm_opt.gctrace)
    conc_trace(&ct, n, s1, m0, live1, pages, attempt);
  if (tracked)
    disarm_until_due();
}

static void *bg_main(void *arg) {
  (void)arg;
  for (;;) {
    while (atomic_exchange(&bg_request, 0) == 0)
      syscall(SYS_futex, &bg_request, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    gc_cycle_concurrent();
    atomic_store(&bg_running, 0);
  }
  return NULL;
}

// conc_start asks the background thread for a cycle; a thread twice past
// the goal while one runs (assists could not keep up) waits for it. False:
// start one here instead.
static bool conc_start(void) {
  if (atomic_load(&bg_running)) {
    if (!pacer_far_past_goal()) // (assists pace the thread: mgcpacer.c)
      return true;
    struct timespec ms = {0, 1000000};
    while (atomic_load(&bg_running)) // (sleeping: a stop finds it at once)
      nanosleep(&ms, NULL);
    return true;
  }
  int st = 0;
  if (atomic_compare_exchange_strong(&bg_state, &st, 1)) {
    if (atomic_load(&gm_forked) || interpose_create_internal(bg_main, NULL) != 0) {
      atomic_store(&bg_state, 0);
      return false;
    }
    atomic_store(&bg_state, 2);
  } else if (st == 1) {
    return true; // its starter asks for the cycle
  }
  if (atomic_exchange(&bg_running, 1) == 0) {
    atomic_store(&bg_request, 1);
    syscall(SYS_futex, &bg_request, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
  }
  return true;
}

void gc_maybe_start(void) {
  if (gc_due() == 0)
    return;
  if (gc_conc && gm_tls_m.locks == 0 && conc_start())
    return;
  collect_spilled(false);
  gc_sweeper_wake();
  fin_wake();
  clear_dead_stack();
}

GM_EXPORT void gm_collect(void) {
  gc_ensure_init();
  collect_spilled(true);
  gc_sweep_all(); // like runtime.GC: return with the heap swept
  gc_sweeper_wake();
  fin_wake();
  clear_dead_stack();
}

// ---------------------------------------------------------------------------
// Statistics

void gc_stats(gm_stats_t *st) {
  pacer_stats(st);
  st->num_limit_gc = relaxed_load(&num_limit_gc);
  st->num_gc = relaxed_load(&num_gc);
  st->num_forced_gc = relaxed_load(&num_forced_gc);
  st->pause_total_ns = relaxed_load(&pause_total_ns);
  for (int i = 0; i < 256; i++)
    st->pause_ns[i] = relaxed_load(&pause_ring[i]);
  st->last_gc_ns = relaxed_load(&last_gc_ns);
  st->gc_concurrent = gc_conc;
  st->last_stop1_ns = relaxed_load(&last_stop1_ns);
  st->last_mark_ns = relaxed_load(&last_mark_ns);
  st->last_stop2_ns = relaxed_load(&last_stop2_ns);
  if (gc_is_inited())
    st->meta_sys += gcsweep_meta_bytes();
  st->gc_cpu_fraction = 0;
  if (gc_is_inited()) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double proc_ns = ((double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec) * 1e9 +
                     ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) * 1e3;
    if (proc_ns > 0)
      st->gc_cpu_fraction = (double)relaxed_load(&gc_cpu_ns) / proc_ns;
    if (st->gc_cpu_fraction > 1)
      st->gc_cpu_fraction = 1;
  }
}

// ---------------------------------------------------------------------------
// fork: every collector lock is taken by lock.c's fork handlers (so no cycle
// runs across fork); in the child only the forking thread exists: the
// helper, sweeper and finalizer threads restart on demand.

static void gc_fork_child(void) {
  if (gc_conc) { // no background thread here, nor write tracking
    os_wtrack_fork_child();
    mheap_grow_hook = NULL; // (it would abort: the child's heap ranges cannot be tracked)
    gc_conc = false;
    pacer_concurrent(false);
    atomic_store(&bg_state, 0);
    atomic_store(&bg_request, 0);
    atomic_store(&bg_running, 0);
  }
  threads_fork_child();
  stw_fork_child();
  interpose_fork_child();
  fin_fork_child();
  gcsweep_fork_child();
  gcwork_fork_child();
}
