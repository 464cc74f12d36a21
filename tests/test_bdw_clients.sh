#!/bin/bash
# test_bdw_clients.sh LIBGC_SO: programs written for Boehm GC, run on gomem's
# libgc.so.1.
#
#   1. bdwgc 8.2.2's own test programs (huge_test, realloc_test, middle,
#      threadkey_test, initsecondarythread, subthread_create, gctest with
#      threads, fork and long links, staticrootstest), compiled against bdwgc's headers (BDWGC_SRC, default
#      ../shared/bdwgc-8.2.2 beside the repository; never part of it) and
#      linked against gomem's library: they test the binary interface. Each
#      must exit 0. Skipped when the sources are absent.
#   2. Debian's clients of libgc1 (w3m, poke, neko, ecl, guile, nix,
#      stalin and the program it compiles, programs crystal compiles with
#      fibers, single- and multi-threaded; installed by
#      tools/install-deps.sh test), unmodified binaries, with LD_LIBRARY_PATH
#      pointing at gomem's library: each must print exactly what it prints on
#      Debian's libgc.so.1, and gomem's library must really be the one loaded
#      (ldd) and must collect (GOMEM_GCTRACE lines). Skipped when absent.
# Exit 0 when every case that ran passed, 77 when none could run, 1 otherwise.
set -u
LIB=$(readlink -f "$1")
LIBDIR=$(dirname "$LIB")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${GOMEM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gomem}
BDWGC_DIR=${BDWGC_SRC:-$ROOT/../shared/bdwgc-8.2.2}
[ -d "$BDWGC_DIR/tests" ] || BDWGC_DIR=$CACHE/bdwgc-8.2.2 # (tools/install-deps.sh test)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
pass=0 fail=0 skip=0

say() { printf '%-60s %s\n' "$1" "$2"; }
ok() { say "$1" ok; pass=$((pass + 1)); }
bad() { say "$1" FAIL; echo "  $2"; fail=$((fail + 1)); }
skipped() { say "$1" "SKIP ($2)"; skip=$((skip + 1)); }

# --- 1. bdwgc's tests -------------------------------------------------------
bdw_cc() { # name, sources...: build against bdwgc's headers and our library
  local name=$1; shift
  gcc -O1 -DGC_THREADS -I"$BDWGC_DIR/include" -o "$WORK/$name" "$@" -L"$LIBDIR" -lgc -lpthread \
    -Wl,-rpath,"$LIBDIR" -w >"$WORK/$name.cc" 2>&1
}
if [ -d "$BDWGC_DIR/tests" ]; then
  have_aops=1
  echo '#include <atomic_ops.h>' | gcc -E -x c - >/dev/null 2>&1 || have_aops=0
  for t in huge_test realloc_test middle threadkey_test initsecondarythread subthread_create; do
    if [ $t = subthread_create ] && [ $have_aops = 0 ]; then
      skipped "bdwgc $t" "no atomic_ops.h (libatomic-ops-dev)"
      continue
    fi
    if ! bdw_cc $t "$BDWGC_DIR/tests/$t.c"; then
      bad "bdwgc $t" "does not build: $(grep -m3 -E 'error|undefined' "$WORK/$t.cc" | tr '\n' ' ')"
      continue
    fi
    if timeout 120 "$WORK/$t" >"$WORK/$t.out" 2>&1; then ok "bdwgc $t"
    else bad "bdwgc $t" "exit $?: $(tail -c 300 "$WORK/$t.out" | tr '\n' ' ')"; fi
  done
  # gctest (tests/test.c): threads, finalization, disappearing and long
  # links, typed objects, fork, sizes, setters and getters, heap bounds.
  if [ $have_aops = 0 ]; then
    skipped "bdwgc gctest" "no atomic_ops.h (libatomic-ops-dev)"
  elif ! bdw_cc gctest "$BDWGC_DIR/tests/test.c"; then
    bad "bdwgc gctest" "does not build: $(grep -m3 -E 'error|undefined' "$WORK/gctest.cc" | tr '\n' ' ')"
  elif timeout "${BDW_GCTEST_TIMEOUT:-300}" "$WORK/gctest" >"$WORK/gctest.out" 2>&1 &&
    grep -q "Collector appears to work" "$WORK/gctest.out"; then
    ok "bdwgc gctest: $(grep -o 'Finalized [0-9/]* objects' "$WORK/gctest.out")"
  else
    bad "bdwgc gctest" "$(tail -c 400 "$WORK/gctest.out" | tr '\n' ' ')"
  fi
  # staticrootstest: roots in the data of a library, loaded at start.
  if gcc -O1 -shared -fPIC -I"$BDWGC_DIR/include" -o "$WORK/libstaticrootslib.so" \
      "$BDWGC_DIR/tests/staticrootslib.c" -L"$LIBDIR" -lgc -w 2>"$WORK/srl.cc" &&
    bdw_cc staticrootstest "$BDWGC_DIR/tests/staticrootstest.c" -L"$WORK" -lstaticrootslib \
      -Wl,-rpath,"$WORK"; then
    if timeout 120 "$WORK/staticrootstest" >"$WORK/srt.out" 2>&1; then ok "bdwgc staticrootstest"
    else bad "bdwgc staticrootstest" "exit $?: $(tail -c 300 "$WORK/srt.out" | tr '\n' ' ')"; fi
  else
    bad "bdwgc staticrootstest" "does not build: $(cat "$WORK/srl.cc" "$WORK/staticrootstest.cc" 2>/dev/null | grep -m3 -E 'error|undefined' | tr '\n' ' ')"
  fi
else
  skipped "bdwgc 8.2.2's test programs" "no $BDWGC_DIR/tests"
fi

# --- 2. Debian's clients ----------------------------------------------------
# client NAME BINARY COMMAND: the same output on Debian's libgc and on
# gomem's, gomem's library really loaded, and collecting.
client() {
  local name=$1 bin=$2 cmd=$3
  if ! LD_LIBRARY_PATH=$LIBDIR ldd "$bin" 2>/dev/null | grep -q "libgc.so.1 => $LIBDIR"; then
    bad "$name" "gomem's libgc.so.1 is not the one loaded"
    return
  fi
  (cd "$WORK" && sh -c "$cmd") >"$WORK/$name.ref" 2>"$WORK/$name.referr" </dev/null
  local rc_ref=$?
  (cd "$WORK" && LD_LIBRARY_PATH=$LIBDIR GOMEM_GCTRACE=1 sh -c "$cmd") >"$WORK/$name.out" \
    2>"$WORK/$name.trace" </dev/null
  local rc=$?
  local gcs
  gcs=$(grep -c '^gc ' "$WORK/$name.trace")
  grep -v '^gc ' "$WORK/$name.trace" >"$WORK/$name.err"
  cat "$WORK/$name.referr" >>"$WORK/$name.ref"
  cat "$WORK/$name.err" >>"$WORK/$name.out"
  if [ $rc != $rc_ref ] || ! cmp -s "$WORK/$name.ref" "$WORK/$name.out"; then
    bad "$name" "exit $rc (Boehm GC: $rc_ref); output differs: $(diff "$WORK/$name.ref" "$WORK/$name.out" | head -5 | tr '\n' ' ')"
  elif [ "$gcs" -lt 2 ]; then
    bad "$name" "only $gcs collections"
  else
    ok "$name: same output as on Boehm GC ($gcs collections)"
  fi
}
. "$ROOT/tests/bdw_clients/clients.sh"
seen=" "
while IFS='|' read -r name bin cmd; do
  client "$name" "$bin" "$cmd"
  seen="$seen$name "
done < <(bdw_clients "$WORK")
for c in w3m poke neko ecl guile nix stalin crystal-fibers; do
  [[ $seen == *" $c "* ]] || skipped "$c" "not installed"
done

echo "$pass passed, $fail failed, $skip skipped"
[ $fail -gt 0 ] && exit 1
[ $pass -eq 0 ] && exit 77
exit 0
