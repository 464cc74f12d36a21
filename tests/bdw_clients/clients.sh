# clients.sh: Debian's clients of libgc1 and what gomem runs them on; sourced
# by tests/test_bdw_clients.sh (same output on both libraries) and
# bench/bdw.sh (time and peak RSS on both).
#
#   bdw_clients WORK   prepares the inputs in WORK and prints one line per
#                      installed client: NAME|BINARY|COMMAND, where BINARY is
#                      the ELF file linked to libgc.so.1 and COMMAND runs
#                      (sh -c) in WORK. Each collects many times on either
#                      library.
BDW_CLIENTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

bdw_clients() {
  local work=$1 d=$BDW_CLIENTS_DIR
  cp "$d"/loop.pk "$d"/loop.neko "$d"/garbage.lsp "$d"/garbage.scm "$d"/trees.sc "$d"/fibers.cr \
    "$work"/
  if command -v w3m >/dev/null; then
    python3 "$d/page.py" "$work/page.html"
    echo "w3m|$(command -v w3m)|w3m -dump -cols 120 page.html"
  fi
  command -v poke >/dev/null && echo "poke|$(command -v poke)|poke -q -L loop.pk </dev/null"
  if command -v neko >/dev/null && command -v nekoc >/dev/null &&
    (cd "$work" && nekoc loop.neko >/dev/null 2>&1); then
    echo "neko|$(command -v neko)|neko loop.n"
  fi
  command -v ecl >/dev/null && echo "ecl|$(command -v ecl)|ecl --norc --shell garbage.lsp"
  command -v guile >/dev/null &&
    echo "guile|$(readlink -f "$(command -v guile)")|guile --no-auto-compile garbage.scm"
  if command -v nix-instantiate >/dev/null; then
    # A large list of attribute sets, evaluated strictly, from a 1 MiB heap.
    local e='let l = builtins.genList (i: { a = i; b = toString i; c = [ i (i * 2) ]; }) 400000;'
    e="$e in builtins.foldl' (acc: x: acc + x.a + builtins.stringLength x.b + builtins.elemAt x.c 1) 0 l"
    printf '%s\n' "$e" >"$work/nix.expr"
    echo "nix|$(command -v nix-instantiate)|GC_INITIAL_HEAP_SIZE=1M nix-instantiate --eval --strict --readonly-mode -E \"\$(cat nix.expr)\""
  fi
  if command -v stalin >/dev/null && [ -x /usr/lib/stalin/stalin ]; then
    # The compiler collects while it compiles; the program it makes links
    # libgc.so.1 too (made here, with the system's library).
    (cd "$work" && stalin -On -copt -O2 trees >/dev/null 2>&1)
    echo "stalin|/usr/lib/stalin/stalin|stalin -On -copt -O2 trees"
    [ -x "$work/trees" ] && echo "stalin-program|$work/trees|./trees"
  fi
  if command -v crystal >/dev/null; then
    # Programs Crystal compiles link libgc.so.1; its runtime runs fibers on
    # stacks it maps itself and declares the running one's end
    # (GC_stackbottom; GC_set_stackbottom in multi-threaded programs).
    (cd "$work" && export CRYSTAL_CACHE_DIR="$work/crystal-cache" &&
      crystal build fibers.cr -o fibers >/dev/null 2>&1 &&
      crystal build -Dpreview_mt fibers.cr -o fibers-mt >/dev/null 2>&1)
    [ -x "$work/fibers" ] && echo "crystal-fibers|$work/fibers|./fibers"
    [ -x "$work/fibers-mt" ] && echo "crystal-fibers-mt|$work/fibers-mt|CRYSTAL_WORKERS=2 ./fibers-mt"
  fi
  return 0
}
