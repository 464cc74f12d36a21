// mgcpacer.h: when a cycle starts and who pays for it (mgcpacer.c, twin of
// Go's mgcpacer.go and mgclimit.go).
//
// Invariants: gc_trigger <= the goal; the goal, the triggers and
// heap_marked change under gc_lock (a cycle's end, gm_set_gc_percent) or
// when the memory limit changes; gc_heap_live is added to by allocating
// threads, relaxed.
#ifndef GOMEM_MGCPACER_H
#define GOMEM_MGCPACER_H

#include <stdbool.h>
#include <stdint.h>

#include "gomem.h"

// gc_heap_live: bytes handed out since the last mark plus what it found
// live; a cycle starts when it reaches gc_trigger.
extern _Atomic uint64_t gc_heap_live;
extern _Atomic uint64_t gc_trigger;

void pacer_init(void); // gc_init: GOGC, the first goal, the memory limit's hook
void pacer_concurrent(bool on); // cycles mark beside the program (or no longer)
// gc_due: 0 no cycle is due, 1 GOGC's trigger is reached, 2 only the memory
// limit's is and the limiter lets a cycle start.
int gc_due(void);
// pacer_mark_done (mark termination): marked bytes were found live, scanned
// bytes scanned; grew bytes were allocated while marking ran beside the
// program (concurrent cycles). Sets the next goal and triggers; returns the
// goal.
uint64_t pacer_mark_done(uint64_t marked, uint64_t scanned, uint64_t grew, bool conc);
void pacer_cycle_done(uint64_t end, uint64_t pause); // the limiter's account
uint64_t pacer_scan_estimate(void);                  // bytes the last mark scanned (roots included)
// gc_assist: the calling thread (outside critical sections) handed out
// bytes while marking runs beside the program; it pays with scan work.
void gc_assist(uint64_t bytes);
void pacer_mark_begin(void); // the first stop: the runway the assists pace against
// pacer_set_min_heap: the smallest goal at GOGC=100 (4 MiB, Go's); it
// scales with GOGC as the goal does.
void pacer_set_min_heap(uint64_t bytes);
bool pacer_far_past_goal(void); // the heap passed twice the goal
void pacer_stats(gm_stats_t *st);
uint64_t pacer_assist_ns(void); // time threads spent in assists, in total
// The background marker's share of the CPUs (mgcpacer.c), called by it:
// pacer_worker_begin as marking begins beside the program, on ncpu CPUs;
// in its drains, pacer_worker_due tells it to publish its work and call
// pacer_worker_pause; pacer_worker_end at the last stop (the clock and
// its CPU time then) returns the CPU time it marked as an idle worker.
void pacer_worker_begin(unsigned ncpu);
bool pacer_worker_due(void);
void pacer_worker_pause(void);
uint64_t pacer_worker_end(uint64_t now, uint64_t cpu);

#endif // GOMEM_MGCPACER_H
