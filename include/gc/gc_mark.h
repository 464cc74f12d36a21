/* gc/gc_mark.h: Boehm GC's marker interface, as gomem's libgc.so.1 serves
 * it. Inside GC_push_other_roots, GC_push_all adds a root range and
 * GC_set_mark_bit keeps an object (and, conservatively, what it points to).
 * New object kinds: a kind whose descriptor is GC_MAKE_PROC(proc, env) has
 * its procedure called for each of its marked objects (the object itself
 * is not scanned); GC_MARK_AND_PUSH inside it marks what it names. Kinds
 * with other descriptors are scanned whole. */
#ifndef GOMEM_GC_MARK_H
#define GOMEM_GC_MARK_H

#include "gc.h"

#ifdef __cplusplus
extern "C" {
#endif

GC_API void GC_set_mark_bit(const void *);
GC_API void GC_push_conditional(void *lo, void *hi, int all);
GC_API void GC_push_all_stack(void *lo, void *hi);
struct GC_ms_entry; /* a mark stack entry: opaque to programs */
typedef struct GC_ms_entry *(*GC_mark_proc)(GC_word *addr, struct GC_ms_entry *msp,
                                             struct GC_ms_entry *limit, GC_word env);

/* Descriptors: the low GC_DS_TAG_BITS say which kind. */
#define GC_DS_TAG_BITS 2
#define GC_DS_LENGTH 0
#define GC_DS_BITMAP 1
#define GC_DS_PROC 2
#define GC_DS_PER_OBJECT 3
#define GC_LOG_MAX_MARK_PROCS 6
#define GC_MAKE_PROC(i, env)                                                                       \
  (((((GC_word)(env) << GC_LOG_MAX_MARK_PROCS) | (GC_word)(i)) << GC_DS_TAG_BITS) | GC_DS_PROC)

GC_API void **GC_new_free_list(void);
GC_API unsigned GC_new_proc(GC_mark_proc);
GC_API unsigned GC_new_kind(void **free_list, GC_word descr, int adjust, int clear);
GC_API struct GC_ms_entry *GC_mark_and_push(void *obj, struct GC_ms_entry *msp,
                                            struct GC_ms_entry *limit, void **src);
#define GC_MARK_AND_PUSH(obj, msp, lim, src)                                                       \
  ((GC_word)(obj) >= (GC_word)GC_least_plausible_heap_addr &&                                     \
           (GC_word)(obj) <= (GC_word)GC_greatest_plausible_heap_addr                              \
       ? GC_mark_and_push(obj, msp, lim, src)                                                      \
       : (msp))

/* Kinds (gc_inline.h's numbers). */
#define GC_I_PTRFREE 0
#define GC_I_NORMAL 1

#ifdef __cplusplus
}
#endif

#endif
