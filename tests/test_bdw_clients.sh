#!/bin/bash
# test_bdw_clients.sh LIBGC_SO: programs written for Boehm GC, run on gomem's
# libgc.so.1.
#
#   1. bdwgc 8.2.2's own test programs (huge_test, realloc_test, middle,
#      threadkey_test, initsecondarythread, subthread_create, gctest with
#      threads, fork and long links, staticrootstest), compiled against bdwgc's headers (BDWGC_DIR, default
#      ../shared/bdwgc-8.2.2 beside the repository; never part of it) and
#      linked against gomem's library: they test the binary interface. Each
#      must exit 0. Skipped when the sources are absent.
#   2. Debian's clients of libgc1 (w3m, poke, neko, ecl, guile; installed by
#      tools/install-deps.sh test), unmodified binaries, with LD_LIBRARY_PATH
#      pointing at gomem's library: each must print exactly what it prints on
#      Debian's libgc.so.1, and gomem's library must really be the one loaded
#      (ldd) and must collect (GOMEM_GCTRACE lines). Skipped when absent.
# Exit 0 when every case that ran passed, 77 when none could run, 1 otherwise.
set -u
LIB=$(readlink -f "$1")
LIBDIR=$(dirname "$LIB")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BDWGC_DIR=${BDWGC_DIR:-$ROOT/../shared/bdwgc-8.2.2}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
pass=0 fail=0 skip=0

say() { printf '%-60s %s\n' "$1" "$2"; }
ok() { say "$1" ok; pass=$((pass + 1)); }
bad() { say "$1" FAIL; echo "  $2"; fail=$((fail + 1)); }
skipped() { say "$1" "SKIP ($2)"; skip=$((skip + 1)); }

# --- 1. bdwgc's tests -------------------------------------------------------
bdw_cc() { # name, sources...: build against bdwgc's headers and our library
  local name=$1; shift
  gcc -O1 -DGC_THREADS -I"$BDWGC_DIR/include" -o "$WORK/$name" "$@" -L"$LIBDIR" -lgc -lpthread \
    -Wl,-rpath,"$LIBDIR" -w >"$WORK/$name.cc" 2>&1
}
if [ -d "$BDWGC_DIR/tests" ]; then
  have_aops=1
  echo '#include <atomic_ops.h>' | gcc -E -x c - >/dev/null 2>&1 || have_aops=0
  for t in huge_test realloc_test middle threadkey_test initsecondarythread subthread_create; do
    if [ $t = subthread_create ] && [ $have_aops = 0 ]; then
      skipped "bdwgc $t" "no atomic_ops.h (libatomic-ops-dev)"
      continue
    fi
    if ! bdw_cc $t "$BDWGC_DIR/tests/$t.c"; then
      bad "bdwgc $t" "does not build: $(grep -m3 -E 'error|undefined' "$WORK/$t.cc" | tr '\n' ' ')"
      continue
    fi
    if timeout 120 "$WORK/$t" >"$WORK/$t.out" 2>&1; then ok "bdwgc $t"
    else bad "bdwgc $t" "exit $?: $(tail -c 300 "$WORK/$t.out" | tr '\n' ' ')"; fi
  done
  # gctest (tests/test.c): threads, finalization, disappearing and long
  # links, typed objects, fork, sizes, setters and getters, heap bounds.
  if [ $have_aops = 0 ]; then
    skipped "bdwgc gctest" "no atomic_ops.h (libatomic-ops-dev)"
  elif ! bdw_cc gctest "$BDWGC_DIR/tests/test.c"; then
    bad "bdwgc gctest" "does not build: $(grep -m3 -E 'error|undefined' "$WORK/gctest.cc" | tr '\n' ' ')"
  elif timeout 300 "$WORK/gctest" >"$WORK/gctest.out" 2>&1 &&
    grep -q "Collector appears to work" "$WORK/gctest.out"; then
    ok "bdwgc gctest: $(grep -o 'Finalized [0-9/]* objects' "$WORK/gctest.out")"
  else
    bad "bdwgc gctest" "$(tail -c 400 "$WORK/gctest.out" | tr '\n' ' ')"
  fi
  # staticrootstest: roots in the data of a library, loaded at start.
  if gcc -O1 -shared -fPIC -I"$BDWGC_DIR/include" -o "$WORK/libstaticrootslib.so" \
      "$BDWGC_DIR/tests/staticrootslib.c" -L"$LIBDIR" -lgc -w 2>"$WORK/srl.cc" &&
    bdw_cc staticrootstest "$BDWGC_DIR/tests/staticrootstest.c" -L"$WORK" -lstaticrootslib \
      -Wl,-rpath,"$WORK"; then
    if timeout 120 "$WORK/staticrootstest" >"$WORK/srt.out" 2>&1; then ok "bdwgc staticrootstest"
    else bad "bdwgc staticrootstest" "exit $?: $(tail -c 300 "$WORK/srt.out" | tr '\n' ' ')"; fi
  else
    bad "bdwgc staticrootstest" "does not build: $(cat "$WORK/srl.cc" "$WORK/staticrootstest.cc" 2>/dev/null | grep -m3 -E 'error|undefined' | tr '\n' ' ')"
  fi
else
  skipped "bdwgc 8.2.2's test programs" "no $BDWGC_DIR/tests"
fi

# --- 2. Debian's clients ----------------------------------------------------
# client NAME CMD...: the same output on Debian's libgc and on gomem's.
client() {
  local name=$1; shift
  if ! LD_LIBRARY_PATH=$LIBDIR ldd "$(command -v "$1")" 2>/dev/null | grep -q "libgc.so.1 => $LIBDIR"; then
    bad "$name" "gomem's libgc.so.1 is not the one loaded"
    return
  fi
  "$@" >"$WORK/$name.ref" 2>&1 </dev/null
  local rc_ref=$?
  LD_LIBRARY_PATH=$LIBDIR GOMEM_GCTRACE=1 "$@" >"$WORK/$name.out" 2>"$WORK/$name.trace" </dev/null
  local rc=$?
  local gcs
  gcs=$(grep -c '^gc ' "$WORK/$name.trace")
  grep -v '^gc ' "$WORK/$name.trace" >>"$WORK/$name.out"
  if [ $rc != $rc_ref ] || ! cmp -s "$WORK/$name.ref" "$WORK/$name.out"; then
    bad "$name" "exit $rc (Boehm GC: $rc_ref); output differs: $(diff "$WORK/$name.ref" "$WORK/$name.out" | head -5 | tr '\n' ' ')"
  elif [ "$gcs" -lt 2 ]; then
    bad "$name" "only $gcs collections"
  else
    ok "$name: same output as on Boehm GC ($gcs collections)"
  fi
}
if command -v w3m >/dev/null; then
  python3 - "$WORK/big.html" <<'EOF'
import sys
rows = ''.join('<tr><td>%d</td><td><a href="x%d.html">link %d</a></td><td>%s</td></tr>\n'
               % (i, i, i, 'word ' * (i % 7)) for i in range(4000))
open(sys.argv[1], 'w').write('<html><body><h1>T</h1><table>' + rows + '</table></body></html>')
EOF
  client w3m w3m -dump -cols 120 "$WORK/big.html"
else
  skipped w3m "not installed"
fi
if command -v poke >/dev/null; then
  cat >"$WORK/t.pk" <<'EOF'
var total = 0;
for (var i = 0; i < 20000; i++) {
  var a = [i, i+1, i+2, i+3];
  var s = format ("%v-%v", i, a[2]);
  total = total + a[3] + s'length;
}
print (format ("total %v\n", total));
EOF
  client poke poke -q -L "$WORK/t.pk"
else
  skipped poke "not installed"
fi
if command -v neko >/dev/null && command -v nekoc >/dev/null; then
  cat >"$WORK/t.neko" <<'EOF'
var total = 0;
var i = 0;
while i < 200000 {
  var a = $array(i, i + 1, i + 2);
  var o = $new(null);
  o.x = a;
  var s = $string(i) + "-" + $string(a[2]);
  total = total + $ssize(s);
  i = i + 1;
}
$print("total ", total, "\n");
EOF
  (cd "$WORK" && nekoc t.neko >/dev/null 2>&1) && client neko neko "$WORK/t.n" ||
    bad neko "nekoc failed"
else
  skipped neko "not installed"
fi

if command -v ecl >/dev/null; then
  # Lists, arrays and strings as garbage, a weak hash table, a thread.
  cat >"$WORK/t.lsp" <<'EOF'
(defun make-garbage (n)
  (let ((acc 0))
    (dotimes (i n)
      (let ((l (make-list 20 :initial-element i))
            (v (make-array 50 :initial-element i)))
        (incf acc (+ (length l) (aref v 10)))))
    acc))
(defvar *weak* (make-hash-table :weakness :key))
(dotimes (i 1000) (setf (gethash (list i) *weak*) i))
(si::gc t)
(format t "garbage ~a~%" (make-garbage 200000))
(let ((th (mp:process-run-function 'worker (lambda () (make-garbage 100000)))))
  (mp:process-join th))
(format t "threads done ~a~%" (make-garbage 1000))
(format t "strings ~a~%" (length (with-output-to-string (s) (dotimes (i 20000) (format s "~a," i)))))
EOF
  client ecl ecl --norc --shell "$WORK/t.lsp"
else
  skipped ecl "not installed"
fi

if command -v guile >/dev/null; then
  # A thread, a weak table, a guardian, and deep recursion whose values live
  # only on Guile's VM stack (mmap'ed: found by its mark procedure alone).
  cat >"$WORK/t.scm" <<'EOF'
(use-modules (ice-9 threads))
(define (make-garbage n)
  (let loop ((i 0) (acc 0))
    (if (= i n) acc
        (let ((l (make-list 20 i)) (v (make-vector 50 i)))
          (loop (+ i 1) (+ acc (length l) (vector-ref v 10)))))))
(define weak (make-weak-key-hash-table))
(do ((i 0 (+ i 1))) ((= i 1000)) (hash-set! weak (list i) i))
(gc)
(display (list 'garbage (make-garbage 200000))) (newline)
(define g (make-guardian))
(do ((i 0 (+ i 1))) ((= i 100)) (g (list i)))
(gc)
(define th (call-with-new-thread (lambda () (make-garbage 100000))))
(display (list 'thread (join-thread th))) (newline)
(define (deep n)
  (if (= n 0) 0
      (let* ((x (make-list 10 n)) (y (make-vector 20 x)) (z (deep (- n 1))))
        (when (= 0 (modulo n 5000)) (gc))
        (+ z (length (vector-ref y 19)) (car x)))))
(display (list 'deep (deep 100000))) (newline)
EOF
  client guile guile --no-auto-compile "$WORK/t.scm"
else
  skipped guile "not installed"
fi

echo "$pass passed, $fail failed, $skip skipped"
[ $fail -gt 0 ] && exit 1
[ $pass -eq 0 ] && exit 77
exit 0
