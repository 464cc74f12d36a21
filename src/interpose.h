// interpose.h: the C library functions gomem's collector wraps: thread
// creation (a new thread's start argument is a root until the thread has
// registered; its stop signal starts unblocked) and the signal-mask calls
// (the stop signal cannot be blocked while the collector is in use). Also
// the creation of gomem's own threads.
//
// Locking: pending_lock (RANK_PENDING, gm_lock) around the start blocks.
#ifndef GOMEM_INTERPOSE_H
#define GOMEM_INTERPOSE_H

#include <signal.h>

#include "roots.h"

// interpose_create_internal starts one of gomem's own threads: detached, not
// registered (never stopped, stack not scanned), every signal blocked,
// gm_tls_m.internal set.
int interpose_create_internal(void *(*fn)(void *), void *arg);
// interpose_sigmask_real: the C library's pthread_sigmask (gomem's own use).
int interpose_sigmask_real(int how, const sigset_t *set, sigset_t *old);
// interpose_pending_roots reports the start blocks of threads created and
// not yet registered (world stopped).
void interpose_pending_roots(root_fn fn, void *ctx);
void interpose_init(void); // resolves the C library's functions (may allocate)
void interpose_fork_child(void);

#endif // GOMEM_INTERPOSE_H
