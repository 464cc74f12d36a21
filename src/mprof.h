// mprof.h: heap profiles (mprof.c, twin of Go's mprof.go and pprof's heap
// profile writer): sampling, records, gm_heap_profile_write.
//
// Invariants: a sampled object has a large span of its own with sampled
// set (in the hardened build, a large object of its front end: secure_api.c), and (unless recording
// ran out of memory) an entry in the sampled map until it is freed; a thread cache's sample_left is
// INT64_MAX while the rate is 0.
//
// Locking: prof_lock (RANK_PROF, a leaf).
#ifndef GOMEM_MPROF_H
#define GOMEM_MPROF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

extern _Atomic int64_t prof_rate;          // bytes per sample (0: off)
extern _Atomic uint64_t prof_epoch;        // bumped by gm_set_profile_rate
void prof_init(void);                      // at heap init: the environment
int64_t prof_next_sample(void);            // bytes to the next sample (INT64_MAX: off)
void *prof_malloc(size_t size, bool zero); // a sampled allocation (malloc's)
// prof_record_alloc: object p of size bytes was sampled; its stack starts
// below the allocation entry points (GM_ENTRY).
void prof_record_alloc(uintptr_t p, size_t size);
void prof_record_free(uintptr_t p); // a sampled object is freed
void prof_dump_now(void);           // GOMEM_HEAPPROFILE's file, now

// PROF_CORE: the core's malloc samples (the hardened build's front end samples
// its own objects instead, whose layout a core sample would break).
#define PROF_CORE (!GM_SECURE)

// prof_check_rate (the refill paths): a rate set since c drew its count
// takes effect.
#define prof_check_rate(c)                                                                         \
  do {                                                                                             \
    if (unlikely((c)->prof_epoch != relaxed_load(&prof_epoch))) {                                  \
      (c)->prof_epoch = relaxed_load(&prof_epoch);                                                 \
      (c)->sample_left = prof_next_sample();                                                       \
    }                                                                                              \
  } while (0)

// mprof_elf.c: function names from the mapped files' symbol tables.
int elf_open(const char *path, uintptr_t lo, uintptr_t off); // index, or -1
const char *elf_name(int file, uintptr_t pc, size_t *sym);   // NULL if none
void elf_forget(void);                                       // drop them all

#endif // GOMEM_MPROF_H
