/* gc/gc_mark.h: Boehm GC's marker interface, as far as gomem's libgc.so.1
 * serves it. Inside GC_push_other_roots, GC_push_all adds a root range and
 * GC_set_mark_bit keeps an object (and, conservatively, what it points to).
 * New object kinds and mark procedures are not supported yet: GC_new_kind,
 * GC_new_proc, GC_new_free_list and GC_mark_and_push stop the process with
 * a message rather than lose objects only a procedure could find. */
#ifndef GOMEM_GC_MARK_H
#define GOMEM_GC_MARK_H

#include "gc.h"

#ifdef __cplusplus
extern "C" {
#endif

GC_API void GC_set_mark_bit(const void *);
GC_API void GC_push_conditional(void *lo, void *hi, int all);
GC_API void GC_push_all_stack(void *lo, void *hi);
GC_API void **GC_new_free_list(void);
GC_API unsigned GC_new_proc(void *proc);
GC_API unsigned GC_new_kind(void **free_list, GC_word descr, int adjust, int clear);
GC_API void *GC_mark_and_push(void *obj, void *msp, void *limit, void **src);

/* Kinds (gc_inline.h's numbers). */
#define GC_I_PTRFREE 0
#define GC_I_NORMAL 1

#ifdef __cplusplus
}
#endif

#endif
