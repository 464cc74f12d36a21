// mcentral.c: per-size-class central lists, twin of Go's mcentral.
//
// An mcentral holds the spans of its class that no thread owns: those given
// back by threads that exited or honoured gm_release_memory
// (mcentral_uncache_span). A thread with no span of its own left takes a
// partial one here, or a fresh one from mheap (mcentral_cache_span). Spans
// whose every object is free go straight back to mheap.
//
// A span counts as partial only once at least 1/4 of its slots are free
// (partial_min): a thread that caches a span should get a window's worth of
// objects for its two lock round trips, not the one or two slots that scattered
// remote frees leave behind. Nearly full spans wait on the full list; the
// slots they hold back are under 25% of the class's memory.
//
// Invariants (mcentral_validate, under mcentral.lock):
//   - a span on a list has no owner, xfree == XF_UNOWNED, alloc_cache == 0;
//   - partial spans have partial_min <= nfree < nelems, full spans nfree <
//     partial_min;
//   - no fully free span stays on a list.
// Frees of objects in unowned spans take this lock in batches
// (mcentral_free_batch); frees of objects in owned spans never do.
#include <string.h>

#include "arena.h"
#include "mcentral.h"
#include "mheap.h"

mcentral_t gm_central[GM_NUM_SIZE_CLASSES];

void mcentral_init(void) {
  for (int i = 0; i < GM_NUM_SIZE_CLASSES; i++) {
    pthread_mutex_init(&gm_central[i].lock.m, NULL);
    gm_central[i].lock.rank = RANK_MCENTRAL;
    lock_fork_register(&gm_central[i].lock);
  }
}

static void list_push(mspan_t **head, mspan_t *s, uint8_t id) {
  s->trigger = TRIGGER_NONE;
  s->prev = NULL;
  s->next = *head;
  if (*head)
    (*head)->prev = s;
  *head = s;
  s->list = id;
}

static void list_remove(mcentral_t *m, mspan_t *s) {
  mspan_t **head = s->list == LIST_PARTIAL ? &m->partial : &m->full;
  if (s->prev)
    s->prev->next = s->next;
  else
    *head = s->next;
  if (s->next)
    s->next->prev = s->prev;
  s->next = s->prev = NULL;
  s->list = LIST_NONE;
}

static void mcentral_check_span(mcentral_t *m, mspan_t *s) {
  (void)m;
  span_validate(s);
  if (s->list != LIST_PARTIAL && s->list != LIST_FULL)
    gm_fatal("mcentral: span on a list with a bad list tag", (void *)s->base);
  if (relaxed_load(&s->owner) != NULL || atomic_load(&s->xfree) != XF_UNOWNED ||
      s->alloc_cache != 0)
    gm_fatal("mcentral: listed span is owned or has pending frees", (void *)s->base);
  if (s->list == LIST_PARTIAL ? (s->nfree < partial_min(s) || s->nfree >= s->nelems)
                              : s->nfree >= partial_min(s))
    gm_fatal("mcentral: span on the wrong list for its free count", (void *)s->base);
}

// mcentral_validate checks every span of the class. Caller holds the lock.
static void mcentral_validate_locked(mcentral_t *m) {
  size_t n = 0;
  for (mspan_t *s = m->partial; s; s = s->next, n++)
    mcentral_check_span(m, s);
  for (mspan_t *s = m->full; s; s = s->next, n++)
    mcentral_check_span(m, s);
  if (n != m->nspans)
    gm_fatal("mcentral: span count does not match its lists", NULL);
}

void mcentral_validate(uint8_t sizeclass) {
  mcentral_t *m = &gm_central[sizeclass];
  gm_lock(&m->lock);
  mcentral_validate_locked(m);
  gm_unlock(&m->lock);
}

// mcentral_cache_span returns a span of sizeclass with free slots for the
// calling thread to cache, or NULL when out of memory. The caller sets owner.
mspan_t *mcentral_cache_span(uint8_t sizeclass) {
  mcentral_t *m = &gm_central[sizeclass];
  gm_lock(&m->lock);
  mspan_t *s = m->partial;
  if (s != NULL) {
    list_remove(m, s);
    m->nspans--;
    atomic_store_explicit(&s->xfree, 0, memory_order_release);
  }
  if (GM_VALIDATE)
    mcentral_validate_locked(m);
  gm_unlock(&m->lock);
  if (s != NULL)
    return s;
  s = mheap_alloc_span(class_to_npages[sizeclass], sizeclass, 1);
  if (s != NULL)
    span_init_small(s, sizeclass);
  if (GM_SECURE && s != NULL && s->needzero) // secure.c: a free slot is all zero
    heap_memset((void *)s->base, 0, s->npages * GM_PAGE_SIZE);
  return s;
}

// mcentral_uncache_span takes back s from the thread that owned it. The caller
// has already removed s from its mcache and cleared owner.
void mcentral_uncache_span(mspan_t *s) {
  mcentral_t *m = &gm_central[s->sizeclass];
  gm_lock(&m->lock);
  span_unreserve_window(s);
  uintptr_t list = atomic_exchange_explicit(&s->xfree, XF_UNOWNED, memory_order_acq_rel);
  span_apply_xfree(s, list & ~XF_FLAGS);
  if (s->nfree == s->nelems) {
    gm_unlock(&m->lock);
    mheap_free_span(s);
    return;
  }
  bool partial = s->nfree >= partial_min(s);
  list_push(partial ? &m->partial : &m->full, s, partial ? LIST_PARTIAL : LIST_FULL);
  m->nspans++;
  if (GM_VALIDATE)
    mcentral_validate_locked(m);
  gm_unlock(&m->lock);
}

// mcentral_free_batch frees a list of objects of sizeclass (linked through
// their first word) that a thread saw in uncached spans. Under the lock each
// object's span is either still uncached (free it here, moving the span to
// the partial list or back to mheap), or has been cached by a thread since:
// then owned(ctx, s, p) frees it (as the owner, or onto the span's remote
// list: the span cannot be uncached meanwhile, as that takes this lock).
void mcentral_free_batch(uint8_t sizeclass, uintptr_t list, mcentral_owned_fn owned, void *ctx) {
  mcentral_t *m = &gm_central[sizeclass];
  gm_lock(&m->lock);
  while (list != 0) {
    mspan_t *s = spanof(list);
    if (unlikely(s == NULL || s->sizeclass != sizeclass))
      gm_fatal("corrupted pending free list (object written after free?)", (void *)list);
    uintptr_t next = *(uintptr_t *)list;
    uintptr_t x = atomic_load_explicit(&s->xfree, memory_order_relaxed);
    if (x & XF_UNOWNED) {
      free_apply(s, list);
      if (s->nfree == s->nelems) {
        list_remove(m, s);
        m->nspans--;
        mheap_free_span(s);
      } else if (s->list == LIST_FULL && s->nfree >= partial_min(s)) {
        list_remove(m, s);
        list_push(&m->partial, s, LIST_PARTIAL);
      }
    } else {
      owned(ctx, s, list, x);
    }
    list = next;
  }
  if (GM_VALIDATE)
    mcentral_validate_locked(m);
  gm_unlock(&m->lock);
}
