#!/bin/sh
# demo.sh BUILD_DIR: gomem's main demonstration. A real program (python3)
# runs with gomem as its malloc, through LD_PRELOAD, and gomem prints its
# statistics at exit (GOMEM_STATS=1). PYTHONMALLOC=malloc sends every Python
# object to malloc instead of Python's own small-object arenas. Then a C
# program uses gomem's garbage collector (examples/gc_tree.c), tracing each
# collection (GOMEM_GCTRACE=1).
set -e
build=${1:-build}
lib=$(cd "$build" && pwd)/libgomem.so
[ -f "$lib" ] || { echo "demo: $lib not built" >&2; exit 1; }
# Prefer the system interpreter: a version-manager shim would be a shell script.
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3) || { echo "demo: python3 is needed" >&2; exit 1; }

echo "== python3 running on gomem (LD_PRELOAD=$lib)"
PYTHONMALLOC=malloc GOMEM_STATS=1 LD_PRELOAD="$lib" "$py" - <<'PY'
import json, random, threading
random.seed(1)
# Dicts, lists, strings and big integers: millions of small allocations.
data = [{"id": i, "name": "item%d" % i, "tags": [str(j) for j in range(i % 7)]}
        for i in range(200000)]
text = json.dumps(data)
back = json.loads(text)
assert back == data
fact = 1
for i in range(2, 1000):
    fact *= i
# Threads allocating and freeing concurrently.
def work(n):
    s = {}
    for i in range(100000):
        s[i % 5000] = "x" * (i % 100)
results = [threading.Thread(target=work, args=(k,)) for k in range(4)]
[t.start() for t in results]
[t.join() for t in results]
print("python3: %d records, json %d bytes, 999! has %d digits" % (len(back), len(text), len(str(fact))))
PY

echo
echo "== a C program on gomem's garbage collector (examples/gc_tree.c, last collections traced)"
GOMEM_GCTRACE=1 "$build/examples/gc_tree" 2>"$build/gc_tree.trace"
tail -n 3 "$build/gc_tree.trace"
