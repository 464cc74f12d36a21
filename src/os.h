// os.h: the OS primitives (os_linux.c, and os_wtrack.c for write tracking),
// the only files that talk to the kernel about memory and threads; contracts
// at their tops.
//
// Locking: none.
#ifndef GOMEM_OS_H
#define GOMEM_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

void *os_reserve(size_t bytes, uintptr_t hint);       // PROT_READ|WRITE, NORESERVE
void *os_reserve_aligned(size_t bytes, size_t align); // NULL on failure
void os_unmap(void *p, size_t bytes);
// os_protect makes [p, p + bytes) readable and writable (access) or
// inaccessible; false if the kernel refused (hardened build only).
bool os_protect(void *p, size_t bytes, bool access);
void os_release(void *ctx, uintptr_t addr, size_t bytes); // MADV_DONTNEED
void os_hugepages(void *p, size_t bytes, bool on);        // MADV_(NO)HUGEPAGE
void os_populate(void *p, size_t bytes);                  // MADV_POPULATE_WRITE, a hint
// os_guard: 1 a guard marker (allow_marker), 0 an mprotect split
// (allow_split), -1 neither.
int os_guard(void *p, size_t bytes, bool allow_marker, bool allow_split);
size_t os_max_map_count(void);       // vm.max_map_count
// os_resident: resident 4 KiB pages of [lo, lo + bytes); *lowest = the lowest
// one's address (lo + bytes if none).
size_t os_resident(uintptr_t lo, size_t bytes, uintptr_t *lowest);
// os_readable_end: the end of the run of readable mappings that holds addr
// (from /proc/self/maps), or 0 if addr is not readable. No allocation.
uintptr_t os_readable_end(uintptr_t addr);
void os_write_stderr(const char *s, size_t n);
void gm_write_fd(int fd, const char *s, size_t n);
uint64_t os_nanotime(void); // CLOCK_MONOTONIC
// os_clock_ns: clock's time in ns (CLOCK_THREAD_CPUTIME_ID: the calling
// thread's CPU time; CLOCK_PROCESS_CPUTIME_ID: every thread's, a system call).
uint64_t os_clock_ns(clockid_t clock);
pid_t os_gettid(void);
// os_memory_limit: the largest mapping the kernel's overcommit policy would
// let a program back: RAM + swap (SIZE_MAX under vm.overcommit_memory = 1).
size_t os_memory_limit(void);
// os_next_symbol returns the definition of a C library function that gomem
// wraps, as the program would reach it without gomem: a sanitizer's
// interceptor when one is linked in (clang links its runtime into the
// program, where dlsym(RTLD_NEXT) from gomem does not look), else the next
// definition after gomem's. NULL if none. May allocate (dlsym).
void *os_next_symbol(const char *name);
// os_stack_near sets [*lo, *hi) to a region holding the calling thread's
// stack: a hint for cheap checks, not exact bounds.
void os_stack_near(uintptr_t *lo, uintptr_t *hi);
// os_thread_create starts one of gomem's own threads: detached, every
// signal blocked, gm_tls_m.internal set, with the C library's
// pthread_create (never the collector's wrapper). 0 or an error number.
// Its first call resolves pthread_create (dlsym: it waits for the dynamic
// linker's lock), so it must not be made with a gomem lock held;
// os_thread_create(NULL, NULL) only resolves.
int os_thread_create(void *(*fn)(void *), void *arg);

// Kernel write tracking (os_wtrack.c, contract there): the written pages of
// registered ranges, without signals (Linux 6.7+).
typedef void (*os_wtrack_fn)(void *ctx, uintptr_t lo, uintptr_t hi);
bool os_wtrack_init(const char **why);
void os_wtrack_fork_child(void);
bool os_wtrack_register(uintptr_t base, size_t bytes);
bool os_wtrack_arm(uintptr_t base, size_t bytes);
bool os_wtrack_disarm(uintptr_t base, size_t bytes);
ssize_t os_wtrack_fetch(uintptr_t base, size_t bytes, os_wtrack_fn fn, void *ctx);

#endif // GOMEM_OS_H
