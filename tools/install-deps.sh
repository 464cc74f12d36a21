#!/bin/sh
# install-deps.sh test|bench: installs the Debian packages gomem's tests or
# benchmarks need, when they are missing and we are root; otherwise says what
# to install.
set -e
case "$1" in
  test) pkgs="cmake gcc g++ make python3 perl sqlite3 git valgrind w3m poke neko ecl guile-3.0 nix-bin stalin libatomic-ops-dev" ;;
  bench) pkgs="libmimalloc-dev libjemalloc-dev libgoogle-perftools-dev libgc-dev golang-go gnuplot-nox time" ;;
  *) echo "usage: $0 test|bench" >&2; exit 2 ;;
esac
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
  echo "installing:$missing"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
else
  echo "missing packages:$missing (install with: sudo apt-get install$missing)" >&2
  [ "$1" = bench ] || exit 1
fi
