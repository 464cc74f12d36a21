#!/usr/bin/env python3
"""Turn the runs recorded by bench/run.sh into a Markdown report, a TSV and a
gnuplot PNG. Standard library only.

Exit status: 0 when every run that was attempted succeeded and every
checksum matched, 1 otherwise (missing allocators do not count), 2 on a bug.
"""

import argparse
import collections
import datetime
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys

MALLOC_ORDER = ["glibc", "gomem", "mimalloc", "jemalloc", "tcmalloc"]
MEMORY_UNITS = {"B", "KiB", "MiB", "GiB", "x"}
PACKAGES = {
    "glibc": "libc6",
    "mimalloc": "libmimalloc-dev",
    "jemalloc": "libjemalloc-dev",
    "tcmalloc": "libgoogle-perftools-dev",
    "boehm": "libgc-dev",  # garbage-collector variants
    "go": "golang-go",
}
OTHER_PACKAGES = ["libgc-dev", "golang-go"]
CHECK_REFERENCE = ["glibc", "boehm", "go"]


# ---------------------------------------------------------------------------
# Parsing


class Run:
    def __init__(self, row):
        self.workload = row["workload"]
        self.variant = row["variant"]
        self.run = int(row["run"])
        self.args = row.get("args", "")
        self.group = row.get("group", "") or "malloc"
        self.rc = row["rc"]
        self.stdout_path = row.get("stdout", "")
        self.stderr_path = row.get("stderr", "")
        self.stats = {}
        self.check = None
        self.metrics = []  # (name, value, unit, better)
        self.state = "ok"  # ok | missing | FAIL ... | TIMEOUT | CRASH ... | CHECK
        self.reason = ""
        if self.rc == "missing":
            self.state = "missing"
            return
        if self.rc == "broken":
            self.state, self.reason = "BROKEN", "the allocator library does not work when preloaded (see the header)"
            return
        self.stats = read_kv(row.get("stats", ""))
        out = read_text(self.stdout_path)
        err = read_text(self.stderr_path)
        for line in out.splitlines():
            f = line.split()
            if len(f) == 2 and f[0] == "check":
                self.check = f[1]
            elif len(f) == 5 and f[0] == "metric":
                try:
                    self.metrics.append((f[1], float(f[2]), f[3], f[4]))
                except ValueError:
                    pass
        rc = int(self.rc)
        sig = int(self.stats.get("signal", 0) or 0)
        first_err = next((l for l in err.splitlines() if l.strip()), "")
        if rc in (124, 137) and not self.stats:
            self.state, self.reason = "TIMEOUT", "killed by timeout"
        elif sig:
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = "signal %d" % sig
            self.state, self.reason = "CRASH", "%s %s" % (name, first_err)
        elif rc != 0:
            self.state, self.reason = "FAIL", "exit %d %s" % (rc, first_err)
        elif "cannot be preloaded" in err:
            self.state, self.reason = "FAIL", "LD_PRELOAD library not loaded: " + first_err
        elif self.check is None or not self.metrics:
            self.state, self.reason = "FAIL", "no check/metric line in the output"

    @property
    def ok(self):
        return self.state == "ok"


def read_kv(path):
    d = {}
    if path and os.path.exists(path):
        for line in read_text(path).splitlines():
            f = line.split()
            if len(f) == 2:
                try:
                    d[f[0]] = float(f[1])
                except ValueError:
                    pass
    return d


def read_text(path):
    if not path or not os.path.exists(path):
        return ""
    with open(path, errors="replace") as f:
        return f.read()


def read_index(path):
    with open(path) as f:
        lines = f.read().splitlines()
    head = lines[0].split("\t")
    rows = []
    for line in lines[1:]:
        if line.strip():
            vals = line.split("\t")
            rows.append(dict(zip(head, vals + [""] * (len(head) - len(vals)))))
    return rows


# ---------------------------------------------------------------------------
# Statistics


class Cell:
    """All runs of one workload under one variant."""

    def __init__(self, runs):
        self.runs = runs
        ok = [r for r in runs if r.ok]
        bad = [r for r in runs if not r.ok and r.state != "missing"]
        self.missing = all(r.state == "missing" for r in runs)
        self.failed = bad
        self.ok = bool(ok) and not bad
        self.n_ok = len(ok)
        self.primary = ok[0].metrics[0][0] if ok else None
        self.unit = ok[0].metrics[0][2] if ok else ""
        self.better = ok[0].metrics[0][3] if ok else "lower"
        vals = [r.metrics[0][1] for r in ok if r.metrics[0][0] == self.primary]
        self.median = statistics.median(vals) if vals else None
        self.min = min(vals) if vals else None
        self.max = max(vals) if vals else None
        rss = [r.stats["maxrss_kb"] / 1024.0 for r in ok if "maxrss_kb" in r.stats]
        self.rss = statistics.median(rss) if rss else None
        wall = [r.stats["wall_s"] for r in ok if "wall_s" in r.stats]
        self.wall = statistics.median(wall) if wall else None
        self.others = collections.OrderedDict()
        for r in ok:
            for name, v, unit, better in r.metrics[1:]:
                self.others.setdefault(name, (unit, better, []))[2].append(v)
        self.others = collections.OrderedDict(
            (k, (u, b, statistics.median(vs))) for k, (u, b, vs) in self.others.items())

    def label(self):
        if self.missing:
            return "missing"
        if self.failed:
            return self.failed[0].state
        return None


def ratio(cell, base):
    """Cost of cell relative to base: >1 means base is better."""
    if not (cell and base and cell.ok and base.ok) or cell.median is None or base.median is None:
        return None
    if cell.primary != base.primary:
        return None
    if cell.better == "higher":
        return base.median / cell.median if cell.median > 0 else None
    return cell.median / base.median if base.median > 0 else None


def rss_ratio(cell, base):
    if not (cell and base and cell.ok and base.ok) or not cell.rss or not base.rss:
        return None
    return cell.rss / base.rss


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


# ---------------------------------------------------------------------------
# Formatting


def fnum(v):
    if v is None:
        return "—"
    a = abs(v)
    if a >= 1e9:
        return "%.3g G" % (v / 1e9)
    if a >= 1e5:
        return "%.3g M" % (v / 1e6) if a >= 1e6 else "%.0f k" % (v / 1e3)
    if a >= 100:
        return "%.0f" % v
    if a >= 10:
        return "%.1f" % v
    if a >= 1:
        return "%.2f" % v
    return "%.3g" % v


def fratio(r):
    return "—" if r is None else "%.2f×" % r


def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:
        return ""


def pkg_version(pkg):
    return sh(["dpkg-query", "-W", "-f=${Version}", pkg]) or "not installed"


def machine_info():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = "%.1f GiB RAM" % (kb / 1048576)
    except (OSError, ValueError, IndexError):
        pass
    try:
        glibc = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError):
        glibc = "unknown"
    return cpu, os.cpu_count(), os.uname().release, glibc, mem


# The collector workloads' other gomem variants (bench/Makefile): the same
# library as gomem.
GOMEM_VARIANTS = {
    "gomem-conc": "gomem's library marking beside the program, the kernel tracking its writes "
                  "(GOMEM_GC_CONCURRENT=1)",
    "gomem-explicit": "gomem's library marking beside the program, every heap pointer store "
                      "through gm_store (built with GC_BARRIER_EXPLICIT, run with GOMEM_BARRIER=explicit)",
}


def gomem_version(root, lib):
    rev = sh(["git", "-C", root, "rev-parse", "--short", "HEAD"]) or "no commit"
    dirty = sh(["git", "-C", root, "status", "--porcelain", "--untracked-files=no", "--", "src", "include"])
    s = "git %s%s" % (rev, " + uncommitted changes in src/include" if dirty else "")
    if lib and os.path.exists(lib):
        mtime = datetime.datetime.fromtimestamp(os.path.getmtime(lib)).strftime("%Y-%m-%d %H:%M")
        s += ", library built %s" % mtime
    return s


# ---------------------------------------------------------------------------
# Plot


def plot(png, panels, variants, cells, base_of, work):
    """panels: [(title, [(label, workload, ratio_fn)])]; one bar per variant
    and group, from 1.0 to the ratio on a log axis."""
    gp = shutil.which("gnuplot")
    if not gp:
        print("report: gnuplot not found, no PNG (apt-get install -y gnuplot-nox)", file=sys.stderr)
        return False
    panels = [p for p in panels if p[1]]
    groups_all = [g for _, gs in panels for g in gs]
    others = [v for v in variants
              if any(v != base_of[w] and (w, v) in cells and not cells[(w, v)].missing for _, w, _ in groups_all)]
    if not others:
        return False
    width = 0.8 / len(others)
    colors = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7"]
    color_of = {v: colors[i % len(colors)] for i, v in enumerate(v for v in variants)}
    datfile = os.path.join(work, "plot.dat")
    script = [
        "set terminal pngcairo noenhanced size 1400,%d font ',10'" % (480 * len(panels) + 40),
        "set output '%s'" % png,
        "set multiplot layout %d,1" % len(panels),
        "set logscale y 2",
        "set grid ytics",
        "set key outside right top",
        "set ylabel 'ratio (log scale)'",
        "set format y '%g'",
        "set style fill solid 0.85 border lc rgb '#333333'",
    ]
    block = 0
    with open(datfile, "w") as f:
        for title, groups in panels:
            labels = []
            plots = []
            lo = hi = 1.0
            for j, v in enumerate(others):
                f.write("# %s / %s\n" % (title, v))
                n = 0
                for i, (_, w, fn) in enumerate(groups):
                    c, b = cells.get((w, v)), cells.get((w, base_of[w]))
                    if v == base_of[w] or c is None or c.missing:
                        continue
                    x = i + (j - (len(others) - 1) / 2) * width
                    r = fn(c, b)
                    if r is None:
                        if c.label():
                            labels.append((x, c.label()))
                        continue
                    f.write("%g %g %g %g %g %g\n" % (x, r, x - width / 2, x + width / 2, min(1, r), max(1, r)))
                    lo, hi = min(lo, r), max(hi, r)
                    n += 1
                if n == 0:  # gnuplot refuses an empty block
                    f.write("-100 1 -100 -100 1 1\n")
                f.write("\n\n")
                plots.append("'%s' index %d using 1:2:3:4:5:6 with boxxyerror lc rgb '%s' title '%s'"
                             % (datfile, block, color_of[v], v))
                block += 1
            script.append('set title "%s"' % title)
            script.append("set xrange [-0.6:%g]" % (len(groups) - 0.4))
            script.append("set yrange [%g:%g]" % (2 ** math.floor(math.log2(lo / 1.15)), 2 ** math.ceil(math.log2(hi * 1.15))))
            script.append("set xtics (%s) rotate by -20" % ", ".join('"%s" %d' % (g[0], i) for i, g in enumerate(groups)))
            script.append("unset label")
            for x, lab in labels:
                script.append('set label "%s" at %g,1 center rotate by 90 font ",8" tc rgb "red"' % (lab, x))
            script.append("plot " + ", ".join(plots) + ", 1 with lines lc rgb 'black' lw 1.5 notitle")
    script.append("unset multiplot")
    gpfile = os.path.join(work, "plot.gp")
    with open(gpfile, "w") as f:
        f.write("\n".join(script) + "\n")
    p = subprocess.run([gp, gpfile], capture_output=True, text=True)
    if p.returncode != 0:
        print("report: gnuplot failed:\n" + p.stderr, file=sys.stderr)
        return False
    return True


# ---------------------------------------------------------------------------
# Main


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--index", required=True)
    ap.add_argument("--mode", required=True)
    ap.add_argument("--runs", type=int, required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--timeout", default="")
    ap.add_argument("--elapsed", default="")
    ap.add_argument("--loadavg", default="", help="1/5/15-min load averages before and after the runs")
    ap.add_argument("--allocators", default="", help="name=lib|state;... as written by run.sh")
    ap.add_argument("--root", default=".")
    ap.add_argument("--work", default=".")
    ap.add_argument("--md", required=True)
    ap.add_argument("--tsv")
    ap.add_argument("--png")
    a = ap.parse_args()

    alloc = collections.OrderedDict()
    for item in a.allocators.split(";"):
        if "=" in item:
            name, rest = item.split("=", 1)
            lib, _, state = rest.partition("|")
            alloc[name] = (lib, state)

    runs = [Run(r) for r in read_index(a.index)]
    workloads, variants = [], []
    for r in runs:
        if r.workload not in workloads:
            workloads.append(r.workload)
        if r.variant not in variants:
            variants.append(r.variant)
    variants.sort(key=lambda v: (MALLOC_ORDER.index(v) if v in MALLOC_ORDER else len(MALLOC_ORDER)))

    # Checksums: every successful run of a workload must print the same one,
    # whatever the allocator or, for variant workloads, the implementation.
    # The reference is that of the first of CHECK_REFERENCE that ran and
    # agreed with itself (glibc for malloc workloads; Boehm's, else Go's, for
    # the garbage-collector variants, so gomem is checked against them), else
    # the most common value.
    for w in workloads:
        rs = [r for r in runs if r.workload == w and r.ok]
        ref = None
        for cand in CHECK_REFERENCE:
            sums = set(r.check for r in rs if r.variant == cand)
            if len(sums) == 1:
                ref = sums.pop()
                break
        if ref is None and rs:
            ref = collections.Counter(r.check for r in rs).most_common(1)[0][0]
        for r in rs:
            if r.check != ref:
                r.state, r.reason = "CHECK", "checksum %s, expected %s" % (r.check, ref)

    by = collections.defaultdict(list)
    for r in runs:
        by[(r.workload, r.variant)].append(r)
    cells = {k: Cell(v) for k, v in by.items()}

    # Ratio baseline: gomem when it ran, else glibc, else the first variant.
    def pick_base(w):
        vs = [v for v in variants
              if (w, v) in cells and not cells[(w, v)].missing and cells[(w, v)].label() != "BROKEN"]
        for cand in ("gomem", "glibc"):
            if cand in vs:
                return cand
        return vs[0] if vs else None

    base_of = {w: pick_base(w) for w in workloads}
    bases = sorted(set(b for b in base_of.values() if b))
    basename = "/".join(bases) or "—"
    smoke = a.mode == "smoke"

    cpu, ncpu, kernel, glibc, mem = machine_info()
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    L = []
    L.append("# gomem benchmark results (%s mode)" % a.mode)
    L.append("")
    L.append("- date: %s; runs took %s s" % (now, a.elapsed or "?"))
    L.append("- mode: **%s**, N = %d run(s) per cell, interleaved (round r runs every allocator once), "
             "median reported; threads = %d; timeout %s s per run" % (a.mode, a.runs, a.threads, a.timeout))
    L.append("- machine: %s, %s cores, %s; kernel %s; %s" % (cpu, ncpu, mem, kernel, glibc))
    la = a.loadavg.split()
    if len(la) == 6:
        L.append("- load average (1/5/15 min) before the runs: %s, after: %s%s" % (
            " ".join(la[:3]), " ".join(la[3:]),
            " (other work was running: expect noise)" if float(la[0]) > 0.5 else ""))
    L.append("- allocators:")
    for v in variants:
        lib, state = alloc.get(v, ("", "ok"))
        if v == "gomem":
            desc = gomem_version(a.root, lib)
        elif v in PACKAGES:
            desc = "%s %s" % (PACKAGES[v], pkg_version(PACKAGES[v]))
        elif v in GOMEM_VARIANTS:
            desc = GOMEM_VARIANTS[v]
        else:
            desc = ""
        where = lib if lib else ("system malloc, no LD_PRELOAD" if v == "glibc" else "")
        if state and state != "ok":
            where = "**%s**" % state
        L.append("  - %s: %s%s" % (v, desc, ("; " + where) if where else ""))
    if not smoke:
        L.append("- other packages: " + ", ".join("%s %s" % (p, pkg_version(p)) for p in OTHER_PACKAGES))
    L.append("")
    if "gomem" not in bases and bases:
        L.append("> gomem did not run (missing or broken): ratios below are relative to **%s** instead." % basename)
        L.append("")

    def tables(workloads, variants, suffix):
        basename = "/".join(sorted(set(base_of[w] for w in workloads if base_of[w]))) or "—"
        # Summary table.
        L.append("## Primary metric%s (median of N; ratio to %s)" % (suffix, basename))
        L.append("")
        L.append("Each workload's own metric (`lower`/`higher` = which is better). The ratio is the allocator's cost "
                 "divided by %s's: time / %s's time, or %s's throughput / the allocator's throughput, so **above "
                 "1.00× means %s is better**, below means the allocator beats it." % (basename, basename, basename,
                                                                                       basename))
        L.append("")
        L.append("| workload | metric | " + " | ".join(variants) + " |")
        L.append("|---|---|" + "---:|" * len(variants))
        tratios = collections.defaultdict(list)
        rratios = collections.defaultdict(list)
        nt = 0
        for w in workloads:
            b = cells.get((w, base_of[w]))
            anyc = next((cells[(w, v)] for v in variants if (w, v) in cells and cells[(w, v)].primary), None)
            metric = "%s (%s, %s)" % (anyc.primary, anyc.unit, anyc.better) if anyc else "—"
            timeish = anyc is not None and anyc.unit not in MEMORY_UNITS
            nt += timeish
            row = []
            for v in variants:
                c = cells.get((w, v))
                if c is None:
                    row.append("")
                elif c.label():
                    row.append("**%s**" % c.label())
                else:
                    r = ratio(c, b)
                    if timeish and r is not None:
                        tratios[v].append(r)
                    rr = rss_ratio(c, b)
                    if rr is not None:
                        rratios[v].append(rr)
                    row.append("%s (%s)" % (fnum(c.median), fratio(r)) if not smoke else fnum(c.median))
            L.append("| %s | %s | %s |" % (w, metric, " | ".join(row)))
        if not smoke:
            row = []
            for v in variants:
                g = geomean(tratios[v])
                row.append("**%s**%s" % (fratio(g), "" if len(tratios[v]) == nt else " (%d/%d)" % (len(tratios[v]), nt))
                           if g else "—")
            L.append("| **geomean** | time-like metrics | %s |" % " | ".join(row))
        L.append("")

        # Peak RSS table.
        L.append("## Peak RSS in MiB%s (median of N; ratio to %s)" % (suffix, basename))
        L.append("")
        L.append("The whole process's peak resident set (ru_maxrss from wait4), including the workload's own "
                 "bookkeeping arrays, which are the same for every allocator. Above 1.00× means %s used less." % basename)
        L.append("")
        L.append("| workload | " + " | ".join(variants) + " |")
        L.append("|---|" + "---:|" * len(variants))
        for w in workloads:
            b = cells.get((w, base_of[w]))
            row = []
            for v in variants:
                c = cells.get((w, v))
                if c is None:
                    row.append("")
                elif c.label():
                    row.append("**%s**" % c.label())
                else:
                    row.append("%s (%s)" % (fnum(c.rss), fratio(rss_ratio(c, b))) if not smoke else fnum(c.rss))
            L.append("| %s | %s |" % (w, " | ".join(row)))
        if not smoke:
            row = []
            for v in variants:
                g = geomean(rratios[v])
                row.append("**%s**" % fratio(g) if g else "—")
            L.append("| **geomean** | %s |" % " | ".join(row))
        L.append("")


    groups = []
    for r in runs:
        if r.group not in groups:
            groups.append(r.group)
    for g in groups:
        gw = [w for w in workloads if any(r.workload == w and r.group == g for r in runs)]
        gv = [v for v in variants if any((w, v) in cells for w in gw)]
        suffix = "" if len(groups) == 1 else (" — %s workloads" % g if g == "malloc" else " — %s" % g)
        tables(gw, gv, suffix)

    # Details.
    L.append("## Details")
    L.append("")
    L.append("min–max is the spread of the primary metric over the N runs; wall is the median wall time of the "
             "whole process; the last column has the workload's other metrics (medians).")
    L.append("")
    L.append("| workload | allocator | primary | min–max | ratio | peak RSS MiB | wall s | other metrics |")
    L.append("|---|---|---:|---:|---:|---:|---:|---|")
    for w in workloads:
        b = cells.get((w, base_of[w]))
        for v in variants:
            c = cells.get((w, v))
            if c is None:
                continue
            if c.label():
                L.append("| %s | %s | **%s** | | | | | |" % (w, v, c.label()))
                continue
            others = "; ".join("%s %s %s" % (k, fnum(m), u) for k, (u, _, m) in c.others.items())
            L.append("| %s | %s | %s %s | %s–%s | %s | %s | %s | %s |" % (
                w, v, fnum(c.median), c.unit, fnum(c.min), fnum(c.max), fratio(ratio(c, b)), fnum(c.rss),
                fnum(c.wall), others))
    L.append("")
    args = collections.OrderedDict()
    for r in runs:
        args.setdefault(r.workload, r.args)
    L.append("Arguments: " + "; ".join("`%s %s`" % (w, args[w]) for w in workloads))
    L.append("")

    failures = [r for r in runs if not r.ok and r.state != "missing"]
    if failures:
        L.append("## Failures")
        L.append("")
        for r in failures:
            L.append("- %s / %s run %d: **%s** %s (stdout %s, stderr %s)" % (
                r.workload, r.variant, r.run, r.state, r.reason.strip()[:300], r.stdout_path, r.stderr_path))
        L.append("")

    if a.png:
        timeish, memish = [], []
        for w in workloads:
            c = next((cells[(w, v)] for v in variants if (w, v) in cells and cells[(w, v)].primary), None)
            if c is not None:
                (memish if c.unit in MEMORY_UNITS else timeish).append((w, c.primary))
        panels = [
            ("time ratio vs %s (allocator time / %s time, throughput inverted; above 1 = %s is faster)"
             % (basename, basename, basename), [(w, w, ratio) for w, _ in timeish]),
            ("memory ratio vs %s: peak RSS of every workload, then the memory workloads' own metric "
             "(above 1 = %s uses less)" % (basename, basename),
             [(w, w, rss_ratio) for w in workloads] + [("%s: %s" % (w, m), w, ratio) for w, m in memish]),
        ]
        if plot(a.png, panels, variants, cells, base_of, a.work):
            L.append("Plot: `%s` (top: time ratio per workload; bottom: peak RSS ratio per workload, then "
                     "the memory workloads' own metric; log scale, bars go from 1.0 to the ratio)."
                     % os.path.basename(a.png))
            L.append("")

    md = "\n".join(L)
    os.makedirs(os.path.dirname(os.path.abspath(a.md)), exist_ok=True)
    with open(a.md, "w") as f:
        f.write(md)
    print(md)

    if a.tsv:
        with open(a.tsv, "w") as f:
            f.write("workload\tallocator\tstate\tmetric\tunit\tbetter\tmedian\tmin\tmax\tratio\t"
                    "peak_rss_mib\trss_ratio\twall_s\tn_ok\n")
            for w in workloads:
                b = cells.get((w, base_of[w]))
                for v in variants:
                    c = cells.get((w, v))
                    if c is None:
                        continue
                    vals = [w, v, c.label() or "ok", c.primary or "", c.unit, c.better, c.median, c.min, c.max,
                            ratio(c, b), c.rss, rss_ratio(c, b), c.wall, c.n_ok]
                    f.write("\t".join("" if x is None else ("%.6g" % x if isinstance(x, float) else str(x))
                                      for x in vals) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SystemExit:
        raise
    except Exception:
        import traceback

        traceback.print_exc()
        sys.exit(2)
