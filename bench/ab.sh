#!/bin/bash
# bench/ab.sh: interleaved A/B of two gomem builds on every workload of
# workloads.list that gomem runs (the malloc workloads under LD_PRELOAD, the
# garbage-collector workloads' gomem variant with the library chosen through
# LD_LIBRARY_PATH: they are linked against libgomem.so.0 with a RUNPATH).
#
#   bench/ab.sh [--runs N] [--quick|--full] [--workloads a,b] OLD_LIB NEW_LIB
#
# Round r runs OLD then NEW (NEW then OLD in even rounds, so neither always
# goes first). Prints, per workload, the median of the primary metric (the
# first `metric` line) and of the peak RSS for each build, and NEW/OLD ratios
# (for a "higher is better" metric the ratio is inverted, so > 1 always means
# NEW is worse). Defaults: 5 runs, quick sizes.
set -euo pipefail
BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$BENCH")
RUNS=5 COL=4 ONLY=""
while [ $# -gt 2 ]; do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --quick) COL=4; shift ;;
    --full) COL=5; shift ;;
    --workloads) ONLY=,$2,; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--quick|--full] [--workloads a,b] OLD_LIB NEW_LIB" >&2; exit 2 ;;
  esac
done
[ $# -eq 2 ] || { echo "usage: $0 [--runs N] [--quick|--full] [--workloads a,b] OLD_LIB NEW_LIB" >&2; exit 2; }
abs() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
OLD=$(abs "$1") NEW=$(abs "$2")
GC=1 # the GC workloads need libgomem.so.0 beside both (a hardened build has none)
for l in "$OLD" "$NEW"; do
  [ -f "$l" ] || { echo "ab.sh: no library $l" >&2; exit 2; }
  [ -e "$(dirname "$l")/libgomem.so.0" ] || GC=0
done
[ $GC = 1 ] || echo "(no libgomem.so.0 beside both libraries: the malloc workloads only)"
# Its own build directory: the GC workloads are linked with a RUNPATH to
# NEW's directory, and bench/run.sh must not take them for its own.
OUT=${BENCH_OUT:-$BENCH/out}/ab
BIN=$OUT/bin
mkdir -p "$OUT"
make -s -C "$BENCH" OUT="$OUT" GOMEM_ROOT="$ROOT" GOMEM_LIB="$NEW" GC_VARIANTS=gomem >/dev/null

# run_one LIB WORKLOAD GROUP ARGS... : prints "metric direction rss_kb"
run_one() {
  local lib=$1 w=$2 group=$3 rc=0
  shift 3
  if [ "$group" = malloc ]; then
    timeout -k 5 300 "$BIN/runone" -o "$OUT/stats" -p "$lib" -- "$BIN/$w" "$@" >"$OUT/out" 2>"$OUT/err" || rc=$?
  else
    LD_LIBRARY_PATH=$(dirname "$lib") timeout -k 5 300 "$BIN/runone" -o "$OUT/stats" -- \
      "$BIN/$w.gomem" "$@" >"$OUT/out" 2>"$OUT/err" || rc=$?
  fi
  if [ $rc -ne 0 ]; then
    echo "ab.sh: $w failed with $lib (status $rc): $(head -c 300 "$OUT/err")" >&2
    echo "nan lower nan"
    return
  fi
  printf '%s %s\n' "$(awk '/^metric /{print $3, $5; exit}' "$OUT/out")" \
    "$(awk '/^maxrss_kb /{print $2}' "$OUT/stats")"
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

printf '%-14s %12s %12s %7s   %9s %9s %6s\n' workload old new ratio "old MiB" "new MiB" ratio
# (the table's rows also go to $OUT/rows for the geometric means below)
: >"$OUT/rows"
grep -v '^#' "$BENCH/workloads.list" | grep -v '^[[:space:]]*$' | while IFS='|' read -r -a f; do
  w=$(echo "${f[0]}" | xargs) group=$(echo "${f[1]}" | xargs)
  args=$(echo "${f[$((COL - 1))]}" | sed 's/{threads}/2/g')
  [ -z "$ONLY" ] || [[ $ONLY == *",$w,"* ]] || continue
  [ "$group" = malloc ] || { [ $GC = 1 ] && [[ $group == *gomem* ]]; } || continue
  [ "$group" = malloc ] || group=variants
  declare -A M=() R=()
  dir=lower
  for r in $(seq 1 "$RUNS"); do
    order="old new"
    [ $((r % 2)) -eq 0 ] && order="new old"
    for v in $order; do
      lib=$OLD
      [ $v = new ] && lib=$NEW
      read -r m d rss < <(run_one "$lib" "$w" "$group" $args)
      M[$v]+=" $m" R[$v]+=" $rss"
      [ -n "$d" ] && dir=$d
    done
  done
  mo=$(echo "${M[old]}" | median) mn=$(echo "${M[new]}" | median)
  ro=$(echo "${R[old]}" | median) rn=$(echo "${R[new]}" | median)
  ratio=$(awk -v o="$mo" -v n="$mn" -v d="$dir" 'BEGIN {printf "%.3f", d == "higher" ? o / n : n / o}')
  rr=$(awk -v o="$ro" -v n="$rn" 'BEGIN {printf "%.3f", n / o}')
  printf '%-14s %12s %12s %7s   %9.1f %9.1f %6s\n' "$w" "$mo" "$mn" "$ratio" \
    "$(awk -v k="$ro" 'BEGIN {print k / 1024}')" "$(awk -v k="$rn" 'BEGIN {print k / 1024}')" "$rr"
  echo "$group $ratio $rr" >>"$OUT/rows"
  unset M R
done
awk '$1 == "malloc" && $2 > 0 && $3 > 0 {t += log($2); r += log($3); n++}
     END {if (n) printf "geomean (%d malloc workloads): time %.3f, peak RSS %.3f\n", n, exp(t / n), exp(r / n)}' "$OUT/rows"
