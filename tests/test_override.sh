#!/usr/bin/env bash
# test_override.sh LIBGOMEM_SO OVERRIDE_CXX
#
# The drop-in test: real programs run with and without LD_PRELOAD=libgomem.so
# must produce byte-identical stdout and stderr and the same exit status.
# Workloads: python3 (dicts, lists, big ints, json, sorting, threads), perl
# (hashes, regex, sort), sqlite3 (100k rows in a transaction, aggregates),
# git (commits, log, gc), sort/awk on a generated file, and override_cxx (the
# C++ program next to this script). Each workload runs in a fresh directory,
# and the run without gomem must succeed (else the workload itself is broken).
# For every program a probe run with GOMEM_STATS=1 checks that gomem really
# is loaded into it ("gomem statistics" on stderr at exit).
#
# A program that is not installed is skipped (python3 is required). Prints one
# line per check and "N passed, M failed" at the end; exits 1 on any failure.
set -u

if [ $# -ne 2 ]; then
  echo "usage: $0 LIBGOMEM_SO OVERRIDE_CXX" >&2
  exit 2
fi
lib=$1
cxx=$2
passed=0
failed=0

ok() {
  printf '%-28s ok\n' "$1"
  passed=$((passed + 1))
}

fail() {
  printf '%-28s FAIL: %s\n' "$1" "$2"
  failed=$((failed + 1))
}

skip() {
  printf '%-28s skipped: %s\n' "$1" "$2"
}

finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit $?
}

case $lib in /*) ;; *) lib=$PWD/$lib ;; esac
case $cxx in /*) ;; *) cxx=$PWD/$cxx ;; esac
if [ ! -f "$lib" ]; then
  fail "libgomem.so" "not found: $lib"
  finish
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gomem-override.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

TIMEOUT=""
if command -v timeout >/dev/null 2>&1; then
  TIMEOUT="timeout 300"
fi

# Deterministic behaviour of the interpreters and tools, in both runs.
export PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1 PERL_HASH_SEED=0 PERL_PERTURB_KEYS=0
export LC_ALL=C TZ=UTC
unset GOMEM_STATS

# run MODE NAME SNIPPET: runs the shell snippet in a fresh $tmp/run, with
# (MODE=gomem) or without (MODE=plain) the preload. Output goes to
# $tmp/NAME.MODE.{out,err,rc}.
run() {
  local mode=$1 name=$2 snippet=$3
  rm -rf "$tmp/run"
  mkdir "$tmp/run"
  if [ "$mode" = gomem ]; then
    (cd "$tmp/run" && LD_PRELOAD="$lib" $TIMEOUT sh -c "$snippet") \
      >"$tmp/$name.$mode.out" 2>"$tmp/$name.$mode.err"
  else
    (cd "$tmp/run" && env -u LD_PRELOAD $TIMEOUT sh -c "$snippet") \
      >"$tmp/$name.$mode.out" 2>"$tmp/$name.$mode.err"
  fi
  echo $? >"$tmp/$name.$mode.rc"
}

show_diff() {
  diff "$1" "$2" | head -20 | sed 's/^/    /'
}

# compare NAME SNIPPET: the plain and preloaded runs must agree exactly.
compare() {
  local name=$1 snippet=$2
  run plain "$name" "$snippet"
  run gomem "$name" "$snippet"
  local p="$tmp/$name.plain" g="$tmp/$name.gomem"
  local prc grc
  prc=$(cat "$p.rc")
  grc=$(cat "$g.rc")
  if [ "$prc" != 0 ]; then
    fail "$name" "workload failed without gomem (status $prc)"
    sed 's/^/    /' "$p.err" | head -10
    return
  fi
  if [ ! -s "$p.out" ]; then
    fail "$name" "workload printed nothing"
    return
  fi
  if [ "$grc" != "$prc" ]; then
    fail "$name" "exit status $grc with gomem, $prc without"
    sed 's/^/    /' "$g.err" | head -10
    return
  fi
  if ! cmp -s "$p.out" "$g.out"; then
    fail "$name" "stdout differs with gomem"
    show_diff "$p.out" "$g.out"
    return
  fi
  if ! cmp -s "$p.err" "$g.err"; then
    fail "$name" "stderr differs with gomem"
    show_diff "$p.err" "$g.err"
    return
  fi
  ok "$name"
}

# probe NAME CMD...: gomem is loaded into CMD (GOMEM_STATS=1 report at exit).
probe() {
  local name=$1
  shift
  if LD_PRELOAD="$lib" GOMEM_STATS=1 $TIMEOUT "$@" >/dev/null 2>"$tmp/probe.err" &&
    grep -q "gomem statistics" "$tmp/probe.err"; then
    ok "$name (gomem loaded)"
  else
    fail "$name (gomem loaded)" "no gomem statistics on stderr"
    head -5 "$tmp/probe.err" | sed 's/^/    /'
  fi
}

# probe_maps NAME CMD...: CMD prints its own /proc/self/maps, which must
# list libgomem (for programs that close stderr before exit, where the
# GOMEM_STATS report cannot appear).
probe_maps() {
  local name=$1
  shift
  if LD_PRELOAD="$lib" $TIMEOUT "$@" 2>&1 | grep -q libgomem; then
    ok "$name (gomem loaded)"
  else
    fail "$name (gomem loaded)" "libgomem not in its /proc/self/maps"
  fi
}

have() {
  command -v "$1" >/dev/null 2>&1
}

# ---------------------------------------------------------------------------
# python3

cat >"$tmp/work.py" <<'PY'
import collections, hashlib, json, queue, random, re, threading
from fractions import Fraction
from decimal import Decimal, getcontext

random.seed(42)

# dicts
d = {}
for i in range(200000):
    k = "k%d" % (i % 50000)
    d[k] = d.get(k, 0) + i
print("dict", len(d), sum(d.values()), list(d.items())[:3])
for k in list(d)[::2]:
    del d[k]
d.update({("t", i): [i] * (i % 5) for i in range(30000)})
print("dict2", len(d), sum(len(v) for v in d.values() if isinstance(v, list)))

# lists and sorting
xs = [random.randint(0, 10**9) for _ in range(200000)]
xs.sort()
print("sort", xs[0], xs[len(xs) // 2], xs[-1])
words = ["".join(random.choice("abcdefghij") for _ in range(random.randint(1, 12)))
         for _ in range(50000)]
words.sort(key=lambda w: (len(w), w))
print("words", words[:3], words[-3:], len(set(words)))
pairs = sorted(((i * 7919) % 1000, -i) for i in range(100000))
print("pairs", pairs[:2], pairs[-2:])

# big integers and exact arithmetic
f = 1
for i in range(1, 3000):
    f *= i
print("fact", len(hex(f)), f % (10**20 + 39), str(f % 10**1000)[:50])
print("pow", pow(3, 100000, 10**50 + 151))
a, b = 0, 1
for _ in range(20000):
    a, b = b, a + b
print("fib", len(hex(a)), a % 1000000007)
print("frac", sum(Fraction(1, k) for k in range(1, 300)).denominator % 1000003)
getcontext().prec = 200
print("dec", str(Decimal(2).sqrt())[:60])

# json round trip
obj = {"items": [{"id": i, "name": "item%d" % i, "tags": [str(j) for j in range(i % 10)],
                  "val": i * 1.5, "sub": {"x": i % 7, "y": None}} for i in range(20000)]}
s = json.dumps(obj, sort_keys=True)
back = json.loads(s)
print("json", len(s), hashlib.sha256(s.encode()).hexdigest(), back == obj)

# regex
text = " ".join("word%d num=%d id:%05d" % (i, i * 3, i) for i in range(20000))
nums = re.findall(r"num=(\d+)", text)
print("re", len(nums), nums[-1], len(re.sub(r"id:(\d+)", r"ID<\1>", text)))

# threads: workers filling their own slots, and a producer/consumer queue
results = [None] * 8
def work(k):
    acc = collections.Counter()
    for i in range(20000):
        acc[(i * (k + 1)) % 97] += 1
    results[k] = sorted(acc.items())[:4]
ts = [threading.Thread(target=work, args=(k,)) for k in range(8)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print("threads", results)

q = queue.Queue()
total = [0]
lock = threading.Lock()
def consumer():
    while True:
        item = q.get()
        if item is None:
            break
        with lock:
            total[0] += sum(item)
def producer(p):
    for i in range(5000):
        q.put([p, i, i * i])
cs = [threading.Thread(target=consumer) for _ in range(3)]
ps = [threading.Thread(target=producer, args=(p,)) for p in range(4)]
for t in cs + ps:
    t.start()
for t in ps:
    t.join()
for _ in cs:
    q.put(None)
for t in cs:
    t.join()
print("queue", total[0])

# reference cycles for the collector
import gc
class Node:
    pass
for i in range(20000):
    x, y = Node(), Node()
    x.other, y.other = y, x
    x.payload = [i] * 10
gc.collect()
print("done")
PY

if have python3; then
  compare python3 "python3 '$tmp/work.py'"
  probe python3 python3 -c 'print(1)'
  # The full workload on gomem with the exit report: same stdout, report on stderr.
  rm -rf "$tmp/run" && mkdir "$tmp/run"
  (cd "$tmp/run" && LD_PRELOAD="$lib" GOMEM_STATS=1 $TIMEOUT python3 "$tmp/work.py") \
    >"$tmp/py.stats.out" 2>"$tmp/py.stats.err"
  if cmp -s "$tmp/py.stats.out" "$tmp/python3.plain.out" &&
    grep -q "gomem statistics" "$tmp/py.stats.err" && grep -q "mallocs" "$tmp/py.stats.err"; then
    ok "python3 GOMEM_STATS=1"
  else
    fail "python3 GOMEM_STATS=1" "stdout differs or no statistics report on stderr"
    head -5 "$tmp/py.stats.err" | sed 's/^/    /'
  fi
else
  fail python3 "python3 is required but not installed"
fi

# ---------------------------------------------------------------------------
# perl

cat >"$tmp/work.pl" <<'PL'
use strict;
use warnings;

my %h;
$h{"k" . ($_ % 40000)} += $_ for 0 .. 199999;
my @keys = sort keys %h;
my $sum = 0;
$sum += $_ for values %h;
print scalar(@keys), " @keys[0..4] $sum\n";
delete $h{$_} for grep { /7$/ } @keys;
print scalar(keys %h), "\n";

my $text = join " ", map { "word$_ num=" . ($_ * 3) . " id:" . sprintf("%05d", $_) } 0 .. 20000;
my @nums = $text =~ /num=(\d+)/g;
print scalar(@nums), " $nums[-1]\n";
(my $t2 = $text) =~ s/id:(\d+)/ID<$1>/g;
print length($t2), " ", substr($t2, 1000, 40), "\n";
my %count;
$count{$1}++ while $text =~ /\b(\w)\w*\b/g;
print join(",", map { "$_=$count{$_}" } sort keys %count), "\n";

my @r;
my $x = 12345;
for (1 .. 100000) {
  $x = ($x * 1103515245 + 12345) % 2147483648;
  push @r, $x;
}
my @s = sort { $a <=> $b } @r;
print "$s[0] $s[50000] $s[-1]\n";
my @w = sort { length($a) <=> length($b) or $a cmp $b } map { sprintf("%x", $_) } @r[0 .. 9999];
print "@w[0..4] $w[-1]\n";
my $big = join ",", @s;
my @back = split /,/, $big;
print scalar(@back), " ", length($big), "\n";

my %tree;
$tree{ $_ % 100 }{ $_ % 7 }[ $_ % 3 ] .= "x" for 0 .. 50000;
my $n = 0;
for my $a (sort { $a <=> $b } keys %tree) {
  for my $b (sort { $a <=> $b } keys %{ $tree{$a} }) {
    $n += length($_ // "") for @{ $tree{$a}{$b} };
  }
}
print "$n\n";
PL

if have perl; then
  compare perl "perl '$tmp/work.pl'"
  probe perl perl -e 'print "1\n"'
else
  skip perl "not installed"
fi

# ---------------------------------------------------------------------------
# sqlite3

cat >"$tmp/work.sql" <<'SQL'
CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, val REAL);
BEGIN;
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000)
INSERT INTO t(grp, name, val)
  SELECT x % 97, 'name' || (x * 7919 % 100003), (x * 31 % 1000) / 8.0 FROM c;
COMMIT;
CREATE INDEX t_grp ON t(grp);
CREATE INDEX t_name ON t(name);
SELECT count(*), sum(grp), min(name), max(name), printf('%.4f', avg(val)) FROM t;
SELECT grp, count(*), printf('%.3f', sum(val)) FROM t GROUP BY grp ORDER BY grp LIMIT 10;
SELECT substr(name, 1, 6) AS p, count(*) AS c FROM t GROUP BY p ORDER BY c DESC, p LIMIT 5;
SELECT count(DISTINCT name) FROM t;
SELECT group_concat(id, ',') FROM (SELECT id FROM t WHERE grp = 5 ORDER BY val DESC, id LIMIT 20);
UPDATE t SET val = val * 2 WHERE grp < 10;
DELETE FROM t WHERE id % 3 = 0;
SELECT count(*), printf('%.2f', sum(val)) FROM t;
SELECT a.grp, count(*) FROM t a JOIN t b ON a.id = b.id + 1 WHERE a.grp = b.grp + 1
  GROUP BY a.grp ORDER BY a.grp LIMIT 5;
VACUUM;
SELECT count(*), max(id) FROM t;
SQL

if have sqlite3; then
  # The second table comes from a generated script of 100k INSERTs.
  compare sqlite3 "awk 'BEGIN { print \"BEGIN;\"; print \"CREATE TABLE g(k INTEGER, s TEXT);\";
      for (i = 0; i < 100000; i++) printf \"INSERT INTO g VALUES(%d, '\\''s%d'\\'');\\n\", i, (i * 13) % 5000;
      print \"COMMIT;\"; print \"SELECT count(*), sum(k), count(DISTINCT s) FROM g;\" }' > gen.sql &&
    sqlite3 db < gen.sql && sqlite3 db < '$tmp/work.sql'"
  probe sqlite3 sqlite3 :memory: 'select 1;'
else
  skip sqlite3 "not installed"
fi

# ---------------------------------------------------------------------------
# git

git_work='
export HOME="$PWD" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME=gomem GIT_AUTHOR_EMAIL=gomem@example.com
export GIT_COMMITTER_NAME=gomem GIT_COMMITTER_EMAIL=gomem@example.com
export GIT_AUTHOR_DATE="2021-01-01T00:00:00Z" GIT_COMMITTER_DATE="2021-01-01T00:00:00Z"
set -e
git -c init.defaultBranch=main init -q repo
cd repo
i=1
while [ $i -le 25 ]; do
  awk -v n=$i "BEGIN { for (j = 0; j < 400 * n; j++) print \"line\", j, n, j * n % 97 }" > "file$((i % 7)).txt"
  mkdir -p "dir$((i % 3))"
  echo "change $i" >> "dir$((i % 3))/notes"
  git add -A
  git commit -q -m "commit $i"
  i=$((i + 1))
done
git log --format=%s
git log --format=%H -1
git rev-list --count HEAD
git diff --stat HEAD~5 HEAD | tail -1
git gc -q
git count-objects -v | grep -E "^(count|in-pack|packs):"
git fsck --no-progress
git cat-file -p HEAD:file3.txt | tail -2
'
if have git; then
  compare git "$git_work"
  probe git git --version
else
  skip git "not installed"
fi

# ---------------------------------------------------------------------------
# sort and awk on a generated file

sort_work='
set -e
awk "BEGIN { srand(1); for (i = 0; i < 200000; i++) printf \"%d key%d %.3f\n\", int(rand() * 1000000), int(rand() * 5000), rand() * 100 }" > data
sort -S 1M -T . data | cksum
sort -n -k1,1 -S 2M -T . --parallel=2 data | tail -3
sort -u -k2,2 data | wc -l
sort -t " " -k3,3gr -k2,2 data | head -3
awk "{ s[\$2] += \$3; n[\$2]++ } END { for (k in s) printf \"%s %d %.3f\n\", k, n[k], s[k] }" data | sort | cksum
awk "{ a[NR] = \$0 } END { for (i = NR; i > NR - 3; i--) print a[i] }" data
'
if have sort && have awk; then
  compare sort+awk "$sort_work"
  # Both close stderr before exit: look for gomem in their memory maps.
  probe_maps sort sort /proc/self/maps
  probe_maps awk awk '{ print }' /proc/self/maps
else
  skip sort+awk "not installed"
fi

# ---------------------------------------------------------------------------
# C++

# cxx_binds SYMBOL: the dynamic linker binds the C++ program's SYMBOL to
# libgomem.so (operator new and delete are gomem's own, not the C++
# library's wrappers around malloc and free).
cxx_binds() {
  if LD_DEBUG=bindings LD_PRELOAD="$lib" $TIMEOUT "$cxx" 2>&1 >/dev/null |
    grep -qF "binding file $cxx [0] to $lib [0]: normal symbol \`$1'"; then
    ok "c++ $1 is gomem's"
  else
    fail "c++ $1 is gomem's" "not bound to $lib"
  fi
}

if [ -x "$cxx" ]; then
  compare c++ "'$cxx'"
  probe c++ "$cxx"
  cxx_binds _Znwm
  cxx_binds _ZdlPvm
else
  fail c++ "override_cxx not found: $cxx"
fi

finish
