// os_wtrack.c: kernel write tracking, the barrier a C program gets without
// a compiler (Linux 6.7+; the collector's concurrent marking builds on it).
//
// Two kernel features together: userfaultfd write-protection in
// asynchronous mode (UFFD_FEATURE_WP_ASYNC) and the PAGEMAP_SCAN ioctl on
// /proc/self/pagemap. A range is registered with the userfaultfd once, then
// armed (every page write-protected). The first write to an armed page
// faults into the kernel, which clears the protection and marks the page
// written: no signal, no message, no thread of ours involved, and the same
// for writes the kernel makes on the program's behalf (read(2) into the
// page). PAGEMAP_SCAN with PM_SCAN_WP_MATCHING then returns the written
// pages and write-protects them again in one step, so a write racing with a
// fetch is either in this fetch or in the next one, never lost.
//
// Contract:
//   os_wtrack_init      open the userfaultfd (UFFD_USER_MODE_ONLY: no
//                       privilege needed) and the pagemap; false, with the
//                       reason, where the kernel lacks the features or
//                       refuses (seccomp, vm.unprivileged_userfaultfd with an
//                       old kernel, valgrind). Once per process; a forked
//                       child must call os_wtrack_fork_child first (its
//                       mappings are not registered, and the pagemap opened
//                       before fork is the parent's).
//   os_wtrack_register  track a mapped, anonymous, private range.
//   os_wtrack_arm       write-protect a registered range.
//   os_wtrack_fetch     report the written ranges of a registered range
//                       since it was armed or last fetched, re-protecting
//                       them; returns the number of pages, or -1.
//   os_wtrack_disarm    drop the protection (writes no longer fault); the
//                       range then counts as written: a fetch would report
//                       every page, and arm it again.
// Reports are conservative: a page may be reported without having been
// written (transparent huge pages are reported whole; MADV_DONTNEED counts
// as a write), never the other way round. None of these allocate.
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "os.h"

// (Debian 12's kernel headers predate these; the running kernel decides.)
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef PAGEMAP_SCAN
struct page_region {
  uint64_t start, end, categories;
};
struct pm_scan_arg {
  uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
  uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#define PAGE_IS_WRITTEN (1 << 1)
#define PM_SCAN_WP_MATCHING (1 << 0)
#define PM_SCAN_CHECK_WPASYNC (1 << 1)
#endif

#define REGIONS 256 // page regions per PAGEMAP_SCAN call

// Set by os_wtrack_init (before any other call; the collector serialises
// them: one cycle at a time).
static int uffd = -1, pagemap = -1;

bool os_wtrack_init(const char **why) {
  if (uffd >= 0)
    return true;
  int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
  if (fd < 0) {
    *why = errno == ENOSYS ? "no userfaultfd in this kernel" : "userfaultfd refused";
    return false;
  }
  struct uffdio_api api = {.api = UFFD_API,
                           .features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED};
  if (ioctl(fd, UFFDIO_API, &api) != 0) {
    close(fd);
    *why = "no asynchronous userfaultfd write-protect (Linux 6.7+)";
    return false;
  }
  int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (pm < 0) {
    close(fd);
    *why = "cannot open /proc/self/pagemap";
    return false;
  }
  // PAGEMAP_SCAN exists if an empty scan succeeds.
  struct pm_scan_arg a = {.size = sizeof a, .start = 0, .end = 0};
  if (ioctl(pm, PAGEMAP_SCAN, &a) != 0) {
    close(fd);
    close(pm);
    *why = "no PAGEMAP_SCAN (Linux 6.7+)";
    return false;
  }
  uffd = fd;
  pagemap = pm;
  return true;
}

void os_wtrack_fork_child(void) {
  if (uffd >= 0)
    close(uffd);
  if (pagemap >= 0)
    close(pagemap);
  uffd = pagemap = -1;
}

bool os_wtrack_register(uintptr_t base, size_t bytes) {
  struct uffdio_register r = {.range = {.start = base, .len = bytes},
                              .mode = UFFDIO_REGISTER_MODE_WP};
  return uffd >= 0 && ioctl(uffd, UFFDIO_REGISTER, &r) == 0;
}

// wtrack_protect changes the protection a chunk at a time: one ioctl over a
// whole heap holds the page-table locks, and the address space lock
// against any mmap waiting for it, long enough to stall the program's page
// faults (a single 300 MiB disarm stalled it for 150 ms).
#define PROTECT_CHUNK ((size_t)4 << 20)
static bool wtrack_protect(uintptr_t base, size_t bytes, bool on) {
  for (size_t off = 0; off < bytes; off += PROTECT_CHUNK) {
    size_t len = bytes - off < PROTECT_CHUNK ? bytes - off : PROTECT_CHUNK;
    struct uffdio_writeprotect w = {.range = {.start = base + off, .len = len},
                                    .mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0};
    while (ioctl(uffd, UFFDIO_WRITEPROTECT, &w) != 0)
      if (errno != EAGAIN)
        return false;
  }
  return true;
}

bool os_wtrack_arm(uintptr_t base, size_t bytes) {
  return uffd >= 0 && wtrack_protect(base, bytes, true);
}

bool os_wtrack_disarm(uintptr_t base, size_t bytes) {
  return uffd >= 0 && wtrack_protect(base, bytes, false);
}

ssize_t os_wtrack_fetch(uintptr_t base, size_t bytes, os_wtrack_fn fn, void *ctx) {
  if (pagemap < 0)
    return -1;
  struct page_region vec[REGIONS];
  size_t pages = 0, page = (size_t)sysconf(_SC_PAGESIZE);
  uintptr_t at = base, end = base + bytes;
  while (at < end) {
    struct pm_scan_arg a = {.size = sizeof a,
                            .flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
                            .start = at,
                            .end = end,
                            .vec = (uintptr_t)vec,
                            .vec_len = REGIONS,
                            .category_mask = PAGE_IS_WRITTEN,
                            .return_mask = PAGE_IS_WRITTEN};
    int n = ioctl(pagemap, PAGEMAP_SCAN, &a);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN)
        continue;
      return -1;
    }
    for (int i = 0; i < n; i++) {
      pages += (vec[i].end - vec[i].start) / page;
      fn(ctx, (uintptr_t)vec[i].start, (uintptr_t)vec[i].end);
    }
    if (a.walk_end <= at)
      return -1; // no progress: never expected
    at = (uintptr_t)a.walk_end;
  }
  return (ssize_t)pages;
}
