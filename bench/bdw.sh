#!/bin/bash
# bdw.sh [--runs N] [--lib LIBGC_SO] [--results DIR]: Boehm GC's clients from
# Debian (tests/bdw_clients/clients.sh: w3m, poke, neko, ecl, guile, nix,
# stalin) on Debian's libgc.so.1 and on gomem's, interleaved (round r runs
# every client on both libraries), N runs each (default 5). Reports each
# client's median wall time and peak RSS on both and gomem's ratios
# (< 1: gomem is faster or smaller), in DIR/bdw.md (default bench/results).
# Clients that are not installed are left out (install them with
# tools/install-deps.sh test).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=5 LIB=$ROOT/build/bdw/libgc.so.1 RESULTS=$ROOT/bench/results
while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=$2; shift ;;
    --lib) LIB=$2; shift ;;
    --results) RESULTS=$2; shift ;;
    *) echo "usage: $0 [--runs N] [--lib LIBGC_SO] [--results DIR]" >&2; exit 2 ;;
  esac
  shift
done
[ -f "$LIB" ] || { echo "bdw.sh: no $LIB (build gomem first)" >&2; exit 1; }
LIBDIR=$(dirname "$(readlink -f "$LIB")")
make -s -C "$ROOT/bench" "$ROOT/bench/out/bin/runone" OUT="$ROOT/bench/out" >/dev/null || exit 1
RUNONE=$ROOT/bench/out/bin/runone
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
. "$ROOT/tests/bdw_clients/clients.sh"
mapfile -t LINES < <(bdw_clients "$WORK")
[ ${#LINES[@]} -gt 0 ] || { echo "bdw.sh: no client installed" >&2; exit 1; }

# run LIBDIR_OR_EMPTY CMD: wall seconds and peak RSS (KiB) of one run.
run() {
  local libdir=$1 cmd=$2
  (cd "$WORK" && LD_LIBRARY_PATH=$libdir "$RUNONE" -o "$WORK/stats" -- /bin/sh -c "$cmd") \
    >/dev/null 2>&1 </dev/null
  awk '/^wall_s /{w=$2} /^maxrss_kb /{r=$2} END{print w, r}' "$WORK/stats"
}
median() { sort -g | awk '{a[NR]=$1} END{print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

declare -A T R
for r in $(seq 1 "$RUNS"); do
  for line in "${LINES[@]}"; do
    IFS='|' read -r name bin cmd <<<"$line"
    for lib in boehm gomem; do
      d=""
      [ $lib = gomem ] && d=$LIBDIR
      read -r w kb < <(run "$d" "$cmd")
      T[$name.$lib]+="$w "
      R[$name.$lib]+="$kb "
    done
  done
  echo "round $r/$RUNS done" >&2
done

mkdir -p "$RESULTS"
OUT=$RESULTS/bdw.md
{
  echo "# Boehm GC's clients on Debian's libgc.so.1 and on gomem's"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); $RUNS interleaved runs per cell, medians"
  echo "- machine: $(nproc) CPUs, $(uname -r); Debian's libgc: $(readlink -f /usr/lib/*-linux-gnu/libgc.so.1 2>/dev/null | head -1)"
  echo "- command: \`bench/bdw.sh --runs $RUNS\`; inputs: tests/bdw_clients/"
  echo
  echo "| client | time Boehm GC (s) | time gomem (s) | gomem / Boehm | peak RSS Boehm (MiB) | peak RSS gomem (MiB) | gomem / Boehm |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  tl=0 rl=0 n=0
  for line in "${LINES[@]}"; do
    IFS='|' read -r name bin cmd <<<"$line"
    tb=$(tr ' ' '\n' <<<"${T[$name.boehm]}" | grep . | median)
    tg=$(tr ' ' '\n' <<<"${T[$name.gomem]}" | grep . | median)
    rb=$(tr ' ' '\n' <<<"${R[$name.boehm]}" | grep . | median)
    rg=$(tr ' ' '\n' <<<"${R[$name.gomem]}" | grep . | median)
    awk -v n="$name" -v tb="$tb" -v tg="$tg" -v rb="$rb" -v rg="$rg" 'BEGIN{
      printf "| %s | %.3f | %.3f | %.2fx | %.1f | %.1f | %.2fx |\n", n, tb, tg, tg/tb, rb/1024, rg/1024, rg/rb }'
    tl=$(awk -v a="$tl" -v b="$tg" -v c="$tb" 'BEGIN{print a + log(b/c)}')
    rl=$(awk -v a="$rl" -v b="$rg" -v c="$rb" 'BEGIN{print a + log(b/c)}')
    n=$((n + 1))
  done
  awk -v t="$tl" -v r="$rl" -v n="$n" 'BEGIN{
    printf "| geometric mean | | | %.2fx | | | %.2fx |\n", exp(t/n), exp(r/n) }'
} >"$OUT"
cat "$OUT"
