/* gc/gc_version.h: the Boehm GC release whose interface gomem's libgc.so.1
 * serves (GC_get_version() returns it as 0x080202). */
#ifndef GOMEM_GC_VERSION_H
#define GOMEM_GC_VERSION_H
#define GC_VERSION_MAJOR 8
#define GC_VERSION_MINOR 2
#define GC_VERSION_MICRO 2
#endif
