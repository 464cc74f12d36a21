// omap.h: an open-addressing hash map from addresses to words, in memory
// mapped from the OS (never from the heap: the collector's tables must not
// live in the memory they describe, and are used where malloc may not be).
//
// Invariants: cap is 0 or a power of two; a slot's key is 0 (empty),
// OMAP_TOMB (deleted) or a live key; used counts live and deleted slots and
// stays at most half of cap, so a probe always meets an empty slot.
//
// Locking: none inside; the owner's lock protects a map.
#ifndef GOMEM_OMAP_H
#define GOMEM_OMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OMAP_TOMB ((uintptr_t)1)

typedef struct omap_slot {
  uintptr_t key; // 0 empty, OMAP_TOMB deleted, else a key (never 0 or 1)
  uintptr_t val;
} omap_slot_t;

typedef struct omap {
  omap_slot_t *t;
  size_t cap, used, n; // slots; live + deleted; live
} omap_t;

// omap_get returns the slot of key, or NULL.
omap_slot_t *omap_get(const omap_t *m, uintptr_t key);
// omap_put sets key's value (inserting it if needed); false when out of
// memory (m unchanged).
bool omap_put(omap_t *m, uintptr_t key, uintptr_t val);
// omap_del_slot deletes a live slot (from omap_get or a walk over t[0, cap)).
void omap_del_slot(omap_t *m, omap_slot_t *s);
static inline bool omap_live(const omap_slot_t *s) {
  return s->key > OMAP_TOMB;
}

#endif // GOMEM_OMAP_H
