// probe: prints which shared object provides malloc and free in this process,
// so run.sh can tell an LD_PRELOAD that really replaced the allocator from one
// that loaded but left glibc's malloc in place (for instance a sanitizer build
// of gomem, which does not export malloc).
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

static const char *provider(const char *sym) {
  Dl_info info;
  void *p = dlsym(RTLD_DEFAULT, sym);
  if (p && dladdr(p, &info) && info.dli_fname) return info.dli_fname;
  return "?";
}

int main(void) {
  void *p = malloc(100);
  free(p);
  printf("malloc %s\nfree %s\n", provider("malloc"), provider("free"));
  return 0;
}
