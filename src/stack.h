// stack.h: the stack allocator for coroutines (coro.c), twin of Go's
// stack.go (stackpool, stackcache, stackLarge), for C stacks that cannot move.
//
// Go grows a goroutine's stack by copying it; C cannot (pointers into a
// stack are legal and nothing says which words are pointers), so gomem gets
// Go's economics from the kernel instead: a stack is a slot of a fixed size
// class (64 KiB, 256 KiB, 1 MiB, 8 MiB) carved from a large MAP_NORESERVE
// reservation, and only the pages a coroutine touches are ever resident.
// Each slot's lowest page is a guard: MADV_GUARD_INSTALL (Linux 6.13) marks
// it without splitting the mapping, else mprotect (one mapping split per
// slot: bounded by vm.max_map_count, see stack_alloc).
//
// Slots: [lo, lo + size), the guard page at lo, the usable stack above it,
// the top (hi = lo + size) where a coroutine's first frame goes. The slot
// of an address is found in O(1) without a lock (stack_slot_of: a table of
// 4 GiB granules, one region each), so the stop handler and the overflow
// handler may ask.
//
// Free slots: a per-thread cache of up to STACK_CACHE slots per class (no
// lock; flushed at thread exit) and a global list per class (stack_lock). A
// slot keeps its pages while cached; a slot on the global list keeps only
// its top page (the rest is released).
//
// Locking: stack_lock (RANK_STACK) around the regions' carving and the
// global lists; the region table is append-only and read without a lock.
#ifndef GOMEM_STACK_H
#define GOMEM_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STACK_CLASSES 4
#define STACK_GUARD 4096 // bytes of guard at a slot's bottom

// stack_class_size returns the slot size of class c.
size_t stack_class_size(int c);
// stack_class_for returns the smallest class whose usable size holds
// `bytes` (0: the default, 64 KiB), or -1 if none does.
int stack_class_for(size_t bytes);

// stack_alloc returns the low end of a free slot of class c, its guard
// installed, or 0 with errno (ENOMEM: no address space, or the mapping
// limit of the mprotect fallback reached).
uintptr_t stack_alloc(int c);
// stack_free gives slot lo of class c back (to the calling thread's cache,
// else to the global list, its pages but the top one released).
void stack_free(uintptr_t lo, int c);

// stack_slot_of: if addr lies in a slot (guard included), sets *lo and *c
// and returns true. Lock-free and async-signal-safe.
bool stack_slot_of(uintptr_t addr, uintptr_t *lo, int *c);

// stack_thread_exit flushes the calling thread's cache (threads that used
// coroutines call it through a thread-specific key).
void stack_thread_exit(void);
void stack_fork_init(void); // once, before the first slot: fork takes stack_lock

#endif // GOMEM_STACK_H
