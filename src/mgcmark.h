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

#endif // GOMEM_MGCMARK_H
