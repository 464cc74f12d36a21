/* gc/gc_pthread_redirects.h: with GC_THREADS (and not
 * GC_NO_THREAD_REDIRECTS), gc.h sends the program's thread calls and dlopen
 * through libgc's, as Boehm GC's header does. gomem needs none of them to
 * find threads (a thread is registered at its first allocation), but the
 * names exist for programs and binaries that use them. */
#ifndef GOMEM_GC_PTHREAD_REDIRECTS_H
#define GOMEM_GC_PTHREAD_REDIRECTS_H

#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>

#ifdef __cplusplus
extern "C" {
#endif
extern int GC_pthread_create(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
extern int GC_pthread_join(pthread_t, void **);
extern int GC_pthread_detach(pthread_t);
extern int GC_pthread_cancel(pthread_t);
extern void GC_pthread_exit(void *) __attribute__((__noreturn__));
extern int GC_pthread_sigmask(int, const sigset_t *, sigset_t *); /* keeps the stop signal */
extern void *GC_dlopen(const char *, int);
#ifdef __cplusplus
}
#endif

#if !defined(GC_NO_THREAD_REDIRECTS) && !defined(GC_BUILD)
#undef pthread_create
#undef pthread_join
#undef pthread_detach
#undef pthread_cancel
#undef pthread_exit
#undef pthread_sigmask
#undef dlopen
#define pthread_create GC_pthread_create
#define pthread_join GC_pthread_join
#define pthread_detach GC_pthread_detach
#define pthread_cancel GC_pthread_cancel
#define pthread_exit GC_pthread_exit
#define pthread_sigmask GC_pthread_sigmask
#define dlopen GC_dlopen
#endif

#endif
