// dlist.h: intrusive doubly-linked lists: a list is a pointer to its first
// element (NULL when empty); elements link through their `next` and `prev`
// fields, NULL at the ends. One pair of macros for every such list in gomem
// (threads, start blocks, spans).
//
// Locking: none inside; the list owner's lock protects it.
#ifndef GOMEM_DLIST_H
#define GOMEM_DLIST_H

// DLIST_PUSH links e at the front of the list whose head pointer is *head.
#define DLIST_PUSH(head, e)                                                                        \
  do {                                                                                             \
    (e)->prev = NULL;                                                                              \
    (e)->next = *(head);                                                                           \
    if (*(head) != NULL)                                                                           \
      (*(head))->prev = (e);                                                                       \
    *(head) = (e);                                                                                 \
  } while (0)

// DLIST_REMOVE unlinks e, an element of the list whose head is *head.
#define DLIST_REMOVE(head, e)                                                                      \
  do {                                                                                             \
    if ((e)->prev != NULL)                                                                         \
      (e)->prev->next = (e)->next;                                                                 \
    else                                                                                           \
      *(head) = (e)->next;                                                                         \
    if ((e)->next != NULL)                                                                         \
      (e)->next->prev = (e)->prev;                                                                 \
    (e)->next = (e)->prev = NULL;                                                                  \
  } while (0)

#endif // GOMEM_DLIST_H
