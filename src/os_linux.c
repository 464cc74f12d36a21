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
//   os_hugepages        ask for transparent huge pages on a range, or forbid
//                       them (whatever the system default): a choice, not a
//                       surprise.
// None of these allocate memory from the heap.
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

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

void os_release(void *ctx, uintptr_t addr, size_t bytes) {
  (void)ctx;
  // MADV_DONTNEED, not MADV_FREE: released pages must read back as zero
  // (mheap skips zeroing them) and RSS must drop at once.
  while (madvise((void *)addr, bytes, MADV_DONTNEED) != 0 && errno == EAGAIN) {
  }
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

uint64_t os_nanotime(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
