/* gc/gc_typed.h: typed allocation. A typed object's fields that the
 * descriptor's bitmap names hold pointers (scanned conservatively); the
 * others, and the words past the bitmap, are never read by the collector. */
#ifndef GOMEM_GC_TYPED_H
#define GOMEM_GC_TYPED_H

#include "gc.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef GC_word GC_descr;
#define GC_WORDSZ (8 * sizeof(GC_word))
#define GC_get_bit(bm, i) (((bm)[(i) / GC_WORDSZ] >> ((i) % GC_WORDSZ)) & 1)
#define GC_set_bit(bm, i) ((bm)[(i) / GC_WORDSZ] |= (GC_word)1 << ((i) % GC_WORDSZ))
#define GC_WORD_OFFSET(t, f) (offsetof(t, f) / sizeof(GC_word))
#define GC_WORD_LEN(t) (sizeof(t) / sizeof(GC_word))
#define GC_BITMAP_SIZE(t) ((GC_WORD_LEN(t) + GC_WORDSZ - 1) / GC_WORDSZ)

GC_API GC_descr GC_make_descriptor(const GC_word *bitmap, size_t len);
GC_API void *GC_malloc_explicitly_typed(size_t, GC_descr) GC_ATTR_MALLOC;
GC_API void *GC_malloc_explicitly_typed_ignore_off_page(size_t, GC_descr) GC_ATTR_MALLOC;
GC_API void *GC_calloc_explicitly_typed(size_t n, size_t size, GC_descr) GC_ATTR_MALLOC;

#ifdef __cplusplus
}
#endif

#endif
