// fuzz.h: the driver and helpers shared by gomem's fuzz harnesses.
//
// A harness defines FUZZ_NAME, includes this header, and defines
//   static void fuzz_setup(void);   (once, before any input)
//   static void fuzz_one(const uint8_t *data, size_t size);
// fuzz_one runs one input and calls fz_fail (through FZ_CHECK) when a check
// fails. It is built two ways:
//   -DFUZZ_LIBFUZZER (clang -fsanitize=fuzzer,...): LLVMFuzzerTestOneInput
//       calls fuzz_one; libFuzzer owns main() and its options;
//   otherwise: main() replays every file named on the command line (a
//       directory: each file in it, in name order), then runs random inputs
//       from a seeded PRNG until --seconds have passed:
//         fuzz_x [--seconds S] [--seed N] [--max-len L] [--runs R] [PATH...]
//       A failing input (failed check, abort or crash inside gomem) is
//       written to FUZZ_NAME-crash.bin in the current directory.
#ifndef GOMEM_FUZZ_H
#define GOMEM_FUZZ_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gomem.h"

#ifndef FUZZ_NAME
#error "define FUZZ_NAME before including fuzz.h"
#endif

// FZ_SANITIZER: built with ASan or TSan (tests/CMakeLists.txt passes
// GOMEM_SANITIZE too; valgrind is only known from that).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define FZ_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define FZ_SANITIZER 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define FZ_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FZ_TSAN 1
#endif
#endif
#ifndef GOMEM_SANITIZE
#define GOMEM_SANITIZE ""
#endif

#define FZ_NOINLINE __attribute__((noinline))
#define FZ_UNUSED __attribute__((unused))
#define FZ_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static void fuzz_setup(void);
static void fuzz_one(const uint8_t *data, size_t size);

// fz_skip_random: set by fuzz_setup when this build cannot run the random
// phase; main() then prints SKIP with the reason and exits with status 77
// (ctest's SKIP_RETURN_CODE) after replaying the files.
static FZ_UNUSED const char *fz_skip_random;

// ---------------------------------------------------------------------------
// Failing

static const uint8_t *fz_cur_data; // the input being run (main() only)
static size_t fz_cur_size;
static const char fz_crash_path[] = FUZZ_NAME "-crash.bin";

// fz_save_input writes the current input to fz_crash_path. Async-signal-safe.
static FZ_UNUSED void fz_save_input(void) {
  if (fz_cur_data == NULL)
    return;
  int fd = open(fz_crash_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0)
    return;
  size_t done = 0;
  while (done < fz_cur_size) {
    ssize_t k = write(fd, fz_cur_data + done, fz_cur_size - done);
    if (k <= 0)
      break;
    done += (size_t)k;
  }
  close(fd);
  static const char msg[] = FUZZ_NAME ": failing input saved to " FUZZ_NAME "-crash.bin\n";
  ssize_t k = write(2, msg, sizeof msg - 1);
  (void)k;
}

__attribute__((noreturn, format(printf, 4, 5))) static void
fz_fail(const char *file, int line, const char *cond, const char *fmt, ...) {
  char buf[1024];
  int n = snprintf(buf, sizeof buf, FUZZ_NAME ": CHECK failed at %s:%d: %s: ", file, line, cond);
  va_list ap;
  va_start(ap, fmt);
  if (n > 0 && (size_t)n < sizeof buf)
    n += vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof buf - 1)
    n = (int)sizeof buf - 2;
  buf[n++] = '\n';
  ssize_t k = write(2, buf, (size_t)n);
  (void)k;
  abort(); // main(): the SIGABRT handler saves the input; libFuzzer: a crash
}

// FZ_CHECK(cond, fmt, ...): a failed check ends the run (a crash for
// libFuzzer). The format names the values involved.
#define FZ_CHECK(cond, ...)                                                                        \
  do {                                                                                             \
    if (__builtin_expect(!(cond), 0))                                                              \
      fz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                                             \
  } while (0)

// ---------------------------------------------------------------------------
// Decoding an input: a byte reader that returns zeros once the input is used up.

typedef struct fz_in {
  const uint8_t *p;
  size_t n, i;
} fz_in_t;

static inline int fz_more(const fz_in_t *in) {
  return in->i < in->n;
}

static inline unsigned fz_u8(fz_in_t *in) {
  return in->i < in->n ? in->p[in->i++] : 0;
}

static inline unsigned fz_u16(fz_in_t *in) {
  unsigned lo = fz_u8(in);
  return lo | fz_u8(in) << 8;
}

static inline uint32_t fz_u32(fz_in_t *in) {
  uint32_t lo = fz_u16(in);
  return lo | (uint32_t)fz_u16(in) << 16;
}

// ---------------------------------------------------------------------------
// Pseudo-random numbers and patterns

static inline uint64_t fz_mix64(uint64_t x) { // splitmix64's finaliser
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

static inline uint64_t fz_rand(uint64_t *state) {
  *state += 0x9E3779B97F4A7C15ull;
  return fz_mix64(*state);
}

// fz_pat: word i of the pattern of seed; top bit set, so that a pattern word
// never looks like a pointer into the heap (it keeps nothing alive).
static inline uint64_t fz_pat(uint64_t seed, size_t i) {
  return fz_mix64(seed * 0xD6E8FEB86659FD93ull + i) | 0x8000000000000000ull;
}

static inline double fz_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// fz_nap sleeps 20 us. Waits poll with it rather than block in
// pthread_mutex_lock or pthread_cond_wait: under TSan a thread blocked there
// never handles the collector's stop signal, while nanosleep delivers it.
static inline void fz_nap(void) {
  struct timespec ts = {0, 20000};
  nanosleep(&ts, NULL);
}

static inline void fz_lock(pthread_mutex_t *m) {
  while (pthread_mutex_trylock(m) != 0)
    fz_nap();
}

static inline void fz_unlock(pthread_mutex_t *m) {
  pthread_mutex_unlock(m);
}

// fz_env_flag reads a 0/1 environment switch (default when unset).
static FZ_UNUSED int fz_env_flag(const char *name, int dflt) {
  const char *v = getenv(name);
  return v == NULL || *v == 0 ? dflt : atoi(v) != 0;
}

// ---------------------------------------------------------------------------
// Sorting without malloc (glibc's qsort may allocate, which would show in the
// statistics the harnesses check): Shell sort of address ranges.

typedef struct fz_range {
  uintptr_t lo, hi;
  int id;
} fz_range_t;

static FZ_UNUSED void fz_sort_ranges(fz_range_t *r, size_t n) {
  static const size_t gaps[] = {701, 301, 132, 57, 23, 10, 4, 1};
  for (size_t g = 0; g < FZ_ARRAY_LEN(gaps); g++) {
    size_t gap = gaps[g];
    for (size_t i = gap; i < n; i++) {
      fz_range_t t = r[i];
      size_t j = i;
      for (; j >= gap && r[j - gap].lo > t.lo; j -= gap)
        r[j] = r[j - gap];
      r[j] = t;
    }
  }
}

// fz_find_overlap sorts r and returns the index i of the first range that
// overlaps range i + 1, or -1. Empty ranges (lo == hi) overlap nothing.
static FZ_UNUSED long fz_find_overlap(fz_range_t *r, size_t n) {
  fz_sort_ranges(r, n);
  for (size_t i = 0; i + 1 < n; i++)
    if (r[i].hi > r[i + 1].lo && r[i + 1].hi > r[i + 1].lo && r[i].hi > r[i].lo)
      return (long)i;
  return -1;
}

// ---------------------------------------------------------------------------
// The two drivers

#ifdef FUZZ_LIBFUZZER

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fuzz_setup();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_one(data, size);
  return 0;
}

#else

static void fz_on_fatal(int sig) {
  fz_save_input();
  signal(sig, SIG_DFL);
  raise(sig);
}

// fz_child_reset: a forked child that is meant to die of SIGABRT must not
// save its input (fuzz_misuse).
static FZ_UNUSED void fz_child_reset(void) {
  fz_cur_data = NULL;
  signal(SIGABRT, SIG_DFL);
  signal(SIGSEGV, SIG_DFL);
  signal(SIGBUS, SIG_DFL);
}

static void fz_run(const uint8_t *data, size_t size) {
  fz_cur_data = data;
  fz_cur_size = size;
  fuzz_one(data, size);
  fz_cur_data = NULL;
}

// fz_run_file runs one file; returns 1 if it ran.
static int fz_run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    fprintf(stderr, FUZZ_NAME ": cannot open %s: %s\n", path, strerror(errno));
    exit(2);
  }
  uint8_t *buf = malloc(1 << 20);
  if (buf == NULL)
    exit(2);
  size_t n = fread(buf, 1, 1 << 20, f);
  fclose(f);
  fz_run(buf, n);
  free(buf);
  return 1;
}

static int fz_name_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

// fz_run_path runs a file, or every regular file of a directory in name
// order. Returns the number of inputs run.
static size_t fz_run_path(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) {
    fprintf(stderr, FUZZ_NAME ": %s: %s\n", path, strerror(errno));
    exit(2);
  }
  if (!S_ISDIR(st.st_mode))
    return (size_t)fz_run_file(path);
  DIR *d = opendir(path);
  if (d == NULL)
    exit(2);
  char **names = NULL;
  size_t n = 0, cap = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    if (e->d_name[0] == '.' || strcmp(e->d_name, "README.md") == 0)
      continue;
    if (n == cap && (names = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof *names)) == NULL)
      exit(2);
    size_t len = strlen(path) + strlen(e->d_name) + 2;
    if ((names[n] = malloc(len)) == NULL)
      exit(2);
    snprintf(names[n++], len, "%s/%s", path, e->d_name);
  }
  closedir(d);
  if (n > 1)
    qsort(names, n, sizeof *names, fz_name_cmp);
  size_t ran = 0;
  for (size_t i = 0; i < n; i++) {
    if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode))
      ran += (size_t)fz_run_file(names[i]);
    free(names[i]);
  }
  free(names);
  return ran;
}

// fz_random_input fills buf with a random input of at most max bytes: a
// quarter short (up to 64 bytes), the rest of any length.
static size_t fz_random_input(uint64_t *rng, uint8_t *buf, size_t max) {
  uint64_t r = fz_rand(rng);
  size_t len = (size_t)(r >> 8) % (max + 1);
  if ((r & 3) == 0 && len > 64)
    len %= 65;
  for (size_t i = 0; i < len; i += 8) {
    uint64_t w = fz_rand(rng);
    memcpy(buf + i, &w, len - i < 8 ? len - i : 8);
  }
  return len;
}

int main(int argc, char **argv) {
  double seconds = 0;
  uint64_t seed = 1;
  size_t max_len = 4096;
  unsigned long long runs = ~0ull;
  signal(SIGABRT, fz_on_fatal);
  signal(SIGSEGV, fz_on_fatal);
  signal(SIGBUS, fz_on_fatal);
  fuzz_setup();
  size_t replayed = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
      seconds = atof(argv[++i]);
    else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
      seed = strtoull(argv[++i], NULL, 0);
    else if (strcmp(argv[i], "--max-len") == 0 && i + 1 < argc)
      max_len = strtoull(argv[++i], NULL, 0);
    else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
      runs = strtoull(argv[++i], NULL, 0);
    else if (argv[i][0] == '-') {
      fprintf(stderr, "usage: %s [--seconds S] [--seed N] [--max-len L] [--runs R] [FILE|DIR...]\n",
              argv[0]);
      return 2;
    } else
      replayed += fz_run_path(argv[i]);
  }
  if (fz_skip_random != NULL) {
    printf("%s: %zu files replayed: ok; random phase: SKIP (%s)\n", FUZZ_NAME, replayed,
           fz_skip_random);
    return 77;
  }
  double t0 = fz_now();
  unsigned long long n = 0;
  uint8_t *buf = malloc(max_len + 8);
  if (buf == NULL)
    return 2;
  uint64_t rng = seed;
  while (n < runs && fz_now() - t0 < seconds) {
    size_t len = fz_random_input(&rng, buf, max_len);
    fz_run(buf, len);
    n++;
  }
  free(buf);
  printf("%s: %zu files replayed, %llu random inputs (seed %llu) in %.1f s: ok\n", FUZZ_NAME,
         replayed, n, (unsigned long long)seed, fz_now() - t0);
  return 0;
}

#endif // FUZZ_LIBFUZZER

#endif // GOMEM_FUZZ_H
