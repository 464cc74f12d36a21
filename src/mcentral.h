// mcentral.h: per size class, the spans no thread owns (mcentral.c, twin
// of Go's mcentral.go). Invariants at the top of mcentral.c.
//
// Locking: mcentral.lock (RANK_MCENTRAL, gm_lock), one per class.
#ifndef GOMEM_MCENTRAL_H
#define GOMEM_MCENTRAL_H

#include "mspan.h"

typedef struct mcentral {
  gm_mutex_t lock;
  mspan_t *partial; // spans with free slots, no owner (lock)
  mspan_t *full;    // spans without free slots, no owner (lock)
  size_t nspans;    // spans on the two lists (lock)
  char pad[64];
} mcentral_t;

extern mcentral_t gm_central[GM_NUM_SIZE_CLASSES];

void mcentral_init(void);
mspan_t *mcentral_cache_span(uint8_t sizeclass);
void mcentral_uncache_span(mspan_t *s);
// mcentral_owned_fn frees object p of span s, which a thread owns (x: its
// xfree word seen under the lock); called with the class's lock held.
typedef void (*mcentral_owned_fn)(void *ctx, mspan_t *s, uintptr_t p, uintptr_t x);
void mcentral_free_batch(uint8_t sizeclass, uintptr_t list, mcentral_owned_fn owned, void *ctx);
void mcentral_validate(uint8_t sizeclass);

#endif // GOMEM_MCENTRAL_H
