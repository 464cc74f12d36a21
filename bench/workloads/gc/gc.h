// gc.h: the tiny allocation layer of the garbage-collector workloads.
//
// Each workloads/gc/NAME.c is written against five macros and built once per
// collector (see bench/Makefile):
//
//   GC_INIT()             set the collector up; first thing in main
//   GC_NEW(size)          zeroed memory that the collector scans for pointers
//   GC_NEW_NOSCAN(size)   memory that holds no pointers (not zeroed by Boehm)
//   GC_COLLECT()          a full collection now
//   GC_STORE(lv, p)       lv = p, where lv is a pointer field of a GC object
//                         (every such store goes through it)
//   gc_stall_init()       after GC_INIT: start counting gc_stall_ns()
//   gc_stall_ns()         nanoseconds the collector has held the calling
//                         program up so far, as the collector accounts it:
//                         gomem's stops plus mark assists (gm_stats), Boehm's
//                         collections (timed by its collection event hook);
//                         page faults and sweeping are not in it
//   gc_report_mark_share()  at the end: with gomem marking beside the
//                         program, the metrics mark_cpu_share (Go's GC CPU
//                         utilization while marking: the background
//                         marker's time as dedicated or fractional worker
//                         plus the assists', over CPUs x marking's clock, in
//                         %; Go aims at 25) and mark_idle_share (the
//                         marker's time as idle worker, the same way)
//
//   -DGC_IMPL_BOEHM   Boehm GC (Debian's libgc-dev): GC_MALLOC,
//                     GC_MALLOC_ATOMIC, GC_gcollect; link -lgc
//   -DGC_IMPL_GOMEM   gomem's collector (include/gomem.h): gm_alloc,
//                     gm_alloc_noscan, gm_collect; link libgomem
//     with -DGC_BARRIER_EXPLICIT, GC_STORE is gm_store (gomem's explicit
//     barrier, for GOMEM_BARRIER=explicit); otherwise a plain store
//
// Nothing is ever freed: memory that is no longer reachable from the stack,
// the data segment or another GC object is the collector's to reclaim. So
// every pointer to GC memory must live in one of those (never in malloc'ed
// memory, which Boehm does not scan). The same programs in Go are in
// workloads/go/NAME/main.go; both print the same checksum.
#ifndef GOMEM_BENCH_GC_H
#define GOMEM_BENCH_GC_H

#include "../common.h"

#if defined(GC_IMPL_BOEHM)
#include <gc.h>
#define GC_IMPL_NAME "boehm"
static inline void *gc_new_(size_t n) {
  void *p = GC_MALLOC(n);
  if (!p) die("GC_MALLOC(%zu) returned NULL", n);
  return p;
}
static inline void *gc_new_noscan_(size_t n) {
  void *p = GC_MALLOC_ATOMIC(n);
  if (!p) die("GC_MALLOC_ATOMIC(%zu) returned NULL", n);
  return p;
}
#undef GC_NEW /* Boehm's GC_NEW(type); ours takes a size */
#define GC_NEW(n) gc_new_(n)
#define GC_NEW_NOSCAN(n) gc_new_noscan_(n)
#define GC_COLLECT() GC_gcollect()
/* GC_INIT is Boehm's own macro. */
static int64_t gc_stall_total_, gc_stall_from_;
static void GC_CALLBACK gc_stall_event_(GC_EventType e) {
  if (e == GC_EVENT_START) gc_stall_from_ = (int64_t)(now_s() * 1e9);
  if (e == GC_EVENT_END && gc_stall_from_ != 0) gc_stall_total_ += (int64_t)(now_s() * 1e9) - gc_stall_from_;
}
static inline void gc_stall_init(void) { GC_set_on_collection_event(gc_stall_event_); }
static inline int64_t gc_stall_ns(void) { return gc_stall_total_; }
static inline void gc_report_mark_share(void) {}

#elif defined(GC_IMPL_GOMEM)
#include "gomem.h"
#define GC_IMPL_NAME "gomem"
static inline void *gc_new_(size_t n) {
  void *p = gm_alloc(n);
  if (!p) die("gm_alloc(%zu) returned NULL", n);
  return p;
}
static inline void *gc_new_noscan_(size_t n) {
  void *p = gm_alloc_noscan(n);
  if (!p) die("gm_alloc_noscan(%zu) returned NULL", n);
  return p;
}
#define GC_NEW(n) gc_new_(n)
#define GC_NEW_NOSCAN(n) gc_new_noscan_(n)
#define GC_COLLECT() gm_collect()
#define GC_INIT() ((void)0)
static inline void gc_stall_init(void) {}
static inline int64_t gc_stall_ns(void) {
  gm_stats_t st;
  gm_stats(&st);
  return (int64_t)(st.pause_total_ns + st.assist_total_ns);
}
static inline void gc_report_mark_share(void) {
  gm_stats_t st;
  gm_stats(&st);
  double cpus = (double)sysconf(_SC_NPROCESSORS_ONLN), clock = (double)st.mark_total_ns;
  if (clock == 0) return; // (stop-the-world marking)
  report_metric("mark_cpu_share", 100 * (double)(st.mark_background_ns + st.assist_total_ns) / (cpus * clock), "%", "lower");
  report_metric("mark_idle_share", 100 * (double)st.mark_idle_ns / (cpus * clock), "%", "lower");
}

#else
#error "build with -DGC_IMPL_BOEHM or -DGC_IMPL_GOMEM (see bench/Makefile)"
#endif

#if defined(GC_IMPL_GOMEM) && defined(GC_BARRIER_EXPLICIT)
#define GC_STORE(lv, p) gm_store((void **)&(lv), (p))
#else
#define GC_STORE(lv, p) ((lv) = (p))
#endif

// FNV-1a over text: the checksum of a program's "standard" output lines, so
// the C and Go versions agree byte for byte.
static inline uint64_t fnv1a(uint64_t h, const char *s) {
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
  return h;
}
#define FNV_INIT 0xcbf29ce484222325ULL

// Prints "# LINE" and folds LINE (with its newline) into *h.
static UNUSED __attribute__((format(printf, 2, 3))) void out_line(uint64_t *h, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  printf("# %s\n", buf);
  *h = fnv1a(fnv1a(*h, buf), "\n");
}

#endif
