// free.h: explicit free, cross-thread free and the free lists' slow paths
// (free.c). Misuse is reported by gm_fatal before any metadata changes.
//
// Locking: mcentral.lock for unowned spans (batched); none otherwise.
#ifndef GOMEM_FREE_H
#define GOMEM_FREE_H

#include "mcache.h"

void free_slow(void *p, mspan_t *s, mcache_t *c);
void free_lookup(void *p, mcache_t *c);
void free_local_slow(void *p, mspan_t *s, mcache_t *c);
bool free_push_remote(mspan_t *s, uintptr_t p, uintptr_t old); // false: s is unowned

#endif // GOMEM_FREE_H
