// frag: fragmentation.
//
// Phase 1 allocates objects of mixed sizes (by count: 70% 16-256 B, 25%
// 256 B-4 KiB, 5% 4-64 KiB, log-uniform within each range) and writes all of
// them until `volume` bytes are live. Phase 2 frees a random half. Phase 3
// allocates the same volume as was freed again, with sizes drawn from ranges
// 1.5 times larger, so the holes left by phase 2 are the wrong size for many
// of the new objects. An allocator that can reuse, coalesce or return those
// holes ends with a final RSS close to the live bytes; one that cannot ends
// with up to 1.5 times as much.
//
// Parameters: volume=512M, seed=11.
// Metrics: final RSS (VmRSS at the end of phase 3, MiB), peak RSS (VmHWM,
// MiB), live bytes (MiB), overhead (final RSS / (baseline RSS + live)),
// time of the three phases (s).
#include "common.h"

typedef struct {
  void *p;
  size_t size;
} obj_t;

static size_t pick(rng_t *r, double scale) {
  uint64_t x = rng_next(r) % 100;
  size_t lo, hi;
  if (x < 70) lo = 16, hi = 256;
  else if (x < 95) lo = 256, hi = 4096;
  else lo = 4096, hi = 65536;
  return rng_logsize(r, (size_t)((double)lo * scale), (size_t)((double)hi * scale));
}

int main(int argc, char **argv) {
  args_init(argc, argv);
  size_t volume = (size_t)arg_int("volume", 512 << 20);
  uint64_t seed = (uint64_t)arg_int("seed", 11);
  args_done();
  if (volume < (1 << 20)) die("volume too small");

  double base = rss_mib();
  size_t cap = volume / 16 * 2 + 16; // bound on the object count; untouched pages cost nothing
  obj_t *o = os_alloc(cap * sizeof *o);
  size_t n = 0, live = 0;
  uint64_t sum = 0;
  rng_t r = rng_make(seed, 0);
  double t0 = now_s();

  // Phase 1.
  while (live < volume) {
    size_t s = pick(&r, 1.0);
    o[n].p = xmalloc(s);
    o[n].size = s;
    memset(o[n].p, (int)(n & 0xff), s);
    live += s;
    n++;
  }
  // Phase 2: free a random half.
  size_t freed = 0;
  for (size_t i = 0; i < n; i++) {
    if (rng_next(&r) & 1) {
      unsigned char *c = o[i].p;
      if (c[0] != (unsigned char)i || c[o[i].size - 1] != (unsigned char)i) die("frag: block corrupted");
      sum += c[0] + o[i].size;
      free(o[i].p);
      o[i].p = NULL;
      freed += o[i].size;
    }
  }
  live -= freed;
  // Phase 3: allocate the freed volume again with other sizes.
  size_t again = 0;
  while (again < freed) {
    if (n == cap) die("frag: too many objects");
    size_t s = pick(&r, 1.5);
    o[n].p = xmalloc(s);
    o[n].size = s;
    memset(o[n].p, (int)(n & 0xff), s);
    again += s;
    n++;
  }
  live += again;
  double t = now_s() - t0;
  double final = rss_mib(), peak = hwm_mib();

  for (size_t i = 0; i < n; i++) {
    if (!o[i].p) continue;
    unsigned char *c = o[i].p;
    if (c[0] != (unsigned char)i || c[o[i].size - 1] != (unsigned char)i) die("frag: block corrupted");
    sum += c[0] + o[i].size;
    free(o[i].p);
  }
  os_free(o, cap * sizeof *o);
  double livem = (double)live / 1048576.0;
  report_check(mix64(sum) ^ n);
  report_metric("final_rss", final, "MiB", "lower");
  report_metric("peak_rss", peak, "MiB", "lower");
  report_metric("live", livem, "MiB", "lower");
  report_metric("overhead", final / (base + livem), "x", "lower");
  report_metric("time", t, "s", "lower");
  return 0;
}
