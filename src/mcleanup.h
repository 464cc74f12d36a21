// mcleanup.h: weak pointers and cleanups (mcleanup.c, twin of Go's weak
// package and mcleanup.go): gm_weak_make, gm_weak_get, gm_add_cleanup,
// gm_cancel_cleanup, gm_keep_alive, and what the collector calls.
//
// Invariants: a handle map entry's object and cell were both marked at the
// last collection (or allocated since), and the cell holds the object's
// address; a cleanup record's object was marked at the last collection (or
// allocated since), or is kept marked while its record waits for room.
//
// Locking: cleanup_lock (RANK_CLEANUP), taken with gm_lock; the collector's
// entry points run with the world stopped.
#ifndef GOMEM_MCLEANUP_H
#define GOMEM_MCLEANUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roots.h"

void cleanup_init(void); // at gc_init
// cleanup_clear_handles: after the drain, before finalizers are queued.
void cleanup_clear_handles(bool (*alive)(uintptr_t addr));
// cleanup_queue_dead: after finalizers are queued; see mcleanup.c.
void cleanup_queue_dead(bool (*marked)(uintptr_t obj), void (*keep)(uintptr_t obj),
                        bool (*push)(void (*fn)(void *), void *arg));
void cleanup_roots(root_fn fn, void *ctx); // the arguments: roots
void cleanup_forget(uintptr_t obj);        // gm_free released obj
size_t cleanup_count(void);                // records waiting

#endif // GOMEM_MCLEANUP_H
