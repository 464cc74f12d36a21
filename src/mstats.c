// mstats.c: statistics (gm_stats, modelled on Go's MemStats), the exit-time
// report (GOMEM_STATS=1) and fatal errors. Nothing here allocates from the
// heap: reports are formatted into stack buffers and written with write(2).
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "coro.h"
#include "mallocint.h"
#include "mcache.h"
#include "mgcscavenge.h"
#include "mheap.h"
#include "mstats.h"
#include "os.h"

size_t gm_fmt(char *buf, size_t n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(buf, n, fmt, ap);
  va_end(ap);
  if (k < 0)
    return 0;
  return (size_t)k < n ? (size_t)k : n - 1;
}

// gm_fatal reports a fault as "gomem: <what> at <addr>" and aborts. A fault
// found by a thread that shares another thread's cache (clone() without
// CLONE_SETTLS) is reported as that: it is the likely cause.
void gm_fatal(const char *what, const void *addr) {
  mcache_t *c = gm_tls_mcache;
  if (c != &mcache_empty && c->owner_tid != 0 && c->owner_tid != os_gettid())
    mcache_foreign_thread(c);
  char buf[256];
  size_t n = addr ? gm_fmt(buf, sizeof buf, "gomem: %s at %p\n", what, addr)
                  : gm_fmt(buf, sizeof buf, "gomem: %s\n", what);
  os_write_stderr(buf, n);
  abort();
}

void gm_fatal_assert(const char *cond, const char *file, int line) {
  char buf[512];
  size_t n = gm_fmt(buf, sizeof buf, "gomem: assertion failed: %s (%s:%d)\n", cond, file, line);
  os_write_stderr(buf, n);
  abort();
}

// stats_fill fills every field gomem knows.
static void stats_fill(gm_stats_t *st) {
  memset(st, 0, sizeof *st);
  gm_ensure_init();
  for (int i = 0; i < GM_NUM_SIZE_CLASSES; i++)
    st->by_size[i].size = class_to_size[i];
  mcache_sum_stats(st);
  gm_lock(&gm_heap.lock);
  st->heap_sys = gm_heap.sys_bytes;
  st->heap_idle = (uint64_t)gm_heap.pages.free_pages * GM_PAGE_SIZE;
  st->heap_released = (uint64_t)gm_heap.pages.scav_pages * GM_PAGE_SIZE;
  st->heap_inuse = (uint64_t)relaxed_load(&gm_heap.inuse_pages) * GM_PAGE_SIZE;
  st->meta_sys += fixalloc_sys(&gm_heap.span_alloc) + arena_metadata_bytes();
  st->by_size[0].mallocs = relaxed_load(&gm_heap.large_allocs);
  st->by_size[0].frees = relaxed_load(&gm_heap.large_frees);
  st->heap_alloc = relaxed_load(&gm_heap.large_inuse_bytes);
  gm_unlock(&gm_heap.lock);
  uint64_t limit = relaxed_load(&gm_mem_limit);
  st->memory_limit = limit == UINT64_MAX ? INT64_MAX : (int64_t)limit;
  for (int i = 0; i < GM_NUM_SIZE_CLASSES; i++) {
    gm_class_stats_t *c = &st->by_size[i];
    uint64_t live = c->mallocs > c->frees ? c->mallocs - c->frees : 0;
    st->mallocs += c->mallocs;
    st->frees += c->frees;
    st->heap_objects += live;
    if (i > 0)
      st->heap_alloc += live * c->size;
  }
  coro_stats(&st->co_count, &st->co_stack_bytes, &st->co_shrinks);
  if (gm_gc_hooks.stats != NULL)
    gm_gc_hooks.stats(st);
}

GM_EXPORT void gm_stats_sized(gm_stats_t *st, size_t size) {
  gm_stats_t all;
  stats_fill(&all);
  memcpy(st, &all, size < sizeof all ? size : sizeof all);
  if (size > sizeof all) // (a newer header's fields: none known here)
    memset((char *)st + sizeof all, 0, size - sizeof all);
}

GM_EXPORT void(gm_stats)(gm_stats_t *st) {
  gm_stats_sized(st, offsetof(gm_stats_t, mark_total_ns));
}

static void put(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(int fd, const char *fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (k > 0)
    gm_write_fd(fd, buf, (size_t)k < sizeof buf ? (size_t)k : sizeof buf - 1);
}

#define MIB(x) ((double)(x) / (1024.0 * 1024.0))

GM_EXPORT void gm_print_stats_fd(int fd) {
  gm_stats_t st;
  gm_stats(&st);
  put(fd, "gomem statistics\n");
  put(fd, "  heap alloc     %10.2f MiB in %llu objects\n", MIB(st.heap_alloc),
      (unsigned long long)st.heap_objects);
  put(fd, "  heap in use    %10.2f MiB (spans)\n", MIB(st.heap_inuse));
  put(fd, "  heap idle      %10.2f MiB (free pages; %.2f MiB returned to the OS)\n",
      MIB(st.heap_idle), MIB(st.heap_released));
  put(fd, "  heap sys       %10.2f MiB (arenas reserved)\n", MIB(st.heap_sys));
  put(fd, "  metadata       %10.2f MiB\n", MIB(st.meta_sys));
  put(fd, "  mallocs        %10llu\n  frees          %10llu\n", (unsigned long long)st.mallocs,
      (unsigned long long)st.frees);
  put(fd, "  thread caches  %10llu\n", (unsigned long long)st.num_threads);
  if (st.num_gc != 0 || st.gc_heap_alloc != 0) {
    uint64_t last = st.num_gc ? st.pause_ns[(st.num_gc + 255) % 256] : 0;
    put(fd, "  gc heap        %10.2f MiB allocated, %.2f MiB live at the last collection\n",
        MIB(st.gc_heap_alloc), MIB(st.gc_heap_live));
    put(fd, "  collections    %10llu (%llu forced), next at %.2f MiB, GOGC %lld\n",
        (unsigned long long)st.num_gc, (unsigned long long)st.num_forced_gc, MIB(st.next_gc),
        (long long)st.gc_percent);
    put(fd, "  gc pauses      %10.3f ms total, last %.3f ms; gc cpu %.1f%%\n",
        (double)st.pause_total_ns / 1e6, (double)last / 1e6, st.gc_cpu_fraction * 100);
  }
  put(fd, "  class     size      mallocs        frees         live\n");
  for (int i = 0; i < GM_NUM_CLASSES; i++) {
    const gm_class_stats_t *c = &st.by_size[i];
    if (c->mallocs == 0)
      continue;
    char size[16] = "large";
    if (i > 0)
      gm_fmt(size, sizeof size, "%u", c->size);
    put(fd, "  %5d %8s %12llu %12llu %12llu\n", i, size, (unsigned long long)c->mallocs,
        (unsigned long long)c->frees,
        (unsigned long long)(c->mallocs > c->frees ? c->mallocs - c->frees : 0));
  }
  put(fd, "  options\n");
  options_print(fd);
}

// stats_fd: a copy of stderr taken at initialisation, so the exit report
// still has somewhere to go in programs that close stderr before exiting.
static int stats_fd = -1;

void mstats_init(void) {
  if (gm_opt.stats_at_exit)
    stats_fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
}

__attribute__((destructor)) static void gm_exit_report(void) {
  if (atomic_load(&gm_inited) == 2 && gm_opt.stats_at_exit)
    gm_print_stats_fd(stats_fd >= 0 ? stats_fd : 2);
}
