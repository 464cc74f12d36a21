// pool.h: pools of reusable GC objects (pool.c, twin of Go's sync.Pool):
// gm_pool_new, gm_pool_get, gm_pool_put, and what the collector calls.
//
// Invariants: every object a pool holds is in a root range (a local's
// private slot, shared stack or victim cache); each collection's first stop
// turns primaries into victims and drops the old victims.
//
// Locking: pools_lock (RANK_POOL) for the lists, each local's lock
// (RANK_POOL_LOCAL); see pool.c.
#ifndef GOMEM_POOL_H
#define GOMEM_POOL_H

void pool_init(void);       // at gc_init
void pool_cleanup(void);    // world stopped, before marking

#endif // GOMEM_POOL_H
