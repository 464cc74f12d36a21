// memreturn: does freed memory go back to the OS, and how fast?
//
// Allocates `volume` bytes of small objects (16-256 B, log-uniform), writes
// each, frees them all (in allocation order) and then, without calling
// anything allocator-specific (no malloc_trim), samples VmRSS from
// /proc/self/status at the times listed in waits= (seconds after the last
// free). Allocators with a background scavenger (Go, gomem) or a decay timer
// (jemalloc, mimalloc) return memory over time; others only at their next
// call, or never.
//
// Parameters: volume=1G, waits=0,1,5, min=16, max=256, seed=13.
// Metrics: rss after the last wait (MiB) first, then rss_<t>s for every wait,
// peak RSS (VmHWM), baseline RSS before allocating, time to allocate and free.
// The pointer array lives outside the allocator and is unmapped before the
// samples, so it does not count in them (it does in the peak).
#include "common.h"

int main(int argc, char **argv) {
  args_init(argc, argv);
  size_t volume = (size_t)arg_int("volume", 1LL << 30);
  size_t min = (size_t)arg_int("min", 16);
  size_t max = (size_t)arg_int("max", 256);
  uint64_t seed = (uint64_t)arg_int("seed", 13);
  double waits[16];
  int nw = arg_list("waits", "0,1,5", waits, 16);
  args_done();
  if (nw == 0 || min < 8 || max < min) die("bad parameters");

  double base = rss_mib();
  size_t cap = volume / min + 1;
  void **v = os_alloc(cap * sizeof *v);
  rng_t r = rng_make(seed, 0);
  size_t n = 0, live = 0;
  uint64_t sum = 0;
  double t0 = now_s();
  while (live < volume) {
    size_t s = rng_logsize(&r, min, max);
    uint64_t *p = xmalloc(s);
    p[0] = n;
    live += s;
    v[n++] = p;
  }
  for (size_t i = 0; i < n; i++) {
    uint64_t *p = v[i];
    if (p[0] != i) die("memreturn: block corrupted");
    sum += p[0];
    free(p);
  }
  double t = now_s() - t0;
  double peak = hwm_mib();
  os_free(v, cap * sizeof *v);

  double rss[16], start = now_s();
  for (int i = 0; i < nw; i++) {
    sleep_s(start + waits[i] - now_s());
    rss[i] = rss_mib();
  }
  report_check(mix64(sum) ^ n);
  char name[32];
  snprintf(name, sizeof name, "rss_%gs", waits[nw - 1]);
  report_metric(name, rss[nw - 1], "MiB", "lower");
  for (int i = 0; i < nw - 1; i++) {
    snprintf(name, sizeof name, "rss_%gs", waits[i]);
    report_metric(name, rss[i], "MiB", "lower");
  }
  report_metric("peak_rss", peak, "MiB", "lower");
  report_metric("baseline_rss", base, "MiB", "lower");
  report_metric("time", t, "s", "lower");
  return 0;
}
