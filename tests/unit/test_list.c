/* tests/unit/test_list.c - the intrusive list: order, unlink (also repeated), safe iteration. */
#include "core/list.h"
#include "tests/harness/check.h"

struct item {
    int value;
    struct rh_list link;
};

static int sum_values(struct rh_list *head, int *count)
{
    struct rh_list *node;
    int sum = 0;
    *count = 0;
    rh_list_for_each(node, head) {
        sum = sum * 10 + rh_list_entry(node, struct item, link)->value;
        (*count)++;
    }
    return sum;
}

int main(void)
{
    struct rh_list head;
    struct item items[5];
    int count;
    rh_list_init(&head);
    CHECK(rh_list_is_empty(&head));
    for (int i = 0; i < 5; i++) {
        items[i].value = i + 1;
        rh_list_init(&items[i].link);
        rh_list_push_back(&head, &items[i].link);
    }
    CHECK_EQ(sum_values(&head, &count), 12345);
    CHECK_EQ(count, 5);

    rh_list_unlink(&items[2].link);
    rh_list_unlink(&items[2].link); /* unlinking twice is harmless */
    CHECK_EQ(sum_values(&head, &count), 1245);

    struct rh_list *node, *tmp;
    rh_list_for_each_safe(node, tmp, &head) {
        struct item *it = rh_list_entry(node, struct item, link);
        if (it->value % 2 == 0) rh_list_unlink(&it->link);
    }
    CHECK_EQ(sum_values(&head, &count), 15);
    CHECK_EQ(count, 2);
    rh_list_unlink(&items[0].link);
    rh_list_unlink(&items[4].link);
    CHECK(rh_list_is_empty(&head));
    return rh_check_finish();
}
