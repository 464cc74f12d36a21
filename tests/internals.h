// internals.h: every allocator component header, for the white-box tests.
#ifndef GOMEM_TEST_INTERNALS_H
#define GOMEM_TEST_INTERNALS_H

#include "arena.h"
#include "free.h"
#include "internal.h"
#include "mallocint.h"
#include "mcache.h"
#include "mcentral.h"
#include "mfixalloc.h"
#include "mgcscavenge.h"
#include "mheap.h"
#include "mspan.h"
#include "os.h"

// pub_malloc, pub_free: the public gm_malloc and gm_free. The component
// headers rename gm_malloc & co. to the core's functions in the hardened
// build (gmcore.h), so there a white-box test calling gm_malloc bypasses the
// hardened layer. Objects that share spans with the process's own malloc
// must come from here: a core free leaves a slot dirty, and the hardened
// layer rightly reports a dirty free slot as written after free.
void *pub_malloc(size_t n) __asm__("gm_malloc");
void pub_free(void *p) __asm__("gm_free");

#endif
