// roots.h: where the collector's roots are (the sources of Go's markroot,
// for a C process): thread stacks, saved registers, alternate signal stacks,
// TLS (static and dynamic), the start blocks of threads being created, the
// writable segments of the program and its shared objects, and gm_add_roots
// ranges. gomem's own data is never a root (it holds heap addresses).
//
// Invariants:
//   - roots_threads and roots_data run with the world stopped (stw.h);
//   - roots_data_refresh runs with the world running, and a cycle scans data
//     roots only if roots_data_stale said no with the world stopped: no
//     object was loaded or unloaded, and none is being unloaded, since the
//     refresh (so every range reported is mapped and every mapped segment is
//     reported).
//
// Locking: extra_lock (RANK_EXTRA, gm_lock) around the gm_add_roots table.
// gm_remove_roots also takes gc_lock through mgc.h's gc_lock_cycle, so it
// never returns while a scan may read the range.
#ifndef GOMEM_ROOTS_H
#define GOMEM_ROOTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// root_fn receives one root range [lo, hi) (word-aligned inward by the callee).
typedef void (*root_fn)(void *ctx, uintptr_t lo, uintptr_t hi);

// What the dynamic linker tells at gc_init: gomem's own writable segments
// (never roots) and the size of the C library's thread descriptor.
#define MAX_EXCLUDED 8
typedef struct roots_info {
  uintptr_t excluded[MAX_EXCLUDED][2];
  int nexcluded;
  uintptr_t self_base;
  size_t desc_size;
} roots_info_t;
void roots_probe(roots_info_t *ri);      // no gomem lock may be held
void roots_init(const roots_info_t *ri); // once, at gc_init
// roots_threads reports every registered thread's stack from its saved stack
// pointer, its saved registers, its alternate signal stack when it parked on
// one, its TLS blocks off its stack, the start blocks of threads being
// created, and the caller's own stack from self_sp (where the caller spilled
// its registers), or from its own frame when self_sp is 0.
void roots_threads(root_fn fn, void *ctx, uintptr_t self_sp);
void roots_data_refresh(void);
bool roots_data_stale(void);
void roots_data(root_fn fn, void *ctx);
void roots_clear_extra(void); // every gm_add_roots range goes (after any running cycle)

#endif // GOMEM_ROOTS_H
