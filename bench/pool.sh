#!/usr/bin/env bash
# pool.sh: what gm_pool (Go's sync.Pool) saves, measured with bench/pool.c:
# a get/put pair against gm_alloc and against malloc+free (all gomem's), and
# a server-like run (per-request 32 KiB scratch buffers, two threads) with
# and without a pool: time, GC cycles, buffers allocated. Interleaved runs,
# medians, ratios; writes bench/results/pool.md.
#
#   bench/pool.sh [--runs N]       (default 5; needs build/libgomem.so)
set -eu -o pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
RUNS=5
[ "${1:-}" = --runs ] && RUNS=${2:?}
LIB=${GOMEM_LIB:-$ROOT/build/libgomem.so}
OUT=${BENCH_OUT:-$BENCH/out}/pool
mkdir -p "$OUT"
[ -f "$LIB" ] || { echo "pool.sh: $LIB missing (make all)" >&2; exit 2; }
gcc -O2 -I"$ROOT/include" "$BENCH/pool.c" "$LIB" -Wl,-rpath,"$(dirname "$LIB")" -lpthread \
  -o "$OUT/pool"
: >"$OUT/runs.txt"
for ((r = 0; r < RUNS; r++)); do
  for m in pair alloc malloc; do "$OUT/pool" $m 20000000 >>"$OUT/runs.txt"; done
  for p in 0 1; do echo "p$p $("$OUT/pool" server 100000 $p)" >>"$OUT/runs.txt"; done
done
python3 - "$OUT/runs.txt" "$ROOT/bench/results/pool.md" "$RUNS" <<'PY'
import sys, statistics as st, datetime, os
runs, out, n = sys.argv[1], sys.argv[2], sys.argv[3]
v = {}
for line in open(runs):
    f = line.split()
    if f[0] in ('pair', 'alloc', 'malloc'):
        v.setdefault(f[0], []).append(float(f[1]))
    else:
        v.setdefault(f[0], []).append(tuple(float(x) for x in f[2:5]))
m = {k: st.median(x) for k, x in v.items() if k in ('pair', 'alloc', 'malloc')}
srv = {k: tuple(st.median(c) for c in zip(*v[k])) for k in ('p0', 'p1')}
with open(out, 'w') as o:
    o.write('# gm_pool: what a pool saves\n\n')
    o.write(f'- date: {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC; {n} interleaved runs, medians; '
            f'{os.cpu_count()} CPUs; command: `bench/pool.sh --runs {n}`\n\n')
    o.write('| 256-byte object | ns per operation | pool pair / this |\n|---|---:|---:|\n')
    for k, name in (('pair', 'gm_pool_get + gm_pool_put'), ('alloc', 'gm_alloc (collected)'),
                    ('malloc', 'malloc + free')):
        o.write(f'| {name} | {m[k]:.2f} | {m["pair"] / m[k]:.2f}x |\n')
    o.write('\n| server, 2 x 100,000 requests, 32 KiB scratch each | time (s) | GC cycles | buffers allocated |\n')
    o.write('|---|---:|---:|---:|\n')
    for k, name in (('p0', 'gm_alloc_noscan per request'), ('p1', 'gm_pool')):
        t, c, b = srv[k]
        o.write(f'| {name} | {t:.3f} | {c:.0f} | {b:.0f} |\n')
    o.write(f'\nWith the pool: {srv["p1"][0] / srv["p0"][0]:.2f}x the time, '
            f'{srv["p0"][1] - srv["p1"][1]:.0f} fewer collections, '
            f'{srv["p0"][2] - srv["p1"][2]:.0f} fewer buffers allocated.\n')
print(open(out).read())
PY
