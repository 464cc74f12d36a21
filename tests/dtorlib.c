// dtorlib.c: a shared library whose destructor runs a hook the test sets:
// a collection, an allocation burst or a fork, from inside dlclose.
#include <stddef.h>

static void (*volatile hook)(void);

__attribute__((visibility("default"))) void dtorlib_set_hook(void (*fn)(void)) {
  hook = fn;
}

__attribute__((destructor)) static void dtorlib_fini(void) {
  if (hook)
    hook();
}
