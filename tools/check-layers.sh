#!/bin/sh
# check-layers.sh: gomem's layers, checked from the includes of src/.
#
#   0  gmcore bits sizeclasses              what every file may use
#   1  lock os dlist vec omap               critical sections, locks, the OS, tables
#   2  internal mpagealloc mpallocbits mfixalloc   geometry, options, pages, records
#   3  mspan                                spans, their windows and bitmaps
#   4  arena mheap mgcscavenge stack        the heap, the scavenger that trims it, stacks
#   5  mcentral                             central lists
#   6  mcache free mallocint mstats coro    the allocator's top: caches, free, malloc,
#                                           coroutines
#   7  threads stw roots interpose mgc mgcpacer mgcalloc mgcmark mgcwork
#      mwbbuf mgcsweep mfinal mcleanup pool
#                                           the collector
#   8  bdw bdw_alloc bdw_extra bdw_kinds    libgc.so.1: Boehm GC's interface
#
# A file may include only headers of its own layer or below, so no allocator
# file (layers 0-6) includes a collector header, and the heap's lower layers
# (0-5) know nothing of caches or malloc. Also: no source file over LIMIT
# lines, and every file opens with a comment. Prints the violations; exits 1
# if there are any.
set -eu
cd "$(dirname "$0")/../src"
LIMIT=620

layer() {
  case "$1" in
  gmcore | bits | sizeclasses) echo 0 ;;
  lock | os | os_linux | os_wtrack | dlist | vec | omap) echo 1 ;;
  internal | mpagealloc | mpallocbits | mfixalloc | options) echo 2 ;;
  mspan) echo 3 ;;
  arena | mheap | mgcscavenge | stack) echo 4 ;;
  mcentral) echo 5 ;;
  mcache | free | mallocint | malloc | mstats | coro | override | secure | secure_large | secure_api | mprof | mprof_elf) echo 6 ;;
  threads | stw | roots | interpose | mgc | mgcpacer | mgcalloc | mgcmark | mgcwork | mwbbuf | mgcsweep | mfinal | mcleanup | pool) echo 7 ;;
  bdw | bdw_alloc | bdw_extra | bdw_kinds) echo 8 ;;
  *) echo "" ;;
  esac
}

bad=0
for f in *.c *.h; do
  base=${f%.*}
  l=$(layer "$base")
  if [ -z "$l" ]; then
    echo "check-layers: $f has no layer (add it to tools/check-layers.sh)"
    bad=1
    continue
  fi
  for inc in $(sed -n 's/^#include "\([a-z_]*\)\.h"$/\1/p' "$f"); do
    [ "$inc" = gomem ] && continue # the public API
    li=$(layer "$inc")
    if [ -z "$li" ]; then
      echo "check-layers: $f includes $inc.h, which has no layer"
      bad=1
    elif [ "$li" -gt "$l" ]; then
      echo "check-layers: $f (layer $l) includes $inc.h (layer $li)"
      bad=1
    fi
  done
  n=$(wc -l <"$f")
  if [ "$n" -gt "$LIMIT" ] && [ "$f" != sizeclasses.h ]; then
    echo "check-layers: $f has $n lines (limit $LIMIT: split it)"
    bad=1
  fi
  if ! head -1 "$f" | grep -q '^//'; then
    echo "check-layers: $f does not open with its design comment"
    bad=1
  fi
done
[ "$bad" = 0 ] && echo "check-layers: every include goes down a layer, no file over $LIMIT lines"
exit "$bad"
