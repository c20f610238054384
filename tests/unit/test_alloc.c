/* tests/unit/test_alloc.c - counted allocation: live bytes go up and come back down, also
 * when a block is freed on another thread than the one that allocated it. */
#include <pthread.h>
#include <string.h>

#include "core/alloc.h"
#include "tests/harness/check.h"

static void *free_elsewhere(void *ptr)
{
    rh_free(ptr);
    return NULL;
}

int main(void)
{
    int64_t base = rh_alloc_live_bytes();

    char *a = rh_alloc(1000);
    CHECK_GE(rh_alloc_live_bytes() - base, 1000);
    a = rh_realloc(a, 5000);
    CHECK_GE(rh_alloc_live_bytes() - base, 5000);
    rh_free(a);
    CHECK_EQ(rh_alloc_live_bytes(), base);

    char *s = rh_strndup("hello world", 5);
    CHECK(strcmp(s, "hello") == 0);
    rh_free(s);

    uint64_t *z = rh_calloc(16, sizeof(*z));
    int zeros = 0;
    for (int i = 0; i < 16; i++)
        zeros += z[i] == 0;
    CHECK_EQ(zeros, 16);
    rh_free(z);

    void *aligned = rh_alloc_aligned(4096, 100);
    CHECK_EQ((uintptr_t)aligned % 4096, 0);
    rh_free(aligned);
    CHECK_EQ(rh_alloc_live_bytes(), base);

    void *moved = rh_alloc(3000);
    pthread_t t;
    pthread_create(&t, NULL, free_elsewhere, moved);
    pthread_join(t, NULL);
    CHECK_EQ(rh_alloc_live_bytes(), base);

    rh_free(NULL);
    return rh_check_finish();
}
