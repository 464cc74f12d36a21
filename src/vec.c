// vec.c: growable arrays mapped from the OS (see vec.h).
#include <string.h>

#include "os.h"
#include "vec.h"

bool vec_reserve(vec_t *t, size_t need) {
  if (need <= t->cap)
    return true;
  size_t cap = t->cap ? t->cap : (4096 + t->elem - 1) / t->elem;
  while (cap < need)
    cap *= 2;
  void *v = os_reserve(cap * t->elem, 0);
  if (v == NULL)
    return false;
  if (t->n)
    memcpy(v, t->v, t->n * t->elem);
  if (t->v)
    os_unmap(t->v, t->cap * t->elem);
  t->v = v;
  t->cap = cap;
  return true;
}

void *vec_push(vec_t *t) {
  if (t->n == t->cap && !vec_reserve(t, t->n + 1))
    return NULL;
  return vec_at(t, t->n++);
}
