#!/usr/bin/env bash
# prof.sh: what heap profile sampling costs malloc: the malloc workloads of
# bench/workloads.list (full arguments) on gomem through LD_PRELOAD, with
# sampling off and on at Go's rate (GOMEM_PROFILE_RATE=524288), interleaved,
# N runs, medians and the on/off ratio; writes bench/results/prof.md.
#
#   bench/prof.sh [--runs N]     (default 5; needs build/libgomem.so)
set -eu -o pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
RUNS=5
[ "${1:-}" = --runs ] && RUNS=${2:?}
LIB=${GOMEM_LIB:-$ROOT/build/libgomem.so}
OUT=${BENCH_OUT:-$BENCH/out}
[ -f "$LIB" ] || { echo "prof.sh: $LIB missing (make all)" >&2; exit 2; }
make -s -C "$BENCH" OUT="$OUT" GOMEM_ROOT="$ROOT" GOMEM_LIB="$LIB" GC_VARIANTS=gomem \
  >"$OUT/prof-build.log" 2>&1 || { cat "$OUT/prof-build.log" >&2; exit 1; }
RES=$OUT/prof-runs.txt
: >"$RES"
while IFS='|' read -r name group smoke quick full; do
  name=$(echo $name) group=$(echo $group)
  [ "$group" = malloc ] || continue
  args=$(echo $full | sed "s/{threads}/2/g")
  for ((r = 0; r < RUNS; r++)); do
    for mode in off on; do
      rate=0
      [ $mode = on ] && rate=524288
      /usr/bin/time -f "%e" -o "$OUT/prof-time" env LD_PRELOAD="$LIB" GOMEM_PROFILE_RATE=$rate \
        "$OUT/bin/$name" $args >/dev/null 2>&1
      echo "$name $mode $(cat "$OUT/prof-time")" >>"$RES"
    done
  done
done < <(grep -v '^#' "$BENCH/workloads.list" | grep '|')
python3 - "$RES" "$ROOT/bench/results/prof.md" "$RUNS" <<'PY'
import sys, statistics as st, datetime, os, math
res, out, n = sys.argv[1:4]
t = {}
for line in open(res):
    w, m, v = line.split()
    t.setdefault((w, m), []).append(float(v))
names = []
for (w, m) in t:
    if w not in names: names.append(w)
ratios = []
with open(out, 'w') as o:
    o.write('# Heap profile sampling: what it costs malloc\n\n')
    o.write(f'- date: {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC; {n} interleaved runs, medians; '
            f'{os.cpu_count()} CPUs; command: `bench/prof.sh --runs {n}`\n')
    o.write('- gomem through LD_PRELOAD; sampling off (GOMEM_PROFILE_RATE=0) and on at Go\'s rate '
            '(524288 bytes); the malloc workloads of bench/workloads.list, full arguments\n\n')
    o.write('| workload | off (s) | on (s) | on / off |\n|---|---:|---:|---:|\n')
    for w in names:
        a, b = st.median(t[w, 'off']), st.median(t[w, 'on'])
        ratios.append(b / a)
        o.write(f'| {w} | {a:.3f} | {b:.3f} | {b / a:.3f}x |\n')
    g = math.exp(sum(map(math.log, ratios)) / len(ratios))
    o.write(f'\nGeometric mean: sampling on costs {g:.3f}x the time with it off.\n')
print(open(out).read())
PY
