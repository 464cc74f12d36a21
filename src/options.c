// options.c: gomem's options, one table, read once from the environment at
// initialisation (before the heap exists: no allocation here).
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "os.h"

gm_options_t gm_opt;

typedef struct option_desc {
  const char *env; // environment variable
  unsigned def;    // default
  unsigned *uval;  // where a number goes, or
  bool *bval;      // where a flag goes
  const char *doc; // one line
} option_desc_t;

static const option_desc_t options[] = {
    {"GOMEM_STATS", 0, NULL, &gm_opt.stats_at_exit, "print statistics to stderr at exit"},
    {"GOMEM_SCAVENGE", 1, NULL, &gm_opt.scavenger,
     "return idle free memory to the OS from a background thread"},
    {"GOMEM_SCAVENGE_MS", 100, &gm_opt.scavenge_ms, NULL, "scavenger tick in milliseconds"},
    {"GOMEM_RETAIN_PERCENT", 10, &gm_opt.retain_percent, NULL,
     "free memory kept resident, in percent over the recent peak"},
    {"GOMEM_DEBUG", 0, &gm_opt.debug, NULL, "1: validate heap structures on slow paths"},
    {"GOMEM_HUGEPAGES", 0, NULL, &gm_opt.hugepages,
     "1: back the heap with transparent huge pages; 0: never, whatever the system default"},
    {"GOMEM_STACK_MPROTECT", 0, NULL, &gm_opt.stack_mprotect,
     "1: guard coroutine stacks with mprotect, as on kernels before 6.13 (for tests)"},
    {"GOMEM_GCTRACE", 0, NULL, &gm_opt.gctrace, "1: one line per collection on stderr"},
    {"GOMEM_GC_PAD", 0, NULL, &gm_opt.gc_pad,
     "1: GC objects get one more byte, so a pointer just past an object keeps it alive"},
    {"GOMEM_GC_PROCS", 0, &gm_opt.gc_procs, NULL, "mark workers per collection (0: one per CPU)"},
    {"GOMEM_GC_CONCURRENT", 0, NULL, &gm_opt.gc_concurrent,
     "1: mark beside the program (kernel write tracking, Linux 6.7+; experimental)"},
    {"GOMEM_GC_FRACTIONAL", 1, NULL, &gm_opt.gc_fractional,
     "0: the background marker runs on a core of its own (1: it keeps to a quarter of the "
     "CPUs, pausing, and runs on only while a core is idle)"},
    {"GOMEM_WTRACK", 1, NULL, &gm_opt.wtrack,
     "0: act as if the kernel could not track writes (concurrent marking falls back to stopping "
     "the world; for tests)"},
    {"GOMEM_GUARD_MEMOPS", 0, NULL, &gm_opt.guard_memops,
     "hardened build: memcpy, memmove and memset stop a write past its heap object"},
};

// parse_uint accepts decimal digits only; anything else keeps the default.
static bool parse_uint(const char *s, unsigned *out) {
  unsigned v = 0;
  if (*s == 0)
    return false;
  for (; *s; s++) {
    if (*s < '0' || *s > '9' || v > 100000000u)
      return false;
    v = v * 10 + (unsigned)(*s - '0');
  }
  *out = v;
  return true;
}

// parse_bytes reads GOMEM_MEMLIMIT's value; 0 (no limit) if it is not one.
static uint64_t parse_bytes(const char *s) {
  static const struct {
    const char *suffix;
    unsigned shift;
  } units[] = {{"", 0}, {"B", 0}, {"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40}};
  uint64_t v = 0;
  const char *p = s;
  for (; *p >= '0' && *p <= '9'; p++) {
    if (v > (UINT64_MAX - 9) / 10)
      return 0;
    v = v * 10 + (uint64_t)(*p - '0');
  }
  if (p == s)
    return 0;
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
    if (strcmp(p, units[i].suffix) == 0)
      return v > (UINT64_MAX >> units[i].shift) ? 0 : v << units[i].shift;
  return 0;
}

void options_init(void) {
  for (size_t i = 0; i < sizeof options / sizeof options[0]; i++) {
    const option_desc_t *o = &options[i];
    unsigned v = o->def;
    const char *s = getenv(o->env);
    if (s != NULL && !parse_uint(s, &v)) {
      if (o->bval && (!strcmp(s, "true") || !strcmp(s, "on") || !strcmp(s, "yes")))
        v = 1;
      else if (o->bval && (!strcmp(s, "false") || !strcmp(s, "off") || !strcmp(s, "no")))
        v = 0;
    }
    if (o->uval)
      *o->uval = v;
    else
      *o->bval = v != 0;
  }
  if (gm_opt.scavenge_ms == 0)
    gm_opt.scavenge_ms = 1;
  // GOMEM_MEMLIMIT: bytes, with Go's suffixes (B, KiB, MiB, GiB, TiB), or
  // "off" (not in the table: 64 bits and units).
  const char *lim = getenv("GOMEM_MEMLIMIT");
  if (lim != NULL)
    gm_opt.memlimit = parse_bytes(lim);
  // GOMEM_BARRIER=explicit: the program stores every heap pointer with
  // gm_store; marking runs beside it without page protection.
  const char *barrier = getenv("GOMEM_BARRIER");
  if (barrier != NULL && strcmp(barrier, "explicit") == 0)
    gm_opt.gc_barrier_explicit = gm_opt.gc_concurrent = true;
  // GOMEM_GOGC: a percentage, or "off" / -1 (not in the table: it is signed).
  const char *gogc = getenv("GOMEM_GOGC");
  unsigned v;
  if (gogc != NULL && (!strcmp(gogc, "off") || !strcmp(gogc, "-1"))) {
    gm_opt.gogc = -1;
    gm_opt.gogc_set = true;
  } else if (gogc != NULL && parse_uint(gogc, &v)) {
    gm_opt.gogc = v > 1000000 ? 1000000 : (int)v;
    gm_opt.gogc_set = true;
  }
}

// options_print writes the option table with current values to fd.
void options_print(int fd) {
  char buf[256];
  for (size_t i = 0; i < sizeof options / sizeof options[0]; i++) {
    const option_desc_t *o = &options[i];
    unsigned v = o->uval ? *o->uval : *o->bval;
    size_t n = gm_fmt(buf, sizeof buf, "  %-22s %-8u %s\n", o->env, v, o->doc);
    gm_write_fd(fd, buf, n);
  }
  size_t n = gm_fmt(buf, sizeof buf, "  %-22s %-8d %s\n", "GOMEM_GOGC",
                    gm_opt.gogc_set ? gm_opt.gogc : 100,
                    "collect when the GC heap grows this many percent over live (off: -1)");
  gm_write_fd(fd, buf, n);
}
