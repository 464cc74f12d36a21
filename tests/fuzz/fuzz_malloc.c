// fuzz_malloc: gomem's malloc family against a shadow model.
//
// What it checks, after every operation on the objects it touches and, every
// N operations and at the end of the input, on all of them:
//   - contents: every live object holds the byte pattern last written to it
//     (a seed per slot and write), over its requested size; calloc'ed memory
//     is zero; realloc keeps the prefix;
//   - no two live objects overlap, counting each object's whole usable size
//     (sorted by address);
//   - alignment: what the memalign family asked for, 8 bytes for every object
//     and 16 for objects whose usable size is a multiple of 16 (malloc.c);
//   - gm_usable_size >= the requested size; gm_owns is true anywhere inside
//     a live object and false for stack and global addresses;
//   - oversize requests (calloc / reallocarray overflows, sizes >= 2^47)
//     return NULL with errno = ENOMEM and leave the old object intact; a bad
//     alignment gives EINVAL; posix_memalign keeps errno when it succeeds;
//   - statistics (gomem.h): per size class, mallocs - frees moved by what the
//     model allocated and freed since the input started, give or take the 63
//     objects per class a thread's cache may have reserved ahead.
//
// Input: byte 0 holds options: bit 0 cross-thread mode (a second thread frees
// objects this one allocated, handed over through a queue), bits 1-2 the
// full-check period (32 << n operations). Then operations, each an
// opcode byte (op_table) and its operands: a slot byte (one of NSLOTS), and as
// the operation needs, a size (2 bytes, pick_size: tiny, every class size and
// its neighbours, medium, large, rarely a few MiB), an alignment (1 byte,
// pick_align), a count (1 byte). An allocation into an occupied slot frees
// (after checking) what the slot held. Missing bytes read as 0.
//
// GOMEM_FUZZ_HUGE=1 also asks for 1 TiB, expecting ENOMEM (gomem grants it,
// after seconds and a gigabyte of metadata: see README.md).
#define FUZZ_NAME "fuzz_malloc"
#include "fuzz.h"

#define NSLOTS 64
#define MAX_MODEL_SIZE ((size_t)8 << 20) // larger requests are clamped
#define SLACK_PER_CLASS 63               // gomem.h: cache reservations per class per thread

typedef struct slot {
  unsigned char *p; // NULL: empty
  size_t size;      // bytes the program uses (pattern-filled)
  size_t usable;    // gm_usable_size when allocated
  uint64_t seed;    // pattern
} slot_t;

static slot_t slots[NSLOTS];
static uint64_t seed_counter;
static size_t class_size[GM_NUM_CLASSES]; // from gm_stats
static int class_group[GM_NUM_CLASSES];   // classes whose objects a usable size can't tell apart
static int huge_sizes;                    // GOMEM_FUZZ_HUGE
static gm_stats_t base_stats, cur_stats;  // at input start, at the last check
static char global_probe[64];             // gm_owns must say no

// ---------------------------------------------------------------------------
// Patterns

// pat_byte: byte i of the pattern of seed (byte i % 8 of word i / 8, as a
// little-endian machine stores the word).
static inline unsigned char pat_byte(uint64_t seed, size_t i) {
  return (unsigned char)(fz_pat(seed, i / 8) >> (8 * (i & 7)));
}

static void fill(unsigned char *p, size_t from, size_t to, uint64_t seed) {
  size_t i = from;
  for (; i < to && (i & 7); i++)
    p[i] = pat_byte(seed, i);
  for (; i + 8 <= to; i += 8) {
    uint64_t w = fz_pat(seed, i / 8);
    memcpy(p + i, &w, 8);
  }
  for (; i < to; i++)
    p[i] = pat_byte(seed, i);
}

// first_bad returns the offset of the first byte of [from, to) that differs
// from the pattern, or `to`.
static size_t first_bad(const unsigned char *p, size_t from, size_t to, uint64_t seed) {
  size_t i = from;
  for (; i < to && (i & 7); i++)
    if (p[i] != pat_byte(seed, i))
      return i;
  for (; i + 8 <= to; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    if (w != fz_pat(seed, i / 8))
      break;
  }
  for (; i < to; i++)
    if (p[i] != pat_byte(seed, i))
      return i;
  return to;
}

static void check_slot(int s, const char *when) {
  const slot_t *o = &slots[s];
  if (o->p == NULL)
    return;
  size_t bad = first_bad(o->p, 0, o->size, o->seed);
  FZ_CHECK(bad == o->size, "%s: slot %d (%p, size %zu) corrupted at offset %zu", when, s,
           (void *)o->p, o->size, bad);
}

// ---------------------------------------------------------------------------
// Decoding sizes and alignments

static size_t pick_size(fz_in_t *in) {
  unsigned v = fz_u16(in), lo = v & 0xfff;
  switch (v >> 12) {
  case 0:
  case 1:
  case 2:
    return lo % 48; // tiny, zero included
  case 3:
  case 4:
  case 5:
  case 6: { // each class size, -1, 0, +1
    unsigned c = 1 + lo % (GM_NUM_CLASSES - 1);
    return class_size[c] + (lo / (GM_NUM_CLASSES - 1)) % 3 - 1;
  }
  case 7:
  case 8:
    return lo % 1025;
  case 9:
  case 10:
    return (size_t)lo * 8 + fz_u8(in) % 8; // up to 32 KiB
  case 11:
  case 12:
    return 32768 + (size_t)lo * 16; // large, up to 96 KiB
  case 13:
    return 32768 + (size_t)lo * 64 + fz_u8(in); // up to 288 KiB
  case 14:
    return lo; // up to 4 KiB
  default:
    return (lo & 63) == 0 ? ((size_t)1 << 20) + (size_t)lo * 768 // rarely, up to 4 MiB
                          : 32768 + (size_t)lo * 8;
  }
}

// pick_align: powers of two up to 128 KiB, sometimes a bad one (0, not a power
// of two).
static size_t pick_align(fz_in_t *in) {
  static const size_t odd[] = {0, 3, 12, 24, 48, 100, 1000, 3000, 5000, 40000};
  unsigned v = fz_u8(in);
  if (v >= 216 && v < 236)
    return odd[v % FZ_ARRAY_LEN(odd)];
  return (size_t)1 << (v % 18);
}

// pick_huge: a request no heap can satisfy (>= 2^47 bytes; with
// GOMEM_FUZZ_HUGE also 1 TiB, which gomem grants: see README.md).
static size_t pick_huge(fz_in_t *in) {
  unsigned v = fz_u16(in);
  size_t x = (size_t)(v >> 4) * 4096;
  switch (v & 7) {
  case 0:
    return SIZE_MAX - (v >> 4);
  case 1:
    return SIZE_MAX - x;
  case 2:
    return (size_t)PTRDIFF_MAX + 1 + x;
  case 3:
    return (size_t)PTRDIFF_MAX - x;
  case 4:
    return ((size_t)1 << 62) + x;
  case 5:
    return ((size_t)1 << 48) - x;
  case 6:
    return ((size_t)1 << 47) + x;
  default:
    return huge_sizes ? ((size_t)1 << 40) + x : ((size_t)1 << 47) + (v >> 4);
  }
}

static size_t next_pow2(size_t a) {
  size_t p = 1;
  while (p < a)
    p <<= 1;
  return p;
}

// ---------------------------------------------------------------------------
// The model

// adopt records a new object in slot s (empty) and fills it.
static void adopt(int s, void *p, size_t size, size_t align, const char *what) {
  if (p == NULL && size == 0)
    return; // C allows NULL for 0 bytes
  FZ_CHECK(p != NULL, "%s(size %zu, align %zu) returned NULL (errno %d)", what, size, align, errno);
  uintptr_t a = (uintptr_t)p;
  size_t usable = gm_usable_size(p);
  FZ_CHECK(usable >= size, "%s: usable size %zu < requested %zu at %p", what, usable, size, p);
  FZ_CHECK(a % 8 == 0 && (usable % 16 != 0 || a % 16 == 0),
           "%s: %p (usable %zu) not 8/16-byte aligned", what, p, usable);
  FZ_CHECK(align <= 1 || a % align == 0, "%s: %p not aligned to %zu", what, p, align);
  FZ_CHECK(gm_owns(p) && (usable == 0 || gm_owns((char *)p + usable - 1)), "%s: gm_owns(%p) is false",
           what, p);
  slots[s] = (slot_t){.p = p, .size = size, .usable = usable, .seed = ++seed_counter};
  fill(slots[s].p, 0, size, slots[s].seed);
}

static void release_slot(int s) {
  check_slot(s, "before free");
  gm_free(slots[s].p);
  slots[s].p = NULL;
}

// ---------------------------------------------------------------------------
// Cross-thread frees: a worker thread (started by fuzz_setup) frees what this
// thread queues.

#define XQ_CAP 64

typedef struct xitem {
  unsigned char *p;
  size_t size;
  uint64_t seed;
} xitem_t;

static struct {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  xitem_t q[XQ_CAP];
  unsigned long pushed, popped, done;
} xq = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void *xfree_worker(void *arg) {
  (void)arg;
  for (;;) {
    pthread_mutex_lock(&xq.lock);
    while (xq.popped == xq.pushed)
      pthread_cond_wait(&xq.cond, &xq.lock);
    xitem_t it = xq.q[xq.popped++ % XQ_CAP];
    pthread_mutex_unlock(&xq.lock);
    size_t bad = first_bad(it.p, 0, it.size, it.seed);
    FZ_CHECK(bad == it.size, "cross-thread free: %p (size %zu) corrupted at offset %zu",
             (void *)it.p, it.size, bad);
    gm_free(it.p);
    pthread_mutex_lock(&xq.lock);
    xq.done++;
    pthread_cond_broadcast(&xq.cond);
    pthread_mutex_unlock(&xq.lock);
  }
  return NULL;
}

static void xq_push(int s) {
  check_slot(s, "before a cross-thread free");
  pthread_mutex_lock(&xq.lock);
  while (xq.pushed - xq.done >= XQ_CAP)
    pthread_cond_wait(&xq.cond, &xq.lock);
  xq.q[xq.pushed++ % XQ_CAP] = (xitem_t){slots[s].p, slots[s].size, slots[s].seed};
  pthread_cond_broadcast(&xq.cond);
  pthread_mutex_unlock(&xq.lock);
  slots[s].p = NULL;
}

// xq_drain waits until the worker has freed everything queued.
static void xq_drain(void) {
  pthread_mutex_lock(&xq.lock);
  while (xq.done != xq.pushed)
    pthread_cond_wait(&xq.cond, &xq.lock);
  pthread_mutex_unlock(&xq.lock);
}

// ---------------------------------------------------------------------------
// Whole-heap checks

static void check_overlap(void) {
  fz_range_t r[NSLOTS];
  size_t n = 0;
  for (int s = 0; s < NSLOTS; s++)
    if (slots[s].p != NULL)
      r[n++] = (fz_range_t){(uintptr_t)slots[s].p, (uintptr_t)slots[s].p + slots[s].usable, s};
  long i = fz_find_overlap(r, n);
  FZ_CHECK(i < 0, "slots %d [%#lx, %#lx) and %d [%#lx, %#lx) overlap", i < 0 ? 0 : r[i].id,
           i < 0 ? 0ul : (unsigned long)r[i].lo, i < 0 ? 0ul : (unsigned long)r[i].hi,
           i < 0 ? 0 : r[i + 1].id, i < 0 ? 0ul : (unsigned long)r[i + 1].lo,
           i < 0 ? 0ul : (unsigned long)r[i + 1].hi);
}

// group_of returns the statistics group of an object of usable size u: its
// class, or 0 for large objects and for the classes whose size is a multiple
// of the page (a large object of 1-4 pages has the same usable size).
static int group_of(size_t u) {
  for (int c = 1; c < GM_NUM_CLASSES; c++)
    if (class_size[c] == u)
      return class_group[c];
  FZ_CHECK(u > class_size[GM_NUM_CLASSES - 1] && u % 8192 == 0,
           "usable size %zu is neither a class size nor whole pages", u);
  return 0;
}

// check_stats compares, per group of classes, mallocs - frees since the
// input started with the model's count of live objects.
static void check_stats(void) {
  xq_drain();
  if (GM_SECURE) // the hardened build's quarantine holds frees back; usable = requested
    return;
  long model[GM_NUM_CLASSES] = {0}, counted[GM_NUM_CLASSES] = {0};
  int nclasses[GM_NUM_CLASSES] = {0};
  for (int s = 0; s < NSLOTS; s++)
    if (slots[s].p != NULL)
      model[group_of(slots[s].usable)]++;
  gm_stats(&cur_stats);
  for (int c = 0; c < GM_NUM_CLASSES; c++) {
    const gm_class_stats_t *a = &base_stats.by_size[c], *b = &cur_stats.by_size[c];
    counted[class_group[c]] += (long)(b->mallocs - a->mallocs) - (long)(b->frees - a->frees);
    nclasses[class_group[c]] += c != 0;
    // (mallocs may go down: gm_release_memory takes back what caches reserved)
    FZ_CHECK(b->frees >= a->frees, "class %d: cumulative frees went down (%llu -> %llu)", c,
             (unsigned long long)a->frees, (unsigned long long)b->frees);
  }
  for (int g = 0; g < GM_NUM_CLASSES; g++) {
    long slack = (long)SLACK_PER_CLASS * nclasses[g];
    FZ_CHECK(counted[g] >= model[g] - slack && counted[g] <= model[g] + slack,
             "class group %d (size %zu): mallocs - frees moved by %ld, the model by %ld "
             "(slack %ld)",
             g, class_size[g], counted[g], model[g], slack);
  }
  uint64_t objects = 0;
  for (int c = 0; c < GM_NUM_CLASSES; c++)
    objects += cur_stats.by_size[c].mallocs - cur_stats.by_size[c].frees;
  FZ_CHECK(cur_stats.heap_objects == objects && cur_stats.mallocs >= cur_stats.frees,
           "heap_objects %llu, sum over classes %llu, mallocs %llu, frees %llu",
           (unsigned long long)cur_stats.heap_objects, (unsigned long long)objects,
           (unsigned long long)cur_stats.mallocs, (unsigned long long)cur_stats.frees);
}

static void check_all(void) {
  for (int s = 0; s < NSLOTS; s++)
    check_slot(s, "full check");
  check_overlap();
  check_stats();
}

// ---------------------------------------------------------------------------
// Operations

static void op_malloc(fz_in_t *in, int s) {
  size_t size = pick_size(in);
  adopt(s, gm_malloc(size), size, 1, "gm_malloc");
}

static void op_calloc(fz_in_t *in, int s) {
  size_t count = fz_u8(in) % 17, size = pick_size(in);
  if (count > 1)
    size /= count;
  unsigned char *p = gm_calloc(count, size);
  size_t n = count * size;
  FZ_CHECK(p != NULL, "gm_calloc(%zu, %zu) returned NULL", count, size);
  for (size_t i = 0; i < n; i++)
    FZ_CHECK(p[i] == 0, "gm_calloc(%zu, %zu) = %p: byte %zu is %#x", count, size, (void *)p, i,
             p[i]);
  adopt(s, p, n, 1, "gm_calloc");
}

// resized: the slot's object became p (size bytes) by realloc from old
// (old_size bytes, pattern seed): the prefix must be intact.
static void resized(int s, unsigned char *p, size_t size, const char *what) {
  slot_t o = slots[s];
  size_t keep = o.size < size ? o.size : size;
  FZ_CHECK(p != NULL, "%s(%p, %zu) returned NULL", what, (void *)o.p, size);
  size_t bad = first_bad(p, 0, keep, o.seed);
  FZ_CHECK(bad == keep, "%s(%p from %zu to %zu) = %p: prefix lost at offset %zu", what, (void *)o.p,
           o.size, size, (void *)p, bad);
  slots[s].p = NULL;
  adopt(s, p, 0, 1, what);
  slots[s].size = size;
  slots[s].seed = o.seed;
  fill(p, keep, size, o.seed);
}

static void op_realloc(fz_in_t *in, int s) {
  unsigned how = fz_u8(in);
  size_t size = how % 8 == 0 ? 0 : pick_size(in);
  if (slots[s].p == NULL) {
    adopt(s, gm_realloc(NULL, size), size, 1, "gm_realloc(NULL)");
    return;
  }
  check_slot(s, "before realloc");
  if (how % 8 == 1) { // shrink or grow by up to 16 bytes
    size_t d = (how >> 3) % 33;
    size = slots[s].size + d >= 16 ? slots[s].size + d - 16 : 0;
  }
  unsigned char *p = gm_realloc(slots[s].p, size);
  if (size == 0 && p == NULL) { // freed (glibc's realloc(p, 0))
    slots[s].p = NULL;
    return;
  }
  resized(s, p, size, "gm_realloc");
}

static void op_reallocarray(fz_in_t *in, int s) {
  size_t count = 1 + fz_u8(in) % 16, size = pick_size(in) / count;
  if (slots[s].p == NULL) {
    adopt(s, gm_reallocarray(NULL, count, size), count * size, 1, "gm_reallocarray(NULL)");
    return;
  }
  check_slot(s, "before reallocarray");
  unsigned char *p = gm_reallocarray(slots[s].p, count, size);
  if (count * size == 0 && p == NULL) {
    slots[s].p = NULL;
    return;
  }
  resized(s, p, count * size, "gm_reallocarray");
}

static void op_posix_memalign(fz_in_t *in, int s) {
  size_t align = pick_align(in), size = pick_size(in);
  void *sentinel = &global_probe, *p = sentinel;
  errno = 1234;
  int rc = gm_posix_memalign(&p, align, size);
  if (align < sizeof(void *) || (align & (align - 1)) != 0) {
    FZ_CHECK(rc == EINVAL && p == sentinel, "gm_posix_memalign(align %zu) = %d, %p", align, rc, p);
    return;
  }
  FZ_CHECK(rc == 0 && errno == 1234, "gm_posix_memalign(align %zu, size %zu) = %d, errno %d", align,
           size, rc, errno);
  adopt(s, p, size, align, "gm_posix_memalign");
}

static void op_aligned_alloc(fz_in_t *in, int s) {
  size_t align = pick_align(in), size = pick_size(in);
  errno = 0;
  void *p = gm_aligned_alloc(align, size);
  if (align == 0 || (align & (align - 1)) != 0) {
    FZ_CHECK(p == NULL && errno == EINVAL, "gm_aligned_alloc(align %zu) = %p, errno %d", align, p,
             errno);
    return;
  }
  adopt(s, p, size, align, "gm_aligned_alloc");
}

static void op_memalign(fz_in_t *in, int s) {
  size_t align = pick_align(in), size = pick_size(in);
  adopt(s, gm_memalign(align, size), size, next_pow2(align), "gm_memalign");
}

static void op_usable(int s) {
  slot_t *o = &slots[s];
  check_slot(s, "before usable_size");
  size_t u = gm_usable_size(o->p);
  FZ_CHECK(u >= o->size && u == o->usable, "gm_usable_size(%p) = %zu; size %zu, was %zu",
           (void *)o->p, u, o->size, o->usable);
  if (u <= MAX_MODEL_SIZE) { // use all of it, as malloc_usable_size allows
    fill(o->p, o->size, u, o->seed);
    o->size = u;
  }
}

static void op_owns(fz_in_t *in, int s) {
  char local[32];
  memset(local, 0, sizeof local);
  FZ_CHECK(!gm_owns(local) && !gm_owns(global_probe) && !gm_owns(NULL),
           "gm_owns is true for a stack, global or NULL address");
  if (slots[s].p == NULL)
    return;
  size_t off = slots[s].usable ? fz_u16(in) % slots[s].usable : 0; // (hardened: malloc(0) has 0)
  FZ_CHECK(gm_owns(slots[s].p + off), "gm_owns(%p + %zu) is false (usable %zu)", (void *)slots[s].p,
           off, slots[s].usable);
}

// op_oversize: requests that must fail with ENOMEM and change nothing.
static void op_oversize(fz_in_t *in, int s) {
  unsigned what = fz_u8(in) % 8;
  size_t huge = pick_huge(in), align = (size_t)1 << (fz_u8(in) % 14);
  size_t count = ((size_t)fz_u8(in) | 2) << (fz_u8(in) % 56);
  size_t over = SIZE_MAX / count + 1 + fz_u8(in); // count * over overflows
  void *p = (void *)1, *old = slots[s].p, *out = &global_probe;
  int rc = ENOMEM;
  errno = 0;
  switch (what) {
  case 0:
    p = gm_malloc(huge);
    break;
  case 1:
    p = gm_calloc(count, over);
    break;
  case 2:
    p = gm_calloc(over, count);
    break;
  case 3:
    p = gm_realloc(old, huge);
    break;
  case 4:
    p = gm_reallocarray(old, count, over);
    break;
  case 5:
    rc = gm_posix_memalign(&out, align < 8 ? 8 : align, huge);
    p = NULL;
    break;
  case 6:
    p = gm_aligned_alloc(align, huge);
    break;
  default:
    p = gm_memalign(align, huge);
    break;
  }
  FZ_CHECK(p == NULL && (what == 5 ? rc == ENOMEM && out == &global_probe : errno == ENOMEM),
           "oversize request %u (size %zu, count %zu x %zu, align %zu) gave %p, rc %d, errno %d",
           what, huge, count, over, align, p, rc, errno);
  check_slot(s, "after a failed oversize request");
}

enum {
  OP_MALLOC,
  OP_CALLOC,
  OP_REALLOC,
  OP_REALLOCARRAY,
  OP_POSIX_MEMALIGN,
  OP_ALIGNED_ALLOC,
  OP_MEMALIGN,
  OP_FREE,
  OP_USABLE,
  OP_OWNS,
  OP_XFREE,
  OP_OVERSIZE,
  OP_REFILL,
  OP_CHECK
};

// 32 entries: the opcode byte's low 5 bits pick one (weights by repetition).
static const uint8_t op_table[32] = {
    OP_MALLOC,         OP_MALLOC,         OP_MALLOC,        OP_MALLOC,       OP_MALLOC,
    OP_MALLOC,         OP_CALLOC,         OP_CALLOC,        OP_REALLOC,      OP_REALLOC,
    OP_REALLOC,        OP_REALLOC,        OP_REALLOC,       OP_REALLOCARRAY, OP_REALLOCARRAY,
    OP_POSIX_MEMALIGN, OP_POSIX_MEMALIGN, OP_ALIGNED_ALLOC, OP_MEMALIGN,     OP_MEMALIGN,
    OP_FREE,           OP_FREE,           OP_FREE,          OP_FREE,         OP_FREE,
    OP_USABLE,         OP_OWNS,           OP_XFREE,         OP_XFREE,        OP_OVERSIZE,
    OP_REFILL,         OP_CHECK};

static int trace; // GOMEM_FUZZ_TRACE=1: print each operation

static void run_op(fz_in_t *in, int cross_thread) {
  unsigned op = op_table[fz_u8(in) % 32];
  int s = (int)(fz_u8(in) % NSLOTS);
  if (trace)
    fprintf(stderr, "op %u slot %d (%p, size %zu)\n", op, s, (void *)slots[s].p, slots[s].size);
  int allocates = op <= OP_MEMALIGN && op != OP_REALLOC && op != OP_REALLOCARRAY;
  if (allocates && slots[s].p != NULL)
    release_slot(s);
  switch (op) {
  case OP_MALLOC:
    op_malloc(in, s);
    break;
  case OP_CALLOC:
    op_calloc(in, s);
    break;
  case OP_REALLOC:
    op_realloc(in, s);
    break;
  case OP_REALLOCARRAY:
    op_reallocarray(in, s);
    break;
  case OP_POSIX_MEMALIGN:
    op_posix_memalign(in, s);
    break;
  case OP_ALIGNED_ALLOC:
    op_aligned_alloc(in, s);
    break;
  case OP_MEMALIGN:
    op_memalign(in, s);
    break;
  case OP_FREE:
    if (slots[s].p != NULL)
      release_slot(s);
    else
      gm_free(NULL);
    break;
  case OP_USABLE:
    if (slots[s].p != NULL)
      op_usable(s);
    else
      FZ_CHECK(gm_usable_size(NULL) == 0, "gm_usable_size(NULL) != 0");
    break;
  case OP_OWNS:
    op_owns(in, s);
    break;
  case OP_XFREE:
    if (slots[s].p != NULL && cross_thread)
      xq_push(s);
    break;
  case OP_OVERSIZE:
    op_oversize(in, s);
    break;
  case OP_REFILL:
    if (slots[s].p != NULL) {
      check_slot(s, "before refill");
      slots[s].seed = ++seed_counter;
      fill(slots[s].p, 0, slots[s].size, slots[s].seed);
    }
    break;
  default:
    if (fz_u8(in) < 16)
      gm_release_memory();
    check_all();
    break;
  }
}

static void fuzz_setup(void) {
  gm_stats_t st;
  gm_stats(&st);
  for (int c = 0; c < GM_NUM_CLASSES; c++) {
    class_size[c] = st.by_size[c].size;
    class_group[c] = c != 0 && class_size[c] % 8192 == 0 ? 0 : c;
  }
  huge_sizes = fz_env_flag("GOMEM_FUZZ_HUGE", 0);
  // The worker starts before any input: what its start allocates (thread
  // records, its cache's first reservations) stays out of the statistics
  // the inputs compare.
  pthread_t t;
  FZ_CHECK(pthread_create(&t, NULL, xfree_worker, NULL) == 0, "cannot start the worker");
  pthread_detach(t);
  slots[0] = (slot_t){.p = gm_malloc(1), .size = 0}; // a round trip: the worker is up
  xq_push(0);
  xq_drain();
  trace = fz_env_flag("GOMEM_FUZZ_TRACE", 0);
}

static void fuzz_one(const uint8_t *data, size_t size) {
  fz_in_t in = {data, size, 0};
  unsigned opts = fz_u8(&in);
  int cross_thread = opts & 1;
  unsigned period = 32u << ((opts >> 1) & 3);
  xq_drain();
  gm_stats(&base_stats);
  for (unsigned n = 1; fz_more(&in); n++) {
    run_op(&in, cross_thread);
    if (n % period == 0)
      check_all();
  }
  check_all();
  for (int s = 0; s < NSLOTS; s++)
    if (slots[s].p != NULL)
      release_slot(s);
  check_stats(); // everything freed: back to where the input started
}
