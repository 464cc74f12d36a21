// mgcpacer.c: when a cycle starts and who pays for it, twin of Go's
// mgcpacer.go and mgclimit.go.
//
// Goal: a cycle should end when gc_heap_live (what the last mark found live
// plus the bytes handed out since, counted a window at a time) reaches
//     live * (1 + GOGC/100), at least 4 MiB * GOGC/100  (Go's heapminimum)
// GOGC comes from GOMEM_GOGC or gm_set_gc_percent; -1 turns pacing off.
// A stop-the-world cycle starts at the goal (gc_trigger = goal). A cycle
// that marks beside the program starts earlier, so that marking ends as the
// heap reaches the goal. The runway is the larger of two estimates of what
// the program will allocate while the background marker works alone (the
// last mark's time, scaled up by the share of its scan work the assists did):
// what it allocated during the last mark, so scaled, and its allocation
// rate between the last cycle's end and this one's first stop times that
// time (a mark that ran while the program faulted fresh pages in saw a
// fraction of its usual rate: on gclatency the bytes alone gave the next
// cycle 146 MB of runway where its rate asked for about 250, and assists
// took 15-20 ms of 1 ms iterations). Plus a tenth, and no less than
// the previous cycle's (Go keeps the largest of its last cons/mark ratios),
// kept between 5% and 95% of the distance from live to goal (30% before the
// first concurrent cycle).
//
// Assists (Go's gcAssistAlloc): while marking runs beside the program, the
// scan work done (gc_scan_done: the background marker's and the assists')
// must keep pace with the allocation: when the program has used a fraction
// f of the runway it had at the first stop (to the hard goal, 1.1 x goal),
// f of the expected scan work (the last cycle's) must be done. A thread
// that hands out bytes while the work lags pays the shortfall with scan
// work of its own, at most twice its bytes' share and ASSIST_MAX_SCAN per
// payment, so that no single allocation stalls long; while the background
// marker is ahead (Go's background credit) allocation pays nothing. The
// work comes from the global grey list (mgcmark.c); a thread that finds
// too little (a linked list is marked one object at a time) waits until the
// background marker has done the rest of its share, as Go parks it on the
// assist queue, but at most 2 ms per payment (past twice the goal it waits
// for the cycle's end).
//
// Memory limit (gm_set_memory_limit): a second trigger, Go's
// memoryLimitHeapGoal: the limit less what gomem holds besides GC spans
// (malloc's pages, metadata) less a 3% headroom, computed at the end of each
// cycle and when the limit changes. Cycles only the limit asks for are
// rationed by a bucket (Go's gcCPULimiter): each cycle's pause fills it, the
// program's time between cycles drains it, and while it holds LIMITER_CAP
// such a cycle waits. Over a stretch longer than the bucket, collections
// take at most about half of the time: over its limit a program slows down
// but runs on. One long pause (a descheduled collector) does not hold
// collections back, only a sustained share of more than half does.
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "mgc.h"
#include "mgcmark.h"
#include "mgcpacer.h"
#include "mgcscavenge.h"
#include "mgcsweep.h"
#include "mheap.h"
#include "os.h"

_Atomic uint64_t gc_heap_live;
_Atomic uint64_t gc_trigger = 4u << 20;
static _Atomic uint64_t gc_goal = 4u << 20;
static _Atomic uint64_t gc_limit_trigger = UINT64_MAX; // the memory limit's goal
static _Atomic int gc_percent = 100;
static _Atomic uint64_t heap_marked; // bytes live after the last mark
static bool pacer_conc;              // cycles mark beside the program (gc_lock)
static bool conc_seen;               // a concurrent cycle ran (gc_lock)
static _Atomic uint64_t conc_runway; // the runway for the next cycle (gc_lock writes)
static uint64_t runway_prev;         // the last cycle's own estimate (gc_lock)
static uint64_t mark_t0;             // when marking began (gc_lock)
static double idle_rate;             // bytes per ns allocated before it (gc_lock)
static _Atomic uint64_t mark_alone_ns; // its marker's time alone (gc_lock writes)
// Between cycles gc_due estimates the runway again from the rate since the
// last cycle's end, each time the heap grows by a 64th of the distance from
// live to goal, from a 16th of the way on (rate_check). A cycle due by rate
// sets rate_due to goal_gen, the goal's generation it was computed for: a
// new goal (set_goal) makes it stale, so a late store cannot start a cycle
// for an old goal. rate_gen is the generation whose goal may be reached by
// rate (UINT64_MAX: none, as with stop-the-world cycles); a stale rate_check
// costs a clock read at most.
static _Atomic uint64_t rate_check = UINT64_MAX, goal_gen, rate_due = UINT64_MAX,
                        rate_gen = UINT64_MAX;
static _Atomic uint64_t scan_estimate; // bytes the last mark scanned (gc_lock writes)
static _Atomic uint64_t assist_ns, assist_scanned; // totals
static _Atomic uint64_t mark_live0, mark_room0;      // at the first stop (gc_lock writes)
static _Atomic uint64_t mark_assisted;               // scan work of this cycle's assists

#define HEAP_MINIMUM ((uint64_t)4 << 20)
static _Atomic uint64_t heap_minimum = HEAP_MINIMUM; // at GOGC=100 (gc_lock writes)
#define LIMITER_CAP (50 * 1000 * 1000ull) // ns of collection beyond half the time
#define ASSIST_MAX_SCAN ((uint64_t)256 << 10)
#define ASSIST_MAX_NAPS 40 // 50 us each: no allocation waits more than 2 ms
#define ASSIST_SLACK 8     // the work may lag by 1/8 of it before assists start
static _Atomic uint64_t limiter_fill; // ns (gc_lock writes)
static _Atomic uint64_t last_end_ns;  // when the last cycle ended (gc_lock writes)

static uint64_t goal_for(uint64_t live, int percent) {
  if (percent < 0)
    return UINT64_MAX;
  uint64_t goal = live + live / 100 * (uint64_t)percent;
  uint64_t min;
  if (__builtin_mul_overflow(relaxed_load(&heap_minimum), (uint64_t)percent, &min))
    min = UINT64_MAX;
  min /= 100;
  return goal > min ? goal : min;
}

// trigger_for: where a cycle for goal starts, live bytes being marked.
static uint64_t trigger_for(uint64_t live, uint64_t goal) {
  if (goal == UINT64_MAX || !pacer_conc || goal <= live)
    return goal;
  uint64_t span = goal - live, runway = conc_seen ? relaxed_load(&conc_runway) : span / 10 * 3;
  if (runway < span / 20)
    runway = span / 20;
  if (runway > span / 20 * 19)
    runway = span / 20 * 19;
  return goal - runway;
}

static void set_goal(uint64_t live, int percent) {
  uint64_t goal = goal_for(live, percent), trigger = trigger_for(live, goal);
  uint64_t gen = relaxed_load(&goal_gen) + 1; // (set_goal runs under gc_lock)
  relaxed_store(&gc_goal, goal);
  relaxed_store(&gc_trigger, trigger);
  uint64_t span = goal > live ? goal - live : 0, earliest = live + span / 16;
  bool check = pacer_conc && conc_seen && goal != UINT64_MAX && earliest < trigger;
  relaxed_store(&rate_gen, check ? gen : UINT64_MAX);
  relaxed_store(&rate_check, check ? earliest : UINT64_MAX);
  atomic_store_explicit(&goal_gen, gen, memory_order_release); // after the goal it numbers
}

// due_by_rate: live (at least rate_check) is close enough to the goal that,
// at the program's allocation rate since the last cycle ended, the
// background marker alone would finish as the heap reaches the goal (see
// the top of the file); checked again after the next 64th of the distance.
static bool due_by_rate(uint64_t live) {
  uint64_t gen = atomic_load_explicit(&goal_gen, memory_order_acquire);
  uint64_t goal = relaxed_load(&gc_goal); // gen's goal or a newer one
  uint64_t marked = relaxed_load(&heap_marked), end = relaxed_load(&last_end_ns);
  uint64_t span = goal > marked ? goal - marked : 0;
  relaxed_store(&rate_check, live + (span / 64 > 0 ? span / 64 : 1));
  if (relaxed_load(&rate_gen) != gen)
    return false;
  uint64_t now = os_nanotime();
  if (end == 0 || now <= end || live < marked + span / 16 || live >= goal)
    return false; // (no rate from a burst: a 16th of the way at least)
  double rate = (double)(live - marked) / (double)(now - end);
  double runway = rate * (double)relaxed_load(&mark_alone_ns) * 1.1;
  if ((double)(goal - live) > runway)
    return false;
  relaxed_store(&rate_due, gen);
  return true;
}

// limit_goal: the GC heap size that would take the memory gomem holds to
// its limit less a 3% headroom (UINT64_MAX without a limit).
static uint64_t limit_goal(void) {
  uint64_t limit = relaxed_load(&gm_mem_limit);
  if (limit == UINT64_MAX)
    return UINT64_MAX;
  uint64_t held, dirty;
  mheap_memory(&held, &dirty);
  uint64_t gcspans = relaxed_load(&gc_span_bytes);
  uint64_t other = held > gcspans ? held - gcspans : 0, headroom = limit / 100 * 3;
  return limit > other + headroom ? limit - other - headroom : 0;
}

static void gc_limit_changed(void) {
  relaxed_store(&gc_limit_trigger, limit_goal());
  gc_maybe_start();
}

void pacer_init(void) {
  if (gm_opt.gogc_set)
    relaxed_store(&gc_percent, gm_opt.gogc);
  set_goal(0, relaxed_load(&gc_percent));
  relaxed_store(&gc_limit_trigger, limit_goal());
  atomic_store(&mem_limit_hook, gc_limit_changed);
}

int gc_due(void) {
  uint64_t live = relaxed_load(&gc_heap_live);
  if (live >= relaxed_load(&gc_trigger) && relaxed_load(&gc_percent) >= 0)
    return 1;
  if (relaxed_load(&rate_due) == atomic_load(&goal_gen) ||
      (live >= relaxed_load(&rate_check) && due_by_rate(live)))
    return 1;
  if (live < relaxed_load(&gc_limit_trigger))
    return 0;
  uint64_t fill = relaxed_load(&limiter_fill), ran = os_nanotime() - relaxed_load(&last_end_ns);
  return fill < LIMITER_CAP + ran ? 2 : 0;
}

void pacer_concurrent(bool on) {
  pacer_conc = on;
  set_goal(relaxed_load(&heap_marked), relaxed_load(&gc_percent));
}

bool pacer_far_past_goal(void) {
  uint64_t goal = relaxed_load(&gc_goal);
  return goal != UINT64_MAX && relaxed_load(&gc_heap_live) / 2 >= goal;
}

uint64_t pacer_scan_estimate(void) {
  return relaxed_load(&scan_estimate);
}

uint64_t pacer_mark_done(uint64_t marked, uint64_t scanned, uint64_t grew, bool conc) {
  relaxed_store(&heap_marked, marked);
  relaxed_store(&gc_heap_live, marked);
  relaxed_store(&scan_estimate, scanned);
  if (conc) {
    conc_seen = true;
    uint64_t assisted = relaxed_load(&mark_assisted);
    double share = scanned > assisted ? (double)(scanned - assisted) / (double)scanned : 0;
    double alone = 1 / (share > 0.25 ? share : 0.25); // the background marker's time, relative
    uint64_t now = os_nanotime(), mark_ns = now > mark_t0 ? now - mark_t0 : 0;
    double by_bytes = (double)grew * alone, by_rate = idle_rate * (double)mark_ns * alone;
    uint64_t runway = (uint64_t)((by_bytes > by_rate ? by_bytes : by_rate) * 1.1);
    relaxed_store(&mark_alone_ns, (uint64_t)((double)mark_ns * alone));
    relaxed_store(&conc_runway, runway > runway_prev ? runway : runway_prev);
    runway_prev = runway;
  }
  set_goal(marked, relaxed_load(&gc_percent));
  relaxed_store(&gc_limit_trigger, limit_goal());
  return relaxed_load(&gc_goal);
}

// pacer_cycle_done: a cycle that paused the program for pause ns ended at
// end; the time since the previous cycle ended, less the pause, is the
// program's, and drains the limiter's bucket.
void pacer_cycle_done(uint64_t end, uint64_t pause) {
  uint64_t prev = relaxed_load(&last_end_ns), elapsed = prev && end > prev ? end - prev : pause;
  uint64_t ran = elapsed > pause ? elapsed - pause : 0;
  uint64_t fill = relaxed_load(&limiter_fill) + pause;
  relaxed_store(&limiter_fill, fill > ran ? fill - ran : 0);
  relaxed_store(&last_end_ns, end);
}

void pacer_mark_begin(void) {
  uint64_t goal = relaxed_load(&gc_goal), live = relaxed_load(&gc_heap_live);
  uint64_t hard = goal + goal / 10, room = hard > live ? hard - live : 0;
  uint64_t now = os_nanotime(), end = relaxed_load(&last_end_ns);
  uint64_t marked = relaxed_load(&heap_marked);
  bool ran = end != 0 && now > end && live > marked;
  idle_rate = ran ? (double)(live - marked) / (double)(now - end) : 0;
  mark_t0 = now;
  relaxed_store(&mark_live0, live);
  relaxed_store(&mark_assisted, 0);
  relaxed_store(&mark_room0, room > ((uint64_t)1 << 20) ? room : (uint64_t)1 << 20);
}

// ---------------------------------------------------------------------------
// The background marker's share of the CPUs (Go's gcBackgroundUtilization,
// 25%, and findRunnableGCWorker's dedicated, fractional and idle workers).
//
// gomem's background marker is one thread. When a quarter of the CPUs is a
// core or more (4 CPUs and up), it is Go's dedicated worker and runs
// throughout. With fewer it is Go's fractional worker: its CPU time while
// marking runs beside the program stays within u = CPUs / 4 cores times the
// clock since marking began (on 2 CPUs, half a core), by pausing in the
// drain (pacer_worker_due, pacer_worker_pause). But while the program
// leaves a core idle it is Go's idle worker, and runs on; that time counts
// as idle, not background. The kernel does not say whether a core is
// idle, so the marker reads it from clocks: while it pauses, the process
// using less than CPUs - 1/4 cores over 2 ms says a core went idle; while
// it runs on, its own CPU time under 0.9 of the clock over WORKER_WINDOW
// says it shares a core with the program (the scheduler switches between
// them every few ms, so that shorter windows see either all or nothing).
// An assist that waits for the marker's work ends a pause (gc_assist).
//
// GOMEM_GC_FRACTIONAL=0 turns the pauses off (then the marker is a dedicated
// worker, all of its time background: without pauses the idle test above
// has nothing to go by, and the drain reads no clock). They were off by
// default for a while: test_gc_threads in kernel-tracking mode under TSan
// reported, in 2 of 12 runs, an assist reading a span that another thread
// was setting up. Not a span reused under a scanner: a new one, found
// through a stale word before its first object was marked black, whose
// acquire TSan did not see (gc_span_kind, mgcwork.h, tells it now).
//
// Measured with 1 ms windows on this project's 2-CPU machine, a spinning
// thread beside two others saw 1.00, 1.00, 1.00, 0.20 of each window; after
// any pause, the first windows always 1.00 (the scheduler owes it time).
#define WORKER_CHECK (1000 * 1000ull)      // ns between looks at the clocks
#define WORKER_WINDOW (8 * 1000 * 1000ull) // ns over which it tells idle from shared
// At most this long a pause (the rescans of written pages run outside the
// drain, and their CPU time is counted at its next look).
#define WORKER_PAUSE_MAX (10 * 1000 * 1000ull)

// The marker's state: its thread only (the background thread, gc_lock).
static struct {
  double u;                    // share of a core it may use (1 and up: always)
  unsigned ncpu;               // CPUs (gc_nworkers: GOMEM_GC_PROCS or all)
  bool idle;                   // a core is idle: runs on as Go's idle worker
  uint64_t t0, next, cpu;      // marking began; next look; own CPU at the last
  uint64_t frac_ns, idle_ns;   // its CPU time marking, as fractional / idle worker
  uint64_t w_t, w_cpu, w_proc; // window start: clock, own and process CPU
  uint64_t pause;              // ns to pause, set by pacer_worker_due
} bgw;
static _Atomic uint32_t bgw_paused; // futex word: 1 while it pauses
// Totals for gm_stats: marking's clock, the marker's CPU as background / idle.
static _Atomic uint64_t mark_total_ns, bg_total_ns, idle_total_ns;

void pacer_worker_begin(unsigned ncpu) {
  uint64_t now = os_nanotime(), cpu = os_clock_ns(CLOCK_THREAD_CPUTIME_ID);
  bgw.ncpu = ncpu;
  bgw.u = (double)ncpu / 4;
  if (bgw.t0 == 0) // the first cycle starts as idle worker; the others as the last ended
    bgw.idle = true;
  bgw.t0 = bgw.w_t = now;
  bgw.next = now + WORKER_CHECK;
  bgw.cpu = bgw.w_cpu = cpu;
  bgw.frac_ns = bgw.idle_ns = 0;
  bgw.w_proc = os_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
}

// worker_window: at the end of a window, idle or shared from now on.
static void worker_window(uint64_t now, uint64_t cpu) {
  uint64_t wall = now - bgw.w_t;
  if (wall < (bgw.idle ? WORKER_WINDOW : 2 * WORKER_CHECK)) // (a pause shows at once)
    return;
  uint64_t proc = os_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
  if (bgw.idle)
    bgw.idle = (double)(cpu - bgw.w_cpu) >= 0.9 * (double)wall;
  else
    bgw.idle = (double)(proc - bgw.w_proc + wall / 4) < (double)bgw.ncpu * (double)wall;
  bgw.w_t = now;
  bgw.w_cpu = cpu;
  bgw.w_proc = proc;
}

bool pacer_worker_due(void) {
  if (!gm_opt.gc_fractional || bgw.u >= 1) // (all of its time is background)
    return false;
  uint64_t now = os_nanotime();
  if (now < bgw.next)
    return false;
  bgw.next = now + WORKER_CHECK;
  uint64_t cpu = os_clock_ns(CLOCK_THREAD_CPUTIME_ID), own = cpu - bgw.cpu;
  uint64_t budget = (uint64_t)(bgw.u * (double)(now - bgw.t0)), frac = own;
  if (bgw.idle) // the fractional worker's time first, the rest idle
    frac = budget <= bgw.frac_ns ? 0 : budget - bgw.frac_ns < own ? budget - bgw.frac_ns : own;
  bgw.cpu = cpu;
  bgw.frac_ns += frac;
  bgw.idle_ns += own - frac;
  worker_window(now, cpu);
  if (bgw.idle || bgw.frac_ns <= budget)
    return false;
  double pause = (double)(bgw.frac_ns - budget) / bgw.u; // till the budget catches up
  bgw.pause = pause < (double)WORKER_PAUSE_MAX ? (uint64_t)pause : WORKER_PAUSE_MAX;
  return true;
}

void pacer_worker_pause(void) {
  uint64_t end = os_nanotime() + bgw.pause, now;
  atomic_store(&bgw_paused, 1);
  while (atomic_load(&bgw_paused) && (now = os_nanotime()) < end) {
    struct timespec ts = {0, (long)(end - now)}; // (under WORKER_PAUSE_MAX: below 1 s)
    syscall(SYS_futex, &bgw_paused, FUTEX_WAIT_PRIVATE, 1, &ts, NULL, 0);
  }
  atomic_store(&bgw_paused, 0);
  bgw.next = os_nanotime() + WORKER_CHECK;
}

uint64_t pacer_worker_end(uint64_t now, uint64_t cpu) {
  relaxed_add(&bg_total_ns, bgw.frac_ns + (cpu > bgw.cpu ? cpu - bgw.cpu : 0));
  relaxed_add(&idle_total_ns, bgw.idle_ns);
  relaxed_add(&mark_total_ns, now - bgw.t0);
  return bgw.idle_ns;
}

// worker_wake ends the marker's pause: a thread waits for its work.
static void worker_wake(void) {
  if (atomic_load(&bgw_paused) && atomic_exchange(&bgw_paused, 0))
    syscall(SYS_futex, &bgw_paused, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

// assist_debt: the scan work the assists owe now, and the share of a
// payment for bytes handed out (*share).
static uint64_t assist_debt(uint64_t bytes, uint64_t *share) {
  uint64_t est = relaxed_load(&scan_estimate), done = relaxed_load(&gc_scan_done);
  if (est < done + est / 8)
    est = done + est / 8; // (the estimate may fall short)
  uint64_t live = relaxed_load(&gc_heap_live), live0 = relaxed_load(&mark_live0);
  double ratio = (double)est / (double)relaxed_load(&mark_room0);
  double want = ratio * (double)(live > live0 ? live - live0 : 0);
  *share = (uint64_t)(2 * ratio * (double)bytes);
  double owed = want - (double)done - (double)est / ASSIST_SLACK;
  return owed > 0 ? (uint64_t)owed : 0;
}

void gc_assist(uint64_t bytes) {
  if (!relaxed_load(&gc_blacken) || gm_tls_m.locks != 0)
    return;
  uint64_t share, w = assist_debt(bytes, &share);
  if (w > share)
    w = share;
  if (w > ASSIST_MAX_SCAN)
    w = ASSIST_MAX_SCAN;
  if (w == 0)
    return;
  uint64_t t0 = os_nanotime();
  uint64_t got = gc_mark_assist(w);
  relaxed_add(&assist_scanned, got);
  relaxed_add(&mark_assisted, got);
  if (got < w) { // no grey object to take (a list is marked one by one): wait
    uint64_t target = relaxed_load(&gc_scan_done) + (w - got);
    worker_wake(); // (Go parks the assist: its P runs an idle worker)
    struct timespec nap = {0, 50000};
    for (int i = 0; i < ASSIST_MAX_NAPS && relaxed_load(&gc_blacken) &&
                    relaxed_load(&gc_scan_done) < target;
         i++)
      nanosleep(&nap, NULL); // (stoppable: not in a critical section)
  }
  relaxed_add(&assist_ns, os_nanotime() - t0);
}

// gm_set_gc_percent: the trigger is moved under gc_lock, so a cycle ending
// meanwhile cannot overwrite it with the goal for the old percentage.
void pacer_set_min_heap(uint64_t bytes) {
  gc_ensure_init();
  gc_lock_cycle();
  relaxed_store(&heap_minimum, bytes);
  set_goal(relaxed_load(&heap_marked), relaxed_load(&gc_percent));
  gc_unlock_cycle();
}

GM_EXPORT int gm_set_gc_percent(int percent) {
  gc_ensure_init();
  if (percent < 0)
    percent = -1;
  gc_lock_cycle();
  int old = atomic_exchange(&gc_percent, percent);
  set_goal(relaxed_load(&heap_marked), percent);
  gc_unlock_cycle();
  if (percent >= 0)
    gc_maybe_start();
  return old;
}

uint64_t pacer_assist_ns(void) {
  return relaxed_load(&assist_ns);
}

void pacer_stats(gm_stats_t *st) {
  st->gc_heap_alloc = relaxed_load(&gc_heap_live);
  st->gc_heap_live = relaxed_load(&heap_marked);
  uint64_t goal = relaxed_load(&gc_goal), lim = relaxed_load(&gc_limit_trigger);
  if (relaxed_load(&gc_percent) < 0 || lim < goal)
    goal = lim;
  st->next_gc = goal == UINT64_MAX ? 0 : goal;
  st->gc_percent = relaxed_load(&gc_percent);
  st->assist_total_ns = pacer_assist_ns();
  st->assist_scanned = relaxed_load(&assist_scanned);
  st->mark_background_ns = relaxed_load(&bg_total_ns);
  st->mark_idle_ns = relaxed_load(&idle_total_ns);
  st->mark_total_ns = relaxed_load(&mark_total_ns);
}
