// mprof.c: heap profiles, twin of Go's mprof.go (MemProfile) and of the
// heap profile writer of runtime/pprof (protomem.go).
//
// Sampling. Each thread cache counts down the bytes it hands out
// (mcache.sample_left); malloc's fast path subtracts the request and, when
// the count goes negative, takes prof_malloc: one allocation in about
// prof_rate bytes (Go's MemProfileRate, 512 KiB by default when profiling is
// on), the distance to the next drawn from an exponential distribution, so
// that the samples are unbiased (Go's nextSample). Off (rate 0), the count
// stays at INT64_MAX and the branch is never taken.
//
// A sampled object gets a span of its own (a large object of at least its
// size, flagged sampled): freeing it then goes through the large-object
// path, which reports it here, and malloc's and free's small-object paths
// never look up a table. The cost is at most a span (8 KiB) per sample: about
// 1.6% of the bytes allocated at the default rate if every sample were tiny.
//
// Records. The call stack of a sample (up to PROF_DEPTH frames, through the
// DWARF unwinder, _Unwind_Backtrace) names a bucket: allocations, bytes,
// frees, bytes freed (Go's memRecord); an off-heap map from the sampled
// object's address to its bucket and size tells a free what to count. A
// thread-local flag keeps the unwinder and the writer from sampling
// themselves.
//
// The profile (gm_heap_profile_write, GOMEM_HEAPPROFILE): a gzipped pprof
// protobuf with Go's four sample types — alloc_objects, alloc_space,
// inuse_objects, inuse_space — scaled as Go scales them (each bucket's counts
// divided by the probability that an allocation of its average size is
// sampled, 1 - exp(-size/rate)), the period (the rate), the program's and
// libraries' executable mappings (from /proc/self/maps, so that pprof
// symbolizes from the files), and one location per return address (minus one,
// inside the call). The gzip stream uses stored deflate blocks: no
// compression library.
//
// The hardened build's front end lays out its own objects in the core's
// slots, so there the core's malloc does not sample: the front end counts
// its requests and makes a sample one of its large objects (secure_api.c),
// whose free reports it.
//
// Locking: prof_lock (RANK_PROF, a leaf) protects the buckets and the map.
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <unwind.h>

#include "arena.h"
#include "mallocint.h"
#include "mprof.h"
#include "omap.h"
#include "os.h"
#include "vec.h"

#define PROF_DEPTH 32

typedef struct bucket {
  uint64_t hash;
  uint32_t next; // the next bucket of the same hash slot (index + 1; 0: none)
  uint32_t depth;
  uintptr_t pc[PROF_DEPTH];
  uint64_t allocs, alloc_bytes, frees, free_bytes;
} bucket_t;

_Atomic int64_t prof_rate;   // bytes per sample; 0: off
_Atomic uint64_t prof_epoch; // bumped when the rate changes
static gm_mutex_t prof_lock = GM_MUTEX_INIT(RANK_PROF);
static vec_t buckets = VEC_INIT(bucket_t); // (prof_lock)
static omap_t by_hash;                     // stack hash -> first bucket + 1 (prof_lock)
static omap_t sampled;                     // object -> bucket << 40 | size (prof_lock)
static __thread bool in_prof;              // the unwinder or the writer is running
static __thread uint64_t rng;
static const char *dump_path; // GOMEM_HEAPPROFILE
static volatile sig_atomic_t dump_requested;
static unsigned dump_seq;

// ---------------------------------------------------------------------------
// Numbers (no libm: gomem needs only the C library)

// ln_unit: ln(u) for u in (0, 1].
static double ln_unit(double u) {
  uint64_t bits;
  memcpy(&bits, &u, sizeof bits);
  int e = (int)((bits >> 52) & 0x7ff) - 1022; // u = m * 2^e, m in [0.5, 1)
  bits = (bits & ~(0x7ffull << 52)) | (1022ull << 52);
  double m, z, z2, s = 0;
  memcpy(&m, &bits, sizeof m);
  z = (m - 1) / (m + 1); // ln m = 2 atanh z, |z| <= 1/3
  z2 = z * z;
  for (int k = 15; k >= 1; k -= 2)
    s = s * z2 + 1.0 / k;
  return 2 * z * s + e * 0.6931471805599453;
}

// exp_neg: e^-x for x >= 0.
static double exp_neg(double x) {
  if (x > 700)
    return 0;
  int k = (int)(x / 0.6931471805599453);
  double r = -(x - k * 0.6931471805599453), t = 1, s = 1; // e^-x = e^r / 2^k
  for (int i = 1; i < 20; i++)
    s += t *= r / i;
  while (k-- > 0)
    s /= 2;
  return s;
}

int64_t prof_next_sample(void) {
  int64_t rate = relaxed_load(&prof_rate);
  if (rate <= 0)
    return INT64_MAX;
  if (rate == 1)
    return 0;
  if (rng == 0)
    rng = (uint64_t)(uintptr_t)&rng ^ os_nanotime() * 0x9e3779b97f4a7c15ull;
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  double u = (double)((rng >> 11) + 1) * 0x1.0p-53; // (0, 1]
  double d = -ln_unit(u) * (double)rate;
  return d > 0x1.0p62 ? INT64_MAX : (int64_t)d;
}

// ---------------------------------------------------------------------------
// Recording

typedef struct trace {
  uintptr_t *pc;
  int n;
} trace_t;

// The entry points' section (GM_ENTRY): the linker defines its bounds.
extern const char __start_gomem_entry[] __attribute__((visibility("hidden")));
extern const char __stop_gomem_entry[] __attribute__((visibility("hidden")));

static _Unwind_Reason_Code trace_frame(struct _Unwind_Context *ctx, void *arg) {
  trace_t *t = arg;
  uintptr_t pc = _Unwind_GetIP(ctx);
  if (pc == 0)
    return _URC_END_OF_STACK;
  if (t->n == 0 &&
      pc - (uintptr_t)__start_gomem_entry < (uintptr_t)(__stop_gomem_entry - __start_gomem_entry))
    return _URC_NO_REASON; // gomem's own frames, above the program's
  t->pc[t->n++] = pc;
  return t->n == PROF_DEPTH ? _URC_END_OF_STACK : _URC_NO_REASON;
}

static uint64_t stack_hash(const uintptr_t *pc, int n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (int i = 0; i < n; i++)
    h = (h ^ pc[i]) * 0x100000001b3ull;
  return h | 2; // (never 0 or 1: omap's empty and deleted keys)
}

// bucket_for returns the index + 1 of the bucket of stack pc[0, n), made if
// needed (0 when out of memory). prof_lock held.
static uint32_t bucket_for(const uintptr_t *pc, int n) {
  uint64_t h = stack_hash(pc, n);
  omap_slot_t *s = omap_get(&by_hash, h);
  uint32_t first = s ? (uint32_t)s->val : 0;
  for (uint32_t i = first; i != 0; i = ((bucket_t *)vec_at(&buckets, i - 1))->next) {
    bucket_t *b = vec_at(&buckets, i - 1);
    if (b->depth == (uint32_t)n && memcmp(b->pc, pc, (size_t)n * sizeof *pc) == 0)
      return i;
  }
  bucket_t *b = vec_push(&buckets);
  if (b == NULL)
    return 0;
  memset(b, 0, sizeof *b);
  b->hash = h;
  b->depth = (uint32_t)n;
  b->next = first;
  memcpy(b->pc, pc, (size_t)n * sizeof *pc);
  if (!omap_put(&by_hash, h, buckets.n)) {
    buckets.n--;
    return 0;
  }
  return (uint32_t)buckets.n;
}

GM_ENTRY void prof_record_alloc(uintptr_t p, size_t size) {
  if (in_prof)
    return;
  in_prof = true;
  uintptr_t pc[PROF_DEPTH];
  trace_t t = {pc, 0};
  _Unwind_Backtrace(trace_frame, &t);
  gm_lock(&prof_lock);
  uint32_t b = bucket_for(pc, t.n);
  if (b != 0 && omap_put(&sampled, p, (uint64_t)b << 40 | (size & ((1ull << 40) - 1)))) {
    bucket_t *k = vec_at(&buckets, b - 1);
    k->allocs++;
    k->alloc_bytes += size;
  }
  gm_unlock(&prof_lock);
  in_prof = false;
  if (dump_requested)
    prof_dump_now();
}

void prof_record_free(uintptr_t p) {
  gm_lock(&prof_lock);
  omap_slot_t *s = omap_get(&sampled, p);
  if (s != NULL) {
    bucket_t *k = vec_at(&buckets, (s->val >> 40) - 1);
    k->frees++;
    k->free_bytes += s->val & ((1ull << 40) - 1);
    omap_del_slot(&sampled, s);
  }
  gm_unlock(&prof_lock);
}

GM_ENTRY GM_NOINLINE void *prof_malloc(size_t size, bool zero) {
  mcache_t *c = gm_tls_mcache;
  c->sample_left = prof_next_sample();
  void *p = malloc_large(size ? size : 1, 1, zero);
  if (p == NULL)
    return NULL;
  spanof((uintptr_t)p)->sampled = 1;
  prof_record_alloc((uintptr_t)p, size);
  return p;
}

GM_EXPORT int64_t gm_set_profile_rate(int64_t bytes) {
  gm_ensure_init();
  int64_t old = atomic_exchange(&prof_rate, bytes < 0 ? 0 : bytes);
  relaxed_add(&prof_epoch, 1);
  return old;
}

// ---------------------------------------------------------------------------
// The pprof protobuf, gzipped

typedef struct out {
  vec_t b; // bytes
  bool oom;
} out_t;

static void put(out_t *o, const void *p, size_t n) {
  if (o->oom || !vec_reserve(&o->b, o->b.n + n)) {
    o->oom = true;
    return;
  }
  memcpy((char *)o->b.v + o->b.n, p, n);
  o->b.n += n;
}
static void varint(out_t *o, uint64_t v) {
  uint8_t buf[10];
  int n = 0;
  do
    buf[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
  while ((v >>= 7) != 0);
  put(o, buf, (size_t)n);
}
static void field_int(out_t *o, int field, uint64_t v) { // wire type 0
  varint(o, (uint64_t)field << 3);
  varint(o, v);
}
static void field_bytes(out_t *o, int field, const void *p, size_t n) { // wire type 2
  varint(o, (uint64_t)field << 3 | 2);
  varint(o, n);
  put(o, p, n);
}
// field_msg: a nested message built in m (then emptied).
static void field_msg(out_t *o, int field, out_t *m) {
  field_bytes(o, field, m->b.v, m->b.n);
  o->oom |= m->oom;
  m->b.n = 0;
}

// Strings: a fixed list, then each mapping's file name (index = order).
static const char *const fixed_strings[] = {"",      "alloc_objects", "count",       "alloc_space",
                                            "bytes", "inuse_objects", "inuse_space", "space"};
enum { S_ALLOC_OBJ = 1, S_COUNT, S_ALLOC_SPACE, S_BYTES, S_INUSE_OBJ, S_INUSE_SPACE, S_SPACE };

static void value_type(out_t *o, out_t *m, int field, int type, int unit) {
  field_int(m, 1, (uint64_t)type);
  field_int(m, 2, (uint64_t)unit);
  field_msg(o, field, m);
}

// scale: Go's scaleHeapSample.
static void scale(uint64_t count, uint64_t size, int64_t rate, int64_t *c, int64_t *s) {
  if (count == 0 || size == 0) {
    *c = *s = 0;
    return;
  }
  double f = 1;
  if (rate > 1)
    f = 1 / (1 - exp_neg((double)size / (double)count / (double)rate));
  *c = (int64_t)((double)count * f);
  *s = (int64_t)((double)size * f);
}

// mappings writes the executable file mappings (id = 1, 2, ...) and their
// names' string indices (from first_str), and keeps their ranges in map_lo
// and map_hi for mapping_of; returns how many.
#define MAX_MAPS 1024
static uintptr_t map_lo[MAX_MAPS], map_hi[MAX_MAPS]; // (dump_lock)
static int map_file[MAX_MAPS];                       // elf_open's index, or -1 (dump_lock)
static gm_mutex_t dump_lock = GM_MUTEX_INIT(RANK_PROF_DUMP);

static int mapping_of(uintptr_t pc, int n) {
  for (int i = 0; i < n; i++)
    if (pc - map_lo[i] < map_hi[i] - map_lo[i])
      return i + 1;
  return 0;
}

static int mappings(out_t *o, out_t *m, out_t *strs, int first_str) {
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  const size_t cap = (size_t)4 << 20;
  char *buf = os_reserve(cap, 0);
  size_t len = 0;
  ssize_t r;
  while (buf != NULL && len < cap - 1 && (r = read(fd, buf + len, cap - 1 - len)) > 0)
    len += (size_t)r;
  close(fd);
  if (buf == NULL)
    return 0;
  buf[len] = 0;
  int n = 0;
  for (char *line = buf, *nl; *line != 0; line = nl + 1) {
    nl = strchr(line, '\n');
    if (nl == NULL)
      break;
    *nl = 0;
    unsigned long lo, hi, off;
    char perms[5];
    int name_at = 0;
    if (sscanf(line, "%lx-%lx %4s %lx %*s %*s %n", &lo, &hi, perms, &off, &name_at) < 4 ||
        perms[2] != 'x' || name_at == 0 || line[name_at] != '/' || n == MAX_MAPS)
      continue;
    map_lo[n] = lo;
    map_hi[n] = hi;
    map_file[n] = elf_open(line + name_at, lo, off);
    n++;
    field_int(m, 1, (uint64_t)n);
    field_int(m, 2, lo);
    field_int(m, 3, hi);
    field_int(m, 4, off);
    field_int(m, 5, (uint64_t)(first_str + n - 1));
    if (map_file[n - 1] >= 0)
      field_int(m, 7, 1); // has_functions: the locations name them
    field_msg(o, 3, m);
    field_bytes(strs, 6, line + name_at, strlen(line + name_at));
  }
  os_unmap(buf, cap);
  return n;
}

static uint32_t crc_table[256];
static uint32_t crc32(uint32_t crc, const uint8_t *p, size_t n) {
  if (crc_table[1] == 0)
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++)
        c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
      crc_table[i] = c;
    }
  crc = ~crc;
  while (n--)
    crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return ~crc;
}

// gzip writes the bytes of in to fd as a gzip stream of stored blocks.
static int gzip(int fd, const uint8_t *in, size_t n) {
  static const uint8_t head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
  out_t o = {VEC_INIT(uint8_t), false};
  put(&o, head, sizeof head);
  size_t at = 0;
  do {
    size_t k = n - at > 65535 ? 65535 : n - at;
    uint8_t h[5] = {at + k == n, (uint8_t)k, (uint8_t)(k >> 8), (uint8_t)~k, (uint8_t)(~k >> 8)};
    put(&o, h, 5);
    put(&o, in + at, k);
    at += k;
  } while (at < n);
  uint32_t crc = crc32(0, in, n), size = (uint32_t)n;
  uint8_t tail[8] = {(uint8_t)crc,          (uint8_t)(crc >> 8),  (uint8_t)(crc >> 16),
                     (uint8_t)(crc >> 24),  (uint8_t)size,        (uint8_t)(size >> 8),
                     (uint8_t)(size >> 16), (uint8_t)(size >> 24)};
  put(&o, tail, 8);
  int rc = o.oom ? -1 : 0;
  for (size_t w = 0; rc == 0 && w < o.b.n;) {
    ssize_t r = write(fd, (char *)o.b.v + w, o.b.n - w);
    if (r <= 0)
      rc = -1;
    else
      w += (size_t)r;
  }
  if (o.b.v != NULL)
    os_unmap(o.b.v, o.b.cap);
  return rc;
}

GM_EXPORT int gm_heap_profile_write(int fd) {
  bool nested = in_prof;
  in_prof = true; // (the writer's own memory is never sampled)
  gm_lock(&dump_lock);
  out_t o = {VEC_INIT(uint8_t), false}, m = {VEC_INIT(uint8_t), false};
  out_t strs = {VEC_INIT(uint8_t), false}, ids = {VEC_INIT(uint8_t), false};
  int64_t rate = relaxed_load(&prof_rate);
  value_type(&o, &m, 1, S_ALLOC_OBJ, S_COUNT);
  value_type(&o, &m, 1, S_ALLOC_SPACE, S_BYTES);
  value_type(&o, &m, 1, S_INUSE_OBJ, S_COUNT);
  value_type(&o, &m, 1, S_INUSE_SPACE, S_BYTES);
  // Samples and locations (one location per distinct frame of each bucket:
  // id = bucket index * PROF_DEPTH + frame + 1).
  gm_lock(&prof_lock);
  for (size_t i = 0; i < buckets.n; i++) {
    const bucket_t *b = vec_at(&buckets, i);
    int64_t v[4];
    scale(b->allocs, b->alloc_bytes, rate, &v[0], &v[1]);
    scale(b->allocs - b->frees, b->alloc_bytes - b->free_bytes, rate, &v[2], &v[3]);
    for (uint32_t f = 0; f < b->depth; f++)
      varint(&ids, i * PROF_DEPTH + f + 1);
    field_msg(&m, 1, &ids);
    for (int k = 0; k < 4; k++)
      varint(&ids, (uint64_t)v[k]);
    field_msg(&m, 2, &ids);
    field_msg(&o, 2, &m);
  }
  size_t nb = buckets.n;
  gm_unlock(&prof_lock);
  int nfixed = (int)(sizeof fixed_strings / sizeof *fixed_strings);
  int nmap = mappings(&o, &m, &strs, nfixed);
  omap_t fns = {0};
  out_t line = {VEC_INIT(uint8_t), false};
  uint64_t nfn = 0;
  gm_lock(&prof_lock);
  for (size_t i = 0; i < nb; i++) {
    const bucket_t *b = vec_at(&buckets, i);
    for (uint32_t f = 0; f < b->depth; f++) {
      uintptr_t pc = b->pc[f] - 1; // (a return address: the call is just before it)
      int map = mapping_of(pc, nmap);
      size_t sym = 0;
      const char *name = map ? elf_name(map_file[map - 1], pc, &sym) : NULL;
      field_int(&m, 1, i * PROF_DEPTH + f + 1);
      field_int(&m, 2, (uint64_t)map);
      field_int(&m, 3, pc);
      if (name != NULL) { // Function {id, name, system_name}, once per symbol
        uintptr_t key = ((uintptr_t)map << 40 | sym) << 2 | 2;
        omap_slot_t *s = omap_get(&fns, key);
        uint64_t id = s ? s->val : ++nfn;
        if (s == NULL && omap_put(&fns, key, id)) {
          field_int(&line, 1, id);
          field_int(&line, 2, (uint64_t)(nfixed + nmap) + id - 1);
          field_int(&line, 3, (uint64_t)(nfixed + nmap) + id - 1);
          field_msg(&o, 5, &line);
          field_bytes(&strs, 6, name, strlen(name));
        } else if (s == NULL) {
          nfn--, id = 0; // (out of memory: the location stays unnamed)
        }
        if (id != 0) {
          field_int(&line, 1, id);
          field_msg(&m, 4, &line);
        }
      }
      field_msg(&o, 4, &m);
    }
  }
  gm_unlock(&prof_lock);
  elf_forget();
  if (fns.t != NULL)
    os_unmap(fns.t, fns.cap * sizeof *fns.t);
  for (size_t i = 0; i < sizeof fixed_strings / sizeof *fixed_strings; i++)
    field_bytes(&o, 6, fixed_strings[i], strlen(fixed_strings[i]));
  put(&o, strs.b.v, strs.b.n);
  o.oom |= strs.oom;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  field_int(&o, 9, (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec);
  value_type(&o, &m, 11, S_SPACE, S_BYTES);
  field_int(&o, 12, (uint64_t)rate);
  int rc = o.oom || m.oom || ids.oom || line.oom ? -1 : gzip(fd, o.b.v, o.b.n);
  vec_t *all[] = {&o.b, &m.b, &strs.b, &ids.b, &line.b};
  for (int i = 0; i < 5; i++)
    if (all[i]->v != NULL)
      os_unmap(all[i]->v, all[i]->cap * all[i]->elem);
  gm_unlock(&dump_lock);
  in_prof = nested;
  if (rc != 0)
    errno = ENOMEM;
  return rc;
}

// ---------------------------------------------------------------------------
// GOMEM_HEAPPROFILE=path: written at exit, and at the next sampled
// allocation after the signal GOMEM_HEAPPROFILE_SIGNAL (path.1, path.2, ...)

void prof_dump_now(void) {
  dump_requested = 0;
  if (dump_path == NULL)
    return;
  char name[4096];
  size_t n = strlen(dump_path);
  if (n > sizeof name - 16)
    return;
  memcpy(name, dump_path, n + 1);
  if (dump_seq > 0) { // (signal dumps: path.N)
    char num[12];
    int k = 0;
    for (unsigned v = dump_seq; v != 0; v /= 10)
      num[k++] = (char)('0' + v % 10);
    name[n++] = '.';
    while (k > 0)
      name[n++] = num[--k];
    name[n] = 0;
  }
  int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd >= 0) {
    gm_heap_profile_write(fd);
    close(fd);
  }
}

static void on_signal(int sig) {
  (void)sig;
  dump_seq++;
  dump_requested = 1;
}

__attribute__((destructor)) static void prof_at_exit(void) {
  if (dump_path != NULL && relaxed_load(&prof_rate) > 0) {
    dump_seq = 0;
    prof_dump_now();
  }
}

// prof_init (gm_init_slow, after the options): GOMEM_HEAPPROFILE and
// GOMEM_PROFILE_RATE (bytes; with a path and no rate, 512 KiB).
void prof_init(void) {
  dump_path = getenv("GOMEM_HEAPPROFILE");
  const char *r = getenv("GOMEM_PROFILE_RATE");
  int64_t rate = dump_path != NULL && *dump_path ? 512 * 1024 : 0;
  if (r != NULL && *r >= '0' && *r <= '9')
    rate = strtoll(r, NULL, 10);
  if (dump_path != NULL && *dump_path == 0)
    dump_path = NULL;
  relaxed_store(&prof_rate, rate);
  const char *sig = getenv("GOMEM_HEAPPROFILE_SIGNAL");
  if (dump_path != NULL && sig != NULL && atoi(sig) > 0 && atoi(sig) < NSIG) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigaction(atoi(sig), &sa, NULL);
  }
  lock_fork_register(&prof_lock);
  lock_fork_register(&dump_lock);
}
