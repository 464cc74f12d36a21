// Package gcw holds what the Go workloads share with bench/workloads/common.h
// and gc/gc.h: key=value arguments, the random numbers, the checksum of the
// output lines, and the "check"/"metric" lines that bench/report.py parses.
package gcw

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Die prints "error: ..." on stderr and exits 2, like common.h's die().
func Die(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "error: "+format+"\n", a...)
	os.Exit(2)
}

// ArgSet is the command line's key=value words.
type ArgSet struct {
	kv   []string
	used []bool
}

// Args parses os.Args like common.h's args_init.
func Args() *ArgSet {
	a := &ArgSet{kv: os.Args[1:], used: make([]bool, len(os.Args)-1)}
	for _, s := range a.kv {
		if s == "-h" || s == "--help" {
			fmt.Fprintf(os.Stderr, "usage: %s key=value ... (see bench/README.md)\n", os.Args[0])
			os.Exit(0)
		}
		if !strings.Contains(s, "=") {
			Die("argument '%s' is not key=value", s)
		}
	}
	return a
}

func (a *ArgSet) str(key string) (string, bool) {
	for i := len(a.kv) - 1; i >= 0; i-- {
		if strings.HasPrefix(a.kv[i], key+"=") {
			a.used[i] = true
			return a.kv[i][len(key)+1:], true
		}
	}
	return "", false
}

// Int is an integer with an optional K/M/G suffix (powers of 1024).
func (a *ArgSet) Int(key string, def int64) int64 {
	s, ok := a.str(key)
	if !ok {
		return def
	}
	shift := uint(0)
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k', 'K':
			shift = 10
		case 'm', 'M':
			shift = 20
		case 'g', 'G':
			shift = 30
		}
		if shift != 0 {
			s = s[:n-1]
		}
	}
	v, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		Die("bad integer for %s: '%s'", key, s)
	}
	return v << shift
}

// Done rejects keys the workload does not know.
func (a *ArgSet) Done() {
	for i, u := range a.used {
		if !u {
			Die("unknown argument '%s'", a.kv[i])
		}
	}
}

// Mix64 is common.h's mix64 (splitmix64's finalizer).
func Mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Rng is common.h's rng_t.
type Rng struct{ s uint64 }

func NewRng(a, b uint64) Rng {
	return Rng{Mix64(a*0x9e3779b97f4a7c15 + Mix64(b+0x632be59bd9b4e019))}
}

func (r *Rng) Next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	return Mix64(r.s)
}

// Lines prints "# LINE" and keeps gc.h's FNV-1a checksum of the lines.
type Lines struct{ Sum uint64 }

func FNV(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 0x100000001b3
	}
	return h
}

func NewLines() *Lines { return &Lines{0xcbf29ce484222325} }

func (l *Lines) Printf(format string, a ...interface{}) {
	s := fmt.Sprintf(format, a...)
	fmt.Printf("# %s\n", s)
	l.Sum = FNV(l.Sum, s+"\n")
}

var start = time.Now()

// Now is a monotonic clock in seconds.
func Now() float64 { return time.Since(start).Seconds() }

func Check(sum uint64) { fmt.Printf("check %016x\n", sum) }

// Metric prints "metric NAME VALUE UNIT lower|higher" like report_metric.
func Metric(name string, value float64, unit, better string) {
	fmt.Printf("metric %s %s %s %s\n", name, strconv.FormatFloat(value, 'g', 6, 64), unit, better)
}
