// coro.h: coroutines on gomem's stacks (coro.c), twin of Go's coro.go (the
// runtime's coroutines behind iter.Pull) with goroutine-sized stacks.
//
// A coroutine runs on a stack slot of stack.c; its record (gm_co_t) lives at
// the top of that slot, so an idle coroutine costs its slot's top page.
// gm_co_resume switches to it on the calling thread, gm_co_yield switches
// back; the switch saves the callee-saved registers on the stack being left
// and swaps the stack pointer (no signal mask, no floating-point state).
// A coroutine is pinned to the thread that created it: only that thread
// resumes or destroys it (checked), so the switch path has no atomic
// operation.
//
// The collector (roots.c) scans every live coroutine's stack from its saved
// stack pointer to its slot's top with the world stopped (coro_roots); a
// thread stopped while running a coroutine has the stack it was interrupted
// on mapped to its slot (stw.c), so a stop signal landing mid-switch is
// covered either way: the registers are pushed on the stack being left
// before its stack pointer is saved. Shrinking (Go's shrinkstack, at each
// cycle): a coroutine that ran since the last cycle and uses less than a
// quarter of its slot has the touched pages well below its stack pointer
// released; its owner thread does it at its next resumes, a few coroutines
// per call, so nothing touches a stack its owner may be running on.
//
// Locking: co_lock (RANK_CORO) around the registry of all coroutines; each
// thread's own list is its own (no lock).
#ifndef GOMEM_CORO_H
#define GOMEM_CORO_H

#include <stdint.h>

typedef void (*coro_root_fn)(void *ctx, uintptr_t lo, uintptr_t hi);

// coro_roots reports every live coroutine's stack (world stopped).
void coro_roots(coro_root_fn fn, void *ctx);
// coro_cycle_done: a collection ended; threads shrink what ran since.
void coro_cycle_done(void);
// A concurrent cycle: coro_mark_begin at its first stop (coro_roots then
// reports only the coroutines active at that stop, and at the last stop
// those resumed or created since); coro_scan, beside the program, scans the
// stacks of all the others.
void coro_mark_begin(void);
void coro_scan(coro_root_fn fn, void *ctx);
// coro_stats: coroutines alive, bytes of their stacks resident (as measured
// at creation and at each shrink pass), shrinks done.
void coro_stats(uint64_t *count, uint64_t *stack_bytes, uint64_t *shrinks);
// coro_trace: gctrace's part on coroutines (their stacks are roots: part of
// a stop's length), ", N coroutines (M MB stacks, S shrinks)"; "" if none.
void coro_trace(char *buf, size_t n);

#endif // GOMEM_CORO_H
