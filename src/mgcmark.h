// mgcmark.h: the mark phase (mgcmark.c, twin of Go's mgcmark.go).
//
// Invariants: marking runs with the world stopped; every root range comes
// from roots.h or the finalizer table; after gc_mark every object reachable
// from the roots is marked.
//
// Locking: work_lock (RANK_WORK, mgcwork.c) between the collector and its
// helper threads; wb_lock (mgcwork.c) for the work buffer lists.
#ifndef GOMEM_MGCMARK_H
#define GOMEM_MGCMARK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// gc_mark runs the mark phase with the world stopped: roots, parallel drain,
// finalizers. Returns the bytes marked.
uint64_t gc_mark(uintptr_t self_sp);
// gc_mark_helpers: 1 (the default) if the helper threads take part in the
// drains; 0 while marking runs beside the program, and for a small stop-the-
// world mark, where waking them costs more than they save (mgc.c decides).
extern _Atomic int gc_mark_helpers;
void gcmark_init(void); // at gc_init
// The mark workers (mgcwork.c): the collecting thread and gc_nworkers() - 1
// helper threads of gomem's own (GOMEM_GC_PROCS, or one per CPU), started
// by gc_start_helpers before the world stops (a stopped thread may hold the
// C library's thread-creation locks); gone in a fork child.
unsigned gc_nworkers(void);
void gc_start_helpers(void);
void gcwork_fork_child(void);

// gc_roots_hook, if set (before the collector starts), reports more root
// ranges at every collection, with the world stopped (libgc.so.1's).
#include "roots.h"
extern void (*gc_roots_hook)(root_fn fn, void *ctx);
// gc_mark_more_hook, if set, is called with the world stopped once a drain
// is done (done false): it may grey more objects (gc_mark_shade) and
// returns true if it did (the drain resumes); and once marking is complete
// (done true). gc_is_marked tells whether an object is marked then.
extern bool (*gc_mark_more_hook)(bool done);
bool gc_is_marked(uintptr_t obj);

// Concurrent marking (design.md §14). gc_blacken: set from the first stop
// to the last; windows loaded meanwhile are allocated black.
extern _Atomic int gc_blacken;
uint64_t gc_mark_begin(uintptr_t self_sp); // world stopped: roots greyed
uint64_t gc_mark_drain(void);              // world running: the caller drains
size_t gc_mark_rescan_written(void);       // written pages' marked objects queued
// A last stop: gc_mark_reroot greys what the written pages, the barrier's
// buffers and the roots point to, and publishes it (gc_mark_pending); with
// little published, gc_mark_end finishes in the same stop (the drain, the
// finalizers, the window snapshot); else the world may run again and
// gc_mark_drain take it, before another last stop (Go's gcMarkDone).
uint64_t gc_mark_reroot(uintptr_t self_sp); // world stopped
uint64_t gc_mark_end(void);                 // world stopped, after gc_mark_reroot
// gc_mark_assist: an allocating thread scans about work bytes of grey
// objects from the global list; returns the bytes scanned.
uint64_t gc_mark_assist(uint64_t work);
extern _Atomic uint64_t gc_scan_done; // bytes scanned this cycle (published in steps)
size_t gc_mark_pending(void); // grey entries published on the global list
// gc_mark_shade greys the objects the n words at w point to (in a critical
// section, while marking runs).
void gc_mark_shade(const uintptr_t *w, size_t n);

// mwbbuf.c: the explicit barrier's buffers (world stopped for the first two).
extern bool gc_barrier_explicit;
void wbbuf_roots(void (*fn)(void *ctx, uintptr_t lo, uintptr_t hi), void *ctx);
void wbbuf_reset_all(void);
void wbbuf_set_marking(int on); // sets gc_blacken and its copy for the inline gm_store
// wbbuf_shade_range greys what [lo, hi) points to while marking runs beside
// the program (coroutine stacks: coro_scan).
void wbbuf_shade_range(void *ctx, uintptr_t lo, uintptr_t hi);
struct gthread;
void wbbuf_thread_exit(struct gthread *r); // the thread leaves the registry
// gc_debug_scan_hook (tests): called by a mark worker after each grey entry
// it scanned (an object's address in the low 47 bits).
extern void (*gc_debug_scan_hook)(uintptr_t entry);

#endif // GOMEM_MGCMARK_H
