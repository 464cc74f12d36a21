// mgcmark.h: the mark phase (mgcmark.c, twin of Go's mgcmark.go).
//
// Invariants: marking runs with the world stopped; every root range comes
// from roots.h or the finalizer table; after gc_mark every object reachable
// from the roots is marked.
//
// Locking: work_lock (RANK_WORK) between the collector and its helper
// threads; wb_lock (mgcwork.c) for the work buffer lists.
#ifndef GOMEM_MGCMARK_H
#define GOMEM_MGCMARK_H

#include <stdint.h>

// gc_mark runs the mark phase with the world stopped: roots, parallel drain,
// finalizers. Returns the bytes marked.
uint64_t gc_mark(uintptr_t self_sp);
void gc_start_helpers(void); // before the world stops
void gcmark_init(void);      // at gc_init
void gcmark_fork_child(void);
unsigned gc_nworkers(void);

// Concurrent marking (design.md §14). gc_blacken: set from the first stop
// to the last; windows loaded meanwhile are allocated black.
extern _Atomic int gc_blacken;
uint64_t gc_mark_begin(uintptr_t self_sp); // world stopped: roots greyed
uint64_t gc_mark_drain(void);              // world running: the caller drains
size_t gc_mark_rescan_written(void);       // written pages' marked objects queued
uint64_t gc_mark_end(uintptr_t self_sp);   // world stopped: finish
// gc_mark_assist: an allocating thread scans about work bytes of grey
// objects from the global list; returns the bytes scanned.
uint64_t gc_mark_assist(uint64_t work);
extern _Atomic uint64_t gc_scan_done; // bytes scanned this cycle (published in steps)
// gc_debug_scan_hook (tests): called by a mark worker after each grey entry
// it scanned (an object's address in the low 47 bits).
extern void (*gc_debug_scan_hook)(uintptr_t entry);

#endif // GOMEM_MGCMARK_H
