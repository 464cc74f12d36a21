// mprof_elf.c: function names for heap profiles, read from the symbol
// tables of the mapped files (mprof.c writes them into the profile, so that
// `go tool pprof` shows names for programs built without debug information,
// which its own symbolizer cannot name).
//
// For each executable mapping the file is mapped read-only, its .symtab (or,
// stripped, its .dynsym) is read, and its function symbols are sorted by
// address (a heap sort: no malloc here, gomem may be the malloc). A pc is
// named by the symbol that contains it, its load bias taken from the
// PT_LOAD segment the mapping's file offset falls in. Everything is in OS
// memory, released by elf_forget.
//
// Locking: none; mprof.c calls it under dump_lock.
#include <elf.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mprof.h"
#include "os.h"

typedef struct sym {
  uintptr_t lo, hi; // [lo, hi) in the file's addresses
  const char *name;
} sym_t;

typedef struct elf_file {
  const uint8_t *map; // the file, mapped
  size_t len;
  sym_t *syms;
  size_t nsyms, syms_cap;
  uintptr_t bias; // runtime address - file address
} elf_file_t;

#define MAX_FILES 1024
static elf_file_t files[MAX_FILES];
static int nfiles;

static void sift(sym_t *a, size_t i, size_t n) {
  for (;;) {
    size_t l = 2 * i + 1, m = i;
    if (l < n && a[l].lo > a[m].lo)
      m = l;
    if (l + 1 < n && a[l + 1].lo > a[m].lo)
      m = l + 1;
    if (m == i)
      return;
    sym_t t = a[i];
    a[i] = a[m];
    a[m] = t;
    i = m;
  }
}
static void heap_sort(sym_t *a, size_t n) {
  for (size_t i = n / 2; i-- > 0;)
    sift(a, i, n);
  for (size_t k = n; k-- > 1;) {
    sym_t t = a[0];
    a[0] = a[k];
    a[k] = t;
    sift(a, 0, k);
  }
}

// read_syms fills f's symbols from its symbol table of type type; false if
// it has none.
static bool read_syms(elf_file_t *f, const Elf64_Ehdr *eh, uint32_t type) {
  const Elf64_Shdr *sh = (const Elf64_Shdr *)(f->map + eh->e_shoff);
  for (int i = 0; i < eh->e_shnum; i++) {
    if (sh[i].sh_type != type || sh[i].sh_link >= eh->e_shnum ||
        sh[i].sh_offset + sh[i].sh_size > f->len)
      continue;
    const Elf64_Shdr *str = &sh[sh[i].sh_link];
    if (str->sh_offset + str->sh_size > f->len)
      continue;
    const Elf64_Sym *s = (const Elf64_Sym *)(f->map + sh[i].sh_offset);
    size_t n = sh[i].sh_size / sizeof *s;
    f->syms_cap = n;
    f->syms = os_reserve(n * sizeof *f->syms + 1, 0);
    if (f->syms == NULL)
      return false;
    for (size_t k = 0; k < n; k++) {
      int t = ELF64_ST_TYPE(s[k].st_info);
      if ((t != STT_FUNC && t != STT_GNU_IFUNC) || s[k].st_value == 0 ||
          s[k].st_name >= str->sh_size)
        continue;
      size_t size = s[k].st_size ? s[k].st_size : 1;
      f->syms[f->nsyms++] = (sym_t){s[k].st_value, s[k].st_value + size,
                                    (const char *)f->map + str->sh_offset + s[k].st_name};
    }
    heap_sort(f->syms, f->nsyms);
    return true;
  }
  return false;
}

// elf_open loads the symbols of path, mapped at lo from file offset off;
// returns its index, or -1.
int elf_open(const char *path, uintptr_t lo, uintptr_t off) {
  if (nfiles == MAX_FILES)
    return -1;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0)
    return -1;
  void *m = fstat(fd, &st) == 0 && st.st_size > (off_t)sizeof(Elf64_Ehdr)
                ? mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0)
                : MAP_FAILED;
  close(fd);
  if (m == MAP_FAILED)
    return -1;
  elf_file_t *f = &files[nfiles];
  *f = (elf_file_t){m, (size_t)st.st_size, NULL, 0, 0, 0};
  const Elf64_Ehdr *eh = m;
  if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
      eh->e_shoff + (size_t)eh->e_shnum * sizeof(Elf64_Shdr) > f->len ||
      eh->e_phoff + (size_t)eh->e_phnum * sizeof(Elf64_Phdr) > f->len) {
    munmap(m, f->len);
    return -1;
  }
  const Elf64_Phdr *ph = (const Elf64_Phdr *)(f->map + eh->e_phoff);
  for (int i = 0; i < eh->e_phnum; i++)
    if (ph[i].p_type == PT_LOAD && off >= (ph[i].p_offset & ~(uintptr_t)4095) &&
        off < ph[i].p_offset + ph[i].p_filesz)
      f->bias = eh->e_type == ET_DYN ? lo - (off - ph[i].p_offset + ph[i].p_vaddr) : 0;
  if (!read_syms(f, eh, SHT_SYMTAB))
    read_syms(f, eh, SHT_DYNSYM);
  return nfiles++;
}

// elf_name: the name of the function of file i that contains pc (a runtime
// address), and its symbol number in *sym; NULL if none.
const char *elf_name(int i, uintptr_t pc, size_t *sym) {
  if (i < 0 || i >= nfiles)
    return NULL;
  const elf_file_t *f = &files[i];
  uintptr_t a = pc - f->bias;
  size_t lo = 0, hi = f->nsyms; // the last symbol starting at or below a
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (f->syms[mid].lo <= a)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == 0 || a >= f->syms[lo - 1].hi)
    return NULL;
  *sym = lo - 1;
  return f->syms[lo - 1].name;
}

void elf_forget(void) {
  for (int i = 0; i < nfiles; i++) {
    munmap((void *)files[i].map, files[i].len);
    if (files[i].syms != NULL)
      os_unmap(files[i].syms, files[i].syms_cap * sizeof(sym_t) + 1);
  }
  nfiles = 0;
}
