#!/bin/sh
# install-deps.sh test|bench: installs the Debian packages gomem's tests or
# benchmarks need, when they are missing and we are root; otherwise says what
# to install.
set -e
case "$1" in
  test) pkgs="cmake gcc g++ make python3 perl sqlite3 git valgrind w3m poke neko ecl guile-3.0 nix-bin stalin crystal libatomic-ops-dev" ;;
  bench) pkgs="libmimalloc-dev libjemalloc-dev libgoogle-perftools-dev libgc-dev golang-go gnuplot-nox time libboost-context-dev" ;;
  *) echo "usage: $0 test|bench" >&2; exit 2 ;;
esac
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
  :
elif [ "$(id -u)" = 0 ]; then
  echo "installing:$missing"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
else
  echo "missing packages:$missing (install with: sudo apt-get install$missing)" >&2
  [ "$1" = bench ] || exit 1
fi

# The test suite also runs bdwgc 8.2.2's own test programs against gomem's
# libgc.so.1 (tests/test_bdw_clients.sh). Their source is not ours: it is
# downloaded here (Debian's source package of libgc, through a private apt
# list with a deb-src line) into a cache outside the repository, when
# missing, and the tests report themselves skipped without it.
if [ "$1" = test ] && [ "$(id -u)" = 0 ]; then
  cache=${GOMEM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gomem}
  if [ ! -d "$cache/bdwgc-8.2.2/tests" ] && command -v apt-get >/dev/null; then
    tmp=$(mktemp -d)
    mkdir -p "$tmp/lists/partial" "$tmp/get" "$cache"
    echo "deb-src http://deb.debian.org/debian bookworm main" >"$tmp/src.list"
    opts="-o Dir::Etc::SourceList=$tmp/src.list -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists=$tmp/lists"
    if apt-get $opts update >/dev/null 2>&1 &&
      (cd "$tmp/get" && apt-get $opts source --download-only libgc=1:8.2.2-3 >/dev/null 2>&1) &&
      tar xzf "$tmp/get/libgc_8.2.2.orig.tar.gz" -C "$tmp" gc-8.2.2/include gc-8.2.2/tests; then
      mv "$tmp/gc-8.2.2" "$cache/bdwgc-8.2.2"
      echo "bdwgc 8.2.2's sources (for its test programs) in $cache/bdwgc-8.2.2"
    else
      echo "could not download bdwgc 8.2.2's sources: its test programs will be skipped"
    fi
    rm -rf "$tmp"
  fi
fi
