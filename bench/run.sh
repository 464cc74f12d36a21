#!/usr/bin/env bash
# gomem benchmark runner: builds the workloads, runs each one against every
# allocator, interleaved, N times, and writes a Markdown report and a plot.
# See bench/README.md.
#
#   bench/run.sh            full mode: 5 runs, full sizes -> bench/results/
#   bench/run.sh --quick    3 runs, smaller sizes (a few minutes)
#   bench/run.sh --smoke    1 run, tiny sizes, glibc and gomem only (seconds);
#                           exits non-zero if any run fails -> bench/out/smoke/
set -u -o pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")

MODE=full
RUNS=""
THREADS=${BENCH_THREADS:-2}
TIMEOUT=""
ALLOCS=""
ONLY=""
INSTALL=1
PLOT=1
STRICT=0
REQUIRE_GOMEM=${GOMEM_REQUIRE:-0}
OUTDIR=${BENCH_OUT:-$BENCH/out}
RESULTS=""
GOMEM_LIB=${GOMEM_LIB:-}
ALL_MALLOC="glibc gomem mimalloc jemalloc tcmalloc"

usage() {
  cat <<EOF
usage: bench/run.sh [--quick | --smoke | --full] [options]

modes:
  --full              5 runs, full sizes (default); report in bench/results/
  --quick             3 runs, smaller sizes; report in bench/results/
  --smoke             1 run, tiny sizes, glibc and gomem only (GC workloads:
                      gomem and boehm variants), no installs;
                      report in bench/out/smoke/; exit status 1 if any run
                      fails or its checksum differs

options:
  --runs N            runs per (workload, allocator) (default 5 / 3 / 1)
  --threads N         threads for the threaded workloads (default 2)
  --timeout S         per-run time limit in seconds (default 120 / 60 / 30)
  --allocators LIST   comma-separated subset of: $ALL_MALLOC
  --workloads LIST    comma-separated subset of the names in workloads.list
  --gomem-lib PATH    gomem shared library (default \$GOMEM_LIB, else
                      <repo>/build/libgomem.so)
  --results DIR       where latest.md/.png/.tsv go
  --no-install        never apt-get install missing allocators
  --no-plot           skip the gnuplot PNG
  --strict            exit 1 on any failed run in every mode, not only smoke
  --require-gomem     exit 1 if the gomem library is missing (or GOMEM_REQUIRE=1)

environment: GOMEM_LIB, GOMEM_REQUIRE, BENCH_OUT (build and log directory,
default bench/out), BENCH_THREADS, CC, BENCH_CFLAGS.
EOF
}

die() { echo "run.sh: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case $1 in
    --full) MODE=full ;;
    --quick) MODE=quick ;;
    --smoke) MODE=smoke ;;
    --runs) RUNS=${2:?}; shift ;;
    --runs=*) RUNS=${1#*=} ;;
    --threads) THREADS=${2:?}; shift ;;
    --threads=*) THREADS=${1#*=} ;;
    --timeout) TIMEOUT=${2:?}; shift ;;
    --timeout=*) TIMEOUT=${1#*=} ;;
    --allocators) ALLOCS=${2:?}; shift ;;
    --allocators=*) ALLOCS=${1#*=} ;;
    --workloads) ONLY=${2:?}; shift ;;
    --workloads=*) ONLY=${1#*=} ;;
    --gomem-lib) GOMEM_LIB=${2:?}; shift ;;
    --gomem-lib=*) GOMEM_LIB=${1#*=} ;;
    --results) RESULTS=${2:?}; shift ;;
    --results=*) RESULTS=${1#*=} ;;
    --no-install) INSTALL=0 ;;
    --no-plot) PLOT=0 ;;
    --strict) STRICT=1 ;;
    --require-gomem) REQUIRE_GOMEM=1 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
  shift
done

case $MODE in
  full)  : "${RUNS:=5}" "${TIMEOUT:=120}" "${ALLOCS:=$ALL_MALLOC}" ;;
  quick) : "${RUNS:=3}" "${TIMEOUT:=60}" "${ALLOCS:=$ALL_MALLOC}" ;;
  smoke) : "${RUNS:=1}" "${TIMEOUT:=30}" "${ALLOCS:=glibc gomem}"; INSTALL=0; STRICT=1 ;;
esac
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs wants a positive integer"
[[ $THREADS =~ ^[1-9][0-9]*$ ]] || die "--threads wants a positive integer"
[[ $TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "--timeout wants a positive integer (seconds)"
ALLOCS=${ALLOCS//,/ }
ONLY=${ONLY//,/ }
for a in $ALLOCS; do
  [[ " $ALL_MALLOC " == *" $a "* ]] || die "unknown allocator '$a' (known: $ALL_MALLOC)"
done
: "${GOMEM_LIB:=$ROOT/build/libgomem.so}"
mkdir -p "$OUTDIR" && OUTDIR=$(cd "$OUTDIR" && pwd) || die "cannot create $OUTDIR"
WORK=$OUTDIR/$MODE
if [ -z "$RESULTS" ]; then
  if [ "$MODE" = smoke ]; then RESULTS=$WORK; else RESULTS=$BENCH/results; fi
fi

command -v python3 >/dev/null || die "python3 is required"
command -v timeout >/dev/null || die "timeout (coreutils) is required"

rm -rf "$WORK"
mkdir -p "$WORK/logs" "$RESULTS"

# ---------------------------------------------------------------------------
# Allocators

declare -A LIB PKG SONAME STATE
SONAME[mimalloc]=libmimalloc.so.2;          PKG[mimalloc]=libmimalloc-dev
SONAME[jemalloc]=libjemalloc.so.2;          PKG[jemalloc]=libjemalloc-dev
SONAME[tcmalloc]=libtcmalloc_minimal.so.4;  PKG[tcmalloc]=libgoogle-perftools-dev
# Installed with the anchors for the garbage-collector workloads (boehm, go variants).
EXTRA_PKGS="libgc-dev golang-go"

find_lib() {
  local so=$1 p
  p=$( (ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null) | awk -v n="$so" '$1 == n { print $NF; exit }')
  if [ -n "$p" ] && [ -e "$p" ]; then echo "$p"; return 0; fi
  for p in /usr/lib/*-linux-gnu/"$so" /usr/lib64/"$so" /usr/lib/"$so" /usr/local/lib/"$so"; do
    [ -e "$p" ] && { echo "$p"; return 0; }
  done
  return 1
}

pkg_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

ensure_packages() {
  local want=() p
  command -v dpkg-query >/dev/null || { echo "   (no dpkg: not checking Debian packages)"; return; }
  for a in $ALLOCS; do [ -n "${PKG[$a]:-}" ] && want+=("${PKG[$a]}"); done
  [ "$MODE" = smoke ] || want+=($EXTRA_PKGS)
  local missing=()
  for p in "${want[@]}"; do pkg_installed "$p" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return
  if [ "$INSTALL" = 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y "${missing[@]}" >"$WORK/apt.log" 2>&1; then
      apt-get update >>"$WORK/apt.log" 2>&1
      if ! apt-get install -y "${missing[@]}" >>"$WORK/apt.log" 2>&1; then
        for p in "${missing[@]}"; do   # one by one, so one bad name does not block the rest
          apt-get install -y "$p" >>"$WORK/apt.log" 2>&1 \
            || echo "   apt-get install $p failed (see $WORK/apt.log); going on without it"
        done
      fi
    fi
  else
    echo "   not installed: ${missing[*]}"
    echo "   install with: sudo apt-get install -y ${missing[*]}"
  fi
}

[ "$INSTALL" = 1 ] && ensure_packages

# (built after the packages are in: the GC variants need libgc and go)
# ---------------------------------------------------------------------------
# Build

# The garbage-collector workloads are built once per collector (variants):
# the .gomem one links against this library. Smoke mode leaves out the Go
# variant: building it from an empty Go cache (a fresh BENCH_OUT) takes ~10 s.
[[ $GOMEM_LIB == /* ]] || GOMEM_LIB=$PWD/$GOMEM_LIB
GC_VARIANTS="gomem gomem-conc gomem-explicit boehm go"
[ "$MODE" = smoke ] && GC_VARIANTS="gomem gomem-conc gomem-explicit boehm"
echo "== building workloads into $OUTDIR/bin"
make -s -C "$BENCH" OUT="$OUTDIR" GOMEM_ROOT="$ROOT" GOMEM_LIB="$GOMEM_LIB" GC_VARIANTS="$GC_VARIANTS" \
  -j"$(nproc 2>/dev/null || echo 2)" >"$OUTDIR/build.log" 2>&1 \
  || { cat "$OUTDIR/build.log" >&2; die "building the workloads failed"; }
# A collector that is not there only skips its variant (its cells say missing).
grep '^bench: skipping' "$OUTDIR/build.log" | sed 's/^bench: /   /'
[ "$MODE" = smoke ] && echo "   smoke mode: the GC workloads run without their go variant"
BIN=$OUTDIR/bin

ALLOC_INFO=""
for a in $ALLOCS; do
  case $a in
    glibc) LIB[$a]=""; STATE[$a]=ok ;;
    gomem)
      if [ -f "$GOMEM_LIB" ]; then LIB[$a]=$(cd "$(dirname "$GOMEM_LIB")" && pwd)/$(basename "$GOMEM_LIB"); STATE[$a]=ok
      else LIB[$a]=""; STATE[$a]="missing: no $GOMEM_LIB (build it, or set GOMEM_LIB / --gomem-lib)"; fi ;;
    *)
      if p=$(find_lib "${SONAME[$a]}"); then LIB[$a]=$p; STATE[$a]=ok
      else LIB[$a]=""; STATE[$a]="missing: ${SONAME[$a]} not found (apt-get install -y ${PKG[$a]})"; fi ;;
  esac
  # The library must load and really provide malloc and free.
  if [ "${STATE[$a]}" = ok ] && [ -n "${LIB[$a]}" ]; then
    probe=$(timeout -k 2 10 "$BIN/runone" -o /dev/null -p "${LIB[$a]}" -- "$BIN/probe" 2>&1)
    prc=$?
    want=$(readlink -f "${LIB[$a]}")
    m=$(awk '/^malloc /{print $2}' <<<"$probe") f=$(awk '/^free /{print $2}' <<<"$probe")
    if [ $prc -ne 0 ]; then
      STATE[$a]="broken: a program preloading it fails (exit $prc): $(head -c 200 <<<"$probe" | tr '\n' ' ')"
    elif [ "$(readlink -f "$m")" != "$want" ] || [ "$(readlink -f "$f")" != "$want" ]; then
      STATE[$a]="broken: preloading it does not replace malloc/free (they come from ${m:-?} / ${f:-?}) $(grep -m1 -i error <<<"$probe")"
    fi
  fi
  printf '   %-9s %s\n' "$a" "$([ "${STATE[$a]}" = ok ] && echo "${LIB[$a]:-(system malloc, no preload)}" || echo "${STATE[$a]}")"
  ALLOC_INFO+="$a=${LIB[$a]}|${STATE[$a]};"
done

# ---------------------------------------------------------------------------
# Workloads

trim() { local s=$1; s=${s#"${s%%[![:space:]]*}"}; s=${s%"${s##*[![:space:]]}"}; printf '%s' "$s"; }
NAMES=() WGROUPS=() ARGS=()
while IFS='|' read -r name group a_smoke a_quick a_full; do
  name=$(trim "$name")
  [ -z "$name" ] || [[ $name == \#* ]] && continue
  if [ -n "$ONLY" ] && [[ " $ONLY " != *" $name "* ]]; then continue; fi
  case $MODE in smoke) a=$a_smoke ;; quick) a=$a_quick ;; full) a=$a_full ;; esac
  NAMES+=("$name"); WGROUPS+=("$(trim "$group")"); ARGS+=("$(trim "${a//\{threads\}/$THREADS}")")
done <"$BENCH/workloads.list"
[ ${#NAMES[@]} -gt 0 ] || die "no workloads selected"
for w in $ONLY; do [[ " ${NAMES[*]} " == *" $w "* ]] || die "unknown workload '$w'"; done

# variants GROUP: the columns of a workload.
variants() {
  case $1 in
    malloc) echo "$ALLOCS" ;;
    variants:*)
      if [ "$MODE" = smoke ]; then echo "${1#variants:}" | tr ',' '\n' | grep -vx go | tr '\n' ' '
      else echo "${1#variants:}" | tr ',' ' '; fi ;;
    *) die "unknown group '$1' in workloads.list" ;;
  esac
}

# ---------------------------------------------------------------------------
# Runs: for each workload, N rounds, every variant once per round.

INDEX=$WORK/index.tsv
printf 'workload\tvariant\trun\trc\tstats\tstdout\tstderr\targs\tgroup\n' >"$INDEX"
echo "== mode $MODE: $RUNS run(s), threads $THREADS, timeout ${TIMEOUT}s, allocators: $ALLOCS"
START=$(date +%s)
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
for i in "${!NAMES[@]}"; do
  w=${NAMES[$i]} group=${WGROUPS[$i]} args=${ARGS[$i]}
  read -r -a argv <<<"$args"
  vs=$(variants "$group")
  for r in $(seq 1 "$RUNS"); do
    for v in $vs; do
      if [ "$group" = malloc ]; then
        prog=$BIN/$w preload=${LIB[$v]} state=${STATE[$v]}
      else
        prog=$BIN/$w.$v preload="" state=ok
        [ -x "$prog" ] || state="missing: no $prog"
      fi
      base=$WORK/logs/$w.$v.$r
      if [ "$state" != ok ]; then
        kind=missing
        [[ $state == broken* ]] && kind=broken
        printf '%s\t%s\t%s\t%s\t\t\t\t%s\t%s\n' "$w" "$v" "$r" "$kind" "$args" "$group" >>"$INDEX"
        [ "$r" = 1 ] && printf '%-14s %-9s %s\n' "$w" "$v" "$state"
        continue
      fi
      popt=()
      [ -n "$preload" ] && popt=(-p "$preload")
      timeout -k 5 "$TIMEOUT" "$BIN/runone" -o "$base.stats" "${popt[@]}" -- "$prog" "${argv[@]}" \
        >"$base.out" 2>"$base.err" </dev/null
      rc=$?
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$w" "$v" "$r" "$rc" "$base.stats" "$base.out" "$base.err" "$args" "$group" >>"$INDEX"
      case $rc in
        0) msg=$(awk '/^metric /{printf "%s %s %s", $2, $3, $4; exit}' "$base.out")
           rss=$(awk '/^maxrss_kb /{printf "%.1f MiB", $2/1024}' "$base.stats" 2>/dev/null)
           msg="ok  $msg  peak $rss" ;;
        124|137) msg="TIMEOUT after ${TIMEOUT}s" ;;
        *) sig=$(awk '/^signal /{print $2}' "$base.stats" 2>/dev/null)
           if [ -n "$sig" ] && [ "$sig" != 0 ]; then msg="CRASH (signal $sig)"; else msg="FAIL (exit $rc)"; fi
           msg="$msg: $(head -c 200 "$base.err" | tr '\n' ' ')" ;;
      esac
      printf '%-14s %-9s run %d/%d  %s\n' "$w" "$v" "$r" "$RUNS" "$msg"
    done
  done
done
ELAPSED=$(( $(date +%s) - START ))
echo "== runs took ${ELAPSED}s"

# ---------------------------------------------------------------------------
# Report

ropts=(--index "$INDEX" --mode "$MODE" --runs "$RUNS" --threads "$THREADS" --timeout "$TIMEOUT"
       --allocators "$ALLOC_INFO" --root "$ROOT" --elapsed "$ELAPSED" --work "$WORK"
       --loadavg "$LOADAVG $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
       --md "$RESULTS/latest.md" --tsv "$RESULTS/latest.tsv")
[ "$PLOT" = 1 ] && ropts+=(--png "$RESULTS/latest.png")
python3 "$BENCH/report.py" "${ropts[@]}"
status=$?
[ $status -gt 1 ] && die "report.py failed (status $status)"

if [ "$REQUIRE_GOMEM" = 1 ] && [[ " $ALLOCS " == *" gomem "* ]] && [ "${STATE[gomem]}" != ok ]; then
  echo "run.sh: gomem library missing and required" >&2
  exit 1
fi
if [ $status -ne 0 ]; then
  if [ "$STRICT" = 1 ]; then echo "run.sh: some runs failed (see the report)" >&2; exit 1; fi
  echo "run.sh: some runs failed (see the report)" >&2
fi
exit 0
