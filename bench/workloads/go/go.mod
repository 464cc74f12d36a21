// The Go versions of the garbage-collector workloads (bench/workloads/gc/).
// Standard library only: built off-network by bench/Makefile.
module gomembench

go 1.19
