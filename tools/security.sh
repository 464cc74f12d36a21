#!/bin/bash
# tools/security.sh: mimalloc-bench's security suite (116 misuse programs)
# under glibc's malloc and under gomem builds; prints how many each catches.
#
#   tools/security.sh [LIB...]       (default: build/libgomem.so, and
#                                     build-secure/libgomem-secure.so if built)
#
# The suite's sources come from $GOMEM_SECURITY_SUITE (default
# ../shared/mimalloc-bench-security beside the project); without them the
# run reports SKIP and exits 77. A program "catches" a misuse when it does not
# print NOT_CAUGHT (it aborted, crashed, or refused the request), as
# mimalloc-bench counts. Each program gets 20 s (zero_on_malloc_large writes
# 1 GiB). Per-program results go to build-security/results.tsv.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SUITE=${GOMEM_SECURITY_SUITE:-$ROOT/../shared/mimalloc-bench-security}
OUT=$ROOT/build-security
if [ ! -f "$SUITE/CMakeLists.txt" ]; then
  echo "security: SKIP (no suite at $SUITE; set GOMEM_SECURITY_SUITE)"
  exit 77
fi
LIBS=()
for l in "$@"; do LIBS+=("$(cd "$(dirname "$l")" && pwd)/$(basename "$l")"); done
if [ ${#LIBS[@]} -eq 0 ]; then
  LIBS=("$ROOT/build/libgomem.so")
  [ -f "$ROOT/build-secure/libgomem-secure.so" ] && LIBS+=("$ROOT/build-secure/libgomem-secure.so")
fi
mkdir -p "$OUT"
cmake -S "$SUITE" -B "$OUT/suite" -DCMAKE_BUILD_TYPE=Release >"$OUT/cmake.log" 2>&1 &&
  cmake --build "$OUT/suite" -j"$(nproc)" >"$OUT/build.log" 2>&1 ||
  { echo "security: the suite did not build (see $OUT/*.log)"; exit 1; }
mapfile -t PROGS < <(find "$OUT/suite" -maxdepth 1 -type f -executable -printf '%f\n' | sort)

# caught PRELOAD PROG: 0 if the misuse was caught
caught() {
  { (cd "$OUT" && LD_PRELOAD=$1 timeout -k 2 20 "$OUT/suite/$2" </dev/null) >"$OUT/out.txt"; } 2>/dev/null
  ! grep -aq NOT_CAUGHT "$OUT/out.txt"
}

declare -A N
printf 'program\tglibc' >"$OUT/results.tsv"
for l in "${LIBS[@]}"; do printf '\t%s' "$(basename "$l")" >>"$OUT/results.tsv"; done
echo >>"$OUT/results.tsv"
for p in "${PROGS[@]}"; do
  line=$p
  if caught "" "$p"; then line+=$'\tcaught'; N[glibc]=$((${N[glibc]:-0} + 1)); else line+=$'\t-'; fi
  for l in "${LIBS[@]}"; do
    if caught "$l" "$p"; then line+=$'\tcaught'; N[$l]=$((${N[$l]:-0} + 1)); else line+=$'\t-'; fi
  done
  echo "$line" >>"$OUT/results.tsv"
done
echo "security: ${#PROGS[@]} misuse programs (per-program results: $OUT/results.tsv)"
printf '  %-40s %3d caught\n' glibc "${N[glibc]:-0}"
for l in "${LIBS[@]}"; do printf '  %-40s %3d caught\n' "$(basename "$l")" "${N[$l]:-0}"; done
