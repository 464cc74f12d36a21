// mfinal.h: finalizers (mfinal.c, twin of Go's mfinal.go).
//
// Invariants: an object with a finalizer, and its finalizer's argument, stay
// allocated until the finalizer has run; a finalizer runs at most once.
//
// Locking: fin_lock (RANK_FIN, gm_lock) around the table and the queue;
// wait_lock (RANK_FIN_WAIT) for the finalizer thread's sleep.
#ifndef GOMEM_MFINAL_H
#define GOMEM_MFINAL_H

#include <stdbool.h>
#include <stdint.h>

#include "roots.h"

void fin_init(void);
// fin_for_each calls fn on every finalizable object and its argument
// (world stopped).
void fin_for_each(void (*fn)(void *ctx, uintptr_t obj, uintptr_t arg), void *ctx);
// fin_reserve (world running, before the stop): room in the queue for every
// finalizer that the coming cycle could queue.
void fin_reserve(void);
// fin_queue_dead (world stopped, after the drain): every finalizable object
// that is not marked is marked, and its finalizer queued.
void fin_queue_dead(bool (*marked)(uintptr_t obj), void (*mark)(uintptr_t obj));
void fin_queue_roots(root_fn fn, void *ctx); // the queue: roots until run
void fin_wake(void);                         // after a cycle: start the finalizer thread if needed
void fin_forget(uintptr_t obj);              // obj freed by gm_free
void fin_fork_child(void);

#endif // GOMEM_MFINAL_H
