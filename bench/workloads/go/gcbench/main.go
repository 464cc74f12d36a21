// gcbench: the Go version of workloads/gc/gcbench.c (Ellis, Kovac and
// Boehm's GCBench). Same parameters, same work, same output and checksum.
package main

import (
	"runtime"

	"gomembench/gcw"
)

type node struct {
	left, right *node
	i, j        int32
}

func treeSize(i int) int64 { return (int64(1) << (i + 1)) - 1 }

// populate builds the tree top-down.
func populate(depth int, n *node) {
	if depth <= 0 {
		return
	}
	depth--
	n.left = &node{}
	n.right = &node{}
	populate(depth, n.left)
	populate(depth, n.right)
}

// makeTree builds the tree bottom-up.
func makeTree(depth int) *node {
	if depth <= 0 {
		return &node{}
	}
	return &node{left: makeTree(depth - 1), right: makeTree(depth - 1)}
}

func count(n *node) int64 {
	if n == nil {
		return 0
	}
	return 1 + count(n.left) + count(n.right)
}

var stretch int
var out = gcw.NewLines()

func timeConstruction(depth int) {
	iters := 2 * treeSize(stretch) / treeSize(depth)
	out.Printf("Creating %d trees of depth %d", iters, depth)
	var top, bottom int64
	for i := int64(0); i < iters; i++ {
		t := &node{}
		populate(depth, t)
		if i == iters-1 {
			top = count(t)
		}
	}
	for i := int64(0); i < iters; i++ {
		t := makeTree(depth)
		if i == iters-1 {
			bottom = count(t)
		}
	}
	out.Printf("Top down construction: %d nodes; bottom up construction: %d nodes", top, bottom)
}

func main() {
	a := gcw.Args()
	stretch = int(a.Int("stretch", 18))
	longlivedDepth := int(a.Int("longlived", 16))
	arraySize := a.Int("array", 500000)
	min := int(a.Int("min", 4))
	max := int(a.Int("max", 16))
	a.Done()
	if arraySize < 2002 {
		gcw.Die("array must be at least 2002")
	}

	t0 := gcw.Now()
	out.Printf("Garbage Collector Test")
	out.Printf(" Stretching memory with a binary tree of depth %d", stretch)
	temp := makeTree(stretch)
	temp = nil
	_ = temp

	out.Printf(" Creating a long-lived binary tree of depth %d", longlivedDepth)
	longlived := &node{}
	populate(longlivedDepth, longlived)

	out.Printf(" Creating a long-lived array of %d doubles", arraySize)
	array := make([]float64, arraySize)
	for i := int64(0); i < arraySize/2; i++ {
		array[i] = 1.0 / float64(i)
	}

	for d := min; d <= max; d += 2 {
		timeConstruction(d)
	}

	if array[1000] != 1.0/1000 {
		gcw.Die("the long-lived array was overwritten")
	}
	out.Printf("Long-lived tree: %d nodes", count(longlived))
	runtime.KeepAlive(longlived)
	runtime.KeepAlive(array)
	t := gcw.Now() - t0
	gcw.Check(out.Sum)
	gcw.Metric("time", t, "s", "lower")
}
