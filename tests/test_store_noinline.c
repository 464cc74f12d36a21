// test_store_noinline: test_store_shared with GOMEM_NO_INLINE_STORE, which
// makes gm_store the library's function instead of the header's inline code
// (for compilers or programs that want no inline code from gomem.h).
#define GOMEM_NO_INLINE_STORE 1
#include "test_store_shared.c"
