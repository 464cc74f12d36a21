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

// Finalization orders (Boehm GC's): FIN_ORDERED, gm_set_finalizer's (Go's):
// the object's contents are roots, so what it points to, and a finalizable
// object it reaches, wait for its finalizer; FIN_IGNORE_SELF: the same, but
// for the words that point into the object itself (an object that points to
// itself is still finalized); FIN_NO_ORDER: they are not (what it points to
// is still kept for its finalizer once it is queued); FIN_UNREACHABLE: as
// FIN_ORDERED, and it also waits while an object queued this cycle with
// FIN_NO_ORDER reaches it (it is queued only after those are marked from).
enum fin_order { FIN_ORDERED = 0, FIN_NO_ORDER = 1, FIN_IGNORE_SELF = 2, FIN_UNREACHABLE = 3 };

void fin_init(void);
bool fin_object_start(uintptr_t p); // p starts an allocated GC object (or a tiny one)
// fin_set sets, changes (fn != NULL) or removes (fn == NULL) ptr's
// finalizer, returning the previous one in *old_fn, *old_arg (NULL if none);
// false if ptr is not the start of a GC object.
bool fin_set(void *ptr, void (*fn)(void *, void *), void *arg, int order,
             void (**old_fn)(void *, void *), void **old_arg);
// fin_for_each calls fn on every finalizable object, its argument and its
// order (world stopped).
void fin_for_each(void (*fn)(void *ctx, uintptr_t obj, uintptr_t arg, int order), void *ctx);
extern bool fin_manual;            // set before the collector starts: no finalizer thread
extern void (*fin_notifier)(void); // fin_manual: called after a cycle queued finalizers
size_t fin_queued(void);           // finalizers waiting to run
size_t fin_run_queued(void);       // fin_manual: runs them here; returns how many

// Weak links: *link is set to NULL when obj becomes unreachable: a short
// link before obj's finalizer, if any, is queued, a long one only once no
// finalizer keeps obj (is_long). obj is the start of a GC object.
// register: 0, 1 if link is registered already, -1 out of memory;
// unregister: whether it was; move: 0, 1 if new_link is registered
// already, -1 if link is not, -2 out of memory. fin_weak_clear (world
// stopped, marking done): alive(addr) tells whether addr lies outside the
// GC heap or in a marked object.
int fin_weak_register(void **link, void *obj, bool is_long);
bool fin_weak_unregister(void **link, bool is_long);
int fin_weak_move(void **link, void **new_link, bool is_long);
void fin_weak_clear(bool (*alive)(uintptr_t addr), bool is_long);
// fin_weak_forget_within: the memory [lo, hi) is freed (its slot may soon
// hold another object): links inside it are dropped. O(links).
void fin_weak_forget_within(uintptr_t lo, uintptr_t hi);
// fin_reserve (world running, before the stop): room in the queue for every
// finalizer that the coming cycle could queue.
void fin_reserve(void);
// fin_queue_dead (world stopped, after the drain): every finalizable object
// that is not marked is marked (mark gets its order), and its finalizer
// queued; those of FIN_UNREACHABLE only if late, the others only if not
// (the collector drains between the two calls).
void fin_queue_dead(bool (*marked)(uintptr_t obj), void (*mark)(uintptr_t obj, int order),
                    bool late);
void fin_queue_roots(root_fn fn, void *ctx); // the queue: roots until run
void fin_wake(void);                         // after a cycle: start the finalizer thread if needed
void fin_forget(uintptr_t obj);              // obj freed by gm_free
void fin_fork_child(void);

#endif // GOMEM_MFINAL_H
