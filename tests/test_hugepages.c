// test_hugepages: transparent huge pages are the user's choice. By default
// gomem's arenas are advised MADV_NOHUGEPAGE (no huge pages even where the
// system default is "always"); GOMEM_HUGEPAGES=1 asks for them. The test
// re-executes itself with each setting (options are read once, at start)
// and reads AnonHugePages from /proc/self/smaps_rollup after touching a
// 64 MiB object.
#include <string.h>

#include "gomem.h"
#include "test.h"

static long anon_huge_kb(void) {
  FILE *f = fopen("/proc/self/smaps_rollup", "r");
  char line[256];
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
      break;
  if (f)
    fclose(f);
  return kb;
}

// child: allocate and touch 64 MiB, print AnonHugePages, exit.
static int child(void) {
  size_t n = (size_t)64 << 20;
  char *p = gm_malloc(n);
  if (p == NULL)
    return 2;
  memset(p, 1, n);
  printf("%ld\n", anon_huge_kb());
  return 0;
}

// run_child: the child's AnonHugePages with GOMEM_HUGEPAGES=setting, or -2.
static long run_child(const char *setting) {
  char env[64], out[64];
  snprintf(env, sizeof env, "GOMEM_HUGEPAGES=%s", setting);
  int st = test_run_self("child", env, 1, out, sizeof out);
  if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
    return -2;
  return strtol(out, NULL, 10);
}

static int thp_mode(char *mode, size_t n) { // "always", "madvise" or "never"
  FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
  char line[128] = {0};
  if (!f || !fgets(line, sizeof line, f)) {
    if (f)
      fclose(f);
    return 0;
  }
  fclose(f);
  char *a = strchr(line, '['), *b = a ? strchr(a, ']') : NULL;
  if (!a || !b || (size_t)(b - a - 1) >= n)
    return 0;
  memcpy(mode, a + 1, (size_t)(b - a - 1));
  mode[b - a - 1] = 0;
  return 1;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "child") == 0)
    return child();
  char mode[16];
  if (!thp_mode(mode, sizeof mode) || anon_huge_kb() < 0) {
    test_skip("GOMEM_HUGEPAGES", "no transparent huge pages on this system");
    return test_done();
  }
  long off = run_child("0"), on = run_child("1");
  printf("THP mode %s: AnonHugePages %ld kB by default, %ld kB with GOMEM_HUGEPAGES=1\n", mode, off,
         on);
  CHECKF(off == 0, "huge pages without asking for them: %ld kB", off);
  if (strcmp(mode, "never") != 0 && GOMEM_SANITIZE[0] == 0)
    CHECKF(on > 0, "GOMEM_HUGEPAGES=1 gave no huge pages (%ld kB)", on);
  return test_done();
}
