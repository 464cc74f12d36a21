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

#endif
