// vec.h: a growable array of fixed-size items in memory mapped from the OS,
// never from the heap (the collector's tables must not live in the memory
// they describe, and they are used where malloc may not be called).
//
// Invariants: v holds cap items of elem bytes, the first n in use; v is NULL
// when cap is 0.
//
// Locking: none inside; the owner's lock protects a vec.
#ifndef GOMEM_VEC_H
#define GOMEM_VEC_H

#include <stdbool.h>
#include <stddef.h>

typedef struct vec {
  void *v;
  size_t n, cap;
  size_t elem; // item size (immutable; set by VEC_INIT)
} vec_t;

#define VEC_INIT(type)                                                                             \
  { .elem = sizeof(type) }

// vec_reserve makes room for `need` items in all; false when out of memory
// (v unchanged).
bool vec_reserve(vec_t *t, size_t need);

// vec_push appends an item and returns it (uninitialised), or NULL when out
// of memory.
void *vec_push(vec_t *t);

// vec_at returns item i (i < n).
static inline void *vec_at(const vec_t *t, size_t i) {
  return (char *)t->v + i * t->elem;
}

// vec_forget drops the array without unmapping it (a fork child: the parent
// may have been growing it).
static inline void vec_forget(vec_t *t) {
  t->v = NULL;
  t->n = t->cap = 0;
}

#endif // GOMEM_VEC_H
