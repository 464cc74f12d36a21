// threads.h: the collector's registry of threads (twin of the allm list of
// Go's proc.go). Each thread whose stack and registers are roots has a
// record: its kernel tid, thread pointer and stack bounds and, while the world
// is stopped, where its live stack starts and its saved registers.
//
// Before the collector is in use (gc_inited), a thread the program starts is
// only noted: a record with its tid and pthread_t, no stack bounds (reading
// them costs the C library a cpuset allocation and a system call). gc_init
// completes every noted record (threads_init), under threads_lock, and from
// then on threads register in full; a process that never collects pays for
// the note only.
//
// Invariants:
//   - a thread is on the list from threads_register_self until its exit
//     (allocator's thread-exit path, after its caches are released) or
//     gm_thread_detach;
//   - the list changes only under threads_lock, which a stopper holds from
//     stw_stop to stw_start, so a stopped world has a fixed list;
//   - a registered thread is stoppable: its stop signal is not blocked
//     (interpose.c strips it from every mask the program sets).
//
// Locking: threads_lock (RANK_THREADS), taken stoppably, never inside a
// critical section.
#ifndef GOMEM_THREADS_H
#define GOMEM_THREADS_H

#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>
#include <ucontext.h>

#include "lock.h"

// Saved registers of an interrupted thread. x86-64: the general registers and
// the FXSAVE area (xmm0-15 carry pointers in the middle of struct copies).
// Elsewhere: the whole machine context.
#if defined(__x86_64__)
#define SAVED_REG_WORDS (NGREG + 512 / sizeof(uintptr_t))
#else
#define SAVED_REG_WORDS ((sizeof(mcontext_t) + sizeof(uintptr_t) - 1) / sizeof(uintptr_t))
#endif

#define WB_ENTRIES 256 // Go's wbBuf
typedef struct gthread gthread_t;
struct gthread {
  gthread_t *next, *prev; // threads list (threads_lock)
  pid_t tid;              // kernel thread id (threads_lock)
  uintptr_t lo, hi;       // stack bounds (immutable once bounded)
  pthread_t self;         // the thread's pthread_t (0: the main thread, seen from another)
  bool bounded;           // lo and hi are known (false: only noted; threads_lock)
  // tp: the thread pointer (its TCB), 0 until known. Written by the thread
  // itself when it registers or parks; read by the stopper after the ack.
  uintptr_t tp;
  // mapped_lo: lowest stack address known to be mapped (lo but for the main
  // thread, whose stack grows on demand). Written by the thread itself while
  // parking, read by the stopper after the ack.
  uintptr_t mapped_lo;
  bool dead; // tgkill said ESRCH; dropped at restart (threads_lock)
  bool primordial; // the process's initial thread (immutable)
  // user_hi: the cold end of the stack the thread runs on as the program
  // declared it (Boehm GC's GC_set_stackbottom), 0 if none: a stack gomem
  // cannot bound itself (stw_declared_stack). Written by any thread, read by
  // the thread itself while parking.
  _Atomic uintptr_t user_hi;
  // Parking: written by the thread itself before it acknowledges, read by the
  // stopper after it has seen the ack (stw.c's ack count orders them).
  _Atomic uint32_t parked_epoch; // the stop it last parked for
  uintptr_t sp;                  // lowest address of its live stack
  uintptr_t alt_lo, alt_hi;      // the alternate signal stack it parked on, or 0
  uintptr_t co_lo, co_hi;        // the coroutine stack it was running on, or 0
  bool co_declared;              // co_lo: sp on a stack gomem cannot bound (roots.c)
  size_t nregs;                  // words in regs (0: spilled on the stack)
  uintptr_t regs[SAVED_REG_WORDS];
  // The explicit barrier's buffer (mwbbuf.c): pointers gm_store saw while
  // marking ran. Written by the thread itself, read and emptied by the
  // collector at the last stop.
  size_t wb_n;
  uintptr_t wb[WB_ENTRIES];
};

extern gm_mutex_t threads_lock;
extern gthread_t *threads_list; // threads_lock; read by stop handlers while stopping

void threads_setup(void);        // idempotent; needs neither heap nor collector
int threads_register_self(void); // 0, or -1 with errno (ENOMEM, EAGAIN)
void threads_note_self(void);    // a new thread, the collector not in use yet
void threads_register_self_or_die(void);
// threads_ensure_registered: its test inline, for the GC allocation slow
// path (mcache.h's declarations are the caller's to include).
#define threads_ensure_registered()                                                                \
  do {                                                                                             \
    struct gthread *r_ = gm_tls_m.thread;                                                          \
    if (unlikely(r_ == NULL || !r_->bounded || gm_tls_mcache == &mcache_shared))                   \
      threads_register_self_or_die();                                                              \
  } while (0)
void threads_unregister_self(void);
void threads_init(void);    // at gc_init: the main thread and the caller
size_t threads_count(void); // registered threads
gthread_t *threads_find_locked(pid_t tid);
gthread_t *threads_self_record(pid_t tid); // in a stop handler: the caller's record
void threads_drop_dead_locked(void);
void threads_fork_child(void);

// threads_lock_acquire: for the stopper (stw.c) and registration.
void threads_lock_acquire(void);
void threads_lock_release(void);

// The calling thread's stack, as threads_register_self records it: [*lo, *hi)
// and the lowest address known mapped. 0, or -1 if unknown.
int threads_stack_bounds(uintptr_t *lo, uintptr_t *hi, uintptr_t *mapped_lo);

pid_t sys_gettid(void);

// thread_pointer: the calling thread's TCB address.
GM_INLINE uintptr_t thread_pointer(void) {
  uintptr_t tp;
#if defined(__x86_64__)
  __asm__("mov %%fs:0, %0" : "=r"(tp));
#elif defined(__aarch64__)
  __asm__("mrs %0, tpidr_el0" : "=r"(tp));
#else
  tp = (uintptr_t)__builtin_thread_pointer();
#endif
  return tp;
}

#endif // GOMEM_THREADS_H
