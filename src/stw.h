// stw.h: stopping and starting the world (twin of stopTheWorld in Go's
// proc.go, and of Boehm GC's pthread_stop_world.c).
//
// Invariants:
//   - between stw_stop and stw_start every registered thread but the caller
//     is parked outside any critical section, with its registers saved where
//     roots.c finds them, and threads_lock is held by the caller;
//   - a thread parks at most once per stop (gthread.parked_epoch).
//
// Locking: takes threads_lock (stoppably) in stw_stop, releases it in
// stw_start. The caller must not be in a critical section.
#ifndef GOMEM_STW_H
#define GOMEM_STW_H

#include "threads.h"

#define STOP_SIGNAL SIGPWR

void stw_stop(void);
void stw_start(void);
bool stw_stopped(void); // is the world stopped (or being stopped)?
// stw_stopper_hi: the stopper's stack top (roots.c scans its own stack up to it).
uintptr_t stw_stopper_hi(void);
// stw_other_stack bounds the stack sp is on when it is a coroutine's slot or
// a block of gomem's heap (see stw.c); false otherwise.
bool stw_other_stack(uintptr_t sp, uintptr_t *lo, uintptr_t *hi);
// stw_declared_stack: for a thread r on a stack other than its own (at sp),
// the cold end of that stack as the program declared it: r->user_hi, or for
// the primordial thread *stw_main_bottom (Boehm GC's GC_stackbottom, which
// coroutine libraries such as Crystal's rewrite at every switch). False if
// none is declared; *hi = 0 if the declaration cannot be this stack's (sp
// not below it, or it is the thread's own: a stop between the library's
// store and its switch), which roots.c reads as "to the end of the mapping".
bool stw_declared_stack(const gthread_t *r, uintptr_t sp, uintptr_t *lo, uintptr_t *hi);
extern void *volatile *stw_main_bottom; // set by the Boehm GC layer, else NULL
void stw_fork_child(void);

// stop_signal_mask: every signal but the synchronous ones (faults must still
// kill a parked thread).
void stop_signal_mask(sigset_t *s);

#endif // GOMEM_STW_H
