// gclatency: the Go version of workloads/gc/gclatency.c (a large live heap
// of linked 64-byte records with steady churn; the gaps between consecutive
// iterations are the pauses). Same parameters, same work, same output and
// checksum.
package main

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"sort"
	"unsafe"

	"gomembench/gcw"
)

type rec struct {
	next    *rec
	id, tag uint64
	pad     [5]uint64
}

var nextID uint64

func makeChain(n int) *rec {
	var head *rec
	for k := 0; k < n; k++ {
		r := &rec{id: nextID, tag: gcw.Mix64(nextID), next: head}
		nextID++
		head = r
	}
	return head
}

func walk(r *rec, n int) uint64 {
	var h uint64
	k := 0
	for ; r != nil; r, k = r.next, k+1 {
		if r.tag != gcw.Mix64(r.id) {
			gcw.Die("record %p (id %d) corrupted", r, r.id)
		}
		h += gcw.Mix64(r.id ^ 0x5bd1e995)
	}
	if k != n {
		gcw.Die("chain of %d records instead of %d", k, n)
	}
	return h
}

func main() {
	if unsafe.Sizeof(rec{}) != 64 {
		gcw.Die("records are not 64 bytes")
	}
	a := gcw.Args()
	live := a.Int("live", 512<<20)
	chain := int(a.Int("chain", 8))
	replace := a.Int("replace", 8192)
	iters := a.Int("iters", 4096)
	a.Done()
	if chain < 1 || replace < 1 || iters < 1 {
		gcw.Die("chain, replace and iters must be positive")
	}
	nslots := live / (64 * int64(chain))
	if nslots < 1 {
		nslots = 1
	}
	perIter := (replace + int64(chain) - 1) / int64(chain)

	slots := make([]*rec, nslots)
	for s := range slots {
		slots[s] = makeChain(chain)
	}
	runtime.GC()

	gaps := make([]float64, iters)
	rng := gcw.NewRng(1, 2)
	var h uint64
	t0 := gcw.Now()
	prev := t0
	for it := int64(0); it < iters; it++ {
		for c := int64(0); c < perIter; c++ {
			s := rng.Next() % uint64(nslots)
			h += walk(slots[s], chain)
			slots[s] = makeChain(chain)
		}
		t := gcw.Now()
		gaps[it] = t - prev
		prev = t
	}
	elapsed := prev - t0
	for s := range slots {
		h = gcw.Mix64(h ^ walk(slots[s], chain))
	}
	h = gcw.Mix64(h ^ nextID)

	sort.Float64s(gaps)
	i999 := int64(math.Ceil(0.999*float64(iters))) - 1
	bytes := float64(iters) * float64(perIter) * float64(chain) * 64
	fmt.Fprintf(os.Stdout, "# go: %d chains of %d records (%.1f MiB live), %d chains replaced per iteration, median gap %.3f ms\n",
		nslots, chain, float64(nslots)*float64(chain)*64/1048576, perIter, gaps[iters/2]*1e3)
	gcw.Check(h)
	gcw.Metric("max_gap", gaps[iters-1]*1e3, "ms", "lower")
	gcw.Metric("p99.9_gap", gaps[i999]*1e3, "ms", "lower")
	gcw.Metric("alloc_rate", bytes/1e6/elapsed, "MB/s", "higher")
	gcw.Metric("time", elapsed, "s", "lower")
}
