#!/usr/bin/env bash
# coro.sh: what gomem's coroutines cost (bench/coro.c), side by side with
# Boost.Context (libboost-context-dev: the column is left out without it),
# ucontext's swapcontext and pthreads: a switch, a create from a cached
# slot, N idle coroutines' resident memory and creation, and a collection
# with N suspended coroutines holding heap objects against one with the same
# objects held from a table (the difference is the stacks' scan), and the
# longest stop of concurrent cycles with those coroutines suspended.
# Interleaved runs, medians; writes bench/results/coro.md.
#
#   bench/coro.sh [--runs N] [--idle N] [--threads N]
#       (defaults 5 runs, 1,000,000 idle coroutines, 10,000 threads;
#        needs build/libgomem.so)
set -eu -o pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
RUNS=5 IDLE=1000000 THREADS=10000
while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=${2:?}; shift 2 ;;
    --idle) IDLE=${2:?}; shift 2 ;;
    --threads) THREADS=${2:?}; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--idle N] [--threads N]" >&2; exit 2 ;;
  esac
done
LIB=${GOMEM_LIB:-$ROOT/build/libgomem.so}
OUT=${BENCH_OUT:-$BENCH/out}/coro
mkdir -p "$OUT"
[ -f "$LIB" ] || { echo "coro.sh: $LIB missing (make all)" >&2; exit 2; }
BOOST=()
if [ -e /usr/include/boost/context/detail/fcontext.hpp ]; then
  BOOST=(-DHAVE_BOOST -lboost_context)
else
  echo "coro.sh: no Boost.Context (apt-get install libboost-context-dev): its column is left out" >&2
fi
gcc -O2 -I"$ROOT/include" "$BENCH/coro.c" "$LIB" -Wl,-rpath,"$(dirname "$LIB")" -lpthread \
  "${BOOST[@]}" -o "$OUT/coro"
: >"$OUT/runs.txt"
for ((r = 0; r < RUNS; r++)); do
  "$OUT/coro" switch 20000000 >>"$OUT/runs.txt"
  [ ${#BOOST[@]} -eq 0 ] || "$OUT/coro" boost 20000000 >>"$OUT/runs.txt"
  "$OUT/coro" ucontext 200000 >>"$OUT/runs.txt"
  "$OUT/coro" create 1000000 >>"$OUT/runs.txt"
  "$OUT/coro" idle "$IDLE" >>"$OUT/runs.txt"
  GOMEM_GC_CONCURRENT=1 "$OUT/coro" idle "$IDLE" | grep '^conc_' >>"$OUT/runs.txt"
  "$OUT/coro" threads "$THREADS" >>"$OUT/runs.txt"
done
python3 - "$OUT/runs.txt" "$ROOT/bench/results/coro.md" "$RUNS" "$IDLE" "$THREADS" <<'PY'
import sys, statistics as st, datetime, os
runs, out, n, idle, threads = sys.argv[1:6]
v = {}
for line in open(runs):
    k, x = line.split()
    v.setdefault(k, []).append(float(x))
m = {k: st.median(x) for k, x in v.items()}
g = lambda k, f='%.2f': (f % m[k]) if k in m else 'n/a'
with open(out, 'w') as o:
    o.write('# Coroutines: gm_co against Boost.Context, ucontext and pthreads\n\n')
    o.write(f'- date: {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC; {n} interleaved runs, medians; '
            f'{os.cpu_count()} CPUs; command: `bench/coro.sh --runs {n} --idle {idle} --threads {threads}`\n\n')
    o.write('| switch (one direction) | ns |\n|---|---:|\n')
    o.write(f'| gm_co_resume / gm_co_yield | {g("switch_ns")} |\n')
    o.write(f'| Boost.Context jump_fcontext | {g("boost_ns")} |\n')
    o.write(f'| swapcontext (ucontext) | {g("ucontext_ns")} |\n')
    o.write(f'| two pthreads (futex ping-pong) | {g("thread_switch_ns")} |\n\n')
    o.write('| creation | |\n|---|---:|\n')
    o.write(f'| gm_co_create from a cached slot | {g("create_ns")} ns |\n')
    o.write(f'| gm_co_create + gm_co_destroy | {g("create_destroy_ns")} ns |\n')
    o.write(f'| gm_co_create of a fresh slot ({int(idle):,} coroutines) | {g("idle_create_ns", "%.0f")} ns |\n')
    o.write(f'| pthread_create ({int(threads):,} threads) | {g("thread_create_us")} us |\n\n')
    o.write('| memory | KiB resident each |\n|---|---:|\n')
    o.write(f'| {int(idle):,} idle coroutines (suspended in gm_co_yield) | {g("idle_kib", "%.2f")} |\n')
    o.write(f'| {int(threads):,} idle pthreads (blocked on a barrier) | {g("thread_kib", "%.2f")} |\n\n')
    o.write(f'| collection (gm_collect, stop-the-world) | pause ms |\n|---|---:|\n')
    o.write(f'| {int(idle):,} suspended coroutines, each holding a 64-byte object | {g("gc_pause_ms")} |\n')
    o.write(f'| the same objects held from a table | {g("gc_pause_base_ms")} |\n')
    o.write(f'| difference: the coroutine stacks\' scan | '
            f'{(m["gc_pause_ms"] - m["gc_pause_base_ms"]) if "gc_pause_ms" in m else float("nan"):.2f} |\n\n')
    o.write(f'| concurrent cycles (GOMEM_GC_CONCURRENT=1), {int(idle):,} suspended coroutines | ms |\n|---|---:|\n')
    o.write(f'| longest stop of three cycles the pacer starts | {g("conc_stop_ms")} |\n')
    o.write(f'| longest marking beside the program (the stacks\' scan included) | {g("conc_mark_ms")} |\n\n')
    o.write(f'Objects lost across the collections: {int(max(v.get("lost", [0])))} (all runs).\n')
print(open(out).read())
PY
