/* gc.h: Boehm GC's interface, served by gomem's libgc.so.1 (gc/gc.h). */
#include "gc/gc.h"
