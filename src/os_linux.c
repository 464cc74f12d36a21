// os_linux.c: the OS primitives gomem uses, and the only file that talks to
// the kernel about memory. Contract:
//   os_reserve          map read/write anonymous memory, not counted against
//                       overcommit (MAP_NORESERVE); pages read as zero until
//                       written. Returns NULL on failure.
//   os_reserve_aligned  the same, aligned to `align` (a power of two).
//   os_release          give the physical pages of a range back (MADV_DONTNEED):
//                       the range stays mapped and reads as zero afterwards.
//                       Callers rely on the zero: released pages need no memset.
//   os_unmap            unmap a range.
//   os_populate         make a range's pages resident and writable in one
//                       call (MADV_POPULATE_WRITE, Linux 5.14), instead of
//                       one page fault per page as the program first writes
//                       them; a hint: it does nothing where the kernel lacks
//                       it, and never fails.
//   os_guard            make a range fault on any access: a guard marker
//                       (MADV_GUARD_INSTALL, Linux 6.13: the mapping is not
//                       split), else, if allowed, mprotect(PROT_NONE) (one
//                       more mapping, counted against vm.max_map_count).
//   os_resident         how many 4 KiB pages of a range are resident, and the
//                       lowest one (mincore).
//   os_hugepages        ask for transparent huge pages on a range, or forbid
//                       them (whatever the system default): a choice, not a
//                       surprise.
//   os_thread_create    start one of gomem's own threads (see internal.h).
//   os_gettid, os_stack_near, os_nanotime, os_write_stderr: small facts.
// None of these allocate memory from the heap (os_thread_create's first call
// resolves pthread_create with dlsym, which may: never inside a critical
// section).
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include "lock.h"
#include "os.h"

void *os_reserve(size_t bytes, uintptr_t hint) {
  void *p = mmap((void *)hint, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

void *os_reserve_aligned(size_t bytes, size_t align) {
  size_t over = bytes + align;
  if (over < bytes)
    return NULL;
  uint8_t *p = os_reserve(over, 0);
  if (p == NULL)
    return NULL;
  uintptr_t a = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
  size_t head = a - (uintptr_t)p;
  if (head > 0)
    munmap(p, head);
  size_t tail = over - head - bytes;
  if (tail > 0)
    munmap((void *)(a + bytes), tail);
  return (void *)a;
}

void os_unmap(void *p, size_t bytes) {
  munmap(p, bytes);
}

bool os_protect(void *p, size_t bytes, bool access) {
  return mprotect(p, bytes, access ? PROT_READ | PROT_WRITE : PROT_NONE) == 0;
}

void os_release(void *ctx, uintptr_t addr, size_t bytes) {
  (void)ctx;
  // MADV_DONTNEED, not MADV_FREE: released pages must read back as zero
  // (mheap skips zeroing them) and RSS must drop at once.
  while (madvise((void *)addr, bytes, MADV_DONTNEED) != 0 && errno == EAGAIN) {
  }
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
static _Atomic bool populate_off; // the kernel refused it once: never again

void os_populate(void *p, size_t bytes) {
  if (atomic_load_explicit(&populate_off, memory_order_relaxed))
    return;
  // EINVAL: a kernel before 5.14 (or a tool that does not know the advice);
  // ENOMEM/EFAULT/EHWPOISON: the pages fault in later as they would have.
  if (madvise(p, bytes, MADV_POPULATE_WRITE) != 0 && errno == EINVAL)
    atomic_store_explicit(&populate_off, true, memory_order_relaxed);
}

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
static _Atomic bool guard_marker_off; // the kernel has no guard markers

int os_guard(void *p, size_t bytes, bool allow_marker, bool allow_split) {
  if (allow_marker && !atomic_load_explicit(&guard_marker_off, memory_order_relaxed)) {
    if (madvise(p, bytes, MADV_GUARD_INSTALL) == 0)
      return 1;
    if (errno == EINVAL)
      atomic_store_explicit(&guard_marker_off, true, memory_order_relaxed);
  }
  if (allow_split && mprotect(p, bytes, PROT_NONE) == 0)
    return 0;
  return -1;
}

size_t os_resident(uintptr_t lo, size_t bytes, uintptr_t *lowest) {
  unsigned char v[256];
  size_t n = 0;
  *lowest = lo + bytes;
  for (uintptr_t p = lo; p < lo + bytes; p += sizeof v * 4096) {
    size_t len = lo + bytes - p < sizeof v * 4096 ? lo + bytes - p : sizeof v * 4096;
    if (mincore((void *)p, len, v) != 0)
      return n;
    for (size_t i = 0; i < (len + 4095) / 4096; i++)
      if (v[i] & 1) {
        if (n++ == 0)
          *lowest = p + i * 4096;
      }
  }
  return n;
}

size_t os_max_map_count(void) {
  char buf[32];
  int fd = open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 65530; // the kernel's default
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  size_t v = 0;
  for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++)
    v = v * 10 + (size_t)(buf[i] - '0');
  return v ? v : 65530;
}

void os_hugepages(void *p, size_t bytes, bool on) {
  madvise(p, bytes, on ? MADV_HUGEPAGE : MADV_NOHUGEPAGE); // advice: failure is harmless
}

void os_write_stderr(const char *s, size_t n) {
  gm_write_fd(2, s, n);
}

void gm_write_fd(int fd, const char *s, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w <= 0) {
      if (w < 0 && errno == EINTR)
        continue;
      return;
    }
    s += w;
    n -= (size_t)w;
  }
}

uint64_t os_clock_ns(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t os_nanotime(void) {
  return os_clock_ns(CLOCK_MONOTONIC);
}

void *os_next_symbol(const char *name) {
  char buf[64] = "__interceptor_";
  size_t n = strlen(buf), k = strlen(name);
  if (n + k < sizeof buf) {
    memcpy(buf + n, name, k + 1);
    void *p = dlsym(RTLD_DEFAULT, buf);
    if (p != NULL)
      return p;
  }
  void *p = dlsym(RTLD_NEXT, name);
  if (p != NULL)
    return p;
  // Loaded after the C library (libgc.so.1 of a program linked libc-first):
  // RTLD_NEXT searches only what comes after us; any definition outside
  // gomem's own object will do.
  Dl_info self, found;
  p = dlsym(RTLD_DEFAULT, name);
  if (p == NULL || !dladdr(p, &found) || !dladdr(__extension__(void *)os_next_symbol, &self) ||
      found.dli_fbase == self.dli_fbase)
    return NULL;
  return p;
}

size_t os_memory_limit(void) {
  char c = '0';
  int fd = open("/proc/sys/vm/overcommit_memory", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (read(fd, &c, 1) != 1)
      c = '0';
    close(fd);
  }
  struct sysinfo si;
  if (c == '1' || sysinfo(&si) != 0)
    return SIZE_MAX;
  return (size_t)(si.totalram + si.totalswap) * si.mem_unit;
}

// hex_field parses hexadecimal digits at *p, leaving *p after them.
static uintptr_t hex_field(const char **p, const char *end) {
  uintptr_t v = 0;
  for (; *p < end; (*p)++) {
    char c = **p;
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0)
      break;
    v = v << 4 | (uintptr_t)d;
  }
  return v;
}

// maps_line folds one line of /proc/self/maps ("lo-hi perms ...") into the
// search for addr: *run is the end of the current run of contiguous readable
// mappings (0: none), *found that run's end once addr is in it. Returns true
// when the answer is known.
static bool maps_line(const char *p, const char *end, uintptr_t addr, uintptr_t *run,
                      uintptr_t *found) {
  uintptr_t lo = hex_field(&p, end);
  p++; // '-'
  uintptr_t hi = hex_field(&p, end);
  bool readable = p + 1 < end && p[1] == 'r';
  if (!readable || lo != *run) { // the run ends here
    if (*found != 0)
      return true;
    *run = 0;
  }
  if (lo > addr && *found == 0)
    return true; // (addr lies in no mapping)
  if (readable) {
    *run = hi;
    if (addr >= lo && addr < hi)
      *found = hi;
  }
  return false;
}

uintptr_t os_readable_end(uintptr_t addr) {
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  char buf[4096];
  size_t have = 0;
  uintptr_t run = 0, found = 0;
  bool done = false, skip = false; // skip: inside a line longer than buf
  ssize_t n;
  while (!done && (n = read(fd, buf + have, sizeof buf - have)) > 0) {
    have += (size_t)n;
    char *line = buf, *nl;
    while (!done && (nl = memchr(line, '\n', have - (size_t)(line - buf))) != NULL) {
      if (!skip)
        done = maps_line(line, nl, addr, &run, &found);
      skip = false;
      line = nl + 1;
    }
    have -= (size_t)(line - buf);
    memmove(buf, line, have);
    if (have == sizeof buf) { // (a long path: the line's start is parsed)
      if (!skip)
        done = maps_line(buf, buf + have, addr, &run, &found);
      have = 0;
      skip = true;
    }
  }
  close(fd);
  return found != 0 ? run : 0;
}

pid_t os_gettid(void) {
  return (pid_t)syscall(SYS_gettid);
}

extern void *__libc_stack_end;

// os_stack_near: the main thread's stack ends at __libc_stack_end and is at
// most RLIMIT_STACK (capped at 1 GiB) deep; another thread's (glibc) ends just
// above its thread descriptor, at its thread pointer, and is assumed 8 MiB
// deep (a deeper frame only makes the check that uses this take its exact,
// slower path).
void os_stack_near(uintptr_t *lo, uintptr_t *hi) {
  uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
  uintptr_t end = (uintptr_t)__libc_stack_end;
  struct rlimit rl;
  uintptr_t max = (uintptr_t)1 << 30;
  if (getrlimit(RLIMIT_STACK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < max)
    max = (uintptr_t)rl.rlim_cur;
  if (sp <= end && end - sp < max) {
    *hi = end;
    *lo = end - max;
    return;
  }
  uintptr_t tp = (uintptr_t)__builtin_frame_address(0);
#if defined(__x86_64__)
  __asm__("mov %%fs:0, %0" : "=r"(tp));
#elif defined(__aarch64__)
  __asm__("mrs %0, tpidr_el0" : "=r"(tp));
#endif
  *hi = tp > sp ? tp : sp + 4096;
  *lo = *hi - ((uintptr_t)8 << 20);
}

// os_thread_create: the start routine travels on the creator's stack, which
// waits until the new thread has taken it.
typedef struct os_start {
  void *(*fn)(void *);
  void *arg;
  _Atomic int taken;
} os_start_t;

static void *os_thread_start(void *p) {
  os_start_t *st = p;
  void *(*fn)(void *) = st->fn;
  void *arg = st->arg;
  gm_tls_m.internal = true;
  atomic_store_explicit(&st->taken, 1, memory_order_release);
  return fn(arg);
}

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

int os_thread_create(void *(*fn)(void *), void *arg) {
  static _Atomic(create_fn) real;
  create_fn create = atomic_load_explicit(&real, memory_order_acquire);
  if (create == NULL) {
    create = __extension__(create_fn) os_next_symbol("pthread_create");
    if (create == NULL)
      return ENOSYS;
    atomic_store_explicit(&real, create, memory_order_release);
  }
  if (fn == NULL)
    return 0; // resolve only (os_thread_create(NULL, NULL))
  os_start_t st = {.fn = fn, .arg = arg};
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old); // inherited by the new thread
  pthread_t t;
  int rc = create(&t, &attr, os_thread_start, &st);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  while (rc == 0 && !atomic_load_explicit(&st.taken, memory_order_acquire))
    sched_yield();
  return rc;
}
