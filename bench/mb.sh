#!/usr/bin/env bash
# mb.sh: the allocator field's standard benchmarks — mimalloc-bench's
# offline programs (github daanx/mimalloc-bench) — on glibc, gomem,
# mimalloc, jemalloc and tcmalloc (each through LD_PRELOAD), interleaved,
# N runs each, medians of time and peak RSS; gomem's ratio against the best
# of mimalloc, jemalloc and tcmalloc for each program, and their geometric
# means. Writes bench/results/mb.md.
#
#   bench/mb.sh [--runs N] [--programs LIST] [--allocators LIST] [--results DIR]
#
# An A/B of two gomem builds: GOMEM_BASE_LIB=old/libgomem.so and the
# allocator gomem-base in --allocators (e.g. gomem,gomem-base,mimalloc);
# the report then gives gomem's geometric mean against it too.
#
# mimalloc-bench's code is not part of gomem: MB_DIR names a checkout; with
# none, it is cloned into ~/.cache/gomem/mimalloc-bench when the network
# allows, and the script says so and stops when it does not. Programs are
# run as mimalloc-bench's bench.sh runs them with procs = the machine's CPU
# count; for larson, xmalloc-test, rptest and glibc-thread (which run for a
# fixed time) the time is bench.sh's "relative time" from their output.
# Never part of the test run.
set -u -o pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
RUNS=3
ALLOCS="glibc gomem mimalloc jemalloc tcmalloc"
PROGRAMS="cfrac espresso barnes larsonN larsonN-sized alloc-test1 alloc-testN xmalloc-testN
  cache-thrash1 cache-thrashN cache-scratch1 cache-scratchN malloc-large mstressN mleak10
  mleak100 rptestN glibc-simple glibc-thread"
RESULTS=$BENCH/results
GOMEM_LIB=${GOMEM_LIB:-$ROOT/build/libgomem.so}
OUT=${BENCH_OUT:-$BENCH/out}/mb

while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=${2:?}; shift ;;
    --programs) PROGRAMS=${2//,/ }; shift ;;
    --allocators) ALLOCS=${2//,/ }; shift ;;
    --results) RESULTS=${2:?}; shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "mb.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

# --- mimalloc-bench's sources -----------------------------------------------
MB=${MB_DIR:-$HOME/.cache/gomem/mimalloc-bench}
if [ ! -f "$MB/bench/CMakeLists.txt" ]; then
  if [ -n "${MB_DIR:-}" ]; then
    echo "mb.sh: MB_DIR=$MB_DIR is not a mimalloc-bench checkout" >&2; exit 2
  fi
  mkdir -p "$(dirname "$MB")"
  if ! git clone -q --depth 1 https://github.com/daanx/mimalloc-bench "$MB" 2>/dev/null; then
    echo "mb.sh: skipped: no mimalloc-bench checkout (set MB_DIR; cloning needs the network)" >&2
    exit 0
  fi
fi

# --- build (offline: the shbench block needs a download; the security
# suite is not timed) ---------------------------------------------------------
mkdir -p "$OUT/src" "$OUT/build"
rm -rf "$OUT/src/bench"
cp -r "$MB/bench" "$OUT/src/bench"
python3 - "$OUT/src/bench/CMakeLists.txt" <<'EOF'
import re, sys
p = sys.argv[1]; s = open(p).read()
s = re.sub(r'if\(NOT APPLE\)\s*add_executable\(sh6bench.*?endif\(\)\n', '', s, flags=re.S)
s = s.replace('add_subdirectory(security)', '')
open(p, 'w').write(s)
EOF
(cd "$OUT/build" && cmake -S ../src/bench -B . -DCMAKE_BUILD_TYPE=Release &&
  make -j"$(nproc)") >"$OUT/build.log" 2>&1 ||
  { echo "mb.sh: building mimalloc-bench failed (see $OUT/build.log)" >&2; exit 1; }

# --- allocators ----------------------------------------------------------------
declare -A LIB
libdir=/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
LIB[glibc]=""
LIB[gomem]=$GOMEM_LIB
LIB[mimalloc]=$libdir/libmimalloc.so.2
LIB[jemalloc]=$libdir/libjemalloc.so.2
LIB[tcmalloc]=$libdir/libtcmalloc_minimal.so.4
LIB[gomem-base]=${GOMEM_BASE_LIB:-}
have=()
for a in $ALLOCS; do
  if [ "$a" = glibc ] || [ -f "${LIB[$a]:-/nonexistent}" ]; then
    have+=("$a")
  else
    echo "mb.sh: $a missing (${LIB[$a]:-unknown}): not run" >&2
  fi
done

procs=$(nproc)
cmd_of() { # program -> command line, run in $OUT/build
  case $1 in
    cfrac) echo "./cfrac 17545186520507317056371138836327483792789528" ;;
    espresso) echo "./espresso $OUT/src/bench/espresso/largest.espresso" ;;
    barnes) echo "./barnes < $OUT/src/bench/barnes/input" ;;
    larsonN) echo "./larson 5 8 1000 5000 100 4141 $procs" ;;
    larsonN-sized) echo "./larson-sized 5 8 1000 5000 100 4141 $procs" ;;
    alloc-test1) echo "./alloc-test 1" ;;
    alloc-testN) echo "./alloc-test $procs" ;;
    xmalloc-testN) echo "./xmalloc-test -w $procs -t 5 -s 64" ;;
    cache-thrash1) echo "./cache-thrash 1 1000 1 2000000 $procs" ;;
    cache-thrashN) echo "./cache-thrash $procs 1000 1 2000000 $procs" ;;
    cache-scratch1) echo "./cache-scratch 1 1000 1 2000000 $procs" ;;
    cache-scratchN) echo "./cache-scratch $procs 1000 1 2000000 $procs" ;;
    malloc-large) echo "./malloc-large" ;;
    mstressN) echo "./mstress $procs 50 25" ;;
    mleak10) echo "./mleak 5" ;;
    mleak100) echo "./mleak 50" ;;
    rptestN) echo "./rptest $procs 0 1 2 500 1000 100 8 16000" ;;
    glibc-simple) echo "./glibc-simple" ;;
    glibc-thread) echo "./glibc-thread $procs" ;;
    *) return 1 ;;
  esac
}

# relative_time program outfile elapsed: bench.sh's time for the programs
# that run for a fixed time, else the elapsed time.
relative_time() {
  local r=""
  case $1 in
    larson*) r=$(sed -n 's/.* time: \([0-9.]*\).*/\1/p' "$2" | head -1) ;;
    xmalloc*) r=$(sed -n 's/rtime: \([0-9.]*\).*/\1/p' "$2" | head -1) ;;
    rptest*) r=$(sed -n 's/.*\.\.\.\([0-9]*\) memory ops.*/\1/p' "$2" | head -1)
      [ -n "$r" ] && r=$(awk -v o="$r" 'BEGIN { printf "%.3f", 2000000 / o }') ;;
    glibc-thread) r=$(sed -n 's/^\([0-9.]*\).*/\1/p' "$2" | head -1)
      [ -n "$r" ] && r=$(awk -v o="$r" 'BEGIN { printf "%.3f", 1000000000 / o }') ;;
  esac
  echo "${r:-$3}"
}

# --- runs, interleaved ----------------------------------------------------------
TSV=$OUT/runs.tsv
: >"$TSV"
for ((run = 1; run <= RUNS; run++)); do
  for p in $PROGRAMS; do
    cmd=$(cmd_of "$p") || { echo "mb.sh: unknown program $p" >&2; exit 2; }
    for a in "${have[@]}"; do
      log=$OUT/$p-$a.out
      pre=""
      [ -n "${LIB[$a]}" ] && pre="LD_PRELOAD=${LIB[$a]}"
      if (cd "$OUT/build" && env $pre /usr/bin/time -o "$OUT/time" -f "%e %M" \
        timeout 300 sh -c "$cmd" >"$log" 2>&1); then
        read -r el rss <"$OUT/time"
        t=$(relative_time "$p" "$log" "$el")
        printf '%s\t%s\t%s\t%s\n' "$p" "$a" "$t" "$rss" >>"$TSV"
        printf '%-15s %-9s %8ss %8s KiB\n' "$p" "$a" "$t" "$rss"
      else
        printf '%s\t%s\tFAIL\tFAIL\n' "$p" "$a" >>"$TSV"
        printf '%-15s %-9s FAILED (%s)\n' "$p" "$a" "$log"
      fi
    done
  done
done

# --- report ------------------------------------------------------------------------
mkdir -p "$RESULTS"
python3 - "$TSV" "$RESULTS/mb.md" "$RUNS" "$(uname -r)" "${have[*]}" <<'EOF'
import sys, statistics, math, datetime, collections
tsv, out, runs, kernel, allocs = sys.argv[1:6]
allocs = allocs.split()
t = collections.defaultdict(list); m = collections.defaultdict(list); progs = []
for line in open(tsv):
    p, a, tm, rss = line.rstrip('\n').split('\t')
    if p not in progs: progs.append(p)
    if tm != 'FAIL':
        t[p, a].append(float(tm)); m[p, a].append(float(rss) / 1024)
med = lambda d, k: statistics.median(d[k]) if d.get(k) else None
anchors = [a for a in ('mimalloc', 'jemalloc', 'tcmalloc') if a in allocs]
rows, rt, rm, rmi = [], [], [], []
for p in progs:
    times = {a: med(t, (p, a)) for a in allocs}; rss = {a: med(m, (p, a)) for a in allocs}
    bt = [times[a] for a in anchors if times[a]]; bm = [rss[a] for a in anchors if rss[a]]
    g, gm = times.get('gomem'), rss.get('gomem')
    r = g / min(bt) if g and bt else None
    r2 = gm / min(bm) if gm and bm else None
    r3 = g / times['mimalloc'] if g and times.get('mimalloc') else None
    if r: rt.append(r)
    if r2: rm.append(r2)
    if r3: rmi.append(r3)
    f = lambda v, n=3: '—' if v is None else f'{v:.{n}f}'
    rows.append(f'| {p} | ' + ' | '.join(f(times[a]) for a in allocs) + f' | {f(r, 2)}x | '
                + ' | '.join(f(rss[a], 1) for a in allocs) + f' | {f(r2, 2)}x |')
geo = lambda v: math.exp(sum(map(math.log, v)) / len(v)) if v else float('nan')
with open(out, 'w') as o:
    o.write('# mimalloc-bench (offline set) on gomem and the other allocators\n\n')
    o.write(f'- date: {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC; {runs} interleaved runs per cell, medians\n')
    o.write(f'- machine: {__import__("os").cpu_count()} CPUs, {kernel}; command: `bench/mb.sh --runs {runs}`\n')
    o.write('- time in seconds (bench.sh\'s relative time for larson, xmalloc-test, rptest, glibc-thread); '
            'peak RSS in MiB; "best" is the best of ' + ', '.join(anchors) + ' for each program\n\n')
    o.write('| program | ' + ' | '.join(f'{a} (s)' for a in allocs) + ' | gomem / best | '
            + ' | '.join(f'{a} (MiB)' for a in allocs) + ' | gomem / best |\n')
    o.write('|---|' + '---:|' * (2 * len(allocs) + 2) + '\n')
    o.write('\n'.join(rows) + '\n\n')
    if rt:
        o.write(f'gomem\'s geometric means: time {geo(rt):.3f}x the best per program (at most '
                f'{max(rt):.2f}x), {geo(rmi):.3f}x mimalloc; peak RSS {geo(rm):.3f}x the best per program.\n\n')
    if 'gomem-base' in allocs:
        ab = [(p, med(t, (p, 'gomem')) / med(t, (p, 'gomem-base'))) for p in progs
              if med(t, (p, 'gomem')) and med(t, (p, 'gomem-base'))]
        o.write('gomem against gomem-base (time): ' + ', '.join(f'{p} {r:.3f}x' for p, r in ab)
                + f'; geometric mean {geo([r for _, r in ab]):.3f}x.\n\n')
    full = [p for p in progs if all(med(m, (p, a)) for a in allocs)]
    o.write('Peak RSS, geometric mean over the programs every allocator ran: ' + ', '.join(
        f'{a} {geo([med(m, (p, a)) for p in full]):.1f} MiB' for a in allocs) + '.\n')
print(open(out).read())
EOF
