#pragma once
/*
 * core/list.h - intrusive circular doubly linked list. A node embedded in an object links it
 * into one list; an unlinked node points at itself, so rh_list_unlink is safe to repeat.
 */
#include <stdbool.h>
#include <stddef.h>

struct rh_list {
    struct rh_list *prev, *next;
};

#define rh_list_entry(node, type, member) ((type *)((char *)(node)-offsetof(type, member)))

#define rh_list_for_each(node, head)                                                               \
    for ((node) = (head)->next; (node) != (head); (node) = (node)->next)

/* Safe against unlinking @node inside the loop body; @tmp holds the next node. */
#define rh_list_for_each_safe(node, tmp, head)                                                     \
    for ((node) = (head)->next, (tmp) = (node)->next; (node) != (head);                            \
         (node) = (tmp), (tmp) = (node)->next)

static inline void rh_list_init(struct rh_list *node);
static inline bool rh_list_is_empty(const struct rh_list *head);
static inline void rh_list_push_back(struct rh_list *head, struct rh_list *node);
static inline void rh_list_unlink(struct rh_list *node);

static inline void rh_list_init(struct rh_list *node)
{
    node->prev = node->next = node;
}

static inline bool rh_list_is_empty(const struct rh_list *head)
{
    return head->next == head;
}

static inline void rh_list_push_back(struct rh_list *head, struct rh_list *node)
{
    node->prev = head->prev;
    node->next = head;
    head->prev->next = node;
    head->prev = node;
}

static inline void rh_list_unlink(struct rh_list *node)
{
    node->prev->next = node->next;
    node->next->prev = node->prev;
    node->prev = node->next = node;
}
