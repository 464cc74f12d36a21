// bdw.h: libgc.so.1, Boehm GC's (bdwgc 8.2's) binary interface on gomem's
// collector (bdw_alloc.c: allocation and objects; bdw.c: the rest).
//
// A program linked against Debian's libgc.so.1 runs unchanged on gomem's
// collector through LD_LIBRARY_PATH. The library is built from gomem's
// sources without the malloc replacement (Boehm's does not replace malloc
// either), exports Boehm's names unversioned, and keeps Boehm's semantics
// where clients depend on them:
//   - implicit initialisation at the first allocation; setters work before;
//   - objects are rounded up as Boehm rounds them (one extra byte while all
//     interior pointers count, 16-byte granules), so GC_size agrees for
//     small objects; interior pointers always keep an object alive (gomem's
//     marking), so GC_set_all_interior_pointers(0) only drops the extra byte;
//   - uncollectable objects: GC objects listed in an off-heap registry that
//     is a root (so they and what they point to live) until GC_free;
//   - finalizers run in the program's threads: at the next allocation, or,
//     with finalize-on-demand, through GC_invoke_finalizers after the
//     notifier (mfinal.c's fin_manual); ordered and no-order finalization
//     as Boehm's (ignore-self is ordered: a self-cycle keeps the object);
//   - GC_push_other_roots (a variable the program may chain) is called at
//     every collection with the world stopped; GC_push_all inside it adds
//     a root range.
// What it cannot honour is documented at each function; nothing silently
// does the wrong thing.
//
// Locking: bdw_lock (RANK_BDW, gm_lock) around the uncollectable registry;
// the collector reads the registry with the world stopped.
#ifndef GOMEM_BDW_H
#define GOMEM_BDW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gmcore.h"

#define BDW_API __attribute__((visibility("default")))

// Boehm's kinds (gc_inline.h, gc_mark.h).
enum { BDW_PTRFREE = 0, BDW_NORMAL = 1, BDW_UNCOLLECTABLE = 2, BDW_AUNCOLLECTABLE = 3 };

// Settings a client may read and write directly (data symbols of libgc).
extern BDW_API int GC_all_interior_pointers, GC_no_dls, GC_java_finalization;
extern BDW_API int GC_finalize_on_demand, GC_dont_gc;

void bdw_init(void);                  // idempotent; GC_init
void *bdw_alloc(size_t n, int kind);  // one object of a kind; NULL (after the oom fn) on failure
void bdw_after_alloc(void);           // finalizers due at an allocation
uint64_t bdw_total_bytes(void);       // bytes allocated since start (GC_get_total_bytes)
void *bdw_oom(size_t n);              // the oom function's answer
void bdw_warn(const char *msg, uintptr_t arg);
void *bdw_kind_alloc(size_t n, int kind); // a kind of GC_new_kind's (bdw_kinds.c)
void bdw_kinds_init(void);                // installs the collector hook
int bdw_kind_of(uintptr_t obj);           // its GC_new_kind kind, or -1
void bdw_kind_forget(uintptr_t obj);      // GC_free: no longer of its kind

#endif // GOMEM_BDW_H
