// hello.c: gomem used explicitly through its API (it also replaces malloc).
#include <stdio.h>
#include <string.h>

#include "gomem.h"

int main(void) {
  char *greeting = gm_malloc(64);
  strcpy(greeting, "hello from gomem");
  printf("%s (usable size %zu)\n", greeting, gm_usable_size(greeting));
  gm_free(greeting);

  gm_stats_t st;
  gm_stats(&st);
  printf("mallocs %llu, heap in use %llu KiB\n", (unsigned long long)st.mallocs,
         (unsigned long long)st.heap_inuse / 1024);
  return 0;
}
