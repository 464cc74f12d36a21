// coro.c: coroutines on gomem's stacks (see coro.h and gomem.h's contract).
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "coro.h"
#include "dlist.h"
#include "gomem.h"
#include "internal.h"
#include "mallocint.h"
#include "os.h"
#include "stack.h"
#include "vec.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define CO_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define CO_TSAN 1
#endif
#ifdef GM_VALGRIND
#include <valgrind/valgrind.h>
#endif

#if !defined(__x86_64__)
#error "coroutines: the context switch is written for x86_64"
#endif

// NORMAL: it resumed another; FREED: destroyed (its record stays readable
// while the slot is cached, so a stale handle gets a message, not a jump).
enum { CO_SUSPENDED, CO_RUNNING, CO_NORMAL, CO_DEAD, CO_FREED };

struct gm_co {
  uintptr_t sp;           // saved stack pointer while not running
  uintptr_t lo;           // its stack slot
  int cls;                // the slot's class
  int state;              // CO_* (owner thread)
  bool ran;               // resumed since its thread's last shrink pass (owner)
  uint64_t seen;          // co_epoch at its last resume (owner)
  void (*fn)(void *);     // what it runs, and its argument
  void *arg;              // (scanned with the stack: the record is in the slot)
  gm_co_t *resumer;       // who resumed it (NULL: its thread's own stack)
  pid_t owner;            // the thread it is pinned to
  uint64_t id;            // for messages
  size_t resident;        // bytes of its stack resident when last measured
  gm_co_t *next, *prev;   // the registry (co_lock)
  gm_co_t *tnext, *tprev; // its thread's list (owner)
#ifdef CO_ASAN
  void *fake;                 // ASan's fake stack while it is switched away
  const void *from_lo;        // the stack that resumed it
  size_t from_size;
#endif
#ifdef CO_TSAN
  void *fiber, *from_fiber;
#endif
#ifdef GM_VALGRIND
  unsigned vg_id;
#endif
};

typedef struct co_thread co_thread_t;
struct co_thread {
  co_thread_t *next, *prev; // co_threads (co_lock)
  gm_co_t *current; // the coroutine running (NULL: the thread's own stack)
  uintptr_t sp;     // the thread's own stack pointer while a coroutine runs
  gm_co_t *list;    // its coroutines
  gm_co_t *cursor;  // the shrink pass's next coroutine
  uint64_t epoch;   // the cycle whose shrink pass it finished
  bool shrinking;   // a pass is under way
  bool setup;       // tid, key, alternate signal stack
  pid_t tid;
  void *altstack; // the alternate signal stack gomem gave it, or NULL
#ifdef CO_ASAN
  void *fake;
#endif
};

static __thread co_thread_t cot;
static gm_mutex_t co_lock = GM_MUTEX_INIT(RANK_CORO);
static gm_co_t *registry; // every coroutine not destroyed (co_lock)
static uint64_t next_id;  // co_lock
// co_epoch: bumped by the collector (under its cycle lock) at the first stop
// of a concurrent cycle (odd while its marking runs) and after every cycle
// (even). A thread's shrink pass follows the even ones.
static _Atomic uint64_t co_count, co_committed, co_shrinks, co_epoch;
// Concurrent cycles (design.md §18): coro_scan reads every stack beside the
// program; the last stop rescans the dirty ones only: active at the first
// stop (running, or resuming another), resumed since, or created since.
static co_thread_t *co_threads;              // every thread's record (co_lock)
static vec_t co_dirty = VEC_INIT(gm_co_t *); // this cycle's dirty coroutines (co_lock)
static bool co_dirty_lost;                   // a push found no memory: rescan all (co_lock)
static gm_co_t *scan_cursor;                 // coro_scan's next (co_lock)
static pthread_key_t co_key;
static pthread_once_t co_once = PTHREAD_ONCE_INIT;
static struct sigaction old_segv, old_bus;

#define ALTSTACK_BYTES ((size_t)64 << 10)
#define SHRINK_KEEP (4096 + 128) // kept below a suspended stack pointer
#define SHRINK_BATCH 8           // coroutines checked per resume during a pass

// ---------------------------------------------------------------------------
// The switch: 14 instructions. gm_co_switch_asm(save, to, value) pushes the
// callee-saved registers, stores the stack pointer at *save, loads `to`,
// pops the registers saved there and returns value into that context.
// A new coroutine's stack holds a frame that "returns" into gm_co_entry_asm
// with r12 = the coroutine; its CFI ends the unwinder's walk there.

void *gm_co_switch_asm(uintptr_t *save, uintptr_t to, void *value);
void gm_co_entry_asm(void);
__attribute__((noreturn, used)) void gm_co_main(gm_co_t *co);

__asm__(".text\n"
        ".globl gm_co_switch_asm\n"
        ".hidden gm_co_switch_asm\n"
        ".type gm_co_switch_asm,@function\n"
        "gm_co_switch_asm:\n"
        "  pushq %rbp\n"
        "  pushq %rbx\n"
        "  pushq %r12\n"
        "  pushq %r13\n"
        "  pushq %r14\n"
        "  pushq %r15\n"
        "  movq %rsp, (%rdi)\n"
        "  movq %rsi, %rsp\n"
        "  popq %r15\n"
        "  popq %r14\n"
        "  popq %r13\n"
        "  popq %r12\n"
        "  popq %rbx\n"
        "  popq %rbp\n"
        "  popq %rcx\n"
        "  movq %rdx, %rax\n"
        "  jmp *%rcx\n"
        ".size gm_co_switch_asm, .-gm_co_switch_asm\n"
        ".globl gm_co_entry_asm\n"
        ".hidden gm_co_entry_asm\n"
        ".type gm_co_entry_asm,@function\n"
        "gm_co_entry_asm:\n"
        "  .cfi_startproc\n"
        "  .cfi_undefined rip\n"
        "  movq %r12, %rdi\n"
        "  call gm_co_main\n"
        "  ud2\n"
        "  .cfi_endproc\n"
        ".size gm_co_entry_asm, .-gm_co_entry_asm\n");

// ---------------------------------------------------------------------------
// Sanitizers: each coroutine is a fiber to TSan, a stack to ASan and
// Valgrind. `to_lo`/`to_size` is the stack being switched to.

static inline void san_leave(gm_co_t *co, void **fake, const void *to_lo, size_t to_size,
                             bool dying) {
  (void)co, (void)fake, (void)to_lo, (void)to_size, (void)dying;
#ifdef CO_ASAN
  __sanitizer_start_switch_fiber(dying ? NULL : fake, to_lo, to_size);
#endif
}

static inline void san_arrive(gm_co_t *co, void *fake) {
  (void)co, (void)fake;
#ifdef CO_ASAN
  if (co != NULL)
    __sanitizer_finish_switch_fiber(fake, &co->from_lo, &co->from_size);
  else
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
}

static inline uintptr_t slot_top(const gm_co_t *co) {
  return co->lo + stack_class_size(co->cls);
}

// ---------------------------------------------------------------------------
// Threads: the key whose destructor returns a thread's cached slots and its
// alternate signal stack; the overflow handler (on that stack).

static void co_thread_exit(void *v) {
  co_thread_t *t = v;
  gm_lock(&co_lock);
  DLIST_REMOVE(&co_threads, t);
  gm_unlock(&co_lock);
  stack_thread_exit();
  if (t->altstack != NULL) {
    stack_t ss = {.ss_flags = SS_DISABLE};
    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0 && cur.ss_sp == t->altstack && sigaltstack(&ss, NULL) == 0)
      os_unmap(t->altstack, ALTSTACK_BYTES);
    t->altstack = NULL;
  }
}

static void overflow_handler(int sig, siginfo_t *si, void *uc) {
  uintptr_t a = (uintptr_t)si->si_addr, lo;
  int c;
  if (stack_slot_of(a, &lo, &c) && a < lo + STACK_GUARD) {
    size_t size = stack_class_size(c);
    const gm_co_t *co = (const gm_co_t *)((lo + size - sizeof(gm_co_t)) & ~(uintptr_t)63);
    char buf[200];
    size_t n = gm_fmt(buf, sizeof buf,
                      "gomem: coroutine %llu overflowed its %zu KiB stack [%p, %p) at %p\n",
                      (unsigned long long)co->id, size >> 10, (void *)lo, (void *)(lo + size),
                      (void *)a);
    os_write_stderr(buf, n);
    abort();
  }
  struct sigaction *o = sig == SIGSEGV ? &old_segv : &old_bus;
  if ((o->sa_flags & SA_SIGINFO) && o->sa_sigaction != NULL) {
    o->sa_sigaction(sig, si, uc);
  } else if (o->sa_handler == SIG_DFL || o->sa_handler == SIG_IGN) {
    sigaction(sig, o, NULL); // the fault comes again, to the old action
  } else {
    o->sa_handler(sig);
  }
}

static void co_init(void) {
  lock_fork_register(&co_lock);
  stack_fork_init();
  if (pthread_key_create(&co_key, co_thread_exit) != 0)
    gm_fatal("coroutines: no thread-specific key left", NULL);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = overflow_handler;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &old_segv);
  sigaction(SIGBUS, &sa, &old_bus);
}

// thread_setup: the calling thread's first coroutine call. A thread with no
// alternate signal stack gets one: the overflow handler cannot run on the
// stack that overflowed, and the collector's stop signal then runs there
// too, so coroutine stacks need no headroom for signal frames.
static GM_NOINLINE void thread_setup(co_thread_t *t) {
  gm_ensure_init(); // (the options)
  pthread_once(&co_once, co_init);
  t->tid = os_gettid();
  t->epoch = relaxed_load(&co_epoch);
  stack_t cur;
  if (sigaltstack(NULL, &cur) == 0 && (cur.ss_flags & SS_DISABLE)) {
    void *p = os_reserve(ALTSTACK_BYTES, 0);
    stack_t ss = {.ss_sp = p, .ss_size = ALTSTACK_BYTES, .ss_flags = 0};
    if (p != NULL && sigaltstack(&ss, NULL) == 0)
      t->altstack = p;
    else if (p != NULL)
      os_unmap(p, ALTSTACK_BYTES);
  }
  pthread_setspecific(co_key, t);
  gm_lock(&co_lock);
  DLIST_PUSH(&co_threads, t);
  gm_unlock(&co_lock);
  t->setup = true;
}

// ---------------------------------------------------------------------------
// Shrinking (the owner thread, a few coroutines per resume after a cycle)

// shrink measures a suspended coroutine's resident stack and, if it uses
// less than a quarter of its slot (Go's rule), releases the pages touched
// below what it keeps (SHRINK_KEEP under its stack pointer). One mincore
// and at most one madvise per coroutine that ran since the last pass.
static void shrink(gm_co_t *co) {
  size_t size = stack_class_size(co->cls);
  uintptr_t usable = co->lo + STACK_GUARD, top = slot_top(co), lowest;
  uintptr_t keep = (co->sp - SHRINK_KEEP) & ~(uintptr_t)4095;
  size_t pages = os_resident(usable, top - usable, &lowest);
  if (top - co->sp < size / 4 && keep > usable && lowest < keep) {
    os_release(NULL, usable, keep - usable);
    pages = os_resident(keep, top - keep, &lowest);
    atomic_fetch_add_explicit(&co_shrinks, 1, memory_order_relaxed);
  }
  size_t now = pages * 4096;
  atomic_fetch_add_explicit(&co_committed, now - co->resident, memory_order_relaxed);
  co->resident = now;
}

static GM_NOINLINE void shrink_some(co_thread_t *t) {
  if (!t->shrinking) {
    t->shrinking = true;
    t->cursor = t->list;
  }
  for (int n = 0; n < SHRINK_BATCH && t->cursor != NULL; n++) {
    gm_co_t *co = t->cursor;
    t->cursor = co->tnext;
    if (co->ran && co->state == CO_SUSPENDED)
      shrink(co);
    co->ran = false;
  }
  if (t->cursor == NULL) {
    t->shrinking = false;
    t->epoch = relaxed_load(&co_epoch);
  }
}

void coro_cycle_done(void) {
  relaxed_store(&co_epoch, (relaxed_load(&co_epoch) | 1) + 1);
}

// dirty_locked: co's stack is rescanned at this cycle's last stop. co_lock
// held, or the world stopped.
static void dirty_locked(gm_co_t *co) {
  gm_co_t **d = vec_push(&co_dirty);
  if (d != NULL)
    *d = co;
  else
    co_dirty_lost = true;
}

// resume_seen (the owner, at co's first resume of an epoch): a resume while
// marking runs makes co dirty; after a cycle, the thread's shrink pass
// advances (a batch per coroutine resumed for the first time since).
static GM_NOINLINE void resume_seen(co_thread_t *t, gm_co_t *co, uint64_t e) {
  co->seen = e;
  if (e & 1) {
    gm_lock(&co_lock);
    dirty_locked(co);
    gm_unlock(&co_lock);
  } else if (t->epoch != e) {
    shrink_some(t);
  }
}

// ---------------------------------------------------------------------------
// The API

GM_EXPORT gm_co_t *gm_co_create(void (*fn)(void *arg), void *arg, size_t stack_size) {
  int c = stack_class_for(stack_size);
  if (fn == NULL || c < 0) {
    errno = EINVAL;
    return NULL;
  }
  co_thread_t *t = &cot;
  if (unlikely(!t->setup))
    thread_setup(t);
  uintptr_t lo = stack_alloc(c);
  if (lo == 0)
    return NULL;
  uintptr_t top = lo + stack_class_size(c);
  gm_co_t *co = (gm_co_t *)((top - sizeof(gm_co_t)) & ~(uintptr_t)63);
  memset(co, 0, sizeof *co);
  co->lo = lo;
  co->cls = c;
  co->fn = fn;
  co->arg = arg;
  co->owner = t->tid;
  co->state = CO_SUSPENDED;
  // The first frame: six registers (r12 = co), the return into
  // gm_co_entry_asm, and padding that leaves the stack 16-byte aligned at
  // its call.
  uintptr_t *f = (uintptr_t *)(((uintptr_t)co & ~(uintptr_t)15) - 72);
  memset(f, 0, 72);
  f[3] = (uintptr_t)co;
  f[6] = (uintptr_t)gm_co_entry_asm;
  co->sp = (uintptr_t)f;
  co->resident = 4096; // the top page: this record and the first frame
#ifdef CO_TSAN
  co->fiber = __tsan_create_fiber(0);
#endif
#ifdef GM_VALGRIND
  co->vg_id = VALGRIND_STACK_REGISTER(lo + STACK_GUARD, top);
#endif
  co->tnext = t->list;
  if (t->list != NULL)
    t->list->tprev = co;
  t->list = co;
  gm_lock(&co_lock);
  co->seen = relaxed_load(&co_epoch);
  if (co->seen & 1) // (made while marking runs: its record holds fn and arg)
    dirty_locked(co);
  co->id = ++next_id;
  DLIST_PUSH(&registry, co);
  gm_unlock(&co_lock);
  atomic_fetch_add_explicit(&co_count, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&co_committed, co->resident, memory_order_relaxed);
  return co;
}

// back_to_resumer: what the resumer of co would do once co has left.
static inline uintptr_t back_to_resumer(co_thread_t *t, gm_co_t *co) {
  gm_co_t *to = co->resumer;
  t->current = to;
  if (to == NULL)
    return t->sp;
  to->state = CO_RUNNING;
  return to->sp;
}

void gm_co_main(gm_co_t *co) {
  san_arrive(co, NULL);
  co->fn(co->arg);
  co->state = CO_DEAD;
  uintptr_t to_sp = back_to_resumer(&cot, co);
#ifdef CO_ASAN
  san_leave(co, NULL, co->from_lo, co->from_size, true);
#endif
#ifdef CO_TSAN
  __tsan_switch_to_fiber(co->from_fiber, 0);
#endif
  uintptr_t dead;
  gm_co_switch_asm(&dead, to_sp, NULL);
  __builtin_unreachable();
}

static GM_NOINLINE GM_COLD void misuse(const char *what, const gm_co_t *co) {
  gm_fatal(what, co);
}

// gm_co_resume and gm_co_yield end in a tail jump to the switch, which
// "returns" straight to the other side's caller: no return executes on a
// stack other than the one its call was made on, so the processor's return
// predictor stays right (a return after the switch mispredicted twice per
// round trip: 24 ns against 11). What the other side would do after the
// switch is done before it instead: the resumer's state and the thread's
// current coroutine are set by whoever switches to them. Sanitizer builds
// must finish a switch on the side it arrives at, so they return normally.
#if defined(CO_ASAN) || defined(CO_TSAN)
#define CO_SANITIZED 1
#endif

// resume_switch: gm_co_resume once its checks passed.
GM_INLINE void *resume_switch(co_thread_t *t, gm_co_t *co, void *value) {
  gm_co_t *from = t->current;
  uintptr_t *save = from != NULL ? &from->sp : &t->sp;
  if (from != NULL)
    from->state = CO_NORMAL;
  co->state = CO_RUNNING;
  co->ran = true;
  co->resumer = from;
  t->current = co;
#ifdef CO_SANITIZED
#ifdef CO_ASAN
  void **fake = from != NULL ? &from->fake : &t->fake;
  san_leave(from, fake, (void *)(co->lo + STACK_GUARD), stack_class_size(co->cls) - STACK_GUARD,
            false);
#endif
#ifdef CO_TSAN
  co->from_fiber = __tsan_get_current_fiber();
  __tsan_switch_to_fiber(co->fiber, 0);
#endif
  value = gm_co_switch_asm(save, co->sp, value);
#ifdef CO_ASAN
  san_arrive(NULL, *fake);
#endif
  return value;
#else
  return gm_co_switch_asm(save, co->sp, value);
#endif
}

// resume_slow: the thread's first coroutine call, misuse, or co's first
// resume of an epoch; then the switch.
static GM_NOINLINE void *resume_slow(gm_co_t *co, void *value) {
  co_thread_t *t = &cot;
  if (unlikely(!t->setup))
    thread_setup(t);
  if (unlikely(co->owner != t->tid))
    misuse("gm_co_resume: the coroutine belongs to another thread", co);
  if (unlikely(co->state != CO_SUSPENDED))
    misuse(co->state == CO_DEAD    ? "gm_co_resume: the coroutine has finished"
           : co->state == CO_FREED ? "gm_co_resume: the coroutine was destroyed"
                                   : "gm_co_resume: the coroutine is running",
           co);
  uint64_t e = relaxed_load(&co_epoch);
  if (co->seen != e)
    resume_seen(t, co, e);
  return resume_switch(t, co, value);
}

// gm_co_resume's fast path makes no call but the switch (no registers to
// save): 25 instructions by callgrind, 4 predictable branches. A thread not
// set up has tid 0, which no coroutine's owner is.
GM_EXPORT void *gm_co_resume(gm_co_t *co, void *value) {
  co_thread_t *t = &cot;
  if (unlikely(co->owner != t->tid || co->state != CO_SUSPENDED ||
               co->seen != relaxed_load(&co_epoch)))
    return resume_slow(co, value);
  return resume_switch(t, co, value);
}

GM_EXPORT void *gm_co_yield(void *value) {
  co_thread_t *t = &cot;
  gm_co_t *co = t->current;
  if (unlikely(co == NULL))
    misuse("gm_co_yield: not in a coroutine", NULL);
  co->state = CO_SUSPENDED;
  uintptr_t to_sp = back_to_resumer(t, co);
#ifdef CO_SANITIZED
#ifdef CO_ASAN
  san_leave(co, &co->fake, co->from_lo, co->from_size, false);
#endif
#ifdef CO_TSAN
  __tsan_switch_to_fiber(co->from_fiber, 0);
#endif
  value = gm_co_switch_asm(&co->sp, to_sp, value);
#ifdef CO_ASAN
  san_arrive(co, co->fake);
#endif
  return value;
#else
  return gm_co_switch_asm(&co->sp, to_sp, value);
#endif
}

GM_EXPORT bool gm_co_done(const gm_co_t *co) {
  return co->state == CO_DEAD;
}

GM_EXPORT gm_co_t *gm_co_self(void) {
  return cot.current;
}

GM_EXPORT void gm_co_destroy(gm_co_t *co) {
  if (co == NULL)
    return;
  co_thread_t *t = &cot;
  if (unlikely(!t->setup || co->owner != t->tid))
    misuse("gm_co_destroy: the coroutine belongs to another thread", co);
  if (unlikely(co->state == CO_RUNNING || co->state == CO_NORMAL))
    misuse("gm_co_destroy: the coroutine is running", co);
  if (unlikely(co->state == CO_FREED))
    misuse("gm_co_destroy: the coroutine was already destroyed", co);
  if (t->cursor == co)
    t->cursor = co->tnext;
  if (co->tprev != NULL)
    co->tprev->tnext = co->tnext;
  else
    t->list = co->tnext;
  if (co->tnext != NULL)
    co->tnext->tprev = co->tprev;
  gm_lock(&co_lock);
  if (scan_cursor == co)
    scan_cursor = co->next;
  DLIST_REMOVE(&registry, co);
  gm_unlock(&co_lock);
  atomic_fetch_sub_explicit(&co_count, 1, memory_order_relaxed);
  atomic_fetch_sub_explicit(&co_committed, co->resident, memory_order_relaxed);
#ifdef CO_TSAN
  __tsan_destroy_fiber(co->fiber);
#endif
#ifdef GM_VALGRIND
  VALGRIND_STACK_DEREGISTER(co->vg_id);
#endif
  uintptr_t lo = co->lo;
  int c = co->cls;
  co->state = CO_FREED;
#ifdef CO_ASAN
  ASAN_UNPOISON_MEMORY_REGION((void *)(lo + STACK_GUARD), stack_class_size(c) - STACK_GUARD);
#endif
  stack_free(lo, c);
}

// ---------------------------------------------------------------------------
// The collector's view

void coro_roots(coro_root_fn fn, void *ctx) {
  if ((relaxed_load(&co_epoch) & 1) && !co_dirty_lost) { // (the rest: coro_scan)
    for (size_t i = 0; i < co_dirty.n; i++) {
      gm_co_t *co = *(gm_co_t **)vec_at(&co_dirty, i);
      if (co->state != CO_DEAD && co->state != CO_FREED)
        fn(ctx, co->sp, slot_top(co));
    }
    return;
  }
  for (gm_co_t *co = registry; co != NULL; co = co->next)
    if (co->state != CO_DEAD)
      fn(ctx, co->sp, slot_top(co));
}

void coro_mark_begin(void) {
  relaxed_store(&co_epoch, relaxed_load(&co_epoch) + 1);
  co_dirty.n = 0;
  co_dirty_lost = false;
  scan_cursor = registry;
  for (co_thread_t *t = co_threads; t != NULL; t = t->next)
    for (gm_co_t *co = t->current; co != NULL; co = co->resumer)
      dirty_locked(co);
}

// coro_scan: every stack from the stack pointer it last saved, in batches
// copied under co_lock. A stack that changes meanwhile is a dirty
// coroutine's, rescanned at the last stop; a destroyed one's slot stays
// mapped (a stale range reads zeros or another stack: it keeps more alive).
void coro_scan(coro_root_fn fn, void *ctx) {
  uintptr_t r[2 * 128];
  size_t n;
  do {
    gm_lock(&co_lock);
    for (n = 0; scan_cursor != NULL && n < 128; scan_cursor = scan_cursor->next, n++) {
      r[2 * n] = scan_cursor->sp;
      r[2 * n + 1] = slot_top(scan_cursor);
    }
    gm_unlock(&co_lock);
    for (size_t i = 0; i < n; i++)
      fn(ctx, r[2 * i], r[2 * i + 1]);
  } while (n != 0);
}

void coro_trace(char *buf, size_t n) {
  uint64_t count, bytes, shrinks;
  coro_stats(&count, &bytes, &shrinks);
  buf[0] = 0;
  if (count != 0)
    gm_fmt(buf, n, ", %llu coroutines (%llu MB stacks, %llu shrinks)", (unsigned long long)count,
           (unsigned long long)(bytes >> 20), (unsigned long long)shrinks);
}

void coro_stats(uint64_t *count, uint64_t *stack_bytes, uint64_t *shrinks) {
  *count = relaxed_load(&co_count);
  *stack_bytes = relaxed_load(&co_committed);
  *shrinks = relaxed_load(&co_shrinks);
}
