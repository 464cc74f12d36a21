// mgcscavenge.h: the scavenger (mgcscavenge.c), which returns free pages to
// the OS. It belongs to the allocator (Go keeps it under the mgc prefix).
//
// Locking: scav_lock (RANK_SCAV) for its wake-ups; mheap.lock per slice.
#ifndef GOMEM_MGCSCAVENGE_H
#define GOMEM_MGCSCAVENGE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void scavenger_kick(size_t dirty_pages); // after a span free: start / wake the scavenger
size_t scavenge_all(void);               // release every free page now
void scavenger_init(void);
void scavenger_fork_child(void);

// scavenge_hook, if set, runs at every tick of the scavenger: it gives back
// memory held outside the heap's free pages (the hardened build's quarantine
// of large objects) and returns true while it still holds some, so the
// scavenger does not park. Set once (atomically: the scavenger may run).
typedef bool (*scavenge_hook_fn)(void);
extern _Atomic(scavenge_hook_fn) scavenge_hook;

// The soft memory limit (gm_set_memory_limit, GOMEM_MEMLIMIT; UINT64_MAX:
// none). Over 95% of it, the scavenger returns free pages at every tick
// whatever the recent peak. mem_limit_hook, if set (the collector), runs
// after each change.
extern _Atomic uint64_t gm_mem_limit;
typedef void (*mem_limit_hook_fn)(void);
extern _Atomic(mem_limit_hook_fn) mem_limit_hook;

#endif // GOMEM_MGCSCAVENGE_H
