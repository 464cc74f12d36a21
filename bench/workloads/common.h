// common.h: shared helpers for the gomem benchmark workloads.
//
// Every workload is a standalone C11 program that uses only the C allocator
// (malloc/free/realloc/calloc), so the allocator under test is chosen by
// LD_PRELOAD. Conventions, relied on by bench/report.py:
//
//   * parameters are given as key=value words on the command line
//     (an unknown key is an error, so typos in bench/workloads.list fail loudly);
//   * the program prints exactly one line "check <16 hex digits>", a
//     checksum of the work done that must be identical for every allocator;
//   * it prints one or more lines "metric <name> <value> <unit> <lower|higher>";
//     the first one is the workload's primary metric;
//   * anything else it prints starts with '#';
//   * it exits 0 on success and non-zero (after a message on stderr) when it
//     detects corrupted memory or an allocation failure.
#ifndef GOMEM_BENCH_COMMON_H
#define GOMEM_BENCH_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define UNUSED __attribute__((unused))

// ---------------------------------------------------------------------------
// Errors

static UNUSED __attribute__((noreturn, format(printf, 1, 2))) void
die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("error: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  fflush(stdout);
  exit(2);
}

static inline void *xmalloc(size_t n) {
  void *p = malloc(n);
  if (p == NULL && n != 0) die("malloc(%zu) returned NULL", n);
  return p;
}

static inline void *xrealloc(void *q, size_t n) {
  void *p = realloc(q, n);
  if (p == NULL && n != 0) die("realloc(%zu) returned NULL", n);
  return p;
}

// escape keeps the compiler from proving an allocation dead and deleting a
// malloc/free pair (GCC does that at -O2 otherwise).
static inline void escape(void *p) { __asm__ volatile("" : : "g"(p) : "memory"); }

// Bookkeeping arrays that are not part of the measured allocation pattern are
// taken straight from the OS, so they do not show in the allocator's numbers
// and can be given back exactly.
static UNUSED void *os_alloc(size_t n) {
  void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) die("mmap(%zu): %s", n, strerror(errno));
  return p;
}
static UNUSED void os_free(void *p, size_t n) { munmap(p, n); }

// ---------------------------------------------------------------------------
// Random numbers: splitmix64 seeding, xoshiro-style fast generator.

typedef struct { uint64_t s; } rng_t;

static inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
static inline rng_t rng_make(uint64_t a, uint64_t b) {
  rng_t r = {mix64(a * 0x9e3779b97f4a7c15ULL + mix64(b + 0x632be59bd9b4e019ULL))};
  return r;
}
static inline uint64_t rng_next(rng_t *r) {
  r->s += 0x9e3779b97f4a7c15ULL;
  return mix64(r->s);
}
// Uniform in [lo, hi] (inclusive).
static inline uint64_t rng_range(rng_t *r, uint64_t lo, uint64_t hi) {
  return lo + rng_next(r) % (hi - lo + 1);
}
// Log-uniform in [lo, hi]: as many objects of 16-32 B as of 512-1024 B.
static inline size_t rng_logsize(rng_t *r, size_t lo, size_t hi) {
  double u = (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
  double v = exp(log((double)lo) + u * (log((double)hi) - log((double)lo)));
  size_t s = (size_t)v;
  if (s < lo) s = lo;
  if (s > hi) s = hi;
  return s;
}

// ---------------------------------------------------------------------------
// Object tagging: write a tag at both ends of a block, verify it before free.

static inline uint64_t obj_tag(uint64_t id, size_t size) { return mix64(id ^ ((uint64_t)size << 40)) | 1; }

static inline void obj_fill(void *p, size_t size, uint64_t tag) {
  unsigned char *c = p;
  if (size >= 8) memcpy(c, &tag, 8);
  else c[0] = (unsigned char)tag;
  if (size >= 16) c[size - 1] = (unsigned char)(tag >> 8);
}

// Returns the tag for the checksum, dies if the block was overwritten.
static inline uint64_t obj_verify(const void *p, size_t size, uint64_t tag, const char *who) {
  const unsigned char *c = p;
  uint64_t t = 0;
  if (size >= 8) memcpy(&t, c, 8);
  else t = c[0], tag &= 0xff;
  if (t != tag) die("%s: block %p (size %zu) corrupted: head %016" PRIx64 " != %016" PRIx64, who, p, size, t, tag);
  if (size >= 16 && c[size - 1] != (unsigned char)(tag >> 8))
    die("%s: block %p (size %zu) corrupted at its last byte", who, p, size);
  return tag;
}

// ---------------------------------------------------------------------------
// Time

static inline double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static UNUSED void sleep_s(double s) {
  if (s <= 0) return;
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

// ---------------------------------------------------------------------------
// /proc/self/status

// Returns the value in KiB of a "Name:   1234 kB" line, or -1.
static UNUSED long proc_status_kb(const char *name) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  size_t n = strlen(name);
  long v = -1;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, name, n) == 0 && line[n] == ':') {
      v = strtol(line + n + 1, NULL, 10);
      break;
    }
  }
  fclose(f);
  return v;
}
static UNUSED double rss_mib(void) { return (double)proc_status_kb("VmRSS") / 1024.0; }
static UNUSED double hwm_mib(void) { return (double)proc_status_kb("VmHWM") / 1024.0; }

// ---------------------------------------------------------------------------
// key=value arguments

static int g_argc;
static char **g_argv;
static unsigned char g_used[256];

static UNUSED void args_init(int argc, char **argv) {
  g_argc = argc;
  g_argv = argv;
  if (argc > 256) die("too many arguments");
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      fprintf(stderr, "usage: %s key=value ... (see bench/README.md)\n", argv[0]);
      exit(0);
    }
    if (!strchr(argv[i], '=')) die("argument '%s' is not key=value", argv[i]);
  }
}

static UNUSED const char *arg_str(const char *key, const char *def) {
  size_t n = strlen(key);
  for (int i = g_argc - 1; i >= 1; i--) {
    if (strncmp(g_argv[i], key, n) == 0 && g_argv[i][n] == '=') {
      g_used[i] = 1;
      return g_argv[i] + n + 1;
    }
  }
  return def;
}

// Integer with optional K/M/G suffix (powers of 1024).
static UNUSED long long arg_int(const char *key, long long def) {
  const char *s = arg_str(key, NULL);
  if (!s) return def;
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 0);
  if (errno || end == s) die("bad integer for %s: '%s'", key, s);
  switch (*end) {
  case 'k': case 'K': v <<= 10; end++; break;
  case 'm': case 'M': v <<= 20; end++; break;
  case 'g': case 'G': v <<= 30; end++; break;
  default: break;
  }
  if (*end) die("bad integer for %s: '%s'", key, s);
  return v;
}

static UNUSED double arg_double(const char *key, double def) {
  const char *s = arg_str(key, NULL);
  if (!s) return def;
  char *end;
  double v = strtod(s, &end);
  if (end == s || *end) die("bad number for %s: '%s'", key, s);
  return v;
}

// Comma-separated list of numbers; returns the count (at most max).
static UNUSED int arg_list(const char *key, const char *def, double *out, int max) {
  const char *s = arg_str(key, def);
  int n = 0;
  while (*s && n < max) {
    char *end;
    out[n++] = strtod(s, &end);
    if (end == s) die("bad list for %s: '%s'", key, s);
    s = end;
    if (*s == ',') s++;
    else if (*s) die("bad list for %s", key);
  }
  return n;
}

// Call after all arg_* lookups: rejects keys the workload does not know.
static UNUSED void args_done(void) {
  for (int i = 1; i < g_argc; i++)
    if (!g_used[i]) die("unknown argument '%s'", g_argv[i]);
}

// ---------------------------------------------------------------------------
// Output

static UNUSED void report_check(uint64_t sum) { printf("check %016" PRIx64 "\n", sum); }

// better: "lower" or "higher".
static UNUSED void report_metric(const char *name, double value, const char *unit, const char *better) {
  printf("metric %s %.6g %s %s\n", name, value, unit, better);
}

#endif
