// omap.c: open-addressing maps from addresses to words (see omap.h).
#include "omap.h"
#include "os.h"

static size_t slot_of(uintptr_t key, size_t cap) {
  return (size_t)((key >> 3) * 0x9e3779b97f4a7c15ULL >> 20) & (cap - 1);
}

omap_slot_t *omap_get(const omap_t *m, uintptr_t key) {
  if (m->cap == 0)
    return NULL;
  for (size_t i = slot_of(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
    if (m->t[i].key == key)
      return &m->t[i];
    if (m->t[i].key == 0)
      return NULL;
  }
}

static void insert_raw(omap_slot_t *t, size_t cap, uintptr_t key, uintptr_t val) {
  size_t i = slot_of(key, cap);
  while (t[i].key > OMAP_TOMB)
    i = (i + 1) & (cap - 1);
  t[i] = (omap_slot_t){key, val};
}

// grow rehashes into a table with room for more entries (at the same size
// when most slots are deleted ones).
static bool grow(omap_t *m) {
  size_t cap = m->cap ? m->cap * 2 : 256;
  if (m->n * 4 < m->cap)
    cap = m->cap;
  omap_slot_t *t = os_reserve(cap * sizeof *t, 0);
  if (t == NULL)
    return false;
  for (size_t i = 0; i < m->cap; i++)
    if (omap_live(&m->t[i]))
      insert_raw(t, cap, m->t[i].key, m->t[i].val);
  if (m->t != NULL)
    os_unmap(m->t, m->cap * sizeof *m->t);
  m->t = t;
  m->cap = cap;
  m->used = m->n;
  return true;
}

bool omap_put(omap_t *m, uintptr_t key, uintptr_t val) {
  omap_slot_t *s = omap_get(m, key);
  if (s != NULL) {
    s->val = val;
    return true;
  }
  if ((m->used + 1) * 2 > m->cap && !grow(m))
    return false;
  insert_raw(m->t, m->cap, key, val);
  m->used++;
  m->n++;
  return true;
}

void omap_del_slot(omap_t *m, omap_slot_t *s) {
  s->key = OMAP_TOMB;
  m->n--;
}
