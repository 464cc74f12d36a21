// gcbinarytrees: the Go version of workloads/gc/gcbinarytrees.c (the
// Benchmarks Game binary-trees program, single goroutine). Same parameters,
// same work, same output and checksum.
package main

import "gomembench/gcw"

type node struct {
	left, right *node
}

func build(depth int) *node {
	n := &node{}
	if depth > 0 {
		n.left = build(depth - 1)
		n.right = build(depth - 1)
	}
	return n
}

func check(n *node) int64 {
	if n.left != nil {
		return 1 + check(n.left) + check(n.right)
	}
	return 1
}

func main() {
	a := gcw.Args()
	max := int(a.Int("depth", 21))
	a.Done()
	const min = 4
	if max < min+2 {
		max = min + 2
	}
	out := gcw.NewLines()

	stretch := build(max + 1)
	out.Printf("stretch tree of depth %d\t check: %d", max+1, check(stretch))
	stretch = nil

	t0 := gcw.Now()
	longlived := build(max)
	for d := min; d <= max; d += 2 {
		iters := int64(1) << (max - d + min)
		var chk int64
		for i := int64(0); i < iters; i++ {
			chk += check(build(d))
		}
		out.Printf("%d\t trees of depth %d\t check: %d", iters, d, chk)
	}
	out.Printf("long lived tree of depth %d\t check: %d", max, check(longlived))
	t := gcw.Now() - t0
	gcw.Check(out.Sum)
	gcw.Metric("time", t, "s", "lower")
}
