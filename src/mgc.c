// mgc.c: placeholder (the collector comes next).
#include "internal.h"

void gc_fork_prepare(void) {
}
void gc_fork_parent(void) {
}
void gc_fork_child(void) {
}
